//! Writing one THREAT or TRAFFIC line, column by column, in the PAN-OS
//! 10.1–11.1 order (see `shared/reference/panos-threat-log-fields.md`; the
//! TRAFFIC order is the 11.1 docs list, checked against real 11.1 lines).
//!
//! Everything is appended to a reused byte buffer: no `format!`, no
//! per-field allocation. Each field writer appends the value and a comma;
//! the line's last comma is removed at the end.

use std::net::Ipv4Addr;

use super::catalog::App;
use super::clock::Stamps;
use super::pods::Pod;
use super::world::Firewall;
use super::{Header, PanosVersion, ThreatSubtype, TrafficSubtype};

/// What TRAFFIC and THREAT lines share: the session and its endpoints.
#[derive(Debug)]
pub(crate) struct Session<'a> {
    pub fw: &'a Firewall,
    pub generated: i64,
    pub received: i64,
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub nat_src: Ipv4Addr,
    pub nat_dst: Ipv4Addr,
    pub sport: u16,
    pub dport: u16,
    pub nat_sport: u16,
    pub nat_dport: u16,
    pub rule: &'static str,
    pub rule_uuid: &'a str,
    pub app: &'static App,
    pub proto: &'static str,
    pub from_zone: &'static str,
    pub to_zone: &'static str,
    pub in_if: &'static str,
    pub out_if: &'static str,
    pub session_id: u64,
    pub repeat: u32,
    pub flags: &'static str,
    pub action: &'static str,
    pub src_loc: &'static str,
    pub dst_loc: &'static str,
    pub seqno: u64,
    /// The pod the firewall attributes the session to (CN-Series columns).
    pub pod: Option<&'a Pod>,
    pub cluster: &'a str,
}

/// The THREAT-only columns.
#[derive(Debug)]
pub(crate) struct Threat<'a> {
    pub subtype: ThreatSubtype,
    /// URL/Filename, unquoted; quoting is done here.
    pub misc: &'a str,
    pub name: &'a str,
    pub id: u64,
    /// The Category column: URL category, `any`, or a WildFire verdict.
    pub category: &'a str,
    pub severity: &'static str,
    pub direction: &'static str,
    pub content_type: &'static str,
    pub file_digest: &'a str,
    pub cloud: &'static str,
    pub url_index: u32,
    pub user_agent: &'static str,
    pub file_type: &'static str,
    pub referer: &'static str,
    pub email: Option<&'static (&'static str, &'static str, &'static str)>,
    pub report_id: u64,
    pub http_method: &'static str,
    /// The Threat Category column (command-and-control, brute-force, …).
    pub threat_category: &'static str,
    pub url_categories: &'static str,
}

/// The TRAFFIC-only columns.
#[derive(Debug)]
pub(crate) struct Traffic {
    pub subtype: TrafficSubtype,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub packets_sent: u64,
    pub packets_received: u64,
    pub start: i64,
    pub elapsed: u64,
    pub category: &'static str,
    pub end_reason: &'static str,
    pub action_source: &'static str,
}

const COMMAS: &[u8; 128] = &[b','; 128];

#[inline]
fn empty(buf: &mut Vec<u8>, n: usize) {
    buf.extend_from_slice(&COMMAS[..n.min(COMMAS.len())]);
}

#[inline]
fn s(buf: &mut Vec<u8>, v: &str) {
    buf.extend_from_slice(v.as_bytes());
    buf.push(b',');
}

#[inline]
fn n(buf: &mut Vec<u8>, v: u64) {
    push_u64(buf, v);
    buf.push(b',');
}

#[inline]
fn ip(buf: &mut Vec<u8>, v: Ipv4Addr) {
    push_ip(buf, v);
    buf.push(b',');
}

/// A field that PAN-OS quotes only when it has to (a comma or a quote).
#[inline]
fn f(buf: &mut Vec<u8>, v: &str) {
    if v.bytes().any(|b| b == b',' || b == b'"') {
        push_quoted(buf, v);
    } else {
        buf.extend_from_slice(v.as_bytes());
    }
    buf.push(b',');
}

/// A field that PAN-OS always quotes (URL/Filename).
#[inline]
fn q(buf: &mut Vec<u8>, v: &str) {
    push_quoted(buf, v);
    buf.push(b',');
}

fn time(buf: &mut Vec<u8>, st: &mut Stamps, ms: i64) {
    st.panos(buf, ms);
    buf.push(b',');
}

