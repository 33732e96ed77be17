//! RESP, the REdis Serialization Protocol (version 2): the few lines of it
//! this server speaks, written by hand.
//!
//! Everything Redis says is a *value* that starts with one byte that says
//! what it is, and ends with `\r\n`:
//!
//! | first byte | value | example |
//! |---|---|---|
//! | `+` | a simple string, one line | `+OK\r\n` |
//! | `-` | an error: the command failed, the connection is fine | `-ERR unknown command\r\n` |
//! | `:` | an integer | `:1\r\n` |
//! | `$` | a bulk string: its length, then that many bytes, any bytes | `$5\r\nhello\r\n` |
//! | `*` | an array: how many values, then the values | `*2\r\n:1\r\n:2\r\n` |
//! | `$-1`, `*-1` | nothing (a key that is not there, a wait that timed out) | `$-1\r\n` |
//!
//! A command goes the other way as an array of bulk strings (see
//! [`command`]). A reply arrives in as many pieces as TCP likes, exactly
//! like a WebSocket frame in stage 4, so [`parse`] has the same shape as
//! `ws::parse_frame`: a whole value and the bytes it took, or `Ok(None)`
//! while part of it has yet to arrive, or an error if what arrived cannot be
//! RESP. And, as for frames, lengths are checked as soon as they are read:
//! a corrupt or hostile stream announcing a bulk of 2^62 bytes is refused
//! before we wait for (or keep) any of it.

use std::fmt;

// ANCHOR: value
/// One value of RESP2, as Redis sends it.
#[derive(Clone, PartialEq, Eq)]
pub enum Value {
    /// `+OK\r\n`: a short status line.
    Simple(String),
    /// `-ERR ...\r\n`: Redis refused the command. Not a broken connection:
    /// the next reply comes right after it.
    Error(String),
    /// `:1\r\n`
    Integer(i64),
    /// `$5\r\nhello\r\n`: a length, then that many bytes, which may hold
    /// anything, `\r\n` included.
    Bulk(Vec<u8>),
    /// `*2\r\n...`: a count, then that many values, each of any kind.
    Array(Vec<Value>),
    /// `$-1\r\n` (no such bulk string) or `*-1\r\n` (no such array): RESP2
    /// has two ways of saying "nothing", and we need not tell them apart.
    Null,
}
// ANCHOR_END: value

/// As derived, but a bulk string shows as the bytes it holds
/// (`Bulk(b"chat")`), not as a list of numbers.
impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Value::Simple(text) => f.debug_tuple("Simple").field(text).finish(),
            Value::Error(text) => f.debug_tuple("Error").field(text).finish(),
            Value::Integer(number) => f.debug_tuple("Integer").field(number).finish(),
            Value::Bulk(bytes) => write!(f, "Bulk(b\"{}\")", bytes.escape_ascii()),
            Value::Array(values) => f.debug_tuple("Array").field(values).finish(),
            Value::Null => write!(f, "Null"),
        }
    }
}

// ANCHOR: limits
/// The longest line (a simple string, an error, a number) we wait for. Redis
/// sends short ones; a stream without a `\r\n` for this long is not RESP.
const MAX_LINE_LEN: usize = 64 * 1024;

/// The largest bulk string we accept: a chat event on the channel, which
/// is at most one chat message (64 KiB) with its JSON escapes, or one
/// server's list of members, is well below it.
pub const MAX_BULK_LEN: usize = 4 * 1024 * 1024;

/// The most values in one array. Ours have three (`message`, the channel,
/// the payload), or two (what `SCAN` answers).
const MAX_ARRAY_LEN: usize = 1024;

/// How deep arrays may nest. Each level is one more call of [`parse_value`]:
/// without a limit, a stream of `*1\r\n*1\r\n...` would overflow the stack.
const MAX_DEPTH: usize = 4;
// ANCHOR_END: limits

