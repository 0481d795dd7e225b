//! Which certificates the agent accepts from an https server, and what a
//! failed handshake means in words a person can act on.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};

/// The server certificates the agent accepts.
#[derive(Clone, Default)]
pub enum ServerTrust {
    /// Those issued by the public CAs that browsers trust (the webpki
    /// roots, built in).
    #[default]
    PublicCas,
    /// Those, and those issued by the CAs in a file (`ca_file`).
    CaFile(CaFile),
    /// Exactly this certificate (DER), whatever names it holds: for the
    /// server's own agent, which reaches it through loopback while the
    /// certificate names the server's public name.
    Pinned(Vec<u8>),
}

impl std::fmt::Debug for ServerTrust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::PublicCas => f.write_str("PublicCas"),
            Self::CaFile(file) => f.debug_tuple("CaFile").field(&file.path).finish(),
            Self::Pinned(der) => write!(f, "Pinned({} bytes)", der.len()),
        }
    }
}

/// The CA certificates of a PEM file, read and checked.
#[derive(Debug, Clone)]
pub struct CaFile {
    path: PathBuf,
    certificates: Vec<CertificateDer<'static>>,
}

impl CaFile {
    /// Reads every certificate of the PEM file at `path`; each must be
    /// usable as a CA. The error says what is wrong, for a person.
    pub fn read(path: &Path) -> Result<CaFile, String> {
        let bytes = std::fs::read(path).map_err(|e| format!("cannot read it: {e}"))?;
        let certificates = CertificateDer::pem_slice_iter(&bytes)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| {
                // pem's own messages print the offending lines as byte arrays.
                let why = match e {
                    pem::Error::MissingSectionEnd { .. } => {
                        "a block has no \"-----END ...-----\" line".to_owned()
                    }
                    pem::Error::IllegalSectionStart { .. } => {
                        "a \"-----BEGIN\" line is malformed".to_owned()
                    }
                    pem::Error::Base64Decode(_) => "a block's base64 text is damaged".to_owned(),
                    other => other.to_string(),
                };
                format!("it is not valid PEM: {why}")
            })?;
        if certificates.is_empty() {
            return Err("it holds no certificate: expected PEM blocks \
                        \"-----BEGIN CERTIFICATE-----\""
                .to_owned());
        }
        // What reqwest does with them later, done now so that a bad one is
        // named at start, with its file.
        let mut roots = rustls::RootCertStore::empty();
        for (n, certificate) in certificates.iter().enumerate() {
            roots.add(certificate.clone()).map_err(|e| {
                format!(
                    "certificate {} of {} in it cannot be used as a CA: {e}",
                    n + 1,
                    certificates.len()
                )
            })?;
        }
        Ok(CaFile {
            path: path.to_owned(),
            certificates,
        })
    }

    /// The file the certificates came from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The certificates, DER.
    pub fn certificates(&self) -> &[CertificateDer<'static>] {
        &self.certificates
    }
}

/// A TLS client config that accepts only the certificate `pinned` (DER),
/// checking that the server holds its key, for [`ServerTrust::Pinned`].
pub(crate) fn pinned_config(pinned: &[u8]) -> Result<rustls::ClientConfig, rustls::Error> {
    // ring, as reqwest's own rustls uses.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Pinned {
        certificate: CertificateDer::from(pinned.to_vec()),
        algorithms: provider.signature_verification_algorithms,
    };
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

#[derive(Debug)]
struct Pinned {
    certificate: CertificateDer<'static>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.certificate.as_ref() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    // The signatures prove that the server holds the pinned certificate's
    // key; without them anyone could replay the certificate.
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The rustls error somewhere down `error`'s causes. TLS errors reach
/// reqwest inside an `io::Error` (sometimes inside another), whose
/// `source()` skips the error it wraps, so each `io::Error` is opened too.
pub(crate) fn tls_error<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a rustls::Error> {
    let mut current = Some(error);
    while let Some(e) = current {
        let mut inner = e;
        loop {
            if let Some(tls) = inner.downcast_ref::<rustls::Error>() {
                return Some(tls);
            }
            match inner
                .downcast_ref::<std::io::Error>()
                .and_then(std::io::Error::get_ref)
            {
                Some(wrapped) => inner = wrapped,
                None => break,
            }
        }
        current = e.source();
    }
    None
}
