//! JSON (RFC 8259) by hand, with nothing but `std`: a [`Value`] in memory,
//! [`encode`] to turn it into text, [`parse`] to turn text into one or say
//! what is wrong and where. The parser accepts the grammar of RFC 8259 and
//! nothing else (no byte order mark either); it also refuses duplicate keys,
//! nesting deeper than 64 and lone surrogates, keeps numbers as text, and
//! never panics.

use std::collections::HashSet;
use std::fmt;

// ANCHOR: max_depth
/// How deeply arrays and objects may nest (`[1]` has depth 1, `{"a":[1]}`
/// depth 2), so that no text can overflow the stack: 64 levels take the
/// parser about 128 KiB of it in a debug build, of the 2 MiB a thread has.
const MAX_DEPTH: usize = 64;
// ANCHOR_END: max_depth

// ANCHOR: value
/// A JSON value in memory.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    /// A number as it was written, `-1.5e3`, checked by [`parse`], written
    /// back by [`encode`]: the chat sends none, so none becomes an `f64`.
    Number(String),
    String(String),
    Array(Vec<Value>),
    /// The fields in the order they were written (the protocol puts `type`
    /// first). For a few fields, a list is as fast as a `HashMap`.
    Object(Vec<(String, Value)>),
}
// ANCHOR_END: value

// ANCHOR: helpers
/// What the chat needs: `Value::object([("type", Value::from("join"))])`
/// builds a message, `request.get("name").and_then(Value::as_str)` reads one.
impl Value {
    /// An object with these fields, in this order. Give each key once, or
    /// [`parse`] will refuse what [`encode`] makes of it.
    pub fn object<'a>(fields: impl IntoIterator<Item = (&'a str, Value)>) -> Value {
        let fields = fields.into_iter().map(|(key, value)| (key.into(), value));
        Value::Object(fields.collect())
    }

    /// The value of the field `key`, if this is an object that has one.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Object(fields) => fields.iter().find(|(name, _)| name == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The text, if this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(text) => Some(text),
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
// ANCHOR_END: helpers

// ANCHOR: encode
/// The JSON text of `value`, without any whitespace: what we send in a
/// WebSocket text message. It calls itself for every array and object
/// inside another, but values from [`parse`] are at most 64 deep, and the
/// server builds no deep ones.
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
        // ANCHOR: write_number
        // The text that `parse` checked: `-0`, `1.50` and `1E+2` go back
        // unchanged, and so does `1e400`, which no `f64` could hold.
        Value::Number(text) => out.push_str(text),
        // ANCHOR_END: write_number
        Value::String(text) => write_string(text, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                out.push_str(if i == 0 { "" } else { "," });
                write_value(item, out);
            }
            out.push(']');
        }
        Value::Object(fields) => {
            out.push('{');
            for (i, (key, value)) in fields.iter().enumerate() {
                out.push_str(if i == 0 { "" } else { "," });
                write_string(key, out);
                out.push(':');
                write_value(value, out);
            }
            out.push('}');
        }
    }
}
// ANCHOR_END: encode

// ANCHOR: escape
/// A string in double quotes, escaped. JSON requires escapes for three
/// things only: the quote, the backslash, and the control characters U+0000
/// to U+001F, of which five have a short escape (`\n`, not `\u000a`): the
/// same text as `JSON.stringify` writes. Everything else goes as it is, in
/// UTF-8, `<` too: our JSON is never pasted into an HTML page.
fn write_string(text: &str, out: &mut String) {
    out.push('"');
    let mut rest = text;
    while let Some(i) = find_escape(rest) {
        out.push_str(&rest[..i]);
        match rest.as_bytes()[i] {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x08 => out.push_str("\\b"),
            0x0c => out.push_str("\\f"),
            byte => out.push_str(&format!("\\u{byte:04x}")),
        }
        rest = &rest[i + 1..];
    }
    out.push_str(rest);
    out.push('"');
}

