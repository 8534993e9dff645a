//! Trigger filters: which events a playbook sees, checked natively before
//! any script runs.
//!
//! A trigger line is a comma-separated list of conditions that must all hold;
//! a playbook with several `// trigger:` lines runs when any line holds.
//!
//! ```text
//! // trigger: threat.type = spyware, threat.category = command-and-control, severity >= high
//! // trigger: threat.type = virus | wildfire-virus, destination.pod exists
//! // trigger: threat.name ~ /heartbleed|openssl/i, destination.port = 443 | 8443 | 9000..9100
//! // trigger: source.ip not in 10.244.0.0/16 | 10.96.0.0/12, destination.pod.namespace != kube-system
//! ```
//!
//! Operators: `=` (any of the `|` alternatives; strings compare without
//! letter case), `!=` (none of them), `>=` `>` `<=` `<` (numbers and
//! severity), `~` / `!~` (a `/regex/` with optional `i` flag), `in` / `not
//! in` (CIDRs), and the postfix `exists` / `absent`. A condition on a value
//! the event does not carry is false, except the negated ones (`!=`, `!~`,
//! `not in`, `absent`), which are true. Matching allocates nothing.

use std::net::IpAddr;

use ipnet::IpNet;
use regex::{Regex, RegexBuilder};
use riposte_firewall::{PodContext, Severity, ThreatEvent};

/// A parse error inside a trigger line: the byte offset into the text and a
/// message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TriggerError {
    pub offset: usize,
    pub message: String,
}

fn err<T>(offset: usize, message: impl Into<String>) -> Result<T, TriggerError> {
    Err(TriggerError {
        offset,
        message: message.into(),
    })
}

/// All of a playbook's trigger lines: it runs when any line matches.
#[derive(Debug, Clone, Default)]
pub struct Trigger {
    lines: Vec<TriggerLine>,
}

#[derive(Debug, Clone)]
pub struct TriggerLine {
    conds: Vec<Cond>,
    /// Values that are probably typos (`threat.type = vulnerabilty`), with
    /// their offsets: the checker reports them as warnings.
    pub warnings: Vec<(usize, String)>,
}

