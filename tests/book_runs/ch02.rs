//! The runs chapter 2 shows: see `book_runs.rs`, and `ch01.rs` for the
//! transcripts of commands.

use super::ch01::{printf_bytes, transcript};
use super::*;

pub const RUNS: Runs = &[
    ("step-02-chromium-handshake.txt", step_02_chromium_handshake),
    ("step-02-browser.log", step_02_browser),
    ("step-02-curl-101.txt", step_02_curl_101),
    ("step-02-refusals.txt", step_02_refusals),
    ("step-02-hasty.txt", step_02_hasty),
    ("step-02-hasty.log", step_02_hasty_log),
];

/// The handshake Chromium 156 sent for `new WebSocket("ws://127.0.0.1:8080/")`
/// (recorded; the key is random, new for every connection).
const CHROMIUM_HANDSHAKE: &str = "GET / HTTP/1.1\r\n\
    Host: 127.0.0.1:8080\r\n\
    Connection: Upgrade\r\n\
    Pragma: no-cache\r\n\
    Cache-Control: no-cache\r\n\
    User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) \
    HeadlessChrome/156.0.0.0 Safari/537.36\r\n\
    Upgrade: websocket\r\n\
    Origin: http://127.0.0.1:8080\r\n\
    Sec-WebSocket-Version: 13\r\n\
    Accept-Encoding: gzip, deflate, br, zstd\r\n\
    Accept-Language: en-US,en;q=0.9\r\n\
    Sec-WebSocket-Key: KYzrFqBPb4reqOZOgPlADA==\r\n\
    Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n";

/// The frame the page sends, `Hello, server!`, with the mask Chromium drew
/// for it once (a browser draws a new one for every frame).
fn hello_frame() -> Vec<u8> {
    let mask = [0x6f, 0x6c, 0xb1, 0x1d];
    let mut frame = vec![0x81, 0x80 | 14];
    frame.extend_from_slice(&mask);
    let payload = b"Hello, server!".iter().enumerate();
    frame.extend(payload.map(|(i, byte)| byte ^ mask[i % 4]));
    frame
}

/// Connects, sends `request`, and reads the answer's head: the `101` and
/// its headers, after which the connection carries frames.
fn handshake(address: SocketAddr, request: &[u8]) -> (ws_tests::Conn, String) {
    let mut stream = ws_tests::connect(address);
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(request).unwrap();
    let head = ws_tests::read_http_head(&mut stream);
    (stream, head)
}

/// Chromium's handshake request, then stage 2's answer to it.
fn step_02_chromium_handshake() -> String {
    let program = Program::start("step-02");
    let (_stream, head) = handshake(program.address, CHROMIUM_HANDSHAKE.as_bytes());
    format!("{CHROMIUM_HANDSHAKE}{head}").replace("\r\n", "\n")
}

/// Chapter 2, "What you should see": the page opened in Chromium. It loads
/// the page, opens its WebSocket, sends one message; the server hangs up
/// (10 seconds later, in the browser; here the client leaves first, which
/// logs the same lines); then the tab's icon is answered.
fn step_02_browser() -> String {
    let run = Run::start("step-02");
    let page = "GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nConnection: keep-alive\r\n\r\n";
    exchange(run.address(), page.as_bytes());
    let (mut socket, _) = handshake(run.address(), CHROMIUM_HANDSHAKE.as_bytes());
    socket.write_all(&hello_frame()).unwrap();
    // Let the server read the frame on its own before the connection ends.
    thread::sleep(Duration::from_millis(200));
    drop(socket);
    let icon =
        "GET /favicon.ico HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nConnection: keep-alive\r\n\r\n";
    exchange(run.address(), icon.as_bytes());
    run.finish()
}

/// The handshake of RFC 6455 with curl: the server's `101`. (curl then
/// waits, until the server hangs up.)
fn step_02_curl_101() -> String {
    let program = Program::start("step-02");
    let request = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: curl/7.88.1\r\n\
                    Accept: */*\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
                    Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    let (_stream, head) = handshake(program.address, request);
    let command = "curl -i -N -H 'Connection: Upgrade' -H 'Upgrade: websocket' \\\n    \
                   -H 'Sec-WebSocket-Version: 13' -H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==' \\\n    \
                   http://127.0.0.1:8080/";
    transcript(command, &head.replace("\r\n", "\n"))
}

/// Two refusals: no `upgrade` in `Connection`, and a version we do not speak.
fn step_02_refusals() -> String {
    let program = Program::start("step-02");
    let cases = [("close", "13"), ("Upgrade", "8")];
    cases
        .iter()
        .map(|(connection, version)| {
            let request = format!(
                "GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: curl/7.88.1\r\n\
                 Accept: */*\r\nConnection: {connection}\r\nUpgrade: websocket\r\n\
                 Sec-WebSocket-Version: {version}\r\n\
                 Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
            );
            let command = format!(
                "curl -si -H 'Connection: {connection}' -H 'Upgrade: websocket' \\\n    \
                 -H 'Sec-WebSocket-Version: {version}' -H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==' \\\n    \
                 http://127.0.0.1:8080/"
            );
            let response = exchange(program.address, request.as_bytes());
            transcript(&command, &response.replace("\r\n", "\n"))
        })
        .collect()
}

/// The handshake and a frame in one write, by hand.
const HASTY: &str = r#"bash -c 'exec 3<>/dev/tcp/127.0.0.1/8080; printf "GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58" >&3; cat <&3'"#;

/// What the hasty client gets back: the `101`, and nothing after it.
fn step_02_hasty() -> String {
    let program = Program::start("step-02");
    // The server hangs up 10 seconds later; this client does not wait.
    let (_stream, head) = handshake(program.address, &printf_bytes(HASTY));
    transcript(HASTY, &head.replace("\r\n", "\n"))
}

/// What the server logs for it: the frame, shown from the bytes that came
/// in with the request.
fn step_02_hasty_log() -> String {
    let run = Run::start("step-02");
    let (socket, _) = handshake(run.address(), &printf_bytes(HASTY));
    thread::sleep(Duration::from_millis(200));
    drop(socket);
    run.finish()
}
