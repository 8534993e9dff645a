//! External dynamic lists (EDLs) in the text format PAN-OS polls.
//!
//! One list holds one kind of entry ([`EdlKind`]): IP addresses (IPv4 and
//! IPv6 addresses, prefixes, and `start-end` ranges), domains, or URLs.
//! Values are validated and put in canonical form when they are added
//! ([`EdlKind::normalize`]), so that rendering is a plain join: a list of
//! 100,000 entries renders into one buffer without re-parsing anything.
//!
//! Formatting rules followed (PAN-OS "Formatting Guidelines for an External
//! Dynamic List"):
//! - IP: one entry a line, `192.0.2.10`, `192.0.2.0/24`, `2001:db8::/32`,
//!   `192.0.2.40-192.0.2.50` (both ends of one family, start ≤ end). A
//!   prefix with host bits set is refused rather than silently widened.
//! - Domain: one name a line, lower-case ASCII (IDNs in their `xn--` form);
//!   a wildcard is a whole leftmost label only (`*.example.com`).
//! - URL: `host[:port][/path][?query]` without the scheme; `*` and `^`
//!   wildcards only as whole tokens (between `.` `/` `?` `&` `=` `;` `+`),
//!   never in the top-level domain alone.
//!
//! Nothing here does I/O.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::addr;

/// Longest domain name (RFC 1035).
pub const MAX_DOMAIN_LEN: usize = 253;
/// Longest URL entry accepted. PAN-OS custom URL entries are limited to 255
/// characters; EDL URL entries follow the same limit.
pub const MAX_URL_LEN: usize = 255;

/// Why a value cannot be an entry of a list.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EdlError {
    #[error("empty value")]
    Empty,
    #[error("`{value}` is not an IP address, prefix or range: {reason}")]
    Ip { value: String, reason: String },
    #[error("`{value}` is not a domain name: {reason}")]
    Domain { value: String, reason: String },
    #[error("`{value}` is not a URL entry: {reason}")]
    Url { value: String, reason: String },
    #[error("unknown list kind `{0}` (ip, domain or url)")]
    Kind(String),
}

/// What a list holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EdlKind {
    Ip,
    Domain,
    Url,
}

impl EdlKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EdlKind::Ip => "ip",
            EdlKind::Domain => "domain",
            EdlKind::Url => "url",
        }
    }

    /// Checks `value` for this kind of list and returns its canonical form
    /// (what is stored and rendered).
    pub fn normalize(self, value: &str) -> Result<String, EdlError> {
        let value = value.trim();
        if value.is_empty() {
            return Err(EdlError::Empty);
        }
        match self {
            EdlKind::Ip => IpEntry::from_str(value).map(|e| e.to_string()),
            EdlKind::Domain => normalize_domain(value),
            EdlKind::Url => normalize_url(value),
        }
    }
}

impl fmt::Display for EdlKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EdlKind {
    type Err = EdlError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ip" => Ok(EdlKind::Ip),
            "domain" => Ok(EdlKind::Domain),
            "url" => Ok(EdlKind::Url),
            other => Err(EdlError::Kind(other.to_string())),
        }
    }
}

/// An address the firewall can hold: in an IP list, or as the `ip` of a
/// User-ID registration (PAN-OS 10.0+ takes prefixes and ranges there too).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IpEntry {
    Addr(IpAddr),
    /// A prefix shorter than the full address (a /32 or /128 is an `Addr`).
    Net(IpNet),
    Range(IpAddr, IpAddr),
}

impl IpEntry {
    /// The entry of one network, in canonical form (a /32 or /128 is an
    /// `Addr`, an IPv4-mapped prefix is the IPv4 prefix).
    pub fn from_net(net: IpNet) -> IpEntry {
        let net = addr::canonical_net(net);
        if net.prefix_len() == net.max_prefix_len() {
            IpEntry::Addr(net.addr())
        } else {
            IpEntry::Net(net)
        }
    }

    /// The same entry in canonical form ([`addr`]): what is stored,
    /// rendered, registered and compared. Parsing already returns it; an
    /// entry built from an address in code goes through here.
    pub fn canonical(self) -> IpEntry {
        match self {
            IpEntry::Addr(a) => IpEntry::Addr(addr::canonical(a)),
            IpEntry::Net(n) => IpEntry::from_net(n),
            IpEntry::Range(a, b) => {
                let (ca, cb) = (addr::canonical(a), addr::canonical(b));
                // A range from a mapped address to a plain IPv6 one stays
                // IPv6: its ends must stay of one family.
                let (a, b) = if ca.is_ipv4() == cb.is_ipv4() {
                    (ca, cb)
                } else {
                    (a, b)
                };
                if a == b {
                    IpEntry::Addr(a)
                } else {
                    IpEntry::Range(a, b)
                }
            }
        }
    }

