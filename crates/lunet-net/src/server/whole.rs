//! A response body known whole when the handler returns (a string, a buffer, nil,
//! or one of the server's own short answers).
//!
//! hyper gets it in one piece, except on HTTP/2 when it is larger than [`SLICE`]:
//! there it goes out a slice at a time, the request held in flight and each slice
//! the client takes counted as progress ([`Sending`]), as a streaming body's chunks
//! are. On HTTP/2 the watchdog cannot count bytes written as progress (a client's
//! PINGs are answered with writes), so a whole body handed over at once would
//! leave the connection idle while h2 still sends it, and a slow but steady reader
//! of a large response would be cut off at `idleTimeout`. (hyper asks for the next
//! slice as soon as h2 took the last, and h2 takes one once the client's window
//! has room for the one before: progress runs one slice ahead of the client.)
//! HTTP/1 counts
//! the bytes it writes, so it needs no slices.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Frame, SizeHint};

use super::peer::{InFlight, Sending};
use crate::error::BoxError;

/// The largest piece of a whole body hyper gets at once on HTTP/2 (about the
/// default flow-control window, so a slice is progress a client makes quickly).
pub(crate) const SLICE: usize = 64 * 1024;

pub(crate) struct Whole {
    rest: Bytes,
    /// Set when the body goes out in slices.
    sending: Option<Sending>,
}

impl Whole {
    pub(crate) fn new(bytes: Bytes) -> Whole {
        Whole {
            rest: bytes,
            sending: None,
        }
    }

    /// For HTTP/2: a body larger than [`SLICE`] goes out in slices and holds
    /// `in_flight` until the last is handed over; a smaller one goes at once (and
    /// `in_flight` ends here).
    pub(crate) fn slice(&mut self, in_flight: InFlight) {
        if self.rest.len() > SLICE {
            self.sending = Some(Sending::new(in_flight));
        }
    }
}

impl hyper::body::Body for Whole {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        let data = match &mut this.sending {
            None => std::mem::take(&mut this.rest),
            Some(sending) => {
                // hyper came back for more: the client took the last slice.
                sending.set(false);
                let slice = this.rest.split_to(this.rest.len().min(SLICE));
                sending.set(!slice.is_empty());
                slice
            }
        };
        if data.is_empty() {
            this.sending = None;
            return Poll::Ready(None);
        }
        Poll::Ready(Some(Ok(Frame::data(data))))
    }

    fn is_end_stream(&self) -> bool {
        self.rest.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.rest.len() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::body::Body as _;

    fn frames(mut whole: Whole) -> Vec<usize> {
        let mut context = Context::from_waker(std::task::Waker::noop());
        let mut sizes = Vec::new();
        while let Poll::Ready(Some(frame)) = Pin::new(&mut whole).poll_frame(&mut context) {
            sizes.push(frame.unwrap().into_data().unwrap().len());
        }
        sizes
    }

    #[test]
    fn a_whole_body_goes_at_once_unless_sliced() {
        assert_eq!(
            frames(Whole::new(Bytes::from(vec![0; 3 * SLICE]))),
            [3 * SLICE]
        );
        assert_eq!(frames(Whole::new(Bytes::new())), Vec::<usize>::new());
        let body = Whole::new(Bytes::from_static(b"hi"));
        assert!(!body.is_end_stream());
        assert_eq!(body.size_hint().exact(), Some(2));
        assert!(Whole::new(Bytes::new()).is_end_stream());
    }
}
