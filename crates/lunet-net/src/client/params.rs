//! Reading `net.request`'s argument: a URL string or a `FetchParams` table.
//!
//! Checks every field and reports the first bad one by name: `url` (required, an
//! http or https URL), `method` (any case, sent upper-cased), `body` (string or
//! buffer, or a function that produces it piece by piece), `query` and `headers` (tables whose values are strings or arrays of
//! strings), `timeout` (seconds, a number greater than 0) and `options.decompress`
//! (boolean, default true). Query pairs are percent-encoded and appended to any
//! query already in the URL.

use std::time::Duration;

use http::{HeaderMap, Method};
use lunet_runtime::args;
use mlua::{Error, Lua, Result, Table, Value};

use super::origin::{Outgoing, Payload};
use crate::body::producer::Producer;
use crate::convert::{header_map, sorted_entries, string_values};

/// A fully checked request, ready to send.
pub(crate) struct RequestParams {
    pub(crate) request: Outgoing,
    pub(crate) decompress: bool,
    /// The script's bound on the whole exchange; none means the defaults in
    /// [`super::limits`].
    pub(crate) timeout: Option<Duration>,
}

/// Parses and checks a URL for `net.request`.
pub(crate) fn parse_url(text: &str) -> Result<url::Url> {
    let url =
        url::Url::parse(text).map_err(|e| Error::runtime(format!("Invalid url '{text}' - {e}")))?;
    match url.scheme() {
        "http" | "https" => Ok(url),
        other => Err(Error::runtime(format!(
            "Invalid url '{text}' - unsupported scheme '{other}' (expected http or https)"
        ))),
    }
}

fn append_query(url: &mut url::Url, query: &Value) -> Result<()> {
    let Some(table) = args::optional_table(query, "query")? else {
        return Ok(());
    };
    let mut pairs = String::new();
    for (key, value) in sorted_entries(&table, "query")? {
        for value in string_values(&value, "query", &key)? {
            if !pairs.is_empty() {
                pairs.push('&');
            }
            pairs.push_str(&crate::url::encode(key.as_bytes()));
            pairs.push('=');
            pairs.push_str(&crate::url::encode(&value));
        }
    }
    if pairs.is_empty() {
        return Ok(());
    }
    let combined = match url.query() {
        Some(existing) if !existing.is_empty() => format!("{existing}&{pairs}"),
        _ => pairs,
    };
    url.set_query(Some(&combined));
    Ok(())
}

fn parse_method(value: &Value) -> Result<Method> {
    match value {
        Value::Nil => Ok(Method::GET),
        Value::String(s) => {
            let upper = s.to_string_lossy().to_ascii_uppercase();
            Method::from_bytes(upper.as_bytes()).map_err(|_| {
                Error::runtime(format!(
                    "Invalid method '{}' - expected an HTTP method such as GET, POST, PUT, PATCH or DELETE",
                    s.to_string_lossy()
                ))
            })
        }
        other => Err(args::wrong("method", "string", other)),
    }
}

fn parse_decompress(options: &Value) -> Result<bool> {
    let Some(options) = args::optional_table(options, "options")? else {
        return Ok(true);
    };
    Ok(args::optional_boolean(&options.get("decompress")?, "options.decompress")?.unwrap_or(true))
}

impl RequestParams {
    /// Reads a URL string or a params table.
    pub(crate) fn from_value(lua: &Lua, value: Value) -> Result<RequestParams> {
        match value {
            Value::String(s) => Ok(RequestParams {
                request: Outgoing {
                    url: parse_url(&s.to_string_lossy())?,
                    method: Method::GET,
                    headers: HeaderMap::new(),
                    body: None,
                },
                decompress: true,
                timeout: None,
            }),
            Value::Table(t) => Self::from_table(lua, &t),
            other => Err(args::wrong("request", "string or table", &other)),
        }
    }

    fn from_table(lua: &Lua, t: &Table) -> Result<RequestParams> {
        let mut url = match t.get::<Value>("url")? {
            Value::String(s) => parse_url(&s.to_string_lossy())?,
            Value::Nil => {
                return Err(Error::runtime(
                    "Missing url - the request table needs a 'url' field",
                ));
            }
            other => return Err(args::wrong("url", "string", &other)),
        };
        append_query(&mut url, &t.get::<Value>("query")?)?;
        let method = parse_method(&t.get::<Value>("method")?)?;
        let headers = header_map(&t.get::<Value>("headers")?, "headers")?;
        let body = match t.get::<Value>("body")? {
            Value::Nil => None,
            Value::Function(function) => Some(Payload::Function(Producer::new(lua, function))),
            value @ (Value::String(_) | Value::Buffer(_)) => {
                Some(Payload::Bytes(args::bytes(&value, "body")?))
            }
            other => return Err(args::wrong("body", "string, buffer or function", &other)),
        };
        let decompress = parse_decompress(&t.get::<Value>("options")?)?;
        let timeout = args::optional_seconds(&t.get::<Value>("timeout")?, "timeout")?;
        Ok(RequestParams {
            request: Outgoing {
                url,
                method,
                headers,
                body,
            },
            decompress,
            timeout,
        })
    }
}
