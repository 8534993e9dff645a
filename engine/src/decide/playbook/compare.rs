//! Comparing unlike values fails the run instead of answering `false`.
//!
//! Rhai answers `false` when a number meets a string (`hits > "20"`), so a
//! playbook with such a comparison silently never fires. Here every
//! comparison of two unlike types (a string, a number, a boolean, a map,
//! an array; integers and decimals compare as numbers, and `()` may be
//! compared with anything, which is how presence is tested) raises an
//! error naming both types; Rhai adds the line, the run is recorded with
//! outcome `error`, counted in `riposte_playbook_type_mismatches_total`,
//! and logged at most once a second per playbook. The checker refuses the
//! cases it can see before the playbook loads.
//!
//! Rhai only consults registered operators when its fast built-in path is
//! off (`set_fast_operators(false)`): same-type comparisons still end in
//! the built-ins, after one lookup that Rhai caches.

use rhai::{Array, Engine, EvalAltResult, ImmutableString, Map, Variant, FLOAT, INT};

use crate::decide::playbook::sandbox::{script_error, with_run};

const OPS: &[&str] = &["==", "!=", "<", ">", "<=", ">="];

/// Registers the raising comparisons for every pair of unlike types.
pub fn register(engine: &mut Engine) {
    engine.set_fast_operators(false);
    macro_rules! row {
        ($a:ty, $an:expr; $($b:ty, $bn:expr);*) => {
            $( pair::<$a, $b>(engine, $an, $bn); )*
        };
    }
    row!(ImmutableString, "a string"; INT, "a number"; FLOAT, "a number"; bool, "a boolean"; Map, "a map"; Array, "an array");
    row!(INT, "a number"; ImmutableString, "a string"; bool, "a boolean"; Map, "a map"; Array, "an array");
    row!(FLOAT, "a number"; ImmutableString, "a string"; bool, "a boolean"; Map, "a map"; Array, "an array");
    row!(bool, "a boolean"; ImmutableString, "a string"; INT, "a number"; FLOAT, "a number"; Map, "a map"; Array, "an array");
    row!(Map, "a map"; ImmutableString, "a string"; INT, "a number"; FLOAT, "a number"; bool, "a boolean"; Array, "an array");
    row!(Array, "an array"; ImmutableString, "a string"; INT, "a number"; FLOAT, "a number"; bool, "a boolean"; Map, "a map");
}

fn pair<A: Variant + Clone, B: Variant + Clone>(
    engine: &mut Engine,
    a: &'static str,
    b: &'static str,
) {
    for op in OPS {
        let always = if *op == "!=" { "true" } else { "false" };
        engine.register_fn(*op, move |_: A, _: B| -> Result<bool, Box<EvalAltResult>> {
            // Only the runtime reads the flag, to count the mismatch.
            let _ = with_run(|s| {
                s.type_mismatch = true;
                Ok(())
            });
            Err(script_error(format!(
                "`{op}` compares {a} with {b}, which is always {always}: compare like with like (write 20, not \"20\"; use `${{x}}` or parse_int(x) to convert)"
            )))
        });
    }
}

#[cfg(test)]
mod tests {
    use crate::decide::playbook::runtime::testing::*;

    #[test]
    fn unlike_comparisons_fail_with_the_line_and_like_ones_work() {
        // `[x][0]`: a value the checker cannot type, so the run decides.
        let (_d, rt) =
            one("let hits = [event.threat.id][0];\nif hits > \"20\" { log(\"info\", \"x\"); }\n");
        let e = error_of(&rt, &c2_event());
        assert!(
            e.contains("t.rhai:5:")
                && e.contains("`>` compares a number with a string, which is always false"),
            "{e}"
        );
        let (_d, rt) = one("if [event.source.port][0] == \"51234\" { return; }\n");
        assert!(error_of(&rt, &c2_event()).contains("`==` compares a number with a string"));
        let (_d, rt) = one(
            "if event.threat.id == 86467 && event.source.ip != () && event.url.original == () && 1 < 2.5 && \"a\" < \"b\" { log(\"info\", \"ok\"); }\n",
        );
        assert_eq!(intents_of(&rt, &c2_event()).len(), 1);
    }

    #[test]
    fn mismatches_are_counted() {
        let (_d, rt) = one("let x = [event.threat.id][0];\nif x == \"1\" { return; }\n");
        let _ = error_of(&rt, &c2_event());
        let n = rt
            .metrics
            .type_mismatches
            .get_or_create(&crate::decide::playbook::metrics::PlaybookLabels {
                playbook: "t".into(),
            })
            .get();
        assert_eq!(n, 1);
    }
}
