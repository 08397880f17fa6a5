//! `net.serve` with `tls`: HTTPS over HTTP/1.1 and HTTP/2 (chosen by ALPN), PEM text
//! or files, mutual TLS, the errors for bad certificates and keys, the handshake's
//! time limit, `wss://`, and curl as a client. Clients trust only the test CA.

mod common;

use std::time::{Duration, Instant};

use common::tls::{client_ca, client_config, client_identity, server_pem};
use common::{RunningScript, peer_runtime, run_luau, spawn_luau};
use futures_util::{SinkExt, StreamExt};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

/// Answers `<httpVersion> <method> <body length>`, after 0.3 s for `/slow`.
const HANDLER: &str = r#"function(request)
    if request.path == "/slow" then task.wait(0.3) end
    return {
        status = 200,
        headers = { ["x-http-version"] = request.httpVersion },
        body = request.httpVersion .. " " .. request.method .. " " .. #request.body,
    }
end"#;

/// Starts `net.serve(0, <config>)`, where the config may use `cert`, `key` and
/// `clientCa` (the first three `args`), until the test finishes the script.
fn serve(config: &str, args: &[String]) -> (RunningScript, u16) {
    let script = spawn_luau(
        &format!(
            "local testkit = require(\"@lune/testkit\")\n\
             local cert, key, clientCa = process.args[1], process.args[2], process.args[3]\n\
             local handle = net.serve(0, {config})\n\
             testkit.ready(handle.port)\n\
             testkit.finished()\n\
             handle.stop()\n"
        ),
        args,
    );
    let port = script
        .ready()
        .parse()
        .expect("the script hands over its port");
    (script, port)
}

fn https_client(alpn: &[&[u8]]) -> reqwest::Client {
    let config = (*client_config(alpn, None)).clone();
    let builder = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(20))
        .tls_backend_preconfigured(config);
    if alpn == [b"http/1.1"] {
        builder.http1_only().build().unwrap()
    } else {
        builder.build().unwrap()
    }
}

#[test]
fn https_serves_http1_and_http2_chosen_by_alpn() {
    let (cert, key) = server_pem();
    let (script, port) = serve(
        &format!("{{ tls = {{ cert = cert, key = key }}, handleRequest = {HANDLER} }}"),
        &[cert, key],
    );
    peer_runtime().block_on(async {
        let url = format!("https://localhost:{port}/");
        let http1 = https_client(&[b"http/1.1"]);
        let response = http1.get(&url).send().await.unwrap();
        assert_eq!(response.version(), reqwest::Version::HTTP_11);
        assert_eq!(response.text().await.unwrap(), "1.1 GET 0");

        let http2 = https_client(&[b"h2", b"http/1.1"]);
        let response = http2
            .post(&url)
            .body("x".repeat(100_000))
            .send()
            .await
            .unwrap();
        assert_eq!(response.version(), reqwest::Version::HTTP_2);
        assert_eq!(response.headers()["x-http-version"], "2");
        assert_eq!(response.text().await.unwrap(), "2 POST 100000");
    });
    assert_eq!(script.finish(), 0);
}

#[test]
fn cert_and_key_may_be_file_paths_and_a_chain() {
    let (cert, key) = server_pem();
    let dir = tempfile::tempdir().unwrap();
    let cert_path = dir.path().join("chain.pem");
    let key_path = dir.path().join("key.pem");
    // The chain: the leaf, then its issuer.
    let ca_pem = std::fs::read_to_string(&common::tls::ca().pem_path).unwrap();
    std::fs::write(&cert_path, format!("{cert}{ca_pem}")).unwrap();
    std::fs::write(&key_path, key).unwrap();
    let (script, port) = serve(
        &format!("{{ tls = {{ cert = cert, key = key }}, handleRequest = {HANDLER} }}"),
        &[
            cert_path.display().to_string(),
            key_path.display().to_string(),
        ],
    );
    peer_runtime().block_on(async {
        let response = https_client(&[b"h2", b"http/1.1"])
            .get(format!("https://127.0.0.1:{port}/"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.text().await.unwrap(), "2 GET 0");
    });
    assert_eq!(script.finish(), 0);
}

#[test]
fn bad_certificates_and_keys_are_errors_naming_the_field_and_the_cause() {
    let (cert, key) = server_pem();
    let (_, other_key) = server_pem();
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pem").display().to_string();
    let big = dir.path().join("big.pem");
    std::fs::write(&big, vec![b'x'; 2 << 20]).unwrap();
    let big = big.display().to_string();
    // A FIFO with no writer: opening it for reading the usual way would wait
    // forever.
    let fifo = dir.path().join("fifo.pem");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success(), "mkfifo");
    let fifo = fifo.display().to_string();
    run_luau(
        r#"
local cert, key, otherKey, missing, big, fifo = process.args[1], process.args[2], process.args[3], process.args[4], process.args[5], process.args[6]
local function serve(tls)
    return function() net.serve(0, { tls = tls, handleRequest = function() return "" end }) end
end
local err = errors(serve({ cert = missing, key = key }), "Invalid tls.cert - cannot read '" .. missing .. "': no such file", "a missing cert file")
errors(serve({ cert = cert, key = missing }), "Invalid tls.key - cannot read", "a missing key file")
errors(serve({ cert = "/dev/zero", key = key }), "Invalid tls.cert - cannot read '/dev/zero': not a regular file", "a device that never ends")
errors(serve({ cert = cert, key = fifo }), "Invalid tls.key - cannot read '" .. fifo .. "': not a regular file", "a FIFO without a writer")
errors(serve({ cert = big, key = key }), "Invalid tls.cert - cannot read '" .. big .. "': larger than 1048576 bytes", "a file too large to be PEM")
errors(serve({ cert = key, key = key }), "Invalid tls.cert - no PEM certificate", "a key where the cert goes")
errors(serve({ cert = cert, key = cert }), "Invalid tls.key - no PEM private key", "a cert where the key goes")
errors(serve({ cert = "-----BEGIN CERTIFICATE-----\n!!!not base64!!!\n-----END CERTIFICATE-----\n", key = key }), "Invalid tls.cert - unreadable PEM", "garbage PEM")
errors(serve({ cert = cert, key = otherKey }), "Invalid tls.key - the private key does not match the certificate in tls.cert", "a mismatched key")
errors(serve({ cert = cert }), "Invalid tls.key - expected PEM text or the path of a PEM file, got nil", "no key")
errors(serve({ cert = "", key = key }), "Invalid tls.cert - expected PEM text or the path of a PEM file, got an empty string", "an empty cert")
errors(serve({ cert = cert, key = 5 }), "Invalid tls.key - expected string, got number", "a number key")
errors(serve({ cert = cert, key = key, clientCa = key }), "Invalid tls.clientCa - no PEM certificate", "a key as the client CA")
errors(function() net.serve(0, { tls = true, handleRequest = function() end }) end, "Invalid tls - expected table, got boolean", "tls not a table")
"#,
        &[cert, key, other_key, missing, big, fifo],
    );
}

