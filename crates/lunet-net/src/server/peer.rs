//! What one connection's request path knows about it: the server, the client's
//! address, whether the server is stopping, and the [`Activity`] and [`Progress`]
//! the watchdog reads. Made by `connection`, read by `service`; neither the
//! connection's lifecycle nor the request path lives here.

use std::cell::Cell;
use std::rc::Rc;

use mlua::LuaString;

use super::Server;
use super::watchdog::{Activity, Progress};

pub(crate) struct Peer {
    pub(crate) server: Rc<Server>,
    /// The client's IP address, as the string handlers see.
    pub(crate) ip: LuaString,
    pub(crate) port: u16,
    /// Set when the server stops: responses then carry `Connection: close`.
    pub(crate) stopping: Cell<bool>,
    pub(crate) activity: Activity,
    pub(crate) progress: Progress,
}

/// Counts a request as in flight for as long as it lives, and marks the connection
/// at rest when the last one ends.
pub(crate) struct InFlight<'a>(&'a Peer);

impl<'a> InFlight<'a> {
    pub(crate) fn new(peer: &'a Peer) -> Self {
        let activity = &peer.activity;
        activity.in_flight.set(activity.in_flight.get() + 1);
        InFlight(peer)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let activity = &self.0.activity;
        activity.in_flight.set(activity.in_flight.get() - 1);
        activity.reading_body.set(false);
        activity.request_finished(&self.0.progress);
    }
}
