//! A PAN-OS XML API stand-in: the part of a firewall's (or Panorama's)
//! management API that Riposte talks to, over HTTP or HTTPS on loopback.
//!
//! - `POST`/`GET /api/` with the key in `X-PAN-KEY` or the `key` field; a
//!   wrong key is answered `403` with the API's error XML.
//! - `type=user-id`: the `uid-message` is parsed (malformed XML is an
//!   error); register/unregister change the IP-tag table, with per-tag
//!   timeouts and the persistent flag. Answers as the firewall does:
//!   success, or `status="error"` listing per entry "tag X already exists,
//!   ignore", "tag X does not exist, ignore unreg" or the refusal.
//! - `type=op`: `show object registered-ip` paged (`limit` ≤ 500,
//!   `start-point` from 1), filtered by tag or ip, with `<count>`.
//! - Test controls: [`PanosApi::reboot`] (forgets non-persistent tags),
//!   [`PanosApi::inject`] faults (5xx, HTML, garbage, hang), [`PanosApi::stop`]
//!   / [`PanosApi::restart`] (connection refused meanwhile), request counts.
//!
//! Known differences from a real firewall: one tag table whatever the vsys
//! or target serial (both are recorded per request); timeouts run from
//! registration on the stand-in's clock; login/logout/groups messages are
//! accepted and ignored.

mod server;
pub mod table;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use sha2::{Digest, Sha256};
use tokio_rustls::rustls;

pub use table::TagInfo;

/// A fault the next requests meet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultKind {
    /// An HTTP status with a plain body (503, 500, 502…).
    Status(u16),
    /// `200 OK` with an HTML page (a login page, a proxy's error page).
    Html,
    /// `200 OK` with text that is not XML.
    Garbage,
    /// No answer at all (until the client gives up).
    Hang,
}

/// A fault for the next `times` requests (optionally only of one `type`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub kind: FaultKind,
    pub times: usize,
    pub only_type: Option<String>,
}

impl Fault {
    pub fn new(kind: FaultKind, times: usize) -> Fault {
        Fault {
            kind,
            times,
            only_type: None,
        }
    }

    pub fn for_type(mut self, t: &str) -> Fault {
        self.only_type = Some(t.to_string());
        self
    }
}

/// One request the stand-in answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// The `type` field: `user-id`, `op`, …
    pub kind: String,
    pub vsys: Option<String>,
    pub target: Option<String>,
    /// Whether the key was accepted.
    pub authorized: bool,
    /// Entries in the uid-message (register + unregister).
    pub entries: usize,
    pub body_bytes: usize,
}

/// State every request sees.
#[derive(Debug)]
pub(crate) struct Shared {
    pub key: Mutex<String>,
    pub table: Mutex<table::Table>,
    pub faults: Mutex<Vec<Fault>>,
    pub log: Mutex<Vec<Request>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// How the stand-in starts.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Serve HTTPS with a certificate for localhost/127.0.0.1 signed by a
    /// fresh CA.
    pub tls: bool,
    /// The API key; random when `None`.
    pub key: Option<String>,
}

/// A running stand-in.
#[derive(Debug)]
pub struct PanosApi {
    shared: Arc<Shared>,
    endpoint: server::Endpoint,
    ca_pem: Option<String>,
    cert_sha256: Option<String>,
}

impl PanosApi {
    /// Plain HTTP, random key.
    pub async fn start() -> anyhow::Result<PanosApi> {
        PanosApi::start_with(Options::default()).await
    }

