//! Stage 7 over real TCP: the chat of stage 6, served by a loop that epoll
//! tells which sockets are ready. It must keep every promise of stages 5
//! and 6, so the tests are theirs, from `chat.rs` and `http.rs`, and they
//! run twice: against the loop with epoll, and against the same loop with
//! the `poll` fallback that macOS and the BSDs use, so that the fallback
//! is not untested code. Then what is new: a turn touches only some
//! clients, so clients that come and go must never get one another's
//! messages; a busy client must not keep the loop from the others; and
//! the system calls a round trip costs.

// The same files are modules twice, once for each way of waiting: that is
// the point.
#![allow(clippy::duplicate_mod)]

use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::BorrowedFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};
use step_07 as stage;
use step_07::interest::{Event, Interest, InterestList, Token};
use ws_tests::*;

// ANCHOR: serve_with_poll
/// Stage 7's loop, waiting with poll on every system.
fn serve_with_poll(listener: TcpListener) -> io::Result<()> {
    stage::serve_with(listener, stage::poll::PollList::default())
}
// ANCHOR_END: serve_with_poll

// ANCHOR: two_runners
/// Every check, against the loop with epoll (on Linux; elsewhere `serve`
/// waits with poll too).
#[path = "."]
mod epoll {
    pub(crate) use super::stage;
    use super::*;

    pub fn server() -> SocketAddr {
        start_server(stage::serve)
    }

    #[path = "chat.rs"]
    mod chat;

    #[path = "http.rs"]
    mod http;

    #[test]
    fn clients_coming_and_going_get_only_their_own_messages() {
        super::clients_coming_and_going_get_only_their_own_messages(server());
    }

    #[test]
    fn a_flooding_client_holds_up_nobody() {
        super::a_flooding_client_holds_up_nobody(server());
    }
}

// ANCHOR_END: two_runners

/// Every check again, against the loop with poll.
#[path = "."]
mod poll {
    pub(crate) use super::stage;
    use super::*;

    pub fn server() -> SocketAddr {
        start_server(serve_with_poll)
    }

    #[path = "chat.rs"]
    mod chat;

    #[path = "http.rs"]
    mod http;

    #[test]
    fn clients_coming_and_going_get_only_their_own_messages() {
        super::clients_coming_and_going_get_only_their_own_messages(server());
    }

    #[test]
    fn a_flooding_client_holds_up_nobody() {
        super::a_flooding_client_holds_up_nobody(server());
    }
}

