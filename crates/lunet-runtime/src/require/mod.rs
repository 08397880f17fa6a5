//! `require`: builtin libraries, file modules, caching, cycles, and yielding loads.
//!
//! The global `require` is a small Luau function around three Rust helpers: `resolve`
//! finds what a path names (a builtin `@lune/` library, an already loaded module, a
//! module another thread is still loading, or a file to load now), the Luau side then
//! runs the module's chunk *in the requiring thread* (so a module may yield while it
//! loads), and `finish` caches its result. Modules are cached by canonical file path.
//! Requiring a module that is still loading in the same thread is a cycle and an
//! error naming the chain; another thread asking for it waits for the first load.
//! Path rules live in [`resolve`], the builtin libraries in [`libraries`].

mod libraries;
mod resolve;

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use mlua::{Error, Function, IntoLuaMulti, Lua, MultiValue, Result, Table, Thread, Value};
use tokio::sync::Notify;

use crate::scheduler::create_async_function;

pub(crate) use libraries::Libraries;
pub use libraries::LibraryLoader;

/// How a path is shown in chunk names, errors and tracebacks: relative to the current
/// directory when the file lies below it.
pub(crate) fn display_path(path: &Path) -> String {
    resolve::relative_to_cwd(path).display().to_string()
}

struct Loading {
    thread: Thread,
    /// The cache key of the module that required this one, if it is a module.
    parent: Option<String>,
    name: String,
    done: Rc<Notify>,
}

struct Modules {
    libraries: Rc<Libraries>,
    /// Loaded module results by cache key (a Luau table, so values stay referenced).
    loaded: Table,
    loading: RefCell<HashMap<String, Loading>>,
}

fn cache_key(file: &Path) -> String {
    std::fs::canonicalize(file)
        .unwrap_or_else(|_| file.to_path_buf())
        .display()
        .to_string()
}

impl Modules {
    fn resolve(&self, lua: &Lua, spec: String, source: Option<String>) -> Result<MultiValue> {
        if let Some(name) = spec.strip_prefix("@lune/") {
            return match self.libraries.get(lua, name)? {
                Some(library) => ("loaded", library).into_lua_multi(lua),
                None => Err(Error::runtime(format!(
                    "no builtin library '@lune/{name}' (available: {})",
                    self.libraries
                        .names()
                        .iter()
                        .map(|n| format!("@lune/{n}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ))),
            };
        }
        let requirer = source
            .as_deref()
            .and_then(|s| s.strip_prefix('@'))
            .map(PathBuf::from);
        let file = resolve::resolve(&spec, requirer.as_deref()).map_err(Error::runtime)?;
        let key = cache_key(&file);
        let cached: Value = self.loaded.raw_get(key.as_str())?;
        if !cached.is_nil() {
            return ("loaded", cached).into_lua_multi(lua);
        }
        let current = lua.current_thread();
        if let Some(loading) = self.loading.borrow().get(&key) {
            if loading.thread.to_pointer() == current.to_pointer() {
                return Err(Error::runtime(self.cycle_message(&key, requirer)));
            }
            return ("wait", Value::Nil, key).into_lua_multi(lua);
        }
        let name = display_path(&file);
        let source_code = std::fs::read(&file)
            .map_err(|e| Error::runtime(format!("cannot read module '{name}': {e}")))?;
        let chunk = crate::native::load(lua, &source_code, format!("@{name}"))?;
        let parent = requirer.map(|r| cache_key(&r));
        self.loading.borrow_mut().insert(
            key.clone(),
            Loading {
                thread: current,
                parent,
                name,
                done: Rc::new(Notify::new()),
            },
        );
        ("load", chunk, key).into_lua_multi(lua)
    }

    /// "a.luau -> b.luau -> a.luau", following the loading modules' requirers.
    fn cycle_message(&self, target: &str, requirer: Option<PathBuf>) -> String {
        let loading = self.loading.borrow();
        let mut chain = Vec::new();
        let mut next = requirer.map(|r| cache_key(&r));
        while let Some(key) = next {
            let Some(entry) = loading.get(&key) else {
                break;
            };
            chain.push(entry.name.clone());
            if key == target {
                break;
            }
            next = entry.parent.clone();
        }
        chain.reverse();
        if let Some(entry) = loading.get(target) {
            chain.push(entry.name.clone());
        }
        format!("cyclic require detected: {}", chain.join(" -> "))
    }

    fn finish(&self, key: String, ok: bool, result: Value) -> Result<Value> {
        if let Some(loading) = self.loading.borrow_mut().remove(&key) {
            loading.done.notify_waiters();
        }
        if !ok {
            let message = match &result {
                Value::String(s) => s.to_string_lossy(),
                Value::Error(e) => crate::report::error_message(e),
                other => format!("{other:?}"),
            };
            return Err(Error::runtime(message));
        }
        let value = if result.is_nil() {
            Value::Boolean(true)
        } else {
            result
        };
        self.loaded.raw_set(key, value.clone())?;
        Ok(value)
    }
}

/// The chunk name (`@path`) of the nearest Luau file on the stack that called
/// `require`, skipping the require wrapper itself and C functions such as `pcall`.
fn caller_source(lua: &Lua) -> Option<String> {
    (1..64)
        .map_while(|level| {
            lua.inspect_stack(level, |debug| debug.source().source.map(|s| s.into_owned()))
        })
        .flatten()
        .find(|source| source.starts_with('@'))
}

pub(crate) fn install(lua: &Lua, libraries: Rc<Libraries>) -> Result<()> {
    let modules = Rc::new(Modules {
        libraries,
        loaded: lua.create_table()?,
        loading: RefCell::new(HashMap::new()),
    });

    let m = modules.clone();
    let resolve = lua.create_function(move |lua, spec: Value| {
        let Value::String(spec) = spec else {
            return Err(Error::runtime(format!(
                "bad argument #1 to 'require' (string expected, got {})",
                crate::type_name(&spec)
            )));
        };
        m.resolve(lua, spec.to_string_lossy(), caller_source(lua))
    })?;

    let m = modules.clone();
    let finish = lua.create_function(move |_, (key, ok, result): (String, bool, Value)| {
        m.finish(key, ok, result)
    })?;

    let m = modules.clone();
    let wait = create_async_function(lua, "require", move |_lua, key: String| {
        let m = m.clone();
        async move {
            loop {
                let done = match m.loading.borrow().get(&key) {
                    Some(loading) => loading.done.clone(),
                    None => break,
                };
                done.notified().await;
            }
            let value: Value = m.loaded.raw_get(key.as_str())?;
            if value.is_nil() {
                return Err(Error::runtime(
                    "the module failed to load in the thread that first required it",
                ));
            }
            Ok(value)
        }
    })?;

    let require: Function = lua
        .load(include_str!("require.luau"))
        .set_name("=[lunet require]")
        .call((
            resolve,
            finish,
            wait,
            lua.globals().get::<Function>("pcall")?,
        ))?;
    lua.globals().set("require", require)
}
