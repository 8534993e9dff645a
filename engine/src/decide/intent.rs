//! What a playbook decides: intents, their targets, and their validation.
//!
//! An intent is data, never an action: playbooks return intents, the
//! guardrails judge them and the dispatcher carries them out. Everything is
//! validated when the playbook makes the intent, so a malformed label or a ttl
//! of "forever" stops the script at the line that wrote it instead of failing
//! later inside a connector.
//!
//! JSON shape (golden files, the audit trail and `POST /v1/actions`): one flat
//! object per intent, the action named by `"action"`, e.g.
//!
//! ```json
//! {"action_id":"3f…","action":"quarantine","target":{"kind":"pod","namespace":"shop","name":"checkout-7d9f"},"ttl":"4h","reason":"C2"}
//! ```
//!
//! Durations (`ttl`) serialize as canonical strings (`"1d12h"`) and also
//! deserialize from a number of seconds. Intents that need a human's approval
//! are wrapped as `{"action":"approve","intent":{…},"timeout":"30m",
//! "default":"drop"}`.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;
use riposte_connectors::kubernetes::labels;
use riposte_firewall::addr;
use riposte_firewall::edl::IpEntry;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Longest ttl or window a playbook may ask for: every automatic action
/// expires within a year.
pub const MAX_DURATION_SECS: u64 = 365 * 86_400;

/// A validation failure, worded for the playbook author.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidIntent(pub String);

impl fmt::Display for InvalidIntent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InvalidIntent {}

fn invalid<T>(msg: impl Into<String>) -> Result<T, InvalidIntent> {
    Err(InvalidIntent(msg.into()))
}

/// One decision of a playbook: an action and a stable id for idempotence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Intent {
    /// xxh3-128 of (event id, playbook, action), hex: the same event through
    /// the same playbook always yields the same id, so a redelivered log or a
    /// retried dispatch acts once.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub action_id: String,
    #[serde(flatten)]
    pub action: Action,
}

impl Intent {
    /// An intent whose id is derived from the event and the playbook.
    pub fn new(event_id: &str, playbook: &str, action: Action) -> Intent {
        let action_id = action_id(event_id, playbook, &action);
        Intent { action_id, action }
    }
}

/// The stable idempotency key of an action made for an event by a playbook.
pub fn action_id(event_id: &str, playbook: &str, action: &Action) -> String {
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    hasher.update(event_id.as_bytes());
    hasher.update(&[0]);
    hasher.update(playbook.as_bytes());
    hasher.update(&[0]);
    // The JSON of an action is deterministic (struct fields in declaration
    // order, maps are BTreeMaps): hash it as it is written, no buffer.
    let _ = serde_json::to_writer(HashWriter(&mut hasher), action);
    format!("{:032x}", hasher.digest128())
}

struct HashWriter<'a>(&'a mut xxhash_rust::xxh3::Xxh3);

