//! Runs the stage 8 server: `cargo run -p step-08 [ADDRESS] [OPTIONS]`;
//! `cargo run -p step-08 -- --help` lists the options.

use std::io;
use std::net::TcpListener;
use std::process::ExitCode;
use std::time::Duration;
use step_09::config::{self, Command, Config};
use step_09::{log, serve, signal};

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

// ANCHOR: run
fn run(address: &str, config: Config) -> io::Result<()> {
    // Port 0 asks the system for any free port; the line below says which
    // one it chose.
    let listener = TcpListener::bind(address).map_err(|error| {
        io::Error::new(error.kind(), format!("cannot listen on {address}: {error}"))
    })?;
    let url = format!("http://{}", listener.local_addr()?);
    // From here on, Ctrl-C and SIGTERM ask the loop to stop.
    let stop = signal::stop_signals()?;
    log::to_stdout();
    log!("Listening on {url}");
    log!("Open {url} in two browser tabs, pick two names, and chat");
    log!("Ctrl-C closes every connection with 1001, then exits");
    let served = serve(listener, config, stop);
    // The last lines of the log, before the process ends.
    log::finish(Duration::from_secs(1));
    served
}
// ANCHOR_END: run