impl Trigger {
    pub fn push(&mut self, line: TriggerLine) {
        self.lines.push(line);
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    pub fn matches(&self, ev: &ThreatEvent) -> bool {
        self.lines
            .iter()
            .any(|line| line.conds.iter().all(|c| c.matches(ev)))
    }
}

/// Parses one trigger line's text (after `trigger:`).
pub fn parse_line(text: &str) -> Result<TriggerLine, TriggerError> {
    if text.trim().eq_ignore_ascii_case("any") {
        return Ok(TriggerLine {
            conds: Vec::new(),
            warnings: Vec::new(),
        });
    }
    let mut conds = Vec::new();
    let mut p = Parser {
        text,
        pos: 0,
        warnings: Vec::new(),
    };
    loop {
        p.skip_ws();
        if p.at_end() {
            return err(p.pos, "expected a condition (e.g. `threat.type = spyware`)");
        }
        conds.push(p.condition()?);
        p.skip_ws();
        if p.at_end() {
            break;
        }
        if !p.eat(",") {
            return err(p.pos, "expected `,` between conditions");
        }
    }
    Ok(TriggerLine {
        conds,
        warnings: p.warnings,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StrField {
    Kind,
    Module,
    Dataset,
    Action,
    ThreatType,
    ThreatCategory,
    ThreatName,
    Direction,
    Transport,
    Application,
    Protocol,
    SourceZone,
    DestinationZone,
    SourceUser,
    DestinationUser,
    ObserverHostname,
    ObserverSerial,
    RuleName,
    WebhookName,
    PanosType,
    PanosSubtype,
    Url,
    FileName,
}

impl StrField {
    fn get(self, ev: &ThreatEvent) -> Option<&str> {
        match self {
            StrField::Kind => Some(ev.kind.as_str()),
            StrField::Module => Some(ev.module.as_str()),
            StrField::Dataset => Some(&ev.dataset),
            StrField::Action => ev.action.as_deref(),
            StrField::ThreatType => ev.threat_type.as_deref(),
            StrField::ThreatCategory => ev.threat_category.as_deref(),
            StrField::ThreatName => ev.threat_name.as_deref(),
            StrField::Direction => ev.network_direction.map(|d| d.as_str()),
            StrField::Transport => ev.network_transport.as_deref(),
            StrField::Application => ev.network_application.as_deref(),
            StrField::Protocol => ev.network_protocol.as_deref(),
            StrField::SourceZone => ev.source_zone.as_deref(),
            StrField::DestinationZone => ev.destination_zone.as_deref(),
            StrField::SourceUser => ev.source_user.as_deref(),
            StrField::DestinationUser => ev.destination_user.as_deref(),
            StrField::ObserverHostname => ev.observer_hostname.as_deref(),
            StrField::ObserverSerial => ev.observer_serial_number.as_deref(),
            StrField::RuleName => ev.rule_name.as_deref(),
            StrField::WebhookName => ev.webhook_name.as_deref(),
            StrField::PanosType => ev.panos_type.as_deref(),
            StrField::PanosSubtype => ev.panos_subtype.as_deref(),
            StrField::Url => ev.url_original.as_deref(),
            StrField::FileName => ev.file_name.as_deref(),
        }
    }

    /// The values a closed field accepts, to catch typos at load.
    fn allowed(self) -> Option<&'static [&'static str]> {
        match self {
            StrField::Kind => Some(&["alert", "event", "webhook", "schedule"]),
            StrField::Module => Some(&["panos", "suricata", "riposte"]),
            StrField::Direction => Some(&["client-to-server", "server-to-client"]),
            _ => None,
        }
    }

    /// The field whose values the checker knows (open domains: a value
    /// outside the list only warns).
    fn domain_path(self) -> Option<&'static str> {
        match self {
            StrField::ThreatType => Some("threat.type"),
            StrField::ThreatCategory => Some("threat.category"),
            StrField::Action => Some("action"),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NumField {
    Severity,
    ThreatId,
    SourcePort,
    DestinationPort,
}

impl NumField {
    fn get(self, ev: &ThreatEvent) -> Option<u64> {
        match self {
            NumField::Severity => ev
                .threat_severity
                .map(|s| u64::from(s.score()))
                .or(ev.severity.map(u64::from)),
            NumField::ThreatId => ev.threat_id,
            NumField::SourcePort => ev.source_port.map(u64::from),
            NumField::DestinationPort => ev.destination_port.map(u64::from),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IpField {
    Source,
    Destination,
    SourceNat,
    DestinationNat,
}

impl IpField {
    fn get(self, ev: &ThreatEvent) -> Option<IpAddr> {
        match self {
            IpField::Source => ev.source_ip,
            IpField::Destination => ev.destination_ip,
            IpField::SourceNat => ev.source_nat_ip,
            IpField::DestinationNat => ev.destination_nat_ip,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Source,
    Destination,
}

impl Side {
    fn pod(self, ev: &ThreatEvent) -> Option<&PodContext> {
        match self {
            Side::Source => ev.source_pod.as_deref(),
            Side::Destination => ev.destination_pod.as_deref(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PodField {
    Namespace,
    Name,
    OwnerKind,
    OwnerName,
    Node,
    ServiceAccount,
    Phase,
}

impl PodField {
    fn get(self, pod: &PodContext) -> Option<&str> {
        match self {
            PodField::Namespace => Some(&pod.namespace),
            PodField::Name => Some(&pod.name),
            PodField::OwnerKind => pod.owner_kind.as_deref(),
            PodField::OwnerName => pod.owner_name.as_deref(),
            PodField::Node => pod.node.as_deref(),
            PodField::ServiceAccount => pod.service_account.as_deref(),
            PodField::Phase => pod.phase.as_deref(),
        }
    }
}

/// Where a condition reads its value.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Field {
    Str(StrField),
    Num(NumField),
    Ip(IpField),
    Pod(Side),
    PodStr(Side, PodField),
    /// `labels.<key>` (false) or `namespace_labels.<key>` (true).
    PodLabel(Side, bool, Box<str>),
}

impl Field {
    fn lookup(name: &str) -> Option<Field> {
        let name = name
            .strip_prefix("event.")
            .filter(|rest| matches!(*rest, "kind" | "module" | "dataset" | "action" | "severity"))
            .unwrap_or(name);
        Some(match name {
            "kind" => Field::Str(StrField::Kind),
            "module" => Field::Str(StrField::Module),
            "dataset" => Field::Str(StrField::Dataset),
            "action" => Field::Str(StrField::Action),
            "threat.type" => Field::Str(StrField::ThreatType),
            "threat.category" => Field::Str(StrField::ThreatCategory),
            "threat.name" => Field::Str(StrField::ThreatName),
            "network.direction" => Field::Str(StrField::Direction),
            "network.transport" => Field::Str(StrField::Transport),
            "network.application" => Field::Str(StrField::Application),
            "network.protocol" => Field::Str(StrField::Protocol),
            "source.zone" => Field::Str(StrField::SourceZone),
            "destination.zone" => Field::Str(StrField::DestinationZone),
            "source.user" => Field::Str(StrField::SourceUser),
            "destination.user" => Field::Str(StrField::DestinationUser),
            "observer.hostname" => Field::Str(StrField::ObserverHostname),
            "observer.serial_number" => Field::Str(StrField::ObserverSerial),
            "rule.name" => Field::Str(StrField::RuleName),
            "webhook.name" => Field::Str(StrField::WebhookName),
            "panos.type" => Field::Str(StrField::PanosType),
            "panos.subtype" => Field::Str(StrField::PanosSubtype),
            "url.original" => Field::Str(StrField::Url),
            "file.name" => Field::Str(StrField::FileName),
            "severity" | "threat.severity" => Field::Num(NumField::Severity),
            "threat.id" => Field::Num(NumField::ThreatId),
            "source.port" => Field::Num(NumField::SourcePort),
            "destination.port" => Field::Num(NumField::DestinationPort),
            "source.ip" => Field::Ip(IpField::Source),
            "destination.ip" => Field::Ip(IpField::Destination),
            "source.nat.ip" => Field::Ip(IpField::SourceNat),
            "destination.nat.ip" => Field::Ip(IpField::DestinationNat),
            "source.pod" => Field::Pod(Side::Source),
            "destination.pod" => Field::Pod(Side::Destination),
            _ => return Field::lookup_pod(name),
        })
    }

    fn lookup_pod(name: &str) -> Option<Field> {
        let (side, rest) = if let Some(rest) = name.strip_prefix("source.pod.") {
            (Side::Source, rest)
        } else if let Some(rest) = name.strip_prefix("destination.pod.") {
            (Side::Destination, rest)
        } else {
            return None;
        };
        if let Some(key) = rest.strip_prefix("labels.") {
            return (!key.is_empty()).then(|| Field::PodLabel(side, false, key.into()));
        }
        if let Some(key) = rest.strip_prefix("namespace_labels.") {
            return (!key.is_empty()).then(|| Field::PodLabel(side, true, key.into()));
        }
        Some(Field::PodStr(
            side,
            match rest {
                "namespace" => PodField::Namespace,
                "name" => PodField::Name,
                "owner_kind" => PodField::OwnerKind,
                "owner_name" => PodField::OwnerName,
                "node" => PodField::Node,
                "service_account" => PodField::ServiceAccount,
                "phase" => PodField::Phase,
                _ => return None,
            },
        ))
    }

    fn str_value<'e>(&self, ev: &'e ThreatEvent) -> Option<&'e str> {
        match self {
            Field::Str(f) => f.get(ev),
            Field::PodStr(side, f) => side.pod(ev).and_then(|p| f.get(p)),
            Field::PodLabel(side, ns, key) => side.pod(ev).and_then(|p| {
                let labels = if *ns { &p.namespace_labels } else { &p.labels };
                labels.get(&**key).map(String::as_str)
            }),
            _ => None,
        }
    }

    fn present(&self, ev: &ThreatEvent) -> bool {
        match self {
            Field::Num(f) => f.get(ev).is_some(),
            Field::Ip(f) => f.get(ev).is_some(),
            Field::Pod(side) => side.pod(ev).is_some(),
            _ => self.str_value(ev).is_some(),
        }
    }

    fn is_stringy(&self) -> bool {
        matches!(
            self,
            Field::Str(_) | Field::PodStr(..) | Field::PodLabel(..)
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmp {
    Ge,
    Gt,
    Le,
    Lt,
}

#[derive(Debug, Clone)]
enum Test {
    /// Any of the values (`=`), or none of them when negated (`!=`).
    StrIn(Vec<Box<str>>),
    Regex(Regex),
    NumIn(Vec<(u64, u64)>),
    NumCmp(Cmp, u64),
    IpIn(Vec<IpNet>),
    Exists,
}

#[derive(Debug, Clone)]
struct Cond {
    field: Field,
    test: Test,
    negate: bool,
}

impl Cond {
    fn new(field: Field, test: Test, negate: bool) -> Cond {
        Cond {
            field,
            test,
            negate,
        }
    }

    fn matches(&self, ev: &ThreatEvent) -> bool {
        let hit = match &self.test {
            Test::Exists => self.field.present(ev),
            Test::StrIn(values) => match self.field.str_value(ev) {
                Some(v) => values.iter().any(|want| v.eq_ignore_ascii_case(want)),
                None => false,
            },
            Test::Regex(re) => self.field.str_value(ev).is_some_and(|v| re.is_match(v)),
            Test::NumIn(ranges) => match self.num(ev) {
                Some(n) => ranges.iter().any(|&(lo, hi)| lo <= n && n <= hi),
                None => false,
            },
            Test::NumCmp(cmp, want) => self.num(ev).is_some_and(|n| match cmp {
                Cmp::Ge => n >= *want,
                Cmp::Gt => n > *want,
                Cmp::Le => n <= *want,
                Cmp::Lt => n < *want,
            }),
            Test::IpIn(nets) => match &self.field {
                Field::Ip(f) => f
                    .get(ev)
                    .is_some_and(|ip| nets.iter().any(|n| n.contains(&ip))),
                _ => false,
            },
        };
        hit != self.negate
    }

    fn num(&self, ev: &ThreatEvent) -> Option<u64> {
        match &self.field {
            Field::Num(f) => f.get(ev),
            _ => None,
        }
    }
}

/// `|`-separated values with their offsets.
type Values<'a> = Vec<(usize, &'a str)>;

struct Parser<'a> {
    text: &'a str,
    pos: usize,
    warnings: Vec<(usize, String)>,
}

impl<'a> Parser<'a> {
    fn rest(&self) -> &'a str {
        &self.text[self.pos..]
    }

    fn at_end(&self) -> bool {
        self.pos >= self.text.len()
    }

    fn skip_ws(&mut self) {
        let rest = self.rest();
        self.pos += rest.len() - rest.trim_start().len();
    }

    fn eat(&mut self, s: &str) -> bool {
        if self.rest().starts_with(s) {
            self.pos += s.len();
            true
        } else {
            false
        }
    }

    /// Eats a word operator (`in`, `not`, `exists`) only when a space or the
    /// end follows, so that a value like `internal` is not mistaken for one.
    fn eat_word(&mut self, word: &str) -> bool {
        let rest = self.rest();
        if rest.len() >= word.len()
            && rest[..word.len()].eq_ignore_ascii_case(word)
            && rest[word.len()..]
                .chars()
                .next()
                .is_none_or(|c| c.is_whitespace() || c == ',')
        {
            self.pos += word.len();
            true
        } else {
            false
        }
    }

    fn condition(&mut self) -> Result<Cond, TriggerError> {
        let (field, name) = self.field()?;
        self.skip_ws();
        let op_pos = self.pos;
        if self.eat_word("exists") {
            return Ok(Cond::new(field, Test::Exists, false));
        }
        if self.eat_word("absent") {
            return Ok(Cond::new(field, Test::Exists, true));
        }
        if self.eat("!~") {
            return self.regex(field, true);
        }
        if self.eat("~") {
            return self.regex(field, false);
        }
        if self.eat_word("not") {
            self.skip_ws();
            if !self.eat_word("in") {
                return err(self.pos, "expected `in` after `not`");
            }
            return self.cidrs(field, true, op_pos);
        }
        if self.eat_word("in") {
            return self.cidrs(field, false, op_pos);
        }
        if let Some(cmp) = self.cmp() {
            let Field::Num(num) = field else {
                return err(
                    op_pos,
                    format!("`{name}` is not a number: use = or != (or ~ for a regex)"),
                );
            };
            return Ok(Cond::new(field, self.comparison(num, cmp)?, false));
        }
        let negate = if self.eat("!=") {
            true
        } else if self.eat("==") || self.eat("=") {
            false
        } else {
            return err(
                op_pos,
                "expected an operator: = != >= > <= < ~ !~ in `not in` exists absent",
            );
        };
        let (_, values) = self.values()?;
        if let Field::Str(f) = &field {
            if let Some(path) = f.domain_path() {
                for (pos, v) in &values {
                    if let Some((_, msg)) =
                        crate::decide::playbook::check::domains::check_value(path, v)
                    {
                        self.warnings.push((*pos, format!("trigger: {msg}")));
                    }
                }
            }
        }
        let test = one_of(&field, name, op_pos, &values)?;
        Ok(Cond::new(field, test, negate))
    }

    /// The field name a condition starts with, and the field it names.
    fn field(&mut self) -> Result<(Field, &'a str), TriggerError> {
        let start = self.pos;
        let len = self
            .rest()
            .find(|c: char| c.is_whitespace() || matches!(c, '=' | '!' | '<' | '>' | '~' | ','))
            .unwrap_or(self.rest().len());
        let name = &self.rest()[..len];
        if name.is_empty() {
            return err(start, "expected a field name (e.g. `threat.type`)");
        }
        let Some(field) = Field::lookup(name) else {
            return err(
                start,
                format!("unknown trigger field `{name}` (see playbooks/README.md for the list)"),
            );
        };
        self.pos += len;
        Ok((field, name))
    }

    fn cmp(&mut self) -> Option<Cmp> {
        if self.eat(">=") {
            Some(Cmp::Ge)
        } else if self.eat("<=") {
            Some(Cmp::Le)
        } else if self.eat(">") {
            Some(Cmp::Gt)
        } else if self.eat("<") {
            Some(Cmp::Lt)
        } else {
            None
        }
    }

    /// The one number after `>=`, `>`, `<=` or `<`.
    fn comparison(&mut self, num: NumField, cmp: Cmp) -> Result<Test, TriggerError> {
        let (vpos, values) = self.values()?;
        if values.len() != 1 {
            return err(vpos, "a comparison takes exactly one value");
        }
        let (lo, hi) = parse_num(num, values[0].1, values[0].0)?;
        if lo != hi {
            return err(values[0].0, "a comparison takes a number, not a range");
        }
        Ok(Test::NumCmp(cmp, lo))
    }

    /// `|`-separated values up to the next `,` or the end.
    fn values(&mut self) -> Result<(usize, Values<'a>), TriggerError> {
        self.skip_ws();
        let start = self.pos;
        let len = self.rest().find(',').unwrap_or(self.rest().len());
        let chunk = &self.rest()[..len];
        self.pos += len;
        let mut out = Vec::new();
        let mut offset = start;
        for part in chunk.split('|') {
            let trimmed = part.trim();
            let lead = part.len() - part.trim_start().len();
            if trimmed.is_empty() {
                return err(offset + lead, "expected a value");
            }
            if trimmed.contains(char::is_whitespace) {
                return err(offset + lead, format!("`{trimmed}` has a space inside: separate alternatives with `|` and conditions with `,`"));
            }
            out.push((offset + lead, trimmed));
            offset += part.len() + 1;
        }
        Ok((start, out))
    }

    fn regex(&mut self, field: Field, negate: bool) -> Result<Cond, TriggerError> {
        self.skip_ws();
        let start = self.pos;
        if !field.is_stringy() {
            return err(start, "a regex applies to text fields only");
        }
        if !self.eat("/") {
            return err(
                start,
                "expected a regex between slashes, e.g. /heartbleed/i",
            );
        }
        let mut pattern = String::new();
        let mut escaped = false;
        let mut closed = false;
        for (i, c) in self.rest().char_indices() {
            if escaped {
                if c != '/' {
                    pattern.push('\\');
                }
                pattern.push(c);
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '/' {
                self.pos += i + 1;
                closed = true;
                break;
            } else {
                pattern.push(c);
            }
        }
        if !closed {
            return err(start, "unterminated regex: expected a closing `/`");
        }
        let mut builder = RegexBuilder::new(&pattern);
        while let Some(flag) = self
            .rest()
            .chars()
            .next()
            .filter(|c| c.is_ascii_alphabetic())
        {
            match flag {
                'i' => {
                    builder.case_insensitive(true);
                }
                other => return err(self.pos, format!("unknown regex flag `{other}` (only `i`)")),
            }
            self.pos += 1;
        }
        builder.size_limit(1 << 20);
        let re = builder.build().map_err(|e| TriggerError {
            offset: start,
            message: format!("invalid regex: {e}"),
        })?;
        Ok(Cond {
            field,
            test: Test::Regex(re),
            negate,
        })
    }

    fn cidrs(&mut self, field: Field, negate: bool, op_pos: usize) -> Result<Cond, TriggerError> {
        if !matches!(field, Field::Ip(_)) {
            return err(op_pos, "`in` applies to address fields (source.ip, destination.ip, …); use = with `|` for alternatives");
        }
        let (_, values) = self.values()?;
        let mut nets = Vec::with_capacity(values.len());
        for (pos, v) in values {
            nets.push(parse_net(v, pos)?);
        }
        Ok(Cond {
            field,
            test: Test::IpIn(nets),
            negate,
        })
    }
}

/// The test of `field = values` (or `!=`): the values checked as the
/// field's kind requires.
fn one_of(field: &Field, name: &str, op_pos: usize, values: &Values) -> Result<Test, TriggerError> {
    Ok(match field {
        Field::Num(num) => {
            let mut ranges = Vec::with_capacity(values.len());
            for (pos, v) in values {
                ranges.push(parse_num(*num, v, *pos)?);
            }
            Test::NumIn(ranges)
        }
        Field::Ip(_) => {
            let mut nets = Vec::with_capacity(values.len());
            for (pos, v) in values {
                nets.push(parse_net(v, *pos)?);
            }
            Test::IpIn(nets)
        }
        Field::Pod(_) => {
            return err(op_pos, format!("`{name}` takes `exists` or `absent`; compare its fields instead (e.g. `{name}.namespace = shop`)"));
        }
        Field::Str(f) => {
            if let Some(allowed) = f.allowed() {
                for (pos, v) in values {
                    if !allowed.iter().any(|a| a.eq_ignore_ascii_case(v)) {
                        return err(
                            *pos,
                            format!(
                                "`{v}` is not a valid {name} (expected one of {})",
                                allowed.join(", ")
                            ),
                        );
                    }
                }
            }
            Test::StrIn(values.iter().map(|(_, v)| Box::from(*v)).collect())
        }
        Field::PodStr(..) | Field::PodLabel(..) => {
            Test::StrIn(values.iter().map(|(_, v)| Box::from(*v)).collect())
        }
    })
}

fn parse_net(v: &str, pos: usize) -> Result<IpNet, TriggerError> {
    crate::decide::intent::parse_cidr(v).map_err(|e| TriggerError {
        offset: pos,
        message: e.0,
    })
}

fn parse_num(field: NumField, v: &str, pos: usize) -> Result<(u64, u64), TriggerError> {
    if field == NumField::Severity {
        if let Some(s) = Severity::parse(v) {
            let n = u64::from(s.score());
            return Ok((n, n));
        }
        return match v.parse::<u8>().ok().and_then(Severity::from_score) {
            Some(s) => Ok((u64::from(s.score()), u64::from(s.score()))),
            None => err(
                pos,
                format!(
                    "`{v}` is not a severity (informational, low, medium, high, critical or 1-5)"
                ),
            ),
        };
    }
    let max = match field {
        NumField::SourcePort | NumField::DestinationPort => u64::from(u16::MAX),
        _ => u64::MAX,
    };
    let one = |s: &str, at: usize| -> Result<u64, TriggerError> {
        match s.parse::<u64>() {
            Ok(n) if n <= max => Ok(n),
            _ => err(at, format!("`{s}` is not a number in 0..={max}")),
        }
    };
    match v.split_once("..") {
        Some((lo, hi)) => {
            let (lo, hi) = (one(lo, pos)?, one(hi, pos + lo.len() + 2)?);
            if lo > hi {
                return err(pos, format!("range `{v}` is empty"));
            }
            Ok((lo, hi))
        }
        None => {
            let n = one(v, pos)?;
            Ok((n, n))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use super::*;

    /// The runtime tests' flagship C2 event, its pod's namespace labelled
    /// for the namespace triggers.
    fn c2_event() -> ThreatEvent {
        let mut ev = crate::decide::playbook::runtime::testing::c2_event();
        if let Some(pod) = &ev.source_pod {
            let mut pod = PodContext::clone(pod);
            pod.namespace_labels = BTreeMap::from([("team".into(), "payments".into())]);
            ev.source_pod = Some(Arc::new(pod));
        }
        ev
    }

    fn trig(lines: &[&str]) -> Trigger {
        let mut t = Trigger::default();
        for l in lines {
            t.push(parse_line(l).unwrap_or_else(|e| panic!("{l}: {e:?}")));
        }
        t
    }

    #[test]
    fn the_c2_trigger_matches_and_others_do_not() {
        let ev = c2_event();
        assert!(trig(&[
            "threat.type = spyware, threat.category = command-and-control, severity >= high"
        ])
        .matches(&ev));
        assert!(!trig(&["threat.type = virus | wildfire-virus"]).matches(&ev));
        assert!(
            trig(&["threat.type = virus", "severity = critical"]).matches(&ev),
            "lines are alternatives"
        );
        assert!(trig(&["any"]).matches(&ev));
    }

    #[test]
    fn strings_compare_without_case_and_negations_match_absent_values() {
        let ev = c2_event();
        assert!(trig(&["threat.type = SPYWARE"]).matches(&ev));
        assert!(trig(&["threat.type != url"]).matches(&ev));
        assert!(
            trig(&["kind = alert, module = panos, event.action = reset-both | drop"]).matches(&ev)
        );
        assert!(!trig(&["file.name = x"]).matches(&ev));
        assert!(trig(&["file.name != x"]).matches(&ev));
        assert!(trig(&["file.name absent, threat.name exists"]).matches(&ev));
    }

    #[test]
    fn numbers_ranges_and_severity_names() {
        let ev = c2_event();
        assert!(trig(&["threat.id = 1 | 86000..87000"]).matches(&ev));
        assert!(!trig(&["threat.id = 1..2"]).matches(&ev));
        assert!(trig(&["destination.port < 1024, severity > 4"]).matches(&ev));
        assert!(trig(&["severity = 5"]).matches(&ev));
        assert!(!trig(&["severity <= medium"]).matches(&ev));
    }

    #[test]
    fn cidrs_and_regexes() {
        let ev = c2_event();
        assert!(trig(&[
            "source.ip in 10.244.0.0/16, destination.ip not in 10.0.0.0/8 | 192.168.0.0/16"
        ])
        .matches(&ev));
        assert!(trig(&["destination.ip = 203.0.113.9"]).matches(&ev));
        assert!(trig(&["threat.name ~ /cobalt\\s+strike/i"]).matches(&ev));
        assert!(
            !trig(&["threat.name ~ /cobalt/"]).matches(&ev),
            "case-sensitive without i"
        );
        assert!(
            trig(&["threat.name !~ /a,b/"]).matches(&ev),
            "commas inside a regex"
        );
    }

    #[test]
    fn pod_fields_and_labels() {
        let ev = c2_event();
        assert!(trig(&["source.pod exists, destination.pod absent"]).matches(&ev));
        assert!(
            trig(&["source.pod.namespace = shop, source.pod.labels.app = checkout"]).matches(&ev)
        );
        assert!(trig(&["source.pod.namespace_labels.team = payments"]).matches(&ev));
        assert!(
            trig(&["source.pod.labels.app exists, source.pod.labels.tier absent"]).matches(&ev)
        );
        assert!(!trig(&["destination.pod.namespace = shop"]).matches(&ev));
        assert!(trig(&["destination.pod.namespace != kube-system"]).matches(&ev));
    }

    #[test]
    fn errors_point_at_the_problem() {
        let cases = [
            ("threat.typo = x", 0, "unknown trigger field"),
            ("threat.type = spyware severity >= high", 14, "space inside"),
            ("kind = alrt", 7, "not a valid kind"),
            ("severity >= huge", 12, "not a severity"),
            ("source.ip in 10.0.0.0/33", 13, "not a CIDR"),
            ("threat.name ~ /(/", 14, "invalid regex"),
            ("threat.type >= 3", 12, "not a number"),
            ("threat.type = a,", 16, "expected a condition"),
            ("destination.port = 70000", 19, "not a number"),
            ("threat.type ?? x", 12, "expected an operator"),
            ("source.pod = x", 11, "exists"),
        ];
        for (text, offset, msg) in cases {
            let e = parse_line(text).expect_err(text);
            assert_eq!(e.offset, offset, "{text}: {e:?}");
            assert!(e.message.contains(msg), "{text}: {}", e.message);
        }
    }
}
