//! The static checker behind `riposte playbook check`, also run at load and
//! on reload: it walks each script's syntax tree and refuses what is
//! certainly wrong (an unknown function or event field, a helper called
//! with the wrong arguments or option keys, a comparison that is always
//! false, a ttl without a unit) and warns on what is probably wrong (a
//! trigger or comparison value a typo away from a known one). Every
//! finding names `file:line:column` and what to write instead, in the
//! playbook language.
//!
//! - [`helpers`]: the functions and their parameters; [`schema`]: the
//!   event's paths, derived from the event itself; [`domains`]: the
//!   values of enumerated fields and "did you mean".

pub mod domains;
pub mod helpers;
pub mod schema;
mod walk;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use rhai::{Engine, OptimizationLevel};

use crate::decide::playbook::meta::Meta;
use crate::decide::playbook::sandbox;

/// How sure the checker is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Probably wrong: reported, the playbook still loads.
    Warning,
    /// Certainly wrong: the playbook is refused.
    Error,
}

/// One finding, at a place in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub level: Level,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.column, self.message)
    }
}

/// Built once per runtime: what the engine knows besides the helpers.
#[derive(Debug)]
pub struct Checker {
    /// Rhai's own functions, by name, with the argument counts they take.
    std: BTreeMap<String, BTreeSet<usize>>,
    /// An engine that parses without optimizing, so that the tree is the
    /// script as written (`1 > "2"` is not folded away).
    parser: Engine,
}

impl Checker {
    /// The checker for engines built by [`sandbox::build_engine`], made
    /// once per process (listing Rhai's functions takes milliseconds).
    pub fn shared(engine: &Engine) -> &'static Checker {
        static CHECKER: std::sync::OnceLock<Checker> = std::sync::OnceLock::new();
        CHECKER.get_or_init(|| Checker::new(engine))
    }

    fn new(engine: &Engine) -> Checker {
        let mut std: BTreeMap<String, BTreeSet<usize>> = BTreeMap::new();
        for sig in engine.gen_fn_signatures(true) {
            if let Some((name, arity)) = parse_signature(&sig) {
                std.entry(name).or_default().insert(arity);
            }
        }
        let mut parser = Engine::new_raw();
        parser.set_optimization_level(OptimizationLevel::None);
        parser.set_strict_variables(true);
        parser.disable_symbol("eval");
        // Deep scripts are refused by the runtime's own compile first.
        parser.set_max_expr_depths(0, 0);
        Checker { std, parser }
    }

    /// Whether Rhai itself has a function of this name.
    fn is_std(&self, name: &str) -> bool {
        self.std.contains_key(name)
    }

    /// Checks one playbook; findings sorted by place.
    pub fn check(&self, source: &str, meta: &Meta) -> Vec<Finding> {
        let mut out: Vec<Finding> = meta
            .warnings
            .iter()
            .map(|(line, column, message)| Finding {
                level: Level::Warning,
                line: *line,
                column: *column,
                message: message.clone(),
            })
            .collect();
        // The runtime compiled the script already: a parse error here
        // cannot happen, and would be reported by that compile.
        if let Ok(ast) = self
            .parser
            .compile_with_scope(&sandbox::compile_scope(), source)
        {
            walk::Walk::new(self, &ast).run(&mut out);
        }
        out.sort_by_key(|f| (f.line, f.column));
        out.dedup();
        out
    }
}

/// `name(a: T, b: U) -> R` → (name, 2).
fn parse_signature(sig: &str) -> Option<(String, usize)> {
    let open = sig.find('(')?;
    let name = sig[..open].trim();
    let name = name.rsplit(' ').next().unwrap_or(name);
    if name.is_empty() {
        return None;
    }
    let mut depth = 0i32;
    let mut arity = 0;
    let mut any = false;
    for c in sig[open + 1..].chars() {
        match c {
            '<' | '(' | '[' => depth += 1,
            ')' if depth == 0 => break,
            '>' | ')' | ']' => depth -= 1,
            ',' if depth == 0 => arity += 1,
            c if !c.is_whitespace() => any = true,
            _ => {}
        }
    }
    let arity = if any { arity + 1 } else { 0 };
    Some((name.to_owned(), arity))
}

#[cfg(test)]
mod tests;