// ANCHOR: parse_error
/// Bytes that cannot be RESP, or that break one of our limits. The
/// connection cannot go on after one: we no longer know where the next
/// value starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// A value starts with a byte that is not one of `+ - : $ *`.
    UnknownType(u8),
    /// A line ends with `\n` alone, or holds a `\r` that ends nothing.
    BadLineEnd,
    /// A line longer than [`MAX_LINE_LEN`].
    LineTooLong,
    /// A simple string or an error that is not UTF-8.
    NotUtf8,
    /// An integer, or a length, that is not a decimal number of 64 bits.
    BadNumber,
    /// A length below -1.
    NegativeLength(i64),
    /// A bulk string over [`MAX_BULK_LEN`].
    BulkTooLong(i64),
    /// A bulk string not followed by `\r\n`.
    BulkNotTerminated,
    /// An array over [`MAX_ARRAY_LEN`] values.
    ArrayTooLong(i64),
    /// Arrays nested deeper than [`MAX_DEPTH`].
    TooDeep,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            ParseError::UnknownType(byte) => write!(f, "unknown type byte 0x{byte:02X}"),
            ParseError::BadLineEnd => write!(f, "a line that does not end with \\r\\n"),
            ParseError::LineTooLong => write!(f, "a line over {MAX_LINE_LEN} bytes"),
            ParseError::NotUtf8 => write!(f, "a simple string that is not UTF-8"),
            ParseError::BadNumber => write!(f, "not a 64-bit decimal number"),
            ParseError::NegativeLength(len) => write!(f, "length {len}"),
            ParseError::BulkTooLong(len) => write!(f, "bulk string of {len} bytes"),
            ParseError::BulkNotTerminated => write!(f, "bulk string not followed by \\r\\n"),
            ParseError::ArrayTooLong(len) => write!(f, "array of {len} values"),
            ParseError::TooDeep => write!(f, "arrays nested over {MAX_DEPTH} deep"),
        }
    }
}
// ANCHOR_END: parse_error

// ANCHOR: command
/// A command as Redis reads it: an array of bulk strings, the command's
/// name first. `command(&["PUBLISH", "chat", "hi"])` is
/// `*3\r\n$7\r\nPUBLISH\r\n$4\r\nchat\r\n$2\r\nhi\r\n`. The lengths are in
/// bytes, so the arguments may hold anything, spaces and `\r\n` included.
pub fn command(parts: &[&str]) -> Vec<u8> {
    let mut bytes = format!("*{}\r\n", parts.len()).into_bytes();
    for part in parts {
        bytes.extend_from_slice(format!("${}\r\n", part.len()).as_bytes());
        bytes.extend_from_slice(part.as_bytes());
        bytes.extend_from_slice(b"\r\n");
    }
    bytes
}
// ANCHOR_END: command

// ANCHOR: parse
/// Parses one value from the start of `buffer`. Returns it and how many
/// bytes it took, or `None` while part of it has yet to arrive: the caller
/// keeps the bytes and calls again when more have come.
pub fn parse(buffer: &[u8]) -> Result<Option<(Value, usize)>, ParseError> {
    parse_value(buffer, 0)
}

/// One value, inside `depth` arrays.
fn parse_value(buffer: &[u8], depth: usize) -> Result<Option<(Value, usize)>, ParseError> {
    let Some(&kind) = buffer.first() else {
        return Ok(None);
    };
    // Refused at its first byte: no need to wait for a line of garbage.
    if !b"+-:$*".contains(&kind) {
        return Err(ParseError::UnknownType(kind));
    }
    let Some((line, line_len)) = read_line(&buffer[1..])? else {
        return Ok(None);
    };
    let header_len = 1 + line_len;
    let rest = &buffer[header_len..];
    let parsed = match kind {
        b'+' => Some((Value::Simple(text(line)?), 0)),
        b'-' => Some((Value::Error(text(line)?), 0)),
        b':' => Some((Value::Integer(number(line)?), 0)),
        b'$' => parse_bulk(number(line)?, rest)?,
        _ => parse_array(number(line)?, rest, depth)?,
    };
    Ok(parsed.map(|(value, body_len)| (value, header_len + body_len)))
}
// ANCHOR_END: parse

