//! Secrets in target configs: inline, from an environment variable or from a
//! file (a mounted Kubernetes Secret). Their `Debug` never shows the value.

use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;

use super::SoarError;

/// Where a secret comes from. In TOML: `"literal"`, `{ env = "NAME" }` or
/// `{ file = "/path" }`.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum SecretSource {
    /// The value itself, in the config file. Fine for tests; prefer `env` or
    /// `file` in production so the config can be shared.
    Inline(String),
    /// An environment variable holding the value.
    Env { env: String },
    /// A file holding the value; one trailing newline is dropped.
    File { file: PathBuf },
}

impl fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretSource::Inline(_) => f.write_str("Inline([redacted])"),
            SecretSource::Env { env } => write!(f, "Env({env})"),
            SecretSource::File { file } => write!(f, "File({})", file.display()),
        }
    }
}

impl SecretSource {
    /// Reads the secret now (at target build time, so a missing one is a
    /// start-up error, not a delivery failure hours later).
    pub fn load(&self) -> Result<Secret, SoarError> {
        let value = match self {
            SecretSource::Inline(v) => v.clone(),
            SecretSource::Env { env } => std::env::var(env).map_err(|_| SoarError::Secret {
                source_kind: "env",
                message: format!("environment variable {env} is not set or not UTF-8"),
            })?,
            SecretSource::File { file } => {
                let mut v = std::fs::read_to_string(file).map_err(|e| SoarError::Secret {
                    source_kind: "file",
                    message: format!("{}: {e}", file.display()),
                })?;
                if v.ends_with('\n') {
                    v.pop();
                    if v.ends_with('\r') {
                        v.pop();
                    }
                }
                v
            }
        };
        if value.is_empty() {
            return Err(SoarError::Secret {
                source_kind: self.kind(),
                message: "the secret is empty".into(),
            });
        }
        Ok(Secret(value))
    }

    fn kind(&self) -> &'static str {
        match self {
            SecretSource::Inline(_) => "inline",
            SecretSource::Env { .. } => "env",
            SecretSource::File { .. } => "file",
        }
    }
}

/// A loaded secret. Never printed: `Debug` and `Display` show `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value, for building a header. Keep it out of logs.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?} {s}"), "[redacted] [redacted]");
        let src = SecretSource::Inline("hunter2".into());
        assert!(!format!("{src:?}").contains("hunter2"));
    }

    #[test]
    fn loads_from_a_file_without_the_trailing_newline() {
        let dir = std::env::temp_dir().join(format!("riposte-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("token");
        std::fs::write(&path, "abc\n").expect("write");
        let s = SecretSource::File { file: path.clone() }
            .load()
            .expect("load");
        assert_eq!(s.expose(), "abc");
        std::fs::write(&path, "").expect("write");
        assert!(SecretSource::File { file: path }.load().is_err());
        let missing = SecretSource::Env {
            env: "RIPOSTE_TEST_SURELY_UNSET_VARIABLE".into(),
        };
        assert!(missing.load().is_err());
    }

    #[test]
    fn toml_shapes() {
        #[derive(Deserialize)]
        struct T {
            a: SecretSource,
            b: SecretSource,
            c: SecretSource,
        }
        let t: T = toml_like(r#"{"a":"x","b":{"env":"E"},"c":{"file":"/f"}}"#);
        assert_eq!(t.a, SecretSource::Inline("x".into()));
        assert_eq!(t.b, SecretSource::Env { env: "E".into() });
        assert_eq!(t.c, SecretSource::File { file: "/f".into() });
    }

    fn toml_like<T: serde::de::DeserializeOwned>(json: &str) -> T {
        serde_json::from_str(json).expect("parse")
    }
}
