//! One chat over many servers: what this server tells the others, and
//! hears from them, through Redis.
//!
//! Each server still serves its own clients itself, as in the stages
//! before. What crosses between servers goes through one Redis *channel*,
//! `chat`: every server SUBSCRIBEs to it, and PUBLISHes there what happens
//! to its clients, as one JSON object per event, signed with the server's
//! id (so that a server skips its own events when Redis hands them back):
//!
//! | event | when |
//! |---|---|
//! | `{"type":"message","server":ID,"from":"ann","text":"hi"}` | a member of ours said something |
//! | `{"type":"join","server":ID,"name":"ann"}` | a client of ours joined |
//! | `{"type":"leave","server":ID,"name":"ann"}` | a member of ours left |
//! | `{"type":"members","server":ID,"names":[...],"hello":false}` | every [`HEARTBEAT`]: who is here; `"hello":true` once subscribed, asking the others for theirs |
//!
//! Names are unique across servers because each one is a Redis key,
//! `chat:name:ann` (lower case), holding the id of the server whose client
//! has it: `SET key ID NX PX 5000` claims it only if nobody has (`NX`),
//! for [`NAME_TTL`] (`PX`). The live server refreshes its names every
//! heartbeat; a server that dies without a word stops refreshing, and its
//! names are free again within [`NAME_TTL`]. The others stop hearing its
//! heartbeats, and after [`SERVER_TIMEOUT`] they tell their clients that
//! its users have left. A server that stops as it should (SIGTERM, Ctrl-C)
//! does not leave them waiting: it publishes its users' leaves and frees
//! their names before it exits (see [`Broker::shut_down`]).
//!
//! A subscribed connection may only (un)subscribe and ping (Redis refuses
//! anything else on it), so there are two connections: the *subscriber*,
//! which only listens, and *commands*, for PUBLISH, SET and the rest, whose
//! replies come back in the order the commands went. Both are nonblocking
//! sockets in the loop's interest list, beside the clients: the server is
//! now a client too.

use crate::interest::{Event, Interest, InterestList, Token};
use crate::json::{self, Value as Json};
use crate::resp::{self, Value};
use std::collections::{BTreeMap, VecDeque};
use std::hash::{BuildHasher, RandomState};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

// ANCHOR: timings
/// The channel all servers publish to and subscribe to.
const CHANNEL: &str = "chat";

/// The keys that hold the names: `chat:name:ann` holds the id of the
/// server whose client is called Ann.
const NAME_KEY_PREFIX: &str = "chat:name:";

/// How often a server says who is here and refreshes its names.
pub const HEARTBEAT: Duration = Duration::from_secs(1);

/// How long a name stays claimed without a refresh: how long the name of a
/// server that died stays taken, at most.
pub const NAME_TTL: Duration = Duration::from_secs(5);

/// How long a server may stay silent before the others count its users
/// gone. Five heartbeats: one late heartbeat is not a death.
pub const SERVER_TIMEOUT: Duration = Duration::from_secs(5);

/// The first wait before connecting again; it doubles at each failure.
const FIRST_RETRY: Duration = Duration::from_millis(100);

/// The longest wait between two attempts.
const MAX_RETRY: Duration = Duration::from_secs(5);

/// How long connecting may take, subscription included. A connect to a
/// machine that has vanished gets no answer at all, and the system would
/// keep trying for minutes.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// How long Redis may take to answer a command. A Redis that was stopped
/// (SIGSTOP, a frozen machine) keeps its connections open, and only the
/// silence says something is wrong: while up, a heartbeat asks something
/// every second, so a Redis that stops answering is noticed within this
/// and a heartbeat, and the claims that wait for it fail with a clear
/// reason instead of waiting for the join timeout.
const REPLY_TIMEOUT: Duration = Duration::from_secs(3);

/// How long the connections must stay up before we count Redis back for
/// good: only then does the next failure wait [`FIRST_RETRY`] again, and
/// are the clients told that the chat crosses servers again. A Redis that
/// accepts, subscribes us and drops us a moment later, again and again,
/// would otherwise be asked ten times a second, and every client told so
/// twice each time.
const STEADY_AFTER: Duration = SERVER_TIMEOUT;
// ANCHOR_END: timings

/// The most bytes we read from one connection in one turn, as for clients.
const MAX_READ_PER_TURN: usize = 256 * 1024;

/// The most bytes one read takes, as for clients.
const READ_SIZE: usize = 16 * 1024;

/// The most bytes we keep for Redis that its socket has not taken: past
/// this, Redis is not keeping up, and we start again rather than hold more.
const MAX_UNSENT_BYTES: usize = 8 * 1024 * 1024;

/// The most bytes we keep from Redis that are not a whole value yet: the
/// longest value we accept (a bulk string of [`resp::MAX_BULK_LEN`] inside
/// a message) and room for its headers. A value that goes on past this is
/// not one Redis would send us: the link has failed, and we start again
/// rather than hold more.
const MAX_UNPARSED_BYTES: usize = resp::MAX_BULK_LEN + 64 * 1024;

// ANCHOR: news
/// What the chat must act on, from the other servers or about them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum News {
    /// A member of another server said something.
    Message { from: String, text: String },
    /// Someone joined on another server.
    Joined(String),
    /// Someone on another server left, or their server went silent.
    Left(String),
    /// The answer to [`Broker::claim`].
    Claim {
        token: Token,
        claim: u64,
        name: String,
        outcome: ClaimOutcome,
    },
    /// The chat crosses servers again: the link has held for
    /// [`STEADY_AFTER`] since a [`News::Disconnected`].
    Connected,
    /// Redis went away: the chat stops at this server's door for now. Once
    /// until the next [`News::Connected`], however often the link drops.
    Disconnected(String),
}

