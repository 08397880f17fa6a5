//! A request body that a Luau function produces: `body = function() ... end` in
//! `net.request` and `net.http.stream`.
//!
//! [`ProducerBody`] is a hyper [`Body`]: each time hyper asks for the next frame, the
//! function is called in its own Luau thread (through [`Scheduler::call`], so it may
//! yield, e.g. in `task.wait`); a string or buffer it returns is sent at once as one
//! frame (a chunk on HTTP/1.1, a DATA frame on HTTP/2; a string lent as it is, see
//! [`Chunk`]), nil ends the body, and an error fails the body (the message is kept
//! for the request's error, see [`Producer::failure`]). Nothing is called ahead of
//! what hyper asks for, so the function runs at the pace the connection takes the
//! data.
//!
//! Owns: calling the function, its thread while it yields (cancelled when the body
//! is dropped), and whether it was already started (a started body cannot be sent
//! again, which the client turns into an error for 307/308 redirects). Does not own:
//! the request around it or how its errors are worded (`client`).

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use bytes::Buf;
use hyper::body::{Body, Frame};
use lunet_runtime::Scheduler;
use lunet_runtime::scheduler::CallOutcome;
use mlua::{Function, Lua, Thread, Value, WeakLua};
use tokio::sync::oneshot;

use super::chunk::Chunk;
use crate::error::BoxError;

/// The function and what became of it, shared by the request and its body.
pub(crate) struct Producer {
    lua: WeakLua,
    function: Function,
    started: Cell<bool>,
    failure: RefCell<Option<String>>,
}

impl Producer {
    pub(crate) fn new(lua: &Lua, function: Function) -> Rc<Producer> {
        Rc::new(Producer {
            lua: lua.weak(),
            function,
            started: Cell::new(false),
            failure: RefCell::new(None),
        })
    }

    /// Whether the function was called already (the body cannot be sent again).
    pub(crate) fn started(&self) -> bool {
        self.started.get()
    }

    /// The message of the error the function raised (or of the bad value it
    /// returned), if it did.
    pub(crate) fn failure(&self) -> Option<String> {
        self.failure.borrow().clone()
    }

    /// A body that calls the function for each frame.
    pub(crate) fn body(self: &Rc<Self>) -> ProducerBody {
        ProducerBody {
            producer: self.clone(),
            waiting: None,
            ended: false,
        }
    }

    fn fail(&self, message: String) -> BoxError {
        *self.failure.borrow_mut() = Some(message.clone());
        message.into()
    }
}

/// A call of the function that yielded: its thread and where its outcome comes.
type Waiting = (Thread, oneshot::Receiver<mlua::Result<Value>>);

/// The body hyper sends; see the module documentation.
pub(crate) struct ProducerBody {
    producer: Rc<Producer>,
    waiting: Option<Waiting>,
    ended: bool,
}

impl ProducerBody {
    /// The function's outcome as a frame: `None` ends the body.
    fn frame(&mut self, outcome: mlua::Result<Value>) -> Option<Result<Frame<Chunk>, BoxError>> {
        let value = match outcome {
            Ok(value) => value,
            Err(error) => {
                self.ended = true;
                let message = lunet_runtime::report::error_message(&error);
                return Some(Err(self.producer.fail(message)));
            }
        };
        if value.is_nil() {
            self.ended = true;
            return None;
        }
        match Chunk::from_value(&value, "body chunk") {
            Ok(chunk) => Some(Ok(Frame::data(chunk))),
            Err(error) => {
                self.ended = true;
                let message = lunet_runtime::report::error_message(&error);
                Some(Err(self.producer.fail(message)))
            }
        }
    }
}

impl ProducerBody {
    /// The thread of the call that yielded and has not returned yet, if one has.
    pub(crate) fn waiting_thread(&self) -> Option<&Thread> {
        self.waiting.as_ref().map(|(thread, _)| thread)
    }
}

impl Body for ProducerBody {
    type Data = Chunk;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Chunk>, BoxError>>> {
        let this = self.get_mut();
        loop {
            if this.ended {
                return Poll::Ready(None);
            }
            let outcome = if let Some((_, receiver)) = &mut this.waiting {
                let outcome = std::task::ready!(Pin::new(receiver).poll(cx));
                this.waiting = None;
                outcome.unwrap_or_else(|_| {
                    Err(mlua::Error::runtime(
                        "the body function's thread was dropped",
                    ))
                })
            } else {
                let Some(lua) = this.producer.lua.try_upgrade() else {
                    this.ended = true;
                    return Poll::Ready(Some(Err("the Luau VM is gone".into())));
                };
                this.producer.started.set(true);
                let scheduler = Scheduler::of(&lua);
                match scheduler.call::<Value>(&lua, &this.producer.function, ()) {
                    Ok(CallOutcome::Done(outcome)) => outcome,
                    Ok(CallOutcome::Pending(thread, receiver)) => {
                        this.waiting = Some((thread, receiver));
                        continue;
                    }
                    Err(error) => Err(error),
                }
            };
            match this.frame(outcome) {
                // An empty chunk would end a chunked body early: ask for the next.
                Some(Ok(frame)) if frame.data_ref().is_some_and(|data| !data.has_remaining()) => {}
                frame => return Poll::Ready(frame),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ended
    }
}

impl Drop for ProducerBody {
    /// A request that ends (or is abandoned) while the function waits stops it.
    fn drop(&mut self) {
        if let Some((thread, _)) = self.waiting.take()
            && let Some(lua) = self.producer.lua.try_upgrade()
        {
            let _ = Scheduler::of(&lua).cancel(&thread);
        }
    }
}
