//! The ceiling for streaming responses: raw hyper on one thread, answering
//! `GET /?n=<bytes>&chunk=<bytes>` with `n` bytes sent as a stream of `chunk`-sized
//! frames (what a Lunet handler with a function body, or Node's `res.write`, does).
//!
//! Usage: stream-server <port>

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::StreamBody;
use hyper::body::Frame;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

fn param(query: &str, name: &str, default: usize) -> usize {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == name)
        .and_then(|(_, value)| value.parse().ok())
        .unwrap_or(default)
}

async fn handle(
    request: Request<hyper::body::Incoming>,
) -> Result<
    Response<
        StreamBody<futures_util::stream::BoxStream<'static, Result<Frame<Bytes>, Infallible>>>,
    >,
    Infallible,
> {
    let query = request.uri().query().unwrap_or("");
    let total = param(query, "n", 1 << 20);
    let chunk = param(query, "chunk", 64 << 10).max(1);
    let block = Bytes::from(vec![b'x'; chunk]);
    let stream = futures_util::stream::unfold(total, move |left| {
        let block = block.clone();
        async move {
            if left == 0 {
                return None;
            }
            let size = left.min(block.len());
            Some((Ok(Frame::data(block.slice(..size))), left - size))
        }
    });
    Ok(Response::new(StreamBody::new(Box::pin(stream) as _)))
}

fn main() {
    let port: u16 = lunet_bench::arg(1, 8080);
    lunet_bench::current_thread().block_on(lunet_bench::accept_loop(port, |stream| async move {
        let _ = hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(stream), service_fn(handle))
            .await;
    }));
}
