//! HTTP/1.1, the small part of it this server needs.
//!
//! HTTP is plain text: a request line, header lines, an empty line, then an
//! optional body whose length the `Content-Length` header states.
//!
//! ```text
//! POST /x HTTP/1.1\r\n            <- request line: method, target, version
//! Host: 127.0.0.1:8080\r\n        <- headers: "Name: value"
//! Content-Length: 5\r\n
//! \r\n                            <- an empty line ends the head
//! hello                           <- the body: exactly Content-Length bytes
//! ```
//!
//! This module turns those bytes into a [`Request`] and a [`Response`] back
//! into bytes. It never trusts the client: every size is limited, and every
//! malformed input becomes an [`HttpError`] with the status code to answer.

use std::fmt;

/// The most bytes we accept for the request line and headers together.
const MAX_HEAD_BYTES: usize = 8 * 1024;

/// The largest request body we accept.
const MAX_BODY_BYTES: usize = 64 * 1024;

// ANCHOR: request
/// A parsed HTTP request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub target: String,
    pub version: String,
    /// Header names keep the case the client used; look them up with
    /// [`Request::header`], which ignores case.
    headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}
// ANCHOR_END: request

impl Request {
    // ANCHOR: header_lookup
    /// The value of the first header called `name`, ignoring ASCII case:
    /// `Content-Length`, `content-length` and `CONTENT-LENGTH` are one header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(header_name, _)| header_name.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
    // ANCHOR_END: header_lookup

    /// The values of every header called `name`, ignoring ASCII case, in the
    /// order they came: for the headers that must not come twice.
    fn header_values(&self, name: &str) -> impl Iterator<Item = &str> {
        self.headers
            .iter()
            .filter(move |(header_name, _)| header_name.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The request written out again as HTTP text, exactly as we understood it.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = format!("{} {} {}\r\n", self.method, self.target, self.version);
        for (name, value) in &self.headers {
            bytes.push_str(&format!("{name}: {value}\r\n"));
        }
        bytes.push_str("\r\n");
        let mut bytes = bytes.into_bytes();
        bytes.extend_from_slice(&self.body);
        bytes
    }
}

// ANCHOR: response
/// An HTTP response, ready to be turned into bytes with [`Response::to_bytes`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub reason: &'static str,
    headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn new(status: u16, reason: &'static str) -> Response {
        Response {
            status,
            reason,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Response {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Sets the body and the headers that describe it.
    pub fn with_body(mut self, content_type: &str, body: impl Into<Vec<u8>>) -> Response {
        self.body = body.into();
        let length = self.body.len().to_string();
        self.with_header("Content-Type", content_type)
            .with_header("Content-Length", &length)
    }

    /// The status line, the headers, an empty line, the body.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut head = format!("HTTP/1.1 {} {}\r\n", self.status, self.reason);
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(&self.body);
        bytes
    }
}
// ANCHOR_END: response

// ANCHOR: http_error
/// Everything that can go wrong while reading a request.
#[derive(Debug)]
pub enum HttpError {
    /// Not HTTP, or HTTP we do not understand: 400 Bad Request.
    Malformed(&'static str),
    /// Request line and headers over [`MAX_HEAD_BYTES`]: 431.
    HeadTooLarge,
    /// A body over [`MAX_BODY_BYTES`]: 413.
    BodyTooLarge,
    /// `Transfer-Encoding` (chunked bodies), which this server does not implement: 501.
    UnsupportedTransferEncoding,
}

impl HttpError {
    /// The response that tells the client what was wrong.
    pub fn response(&self) -> Response {
        let (status, reason, explanation) = match self {
            HttpError::Malformed(why) => (400, "Bad Request", *why),
            HttpError::HeadTooLarge => (
                431,
                "Request Header Fields Too Large",
                "request line and headers must fit in 8 KiB",
            ),
            HttpError::BodyTooLarge => (413, "Content Too Large", "the body must fit in 64 KiB"),
            HttpError::UnsupportedTransferEncoding => (
                501,
                "Not Implemented",
                "Transfer-Encoding is not supported; send Content-Length",
            ),
        };
        let body = format!("{status} {reason}: {explanation}\n");
        Response::new(status, reason)
            .with_header("Connection", "close")
            .with_body("text/plain; charset=utf-8", body)
    }
}
// ANCHOR_END: http_error

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            HttpError::Malformed(why) => write!(f, "malformed request: {why}"),
            HttpError::HeadTooLarge => write!(f, "request head over {MAX_HEAD_BYTES} bytes"),
            HttpError::BodyTooLarge => write!(f, "request body over {MAX_BODY_BYTES} bytes"),
            HttpError::UnsupportedTransferEncoding => write!(f, "Transfer-Encoding not supported"),
        }
    }
}

