//! Turning a `require` path into a file: relative paths, `@self`, `.luaurc` aliases.
//!
//! Follows Luau's require-by-string rules as Lune does: `./` and `../` are relative to
//! the requiring file's folder, except in an `init.luau`, which stands for its folder,
//! so there they are relative to the folder's parent and `@self/` names the folder
//! itself. `@alias/...` looks the alias up in the nearest `.luaurc` files walking up
//! from the requiring file. A path names a module if exactly one of `P.luau`, `P.lua`,
//! `P/init.luau`, `P/init.lua` exists (a file and a folder both matching is an error).
//! Builtin `@lune/` libraries are not resolved here.

use std::path::{Component, Path, PathBuf};

use crate::codec::jsonc;

/// Where a `require` call comes from: the requiring file, when it is one.
pub(super) fn requirer_dir(requirer: Option<&Path>) -> PathBuf {
    match requirer {
        Some(file) => file.parent().map(Path::to_path_buf).unwrap_or_default(),
        None => PathBuf::new(),
    }
}

fn is_init_file(file: &Path) -> bool {
    matches!(
        file.file_name().and_then(|n| n.to_str()),
        Some("init.luau" | "init.lua")
    )
}

/// Resolves `spec` required from `requirer` to an existing module file.
pub(super) fn resolve(spec: &str, requirer: Option<&Path>) -> Result<PathBuf, String> {
    let folder = requirer_dir(requirer);
    let is_init = requirer.is_some_and(is_init_file);
    let target = if let Some(rest) = spec.strip_prefix("@self/") {
        folder.join(rest)
    } else if spec == "@self" {
        folder.clone()
    } else if spec.starts_with("./") || spec.starts_with("../") {
        let base = if is_init {
            folder.parent().map(Path::to_path_buf).unwrap_or_default()
        } else {
            folder.clone()
        };
        base.join(spec)
    } else if let Some(aliased) = spec.strip_prefix('@') {
        let (alias, rest) = aliased.split_once('/').unwrap_or((aliased, ""));
        let target = find_alias(alias, &folder)?;
        if rest.is_empty() {
            target
        } else {
            target.join(rest)
        }
    } else {
        return Err(format!(
            "invalid require path '{spec}': it must start with './', '../', '@self/' or an alias such as '@lune/'"
        ));
    };
    find_module(&normalize(&target), spec)
}

/// Lexically removes `.` and `..` components so module names and cache keys stay tidy.
pub(super) fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                let last = out.components().next_back();
                match last {
                    Some(Component::Normal(_)) => {
                        out.pop();
                    }
                    Some(Component::RootDir) => {}
                    _ => out.push(".."),
                }
            }
            other => out.push(other),
        }
    }
    out
}

fn find_module(target: &Path, spec: &str) -> Result<PathBuf, String> {
    let with_ext = |ext: &str| {
        let mut name = target.as_os_str().to_owned();
        name.push(ext);
        PathBuf::from(name)
    };
    let files = [with_ext(".luau"), with_ext(".lua")];
    let inits = [target.join("init.luau"), target.join("init.lua")];
    let file = files.iter().find(|p| p.is_file());
    let init = inits.iter().find(|p| p.is_file());
    match (file, init) {
        (Some(file), None) => Ok(file.clone()),
        (None, Some(init)) => Ok(init.clone()),
        (Some(file), Some(init)) => Err(format!(
            "require path '{spec}' is ambiguous: both '{}' and '{}' exist",
            file.display(),
            init.display()
        )),
        (None, None) => Err(format!(
            "module '{spec}' not found (looked for {}.luau, {}.lua and {}/init.luau)",
            target.display(),
            target.display(),
            target.display()
        )),
    }
}

/// Finds `alias` in the `.luaurc` files from `folder` up to the root; a nearer file
/// wins. Alias names are case-insensitive; targets are relative to their `.luaurc`.
fn find_alias(alias: &str, folder: &Path) -> Result<PathBuf, String> {
    let start = std::path::absolute(if folder.as_os_str().is_empty() {
        Path::new(".")
    } else {
        folder
    })
    .map_err(|e| format!("cannot resolve alias '@{alias}': {e}"))?;
    let mut dir = Some(start.as_path());
    while let Some(current) = dir {
        let rc = current.join(".luaurc");
        if rc.is_file() {
            let text = std::fs::read_to_string(&rc)
                .map_err(|e| format!("cannot read '{}': {e}", rc.display()))?;
            let config: serde_json::Value = jsonc::from_str(&text)
                .map_err(|e| format!("invalid JSON in '{}': {e}", rc.display()))?;
            if let Some(aliases) = config.get("aliases").and_then(|a| a.as_object()) {
                let found = aliases
                    .iter()
                    .find(|(name, _)| name.eq_ignore_ascii_case(alias));
                if let Some((_, target)) = found {
                    let target = target.as_str().ok_or_else(|| {
                        format!("alias '{alias}' in '{}' must be a string", rc.display())
                    })?;
                    return Ok(relative_to_cwd(&current.join(target)));
                }
            }
        }
        dir = current.parent();
    }
    Err(format!(
        "unknown require alias '@{alias}': no .luaurc from '{}' upwards defines it",
        start.display()
    ))
}

/// `path` relative to the current directory when it lies below it, else as given.
pub(super) fn relative_to_cwd(path: &Path) -> PathBuf {
    let cwd = std::env::current_dir().unwrap_or_default();
    match normalize(path).strip_prefix(&cwd) {
        Ok(rel) => rel.to_path_buf(),
        Err(_) => normalize(path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_removes_dot_segments() {
        assert_eq!(normalize(Path::new("a/./b/../c")), PathBuf::from("a/c"));
        assert_eq!(
            normalize(Path::new("../x/../../y")),
            PathBuf::from("../../y")
        );
        assert_eq!(normalize(Path::new("/a/../../b")), PathBuf::from("/b"));
    }
}