    /// The prefixes this entry covers (a range split into the fewest).
    pub fn nets(&self) -> Vec<IpNet> {
        match *self {
            IpEntry::Addr(a) => vec![IpNet::from(a)],
            IpEntry::Net(n) => vec![n],
            IpEntry::Range(IpAddr::V4(a), IpAddr::V4(b)) => {
                ipnet::Ipv4Subnets::new(a, b, 0).map(IpNet::V4).collect()
            }
            IpEntry::Range(IpAddr::V6(a), IpAddr::V6(b)) => {
                ipnet::Ipv6Subnets::new(a, b, 0).map(IpNet::V6).collect()
            }
            // Parsing never makes one; nothing sensible to cover.
            IpEntry::Range(a, _) => vec![IpNet::from(a)],
        }
    }

    /// Every network a check must look at: the entry's own prefixes, and
    /// the IPv4 networks its IPv6 addresses carry ([`addr`]), each with
    /// the form that carries it.
    pub fn reach(&self) -> Vec<(Option<addr::Embedding>, IpNet)> {
        let mut out = Vec::new();
        for net in self.nets() {
            out.push((None, net));
            if let IpNet::V6(v6) = net {
                out.extend(
                    addr::embedded_ipv4_nets(v6)
                        .into_iter()
                        .map(|(form, v4)| (Some(form), IpNet::V4(v4))),
                );
            }
        }
        out
    }

    /// Why the entry is broader than a list accepts by default: an IPv4
    /// prefix shorter than `min_v4`, an IPv6 one shorter than `min_v6`, or
    /// an IPv6 prefix that reaches an IPv4 network shorter than `min_v4`
    /// (`64:ff9b::/96` is all of IPv4 through NAT64). `None` when it is not.
    pub fn too_broad(&self, min_v4: u8, min_v6: u8) -> Option<String> {
        for (form, net) in self.reach() {
            let min = if net.addr().is_ipv4() { min_v4 } else { min_v6 };
            if net.prefix_len() < min {
                let via =
                    form.map_or_else(String::new, |f| format!(" (its {f} addresses reach {net})"));
                return Some(format!(
                    "{self} is broader than a /{min}{via}: too broad for this list"
                ));
            }
        }
        None
    }

    /// Whether `ip` is inside this entry.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match *self {
            IpEntry::Addr(a) => a == ip,
            IpEntry::Net(n) => n.contains(&ip),
            IpEntry::Range(a, b) => a <= ip && ip <= b && a.is_ipv4() == ip.is_ipv4(),
        }
    }

    /// Whether this entry and `net` share any address.
    pub fn overlaps(&self, net: &IpNet) -> bool {
        match *self {
            IpEntry::Addr(a) => net.contains(&a),
            IpEntry::Net(n) => n.contains(net) || net.contains(&n),
            IpEntry::Range(a, b) => {
                a.is_ipv4() == net.addr().is_ipv4() && a <= net.broadcast() && net.network() <= b
            }
        }
    }
}

impl fmt::Display for IpEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IpEntry::Addr(a) => write!(f, "{a}"),
            IpEntry::Net(n) => write!(f, "{n}"),
            IpEntry::Range(a, b) => write!(f, "{a}-{b}"),
        }
    }
}

impl From<IpAddr> for IpEntry {
    fn from(a: IpAddr) -> Self {
        IpEntry::Addr(a)
    }
}

fn ip_err(value: &str, reason: impl Into<String>) -> EdlError {
    EdlError::Ip {
        value: value.to_string(),
        reason: reason.into(),
    }
}

fn parse_addr(value: &str, part: &str) -> Result<IpAddr, EdlError> {
    // A zone id (`fe80::1%eth0`) means nothing to a firewall elsewhere.
    part.trim()
        .parse::<IpAddr>()
        .map_err(|_| ip_err(value, format!("`{part}` is not an IPv4 or IPv6 address")))
}

/// Parses, then puts the entry in canonical form: `::ffff:10.0.0.1` and
/// `10.0.0.1` are one entry.
impl FromStr for IpEntry {
    type Err = EdlError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        parse_entry(value).map(IpEntry::canonical)
    }
}

