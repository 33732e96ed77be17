//! The benchmark's reference server: step-05's chat, written the way most
//! Rust developers would write it, with tokio and tokio-tungstenite.
//!
//! `cargo run --release --manifest-path tests/bench/reference/Cargo.toml [ADDRESS]`
//!
//! It is a package and a workspace of its own, outside the repository's
//! workspace, so that `cargo test --workspace` never compiles tokio; the
//! bench builds it when it measures it (see tests/bench/src/server.rs).
//!
//! It speaks the same JSON protocol as step-05 (see steps/step-05-json/src/chat.rs):
//! a join with a name, a welcome with the list of users, every message to
//! everyone who joined (the sender too) with the sender's name on it, join
//! and leave notices, and an error message for a request it cannot use.
//!
//! The choices, which follow tokio-tungstenite's own chat example
//! (examples/server.rs in its repository) and nothing more exotic:
//!
//! - tokio's multi-threaded runtime (one worker thread per core), and one
//!   task per connection;
//! - each WebSocket is split into a sink and a stream. The chat puts what a
//!   client should get into the client's channel (an unbounded mpsc, like
//!   the example's), and the connection's writer drains it into the sink:
//!   every message waiting, then one flush, as the example's `forward` does;
//! - who is connected, and under which name, is one `Mutex<BTreeMap>`,
//!   locked briefly to send to everyone;
//! - JSON with serde and serde_json. A message for everyone is encoded once:
//!   every client gets the same reference-counted bytes;
//! - the stages' limits: a message over 64 KiB is refused with close code
//!   1009 (tungstenite's `max_message_size` and `max_frame_size`), and every
//!   accepted socket has TCP_NODELAY;
//! - everything else is tungstenite's default, its buffers included.
//!
//! It is not a stage: it serves no web page, only WebSocket, and like the
//! example it keeps everything queued for a client that cannot keep up
//! instead of dropping it.

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error, Message};

/// The largest message we accept, in bytes: the same as the stages.
const MAX_MESSAGE_LEN: usize = 64 * 1024;

/// The longest name, in characters.
const MAX_NAME_CHARS: usize = 32;

/// The most messages a writer hands to the sink before it flushes.
const MAX_BATCH: usize = 64;

/// What a client sends: `{"type":"join","name":"alice"}` or
/// `{"type":"message","text":"hello"}`.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum Request {
    Join { name: String },
    Message { text: String },
}

/// What the server sends; `type` comes first, as in step-05.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum Event<'a> {
    Welcome { name: &'a str, users: Vec<&'a str> },
    Message { from: &'a str, text: &'a str },
    Join { name: &'a str },
    Leave { name: &'a str },
    Error { reason: &'a str },
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8080".to_string());
    let listener = TcpListener::bind(&address).await?;
    println!("Listening on http://{}", listener.local_addr()?);
    let chat = Chat::default();
    let mut next_id = 0;
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _peer)) => stream,
            Err(error) => {
                eprintln!("accept failed: {error}");
                continue;
            }
        };
        if let Err(error) = stream.set_nodelay(true) {
            eprintln!("cannot set TCP_NODELAY: {error}");
        }
        next_id += 1;
        tokio::spawn(serve_connection(chat.clone(), stream, next_id));
    }
}

/// One client, from the handshake to the end of its connection.
async fn serve_connection(chat: Chat, stream: TcpStream, id: u64) {
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_MESSAGE_LEN))
        .max_frame_size(Some(MAX_MESSAGE_LEN));
    let Ok(websocket) = tokio_tungstenite::accept_async_with_config(stream, Some(config)).await
    else {
        return;
    };
    let (mut sink, mut stream) = websocket.split();
    let (outbox, mut inbox) = mpsc::unbounded_channel();
    chat.connect(id, outbox);
    // Whichever ends first ends the connection: the client leaving (or
    // breaking a rule), or a write failing.
    let last_word = tokio::select! {
        last_word = read_requests(&chat, id, &mut stream) => last_word,
        () = write_events(&mut sink, &mut inbox) => None,
    };
    chat.leave(id);
    if let Some(frame) = last_word {
        let _ = sink.send(Message::Close(Some(frame))).await;
    }
}

/// Acts on the client's messages until it leaves. Returns the close frame
/// to send if it broke a rule.
async fn read_requests(
    chat: &Chat,
    id: u64,
    stream: &mut SplitStream<WebSocketStream<TcpStream>>,
) -> Option<CloseFrame> {
    while let Some(message) = stream.next().await {
        match message {
            Ok(message) => chat.handle(id, message),
            Err(Error::Capacity(_)) => {
                return Some(close_frame(CloseCode::Size, "message too big"));
            }
            Err(Error::Protocol(_)) => {
                return Some(close_frame(CloseCode::Protocol, "protocol error"));
            }
            Err(_) => return None,
        }
    }
    None
}

