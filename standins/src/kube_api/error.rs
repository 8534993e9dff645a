//! The stand-in's one error type.

use super::status::ApiError;

/// What can go wrong using the stand-in from a test.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request was refused the way a real API server refuses it.
    #[error("refused by the API server: {0}")]
    Api(#[from] ApiError),
    #[error("unknown resource type {0:?} (try a plural like \"pods\" or \"networkpolicies.crd.projectcalico.org\")")]
    UnknownKind(String),
    #[error("RBAC manifests: {0}")]
    Rbac(String),
    #[error("making certificates: {0}")]
    Cert(#[from] rcgen::Error),
    #[error("TLS setup: {0}")]
    Tls(#[from] tokio_rustls::rustls::Error),
    #[error("network: {0}")]
    Io(#[from] std::io::Error),
    #[error("kube client: {0}")]
    Kube(#[from] kube::Error),
    #[error("server URL: {0}")]
    Url(#[from] axum::http::uri::InvalidUri),
}
