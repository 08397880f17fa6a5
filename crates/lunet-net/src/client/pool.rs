//! The connections behind `net.request`: opened on demand, kept alive, and reused.
//!
//! Connections are keyed by [`Origin`] (scheme, host, port). An HTTP/1.1 connection
//! carries one request at a time: a request checks one out of the idle list (or opens
//! a new one) and checks it back in once it has read the whole response. An HTTP/2
//! connection (negotiated by ALPN over TLS) is shared by every request to its origin.
//! While the first connection to an HTTPS origin is being opened, other requests to
//! that origin wait for it rather than each opening their own: if it negotiates
//! HTTP/2 they all share it; if not, the origin is remembered as HTTP/1.1-only and
//! later requests open connections in parallel without waiting.
//! Each connection is driven by its own `spawn_local` task, on the same thread and
//! task queue as the Luau threads waiting on it. The TLS configuration (and with it
//! the trust store) is built on the first HTTPS connection, so plain-HTTP scripts
//! never read the system's certificates.
//!
//! This module does not build requests, follow redirects or decode bodies (see the
//! parent module); it only hands out connections that are ready to send.

use std::cell::{OnceCell, RefCell};
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::rc::Rc;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio::sync::Notify;

use super::BoxError;
use super::proxy::{self, Route};

/// A request body as the connections take it: whole, in memory.
pub type RequestBody = Full<Bytes>;

/// The most idle HTTP/1.1 connections kept for one origin.
const MAX_IDLE_PER_ORIGIN: usize = 64;

/// Where a connection goes. Requests to the same origin share connections.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Origin {
    pub https: bool,
    /// The host as a name or an IP address, without IPv6 brackets.
    pub host: String,
    pub port: u16,
}

impl Origin {
    /// The origin of an http or https URL (the caller has checked the scheme).
    pub fn of(url: &url::Url) -> Origin {
        let host = match url.host() {
            Some(url::Host::Domain(name)) => name.to_string(),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            None => String::new(),
        };
        let https = url.scheme() == "https";
        Origin {
            https,
            host,
            port: url
                .port_or_known_default()
                .unwrap_or(if https { 443 } else { 80 }),
        }
    }
}

/// `host:port`, with brackets around an IPv6 address, as errors name it.
impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// A connection ready to carry one request.
pub enum Sender {
    Http1(http1::SendRequest<RequestBody>),
    Http2(http2::SendRequest<RequestBody>),
}

/// A request a connection failed to send; hyper hands the request back when it was
/// never written, so it can go out again on another connection.
pub type SendError = hyper::client::conn::TrySendError<http::Request<RequestBody>>;

impl Sender {
    pub fn is_http2(&self) -> bool {
        matches!(self, Sender::Http2(_))
    }

    /// Sends `request` and waits for the response head.
    pub async fn send(
        &mut self,
        request: http::Request<RequestBody>,
    ) -> Result<http::Response<hyper::body::Incoming>, SendError> {
        match self {
            Sender::Http1(sender) => sender.try_send_request(request).await,
            Sender::Http2(sender) => sender.try_send_request(request).await,
        }
    }
}

/// A connection handed out by [`Pool::checkout`].
pub struct Checkout {
    pub sender: Sender,
    /// Whether the connection carried an earlier request (so a request it fails to
    /// send may be retried on a new one).
    pub reused: bool,
}

/// Runs hyper's background futures (HTTP/2 streams) as local tasks.
#[derive(Clone, Copy)]
struct LocalExecutor;

impl<F> hyper::rt::Executor<F> for LocalExecutor
where
    F: Future + 'static,
{
    fn execute(&self, future: F) {
        tokio::task::spawn_local(future);
    }
}

#[derive(Default)]
pub struct Pool {
    idle_http1: RefCell<HashMap<Origin, Vec<http1::SendRequest<RequestBody>>>>,
    http2: RefCell<HashMap<Origin, http2::SendRequest<RequestBody>>>,
    /// HTTPS origins whose connection is being opened while it is not yet known
    /// whether they speak HTTP/2; notified when that connection is ready or failed.
    first_https: RefCell<HashMap<Origin, Rc<Notify>>>,
    /// HTTPS origins that negotiated HTTP/1.1: no request waits on another's connect.
    http1_only: RefCell<HashSet<Origin>>,
    tls: OnceCell<tokio_rustls::TlsConnector>,
}

/// Marks an HTTPS origin's first connection as in progress; dropping it (when the
/// connection is ready, failed, or its request was cancelled) wakes the waiters.
struct FirstHttps<'a> {
    pool: &'a Pool,
    origin: &'a Origin,
    done: Rc<Notify>,
}

impl Drop for FirstHttps<'_> {
    fn drop(&mut self) {
        self.pool.first_https.borrow_mut().remove(self.origin);
        self.done.notify_waiters();
    }
}

