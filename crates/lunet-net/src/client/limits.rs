//! How long `net.request` waits: the bounds that apply when the script gave no
//! `timeout` (connecting gives up after [`CONNECT_TIMEOUT`], a response that sends
//! nothing for [`NO_PROGRESS_TIMEOUT`] fails; undici's defaults), the [`Watchdog`]
//! that enforces the second, and the wording of every time-out error.
//!
//! A script's own `timeout` replaces these defaults: it bounds the whole exchange
//! (connect, TLS, proxy tunnel, redirects, body) and is applied around it by the
//! client ([`super::Client::send`]), with [`timed_out`] as its error. This module does
//! not open connections ([`super::connect`]) or read bodies ([`super::decode`]); it
//! only wraps their futures and bodies.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use super::origin::Origin;
use super::proxy::Route;
use crate::error::BoxError;

pub(crate) use crate::connect_limit::CONNECT_TIMEOUT;

/// How long a response may send nothing (no response head yet, or no body bytes)
/// when the script gave no `timeout`.
pub(crate) const NO_PROGRESS_TIMEOUT: Duration = Duration::from_secs(300);

/// A duration as errors show it: `30 s`, `0.3 s`.
pub(crate) fn seconds(duration: Duration) -> String {
    format!("{} s", duration.as_secs_f64())
}

/// The error of a request whose script-given `timeout` expired.
pub(crate) fn timed_out(limit: Duration, method: &http::Method, url: &url::Url) -> String {
    format!(
        "net.request timed out after {} for {method} {url}",
        seconds(limit)
    )
}

/// Runs `connect` (opening a connection to `origin` along `route`) within `limit`,
/// if any.
pub(crate) async fn connect_within<T>(
    limit: Option<Duration>,
    origin: &Origin,
    route: Route<'_>,
    connect: impl Future<Output = Result<T, BoxError>>,
) -> Result<T, BoxError> {
    let Some(limit) = limit else {
        return connect.await;
    };
    match tokio::time::timeout(limit, connect).await {
        Ok(result) => result,
        Err(_) => {
            let through = match route {
                Route::Direct => String::new(),
                Route::Forward(proxy) | Route::Tunnel(proxy) => format!(" through {proxy}"),
            };
            let limit = seconds(limit);
            Err(format!("connecting to {origin}{through} timed out after {limit}").into())
        }
    }
}

/// Fails a response that makes no progress for [`NO_PROGRESS_TIMEOUT`]: no head
/// after the request was sent, or no body frame after the last one. Disarmed (it
/// never fires) when the script gave a `timeout`.
///
/// One timer per response: each body frame only records the time, and when the
/// timer fires early (progress was made meanwhile) it is moved to the new deadline,
/// so a steady body costs a clock read per frame, not a timer update.
pub(crate) struct Watchdog<'a> {
    sleep: Pin<&'a mut Option<Sleep>>,
    last_progress: Instant,
}