/// Where the first quote, backslash or control character (all ASCII) is.
fn find_escape(text: &str) -> Option<usize> {
    let needs_escape = |byte: &u8| (*byte == b'"') | (*byte == b'\\') | (*byte < 0x20);
    let bytes = text.as_bytes();
    // 16 bytes at a time first. Testing all 16 with `|`, which does not
    // stop at the first `true` as `||` would, lets the compiler test them
    // together with SIMD instructions: seven times as fast on long text.
    let mut start = 0;
    for chunk in bytes.chunks_exact(16) {
        if chunk.iter().fold(false, |any, b| any | needs_escape(b)) {
            break;
        }
        start += 16;
    }
    let i = bytes[start..].iter().position(needs_escape)?;
    Some(start + i)
}
// ANCHOR_END: escape

// ANCHOR: parse_error
/// Why [`parse`] refused a text, and where (in bytes, from 0). `Display`
/// gives one short line, the `reason` of an error message to the client:
/// `expected a value, found '+' at byte 0`.
#[derive(Debug, PartialEq, Eq)]
pub struct ParseError {
    reason: String,
    offset: usize,
}

impl ParseError {
    fn at(offset: usize, reason: impl Into<String>) -> ParseError {
        let reason = reason.into();
        ParseError { reason, offset }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{} at byte {}", self.reason, self.offset)
    }
}
// ANCHOR_END: parse_error

