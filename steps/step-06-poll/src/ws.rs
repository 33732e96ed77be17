//! WebSocket frames (RFC 6455, section 5): what travels after the handshake.
//!
//! Every message travels in one or more *frames*. A frame is a small binary
//! header followed by the payload (the figure is from section 5.2):
//!
//! ```text
//!   0                   1                   2                   3
//!   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//!  +-+-+-+-+-------+-+-------------+-------------------------------+
//!  |F|R|R|R| opcode|M| Payload len |    Extended payload length    |
//!  |I|S|S|S|  (4)  |A|     (7)     |             (16/64)           |
//!  |N|V|V|V|       |S|             |   (if payload len==126/127)   |
//!  | |1|2|3|       |K|             |                               |
//!  +-+-+-+-+-------+-+-------------+ - - - - - - - - - - - - - - - +
//!  |     Extended payload length continued, if payload len == 127  |
//!  + - - - - - - - - - - - - - - - +-------------------------------+
//!  |                               |Masking-key, if MASK set to 1  |
//!  +-------------------------------+-------------------------------+
//!  | Masking-key (continued)       |          Payload Data         |
//!  +-------------------------------- - - - - - - - - - - - - - - - +
//!  :                     Payload Data continued ...                :
//!  +---------------------------------------------------------------+
//! ```
//!
//! The module works in three layers:
//!
//! 1. [`FrameReader`] reads frames from bytes as they arrive, in whatever
//!    pieces they arrive in, and checks the rules a frame can break on its
//!    own (reserved bits, opcodes, masking, lengths).
//! 2. [`Messages`] puts frames together into messages and checks the rules
//!    that span frames: fragmentation, UTF-8 text, close frames.
//! 3. [`encode_frame`] turns a frame the server sends into bytes.
//!
//! A client that breaks a rule gets a [`ProtocolError`], whose
//! [`close_code`](ProtocolError::close_code) is the status code of the close
//! frame that ends the connection. Nothing a client sends can make this code
//! panic, or make it allocate beyond the limits it is given.

use std::fmt;

/// The largest message we accept, in bytes: 16 MiB. A bigger one is refused
/// with close code 1009, decided from the frame header, before we allocate.
pub const MAX_MESSAGE_LEN: usize = 16 * 1024 * 1024;

/// The longest frame header: 2 bytes, 8 bytes of length, 4 bytes of mask.
pub const MAX_HEADER_LEN: usize = 14;

/// The status code of a close frame sent because the other side broke a rule
/// of the protocol (RFC 6455, section 7.4.1).
pub const PROTOCOL_ERROR: u16 = 1002;

/// The status code for data that does not match its type: text that is not
/// UTF-8.
pub const INVALID_DATA: u16 = 1007;

/// The status code for a message too big to process.
pub const MESSAGE_TOO_BIG: u16 = 1009;

// ANCHOR: opcode
/// What a frame carries: the low 4 bits of its first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opcode {
    /// The next fragment of a text or binary message.
    Continuation = 0x0,
    Text = 0x1,
    Binary = 0x2,
    Close = 0x8,
    Ping = 0x9,
    Pong = 0xA,
}

impl Opcode {
    /// The opcode with these 4 bits, or `None` for the values RFC 6455
    /// reserves for the future: 0x3-0x7 and 0xB-0xF.
    pub fn from_bits(bits: u8) -> Option<Opcode> {
        match bits {
            0x0 => Some(Opcode::Continuation),
            0x1 => Some(Opcode::Text),
            0x2 => Some(Opcode::Binary),
            0x8 => Some(Opcode::Close),
            0x9 => Some(Opcode::Ping),
            0xA => Some(Opcode::Pong),
            _ => None,
        }
    }

    /// Control frames (close, ping, pong) are the opcodes with the high bit
    /// set: 0x8 to 0xF. They manage the connection instead of carrying data.
    pub fn is_control(self) -> bool {
        self as u8 & 0b1000 != 0
    }
}
// ANCHOR_END: opcode

// ANCHOR: frame
/// A frame header, as it is on the wire, decoded.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// Set on the last (often the only) frame of a message.
    pub fin: bool,
    pub opcode: Opcode,
    /// The masking key, present on every frame a client sends.
    pub mask: Option<[u8; 4]>,
    pub payload_len: u64,
}
// ANCHOR_END: frame

// ANCHOR: protocol_error
/// A rule of RFC 6455 the client broke, or a limit of ours it went over.
///
/// Each one ends the connection: we send a close frame with
/// [`close_code`](ProtocolError::close_code) and, as the reason, the text
/// that `Display` gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtocolError {
    /// RSV1, RSV2 or RSV3 is set, but no extension gave them a meaning.
    ReservedBits,
    /// An opcode RFC 6455 reserves for the future: 0x3-0x7 or 0xB-0xF.
    ReservedOpcode(u8),
    /// A close, ping or pong frame without FIN: control frames are never split.
    FragmentedControlFrame,
    /// A close, ping or pong frame with more than 125 bytes of payload.
    ControlFrameTooLong,
    /// A 64-bit length whose most significant bit is set.
    LengthHighBitSet,
    /// A frame from the client that is not masked.
    Unmasked,
    /// A frame, or a message put together from frames, over our size limit.
    MessageTooBig,
    /// A continuation frame, but no message was started.
    ContinuationWithoutStart,
    /// A new text or binary frame while the last message is not finished.
    MessageNotFinished,
    /// A text message that is not valid UTF-8.
    InvalidUtf8,
    /// A close frame with a 1-byte payload: too short for a status code.
    CloseFrameOfOneByte,
    /// A close frame with a status code that may not be sent.
    InvalidCloseCode(u16),
    /// A close frame whose reason is not valid UTF-8.
    CloseReasonNotUtf8,
}

impl ProtocolError {
    /// The status code of the close frame we answer this error with.
    pub fn close_code(self) -> u16 {
        match self {
            ProtocolError::InvalidUtf8 | ProtocolError::CloseReasonNotUtf8 => INVALID_DATA,
            ProtocolError::MessageTooBig => MESSAGE_TOO_BIG,
            _ => PROTOCOL_ERROR,
        }
    }
}

/// These texts are sent as close reasons, which must fit in 123 bytes.
impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            ProtocolError::ReservedBits => write!(f, "reserved bits set, but no extension agreed"),
            ProtocolError::ReservedOpcode(bits) => write!(f, "reserved opcode 0x{bits:X}"),
            ProtocolError::FragmentedControlFrame => write!(f, "fragmented control frame"),
            ProtocolError::ControlFrameTooLong => write!(f, "control frame over 125 bytes"),
            ProtocolError::LengthHighBitSet => write!(f, "64-bit length with the top bit set"),
            ProtocolError::Unmasked => write!(f, "client frames must be masked"),
            ProtocolError::MessageTooBig => write!(f, "message too big"),
            ProtocolError::ContinuationWithoutStart => {
                write!(f, "continuation frame, but no message was started")
            }
            ProtocolError::MessageNotFinished => {
                write!(f, "new message before the last one was finished")
            }
            ProtocolError::InvalidUtf8 => write!(f, "text message is not valid UTF-8"),
            ProtocolError::CloseFrameOfOneByte => write!(f, "close frame payload of 1 byte"),
            ProtocolError::InvalidCloseCode(code) => write!(f, "close code {code} is not allowed"),
            ProtocolError::CloseReasonNotUtf8 => write!(f, "close reason is not valid UTF-8"),
        }
    }
}

// ANCHOR_END: protocol_error

// ANCHOR: read_frame
/// Reads frames from bytes as they arrive, and hands what they carry to
/// [`Messages`].
///
/// On a nonblocking socket a frame arrives in as many pieces as the network
/// likes: half a header now, the rest and some payload later. So this reader
/// remembers the frame it is in the middle of, uses whatever bytes are there,
/// and says how many it used. "Not enough bytes yet" is not an error.
///
/// The payload of a text or binary frame goes on to [`Messages`] piece by
/// piece, as it arrives: invalid UTF-8 is refused the moment it shows up,
/// even in the middle of a frame, and a big frame is never held twice.
pub struct FrameReader {
    messages: Messages,
    /// The frame whose payload is still arriving, if any.
    frame: Option<FrameInProgress>,
}

struct FrameInProgress {
    header: FrameHeader,
    mask: [u8; 4],
    /// How many bytes of the payload have arrived so far.
    received: u64,
    /// A control frame's payload (at most 125 bytes), kept until it is whole:
    /// a ping is answered, and a close read, only once all of it is here.
    control_payload: Vec<u8>,
}

impl FrameReader {
    pub fn new(max_message_len: usize) -> FrameReader {
        FrameReader {
            messages: Messages::new(max_message_len),
            frame: None,
        }
    }

