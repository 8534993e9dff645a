//! Keeps secrets out of config errors.
//!
//! The toml crate's errors quote the offending source line and sometimes
//! the value itself (`unknown variant `hunter2``, `invalid type: string
//! "hunter2"`). A config holds inline secrets (`{ value = "…" }`, `password`,
//! `key`, webhook `secrets`, URLs with a password), and a refused config's
//! error lands in a terminal, a CI log or a pod's crash log. So:
//!
//! - when the file is valid TOML (a type, variant or unknown-key error),
//!   every value under a secret-bearing key, and the password of every URL,
//!   is replaced by `<redacted>` wherever it appears in the error, snippet
//!   included;
//! - when it is not valid TOML (a syntax error), the position and message
//!   are kept and the quoted source line is dropped: the secrets cannot be
//!   told apart in text that does not parse.

use std::ops::Range;

use toml_edit::{ImDocument, Item, Value};

/// What replaces a secret in an error.
pub const REDACTED: &str = "<redacted>";

/// Keys whose values (and everything below them) are secrets or hashes of
/// one.
const SECRET_KEYS: [&str; 10] = [
    "secret",
    "secrets",
    "signing_secrets",
    "approval_secret",
    "password",
    "token",
    "value",
    "key",
    "sha256",
    "bearer_sha256",
];

/// Whether a key names a secret: one of [`SECRET_KEYS`], or any key that
/// says so in its name (`client_secret`, `db_password`, `api_token`).
fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    SECRET_KEYS.contains(&k.as_str())
        || k.contains("secret")
        || k.contains("password")
        || k.contains("passwd")
        || k.ends_with("_token")
}

/// The text of a toml error on `text`, with every secret of `text`
/// replaced by [`REDACTED`].
pub fn toml_error(text: &str, error: &toml::de::Error) -> String {
    match ImDocument::parse(text) {
        Ok(doc) => {
            let mut secrets = Vec::new();
            collect_table(text, doc.as_table(), false, &mut secrets);
            scrub(&error.to_string(), &secrets)
        }
        Err(_) => {
            let position = error
                .span()
                .map(|span| {
                    let (line, column) = line_column(text, span);
                    format!(" at line {line}, column {column}")
                })
                .unwrap_or_default();
            format!("TOML parse error{position}: {}", error.message().trim_end())
        }
    }
}

/// Replaces every occurrence of each secret, longest first (so a secret
/// that contains another is replaced whole).
pub fn scrub(message: &str, secrets: &[String]) -> String {
    let mut sorted: Vec<&String> = secrets.iter().filter(|s| !s.trim().is_empty()).collect();
    sorted.sort_by_key(|s| std::cmp::Reverse(s.len()));
    sorted.dedup();
    let mut out = message.to_string();
    for s in sorted {
        out = out.replace(s.as_str(), REDACTED);
    }
    out
}

fn line_column(text: &str, span: Range<usize>) -> (usize, usize) {
    let start = span.start.min(text.len());
    let before = text.get(..start).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

fn collect_table(text: &str, table: &toml_edit::Table, secret: bool, out: &mut Vec<String>) {
    for (key, item) in table.iter() {
        collect_item(text, item, secret || is_secret_key(key), out);
    }
}

fn collect_item(text: &str, item: &Item, secret: bool, out: &mut Vec<String>) {
    match item {
        Item::None => {}
        Item::Value(v) => collect_value(text, v, secret, out),
        Item::Table(t) => collect_table(text, t, secret, out),
        Item::ArrayOfTables(a) => {
            for t in a.iter() {
                collect_table(text, t, secret, out);
            }
        }
    }
}

fn collect_value(text: &str, value: &Value, secret: bool, out: &mut Vec<String>) {
    match value {
        Value::Array(a) => {
            for v in a.iter() {
                collect_value(text, v, secret, out);
            }
        }
        Value::InlineTable(t) => {
            for (key, v) in t.iter() {
                collect_value(text, v, secret || is_secret_key(key), out);
            }
        }
        scalar => {
            let raw = scalar.span().and_then(|span| text.get(span));
            if secret {
                if let Value::String(s) = scalar {
                    out.push(s.value().clone());
                }
                if let Some(raw) = raw {
                    // A multi-line string shows in a snippet line by line.
                    out.extend(raw.lines().map(|l| l.trim().to_string()));
                    out.push(raw.to_string());
                }
            } else if let Value::String(s) = scalar {
                if let Some(password) = url_password(s.value()) {
                    out.push(password.to_string());
                    if let Some(decoded) = percent_decode(password) {
                        out.push(decoded);
                    }
                }
            }
        }
    }
}

/// The password of `scheme://user:password@host…`, if any.
pub fn url_password(url: &str) -> Option<&str> {
    let rest = &url[url.find("://")? + 3..];
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let userinfo = &authority[..authority.rfind('@')?];
    let (_, password) = userinfo.split_once(':')?;
    (!password.is_empty()).then_some(password)
}

/// Whether `url` carries `user@` or `user:password@`.
pub fn has_userinfo(url: &str) -> bool {
    let Some(start) = url.find("://").map(|i| i + 3) else {
        return false;
    };
    let rest = &url[start..];
    rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())].contains('@')
}

fn percent_decode(s: &str) -> Option<String> {
    if !s.contains('%') {
        return None;
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_of<T: serde::de::DeserializeOwned + std::fmt::Debug>(text: &str) -> String {
        let e = toml::from_str::<T>(text).expect_err("must be refused");
        toml_error(text, &e)
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Doc {
        approval_secret: Option<crate::config::secret::SecretSource>,
        port: Option<u16>,
    }

    #[test]
    fn an_unknown_variant_holding_the_secret_is_redacted() {
        let msg = error_of::<Doc>("approval_secret = \"hunter2-secret\"\n");
        assert!(!msg.contains("hunter2"), "{msg}");
        assert!(msg.contains(REDACTED), "{msg}");
        assert!(msg.contains("line 1"), "{msg}");
    }

    #[test]
    fn the_snippet_of_a_wrong_key_next_to_a_secret_is_redacted() {
        let msg = error_of::<Doc>("approval_secret = { valu = \"hunter2-secret\" }\n");
        assert!(!msg.contains("hunter2"), "{msg}");
        assert!(msg.contains("valu"), "{msg}");
    }

    #[test]
    fn a_secret_of_the_wrong_type_is_redacted() {
        let msg = error_of::<Doc>("approval_secret = { value = 424242424242 }\n");
        assert!(!msg.contains("424242424242"), "{msg}");
    }

    #[test]
    fn values_that_are_not_secrets_stay_visible() {
        let msg = error_of::<Doc>("port = \"eighty\"\n");
        assert!(msg.contains("eighty"), "{msg}");
    }

    #[test]
    fn a_syntax_error_drops_the_source_line() {
        let text = "approval_secret = { value = \"hunter2-secret }\n";
        let e = toml::from_str::<Doc>(text).expect_err("syntax");
        let msg = toml_error(text, &e);
        assert!(!msg.contains("hunter2"), "{msg}");
        assert!(msg.contains("line 1"), "{msg}");
    }

    #[test]
    fn url_passwords_are_found() {
        assert_eq!(url_password("amqp://u:p%40ss@h/"), Some("p%40ss"));
        assert_eq!(url_password("https://h/x?a=b@c"), None);
        assert_eq!(url_password("https://u@h/"), None);
        assert!(has_userinfo("https://u@h/"));
        assert!(!has_userinfo("https://h/a@b"));
        assert_eq!(percent_decode("p%40ss").as_deref(), Some("p@ss"));
    }
}
