//! The TLS side of syslog over TLS (RFC 5425) and of the HTTPS API:
//! certificates and, when configured, client-certificate verification.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::sync::Arc;

use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{self, RootCertStore, ServerConfig};
use tokio_rustls::TlsAcceptor;

use crate::config::TlsConfig;
use crate::error::EngineError;

/// The config keys naming each file, so a refusal says which key to fix.
#[derive(Debug, Clone, Copy)]
pub struct TlsKeys {
    pub cert: &'static str,
    pub key: &'static str,
    pub client_ca: &'static str,
}

/// `[syslog.tls]`.
pub const SYSLOG_KEYS: TlsKeys = TlsKeys {
    cert: "syslog.tls.cert_file",
    key: "syslog.tls.key_file",
    client_ca: "syslog.tls.client_ca_file",
};

/// `[http]`.
pub const HTTP_KEYS: TlsKeys = TlsKeys {
    cert: "http.tls_cert_file",
    key: "http.tls_key_file",
    client_ca: "http.tls_client_ca_file",
};

fn invalid(key: &str, message: String) -> EngineError {
    EngineError::ConfigInvalid {
        key: key.to_string(),
        message,
    }
}

fn read_certs(key: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, EngineError> {
    let file = File::open(path).map_err(|e| invalid(key, format!("{}: {e}", path.display())))?;
    let certs = rustls_pemfile::certs(&mut BufReader::new(file))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(key, format!("{}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(invalid(
            key,
            format!("{}: no PEM certificate found", path.display()),
        ));
    }
    Ok(certs)
}

fn read_key(key: &str, path: &Path) -> Result<PrivateKeyDer<'static>, EngineError> {
    let file = File::open(path).map_err(|e| invalid(key, format!("{}: {e}", path.display())))?;
    rustls_pemfile::private_key(&mut BufReader::new(file))
        .map_err(|e| invalid(key, format!("{}: {e}", path.display())))?
        .ok_or_else(|| invalid(key, format!("{}: no PEM private key found", path.display())))
}

/// Builds the acceptor from the `[syslog.tls]` settings.
pub fn acceptor(config: &TlsConfig) -> Result<TlsAcceptor, EngineError> {
    acceptor_for(config, SYSLOG_KEYS)
}

/// Builds an acceptor; refusals name the key in `keys` of the file at
/// fault. Every file is parsed and the key checked against the
/// certificate, so garbage fails here rather than at the first handshake.
pub fn acceptor_for(config: &TlsConfig, keys: TlsKeys) -> Result<TlsAcceptor, EngineError> {
    let (Some(cert), Some(key)) = (&config.cert_file, &config.key_file) else {
        return Err(invalid(
            keys.cert,
            "a certificate and a key are both required".into(),
        ));
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(EngineError::Tls)?;
    let builder = match &config.client_ca_file {
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for c in read_certs(keys.client_ca, ca)? {
                roots
                    .add(c)
                    .map_err(|e| invalid(keys.client_ca, format!("{}: {e}", ca.display())))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| invalid(keys.client_ca, format!("{}: {e}", ca.display())))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let server = builder
        .with_single_cert(read_certs(keys.cert, cert)?, read_key(keys.key, key)?)
        .map_err(|e| invalid(keys.key, format!("certificate and key do not match: {e}")))?;
    Ok(TlsAcceptor::from(Arc::new(server)))
}
