//! The objects Riposte applies, as pure functions of their inputs.
//!
//! Each builder returns the server-side apply body: only the fields
//! Riposte owns, so applying it again is a no-op and applying a changed
//! configuration removes what Riposte no longer wants (SSA drops fields a
//! manager stops sending). The tests pin every shape against JSON.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use ipnet::IpNet;
use serde_json::{json, Map, Value};

use crate::kubernetes::config::{EgressConfig, QuarantineConfig};
use crate::kubernetes::error::{KubeError, Result};
use crate::kubernetes::names::*;
use crate::kubernetes::state::rfc3339;

/// The labels every object Riposte creates carries.
pub fn managed_labels(role: &str, action_id: &str) -> Value {
    json!({
        MANAGED_BY: MANAGED_BY_VALUE,
        ROLE_LABEL: role,
        ACTION_ID_LABEL: action_label_value(action_id),
    })
}

fn dns_rule(q: &QuarantineConfig) -> Value {
    json!({
        "to": [{
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": q.dns_namespace}},
            "podSelector": {"matchLabels": q.dns_pod_labels},
        }],
        "ports": [
            {"protocol": "UDP", "port": 53},
            {"protocol": "TCP", "port": 53},
        ],
    })
}

/// The deny-all NetworkPolicy of a namespace: selects every pod carrying
/// the quarantine label and allows only the configured exceptions.
pub fn quarantine_policy(q: &QuarantineConfig, namespace: &str, action_id: &str) -> Value {
    let mut spec = Map::new();
    spec.insert(
        "podSelector".into(),
        json!({"matchLabels": {q.label.as_str(): "true"}}),
    );
    spec.insert("policyTypes".into(), json!(["Ingress", "Egress"]));
    if !q.allow_ingress_from_namespaces.is_empty() {
        let from: Vec<Value> = q
            .allow_ingress_from_namespaces
            .iter()
            .map(|ns| json!({"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}}}))
            .collect();
        spec.insert("ingress".into(), json!([{ "from": from }]));
    }
    let mut egress = Vec::new();
    if q.allow_dns {
        egress.push(dns_rule(q));
    }
    if !q.allow_egress_to.is_empty() {
        let to: Vec<Value> = q
            .allow_egress_to
            .iter()
            .map(|c| json!({"ipBlock": {"cidr": c.trunc().to_string()}}))
            .collect();
        egress.push(json!({ "to": to }));
    }
    if !egress.is_empty() {
        spec.insert("egress".into(), Value::Array(egress));
    }
    json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": q.policy_name,
            "namespace": namespace,
            "labels": managed_labels(ROLE_QUARANTINE, action_id),
            "annotations": {ANN_ACTION_ID: action_id},
        },
        "spec": spec,
    })
}

/// The pod's quarantine label and annotations, as a server-side apply body.
pub fn quarantine_pod_apply(
    label: &str,
    namespace: &str,
    name: &str,
    annotations: &BTreeMap<String, String>,
) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {label: "true"},
            "annotations": annotations,
        },
    })
}

/// What describes one egress block, besides its target and network.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EgressSpec {
    pub action_id: String,
    /// Blocked destination ports (TCP, UDP and SCTP); empty: all traffic.
    pub ports: Vec<u16>,
    pub expires_at: Option<DateTime<Utc>>,
    pub reason: Option<String>,
    pub playbook: Option<String>,
    pub event_id: Option<String>,
}

/// One egress policy to build: where, for whom, against what.
#[derive(Debug, Clone, Copy)]
pub struct EgressPolicy<'a> {
    pub name: &'a str,
    pub namespace: &'a str,
    /// The pods it applies to (a namespace's pods carrying all of these).
    pub pod_selector: &'a BTreeMap<String, String>,
    pub cidr: IpNet,
    pub spec: &'a EgressSpec,
    /// `namespace/name` when the block targets one pod.
    pub target_pod: Option<&'a str>,
}

