//! Checks that keep the book in `book/` true to the code in `steps/`.
//!
//! - `includes_resolve`: every `{{#include ...}}` in `book/src` points at a file
//!   that exists, an anchor that exists and is not empty, or lines that exist.
//!   mdBook itself only logs an error for a missing file, and silently includes
//!   nothing for a missing anchor.
//! - `code_blocks_are_only_includes`: no code is pasted into the book; a code
//!   block in a programming language holds nothing but include directives.
//! - `book_diffs_are_fresh`: `book/src/diffs/step-NN-*.diff` (the full diff
//!   from the previous step) and `book/src/trees/step-NN-*.tree` (the files of
//!   each step) are exactly what the steps give today. Refresh them with
//!   `UPDATE_BOOK_DIFFS=1 cargo test -p ws-tests --test book`.
//! - `chapters_open_with_their_step`: each chapter's first line names its step
//!   directory and the `cargo run -p` command, and the chapter includes its
//!   diff.
//! - `readme_and_introduction_list_every_step`: the tables of stages are
//!   complete.
//!
//! The checkers are tested too, on examples of every mistake they must catch:
//! a check that cannot fail would be worse than none.
//!
//! The diff comes from the `similar` crate (already in `Cargo.lock`, through
//! insta) rather than from `diff` or `git`, so that the test runs anywhere
//! `cargo test` does and gives the same bytes everywhere, in the format of
//! `diff -u`.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

#[path = "book_pages.rs"]
mod pages;
#[path = "book_runs.rs"]
mod runs;

/// The command that regenerates the diffs and trees; failures quote it.
const REFRESH_COMMAND: &str = "UPDATE_BOOK_DIFFS=1 cargo test -p ws-tests --test book";

/// Lines of context around each change, as `diff -u` gives by default.
const CONTEXT: usize = 3;

/// Code block languages whose content must be included from the crates.
/// Shell sessions and program output (`console`, `sh`, `text`) may be typed.
const INCLUDED_LANGUAGES: &[&str] = &["rust", "rs", "toml", "html", "js", "javascript", "diff"];

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests package sits in the repository root")
        .to_path_buf()
}

fn book_src() -> PathBuf {
    repo_root().join("book").join("src")
}

/// `path` relative to the repository root, with forward slashes, for messages.
fn shown(path: &Path) -> String {
    let relative = path.strip_prefix(repo_root()).unwrap_or(path);
    slashed(relative)
}

fn slashed(path: &Path) -> String {
    let parts: Vec<String> = path
        .components()
        .map(|part| part.as_os_str().to_string_lossy().into_owned())
        .collect();
    parts.join("/")
}

/// Every `.md` file under `dir`, sorted.
fn markdown_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).unwrap_or_else(|error| panic!("{}: {error}", shown(&dir))) {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|extension| extension == "md") {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

fn fail_with(problems: &[String], advice: &str) {
    if !problems.is_empty() {
        panic!(
            "\n{} problem(s):\n  - {}\n{advice}\n",
            problems.len(),
            problems.join("\n  - ")
        );
    }
}

// ---------------------------------------------------------------------------
// Finding mdBook directives: `{{#include path:anchor}}` and friends
// ---------------------------------------------------------------------------

/// Which part of a file a directive includes, as mdBook reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Selection {
    Whole,
    Anchor(String),
    /// 1-based line numbers, `last` inclusive; `None` means "from the start"
    /// or "to the end".
    Lines {
        first: Option<usize>,
        last: Option<usize>,
    },
}

/// One `{{#...}}` directive found in a Markdown file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Directive {
    /// The directive as written: `{{#include ../../steps/x.rs:anchor}}`.
    text: String,
    /// The 1-based line of the Markdown file it starts on.
    line: usize,
    /// `include`, `rustdoc_include`, `playground`, `title`, or anything else.
    kind: String,
    /// The file it names (relative to the Markdown file), if it names one.
    path: Option<PathBuf>,
    selection: Selection,
}

/// Finds directives the way mdBook's `links` preprocessor does: a `{{`,
/// optional spaces, `#`, a word, spaces, then anything but `}` up to `}}`.
/// `\{{#...}}` is an escaped directive, shown literally: it is skipped.
fn find_directives(markdown: &str) -> Vec<Directive> {
    let bytes = markdown.as_bytes();
    let mut found = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at..].starts_with(b"\\{{#") {
            // mdBook's escape pattern runs to the last `}}` on the line.
            let line_end = markdown[at..]
                .find('\n')
                .map_or(markdown.len(), |end| at + end);
            if let Some(close) = markdown[at..line_end].rfind("}}") {
                at += close + 2;
                continue;
            }
        }
        if bytes[at..].starts_with(b"{{")
            && let Some((length, kind, arguments)) = match_directive(&markdown[at..])
        {
            let line = markdown[..at].matches('\n').count() + 1;
            let text = markdown[at..at + length].to_string();
            let (path, selection) = match kind {
                "include" | "rustdoc_include" => parse_include_arguments(arguments),
                "playground" | "playpen" => (
                    arguments.split_whitespace().next().map(PathBuf::from),
                    Selection::Whole,
                ),
                _ => (None, Selection::Whole),
            };
            found.push(Directive {
                text,
                line,
                kind: kind.to_string(),
                path,
                selection,
            });
            at += length;
            continue;
        }
        at += 1;
    }
    found
}

