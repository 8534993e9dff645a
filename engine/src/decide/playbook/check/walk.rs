//! One pass over a script's syntax tree.

use std::collections::HashMap;

use rhai::{ASTNode, Expr, FnCallExpr, Position, Stmt, AST};

use super::helpers::{self, Param, NOTIFY_KEYS};
use super::schema::{Kind, Schema};
use super::{domains, Checker, Finding, Level};

const COMPARISONS: &[&str] = &["==", "!=", "<", ">", "<=", ">="];
const LOG_LEVELS: &[&str] = &["trace", "debug", "info", "warn", "error"];

pub struct Walk<'a> {
    checker: &'a Checker,
    ast: &'a AST,
    /// The script's own functions: name → argument counts.
    script_fns: HashMap<String, Vec<usize>>,
    /// Variables whose kind is the same at every `let` and that are never
    /// assigned.
    vars: HashMap<String, Option<Kind>>,
    schema: &'static Schema,
}

impl<'a> Walk<'a> {
    pub fn new(checker: &'a Checker, ast: &'a AST) -> Walk<'a> {
        let mut script_fns: HashMap<String, Vec<usize>> = HashMap::new();
        for f in ast.iter_functions() {
            script_fns
                .entry(f.name.to_owned())
                .or_default()
                .push(f.params.len());
        }
        Walk {
            checker,
            ast,
            script_fns,
            vars: HashMap::new(),
            schema: Schema::get(),
        }
    }

    pub fn run(mut self, out: &mut Vec<Finding>) {
        self.infer_vars();
        let ast = self.ast;
        ast.walk(&mut |path: &[ASTNode]| {
            match path.last() {
                Some(ASTNode::Expr(Expr::FnCall(call, pos))) => self.call(call, *pos, out),
                Some(ASTNode::Stmt(Stmt::FnCall(call, pos))) => self.call(call, *pos, out),
                Some(ASTNode::Expr(Expr::Dot(..) | Expr::Index(..))) => {
                    // Only the outermost link of a chain names the path.
                    let inner = matches!(
                        path.iter().rev().nth(1),
                        Some(ASTNode::Expr(Expr::Dot(..) | Expr::Index(..)))
                    );
                    if let (false, Some(ASTNode::Expr(e))) = (inner, path.last()) {
                        self.event_path(e, out);
                    }
                }
                _ => {}
            }
            true
        });
    }

    /// `let x = <expr>` everywhere, with one kind, and no `x = …`.
    fn infer_vars(&mut self) {
        let mut vars: HashMap<String, Option<Kind>> = HashMap::new();
        let mut assigned = Vec::new();
        let ast = self.ast;
        ast.walk(&mut |path: &[ASTNode]| {
            match path.last() {
                Some(ASTNode::Stmt(Stmt::Var(x, ..))) => {
                    let kind = self.kind_of(&x.1);
                    vars.entry(x.0.name.to_string())
                        .and_modify(|k| {
                            if *k != kind {
                                *k = None;
                            }
                        })
                        .or_insert(kind);
                }
                Some(ASTNode::Stmt(Stmt::Assignment(x))) => {
                    if let Expr::Variable(v, ..) = &x.1.lhs {
                        assigned.push(v.1.to_string());
                    }
                }
                // Bound without `let`: a name shared with one is untyped.
                Some(ASTNode::Stmt(Stmt::For(x, ..))) => {
                    assigned.push(x.0.name.to_string());
                    if let Some(counter) = &x.1 {
                        assigned.push(counter.name.to_string());
                    }
                }
                _ => {}
            }
            true
        });
        for f in ast.iter_functions() {
            assigned.extend(f.params.iter().map(|p| p.to_string()));
        }
        for name in assigned {
            vars.insert(name, None);
        }
        self.vars = vars;
    }

    /// What an expression is, when the checker can tell.
    fn kind_of(&self, e: &Expr) -> Option<Kind> {
        if let Some(k) = literal_kind(e) {
            return Some(k);
        }
        match e {
            Expr::Variable(v, ..) => self.vars.get(v.1.as_str()).copied().flatten(),
            Expr::FnCall(call, _) if !call.is_operator_call() => helpers::returns(&call.name),
            Expr::FnCall(call, _) if COMPARISONS.contains(&call.name.as_str()) => Some(Kind::Bool),
            Expr::Dot(..) => match event_path(e) {
                Some((path, _)) => self.schema.lookup(&path).flatten(),
                None => None,
            },
            _ => None,
        }
    }

    fn call(&self, call: &FnCallExpr, pos: Position, out: &mut Vec<Finding>) {
        let name = call.name.as_str();
        if call.is_operator_call() {
            if COMPARISONS.contains(&name) && call.args.len() == 2 {
                self.comparison(name, &call.args[0], &call.args[1], pos, out);
            }
            return;
        }
        let argc = call.args.len();
        if let Some(counts) = self.script_fns.get(name) {
            if counts.contains(&argc) {
                return;
            }
        }
        let Some(helper) = helpers::helper(name) else {
            if !self.checker.is_std(name) && !helpers::KEYWORDS.contains(&name) {
                self.unknown_function(name, pos, out);
            }
            return;
        };
        let Some(sig) = helper.signatures.iter().find(|s| s.len() == argc) else {
            let mut counts: Vec<String> = helper
                .signatures
                .iter()
                .map(|s| s.len().to_string())
                .collect();
            counts.dedup();
            push(
                out,
                Level::Error,
                pos,
                format!(
                    "`{name}` takes {} argument(s), not {argc}: write {}",
                    counts.join(" or "),
                    helper.usage
                ),
            );
            return;
        };
        for (i, (param, arg)) in sig.iter().zip(call.args.iter()).enumerate() {
            self.argument(helper, i, *param, arg, out);
        }
        if name == "log" {
            if let Expr::StringConstant(level, p) = &call.args[0] {
                if !LOG_LEVELS.contains(&level.as_str()) {
                    push(
                        out,
                        Level::Error,
                        *p,
                        format!(
                            "`{level}` is not a log level: write one of {}",
                            LOG_LEVELS.join(", ")
                        ),
                    );
                }
            }
        }
        if name == "notify" {
            self.notify_fields(&call.args[1], out);
        }
    }

    fn unknown_function(&self, name: &str, pos: Position, out: &mut Vec<Finding>) {
        let known = helpers::HELPERS
            .iter()
            .map(|h| h.name)
            .chain(self.script_fns.keys().map(String::as_str));
        let hint = domains::closest(name, known)
            .or_else(|| domains::closest(name, self.checker.std.keys().map(String::as_str)))
            .map(|n| format!(": did you mean `{n}`?"))
            .unwrap_or_else(|| {
                ": see playbooks/README.md for the functions playbooks can call".into()
            });
        push(
            out,
            Level::Error,
            pos,
            format!("unknown function `{name}`{hint}"),
        );
    }

    fn argument(
        &self,
        helper: &helpers::Helper,
        i: usize,
        param: Param,
        arg: &Expr,
        out: &mut Vec<Finding>,
    ) {
        let name = helper.name;
        let pos = arg.position();
        let Some(kind) = literal_kind(arg).or_else(|| self.kind_of(arg)) else {
            return;
        };
        let ok = match param {
            Param::Target => matches!(kind, Kind::Map | Kind::String),
            Param::Str => kind == Kind::String,
            Param::Duration => {
                if let (Kind::Number, Expr::IntegerConstant(n, _)) = (kind, arg) {
                    push(out, Level::Error, pos, format!("`{name}`: the duration {n} has no unit: write \"{n}s\", \"{n}m\" or \"{n}h\""));
                    return;
                }
                matches!(kind, Kind::String | Kind::Number)
            }
            Param::Map(keys) => {
                if let (Kind::Map, Some(keys)) = (kind, keys) {
                    self.option_keys(name, keys, arg, out);
                }
                kind == Kind::Map
            }
            Param::StrOrArray => matches!(kind, Kind::String | Kind::Array),
            Param::Intent => false,
            Param::Any => kind != Kind::Unit,
        };
        if !ok {
            push(
                out,
                Level::Error,
                pos,
                format!(
                    "`{name}`: argument {} is {}, but it takes {}: write {}",
                    i + 1,
                    kind.name(),
                    param.describe(),
                    helper.usage
                ),
            );
        }
    }

    /// The keys of a literal options map, and the unit of its durations.
    fn option_keys(&self, func: &str, keys: &[&str], map: &Expr, out: &mut Vec<Finding>) {
        let Expr::Map(m, _) = map else { return };
        for (ident, value) in &m.0 {
            let key = ident.name.as_str();
            if !keys.contains(&key) {
                let hint = domains::closest(key, keys.iter().copied())
                    .map(|k| format!("did you mean `{k}`? "))
                    .unwrap_or_default();
                push(
                    out,
                    Level::Error,
                    ident.pos,
                    format!(
                        "`{func}` has no option `{key}`: {hint}it takes {}",
                        keys.join(", ")
                    ),
                );
                continue;
            }
            if matches!(key, "ttl" | "timeout") {
                match value {
                    Expr::IntegerConstant(n, p) => push(out, Level::Error, *p, format!("`{func}`: {key} {n} has no unit (it would be {n} seconds): write \"{n}h\", \"{n}m\" or \"{n}s\"")),
                    e => {
                        if let Some(k) = literal_kind(e).filter(|k| *k != Kind::String) {
                            push(out, Level::Error, e.position(), format!("`{func}`: {key} is {}, but it takes a duration string like \"4h\"", k.name()));
                        }
                    }
                }
            }
        }
    }

    /// `notify`'s special keys: a near miss is a typo; `severity` must be
    /// a severity name.
    fn notify_fields(&self, fields: &Expr, out: &mut Vec<Finding>) {
        let Expr::Map(m, _) = fields else { return };
        for (ident, value) in &m.0 {
            let key = ident.name.as_str();
            if NOTIFY_KEYS.contains(&key) {
                if key == "severity" {
                    if let Expr::StringConstant(s, p) = value {
                        if riposte_firewall::Severity::parse(s).is_none() {
                            push(out, Level::Error, *p, format!("`notify`: severity `{s}` is not a severity: write one of informational, low, medium, high, critical"));
                        }
                    }
                }
                continue;
            }
            // Any other key is a field of its own: only a near miss of a
            // key with a meaning is a typo (`severty`, not `file`).
            let limit = if key.len() >= 8 { 2 } else { 1 };
            if let Some(k) = domains::closest_within(key, NOTIFY_KEYS.iter().copied(), limit) {
                push(out, Level::Error, ident.pos, format!("`notify`: `{key}` is not a key notify knows: did you mean `{k}`? (other keys are passed on as fields; see playbooks/README.md, \"notify\")"));
            }
        }
    }

    fn comparison(&self, op: &str, lhs: &Expr, rhs: &Expr, pos: Position, out: &mut Vec<Finding>) {
        let (l, r) = (self.kind_of(lhs), self.kind_of(rhs));
        if let (Some(l), Some(r)) = (l, r) {
            if l != r && l != Kind::Unit && r != Kind::Unit {
                let always = if op == "!=" { "true" } else { "false" };
                push(out, Level::Error, pos, format!("`{op}` compares {} with {}: always {always}; compare like with like (a number with a number, a string with a string, e.g. write 20, not \"20\")", l.name(), r.name()));
                return;
            }
        }
        // An enumerated field against a string: is the value one it takes?
        for (field, value) in [(lhs, rhs), (rhs, lhs)] {
            let (Some((path, _)), Expr::StringConstant(v, p)) = (event_path(field), value) else {
                continue;
            };
            if let Some((certain, msg)) = domains::check_value(&path, v) {
                let level = if certain {
                    Level::Error
                } else {
                    Level::Warning
                };
                push(out, level, *p, format!("event.{path}: {msg}"));
            }
        }
    }

    /// `event.a.b.c`: a path no event has is an error.
    fn event_path(&self, e: &Expr, out: &mut Vec<Finding>) {
        let Some((path, pos)) = event_path(e) else {
            return;
        };
        let mut prefix = String::new();
        for seg in path.split('.') {
            if !prefix.is_empty() {
                prefix.push('.');
            }
            prefix.push_str(seg);
            match self.schema.lookup(&prefix) {
                Some(None) => return,
                Some(Some(Kind::Map)) => continue,
                Some(Some(_)) if prefix == path => return,
                Some(Some(k)) => {
                    push(
                        out,
                        Level::Error,
                        pos,
                        format!("event.{prefix} is {}: event.{path} is always ()", k.name()),
                    );
                    return;
                }
                None => {
                    let hint = self
                        .schema
                        .suggest(&path)
                        .map(|s| format!(": did you mean event.{s}?"))
                        .unwrap_or_else(|| ": see playbooks/README.md, \"The event\"".into());
                    push(
                        out,
                        Level::Error,
                        pos,
                        format!("no event has event.{path} (it would always be ()){hint}"),
                    );
                    return;
                }
            }
        }
    }
}

