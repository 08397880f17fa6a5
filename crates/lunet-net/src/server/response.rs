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
//! a plain response table (no metatable, the usual case) becomes the response there,
//! its three fields read with raw gets and its string headers and body copied
//! without making a Luau reference for each (an mlua `Value` per field, key and
//! header value cost ~40% of a table response's instructions; a metamethod-aware
//! `get` through mlua would be a protected call per field on top). A table with a
//! metatable is read with ordinary gets, so `__index` still applies. Both paths end
//! in the same checks, so they give the same responses and the same errors.

use bytes::Bytes;
use http::{Response, StatusCode};
use std::ffi::{CStr, c_int};
use std::pin::Pin;
use std::task::{Context, Poll};

use hyper::body::{Frame, SizeHint};

use mlua::state::RawLua;
use mlua::{Error, FromLua, FromLuaMulti, Lua, MultiValue, Result, Value, ffi};

use super::stream::StreamBody;
use super::whole::Whole;
use crate::body::chunk::Chunk;
use crate::convert::{header_map, header_map_from_stack, string_bytes};
use crate::error::BoxError;
use lunet_runtime::args;

/// A response body: the whole of it (see [`super::whole`]), or chunks a Luau
/// function produces (see [`super::stream`]).
pub(crate) enum Body {
    Full(Whole),
    Stream(Box<StreamBody>),
}

impl Body {
    pub(crate) fn bytes(bytes: Bytes) -> Body {
        Body::Full(Whole::new(bytes))
    }
}

impl hyper::body::Body for Body {
    type Data = Chunk;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<std::result::Result<Frame<Chunk>, BoxError>>> {
        match self.get_mut() {
            Body::Full(full) => Pin::new(full)
                .poll_frame(cx)
                .map_ok(|frame| frame.map_data(Chunk::Owned)),
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
    /// A table without a metatable, already made into the response (or the error
    /// that gives).
    Table(Result<Response<Body>>),
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
    /// three values pushed at a time (a field, and a header's key and value) is
    /// made first, and each is popped again. Neither `lua_tolstring` on a string,
    /// `lua_getmetatable`, `lua_rawgetfield` nor `lua_rawiter` can raise an error
    /// (no metamethods, no conversion; mlua aborts on allocation failure instead of
    /// raising).
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
            if ffi::lua_checkstack(state, 3) == 0 {
                return Err(Error::StackError);
            }
            if ffi::lua_getmetatable(state, index) != 0 {
                ffi::lua_pop(state, 1);
                return Ok(Returned::Other(Value::from_stack(index, lua)?));
            }
            Ok(Returned::Table(table_from_stack(lua, index)))
        }
    }
}

/// The response for the table without a metatable at `index`, read as
/// [`table_response`] reads one; see the module documentation.
///
/// # Safety
/// `lua`'s state is locked by the caller, `index` is a valid absolute index on it
/// holding a table, and there is room for three more values on the stack.
unsafe fn table_from_stack(lua: &RawLua, index: c_int) -> Result<Response<Body>> {
    let state = lua.state();
    // SAFETY: the caller's contract; each field is pushed with a raw get (no
    // metamethod, cannot raise) and popped again before its result is used, and
    // `header_map_from_stack` gets the room for the two values it pushes.
    unsafe {
        let field = |key: &CStr| {
            ffi::lua_rawgetfield(state, index, key.as_ptr());
            ffi::lua_absindex(state, -1)
        };
        let at = field(c"status");
        // A number or nil makes no Luau reference as a `Value`.
        let status = Value::from_stack(at, lua).and_then(|value| parse_status(&value));
        ffi::lua_pop(state, 1);
        let status = status?;
        let at = field(c"headers");
        let headers = header_map_from_stack(lua, at, "headers");
        ffi::lua_pop(state, 1);
        let headers = headers?;
        let at = field(c"body");
        let body = match ffi::lua_type(state, at) {
            ffi::LUA_TSTRING => Ok(Body::bytes(string_bytes(state, at))),
            ffi::LUA_TNIL => Ok(Body::bytes(Bytes::new())),
            _ => Value::from_stack(at, lua).and_then(body_from_value),
        };
        ffi::lua_pop(state, 1);
        Ok(response(status, headers, body?))
    }
}

/// A response table's `body` that is not a string or nil.
fn body_from_value(body: Value) -> Result<Body> {
    Ok(match body {
        Value::Nil => Body::bytes(Bytes::new()),
        Value::Function(function) => Body::Stream(Box::new(StreamBody::new(function))),
        other => Body::bytes(args::bytes(&other, "body")?),
    })
}

fn response(status: StatusCode, headers: http::HeaderMap, body: Body) -> Response<Body> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

/// The response for a `{ status?, headers?, body? }` table's fields.
fn table_response(status: Value, headers: Value, body: Value) -> Result<Response<Body>> {
    let status = parse_status(&status)?;
    let headers = header_map(&headers, "headers")?;
    Ok(response(status, headers, body_from_value(body)?))
}

