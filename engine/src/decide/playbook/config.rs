//! The `[playbooks]` table of the configuration file.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Where playbooks live and how they run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PlaybookConfig {
    /// Directory holding one `*.rhai` file per playbook (fixtures in
    /// `fixtures/` beside them are not loaded as playbooks).
    pub dir: PathBuf,
    /// Global dry-run switch: when true, every playbook runs in dry-run mode
    /// whatever its own `mode` says, so nothing is applied.
    pub dry_run: bool,
    /// Reload playbooks when files in `dir` change. SIGHUP reloads them
    /// whatever this says.
    pub watch: bool,
    /// Quiet time after the last file change before a reload, in
    /// milliseconds, so that an editor's save burst is one reload.
    pub watch_debounce_ms: u64,
    /// Most `count`, `once_per` and `seen_before` keys kept across all
    /// playbooks; beyond it the oldest are evicted (and counted in
    /// `riposte_playbook_counter_evictions_total`).
    pub counter_capacity: usize,
    /// Lines of `print` and `debug` output one playbook may write per second
    /// (bursts of as many); beyond it lines are dropped and counted in
    /// `riposte_playbook_output_dropped_total`. `0` silences them.
    pub output_lines_per_second: u32,
    /// Longest `print` or `debug` line written, in bytes; longer ones are cut.
    pub output_max_bytes: usize,
    /// Sandbox limits applied to every playbook run.
    pub limits: PlaybookLimits,
}

impl Default for PlaybookConfig {
    fn default() -> Self {
        PlaybookConfig {
            dir: PathBuf::from("playbooks"),
            dry_run: false,
            watch: true,
            watch_debounce_ms: 250,
            counter_capacity: 100_000,
            output_lines_per_second: 10,
            output_max_bytes: 1024,
            limits: PlaybookLimits::default(),
        }
    }
}

/// What one run of one playbook may consume. A run that exceeds a limit is
/// stopped and recorded as an error; the other playbooks still run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PlaybookLimits {
    /// Most script operations per run (an infinite loop stops here).
    pub max_operations: u64,
    /// Deepest function call nesting (runaway recursion stops here).
    pub max_call_levels: usize,
    /// Deepest expression nesting, checked when the playbook compiles.
    pub max_expr_depth: usize,
    /// Deepest expression nesting inside script functions.
    pub max_function_expr_depth: usize,
    /// Longest string a script may build, in bytes.
    pub max_string_size: usize,
    /// Most elements of an array a script may build.
    pub max_array_size: usize,
    /// Most entries of a map a script may build.
    pub max_map_size: usize,
    /// Most variables alive at once in a run.
    pub max_variables: usize,
    /// Most intents one run may produce.
    pub max_intents: usize,
    /// Wall-clock deadline per run, in milliseconds.
    pub timeout_ms: u64,
}

impl Default for PlaybookLimits {
    fn default() -> Self {
        PlaybookLimits {
            max_operations: 100_000,
            max_call_levels: 16,
            max_expr_depth: 64,
            max_function_expr_depth: 32,
            max_string_size: 64 * 1024,
            max_array_size: 4_096,
            max_map_size: 1_024,
            max_variables: 256,
            max_intents: 64,
            timeout_ms: 50,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_table_gives_defaults_and_unknown_keys_are_refused() {
        let cfg: PlaybookConfig = toml::from_str("").expect("empty");
        assert_eq!(cfg, PlaybookConfig::default());
        let cfg: PlaybookConfig =
            toml::from_str("dry_run = true\n[limits]\ntimeout_ms = 5\n").expect("partial");
        assert!(cfg.dry_run);
        assert_eq!(cfg.limits.timeout_ms, 5);
        assert_eq!(cfg.limits.max_operations, 100_000);
        let err = toml::from_str::<PlaybookConfig>("dryrun = true").expect_err("typo");
        assert!(err.to_string().contains("dryrun"), "{err}");
    }
}
