//! The resource types the stand-in serves, with what discovery says about
//! them and the few per-type rules the API server applies.

/// How `metadata.name` is validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameRule {
    /// RFC 1123 subdomain: at most 253 characters of `[a-z0-9.-]`.
    Subdomain,
    /// RFC 1123 label: at most 63 characters of `[a-z0-9-]`.
    Label,
    /// RFC 1035 label: an RFC 1123 label that starts with a letter.
    Label1035,
}

/// One served resource (group, version, plural) and its behaviour.
#[derive(Debug, PartialEq, Eq)]
pub struct ResourceType {
    pub group: &'static str,
    pub version: &'static str,
    pub plural: &'static str,
    pub singular: &'static str,
    pub kind: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
    pub categories: &'static [&'static str],
    /// Has a `/status` subresource: writes to the main resource keep the
    /// stored status, writes to `/status` keep everything else.
    pub status: bool,
    /// `metadata.generation` is set and bumped when the spec changes.
    pub generation: bool,
    /// PUT on a missing object creates it (events, leases).
    pub create_on_update: bool,
    /// Built into the API server (strategic merge patch works); custom
    /// resources take only JSON, merge and apply patches.
    pub builtin: bool,
    /// Field selector labels beyond `metadata.name` and `metadata.namespace`.
    pub field_labels: &'static [&'static str],
    pub name_rule: NameRule,
}

impl ResourceType {
    /// `apiVersion` of its objects.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `pods`, `networkpolicies.networking.k8s.io`: how errors name it.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// `Pod`, `NetworkPolicy.networking.k8s.io`: how Invalid errors name it.
    pub fn qualified_kind(&self) -> String {
        if self.group.is_empty() {
            self.kind.to_string()
        } else {
            format!("{}.{}", self.kind, self.group)
        }
    }

    /// Its URL prefix: `/api/v1` or `/apis/{group}/{version}`.
    pub fn prefix(&self) -> String {
        if self.group.is_empty() {
            format!("/api/{}", self.version)
        } else {
            format!("/apis/{}/{}", self.group, self.version)
        }
    }

    /// Where an object of it lives.
    pub fn object_path(&self, namespace: &str, name: &str) -> String {
        if self.namespaced {
            format!(
                "{}/namespaces/{namespace}/{}/{name}",
                self.prefix(),
                self.plural
            )
        } else {
            format!("{}/{}/{name}", self.prefix(), self.plural)
        }
    }

    /// Whether `label` may be used in a field selector on it.
    pub fn supports_field(&self, label: &str) -> bool {
        label == "metadata.name"
            || (label == "metadata.namespace" && self.namespaced)
            || self.field_labels.contains(&label)
    }

    /// The position of this type in [`RESOURCES`], used as a store key.
    pub fn index(&self) -> usize {
        RESOURCES
            .iter()
            .position(|r| std::ptr::eq(r, self))
            .unwrap_or(usize::MAX)
    }
}

const ALL: &[&str] = &["all"];

const POD_FIELDS: &[&str] = &[
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.schedulerName",
    "spec.serviceAccountName",
    "spec.hostNetwork",
    "status.phase",
    "status.podIP",
    "status.nominatedNodeName",
];

const CORE_EVENT_FIELDS: &[&str] = &[
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
    "type",
];

