//! The functions playbooks call: intent makers, target builders and native
//! helpers. Each validates its arguments and fails with a message naming the
//! function; Rhai adds the calling line.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use rhai::{Dynamic, Engine, EvalAltResult, ImmutableString, Map};

use crate::decide::intent::{self, Action, ApprovalDefault, LogLevel, Target, Ttl};
use crate::decide::playbook::counters::Counters;
use crate::decide::playbook::sandbox::{script_error, with_run};

type R<T> = Result<T, Box<EvalAltResult>>;

/// Default ttls when a playbook does not say: every automatic action expires.
pub const DEFAULT_QUARANTINE_TTL: u64 = 3_600;
pub const DEFAULT_BLOCK_EGRESS_TTL: u64 = 3_600;
pub const DEFAULT_TAG_TTL: u64 = 3_600;
pub const DEFAULT_EDL_TTL: u64 = 86_400;

const MAX_REASON: usize = 1_024;
const MAX_MESSAGE: usize = 4_096;

pub fn register(engine: &mut Engine, counters: Arc<Counters>) {
    register_intents(engine);
    register_targets(engine);
    register_helpers(engine, counters);
    register_stop(engine);
}

fn fail(func: &str, msg: impl std::fmt::Display) -> Box<EvalAltResult> {
    script_error(format!("{func}: {msg}"))
}

/// What an intent maker returns: which intent of the run it made, so that
/// `approve(quarantine(pod), #{…})` can put that intent up for approval.
/// Ignored when the call is a plain statement.
#[derive(Debug, Clone, Copy)]
pub struct IntentRef(usize);

fn push(func: &str, action: Action) -> R<IntentRef> {
    with_run(|s| {
        if s.intents.len() >= s.max_intents {
            return Err(format!("more than {} intents in one run", s.max_intents));
        }
        s.intents.push(action);
        Ok(IntentRef(s.intents.len() - 1))
    })
    .map_err(|m| fail(func, m))
}

/// Longest time an approval may wait for a human.
const MAX_APPROVAL_TIMEOUT: u64 = 7 * 86_400;
/// Default wait for an approval.
pub const DEFAULT_APPROVAL_TIMEOUT: u64 = 3_600;

/// `approve(intent, #{ timeout, on_timeout, approvers, reason })`: the
/// intent is not carried out until someone approves it (or its timeout
/// passes and `on_timeout` — also spelled `"default"` — says "apply").
fn approve(r: IntentRef, o: Map) -> R<IntentRef> {
    let f = "approve";
    let mut timeout = Ttl::from_secs(DEFAULT_APPROVAL_TIMEOUT).map_err(|e| fail(f, e))?;
    let mut default = ApprovalDefault::Drop;
    let mut approvers = Vec::new();
    let mut reason = None;
    for (k, v) in &o {
        match k.as_str() {
            "timeout" => {
                timeout = ttl(f, v)?;
                if timeout.as_secs() > MAX_APPROVAL_TIMEOUT {
                    return Err(fail(f, "timeout: at most 7d"));
                }
            }
            // `default` is a Rhai keyword: `#{ "default": "apply" }` works,
            // `on_timeout` reads better.
            "on_timeout" | "default" => {
                default = match string(f, "on_timeout", v)?.as_str() {
                    "apply" => ApprovalDefault::Apply,
                    "drop" => ApprovalDefault::Drop,
                    other => {
                        return Err(fail(
                            f,
                            format!("on_timeout `{other}` is not \"apply\" or \"drop\""),
                        ))
                    }
                }
            }
            "approvers" => {
                let arr = v
                    .clone()
                    .try_cast::<rhai::Array>()
                    .ok_or_else(|| fail(f, "approvers must be an array of names"))?;
                for a in arr {
                    approvers.push(text(f, "approvers", &a, 256)?);
                }
            }
            "reason" => reason = Some(text(f, "reason", v, MAX_REASON)?),
            other => {
                return Err(fail(
                    f,
                    format!(
                    "unknown option `{other}` (expected timeout, on_timeout, approvers, reason)"
                ),
                ))
            }
        }
    }
    with_run(|s| {
        let slot = s
            .intents
            .get_mut(r.0)
            .ok_or_else(|| "no such intent in this run".to_string())?;
        if matches!(slot, Action::Approve { .. }) {
            return Err("the intent already awaits approval".into());
        }
        if matches!(slot, Action::Log { .. }) {
            return Err("a log line needs no approval".into());
        }
        let inner = std::mem::replace(
            slot,
            Action::Log {
                level: LogLevel::Trace,
                message: String::new(),
            },
        );
        *slot = Action::Approve {
            intent: Box::new(inner),
            timeout,
            default,
            approvers,
            reason,
        };
        Ok(r)
    })
    .map_err(|m| fail(f, m))
}

