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

/// Binds `127.0.0.1:port`, prints `listening on <port>` (`bench/run.py` waits by
/// connecting, not for this line), and hands each accepted connection (with `TCP_NODELAY`) to `serve` in its
/// own task, forever. Call it inside [`current_thread`]'s runtime.
pub async fn accept_loop<F, Fut>(port: u16, serve: F)
where
    F: Fn(tokio::net::TcpStream) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    accept_each(port, |stream| {
        tokio::spawn(serve(stream));
    })
    .await
}

/// [`accept_loop`] for servers whose connections are not `Send` (a Luau VM's):
/// each connection's task is spawned on the current `LocalSet`, within which this
/// must run.
pub async fn accept_loop_local<F, Fut>(port: u16, serve: F)
where
    F: Fn(tokio::net::TcpStream) -> Fut,
    Fut: std::future::Future<Output = ()> + 'static,
{
    accept_each(port, |stream| {
        tokio::task::spawn_local(serve(stream));
    })
    .await
}

async fn accept_each(port: u16, mut each: impl FnMut(tokio::net::TcpStream)) {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    println!("listening on {port}");
    loop {
        let (stream, _) = listener.accept().await.unwrap();
        let _ = stream.set_nodelay(true);
        each(stream);
    }
}

/// A TLS acceptor for the certificate chain and private key in the PEM files at
/// `cert` and `key`, offering `h2` then `http/1.1` by ALPN (as `net.serve` does).
pub fn tls_acceptor(cert: &str, key: &str) -> tokio_rustls::TlsAcceptor {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let chain = CertificateDer::pem_file_iter(cert)
        .expect("the certificate file")
        .collect::<Result<Vec<_>, _>>()
        .expect("PEM certificates");
    let key = PrivateKeyDer::from_pem_file(key).expect("a PEM private key");
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("a matching certificate and key");
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config))
}

/// What the raw hyper ceilings answer, as a Lunet handler would: a POST's body
/// echoed, anything else `Hello, World!`.
pub async fn hello_or_echo(
    request: hyper::Request<hyper::body::Incoming>,
) -> Result<hyper::Response<http_body_util::Full<bytes::Bytes>>, std::convert::Infallible> {
    use http_body_util::{BodyExt, Full};
    if request.method() == hyper::Method::POST {
        let body = request
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        return Ok(hyper::Response::new(Full::new(body)));
    }
    Ok(hyper::Response::new(Full::new(bytes::Bytes::from_static(
        b"Hello, World!",
    ))))
}
