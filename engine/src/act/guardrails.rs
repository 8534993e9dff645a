//! Guardrails: what Riposte must never do automatically.
//!
//! Every Kubernetes intent passes here, per pod, before the dispatcher acts.
//! The rules exist because the input is untrusted: whoever can spoof a
//! firewall log can make a playbook ask for anything, so the blast radius is
//! bounded here, not in each playbook.
//!
//! - Protected namespaces (kube-system, kube-public, kube-node-lease,
//!   Riposte's own and the firewall's) are never touched.
//! - A pod or namespace labelled `riposte.io/exempt=true` is never touched.
//! - A target whose pod could not be resolved is refused ("unresolved pod");
//!   notifications about it still go out.
//! - Containments (quarantine, delete, egress blocks) are rate-capped per
//!   minute, globally and per namespace.
//! - At most a share (default 50%) of one workload's ready pods may be
//!   quarantined or deleted at once — rounded down, but at least one pod of
//!   any workload, so a single compromised replica can still be contained.
//!
//! Every refusal carries a fixed code (for metrics) and a message (for the
//! audit trail and the Kubernetes Event).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Deserialize;

/// `[guardrails]` in the config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GuardrailConfig {
    /// Namespaces Riposte never acts in. Riposte's own namespace and the
    /// firewall's belong here (the Helm chart adds them).
    pub protected_namespaces: Vec<String>,
    /// A pod or namespace carrying this label with value `true` is exempt.
    pub exempt_label: String,
    /// Containments per minute, cluster-wide.
    pub max_containments_per_minute: usize,
    /// Containments per minute in one namespace.
    pub max_containments_per_namespace_per_minute: usize,
    /// Largest share of one workload's ready pods that may be contained at
    /// once (0.0–1.0).
    pub max_workload_share: f64,
}

impl Default for GuardrailConfig {
    fn default() -> Self {
        GuardrailConfig {
            protected_namespaces: ["kube-system", "kube-public", "kube-node-lease"]
                .map(String::from)
                .to_vec(),
            exempt_label: "riposte.io/exempt".into(),
            max_containments_per_minute: 20,
            max_containments_per_namespace_per_minute: 10,
            max_workload_share: 0.5,
        }
    }
}

/// Why `[guardrails]` cannot work.
#[derive(Debug, thiserror::Error)]
pub enum GuardrailConfigError {
    #[error("max_workload_share {0} is not between 0 and 1")]
    WorkloadShare(f64),
}

impl GuardrailConfig {
    pub fn validate(&self) -> Result<(), GuardrailConfigError> {
        if !(0.0..=1.0).contains(&self.max_workload_share) {
            return Err(GuardrailConfigError::WorkloadShare(self.max_workload_share));
        }
        Ok(())
    }
}

/// How an intent would change a pod, as far as guardrails care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Cuts the pod off or removes it: quarantine, delete, egress block.
    Containment,
    /// Changes the pod's metadata: label, annotate.
    Change,
    /// Undoes Riposte's own work or only reports: release, events.
    Harmless,
}

/// What guardrails need to know about the pod an intent targets.
#[derive(Debug, Clone, Default)]
pub struct PodFacts {
    pub namespace: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub namespace_labels: BTreeMap<String, String>,
    /// The top workload (`Deployment/checkout`), when the pod has one.
    pub workload: Option<(String, String)>,
    /// Ready pods of the workload (1 for a bare pod).
    pub workload_ready: usize,
    /// Pods of the workload already quarantined.
    pub workload_contained: usize,
    /// This pod is already quarantined: re-applying is idempotent and free.
    pub already_contained: bool,
}

/// Why an intent was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Fixed, low-cardinality: `protected_namespace`, `exempt`,
    /// `unresolved_pod`, `rate_limit`, `namespace_rate_limit`,
    /// `workload_share`.
    pub code: &'static str,
    pub message: String,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// The guardrails, with their rate windows.
#[derive(Debug)]
pub struct Guardrails {
    config: GuardrailConfig,
    windows: Mutex<Windows>,
}

#[derive(Debug, Default)]
struct Windows {
    global: VecDeque<Instant>,
    per_namespace: HashMap<String, VecDeque<Instant>>,
}

