//! A reference for `net.serve` with `tls`: the raw hyper + rustls server of
//! `hyper-tls`, with each request answered by a Luau function the way a Luau
//! runtime's server is written most plainly: per request, a table with the method,
//! path, query, headers (as strings) and body is built with mlua's API, the handler
//! is called, and its result (a string, or a table with `status` and `body`)
//! becomes the response, a string going out as `text/plain`. The handler is the one
//! in `scripts/serve_tls.luau`.
//!
//! It is not a ceiling: it does less than Lunet (the handler runs as a plain call
//! where Lunet runs it in a Luau thread that may yield; no limits or timeouts; the
//! query is not parsed, the benchmark sends none; a handler error aborts), but it
//! builds each table with more work than Lunet's request path does. What it shows is
//! how much of raw hyper's rate is left once a Luau handler is in the loop.
//!
//! With `call` as a fourth argument, the request table is built once (from the
//! first request) and every request after it calls the handler with that same
//! table: the cost of a Luau call per request and nothing else, a lower bound for
//! any server whose handlers are Luau functions. (Every request then gets the first
//! one's table, so this mode is for the hello: a POST is answered as that was.)
//!
//! Usage: hyper-tls-luau <port> <cert.pem> <key.pem> [call]

use std::rc::Rc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use mlua::{Function, Lua, Table, Value};

const HANDLER: &str = r#"
return function(request)
    if request.method == "POST" then
        return { status = 200, body = request.body }
    end
    return "Hello, World!"
end
"#;

/// Runs hyper's HTTP/2 streams on the local set, as Lunet does (Luau is not `Send`).
#[derive(Clone, Copy)]
struct LocalExec;

impl<F: Future + 'static> hyper::rt::Executor<F> for LocalExec {
    fn execute(&self, future: F) {
        tokio::task::spawn_local(future);
    }
}

/// The request as a Luau table.
fn request_table(
    lua: &Lua,
    parts: &hyper::http::request::Parts,
    body: &[u8],
) -> mlua::Result<Table> {
    let headers = lua.create_table_with_capacity(0, parts.headers.keys_len())?;
    for (name, value) in &parts.headers {
        headers.raw_set(name.as_str(), lua.create_string(value.as_bytes())?)?;
    }
    let request = lua.create_table_with_capacity(0, 5)?;
    request.raw_set("method", parts.method.as_str())?;
    request.raw_set("path", parts.uri.path())?;
    request.raw_set("query", lua.create_table()?)?;
    request.raw_set("headers", headers)?;
    request.raw_set("body", lua.create_string(body)?)?;
    Ok(request)
}

/// The handler's result as a response.
fn response(value: Value) -> mlua::Result<hyper::Response<Full<Bytes>>> {
    match value {
        Value::String(text) => {
            let mut response =
                hyper::Response::new(Full::new(Bytes::from(text.as_bytes().to_vec())));
            response.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static("text/plain"),
            );
            Ok(response)
        }
        Value::Table(table) => {
            let status: u16 = table.raw_get("status")?;
            let body: mlua::LuaString = table.raw_get("body")?;
            let mut response =
                hyper::Response::new(Full::new(Bytes::from(body.as_bytes().to_vec())));
            *response.status_mut() =
                hyper::StatusCode::from_u16(status).map_err(mlua::Error::external)?;
            Ok(response)
        }
        other => Err(mlua::Error::runtime(format!("unexpected result {other:?}"))),
    }
}

/// The server's state: the Luau VM, the handler, and (in `call` mode) the one
/// request table every call gets.
struct Handler {
    lua: Lua,
    function: Function,
    reused: Option<std::cell::OnceCell<Table>>,
}

impl Handler {
    async fn answer(
        &self,
        request: hyper::Request<hyper::body::Incoming>,
    ) -> mlua::Result<hyper::Response<Full<Bytes>>> {
        let (parts, body) = request.into_parts();
        let body = if parts.method == hyper::Method::POST {
            body.collect()
                .await
                .map_err(mlua::Error::external)?
                .to_bytes()
        } else {
            Bytes::new()
        };
        let request = match &self.reused {
            Some(cell) => cell
                .get_or_init(|| request_table(&self.lua, &parts, &body).expect("the request table"))
                .clone(),
            None => request_table(&self.lua, &parts, &body)?,
        };
        response(self.function.call(request)?)
    }
}

fn main() {
    let port: u16 = lunet_bench::arg(1, 8443);
    let cert: String = lunet_bench::arg(2, "cert.pem".to_string());
    let key: String = lunet_bench::arg(3, "key.pem".to_string());
    let acceptor = lunet_bench::tls_acceptor(&cert, &key);
    let call_only = lunet_bench::arg(4, String::new()) == "call";
    let lua = Lua::new();
    let function: Function = lua.load(HANDLER).eval().expect("the handler");
    let handler = Rc::new(Handler {
        lua,
        function,
        reused: call_only.then(std::cell::OnceCell::new),
    });
    let serve = lunet_bench::accept_loop_local(port, move |stream| {
        let (acceptor, handler) = (acceptor.clone(), handler.clone());
        async move {
            let Ok(tls) = acceptor.accept(stream).await else {
                return;
            };
            let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
            let io = TokioIo::new(tls);
            let service = service_fn(move |request| {
                let handler = handler.clone();
                async move {
                    let response = handler.answer(request).await;
                    Ok::<_, std::convert::Infallible>(response.expect("the handler's response"))
                }
            });
            if h2 {
                let _ = hyper::server::conn::http2::Builder::new(LocalExec)
                    .serve_connection(io, service)
                    .await;
            } else {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, service)
                    .await;
            }
        }
    });
    let local = tokio::task::LocalSet::new();
    local.block_on(&lunet_bench::current_thread(), serve);
}
