//! The runs chapter 3 shows: see `book_runs.rs`.

use super::*;

pub const RUNS: Runs = &[];