const WINDOW: Duration = Duration::from_secs(60);

fn prune(window: &mut VecDeque<Instant>, now: Instant) {
    while window
        .front()
        .is_some_and(|t| now.duration_since(*t) >= WINDOW)
    {
        window.pop_front();
    }
}

impl Guardrails {
    pub fn new(config: GuardrailConfig) -> Guardrails {
        Guardrails {
            config,
            windows: Mutex::new(Windows::default()),
        }
    }

    pub fn config(&self) -> &GuardrailConfig {
        &self.config
    }

    /// Refusal for a target whose pod is unknown.
    pub fn unresolved(what: &str) -> Refusal {
        Refusal {
            code: "unresolved_pod",
            message: format!(
                "{what}: no pod is known for this target; nothing is done to it automatically"
            ),
        }
    }

    /// Checks one pod; a containment that passes takes its slot in the rate
    /// windows at once, so concurrent checks cannot overshoot the cap.
    pub fn check(&self, pod: &PodFacts, effect: Effect) -> Result<(), Refusal> {
        self.check_at(pod, effect, Instant::now())
    }

    fn check_at(&self, pod: &PodFacts, effect: Effect, now: Instant) -> Result<(), Refusal> {
        if effect == Effect::Harmless {
            return Ok(());
        }
        let who = format!("{}/{}", pod.namespace, pod.name);
        if self.config.protected_namespaces.contains(&pod.namespace) {
            return Err(Refusal {
                code: "protected_namespace",
                message: format!("{who}: namespace {} is protected", pod.namespace),
            });
        }
        let exempt = |labels: &BTreeMap<String, String>| {
            labels
                .get(&self.config.exempt_label)
                .is_some_and(|v| v == "true")
        };
        if exempt(&pod.labels) {
            return Err(Refusal {
                code: "exempt",
                message: format!(
                    "{who}: the pod is labelled {}=true",
                    self.config.exempt_label
                ),
            });
        }
        if exempt(&pod.namespace_labels) {
            return Err(Refusal {
                code: "exempt",
                message: format!(
                    "{who}: namespace {} is labelled {}=true",
                    pod.namespace, self.config.exempt_label
                ),
            });
        }
        if effect != Effect::Containment || pod.already_contained {
            return Ok(());
        }
        let ready = pod.workload_ready.max(1);
        let allowed = ((ready as f64 * self.config.max_workload_share).floor() as usize).max(1);
        if pod.workload_contained + 1 > allowed {
            let workload = pod
                .workload
                .as_ref()
                .map_or_else(|| who.clone(), |(k, n)| format!("{k}/{n}"));
            return Err(Refusal {
                code: "workload_share",
                message: format!(
                    "{who}: {} of {ready} ready pods of {workload} are already contained; at most {allowed} may be ({}%)",
                    pod.workload_contained,
                    (self.config.max_workload_share * 100.0).round()
                ),
            });
        }
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        let Windows {
            global,
            per_namespace,
        } = &mut *windows;
        prune(global, now);
        if global.len() >= self.config.max_containments_per_minute {
            return Err(Refusal {
                code: "rate_limit",
                message: format!(
                    "{who}: {} containments in the last minute, the cluster-wide cap",
                    global.len()
                ),
            });
        }
        let ns_window = per_namespace.entry(pod.namespace.clone()).or_default();
        prune(ns_window, now);
        if ns_window.len() >= self.config.max_containments_per_namespace_per_minute {
            return Err(Refusal {
                code: "namespace_rate_limit",
                message: format!(
                    "{who}: {} containments in namespace {} in the last minute, its cap",
                    ns_window.len(),
                    pod.namespace
                ),
            });
        }
        global.push_back(now);
        ns_window.push_back(now);
        // Forget namespaces that went quiet, so spoofed namespace names
        // cannot grow the map without bound.
        if per_namespace.len() > 10_000 {
            per_namespace.retain(|_, w| {
                prune(w, now);
                !w.is_empty()
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(ns: &str, name: &str) -> PodFacts {
        PodFacts {
            namespace: ns.into(),
            name: name.into(),
            workload: Some(("Deployment".into(), "web".into())),
            workload_ready: 10,
            ..PodFacts::default()
        }
    }

    fn guard() -> Guardrails {
        Guardrails::new(GuardrailConfig::default())
    }

    #[test]
    fn protected_namespaces_are_refused_for_everything_but_harmless_intents() {
        let g = guard();
        let p = pod("kube-system", "coredns-1");
        assert_eq!(
            g.check(&p, Effect::Containment).map_err(|r| r.code),
            Err("protected_namespace")
        );
        assert_eq!(
            g.check(&p, Effect::Change).map_err(|r| r.code),
            Err("protected_namespace")
        );
        assert!(g.check(&p, Effect::Harmless).is_ok());
    }

    #[test]
    fn exempt_pods_and_namespaces_are_refused() {
        let g = guard();
        let mut p = pod("shop", "a");
        p.labels.insert("riposte.io/exempt".into(), "true".into());
        assert_eq!(
            g.check(&p, Effect::Containment).map_err(|r| r.code),
            Err("exempt")
        );
        let mut q = pod("shop", "b");
        q.namespace_labels
            .insert("riposte.io/exempt".into(), "true".into());
        assert_eq!(
            g.check(&q, Effect::Change).map_err(|r| r.code),
            Err("exempt")
        );
        let mut r = pod("shop", "c");
        r.labels.insert("riposte.io/exempt".into(), "false".into());
        assert!(g.check(&r, Effect::Containment).is_ok());
    }

    #[test]
    fn workload_share_caps_containment_but_one_pod_is_always_possible() {
        let g = guard();
        let mut p = pod("shop", "web-1");
        p.workload_contained = 5;
        let refused = g
            .check(&p, Effect::Containment)
            .expect_err("half of 10 already");
        assert_eq!(refused.code, "workload_share");
        assert!(
            refused.message.contains("Deployment/web"),
            "{}",
            refused.message
        );
        p.workload_contained = 4;
        assert!(g.check(&p, Effect::Containment).is_ok());
        // A single-replica workload: its one pod can be contained.
        let mut single = pod("shop", "solo");
        single.workload_ready = 1;
        assert!(g.check(&single, Effect::Containment).is_ok());
        single.workload_contained = 1;
        assert!(g.check(&single, Effect::Containment).is_err());
        // Re-applying to a pod already contained is free.
        single.already_contained = true;
        assert!(g.check(&single, Effect::Containment).is_ok());
    }

    #[test]
    fn rate_caps_hold_globally_and_per_namespace_and_slide() {
        let g = Guardrails::new(GuardrailConfig {
            max_containments_per_minute: 5,
            max_containments_per_namespace_per_minute: 3,
            ..GuardrailConfig::default()
        });
        let t0 = Instant::now();
        let results: Vec<_> = (0..5)
            .map(|i| {
                g.check_at(&pod("shop", &format!("p{i}")), Effect::Containment, t0)
                    .map_err(|r| r.code)
            })
            .collect();
        assert_eq!(
            results,
            vec![
                Ok(()),
                Ok(()),
                Ok(()),
                Err("namespace_rate_limit"),
                Err("namespace_rate_limit")
            ]
        );
        assert!(g
            .check_at(&pod("web", "w1"), Effect::Containment, t0)
            .is_ok());
        assert!(g
            .check_at(&pod("web", "w2"), Effect::Containment, t0)
            .is_ok());
        assert_eq!(
            g.check_at(&pod("batch", "b1"), Effect::Containment, t0)
                .map_err(|r| r.code),
            Err("rate_limit")
        );
        // A minute later the window has slid.
        let later = t0 + Duration::from_secs(61);
        assert!(g
            .check_at(&pod("batch", "b1"), Effect::Containment, later)
            .is_ok());
        // Changes are not containments and are not rate-capped.
        assert!(g.check_at(&pod("shop", "x"), Effect::Change, t0).is_ok());
    }

    #[test]
    fn share_outside_zero_to_one_is_invalid() {
        let c = GuardrailConfig {
            max_workload_share: 1.5,
            ..GuardrailConfig::default()
        };
        assert!(c.validate().is_err());
    }
}