// ANCHOR: parse_bulk
/// The body of a bulk string of `len` bytes, at the start of `rest`: the
/// bytes and the `\r\n` after them.
fn parse_bulk(len: i64, rest: &[u8]) -> Result<Option<(Value, usize)>, ParseError> {
    if len == -1 {
        return Ok(Some((Value::Null, 0)));
    }
    let size = checked_length(len, MAX_BULK_LEN, ParseError::BulkTooLong)?;
    // Nothing is copied until all of it is here.
    let Some(body) = rest.get(..size + 2) else {
        return Ok(None);
    };
    if &body[size..] != b"\r\n" {
        return Err(ParseError::BulkNotTerminated);
    }
    Ok(Some((Value::Bulk(body[..size].to_vec()), size + 2)))
}
// ANCHOR_END: parse_bulk

// ANCHOR: parse_array
/// The values of an array of `len` of them, at the start of `rest`.
fn parse_array(len: i64, rest: &[u8], depth: usize) -> Result<Option<(Value, usize)>, ParseError> {
    if len == -1 {
        return Ok(Some((Value::Null, 0)));
    }
    let count = checked_length(len, MAX_ARRAY_LEN, ParseError::ArrayTooLong)?;
    if depth == MAX_DEPTH {
        return Err(ParseError::TooDeep);
    }
    // Not `with_capacity(count)`: the count is only a claim until the
    // values arrive.
    let mut values = Vec::new();
    let mut used = 0;
    for _ in 0..count {
        let Some((value, len)) = parse_value(&rest[used..], depth + 1)? else {
            return Ok(None);
        };
        values.push(value);
        used += len;
    }
    Ok(Some((Value::Array(values), used)))
}
// ANCHOR_END: parse_array

// ANCHOR: lines
/// The line at the start of `buffer`, without its `\r\n`, and its length
/// with it; `None` while its end has not arrived.
fn read_line(buffer: &[u8]) -> Result<Option<(&[u8], usize)>, ParseError> {
    let window = &buffer[..buffer.len().min(MAX_LINE_LEN + 2)];
    let Some(end) = window.iter().position(|&byte| byte == b'\n') else {
        if window.len() == MAX_LINE_LEN + 2 {
            return Err(ParseError::LineTooLong);
        }
        return Ok(None);
    };
    let Some(line) = window[..end].strip_suffix(b"\r") else {
        return Err(ParseError::BadLineEnd);
    };
    if line.contains(&b'\r') {
        return Err(ParseError::BadLineEnd);
    }
    Ok(Some((line, end + 1)))
}

fn text(line: &[u8]) -> Result<String, ParseError> {
    String::from_utf8(line.to_vec()).map_err(|_| ParseError::NotUtf8)
}

/// A decimal number: an optional `-`, then digits, and nothing else (Rust's
/// `parse` would also take a `+`, which RESP never sends).
fn number(line: &[u8]) -> Result<i64, ParseError> {
    let digits = line.strip_prefix(b"-").unwrap_or(line);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(ParseError::BadNumber);
    }
    let text = std::str::from_utf8(line).map_err(|_| ParseError::BadNumber)?;
    text.parse().map_err(|_| ParseError::BadNumber)
}

/// A length from 0 to `max`; -1 (nothing) is handled before.
fn checked_length(
    len: i64,
    max: usize,
    too_long: fn(i64) -> ParseError,
) -> Result<usize, ParseError> {
    if len < 0 {
        return Err(ParseError::NegativeLength(len));
    }
    match usize::try_from(len) {
        Ok(size) if size <= max => Ok(size),
        _ => Err(too_long(len)),
    }
}
// ANCHOR_END: lines

impl Value {
    /// The text of a bulk string, if it is one and is UTF-8.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Value::Bulk(bytes) => std::str::from_utf8(bytes).ok(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::Random;
    use insta::assert_snapshot;

