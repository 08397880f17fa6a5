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
//! An idle HTTP/1.1 connection is closed after [`IDLE_TIMEOUT`] (reqwest's and
//! hyper-util's default), so a long-running script that talks to many origins does
//! not collect sockets: a sweeper task runs while any connection is idle, sleeping
//! until the oldest one expires.
//!
//! This module only checks connections out, back in, and keeps them idle. It does
//! not open them (see [`super::connect`]), choose their route ([`super::proxy`]),
//! build requests, follow redirects or decode bodies (the parent module).

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::rc::{Rc, Weak};
use std::time::Duration;

use hyper::client::conn::{http1, http2};
use tokio::sync::Notify;
use tokio::time::Instant;

use super::connect::{Connector, RequestBody, Sender};
use super::limits::connect_within;
use super::origin::Origin;
use super::proxy::Route;
use crate::error::BoxError;

/// The most idle HTTP/1.1 connections kept for one origin.
const MAX_IDLE_PER_ORIGIN: usize = 64;

/// How long an HTTP/1.1 connection is kept idle before it is closed.
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// A connection handed out by [`Pool::checkout`].
pub(crate) struct Checkout {
    pub(crate) sender: Sender,
    /// Whether the connection carried an earlier request (so a request it fails to
    /// send may be retried on a new one).
    pub(crate) reused: bool,
}

/// An idle HTTP/1.1 connection and the moment it went idle.
type IdleSince = (http1::SendRequest<RequestBody>, Instant);

/// The idle HTTP/1.1 connections, per origin, each with the moment it went idle
/// (oldest first), and the sweeper that closes them once they have been idle for
/// `timeout`.
struct Idle {
    lists: RefCell<HashMap<Origin, Vec<IdleSince>>>,
    timeout: Duration,
    sweeping: Cell<bool>,
}

impl Idle {
    /// The most recently idle live connection to `origin`, if any has not expired.
    fn take(&self, origin: &Origin) -> Option<http1::SendRequest<RequestBody>> {
        let mut lists = self.lists.borrow_mut();
        let list = lists.get_mut(origin)?;
        let (sender, since) = list.pop()?;
        if since.elapsed() < self.timeout {
            return Some(sender);
        }
        // This was the newest, so all of them have expired.
        lists.remove(origin);
        None
    }

    /// Keeps `sender` as idle from now (unless `origin` already has the most idle
    /// connections), and starts the sweeper if it is not running.
    fn put(self: &Rc<Self>, origin: &Origin, sender: http1::SendRequest<RequestBody>) {
        let mut lists = self.lists.borrow_mut();
        let entry = (sender, Instant::now());
        match lists.get_mut(origin) {
            Some(list) if list.len() < MAX_IDLE_PER_ORIGIN => list.push(entry),
            Some(_) => return,
            None => {
                lists.insert(origin.clone(), vec![entry]);
            }
        }
        if !self.sweeping.replace(true) {
            tokio::task::spawn_local(Idle::sweep(Rc::downgrade(self)));
        }
    }

    /// Closes connections as they expire (dropping a sender ends its connection
    /// task, which closes the socket), until none is idle; then ends, to be started
    /// again by the next `put`. Holds the pool weakly, so a dropped pool stops it.
    async fn sweep(idle: Weak<Idle>) {
        loop {
            let deadline = {
                let Some(idle) = idle.upgrade() else { return };
                let timeout = idle.timeout;
                let mut lists = idle.lists.borrow_mut();
                lists.retain(|_, list| {
                    list.retain(|(sender, since)| since.elapsed() < timeout && !sender.is_closed());
                    !list.is_empty()
                });
                let oldest = lists.values().map(|list| list[0].1).min();
                let Some(oldest) = oldest else {
                    idle.sweeping.set(false);
                    return;
                };
                oldest + timeout
            };
            tokio::time::sleep_until(deadline).await;
        }
    }
}

pub(crate) struct Pool {
    idle_http1: Rc<Idle>,
    http2: RefCell<HashMap<Origin, http2::SendRequest<RequestBody>>>,
    /// HTTPS origins whose connection is being opened while it is not yet known
    /// whether they speak HTTP/2; notified when that connection is ready or failed.
    first_https: RefCell<HashMap<Origin, Rc<Notify>>>,
    /// HTTPS origins that negotiated HTTP/1.1: no request waits on another's connect.
    http1_only: RefCell<HashSet<Origin>>,
    connector: Connector,
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

impl Default for Pool {
    fn default() -> Pool {
        Pool::with_idle_timeout(IDLE_TIMEOUT)
    }
}

impl Pool {
    /// A pool that closes HTTP/1.1 connections idle for `timeout`.
    pub(crate) fn with_idle_timeout(timeout: Duration) -> Pool {
        Pool {
            idle_http1: Rc::new(Idle {
                lists: RefCell::default(),
                timeout,
                sweeping: Cell::new(false),
            }),
            http2: RefCell::default(),
            first_https: RefCell::default(),
            http1_only: RefCell::default(),
            connector: Connector::default(),
        }
    }