impl std::io::Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What a playbook may ask for. See the module docs for the JSON shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Label the pod `riposte.io/quarantine` so the deny-all policy selects it.
    Quarantine {
        target: Target,
        ttl: Ttl,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// Lift a quarantine before its ttl.
    Release {
        target: Target,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// Set labels; a `null` value removes the label.
    Label {
        target: Target,
        labels: BTreeMap<String, Option<String>>,
    },
    /// Set annotations; a `null` value removes the annotation.
    Annotate {
        target: Target,
        annotations: BTreeMap<String, Option<String>>,
    },
    /// Deny the target's egress to a network (NetworkPolicy).
    BlockEgress {
        target: Target,
        #[serde(deserialize_with = "canonical_net")]
        cidr: IpNet,
        ttl: Ttl,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        ports: Vec<u16>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// Register an IP tag on the firewall (dynamic address groups).
    TagIp {
        #[serde(deserialize_with = "canonical_ip")]
        ip: IpAddr,
        tag: String,
        ttl: Ttl,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    UntagIp {
        #[serde(deserialize_with = "canonical_ip")]
        ip: IpAddr,
        tag: String,
    },
    /// Add an entry to an external dynamic list the firewall polls.
    EdlAdd {
        list: String,
        value: String,
        ttl: Ttl,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    EdlRemove {
        list: String,
        value: String,
    },
    /// Tell a configured notifier (a SOAR, a webhook receiver).
    Notify {
        target: String,
        fields: serde_json::Value,
    },
    /// Publish a message on the AMQP bus.
    Publish {
        exchange: String,
        routing_key: String,
        payload: serde_json::Value,
    },
    /// Record a Kubernetes Event (type Warning) on the target.
    K8sEvent {
        target: Target,
        reason: String,
        message: String,
    },
    DeletePod {
        target: Target,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// A line for the decision record and the service log.
    Log {
        level: LogLevel,
        message: String,
    },
    /// Carry `intent` out only once someone approves it; after `timeout`,
    /// `default` decides.
    Approve {
        intent: Box<Action>,
        timeout: Ttl,
        default: ApprovalDefault,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        approvers: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
}

/// What happens to an intent awaiting approval when nobody decides in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApprovalDefault {
    Apply,
    Drop,
}

impl ApprovalDefault {
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalDefault::Apply => "apply",
            ApprovalDefault::Drop => "drop",
        }
    }
}

impl Action {
    /// Every action name, in [`Action::ordinal`] order.
    pub const NAMES: [&'static str; 15] = [
        "quarantine",
        "release",
        "label",
        "annotate",
        "block_egress",
        "tag_ip",
        "untag_ip",
        "edl_add",
        "edl_remove",
        "notify",
        "publish",
        "k8s_event",
        "delete_pod",
        "log",
        "approve",
    ];

    /// The action's index in [`Action::NAMES`].
    pub fn ordinal(&self) -> usize {
        Action::NAMES
            .iter()
            .position(|n| *n == self.name())
            .unwrap_or(0)
    }

    /// The `action` name in JSON, for metrics labels and tables.
    pub fn name(&self) -> &'static str {
        match self {
            Action::Quarantine { .. } => "quarantine",
            Action::Release { .. } => "release",
            Action::Label { .. } => "label",
            Action::Annotate { .. } => "annotate",
            Action::BlockEgress { .. } => "block_egress",
            Action::TagIp { .. } => "tag_ip",
            Action::UntagIp { .. } => "untag_ip",
            Action::EdlAdd { .. } => "edl_add",
            Action::EdlRemove { .. } => "edl_remove",
            Action::Notify { .. } => "notify",
            Action::Publish { .. } => "publish",
            Action::K8sEvent { .. } => "k8s_event",
            Action::DeletePod { .. } => "delete_pod",
            Action::Log { .. } => "log",
            Action::Approve { .. } => "approve",
        }
    }

    /// The Kubernetes target, for the actions that have one.
    pub fn target(&self) -> Option<&Target> {
        match self {
            Action::Quarantine { target, .. }
            | Action::Release { target, .. }
            | Action::Label { target, .. }
            | Action::Annotate { target, .. }
            | Action::BlockEgress { target, .. }
            | Action::K8sEvent { target, .. }
            | Action::DeletePod { target, .. } => Some(target),
            _ => None,
        }
    }

    /// A one-line human summary, for `riposte replay --table`.
    pub fn summary(&self) -> String {
        match self {
            Action::Quarantine { target, ttl, .. } => format!("{target} for {ttl}"),
            Action::Release { target, .. } | Action::DeletePod { target, .. } => target.to_string(),
            Action::Label { target, labels } => format!("{target} {}", kv_summary(labels)),
            Action::Annotate {
                target,
                annotations,
            } => format!("{target} {}", kv_summary(annotations)),
            Action::BlockEgress {
                target, cidr, ttl, ..
            } => format!("{target} -> {cidr} for {ttl}"),
            Action::TagIp { ip, tag, ttl, .. } => format!("{ip} +{tag} for {ttl}"),
            Action::UntagIp { ip, tag } => format!("{ip} -{tag}"),
            Action::EdlAdd {
                list, value, ttl, ..
            } => format!("{list} +{value} for {ttl}"),
            Action::EdlRemove { list, value } => format!("{list} -{value}"),
            Action::Notify { target, .. } => target.clone(),
            Action::Publish {
                exchange,
                routing_key,
                ..
            } => format!("{exchange} {routing_key}"),
            Action::K8sEvent { target, reason, .. } => format!("{target} {reason}"),
            Action::Log { level, message } => format!("{level}: {message}"),
            Action::Approve {
                intent, timeout, ..
            } => format!("{} {} (waits {timeout})", intent.name(), intent.summary()),
        }
    }
}

impl Action {
    /// Checks what a script's intent makers check, for intents that arrive
    /// as JSON (`POST /v1/actions`): names, labels, addresses, text.
    pub fn validate(&self) -> Result<(), InvalidIntent> {
        let reason = validate_reason;
        let target = validate_target;
        match self {
            Action::Quarantine {
                target: t,
                reason: r,
                ..
            }
            | Action::Release {
                target: t,
                reason: r,
            }
            | Action::DeletePod {
                target: t,
                reason: r,
            } => {
                target(t)?;
                reason(r)
            }
            Action::Label { target: t, labels } => {
                target(t)?;
                validate_label_changes(labels)
            }
            Action::Annotate {
                target: t,
                annotations,
            } => {
                target(t)?;
                validate_annotation_changes(annotations)
            }
            Action::BlockEgress {
                target: t,
                reason: r,
                ports,
                ..
            } => {
                target(t)?;
                if ports.contains(&0) {
                    return invalid("ports must be in 1..=65535");
                }
                reason(r)
            }
            Action::TagIp { tag, reason: r, .. } => {
                validate_tag(tag)?;
                reason(r)
            }
            Action::UntagIp { tag, .. } => validate_tag(tag),
            Action::EdlAdd {
                list,
                value,
                reason: r,
                ..
            } => {
                validate_name("list", list)?;
                validate_edl_value(value)?;
                reason(r)
            }
            Action::EdlRemove { list, value } => {
                validate_name("list", list)?;
                validate_edl_value(value).map(|_| ())
            }
            Action::Notify { target, .. } => validate_name("notifier", target),
            Action::Publish {
                exchange,
                routing_key,
                ..
            } => {
                validate_amqp("exchange", exchange, true)?;
                validate_amqp("routing key", routing_key, false)
            }
            Action::K8sEvent {
                target: t,
                reason: r,
                message,
            } => {
                target(t)?;
                validate_event_reason(r)?;
                validate_text("message", message, MAX_REASON_LEN)
            }
            Action::Log { message, .. } => validate_text("message", message, 4_096),
            Action::Approve {
                intent,
                approvers,
                reason: r,
                ..
            } => validate_approval(intent, approvers, r),
        }
    }
}

/// Longest reason, and Kubernetes event message, an intent may carry.
const MAX_REASON_LEN: usize = 1_024;

fn validate_reason(reason: &Option<String>) -> Result<(), InvalidIntent> {
    match reason {
        Some(r) => validate_text("reason", r, MAX_REASON_LEN),
        None => Ok(()),
    }
}

fn validate_target(target: &Target) -> Result<(), InvalidIntent> {
    match target {
        Target::Pod { namespace, name } => {
            validate_namespace(namespace)?;
            validate_pod_name(name)
        }
        Target::Selector { namespace, labels } => {
            Target::selector(namespace, labels.clone()).map(|_| ())
        }
        Target::Unresolved { .. } => Ok(()),
    }
}

/// Labels to set (`Some`) or remove (`None`).
fn validate_label_changes(labels: &BTreeMap<String, Option<String>>) -> Result<(), InvalidIntent> {
    for (k, v) in labels {
        validate_label_key(k)?;
        if let Some(v) = v {
            validate_label_value(k, v)?;
        }
    }
    Ok(())
}

/// Annotations to set (`Some`) or remove (`None`).
fn validate_annotation_changes(
    annotations: &BTreeMap<String, Option<String>>,
) -> Result<(), InvalidIntent> {
    for (k, v) in annotations {
        validate_label_key(k)?;
        if let Some(v) = v {
            validate_text(&format!("annotation `{k}`"), v, 64 * 1024)?;
        }
    }
    Ok(())
}

/// `approve` wraps one action that can wait for a human.
fn validate_approval(
    intent: &Action,
    approvers: &[String],
    reason: &Option<String>,
) -> Result<(), InvalidIntent> {
    if matches!(intent, Action::Approve { .. } | Action::Log { .. }) {
        return invalid("approve wraps one action other than approve or log");
    }
    for a in approvers {
        validate_text("approver", a, 256)?;
    }
    validate_reason(reason)?;
    intent.validate()
}

fn kv_summary(map: &BTreeMap<String, Option<String>>) -> String {
    let parts: Vec<String> = map
        .iter()
        .map(|(k, v)| match v {
            Some(v) => format!("{k}={v}"),
            None => format!("-{k}"),
        })
        .collect();
    parts.join(",")
}

/// Addresses in intents that arrive as JSON (`POST /v1/actions`, the bus,
/// the store) are put in canonical form like those a script makes, so
/// records and idempotency see one spelling per host.
fn canonical_ip<'de, D: Deserializer<'de>>(d: D) -> Result<IpAddr, D::Error> {
    IpAddr::deserialize(d).map(addr::canonical)
}

fn canonical_net<'de, D: Deserializer<'de>>(d: D) -> Result<IpNet, D::Error> {
    IpNet::deserialize(d).map(addr::canonical_net)
}

/// Who an action is for, resolved when the intent is made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Target {
    /// One pod.
    Pod { namespace: String, name: String },
    /// Every pod of a namespace carrying all these labels.
    Selector {
        namespace: String,
        labels: BTreeMap<String, String>,
    },
    /// A pod known only by its address: the event had no pod context for it.
    /// Kept so the decision record shows what the playbook wanted; guardrails
    /// refuse it as "unresolved pod".
    Unresolved {
        #[serde(deserialize_with = "canonical_ip")]
        ip: IpAddr,
    },
}

impl Target {
    pub fn pod(namespace: &str, name: &str) -> Result<Target, InvalidIntent> {
        validate_namespace(namespace)?;
        validate_pod_name(name)?;
        Ok(Target::Pod {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        })
    }

    pub fn selector(
        namespace: &str,
        labels: BTreeMap<String, String>,
    ) -> Result<Target, InvalidIntent> {
        validate_namespace(namespace)?;
        if labels.is_empty() {
            // An empty selector is every pod of the namespace.
            return invalid(
                "a selector needs at least one label (an empty one selects the whole namespace)",
            );
        }
        for (k, v) in &labels {
            validate_label_key(k)?;
            validate_label_value(k, v)?;
        }
        Ok(Target::Selector {
            namespace: namespace.to_owned(),
            labels,
        })
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Pod { namespace, name } => write!(f, "pod {namespace}/{name}"),
            Target::Selector { namespace, labels } => {
                write!(f, "pods {namespace}/")?;
                let mut first = true;
                for (k, v) in labels {
                    if !first {
                        f.write_str(",")?;
                    }
                    first = false;
                    write!(f, "{k}={v}")?;
                }
                Ok(())
            }
            Target::Unresolved { ip } => write!(f, "unresolved pod {ip}"),
        }
    }
}

