//! HTTPS: reading the certificate chain and key the server presents, and
//! telling a TLS client from a plain-HTTP one on the same port.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use tokio_rustls::rustls::pki_types::pem::{self, PemObject};
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, ServerConfig};
use tokio_rustls::TlsAcceptor;

/// The first byte of every TLS connection: the content type of the record
/// that carries the ClientHello (22, "handshake"). A plain HTTP request
/// starts with a method's letter instead.
pub const HANDSHAKE_RECORD: u8 = 0x16;

/// What the server needs to speak HTTPS.
#[derive(Clone)]
pub struct ServerTls {
    /// Does the handshakes.
    pub acceptor: TlsAcceptor,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls").finish_non_exhaustive()
    }
}

/// The certificate and key files as given, if HTTPS is on: both or neither,
/// else an error naming the one that is missing.
pub fn files<'a>(
    cert: Option<&'a Path>,
    key: Option<&'a Path>,
) -> anyhow::Result<Option<(&'a Path, &'a Path)>> {
    match (cert, key) {
        (Some(cert), Some(key)) => Ok(Some((cert, key))),
        (None, None) => Ok(None),
        (Some(_), None) => anyhow::bail!(
            "tls_cert is set but tls_key is not: HTTPS needs both the certificate chain \
             (tls_cert) and its private key (tls_key), as PEM files"
        ),
        (None, Some(_)) => anyhow::bail!(
            "tls_key is set but tls_cert is not: HTTPS needs both the certificate chain \
             (tls_cert) and its private key (tls_key), as PEM files"
        ),
    }
}

/// Reads the certificate chain (server certificate first, then any
/// intermediates) and its private key, both PEM, and checks that they
/// belong together. Errors name the file and what is wrong with it.
pub fn load(cert_path: &Path, key_path: &Path) -> anyhow::Result<ServerTls> {
    let chain = read_chain(cert_path)?;
    let key = read_key(key_path)?;
    // ring, as the agent's TLS uses, so one crypto library builds everywhere;
    // named here rather than left to a process-wide default.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS: the ring provider has no safe protocol version")?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => anyhow::anyhow!(
                "the private key in {} (tls_key) does not belong to the certificate in {} \
                 (tls_cert)",
                key_path.display(),
                cert_path.display()
            ),
            rustls::Error::InvalidCertificate(why) => anyhow::anyhow!(
                "the first certificate in {} (tls_cert) cannot be read: {why:?}",
                cert_path.display()
            ),
            other => anyhow::anyhow!(
                "the certificate {} and key {} cannot be used: {other}",
                cert_path.display(),
                key_path.display()
            ),
        })?;
    // The accept loop serves HTTP/1.1 only.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(ServerTls {
        acceptor: TlsAcceptor::from(Arc::new(config)),
    })
}

fn read_chain(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let what = "TLS certificate file";
    let bytes = read(path, what, "tls_cert")?;
    let chain = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| not_pem(path, what, "tls_cert", &e))?;
    anyhow::ensure!(
        !chain.is_empty(),
        "the {what} {} (tls_cert) holds no certificate: expected PEM blocks \
         \"-----BEGIN CERTIFICATE-----\", the server's certificate first",
        path.display()
    );
    Ok(chain)
}

fn read_key(path: &Path) -> anyhow::Result<PrivateKeyDer<'static>> {
    let what = "TLS key file";
    let bytes = read(path, what, "tls_key")?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| match e {
        pem::Error::NoItemsFound => anyhow::anyhow!(
            "the {what} {} (tls_key) holds no private key: expected a PEM block \
             \"-----BEGIN PRIVATE KEY-----\" (or RSA or EC PRIVATE KEY), unencrypted",
            path.display()
        ),
        e => not_pem(path, what, "tls_key", &e),
    })
}

fn read(path: &Path, what: &str, key: &str) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path)
        .with_context(|| format!("cannot read the {what} {} ({key})", path.display()))
}

fn not_pem(path: &Path, what: &str, key: &str, error: &pem::Error) -> anyhow::Error {
    // pem's own messages print the offending lines as byte arrays.
    let why = match error {
        pem::Error::MissingSectionEnd { .. } => "a block has no \"-----END ...-----\" line".into(),
        pem::Error::IllegalSectionStart { .. } => "a \"-----BEGIN\" line is malformed".into(),
        pem::Error::Base64Decode(_) => "a block's base64 text is damaged".into(),
        other => other.to_string(),
    };
    anyhow::anyhow!(
        "the {what} {} ({key}) is not valid PEM: {why}",
        path.display()
    )
}
