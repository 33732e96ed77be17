//! The runs chapter 4 shows: see `book_runs.rs`.
//!
//! The clients of a run act one after another, and where the next one must
//! not act before the server has logged what the last one did (a client
//! that hangs up is logged a turn later, say), the run waits for that line
//! of the log: the order of the lines is the same on every run.

use super::*;
use ws_tests::{Conn, Transcript, check_101, close_with, connect, read_http_head};

pub const RUNS: Runs = &[
    ("step-03-a-quiet-client.log", step_03_a_quiet_client),
    ("step-04-a-quiet-client.log", step_04_a_quiet_client),
    ("step-04-three-clients.log", step_04_three_clients),
    ("step-04-a-trickling-client.log", step_04_a_trickling_client),
    ("step-04-a-broken-rule.log", step_04_a_broken_rule_log),
    (
        "step-04-a-broken-rule-client.txt",
        step_04_a_broken_rule_client,
    ),
    ("step-04-clients-vanishing.log", step_04_clients_vanishing),
    ("step-04-two-tabs.log", step_04_two_tabs),
];

/// The address the program sees a client at, as its log writes it.
fn peer(stream: &Conn) -> String {
    stream.local_addr().unwrap().to_string()
}

/// The chapter's first page: a client opens a WebSocket and says nothing
/// for a while; a second client asks for one meanwhile. Then the first one
/// speaks, and leaves.
fn a_quiet_client(stage: &str) -> String {
    let mut run = Run::start(stage);
    let mut first = ws_handshake(run.address());
    let mut second = connect(run.address());
    second
        .write_all(ws_tests::upgrade_request(run.address()).as_bytes())
        .unwrap();
    thread::sleep(Duration::from_millis(300));
    if stage != "step-03" {
        // A stage that serves everyone at once has answered by now.
        let handshake = format!(
            "{}: handshake done; from now on it speaks WebSocket",
            peer(&second)
        );
        run.wait_for(&handshake);
    }
    send_text(&mut first, "anyone there?");
    read_text(&mut first);
    close_with(&mut first, 1000);
    // Stage 3 answers the second client only now.
    check_101(&read_http_head(&mut second));
    let log = run.finish();
    drop(second);
    log
}

fn step_03_a_quiet_client() -> String {
    a_quiet_client("step-03")
}

fn step_04_a_quiet_client() -> String {
    a_quiet_client("step-04")
}

/// "One turn of the loop": the server's side of the test
/// `three_clients_chat`. Three clients chat; the third closes; the other
/// two go on.
fn step_04_three_clients() -> String {
    let mut run = Run::start("step-04");
    let mut clients: Vec<Conn> = (0..3).map(|_| ws_handshake(run.address())).collect();
    let say = |clients: &mut [Conn], from: usize, text: &str| {
        send_text(&mut clients[from], text);
        for client in clients.iter_mut() {
            read_text(client);
        }
    };
    say(&mut clients, 0, "hi all");
    say(&mut clients, 1, "hi ann");
    say(&mut clients, 2, "bye!");
    let mut cat = clients.pop().unwrap();
    close_with(&mut cat, 1000);
    run.wait_for(&format!("{}: disconnected", peer(&cat)));
    say(&mut clients, 0, "just us now");
    run.finish()
}

/// "Nonblocking sockets": a client sends its request and a frame one byte
/// at a time, while another chats. The chatty one is answered at once, all
/// along; the slow one is answered when its last byte is in.
fn step_04_a_trickling_client() -> String {
    let mut run = Run::start("step-04");
    let mut chatty = ws_handshake(run.address());
    let mut slow = connect(run.address());
    slow.set_nodelay(true).unwrap();
    run.wait_for(&format!("{}: connected", peer(&slow)));
    let request = ws_tests::upgrade_request(run.address()).into_bytes();
    let frame = client_frame(true, 0x1, b"Hello");
    let mut said = 0;
    let mut chat = |chatty: &mut Conn| {
        said += 1;
        send_text(chatty, &format!("still there? ({said})"));
        read_text(chatty);
    };
    for (i, byte) in request.iter().enumerate() {
        slow.write_all(&[*byte]).unwrap();
        if i % 50 == 25 {
            chat(&mut chatty);
        }
        thread::sleep(Duration::from_millis(2));
    }
    run.wait_for("handshake done; from now on it speaks WebSocket");
    check_101(&read_http_head(&mut slow));
    for (i, byte) in frame.iter().enumerate() {
        slow.write_all(&[*byte]).unwrap();
        if i == 4 {
            chat(&mut chatty);
        }
        thread::sleep(Duration::from_millis(2));
    }
    read_text(&mut chatty);
    let log = run.finish();
    drop(slow);
    log
}

