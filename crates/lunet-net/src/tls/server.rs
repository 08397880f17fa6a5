//! The TLS server configuration of `net.serve(port, { tls = { cert, key, clientCa? } })`
//! and of `net.tcp.listen({ tls = ... })`.
//!
//! Each of `cert`, `key` and `clientCa` is PEM text (anything containing
//! `-----BEGIN`) or the path of a PEM file. `cert` is the certificate chain, leaf
//! first; `key` is the leaf's private key in PKCS#8, PKCS#1 or SEC1 form; `clientCa`
//! holds the certificates that client certificates must chain to, and makes one
//! required (mutual TLS). Every failure names the field and the reason (a missing
//! file with its path, no PEM item found, a key that does not match the
//! certificate), so `net.serve` fails at once instead of at the first handshake.
//!
//! For `net.serve`, ALPN offers `h2` then `http/1.1`; `net.tcp.listen`'s streams are
//! raw bytes and offer none. This module only builds the configuration; handshakes
//! are the server's `transport`'s (and the TCP listener's) business.

use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::{self, PemObject};

use lunet_runtime::args;

/// What each `tls` field takes, as argument errors say it.
const PEM_EXPECTED: &str = "PEM text or the path of a PEM file";

/// What a script gave for one of the `tls` fields: PEM text or a file path.
struct PemSource {
    /// `tls.cert`, `tls.key` or `tls.clientCa`, as errors name it.
    field: &'static str,
    value: Vec<u8>,
}

/// The `tls` table's contents, checked for type but not yet for content.
struct ServerTls {
    cert: PemSource,
    key: PemSource,
    client_ca: Option<PemSource>,
}

/// The largest PEM file read: a certificate chain or key is a few KiB.
const MAX_PEM_FILE: u64 = 1 << 20;

/// Reads the PEM file at `path`: only a regular file (a FIFO or a device such as
/// `/dev/zero` would block the event loop or never end), of at most
/// [`MAX_PEM_FILE`] bytes.
fn read_pem_file(path: &str) -> std::io::Result<Vec<u8>> {
    use std::io::{Error, ErrorKind, Read};
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    // Opened without waiting (a FIFO's open would wait for a writer), then the
    // opened file is checked: what is read is what was checked, whatever the path
    // names by then. (A regular file's reads ignore O_NONBLOCK.)
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NONBLOCK);
    let file = options.open(path)?;
    if !file.metadata()?.is_file() {
        return Err(Error::new(ErrorKind::InvalidInput, "not a regular file"));
    }
    let mut bytes = Vec::new();
    file.take(MAX_PEM_FILE + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_PEM_FILE {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("larger than {MAX_PEM_FILE} bytes"),
        ));
    }
    Ok(bytes)
}

/// The protocols `net.serve` offers by ALPN, most preferred first.
pub(crate) const HTTP_ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

fn invalid(field: &str, why: impl std::fmt::Display) -> String {
    format!("Invalid {field} - {why}")
}

impl PemSource {
    /// The PEM text: the value itself when it holds a PEM marker, else the file it
    /// names, read now.
    fn pem(&self) -> Result<(Vec<u8>, Option<String>), String> {
        if self.value.windows(10).any(|w| w == b"-----BEGIN") {
            return Ok((self.value.clone(), None));
        }
        let path = String::from_utf8_lossy(&self.value).into_owned();
        if path.trim().is_empty() {
            return Err(invalid(
                self.field,
                format!("expected {PEM_EXPECTED}, got an empty string"),
            ));
        }
        match read_pem_file(&path) {
            Ok(bytes) => Ok((bytes, Some(path))),
            Err(error) => {
                let why = match error.kind() {
                    std::io::ErrorKind::NotFound => "no such file".to_string(),
                    std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
                    _ => error.to_string(),
                };
                Err(invalid(self.field, format!("cannot read '{path}': {why}")))
            }
        }
    }

    /// Where the PEM came from, for errors: ` in '<path>'` or nothing for text.
    fn origin(path: &Option<String>) -> String {
        path.as_ref()
            .map(|p| format!(" in '{p}'"))
            .unwrap_or_default()
    }

    fn certificates(&self) -> Result<Vec<CertificateDer<'static>>, String> {
        let (pem, path) = self.pem()?;
        let certs = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<Vec<_>, pem::Error>>()
            .map_err(|e| {
                invalid(
                    self.field,
                    format!("unreadable PEM{}: {e}", Self::origin(&path)),
                )
            })?;
        if certs.is_empty() {
            return Err(invalid(
                self.field,
                format!(
                    "no PEM certificate (-----BEGIN CERTIFICATE-----) found{}",
                    Self::origin(&path)
                ),
            ));
        }
        Ok(certs)
    }

    fn private_key(&self) -> Result<PrivateKeyDer<'static>, String> {
        let (pem, path) = self.pem()?;
        PrivateKeyDer::from_pem_slice(&pem).map_err(|e| {
            let why = match e {
                pem::Error::NoItemsFound => format!(
                    "no PEM private key (PKCS#8, PKCS#1 or SEC1) found{}",
                    Self::origin(&path)
                ),
                other => format!("unreadable PEM{}: {other}", Self::origin(&path)),
            };
            invalid(self.field, why)
        })
    }
}

/// Reads a script's `tls` table (`{ cert, key, clientCa? }`) and builds its
/// configuration, offering `alpn` (most preferred first); errors name the field.
pub(crate) fn config_from_table(
    table: &mlua::Table,
    alpn: &[&[u8]],
) -> mlua::Result<Arc<ServerConfig>> {
    let source = |key: &str, field: &'static str| -> mlua::Result<Option<PemSource>> {
        Ok(
            args::optional_string(&table.get(key)?, field)?.map(|value| PemSource {
                field,
                value: value.as_bytes().to_vec(),
            }),
        )
    };
    let required = |key: &str, field: &'static str| -> mlua::Result<PemSource> {
        source(key, field)?.ok_or_else(|| args::invalid(field, PEM_EXPECTED, "nil"))
    };
    let tls = ServerTls {
        cert: required("cert", "tls.cert")?,
        key: required("key", "tls.key")?,
        client_ca: source("clientCa", "tls.clientCa")?,
    };
    server_config(&tls, alpn).map_err(mlua::Error::runtime)
}

/// Builds the server configuration, or the error that says which field is wrong
/// and why.
fn server_config(tls: &ServerTls, alpn: &[&[u8]]) -> Result<Arc<ServerConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = tls.cert.certificates()?;
    let key = tls.key.private_key()?;
    let signing_key = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| invalid(tls.key.field, format!("unusable private key: {e}")))?;
    let certified = CertifiedKey::new(chain, signing_key);
    match certified.keys_match() {
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            return Err(invalid(
                tls.key.field,
                format!(
                    "the private key does not match the certificate in {} (its first certificate must be the key's)",
                    tls.cert.field
                ),
            ));
        }
        Err(e) => return Err(invalid(tls.cert.field, format!("bad certificate: {e}"))),
    }
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS is unavailable: {e}"))?;
    let builder = match &tls.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for cert in ca.certificates()? {
                roots
                    .add(cert)
                    .map_err(|e| invalid(ca.field, format!("bad CA certificate: {e}")))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| invalid(ca.field, e))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_cert_resolver(Arc::new(SingleCertAndKey::from(certified)));
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}
