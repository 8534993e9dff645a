//! Request paths to what they address, and methods to Kubernetes verbs.

use std::collections::BTreeMap;

use axum::http::Method;

use super::query::truthy;
use super::resources::{self, ResourceType};

/// What a path addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Version,
    Health,
    /// `/api`
    CoreVersions,
    /// `/apis`
    Groups,
    /// `/apis/{group}`
    Group(String),
    /// `/api/v1`, `/apis/{group}/{version}`
    ResourceList {
        group: String,
        version: String,
    },
    /// A collection or an object (or its subresource).
    Resource {
        res: &'static ResourceType,
        namespace: Option<String>,
        name: Option<String>,
        subresource: Option<String>,
    },
    NotFound,
}

/// Parses a request path.
pub fn parse(path: &str) -> Route {
    let segs: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
    match segs.as_slice() {
        ["version"] => Route::Version,
        ["healthz"] | ["livez"] | ["readyz"] => Route::Health,
        ["api"] => Route::CoreVersions,
        ["apis"] => Route::Groups,
        ["apis", group] => Route::Group((*group).to_string()),
        ["api", version, rest @ ..] => resource_route("", version, rest),
        ["apis", group, version, rest @ ..] => resource_route(group, version, rest),
        _ => Route::NotFound,
    }
}

fn resource_route(group: &str, version: &str, rest: &[&str]) -> Route {
    if rest.is_empty() {
        return Route::ResourceList {
            group: group.to_string(),
            version: version.to_string(),
        };
    }
    if rest.iter().any(|s| s.is_empty()) {
        return Route::NotFound;
    }
    let own = |s: &&str| (*s).to_string();
    if rest[0] == "namespaces" && rest.len() >= 3 {
        if let Some(res) = resources::find(group, version, rest[2]).filter(|r| r.namespaced) {
            if rest.len() > 5 {
                return Route::NotFound;
            }
            return checked(
                res,
                Some(rest[1].to_string()),
                rest.get(3).map(own),
                rest.get(4).map(own),
            );
        }
    }
    let Some(res) = resources::find(group, version, rest[0]) else {
        return Route::NotFound;
    };
    if rest.len() > 3 || (res.namespaced && rest.len() > 1) {
        return Route::NotFound;
    }
    checked(res, None, rest.get(1).map(own), rest.get(2).map(own))
}

fn checked(
    res: &'static ResourceType,
    namespace: Option<String>,
    name: Option<String>,
    subresource: Option<String>,
) -> Route {
    if let Some(sub) = &subresource {
        if sub != "status" || !res.status {
            return Route::NotFound;
        }
    }
    Route::Resource {
        res,
        namespace,
        name,
        subresource,
    }
}

/// The Kubernetes verb of a request, or `None` when the method does not
/// apply to what the path addresses (405).
pub fn verb(
    method: &Method,
    route: &Route,
    params: &BTreeMap<String, String>,
) -> Option<&'static str> {
    let Route::Resource {
        res,
        namespace,
        name,
        subresource,
    } = route
    else {
        return (method == Method::GET).then_some("get");
    };
    let named = name.is_some();
    let verb = match (method.as_str(), named) {
        ("GET", true) => "get",
        ("GET", false) if truthy(params.get("watch")) => "watch",
        ("GET", false) => "list",
        ("POST", false) => "create",
        ("PUT", true) => "update",
        ("PATCH", true) => "patch",
        ("DELETE", true) => "delete",
        ("DELETE", false) => "deletecollection",
        _ => return None,
    };
    if subresource.is_some() && !matches!(verb, "get" | "update" | "patch") {
        return None;
    }
    // Creating a namespaced object needs its namespace in the path.
    if verb == "create" && res.namespaced && namespace.is_none() {
        return None;
    }
    if verb == "deletecollection" && res.namespaced && namespace.is_none() {
        return None;
    }
    Some(verb)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res_route(path: &str) -> (String, Option<String>, Option<String>, Option<String>) {
        match parse(path) {
            Route::Resource {
                res,
                namespace,
                name,
                subresource,
            } => (res.qualified(), namespace, name, subresource),
            other => panic!("{path} parsed as {other:?}"),
        }
    }

    #[test]
    fn namespaced_and_cluster_paths() {
        let s = |x: &str| Some(x.to_string());
        assert_eq!(res_route("/api/v1/pods"), ("pods".into(), None, None, None));
        assert_eq!(
            res_route("/api/v1/namespaces/shop/pods"),
            ("pods".into(), s("shop"), None, None)
        );
        assert_eq!(
            res_route("/api/v1/namespaces/shop/pods/p/status"),
            ("pods".into(), s("shop"), s("p"), s("status"))
        );
        assert_eq!(
            res_route("/api/v1/namespaces/shop"),
            ("namespaces".into(), None, s("shop"), None)
        );
        assert_eq!(
            res_route("/api/v1/namespaces/shop/status"),
            ("namespaces".into(), None, s("shop"), s("status"))
        );
        assert_eq!(
            res_route("/apis/crd.projectcalico.org/v1/namespaces/a/networkpolicies/x"),
            (
                "networkpolicies.crd.projectcalico.org".into(),
                s("a"),
                s("x"),
                None
            )
        );
    }

    #[test]
    fn unknown_paths_and_subresources_are_not_found() {
        assert_eq!(
            parse("/api/v1/pods/x"),
            Route::NotFound,
            "namespaced object needs a namespace"
        );
        assert_eq!(parse("/api/v1/namespaces/a/pods/p/exec"), Route::NotFound);
        assert_eq!(
            parse("/apis/networking.k8s.io/v1/namespaces/a/networkpolicies/x/status"),
            Route::NotFound
        );
        assert_eq!(parse("/apis/apps/v2/deployments"), Route::NotFound);
        assert_eq!(parse("/nope"), Route::NotFound);
        assert_eq!(
            parse("/apis/apps/v1"),
            Route::ResourceList {
                group: "apps".into(),
                version: "v1".into()
            }
        );
    }

    #[test]
    fn verbs_follow_method_and_watch() {
        let mut q = BTreeMap::new();
        let list = parse("/api/v1/namespaces/a/pods");
        assert_eq!(verb(&Method::GET, &list, &q), Some("list"));
        q.insert("watch".to_string(), "1".to_string());
        assert_eq!(verb(&Method::GET, &list, &q), Some("watch"));
        assert_eq!(verb(&Method::DELETE, &list, &q), Some("deletecollection"));
        assert_eq!(verb(&Method::PATCH, &list, &q), None);
        let status = parse("/api/v1/namespaces/a/pods/p/status");
        assert_eq!(verb(&Method::DELETE, &status, &q), None);
        assert_eq!(verb(&Method::POST, &parse("/api/v1/pods"), &q), None);
    }
}