/// Sends a GET over TLS with `identity` (or none) and returns what came back, or
/// the error that ended the exchange.
async fn tls_get(
    port: u16,
    identity: Option<(
        Vec<rustls_pki_types::CertificateDer<'static>>,
        rustls_pki_types::PrivateKeyDer<'static>,
    )>,
) -> Result<String, std::io::Error> {
    let connector = tokio_rustls::TlsConnector::from(client_config(&[b"http/1.1"], identity));
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    let mut tls = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await?;
    tls.write_all(b"GET / HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
        .await?;
    let mut received = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut received))
        .await
        .expect("the server answers or closes")?;
    Ok(String::from_utf8_lossy(&received).into_owned())
}

#[test]
fn client_ca_requires_a_client_certificate_it_signed() {
    let (cert, key) = server_pem();
    let trusted = client_ca();
    let stranger = client_ca();
    let (script, port) = serve(
        &format!(
            "{{ tls = {{ cert = cert, key = key, clientCa = clientCa }}, handleRequest = {HANDLER} }}"
        ),
        &[cert, key, trusted.pem.clone()],
    );
    peer_runtime().block_on(async {
        let answer = tls_get(port, Some(client_identity(&trusted)))
            .await
            .unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.ends_with("1.1 GET 0"), "{answer}");

        let without = tls_get(port, None).await;
        assert!(
            !without.as_ref().is_ok_and(|a| a.contains("200")),
            "a client without a certificate is refused: {without:?}"
        );
        let unknown = tls_get(port, Some(client_identity(&stranger))).await;
        assert!(
            !unknown.as_ref().is_ok_and(|a| a.contains("200")),
            "a certificate from another CA is refused: {unknown:?}"
        );
    });
    assert_eq!(script.finish(), 0);
}

#[test]
fn a_client_stalled_in_the_handshake_is_dropped_at_the_header_timeout_without_holding_up_others() {
    let (cert, key) = server_pem();
    let (script, port) = serve(
        &format!(
            "{{ tls = {{ cert = cert, key = key }}, headerTimeout = 1, handleRequest = {HANDLER} }}"
        ),
        &[cert, key],
    );
    peer_runtime().block_on(async {
        let start = Instant::now();
        // The start of a TLS record (a ClientHello's header), then nothing.
        let mut stalled = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        stalled
            .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00])
            .await
            .unwrap();
        let silent = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        // Meanwhile another client is served.
        let response = https_client(&[b"h2"])
            .get(format!("https://localhost:{port}/"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.text().await.unwrap(), "2 GET 0");
        let served = start.elapsed();
        for mut client in [stalled, silent] {
            let mut buffer = [0u8; 64];
            let read = tokio::time::timeout(Duration::from_secs(10), client.read(&mut buffer))
                .await
                .expect("the stalled client is dropped");
            assert!(
                matches!(read, Ok(0) | Err(_)),
                "closed without an answer: {read:?}"
            );
        }
        let dropped = start.elapsed();
        assert!(
            served < Duration::from_millis(900),
            "the other client was served ({served:?}) while the stalled ones waited, before \
             the header timeout dropped them"
        );
        assert!(
            (Duration::from_millis(900)..Duration::from_secs(5)).contains(&dropped),
            "dropped at the header timeout: {dropped:?}"
        );
    });
    assert_eq!(script.finish(), 0);
}