/// Whether a name is ours now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimOutcome {
    Granted,
    /// A client of some server has it.
    Taken,
    /// Redis could not say: it went away, or refused the command.
    Failed(String),
}
// ANCHOR_END: news

// ANCHOR: broker
/// This server's side of the chat across servers: see the top of the file.
pub struct Broker {
    /// Where Redis is.
    address: SocketAddr,
    /// This server's id, on every event it publishes and every name it holds.
    id: String,
    /// The connection that only listens to the channel.
    subscriber: Link,
    /// The connection for commands, whose replies come back in order.
    commands: Link,
    state: State,
    /// What each reply on `commands` answers, oldest first.
    waiting: VecDeque<Awaited>,
    /// Our members, in the order they joined, as the others should know them.
    members: Vec<String>,
    /// The other servers we hear from, by id.
    servers: BTreeMap<String, Server>,
    /// News waiting for the chat.
    news: Vec<News>,
    /// The number of the next claim.
    next_claim: u64,
    /// Events we could not publish since Redis went away.
    unsent_events: usize,
    /// The clients were told that the other servers are out of reach, and
    /// not yet that they are back (see [`STEADY_AFTER`]).
    told_out_of_reach: bool,
    /// The server is stopping: no heartbeat, no new attempt to connect.
    stopping: bool,
}

/// Where the connections to Redis are.
enum State {
    /// Not connected: we try again at `retry_at`, having waited `backoff`.
    Down {
        retry_at: Instant,
        backoff: Duration,
    },
    /// On their way, until `deadline`; subscribed once `subscribed`.
    Connecting {
        deadline: Instant,
        backoff: Duration,
        subscribed: bool,
    },
    /// Both connected, subscribed: the chat crosses servers. Up `since`,
    /// after waiting `backoff`: it counts again if Redis drops us before
    /// [`STEADY_AFTER`].
    Up {
        next_heartbeat: Instant,
        since: Instant,
        backoff: Duration,
    },
}

/// A command sent on `commands`, waiting for its reply.
struct Awaited {
    reply: Reply,
    /// When we asked: Redis must have answered by [`REPLY_TIMEOUT`] later.
    asked: Instant,
    /// Where its last byte is in all we gave `commands` to send: it has
    /// left once `commands.sent` reaches it (see [`Broker::go_down`]).
    end: u64,
}

/// What a reply on `commands` answers.
enum Reply {
    /// `SET name NX PX`, for a client who wants the name.
    Claim {
        token: Token,
        claim: u64,
        name: String,
    },
    /// `PEXPIRE name`: still ours?
    Refresh { name: String },
    /// `SET name NX PX` again, for a member whose key Redis lost.
    Reclaim { name: String },
    /// [`RELEASE`]: the name was ours, and is free now?
    Release { name: String },
    /// PUBLISH: nothing to do with the answer.
    Nothing,
}

/// Another server, as we know it from what it publishes.
struct Server {
    /// Its members, in the order we heard of them.
    members: Vec<String>,
    last_heard: Instant,
}
// ANCHOR_END: broker

impl Broker {
    // ANCHOR: new
    /// A broker for Redis at `address`, not connected yet: the first turn
    /// starts connecting. Its two sockets will carry `tokens` in the
    /// interest list.
    pub fn new(address: SocketAddr, tokens: [Token; 2]) -> Broker {
        let id = new_server_id();
        log!("redis: this server is {id}; Redis is at {address}");
        Broker {
            address,
            id,
            subscriber: Link::new("subscriber", tokens[0]),
            commands: Link::new("commands", tokens[1]),
            state: State::Down {
                retry_at: Instant::now(),
                backoff: Duration::ZERO,
            },
            waiting: VecDeque::new(),
            members: Vec::new(),
            servers: BTreeMap::new(),
            news: Vec::new(),
            next_claim: 0,
            unsent_events: 0,
            told_out_of_reach: false,
            stopping: false,
        }
    }
    // ANCHOR_END: new

    /// Whether an event of the interest list is for one of our sockets.
    pub fn owns(&self, token: Token) -> bool {
        token == self.subscriber.token || token == self.commands.token
    }

    /// Whether the chat crosses servers right now.
    pub fn is_up(&self) -> bool {
        matches!(self.state, State::Up { .. })
    }

    // ANCHOR: shut_down
    /// The server is stopping: every member of ours leaves the chat on the
    /// other servers now, and its name is free at once, instead of after
    /// [`SERVER_TIMEOUT`] and [`NAME_TTL`]. The loop waits for Redis's
    /// answers (see [`Broker::is_idle`]) before it exits. While Redis is
    /// away, nothing can be said: the others time us out as if we had died.
    pub fn shut_down(&mut self) {
        self.stopping = true;
        let members = self.members.clone();
        log!("redis: saying goodbye for {} users", members.len());
        for name in members {
            self.left(&name);
        }
    }

    /// Whether the server is stopping (see [`Broker::shut_down`]).
    pub fn is_stopping(&self) -> bool {
        self.stopping
    }

    /// Whether Redis has answered every command we sent: then what we
    /// published has reached the other servers, and the names are free.
    pub fn is_idle(&self) -> bool {
        self.waiting.is_empty()
    }
    // ANCHOR_END: shut_down

