//! What of the event a playbook reads, found in its syntax tree, so that
//! the event map is built with only that (`event_map::event_map_reading`).
//!
//! Building the whole map (formatting the timestamp, every address, the
//! observer, the vendor groups) was half of what a matched event cost to
//! evaluate, and the shipped playbooks read a dozen of its fields. The
//! analysis is conservative: `event` used in any way other than a chain of
//! named properties (passed whole, indexed, iterated, a method called on
//! it) reads all of it, and a chain reads everything below its last named
//! property (`event.source.pod` passed to `quarantine` is the whole pod;
//! `event.source.pod.labels["app"]` is all the labels). What a script can
//! reach is exactly what it could reach in the whole map: scripts cannot
//! name a property at run time (`eval` is disabled, `event` is a constant
//! and there are no modules), so a property absent from the projection is
//! one no expression of the script reads.

use std::collections::BTreeMap;

use rhai::{ASTNode, Expr, AST};

/// The properties read below one point of the event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Need {
    /// Everything below here.
    All,
    /// These properties only (none: nothing is read).
    Fields(BTreeMap<String, Need>),
}

static ALL: Need = Need::All;

impl Default for Need {
    fn default() -> Self {
        Need::Fields(BTreeMap::new())
    }
}

impl Need {
    /// What is read below `key`, if anything is.
    pub fn get(&self, key: &str) -> Option<&Need> {
        match self {
            Need::All => Some(&ALL),
            Need::Fields(m) => m.get(key),
        }
    }

