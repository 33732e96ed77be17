//! One client of the game loop: its socket, its buffers, and how far along
//! its conversation is.
//!
//! Nothing here ever waits. Every method does what it can with the bytes
//! that are already there and returns, so that one slow client can never
//! hold up the others: that is the whole point of stage 4. Stage 6 adds
//! what the loop needs to know to sleep until the client has news:
//! [`Client::interest`] and [`Client::deadline`].

use crate::http::{self, Request, Response};
use crate::interest::Interest;
use crate::ws::{self, Event, Message, Opcode};
use crate::{handshake, log};
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant};

/// The most bytes we read from one client in one turn of the loop, so that a
/// client sending a flood cannot keep the loop from the others.
const MAX_READ_PER_TURN: usize = 256 * 1024;

/// The most bytes one read takes. Its buffer is zeroed on every call of
/// `read_available`, so it is kept small: zeroing 64 KiB took longer than
/// unmasking a 4 KiB message, and a bigger message only takes more reads.
const READ_SIZE: usize = 16 * 1024;

/// How much of an emptied buffer's memory a client keeps for next time.
const KEPT_CAPACITY: usize = 64 * 1024;

/// The page served at `/`: the chat, with names.
const INDEX_HTML: &str = include_str!("index.html");

// ANCHOR: limits
/// What a client is allowed. The loop decides (see `lib.rs`); a client
/// keeps to what it is given.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// How long a client may take to send its whole request.
    pub request_timeout: Duration,
    /// How long we wait, after our close frame, for the client to close too.
    pub close_timeout: Duration,
    /// The largest message we accept, in bytes.
    pub max_message_len: usize,
    /// The most bytes we keep for a client that its socket has not taken.
    pub max_unsent_bytes: usize,
    /// How long a WebSocket may send nothing before we ping it.
    pub ping_interval: Duration,
    /// How long after that it may still send nothing before we let it go.
    pub idle_timeout: Duration,
    /// How long a WebSocket may stay without joining the chat.
    pub join_timeout: Duration,
    /// The chat messages a client may send a second, on average.
    pub max_messages_per_second: u32,
    /// The origins whose pages may connect, besides the server's own.
    pub allowed_origins: &'static [String],
}

/// What [`Client::allow`] says of one more message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allowance {
    /// Within the rate: the chat may act on it.
    Yes,
    /// Over the rate: refuse it, and say why.
    No { per_second: u32 },
    /// Far over the rate, for too long: the client is being closed.
    Closed,
}
// ANCHOR_END: limits

// ANCHOR: client
/// A client, from its first byte to its last.
pub struct Client {
    stream: TcpStream,
    pub peer: SocketAddr,
    /// The name it joined the chat with; `None` until it joins.
    pub name: Option<String>,
    /// While Redis is asked whether the name it wants is free: the number
    /// of that claim (see [`crate::broker::Broker::claim`]).
    pub claim: Option<u64>,
    /// What it sent after its join while Redis was asked, for the chat to
    /// act on, in order, once Redis has answered.
    pub held: Vec<Message>,
    limits: Limits,
    state: State,
    /// Bytes that arrived and were not used yet: a request or a frame can
    /// come in many pieces, and waits here until the rest arrives.
    input: Vec<u8>,
    /// Bytes for the client that its socket has not taken yet: a write may
    /// take only part of what it was given, and the rest waits here.
    output: VecDeque<u8>,
    /// The client has closed its side of the connection: no more input.
    input_ended: bool,
    /// Our close frame, once we have decided to close. It goes out after the
    /// chat messages of this turn, so that a client still gets the messages
    /// it sent before the frame that broke a rule (or before its close).
    close_frame: Option<Vec<u8>>,
    /// When the client last sent anything: a frame, a pong, a byte.
    heard: Instant,
    /// Whether we pinged it since then.
    pinged: bool,
    /// The messages it may send now, with a fraction (see [`Client::allow`]).
    tokens: f64,
    /// When `tokens` was last topped up.
    topped_up: Instant,
}