/// Options maps: only the keys an action knows, so a typo (`tll`) fails.
#[derive(Default)]
struct Opts {
    ttl: Option<Ttl>,
    reason: Option<String>,
    ports: Vec<u16>,
}

fn opts(func: &str, map: &Map, allowed: &[&str]) -> R<Opts> {
    let mut o = Opts::default();
    for (k, v) in map {
        let key = k.as_str();
        if !allowed.contains(&key) {
            return Err(fail(
                func,
                format!("unknown option `{key}` (expected {})", allowed.join(", ")),
            ));
        }
        match key {
            "ttl" => o.ttl = Some(ttl(func, v)?),
            "reason" => {
                let r = text(func, "reason", v, MAX_REASON)?;
                o.reason = Some(r);
            }
            "ports" => {
                let arr = v
                    .clone()
                    .try_cast::<rhai::Array>()
                    .ok_or_else(|| fail(func, "ports must be an array of port numbers"))?;
                for p in arr {
                    let n = p
                        .as_int()
                        .ok()
                        .and_then(|n| u16::try_from(n).ok())
                        .filter(|n| *n > 0)
                        .ok_or_else(|| fail(func, "ports must be numbers in 1..=65535"))?;
                    o.ports.push(n);
                }
            }
            _ => {}
        }
    }
    Ok(o)
}

fn ttl(func: &str, v: &Dynamic) -> R<Ttl> {
    let parsed = if let Ok(n) = v.as_int() {
        u64::try_from(n)
            .map_err(|_| intent::InvalidIntent(format!("ttl {n} is negative")))
            .and_then(Ttl::from_secs)
    } else if let Some(s) = v.read_lock::<ImmutableString>() {
        Ttl::parse(&s)
    } else {
        return Err(fail(
            func,
            format!("ttl must be a string like \"4h\", got {}", v.type_name()),
        ));
    };
    parsed.map_err(|e| fail(func, format!("ttl: {e}")))
}

/// A window for counters, in milliseconds.
fn window_ms(func: &str, v: &Dynamic) -> R<i64> {
    let secs = if let Ok(n) = v.as_int() {
        if n <= 0 || n as u64 > intent::MAX_DURATION_SECS {
            return Err(fail(func, format!("window {n}s must be in 1..=365d")));
        }
        n as u64
    } else if let Some(s) = v.read_lock::<ImmutableString>() {
        intent::parse_duration(&s).map_err(|e| fail(func, format!("window: {e}")))?
    } else {
        return Err(fail(
            func,
            format!(
                "window must be a string like \"10m\", got {}",
                v.type_name()
            ),
        ));
    };
    Ok(secs as i64 * 1_000)
}

fn string(func: &str, what: &str, v: &Dynamic) -> R<String> {
    if let Some(s) = v.read_lock::<ImmutableString>() {
        return Ok(s.to_string());
    }
    if v.is_unit() {
        return Err(fail(
            func,
            format!("{what} is () (the event does not carry it?)"),
        ));
    }
    Err(fail(
        func,
        format!("{what} must be a string, got {}", v.type_name()),
    ))
}

fn text(func: &str, what: &str, v: &Dynamic, max: usize) -> R<String> {
    let s = if v.is_string() {
        string(func, what, v)?
    } else {
        v.to_string()
    };
    intent::validate_text(what, &s, max).map_err(|e| fail(func, e))?;
    Ok(s)
}

fn ip(func: &str, v: &Dynamic) -> R<IpAddr> {
    let s = string(func, "address", v)?;
    intent::parse_ip("address", &s).map_err(|e| fail(func, e))
}

/// An address to tag: one host.
fn host_ip(func: &str, v: &Dynamic) -> R<IpAddr> {
    let s = string(func, "address", v)?;
    intent::parse_host_ip("address", &s).map_err(|e| fail(func, e))
}

fn json(func: &str, map: Map) -> R<serde_json::Value> {
    rhai::serde::from_dynamic::<serde_json::Value>(&Dynamic::from_map(map))
        .map_err(|e| fail(func, format!("cannot turn the map into JSON: {e}")))
}

