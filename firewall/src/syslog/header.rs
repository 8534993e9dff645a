//! PLACEHOLDER until the syslog helper lands: accepts no header.
use chrono::{DateTime, Utc};

use crate::ParseError;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyslogHeader<'a> {
    pub facility: Option<u8>,
    pub severity: Option<u8>,
    pub timestamp: Option<DateTime<Utc>>,
    pub hostname: Option<&'a str>,
    pub app_name: Option<&'a str>,
}

pub fn split_header(text: &str) -> Result<(SyslogHeader<'_>, &str), ParseError> {
    Ok((SyslogHeader::default(), text))
}
