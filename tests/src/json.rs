//! The test client's JSON: it reads what a chat server sends, and writes it
//! again the one way the checks compare it, so that a server may order the
//! keys of an object as it likes, and escape what it likes.
//!
//! The one way: no spaces; in an object, `type` first, then the other keys
//! in alphabetical order (the order of the protocol table in chapter 5:
//! `{"type":"message","from":"ann","text":"hi"}`); in a string, escapes for
//! what JSON requires and nothing else, the short ones where there are
//! (`\n`), as `JSON.stringify` writes them. Numbers stay as they were sent.
//!
//! Written from RFC 8259 for the tests, sharing no code with the stages.

/// `text` written the one way, as [`canonical`], without the fields of the
/// object that are not in `keys`: a server may send more than the protocol
/// names (a history in its welcome, say), and the checks leave it out.
pub fn canonical_only(text: &str, keys: &[&str]) -> Option<String> {
    let mut parser = Parser {
        text,
        bytes: text.as_bytes(),
        at: 0,
    };
    let mut value = parser.value(0)?;
    parser.whitespace();
    if parser.at != parser.bytes.len() {
        return None;
    }
    if let Value::Object(fields) = &mut value {
        fields.retain(|(key, _)| keys.contains(&key.as_str()));
    }
    let mut out = String::new();
    write(&value, &mut out);
    Some(out)
}

/// `text` written the one way, or `None` if it is not one JSON value.
pub fn canonical(text: &str) -> Option<String> {
    let mut parser = Parser {
        text,
        bytes: text.as_bytes(),
        at: 0,
    };
    let value = parser.value(0)?;
    parser.whitespace();
    (parser.at == parser.bytes.len()).then(|| {
        let mut out = String::new();
        write(&value, &mut out);
        out
    })
}

enum Value {
    /// `null`, `true`, `false`, or a number, as it was written.
    Literal(String),
    String(String),
    Array(Vec<Value>),
    Object(Vec<(String, Value)>),
}

struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
}

impl Parser<'_> {
    fn whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn eat(&mut self, byte: u8) -> Option<()> {
        (self.peek() == Some(byte)).then(|| self.at += 1)
    }

    fn value(&mut self, depth: usize) -> Option<Value> {
        if depth > 64 {
            return None;
        }
        self.whitespace();
        match self.peek()? {
            b'{' => {
                self.at += 1;
                let mut fields = Vec::new();
                self.whitespace();
                if self.eat(b'}').is_some() {
                    return Some(Value::Object(fields));
                }
                loop {
                    self.whitespace();
                    let key = self.string()?;
                    self.whitespace();
                    self.eat(b':')?;
                    fields.push((key, self.value(depth + 1)?));
                    self.whitespace();
                    if self.eat(b'}').is_some() {
                        return Some(Value::Object(fields));
                    }
                    self.eat(b',')?;
                }
            }
            b'[' => {
                self.at += 1;
                let mut items = Vec::new();
                self.whitespace();
                if self.eat(b']').is_some() {
                    return Some(Value::Array(items));
                }
                loop {
                    items.push(self.value(depth + 1)?);
                    self.whitespace();
                    if self.eat(b']').is_some() {
                        return Some(Value::Array(items));
                    }
                    self.eat(b',')?;
                }
            }
            b'"' => self.string().map(Value::String),
            _ => self.literal(),
        }
    }

    /// `null`, `true`, `false`, or a number (`-0.5e+3`), kept as written.
    fn literal(&mut self) -> Option<Value> {
        let rest = &self.bytes[self.at..];
        for word in ["null", "true", "false"] {
            if rest.starts_with(word.as_bytes()) {
                self.at += word.len();
                return Some(Value::Literal(word.to_string()));
            }
        }
        let start = self.at;
        self.eat(b'-');
        match self.peek()? {
            b'0' => self.at += 1,
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        if self.eat(b'.').is_some() {
            self.peek().filter(u8::is_ascii_digit)?;
            self.digits();
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.at += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.at += 1;
            }
            self.peek().filter(u8::is_ascii_digit)?;
            self.digits();
        }
        let text = std::str::from_utf8(&self.bytes[start..self.at]).ok()?;
        Some(Value::Literal(text.to_string()))
    }

    fn digits(&mut self) {
        while self.peek().is_some_and(|byte| byte.is_ascii_digit()) {
            self.at += 1;
        }
    }

    fn string(&mut self) -> Option<String> {
        self.eat(b'"')?;
        let mut units: Vec<u16> = Vec::new();
        let mut out = String::new();
        loop {
            let byte = self.peek()?;
            match byte {
                b'"' => {
                    self.at += 1;
                    out.push_str(&String::from_utf16(&units).ok()?);
                    return Some(out);
                }
                b'\\' => {
                    self.at += 1;
                    let escaped = self.peek()?;
                    self.at += 1;
                    let unit = match escaped {
                        b'"' => u16::from(b'"'),
                        b'\\' => u16::from(b'\\'),
                        b'/' => u16::from(b'/'),
                        b'b' => 0x08,
                        b'f' => 0x0c,
                        b'n' => u16::from(b'\n'),
                        b'r' => u16::from(b'\r'),
                        b't' => u16::from(b'\t'),
                        b'u' => {
                            let hex =
                                std::str::from_utf8(self.bytes.get(self.at..self.at + 4)?).ok()?;
                            self.at += 4;
                            u16::from_str_radix(hex, 16).ok()?
                        }
                        _ => return None,
                    };
                    units.push(unit);
                }
                0x00..=0x1f => return None,
                _ => {
                    // One character of UTF-8, as UTF-16 units.
                    let rest = self.text.get(self.at..)?;
                    let c = rest.chars().next()?;
                    self.at += c.len_utf8();
                    let mut buffer = [0; 2];
                    units.extend_from_slice(c.encode_utf16(&mut buffer));
                }
            }
        }
    }
}

