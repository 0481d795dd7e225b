//! HTTPS: a server with a certificate from a test CA, agents that trust it
//! or not, clients that use the wrong scheme, a client that never says
//! hello, and certificate settings that are wrong.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use procmon_agent::tls::CaFile;
use procmon_agent::{SendError, Sender, ServerTrust};
use procmon_model::ErrorBody;
use procmon_server::config::Settings;
use procmon_server::startup::Application;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
use secrecy::SecretString;
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::{sample_snapshot, spawn_app, spawn_app_with, spawn_https_app_with, TestApp};

/// A test CA, a server certificate for 127.0.0.1 and localhost that it
/// signed, an unrelated CA, all as PEM files in a temp dir.
struct Pki {
    dir: TempDir,
    ca_pem: String,
}

impl Pki {
    fn new() -> Pki {
        Self::for_names(&["127.0.0.1", "localhost"])
    }

    /// As [`new`](Self::new), the server certificate naming `names` only.
    fn for_names(names: &[&str]) -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let (ca, ca_key) = new_ca("procmon test CA");
        let (other_ca, _) = new_ca("an unrelated CA");
        let server_key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "procmon test server");
        let server = params.signed_by(&server_key, &ca, &ca_key).unwrap();
        let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
        write("ca.pem", &ca.pem());
        write("other-ca.pem", &other_ca.pem());
        write("server.pem", &server.pem());
        write("server.key", &server_key.serialize_pem());
        write("other.key", &KeyPair::generate().unwrap().serialize_pem());
        // Self-signed, as the README's openssl command makes it (CA:FALSE)
        // and as openssl makes it by default (CA:TRUE).
        for (name, is_ca) in [
            ("self", IsCa::ExplicitNoCa),
            ("self-ca", IsCa::Ca(BasicConstraints::Unconstrained)),
        ] {
            let key = KeyPair::generate().unwrap();
            let mut params =
                CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                    .unwrap();
            params.is_ca = is_ca;
            let certificate = params.self_signed(&key).unwrap();
            write(&format!("{name}.pem"), &certificate.pem());
            write(&format!("{name}.key"), &key.serialize_pem());
        }
        Pki {
            dir,
            ca_pem: ca.pem(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Settings that serve HTTPS with the server certificate.
    fn serve_https(&self, settings: &mut Settings) {
        settings.tls_cert = Some(self.path("server.pem"));
        settings.tls_key = Some(self.path("server.key"));
    }

    /// A sender to `app` that trusts the CAs in `ca_file`, with a new key
    /// that its first snapshot binds to its host.
    async fn sender(&self, app: &TestApp, ca_file: &str) -> Sender {
        let trust = ServerTrust::CaFile(CaFile::read(&self.path(ca_file)).unwrap());
        Sender::with_trust(
            &app.address,
            SecretString::from(app.unbound_key().await),
            &trust,
        )
        .unwrap()
    }
}

fn new_ca(name: &str) -> (rcgen::Certificate, KeyPair) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let key = KeyPair::generate().unwrap();
    (params.self_signed(&key).unwrap(), key)
}

async fn https_app(pki: &Pki) -> TestApp {
    spawn_https_app_with(&pki.ca_pem, |s| pki.serve_https(s)).await
}

/// Sends `request` on a new plain TCP connection and reads until the server
/// closes it (at most 10 s).
async fn raw_exchange(port: u16, request: &str) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn an_agent_trusting_the_ca_sends_over_https_and_the_listing_reads_back() {
    let pki = Pki::new();
    let app = https_app(&pki).await;
    assert!(app.address.starts_with("https://"), "{}", app.address);

    let response = app.post_snapshot(&sample_snapshot("tls-host-1", 5)).await;
    assert_eq!(response.status(), 201);

    let snapshot = sample_snapshot("tls-host-2", 7);
    let answer = pki
        .sender(&app, "ca.pem")
        .await
        .send(&snapshot)
        .await
        .unwrap();
    assert!(answer.stored);

    let listing = app.get_processes("tls-host-2").await;
    assert_eq!(listing.status(), 200);
    let body: serde_json::Value = listing.json().await.unwrap();
    assert_eq!(body["processes"].as_array().unwrap().len(), 7, "{body}");
}

