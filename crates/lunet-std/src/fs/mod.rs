//! `@lune/fs`: reading, writing, listing, moving, copying and removing files and
//! directories, and their metadata.
//!
//! Every function checks its arguments first (through `lunet_runtime::args`), then
//! does its file work off the Luau thread (tokio's file API, or one blocking task
//! for a whole recursive copy) while the calling Luau thread waits, so other
//! threads keep running during a large read or write
//! ([`lunet_runtime::create_checked_async_function`]).
//!
//! Errors name the function, the path and the OS's reason:
//! `fs.readFile failed for 'missing.txt': No such file or directory (os error 2)`.
//! The checks Lune makes itself keep Lune's sentences, prefixed with the function
//! (`fs.move failed: A file or directory already exists at the path 'b'`), so
//! scripts that match on them still do.
//!
//! Semantics follow Lune where its type definitions and its behaviour disagree:
//! `writeDir` also creates missing parents and succeeds on an existing directory,
//! `removeDir` removes a directory with everything in it, and `metadata`, `isFile`
//! and `isDir` follow symbolic links.

mod copy;
mod metadata;

use std::io;
use std::path::{Path, PathBuf};

use lunet_runtime::{args, create_checked_async_function};
use mlua::{Error, IntoLua, Lua, Result, Value};

use metadata::Metadata;

/// The message for an I/O failure of `function` at `path`.
fn failure(function: &str, path: &Path, error: io::Error) -> String {
    format!("fs.{function} failed for '{}': {error}", path.display())
}

/// The error for an I/O failure of `function` at `path`.
fn failed(function: &str, path: &Path, error: io::Error) -> Error {
    Error::runtime(failure(function, path, error))
}

/// A path argument: any string (on Unix, any bytes).
fn path_arg(value: &Value, field: &str) -> Result<PathBuf> {
    let text = args::string(value, field)?;
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        Ok(PathBuf::from(std::ffi::OsStr::from_bytes(&text.as_bytes())))
    }
    #[cfg(not(unix))]
    {
        Ok(PathBuf::from(text.to_str()?.to_string()))
    }
}

/// The argument field for argument `n` of `fs.<function>`.
fn field(n: u8, function: &str) -> String {
    format!("argument #{n} to 'fs.{function}'")
}

/// The `overwrite` of `move` and `copy`'s third argument: a boolean, a table with
/// an optional boolean `overwrite`, or nil (false).
fn overwrite_arg(value: &Value, function: &str) -> Result<bool> {
    match value {
        Value::Nil => Ok(false),
        Value::Boolean(b) => Ok(*b),
        Value::Table(options) => Ok(args::optional_boolean(
            &options.get::<Value>("overwrite")?,
            "options.overwrite",
        )?
        .unwrap_or(false)),
        other => Err(args::wrong(
            &field(3, function),
            "boolean or table of write options",
            other,
        )),
    }
}

/// A file's contents, made into a Luau string when returned.
struct Contents(Vec<u8>);

impl IntoLua for Contents {
    fn into_lua(self, lua: &Lua) -> Result<Value> {
        lua.create_string(&self.0).map(Value::String)
    }
}

/// True for an error that means "nothing is at this path" (including a path that
/// goes through a file, where Lune raises the OS error instead).
fn is_missing(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    )
}

/// Runs blocking file work on tokio's blocking pool; its error is a message (Luau
/// errors cannot cross threads).
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> std::result::Result<T, String> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Error::runtime(format!("fs: file work stopped: {e}")))?
        .map_err(Error::runtime)
}

