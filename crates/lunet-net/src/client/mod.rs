//! `net.request`: the HTTP(S) client.
//!
//! The Luau side's argument is checked synchronously ([`params`]), then the calling
//! thread yields while a pooled reqwest client ([`pool`]) sends the request, follows
//! redirects, decodes the body, and reads it whole. The response becomes a
//! `FetchResponse` table. Only transport failures (connection, DNS, TLS, I/O,
//! too many redirects) are errors; any HTTP status is a normal response.

pub mod params;
pub mod pool;

use std::rc::Rc;

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use mlua::{Error, Function, IntoLua, Lua, Result, Value};

use crate::convert::header_table;
use params::RequestParams;
use pool::Clients;

/// A response read in full, converted to a Luau table when the thread resumes.
pub struct FetchResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl IntoLua for FetchResponse {
    fn into_lua(self, lua: &Lua) -> Result<Value> {
        let table = lua.create_table_with_capacity(0, 5)?;
        table.raw_set("ok", self.status.is_success())?;
        table.raw_set("statusCode", self.status.as_u16())?;
        table.raw_set(
            "statusMessage",
            self.status.canonical_reason().unwrap_or(""),
        )?;
        table.raw_set("headers", header_table(lua, &self.headers)?)?;
        table.raw_set("body", lua.create_string(&self.body)?)?;
        Ok(Value::Table(table))
    }
}

/// An error's message followed by each of its causes, without repeats.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}

fn request_error(method: &http::Method, url: &url::Url, error: reqwest::Error) -> Error {
    Error::runtime(format!(
        "net.request failed for {method} {url}: {}",
        error_chain(&error)
    ))
}

/// Sends one checked request and reads the whole response.
pub async fn send(client: &reqwest::Client, params: RequestParams) -> Result<FetchResponse> {
    let RequestParams {
        url,
        method,
        headers,
        body,
        ..
    } = params;
    let mut request = client.request(method.clone(), url.clone()).headers(headers);
    if let Some(body) = body {
        request = request.body(body);
    }
    let mut response = request
        .send()
        .await
        .map_err(|e| request_error(&method, &url, e))?;
    let status = response.status();
    let headers = std::mem::take(response.headers_mut());
    let body = response
        .bytes()
        .await
        .map_err(|e| request_error(&method, &url, e))?;
    Ok(FetchResponse {
        status,
        headers,
        body,
    })
}

/// Builds the `net.request` function.
pub fn create_request_function(lua: &Lua) -> Result<Function> {
    let version: String = lua.globals().get("_VERSION")?;
    let clients = Rc::new(Clients::new(pool::user_agent_from_version(&version)));
    lunet_runtime::create_async_function(lua, "net.request", move |_lua, value: Value| {
        let prepared = RequestParams::from_value(value).and_then(|params| {
            let client = clients.get(params.decompress)?.clone();
            Ok((client, params))
        });
        async move {
            let (client, params) = prepared?;
            send(&client, params).await
        }
    })
}
