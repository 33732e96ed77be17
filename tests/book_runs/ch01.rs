//! The runs chapter 1 shows: see `book_runs.rs`.
//!
//! Besides the server's log, chapter 1 shows what a client gets back for
//! the commands of its "Try it" sections. Those transcripts are made here
//! too: the command line as the reader types it, then the answer the real
//! program gives to the bytes that command sends. For a `bash` command,
//! the bytes are read from the command's own `printf`, so the two cannot
//! drift apart; for `curl`, they are the bytes curl 7.88.1 sends (captured
//! once; only the `User-Agent` differs with another version of curl).

use super::*;

pub const RUNS: Runs = &[
    ("step-01-two-posts.log", step_01_two_posts),
    ("step-01-curl-post.txt", step_01_curl_post),
    ("step-01-curl-post-cat-v.txt", step_01_curl_post_cat_v),
    ("step-01-chromium.txt", step_01_chromium),
    ("step-01-chromium.log", step_01_chromium_log),
    ("step-01-curl-si.txt", step_01_curl_si),
    ("step-01-by-hand.txt", step_01_by_hand),
    ("step-01-refusals.txt", step_01_refusals),
    ("step-01-limits.txt", step_01_limits),
    ("step-01-header-case.txt", step_01_header_case),
    ("step-01-slow-client.log", step_01_slow_client),
    ("step-01-escaped.log", step_01_escaped),
];

/// What `curl -s -d hello http://127.0.0.1:8080/x` sends.
const CURL_POST: &[u8] = b"POST /x HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: curl/7.88.1\r\n\
    Accept: */*\r\nContent-Length: 5\r\n\
    Content-Type: application/x-www-form-urlencoded\r\n\r\nhello";

/// What Chromium 156 sent for <http://127.0.0.1:8080/hello> (recorded).
const CHROMIUM_GET: &str = "GET /hello HTTP/1.1\r\n\
    Host: 127.0.0.1:8080\r\n\
    Connection: keep-alive\r\n\
    sec-ch-ua: \"Not:A-Brand\";v=\"8\", \"Chromium\";v=\"156\"\r\n\
    sec-ch-ua-mobile: ?0\r\n\
    sec-ch-ua-platform: \"Linux\"\r\n\
    Upgrade-Insecure-Requests: 1\r\n\
    User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) \
    HeadlessChrome/156.0.0.0 Safari/537.36\r\n\
    Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/jxl,image/avif,\
    image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7\r\n\
    Sec-Fetch-Site: none\r\n\
    Sec-Fetch-Mode: navigate\r\n\
    Sec-Fetch-User: ?1\r\n\
    Sec-Fetch-Dest: document\r\n\
    Accept-Encoding: gzip, deflate, br, zstd\r\n\
    Accept-Language: en-US,en;q=0.9\r\n\r\n";

/// The bytes a `bash -c '... printf "FORMAT" >&3 ...'` command sends: its
/// format string, with the escapes the book's commands use (`\r`, `\n`,
/// `\xHH`) turned into the bytes `printf` writes for them.
pub fn printf_bytes(command: &str) -> Vec<u8> {
    let start = command.find("printf \"").expect("a printf command") + "printf \"".len();
    let format = &command[start..];
    let format = &format[..format.find('"').expect("the end of the format")];
    let mut bytes = Vec::new();
    let mut chars = format.chars();
    while let Some(char) = chars.next() {
        if char != '\\' {
            let mut utf8 = [0; 4];
            bytes.extend_from_slice(char.encode_utf8(&mut utf8).as_bytes());
            continue;
        }
        match chars.next() {
            Some('r') => bytes.push(b'\r'),
            Some('n') => bytes.push(b'\n'),
            Some('x') => {
                let hex: String = chars.by_ref().take(2).collect();
                bytes.push(u8::from_str_radix(&hex, 16).expect("two hex digits"));
            }
            other => panic!("printf escape \\{other:?} is not handled here"),
        }
    }
    bytes
}