fn parse_entry(value: &str) -> Result<IpEntry, EdlError> {
    {
        let s = value.trim();
        if s.is_empty() {
            return Err(EdlError::Empty);
        }
        if let Some((a, b)) = s.split_once('-') {
            let (a, b) = (parse_addr(value, a)?, parse_addr(value, b)?);
            // `::ffff:10.0.0.1-10.0.0.9` is an IPv4 range.
            let (ca, cb) = (addr::canonical(a), addr::canonical(b));
            let (a, b) = if ca.is_ipv4() == cb.is_ipv4() {
                (ca, cb)
            } else {
                (a, b)
            };
            if a.is_ipv4() != b.is_ipv4() {
                return Err(ip_err(
                    value,
                    "the ends of a range are of different families",
                ));
            }
            if a > b {
                return Err(ip_err(value, "the range starts after it ends"));
            }
            if a == b {
                return Ok(IpEntry::Addr(a));
            }
            return Ok(IpEntry::Range(a, b));
        }
        if let Some((addr, len)) = s.split_once('/') {
            let addr = parse_addr(value, addr)?;
            let len: u8 = len
                .parse()
                .map_err(|_| ip_err(value, format!("prefix length `{len}` is not a number")))?;
            let net = IpNet::new(addr, len).map_err(|_| {
                ip_err(
                    value,
                    format!(
                        "prefix length {len} is longer than {}",
                        if addr.is_ipv4() { 32 } else { 128 }
                    ),
                )
            })?;
            if net.trunc() != net {
                return Err(ip_err(
                    value,
                    format!("host bits are set (the network is {})", net.trunc()),
                ));
            }
            if net.prefix_len() == net.max_prefix_len() {
                return Ok(IpEntry::Addr(addr));
            }
            return Ok(IpEntry::Net(net));
        }
        Ok(IpEntry::Addr(parse_addr(value, s)?))
    }
}

fn domain_err(value: &str, reason: impl Into<String>) -> EdlError {
    EdlError::Domain {
        value: value.to_string(),
        reason: reason.into(),
    }
}

/// Checks a host name whose leftmost label may be `*`; returns it lower-cased.
fn check_host(value: &str, host: &str, wildcards: bool) -> Result<String, String> {
    if !host.is_ascii() {
        return Err("non-ASCII name: write it in its punycode (xn--) form".into());
    }
    let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    if host.is_empty() {
        return Err("no host name".into());
    }
    if host.len() > MAX_DOMAIN_LEN {
        return Err(format!("longer than {MAX_DOMAIN_LEN} characters"));
    }
    let labels: Vec<&str> = host.split('.').collect();
    for (i, label) in labels.iter().enumerate() {
        if label.is_empty() {
            return Err("empty label (two dots in a row, or a leading dot)".into());
        }
        if *label == "*" || *label == "^" {
            if !wildcards {
                return Err("wildcards are not allowed here".into());
            }
            if i == labels.len() - 1 {
                return Err("the top-level domain cannot be a wildcard".into());
            }
            continue;
        }
        if label.len() > 63 {
            return Err(format!("label `{label}` is longer than 63 characters"));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!("label `{label}` starts or ends with a hyphen"));
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
        {
            if c == '*' || c == '^' {
                return Err(format!(
                    "a wildcard must be a whole label, not part of `{label}`"
                ));
            }
            return Err(format!("character `{}` is not allowed", c.escape_default()));
        }
    }
    let _ = value;
    Ok(host)
}

fn normalize_domain(value: &str) -> Result<String, EdlError> {
    if value.contains("://") || value.contains('/') {
        return Err(domain_err(value, "a domain list takes names, not URLs"));
    }
    let host = check_host(value, value, true).map_err(|r| domain_err(value, r))?;
    // PAN-OS domain lists know only the leading `*.` wildcard.
    if host.split('.').skip(1).any(|l| l == "*" || l == "^") || host.starts_with('^') {
        return Err(domain_err(
            value,
            "only a leading `*.` wildcard is allowed in a domain list",
        ));
    }
    Ok(host)
}

fn url_err(value: &str, reason: impl Into<String>) -> EdlError {
    EdlError::Url {
        value: value.to_string(),
        reason: reason.into(),
    }
}

const URL_SEPARATORS: &[char] = &['.', '/', '?', '&', '=', ';', '+'];

