//! Runs the stage 9 server: `cargo run -p step-09 [ADDRESS] [OPTIONS]`;
//! `cargo run -p step-09 -- --help` lists the options.
//!
//! Without `--redis`, it is stage 8's server, alone. With it, every server
//! started with the same Redis is one chat, and they may all listen on the
//! same port (`SO_REUSEPORT`): the system spreads the clients over them.

use std::io;
use std::net::{TcpListener, ToSocketAddrs};
use std::process::ExitCode;
use std::time::Duration;
use step_09::config::{self, Command, Config};
use step_09::{log, serve, signal};

// ANCHOR: main
fn main() -> ExitCode {
    let (address, config) = match config::parse(std::env::args().skip(1)) {
        Ok(Command::Serve { address, config }) => (address, config),
        Ok(Command::Help) => {
            println!("{}", config::USAGE);
            return ExitCode::SUCCESS;
        }
        Err(error) => {
            eprintln!("step-09: {error}\n\n{}", config::USAGE);
            return ExitCode::from(2);
        }
    };
    match run(&address, config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("step-09: {error}");
            ExitCode::FAILURE
        }
    }
}
// ANCHOR_END: main

// ANCHOR: run
fn run(address: &str, config: Config) -> io::Result<()> {
    // Port 0 asks the system for any free port; the line below says which
    // one it chose.
    let listener = match config.redis {
        Some(_) => bind_shared(address),
        None => TcpListener::bind(address),
    };
    let listener = listener.map_err(|error| {
        io::Error::new(error.kind(), format!("cannot listen on {address}: {error}"))
    })?;
    let url = format!("http://{}", listener.local_addr()?);
    // From here on, Ctrl-C and SIGTERM ask the loop to stop.
    let stop = signal::stop_signals()?;
    log::to_stdout();
    log!("Listening on {url}");
    log!("Open {url} in two browser tabs, pick two names, and chat");
    if let Some(redis) = &config.redis {
        log!("One chat with every server that uses Redis at {redis}");
    }
    log!("Ctrl-C closes every connection with 1001, then exits");
    let served = serve(listener, config, stop);
    // The last lines of the log, before the process ends.
    log::finish(Duration::from_secs(1));
    served
}
// ANCHOR_END: run

// ANCHOR: bind_shared
/// Several servers may listen on one port, with `--redis` only: without
/// Redis, a second server on the port would silently split the clients
/// into two chats that never meet, so it had better fail to start.
fn bind_shared(address: &str) -> io::Result<TcpListener> {
    let Some(address) = address.to_socket_addrs()?.next() else {
        return Err(io::Error::new(io::ErrorKind::NotFound, "no address"));
    };
    #[cfg(target_os = "linux")]
    return step_09::socket::bind_shared(address);
    #[cfg(not(target_os = "linux"))]
    TcpListener::bind(address)
}
// ANCHOR_END: bind_shared