fn egress_metadata(p: &EgressPolicy<'_>, cidr: IpNet) -> Value {
    let (name, namespace, spec, target_pod) = (p.name, p.namespace, p.spec, p.target_pod);
    let mut ann = Map::new();
    ann.insert(ANN_ACTION_ID.into(), json!(spec.action_id));
    ann.insert(ANN_CIDR.into(), json!(cidr.trunc().to_string()));
    if !spec.ports.is_empty() {
        let mut ports = spec.ports.clone();
        ports.sort_unstable();
        ports.dedup();
        let ports: Vec<String> = ports.iter().map(u16::to_string).collect();
        ann.insert(ANN_PORTS.into(), json!(ports.join(",")));
    }
    if let Some(t) = spec.expires_at {
        ann.insert(ANN_EXPIRES_AT.into(), json!(rfc3339(t)));
    }
    for (key, v) in [
        (ANN_REASON, &spec.reason),
        (ANN_PLAYBOOK, &spec.playbook),
        (ANN_EVENT_ID, &spec.event_id),
    ] {
        if let Some(v) = v {
            ann.insert(key.into(), json!(v));
        }
    }
    if let Some(p) = target_pod {
        ann.insert(ANN_TARGET_POD.into(), json!(p));
    }
    json!({
        "name": name,
        "namespace": namespace,
        "labels": managed_labels(ROLE_EGRESS, &spec.action_id),
        "annotations": ann,
    })
}

/// Ports must be real ports; sorted and deduplicated.
pub(crate) fn normalize_ports(ports: &[u16]) -> Result<Vec<u16>> {
    if ports.contains(&0) {
        return Err(KubeError::invalid(
            "port",
            "port 0 cannot be blocked; ports are 1-65535",
        ));
    }
    let mut p = ports.to_vec();
    p.sort_unstable();
    p.dedup();
    Ok(p)
}

/// The port ranges left open when `blocked` are closed: [(first, last)].
fn complement(blocked: &[u16]) -> Vec<(u16, u16)> {
    let mut out = Vec::new();
    let mut next: u32 = 1;
    for &p in blocked {
        let p = u32::from(p);
        if p > next {
            out.push((next, p - 1));
        }
        next = p + 1;
    }
    if next <= 65_535 {
        out.push((next, 65_535));
    }
    out.into_iter()
        .filter_map(|(a, b)| Some((u16::try_from(a).ok()?, u16::try_from(b).ok()?)))
        .collect()
}

/// A standard NetworkPolicy that allows all egress of the selected pods
/// except to `cidr` (on `ports`, when given).
///
/// What it cannot do: NetworkPolicies only ever allow, and a pod's allowed
/// traffic is the union of every policy that selects it. This one works by
/// isolating the pods for egress and allowing everything but `cidr`, so it
/// blocks `cidr` only while no other policy selecting the same pods allows
/// it (an "allow all egress" policy, or one allowing `cidr` or a network
/// containing it, wins). It also cannot block by DNS name, and whether
/// `ipBlock` matches pod or Service addresses is up to the CNI (it is meant
/// for addresses outside the cluster). With `ports`, only TCP, UDP and SCTP
/// to `cidr` on the other ports stay open: other protocols (ICMP) to `cidr`
/// are blocked too. Use the `cilium` or `calico` backends for a real deny.
pub fn egress_network_policy(
    p: &EgressPolicy<'_>,
    quarantine: &QuarantineConfig,
    egress: &EgressConfig,
) -> Result<Value> {
    let cidr = p.cidr.trunc();
    let ports = normalize_ports(&p.spec.ports)?;
    let (same_family_all, other_family_all) = match cidr {
        IpNet::V4(_) => ("0.0.0.0/0", "::/0"),
        IpNet::V6(_) => ("::/0", "0.0.0.0/0"),
    };
    let mut to = Vec::new();
    // `except` must be strictly inside `cidr`: blocking a whole family
    // means allowing nothing of it.
    if cidr.prefix_len() > 0 {
        to.push(json!({"ipBlock": {"cidr": same_family_all, "except": [cidr.to_string()]}}));
    }
    to.push(json!({"ipBlock": {"cidr": other_family_all}}));
    let mut rules = vec![json!({ "to": to })];
    if !ports.is_empty() {
        let mut open = Vec::new();
        for proto in ["TCP", "UDP", "SCTP"] {
            for (first, last) in complement(&ports) {
                let mut p = json!({"protocol": proto, "port": first});
                if last > first {
                    p["endPort"] = json!(last);
                }
                open.push(p);
            }
        }
        if !open.is_empty() {
            rules.push(json!({"to": [{"ipBlock": {"cidr": cidr.to_string()}}], "ports": open}));
        }
    }
    if egress.keep_dns && quarantine.allow_dns {
        rules.push(dns_rule(quarantine));
    }
    Ok(json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": egress_metadata(p, cidr),
        "spec": {
            "podSelector": {"matchLabels": p.pod_selector},
            "policyTypes": ["Egress"],
            "egress": rules,
        },
    }))
}