/// Matches `{{ #kind arguments}}` at the start of `text`: returns its length,
/// the kind and the arguments.
fn match_directive(text: &str) -> Option<(usize, &str, &str)> {
    let after_braces = &text[2..];
    let after_space = after_braces.trim_start();
    let after_hash = after_space.strip_prefix('#')?;
    let kind_length = after_hash
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(after_hash.len());
    if kind_length == 0 {
        return None;
    }
    let kind = &after_hash[..kind_length];
    let rest = &after_hash[kind_length..];
    let close = rest.find('}')?;
    let arguments = &rest[..close];
    // At least one space after the kind, and something after the space.
    if !arguments.starts_with(char::is_whitespace) || arguments.chars().count() < 2 {
        return None;
    }
    if !rest[close..].starts_with("}}") {
        return None;
    }
    let length = text.len() - rest.len() + close + 2;
    Some((length, kind, arguments))
}

/// `path`, `path:anchor`, `path:7`, `path:7:12`, `path:7:`, `path::12`, or a
/// `"quoted path"` followed by the same.
fn parse_include_arguments(arguments: &str) -> (Option<PathBuf>, Selection) {
    let arguments = arguments.trim();
    if let Some(quoted) = arguments.strip_prefix('"') {
        let Some(end) = quoted.find('"') else {
            return (None, Selection::Whole);
        };
        let after = quoted[end + 1..].trim_start();
        let selection = parse_selection(after.strip_prefix(':'));
        return (Some(PathBuf::from(&quoted[..end])), selection);
    }
    let Some(first_word) = arguments.split_whitespace().next() else {
        return (None, Selection::Whole);
    };
    let (path, selection) = match first_word.split_once(':') {
        Some((path, selection)) => (path, parse_selection(Some(selection))),
        None => (first_word, Selection::Whole),
    };
    (Some(PathBuf::from(path)), selection)
}

/// mdBook's reading of what follows the first `:` of an include.
fn parse_selection(selection: Option<&str>) -> Selection {
    let Some(selection) = selection else {
        return Selection::Whole;
    };
    let mut parts = selection.splitn(3, ':');
    let first_part = parts.next().unwrap_or("");
    let first = match first_part.parse::<usize>() {
        Ok(number) => Some(number),
        Err(_) if first_part.is_empty() => None,
        Err(_) => return Selection::Anchor(first_part.to_string()),
    };
    match (first, parts.next().map(str::parse::<usize>)) {
        (Some(first), None) => Selection::Lines {
            first: Some(first),
            last: Some(first),
        },
        (first, Some(Ok(last))) => Selection::Lines {
            first,
            last: Some(last),
        },
        (first, _) => Selection::Lines { first, last: None },
    }
}

/// The anchor name in a line holding `marker` (`ANCHOR:` or `ANCHOR_END:`),
/// read as mdBook reads it: the marker, optional spaces, then a name.
fn anchor_on_line<'a>(line: &'a str, marker: &str) -> Option<&'a str> {
    line.match_indices(marker).find_map(|(at, _)| {
        let after = line[at + marker.len()..].trim_start();
        let length = after
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '-'))
            .unwrap_or(after.len());
        (length > 0).then(|| &after[..length])
    })
}

fn is_anchor_line(line: &str) -> bool {
    anchor_on_line(line, "ANCHOR:").is_some() || anchor_on_line(line, "ANCHOR_END:").is_some()
}