impl<'a> Watchdog<'a> {
    /// A watchdog using `slot` for its timer, armed when `armed`.
    pub(crate) fn new(mut slot: Pin<&'a mut Option<Sleep>>, armed: bool) -> Watchdog<'a> {
        let now = Instant::now();
        slot.set(armed.then(|| tokio::time::sleep_until(now + NO_PROGRESS_TIMEOUT)));
        Watchdog {
            sleep: slot,
            last_progress: now,
        }
    }

    /// How long opening a connection may take: [`CONNECT_TIMEOUT`] while armed
    /// (the defaults apply), no bound of its own otherwise.
    pub(crate) fn connect_limit(&self) -> Option<Duration> {
        self.sleep.is_some().then_some(CONNECT_TIMEOUT)
    }

    fn progress(&mut self) {
        if self.sleep.is_some() {
            self.last_progress = Instant::now();
        }
    }

    /// Ready once nothing has happened for [`NO_PROGRESS_TIMEOUT`]; never when disarmed.
    fn poll_stalled(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Some(mut sleep) = self.sleep.as_mut().as_pin_mut() else {
            return Poll::Pending;
        };
        loop {
            ready!(sleep.as_mut().poll(cx));
            let deadline = self.last_progress + NO_PROGRESS_TIMEOUT;
            if deadline <= Instant::now() {
                return Poll::Ready(());
            }
            sleep.as_mut().reset(deadline);
        }
    }

    /// Waits for `head` (the response head of a request just sent), failing once
    /// it has been waited for [`NO_PROGRESS_TIMEOUT`].
    pub(crate) async fn head<F: Future>(&mut self, head: F) -> Result<F::Output, BoxError> {
        self.progress();
        let mut head = std::pin::pin!(head);
        std::future::poll_fn(|cx| {
            if let Poll::Ready(output) = head.as_mut().poll(cx) {
                return Poll::Ready(Ok(output));
            }
            ready!(self.poll_stalled(cx));
            Poll::Ready(Err(stalled("the response head").into()))
        })
        .await
    }

    /// `body`, failing once it has sent no frame for [`NO_PROGRESS_TIMEOUT`].
    pub(crate) fn body<B>(&mut self, body: B) -> Watched<'_, 'a, B> {
        self.progress();
        Watched {
            body,
            watchdog: self,
        }
    }
}

fn stalled(waiting_for: &str) -> String {
    format!(
        "no data received for {} (waiting for {waiting_for})",
        seconds(NO_PROGRESS_TIMEOUT)
    )
}

/// A response body watched by a [`Watchdog`].
pub(crate) struct Watched<'w, 'a, B> {
    body: B,
    watchdog: &'w mut Watchdog<'a>,
}

impl<B> Body for Watched<'_, '_, B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.body).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                this.watchdog.progress();
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(error))) => Poll::Ready(Some(Err(error.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                ready!(this.watchdog.poll_stalled(cx));
                Poll::Ready(Some(Err(stalled("the response body").into())))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use futures_util::{StreamExt, stream};
    use http_body_util::{BodyExt, StreamBody};

    use super::*;

    /// Fails the test rather than hang it: with the clock paused, this passes at once
    /// unless the code under test hangs without any timer pending.
    async fn bounded<F: Future>(future: F) -> F::Output {
        tokio::time::timeout(Duration::from_secs(3600), future)
            .await
            .expect("the code under test finished within an hour of (paused) time")
    }

    #[tokio::test(start_paused = true)]
    async fn a_head_that_never_comes_fails_after_the_no_progress_limit() {
        bounded(async {
            let mut timer = std::pin::pin!(None);
            let mut watchdog = Watchdog::new(timer.as_mut(), true);
            assert_eq!(watchdog.connect_limit(), Some(CONNECT_TIMEOUT));
            let start = Instant::now();
            let error = watchdog
                .head(std::future::pending::<()>())
                .await
                .unwrap_err();
            assert_eq!(start.elapsed(), NO_PROGRESS_TIMEOUT);
            assert_eq!(
                error.to_string(),
                "no data received for 300 s (waiting for the response head)"
            );
        })
        .await;
    }

    /// A body whose frames come after the given pauses (in seconds), then nothing.
    fn paced(pauses: &'static [u64]) -> impl Body<Data = Bytes, Error = BoxError> + Unpin {
        let frames = stream::unfold(0, move |i| async move {
            let pause = *pauses.get(i)?;
            tokio::time::sleep(Duration::from_secs(pause)).await;
            Some((Ok(Frame::data(Bytes::from_static(b"x"))), i + 1))
        });
        let silent = stream::once(std::future::pending());
        StreamBody::new(Box::pin(frames.chain(silent)))
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_fails_once_no_frame_came_for_the_limit_since_the_last() {
        bounded(async {
            let mut timer = std::pin::pin!(None);
            let mut watchdog = Watchdog::new(timer.as_mut(), true);
            let start = Instant::now();
            // 200 + 250 s of body: longer than the limit, but never silent that long.
            let body = watchdog.body(paced(&[0, 200, 250]));
            let error = body.collect().await.expect_err("the body stalls");
            assert_eq!(
                start.elapsed(),
                Duration::from_secs(450) + NO_PROGRESS_TIMEOUT,
                "the limit counts from the last frame"
            );
            assert_eq!(
                error.to_string(),
                "no data received for 300 s (waiting for the response body)"
            );
        })
        .await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_disarmed_watchdog_never_fires() {
        bounded(async {
            let mut timer = std::pin::pin!(None);
            let mut watchdog = Watchdog::new(timer.as_mut(), false);
            assert_eq!(watchdog.connect_limit(), None);
            let long = Duration::from_secs(1000);
            assert!(watchdog.head(tokio::time::sleep(long)).await.is_ok());
            let frames = watchdog.body(paced(&[400, 400])).frame().await;
            assert!(matches!(frames, Some(Ok(_))));
        })
        .await;
    }

    #[test]
    fn durations_are_shown_in_seconds() {
        assert_eq!(seconds(CONNECT_TIMEOUT), "30 s");
        assert_eq!(seconds(Duration::from_secs_f64(0.3)), "0.3 s");
        let url = url::Url::parse("http://127.0.0.1:1234/slow").unwrap();
        assert_eq!(
            timed_out(Duration::from_secs(2), &http::Method::GET, &url),
            "net.request timed out after 2 s for GET http://127.0.0.1:1234/slow"
        );
    }
}
