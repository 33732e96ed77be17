//! One client of the game loop: its socket, its buffers, and how far along
//! its conversation is.
//!
//! Nothing here ever waits. Every method does what it can with the bytes
//! that are already there and returns, so that one slow client can never
//! hold up the others: that is the whole point of stage 4. Stage 6 adds
//! what the loop needs to know to sleep until the client has news:
//! [`Client::poll_fd`] and [`Client::deadline`].

use crate::http::{self, Response};
use crate::poll::{POLLIN, POLLOUT, PollFd};
use crate::ws::{self, Event, Message, Opcode};
use crate::{
    CLOSE_TIMEOUT, MAX_CHAT_MESSAGE_LEN, MAX_UNSENT_BYTES, REQUEST_TIMEOUT, describe, handshake,
    respond,
};
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::Instant;

/// The most bytes we read from one client in one turn of the loop, so that a
/// client sending a flood cannot keep the loop from the others.
const MAX_READ_PER_TURN: usize = 256 * 1024;

/// How much of an empty output buffer's memory a client keeps for next time.
const KEPT_OUTPUT_CAPACITY: usize = 64 * 1024;

// ANCHOR: client
/// A client, from its first byte to its last.
pub struct Client {
    stream: TcpStream,
    pub peer: SocketAddr,
    /// The name it joined the chat with; `None` until it joins.
    pub name: Option<String>,
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
    last_word: Option<Vec<u8>>,
}

/// How far along the conversation with a client is.
enum State {
    /// Waiting for the whole HTTP request, until the deadline.
    Request { deadline: Instant },
    /// Speaking WebSocket.
    Open { frames: ws::FrameReader },
    /// We said our last word (a close frame or an HTTP response). Once the
    /// output is out, we stop sending and wait for the client to hang up.
    Closing { deadline: Instant, sent_fin: bool },
    /// Nothing left to do: the loop drops the client.
    Closed,
}
// ANCHOR_END: client

impl Client {
    // ANCHOR: new
    pub fn new(stream: TcpStream, peer: SocketAddr) -> io::Result<Client> {
        // Every read and write now returns at once, with `WouldBlock` when it
        // would have had to wait.
        stream.set_nonblocking(true)?;
        // Send small frames at once instead of waiting to fill a packet
        // (Nagle's algorithm), which can add 40 ms to every chat message.
        stream.set_nodelay(true)?;
        println!("{peer}: connected");
        Ok(Client {
            stream,
            peer,
            name: None,
            state: State::Request {
                deadline: Instant::now() + REQUEST_TIMEOUT,
            },
            input: Vec::new(),
            output: VecDeque::new(),
            input_ended: false,
            last_word: None,
        })
    }
    // ANCHOR_END: new

    /// Whether the client takes part in the chat.
    pub fn is_open(&self) -> bool {
        matches!(self.state, State::Open { .. })
    }

    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    // ANCHOR: is_leaving
    /// Whether the client is on its way out: we have said our last word to
    /// it (it still gets this turn's chat), or more.
    pub fn is_leaving(&self) -> bool {
        !self.is_open() || self.last_word.is_some()
    }
    // ANCHOR_END: is_leaving

