//! The policy `riposte lint-manifests` enforces: which workloads must run
//! behind the firewall, and how that is marked.
//!
//! ```toml
//! [[rules]]
//! id = "pci-behind-firewall"
//! description = "Workloads handling card data run behind the CN-Series firewall."
//! level = "error"                          # error fails the check; warning and note are reported only
//! selector.labels = { compliance = "pci" }  # on the workload or its pod template; all must match
//! selector.namespaces = []                 # [] = every namespace
//! selector.kinds = []                      # [] = every workload kind
//! require_annotation = { key = "paloaltonetworks.com/firewall", value = "pan-fw" }
//! forbid = ["riposte.io/exempt"]           # label or annotation keys a selected workload must not carry
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The annotation CN-Series' CNI plugin reads on a pod when the pod is
/// created, to steer its traffic through the firewall.
pub const CN_SERIES_ANNOTATION: &str = "paloaltonetworks.com/firewall";
pub const CN_SERIES_VALUE: &str = "pan-fw";
/// Riposte's own exemption marker: a workload carrying it is never acted
/// on, so it must not appear on workloads the policy says must be guarded.
pub const EXEMPT_KEY: &str = "riposte.io/exempt";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// The rules, each checked on every workload it selects.
    pub rules: Vec<Rule>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Stable identifier, shown in every report (SARIF `ruleId`).
    pub id: String,
    /// What the rule protects, for humans and SARIF rule metadata.
    #[serde(default)]
    pub description: String,
    /// `error` (fails the check), `warning` or `note`.
    #[serde(default)]
    pub level: Level,
    /// Which workloads the rule applies to.
    #[serde(default)]
    pub selector: Selector,
    /// The annotation a selected workload's pod template must carry;
    /// default CN-Series' `paloaltonetworks.com/firewall: pan-fw`.
    #[serde(default = "default_required")]
    pub require_annotation: RequiredAnnotation,
    /// Label or annotation keys a selected workload (or its pod template)
    /// must not carry; default `riposte.io/exempt`.
    #[serde(default = "default_forbid")]
    pub forbid: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Selector {
    /// Labels that must all be present with these values, on the workload
    /// or on its pod template. Empty selects every workload.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Namespaces the rule applies in; empty: all. Objects without a
    /// namespace are in the one given by `--namespace` (default `default`).
    #[serde(default)]
    pub namespaces: Vec<String>,
    /// Workload kinds (`Deployment`, `CronJob`, …); empty: all.
    #[serde(default)]
    pub kinds: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequiredAnnotation {
    pub key: String,
    /// The value it must have; absent: any value.
    #[serde(default)]
    pub value: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    #[default]
    Error,
    Warning,
    Note,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warning => "warning",
            Level::Note => "note",
        }
    }
}

fn default_required() -> RequiredAnnotation {
    RequiredAnnotation {
        key: CN_SERIES_ANNOTATION.into(),
        value: Some(CN_SERIES_VALUE.into()),
    }
}

fn default_forbid() -> Vec<String> {
    vec![EXEMPT_KEY.into()]
}

impl Default for Policy {
    /// Without `--policy`: workloads labelled `compliance: pci` run behind
    /// CN-Series and are never exempt from Riposte.
    fn default() -> Self {
        Policy {
            rules: vec![Rule {
                id: "pci-behind-firewall".into(),
                description: "Workloads labelled compliance=pci must run behind the CN-Series \
                              firewall (annotation paloaltonetworks.com/firewall: pan-fw on the \
                              pod template) and must not be exempt from Riposte."
                    .into(),
                level: Level::Error,
                selector: Selector {
                    labels: BTreeMap::from([("compliance".into(), "pci".into())]),
                    ..Selector::default()
                },
                require_annotation: default_required(),
                forbid: default_forbid(),
            }],
        }
    }
}

/// Why a policy cannot be used. From a file, the message starts with the
/// file's name (and TOML errors say the line).
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("{}: cannot read policy: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {source}", path.display())]
    File {
        path: PathBuf,
        #[source]
        source: Box<PolicyError>,
    },
    #[error(transparent)]
    Toml(#[from] toml::de::Error),
    #[error("the policy has no [[rules]]: it would check nothing")]
    NoRules,
    #[error("a rule has an empty `id`")]
    EmptyId,
    #[error("rule id `{0}` is used twice")]
    DuplicateId(String),
    #[error("rule `{0}`: require_annotation.key is empty")]
    EmptyAnnotationKey(String),
}

impl Policy {
    /// Reads a policy file; errors name the file (and the line, for TOML).
    pub fn load(path: &Path) -> Result<Policy, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Read {
            path: path.to_owned(),
            source,
        })?;
        Policy::from_toml(&text).map_err(|e| PolicyError::File {
            path: path.to_owned(),
            source: Box::new(e),
        })
    }

    pub fn from_toml(text: &str) -> Result<Policy, PolicyError> {
        let policy: Policy = toml::from_str(text)?;
        policy.validate()?;
        Ok(policy)
    }

    fn validate(&self) -> Result<(), PolicyError> {
        if self.rules.is_empty() {
            return Err(PolicyError::NoRules);
        }
        let mut seen = std::collections::HashSet::new();
        for rule in &self.rules {
            if rule.id.trim().is_empty() {
                return Err(PolicyError::EmptyId);
            }
            if !seen.insert(rule.id.as_str()) {
                return Err(PolicyError::DuplicateId(rule.id.clone()));
            }
            if rule.require_annotation.key.trim().is_empty() {
                return Err(PolicyError::EmptyAnnotationKey(rule.id.clone()));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minimal_rule_gets_the_cn_series_defaults() {
        let p = Policy::from_toml(
            "[[rules]]\nid = \"pci\"\nselector.labels = { compliance = \"pci\" }\n",
        )
        .expect("valid");
        let r = &p.rules[0];
        assert_eq!(r.level, Level::Error);
        let req = &r.require_annotation;
        assert_eq!(req.key, CN_SERIES_ANNOTATION);
        assert_eq!(req.value.as_deref(), Some("pan-fw"));
        assert_eq!(r.forbid, vec![EXEMPT_KEY.to_string()]);
    }

    #[test]
    fn unknown_keys_are_refused_with_their_line() {
        let err = Policy::from_toml("[[rules]]\nid = \"x\"\n\nselectr = {}\n")
            .expect_err("typo")
            .to_string();
        assert!(err.contains("selectr"), "{err}");
        assert!(err.contains("line 4"), "{err}");
    }

    #[test]
    fn duplicate_ids_and_empty_policies_are_refused() {
        assert!(Policy::from_toml("rules = []\n").is_err());
        let err = Policy::from_toml("[[rules]]\nid = \"a\"\n[[rules]]\nid = \"a\"\n")
            .expect_err("duplicate")
            .to_string();
        assert!(err.contains("twice"), "{err}");
    }
}
