//! Syslog: message headers (RFC 3164, RFC 5424) and stream framing (RFC 6587).

pub mod framing;
pub mod header;
pub(crate) mod timestamp;

pub use framing::{frame_pieces, FrameError, Framer};
pub use header::{split_header, split_header_at, HeaderFormat, SyslogHeader};
