//! The firewall's IP-tag table and what the User-ID API does to it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use riposte_firewall::edl::IpEntry;
use riposte_firewall::xmlapi::xml::{self, escape, Element};

/// Longest tag timeout the firewall takes.
pub const MAX_TIMEOUT: u64 = 2_592_000;
/// Largest page `show object registered-ip` answers.
pub const MAX_PAGE: usize = 500;

/// One tag on one address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagInfo {
    /// The timeout registered with it, seconds (0 = never).
    pub timeout: u64,
    pub persistent: bool,
    registered: Instant,
}

impl TagInfo {
    fn expired(&self, now: Instant) -> bool {
        self.timeout > 0 && now.duration_since(self.registered) >= Duration::from_secs(self.timeout)
    }
}

/// The table: address → tag → info. Addresses are kept as the firewall
/// prints them (canonical form).
#[derive(Debug, Default)]
pub struct Table {
    pub entries: BTreeMap<String, BTreeMap<String, TagInfo>>,
}

/// What one uid-message did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct UidResult {
    pub registered: usize,
    pub unregistered: usize,
    /// (section, ip, message) for every entry not simply applied.
    pub messages: Vec<(&'static str, String, String)>,
}

impl Table {
    pub fn purge(&mut self, now: Instant) {
        self.entries.retain(|_, tags| {
            tags.retain(|_, t| !t.expired(now));
            !tags.is_empty()
        });
    }

    /// A reboot: every tag not registered as persistent is forgotten.
    pub fn reboot(&mut self) {
        self.entries.retain(|_, tags| {
            tags.retain(|_, t| t.persistent);
            !tags.is_empty()
        });
    }

    /// Applies a uid-message, or says why it is malformed.
    pub fn apply(&mut self, cmd: &str, now: Instant) -> Result<UidResult, String> {
        self.purge(now);
        let doc = xml::parse(cmd).map_err(|e| format!("Malformed uid-message: {e}"))?;
        if doc.name != "uid-message" {
            return Err(format!("Malformed uid-message: root is <{}>", doc.name));
        }
        match doc.child("version").map(|v| v.text.as_str()) {
            Some("2.0") | Some("1.0") => {}
            other => return Err(format!("unsupported uid-message version {other:?}")),
        }
        if doc.child("type").map(|t| t.text.as_str()) != Some("update") {
            return Err("uid-message type must be update".into());
        }
        let payload = doc.child("payload").ok_or("uid-message without payload")?;
        let mut result = UidResult::default();
        for section in &payload.children {
            match section.name.as_str() {
                "register" => {
                    for entry in section.children_named("entry") {
                        self.register(entry, now, &mut result);
                    }
                }
                "unregister" => {
                    for entry in section.children_named("entry") {
                        self.unregister(entry, &mut result);
                    }
                }
                // Login/logout and groups exist too; the stand-in
                // accepts and ignores them, as Riposte never sends them.
                _ => {}
            }
        }
        Ok(result)
    }

    fn members(entry: &Element) -> Vec<&Element> {
        entry
            .child("tag")
            .map(|t| t.children_named("member").collect())
            .unwrap_or_default()
    }

    fn parse_ip(entry: &Element, section: &'static str, result: &mut UidResult) -> Option<String> {
        let raw = entry.attr("ip").unwrap_or("");
        match raw.parse::<IpEntry>() {
            Ok(ip) => Some(ip.to_string()),
            Err(_) => {
                result.messages.push((
                    section,
                    raw.to_string(),
                    format!("Invalid IP address {raw}"),
                ));
                None
            }
        }
    }

