//! The metadata header: the leading `// key: value` lines of a playbook.
//!
//! ```text
//! // name: c2-quarantine
//! // description: Cut off a pod caught talking to a command-and-control server.
//! // trigger: threat.type = spyware, threat.category = command-and-control
//! // mode: enforce
//! // order: 10
//! // enabled: true
//! // schedule: 0 */5 * * * *
//! ```
//!
//! The header is the block of `// key: value` lines at the top of the file;
//! the first line of another shape (a blank line, prose, code) ends it. An
//! unknown key inside the header is an error, so a typo such as `triger:`
//! cannot silently disable a playbook.

use std::path::Path;
use std::str::FromStr;

use crate::decide::decision::Mode;
use crate::decide::intent::validate_name;
use crate::decide::playbook::error::PlaybookError;
use crate::decide::playbook::trigger::{self, Trigger};

/// Default `order`: playbooks without one run after those that set one low.
pub const DEFAULT_ORDER: i64 = 100;

/// A playbook's metadata.
#[derive(Debug, Clone)]
pub struct Meta {
    pub name: String,
    pub description: String,
    pub trigger: Trigger,
    /// The trigger lines as written, for listings.
    pub trigger_text: Vec<String>,
    pub mode: Mode,
    pub order: i64,
    pub enabled: bool,
    pub schedule: Option<Schedule>,
    /// `exclusive: true`: when this playbook has run on an event, no later
    /// one (in `order`) runs on it.
    pub exclusive: bool,
    /// Probable mistakes in the header (a trigger value that is a typo
    /// away from a known one): line, column, message.
    pub warnings: Vec<(usize, usize, String)>,
}

/// A cron schedule (UTC).
#[derive(Debug, Clone)]
pub struct Schedule {
    pub text: String,
    pub cron: cron::Schedule,
}

/// A `schedule:` the cron crate does not accept.
#[derive(Debug, thiserror::Error)]
#[error("invalid cron schedule `{text}`: {source}")]
pub struct ScheduleError {
    text: String,
    source: cron::error::Error,
}

impl Schedule {
    /// Accepts standard five-field cron (`*/5 * * * *`, minute first), the
    /// cron crate's six or seven fields (seconds first, optional year), and
    /// `@hourly`, `@daily`, `@weekly`, `@monthly`, `@yearly`.
    pub fn parse(text: &str) -> Result<Schedule, ScheduleError> {
        let text = text.trim();
        let fields = text.split_whitespace().count();
        let expr = if fields == 5 {
            format!("0 {text}")
        } else {
            text.to_owned()
        };
        let cron = cron::Schedule::from_str(&expr).map_err(|source| ScheduleError {
            text: text.to_owned(),
            source,
        })?;
        Ok(Schedule {
            text: text.to_owned(),
            cron,
        })
    }
}

/// Reads the header of `source` (the file at `path`).
pub fn parse(path: &Path, source: &str) -> Result<Meta, PlaybookError> {
    let mut header = Header::default();
    for (idx, line) in source.lines().enumerate() {
        let Some((key, key_col, value, value_col)) = header_line(line) else {
            break;
        };
        header
            .set(key, value)
            .map_err(|(at, message)| PlaybookError::Header {
                path: path.to_owned(),
                line: idx + 1,
                column: match at {
                    At::Key => key_col,
                    At::Value(offset) => value_col + offset,
                },
                message,
            })?;
        for (offset, message) in header.pending.drain(..) {
            header.warnings.push((idx + 1, value_col + offset, message));
        }
    }
    header.finish(path)
}

/// Where on its line a header problem is: the key, or an offset into the
/// value.
enum At {
    Key,
    Value(usize),
}

/// The header's values as read so far.
#[derive(Default)]
struct Header {
    name: Option<String>,
    description: Option<String>,
    trigger: Trigger,
    trigger_text: Vec<String>,
    mode: Option<Mode>,
    order: Option<i64>,
    enabled: Option<bool>,
    schedule: Option<Schedule>,
    exclusive: Option<bool>,
    pending: Vec<(usize, String)>,
    warnings: Vec<(usize, usize, String)>,
}

