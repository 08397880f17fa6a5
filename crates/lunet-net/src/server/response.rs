//! Turning what a handler returned into an HTTP response.
//!
//! A string is a 200 response with that body and `content-type: text/plain` (Lune's
//! exact value). Nothing (or nil) is a 200 with an empty body. A table is
//! `{ status?, headers?, body? }`: `status` defaults to 200 and is an integer from
//! 100 to 999, or a string holding one (`"404"`, as Lune's integer conversion
//! takes), sent as given; header values may be arrays (sent as repeated headers, such
//! as several `Set-Cookie`), and `body` is a string, a buffer, or a function that
//! produces the body chunk by chunk (see [`super::stream`]). Anything else is an
//! error the server answers with 500.
//!
//! A 1xx status cannot be a final response: hyper would replace it with an empty
//! 500 and close the connection (what Lune's clients get). It is refused here
//! instead, as a handler error: the client gets the usual 500, the connection stays
//! open, and stderr says why.
//!
//! What the handler returned is read straight off its thread's stack ([`Returned`]):
//! a plain response table (no metatable, the usual case) has its three fields read
//! there with raw gets, where a metamethod-aware `get` through mlua would be a
//! protected call per field (a tenth of a POST echo's cost). A table with a metatable
//! is read with ordinary gets, so `__index` still applies.

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use std::ffi::{CStr, c_int};
use std::pin::Pin;
use std::task::{Context, Poll};

use hyper::body::{Frame, SizeHint};

use mlua::state::RawLua;
use mlua::{Error, FromLua, FromLuaMulti, Lua, MultiValue, Result, Value, ffi};

use super::stream::StreamBody;
use crate::convert::{header_map, string_bytes};
use crate::error::BoxError;
use lunet_runtime::args;

/// A response body: the whole of it at once, or chunks a Luau function produces
/// (see [`super::stream`]).
pub(crate) enum Body {
    Full(Full<Bytes>),
    Stream(Box<StreamBody>),
}

impl From<Full<Bytes>> for Body {
    fn from(full: Full<Bytes>) -> Body {
        Body::Full(full)
    }
}

impl Body {
    fn bytes(bytes: Bytes) -> Body {
        Body::Full(Full::new(bytes))
    }
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<std::result::Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            Body::Full(full) => Pin::new(full).poll_frame(cx).map_err(|e| match e {}),
            Body::Stream(stream) => Pin::new(stream.as_mut()).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Body::Full(full) => full.is_end_stream(),
            Body::Stream(stream) => stream.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Body::Full(full) => full.size_hint(),
            Body::Stream(_) => SizeHint::default(),
        }
    }
}