// ANCHOR: parse_request
/// Parses one request from the start of `buffer`, if all of it has arrived.
///
/// On a nonblocking socket a request arrives in as many pieces as the network
/// likes, so "not all here yet" is not an error: it is `Ok(None)`, and the
/// caller tries again when more bytes have come. A complete request comes
/// back with the number of bytes it took from the buffer; whatever follows
/// them (frames from an eager client) is left for the caller.
pub fn parse_request(buffer: &[u8]) -> Result<Option<(Request, usize)>, HttpError> {
    let Some(head_length) = find_end_of_head(buffer) else {
        // No empty line yet. Past the limit, no empty line can save it.
        if buffer.len() > MAX_HEAD_BYTES {
            return Err(HttpError::HeadTooLarge);
        }
        return Ok(None);
    };
    if head_length > MAX_HEAD_BYTES {
        return Err(HttpError::HeadTooLarge);
    }
    let head = std::str::from_utf8(&buffer[..head_length])
        .map_err(|_| HttpError::Malformed("the head is not text"))?;
    let mut request = parse_head(head)?;
    let body_length = body_length(&request)?;
    let Some(body) = buffer[head_length..].get(..body_length) else {
        return Ok(None); // the head is here, the body is still on its way
    };
    request.body = body.to_vec();
    Ok(Some((request, head_length + body_length)))
}

/// The length of the head: up to and including the first empty line
/// (`\r\n\r\n`, or `\n\n` from a client that leaves out the `\r`s).
fn find_end_of_head(buffer: &[u8]) -> Option<usize> {
    let mut line_start = 0;
    for (index, byte) in buffer.iter().enumerate() {
        if *byte == b'\n' {
            let line = &buffer[line_start..index];
            if line.is_empty() || line == b"\r" {
                return Some(index + 1);
            }
            line_start = index + 1;
        }
    }
    None
}
// ANCHOR_END: parse_request

// ANCHOR: parse_head
/// Parses a complete head (request line, headers, empty line) into a
/// [`Request`] with an empty body.
pub fn parse_head(head: &str) -> Result<Request, HttpError> {
    let mut lines = head.lines(); // splits on "\n" and drops a trailing "\r"
    let request_line = lines.next().unwrap_or_default();
    let (method, target, version) = parse_request_line(request_line)?;
    let mut headers = Vec::new();
    for line in lines.take_while(|line| !line.is_empty()) {
        headers.push(parse_header_line(line)?);
    }
    let request = Request {
        method,
        target,
        version,
        headers,
        body: Vec::new(),
    };
    check_host(&request)?;
    Ok(request)
}

/// `GET /chat HTTP/1.1` -> ("GET", "/chat", "HTTP/1.1")
fn parse_request_line(line: &str) -> Result<(String, String, String), HttpError> {
    let parts: Vec<&str> = line.split(' ').collect();
    let [method, target, version] = parts[..] else {
        return Err(HttpError::Malformed(
            "the request line must be: METHOD TARGET HTTP/1.1",
        ));
    };
    if method.is_empty() || !method.bytes().all(|byte| byte.is_ascii_uppercase()) {
        return Err(HttpError::Malformed("the method must be a word like GET"));
    }
    if target.is_empty() {
        return Err(HttpError::Malformed("the request target is empty"));
    }
    if version != "HTTP/1.1" && version != "HTTP/1.0" {
        return Err(HttpError::Malformed(
            "only HTTP/1.0 and HTTP/1.1 are spoken here",
        ));
    }
    Ok((method.to_string(), target.to_string(), version.to_string()))
}

