//! Events from recorded files, for `replay` and fixtures: any log format
//! `parse_record` reads, or NDJSON of normalized events (what `riposte parse`
//! prints, and the natural form for fixtures that need pod context).

use std::io;
use std::path::Path;

use riposte_firewall::{parse_record, ParseOptions, Parsed, ThreatEvent};

use crate::intake::records::{for_each_line, open, Line};

/// What one line of input turned out to be.
#[derive(Debug)]
pub enum Input {
    Event(Box<ThreatEvent>),
    /// A valid record that carries nothing for playbooks.
    Ignored,
    /// A line that could not be read as an event, with the reason.
    Invalid(String),
}

/// Reads one line: a normalized event when it is one, a log record otherwise.
pub fn read_line(record: &[u8], opts: &ParseOptions) -> Input {
    if record.first() == Some(&b'{') {
        // EVE JSON always has `event_type`; any other object is meant as a
        // normalized event, and its error is the useful one.
        if let Ok(serde_json::Value::Object(map)) = serde_json::from_slice(record) {
            if !map.contains_key("event_type") {
                return normalized(map, record);
            }
        } else if looks_normalized(record) {
            return match serde_json::from_slice::<serde_json::Value>(record) {
                Err(e) => Input::Invalid(format!("normalized event: {e}")),
                Ok(_) => Input::Invalid("normalized event: not a JSON object".into()),
            };
        }
    }
    match parse_record(record, opts) {
        Ok(Parsed::Event(ev)) => Input::Event(ev),
        Ok(Parsed::Ignored(_)) => Input::Ignored,
        Err(e) => Input::Invalid(e.to_string()),
    }
}

/// The time a normalized event without `@timestamp` is given.
pub const DEFAULT_TIMESTAMP: &str = "2024-01-01T00:00:00Z";

/// A normalized event, the fields it leaves out filled with the defaults
/// documented in playbooks/README.md ("Fixtures"): a fixture carries only
/// what its test is about.
fn normalized(mut map: serde_json::Map<String, serde_json::Value>, record: &[u8]) -> Input {
    use serde_json::Value;
    let original = String::from_utf8_lossy(record).into_owned();
    let mut default = |key: &str, value: Value| {
        map.entry(key.to_owned()).or_insert(value);
    };
    default("@timestamp", Value::from(DEFAULT_TIMESTAMP));
    default("event.kind", Value::from("alert"));
    default("event.module", Value::from("panos"));
    let module = map
        .get("event.module")
        .and_then(Value::as_str)
        .unwrap_or("panos")
        .to_owned();
    let (dataset, vendor, product) = match module.as_str() {
        "suricata" => ("suricata.alert", "OISF", "Suricata"),
        "riposte" => ("riposte.event", "Riposte", "Riposte"),
        _ => ("panos.threat", "Palo Alto Networks", "PAN-OS"),
    };
    let mut default = |key: &str, value: Value| {
        map.entry(key.to_owned()).or_insert(value);
    };
    default("event.dataset", Value::from(dataset));
    default("observer.vendor", Value::from(vendor));
    default("observer.product", Value::from(product));
    default(
        "event.id",
        Value::from(riposte_firewall::event::event_id(&original).as_str()),
    );
    default("event.original", Value::from(original));
    match serde_json::from_value::<ThreatEvent>(Value::Object(map)) {
        Ok(ev) => Input::Event(Box::new(ev)),
        Err(e) => Input::Invalid(format!("normalized event: {e}")),
    }
}

fn looks_normalized(record: &[u8]) -> bool {
    memchr::memmem::find(record, b"\"event.kind\"").is_some()
        || memchr::memmem::find(record, b"\"@timestamp\"").is_some()
}

/// Calls `f(line_number, input)` for every non-empty line of `path` (`-` is
/// standard input).
pub fn for_each_input(
    path: &Path,
    opts: &ParseOptions,
    mut f: impl FnMut(u64, Input),
) -> io::Result<()> {
    for_each_input_sized(path, opts, |line_no, _, input| f(line_no, input))
}

/// [`for_each_input`], also passing each line's size in bytes (for a
/// progress bar).
pub fn for_each_input_sized(
    path: &Path,
    opts: &ParseOptions,
    mut f: impl FnMut(u64, usize, Input),
) -> io::Result<()> {
    let mut reader = open(path)?;
    for_each_line(&mut reader, |line_no, line| match line {
        Line::Record(r) => f(line_no, r.len() + 1, read_line(r, opts)),
        Line::TooLong(len) => f(
            line_no,
            len + 1,
            Input::Invalid(format!("line of {len} bytes is too long")),
        ),
    })
}

/// The files to read: each argument, and every file under a directory
/// argument (recursively, by name, hidden ones skipped). `-` is standard
/// input.
pub fn expand(paths: Vec<std::path::PathBuf>) -> io::Result<Vec<std::path::PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if p.as_os_str() != "-" && p.is_dir() {
            walk(&p, &mut out)?;
        } else {
            out.push(p);
        }
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) -> io::Result<()> {
    let mut entries: Vec<std::path::PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", dir.display())))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            !p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with('.'))
        })
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            walk(&p, out)?;
        } else if p.is_file() {
            out.push(p);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalized_events_are_read_as_they_are() {
        let line = br#"{"@timestamp":"2024-01-01T00:00:00Z","event.id":"x","event.kind":"alert","event.module":"panos","event.dataset":"panos.threat","observer.vendor":"Palo Alto Networks","observer.product":"PAN-OS","source.ip":"10.0.0.1","event.original":"raw"}"#;
        match read_line(line, &ParseOptions::default()) {
            Input::Event(ev) => assert_eq!(ev.source_ip, Some("10.0.0.1".parse().expect("ip"))),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_minimal_fixture_event_gets_the_documented_defaults() {
        let line = br#"{"threat.type":"spyware","source.ip":"10.0.0.1"}"#;
        match read_line(line, &ParseOptions::default()) {
            Input::Event(ev) => {
                assert_eq!(ev.threat_type.as_deref(), Some("spyware"));
                assert_eq!(ev.kind.as_str(), "alert");
                assert_eq!(ev.module.as_str(), "panos");
                assert_eq!(ev.observer_product.as_str(), "PAN-OS");
                assert_eq!(ev.timestamp.to_rfc3339(), "2024-01-01T00:00:00+00:00");
                assert_eq!(&*ev.original, std::str::from_utf8(line).expect("utf-8"));
                assert!(!ev.id.is_empty());
            }
            other => panic!("{other:?}"),
        }
        let line = br#"{"event.module":"suricata","threat.category":"command-and-control"}"#;
        match read_line(line, &ParseOptions::default()) {
            Input::Event(ev) => assert_eq!(ev.dataset.as_str(), "suricata.alert"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_broken_normalized_event_says_why() {
        let line = br#"{"@timestamp":"2024-01-01T00:00:00Z","event.kind":"alert","sorce.ip":"1"}"#;
        match read_line(line, &ParseOptions::default()) {
            Input::Invalid(msg) => assert!(msg.starts_with("normalized event:"), "{msg}"),
            other => panic!("{other:?}"),
        }
    }
}