    // ANCHOR: poll_fd
    /// What the loop waits for on this client's socket.
    pub fn poll_fd(&self) -> PollFd {
        let mut events = 0;
        // Once the client has stopped sending, its socket is "readable" for
        // good (there is always the end of the stream to read): asking would
        // wake us at once, every time.
        if !self.input_ended {
            events |= POLLIN;
        }
        // The same goes for writing: a socket with room in its buffer is
        // always writable. We ask only while there is output waiting.
        if !self.output.is_empty() {
            events |= POLLOUT;
        }
        PollFd::new(&self.stream, events)
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
    /// for the loop to send to everyone. Returns whether anything arrived.
    pub fn receive(&mut self, chat: &mut Vec<Message>) -> bool {
        let received = self.read_available();
        // One step may lead to the next in the same turn: a request that
        // opens the WebSocket may have frames right behind it.
        if let State::Request { deadline } = self.state {
            self.read_request(deadline);
        }
        if self.is_open() {
            self.read_frames(chat);
        }
        if let State::Closing { deadline, sent_fin } = self.state {
            // Whatever comes after our last word is not for us.
            self.input.clear();
            // A client may stop sending and still read: our last words go
            // out before we hang up, however early it stopped.
            if (self.input_ended && sent_fin) || Instant::now() > deadline {
                self.close("disconnected");
            }
        }
        received > 0
    }

    /// Reads, without waiting, whatever the client has sent.
    fn read_available(&mut self) -> usize {
        let mut buffer = [0; 64 * 1024];
        let mut received = 0;
        while received < MAX_READ_PER_TURN && !self.input_ended && !self.is_closed() {
            match self.stream.read(&mut buffer) {
                Ok(0) => self.input_ended = true,
                Ok(count) => {
                    self.input.extend_from_slice(&buffer[..count]);
                    received += count;
                }
                // Nothing more for now: not an error on a nonblocking socket.
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => self.close(&format!("connection failed: {error}")),
            }
        }
        received
    }
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
            Ok(None) if self.input_ended => return self.close("left without a whole request"),
            Ok(None) if Instant::now() > deadline => {
                return self.close("took too long to send a request");
            }
            Ok(None) => return, // wait for the rest
            Err(error) => {
                println!("{peer}: {error}");
                return self.answer(&error.response());
            }
        };
        println!("{peer}: {} {}", request.method, request.target);
        if !handshake::is_upgrade_request(&request) {
            return self.answer(&respond(&request));
        }
        match handshake::accept(&request) {
            Ok(response) => {
                self.queue(&response.to_bytes());
                self.state = State::Open {
                    frames: ws::FrameReader::new(MAX_CHAT_MESSAGE_LEN),
                };
                println!("{peer}: handshake done; from now on it speaks WebSocket");
            }
            Err(error) => {
                println!("{peer}: upgrade refused: {error:?}");
                self.answer(&error.response());
            }
        }
    }

    /// Sends an HTTP response, the last thing this client gets.
    fn answer(&mut self, response: &Response) {
        self.queue(&response.to_bytes());
        println!(
            "{}: answered {} {}",
            self.peer, response.status, response.reason
        );
        self.start_closing();
    }
    // ANCHOR_END: read_request

    // ANCHOR: read_frames
    // ANCHOR: read_frames_loop
    /// Reads every frame that has arrived, whole or in part, and acts on it.
    fn read_frames(&mut self, chat: &mut Vec<Message>) {
        let State::Open { frames } = &mut self.state else {
            return;
        };
        let mut used = 0;
        let mut events = Vec::new();
        let mut failure = None;
        loop {
            match frames.read(&self.input[used..]) {
                Ok((count, event)) => {
                    used += count;
                    let Some(event) = event else {
                        break; // the rest has not arrived yet
                    };
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
        if self.last_word.is_some() {
            return; // a close frame came before the failure, and was answered
        }
        if let Some(error) = failure {
            let code = error.close_code();
            self.send_close(&ws::close_payload(code, &error.to_string()));
            println!("{}: {error} -> close {code}", self.peer);
        } else if self.input_ended {
            self.close("left without a close frame");
        }
    }
    // ANCHOR_END: read_frames_loop

    // ANCHOR: last_word
    /// Acts on one event: a message for the chat, a ping, a pong, a close.
    fn handle(&mut self, event: Event, chat: &mut Vec<Message>) {
        if self.last_word.is_some() {
            return; // after our close frame, nothing is for us
        }
        let peer = self.peer;
        match event {
            Event::Message(message) => {
                println!("{peer}: {}", describe(&message));
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
                self.send_close(&payload);
                println!("{peer}: close {close} -> close");
            }
        }
    }

    /// Our close frame: the last frame this client gets from us, after the
    /// chat messages of this turn (see [`Client::send`]).
    fn send_close(&mut self, payload: &[u8]) {
        self.last_word = Some(ws::encode_frame(Opcode::Close, payload));
    }
    // ANCHOR_END: last_word
    // ANCHOR_END: read_frames

    fn start_closing(&mut self) {
        self.state = State::Closing {
            deadline: Instant::now() + CLOSE_TIMEOUT,
            sent_fin: false,
        };
    }

    // ANCHOR: send
    /// Adds a chat message for this client, if it takes part in the chat.
    pub fn send_message(&mut self, frame: &[u8]) {
        if self.is_open() {
            self.queue(frame);
        }
    }

    // ANCHOR: queue
    /// Adds bytes to the output, unless the client is too far behind.
    fn queue(&mut self, bytes: &[u8]) {
        if self.output.len() + bytes.len() > MAX_UNSENT_BYTES {
            // A close frame would have to wait behind everything it has not
            // read: we just hang up.
            let unsent = self.output.len();
            return self.close(&format!("too slow: {unsent} bytes unsent, disconnected"));
        }
        self.output.extend(bytes);
    }
    // ANCHOR_END: queue

    // ANCHOR: write
    /// Writes as much of the output as the socket takes without waiting.
    /// Returns whether anything went out.
    pub fn send(&mut self) -> bool {
        if let Some(close_frame) = self.last_word.take() {
            self.queue(&close_frame);
            self.start_closing();
        }
        let mut sent = 0;
        while !self.output.is_empty() && !self.is_closed() {
            // The queue may wrap around its buffer: write the first part.
            let (first_part, _) = self.output.as_slices();
            match self.stream.write(first_part) {
                Ok(count) => {
                    self.output.drain(..count);
                    sent += count;
                }
                // The socket's buffer is full: the rest waits for next turn.
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => self.close(&format!("connection failed: {error}")),
            }
        }
        if self.output.is_empty() {
            // A big message leaves a big buffer behind: give the memory back,
            // or every client that ever got one would keep it forever.
            self.output.shrink_to(KEPT_OUTPUT_CAPACITY);
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
        }
        sent > 0
    }
    // ANCHOR_END: write
    // ANCHOR_END: send

    // ANCHOR: give_up
    /// Gives up on the client: the loop drops it, which closes the socket.
    fn close(&mut self, why: &str) {
        println!("{}: {why}", self.peer);
        self.state = State::Closed;
    }
    // ANCHOR_END: give_up
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A client on the server's end of a fresh loopback connection.
    fn client() -> (Client, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let far = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (near, peer) = listener.accept().unwrap();
        (Client::new(near, peer).unwrap(), far)
    }

    #[test]
    fn write_interest_only_while_output_waits() {
        let (mut client, _far) = client();
        assert_eq!(client.poll_fd(), PollFd::new(&client.stream, POLLIN));
        client.queue(b"hello");
        let both = PollFd::new(&client.stream, POLLIN | POLLOUT);
        assert_eq!(client.poll_fd(), both);
        client.send();
        assert_eq!(client.poll_fd(), PollFd::new(&client.stream, POLLIN));
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
        assert_eq!(client.poll_fd(), PollFd::new(&client.stream, 0));
    }

    #[test]
    fn a_deadline_while_the_request_comes_and_while_closing_only() {
        let (mut client, _far) = client();
        assert!(client.deadline().is_some());
        client.state = State::Open {
            frames: ws::FrameReader::new(MAX_CHAT_MESSAGE_LEN),
        };
        assert_eq!(client.deadline(), None);
        client.start_closing();
        assert!(client.deadline().is_some());
    }
}