fn normalize_url(value: &str) -> Result<String, EdlError> {
    if value.len() > MAX_URL_LEN {
        return Err(url_err(
            value,
            format!("longer than {MAX_URL_LEN} characters"),
        ));
    }
    if let Some(c) = value.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(url_err(
            value,
            format!("character `{}` is not allowed", c.escape_default()),
        ));
    }
    if value.contains("://") {
        return Err(url_err(
            value,
            "leave out the scheme (http://, https://): the firewall matches either",
        ));
    }
    if value.contains('#') {
        return Err(url_err(value, "a fragment (#…) never reaches the firewall"));
    }
    let split = value.find(['/', '?']).unwrap_or(value.len());
    let (authority, rest) = value.split_at(split);
    if authority.contains('@') {
        return Err(url_err(value, "user info (user@) is not allowed"));
    }
    // host[:port], or [v6]:port
    let host = if let Some(v6) = authority.strip_prefix('[') {
        let (addr, tail) = v6
            .split_once(']')
            .ok_or_else(|| url_err(value, "unclosed `[` around an IPv6 address"))?;
        let v6 = addr
            .parse::<std::net::Ipv6Addr>()
            .map_err(|_| url_err(value, format!("`{addr}` is not an IPv6 address")))?;
        check_port(value, tail.strip_prefix(':'), tail)?;
        // One host, one spelling: `[::ffff:10.0.0.1]` is `10.0.0.1`.
        match addr::canonical(IpAddr::V6(v6)) {
            IpAddr::V4(v4) => format!("{v4}{tail}"),
            IpAddr::V6(v6) => format!("[{v6}]{tail}"),
        }
    } else {
        let (h, port) = match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        };
        check_port(value, port, if port.is_some() { ":" } else { "" })?;
        let mut host = if h.parse::<std::net::Ipv4Addr>().is_ok() {
            h.to_string()
        } else {
            check_host(value, h, true).map_err(|r| url_err(value, r))?
        };
        if let Some(p) = port {
            host.push(':');
            host.push_str(p);
        }
        host
    };
    for token in rest.split(URL_SEPARATORS) {
        if token.len() > 1 && (token.contains('*') || token.contains('^')) {
            return Err(url_err(
                value,
                format!("a wildcard must be a whole token, not part of `{token}`"),
            ));
        }
    }
    Ok(format!("{host}{rest}"))
}

fn check_port(value: &str, port: Option<&str>, tail: &str) -> Result<(), EdlError> {
    match port {
        None if tail.is_empty() => Ok(()),
        None => Err(url_err(
            value,
            format!("unexpected `{tail}` after the host"),
        )),
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => Ok(()),
            _ => Err(url_err(value, format!("`{p}` is not a port"))),
        },
    }
}

/// A list rendered for the firewall: the body and its strong ETag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedEdl {
    pub body: bytes::Bytes,
    /// Quoted, as the `ETag` header carries it.
    pub etag: String,
}