/// How far along the conversation with a client is.
enum State {
    /// Waiting for the whole HTTP request, until the deadline.
    Request { deadline: Instant },
    /// Speaking WebSocket; it must join the chat by `join_by`.
    Open {
        messages: ws::Messages,
        join_by: Instant,
    },
    /// We said our last word (a close frame or an HTTP response). Once the
    /// output is out, we stop sending and wait for the client to hang up.
    Closing { deadline: Instant, sent_fin: bool },
    /// Nothing left to do: the loop drops the client.
    Closed,
}
// ANCHOR_END: client

impl Client {
    // ANCHOR: new
    pub fn new(stream: TcpStream, peer: SocketAddr, limits: Limits) -> io::Result<Client> {
        // Every read and write now returns at once, with `WouldBlock` when it
        // would have had to wait.
        stream.set_nonblocking(true)?;
        // Send small frames at once instead of waiting to fill a packet
        // (Nagle's algorithm), which can add 40 ms to every chat message.
        stream.set_nodelay(true)?;
        log!("{peer}: connected");
        let now = Instant::now();
        Ok(Client {
            stream,
            peer,
            name: None,
            claim: None,
            held: Vec::new(),
            limits,
            state: State::Request {
                deadline: now + limits.request_timeout,
            },
            input: Vec::new(),
            output: VecDeque::new(),
            input_ended: false,
            close_frame: None,
            heard: now,
            pinged: false,
            tokens: f64::from(limits.max_messages_per_second),
            topped_up: now,
        })
    }
    // ANCHOR_END: new

    /// Whether the client takes part in the chat.
    fn is_open(&self) -> bool {
        matches!(self.state, State::Open { .. })
    }

    /// Whether we have said our last word to the client, or more.
    pub fn is_closing(&self) -> bool {
        matches!(self.state, State::Closing { .. } | State::Closed)
    }

    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    // ANCHOR: is_leaving
    /// Whether the client is on its way out: we have said our last word to
    /// it (it still gets this turn's chat), or more.
    pub fn is_leaving(&self) -> bool {
        !self.is_open() || self.close_frame.is_some()
    }
    // ANCHOR_END: is_leaving

    // ANCHOR: poll_fd
    /// What the loop waits for on this client's socket.
    pub fn interest(&self) -> Interest {
        Interest {
            // Once the client has stopped sending, its socket is "readable"
            // for good (there is always the end of the stream to read):
            // asking would wake us at once, every time.
            read: !self.input_ended,
            // The same goes for writing: a socket with room in its buffer is
            // always writable. We ask only while there is output waiting.
            write: !self.output.is_empty(),
        }
    }

    /// When the client's time is up if its socket stays silent: the loop
    /// must wake up then, ready or not, and [`Client::receive`] acts on it.
    pub fn deadline(&self) -> Option<Instant> {
        match self.state {
            State::Request { deadline } | State::Closing { deadline, .. } => Some(deadline),
            State::Open { join_by, .. } => {
                let heartbeat = self.heartbeat_deadline();
                match self.name {
                    None => Some(heartbeat.min(join_by)),
                    Some(_) => Some(heartbeat),
                }
            }
            State::Closed => None,
        }
    }
    // ANCHOR_END: poll_fd

    // ANCHOR: receive
    /// Reads what has arrived and acts on it. Chat messages go into `chat`,
    /// for the loop to send to everyone.
    pub fn receive(&mut self, chat: &mut Vec<Message>) {
        self.read_available();
        // One step may lead to the next in the same turn: a request that
        // opens the WebSocket may have frames right behind it.
        if let State::Request { deadline } = self.state {
            self.read_request(deadline);
        }
        if self.is_open() {
            self.read_frames(chat);
        }
        if let State::Open { join_by, .. } = self.state
            && self.close_frame.is_none()
        {
            self.keep_alive(join_by);
        }
        if self.input.is_empty() {
            // A big message leaves a big buffer behind: give the memory back.
            self.input.shrink_to(KEPT_CAPACITY);
        }
        if let State::Closing { deadline, sent_fin } = self.state {
            // Whatever comes after our last word is not for us.
            self.input.clear();
            // A client may stop sending and still read: our last words go
            // out before we hang up, however early it stopped.
            if (self.input_ended && sent_fin) || Instant::now() > deadline {
                self.give_up("disconnected");
            }
        }
    }

