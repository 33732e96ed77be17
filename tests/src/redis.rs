//! A real `redis-server` for stage 9's tests and the book's runs of
//! chapter 9: started on a free port of 127.0.0.1, with nothing saved to
//! disk, and killed when dropped. It needs `redis-server` on the PATH
//! (Debian's package `redis-server`).

use crate::patience;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// A `redis-server` of our own, on a port of its own, with nothing saved
/// to disk: killed when dropped.
pub struct RedisServer {
    port: u16,
    process: Option<Child>,
}

impl RedisServer {
    /// Starts one, and waits until it answers; fails if `redis-server` is
    /// not on the PATH.
    pub fn start() -> RedisServer {
        let mut redis = RedisServer {
            port: free_port(),
            process: None,
        };
        redis.restart();
        redis
    }

    /// Starts one if `redis-server` is on the PATH; `None` if it is not.
    pub fn try_start() -> Option<RedisServer> {
        let found = Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .status();
        found
            .is_ok_and(|status| status.success())
            .then(RedisServer::start)
    }

    /// `127.0.0.1:PORT`, as `--redis` takes it.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Starts it (again, on the same port), and waits until it answers.
    pub fn restart(&mut self) {
        let port = self.port.to_string();
        let process = Command::new("redis-server")
            .args(["--port", &port, "--bind", "127.0.0.1", "--save", ""])
            .args(["--appendonly", "no", "--daemonize", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server on the PATH (apt-get install redis-server)");
        self.process = Some(process);
        let start = Instant::now();
        while !self.answers_ping() {
            assert!(start.elapsed() < patience(), "redis-server did not start");
            thread::sleep(Duration::from_millis(10));
        }
    }

    fn answers_ping(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(self.address()) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
        let mut reply = [0; 7];
        stream.write_all(b"*1\r\n$4\r\nPING\r\n").is_ok()
            && stream.read_exact(&mut reply).is_ok()
            && &reply == b"+PONG\r\n"
    }

    /// Kills it: for the servers that use it, Redis has gone away.
    pub fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            let _ = process.kill();
            let _ = process.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A port of 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}
