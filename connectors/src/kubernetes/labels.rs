//! Kubernetes name syntax, checked before a request leaves: a playbook's bad
//! label fails here with a message that names the key, instead of as a 422
//! from the API server after a round trip.
//!
//! The rules are apimachinery's: qualified names for label and annotation
//! keys, label values of at most 63 characters, DNS-1123 labels for
//! namespaces and subdomains for object names.

use std::collections::BTreeMap;

use crate::kubernetes::error::{KubeError, Result};

/// Annotations of one object may not exceed this many bytes in total.
pub const MAX_ANNOTATIONS_BYTES: usize = 256 * 1024;

const MAX_NAME_PART: usize = 63;
const MAX_SUBDOMAIN: usize = 253;

/// `[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?`, the name part of a qualified
/// name and the shape of a non-empty label value.
fn is_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(f), Some(l)) if f.is_ascii_alphanumeric() && l.is_ascii_alphanumeric() => b
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.')),
        _ => false,
    }
}

/// A DNS-1123 label: lower-case alphanumerics and '-', at most 63 long.
pub fn is_dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_NAME_PART
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

/// A DNS-1123 subdomain: dot-separated DNS labels, at most 253 long.
pub fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_SUBDOMAIN && s.split('.').all(is_dns_label_loose)
}

/// Subdomain parts follow the label rule except the 63-character limit,
/// which apimachinery only enforces on the whole.
fn is_dns_label_loose(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

/// A qualified name's name part, and the shape of a non-empty label value:
/// at most 63 of `[A-Za-z0-9_.-]`, starting and ending alphanumeric.
pub fn is_qualified_name(s: &str) -> bool {
    s.len() <= MAX_NAME_PART && is_name_part(s)
}

/// Checks a label or annotation key: `[prefix/]name`.
pub fn validate_key(what: &'static str, key: &str) -> Result<()> {
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix {
        if !is_dns_subdomain(p) {
            return Err(KubeError::invalid(
                what,
                format!("key {key:?}: the prefix must be a DNS subdomain (lower case, digits, '-', '.'; at most 253 characters)"),
            ));
        }
    }
    if !is_qualified_name(name) {
        return Err(KubeError::invalid(
            what,
            format!("key {key:?}: the name must be 1-63 characters of letters, digits, '-', '_', '.', starting and ending with a letter or digit"),
        ));
    }
    Ok(())
}

/// Checks a label value: empty, or at most 63 characters of the name shape.
pub fn validate_label_value(key: &str, value: &str) -> Result<()> {
    if value.is_empty() || is_qualified_name(value) {
        Ok(())
    } else {
        Err(KubeError::invalid(
            "label",
            format!("value {value:?} of {key:?}: at most 63 characters of letters, digits, '-', '_', '.', starting and ending with a letter or digit"),
        ))
    }
}

/// Checks a set of label changes (a `None` value removes the label).
pub fn validate_labels(labels: &BTreeMap<String, Option<String>>) -> Result<()> {
    for (k, v) in labels {
        validate_key("label", k)?;
        if let Some(v) = v {
            validate_label_value(k, v)?;
        }
    }
    Ok(())
}

/// Checks a set of annotation changes: keys like labels, values free, the
/// total within the API server's limit.
pub fn validate_annotations(annotations: &BTreeMap<String, Option<String>>) -> Result<()> {
    let mut total = 0usize;
    for (k, v) in annotations {
        validate_key("annotation", k)?;
        total += k.len() + v.as_ref().map_or(0, String::len);
    }
    if total > MAX_ANNOTATIONS_BYTES {
        return Err(KubeError::invalid(
            "annotation",
            format!("{total} bytes of annotations; Kubernetes allows at most {MAX_ANNOTATIONS_BYTES} per object"),
        ));
    }
    Ok(())
}

/// Checks a namespace name.
pub fn validate_namespace(ns: &str) -> Result<()> {
    if is_dns_label(ns) {
        Ok(())
    } else {
        Err(KubeError::invalid(
            "namespace",
            format!("{ns:?} is not a DNS-1123 label"),
        ))
    }
}

/// Checks an object name (pods, policies).
pub fn validate_object_name(what: &'static str, name: &str) -> Result<()> {
    if is_dns_subdomain(name) {
        Ok(())
    } else {
        Err(KubeError::invalid(
            what,
            format!("name {name:?} is not a DNS-1123 subdomain"),
        ))
    }
}

/// `k1=v1,k2=v2` for a list's `labelSelector`; keys and values are already
/// valid, so nothing needs escaping.
pub fn selector_string(labels: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    for (k, v) in labels {
        if !out.is_empty() {
            out.push(',');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    out
}

/// Whether `labels` carries every pair of `selector`.
pub fn matches(selector: &BTreeMap<String, String>, labels: &BTreeMap<String, String>) -> bool {
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(pairs: &[(&str, Option<&str>)]) -> BTreeMap<String, Option<String>> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.map(str::to_string)))
            .collect()
    }

    #[test]
    fn accepts_what_kubernetes_accepts() {
        for key in [
            "app",
            "app.kubernetes.io/name",
            "riposte.io/quarantine",
            "a",
            "A_b.c-D",
            "example.com/X",
        ] {
            assert!(validate_key("label", key).is_ok(), "{key}");
        }
        for value in ["", "true", "v1.2.3", "Abc_def-9"] {
            assert!(validate_label_value("k", value).is_ok(), "{value:?}");
        }
        assert!(validate_labels(&set(&[("team", Some("blue")), ("gone", None)])).is_ok());
    }

    #[test]
    fn rejects_keys_the_api_server_would_reject_and_names_them() {
        for key in [
            "",
            "/x",
            "x/",
            "-x",
            "x-",
            "Upper.Case/x",
            "a/b/c",
            "bad key",
            &"k".repeat(64),
            &format!("{}/x", "p".repeat(254)),
        ] {
            let err = validate_key("label", key).expect_err(key);
            assert!(!err.is_transient());
        }
        let err = validate_labels(&set(&[("team", Some("has space"))])).expect_err("space");
        assert!(err.to_string().contains("team"), "{err}");
        assert!(validate_label_value("k", &"v".repeat(64)).is_err());
        assert!(validate_label_value("k", "-v").is_err());
        assert!(validate_label_value("k", "v/").is_err());
    }

    #[test]
    fn annotation_values_are_free_but_bounded() {
        assert!(
            validate_annotations(&set(&[("note", Some("any text: with spaces / ünïcode"))]))
                .is_ok()
        );
        let big = "x".repeat(MAX_ANNOTATIONS_BYTES);
        assert!(validate_annotations(&set(&[("note", Some(&big))])).is_err());
        assert!(validate_annotations(&set(&[("bad key", Some("v"))])).is_err());
    }

    #[test]
    fn names() {
        assert!(validate_namespace("shop").is_ok());
        assert!(validate_namespace("Shop").is_err());
        assert!(validate_namespace("a.b").is_err());
        assert!(validate_object_name("pod", "checkout-7d9f.x").is_ok());
        assert!(validate_object_name("pod", "checkout_7d9f").is_err());
    }

    #[test]
    fn selectors() {
        let sel: BTreeMap<String, String> = [("app", "web"), ("tier", "front")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(selector_string(&sel), "app=web,tier=front");
        let mut labels = sel.clone();
        labels.insert("extra".into(), "1".into());
        assert!(matches(&sel, &labels));
        labels.insert("tier".into(), "back".into());
        assert!(!matches(&sel, &labels));
    }
}
