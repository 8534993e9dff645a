//! What THREAT and TRAFFIC logs share: the times, the firewall and the
//! session's two ends.

use crate::csv::Columns;
use crate::{EventKind, EventModule, ParseError, ParseOptions, RecordContext, Str, ThreatEvent};

use super::columns::Layout;
use super::fields::{self, excerpt, raw, text};
use super::{time, FORMAT};

/// `TooFewColumns` unless the line is at least as wide as the oldest real
/// layout of its type.
pub(super) fn check_width(
    cols: &Columns<'_>,
    l: &Layout,
    log_type: &'static str,
) -> Result<(), ParseError> {
    let min = usize::from(l.min_columns);
    if cols.len() < min {
        return Err(ParseError::TooFewColumns {
            format: FORMAT,
            log_type,
            count: cols.len(),
            min,
        });
    }
    Ok(())
}

/// The event with its times set. `@timestamp` is the High Resolution
/// Timestamp when the line has a valid one (it carries its offset), else the
/// Generated Time in the configured zone; failing both, the Receive Time,
/// then the syslog header's time, with a warning. Only a line with no usable
/// time at all is an error.
pub(super) fn new_event(
    cols: &Columns<'_>,
    l: &Layout,
    kind: EventKind,
    dataset: &str,
    ctx: &RecordContext<'_>,
    opts: &ParseOptions,
) -> Result<Box<ThreatEvent>, ParseError> {
    let tz = opts.timezone;
    let high_res_raw = raw(cols, l.high_res_time);
    let high_res = match high_res_raw {
        "" => None,
        s => time::parse_in(s, tz),
    };
    let generated_raw = raw(cols, l.generated_time);
    // With a valid high-resolution timestamp the generated time adds nothing.
    let generated = match high_res {
        Some(_) => None,
        None => time::parse_in(generated_raw, tz),
    };
    let received_raw = raw(cols, l.receive_time);
    let received = time::parse_in(received_raw, tz);
    let timestamp = high_res
        .or(generated)
        .or(received)
        .or(ctx.header_time)
        .ok_or_else(|| {
            ParseError::field(
                FORMAT,
                "generated_time",
                format!(
                    "`{}` is not a PAN-OS time, and the line has no other usable time",
                    excerpt(generated_raw)
                ),
            )
        })?;
    // Boxed at once: the event is large and is filled in place from here on.
    let mut ev = Box::new(ThreatEvent::new(
        kind,
        EventModule::Panos,
        dataset,
        timestamp,
        ctx.original,
    ));
    ev.created = received;
    if received.is_none() {
        ev.warn(
            "event.created",
            format_args!(
                "receive time `{}` is not a valid time",
                excerpt(received_raw)
            ),
        );
    }
    if generated.is_none() && high_res.is_none() {
        ev.warn(
            "@timestamp",
            format_args!(
                "generated time `{}` is not a valid time",
                excerpt(generated_raw)
            ),
        );
    }
    if high_res.is_none() && !high_res_raw.is_empty() {
        ev.warn(
            "@timestamp",
            format_args!(
                "high resolution timestamp `{}` is not a valid time",
                excerpt(high_res_raw)
            ),
        );
    }
    Ok(ev)
}

/// Every field the two log types share.
/// `log_type` is what the type column says (the parser dispatched on it),
/// kept without another copy.
pub(super) fn fill(
    ev: &mut ThreatEvent,
    cols: &Columns<'_>,
    l: &Layout,
    ctx: &RecordContext<'_>,
    log_type: &'static str,
) {
    // Prisma Access writes `no-serial`: a placeholder, not a serial number.
    ev.observer_serial_number = text(cols, l.serial).filter(|s| s != "no-serial");
    ev.observer_hostname =
        text(cols, l.device_name).or_else(|| ctx.hostname.and_then(fields::nonempty).map(Str::new));
    ev.observer_ingress_interface = text(cols, l.inbound_interface);
    ev.observer_egress_interface = text(cols, l.outbound_interface);
    ev.panos_type = Some(Str::const_new(log_type));
    ev.panos_subtype = text(cols, l.subtype);
    ev.panos_virtual_system = text(cols, l.virtual_system);

    ev.source_ip = fields::ip(ev, "source.ip", cols, l.source_ip);
    ev.destination_ip = fields::ip(ev, "destination.ip", cols, l.destination_ip);
    ev.source_nat_ip = fields::nat_ip(ev, "source.nat.ip", cols, l.nat_source_ip);
    ev.destination_nat_ip = fields::nat_ip(ev, "destination.nat.ip", cols, l.nat_destination_ip);
    ev.source_port = fields::port(ev, "source.port", cols, l.source_port);
    ev.destination_port = fields::port(ev, "destination.port", cols, l.destination_port);
    ev.source_nat_port = fields::nat_port(ev, "source.nat.port", cols, l.nat_source_port);
    ev.destination_nat_port =
        fields::nat_port(ev, "destination.nat.port", cols, l.nat_destination_port);
    ev.source_zone = text(cols, l.source_zone);
    ev.destination_zone = text(cols, l.destination_zone);
    ev.source_user = fields::user(cols, l.source_user);
    ev.destination_user = fields::user(cols, l.destination_user);
    ev.source_location = text(cols, l.source_location);
    ev.destination_location = text(cols, l.destination_location);

    ev.network_transport = text(cols, l.protocol);
    ev.network_application = text(cols, l.application);
    ev.action = text(cols, l.action);
    ev.rule_name = text(cols, l.rule);
    ev.rule_uuid = text(cols, l.rule_uuid);

    ev.panos_session_id = fields::number(ev, "panos.session_id", cols, l.session_id, "session id");
    ev.panos_repeat_count = fields::number(
        ev,
        "panos.repeat_count",
        cols,
        l.repeat_count,
        "repeat count",
    );
    ev.panos_sequence_number = fields::number(
        ev,
        "panos.sequence_number",
        cols,
        l.sequence_number,
        "sequence number",
    );

    // CN-Series: the pod the firewall saw, when it knew.
    ev.container_id = text(cols, l.container_id);
    ev.orchestrator_namespace = text(cols, l.pod_namespace);
    ev.orchestrator_resource_name = text(cols, l.pod_name);
}
