//! The runs chapter 5 shows: see `book_runs.rs`.

use super::*;
use std::sync::OnceLock;

pub const RUNS: Runs = &[
    ("step-05-two-users.log", step_05_two_users),
    ("step-05-two-users.frames", step_05_two_users_frames),
    ("step-05-node.transcript", step_05_node),
    ("step-05-console.transcript", step_05_console),
];

/// What each client sent (`->`) and received (`<-`), in the order the run
/// did it, one line each.
#[derive(Default)]
struct Transcript(Vec<String>);

impl Transcript {
    fn sends(&mut self, who: &str, stream: &mut ws_tests::Conn, text: &str) {
        self.0.push(format!("{who} -> {}", shortened(text)));
        send_text(stream, text);
    }

    fn receives(&mut self, who: &str, stream: &mut ws_tests::Conn) {
        let frame = read_frame(stream);
        let line = match frame.opcode {
            0x1 => shortened(&String::from_utf8(frame.payload).unwrap()),
            0x8 => format!(
                "close {} {:?}",
                frame.close_code().unwrap_or_default(),
                frame.close_reason()
            ),
            other => format!("a frame with opcode {other}"),
        };
        self.0.push(format!("{who} <- {line}"));
    }

    fn text(&self) -> String {
        self.0.join("\n") + "\n"
    }
}

/// A text as the transcript shows it: whole up to 100 characters, cut after
/// 40 with its length in bytes beyond that.
fn shortened(text: &str) -> String {
    if text.chars().count() <= 100 {
        return text.to_string();
    }
    let start: String = text.chars().take(40).collect();
    format!("{start}... ({} bytes)", text.len())
}

/// A close frame with a status code, as a browser sends when a tab closes
/// (1001, going away) or a script calls `ws.close(code)`.
fn close_with_code(stream: &mut ws_tests::Conn, code: u16) {
    stream
        .write_all(&client_frame(true, 0x8, &code.to_be_bytes()))
        .unwrap();
}

/// Lets the server's loop see what just happened (a connection that ended)
/// before the next client does something, so that the log's order is the
/// same on every run: in one turn, the loop reads clients in the order they
/// came, not in the order they acted.
fn settle() {
    thread::sleep(Duration::from_millis(100));
}

/// A tab loading the page: `GET /`, answered, and the connection closed.
fn load_page(run: &Run) {
    let request = "GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nAccept: text/html\r\n\r\n";
    exchange(run.address(), request.as_bytes());
    settle();
}

/// Chapter 5, "What you should see": two tabs load the page and join,
/// alice first; bob first asks for the name "Alice", which is taken; they
/// say one line each; bob closes his tab, then alice hers. The server's log
/// and the frames come from the same run.
fn two_users() -> &'static (String, String) {
    static RESULT: OnceLock<(String, String)> = OnceLock::new();
    RESULT.get_or_init(|| {
        let run = Run::start("step-05");
        let mut frames = Transcript::default();
        load_page(&run);
        let mut alice = ws_handshake(run.address());
        frames.sends("alice", &mut alice, r#"{"type":"join","name":"alice"}"#);
        frames.receives("alice", &mut alice);
        load_page(&run);
        let mut bob = ws_handshake(run.address());
        frames.sends("bob", &mut bob, r#"{"type":"join","name":"Alice"}"#);
        frames.receives("bob", &mut bob);
        frames.sends("bob", &mut bob, r#"{"type":"join","name":"bob"}"#);
        frames.receives("bob", &mut bob);
        frames.receives("alice", &mut alice);
        frames.sends(
            "alice",
            &mut alice,
            r#"{"type":"message","text":"Hi bob!"}"#,
        );
        frames.receives("alice", &mut alice);
        frames.receives("bob", &mut bob);
        let hello = r#"{"type":"message","text":"Hello alice \"<b>not bold</b>\" 😀"}"#;
        frames.sends("bob", &mut bob, hello);
        frames.receives("alice", &mut alice);
        frames.receives("bob", &mut bob);
        // Bob closes his tab: the browser sends a close frame with 1001.
        close_with_code(&mut bob, 1001);
        frames.0.push("bob -> close 1001 \"\"".to_string());
        frames.receives("bob", &mut bob);
        drop(bob);
        frames.receives("alice", &mut alice);
        settle();
        close_with_code(&mut alice, 1001);
        frames.0.push("alice -> close 1001 \"\"".to_string());
        frames.receives("alice", &mut alice);
        drop(alice);
        (run.finish(), frames.text())
    })
}

fn step_05_two_users() -> String {
    two_users().0.clone()
}

fn step_05_two_users_frames() -> String {
    two_users().1.clone()
}

/// Chapter 5, "Try it": what the Node.js script there sends and receives.
/// Bob talks before he has joined, asks for ann's name in capitals, joins
/// with spaces around his own, and sends a key twice; ann adds a field the
/// server does not know.
fn step_05_node() -> String {
    let run = Run::start("step-05");
    let mut talk = Transcript::default();
    let mut ann = ws_handshake(run.address());
    let mut bob = ws_handshake(run.address());
    talk.sends("ann", &mut ann, r#"{"type":"join","name":"ann"}"#);
    talk.receives("ann", &mut ann);
    talk.sends("bob", &mut bob, r#"{"type":"message","text":"me first"}"#);
    talk.receives("bob", &mut bob);
    talk.sends("bob", &mut bob, r#"{"type":"join","name":"ANN"}"#);
    talk.receives("bob", &mut bob);
    talk.sends("bob", &mut bob, r#"{"type":"join","name":"  bob  "}"#);
    talk.receives("ann", &mut ann);
    talk.receives("bob", &mut bob);
    let happy = r#"{"type":"message","text":"hi bob 😀","mood":"happy"}"#;
    talk.sends("ann", &mut ann, happy);
    talk.receives("ann", &mut ann);
    talk.receives("bob", &mut bob);
    let twice = r#"{"type":"message","text":"hi","text":"bye"}"#;
    talk.sends("bob", &mut bob, twice);
    talk.receives("bob", &mut bob);
    // `ws.close()` without a code: an empty close frame.
    bob.write_all(&client_frame(true, 0x8, b"")).unwrap();
    read_frame(&mut bob);
    drop(bob);
    talk.receives("ann", &mut ann);
    talk.text()
}

/// Chapter 5, "Try it": a client typed into the browser's console, with
/// alice joined in another tab.
fn step_05_console() -> String {
    let run = Run::start("step-05");
    let mut talk = Transcript::default();
    let mut alice = ws_handshake(run.address());
    send_text(&mut alice, r#"{"type":"join","name":"alice"}"#);
    read_text(&mut alice);
    let mut console = ws_handshake(run.address());
    talk.sends(
        "console",
        &mut console,
        r#"{"type":"join","name":"console"}"#,
    );
    talk.receives("console", &mut console);
    talk.receives("alice", &mut alice);
    let hello = r#"{"type":"message","text":"hello from the console"}"#;
    talk.sends("console", &mut console, hello);
    talk.receives("alice", &mut alice);
    talk.receives("console", &mut console);
    talk.sends("console", &mut console, "not JSON");
    talk.receives("console", &mut console);
    talk.sends("console", &mut console, &"[".repeat(10_000));
    talk.receives("console", &mut console);
    let long = format!(r#"{{"type":"message","text":"{}"}}"#, "x".repeat(70_000));
    talk.sends("console", &mut console, &long);
    talk.receives("console", &mut console);
    talk.receives("alice", &mut alice);
    talk.text()
}
