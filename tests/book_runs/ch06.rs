//! The runs chapter 6 shows: see `book_runs.rs`.

use super::*;

pub const RUNS: Runs = &[];