/// `$ COMMAND`, then what the command prints.
pub fn transcript(command: &str, output: &str) -> String {
    format!("$ {command}\n{output}")
}

/// What the command prints: the server's whole answer to the bytes of its
/// `printf`, as `cat <&3` shows it.
pub fn by_hand(address: SocketAddr, command: &str) -> String {
    transcript(command, &exchange(address, &printf_bytes(command)))
}

/// The body of an HTTP response: what `curl -s` prints.
fn body(response: &str) -> &str {
    response.split_once("\r\n\r\n").map_or("", |(_, body)| body)
}

/// Chapter 1, "What you should see": two `curl -d hello` requests.
fn step_01_two_posts() -> String {
    let run = Run::start("step-01");
    for _ in 0..2 {
        exchange(run.address(), CURL_POST);
    }
    run.finish()
}

/// The request as curl's user sees it: `curl -s` prints the body, which
/// is the request echoed.
fn step_01_curl_post() -> String {
    let program = Program::start("step-01");
    let response = exchange(program.address, CURL_POST);
    transcript(
        "curl -s -d hello http://127.0.0.1:8080/x",
        &body(&response).replace("\r\n", "\n"),
    )
}

/// The same, through `cat -v`, which shows each carriage return as `^M`.
fn step_01_curl_post_cat_v() -> String {
    let program = Program::start("step-01");
    let response = exchange(program.address, CURL_POST);
    transcript(
        "curl -s -d hello http://127.0.0.1:8080/x | cat -v",
        &body(&response).replace('\r', "^M"),
    )
}

/// What the page at /hello shows in Chromium: the request it sent.
fn step_01_chromium() -> String {
    let program = Program::start("step-01");
    let response = exchange(program.address, CHROMIUM_GET.as_bytes());
    body(&response).replace("\r\n", "\n")
}

/// The server's side of it: the page, then the spare connection that
/// Chromium opened in advance and closed unused.
fn step_01_chromium_log() -> String {
    let run = Run::start("step-01");
    exchange(run.address(), CHROMIUM_GET.as_bytes());
    drop(TcpStream::connect(run.address()).unwrap());
    run.finish()
}

/// `curl -si`: the status line and headers too.
fn step_01_curl_si() -> String {
    let program = Program::start("step-01");
    let request = b"GET /hello HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: curl/7.88.1\r\n\
                    Accept: */*\r\n\r\n";
    let response = exchange(program.address, request);
    transcript(
        "curl -si http://127.0.0.1:8080/hello",
        &response.replace("\r\n", "\n"),
    )
}

/// A request typed by hand, with bash's `/dev/tcp`.
fn step_01_by_hand() -> String {
    let program = Program::start("step-01");
    by_hand(
        program.address,
        r#"bash -c 'exec 3<>/dev/tcp/127.0.0.1/8080; printf "GET /by-hand HTTP/1.1\r\nHost: me\r\n\r\n" >&3; cat <&3'"#,
    )
    .replace("\r\n", "\n")
}

/// Three requests the server refuses, each with its reason.
fn step_01_refusals() -> String {
    let program = Program::start("step-01");
    let commands = [
        r#"bash -c 'exec 3<>/dev/tcp/127.0.0.1/8080; printf "GET / HTTP/1.1\r\n\r\n" >&3; cat <&3'"#,
        r#"bash -c 'exec 3<>/dev/tcp/127.0.0.1/8080; printf "POST / HTTP/1.1\r\nHost: me\r\nContent-Length: 0\r\nContent-Length: 5\r\n\r\nhello" >&3; cat <&3'"#,
        r#"bash -c 'exec 3<>/dev/tcp/127.0.0.1/8080; printf "hello there\r\n\r\n" >&3; cat <&3'"#,
    ];
    commands
        .iter()
        .map(|command| by_hand(program.address, command).replace("\r\n", "\n"))
        .collect()
}