/// `log` levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

impl LogLevel {
    pub fn parse(s: &str) -> Result<LogLevel, InvalidIntent> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "trace" => LogLevel::Trace,
            "debug" => LogLevel::Debug,
            "info" => LogLevel::Info,
            "warn" | "warning" => LogLevel::Warn,
            "error" => LogLevel::Error,
            _ => {
                return invalid(format!(
                    "log level `{s}` is not one of trace, debug, info, warn, error"
                ))
            }
        })
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        })
    }
}

/// A positive duration of at most [`MAX_DURATION_SECS`], in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ttl(u64);

impl Ttl {
    pub fn from_secs(secs: u64) -> Result<Ttl, InvalidIntent> {
        if secs == 0 {
            return invalid("a ttl must be positive");
        }
        if secs > MAX_DURATION_SECS {
            return invalid(format!(
                "{secs}s is longer than the 365d maximum: every automatic action must expire"
            ));
        }
        Ok(Ttl(secs))
    }

    pub fn parse(s: &str) -> Result<Ttl, InvalidIntent> {
        Ttl::from_secs(parse_duration(s)?)
    }

    pub fn as_secs(self) -> u64 {
        self.0
    }
}

impl fmt::Display for Ttl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        for (unit, secs) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
            if rest >= secs {
                write!(f, "{}{unit}", rest / secs)?;
                rest %= secs;
            }
        }
        Ok(())
    }
}