    // ANCHOR: read_available
    /// Reads, without waiting, whatever the client has sent.
    fn read_available(&mut self) {
        let mut buffer = [0; READ_SIZE];
        let mut received = 0;
        while received < MAX_READ_PER_TURN && !self.input_ended && !self.is_closed() {
            match self.stream.read(&mut buffer) {
                Ok(0) => self.input_ended = true,
                Ok(count) => {
                    self.input.extend_from_slice(&buffer[..count]);
                    received += count;
                    self.heard = Instant::now();
                    self.pinged = false;
                    // Less than the buffer holds: that was all there was.
                    // Asking again would only say `WouldBlock`, a system
                    // call for nothing; whatever comes meanwhile keeps the
                    // socket ready, and the next wait says so.
                    if count < buffer.len() {
                        break;
                    }
                }
                // Nothing more for now: not an error on a nonblocking socket.
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => self.give_up(&format!("connection failed: {error}")),
            }
        }
    }
    // ANCHOR_END: read_available
    // ANCHOR_END: receive

    // ANCHOR: read_request
    /// Parses the HTTP request once all of it is here, and answers it.
    fn read_request(&mut self, deadline: Instant) {
        let peer = self.peer;
        let request = match http::parse_request(&self.input) {
            Ok(Some((request, used))) => {
                // Bytes after the request (an eager client's first frames)
                // stay in `input`, for the WebSocket to read.
                self.input.drain(..used);
                request
            }
            Ok(None) if self.input_ended => return self.give_up("left without a whole request"),
            Ok(None) if Instant::now() > deadline => {
                return self.give_up("took too long to send a request");
            }
            Ok(None) => return, // wait for the rest
            Err(error) => {
                log!("{peer}: {error}");
                return self.answer(&error.response());
            }
        };
        log!(
            "{peer}: {} {}",
            request.method,
            log::escape(&request.target)
        );
        if !handshake::is_upgrade_request(&request) {
            return self.answer(&respond(&request));
        }
        match handshake::accept(&request) {
            Ok(_) if !handshake::origin_is_allowed(&request, self.limits.allowed_origins) => {
                let origin = request.header("Origin").unwrap_or_default();
                log!(
                    "{peer}: upgrade refused: origin {} not allowed",
                    log::escape(origin)
                );
                self.answer(&handshake::forbidden_origin(origin));
            }
            Ok(response) => {
                self.queue(&response.to_bytes());
                self.state = State::Open {
                    messages: ws::Messages::new(self.limits.max_message_len),
                    join_by: Instant::now() + self.limits.join_timeout,
                };
                log!("{peer}: handshake done; from now on it speaks WebSocket");
            }
            Err(error) => {
                log!("{peer}: upgrade refused: {error:?}");
                self.answer(&error.response());
            }
        }
    }

    /// Sends an HTTP response, the last thing this client gets.
    fn answer(&mut self, response: &Response) {
        self.queue(&response.to_bytes());
        log!(
            "{}: answered {} {}",
            self.peer,
            response.status,
            response.reason
        );
        self.hang_up();
    }
    // ANCHOR_END: read_request

    // ANCHOR: read_frames
    // ANCHOR: read_frames_loop
    /// Reads every whole frame that has arrived, and acts on it. The rest of
    /// a frame still on its way stays in `input` for the next turn.
    fn read_frames(&mut self, chat: &mut Vec<Message>) {
        let State::Open { messages, .. } = &mut self.state else {
            return;
        };
        let mut used = 0;
        let mut events = Vec::new();
        let mut failure = None;
        loop {
            let frame = match ws::parse_frame(&self.input[used..], self.limits.max_message_len) {
                Ok(Some((frame, len))) => {
                    used += len;
                    frame
                }
                Ok(None) => break, // the rest has not arrived yet
                Err(error) => {
                    failure = Some(error);
                    break;
                }
            };
            match messages.push(frame) {
                Ok(event) => {
                    // Nothing after a close frame is for us: stop there.
                    let is_close = matches!(event, Event::Close(_));
                    events.push(event);
                    if is_close {
                        break;
                    }
                }
                Err(error) => {
                    failure = Some(error);
                    break;
                }
            }
        }
        self.input.drain(..used);
        for event in events {
            self.handle(event, chat);
        }
        if self.close_frame.is_some() {
            return; // a close frame came before the failure, and was answered
        }
        if let Some(error) = failure {
            let code = error.close_code();
            self.start_closing(&ws::close_payload(code, &error.to_string()));
            log!("{}: {error} -> close {code}", self.peer);
        } else if self.input_ended {
            // It sends nothing more, but may still read: what waits for it
            // (the 101 itself, if it stopped right after its request) goes
            // out before we hang up.
            log!("{}: left without a close frame", self.peer);
            self.hang_up();
        }
    }
    // ANCHOR_END: read_frames_loop

