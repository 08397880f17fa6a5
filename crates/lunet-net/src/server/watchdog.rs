//! Closing connections that dawdle: `net.serve`'s header, body and idle timeouts.
//!
//! A connection is always in one of five phases, which the watchdog reads from
//! [`Activity`] (kept by the connection and the request path) and [`Progress`] (bytes
//! read and written, counted by [`Watched`]):
//!
//! - **head**: no request in flight and none finished yet, or bytes of the next head
//!   arrived since the last one finished. Bounded by `headerTimeout` in total from
//!   the phase's start, however the bytes trickle in (slowloris).
//! - **body**: a request's body is being read. Bounded by `bodyTimeout` without a
//!   byte read; on expiry the request path is told ([`Activity::body_expired`]) and
//!   answers 408.
//! - **busy**: a handler runs, or a streaming response's body function does. Never
//!   bounded here: slow handlers and slow body functions are not cut off.
//! - **sending**: a streaming response's chunk (or, on HTTP/2, a slice of a large
//!   whole body) waits for the client to take it. Bounded like idle (a client that
//!   stopped reading is not progress).
//! - **idle**: a request finished and nothing of the next arrived. Bounded by
//!   `idleTimeout` without a byte written (a response still being written to a slow
//!   reader is progress; a client that stopped reading is not).
//!
//! On HTTP/2, bytes written are not progress: hyper's h2 answers a client's PING or
//! SETTINGS with a write of its own, so a client could hold a connection forever by
//! pinging. There, a sending connection progresses only when a chunk of a
//! streaming response, or a slice of a large whole one (see `whole`), is taken
//! (hyper asks for the next one once h2 took the last, and h2 takes one when the
//! client's flow-control window has room for the one before: progress runs one
//! slice ahead of the client, no more), and an
//! idle one never does: an HTTP/2 connection is closed `idleTimeout` after its last
//! stream ended, whatever control frames it sends (the last slice, at most 64 KiB,
//! still buffered in h2 for a slow reader must reach it within that time).
//!
//! The check costs nothing per request beyond bumping a counter on each read and
//! write: one timer per connection fires every quarter of the shortest timeout and
//! compares the counters with what it saw before, so a phase ends between its
//! timeout and its timeout plus two ticks after it began. (hyper's own
//! `header_read_timeout` arms and drops a timer for every request, which was 3% of a
//! hello-world request's instructions.) This module decides when; what happens then
//! (a 408, closing) is the connection's and the request path's business.

use std::cell::Cell;
use std::io::IoSlice;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::time::Instant;

use super::config::Limits;

/// How often the watchdog looks at most: a long timeout is still checked this often,
/// and a short one four times per timeout.
const MAX_TICK: Duration = Duration::from_secs(5);
const MIN_TICK: Duration = Duration::from_millis(5);

/// Reads and writes that moved bytes on one connection. (Atomic only because hyper
/// requires an upgradable stream to be `Send`; it is only ever touched from the
/// connection's own thread, so relaxed loads and stores suffice.)
#[derive(Default)]
pub(crate) struct Counters {
    reads: AtomicU64,
    writes: AtomicU64,
}

pub(crate) type Progress = Arc<Counters>;

fn bump(counter: &AtomicU64) {
    counter.store(
        counter.load(Ordering::Relaxed).wrapping_add(1),
        Ordering::Relaxed,
    );
}

impl Counters {
    pub(crate) fn reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }

    fn writes(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }
}

/// What the connection and its request path tell the watchdog.
#[derive(Default)]
pub(crate) struct Activity {
    /// Requests being handled on this connection (more than one when pipelined).
    pub(crate) in_flight: Cell<usize>,
    /// True while a request's body is being read.
    pub(crate) reading_body: Cell<bool>,
    /// Woken when no request is in flight any more.
    pub(crate) at_rest: Notify,
    /// `Counters::reads` when the last request finished, so a later read is the
    /// start of the next head; `None` until one finished (the first head's phase
    /// starts when the connection does).
    reads_at_rest: Cell<Option<u64>>,
    /// Wakes the request path whose body stalled for `bodyTimeout`.
    pub(crate) body_expired: Notify,
    /// Responses waiting for the client to take their last chunk or slice (a
    /// streaming body's function is not running then); at most one on HTTP/1.
    pub(crate) sending_streams: Cell<usize>,
    /// Chunks of streaming responses, and slices of large whole ones, the client
    /// took (HTTP/2's progress while sending).
    pub(crate) chunks_taken: Cell<u64>,
    /// True on an HTTP/2 connection, whose streams run side by side: the connection
    /// is then sending when every stream in flight waits for the client to take a
    /// chunk, busy while any other stream is in flight (each stream's body stall is
    /// timed by its own request path, see [`body_stalled`]), and idle otherwise (a
    /// control frame such as a PING is not the start of a request head).
    pub(crate) multiplexed: Cell<bool>,
}