impl Serialize for Ttl {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Ttl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Ttl, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Secs(u64),
            Text(String),
        }
        let ttl = match Raw::deserialize(d)? {
            Raw::Secs(secs) => Ttl::from_secs(secs),
            Raw::Text(s) => Ttl::parse(&s),
        };
        ttl.map_err(serde::de::Error::custom)
    }
}

/// Parses `"90s"`, `"30m"`, `"4h"`, `"7d"`, `"1w"` and sums like `"1h30m"`
/// into seconds. Zero, negative, unitless, "forever" and anything beyond
/// [`MAX_DURATION_SECS`] are refused.
pub fn parse_duration(s: &str) -> Result<u64, InvalidIntent> {
    let text = s.trim();
    if text.is_empty() {
        return invalid("a duration is empty (expected e.g. \"90s\", \"30m\", \"4h\", \"7d\")");
    }
    if text.eq_ignore_ascii_case("forever")
        || text.eq_ignore_ascii_case("never")
        || text.eq_ignore_ascii_case("infinite")
    {
        return invalid(format!(
            "duration \"{text}\" is not allowed: every automatic action must expire (at most 365d)"
        ));
    }
    if text.starts_with('-') {
        return invalid(format!("duration \"{text}\" is negative"));
    }
    let bytes = text.as_bytes();
    let mut total: u64 = 0;
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        if start == i {
            return invalid(format!(
                "duration \"{text}\" is malformed (expected a number then s, m, h, d or w, e.g. \"4h\")"
            ));
        }
        // At most 19 digits fit u64; longer numbers are absurd anyway.
        let number: u64 = text[start..i].parse().map_err(|_| {
            InvalidIntent(format!("duration \"{text}\" is too long (at most 365d)"))
        })?;
        let unit = match bytes.get(i) {
            Some(b's') => 1,
            Some(b'm') => 60,
            Some(b'h') => 3_600,
            Some(b'd') => 86_400,
            Some(b'w') => 7 * 86_400,
            Some(_) => {
                return invalid(format!(
                    "duration \"{text}\" has an unknown unit (use s, m, h, d or w)"
                ))
            }
            None => {
                return invalid(format!(
                    "duration \"{text}\" has no unit (write e.g. \"{number}s\" or \"{number}m\")"
                ))
            }
        };
        i += 1;
        total = number
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .unwrap_or(u64::MAX);
    }
    if total == 0 {
        return invalid(format!("duration \"{text}\" must be positive"));
    }
    if total > MAX_DURATION_SECS {
        return invalid(format!(
            "duration \"{text}\" is longer than the 365d maximum"
        ));
    }
    Ok(total)
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}