/// Converts what a handler returned into a response.
pub(crate) fn from_handler(returned: Returned) -> Result<Response<Body>> {
    match returned {
        Returned::Text(bytes) => Ok(text_response(bytes)),
        // Nothing returned: a 200 with an empty body, as Lune sends.
        Returned::Other(Value::Nil) => Ok(Response::new(Body::bytes(Bytes::new()))),
        Returned::Table(response) => response,
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

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::body::Body as _;

    /// A response as the client would see it, or the error's message.
    fn describe(result: Result<Response<Body>>) -> String {
        let mut response = match result {
            Ok(response) => response,
            Err(error) => return format!("error: {error}"),
        };
        let headers: Vec<String> = response
            .headers()
            .iter()
            .map(|(name, value)| format!("{name}={}", String::from_utf8_lossy(value.as_bytes())))
            .collect();
        let body = match response.body_mut() {
            Body::Stream(_) => "a stream".to_string(),
            Body::Full(full) => {
                let mut context = Context::from_waker(std::task::Waker::noop());
                match Pin::new(full).poll_frame(&mut context) {
                    Poll::Ready(Some(Ok(frame))) => {
                        String::from_utf8_lossy(frame.data_ref().unwrap()).into_owned()
                    }
                    Poll::Ready(None) => String::new(),
                    other => panic!("a full body is ready at once: {other:?}"),
                }
            }
        };
        format!("{} {headers:?} {body:?}", response.status().as_u16())
    }

    /// The response table `source` evaluates to, converted off the stack (the fast
    /// path every plain table takes) and through `Value`s (the path a table with a
    /// metatable takes, which the fast one falls back to for anything unusual).
    fn both_paths(lua: &Lua, source: &str) -> (String, String) {
        let make: mlua::Function = lua
            .load(format!("return function() return {source} end"))
            .eval()
            .unwrap();
        let fast = match make.call::<Returned>(()).unwrap() {
            Returned::Table(result) => describe(result),
            _ => panic!("{source}: a plain table takes the fast path"),
        };
        let value: Value = make.call(()).unwrap();
        let Value::Table(table) = value else {
            panic!("{source} is a table")
        };
        let slow = table_response(
            table.get("status").unwrap(),
            table.get("headers").unwrap(),
            table.get("body").unwrap(),
        );
        (fast, describe(slow))
    }

    #[test]
    fn a_table_read_off_the_stack_is_the_same_response_as_one_read_through_values() {
        let lua = Lua::new();
        let expected = [
            ("{}", "200 [] \"\""),
            (
                r#"{ status = 201, headers = { ["x-b"] = "2", ["X-A"] = "1" }, body = "hi" }"#,
                "201 [\"x-a=1\", \"x-b=2\"] \"hi\"",
            ),
            (r#"{ status = "404" }"#, "404 [] \"\""),
            (
                r#"{ headers = { ["set-cookie"] = { "a=1", "b=2" }, n = 5, f = 1.5 } }"#,
                "200 [\"f=1.5\", \"n=5\", \"set-cookie=a=1\", \"set-cookie=b=2\"] \"\"",
            ),
            (r#"{ body = buffer.fromstring("buf") }"#, "200 [] \"buf\""),
            (
                "{ body = function() return nil end }",
                "200 [] \"a stream\"",
            ),
            (
                "{ status = 200.5 }",
                "error: runtime error: Invalid status - expected an integer from 100 to 999, got 200.5",
            ),
        ];
        for (source, want) in expected {
            let (fast, slow) = both_paths(&lua, source);
            assert_eq!(fast, want, "{source}");
            assert_eq!(slow, want, "{source}");
        }
        // Errors (and edge cases) only need to agree, whatever their wording.
        let agree = [
            "{ status = 150 }",
            "{ status = 1000 }",
            "{ status = -200 }",
            r#"{ status = "teapot" }"#,
            "{ status = true }",
            "{ status = 0/0 }",
            "{ status = math.huge }",
            r#"{ headers = "nope" }"#,
            r#"{ headers = { [1] = "x" } }"#,
            r#"{ headers = { ["bad name"] = "x" } }"#,
            r#"{ headers = { ["x-a"] = "a\nb" } }"#,
            r#"{ headers = { ["x-a"] = true } }"#,
            r#"{ headers = { ["x-a"] = { "ok", 5 } } }"#,
            r#"{ headers = { ["x-a"] = "\255" } }"#,
            r#"{ headers = (function() local t = {} for i = 1, 8193 do t["x-" .. i] = "v" end return t end)() }"#,
            r#"{ headers = (function() local t = {} for i = 1, 8192 do t["x-" .. i] = "v" end return t end)() }"#,
            "{ body = true }",
            "{ body = 5 }",
            r#"{ status = 500, headers = { ["x-a"] = "ok", [true] = "no" }, body = "x" }"#,
        ];
        for source in agree {
            let (fast, slow) = both_paths(&lua, source);
            assert_eq!(fast, slow, "{source}");
        }
    }
}
