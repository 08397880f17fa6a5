//! The ceiling for `net.serve`: raw hyper on one thread, answering every request
//! with a constant (and echoing POST bodies), as a Lunet handler would.
//!
//! Usage: hyper-hello <port>

use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

fn main() {
    let port: u16 = lunet_bench::arg(1, 8080);
    lunet_bench::current_thread().block_on(lunet_bench::accept_loop(port, |stream| async move {
        let _ = hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(stream), service_fn(lunet_bench::hello_or_echo))
            .await;
    }));
}