/// A CiliumNetworkPolicy whose `egressDeny` drops traffic to `cidr`. Deny
/// rules win over every allow (Kubernetes or Cilium policies alike), and
/// `enableDefaultDeny: false` keeps the policy from isolating the pods for
/// everything else (Cilium 1.15 or later).
pub fn egress_cilium_policy(p: &EgressPolicy<'_>) -> Result<Value> {
    let cidr = p.cidr.trunc();
    let ports = normalize_ports(&p.spec.ports)?;
    let mut rule = json!({"toCIDRSet": [{"cidr": cidr.to_string()}]});
    if !ports.is_empty() {
        let list: Vec<Value> = ports
            .iter()
            .map(|p| json!({"port": p.to_string(), "protocol": "ANY"}))
            .collect();
        rule["toPorts"] = json!([{ "ports": list }]);
    }
    Ok(json!({
        "apiVersion": "cilium.io/v2",
        "kind": "CiliumNetworkPolicy",
        "metadata": egress_metadata(p, cidr),
        "spec": {
            "endpointSelector": {"matchLabels": p.pod_selector},
            "enableDefaultDeny": {"egress": false, "ingress": false},
            "egressDeny": [rule],
        },
    }))
}

/// A Calico selector expression for a set of labels.
fn calico_selector(labels: &BTreeMap<String, String>) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k} == '{v}'"))
        .collect::<Vec<_>>()
        .join(" && ")
}

/// The name of a Calico policy: tiered policies are prefixed by their tier.
pub fn calico_policy_name(tier: &str, name: &str) -> String {
    format!("{tier}.{name}")
}

/// A Calico NetworkPolicy (crd.projectcalico.org/v1) with a Deny rule.
///
/// In its own tier (the default), the policy ends with `Pass`: traffic it
/// does not deny goes on to the next tier, where the Kubernetes
/// NetworkPolicies of the `default` tier decide as before. In the `default`
/// tier itself a Pass would skip those, so there the policy has the Deny
/// rule alone, ordered first; but a tier that applies to a pod and takes no
/// action drops the packet, so a pod that no other policy selects for
/// egress loses all egress. Prefer a dedicated tier.
pub fn egress_calico_policy(p: &EgressPolicy<'_>, egress: &EgressConfig) -> Result<Value> {
    let cidr = p.cidr.trunc();
    let ports = normalize_ports(&p.spec.ports)?;
    let mut rules = Vec::new();
    if ports.is_empty() {
        rules.push(json!({"action": "Deny", "destination": {"nets": [cidr.to_string()]}}));
    } else {
        // Calico takes ports only together with a port protocol.
        for proto in ["TCP", "UDP", "SCTP"] {
            rules.push(json!({
                "action": "Deny",
                "protocol": proto,
                "destination": {"nets": [cidr.to_string()], "ports": ports},
            }));
        }
    }
    if egress.calico_tier != "default" {
        rules.push(json!({"action": "Pass"}));
    }
    Ok(json!({
        "apiVersion": "crd.projectcalico.org/v1",
        "kind": "NetworkPolicy",
        "metadata": egress_metadata(p, cidr),
        "spec": {
            "tier": egress.calico_tier,
            "order": egress.calico_order,
            "selector": calico_selector(p.pod_selector),
            "types": ["Egress"],
            "egress": rules,
        },
    }))
}

