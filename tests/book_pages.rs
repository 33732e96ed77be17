//! Checks on the shape of the book's pages, a module of `book.rs`:
//!
//! - `pages_are_one_sitting`: no page has more than [`MAX_PROSE_WORDS`] words
//!   of prose (code blocks are not counted).
//! - `listings_say_where_they_live`: every `rust` code block, and every
//!   block that shows a change (a hunk, below), is introduced by a caption
//!   line that names its file and its item:
//!
//!   ```text
//!   <span class="caption">`steps/step-04-game-loop/src/client.rs`, `Client::receive`</span>
//!   ```
//!
//!   The file must be the one the block includes.
//! - Hunks: `{{#include hunks/STEP/PATH.ANCHOR.diff}}`, with the path's `/`
//!   written as `--` (`hunks/step-04-game-loop/src--client.rs.read_frames.diff`),
//!   is the change of that anchor's region of that file from the step before
//!   to STEP. Every hunk the book includes is generated with the diffs and
//!   trees (and checked fresh by `book_diffs_are_fresh`).

use super::*;

/// The longest a page may be, in words of prose: about twenty minutes of
/// reading, one sitting.
pub const MAX_PROSE_WORDS: usize = 3000;

/// The words of a page that are not in a fenced code block.
pub fn prose_words(markdown: &str) -> usize {
    let mut in_block = false;
    let mut words = 0;
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            in_block = !in_block;
            continue;
        }
        if !in_block {
            words += line.split_whitespace().count();
        }
    }
    words
}

/// The pages of the book: every Markdown file but the summary and the
/// generated ones.
fn pages(book_src: &Path) -> Vec<PathBuf> {
    markdown_files(book_src)
        .into_iter()
        .filter(|path| path.file_name().is_some_and(|name| name != "SUMMARY.md"))
        .collect()
}

#[test]
fn pages_are_one_sitting() {
    let book_src = book_src();
    let mut problems = Vec::new();
    for page in pages(&book_src) {
        let words = prose_words(&fs::read_to_string(&page).unwrap());
        if words > MAX_PROSE_WORDS {
            problems.push(format!(
                "{}: {words} words of prose, over {MAX_PROSE_WORDS}",
                shown(&page)
            ));
        }
    }
    fail_with(
        &problems,
        "Split the page into sub-chapters in SUMMARY.md, each answering one question.",
    );
}

/// `<span class="caption">`FILE`, ITEM</span>` -> (FILE, ITEM).
fn parse_caption(line: &str) -> Option<(&str, &str)> {
    let inner = line
        .trim()
        .strip_prefix("<span class=\"caption\">`")?
        .strip_suffix("</span>")?;
    let (file, item) = inner.split_once("`, ")?;
    // The item names something in code: it has a `name` of its own.
    (item.matches('`').count() >= 2).then_some((file, item))
}

/// The file a code block shows, relative to the repository root: the target
/// of its first include, or for a hunk, the file of the step it is in.
fn shown_file(markdown_path: &Path, block: &CodeBlock) -> Option<String> {
    let directives = find_directives(&block.content.join("\n"));
    let directive = directives.iter().find(|d| d.kind == "include")?;
    let path = directive.path.as_ref()?;
    if let Some(hunk) = Hunk::from_include(markdown_path, path) {
        return Some(format!("steps/{}/{}", hunk.step, hunk.file));
    }
    let directory = markdown_path.parent().unwrap_or(Path::new(""));
    let target = normalize(&directory.join(path));
    let root = normalize(&repo_root());
    Some(slashed(target.strip_prefix(&root).unwrap_or(&target)))
}

/// Whether a block must have a caption: Rust code, and changes shown as hunks.
fn needs_caption(block: &CodeBlock) -> bool {
    let language = block.info.split([' ', ',']).next().unwrap_or("");
    let shows_hunk = block.content.iter().any(|line| line.contains("hunks/"));
    language == "rust" || (language == "diff" && shows_hunk)
}

