//! The chat itself: who is in it, and what its messages say.
//!
//! Every WebSocket text message is one JSON object with a `type`:
//!
//! | direction | message |
//! |---|---|
//! | client -> server, once | `{"type":"join","name":"alice"}` |
//! | client -> server | `{"type":"message","text":"hello"}` |
//! | server -> the one who joined | `{"type":"welcome","name":"alice","users":["alice","bob"]}` |
//! | server -> everyone joined, the sender too | `{"type":"message","from":"alice","text":"hello"}` |
//! | server -> everyone else joined | `{"type":"join","name":"bob"}`, `{"type":"leave","name":"bob"}` |
//! | server -> one client | `{"type":"error","reason":"..."}` |
//!
//! A client that sends something the chat cannot use gets an error message
//! and stays connected: a mistake in one message is not a broken protocol.

use crate::client::Client;
use crate::json::{self, Value};
use crate::ws::{self, Message, Opcode};

/// The longest name, in characters (not bytes: "Zoë" is 3 characters).
pub const MAX_NAME_CHARS: usize = 32;

// ANCHOR: handle
/// Acts on the messages that clients sent this turn, in the order they came.
/// `chat` holds each message with the index of its sender in `clients`.
pub fn handle(chat: &[(usize, Message)], clients: &mut [Client]) {
    for (sender, message) in chat {
        if let Err(reason) = handle_one(*sender, message, clients) {
            log!("{}: refused: {reason}", clients[*sender].peer);
            send_to(&mut clients[*sender], &error(&reason));
        }
    }
}

/// One message from one client, or the reason it was refused.
fn handle_one(sender: usize, message: &Message, clients: &mut [Client]) -> Result<(), String> {
    let Message::Text(text) = message else {
        return Err("send text: JSON objects, not binary messages".to_string());
    };
    let request = json::parse(text).map_err(|error| format!("invalid JSON: {error}"))?;
    match request.get("type").and_then(Value::as_str) {
        Some("join") => join(sender, &request, clients),
        Some("message") => say(sender, &request, clients),
        Some(other) => Err(format!("unknown type {other:?}")),
        None => Err("a message needs a \"type\"".to_string()),
    }
}
// ANCHOR_END: handle

// ANCHOR: join
/// `{"type":"join","name":"alice"}`: the client takes a name and enters.
fn join(sender: usize, request: &Value, clients: &mut [Client]) -> Result<(), String> {
    if clients[sender].name.is_some() {
        return Err("you have already joined".to_string());
    }
    let Some(name) = request.get("name").and_then(Value::as_str) else {
        return Err("a join needs a \"name\"".to_string());
    };
    let name = valid_name(name)?;
    if is_taken(&name, clients) {
        return Err(format!("the name {name:?} is taken"));
    }
    clients[sender].name = Some(name.clone());
    log!("{}: joined as {name:?}", clients[sender].peer);
    let users = clients.iter().filter_map(|client| client.name.clone());
    let welcome = Value::object([
        ("type", Value::from("welcome")),
        ("name", Value::from(name.as_str())),
        ("users", Value::Array(users.map(Value::from).collect())),
    ]);
    send_to(&mut clients[sender], &welcome);
    let notice = Value::object([("type", Value::from("join")), ("name", Value::from(name))]);
    send_to_everyone_but(sender, &notice, clients);
    Ok(())
}
// ANCHOR_END: join

// ANCHOR: names
/// A name is trimmed, 1 to 32 characters, with no control characters.
fn valid_name(name: &str) -> Result<String, String> {
    let name = name.trim();
    let length = name.chars().count();
    if length == 0 || length > MAX_NAME_CHARS {
        return Err(format!("a name has 1 to {MAX_NAME_CHARS} characters"));
    }
    if name.chars().any(char::is_control) {
        return Err("a name cannot contain control characters".to_string());
    }
    Ok(name.to_string())
}

/// Names are compared without regard to case, so that nobody can pass for
/// "Alice" by calling themselves "alice".
fn is_taken(name: &str, clients: &[Client]) -> bool {
    let wanted = name.to_lowercase();
    clients
        .iter()
        .filter_map(|client| client.name.as_ref())
        .any(|taken| taken.to_lowercase() == wanted)
}
// ANCHOR_END: names

// ANCHOR: say
/// `{"type":"message","text":"hello"}`: everyone who joined gets it, with
/// the sender's name on it, the sender too (that is how it knows the server
/// has it).
fn say(sender: usize, request: &Value, clients: &mut [Client]) -> Result<(), String> {
    let Some(name) = clients[sender].name.clone() else {
        return Err("join first: {\"type\":\"join\",\"name\":\"...\"}".to_string());
    };
    let Some(text) = request.get("text").and_then(Value::as_str) else {
        return Err("a message needs a \"text\"".to_string());
    };
    let message = Value::object([
        ("type", Value::from("message")),
        ("from", Value::from(name)),
        ("text", Value::from(text)),
    ]);
    send_to_everyone(&message, clients);
    Ok(())
}
// ANCHOR_END: say

// ANCHOR: leave
/// Tells everyone when a client who had joined is no longer there, however
/// it went: a close frame, a broken rule, a vanished connection, too slow.
pub fn announce_departures(clients: &mut [Client]) {
    let mut departed = Vec::new();
    for client in clients.iter_mut() {
        // Leaving, not only gone: a client whose close frame goes out this
        // turn may not hang up for a while, and the others should not wait.
        if client.is_leaving() {
            // `take` empties the name: each departure is announced once.
            if let Some(name) = client.name.take() {
                log!("{}: {name:?} left", client.peer);
                departed.push(name);
            }
        }
    }
    for name in departed {
        let notice = Value::object([("type", Value::from("leave")), ("name", Value::from(name))]);
        send_to_everyone(&notice, clients);
    }
}
// ANCHOR_END: leave

/// `{"type":"error","reason":"..."}`
fn error(reason: &str) -> Value {
    Value::object([
        ("type", Value::from("error")),
        ("reason", Value::from(reason)),
    ])
}

// ANCHOR: send
fn send_to(client: &mut Client, value: &Value) {
    client.queue_chat(&text_frame(value));
}

/// Every client who joined. The frame is encoded once for all of them.
fn send_to_everyone(value: &Value, clients: &mut [Client]) {
    let frame = text_frame(value);
    for client in clients.iter_mut().filter(|client| client.name.is_some()) {
        client.queue_chat(&frame);
    }
}

fn send_to_everyone_but(sender: usize, value: &Value, clients: &mut [Client]) {
    let frame = text_frame(value);
    for (index, client) in clients.iter_mut().enumerate() {
        if index != sender && client.name.is_some() {
            client.queue_chat(&frame);
        }
    }
}

fn text_frame(value: &Value) -> Vec<u8> {
    ws::encode_frame(Opcode::Text, json::encode(value).as_bytes())
}
// ANCHOR_END: send