/// `Content-Length: 5` -> ("Content-Length", "5")
fn parse_header_line(line: &str) -> Result<(String, String), HttpError> {
    let Some((name, value)) = line.split_once(':') else {
        return Err(HttpError::Malformed("a header line has no colon"));
    };
    // A name is one token: no spaces, and nothing between it and the colon.
    // (A line starting with a space would be the obsolete "line folding".)
    let is_token_byte =
        |byte: u8| byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte);
    if name.is_empty() || !name.bytes().all(is_token_byte) {
        return Err(HttpError::Malformed("a header name is not a single word"));
    }
    // A value is visible characters, spaces and tabs (RFC 9110, section 5.5).
    // Any other control character (NUL, ESC, a lone CR, DEL) is refused, not
    // passed on to whatever reads the value next: a log, a terminal, a proxy.
    let is_control = |char: char| char.is_ascii_control() && char != '\t';
    if value.contains(is_control) {
        return Err(HttpError::Malformed(
            "a header value contains a control character",
        ));
    }
    // Only spaces and tabs surround a value; `trim()` would also remove
    // Unicode spaces, and take `5\u{a0}` for the `Content-Length` 5.
    let value = value.trim_matches([' ', '\t']);
    Ok((name.to_string(), value.to_string()))
}

/// RFC 9112, section 3.2: an HTTP/1.1 request names the host it is for in
/// exactly one `Host` header. A server with a single name could do without
/// it, but a proxy in front of it routes by it, and a request that the two
/// read differently is how one client's request ends up in another's
/// answer. HTTP/1.0 came before `Host`, so there it may be missing.
fn check_host(request: &Request) -> Result<(), HttpError> {
    match request.header_values("Host").count() {
        0 if request.version == "HTTP/1.1" => Err(HttpError::Malformed(
            "an HTTP/1.1 request must have a Host header",
        )),
        0 | 1 => Ok(()),
        _ => Err(HttpError::Malformed("more than one Host header")),
    }
}
// ANCHOR_END: parse_head

// ANCHOR: content_length
/// The request's `Content-Length`, if it has one, once everything that
/// would leave the length of its body in doubt has been refused.
///
/// Where the body ends is where the next request begins. If this server and
/// a proxy in front of it could find that place in two different spots, a
/// client could hide a second request inside the body of the first
/// ("request smuggling"). So a head that can be read two ways is refused,
/// never guessed at.
fn content_length(request: &Request) -> Result<Option<&str>, HttpError> {
    let mut lengths = request.header_values("Content-Length");
    let length = lengths.next();
    // Two lengths that differ are the ambiguity itself: one reader takes the
    // first, another the last. Identical ones are accepted, as one: they say
    // the same thing to every reader, and RFC 9110, section 8.6, allows it.
    // (The list form, `Content-Length: 5, 5`, is not a number here: refused.)
    if lengths.any(|other| Some(other) != length) {
        return Err(HttpError::Malformed(
            "two Content-Length headers that disagree",
        ));
    }
    if request.header("Transfer-Encoding").is_some() {
        // RFC 9112, sections 6.1 and 6.3. Transfer-Encoding overrides
        // Content-Length, so a head with both is a smuggling attempt or a
        // broken proxy; HTTP/1.0 has no Transfer-Encoding, so there the
        // framing is faulty; and unless chunked comes last, nothing says
        // where the body ends. What is left is a chunked body, which this
        // server could read if it implemented chunks: 501.
        let last_coding = request
            .header_values("Transfer-Encoding")
            .flat_map(|value| value.split(','))
            .map(|coding| coding.trim_matches([' ', '\t']))
            .filter(|coding| !coding.is_empty())
            .last();
        return Err(if length.is_some() {
            HttpError::Malformed("both Transfer-Encoding and Content-Length")
        } else if request.version == "HTTP/1.0" {
            HttpError::Malformed("Transfer-Encoding in an HTTP/1.0 request")
        } else if !last_coding.is_some_and(|coding| coding.eq_ignore_ascii_case("chunked")) {
            HttpError::Malformed("a Transfer-Encoding that does not end with chunked")
        } else {
            HttpError::UnsupportedTransferEncoding
        });
    }
    Ok(length)
}
// ANCHOR_END: content_length

// ANCHOR: body_length
/// How many body bytes follow the head, as `Content-Length` says.
fn body_length(request: &Request) -> Result<usize, HttpError> {
    let length = match content_length(request)? {
        None => 0,
        Some(value) => {
            // `parse::<usize>` would accept "+5"; a length is digits only.
            if value.is_empty() || !value.bytes().all(|byte| byte.is_ascii_digit()) {
                return Err(HttpError::Malformed("Content-Length is not a number"));
            }
            value.parse::<usize>().unwrap_or(usize::MAX)
        }
    };
    // Decide from the header, before waiting for (or storing) the body.
    if length > MAX_BODY_BYTES {
        return Err(HttpError::BodyTooLarge);
    }
    Ok(length)
}
// ANCHOR_END: body_length

