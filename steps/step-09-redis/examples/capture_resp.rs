//! Records what a real Redis answers, byte for byte, as the fixtures that
//! `src/resp.rs` tests its parser on: `fixtures/redis-VERSION/NAME.resp`.
//!
//! Start a server with nothing in it, then run this against it:
//!
//! ```console
//! $ redis-server --port 16379 --bind 127.0.0.1 --save '' --appendonly no &
//! $ cargo run -p step-09 --example capture_resp -- 127.0.0.1:16379
//! ```
//!
//! Each command goes out encoded by hand (an array of bulk strings, as
//! `resp::command` writes it), and whatever comes back within a quiet
//! moment is the reply: no parser is involved, so the fixtures cannot
//! inherit a parser's mistakes.

use std::fs;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::Duration;
use step_09::broker::RELEASE;

/// How long the server must stay quiet before a reply counts as complete.
const QUIET: Duration = Duration::from_millis(300);

fn main() -> io::Result<()> {
    let address = std::env::args()
        .nth(1)
        .unwrap_or("127.0.0.1:16379".to_string());
    let mut commands = TcpStream::connect(&address)?;
    let mut subscriber = TcpStream::connect(&address)?;
    let info = exchange(&mut commands, &["INFO", "server"])?;
    let info = String::from_utf8_lossy(&info);
    let version = info
        .lines()
        .find_map(|line| line.strip_prefix("redis_version:"))
        .expect("INFO names the version")
        .trim()
        .to_string();
    let folder = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(format!("redis-{version}"));
    fs::create_dir_all(&folder)?;
    let save = |name: &str, bytes: &[u8]| {
        println!("{name}: {}", String::from_utf8_lossy(bytes).escape_debug());
        fs::write(folder.join(format!("{name}.resp")), bytes)
    };
    save("ping", &exchange(&mut commands, &["PING"])?)?;
    let claim = ["SET", "chat:name:ann", "server-a", "NX", "PX", "15000"];
    save("set_nx_claimed", &exchange(&mut commands, &claim)?)?;
    save("set_nx_taken", &exchange(&mut commands, &claim)?)?;
    save("get", &exchange(&mut commands, &["GET", "chat:name:ann"])?)?;
    let refresh = ["PEXPIRE", "chat:name:ann", "15000"];
    save("pexpire_kept", &exchange(&mut commands, &refresh)?)?;
    let gone = ["PEXPIRE", "chat:name:nobody", "15000"];
    save("pexpire_gone", &exchange(&mut commands, &gone)?)?;
    save(
        "set_empty",
        &exchange(&mut commands, &["SET", "empty", ""])?,
    )?;
    save("get_empty", &exchange(&mut commands, &["GET", "empty"])?)?;
    save(
        "unknown_command",
        &exchange(&mut commands, &["NOSUCH", "x"])?,
    )?;
    let not_a_number = ["INCR", "chat:name:ann"];
    save(
        "error_not_an_integer",
        &exchange(&mut commands, &not_a_number)?,
    )?;
    save(
        "empty_array",
        &exchange(&mut commands, &["KEYS", "nomatch*"])?,
    )?;
    let scan = ["SCAN", "0", "MATCH", "nomatch*"];
    save("nested_array", &exchange(&mut commands, &scan)?)?;
    let timed_out = ["BLPOP", "nolist", "0.01"];
    save("null_array", &exchange(&mut commands, &timed_out)?)?;
    // Two commands in one write: two replies, in order, maybe in one read.
    let two = [command(&["PING"]), command(&["GET", "chat:name:ann"])].concat();
    save("pipelined", &exchange_raw(&mut commands, &two)?)?;
    save(
        "subscribe",
        &exchange(&mut subscriber, &["SUBSCRIBE", "chat"])?,
    )?;
    save(
        "publish",
        &exchange(&mut commands, &["PUBLISH", "chat", "hello"])?,
    )?;
    save("message", &read_quietly(&mut subscriber)?)?;
    // A bulk string may hold any bytes, line ends included.
    let tricky = ["PUBLISH", "chat", "two\r\nlines, caf\u{e9}"];
    exchange(&mut commands, &tricky)?;
    save("message_with_crlf", &read_quietly(&mut subscriber)?)?;
    let publish_while_subscribed = ["PUBLISH", "chat", "x"];
    let refused = exchange(&mut subscriber, &publish_while_subscribed)?;
    save("publish_while_subscribed", &refused)?;
    // The broker's compare-and-delete, as it frees a name: another
    // server's id leaves the key alone (0), ours deletes it (1).
    let release = |id| ["EVAL", RELEASE, "1", "chat:name:ann", id];
    let not_ours = exchange(&mut commands, &release("server-b"))?;
    save("release_not_ours", &not_ours)?;
    save(
        "release_ours",
        &exchange(&mut commands, &release("server-a"))?,
    )?;
    exchange(&mut commands, &["DEL", "chat:name:ann", "empty"])?;
    Ok(())
}

/// A command as Redis reads it: an array of bulk strings.
fn command(parts: &[&str]) -> Vec<u8> {
    let mut bytes = format!("*{}\r\n", parts.len()).into_bytes();
    for part in parts {
        bytes.extend(format!("${}\r\n{part}\r\n", part.len()).into_bytes());
    }
    bytes
}

fn exchange(stream: &mut TcpStream, parts: &[&str]) -> io::Result<Vec<u8>> {
    exchange_raw(stream, &command(parts))
}

fn exchange_raw(stream: &mut TcpStream, bytes: &[u8]) -> io::Result<Vec<u8>> {
    stream.write_all(bytes)?;
    read_quietly(stream)
}

/// Everything that arrives until the server has been quiet for [`QUIET`].
fn read_quietly(stream: &mut TcpStream) -> io::Result<Vec<u8>> {
    stream.set_read_timeout(Some(QUIET))?;
    let mut reply = Vec::new();
    let mut buffer = [0; 4096];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => return Ok(reply),
            Ok(count) => reply.extend_from_slice(&buffer[..count]),
            Err(error)
                if matches!(
                    error.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Ok(reply);
            }
            Err(error) => return Err(error),
        }
    }
}
