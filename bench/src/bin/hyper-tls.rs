//! The ceiling for `net.serve` with `tls`: raw hyper over tokio-rustls on one
//! thread, HTTP/2 or HTTP/1.1 as ALPN chose, answering every request with a constant
//! (and echoing POST bodies), as a Lunet handler would.
//!
//! With `text` as a fourth argument, the constant goes out with `content-type:
//! text/plain`, as Lunet's response to a handler's string does (Lune's behaviour,
//! which Lunet keeps): the same response bytes, for a like-for-like ceiling.
//!
//! Usage: hyper-tls <port> <cert.pem> <key.pem> [text]

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};

fn main() {
    let port: u16 = lunet_bench::arg(1, 8443);
    let cert: String = lunet_bench::arg(2, "cert.pem".to_string());
    let key: String = lunet_bench::arg(3, "key.pem".to_string());
    let text: String = lunet_bench::arg(4, String::new());
    let text = text == "text";
    let acceptor = lunet_bench::tls_acceptor(&cert, &key);
    lunet_bench::current_thread().block_on(lunet_bench::accept_loop(port, move |stream| {
        let acceptor = acceptor.clone();
        async move {
            let Ok(tls) = acceptor.accept(stream).await else {
                return;
            };
            let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
            let io = TokioIo::new(tls);
            // The hello (not the echo, whose handler returns a table without
            // headers) is the string response.
            let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                let hello = request.method() != hyper::Method::POST;
                async move {
                    let mut response = lunet_bench::hello_or_echo(request).await?;
                    if text && hello {
                        response.headers_mut().insert(
                            hyper::header::CONTENT_TYPE,
                            hyper::header::HeaderValue::from_static("text/plain"),
                        );
                    }
                    Ok::<_, std::convert::Infallible>(response)
                }
            });
            if h2 {
                let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(io, service)
                    .await;
            } else {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, service)
                    .await;
            }
        }
    }));
}
