//! PAN-OS logs in IBM's Log Event Extended Format, as the firewall's
//! predefined "PAN-OS Syslog Integration" templates send them:
//!
//! ```text
//! LEEF:1.0|Palo Alto Networks|PAN-OS Syslog Integration|<version>|<event id>|cat=TRAFFIC|…
//! LEEF:2.0|Palo Alto Networks|PAN-OS Syslog Integration|<version>|<event id>|x7C|cat=THREAT|…
//! ```
//!
//! THREAT logs become alerts (`panos.threat`), TRAFFIC logs events
//! (`panos.traffic`); other log types are valid but ignored. The log type is
//! `Type` or `cat`. The event id is the action for TRAFFIC and the threat
//! (`Name(id)`) for THREAT; `ThreatID` wins when it names the threat.
//!
//! PAN-OS has used two key sets over the years (LEEF 1.0: `RuleName`,
//! `SourceZone`, `SerialNumber`, `Miscellaneous`…; LEEF 2.0: `Rule`,
//! `FromZone`, `DeviceSN`, `FileName`…): both are read. `@timestamp` is
//! `TimeGeneratedHighResolution` when sent, else the receive time (`devTime`,
//! with its zone, then `ReceiveTime` in the firewall's zone), else the
//! syslog header's. Severity is the text `Severity` when sent, else `sev`
//! on the CEF bands.

mod syntax;

use std::borrow::Cow;

use chrono::{DateTime, Utc};

use crate::cef::panos_kv::{self, text, Times};
use crate::syslog::timestamp;
use crate::{
    Direction, EventKind, EventModule, Ignored, ParseError, ParseOptions, Parsed, RecordContext,
    Str, ThreatEvent,
};
use syntax::{for_each_attribute, Header};

const FORMAT: &str = "leef";

#[derive(Debug, Default)]
struct Fields<'a> {
    log_type: Option<&'a str>,
    cat: Option<&'a str>,
    subtype: Option<&'a str>,
    receive_time: Option<&'a str>,
    dev_time: Option<&'a str>,
    high_res_time: Option<&'a str>,
    serial: Option<&'a str>,
    device_name: Option<&'a str>,
    src: Option<&'a str>,
    dst: Option<&'a str>,
    src_nat: Option<&'a str>,
    dst_nat: Option<&'a str>,
    src_port: Option<&'a str>,
    dst_port: Option<&'a str>,
    src_nat_port: Option<&'a str>,
    dst_nat_port: Option<&'a str>,
    rule: Option<&'a str>,
    rule_uuid: Option<&'a str>,
    src_user: Option<&'a str>,
    usr_name: Option<&'a str>,
    dst_user: Option<&'a str>,
    application: Option<&'a str>,
    vsys: Option<&'a str>,
    src_zone: Option<&'a str>,
    dst_zone: Option<&'a str>,
    inbound_if: Option<&'a str>,
    outbound_if: Option<&'a str>,
    session_id: Option<&'a str>,
    repeat_count: Option<&'a str>,
    sequence: Option<&'a str>,
    proto: Option<&'a str>,
    action: Option<&'a str>,
    misc: Option<&'a str>,
    threat_id: Option<&'a str>,
    threat_category: Option<&'a str>,
    url_category: Option<&'a str>,
    sev: Option<&'a str>,
    severity: Option<&'a str>,
    direction: Option<&'a str>,
    src_location: Option<&'a str>,
    dst_location: Option<&'a str>,
    file_digest: Option<&'a str>,
    user_agent: Option<&'a str>,
    sender: Option<&'a str>,
    subject: Option<&'a str>,
    container_id: Option<&'a str>,
    container_namespace: Option<&'a str>,
    container_name: Option<&'a str>,
}

