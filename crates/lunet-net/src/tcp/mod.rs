//! `net.tcp`: TCP streams and listeners.
//!
//! - [`stream`]: the `TcpStream` object, one implementation for TCP, TLS and Unix
//!   streams;
//! - [`connect`]: `net.tcp.connect`, opening a plain or TLS stream;
//! - [`listener`]: `net.tcp.listen` and the `TcpListener` object (also the listener
//!   behind `net.unix.listen`).

pub(crate) mod connect;
pub(crate) mod listener;
pub(crate) mod stream;