/// What is wrong with `selection` of a file whose text is `text`, if anything.
fn selection_problem(text: &str, selection: &Selection) -> Option<String> {
    match selection {
        Selection::Whole => text
            .trim()
            .is_empty()
            .then(|| "the file is empty".to_string()),
        Selection::Anchor(name) => {
            let lines: Vec<&str> = text.lines().collect();
            let Some(start) = lines
                .iter()
                .position(|line| anchor_on_line(line, "ANCHOR:") == Some(name))
            else {
                return Some(format!("there is no `ANCHOR: {name}` in the file"));
            };
            let Some(length) = lines[start + 1..]
                .iter()
                .position(|line| anchor_on_line(line, "ANCHOR_END:") == Some(name))
            else {
                return Some(format!(
                    "`ANCHOR: {name}` (line {}) has no `ANCHOR_END: {name}` after it",
                    start + 1
                ));
            };
            let region = &lines[start + 1..start + 1 + length];
            let shows_something = region
                .iter()
                .any(|line| !is_anchor_line(line) && !line.trim().is_empty());
            (!shows_something).then(|| format!("the region of anchor `{name}` is empty"))
        }
        Selection::Lines { first, last } => {
            let count = text.lines().count();
            let first_line = first.unwrap_or(1);
            let last_line = last.unwrap_or(count);
            if first_line == 0 {
                Some("line numbers start at 1".to_string())
            } else if first_line > last_line {
                Some(format!(
                    "lines {first_line} to {last_line} is an empty range"
                ))
            } else if last_line > count {
                Some(format!(
                    "it asks for line {last_line}, but the file has {count} lines"
                ))
            } else {
                None
            }
        }
    }
}

/// Checks every directive of one Markdown file; `read` reads an included file.
fn check_includes(
    markdown_path: &Path,
    markdown: &str,
    read: &dyn Fn(&Path) -> io::Result<String>,
) -> Vec<String> {
    let directory = markdown_path.parent().unwrap_or(Path::new(""));
    let mut problems = Vec::new();
    for directive in find_directives(markdown) {
        let place = format!(
            "{}:{}: {}",
            shown(markdown_path),
            directive.line,
            directive.text
        );
        let path = match (directive.kind.as_str(), &directive.path) {
            ("title", _) => continue,
            ("include" | "rustdoc_include" | "playground" | "playpen", Some(path)) => path,
            ("include" | "rustdoc_include" | "playground" | "playpen", None) => {
                problems.push(format!("{place}: names no file"));
                continue;
            }
            (kind, _) => {
                problems.push(format!(
                    "{place}: mdBook knows no `{{{{#{kind}}}}}`; it would show it as text"
                ));
                continue;
            }
        };
        let target = directory.join(path);
        match read(&target) {
            Err(error) => problems.push(format!(
                "{place}: cannot read {}: {error}",
                shown(&normalize(&target))
            )),
            Ok(text) => {
                if let Some(problem) = selection_problem(&text, &directive.selection) {
                    problems.push(format!(
                        "{place}: in {}: {problem}",
                        shown(&normalize(&target))
                    ));
                }
            }
        }
    }
    problems
}

/// `book/src/../../steps/x` -> `steps/x`, for readable messages.
fn normalize(path: &Path) -> PathBuf {
    let mut normal = PathBuf::new();
    for part in path.components() {
        match part {
            Component::ParentDir if normal.file_name().is_some() => {
                normal.pop();
            }
            Component::CurDir => {}
            part => normal.push(part),
        }
    }
    normal
}

/// A fenced code block: its info string, the line it opens on, its lines.
struct CodeBlock<'a> {
    info: &'a str,
    line: usize,
    content: Vec<&'a str>,
}

/// Fenced code blocks (``` or ~~~, at any indentation, so inside lists too).
fn code_blocks(markdown: &str) -> Vec<CodeBlock<'_>> {
    let mut blocks = Vec::new();
    let mut open: Option<(char, usize, CodeBlock)> = None;
    for (index, line) in markdown.lines().enumerate() {
        let trimmed = line.trim_start();
        let fence_char = trimmed.chars().next().filter(|c| *c == '`' || *c == '~');
        let fence_length =
            fence_char.map_or(0, |c| trimmed.chars().take_while(|x| *x == c).count());
        match &mut open {
            Some((c, length, block)) => {
                let closes = fence_char == Some(*c)
                    && fence_length >= *length
                    && trimmed[fence_length..].trim().is_empty();
                if closes {
                    blocks.push(open.take().unwrap().2);
                } else {
                    block.content.push(line);
                }
            }
            None if fence_length >= 3 => {
                let info = trimmed[fence_length..].trim();
                if fence_char == Some('`') && info.contains('`') {
                    continue; // inline code such as ```x```, not a fence
                }
                let block = CodeBlock {
                    info,
                    line: index + 1,
                    content: Vec::new(),
                };
                open = Some((fence_char.unwrap(), fence_length, block));
            }
            None => {}
        }
    }
    blocks.extend(open.map(|(_, _, block)| block));
    blocks
}

