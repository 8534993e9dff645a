//! What `riposte serve` prints once at start, for the person who started
//! it: where it listens, what it loaded, and what is not configured (and so
//! what will not happen). The log has the same facts as one structured
//! line; this is the readable form.

use std::fmt::Write as _;
use std::net::SocketAddr;

use super::Running;
use crate::config::Config;
use crate::decide::decision::Mode;

fn addrs(list: &[SocketAddr]) -> String {
    list.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn listening(running: &Running, config: &Config) -> Vec<(String, String)> {
    let mut rows = Vec::new();
    for (what, list) in [
        ("syslog udp", &running.udp),
        ("syslog tcp", &running.tcp),
        ("syslog tls", &running.tls),
    ] {
        if !list.is_empty() {
            rows.push((what.to_owned(), addrs(list)));
        }
    }
    match running.http {
        Some(addr) => {
            let scheme = if config.http.tls_cert_file.is_some() {
                "https"
            } else {
                "http"
            };
            rows.push((
                "http".to_owned(),
                format!("{scheme}://{addr} (API, /metrics, /healthz, /readyz)"),
            ));
        }
        None => rows.push(("http".to_owned(), "off: no API, metrics or probes".into())),
    }
    for eve in &config.eve {
        rows.push(("eve file".to_owned(), eve.path.display().to_string()));
    }
    rows
}

fn loaded(running: &Running, config: &Config) -> Vec<(String, String)> {
    let mut rows = Vec::new();
    match &running.playbooks {
        Some(rt) => {
            let list = rt.playbooks();
            let enforce = list.iter().filter(|p| p.mode == Mode::Enforce).count();
            let switch = if config.playbooks.dry_run {
                "; the global dry-run switch is on: nothing is applied"
            } else {
                ""
            };
            rows.push((
                "playbooks".to_owned(),
                format!(
                    "{} from {} ({enforce} enforce, {} dry-run){switch}",
                    list.len(),
                    config.playbooks.dir.display(),
                    list.len() - enforce
                ),
            ));
        }
        None => rows.push(("playbooks".to_owned(), "none run in this role".to_owned())),
    }
    rows.push(("store".to_owned(), running.store.url().to_owned()));
    rows.push(("role".to_owned(), running.role.to_string()));
    rows
}

/// What is off, and what that means.
fn missing(running: &Running, config: &Config) -> Vec<String> {
    let mut off = Vec::new();
    if running.kube.is_none() {
        off.push(
            "cluster: Kubernetes actions (quarantine, release, ...) are recorded as skipped".into(),
        );
    }
    if running.firewall.is_none() {
        off.push("[firewall]: IP tags and EDLs are recorded as skipped".into());
    }
    if config.notify.targets.is_empty() {
        off.push("[notify] targets: notify intents and approval requests go nowhere".into());
    }
    if config.api.tokens.is_empty() && running.http.is_some() {
        off.push(
            "[[api.tokens]]: every API route but the probes, /metrics and webhooks answers 401"
                .into(),
        );
    }
    if config.pods.inventory_file.is_none() && running.kube.is_none() {
        off.push("pod inventory: addresses are not resolved to pods".into());
    }
    off
}

/// The block printed at start.
pub fn render(running: &Running, config: &Config) -> String {
    let mut out = format!("riposte {} is serving\n", env!("CARGO_PKG_VERSION"));
    let rows = [listening(running, config), loaded(running, config)].concat();
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (k, v) in rows {
        let _ = writeln!(out, "  {k:<width$}  {v}");
    }
    let off = missing(running, config);
    if !off.is_empty() {
        out.push_str("  not configured:\n");
        for line in off {
            let _ = writeln!(out, "    - {line}");
        }
    }
    out
}
