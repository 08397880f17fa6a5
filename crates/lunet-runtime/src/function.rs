//! Rust functions exposed to Luau with plain-string errors.
//!
//! mlua raises a Rust callback's error as a userdata, which `string.find(err, ...)`
//! and friends reject. Library functions made with [`create_function`] instead report
//! failure to a tiny Luau wrapper that raises the message as a string, prefixed with
//! the caller's position (`script.luau:12: Invalid body - ...`). Argument conversion
//! happens inside, so conversion errors are strings too. [`type_name`] names value
//! types as Luau does (`number`, never mlua's `integer`).

use mlua::{FromLuaMulti, Function, IntoLuaMulti, Lua, MultiValue, Result, Value};

use crate::report;

/// The Luau name of a value's type (`number` for integers as well).
pub fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Integer(_) | Value::Number(_) => "number",
        other => other.type_name(),
    }
}

/// Turns a callback result into `(true, values...)` or `(false, message)`.
pub(crate) fn flag_result(lua: &Lua, result: Result<MultiValue>) -> Result<MultiValue> {
    match result {
        Ok(mut values) => {
            values.push_front(Value::Boolean(true));
            Ok(values)
        }
        Err(error) => Ok(MultiValue::from_vec(vec![
            Value::Boolean(false),
            Value::String(lua.create_string(report::error_message(&error))?),
        ])),
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
    let inner = lua.create_function(move |lua, args: MultiValue| {
        let result = A::from_lua_multi(args, lua)
            .and_then(|args| f(lua, args))
            .and_then(|values| values.into_lua_multi(lua));
        flag_result(lua, result)
    })?;
    wrapper(lua)?.call(inner)
}
