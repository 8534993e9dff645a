//! PLACEHOLDER until the parser helper lands.
use crate::{ParseError, ParseOptions, Parsed, RecordContext};

pub fn parse(_payload: &str, _ctx: &RecordContext<'_>, _opts: &ParseOptions) -> Result<Parsed, ParseError> {
    Err(ParseError::UnknownFormat)
}
