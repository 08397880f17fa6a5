//! How long opening an outgoing connection may take when the script gave no limit of
//! its own: [`CONNECT_TIMEOUT`] (30 s, undici's default), for `net.request`,
//! `net.socket` and `net.tcp.connect` alike, so a peer that accepts and never
//! answers (a TLS or WebSocket handshake that never comes) cannot park a script
//! forever. How each caller words the failure is its own business.

use std::future::Future;
use std::time::Duration;

/// How long opening a connection (TCP connect, proxy tunnel, TLS, HTTP/2 or
/// WebSocket handshake) may take.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs `connect` within [`CONNECT_TIMEOUT`]; `None` when it took longer.
pub(crate) async fn within_connect_limit<T>(connect: impl Future<Output = T>) -> Option<T> {
    tokio::time::timeout(CONNECT_TIMEOUT, connect).await.ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_that_never_opens_gives_up_after_the_limit() {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap()
            .block_on(async {
                let start = tokio::time::Instant::now();
                let never = std::future::pending::<()>();
                assert_eq!(within_connect_limit(never).await, None);
                assert_eq!(start.elapsed(), CONNECT_TIMEOUT);
                assert_eq!(within_connect_limit(async { 7 }).await, Some(7));
            });
    }
}