    // ANCHOR: last_word
    /// Acts on one event: a message for the chat, a ping, a pong, a close.
    fn handle(&mut self, event: Event, chat: &mut Vec<Message>) {
        if self.close_frame.is_some() {
            return; // after our close frame, nothing is for us
        }
        let peer = self.peer;
        match event {
            Event::Message(message) => {
                log!("{peer}: {}", message.describe());
                chat.push(message);
            }
            Event::Fragment => {}
            Event::Ping(payload) => self.queue(&ws::encode_frame(Opcode::Pong, &payload)),
            // It answers our ping, or is a heartbeat of the client's own:
            // either way, what matters is that it came (see `heard`).
            Event::Pong(_) => {}
            Event::Close(close) => {
                // Echo the client's status code, if it sent one.
                let payload = match close.code {
                    Some(code) => ws::close_payload(code, ""),
                    None => Vec::new(),
                };
                self.start_closing(&payload);
                log!("{peer}: close {close} -> close");
            }
        }
    }

    /// Starts the closing handshake: our close frame is the last frame this
    /// client gets from us, after the chat messages of this turn (see
    /// [`Client::flush`]).
    fn start_closing(&mut self, payload: &[u8]) {
        self.close_frame = Some(ws::encode_frame(Opcode::Close, payload));
    }
    // ANCHOR_END: last_word
    // ANCHOR_END: read_frames

    // ANCHOR: hang_up
    /// Our last word is queued: once it is out, stop sending, and wait (up
    /// to the close timeout) for the client to hang up too.
    fn hang_up(&mut self) {
        self.state = State::Closing {
            deadline: Instant::now() + self.limits.close_timeout,
            sent_fin: false,
        };
    }
    // ANCHOR_END: hang_up

    // ANCHOR: heartbeat
    /// When the client's silence must be acted on: the ping is due once it
    /// has sent nothing for the ping interval; after the ping, it has the
    /// idle timeout more to send anything at all.
    fn heartbeat_deadline(&self) -> Instant {
        let ping_at = self.heard + self.limits.ping_interval;
        if self.pinged {
            ping_at + self.limits.idle_timeout
        } else {
            ping_at
        }
    }

    /// Acts on a WebSocket's silence, once its deadline has come: a ping,
    /// or, if the ping went unanswered, goodbye. And one that was given time
    /// to join the chat and has not is told why it is closed.
    fn keep_alive(&mut self, join_by: Instant) {
        let now = Instant::now();
        if self.name.is_none() && now >= join_by {
            let reason = "join the chat in time";
            self.start_closing(&ws::close_payload(ws::POLICY_VIOLATION, reason));
            return log!("{}: never joined -> close 1008", self.peer);
        }
        if now < self.heartbeat_deadline() {
            return;
        }
        if self.pinged {
            // No close frame: it would wait behind everything the client
            // has not read, for a client that is probably not there.
            let silent = now - self.heard;
            return self.give_up(&format!(
                "sent nothing for {:.1} s, not even a pong: disconnected",
                silent.as_secs_f64()
            ));
        }
        self.queue(&ws::encode_frame(Opcode::Ping, b""));
        self.pinged = true;
    }
    // ANCHOR_END: heartbeat

    // ANCHOR: allow
    /// Whether the client may send one more chat message now: a token
    /// bucket. The bucket holds up to `max_messages_per_second` tokens and
    /// fills up at that many a second; each message takes one. A client
    /// that sends faster goes into debt: each message over is refused, and
    /// one that keeps on until the debt is a whole bucket is closed.
    pub fn allow(&mut self) -> Allowance {
        let now = Instant::now();
        let rate = f64::from(self.limits.max_messages_per_second);
        let elapsed = (now - self.topped_up).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(rate);
        self.topped_up = now;
        self.tokens -= 1.0;
        if self.tokens >= 0.0 {
            Allowance::Yes
        } else if self.tokens > -rate {
            Allowance::No {
                per_second: self.limits.max_messages_per_second,
            }
        } else {
            if self.close_frame.is_none() {
                let reason = "too many messages";
                self.start_closing(&ws::close_payload(ws::POLICY_VIOLATION, reason));
                log!("{}: {reason} -> close 1008", self.peer);
            }
            Allowance::Closed
        }
    }
    // ANCHOR_END: allow