/// The captions that are missing, wrong, or name another file.
pub fn check_captions(markdown_path: &Path, markdown: &str) -> Vec<String> {
    let lines: Vec<&str> = markdown.lines().collect();
    let mut problems = Vec::new();
    for block in code_blocks(markdown) {
        if !needs_caption(&block) {
            continue;
        }
        let place = format!("{}:{}", shown(markdown_path), block.line);
        // The last line with text before the fence (`block.line` is 1-based).
        let before = lines[..block.line - 1]
            .iter()
            .rev()
            .find(|line| !line.trim().is_empty())
            .copied()
            .unwrap_or("");
        let Some((file, _item)) = parse_caption(before) else {
            problems.push(format!(
                "{place}: the block needs a caption line right before it, \
                 <span class=\"caption\">`FILE`, `ITEM`</span>; found: {before:?}"
            ));
            continue;
        };
        if let Some(shown_file) = shown_file(markdown_path, &block)
            && shown_file != file
        {
            problems.push(format!(
                "{place}: the caption names `{file}`, but the block shows `{shown_file}`"
            ));
        }
    }
    problems
}

#[test]
fn listings_say_where_they_live() {
    let mut problems = Vec::new();
    for page in pages(&book_src()) {
        let markdown = fs::read_to_string(&page).unwrap();
        problems.extend(check_captions(&page, &markdown));
    }
    fail_with(
        &problems,
        "Every listing says which file and which item it comes from, like the Rust book's captions.",
    );
}

/// The checks above must be able to fail.
#[test]
fn the_page_checks_find_every_kind_of_mistake() {
    assert_eq!(prose_words("one two\n```rust\nnot counted\n```\nthree"), 3);
    let page = &book_src().join("example.md");
    let markdown = "\
Text.

```rust
{{#include ../../steps/step-01-http-echo/src/lib.rs:serve}}
```

<span class=\"caption\">`steps/step-01-http-echo/src/http.rs`, `read_request`</span>

```rust
{{#include ../../steps/step-01-http-echo/src/lib.rs:serve}}
```

<span class=\"caption\">`steps/step-01-http-echo/src/lib.rs`, serve</span>
```rust
{{#include ../../steps/step-01-http-echo/src/lib.rs:serve}}
```

<span class=\"caption\">`steps/step-04-game-loop/src/lib.rs`, `serve`</span>

```diff
{{#include hunks/step-04-game-loop/src--client.rs.receive.diff}}
```

<span class=\"caption\">`steps/step-01-http-echo/src/lib.rs`, `serve`</span>
```rust
{{#include ../../steps/step-01-http-echo/src/lib.rs:serve}}
```

```console
$ no caption needed
```
";
    let problems = check_captions(page, markdown);
    assert_eq!(problems.len(), 4, "{problems:#?}");
    assert!(problems[0].contains("example.md:3: the block needs a caption"));
    assert!(problems[1].contains("names `steps/step-01-http-echo/src/http.rs`"));
    assert!(
        problems[2].contains("example.md:14: the block needs a caption"),
        "{}",
        problems[2]
    );
    assert!(problems[3].contains("shows `steps/step-04-game-loop/src/client.rs`"));
}

// ---------------------------------------------------------------------------
// Hunks: one anchor's change from the step before
// ---------------------------------------------------------------------------

/// `hunks/step-04-game-loop/src--client.rs.read_frames.diff`: the change of
/// anchor `read_frames` of `src/client.rs`, from the step before to step 04.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Hunk {
    pub step: String,
    pub file: String,
    pub anchor: String,
}

impl Hunk {
    /// The hunk that an include in the page `markdown_path` names, if it
    /// names one: `hunks/...` from `book/src`, `../hunks/...` from a folder.
    pub fn from_include(markdown_path: &Path, path: &Path) -> Option<Hunk> {
        let directory = markdown_path.parent().unwrap_or(Path::new(""));
        let target = normalize(&directory.join(path));
        let book_src = normalize(&book_src());
        let text = slashed(target.strip_prefix(&book_src).unwrap_or(path));
        let rest = text.strip_prefix("hunks/")?;
        let (step, name) = rest.split_once('/')?;
        let (file, anchor) = name.strip_suffix(".diff")?.rsplit_once('.')?;
        Some(Hunk {
            step: step.to_string(),
            file: file.replace("--", "/"),
            anchor: anchor.to_string(),
        })
    }

    /// Where the hunk is written, relative to `book/src`.
    pub fn path(&self) -> PathBuf {
        Path::new("hunks").join(&self.step).join(format!(
            "{}.{}.diff",
            self.file.replace('/', "--"),
            self.anchor
        ))
    }
}

/// The lines of an anchor's region as mdBook includes them: without the
/// anchor lines themselves, nested ones included. `None` if there is no such
/// anchor.
fn anchor_region(text: &str, anchor: &str) -> Option<String> {
    let mut region = String::new();
    let mut inside = false;
    for line in text.split_inclusive('\n') {
        if anchor_on_line(line, "ANCHOR_END:") == Some(anchor) && inside {
            return Some(region);
        }
        if anchor_on_line(line, "ANCHOR:") == Some(anchor) {
            inside = true;
        } else if inside && !is_anchor_line(line) {
            region.push_str(line);
        }
    }
    None
}