/// Everything served, in discovery order. Where a plural or kind exists in
/// two groups, the first one here is what a bare name means.
pub static RESOURCES: &[ResourceType] = &[
    ResourceType {
        group: "",
        version: "v1",
        plural: "namespaces",
        singular: "namespace",
        kind: "Namespace",
        namespaced: false,
        short_names: &["ns"],
        categories: &[],
        status: true,
        generation: false,
        create_on_update: false,
        builtin: true,
        field_labels: &["status.phase"],
        name_rule: NameRule::Label,
    },
    ResourceType {
        group: "",
        version: "v1",
        plural: "pods",
        singular: "pod",
        kind: "Pod",
        namespaced: true,
        short_names: &["po"],
        categories: ALL,
        status: true,
        generation: false,
        create_on_update: false,
        builtin: true,
        field_labels: POD_FIELDS,
        name_rule: NameRule::Subdomain,
    },
    ResourceType {
        group: "",
        version: "v1",
        plural: "events",
        singular: "event",
        kind: "Event",
        namespaced: true,
        short_names: &["ev"],
        categories: &[],
        status: false,
        generation: false,
        create_on_update: true,
        builtin: true,
        field_labels: CORE_EVENT_FIELDS,
        name_rule: NameRule::Subdomain,
    },
    ResourceType {
        group: "",
        version: "v1",
        plural: "services",
        singular: "service",
        kind: "Service",
        namespaced: true,
        short_names: &["svc"],
        categories: ALL,
        status: true,
        generation: false,
        create_on_update: false,
        builtin: true,
        field_labels: &["spec.clusterIP", "spec.type"],
        name_rule: NameRule::Label1035,
    },
    ResourceType {
        group: "",
        version: "v1",
        plural: "nodes",
        singular: "node",
        kind: "Node",
        namespaced: false,
        short_names: &["no"],
        categories: &[],
        status: true,
        generation: false,
        create_on_update: false,
        builtin: true,
        field_labels: &["spec.unschedulable"],
        name_rule: NameRule::Subdomain,
    },
    ResourceType {
        group: "networking.k8s.io",
        version: "v1",
        plural: "networkpolicies",
        singular: "networkpolicy",
        kind: "NetworkPolicy",
        namespaced: true,
        short_names: &["netpol"],
        categories: &[],
        status: false,
        generation: true,
        create_on_update: false,
        builtin: true,
        field_labels: &[],
        name_rule: NameRule::Subdomain,
    },
    ResourceType {
        group: "apps",
        version: "v1",
        plural: "deployments",
        singular: "deployment",
        kind: "Deployment",
        namespaced: true,
        short_names: &["deploy"],
        categories: ALL,
        status: true,
        generation: true,
        create_on_update: false,
        builtin: true,
        field_labels: &[],
        name_rule: NameRule::Subdomain,
    },
    ResourceType {
        group: "apps",
        version: "v1",
        plural: "replicasets",
        singular: "replicaset",
        kind: "ReplicaSet",
        namespaced: true,
        short_names: &["rs"],
        categories: ALL,
        status: true,
        generation: true,
        create_on_update: false,
        builtin: true,
        field_labels: &["status.replicas"],
        name_rule: NameRule::Subdomain,
    },
    ResourceType {
        group: "apps",
        version: "v1",
        plural: "statefulsets",
        singular: "statefulset",
        kind: "StatefulSet",
        namespaced: true,
        short_names: &["sts"],
        categories: ALL,
        status: true,
        generation: true,
        create_on_update: false,
        builtin: true,
        field_labels: &[],
        name_rule: NameRule::Subdomain,
    },
    ResourceType {
        group: "apps",
        version: "v1",
        plural: "daemonsets",
        singular: "daemonset",
        kind: "DaemonSet",
        namespaced: true,
        short_names: &["ds"],
        categories: ALL,
        status: true,
        generation: true,
        create_on_update: false,
        builtin: true,
        field_labels: &[],
        name_rule: NameRule::Subdomain,
    },
    ResourceType {
        group: "batch",
        version: "v1",
        plural: "jobs",
        singular: "job",
        kind: "Job",
        namespaced: true,
        short_names: &[],
        categories: ALL,
        status: true,
        generation: true,
        create_on_update: false,
        builtin: true,
        field_labels: &["status.successful"],
        name_rule: NameRule::Subdomain,
    },
    ResourceType {
        group: "batch",
        version: "v1",
        plural: "cronjobs",
        singular: "cronjob",
        kind: "CronJob",
        namespaced: true,
        short_names: &["cj"],
        categories: ALL,
        status: true,
        generation: true,
        create_on_update: false,
        builtin: true,
        field_labels: &[],
        name_rule: NameRule::Subdomain,
    },
    ResourceType {
        group: "events.k8s.io",
        version: "v1",
        plural: "events",
        singular: "event",
        kind: "Event",
        namespaced: true,
        short_names: &["ev"],
        categories: &[],
        status: false,
        generation: false,
        create_on_update: true,
        builtin: true,
        field_labels: &[
            "regarding.kind",
            "regarding.namespace",
            "regarding.name",
            "regarding.uid",
            "reason",
            "reportingController",
            "type",
        ],
        name_rule: NameRule::Subdomain,
    },
    ResourceType {
        group: "coordination.k8s.io",
        version: "v1",
        plural: "leases",
        singular: "lease",
        kind: "Lease",
        namespaced: true,
        short_names: &[],
        categories: &[],
        status: false,
        generation: false,
        create_on_update: true,
        builtin: true,
        field_labels: &[],
        name_rule: NameRule::Subdomain,
    },
    ResourceType {
        group: "cilium.io",
        version: "v2",
        plural: "ciliumnetworkpolicies",
        singular: "ciliumnetworkpolicy",
        kind: "CiliumNetworkPolicy",
        namespaced: true,
        short_names: &["cnp", "ciliumnp"],
        categories: &["cilium", "ciliumpolicy"],
        status: true,
        generation: true,
        create_on_update: false,
        builtin: false,
        field_labels: &[],
        name_rule: NameRule::Subdomain,
    },
    ResourceType {
        group: "cilium.io",
        version: "v2",
        plural: "ciliumclusterwidenetworkpolicies",
        singular: "ciliumclusterwidenetworkpolicy",
        kind: "CiliumClusterwideNetworkPolicy",
        namespaced: false,
        short_names: &["ccnp"],
        categories: &["cilium", "ciliumpolicy"],
        status: true,
        generation: true,
        create_on_update: false,
        builtin: false,
        field_labels: &[],
        name_rule: NameRule::Subdomain,
    },
    ResourceType {
        group: "crd.projectcalico.org",
        version: "v1",
        plural: "networkpolicies",
        singular: "networkpolicy",
        kind: "NetworkPolicy",
        namespaced: true,
        short_names: &[],
        categories: &[],
        status: false,
        generation: true,
        create_on_update: false,
        builtin: false,
        field_labels: &[],
        name_rule: NameRule::Subdomain,
    },
    ResourceType {
        group: "crd.projectcalico.org",
        version: "v1",
        plural: "globalnetworkpolicies",
        singular: "globalnetworkpolicy",
        kind: "GlobalNetworkPolicy",
        namespaced: false,
        short_names: &[],
        categories: &[],
        status: false,
        generation: true,
        create_on_update: false,
        builtin: false,
        field_labels: &[],
        name_rule: NameRule::Subdomain,
    },
];

