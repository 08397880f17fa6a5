//! The trust store and TLS client configurations shared by `net.request`,
//! `net.socket` and `net.tcp`.
//!
//! Trust is Mozilla's roots (webpki-roots) plus the operating system's store plus
//! every certificate in the PEM files named by `SSL_CERT_FILE` and found in
//! `SSL_CERT_DIR` (read through [`lunet_runtime::env`], so a script's `process.env`
//! writes before its first TLS connection count). The store is built once per
//! process, on first use. Two client
//! configurations come from it: one that offers HTTP/2 and HTTP/1.1 by ALPN (for the
//! HTTP client) and one without ALPN (for WebSockets and raw TCP). TLS is rustls with
//! the ring provider. The server side (`net.serve`'s `tls`) is [`server`].

pub(crate) mod server;

use std::path::Path;
use std::sync::{Arc, OnceLock};

use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

/// Installs ring as rustls' process-wide provider (idempotent).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn add_pem_file(store: &mut RootCertStore, path: &Path) {
    if let Ok(iter) = CertificateDer::pem_file_iter(path) {
        for cert in iter.flatten() {
            let _ = store.add(cert);
        }
    }
}

fn build_root_store() -> RootCertStore {
    let mut store = RootCertStore::empty();
    store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs {
        let _ = store.add(cert);
    }
    if let Some(file) = lunet_runtime::env::var("SSL_CERT_FILE") {
        add_pem_file(&mut store, Path::new(&file));
    }
    if let Some(dir) = lunet_runtime::env::var("SSL_CERT_DIR") {
        for dir in std::env::split_paths(&dir) {
            if let Ok(entries) = std::fs::read_dir(dir) {
                for entry in entries.flatten() {
                    add_pem_file(&mut store, &entry.path());
                }
            }
        }
    }
    store
}

/// The process-wide trust store.
pub(crate) fn root_store() -> Arc<RootCertStore> {
    static STORE: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    STORE.get_or_init(|| Arc::new(build_root_store())).clone()
}

fn base_config() -> ClientConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions")
        .with_root_certificates(root_store())
        .with_no_client_auth()
}

/// The configuration for HTTP clients: offers `h2` and `http/1.1`.
pub(crate) fn http_client_config() -> ClientConfig {
    let mut config = base_config();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    config
}

/// The configuration for WebSocket and TCP clients (no ALPN).
pub(crate) fn stream_client_config() -> Arc<ClientConfig> {
    static CONFIG: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    CONFIG.get_or_init(|| Arc::new(base_config())).clone()
}