pub fn create(lua: &Lua) -> Result<Value> {
    let fs = lua.create_table()?;

    fs.set(
        "readFile",
        create_checked_async_function(lua, "fs.readFile", |_, path: Value| {
            let path = path_arg(&path, &field(1, "readFile"))?;
            Ok(async move {
                use tokio::io::AsyncReadExt;
                let fail = |e| failed("readFile", &path, e);
                let file = tokio::fs::File::open(&path).await.map_err(fail)?;
                // Bounded: an endless file (`/dev/zero`) stops at Luau's string limit.
                let limit = lunet_runtime::codec::compression::MAX_STRING_LEN;
                let mut bytes = Vec::new();
                file.take(limit as u64 + 1)
                    .read_to_end(&mut bytes)
                    .await
                    .map_err(fail)?;
                if bytes.len() > limit {
                    return Err(fail(std::io::Error::other(
                        "the file is larger than 1 GiB, the most a Luau string can hold",
                    )));
                }
                Ok(Contents(bytes))
            })
        })?,
    )?;

    fs.set(
        "readDir",
        create_checked_async_function(lua, "fs.readDir", |_, path: Value| {
            let path = path_arg(&path, &field(1, "readDir"))?;
            Ok(async move {
                let fail = |e| failed("readDir", &path, e);
                let mut names = Vec::new();
                let mut entries = tokio::fs::read_dir(&path).await.map_err(fail)?;
                while let Some(entry) = entries.next_entry().await.map_err(fail)? {
                    let name = entry.file_name().into_string().map_err(|name| {
                        Error::runtime(format!(
                            "fs.readDir failed for '{}': the entry name {name:?} is not valid UTF-8",
                            path.display()
                        ))
                    })?;
                    names.push(name);
                }
                names.sort();
                Ok(names)
            })
        })?,
    )?;

    fs.set(
        "writeFile",
        create_checked_async_function(
            lua,
            "fs.writeFile",
            |_, (path, contents): (Value, Value)| {
                let path = path_arg(&path, &field(1, "writeFile"))?;
                let contents = args::bytes(&contents, &field(2, "writeFile"))?;
                Ok(async move {
                    tokio::fs::write(&path, contents)
                        .await
                        .map_err(|e| failed("writeFile", &path, e))
                })
            },
        )?,
    )?;

    fs.set(
        "writeDir",
        create_checked_async_function(lua, "fs.writeDir", |_, path: Value| {
            let path = path_arg(&path, &field(1, "writeDir"))?;
            Ok(async move {
                tokio::fs::create_dir_all(&path)
                    .await
                    .map_err(|e| failed("writeDir", &path, e))
            })
        })?,
    )?;

    fs.set(
        "removeFile",
        create_checked_async_function(lua, "fs.removeFile", |_, path: Value| {
            let path = path_arg(&path, &field(1, "removeFile"))?;
            Ok(async move {
                tokio::fs::remove_file(&path)
                    .await
                    .map_err(|e| failed("removeFile", &path, e))
            })
        })?,
    )?;

    fs.set(
        "removeDir",
        create_checked_async_function(lua, "fs.removeDir", |_, path: Value| {
            let path = path_arg(&path, &field(1, "removeDir"))?;
            Ok(async move {
                tokio::fs::remove_dir_all(&path)
                    .await
                    .map_err(|e| failed("removeDir", &path, e))
            })
        })?,
    )?;

    fs.set(
        "metadata",
        create_checked_async_function(lua, "fs.metadata", |_, path: Value| {
            let path = path_arg(&path, &field(1, "metadata"))?;
            Ok(async move {
                match tokio::fs::metadata(&path).await {
                    Ok(meta) => Ok(Metadata::of(&meta)),
                    Err(e) if is_missing(&e) => Ok(Metadata::missing()),
                    Err(e) => Err(failed("metadata", &path, e)),
                }
            })
        })?,
    )?;

    for (name, want_dir) in [("isFile", false), ("isDir", true)] {
        let full = format!("fs.{name}");
        fs.set(
            name,
            create_checked_async_function(lua, &full, move |_, path: Value| {
                let path = path_arg(&path, &field(1, name))?;
                Ok(async move {
                    match tokio::fs::metadata(&path).await {
                        Ok(meta) if want_dir => Ok(meta.is_dir()),
                        Ok(meta) => Ok(meta.is_file()),
                        Err(e) if is_missing(&e) => Ok(false),
                        Err(e) => Err(failed(name, &path, e)),
                    }
                })
            })?,
        )?;
    }

    fs.set(
        "move",
        create_checked_async_function(
            lua,
            "fs.move",
            |_, (from, to, options): (Value, Value, Value)| {
                let from = path_arg(&from, &field(1, "move"))?;
                let to = path_arg(&to, &field(2, "move"))?;
                let overwrite = overwrite_arg(&options, "move")?;
                Ok(async move {
                    match tokio::fs::symlink_metadata(&from).await {
                        Ok(_) => {}
                        Err(e) if is_missing(&e) => {
                            return Err(Error::runtime(format!(
                                "fs.move failed: No file or directory exists at the path '{}'",
                                from.display()
                            )));
                        }
                        Err(e) => return Err(failed("move", &from, e)),
                    }
                    if !overwrite && tokio::fs::symlink_metadata(&to).await.is_ok() {
                        return Err(Error::runtime(format!(
                            "fs.move failed: A file or directory already exists at the path '{}'",
                            to.display()
                        )));
                    }
                    tokio::fs::rename(&from, &to)
                        .await
                        .map_err(|e| failed("move", &to, e))
                })
            },
        )?,
    )?;

    fs.set(
        "copy",
        create_checked_async_function(
            lua,
            "fs.copy",
            |_, (from, to, options): (Value, Value, Value)| {
                let from = path_arg(&from, &field(1, "copy"))?;
                let to = path_arg(&to, &field(2, "copy"))?;
                let overwrite = overwrite_arg(&options, "copy")?;
                Ok(blocking(move || copy::copy(&from, &to, overwrite)))
            },
        )?,
    )?;

    Ok(Value::Table(super::freeze(fs)))
}