fn close_frame(code: CloseCode, reason: &str) -> CloseFrame {
    CloseFrame {
        code,
        reason: reason.into(),
    }
}

/// Sends the client what the chat put in its channel, until a write fails.
/// Every message already waiting goes into the sink before one flush.
async fn write_events(
    sink: &mut SplitSink<WebSocketStream<TcpStream>, Message>,
    inbox: &mut mpsc::UnboundedReceiver<Message>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while inbox.recv_many(&mut batch, MAX_BATCH).await > 0 {
        for message in batch.drain(..) {
            if sink.feed(message).await.is_err() {
                return;
            }
        }
        if sink.flush().await.is_err() {
            return;
        }
    }
}

/// Everyone connected, by connection number (so in the order they came).
#[derive(Clone, Default)]
struct Chat {
    members: Arc<Mutex<BTreeMap<u64, Member>>>,
}

struct Member {
    /// The name it joined with; `None` until it joins.
    name: Option<String>,
    /// Where to put what it should get.
    outbox: mpsc::UnboundedSender<Message>,
}

impl Chat {
    fn connect(&self, id: u64, outbox: mpsc::UnboundedSender<Message>) {
        let member = Member { name: None, outbox };
        self.members.lock().unwrap().insert(id, member);
    }

    /// One message from a client; a request we cannot use gets an error.
    fn handle(&self, id: u64, message: Message) {
        let result = match message {
            Message::Text(text) => match serde_json::from_str(&text) {
                Ok(Request::Join { name }) => self.join(id, &name),
                Ok(Request::Message { text }) => self.say(id, &text),
                Err(error) => Err(format!("invalid request: {error}")),
            },
            Message::Binary(_) => Err("send text: JSON objects, not binary messages".to_string()),
            // Pings, pongs and closes are tungstenite's business.
            _ => Ok(()),
        };
        if let Err(reason) = result {
            let members = self.members.lock().unwrap();
            send(&members[&id], &encode(&Event::Error { reason: &reason }));
        }
    }

    fn join(&self, id: u64, name: &str) -> Result<(), String> {
        let name = valid_name(name)?;
        let mut members = self.members.lock().unwrap();
        if members[&id].name.is_some() {
            return Err("you have already joined".to_string());
        }
        let wanted = name.to_lowercase();
        let mut names = members.values().filter_map(|member| member.name.as_ref());
        if names.any(|taken| taken.to_lowercase() == wanted) {
            return Err(format!("the name {name:?} is taken"));
        }
        members.get_mut(&id).unwrap().name = Some(name.clone());
        let users = members.values().filter_map(|member| member.name.as_deref());
        let welcome = Event::Welcome {
            name: &name,
            users: users.collect(),
        };
        send(&members[&id], &encode(&welcome));
        let notice = encode(&Event::Join { name: &name });
        for (_, member) in members.iter().filter(|(other, _)| **other != id) {
            if member.name.is_some() {
                send(member, &notice);
            }
        }
        Ok(())
    }

    fn say(&self, id: u64, text: &str) -> Result<(), String> {
        let members = self.members.lock().unwrap();
        let Some(from) = members[&id].name.as_deref() else {
            return Err(r#"join first: {"type":"join","name":"..."}"#.to_string());
        };
        send_to_everyone(&members, &encode(&Event::Message { from, text }));
        Ok(())
    }

    /// Forgets a client, and tells everyone if it had joined.
    fn leave(&self, id: u64) {
        let mut members = self.members.lock().unwrap();
        if let Some(Member {
            name: Some(name), ..
        }) = members.remove(&id)
        {
            send_to_everyone(&members, &encode(&Event::Leave { name: &name }));
        }
    }
}

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

fn encode(event: &Event) -> Message {
    Message::text(serde_json::to_string(event).expect("an event is always valid JSON"))
}

/// Every client who joined. Cloning a message copies no bytes.
fn send_to_everyone(members: &BTreeMap<u64, Member>, message: &Message) {
    for member in members.values().filter(|member| member.name.is_some()) {
        send(member, message);
    }
}

fn send(member: &Member, message: &Message) {
    // It fails only if the client's connection has ended: nothing to do.
    let _ = member.outbox.send(message.clone());
}
