//! Turning what a handler returned into an HTTP response.
//!
//! A string is a 200 response with that body. A table is `{ status?, headers?, body? }`:
//! `status` defaults to 200 and must be a whole number from 200 to 599 (an
//! informational 1xx cannot be a final response), header values may be arrays (sent as
//! repeated headers, such as several `Set-Cookie`), and `body` is a string or buffer.
//! Anything else is an error the server answers with 500.

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use mlua::{Error, Result, Value};

use crate::convert::{body_bytes, header_map};

pub type Body = Full<Bytes>;

/// A response with a fixed status and a short text body.
pub fn plain(status: StatusCode, text: &'static str) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

fn parse_status(value: Value) -> Result<StatusCode> {
    let code = match value {
        Value::Nil => return Ok(StatusCode::OK),
        Value::Integer(i) => i as f64,
        Value::Number(n) => n,
        other => {
            return Err(Error::runtime(format!(
                "Invalid status - expected number, got {}",
                lunet_runtime::type_name(&other)
            )));
        }
    };
    if code.fract() != 0.0 || !(200.0..=599.0).contains(&code) {
        return Err(Error::runtime(format!(
            "Invalid status {code} - expected a whole number from 200 to 599"
        )));
    }
    StatusCode::from_u16(code as u16)
        .map_err(|e| Error::runtime(format!("Invalid status {code} - {e}")))
}

/// Converts what a handler returned (its first return value) into a response.
pub fn from_handler(value: Value) -> Result<Response<Body>> {
    match value {
        Value::String(s) => Ok(Response::new(Full::new(Bytes::copy_from_slice(
            &s.as_bytes(),
        )))),
        Value::Buffer(b) => Ok(Response::new(Full::new(Bytes::from(b.to_vec())))),
        Value::Table(t) => {
            let status = parse_status(t.get("status")?)?;
            let headers = header_map(&t.get::<Value>("headers")?, "headers")?;
            let body = match t.get::<Value>("body")? {
                Value::Nil => Bytes::new(),
                other => body_bytes(&other, "body")?,
            };
            let mut response = Response::new(Full::new(body));
            *response.status_mut() = status;
            *response.headers_mut() = headers;
            Ok(response)
        }
        other => Err(Error::runtime(format!(
            "the handler returned {}; expected a string or a table {{ status?, headers?, body? }}",
            lunet_runtime::type_name(&other)
        ))),
    }
}
