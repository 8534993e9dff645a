//! Decide: playbooks read events and return intents; nothing here acts.
//!
//! - [`playbook`]: the Rhai runtime: scripts compiled once, run per event
//!   in a sandbox, returning intents.
//! - [`intent`]: what a playbook decides (intents and their validation).
//! - [`decision`]: the decision record and the boundary with the act stage.

pub mod decision;
pub mod intent;
pub mod playbook;
