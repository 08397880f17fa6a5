//! What a finished child's exit status becomes for scripts: its `code` and `ok`.
//!
//! A child that exited has its exit code. A child ended by a signal (`kill()`, or
//! one sent from outside) has 128 + the signal number, as shells report it (137
//! for `kill()`, which sends SIGKILL), so `ok` is false. Lune differs here: its
//! `exec` reports 0 or 1 (1 only if the child wrote to stderr) and its `status()`
//! reports 9; a killed child reading as a success is a bug Lunet does not copy.

use std::process::ExitStatus;

use mlua::{IntoLua, Lua, Result, Value};

/// The code scripts see for `status`.
pub(super) fn exit_code(status: ExitStatus) -> i32 {
    if let Some(code) = status.code() {
        return code;
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return 128 + signal;
        }
    }
    1
}

/// The result of `ChildProcess:status()`: a read-only `{ ok, code }`.
pub(super) struct Status(pub(super) i32);

impl IntoLua for Status {
    fn into_lua(self, lua: &Lua) -> Result<Value> {
        let table = lua.create_table_with_capacity(0, 2)?;
        table.raw_set("ok", self.0 == 0)?;
        table.raw_set("code", self.0)?;
        Ok(Value::Table(crate::freeze(table)))
    }
}
