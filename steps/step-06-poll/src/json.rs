//! JSON (RFC 8259) by hand: a value type, an encoder and a parser.
//!
//! JSON is just text too. The chat message
//! `{"type":"message","from":"alice","text":"hello"}` is 48 characters that
//! follow a small grammar, and this module writes and reads that grammar
//! with nothing but `std`:
//!
//! 1. [`Value`] is a JSON value in memory, with helpers to build one
//!    ([`Value::object`]) and to look inside one ([`Value::get_str`]).
//! 2. [`encode`] turns a value into text, escaping what must be escaped.
//! 3. [`parse`] turns text into a value, or says what is wrong and where
//!    ([`ParseError`]). It accepts the grammar of RFC 8259 and nothing else.
//!
//! RFC 8259 leaves a few choices to each implementation. Ours:
//!
//! - **Numbers** are `f64`, as in JavaScript: integers are exact up to 2^53.
//!   A number too large for an `f64` (`1e400`) is refused. NaN and the
//!   infinities have no JSON form: [`encode`] writes them as `null`, as
//!   `JSON.stringify` does.
//! - **Duplicate keys** (`{"a":1,"a":2}`) are refused. The RFC says that
//!   what they mean is unpredictable: some parsers keep the first, others
//!   the last. We refuse to guess.
//! - **Nesting** deeper than [`MAX_DEPTH`] is refused, so that no input can
//!   overflow the stack.
//! - **Lone surrogates** (`"\ud83d"` not followed by a low surrogate) are
//!   refused: a Rust `String` cannot hold one.
//! - **A byte order mark** before the text is refused, like any other
//!   character that is not JSON whitespace (the RFC allows either).
//!
//! No input makes [`parse`] panic, and its errors never quote more than one
//! character of the input, so they are short enough to send back to a
//! client whatever it sent.

use std::collections::HashSet;
use std::fmt;

// ANCHOR: max_depth
/// How deeply arrays and objects may nest: `[1]` has depth 1, `{"a":[1]}`
/// depth 2, and the messages of our chat never more than that. Each level
/// takes the parser about 2 KiB of stack in a debug build (less when
/// optimized), so 64 levels need about 128 KiB, far from the 2 MiB that a
/// Rust thread gets (see [`parse`]).
pub const MAX_DEPTH: usize = 64;
// ANCHOR_END: max_depth

// ANCHOR: value
/// A JSON value in memory.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    /// Every JSON number, stored as JavaScript stores it: a 64-bit float.
    Number(f64),
    String(String),
    Array(Vec<Value>),
    /// The fields in the order they were written. A list, not a `HashMap`:
    /// it keeps the order (the protocol puts `type` first), and for the few
    /// fields of a chat message, looking through a list is as fast as
    /// hashing.
    Object(Vec<(String, Value)>),
}
// ANCHOR_END: value

// ANCHOR: helpers
impl Value {
    /// An object with these fields, in this order:
    ///
    /// ```
    /// use step_06::json::{encode, Value};
    ///
    /// let message = Value::object([
    ///     ("type", Value::from("message")),
    ///     ("from", Value::from("alice")),
    ///     ("text", Value::from("hello")),
    /// ]);
    /// assert_eq!(encode(&message), r#"{"type":"message","from":"alice","text":"hello"}"#);
    /// ```
    ///
    /// The fields are kept as given: give each key once, or [`parse`] will
    /// refuse what [`encode`] makes of it.
    pub fn object<'a>(fields: impl IntoIterator<Item = (&'a str, Value)>) -> Value {
        let fields = fields
            .into_iter()
            .map(|(key, value)| (key.to_string(), value));
        Value::Object(fields.collect())
    }

    /// An array of these items: `Value::array(names.map(Value::from))`.
    pub fn array(items: impl IntoIterator<Item = Value>) -> Value {
        Value::Array(items.into_iter().collect())
    }

    /// The value of the field `key`, if this is an object that has one.
    pub fn get(&self, key: &str) -> Option<&Value> {
        let Value::Object(fields) = self else {
            return None;
        };
        let (_, value) = fields.iter().find(|(name, _)| name == key)?;
        Some(value)
    }

    /// The field `key`, if this is an object that has one and it is a
    /// string: `message.get_str("type")` gives `Some("join")`.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key)?.as_str()
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(text) => Some(text),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Number(number) => Some(*number),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(boolean) => Some(*boolean),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(items) => Some(items),
            _ => None,
        }
    }
}

impl From<&str> for Value {
    fn from(text: &str) -> Value {
        Value::String(text.to_string())
    }
}

impl From<String> for Value {
    fn from(text: String) -> Value {
        Value::String(text)
    }
}

impl From<bool> for Value {
    fn from(boolean: bool) -> Value {
        Value::Bool(boolean)
    }
}

impl From<f64> for Value {
    fn from(number: f64) -> Value {
        Value::Number(number)
    }
}
// ANCHOR_END: helpers

// ANCHOR: encode
/// The JSON text of `value`, without any whitespace: what we send in a
/// WebSocket text message.
///
/// It calls itself for every array and object inside another, so a value
/// nested millions deep would overflow the stack. Values from [`parse`] are
/// at most [`MAX_DEPTH`] deep, and the server builds no deep ones.
pub fn encode(value: &Value) -> String {
    let mut out = String::new();
    write_value(value, &mut out);
    out
}

fn write_value(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(number) => write_number(*number, out),
        Value::String(text) => write_string(text, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(item, out);
            }
            out.push(']');
        }
        Value::Object(fields) => {
            out.push('{');
            for (i, (key, value)) in fields.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(key, out);
                out.push(':');
                write_value(value, out);
            }
            out.push('}');
        }
    }
}
// ANCHOR_END: encode

