//! A crate of its own, outside the clone, holding a stage's code: where a
//! learner builds the next stage (`grade new step-03 ../my-websocket`), and
//! where the grader's tests make their broken servers.
//!
//! The crate has its own `[workspace]` table, so that Cargo does not look
//! for the clone's workspace; its own package name; concrete versions for
//! its dependencies (the clone's `Cargo.lock` comes along, so that it
//! builds with the versions the book was tested with); and no path back
//! into the clone.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use ws_tests::report::repo_root;
use ws_tests::stages::{STAGES, Stage};

/// Why a crate could not be written.
#[derive(Debug)]
pub enum NewError {
    /// The folder exists and holds something.
    NotEmpty(PathBuf),
    /// The folder is inside the clone, where it would disturb the clone's
    /// workspace, its tests and its `git status`.
    InsideTheClone(PathBuf),
    Io(io::Error),
}

impl std::fmt::Display for NewError {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            NewError::NotEmpty(dir) => write!(
                f,
                "{} exists and is not empty: name a new folder, or an empty one",
                dir.display()
            ),
            NewError::InsideTheClone(dir) => write!(
                f,
                "{} is inside the clone ({}): work outside it, for example in ../my-websocket, \
                 so that the clone's workspace and tests stay as they are",
                dir.display(),
                repo_root().display()
            ),
            NewError::Io(error) => write!(f, "{error}"),
        }
    }
}

impl From<io::Error> for NewError {
    fn from(error: io::Error) -> NewError {
        NewError::Io(error)
    }
}

/// What `grade new` wrote.
pub struct Created {
    pub dir: PathBuf,
    pub package: String,
    /// The stage whose code it holds, if any (none for stage 1).
    pub from: Option<&'static Stage>,
}

/// Writes, in `dir`, a crate to build `stage` in: the code of the stage
/// before it, or for stage 1 a skeleton that listens and answers nothing.
pub fn new_crate(stage: &'static Stage, dir: &Path) -> Result<Created, NewError> {
    check_folder(dir)?;
    let package = package_name(dir, stage);
    let number = stage.number();
    let description = format!(
        "Stage {number} of WebSockets from scratch, to build{}",
        match number {
            1 => String::new(),
            _ => format!(", from the code of stage {}", number - 1),
        }
    );
    let from = (number > 1).then(|| STAGES[number - 2]);
    match from {
        Some(previous) => copy_stage(previous, dir, &package, &description)?,
        None => write_skeleton(dir, &package, &description)?,
    }
    fs::write(dir.join("README.md"), readme(stage, from, &package, dir))?;
    Ok(Created {
        dir: dir.to_path_buf(),
        package,
        from,
    })
}

/// Refuses a folder that holds something, or that is inside the clone.
fn check_folder(dir: &Path) -> Result<(), NewError> {
    if let Ok(mut entries) = fs::read_dir(dir)
        && entries.next().is_some()
    {
        return Err(NewError::NotEmpty(dir.to_path_buf()));
    }
    let root = repo_root().canonicalize()?;
    if absolute(dir)?.starts_with(&root) {
        return Err(NewError::InsideTheClone(dir.to_path_buf()));
    }
    Ok(())
}

/// `dir` as an absolute path with its links resolved, as far as it exists.
pub fn absolute(dir: &Path) -> io::Result<PathBuf> {
    let dir = std::env::current_dir()?.join(dir);
    let mut existing = dir.as_path();
    let mut rest = Vec::new();
    while !existing.exists() {
        rest.push(existing.file_name().unwrap_or_default().to_os_string());
        existing = match existing.parent() {
            Some(parent) => parent,
            None => break,
        };
    }
    let mut absolute = existing.canonicalize()?;
    for part in rest.iter().rev() {
        absolute.push(part);
    }
    Ok(absolute)
}

/// The folder's name if it makes a package name (`my-websocket`), else
/// `my-step-03`.
fn package_name(dir: &Path, stage: &Stage) -> String {
    let name = absolute(dir)
        .ok()
        .and_then(|dir| {
            dir.file_name()
                .map(|name| name.to_string_lossy().into_owned())
        })
        .unwrap_or_default();
    let valid = name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if valid && !name.starts_with("step-") && name != "grade" {
        name
    } else {
        format!("my-{}", stage.package)
    }
}

/// Copies the code of `stage` into `dir` as the package `package`: its
/// `src/` (snapshots renamed for the new crate's name), a manifest of its
/// own, the clone's `Cargo.lock`, a `.gitignore`.
pub fn copy_stage(
    stage: &Stage,
    dir: &Path,
    package: &str,
    description: &str,
) -> Result<(), NewError> {
    let source = repo_root().join(stage.dir);
    let old_crate = stage.package.replace('-', "_");
    let new_crate = package.replace('-', "_");
    for file in files(&source.join("src"))? {
        let relative = file.strip_prefix(&source).unwrap();
        let mut target = dir.join(relative);
        let name = relative.file_name().unwrap().to_string_lossy().into_owned();
        if let Some(rest) = name.strip_prefix(&format!("{old_crate}__")) {
            // insta names snapshots after the crate: `step_02__http__...`.
            target.set_file_name(format!("{new_crate}__{rest}"));
        }
        fs::create_dir_all(target.parent().unwrap())?;
        if name.ends_with(".rs") {
            let text = fs::read_to_string(&file)?
                .replace(&old_crate, &new_crate)
                .replace(&format!("cargo run -p {}", stage.package), "cargo run");
            fs::write(&target, text)?;
        } else {
            fs::copy(&file, &target)?;
        }
    }
    let manifest = fs::read_to_string(source.join("Cargo.toml"))?;
    fs::write(
        dir.join("Cargo.toml"),
        standalone_manifest(&manifest, package, description),
    )?;
    write_common(dir)
}