/// Resolves a script value to a target; see playbooks/README.md.
fn target(func: &str, v: &Dynamic) -> R<Target> {
    if v.is_unit() {
        return Err(fail(
            func,
            "target is () — the event has no pod context here; check `if pod != ()` first, or pass the address to record an unresolved target",
        ));
    }
    if let Some(map) = v.read_lock::<Map>() {
        let field = |k: &str| -> R<String> {
            match map.get(k) {
                Some(d) => string(func, &format!("target.{k}"), d),
                None => Err(fail(func, format!("target map has no `{k}` (use a pod from the event, pod(ns, name) or selector(ns, labels))"))),
            }
        };
        let kind = match map.get("kind") {
            Some(k) => Some(string(func, "target.kind", k)?),
            None => None,
        };
        return match kind.as_deref() {
            None | Some("pod") => {
                Target::pod(&field("namespace")?, &field("name")?).map_err(|e| fail(func, e))
            }
            Some("selector") => {
                let labels = labels_of(func, map.get("labels"))?;
                Target::selector(&field("namespace")?, labels).map_err(|e| fail(func, e))
            }
            Some(other) => Err(fail(
                func,
                format!("target kind `{other}` is not pod or selector"),
            )),
        };
    }
    if v.is_string() {
        let addr = ip(func, v)?;
        return with_run(|s| {
            for (side_ip, pod) in [&s.source, &s.destination] {
                if *side_ip == Some(addr) {
                    if let Some(pod) = pod {
                        return Ok(Target::Pod {
                            namespace: pod.namespace.clone(),
                            name: pod.name.clone(),
                        });
                    }
                }
            }
            Ok(Target::Unresolved { ip: addr })
        })
        .map_err(|m| fail(func, m));
    }
    Err(fail(
        func,
        format!(
            "target must be a pod map, pod(ns, name), selector(ns, labels) or an address, got {}",
            v.type_name()
        ),
    ))
}

fn labels_of(func: &str, v: Option<&Dynamic>) -> R<BTreeMap<String, String>> {
    let Some(map) = v.and_then(|v| v.read_lock::<Map>().map(|m| m.clone())) else {
        return Err(fail(func, "selector labels must be a map"));
    };
    let mut out = BTreeMap::new();
    for (k, v) in map {
        out.insert(k.to_string(), string(func, &format!("label `{k}`"), &v)?);
    }
    Ok(out)
}

/// Label or annotation changes: string values set, `()` removes.
fn changes(func: &str, map: Map, labels: bool) -> R<BTreeMap<String, Option<String>>> {
    if map.is_empty() {
        return Err(fail(func, "nothing to set: the map is empty"));
    }
    let mut out = BTreeMap::new();
    for (k, v) in map {
        let key = k.to_string();
        intent::validate_label_key(&key).map_err(|e| fail(func, e))?;
        let value = if v.is_unit() {
            None
        } else {
            let s = if v.is_string() {
                string(func, &key, &v)?
            } else {
                v.to_string()
            };
            if labels {
                intent::validate_label_value(&key, &s).map_err(|e| fail(func, e))?;
            } else {
                intent::validate_text(&format!("annotation `{key}`"), &s, 64 * 1024)
                    .map_err(|e| fail(func, e))?;
            }
            Some(s)
        };
        out.insert(key, value);
    }
    Ok(out)
}

/// The intent makers, one registration per family; each returns the
/// [`IntentRef`] that `approve` takes.
fn register_intents(engine: &mut Engine) {
    engine.register_type_with_name::<IntentRef>("Intent");
    engine.register_fn("approve", approve);
    engine.register_fn("approve", |r: IntentRef| approve(r, Map::new()));
    register_pod_intents(engine);
    register_egress_intents(engine);
    register_firewall_intents(engine);
    register_message_intents(engine);
}