/// A Kubernetes namespace name: a DNS-1123 label.
pub fn validate_namespace(s: &str) -> Result<(), InvalidIntent> {
    if labels::is_dns_label(s) {
        Ok(())
    } else {
        invalid(format!(
            "namespace `{s}` is not a valid Kubernetes name (lowercase letters, digits and '-', at most 63)"
        ))
    }
}

/// A pod name: a DNS-1123 subdomain.
pub fn validate_pod_name(s: &str) -> Result<(), InvalidIntent> {
    if dns1123_subdomain(s) {
        Ok(())
    } else {
        invalid(format!(
            "pod name `{s}` is not a valid Kubernetes name (lowercase letters, digits, '-' and '.', at most 253)"
        ))
    }
}

/// A DNS-1123 subdomain whose every part is also at most 63 long: the
/// engine has always refused longer parts, which apimachinery (and so
/// `labels::is_dns_subdomain`) would take; kept so that no input changes fate.
fn dns1123_subdomain(s: &str) -> bool {
    labels::is_dns_subdomain(s) && s.split('.').all(|part| part.len() <= 63)
}

/// A label or annotation key: `[prefix/]name`, the prefix a DNS subdomain.
pub fn validate_label_key(key: &str) -> Result<(), InvalidIntent> {
    let ok = match key.split_once('/') {
        Some((prefix, name)) => dns1123_subdomain(prefix) && labels::is_qualified_name(name),
        None => labels::is_qualified_name(key),
    };
    if ok {
        Ok(())
    } else {
        invalid(format!(
            "`{key}` is not a valid Kubernetes label key ([prefix/]name, name at most 63 of A-Z a-z 0-9 - _ .)"
        ))
    }
}

/// A label value: empty, or a qualified name.
pub fn validate_label_value(key: &str, value: &str) -> Result<(), InvalidIntent> {
    if value.is_empty() || labels::is_qualified_name(value) {
        Ok(())
    } else {
        invalid(format!(
            "label `{key}`: value `{value}` is not a valid Kubernetes label value (at most 63 of A-Z a-z 0-9 - _ ., alphanumeric at both ends)"
        ))
    }
}

/// Names Riposte's own configuration refers to: lists, notifiers.
pub fn validate_name(what: &str, s: &str) -> Result<(), InvalidIntent> {
    let b = s.as_bytes();
    let ok = !b.is_empty()
        && b.len() <= 63
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter()
            .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'_');
    if ok {
        Ok(())
    } else {
        invalid(format!(
            "{what} `{s}` is not a valid name (lowercase letters, digits, '-' and '_', at most 63)"
        ))
    }
}

/// A PAN-OS tag: at most 127 printable characters of `[A-Za-z0-9_.:-]`.
pub fn validate_tag(s: &str) -> Result<(), InvalidIntent> {
    let b = s.as_bytes();
    let ok = !b.is_empty()
        && b.len() <= 127
        && is_alnum(b[0])
        && b.iter()
            .all(|&c| is_alnum(c) || matches!(c, b'-' | b'_' | b'.' | b':'));
    if ok {
        Ok(())
    } else {
        invalid(format!(
            "tag `{s}` is not a valid firewall tag (letters, digits, - _ . :, at most 127)"
        ))
    }
}

