//! Query strings and the list options they carry.

use std::collections::BTreeMap;

use base64::Engine;
use serde_json::{json, Value};

use super::status::{ApiError, Cause};

/// Decodes a query string; a repeated key keeps its last value. Empty
/// pairs (kube starts its queries with `?&`) are skipped.
pub fn parse(query: &str) -> BTreeMap<String, String> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(p), String::new()),
        })
        .collect()
}

/// Percent-decoding with `+` as a space.
pub fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A boolean query parameter: `true` or `1`.
pub fn truthy(v: Option<&String>) -> bool {
    matches!(v.map(String::as_str), Some("true") | Some("1"))
}

/// Where a paged list continues: the snapshot's resourceVersion and the
/// last key returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Continue {
    pub rv: u64,
    pub namespace: String,
    pub name: String,
}

impl Continue {
    /// Opaque token, base64 JSON like the API server's.
    pub fn encode(&self) -> String {
        let v = json!({"v": "meta.k8s.io/v1", "rv": self.rv, "start": format!("{}/{}\u{0}", self.namespace, self.name)});
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    }

    pub fn decode(token: &str) -> Result<Self, ApiError> {
        let bad = |why: &str| ApiError::bad_request(format!("continue key is not valid: {why}"));
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token)
            .map_err(|_| bad("incorrect encoded start resourceVersion (version meta.k8s.io/v1)"))?;
        let v: Value = serde_json::from_slice(&raw).map_err(|_| bad("not JSON"))?;
        if v["v"] != "meta.k8s.io/v1" {
            return Err(bad("server does not recognize this encoded version"));
        }
        let rv = v["rv"].as_u64().ok_or_else(|| bad("no resourceVersion"))?;
        let start = v["start"].as_str().ok_or_else(|| bad("no start key"))?;
        let start = start.strip_suffix('\u{0}').unwrap_or(start);
        let (namespace, name) = start.split_once('/').ok_or_else(|| bad("bad start key"))?;
        Ok(Self {
            rv,
            namespace: namespace.to_string(),
            name: name.to_string(),
        })
    }
}

/// Which state a list is served from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListAt {
    /// The newest state.
    Latest,
    /// Exactly this resourceVersion (`resourceVersionMatch=Exact`).
    Exact(u64),
    /// At least this resourceVersion: the newest state, unless the
    /// server has not reached it.
    NotOlderThan(u64),
}

fn parse_rv(s: &str) -> Result<u64, ApiError> {
    s.parse::<u64>().map_err(|_| {
        ApiError::invalid_params(
            "ListOptions.meta.k8s.io",
            vec![Cause::invalid(
                "resourceVersion",
                s,
                "must be a valid resource version",
            )],
        )
    })
}

/// The resourceVersion semantics of a list, checked like
/// `ValidateListOptions` does.
pub fn list_at(
    rv: Option<&String>,
    rv_match: Option<&String>,
    continue_token: Option<&String>,
) -> Result<ListAt, ApiError> {
    let rv = rv.map(String::as_str).unwrap_or("");
    let m = rv_match.map(String::as_str).unwrap_or("");
    let has_continue = continue_token.is_some_and(|c| !c.is_empty());
    let invalid = |field: &str, value: &str, why: &str| {
        ApiError::invalid_params(
            "ListOptions.meta.k8s.io",
            vec![Cause::forbidden(field, &format!("{why} ({value})"))],
        )
    };
    if has_continue && !rv.is_empty() && rv != "0" {
        return Err(ApiError::bad_request(
            "specifying resource version is not allowed when using continue",
        ));
    }
    match m {
        "" => match rv {
            "" | "0" => Ok(ListAt::Latest),
            n => Ok(ListAt::NotOlderThan(parse_rv(n)?)),
        },
        "NotOlderThan" => {
            if rv.is_empty() {
                return Err(invalid(
                    "resourceVersionMatch",
                    m,
                    "resourceVersionMatch is forbidden unless resourceVersion is provided",
                ));
            }
            if has_continue {
                return Err(invalid(
                    "resourceVersionMatch",
                    m,
                    "resourceVersionMatch is forbidden when continue is provided",
                ));
            }
            Ok(ListAt::NotOlderThan(parse_rv(rv)?))
        }
        "Exact" => {
            if rv.is_empty() {
                return Err(invalid(
                    "resourceVersionMatch",
                    m,
                    "resourceVersionMatch is forbidden unless resourceVersion is provided",
                ));
            }
            if rv == "0" {
                return Err(invalid(
                    "resourceVersionMatch",
                    m,
                    "resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"",
                ));
            }
            if has_continue {
                return Err(invalid(
                    "resourceVersionMatch",
                    m,
                    "resourceVersionMatch is forbidden when continue is provided",
                ));
            }
            Ok(ListAt::Exact(parse_rv(rv)?))
        }
        other => Err(ApiError::invalid_params(
            "ListOptions.meta.k8s.io",
            vec![Cause::not_supported(
                "resourceVersionMatch",
                other,
                &["Exact", "NotOlderThan", ""],
            )],
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_decode_like_kube_sends_them() {
        let q = parse(
            "&watch=true&labelSelector=app%3Dweb%2Criposte.io%2Fquarantine&fieldSelector=a+b",
        );
        assert_eq!(q["watch"], "true");
        assert_eq!(q["labelSelector"], "app=web,riposte.io/quarantine");
        assert_eq!(q["fieldSelector"], "a b");
        assert_eq!(decode("100%"), "100%");
    }

    #[test]
    fn continue_tokens_round_trip_and_reject_garbage() {
        let c = Continue {
            rv: 42,
            namespace: "shop".into(),
            name: "p-1".into(),
        };
        assert_eq!(Continue::decode(&c.encode()).expect("valid"), c);
        assert_eq!(Continue::decode("!!").expect_err("garbage").code, 400);
    }

    #[test]
    fn resource_version_rules_follow_list_options_validation() {
        let s = |x: &str| Some(x.to_string());
        assert_eq!(list_at(None, None, None).expect("ok"), ListAt::Latest);
        assert_eq!(
            list_at(s("0").as_ref(), None, None).expect("ok"),
            ListAt::Latest
        );
        assert_eq!(
            list_at(s("7").as_ref(), s("Exact").as_ref(), None).expect("ok"),
            ListAt::Exact(7)
        );
        assert_eq!(
            list_at(None, s("Exact").as_ref(), None)
                .expect_err("needs rv")
                .code,
            422
        );
        assert_eq!(
            list_at(s("0").as_ref(), s("Exact").as_ref(), None)
                .expect_err("rv 0")
                .code,
            422
        );
        assert_eq!(
            list_at(s("5").as_ref(), None, s("tok").as_ref())
                .expect_err("rv+continue")
                .code,
            400
        );
        assert_eq!(
            list_at(s("x").as_ref(), None, None)
                .expect_err("not a number")
                .code,
            422
        );
    }
}