/// Renders canonical entries (as [`EdlKind::normalize`] returns them), one
/// a line, into one buffer. The ETag is the SHA-256 of the body, so equal
/// bodies always carry equal tags, across restarts and replicas.
pub fn render<'a>(entries: impl IntoIterator<Item = &'a str>) -> RenderedEdl {
    let iter = entries.into_iter();
    let mut body = Vec::with_capacity(iter.size_hint().0.saturating_mul(24));
    for entry in iter {
        // Canonical entries never hold line breaks; a stray one would split
        // an entry in two on the firewall, so it is cut there.
        let entry = entry.split(['\n', '\r']).next().unwrap_or("");
        if entry.is_empty() {
            continue;
        }
        body.extend_from_slice(entry.as_bytes());
        body.push(b'\n');
    }
    let digest = Sha256::digest(&body);
    let etag = format!("\"{}\"", hex::encode(&digest[..16]));
    RenderedEdl {
        body: bytes::Bytes::from(body),
        etag,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Result<String, EdlError> {
        EdlKind::Ip.normalize(s)
    }

    #[test]
    fn ip_entries_take_addresses_prefixes_and_ranges_of_both_families() {
        assert_eq!(ip("192.0.2.10").as_deref(), Ok("192.0.2.10"));
        assert_eq!(ip(" 192.0.2.0/24 ").as_deref(), Ok("192.0.2.0/24"));
        assert_eq!(ip("192.0.2.10/32").as_deref(), Ok("192.0.2.10"));
        assert_eq!(ip("2001:DB8::1").as_deref(), Ok("2001:db8::1"));
        assert_eq!(ip("2001:db8::/32").as_deref(), Ok("2001:db8::/32"));
        assert_eq!(
            ip("192.0.2.40-192.0.2.50").as_deref(),
            Ok("192.0.2.40-192.0.2.50")
        );
        assert_eq!(
            ip("2001:db8::1-2001:db8::ff").as_deref(),
            Ok("2001:db8::1-2001:db8::ff")
        );
    }

    #[test]
    fn ipv4_hosts_written_in_ipv6_are_one_entry_with_their_ipv4_form() {
        let cases = [
            ("::ffff:192.0.2.10", "192.0.2.10"),
            ("::FFFF:c000:20a", "192.0.2.10"),
            ("::192.0.2.10", "192.0.2.10"),
            ("::ffff:192.0.2.10/128", "192.0.2.10"),
            ("::ffff:192.0.2.0/120", "192.0.2.0/24"),
            (
                "::ffff:192.0.2.40-::ffff:192.0.2.50",
                "192.0.2.40-192.0.2.50",
            ),
            ("::ffff:192.0.2.40-192.0.2.50", "192.0.2.40-192.0.2.50"),
            // Translated forms are other IPv6 addresses: kept.
            ("64:ff9b::c000:20a", "64:ff9b::c000:20a"),
            ("::1", "::1"),
        ];
        for (input, want) in cases {
            assert_eq!(ip(input).as_deref(), Ok(want), "{input}");
        }
        let u = |s| EdlKind::Url.normalize(s);
        assert_eq!(
            u("[::ffff:192.0.2.10]:8080/x").as_deref(),
            Ok("192.0.2.10:8080/x")
        );
    }

    #[test]
    fn entries_know_how_broad_they_are_including_what_they_reach_in_ipv4() {
        let broad = |s: &str| {
            s.parse::<IpEntry>()
                .map(|e| e.too_broad(16, 48))
                .unwrap_or_else(|e| panic!("{s}: {e}"))
        };
        for wide in [
            "0.0.0.0/0",
            "10.0.0.0/8",
            "::/0",
            "2001:db8::/32",
            "64:ff9b::/96",
            "2002::/16",
            "2002:c000::/24",
            "10.0.0.0-10.255.255.255",
        ] {
            assert!(broad(wide).is_some(), "{wide}");
        }
        for fine in [
            "10.1.0.0/16",
            "2001:db8::/48",
            "64:ff9b::c000:200/120",
            "2002:c000:200::/48",
            "192.0.2.1",
            "10.0.0.0-10.0.255.255",
        ] {
            assert_eq!(broad(fine), None, "{fine}");
        }
        let why = broad("64:ff9b::/96").unwrap_or_default();
        assert!(why.contains("NAT64"), "{why}");
    }

    #[test]
    fn bad_ip_entries_say_why() {
        let cases = [
            (
                "192.0.2.1/24",
                "host bits are set (the network is 192.0.2.0/24)",
            ),
            ("192.0.2.0/33", "prefix length 33 is longer than 32"),
            ("192.0.2.50-192.0.2.40", "the range starts after it ends"),
            ("192.0.2.1-2001:db8::1", "different families"),
            ("evil.example", "is not an IPv4 or IPv6 address"),
            ("192.0.2.1/x", "is not a number"),
        ];
        for (value, reason) in cases {
            let err = ip(value).expect_err(value).to_string();
            assert!(err.contains(reason), "{value}: {err}");
        }
        assert_eq!(ip("  "), Err(EdlError::Empty));
    }

    #[test]
    fn domains_are_lower_cased_and_wildcards_are_leading_labels_only() {
        let d = |s| EdlKind::Domain.normalize(s);
        assert_eq!(d("Evil.Example.COM.").as_deref(), Ok("evil.example.com"));
        assert_eq!(d("*.evil.example").as_deref(), Ok("*.evil.example"));
        assert_eq!(
            d("xn--bcher-kva.example").as_deref(),
            Ok("xn--bcher-kva.example")
        );
        for bad in [
            "www.*.example",
            "ev*il.example",
            "bücher.example",
            "a..b",
            "-a.example",
            "https://evil.example",
            "evil.example/path",
            "*",
            "a b.example",
        ] {
            assert!(d(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn urls_have_no_scheme_and_whole_token_wildcards() {
        let u = |s| EdlKind::Url.normalize(s);
        assert_eq!(
            u("Evil.Example/gate.php?id=1").as_deref(),
            Ok("evil.example/gate.php?id=1")
        );
        assert_eq!(u("*.evil.example/").as_deref(), Ok("*.evil.example/"));
        assert_eq!(
            u("evil.example:8443/a/*/b").as_deref(),
            Ok("evil.example:8443/a/*/b")
        );
        assert_eq!(u("192.0.2.7/x").as_deref(), Ok("192.0.2.7/x"));
        assert_eq!(
            u("[2001:DB8::1]:8080/x").as_deref(),
            Ok("[2001:db8::1]:8080/x")
        );
        let err = u("http://evil.example/").expect_err("scheme").to_string();
        assert!(err.contains("leave out the scheme"), "{err}");
        for bad in [
            "evil.example/ga*te",
            "evil.example/a b",
            "user@evil.example",
            "evil.example:0/",
            "evil.example:99999",
            "evil.example/#x",
            "evil.*",
        ] {
            assert!(u(bad).is_err(), "{bad} accepted");
        }
        assert!(u(&format!("a.example/{}", "x".repeat(300))).is_err());
    }

    #[test]
    fn rendering_is_one_entry_a_line_with_a_stable_strong_etag() {
        let a = render(["192.0.2.1", "192.0.2.0/24"]);
        assert_eq!(&a.body[..], b"192.0.2.1\n192.0.2.0/24\n");
        assert!(a.etag.starts_with('"') && a.etag.ends_with('"'));
        assert_eq!(a.etag, render(["192.0.2.1", "192.0.2.0/24"]).etag);
        assert_ne!(a.etag, render(["192.0.2.1"]).etag);
        assert_eq!(&render(["a\nb", ""]).body[..], b"a\n");
        assert_eq!(&render(Vec::<&str>::new()).body[..], b"");
    }

    #[test]
    fn entries_know_what_they_cover() {
        let r: IpEntry = "10.0.0.5-10.0.1.5".parse().expect("range");
        assert!(r.contains("10.0.0.200".parse().expect("ip")));
        assert!(!r.contains("10.0.2.0".parse().expect("ip")));
        assert!(r.overlaps(&"10.0.1.0/24".parse().expect("net")));
        assert!(!r.overlaps(&"10.0.2.0/24".parse().expect("net")));
        let n: IpEntry = "10.0.0.0/8".parse().expect("net");
        assert!(n.overlaps(&"10.244.0.0/16".parse().expect("net")));
        assert!(n.overlaps(&"0.0.0.0/0".parse().expect("net")));
    }

    mod props {
        use super::super::*;
        use proptest::prelude::*;

        fn kind() -> impl Strategy<Value = EdlKind> {
            prop_oneof![Just(EdlKind::Ip), Just(EdlKind::Domain), Just(EdlKind::Url)]
        }

        proptest! {
            #[test]
            fn any_text_is_an_entry_or_a_clear_error_and_entries_are_stable(
                k in kind(),
                v in "[a-zA-Z0-9.:/*^?&=;+_\\- \n\t#@\\[\\]]{0,40}|\\PC{0,40}",
            ) {
                match k.normalize(&v) {
                    Ok(n) => {
                        prop_assert!(!n.is_empty());
                        prop_assert!(!n.contains(char::is_whitespace), "{:?}", n);
                        prop_assert_eq!(k.normalize(&n), Ok(n.clone()));
                    }
                    Err(e) => prop_assert!(!e.to_string().is_empty()),
                }
            }

            #[test]
            fn every_prefix_and_range_is_accepted_in_its_network_form(
                a in any::<u32>(), b in any::<u32>(), len in 0u8..=32,
            ) {
                let net = ipnet::Ipv4Net::new(a.into(), len).map_err(|e| TestCaseError::fail(e.to_string()))?.trunc();
                let n = EdlKind::Ip.normalize(&net.to_string())?;
                let entry: IpEntry = n.parse()?;
                prop_assert!(entry.contains(IpAddr::V4(net.network())));
                let (lo, hi) = (a.min(b), a.max(b));
                let range = format!("{}-{}", std::net::Ipv4Addr::from(lo), std::net::Ipv4Addr::from(hi));
                let entry: IpEntry = EdlKind::Ip.normalize(&range)?.parse()?;
                prop_assert!(entry.contains(IpAddr::V4(hi.into())));
            }
        }
    }
}
