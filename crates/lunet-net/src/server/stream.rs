//! Streaming responses: a handler's `body = function() ... end`.
//!
//! [`StreamBody`] runs the function through the client's [`ProducerBody`] (each call
//! in its own Luau thread, so it may yield; a string or buffer it returns is one
//! chunk, a string lent to hyper without a copy; nil ends the body). Chunks reach
//! the client as Node's `res.write` calls do: whenever the function yields (waits),
//! what it returned is sent; a function that returns chunks back to back without
//! waiting has them gathered, and sent before its next call once [`FLUSH_AFTER`] has
//! passed since the last send or [`FLUSH_BYTES`] wait (a chunk is thus held at most
//! about 1 ms plus one call of the function; the first chunk is always sent at
//! once). Around it, this module ties the body to the connection and the server:
//!
//! - the request stays in flight (its [`InFlight`] guard lives in the body) until the
//!   body ends, so the watchdog sees a busy connection, not an idle one, and a
//!   stopping server lets the response finish;
//! - while the function yields, its thread is registered with the drain, so at the
//!   shutdown deadline it is cancelled;
//! - an error in the function (or a chunk that is not a string or buffer) is
//!   reported like a handler error, and the body fails, which makes hyper close the
//!   connection without the terminating chunk;
//! - when the body is dropped (the client went away), the function is not called
//!   again and a thread waiting in it is cancelled ([`ProducerBody`]'s drop).

use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use bytes::Buf;
use hyper::body::{Body, Frame};
use mlua::{Error, Function};

use super::Server;
use super::drain::Running;
use super::peer::{InFlight, Sending};
use crate::body::chunk::Chunk;
use crate::body::producer::{Producer, ProducerBody};
use crate::error::BoxError;

/// How long chunks returned without a wait may gather before they are sent.
const FLUSH_AFTER: std::time::Duration = std::time::Duration::from_millis(1);
/// How many bytes of such chunks may gather before they are sent (what hyper
/// queues for one write at least).
const FLUSH_BYTES: usize = super::connection::BUFFER_BYTES;

/// A response body produced by a Luau function; see the module documentation.
pub(crate) struct StreamBody {
    function: Function,
    started: Option<Started>,
    /// Holds the request in flight until the body ends, and tells the watchdog
    /// when a chunk waits for the client.
    sending: Option<Sending>,
    /// Set when a chunk was handed to hyper: the next poll decides whether to yield
    /// once first, so that hyper flushes before the function is called again (hyper
    /// buffers chunks that come without a wait).
    flush: bool,
    /// Bytes handed to hyper since it last flushed, and when it last did (`None`
    /// before the first chunk: that one is always sent at once).
    unflushed: usize,
    flushed_at: Option<tokio::time::Instant>,
    /// With `streamRequestBody`: the request's body, closed when this body ends (the
    /// function may read it while it produces the response).
    request_body: Option<Rc<crate::body::stream::Inner>>,
    ended: bool,
}

/// What the body knows once the request path took it.
struct Started {
    server: Rc<Server>,
    /// The request, as errors name it (`GET /events`).
    what: String,
    body: ProducerBody,
    /// The function's thread while it yields (by identity), registered with the
    /// drain.
    running: Option<(*const std::ffi::c_void, Running)>,
}

impl StreamBody {
    pub(crate) fn new(function: Function) -> StreamBody {
        StreamBody {
            function,
            started: None,
            sending: None,
            flush: false,
            unflushed: 0,
            flushed_at: None,
            request_body: None,
            ended: false,
        }
    }

    /// Notes that hyper is about to flush (the body returns `Pending`).
    fn flushed(&mut self) {
        self.unflushed = 0;
        self.flushed_at = Some(tokio::time::Instant::now());
    }

    /// Makes the body ready to run for `server`'s request `what`.
    pub(crate) fn start(&mut self, server: &Rc<Server>, what: String) {
        let producer = Producer::new(&server.lua, self.function.clone());
        self.started = Some(Started {
            server: server.clone(),
            what,
            body: producer.body(),
            running: None,
        });
    }

    /// Keeps the request in flight until the body ends.
    pub(crate) fn hold(&mut self, in_flight: InFlight) {
        self.sending = Some(Sending::new(in_flight));
    }

    /// Keeps the request's `BodyStream` readable until this body ends.
    pub(crate) fn close_at_end(&mut self, request_body: Rc<crate::body::stream::Inner>) {
        self.request_body = Some(request_body);
    }

    fn set_sending(&mut self, waiting: bool) {
        if let Some(sending) = &mut self.sending {
            sending.set(waiting);
        }
    }

    fn end(&mut self) {
        self.ended = true;
        if let Some(started) = &mut self.started {
            started.running = None;
        }
        self.sending = None;
        if let Some(request_body) = self.request_body.take() {
            request_body.close();
        }
    }
}

impl Drop for StreamBody {
    fn drop(&mut self) {
        if let Some(request_body) = self.request_body.take() {
            request_body.close();
        }
    }
}

impl Body for StreamBody {
    type Data = Chunk;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Chunk>, BoxError>>> {
        let this = self.get_mut();
        if this.ended {
            return Poll::Ready(None);
        }
        if std::mem::take(&mut this.flush)
            && (this.unflushed >= FLUSH_BYTES
                || this.flushed_at.is_none_or(|at| at.elapsed() >= FLUSH_AFTER))
        {
            // hyper flushes what it buffered when its body is not ready.
            this.flushed();
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        this.set_sending(false);
        let Some(started) = &mut this.started else {
            this.end();
            return Poll::Ready(Some(Err("the response body was never started".into())));
        };
        let polled = Pin::new(&mut started.body).poll_frame(cx);
        match polled {
            Poll::Pending => {
                if let Some(thread) = started.body.waiting_thread()
                    && started.running.as_ref().map(|(key, _)| *key) != Some(thread.to_pointer())
                {
                    let running = started.server.drain.running(thread.clone());
                    started.running = Some((thread.to_pointer(), running));
                }
                // The function waits: hyper sends what it has meanwhile.
                this.flushed();
                Poll::Pending
            }
            Poll::Ready(Some(Ok(frame))) => {
                started.running = None;
                this.set_sending(true);
                this.flush = true;
                this.unflushed += frame.data_ref().map_or(0, Buf::remaining);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(error))) => {
                started.server.report_handler_error(
                    "handleRequest's body function",
                    &started.what,
                    &Error::runtime(error.to_string()),
                );
                this.end();
                Poll::Ready(Some(Err(error)))
            }
            Poll::Ready(None) => {
                this.end();
                Poll::Ready(None)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ended
    }
}
