//! The runs chapter 8 shows: see `book_runs.rs`, and `ch01.rs` for the
//! transcripts of commands.

use super::ch01::transcript;
use super::*;
use std::net::Shutdown;
use std::sync::OnceLock;

pub const RUNS: Runs = &[
    ("step-08-help.txt", step_08_help),
    ("step-08-heartbeat.log", step_08_heartbeat),
    ("step-08-heartbeat.frames", step_08_heartbeat_frames),
    ("step-08-origin.txt", step_08_origin),
    ("step-08-origin.log", step_08_origin_log),
    ("step-08-flood.log", step_08_flood),
    ("step-08-flood.frames", step_08_flood_frames),
    ("step-08-shutdown.log", step_08_shutdown),
    ("step-08-shutdown.frames", step_08_shutdown_frames),
    ("step-08-full.txt", step_08_full),
];

/// `SIGINT`, what Ctrl-C sends: 2 on every system.
const SIGINT: i32 = 2;

/// What each client sent (`->`) and received (`<-`), in the order the run
/// did it, one line each (as in chapter 5's runs, with pings and pongs).
#[derive(Default)]
struct Frames(Vec<String>);

impl Frames {
    fn sends(&mut self, who: &str, stream: &mut ws_tests::Conn, text: &str) {
        self.0.push(format!("{who} -> {text}"));
        send_text(stream, text);
    }

    fn pongs(&mut self, who: &str, stream: &mut ws_tests::Conn) {
        self.0.push(format!("{who} -> pong \"\""));
        send_frame(stream, true, 0xA, b"");
    }

    fn closes(&mut self, who: &str, stream: &mut ws_tests::Conn, code: u16) {
        self.0.push(format!("{who} -> close {code} \"\""));
        stream
            .write_all(&client_frame(true, 0x8, &code.to_be_bytes()))
            .unwrap();
    }

    /// Reads one frame, and returns its opcode.
    fn receives(&mut self, who: &str, stream: &mut ws_tests::Conn) -> u8 {
        let frame = read_frame(stream);
        let line = match frame.opcode {
            0x1 => String::from_utf8(frame.payload).unwrap(),
            0x8 => format!(
                "close {} {:?}",
                frame.close_code().unwrap_or_default(),
                frame.close_reason()
            ),
            0x9 => format!("ping {:?}", String::from_utf8_lossy(&frame.payload)),
            other => format!("a frame with opcode {other}"),
        };
        self.0.push(format!("{who} <- {line}"));
        frame.opcode
    }

    fn text(&self) -> String {
        self.0.join("\n") + "\n"
    }
}

/// Chapter 8, "Every value a flag": what `--help` prints.
fn step_08_help() -> String {
    let output = std::process::Command::new(ws_tests::program::binary("step-08"))
        .arg("--help")
        .output()
        .expect("run step-08 --help");
    assert!(output.status.success(), "--help exits with 0");
    transcript(
        "cargo run -p step-08 -- --help",
        &String::from_utf8(output.stdout).unwrap(),
    )
}

/// Chapter 8, "Is anyone there?": with a ping after a second of silence
/// and a second more to answer it, bob's network vanishes (he reads and
/// answers nothing), while alice, half a second behind him, answers her
/// ping as a browser does. Bob is let go two seconds after his last word,
/// and alice hears that he left. The figure in the log is a measured time:
/// on a machine too busy to wake the loop within 50 ms of the deadline it
/// could say 2.1 s, and the run is made again.
fn heartbeat() -> &'static (String, String) {
    static RUN: OnceLock<(String, String)> = OnceLock::new();
    RUN.get_or_init(|| {
        for _ in 0..3 {
            let made = heartbeat_once();
            if made.0.contains("sent nothing for 2.0 s") {
                return made;
            }
        }
        panic!("the loop never woke within 50 ms of the heartbeat's deadline");
    })
}