/// Code blocks in a programming language that hold anything but includes.
fn check_code_blocks(markdown_path: &Path, markdown: &str) -> Vec<String> {
    let mut problems = Vec::new();
    for block in code_blocks(markdown) {
        let language = block
            .info
            .split([',', ' ', '\t', '{'])
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        if !INCLUDED_LANGUAGES.contains(&language.as_str()) {
            continue;
        }
        let place = format!("{}:{}", shown(markdown_path), block.line);
        let mut includes = 0;
        let mut typed = false;
        for (offset, line) in block.content.iter().enumerate() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let directives = find_directives(line);
            let only_an_include = directives.len() == 1
                && directives[0].text == line
                && matches!(
                    directives[0].kind.as_str(),
                    "include" | "rustdoc_include" | "playground"
                );
            if only_an_include {
                includes += 1;
            } else {
                problems.push(format!(
                    "{place}: this ```{language} block has code typed into the book \
                     (line {}: `{line}`); include it from the crates with \
                     {{{{#include ../../steps/...:anchor}}}} instead",
                    block.line + 1 + offset
                ));
                typed = true;
                break;
            }
        }
        if includes == 0 && !typed {
            problems.push(format!("{place}: this ```{language} block is empty"));
        }
    }
    problems
}

#[test]
fn includes_resolve() {
    let read = |path: &Path| fs::read_to_string(path);
    let mut problems = Vec::new();
    for path in markdown_files(&book_src()) {
        let markdown = fs::read_to_string(&path).unwrap();
        problems.extend(check_includes(&path, &markdown, &read));
    }
    fail_with(
        &problems,
        "Every {{#include}} must name a file that exists (relative to the .md file), and \
         an anchor must be marked `// ANCHOR: name` ... `// ANCHOR_END: name` in that file.",
    );
}

#[test]
fn code_blocks_are_only_includes() {
    let mut problems = Vec::new();
    for path in markdown_files(&book_src()) {
        let markdown = fs::read_to_string(&path).unwrap();
        problems.extend(check_code_blocks(&path, &markdown));
    }
    fail_with(
        &problems,
        "Code in the book is included from the crates, so that it cannot drift from them.",
    );
}

