//! Secrets from the config: inline, from the environment or from a file,
//! and a holder whose `Debug` never shows them.

use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;

/// Secret bytes. `Debug` prints `Secret(<redacted>)`, so a secret inside a
/// config or state struct never reaches a log line.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl Secret {
    pub fn new(bytes: Vec<u8>) -> Secret {
        Secret(bytes)
    }

    /// A fresh random 32-byte secret.
    pub fn random() -> Secret {
        let bytes: [u8; 32] = rand::random();
        Secret(bytes.to_vec())
    }

    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Where a configured secret comes from: `{ value = "…" }`,
/// `{ env = "VAR" }` or `{ file = "/run/secrets/x" }` (trailing newline
/// trimmed).
#[derive(Clone, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum SecretSource {
    Value(String),
    Env(String),
    File(PathBuf),
}

impl fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretSource::Value(_) => f.write_str("Value(<redacted>)"),
            SecretSource::Env(var) => write!(f, "Env({var:?})"),
            SecretSource::File(path) => write!(f, "File({path:?})"),
        }
    }
}

/// Why a configured secret could not be read. The text names where it was
/// looked for, never what it holds.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("environment variable {var}: {source}")]
    Env {
        var: String,
        source: std::env::VarError,
    },
    #[error("{}: {source}", path.display())]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the secret is empty")]
    Empty,
}

impl SecretSource {
    /// Reads the secret.
    pub fn load(&self) -> Result<String, SecretError> {
        let text = match self {
            SecretSource::Value(v) => v.clone(),
            SecretSource::Env(var) => std::env::var(var).map_err(|source| SecretError::Env {
                var: var.clone(),
                source,
            })?,
            SecretSource::File(path) => std::fs::read_to_string(path)
                .map_err(|source| SecretError::File {
                    path: path.clone(),
                    source,
                })?
                .trim_end_matches(['\r', '\n'])
                .to_owned(),
        };
        if text.is_empty() {
            return Err(SecretError::Empty);
        }
        Ok(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_secret() {
        let s = Secret::new(b"hunter2".to_vec());
        assert!(!format!("{s:?}").contains("hunter2"));
        let src = SecretSource::Value("hunter2".into());
        assert!(!format!("{src:?}").contains("hunter2"));
    }

    #[test]
    fn sources_load() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("s");
        std::fs::write(&path, "abc\n").expect("write");
        assert_eq!(SecretSource::File(path).load().ok(), Some("abc".into()));
        assert_eq!(
            SecretSource::Value("x".into()).load().ok(),
            Some("x".into())
        );
        assert!(SecretSource::Env("RIPOSTE_TEST_NO_SUCH_VAR".into())
            .load()
            .is_err());
        assert!(SecretSource::Value(String::new()).load().is_err());
    }
}