    // ANCHOR: shut_down
    /// The server is stopping: a WebSocket gets close 1001 ("going away")
    /// after this turn's chat, and one still sending its request gets 503.
    pub fn shut_down(&mut self) {
        match self.state {
            State::Request { .. } => self.answer(&unavailable("the server is shutting down")),
            State::Open { .. } if self.close_frame.is_none() => {
                let reason = "the server is shutting down";
                self.start_closing(&ws::close_payload(ws::GOING_AWAY, reason));
            }
            _ => {}
        }
    }

    /// Turns away a client the server has no room for, before it has said
    /// anything: 503, and to try again later.
    pub fn refuse(&mut self, why: &str) {
        log!("{}: {why}", self.peer);
        self.answer(&unavailable(why));
    }
    // ANCHOR_END: shut_down

    // ANCHOR: send
    /// Queues a chat message for this client, if it takes part in the chat.
    pub fn queue_chat(&mut self, frame: &[u8]) {
        if self.is_open() {
            self.queue(frame);
        }
    }

    // ANCHOR: queue
    /// Adds bytes to the output, unless the client is too far behind. One
    /// frame bigger than the limit may go to a client that has taken all it
    /// was sent: it is not behind.
    fn queue(&mut self, bytes: &[u8]) {
        let unsent = self.output.len();
        if unsent > 0 && unsent + bytes.len() > self.limits.max_unsent_bytes {
            // A close frame would have to wait behind everything it has not
            // read: we just hang up.
            return self.give_up(&format!("too slow: {unsent} bytes unsent, disconnected"));
        }
        self.output.extend(bytes);
    }
    // ANCHOR_END: queue

    // ANCHOR: write
    /// Writes as much of the output as the socket takes without waiting.
    pub fn flush(&mut self) {
        if let Some(close_frame) = self.close_frame.take() {
            self.queue(&close_frame);
            self.hang_up();
        }
        while !self.output.is_empty() && !self.is_closed() {
            // The queue may wrap around its buffer: write the first part.
            let (first_part, _) = self.output.as_slices();
            match self.stream.write(first_part) {
                Ok(count) => {
                    self.output.drain(..count);
                }
                // The socket's buffer is full: the rest waits for next turn.
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => self.give_up(&format!("connection failed: {error}")),
            }
        }
        if self.output.is_empty() {
            // A big message leaves a big buffer behind: give the memory back,
            // or every client that ever got one would keep it forever.
            self.output.shrink_to(KEPT_CAPACITY);
        }
        if let State::Closing { sent_fin, .. } = &mut self.state
            && self.output.is_empty()
            && !*sent_fin
        {
            // All our last words are out: tell the client nothing more
            // follows (a TCP FIN), then wait for it to hang up too.
            // Closing outright while its bytes are still unread could
            // make the system reset the connection and lose them.
            let _ = self.stream.shutdown(Shutdown::Write);
            *sent_fin = true;
            if self.input_ended {
                // It had stopped sending already: nothing left to wait for.
                self.give_up("disconnected");
            }
        }
    }
    // ANCHOR_END: write
    // ANCHOR_END: send

    // ANCHOR: memory
    /// The memory this client's buffers hold: what it sent that is not used
    /// yet (part of a frame, part of a message, the messages [`Client::held`]
    /// while Redis is asked about its name), and what waits for it. Held
    /// messages count as much as the rest: each client may hold a few long
    /// ones, and many clients whose claims Redis is slow to answer would
    /// otherwise hold far more than the budget, unseen.
    pub fn memory(&self) -> usize {
        let unfinished = match &self.state {
            State::Open { messages, .. } => messages.unfinished_len(),
            _ => 0,
        };
        let held: usize = self
            .held
            .iter()
            .map(|message| message.payload().len())
            .sum();
        self.input.capacity() + unfinished + held + self.output.capacity()
    }

