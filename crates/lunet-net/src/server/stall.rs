//! Closing connections that make no progress: `net.serve`'s header-read timeout.
//!
//! A connection is *stalled* when, for a whole [`STALL_PERIOD`], no request was being
//! handled on it and nothing could be written to it: a client trickling a request head
//! (or never finishing one), one that stays silent on a keep-alive connection, or one
//! that stopped reading its responses. Such a connection is closed between one and two
//! periods after it last made progress. Request bodies are not covered: while a
//! request is in flight (its body being read or its handler running) the connection
//! is never stalled.
//!
//! The check costs nothing per request beyond bumping a counter on each write
//! ([`Watched`]): one timer per connection fires once per period and compares the
//! counter with the value it saw at the previous firing ([`stalled`]). hyper's own
//! `header_read_timeout` arms and drops a timer for every request, which was 3% of a
//! hello-world request's instructions. This module does not decide what "in flight"
//! means (the connection does) nor close anything itself.

use std::io::IoSlice;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// How long a connection may go without progress before it is closed (at most twice
/// this in the worst case).
pub(crate) const STALL_PERIOD: Duration = Duration::from_secs(30);

/// Counts the writes that made progress on one connection. (Atomic only because
/// hyper requires an upgradable stream to be `Send`; it is only ever touched from the
/// connection's own thread, so a relaxed load and store suffice.)
pub(crate) type Progress = Arc<AtomicU64>;

/// A stream that counts its successful writes in a [`Progress`].
pub(crate) struct Watched<S> {
    inner: S,
    progress: Progress,
}

impl<S> Watched<S> {
    pub(crate) fn new(inner: S, progress: Progress) -> Watched<S> {
        Watched { inner, progress }
    }

    fn count(&self, written: &Poll<std::io::Result<usize>>) {
        if let Poll::Ready(Ok(n)) = written
            && *n > 0
        {
            let count = self.progress.load(Ordering::Relaxed);
            self.progress
                .store(count.wrapping_add(1), Ordering::Relaxed);
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let written = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.count(&written);
        written
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let written = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.count(&written);
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

/// Resolves once the connection has stalled: a whole `period` passed with no write
/// progress and, at its end, nothing in flight (`busy` is false).
pub(crate) async fn stalled(progress: &Progress, busy: impl Fn() -> bool, period: Duration) {
    let mut seen = progress.load(Ordering::Relaxed);
    loop {
        tokio::time::sleep(period).await;
        let now = progress.load(Ordering::Relaxed);
        if now == seen && !busy() {
            return;
        }
        seen = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::rc::Rc;
    use tokio::time::Instant;

    const PERIOD: Duration = Duration::from_secs(30);

    /// Runs `body` on a runtime whose clock only moves when every task waits.
    fn paused(body: impl std::future::Future<Output = ()>) {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap()
            .block_on(body);
    }

    fn bump(progress: &Progress) {
        progress.fetch_add(1, Ordering::Relaxed);
    }

    #[test]
    fn a_silent_idle_connection_stalls_after_one_period() {
        paused(async {
            let start = Instant::now();
            let progress = Progress::default();
            stalled(&progress, || false, PERIOD).await;
            assert_eq!(start.elapsed(), PERIOD);
        });
    }

    #[test]
    fn writes_put_the_stall_off_by_a_period() {
        paused(async {
            let progress = Progress::default();
            let start = Instant::now();
            let writer = async {
                tokio::time::sleep(Duration::from_secs(20)).await;
                bump(&progress);
                tokio::time::sleep(Duration::from_secs(20)).await;
                bump(&progress);
            };
            let ((), ()) = tokio::join!(stalled(&progress, || false, PERIOD), writer);
            // Progress at 20 s and 40 s: the checks at 30 s and 60 s see it; 90 s does not.
            assert_eq!(start.elapsed(), 3 * PERIOD);
        });
    }

    #[test]
    fn a_connection_with_a_request_in_flight_never_stalls() {
        paused(async {
            let busy = Rc::new(Cell::new(true));
            let start = Instant::now();
            let flag = busy.clone();
            let progress = Progress::default();
            let finisher = async move {
                tokio::time::sleep(PERIOD * 10 - Duration::from_secs(5)).await;
                flag.set(false);
            };
            let ((), ()) = tokio::join!(stalled(&progress, || busy.get(), PERIOD), finisher);
            assert_eq!(
                start.elapsed(),
                PERIOD * 10,
                "stalls at the first check after it"
            );
        });
    }
}