    fn register(&mut self, entry: &Element, now: Instant, result: &mut UidResult) {
        let Some(ip) = Self::parse_ip(entry, "register", result) else {
            return;
        };
        let persistent = entry.attr("persistent") == Some("1");
        for member in Self::members(entry) {
            let tag = member.text.clone();
            if tag.is_empty() || tag.chars().count() > 127 {
                result
                    .messages
                    .push(("register", ip.clone(), format!("Invalid tag name {tag}")));
                continue;
            }
            let timeout = match member.attr("timeout").map(str::parse::<u64>) {
                None => 0,
                Some(Ok(t)) if t <= MAX_TIMEOUT => t,
                Some(_) => {
                    result.messages.push((
                        "register",
                        ip.clone(),
                        format!("Invalid timeout for tag {tag}"),
                    ));
                    continue;
                }
            };
            let tags = self.entries.entry(ip.clone()).or_default();
            if tags.contains_key(&tag) {
                // The real firewall keeps the first registration (and its
                // timeout) and says so.
                result.messages.push((
                    "register",
                    ip.clone(),
                    format!("tag {tag} already exists, ignore"),
                ));
                continue;
            }
            tags.insert(
                tag,
                TagInfo {
                    timeout,
                    persistent,
                    registered: now,
                },
            );
            result.registered += 1;
        }
    }

    fn unregister(&mut self, entry: &Element, result: &mut UidResult) {
        let Some(ip) = Self::parse_ip(entry, "unregister", result) else {
            return;
        };
        for member in Self::members(entry) {
            let tag = &member.text;
            let removed = self
                .entries
                .get_mut(&ip)
                .and_then(|tags| tags.remove(tag))
                .is_some();
            if removed {
                result.unregistered += 1;
            } else {
                result.messages.push((
                    "unregister",
                    ip.clone(),
                    format!("tag {tag} does not exist, ignore unreg"),
                ));
            }
        }
        if self.entries.get(&ip).is_some_and(|t| t.is_empty()) {
            self.entries.remove(&ip);
        }
    }

    /// Answers `show object registered-ip` (paged, filtered by tag or ip).
    pub fn show(&mut self, cmd: &Element, now: Instant) -> Result<String, String> {
        self.purge(now);
        let q = cmd
            .path(&["object", "registered-ip"])
            .ok_or("unknown op command")?;
        let limit = match q.child("limit") {
            Some(l) => l
                .text
                .parse::<usize>()
                .map_err(|_| "limit is not a number")?,
            None => MAX_PAGE,
        };
        if limit == 0 || limit > MAX_PAGE {
            return Err(format!("limit must be 1..{MAX_PAGE}"));
        }
        let start = match q.child("start-point") {
            Some(s) => s
                .text
                .parse::<usize>()
                .map_err(|_| "start-point is not a number")?,
            None => 1,
        };
        if start == 0 {
            return Err("start-point counts from 1".into());
        }
        let tag = q
            .path(&["tag", "entry"])
            .and_then(|e| e.attr("name"))
            .map(str::to_string);
        let ip = q.child("ip").map(|i| i.text.clone());
        let matching: Vec<(&String, &BTreeMap<String, TagInfo>)> = self
            .entries
            .iter()
            .filter(|(addr, tags)| {
                ip.as_ref().is_none_or(|i| *addr == i)
                    && tag.as_ref().is_none_or(|t| tags.contains_key(t))
            })
            .collect();
        let mut out = String::from("<response status=\"success\"><result>");
        for (addr, tags) in matching.iter().skip(start - 1).take(limit) {
            let persistent = tags.values().any(|t| t.persistent);
            let _ = write!(
                out,
                "<entry ip=\"{addr}\" from_agent=\"0\" persistent=\"{}\"><tag>",
                u8::from(persistent)
            );
            for name in tags.keys() {
                let _ = write!(out, "<member>{}</member>", escape(name));
            }
            out.push_str("</tag></entry>");
        }
        let _ = write!(out, "<count>{}</count></result></response>", matching.len());
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_twice_and_unregister_missing_are_reported() {
        let mut t = Table::default();
        let now = Instant::now();
        let msg = r#"<uid-message><version>2.0</version><type>update</type><payload><register><entry ip="192.0.2.1" persistent="0"><tag><member timeout="60">a</member></tag></entry></register></payload></uid-message>"#;
        assert_eq!(t.apply(msg, now).map(|r| r.registered), Ok(1));
        let again = t.apply(msg, now).expect("applies");
        assert_eq!(again.messages[0].2, "tag a already exists, ignore");
        t.reboot();
        assert!(t.entries.is_empty());
        t.purge(now + Duration::from_secs(61));
    }
}
