//! Error messages as users see them.
//!
//! mlua wraps errors raised inside Rust callbacks in layers (`CallbackError`, context,
//! external errors). This module peels those layers into the message a script author
//! wants, and prints uncaught errors with their Luau stack trace. It does not decide
//! what is uncaught; the scheduler does.

use std::io::Write;

use mlua::Error;

/// The user-facing message of `error`, without Rust-side wrapping or traceback.
pub fn error_message(error: &Error) -> String {
    match error {
        Error::CallbackError { cause, .. } => error_message(cause),
        Error::RuntimeError(message) | Error::SyntaxError { message, .. } => message.clone(),
        Error::WithContext { context, cause } => format!("{context}: {}", error_message(cause)),
        Error::BadArgument {
            to,
            pos,
            name,
            cause,
        } => {
            let name = name
                .as_deref()
                .map(|n| format!(" '{n}'"))
                .unwrap_or_default();
            let to = to
                .as_deref()
                .map(|t| format!(" to '{t}'"))
                .unwrap_or_default();
            format!("bad argument #{pos}{name}{to}: {}", error_message(cause))
        }
        Error::ExternalError(inner) => inner.to_string(),
        other => other.to_string(),
    }
}

/// The message and, when known, the Luau stack trace of `error`.
pub fn error_with_trace(error: &Error) -> String {
    match error {
        Error::CallbackError { traceback, cause } => {
            let message = error_message(cause);
            if message.contains("stack traceback:") {
                message
            } else {
                format!("{message}\n{traceback}")
            }
        }
        Error::WithContext { cause, .. } => {
            let trace = error_with_trace(cause);
            let message = error_message(error);
            match trace.split_once('\n') {
                Some((_, rest)) => format!("{message}\n{rest}"),
                None => message,
            }
        }
        _ => error_message(error),
    }
}

/// Prints an uncaught error and its stack trace to stderr.
pub fn print_error(error: &Error) {
    let text = error_with_trace(error);
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "{}", text.trim_end());
    let _ = stderr.flush();
}
