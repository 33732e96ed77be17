//! Runs the stage 2 server: `cargo run -p step-02 [ADDRESS]`.

use std::net::TcpListener;

fn main() -> std::io::Result<()> {
    // The first argument, if any, is the address to listen on. Port 0 asks
    // the system for any free port; the line below says which one it chose.
    let address = std::env::args()
        .nth(1)
        .unwrap_or("127.0.0.1:8080".to_string());
    let listener = TcpListener::bind(&address)?;
    let url = format!("http://{}", listener.local_addr()?);
    step_02::log::to_stdout();
    step_02::log!("Listening on {url}");
    step_02::log!("Open {url} in a browser, or try: curl -s -d hello {url}/x");
    step_02::serve(listener)
}
