//! `net.unix.connect(path)` and `net.unix.listen(path)`: Unix domain socket streams,
//! and the socket files behind them (also `net.serve`'s `address = "unix:/path"`).
//!
//! A Unix stream is the same `TcpStream` object as a TCP one (same methods, same
//! bounds; its `path` property is the socket file's path, its IP fields are nil), and
//! `listen` gives the same `TcpListener` object. This module owns the socket file:
//! binding replaces a *stale* file (a socket nobody listens on any more, left by a
//! process that died) but refuses a live one or a file that is not a socket, and
//! [`SocketFile::remove`] deletes the file when its listener closes, only if it is
//! still the one this process bound.

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use mlua::{Error, Function, Lua, Result, Value};
use tokio::net::{UnixListener, UnixStream};

use lunet_runtime::args;

use crate::connect_limit::{CONNECT_TIMEOUT, within_connect_limit};
use crate::tcp::listener::Listener;
use crate::tcp::stream::{Endpoints, Stream};

/// A socket file this process bound, removed when its listener closes.
pub(crate) struct SocketFile {
    /// The path as the script gave it.
    path: PathBuf,
    /// The same path made absolute when bound, so removing it does not depend on the
    /// working directory at the time.
    absolute: PathBuf,
    /// The file's device and inode when bound: a file someone else put there since
    /// is not removed.
    identity: Option<(u64, u64)>,
}

impl SocketFile {
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Removes the socket file if it is still the one bound here.
    pub(crate) fn remove(&self) {
        let Ok(metadata) = std::fs::symlink_metadata(&self.absolute) else {
            return;
        };
        if Some((metadata.dev(), metadata.ino())) == self.identity {
            let _ = std::fs::remove_file(&self.absolute);
        }
    }
}

/// The socket path argument.
fn parse_path(value: &Value) -> Result<PathBuf> {
    let text = args::string(value, "path")?;
    let bytes = text.as_bytes();
    if bytes.is_empty() || bytes.contains(&0) {
        return Err(args::invalid(
            "path",
            "the path of a socket file",
            if bytes.is_empty() {
                "an empty string"
            } else {
                "a string with a NUL byte"
            },
        ));
    }
    Ok(PathBuf::from(std::ffi::OsStr::from_bytes(&bytes)))
}

/// True when something listens on the socket file at `path` (a connection is accepted
/// or queued, or the queue is full); false when connecting is refused (a stale file).
/// Never waits: the connect is tried once, without blocking.
fn is_live(path: &Path) -> bool {
    let connect = pin!(UnixStream::connect(path));
    match connect.poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(Ok(_)) | Poll::Pending => true,
        Poll::Ready(Err(e)) => !matches!(
            e.kind(),
            std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::NotFound
        ),
    }
}

/// Binds a listening Unix socket at `path`, replacing a stale socket file; `what`
/// names the caller in errors.
pub(crate) fn bind(path: &Path, what: &str) -> Result<(UnixListener, SocketFile)> {
    let fail = |cause: String| {
        Error::runtime(format!(
            "{what} cannot listen on unix:{}: {cause}",
            path.display()
        ))
    };
    let listener = match UnixListener::bind(path) {
        Ok(listener) => listener,
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            let metadata = std::fs::symlink_metadata(path).map_err(|e| fail(e.to_string()))?;
            if !metadata.file_type().is_socket() {
                return Err(fail("the path exists and is not a socket".to_string()));
            }
            if is_live(path) {
                return Err(fail(
                    "the address is already in use (another process listens on it)".to_string(),
                ));
            }
            // A stale socket file: nobody listens on it any more.
            std::fs::remove_file(path).map_err(|e| fail(e.to_string()))?;
            UnixListener::bind(path).map_err(|e| fail(e.to_string()))?
        }
        Err(e) => return Err(fail(e.to_string())),
    };
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let identity = std::fs::symlink_metadata(&absolute)
        .ok()
        .map(|m| (m.dev(), m.ino()));
    Ok((
        listener,
        SocketFile {
            path: path.to_path_buf(),
            absolute,
            identity,
        },
    ))
}

/// A connected Unix socket as a stream.
pub(crate) fn unix_stream(stream: UnixStream, path: &Path) -> Stream {
    let (reader, writer) = stream.into_split();
    Stream::new(
        Box::pin(reader),
        Box::pin(writer),
        Endpoints::Unix {
            path: path.to_path_buf(),
        },
    )
}

/// Builds `net.unix.connect` and `net.unix.listen`.
pub(crate) fn create_functions(lua: &Lua) -> Result<(Function, Function)> {
    Stream::prepare(lua)?;
    let connect = lunet_runtime::create_checked_async_function(
        lua,
        "net.unix.connect",
        |_lua, path: Value| {
            let path = parse_path(&path)?;
            Ok(async move {
                let fail = |cause: String| {
                    Error::runtime(format!(
                        "net.unix.connect failed for unix:{}: {cause}",
                        path.display()
                    ))
                };
                match within_connect_limit(UnixStream::connect(&path)).await {
                    Some(Ok(stream)) => Ok(unix_stream(stream, &path)),
                    Some(Err(e)) => Err(fail(e.to_string())),
                    None => Err(fail(format!(
                        "connecting took longer than {} s",
                        CONNECT_TIMEOUT.as_secs()
                    ))),
                }
            })
        },
    )?;
    let listen = lunet_runtime::create_function(lua, |lua, path: Value| {
        let path = parse_path(&path)?;
        let (socket, file) = bind(&path, "net.unix.listen")?;
        Listener::unix(lua, socket, file)
    })?;
    Ok((connect, listen))
}
