//! Shared helpers for the benchmark binaries: argument parsing and runtimes.
//!
//! The binaries are the *peers* Lunet is compared with (a raw hyper server, a raw
//! tokio-tungstenite echo server, a raw TCP echo server) and the load generators the
//! benchmark drives them with. `bench/run.py` runs them; see `bench/README.md`.

/// The `n`th command-line argument parsed as `T`, or `default`.
pub fn arg<T: std::str::FromStr>(n: usize, default: T) -> T {
    std::env::args()
        .nth(n)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

/// A single-threaded tokio runtime, as Lunet itself uses.
pub fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}
