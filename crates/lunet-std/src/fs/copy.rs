//! `fs.copy`: a file, or a directory with everything in it, to a new path.
//!
//! Runs as one blocking task. A directory's tree is listed completely before
//! anything is written, so copying a directory into itself copies what was there,
//! once. Symbolic links inside a copied directory are copied as links (on Unix),
//! not followed, so a link cycle cannot make the copy endless; Lune follows them.
//! Copying a path onto itself is refused (it would empty the file, or with
//! `overwrite` delete the directory being copied).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::{failure as failed, is_missing};

/// A failure, as the message the script will see.
type Result<T> = std::result::Result<T, String>;

/// What a copied directory holds, relative to it, parents before children.
enum Entry {
    Dir(PathBuf),
    File(PathBuf),
    Link(PathBuf),
}

fn lune_error(message: String) -> String {
    format!("fs.copy failed: {message}")
}

/// What is at `path` without following a final link, or None.
fn existing(path: &Path) -> Result<Option<fs::Metadata>> {
    match fs::symlink_metadata(path) {
        Ok(meta) => Ok(Some(meta)),
        Err(e) if is_missing(&e) => Ok(None),
        Err(e) => Err(failed("copy", path, e)),
    }
}

pub(super) fn copy(from: &Path, to: &Path, overwrite: bool) -> Result<()> {
    let source = match fs::metadata(from) {
        Ok(meta) => meta,
        Err(e) if is_missing(&e) => {
            return Err(lune_error(format!(
                "No file or directory exists at the path '{}'",
                from.display()
            )));
        }
        Err(e) => return Err(failed("copy", from, e)),
    };
    let target = existing(to)?;
    if let Some(target) = &target {
        let (same, inside) = match (fs::canonicalize(from), fs::canonicalize(to)) {
            (Ok(a), Ok(b)) => (a == b, a.starts_with(&b)),
            _ => (false, false),
        };
        if same {
            return Err(lune_error(format!(
                "'{}' and '{}' are the same path",
                from.display(),
                to.display()
            )));
        }
        // Overwriting a folder that holds the source would delete the source first.
        if inside && overwrite {
            return Err(lune_error(format!(
                "'{}' is inside '{}', which overwriting would delete",
                from.display(),
                to.display()
            )));
        }
        if !overwrite {
            let what = if target.is_dir() {
                "A directory"
            } else {
                "A file"
            };
            return Err(lune_error(format!(
                "{what} already exists at the path '{}'",
                to.display()
            )));
        }
    }

    if !source.is_dir() {
        fs::copy(from, to).map_err(|e| failed("copy", to, e))?;
        return Ok(());
    }

    let mut entries = Vec::new();
    list(from, Path::new(""), &mut entries)?;
    if let Some(target) = target {
        if target.is_dir() {
            fs::remove_dir_all(to)
        } else {
            fs::remove_file(to)
        }
        .map_err(|e| failed("copy", to, e))?;
    }
    fs::create_dir_all(to).map_err(|e| failed("copy", to, e))?;
    for entry in entries {
        match entry {
            Entry::Dir(rel) => {
                let dest = to.join(rel);
                fs::create_dir(&dest).map_err(|e| failed("copy", &dest, e))?;
            }
            Entry::File(rel) => {
                let dest = to.join(&rel);
                fs::copy(from.join(rel), &dest).map_err(|e| failed("copy", &dest, e))?;
            }
            Entry::Link(rel) => {
                let dest = to.join(&rel);
                copy_link(&from.join(rel), &dest).map_err(|e| failed("copy", &dest, e))?;
            }
        }
    }
    Ok(())
}

/// Lists `root/rel`'s contents into `entries`, recursively.
fn list(root: &Path, rel: &Path, entries: &mut Vec<Entry>) -> Result<()> {
    let dir = root.join(rel);
    let fail = |e| failed("copy", &dir, e);
    for entry in fs::read_dir(&dir).map_err(fail)? {
        let entry = entry.map_err(fail)?;
        let child = rel.join(entry.file_name());
        let kind = entry
            .file_type()
            .map_err(|e| failed("copy", &entry.path(), e))?;
        if kind.is_dir() {
            entries.push(Entry::Dir(child.clone()));
            list(root, &child, entries)?;
        } else if kind.is_symlink() {
            entries.push(Entry::Link(child));
        } else {
            entries.push(Entry::File(child));
        }
    }
    Ok(())
}

#[cfg(unix)]
fn copy_link(link: &Path, dest: &Path) -> io::Result<()> {
    std::os::unix::fs::symlink(fs::read_link(link)?, dest)
}

#[cfg(not(unix))]
fn copy_link(link: &Path, dest: &Path) -> io::Result<()> {
    // Without Unix symlinks, copy what the link points to (a file).
    fs::copy(link, dest).map(|_| ())
}
