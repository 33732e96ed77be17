//! Your server: stage 1 of WebSockets from scratch, to build.
//!
//! `main.rs` binds the address and calls `serve`, which so far accepts each
//! connection and drops it, answering nothing. Chapter 1 of the book
//! (`book/src/ch01-http-echo.md` in the clone) builds an HTTP server that
//! answers every request with the request itself; the grader says how far
//! along yours is.

// First, so that every module after it can use `log!`.
#[macro_use]
pub mod log;

use std::io;
use std::net::TcpListener;

/// Serves clients one after another, forever.
pub fn serve(listener: TcpListener) -> io::Result<()> {
    for stream in listener.incoming() {
        let stream = stream?;
        log!("{}: connected, and dropped", stream.peer_addr()?);
    }
    Ok(())
}
