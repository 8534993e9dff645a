//! Support for the end-to-end tests: start the real service in-process on
//! loopback ports chosen by the kernel, send it logs the way firewalls do,
//! and read back what it made of them.
//!
//! Layout:
//! - [`service`]: start and stop `riposte serve` in-process with a config
//!   (the one module here that needs the engine).
//! - [`senders`]: real syslog daemons (syslog-ng, rsyslog) as child
//!   processes, and the real PAN-OS sample lines to feed them.
//! - [`rabbit`]: the support crate's loopback RabbitMQ helpers plus handles
//!   on the connectors' `Broker`.
//! - re-exported from `riposte-standins` (the stand-ins, which depend on
//!   neither the engine nor the connectors, so the connectors' tests can
//!   use them without building the engine): [`kube_api`], [`panos_api`],
//!   [`soar_receiver`], [`syslog`], [`real_k8s`] (the real API server), [`lines`], [`metrics`], [`postgres`],
//!   [`eventually`].

pub mod rabbit;
pub mod real_cluster;
pub mod senders;
pub mod service;

pub use riposte_standins::{
    eventually, kube_api, lines, metrics, panos_api, postgres, real_k8s, soar_receiver, syslog,
};
