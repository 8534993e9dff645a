//! The TLS side of syslog over TLS (RFC 5425): certificates and, when
//! configured, client-certificate verification.

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

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, EngineError> {
    let file =
        File::open(path).map_err(|e| EngineError::Tls(format!("{}: {e}", path.display())))?;
    let certs = rustls_pemfile::certs(&mut BufReader::new(file))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| EngineError::Tls(format!("{}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(EngineError::Tls(format!(
            "{}: no PEM certificate found",
            path.display()
        )));
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, EngineError> {
    let file =
        File::open(path).map_err(|e| EngineError::Tls(format!("{}: {e}", path.display())))?;
    rustls_pemfile::private_key(&mut BufReader::new(file))
        .map_err(|e| EngineError::Tls(format!("{}: {e}", path.display())))?
        .ok_or_else(|| EngineError::Tls(format!("{}: no PEM private key found", path.display())))
}

/// Builds the acceptor from the `[syslog.tls]` settings.
pub fn acceptor(config: &TlsConfig) -> Result<TlsAcceptor, EngineError> {
    let (Some(cert), Some(key)) = (&config.cert_file, &config.key_file) else {
        return Err(EngineError::Tls(
            "cert_file and key_file are required".into(),
        ));
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| EngineError::Tls(e.to_string()))?;
    let builder = match &config.client_ca_file {
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for c in read_certs(ca)? {
                roots
                    .add(c)
                    .map_err(|e| EngineError::Tls(format!("{}: {e}", ca.display())))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| EngineError::Tls(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let server = builder
        .with_single_cert(read_certs(cert)?, read_key(key)?)
        .map_err(|e| EngineError::Tls(format!("certificate and key: {e}")))?;
    Ok(TlsAcceptor::from(Arc::new(server)))
}
