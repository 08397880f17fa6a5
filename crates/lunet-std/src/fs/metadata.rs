//! What `fs.metadata` returns: a read-only table with `kind`, `exists`, `size`
//! (files only, as in Lune), the three timestamps as `DateTime`s (nil where the
//! system does not record one), and `permissions.readOnly`.

use std::fs;

use mlua::{IntoLua, Lua, Result, Value};

use crate::datetime::DateTime;

pub(super) struct Metadata(Option<Found>);

struct Found {
    kind: &'static str,
    size: Option<u64>,
    created: Option<DateTime>,
    modified: Option<DateTime>,
    accessed: Option<DateTime>,
    read_only: bool,
}

impl Metadata {
    /// The metadata of nothing: `exists = false` and every other field nil.
    pub(super) fn missing() -> Metadata {
        Metadata(None)
    }

    /// The metadata of what a path points to (after symbolic links). Sockets, FIFOs
    /// and devices are reported as `"file"` (Lune panics on them).
    pub(super) fn of(meta: &fs::Metadata) -> Metadata {
        let kind = if meta.is_dir() {
            "dir"
        } else if meta.is_symlink() {
            "symlink"
        } else {
            "file"
        };
        let time =
            |t: std::io::Result<std::time::SystemTime>| t.ok().and_then(DateTime::from_system_time);
        Metadata(Some(Found {
            kind,
            size: meta.is_file().then_some(meta.len()),
            created: time(meta.created()),
            modified: time(meta.modified()),
            accessed: time(meta.accessed()),
            read_only: meta.permissions().readonly(),
        }))
    }
}

impl IntoLua for Metadata {
    fn into_lua(self, lua: &Lua) -> Result<Value> {
        let table = lua.create_table_with_capacity(0, 7)?;
        table.raw_set("exists", self.0.is_some())?;
        if let Some(found) = self.0 {
            table.raw_set("kind", found.kind)?;
            table.raw_set("size", found.size)?;
            table.raw_set("createdAt", found.created)?;
            table.raw_set("modifiedAt", found.modified)?;
            table.raw_set("accessedAt", found.accessed)?;
            let permissions = lua.create_table_with_capacity(0, 1)?;
            permissions.raw_set("readOnly", found.read_only)?;
            permissions.set_readonly(true);
            table.raw_set("permissions", permissions)?;
        }
        table.set_readonly(true);
        Ok(Value::Table(table))
    }
}