    /// Whether [`Client::shed`] would free anything: the client is still
    /// sending its request, or in the chat.
    pub fn can_be_shed(&self) -> bool {
        matches!(self.state, State::Request { .. } | State::Open { .. })
    }

    /// Lets go of the client to free its memory, when all the clients
    /// together hold more than the server can spare (see `lib.rs`).
    pub fn shed(&mut self) {
        let held = self.memory();
        if !self.is_open() || !self.output.is_empty() {
            // A close frame would have to wait behind everything it has not
            // read: we just hang up.
            return self.give_up(&format!("over the memory budget with {held} bytes"));
        }
        // What it holds is what it sent: drop that, and say why we close.
        self.input = Vec::new();
        self.held = Vec::new();
        let reason = "server out of memory for your messages";
        self.start_closing(&ws::close_payload(ws::POLICY_VIOLATION, reason));
        self.flush();
        log!(
            "{}: over the memory budget with {held} bytes -> close 1008",
            self.peer
        );
    }
    // ANCHOR_END: memory

    // ANCHOR: give_up
    /// Gives up on the client, without a close frame: the loop drops it,
    /// which closes the socket.
    fn give_up(&mut self, why: &str) {
        log!("{}: {why}", self.peer);
        self.state = State::Closed;
    }
    // ANCHOR_END: give_up
}

// ANCHOR: as_fd
/// The client's socket, for the interest list.
impl AsFd for Client {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.stream.as_fd()
    }
}
// ANCHOR_END: as_fd

// ANCHOR: respond
/// `GET /` gets the page; every other request gets itself back, as plain text.
fn respond(request: &Request) -> Response {
    if request.method == "GET" && request.target == "/" {
        return Response::new(200, "OK")
            .with_header("Connection", "close")
            .with_body("text/html; charset=utf-8", INDEX_HTML);
    }
    Response::new(200, "OK")
        .with_header("Connection", "close")
        .with_body("text/plain; charset=utf-8", request.to_bytes())
}

