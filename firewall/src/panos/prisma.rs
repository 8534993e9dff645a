//! The compact layout of the Prisma Access / Strata Logging Service log
//! forwarder.
//!
//! The Strata Logging Service *default* field order (its docs' "Threat
//! Syslog Default Field Order") is the classic PAN-OS order with ISO times
//! and is parsed with the classic tables. Forwarders set up after the
//! November 2020 migration choose their own columns, and the layout seen in
//! the wild (layer-3-communications' `threat_prisma_*` samples) is this one:
//!
//! - no leading FUTURE_USE `1`: the receive time is column 0 and the type
//!   column 2, which is how it is told apart;
//! - no FUTURE_USE, Flags or Action Flags columns, ISO-8601 times,
//!   `no-serial`, the config version (`10.0`) after the subtype, capitalised
//!   severities, `client to server` directions;
//! - THREAT: one column after the URL/Filename that holds the Threat ID, or
//!   the URL category in URL logs (which then have no Threat ID column);
//! - past the destination location (column 34 for THREAT) the columns
//!   depend on the subtype (file digest, cloud, file type, HTTP method, … are
//!   only written where they apply), so the tail is located from anchors:
//!   the Parent Start Time (the first ISO time after column 34; Tunnel Type
//!   and Threat Category follow it), the device-group hierarchy (four
//!   numbers, then the virtual-system name and the Device Name), the Rule
//!   UUID's shape, a SHA-256 digest's shape, and the High Resolution
//!   Timestamp among the last columns.
//!
//! Positions were checked one by one against the three THREAT samples
//! (url, spyware, wildfire) and the TRAFFIC sample; container and pod
//! columns are not known for this layout and are left absent.

use crate::csv::Columns;

use super::columns::{Layout, NONE};
use super::fields::{is_sha256, is_uuid, threat_id};
use super::time;

/// The columns every compact THREAT line has, in this order.
pub(crate) const THREAT: Layout = Layout {
    // Through Destination Location.
    min_columns: 35,
    receive_time: 0,
    serial: 1,
    subtype: 3,
    generated_time: 5,
    source_ip: 6,
    destination_ip: 7,
    nat_source_ip: 8,
    nat_destination_ip: 9,
    rule: 10,
    source_user: 11,
    destination_user: 12,
    application: 13,
    virtual_system: 14,
    source_zone: 15,
    destination_zone: 16,
    inbound_interface: 17,
    outbound_interface: 18,
    session_id: 20,
    repeat_count: 21,
    source_port: 22,
    destination_port: 23,
    nat_source_port: 24,
    nat_destination_port: 25,
    protocol: 26,
    action: 27,
    misc: 28,
    threat_id: 29,
    category: NONE,
    severity: 30,
    direction: 31,
    sequence_number: 32,
    source_location: 33,
    destination_location: 34,
    file_digest: NONE,
    user_agent: NONE,
    sender: NONE,
    subject: NONE,
    device_name: NONE,
    threat_category: NONE,
    rule_uuid: NONE,
    container_id: NONE,
    pod_namespace: NONE,
    pod_name: NONE,
    high_res_time: NONE,
};

/// Compact TRAFFIC: fixed through the Rule UUID.
pub(crate) const TRAFFIC: Layout = Layout {
    // Through Destination Location.
    min_columns: 38,
    misc: NONE,
    threat_id: NONE,
    severity: NONE,
    direction: NONE,
    sequence_number: 35,
    source_location: 36,
    destination_location: 37,
    device_name: 46,
    rule_uuid: 59,
    ..THREAT
};

/// Where the THREAT tail of this particular line sits.
pub(super) fn threat_layout(cols: &Columns<'_>) -> Layout {
    let mut l = THREAT;
    if threat_id(cols.field(29)).1.is_none() {
        l.threat_id = NONE;
        l.category = 29;
    }
    let first_tail = usize::from(l.destination_location) + 1;
    let Some(anchor) = (first_tail..cols.len()).find(|&i| time::looks_like_iso(cols.field(i)))
    else {
        return l;
    };
    l.threat_category = index(anchor + 2);
    l.device_name = device_name_before(cols, first_tail, anchor);
    l.file_digest = (first_tail..anchor)
        .find(|&i| is_sha256(cols.field(i)))
        .map_or(NONE, index);
    l.rule_uuid = (anchor..cols.len())
        .find(|&i| is_uuid(cols.field(i)))
        .map_or(NONE, index);
    l.high_res_time = high_res_time(cols, anchor);
    l
}

/// Compact TRAFFIC only needs its High Resolution Timestamp located.
pub(super) fn traffic_layout(cols: &Columns<'_>) -> Layout {
    let mut l = TRAFFIC;
    l.high_res_time = high_res_time(cols, usize::from(l.rule_uuid));
    l
}