/// The change of one anchor's region from the step before to `hunk.step`.
fn hunk_text(root: &Path, steps: &[Step], hunk: &Hunk) -> Result<String, String> {
    let position = steps
        .iter()
        .position(|step| step.dir == hunk.step)
        .ok_or_else(|| format!("there is no steps/{}", hunk.step))?;
    let new_path = format!("steps/{}/{}", hunk.step, hunk.file);
    let new_text =
        fs::read_to_string(root.join(&new_path)).map_err(|_| format!("there is no {new_path}"))?;
    let new_region = anchor_region(&new_text, &hunk.anchor)
        .ok_or_else(|| format!("{new_path} has no anchor {}", hunk.anchor))?;
    let (old_path, old_region) = match position.checked_sub(1) {
        Some(before) => {
            let old_path = format!("steps/{}/{}", steps[before].dir, hunk.file);
            let old_text = fs::read_to_string(root.join(&old_path)).unwrap_or_default();
            (
                old_path,
                anchor_region(&old_text, &hunk.anchor).unwrap_or_default(),
            )
        }
        None => ("/dev/null".to_string(), String::new()),
    };
    let diff = unified_diff(
        &format!("{old_path} ({})", hunk.anchor),
        &format!("{new_path} ({})", hunk.anchor),
        &old_region,
        &new_region,
    );
    if diff.is_empty() {
        return Err(format!(
            "{new_path}: anchor {} is the same as in the step before: there is no change to show",
            hunk.anchor
        ));
    }
    // Line numbers would count from the start of the region, not of the
    // file: the reader has the names instead.
    let diff = diff
        .lines()
        .map(|line| if line.starts_with("@@ ") { "@@" } else { line })
        .collect::<Vec<_>>()
        .join("\n");
    Ok(diff + "\n")
}

/// Every hunk the book includes, generated; or what is wrong with a name.
pub fn generated_hunks(root: &Path) -> (BTreeMap<PathBuf, String>, Vec<String>) {
    let steps = steps(root);
    let mut files = BTreeMap::new();
    let mut problems = Vec::new();
    for page in pages(&book_src()) {
        let markdown = fs::read_to_string(&page).unwrap();
        for directive in find_directives(&markdown) {
            let hunk = directive
                .path
                .as_deref()
                .and_then(|path| Hunk::from_include(&page, path));
            let Some(hunk) = hunk else {
                continue;
            };
            match hunk_text(root, &steps, &hunk) {
                Ok(text) => {
                    files.insert(hunk.path(), text);
                }
                Err(problem) => problems.push(format!("{}: {problem}", shown(&page))),
            }
        }
    }
    (files, problems)
}

/// The hunks now in `book/src/hunks`.
pub fn hunks_on_disk(book_src: &Path) -> BTreeMap<PathBuf, String> {
    let mut files = BTreeMap::new();
    let Ok(steps) = fs::read_dir(book_src.join("hunks")) else {
        return files;
    };
    for step in steps {
        let step = step.unwrap().path();
        for entry in fs::read_dir(&step).into_iter().flatten() {
            let path = entry.unwrap().path();
            let relative = path.strip_prefix(book_src).unwrap().to_path_buf();
            files.insert(relative, fs::read_to_string(&path).unwrap_or_default());
        }
    }
    files
}

#[test]
fn hunk_names_and_regions() {
    let page = book_src().join("ch04-game-loop/example.md");
    let include = Path::new("../hunks/step-04-game-loop/src--client.rs.read_frames.diff");
    let hunk = Hunk::from_include(&page, include).unwrap();
    assert_eq!(hunk.step, "step-04-game-loop");
    assert_eq!(hunk.file, "src/client.rs");
    assert_eq!(hunk.anchor, "read_frames");
    assert_eq!(
        hunk.path(),
        Path::new("hunks/step-04-game-loop/src--client.rs.read_frames.diff")
    );
    assert_eq!(
        Hunk::from_include(&page, Path::new("../diffs/step-04.diff")),
        None
    );
    let text = "a\n// ANCHOR: x\nb\n// ANCHOR: y\nc\n// ANCHOR_END: y\n// ANCHOR_END: x\nd\n";
    assert_eq!(anchor_region(text, "x").as_deref(), Some("b\nc\n"));
    assert_eq!(anchor_region(text, "y").as_deref(), Some("c\n"));
    assert_eq!(anchor_region(text, "z"), None);
}

