//! A failed check, told so that a person can act on it: what the check
//! expected, what it sent, what came back, what a correct server answers,
//! and where the RFC and the book explain it.

use crate::check::{Check, Outcome};
use crate::trace::{self, Event};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The root of the repository (the folder of `steps/` and `book/`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests package sits in the repository root")
        .to_path_buf()
}

/// The failure of `check`, for a terminal. `reference` is the same check
/// run against the reference stage, if there is one to compare with; it
/// supplies what a correct server answers.
pub fn failure(check: &Check, outcome: &Outcome, reference: Option<(&str, &Outcome)>) -> String {
    let mut out = String::new();
    let indent = "    ";
    if let Some(failure) = &outcome.failure {
        let _ = writeln!(out, "{indent}The check failed:");
        for line in failure.message.lines() {
            let _ = writeln!(out, "{indent}  {line}");
        }
    }
    let (events, dropped) = outcome.trace.events();
    if let Some((conn, index)) = trace::failure_point(&events) {
        let answers = trace::answers(&events, conn);
        let answer = &answers[index];
        let mut sent = answer.provoked_by.clone();
        let mut sent_on = conn;
        if !sent.iter().any(|event| matches!(event, Event::Sent { .. })) {
            // Nothing sent on this connection since its last answer: what
            // came was provoked on another (a broadcast), or by waiting.
            if let Some(event) = trace::last_sent(&events) {
                sent_on = event.conn();
                sent = vec![event];
            }
        }
        let _ = writeln!(out);
        if sent.is_empty() {
            let _ = writeln!(out, "{indent}The grader sent nothing before this.");
        } else {
            let _ = writeln!(
                out,
                "{indent}What the grader sent, on connection {sent_on}:"
            );
            for event in &sent {
                out.push_str(&trace::show_event(event, &format!("{indent}  ")));
            }
        }
        let _ = writeln!(out, "{indent}What came back, on connection {conn}:");
        for event in &answer.events {
            out.push_str(&trace::show_event(event, &format!("{indent}  ")));
        }
        if let Some((name, reference)) = reference {
            let (reference_events, _) = reference.trace.events();
            let correct = trace::answers(&reference_events, conn);
            let _ = writeln!(
                out,
                "{indent}What a correct server answers ({name}, sent the same):"
            );
            match correct.get(index) {
                Some(answer) if reference.passed() => {
                    for event in &answer.events {
                        out.push_str(&trace::show_event(event, &format!("{indent}  ")));
                    }
                }
                _ => {
                    let _ = writeln!(
                        out,
                        "{indent}  (the reference's exchange went otherwise: see the check's message)"
                    );
                }
            }
        }
        if dropped > 0 {
            let _ = writeln!(
                out,
                "{indent}({dropped} earlier events of this check are not shown)"
            );
        }
    }
    let _ = writeln!(out);
    if let Some(about) = &outcome.about {
        let _ = writeln!(out, "{indent}Read about it: {}", about.rfc);
        let _ = writeln!(out, "{indent}               {}", book_section(about.book));
    }
    let _ = write!(
        out,
        "{indent}The check: fn {} in {}",
        check.name,
        check.source()
    );
    if let Some(location) = outcome
        .failure
        .as_ref()
        .and_then(|failure| failure.location.as_ref())
    {
        let _ = write!(out, " (it failed at {location})");
    }
    let _ = writeln!(out);
    out
}

/// `book/src/ch03-frames.md, "Three sizes of length"` for
/// `ch03-frames.md#three-sizes-of-length`.
pub fn book_section(reference: &str) -> String {
    let (file, anchor) = reference.split_once('#').unwrap_or((reference, ""));
    let path = format!("book/src/{file}");
    match heading(file, anchor) {
        Some(title) => format!("{path}, \"{title}\""),
        None => format!("{path}#{anchor}"),
    }
}

/// The heading of `book/src/<file>` whose anchor is `anchor` (the first
/// heading if `anchor` is empty).
pub fn heading(file: &str, anchor: &str) -> Option<String> {
    let text = std::fs::read_to_string(repo_root().join("book/src").join(file)).ok()?;
    let mut in_code = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
        }
        if in_code {
            continue;
        }
        let Some(title) = line.strip_prefix('#') else {
            continue;
        };
        let title = title.trim_start_matches('#').trim();
        if anchor.is_empty() || slug(title) == anchor {
            return Some(title.to_string());
        }
    }
    None
}

/// The anchor mdBook gives a heading: lower case, spaces as `-`, and no
/// punctuation but `-` and `_`.
pub fn slug(title: &str) -> String {
    title
        .chars()
        .filter_map(|c| {
            if c.is_alphanumeric() || c == '-' || c == '_' {
                Some(c.to_ascii_lowercase())
            } else if c.is_whitespace() {
                Some('-')
            } else {
                None
            }
        })
        .collect::<String>()
        .to_lowercase()
}
