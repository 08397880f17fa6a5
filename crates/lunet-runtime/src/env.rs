//! The process environment as scripts see it: the environment Lunet started with,
//! plus the changes scripts made through `process.env`.
//!
//! Scripts' writes are kept in an overlay here instead of being passed to `setenv`:
//! name resolution (`getaddrinfo`) and other libraries read the C environment on
//! other threads, and writing it while they do is undefined behaviour (Rust 2024
//! makes `set_var` unsafe for that reason). Everything in Lunet that reads a variable
//! on a script's behalf (`process.env`, proxy lookup in `net.request`, and child
//! processes later) reads it through [`var`] and [`vars`], so a script sees its own
//! writes. Code outside Lunet (C libraries) sees the environment as it was at start.
//! Checking names and values is the business of the library that takes them.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::sync::{LazyLock, RwLock};

/// Variables scripts set (`Some`) or removed (`None`).
static OVERLAY: LazyLock<RwLock<HashMap<OsString, Option<OsString>>>> =
    LazyLock::new(|| RwLock::new(HashMap::new()));

/// The value of `name`: a script's own write if there is one, else the process's.
pub fn var(name: impl AsRef<OsStr>) -> Option<OsString> {
    let name = name.as_ref();
    let overlay = OVERLAY
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    match overlay.get(name) {
        Some(value) => value.clone(),
        None => std::env::var_os(name),
    }
}

/// Sets `name` to `value` (`None` removes it) for everything that reads through
/// [`var`] and [`vars`].
pub fn set(name: impl Into<OsString>, value: Option<OsString>) {
    let mut overlay = OVERLAY
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    overlay.insert(name.into(), value);
}

/// Every variable as scripts see it, sorted by name.
pub fn vars() -> Vec<(OsString, OsString)> {
    let overlay = OVERLAY
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut all: HashMap<OsString, OsString> = std::env::vars_os()
        .filter(|(name, _)| !overlay.contains_key(name))
        .collect();
    for (name, value) in overlay.iter() {
        if let Some(value) = value {
            all.insert(name.clone(), value.clone());
        }
    }
    let mut all: Vec<_> = all.into_iter().collect();
    all.sort();
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_are_seen_without_touching_the_process_environment() {
        let name = "LUNET_ENV_OVERLAY_TEST";
        assert_eq!(std::env::var_os(name), None);
        set(name, Some("one".into()));
        assert_eq!(var(name), Some("one".into()));
        assert!(vars().iter().any(|(n, v)| n == name && v == "one"));
        assert_eq!(std::env::var_os(name), None, "setenv was not called");
        set(name, None);
        assert_eq!(var(name), None);
        assert!(!vars().iter().any(|(n, _)| n == name));
        // A removal hides a variable the process started with.
        let path = std::env::var_os("PATH").expect("PATH is set");
        set("PATH", None);
        assert_eq!(var("PATH"), None);
        set("PATH", Some(path.clone()));
        assert_eq!(var("PATH"), Some(path));
    }
}
