//! Reading an HTTP body into memory within a size limit, undoing its content codings
//! as it arrives ([`decode`]), or handing it to a script piece by piece as a
//! `BodyStream` ([`stream`], with [`lines`] and [`sse`] for its iterators); and
//! sending a body that a Luau function produces ([`producer`], its pieces
//! [`chunk`]s).
//!
//! Both sides of `@lune/net` read whole bodies: `net.serve` hands the request body to
//! the handler, `net.request` returns the response body as a Luau string. A peer
//! decides what those bodies contain, so this module owns the bounds that keep a
//! hostile one from hurting us: neither the bytes received nor the bytes decoded may
//! pass the caller's limit (a compression bomb stops at the limit, without allocating
//! past it), and reading yields to the event loop regularly, so a body that is
//! already in memory cannot stall other connections while it is decoded.
//!
//! It does not own the limits themselves (the server and the client choose theirs),
//! which codings a `Content-Encoding` header names (that is
//! `lunet_runtime::codec::compression::content_codings`), nor what an error becomes
//! (a status for the server, a Luau error for the client).

pub(crate) mod chunk;
pub(crate) mod decode;
pub(crate) mod lines;
pub(crate) mod producer;
pub(crate) mod sse;
pub(crate) mod stream;

pub(crate) use decode::{BodyError, Decoder, read_decoded};
