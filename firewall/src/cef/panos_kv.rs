//! Value readers shared by PAN-OS's two key/value formats, CEF and LEEF:
//! the same firewall fields under different keys, with the same quirks.

use std::borrow::Cow;
use std::net::IpAddr;
use std::str::FromStr;

use crate::{Direction, EventKind, Severity, Str, ThreatEvent};

/// The log types PAN-OS names in its headers. Only THREAT and TRAFFIC
/// become events; the others are valid records Riposte has no use for.
pub(crate) fn is_log_type(s: &str) -> bool {
    const TYPES: [&str; 17] = [
        "THREAT",
        "TRAFFIC",
        "SYSTEM",
        "CONFIG",
        "HIPMATCH",
        "HIP-MATCH",
        "CORRELATION",
        "USERID",
        "AUTH",
        "AUTHENTICATION",
        "GLOBALPROTECT",
        "DECRYPTION",
        "IPTAG",
        "SCTP",
        "TUNNEL",
        "GTP",
        "WILDFIRE",
    ];
    TYPES.iter().any(|t| t.eq_ignore_ascii_case(s.trim()))
}

/// What a log type becomes, and its dataset; `None` for the log types
/// Riposte ignores.
pub(crate) fn kind_of(log_type: &str) -> Option<(EventKind, &'static str)> {
    if log_type.eq_ignore_ascii_case("THREAT") {
        Some((EventKind::Alert, "panos.threat"))
    } else if log_type.eq_ignore_ascii_case("TRAFFIC") {
        Some((EventKind::Event, "panos.traffic"))
    } else {
        None
    }
}

/// Splits PAN-OS's `Name(id)` threat form: `Zeus C2 Traffic(13209)` gives
/// the name and 13209; URL-filtering logs send a bare `(9999)`. A name
/// without the suffix is returned whole.
pub(crate) fn split_threat_id(s: &str) -> (Option<&str>, Option<u64>) {
    let s = s.trim();
    if let Some(body) = s.strip_suffix(')') {
        if let Some(open) = body.rfind('(') {
            let digits = &body[open + 1..];
            if !digits.is_empty()
                && digits.len() <= 19
                && digits.bytes().all(|c| c.is_ascii_digit())
            {
                let name = body[..open].trim();
                return ((!name.is_empty()).then_some(name), digits.parse().ok());
            }
        }
    }
    ((!s.is_empty()).then_some(s), None)
}

/// True when `s` ends in PAN-OS's `(id)` threat suffix.
pub(crate) fn has_threat_id(s: &str) -> bool {
    split_threat_id(s).1.is_some()
}

/// CEF's 0–10 severity on PAN-OS's five levels. PAN-OS fills the header
/// from the threat's own level (informational, low, medium, high,
/// critical); the bands follow the CEF standard (0–3 low, 4–6 medium, 7–8
/// high, 9–10 very high) with its lowest band split so that PAN-OS's
/// informational (0–1) stays apart from low (2–3).
pub(crate) fn severity_from_cef(n: u8) -> Option<Severity> {
    Some(match n {
        0 | 1 => Severity::Informational,
        2 | 3 => Severity::Low,
        4..=6 => Severity::Medium,
        7 | 8 => Severity::High,
        9 | 10 => Severity::Critical,
        _ => return None,
    })
}

/// A severity as any PAN-OS key/value template may send it: a level name,
/// CEF's own words (`Very-High`), or a 0–10 number.
pub(crate) fn parse_severity(s: &str) -> Option<Severity> {
    let s = s.trim();
    if let Some(level) = Severity::parse(s) {
        return Some(level);
    }
    if s.eq_ignore_ascii_case("very-high") || s.eq_ignore_ascii_case("very high") {
        return Some(Severity::Critical);
    }
    s.parse::<u8>().ok().and_then(severity_from_cef)
}

/// `network.transport`: the protocol name in lower case; IANA numbers for
/// the common ones are named.
pub(crate) fn transport(s: &str) -> Option<Str> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    Some(match s {
        "6" => Str::new("tcp"),
        "17" => Str::new("udp"),
        "1" => Str::new("icmp"),
        "58" => Str::new("ipv6-icmp"),
        "132" => Str::new("sctp"),
        _ => Str::from(s.to_ascii_lowercase()),
    })
}

/// PAN-OS puts the URL or the file name in one field ("misc"): which one
/// depends on the subtype.
pub(crate) fn misc_is_file(subtype: &str) -> bool {
    [
        "file",
        "virus",
        "wildfire",
        "wildfire-virus",
        "data",
        "dlp",
        "ml-virus",
    ]
    .iter()
    .any(|t| t.eq_ignore_ascii_case(subtype))
}

/// Drops one pair of surrounding double quotes, as PAN-OS writes the misc
/// field.
pub(crate) fn unquote(s: &str) -> &str {
    let s = s.trim();
    s.strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .unwrap_or(s)
}

/// A non-empty value as an event string.
pub(crate) fn text(s: Option<&str>) -> Option<Str> {
    s.map(str::trim).filter(|s| !s.is_empty()).map(Str::new)
}

