//! The crate's error type: [`Error`], and the parsers' [`ParseError`] inside it.

use thiserror::Error;

/// Every failure of this crate: parsing a record, validating an EDL value,
/// or talking to a firewall.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Error {
    #[error(transparent)]
    Parse(#[from] ParseError),
    #[error(transparent)]
    Edl(#[from] crate::edl::EdlError),
    #[error(transparent)]
    XmlApi(#[from] crate::xmlapi::XmlApiError),
}

/// Why a record could not be turned into an event. Every variant names the
/// field or the part of the record at fault, and the reason.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseError {
    #[error("empty record")]
    Empty,
    #[error("record is {len} bytes, over the {max}-byte limit")]
    TooLong { len: usize, max: usize },
    #[error("record is not valid UTF-8 (first bad byte at offset {offset})")]
    InvalidUtf8 { offset: usize },
    #[error("syslog header: {reason}")]
    Header { reason: String },
    #[error("unrecognized format: the record is not PAN-OS CSV, CEF, LEEF or Suricata EVE JSON")]
    UnknownFormat,
    #[error("unsupported {format} log type `{log_type}`")]
    UnsupportedType {
        format: &'static str,
        log_type: String,
    },
    #[error("{format}: {count} columns, at least {min} needed for a {log_type} log")]
    TooFewColumns {
        format: &'static str,
        log_type: &'static str,
        count: usize,
        min: usize,
    },
    #[error("{format}: too many columns (over {max})")]
    TooManyColumns { format: &'static str, max: usize },
    #[error("{format} field `{field}`: {reason}")]
    Field {
        format: &'static str,
        field: &'static str,
        reason: String,
    },
    #[error("{format}: {reason}")]
    Malformed {
        format: &'static str,
        reason: String,
    },
    /// A record that claims a provenance only Riposte may give: a webhook
    /// or schedule event, or one carrying a webhook's name or payload.
    #[error("riposte event field `{field}`: {reason}")]
    Provenance { field: &'static str, reason: String },
}

impl ParseError {
    /// A short, fixed label for metrics (`riposte_parse_failures_total{reason}`):
    /// low cardinality, never the offending value.
    pub fn reason(&self) -> &'static str {
        match self {
            ParseError::Empty => "empty",
            ParseError::TooLong { .. } => "too_long",
            ParseError::InvalidUtf8 { .. } => "invalid_utf8",
            ParseError::Header { .. } => "syslog_header",
            ParseError::UnknownFormat => "unknown_format",
            ParseError::UnsupportedType { .. } => "unsupported_type",
            ParseError::TooFewColumns { .. } => "too_few_columns",
            ParseError::TooManyColumns { .. } => "too_many_columns",
            ParseError::Field { .. } => "bad_field",
            ParseError::Malformed { .. } => "malformed",
            ParseError::Provenance { .. } => "provenance",
        }
    }

    pub(crate) fn field(
        format: &'static str,
        field: &'static str,
        reason: impl Into<String>,
    ) -> Self {
        ParseError::Field {
            format,
            field,
            reason: reason.into(),
        }
    }

    pub(crate) fn malformed(format: &'static str, reason: impl Into<String>) -> Self {
        ParseError::Malformed {
            format,
            reason: reason.into(),
        }
    }
}
