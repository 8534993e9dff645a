//! The engine's one error type, and how the command line prints a chain.

use std::path::PathBuf;

use thiserror::Error;

use crate::decide::playbook::PlaybookError;

#[derive(Debug, Error)]
pub enum EngineError {
    #[error("cannot read config {path}: {source}")]
    ConfigRead {
        path: PathBuf,
        source: std::io::Error,
    },
    // `message` is toml's report redacted of inline secrets
    // (`config::redact::toml_error`): the parser's own error would show them.
    #[error("config {path}: {message}")]
    ConfigParse { path: PathBuf, message: String },
    #[error("config key `{key}`: {message}")]
    ConfigInvalid { key: String, message: String },
    /// `key` refused by the check that owns it; that check's own error
    /// stays whole as the source.
    #[error("config key `{key}`: {source}")]
    ConfigRejected {
        key: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("cannot listen on {what} {addr}: {source}")]
    Bind {
        what: &'static str,
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("TLS setup: {0}")]
    Tls(#[source] tokio_rustls::rustls::Error),
    #[error("data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The playbook directory could not be loaded. The key is the one a
    /// user fixes; the [`PlaybookError`] stays whole for callers that look
    /// at the file or the place in it.
    #[error("config key `playbooks.dir`: {0}")]
    Playbooks(#[from] PlaybookError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl EngineError {
    /// `key` refused, in words.
    pub fn invalid(key: impl Into<String>, message: impl Into<String>) -> EngineError {
        EngineError::ConfigInvalid {
            key: key.into(),
            message: message.into(),
        }
    }

    /// For `map_err`: `key` refused by a check with an error of its own.
    pub fn rejected<E>(key: impl Into<String>) -> impl FnOnce(E) -> EngineError
    where
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let key = key.into();
        move |e| EngineError::ConfigRejected {
            key,
            source: e.into(),
        }
    }
}

/// `error` and its sources on one line, `: ` between them. A source whose
/// text the line already holds is left out: the engine's errors show their
/// source in their own text, and the source is still there for a caller
/// that walks the chain.
pub fn report(error: &(dyn std::error::Error + 'static)) -> String {
    let mut line = error.to_string();
    let mut next = error.source();
    while let Some(source) = next {
        let text = source.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        next = source.source();
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_shown_in_its_error_is_not_repeated() {
        let e = EngineError::ConfigRead {
            path: "/x.toml".into(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "gone"),
        };
        assert_eq!(report(&e), "cannot read config /x.toml: gone");
        let dir = PlaybookError::Dir {
            path: "/p".into(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "gone"),
        };
        let e = EngineError::from(dir);
        assert_eq!(
            report(&e),
            "config key `playbooks.dir`: playbook directory /p: gone"
        );
        assert!(matches!(
            std::error::Error::source(&e).and_then(|s| s.downcast_ref::<PlaybookError>()),
            Some(PlaybookError::Dir { .. })
        ));
    }
}
