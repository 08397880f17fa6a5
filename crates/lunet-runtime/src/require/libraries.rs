//! The builtin libraries `require("@lune/<name>")` loads: what hosts registered (a
//! loader per name) and what is already built. Loading file modules is the business
//! of the rest of `require/`.

use std::cell::RefCell;
use std::collections::HashMap;

use mlua::{Lua, Result, Value};

/// Builds a library's value the first time a script requires it.
pub type LibraryLoader = Box<dyn Fn(&Lua) -> Result<Value>>;

/// The libraries `require("@lune/<name>")` can load, and the ones already loaded.
#[derive(Default)]
pub(crate) struct Libraries {
    loaders: RefCell<HashMap<String, LibraryLoader>>,
    loaded: RefCell<HashMap<String, Value>>,
}

impl Libraries {
    /// Makes `name` (without the `@lune/` prefix) load with `loader`.
    pub(crate) fn register(&self, name: &str, loader: LibraryLoader) {
        self.loaders.borrow_mut().insert(name.to_string(), loader);
    }

    pub(crate) fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.loaders.borrow().keys().cloned().collect();
        names.sort();
        names
    }

    /// The library `name` (without the `@lune/` prefix), built on first use.
    pub(crate) fn get(&self, lua: &Lua, name: &str) -> Result<Option<Value>> {
        if let Some(value) = self.loaded.borrow().get(name) {
            return Ok(Some(value.clone()));
        }
        let value = match self.loaders.borrow().get(name) {
            Some(loader) => loader(lua)?,
            None => return Ok(None),
        };
        self.loaded
            .borrow_mut()
            .insert(name.to_string(), value.clone());
        Ok(Some(value))
    }
}
