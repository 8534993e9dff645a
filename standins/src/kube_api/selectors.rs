//! `labelSelector` and `fieldSelector`, parsed with the grammar of
//! apimachinery's `labels.Parse` and `fields.ParseSelector`.

use std::collections::BTreeMap;

use serde_json::Value;

use super::resources::ResourceType;
use super::validate;

/// One label requirement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    Exists(String),
    NotExists(String),
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    GreaterThan(String, i64),
    LessThan(String, i64),
}

/// A parsed label selector: every requirement must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector(pub Vec<Requirement>);

impl LabelSelector {
    /// Parses the `labelSelector` query parameter. The error is the
    /// message of a 400 BadRequest.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut lexer = Lexer::new(text);
        let mut reqs = Vec::new();
        loop {
            lexer.skip_ws();
            if lexer.done() {
                break;
            }
            reqs.push(parse_requirement(&mut lexer)?);
            lexer.skip_ws();
            if lexer.done() {
                break;
            }
            if !lexer.eat(',') {
                return Err(format!(
                    "unable to parse requirement: found '{}', expected: ','",
                    lexer.rest()
                ));
            }
        }
        Ok(Self(reqs))
    }

    /// Whether `labels` satisfy every requirement.
    pub fn matches(&self, labels: Option<&serde_json::Map<String, Value>>) -> bool {
        let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        self.0.iter().all(|r| match r {
            Requirement::Exists(k) => get(k).is_some(),
            Requirement::NotExists(k) => get(k).is_none(),
            Requirement::Equals(k, v) => get(k) == Some(v.as_str()),
            Requirement::NotEquals(k, v) => get(k) != Some(v.as_str()),
            Requirement::In(k, vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            Requirement::NotIn(k, vs) => !get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            Requirement::GreaterThan(k, n) => get(k)
                .and_then(|x| x.parse::<i64>().ok())
                .is_some_and(|x| x > *n),
            Requirement::LessThan(k, n) => get(k)
                .and_then(|x| x.parse::<i64>().ok())
                .is_some_and(|x| x < *n),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

struct Lexer<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Lexer<'a> {
    fn new(s: &'a str) -> Self {
        Self { s, pos: 0 }
    }
    fn rest(&self) -> &'a str {
        &self.s[self.pos..]
    }
    fn done(&self) -> bool {
        self.pos >= self.s.len()
    }
    fn skip_ws(&mut self) {
        while let Some(c) = self.rest().chars().next() {
            if c.is_whitespace() {
                self.pos += c.len_utf8();
            } else {
                break;
            }
        }
    }
    fn eat(&mut self, c: char) -> bool {
        if self.rest().starts_with(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }
    fn eat_str(&mut self, t: &str) -> bool {
        if self.rest().starts_with(t) {
            self.pos += t.len();
            true
        } else {
            false
        }
    }
    /// An identifier: everything up to whitespace or one of `!=<>(),`.
    fn ident(&mut self) -> &'a str {
        let start = self.pos;
        while let Some(c) = self.rest().chars().next() {
            if c.is_whitespace() || "!=<>(),".contains(c) {
                break;
            }
            self.pos += c.len_utf8();
        }
        &self.s[start..self.pos]
    }
    /// `in` and `notin` are keywords only when a separator follows.
    fn keyword(&mut self, word: &str) -> bool {
        let rest = self.rest();
        if let Some(after) = rest.strip_prefix(word) {
            let next = after.chars().next();
            if next.is_none_or(|c| c.is_whitespace() || c == '(') {
                self.pos += word.len();
                return true;
            }
        }
        false
    }
}

fn check_key(key: &str) -> Result<(), String> {
    if key.is_empty() {
        return Err("unable to parse requirement: found '', expected: identifier".into());
    }
    validate::qualified_name(key)
        .map_err(|e| format!("unable to parse requirement: key: Invalid value: \"{key}\": {e}"))
}

fn check_value(i: usize, v: &str) -> Result<(), String> {
    validate::label_value(v).map_err(|e| {
        format!("unable to parse requirement: values[{i}][{v}]: Invalid value: \"{v}\": {e}")
    })
}

fn parse_requirement(lx: &mut Lexer<'_>) -> Result<Requirement, String> {
    if lx.eat('!') {
        lx.skip_ws();
        let key = lx.ident();
        check_key(key)?;
        return Ok(Requirement::NotExists(key.to_string()));
    }
    let key = lx.ident().to_string();
    check_key(&key)?;
    lx.skip_ws();
    if lx.done() || lx.rest().starts_with(',') {
        return Ok(Requirement::Exists(key));
    }
    if lx.eat_str("==") || lx.eat('=') {
        let v = single_value(lx)?;
        return Ok(Requirement::Equals(key, v));
    }
    if lx.eat_str("!=") {
        let v = single_value(lx)?;
        return Ok(Requirement::NotEquals(key, v));
    }
    if lx.eat('>') || lx.eat('<') {
        let gt = lx.s[..lx.pos].ends_with('>');
        let v = single_value(lx)?;
        let n: i64 = v.parse().map_err(|_| {
            format!("unable to parse requirement: values[0]: Invalid value: \"{v}\": for 'Gt', 'Lt' operators, the value must be an integer")
        })?;
        return Ok(if gt {
            Requirement::GreaterThan(key, n)
        } else {
            Requirement::LessThan(key, n)
        });
    }
    if lx.keyword("notin") {
        return Ok(Requirement::NotIn(key, value_set(lx)?));
    }
    if lx.keyword("in") {
        return Ok(Requirement::In(key, value_set(lx)?));
    }
    Err(format!(
        "unable to parse requirement: found '{}', expected: in, notin, =, ==, !=, gt, lt",
        lx.rest()
    ))
}

fn single_value(lx: &mut Lexer<'_>) -> Result<String, String> {
    lx.skip_ws();
    let v = lx.ident().to_string();
    check_value(0, &v)?;
    Ok(v)
}

fn value_set(lx: &mut Lexer<'_>) -> Result<Vec<String>, String> {
    lx.skip_ws();
    if !lx.eat('(') {
        return Err(format!(
            "unable to parse requirement: found '{}', expected: '('",
            lx.rest()
        ));
    }
    let mut values = Vec::new();
    loop {
        lx.skip_ws();
        let v = lx.ident().to_string();
        check_value(values.len(), &v)?;
        values.push(v);
        lx.skip_ws();
        if lx.eat(')') {
            break;
        }
        if !lx.eat(',') {
            return Err(format!(
                "unable to parse requirement: found '{}', expected: ',', ')' or identifier",
                lx.rest()
            ));
        }
    }
    // `in ()` parses as one empty value, which is what the API server does.
    Ok(values)
}

/// One field selector term.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldTerm {
    pub field: String,
    pub value: String,
    pub equal: bool,
}

/// A parsed field selector: every term must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector(pub Vec<FieldTerm>);

impl FieldSelector {
    /// Parses `fieldSelector` and checks that `res` supports each field.
    pub fn parse(text: &str, res: &ResourceType) -> Result<Self, String> {
        let mut terms = Vec::new();
        for part in split_unescaped(text, ',') {
            if part.is_empty() {
                continue;
            }
            let (field, value, equal) = if let Some(i) = find_unescaped(&part, "!=") {
                (&part[..i], &part[i + 2..], false)
            } else if let Some(i) = find_unescaped(&part, "==") {
                (&part[..i], &part[i + 2..], true)
            } else if let Some(i) = find_unescaped(&part, "=") {
                (&part[..i], &part[i + 1..], true)
            } else {
                return Err(format!(
                    "invalid selector: '{text}'; can't understand '{part}'"
                ));
            };
            let field = field.trim();
            if !res.supports_field(field) {
                // Built-in types answer through their field label conversion
                // function; custom resources through the generic one.
                return Err(if res.builtin {
                    format!("field label not supported: {field}")
                } else {
                    format!(
                        "\"{field}\" is not a known field selector: only \"{}\"",
                        known_fields(res).join("\", \"")
                    )
                });
            }
            terms.push(FieldTerm {
                field: field.to_string(),
                value: unescape(value),
                equal,
            });
        }
        Ok(Self(terms))
    }

    /// Whether `obj` satisfies every term.
    pub fn matches(&self, obj: &Value) -> bool {
        self.0
            .iter()
            .all(|t| (field_value(obj, &t.field) == t.value) == t.equal)
    }

    /// The name pinned by `metadata.name=x`, which narrows a lookup.
    pub fn pinned_name(&self) -> Option<&str> {
        self.0
            .iter()
            .find(|t| t.equal && t.field == "metadata.name")
            .map(|t| t.value.as_str())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn known_fields(res: &ResourceType) -> Vec<&'static str> {
    let mut v = vec!["metadata.name"];
    if res.namespaced {
        v.push("metadata.namespace");
    }
    v.extend(res.field_labels.iter().copied());
    v
}

fn split_unescaped(s: &str, sep: char) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut escaped = false;
    for c in s.chars() {
        if escaped {
            cur.push('\\');
            cur.push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == sep {
            out.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    if escaped {
        cur.push('\\');
    }
    out.push(cur);
    out
}

fn find_unescaped(s: &str, pat: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            i += 2;
            continue;
        }
        if s[i..].starts_with(pat) {
            return Some(i);
        }
        i += 1;
    }
    None
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut escaped = false;
    for c in s.chars() {
        if escaped {
            out.push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else {
            out.push(c);
        }
    }
    out
}

/// The string a field selector compares for `label` on `obj`: absent
/// fields are the empty string (so `spec.nodeName=` finds unscheduled
/// pods), booleans and numbers in their text form.
pub fn field_value(obj: &Value, label: &str) -> String {
    let path: &str = match label {
        // The core Event's `source` selector is the reporting component.
        "source" => "source.component",
        other => other,
    };
    let mut cur = obj;
    for part in path.split('.') {
        match cur.get(part) {
            Some(v) => cur = v,
            None => {
                return if label == "spec.hostNetwork" || label == "spec.unschedulable" {
                    "false".into()
                } else {
                    String::new()
                }
            }
        }
    }
    match cur {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    }
}

/// The labels of an object, for [`LabelSelector::matches`].
pub fn labels_of(obj: &Value) -> Option<&serde_json::Map<String, Value>> {
    obj.get("metadata")?.get("labels")?.as_object()
}

/// Labels as a sorted map of strings (for tests and fixtures).
pub fn label_map(obj: &Value) -> BTreeMap<String, String> {
    labels_of(obj)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kube_api::resources::lookup;
    use serde_json::json;

    fn sel(s: &str) -> LabelSelector {
        LabelSelector::parse(s).expect("valid selector")
    }

    fn labels(v: Value) -> serde_json::Map<String, Value> {
        v.as_object().cloned().expect("object")
    }

    #[test]
    fn every_operator_matches_like_the_api_server() {
        let l = labels(json!({"app": "web", "tier": "front", "n": "5"}));
        assert!(sel("app=web").matches(Some(&l)));
        assert!(sel("app==web").matches(Some(&l)));
        assert!(!sel("app!=web").matches(Some(&l)));
        assert!(
            sel("missing!=x").matches(Some(&l)),
            "!= matches absent keys"
        );
        assert!(sel("tier in (front, back)").matches(Some(&l)));
        assert!(!sel("tier notin (front)").matches(Some(&l)));
        assert!(sel("missing notin (x)").matches(Some(&l)));
        assert!(sel("app").matches(Some(&l)));
        assert!(sel("!riposte.io/quarantine").matches(Some(&l)));
        assert!(!sel("!app").matches(Some(&l)));
        assert!(sel("n>4,n<6").matches(Some(&l)));
        assert!(sel("app=web, tier=front").matches(Some(&l)));
        assert!(!sel("app=web,tier=back").matches(Some(&l)));
        assert!(sel("").matches(None));
        assert!(!sel("app").matches(None));
    }

    #[test]
    fn in_needs_a_separator_to_be_a_keyword() {
        let l = labels(json!({"index": "1"}));
        assert!(sel("index").matches(Some(&l)));
        assert!(sel("index in (1)").matches(Some(&l)));
    }

    #[test]
    fn bad_selectors_are_refused() {
        for bad in [
            "app=a b",
            "app in x",
            "=x",
            "a==b c",
            "n>x",
            "bad key=x",
            "app in (a",
        ] {
            assert!(
                LabelSelector::parse(bad).is_err(),
                "{bad} should be refused"
            );
        }
    }

    #[test]
    fn field_selectors_check_supported_fields() {
        let pods = lookup("pods").expect("served");
        let s =
            FieldSelector::parse("status.podIP=10.0.0.1,spec.nodeName!=n1", pods).expect("valid");
        let pod = json!({"spec": {"nodeName": "n2"}, "status": {"podIP": "10.0.0.1"}});
        assert!(s.matches(&pod));
        let err = FieldSelector::parse("spec.containers=x", pods).expect_err("unsupported");
        assert_eq!(err, "field label not supported: spec.containers");
        let nps = lookup("networkpolicies").expect("served");
        assert!(FieldSelector::parse("status.phase=Running", nps).is_err());
    }

    #[test]
    fn absent_fields_compare_as_empty() {
        let pods = lookup("pods").expect("served");
        let s = FieldSelector::parse("spec.nodeName=", pods).expect("valid");
        assert!(s.matches(&json!({"spec": {}})));
        assert!(!s.matches(&json!({"spec": {"nodeName": "n"}})));
        let s = FieldSelector::parse("metadata.name=a\\,b", pods).expect("valid");
        assert_eq!(s.pinned_name(), Some("a,b"));
    }
}
