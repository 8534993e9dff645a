//! `[firewall]`: the firewalls Riposte tags addresses on, the EDLs it
//! serves, and the addresses it must never block.

use ipnet::IpNet;
use riposte_firewall::edl::EdlKind;
use riposte_firewall::xmlapi::{Tag, TargetConfig, XmlApiError};
use serde::Deserialize;

/// `[firewall]` in the config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FirewallConfig {
    /// Firewalls and Panorama targets (`[[firewall.targets]]`): every tag
    /// goes to all of them.
    pub targets: Vec<TargetConfig>,
    /// Tag the dual path registers on a quarantined pod's address.
    pub quarantine_tag: String,
    /// When on, `quarantine` also tags the pod's address with
    /// `quarantine_tag` (the firewall blocks it at once) and `release`
    /// untags it.
    pub dual_path: bool,
    /// Seconds between reconciliations (store leases against what each
    /// firewall reports).
    pub reconcile_interval_secs: u64,
    /// Seconds between checks that each quarantined pod's current address
    /// carries the quarantine tag (dual path); a quarantine change also
    /// triggers one.
    pub follow_interval_secs: u64,
    /// A lease longer than the firewall's 30-day timeout is registered
    /// again this many seconds before the firewall's timeout lapses.
    pub refresh_margin_secs: u64,
    /// The cluster's pod CIDRs: never tagged or listed, unless the intent's
    /// target is a pod (the dual path).
    pub pod_cidrs: Vec<IpNet>,
    /// The cluster's service CIDRs: never tagged or listed.
    pub service_cidrs: Vec<IpNet>,
    /// DNS servers: never tagged or listed.
    pub dns_servers: Vec<IpNet>,
    /// The Kubernetes API server's addresses.
    pub api_servers: Vec<IpNet>,
    /// Addresses of the SOAR endpoints Riposte reports to.
    pub soar_endpoints: Vec<IpNet>,
    /// More addresses never to block (the firewalls' management addresses
    /// are added from `targets` when their URL holds an address).
    pub never_block: Vec<IpNet>,
    /// External dynamic lists served at `GET /v1/edl/{name}`
    /// (`[[firewall.edl]]`).
    pub edl: Vec<EdlListConfig>,
    /// Shortest IPv4 prefix an IP list takes (and an IPv6 prefix may reach
    /// through an embedded IPv4 address, e.g. NAT64): a broader one is
    /// refused unless the list is in `allow_broad_prefixes`.
    pub min_prefix_len_v4: u8,
    /// Shortest IPv6 prefix an IP list takes, likewise.
    pub min_prefix_len_v6: u8,
    /// Names of the lists that may hold prefixes broader than the minimums
    /// (the never-block list still applies to them).
    pub allow_broad_prefixes: Vec<String>,
}

impl Default for FirewallConfig {
    fn default() -> Self {
        FirewallConfig {
            targets: Vec::new(),
            quarantine_tag: "riposte-quarantine".into(),
            dual_path: false,
            reconcile_interval_secs: 60,
            follow_interval_secs: 10,
            refresh_margin_secs: 86_400,
            pod_cidrs: Vec::new(),
            service_cidrs: Vec::new(),
            dns_servers: Vec::new(),
            api_servers: Vec::new(),
            soar_endpoints: Vec::new(),
            never_block: Vec::new(),
            edl: Vec::new(),
            min_prefix_len_v4: 16,
            min_prefix_len_v6: 48,
            allow_broad_prefixes: Vec::new(),
        }
    }
}

/// One list (`[[firewall.edl]]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EdlListConfig {
    /// The list's name: `/v1/edl/{name}` and `edl_add(name, …)`.
    pub name: String,
    /// `ip`, `domain` or `url`.
    pub kind: EdlKind,
    /// Basic-auth users the firewall may poll as (PAN-OS EDL objects
    /// support basic auth): `{ user, sha256 }` with the hex SHA-256 of the
    /// password (`riposte hash-token` prints it).
    #[serde(default)]
    pub basic: Vec<BasicUser>,
    /// Bearer tokens allowed to read the list, as hex SHA-256 (besides API
    /// tokens with the `read` scope).
    #[serde(default)]
    pub bearer_sha256: Vec<String>,
}

/// A basic-auth user of an EDL.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicUser {
    pub user: String,
    /// Hex SHA-256 of the password.
    pub sha256: String,
}

/// Why `[firewall]` cannot work.
#[derive(Debug, thiserror::Error)]
pub enum FirewallConfigError {
    #[error(transparent)]
    Target(XmlApiError),
    #[error("firewall.targets: `{0}` twice")]
    TargetTwice(String),
    #[error("firewall.quarantine_tag: {0}")]
    QuarantineTag(#[source] XmlApiError),
    #[error("firewall.reconcile_interval_secs must be positive")]
    ReconcileInterval,
    #[error("firewall.edl: name `{0}` must be letters, digits, - and _")]
    ListName(String),
    #[error("firewall.edl: `{0}` twice")]
    ListTwice(String),
    #[error("firewall.edl `{0}`: bad basic user")]
    BasicUser(String),
    #[error("firewall.edl `{list}`: user `{user}`: sha256 must be 64 hex digits")]
    BasicHash { list: String, user: String },
    #[error("firewall.edl `{0}`: bearer_sha256 entries must be 64 hex digits")]
    BearerHash(String),
    #[error("firewall.min_prefix_len_v4 must be at most 32 and min_prefix_len_v6 at most 128 (got {v4} and {v6})")]
    PrefixLens { v4: u8, v6: u8 },
    #[error("firewall.allow_broad_prefixes: no list `{0}` in [[firewall.edl]]")]
    UnknownBroadList(String),
}

impl EdlListConfig {
    fn check_name(&self) -> Result<(), FirewallConfigError> {
        if self.name.is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(FirewallConfigError::ListName(self.name.clone()));
        }
        Ok(())
    }