impl Header {
    /// Takes one `key: value` line.
    fn set(&mut self, key: &str, value: &str) -> Result<(), (At, String)> {
        let at_value = |message: String| (At::Value(0), message);
        let once = |seen: bool| {
            if seen {
                Err((At::Key, format!("`{key}` is given twice")))
            } else {
                Ok(())
            }
        };
        match key {
            "name" => {
                once(self.name.is_some())?;
                validate_name("playbook name", value).map_err(|e| at_value(e.0))?;
                self.name = Some(value.to_owned());
            }
            "description" => {
                once(self.description.is_some())?;
                self.description = Some(value.to_owned());
            }
            "trigger" => {
                let parsed = trigger::parse_line(value)
                    .map_err(|e| (At::Value(e.offset), format!("trigger: {}", e.message)))?;
                self.pending.extend(parsed.warnings.iter().cloned());
                self.trigger.push(parsed);
                self.trigger_text.push(value.to_owned());
            }
            "mode" => {
                once(self.mode.is_some())?;
                self.mode = Some(mode(value).ok_or_else(|| {
                    at_value(format!("mode `{value}` is not `enforce` or `dry-run`"))
                })?);
            }
            "order" => {
                once(self.order.is_some())?;
                self.order = Some(
                    value
                        .parse()
                        .map_err(|_| at_value(format!("order `{value}` is not an integer")))?,
                );
            }
            "enabled" => {
                once(self.enabled.is_some())?;
                self.enabled = Some(enabled(value).ok_or_else(|| {
                    at_value(format!("enabled `{value}` is not `true` or `false`"))
                })?);
            }
            "exclusive" => {
                once(self.exclusive.is_some())?;
                self.exclusive = Some(enabled(value).ok_or_else(|| {
                    at_value(format!("exclusive `{value}` is not `true` or `false`"))
                })?);
            }
            "schedule" => {
                once(self.schedule.is_some())?;
                self.schedule = Some(Schedule::parse(value).map_err(|e| at_value(e.to_string()))?);
            }
            other => return Err((At::Key, format!(
                "unknown header key `{other}` (expected name, description, trigger, mode, order, enabled, exclusive or schedule; separate prose from the header with a blank line)"
            ))),
        }
        Ok(())
    }

    /// The metadata, once every header line is read: the name defaults to
    /// the file's stem, and a playbook must say when it runs.
    fn finish(self, path: &Path) -> Result<Meta, PlaybookError> {
        let at_top = |message: String| PlaybookError::Header {
            path: path.to_owned(),
            line: 1,
            column: 1,
            message,
        };
        let name = match self.name {
            Some(n) => n,
            None => {
                let stem = path
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .unwrap_or_default()
                    .to_owned();
                validate_name("playbook name", &stem)
                    .map_err(|e| at_top(format!("{} (add a `// name:` line)", e.0)))?;
                stem
            }
        };
        if self.trigger.is_empty() && self.schedule.is_none() {
            return Err(at_top(
                "no `// trigger:` line (write `// trigger: any` to see every event) and no `// schedule:`".into(),
            ));
        }
        Ok(Meta {
            name,
            description: self.description.unwrap_or_default(),
            trigger: self.trigger,
            trigger_text: self.trigger_text,
            mode: self.mode.unwrap_or_default(),
            order: self.order.unwrap_or(DEFAULT_ORDER),
            enabled: self.enabled.unwrap_or(true),
            schedule: self.schedule,
            exclusive: self.exclusive.unwrap_or(false),
            warnings: self.warnings,
        })
    }
}

fn mode(value: &str) -> Option<Mode> {
    match value {
        "enforce" => Some(Mode::Enforce),
        "dry-run" | "dry_run" | "dryrun" => Some(Mode::DryRun),
        _ => None,
    }
}

