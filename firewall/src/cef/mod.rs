//! PAN-OS logs in ArcSight's Common Event Format, as the firewall's
//! predefined CEF templates (and Strata Logging Service's) send them:
//!
//! ```text
//! CEF:0|Palo Alto Networks|PAN-OS|<version>|<subtype>|<type>|<severity>|rt=… src=… …
//! ```
//!
//! THREAT logs become alerts (`panos.threat`), TRAFFIC logs events
//! (`panos.traffic`); other log types are valid but ignored.
//!
//! Mapping notes:
//! - Signature ID and Name carry the subtype and the type; Strata Logging
//!   Service swaps them, so whichever names a log type is the type.
//! - `cat` carries the threat as `Name(id)` (`threat.name`, `threat.id`);
//!   templates that put it in the header instead are read too.
//! - `cs1`…`cs6` are read by their `csNLabel` when present, else by PAN-OS's
//!   fixed use: Rule, URL Category, Virtual System, Source Zone,
//!   Destination Zone, LogProfile.
//! - `threat.category` is `PanOSThreatCategory` when sent; for URL-filtering
//!   logs without it, the URL category.
//! - Severity: the header's 0–10 number, on the bands documented at
//!   [`panos_kv::severity_from_cef`] (PAN-OS sends 1, 3, 5, 8, 10 for
//!   informational … critical); a textual `severity` key wins when present.
//! - `@timestamp` is the generated time (`PanOSTimeGeneratedHighResolution`,
//!   then `start`), else the receive time `rt`, else the syslog header's;
//!   `rt` is `event.created`. Times without a zone are read in `dtz` when it
//!   names one, else in the configured firewall zone.
//! - CN-Series pod fields: `PanOSContainerID`, `PanOSPODNamespace` /
//!   `PanOSContainerNameSpace`, `PanOSPODName` / `PanOSContainerName`. The
//!   firewall's own template puts the container id in `PanOSContainerName`
//!   beside `PanOSPODName`; Strata Logging Service puts the pod name there.

pub(crate) mod panos_kv;
mod syntax;

use std::borrow::Cow;

use chrono::{DateTime, Utc};

use crate::syslog::timestamp;
use crate::{
    Direction, EventKind, EventModule, Ignored, ParseError, ParseOptions, Parsed, RecordContext,
    Str, ThreatEvent,
};
use panos_kv::{text, Times};
use syntax::{unescape_header, unescape_value, Extension, Header};

const FORMAT: &str = "cef";

