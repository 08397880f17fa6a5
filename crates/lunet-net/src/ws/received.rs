//! What `WebSocket:next()` returns: a received data message as its payload string
//! and its frame type (`"text"` or `"binary"`), or a lone nil once nothing more will
//! arrive.
//!
//! This is the WebSocket's hot path, so both values go straight onto the Luau stack
//! (as a [`LuaBytes`] would go): the payload copied into a Luau string, and the
//! frame type as one of two strings made once per VM ([`Kinds`]) and pushed from their references (interning `"text"` again for
//! every message cost ~150 instructions a round trip). How messages are queued and
//! handed out is [`super::socket`]'s business.

use std::ffi::c_int;
use std::rc::Rc;

use bytes::Bytes;
use mlua::state::RawLua;
use mlua::{Error, IntoLua, IntoLuaMulti, Lua, LuaString, MultiValue, Result, Value, ffi};

use crate::convert::LuaBytes;

/// A received text or binary message.
pub(crate) struct Received {
    pub(crate) bytes: Bytes,
    pub(crate) binary: bool,
}

impl Received {
    pub(crate) fn text(bytes: Bytes) -> Received {
        Received {
            bytes,
            binary: false,
        }
    }

    pub(crate) fn binary(bytes: Bytes) -> Received {
        Received {
            bytes,
            binary: true,
        }
    }
}

/// The strings `"text"` and `"binary"`, made once per VM and shared by its sockets.
pub(crate) struct Kinds {
    text: LuaString,
    binary: LuaString,
}

impl Kinds {
    /// This VM's kinds, made on first use.
    pub(crate) fn of(lua: &Lua) -> Result<Rc<Kinds>> {
        if let Some(kinds) = lua.app_data_ref::<Rc<Kinds>>() {
            return Ok(kinds.clone());
        }
        let kinds = Rc::new(Kinds {
            text: lua.create_string("text")?,
            binary: lua.create_string("binary")?,
        });
        lua.set_app_data(kinds.clone());
        Ok(kinds)
    }

    /// `message` ready to be handed to a script.
    pub(crate) fn deliver(self: &Rc<Self>, message: Received) -> Delivered {
        Delivered {
            message,
            kinds: self.clone(),
        }
    }
}

/// A received message with what names its frame type: `next()`'s two values.
pub(crate) struct Delivered {
    pub(crate) message: Received,
    kinds: Rc<Kinds>,
}

impl Delivered {
    fn kind(&self) -> &LuaString {
        if self.message.binary {
            &self.kinds.binary
        } else {
            &self.kinds.text
        }
    }
}

impl IntoLuaMulti for Delivered {
    fn into_lua_multi(self, lua: &Lua) -> Result<MultiValue> {
        let kind = Value::String(self.kind().clone());
        Ok(MultiValue::from_vec(vec![
            LuaBytes(self.message.bytes).into_lua(lua)?,
            kind,
        ]))
    }

    /// The fast path mlua takes for a function's results and a resumed thread's
    /// values.
    ///
    /// SAFETY (for the Luau C API calls): room for both values is made first (one
    /// check, not one per value: this runs for every message), and pushing a string
    /// cannot raise (mlua aborts on allocation failure instead, and a message is far
    /// below Luau's string size limit).
    unsafe fn push_into_stack_multi(self, lua: &RawLua) -> Result<c_int> {
        let Delivered { message, kinds } = self;
        let kind = if message.binary {
            &kinds.binary
        } else {
            &kinds.text
        };
        let state = lua.state();
        let bytes = &message.bytes;
        unsafe {
            if ffi::lua_checkstack(state, 2) == 0 {
                return Err(Error::StackError);
            }
            ffi::lua_pushlstring(state, bytes.as_ptr().cast(), bytes.len());
            kind.push_into_stack(lua)?;
        }
        Ok(2)
    }
}

/// What one `next()` call answers: a message, or nil (one value) at the end.
pub(crate) struct Next(pub(crate) Option<Delivered>);

impl IntoLuaMulti for Next {
    fn into_lua_multi(self, lua: &Lua) -> Result<MultiValue> {
        match self.0 {
            Some(delivered) => delivered.into_lua_multi(lua),
            None => Ok(MultiValue::from_vec(vec![Value::Nil])),
        }
    }

    /// SAFETY: as for [`Delivered`]'s; nil takes one slot, made first.
    unsafe fn push_into_stack_multi(self, lua: &RawLua) -> Result<c_int> {
        match self.0 {
            Some(delivered) => unsafe { delivered.push_into_stack_multi(lua) },
            None => {
                let state = lua.state();
                unsafe {
                    if ffi::lua_checkstack(state, 1) == 0 {
                        return Err(Error::StackError);
                    }
                    ffi::lua_pushnil(state);
                }
                Ok(1)
            }
        }
    }
}