impl Activity {
    /// Records the end of a request: from here, the connection is idle until bytes
    /// of the next head arrive.
    pub(crate) fn request_finished(&self, progress: &Counters) {
        self.reads_at_rest.set(Some(progress.reads()));
    }

    /// True when bytes of a request head have arrived that no request has taken yet.
    pub(crate) fn head_begun(&self, progress: &Counters) -> bool {
        self.in_flight.get() == 0
            && match self.reads_at_rest.get() {
                Some(at_rest) => progress.reads() != at_rest,
                None => progress.reads() != 0,
            }
    }

    fn phase(&self, progress: &Counters) -> Phase {
        if self.multiplexed.get() {
            let in_flight = self.in_flight.get();
            return if in_flight > 0 && self.sending_streams.get() >= in_flight {
                Phase::Sending
            } else if in_flight > 0 {
                Phase::Busy
            } else if self.reads_at_rest.get().is_none() {
                Phase::Head
            } else {
                Phase::Idle
            };
        }
        if self.in_flight.get() > 0 {
            if self.reading_body.get() {
                Phase::Body
            } else if self.sending_streams.get() > 0 {
                Phase::Sending
            } else {
                Phase::Busy
            }
        } else if self.reads_at_rest.get().is_none() || self.head_begun(progress) {
            Phase::Head
        } else {
            Phase::Idle
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Head,
    Body,
    Busy,
    Sending,
    Idle,
}

/// Why the watchdog gave up on a connection.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Expired {
    /// A request head was not complete within `headerTimeout`; `begun` is true when
    /// any of it arrived (the client is then told 408).
    Head { begun: bool },
    /// Nothing happened for `idleTimeout`.
    Idle,
}

/// Watches one connection until its head or idle phase outlives its timeout. Body
/// stalls are reported through [`Activity::body_expired`] and watching goes on.
pub(crate) async fn watch(progress: &Counters, activity: &Activity, limits: &Limits) -> Expired {
    let tick = (limits
        .header_timeout
        .min(limits.body_timeout)
        .min(limits.idle_timeout)
        / 4)
    .clamp(MIN_TICK, MAX_TICK);
    let mut phase = Phase::Head;
    let mut since = Instant::now();
    let mut reads = progress.reads();
    let mut writes = progress.writes();
    let mut taken = activity.chunks_taken.get();
    loop {
        tokio::time::sleep(tick).await;
        let now = Instant::now();
        let current = activity.phase(progress);
        let (new_reads, new_writes) = (progress.reads(), progress.writes());
        let new_taken = activity.chunks_taken.get();
        let multiplexed = activity.multiplexed.get();
        let moved = match current {
            // The head's deadline counts from its start, whatever arrives meanwhile.
            Phase::Head | Phase::Busy => false,
            Phase::Body => new_reads != reads,
            // HTTP/2: see the module documentation.
            Phase::Idle if multiplexed => false,
            Phase::Sending if multiplexed => new_taken != taken,
            Phase::Idle | Phase::Sending => new_writes != writes,
        };
        (reads, writes, taken) = (new_reads, new_writes, new_taken);
        if current != phase || moved {
            phase = current;
            since = now;
            continue;
        }
        let waited = now - since;
        match phase {
            Phase::Head if waited >= limits.header_timeout => {
                return Expired::Head {
                    begun: progress.reads() != 0 || activity.reads_at_rest.get().is_some(),
                };
            }
            Phase::Idle | Phase::Sending if waited >= limits.idle_timeout => {
                return Expired::Idle;
            }
            Phase::Body if waited >= limits.body_timeout => {
                // Only a waiting read may take it: `notify_one` would store a permit
                // that fails the next request's body read with 408 at once.
                activity.body_expired.notify_waiters();
                since = now;
            }
            _ => {}
        }
    }
}

/// Resolves once `frames` (bumped for each body frame received) has not moved for
/// `timeout`: an HTTP/2 stream's `bodyTimeout`, checked like the connection's
/// phases (a tick a quarter of the timeout, so it ends between the timeout and the
/// timeout plus two ticks after the last frame).
pub(crate) async fn body_stalled(frames: &Cell<u64>, timeout: Duration) {
    let tick = (timeout / 4).clamp(MIN_TICK, MAX_TICK);
    let mut seen = frames.get();
    let mut since = Instant::now();
    loop {
        tokio::time::sleep(tick).await;
        let now = Instant::now();
        if frames.get() != seen {
            seen = frames.get();
            since = now;
        } else if now - since >= timeout {
            return;
        }
    }
}

/// A request body that counts the frames it yields (for [`body_stalled`]).
pub(crate) struct FrameCounted<'a, B> {
    pub(crate) inner: B,
    pub(crate) frames: &'a Cell<u64>,
}