    // ANCHOR: next_deadline
    /// When the loop must wake up for us, ready or not: to connect again,
    /// to give up connecting, for the next heartbeat, to count a silent
    /// server gone, to give up on a Redis that does not answer, or at once
    /// if there is news.
    pub fn next_deadline(&self) -> Option<Instant> {
        if !self.news.is_empty() {
            return Some(Instant::now());
        }
        // The oldest command is answered first: its deadline is the first.
        let reply_due = self
            .waiting
            .front()
            .map(|awaited| awaited.asked + REPLY_TIMEOUT);
        if self.stopping {
            return reply_due; // only the answers to our goodbyes matter now
        }
        let own = match self.state {
            State::Down { retry_at, .. } => retry_at,
            State::Connecting { deadline, .. } => deadline,
            State::Up { next_heartbeat, .. } => next_heartbeat,
        };
        let silences = self
            .servers
            .values()
            .map(|server| server.last_heard + SERVER_TIMEOUT);
        silences.chain([own]).chain(reply_due).min()
    }
    // ANCHOR_END: next_deadline

    // ANCHOR: turn
    /// One turn of the loop: reads what our sockets have (the `ready`
    /// events that are ours), acts on the clock, and returns the news.
    pub fn turn(&mut self, ready: &[Event], sockets: &mut impl InterestList) -> Vec<News> {
        let is_ready = |token| ready.iter().any(|event| event.token == token);
        let commands_ready = is_ready(self.commands.token);
        // The subscriber first, and even when only `commands` is ready: an
        // event published before we sent a command was pushed to us before
        // its reply, so a welcome lists who joined on another server just
        // before. (A read with nothing there costs one `WouldBlock`.)
        let subscriber_ready =
            is_ready(self.subscriber.token) || (commands_ready && self.subscriber.connected);
        let order = [
            (subscriber_ready, self.subscriber.token),
            (commands_ready, self.commands.token),
        ];
        for (_, token) in order.into_iter().filter(|&(ready, _)| ready) {
            if let Err(error) = self.on_ready(token) {
                self.go_down(&error.to_string(), sockets);
                break;
            }
        }
        let now = Instant::now();
        let oldest = self.waiting.front().map(|awaited| awaited.asked);
        if oldest.is_some_and(|asked| now >= asked + REPLY_TIMEOUT) {
            self.go_down("Redis stopped answering", sockets);
        }
        if self.stopping {
            return std::mem::take(&mut self.news);
        }
        self.forget_silent_servers(now);
        match self.state {
            State::Down { retry_at, backoff } if now >= retry_at => {
                self.start_connecting(backoff, sockets);
            }
            State::Connecting { deadline, .. } if now >= deadline => {
                self.go_down("took too long to connect", sockets);
            }
            State::Up { next_heartbeat, .. } if now >= next_heartbeat => self.heartbeat(now),
            _ => {}
        }
        std::mem::take(&mut self.news)
    }

    /// Writes what waits for Redis, at the end of the turn.
    pub fn end_turn(&mut self, sockets: &mut impl InterestList) {
        let flushed = self.commands.flush(sockets);
        let flushed = flushed.and_then(|()| self.subscriber.flush(sockets));
        if let Err(error) = flushed {
            self.go_down(&error.to_string(), sockets);
        }
    }
    // ANCHOR_END: turn

    // ANCHOR: connect
    /// Starts both connections, without waiting for either.
    fn start_connecting(&mut self, backoff: Duration, sockets: &mut impl InterestList) {
        let started = self.subscriber.start(self.address, sockets);
        let started = started.and_then(|()| self.commands.start(self.address, sockets));
        self.state = State::Connecting {
            deadline: Instant::now() + CONNECT_TIMEOUT,
            backoff,
            subscribed: false,
        };
        if let Err(error) = started {
            self.go_down(&format!("cannot connect: {error}"), sockets);
        }
    }

    /// Both connections closed, what waited for them failed, and a next
    /// attempt later: each failure in a row waits twice as long as the one
    /// before, up to [`MAX_RETRY`], so that a Redis that is down is not
    /// asked a thousand times a second; and a random part of it less, so
    /// that servers that lost Redis together do not all come back at the
    /// same instant, and again at the next, in lock-step. Being up counts
    /// as a success only after [`STEADY_AFTER`]: a link dropped sooner is
    /// one more failure in the row.
    fn go_down(&mut self, reason: &str, sockets: &mut impl InterestList) {
        // What is still in `commands`'s output never left: those events
        // never reached the other servers. (One that left but was not
        // answered may have: Redis may have passed it on, then gone.)
        let sent = self.commands.sent;
        for awaited in std::mem::take(&mut self.waiting) {
            match awaited.reply {
                Reply::Claim { token, claim, name } => {
                    let outcome = ClaimOutcome::Failed("lost contact with Redis".to_string());
                    self.news.push(News::Claim {
                        token,
                        claim,
                        name,
                        outcome,
                    });
                }
                Reply::Nothing if awaited.end > sent => self.unsent_events += 1,
                _ => {}
            }
        }
        self.subscriber.close(sockets);
        self.commands.close(sockets);
        let now = Instant::now();
        let backoff = match self.state {
            State::Up { since, .. } if now >= since + STEADY_AFTER => FIRST_RETRY,
            State::Up { backoff, .. }
            | State::Connecting { backoff, .. }
            | State::Down { backoff, .. } => (backoff * 2).clamp(FIRST_RETRY, MAX_RETRY),
        };
        // The clients hear of it once, not at each drop of a Redis that
        // keeps dropping us: they were told it is back only once it had
        // stayed up (see `heartbeat`).
        if self.is_up() && !self.told_out_of_reach {
            self.told_out_of_reach = true;
            self.news.push(News::Disconnected(reason.to_string()));
        }
        // Between half of `backoff` and all of it ("equal jitter"). A new
        // `RandomState` is seeded anew: std's own random numbers.
        let random = RandomState::new().hash_one(()) % 1024;
        let wait = backoff.mul_f64(0.5 + random as f64 / 2048.0);
        log!("redis: {reason}; trying again in {wait:.0?}");
        self.state = State::Down {
            retry_at: now + wait,
            backoff,
        };
    }
    // ANCHOR_END: connect