/// Two decimal digits, zero padded.
#[inline]
pub(crate) fn push_2(buf: &mut Vec<u8>, v: u32) {
    buf.push(b'0' + (v / 10 % 10) as u8);
    buf.push(b'0' + (v % 10) as u8);
}

/// "00" to "99", for writing two digits per division.
const PAIRS: [u8; 200] = {
    let mut t = [0u8; 200];
    let mut i = 0;
    while i < 100 {
        t[2 * i] = b'0' + (i / 10) as u8;
        t[2 * i + 1] = b'0' + (i % 10) as u8;
        i += 1;
    }
    t
};

pub(crate) fn push_u64(buf: &mut Vec<u8>, mut v: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    while v >= 100 {
        let d = (v % 100) as usize * 2;
        v /= 100;
        i -= 2;
        tmp[i] = PAIRS[d];
        tmp[i + 1] = PAIRS[d + 1];
    }
    if v >= 10 {
        let d = v as usize * 2;
        i -= 2;
        tmp[i] = PAIRS[d];
        tmp[i + 1] = PAIRS[d + 1];
    } else {
        i -= 1;
        tmp[i] = b'0' + v as u8;
    }
    buf.extend_from_slice(&tmp[i..]);
}

pub(crate) fn push_ip(buf: &mut Vec<u8>, v: Ipv4Addr) {
    let [a, b, c, d] = v.octets();
    push_u64(buf, u64::from(a));
    buf.push(b'.');
    push_u64(buf, u64::from(b));
    buf.push(b'.');
    push_u64(buf, u64::from(c));
    buf.push(b'.');
    push_u64(buf, u64::from(d));
}

/// `"…"` with inner quotes doubled, as PAN-OS writes CSV.
pub(crate) fn push_quoted(buf: &mut Vec<u8>, v: &str) {
    buf.push(b'"');
    if !v.as_bytes().contains(&b'"') {
        buf.extend_from_slice(v.as_bytes());
        buf.push(b'"');
        return;
    }
    for part in v.split('"').enumerate() {
        if part.0 > 0 {
            buf.extend_from_slice(b"\"\"");
        }
        buf.extend_from_slice(part.1.as_bytes());
    }
    buf.push(b'"');
}

/// The syslog header, if any, ending with the space before the CSV.
pub(crate) fn push_header(
    buf: &mut Vec<u8>,
    st: &mut Stamps,
    header: Header,
    pri: u8,
    ms: i64,
    host: &str,
) {
    match header {
        Header::None => {}
        Header::Bsd => {
            buf.push(b'<');
            push_u64(buf, u64::from(pri));
            buf.push(b'>');
            st.bsd(buf, ms);
            buf.push(b' ');
            buf.extend_from_slice(host.as_bytes());
            buf.push(b' ');
        }
        Header::Rfc5424 => {
            buf.push(b'<');
            push_u64(buf, u64::from(pri));
            buf.extend_from_slice(b">1 ");
            st.iso_millis(buf, ms);
            buf.push(b' ');
            buf.extend_from_slice(host.as_bytes());
            buf.extend_from_slice(b" - - - - ");
        }
    }
}

/// Columns 0–30, the same in both log types.
fn head(buf: &mut Vec<u8>, st: &mut Stamps, x: &Session<'_>, log_type: &str, subtype: &str) {
    s(buf, "1"); // 0 FUTURE_USE
    time(buf, st, x.received); // 1 Receive Time
    s(buf, &x.fw.serial); // 2 Serial Number
    s(buf, log_type); // 3 Type
    s(buf, subtype); // 4 Threat/Content Type
    s(buf, x.fw.version.config_version()); // 5 FUTURE_USE (config version)
    time(buf, st, x.generated); // 6 Generated Time
    ip(buf, x.src); // 7
    ip(buf, x.dst); // 8
    ip(buf, x.nat_src); // 9
    ip(buf, x.nat_dst); // 10
    f(buf, x.rule); // 11 Rule Name
    empty(buf, 2); // 12 Source User, 13 Destination User
    s(buf, x.app.name); // 14
    s(buf, "vsys1"); // 15
    s(buf, x.from_zone); // 16
    s(buf, x.to_zone); // 17
    s(buf, x.in_if); // 18
    s(buf, x.out_if); // 19
    s(buf, super::catalog::LOG_PROFILE); // 20 Log Action
    time(buf, st, x.received); // 21 FUTURE_USE (time logged)
    n(buf, x.session_id); // 22
    n(buf, u64::from(x.repeat)); // 23
    n(buf, u64::from(x.sport)); // 24
    n(buf, u64::from(x.dport)); // 25
    n(buf, u64::from(x.nat_sport)); // 26
    n(buf, u64::from(x.nat_dport)); // 27
    s(buf, x.flags); // 28
    s(buf, x.proto); // 29
    s(buf, x.action); // 30
}

