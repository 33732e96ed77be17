//! Stage 3 against the case groups of Autobahn|Testsuite, in fast tests
//! (`conformance.rs`, shared with the later stages).

use std::net::SocketAddr;
use ws_tests::start_server;

fn server() -> SocketAddr {
    start_server(step_03::serve)
}

#[path = "conformance.rs"]
mod conformance;
