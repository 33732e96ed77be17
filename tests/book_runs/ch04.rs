//! The runs chapter 4 shows: see `book_runs.rs`.

use super::*;

pub const RUNS: Runs = &[];