    /// A connection to `origin` that is ready to send: a live idle one, or a new one
    /// opened along `route` within `connect_limit` (if any). (The route of an origin
    /// never changes while the pool lives, so connections need not be told apart by
    /// route.)
    pub(crate) async fn checkout(
        &self,
        origin: &Origin,
        route: Route<'_>,
        connect_limit: Option<Duration>,
    ) -> Result<Checkout, BoxError> {
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
            let idle = self.idle_http1.take(origin);
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
        let connect = self.connector.connect(origin, route);
        let sender = Box::pin(connect_within(connect_limit, origin, route, connect)).await;
        if let Ok(sender) = &sender {
            self.remember(origin, sender);
        }
        drop(first_https);
        Ok(Checkout {
            sender: sender?,
            reused: false,
        })
    }

    /// Returns a connection whose response has been read in full. An HTTP/1.1 one
    /// goes back to the idle list; an HTTP/2 one stays shared and needs nothing.
    pub(crate) fn checkin(&self, origin: &Origin, sender: Sender) {
        let Sender::Http1(sender) = sender else {
            return;
        };
        if !sender.is_closed() {
            self.idle_http1.put(origin, sender);
        }
    }

    /// Records what a new connection to `origin` negotiated: an HTTP/2 one is shared
    /// from now on; an HTTPS origin that chose HTTP/1.1 is remembered as such, so
    /// its requests stop waiting for one another's connections.
    fn remember(&self, origin: &Origin, sender: &Sender) {
        match sender {
            Sender::Http2(sender) => {
                self.http2
                    .borrow_mut()
                    .insert(origin.clone(), sender.clone());
            }
            Sender::Http1(_) if origin.https => {
                self.http1_only.borrow_mut().insert(origin.clone());
            }
            Sender::Http1(_) => {}
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
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use std::sync::Arc;

    use bytes::Bytes;
    use http_body_util::{BodyExt, Full};
    use hyper_util::rt::TokioIo;

    use super::*;

    /// A keep-alive HTTP/1.1 server on loopback; counts connections opened and closed.
    async fn server() -> (u16, Arc<AtomicUsize>, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (opened, closed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let counters = (opened.clone(), closed.clone());
        tokio::task::spawn_local(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                counters.0.fetch_add(1, Ordering::SeqCst);
                let closed = counters.1.clone();
                tokio::task::spawn_local(async move {
                    let service = hyper::service::service_fn(|_request| async {
                        Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(
                            Bytes::from_static(b"hello"),
                        )))
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                    closed.fetch_add(1, Ordering::SeqCst);
                });
            }
        });
        (port, opened, closed)
    }

    /// Sends one GET over a connection from the pool and checks it back in; returns
    /// whether the connection was reused.
    async fn get(pool: &Pool, origin: &Origin) -> bool {
        let mut checkout = pool.checkout(origin, Route::Direct, None).await.unwrap();
        let request = http::Request::get("/")
            .header(http::header::HOST, format!("127.0.0.1:{}", origin.port))
            .body(RequestBody::empty())
            .unwrap();
        let response = checkout.sender.send(request).await.unwrap();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"hello");
        pool.checkin(origin, checkout.sender);
        checkout.reused
    }

    #[test]
    fn idle_connections_are_reused_then_closed_once_idle_for_the_timeout() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build_local(tokio::runtime::LocalOptions::default())
            .unwrap();
        runtime.block_on(async {
            let (port, opened, closed) = server().await;
            let origin = Origin {
                https: false,
                host: "127.0.0.1".to_string(),
                port,
            };
            let timeout = Duration::from_millis(300);
            let pool = Pool::with_idle_timeout(timeout);
            assert!(
                !get(&pool, &origin).await,
                "the first request opens a connection"
            );
            tokio::time::sleep(timeout / 3).await;
            assert!(
                get(&pool, &origin).await,
                "a connection idle for less than the timeout is reused"
            );
            assert_eq!(closed.load(Ordering::SeqCst), 0);
            // Idle for the timeout: the sweeper closes it without any request coming.
            tokio::time::timeout(Duration::from_secs(10), async {
                while closed.load(Ordering::SeqCst) == 0 {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
            .await
            .expect("the idle connection is closed within 10 s");
            assert!(
                !get(&pool, &origin).await,
                "after the timeout a new connection is opened"
            );
            assert_eq!(opened.load(Ordering::SeqCst), 2);
        });
    }
}
