//! Stage 7's checks (`ws_tests::stages::STEP_07`), against the reference
//! stage with epoll (on Linux): the chat of stage 6, and what a loop that
//! touches only the ready clients must still get right (the `turns`
//! suite); and what only the reference can show, below: the calls a round
//! trip costs to the interest list, with epoll and with the poll fallback.
//! `step_07_poll.rs` runs the same list against the fallback.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::BorrowedFd;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;
use step_07 as stage;
use step_07::interest::{Event, Interest, InterestList, Token};
use ws_tests::*;

ws_tests::main!(
    ws_tests::stages::STEP_07,
    ws_tests::reference_checks![
        the_page_is_stage_7s,
        with_epoll_a_round_trip_costs_one_wait,
        with_poll_a_round_trip_costs_one_wait,
        with_epoll_a_client_that_falls_behind_costs_two_changes,
        with_poll_a_client_that_falls_behind_costs_two_changes,
        out_of_file_descriptors_it_pauses_accepting_and_goes_on,
    ]
);

/// The page says which stage serves it.
fn the_page_is_stage_7s(server: &Server) {
    let response = exchange(server.address, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(response.contains("<title>Stage 7: a chat with names</title>"));
}

fn read_text(stream: &mut Conn) -> String {
    let frame = read_frame(stream);
    assert_eq!(frame.opcode, TEXT, "{frame:?}");
    String::from_utf8(frame.payload).unwrap()
}

fn send_text(stream: &mut Conn, text: &str) {
    send_frame(stream, true, TEXT, text.as_bytes());
}

fn join(address: SocketAddr, name: &str) -> Conn {
    let mut stream = ws_handshake(address);
    send_text(
        &mut stream,
        &format!(r#"{{"type":"join","name":"{name}"}}"#),
    );
    let welcome = read_text(&mut stream);
    assert!(welcome.starts_with(r#"{"type":"welcome""#), "{welcome}");
    stream
}

fn message(text: &str) -> String {
    format!(r#"{{"type":"message","text":"{text}"}}"#)
}

fn said(from: &str, text: &str) -> String {
    format!(r#"{{"type":"message","from":"{from}","text":"{text}"}}"#)
}

// ------------------------------------------------- out of descriptors

// ANCHOR: accept_paused
/// Stage 7's own program, allowed 20 open files. Clients connect until
/// `accept` fails; then the listener leaves the wait for a while (its
/// interest becomes `NONE`), or a level-triggered wait would report it,
/// ready for ever, and the loop would spin. So: the program stays nearly
/// idle while it cannot accept, the clients it has are still served, and
/// once one leaves, the client that was waiting is accepted.
fn out_of_file_descriptors_it_pauses_accepting_and_goes_on(_: &Server) {
    #[cfg(unix)]
    {
        use std::io::BufRead;
        use std::process::{Command, Stdio};
        /// Kills the program however the check ends.
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
                .arg(ws_tests::program::binary("step-07"))
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
            let line = log
                .recv_timeout(patience())
                .expect("the program fell silent");
            if let Some(found) = wanted.iter().position(|w| line.contains(w)) {
                return found;
            }
        };
        let mut joined = Vec::new();
        let mut waiting = loop {
            assert!(joined.len() < 30, "accept never failed");
            let mut stream = connect(address);
            send_raw(&mut stream, upgrade_request(address).as_bytes());
            let port = stream.local_addr().unwrap().port();
            if wait_for(&[&format!(":{port}: connected"), "accept failed"]) == 1 {
                break stream;
            }
            check_101(&read_http_head(&mut stream));
            let name = format!("c{}", joined.len());
            send_text(
                &mut stream,
                &format!(r#"{{"type":"join","name":"{name}"}}"#),
            );
            read_text(&mut stream);
            joined.push(stream);
        };
        // Paused, and paused again every 100 ms: but not spinning.
        let ticks = || {
            let stat = std::fs::read_to_string(format!("/proc/{}/stat", child.0.id()));
            let stat = stat.unwrap_or_default();
            let after_name = stat.rsplit(')').next().unwrap_or("");
            let fields: Vec<u64> = after_name
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
        check_101(&read_http_head(&mut waiting));
    }
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
    assert_eq!(read_text(&mut ann), r#"{"type":"join","name":"late"}"#);
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

fn with_epoll_a_round_trip_costs_one_wait(_: &Server) {
    #[cfg(target_os = "linux")]
    a_round_trip_costs_one_wait(stage::epoll::Epoll::new().unwrap());
}

fn with_poll_a_round_trip_costs_one_wait(_: &Server) {
    a_round_trip_costs_one_wait(stage::poll::PollList::default());
}

fn with_epoll_a_client_that_falls_behind_costs_two_changes(_: &Server) {
    #[cfg(target_os = "linux")]
    a_client_that_falls_behind_costs_two_changes(stage::epoll::Epoll::new().unwrap());
}

fn with_poll_a_client_that_falls_behind_costs_two_changes(_: &Server) {
    a_client_that_falls_behind_costs_two_changes(stage::poll::PollList::default());
}
