//! What `process.exec` and `process.create` take (`program`, `params`, `options`),
//! checked with `lunet_runtime::args` and turned into a `tokio::process::Command`.
//!
//! Options, as in Lune: `cwd` (a leading `~` is the home directory; it must be an
//! existing directory), `env` (variables added over the environment), `shell`
//! (`true` for `/bin/sh`, or a shell's name or path: the child is then
//! `shell -c "program params..."`, the parameters joined with spaces and not quoted),
//! `stdio` (a kind for both output streams, or `{ stdout, stderr, stdin }`) and the
//! older top-level `stdin`. Lunet adds `clearEnv`: start the child from an empty
//! environment (only `env` is given to it). Parameters and variable values may be
//! numbers (written as Luau's `tostring` writes them), as Lune's conversion allows.
//!
//! The child's environment is the one scripts see (`lunet_runtime::env`, which
//! includes `process.env` writes, since those never reach the C environment) with
//! `env` on top. This module owns the checks and the command; running it belongs
//! to `exec.rs` and `child.rs`.

use std::ffi::OsString;
use std::io;
use std::path::PathBuf;
use std::process::Stdio;

use bytes::Bytes;
use lunet_runtime::{args, env};
use mlua::{Error, Result, Table, Value};
use tokio::process::Command;

/// How `process.exec` treats one of the child's output streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum StdioKind {
    /// Captured into the result.
    Default,
    /// Captured into the result and written through to Lunet's own stream.
    Inherit,
    /// Written straight to Lunet's own stream (the child shares it), not captured.
    Forward,
    /// Discarded.
    None,
}

impl StdioKind {
    const EXPECTED: &'static str = "\"default\", \"inherit\", \"forward\" or \"none\"";

    fn parse(value: &Value, field: &str) -> Result<StdioKind> {
        let text = match value {
            Value::Nil => return Ok(StdioKind::Default),
            Value::String(s) => s.to_string_lossy(),
            other => return Err(args::wrong(field, Self::EXPECTED, other)),
        };
        // Lune trims and ignores case.
        match text.trim().to_ascii_lowercase().as_str() {
            "default" => Ok(StdioKind::Default),
            "inherit" => Ok(StdioKind::Inherit),
            "forward" => Ok(StdioKind::Forward),
            "none" => Ok(StdioKind::None),
            _ => Err(args::invalid(field, Self::EXPECTED, format!("{text:?}"))),
        }
    }

    /// What the child gets for this stream.
    pub(super) fn child_stdio(self) -> Stdio {
        match self {
            StdioKind::Default | StdioKind::Inherit => Stdio::piped(),
            StdioKind::Forward => Stdio::inherit(),
            StdioKind::None => Stdio::null(),
        }
    }
}

/// A checked call of `process.exec` or `process.create`.
#[derive(Debug)]
pub(super) struct Invocation {
    program: OsString,
    params: Vec<OsString>,
    cwd: Option<PathBuf>,
    env: Vec<(OsString, OsString)>,
    clear_env: bool,
    shell: Option<OsString>,
    pub(super) stdout: StdioKind,
    pub(super) stderr: StdioKind,
    /// What `exec` writes to the child's stdin (which is empty otherwise).
    pub(super) stdin: Option<Bytes>,
}

/// Bytes as an OS string (on Unix, any bytes).
fn os_string(bytes: &[u8]) -> OsString {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        std::ffi::OsStr::from_bytes(bytes).to_os_string()
    }
    #[cfg(not(unix))]
    {
        OsString::from(String::from_utf8_lossy(bytes).into_owned())
    }
}

/// A string (or a number, written as Luau's `tostring` writes it) without NUL bytes.
fn text_arg(value: &Value, field: &str) -> Result<OsString> {
    let bytes = match value {
        Value::String(s) => s.as_bytes().to_vec(),
        Value::Integer(i) => i.to_string().into_bytes(),
        Value::Number(n) => lunet_runtime::format_number(*n).into_bytes(),
        other => return Err(args::wrong(field, "string", other)),
    };
    if bytes.contains(&0) {
        return Err(args::invalid(
            field,
            "a string without NUL bytes",
            "a string with one",
        ));
    }
    Ok(os_string(&bytes))
}

fn params_arg(value: &Value) -> Result<Vec<OsString>> {
    let Some(list) = args::optional_table(value, "params")? else {
        return Ok(Vec::new());
    };
    let mut params = Vec::with_capacity(list.raw_len());
    for i in 1..=list.raw_len() {
        params.push(text_arg(&list.raw_get(i)?, &format!("params[{i}]"))?);
    }
    Ok(params)
}

/// The home directory, for a `cwd` starting with `~`.
fn home_dir() -> Result<PathBuf> {
    env::var("HOME")
        .filter(|home| !home.is_empty())
        .map(PathBuf::from)
        .ok_or_else(|| {
            args::invalid(
                "options.cwd",
                "a path (a leading '~' needs HOME, which is not set)",
                "a path starting with '~'",
            )
        })
}

fn cwd_arg(value: &Value) -> Result<Option<PathBuf>> {
    let Some(text) = args::optional_string(value, "options.cwd")? else {
        return Ok(None);
    };
    let mut cwd = PathBuf::from(os_string(&text.as_bytes()));
    if let Ok(rest) = cwd.strip_prefix("~") {
        cwd = home_dir()?.join(rest);
    }
    // Checked here, so a missing directory is not reported as a missing program
    // (spawning reports both as "No such file or directory").
    match std::fs::metadata(&cwd) {
        Ok(meta) if meta.is_dir() => Ok(Some(cwd)),
        Ok(_) => Err(args::invalid(
            "options.cwd",
            "an existing directory",
            format!("{:?}, which is not a directory", cwd.display().to_string()),
        )),
        Err(e) => Err(args::invalid(
            "options.cwd",
            "an existing directory",
            format!("{:?} ({e})", cwd.display().to_string()),
        )),
    }
}

