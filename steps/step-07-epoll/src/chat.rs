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
use crate::clients::Clients;
use crate::interest::Token;
use crate::json::{self, Value};
use crate::ws::{self, Message, Opcode};

/// The longest name, in characters (not bytes: "Zoë" is 3 characters).
const MAX_NAME_CHARS: usize = 32;

// ANCHOR: handle
/// Acts on the messages that clients sent this turn, in the order they came.
/// `chat` holds each message with the token of its sender in `clients`.
pub fn handle(chat: &[(Token, Message)], clients: &mut Clients) {
    for (sender, message) in chat {
        if let Err(reason) = handle_one(*sender, message, clients) {
            log!("{}: refused: {reason}", clients[*sender].peer);
            send_to(&mut clients[*sender], &error(&reason));
        }
    }
}

/// One message from one client, or the reason it was refused.
fn handle_one(sender: Token, message: &Message, clients: &mut Clients) -> Result<(), String> {
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
fn join(sender: Token, request: &Value, clients: &mut Clients) -> Result<(), String> {
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
    clients.join(sender, name.clone());
    log!("{}: joined as {name:?}", clients[sender].peer);
    let users = clients.members().filter_map(|client| client.name.clone());
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
/// A name is trimmed, 1 to 32 characters, with no control characters and no
/// format characters.
fn valid_name(name: &str) -> Result<String, String> {
    let name = name.trim();
    let length = name.chars().count();
    if length == 0 || length > MAX_NAME_CHARS {
        return Err(format!("a name has 1 to {MAX_NAME_CHARS} characters"));
    }
    if name.chars().any(char::is_control) {
        return Err("a name cannot contain control characters".to_string());
    }
    if name.chars().any(is_format_character) {
        let reason = "a name cannot contain invisible or direction-changing characters";
        return Err(reason.to_string());
    }
    Ok(name.to_string())
}

/// Unicode's format characters (general category Cf, as of Unicode 15.1):
/// they draw nothing themselves, or change how the text around them is
/// drawn. `ann` followed by a zero-width space would pass for `ann`, and
/// `nna` after a right-to-left override is shown as `ann`. std has no table
/// of categories, so here is this one, by hand.
const FORMAT_CHARACTERS: &[(char, char)] = &[
    ('\u{AD}', '\u{AD}'),       // soft hyphen
    ('\u{600}', '\u{605}'),     // Arabic number signs
    ('\u{61C}', '\u{61C}'),     // Arabic letter mark (a direction mark)
    ('\u{6DD}', '\u{6DD}'),     // Arabic end of ayah
    ('\u{70F}', '\u{70F}'),     // Syriac abbreviation mark
    ('\u{890}', '\u{891}'),     // Arabic pound and piastre marks above
    ('\u{8E2}', '\u{8E2}'),     // Arabic disputed end of ayah
    ('\u{180E}', '\u{180E}'),   // Mongolian vowel separator
    ('\u{200B}', '\u{200F}'),   // zero-width space, non-joiner, joiner; LRM, RLM
    ('\u{202A}', '\u{202E}'),   // direction embeddings and overrides
    ('\u{2060}', '\u{2064}'),   // word joiner, invisible operators
    ('\u{2066}', '\u{206F}'),   // direction isolates; deprecated format characters
    ('\u{FEFF}', '\u{FEFF}'),   // zero-width no-break space (byte order mark)
    ('\u{FFF9}', '\u{FFFB}'),   // interlinear annotation
    ('\u{110BD}', '\u{110BD}'), // Kaithi number sign
    ('\u{110CD}', '\u{110CD}'), // Kaithi number sign above
    ('\u{13430}', '\u{1343F}'), // Egyptian hieroglyph format controls
    ('\u{1BCA0}', '\u{1BCA3}'), // shorthand format controls
    ('\u{1D173}', '\u{1D17A}'), // musical symbol beams, ties, slurs, phrases
    ('\u{E0001}', '\u{E0001}'), // language tag
    ('\u{E0020}', '\u{E007F}'), // tag characters
];

fn is_format_character(char: char) -> bool {
    FORMAT_CHARACTERS
        .iter()
        .any(|&(first, last)| (first..=last).contains(&char))
}

/// Names are compared without regard to case, so that nobody can pass for
/// "Alice" by calling themselves "alice".
fn is_taken(name: &str, clients: &Clients) -> bool {
    let wanted = name.to_lowercase();
    clients
        .members()
        .filter_map(|client| client.name.as_ref())
        .any(|taken| taken.to_lowercase() == wanted)
}
// ANCHOR_END: names

// ANCHOR: say
/// `{"type":"message","text":"hello"}`: everyone who joined gets it, with
/// the sender's name on it, the sender too (that is how it knows the server
/// has it).
fn say(sender: Token, request: &Value, clients: &mut Clients) -> Result<(), String> {
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
/// Whether anyone had left.
pub fn announce_departures(clients: &mut Clients) -> bool {
    let mut departed = Vec::new();
    // Only a client that this turn touched can have started to leave.
    for token in clients.touched() {
        // Leaving, not only gone: a client whose close frame goes out this
        // turn may not hang up for a while, and the others should not wait.
        if clients[token].is_leaving() {
            // `leave` empties the name: each departure is announced once.
            if let Some(name) = clients.leave(token) {
                log!("{}: {name:?} left", clients[token].peer);
                departed.push(name);
            }
        }
    }
    let anyone = !departed.is_empty();
    for name in departed {
        let notice = Value::object([("type", Value::from("leave")), ("name", Value::from(name))]);
        send_to_everyone(&notice, clients);
    }
    anyone
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
fn send_to_everyone(value: &Value, clients: &mut Clients) {
    let frame = text_frame(value);
    clients.for_each_member(|_, client| client.queue_chat(&frame));
}

fn send_to_everyone_but(sender: Token, value: &Value, clients: &mut Clients) {
    let frame = text_frame(value);
    clients.for_each_member(|member, client| {
        if member != sender {
            client.queue_chat(&frame);
        }
    });
}

fn text_frame(value: &Value) -> Vec<u8> {
    ws::encode_frame(Opcode::Text, json::encode(value).as_bytes())
}
// ANCHOR_END: send

#[cfg(test)]
mod tests {
    use super::*;

    /// The invisible characters and the direction controls are refused
    /// wherever they are in a name, and the rest of the table with them.
    #[test]
    fn format_characters_are_refused_anywhere_in_a_name() {
        // Zero-width space, non-joiner, joiner, word joiner, no-break space.
        let invisible = "\u{200B}\u{200C}\u{200D}\u{2060}\u{FEFF}";
        // Embeddings and overrides, isolates, and marks.
        let direction = "\u{202A}\u{202B}\u{202C}\u{202D}\u{202E}\
                         \u{2066}\u{2067}\u{2068}\u{2069}\u{200E}\u{200F}\u{61C}";
        let table = FORMAT_CHARACTERS
            .iter()
            .flat_map(|&(first, last)| [first, last]);
        for char in invisible.chars().chain(direction.chars()).chain(table) {
            for name in [
                format!("{char}ann"),
                format!("a{char}nn"),
                format!("ann{char}"),
            ] {
                assert_eq!(
                    valid_name(&name),
                    Err("a name cannot contain invisible or direction-changing characters".into()),
                    "U+{:04X}",
                    char as u32
                );
            }
        }
    }

    /// What the table does not catch: letters of other scripts that look
    /// like Latin ones, combining marks, and emoji without joiners.
    #[test]
    fn look_alikes_and_combining_marks_are_still_names() {
        for name in [
            "\u{430}lice",
            "Zoe\u{308}",
            "\u{1F600}",
            "\u{5E9}\u{5DC}\u{5D5}\u{5DD}",
        ] {
            assert_eq!(valid_name(name).as_deref(), Ok(name));
        }
    }
}
