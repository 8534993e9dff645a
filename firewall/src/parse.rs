//! From one framed record to an event: header, format detection, dispatch.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::{cef, eve, leef, panos, syslog, ParseError, ThreatEvent};

/// Which payload format to expect. `Auto` looks at the first bytes of the
/// payload: `{` is EVE JSON, `CEF:` and `LEEF:` name themselves, and anything
/// else is tried as PAN-OS CSV.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    #[default]
    Auto,
    Panos,
    Cef,
    Leef,
    Eve,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Auto => "auto",
            Format::Panos => "panos",
            Format::Cef => "cef",
            Format::Leef => "leef",
            Format::Eve => "eve",
        }
    }
}

impl std::str::FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "auto" => Format::Auto,
            "panos" | "csv" => Format::Panos,
            "cef" => Format::Cef,
            "leef" => Format::Leef,
            "eve" | "suricata" => Format::Eve,
            other => {
                return Err(format!(
                    "unknown format `{other}` (expected auto, panos, cef, leef or eve)"
                ))
            }
        })
    }
}

/// How to read records. Built once from configuration.
#[derive(Debug, Clone)]
pub struct ParseOptions {
    pub format: Format,
    /// PAN-OS CSV times carry no zone: the firewall's configured zone.
    pub timezone: Tz,
    /// Longest record accepted, in bytes.
    pub max_record_bytes: usize,
}

impl Default for ParseOptions {
    fn default() -> Self {
        ParseOptions {
            format: Format::Auto,
            timezone: Tz::UTC,
            max_record_bytes: 64 * 1024,
        }
    }
}

/// What the parsers know about a record beyond its payload.
#[derive(Debug, Clone, Copy)]
pub struct RecordContext<'a> {
    /// The whole record, header included: `event.original` and the event id.
    pub original: &'a str,
    /// The syslog header's hostname, when there was one.
    pub hostname: Option<&'a str>,
    /// The syslog header's timestamp, when there was one and it parsed.
    pub header_time: Option<DateTime<Utc>>,
}

impl<'a> RecordContext<'a> {
    /// A record that came without a syslog header (a file line, a fuzzed or
    /// test payload): the payload is the whole record.
    pub fn bare(original: &'a str) -> RecordContext<'a> {
        RecordContext {
            original,
            hostname: None,
            header_time: None,
        }
    }
}

/// A record that is valid but carries nothing for playbooks (a Suricata flow
/// record, a PAN-OS SYSTEM log). Counted, not an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ignored {
    pub format: &'static str,
    /// The record's own type name (`flow`, `SYSTEM`, …).
    pub kind: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    Event(Box<ThreatEvent>),
    Ignored(Ignored),
}

impl Parsed {
    pub fn into_event(self) -> Option<ThreatEvent> {
        match self {
            Parsed::Event(ev) => Some(*ev),
            Parsed::Ignored(_) => None,
        }
    }
}

/// Parses one framed record (a syslog message, an EVE line, an HTTP ingest
/// line). Never panics, whatever the bytes.
pub fn parse_record(record: &[u8], opts: &ParseOptions) -> Result<Parsed, ParseError> {
    let mut parsed = parse_any(record, opts)?;
    if let Parsed::Event(ev) = &mut parsed {
        ev.canonicalize_addresses();
    }
    Ok(parsed)
}

fn parse_any(record: &[u8], opts: &ParseOptions) -> Result<Parsed, ParseError> {
    if record.len() > opts.max_record_bytes {
        return Err(ParseError::TooLong {
            len: record.len(),
            max: opts.max_record_bytes,
        });
    }
    let text = std::str::from_utf8(record).map_err(|e| ParseError::InvalidUtf8 {
        offset: e.valid_up_to(),
    })?;
    let text = text.trim_end_matches(['\r', '\n', '\0']);
    if text.trim().is_empty() {
        return Err(ParseError::Empty);
    }
    // EVE lines are bare JSON: no header to strip.
    if opts.format == Format::Eve || (opts.format == Format::Auto && text.starts_with('{')) {
        let ctx = RecordContext {
            original: text,
            hostname: None,
            header_time: None,
        };
        return eve::parse(text, &ctx, opts);
    }
    let (header, payload) = syslog::split_header(text)?;
    let ctx = RecordContext {
        original: text,
        hostname: header.hostname,
        header_time: header.timestamp,
    };
    let payload = payload.trim_start();
    match opts.format {
        Format::Panos => panos::parse(payload, &ctx, opts),
        Format::Cef => cef::parse(payload, &ctx, opts),
        Format::Leef => leef::parse(payload, &ctx, opts),
        Format::Eve => eve::parse(payload, &ctx, opts),
        Format::Auto => {
            if payload.starts_with("CEF:") {
                cef::parse(payload, &ctx, opts)
            } else if payload.starts_with("LEEF:") {
                leef::parse(payload, &ctx, opts)
            } else if payload.starts_with('{') {
                eve::parse(payload, &ctx, opts)
            } else if panos::looks_like_csv(payload) {
                panos::parse(payload, &ctx, opts)
            } else {
                Err(ParseError::UnknownFormat)
            }
        }
    }
}