    // ANCHOR: on_ready
    /// One of our sockets is ready: a connect is over, or there is a reply
    /// or a message to read.
    fn on_ready(&mut self, token: Token) -> io::Result<()> {
        if matches!(self.state, State::Down { .. }) {
            return Ok(()); // closed earlier this turn
        }
        if token == self.subscriber.token {
            let (just_connected, values) = self.subscriber.on_ready()?;
            if just_connected {
                self.subscriber
                    .queue(&resp::command(&["SUBSCRIBE", CHANNEL]));
            }
            for value in values {
                self.on_push(value)?;
            }
        } else {
            let (just_connected, values) = self.commands.on_ready()?;
            if just_connected {
                self.become_up_if_ready();
            }
            for value in values {
                self.on_reply(value)?;
            }
        }
        Ok(())
    }
    // ANCHOR_END: on_ready

    // ANCHOR: become_up
    /// Up once subscribed and able to send commands: tell the others who
    /// is here, ask for theirs, and refresh (or claim again) our names,
    /// which a Redis that restarted no longer has.
    fn become_up_if_ready(&mut self) {
        let State::Connecting {
            subscribed,
            backoff,
            ..
        } = self.state
        else {
            return;
        };
        if !(subscribed && self.commands.connected) {
            return;
        }
        let now = Instant::now();
        self.state = State::Up {
            next_heartbeat: now,
            since: now,
            backoff,
        };
        log!("redis: subscribed to {CHANNEL:?}; the chat crosses servers");
        if self.unsent_events > 0 {
            let count = std::mem::take(&mut self.unsent_events);
            let events = if count == 1 { "event" } else { "events" };
            log!("redis: {count} {events} of ours never reached the other servers");
        }
        self.publish_members(true);
        self.heartbeat(now);
    }
    // ANCHOR_END: become_up

    // ANCHOR: on_push
    /// A value on the subscriber: the confirmation of our SUBSCRIBE, or a
    /// message published on the channel.
    fn on_push(&mut self, value: Value) -> io::Result<()> {
        let Value::Array(parts) = value else {
            return Err(protocol_error(format!("the subscriber got {value:?}")));
        };
        match parts.first().and_then(Value::as_text) {
            Some("subscribe") => {
                if let State::Connecting { subscribed, .. } = &mut self.state {
                    *subscribed = true;
                }
                self.become_up_if_ready();
            }
            Some("message") => match parts.get(2) {
                Some(Value::Bulk(payload)) => self.on_event(payload),
                _ => {
                    return Err(protocol_error(format!(
                        "a message without payload: {parts:?}"
                    )));
                }
            },
            _ => log!("redis: the subscriber got {parts:?}; ignored"),
        }
        Ok(())
    }
    // ANCHOR_END: on_push

    // ANCHOR: on_reply
    /// A reply on `commands`: it answers the oldest command not answered.
    fn on_reply(&mut self, value: Value) -> io::Result<()> {
        let Some(Awaited { reply, .. }) = self.waiting.pop_front() else {
            return Err(protocol_error(format!("a reply to no command: {value:?}")));
        };
        match (reply, value) {
            (Reply::Claim { token, claim, name }, value) => {
                let outcome = match value {
                    Value::Simple(ok) if ok == "OK" => ClaimOutcome::Granted,
                    Value::Null => ClaimOutcome::Taken,
                    other => ClaimOutcome::Failed(format!("Redis answered {other:?}")),
                };
                self.news.push(News::Claim {
                    token,
                    claim,
                    name,
                    outcome,
                });
            }
            // The key is gone: Redis restarted, or we were away longer than
            // its time to live. Claim it again.
            (Reply::Refresh { name }, Value::Integer(0)) => {
                let command = claim_command(&self.id, &name);
                self.send(
                    &command.each_ref().map(String::as_str),
                    Reply::Reclaim { name },
                );
            }
            (Reply::Release { name }, Value::Integer(0)) => {
                // Another server's client holds it now (we were away longer
                // than its time to live): not ours to free.
                log!("redis: the name {name:?} was not ours any more; left as it is");
            }
            (Reply::Reclaim { name }, Value::Null) => {
                // Someone claimed it while we could not refresh it: while
                // Redis was away from us, but not from them. Two people
                // have that name now; we only say so.
                log!("redis: the name {name:?} was claimed elsewhere while we were away");
            }
            (_, Value::Error(error)) => log!("redis: a command failed: {error}"),
            _ => {}
        }
        Ok(())
    }
    // ANCHOR_END: on_reply