/// An address in canonical form: `::ffff:10.0.0.1` is `10.0.0.1`
/// ([`riposte_firewall::addr`]), so every later check and record sees one
/// spelling per host.
pub fn parse_ip(what: &str, s: &str) -> Result<IpAddr, InvalidIntent> {
    s.trim()
        .parse()
        .map(addr::canonical)
        .map_err(|_| InvalidIntent(format!("{what} `{s}` is not an IP address")))
}

/// An address a firewall action may name: one host, not `0.0.0.0`, a
/// broadcast or a multicast group (a garbled log must not tag "everyone").
pub fn parse_host_ip(what: &str, s: &str) -> Result<IpAddr, InvalidIntent> {
    let ip = parse_ip(what, s)?;
    let odd = ip.is_unspecified()
        || ip.is_multicast()
        || matches!(ip, IpAddr::V4(v4) if v4.is_broadcast());
    if odd {
        return invalid(format!("{what} `{ip}` is not a single host"));
    }
    Ok(ip)
}

/// A network: `10.0.0.0/8`, or a plain address meaning a single host; in
/// canonical form (`::ffff:10.0.0.0/104` is `10.0.0.0/8`).
pub fn parse_cidr(s: &str) -> Result<IpNet, InvalidIntent> {
    let t = s.trim();
    if let Ok(net) = t.parse::<IpNet>() {
        return Ok(addr::canonical_net(net));
    }
    if let Ok(ip) = t.parse::<IpAddr>() {
        return Ok(IpNet::from(addr::canonical(ip)));
    }
    invalid(format!("`{s}` is not a CIDR or IP address"))
}

/// An external dynamic list entry: an address, a network, a domain or a URL
/// (PAN-OS EDLs of type IP, domain or URL), one token of printable ASCII.
pub fn validate_edl_value(s: &str) -> Result<String, InvalidIntent> {
    let entry = match parse_cidr(s) {
        Ok(net) => Some(IpEntry::from_net(net)),
        // `a-b` ranges; a domain with a hyphen is no range and falls through.
        Err(_) => s.trim().parse::<IpEntry>().ok(),
    };
    if let Some(entry) = entry {
        // A firewall blocking an EDL entry of 0.0.0.0/1 cuts half the
        // world; so does 64:ff9b::/96 (all of IPv4 through NAT64). This
        // floor holds whatever a list allows: a playbook acts on spoofable
        // logs. The list's own minimum is checked when the entry is added.
        if let Some(why) = entry.too_broad(8, 16) {
            return invalid(format!(
                "EDL entry {why}: too broad to act on automatically"
            ));
        }
        let first = match entry {
            IpEntry::Addr(a) | IpEntry::Range(a, _) => a,
            IpEntry::Net(n) => n.addr(),
        };
        if first.is_unspecified() {
            return invalid(format!("EDL entry `{entry}` is not a host or network"));
        }
        // A single host is written as the bare address.
        return Ok(entry.to_string());
    }
    let ok = !s.is_empty() && s.len() <= 2048 && s.bytes().all(|c| c.is_ascii_graphic());
    if ok {
        Ok(s.to_owned())
    } else {
        invalid(format!(
            "EDL entry `{}` is not an address, network, domain or URL (one token of printable ASCII, at most 2048)",
            truncate(s, 80)
        ))
    }
}

/// A Kubernetes Event reason: UpperCamelCase, at most 128.
pub fn validate_event_reason(s: &str) -> Result<(), InvalidIntent> {
    let b = s.as_bytes();
    if !b.is_empty()
        && b.len() <= 128
        && b[0].is_ascii_uppercase()
        && b.iter().all(|c| is_alnum(*c))
    {
        Ok(())
    } else {
        invalid(format!(
            "event reason `{}` must be UpperCamelCase letters and digits, at most 128 (e.g. \"RiposteQuarantine\")",
            truncate(s, 80)
        ))
    }
}

/// AMQP exchange names and routing keys: at most 255 printable bytes.
pub fn validate_amqp(what: &str, s: &str, allow_empty: bool) -> Result<(), InvalidIntent> {
    let ok =
        (allow_empty || !s.is_empty()) && s.len() <= 255 && s.bytes().all(|c| c.is_ascii_graphic());
    if ok {
        Ok(())
    } else {
        invalid(format!(
            "{what} `{}` must be at most 255 printable characters without spaces",
            truncate(s, 80)
        ))
    }
}