/// A response with a fixed status and a short text body.
pub(crate) fn plain(status: StatusCode, text: &'static str) -> Response<Body> {
    let mut response = Response::new(Body::bytes(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

fn parse_status(value: &Value) -> Result<StatusCode> {
    let code = match value {
        Value::Nil => return Ok(StatusCode::OK),
        Value::String(text) => {
            let text = text.to_string_lossy();
            match text.trim().parse::<u16>() {
                Ok(code) if (100..=999).contains(&code) => code,
                _ => {
                    return Err(Error::runtime(format!(
                        "Invalid status - expected {STATUS_RANGE}, got '{text}'"
                    )));
                }
            }
        }
        other => args::integer_in::<u16>(other, "status", 100..=999)?,
    };
    if code < 200 {
        return Err(Error::runtime(format!(
            "Invalid status - {code} is informational (1xx), which cannot be a final response"
        )));
    }
    // `StatusCode` takes every code from 100 to 999.
    StatusCode::from_u16(code).map_err(|_| args::out_of_range("status", STATUS_RANGE, value))
}

/// What [`parse_status`] accepts, as its error words it.
const STATUS_RANGE: &str = "an integer from 100 to 999";

/// The response to a plain string result: a 200 `text/plain` one, as Lune sends.
fn text_response(body: Bytes) -> Response<Body> {
    let mut response = Response::new(Body::bytes(body));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain"),
    );
    response
}

/// What a handler returned (its first return value).
pub(crate) enum Returned {
    /// A string, its bytes already copied off the thread's stack.
    Text(Bytes),
    /// A table without a metatable: its `status`, `headers` and `body`, read raw.
    Plain(Value, Value, Value),
    /// Anything else (a table with a metatable is read with ordinary gets).
    Other(Value),
}

impl Returned {
    /// What a handler's first return value `value` is (the general path; see
    /// [`FromLuaMulti::from_stack_multi`] for the fast one).
    pub(crate) fn from_value(value: Value) -> Returned {
        match value {
            Value::String(s) => Returned::Text(Bytes::copy_from_slice(&s.as_bytes())),
            other => Returned::Other(other),
        }
    }
}

impl FromLuaMulti for Returned {
    fn from_lua_multi(values: MultiValue, _lua: &Lua) -> Result<Self> {
        Ok(Returned::from_value(
            values.into_iter().next().unwrap_or(Value::Nil),
        ))
    }

    /// The fast path mlua takes for a thread's results.
    ///
    /// SAFETY (for the Luau C API calls): the value at `-nvals` exists; room for the
    /// one value pushed at a time is made first, and each is popped again. Neither
    /// `lua_tolstring` on a string, `lua_getmetatable` nor `lua_rawgetfield` can
    /// raise an error (no metamethods, no conversion; mlua aborts on allocation
    /// failure instead of raising).
    unsafe fn from_stack_multi(nvals: c_int, lua: &RawLua) -> Result<Self> {
        if nvals == 0 {
            return Ok(Returned::Other(Value::Nil));
        }
        unsafe {
            let state = lua.state();
            let index = ffi::lua_absindex(state, -nvals);
            match ffi::lua_type(state, index) {
                // Copied straight into the response body: no reference to the
                // string is kept, so none has to be made and released.
                ffi::LUA_TSTRING => return Ok(Returned::Text(string_bytes(state, index))),
                ffi::LUA_TTABLE => {}
                _ => return Ok(Returned::Other(Value::from_stack(index, lua)?)),
            }
            if ffi::lua_checkstack(state, 1) == 0 {
                return Err(Error::StackError);
            }
            if ffi::lua_getmetatable(state, index) != 0 {
                ffi::lua_pop(state, 1);
                return Ok(Returned::Other(Value::from_stack(index, lua)?));
            }
            let field = |key: &CStr| -> Result<Value> {
                ffi::lua_rawgetfield(state, index, key.as_ptr());
                let field = Value::from_stack(-1, lua);
                ffi::lua_pop(state, 1);
                field
            };
            Ok(Returned::Plain(
                field(c"status")?,
                field(c"headers")?,
                field(c"body")?,
            ))
        }
    }
}

fn table_response(status: Value, headers: Value, body: Value) -> Result<Response<Body>> {
    let status = parse_status(&status)?;
    let headers = header_map(&headers, "headers")?;
    let body = match body {
        Value::Nil => Body::bytes(Bytes::new()),
        Value::Function(function) => Body::Stream(Box::new(StreamBody::new(function))),
        other => Body::bytes(args::bytes(&other, "body")?),
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    Ok(response)
}

/// Converts what a handler returned into a response.
pub(crate) fn from_handler(returned: Returned) -> Result<Response<Body>> {
    match returned {
        Returned::Text(bytes) => Ok(text_response(bytes)),
        // Nothing returned: a 200 with an empty body, as Lune sends.
        Returned::Other(Value::Nil) => Ok(Response::new(Body::bytes(Bytes::new()))),
        Returned::Plain(status, headers, body) => table_response(status, headers, body),
        Returned::Other(Value::Buffer(b)) => {
            Ok(Response::new(Body::bytes(Bytes::from(b.to_vec()))))
        }
        Returned::Other(Value::Table(t)) => {
            table_response(t.get("status")?, t.get("headers")?, t.get("body")?)
        }
        Returned::Other(other) => Err(Error::runtime(format!(
            "the handler returned {}; expected a string, nil or a table {{ status?, headers?, body? }}",
            lunet_runtime::type_name(&other)
        ))),
    }
}