/// The extension keys Riposte reads, escapes still in place.
#[derive(Debug, Default)]
struct Fields<'a> {
    rt: Option<&'a str>,
    start: Option<&'a str>,
    high_res_time: Option<&'a str>,
    dtz: Option<&'a str>,
    serial: Option<&'a str>,
    dvchost: Option<&'a str>,
    src: Option<&'a str>,
    dst: Option<&'a str>,
    src_v6: Option<&'a str>,
    dst_v6: Option<&'a str>,
    spt: Option<&'a str>,
    dpt: Option<&'a str>,
    src_nat: Option<&'a str>,
    dst_nat: Option<&'a str>,
    src_nat_port: Option<&'a str>,
    dst_nat_port: Option<&'a str>,
    suser: Option<&'a str>,
    duser: Option<&'a str>,
    app: Option<&'a str>,
    proto: Option<&'a str>,
    act: Option<&'a str>,
    request: Option<&'a str>,
    cat: Option<&'a str>,
    threat_category: Option<&'a str>,
    severity: Option<&'a str>,
    inbound_if: Option<&'a str>,
    outbound_if: Option<&'a str>,
    cs: [Option<&'a str>; 6],
    cs_label: [Option<&'a str>; 6],
    cn1: Option<&'a str>,
    cn1_label: Option<&'a str>,
    session_id: Option<&'a str>,
    cnt: Option<&'a str>,
    external_id: Option<&'a str>,
    direction: Option<&'a str>,
    direction_label: Option<&'a str>,
    client_to_server: Option<&'a str>,
    server_to_client: Option<&'a str>,
    file_hash: Option<&'a str>,
    fname: Option<&'a str>,
    user_agent: Option<&'a str>,
    sender: Option<&'a str>,
    subject: Option<&'a str>,
    rule_uuid: Option<&'a str>,
    container_id: Option<&'a str>,
    container_name: Option<&'a str>,
    container_namespace: Option<&'a str>,
    pod_name: Option<&'a str>,
    pod_namespace: Option<&'a str>,
    vsys: Option<&'a str>,
}

impl<'a> Fields<'a> {
    /// Reads the extension's `key=value` pairs, keeping the keys Riposte
    /// uses.
    fn read(extension: &'a str) -> Result<Fields<'a>, ParseError> {
        let mut f = Fields::default();
        for pair in Extension::new(extension) {
            let (key, value) = pair?;
            f.set(key, value);
        }
        Ok(f)
    }

    fn set(&mut self, key: &'a str, value: &'a str) {
        let slot = match key {
            "rt" => &mut self.rt,
            "start" => &mut self.start,
            "PanOSTimeGeneratedHighResolution" => &mut self.high_res_time,
            "dtz" => &mut self.dtz,
            "deviceExternalId" => &mut self.serial,
            "dvchost" => &mut self.dvchost,
            "src" => &mut self.src,
            "dst" => &mut self.dst,
            "c6a2" => &mut self.src_v6,
            "c6a3" => &mut self.dst_v6,
            "spt" => &mut self.spt,
            "dpt" => &mut self.dpt,
            "sourceTranslatedAddress" => &mut self.src_nat,
            "destinationTranslatedAddress" => &mut self.dst_nat,
            "sourceTranslatedPort" => &mut self.src_nat_port,
            "destinationTranslatedPort" => &mut self.dst_nat_port,
            "suser" => &mut self.suser,
            "duser" => &mut self.duser,
            "app" => &mut self.app,
            "proto" => &mut self.proto,
            "act" => &mut self.act,
            "request" => &mut self.request,
            "cat" => &mut self.cat,
            "PanOSThreatCategory" | "ThreatCategory" => &mut self.threat_category,
            "severity" | "PanOSSeverity" => &mut self.severity,
            "deviceInboundInterface" => &mut self.inbound_if,
            "deviceOutboundInterface" => &mut self.outbound_if,
            "cs1" => &mut self.cs[0],
            "cs2" => &mut self.cs[1],
            "cs3" => &mut self.cs[2],
            "cs4" => &mut self.cs[3],
            "cs5" => &mut self.cs[4],
            "cs6" => &mut self.cs[5],
            "cs1Label" => &mut self.cs_label[0],
            "cs2Label" => &mut self.cs_label[1],
            "cs3Label" => &mut self.cs_label[2],
            "cs4Label" => &mut self.cs_label[3],
            "cs5Label" => &mut self.cs_label[4],
            "cs6Label" => &mut self.cs_label[5],
            "cn1" => &mut self.cn1,
            "cn1Label" => &mut self.cn1_label,
            "PanOSSessionID" => &mut self.session_id,
            "cnt" => &mut self.cnt,
            "externalId" => &mut self.external_id,
            "flexString2" => &mut self.direction,
            "flexString2Label" => &mut self.direction_label,
            "PanOSIsClienttoServer" => &mut self.client_to_server,
            "PanOSIsServertoClient" => &mut self.server_to_client,
            "fileHash" => &mut self.file_hash,
            "fname" => &mut self.fname,
            "requestClientApplication" => &mut self.user_agent,
            "suid" => &mut self.sender,
            "msg" => &mut self.subject,
            "PanOSRuleUUID" => &mut self.rule_uuid,
            "PanOSContainerID" => &mut self.container_id,
            "PanOSContainerName" => &mut self.container_name,
            "PanOSContainerNameSpace" => &mut self.container_namespace,
            "PanOSPODName" => &mut self.pod_name,
            "PanOSPODNamespace" => &mut self.pod_namespace,
            "PanOSVirtualSystem" => &mut self.vsys,
            _ => return,
        };
        *slot = Some(value);
    }
}

/// Parses one CEF payload (the syslog header already stripped).
pub fn parse(
    payload: &str,
    ctx: &RecordContext<'_>,
    opts: &ParseOptions,
) -> Result<Parsed, ParseError> {
    let header = Header::parse(payload.trim())?;
    check_vendor(&header)?;
    let signature = unescape_header(header.signature_id);
    let name = unescape_header(header.name);
    let (log_type, subtype) = log_type_and_subtype(&signature, &name);
    let Some((kind, dataset)) = panos_kv::kind_of(log_type) else {
        return Ok(Parsed::Ignored(Ignored {
            format: FORMAT,
            kind: if log_type.is_empty() {
                "unknown"
            } else {
                log_type
            }
            .to_string(),
        }));
    };
    let f = Fields::read(header.extension)?;
    let times = read_times(&f, ctx, opts)?;

    let mut ev = ThreatEvent::new(kind, EventModule::Panos, dataset, times.at, ctx.original);
    for (field, msg) in times.warnings {
        ev.warn(field, msg);
    }
    ev.created = times.created;
    ev.panos_type = Some(Str::from(log_type.to_ascii_uppercase()));
    ev.panos_subtype = text(Some(subtype));
    ev.observer_version = text(Some(&unescape_header(header.device_version)));
    let mut cs = CustomStrings::read(&f);
    let url_category = cs.url_category.take();
    shared_fields(&f, cs).fill(&mut ev, ctx.hostname);
    fill_file_or_url(&mut ev, &f, subtype);
    if kind == EventKind::Alert {
        fill_threat(
            &mut ev,
            &f,
            &header,
            subtype,
            &signature,
            &name,
            url_category,
        );
    }
    Ok(Parsed::Event(Box::new(ev)))
}

/// Only PAN-OS sends CEF to Riposte: another vendor's is an error, not an
/// event read with the wrong meanings.
fn check_vendor(header: &Header<'_>) -> Result<(), ParseError> {
    let vendor = unescape_header(header.vendor);
    if is_palo_alto(&vendor) {
        return Ok(());
    }
    Err(ParseError::field(
        FORMAT,
        "device_vendor",
        format!(
            "`{}` is not Palo Alto Networks; only PAN-OS sends CEF to Riposte",
            panos_kv::clip(&vendor)
        ),
    ))
}

/// The log type and subtype from the header's Signature ID and Name:
/// whichever names a log type is the type (Strata Logging Service swaps
/// them).
fn log_type_and_subtype<'h>(signature: &'h str, name: &'h str) -> (&'h str, &'h str) {
    if panos_kv::is_log_type(name) || !panos_kv::is_log_type(signature) {
        (name.trim(), signature.trim())
    } else {
        (signature.trim(), name.trim())
    }
}

/// The event's times (`event.created` is the receive time `rt`); a record
/// with no readable time at all is refused.
fn read_times(
    f: &Fields<'_>,
    ctx: &RecordContext<'_>,
    opts: &ParseOptions,
) -> Result<Times, ParseError> {
    let tz = f
        .dtz
        .and_then(|z| z.trim().parse::<chrono_tz::Tz>().ok())
        .unwrap_or(opts.timezone);
    let mut reader = TimeReader {
        tz,
        zone_sent: f.dtz.is_some(),
        warnings: Vec::new(),
    };
    let created = reader.read("event.created", f.rt);
    let generated = reader
        .read("@timestamp", f.high_res_time)
        .or_else(|| reader.read("@timestamp", f.start));
    let Some(at) = generated.or(created).or(ctx.header_time) else {
        return Err(ParseError::field(
            FORMAT,
            "rt",
            "record carries no readable time (rt, start or a syslog header timestamp)",
        ));
    };
    Ok(Times {
        at,
        created,
        warnings: reader.warnings,
    })
}

/// Reads CEF times (epoch milliseconds, RFC 3339 or `MMM dd yyyy
/// HH:mm:ss[ zone]`), collecting a warning per unreadable one.
struct TimeReader {
    /// The zone for times that carry none: `dtz`, else the configured one.
    tz: chrono_tz::Tz,
    /// Whether `dtz` was sent (then a guessed zone is no news).
    zone_sent: bool,
    warnings: Vec<(&'static str, String)>,
}

impl TimeReader {
    fn read(&mut self, field: &'static str, raw: Option<&str>) -> Option<DateTime<Utc>> {
        let raw = unescape_value(raw?.trim());
        if raw.is_empty() {
            return None;
        }
        let tz = self.tz;
        let parsed = timestamp::parse_epoch(&raw)
            .map(|t| (t, false))
            .or_else(|| timestamp::parse_rfc3339(&raw).map(|t| (t, false)))
            .or_else(|| timestamp::parse_cef_time(&raw, tz));
        match parsed {
            Some((t, zone_guessed)) => {
                if zone_guessed && !self.zone_sent && raw.split_whitespace().count() > 4 {
                    self.warnings.push((
                        field,
                        format!("time zone in `{raw}` is not known; read in {tz}"),
                    ));
                }
                Some(t)
            }
            None => {
                self.warnings
                    .push((field, format!("`{}` is not a time", panos_kv::clip(&raw))));
                None
            }
        }
    }
}

/// `cs1`…`cs6`, by their labels (or PAN-OS's fixed use when unlabelled).
#[derive(Default)]
struct CustomStrings<'a> {
    rule: Option<Cow<'a, str>>,
    src_zone: Option<Cow<'a, str>>,
    dst_zone: Option<Cow<'a, str>>,
    vsys: Option<Cow<'a, str>>,
    url_category: Option<Str>,
}

impl<'a> CustomStrings<'a> {
    fn read(f: &Fields<'a>) -> CustomStrings<'a> {
        let mut cs = CustomStrings::default();
        for (i, value) in f.cs.iter().enumerate() {
            let Some(value) = value.map(unescape_value).filter(|v| !v.trim().is_empty()) else {
                continue;
            };
            let label = f.cs_label[i].map(unescape_value);
            let label = label.as_deref().unwrap_or(DEFAULT_CS_LABELS[i]);
            if panos_kv::label_is(label, "rule") {
                cs.rule = Some(value);
            } else if panos_kv::label_is(label, "sourcezone")
                || panos_kv::label_is(label, "fromzone")
            {
                cs.src_zone = Some(value);
            } else if panos_kv::label_is(label, "destinationzone")
                || panos_kv::label_is(label, "tozone")
            {
                cs.dst_zone = Some(value);
            } else if panos_kv::label_is(label, "virtualsystem")
                || panos_kv::label_is(label, "virtuallocation")
            {
                cs.vsys = Some(value);
            } else if panos_kv::label_is(label, "urlcategory") {
                cs.url_category = text(Some(&value));
            }
        }
        cs
    }
}

/// The session direction: `flexString2` when it is labelled as one (or
/// unlabelled), else the PanOSIsClienttoServer / ServertoClient flags.
fn direction(f: &Fields<'_>) -> Option<Direction> {
    let direction_is_direction = f
        .direction_label
        .is_none_or(|l| panos_kv::label_is(&unescape_value(l), "direction"));
    f.direction
        .filter(|_| direction_is_direction)
        .and_then(Direction::parse)
        .or_else(|| match (f.client_to_server, f.server_to_client) {
            (Some(v), _) if v.trim().eq_ignore_ascii_case("true") => {
                Some(Direction::ClientToServer)
            }
            (_, Some(v)) if v.trim().eq_ignore_ascii_case("true") => {
                Some(Direction::ServerToClient)
            }
            _ => None,
        })
}

/// The fields CEF shares with LEEF and the other key-value formats.
fn shared_fields<'a>(f: &Fields<'a>, cs: CustomStrings<'a>) -> panos_kv::SharedFields<'a> {
    let cn1_is_session = f
        .cn1_label
        .is_none_or(|l| panos_kv::label_is(&unescape_value(l), "sessionid"));
    // The firewall's own template puts the container id in
    // PanOSContainerName beside PanOSPODName; Strata Logging Service puts
    // the pod name there.
    let has_pod_fields = f.pod_name.is_some() || f.pod_namespace.is_some();
    let (container_id, pod_name) = if has_pod_fields {
        (f.container_id.or(f.container_name), f.pod_name)
    } else {
        (f.container_id, f.container_name)
    };
    panos_kv::SharedFields {
        serial: val(f.serial),
        hostname: val(f.dvchost),
        src: f.src.or(f.src_v6),
        dst: f.dst.or(f.dst_v6),
        src_port: f.spt,
        dst_port: f.dpt,
        src_nat: f.src_nat,
        dst_nat: f.dst_nat,
        src_nat_port: f.src_nat_port,
        dst_nat_port: f.dst_nat_port,
        src_user: val(f.suser),
        dst_user: val(f.duser),
        application: val(f.app),
        proto: f.proto,
        action: val(f.act),
        inbound_if: val(f.inbound_if),
        outbound_if: val(f.outbound_if),
        vsys: cs.vsys.or_else(|| val(f.vsys)),
        rule: cs.rule,
        rule_uuid: val(f.rule_uuid),
        src_zone: cs.src_zone,
        dst_zone: cs.dst_zone,
        session_id: f.session_id.or(f.cn1.filter(|_| cn1_is_session)),
        repeat_count: f.cnt,
        sequence: f.external_id,
        direction: direction(f),
        container_id: val(container_id),
        pod_namespace: val(f.pod_namespace.or(f.container_namespace)),
        pod_name: val(pod_name),
        user_agent: val(f.user_agent),
        file_hash: val(f.file_hash),
        sender: val(f.sender),
        subject: val(f.subject),
    }
}

/// `fname`, and `request` (PAN-OS's URL/Filename column): a file name for
/// the subtypes that log files, else the URL.
fn fill_file_or_url(ev: &mut ThreatEvent, f: &Fields<'_>, subtype: &str) {
    ev.file_name = panos_kv::owned(val(f.fname));
    if let Some(misc) = val(f.request) {
        let misc = panos_kv::unquote(&misc);
        if !misc.is_empty() {
            if panos_kv::misc_is_file(subtype) {
                ev.file_name.get_or_insert_with(|| misc.to_string());
            } else {
                ev.url_original = Some(misc.to_string());
            }
        }
    }
}

/// An optional extension value, unescaped.
fn val(v: Option<&str>) -> Option<Cow<'_, str>> {
    v.map(unescape_value)
}

/// `cs1`…`cs6` as PAN-OS's templates use them when a label is missing.
const DEFAULT_CS_LABELS: [&str; 6] = [
    "Rule",
    "URL Category",
    "Virtual System",
    "Source Zone",
    "Destination Zone",
    "LogProfile",
];

fn fill_threat(
    ev: &mut ThreatEvent,
    f: &Fields<'_>,
    header: &Header<'_>,
    subtype: &str,
    signature: &str,
    name: &str,
    url_category: Option<Str>,
) {
    if !subtype.is_empty() && !panos_kv::has_threat_id(subtype) {
        ev.threat_type = Some(Str::from(subtype.to_ascii_lowercase()));
    }
    let cat = f.cat.map(unescape_value).filter(|c| !c.trim().is_empty());
    let threat: Option<Cow<'_, str>> = cat.or_else(|| {
        [signature, name]
            .into_iter()
            .find(|s| panos_kv::has_threat_id(s))
            .map(Cow::Borrowed)
    });
    if let Some(threat) = threat {
        let (threat_name, threat_id) = panos_kv::split_threat_id(&threat);
        ev.threat_name = threat_name.map(Str::new);
        ev.threat_id = threat_id;
    }
    ev.threat_category = text(f.threat_category.map(unescape_value).as_deref())
        .or_else(|| url_category.filter(|_| subtype.eq_ignore_ascii_case("url")));

    let textual = f
        .severity
        .map(unescape_value)
        .and_then(|s| panos_kv::parse_severity(&s));
    let numeric = || panos_kv::parse_severity(&unescape_header(header.severity));
    match textual.or_else(numeric) {
        Some(level) => ev.set_severity(level),
        None if !header.severity.trim().is_empty() => ev.warn(
            "event.severity",
            format_args!(
                "`{}` is not a CEF severity",
                panos_kv::clip(header.severity)
            ),
        ),
        None => {}
    }
}

fn is_palo_alto(vendor: &str) -> bool {
    let v = vendor.trim();
    v.get(..9)
        .is_some_and(|p| p.eq_ignore_ascii_case("palo alto"))
        || v.eq_ignore_ascii_case("panw")
}

#[cfg(test)]
mod tests;
