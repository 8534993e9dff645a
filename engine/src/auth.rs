//! Authentication of inbound API calls: bearer tokens with scopes.
//!
//! Only SHA-256 hashes of tokens are configured, and a presented token is
//! hashed and compared against every configured hash in constant time, so
//! neither the config file nor timing reveals a token.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Read decisions, quarantines, audit.
    Read,
    /// Request actions.
    Act,
    /// Reload playbooks, replay the outbox, change settings.
    Admin,
    /// Send logs to `/v1/ingest`.
    Ingest,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Act => "act",
            Scope::Admin => "admin",
            Scope::Ingest => "ingest",
        }
    }
}

/// One configured API token.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// Who holds the token; appears in logs and metrics instead of the token.
    pub name: String,
    /// Hex SHA-256 of the token (`riposte hash-token` prints it).
    pub sha256: String,
    pub scopes: Vec<Scope>,
}

/// Why a configured token is refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenConfigError {
    #[error("name must not be empty")]
    NoName,
    #[error("token `{0}`: sha256 must be 64 hex digits (the hash, never the token)")]
    NotAHash(String),
    #[error("token `{0}`: scopes must not be empty")]
    NoScopes(String),
}

impl TokenConfig {
    pub fn validate(&self) -> Result<(), TokenConfigError> {
        if self.name.is_empty() {
            return Err(TokenConfigError::NoName);
        }
        if decode_hash(&self.sha256).is_none() {
            return Err(TokenConfigError::NotAHash(self.name.clone()));
        }
        if self.scopes.is_empty() {
            return Err(TokenConfigError::NoScopes(self.name.clone()));
        }
        Ok(())
    }
}

fn decode_hash(hex: &str) -> Option<[u8; 32]> {
    let hex = hex.trim();
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in hex.as_bytes().chunks(2).enumerate() {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        out[i] = (hi * 16 + lo) as u8;
    }
    Some(out)
}

/// Hex SHA-256 of a token, as configured.
pub fn hash_token(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The identity behind an accepted token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub name: String,
    pub scopes: Vec<Scope>,
}

/// Why a request was not let in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthError {
    /// No credentials, or ones that match no token: 401.
    Unauthenticated,
    /// A valid token without the needed scope: 403.
    Forbidden,
}

/// The configured tokens, decoded once.
#[derive(Debug, Clone, Default)]
pub struct TokenSet {
    tokens: Vec<(String, [u8; 32], Vec<Scope>)>,
}

impl TokenSet {
    pub fn new(configs: &[TokenConfig]) -> TokenSet {
        TokenSet {
            tokens: configs
                .iter()
                .filter_map(|c| Some((c.name.clone(), decode_hash(&c.sha256)?, c.scopes.clone())))
                .collect(),
        }
    }

    /// Checks an `Authorization` header value for a token with `scope`.
    pub fn authorize(&self, header: Option<&str>, scope: Scope) -> Result<Principal, AuthError> {
        let token = header
            .and_then(|h| {
                let (scheme, rest) = h.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then_some(rest.trim())
            })
            .filter(|t| !t.is_empty())
            .ok_or(AuthError::Unauthenticated)?;
        let presented: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        // Compare against every token, without stopping early, so the time
        // taken does not tell which (or whether one) matched.
        let mut found: Option<&(String, [u8; 32], Vec<Scope>)> = None;
        for entry in &self.tokens {
            if bool::from(entry.1.ct_eq(&presented)) {
                found = Some(entry);
            }
        }
        let (name, _, scopes) = found.ok_or(AuthError::Unauthenticated)?;
        if !scopes.contains(&scope) {
            return Err(AuthError::Forbidden);
        }
        Ok(Principal {
            name: name.clone(),
            scopes: scopes.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set() -> TokenSet {
        TokenSet::new(&[TokenConfig {
            name: "fw".into(),
            sha256: hash_token("s3cret"),
            scopes: vec![Scope::Ingest],
        }])
    }

    #[test]
    fn right_token_and_scope_is_let_in() {
        let p = set()
            .authorize(Some("Bearer s3cret"), Scope::Ingest)
            .expect("authorized");
        assert_eq!(p.name, "fw");
    }

    #[test]
    fn wrong_or_missing_token_is_unauthenticated() {
        let s = set();
        assert_eq!(
            s.authorize(None, Scope::Ingest),
            Err(AuthError::Unauthenticated)
        );
        assert_eq!(
            s.authorize(Some("Bearer nope"), Scope::Ingest),
            Err(AuthError::Unauthenticated)
        );
        assert_eq!(
            s.authorize(Some("Basic s3cret"), Scope::Ingest),
            Err(AuthError::Unauthenticated)
        );
        assert_eq!(
            s.authorize(Some("Bearer "), Scope::Ingest),
            Err(AuthError::Unauthenticated)
        );
    }

    #[test]
    fn token_without_scope_is_forbidden() {
        assert_eq!(
            set().authorize(Some("bearer s3cret"), Scope::Admin),
            Err(AuthError::Forbidden)
        );
    }

    #[test]
    fn config_must_hold_a_hash_not_a_token() {
        let bad = TokenConfig {
            name: "x".into(),
            sha256: "s3cret".into(),
            scopes: vec![Scope::Read],
        };
        assert!(bad.validate().is_err());
    }
}