/// The checker must be able to fail: a book with every kind of mistake.
#[test]
fn the_include_checker_finds_every_kind_of_mistake() {
    let source = "\
fn outside() {}
// ANCHOR: good
fn good() {}
// ANCHOR_END: good
// ANCHOR: empty
// ANCHOR_END: empty
// ANCHOR: unclosed
fn unclosed() {}
";
    let read = |path: &Path| -> io::Result<String> {
        match slashed(path).as_str() {
            "book/src/code.rs" => Ok(source.to_string()),
            _ => Err(io::Error::new(io::ErrorKind::NotFound, "no such file")),
        }
    };
    let markdown = "\
# A chapter

```rust
{{#include code.rs:good}}
```

```rust
{{#include missing.rs}}
{{#include code.rs:nowhere}}
{{#include code.rs:empty}}
{{#include code.rs:unclosed}}
{{#include code.rs:2:99}}
{{#include code.rs:0}}
{{#include code.rs:3}}
{{#include code.rs:3:}}
{{#rustdoc_include code.rs:good}}
```

This is shown as text: \\{{#include not-checked.rs}}.
This is a typo: {{#inlcude typo.rs}}.

```rust,ignore
fn pasted() {}
```

```rust
```

```console
$ cargo run -p step-01
```
";
    let problems = check_includes(Path::new("book/src/chapter.md"), markdown, &read);
    let expected = [
        "book/src/chapter.md:8: {{#include missing.rs}}: cannot read book/src/missing.rs",
        "book/src/chapter.md:9: {{#include code.rs:nowhere}}: in book/src/code.rs: there is no `ANCHOR: nowhere` in the file",
        "book/src/chapter.md:10: {{#include code.rs:empty}}: in book/src/code.rs: the region of anchor `empty` is empty",
        "book/src/chapter.md:11: {{#include code.rs:unclosed}}: in book/src/code.rs: `ANCHOR: unclosed` (line 7) has no `ANCHOR_END: unclosed` after it",
        "book/src/chapter.md:12: {{#include code.rs:2:99}}: in book/src/code.rs: it asks for line 99, but the file has 8 lines",
        "book/src/chapter.md:13: {{#include code.rs:0}}: in book/src/code.rs: line numbers start at 1",
        "book/src/chapter.md:20: {{#inlcude typo.rs}}: mdBook knows no `{{#inlcude}}`; it would show it as text",
    ];
    assert_eq!(problems.len(), expected.len(), "{problems:#?}");
    for (problem, expected) in problems.iter().zip(expected) {
        assert!(
            problem.starts_with(expected),
            "{problem}\nshould start with\n{expected}"
        );
    }

    let problems = check_code_blocks(Path::new("book/src/chapter.md"), markdown);
    assert_eq!(problems.len(), 2, "{problems:#?}");
    assert!(problems[0].starts_with("book/src/chapter.md:22: this ```rust block has code typed"));
    assert!(problems[1].starts_with("book/src/chapter.md:26: this ```rust block is empty"));
}

#[test]
fn directives_are_read_as_mdbook_reads_them() {
    let found = find_directives(
        "{{#include a.rs}} {{ #include b.rs:name }} {{#include c.rs:3:5}} {{#include d.rs:3}}\n\
         {{#include e.rs::5}} {{#include e.rs:3:}} {{#include \"f g.rs\":x}} {{#title T}}\n\
         \\{{#include escaped.rs}} {{#include}} {{#include x}",
    );
    let summary: Vec<(usize, &str, Option<&Path>, &Selection)> = found
        .iter()
        .map(|d| (d.line, d.kind.as_str(), d.path.as_deref(), &d.selection))
        .collect();
    let lines = |first, last| Selection::Lines { first, last };
    let anchor = |name: &str| Selection::Anchor(name.to_string());
    assert_eq!(
        summary,
        [
            (1, "include", Some(Path::new("a.rs")), &Selection::Whole),
            (1, "include", Some(Path::new("b.rs")), &anchor("name")),
            (
                1,
                "include",
                Some(Path::new("c.rs")),
                &lines(Some(3), Some(5))
            ),
            (
                1,
                "include",
                Some(Path::new("d.rs")),
                &lines(Some(3), Some(3))
            ),
            (2, "include", Some(Path::new("e.rs")), &lines(None, Some(5))),
            (2, "include", Some(Path::new("e.rs")), &lines(Some(3), None)),
            (2, "include", Some(Path::new("f g.rs")), &anchor("x")),
            (2, "title", None, &Selection::Whole),
        ]
    );
}

// ---------------------------------------------------------------------------
// Generated diffs and file trees
// ---------------------------------------------------------------------------

/// One stage of the tutorial: `steps/<dir>`, package `<package>`.
#[derive(Debug, Clone)]
struct Step {
    dir: String,
    package: String,
}

/// The step directories, in order: `steps/step-01-...`, `steps/step-02-...`.
fn steps(root: &Path) -> Vec<Step> {
    let mut steps: Vec<Step> = fs::read_dir(root.join("steps"))
        .expect("read steps/")
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.join("Cargo.toml").is_file())
        .map(|path| {
            let dir = path.file_name().unwrap().to_string_lossy().into_owned();
            let manifest = fs::read_to_string(path.join("Cargo.toml")).unwrap();
            let package = manifest_value(&manifest, "name")
                .unwrap_or_else(|| panic!("steps/{dir}/Cargo.toml has no package name"));
            Step { dir, package }
        })
        .collect();
    steps.sort_by(|a, b| a.dir.cmp(&b.dir));
    steps
}

/// `name = "step-01"` -> `step-01`, for a key of the `[package]` table.
fn manifest_value(manifest: &str, key: &str) -> Option<String> {
    let mut in_package = false;
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_package = line == "[package]";
        } else if in_package
            && let Some((name, value)) = line.split_once('=')
            && name.trim() == key
        {
            return Some(value.trim().trim_matches('"').to_string());
        }
    }
    None
}

/// The files of a step, relative to its directory, in the order `diff -r`
/// visits them. Snapshots are left out: they are test data, not the lesson.
fn step_files(dir: &Path) -> BTreeSet<PathBuf> {
    let mut files = BTreeSet::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        for entry in fs::read_dir(&current).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                if name != "snapshots" && name != "target" {
                    pending.push(path);
                }
            } else if !name.ends_with(".snap.new") && !name.ends_with(".pending-snap") {
                files.insert(path.strip_prefix(dir).unwrap().to_path_buf());
            }
        }
    }
    files
}

/// The unified diff from step `old` to step `new`, file by file.
fn diff_steps(root: &Path, old: &Step, new: &Step) -> String {
    let old_dir = root.join("steps").join(&old.dir);
    let new_dir = root.join("steps").join(&new.dir);
    let old_files = step_files(&old_dir);
    let new_files = step_files(&new_dir);
    let mut output = String::new();
    for file in old_files.union(&new_files) {
        let old_label = format!("steps/{}/{}", old.dir, slashed(file));
        let new_label = format!("steps/{}/{}", new.dir, slashed(file));
        let old_bytes = old_files
            .contains(file)
            .then(|| fs::read(old_dir.join(file)).unwrap());
        let new_bytes = new_files
            .contains(file)
            .then(|| fs::read(new_dir.join(file)).unwrap());
        if old_bytes == new_bytes || renamed_only(old, new, &old_bytes, &new_bytes) {
            continue;
        }
        let old_text = old_bytes.as_deref().map(std::str::from_utf8);
        let new_text = new_bytes.as_deref().map(std::str::from_utf8);
        let (old_text, new_text) = match (old_text, new_text) {
            (Some(Err(_)), _) | (_, Some(Err(_))) => {
                output.push_str(&format!(
                    "Binary files {old_label} and {new_label} differ\n"
                ));
                continue;
            }
            (old_text, new_text) => (old_text.map(Result::unwrap), new_text.map(Result::unwrap)),
        };
        let old_label = if old_text.is_some() {
            old_label
        } else {
            "/dev/null".into()
        };
        let new_label = if new_text.is_some() {
            new_label
        } else {
            "/dev/null".into()
        };
        output.push_str(&unified_diff(
            &old_label,
            &new_label,
            old_text.unwrap_or(""),
            new_text.unwrap_or(""),
        ));
    }
    output
}

