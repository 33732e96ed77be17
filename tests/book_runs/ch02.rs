//! The runs chapter 2 shows: see `book_runs.rs`.

use super::*;

pub const RUNS: Runs = &[];
