//! `net.request` and `net.http.stream`: the HTTP(S) client.
//!
//! The Luau side's argument is checked synchronously ([`params`]) into an
//! [`Outgoing`] request, then the calling thread yields while the request is sent
//! over a pooled connection, redirects are followed ([`redirect`]), and the whole
//! response is read and decoded within Luau's 1 GiB string limit ([`decode`]); the
//! response becomes a `FetchResponse` table. Only transport failures (connection,
//! DNS, TLS, I/O, too many redirects, a body past the limit) are errors; any HTTP
//! status is a normal response.
//!
//! `net.http.stream` takes the same path up to the final response head, then hands
//! the body, undecoded, to a `BodyStream` (`crate::body::stream`), which decodes it as
//! the script reads and checks the connection back in once read to its end. A
//! script's `timeout` bounds the exchange up to that head; each wait for body data
//! is then bounded by the 300 s no-progress limit. A request body may be a Luau
//! function (`crate::body::producer`); a 307/308 redirect that would need it again
//! is an error, since it cannot be replayed.
//!
//! The layers below, each depending only on the ones after it:
//! [`pool`] checks connections out and in and keeps them idle (hyper HTTP/1.1, or
//! one shared HTTP/2 connection when a TLS server offers it); [`connect`] opens them
//! (TCP, proxy tunnel, TLS, handshake); [`proxy`] decides each origin's route from
//! the environment; [`origin`] is the plain data they share (the request, its
//! origin, URL credentials). [`limits`] bounds the time each exchange may take.

mod connect;
mod decode;
mod limits;
mod origin;
mod params;
mod pool;
mod proxy;
mod redirect;

use std::cell::OnceCell;
use std::rc::Rc;