/// Whether two versions of a file differ only by the package name
/// (`step-01` -> `step-02`, `step_01` -> `step_02`).
fn renamed_only(
    old: &Step,
    new: &Step,
    old_bytes: &Option<Vec<u8>>,
    new_bytes: &Option<Vec<u8>>,
) -> bool {
    let (Some(old_bytes), Some(new_bytes)) = (old_bytes, new_bytes) else {
        return false;
    };
    let (Ok(old_text), Ok(new_text)) = (
        std::str::from_utf8(old_bytes),
        std::str::from_utf8(new_bytes),
    ) else {
        return false;
    };
    let renamed = old_text.replace(&old.package, &new.package).replace(
        &old.package.replace('-', "_"),
        &new.package.replace('-', "_"),
    );
    renamed == new_text
}

/// `diff -u` of two texts, without timestamps; empty if they are equal.
///
/// The diff is the `similar` crate's (Myers, then its compaction), with
/// `diff -u`'s format: three lines of context, `@@ -5,7 +5,8 @@` headers,
/// `\ No newline at end of file`. Where a change could equally sit a line
/// earlier or later (an added function between two others that end alike),
/// `similar` may place it otherwise than GNU diff does: the lines changed
/// are the same.
fn unified_diff(old_label: &str, new_label: &str, old: &str, new: &str) -> String {
    if old == new {
        return String::new();
    }
    similar::TextDiff::configure()
        .algorithm(similar::Algorithm::Myers)
        .diff_lines(old, new)
        .unified_diff()
        .context_radius(CONTEXT)
        .header(old_label, new_label)
        .to_string()
}

/// `steps/<dir>/` as a tree, each file with the first line of what it says
/// about itself: a `//!` line, a manifest's `description`, an HTML `<title>`.
fn file_tree(root: &Path, step: &Step) -> String {
    let dir = root.join("steps").join(&step.dir);
    let mut lines: Vec<(String, String)> = vec![(format!("steps/{}/", step.dir), String::new())];
    tree_lines(&dir, "", &mut lines);
    let width = lines
        .iter()
        .filter(|(_, about)| !about.is_empty())
        .map(|(name, _)| name.chars().count())
        .max()
        .unwrap_or(0);
    let mut output = String::new();
    for (name, about) in lines {
        if about.is_empty() {
            output.push_str(&format!("{name}\n"));
        } else {
            let padding = width - name.chars().count();
            output.push_str(&format!("{name}{}  {about}\n", " ".repeat(padding)));
        }
    }
    output
}

fn tree_lines(dir: &Path, indent: &str, lines: &mut Vec<(String, String)>) {
    let mut entries: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            let name = path.file_name().unwrap().to_string_lossy();
            name != "target" && !name.ends_with(".snap.new") && !name.ends_with(".pending-snap")
        })
        .collect();
    entries.sort();
    for (index, path) in entries.iter().enumerate() {
        let last = index + 1 == entries.len();
        let name = path.file_name().unwrap().to_string_lossy();
        let branch = if last { "└── " } else { "├── " };
        if path.is_dir() && name == "snapshots" {
            // Listed, not counted: a new snapshot should not stale the book.
            let about = "what the tests expect (see `cargo insta review`)".to_string();
            lines.push((format!("{indent}{branch}{name}/"), about));
        } else if path.is_dir() {
            lines.push((format!("{indent}{branch}{name}/"), String::new()));
            let deeper = format!("{indent}{}", if last { "    " } else { "│   " });
            tree_lines(path, &deeper, lines);
        } else {
            let about = fs::read_to_string(path).map(|text| self_description(&name, &text));
            lines.push((format!("{indent}{branch}{name}"), about.unwrap_or_default()));
        }
    }
}