    pub async fn start_with(options: Options) -> anyhow::Result<PanosApi> {
        let key = options.key.clone().unwrap_or_else(|| {
            use rand::Rng;
            let n: u128 = rand::rng().random();
            format!("LUFRPT{n:032x}==")
        });
        let shared = Arc::new(Shared {
            key: Mutex::new(key),
            table: Mutex::new(table::Table::default()),
            faults: Mutex::new(Vec::new()),
            log: Mutex::new(Vec::new()),
        });
        let (tls, ca_pem, cert_sha256) = if options.tls {
            let (config, ca, fp) = certificates()?;
            (Some(config), Some(ca), Some(fp))
        } else {
            (None, None, None)
        };
        let endpoint = server::Endpoint::start("127.0.0.1:0".parse()?, tls, shared.clone()).await?;
        Ok(PanosApi {
            shared,
            endpoint,
            ca_pem,
            cert_sha256,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.endpoint.addr()
    }

    /// The base URL (`http://127.0.0.1:port` or `https://localhost:port`).
    pub fn url(&self) -> String {
        if self.ca_pem.is_some() {
            format!("https://localhost:{}", self.addr().port())
        } else {
            format!("http://{}", self.addr())
        }
    }

    pub fn key(&self) -> String {
        lock(&self.shared.key).clone()
    }

    /// Changes the key (the old one is refused from now on).
    pub fn set_key(&self, key: &str) {
        *lock(&self.shared.key) = key.to_string();
    }

    /// The CA that signed the server certificate (HTTPS only).
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// SHA-256 fingerprint (hex) of the server certificate (HTTPS only).
    pub fn cert_sha256(&self) -> Option<&str> {
        self.cert_sha256.as_deref()
    }

    /// Current registrations: address → tag → info (expired ones dropped).
    pub fn registered(&self) -> BTreeMap<String, BTreeMap<String, TagInfo>> {
        let mut t = lock(&self.shared.table);
        t.purge(Instant::now());
        t.entries.clone()
    }

    /// The tag's info on `ip`, if registered.
    pub fn tag(&self, ip: &str, tag: &str) -> Option<TagInfo> {
        self.registered().get(ip).and_then(|t| t.get(tag)).cloned()
    }

    /// How many addresses carry `tag`.
    pub fn count_tagged(&self, tag: &str) -> usize {
        self.registered()
            .values()
            .filter(|t| t.contains_key(tag))
            .count()
    }

    /// Forgets every non-persistent tag, as a reboot does.
    pub fn reboot(&self) {
        lock(&self.shared.table).reboot();
    }

    pub fn inject(&self, fault: Fault) {
        lock(&self.shared.faults).push(fault);
    }

    pub fn clear_faults(&self) {
        lock(&self.shared.faults).clear();
    }

    /// Every request answered so far.
    pub fn requests(&self) -> Vec<Request> {
        lock(&self.shared.log).clone()
    }

    /// Requests of one `type` (`user-id`, `op`).
    pub fn count(&self, kind: &str) -> usize {
        lock(&self.shared.log)
            .iter()
            .filter(|r| r.kind == kind)
            .count()
    }

    pub fn reset_log(&self) {
        lock(&self.shared.log).clear();
    }

    /// Stops listening: clients get "connection refused".
    pub async fn stop(&self) {
        self.endpoint.stop().await;
    }

    /// Listens again on the same port, table intact.
    pub async fn restart(&self) -> anyhow::Result<()> {
        self.endpoint.restart(self.shared.clone()).await?;
        Ok(())
    }
}

/// A CA, a server certificate for localhost and 127.0.0.1 signed by it, the
/// CA in PEM and the server certificate's SHA-256 fingerprint.
fn certificates() -> anyhow::Result<(Arc<rustls::ServerConfig>, String, String)> {
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "riposte-tests PAN-OS CA");
    let ca = ca_params.self_signed(&ca_key)?;
    let key = KeyPair::generate()?;
    let mut params =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])?;
    params.distinguished_name.push(DnType::CommonName, "pa-fw");
    let cert = params.signed_by(&key, &ca, &ca_key)?;
    let fingerprint = hex_lower(&Sha256::digest(cert.der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )?;
    Ok((Arc::new(config), ca.pem(), fingerprint))
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