fn enabled(value: &str) -> Option<bool> {
    match value {
        "true" | "yes" => Some(true),
        "false" | "no" => Some(false),
        _ => None,
    }
}

/// `// key: value` → (key, key column, value, value column), 1-based columns.
fn header_line(line: &str) -> Option<(&str, usize, &str, usize)> {
    let rest = line.strip_prefix("//")?;
    let trimmed = rest.trim_start();
    let key_off = 2 + rest.len() - trimmed.len();
    let key_len = trimmed
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        .unwrap_or(trimmed.len());
    if key_len == 0 || !trimmed[..key_len].starts_with(|c: char| c.is_ascii_alphabetic()) {
        return None;
    }
    let after_key = &trimmed[key_len..];
    let after_colon = after_key.strip_prefix(':')?;
    let value = after_colon.trim();
    let value_off = key_off + key_len + 1 + (after_colon.len() - after_colon.trim_start().len());
    Some((&trimmed[..key_len], key_off + 1, value, value_off + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(src: &str) -> Result<Meta, PlaybookError> {
        parse(Path::new("playbooks/example.rhai"), src)
    }

    #[test]
    fn reads_every_key_and_stops_at_the_first_other_line() {
        let m = meta(
            "// name: c2-quarantine\n// description: Cut off C2.\n// trigger: threat.type = spyware\n// trigger: threat.type = virus\n// mode: enforce\n// order: 10\n// enabled: false\n// schedule: */5 * * * *\n\n// note: prose after the header is fine\nlet x = 1;\n",
        )
        .expect("valid");
        assert_eq!(m.name, "c2-quarantine");
        assert_eq!(m.description, "Cut off C2.");
        assert_eq!(m.trigger_text.len(), 2);
        assert_eq!(m.mode, Mode::Enforce);
        assert_eq!(m.order, 10);
        assert!(!m.enabled);
        assert_eq!(
            m.schedule.as_ref().map(|s| s.text.as_str()),
            Some("*/5 * * * *")
        );
    }

    #[test]
    fn defaults_name_from_the_file_and_mode_to_dry_run() {
        let m = meta("// trigger: any\nlet x = 1;").expect("valid");
        assert_eq!(m.name, "example");
        assert_eq!(m.mode, Mode::DryRun);
        assert_eq!(m.order, DEFAULT_ORDER);
        assert!(m.enabled);
    }

    #[test]
    fn errors_carry_line_and_column() {
        let e = meta("// name: x\n// triger: any\n").expect_err("typo");
        let s = e.to_string();
        assert!(
            s.starts_with("playbooks/example.rhai:2:4: unknown header key `triger`"),
            "{s}"
        );
        let e = meta("// name: x\n// trigger: threat.type = spyware, severity >= huge\n")
            .expect_err("bad");
        assert!(
            e.to_string()
                .starts_with("playbooks/example.rhai:2:48: trigger:"),
            "{e}"
        );
        let e = meta("// mode: yolo\n// trigger: any\n").expect_err("mode");
        assert!(e.to_string().contains(":1:10: mode `yolo`"), "{e}");
        let e = meta("// name: x\nlet y = 1;").expect_err("no trigger");
        assert!(e.to_string().contains("no `// trigger:` line"), "{e}");
        let e = meta("// schedule: every day\n").expect_err("cron");
        assert!(e.to_string().contains("invalid cron schedule"), "{e}");
        let e = meta("// name: Bad Name\n// trigger: any\n").expect_err("name");
        assert!(e.to_string().contains("not a valid name"), "{e}");
        let e = meta("// order: 1\n// order: 2\n// trigger: any\n").expect_err("twice");
        assert!(e.to_string().contains("given twice"), "{e}");
    }

    #[test]
    fn cron_accepts_five_six_fields_and_shorthands() {
        assert!(Schedule::parse("*/5 * * * *").is_ok());
        assert!(Schedule::parse("0 0 * * * *").is_ok());
        assert!(Schedule::parse("@hourly").is_ok());
        assert!(Schedule::parse("61 * * * *").is_err());
    }
}
