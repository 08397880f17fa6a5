//! `lunet setup`: installs the Luau type definitions of every builtin library and a
//! `.luaurc` in the current directory whose `lune` alias points at them, so luau-lsp
//! understands `require("@lune/net")` and friends.

use std::path::PathBuf;

/// The definition files of every library crate, as `(file name, text)`: each crate
/// owns its libraries' definitions (in its `types/` folder) and lists them.
fn typedefs() -> impl Iterator<Item = &'static (&'static str, &'static str)> {
    lunet_std::TYPES.iter().chain(lunet_net::TYPES)
}

fn default_dir() -> PathBuf {
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    home.join(".lunet")
        .join(".typedefs")
        .join(env!("CARGO_PKG_VERSION"))
}

/// Merges `"lune": dir` into the `aliases` of `.luaurc` in the current directory.
fn write_luaurc(dir: &std::path::Path) -> std::io::Result<()> {
    let path = PathBuf::from(".luaurc");
    let mut config = match std::fs::read_to_string(&path) {
        Ok(text) => lunet_runtime::codec::jsonc::from_str(&text).map_err(|e| {
            std::io::Error::other(format!("existing .luaurc is not valid JSON: {e}"))
        })?,
        Err(_) => serde_json_object(),
    };
    let Some(object) = config.as_object_mut() else {
        return Err(std::io::Error::other(
            "existing .luaurc is not a JSON object",
        ));
    };
    let aliases = object.entry("aliases").or_insert_with(serde_json_object);
    if let Some(aliases) = aliases.as_object_mut() {
        aliases.insert(
            "lune".to_string(),
            serde_json::Value::String(dir.display().to_string()),
        );
    }
    let text = serde_json::to_string_pretty(&config).map_err(std::io::Error::other)?;
    std::fs::write(&path, text + "\n")
}

fn serde_json_object() -> serde_json::Value {
    serde_json::Value::Object(Default::default())
}

pub fn run(dir: Option<PathBuf>) -> i32 {
    let dir = dir.unwrap_or_else(default_dir);
    let result = (|| -> std::io::Result<()> {
        std::fs::create_dir_all(&dir)?;
        for (name, text) in typedefs() {
            std::fs::write(dir.join(name), text)?;
        }
        write_luaurc(&dir)
    })();
    match result {
        Ok(()) => {
            println!(
                "Wrote type definitions for {} libraries to {} and the alias \"@lune\" to ./.luaurc",
                typedefs().count(),
                dir.display()
            );
            0
        }
        Err(error) => {
            eprintln!("error: lunet setup failed: {error}");
            1
        }
    }
}
