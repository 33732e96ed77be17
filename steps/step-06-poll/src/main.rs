//! Runs the stage 6 server: `cargo run -p step-06 [ADDRESS]`.

use std::net::TcpListener;

fn main() -> std::io::Result<()> {
    // The first argument, if any, is the address to listen on. Port 0 asks
    // the system for any free port; the line below says which one it chose.
    let address = std::env::args()
        .nth(1)
        .unwrap_or("127.0.0.1:8080".to_string());
    let listener = TcpListener::bind(&address)?;
    let url = format!("http://{}", listener.local_addr()?);
    step_06::log::to_stdout();
    step_06::log!("Listening on {url}");
    step_06::log!("Open {url} in two browser tabs, pick two names, and chat");
    step_06::serve(listener)
}