/// An owned non-empty value.
pub(crate) fn owned(s: Option<Cow<'_, str>>) -> Option<String> {
    s.filter(|s| !s.trim().is_empty()).map(Cow::into_owned)
}

/// An IP address; a value that is not one is kept out of the event and
/// recorded as a warning.
pub(crate) fn ip(ev: &mut ThreatEvent, field: &str, s: Option<&str>) -> Option<IpAddr> {
    let s = s.map(str::trim).filter(|s| !s.is_empty())?;
    match s.parse() {
        Ok(ip) => Some(ip),
        Err(_) => {
            ev.warn(field, format_args!("`{}` is not an IP address", clip(s)));
            None
        }
    }
}

/// A NAT address: PAN-OS writes `0.0.0.0` when no translation happened.
pub(crate) fn nat_ip(ev: &mut ThreatEvent, field: &str, s: Option<&str>) -> Option<IpAddr> {
    ip(ev, field, s).filter(|ip| !ip.is_unspecified())
}

/// A number of any width; a malformed one is a warning.
pub(crate) fn number<T: FromStr>(ev: &mut ThreatEvent, field: &str, s: Option<&str>) -> Option<T> {
    let s = s.map(str::trim).filter(|s| !s.is_empty())?;
    match s.parse() {
        Ok(n) => Some(n),
        Err(_) => {
            ev.warn(
                field,
                format_args!("`{}` is not a valid number here", clip(s)),
            );
            None
        }
    }
}

/// A NAT port: `0` means no translation.
pub(crate) fn nat_port(ev: &mut ThreatEvent, field: &str, s: Option<&str>) -> Option<u16> {
    number::<u16>(ev, field, s).filter(|&p| p != 0)
}

/// The first 64 characters of a bad value, for a warning.
pub(crate) fn clip(s: &str) -> &str {
    match s.char_indices().nth(64) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Compares a custom-field label to a known name, ignoring case, spaces,
/// hyphens and underscores (`Source Zone`, `SourceZone`, `source_zone`).
pub(crate) fn label_is(label: &str, name: &str) -> bool {
    let mut l = label
        .bytes()
        .filter(|c| !matches!(c, b' ' | b'_' | b'-'))
        .map(|c| c.to_ascii_lowercase());
    let mut n = name.bytes();
    loop {
        match (l.next(), n.next()) {
            (None, None) => return true,
            (Some(a), Some(b)) if a == b => {}
            _ => return false,
        }
    }
}

/// Whether a SHA-256 digest in hex.
pub(crate) fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|c| c.is_ascii_hexdigit())
}

/// The firewall fields CEF and LEEF both carry, read from whichever keys
/// the format uses, and written onto the event the same way: one mapping,
/// so the two formats cannot drift apart. Addresses, ports and counters are
/// the raw values (they never carry escapes); the rest is already unescaped.
#[derive(Debug, Default)]
/// A key-value record's times and what was wrong with them.
pub(crate) struct Times {
    /// `@timestamp`: generated, else received, else the syslog header's.
    pub at: chrono::DateTime<chrono::Utc>,
    /// `event.created`: when the firewall received it.
    pub created: Option<chrono::DateTime<chrono::Utc>>,
    pub warnings: Vec<(&'static str, String)>,
}

pub(crate) struct SharedFields<'a> {
    pub serial: Option<Cow<'a, str>>,
    pub hostname: Option<Cow<'a, str>>,
    pub src: Option<&'a str>,
    pub dst: Option<&'a str>,
    pub src_port: Option<&'a str>,
    pub dst_port: Option<&'a str>,
    pub src_nat: Option<&'a str>,
    pub dst_nat: Option<&'a str>,
    pub src_nat_port: Option<&'a str>,
    pub dst_nat_port: Option<&'a str>,
    pub src_user: Option<Cow<'a, str>>,
    pub dst_user: Option<Cow<'a, str>>,
    pub application: Option<Cow<'a, str>>,
    pub proto: Option<&'a str>,
    pub action: Option<Cow<'a, str>>,
    pub inbound_if: Option<Cow<'a, str>>,
    pub outbound_if: Option<Cow<'a, str>>,
    pub vsys: Option<Cow<'a, str>>,
    pub rule: Option<Cow<'a, str>>,
    pub rule_uuid: Option<Cow<'a, str>>,
    pub src_zone: Option<Cow<'a, str>>,
    pub dst_zone: Option<Cow<'a, str>>,
    pub session_id: Option<&'a str>,
    pub repeat_count: Option<&'a str>,
    pub sequence: Option<&'a str>,
    pub direction: Option<Direction>,
    pub container_id: Option<Cow<'a, str>>,
    pub pod_namespace: Option<Cow<'a, str>>,
    pub pod_name: Option<Cow<'a, str>>,
    pub user_agent: Option<Cow<'a, str>>,
    pub file_hash: Option<Cow<'a, str>>,
    /// Threat logs only: the e-mail fields of phishing verdicts.
    pub sender: Option<Cow<'a, str>>,
    pub subject: Option<Cow<'a, str>>,
}