/// What is done to a pod or a selection of pods in the cluster.
fn register_pod_intents(engine: &mut Engine) {
    fn quarantine(t: Dynamic, o: Map) -> R<IntentRef> {
        let f = "quarantine";
        let o = opts(f, &o, &["ttl", "reason"])?;
        push(
            f,
            Action::Quarantine {
                target: target(f, &t)?,
                ttl: o.ttl.map_or_else(
                    || Ttl::from_secs(DEFAULT_QUARANTINE_TTL).map_err(|e| fail(f, e)),
                    Ok,
                )?,
                reason: o.reason,
            },
        )
    }
    engine.register_fn("quarantine", quarantine);
    engine.register_fn("quarantine", |t: Dynamic| quarantine(t, Map::new()));

    fn release(t: Dynamic, o: Map) -> R<IntentRef> {
        let f = "release";
        let o = opts(f, &o, &["reason"])?;
        push(
            f,
            Action::Release {
                target: target(f, &t)?,
                reason: o.reason,
            },
        )
    }
    engine.register_fn("release", release);
    engine.register_fn("release", |t: Dynamic| release(t, Map::new()));

    engine.register_fn("label", |t: Dynamic, m: Map| -> R<IntentRef> {
        let f = "label";
        push(
            f,
            Action::Label {
                target: target(f, &t)?,
                labels: changes(f, m, true)?,
            },
        )
    });
    engine.register_fn("annotate", |t: Dynamic, m: Map| -> R<IntentRef> {
        let f = "annotate";
        push(
            f,
            Action::Annotate {
                target: target(f, &t)?,
                annotations: changes(f, m, false)?,
            },
        )
    });

    fn delete_pod(t: Dynamic, o: Map) -> R<IntentRef> {
        let f = "delete_pod";
        let o = opts(f, &o, &["reason"])?;
        let target = target(f, &t)?;
        if let Target::Selector { .. } = target {
            // Deleting by selector is a mass deletion: never automatic.
            return Err(fail(f, "takes one pod, not a selector"));
        }
        push(
            f,
            Action::DeletePod {
                target,
                reason: o.reason,
            },
        )
    }
    engine.register_fn("delete_pod", delete_pod);
    engine.register_fn("delete_pod", |t: Dynamic| delete_pod(t, Map::new()));
}

/// Network policy in the cluster.
fn register_egress_intents(engine: &mut Engine) {
    fn block_egress(t: Dynamic, cidr: Dynamic, o: Map) -> R<IntentRef> {
        let f = "block_egress";
        let o = opts(f, &o, &["ttl", "reason", "ports"])?;
        let cidr = intent::parse_cidr(&string(f, "cidr", &cidr)?).map_err(|e| fail(f, e))?;
        push(
            f,
            Action::BlockEgress {
                target: target(f, &t)?,
                cidr,
                ttl: o.ttl.map_or_else(
                    || Ttl::from_secs(DEFAULT_BLOCK_EGRESS_TTL).map_err(|e| fail(f, e)),
                    Ok,
                )?,
                ports: o.ports,
                reason: o.reason,
            },
        )
    }
    engine.register_fn("block_egress", block_egress);
    engine.register_fn("block_egress", |t: Dynamic, c: Dynamic| {
        block_egress(t, c, Map::new())
    });
}

/// Tags and external dynamic lists on the firewall.
fn register_firewall_intents(engine: &mut Engine) {
    fn tag_ip(addr: Dynamic, tag: Dynamic, o: Map) -> R<IntentRef> {
        let f = "tag_ip";
        let o = opts(f, &o, &["ttl", "reason"])?;
        let tag = string(f, "tag", &tag)?;
        intent::validate_tag(&tag).map_err(|e| fail(f, e))?;
        push(
            f,
            Action::TagIp {
                ip: host_ip(f, &addr)?,
                tag,
                ttl: o.ttl.map_or_else(
                    || Ttl::from_secs(DEFAULT_TAG_TTL).map_err(|e| fail(f, e)),
                    Ok,
                )?,
                reason: o.reason,
            },
        )
    }
    engine.register_fn("tag_ip", tag_ip);
    engine.register_fn("tag_ip", |a: Dynamic, t: Dynamic| tag_ip(a, t, Map::new()));

    engine.register_fn("untag_ip", |addr: Dynamic, tag: Dynamic| -> R<IntentRef> {
        let f = "untag_ip";
        let tag = string(f, "tag", &tag)?;
        intent::validate_tag(&tag).map_err(|e| fail(f, e))?;
        push(
            f,
            Action::UntagIp {
                ip: host_ip(f, &addr)?,
                tag,
            },
        )
    });

    fn edl_add(list: Dynamic, value: Dynamic, o: Map) -> R<IntentRef> {
        let f = "edl_add";
        let o = opts(f, &o, &["ttl", "reason"])?;
        let list = string(f, "list", &list)?;
        intent::validate_name("list", &list).map_err(|e| fail(f, e))?;
        let value =
            intent::validate_edl_value(&string(f, "value", &value)?).map_err(|e| fail(f, e))?;
        push(
            f,
            Action::EdlAdd {
                list,
                value,
                ttl: o.ttl.map_or_else(
                    || Ttl::from_secs(DEFAULT_EDL_TTL).map_err(|e| fail(f, e)),
                    Ok,
                )?,
                reason: o.reason,
            },
        )
    }
    engine.register_fn("edl_add", edl_add);
    engine.register_fn("edl_add", |l: Dynamic, v: Dynamic| {
        edl_add(l, v, Map::new())
    });

    engine.register_fn(
        "edl_remove",
        |list: Dynamic, value: Dynamic| -> R<IntentRef> {
            let f = "edl_remove";
            let list = string(f, "list", &list)?;
            intent::validate_name("list", &list).map_err(|e| fail(f, e))?;
            let value =
                intent::validate_edl_value(&string(f, "value", &value)?).map_err(|e| fail(f, e))?;
            push(f, Action::EdlRemove { list, value })
        },
    );
}