/// Container ID, POD Namespace, POD Name: filled for pod traffic.
fn pod_columns(buf: &mut Vec<u8>, pod: Option<&Pod>) {
    match pod {
        Some(p) => {
            s(buf, &p.container_id);
            s(buf, &p.namespace);
            s(buf, &p.name);
        }
        None => empty(buf, 3),
    }
}

/// Application Subcategory … Application Sanctioned State.
fn app_columns(buf: &mut Vec<u8>, app: &App) {
    s(buf, app.subcategory);
    s(buf, app.category);
    s(buf, app.technology);
    s(buf, app.risk);
    f(buf, app.characteristics);
    s(buf, app.container);
    s(buf, app.tunneled);
    s(buf, app.saas);
    s(buf, "no"); // sanctioned state
}

fn finish(buf: &mut Vec<u8>) {
    if buf.last() == Some(&b',') {
        buf.pop();
    }
}

/// Appends a THREAT line (no header): 120, 121 or 123 columns.
pub(crate) fn threat(buf: &mut Vec<u8>, st: &mut Stamps, x: &Session<'_>, t: &Threat<'_>) {
    head(buf, st, x, "THREAT", t.subtype.as_str());
    q(buf, t.misc); // 31 URL/Filename
                    // 32 Threat ID: Name(id); names never hold a comma or a quote.
    buf.extend_from_slice(t.name.as_bytes());
    buf.push(b'(');
    push_u64(buf, t.id);
    buf.extend_from_slice(b"),");
    f(buf, t.category); // 33
    s(buf, t.severity); // 34
    s(buf, t.direction); // 35
    n(buf, x.seqno); // 36 Sequence Number
    s(buf, "0x8000000000000000"); // 37 Action Flags
    f(buf, x.src_loc); // 38
    f(buf, x.dst_loc); // 39
    empty(buf, 1); // 40 FUTURE_USE
    s(buf, t.content_type); // 41
    s(buf, "0"); // 42 PCAP_ID
    s(buf, t.file_digest); // 43
    s(buf, t.cloud); // 44
    n(buf, u64::from(t.url_index)); // 45
    f(buf, t.user_agent); // 46
    s(buf, t.file_type); // 47
    empty(buf, 1); // 48 X-Forwarded-For
    f(buf, t.referer); // 49
    match t.email {
        // 50 Sender, 51 Subject, 52 Recipient
        Some((from, subject, to)) => {
            f(buf, from);
            f(buf, subject);
            f(buf, to);
        }
        None => empty(buf, 3),
    }
    n(buf, t.report_id); // 53 Report ID
    buf.extend_from_slice(b"0,0,0,0,"); // 54-57 Device Group Hierarchy
    empty(buf, 1); // 58 Virtual System Name
    s(buf, &x.fw.name); // 59 Device Name
    empty(buf, 3); // 60 FUTURE_USE, 61-62 VM UUIDs
    s(buf, t.http_method); // 63
    buf.extend_from_slice(b"0,,0,,N/A,"); // 64 Tunnel ID, 65 Monitor Tag, 66 Parent Session, 67 Parent Start, 68 Tunnel Type
    s(buf, t.threat_category); // 69 Threat Category
    s(buf, &x.fw.content_version); // 70 Content Version
    buf.extend_from_slice(b"0x0,0,4294967295,,"); // 71 FUTURE_USE, 72 SCTP, 73 Payload Protocol ID, 74 HTTP Headers
    if t.url_categories.is_empty() {
        empty(buf, 1);
    } else {
        q(buf, t.url_categories); // 75 URL Category List
    }
    s(buf, x.rule_uuid); // 76 Rule UUID
    s(buf, "0"); // 77 HTTP/2 Connection
    empty(buf, 18); // 78 DUG, 79 XFF Address, 80-95 device columns
    pod_columns(buf, x.pod); // 96-98
    empty(buf, 7); // 99-105 EDLs, Host ID, Serial Number, Domain EDL, DAGs
    s(buf, "0"); // 106 Partial Hash
    st.iso_millis(buf, x.generated); // 107 High Resolution Timestamp
    buf.push(b',');
    empty(buf, 3); // 108 Reason, 109 Justification, 110 A Slice Service Type
    app_columns(buf, x.app); // 111-119
    match x.fw.version {
        PanosVersion::V10_1 => {}
        PanosVersion::V11_0 => empty(buf, 1), // 120 Cloud Report ID
        PanosVersion::V11_1 => {
            empty(buf, 1); // 120 Cloud Report ID
            s(buf, x.cluster); // 121 Cluster Name
            s(buf, "NonProxyTraffic"); // 122 Flow Type
        }
    }
    finish(buf);
}