    fn check_credentials(&self) -> Result<(), FirewallConfigError> {
        for u in &self.basic {
            if u.user.is_empty() || u.user.contains(':') {
                return Err(FirewallConfigError::BasicUser(self.name.clone()));
            }
            if !is_hash(&u.sha256) {
                return Err(FirewallConfigError::BasicHash {
                    list: self.name.clone(),
                    user: u.user.clone(),
                });
            }
        }
        if self.bearer_sha256.iter().any(|h| !is_hash(h)) {
            return Err(FirewallConfigError::BearerHash(self.name.clone()));
        }
        Ok(())
    }
}

impl FirewallConfig {
    pub fn validate(&self) -> Result<(), FirewallConfigError> {
        let mut names = std::collections::HashSet::new();
        for t in &self.targets {
            t.validate().map_err(FirewallConfigError::Target)?;
            if !names.insert(t.name.clone()) {
                return Err(FirewallConfigError::TargetTwice(t.name.clone()));
            }
        }
        Tag::new(&self.quarantine_tag).map_err(FirewallConfigError::QuarantineTag)?;
        if self.reconcile_interval_secs == 0 {
            return Err(FirewallConfigError::ReconcileInterval);
        }
        let mut lists = std::collections::HashSet::new();
        for l in &self.edl {
            l.check_name()?;
            if !lists.insert(l.name.clone()) {
                return Err(FirewallConfigError::ListTwice(l.name.clone()));
            }
            l.check_credentials()?;
        }
        if self.min_prefix_len_v4 > 32 || self.min_prefix_len_v6 > 128 {
            return Err(FirewallConfigError::PrefixLens {
                v4: self.min_prefix_len_v4,
                v6: self.min_prefix_len_v6,
            });
        }
        for name in &self.allow_broad_prefixes {
            if !lists.contains(name) {
                return Err(FirewallConfigError::UnknownBroadList(name.clone()));
            }
        }
        Ok(())
    }

    /// The shortest prefix lengths (IPv4, IPv6) `list` takes.
    pub fn min_prefix_lens(&self, list: &str) -> (u8, u8) {
        if self.allow_broad_prefixes.iter().any(|l| l == list) {
            (0, 0)
        } else {
            (self.min_prefix_len_v4, self.min_prefix_len_v6)
        }
    }
}

fn is_hash(h: &str) -> bool {
    let h = h.trim();
    h.len() == 64 && h.chars().all(|c| c.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_section_parses_and_unknown_keys_are_named() {
        let text = r#"
            quarantine_tag = "riposte-quarantine"
            dual_path = true
            pod_cidrs = ["10.244.0.0/16"]
            dns_servers = ["10.96.0.10/32"]
            [[targets]]
            name = "fw1"
            url = "https://192.0.2.1"
            key_file = "/run/secrets/pan-key"
            vsys = "vsys1"
            pinned_sha256 = "ab:ab:ab:ab:ab:ab:ab:ab:ab:ab:ab:ab:ab:ab:ab:ab:ab:ab:ab:ab:ab:ab:ab:ab:ab:ab:ab:ab:ab:ab:ab:ab"
            [[targets]]
            name = "panorama"
            url = "https://panorama.example"
            key = "k"
            target = "007951000123456"
            [[edl]]
            name = "c2"
            kind = "ip"
            basic = [{ user = "pa-fw", sha256 = "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b" }]
        "#;
        let c: FirewallConfig = toml::from_str(text).expect("parses");
        assert!(c.validate().is_ok(), "{:?}", c.validate());
        assert_eq!(c.targets.len(), 2);
        assert!(!format!("{c:?}").contains("key = \"k\""));
        let bad = toml::from_str::<FirewallConfig>(
            "[[targets]]\nname = \"a\"\nurl = \"https://a\"\nkey = \"k\"\nverify = false\n",
        );
        assert!(bad.expect_err("unknown").to_string().contains("verify"));
        let mut dup = c.clone();
        dup.targets.push(dup.targets[0].clone());
        assert!(dup
            .validate()
            .expect_err("dup")
            .to_string()
            .contains("twice"));
        let mut unknown_broad = c.clone();
        unknown_broad.allow_broad_prefixes = vec!["nope".into()];
        assert!(unknown_broad
            .validate()
            .expect_err("unknown")
            .to_string()
            .contains("nope"));
        let mut broad = c.clone();
        broad.allow_broad_prefixes = vec!["c2".into()];
        assert!(broad.validate().is_ok());
        assert_eq!(broad.min_prefix_lens("c2"), (0, 0));
        assert_eq!(c.min_prefix_lens("c2"), (16, 48));
        let mut bad_len = c.clone();
        bad_len.min_prefix_len_v4 = 33;
        assert!(bad_len.validate().is_err());
        let mut bad_list = c;
        bad_list.edl[0].name = "c2/../x".into();
        assert!(bad_list.validate().is_err());
    }
}
