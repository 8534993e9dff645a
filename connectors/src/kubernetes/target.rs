//! What an action is aimed at.

use std::collections::BTreeMap;
use std::fmt;

use riposte_firewall::PodContext;
use serde::{Deserialize, Serialize};

use crate::kubernetes::error::Result;
use crate::kubernetes::labels;

/// One pod. With a uid, an action refuses a different pod that took the
/// same name (a StatefulSet's replacement) and reports the original gone.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PodRef {
    pub namespace: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
}

impl PodRef {
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> PodRef {
        PodRef {
            namespace: namespace.into(),
            name: name.into(),
            uid: None,
        }
    }

    #[must_use]
    pub fn with_uid(mut self, uid: impl Into<String>) -> PodRef {
        let uid = uid.into();
        self.uid = (!uid.is_empty()).then_some(uid);
        self
    }

    /// Checks the names before they go into a URL.
    pub fn validate(&self) -> Result<()> {
        labels::validate_namespace(&self.namespace)?;
        labels::validate_object_name("pod", &self.name)
    }
}

impl From<&PodContext> for PodRef {
    fn from(p: &PodContext) -> PodRef {
        PodRef::new(p.namespace.clone(), p.name.clone()).with_uid(p.uid.clone())
    }
}

impl fmt::Display for PodRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// The pods an egress block applies to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EgressTarget {
    /// One pod: Riposte labels it so the policy can select exactly it.
    Pod(PodRef),
    /// Every pod of a namespace carrying all these labels, now and later.
    Selector {
        namespace: String,
        labels: BTreeMap<String, String>,
    },
}

impl EgressTarget {
    pub fn namespace(&self) -> &str {
        match self {
            EgressTarget::Pod(p) => &p.namespace,
            EgressTarget::Selector { namespace, .. } => namespace,
        }
    }

    pub fn validate(&self) -> Result<()> {
        match self {
            EgressTarget::Pod(p) => p.validate(),
            EgressTarget::Selector { namespace, labels } => {
                labels::validate_namespace(namespace)?;
                if labels.is_empty() {
                    return Err(crate::kubernetes::error::KubeError::invalid(
                        "selector",
                        "an empty selector would select every pod of the namespace",
                    ));
                }
                for (k, v) in labels {
                    labels::validate_key("label", k)?;
                    labels::validate_label_value(k, v)?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_ref_from_context_keeps_the_uid() {
        let ctx = PodContext {
            namespace: "shop".into(),
            name: "web-1".into(),
            uid: "u-1".into(),
            ..PodContext::default()
        };
        let r = PodRef::from(&ctx);
        assert_eq!(r.uid.as_deref(), Some("u-1"));
        assert_eq!(r.to_string(), "shop/web-1");
        let no_uid = PodRef::new("shop", "web-1").with_uid("");
        assert_eq!(no_uid.uid, None);
    }

    #[test]
    fn targets_are_validated_before_any_request() {
        assert!(PodRef::new("Shop", "x").validate().is_err());
        assert!(PodRef::new("shop", "x_y").validate().is_err());
        let empty = EgressTarget::Selector {
            namespace: "shop".into(),
            labels: BTreeMap::new(),
        };
        assert!(empty.validate().is_err());
        let ok = EgressTarget::Selector {
            namespace: "shop".into(),
            labels: BTreeMap::from([("app".to_owned(), "web".to_owned())]),
        };
        assert!(ok.validate().is_ok());
        assert_eq!(ok.namespace(), "shop");
    }
}