/// The page says which stage serves it.
#[test]
fn the_page_is_stage_7s() {
    let response = exchange(
        start_server(stage::serve),
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    assert!(response.contains("<title>Stage 7: a chat with names</title>"));
}

// ------------------------------------------------------ the chat's words

fn read_text(stream: &mut TcpStream) -> String {
    let frame = read_frame(stream);
    assert_eq!(frame.opcode, TEXT, "{frame:?}");
    String::from_utf8(frame.payload).unwrap()
}

fn send_text(stream: &mut TcpStream, text: &str) {
    send_frame(stream, true, TEXT, text.as_bytes());
}

fn join_request(name: &str) -> String {
    format!(r#"{{"type":"join","name":"{name}"}}"#)
}

fn message(text: &str) -> String {
    format!(r#"{{"type":"message","text":"{text}"}}"#)
}

fn said(from: &str, text: &str) -> String {
    format!(r#"{{"type":"message","from":"{from}","text":"{text}"}}"#)
}

fn joined(name: &str) -> String {
    format!(r#"{{"type":"join","name":"{name}"}}"#)
}

fn left(name: &str) -> String {
    format!(r#"{{"type":"leave","name":"{name}"}}"#)
}

fn join(address: SocketAddr, name: &str) -> TcpStream {
    let mut stream = ws_handshake(address);
    send_text(&mut stream, &join_request(name));
    let welcome = read_text(&mut stream);
    assert!(welcome.starts_with(r#"{"type":"welcome""#), "{welcome}");
    stream
}

// ---------------------------------------------------- tokens and slots

// ANCHOR: coming_and_going
/// Round after round, the clients of the last round leave (half with a
/// close frame, half vanishing) while as many new ones arrive, half of
/// them to join and half only to connect, so that the server lets clients
/// go and takes new ones into their slots in the same turns. Each client
/// must get what is meant for it and nothing else: a new client never
/// hears anything meant for the one that had its slot before, a client
/// that never joined hears nothing, and every message arrives with the
/// name of the client that sent it.
fn clients_coming_and_going_get_only_their_own_messages(address: SocketAddr) {
    let mut host = join(address, "host");
    let mut last_round: Vec<TcpStream> = Vec::new();
    for round in 0..8 {
        let leaving = last_round.len();
        for (i, mut stream) in last_round.drain(..).enumerate() {
            if i % 2 == 0 {
                send_frame(&mut stream, true, CLOSE, &1001u16.to_be_bytes());
            }
        }
        // Each new client sends its request and its join in one write.
        let names: Vec<String> = (0..10).map(|i| format!("r{round}c{i}")).collect();
        let mut joiners = Vec::new();
        for name in &names {
            let mut stream = connect(address);
            stream.set_nodelay(true).unwrap();
            let mut bytes = upgrade_request(address).into_bytes();
            bytes.extend(client_frame(true, TEXT, join_request(name).as_bytes()));
            send_raw(&mut stream, &bytes);
            joiners.push(stream);
        }
        let lurkers: Vec<TcpStream> = (0..10).map(|_| ws_handshake(address)).collect();
        // The host hears everyone leave and everyone join, in some order.
        let mut expected: Vec<String> = (0..leaving)
            .map(|i| left(&format!("r{}c{i}", round - 1)))
            .collect();
        expected.extend(names.iter().map(|name| joined(name)));
        let mut heard: Vec<String> = (0..expected.len()).map(|_| read_text(&mut host)).collect();
        heard.sort();
        expected.sort();
        assert_eq!(heard, expected, "round {round}");
        // Everyone has joined: each new client says who it is.
        for (name, stream) in names.iter().zip(&mut joiners) {
            send_text(stream, &message(&format!("I am {name}")));
        }
        let mut heard: Vec<String> = names.iter().map(|_| read_text(&mut host)).collect();
        let mut expected: Vec<String> = names
            .iter()
            .map(|name| said(name, &format!("I am {name}")))
            .collect();
        heard.sort();
        expected.sort();
        assert_eq!(
            heard, expected,
            "round {round}: a message with the wrong sender"
        );
        for (name, stream) in names.iter().zip(&mut joiners) {
            check_101(&read_http_head(stream));
            // First its own welcome, then only this round's news.
            let welcome = read_text(stream);
            let own = format!(r#"{{"type":"welcome","name":"{name}","users":["#);
            assert!(welcome.starts_with(&own), "{name} got {welcome}");
            let mut messages = 0;
            while messages < names.len() {
                let text = read_text(stream);
                if text.contains(r#""type":"message""#) {
                    assert!(text.contains(&format!("r{round}c")), "{name} got {text}");
                    messages += 1;
                } else {
                    let this_round = text.contains(&format!("\"r{round}c"));
                    let last_round = round > 0 && text.contains(&format!("\"r{}c", round - 1));
                    assert!(this_round || last_round, "{name} got {text}");
                }
            }
        }
        for mut lurker in lurkers {
            expect_silence(&mut lurker, Duration::from_millis(20));
        }
        last_round = joiners;
    }
    send_text(&mut host, &message("still here"));
    loop {
        let text = read_text(&mut host);
        if text == said("host", "still here") {
            break;
        }
        assert!(text.contains(r#""type":"leave""#), "{text}");
    }
}
// ANCHOR_END: coming_and_going

// ------------------------------------------------------ a busy client

// ANCHOR: flooding
/// One client sends pongs (which need no answer) as fast as it can, for
/// as long as the test lasts. Meanwhile two others chat, and each of their
/// messages goes round at once: the loop reads at most so much from one
/// client in a turn, then serves the others. (A loop that read every
/// socket until `WouldBlock`, as edge-triggered events require, would read
/// the flood for as long as it lasts.)
fn a_flooding_client_holds_up_nobody(address: SocketAddr) {
    let mut alice = join(address, "alice");
    let mut bob = join(address, "bob");
    assert_eq!(read_text(&mut alice), joined("bob"));
    let stop = Arc::new(AtomicBool::new(false));
    let flooder = {
        let mut stream = ws_handshake(address);
        let stop = stop.clone();
        let pongs: Vec<u8> = (0..500)
            .flat_map(|_| client_frame(true, PONG, &[b'x'; 125]))
            .collect();
        thread::spawn(move || {
            let mut sent = 0usize;
            while !stop.load(Ordering::Relaxed) {
                stream.write_all(&pongs).unwrap();
                sent += pongs.len();
            }
            sent
        })
    };
    thread::sleep(Duration::from_millis(100));
    let started = Instant::now();
    let mut slowest = Duration::ZERO;
    for i in 0..50 {
        let sent = Instant::now();
        send_text(&mut alice, &message(&format!("hello {i}")));
        assert_eq!(read_text(&mut bob), said("alice", &format!("hello {i}")));
        assert_eq!(read_text(&mut alice), said("alice", &format!("hello {i}")));
        slowest = slowest.max(sent.elapsed());
    }
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let flooded = flooder.join().unwrap();
    println!(
        "50 messages in {elapsed:?}, the slowest {slowest:?}, beside {flooded} bytes of pongs"
    );
    assert!(flooded > 1_000_000, "the flood was only {flooded} bytes");
    assert!(
        slowest < Duration::from_secs(1),
        "a message took {slowest:?}"
    );
}
// ANCHOR_END: flooding

// ------------------------------------------------- out of descriptors

// ANCHOR: accept_paused
/// Stage 7's own program, allowed 20 open files. Clients connect until
/// `accept` fails; then the listener leaves the wait for a while (its
/// interest becomes `NONE`), or a level-triggered wait would report it,
/// ready for ever, and the loop would spin. So: the program stays nearly
/// idle while it cannot accept, the clients it has are still served, and
/// once one leaves, the client that was waiting is accepted.
#[cfg(unix)]
#[test]
fn out_of_file_descriptors_it_pauses_accepting_and_goes_on() {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    drop(Program::start("step-07")); // builds target/debug/step-07
    let exe = std::env::current_exe().unwrap();
    let binary = exe.parent().unwrap().parent().unwrap().join("step-07");
    /// Kills the program however the test ends.
    struct Killed(std::process::Child);
    impl Drop for Killed {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut child = Killed(
        Command::new("bash")
            .args(["-c", r#"ulimit -n 20 && exec "$0" 127.0.0.1:0"#])
            .arg(&binary)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut stdout = std::io::BufReader::new(child.0.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let address: SocketAddr = first
        .trim()
        .trim_start_matches("Listening on http://")
        .parse()
        .unwrap();
    let (lines, log) = std::sync::mpsc::channel();
    thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    // Waits for a line that contains one of `wanted`, and says which.
    let wait_for = |wanted: &[&str]| loop {
        let line = log.recv_timeout(PATIENCE).expect("the program fell silent");
        if let Some(found) = wanted.iter().position(|w| line.contains(w)) {
            return found;
        }
    };
    let mut joined = Vec::new();
    let waiting = loop {
        assert!(joined.len() < 30, "accept never failed");
        let mut stream = connect(address);
        send_raw(&mut stream, upgrade_request(address).as_bytes());
        let connected = format!(":{}: connected", stream.local_addr().unwrap().port());
        if wait_for(&[&connected, "accept failed"]) == 1 {
            break stream;
        }
        check_101(&read_http_head(&mut stream));
        send_text(&mut stream, &join_request(&format!("c{}", joined.len())));
        read_text(&mut stream);
        joined.push(stream);
    };
    // Paused, and paused again every 100 ms: but not spinning.
    let ticks = || {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", child.0.id()));
        let stat = stat.unwrap_or_default();
        let fields: Vec<u64> = stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .filter_map(|field| field.parse().ok())
            .collect();
        fields
            .get(10)
            .zip(fields.get(11))
            .map(|(user, system)| user + system)
    };
    if let Some(before) = ticks() {
        thread::sleep(Duration::from_secs(1));
        let used = ticks().unwrap() - before;
        assert!(used < 30, "{used} ticks of CPU in a second while paused");
    }
    // The clients it has are still served.
    let mut first = joined.remove(0);
    send_text(&mut first, &message("still here"));
    loop {
        let text = read_text(&mut first);
        if text == said("c0", "still here") {
            break;
        }
        assert!(text.contains(r#""type":"join""#), "{text}");
    }
    // One leaves: a descriptor is free, and the waiting client gets it.
    drop(joined.pop());
    let mut waiting = waiting;
    check_101(&read_http_head(&mut waiting));
}
// ANCHOR_END: accept_paused

// -------------------------------------------------------- system calls

/// How many times the loop called each function of its interest list.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
struct Calls {
    add: usize,
    modify: usize,
    delete: usize,
    wait: usize,
}

/// An interest list that counts the calls it passes on to another.
struct Counting<List> {
    list: List,
    calls: Arc<Mutex<Calls>>,
}

impl<List: InterestList> InterestList for Counting<List> {
    fn add(&mut self, socket: BorrowedFd, token: Token, interest: Interest) -> io::Result<()> {
        self.calls.lock().unwrap().add += 1;
        self.list.add(socket, token, interest)
    }

    fn modify(&mut self, socket: BorrowedFd, token: Token, interest: Interest) -> io::Result<()> {
        self.calls.lock().unwrap().modify += 1;
        self.list.modify(socket, token, interest)
    }

    fn delete(&mut self, socket: BorrowedFd) -> io::Result<()> {
        self.calls.lock().unwrap().delete += 1;
        self.list.delete(socket)
    }

    fn wait(&mut self, events: &mut Vec<Event>, timeout: Option<Duration>) -> io::Result<()> {
        let result = self.list.wait(events, timeout);
        self.calls.lock().unwrap().wait += 1;
        result
    }
}

/// Starts the loop with a counting interest list around `list`.
fn counted_server(list: impl InterestList + Send + 'static) -> (SocketAddr, Arc<Mutex<Calls>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let calls = Arc::new(Mutex::new(Calls::default()));
    let counting = Counting {
        list,
        calls: calls.clone(),
    };
    thread::spawn(move || stage::serve_with(listener, counting));
    (address, calls)
}

/// The calls made since `before`.
fn since(calls: &Mutex<Calls>, before: Calls) -> Calls {
    let now = *calls.lock().unwrap();
    Calls {
        add: now.add - before.add,
        modify: now.modify - before.modify,
        delete: now.delete - before.delete,
        wait: now.wait - before.wait,
    }
}

// ANCHOR: calls
/// A round trip (a message, and the same message back) costs one wait,
/// and no change to the interest list: the client's socket takes the
/// answer at once, so its interest never changes. (The wait, a read and a
/// write are all the system calls it takes: see the chapter, measured with
/// `strace`.)
fn a_round_trip_costs_one_wait(list: impl InterestList + Send + 'static) {
    let (address, calls) = counted_server(list);
    let mut alice = join(address, "alice");
    let before = *calls.lock().unwrap();
    for i in 0..100 {
        send_text(&mut alice, &message(&format!("echo {i}")));
        assert_eq!(read_text(&mut alice), said("alice", &format!("echo {i}")));
    }
    let calls = since(&calls, before);
    assert_eq!((calls.add, calls.modify, calls.delete), (0, 0, 0));
    // One for each message; a spare, if the thread of the test is slow.
    assert!((100..=102).contains(&calls.wait), "{calls:?}");
}

/// A client that falls behind costs two changes to the interest list: one
/// to wait for room in its socket when its output starts to wait, one to
/// stop once all of it is out. Not one per message.
fn a_client_that_falls_behind_costs_two_changes(list: impl InterestList + Send + 'static) {
    let (address, calls) = counted_server(list);
    let mut ann = join(address, "ann");
    let mut late = join(address, "late");
    assert_eq!(read_text(&mut ann), joined("late"));
    let before = *calls.lock().unwrap();
    // About 1 MiB more than the sockets hold, less than the server allows.
    let text = "x".repeat(stage::MAX_CHAT_MESSAGE_LEN - 100);
    let count = (8 << 20) / text.len();
    let mut sent = 0;
    let mut changed = 0;
    while sent < count {
        send_text(&mut ann, &message(&text));
        assert!(read_text(&mut ann).ends_with(&format!("{text}\"}}")));
        sent += 1;
        changed = since(&calls, before).modify;
        if changed > 0 {
            break; // the late reader's output waits: that was one change
        }
    }
    assert!(changed > 0, "no change after {sent} messages");
    for _ in 0..sent {
        assert!(read_text(&mut late).ends_with(&format!("{text}\"}}")));
    }
    send_text(&mut late, &message("caught up"));
    assert_eq!(read_text(&mut ann), said("late", "caught up"));
    let calls = since(&calls, before);
    assert_eq!(calls.modify, 2, "{calls:?}");
}
// ANCHOR_END: calls

#[cfg(target_os = "linux")]
#[test]
fn with_epoll_a_round_trip_costs_one_wait() {
    a_round_trip_costs_one_wait(stage::epoll::Epoll::new().unwrap());
}

#[test]
fn with_poll_a_round_trip_costs_one_wait() {
    a_round_trip_costs_one_wait(stage::poll::PollList::default());
}

#[cfg(target_os = "linux")]
#[test]
fn with_epoll_a_client_that_falls_behind_costs_two_changes() {
    a_client_that_falls_behind_costs_two_changes(stage::epoll::Epoll::new().unwrap());
}

#[test]
fn with_poll_a_client_that_falls_behind_costs_two_changes() {
    a_client_that_falls_behind_costs_two_changes(stage::poll::PollList::default());
}