    /// Uses bytes from the start of `input`, and returns how many it used
    /// and the event, if a frame was completed. Call it again with the bytes
    /// after the used ones until it returns no event. After an error the
    /// connection is over: the reader is not to be used again.
    pub fn read(&mut self, input: &[u8]) -> Result<(usize, Option<Event>), ProtocolError> {
        let mut used = 0;
        let mut frame = match self.frame.take() {
            Some(frame) => frame,
            None => {
                let Some((header, header_len)) = parse_header(input)? else {
                    return Ok((0, None)); // wait for the rest of the header
                };
                used = header_len;
                self.start_frame(header)?
            }
        };
        // Take as much of the payload as has arrived.
        let missing = frame.header.payload_len - frame.received;
        let available = (input.len() - used) as u64;
        let take = missing.min(available) as usize; // at most input.len()
        let mut piece = input[used..used + take].to_vec();
        apply_mask(&mut piece, frame.mask, frame.received);
        used += take;
        frame.received += take as u64;
        if frame.header.opcode.is_control() {
            frame.control_payload.extend_from_slice(&piece);
        } else {
            self.messages.push_payload(&piece)?;
        }
        if frame.received < frame.header.payload_len {
            self.frame = Some(frame); // the rest of the payload comes later
            return Ok((used, None));
        }
        let event = if frame.header.opcode.is_control() {
            self.messages
                .push_control(frame.header.opcode, frame.control_payload)?
        } else {
            self.messages.end_frame(frame.header.fin)?
        };
        Ok((used, Some(event)))
    }

    /// Checks a new frame's header, before any of its payload is taken.
    fn start_frame(&mut self, header: FrameHeader) -> Result<FrameInProgress, ProtocolError> {
        // A server must refuse a frame that a client did not mask (section 5.1).
        let Some(mask) = header.mask else {
            return Err(ProtocolError::Unmasked);
        };
        if !header.opcode.is_control() {
            self.messages.start_frame(&header)?;
        }
        Ok(FrameInProgress {
            header,
            mask,
            received: 0,
            control_payload: Vec::new(),
        })
    }
}
// ANCHOR_END: read_frame

// ANCHOR: read_header
/// Parses a frame header from the start of `buffer`: 2 bytes, then 0, 2 or 8
/// bytes of extended length, then the 4-byte masking key if the MASK bit is
/// set. Returns the header and its length, or `None` while part of it has
/// yet to arrive.
///
/// The rules the first two bytes can break are checked as soon as those two
/// bytes are here: there is no need to wait for the rest to refuse them.
/// Unmasked frames are accepted here and refused by [`FrameReader`], so that
/// this function also reads what a server sends (the tests use it on the
/// examples of the RFC).
pub fn parse_header(buffer: &[u8]) -> Result<Option<(FrameHeader, usize)>, ProtocolError> {
    let [first, second, ..] = *buffer else {
        return Ok(None);
    };

    let fin = first & 0b1000_0000 != 0;
    let reserved_bits = first & 0b0111_0000;
    let opcode_bits = first & 0b0000_1111;
    let masked = second & 0b1000_0000 != 0;
    let length_code = second & 0b0111_1111;

    // The RSV bits are for extensions, such as compression, that client and
    // server agree on in the handshake. We agreed on none.
    if reserved_bits != 0 {
        return Err(ProtocolError::ReservedBits);
    }
    let Some(opcode) = Opcode::from_bits(opcode_bits) else {
        return Err(ProtocolError::ReservedOpcode(opcode_bits));
    };
    // ANCHOR: control_frames
    // Control frames may arrive between the fragments of a message, and are
    // answered at once. So they must be short and whole: at most 125 bytes
    // (the length always fits in the first 7 bits), and never fragmented.
    if opcode.is_control() {
        if !fin {
            return Err(ProtocolError::FragmentedControlFrame);
        }
        if length_code > 125 {
            return Err(ProtocolError::ControlFrameTooLong);
        }
    }
    // ANCHOR_END: control_frames
    let length_bytes = match length_code {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    let mask_bytes = if masked { 4 } else { 0 };
    let header_len = 2 + length_bytes + mask_bytes;
    if buffer.len() < header_len {
        return Ok(None);
    }
    let payload_len = parse_payload_len(length_code, &buffer[2..2 + length_bytes])?;
    let mask = if masked {
        let key = &buffer[2 + length_bytes..header_len];
        Some([key[0], key[1], key[2], key[3]])
    } else {
        None
    };
    let header = FrameHeader {
        fin,
        opcode,
        mask,
        payload_len,
    };
    Ok(Some((header, header_len)))
}
// ANCHOR_END: read_header

// ANCHOR: lengths
/// The payload length comes in one of three sizes. The 7-bit field holds a
/// length of 0 to 125 itself; 126 means "the next 2 bytes hold the length",
/// 127 means "the next 8 bytes do". Both are big-endian (network byte order).
/// `extended` holds those 0, 2 or 8 bytes.
///
/// The RFC tells senders to use the shortest form; like most
/// implementations, we accept a longer one rather than refuse it.
fn parse_payload_len(length_code: u8, extended: &[u8]) -> Result<u64, ProtocolError> {
    match *extended {
        [high, low] => Ok(u64::from(u16::from_be_bytes([high, low]))),
        [b0, b1, b2, b3, b4, b5, b6, b7] => {
            let len = u64::from_be_bytes([b0, b1, b2, b3, b4, b5, b6, b7]);
            // The top bit must be 0 (section 5.2): a length is never
            // negative, even to a language that only has signed integers.
            if len >> 63 != 0 {
                return Err(ProtocolError::LengthHighBitSet);
            }
            Ok(len)
        }
        _ => Ok(u64::from(length_code)),
    }
}
// ANCHOR_END: lengths

// ANCHOR: masking
/// Masks or unmasks part of a payload: the same operation, because XOR twice
/// with the same key gives back the original. Byte `i` of the payload is
/// XORed with byte `i % 4` of the key; `offset` says where in the payload
/// `part` starts, since a payload now arrives in pieces.
///
/// Why clients mask: a script in a web page chooses what it sends but not
/// the key, which the browser picks at random for each frame. So the script
/// cannot control the bytes on the wire, and cannot make them look like an
/// HTTP request that would fool a proxy on the way (section 10.3).
pub fn apply_mask(part: &mut [u8], mask: [u8; 4], offset: u64) {
    for (i, byte) in part.iter_mut().enumerate() {
        *byte ^= mask[((offset + i as u64) % 4) as usize];
    }
}
// ANCHOR_END: masking

// ANCHOR: messages
// ANCHOR: events
/// A complete message from the client.
#[derive(Clone, PartialEq, Eq)]
pub enum Message {
    Text(String),
    Binary(Vec<u8>),
}

impl Message {
    /// The opcode of a frame that carries this message.
    pub fn opcode(&self) -> Opcode {
        match self {
            Message::Text(_) => Opcode::Text,
            Message::Binary(_) => Opcode::Binary,
        }
    }

    /// The message's bytes, as a frame carries them.
    pub fn payload(&self) -> &[u8] {
        match self {
            Message::Text(text) => text.as_bytes(),
            Message::Binary(bytes) => bytes,
        }
    }
}

/// What a frame from the client means, once [`Messages`] has seen it.
#[derive(Clone, PartialEq, Eq)]
pub enum Event {
    /// The last frame of a message arrived: here is the whole message.
    Message(Message),
    /// A frame of a message that is not finished yet: nothing to do.
    Fragment,
    /// A ping: answer it with a pong that carries the same payload.
    Ping(Vec<u8>),
    /// A pong: the answer to a ping, or a heartbeat nobody asked for.
    Pong(Vec<u8>),
    /// The client starts the closing handshake.
    Close(Close),
}
// ANCHOR_END: events

// ANCHOR: assembler
/// Puts messages together from frames, and checks the rules that span frames.
///
/// A message may come in fragments: a text or binary frame without FIN, then
/// continuation frames, the last of which has FIN set. Control frames may
/// arrive in between; they are not part of the message.
///
/// [`FrameReader`] tells it about a data frame in three steps: the header
/// ([`start_frame`](Messages::start_frame)), the payload in as many pieces as
/// it arrives in ([`push_payload`](Messages::push_payload)), and the end of
/// the frame ([`end_frame`](Messages::end_frame)).
pub struct Messages {
    max_message_len: usize,
    /// The message whose first frame arrived, but not yet its last.
    unfinished: Option<UnfinishedMessage>,
}

struct UnfinishedMessage {
    /// `Text` or `Binary`: the opcode of its first frame.
    opcode: Opcode,
    payload: Vec<u8>,
    /// For text: how many bytes at the start of `payload` are known to be
    /// valid UTF-8. The rest, at most 3 bytes, is the start of a character
    /// that the next piece should complete.
    utf8_checked: usize,
}

impl Messages {
    pub fn new(max_message_len: usize) -> Messages {
        Messages {
            max_message_len,
            unfinished: None,
        }
    }

    /// A text, binary or continuation frame begins: check that it may, and
    /// that the message will not grow too big, before any payload arrives.
    pub fn start_frame(&mut self, header: &FrameHeader) -> Result<(), ProtocolError> {
        // A text or binary frame starts a message, a continuation frame
        // continues one: anything else is out of order.
        let message = match (header.opcode, self.unfinished.take()) {
            (Opcode::Continuation, Some(message)) => message,
            (Opcode::Continuation, None) => return Err(ProtocolError::ContinuationWithoutStart),
            (_, Some(_)) => return Err(ProtocolError::MessageNotFinished),
            (opcode, None) => UnfinishedMessage {
                opcode,
                payload: Vec::new(),
                utf8_checked: 0,
            },
        };
        // Decide from the header, before allocating anything: a client that
        // announces 2^63 bytes must not make us try to reserve them.
        let room = self.max_message_len.saturating_sub(message.payload.len()) as u64;
        if header.payload_len > room {
            return Err(ProtocolError::MessageTooBig);
        }
        self.unfinished = Some(message);
        Ok(())
    }

    /// The next piece of the current frame's payload, unmasked.
    pub fn push_payload(&mut self, piece: &[u8]) -> Result<(), ProtocolError> {
        let Some(message) = &mut self.unfinished else {
            return Ok(()); // only called between start_frame and end_frame
        };
        message.payload.extend_from_slice(piece);
        if message.opcode == Opcode::Text {
            // Check the new bytes now: invalid text fails the moment it
            // arrives, not after the client has sent the whole message.
            let unchecked = &message.payload[message.utf8_checked..];
            message.utf8_checked += check_utf8(unchecked)?;
        }
        Ok(())
    }

    /// The current frame's payload is complete. With FIN, so is the message.
    pub fn end_frame(&mut self, fin: bool) -> Result<Event, ProtocolError> {
        if !fin {
            return Ok(Event::Fragment);
        }
        match self.unfinished.take() {
            Some(message) => message.finish().map(Event::Message),
            None => Ok(Event::Fragment), // only called after start_frame
        }
    }

    /// A whole control frame: close, ping or pong.
    pub fn push_control(
        &mut self,
        opcode: Opcode,
        payload: Vec<u8>,
    ) -> Result<Event, ProtocolError> {
        match opcode {
            Opcode::Ping => Ok(Event::Ping(payload)),
            Opcode::Pong => Ok(Event::Pong(payload)),
            _ => Ok(Event::Close(parse_close(&payload)?)),
        }
    }
}

impl UnfinishedMessage {
    /// The whole message, now that its last frame has arrived.
    fn finish(self) -> Result<Message, ProtocolError> {
        match self.opcode {
            // The pieces were checked as they came; this last check also
            // catches text that ends in the middle of a character.
            Opcode::Text => String::from_utf8(self.payload)
                .map(Message::Text)
                .map_err(|_| ProtocolError::InvalidUtf8),
            _ => Ok(Message::Binary(self.payload)),
        }
    }
}
// ANCHOR_END: assembler
// ANCHOR_END: messages

// ANCHOR: utf8
/// Checks the bytes of a text message that arrived since the last check, and
/// returns how many of them are now known to be valid UTF-8.
///
/// A fragment may end in the middle of a character: "é" is two bytes,
/// `c3 a9`, and a client may send them in two frames. `from_utf8` tells the
/// cases apart. When its error has no `error_len`, the bytes merely end too
/// early, and the next fragment may complete them; with an `error_len`, they
/// can never become valid, whatever comes next.
fn check_utf8(new_bytes: &[u8]) -> Result<usize, ProtocolError> {
    match std::str::from_utf8(new_bytes) {
        Ok(_) => Ok(new_bytes.len()),
        Err(error) if error.error_len().is_none() => Ok(error.valid_up_to()),
        Err(_) => Err(ProtocolError::InvalidUtf8),
    }
}
// ANCHOR_END: utf8

// ANCHOR: close
/// The content of a close frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Close {
    /// The status code; `None` if the close frame was empty, which is allowed.
    pub code: Option<u16>,
    pub reason: String,
}