/// Free text (reasons, messages): bounded and without control characters
/// other than newline and tab, so it is safe in logs and annotations.
pub fn validate_text(what: &str, s: &str, max: usize) -> Result<(), InvalidIntent> {
    if s.len() > max {
        return invalid(format!("{what} is longer than {max} bytes"));
    }
    if s.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return invalid(format!("{what} contains control characters"));
    }
    Ok(())
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_every_unit_and_sums() {
        assert_eq!(parse_duration("90s"), Ok(90));
        assert_eq!(parse_duration("30m"), Ok(1_800));
        assert_eq!(parse_duration("4h"), Ok(14_400));
        assert_eq!(parse_duration("7d"), Ok(604_800));
        assert_eq!(parse_duration("1w"), Ok(604_800));
        assert_eq!(parse_duration("1h30m"), Ok(5_400));
        assert_eq!(parse_duration(" 365d "), Ok(MAX_DURATION_SECS));
    }

    #[test]
    fn forever_negative_zero_and_absurd_durations_are_refused() {
        for bad in [
            "forever",
            "-4h",
            "0s",
            "366d",
            "4",
            "4y",
            "",
            "h",
            "99999999999999999999999d",
        ] {
            let err = parse_duration(bad).expect_err(bad);
            assert!(!err.0.is_empty(), "{bad}");
        }
        assert!(parse_duration("forever")
            .expect_err("forever")
            .0
            .contains("must expire"));
        assert!(parse_duration("4")
            .expect_err("unitless")
            .0
            .contains("no unit"));
    }

    #[test]
    fn ttl_displays_canonically_and_round_trips_through_json() {
        let ttl = Ttl::parse("36h").expect("valid");
        assert_eq!(ttl.to_string(), "1d12h");
        assert_eq!(Ttl::parse("90s").expect("valid").to_string(), "1m30s");
        let json = serde_json::to_string(&ttl).expect("serialize");
        assert_eq!(json, "\"1d12h\"");
        assert_eq!(serde_json::from_str::<Ttl>(&json).expect("back"), ttl);
        assert_eq!(
            serde_json::from_str::<Ttl>("3600").expect("secs").as_secs(),
            3_600
        );
        assert!(serde_json::from_str::<Ttl>("\"forever\"").is_err());
    }

    #[test]
    fn kubernetes_names_and_labels_follow_the_api_rules() {
        assert!(validate_namespace("shop").is_ok());
        assert!(validate_namespace("Shop").is_err());
        assert!(validate_namespace("-shop").is_err());
        assert!(validate_namespace(&"a".repeat(64)).is_err());
        assert!(validate_pod_name("checkout-7d9f.x").is_ok());
        assert!(validate_pod_name("a..b").is_err());
        assert!(validate_label_key("riposte.io/quarantine").is_ok());
        assert!(validate_label_key("app").is_ok());
        assert!(validate_label_key("Bad Key").is_err());
        assert!(validate_label_key("UPPER.io/x").is_err());
        assert!(validate_label_key("/x").is_err());
        assert!(validate_label_value("k", "").is_ok());
        assert!(validate_label_value("k", "v1.2_3-a").is_ok());
        assert!(validate_label_value("k", "-v").is_err());
        assert!(validate_label_value("k", &"v".repeat(64)).is_err());
        // The engine's stricter per-part limit outlives the shared predicates.
        assert!(validate_pod_name(&format!("{}.x", "a".repeat(63))).is_ok());
        assert!(validate_pod_name(&format!("{}.x", "a".repeat(64))).is_err());
        assert!(validate_label_key(&format!("{}.io/x", "a".repeat(64))).is_err());
    }

    #[test]
    fn selectors_need_labels() {
        assert!(Target::selector("shop", BTreeMap::new()).is_err());
        let t =
            Target::selector("shop", BTreeMap::from([("app".into(), "x".into())])).expect("valid");
        assert_eq!(t.to_string(), "pods shop/app=x");
    }

    #[test]
    fn ips_cidrs_tags_lists_and_edl_values() {
        assert!(parse_ip("ip", "10.0.0.1").is_ok());
        assert!(parse_ip("ip", "10.0.0.256").is_err());
        assert_eq!(
            parse_cidr("10.1.2.3/8").expect("cidr").to_string(),
            "10.0.0.0/8"
        );
        assert_eq!(
            parse_cidr("2001:db8::1").expect("host").to_string(),
            "2001:db8::1/128"
        );
        assert!(parse_cidr("10.0.0.0/33").is_err());
        assert!(validate_tag("riposte-c2").is_ok());
        assert!(validate_tag("bad tag").is_err());
        assert!(validate_name("list", "c2").is_ok());
        assert!(validate_name("list", "C2 list").is_err());
        assert_eq!(
            validate_edl_value("198.51.100.7").expect("ip"),
            "198.51.100.7"
        );
        assert_eq!(
            validate_edl_value("198.51.100.7/32").expect("host"),
            "198.51.100.7"
        );
        assert_eq!(
            validate_edl_value("*.evil.example").expect("domain"),
            "*.evil.example"
        );
        assert!(validate_edl_value("two words").is_err());
        assert!(validate_edl_value("0.0.0.0/0").is_err());
        assert!(validate_edl_value("0.0.0.0").is_err());
        assert!(validate_edl_value("10.0.0.0/8").is_ok());
    }

    #[test]
    fn json_intents_carry_canonical_addresses() {
        let a: Action = serde_json::from_str(
            r#"{"action": "tag_ip", "ip": "::ffff:10.96.0.10", "tag": "t", "ttl": "1h"}"#,
        )
        .expect("tag_ip");
        assert!(matches!(a, Action::TagIp { ip, .. } if ip.to_string() == "10.96.0.10"));
    }

    #[test]
    fn addresses_and_networks_are_canonical_whatever_their_ipv6_spelling() {
        let cases = [
            ("::ffff:198.51.100.7", "198.51.100.7"),
            ("::FFFF:c633:6407", "198.51.100.7"),
            ("::198.51.100.7", "198.51.100.7"),
            ("::ffff:198.51.100.0/120", "198.51.100.0/24"),
            (
                "::ffff:198.51.100.1-::ffff:198.51.100.9",
                "198.51.100.1-198.51.100.9",
            ),
            ("2001:DB8::7", "2001:db8::7"),
            ("evil-c2.example", "evil-c2.example"),
        ];
        for (input, want) in cases {
            assert_eq!(validate_edl_value(input).as_deref(), Ok(want), "{input}");
        }
        for broad in [
            "::/0",
            "64:ff9b::/96",
            "2002::/16",
            "::ffff:0.0.0.0/97",
            "0.0.0.0-255.255.255.255",
        ] {
            let err = validate_edl_value(broad).expect_err(broad).to_string();
            assert!(err.contains("too broad"), "{broad}: {err}");
        }
        assert!(validate_edl_value("::ffff:0.0.0.0").is_err());
        assert_eq!(
            parse_ip("address", "::ffff:10.96.0.10")
                .map(|ip| ip.to_string())
                .ok()
                .as_deref(),
            Some("10.96.0.10")
        );
        assert!(parse_host_ip("address", "::ffff:255.255.255.255").is_err());
        assert_eq!(
            parse_cidr("::ffff:10.0.0.0/104")
                .map(|n| n.to_string())
                .ok()
                .as_deref(),
            Some("10.0.0.0/8")
        );
        assert!(parse_host_ip("ip", "0.0.0.0").is_err());
        assert!(parse_host_ip("ip", "255.255.255.255").is_err());
        assert!(parse_host_ip("ip", "ff02::1").is_err());
        assert!(parse_host_ip("ip", "198.51.100.7").is_ok());
        assert!(validate_event_reason("RiposteQuarantine").is_ok());
        assert!(validate_event_reason("not camel").is_err());
    }

    #[test]
    fn intents_serialize_flat_with_the_action_name() {
        let action = Action::Quarantine {
            target: Target::pod("shop", "checkout-7d9f").expect("valid"),
            ttl: Ttl::parse("4h").expect("valid"),
            reason: Some("C2".into()),
        };
        let intent = Intent::new("ev1", "c2-quarantine", action.clone());
        let json = serde_json::to_value(&intent).expect("serialize");
        assert_eq!(json["action"], "quarantine");
        assert_eq!(json["target"]["kind"], "pod");
        assert_eq!(json["target"]["namespace"], "shop");
        assert_eq!(json["ttl"], "4h");
        assert_eq!(json["action_id"].as_str().map(str::len), Some(32));
        let back: Intent = serde_json::from_value(json).expect("deserialize");
        assert_eq!(back, intent);
        assert_eq!(action.name(), "quarantine");
        assert_eq!(Action::NAMES[action.ordinal()], "quarantine");
    }

    #[test]
    fn action_ids_are_stable_and_depend_on_event_playbook_and_content() {
        let a = Action::TagIp {
            ip: "203.0.113.9".parse().expect("ip"),
            tag: "riposte-c2".into(),
            ttl: Ttl::parse("1h").expect("valid"),
            reason: None,
        };
        let id = action_id("ev", "pb", &a);
        assert_eq!(id, action_id("ev", "pb", &a));
        assert_ne!(id, action_id("ev2", "pb", &a));
        assert_ne!(id, action_id("ev", "pb2", &a));
        let mut b = a.clone();
        if let Action::TagIp { tag, .. } = &mut b {
            *tag = "other".into();
        }
        assert_ne!(id, action_id("ev", "pb", &b));
    }
}
