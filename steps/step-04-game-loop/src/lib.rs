//! Stage 4: a nonblocking game loop, and a group chat.
//!
//! Stage 3 served one client at a time: while it waited for one, the others
//! waited for it. This stage makes every socket nonblocking and runs one
//! loop, like a game loop: accept whoever is new, read what each client has
//! sent, send every chat message to every client, write what each socket
//! will take, and do it again. Nothing in the loop ever waits for a client.
//! Run it with `cargo run -p step-04` and open http://127.0.0.1:8080 in two
//! browser tabs.

// First, so that every module after it can use `log!`.
#[macro_use]
pub mod log;

pub mod client;
pub mod handshake;
pub mod http;
pub mod ws;

#[cfg(test)]
mod random;

use client::{Client, Limits};
use std::io;
use std::net::TcpListener;
use std::thread;
use std::time::Duration;
use ws::Message;

/// How long a client may take to send its whole request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// How long we wait, after our close frame, for the client to close too.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

// ANCHOR: max_unsent
/// How far a client may fall behind: the most bytes we keep for it that its
/// socket has not taken yet. A client past this cannot keep up with the chat
/// (or stopped reading altogether), and is disconnected so that it does not
/// eat the server's memory. It leaves room for one message of the biggest
/// size we accept, and more.
pub const MAX_UNSENT_BYTES: usize = ws::MAX_MESSAGE_LEN + 1024 * 1024;

/// The most memory the buffers of all clients together may hold. Each client
/// keeps to its own limits, but many clients within theirs could still hold
/// more than the machine can spare: past this, the clients
/// that hold the most are let go. It leaves room for a client that sends
/// one of the biggest messages, and gets it back.
const MEMORY_BUDGET: usize = 64 * 1024 * 1024;
// ANCHOR_END: max_unsent

// ANCHOR: limits
/// What every client is allowed.
const LIMITS: Limits = Limits {
    request_timeout: REQUEST_TIMEOUT,
    close_timeout: CLOSE_TIMEOUT,
    max_message_len: ws::MAX_MESSAGE_LEN,
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
        let mut chat = Vec::new();
        for client in &mut clients {
            busy |= client.receive(&mut chat);
        }
        broadcast(&chat, &mut clients);
        keep_within_memory_budget(&mut clients);
        for client in &mut clients {
            busy |= client.flush();
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

// ANCHOR: broadcast
/// Sends every chat message to every client in the chat, the sender too.
/// A message is encoded once: every client gets the same bytes.
fn broadcast(chat: &[Message], clients: &mut [Client]) {
    for message in chat {
        let frame = ws::encode_frame(message.opcode(), message.payload());
        for client in clients.iter_mut() {
            client.queue_chat(&frame);
        }
    }
}
// ANCHOR_END: broadcast

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
