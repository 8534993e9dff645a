//! The functions playbooks call, as the checker knows them: each
//! signature's parameters in the playbook language, and the keys of its
//! options map. A test holds this table to what `script_api` registers.

/// What a parameter takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Param {
    /// A pod map, `pod(…)`, `selector(…)` or an address string.
    Target,
    /// A string.
    Str,
    /// A duration: a string like "10m" (a bare number is seconds).
    Duration,
    /// A map of the given keys (`None`: any keys).
    Map(Option<&'static [&'static str]>),
    /// A string or an array of strings.
    StrOrArray,
    /// What an intent function returned.
    Intent,
    /// Anything (turned into text).
    Any,
}

impl Param {
    pub fn describe(self) -> &'static str {
        match self {
            Param::Target => {
                "a target (a pod map, pod(ns, name), selector(ns, labels) or an address string)"
            }
            Param::Str => "a string",
            Param::Duration => "a duration string like \"10m\"",
            Param::Map(_) => "a map #{ … }",
            Param::StrOrArray => "a string or an array of strings",
            Param::Intent => "what an intent function returned",
            Param::Any => "a value (not ())",
        }
    }
}

/// One helper: its name, its signatures, and how a call reads.
#[derive(Debug)]
pub struct Helper {
    pub name: &'static str,
    pub signatures: &'static [&'static [Param]],
    /// The usual call, for messages.
    pub usage: &'static str,
}

const TTL_REASON: &[&str] = &["ttl", "reason"];
const REASON: &[&str] = &["reason"];
const EGRESS: &[&str] = &["ttl", "reason", "ports"];
const APPROVE: &[&str] = &["timeout", "on_timeout", "default", "approvers", "reason"];

/// The keys `notify` gives a meaning to (playbooks/README.md, "notify");
/// any other key is passed on as a field, but one a typo away from these
/// is refused.
pub const NOTIFY_KEYS: &[&str] = &[
    "title",
    "severity",
    "event_id",
    "pod",
    "source_pod",
    "destination_pod",
    "sha256",
    "sha1",
    "md5",
    "hash",
    "domain",
    "hostname",
    "fqdn",
];

use Param::*;

pub const HELPERS: &[Helper] = &[
    Helper {
        name: "quarantine",
        signatures: &[&[Target], &[Target, Map(Some(TTL_REASON))]],
        usage: "quarantine(target, #{ ttl: \"4h\", reason: \"…\" })",
    },
    Helper {
        name: "release",
        signatures: &[&[Target], &[Target, Map(Some(REASON))]],
        usage: "release(target, #{ reason: \"…\" })",
    },
    Helper {
        name: "label",
        signatures: &[&[Target, Map(None)]],
        usage: "label(target, #{ key: \"value\" })",
    },
    Helper {
        name: "annotate",
        signatures: &[&[Target, Map(None)]],
        usage: "annotate(target, #{ key: \"value\" })",
    },
    Helper {
        name: "delete_pod",
        signatures: &[&[Target], &[Target, Map(Some(REASON))]],
        usage: "delete_pod(target, #{ reason: \"…\" })",
    },
    Helper {
        name: "block_egress",
        signatures: &[&[Target, Str], &[Target, Str, Map(Some(EGRESS))]],
        usage: "block_egress(target, \"203.0.113.0/24\", #{ ttl: \"1h\", ports: [443] })",
    },
    Helper {
        name: "tag_ip",
        signatures: &[&[Str, Str], &[Str, Str, Map(Some(TTL_REASON))]],
        usage: "tag_ip(address, \"tag\", #{ ttl: \"1h\", reason: \"…\" })",
    },
    Helper {
        name: "untag_ip",
        signatures: &[&[Str, Str]],
        usage: "untag_ip(address, \"tag\")",
    },
    Helper {
        name: "edl_add",
        signatures: &[&[Str, Str], &[Str, Str, Map(Some(TTL_REASON))]],
        usage: "edl_add(\"list\", value, #{ ttl: \"24h\", reason: \"…\" })",
    },
    Helper {
        name: "edl_remove",
        signatures: &[&[Str, Str]],
        usage: "edl_remove(\"list\", value)",
    },
    Helper {
        name: "notify",
        signatures: &[&[Str, Map(None)]],
        usage: "notify(\"soar\", #{ title: \"…\", severity: \"high\" })",
    },
    Helper {
        name: "publish",
        signatures: &[&[Str, Str, Map(None)]],
        usage: "publish(\"exchange\", \"routing.key\", #{ … })",
    },
    Helper {
        name: "k8s_event",
        signatures: &[&[Target, Str, Any]],
        usage: "k8s_event(target, \"Reason\", \"message\")",
    },
    Helper {
        name: "log",
        signatures: &[&[Str, Any]],
        usage: "log(\"info\", \"message\")",
    },
    Helper {
        name: "approve",
        signatures: &[&[Intent], &[Intent, Map(Some(APPROVE))]],
        usage: "approve(quarantine(pod), #{ timeout: \"30m\" })",
    },
    Helper {
        name: "pod",
        signatures: &[&[Str, Str]],
        usage: "pod(\"namespace\", \"name\")",
    },
    Helper {
        name: "selector",
        signatures: &[&[Str, Map(None)]],
        usage: "selector(\"namespace\", #{ app: \"x\" })",
    },
    Helper {
        name: "in_cidr",
        signatures: &[&[Str, StrOrArray]],
        usage: "in_cidr(address, \"10.0.0.0/8\")",
    },
    Helper {
        name: "duration",
        signatures: &[&[Duration]],
        usage: "duration(\"4h\")",
    },
    Helper {
        name: "now",
        signatures: &[&[]],
        usage: "now()",
    },
    Helper {
        name: "count",
        signatures: &[&[Any, Duration]],
        usage: "count(key, \"5m\")",
    },
    Helper {
        name: "once_per",
        signatures: &[&[Any, Duration]],
        usage: "once_per(key, \"10m\")",
    },
    Helper {
        name: "seen_before",
        signatures: &[&[Any, Duration]],
        usage: "seen_before(key, \"10m\")",
    },
    Helper {
        name: "stop",
        signatures: &[&[]],
        usage: "stop()",
    },
];

/// Rhai's own functions that scripts call without a receiver and that the
/// engine does not list as functions (they are keywords).
pub const KEYWORDS: &[&str] = &[
    "print",
    "debug",
    "type_of",
    "is_def_var",
    "is_def_fn",
    "is_shared",
    "Fn",
    "call",
    "curry",
];

pub fn helper(name: &str) -> Option<&'static Helper> {
    HELPERS.iter().find(|h| h.name == name)
}

/// What a helper returns, when it is a plain value.
pub fn returns(name: &str) -> Option<super::schema::Kind> {
    use super::schema::Kind;
    Some(match name {
        "count" | "now" | "duration" => Kind::Number,
        "once_per" | "seen_before" | "in_cidr" => Kind::Bool,
        _ => return None,
    })
}