fn write(value: &Value, out: &mut String) {
    match value {
        Value::Literal(text) => out.push_str(text),
        Value::String(text) => write_string(text, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write(item, out);
            }
            out.push(']');
        }
        Value::Object(fields) => {
            let mut sorted: Vec<&(String, Value)> = fields.iter().collect();
            sorted.sort_by_key(|(key, _)| (key != "type", key.clone()));
            out.push('{');
            for (i, (key, value)) in sorted.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(key, out);
                out.push(':');
                write(value, out);
            }
            out.push('}');
        }
    }
}

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

#[cfg(test)]
mod tests {
    use super::canonical;

    #[test]
    fn the_reference_encoding_is_already_canonical() {
        for text in [
            r#"{"type":"welcome","name":"ann","users":["ann","bob"]}"#,
            r#"{"type":"message","from":"ann","text":"\"quoted\" \\ \n</script>\u0001 😀"}"#,
            r#"{"type":"error","reason":"invalid JSON: expected a value"}"#,
        ] {
            assert_eq!(canonical(text).as_deref(), Some(text));
        }
    }

    #[test]
    fn order_spaces_and_escapes_do_not_matter() {
        assert_eq!(
            canonical(r#" { "text" : "h\u00e9\/", "from":"ann" , "type":"message" } "#).as_deref(),
            Some(r#"{"type":"message","from":"ann","text":"hé/"}"#)
        );
        assert_eq!(
            canonical(r#"{"type":"message","text":"\ud83d\ude00"}"#).as_deref(),
            Some(r#"{"type":"message","text":"😀"}"#)
        );
    }

    #[test]
    fn fields_the_protocol_does_not_name_are_left_out() {
        let welcome = r#"{"history":[],"type":"welcome","users":["ann"],"name":"ann"}"#;
        assert_eq!(
            super::canonical_only(welcome, &["type", "name", "users"]).as_deref(),
            Some(r#"{"type":"welcome","name":"ann","users":["ann"]}"#)
        );
    }

    #[test]
    fn what_is_not_json_has_no_canonical_form() {
        for text in [
            "not json",
            "{",
            r#"{"a":1} x"#,
            "\"\u{1}\"",
            r#""\ud83d""#,
            "01",
        ] {
            assert_eq!(canonical(text), None, "{text:?}");
        }
    }
}