/// Messages out: the SOAR, AMQP, Kubernetes events and the log.
fn register_message_intents(engine: &mut Engine) {
    engine.register_fn("notify", |name: Dynamic, fields: Map| -> R<IntentRef> {
        let f = "notify";
        let name = string(f, "notifier", &name)?;
        intent::validate_name("notifier", &name).map_err(|e| fail(f, e))?;
        push(
            f,
            Action::Notify {
                target: name,
                fields: json(f, fields)?,
            },
        )
    });

    engine.register_fn(
        "publish",
        |exchange: Dynamic, key: Dynamic, payload: Map| -> R<IntentRef> {
            let f = "publish";
            let exchange = string(f, "exchange", &exchange)?;
            intent::validate_amqp("exchange", &exchange, true).map_err(|e| fail(f, e))?;
            let routing_key = string(f, "routing key", &key)?;
            intent::validate_amqp("routing key", &routing_key, false).map_err(|e| fail(f, e))?;
            push(
                f,
                Action::Publish {
                    exchange,
                    routing_key,
                    payload: json(f, payload)?,
                },
            )
        },
    );

    engine.register_fn(
        "k8s_event",
        |t: Dynamic, reason: Dynamic, message: Dynamic| -> R<IntentRef> {
            let f = "k8s_event";
            let reason = string(f, "reason", &reason)?;
            intent::validate_event_reason(&reason).map_err(|e| fail(f, e))?;
            let message = text(f, "message", &message, MAX_REASON)?;
            push(
                f,
                Action::K8sEvent {
                    target: target(f, &t)?,
                    reason,
                    message,
                },
            )
        },
    );

    engine.register_fn(
        "log",
        |level: ImmutableString, message: Dynamic| -> R<IntentRef> {
            let f = "log";
            let level = LogLevel::parse(&level).map_err(|e| fail(f, e))?;
            let message = text(f, "message", &message, MAX_MESSAGE)?;
            push(f, Action::Log { level, message })
        },
    );
}

fn register_targets(engine: &mut Engine) {
    engine.register_fn("pod", |ns: Dynamic, name: Dynamic| -> R<Map> {
        let f = "pod";
        let (ns, name) = (string(f, "namespace", &ns)?, string(f, "name", &name)?);
        Target::pod(&ns, &name).map_err(|e| fail(f, e))?;
        let mut m = Map::new();
        m.insert("kind".into(), "pod".into());
        m.insert("namespace".into(), ns.into());
        m.insert("name".into(), name.into());
        Ok(m)
    });
    engine.register_fn("selector", |ns: Dynamic, labels: Map| -> R<Map> {
        let f = "selector";
        let ns = string(f, "namespace", &ns)?;
        let parsed = labels_of(f, Some(&Dynamic::from_map(labels.clone())))?;
        Target::selector(&ns, parsed).map_err(|e| fail(f, e))?;
        let mut m = Map::new();
        m.insert("kind".into(), "selector".into());
        m.insert("namespace".into(), ns.into());
        m.insert("labels".into(), labels.into());
        Ok(m)
    });
}

