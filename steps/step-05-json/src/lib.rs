//! Stage 5: JSON messages, usernames, and a web chat page.
//!
//! Stage 4's game loop, plus: every message is a JSON object (see [`json`]),
//! so that metadata can travel with it. Each client picks a name when it
//! joins; the server stamps it on every message the client sends, and tells
//! everyone when someone joins or leaves (see [`chat`]). `GET /` serves the
//! chat page. Run it with `cargo run -p step-05`, open
//! http://127.0.0.1:8080 in two browser tabs, and pick two names.

// First, so that every module after it can use `log!`.
#[macro_use]
pub mod log;

pub mod chat;
pub mod client;
pub mod handshake;
pub mod http;
pub mod json;
pub mod ws;

#[cfg(test)]
mod random;

use client::{Client, Limits};
use std::io;
use std::net::TcpListener;
use std::thread;
use std::time::Duration;

/// How long a client may take to send its whole request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// How long we wait, after our close frame, for the client to close too.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

// ANCHOR: max_chat_message_len
/// The largest chat message we accept, in bytes. The loop parses every
/// message's JSON on its one thread, and a 16 MiB document takes long enough
/// to parse (about a second) to stall everyone: a bigger message is refused
/// with close code 1009. Chat messages are small.
pub const MAX_CHAT_MESSAGE_LEN: usize = 64 * 1024;
// ANCHOR_END: max_chat_message_len

// ANCHOR: max_unsent
/// How far a client may fall behind: the most bytes we keep for it that its
/// socket has not taken yet. A client past this cannot keep up with the chat
/// (or stopped reading altogether), and is disconnected so that it does not
/// eat the server's memory. It leaves room for sixteen of the longest chat
/// messages (a message goes out about as long as it came in: JSON escapes
/// the same characters both ways).
pub const MAX_UNSENT_BYTES: usize = 16 * MAX_CHAT_MESSAGE_LEN;

/// The most memory the buffers of all clients together may hold. Each client
/// keeps to its own limits, but many clients within theirs could still hold
/// more than the machine can spare: past this, the clients
/// that hold the most are let go.
const MEMORY_BUDGET: usize = 32 * 1024 * 1024;
// ANCHOR_END: max_unsent

// ANCHOR: limits
/// What every client is allowed.
const LIMITS: Limits = Limits {
    request_timeout: REQUEST_TIMEOUT,
    close_timeout: CLOSE_TIMEOUT,
    max_message_len: MAX_CHAT_MESSAGE_LEN,
    max_unsent_bytes: MAX_UNSENT_BYTES,
};
// ANCHOR_END: limits

// ANCHOR: idle_constants
/// The shortest and longest the loop sleeps after a turn with nothing to do.
/// The longer the sleep, the less CPU an idle server burns, and the longer a
/// message that arrives during the sleep waits for the loop to notice it.
const MIN_IDLE_SLEEP: Duration = Duration::from_micros(50);
const MAX_IDLE_SLEEP: Duration = Duration::from_millis(5);
// ANCHOR_END: idle_constants

// ANCHOR: serve
/// Serves every client at once, forever, on this one thread.
pub fn serve(listener: TcpListener) -> io::Result<()> {
    // `accept` now returns at once, with `WouldBlock` if nobody is waiting.
    listener.set_nonblocking(true)?;
    let mut clients: Vec<Client> = Vec::new();
    let mut idle = IdleSleep::new();
    loop {
        let mut busy = accept_new_clients(&listener, &mut clients);
        // Each message, with the index of the client that sent it.
        let mut chat = Vec::new();
        for (index, client) in clients.iter_mut().enumerate() {
            let mut messages = Vec::new();
            busy |= client.receive(&mut messages);
            chat.extend(messages.into_iter().map(|message| (index, message)));
        }
        chat::handle(&chat, &mut clients);
        keep_within_memory_budget(&mut clients);
        chat::announce_departures(&mut clients);
        loop {
            for client in &mut clients {
                busy |= client.flush();
            }
            // Writing may have found a client gone (a reset, a broken pipe):
            // the others hear of it in this same turn.
            if !chat::announce_departures(&mut clients) {
                break;
            }
        }
        // Dropping a client closes its socket.
        clients.retain(|client| !client.is_closed());
        idle.after_turn(busy);
    }
}
// ANCHOR_END: serve

// ANCHOR: accept
/// Accepts everyone who is waiting to connect, without waiting for anyone.
/// Returns whether anyone was accepted.
fn accept_new_clients(listener: &TcpListener, clients: &mut Vec<Client>) -> bool {
    let mut accepted = false;
    loop {
        match listener.accept() {
            Ok((stream, peer)) => match Client::new(stream, peer, LIMITS) {
                Ok(client) => {
                    clients.push(client);
                    accepted = true;
                }
                Err(error) => log!("{peer}: cannot serve: {error}"),
            },
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => return accepted,
            Err(error) => {
                // For example too many open files: try again next turn.
                log!("accept failed: {error}");
                return accepted;
            }
        }
    }
}
// ANCHOR_END: accept

// ANCHOR: memory_budget
/// Keeps what all the clients' buffers hold within [`MEMORY_BUDGET`]: while
/// they hold more, the client that holds the most (the one furthest behind,
/// or with the biggest unfinished message) is let go.
fn keep_within_memory_budget(clients: &mut [Client]) {
    let mut total: usize = clients.iter().map(Client::memory).sum();
    while total > MEMORY_BUDGET {
        // A client already let go holds little now, and is not let go twice.
        let candidates = clients.iter_mut().filter(|client| client.can_be_shed());
        let Some(biggest) = candidates.max_by_key(|client| client.memory()) else {
            return;
        };
        total -= biggest.memory();
        biggest.shed();
    }
}
// ANCHOR_END: memory_budget

// ANCHOR: idle_sleep
/// How the loop rests when there is nothing to do.
///
/// A loop that never sleeps burns a whole core asking sockets that have
/// nothing to say. A fixed sleep after every idle turn would make it poll
/// every socket a thousand times a second (1 ms), and delay every message by
/// up to that much. Instead the sleep grows while the server stays idle,
/// from [`MIN_IDLE_SLEEP`] to [`MAX_IDLE_SLEEP`], and the first turn with
/// work resets it: no sleep at all while there is work.
struct IdleSleep {
    next: Duration,
}

impl IdleSleep {
    fn new() -> IdleSleep {
        IdleSleep {
            next: Duration::ZERO,
        }
    }

    fn after_turn(&mut self, busy: bool) {
        if busy {
            self.next = Duration::ZERO;
            return;
        }
        self.next = (self.next * 2).clamp(MIN_IDLE_SLEEP, MAX_IDLE_SLEEP);
        thread::sleep(self.next);
    }
}
// ANCHOR_END: idle_sleep