/// 503, for a client the server cannot serve now.
fn unavailable(why: &str) -> Response {
    Response::new(503, "Service Unavailable")
        .with_header("Connection", "close")
        .with_header("Retry-After", "10")
        .with_body("text/plain; charset=utf-8", format!("{why}\n"))
}
// ANCHOR_END: respond

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::net::TcpListener;

    /// Limits for tests: short messages, the rest as in the program.
    pub(crate) const LIMITS: Limits = Limits {
        request_timeout: Duration::from_secs(5),
        close_timeout: Duration::from_secs(2),
        max_message_len: 1024,
        max_unsent_bytes: 1024 * 1024,
        ping_interval: Duration::from_secs(30),
        idle_timeout: Duration::from_secs(30),
        join_timeout: Duration::from_secs(30),
        max_messages_per_second: 10,
        allowed_origins: &[],
    };

    /// A client on the server's end of a fresh loopback connection.
    fn client() -> (Client, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let far = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (near, peer) = listener.accept().unwrap();
        (Client::new(near, peer, LIMITS).unwrap(), far)
    }

    #[test]
    fn write_interest_only_while_output_waits() {
        let (mut client, _far) = client();
        assert_eq!(client.interest(), Interest::READ);
        client.queue(b"hello");
        let both = Interest {
            read: true,
            write: true,
        };
        assert_eq!(client.interest(), both);
        client.flush();
        assert_eq!(client.interest(), Interest::READ);
    }

    #[test]
    fn one_big_frame_may_go_to_a_client_that_is_not_behind() {
        let (mut client, _far) = client();
        let big = vec![0; LIMITS.max_unsent_bytes + 1];
        client.queue(&big);
        assert!(!client.is_closed(), "an empty queue took one big frame");
        client.queue(b"more");
        assert!(client.is_closed(), "a client that far behind is let go");
    }

    #[test]
    fn no_read_interest_once_the_client_stopped_sending() {
        let (mut client, far) = client();
        far.shutdown(Shutdown::Write).unwrap();
        // The end of the stream may take a moment to arrive.
        for _ in 0..1000 {
            client.receive(&mut Vec::new());
            if client.input_ended {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert!(client.input_ended);
        assert_eq!(client.interest(), Interest::NONE);
    }

    // ANCHOR: turn_limit_test
    /// However much a client has sent, one turn reads at most
    /// `MAX_READ_PER_TURN` of it, and the next turn reads on: a client on a
    /// link faster than we read cannot keep the loop from the others. (The
    /// flooding check in `tests/` cannot show this on loopback, where the
    /// reader keeps up with the writer and a short read ends the turn.)
    #[cfg(target_os = "linux")] // the warm-up below counts on Linux's autotuning
    #[test]
    fn a_turn_reads_at_most_max_read_per_turn() {
        let (mut client, mut far) = client();
        far.set_nonblocking(true).unwrap();
        let bytes = vec![1; 1024 * 1024];
        let mut peeked = vec![0; 2 * MAX_READ_PER_TURN];
        let deadline = Instant::now() + Duration::from_secs(10);
        // Send all the kernel takes, until two turns' worth waits for the
        // client. Linux grows a socket's receive buffer while it is read
        // fast, so until then, read everything through the client.
        loop {
            let mut sent = 0;
            while let Ok(count) = far.write(&bytes) {
                sent += count;
            }
            if client.stream.peek(&mut peeked).unwrap_or(0) == peeked.len() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the kernel never held two turns' worth"
            );
            let mut read = 0;
            while read < sent {
                client.read_available();
                read += client.input.len();
                client.input.clear();
            }
        }
        client.read_available();
        assert_eq!(client.input.len(), MAX_READ_PER_TURN, "the first turn");
        client.read_available();
        assert_eq!(client.input.len(), 2 * MAX_READ_PER_TURN, "the next turn");
    }
    // ANCHOR_END: turn_limit_test

    /// Messages held while Redis is asked about a name are memory the
    /// budget must see, and a client let go for memory lets go of them.
    #[test]
    fn held_messages_count_in_memory_and_are_dropped_when_shed() {
        let (mut client, _far) = client();
        client.state = State::Open {
            messages: ws::Messages::new(LIMITS.max_message_len),
            join_by: Instant::now() + LIMITS.join_timeout,
        };
        let before = client.memory();
        let long = "y".repeat(64 * 1024);
        for _ in 0..9 {
            client.held.push(Message::Text(long.clone()));
        }
        assert!(client.memory() >= before + 9 * long.len());
        client.shed();
        assert!(client.held.is_empty());
        assert!(client.memory() < long.len());
    }

    // ANCHOR: deadline_test
    #[test]
    fn a_websocket_has_a_deadline_too_its_ping_or_its_join() {
        let (mut client, _far) = client();
        let now = Instant::now();
        client.state = State::Open {
            messages: ws::Messages::new(LIMITS.max_message_len),
            join_by: now + Duration::from_secs(5),
        };
        // Not joined yet: the join comes first.
        assert_eq!(client.deadline(), Some(now + Duration::from_secs(5)));
        client.name = Some("ann".to_string());
        // Joined: its ping is due after the ping interval of silence...
        let ping_at = client.heard + LIMITS.ping_interval;
        assert_eq!(client.deadline(), Some(ping_at));
        // ...and once pinged, it has the idle timeout more to answer.
        client.pinged = true;
        assert_eq!(client.deadline(), Some(ping_at + LIMITS.idle_timeout));
        client.hang_up();
        assert!(client.deadline().is_some());
    }
    // ANCHOR_END: deadline_test

    // ANCHOR: bucket_test
    #[test]
    fn a_full_bucket_lets_a_burst_through_then_refuses_then_closes() {
        let (mut client, _far) = client();
        let rate = LIMITS.max_messages_per_second;
        let mut said = Vec::new();
        // Sent at once, faster than the bucket refills (10 a second).
        for _ in 0..3 * rate {
            said.push(client.allow());
        }
        let yes = said.iter().filter(|&&a| a == Allowance::Yes).count();
        let no = said
            .iter()
            .filter(|a| matches!(a, Allowance::No { .. }))
            .count();
        assert_eq!(yes, rate as usize, "a burst of a whole bucket");
        // (The bucket refills a little while the loop runs: one more, maybe.)
        let bucket = rate as usize;
        assert!(
            (bucket - 1..=bucket).contains(&no),
            "refused until a bucket of debt: {no}"
        );
        assert_eq!(said.last(), Some(&Allowance::Closed));
        assert!(client.close_frame.is_some(), "closing, with 1008");
    }
    // ANCHOR_END: bucket_test
}