/// The Calico tier Riposte's policies live in.
pub fn calico_tier(egress: &EgressConfig) -> Value {
    json!({
        "apiVersion": "crd.projectcalico.org/v1",
        "kind": "Tier",
        "metadata": {
            "name": egress.calico_tier,
            "labels": {MANAGED_BY: MANAGED_BY_VALUE},
        },
        "spec": {"order": egress.calico_tier_order},
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn sel(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn net(s: &str) -> IpNet {
        s.parse().expect("test cidr")
    }

    fn spec(ports: &[u16]) -> EgressSpec {
        EgressSpec {
            action_id: "a1b2".into(),
            ports: ports.to_vec(),
            expires_at: Some(
                Utc.with_ymd_and_hms(2025, 3, 2, 0, 0, 0)
                    .single()
                    .expect("time"),
            ),
            reason: Some("C2".into()),
            playbook: Some("c2-quarantine".into()),
            event_id: None,
        }
    }

    fn pol<'a>(
        name: &'a str,
        selector: &'a BTreeMap<String, String>,
        cidr: &str,
        spec: &'a EgressSpec,
        target_pod: Option<&'a str>,
    ) -> EgressPolicy<'a> {
        EgressPolicy {
            name,
            namespace: "shop",
            pod_selector: selector,
            cidr: net(cidr),
            spec,
            target_pod,
        }
    }

    fn egress_meta(name: &str, cidr: &str, ports: Option<&str>) -> Value {
        let mut ann = json!({
            "riposte.io/action-id": "a1b2",
            "riposte.io/cidr": cidr,
            "riposte.io/expires-at": "2025-03-02T00:00:00Z",
            "riposte.io/reason": "C2",
            "riposte.io/playbook": "c2-quarantine",
        });
        if let Some(p) = ports {
            ann["riposte.io/ports"] = json!(p);
        }
        json!({
            "name": name,
            "namespace": "shop",
            "labels": {"app.kubernetes.io/managed-by": "riposte", "riposte.io/role": "egress-block", "riposte.io/action-id": "a1b2"},
            "annotations": ann,
        })
    }

    #[test]
    fn quarantine_policy_denies_all_but_dns_by_default() {
        let q = QuarantineConfig::default();
        let got = quarantine_policy(&q, "shop", "a1b2");
        assert_eq!(
            got,
            json!({
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": {
                    "name": "riposte-quarantine",
                    "namespace": "shop",
                    "labels": {"app.kubernetes.io/managed-by": "riposte", "riposte.io/role": "quarantine", "riposte.io/action-id": "a1b2"},
                    "annotations": {"riposte.io/action-id": "a1b2"},
                },
                "spec": {
                    "podSelector": {"matchLabels": {"riposte.io/quarantine": "true"}},
                    "policyTypes": ["Ingress", "Egress"],
                    "egress": [{
                        "to": [{
                            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                        }],
                        "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
                    }],
                },
            })
        );
    }

    #[test]
    fn quarantine_policy_with_every_allowance_and_none() {
        let q = QuarantineConfig {
            allow_dns: false,
            allow_ingress_from_namespaces: vec!["forensics".into(), "soc".into()],
            allow_egress_to: vec![net("10.9.0.7/16"), net("fd00::/8")],
            ..QuarantineConfig::default()
        };
        let got = quarantine_policy(&q, "shop", "x");
        assert_eq!(
            got["spec"],
            json!({
                "podSelector": {"matchLabels": {"riposte.io/quarantine": "true"}},
                "policyTypes": ["Ingress", "Egress"],
                "ingress": [{"from": [
                    {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "forensics"}}},
                    {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "soc"}}},
                ]}],
                "egress": [{"to": [{"ipBlock": {"cidr": "10.9.0.0/16"}}, {"ipBlock": {"cidr": "fd00::/8"}}]}],
            })
        );
        let closed = QuarantineConfig {
            allow_dns: false,
            ..QuarantineConfig::default()
        };
        let spec = &quarantine_policy(&closed, "shop", "x")["spec"];
        assert!(
            spec.get("egress").is_none() && spec.get("ingress").is_none(),
            "{spec}"
        );
    }

    #[test]
    fn pod_apply_carries_only_what_riposte_owns() {
        let ann = BTreeMap::from([("riposte.io/reason".to_owned(), "C2".to_owned())]);
        assert_eq!(
            quarantine_pod_apply("riposte.io/quarantine", "shop", "web-1", &ann),
            json!({
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": "web-1",
                    "namespace": "shop",
                    "labels": {"riposte.io/quarantine": "true"},
                    "annotations": {"riposte.io/reason": "C2"},
                },
            })
        );
    }

    #[test]
    fn network_policy_allows_everything_but_the_blocked_network() {
        let (selector, sp) = (sel(&[("app", "web")]), spec(&[]));
        let got = egress_network_policy(
            &pol("riposte-egress-1", &selector, "203.0.113.9/24", &sp, None),
            &QuarantineConfig::default(),
            &EgressConfig::default(),
        )
        .expect("builds");
        assert_eq!(
            got,
            json!({
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": egress_meta("riposte-egress-1", "203.0.113.0/24", None),
                "spec": {
                    "podSelector": {"matchLabels": {"app": "web"}},
                    "policyTypes": ["Egress"],
                    "egress": [
                        {"to": [
                            {"ipBlock": {"cidr": "0.0.0.0/0", "except": ["203.0.113.0/24"]}},
                            {"ipBlock": {"cidr": "::/0"}},
                        ]},
                        {
                            "to": [{
                                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                                "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                            }],
                            "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
                        },
                    ],
                },
            })
        );
    }

    #[test]
    fn network_policy_for_ipv6_whole_families_and_ports() {
        let no_dns = EgressConfig {
            keep_dns: false,
            ..EgressConfig::default()
        };
        let q = QuarantineConfig::default();
        let (ab, none, web_ports, zero) = (
            sel(&[("a", "b")]),
            spec(&[]),
            spec(&[443, 80, 443]),
            spec(&[0]),
        );
        let v6 = egress_network_policy(&pol("n", &ab, "2001:db8::1/64", &none, None), &q, &no_dns)
            .expect("builds");
        assert_eq!(
            v6["spec"]["egress"],
            json!([{"to": [
                {"ipBlock": {"cidr": "::/0", "except": ["2001:db8::/64"]}},
                {"ipBlock": {"cidr": "0.0.0.0/0"}},
            ]}])
        );
        let all_v4 = egress_network_policy(&pol("n", &ab, "0.0.0.0/0", &none, None), &q, &no_dns)
            .expect("builds");
        assert_eq!(
            all_v4["spec"]["egress"],
            json!([{"to": [{"ipBlock": {"cidr": "::/0"}}]}])
        );

        let ports = egress_network_policy(
            &pol("n", &ab, "198.51.100.7/32", &web_ports, None),
            &q,
            &no_dns,
        )
        .expect("builds");
        let open = &ports["spec"]["egress"][1];
        assert_eq!(
            open["to"],
            json!([{"ipBlock": {"cidr": "198.51.100.7/32"}}])
        );
        let tcp: Vec<&Value> = open["ports"]
            .as_array()
            .expect("ports")
            .iter()
            .filter(|p| p["protocol"] == "TCP")
            .collect();
        assert_eq!(
            tcp,
            vec![
                &json!({"protocol": "TCP", "port": 1, "endPort": 79}),
                &json!({"protocol": "TCP", "port": 81, "endPort": 442}),
                &json!({"protocol": "TCP", "port": 444, "endPort": 65535}),
            ]
        );
        assert_eq!(
            open["ports"].as_array().map(Vec::len),
            Some(9),
            "TCP, UDP and SCTP"
        );
        assert_eq!(
            ports["metadata"]["annotations"]["riposte.io/ports"],
            "80,443"
        );
        assert!(
            egress_network_policy(&pol("n", &ab, "1.2.3.4/32", &zero, None), &q, &no_dns).is_err()
        );
    }

    #[test]
    fn port_complement_edges() {
        assert_eq!(complement(&[]), vec![(1, 65535)]);
        assert_eq!(complement(&[1]), vec![(2, 65535)]);
        assert_eq!(complement(&[65535]), vec![(1, 65534)]);
        assert_eq!(complement(&[1, 2, 65535]), vec![(3, 65534)]);
    }

    #[test]
    fn cilium_policy_denies_without_default_deny() {
        let (selector, none, https, ab) = (
            sel(&[("riposte.io/egress-1", "true")]),
            spec(&[]),
            spec(&[443]),
            sel(&[("a", "b")]),
        );
        let got = egress_cilium_policy(&pol(
            "riposte-egress-1",
            &selector,
            "203.0.113.9/32",
            &none,
            Some("shop/web-1"),
        ))
        .expect("builds");
        let mut meta = egress_meta("riposte-egress-1", "203.0.113.9/32", None);
        meta["annotations"]["riposte.io/target-pod"] = json!("shop/web-1");
        assert_eq!(
            got,
            json!({
                "apiVersion": "cilium.io/v2",
                "kind": "CiliumNetworkPolicy",
                "metadata": meta,
                "spec": {
                    "endpointSelector": {"matchLabels": {"riposte.io/egress-1": "true"}},
                    "enableDefaultDeny": {"egress": false, "ingress": false},
                    "egressDeny": [{"toCIDRSet": [{"cidr": "203.0.113.9/32"}]}],
                },
            })
        );
        let with_ports =
            egress_cilium_policy(&pol("n", &ab, "203.0.113.9/32", &https, None)).expect("builds");
        assert_eq!(
            with_ports["spec"]["egressDeny"],
            json!([{"toCIDRSet": [{"cidr": "203.0.113.9/32"}], "toPorts": [{"ports": [{"port": "443", "protocol": "ANY"}]}]}])
        );
    }

    #[test]
    fn calico_policy_denies_then_passes_to_the_next_tier() {
        let egress = EgressConfig {
            backend: crate::kubernetes::config::EgressBackend::Calico,
            ..EgressConfig::default()
        };
        let (selector, none, dns, ab) = (
            sel(&[("app", "web"), ("tier", "front")]),
            spec(&[]),
            spec(&[53]),
            sel(&[("a", "b")]),
        );
        let got = egress_calico_policy(
            &pol(
                "riposte.riposte-egress-1",
                &selector,
                "203.0.113.0/24",
                &none,
                None,
            ),
            &egress,
        )
        .expect("builds");
        assert_eq!(
            got,
            json!({
                "apiVersion": "crd.projectcalico.org/v1",
                "kind": "NetworkPolicy",
                "metadata": egress_meta("riposte.riposte-egress-1", "203.0.113.0/24", None),
                "spec": {
                    "tier": "riposte",
                    "order": 100.0,
                    "selector": "app == 'web' && tier == 'front'",
                    "types": ["Egress"],
                    "egress": [
                        {"action": "Deny", "destination": {"nets": ["203.0.113.0/24"]}},
                        {"action": "Pass"},
                    ],
                },
            })
        );
        let default_tier = EgressConfig {
            calico_tier: "default".into(),
            ..egress
        };
        let ports = egress_calico_policy(
            &pol("default.n", &ab, "203.0.113.0/24", &dns, None),
            &default_tier,
        )
        .expect("builds");
        assert_eq!(
            ports["spec"]["egress"],
            json!([
                {"action": "Deny", "protocol": "TCP", "destination": {"nets": ["203.0.113.0/24"], "ports": [53]}},
                {"action": "Deny", "protocol": "UDP", "destination": {"nets": ["203.0.113.0/24"], "ports": [53]}},
                {"action": "Deny", "protocol": "SCTP", "destination": {"nets": ["203.0.113.0/24"], "ports": [53]}},
            ]),
            "no Pass in the default tier"
        );
        assert_eq!(calico_policy_name("riposte", "x"), "riposte.x");
    }

    #[test]
    fn calico_tier_object() {
        assert_eq!(
            calico_tier(&EgressConfig::default()),
            json!({
                "apiVersion": "crd.projectcalico.org/v1",
                "kind": "Tier",
                "metadata": {"name": "riposte", "labels": {"app.kubernetes.io/managed-by": "riposte"}},
                "spec": {"order": 100.0},
            })
        );
    }
}
