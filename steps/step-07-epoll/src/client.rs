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
}
// ANCHOR_END: limits

// ANCHOR: client
/// A client, from its first byte to its last.
pub struct Client {
    stream: TcpStream,
    pub peer: SocketAddr,
    /// The name it joined the chat with; `None` until it joins.
    pub name: Option<String>,
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
}

/// How far along the conversation with a client is.
enum State {
    /// Waiting for the whole HTTP request, until the deadline.
    Request { deadline: Instant },
    /// Speaking WebSocket.
    Open { messages: ws::Messages },
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
        Ok(Client {
            stream,
            peer,
            name: None,
            limits,
            state: State::Request {
                deadline: Instant::now() + limits.request_timeout,
            },
            input: Vec::new(),
            output: VecDeque::new(),
            input_ended: false,
            close_frame: None,
        })
    }
    // ANCHOR_END: new

    /// Whether the client takes part in the chat.
    fn is_open(&self) -> bool {
        matches!(self.state, State::Open { .. })
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
            State::Open { .. } | State::Closed => None,
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
            Ok(response) => {
                self.queue(&response.to_bytes());
                self.state = State::Open {
                    messages: ws::Messages::new(self.limits.max_message_len),
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
        let State::Open { messages } = &mut self.state else {
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
            // We never send pings, so this pong answers nothing: a client
            // may send one as a heartbeat, and it needs no answer.
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
    /// yet (part of a frame, part of a message), and what waits for it.
    pub fn memory(&self) -> usize {
        let unfinished = match &self.state {
            State::Open { messages } => messages.unfinished_len(),
            _ => 0,
        };
        self.input.capacity() + unfinished + self.output.capacity()
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

    #[test]
    fn a_deadline_while_the_request_comes_and_while_closing_only() {
        let (mut client, _far) = client();
        assert!(client.deadline().is_some());
        client.state = State::Open {
            messages: ws::Messages::new(LIMITS.max_message_len),
        };
        assert_eq!(client.deadline(), None);
        client.hang_up();
        assert!(client.deadline().is_some());
    }
}
