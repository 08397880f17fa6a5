//! Rust functions exposed to Luau with plain-string errors.
//!
//! mlua raises a Rust callback's error as a userdata, which `string.find(err, ...)`
//! and friends reject. Library functions made with [`create_function`] instead report
//! failure to a tiny Luau wrapper that raises the message as a string, prefixed with
//! the caller's position (`script.luau:12: Invalid body - ...`). Argument conversion
//! happens inside, so conversion errors are strings too.
//!
//! Arguments are converted straight off the Luau stack ([`Args`]) and results pushed
//! straight onto it behind their flag ([`Flagged`]), with no `MultiValue` in between:
//! this glue runs on every library call, including each WebSocket `send`/`next`.

use std::ffi::c_int;

use mlua::state::RawLua;
use mlua::{FromLuaMulti, Function, IntoLuaMulti, Lua, MultiValue, Result, Value, ffi};

use crate::report;

/// A callback's arguments as `A`, or why they could not be converted (reported to
/// the script as a string, like any other error of the callback).
pub(crate) struct Args<A>(pub Result<A>);

impl<A: FromLuaMulti> FromLuaMulti for Args<A> {
    fn from_lua_multi(values: MultiValue, lua: &Lua) -> Result<Self> {
        Ok(Args(A::from_lua_multi(values, lua)))
    }

    unsafe fn from_stack_args(
        nargs: c_int,
        i: usize,
        to: Option<&str>,
        lua: &RawLua,
    ) -> Result<Self> {
        Ok(Args(unsafe { A::from_stack_args(nargs, i, to, lua) }))
    }
}

/// What a callback hands its Luau wrapper: `(true, flags..., values...)` or
/// `(false, message)`. `flags` are booleans the wrapper reads before the values
/// (the async glue's "pending"); `Flags` has no values at all.
pub(crate) enum Flagged<R> {
    Ok(&'static [bool], R),
    Flags(&'static [bool]),
    Err(String),
}

impl<R> Flagged<R> {
    pub(crate) fn from_result(flags: &'static [bool], result: Result<R>) -> Flagged<R> {
        match result {
            Ok(values) => Flagged::Ok(flags, values),
            Err(error) => Flagged::error(&error),
        }
    }

    pub(crate) fn error(error: &mlua::Error) -> Flagged<R> {
        Flagged::Err(report::error_message(error))
    }
}

impl<R: IntoLuaMulti> IntoLuaMulti for Flagged<R> {
    fn into_lua_multi(self, lua: &Lua) -> Result<MultiValue> {
        match self {
            Flagged::Flags(flags) => Flagged::Ok(flags, ()).into_lua_multi(lua),
            Flagged::Ok(flags, values) => {
                let mut values = values.into_lua_multi(lua)?;
                for &flag in flags.iter().rev() {
                    values.push_front(Value::Boolean(flag));
                }
                values.push_front(Value::Boolean(true));
                Ok(values)
            }
            Flagged::Err(message) => Ok(MultiValue::from_vec(vec![
                Value::Boolean(false),
                Value::String(lua.create_string(message)?),
            ])),
        }
    }

    /// The fast path mlua takes for a callback's results.
    ///
    /// SAFETY (for the Luau C API calls): room for the flags (at most a few) and the
    /// message is made first; pushing a boolean cannot fail, and pushing a string
    /// cannot raise (mlua aborts on allocation failure instead). Values that fail to
    /// convert leave what they pushed above `top`, which is dropped.
    unsafe fn push_into_stack_multi(self, lua: &RawLua) -> Result<c_int> {
        let state = lua.state();
        unsafe {
            match self {
                Flagged::Ok(flags, values) => {
                    let count = 1 + flags.len() as c_int;
                    if ffi::lua_checkstack(state, count) == 0 {
                        return Err(mlua::Error::StackError);
                    }
                    let top = ffi::lua_gettop(state);
                    ffi::lua_pushboolean(state, 1);
                    for &flag in flags {
                        ffi::lua_pushboolean(state, c_int::from(flag));
                    }
                    match values.push_into_stack_multi(lua) {
                        Ok(pushed) => Ok(count + pushed),
                        // A value that cannot be converted is the callback's error.
                        Err(error) => {
                            ffi::lua_settop(state, top);
                            Flagged::<()>::error(&error).push_into_stack_multi(lua)
                        }
                    }
                }
                Flagged::Flags(flags) => Flagged::Ok(flags, ()).push_into_stack_multi(lua),
                Flagged::Err(message) => {
                    if ffi::lua_checkstack(state, 2) == 0 {
                        return Err(mlua::Error::StackError);
                    }
                    ffi::lua_pushboolean(state, 0);
                    ffi::lua_pushlstring(state, message.as_ptr().cast(), message.len());
                    Ok(2)
                }
            }
        }
    }
}

struct Wrapper(Function);

fn wrapper(lua: &Lua) -> Result<Function> {
    if let Some(wrapper) = lua.app_data_ref::<Wrapper>() {
        return Ok(wrapper.0.clone());
    }
    let wrapper: Function = lua
        .load(
            r#"
            local error = error
            local function finish(ok, ...)
                if ok then
                    return ...
                end
                error((...), 3)
            end
            return function(f)
                return function(...)
                    return finish(f(...))
                end
            end
            "#,
        )
        .set_name("=[lunet function]")
        .eval()?;
    lua.set_app_data(Wrapper(wrapper.clone()));
    Ok(wrapper)
}

/// Creates a Luau function calling `f`; its errors reach Luau as strings.
pub fn create_function<A, R, F>(lua: &Lua, f: F) -> Result<Function>
where
    A: FromLuaMulti,
    R: IntoLuaMulti,
    F: Fn(&Lua, A) -> Result<R> + 'static,
{
    let inner = lua.create_function(move |lua, Args(args): Args<A>| {
        Ok(Flagged::from_result(
            &[],
            args.and_then(|args| f(lua, args)),
        ))
    })?;
    wrapper(lua)?.call(inner)
}