    // ANCHOR: on_event
    /// An event another server published (or we did: Redis sends our own
    /// back to us too, and we skip them, having told our clients already).
    fn on_event(&mut self, payload: &[u8]) {
        let Some(event) = std::str::from_utf8(payload)
            .ok()
            .and_then(|text| json::parse(text).ok())
        else {
            return log!("redis: an event that is not JSON; ignored");
        };
        let text = |key| event.get(key).and_then(Json::as_str);
        let Some(server_id) = text("server") else {
            return log!("redis: an event without a server; ignored");
        };
        if server_id == self.id {
            return;
        }
        let server = self
            .servers
            .entry(server_id.to_string())
            .or_insert_with(|| {
                log!("redis: hearing from server {server_id}");
                Server {
                    members: Vec::new(),
                    last_heard: Instant::now(),
                }
            });
        server.last_heard = Instant::now();
        match (text("type"), text("name")) {
            (Some("message"), _) => {
                if let (Some(from), Some(said)) = (text("from"), text("text")) {
                    let (from, text) = (from.to_string(), said.to_string());
                    self.news.push(News::Message { from, text });
                }
            }
            (Some("join"), Some(name)) => add_member(server, name, &mut self.news),
            (Some("leave"), Some(name)) => remove_member(server, name, &mut self.news),
            (Some("members"), _) => {
                let names = event.get("names").map(strings).unwrap_or_default();
                update_members(server, &names, &mut self.news);
                if event.get("hello") == Some(&Json::Bool(true)) {
                    self.publish_members(false);
                }
            }
            _ => log!("redis: an event we do not know; ignored"),
        }
    }
    // ANCHOR_END: on_event

    // ANCHOR: heartbeat
    /// Every [`HEARTBEAT`]: who is here, for the others, and our names
    /// kept for another [`NAME_TTL`]. And once Redis has stayed up for
    /// [`STEADY_AFTER`], the clients told it was out of reach hear that it
    /// is back: up to a heartbeat late, and once, however often it dropped
    /// us before.
    fn heartbeat(&mut self, now: Instant) {
        self.publish_members(false);
        let ttl = NAME_TTL.as_millis().to_string();
        for name in self.members.clone() {
            let key = name_key(&name);
            self.send(&["PEXPIRE", &key, &ttl], Reply::Refresh { name });
        }
        if let State::Up {
            next_heartbeat,
            since,
            ..
        } = &mut self.state
        {
            *next_heartbeat = now + HEARTBEAT;
            if self.told_out_of_reach && now >= *since + STEADY_AFTER {
                self.told_out_of_reach = false;
                self.news.push(News::Connected);
            }
        }
    }

    /// The others count a server gone when it has been silent for
    /// [`SERVER_TIMEOUT`], and its users with it. So do we when Redis is
    /// away from us: we cannot reach them either.
    fn forget_silent_servers(&mut self, now: Instant) {
        let silent: Vec<String> = self
            .servers
            .iter()
            .filter(|(_, server)| now >= server.last_heard + SERVER_TIMEOUT)
            .map(|(id, _)| id.clone())
            .collect();
        for id in silent {
            let server = self.servers.remove(&id).expect("just found");
            log!(
                "redis: server {id} silent for {SERVER_TIMEOUT:?}: its {} users are gone",
                server.members.len()
            );
            let departures = server.members.into_iter().map(News::Left);
            self.news.extend(departures);
        }
    }
    // ANCHOR_END: heartbeat

    // ANCHOR: claim
    /// Asks Redis for `name`, for the client `token`: the answer comes as
    /// [`News::Claim`] with the number returned here, a later turn. Only
    /// while [`Broker::is_up`].
    pub fn claim(&mut self, name: &str, token: Token) -> u64 {
        let claim = self.next_claim;
        self.next_claim += 1;
        let command = claim_command(&self.id, name);
        let name = name.to_string();
        let reply = Reply::Claim { token, claim, name };
        self.send(&command.each_ref().map(String::as_str), reply);
        claim
    }

    /// Whether a member of another server has this name (compared as
    /// [`crate::chat`] compares names: without regard to case).
    pub fn is_taken(&self, name: &str) -> bool {
        let wanted = name.to_lowercase();
        self.remote_members()
            .any(|taken| taken.to_lowercase() == wanted)
    }

    /// The members of the other servers we hear from.
    pub fn remote_members(&self) -> impl Iterator<Item = &str> {
        let servers = self.servers.values();
        servers.flat_map(|server| server.members.iter().map(String::as_str))
    }
    // ANCHOR_END: claim

    // ANCHOR: publish
    /// A client of ours joined as `name`, which we claimed.
    pub fn joined(&mut self, name: &str) {
        self.members.push(name.to_string());
        self.publish(&[("type", "join"), ("name", name)]);
    }

    /// A member of ours said something.
    pub fn said(&mut self, from: &str, text: &str) {
        self.publish(&[("type", "message"), ("from", from), ("text", text)]);
    }

    /// A member of ours left: its name is free.
    pub fn left(&mut self, name: &str) {
        self.members.retain(|member| member != name);
        self.publish(&[("type", "leave"), ("name", name)]);
        self.release(name);
    }

    /// A name we claimed and nobody uses: free it now rather than when it
    /// expires, if it is still ours (see [`RELEASE`]).
    pub fn release(&mut self, name: &str) {
        if self.is_up() {
            let (key, id) = (name_key(name), self.id.clone());
            let name = name.to_string();
            self.send(&["EVAL", RELEASE, "1", &key, &id], Reply::Release { name });
        }
    }

    /// Publishes one event, signed with our id; or, while Redis is away,
    /// counts it lost: nobody else will ever hear of it.
    fn publish(&mut self, fields: &[(&str, &str)]) {
        let fields = fields.iter().map(|&(key, value)| (key, Json::from(value)));
        let event = Json::object(
            [("server", Json::from(self.id.as_str()))]
                .into_iter()
                .chain(fields),
        );
        self.publish_json(&event);
    }

    fn publish_members(&mut self, hello: bool) {
        let names = self.members.iter().map(|name| Json::from(name.as_str()));
        let event = Json::object([
            ("type", Json::from("members")),
            ("server", Json::from(self.id.as_str())),
            ("names", Json::Array(names.collect())),
            ("hello", Json::Bool(hello)),
        ]);
        self.publish_json(&event);
    }