    pub fn wants(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    pub fn is_all(&self) -> bool {
        matches!(self, Need::All)
    }

    /// Adds a read of everything below `path` (the whole event when empty).
    pub fn add(&mut self, path: &[String]) {
        let Need::Fields(m) = self else { return };
        match path.split_first() {
            None => *self = Need::All,
            Some((first, rest)) => m.entry(first.clone()).or_default().add_below(rest),
        }
    }

    /// `add` for a node that a property chain reached: an empty rest means
    /// the chain ended here, so all of it.
    fn add_below(&mut self, rest: &[String]) {
        if rest.is_empty() {
            *self = Need::All;
        } else {
            self.add(rest);
        }
    }

    /// What either reads.
    pub fn union(&mut self, other: &Need) {
        match (&mut *self, other) {
            (Need::All, _) => {}
            (_, Need::All) => *self = Need::All,
            (Need::Fields(a), Need::Fields(b)) => {
                for (k, v) in b {
                    a.entry(k.clone()).or_default().union(v);
                }
            }
        }
    }
}

/// What `ast` (its statements and its functions) reads of `event`.
pub fn of(ast: &AST) -> Need {
    let mut need = Need::default();
    ast.walk(&mut |path: &[ASTNode]| {
        let Some(ASTNode::Expr(e @ Expr::Variable(v, ..))) = path.last() else {
            return true;
        };
        if v.1.as_str() != "event" {
            return true;
        }
        let chain = match path.iter().rev().nth(1) {
            Some(ASTNode::Expr(parent @ Expr::Dot(bin, ..))) if std::ptr::eq(&bin.lhs, *e) => {
                properties(parent)
            }
            _ => Vec::new(),
        };
        need.add(&chain);
        // Nothing below matters once everything is read.
        !need.is_all()
    });
    need
}

/// `event.source.pod.labels["app"].len()` → `["source", "pod", "labels"]`:
/// the named properties of a chain up to the first link that is not one.
pub(crate) fn properties(dot: &Expr) -> Vec<String> {
    let mut segs = Vec::new();
    let Expr::Dot(bin, ..) = dot else {
        return segs;
    };
    let mut cur = &bin.rhs;
    loop {
        match cur {
            Expr::Property(p, _) => {
                segs.push(p.2.to_string());
                break;
            }
            Expr::Dot(b, ..) | Expr::Index(b, ..) => {
                let Expr::Property(p, _) = &b.lhs else { break };
                segs.push(p.2.to_string());
                if matches!(cur, Expr::Index(..)) {
                    break;
                }
                cur = &b.rhs;
            }
            _ => break,
        }
    }
    segs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::playbook::sandbox;

    fn need(script: &str) -> Need {
        let engine = rhai::Engine::new_raw();
        let ast = engine
            .compile_with_scope(&sandbox::compile_scope(), script)
            .expect("compiles");
        of(&ast)
    }

    fn fields(paths: &[&[&str]]) -> Need {
        let mut n = Need::default();
        for p in paths {
            n.add(&p.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        }
        n
    }

    #[test]
    fn property_chains_read_what_they_name_and_all_below() {
        assert_eq!(
            need("let a = event.source.ip; let b = `${event.threat.name}`; let c = event.source.pod;"),
            fields(&[&["source", "ip"], &["threat", "name"], &["source", "pod"]])
        );
        assert_eq!(
            need("let x = event.source.pod.labels[\"app\"]; let y = event.threat.name.len();"),
            fields(&[&["source", "pod", "labels"], &["threat", "name"]])
        );
        // The whole pod covers its name.
        let n = need("let a = event.destination.pod; let b = event.destination.pod.name;");
        assert_eq!(
            n.get("destination").and_then(|d| d.get("pod")),
            Some(&Need::All)
        );
        assert!(!n.wants("source"));
        assert_eq!(need("let x = 1;"), Need::default());
    }

    #[test]
    fn event_used_other_than_by_a_named_property_reads_all_of_it() {
        for script in [
            "let e = event; let x = e.timestamp;",
            "print(event);",
            "let k = event.keys();",
            "let x = event[\"source\"];",
            "for k in event.keys() { print(k); }",
            "fn f(e) { e.timestamp } let x = f(event);",
            "let f = || event.timestamp; let x = f.call();",
            "let x = \"source\" in event;",
        ] {
            assert_eq!(need(script), Need::All, "{script}");
        }
    }

    #[test]
    fn unions_keep_the_wider_read() {
        let mut a = fields(&[&["source", "ip"]]);
        a.union(&fields(&[&["source"], &["id"]]));
        assert_eq!(a, fields(&[&["source"], &["id"]]));
        a.union(&Need::All);
        assert_eq!(a, Need::All);
    }

    /// The shipped playbooks over a storm from `riposte gen` decide exactly
    /// the same on the map built for what they read as on the whole map
    /// (which one more playbook, reading `event` whole, forces).
    #[test]
    fn the_shipped_playbooks_decide_the_same_on_the_map_of_what_they_read() {
        use std::net::IpAddr;
        use std::path::Path;

        use riposte_firewall::{parse_record, ParseOptions, Parsed};
        use riposte_gen::{GenOptions, Generator};

        use crate::decide::playbook::runtime::testing::runtime;
        use crate::decide::playbook::PlaybookConfig;

        let shipped = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../playbooks"));
        let mut files = Vec::new();
        for entry in std::fs::read_dir(shipped).expect("playbooks dir") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "rhai") {
                let name = path
                    .file_name()
                    .expect("name")
                    .to_string_lossy()
                    .into_owned();
                files.push((name, std::fs::read_to_string(&path).expect("read")));
            }
        }
        let borrowed: Vec<(&str, &str)> = files
            .iter()
            .map(|(n, s)| (n.as_str(), s.as_str()))
            .collect();
        let (_a, projected) = runtime(&borrowed, PlaybookConfig::default());
        let whole =
            "// name: zz-whole\n// trigger: any\n// mode: enforce\n// order: 999\nlet e = event;\n";
        let mut with_whole = borrowed.clone();
        with_whole.push(("zz-whole.rhai", whole));
        let (_b, full) = runtime(&with_whole, PlaybookConfig::default());
        assert!(
            !projected.current().reads.is_all(),
            "the shipped playbooks read a part"
        );
        assert!(full.current().reads.is_all());

        let mut gen = Generator::new(GenOptions {
            seed: 7,
            c2_share: 0.3,
            threat_share: 0.5,
            url_share: 0.1,
            ..GenOptions::default()
        })
        .expect("generator");
        let pods: std::collections::HashMap<IpAddr, _> = gen
            .pods()
            .iter()
            .map(|p| (IpAddr::V4(p.ip), std::sync::Arc::new(p.to_pod_context())))
            .collect();
        let mut decided = 0;
        for _ in 0..3_000 {
            let mut line = Vec::new();
            gen.write_line(&mut line);
            let Ok(Parsed::Event(mut ev)) = parse_record(&line, &ParseOptions::default()) else {
                continue;
            };
            ev.source_pod = ev.source_ip.and_then(|ip| pods.get(&ip).cloned());
            ev.destination_pod = ev.destination_ip.and_then(|ip| pods.get(&ip).cloned());
            let a = projected.evaluate(&ev);
            let b: Vec<_> = full
                .evaluate(&ev)
                .into_iter()
                .filter(|d| d.playbook != "zz-whole")
                .collect();
            assert_eq!(a.len(), b.len(), "event {}", ev.id);
            for (x, y) in a.iter().zip(&b) {
                assert_eq!(
                    (&x.playbook, &x.outcome, &x.intents),
                    (&y.playbook, &y.outcome, &y.intents),
                    "event {}",
                    ev.id
                );
            }
            decided += a.iter().filter(|d| !d.intents.is_empty()).count();
        }
        assert!(decided > 500, "the storm decided {decided} times");
    }
}
