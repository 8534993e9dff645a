//! Reading the XML API's answers.
//!
//! ```xml
//! <response status="success"><result>…</result></response>
//! <response status="error" code="403"><result><msg>Invalid Credential</msg></result></response>
//! <response status="error"><msg><line><uid-response><version>2.0</version><payload>
//!   <register><entry ip="192.0.2.1" message="tag riposte-c2 already exists, ignore"/></register>
//! </payload></uid-response></line></msg></response>
//! ```
//!
//! A User-ID answer may refuse some entries and not others; entries whose
//! message says the desired state already holds ("already exists, ignore",
//! "does not exist, ignore unreg") are successes.

use super::error::XmlApiError;
use super::xml::{self, Element};

/// Per-entry messages meaning "nothing to do, the state already holds".
const IDEMPOTENT: [&str; 2] = ["already exists, ignore", "does not exist, ignore unreg"];

/// An entry the firewall refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryError {
    pub ip: String,
    /// `true` in the `register` section, `false` in `unregister`.
    pub register: bool,
    pub message: String,
}

/// What a User-ID answer said.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UidAnswer {
    /// Entries answered "already exists" / "does not exist" (successes).
    pub idempotent: usize,
    /// Entries refused for any other reason.
    pub refused: Vec<EntryError>,
}

fn snippet(body: &str) -> String {
    body.trim_start().chars().take(80).collect()
}

/// Parses the body into the `<response>` element, or says why it is not one.
pub fn parse_response(body: &str) -> Result<Element, XmlApiError> {
    let root = xml::parse(body).map_err(|reason| XmlApiError::NotXml {
        reason,
        snippet: snippet(body),
    })?;
    if root.name != "response" {
        return Err(XmlApiError::NotXml {
            reason: format!("root element is <{}>, not <response>", root.name),
            snippet: snippet(body),
        });
    }
    Ok(root)
}

/// The error a `status="error"` response stands for, for answers that are
/// not about individual entries.
fn api_error(root: &Element, http_status: u16) -> XmlApiError {
    let code = root.attr("code").and_then(|c| c.trim().parse::<u32>().ok());
    let mut message = root
        .child("msg")
        .or_else(|| root.path(&["result", "msg"]))
        .map(Element::all_text)
        .unwrap_or_default();
    if message.is_empty() {
        message = root.all_text();
    }
    if message.is_empty() {
        message = "no message".into();
    }
    // 403 answers (bad or expired key) and codes 16 (unauthorized) mean the
    // key is not accepted, whatever the HTTP status says.
    if http_status == 403 || http_status == 401 || matches!(code, Some(403 | 16)) {
        return XmlApiError::Auth {
            status: http_status,
            message,
        };
    }
    XmlApiError::Api { code, message }
}

/// Checks a plain (non User-ID) answer: `Ok(root)` on success.
pub fn check(body: &str, http_status: u16) -> Result<Element, XmlApiError> {
    let root = parse_response(body)?;
    match root.attr("status") {
        Some("success") => Ok(root),
        _ => Err(api_error(&root, http_status)),
    }
}

/// Reads the answer to a `type=user-id` request.
pub fn parse_uid(body: &str, http_status: u16) -> Result<UidAnswer, XmlApiError> {
    let root = parse_response(body)?;
    let status = root.attr("status").unwrap_or("");
    // The per-entry report sits in msg/line/uid-response (errors) or
    // result/uid-response (some versions report successes that way too).
    let report = root
        .path(&["msg", "line", "uid-response", "payload"])
        .or_else(|| root.path(&["result", "uid-response", "payload"]))
        .or_else(|| root.path(&["msg", "uid-response", "payload"]));
    let mut answer = UidAnswer::default();
    let mut entries_seen = 0;
    if let Some(payload) = report {
        for (section, register) in [("register", true), ("unregister", false)] {
            for sec in payload.children_named(section) {
                for entry in sec.children_named("entry") {
                    let message = entry.attr("message").unwrap_or("").trim();
                    if message.is_empty() {
                        continue;
                    }
                    entries_seen += 1;
                    if IDEMPOTENT.iter().any(|m| message.ends_with(m)) {
                        answer.idempotent += 1;
                    } else {
                        answer.refused.push(EntryError {
                            ip: entry.attr("ip").unwrap_or("").to_string(),
                            register,
                            message: message.to_string(),
                        });
                    }
                }
            }
        }
    }
    match status {
        "success" => Ok(answer),
        "error" if entries_seen > 0 => Ok(answer),
        _ => Err(api_error(&root, http_status)),
    }
}