fn register_helpers(engine: &mut Engine, counters: Arc<Counters>) {
    engine.register_fn("in_cidr", |addr: Dynamic, cidr: Dynamic| -> R<bool> {
        let f = "in_cidr";
        if addr.is_unit() {
            return Ok(false);
        }
        let net = intent::parse_cidr(&string(f, "cidr", &cidr)?).map_err(|e| fail(f, e))?;
        Ok(net.contains(&ip(f, &addr)?))
    });
    engine.register_fn("in_cidr", |addr: Dynamic, cidrs: rhai::Array| -> R<bool> {
        let f = "in_cidr";
        if addr.is_unit() {
            return Ok(false);
        }
        let addr = ip(f, &addr)?;
        for c in &cidrs {
            let net = intent::parse_cidr(&string(f, "cidr", c)?).map_err(|e| fail(f, e))?;
            if net.contains(&addr) {
                return Ok(true);
            }
        }
        Ok(false)
    });
    engine.register_fn("duration", |d: Dynamic| -> R<i64> {
        Ok(window_ms("duration", &d)? / 1_000)
    });
    engine.register_fn("now", || -> R<i64> {
        with_run(|s| Ok(s.now_ms.div_euclid(1_000))).map_err(|m| fail("now", m))
    });

    // In a dry run the live counters are only read; the run's own calls go
    // to its scratch counters (see `RunState::scratch`).
    let c = counters.clone();
    engine.register_fn("count", move |key: Dynamic, window: Dynamic| -> R<i64> {
        let f = "count";
        let w = window_ms(f, &window)?;
        let key = counter_key(f, &key)?;
        with_run(|s| {
            let n = match &s.scratch {
                Some(dry) => {
                    c.peek_count(&s.playbook, &key, w, s.now_ms)
                        + dry.count(&s.playbook, &key, w, s.now_ms)
                }
                None => c.count(&s.playbook, &key, w, s.now_ms),
            };
            Ok(n as i64)
        })
        .map_err(|m| fail(f, m))
    });
    let c = counters.clone();
    engine.register_fn(
        "once_per",
        move |key: Dynamic, window: Dynamic| -> R<bool> {
            let f = "once_per";
            let w = window_ms(f, &window)?;
            let key = counter_key(f, &key)?;
            with_run(|s| {
                Ok(match &s.scratch {
                    Some(dry) => {
                        let fresh_here = dry.once_per(&s.playbook, &key, w, s.now_ms);
                        fresh_here && c.peek_once_per(&s.playbook, &key, w, s.now_ms)
                    }
                    None => c.once_per(&s.playbook, &key, w, s.now_ms),
                })
            })
            .map_err(|m| fail(f, m))
        },
    );
    let c = counters;
    engine.register_fn(
        "seen_before",
        move |key: Dynamic, window: Dynamic| -> R<bool> {
            let f = "seen_before";
            let w = window_ms(f, &window)?;
            let key = counter_key(f, &key)?;
            with_run(|s| {
                Ok(match &s.scratch {
                    Some(dry) => {
                        let here = dry.seen_before(&s.playbook, &key, w, s.now_ms);
                        here || c.peek_seen_before(&s.playbook, &key, w, s.now_ms)
                    }
                    None => c.seen_before(&s.playbook, &key, w, s.now_ms),
                })
            })
            .map_err(|m| fail(f, m))
        },
    );
}

/// `stop()`: ends this run here (its intents stand) and the chain for
/// this event: no later playbook, in `order`, runs on it.
fn register_stop(engine: &mut Engine) {
    engine.register_fn("stop", || -> R<()> {
        with_run(|s| {
            s.stopped = true;
            Ok(())
        })
        .map_err(|m| fail("stop", m))?;
        Err(Box::new(EvalAltResult::ErrorTerminated(
            Dynamic::from(crate::decide::playbook::sandbox::STOP_TOKEN),
            rhai::Position::NONE,
        )))
    });
}

fn counter_key(func: &str, key: &Dynamic) -> R<String> {
    if key.is_unit() {
        return Err(fail(
            func,
            "key is () (the event does not carry the value you built it from?)",
        ));
    }
    let k = if key.is_string() {
        string(func, "key", key)?
    } else {
        key.to_string()
    };
    if k.len() > 1_024 {
        return Err(fail(func, "key is longer than 1024 bytes"));
    }
    Ok(k)
}