#[tokio::test]
async fn the_agent_refuses_a_certificate_it_does_not_trust_and_says_what_to_do() {
    let pki = Pki::new();
    let app = https_app(&pki).await;
    let snapshot = sample_snapshot("untrusted", 2);
    let public_cas_only = Sender::new(&app.address, SecretString::from(app.agent_key.clone()));
    let wrong_ca = pki.sender(&app, "other-ca.pem").await;
    for sender in [public_cas_only.unwrap(), wrong_ca] {
        let error = sender.send(&snapshot).await.unwrap_err();
        assert!(
            matches!(error, SendError::UntrustedCertificate { .. }),
            "{error:?}"
        );
        let message = error.to_string();
        assert!(
            message.starts_with(
                "the server's certificate is not trusted: it is not issued by a CA the agent knows"
            ),
            "{message}"
        );
        assert!(message.contains("give its CA with --ca-file"), "{message}");
    }
    assert_eq!(app.stored_snapshots().await, 0);
}

#[tokio::test]
async fn a_self_signed_certificate_is_its_own_ca_unless_it_says_it_is_a_ca() {
    let pki = Pki::new();
    for (name, refusal) in [
        ("self", None),
        (
            "self-ca",
            Some("it is a CA certificate (basicConstraints CA:TRUE) used as the server's own"),
        ),
    ] {
        let app = spawn_app_with(|s| {
            s.tls_cert = Some(pki.path(&format!("{name}.pem")));
            s.tls_key = Some(pki.path(&format!("{name}.key")));
        })
        .await;
        let sent = pki
            .sender(&app, &format!("{name}.pem"))
            .await
            .send(&sample_snapshot("self-signed", 1))
            .await;
        match (sent, refusal) {
            (Ok(answer), None) => assert!(answer.stored),
            (Err(error), Some(refusal)) => {
                let message = error.to_string();
                assert!(
                    message.starts_with(&format!(
                        "the server's certificate is not trusted: {refusal}"
                    )),
                    "{message}"
                );
            }
            (sent, _) => panic!("{name}: {sent:?}"),
        }
    }
}

#[tokio::test]
async fn a_certificate_for_another_name_is_named_as_such() {
    let pki = Pki::for_names(&["localhost"]);
    let app = https_app(&pki).await;
    let sender = pki.sender(&app, "ca.pem").await;
    let error = sender
        .send(&sample_snapshot("h", 1))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with("the server's certificate is not issued for 127.0.0.1"),
        "{error}"
    );
}

