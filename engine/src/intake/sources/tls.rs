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

/// Why a PEM file is refused.
#[derive(Debug, thiserror::Error)]
pub enum PemError {
    #[error("{}: {source}", path.display())]
    Read {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("{}: no PEM {what} found", path.display())]
    Empty {
        path: std::path::PathBuf,
        what: &'static str,
    },
}

fn pem_reader(path: &Path) -> Result<BufReader<File>, PemError> {
    File::open(path)
        .map(BufReader::new)
        .map_err(|source| PemError::Read {
            path: path.to_path_buf(),
            source,
        })
}

/// The certificates in the PEM file `path`: at least one.
pub fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, PemError> {
    let certs = rustls_pemfile::certs(&mut pem_reader(path)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| PemError::Read {
            path: path.to_path_buf(),
            source,
        })?;
    if certs.is_empty() {
        return Err(PemError::Empty {
            path: path.to_path_buf(),
            what: "certificate",
        });
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, PemError> {
    rustls_pemfile::private_key(&mut pem_reader(path)?)
        .map_err(|source| PemError::Read {
            path: path.to_path_buf(),
            source,
        })?
        .ok_or_else(|| PemError::Empty {
            path: path.to_path_buf(),
            what: "private key",
        })
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
        return Err(EngineError::invalid(
            keys.cert,
            "a certificate and a key are both required",
        ));
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(EngineError::Tls)?;
    let builder = match &config.client_ca_file {
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for c in read_certs(ca).map_err(EngineError::rejected(keys.client_ca))? {
                roots.add(c).map_err(|e| {
                    EngineError::invalid(keys.client_ca, format!("{}: {e}", ca.display()))
                })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| {
                    EngineError::invalid(keys.client_ca, format!("{}: {e}", ca.display()))
                })?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let server = builder
        .with_single_cert(
            read_certs(cert).map_err(EngineError::rejected(keys.cert))?,
            read_key(key).map_err(EngineError::rejected(keys.key))?,
        )
        .map_err(|e| {
            EngineError::invalid(keys.key, format!("certificate and key do not match: {e}"))
        })?;
    Ok(TlsAcceptor::from(Arc::new(server)))
}