// The checker refuses the literal mistakes below before a run; the tests
// hide the values (`[x][0]`) to reach the checks made when a value is only
// known at run time.
#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::decide::playbook::runtime::testing::*;

    fn intents(body: &str) -> Vec<serde_json::Value> {
        let (_d, rt) = one(body);
        intents_of(&rt, &c2_event())
    }

    fn error(body: &str) -> String {
        let (_d, rt) = one(body);
        error_of(&rt, &c2_event())
    }

    fn pod() -> serde_json::Value {
        json!({"kind": "pod", "namespace": "shop", "name": "checkout-7d9f"})
    }

    #[test]
    fn quarantine_and_release_take_the_event_pod() {
        assert_eq!(
            intents("quarantine(event.source.pod, #{ ttl: \"4h\", reason: \"C2\" });\nrelease(event.source.pod);"),
            [
                json!({"action": "quarantine", "target": pod(), "ttl": "4h", "reason": "C2"}),
                json!({"action": "release", "target": pod()}),
            ]
        );
        // Without options the default ttl applies: nothing is forever.
        assert_eq!(intents("quarantine(event.source.pod);")[0]["ttl"], "1h");
        assert_eq!(
            intents("quarantine(event.source.pod, #{ ttl: [90][0] });")[0]["ttl"],
            "1m30s"
        );
    }

    #[test]
    fn targets_by_name_selector_and_address() {
        assert_eq!(
            intents("delete_pod(pod(\"shop\", \"web-1\"));")[0]["target"],
            json!({"kind": "pod", "namespace": "shop", "name": "web-1"})
        );
        assert_eq!(
            intents("label(selector(\"shop\", #{ app: \"web\" }), #{ \"riposte.io/watch\": \"true\" });")[0],
            json!({"action": "label", "target": {"kind": "selector", "namespace": "shop", "labels": {"app": "web"}}, "labels": {"riposte.io/watch": "true"}})
        );
        // An address the event knows a pod for resolves to that pod.
        assert_eq!(intents("quarantine(event.source.ip);")[0]["target"], pod());
        // One it does not is kept, unresolved, for the guardrails to refuse.
        assert_eq!(
            intents("quarantine(event.destination.ip);")[0]["target"],
            json!({"kind": "unresolved", "ip": "203.0.113.9"})
        );
    }

    #[test]
    fn malformed_targets_are_refused() {
        assert!(error("quarantine(#{ name: \"x\" });").contains("target map has no `namespace`"));
        assert!(error("quarantine([42][0]);").contains("target must be"));
        assert!(error("quarantine(\"not-an-ip\");").contains("not an IP address"));
        assert!(error("pod(\"shop\", \"Bad_Name\");").contains("pod name `Bad_Name`"));
        assert!(error("selector(\"shop\", #{});").contains("at least one label"));
        assert!(
            error("delete_pod(selector(\"shop\", #{ app: \"x\" }));").contains("not a selector")
        );
    }

    #[test]
    fn labels_and_annotations_are_validated_and_unit_removes() {
        assert_eq!(
            intents("annotate(event.source.pod, #{ \"riposte.io/reason\": \"C2 to 1.2.3.4\", old: () });")[0]["annotations"],
            json!({"riposte.io/reason": "C2 to 1.2.3.4", "old": null})
        );
        assert!(error("label(event.source.pod, #{ \"bad key!\": \"x\" });")
            .contains("not a valid Kubernetes label key"));
        assert!(error("label(event.source.pod, #{ app: \"has space\" });")
            .contains("not a valid Kubernetes label value"));
        assert!(error("label(event.source.pod, #{});").contains("map is empty"));
    }

    #[test]
    fn firewall_intents() {
        assert_eq!(
            intents(
                "tag_ip(event.destination.ip, \"riposte-c2\", #{ ttl: \"24h\" });\n\
                 untag_ip(event.destination.ip, \"riposte-c2\");\n\
                 edl_add(\"c2\", event.destination.ip, #{ ttl: \"7d\" });\n\
                 edl_remove(\"c2\", \"evil.example\");\n\
                 block_egress(event.source.pod, \"203.0.113.0/24\", #{ ports: [443], ttl: \"2h\" });"
            ),
            [
                json!({"action": "tag_ip", "ip": "203.0.113.9", "tag": "riposte-c2", "ttl": "1d"}),
                json!({"action": "untag_ip", "ip": "203.0.113.9", "tag": "riposte-c2"}),
                json!({"action": "edl_add", "list": "c2", "value": "203.0.113.9", "ttl": "7d"}),
                json!({"action": "edl_remove", "list": "c2", "value": "evil.example"}),
                json!({"action": "block_egress", "target": pod(), "cidr": "203.0.113.0/24", "ttl": "2h", "ports": [443]}),
            ]
        );
        assert!(error("tag_ip(event.source.nat?.ip, \"x\");").contains("tag_ip: address is ()"));
        assert!(error("tag_ip(\"1.2.3.4\", \"bad tag\");").contains("not a valid firewall tag"));
        assert!(error("tag_ip(\"0.0.0.0\", \"x\");").contains("not a single host"));
        assert!(error("edl_add(\"c2\", \"0.0.0.0/1\");").contains("too broad"));
        assert!(error("edl_add(\"C2 List\", \"1.2.3.4\");").contains("list `C2 List`"));
        assert!(error("block_egress(event.source.pod, \"10.0.0.0/40\");").contains("not a CIDR"));
        assert!(
            error("let o = #{}; o[\"tll\"] = \"1h\"; tag_ip(\"1.2.3.4\", \"x\", o);")
                .contains("unknown option `tll`")
        );
    }

    #[test]
    fn messages_events_and_logs() {
        assert_eq!(
            intents(
                "notify(\"soar\", #{ title: `C2 from ${event.source.pod.name}`, severity: event.threat.severity, n: 1 });\n\
                 publish(\"riposte\", \"threat.c2\", #{ id: event.id });\n\
                 k8s_event(event.source.pod, \"RiposteQuarantine\", \"C2 traffic\");\n\
                 log(\"warn\", \"seen\");"
            ),
            [
                json!({"action": "notify", "target": "soar", "fields": {"title": "C2 from checkout-7d9f", "severity": "critical", "n": 1}}),
                json!({"action": "publish", "exchange": "riposte", "routing_key": "threat.c2", "payload": {"id": c2_event().id.as_str()}}),
                json!({"action": "k8s_event", "target": pod(), "reason": "RiposteQuarantine", "message": "C2 traffic"}),
                json!({"action": "log", "level": "warn", "message": "seen"}),
            ]
        );
        assert!(error("log([\"loud\"][0], \"x\");").contains("log level `loud`"));
        assert!(
            error("k8s_event(event.source.pod, \"bad reason\", \"x\");").contains("UpperCamelCase")
        );
        assert!(error("notify(\"SOAR!\", #{});").contains("notifier `SOAR!`"));
    }

    #[test]
    fn helpers() {
        let body = "\
            if !in_cidr(event.source.ip, \"10.244.0.0/16\") { throw \"in_cidr\"; }\n\
            if in_cidr(event.destination.ip, [\"10.0.0.0/8\", \"192.168.0.0/16\"]) { throw \"in_cidr list\"; }\n\
            if in_cidr(event.source.nat?.ip, \"0.0.0.0/0\") { throw \"absent\"; }\n\
            if duration(\"1h30m\") != 5400 { throw \"duration\"; }\n\
            if now() != 1700000000 { throw \"now\"; }\n\
            if count(\"k\", \"1m\") != 1 || count(\"k\", \"1m\") != 2 { throw \"count\"; }\n\
            if !once_per(\"k\", \"10m\") || once_per(\"k\", \"10m\") { throw \"once_per\"; }\n\
            if seen_before(\"s\", \"10m\") || !seen_before(\"s\", \"10m\") { throw \"seen_before\"; }\n\
            log(\"info\", \"ok\");";
        assert_eq!(intents(body).len(), 1, "{body}");
        assert!(error("duration(\"forever\");")
            .contains("duration: window: duration \"forever\" is not allowed"));
        assert!(error("in_cidr(\"1.2.3.4\", \"nonsense\");").contains("not a CIDR"));
        assert!(error("once_per([()][0], \"1m\");").contains("key is ()"));
        assert!(error("count(\"k\", \"1y\");").contains("unknown unit"));
    }

    #[test]
    fn counters_persist_across_events_per_playbook() {
        let (_d, rt) = one(
            "if once_per(event.destination.ip, \"10m\") { tag_ip(event.destination.ip, \"x\"); }",
        );
        assert_eq!(intents_of(&rt, &c2_event()).len(), 1);
        assert_eq!(intents_of(&rt, &c2_event()).len(), 0);
        let mut later = c2_event();
        later.timestamp += chrono::Duration::minutes(11);
        assert_eq!(intents_of(&rt, &later).len(), 1);
    }

    #[test]
    fn approve_wraps_the_intent_it_is_given() {
        assert_eq!(
            intents("approve(quarantine(event.source.pod, #{ ttl: \"4h\" }), #{ timeout: \"30m\", on_timeout: \"apply\", approvers: [\"soc\"] });"),
            vec![json!({"action": "approve", "intent": {"action": "quarantine", "target": pod(), "ttl": "4h"}, "timeout": "30m", "default": "apply", "approvers": ["soc"]})]
        );
        assert_eq!(
            intents("let q = quarantine(event.source.pod); approve(q);")[0]["default"],
            "drop"
        );
        assert!(
            error("approve(quarantine(event.source.pod), #{ timeout: \"8d\" });")
                .contains("at most 7d")
        );
        assert!(
            error("approve(quarantine(event.source.pod), #{ on_timeout: \"maybe\" });")
                .contains("not \"apply\" or \"drop\"")
        );
        assert!(
            error("let q = quarantine(event.source.pod); approve(q); approve(q);")
                .contains("already awaits approval")
        );
        assert!(error("approve(log(\"info\", \"x\"));").contains("needs no approval"));
    }

    #[test]
    fn too_many_intents_in_one_run_is_an_error() {
        assert!(
            error("for i in 0..100 { log(\"info\", `${i}`); }").contains("more than 64 intents")
        );
    }
}