/// `1000 "bye"`, or `no status code`.
impl fmt::Display for Close {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self.code {
            Some(code) => write!(f, "{code} {:?}", self.reason),
            None => write!(f, "no status code"),
        }
    }
}

/// Reads the payload of a close frame: empty, or a 2-byte status code
/// followed by a reason in UTF-8 (section 5.5.1).
fn parse_close(payload: &[u8]) -> Result<Close, ProtocolError> {
    match payload {
        [] => Ok(Close {
            code: None,
            reason: String::new(),
        }),
        [_] => Err(ProtocolError::CloseFrameOfOneByte),
        [high, low, reason @ ..] => {
            let code = u16::from_be_bytes([*high, *low]);
            if !is_valid_close_code(code) {
                return Err(ProtocolError::InvalidCloseCode(code));
            }
            let Ok(reason) = std::str::from_utf8(reason) else {
                return Err(ProtocolError::CloseReasonNotUtf8);
            };
            Ok(Close {
                code: Some(code),
                reason: reason.to_string(),
            })
        }
    }
}

/// Whether a close frame may carry `code` (section 7.4).
///
/// 1000-1003 and 1007-1011 have meanings defined for the wire. 1004 is
/// reserved; 1005 ("no code"), 1006 ("closed without a close frame") and 1015
/// ("TLS failed") exist only inside APIs, like the `code` a browser's close
/// event reports, and are never sent. 3000-3999 are for libraries and
/// frameworks, 4000-4999 for applications. Every other value is refused.
fn is_valid_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1011 | 3000..=4999)
}

/// The payload of a close frame we send: the status code, then the reason.
pub fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(reason.as_bytes());
    payload
}
// ANCHOR_END: close

// ANCHOR: encode
/// Appends a frame header to `out`: the inverse of [`parse_header`].
pub fn write_header(header: &FrameHeader, out: &mut Vec<u8>) {
    let fin_bit = if header.fin { 0b1000_0000 } else { 0 };
    let mask_bit = if header.mask.is_some() {
        0b1000_0000
    } else {
        0
    };
    out.push(fin_bit | header.opcode as u8);
    let len = header.payload_len;
    if len <= 125 {
        out.push(mask_bit | len as u8); // fits: at most 125
    } else if len <= u64::from(u16::MAX) {
        out.push(mask_bit | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes()); // fits: at most 65535
    } else {
        out.push(mask_bit | 127);
        out.extend_from_slice(&len.to_be_bytes());
    }
    if let Some(key) = header.mask {
        out.extend_from_slice(&key);
    }
}

/// A frame as a server sends it: a whole message (FIN set), not masked.
/// Header and payload go into one buffer, so that they leave in one write.
pub fn encode_frame(opcode: Opcode, payload: &[u8]) -> Vec<u8> {
    let header = FrameHeader {
        fin: true,
        opcode,
        mask: None,
        payload_len: payload.len() as u64,
    };
    let mut frame = Vec::with_capacity(MAX_HEADER_LEN + payload.len());
    write_header(&header, &mut frame);
    frame.extend_from_slice(payload);
    frame
}
// ANCHOR_END: encode

/// Shows the masking key in hex, as RFC 6455 writes it: `[37, fa, 21, 3d]`.
impl fmt::Debug for FrameHeader {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.debug_struct("FrameHeader")
            .field("fin", &self.fin)
            .field("opcode", &self.opcode)
            .field("mask", &format_args!("{:02x?}", self.mask))
            .field("payload_len", &self.payload_len)
            .finish()
    }
}

/// Bytes shown the way Rust writes a byte string, `b"Hello"`, rather than as
/// a list of numbers, in the `Debug` output of the types below.
struct ByteString<'a>(&'a [u8]);