impl SharedFields<'_> {
    /// Writes the fields onto `ev`; malformed values become warnings, in the
    /// order the fields appear in the event.
    pub(crate) fn fill(&self, ev: &mut ThreatEvent, header_hostname: Option<&str>) {
        ev.observer_serial_number = text(self.serial.as_deref());
        ev.observer_hostname = text(self.hostname.as_deref()).or_else(|| text(header_hostname));
        ev.source_ip = ip(ev, "source.ip", self.src);
        ev.destination_ip = ip(ev, "destination.ip", self.dst);
        ev.source_port = number(ev, "source.port", self.src_port);
        ev.destination_port = number(ev, "destination.port", self.dst_port);
        ev.source_nat_ip = nat_ip(ev, "source.nat.ip", self.src_nat);
        ev.destination_nat_ip = nat_ip(ev, "destination.nat.ip", self.dst_nat);
        ev.source_nat_port = nat_port(ev, "source.nat.port", self.src_nat_port);
        ev.destination_nat_port = nat_port(ev, "destination.nat.port", self.dst_nat_port);
        ev.source_user = text(self.src_user.as_deref());
        ev.destination_user = text(self.dst_user.as_deref());
        ev.network_application = text(self.application.as_deref());
        ev.network_transport = self.proto.and_then(transport);
        ev.action = text(self.action.as_deref());
        ev.observer_ingress_interface = text(self.inbound_if.as_deref());
        ev.observer_egress_interface = text(self.outbound_if.as_deref());
        ev.panos_virtual_system = text(self.vsys.as_deref());
        ev.rule_name = text(self.rule.as_deref());
        ev.rule_uuid = text(self.rule_uuid.as_deref());
        ev.source_zone = text(self.src_zone.as_deref());
        ev.destination_zone = text(self.dst_zone.as_deref());
        ev.panos_session_id = number(ev, "panos.session_id", self.session_id);
        ev.panos_repeat_count = number(ev, "panos.repeat_count", self.repeat_count);
        ev.panos_sequence_number = number(ev, "panos.sequence_number", self.sequence);
        ev.network_direction = self.direction;
        ev.container_id = text(self.container_id.as_deref());
        ev.orchestrator_namespace = text(self.pod_namespace.as_deref());
        ev.orchestrator_resource_name = text(self.pod_name.as_deref());
        ev.user_agent = trimmed(self.user_agent.as_deref());
        if let Some(digest) = self.file_hash.as_deref().map(str::trim) {
            if is_sha256(digest) {
                ev.file_hash_sha256 = Some(Str::new(digest));
            } else if !digest.is_empty() {
                ev.warn(
                    "file.hash.sha256",
                    format_args!("`{}` is not a SHA-256 digest", clip(digest)),
                );
            }
        }
        if ev.kind == EventKind::Alert {
            ev.email_from = trimmed(self.sender.as_deref());
            ev.email_subject = trimmed(self.subject.as_deref());
        }
    }
}

/// A non-empty value, trimmed and owned.
fn trimmed(s: Option<&str>) -> Option<String> {
    s.map(str::trim).filter(|s| !s.is_empty()).map(String::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threat_ids_split_from_names() {
        assert_eq!(
            split_threat_id("Zeus C2 Traffic(13209)"),
            (Some("Zeus C2 Traffic"), Some(13209))
        );
        assert_eq!(split_threat_id("(9999)"), (None, Some(9999)));
        assert_eq!(
            split_threat_id("Suspicious DNS Query (generic:x.example)(109010004)"),
            (
                Some("Suspicious DNS Query (generic:x.example)"),
                Some(109010004)
            )
        );
        assert_eq!(split_threat_id("Plain name"), (Some("Plain name"), None));
        assert_eq!(split_threat_id("odd(12a)"), (Some("odd(12a)"), None));
        assert_eq!(split_threat_id(""), (None, None));
    }

    #[test]
    fn cef_severity_bands() {
        assert_eq!(severity_from_cef(1), Some(Severity::Informational));
        assert_eq!(severity_from_cef(3), Some(Severity::Low));
        assert_eq!(severity_from_cef(5), Some(Severity::Medium));
        assert_eq!(severity_from_cef(8), Some(Severity::High));
        assert_eq!(severity_from_cef(10), Some(Severity::Critical));
        assert_eq!(severity_from_cef(11), None);
        assert_eq!(parse_severity("Very-High"), Some(Severity::Critical));
        assert_eq!(parse_severity("critical"), Some(Severity::Critical));
        assert_eq!(parse_severity(" 7 "), Some(Severity::High));
        assert_eq!(parse_severity("bad"), None);
    }

    #[test]
    fn labels_compare_loosely() {
        assert!(label_is("Source Zone", "sourcezone"));
        assert!(label_is("source_zone", "sourcezone"));
        assert!(!label_is("Source Zones", "sourcezone"));
        assert!(!label_is("Source", "sourcezone"));
    }

    #[test]
    fn transports_are_lower_case_names() {
        assert_eq!(transport("TCP").as_deref(), Some("tcp"));
        assert_eq!(transport("17").as_deref(), Some("udp"));
        assert_eq!(transport(""), None);
    }
}
