//! `uid-message` documents: registering and unregistering IP tags, many
//! entries per message, split so that no message outgrows the request
//! size the firewall takes.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::error::XmlApiError;
use super::xml::escape;
use crate::edl::IpEntry;

/// Longest tag timeout the firewall takes: 30 days, in seconds.
pub const MAX_TAG_TIMEOUT_SECS: u64 = 2_592_000;
/// Longest tag name PAN-OS takes.
pub const MAX_TAG_LEN: usize = 127;

/// A validated tag name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Tag(String);

impl Tag {
    pub fn new(name: &str) -> Result<Tag, XmlApiError> {
        if name.is_empty() {
            return Err(XmlApiError::invalid("tag", "empty tag name"));
        }
        if name.chars().count() > MAX_TAG_LEN {
            return Err(XmlApiError::invalid(
                "tag",
                format!("`{name}` is longer than {MAX_TAG_LEN} characters"),
            ));
        }
        if name.trim() != name {
            return Err(XmlApiError::invalid(
                "tag",
                format!("`{name}` starts or ends with white space"),
            ));
        }
        if let Some(c) = name.chars().find(|c| c.is_control()) {
            return Err(XmlApiError::invalid(
                "tag",
                format!(
                    "control character {} in `{}`",
                    c.escape_default(),
                    name.escape_default()
                ),
            ));
        }
        Ok(Tag(name.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Tag {
    type Error = XmlApiError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Tag::new(&s)
    }
}

impl From<Tag> for String {
    fn from(t: Tag) -> String {
        t.0
    }
}

impl std::fmt::Display for Tag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One change to the firewall's IP-tag table.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum UidOp {
    /// `timeout_secs`: 0 = never expires; at most [`MAX_TAG_TIMEOUT_SECS`].
    Register {
        ip: IpEntry,
        tag: Tag,
        timeout_secs: u32,
        persistent: bool,
    },
    Unregister {
        ip: IpEntry,
        tag: Tag,
    },
}

impl UidOp {
    pub fn register(
        ip: IpEntry,
        tag: Tag,
        timeout_secs: u64,
        persistent: bool,
    ) -> Result<UidOp, XmlApiError> {
        if timeout_secs > MAX_TAG_TIMEOUT_SECS {
            return Err(XmlApiError::invalid(
                "timeout",
                format!("{timeout_secs}s is over the firewall's {MAX_TAG_TIMEOUT_SECS}s (30 days)"),
            ));
        }
        Ok(UidOp::Register {
            ip: ip.canonical(),
            tag,
            timeout_secs: timeout_secs as u32,
            persistent,
        })
    }

    pub fn ip(&self) -> &IpEntry {
        match self {
            UidOp::Register { ip, .. } | UidOp::Unregister { ip, .. } => ip,
        }
    }

    pub fn tag(&self) -> &Tag {
        match self {
            UidOp::Register { tag, .. } | UidOp::Unregister { tag, .. } => tag,
        }
    }

    pub fn is_register(&self) -> bool {
        matches!(self, UidOp::Register { .. })
    }

    fn write_entry(&self, out: &mut String) {
        match self {
            UidOp::Register {
                ip,
                tag,
                timeout_secs,
                persistent,
            } => {
                // The firewall sees one spelling per host, whatever built the op.
                let ip = ip.canonical();
                let _ = write!(
                    out,
                    "<entry ip=\"{ip}\" persistent=\"{}\"><tag><member timeout=\"{timeout_secs}\">{}</member></tag></entry>",
                    u8::from(*persistent),
                    escape(tag.as_str())
                );
            }
            UidOp::Unregister { ip, tag } => {
                let ip = ip.canonical();
                let _ = write!(
                    out,
                    "<entry ip=\"{ip}\"><tag><member>{}</member></tag></entry>",
                    escape(tag.as_str())
                );
            }
        }
    }
}

/// How large one request may grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Entries per message.
    pub max_entries: usize,
    /// Bytes of the form-encoded `cmd` field per request. The firewall takes
    /// POST bodies up to 5 MB; GET (never used here) only up to 2 KB.
    pub max_bytes: usize,
}

/// The firewall's POST limit, less room for the other form fields.
pub const MAX_POST_BYTES: usize = 5 * 1024 * 1024 - 4096;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_entries: 1000,
            max_bytes: MAX_POST_BYTES,
        }
    }
}

