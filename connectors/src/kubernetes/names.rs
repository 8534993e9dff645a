//! The keys and names Riposte writes into the cluster.
//!
//! Everything Riposte creates carries `app.kubernetes.io/managed-by: riposte`
//! and the action id; object names are derived from the action id so that a
//! retried or redelivered action applies the same object again instead of a
//! second one.

/// `app.kubernetes.io/managed-by`, the well-known ownership label.
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// The value of [`MANAGED_BY`] on everything Riposte creates.
pub const MANAGED_BY_VALUE: &str = "riposte";
/// The action that created or last applied an object (label-safe form).
pub const ACTION_ID_LABEL: &str = "riposte.io/action-id";
/// What a Riposte-made policy is for: [`ROLE_QUARANTINE`] or [`ROLE_EGRESS`].
pub const ROLE_LABEL: &str = "riposte.io/role";
pub const ROLE_QUARANTINE: &str = "quarantine";
pub const ROLE_EGRESS: &str = "egress-block";

/// Why the pod was quarantined (free text from the playbook).
pub const ANN_REASON: &str = "riposte.io/reason";
/// The playbook that decided.
pub const ANN_PLAYBOOK: &str = "riposte.io/playbook";
/// The event that triggered it.
pub const ANN_EVENT_ID: &str = "riposte.io/event-id";
/// The full action id (annotations have no 63-character limit).
pub const ANN_ACTION_ID: &str = "riposte.io/action-id";
/// RFC 3339, when the pod was first isolated.
pub const ANN_QUARANTINED_AT: &str = "riposte.io/quarantined-at";
/// RFC 3339, when the quarantine lapses; absent: until released by hand.
pub const ANN_EXPIRES_AT: &str = "riposte.io/expires-at";
/// JSON object of the labels that `detach` took off the pod.
pub const ANN_DETACHED_LABELS: &str = "riposte.io/detached-labels";
/// The blocked network of an egress policy.
pub const ANN_CIDR: &str = "riposte.io/cidr";
/// The blocked ports of an egress policy (comma-separated), absent: all.
pub const ANN_PORTS: &str = "riposte.io/ports";
/// The namespace/name of the pod an egress block targets, when one pod.
pub const ANN_TARGET_POD: &str = "riposte.io/target-pod";

/// The annotations a quarantine writes, in the order `release` clears them.
pub const QUARANTINE_ANNOTATIONS: [&str; 7] = [
    ANN_REASON,
    ANN_PLAYBOOK,
    ANN_EVENT_ID,
    ANN_ACTION_ID,
    ANN_QUARANTINED_AT,
    ANN_EXPIRES_AT,
    ANN_DETACHED_LABELS,
];

/// Riposte's own annotation prefix: kept by the pod index, reserved for
/// Riposte's bookkeeping in `label`/`annotate`.
pub const RIPOSTE_PREFIX: &str = "riposte.io/";

/// The reporting controller named on Riposte's Kubernetes Events.
pub const EVENT_REPORTING_CONTROLLER: &str = "riposte.io/riposte";

/// 64-bit FNV-1a: stable across Rust releases and platforms, unlike std's
/// hasher, because names derived from it must survive upgrades.
pub fn stable_hash(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            h ^= 0xff;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        for b in part.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// 16 hex digits of [`stable_hash`].
pub fn short_id(parts: &[&str]) -> String {
    format!("{:016x}", stable_hash(parts))
}

/// The action id as a label value: itself when it fits the label syntax
/// (the engine's ids are 32 hex digits), a stable hash of it otherwise.
pub fn action_label_value(action_id: &str) -> String {
    if crate::kubernetes::labels::validate_label_value(ACTION_ID_LABEL, action_id).is_ok()
        && !action_id.is_empty()
    {
        action_id.to_owned()
    } else {
        short_id(&[action_id])
    }
}

/// The egress policy of one block action.
pub fn egress_policy_name(action_id: &str) -> String {
    format!("riposte-egress-{}", short_id(&[action_id]))
}

/// The pod label that lets an egress policy select exactly the targeted
/// pod: NetworkPolicies select by label only, never by name.
pub fn egress_pod_label(action_id: &str) -> String {
    format!("riposte.io/egress-{}", short_id(&[action_id]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kubernetes::labels;

    #[test]
    fn derived_names_are_stable_and_valid() {
        // Pinned: a change would orphan policies created by older releases.
        assert_eq!(short_id(&["a"]), "af63dc4c8601ec8c");
        let id = "3f2a9c0e4b5d6e7f8091a2b3c4d5e6f7";
        assert_eq!(egress_policy_name(id), egress_policy_name(id));
        assert_ne!(egress_policy_name(id), egress_policy_name("other"));
        assert!(labels::validate_object_name("policy", &egress_policy_name(id)).is_ok());
        assert!(labels::validate_key("label", &egress_pod_label(id)).is_ok());
    }

    #[test]
    fn hash_separates_parts() {
        assert_ne!(stable_hash(&["ab", "c"]), stable_hash(&["a", "bc"]));
    }

    #[test]
    fn action_ids_become_label_values() {
        let id = "3f2a9c0e4b5d6e7f8091a2b3c4d5e6f7";
        assert_eq!(action_label_value(id), id);
        let long = "x".repeat(80);
        let v = action_label_value(&long);
        assert_eq!(v.len(), 16);
        assert!(labels::validate_label_value(ACTION_ID_LABEL, &v).is_ok());
        assert_eq!(action_label_value("has space").len(), 16);
        assert_eq!(action_label_value("").len(), 16);
    }
}
