//! The `lunet` command: run a Luau script, or set up editor type definitions.
//!
//! `lunet run [--interpreted] [--workers N] <file> [args...]` (or `lunet <file> [args...]`) runs a
//! script with every builtin library, `@lune/net` included (in N isolated VMs on N
//! threads with `--workers`: see the runtime's `workers`); `lunet setup` writes type definitions and a
//! `.luaurc` alias for luau-lsp. Everything else lives in the library crates.
//!
//! Every script and module is compiled to native code by default, as Lune does
//! (Lune turns its code generator on for every chunk unless `LUNE_LUAU_JIT` is
//! `0`, `false` or `off`); `--interpreted`, or that variable set so, runs them in
//! Luau's interpreter instead (chunks with `--!native` are still compiled).

mod allocator;
mod setup;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Every allocation of the process, the Luau VM's included (mlua hands Luau's
/// requests to Rust's allocator), comes from mimalloc (v2, built not to ask for
/// transparent huge pages). Against glibc's malloc, callgrind counted 8% fewer
/// instructions per HTTP/2 request (malloc and free were ~3.6k of ~35k), 3-4% fewer
/// on HTTP/1 hello, table, 1 KiB echo and WebSocket echo, with fewer simulated
/// cache misses and mispredicted branches; HTTP/2 hello served 8-9% more requests
/// per second (bench/README.md, run V). RSS stays within 2 MiB of glibc's, idle and
/// with 1,000 connections, because mimalloc is built not to request huge pages
/// (with them it held 6-23 MiB more). It also has none of the heap trimming that
/// cost glibc two `brk` calls per four 64 KiB chunks of a streamed response (run
/// K), which `mallopt` settings worked around before. mimalloc's own `MIMALLOC_*`
/// variables still tune it. It is called as `malloc` is (see `allocator`).
#[global_allocator]
static ALLOCATOR: allocator::Allocator = allocator::Allocator;

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
    /// Compile every script and module to native code (the default; as if each had
    /// `--!native`)
    #[arg(long, global = true)]
    native: bool,
    /// Run scripts and modules in Luau's interpreter, compiling only those with
    /// `--!native` (also when `LUNE_LUAU_JIT` is `0`, `false` or `off`, as in Lune)
    #[arg(long, global = true, conflicts_with = "native")]
    interpreted: bool,
    /// Run the script in N isolated VMs on N threads (or `auto`: one per CPU); their
    /// servers share their ports
    #[arg(long, global = true, value_name = "N", value_parser = lunet_runtime::workers::parse_count)]
    workers: Option<usize>,
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

fn run(script: PathBuf, args: Vec<String>, native: bool, workers: Option<usize>) -> i32 {
    let script = resolve_script(script);
    let setup = move |runtime: &lunet_runtime::Runtime| {
        if native {
            runtime.compile_all_natively();
        }
        lunet_std::install(runtime)?;
        runtime.register_library("net", Box::new(lunet_net::create));
        Ok(())
    };
    match workers {
        Some(count) if count > 1 => {
            lunet_runtime::workers::run_workers(&script, args, count, setup)
        }
        _ => lunet_runtime::run_script(&script, args, setup),
    }
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

/// Whether every chunk is compiled natively: yes unless `--interpreted`, or Lune's
/// `LUNE_LUAU_JIT` turns its code generator off (`--native` wins over the variable).
/// `lune_luau_jit` is that variable's value, if set.
fn all_native(cli: &Cli, lune_luau_jit: Option<&str>) -> bool {
    let lune_jit_off = lune_luau_jit.is_some_and(|value| matches!(value, "0" | "false" | "off"));
    cli.native || !(cli.interpreted || lune_jit_off)
}

fn main() {
    let cli = Cli::parse();
    let native = all_native(&cli, std::env::var("LUNE_LUAU_JIT").ok().as_deref());
    let code = match (cli.command, cli.script) {
        (Some(Command::Run { script, args }), _) => run(script, args, native, cli.workers),
        (Some(Command::Setup { dir }), _) => setup::run(dir),
        (None, Some(script)) => run(script, cli.args, native, cli.workers),
        (None, None) => {
            eprintln!("usage: lunet run <script> [args...]   (see lunet --help)");
            2
        }
    };
    std::process::exit(code);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_chunk_is_native_unless_interpreted_or_lunes_switch_is_off() {
        let native = |args: &[&str], env: Option<&str>| {
            let cli = Cli::try_parse_from([&["lunet"][..], args].concat()).unwrap();
            all_native(&cli, env)
        };
        assert!(native(&["run", "a.luau"], None), "native by default");
        assert!(
            native(&["a.luau"], Some("1")),
            "LUNE_LUAU_JIT=1 changes nothing"
        );
        assert!(!native(&["run", "--interpreted", "a.luau"], None));
        assert!(!native(&["--interpreted", "a.luau"], None));
        for off in ["0", "false", "off"] {
            assert!(
                !native(&["run", "a.luau"], Some(off)),
                "LUNE_LUAU_JIT={off}"
            );
            assert!(
                native(&["run", "--native", "a.luau"], Some(off)),
                "--native wins"
            );
        }
        assert!(
            Cli::try_parse_from(["lunet", "run", "--native", "--interpreted", "a.luau"]).is_err()
        );
    }
}
