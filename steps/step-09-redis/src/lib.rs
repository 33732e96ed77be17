//! Stage 9: one chat, many servers.
//!
//! Stage 8's server can be left running, but it is one process on one
//! core, and the chat ends at its door: a second server would be a second
//! chat. This stage joins any number of them into one chat through Redis
//! publish/subscribe (see [`broker`]), speaking Redis's protocol, RESP,
//! written by hand (see [`resp`]) over two nonblocking connections in the
//! same loop as the clients: the server is a client too (see [`socket`]).
//! Without `--redis` it is stage 8's server exactly. Run two with
//! `redis-server --port 6379 --save ''` and
//! `cargo run -p step-09 -- 127.0.0.1:8080 --redis 127.0.0.1:6379`,
//! the second on port 8081, open a tab on each, and chat.

// First, so that every module after it can use `log!`.
#[macro_use]
pub mod log;

pub mod broker;
pub mod chat;
pub mod client;
pub mod clients;
pub mod config;
#[cfg(target_os = "linux")]
pub mod epoll;
pub mod handshake;
pub mod http;
pub mod interest;
pub mod json;
pub mod poll;
pub mod resp;
pub mod signal;
#[cfg(target_os = "linux")]
pub mod socket;
pub mod ws;

#[cfg(test)]
mod random;

use broker::Broker;
use client::{Client, Limits};
use clients::Clients;
use config::Config;
use interest::{Interest, InterestList, Token};
use std::io::{self, Read};
use std::net::TcpListener;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

pub use config::{CLOSE_TIMEOUT, REQUEST_TIMEOUT};

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
/// What every client is allowed, from the configuration.
fn limits(config: Config) -> Limits {
    Limits {
        request_timeout: config.request_timeout,
        close_timeout: config.close_timeout,
        max_message_len: MAX_CHAT_MESSAGE_LEN,
        max_unsent_bytes: MAX_UNSENT_BYTES,
        ping_interval: config.ping_interval,
        idle_timeout: config.idle_timeout,
        join_timeout: config.join_timeout,
        max_messages_per_second: config.max_messages_per_second,
        // The list lives as long as the server, which is as long as the
        // program: leaked on purpose, every client can borrow it for good.
        allowed_origins: config.allowed_origins.leak(),
    }
}
// ANCHOR_END: limits

// ANCHOR: accept_pause
/// How long we stop accepting after `accept` fails, for example because the
/// process has run out of file descriptors. The connection it failed on is
/// still waiting, so the listener stays ready: the wait would return at
/// once, every time, and the loop would spin at full speed until a client
/// left.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);
// ANCHOR_END: accept_pause

// ANCHOR: serve
// ANCHOR: backends
/// Serves every client at once on this one thread, waiting with epoll
/// where there is one (Linux), and with `poll` everywhere else, until
/// `stop` becomes readable (see [`signal::stop_signals`]): then it closes
/// every connection, and returns. With `config.redis`, the chat spans
/// every server that uses that Redis (see [`broker`]).
pub fn serve(listener: TcpListener, config: Config, stop: UnixStream) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    return serve_with(listener, config, stop, epoll::Epoll::new()?);
    #[cfg(not(target_os = "linux"))]
    serve_with(listener, config, stop, poll::PollList::default())
}
// ANCHOR_END: backends

/// The listener's token: no client's, since no slab has that many slots.
const LISTENER: Token = Token::MAX;

/// The token of the socket that says it is time to stop.
const STOP: Token = Token::MAX - 1;

/// The tokens of the two connections to Redis, the subscriber's and the
/// one for commands: no client's either.
const REDIS: [Token; 2] = [Token::MAX - 2, Token::MAX - 3];