fn env_arg(value: &Value) -> Result<Vec<(OsString, OsString)>> {
    let Some(table) = args::optional_table(value, "options.env")? else {
        return Ok(Vec::new());
    };
    let mut vars = Vec::new();
    for pair in table.pairs::<Value, Value>() {
        let (key, value) = pair?;
        let name = match &key {
            Value::String(s) if super::env::is_valid_name(&s.as_bytes()) => s.clone(),
            Value::String(s) => {
                return Err(args::invalid(
                    "options.env key",
                    "a variable name (non-empty, without '=' or NUL)",
                    format!("{:?}", s.to_string_lossy()),
                ));
            }
            other => return Err(args::wrong("options.env key", "string", other)),
        };
        let field = format!("options.env.{}", name.to_string_lossy());
        vars.push((os_string(&name.as_bytes()), text_arg(&value, &field)?));
    }
    Ok(vars)
}

fn shell_arg(value: &Value) -> Result<Option<OsString>> {
    match value {
        Value::Nil | Value::Boolean(false) => Ok(None),
        Value::Boolean(true) => Ok(Some(default_shell().into())),
        Value::String(_) => text_arg(value, "options.shell").map(Some),
        other => Err(args::wrong("options.shell", "boolean or string", other)),
    }
}

/// The shell `shell = true` runs, as in Lune.
fn default_shell() -> &'static str {
    if cfg!(windows) {
        "powershell"
    } else {
        "/bin/sh"
    }
}

fn stdin_arg(value: &Value, field: &str) -> Result<Option<Bytes>> {
    match value {
        Value::Nil => Ok(None),
        other => args::bytes(other, field).map(Some),
    }
}

impl Invocation {
    /// Checks `program`, `params` and `options` as given to a function of the library.
    pub(super) fn parse(program: &Value, params: &Value, options: &Value) -> Result<Invocation> {
        let program = text_arg(program, "program")?;
        let params = params_arg(params)?;
        let mut invocation = Invocation {
            program,
            params,
            cwd: None,
            env: Vec::new(),
            clear_env: false,
            shell: None,
            stdout: StdioKind::Default,
            stderr: StdioKind::Default,
            stdin: None,
        };
        let Some(options) = args::optional_table(options, "options")? else {
            return Ok(invocation);
        };
        invocation.cwd = cwd_arg(&options.get("cwd")?)?;
        invocation.env = env_arg(&options.get("env")?)?;
        invocation.clear_env =
            args::optional_boolean(&options.get("clearEnv")?, "options.clearEnv")?.unwrap_or(false);
        invocation.shell = shell_arg(&options.get("shell")?)?;
        invocation.parse_stdio(&options)?;
        Ok(invocation)
    }

    fn parse_stdio(&mut self, options: &Table) -> Result<()> {
        match options.get::<Value>("stdio")? {
            Value::Nil => {}
            kind @ Value::String(_) => {
                let kind = StdioKind::parse(&kind, "options.stdio")?;
                self.stdout = kind;
                self.stderr = kind;
            }
            Value::Table(stdio) => {
                self.stdout = StdioKind::parse(&stdio.get("stdout")?, "options.stdio.stdout")?;
                self.stderr = StdioKind::parse(&stdio.get("stderr")?, "options.stdio.stderr")?;
                self.stdin = stdin_arg(&stdio.get("stdin")?, "options.stdio.stdin")?;
            }
            other => {
                return Err(args::wrong(
                    "options.stdio",
                    &format!("{} or a table", StdioKind::EXPECTED),
                    &other,
                ));
            }
        }
        // Lune's older place for it, still accepted (and it wins, as in Lune).
        if let Some(stdin) = stdin_arg(&options.get("stdin")?, "options.stdin")? {
            self.stdin = Some(stdin);
        }
        Ok(())
    }

    /// The program that is started: the shell when there is one.
    fn started(&self) -> &OsString {
        self.shell.as_ref().unwrap_or(&self.program)
    }

    /// The command to spawn (its standard streams are the caller's business).
    pub(super) fn command(&self) -> Command {
        let mut command = match &self.shell {
            None => {
                let mut command = Command::new(&self.program);
                command.args(&self.params);
                command
            }
            Some(shell) => {
                let mut line = self.program.clone();
                for param in &self.params {
                    line.push(" ");
                    line.push(param);
                }
                let mut command = Command::new(shell);
                command.arg("-c").arg(line);
                command
            }
        };
        if let Some(cwd) = &self.cwd {
            command.current_dir(cwd);
        }
        // The environment scripts see, not the C one (see `lunet_runtime::env`).
        command.env_clear();
        if !self.clear_env {
            command.envs(env::vars());
        }
        command.envs(self.env.iter().map(|(k, v)| (k, v)));
        command
    }

    /// The error for a program that could not be started.
    pub(super) fn cannot_run(&self, function: &str, error: io::Error) -> Error {
        Error::runtime(format!(
            "{function}: cannot run {:?}: {error}",
            self.started().to_string_lossy()
        ))
    }

    /// The program's name as scripts wrote it, for messages.
    pub(super) fn name(&self) -> String {
        self.program.to_string_lossy().into_owned()
    }
}
