//! Test certificates: one CA per test process, trusted through `SSL_CERT_FILE`, and
//! server configurations for good, expired, wrong-host and self-signed certificates.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::ServerConfig;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

pub struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    pub pem_path: PathBuf,
    _dir: tempfile::TempDir,
}

/// The process's test CA; the first call writes it and sets `SSL_CERT_FILE`, before
/// any Lunet trust store is built in this process.
pub fn ca() -> &'static TestCa {
    static CA: OnceLock<TestCa> = OnceLock::new();
    CA.get_or_init(|| {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "Lunet Test CA");
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let pem_path = dir.path().join("ca.pem");
        std::fs::write(&pem_path, cert.pem()).unwrap();
        // SAFETY: set once, by the first TLS test, before any trust store is built.
        unsafe { std::env::set_var("SSL_CERT_FILE", &pem_path) };
        TestCa {
            issuer: Issuer::new(params, key),
            pem_path,
            _dir: dir,
        }
    })
}

/// How the server's certificate should be made.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Leaf {
    /// Signed by the test CA for localhost and 127.0.0.1.
    Good,
    /// Signed by the test CA, but expired.
    Expired,
    /// Signed by the test CA for another host name only.
    WrongHost,
    /// Self-signed: no trusted issuer.
    SelfSigned,
    /// Signed by the test CA for this host name (one that only a proxy can reach).
    Named(&'static str),
}

fn server_config_from(
    cert: CertificateDer<'static>,
    key: &KeyPair,
    alpn: &[&[u8]],
) -> Arc<ServerConfig> {
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

/// A server configuration with the given kind of certificate and ALPN protocols.
pub fn server_config(leaf: Leaf, alpn: &[&[u8]]) -> Arc<ServerConfig> {
    let ca = ca();
    let names = match leaf {
        Leaf::WrongHost => vec!["other.example".to_string()],
        Leaf::Named(name) => vec![name.to_string()],
        _ => vec!["localhost".to_string(), "127.0.0.1".to_string()],
    };
    let mut params = CertificateParams::new(names).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "lunet test server");
    if leaf == Leaf::Expired {
        params.not_before = rcgen::date_time_ymd(2000, 1, 1);
        params.not_after = rcgen::date_time_ymd(2001, 1, 1);
    }
    let key = KeyPair::generate().unwrap();
    let cert = match leaf {
        Leaf::SelfSigned => params.self_signed(&key).unwrap(),
        _ => params.signed_by(&key, &ca.issuer).unwrap(),
    };
    server_config_from(cert.der().clone(), &key, alpn)
}

/// PEM texts of a server certificate for localhost and 127.0.0.1 signed by the test
/// CA, and of its key (PKCS#8): what `net.serve`'s `tls` takes.
pub fn server_pem() -> (String, String) {
    let ca = ca();
    let mut params =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "lunet test server");
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca.issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

/// A CA for client certificates (mutual TLS), apart from the server's test CA.
pub struct ClientCa {
    issuer: Issuer<'static, KeyPair>,
    pub pem: String,
}

pub fn client_ca() -> ClientCa {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, "Lunet Test Client CA");
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    ClientCa {
        pem: cert.pem(),
        issuer: Issuer::new(params, key),
    }
}

/// A client certificate chain and key signed by `ca`.
pub fn client_identity(ca: &ClientCa) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
    let mut params = CertificateParams::new(vec!["client.test".to_string()]).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "lunet test client");
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca.issuer).unwrap();
    (
        vec![cert.der().clone()],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    )
}

/// A client configuration trusting only the test CA, offering `alpn`, presenting
/// `identity` when given.
pub fn client_config(
    alpn: &[&[u8]],
    identity: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    let pem = std::fs::read(&ca().pem_path).unwrap();
    use rustls_pki_types::pem::PemObject;
    for cert in CertificateDer::pem_slice_iter(&pem) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let mut config = match identity {
        Some((chain, key)) => builder.with_client_auth_cert(chain, key).unwrap(),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}