#[cfg(test)]
mod tests {
    use super::*;
    use insta::{assert_debug_snapshot, assert_snapshot};

    /// Parses a request that `bytes` holds in full, and nothing after it.
    fn read(bytes: &[u8]) -> Result<Request, HttpError> {
        let (request, used) = parse_request(bytes)?.expect("a complete request");
        assert_eq!(used, bytes.len(), "bytes left after the request");
        Ok(request)
    }

    #[test]
    fn curl_post_with_body() {
        assert_debug_snapshot!(read(
            b"POST /x HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: curl/7.88.1\r\n\
              Accept: */*\r\nContent-Length: 5\r\n\
              Content-Type: application/x-www-form-urlencoded\r\n\r\nhello"
        ));
    }

    // ANCHOR: test_header_lookup_ignores_case
    #[test]
    fn header_lookup_ignores_case() {
        let request =
            read(b"GET / HTTP/1.1\r\nHost: x\r\ncOnTeNt-TyPe: text/plain\r\n\r\n").unwrap();
        assert_eq!(request.header("Content-Type"), Some("text/plain"));
        assert_eq!(request.header("CONTENT-TYPE"), Some("text/plain"));
        assert_eq!(request.header("Accept"), None);
    }
    // ANCHOR_END: test_header_lookup_ignores_case

    #[test]
    fn bare_newlines_are_accepted() {
        let request = read(b"GET /lf HTTP/1.1\nHost: x\n\n").unwrap();
        assert_eq!(request.target, "/lf");
        assert_eq!(request.header("host"), Some("x"));
    }

    // ANCHOR: test_reading_stops_at_the_end_of_the_request
    #[test]
    fn reading_stops_at_the_end_of_the_request() {
        let bytes = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhiNEXT";
        let (request, used) = parse_request(bytes).unwrap().unwrap();
        assert_eq!(request.body, b"hi");
        assert_eq!(&bytes[used..], b"NEXT");
    }
    // ANCHOR_END: test_reading_stops_at_the_end_of_the_request

    // ANCHOR: test_split_anywhere
    /// However the network cuts a request, every piece short of the whole is
    /// "not yet", and the whole is the same request.
    #[test]
    fn a_request_cut_anywhere_waits_for_the_rest() {
        let bytes = b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello";
        for end in 0..bytes.len() {
            let result = parse_request(&bytes[..end]);
            assert!(matches!(result, Ok(None)), "after {end} bytes: {result:?}");
        }
        assert_eq!(read(bytes).unwrap().body, b"hello");
    }
    // ANCHOR_END: test_split_anywhere

    #[test]
    fn a_head_over_the_limit_fails_before_it_ends() {
        let endless = format!("GET / HTTP/1.1\r\nX-Pad: {}", "a".repeat(MAX_HEAD_BYTES));
        assert!(matches!(
            parse_request(endless.as_bytes()),
            Err(HttpError::HeadTooLarge)
        ));
    }

    #[test]
    fn request_round_trips_to_the_same_bytes() {
        let bytes = b"PUT /a?b=c HTTP/1.1\r\nHost: x\r\nX-One: 1\r\nContent-Length: 3\r\n\r\nabc";
        assert_eq!(read(bytes).unwrap().to_bytes(), bytes);
    }

    #[test]
    fn not_http() {
        assert_debug_snapshot!(read(b"hello there\r\n\r\n"));
    }

