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
//! | server -> everyone joined | `{"type":"notice","text":"..."}`: the other servers are out of reach, or back |
//!
//! A client that sends something the chat cannot use gets an error message
//! and stays connected: a mistake in one message is not a broken protocol.
//!
//! With a [`Broker`], the chat spans every server that uses the same Redis:
//! what happens here is told to the others, what they tell is passed on
//! here (see [`hear`]), and a name is ours only once Redis says nobody
//! else has it, so a join waits for Redis's answer.

use crate::broker::{Broker, ClaimOutcome, News};
use crate::client::{Allowance, Client};
use crate::clients::Clients;
use crate::interest::Token;
use crate::json::{self, Value};
use crate::ws::{self, Message, Opcode};

/// The longest name, in characters (not bytes: "Zoë" is 3 characters).
const MAX_NAME_CHARS: usize = 32;

// ANCHOR: handle
/// Acts on the messages that clients sent this turn, in the order they came.
/// `chat` holds each message with the token of its sender in `clients`.
pub fn handle(chat: &[(Token, Message)], clients: &mut Clients, mut broker: Option<&mut Broker>) {
    for (sender, message) in chat {
        // Before the JSON is even parsed: that is what a flood would cost.
        let result = match clients[*sender].allow() {
            Allowance::Yes => handle_or_hold(*sender, message, clients, broker.as_deref_mut()),
            Allowance::No { per_second } => Err(format!(
                "too many messages: at most {per_second} a second; this one was dropped"
            )),
            Allowance::Closed => continue,
        };
        if let Err(reason) = result {
            refuse(*sender, &reason, clients);
        }
    }
}

/// The most messages a client may send after its join, before Redis has
/// answered it: a client may send its join and its first message in one
/// go, but not flood us while it waits.
const MAX_HELD_MESSAGES: usize = 16;

/// Acts on one message, unless its sender is waiting for Redis's answer
/// about its name: then the message waits too, so that a client's
/// messages are handled in the order it sent them.
fn handle_or_hold(
    sender: Token,
    message: &Message,
    clients: &mut Clients,
    broker: Option<&mut Broker>,
) -> Result<(), String> {
    let client = &mut clients[sender];
    if client.claim.is_some() {
        if client.held.len() >= MAX_HELD_MESSAGES {
            return Err("wait for the welcome before sending more".to_string());
        }
        client.held.push(message.clone());
        return Ok(());
    }
    handle_one(sender, message, clients, broker)
}

/// One message from one client, or the reason it was refused.
fn handle_one(
    sender: Token,
    message: &Message,
    clients: &mut Clients,
    broker: Option<&mut Broker>,
) -> Result<(), String> {
    let Message::Text(text) = message else {
        return Err("send text: JSON objects, not binary messages".to_string());
    };
    let request = json::parse(text).map_err(|error| format!("invalid JSON: {error}"))?;
    match request.get("type").and_then(Value::as_str) {
        Some("join") => join(sender, &request, clients, broker),
        Some("message") => say(sender, &request, clients, broker),
        Some(other) => Err(format!("unknown type {other:?}")),
        None => Err("a message needs a \"type\"".to_string()),
    }
}
// ANCHOR_END: handle

// ANCHOR: join
/// `{"type":"join","name":"alice"}`: the client takes a name and enters;
/// with a broker, once Redis has said the name is free (see [`claimed`]).
fn join(
    sender: Token,
    request: &Value,
    clients: &mut Clients,
    broker: Option<&mut Broker>,
) -> Result<(), String> {
    if clients[sender].name.is_some() {
        return Err("you have already joined".to_string());
    }
    if clients[sender].claim.is_some() {
        return Err("you are joining already: wait for the welcome".to_string());
    }
    let Some(name) = request.get("name").and_then(Value::as_str) else {
        return Err("a join needs a \"name\"".to_string());
    };
    let name = valid_name(name)?;
    let taken_elsewhere = broker.as_ref().is_some_and(|broker| broker.is_taken(&name));
    if is_taken(&name, clients) || taken_elsewhere {
        return Err(format!("the name {name:?} is taken"));
    }
    let Some(broker) = broker else {
        enter(sender, name, clients, None);
        return Ok(());
    };
    // Names must stay unique across servers, and only Redis can say which
    // are free: without it, nobody joins (those who have joined chat on).
    if !broker.is_up() {
        return Err("the other servers are out of reach: try again in a moment".to_string());
    }
    clients[sender].claim = Some(broker.claim(&name, sender));
    log!(
        "{}: asking Redis for the name {name:?}",
        clients[sender].peer
    );
    Ok(())
}

