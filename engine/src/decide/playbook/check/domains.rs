//! The values enumerated fields take, and "did you mean" for near misses.
//!
//! Closed domains (`event.kind`, `network.direction`, severities) are
//! refused outright elsewhere; the open ones here (a firewall may send a
//! value Riposte has not seen) only warn when a value is not in the list
//! and is close to one that is, which is what a typo looks like.

/// PAN-OS threat subtypes, and what Suricata classtypes map onto
/// (`riposte_firewall::eve::classtype`).
pub const THREAT_TYPES: &[&str] = &[
    "spyware",
    "virus",
    "vulnerability",
    "file",
    "scan",
    "flood",
    "packet",
    "resource",
    "url",
    "data",
    "wildfire",
    "wildfire-virus",
    "ml-virus",
    "dns",
    "dns-security",
    "dns-c2",
    "ctd-ml",
];

/// PAN-OS threat categories (content and URL), and the Suricata mapping.
pub const THREAT_CATEGORIES: &[&str] = &[
    "command-and-control",
    "malicious",
    "malware",
    "grayware",
    "phishing",
    "benign",
    "adware",
    "backdoor",
    "botnet",
    "browser-hijack",
    "cryptominer",
    "data-theft",
    "dns",
    "downloader",
    "fraud",
    "hacktool",
    "keylogger",
    "networm",
    "phishing-kit",
    "post-exploitation",
    "spyware",
    "webshell",
    "brute-force",
    "code-execution",
    "code-obfuscation",
    "dos",
    "exploit-kit",
    "info-leak",
    "insecure-credentials",
    "overflow",
    "protocol-anomaly",
    "sql-injection",
    "high-risk",
    "medium-risk",
    "low-risk",
    "newly-registered-domain",
    "unknown",
];

/// Firewall actions (PAN-OS and Suricata).
pub const ACTIONS: &[&str] = &[
    "alert",
    "allow",
    "deny",
    "drop",
    "drop-all",
    "drop-all-packets",
    "reset-client",
    "reset-server",
    "reset-both",
    "block",
    "block-url",
    "block-ip",
    "block-override",
    "block-continue",
    "continue",
    "override",
    "sinkhole",
    "random-drop",
    "syn-cookies",
    "allowed",
    "blocked",
];

pub const SEVERITIES: &[&str] = &["informational", "info", "low", "medium", "high", "critical"];
pub const DIRECTIONS: &[&str] = &["client-to-server", "server-to-client"];
pub const KINDS: &[&str] = &["alert", "event", "webhook", "schedule"];
pub const MODULES: &[&str] = &["panos", "suricata", "riposte"];

/// How an enumerated field's unknown value is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strictness {
    /// The list is complete: another value can never match.
    Closed,
    /// A firewall may send more: warn on a near miss only.
    Open,
}

/// The domain of an `event.…` path (script) or trigger field.
pub fn of(path: &str) -> Option<(&'static [&'static str], Strictness)> {
    Some(match path {
        "threat.type" => (THREAT_TYPES, Strictness::Open),
        "threat.category" => (THREAT_CATEGORIES, Strictness::Open),
        "action" => (ACTIONS, Strictness::Open),
        "threat.severity" => (SEVERITIES, Strictness::Closed),
        "network.direction" => (DIRECTIONS, Strictness::Closed),
        "kind" => (KINDS, Strictness::Closed),
        "module" => (MODULES, Strictness::Closed),
        _ => return None,
    })
}

/// What is wrong with `value` for `path`, if anything: `(certain, message)`.
pub fn check_value(path: &str, value: &str) -> Option<(bool, String)> {
    let (domain, strictness) = of(path)?;
    if domain.iter().any(|d| d.eq_ignore_ascii_case(value)) {
        return None;
    }
    let near = closest(&value.to_ascii_lowercase(), domain.iter().copied());
    match (strictness, near) {
        (Strictness::Closed, near) => Some((
            true,
            format!(
                "`{value}` is never a {path}: it is one of {}{}",
                domain.join(", "),
                near.map(|n| format!(" (did you mean `{n}`?)"))
                    .unwrap_or_default()
            ),
        )),
        (Strictness::Open, Some(n)) => Some((
            false,
            format!("`{value}` is not a known {path}: did you mean `{n}`?"),
        )),
        (Strictness::Open, None) => None,
    }
}

/// The candidate nearest to `word` within a typo's distance.
pub fn closest<'a>(word: &str, candidates: impl Iterator<Item = &'a str>) -> Option<String> {
    let limit = match word.chars().count() {
        0..=3 => 1,
        4..=7 => 2,
        _ => 3,
    };
    closest_within(word, candidates, limit)
}

/// The candidate nearest to `word` at most `limit` edits away.
pub fn closest_within<'a>(
    word: &str,
    candidates: impl Iterator<Item = &'a str>,
    limit: usize,
) -> Option<String> {
    candidates
        .map(|c| (distance(word, c), c))
        .filter(|(d, _)| *d <= limit && *d > 0)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c.to_owned())
}

/// Edit distance with transpositions (optimal string alignment): `once_pre`
/// is one edit from `once_per`.
pub fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn near_misses_are_suggested() {
        assert_eq!(distance("once_pre", "once_per"), 1);
        assert_eq!(
            closest("vulnerabilty", THREAT_TYPES.iter().copied()).as_deref(),
            Some("vulnerability")
        );
        assert_eq!(closest("zzz", THREAT_TYPES.iter().copied()), None);
        let (certain, msg) = check_value("threat.type", "vulnerabilty").expect("warned");
        assert!(
            !certain && msg.contains("did you mean `vulnerability`"),
            "{msg}"
        );
        assert!(check_value("threat.type", "Spyware").is_none());
        assert!(check_value("threat.type", "something-new").is_none());
        let (certain, _) = check_value("network.direction", "inbound").expect("refused");
        assert!(certain);
    }
}
