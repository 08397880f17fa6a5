//! The `lunet` command: run a Luau script, or set up editor type definitions.
//!
//! `lunet run [--native] <file> [args...]` (or `lunet <file> [args...]`) runs a script with every
//! builtin library, `@lune/net` included; `lunet setup` writes type definitions and a
//! `.luaurc` alias for luau-lsp. Everything else lives in the library crates.

mod setup;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "lunet",
    version,
    about = "A Luau runtime with a fast, safe @lune/net",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Compile every script and module to native code (as if each had `--!native`)
    #[arg(long, global = true)]
    native: bool,
    /// The script to run (the same as `lunet run <SCRIPT>`)
    script: Option<PathBuf>,
    /// Arguments passed to the script as `process.args`
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Run a Luau script
    Run {
        /// The script to run (.luau or .lua)
        script: PathBuf,
        /// Arguments passed to the script as `process.args`
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Write Luau type definitions and a .luaurc alias for editors (luau-lsp)
    Setup {
        /// Where to write the definitions (default: ~/.lunet/.typedefs/<version>)
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

fn run(script: PathBuf, args: Vec<String>, native: bool) -> i32 {
    let script = resolve_script(script);
    lunet_runtime::run_script(&script, args, |runtime| {
        if native {
            runtime.compile_all_natively();
        }
        lunet_std::install(runtime)?;
        runtime.register_library("net", Box::new(lunet_net::create));
        Ok(())
    })
}

/// `lunet run foo` also finds `foo.luau` / `foo.lua`, as Lune does.
fn resolve_script(script: PathBuf) -> PathBuf {
    if script.is_file() {
        return script;
    }
    for ext in ["luau", "lua"] {
        let candidate = script.with_extension(ext);
        if candidate.is_file() {
            return candidate;
        }
    }
    script
}

fn main() {
    let cli = Cli::parse();
    let code = match (cli.command, cli.script) {
        (Some(Command::Run { script, args }), _) => run(script, args, cli.native),
        (Some(Command::Setup { dir }), _) => setup::run(dir),
        (None, Some(script)) => run(script, cli.args, cli.native),
        (None, None) => {
            eprintln!("usage: lunet run <script> [args...]   (see lunet --help)");
            2
        }
    };
    std::process::exit(code);
}
