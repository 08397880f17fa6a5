//! What a connection's bytes travel over, and which HTTP they speak.
//!
//! [`establish`] turns an [`Accepted`] stream (TCP, or a Unix socket) into a
//! [`Transport`] and a [`Protocol`]: on a server with `tls`, it runs the TLS handshake and takes the
//! protocol from ALPN (`h2`, else HTTP/1.1); on a plain port it reads the first bytes
//! and serves HTTP/2 when they are the HTTP/2 connection preface (prior knowledge,
//! "h2c"), HTTP/1 otherwise, handing the bytes it read back to hyper first. It runs
//! inside the connection's own task, under the connection's watchdog (so a client
//! that never finishes its handshake or preface is dropped at `headerTimeout`), and
//! never holds up the accept loop or other connections.
//!
//! What runs over the transport (hyper, the limits, the graceful stop) is
//! `connection`'s business; the TLS configuration is `crate::tls::server`'s.

use std::io::IoSlice;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::{TcpStream, UnixStream};
use tokio_rustls::server::TlsStream;

use super::watchdog::{Progress, Watched};

/// The HTTP/2 connection preface a client with prior knowledge starts with
/// (RFC 9113 3.4).
const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The HTTP a connection speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Protocol {
    Http1,
    Http2,
}

/// A connection's byte stream: plain TCP or TLS over it, with the bytes read to
/// detect the protocol replayed first.
pub(crate) struct Transport {
    /// Bytes already read from the socket (the first ones, read to tell HTTP/1 from
    /// HTTP/2), not yet handed to hyper.
    replay: Option<Box<Replay>>,
    stream: Stream,
}

struct Replay {
    bytes: [u8; PREFACE.len()],
    start: usize,
    end: usize,
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    Unix(UnixStream),
}

/// A connection as accepted, before anything was read from it. (`tls` is refused
/// for Unix socket addresses by the server's configuration.)
pub(crate) enum Accepted {
    Tcp(TcpStream),
    Unix(UnixStream),
}

/// Makes `tcp` ready for HTTP: the TLS handshake (with `tls`) or the protocol
/// detection (without). `None` when the client closed or failed its handshake.
/// Reads are counted in `progress` (for the watchdog's head phase).
pub(crate) async fn establish(
    accepted: Accepted,
    tls: Option<&Arc<rustls::ServerConfig>>,
    progress: Progress,
) -> Option<(Watched<Transport>, Protocol)> {
    let tcp = match accepted {
        Accepted::Tcp(tcp) => {
            let _ = tcp.set_nodelay(true);
            tcp
        }
        Accepted::Unix(unix) => return detect(Stream::Unix(unix), progress).await,
    };
    if let Some(config) = tls {
        let acceptor = tokio_rustls::TlsAcceptor::from(config.clone());
        let stream = acceptor.accept(tcp).await.ok()?;
        let protocol = match stream.get_ref().1.alpn_protocol() {
            Some(b"h2") => Protocol::Http2,
            _ => Protocol::Http1,
        };
        let transport = Transport {
            replay: None,
            stream: Stream::Tls(Box::new(stream)),
        };
        return Some((Watched::new(transport, progress), protocol));
    }
    detect(Stream::Plain(tcp), progress).await
}

/// Reads the first bytes of a plain stream: HTTP/2 if they are its preface, else
/// HTTP/1; either way they are replayed to hyper first.
async fn detect(stream: Stream, progress: Progress) -> Option<(Watched<Transport>, Protocol)> {
    let transport = Transport {
        replay: None,
        stream,
    };
    let mut watched = Watched::new(transport, progress);
    let mut bytes = [0u8; PREFACE.len()];
    let mut end = 0;
    let protocol = loop {
        let read = watched.read(&mut bytes[end..]).await.ok()?;
        if read == 0 {
            return None;
        }
        end += read;
        if bytes[..end] != PREFACE[..end] {
            break Protocol::Http1;
        }
        if end == PREFACE.len() {
            break Protocol::Http2;
        }
    };
    watched.get_mut().replay = Some(Box::new(Replay {
        bytes,
        start: 0,
        end,
    }));
    Some((watched, protocol))
}

impl AsyncRead for Transport {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        if let Some(replay) = &mut this.replay {
            let n = (replay.end - replay.start).min(buf.remaining());
            buf.put_slice(&replay.bytes[replay.start..replay.start + n]);
            replay.start += n;
            if replay.start == replay.end {
                this.replay = None;
            }
            return Poll::Ready(Ok(()));
        }
        match &mut this.stream {
            Stream::Plain(tcp) => Pin::new(tcp).poll_read(cx, buf),
            Stream::Unix(unix) => Pin::new(unix).poll_read(cx, buf),
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Transport {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match &mut self.stream {
            Stream::Plain(tcp) => Pin::new(tcp).poll_write(cx, buf),
            Stream::Unix(unix) => Pin::new(unix).poll_write(cx, buf),
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        match &mut self.stream {
            Stream::Plain(tcp) => Pin::new(tcp).poll_write_vectored(cx, bufs),
            Stream::Unix(unix) => Pin::new(unix).poll_write_vectored(cx, bufs),
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match &self.stream {
            Stream::Plain(tcp) => tcp.is_write_vectored(),
            Stream::Unix(unix) => unix.is_write_vectored(),
            Stream::Tls(tls) => tls.is_write_vectored(),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match &mut self.stream {
            Stream::Plain(tcp) => Pin::new(tcp).poll_flush(cx),
            Stream::Unix(unix) => Pin::new(unix).poll_flush(cx),
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match &mut self.stream {
            Stream::Plain(tcp) => Pin::new(tcp).poll_shutdown(cx),
            Stream::Unix(unix) => Pin::new(unix).poll_shutdown(cx),
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_shutdown(cx),
        }
    }
}