// ANCHOR: parse
/// Reads one JSON value that fills the whole of `text` (a `&str`: the
/// WebSocket layer has checked that a text message is valid UTF-8).
///
/// The parser is *recursive descent*: one function per rule of the grammar,
/// each calling the functions of the rules inside it. From RFC 8259:
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
    /// The byte offset of the next character to read. The grammar is all
    /// ASCII, so the parser looks at bytes, and moves past other characters
    /// only whole: `pos` is always where `text` can be sliced.
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

    /// JSON has four whitespace characters, no more: a no-break space or a
    /// byte order mark is an error, not whitespace.
    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    /// The error for "here we needed `expected`", with what is here instead,
    /// quoted, and escaped if it cannot be seen: '+', '\n', '\u{feff}'.
    fn unexpected(&self, expected: &str) -> ParseError {
        let reason = match self.text[self.pos..].chars().next() {
            Some(found) => format!("expected {expected}, found {found:?}"),
            None => format!("expected {expected}, found the end of the text"),
        };
        ParseError::at(self.pos, reason)
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

    /// `true`, `false` or `null`, letter by letter: `nul` fails where it ends.
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
            let reason = format!("nested deeper than {MAX_DEPTH} arrays and objects");
            return Err(ParseError::at(self.pos, reason));
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
        let mut more = !self.eat(b']');
        while more {
            items.push(self.parse_element(depth)?);
            more = self.another_item(b']', "',' or ']'")?;
        }
        Ok(Value::Array(items))
    }

    /// After an item, the `end` of the list (`false`), or a comma and then
    /// another item (`true`): `[1,]` is JavaScript, not JSON.
    fn another_item(&mut self, end: u8, expected: &str) -> Result<bool, ParseError> {
        if self.eat(end) {
            return Ok(false);
        }
        let comma = self.pos;
        if !self.eat(b',') {
            return Err(self.unexpected(expected));
        }
        self.skip_whitespace();
        if self.peek() == Some(end) {
            return Err(ParseError::at(comma, "trailing comma"));
        }
        Ok(true)
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
        // through `fields`, which would take n²/2 comparisons for n keys.
        let mut keys = HashSet::new();
        self.skip_whitespace();
        let mut more = !self.eat(b'}');
        while more {
            self.skip_whitespace();
            let key_start = self.pos;
            if self.peek() != Some(b'"') {
                return Err(self.unexpected("a key in double quotes"));
            }
            let key = self.parse_string()?;
            if !keys.insert(key.clone()) {
                return Err(ParseError::at(key_start, "duplicate key"));
            }
            self.skip_whitespace();
            if !self.eat(b':') {
                return Err(self.unexpected("':' after the key"));
            }
            fields.push((key, self.parse_element(depth)?));
            more = self.another_item(b'}', "',' or '}'")?;
        }
        Ok(Value::Object(fields))
    }
    // ANCHOR_END: object

    // ANCHOR: strings
    /// A string, from its opening quote to its closing one, with the
    /// escapes replaced by the characters they stand for.
    fn parse_string(&mut self) -> Result<String, ParseError> {
        self.pos += 1; // the opening '"'
        let mut out = String::new();
        loop {
            let rest = &self.text[self.pos..];
            let run = find_escape(rest).unwrap_or(rest.len());
            out.push_str(&rest[..run]);
            self.pos += run;
            match self.peek() {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => out.push(self.parse_escape()?),
                // A raw newline or tab is refused: JSON wants `\n` or `\t`.
                Some(byte) => {
                    let reason = format!("control character U+{byte:04X} in a string, not escaped");
                    return Err(ParseError::at(self.pos, reason));
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
    /// A `\uXXXX` escape, which starts at `backslash`: one UTF-16 code unit,
    /// `\u00e9` is é. A character beyond U+FFFF takes two, a *surrogate
    /// pair*: a high surrogate (D800 to DBFF) with the top 10 bits of the
    /// character minus 0x10000, then a low one (DC00 to DFFF) with the
    /// bottom 10. So 😀, U+1F600, is `\ud83d\ude00`.
    ///
    /// Half a pair stands for no character, and a Rust `String` cannot hold
    /// one. We refuse it, rather than change it into U+FFFD without a word.
    fn parse_unicode_escape(&mut self, backslash: usize) -> Result<char, ParseError> {
        let lone = |unit| ParseError::at(backslash, format!("lone surrogate \\u{unit:04x}"));
        let unit = self.parse_hex4()?;
        let code_point = match unit {
            0xD800..=0xDBFF => {
                if !self.text[self.pos..].starts_with("\\u") {
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
        // No surrogate is left, and a pair makes at most U+10FFFF: a `char`.
        char::from_u32(code_point).ok_or(lone(unit))
    }

    /// Exactly 4 hex digits, either case: `00e9` is 0xE9.
    fn parse_hex4(&mut self) -> Result<u32, ParseError> {
        let mut unit = 0;
        for _ in 0..4 {
            let Some(digit) = self.peek().and_then(|byte| char::from(byte).to_digit(16)) else {
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
    /// Stricter than JavaScript, and than Rust's `str::parse::<f64>`: no
    /// `+1`, `.5`, `1.`, `0x10`, `inf` or `NaN`. What passes is kept as
    /// text, so `1e400`, too large for any `f64`, is as good as `1`.
    fn parse_number(&mut self) -> Result<Value, ParseError> {
        let start = self.pos;
        self.eat(b'-');
        if self.eat(b'0') {
            // C and old JavaScript read `01` as octal: JSON allows no `01`.
            if self.peek().is_some_and(|byte| byte.is_ascii_digit()) {
                return Err(ParseError::at(start, "number with a leading zero"));
            }
        } else {
            self.expect_digits("a digit after '-'")?;
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
        Ok(Value::Number(self.text[start..self.pos].to_string()))
    }

    /// One digit or more: `1.` and `1e` are refused.
    fn expect_digits(&mut self, expected: &str) -> Result<(), ParseError> {
        if !self.peek().is_some_and(|byte| byte.is_ascii_digit()) {
            return Err(self.unexpected(expected));
        }
        while self.peek().is_some_and(|byte| byte.is_ascii_digit()) {
            self.pos += 1;
        }
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
            (
                "users",
                Value::Array(users.into_iter().map(Value::from).collect()),
            ),
        ]);
        assert_snapshot!(encode(&welcome));
    }

    #[test]
    fn every_kind_of_value() {
        let value = Value::object([
            ("null", Value::Null),
            ("true", Value::Bool(true)),
            ("false", Value::Bool(false)),
            ("number", Value::Number("-12.5".to_string())),
            ("string", Value::from("hi")),
            ("empty array", Value::Array(vec![])),
            ("empty object", Value::Object(vec![])),
            (
                "nested",
                Value::Array(vec![Value::Array(vec![Value::object([(
                    "a",
                    Value::Null,
                )])])]),
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

    /// `find_escape` finds the first character to escape wherever it is:
    /// in the first 16 bytes, in a later block of 16, at its first or last
    /// byte, or in the bytes after the last whole block; and says where in
    /// bytes, after two-byte characters too.
    #[test]
    fn find_escape_at_every_position() {
        for length in 0..50 {
            assert_eq!(find_escape(&"é".repeat(length)), None);
            for at in 0..length {
                for escaped in ['"', '\\', '\n', '\u{0}', '\u{1f}'] {
                    for before in ["a", "é"] {
                        let mut text = before.repeat(at);
                        text.push(escaped);
                        text.push_str(&"b".repeat(length - at));
                        text.push('"');
                        let expected = Some(at * before.len());
                        assert_eq!(find_escape(&text), expected, "{text:?}");
                    }
                }
            }
        }
    }

    /// A number goes back out as the text it came in: nothing is rounded,
    /// shortened or refused for being too large.
    #[test]
    fn numbers_encoded() {
        let numbers = [
            "0",
            "-0",
            "42",
            "1.50",
            "0.1",
            "-1E+2",
            "1e-7",
            // One more than 2^53: an f64 would make it 9007199254740992.
            "9007199254740993",
            "123456789012345678901234567890",
            // Beyond the largest f64, and below the smallest.
            "1e400",
            "1e-400",
        ];
        let lines: Vec<String> = numbers
            .iter()
            .map(|number| format!("{number} -> {}", encode(&parse(number).unwrap())))
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

    /// How the chat reads a field: `get`, then `as_str`.
    #[test]
    fn helpers_look_inside_a_message() {
        let message = parse(r#"{"type":"join","name":"alice","extra":[1,true]}"#).unwrap();
        let field = |key| message.get(key).and_then(Value::as_str);
        assert_eq!(field("type"), Some("join"));
        assert_eq!(field("name"), Some("alice"));
        assert_eq!(field("missing"), None);
        // A field that is there, but not a string.
        let extra = Value::Array(vec![Value::Number("1".to_string()), Value::Bool(true)]);
        assert_eq!(message.get("extra"), Some(&extra));
        assert_eq!(field("extra"), None);
        // Not an object: there are no fields to get.
        assert_eq!(Value::from("type").get("type"), None);
    }

    // JSONTestSuite (github.com/nst/JSONTestSuite) has 95 texts that every
    // parser must accept (`y_`) and 188 that it must refuse (`n_`). Run over
    // the whole suite by hand, this parser accepts every `y_` but the two
    // with a duplicate key, which it refuses on purpose, refuses every `n_`,
    // and never panics. Here are the cases a hand-written parser most often
    // gets wrong.

    #[test]
    fn json_test_suite_y_cases_are_accepted() {
        let cases = [
            ("y_structure_lonely_null", "null"),
            ("y_structure_lonely_int", "42"),
            ("y_structure_lonely_negative_real", "-0.1"),
            ("y_structure_lonely_string", r#""asd""#),
            ("y_structure_whitespace_array", " [] "),
            ("y_structure_trailing_newline", "[\"a\"]\n"),
            ("y_array_with_trailing_space", "[2] "),
            ("y_array_arraysWithSpaces", "[[]   ]"),
            ("y_array_with_several_null", "[1,null,null,null,2]"),
            ("y_array_empty-string", r#"[""]"#),
            ("y_number_real_capital_e", "[1E22]"),
            ("y_number_real_pos_exponent", "[1e+2]"),
            ("y_number_real_capital_e_neg_exp", "[1E-2]"),
            ("y_number_0e1", "[0e1]"),
            ("y_number_minus_zero", "[-0]"),
            (
                "y_object_extreme_numbers",
                r#"{ "min": -1.0e+28, "max": 1.0e+28 }"#,
            ),
            ("y_object_empty_key", r#"{"":0}"#),
            ("y_object_with_newlines", "{\n\"a\": \"b\"\n}"),
            ("y_object_escaped_null_in_key", r#"{"foo\u0000bar": 42}"#),
            ("y_string_null_escape", r#"["\u0000"]"#),
            ("y_string_allowed_escapes", r#"["\"\\\/\b\f\n\r\t"]"#),
            ("y_string_escaped_noncharacter", r#"["\uFFFF"]"#),
            ("y_string_last_surrogates_1_and_2", r#"["\uDBFF\uDFFF"]"#),
            ("y_string_unicode_U+10FFFE_nonchar", r#"["\uDBFF\uDFFE"]"#),
            ("y_string_u+2028_line_sep", "[\"\u{2028}\"]"),
            ("y_string_with_del_character", "[\"a\u{7f}a\"]"),
            ("y_string_utf8", r#"["€𝄞"]"#),
        ];
        for (name, input) in cases {
            assert!(parse(input).is_ok(), "{name}: {:?}", parse(input));
        }
    }

    #[test]
    fn json_test_suite_n_cases_are_refused() {
        let cases = [
            ("n_structure_no_data", ""),
            ("n_single_space", " "),
            ("n_structure_UTF8_BOM_no_data", "\u{feff}"),
            ("n_structure_lone-open-bracket", "["),
            ("n_structure_close_unopened_array", "1]"),
            ("n_structure_array_with_extra_array_close", "[1]]"),
            ("n_structure_double_array", "[][]"),
            (
                "n_structure_object_with_trailing_garbage",
                r#"{"a": true} "x""#,
            ),
            ("n_structure_unclosed_object", r#"{"asd":"asd""#),
            (
                "n_structure_comma_instead_of_closing_brace",
                r#"{"x": true,"#,
            ),
            ("n_structure_null-byte-outside-string", "[\u{0}]"),
            ("n_structure_whitespace_formfeed", "[\u{c}]"),
            ("n_structure_capitalized_True", "[True]"),
            ("n_incomplete_true", "[tru]"),
            ("n_array_unclosed", r#"[""#),
            ("n_array_1_true_without_comma", "[1 true]"),
            ("n_array_comma_and_number", "[,1]"),
            ("n_array_extra_comma", r#"["",]"#),
            ("n_array_number_and_comma", "[1,]"),
            ("n_number_-01", "[-01]"),
            ("n_number_neg_int_starting_with_zero", "[-012]"),
            ("n_number_0.e1", "[0.e1]"),
            ("n_number_1.0e+", "[1.0e+]"),
            ("n_number_starting_with_dot", "[.123]"),
            ("n_number_real_garbage_after_e", "[1ea]"),
            ("n_number_hex_1_digit", "[0x1]"),
            ("n_number_minus_infinity", "[-Infinity]"),
            ("n_number_NaN", "[NaN]"),
            ("n_object_missing_colon", r#"{"a" b}"#),
            ("n_object_non_string_key", "{1:1}"),
            ("n_object_single_quote", "{'a':0}"),
            ("n_object_unquoted_key", r#"{a: "b"}"#),
            ("n_object_trailing_comma", r#"{"id":0,}"#),
            ("n_object_trailing_comment", r#"{"a":"b"}/**/"#),
            ("n_string_single_quote", "['single quote']"),
            ("n_string_unescaped_tab", "[\"\t\"]"),
            ("n_string_unescaped_newline", "[\"new\nline\"]"),
            ("n_string_escape_x", r#"["\x00"]"#),
            ("n_string_escaped_emoji", r#"["\🌀"]"#),
            ("n_string_unicode_CapitalU", r#""\UA66D""#),
            ("n_string_incomplete_escaped_character", r#"["\u00A"]"#),
            ("n_string_1_surrogate_then_escape_u1", r#"["\uD800\u1"]"#),
            (
                "n_string_incomplete_surrogate_escape_invalid",
                r#"["\uD800\uD800\x"]"#,
            ),
        ];
        for (name, input) in cases {
            assert!(parse(input).is_err(), "{name}: {:?}", parse(input));
        }
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
            "1e400",
            "-1e-400",
            // invalid
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
            "1eE2",
            "1e1.5",
            "0.1.2",
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
    /// The error for an array or object that opens at `offset`, too deep.
    fn too_deep(offset: usize) -> ParseError {
        ParseError::at(offset, "nested deeper than 64 arrays and objects")
    }

    #[test]
    fn ten_thousand_nested_arrays_are_refused() {
        let text = "[".repeat(10_000);
        assert_eq!(parse(&text), Err(too_deep(MAX_DEPTH)));
    }

    #[test]
    fn ten_thousand_nested_objects_are_refused() {
        let text = format!("{}1{}", r#"{"a":"#.repeat(10_000), "}".repeat(10_000));
        let offset = MAX_DEPTH * r#"{"a":"#.len();
        assert_eq!(parse(&text), Err(too_deep(offset)));
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
        // Level 65 is the `[` of the 33rd `[{"a":`.
        assert_eq!(parse(&text), Err(too_deep(32 * r#"[{"a":"#.len())));
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
        let numbers = ["0", "-0", "-1", "0.1", "1.50", "1e-7", "-1E+21", "1e400"];
        let controls: String = (0..0x20u8).map(char::from).collect();
        let mut values = vec![Value::Null, Value::Bool(true), Value::Bool(false)];
        values.extend(strings.map(Value::from));
        values.extend(numbers.map(|number| Value::Number(number.to_string())));
        values.push(Value::from(controls));
        values.push(Value::Array(values.clone()));
        values.push(Value::object([
            ("z first", Value::Array(values.clone())),
            ("a \"quoted\" key\n", Value::object([])),
            ("", Value::Array(vec![Value::Array(vec![])])),
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

    const DIGITS: [char; 10] = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];

    /// `count` random digits.
    fn random_digits(random: &mut Random, count: usize) -> String {
        (0..count).map(|_| *random.pick(&DIGITS)).collect()
    }

    /// A number the grammar allows: a sign or not, 0 or a digit from 1 to 9
    /// and more digits, then a fraction or not, an exponent or not.
    fn random_number(random: &mut Random) -> String {
        let mut text = random.pick(&["", "-"]).to_string();
        if random.below(4) == 0 {
            text.push('0');
        } else {
            text.push(*random.pick(&DIGITS[1..]));
            let count = random.below(20);
            text += &random_digits(random, count);
        }
        if random.below(2) == 0 {
            let count = 1 + random.below(20);
            text = format!("{text}.{}", random_digits(random, count));
        }
        if random.below(2) == 0 {
            let (e, sign) = (random.pick(&["e", "E"]), random.pick(&["", "+", "-"]));
            let count = 1 + random.below(4);
            text = format!("{text}{e}{sign}{}", random_digits(random, count));
        }
        text
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
                Value::Array((0..len).map(|_| random_value(random, depth + 1)).collect())
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

    /// The reason without what belongs to one input: `expected a value,
    /// found 'x'` -> `expected a value`, `lone surrogate \ud83d` -> `lone
    /// surrogate \uXXXX`.
    fn kind_of_error(reason: &str) -> String {
        let reason = reason.split(", found").next().unwrap_or_default();
        let words = reason.split(' ').map(|word| match word {
            _ if word.starts_with("\\u") && word.len() == 6 => "\\uXXXX",
            _ if word.starts_with("U+") => "U+XXXX",
            _ => word,
        });
        words.collect::<Vec<_>>().join(" ")
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
                    errors_seen.insert(kind_of_error(&error.reason));
                }
            }
        }
        // The inputs reach every error, and often get past all of them.
        assert!(accepted > 10_000, "only {accepted} inputs accepted");
        assert_snapshot!(errors_seen.into_iter().collect::<Vec<_>>().join("\n"));
    }
}
