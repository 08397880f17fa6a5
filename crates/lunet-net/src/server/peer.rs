//! What one connection's request path knows about it: the server, the client's
//! address, what its requests repeat ([`Recent`]), and the [`Activity`] and [`Progress`]
//! the watchdog reads ([`InFlight`] and [`Sending`] keep the request's part of it). Made by `connection`, read by `service`; neither the
//! connection's lifecycle nor the request path lives here.

use std::cell::RefCell;
use std::rc::Rc;

use mlua::LuaString;

use super::Server;
use super::recent::Recent;
use super::watchdog::{Activity, Progress};

pub(crate) struct Peer {
    pub(crate) server: Rc<Server>,
    /// The client's IP address, as the string handlers see.
    pub(crate) ip: LuaString,
    pub(crate) port: u16,
    pub(crate) activity: Activity,
    pub(crate) progress: Progress,
    /// What this connection's requests repeat.
    pub(crate) recent: RefCell<Recent>,
}

/// Counts a request as in flight for as long as it lives (until its handler returns,
/// or until a streaming response's body ends, or on HTTP/2 a large whole body's last
/// slice is handed over: see `whole`), and marks the connection at rest when the
/// last one ends.
pub(crate) struct InFlight(Rc<Peer>);

impl InFlight {
    pub(crate) fn new(peer: &Rc<Peer>) -> Self {
        let activity = &peer.activity;
        activity.in_flight.set(activity.in_flight.get() + 1);
        InFlight(peer.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let activity = &self.0.activity;
        let in_flight = activity.in_flight.get() - 1;
        activity.in_flight.set(in_flight);
        activity.reading_body.set(false);
        activity.request_finished(&self.0.progress);
        // Only a stopping connection waits for this (and `notify_waiters` takes a
        // lock: not worth it on every request).
        if in_flight == 0 && self.0.server.drain.stopping() {
            activity.at_rest.notify_waiters();
        }
    }
}

/// A response body that reaches the client chunk by chunk (a streaming body, or a
/// large whole body on HTTP/2): holds its request in flight until the body ends, and
/// counts it in `Activity::sending_streams` while a chunk it handed to hyper waits
/// for the client; the client taking one is `Activity::chunks_taken`, HTTP/2's
/// progress for the watchdog.
pub(crate) struct Sending {
    in_flight: InFlight,
    waiting: bool,
}

impl Sending {
    pub(crate) fn new(in_flight: InFlight) -> Self {
        Sending {
            in_flight,
            waiting: false,
        }
    }

    /// `true` when a chunk was handed to hyper, `false` when hyper came back for
    /// more (the client took it) or the body ended.
    pub(crate) fn set(&mut self, waiting: bool) {
        if self.waiting == waiting {
            return;
        }
        self.waiting = waiting;
        let activity = &self.in_flight.0.activity;
        let streams = activity.sending_streams.get();
        if waiting {
            activity.sending_streams.set(streams + 1);
        } else {
            activity.sending_streams.set(streams.saturating_sub(1));
            activity
                .chunks_taken
                .set(activity.chunks_taken.get().wrapping_add(1));
        }
    }
}

impl Drop for Sending {
    fn drop(&mut self) {
        self.set(false);
    }
}