/// The client enters the chat as `name`, which is its own: it is welcomed
/// with the list of everyone, here and on the other servers, and everyone
/// else is told.
fn enter(sender: Token, name: String, clients: &mut Clients, broker: Option<&mut Broker>) {
    clients.join(sender, name.clone());
    log!("{}: joined as {name:?}", clients[sender].peer);
    let mut users: Vec<String> = clients
        .members()
        .filter_map(|client| client.name.clone())
        .collect();
    if let Some(broker) = &broker {
        users.extend(broker.remote_members().map(str::to_string));
    }
    let welcome = Value::object([
        ("type", Value::from("welcome")),
        ("name", Value::from(name.as_str())),
        (
            "users",
            Value::Array(users.into_iter().map(Value::from).collect()),
        ),
    ]);
    send_to(&mut clients[sender], &welcome);
    let notice = Value::object([
        ("type", Value::from("join")),
        ("name", Value::from(name.as_str())),
    ]);
    send_to_everyone_but(sender, &notice, clients);
    if let Some(broker) = broker {
        broker.joined(&name);
    }
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
fn say(
    sender: Token,
    request: &Value,
    clients: &mut Clients,
    broker: Option<&mut Broker>,
) -> Result<(), String> {
    let Some(name) = clients[sender].name.clone() else {
        return Err("join first: {\"type\":\"join\",\"name\":\"...\"}".to_string());
    };
    let Some(text) = request.get("text").and_then(Value::as_str) else {
        return Err("a message needs a \"text\"".to_string());
    };
    if let Some(broker) = broker {
        broker.said(&name, text);
    }
    send_to_everyone(&chat_message(&name, text), clients);
    Ok(())
}

/// `{"type":"message","from":"alice","text":"hello"}`
fn chat_message(from: &str, text: &str) -> Value {
    Value::object([
        ("type", Value::from("message")),
        ("from", Value::from(from)),
        ("text", Value::from(text)),
    ])
}
// ANCHOR_END: say

// ANCHOR: leave
/// Tells everyone when a client who had joined is no longer there, however
/// it went: a close frame, a broken rule, a vanished connection, too slow.
/// Whether anyone had left.
pub fn announce_departures(clients: &mut Clients, mut broker: Option<&mut Broker>) -> bool {
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
        if let Some(broker) = broker.as_deref_mut() {
            broker.left(&name);
        }
        send_to_everyone(&arrival_or_departure("leave", &name), clients);
    }
    anyone
}
// ANCHOR_END: leave

// ANCHOR: hear
/// Acts on what the broker heard this turn: from the other servers, from
/// Redis about a name, or about Redis itself.
pub fn hear(news: Vec<News>, clients: &mut Clients, broker: &mut Broker) {
    for item in news {
        match item {
            News::Message { from, text } => send_to_everyone(&chat_message(&from, &text), clients),
            News::Joined(name) => send_to_everyone(&arrival_or_departure("join", &name), clients),
            News::Left(name) => send_to_everyone(&arrival_or_departure("leave", &name), clients),
            News::Claim {
                token,
                claim,
                name,
                outcome,
            } => claimed(token, claim, name, outcome, clients, broker),
            News::Connected => tell_everyone(
                "in touch with the other servers: the chat spans them all",
                clients,
            ),
            News::Disconnected(reason) => {
                log!("redis: lost ({reason}); the chat stops at this server");
                let text = "the other servers are out of reach: what you say reaches \
                            this server's users only, and nobody can join until they are back";
                tell_everyone(text, clients);
            }
        }
    }
}

/// Redis answered the claim number `claim`, for the client `token`, of
/// `name`. The client may have gone meanwhile, and another may have its
/// token now: the claim's number tells them apart.
fn claimed(
    token: Token,
    claim: u64,
    name: String,
    outcome: ClaimOutcome,
    clients: &mut Clients,
    broker: &mut Broker,
) {
    let still_asking = clients.contains(token) && clients[token].claim == Some(claim);
    // A server that is stopping says goodbye for its members: nobody new
    // enters now.
    if !still_asking || broker.is_stopping() {
        if outcome == ClaimOutcome::Granted {
            broker.release(&name); // nobody needs it any more
        }
        return;
    }
    clients[token].claim = None;
    match outcome {
        ClaimOutcome::Granted => enter(token, name, clients, Some(broker)),
        ClaimOutcome::Taken => refuse(token, &format!("the name {name:?} is taken"), clients),
        ClaimOutcome::Failed(reason) => {
            refuse(token, &format!("cannot join now: {reason}"), clients)
        }
    }
    // What it sent meanwhile, in order; a second join among it holds the
    // rest again.
    for message in std::mem::take(&mut clients[token].held) {
        if let Err(reason) = handle_or_hold(token, &message, clients, Some(broker)) {
            refuse(token, &reason, clients);
        }
    }
}
// ANCHOR_END: hear

/// `{"type":"join","name":"bob"}` or `{"type":"leave","name":"bob"}`
fn arrival_or_departure(kind: &str, name: &str) -> Value {
    Value::object([("type", Value::from(kind)), ("name", Value::from(name))])
}

/// `{"type":"notice","text":"..."}` to everyone who joined.
fn tell_everyone(text: &str, clients: &mut Clients) {
    let notice = Value::object([("type", Value::from("notice")), ("text", Value::from(text))]);
    send_to_everyone(&notice, clients);
}

/// Tells the client why what it sent was refused.
fn refuse(token: Token, reason: &str, clients: &mut Clients) {
    log!("{}: refused: {reason}", clients[token].peer);
    send_to(&mut clients[token], &error(reason));
}

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
