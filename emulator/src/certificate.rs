//! The emulator's TLS certificate: made at start (self-signed, for `localhost`, `127.0.0.1`,
//! `::1` and the names it is told), because the Voice SDK only ever opens `wss://…/signal`
//! (twilio-voice.js `lib/twilio/regions.ts`, `createSignalingEndpointURL`). A test browser
//! trusts it by its public key's hash (Chromium's `--ignore-certificate-errors-spki-list`) or
//! by importing the PEM.
//!
//! rcgen and rustls on aws-lc-rs: the SDK's default reqwest already builds both rustls and
//! aws-lc-rs, so TLS here compiles nothing new in C.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rcgen::{CertificateParams, KeyPair, PublicKeyData};
use sha2::{Digest, Sha256};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A certificate and the acceptor that serves it.
pub(crate) struct Certificate {
    pub pem: String,
    /// base64 of the SHA-256 of the SubjectPublicKeyInfo (Chromium's SPKI list format).
    pub spki_sha256: String,
    /// The certificate's SHA-256 as SDP writes a DTLS fingerprint (`AB:CD:…`).
    pub fingerprint: String,
    pub acceptor: TlsAcceptor,
}

impl Certificate {
    /// A fresh self-signed certificate for loopback and `names`.
    pub fn generate(names: &[String]) -> std::io::Result<Certificate> {
        let other = |e: String| std::io::Error::other(e);
        let mut subject: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
        subject.extend(names.iter().cloned());
        let key = KeyPair::generate().map_err(|e| other(e.to_string()))?;
        let cert = CertificateParams::new(subject)
            .and_then(|p| p.self_signed(&key))
            .map_err(|e| other(e.to_string()))?;
        let der = cert.der().to_vec();
        let fingerprint = Sha256::digest(&der)
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":");
        let spki_sha256 = STANDARD.encode(Sha256::digest(key.subject_public_key_info()));
        // The provider named, not the process default: with the SDK's `rustls-ring` feature
        // both providers are compiled and rustls would refuse to guess.
        let provider = Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider());
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| other(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from(der)],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )
            .map_err(|e| other(e.to_string()))?;
        Ok(Certificate {
            pem: cert.pem(),
            spki_sha256,
            fingerprint,
            acceptor: TlsAcceptor::from(Arc::new(config)),
        })
    }
}