#[tokio::test]
async fn plain_http_to_the_https_port_is_told_to_use_https() {
    let pki = Pki::new();
    let app = https_app(&pki).await;
    let port = app.port;

    let answer = raw_exchange(
        port,
        &format!("GET /api/health HTTP/1.1\r\nHost: localhost:{port}\r\n\r\n"),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
    let (_, body) = answer.split_once("\r\n\r\n").unwrap();
    let body: ErrorBody = serde_json::from_str(body).unwrap();
    assert_eq!(body.error, "https_required");
    assert_eq!(
        body.message,
        format!("this server speaks HTTPS: use https://localhost:{port}/")
    );

    let http_url = format!("http://127.0.0.1:{port}");
    let sender = Sender::new(&http_url, SecretString::from(app.agent_key.clone())).unwrap();
    let error = sender.send(&sample_snapshot("h", 1)).await.unwrap_err();
    assert!(matches!(error, SendError::HttpsServer { .. }), "{error:?}");
    assert_eq!(
        error.to_string(),
        format!(
            "the server at http://127.0.0.1:{port}/ speaks https: use https://127.0.0.1:{port}"
        )
    );
    // The HTTPS side is unaffected.
    assert_eq!(app.get("/api/health").await.status(), 200);
}

#[tokio::test]
async fn https_to_a_plain_server_is_told_to_use_http() {
    let app = spawn_app().await;
    let port = app.port;
    let sender = Sender::new(
        &format!("https://127.0.0.1:{port}"),
        SecretString::from(app.agent_key.clone()),
    )
    .unwrap();
    let error = sender.send(&sample_snapshot("h", 1)).await.unwrap_err();
    assert!(
        matches!(error, SendError::PlainHttpServer { .. }),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        format!(
            "the server at https://127.0.0.1:{port}/ speaks plain http, not https: use \
             http://127.0.0.1:{port}"
        )
    );
}

#[tokio::test]
async fn a_client_that_never_finishes_its_handshake_is_cut_off() {
    let pki = Pki::new();
    let app = spawn_https_app_with(&pki.ca_pem, |s| {
        pki.serve_https(s);
        s.header_timeout = Duration::from_secs(1);
    })
    .await;
    // Nothing at all, and the first byte of a TLS record and no more.
    for sent in [&b""[..], &[0x16][..]] {
        let mut stream = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
        stream.write_all(sent).await.unwrap();
        let started = Instant::now();
        let mut buffer = [0u8; 64];
        let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buffer)).await;
        assert!(
            matches!(read, Ok(Ok(0) | Err(_))),
            "still open after 10 s, having sent {sent:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "closed only after {:?}",
            started.elapsed()
        );
    }
    assert_eq!(app.get("/api/health").await.status(), 200);
}

#[tokio::test]
async fn the_connection_cap_holds_over_https() {
    let pki = Pki::new();
    let app = spawn_https_app_with(&pki.ca_pem, |s| {
        pki.serve_https(s);
        s.max_connections = 1;
    })
    .await;
    // The app's client keeps its connection alive, holding the one slot.
    assert_eq!(app.get("/api/hosts/").await.status(), 200);
    let ca = reqwest::Certificate::from_pem(pki.ca_pem.as_bytes()).unwrap();
    let other = reqwest::Client::builder()
        .add_root_certificate(ca)
        .build()
        .unwrap();
    let get = |path: &str| other.get(format!("{}{path}", app.address)).send();
    let refused = get("/api/hosts/").await.unwrap();
    assert_eq!(refused.status(), 503);
    let body: ErrorBody = refused.json().await.unwrap();
    assert_eq!(body.error, "too_many_connections");
    assert_eq!(get("/api/health").await.unwrap().status(), 200);
    // Still served on its own connection.
    assert_eq!(app.get("/api/hosts/").await.status(), 200);
}

