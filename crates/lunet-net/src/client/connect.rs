//! Opening the connections behind `net.request`, step by step: TCP to the origin or
//! its proxy, a `CONNECT` tunnel through the proxy for HTTPS, the TLS handshake (with
//! ALPN choosing HTTP/2 or HTTP/1.1), and hyper's client handshake, whose connection
//! then runs as its own `spawn_local` task. The result is a [`Sender`] ready to carry
//! a request.
//!
//! The TLS configuration (and with it the trust store) is built on the first HTTPS
//! connection, so plain-HTTP scripts never read the system's certificates. This
//! module does not keep or share connections ([`super::pool`] does) nor decide the
//! route ([`super::proxy`] does); every failure is an error naming the step and the
//! host or proxy it was talking to.

use std::cell::OnceCell;
use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{HOST, PROXY_AUTHORIZATION};
use http_body_util::{Empty, Full};
use hyper::client::conn::{http1, http2};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;

use super::origin::Origin;
use super::proxy::{Proxy, Route};
use crate::body::chunk::Chunk;
use crate::body::producer::ProducerBody;
use crate::error::BoxError;

/// A request body as the connections take it: whole, in memory, or produced by a
/// Luau function as it is sent.
pub(crate) enum RequestBody {
    Full(Full<Bytes>),
    Produced(ProducerBody),
}

impl std::fmt::Debug for RequestBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RequestBody::Full(full) => full.fmt(f),
            RequestBody::Produced(_) => f.write_str("RequestBody::Produced"),
        }
    }
}

impl RequestBody {
    pub(crate) fn empty() -> RequestBody {
        RequestBody::Full(Full::new(Bytes::new()))
    }
}

impl hyper::body::Body for RequestBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            RequestBody::Full(full) => std::pin::Pin::new(full)
                .poll_frame(cx)
                .map_err(|never| match never {}),
            // hyper's HTTP/2 client wants `Send` data: the chunks are copied.
            RequestBody::Produced(produced) => std::pin::Pin::new(produced)
                .poll_frame(cx)
                .map_ok(|frame| frame.map_data(Chunk::into_bytes)),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            RequestBody::Full(full) => full.is_end_stream(),
            RequestBody::Produced(produced) => produced.is_end_stream(),
        }
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        match self {
            RequestBody::Full(full) => full.size_hint(),
            RequestBody::Produced(produced) => produced.size_hint(),
        }
    }
}

/// A connection ready to carry one request.
pub(crate) enum Sender {
    Http1(http1::SendRequest<RequestBody>),
    Http2(http2::SendRequest<RequestBody>),
}

/// A request a connection failed to send; hyper hands the request back when it was
/// never written, so it can go out again on another connection.
pub(crate) type SendError = hyper::client::conn::TrySendError<http::Request<RequestBody>>;

impl Sender {
    pub(crate) fn is_http2(&self) -> bool {
        matches!(self, Sender::Http2(_))
    }

    /// Sends `request` and waits for the response head.
    pub(crate) async fn send(
        &mut self,
        request: http::Request<RequestBody>,
    ) -> Result<http::Response<hyper::body::Incoming>, SendError> {
        match self {
            Sender::Http1(sender) => sender.try_send_request(request).await,
            Sender::Http2(sender) => sender.try_send_request(request).await,
        }
    }
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

/// Opens connections; holds the TLS connector, made on first use.
#[derive(Default)]
pub(crate) struct Connector {
    tls: OnceCell<tokio_rustls::TlsConnector>,
}

impl Connector {
    fn tls(&self) -> &tokio_rustls::TlsConnector {
        self.tls.get_or_init(|| {
            tokio_rustls::TlsConnector::from(Arc::new(crate::tls::http_client_config()))
        })
    }

    /// A new connection to `origin` along `route`, ready to send: HTTP/2 when an
    /// HTTPS server chose it by ALPN, HTTP/1.1 otherwise.
    pub(crate) async fn connect(
        &self,
        origin: &Origin,
        route: Route<'_>,
    ) -> Result<Sender, BoxError> {
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
                let tunnel = tunnel(tcp, proxy, origin).await?;
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
            Ok(Sender::Http2(sender))
        } else {
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

/// Asks `proxy` (already connected through `tcp`) for a tunnel to `origin`, and
/// returns the tunnel once the proxy has agreed.
async fn tunnel(tcp: TcpStream, proxy: &Proxy, origin: &Origin) -> Result<Upgraded, BoxError> {
    let (mut sender, connection) = http1::handshake::<_, Empty<Bytes>>(TokioIo::new(tcp))
        .await
        .map_err(|e| format!("{proxy} failed: {e}"))?;
    tokio::task::spawn_local(connection.with_upgrades());
    let authority = origin.to_string();
    let mut request = http::Request::builder()
        .method(http::Method::CONNECT)
        .uri(authority.as_str())
        .header(HOST, authority.as_str());
    if let Some(authorization) = &proxy.authorization {
        request = request.header(PROXY_AUTHORIZATION, authorization);
    }
    let response = sender
        .send_request(request.body(Empty::new())?)
        .await
        .map_err(|e| format!("{proxy} failed to open a tunnel to {authority}: {e}"))?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("{proxy} refused to open a tunnel to {authority}: {status}").into());
    }
    hyper::upgrade::on(response)
        .await
        .map_err(|e| format!("{proxy} failed to open a tunnel to {authority}: {e}").into())
}