use bytes::Bytes;
use http::header::{
    ACCEPT, ACCEPT_ENCODING, AUTHORIZATION, CONTENT_LENGTH, HOST, HeaderValue, PROXY_AUTHORIZATION,
    USER_AGENT,
};
use http::{HeaderMap, Request, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use mlua::{Error, Function, IntoLua, Lua, Result, Value};

use crate::body::stream::{BodyStream, Source};
use crate::convert::{header_table, raw_header_list};
use crate::error::{BoxError, error_chain};
use connect::RequestBody;
use connect::Sender;
use limits::Watchdog;
use lunet_runtime::object;
use origin::{Origin, Outgoing, Payload, basic_credentials};
use params::RequestParams;
use pool::Pool;
use proxy::{Proxies, Proxy, Route};
use redirect::MAX_REDIRECTS;

/// The most of a followed redirect's body that is read (to reuse its connection).
const REDIRECT_BODY_LIMIT: usize = 64 * 1024;

/// What `Accept-Encoding` offers while decompression is on: every coding
/// [`decode`] undoes.
const ACCEPTED_ENCODINGS: &str = "gzip, deflate, br, zstd";

/// A response read in full, converted to a Luau table when the thread resumes.
pub(crate) struct FetchResponse {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

/// The `FetchResponse` table both functions return: status, headers and `body`
/// (a string from `net.request`, a `BodyStream` from `net.http.stream`).
fn response_table(
    lua: &Lua,
    status: StatusCode,
    headers: &HeaderMap,
    body: impl IntoLua,
) -> Result<Value> {
    let table = lua.create_table_with_capacity(0, 6)?;
    table.raw_set("ok", status.is_success())?;
    table.raw_set("statusCode", status.as_u16())?;
    table.raw_set("statusMessage", status.canonical_reason().unwrap_or(""))?;
    table.raw_set("headers", header_table(lua, headers)?)?;
    table.raw_set("rawHeaders", raw_header_list(lua, headers)?)?;
    table.raw_set("body", body)?;
    Ok(Value::Table(table))
}

impl IntoLua for FetchResponse {
    fn into_lua(self, lua: &Lua) -> Result<Value> {
        let body = lua.create_string(&self.body)?;
        response_table(lua, self.status, &self.headers, body)
    }
}

/// A response whose body is left to read: what `net.http.stream` returns once the
/// head is in.
pub(crate) struct StreamHead {
    status: StatusCode,
    headers: HeaderMap,
    body: Incoming,
    connection: (Origin, Sender),
    /// `GET http://host/path`, for errors while the body is read.
    label: String,
}

/// A response, read whole or left to stream.
enum Fetched {
    Whole(FetchResponse),
    Stream(StreamHead),
}

/// `lunet/0.1.0` from `Lunet 0.1.0`: the lower-cased first word, a slash, and the
/// second word.
pub(crate) fn user_agent_from_version(version: &str) -> String {
    let mut words = version.split_whitespace();
    let name = words.next().unwrap_or("lunet").to_ascii_lowercase();
    match words.next() {
        Some(ver) => format!("{name}/{ver}"),
        None => name,
    }
}

/// The client behind `net.request`: the connection pool, the proxies and the
/// default headers.
pub(crate) struct Client {
    pool: Pool,
    /// Read from the environment on the first request (so a script may set the
    /// variables first), or an error naming the variable that is not a proxy URL.
    proxies: OnceCell<std::result::Result<Proxies, String>>,
    user_agent: Option<HeaderValue>,
}

impl Client {
    /// A client whose proxies come from the environment.
    pub(crate) fn new(user_agent: &str) -> Client {
        Client {
            pool: Pool::default(),
            proxies: OnceCell::new(),
            user_agent: HeaderValue::from_str(user_agent).ok(),
        }
    }

    fn proxies(&self) -> std::result::Result<&Proxies, BoxError> {
        match self.proxies.get_or_init(Proxies::from_env) {
            Ok(proxies) => Ok(proxies),
            Err(message) => Err(message.clone().into()),
        }
    }

    /// Sends one checked request, follows its redirects, and reads the whole response,
    /// within the script's `timeout` if it gave one (the defaults in [`limits`]
    /// otherwise). A request that times out, or whose thread is cancelled, drops its
    /// connection (and with it the socket) instead of checking it back in.
    pub(crate) async fn send(&self, params: RequestParams) -> Result<FetchResponse> {
        match self.fetch(params, false).await? {
            Fetched::Whole(response) => Ok(response),
            Fetched::Stream(_) => unreachable!("a whole response was asked for"),
        }
    }

    /// [`Client::send`] up to the final response head, for `net.http.stream`: the
    /// script's `timeout` bounds only that part.
    async fn stream(&self, params: RequestParams) -> Result<(StreamHead, bool)> {
        let decompress = params.decompress;
        match self.fetch(params, true).await? {
            Fetched::Stream(head) => Ok((head, decompress)),
            Fetched::Whole(_) => unreachable!("a stream was asked for"),
        }
    }

    async fn fetch(&self, params: RequestParams, stream: bool) -> Result<Fetched> {
        let RequestParams {
            mut request,
            decompress,
            timeout,
        } = params;
        move_credentials_to_header(&mut request.url, &mut request.headers);
        self.add_default_headers(&mut request.headers, decompress);
        let Some(limit) = timeout else {
            return self.follow(&mut request, decompress, true, stream).await;
        };
        let followed = self.follow(&mut request, decompress, false, stream);
        let outcome = tokio::time::timeout(limit, followed)
            .await
            .map_err(|_| limits::timed_out(limit, &request.method, &request.url));
        outcome.unwrap_or_else(|message| Err(Error::runtime(message)))
    }

    /// [`Client::send`]'s exchanges, one per redirect, each bounded by the default
    /// limits when `defaults` is set; the final body is read whole unless `stream`.
    async fn follow(
        &self,
        request: &mut Outgoing,
        decompress: bool,
        defaults: bool,
        stream: bool,
    ) -> Result<Fetched> {
        let failed = |method: &http::Method, url: &url::Url, error: BoxError| {
            Error::runtime(format!(
                "net.request failed for {method} {url}: {}",
                error_chain(&*error)
            ))
        };
        let mut timer = std::pin::pin!(None);
        let mut redirects = 0;
        loop {
            let mut watchdog = Watchdog::new(timer.as_mut(), defaults);
            let exchange = self.exchange(request, &mut watchdog).await;
            let (status, mut headers, body, connection) = match exchange {
                Ok(response) => response,
                Err(error) => {
                    // The function's own error, rather than hyper's word for it.
                    let error = match &request.body {
                        Some(Payload::Function(producer)) => match producer.failure() {
                            Some(message) => {
                                format!("the request body function failed: {message}").into()
                            }
                            None => error,
                        },
                        _ => error,
                    };
                    return Err(failed(&request.method, &request.url, error));
                }
            };
            let (method, url) = (request.method.clone(), request.url.clone());
            let followed = redirect::follow(request, status, &headers);
            if followed && matches!(request.body, Some(Payload::Function(_))) {
                let error = format!(
                    "cannot follow the {} redirect to {}: the request body was a function, \
                     which cannot be sent again",
                    status.as_u16(),
                    request.url
                );
                return Err(failed(&method, &url, error.into()));
            }
            if stream && !followed {
                return Ok(Fetched::Stream(StreamHead {
                    status,
                    headers,
                    body,
                    connection,
                    label: format!("{method} {url}"),
                }));
            }
            if followed {
                // A redirect's body is read only so its connection can be reused:
                // a small one is (neither decoded nor kept); a larger one, or one
                // that fails, costs its connection rather than our memory.
                let read = decode::read_body(
                    &mut headers,
                    watchdog.body(body),
                    false,
                    REDIRECT_BODY_LIMIT,
                )
                .await;
                if read.is_ok() {
                    let (origin, sender) = connection;
                    self.pool.checkin(&origin, sender);
                }
                redirects += 1;
                if redirects > MAX_REDIRECTS {
                    let error = format!("too many redirects (the limit is {MAX_REDIRECTS})");
                    return Err(failed(&request.method, &request.url, error.into()));
                }
                continue;
            }
            let body = decode::read_body(
                &mut headers,
                watchdog.body(body),
                decompress,
                decode::MAX_RESPONSE_BODY,
            )
            .await
            .map_err(|error| failed(&method, &url, error))?;
            let (origin, sender) = connection;
            self.pool.checkin(&origin, sender);
            return Ok(Fetched::Whole(FetchResponse {
                status,
                headers,
                body,
            }));
        }
    }

    fn add_default_headers(&self, headers: &mut HeaderMap, decompress: bool) {
        if let Some(agent) = &self.user_agent {
            headers.entry(USER_AGENT).or_insert_with(|| agent.clone());
        }
        headers
            .entry(ACCEPT)
            .or_insert_with(|| HeaderValue::from_static("*/*"));
        if decompress {
            headers
                .entry(ACCEPT_ENCODING)
                .or_insert_with(|| HeaderValue::from_static(ACCEPTED_ENCODINGS));
        }
    }

    /// One request and its response head, on a pooled connection opened within the
    /// watchdog's connect limit, the head waited for under the watchdog; the caller
    /// reads the body and then checks the connection in. A request that a reused
    /// connection could not even send (the server had closed it meanwhile) is sent
    /// again on a new one.
    async fn exchange(
        &self,
        request: &Outgoing,
        watchdog: &mut Watchdog<'_>,
    ) -> std::result::Result<(StatusCode, HeaderMap, Incoming, (Origin, Sender)), BoxError> {
        let origin = Origin::of(&request.url);
        let route = self.proxies()?.route(&origin);
        let forward = match route {
            Route::Forward(proxy) => Some(proxy),
            _ => None,
        };
        loop {
            let connect_limit = watchdog.connect_limit();
            let mut checkout = self.pool.checkout(&origin, route, connect_limit).await?;
            let message = build(request, checkout.sender.is_http2(), forward)?;
            let response = match watchdog.head(checkout.sender.send(message)).await? {
                Ok(response) => response,
                Err(mut error) => {
                    if checkout.reused && error.take_message().is_some() {
                        continue;
                    }
                    return Err(error.into_error().into());
                }
            };
            let (parts, body) = response.into_parts();
            return Ok((parts.status, parts.headers, body, (origin, checkout.sender)));
        }
    }
}

/// Credentials in the URL (`http://user:pass@host/`) become a Basic `Authorization`
/// header (unless the script set one) and leave the URL, so they are never sent as
/// part of it nor shown in error messages.
fn move_credentials_to_header(url: &mut url::Url, headers: &mut HeaderMap) {
    let Some(value) = basic_credentials(url) else {
        return;
    };
    headers.entry(AUTHORIZATION).or_insert(value);
    // Only URLs that cannot have credentials (no host) refuse these; ours have one.
    let _ = url.set_username("");
    let _ = url.set_password(None);
}

/// The hyper request for `request`: origin-form with a `Host` header over HTTP/1.1,
/// absolute-form (which becomes `:authority`) over HTTP/2, and absolute-form with a
/// `Host` header (and the proxy's credentials) to a forwarding proxy.
fn build(
    request: &Outgoing,
    http2: bool,
    forward: Option<&Proxy>,
) -> std::result::Result<Request<RequestBody>, BoxError> {
    let url = &request.url;
    let target = if http2 || forward.is_some() {
        &url[..url::Position::AfterQuery]
    } else {
        &url[url::Position::BeforePath..url::Position::AfterQuery]
    };
    let mut message = Request::builder()
        .method(request.method.clone())
        .uri(target)
        .body(match &request.body {
            None => RequestBody::empty(),
            Some(Payload::Bytes(bytes)) => RequestBody::Full(Full::new(bytes.clone())),
            Some(Payload::Function(producer)) => {
                if producer.started() {
                    return Err("the request body function was already called; \
                                a function body cannot be sent again"
                        .into());
                }
                RequestBody::Produced(producer.body())
            }
        })?;
    let headers = message.headers_mut();
    *headers = request.headers.clone();
    if !http2 && !headers.contains_key(HOST) {
        let host = &url[url::Position::BeforeHost..url::Position::AfterPort];
        headers.insert(HOST, HeaderValue::from_str(host)?);
    }
    if let Some(authorization) = forward.and_then(|proxy| proxy.authorization.as_ref()) {
        headers.insert(PROXY_AUTHORIZATION, authorization.clone());
    }
    // hyper sends no length for an empty body, but a POST, PUT or PATCH without one
    // needs `Content-Length: 0` (RFC 9110 8.6): some servers answer 411 otherwise.
    // (A function body streams: its length is not known, so it is sent chunked.)
    let empty = match &request.body {
        None => true,
        Some(origin::Payload::Bytes(bytes)) => bytes.is_empty(),
        Some(origin::Payload::Function(_)) => false,
    };
    if empty && sends_length_when_empty(&request.method) {
        headers
            .entry(CONTENT_LENGTH)
            .or_insert_with(|| HeaderValue::from_static("0"));
    }
    Ok(message)
}

/// Methods whose requests are expected to carry a body, so an empty one is declared.
fn sends_length_when_empty(method: &http::Method) -> bool {
    matches!(
        *method,
        http::Method::POST | http::Method::PUT | http::Method::PATCH
    )
}

/// A streamed response as the script gets it: `FetchResponse`'s fields, with a
/// `BodyStream` as `body`.
struct StreamResponse {
    status: StatusCode,
    headers: HeaderMap,
    source: Source,
}

impl IntoLua for StreamResponse {
    fn into_lua(self, lua: &Lua) -> Result<Value> {
        let body = lua.create_userdata(BodyStream::new(self.source))?;
        response_table(lua, self.status, &self.headers, body)
    }
}

/// Builds the `net.request` and `net.http.stream` functions, which share one client
/// (and its connection pool).
pub(crate) fn create_functions(lua: &Lua) -> Result<(Function, Function)> {
    // `_VERSION` names Lune (scripts detect Lune by it); the User-Agent names Lunet.
    let version = format!("Lunet {}", env!("CARGO_PKG_VERSION"));
    let client = Rc::new(Client::new(&user_agent_from_version(&version)));
    let shared = client.clone();
    let request = lunet_runtime::create_async_function(lua, "net.request", move |lua, value| {
        let params = RequestParams::from_value(lua, value);
        let client = shared.clone();
        async move { client.send(params?).await }
    })?;
    object::methods::<BodyStream>(lua)?;
    let stream =
        lunet_runtime::create_async_function(lua, "net.http.stream", move |lua, value| {
            let params = RequestParams::from_value(lua, value);
            let client = client.clone();
            async move {
                let (head, decompress) = client.stream(params?).await?;
                let StreamHead {
                    status,
                    mut headers,
                    body,
                    connection: (origin, sender),
                    label,
                } = head;
                let decoder = decode::stream_decoder(&mut headers, body, decompress);
                let source = Source {
                    decoder,
                    // Read to its end: the connection can carry another request.
                    on_end: Some(Box::new(move || client.pool.checkin(&origin, sender))),
                    label,
                    what: "response body",
                    idle: Some(limits::NO_PROGRESS_TIMEOUT),
                    limit: None,
                };
                Ok(StreamResponse {
                    status,
                    headers,
                    source,
                })
            }
        })?;
    Ok((request, stream))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::AsyncReadExt;
    use tokio::time::Instant;

    use super::*;

    /// A loopback server, on the current local set, that accepts connections and
    /// reads from them but never writes; `closed` counts connections the client
    /// closed.
    async fn silent_server() -> (u16, Rc<std::cell::Cell<usize>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let closed = Rc::new(std::cell::Cell::new(0));
        let counter = closed.clone();
        tokio::task::spawn_local(async move {
            loop {
                let (mut stream, _) = listener.accept().await.unwrap();
                let counter = counter.clone();
                tokio::task::spawn_local(async move {
                    let mut buf = [0u8; 4096];
                    while let Ok(n) = stream.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                    }
                    counter.set(counter.get() + 1);
                });
            }
        });
        (port, closed)
    }

    fn get(url: &str, timeout: Option<Duration>) -> RequestParams {
        RequestParams {
            request: Outgoing {
                url: url::Url::parse(url).unwrap(),
                method: http::Method::GET,
                headers: HeaderMap::new(),
                body: None,
            },
            decompress: true,
            timeout,
        }
    }

    /// Sends `params` against a [`silent_server`] on a paused clock (which jumps
    /// ahead whenever everything waits); returns the error, how much (paused) time
    /// it took, and how many connections the server then saw closed.
    async fn fails_against_silent_server(
        scheme: &str,
        timeout: Option<Duration>,
    ) -> (String, Duration, usize, u16) {
        let local = tokio::task::LocalSet::new();
        let outcome = local.run_until(async {
            let (port, closed) = silent_server().await;
            let client = Client::new("test");
            let url = format!("{scheme}://127.0.0.1:{port}/silent");
            let start = Instant::now();
            let sent = client.send(get(&url, timeout));
            let outcome = tokio::time::timeout(Duration::from_secs(3600), sent).await;
            let took = start.elapsed();
            let Ok(Err(Error::RuntimeError(error))) = outcome else {
                panic!("a request to a silent server fails within an hour (paused)");
            };
            // Give the server's task a turn to see the connection go.
            tokio::time::sleep(Duration::from_millis(10)).await;
            (error, took, closed.get(), port)
        });
        outcome.await
    }

    #[tokio::test(start_paused = true)]
    async fn a_server_that_never_answers_fails_the_request_after_300_s() {
        let (error, took, closed, port) = fails_against_silent_server("http", None).await;
        let expected = format!(
            "net.request failed for GET http://127.0.0.1:{port}/silent: \
             no data received for 300 s (waiting for the response head)"
        );
        assert_eq!(error, expected);
        // The paused clock may also jump ahead while the connection is opened.
        assert!(
            took >= limits::NO_PROGRESS_TIMEOUT && took <= Duration::from_secs(331),
            "{took:?}"
        );
        assert_eq!(closed, 1, "the connection is closed, not kept");
    }

    #[tokio::test(start_paused = true)]
    async fn connecting_gives_up_after_30_s() {
        // The TLS handshake never gets an answer.
        let (error, took, closed, port) = fails_against_silent_server("https", None).await;
        let expected = format!(
            "net.request failed for GET https://127.0.0.1:{port}/silent: \
             connecting to 127.0.0.1:{port} timed out after 30 s"
        );
        assert_eq!(error, expected);
        assert_eq!(took, limits::CONNECT_TIMEOUT);
        assert_eq!(closed, 1, "the half-open connection is closed");
    }

    #[tokio::test(start_paused = true)]
    async fn a_script_timeout_replaces_the_defaults() {
        let limit = Duration::from_secs(400);
        let (error, took, closed, port) = fails_against_silent_server("http", Some(limit)).await;
        let expected =
            format!("net.request timed out after 400 s for GET http://127.0.0.1:{port}/silent");
        assert_eq!(error, expected);
        assert_eq!(took, limit, "the 300 s default did not apply");
        assert_eq!(closed, 1, "the connection is closed, not kept");
        let limit = Duration::from_secs(45);
        let (error, took, ..) = fails_against_silent_server("https", Some(limit)).await;
        assert!(
            error.contains("timed out after 45 s for GET https://"),
            "{error}"
        );
        assert_eq!(took, limit, "the 30 s connect default did not apply");
    }

    #[test]
    fn user_agent_is_derived_from_version() {
        assert_eq!(
            user_agent_from_version("Lunet 0.1.0+0.740"),
            "lunet/0.1.0+0.740"
        );
        assert_eq!(user_agent_from_version("Lune 0.10.4"), "lune/0.10.4");
    }

    #[test]
    fn http1_requests_are_origin_form_with_a_host_and_http2_absolute() {
        let request = Outgoing {
            url: url::Url::parse("http://[::1]:8080/p?q=1#frag").unwrap(),
            method: http::Method::GET,
            headers: HeaderMap::new(),
            body: None,
        };
        let http1 = build(&request, false, None).unwrap();
        assert_eq!(http1.uri(), "/p?q=1");
        assert_eq!(http1.headers()[HOST], "[::1]:8080");
        let http2 = build(&request, true, None).unwrap();
        assert_eq!(http2.uri(), "http://[::1]:8080/p?q=1");
        assert!(http2.headers().get(HOST).is_none());
    }

    #[test]
    fn proxies_are_read_on_the_first_request_with_the_scripts_own_writes() {
        // Made (as by `require("@lune/net")`) before the script sets the variable.
        let client = Client::new("test");
        let name = "https_proxy";
        let before = lunet_runtime::env::var(name);
        // As `process.env.https_proxy = ...` does; the process environment is untouched.
        lunet_runtime::env::set(name, Some("127.0.0.9:3128".into()));
        let origin = Origin::of(&url::Url::parse("https://far.test/").unwrap());
        let route = client
            .proxies()
            .map(|proxies| format!("{:?}", proxies.route(&origin)));
        lunet_runtime::env::set(name, before);
        let route = route.unwrap();
        assert!(route.starts_with("Tunnel(Proxy"), "{route}");
        assert!(route.contains("port: 3128"), "{route}");
        assert!(route.contains("variable: \"https_proxy\""), "{route}");
    }

    #[test]
    fn an_unreachable_proxy_is_named_in_the_error() {
        // A port that was just free: nothing listens there.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .unwrap()
            .port();
        let proxies = Proxies::from_lookup(|name| {
            (name == "HTTP_PROXY").then(|| format!("http://127.0.0.1:{port}"))
        })
        .unwrap();
        // As if read from the environment on the first request.
        let client = Client::new("test");
        let _ = client.proxies.set(Ok(proxies));
        let params = RequestParams {
            request: Outgoing {
                url: url::Url::parse("http://far.test/x").unwrap(),
                method: http::Method::GET,
                headers: HeaderMap::new(),
                body: None,
            },
            decompress: true,
            timeout: None,
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build_local(tokio::runtime::LocalOptions::default())
            .unwrap();
        let Err(error) = runtime.block_on(client.send(params)) else {
            panic!("a request through a closed proxy port fails");
        };
        let message = error.to_string();
        let expected = format!("cannot connect to the proxy 127.0.0.1:{port} (from HTTP_PROXY)");
        assert!(message.contains(&expected), "{message}");
        assert!(message.contains("Connection refused"), "{message}");
        assert!(message.contains("http://far.test/x"), "{message}");
    }
}