/// The type served at `group`/`version` under `plural`.
pub fn find(group: &str, version: &str, plural: &str) -> Option<&'static ResourceType> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// Looks a type up the way `kubectl` names them: `pods`, `pod`, `po`,
/// `Pod`, `networkpolicies.crd.projectcalico.org`,
/// `NetworkPolicy.networking.k8s.io`, `events.events.k8s.io`. A bare name
/// found in two groups means the first one served (core, then
/// `networking.k8s.io`).
pub fn lookup(name: &str) -> Option<&'static ResourceType> {
    let matches = |r: &ResourceType, n: &str| {
        r.plural == n || r.singular == n || r.kind == n || r.short_names.contains(&n)
    };
    if let Some(r) = RESOURCES.iter().find(|r| matches(r, name)) {
        return Some(r);
    }
    let (n, group) = name.split_once('.')?;
    RESOURCES.iter().find(|r| r.group == group && matches(r, n))
}

/// The type whose objects carry this `apiVersion` and `kind`.
pub fn by_kind(api_version: &str, kind: &str) -> Option<&'static ResourceType> {
    RESOURCES
        .iter()
        .find(|r| r.kind == kind && r.api_version() == api_version)
}

/// The groups served under `/apis`, in order, without duplicates.
pub fn groups() -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for r in RESOURCES {
        if !r.group.is_empty() && !out.contains(&r.group) {
            out.push(r.group);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_names_prefer_the_builtin_group() {
        let np = lookup("networkpolicies").expect("served");
        assert_eq!(np.group, "networking.k8s.io");
        let ev = lookup("events").expect("served");
        assert_eq!(ev.group, "");
    }

    #[test]
    fn qualified_names_reach_the_other_group() {
        let calico = lookup("networkpolicies.crd.projectcalico.org").expect("served");
        assert_eq!(calico.api_version(), "crd.projectcalico.org/v1");
        assert!(!calico.builtin);
        let ev = lookup("events.events.k8s.io").expect("served");
        assert_eq!(ev.api_version(), "events.k8s.io/v1");
        let cnp = lookup("cnp").expect("short name");
        assert_eq!(cnp.kind, "CiliumNetworkPolicy");
    }

    #[test]
    fn paths_follow_scope() {
        let pods = lookup("pods").expect("served");
        assert_eq!(
            pods.object_path("shop", "a"),
            "/api/v1/namespaces/shop/pods/a"
        );
        let ns = lookup("ns").expect("served");
        assert_eq!(ns.object_path("", "shop"), "/api/v1/namespaces/shop");
        assert_eq!(RESOURCES[pods.index()].plural, "pods");
    }

    #[test]
    fn field_labels_are_per_type() {
        let pods = lookup("pods").expect("served");
        assert!(pods.supports_field("status.podIP"));
        assert!(!pods.supports_field("spec.containers"));
        let ns = lookup("namespaces").expect("served");
        assert!(!ns.supports_field("metadata.namespace"));
    }
}