/// "The last word": a client sends a good message, a frame that breaks a
/// rule, and a ping, in one write; another client chats on. Returns the
/// server's log and the rule breaker's side of the conversation.
fn a_broken_rule() -> (String, String) {
    let mut run = Run::start("step-04");
    let mut good = ws_handshake(run.address());
    let mut conversation = Transcript::new();
    let mut bad = conversation.open("client", run.address());
    let mut bytes = client_frame(true, 0x1, b"one good message");
    bytes.extend(ws_tests::client_frame_raw(0x80 | 0x40 | 0x1, b"RSV1 set"));
    bytes.extend(client_frame(true, 0x9, b""));
    conversation.send_raw(
        "client",
        &mut bad,
        "Text \"one good message\", Text with RSV1 set, Ping (in one write)",
        &bytes,
    );
    read_text(&mut good);
    conversation.receive("client", &mut bad);
    conversation.receive("client", &mut bad);
    conversation.send("client", &mut bad, true, 0x8, &1002u16.to_be_bytes());
    conversation.expect_end_of_stream("client", &mut bad);
    run.wait_for(&format!("{}: disconnected", peer(&bad)));
    send_text(&mut good, "fine here");
    read_text(&mut good);
    (run.finish(), conversation.text() + "\n")
}

fn step_04_a_broken_rule_log() -> String {
    a_broken_rule().0
}

fn step_04_a_broken_rule_client() -> String {
    a_broken_rule().1
}

/// "One client, from first byte to last": clients that leave halfway
/// through a frame, or a request; the one who stays chats on.
fn step_04_clients_vanishing() -> String {
    let mut run = Run::start("step-04");
    let mut stayer = ws_handshake(run.address());
    let mut leaver = ws_handshake(run.address());
    leaver
        .write_all(&client_frame(true, 0x1, b"never finished")[..6])
        .unwrap();
    let gone = peer(&leaver);
    drop(leaver);
    run.wait_for(&format!("{gone}: left without a close frame"));
    let mut half_request = connect(run.address());
    half_request
        .write_all(&ws_tests::upgrade_request(run.address()).as_bytes()[..30])
        .unwrap();
    let gone = peer(&half_request);
    drop(half_request);
    run.wait_for(&format!("{gone}: left without a whole request"));
    send_text(&mut stayer, "still here");
    read_text(&mut stayer);
    run.finish()
}

/// "Try it": what two tabs of a browser do. Each loads the page, opens its
/// WebSocket and asks for the tab's icon; they chat; both tabs are closed,
/// and a closing tab sends a close frame with 1001, "going away".
fn step_04_two_tabs() -> String {
    let mut run = Run::start("step-04");
    let get = |run: &mut Run, target: &str| {
        let request = format!("GET {target} HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n");
        let mut stream = connect(run.address());
        stream.write_all(request.as_bytes()).unwrap();
        let client = peer(&stream);
        ws_tests::read_to_close(&mut stream);
        drop(stream);
        run.wait_for(&format!("{client}: disconnected"));
    };
    let mut tabs = Vec::new();
    for _ in 0..2 {
        get(&mut run, "/");
        tabs.push(ws_handshake(run.address()));
        get(&mut run, "/favicon.ico");
    }
    let say = |tabs: &mut [Conn], from: usize, text: &str| {
        send_text(&mut tabs[from], text);
        for tab in tabs.iter_mut() {
            read_text(tab);
        }
    };
    say(&mut tabs, 0, "Hello from the first tab");
    say(&mut tabs, 1, "Hi! Same here, from the second tab");
    for tab in tabs.iter_mut().rev() {
        close_with(tab, 1001);
        run.wait_for(&format!("{}: disconnected", peer(tab)));
    }
    run.finish()
}