fn heartbeat_once() -> (String, String) {
    let mut run = Run::start_with("step-08", &["--ping-interval", "1", "--idle-timeout", "1"]);
    let mut frames = Frames::default();
    let mut bob = ws_handshake(run.address());
    frames.sends("bob", &mut bob, r#"{"type":"join","name":"bob"}"#);
    frames.receives("bob", &mut bob);
    thread::sleep(Duration::from_millis(500));
    let mut alice = ws_handshake(run.address());
    frames.sends("alice", &mut alice, r#"{"type":"join","name":"alice"}"#);
    frames.receives("alice", &mut alice);
    frames.receives("bob", &mut bob);
    // From now on bob is a laptop whose network is gone: nothing more is
    // read from his socket, and nothing sent. His ping comes after a
    // second; alice's half a second later.
    assert_eq!(frames.receives("alice", &mut alice), 0x9);
    frames.pongs("alice", &mut alice);
    frames.receives("alice", &mut alice);
    run.wait_for("\"bob\" left");
    drop(bob);
    frames.closes("alice", &mut alice, 1001);
    frames.receives("alice", &mut alice);
    drop(alice);
    (run.finish(), frames.text())
}

fn step_08_heartbeat() -> String {
    heartbeat().0.clone()
}

fn step_08_heartbeat_frames() -> String {
    heartbeat().1.clone()
}

/// An upgrade request as curl sends it, from a page of `origin`.
fn curl_upgrade(origin: &str) -> String {
    format!(
        "GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\
         Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin: {origin}\r\n\r\n"
    )
}

/// The command of [`curl_upgrade`].
fn curl_upgrade_command(origin: &str) -> String {
    format!(
        "curl -si -H 'Connection: Upgrade' -H 'Upgrade: websocket' \\\n    \
         -H 'Sec-WebSocket-Version: 13' -H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==' \\\n    \
         -H 'Origin: {origin}' http://127.0.0.1:8080/"
    )
}

/// Chapter 8, "Who may connect?": a page of another site asks for a
/// WebSocket, and gets a 403.
fn step_08_origin() -> String {
    let program = Program::start("step-08");
    let origin = "http://evil.example";
    let response = exchange(program.address, curl_upgrade(origin).as_bytes());
    transcript(
        &curl_upgrade_command(origin),
        &response.replace("\r\n", "\n"),
    )
}

/// The server's side of it, after a page of its own that connects.
fn step_08_origin_log() -> String {
    let run = Run::start("step-08");
    let own = format!(
        "GET / HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Origin: http://{}\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n\r\n",
        run.address(),
        run.address()
    );
    let mut page = ws_tests::connect(run.address());
    page.write_all(own.as_bytes()).unwrap();
    ws_tests::read_http_head(&mut page);
    page.write_all(&client_frame(true, 0x8, &1001u16.to_be_bytes()))
        .unwrap();
    read_frame(&mut page);
    drop(page);
    exchange(
        run.address(),
        curl_upgrade("http://evil.example").as_bytes(),
    );
    run.finish()
}

/// Chapter 8, "How much is too much?": with room for one connection, a
/// WebSocket holds it, and the next comer is told 503.
fn step_08_full() -> String {
    let run = Run::start_with("step-08", &["--max-connections", "1"]);
    let _tab = ws_handshake(run.address());
    let request = "GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: curl/7.88.1\r\n\
                   Accept: */*\r\n\r\n";
    let response = exchange(run.address(), request.as_bytes());
    transcript(
        "curl -si http://127.0.0.1:8080/",
        &response.replace("\r\n", "\n"),
    )
}

/// Chapter 8, "How much is too much?": at most 3 messages a second, and
/// alice sends 7 at once after her join. The join and two go through, the
/// next three are refused, the sixth closes her connection, and the
/// seventh is dropped unread.
fn flood() -> &'static (String, String) {
    static RUN: OnceLock<(String, String)> = OnceLock::new();
    RUN.get_or_init(|| {
        let mut run = Run::start_with("step-08", &["--max-messages-per-second", "3"]);
        let mut frames = Frames::default();
        let mut alice = ws_handshake(run.address());
        frames.sends("alice", &mut alice, r#"{"type":"join","name":"alice"}"#);
        frames.receives("alice", &mut alice);
        let mut burst = Vec::new();
        for n in 1..=7 {
            let text = format!(r#"{{"type":"message","text":"{n}"}}"#);
            frames.0.push(format!("alice -> {text}"));
            burst.extend(client_frame(true, 0x1, text.as_bytes()));
        }
        // All seven in one write: they arrive, and are read, together.
        alice.write_all(&burst).unwrap();
        while frames.receives("alice", &mut alice) != 0x8 {}
        frames.closes("alice", &mut alice, 1008);
        alice.shutdown(Shutdown::Write).unwrap();
        run.wait_for("disconnected");
        (run.finish(), frames.text())
    })
}

fn step_08_flood() -> String {
    flood().0.clone()
}

fn step_08_flood_frames() -> String {
    flood().1.clone()
}

/// Chapter 8, "Stopping without dropping anyone": alice and bob are in the
/// chat, a third client has sent half its request, and alice says
/// something just before Ctrl-C. Her message reaches bob, then each gets
/// close 1001 and answers it, the half request gets 503, and the program
/// exits with 0.
fn shutdown() -> &'static (String, String) {
    static RUN: OnceLock<(String, String)> = OnceLock::new();
    RUN.get_or_init(|| {
        let mut run = Run::start("step-08");
        let mut frames = Frames::default();
        let mut alice = ws_handshake(run.address());
        frames.sends("alice", &mut alice, r#"{"type":"join","name":"alice"}"#);
        frames.receives("alice", &mut alice);
        let mut bob = ws_handshake(run.address());
        frames.sends("bob", &mut bob, r#"{"type":"join","name":"bob"}"#);
        frames.receives("bob", &mut bob);
        frames.receives("alice", &mut alice);
        let mut slow = ws_tests::connect(run.address());
        slow.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n")
            .unwrap();
        run.wait_for("joined as \"bob\"");
        run.wait_for(": connected");
        frames.sends("alice", &mut alice, r#"{"type":"message","text":"Bye!"}"#);
        run.signal(SIGINT);
        frames.receives("alice", &mut alice);
        frames.receives("bob", &mut bob);
        frames.receives("alice", &mut alice);
        frames.receives("bob", &mut bob);
        frames.closes("alice", &mut alice, 1001);
        frames.closes("bob", &mut bob, 1001);
        let answer = ws_tests::read_response(&mut slow);
        assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
        // One at a time, so that the log says them in this order.
        for client in [slow, alice, bob] {
            drop(client);
            run.wait_for(": disconnected");
        }
        let status = run.program.child.wait().unwrap();
        assert_eq!(status.code(), Some(0), "a graceful shutdown exits with 0");
        (run.finish(), frames.text())
    })
}

fn step_08_shutdown() -> String {
    shutdown().0.clone()
}

fn step_08_shutdown_frames() -> String {
    shutdown().1.clone()
}

/// The hand-made clients of "Try it": one that reads and answers nothing,
/// and one that neither reads nor writes.
const SILENT_READER: &str = r#"bash -c 'exec 3<>/dev/tcp/127.0.0.1/8080; printf "GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n" >&3; cat <&3' | od -c"#;
const SILENT: &str = r#"bash -c 'exec 3<>/dev/tcp/127.0.0.1/8080; printf "GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n" >&3; sleep 30'"#;

#[test]
fn the_hand_made_clients_are_on_the_page_and_get_pinged() {
    let page = fs::read_to_string(book_src().join("ch08-production/try-it.md")).unwrap();
    for command in [SILENT_READER, SILENT] {
        assert!(
            page.contains(&format!("$ {command}\n")),
            "try-it.md should show: {command}"
        );
    }
    let run = Run::start_with("step-08", &["--ping-interval", "0.2"]);
    let mut client = ws_tests::connect(run.address());
    client
        .write_all(&super::ch01::printf_bytes(SILENT_READER))
        .unwrap();
    ws_tests::check_101(&ws_tests::read_http_head(&mut client));
    let ping = read_frame(&mut client);
    assert_eq!((ping.opcode, ping.payload.len()), (0x9, 0), "an empty ping");
}