impl<'a> Fields<'a> {
    fn set(&mut self, key: &'a str, value: &'a str) {
        let slot = match key {
            "Type" => &mut self.log_type,
            "cat" => &mut self.cat,
            "Subtype" | "SubType" | "subtype" => &mut self.subtype,
            "ReceiveTime" | "TimeReceived" => &mut self.receive_time,
            "devTime" => &mut self.dev_time,
            "TimeGeneratedHighResolution" => &mut self.high_res_time,
            "SerialNumber" | "DeviceSN" => &mut self.serial,
            "DeviceName" => &mut self.device_name,
            "src" => &mut self.src,
            "dst" => &mut self.dst,
            "srcPostNAT" => &mut self.src_nat,
            "dstPostNAT" => &mut self.dst_nat,
            "srcPort" => &mut self.src_port,
            "dstPort" => &mut self.dst_port,
            "srcPostNATPort" => &mut self.src_nat_port,
            "dstPostNATPort" => &mut self.dst_nat_port,
            "RuleName" | "Rule" => &mut self.rule,
            "RuleUUID" => &mut self.rule_uuid,
            "SourceUser" => &mut self.src_user,
            "usrName" => &mut self.usr_name,
            "DestinationUser" => &mut self.dst_user,
            "Application" => &mut self.application,
            "VirtualSystem" | "VirtualLocation" => &mut self.vsys,
            "SourceZone" | "FromZone" => &mut self.src_zone,
            "DestinationZone" | "ToZone" => &mut self.dst_zone,
            "IngressInterface" | "InboundInterface" => &mut self.inbound_if,
            "EgressInterface" | "OutboundInterface" => &mut self.outbound_if,
            "SessionID" => &mut self.session_id,
            "RepeatCount" | "CountOfRepeats" => &mut self.repeat_count,
            "sequence" | "SequenceNo" => &mut self.sequence,
            "proto" => &mut self.proto,
            "action" | "Action" => &mut self.action,
            "Miscellaneous" | "Misc" | "URL" | "FileName" => &mut self.misc,
            "ThreatID" => &mut self.threat_id,
            "ThreatCategory" => &mut self.threat_category,
            "URLCategory" => &mut self.url_category,
            "sev" => &mut self.sev,
            "Severity" | "VendorSeverity" => &mut self.severity,
            "Direction" | "DirectionOfAttack" => &mut self.direction,
            "SourceLocation" => &mut self.src_location,
            "DestinationLocation" => &mut self.dst_location,
            "FileDigest" | "FileHash" => &mut self.file_digest,
            "UserAgent" => &mut self.user_agent,
            "Sender" | "SenderEmail" => &mut self.sender,
            "Subject" | "EmailSubject" => &mut self.subject,
            "ContainerID" => &mut self.container_id,
            "ContainerNameSpace" => &mut self.container_namespace,
            "ContainerName" => &mut self.container_name,
            _ => return,
        };
        *slot = Some(value);
    }
}

impl<'a> Fields<'a> {
    fn read(header: &Header<'a>) -> Result<Fields<'a>, ParseError> {
        let mut f = Fields::default();
        for_each_attribute(header.attributes, header.delimiter, |k, v| f.set(k, v))?;
        Ok(f)
    }

    /// `Type`, else `cat`: a record without one is not a PAN-OS log.
    fn log_type(&self) -> Result<&'a str, ParseError> {
        self.log_type
            .or(self.cat)
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                ParseError::field(FORMAT, "cat", "missing: the record names no log type")
            })
    }
}

/// Parses one LEEF payload (the syslog header already stripped).
pub fn parse(
    payload: &str,
    ctx: &RecordContext<'_>,
    opts: &ParseOptions,
) -> Result<Parsed, ParseError> {
    let header = Header::parse(payload.trim_start())?;
    check_vendor(&header)?;
    let f = Fields::read(&header)?;
    let log_type = f.log_type()?;
    let Some((kind, dataset)) = panos_kv::kind_of(log_type) else {
        return Ok(Parsed::Ignored(Ignored {
            format: FORMAT,
            kind: log_type.to_string(),
        }));
    };
    let subtype = f.subtype.map(str::trim).unwrap_or_default();
    let times = read_times(&f, ctx, opts)?;

    let mut ev = ThreatEvent::new(kind, EventModule::Panos, dataset, times.at, ctx.original);
    for (field, msg) in times.warnings {
        ev.warn(field, msg);
    }
    ev.created = times.created;
    ev.panos_type = Some(Str::from(log_type.to_ascii_uppercase()));
    ev.panos_subtype = text(Some(subtype));
    ev.observer_version = text(Some(header.device_version));
    shared_fields(&f, &header, kind).fill(&mut ev, ctx.hostname);
    ev.source_location = text(f.src_location);
    ev.destination_location = text(f.dst_location);
    if let Some(misc) = f.misc.map(panos_kv::unquote).filter(|m| !m.is_empty()) {
        if panos_kv::misc_is_file(subtype) {
            ev.file_name = Some(misc.to_string());
        } else {
            ev.url_original = Some(misc.to_string());
        }
    }
    if kind == EventKind::Alert {
        fill_threat(&mut ev, &f, &header, subtype);
    }
    Ok(Parsed::Event(Box::new(ev)))
}

/// Only PAN-OS sends LEEF to Riposte: another vendor's is an error, not an
/// event read with the wrong meanings.
fn check_vendor(header: &Header<'_>) -> Result<(), ParseError> {
    let vendor = header.vendor.trim();
    if vendor
        .get(..9)
        .is_some_and(|v| v.eq_ignore_ascii_case("palo alto"))
    {
        return Ok(());
    }
    Err(ParseError::field(
        FORMAT,
        "vendor",
        format!(
            "`{}` is not Palo Alto Networks; only PAN-OS sends LEEF to Riposte",
            panos_kv::clip(vendor)
        ),
    ))
}