/// One message and the indices (into the ops given) it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub xml: String,
    pub ops: Vec<usize>,
}

const HEAD: &str = "<uid-message><version>2.0</version><type>update</type><payload>";
const TAIL: &str = "</payload></uid-message>";

/// Bytes `s` takes once `application/x-www-form-urlencoded`.
pub fn form_encoded_len(s: &str) -> usize {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' | b' ' => 1,
            _ => 3,
        })
        .sum()
}

/// Splits `ops` into messages within `limits`, registrations and
/// unregistrations of one message in their own sections. The caller orders
/// the ops; one key (ip, tag) should appear once (the batcher makes sure):
/// within a message the firewall applies the sections in its own order.
pub fn build_messages(ops: &[UidOp], limits: Limits) -> Vec<Message> {
    let fixed = form_encoded_len(HEAD)
        + form_encoded_len(TAIL)
        + form_encoded_len("<register></register><unregister></unregister>");
    let mut out = Vec::new();
    let mut reg = String::new();
    let mut unreg = String::new();
    let mut idx = Vec::new();
    let mut size = fixed;
    let mut entry = String::new();
    let flush =
        |reg: &mut String, unreg: &mut String, idx: &mut Vec<usize>, out: &mut Vec<Message>| {
            if idx.is_empty() {
                return;
            }
            let mut xml = String::with_capacity(HEAD.len() + reg.len() + unreg.len() + 64);
            xml.push_str(HEAD);
            if !reg.is_empty() {
                xml.push_str("<register>");
                xml.push_str(reg);
                xml.push_str("</register>");
            }
            if !unreg.is_empty() {
                xml.push_str("<unregister>");
                xml.push_str(unreg);
                xml.push_str("</unregister>");
            }
            xml.push_str(TAIL);
            out.push(Message {
                xml,
                ops: std::mem::take(idx),
            });
            reg.clear();
            unreg.clear();
        };
    for (i, op) in ops.iter().enumerate() {
        entry.clear();
        op.write_entry(&mut entry);
        let len = form_encoded_len(&entry);
        if !idx.is_empty()
            && (idx.len() >= limits.max_entries.max(1) || size + len > limits.max_bytes)
        {
            flush(&mut reg, &mut unreg, &mut idx, &mut out);
            size = fixed;
        }
        if op.is_register() {
            reg.push_str(&entry);
        } else {
            unreg.push_str(&entry);
        }
        idx.push(i);
        size += len;
    }
    flush(&mut reg, &mut unreg, &mut idx, &mut out);
    out
}