// ANCHOR: write_number
/// Rust's `{}` and `{:e}` for an `f64` both write the shortest decimal that
/// reads back as the same `f64`: `0.1`, not `0.1000000000000000055511151231257827`.
/// So [`parse`] gives back the very same number. `{}` writes whole numbers
/// without `.0` (`3`) and never uses an exponent, which makes very large and
/// very small numbers long: 10^300 would be 301 digits. Like JavaScript, we
/// write numbers from 0.000001 up to 10^21 in full, and the others with an
/// exponent (`1e21`, `1.5e-7`). Both forms are valid JSON.
///
/// NaN and the infinities have no JSON form. We write `null` for them, as
/// JavaScript's `JSON.stringify` does. (The chat sends no numbers at all.)
fn write_number(number: f64, out: &mut String) {
    let text = if !number.is_finite() {
        "null".to_string()
    } else if number == 0.0 || (1e-6..1e21).contains(&number.abs()) {
        format!("{number}")
    } else {
        format!("{number:e}")
    };
    out.push_str(&text);
}
// ANCHOR_END: write_number

// ANCHOR: escape
/// A string in double quotes, escaped.
///
/// JSON requires escapes for three things only: the quote that would end
/// the string, the backslash that starts an escape, and the control
/// characters U+0000 to U+001F. The five that have a short escape get it
/// (`\n`, not `\u000a`), the others `\u00XX`: the same text as JavaScript's
/// `JSON.stringify` writes. Everything else, non-ASCII included, goes as it
/// is, in UTF-8, which is what a WebSocket text message carries anyway.
///
/// We do not escape `<`, `>` or `&`. They matter when JSON is pasted into an
/// HTML page: `"</script>"` inside a `<script>` element ends the script
/// there, and what follows runs as HTML. Our JSON never goes into HTML: it
/// travels in WebSocket messages, the page reads it with `JSON.parse` and
/// shows it with `textContent`, so `</script>` is just nine characters. A
/// server that did put JSON in a page would write `<` as `\u003c`.
fn write_string(text: &str, out: &mut String) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{0}'..='\u{1f}' => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            _ => out.push(c),
        }
    }
    out.push('"');
}
// ANCHOR_END: escape

// ANCHOR: parse_error
/// Why [`parse`] refused a text, and where: the byte offset of the problem.
///
/// `Display` gives one short line, suitable for the `reason` of an error
/// message to the client: `expected a value, found '+' at byte 0`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub kind: ErrorKind,
    /// Counted in bytes from the start of the text, from 0.
    pub offset: usize,
}

/// What went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// The grammar allows only `expected` here, but the text has `found`
    /// (`None`: the text ended). Most mistakes are one of these: `+1`,
    /// `'single quotes'`, `{unquoted: 1}`, `NaN`, `[1 2]`, `1 2`, `"\x"`.
    Unexpected {
        expected: &'static str,
        found: Option<char>,
    },
    /// A comma before `]` or `}`: `[1,]`. JavaScript code allows it; JSON
    /// does not.
    TrailingComma,
    /// `01`, `-00`: C and old JavaScript read a leading 0 as octal, so JSON
    /// allows none.
    LeadingZero,
    /// A number beyond the largest `f64`, about 1.8e308.
    NumberTooLarge,
    /// A character from U+0000 to U+001F in a string, not escaped.
    ControlCharacter(char),
    /// Half of a UTF-16 surrogate pair, without the other half.
    LoneSurrogate(u32),
    /// A key that the same object already has.
    DuplicateKey,
    /// An array or object nested deeper than [`MAX_DEPTH`].
    TooDeep,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{} at byte {}", self.kind, self.offset)
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            // `{found:?}` shows the character quoted, and escaped if it
            // cannot be seen: '+', '\n', '\u{feff}'.
            ErrorKind::Unexpected {
                expected,
                found: Some(found),
            } => write!(f, "expected {expected}, found {found:?}"),
            ErrorKind::Unexpected {
                expected,
                found: None,
            } => write!(f, "expected {expected}, found the end of the text"),
            ErrorKind::TrailingComma => write!(f, "trailing comma"),
            ErrorKind::LeadingZero => write!(f, "number with a leading zero"),
            ErrorKind::NumberTooLarge => write!(f, "number too large"),
            ErrorKind::ControlCharacter(c) => {
                let code = u32::from(*c);
                write!(f, "control character U+{code:04X} in a string, not escaped")
            }
            ErrorKind::LoneSurrogate(unit) => write!(f, "lone surrogate \\u{unit:04x}"),
            ErrorKind::DuplicateKey => write!(f, "duplicate key"),
            ErrorKind::TooDeep => write!(f, "nested deeper than {MAX_DEPTH} arrays and objects"),
        }
    }
}

impl std::error::Error for ParseError {}
// ANCHOR_END: parse_error

// ANCHOR: parse
/// Reads one JSON value that fills the whole of `text`.
///
/// The text is a `&str`: the WebSocket layer has already checked that a
/// text message is valid UTF-8, so there are no bad bytes left to refuse.
///
/// The parser is *recursive descent*: one function per rule of the grammar,
/// each calling the functions of the rules inside it. Simplified from
/// RFC 8259:
///
/// ```text
/// text    = element                        ; and nothing after it
/// element = ws value ws
/// value   = object | array | string | number | "true" | "false" | "null"
/// object  = "{" ws "}" | "{" member ("," member)* "}"
/// member  = ws string ws ":" element
/// array   = "[" ws "]" | "[" element ("," element)* "]"
/// ws      = (" " | "\t" | "\n" | "\r")*
/// ```
///
/// Each array or object inside another is one more call deep. A client that
/// sends ten million `[` would need ten million calls, overflow the stack,
/// and bring the whole server down: Rust cannot catch a stack overflow, it
/// aborts the process. So the parser counts how deep it is, and stops at
/// [`MAX_DEPTH`] with an error.
pub fn parse(text: &str) -> Result<Value, ParseError> {
    let mut parser = Parser { text, pos: 0 };
    let value = parser.parse_element(0)?;
    // `1 2`, `{} x`: a valid value with something after it is refused whole.
    if parser.pos < text.len() {
        return Err(parser.unexpected("the end of the text"));
    }
    Ok(value)
}