fn self_description(name: &str, text: &str) -> String {
    if name == "Cargo.toml" {
        return manifest_value(text, "description").unwrap_or_default();
    }
    if name.ends_with(".rs") {
        let first_doc_line = text.lines().find_map(|line| line.strip_prefix("//!"));
        return first_doc_line.unwrap_or("").trim().to_string();
    }
    if name.ends_with(".html")
        && let Some((_, after)) = text.split_once("<title>")
        && let Some((title, _)) = after.split_once("</title>")
    {
        return title.trim().to_string();
    }
    String::new()
}

/// Every generated file of the book, by path relative to `book/src`.
fn generated_files(root: &Path) -> BTreeMap<PathBuf, String> {
    let steps = steps(root);
    let mut files = BTreeMap::new();
    for step in &steps {
        files.insert(
            Path::new("trees").join(format!("{}.tree", step.dir)),
            file_tree(root, step),
        );
    }
    for pair in steps.windows(2) {
        files.insert(
            Path::new("diffs").join(format!("{}.diff", pair[1].dir)),
            diff_steps(root, &pair[0], &pair[1]),
        );
    }
    files.extend(pages::generated_hunks(root).0);
    files.extend(runs::generated_runs());
    files
}

/// The generated files now in `book/src/{diffs,trees}`.
fn files_on_disk(book_src: &Path) -> BTreeMap<PathBuf, String> {
    let mut files = BTreeMap::new();
    for (dir, extension) in [("diffs", "diff"), ("trees", "tree")] {
        let Ok(entries) = fs::read_dir(book_src.join(dir)) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|x| x == extension) {
                let relative = Path::new(dir).join(path.file_name().unwrap());
                files.insert(relative, fs::read_to_string(&path).unwrap_or_default());
            }
        }
    }
    files.extend(pages::hunks_on_disk(book_src));
    files.extend(runs::runs_on_disk(book_src));
    files
}

#[test]
fn book_diffs_are_fresh() {
    let root = repo_root();
    let book_src = book_src();
    let expected = generated_files(&root);
    let actual = files_on_disk(&book_src);

    if std::env::var_os("UPDATE_BOOK_DIFFS").is_some() {
        for (path, text) in &expected {
            let target = book_src.join(path);
            fs::create_dir_all(target.parent().unwrap()).unwrap();
            if actual.get(path) != Some(text) {
                fs::write(&target, text).unwrap();
                println!("wrote {}", shown(&target));
            }
        }
        for path in actual.keys().filter(|path| !expected.contains_key(*path)) {
            fs::remove_file(book_src.join(path)).unwrap();
            println!("removed {}", shown(&book_src.join(path)));
        }
        return;
    }

    let mut problems = pages::generated_hunks(&root).1;
    for (path, text) in &expected {
        let shown_path = shown(&book_src.join(path));
        match actual.get(path) {
            None => problems.push(format!("{shown_path} is missing")),
            Some(on_disk) if on_disk != text => {
                problems.push(format!("{shown_path} is out of date with steps/"))
            }
            Some(_) => {}
        }
    }
    for path in actual.keys().filter(|path| !expected.contains_key(*path)) {
        problems.push(format!(
            "{} belongs to no step (or pair of steps)",
            shown(&book_src.join(path))
        ));
    }
    fail_with(
        &problems,
        &format!(
            "The book's diffs and file trees are generated from steps/. Refresh them with:\n\n    {REFRESH_COMMAND}\n"
        ),
    );
}

/// The chapters listed in SUMMARY.md: `chNN-*.md` files.
fn chapters(book_src: &Path) -> Vec<PathBuf> {
    let summary = fs::read_to_string(book_src.join("SUMMARY.md")).expect("book/src/SUMMARY.md");
    summary
        .lines()
        .filter_map(|line| {
            let target = line.split_once("](")?.1.split_once(')')?.0;
            let name = Path::new(target).file_name()?.to_str()?;
            (name.starts_with("ch") && name.ends_with(".md")).then(|| book_src.join(target))
        })
        .collect()
}