    fn publish_json(&mut self, event: &Json) {
        if !self.is_up() {
            self.unsent_events += 1;
            return;
        }
        let payload = json::encode(event);
        self.send(&["PUBLISH", CHANNEL, &payload], Reply::Nothing);
    }

    /// Queues a command on `commands`, and what its reply answers.
    fn send(&mut self, parts: &[&str], reply: Reply) {
        self.commands.queue(&resp::command(parts));
        self.waiting.push_back(Awaited {
            reply,
            asked: Instant::now(),
            end: self.commands.queued,
        });
    }
    // ANCHOR_END: publish
}

// ANCHOR: members
/// Someone joined on `server`: news, unless we knew already.
fn add_member(server: &mut Server, name: &str, news: &mut Vec<News>) {
    if !server.members.iter().any(|member| member == name) {
        server.members.push(name.to_string());
        news.push(News::Joined(name.to_string()));
    }
}

/// Someone left `server`: news, unless we knew already.
fn remove_member(server: &mut Server, name: &str, news: &mut Vec<News>) {
    if let Some(index) = server.members.iter().position(|member| member == name) {
        server.members.remove(index);
        news.push(News::Left(name.to_string()));
    }
}

/// `server` says who is here: whoever we did not know of joined, whoever
/// it no longer names left. The joins and leaves it published come first,
/// on the same connection, so this finds nothing new unless one was lost
/// (published while we were away) or we have just started to hear it.
fn update_members(server: &mut Server, names: &[String], news: &mut Vec<News>) {
    for gone in server.members.clone() {
        if !names.contains(&gone) {
            remove_member(server, &gone, news);
        }
    }
    for name in names {
        add_member(server, name, news);
    }
}
// ANCHOR_END: members

