//! Runs the stage 2 server: `cargo run -p step-02 [ADDRESS]`.

use std::net::TcpListener;
use step_02::{log, serve};

fn main() -> std::io::Result<()> {
    // The first argument, if any, is the address to listen on. Port 0 asks
    // the system for any free port; the line below says which one it chose.
    let address = std::env::args()
        .nth(1)
        .unwrap_or("127.0.0.1:8080".to_string());
    let listener = TcpListener::bind(&address)?;
    let url = format!("http://{}", listener.local_addr()?);
    log::to_stdout();
    log!("Listening on {url}");
    log!("Open {url} in a browser, or try: curl -s -d hello {url}/x");
    serve(listener)
}