#[test]
fn chapters_open_with_their_step() {
    let root = repo_root();
    let book_src = book_src();
    let steps = steps(&root);
    let chapters = chapters(&book_src);
    assert!(
        !chapters.is_empty(),
        "SUMMARY.md lists no chNN-*.md chapter"
    );
    let mut problems = Vec::new();
    for chapter in chapters {
        let name = chapter.file_name().unwrap().to_string_lossy().into_owned();
        let number = name
            .trim_start_matches("ch")
            .split('-')
            .next()
            .unwrap_or("");
        let Some(position) = steps
            .iter()
            .position(|step| step.dir.starts_with(&format!("step-{number}-")))
        else {
            problems.push(format!(
                "{name}: there is no steps/step-{number}-* directory"
            ));
            continue;
        };
        let step = &steps[position];
        let Ok(text) = fs::read_to_string(&chapter) else {
            problems.push(format!("{name}: listed in SUMMARY.md but missing"));
            continue;
        };
        // The first line of text after the chapter's `# Title`.
        let opening = text
            .lines()
            .skip_while(|line| !line.starts_with("# "))
            .skip(1)
            .find(|line| !line.trim().is_empty())
            .unwrap_or("");
        for needed in [
            format!("steps/{}", step.dir),
            format!("cargo run -p {}", step.package),
        ] {
            if !opening.contains(&needed) {
                problems.push(format!(
                    "{name}: the opening line should name `{needed}`; it is: {opening}"
                ));
            }
        }
        if position > 0 {
            // The full diff has a page of its own, the chapter's last.
            let stem = name.trim_end_matches(".md");
            let diff_page = format!("{stem}/the-full-diff.md");
            let summary = fs::read_to_string(book_src.join("SUMMARY.md")).unwrap();
            if !summary.contains(&format!("]({diff_page})")) {
                problems.push(format!(
                    "SUMMARY.md: {name} needs a sub-chapter ({diff_page})"
                ));
            }
            let include = format!("{{{{#include ../diffs/{}.diff}}}}", step.dir);
            let diff_text = fs::read_to_string(book_src.join(&diff_page)).unwrap_or_default();
            if !diff_text.contains(&include) {
                problems.push(format!("{diff_page}: should hold the full diff: {include}"));
            }
            if !opening.contains(&format!("({diff_page})")) {
                problems.push(format!(
                    "{name}: the opening line should link to [the full diff]({diff_page})"
                ));
            }
        }
    }
    fail_with(
        &problems,
        "See book/src/ch02-handshake.md for the shape of a chapter.",
    );
}

/// The tables of stages in the README and the introduction name every step.
#[test]
fn readme_and_introduction_list_every_step() {
    let root = repo_root();
    let mut problems = Vec::new();
    for document in ["README.md", "book/src/introduction.md"] {
        let text = fs::read_to_string(root.join(document)).unwrap();
        for step in steps(&root) {
            for needed in [
                format!("`steps/{}`", step.dir),
                format!("`{}`", step.package),
            ] {
                if !text.contains(&needed) {
                    problems.push(format!("{document} does not mention {needed}"));
                }
            }
        }
    }
    fail_with(&problems, "Add the new stage to the tables of stages.");
}

#[test]
fn diff_matches_gnu_diff_on_known_cases() {
    // Expected outputs checked against GNU diffutils 3.8 `diff -u`.
    let old = "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\nk\nl\nm\n";
    let new = "a\nB\nc\nd\ne\nf\ng\nh\ni\nj\nk\nL\nm\n";
    assert_eq!(
        unified_diff("old", "new", old, new),
        "--- old\n+++ new\n@@ -1,5 +1,5 @@\n a\n-b\n+B\n c\n d\n e\n@@ -9,5 +9,5 @@\n i\n j\n k\n-l\n+L\n m\n"
    );
    // Changes six lines apart share one hunk.
    let new = "a\nB\nc\nd\ne\nf\ng\nh\nI\nj\nk\nl\nm\n";
    assert_eq!(
        unified_diff("old", "new", old, new),
        "--- old\n+++ new\n@@ -1,12 +1,12 @@\n a\n-b\n+B\n c\n d\n e\n f\n g\n h\n-i\n+I\n j\n k\n l\n"
    );
    // A new file, a removed one, a single line, a missing final newline.
    assert_eq!(
        unified_diff("/dev/null", "new", "", "x\ny\n"),
        "--- /dev/null\n+++ new\n@@ -0,0 +1,2 @@\n+x\n+y\n"
    );
    assert_eq!(
        unified_diff("old", "/dev/null", "x\n", ""),
        "--- old\n+++ /dev/null\n@@ -1 +0,0 @@\n-x\n"
    );
    assert_eq!(
        unified_diff("old", "new", "x\ny", "x\ny\n"),
        "--- old\n+++ new\n@@ -1,2 +1,2 @@\n x\n-y\n\\ No newline at end of file\n+y\n"
    );
    // An added function between two others slides down, as GNU diff puts it:
    // after the blank line that follows the first one.
    let old = "fn a() {\n}\n\nfn c() {\n}\n";
    let new = "fn a() {\n}\n\nfn b() {\n}\n\nfn c() {\n}\n";
    assert_eq!(
        unified_diff("old", "new", old, new),
        "--- old\n+++ new\n@@ -1,5 +1,8 @@\n fn a() {\n }\n \n+fn b() {\n+}\n+\n fn c() {\n }\n"
    );
    assert_eq!(unified_diff("old", "new", old, old), "");
}
