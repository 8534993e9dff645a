//! Object validation: the name, label and annotation syntax every object
//! must follow, and the handful of per-kind rules a real API server would
//! enforce on what Riposte writes (pods, network policies, events).

use serde_json::{Map, Value};

use super::resources::{NameRule, ResourceType};
use super::status::Cause;

const QUALIFIED_NAME_MSG: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const LABEL1035_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";

/// Annotations may hold at most this many bytes, keys and values together.
pub const MAX_ANNOTATIONS_BYTES: usize = 256 * 1024;

fn is_alnum(c: u8) -> bool {
    c.is_ascii_alphanumeric()
}

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`, at most 63 characters.
fn name_part(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("name part must be non-empty".into());
    }
    if s.len() > 63 {
        return Err("name part must be no more than 63 characters".into());
    }
    let b = s.as_bytes();
    let ok = is_alnum(b[0])
        && is_alnum(b[b.len() - 1])
        && b.iter()
            .all(|&c| is_alnum(c) || c == b'-' || c == b'_' || c == b'.');
    if ok {
        Ok(())
    } else {
        Err(QUALIFIED_NAME_MSG.into())
    }
}

/// A label or annotation key: `[prefix/]name` with a DNS subdomain prefix.
pub fn qualified_name(s: &str) -> Result<(), String> {
    let mut parts = s.split('/');
    let (prefix, name) = match (parts.next(), parts.next(), parts.next()) {
        (Some(n), None, None) => (None, n),
        (Some(p), Some(n), None) => (Some(p), n),
        _ => {
            return Err("a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')".into())
        }
    };
    if let Some(p) = prefix {
        if p.is_empty() {
            return Err("prefix part must be non-empty".into());
        }
        dns_subdomain(p).map_err(|e| format!("prefix part {e}"))?;
    }
    name_part(name)
}

/// A label value: empty, or up to 63 characters of the name-part syntax.
pub fn label_value(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Ok(());
    }
    if s.len() > 63 {
        return Err("must be no more than 63 characters".into());
    }
    let b = s.as_bytes();
    let ok = is_alnum(b[0])
        && is_alnum(b[b.len() - 1])
        && b.iter()
            .all(|&c| is_alnum(c) || c == b'-' || c == b'_' || c == b'.');
    if ok {
        Ok(())
    } else {
        Err(LABEL_VALUE_MSG.into())
    }
}

fn is_label_char(c: u8) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-'
}

fn rfc1123_label_ok(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
        && b.iter().all(|&c| is_label_char(c))
}

/// RFC 1123 subdomain.
pub fn dns_subdomain(s: &str) -> Result<(), String> {
    if s.len() > 253 {
        return Err("must be no more than 253 characters".into());
    }
    if !s.is_empty() && s.split('.').all(rfc1123_label_ok) {
        Ok(())
    } else {
        Err(SUBDOMAIN_MSG.into())
    }
}

/// RFC 1123 label.
pub fn dns_label(s: &str) -> Result<(), String> {
    if s.len() > 63 {
        return Err("must be no more than 63 characters".into());
    }
    if rfc1123_label_ok(s) {
        Ok(())
    } else {
        Err(LABEL_MSG.into())
    }
}

/// RFC 1035 label: an RFC 1123 label starting with a letter.
pub fn dns_label_1035(s: &str) -> Result<(), String> {
    if s.len() > 63 {
        return Err("must be no more than 63 characters".into());
    }
    if rfc1123_label_ok(s) && s.as_bytes()[0].is_ascii_lowercase() {
        Ok(())
    } else {
        Err(LABEL1035_MSG.into())
    }
}

/// Checks an object name by the type's rule.
pub fn object_name(rule: NameRule, name: &str) -> Result<(), String> {
    match rule {
        NameRule::Subdomain => dns_subdomain(name),
        NameRule::Label => dns_label(name),
        NameRule::Label1035 => dns_label_1035(name),
    }
}

/// The causes for a map of labels at `field`.
pub fn labels(field: &str, labels: &Map<String, Value>, out: &mut Vec<Cause>) {
    for (k, v) in labels {
        if let Err(e) = qualified_name(k) {
            out.push(Cause::invalid(field, k, &e));
        }
        match v.as_str() {
            Some(s) => {
                if let Err(e) = label_value(s) {
                    out.push(Cause::invalid(field, s, &e));
                }
            }
            None => out.push(Cause::invalid(field, &v.to_string(), "must be a string")),
        }
    }
}

fn annotations(ann: &Map<String, Value>, out: &mut Vec<Cause>) {
    let mut total = 0;
    for (k, v) in ann {
        if let Err(e) = qualified_name(&k.to_ascii_lowercase()) {
            out.push(Cause::invalid("metadata.annotations", k, &e));
        }
        total += k.len() + v.as_str().map_or(0, str::len);
    }
    if total > MAX_ANNOTATIONS_BYTES {
        out.push(Cause::too_long(
            "metadata.annotations",
            MAX_ANNOTATIONS_BYTES,
        ));
    }
}

/// Metadata rules common to every type.
pub fn metadata(res: &ResourceType, obj: &Value, out: &mut Vec<Cause>) {
    let meta = obj.get("metadata");
    let name = meta
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("");
    if name.is_empty() {
        out.push(Cause::required(
            "metadata.name",
            "name or generateName is required",
        ));
    } else if let Err(e) = object_name(res.name_rule, name) {
        out.push(Cause::invalid("metadata.name", name, &e));
    }
    let Some(meta) = meta else { return };
    if let Some(l) = meta.get("labels").and_then(Value::as_object) {
        labels("metadata.labels", l, out);
    }
    if let Some(a) = meta.get("annotations").and_then(Value::as_object) {
        annotations(a, out);
    }
    if let Some(fins) = meta.get("finalizers").and_then(Value::as_array) {
        for (i, f) in fins.iter().enumerate() {
            let f = f.as_str().unwrap_or("");
            if let Err(e) = qualified_name(f) {
                out.push(Cause::invalid(format!("metadata.finalizers[{i}]"), f, &e));
            }
        }
    }
    if let Some(refs) = meta.get("ownerReferences").and_then(Value::as_array) {
        let mut controllers = 0;
        for (i, r) in refs.iter().enumerate() {
            for key in ["apiVersion", "kind", "name", "uid"] {
                if r.get(key).and_then(Value::as_str).is_none_or(str::is_empty) {
                    out.push(Cause::required(
                        format!("metadata.ownerReferences[{i}].{key}"),
                        "",
                    ));
                }
            }
            if r.get("controller").and_then(Value::as_bool) == Some(true) {
                controllers += 1;
            }
        }
        if controllers > 1 {
            out.push(Cause::invalid(
                "metadata.ownerReferences",
                "",
                "Only one reference can have Controller set to true",
            ));
        }
    }
}

/// Per-kind rules, on create (`old` is `None`) or update.
pub fn kind_rules(res: &ResourceType, obj: &Value, old: Option<&Value>, out: &mut Vec<Cause>) {
    match (res.group, res.kind) {
        ("", "Pod") => pod(obj, old, out),
        ("networking.k8s.io", "NetworkPolicy") => network_policy(obj, out),
        ("events.k8s.io", "Event") => events_v1(obj, old, out),
        ("", "Event") => core_event(obj, out),
        ("apps", _) => workload_selector(obj, old, out),
        _ => {}
    }
}

fn pod(obj: &Value, old: Option<&Value>, out: &mut Vec<Cause>) {
    let spec = obj.get("spec");
    let containers = spec
        .and_then(|s| s.get("containers"))
        .and_then(Value::as_array);
    match containers {
        None => out.push(Cause::required("spec.containers", "")),
        Some(cs) if cs.is_empty() => out.push(Cause::required("spec.containers", "")),
        Some(cs) => {
            let mut seen = Vec::new();
            for (i, c) in cs.iter().enumerate() {
                let name = c.get("name").and_then(Value::as_str).unwrap_or("");
                if name.is_empty() {
                    out.push(Cause::required(format!("spec.containers[{i}].name"), ""));
                } else if let Err(e) = dns_label(name) {
                    out.push(Cause::invalid(
                        format!("spec.containers[{i}].name"),
                        name,
                        &e,
                    ));
                } else if seen.contains(&name) {
                    out.push(Cause {
                        reason: "FieldValueDuplicate".into(),
                        message: format!("Duplicate value: {}", super::status::quote(name)),
                        field: format!("spec.containers[{i}].name"),
                    });
                }
                seen.push(name);
                if c.get("image")
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
                {
                    out.push(Cause::required(format!("spec.containers[{i}].image"), ""));
                }
            }
        }
    }
    if let Some(old) = old {
        if strip_mutable_pod_spec(obj.get("spec")) != strip_mutable_pod_spec(old.get("spec")) {
            out.push(Cause::forbidden(
                "spec",
                "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
            ));
        }
    }
}

/// The pod spec without the fields an update may change.
fn strip_mutable_pod_spec(spec: Option<&Value>) -> Value {
    let mut s = spec.cloned().unwrap_or(Value::Null);
    if let Some(m) = s.as_object_mut() {
        m.remove("activeDeadlineSeconds");
        m.remove("tolerations");
        m.remove("terminationGracePeriodSeconds");
        for key in ["containers", "initContainers"] {
            if let Some(cs) = m.get_mut(key).and_then(Value::as_array_mut) {
                for c in cs {
                    if let Some(c) = c.as_object_mut() {
                        c.remove("image");
                    }
                }
            }
        }
    }
    s
}

fn selector(field: &str, sel: &Value, out: &mut Vec<Cause>) {
    if let Some(ml) = sel.get("matchLabels").and_then(Value::as_object) {
        labels(&format!("{field}.matchLabels"), ml, out);
    }
    if let Some(exprs) = sel.get("matchExpressions").and_then(Value::as_array) {
        for (i, e) in exprs.iter().enumerate() {
            let at = format!("{field}.matchExpressions[{i}]");
            let key = e.get("key").and_then(Value::as_str).unwrap_or("");
            if let Err(msg) = qualified_name(key) {
                out.push(Cause::invalid(format!("{at}.key"), key, &msg));
            }
            let values = e.get("values").and_then(Value::as_array);
            let n = values.map_or(0, Vec::len);
            let op = e.get("operator").and_then(Value::as_str).unwrap_or("");
            match op {
                "In" | "NotIn" if n == 0 => out.push(Cause::required(
                    format!("{at}.values"),
                    "must be specified when `operator` is 'In' or 'NotIn'",
                )),
                "Exists" | "DoesNotExist" if n > 0 => out.push(Cause::forbidden(
                    format!("{at}.values"),
                    "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                )),
                "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
                other => out.push(Cause::not_supported(
                    format!("{at}.operator"),
                    other,
                    &["In", "NotIn", "Exists", "DoesNotExist"],
                )),
            }
            for (j, v) in values.into_iter().flatten().enumerate() {
                let v = v.as_str().unwrap_or("");
                if let Err(msg) = label_value(v) {
                    out.push(Cause::invalid(format!("{at}.values[{j}]"), v, &msg));
                }
            }
        }
    }
}

fn cidr_ok(s: &str) -> bool {
    s.parse::<ipnet::IpNet>().is_ok()
}

fn network_policy(obj: &Value, out: &mut Vec<Cause>) {
    let Some(spec) = obj.get("spec") else {
        return;
    };
    if let Some(sel) = spec.get("podSelector") {
        selector("spec.podSelector", sel, out);
    }
    if let Some(types) = spec.get("policyTypes").and_then(Value::as_array) {
        for (i, t) in types.iter().enumerate() {
            let t = t.as_str().unwrap_or("");
            if t != "Ingress" && t != "Egress" {
                out.push(Cause::not_supported(
                    format!("spec.policyTypes[{i}]"),
                    t,
                    &["Ingress", "Egress"],
                ));
            }
        }
    }
    for (dir, peers_key) in [("ingress", "from"), ("egress", "to")] {
        let Some(rules) = spec.get(dir).and_then(Value::as_array) else {
            continue;
        };
        for (i, rule) in rules.iter().enumerate() {
            for (j, port) in rule
                .get("ports")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
            {
                if let Some(p) = port.get("protocol").and_then(Value::as_str) {
                    if !["TCP", "UDP", "SCTP"].contains(&p) {
                        out.push(Cause::not_supported(
                            format!("spec.{dir}[{i}].ports[{j}].protocol"),
                            p,
                            &["SCTP", "TCP", "UDP"],
                        ));
                    }
                }
            }
            for (j, peer) in rule
                .get(peers_key)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
            {
                let at = format!("spec.{dir}[{i}].{peers_key}[{j}]");
                if let Some(sel) = peer.get("podSelector") {
                    selector(&format!("{at}.podSelector"), sel, out);
                }
                if let Some(sel) = peer.get("namespaceSelector") {
                    selector(&format!("{at}.namespaceSelector"), sel, out);
                }
                if let Some(block) = peer.get("ipBlock") {
                    if peer.get("podSelector").is_some() || peer.get("namespaceSelector").is_some()
                    {
                        out.push(Cause::forbidden(
                            at.clone(),
                            "may not specify more than 1 peer type",
                        ));
                    }
                    let cidr = block.get("cidr").and_then(Value::as_str).unwrap_or("");
                    if cidr.is_empty() {
                        out.push(Cause::required(format!("{at}.ipBlock.cidr"), ""));
                    } else if !cidr_ok(cidr) {
                        out.push(Cause::invalid(
                            format!("{at}.ipBlock.cidr"),
                            cidr,
                            "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
                        ));
                    }
                    for (k, ex) in block
                        .get("except")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .enumerate()
                    {
                        let ex = ex.as_str().unwrap_or("");
                        let inside =
                            match (ex.parse::<ipnet::IpNet>(), cidr.parse::<ipnet::IpNet>()) {
                                (Ok(e), Ok(c)) => c.contains(&e) && e.prefix_len() > c.prefix_len(),
                                _ => false,
                            };
                        if !inside {
                            out.push(Cause::invalid(
                                format!("{at}.ipBlock.except[{k}]"),
                                ex,
                                "must be a strict subset of `cidr`",
                            ));
                        }
                    }
                }
            }
        }
    }
}

fn str_at<'a>(obj: &'a Value, path: &[&str]) -> &'a str {
    let mut cur = obj;
    for p in path {
        match cur.get(*p) {
            Some(v) => cur = v,
            None => return "",
        }
    }
    cur.as_str().unwrap_or("")
}

fn events_v1(obj: &Value, old: Option<&Value>, out: &mut Vec<Cause>) {
    if old.is_none() {
        // Creation is strict in events.k8s.io/v1; updates may come from
        // legacy writers and are checked loosely, as upstream does.
        if str_at(obj, &["eventTime"]).is_empty() {
            out.push(Cause::required("eventTime", ""));
        }
        for key in [
            "reportingController",
            "reportingInstance",
            "action",
            "reason",
        ] {
            if str_at(obj, &[key]).is_empty() {
                out.push(Cause::required(key, ""));
            }
        }
        let controller = str_at(obj, &["reportingController"]);
        if !controller.is_empty() {
            if let Err(e) = qualified_name(controller) {
                out.push(Cause::invalid("reportingController", controller, &e));
            }
        }
    }
    for key in ["action", "reason", "reportingInstance"] {
        if str_at(obj, &[key]).len() > 128 {
            out.push(Cause::too_long(key, 128));
        }
    }
    if str_at(obj, &["note"]).len() > 1024 {
        out.push(Cause::too_long("note", 1024));
    }
    let t = str_at(obj, &["type"]);
    if t != "Normal" && t != "Warning" {
        out.push(Cause::not_supported("type", t, &["Normal", "Warning"]));
    }
    let ns = str_at(obj, &["metadata", "namespace"]);
    let regarding_ns = str_at(obj, &["regarding", "namespace"]);
    if !regarding_ns.is_empty() && regarding_ns != ns {
        out.push(Cause::invalid(
            "regarding.namespace",
            regarding_ns,
            "does not match event.namespace",
        ));
    }
}

fn core_event(obj: &Value, out: &mut Vec<Cause>) {
    let ns = str_at(obj, &["metadata", "namespace"]);
    let involved_ns = str_at(obj, &["involvedObject", "namespace"]);
    if !involved_ns.is_empty() && involved_ns != ns {
        out.push(Cause::invalid(
            "involvedObject.namespace",
            involved_ns,
            "does not match event.namespace",
        ));
    }
    let t = str_at(obj, &["type"]);
    if !t.is_empty() && t != "Normal" && t != "Warning" {
        out.push(Cause::not_supported("type", t, &["Normal", "Warning"]));
    }
}

fn workload_selector(obj: &Value, old: Option<&Value>, out: &mut Vec<Cause>) {
    let Some(spec) = obj.get("spec") else {
        out.push(Cause::required("spec", ""));
        return;
    };
    let Some(sel) = spec.get("selector") else {
        out.push(Cause::required("spec.selector", ""));
        return;
    };
    selector("spec.selector", sel, out);
    let template_labels = spec
        .get("template")
        .and_then(|t| t.get("metadata"))
        .and_then(|m| m.get("labels"))
        .and_then(Value::as_object);
    let matches = sel
        .get("matchLabels")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .all(|(k, v)| template_labels.and_then(|l| l.get(k)) == Some(v));
    if !matches {
        out.push(Cause::invalid(
            "spec.template.metadata.labels",
            &template_labels
                .map(|l| Value::Object(l.clone()).to_string())
                .unwrap_or_default(),
            "`selector` does not match template `labels`",
        ));
    }
    if let Some(old) = old {
        if old.get("spec").and_then(|s| s.get("selector")) != Some(sel) {
            out.push(Cause::invalid(
                "spec.selector",
                &sel.to_string(),
                "field is immutable",
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kube_api::resources::lookup;
    use serde_json::json;

    #[test]
    fn label_keys_and_values_follow_kubernetes_syntax() {
        assert!(qualified_name("riposte.io/quarantine").is_ok());
        assert!(qualified_name("app").is_ok());
        assert!(qualified_name("a/b/c").is_err());
        assert!(
            qualified_name("Riposte.IO/x").is_err(),
            "prefix must be lowercase"
        );
        assert!(qualified_name(&"x".repeat(64)).is_err());
        assert!(qualified_name("/x").is_err());
        assert!(label_value("").is_ok());
        assert!(label_value("My_value-1.2").is_ok());
        assert!(label_value("bad value").is_err());
        assert!(label_value("-x").is_err());
        assert!(label_value(&"v".repeat(64)).is_err());
    }

    #[test]
    fn names_follow_the_type_rule() {
        assert!(object_name(NameRule::Subdomain, "checkout-7d9f.a").is_ok());
        assert!(object_name(NameRule::Subdomain, "Checkout").is_err());
        assert!(object_name(NameRule::Label, "a.b").is_err());
        assert!(object_name(NameRule::Label1035, "1abc").is_err());
        assert!(object_name(NameRule::Label, "1abc").is_ok());
    }

    #[test]
    fn pods_need_containers_and_keep_their_spec() {
        let pods = lookup("pods").expect("served");
        let mut causes = Vec::new();
        kind_rules(
            pods,
            &json!({"spec": {"containers": []}}),
            None,
            &mut causes,
        );
        assert_eq!(causes[0].field, "spec.containers");
        let old =
            json!({"spec": {"containers": [{"name": "a", "image": "x:1"}], "nodeName": "n1"}});
        let image_only =
            json!({"spec": {"containers": [{"name": "a", "image": "x:2"}], "nodeName": "n1"}});
        let mut causes = Vec::new();
        kind_rules(pods, &image_only, Some(&old), &mut causes);
        assert!(causes.is_empty(), "{causes:?}");
        let moved =
            json!({"spec": {"containers": [{"name": "a", "image": "x:1"}], "nodeName": "n2"}});
        kind_rules(pods, &moved, Some(&old), &mut causes);
        assert_eq!(causes[0].reason, "FieldValueForbidden");
    }

    #[test]
    fn network_policies_check_selectors_and_cidrs() {
        let np = lookup("networkpolicies").expect("served");
        let obj = json!({"spec": {
            "podSelector": {"matchExpressions": [{"key": "riposte.io/quarantine", "operator": "Exists", "values": ["x"]}]},
            "policyTypes": ["Ingress", "Sideways"],
            "egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8", "300.1.1.1/32"]}}]}]
        }});
        let mut causes = Vec::new();
        kind_rules(np, &obj, None, &mut causes);
        let fields: Vec<&str> = causes.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "spec.podSelector.matchExpressions[0].values",
                "spec.policyTypes[1]",
                "spec.egress[0].to[0].ipBlock.except[1]"
            ]
        );
    }

    #[test]
    fn new_style_events_need_their_reporting_fields() {
        let ev = lookup("events.events.k8s.io").expect("served");
        let obj = json!({"metadata": {"namespace": "shop"}, "type": "Normal",
                         "regarding": {"namespace": "other"}});
        let mut causes = Vec::new();
        kind_rules(ev, &obj, None, &mut causes);
        let fields: Vec<&str> = causes.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "eventTime",
                "reportingController",
                "reportingInstance",
                "action",
                "reason",
                "regarding.namespace"
            ]
        );
    }

    #[test]
    fn metadata_rules_name_the_field() {
        let pods = lookup("pods").expect("served");
        let obj = json!({"metadata": {"name": "p", "labels": {"riposte.io/quarantine": "not ok!"},
                                      "annotations": {"bad key": "v"}}});
        let mut causes = Vec::new();
        metadata(pods, &obj, &mut causes);
        assert_eq!(causes.len(), 2);
        assert_eq!(causes[0].field, "metadata.labels");
        assert_eq!(causes[1].field, "metadata.annotations");
    }
}