/// Stage 1's skeleton: the `main.rs` and `log.rs` of stage 1, and a
/// `lib.rs` whose `serve` accepts and drops every connection.
fn write_skeleton(dir: &Path, package: &str, description: &str) -> Result<(), NewError> {
    let stage = STAGES[0];
    let source = repo_root().join(stage.dir);
    let new_crate = package.replace('-', "_");
    fs::create_dir_all(dir.join("src"))?;
    for name in ["main.rs", "log.rs"] {
        let text = fs::read_to_string(source.join("src").join(name))?
            .replace("step_01", &new_crate)
            .replace("cargo run -p step-01", "cargo run");
        fs::write(dir.join("src").join(name), text)?;
    }
    let skeleton = fs::read_to_string(repo_root().join("grade/skeleton/lib.rs"))?;
    fs::write(dir.join("src/lib.rs"), skeleton)?;
    let manifest = fs::read_to_string(source.join("Cargo.toml"))?;
    fs::write(
        dir.join("Cargo.toml"),
        standalone_manifest(&manifest, package, description),
    )?;
    write_common(dir)
}

fn write_common(dir: &Path) -> Result<(), NewError> {
    fs::copy(repo_root().join("Cargo.lock"), dir.join("Cargo.lock"))?;
    fs::write(dir.join(".gitignore"), "/target\n*.snap.new\n")?;
    Ok(())
}

/// Every file under `dir`, sorted.
fn files(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let name = path.file_name().unwrap_or_default().to_string_lossy();
                if !name.ends_with(".snap.new") && !name.ends_with(".pending-snap") {
                    found.push(path);
                }
            }
        }
    }
    found.sort();
    Ok(found)
}

/// A stage's manifest, made standalone: `key.workspace = true` becomes the
/// value the clone's root manifest gives `key`, the name and description
/// are the new crate's, and an empty `[workspace]` table makes it a
/// workspace of its own.
pub fn standalone_manifest(manifest: &str, package: &str, description: &str) -> String {
    let root = fs::read_to_string(repo_root().join("Cargo.toml")).unwrap_or_default();
    let mut out = String::new();
    let mut table = String::new();
    for line in manifest.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            table = trimmed.to_string();
        }
        let key = trimmed.split(['=', '.']).next().unwrap_or("").trim();
        let line = if table == "[package]" && key == "name" {
            format!("name = {package:?}")
        } else if table == "[package]" && key == "description" {
            format!("description = {description:?}")
        } else if let Some(key) = trimmed.strip_suffix(".workspace = true") {
            let from = if table == "[package]" {
                "[workspace.package]"
            } else {
                "[workspace.dependencies]"
            };
            match value_in(&root, from, key) {
                Some(value) => format!("{key} = {value}"),
                None => continue,
            }
        } else {
            line.to_string()
        };
        out.push_str(&line);
        out.push('\n');
    }
    out.push_str(
        "\n# A workspace of its own: this crate is not part of the clone's workspace.\n\
         [workspace]\n",
    );
    out
}

/// The value of `key` in the table `table` of a manifest, as written.
fn value_in(manifest: &str, table: &str, key: &str) -> Option<String> {
    let mut in_table = false;
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_table = line == table;
        } else if in_table
            && let Some((name, value)) = line.split_once('=')
            && name.trim() == key
        {
            return Some(value.trim().to_string());
        }
    }
    None
}

/// What the crate is, and what to do next.
fn readme(stage: &Stage, from: Option<&Stage>, package: &str, dir: &Path) -> String {
    let number = stage.number();
    let manifest = absolute(dir)
        .map(|dir| dir.join("Cargo.toml"))
        .unwrap_or_else(|_| dir.join("Cargo.toml"));
    let start = match from {
        Some(previous) => format!(
            "This crate holds the code of stage {} (`{}` in the clone).",
            previous.number(),
            previous.dir
        ),
        None => "This crate holds a server that listens, and answers nothing yet.".to_string(),
    };
    format!(
        "# {package}\n\n\
         {start} Make it stage {number}: read chapter {number} of the book, \
         `book/src/{chapter}` in the clone (\"{title}\"), and change the code here.\n\n\
         Then, from the clone, grade it: the grader starts it on a free port and runs the \
         checks of stage {number}, in the order the chapter teaches them, and stops at the \
         first that fails, with what it sent, what came back, and what a correct server \
         answers.\n\n\
         ```console\n\
         $ cargo run -p grade -- {stage_name} -- cargo run --manifest-path {manifest} -- {{address}}\n\
         ```\n",
        chapter = stage.chapter,
        title = stage.title,
        stage_name = stage.package,
        manifest = manifest.display(),
    )
}
