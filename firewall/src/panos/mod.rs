//! PLACEHOLDER until the PAN-OS helper lands.
use crate::{ParseError, ParseOptions, Parsed, RecordContext};

pub fn looks_like_csv(payload: &str) -> bool {
    payload.contains(',')
}

pub fn parse(_payload: &str, _ctx: &RecordContext<'_>, _opts: &ParseOptions) -> Result<Parsed, ParseError> {
    Err(ParseError::UnknownFormat)
}