/// Each limit broken in turn, with curl, which prints the body of the answer.
fn step_01_limits() -> String {
    let program = Program::start("step-01");
    let curl_head = "Host: 127.0.0.1:8080\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n";
    let big_header = format!(
        "GET / HTTP/1.1\r\n{curl_head}X-Big: {}\r\n\r\n",
        "a".repeat(9000)
    );
    // curl sends 70,000 bytes of body; the answer is decided from the head
    // alone, so the run sends the head only.
    let big_body = format!(
        "POST / HTTP/1.1\r\n{curl_head}Content-Length: 70000\r\n\
         Content-Type: application/x-www-form-urlencoded\r\n\r\n"
    );
    let chunked = format!(
        "POST /x HTTP/1.1\r\n{curl_head}Transfer-Encoding: chunked\r\n\
         Content-Type: application/x-www-form-urlencoded\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
    );
    let cases = [
        (
            r#"curl -s -H "X-Big: $(head -c 9000 /dev/zero | tr '\0' a)" http://127.0.0.1:8080/"#,
            big_header,
        ),
        (
            "head -c 70000 /dev/zero | curl -s --data-binary @- http://127.0.0.1:8080/",
            big_body,
        ),
        (
            "curl -s -H 'Transfer-Encoding: chunked' -d hello http://127.0.0.1:8080/x",
            chunked,
        ),
    ];
    cases
        .iter()
        .map(|(command, request)| {
            let response = exchange(program.address, request.as_bytes());
            transcript(command, body(&response))
        })
        .collect()
}

/// A header name spelled another way: curl sends the client's
/// `content-LENGTH` instead of its own `Content-Length`.
fn step_01_header_case() -> String {
    let program = Program::start("step-01");
    let request = b"POST /c HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: curl/7.88.1\r\n\
                    Accept: */*\r\ncontent-LENGTH: 2\r\n\
                    Content-Type: application/x-www-form-urlencoded\r\n\r\nhi";
    let response = exchange(program.address, request);
    transcript(
        "curl -s -H 'content-LENGTH: 2' -d hi http://127.0.0.1:8080/c",
        &body(&response).replace("\r\n", "\n"),
    )
}

/// The commands of "Try it" whose output is the server's log rather than
/// a transcript: the page shows them as they are here (checked below).
const SLOW_CLIENT: &str =
    r#"bash -c 'exec 3<>/dev/tcp/127.0.0.1/8080; printf "GET / HTTP/1.1\r\n" >&3; time cat <&3'"#;
const ESCAPE_CODE: &str = r#"bash -c 'exec 3<>/dev/tcp/127.0.0.1/8080; printf "GET /\x1b[31mred HTTP/1.1\r\nHost: me\r\n\r\n" >&3; cat <&3 >/dev/null'"#;

/// Half a request, then silence; and curl, queued behind it, waits too.
fn step_01_slow_client() -> String {
    let run = Run::start("step-01");
    let address = run.address();
    let mut slow = TcpStream::connect(address).unwrap();
    slow.write_all(&printf_bytes(SLOW_CLIENT)).unwrap();
    // Let the server take the slow client first.
    thread::sleep(Duration::from_millis(200));
    let curl = thread::spawn(move || exchange(address, CURL_POST));
    curl.join().unwrap();
    drop(slow);
    run.finish()
}

/// A request target with an escape code in it, as the log shows it.
fn step_01_escaped() -> String {
    let run = Run::start("step-01");
    exchange(run.address(), &printf_bytes(ESCAPE_CODE));
    run.finish()
}

#[test]
fn the_commands_behind_the_logs_are_on_the_page() {
    let page = fs::read_to_string(book_src().join("ch01-http-echo/try-it.md")).unwrap();
    for command in [SLOW_CLIENT, ESCAPE_CODE] {
        assert!(
            page.contains(&format!("$ {command}\n")),
            "try-it.md should show: {command}"
        );
    }
}

#[test]
fn printf_escapes_are_the_bytes_printf_writes() {
    let command = r#"bash -c 'exec 3<>/dev/tcp/127.0.0.1/8080; printf "A\r\n\x81\x1b[" >&3'"#;
    assert_eq!(printf_bytes(command), b"A\r\n\x81\x1b[");
}
