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
//! 1. [`parse_frame`] parses one frame from the bytes a client has sent so
//!    far, and checks the rules a frame can break on its own (reserved bits,
//!    opcodes, masking, lengths).
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
const MAX_HEADER_LEN: usize = 14;

// ANCHOR: status_codes
/// The status code of a close frame sent because the other side broke a rule
/// of the protocol (RFC 6455, section 7.4.1).
const PROTOCOL_ERROR: u16 = 1002;

/// The status code for data that does not match its type: text that is not
/// UTF-8.
const INVALID_DATA: u16 = 1007;

/// The status code for a message too big to process.
const MESSAGE_TOO_BIG: u16 = 1009;

/// The status code for a client that broke a rule of the server's own, not
/// of the protocol: here, holding more memory than the server can spare.
pub const POLICY_VIOLATION: u16 = 1008;
// ANCHOR_END: status_codes

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
    fn from_bits(bits: u8) -> Option<Opcode> {
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
struct FrameHeader {
    /// Set on the last (often the only) frame of a message.
    fin: bool,
    opcode: Opcode,
    /// The masking key, present on every frame a client sends.
    mask: Option<[u8; 4]>,
    payload_len: u64,
}

/// A frame from a client, checked and unmasked.
#[derive(Clone, PartialEq, Eq)]
pub struct Frame {
    fin: bool,
    opcode: Opcode,
    payload: Vec<u8>,
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

// ANCHOR: parse_frame
/// Parses one frame from the start of `buffer`: checked, unmasked, with a
/// payload of at most `max_payload_len` bytes. Returns the frame and how
/// many bytes it took, or `None` while part of it has yet to arrive.
///
/// A frame arrives in as many pieces as the network likes: a read may return
/// half a header, or a frame and a half. So "not all here yet" is not an
/// error: the caller keeps the bytes, and calls again when more have come.
/// The header is checked as soon as it is here, so a frame that breaks a
/// rule, or is too big, is refused before its payload arrives.
pub fn parse_frame(
    buffer: &[u8],
    max_payload_len: usize,
) -> Result<Option<(Frame, usize)>, ProtocolError> {
    let Some((header, header_len)) = parse_header(buffer)? else {
        return Ok(None); // wait for the rest of the header
    };
    // A server must refuse a frame that a client did not mask (section 5.1).
    let Some(mask) = header.mask else {
        return Err(ProtocolError::Unmasked);
    };
    // Decide from the header, before waiting for (or storing) the payload: a
    // client that announces 2^63 bytes must not make us wait for them.
    if header.payload_len > max_payload_len as u64 {
        return Err(ProtocolError::MessageTooBig);
    }
    // After the check above, the length fits in a usize.
    let frame_len = header_len + header.payload_len as usize;
    let Some(payload) = buffer.get(header_len..frame_len) else {
        return Ok(None); // the header is here, the payload is on its way
    };
    let mut payload = payload.to_vec();
    apply_mask(&mut payload, mask);
    let frame = Frame {
        fin: header.fin,
        opcode: header.opcode,
        payload,
    };
    Ok(Some((frame, frame_len)))
}
// ANCHOR_END: parse_frame

// ANCHOR: parse_header
/// Parses a frame header from the start of `buffer`: 2 bytes, then 0, 2 or 8
/// bytes of extended length, then the 4-byte masking key if the MASK bit is
/// set. Returns the header and its length, or `None` while part of it has
/// yet to arrive.
///
/// It checks the rules of RFC 6455 that a header alone can break, all but
/// one: it accepts unmasked frames, which [`parse_frame`] refuses, so that it
/// can also read what a server sends (the tests use it on the examples of the
/// RFC). Our size limit is for [`parse_frame`] too.
fn parse_header(buffer: &[u8]) -> Result<Option<(FrameHeader, usize)>, ProtocolError> {
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
// ANCHOR_END: parse_header

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
/// Masks or unmasks a payload: the same operation, because XOR twice with
/// the same key gives back the original. Byte `i` is XORed with byte `i % 4`
/// of the key.
///
/// Why clients mask: a script in a web page chooses what it sends but not
/// the key, which the browser picks at random for each frame. So the script
/// cannot control the bytes on the wire, and cannot make them look like an
/// HTTP request that would fool a proxy on the way (section 10.3).
fn apply_mask(payload: &mut [u8], mask: [u8; 4]) {
    // The key four times over, 16 bytes: byte `i % 16` of it is byte `i % 4`
    // of the mask. A whole block of 16 bytes XORed with it is one SIMD
    // instruction, which the compiler finds: 20 times as fast as one byte
    // at a time.
    let key: [u8; 16] = std::array::from_fn(|i| mask[i % 4]);
    let mut blocks = payload.chunks_exact_mut(16);
    for block in &mut blocks {
        xor(block, &key);
    }
    xor(blocks.into_remainder(), &key);
}

/// XORs each of `bytes` with the byte of `key` at the same place.
fn xor(bytes: &mut [u8], key: &[u8]) {
    for (byte, key) in bytes.iter_mut().zip(key) {
        *byte ^= key;
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

    /// How the log shows a message: its kind and size, and how a text starts.
    pub fn describe(&self) -> String {
        match self {
            Message::Text(text) => {
                // `{:?}` quotes the text and escapes control characters, so
                // that a client cannot send escape codes to our terminal.
                let start: String = text.chars().take(40).collect();
                let more = if start.len() < text.len() { "..." } else { "" };
                format!("text of {} bytes {start:?}{more}", text.len())
            }
            Message::Binary(bytes) => format!("binary of {} bytes", bytes.len()),
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
    /// that the next fragment should complete.
    utf8_checked: usize,
}

impl Messages {
    pub fn new(max_message_len: usize) -> Messages {
        Messages {
            max_message_len,
            unfinished: None,
        }
    }

    /// How many bytes of an unfinished message it holds.
    pub fn unfinished_len(&self) -> usize {
        self.unfinished
            .as_ref()
            .map_or(0, |message| message.payload.len())
    }

    /// Takes the next frame from the client, and says what it means.
    pub fn push(&mut self, frame: Frame) -> Result<Event, ProtocolError> {
        match frame.opcode {
            Opcode::Ping => Ok(Event::Ping(frame.payload)),
            Opcode::Pong => Ok(Event::Pong(frame.payload)),
            Opcode::Close => Ok(Event::Close(parse_close(&frame.payload)?)),
            Opcode::Text | Opcode::Binary | Opcode::Continuation => self.push_data(frame),
        }
    }

    fn push_data(&mut self, frame: Frame) -> Result<Event, ProtocolError> {
        // A text or binary frame starts a message, a continuation frame
        // continues one: anything else is out of order.
        let mut message = match (frame.opcode, self.unfinished.take()) {
            (Opcode::Continuation, Some(message)) => message,
            (Opcode::Continuation, None) => return Err(ProtocolError::ContinuationWithoutStart),
            (_, Some(_)) => return Err(ProtocolError::MessageNotFinished),
            (opcode, None) => UnfinishedMessage {
                opcode,
                payload: Vec::new(),
                utf8_checked: 0,
            },
        };
        if message.payload.len() + frame.payload.len() > self.max_message_len {
            return Err(ProtocolError::MessageTooBig);
        }
        if message.payload.is_empty() {
            // Most messages are a single frame: take its payload, no copy.
            message.payload = frame.payload;
        } else {
            message.payload.extend_from_slice(&frame.payload);
        }
        if message.opcode == Opcode::Text {
            // Check the new bytes now: invalid text fails at the first bad
            // fragment, not after the client has sent the whole message.
            let unchecked = &message.payload[message.utf8_checked..];
            message.utf8_checked += check_utf8(unchecked)?;
        }
        if !frame.fin {
            self.unfinished = Some(message);
            return Ok(Event::Fragment);
        }
        message.finish().map(Event::Message)
    }
}

impl UnfinishedMessage {
    /// The whole message, now that its last frame has arrived.
    fn finish(self) -> Result<Message, ProtocolError> {
        match self.opcode {
            // The fragments were checked as they came; this last check also
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
fn write_header(header: &FrameHeader, out: &mut Vec<u8>) {
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

impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.debug_struct("Frame")
            .field("fin", &self.fin)
            .field("opcode", &self.opcode)
            .field("payload", &ByteString(&self.payload))
            .finish()
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

    /// Reads an unmasked frame, the way a client reads what a server sends:
    /// [`parse_header`], then the payload as it is.
    fn read_unmasked(bytes: &[u8]) -> Result<Frame, ProtocolError> {
        let (header, header_len) = parse_header(bytes)?.expect("a whole header");
        assert_eq!(header.mask, None, "not an unmasked frame");
        let payload = bytes[header_len..].to_vec();
        assert_eq!(
            payload.len() as u64,
            header.payload_len,
            "not one whole frame"
        );
        Ok(Frame {
            fin: header.fin,
            opcode: header.opcode,
            payload,
        })
    }

    /// A frame exactly as `parse_frame` must find it in `bytes`, with nothing left over.
    fn read_whole_frame(bytes: &[u8]) -> Result<Frame, ProtocolError> {
        let (frame, used) = parse_frame(bytes, MAX_MESSAGE_LEN)?.expect("a whole frame");
        assert_eq!(used, bytes.len(), "bytes left after the frame");
        Ok(frame)
    }

    /// The header at the start of `bytes`.
    fn header_of(bytes: &[u8]) -> Result<FrameHeader, ProtocolError> {
        Ok(parse_header(bytes)?.expect("a whole header").0)
    }

    /// The next frame in `bytes`, as the server reads it, or `None` once the
    /// bytes run out; `bytes` moves on past the frame.
    fn next_frame(bytes: &mut &[u8], limit: usize) -> Option<Result<Frame, ProtocolError>> {
        match parse_frame(bytes, limit) {
            Ok(Some((frame, used))) => {
                *bytes = &bytes[used..];
                Some(Ok(frame))
            }
            Ok(None) => None,
            Err(error) => Some(Err(error)),
        }
    }

    /// Encodes any frame header and payload, masked if the header has a key.
    fn encode_any(header: FrameHeader, payload: &[u8]) -> Vec<u8> {
        let mut bytes = Vec::new();
        write_header(&header, &mut bytes);
        let start = bytes.len();
        bytes.extend_from_slice(payload);
        if let Some(key) = header.mask {
            apply_mask(&mut bytes[start..], key);
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

    #[test]
    fn rfc_unmasked_hello() {
        assert_debug_snapshot!(read_unmasked(&UNMASKED_HELLO));
        assert_eq!(encode_frame(Opcode::Text, b"Hello"), UNMASKED_HELLO);
    }

    #[test]
    fn rfc_unmasked_hello_is_refused_from_a_client() {
        assert!(matches!(
            read_whole_frame(&UNMASKED_HELLO[..2]),
            Err(ProtocolError::Unmasked)
        ));
    }

    #[test]
    fn rfc_masked_hello() {
        let parsed = header_of(&MASKED_HELLO);
        assert_debug_snapshot!((parsed, read_whole_frame(&MASKED_HELLO)));
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
    }

    /// `apply_mask` does what section 5.3 says, byte `i` XORed with key
    /// byte `i % 4`, at every length: in blocks of 16 and in what is left.
    #[test]
    fn masking_at_every_length() {
        for length in 0..50 {
            let mut bytes: Vec<u8> = (0..length as u8).collect();
            apply_mask(&mut bytes, KEY);
            let expected: Vec<u8> = (0..length).map(|i| i as u8 ^ KEY[i % 4]).collect();
            assert_eq!(bytes, expected, "{length} bytes");
        }
    }

    #[test]
    fn rfc_fragmented_hello() {
        let first = read_unmasked(&FRAGMENTED_HEL).unwrap();
        let last = read_unmasked(&FRAGMENTED_LO).unwrap();
        let mut messages = Messages::new(MAX_MESSAGE_LEN);
        let transcript = [
            format!("{} -> {first:?}", hex(&FRAGMENTED_HEL)),
            format!("  -> {:?}", messages.push(first)),
            format!("{} -> {last:?}", hex(&FRAGMENTED_LO)),
            format!("  -> {:?}", messages.push(last)),
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
        let pong = read_whole_frame(&MASKED_PONG);
        assert_debug_snapshot!((ping, pong));
        assert_eq!(encode_frame(Opcode::Ping, b"Hello"), UNMASKED_PING);
        let pong = header(true, Opcode::Pong, Some(KEY), 5);
        assert_eq!(encode_any(pong, b"Hello"), MASKED_PONG);
    }

    #[test]
    fn rfc_256_bytes_with_a_16_bit_length() {
        let payload: Vec<u8> = (0..=255).collect();
        let mut bytes = BINARY_256_HEADER.to_vec();
        bytes.extend_from_slice(&payload);
        let header = header_of(&bytes);
        assert_snapshot!(format!("{} -> {header:#?}", hex(&BINARY_256_HEADER)));
        assert_eq!(read_unmasked(&bytes).unwrap().payload, payload);
        assert_eq!(encode_frame(Opcode::Binary, &payload), bytes);
    }

    #[test]
    fn rfc_64_kib_with_a_64_bit_length() {
        let payload: Vec<u8> = (0..65536).map(|i| (i % 251) as u8).collect();
        let mut bytes = BINARY_64K_HEADER.to_vec();
        bytes.extend_from_slice(&payload);
        let header = header_of(&bytes);
        assert_snapshot!(format!("{} -> {header:#?}", hex(&BINARY_64K_HEADER)));
        assert_eq!(read_unmasked(&bytes).unwrap().payload, payload);
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
            let frame = read_whole_frame(&encode_any(header, &payload)).unwrap();
            assert_eq!(frame.payload, payload, "length {len}");
        }
    }

    // ANCHOR: test_split_anywhere
    /// However the network cuts a frame, every piece short of the whole is
    /// "not yet", and the whole is the same frame.
    #[test]
    fn a_frame_cut_anywhere_waits_for_the_rest() {
        let bytes = encode_any(header(true, Opcode::Text, Some(KEY), 300), &[b'a'; 300]);
        for end in 0..bytes.len() {
            let result = parse_frame(&bytes[..end], MAX_MESSAGE_LEN);
            assert_eq!(result, Ok(None), "after {end} bytes");
        }
        assert_eq!(read_whole_frame(&bytes).unwrap().payload, [b'a'; 300]);
    }

    /// A frame too big, or unmasked, is refused from its header alone,
    /// without waiting for a payload that may never come.
    #[test]
    fn a_bad_header_is_refused_before_the_payload_arrives() {
        let too_big = header(true, Opcode::Binary, Some(KEY), MAX_MESSAGE_LEN + 1);
        let mut bytes = Vec::new();
        write_header(&too_big, &mut bytes);
        let refused = parse_frame(&bytes, MAX_MESSAGE_LEN);
        assert_eq!(refused, Err(ProtocolError::MessageTooBig));
        let refused = parse_frame(&UNMASKED_HELLO[..2], MAX_MESSAGE_LEN);
        assert_eq!(refused, Err(ProtocolError::Unmasked));
    }
    // ANCHOR_END: test_split_anywhere

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
        apply_mask(&mut bytes[start..], KEY);
        bytes
    }

    /// Feeds `bytes` to the server's side, frame by frame, and describes the
    /// first protocol error: the error, the reason sent, and the close code.
    fn first_error_with_limit(bytes: &[u8], limit: usize) -> String {
        let mut reader = bytes;
        let mut messages = Messages::new(limit);
        let mut events = Vec::new();
        let error = loop {
            match next_frame(&mut reader, limit) {
                Some(Ok(frame)) => match messages.push(frame) {
                    Ok(event) => events.push(event),
                    Err(error) => break error,
                },
                Some(Err(error)) => break error,
                None => panic!("no protocol error, but the end, after {events:?}"),
            }
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

    // Messages: fragments, control frames between them, UTF-8 across frames.

    /// Sends `frames` through `parse_frame` and `Messages`, one line per frame.
    fn transcript(frames: &[Vec<u8>]) -> String {
        let mut messages = Messages::new(MAX_MESSAGE_LEN);
        let mut lines = Vec::new();
        for bytes in frames {
            let frame = read_whole_frame(bytes).unwrap();
            lines.push(format!("{frame:?}"));
            lines.push(format!("  -> {:?}", messages.push(frame)));
        }
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
                    let frame = Frame {
                        fin: i == 2,
                        opcode: if i == 0 {
                            Opcode::Text
                        } else {
                            Opcode::Continuation
                        },
                        payload: piece.to_vec(),
                    };
                    last = Some(messages.push(frame));
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
            let first = messages.push(Frame {
                fin: false,
                opcode: Opcode::Text,
                payload: good.to_vec(),
            });
            let second = messages.push(Frame {
                fin: false,
                opcode: Opcode::Continuation,
                payload: bad.to_vec(),
            });
            let expected = (Ok(Event::Fragment), Err(ProtocolError::InvalidUtf8));
            assert_eq!((first, second), expected, "{} | {}", hex(good), hex(bad));
        }
    }

    // Whatever the bytes, the parser returns a frame or an error: it never
    // panics, and never allocates more than the limit it was given.

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
            apply_mask(&mut bytes[start..], key);
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

    /// `InvalidCloseCode(1005)` -> `"InvalidCloseCode"`
    fn variant_name(error: ProtocolError) -> String {
        let name = format!("{error:?}");
        name.split('(').next().unwrap_or_default().to_string()
    }

    #[test]
    fn fuzz_random_and_mutated_frames() {
        const LIMIT: usize = 1000;
        let mut random = Random(0x9e37_79b9_7f4a_7c15);
        let mut frames = 0;
        let mut messages_seen = 0;
        let mut errors_seen = std::collections::BTreeSet::new();
        for _ in 0..100_000 {
            let mut input = plausible_frames(&mut random);
            if random.below(3) == 0 {
                mutate(&mut random, &mut input);
            }
            let mut reader = &input[..];
            let mut messages = Messages::new(LIMIT);
            while let Some(frame) = next_frame(&mut reader, LIMIT) {
                let frame = match frame {
                    Ok(frame) => frame,
                    Err(error) => {
                        errors_seen.insert(variant_name(error));
                        break;
                    }
                };
                frames += 1;
                assert!(frame.payload.len() <= LIMIT);
                if frame.opcode.is_control() {
                    assert!(frame.fin && frame.payload.len() <= 125, "{frame:?}");
                }
                match messages.push(frame) {
                    Ok(Event::Message(message)) => {
                        messages_seen += 1;
                        assert!(message.payload().len() <= LIMIT);
                    }
                    Ok(_) => {}
                    Err(error) => {
                        errors_seen.insert(variant_name(error));
                        break;
                    }
                }
            }
        }
        // The inputs reach every rule, and often get past all of them.
        assert!(frames > 100_000, "only {frames} frames");
        assert!(messages_seen > 20_000, "only {messages_seen} messages");
        assert_snapshot!(errors_seen.into_iter().collect::<Vec<_>>().join("\n"));
    }

    /// `write_header` and `parse_header` are each other's inverse.
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
            let length = bytes.len();
            assert_eq!(parse_header(&bytes), Ok(Some((header, length))));
        }
    }
}
