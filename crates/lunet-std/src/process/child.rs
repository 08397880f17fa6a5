//! `process.create` and the `ChildProcess` it returns: a running program with
//! `stdin` (a `ChildProcessWriter`), `stdout` and `stderr` (`ChildProcessReader`s,
//! see `pipe.rs`), `kill()` and `status()`. A `ChildProcess` is a
//! [`lunet_runtime::object`]: the three pipes are its properties (the same object
//! on every read), `kill` and `status` its methods.
//!
//! Each child has a supervisor, a local task that waits for it to exit (or, after
//! `kill()`, sends it SIGKILL and waits), reaps it, and publishes its code (see
//! `status.rs`). So a child is reaped as soon as it exits whether or not anyone
//! calls `status()`, and a `ChildProcess` that is dropped and collected leaves no
//! zombie. `status()` parks the calling thread until the code is known (any
//! number of threads may wait); a waiting thread keeps the script running.
//!
//! A child nobody waits on does not keep the script running: when the script has
//! nothing left to do Lunet exits and the child keeps running (it is not killed),
//! as in Lune. Its pipes to Lunet close then, so a child that later writes to its
//! stdout gets SIGPIPE.

use std::process::Stdio;
use std::rc::Rc;

use lunet_runtime::create_checked_async_function;
use lunet_runtime::object::{self, Object, This};
use mlua::{AnyUserData, Error, Function, Lua, Result, Table, UserData, UserDataFields, Value};
use tokio::process::Child;
use tokio::sync::{Notify, watch};

use super::options::Invocation;
use super::pipe::{ChildReader, ChildWriter};
use super::status::{Status, exit_code};

/// How a child ended: its code, or why it could not be waited for.
type Exit = std::result::Result<i32, String>;

/// What `kill()` and `status()` share with the supervisor.
pub(super) struct Supervision {
    /// The program's name, for messages.
    program: String,
    /// Asks the supervisor to kill the child.
    kill: Notify,
    /// `Some` once the child has ended and been reaped.
    exit: watch::Receiver<Option<Exit>>,
}

/// `ChildProcess`.
pub(super) struct ChildProcess {
    stdin: AnyUserData,
    stdout: AnyUserData,
    stderr: AnyUserData,
    supervision: Rc<Supervision>,
}

/// Waits for `child` to end (killing it first if asked), reaps it, and publishes
/// how it ended.
async fn supervise(
    mut child: Child,
    supervision: Rc<Supervision>,
    exit: watch::Sender<Option<Exit>>,
) {
    let status = tokio::select! {
        status = child.wait() => status,
        () = supervision.kill.notified() => {
            // An error means the child has already exited: `wait` then reaps it.
            let _ = child.start_kill();
            child.wait().await
        }
    };
    exit.send_replace(Some(status.map(exit_code).map_err(|e| e.to_string())));
}

/// The method functions, created once per VM (through [`object::methods`]) and
/// shared by every `ChildProcess`.
fn build_methods(lua: &Lua) -> Result<Table> {
    let methods = lua.create_table()?;
    methods.raw_set(
        "kill",
        lunet_runtime::create_function(lua, |_, this: This<ChildProcess>| {
            this.get("kill")?.kill.notify_one();
            Ok(())
        })?,
    )?;
    methods.raw_set(
        "status",
        create_checked_async_function(lua, "ChildProcess:status", |_, this: This<ChildProcess>| {
            let supervision = this.get("status")?;
            Ok(async move {
                let mut exit = supervision.exit.clone();
                let ended = exit
                    .wait_for(Option::is_some)
                    .await
                    .map(|exit| exit.clone())
                    .ok()
                    .flatten();
                match ended {
                    Some(Ok(code)) => Ok(Status(code)),
                    Some(Err(e)) => Err(Error::runtime(format!(
                        "ChildProcess:status: cannot wait for {:?}: {e}",
                        supervision.program
                    ))),
                    None => Err(Error::runtime(format!(
                        "ChildProcess:status: {:?} is no longer supervised (Lunet is shutting down)",
                        supervision.program
                    ))),
                }
            })
        })?,
    )?;
    Ok(methods)
}

impl Object for ChildProcess {
    const NAME: &'static str = "ChildProcess";
    const VARIABLE: &'static str = "child";
    type Shared = Rc<Supervision>;

    fn shared(&self) -> Rc<Supervision> {
        self.supervision.clone()
    }

    fn build_methods(lua: &Lua) -> Result<Table> {
        build_methods(lua)
    }

    fn property(&self, _lua: &Lua, key: &[u8]) -> Result<Value> {
        Ok(match key {
            b"stdin" => Value::UserData(self.stdin.clone()),
            b"stdout" => Value::UserData(self.stdout.clone()),
            b"stderr" => Value::UserData(self.stderr.clone()),
            _ => Value::Nil,
        })
    }
}

impl UserData for ChildProcess {
    fn add_fields<F: UserDataFields<Self>>(fields: &mut F) {
        object::add_index(fields);
    }
}

/// The `process.create` function.
pub(super) fn create(lua: &Lua) -> Result<Function> {
    lunet_runtime::create_function(
        lua,
        |lua, (program, params, options): (Value, Value, Value)| {
            // `stdio` and `stdin` are checked as for `exec`, and ignored (as in Lune):
            // a created child's streams are always pipes.
            let invocation = Invocation::parse(&program, &params, &options)?;
            let mut child = invocation
                .command()
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .map_err(|e| invocation.cannot_run("process.create", e))?;
            let stdin = ChildWriter::new(child.stdin.take());
            let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
                // Not reached: both were asked to be pipes.
                return Err(Error::runtime(
                    "process.create: the child has no output pipes",
                ));
            };
            let stdout = ChildReader::new("stdout", stdout);
            let stderr = ChildReader::new("stderr", stderr);
            let (sender, exit) = watch::channel(None);
            let supervision = Rc::new(Supervision {
                program: invocation.name(),
                kill: Notify::new(),
                exit,
            });
            tokio::task::spawn_local(supervise(child, supervision.clone(), sender));
            lua.create_userdata(ChildProcess {
                stdin: lua.create_userdata(stdin)?,
                stdout: lua.create_userdata(stdout)?,
                stderr: lua.create_userdata(stderr)?,
                supervision,
            })
        },
    )
}
