//! Errors on the way to a connection or a response, shared by the HTTP client, the
//! WebSocket client and TCP streams.
//!
//! [`BoxError`] is what their I/O steps (connect, TLS, handshake, proxy tunnel)
//! return, and [`error_chain`] words one for a script: its message followed by each
//! of its causes. This module owns only that wording; each caller decides what the
//! message is prefixed with (`net.request failed for ...`, `net.tcp.connect failed
//! for ...`).

/// Any error on the way to a response or a stream; shown to scripts with its causes.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// An error's message followed by each of its causes, without repeats.
pub(crate) fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}
