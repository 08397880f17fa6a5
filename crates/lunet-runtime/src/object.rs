//! Script-facing objects (lunet-net's `WebSocket`, `TcpStream`, `TcpListener`,
//! `UdpSocket` and `BodyStream`; lunet-std's `DateTime`, `Regex`, `RegexMatch`,
//! `RegexCaptures`, `ChildProcess`, `ChildProcessReader` and `ChildProcessWriter`):
//! userdata whose methods are Luau functions shared by every object of the type, in
//! one read-only table per VM, and whose other fields are read-only properties
//! computed in Rust. It lives in the runtime so that every library's objects use
//! the same one. Metamethods other than `__index` (`__eq`, `__tostring`, `__len`,
//! `__type`) are each type's own, registered beside [`add_index`].
//!
//! Looking a method up (`socket:send`) happens on every call in a script's I/O loop,
//! so a type's `__index` is a small Luau function that finds methods in the table
//! without calling into Rust; only property reads (`socket.closeCode`) reach the
//! type's [`Object::property`]. A method's `self` argument is taken straight off the
//! Luau stack as [`This`] (a borrow of the userdata, no registry reference). This
//! module owns that lookup, the method-table cache and `This`; what the methods and
//! properties are is each type's business.

use std::ffi::c_int;
use std::marker::PhantomData;

use mlua::state::RawLua;
use mlua::{
    AnyUserData, Error, FromLua, Function, Lua, MetaMethod, Result, Table, UserData, UserDataRef,
    Value,
};

/// A userdata type with a shared method table and Rust-computed properties.
pub trait Object: UserData + Sized + 'static {
    /// The type's name in Luau (`WebSocket`).
    const NAME: &'static str;
    /// What scripts usually call an object of the type (`socket`), for error messages.
    const VARIABLE: &'static str;

    /// What a method works on: the object's shared state, cheap to clone.
    type Shared: Clone;

    /// This object's shared state.
    fn shared(&self) -> Self::Shared;

    /// Builds the (read-only) method table. Called once per VM, through [`methods`].
    fn build_methods(lua: &Lua) -> Result<Table>;

    /// The value of the property `key` (nil for a key that is neither a method nor a
    /// property). A type with methods only keeps this default.
    fn property(&self, lua: &Lua, key: &[u8]) -> Result<Value> {
        let _ = (lua, key);
        Ok(Value::Nil)
    }
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

/// A method's `self` argument: the object's shared state when the argument is a `T`
/// (taken straight off the Luau stack, with no registry reference), or nothing,
/// which [`This::get`] reports with the method's name.
pub struct This<T: Object>(Option<T::Shared>);

impl<T: Object> This<T> {
    /// The object's shared state, or an error telling the script to call `method`
    /// with `:` on a `T`.
    pub fn get(self, method: &str) -> Result<T::Shared> {
        self.0.ok_or_else(|| {
            Error::runtime(format!(
                "{name}:{method} must be called on a {name} (use {variable}:{method}(...))",
                name = T::NAME,
                variable = T::VARIABLE,
            ))
        })
    }
}

impl<T: Object> FromLua for This<T> {
    fn from_lua(value: Value, _lua: &Lua) -> Result<Self> {
        Ok(This(match value {
            Value::UserData(ud) => ud.borrow::<T>().ok().map(|this| this.shared()),
            _ => None,
        }))
    }

    /// The fast path mlua takes for a function's arguments: the userdata is borrowed
    /// where it lies on the stack, with no registry reference made for it.
    ///
    /// # Safety
    /// mlua's contract for `from_stack`: `idx` is a valid index of `lua`'s current
    /// stack (any value, or none), and the state is locked by the caller for the
    /// whole call, as it is while mlua converts a Rust function's arguments.
    unsafe fn from_stack(idx: c_int, lua: &RawLua) -> Result<Self> {
        // SAFETY: `idx` and the lock are this function's own contract, which is what
        // `UserDataRef::from_stack` asks for; it checks the value's type itself (any
        // other value, or a `T` already borrowed mutably, is an error and becomes
        // `None`). The borrow it returns points into the userdata, which the stack
        // keeps alive, and is dropped before this function returns: only the cloned
        // `Shared` state leaves it.
        let this = unsafe { <UserDataRef<T> as FromLua>::from_stack(idx, lua) };
        Ok(This(this.ok().map(|this| this.shared())))
    }
}