/// The op command reading a page of registered IPs (`start_point` counts
/// from 1), optionally only those carrying `tag`.
pub fn registered_ip_command(limit: usize, start_point: usize, tag: Option<&Tag>) -> String {
    let mut cmd = String::from("<show><object><registered-ip>");
    if let Some(tag) = tag {
        let _ = write!(cmd, "<tag><entry name=\"{}\"/></tag>", escape(tag.as_str()));
    } else {
        cmd.push_str("<all/>");
    }
    let _ = write!(
        cmd,
        "<limit>{limit}</limit><start-point>{start_point}</start-point></registered-ip></object></show>"
    );
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xmlapi::xml;

    fn tag(s: &str) -> Tag {
        Tag::new(s).expect("tag")
    }

    fn reg(ip: &str, t: &str, timeout: u64) -> UidOp {
        UidOp::register(ip.parse().expect("ip"), tag(t), timeout, false).expect("op")
    }

    #[test]
    fn one_message_carries_registrations_and_unregistrations_escaped() {
        let ops = vec![
            reg("192.0.2.1", "riposte-c2", 3600),
            UidOp::Unregister {
                ip: "2001:db8::/64".parse().expect("net"),
                tag: tag("a&b<\"c\">"),
            },
            reg("192.0.2.40-192.0.2.50", "x", 0),
        ];
        let msgs = build_messages(&ops, Limits::default());
        assert_eq!(msgs.len(), 1);
        assert_eq!(msgs[0].ops, vec![0, 1, 2]);
        let doc = xml::parse(&msgs[0].xml).expect("well-formed");
        assert_eq!(doc.name, "uid-message");
        assert_eq!(doc.path(&["version"]).map(|v| v.text.as_str()), Some("2.0"));
        let register = doc.path(&["payload", "register"]).expect("register");
        let entries: Vec<_> = register.children_named("entry").collect();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].attr("ip"), Some("192.0.2.1"));
        assert_eq!(entries[0].attr("persistent"), Some("0"));
        let member = entries[0].path(&["tag", "member"]).expect("member");
        assert_eq!(
            (member.attr("timeout"), member.text.as_str()),
            (Some("3600"), "riposte-c2")
        );
        assert_eq!(entries[1].attr("ip"), Some("192.0.2.40-192.0.2.50"));
        let un = doc
            .path(&["payload", "unregister", "entry", "tag", "member"])
            .expect("unreg");
        assert_eq!(un.text, "a&b<\"c\">");
        assert_eq!(un.attr("timeout"), None);
    }

    #[test]
    fn messages_are_split_by_entries_and_by_encoded_size() {
        let ops: Vec<_> = (0..2500)
            .map(|i| reg(&format!("10.0.{}.{}", i / 250, i % 250), "t", 60))
            .collect();
        let by_count = build_messages(
            &ops,
            Limits {
                max_entries: 1000,
                max_bytes: MAX_POST_BYTES,
            },
        );
        assert_eq!(
            by_count.iter().map(|m| m.ops.len()).collect::<Vec<_>>(),
            vec![1000, 1000, 500]
        );
        let small = Limits {
            max_entries: 10_000,
            max_bytes: 20_000,
        };
        let by_size = build_messages(&ops, small);
        assert!(by_size.len() > 1);
        let mut seen = 0;
        for m in &by_size {
            assert!(
                form_encoded_len(&m.xml) <= small.max_bytes,
                "{}",
                form_encoded_len(&m.xml)
            );
            assert_eq!(m.ops.first().copied(), Some(seen));
            seen += m.ops.len();
        }
        assert_eq!(seen, ops.len());
        assert!(build_messages(&[], Limits::default()).is_empty());
    }

    #[test]
    fn bad_tags_and_timeouts_are_refused() {
        assert!(Tag::new("").is_err());
        assert!(Tag::new(&"x".repeat(128)).is_err());
        assert!(Tag::new(&"x".repeat(127)).is_ok());
        assert!(Tag::new("a\nb").is_err());
        assert!(Tag::new(" a").is_err());
        let ip: IpEntry = "192.0.2.1".parse().expect("ip");
        assert!(UidOp::register(ip, tag("t"), MAX_TAG_TIMEOUT_SECS + 1, false).is_err());
        assert!(UidOp::register(ip, tag("t"), MAX_TAG_TIMEOUT_SECS, false).is_ok());
    }

    #[test]
    fn read_back_command_pages_and_filters() {
        let all = registered_ip_command(500, 1, None);
        assert!(xml::parse(&all).is_ok());
        assert!(all.contains("<all/><limit>500</limit><start-point>1</start-point>"));
        let one = registered_ip_command(500, 501, Some(&tag("a\"b")));
        let doc = xml::parse(&one).expect("xml");
        assert_eq!(
            doc.path(&["object", "registered-ip", "tag", "entry"])
                .and_then(|e| e.attr("name")),
            Some("a\"b")
        );
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn any_valid_tag_survives_the_message_escaped(name in "\\PC{1,60}", v6 in any::<u128>()) {
                let Ok(t) = Tag::new(&name) else { return Ok(()); };
                let op = UidOp::register(IpEntry::Addr(std::net::Ipv6Addr::from(v6).into()), t, 60, true)?;
                let msgs = build_messages(&[op], Limits::default());
                let doc = xml::parse(&msgs[0].xml).map_err(TestCaseError::fail)?;
                let member = doc.path(&["payload", "register", "entry", "tag", "member"]);
                prop_assert_eq!(member.map(|m| m.text.as_str()), Some(name.trim()));
            }
        }
    }
}
