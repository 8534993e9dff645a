//! The TLS trust of one firewall: a CA file (the firewall's certificate
//! chains to it and names the host), or a pinned certificate (its SHA-256
//! fingerprint; firewalls often present a self-signed certificate for an
//! address, so the pin replaces chain and name checks), or the public roots.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha2::{Digest, Sha256};

use super::error::XmlApiError;

/// Parses a fingerprint as `openssl x509 -fingerprint -sha256` prints it
/// (`AB:CD:…`) or as plain hex.
pub fn parse_fingerprint(s: &str) -> Result<[u8; 32], XmlApiError> {
    let hex_only: String = s
        .trim()
        .trim_start_matches("sha256:")
        .chars()
        .filter(|c| *c != ':')
        .collect();
    let bytes = hex::decode(&hex_only)
        .map_err(|e| XmlApiError::Config(format!("pinned_sha256 `{s}` is not hex: {e}")))?;
    bytes.try_into().map_err(|b: Vec<u8>| {
        XmlApiError::Config(format!(
            "pinned_sha256 has {} bytes, a SHA-256 fingerprint has 32",
            b.len()
        ))
    })
}

/// SHA-256 of a DER certificate, as the pin compares it.
pub fn fingerprint(der: &[u8]) -> [u8; 32] {
    Sha256::digest(der).into()
}

#[derive(Debug)]
struct Pinned {
    pin: [u8; 32],
    provider: Arc<CryptoProvider>,
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
        if fingerprint(end_entity.as_ref()) == self.pin {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(
                "the firewall's certificate does not match the pinned SHA-256 fingerprint".into(),
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A client config trusting only `pin`.
pub fn pinned(pin: [u8; 32]) -> Result<rustls::ClientConfig, XmlApiError> {
    let provider = provider();
    Ok(
        rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| XmlApiError::Tls(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Pinned { pin, provider }))
            .with_no_client_auth(),
    )
}

/// A client config trusting the CAs of a PEM file.
pub fn ca_file(path: &Path) -> Result<rustls::ClientConfig, XmlApiError> {
    let pem = std::fs::read(path)
        .map_err(|e| XmlApiError::Config(format!("ca_file {}: {e}", path.display())))?;
    let mut roots = rustls::RootCertStore::empty();
    let mut count = 0;
    for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
        let cert =
            cert.map_err(|e| XmlApiError::Config(format!("ca_file {}: {e}", path.display())))?;
        roots
            .add(cert)
            .map_err(|e| XmlApiError::Config(format!("ca_file {}: {e}", path.display())))?;
        count += 1;
    }
    if count == 0 {
        return Err(XmlApiError::Config(format!(
            "ca_file {} holds no PEM certificate",
            path.display()
        )));
    }
    Ok(rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| XmlApiError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_parse_in_both_spellings() {
        let hex64 = "ab".repeat(32);
        let colons = vec!["AB"; 32].join(":");
        assert_eq!(parse_fingerprint(&hex64).ok(), Some([0xab; 32]));
        assert_eq!(parse_fingerprint(&colons).ok(), Some([0xab; 32]));
        assert!(parse_fingerprint("abcd").is_err());
        assert!(parse_fingerprint("zz").is_err());
    }
}