/// Device Name follows the four device-group numbers and the virtual-system
/// name.
fn device_name_before(cols: &Columns<'_>, first: usize, anchor: usize) -> u16 {
    let number = |i: usize| {
        let v = cols.field(i);
        !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit())
    };
    (first + 5..anchor)
        .rev()
        .find(|&i| (i - 5..i - 1).all(number))
        .map_or(NONE, index)
}

/// The High Resolution Timestamp is among the last columns (trailing empty
/// ones follow it).
fn high_res_time(cols: &Columns<'_>, after: usize) -> u16 {
    let len = cols.len();
    (len.saturating_sub(4).max(after + 1)..len)
        .rev()
        .find(|&i| time::looks_like_iso(cols.field(i)))
        .map_or(NONE, index)
}

fn index(i: usize) -> u16 {
    u16::try_from(i).unwrap_or(NONE)
}

#[cfg(test)]
mod tests {
    use super::super::parse;
    use crate::{Direction, EventKind, ParseOptions, Parsed, RecordContext, Severity, ThreatEvent};
    use chrono::{DateTime, Utc};

    // Written from the compact layout above (not copied from the samples,
    // which the integration test reads): one line per shape.
    const URL: &str = "2024-03-02T10:00:05.000000Z,no-serial,THREAT,url,10.0,2024-03-02T10:00:03.000000Z,10.8.0.5,198.51.100.20,10.8.0.200,198.51.100.20,ALLOW-WEB,corp\\alice,,web-browsing,vsys1,trust,untrust,tunnel.7,ethernet1/1,Fwd-All,4411,1,50000,443,3000,443,tcp,block-url,c2.example.org/gate.php,command-and-control,Informational,client to server,5550001,10.0.0.0-10.255.255.255,NL,,0,0,,,,12,0,0,0,,pa-edge-3,,,get,0,,0,1970-01-01T00:00:00.000000Z,N/A,unknown,0,0,,\"command-and-control,high-risk\",0c6d1f5e-1a2b-4c3d-8e9f-001122334455,0,,,,2024-03-02T10:00:03.250000Z,";
    const SPYWARE: &str = "2024-03-02T10:01:05.000000Z,no-serial,THREAT,spyware,10.0,2024-03-02T10:01:00.000000Z,10.8.0.6,9.9.9.9,10.8.0.200,9.9.9.9,DNS-OUT,,,dns,vsys1,trust,untrust,tunnel.7,ethernet1/1,Fwd-All,4412,1,53000,53,3001,53,udp,sinkhole,bad.example.net,Malware:bad.example.net(109001001),Medium,client-to-server,5550002,10.0.0.0-10.255.255.255,US,1152921504606846977,,,0,,,,,0,12,0,0,0,,pa-edge-3,,,0,,0,1970-01-01T00:00:00.000000Z,N/A,dns-malware,0,0x0,0c6d1f5e-1a2b-4c3d-8e9f-001122334466,0,,,,2024-03-02T10:01:00.125000Z,";
    const WILDFIRE: &str = "2024-03-02T10:02:05.000000Z,no-serial,THREAT,wildfire,10.0,2024-03-02T10:02:00.000000Z,10.8.0.7,192.0.2.80,10.8.0.200,192.0.2.80,WEB-OUT,corp\\bob,,web-browsing,vsys1,trust,untrust,tunnel.7,ethernet1/1,Fwd-All,4413,1,54000,80,3002,80,tcp,allow,invoice.exe,Windows Executable (EXE)(52020),High,server to client,5550003,10.0.0.0-10.255.255.255,US,0,AB12CD34AB12CD34AB12CD34AB12CD34AB12CD34AB12CD34AB12CD34AB12CD34,wildfire.paloaltonetworks.com,3,exe,,,,99887766,12,0,0,0,,pa-edge-3,,,0,,0,1970-01-01T00:00:00.000000Z,N/A,unknown,0,0x0,0c6d1f5e-1a2b-4c3d-8e9f-001122334477,0,,,,2024-03-02T10:02:00.500000Z,";
    const TRAFFIC: &str = "2024-03-02T10:03:05.000000Z,no-serial,TRAFFIC,end,10.0,2024-03-02T10:03:00.000000Z,10.8.0.8,192.0.2.81,10.8.0.200,192.0.2.81,WEB-OUT,,,web-browsing,vsys1,trust,untrust,tunnel.7,ethernet1/1,Fwd-All,4414,1,55000,80,3003,80,tcp,allow,892,818,74,12,2024-03-02T10:02:30.000000Z,30,low-risk,5550004,10.0.0.0-10.255.255.255,JP,11,1,tcp-fin,12,0,0,0,,pa-edge-3,from-policy,,,0,,0,1970-01-01T00:00:00.000000Z,N/A,0,0,0,0,0c6d1f5e-1a2b-4c3d-8e9f-001122334488,0,0,,,,,2024-03-02T10:03:00.750000Z,,";

    fn event(line: &str) -> ThreatEvent {
        let ctx = RecordContext {
            original: line,
            hostname: Some("stream-logfwd-abc"),
            header_time: None,
        };
        match parse(line, &ctx, &ParseOptions::default()) {
            Ok(Parsed::Event(ev)) => *ev,
            other => panic!("expected an event for {line}: {other:?}"),
        }
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("rfc3339")
            .with_timezone(&Utc)
    }