/// One address the firewall reports with its tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredIp {
    pub ip: String,
    pub persistent: bool,
    pub tags: Vec<String>,
}

/// A page of `show object registered-ip`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegisteredPage {
    pub entries: Vec<RegisteredIp>,
    /// The total the firewall reports (`<count>`), when it does.
    pub count: Option<usize>,
}

pub fn parse_registered(body: &str, http_status: u16) -> Result<RegisteredPage, XmlApiError> {
    let root = check(body, http_status)?;
    let Some(result) = root.child("result") else {
        return Ok(RegisteredPage::default());
    };
    let mut page = RegisteredPage {
        count: result.child("count").and_then(|c| c.text.parse().ok()),
        ..RegisteredPage::default()
    };
    for entry in result.children_named("entry") {
        let Some(ip) = entry.attr("ip") else {
            continue;
        };
        page.entries.push(RegisteredIp {
            ip: ip.to_string(),
            persistent: entry.attr("persistent") == Some("1"),
            tags: entry
                .child("tag")
                .map(|t| t.children_named("member").map(|m| m.text.clone()).collect())
                .unwrap_or_default(),
        });
    }
    Ok(page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_and_idempotent_entries_are_successes() {
        let ok = r#"<response status="success"><result><uid-response><version>2.0</version><payload><register/></payload></uid-response></result></response>"#;
        assert_eq!(parse_uid(ok, 200), Ok(UidAnswer::default()));
        let mixed = r#"<response status="error"><msg><line><uid-response><version>2.0</version><payload>
            <register><entry ip="192.0.2.1" message="tag riposte-c2 already exists, ignore"/>
            <entry ip="bad" message="Invalid IP address"/></register>
            <unregister><entry ip="192.0.2.9" message="tag x does not exist, ignore unreg"/></unregister>
            </payload></uid-response></line></msg></response>"#;
        let a = parse_uid(mixed, 200).expect("entry-level answer");
        assert_eq!(a.idempotent, 2);
        assert_eq!(a.refused.len(), 1);
        assert_eq!(a.refused[0].ip, "bad");
        assert!(a.refused[0].register);
    }

    #[test]
    fn key_errors_html_and_codes_are_told_apart() {
        let forbidden = r#"<response status = 'error' code = '403'><result><msg>Invalid Credential</msg></result></response>"#;
        let e = parse_uid(forbidden, 403).expect_err("auth");
        assert!(matches!(e, XmlApiError::Auth { .. }), "{e:?}");
        assert!(!e.is_transient());
        let html = "<html><head><title>Login</title></head><body><form></form></body></html>";
        assert!(matches!(
            parse_uid(html, 200),
            Err(XmlApiError::NotXml { .. })
        ));
        let junk = "Service Unavailable";
        assert!(matches!(
            parse_uid(junk, 200),
            Err(XmlApiError::NotXml { .. })
        ));
        let busy = r#"<response status="error" code="22"><msg><line>Session timed out</line></msg></response>"#;
        let e = parse_uid(busy, 200).expect_err("code 22");
        assert_eq!(
            e,
            XmlApiError::Api {
                code: Some(22),
                message: "Session timed out".into()
            }
        );
        assert!(e.is_transient());
        let bad = r#"<response status="error" code="18"><msg>Malformed command</msg></response>"#;
        assert!(!parse_uid(bad, 200).expect_err("18").is_transient());
    }

    #[test]
    fn registered_ip_pages_are_read() {
        let page = r#"<response status="success"><result>
            <entry ip="192.0.2.1" from_agent="0" persistent="1"><tag><member>riposte-c2</member><member>b</member></tag></entry>
            <entry ip="192.0.2.2" from_agent="0" persistent="0"><tag><member>riposte-c2</member></tag></entry>
            <count>2</count></result></response>"#;
        let p = parse_registered(page, 200).expect("page");
        assert_eq!(p.count, Some(2));
        assert_eq!(p.entries.len(), 2);
        assert_eq!(p.entries[0].tags, vec!["riposte-c2", "b"]);
        assert!(p.entries[0].persistent && !p.entries[1].persistent);
        let empty = r#"<response status="success"><result><count>0</count></result></response>"#;
        assert!(parse_registered(empty, 200)
            .expect("empty")
            .entries
            .is_empty());
    }
}