/// The event's times (`event.created` is `devTime`, else `ReceiveTime`); a
/// record with no readable time at all is refused.
fn read_times(
    f: &Fields<'_>,
    ctx: &RecordContext<'_>,
    opts: &ParseOptions,
) -> Result<Times, ParseError> {
    let mut warnings = Vec::new();
    let mut read = |field: &'static str, raw: Option<&str>, panos_local: bool| {
        read_time(&mut warnings, opts.timezone, field, raw, panos_local)
    };
    let created = read("event.created", f.dev_time, false)
        .or_else(|| read("event.created", f.receive_time, true));
    let generated = read("@timestamp", f.high_res_time, false);
    let Some(at) = generated.or(created).or(ctx.header_time) else {
        return Err(ParseError::field(
            FORMAT,
            "devTime",
            "record carries no readable time (devTime, ReceiveTime or a syslog header timestamp)",
        ));
    };
    Ok(Times {
        at,
        created,
        warnings,
    })
}

/// One time: PAN-OS's local `yyyy/MM/dd HH:mm:ss` in the firewall's zone
/// when `panos_local`, else RFC 3339, epoch milliseconds or CEF's form.
/// An unreadable one is a warning.
fn read_time(
    warnings: &mut Vec<(&'static str, String)>,
    tz: chrono_tz::Tz,
    field: &'static str,
    raw: Option<&str>,
    panos_local: bool,
) -> Option<DateTime<Utc>> {
    let raw = raw?.trim();
    if raw.is_empty() {
        return None;
    }
    let parsed = if panos_local {
        timestamp::parse_panos_local(raw, tz)
    } else {
        timestamp::parse_rfc3339(raw)
            .or_else(|| timestamp::parse_epoch(raw))
            .or_else(|| timestamp::parse_cef_time(raw, tz).map(|(t, _)| t))
    };
    if parsed.is_none() {
        warnings.push((field, format!("`{}` is not a time", panos_kv::clip(raw))));
    }
    parsed
}

/// The fields LEEF shares with CEF and the other key-value formats.
fn shared_fields<'a>(
    f: &Fields<'a>,
    header: &Header<'a>,
    kind: EventKind,
) -> panos_kv::SharedFields<'a> {
    let b = |v: Option<&'a str>| v.map(Cow::Borrowed);
    panos_kv::SharedFields {
        serial: b(f.serial),
        hostname: b(f.device_name),
        src: f.src,
        dst: f.dst,
        src_port: f.src_port,
        dst_port: f.dst_port,
        src_nat: f.src_nat,
        dst_nat: f.dst_nat,
        src_nat_port: f.src_nat_port,
        dst_nat_port: f.dst_nat_port,
        src_user: b(nonblank(f.src_user).or(f.usr_name)),
        dst_user: b(f.dst_user),
        application: b(f.application),
        proto: f.proto,
        // For TRAFFIC the header's event id is the action.
        action: b(
            nonblank(f.action).or_else(|| (kind == EventKind::Event).then_some(header.event_id))
        ),
        inbound_if: b(f.inbound_if),
        outbound_if: b(f.outbound_if),
        vsys: b(f.vsys),
        rule: b(f.rule),
        rule_uuid: b(f.rule_uuid),
        src_zone: b(f.src_zone),
        dst_zone: b(f.dst_zone),
        session_id: f.session_id,
        repeat_count: f.repeat_count,
        sequence: f.sequence,
        direction: f.direction.and_then(Direction::parse),
        container_id: b(f.container_id),
        pod_namespace: b(f.container_namespace),
        pod_name: b(f.container_name),
        user_agent: b(f.user_agent),
        file_hash: b(f.file_digest),
        sender: b(f.sender),
        subject: b(f.subject),
    }
}

fn fill_threat(ev: &mut ThreatEvent, f: &Fields<'_>, header: &Header<'_>, subtype: &str) {
    if !subtype.is_empty() {
        ev.threat_type = Some(Str::from(subtype.to_ascii_lowercase()));
    }
    let from_key = f
        .threat_id
        .map(panos_kv::split_threat_id)
        .unwrap_or_default();
    let from_header = Some(header.event_id)
        .filter(|e| panos_kv::has_threat_id(e))
        .map(panos_kv::split_threat_id)
        .unwrap_or_default();
    ev.threat_name = from_key.0.or(from_header.0).map(Str::new);
    ev.threat_id = from_key.1.or(from_header.1);
    ev.threat_category = text(f.threat_category)
        .or_else(|| text(f.url_category).filter(|_| subtype.eq_ignore_ascii_case("url")));

    let level = f
        .severity
        .and_then(panos_kv::parse_severity)
        .or_else(|| f.sev.and_then(panos_kv::parse_severity));
    match level {
        Some(level) => ev.set_severity(level),
        None => {
            if let Some(raw) = f.severity.or(f.sev).filter(|s| !s.trim().is_empty()) {
                ev.warn(
                    "event.severity",
                    format_args!("`{}` is not a severity", panos_kv::clip(raw)),
                );
            }
        }
    }
}

/// A value that says something (PAN-OS sends blank keys it has no value for).
fn nonblank(v: Option<&str>) -> Option<&str> {
    v.filter(|v| !v.trim().is_empty())
}

#[cfg(test)]
mod tests;