#[test]
fn wss_works_on_a_tls_server() {
    let (cert, key) = server_pem();
    let (script, port) = serve(
        r#"{ tls = { cert = cert, key = key }, handleWebSocket = function(socket)
            while true do
                local message = socket:next()
                if message == nil then break end
                socket:send("echo " .. message)
            end
        end }"#,
        &[cert, key],
    );
    peer_runtime().block_on(async {
        let connector = tokio_tungstenite::Connector::Rustls(client_config(&[], None));
        let (mut socket, _) = tokio_tungstenite::connect_async_tls_with_config(
            format!("wss://localhost:{port}/"),
            None,
            false,
            Some(connector),
        )
        .await
        .unwrap();
        socket.send(Message::text("hello")).await.unwrap();
        let answer = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(answer, Message::text("echo hello"));
        socket.close(None).await.unwrap();
    });
    assert_eq!(script.finish(), 0);
}

/// curl, when present: `--http2` over TLS and `--http2-prior-knowledge` on a plain
/// port both get HTTP/2.
#[test]
fn curl_speaks_http2_to_the_server() {
    if std::process::Command::new("curl")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("curl is not installed: skipping");
        return;
    }
    let (cert, key) = server_pem();
    let (tls_script, tls_port) = serve(
        &format!("{{ tls = {{ cert = cert, key = key }}, handleRequest = {HANDLER} }}"),
        &[cert, key],
    );
    let (plain_script, plain_port) = serve(&format!("{{ handleRequest = {HANDLER} }}"), &[]);
    let curl = |args: &[&str]| {
        let output = std::process::Command::new("curl")
            .args(["-sS", "--max-time", "20", "--noproxy", "*"])
            .args(["-w", " %{http_version}"])
            .args(args)
            .output()
            .unwrap();
        assert!(output.status.success(), "curl {args:?}: {output:?}");
        String::from_utf8(output.stdout).unwrap()
    };
    let ca = common::tls::ca().pem_path.display().to_string();
    let tls_url = format!("https://localhost:{tls_port}/");
    assert_eq!(curl(&["--http2", "--cacert", &ca, &tls_url]), "2 GET 0 2");
    assert_eq!(
        curl(&["--http1.1", "--cacert", &ca, &tls_url]),
        "1.1 GET 0 1.1"
    );
    let plain_url = format!("http://127.0.0.1:{plain_port}/");
    assert_eq!(
        curl(&["--http2-prior-knowledge", "-d", "abc", &plain_url]),
        "2 POST 3 2"
    );
    assert_eq!(curl(&["--http1.0", &plain_url]), "1.0 GET 0 1");
    assert_eq!(tls_script.finish(), 0);
    assert_eq!(plain_script.finish(), 0);
}

/// Keys in PKCS#1 (RSA) and SEC1 (EC) form, made by openssl with self-signed
/// certificates; curl, trusting each certificate, gets an answer. Skipped (with a
/// note) without openssl or curl.
#[test]
fn pkcs1_and_sec1_keys_are_accepted() {
    let have = |program: &str| {
        std::process::Command::new(program)
            .arg("version")
            .output()
            .is_ok()
    };
    if !have("openssl") || !have("curl") {
        eprintln!("openssl or curl is not installed: skipping");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let output = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(output.status.success(), "openssl {args:?}: {output:?}");
    };
    // PKCS#1: an RSA key converted to the "traditional" form.
    run(&["genrsa", "-out", "rsa8.pem", "2048"]);
    run(&["rsa", "-in", "rsa8.pem", "-traditional", "-out", "rsa1.pem"]);
    // SEC1: `ecparam -genkey` writes an "EC PRIVATE KEY".
    run(&[
        "ecparam",
        "-name",
        "prime256v1",
        "-genkey",
        "-noout",
        "-out",
        "ec1.pem",
    ]);
    for (key, marker) in [
        ("rsa1.pem", "BEGIN RSA PRIVATE KEY"),
        ("ec1.pem", "BEGIN EC PRIVATE KEY"),
    ] {
        let key_pem = std::fs::read_to_string(dir.path().join(key)).unwrap();
        assert!(key_pem.contains(marker), "{key}: {key_pem}");
        let cert = format!("{key}.cert.pem");
        run(&[
            "req",
            "-x509",
            "-key",
            key,
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost",
            "-out",
            &cert,
        ]);
        let cert_path = dir.path().join(&cert).display().to_string();
        let (script, port) = serve(
            &format!("{{ tls = {{ cert = cert, key = key }}, handleRequest = {HANDLER} }}"),
            &[cert_path.clone(), key_pem],
        );
        let output = std::process::Command::new("curl")
            .args([
                "-sS",
                "--max-time",
                "20",
                "--noproxy",
                "*",
                "--cacert",
                &cert_path,
            ])
            .arg(format!("https://localhost:{port}/"))
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&output.stdout),
            "2 GET 0",
            "{key}: {output:?}"
        );
        assert_eq!(script.finish(), 0);
    }
}