    #[test]
    fn url_line_has_category_in_place_of_threat_id() {
        let ev = event(URL);
        assert_eq!(ev.kind, EventKind::Alert);
        assert_eq!(ev.threat_type.as_deref(), Some("url"));
        assert_eq!(ev.url_original.as_deref(), Some("c2.example.org/gate.php"));
        assert_eq!(ev.threat_id, None);
        assert_eq!(ev.threat_name, None);
        assert_eq!(ev.threat_category.as_deref(), Some("command-and-control"));
        assert_eq!(ev.threat_severity, Some(Severity::Informational));
        assert_eq!(ev.network_direction, Some(Direction::ClientToServer));
        assert_eq!(ev.observer_serial_number, None);
        assert_eq!(ev.observer_hostname.as_deref(), Some("pa-edge-3"));
        assert_eq!(
            ev.rule_uuid.as_deref(),
            Some("0c6d1f5e-1a2b-4c3d-8e9f-001122334455")
        );
        assert_eq!(ev.source_user.as_deref(), Some(r"corp\alice"));
        assert_eq!(ev.panos_session_id, Some(4411));
        assert_eq!(ev.panos_sequence_number, Some(5550001));
        assert_eq!(ev.destination_location.as_deref(), Some("NL"));
        assert_eq!(ev.source_nat_port, Some(3000));
        assert_eq!(ev.timestamp, utc("2024-03-02T10:00:03.250Z"));
        assert_eq!(ev.created, Some(utc("2024-03-02T10:00:05Z")));
        assert_eq!(ev.error_message, None);
    }

    #[test]
    fn spyware_line_has_threat_id_and_category_after_parent_start() {
        let ev = event(SPYWARE);
        assert_eq!(ev.threat_name.as_deref(), Some("Malware:bad.example.net"));
        assert_eq!(ev.threat_id, Some(109001001));
        assert_eq!(ev.threat_category.as_deref(), Some("dns-malware"));
        assert_eq!(ev.url_original.as_deref(), Some("bad.example.net"));
        assert_eq!(ev.action.as_deref(), Some("sinkhole"));
        assert_eq!(ev.threat_severity, Some(Severity::Medium));
        assert_eq!(ev.observer_hostname.as_deref(), Some("pa-edge-3"));
        assert_eq!(ev.network_transport.as_deref(), Some("udp"));
        assert_eq!(ev.timestamp, utc("2024-03-02T10:01:00.125Z"));
        assert_eq!(ev.error_message, None);
    }

    #[test]
    fn wildfire_line_has_file_and_digest() {
        let ev = event(WILDFIRE);
        assert_eq!(ev.file_name.as_deref(), Some("invoice.exe"));
        assert_eq!(
            ev.file_hash_sha256.as_deref(),
            Some("ab12cd34ab12cd34ab12cd34ab12cd34ab12cd34ab12cd34ab12cd34ab12cd34")
        );
        assert_eq!(ev.threat_name.as_deref(), Some("Windows Executable (EXE)"));
        assert_eq!(ev.network_direction, Some(Direction::ServerToClient));
        assert_eq!(ev.threat_severity, Some(Severity::High));
        assert_eq!(ev.observer_hostname.as_deref(), Some("pa-edge-3"));
        assert_eq!(ev.error_message, None);
    }

    #[test]
    fn traffic_line_reads_the_compact_positions() {
        let ev = event(TRAFFIC);
        assert_eq!(ev.kind, EventKind::Event);
        assert_eq!(ev.dataset, "panos.traffic");
        assert_eq!(ev.panos_subtype.as_deref(), Some("end"));
        assert_eq!(ev.panos_sequence_number, Some(5550004));
        assert_eq!(
            ev.source_location.as_deref(),
            Some("10.0.0.0-10.255.255.255")
        );
        assert_eq!(ev.destination_location.as_deref(), Some("JP"));
        assert_eq!(ev.observer_hostname.as_deref(), Some("pa-edge-3"));
        assert_eq!(
            ev.rule_uuid.as_deref(),
            Some("0c6d1f5e-1a2b-4c3d-8e9f-001122334488")
        );
        assert_eq!(ev.timestamp, utc("2024-03-02T10:03:00.750Z"));
        assert_eq!(ev.error_message, None);
    }

    #[test]
    fn a_compact_line_cut_after_the_locations_still_parses() {
        let cut: Vec<&str> = SPYWARE.split(',').take(35).collect();
        let line = cut.join(",");
        let ev = event(&line);
        assert_eq!(ev.threat_id, Some(109001001));
        // No device name column: the syslog header's host stands in.
        assert_eq!(ev.observer_hostname.as_deref(), Some("stream-logfwd-abc"));
        assert_eq!(ev.timestamp, utc("2024-03-02T10:01:00Z"));
    }
}