/// The text, and how far we have read it.
struct Parser<'a> {
    text: &'a str,
    /// The byte offset of the next character to read.
    ///
    /// The grammar is all ASCII, so the parser looks at bytes, and moves
    /// past a character of more than one byte only inside a string, whole
    /// (see `parse_string`). `pos` is therefore always at the start of a
    /// character, where `text` can be sliced.
    pos: usize,
}
// ANCHOR_END: parse

// ANCHOR: reading
impl Parser<'_> {
    /// The next byte, without taking it; `None` at the end of the text.
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    /// Takes the next byte if it is `byte`, and says whether it was.
    fn eat(&mut self, byte: u8) -> bool {
        if self.peek() == Some(byte) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// The text not read yet.
    fn rest(&self) -> &str {
        self.text.get(self.pos..).unwrap_or_default()
    }

    /// JSON has four whitespace characters, no more: a no-break space or a
    /// byte order mark is an error, not whitespace.
    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    fn error(&self, kind: ErrorKind) -> ParseError {
        ParseError {
            kind,
            offset: self.pos,
        }
    }

    /// The error for "here we needed `expected`", with what is here instead.
    fn unexpected(&self, expected: &'static str) -> ParseError {
        let found = self.rest().chars().next();
        self.error(ErrorKind::Unexpected { expected, found })
    }
    // ANCHOR_END: reading

    // ANCHOR: parse_value
    /// `depth` is how many arrays and objects are open around the element.
    fn parse_element(&mut self, depth: usize) -> Result<Value, ParseError> {
        self.skip_whitespace();
        let value = self.parse_value(depth)?;
        self.skip_whitespace();
        Ok(value)
    }

    /// The first byte of a value says which kind of value it is.
    fn parse_value(&mut self, depth: usize) -> Result<Value, ParseError> {
        match self.peek() {
            Some(b'{') => self.parse_object(depth),
            Some(b'[') => self.parse_array(depth),
            Some(b'"') => Ok(Value::String(self.parse_string()?)),
            Some(b'-' | b'0'..=b'9') => self.parse_number(),
            Some(b't') => self.parse_word("true", Value::Bool(true)),
            Some(b'f') => self.parse_word("false", Value::Bool(false)),
            Some(b'n') => self.parse_word("null", Value::Null),
            _ => Err(self.unexpected("a value")),
        }
    }

    /// `true`, `false` or `null`, letter by letter, so that `tru` or `nul`
    /// is refused at the letter that is wrong.
    fn parse_word(&mut self, word: &'static str, value: Value) -> Result<Value, ParseError> {
        for letter in word.bytes() {
            if !self.eat(letter) {
                return Err(self.unexpected(word));
            }
        }
        Ok(value)
    }
    // ANCHOR_END: parse_value

    // ANCHOR: depth
    /// An array or object starts here, `depth` levels deep: the depth of
    /// what is inside it, unless that is too deep.
    fn nest(&self, depth: usize) -> Result<usize, ParseError> {
        if depth >= MAX_DEPTH {
            return Err(self.error(ErrorKind::TooDeep));
        }
        Ok(depth + 1)
    }
    // ANCHOR_END: depth

    // ANCHOR: array
    /// array = "[" ws "]" | "[" element ("," element)* "]"
    fn parse_array(&mut self, depth: usize) -> Result<Value, ParseError> {
        let depth = self.nest(depth)?;
        self.pos += 1; // the '['
        let mut items = Vec::new();
        self.skip_whitespace();
        if self.eat(b']') {
            return Ok(Value::Array(items));
        }
        loop {
            items.push(self.parse_element(depth)?);
            if self.eat(b']') {
                return Ok(Value::Array(items));
            }
            let comma = self.pos;
            if !self.eat(b',') {
                return Err(self.unexpected("',' or ']'"));
            }
            self.refuse_trailing_comma(comma, b']')?;
        }
    }

    /// After a comma, another item must come, not the end of the list.
    fn refuse_trailing_comma(&mut self, comma: usize, end: u8) -> Result<(), ParseError> {
        self.skip_whitespace();
        if self.peek() == Some(end) {
            return Err(ParseError {
                kind: ErrorKind::TrailingComma,
                offset: comma,
            });
        }
        Ok(())
    }
    // ANCHOR_END: array

    // ANCHOR: object
    /// object = "{" ws "}" | "{" member ("," member)* "}"
    /// member = ws string ws ":" element
    fn parse_object(&mut self, depth: usize) -> Result<Value, ParseError> {
        let depth = self.nest(depth)?;
        self.pos += 1; // the '{'
        let mut fields = Vec::new();
        // The keys so far, to refuse a duplicate. A set, not a search
        // through `fields`: with a search, an object of n keys would take
        // n²/2 comparisons, and one message of a million keys would keep
        // the server busy for minutes.
        let mut keys = HashSet::new();
        self.skip_whitespace();
        if self.eat(b'}') {
            return Ok(Value::Object(fields));
        }
        loop {
            self.skip_whitespace();
            let key_start = self.pos;
            if self.peek() != Some(b'"') {
                return Err(self.unexpected("a key in double quotes"));
            }
            let key = self.parse_string()?;
            if !keys.insert(key.clone()) {
                return Err(ParseError {
                    kind: ErrorKind::DuplicateKey,
                    offset: key_start,
                });
            }
            self.skip_whitespace();
            if !self.eat(b':') {
                return Err(self.unexpected("':' after the key"));
            }
            let value = self.parse_element(depth)?;
            fields.push((key, value));
            if self.eat(b'}') {
                return Ok(Value::Object(fields));
            }
            let comma = self.pos;
            if !self.eat(b',') {
                return Err(self.unexpected("',' or '}'"));
            }
            self.refuse_trailing_comma(comma, b'}')?;
        }
    }
    // ANCHOR_END: object

    // ANCHOR: strings
    /// A string, from its opening quote to its closing one, with the
    /// escapes replaced by the characters they stand for.
    fn parse_string(&mut self) -> Result<String, ParseError> {
        self.pos += 1; // the opening '"'
        let mut out = String::new();
        loop {
            // Copy the plain characters up to the next quote, backslash or
            // control character in one go. Those three are ASCII, and no
            // byte of a multi-byte character is ASCII in UTF-8, so we stop
            // between characters, never inside one.
            let start = self.pos;
            while let Some(byte) = self.peek() {
                if byte == b'"' || byte == b'\\' || byte < 0x20 {
                    break;
                }
                self.pos += 1;
            }
            out.push_str(&self.text[start..self.pos]);
            match self.peek() {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => out.push(self.parse_escape()?),
                // A raw newline or tab in a string is refused: it must be
                // written `\n` or `\t`.
                Some(control) => {
                    return Err(self.error(ErrorKind::ControlCharacter(char::from(control))));
                }
                None => return Err(self.unexpected("'\"' to end the string")),
            }
        }
    }

    /// A backslash and what follows it: the character it stands for.
    fn parse_escape(&mut self) -> Result<char, ParseError> {
        let backslash = self.pos;
        self.pos += 1;
        let c = match self.peek() {
            Some(b'"') => '"',
            Some(b'\\') => '\\',
            Some(b'/') => '/',
            Some(b'b') => '\u{8}',
            Some(b'f') => '\u{c}',
            Some(b'n') => '\n',
            Some(b'r') => '\r',
            Some(b't') => '\t',
            Some(b'u') => {
                self.pos += 1;
                return self.parse_unicode_escape(backslash);
            }
            _ => return Err(self.unexpected(r#"one of \" \\ \/ \b \f \n \r \t \u after '\'"#)),
        };
        self.pos += 1;
        Ok(c)
    }
    // ANCHOR_END: strings

    // ANCHOR: surrogates
    /// The 4 hex digits of a `\uXXXX` escape, which starts at `backslash`:
    /// one UTF-16 code unit.
    ///
    /// Most characters are one unit: `\u00e9` is é. A character beyond
    /// U+FFFF, such as an emoji, needs 20 bits, and UTF-16 writes it as two
    /// units, a *surrogate pair*: a high surrogate (D800 to DBFF) carries the
    /// top 10 bits of the character minus 0x10000, then a low surrogate
    /// (DC00 to DFFF) the bottom 10. So 😀, U+1F600, is `\ud83d\ude00`:
    ///
    /// ```text
    /// 0x1F600 - 0x10000 = 0x0F600 = 0000111101 1000000000
    /// high = 0xD800 + 0000111101 = 0xD83D
    /// low  = 0xDC00 + 1000000000 = 0xDE00
    /// ```
    ///
    /// A surrogate without its other half stands for no character at all.
    /// JavaScript strings can hold one (`"😀".slice(0, 1)` is a lone
    /// `\ud83d`, and `JSON.stringify` writes it so), but a Rust `String`,
    /// being UTF-8, cannot. We refuse it, rather than change what the client
    /// sent into U+FFFD, the replacement character, without telling anyone.
    fn parse_unicode_escape(&mut self, backslash: usize) -> Result<char, ParseError> {
        let lone = |unit| ParseError {
            kind: ErrorKind::LoneSurrogate(unit),
            offset: backslash,
        };
        let unit = self.parse_hex4()?;
        let code_point = match unit {
            0xD800..=0xDBFF => {
                if !self.rest().starts_with("\\u") {
                    return Err(lone(unit));
                }
                self.pos += 2;
                let low = self.parse_hex4()?;
                if !(0xDC00..=0xDFFF).contains(&low) {
                    return Err(lone(unit));
                }
                0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)
            }
            0xDC00..=0xDFFF => return Err(lone(unit)),
            _ => unit,
        };
        // Surrogates are dealt with above, and a pair makes at most
        // U+10FFFF: every code point left is a `char`.
        char::from_u32(code_point).ok_or(lone(unit))
    }

    /// Exactly 4 hex digits, either case: `00e9` is 0xE9.
    fn parse_hex4(&mut self) -> Result<u32, ParseError> {
        let mut unit = 0;
        for _ in 0..4 {
            let digit = self.peek().and_then(|byte| char::from(byte).to_digit(16));
            let Some(digit) = digit else {
                return Err(self.unexpected("4 hex digits after \\u"));
            };
            unit = unit * 16 + digit;
            self.pos += 1;
        }
        Ok(unit)
    }
    // ANCHOR_END: surrogates

    // ANCHOR: numbers
    /// number = "-"? ("0" | [1-9] [0-9]*) ("." [0-9]+)? ([eE] [+-]? [0-9]+)?
    ///
    /// We check the text against the grammar ourselves, then let
    /// `str::parse` turn it into the nearest `f64`: rounding a decimal to
    /// binary correctly is hard, and `std` does it. We cannot give it the
    /// text unchecked, because it accepts more than JSON does: `+1`, `.5`,
    /// `1.`, `inf`, `NaN`.
    fn parse_number(&mut self) -> Result<Value, ParseError> {
        let start = self.pos;
        self.eat(b'-');
        match self.peek() {
            Some(b'0') => {
                self.pos += 1;
                if self.peek().is_some_and(|byte| byte.is_ascii_digit()) {
                    return Err(ParseError {
                        kind: ErrorKind::LeadingZero,
                        offset: start,
                    });
                }
            }
            Some(b'1'..=b'9') => self.skip_digits(),
            _ => return Err(self.unexpected("a digit after '-'")),
        }
        if self.eat(b'.') {
            self.expect_digits("a digit after '.'")?;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            self.expect_digits("a digit in the exponent")?;
        }
        // `str::parse` fails on nothing the grammar allows. But `1e400` is
        // beyond the largest `f64` and becomes infinity, which JSON cannot
        // carry back; we refuse it. (`1e-400` becomes 0, the nearest `f64`.)
        match self.text[start..self.pos].parse::<f64>() {
            Ok(number) if number.is_finite() => Ok(Value::Number(number)),
            _ => Err(ParseError {
                kind: ErrorKind::NumberTooLarge,
                offset: start,
            }),
        }
    }

    fn skip_digits(&mut self) {
        while self.peek().is_some_and(|byte| byte.is_ascii_digit()) {
            self.pos += 1;
        }
    }

    /// One digit or more: `1.` and `1e` are refused.
    fn expect_digits(&mut self, expected: &'static str) -> Result<(), ParseError> {
        if !self.peek().is_some_and(|byte| byte.is_ascii_digit()) {
            return Err(self.unexpected(expected));
        }
        self.skip_digits();
        Ok(())
    }
    // ANCHOR_END: numbers
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::Random;
    use insta::{assert_debug_snapshot, assert_snapshot};

    // The encoder.

    #[test]
    fn chat_message() {
        let message = Value::object([
            ("type", Value::from("message")),
            ("from", Value::from("alice")),
            ("text", Value::from("hello")),
        ]);
        assert_snapshot!(encode(&message));
    }

    #[test]
    fn welcome_with_the_list_of_users() {
        let users = ["alice", "bob"];
        let welcome = Value::object([
            ("type", Value::from("welcome")),
            ("name", Value::from("alice")),
            ("users", Value::array(users.map(Value::from))),
        ]);
        assert_snapshot!(encode(&welcome));
    }

    #[test]
    fn every_kind_of_value() {
        let value = Value::object([
            ("null", Value::Null),
            ("true", Value::Bool(true)),
            ("false", Value::Bool(false)),
            ("number", Value::Number(-12.5)),
            ("string", Value::from("hi")),
            ("empty array", Value::Array(vec![])),
            ("empty object", Value::Object(vec![])),
            (
                "nested",
                Value::array([Value::array([Value::object([("a", Value::Null)])])]),
            ),
        ]);
        assert_snapshot!(encode(&value));
    }

    /// One line per string: the string as it is (see `quoted`), then as JSON.
    fn encoded_strings(strings: &[&str]) -> String {
        let lines: Vec<String> = strings
            .iter()
            .map(|text| format!("{:<38} -> {}", quoted(text), encode(&Value::from(*text))))
            .collect();
        lines.join("\n")
    }

    #[test]
    fn hostile_strings() {
        assert_snapshot!(encoded_strings(&[
            "",
            r#"she said "hi""#,
            r"C:\Users\alice",
            r#"\""#,
            "line one\nline two",
            "tab\there, carriage return\r",
            "</script><script>alert(1)</script>",
            "<img src=x onerror=alert(1)>",
            "a & b > c",
            "emoji 😀, a family 👩‍👩‍👧",
            "κόσμε, ä€, 日本語",
            "/ needs no escape",
        ]));
    }

    /// Characters that some other languages escape, but JSON does not ask
    /// to: they go as they are (not in a snapshot, where you could not see
    /// them).
    #[test]
    fn invisible_characters_that_need_no_escape() {
        // DEL, U+007F, is a control character, but not one of JSON's.
        assert_eq!(encode(&Value::from("\u{7f}")), "\"\u{7f}\"");
        // The line and paragraph separators, and a byte order mark.
        let text = "\u{2028}\u{2029}\u{feff}";
        assert_eq!(encode(&Value::from(text)), format!("\"{text}\""));
    }

    #[test]
    fn every_control_character() {
        let lines: Vec<String> = (0..0x20u8)
            .map(|byte| {
                let text = char::from(byte).to_string();
                format!("U+{byte:04X} -> {}", encode(&Value::from(text)))
            })
            .collect();
        assert_snapshot!(lines.join("\n"));
    }

    #[test]
    fn numbers_encoded() {
        let numbers = [
            0.0,
            -0.0,
            1.0,
            -1.0,
            42.0,
            1.5,
            0.1,
            1.0 / 3.0,
            // Up to 2^53, an f64 holds every integer exactly.
            9007199254740992.0,
            // Written in full from 0.000001 up to 10^21 ...
            0.000001,
            999999999999999900000.0,
            // ... and with an exponent beyond.
            0.0000001,
            0.00000015,
            1e21,
            -1e21,
            f64::MAX,
            f64::MIN_POSITIVE,
            5e-324,
            // No JSON for these.
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ];
        let lines: Vec<String> = numbers
            .iter()
            .map(|&number| format!("{number:?} -> {}", encode(&Value::Number(number))))
            .collect();
        assert_snapshot!(lines.join("\n"));
    }

    #[test]
    fn fields_keep_their_order() {
        let value = Value::object([("z", Value::Null), ("a", Value::Null), ("m", Value::Null)]);
        assert_eq!(encode(&value), r#"{"z":null,"a":null,"m":null}"#);
    }

    // The parser: values.

    #[test]
    fn parse_a_chat_message() {
        let text = r#"{"type":"message","text":"hello"}"#;
        assert_debug_snapshot!(parse(text));
    }

    #[test]
    fn parse_with_whitespace_everywhere_it_may_be() {
        let text = " \t\n\r{ \"users\" : [ \"alice\" , \"bob\" ] , \"n\" : -1.5e3 } \r\n";
        assert_debug_snapshot!(parse(text));
    }

    #[test]
    fn parse_every_kind_of_value() {
        let text = r#"[null, true, false, 0, "", [], {}, [[]], {"a": {"b": []}}]"#;
        assert_debug_snapshot!(parse(text));
    }

    #[test]
    fn helpers_look_inside_a_message() {
        let message = parse(r#"{"type":"join","name":"alice","extra":[1,true]}"#).unwrap();
        assert_eq!(message.get_str("type"), Some("join"));
        assert_eq!(message.get_str("name"), Some("alice"));
        assert_eq!(message.get_str("missing"), None);
        // A field that is there, but not a string.
        assert_eq!(message.get_str("extra"), None);
        let extra = message.get("extra").and_then(Value::as_array).unwrap();
        assert_eq!(extra[0].as_f64(), Some(1.0));
        assert_eq!(extra[1].as_bool(), Some(true));
        // Not an object: there are no fields to get.
        assert_eq!(Value::from("type").get("type"), None);
    }

    // The parser: strings.

    /// The string that `json`, a JSON string with its quotes, stands for.
    fn parse_str(json: &str) -> Result<String, ParseError> {
        match parse(json)? {
            Value::String(text) => Ok(text),
            other => panic!("not a string: {other:?}"),
        }
    }

    #[test]
    fn every_escape() {
        let json = r#""\" \\ \/ \b \f \n \r \t \u0041 \u00e9 \u20AC \u0000""#;
        let expected = "\" \\ / \u{8} \u{c} \n \r \t A é € \u{0}";
        assert_eq!(parse_str(json), Ok(expected.to_string()));
    }

    #[test]
    fn non_ascii_as_it_is() {
        assert_eq!(parse_str(r#""κόσμε 😀""#), Ok("κόσμε 😀".to_string()));
    }

    #[test]
    fn surrogate_pairs() {
        assert_eq!(parse_str(r#""\ud83d\ude00""#), Ok("😀".to_string()));
        assert_eq!(parse_str(r#""\uD83D\uDE00""#), Ok("😀".to_string()));
        // The first and last characters a pair can make.
        assert_eq!(parse_str(r#""\ud800\udc00""#), Ok("\u{10000}".to_string()));
        assert_eq!(parse_str(r#""\udbff\udfff""#), Ok("\u{10ffff}".to_string()));
        // Two emoji in a row, and a pair between other characters.
        let two = r#""\ud83d\ude00\ud83d\udc4d""#;
        assert_eq!(parse_str(two), Ok("😀👍".to_string()));
        assert_eq!(parse_str(r#""a\ud83d\ude00b""#), Ok("a😀b".to_string()));
    }

    /// One line per input: the input, then what `parse` makes of it.
    fn outcomes(inputs: &[&str]) -> String {
        let lines: Vec<String> = inputs
            .iter()
            .map(|input| {
                let outcome = match parse(input) {
                    Ok(value) => format!("{value:?}"),
                    Err(error) => format!("error: {error}"),
                };
                format!("{:<26} {outcome}", quoted(input))
            })
            .collect();
        lines.join("\n")
    }

    /// The text as it is, in backticks, except for characters you could not
    /// see, which are shown as `<U+000A>`. (Not as `\n`: that would look like
    /// the JSON escape, which is two characters.)
    fn quoted(text: &str) -> String {
        let shown: String = text
            .chars()
            .map(|c| match c {
                ' ' => " ".to_string(),
                c if c.is_control() || c.is_whitespace() || c == '\u{feff}' => {
                    format!("<U+{:04X}>", u32::from(c))
                }
                c => c.to_string(),
            })
            .collect();
        format!("`{shown}`")
    }

    #[test]
    fn lone_surrogates() {
        assert_snapshot!(outcomes(&[
            r#""\ud83d""#,
            r#""\ud83d and more""#,
            r#""\ud83d\u0041""#,
            r#""\ud83d\ud83d""#,
            r#""\ude00""#,
            r#""\ude00\ud83d""#,
            r#""\ud83d\""#,
            r#""\ud83d\u00""#,
        ]));
    }

    // The parser: numbers.

    #[test]
    fn numbers() {
        assert_snapshot!(outcomes(&[
            // valid
            "0",
            "-0",
            "7",
            "-7",
            "10",
            "1.5",
            "-0.25",
            "1e3",
            "1E3",
            "1e+3",
            "1e-3",
            "1.5e10",
            "0e0",
            "0.1",
            "9007199254740993",
            "123456789012345678901234567890",
            "1e308",
            "1e-400",
            // invalid
            "1e400",
            "-1e400",
            "01",
            "-01",
            "00",
            "+1",
            ".5",
            "-.5",
            "1.",
            "1.e3",
            "1e",
            "1e+",
            "-",
            "--1",
            "- 1",
            "0x10",
            "1_000",
            "1,5",
            "Infinity",
            "-Infinity",
            "NaN",
        ]));
    }

    // The parser: everything it refuses.

    #[test]
    fn rejections() {
        assert_snapshot!(outcomes(&[
            // nothing at all
            "",
            " \t\n\r",
            // something after the value
            "{} x",
            "[1] [2]",
            r#""a" "b""#,
            "1 2",
            "nullnull",
            // trailing and missing commas
            "[1,]",
            "[1, ]",
            r#"{"a":1,}"#,
            "[,1]",
            "[1,,2]",
            "[1 2]",
            r#"{"a":1 "b":2}"#,
            "{,}",
            // keys and colons
            "{a:1}",
            "{'a':1}",
            "{1:1}",
            r#"{"a" 1}"#,
            r#"{"a":}"#,
            r#"{"a"}"#,
            r#"{"a":1,"a":2}"#,
            // JavaScript, but not JSON
            "'single quotes'",
            "// comment\n1",
            "/* comment */ 1",
            "[1 /* comment */]",
            "undefined",
            "True",
            "tru",
            "nul",
            "nulL",
            // strings
            "\"line\nbreak\"",
            "\"tab\there\"",
            "\"\u{0}\"",
            "\"\u{1f}\"",
            r#""\x""#,
            r#""\'""#,
            r#""\u12""#,
            r#""\uZZZZ""#,
            r#""\U0041""#,
            r#""no end"#,
            r#""ends in a backslash\"#,
            // whitespace that JSON does not have
            "\u{feff}1",
            "\u{a0}1",
            "\u{b}1",
            "\u{c}1",
            // unclosed
            "[",
            "{",
            r#"{"a":1"#,
            "[1,",
        ]));
    }

    /// What the server sends back for a message it cannot read: the reason
    /// is escaped like any other string.
    #[test]
    fn parse_error_as_a_reason_for_the_client() {
        let error = parse("{'type':'join'}").unwrap_err();
        let reply = Value::object([
            ("type", Value::from("error")),
            ("reason", Value::from(format!("invalid JSON: {error}"))),
        ]);
        assert_snapshot!(encode(&reply));
    }

    #[test]
    fn every_error_points_inside_the_text() {
        let inputs = ["", "[", "\"é", "\"é\u{1}", "[1,]", "é", "😀", "1 é"];
        for input in inputs {
            let error = parse(input).unwrap_err();
            assert!(error.offset <= input.len(), "{input:?}: {error:?}");
            assert!(input.is_char_boundary(error.offset), "{input:?}: {error:?}");
        }
    }

    // The parser: nesting.

    #[test]
    fn exactly_max_depth_is_accepted() {
        let arrays = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(parse(&arrays).is_ok());
        let levels = r#"{"a":"#.repeat(MAX_DEPTH);
        let objects = format!("{levels}null{}", "}".repeat(MAX_DEPTH));
        assert!(parse(&objects).is_ok());
    }

    #[test]
    fn one_more_than_max_depth_is_refused() {
        let depth = MAX_DEPTH + 1;
        let arrays = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        assert_snapshot!(parse(&arrays).unwrap_err());
    }

    /// These run on the test's own thread, with its ordinary stack (2 MiB,
    /// unless `RUST_MIN_STACK` says otherwise): the limit, not a big stack,
    /// is what keeps them from overflowing it.
    #[test]
    fn ten_thousand_nested_arrays_are_refused() {
        let text = "[".repeat(10_000);
        let error = parse(&text).unwrap_err();
        assert_eq!(error.kind, ErrorKind::TooDeep);
        assert_eq!(error.offset, MAX_DEPTH);
    }

    #[test]
    fn ten_thousand_nested_objects_are_refused() {
        let text = format!("{}1{}", r#"{"a":"#.repeat(10_000), "}".repeat(10_000));
        let error = parse(&text).unwrap_err();
        assert_eq!(error.kind, ErrorKind::TooDeep);
        assert_eq!(error.offset, MAX_DEPTH * r#"{"a":"#.len());
    }

    /// How much stack the limit leaves us: `MAX_DEPTH` levels fit in a
    /// quarter of a thread's ordinary stack, even in a debug build, whose
    /// calls take more stack than an optimized build's. (They take about
    /// 2 KiB per level there, 0.7 KiB optimized.)
    #[test]
    fn max_depth_needs_only_a_small_stack() {
        let levels = r#"[{"a":"#.repeat(MAX_DEPTH / 2);
        let text = format!("{levels}1{}", "}]".repeat(MAX_DEPTH / 2));
        let small_stack = 512 * 1024;
        let thread = std::thread::Builder::new().stack_size(small_stack);
        let parsed = thread.spawn(move || parse(&text).is_ok()).unwrap();
        assert_eq!(parsed.join().ok(), Some(true));
    }

    #[test]
    fn ten_million_mixed_levels_are_refused() {
        let text = r#"[{"a":"#.repeat(5_000_000);
        let error = parse(&text).unwrap_err();
        assert_eq!(error.kind, ErrorKind::TooDeep);
    }

    // Round trips: what `encode` writes, `parse` reads back the same.

    fn assert_round_trip(value: &Value) {
        let text = encode(value);
        assert_eq!(parse(&text).as_ref(), Ok(value), "{text}");
    }

    #[test]
    fn round_trips() {
        let strings = [
            "",
            "hello",
            "\"\\/\u{8}\u{c}\n\r\t",
            "</script>",
            "😀 κόσμε \u{10ffff} \u{fffd} \u{2028}",
        ];
        let numbers = [0.0, -0.0, 1.0, -1.0, 0.1, 1e-7, 1e21, f64::MAX, 5e-324];
        let controls: String = (0..0x20u8).map(char::from).collect();
        let mut values = vec![Value::Null, Value::Bool(true), Value::Bool(false)];
        values.extend(strings.map(Value::from));
        values.extend(numbers.map(Value::from));
        values.push(Value::from(controls));
        values.push(Value::Array(values.clone()));
        values.push(Value::object([
            ("z first", Value::Array(values.clone())),
            ("a \"quoted\" key\n", Value::object([])),
            ("", Value::array([Value::array([])])),
        ]));
        for value in &values {
            assert_round_trip(value);
        }
    }

    #[test]
    fn parse_then_encode_drops_the_whitespace() {
        let text = "{ \"type\" : \"welcome\" ,\n  \"users\" : [ \"alice\" , \"bob\" ] }";
        assert_snapshot!(encode(&parse(text).unwrap()));
    }

    // Random inputs: `parse` never panics, and round trips always work.

    /// Characters that are likely to trouble an encoder or a parser.
    const TRICKY_CHARS: &str = "aZ \"\\/\n\u{0}\u{1f}\u{7f}é€😀<\u{2028}\u{fffd}\u{feff}\u{10ffff}";

    fn random_char(random: &mut Random) -> char {
        let chars: Vec<char> = TRICKY_CHARS.chars().collect();
        *random.pick(&chars)
    }

    fn random_string(random: &mut Random) -> String {
        let len = random.below(8);
        (0..len).map(|_| random_char(random)).collect()
    }

    /// Any finite f64 (any 64 bits that are not NaN or infinite), or a
    /// small integer.
    fn random_number(random: &mut Random) -> f64 {
        if random.below(2) == 0 {
            return random.below(2001) as f64 - 1000.0;
        }
        loop {
            let number = f64::from_bits(random.next());
            if number.is_finite() {
                return number;
            }
        }
    }

    /// A value up to 4 levels deep, whose objects have no duplicate keys.
    fn random_value(random: &mut Random, depth: usize) -> Value {
        let kinds = if depth < 4 { 6 } else { 4 };
        match random.below(kinds) {
            0 => Value::Null,
            1 => Value::Bool(random.below(2) == 0),
            2 => Value::Number(random_number(random)),
            3 => Value::String(random_string(random)),
            4 => {
                let len = random.below(4);
                Value::array((0..len).map(|_| random_value(random, depth + 1)))
            }
            _ => {
                let mut fields: Vec<(String, Value)> = Vec::new();
                for _ in 0..random.below(4) {
                    let key = random_string(random);
                    if fields.iter().all(|(other, _)| *other != key) {
                        fields.push((key, random_value(random, depth + 1)));
                    }
                }
                Value::Object(fields)
            }
        }
    }

    #[test]
    fn random_values_round_trip() {
        let mut random = Random(0x2545_f491_4f6c_dd1d);
        for _ in 0..20_000 {
            assert_round_trip(&random_value(&mut random, 0));
        }
    }

    /// Pieces of JSON, whole and broken, to make inputs from.
    const PIECES: [&str; 40] = [
        "{", "}", "[", "]", ",", ":", "\"", "\\", "\\u", "d83d", "dc00", "\\ud83d", "\\ude00",
        "\\n", "0", "1", "-", ".", "e", "E", "+", "true", "fals", "null", " ", "\n", "\t", "\u{0}",
        "\u{1f}", "é", "😀", "\"a\"", "\"key\":", "123", "1e400", "x", "'", "//", "\u{a0}",
        "\u{feff}",
    ];

    /// Up to 30 pieces, glued together.
    fn random_pieces(random: &mut Random) -> String {
        let count = random.below(31);
        (0..count).map(|_| *random.pick(&PIECES)).collect()
    }

    /// Deletes, replaces, inserts and duplicates characters, a few times.
    /// It works on characters, not bytes, so the result is still a `&str`.
    fn mutate(random: &mut Random, text: &str) -> String {
        let mut chars: Vec<char> = text.chars().collect();
        for _ in 0..1 + random.below(3) {
            if chars.is_empty() {
                break;
            }
            let at = random.below(chars.len());
            let piece: Vec<char> = random.pick(&PIECES).chars().collect();
            match random.below(5) {
                0 => {
                    chars.remove(at);
                }
                1 => chars[at] = random_char(random),
                2 => chars.splice(at..at, piece).for_each(drop),
                3 => chars.truncate(at),
                _ => {
                    let end = at + random.below(chars.len() - at + 1);
                    let copy = chars[at..end].to_vec();
                    chars.splice(at..at, copy).for_each(drop);
                }
            }
        }
        chars.into_iter().collect()
    }

    /// What a client might send: a valid message, a broken one, garbage, or
    /// deep nesting.
    fn random_input(random: &mut Random) -> String {
        match random.below(10) {
            0..=2 => random_pieces(random),
            3 => encode(&random_value(random, 0)),
            4 => {
                let depth = random.below(2 * MAX_DEPTH);
                let open = *random.pick(&["[", "{\"a\":", "[{\"b\":"]);
                format!("{}{}", open.repeat(depth), random_pieces(random))
            }
            _ => {
                let valid = encode(&random_value(random, 0));
                mutate(random, &valid)
            }
        }
    }

    /// `Unexpected { expected: "a value", found: None }` -> `"Unexpected"`
    fn variant_name(kind: &ErrorKind) -> String {
        let name = format!("{kind:?}");
        let end = name.find([' ', '(']).unwrap_or(name.len());
        name[..end].to_string()
    }

    #[test]
    fn fuzz_random_and_mutated_inputs() {
        let mut random = Random(0x9e37_79b9_7f4a_7c15);
        let mut accepted = 0;
        let mut errors_seen = std::collections::BTreeSet::new();
        for _ in 0..100_000 {
            let input = random_input(&mut random);
            match parse(&input) {
                Ok(value) => {
                    accepted += 1;
                    assert_round_trip(&value);
                }
                Err(error) => {
                    assert!(input.is_char_boundary(error.offset), "{input:?}: {error:?}");
                    let reason = error.to_string();
                    assert!(reason.len() <= 100, "{input:?}: {reason}");
                    errors_seen.insert(variant_name(&error.kind));
                }
            }
        }
        // The inputs reach every error, and often get past all of them.
        assert!(accepted > 10_000, "only {accepted} inputs accepted");
        assert_snapshot!(errors_seen.into_iter().collect::<Vec<_>>().join("\n"));
    }
}