    // ANCHOR: test_rejections
    #[test]
    fn rejections() {
        let cases: &[(&str, &[u8])] = &[
            ("lowercase method", b"get / HTTP/1.1\r\n\r\n"),
            ("HTTP/2", b"GET / HTTP/2\r\n\r\n"),
            ("two spaces", b"GET  / HTTP/1.1\r\n\r\n"),
            ("header without colon", b"GET / HTTP/1.1\r\nHost\r\n\r\n"),
            ("space before colon", b"GET / HTTP/1.1\r\nHost : x\r\n\r\n"),
            ("folded header", b"GET / HTTP/1.1\r\nA: b\r\n  c\r\n\r\n"),
            (
                "bad length",
                b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nhello",
            ),
            (
                "huge length",
                b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n",
            ),
            (
                "chunked",
                b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
            ),
            ("not UTF-8", b"GET /\xff HTTP/1.1\r\n\r\n"),
            ("no Host", b"GET / HTTP/1.1\r\n\r\n"),
            (
                "the same Host twice",
                b"GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n",
            ),
            (
                "two Hosts in HTTP/1.0",
                b"GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n",
            ),
            (
                "lengths that disagree",
                b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
            ),
            (
                "a list of lengths",
                b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\nhello",
            ),
            (
                "a Unicode space after the length",
                "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\u{a0}\r\n\r\nhello".as_bytes(),
            ),
            (
                "chunked and a length",
                b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\nhello",
            ),
            (
                "chunked in HTTP/1.0",
                b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
            ),
            (
                "chunked, then gzip",
                b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
            ),
            ("NUL in a value", b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n"),
            (
                "ESC in a value",
                b"GET / HTTP/1.1\r\nHost: x\r\nX-A: \x1b[31mred\r\n\r\n",
            ),
            (
                "a lone CR in a value",
                b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n",
            ),
            ("DEL in a value", b"GET / HTTP/1.1\r\nHost: x\r\nX-A: \x7f\r\n\r\n"),
            ("a control character in the Host", b"GET / HTTP/1.1\r\nHost: a\x01b\r\n\r\n"),
        ];
        let outcomes: Vec<String> = cases
            .iter()
            .map(|(name, bytes)| format!("{name}: {}", read(bytes).unwrap_err()))
            .collect();
        assert_snapshot!(outcomes.join("\n"));
    }
    // ANCHOR_END: test_rejections

    // ANCHOR: test_what_is_still_accepted
    /// HTTP/1.0 came before `Host`: a request without one is fine.
    #[test]
    fn http_1_0_needs_no_host() {
        let request = read(b"GET /old HTTP/1.0\r\n\r\n").unwrap();
        assert_eq!(request.target, "/old");
    }

    /// Two `Content-Length`s that agree leave no doubt: they count as one.
    #[test]
    fn the_same_content_length_twice_is_one() {
        let request =
            read(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\ncontent-length: 2\r\n\r\nhi")
                .unwrap();
        assert_eq!(request.body, b"hi");
    }

    /// A value may hold tabs and text beyond ASCII; spaces and tabs around
    /// it are not part of it.
    #[test]
    fn tabs_and_non_ascii_text_are_allowed_in_values() {
        let request =
            read("GET / HTTP/1.1\r\nHost: x\r\nX-A: \t a\tb é \t\r\n\r\n".as_bytes()).unwrap();
        assert_eq!(request.header("X-A"), Some("a\tb é"));
    }
    // ANCHOR_END: test_what_is_still_accepted

    // ANCHOR: test_limits
    #[test]
    fn head_limit_is_exact() {
        let head_of_size = |size: usize| {
            let start = "GET / HTTP/1.1\r\nHost: x\r\nX-Pad: ";
            let padding = "a".repeat(size - start.len() - 4);
            format!("{start}{padding}\r\n\r\n")
        };
        assert!(read(head_of_size(MAX_HEAD_BYTES).as_bytes()).is_ok());
        assert!(matches!(
            read(head_of_size(MAX_HEAD_BYTES + 1).as_bytes()),
            Err(HttpError::HeadTooLarge)
        ));
    }

    #[test]
    fn body_limit_is_exact() {
        let post = |length: usize| {
            let mut bytes =
                format!("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n")
                    .into_bytes();
            bytes.resize(bytes.len() + length, b'x');
            bytes
        };
        assert!(read(&post(MAX_BODY_BYTES)).is_ok());
        assert!(matches!(
            read(&post(MAX_BODY_BYTES + 1)),
            Err(HttpError::BodyTooLarge)
        ));
    }
    // ANCHOR_END: test_limits

    #[test]
    fn ok_response_bytes() {
        let response = Response::new(200, "OK").with_body("text/plain", "hi\n");
        assert_snapshot!(String::from_utf8(response.to_bytes()).unwrap());
    }

    #[test]
    fn error_response_bytes() {
        let response = HttpError::HeadTooLarge.response();
        assert_snapshot!(String::from_utf8(response.to_bytes()).unwrap());
    }
}