/// Serves every client at once, waiting for them with `sockets`: an
/// [`epoll::Epoll`], or a [`poll::PollList`] (the tests run every check
/// against both), until `stop` has something to read, or its other end is
/// closed.
pub fn serve_with(
    listener: TcpListener,
    config: Config,
    mut stop: UnixStream,
    mut sockets: impl InterestList,
) -> io::Result<()> {
    // `accept` now returns at once, with `WouldBlock` if nobody is waiting.
    listener.set_nonblocking(true)?;
    stop.set_nonblocking(true)?;
    sockets.add(listener.as_fd(), LISTENER, Interest::READ)?;
    sockets.add(stop.as_fd(), STOP, Interest::READ)?;
    // Taken (and closed) when we stop: from then on, the system refuses
    // newcomers itself.
    let mut listener = Some(listener);
    let door = Door::new(&config);
    // The name lookup waits, and the loop must not: once, now.
    let mut broker = match &config.redis {
        Some(address) => Some(Broker::new(broker::resolve(address)?, REDIS)),
        None => None,
    };
    let limits = limits(config);
    let mut clients = Clients::default();
    // What the wait found ready: filled in by each wait, in no order.
    let mut ready = Vec::new();
    let mut accept_paused_until: Option<Instant> = None;
    // Once we are stopping: when we stop waiting for the clients to close.
    let mut stopping: Option<Instant> = None;
    loop {
        if let Some(listener) = &listener
            && accept_paused_until.is_some_and(|until| Instant::now() >= until)
        {
            accept_paused_until = None;
            sockets.modify(listener.as_fd(), LISTENER, Interest::READ)?;
        }
        let broker_deadline = broker.as_ref().and_then(Broker::next_deadline);
        let wake_up = accept_paused_until
            .into_iter()
            .chain(stopping)
            .chain(broker_deadline)
            .min();
        wait_for_sockets(&mut sockets, &mut ready, wake_up, &clients)?;
        let now = Instant::now();
        // Each message, with the token of the client that sent it.
        let mut chat = Vec::new();
        let mut new_clients_waiting = false;
        let mut told_to_stop = false;
        // Nobody joins or leaves until the end of the turn: every token
        // here is a client's that is still here, and still the same one.
        for event in &ready {
            if event.token == LISTENER {
                new_clients_waiting = true;
                continue;
            }
            if event.token == STOP {
                told_to_stop = true;
                continue;
            }
            if broker
                .as_ref()
                .is_some_and(|broker| broker.owns(event.token))
            {
                continue; // for `broker.turn`, below
            }
            // Taking the client marks it touched: it is flushed at the end
            // of the turn, which is all a writable socket needs.
            let client = &mut clients[event.token];
            if event.readable {
                let mut messages = Vec::new();
                client.receive(&mut messages);
                chat.extend(messages.into_iter().map(|message| (event.token, message)));
            }
        }
        // A client whose time is up is looked at, ready or not: `receive`
        // acts on it.
        for token in clients.due(now) {
            let mut messages = Vec::new();
            clients[token].receive(&mut messages);
            chat.extend(messages.into_iter().map(|message| (token, message)));
        }
        // ANCHOR: stop_turn
        if told_to_stop && !read_stop(&mut stop, &mut sockets) {
            told_to_stop = false; // a spurious wake-up: nothing to read
        }
        if told_to_stop && stopping.is_some() {
            log!("a second signal: exiting without waiting for the clients");
            return Ok(());
        }
        if told_to_stop {
            // What every client sent before the signal goes round before
            // the close frames: read it all now.
            for token in clients.tokens() {
                let mut messages = Vec::new();
                clients[token].receive(&mut messages);
                chat.extend(messages.into_iter().map(|message| (token, message)));
            }
        }
        chat::handle(&chat, &mut clients, broker.as_mut());
        if let Some(broker) = &mut broker {
            let news = broker.turn(&ready, &mut sockets);
            chat::hear(news, &mut clients, broker);
        }
        if told_to_stop {
            stopping = Some(Instant::now() + limits.close_timeout);
            accept_paused_until = None;
            if let Some(listener) = listener.take() {
                sockets.delete(listener.as_fd())?;
            }
            log!(
                "shutting down: closing {} connections",
                clients.connections()
            );
            for token in clients.tokens() {
                clients[token].shut_down();
            }
            // The other servers' users hear now that ours have left, rather
            // than when our silence times out.
            if let Some(broker) = &mut broker {
                broker.shut_down();
            }
        }
        // ANCHOR_END: stop_turn
        keep_within_memory_budget(&mut clients);
        if stopping.is_none() {
            // When everyone is leaving, nobody needs to hear who left.
            chat::announce_departures(&mut clients, broker.as_mut());
        }
        // Redis first, then the clients: what other servers must hear of
        // this turn is on its way before anyone here is told of it.
        // Writing may find a client gone (a reset, a broken pipe): the
        // others hear of it in this same turn.
        loop {
            if let Some(broker) = &mut broker {
                broker.end_turn(&mut sockets);
            }
            clients.flush();
            if stopping.is_some() || !chat::announce_departures(&mut clients, broker.as_mut()) {
                break;
            }
        }
        // Brings up to date what the loop knows of the clients this turn
        // touched, and lets go of the closed.
        clients.end_turn(&mut sockets);
        // ANCHOR: stop_end
        if let Some(deadline) = stopping {
            // Redis has answered our goodbyes, if there is a Redis.
            let said_goodbye = broker.as_ref().is_none_or(Broker::is_idle);
            if clients.is_empty() && said_goodbye {
                log!("every connection is closed: exiting");
                return Ok(());
            }
            if Instant::now() >= deadline {
                log!("some clients did not close in time: exiting anyway");
                return Ok(());
            }
        }
        // ANCHOR_END: stop_end
        if let Some(listener) = &listener
            && new_clients_waiting
            && let Err(error) =
                accept_new_clients(listener, &door, limits, &mut clients, &mut sockets)
        {
            log!("accept failed: {error}; trying again in {ACCEPT_PAUSE:?}");
            accept_paused_until = Some(Instant::now() + ACCEPT_PAUSE);
            sockets.modify(listener.as_fd(), LISTENER, Interest::NONE)?;
        }
    }
}
// ANCHOR_END: serve