impl fmt::Debug for ByteString<'_> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "b\"{}\"", self.0.escape_ascii())
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Message::Text(text) => f.debug_tuple("Text").field(text).finish(),
            Message::Binary(bytes) => f.debug_tuple("Binary").field(&ByteString(bytes)).finish(),
        }
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Event::Message(message) => f.debug_tuple("Message").field(message).finish(),
            Event::Fragment => write!(f, "Fragment"),
            Event::Ping(payload) => f.debug_tuple("Ping").field(&ByteString(payload)).finish(),
            Event::Pong(payload) => f.debug_tuple("Pong").field(&ByteString(payload)).finish(),
            Event::Close(close) => f.debug_tuple("Close").field(close).finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::Random;
    use insta::{assert_debug_snapshot, assert_snapshot};

    // The examples of RFC 6455, section 5.7.

    /// "A single-frame unmasked text message (contains "Hello")"
    const UNMASKED_HELLO: [u8; 7] = [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
    /// "A single-frame masked text message (contains "Hello")"
    const MASKED_HELLO: [u8; 11] = [
        0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ];
    /// "A fragmented unmasked text message": "Hel", then "lo".
    const FRAGMENTED_HEL: [u8; 5] = [0x01, 0x03, 0x48, 0x65, 0x6c];
    const FRAGMENTED_LO: [u8; 4] = [0x80, 0x02, 0x6c, 0x6f];
    /// "Unmasked Ping request" ...
    const UNMASKED_PING: [u8; 7] = [0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
    /// ... "and masked Ping response" (a pong, whose body echoes the ping's).
    const MASKED_PONG: [u8; 11] = [
        0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ];
    /// "256 bytes binary message in a single unmasked frame": the header.
    const BINARY_256_HEADER: [u8; 4] = [0x82, 0x7e, 0x01, 0x00];
    /// "64KiB binary message in a single unmasked frame": the header.
    const BINARY_64K_HEADER: [u8; 10] = [0x82, 0x7f, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00];

    /// The RFC's masking key.
    const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

    /// `[0x81, 0x05]` -> `"81 05"`
    fn hex(bytes: &[u8]) -> String {
        let pairs: Vec<String> = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
        pairs.join(" ")
    }

    /// Parses one whole frame, masked or not: [`parse_header`], then the
    /// payload, unmasked if it has a key. Returns the header and the payload.
    fn read_any(bytes: &[u8]) -> Result<(FrameHeader, Vec<u8>), ProtocolError> {
        let (header, header_len) = parse_header(bytes)?.expect("a whole header");
        let mut payload = bytes[header_len..].to_vec();
        let len = payload.len() as u64;
        assert_eq!(len, header.payload_len, "not one whole frame");
        if let Some(key) = header.mask {
            apply_mask(&mut payload, key, 0);
        }
        Ok((header, payload))
    }

    /// Reads an unmasked frame, the way a client reads what a server sends.
    fn read_unmasked(bytes: &[u8]) -> Result<(FrameHeader, Vec<u8>), ProtocolError> {
        let frame = read_any(bytes)?;
        assert_eq!(frame.0.mask, None, "not an unmasked frame");
        Ok(frame)
    }

    /// A frame from [`read_any`], its payload shown as `b"Hello"`.
    fn shown(
        frame: &Result<(FrameHeader, Vec<u8>), ProtocolError>,
    ) -> Result<(&FrameHeader, ByteString<'_>), &ProtocolError> {
        frame
            .as_ref()
            .map(|(header, payload)| (header, ByteString(payload)))
    }

    type Events = (Vec<Event>, Option<ProtocolError>);

    /// What a server's [`FrameReader`] makes of `bytes` when they arrive all
    /// at once: the events, up to the first protocol error, and that error.
    fn read_events(bytes: &[u8], limit: usize) -> Events {
        read_events_in_chunks([bytes], limit)
    }

    /// The same, with the bytes arriving `piece_len` at a time.
    fn read_events_in_pieces(bytes: &[u8], piece_len: usize, limit: usize) -> Events {
        read_events_in_chunks(bytes.chunks(piece_len), limit)
    }

    /// The same, with the bytes cut at these positions (in order).
    fn read_events_cut_at(bytes: &[u8], cuts: &[usize], limit: usize) -> Events {
        let mut chunks = Vec::new();
        let mut start = 0;
        for &cut in cuts {
            chunks.push(&bytes[start..cut]);
            start = cut;
        }
        chunks.push(&bytes[start..]);
        read_events_in_chunks(chunks, limit)
    }

    /// Feeds the chunks to a [`FrameReader`] the way the server's loop does:
    /// each chunk is added to the bytes left over, which are read until no
    /// event comes.
    fn read_events_in_chunks<'a>(
        chunks: impl IntoIterator<Item = &'a [u8]>,
        limit: usize,
    ) -> Events {
        let mut reader = FrameReader::new(limit);
        let mut buffer = Vec::new();
        let mut events = Vec::new();
        for chunk in chunks {
            buffer.extend_from_slice(chunk);
            if let Err(error) = read_available(&mut reader, &mut buffer, &mut events) {
                return (events, Some(error));
            }
        }
        (events, None)
    }

    /// Reads from the start of `buffer` until no event comes, and removes the
    /// bytes used. Checks what must hold after every read, whatever the input.
    fn read_available(
        reader: &mut FrameReader,
        buffer: &mut Vec<u8>,
        events: &mut Vec<Event>,
    ) -> Result<(), ProtocolError> {
        let mut used = 0;
        loop {
            let (count, event) = reader.read(&buffer[used..])?;
            let available = buffer.len() - used;
            assert!(count <= available, "used {count} of {available} bytes");
            used += count;
            assert_bounded(reader);
            match event {
                Some(event) => events.push(event),
                None => break,
            }
        }
        buffer.drain(..used);
        // Payload never waits in the buffer: the reader takes it as it comes,
        // so all that can be left over is the start of a header.
        assert!(buffer.len() < MAX_HEADER_LEN, "{} bytes left", buffer.len());
        Ok(())
    }

    /// What a reader keeps between reads stays within its limits: at most
    /// `max_message_len` bytes of message, and 125 of a control frame.
    fn assert_bounded(reader: &FrameReader) {
        let limit = reader.messages.max_message_len;
        if let Some(message) = &reader.messages.unfinished {
            let len = message.payload.len();
            assert!(len <= limit, "{len} bytes");
            // A Vec at most doubles its capacity when it grows.
            let capacity = message.payload.capacity();
            assert!(capacity <= 2 * limit.max(8), "capacity {capacity}");
        }
        if let Some(frame) = &reader.frame {
            assert!(frame.control_payload.len() <= 125);
        }
    }

    /// Reads `bytes` whole, then one byte at a time, then cut at every
    /// position (at every two positions, if they are few), and checks that
    /// every way gives the same events and the same first error. Long inputs
    /// are cut near both ends and every 1009 bytes in between.
    fn read_events_split_anywhere(bytes: &[u8], limit: usize) -> Events {
        let whole = read_events(bytes, limit);
        for piece_len in [1, 2, 3, 5, 7, 14, 125, 4096] {
            let pieces = read_events_in_pieces(bytes, piece_len, limit);
            assert_eq!(pieces, whole, "{piece_len} bytes at a time");
        }
        let len = bytes.len();
        let cuts: Vec<usize> = if len <= 1024 {
            (0..=len).collect()
        } else {
            let ends = (0..=32).chain(len - 32..=len);
            ends.chain((33..len - 32).step_by(1009)).collect()
        };
        for &cut in &cuts {
            let split = read_events_cut_at(bytes, &[cut], limit);
            assert_eq!(split, whole, "cut at {cut}");
        }
        if len <= 64 {
            for first in 0..=len {
                for second in first..=len {
                    let split = read_events_cut_at(bytes, &[first, second], limit);
                    assert_eq!(split, whole, "cut at {first} and {second}");
                }
            }
        }
        whole
    }

    /// Encodes any frame header and payload, masked if the header has a key.
    fn encode_any(header: FrameHeader, payload: &[u8]) -> Vec<u8> {
        let mut bytes = Vec::new();
        write_header(&header, &mut bytes);
        let start = bytes.len();
        bytes.extend_from_slice(payload);
        if let Some(key) = header.mask {
            apply_mask(&mut bytes[start..], key, 0);
        }
        bytes
    }

    fn header(fin: bool, opcode: Opcode, mask: Option<[u8; 4]>, len: usize) -> FrameHeader {
        FrameHeader {
            fin,
            opcode,
            mask,
            payload_len: len as u64,
        }
    }

    /// Tells `messages` about one whole data frame, the way [`FrameReader`]
    /// does: its header, its payload, its end.
    fn push_data(
        messages: &mut Messages,
        header: &FrameHeader,
        payload: &[u8],
    ) -> Result<Event, ProtocolError> {
        messages.start_frame(header)?;
        messages.push_payload(payload)?;
        messages.end_frame(header.fin)
    }

    #[test]
    fn rfc_unmasked_hello() {
        assert_debug_snapshot!(shown(&read_unmasked(&UNMASKED_HELLO)));
        assert_eq!(encode_frame(Opcode::Text, b"Hello"), UNMASKED_HELLO);
    }

    /// Refused as soon as its header is there: here, the first two bytes.
    #[test]
    fn rfc_unmasked_hello_is_refused_from_a_client() {
        let refused = (vec![], Some(ProtocolError::Unmasked));
        assert_eq!(read_events(&UNMASKED_HELLO[..2], MAX_MESSAGE_LEN), refused);
        assert_eq!(read_events_split_anywhere(&UNMASKED_HELLO, 125), refused);
    }

    #[test]
    fn rfc_masked_hello() {
        let parsed = parse_header(&MASKED_HELLO);
        let events = read_events_split_anywhere(&MASKED_HELLO, MAX_MESSAGE_LEN);
        assert_debug_snapshot!((parsed, events));
        let header = header(true, Opcode::Text, Some(KEY), 5);
        assert_eq!(encode_any(header, b"Hello"), MASKED_HELLO);
    }

    #[test]
    fn rfc_masking_worked_example() {
        let lines: Vec<String> = b"Hello"
            .iter()
            .enumerate()
            .map(|(i, &byte)| {
                let key = KEY[i % 4];
                let masked = byte ^ key;
                let unmasked = masked ^ key;
                let character = byte as char;
                let masking = format!(
                    "{character:?} {byte:02x} ^ key[{}] {key:02x} = {masked:02x}",
                    i % 4
                );
                format!("{masking}, and back: {masked:02x} ^ {key:02x} = {unmasked:02x}")
            })
            .collect();
        assert_snapshot!(lines.join("\n"));
        let mut payload = *b"Hello";
        apply_mask(&mut payload, KEY, 0);
        assert_eq!(payload, MASKED_HELLO[6..]);
        apply_mask(&mut payload, KEY, 0);
        assert_eq!(&payload, b"Hello");
    }

    /// A payload that arrives in pieces is unmasked piece by piece: each
    /// piece must go on with the key where the last one stopped. Cut at any
    /// two positions, the pieces give what the whole payload gives.
    #[test]
    fn apply_mask_in_pieces_equals_whole() {
        let payload: Vec<u8> = (0..23).map(|i| i * 11).collect();
        let mut whole = payload.clone();
        apply_mask(&mut whole, KEY, 0);
        for first in 0..=payload.len() {
            for second in first..=payload.len() {
                let mut pieces = payload.clone();
                let (start, rest) = pieces.split_at_mut(first);
                let (middle, end) = rest.split_at_mut(second - first);
                apply_mask(start, KEY, 0);
                apply_mask(middle, KEY, first as u64);
                apply_mask(end, KEY, second as u64);
                assert_eq!(pieces, whole, "cut at {first} and {second}");
            }
        }
        // Byte 5 of a payload is masked with key byte 1, wherever it arrives,
        // even far into a payload of more than 4 GiB.
        for offset in [5, 1 << 33 | 5, (1 << 62) + 1] {
            let mut byte = [0];
            apply_mask(&mut byte, KEY, offset);
            assert_eq!(byte, [KEY[1]], "offset {offset}");
        }
    }

    #[test]
    fn rfc_fragmented_hello() {
        let first = read_unmasked(&FRAGMENTED_HEL).unwrap();
        let last = read_unmasked(&FRAGMENTED_LO).unwrap();
        let mut messages = Messages::new(MAX_MESSAGE_LEN);
        let transcript = [
            format!(
                "{} -> {:?}",
                hex(&FRAGMENTED_HEL),
                shown(&Ok(first.clone()))
            ),
            format!("  -> {:?}", push_data(&mut messages, &first.0, &first.1)),
            format!("{} -> {:?}", hex(&FRAGMENTED_LO), shown(&Ok(last.clone()))),
            format!("  -> {:?}", push_data(&mut messages, &last.0, &last.1)),
        ];
        assert_snapshot!(transcript.join("\n"));
        let hel = header(false, Opcode::Text, None, 3);
        let lo = header(true, Opcode::Continuation, None, 2);
        assert_eq!(encode_any(hel, b"Hel"), FRAGMENTED_HEL);
        assert_eq!(encode_any(lo, b"lo"), FRAGMENTED_LO);
    }

    #[test]
    fn rfc_ping_and_pong() {
        let ping = read_unmasked(&UNMASKED_PING);
        let pong = read_events_split_anywhere(&MASKED_PONG, MAX_MESSAGE_LEN);
        assert_debug_snapshot!((shown(&ping), pong));
        assert_eq!(encode_frame(Opcode::Ping, b"Hello"), UNMASKED_PING);
        let pong = header(true, Opcode::Pong, Some(KEY), 5);
        assert_eq!(encode_any(pong, b"Hello"), MASKED_PONG);
    }

    #[test]
    fn rfc_256_bytes_with_a_16_bit_length() {
        let payload: Vec<u8> = (0..=255).collect();
        let mut bytes = BINARY_256_HEADER.to_vec();
        bytes.extend_from_slice(&payload);
        let header = parse_header(&bytes);
        assert_snapshot!(format!("{} -> {header:#?}", hex(&BINARY_256_HEADER)));
        assert_eq!(read_unmasked(&bytes).unwrap().1, payload);
        assert_eq!(encode_frame(Opcode::Binary, &payload), bytes);
    }

    #[test]
    fn rfc_64_kib_with_a_64_bit_length() {
        let payload: Vec<u8> = (0..65536).map(|i| (i % 251) as u8).collect();
        let mut bytes = BINARY_64K_HEADER.to_vec();
        bytes.extend_from_slice(&payload);
        let header = parse_header(&bytes);
        assert_snapshot!(format!("{} -> {header:#?}", hex(&BINARY_64K_HEADER)));
        assert_eq!(read_unmasked(&bytes).unwrap().1, payload);
        assert_eq!(encode_frame(Opcode::Binary, &payload), bytes);
    }

    // ANCHOR: test_the_three_length_encodings
    /// The classic bug is `len as u8`: right up to 125, wrong from 126 on.
    #[test]
    fn the_three_length_encodings() {
        let lines: Vec<String> = [0, 1, 125, 126, 127, 65535, 65536, 100_000]
            .iter()
            .map(|&len| {
                let frame = encode_frame(Opcode::Binary, &vec![0; len]);
                let header_len = frame.len() - len;
                format!("{len:>6} bytes: {}", hex(&frame[..header_len]))
            })
            .collect();
        assert_snapshot!(lines.join("\n"));
    }
    // ANCHOR_END: test_the_three_length_encodings

    #[test]
    fn lengths_round_trip_at_every_boundary() {
        for len in [0, 1, 124, 125, 126, 127, 128, 65534, 65535, 65536, 65537] {
            let payload: Vec<u8> = (0..len).map(|i| (i % 256) as u8).collect();
            let header = header(true, Opcode::Binary, Some(KEY), len);
            let events = read_events(&encode_any(header, &payload), MAX_MESSAGE_LEN);
            let expected = (vec![Event::Message(Message::Binary(payload))], None);
            assert_eq!(events, expected, "length {len}");
        }
    }

    #[test]
    fn every_opcode() {
        let lines: Vec<String> = (0..16)
            .map(|bits| match Opcode::from_bits(bits) {
                Some(opcode) => format!("0x{bits:X}: {opcode:?}, control: {}", opcode.is_control()),
                None => format!("0x{bits:X}: reserved"),
            })
            .collect();
        assert_snapshot!(lines.join("\n"));
    }

    // Protocol errors: one snapshot each, with the close code it earns.

    /// A masked client frame with any first byte (FIN, RSV bits, opcode), so
    /// that the tests can build frames the types above refuse to describe.
    fn client_frame(first_byte: u8, payload: &[u8]) -> Vec<u8> {
        let mut bytes = vec![first_byte];
        match payload.len() {
            len @ 0..=125 => bytes.push(0x80 | len as u8),
            len => {
                bytes.push(0x80 | 126);
                bytes.extend_from_slice(&(len as u16).to_be_bytes());
            }
        }
        bytes.extend_from_slice(&KEY);
        let start = bytes.len();
        bytes.extend_from_slice(payload);
        apply_mask(&mut bytes[start..], KEY, 0);
        bytes
    }

    /// A masked client frame whose length takes the 8-byte form, whatever it
    /// is (allowed, if not the shortest).
    fn client_frame_64(first_byte: u8, payload: &[u8]) -> Vec<u8> {
        let mut bytes = vec![first_byte, 0x80 | 127];
        bytes.extend_from_slice(&(payload.len() as u64).to_be_bytes());
        bytes.extend_from_slice(&KEY);
        let start = bytes.len();
        bytes.extend_from_slice(payload);
        apply_mask(&mut bytes[start..], KEY, 0);
        bytes
    }

    /// Feeds `bytes` to the server's side and describes the first protocol
    /// error: the error, the reason sent, and the close code. (And checks
    /// that the bytes give the same, whatever pieces they arrive in.)
    fn first_error_with_limit(bytes: &[u8], limit: usize) -> String {
        let (events, error) = read_events_split_anywhere(bytes, limit);
        let Some(error) = error else {
            panic!("no protocol error after {events:?}");
        };
        let shown = if bytes.len() > 24 {
            format!("{} ... ({} bytes)", hex(&bytes[..24]), bytes.len())
        } else {
            hex(bytes)
        };
        let lines = [
            format!("bytes: {shown}"),
            format!("events before: {events:?}"),
            format!("error: {error:?}"),
            format!("reason: {error}"),
            format!("close code: {}", error.close_code()),
        ];
        lines.join("\n")
    }

    fn first_error(bytes: &[u8]) -> String {
        first_error_with_limit(bytes, MAX_MESSAGE_LEN)
    }

    fn concat(frames: &[Vec<u8>]) -> Vec<u8> {
        frames.concat()
    }

    #[test]
    fn error_reserved_bits() {
        assert_snapshot!(first_error(&client_frame(0x80 | 0x40 | 0x1, b"Hello")));
    }

    #[test]
    fn error_reserved_opcode() {
        assert_snapshot!(first_error(&client_frame(0x80 | 0x3, b"")));
    }

    #[test]
    fn error_reserved_control_opcode() {
        assert_snapshot!(first_error(&client_frame(0x80 | 0xB, b"")));
    }

    #[test]
    fn error_fragmented_control_frame() {
        assert_snapshot!(first_error(&client_frame(0x09, b"ping")));
    }

    #[test]
    fn error_control_frame_too_long() {
        assert_snapshot!(first_error(&client_frame(0x89, &[b'x'; 126])));
    }

    #[test]
    fn error_length_high_bit_set() {
        let mut bytes = vec![0x82, 0x80 | 127, 0x80, 0, 0, 0, 0, 0, 0, 0];
        bytes.extend_from_slice(&KEY);
        assert_snapshot!(first_error(&bytes));
    }

    #[test]
    fn error_unmasked() {
        assert_snapshot!(first_error(&UNMASKED_HELLO));
    }

    /// Only a header announcing 16 MiB + 1 byte, and no payload: the error
    /// comes from the header alone, before anything is allocated or read.
    #[test]
    fn error_frame_too_big() {
        let header = header(true, Opcode::Binary, Some(KEY), MAX_MESSAGE_LEN + 1);
        assert_snapshot!(first_error(&encode_any(header, b"")));
    }

    #[test]
    fn error_message_too_big() {
        let bytes = concat(&[
            client_frame(0x01, b"123456"),
            client_frame(0x00, b"7890"),
            client_frame(0x80, b"X"),
        ]);
        assert_snapshot!(first_error_with_limit(&bytes, 10));
    }

    #[test]
    fn error_continuation_without_start() {
        assert_snapshot!(first_error(&client_frame(0x80, b"lo")));
    }

    #[test]
    fn error_message_not_finished() {
        let bytes = concat(&[client_frame(0x01, b"Hel"), client_frame(0x81, b"Hello")]);
        assert_snapshot!(first_error(&bytes));
    }

    #[test]
    fn error_invalid_utf8() {
        assert_snapshot!(first_error(&client_frame(0x81, b"caf\xe9")));
    }

    /// The second fragment can never become valid: the error comes at once,
    /// not when the last fragment arrives (there is none here).
    #[test]
    fn error_invalid_utf8_in_a_fragment() {
        let bytes = concat(&[client_frame(0x01, b"Hello "), client_frame(0x00, b"\xff")]);
        assert_snapshot!(first_error(&bytes));
    }

    #[test]
    fn error_text_ends_in_the_middle_of_a_character() {
        let bytes = concat(&[client_frame(0x01, b"\xe2\x82"), client_frame(0x80, b"")]);
        assert_snapshot!(first_error(&bytes));
    }

    #[test]
    fn error_close_frame_of_one_byte() {
        assert_snapshot!(first_error(&client_frame(0x88, b"\x03")));
    }

    #[test]
    fn error_invalid_close_code() {
        assert_snapshot!(first_error(&client_frame(0x88, &1005u16.to_be_bytes())));
    }

    #[test]
    fn error_close_reason_not_utf8() {
        assert_snapshot!(first_error(&client_frame(0x88, b"\x03\xe8bye\xff")));
    }

    #[test]
    fn every_close_reason_fits_in_a_control_frame() {
        let errors = [
            ProtocolError::ReservedBits,
            ProtocolError::ReservedOpcode(0xF),
            ProtocolError::FragmentedControlFrame,
            ProtocolError::ControlFrameTooLong,
            ProtocolError::LengthHighBitSet,
            ProtocolError::Unmasked,
            ProtocolError::MessageTooBig,
            ProtocolError::ContinuationWithoutStart,
            ProtocolError::MessageNotFinished,
            ProtocolError::InvalidUtf8,
            ProtocolError::CloseFrameOfOneByte,
            ProtocolError::InvalidCloseCode(65535),
            ProtocolError::CloseReasonNotUtf8,
        ];
        for error in errors {
            let payload = close_payload(error.close_code(), &error.to_string());
            assert!(payload.len() <= 125, "{error:?}");
        }
    }

    // Reading bytes as they arrive: in any pieces, failing as early as it can.

    /// Whatever pieces the bytes arrive in, the events are the same: the RFC
    /// examples (masked, as a client sends them), and sequences of frames
    /// with all three length encodings.
    #[test]
    fn split_anywhere_gives_the_same_events() {
        let text = |text: &str| Event::Message(Message::Text(text.to_string()));
        let binary = |bytes: &[u8]| Event::Message(Message::Binary(bytes.to_vec()));
        let bytes_256: Vec<u8> = (0..=255).collect();
        let bytes_300: Vec<u8> = (0..300).map(|i| (i % 256) as u8).collect();
        let bytes_64k: Vec<u8> = (0..65536).map(|i| (i % 251) as u8).collect();
        let binary_256 = header(true, Opcode::Binary, Some(KEY), 256);
        let binary_64k = header(true, Opcode::Binary, Some(KEY), 65536);
        let cases: Vec<(Vec<u8>, Vec<Event>)> = vec![
            (MASKED_HELLO.to_vec(), vec![text("Hello")]),
            (MASKED_PONG.to_vec(), vec![Event::Pong(b"Hello".to_vec())]),
            (
                concat(&[client_frame(0x01, b"Hel"), client_frame(0x80, b"lo")]),
                vec![Event::Fragment, text("Hello")],
            ),
            (
                concat(&[
                    client_frame(0x01, b"Hel"),
                    client_frame(0x89, b"are you there?"),
                    client_frame(0x80, b"lo"),
                ]),
                vec![
                    Event::Fragment,
                    Event::Ping(b"are you there?".to_vec()),
                    text("Hello"),
                ],
            ),
            (
                concat(&[
                    client_frame(0x81, b""),
                    client_frame(0x81, "κόσμε".as_bytes()),
                    client_frame(0x88, b"\x03\xe8bye"),
                ]),
                vec![
                    text(""),
                    text("κόσμε"),
                    Event::Close(Close {
                        code: Some(1000),
                        reason: "bye".to_string(),
                    }),
                ],
            ),
            (
                concat(&[encode_any(binary_256, &bytes_256), MASKED_HELLO.to_vec()]),
                vec![binary(&bytes_256), text("Hello")],
            ),
            (
                concat(&[
                    client_frame_64(0x02, &bytes_300),
                    client_frame(0x89, b""),
                    client_frame_64(0x80, b"!"),
                ]),
                vec![
                    Event::Fragment,
                    Event::Ping(vec![]),
                    binary(&[bytes_300.as_slice(), b"!"].concat()),
                ],
            ),
            (encode_any(binary_64k, &bytes_64k), vec![binary(&bytes_64k)]),
        ];
        for (bytes, expected) in cases {
            let events = read_events_split_anywhere(&bytes, MAX_MESSAGE_LEN);
            assert_eq!(events, (expected, None), "{}", hex(&bytes[..14]));
        }
    }

    /// Feeds `bytes` one at a time, and returns the events, and the error
    /// with the index of the byte whose arrival caused it.
    fn read_byte_by_byte(bytes: &[u8]) -> (Vec<Event>, Option<(usize, ProtocolError)>) {
        let mut reader = FrameReader::new(MAX_MESSAGE_LEN);
        let mut buffer = Vec::new();
        let mut events = Vec::new();
        for (i, &byte) in bytes.iter().enumerate() {
            buffer.push(byte);
            if let Err(error) = read_available(&mut reader, &mut buffer, &mut events) {
                return (events, Some((i, error)));
            }
        }
        (events, None)
    }

    /// Invalid text fails the moment the first byte that makes it invalid
    /// arrives, in the middle of the frame, before the rest of it is here
    /// (like Autobahn's cases 6.4.3 and 6.4.4, which send one frame in three
    /// pieces, with pauses in between, and expect the connection to fail at
    /// the second).
    #[test]
    fn invalid_utf8_fails_mid_frame_before_the_rest_arrives() {
        // "κόσμε", then f4 90 80 80 (beyond U+10FFFF), then "edited". f4 could
        // still start a character; f4 90 cannot.
        let payload = b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xf4\x90\x80\x80edited";
        let frame = client_frame(0x81, payload);
        let header_len = 6;
        let bad_byte = header_len + 12; // the 90 after f4
        assert_eq!(frame[bad_byte] ^ KEY[12 % 4], 0x90);
        let expected = (vec![], Some((bad_byte, ProtocolError::InvalidUtf8)));
        assert_eq!(read_byte_by_byte(&frame), expected);

        // In three pieces: the valid start, the bad bytes, the rest.
        let mut reader = FrameReader::new(MAX_MESSAGE_LEN);
        let (start, rest) = frame.split_at(header_len + 11);
        assert_eq!(reader.read(start), Ok((start.len(), None)));
        let error = reader.read(&rest[..4]);
        assert_eq!(error, Err(ProtocolError::InvalidUtf8));

        // The same bytes, fragmented: the error comes with the bad fragment.
        let bytes = concat(&[
            client_frame(0x01, &payload[..11]),
            client_frame(0x00, &payload[11..15]),
            client_frame(0x80, &payload[15..]),
        ]);
        let (events, error) = read_byte_by_byte(&bytes);
        assert_eq!(events, [Event::Fragment]);
        assert_eq!(error, Some((17 + 6 + 1, ProtocolError::InvalidUtf8)));
    }

    /// A piece that ends in the middle of a character is not an error: the
    /// next piece may complete it.
    #[test]
    fn a_character_cut_mid_frame_does_not_fail_early() {
        let text = "κόσμε: ä€😀";
        let frame = client_frame(0x81, text.as_bytes());
        let message = Event::Message(Message::Text(text.to_string()));
        assert_eq!(read_byte_by_byte(&frame), (vec![message], None));

        // "é" is c3 a9: the first piece ends after c3.
        let frame = client_frame(0x81, "café".as_bytes());
        let mut reader = FrameReader::new(MAX_MESSAGE_LEN);
        assert_eq!(reader.read(&frame[..10]), Ok((10, None)));
        let message = Event::Message(Message::Text("café".to_string()));
        assert_eq!(reader.read(&frame[10..]), Ok((1, Some(message))));
    }

    /// The rules the first two bytes can break fail with those two bytes: no
    /// need to wait for the length and the mask.
    #[test]
    fn errors_in_the_first_two_bytes_come_before_the_rest_of_the_header() {
        let cases = [
            ([0xc1, 0x85], ProtocolError::ReservedBits),
            ([0x83, 0x80], ProtocolError::ReservedOpcode(0x3)),
            ([0x8b, 0x80], ProtocolError::ReservedOpcode(0xB)),
            ([0x09, 0x84], ProtocolError::FragmentedControlFrame),
            ([0x89, 0xfe], ProtocolError::ControlFrameTooLong),
            ([0x89, 0xff], ProtocolError::ControlFrameTooLong),
        ];
        for (first_two, error) in cases {
            assert_eq!(parse_header(&first_two[..1]), Ok(None), "{error:?}");
            assert_eq!(parse_header(&first_two), Err(error));
            assert_eq!(
                FrameReader::new(MAX_MESSAGE_LEN).read(&first_two),
                Err(error)
            );
        }
        // A valid start waits for the rest of the header, without using any
        // of it, even when the rest will be wrong.
        let high_bit_set = [
            0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0, 0x37, 0xfa, 0x21, 0x3d,
        ];
        for len in 0..high_bit_set.len() {
            let prefix = &high_bit_set[..len];
            assert_eq!(parse_header(prefix), Ok(None), "{len} bytes");
            let mut reader = FrameReader::new(MAX_MESSAGE_LEN);
            assert_eq!(reader.read(prefix), Ok((0, None)), "{len} bytes");
        }
        let error = Err(ProtocolError::LengthHighBitSet);
        assert_eq!(parse_header(&high_bit_set), error);
    }

    /// A frame that would make the message too big fails with its header,
    /// before any of its payload arrives.
    #[test]
    fn the_size_limit_comes_from_the_header_alone() {
        const LIMIT: usize = 10;
        let too_big = client_frame(0x82, &[0; LIMIT + 1]);
        let mut reader = FrameReader::new(LIMIT);
        let error = ProtocolError::MessageTooBig;
        assert_eq!(reader.read(&too_big[..6]), Err(error));
        assert_eq!(error.close_code(), MESSAGE_TOO_BIG);

        // Exactly the limit is fine.
        let just_right = client_frame(0x82, &[0; LIMIT]);
        let mut reader = FrameReader::new(LIMIT);
        assert_eq!(reader.read(&just_right[..6]), Ok((6, None)));
        let message = Event::Message(Message::Binary(vec![0; LIMIT]));
        assert_eq!(reader.read(&just_right[6..]), Ok((LIMIT, Some(message))));

        // A continuation counts what the message already holds: 6 + 5 > 10.
        for (second, result) in [(&b"78901"[..], Err(error)), (b"7890", Ok((6, None)))] {
            let mut reader = FrameReader::new(LIMIT);
            let first = client_frame(0x02, b"123456");
            assert_eq!(
                reader.read(&first),
                Ok((first.len(), Some(Event::Fragment)))
            );
            let header = &client_frame(0x80, second)[..6];
            assert_eq!(reader.read(header), result, "{}", hex(second));
        }

        // A header that announces 2^63 - 1 bytes allocates nothing.
        let header = header(true, Opcode::Binary, Some(KEY), 0);
        let mut bytes = encode_any(
            FrameHeader {
                payload_len: u64::MAX >> 1,
                ..header
            },
            b"",
        );
        assert_eq!(bytes.len(), MAX_HEADER_LEN);
        let mut reader = FrameReader::new(MAX_MESSAGE_LEN);
        assert_eq!(reader.read(&bytes), Err(error));
        bytes.extend_from_slice(b"more");
        assert_eq!(FrameReader::new(MAX_MESSAGE_LEN).read(&bytes), Err(error));
    }

    // Messages: fragments, control frames between them, UTF-8 across frames.

    /// Sends `frames` through one `FrameReader`, one at a time. For each
    /// frame: its header and unmasked payload, then what the reader returns
    /// (the bytes it used, and the event).
    fn transcript(frames: &[Vec<u8>]) -> String {
        let mut reader = FrameReader::new(MAX_MESSAGE_LEN);
        let mut lines = Vec::new();
        for bytes in frames {
            let (header, payload) = read_any(bytes).unwrap();
            lines.push(format!("{header:?} {:?}", ByteString(&payload)));
            lines.push(format!("  -> {:?}", reader.read(bytes)));
        }
        read_events_split_anywhere(&frames.concat(), MAX_MESSAGE_LEN);
        lines.join("\n")
    }

    #[test]
    fn ping_between_fragments_is_answered_at_once() {
        assert_snapshot!(transcript(&[
            client_frame(0x01, b"Hel"),
            client_frame(0x89, b"are you there?"),
            client_frame(0x80, b"lo"),
        ]));
    }

    #[test]
    fn a_character_split_across_fragments() {
        // "é" is c3 a9: the first fragment ends after c3.
        assert_snapshot!(transcript(&[
            client_frame(0x01, b"caf\xc3"),
            client_frame(0x80, b"\xa9"),
        ]));
    }

    #[test]
    fn close_frames() {
        let cases: &[&[u8]] = &[
            b"",
            b"\x03\xe8",
            b"\x03\xe8bye",
            b"\x03\xe9going away",
            b"\x0b\xb8",
            b"\x13\x87",
            b"\x03",
            b"\x03\xec",
            b"\x03\xed",
            b"\x03\xee",
            b"\x03\xf3",
            b"\x03\xf4",
            b"\x0b\xb7",
            b"\x13\x88",
            b"\x03\xe8\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5",
            b"\x03\xe8\xed\xa0\x80",
        ];
        let lines: Vec<String> = cases
            .iter()
            .map(|payload| format!("{}: {:?}", hex(payload), parse_close(payload)))
            .collect();
        assert_snapshot!(lines.join("\n"));
    }

    #[test]
    fn close_codes() {
        let valid: Vec<u16> = (0..=u16::MAX)
            .filter(|&code| is_valid_close_code(code))
            .collect();
        assert_eq!(valid.len(), 4 + 5 + 2000);
        for code in [999, 1004, 1005, 1006, 1012, 1015, 1016, 2999, 5000] {
            assert!(!is_valid_close_code(code), "{code}");
        }
    }

    /// Every way to cut valid text into 2 or 3 fragments gives back the text.
    #[test]
    fn valid_text_split_anywhere() {
        let text = "κόσμε: ä€😀";
        let bytes = text.as_bytes();
        for first_cut in 0..=bytes.len() {
            for second_cut in first_cut..=bytes.len() {
                let pieces = [
                    &bytes[..first_cut],
                    &bytes[first_cut..second_cut],
                    &bytes[second_cut..],
                ];
                let mut messages = Messages::new(MAX_MESSAGE_LEN);
                let mut last = None;
                for (i, piece) in pieces.iter().enumerate() {
                    let opcode = if i == 0 {
                        Opcode::Text
                    } else {
                        Opcode::Continuation
                    };
                    let header = header(i == 2, opcode, None, piece.len());
                    last = Some(push_data(&mut messages, &header, piece));
                }
                let expected = Event::Message(Message::Text(text.to_string()));
                assert_eq!(last, Some(Ok(expected)), "cut at {first_cut}, {second_cut}");
            }
        }
    }

    /// Invalid text fails at the first fragment that makes it invalid.
    #[test]
    fn invalid_text_fails_at_the_first_bad_fragment() {
        // Each case: the start of a valid character, then bytes that can
        // never complete it.
        let cases: &[(&[u8], &[u8])] = &[
            (b"Hello", b"\xff"),            // ff is never valid in UTF-8
            (b"\xce", b"\xba\x80"),         // "κ", then a continuation byte too many
            (b"\xed", b"\xa0\x80"),         // a UTF-16 surrogate, U+D800
            (b"\xf4", b"\x90\x80\x80"),     // over U+10FFFF
            (b"\xe0", b"\x80\xaf"),         // an overlong encoding of "/"
            (b"\xf0\x9f\x98", b"\x80\x80"), // "😀", then a stray continuation byte
            (b"", b"\xc0\xaf"),             // c0 is never valid either
        ];
        for (good, bad) in cases {
            let mut messages = Messages::new(MAX_MESSAGE_LEN);
            let first = header(false, Opcode::Text, None, good.len());
            let first = push_data(&mut messages, &first, good);
            let second = header(false, Opcode::Continuation, None, bad.len());
            let second = push_data(&mut messages, &second, bad);
            let expected = (Ok(Event::Fragment), Err(ProtocolError::InvalidUtf8));
            assert_eq!((first, second), expected, "{} | {}", hex(good), hex(bad));
        }
    }

    // Whatever the bytes, the reader returns events or an error: it never
    // panics, never uses more bytes than it was given, and never holds more
    // than the limit it was given.

    /// What a client might send: a message, whole or in fragments, with
    /// control frames in between. Often valid, sometimes subtly not.
    fn plausible_frames(random: &mut Random) -> Vec<u8> {
        let mut bytes = Vec::new();
        let fragments = 1 + random.below(4);
        let opcode = [0x1, 0x2][random.below(2)];
        for i in 0..fragments {
            let fin = if i + 1 == fragments { 0x80 } else { 0 };
            let opcode = if i == 0 { opcode } else { 0x0 };
            bytes.extend(plausible_frame(random, fin | opcode));
            if random.below(4) == 0 {
                let control = [0x88, 0x89, 0x8a][random.below(3)];
                bytes.extend(plausible_frame(random, control));
            }
        }
        bytes
    }

    /// One frame with this first byte (or, now and then, any first byte).
    fn plausible_frame(random: &mut Random, first_byte: u8) -> Vec<u8> {
        let first_byte = match random.below(20) {
            0 => random.byte(),
            _ => first_byte,
        };
        let payload = match random.below(4) {
            0 => random.bytes(8),
            1 => random.bytes(130),
            2 => {
                let text = "κόσμε: ä€😀 Hello".as_bytes();
                let start = random.below(text.len());
                let end = start + random.below(text.len() - start + 1);
                text[start..end].to_vec()
            }
            _ => {
                let codes = [1000, 1001, 1005, 1016, 3000, 4999, 5000];
                let code: u16 = codes[random.below(codes.len())];
                let mut payload = code.to_be_bytes().to_vec();
                payload.extend(random.bytes(4));
                payload
            }
        };
        // Usually the true length; sometimes a lie, small or huge.
        let len = match random.below(20) {
            0 => random.next(),
            1 => random.next() >> random.below(64),
            2 => (payload.len() + random.below(3)) as u64,
            _ => payload.len() as u64,
        };
        let mask = match random.below(32) {
            0 => None,
            _ => Some([random.byte(), random.byte(), random.byte(), random.byte()]),
        };
        let mask_bit = if mask.is_some() { 0x80 } else { 0 };
        let mut bytes = vec![first_byte];
        // The shortest length encoding, or now and then the 8-byte one.
        match (len, random.below(8)) {
            (len @ 0..=125, 1..) => bytes.push(mask_bit | len as u8),
            (len @ 126..=65535, 1..) => {
                bytes.push(mask_bit | 126);
                bytes.extend((len as u16).to_be_bytes());
            }
            (len, _) => {
                bytes.push(mask_bit | 127);
                bytes.extend(len.to_be_bytes());
            }
        }
        let start = bytes.len() + if mask.is_some() { 4 } else { 0 };
        bytes.extend(mask.unwrap_or_default());
        bytes.extend(payload);
        if let Some(key) = mask {
            apply_mask(&mut bytes[start..], key, 0);
        }
        bytes
    }

    /// Flips bits, replaces, inserts and cuts off bytes, a few times.
    fn mutate(random: &mut Random, bytes: &mut Vec<u8>) {
        for _ in 0..random.below(4) {
            if bytes.is_empty() {
                return;
            }
            let at = random.below(bytes.len());
            match random.below(4) {
                0 => bytes[at] ^= 1 << random.below(8),
                1 => bytes[at] = random.byte(),
                2 => bytes.insert(at, random.byte()),
                _ => bytes.truncate(at),
            }
        }
    }

    /// Cuts `len` bytes into pieces of random sizes: often tiny, sometimes
    /// big. Returns where the cuts go.
    fn random_cuts(random: &mut Random, len: usize) -> Vec<usize> {
        let mut cuts = Vec::new();
        let mut at = 0;
        loop {
            at += match random.below(4) {
                0 => 1,
                1 => 1 + random.below(4),
                2 => 1 + random.below(16),
                _ => 1 + random.below(200),
            };
            if at >= len {
                return cuts;
            }
            cuts.push(at);
        }
    }

    /// `InvalidCloseCode(1005)` -> `"InvalidCloseCode"`
    fn variant_name(error: ProtocolError) -> String {
        let name = format!("{error:?}");
        name.split('(').next().unwrap_or_default().to_string()
    }

    /// Each input is read whole, and in pieces of random sizes: both must
    /// give the same events and error. `read_available` checks, after every
    /// read, that the reader used no more bytes than it was given, left only
    /// part of a header unused, and holds no more than `LIMIT` bytes.
    #[test]
    fn fuzz_random_and_mutated_frames() {
        const LIMIT: usize = 1000;
        let mut random = Random(0x9e37_79b9_7f4a_7c15);
        // A stream of its own, so that the inputs are those of stage 3.
        let mut cutting = Random(0x2545_f491_4f6c_dd1d);
        let mut frames = 0;
        let mut messages_seen = 0;
        let mut errors_seen = std::collections::BTreeSet::new();
        for _ in 0..100_000 {
            let mut input = plausible_frames(&mut random);
            if random.below(3) == 0 {
                mutate(&mut random, &mut input);
            }
            let (events, error) = read_events(&input, LIMIT);
            let cuts = random_cuts(&mut cutting, input.len());
            let in_pieces = read_events_cut_at(&input, &cuts, LIMIT);
            assert_eq!(in_pieces, (events.clone(), error), "{}", hex(&input));
            // A frame that failed gives no event; count it all the same.
            frames += events.len() + usize::from(error.is_some());
            for event in events {
                match event {
                    Event::Message(message) => {
                        messages_seen += 1;
                        assert!(message.payload().len() <= LIMIT);
                    }
                    Event::Ping(payload) | Event::Pong(payload) => {
                        assert!(payload.len() <= 125);
                    }
                    Event::Fragment | Event::Close(_) => {}
                }
            }
            if let Some(error) = error {
                errors_seen.insert(variant_name(error));
            }
        }
        // The inputs reach every rule, and often get past all of them.
        assert!(frames > 100_000, "only {frames} frames");
        assert!(messages_seen > 20_000, "only {messages_seen} messages");
        assert_snapshot!(errors_seen.into_iter().collect::<Vec<_>>().join("\n"));
    }

    /// `write_header` and `parse_header` are each other's inverse, and
    /// `parse_header` waits until the whole header is there.
    #[test]
    fn headers_round_trip() {
        let mut random = Random(42);
        for _ in 0..100_000 {
            let opcode = loop {
                if let Some(opcode) = Opcode::from_bits(random.byte() & 0x0F) {
                    break opcode;
                }
            };
            let payload_len = match (opcode.is_control(), random.below(3)) {
                (true, _) => random.below(126) as u64,
                (false, 0) => random.below(126) as u64,
                (false, 1) => random.below(65536) as u64,
                (false, _) => random.next() >> 1,
            };
            let header = FrameHeader {
                fin: opcode.is_control() || random.below(2) == 0,
                opcode,
                mask: match random.below(2) {
                    0 => None,
                    _ => Some([random.byte(), random.byte(), random.byte(), random.byte()]),
                },
                payload_len,
            };
            let mut bytes = Vec::new();
            write_header(&header, &mut bytes);
            let header_len = bytes.len();
            for len in 0..header_len {
                assert_eq!(parse_header(&bytes[..len]), Ok(None), "{header:?}");
            }
            // What follows the header (the payload) is not part of it.
            bytes.push(random.byte());
            assert_eq!(parse_header(&bytes), Ok(Some((header, header_len))));
        }
    }
}