impl<B: hyper::body::Body + Unpin> hyper::body::Body for FrameCounted<'_, B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<B::Data>, B::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(_))) = &polled {
            self.frames.set(self.frames.get().wrapping_add(1));
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

/// A stream that counts its reads and writes that moved bytes in a [`Progress`].
pub(crate) struct Watched<S> {
    inner: S,
    progress: Progress,
}

impl<S> Watched<S> {
    pub(crate) fn new(inner: S, progress: Progress) -> Watched<S> {
        Watched { inner, progress }
    }

    pub(crate) fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    fn count_write(&self, written: &Poll<std::io::Result<usize>>) {
        if let Poll::Ready(Ok(n)) = written
            && *n > 0
        {
            bump(&self.progress.writes);
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let read = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(read, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            bump(&self.progress.reads);
        }
        read
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let written = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.count_write(&written);
        written
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let written = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.count_write(&written);
        written
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `body` on a runtime whose clock only moves when every task waits.
    fn paused(body: impl std::future::Future<Output = ()>) {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap()
            .block_on(body);
    }

    fn limits() -> Limits {
        Limits {
            header_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(20),
            idle_timeout: Duration::from_secs(60),
            ..Limits::default()
        }
    }

    /// The tick for [`limits`]: a quarter of the shortest timeout (20 s).
    const TICK: Duration = Duration::from_secs(5);

    async fn at(seconds: u64, start: Instant) {
        tokio::time::sleep_until(start + Duration::from_secs(seconds)).await;
    }

    #[test]
    fn a_connection_that_never_sends_ends_at_the_header_timeout_without_408() {
        paused(async {
            let start = Instant::now();
            let (progress, activity, limits) = (Counters::default(), Activity::default(), limits());
            let expired = watch(&progress, &activity, &limits).await;
            assert_eq!(expired, Expired::Head { begun: false });
            let took = start.elapsed();
            assert!(
                (Duration::from_secs(30)..=Duration::from_secs(30) + 2 * TICK).contains(&took),
                "{took:?}"
            );
        });
    }

    #[test]
    fn a_trickled_head_ends_at_the_header_timeout_however_bytes_arrive() {
        paused(async {
            let start = Instant::now();
            let (progress, activity, limits) = (Counters::default(), Activity::default(), limits());
            let trickle = async {
                for second in 1..100 {
                    at(second, start).await;
                    bump(&progress.reads);
                }
            };
            let expired = tokio::select! {
                expired = watch(&progress, &activity, &limits) => expired,
                () = trickle => panic!("the trickle outlived the watchdog"),
            };
            assert_eq!(expired, Expired::Head { begun: true });
            let took = start.elapsed();
            assert!(
                (Duration::from_secs(30)..=Duration::from_secs(30) + 2 * TICK).contains(&took),
                "{took:?}"
            );
        });
    }

    #[test]
    fn idle_keep_alive_ends_at_the_idle_timeout_and_writes_put_it_off() {
        paused(async {
            let start = Instant::now();
            let (progress, activity, limits) = (Counters::default(), Activity::default(), limits());
            // A request arrives and is answered at once; its response is written
            // slowly, a chunk every 10 s until 40 s.
            bump(&progress.reads);
            activity.request_finished(&progress);
            let writer = async {
                for second in [10, 20, 30, 40] {
                    at(second, start).await;
                    bump(&progress.writes);
                }
                std::future::pending::<()>().await;
            };
            let expired = tokio::select! {
                expired = watch(&progress, &activity, &limits) => expired,
                () = writer => unreachable!(),
            };
            assert_eq!(expired, Expired::Idle);
            let took = start.elapsed();
            assert!(
                (Duration::from_secs(100)..=Duration::from_secs(100) + 2 * TICK).contains(&took),
                "idle from the last write (40 s) for 60 s: {took:?}"
            );
        });
    }

    #[test]
    fn a_stalled_body_is_reported_and_a_busy_handler_never_expires() {
        paused(async {
            let start = Instant::now();
            let (progress, activity, limits) = (Counters::default(), Activity::default(), limits());
            bump(&progress.reads);
            activity.in_flight.set(1);
            activity.reading_body.set(true);
            let body_expired = activity.body_expired.notified();
            let watching = watch(&progress, &activity, &limits);
            tokio::pin!(watching);
            tokio::select! {
                () = body_expired => {}
                _ = &mut watching => panic!("a body stall does not end the watch"),
            }
            let took = start.elapsed();
            assert!(
                (Duration::from_secs(20)..=Duration::from_secs(20) + 2 * TICK).contains(&took),
                "{took:?}"
            );
            // The body is read; the handler then runs for an hour, never cut off.
            activity.reading_body.set(false);
            tokio::select! {
                _ = &mut watching => panic!("a running handler is never timed out"),
                () = at(3600, start) => {}
            }
            activity.in_flight.set(0);
            activity.request_finished(&progress);
            assert_eq!(watching.await, Expired::Idle);
        });
    }
}
