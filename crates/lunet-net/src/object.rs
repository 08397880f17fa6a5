//! Script-facing objects (`WebSocket`, `TcpStream`): userdata whose methods are Luau
//! functions shared by every object of the type, in one read-only table per VM, and
//! whose other fields are read-only properties computed in Rust.
//!
//! Looking a method up (`socket:send`) happens on every call in a script's I/O loop,
//! so a type's `__index` is a small Luau function that finds methods in the table
//! without calling into Rust; only property reads (`socket.closeCode`) reach the
//! type's [`Object::property`]. This module owns that lookup and the method-table
//! cache; what the methods and properties are is each type's business.

use std::marker::PhantomData;

use mlua::{AnyUserData, Function, Lua, MetaMethod, Result, Table, UserData, Value};

/// A userdata type with a shared method table and Rust-computed properties.
pub trait Object: UserData + Sized + 'static {
    /// Builds the (read-only) method table. Called once per VM, through [`methods`].
    fn build_methods(lua: &Lua) -> Result<Table>;

    /// The value of the property `key` (nil for a key that is neither a method nor a
    /// property).
    fn property(&self, lua: &Lua, key: &[u8]) -> Result<Value>;
}

/// The cached method table of `T`, built on first use.
struct Methods<T>(Table, PhantomData<T>);

/// The method table of `T` in this VM.
pub fn methods<T: Object>(lua: &Lua) -> Result<Table> {
    if let Some(methods) = lua.app_data_ref::<Methods<T>>() {
        return Ok(methods.0.clone());
    }
    let table = T::build_methods(lua)?;
    table.set_readonly(true);
    lua.set_app_data(Methods::<T>(table.clone(), PhantomData));
    Ok(table)
}

/// Registers `T`'s `__index`; call it from `UserData::add_fields`.
pub fn add_index<T: Object, F: mlua::UserDataFields<T>>(fields: &mut F) {
    fields.add_meta_field_with(MetaMethod::Index, index_function::<T>);
}

fn index_function<T: Object>(lua: &Lua) -> Result<Function> {
    let property = lua.create_function(|lua, (this, key): (AnyUserData, Value)| {
        let this = this.borrow::<T>()?;
        match key {
            Value::String(key) => this.property(lua, &key.as_bytes()),
            _ => Ok(Value::Nil),
        }
    })?;
    lua.load(
        r#"
        local methods, property = ...
        return function(self, key)
            local method = methods[key]
            if method ~= nil then
                return method
            end
            return property(self, key)
        end
        "#,
    )
    .set_name("=[lunet object]")
    .call((methods::<T>(lua)?, property))
}