    // ANCHOR: fixtures
    /// What Redis 7.0.15 (Debian's package `redis-server`
    /// 5:7.0.15-1~deb12u10) answered, byte for byte, recorded by
    /// `examples/capture_resp.rs` from a server started with
    /// `redis-server --port 16379 --bind 127.0.0.1 --save '' --appendonly no`:
    /// each is what arrived after one command (two for `pipelined`), read
    /// until the server had been quiet for 300 ms.
    const FIXTURES: &[(&str, &[u8])] = &[
        ("ping", include_bytes!("../fixtures/redis-7.0.15/ping.resp")),
        (
            "set_nx_claimed",
            include_bytes!("../fixtures/redis-7.0.15/set_nx_claimed.resp"),
        ),
        (
            "set_nx_taken",
            include_bytes!("../fixtures/redis-7.0.15/set_nx_taken.resp"),
        ),
        ("get", include_bytes!("../fixtures/redis-7.0.15/get.resp")),
        (
            "set_empty",
            include_bytes!("../fixtures/redis-7.0.15/set_empty.resp"),
        ),
        (
            "get_empty",
            include_bytes!("../fixtures/redis-7.0.15/get_empty.resp"),
        ),
        (
            "pexpire_kept",
            include_bytes!("../fixtures/redis-7.0.15/pexpire_kept.resp"),
        ),
        (
            "pexpire_gone",
            include_bytes!("../fixtures/redis-7.0.15/pexpire_gone.resp"),
        ),
        (
            "unknown_command",
            include_bytes!("../fixtures/redis-7.0.15/unknown_command.resp"),
        ),
        (
            "error_not_an_integer",
            include_bytes!("../fixtures/redis-7.0.15/error_not_an_integer.resp"),
        ),
        (
            "empty_array",
            include_bytes!("../fixtures/redis-7.0.15/empty_array.resp"),
        ),
        (
            "nested_array",
            include_bytes!("../fixtures/redis-7.0.15/nested_array.resp"),
        ),
        (
            "null_array",
            include_bytes!("../fixtures/redis-7.0.15/null_array.resp"),
        ),
        (
            "subscribe",
            include_bytes!("../fixtures/redis-7.0.15/subscribe.resp"),
        ),
        (
            "publish",
            include_bytes!("../fixtures/redis-7.0.15/publish.resp"),
        ),
        (
            "message",
            include_bytes!("../fixtures/redis-7.0.15/message.resp"),
        ),
        (
            "message_with_crlf",
            include_bytes!("../fixtures/redis-7.0.15/message_with_crlf.resp"),
        ),
        (
            "publish_while_subscribed",
            include_bytes!("../fixtures/redis-7.0.15/publish_while_subscribed.resp"),
        ),
        (
            "release_not_ours",
            include_bytes!("../fixtures/redis-7.0.15/release_not_ours.resp"),
        ),
        (
            "release_ours",
            include_bytes!("../fixtures/redis-7.0.15/release_ours.resp"),
        ),
    ];

    /// Two replies that arrived in one read: `PING` and `GET`, sent at once.
    const PIPELINED: &[u8] = include_bytes!("../fixtures/redis-7.0.15/pipelined.resp");
    // ANCHOR_END: fixtures

    /// The bytes as Rust would write them in a string: `\r\n` shows.
    fn escaped(bytes: &[u8]) -> String {
        bytes.escape_ascii().to_string()
    }

    /// Parses one whole value that takes all of `bytes`.
    fn parse_whole(bytes: &[u8]) -> Value {
        let (value, used) = parse(bytes).unwrap().expect("a whole value");
        assert_eq!(used, bytes.len(), "{}", escaped(bytes));
        value
    }

    // ANCHOR: test_fixtures
    /// Every reply recorded from the real server, its bytes and what they
    /// parse to.
    #[test]
    fn replies_recorded_from_redis_7_0_15() {
        let lines: Vec<String> = FIXTURES
            .iter()
            .map(|(name, bytes)| {
                let value = parse_whole(bytes);
                format!("{name}\n  {}\n  {value:?}", escaped(bytes))
            })
            .collect();
        assert_snapshot!(lines.join("\n"));
    }
    // ANCHOR_END: test_fixtures

    // ANCHOR: test_split_anywhere
    /// However TCP cuts a reply, every piece short of the whole is "not
    /// yet", and the whole is the same value.
    #[test]
    fn a_reply_cut_anywhere_waits_for_the_rest() {
        for (name, bytes) in FIXTURES {
            for end in 0..bytes.len() {
                let result = parse(&bytes[..end]);
                assert_eq!(result, Ok(None), "{name} after {end} bytes");
            }
            parse_whole(bytes);
        }
    }
    // ANCHOR_END: test_split_anywhere

    #[test]
    fn two_replies_in_one_read_are_two_values() {
        let (first, used) = parse(PIPELINED).unwrap().unwrap();
        assert_eq!(first, Value::Simple("PONG".to_string()));
        let second = parse_whole(&PIPELINED[used..]);
        assert_eq!(second, Value::Bulk(b"server-a".to_vec()));
    }