/// Appends a TRAFFIC line (no header): 114, 115 or 117 columns.
pub(crate) fn traffic(buf: &mut Vec<u8>, st: &mut Stamps, x: &Session<'_>, t: &Traffic) {
    head(buf, st, x, "TRAFFIC", t.subtype.as_str());
    n(buf, t.bytes_sent + t.bytes_received); // 31 Bytes
    n(buf, t.bytes_sent); // 32
    n(buf, t.bytes_received); // 33
    n(buf, t.packets_sent + t.packets_received); // 34 Packets
    time(buf, st, t.start); // 35 Start Time
    n(buf, t.elapsed); // 36 Elapsed Time
    s(buf, t.category); // 37 Category
    empty(buf, 1); // 38 FUTURE_USE
    n(buf, x.seqno); // 39 Sequence Number
    s(buf, "0x8000000000000000"); // 40 Action Flags
    f(buf, x.src_loc); // 41
    f(buf, x.dst_loc); // 42
    empty(buf, 1); // 43 FUTURE_USE
    n(buf, t.packets_sent); // 44
    n(buf, t.packets_received); // 45
    s(buf, t.end_reason); // 46 Session End Reason
    buf.extend_from_slice(b"0,0,0,0,"); // 47-50 Device Group Hierarchy
    empty(buf, 1); // 51 Virtual System Name
    s(buf, &x.fw.name); // 52 Device Name
    s(buf, t.action_source); // 53 Action Source
    buf.extend_from_slice(b",,0,,0,,N/A,0,0,0,0,"); // 54-55 VM UUIDs, 56 Tunnel ID, 57 Monitor Tag, 58 Parent Session, 59 Parent Start, 60 Tunnel Type, 61-64 SCTP
    s(buf, x.rule_uuid); // 65 Rule UUID
    buf.extend_from_slice(b"0,0,"); // 66 HTTP/2 Connection, 67 App Flap Count
    empty(buf, 24); // 68 Policy ID … 91 Destination MAC Address
    pod_columns(buf, x.pod); // 92-94
    empty(buf, 7); // 95-101 EDLs, Host ID, Serial Number, DAGs, Session Owner
    st.iso_millis(buf, x.generated); // 102 High Resolution Timestamp
    buf.push(b',');
    empty(buf, 2); // 103 A Slice Service Type, 104 A Slice Differentiator
    app_columns(buf, x.app); // 105-113
    match x.fw.version {
        PanosVersion::V10_1 => {}
        PanosVersion::V11_0 => s(buf, "0"), // 114 Offloaded
        PanosVersion::V11_1 => {
            s(buf, "0"); // 114 Offloaded
            s(buf, "NonProxyTraffic"); // 115 Flow Type
            s(buf, x.cluster); // 116 Cluster Name
        }
    }
    finish(buf);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quoted(v: &str) -> String {
        let mut buf = Vec::new();
        push_quoted(&mut buf, v);
        String::from_utf8(buf).expect("ASCII")
    }

    #[test]
    fn quoting_doubles_inner_quotes() {
        assert_eq!(quoted(""), "\"\"");
        assert_eq!(quoted("a,b"), "\"a,b\"");
        assert_eq!(quoted("say \"hi\""), "\"say \"\"hi\"\"\"");
    }

    #[test]
    fn numbers_and_addresses() {
        let mut buf = Vec::new();
        push_u64(&mut buf, 0);
        buf.push(b' ');
        push_u64(&mut buf, u64::MAX);
        buf.push(b' ');
        for v in [9, 10, 99, 100, 101, 12345] {
            push_u64(&mut buf, v);
            buf.push(b' ');
        }
        push_ip(&mut buf, Ipv4Addr::new(10, 244, 0, 255));
        assert_eq!(
            buf,
            b"0 18446744073709551615 9 10 99 100 101 12345 10.244.0.255"
        );
    }
}
