//! The runs chapter 1 shows: see `book_runs.rs`.

use super::*;

pub const RUNS: Runs = &[("step-01-two-posts.log", step_01_two_posts)];

/// Chapter 1, "What you should see": two `curl -d hello` requests.
fn step_01_two_posts() -> String {
    let run = Run::start("step-01");
    let curl = b"POST /x HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: curl/7.88.1\r\n\
                 Accept: */*\r\nContent-Length: 5\r\n\
                 Content-Type: application/x-www-form-urlencoded\r\n\r\nhello";
    for _ in 0..2 {
        exchange(run.address(), curl);
    }
    run.finish()
}
