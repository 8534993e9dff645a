//! PLACEHOLDER until the syslog helper lands.
#[derive(Debug, Default)]
pub struct Framer;
#[derive(Debug, thiserror::Error)]
#[error("framing")]
pub struct FrameError;