    /// All the recordings one after the other, arriving in random pieces,
    /// read the way the broker reads: append, parse what is whole, keep
    /// the rest.
    #[test]
    fn a_stream_in_random_pieces_gives_the_same_values() {
        let stream: Vec<u8> = FIXTURES
            .iter()
            .flat_map(|(_, bytes)| *bytes)
            .copied()
            .collect();
        let expected: Vec<Value> = FIXTURES
            .iter()
            .map(|(_, bytes)| parse_whole(bytes))
            .collect();
        let mut random = Random(0x5EED_2E59);
        for _ in 0..50 {
            let mut values = Vec::new();
            let mut buffer = Vec::new();
            let mut sent = 0;
            while sent < stream.len() {
                let piece = 1 + random.below(20);
                let end = (sent + piece).min(stream.len());
                buffer.extend_from_slice(&stream[sent..end]);
                sent = end;
                while let Some((value, used)) = parse(&buffer).unwrap() {
                    values.push(value);
                    buffer.drain(..used);
                }
            }
            assert_eq!(values, expected);
            assert!(buffer.is_empty());
        }
    }

    // ANCHOR: test_command
    #[test]
    fn a_command_is_an_array_of_bulk_strings() {
        let claim = command(&["SET", "chat:name:zoë", "a1", "NX", "PX", "5000"]);
        assert_snapshot!(escaped(&claim));
    }
    // ANCHOR_END: test_command

    #[test]
    fn the_commands_we_send_read_back_as_what_we_meant() {
        let parts = ["PUBLISH", "chat", "two\r\nlines", ""];
        let parsed = parse_whole(&command(&parts));
        let bulks = parts.map(|part| Value::Bulk(part.as_bytes().to_vec()));
        assert_eq!(parsed, Value::Array(bulks.to_vec()));
    }

    // ANCHOR: test_malformed
    /// What cannot be RESP, or breaks a limit, is an error, as soon as the
    /// bytes that show it have arrived.
    #[test]
    fn malformed_input_is_refused() {
        let deep = "*1\r\n".repeat(MAX_DEPTH + 1) + ":1\r\n";
        let long_line = format!("+{}", "a".repeat(MAX_LINE_LEN + 2));
        let cases: &[&[u8]] = &[
            b"hello\r\n",
            b"+OK\n",
            b"+O\rK\r\n",
            b":12a\r\n",
            b":+5\r\n",
            b":\r\n",
            b":99999999999999999999\r\n",
            b"$-2\r\n",
            b"$abc\r\n",
            b"$3\r\nabcde",
            b"$4194305\r\n",
            b"$9223372036854775807\r\n",
            b"*1025\r\n",
            b"*-7\r\n",
            b"-\xff\xfe\r\n",
            deep.as_bytes(),
            long_line.as_bytes(),
        ];
        let lines: Vec<String> = cases
            .iter()
            .map(|bytes| {
                let shown: String = escaped(bytes).chars().take(40).collect();
                format!("{shown}\n  {:?}", parse(bytes))
            })
            .collect();
        assert_snapshot!(lines.join("\n"));
    }
    // ANCHOR_END: test_malformed

    /// A bulk string too big is refused from its length alone, before any
    /// of it arrives: nobody can make us wait for (or keep) 4 MiB and more.
    #[test]
    fn a_bulk_too_big_is_refused_before_its_bytes_arrive() {
        let header = format!("${}\r\n", MAX_BULK_LEN + 1);
        let refused = parse(header.as_bytes());
        assert_eq!(
            refused,
            Err(ParseError::BulkTooLong(MAX_BULK_LEN as i64 + 1))
        );
        let header = format!("${MAX_BULK_LEN}\r\n");
        assert_eq!(parse(header.as_bytes()), Ok(None));
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut random = Random(0xBAD_C0FFEE);
        for _ in 0..20_000 {
            let mut bytes = random.bytes(24);
            // Mostly RESP-looking, so that the parser gets past the first byte.
            if let Some(first) = bytes.first_mut() {
                *first = *random.pick(b"+-:$*");
            }
            let _ = parse(&bytes);
        }
    }
}