impl Pool {
    /// A connection to `origin` that is ready to send: a live idle one, or a new one
    /// opened along `route`. (The route of an origin never changes while the pool
    /// lives, so connections need not be told apart by route.)
    pub async fn checkout(&self, origin: &Origin, route: Route<'_>) -> Result<Checkout, BoxError> {
        let mut first_https = None;
        loop {
            if let Some(shared) = self.shared_http2(origin) {
                return Ok(Checkout {
                    sender: Sender::Http2(shared),
                    reused: true,
                });
            }
            if !origin.https || self.http1_only.borrow().contains(origin) {
                break;
            }
            let pending = self.first_https.borrow().get(origin).cloned();
            match pending {
                // Created before awaiting, so it cannot miss the wake-up.
                Some(done) => done.notified().await,
                None => {
                    let done = Rc::new(Notify::new());
                    self.first_https
                        .borrow_mut()
                        .insert(origin.clone(), done.clone());
                    first_https = Some(FirstHttps {
                        pool: self,
                        origin,
                        done,
                    });
                    break;
                }
            }
        }
        loop {
            let idle = self
                .idle_http1
                .borrow_mut()
                .get_mut(origin)
                .and_then(Vec::pop);
            let Some(mut sender) = idle else { break };
            if !sender.is_closed() && sender.ready().await.is_ok() {
                return Ok(Checkout {
                    sender: Sender::Http1(sender),
                    reused: true,
                });
            }
        }
        // Boxed: opening a connection (TCP, TLS, handshake) is a large future, and
        // keeping it inline would make every request's future as large, to be copied
        // on every request, including the ones that reuse a connection.
        let sender = Box::pin(self.connect(origin, route)).await;
        drop(first_https);
        Ok(Checkout {
            sender: sender?,
            reused: false,
        })
    }

    /// Returns a connection whose response has been read in full. An HTTP/1.1 one
    /// goes back to the idle list; an HTTP/2 one stays shared and needs nothing.
    pub fn checkin(&self, origin: &Origin, sender: Sender) {
        let Sender::Http1(sender) = sender else {
            return;
        };
        if sender.is_closed() {
            return;
        }
        let mut idle = self.idle_http1.borrow_mut();
        match idle.get_mut(origin) {
            Some(list) if list.len() < MAX_IDLE_PER_ORIGIN => list.push(sender),
            Some(_) => {}
            None => {
                idle.insert(origin.clone(), vec![sender]);
            }
        }
    }

    fn shared_http2(&self, origin: &Origin) -> Option<http2::SendRequest<RequestBody>> {
        let mut shared = self.http2.borrow_mut();
        match shared.get(origin) {
            Some(sender) if !sender.is_closed() => Some(sender.clone()),
            Some(_) => {
                shared.remove(origin);
                None
            }
            None => None,
        }
    }

    fn tls(&self) -> &tokio_rustls::TlsConnector {
        self.tls.get_or_init(|| {
            tokio_rustls::TlsConnector::from(Arc::new(crate::tls::http_client_config()))
        })
    }

    async fn connect(&self, origin: &Origin, route: Route<'_>) -> Result<Sender, BoxError> {
        let tcp = match route {
            Route::Direct => open_tcp(origin)
                .await
                .map_err(|e| format!("cannot connect to {origin}: {e}"))?,
            Route::Forward(proxy) | Route::Tunnel(proxy) => open_tcp(&proxy.address)
                .await
                .map_err(|e| format!("cannot connect to {proxy}: {e}"))?,
        };
        match route {
            Route::Tunnel(proxy) => {
                let tunnel = proxy::tunnel(tcp, proxy, origin).await?;
                self.secure(origin, TokioIo::new(tunnel)).await
            }
            _ if origin.https => self.secure(origin, tcp).await,
            _ => handshake_http1(tcp).await,
        }
    }

    /// The TLS handshake with `origin` over `stream`, then HTTP/2 when the server
    /// chose it by ALPN, HTTP/1.1 otherwise.
    async fn secure<S>(&self, origin: &Origin, stream: S) -> Result<Sender, BoxError>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + 'static,
    {
        let name = ServerName::try_from(origin.host.clone())
            .map_err(|e| format!("'{}' is not a valid TLS server name: {e}", origin.host))?;
        let stream = self
            .tls()
            .connect(name, stream)
            .await
            .map_err(|e| format!("TLS handshake with {origin} failed: {e}"))?;
        if stream.get_ref().1.alpn_protocol() == Some(b"h2") {
            let (sender, connection) = http2::handshake(LocalExecutor, TokioIo::new(stream))
                .await
                .map_err(|e| format!("HTTP/2 handshake with {origin} failed: {e}"))?;
            tokio::task::spawn_local(connection);
            self.http2
                .borrow_mut()
                .insert(origin.clone(), sender.clone());
            Ok(Sender::Http2(sender))
        } else {
            self.http1_only.borrow_mut().insert(origin.clone());
            handshake_http1(stream).await
        }
    }
}

async fn open_tcp(address: &Origin) -> std::io::Result<TcpStream> {
    let tcp = TcpStream::connect((address.host.as_str(), address.port)).await?;
    tcp.set_nodelay(true)?;
    Ok(tcp)
}

async fn handshake_http1<S>(stream: S) -> Result<Sender, BoxError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + 'static,
{
    let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::task::spawn_local(connection);
    Ok(Sender::Http1(sender))
}
