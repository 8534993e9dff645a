//! The firewall's language.
//!
//! Layout:
//! - [`addr`]: address forms: the one normalization (IPv4-mapped and
//!   other IPv6 forms carrying an IPv4 address) every address check uses.
//! - [`event`]: the normalized [`ThreatEvent`] every other room speaks.
//! - [`parse`]: one entry point, [`parse_record`], that strips the syslog
//!   header, detects the payload format and hands it to the right parser.
//! - [`syslog`]: RFC 3164 / RFC 5424 headers and RFC 6587 stream framing.
//! - [`panos`]: PAN-OS CSV (THREAT, TRAFFIC, the Strata Logging Service
//!   variant); [`cef`] and [`leef`]: the firewall's predefined key/value
//!   formats; [`eve`]: Suricata EVE JSON.
//! - [`csv`]: the quote-aware column splitter the CSV parsers share.
//! - [`normalized`]: normalized events arriving as JSON on an ingest path,
//!   admitted as firewall and IDS events only, with Riposte's own id.
//! - [`summary`]: what the decision record and the SOAR notification keep
//!   of an event, one type for both.
//! - [`edl`]: external dynamic lists: entry validation per list kind and
//!   rendering in the text format PAN-OS polls.
//! - [`xmlapi`]: the PAN-OS XML API client registering IP tags for dynamic
//!   address groups.
//!
//! Nothing but [`xmlapi`] performs I/O: every parser is a pure function
//! from bytes to an event or a [`ParseError`] naming the field and the
//! reason.

pub mod addr;
pub mod cef;
pub mod csv;
pub mod edl;
pub mod eve;
pub mod event;
pub mod leef;
pub mod normalized;
pub mod panos;
pub mod parse;
pub mod summary;
pub mod syslog;
pub mod xmlapi;

mod error;

pub use error::{Error, ParseError};
pub use event::{Direction, EventKind, EventModule, PodContext, Severity, Str, ThreatEvent};
pub use parse::{parse_record, Format, Ignored, ParseOptions, Parsed, RecordContext};
pub use summary::EventSummary;
