//! TRAFFIC logs: `event.kind: event`, dataset `panos.traffic`.
//!
//! A traffic log describes a session (start, end, drop, deny); it carries no
//! threat, so the `threat.*` fields stay empty and `event.action` says what
//! the firewall did with the session.

use crate::csv::Columns;
use crate::{EventKind, ParseError, ParseOptions, RecordContext, ThreatEvent};

use super::columns::Layout;
use super::session;

pub(super) fn parse(
    cols: &Columns<'_>,
    l: &Layout,
    ctx: &RecordContext<'_>,
    opts: &ParseOptions,
) -> Result<Box<ThreatEvent>, ParseError> {
    session::check_width(cols, l, "TRAFFIC")?;
    let mut ev = session::new_event(cols, l, EventKind::Event, "panos.traffic", ctx, opts)?;
    session::fill(&mut ev, cols, l, ctx, "TRAFFIC");
    Ok(ev)
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::traffic_line;
    use super::super::parse;
    use crate::{EventKind, ParseError, ParseOptions, Parsed, RecordContext, ThreatEvent};
    use chrono::{DateTime, Utc};

    fn event(line: &str) -> ThreatEvent {
        let ctx = RecordContext::bare(line);
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
    fn every_subtype_is_a_traffic_event() {
        for (subtype, action) in [
            ("start", "allow"),
            ("end", "allow"),
            ("drop", "drop"),
            ("deny", "deny"),
        ] {
            let line = traffic_line(114).set(4, subtype).set(30, action).build();
            let ev = event(&line);
            assert_eq!(ev.kind, EventKind::Event);
            assert_eq!(ev.dataset, "panos.traffic");
            assert_eq!(ev.panos_type.as_deref(), Some("TRAFFIC"));
            assert_eq!(ev.panos_subtype.as_deref(), Some(subtype));
            assert_eq!(ev.action.as_deref(), Some(action));
            assert_eq!(ev.threat_type, None);
            assert_eq!(ev.threat_severity, None);
            assert_eq!(ev.error_message, None);
        }
    }

    #[test]
    fn reads_traffic_positions_not_threat_ones() {
        let ev = event(&traffic_line(114).build());
        assert_eq!(ev.panos_sequence_number, Some(2176523185));
        assert_eq!(
            ev.source_location.as_deref(),
            Some("10.0.0.0-10.255.255.255")
        );
        assert_eq!(ev.destination_location.as_deref(), Some("United States"));
        assert_eq!(ev.observer_hostname.as_deref(), Some("cn-ngfw-1"));
        assert_eq!(
            ev.rule_uuid.as_deref(),
            Some("9b0e2d71-8c1f-4a8e-a3f5-2f6c0d1e7b44")
        );
        assert_eq!(ev.container_id.as_deref(), Some("containerd://4f2a9c"));
        assert_eq!(ev.orchestrator_namespace.as_deref(), Some("shop"));
        assert_eq!(
            ev.orchestrator_resource_name.as_deref(),
            Some("checkout-7d9f")
        );
        assert_eq!(ev.timestamp, utc("2024-08-19T13:58:32.880Z"));
        assert_eq!(ev.created, Some(utc("2024-08-19T13:58:33Z")));
        assert_eq!(ev.source_ip, Some("10.244.1.17".parse().expect("ip")));
        assert_eq!(ev.destination_port, Some(443));
        assert_eq!(ev.network_transport.as_deref(), Some("tcp"));
        // URL category of the session is not a threat category.
        assert_eq!(ev.threat_category, None);
    }

    #[test]
    fn old_widths_parse_and_garbled_addresses_only_warn() {
        for width in [43, 46, 47, 54, 65, 67, 99, 114] {
            let line = traffic_line(width)
                .set(7, "172.22.135")
                .set(8, "172.300.28.33")
                .build();
            let ev = event(&line);
            assert_eq!(ev.source_ip, None, "{width}");
            assert_eq!(ev.destination_ip, None, "{width}");
            let msg = ev.error_message.expect("warnings");
            assert!(msg.contains("172.300.28.33"), "{width}: {msg}");
            assert_eq!(ev.observer_hostname.is_some(), width > 52, "{width}");
        }
    }

    #[test]
    fn fewer_than_43_columns_is_too_few() {
        let line = traffic_line(42).build();
        let ctx = RecordContext::bare(&line);
        match parse(&line, &ctx, &ParseOptions::default()) {
            Err(ParseError::TooFewColumns {
                count: 42,
                min: 43,
                log_type: "TRAFFIC",
                ..
            }) => {}
            other => panic!("expected TooFewColumns: {other:?}"),
        }
    }
}
