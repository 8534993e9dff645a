//! Optional RBAC: restrict the token to a set of Role/ClusterRole rules,
//! so tests prove that Riposte works with the least-privilege RBAC it
//! ships (a request outside the rules gets the API server's 403).

use serde_json::Value;

use super::resources::ResourceType;
use super::status::{quote, ApiError};

/// One RBAC `PolicyRule` (resource rules only).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyRule {
    pub api_groups: Vec<String>,
    /// `pods`, `pods/status`, `*`.
    pub resources: Vec<String>,
    pub verbs: Vec<String>,
    /// When not empty, only these object names (never for create, list,
    /// watch or deletecollection, which name no object).
    pub resource_names: Vec<String>,
}

/// Rules granted cluster-wide (a ClusterRole) or in one namespace (a Role).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grant {
    /// `None`: every namespace and cluster-scoped resources.
    pub namespace: Option<String>,
    pub rules: Vec<PolicyRule>,
}

/// Who the token authenticates as, and what it may do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Authorizer {
    pub user: String,
    pub grants: Vec<Grant>,
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

impl Authorizer {
    /// Grants from Kubernetes manifests (one or more YAML documents):
    /// every `ClusterRole` cluster-wide, every `Role` in its namespace.
    /// Bindings and other kinds are ignored: the roles are taken as bound
    /// to `user`.
    pub fn from_manifests(user: &str, yaml: &str) -> Result<Self, String> {
        let mut grants = Vec::new();
        for doc in serde_yaml::Deserializer::from_str(yaml) {
            let v: Value = serde::Deserialize::deserialize(doc).map_err(|e| e.to_string())?;
            let namespace = match v["kind"].as_str() {
                Some("ClusterRole") => None,
                Some("Role") => Some(
                    v["metadata"]["namespace"]
                        .as_str()
                        .unwrap_or("default")
                        .to_string(),
                ),
                _ => continue,
            };
            let rules = v["rules"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|r| r.get("nonResourceURLs").is_none())
                .map(|r| PolicyRule {
                    api_groups: strings(&r["apiGroups"]),
                    resources: strings(&r["resources"]),
                    verbs: strings(&r["verbs"]),
                    resource_names: strings(&r["resourceNames"]),
                })
                .collect();
            grants.push(Grant { namespace, rules });
        }
        Ok(Self {
            user: user.to_string(),
            grants,
        })
    }

    /// Whether the request is allowed; the 403 the API server sends if not.
    pub fn check(
        &self,
        verb: &str,
        res: &ResourceType,
        namespace: Option<&str>,
        name: &str,
        subresource: Option<&str>,
    ) -> Result<(), ApiError> {
        let resource = match subresource {
            Some(s) => format!("{}/{s}", res.plural),
            None => res.plural.to_string(),
        };
        let allowed = self.grants.iter().any(|g| {
            let in_scope = match (&g.namespace, namespace) {
                (None, _) => true,
                (Some(gn), Some(n)) => gn == n,
                (Some(_), None) => false,
            };
            in_scope
                && g.rules.iter().any(|r| {
                    let any = |list: &[String], x: &str| list.iter().any(|v| v == "*" || v == x);
                    any(&r.verbs, verb)
                        && any(&r.api_groups, res.group)
                        && any(&r.resources, &resource)
                        && (r.resource_names.is_empty()
                            || (!name.is_empty() && r.resource_names.iter().any(|n| n == name)))
                })
        });
        if allowed {
            return Ok(());
        }
        let scope = match namespace {
            Some(n) => format!("in the namespace {}", quote(n)),
            None => "at the cluster scope".to_string(),
        };
        let why = format!(
            "User {} cannot {verb} resource {} in API group {} {scope}",
            quote(&self.user),
            quote(&resource),
            quote(res.group)
        );
        Err(ApiError::forbidden(res, name, &why))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kube_api::resources::lookup;

    const ROLES: &str = r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: riposte
rules:
  - apiGroups: [""]
    resources: ["pods"]
    verbs: ["get", "list", "watch", "patch"]
  - apiGroups: ["networking.k8s.io"]
    resources: ["networkpolicies"]
    verbs: ["*"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: riposte-leader
  namespace: riposte
rules:
  - apiGroups: ["coordination.k8s.io"]
    resources: ["leases"]
    resourceNames: ["riposte"]
    verbs: ["get", "update"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: ignored
"#;

    #[test]
    fn rules_from_manifests_allow_and_forbid() {
        let a = Authorizer::from_manifests("system:serviceaccount:riposte:riposte", ROLES)
            .expect("parses");
        assert_eq!(a.grants.len(), 2);
        let pods = lookup("pods").expect("served");
        assert!(a.check("patch", pods, Some("shop"), "p", None).is_ok());
        let e = a
            .check("delete", pods, Some("shop"), "p", None)
            .expect_err("no delete");
        assert_eq!(e.code, 403);
        assert_eq!(
            e.message,
            "pods \"p\" is forbidden: User \"system:serviceaccount:riposte:riposte\" cannot delete resource \"pods\" in API group \"\" in the namespace \"shop\""
        );
        assert!(
            a.check("patch", pods, Some("shop"), "p", Some("status"))
                .is_err(),
            "subresources are separate"
        );
        let np = lookup("networkpolicies").expect("served");
        assert!(a.check("create", np, Some("shop"), "", None).is_ok());
        let leases = lookup("leases").expect("served");
        assert!(a
            .check("get", leases, Some("riposte"), "riposte", None)
            .is_ok());
        assert!(a
            .check("get", leases, Some("riposte"), "other", None)
            .is_err());
        assert!(a
            .check("get", leases, Some("shop"), "riposte", None)
            .is_err());
        let ns = lookup("namespaces").expect("served");
        let e = a
            .check("list", ns, None, "", None)
            .expect_err("not granted");
        assert!(e.message.ends_with("at the cluster scope"), "{}", e.message);
    }
}
