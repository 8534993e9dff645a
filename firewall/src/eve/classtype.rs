//! Suricata classtypes on the PAN-OS threat names, so that one trigger
//! (`threat.category = command-and-control`) covers both firewalls.
//!
//! EVE alerts carry the classtype's description (`alert.category`, from
//! `classification.config`); the short name is accepted too. The table is
//! documented in `playbooks/README.md` ("Suricata alerts"); a classtype
//! not in it leaves `threat.type` and `threat.category` unset, and the
//! description stays in `suricata.category` either way.

/// (short name, description, `threat.type`, `threat.category`).
pub const TABLE: &[(&str, &str, &str, Option<&str>)] = &[
    (
        "trojan-activity",
        "A Network Trojan was detected",
        "spyware",
        Some("command-and-control"),
    ),
    (
        "command-and-control",
        "Malware Command and Control Activity Detected",
        "spyware",
        Some("command-and-control"),
    ),
    (
        "domain-c2",
        "Domain Observed Used for C2 Detected",
        "spyware",
        Some("command-and-control"),
    ),
    (
        "targeted-activity",
        "Targeted Malicious Activity was Detected",
        "spyware",
        Some("command-and-control"),
    ),
    (
        "external-ip-check",
        "Device Retrieving External IP Address Detected",
        "spyware",
        Some("post-exploitation"),
    ),
    (
        "coin-mining",
        "Crypto Currency Mining Activity Detected",
        "spyware",
        Some("cryptominer"),
    ),
    (
        "pup-activity",
        "Possibly Unwanted Program Detected",
        "spyware",
        Some("adware"),
    ),
    (
        "credential-theft",
        "Successful Credential Theft Detected",
        "spyware",
        Some("data-theft"),
    ),
    (
        "social-engineering",
        "Possible Social Engineering Attempted",
        "url",
        Some("phishing"),
    ),
    (
        "exploit-kit",
        "Exploit Kit Activity Detected",
        "vulnerability",
        Some("exploit-kit"),
    ),
    (
        "attempted-admin",
        "Attempted Administrator Privilege Gain",
        "vulnerability",
        Some("code-execution"),
    ),
    (
        "successful-admin",
        "Successful Administrator Privilege Gain",
        "vulnerability",
        Some("code-execution"),
    ),
    (
        "attempted-user",
        "Attempted User Privilege Gain",
        "vulnerability",
        Some("code-execution"),
    ),
    (
        "unsuccessful-user",
        "Unsuccessful User Privilege Gain",
        "vulnerability",
        Some("code-execution"),
    ),
    (
        "successful-user",
        "Successful User Privilege Gain",
        "vulnerability",
        Some("code-execution"),
    ),
    (
        "shellcode-detect",
        "Executable code was detected",
        "vulnerability",
        Some("code-execution"),
    ),
    (
        "system-call-detect",
        "A system call was detected",
        "vulnerability",
        Some("code-execution"),
    ),
    (
        "web-application-attack",
        "Web Application Attack",
        "vulnerability",
        Some("code-execution"),
    ),
    (
        "attempted-recon",
        "Attempted Information Leak",
        "vulnerability",
        Some("info-leak"),
    ),
    (
        "successful-recon-limited",
        "Information Leak",
        "vulnerability",
        Some("info-leak"),
    ),
    (
        "successful-recon-largescale",
        "Large Scale Information Leak",
        "vulnerability",
        Some("info-leak"),
    ),
    (
        "web-application-activity",
        "access to a potentially vulnerable web application",
        "vulnerability",
        Some("info-leak"),
    ),
    (
        "default-login-attempt",
        "Attempt to login by a default username and password",
        "vulnerability",
        Some("brute-force"),
    ),
    (
        "suspicious-login",
        "An attempted login using a suspicious username was detected",
        "vulnerability",
        Some("brute-force"),
    ),
    (
        "attempted-dos",
        "Attempted Denial of Service",
        "vulnerability",
        Some("dos"),
    ),
    (
        "successful-dos",
        "Denial of Service",
        "vulnerability",
        Some("dos"),
    ),
    (
        "non-standard-protocol",
        "Detection of a non-standard protocol or event",
        "vulnerability",
        Some("protocol-anomaly"),
    ),
    (
        "protocol-command-decode",
        "Generic Protocol Command Decode",
        "vulnerability",
        Some("protocol-anomaly"),
    ),
    ("misc-attack", "Misc Attack", "vulnerability", None),
    (
        "denial-of-service",
        "Detection of a Denial of Service Attack",
        "flood",
        None,
    ),
    ("network-scan", "Detection of a Network Scan", "scan", None),
    ("rpc-portmap-decode", "Decode of an RPC Query", "scan", None),
    (
        "inappropriate-content",
        "Inappropriate Content was Detected",
        "url",
        None,
    ),
    (
        "policy-violation",
        "Potential Corporate Privacy Violation",
        "data",
        None,
    ),
];

/// `threat.type` and `threat.category` for a classtype (its description
/// or short name, in any letter case).
pub fn map(classtype: &str) -> Option<(&'static str, Option<&'static str>)> {
    let c = classtype.trim();
    TABLE
        .iter()
        .find(|(short, desc, ..)| short.eq_ignore_ascii_case(c) || desc.eq_ignore_ascii_case(c))
        .map(|(_, _, ty, cat)| (*ty, *cat))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_and_short_names_map_alike() {
        assert_eq!(
            map("A Network Trojan was detected"),
            Some(("spyware", Some("command-and-control")))
        );
        assert_eq!(map("trojan-activity"), map("a network trojan WAS detected"));
        assert_eq!(
            map("Attempted Administrator Privilege Gain").map(|m| m.0),
            Some("vulnerability")
        );
        assert_eq!(map("Potentially Bad Traffic"), None);
        assert_eq!(map("Misc activity"), None);
    }
}