// ---------------------------------------------------------------------------
// Links between pages
// ---------------------------------------------------------------------------

/// The lines of a page that are not in a fenced code block.
fn prose_lines(markdown: &str) -> Vec<&str> {
    let mut in_block = false;
    let mut lines = Vec::new();
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            in_block = !in_block;
        } else if !in_block {
            lines.push(line);
        }
    }
    lines
}

/// The ids mdBook gives a page's headings: lowercase, spaces as `-`, only
/// letters, digits, `-` and `_` kept; a repeated id gets `-1`, `-2`, ...
fn heading_ids(markdown: &str) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    for line in prose_lines(markdown) {
        let Some(title) = line.trim_start_matches('#').strip_prefix(' ') else {
            continue;
        };
        if !line.starts_with('#') {
            continue;
        }
        let id: String = title
            .trim()
            .to_lowercase()
            .chars()
            .filter_map(|c| match c {
                c if c.is_alphanumeric() || c == '_' || c == '-' => Some(c),
                c if c.is_whitespace() => Some('-'),
                _ => None,
            })
            .collect();
        let mut unique = id.clone();
        let mut count = 1;
        while ids.contains(&unique) {
            unique = format!("{id}-{count}");
            count += 1;
        }
        ids.insert(unique);
    }
    ids
}

/// The targets of the Markdown links and images of a page: `](target)`.
fn link_targets(markdown: &str) -> Vec<String> {
    let mut targets = Vec::new();
    for line in prose_lines(markdown) {
        let mut rest = line;
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let Some(end) = after.find(')') else { break };
            targets.push(after[..end].to_string());
            rest = &after[end..];
        }
    }
    targets
}

/// Links to a page or a section that does not exist.
pub fn check_links(
    page: &Path,
    markdown: &str,
    read: &dyn Fn(&Path) -> Option<String>,
) -> Vec<String> {
    let mut problems = Vec::new();
    for target in link_targets(markdown) {
        if target.contains("://") || target.starts_with("mailto:") {
            continue;
        }
        let (path, anchor) = match target.split_once('#') {
            Some((path, anchor)) => (path, Some(anchor)),
            None => (target.as_str(), None),
        };
        let file = if path.is_empty() {
            page.to_path_buf()
        } else {
            normalize(&page.parent().unwrap_or(Path::new("")).join(path))
        };
        let Some(text) = read(&file) else {
            problems.push(format!(
                "{}: a link to {target}: there is no {}",
                shown(page),
                shown(&file)
            ));
            continue;
        };
        if let Some(anchor) = anchor
            && file.extension().is_some_and(|x| x == "md")
            && !heading_ids(&text).contains(anchor)
        {
            problems.push(format!(
                "{}: a link to {target}: {} has no heading #{anchor}",
                shown(page),
                shown(&file)
            ));
        }
    }
    problems
}

#[test]
fn links_between_pages_resolve() {
    let mut problems = Vec::new();
    let read = |path: &Path| {
        fs::read_to_string(path)
            .ok()
            .or_else(|| fs::metadata(path).ok().map(|_| String::new()))
    };
    for page in pages(&book_src()) {
        let markdown = fs::read_to_string(&page).unwrap();
        problems.extend(check_links(&page, &markdown, &read));
    }
    fail_with(
        &problems,
        "Pages moved: point each link at the page (and heading) that holds it now.",
    );
}

#[test]
fn the_link_checker_finds_broken_links() {
    let page = book_src().join("ch09-x/a.md");
    let markdown = "# Top\n## Two words, here\n[ok](#two-words-here) [ok](b.md#b) [bad](#nope)\n[bad](c.md) [bad](b.md#nope) ![ok](../images/x.svg) [web](https://x.org/#y)\n```text\n[not a link](nowhere.md)\n```\n";
    let read = |path: &Path| match path.file_name()?.to_str()? {
        "a.md" => Some(markdown.to_string()),
        "b.md" => Some("# B\n".to_string()),
        "x.svg" => Some(String::new()),
        _ => None,
    };
    let problems = check_links(&page, markdown, &read);
    assert_eq!(problems.len(), 3, "{problems:#?}");
    assert!(problems[0].contains("no heading #nope"));
    assert!(problems[1].contains("a link to c.md"));
    assert!(problems[2].contains("b.md#nope"));
}