#[tokio::test]
async fn the_embedded_agent_stores_on_an_https_server_without_going_through_it() {
    let pki = Pki::new();
    let app = spawn_https_app_with(&pki.ca_pem, |s| {
        pki.serve_https(s);
        s.embedded_agent = true;
        s.embedded_agent_interval = Duration::from_millis(250);
    })
    .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let hosts: serde_json::Value = app.get_hosts().await.json().await.unwrap();
        if hosts.as_array().is_some_and(|h| !h.is_empty()) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the embedded agent of an HTTPS server stored nothing in 30 s: {hosts}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The error `Application::build` stops with for these settings.
async fn build_error(configure: impl FnOnce(&mut Settings)) -> String {
    let data_dir = tempfile::tempdir().unwrap();
    let mut settings = Settings::with_data_dir(data_dir.path());
    settings.listen = "127.0.0.1:0".parse().unwrap();
    configure(&mut settings);
    match Application::build(settings).await {
        Ok(_) => panic!("the server started"),
        Err(e) => format!("{e:#}"),
    }
}

#[tokio::test]
async fn certificate_settings_that_are_wrong_stop_the_server_saying_what_is_wrong() {
    let pki = Pki::new();
    let garbage = pki.path("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").unwrap();
    let damaged = pki.path("damaged.pem");
    std::fs::write(
        &damaged,
        "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let missing = pki.path("missing.pem");
    let file = |path: &Path| Some(path.to_owned());
    let cases: Vec<(Option<PathBuf>, Option<PathBuf>, String)> = vec![
        (
            file(&pki.path("server.pem")),
            None,
            "tls_cert is set but tls_key is not".to_owned(),
        ),
        (
            None,
            file(&pki.path("server.key")),
            "tls_key is set but tls_cert is not".to_owned(),
        ),
        (
            file(&missing),
            file(&pki.path("server.key")),
            format!(
                "cannot read the TLS certificate file {} (tls_cert)",
                missing.display()
            ),
        ),
        (
            file(&pki.path("server.pem")),
            file(&missing),
            format!(
                "cannot read the TLS key file {} (tls_key)",
                missing.display()
            ),
        ),
        (
            file(&garbage),
            file(&pki.path("server.key")),
            format!(
                "the TLS certificate file {} (tls_cert) holds no certificate",
                garbage.display()
            ),
        ),
        (
            file(&damaged),
            file(&pki.path("server.key")),
            format!(
                "the TLS certificate file {} (tls_cert) is not valid PEM: a block's base64 text is damaged",
                damaged.display()
            ),
        ),
        (
            file(&pki.path("server.pem")),
            file(&garbage),
            format!(
                "the TLS key file {} (tls_key) holds no private key",
                garbage.display()
            ),
        ),
        (
            // The key and certificate swapped.
            file(&pki.path("server.key")),
            file(&pki.path("server.pem")),
            "(tls_cert) holds no certificate".to_owned(),
        ),
        (
            file(&pki.path("server.pem")),
            file(&pki.path("other.key")),
            format!(
                "the private key in {} (tls_key) does not belong to the certificate in {} (tls_cert)",
                pki.path("other.key").display(),
                pki.path("server.pem").display()
            ),
        ),
    ];
    for (cert, key, expected) in cases {
        let error = build_error(|s| {
            s.tls_cert = cert.clone();
            s.tls_key = key.clone();
        })
        .await;
        assert!(
            error.contains(&expected),
            "{cert:?} {key:?}: expected {expected:?} in {error:?}"
        );
    }
}

#[test]
fn the_certificate_settings_come_from_flags_and_file_and_need_each_other() {
    use clap::Parser;
    use procmon_server::config::Cli;
    let cli = Cli::try_parse_from([
        "procmon-server",
        "--tls-cert",
        "c.pem",
        "--tls-key",
        "k.pem",
    ])
    .unwrap();
    let settings = Settings::from_cli(cli).unwrap();
    assert_eq!(settings.tls_cert, Some(PathBuf::from("c.pem")));
    assert_eq!(settings.tls_key, Some(PathBuf::from("k.pem")));

    let cli = Cli::try_parse_from(["procmon-server", "--tls-key", "k.pem"]).unwrap();
    let error = format!("{:#}", Settings::from_cli(cli).unwrap_err());
    assert!(
        error.contains("tls_key is set but tls_cert is not"),
        "{error}"
    );

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("procmon-server.toml");
    std::fs::write(&config, "tls_cert = \"c.pem\"\n").unwrap();
    let cli = Cli {
        config: Some(config),
        ..Cli::default()
    };
    let error = format!("{:#}", Settings::from_cli(cli).unwrap_err());
    assert!(
        error.contains("tls_cert is set but tls_key is not"),
        "{error}"
    );
}

#[tokio::test]
async fn a_plain_server_is_not_marked_tls() {
    let app = spawn_app_with(|_| {}).await;
    assert!(!app.state.tls);
    assert!(app.address.starts_with("http://"));
}
