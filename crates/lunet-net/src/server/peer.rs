//! What one connection's request path knows about it: the server, the client's
//! address, and the [`Activity`] and [`Progress`]
//! the watchdog reads. Made by `connection`, read by `service`; neither the
//! connection's lifecycle nor the request path lives here.

use std::rc::Rc;

use mlua::LuaString;

use super::Server;
use super::watchdog::{Activity, Progress};

pub(crate) struct Peer {
    pub(crate) server: Rc<Server>,
    /// The client's IP address, as the string handlers see.
    pub(crate) ip: LuaString,
    pub(crate) port: u16,
    pub(crate) activity: Activity,
    pub(crate) progress: Progress,
}

/// Counts a request as in flight for as long as it lives (until its handler returns,
/// or until a streaming response's body ends), and marks the connection at rest when
/// the last one ends.
pub(crate) struct InFlight(Rc<Peer>);

impl InFlight {
    pub(crate) fn new(peer: &Rc<Peer>) -> Self {
        let activity = &peer.activity;
        activity.in_flight.set(activity.in_flight.get() + 1);
        InFlight(peer.clone())
    }

    pub(crate) fn peer(&self) -> &Peer {
        &self.0
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