// ANCHOR: read_stop
/// Reads what the signal handler wrote. `false` if there was nothing
/// after all. A closed other end counts as a signal too (that is how the
/// tests stop a server): it is taken off the list, which would otherwise
/// report it readable for ever.
fn read_stop(stop: &mut UnixStream, sockets: &mut impl InterestList) -> bool {
    let mut told = false;
    let mut buffer = [0; 64];
    loop {
        match stop.read(&mut buffer) {
            Ok(0) => {
                let _ = sockets.delete(stop.as_fd());
                return true;
            }
            Ok(_) => told = true,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return told, // `WouldBlock`: all read
        }
    }
}
// ANCHOR_END: read_stop

// ANCHOR: wait_for_sockets
/// Sleeps until the listener or a client's socket is ready, or until the
/// nearest deadline: a client's, or `wake_up` (the end of a pause in
/// accepting, of the wait for the clients to close, or the broker's).
fn wait_for_sockets(
    sockets: &mut impl InterestList,
    ready: &mut Vec<interest::Event>,
    wake_up: Option<Instant>,
    clients: &Clients,
) -> io::Result<()> {
    // The list is the system's now: nothing to build. The deadlines are in
    // order: the nearest is the first.
    let nearest = clients.next_deadline().into_iter().chain(wake_up).min();
    let timeout = nearest.map(|deadline| deadline.saturating_duration_since(Instant::now()));
    sockets.wait(ready, timeout)
}
// ANCHOR_END: wait_for_sockets

// ANCHOR: accept
/// The limits on connections, checked at the door.
struct Door {
    max_connections: usize,
    max_connections_per_address: usize,
}

impl Door {
    fn new(config: &Config) -> Door {
        Door {
            max_connections: config.max_connections,
            max_connections_per_address: config.max_connections_per_address,
        }
    }

    /// Why a newcomer from `peer` is turned away, if it is.
    fn refusal(&self, clients: &Clients, peer: std::net::SocketAddr) -> Option<String> {
        if clients.connections() >= self.max_connections {
            let max = self.max_connections;
            return Some(format!("too many connections: {max} already"));
        }
        if clients.connections_from(peer.ip()) >= self.max_connections_per_address {
            let max = self.max_connections_per_address;
            return Some(format!(
                "too many connections from {}: {max} already",
                peer.ip()
            ));
        }
        None
    }
}

// ANCHOR: turning_away
/// The most newcomers being turned away at once. Each holds a descriptor
/// until it has read its 503 and hung up, or the close timeout has passed:
/// without a cap, an address over its limit that never reads could still
/// take every descriptor, only more slowly. Past it, a newcomer over a
/// limit is dropped unanswered.
const MAX_TURNING_AWAY: usize = 64;
// ANCHOR_END: turning_away

/// Accepts everyone who is waiting to connect, without waiting for anyone.
/// One over a limit is answered 503, so that it knows to come back later,
/// rather than dropped (unless too many are being turned away already). Fails if `accept` does, for example with too many
/// open files.
fn accept_new_clients(
    listener: &TcpListener,
    door: &Door,
    limits: Limits,
    clients: &mut Clients,
    sockets: &mut impl InterestList,
) -> io::Result<()> {
    loop {
        match listener.accept() {
            Ok((stream, peer)) => {
                let refusal = door.refusal(clients, peer);
                if refusal.is_some() && clients.turning_away() >= MAX_TURNING_AWAY {
                    log!("{peer}: dropped unanswered: {MAX_TURNING_AWAY} turned away already");
                    continue; // dropping `stream` closes it
                }
                let mut client = match Client::new(stream, peer, limits) {
                    Ok(client) => client,
                    Err(error) => {
                        log!("{peer}: cannot serve: {error}");
                        continue;
                    }
                };
                if let Some(why) = refusal {
                    client.refuse(&why);
                }
                if let Err(error) = clients.insert(client, sockets) {
                    log!("{peer}: cannot wait for its socket: {error}");
                }
            }
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(error) => return Err(error),
        }
    }
}
// ANCHOR_END: accept

// ANCHOR: memory_budget
/// Keeps what all the clients' buffers hold within [`MEMORY_BUDGET`]: while
/// they hold more, the client that holds the most (the one furthest behind,
/// or with the biggest unfinished message) is let go.
fn keep_within_memory_budget(clients: &mut Clients) {
    // Kept up to date as clients change: no need to add it all up again.
    let mut total = clients.memory();
    while total > MEMORY_BUDGET {
        // Only past the budget, which is rare, do we look at every client.
        // A client already let go holds little now, and is not let go twice.
        let candidates = clients.iter().filter(|(_, client)| client.can_be_shed());
        let Some((biggest, _)) = candidates.max_by_key(|(_, client)| client.memory()) else {
            return;
        };
        total -= clients[biggest].memory();
        clients[biggest].shed();
    }
}
// ANCHOR_END: memory_budget