/// The strings of a JSON array.
fn strings(value: &Json) -> Vec<String> {
    match value {
        Json::Array(items) => items
            .iter()
            .filter_map(|item| item.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

// ANCHOR: keys
/// The key that holds a name: lower case, as names are compared.
fn name_key(name: &str) -> String {
    format!("{NAME_KEY_PREFIX}{}", name.to_lowercase())
}

/// `SET chat:name:ann ID NX PX 5000`: the name is ours for [`NAME_TTL`],
/// unless someone has it.
fn claim_command(id: &str, name: &str) -> [String; 6] {
    let ttl = NAME_TTL.as_millis().to_string();
    ["SET", &name_key(name), id, "NX", "PX", &ttl].map(str::to_string)
}

// ANCHOR: release
/// Frees a name only if it holds our id: a plain `DEL` would also free a
/// name that another server's client took while we were away from Redis
/// longer than [`NAME_TTL`]. A `GET` then a `DEL` from here would leave a
/// gap between the two for another server to claim it in; Redis runs a
/// script whole, with no other command in between. `KEYS[1]` is the key,
/// `ARGV[1]` our id; it answers 1 if it deleted the key, 0 if not.
pub const RELEASE: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then \
                       return redis.call('DEL', KEYS[1]) else return 0 end";
// ANCHOR_END: release

/// The address of Redis, `HOST:PORT`, looked up once, when the server
/// starts: a name lookup waits, and the loop must not.
pub fn resolve(host_and_port: &str) -> io::Result<SocketAddr> {
    let found = host_and_port.to_socket_addrs()?.next();
    found.ok_or_else(|| {
        let problem = format!("Redis at {host_and_port}: the name has no address");
        io::Error::new(io::ErrorKind::NotFound, problem)
    })
}

/// An id no other server has: this process, the time it started, and a
/// count (the tests start several servers in one process).
fn new_server_id() -> String {
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let count = COUNT.fetch_add(1, Ordering::Relaxed);
    let since_1970 = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let micros = since_1970.as_micros() % 1_000_000_000_000;
    format!("{:x}-{micros:x}-{count}", std::process::id())
}
// ANCHOR_END: keys

fn protocol_error(text: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, text)
}

// ANCHOR: link
/// One connection to Redis: its socket, once started, and its buffers.
struct Link {
    /// `subscriber` or `commands`, for the log.
    name: &'static str,
    token: Token,
    stream: Option<TcpStream>,
    /// The connect is over, and went well.
    connected: bool,
    /// What the interest list waits for on the socket.
    interest: Interest,
    /// Bytes that arrived and are not a whole value yet.
    input: Vec<u8>,
    /// Bytes for Redis that its socket has not taken yet.
    output: Vec<u8>,
    /// How many bytes we gave it to send, and how many its socket took,
    /// since it connected: what lies between is still in `output`.
    queued: u64,
    sent: u64,
}

impl Link {
    fn new(name: &'static str, token: Token) -> Link {
        Link {
            name,
            token,
            stream: None,
            connected: false,
            interest: Interest::NONE,
            input: Vec::new(),
            output: Vec::new(),
            queued: 0,
            sent: 0,
        }
    }

    /// Starts connecting, and waits for the socket to become writable: that
    /// is how a nonblocking connect says it is over.
    fn start(&mut self, address: SocketAddr, sockets: &mut impl InterestList) -> io::Result<()> {
        let stream = connect_without_waiting(address)?;
        let interest = Interest {
            read: false,
            write: true,
        };
        sockets.add(stream.as_fd(), self.token, interest)?;
        self.stream = Some(stream);
        self.interest = interest;
        Ok(())
    }

    /// The socket is ready. If it was connecting, the connect is over: did
    /// it work? Then reads what has come, and returns whether it has just
    /// connected, and every whole value read. More than
    /// [`MAX_UNPARSED_BYTES`] left over that is not a whole value is an
    /// error: Redis never sends one that long, and we would hold it all.
    /// (An unfinished value is parsed again from its start at each read,
    /// and the whole bulk strings of an unfinished array copied again: this
    /// limit bounds that work too, to a few megabytes a read.)
    fn on_ready(&mut self) -> io::Result<(bool, Vec<Value>)> {
        let Some(stream) = &mut self.stream else {
            return Ok((false, Vec::new()));
        };
        let mut just_connected = false;
        if !self.connected {
            if let Some(error) = stream.take_error()? {
                return Err(io::Error::new(
                    error.kind(),
                    format!("cannot connect: {error}"),
                ));
            }
            stream.peer_addr()?; // `NotConnected` if it is not, after all
            stream.set_nodelay(true)?;
            log!("redis: {} connected", self.name);
            self.connected = true;
            just_connected = true;
        }
        read_available(stream, &mut self.input)?;
        let mut values = Vec::new();
        let mut used = 0;
        while let Some((value, len)) = resp::parse(&self.input[used..])
            .map_err(|error| protocol_error(format!("not RESP: {error}")))?
        {
            values.push(value);
            used += len;
        }
        self.input.drain(..used);
        if self.input.len() > MAX_UNPARSED_BYTES {
            return Err(protocol_error(format!(
                "Redis sent over {MAX_UNPARSED_BYTES} bytes that are not a whole value yet"
            )));
        }
        Ok((just_connected, values))
    }

    fn queue(&mut self, bytes: &[u8]) {
        self.output.extend_from_slice(bytes);
        self.queued += bytes.len() as u64;
    }

    /// Writes what the socket takes without waiting, then waits for what
    /// is needed next: to read, and to write if output is left.
    fn flush(&mut self, sockets: &mut impl InterestList) -> io::Result<()> {
        let Some(stream) = &mut self.stream else {
            return Ok(());
        };
        if !self.connected {
            return Ok(()); // still waiting for the connect
        }
        while !self.output.is_empty() {
            match stream.write(&self.output) {
                Ok(count) => {
                    self.output.drain(..count);
                    self.sent += count as u64;
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
        }
        if self.output.len() > MAX_UNSENT_BYTES {
            let unsent = self.output.len();
            return Err(io::Error::other(format!(
                "Redis is not reading: {unsent} bytes unsent"
            )));
        }
        let interest = Interest {
            read: true,
            write: !self.output.is_empty(),
        };
        if interest != self.interest {
            sockets.modify(stream.as_fd(), self.token, interest)?;
            self.interest = interest;
        }
        Ok(())
    }

    /// Closes the socket, after taking it off the interest list, and forgets
    /// what was on its way either way.
    fn close(&mut self, sockets: &mut impl InterestList) {
        if let Some(stream) = self.stream.take() {
            let _ = sockets.delete(stream.as_fd());
        }
        self.connected = false;
        self.interest = Interest::NONE;
        self.input.clear();
        self.output.clear();
        (self.queued, self.sent) = (0, 0);
    }
}
// ANCHOR_END: link

/// Reads, without waiting, what Redis has sent (up to a limit a turn).
fn read_available(stream: &mut TcpStream, input: &mut Vec<u8>) -> io::Result<()> {
    let mut buffer = [0; READ_SIZE];
    let mut received = 0;
    while received < MAX_READ_PER_TURN {
        match stream.read(&mut buffer) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "Redis hung up",
                ));
            }
            Ok(count) => {
                input.extend_from_slice(&buffer[..count]);
                received += count;
            }
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

// ANCHOR: connect_without_waiting
/// Starts a connection to `address`; it is over when the socket is writable.
#[cfg(target_os = "linux")]
fn connect_without_waiting(address: SocketAddr) -> io::Result<TcpStream> {
    crate::socket::start_connect(address)
}

/// Elsewhere, std's connect, which waits: Redis on another machine that
/// does not answer would hold up every client meanwhile (see the chapter).
#[cfg(not(target_os = "linux"))]
fn connect_without_waiting(address: SocketAddr) -> io::Result<TcpStream> {
    let stream = TcpStream::connect_timeout(&address, Duration::from_millis(200))?;
    stream.set_nonblocking(true)?;
    Ok(stream)
}
// ANCHOR_END: connect_without_waiting

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::BorrowedFd;

    fn server() -> Server {
        Server {
            members: vec!["ann".to_string(), "bob".to_string()],
            last_heard: Instant::now(),
        }
    }

    #[test]
    fn a_list_of_members_is_news_only_where_it_differs() {
        let mut server = server();
        let mut news = Vec::new();
        let names = ["bob", "cy"].map(str::to_string);
        update_members(&mut server, &names, &mut news);
        assert_eq!(
            news,
            [
                News::Left("ann".to_string()),
                News::Joined("cy".to_string())
            ]
        );
        news.clear();
        update_members(&mut server, &names, &mut news);
        assert_eq!(news, []);
    }

    #[test]
    fn a_join_or_leave_heard_twice_is_news_once() {
        let mut server = server();
        let mut news = Vec::new();
        add_member(&mut server, "ann", &mut news);
        add_member(&mut server, "cy", &mut news);
        add_member(&mut server, "cy", &mut news);
        remove_member(&mut server, "bob", &mut news);
        remove_member(&mut server, "bob", &mut news);
        assert_eq!(
            news,
            [
                News::Joined("cy".to_string()),
                News::Left("bob".to_string())
            ]
        );
    }

    #[test]
    fn a_claim_is_a_set_if_nobody_has_it_that_expires() {
        let command = claim_command("a1", "Zoë");
        assert_eq!(command, ["SET", "chat:name:zoë", "a1", "NX", "PX", "5000"]);
    }

    #[test]
    fn server_ids_differ_even_in_one_process() {
        assert_ne!(new_server_id(), new_server_id());
    }

    /// An interest list for a broker whose links hold no socket.
    struct NoSockets;

    impl InterestList for NoSockets {
        fn add(&mut self, _: BorrowedFd, _: Token, _: Interest) -> io::Result<()> {
            Ok(())
        }
        fn modify(&mut self, _: BorrowedFd, _: Token, _: Interest) -> io::Result<()> {
            Ok(())
        }
        fn delete(&mut self, _: BorrowedFd) -> io::Result<()> {
            Ok(())
        }
        fn wait(&mut self, _: &mut Vec<Event>, _: Option<Duration>) -> io::Result<()> {
            Ok(())
        }
    }

    /// A broker that is up since `since`, without sockets (what it sends
    /// stays in `commands`'s output), and no heartbeat due for an hour.
    fn broker_up_since(since: Instant) -> Broker {
        let mut broker = Broker::new("127.0.0.1:1".parse().unwrap(), [1, 2]);
        broker.state = State::Up {
            next_heartbeat: Instant::now() + Duration::from_secs(3600),
            since,
            backoff: FIRST_RETRY,
        };
        broker
    }

    fn backoff(broker: &Broker) -> Duration {
        match broker.state {
            State::Down { backoff, .. } => backoff,
            _ => panic!("not down"),
        }
    }

    #[test]
    fn events_still_queued_when_redis_goes_are_counted_lost() {
        let mut broker = broker_up_since(Instant::now());
        broker.said("ann", "one");
        broker.said("ann", "two");
        // The first left, the second did not.
        broker.commands.sent = broker.waiting[0].end;
        broker.go_down("test", &mut NoSockets);
        assert_eq!(broker.unsent_events, 1);
        broker.said("ann", "three"); // and one said while Redis is away
        assert_eq!(broker.unsent_events, 2);
    }

    #[test]
    fn a_redis_that_stops_answering_is_given_up_on() {
        let mut broker = broker_up_since(Instant::now());
        let claim = broker.claim("ann", 7);
        let asked = broker.waiting[0].asked;
        assert_eq!(broker.next_deadline(), Some(asked + REPLY_TIMEOUT));
        assert!(broker.turn(&[], &mut NoSockets).is_empty(), "not yet");
        broker.waiting[0].asked = Instant::now() - REPLY_TIMEOUT;
        let news = broker.turn(&[], &mut NoSockets);
        assert!(!broker.is_up());
        assert_eq!(
            news,
            [
                News::Claim {
                    token: 7,
                    claim,
                    name: "ann".to_string(),
                    outcome: ClaimOutcome::Failed("lost contact with Redis".to_string()),
                },
                News::Disconnected("Redis stopped answering".to_string()),
            ]
        );
    }

    #[test]
    fn a_link_that_keeps_dropping_backs_off_and_is_told_once() {
        let mut broker = broker_up_since(Instant::now());
        broker.go_down("dropped", &mut NoSockets);
        assert_eq!(backoff(&broker), 2 * FIRST_RETRY, "brief: one more failure");
        assert_eq!(broker.news.len(), 1, "out of reach");
        broker.news.clear();
        // Up again, briefly: nothing to tell, and it doubles again.
        broker.state = State::Up {
            next_heartbeat: Instant::now(),
            since: Instant::now(),
            backoff: 2 * FIRST_RETRY,
        };
        broker.heartbeat(Instant::now());
        broker.go_down("dropped", &mut NoSockets);
        assert_eq!(backoff(&broker), 4 * FIRST_RETRY);
        assert_eq!(broker.news, []);
        // Up for long enough: back, once, and the next failure is the first.
        let long_ago = Instant::now() - STEADY_AFTER;
        broker.state = State::Up {
            next_heartbeat: Instant::now(),
            since: long_ago,
            backoff: 4 * FIRST_RETRY,
        };
        broker.heartbeat(Instant::now());
        broker.heartbeat(Instant::now());
        assert_eq!(broker.news, [News::Connected]);
        broker.go_down("dropped", &mut NoSockets);
        assert_eq!(backoff(&broker), FIRST_RETRY);
    }

    /// Redis never sends a value that does not end, nor one this long: a
    /// fake Redis (a socket we write to ourselves) has to. An array of big
    /// bulk strings that never completes must fail the link, not fill our
    /// memory.
    #[test]
    fn a_value_that_never_ends_fails_the_link() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut fake_redis = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (near, _) = listener.accept().unwrap();
        near.set_nonblocking(true).unwrap();
        let writer = std::thread::spawn(move || {
            fake_redis.write_all(b"*3\r\n$7\r\nmessage\r\n$4\r\nchat\r\n*1024\r\n")?;
            let bulk = [b"$1048576\r\n".as_slice(), &[b'x'; 1 << 20], b"\r\n"].concat();
            for _ in 0..16 {
                fake_redis.write_all(&bulk)?; // fails once the link gave up
            }
            Ok::<_, io::Error>(fake_redis)
        });
        let mut link = Link::new("subscriber", 1);
        link.stream = Some(near);
        link.connected = true;
        let start = Instant::now();
        let error = loop {
            match link.on_ready() {
                Ok((_, values)) => assert_eq!(values, []),
                Err(error) => break error,
            }
            assert!(start.elapsed() < Duration::from_secs(10), "never failed");
            std::thread::sleep(Duration::from_millis(1));
        };
        assert!(error.to_string().contains("not a whole value"), "{error}");
        assert!(link.input.len() <= MAX_UNPARSED_BYTES + MAX_READ_PER_TURN);
        link.stream = None; // hang up: the writer stops
        let _ = writer.join();
    }
}