fn push(out: &mut Vec<Finding>, level: Level, pos: Position, message: String) {
    out.push(Finding {
        level,
        line: pos.line().unwrap_or(0),
        column: pos.position().unwrap_or(0),
        message,
    });
}

/// The kind of a literal.
fn literal_kind(e: &Expr) -> Option<Kind> {
    Some(match e {
        Expr::StringConstant(..) | Expr::InterpolatedString(..) | Expr::CharConstant(..) => {
            Kind::String
        }
        Expr::IntegerConstant(..) | Expr::FloatConstant(..) => Kind::Number,
        Expr::BoolConstant(..) => Kind::Bool,
        Expr::Map(..) => Kind::Map,
        Expr::Array(..) => Kind::Array,
        Expr::Unit(..) => Kind::Unit,
        Expr::DynamicConstant(d, _) => Kind::of(d),
        _ => return None,
    })
}

/// `event.source.ip` → ("source.ip", position of `event`): the properties
/// read from `event` up to the first non-property (a method call, an
/// index).
fn event_path(e: &Expr) -> Option<(String, Position)> {
    let Expr::Dot(bin, ..) = e else {
        return None;
    };
    let Expr::Variable(v, _, pos) = &bin.lhs else {
        return None;
    };
    if v.1.as_str() != "event" {
        return None;
    }
    let segs = crate::decide::playbook::reads::properties(e);
    (!segs.is_empty()).then(|| (segs.join("."), *pos))
}
