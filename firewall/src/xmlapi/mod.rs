//! The PAN-OS XML API client: IP tags for dynamic address groups through
//! the User-ID API, and reading them back.
//!
//! - [`message`]: `uid-message` documents (register / unregister, many
//!   entries per message, split by entry count and encoded size), tag and
//!   timeout validation, the `show object registered-ip` op command.
//! - [`response`]: the answers, read with a real XML parser ([`xml`]):
//!   success, per-entry refusals, "already exists, ignore" / "does not
//!   exist, ignore unreg" as successes, key errors, HTML instead of XML.
//! - [`client`]: one firewall or Panorama target (vsys, target serial):
//!   key in `X-PAN-KEY` (never logged), TLS with a CA file or a pinned
//!   certificate, rate limit, retries with backoff on transient failures,
//!   paged read-back.
//! - [`batcher`]: gathers registrations into few requests, flushed when a
//!   message is full or the batch interval has passed.
//!
//! This is the one part of the crate that does I/O.

pub mod batcher;
pub mod client;
pub mod error;
pub mod message;
pub mod response;
pub mod tls;
pub mod xml;

pub use batcher::Batcher;
pub use client::{ApiKey, Client, TargetConfig};
pub use error::XmlApiError;
pub use message::{Limits, Tag, UidOp, MAX_TAG_TIMEOUT_SECS};
pub use response::RegisteredIp;
