//! Riposte's PAN-OS log generator: realistic syslog for demos, benchmarks
//! and end-to-end tests, behind `riposte gen`.
//!
//! It is a crate of its own rather than a module of the engine because
//! nothing in it serves: the service never generates logs, and the
//! benchmarks and tools that do should not have to build the service to get
//! them. The engine depends on it only for the `riposte gen` command
//! (`engine/src/cli/gen.rs` turns the command line into [`GenOptions`]).
//!
//! A [`Generator`] is a seeded, deterministic stream of PAN-OS 10.1–11.1
//! THREAT and TRAFFIC lines from a simulated Kubernetes cluster protected by
//! CN-Series firewalls: pods in a pod CIDR talking to each other and to the
//! internet, internet clients reaching exposed services, scanners, attacks,
//! and a few compromised pods talking to a stable set of C2 servers. The
//! pods it used are exposed ([`Generator::pods`]) so that a test can load
//! the same cluster into a Kubernetes API stand-in.
//!
//! Layout, from what the simulated world holds to where lines go:
//! - `catalog`: apps, threat signatures, URL sites and countries.
//! - `pods`: the simulated cluster (nodes, workloads, pod addresses).
//! - `world`: firewalls, internet hosts and C2 servers.
//! - `events`: what happens on each line (the traffic and threat mix).
//! - `lines`, `clock`: how a line is written (columns, timestamps).
//! - `rand_ext`: small helpers over the seeded random generator.
//! - [`send`], [`pace`]: where lines go (stdout, file, UDP or TCP syslog)
//!   and how fast.
//! - [`error`]: what can be wrong with the options.

mod catalog;
mod clock;
pub mod error;
mod events;
mod lines;
pub mod pace;
mod pods;
mod rand_ext;
pub mod send;
mod world;

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, TimeZone, Utc};
use ipnet::Ipv4Net;
use rand::rngs::SmallRng;
use rand::SeedableRng;

pub use pods::Pod;
pub use world::C2Server;

pub use error::GenError;

/// The syslog header written before each CSV payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Header {
    /// The bare CSV, as in PAN-OS's own log exports.
    None,
    /// `<14>Jul  4 09:50:36 cn-ngfw-1 1,…` (RFC 3164, PAN-OS's default).
    #[default]
    Bsd,
    /// `<14>1 2025-07-04T09:50:36.624+00:00 cn-ngfw-1 - - - - 1,…`.
    Rfc5424,
}

impl FromStr for Header {
    // A String on purpose: clap's value parser prints it as the usage error
    // of the command-line flag, and nothing else matches on it.
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "none" => Ok(Header::None),
            "bsd" | "rfc3164" => Ok(Header::Bsd),
            "rfc5424" | "ietf" => Ok(Header::Rfc5424),
            other => Err(format!(
                "unknown header `{other}` (expected bsd, rfc5424 or none)"
            )),
        }
    }
}

/// The PAN-OS release a firewall runs; it decides how many columns its
/// lines have (PAN appends new columns at the end of each release).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PanosVersion {
    /// 10.1/10.2: THREAT ends at Application Sanctioned State (120
    /// columns), TRAFFIC likewise (114).
    V10_1,
    /// 11.0: adds Cloud Report ID to THREAT (121), Offloaded to TRAFFIC (115).
    V11_0,
    /// 11.1: adds Cluster Name and Flow Type (THREAT 123, TRAFFIC 117).
    V11_1,
}

impl PanosVersion {
    pub const ALL: [PanosVersion; 3] = [
        PanosVersion::V10_1,
        PanosVersion::V11_0,
        PanosVersion::V11_1,
    ];

    /// The sixth column (FUTURE_USE), which real devices fill with the
    /// config version: 0x0A01 for 10.1, 0x0B00 for 11.0, 0x0B01 for 11.1.
    pub fn config_version(self) -> &'static str {
        match self {
            PanosVersion::V10_1 => "2561",
            PanosVersion::V11_0 => "2816",
            PanosVersion::V11_1 => "2817",
        }
    }

    pub fn threat_columns(self) -> usize {
        match self {
            PanosVersion::V10_1 => 120,
            PanosVersion::V11_0 => 121,
            PanosVersion::V11_1 => 123,
        }
    }

    pub fn traffic_columns(self) -> usize {
        match self {
            PanosVersion::V10_1 => 114,
            PanosVersion::V11_0 => 115,
            PanosVersion::V11_1 => 117,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PanosVersion::V10_1 => "10.1",
            PanosVersion::V11_0 => "11.0",
            PanosVersion::V11_1 => "11.1",
        }
    }
}

impl FromStr for PanosVersion {
    // A String on purpose: clap's value parser prints it as the usage error
    // of the command-line flag, and nothing else matches on it.
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "10.1" | "10.2" => Ok(PanosVersion::V10_1),
            "11.0" => Ok(PanosVersion::V11_0),
            "11.1" | "11.2" => Ok(PanosVersion::V11_1),
            other => Err(format!(
                "unsupported PAN-OS version `{other}` (expected 10.1, 10.2, 11.0, 11.1 or 11.2)"
            )),
        }
    }
}

/// The THREAT subtypes (`Threat/Content Type` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ThreatSubtype {
    Url,
    Virus,
    Spyware,
    Vulnerability,
    File,
    Scan,
    Flood,
    Packet,
    Data,
    Wildfire,
    WildfireVirus,
}

impl ThreatSubtype {
    pub const ALL: [ThreatSubtype; 11] = [
        ThreatSubtype::Url,
        ThreatSubtype::Virus,
        ThreatSubtype::Spyware,
        ThreatSubtype::Vulnerability,
        ThreatSubtype::File,
        ThreatSubtype::Scan,
        ThreatSubtype::Flood,
        ThreatSubtype::Packet,
        ThreatSubtype::Data,
        ThreatSubtype::Wildfire,
        ThreatSubtype::WildfireVirus,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ThreatSubtype::Url => "url",
            ThreatSubtype::Virus => "virus",
            ThreatSubtype::Spyware => "spyware",
            ThreatSubtype::Vulnerability => "vulnerability",
            ThreatSubtype::File => "file",
            ThreatSubtype::Scan => "scan",
            ThreatSubtype::Flood => "flood",
            ThreatSubtype::Packet => "packet",
            ThreatSubtype::Data => "data",
            ThreatSubtype::Wildfire => "wildfire",
            ThreatSubtype::WildfireVirus => "wildfire-virus",
        }
    }
}

/// The TRAFFIC subtypes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TrafficSubtype {
    Start,
    End,
    Drop,
    Deny,
}

impl TrafficSubtype {
    pub fn as_str(self) -> &'static str {
        match self {
            TrafficSubtype::Start => "start",
            TrafficSubtype::End => "end",
            TrafficSubtype::Drop => "drop",
            TrafficSubtype::Deny => "deny",
        }
    }
}

/// What a generated line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LineKind {
    Traffic(TrafficSubtype),
    Threat(ThreatSubtype),
}

impl fmt::Display for LineKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LineKind::Traffic(s) => write!(f, "TRAFFIC/{}", s.as_str()),
            LineKind::Threat(s) => write!(f, "THREAT/{}", s.as_str()),
        }
    }
}

/// How the generator behaves. Every field has a sensible default.
#[derive(Debug, Clone, PartialEq)]
pub struct GenOptions {
    /// The same seed and options give the same lines.
    pub seed: u64,
    /// How many pods the simulated cluster has.
    pub pods: usize,
    /// Where pod addresses come from; each node gets a /24 of it.
    pub pod_cidr: Ipv4Net,
    /// How many pods talk to C2 servers (the first is `shop/checkout`).
    pub compromised_pods: usize,
    /// How many C2 servers they talk to.
    pub c2_servers: usize,
    /// Share of lines that are C2 traffic: spyware, command-and-control,
    /// critical, between a compromised pod and a C2 server.
    pub c2_share: f64,
    /// Share of lines that are other real threats (virus, vulnerability,
    /// scan, flood, WildFire, …).
    pub threat_share: f64,
    /// Share of lines that are URL filtering logs (informational).
    pub url_share: f64,
    // The rest is TRAFFIC.
    pub header: Header,
    /// One firewall per entry; lines are spread evenly over them.
    pub versions: Vec<PanosVersion>,
    /// CN-Series Cluster Name column (11.1 lines).
    pub cluster: String,
    /// Generated time of the first line.
    pub start: DateTime<Utc>,
    /// How fast simulated time runs, in lines per second of log time.
    pub events_per_sec: f64,
}

impl Default for GenOptions {
    fn default() -> Self {
        GenOptions {
            seed: 1,
            pods: 200,
            pod_cidr: Ipv4Net::new_assert(std::net::Ipv4Addr::new(10, 244, 0, 0), 16),
            compromised_pods: 3,
            c2_servers: 5,
            c2_share: 0.002,
            threat_share: 0.03,
            url_share: 0.2,
            header: Header::Bsd,
            versions: PanosVersion::ALL.to_vec(),
            cluster: "prod-eu-1".to_owned(),
            start: Utc
                .with_ymd_and_hms(2025, 1, 15, 8, 0, 0)
                .single()
                .unwrap_or_default(),
            events_per_sec: 200.0,
        }
    }
}

impl GenOptions {
    fn validate(&self) -> Result<(), GenError> {
        let bad = |option: &'static str, message: String| {
            Err(GenError::InvalidOption { option, message })
        };
        for (key, v) in [
            ("c2_share", self.c2_share),
            ("threat_share", self.threat_share),
            ("url_share", self.url_share),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return bad(key, format!("{v} is not a share between 0 and 1"));
            }
        }
        let sum = self.c2_share + self.threat_share + self.url_share;
        if sum > 1.0 + 1e-9 {
            return bad(
                "c2_share",
                format!("C2, threat and URL shares add up to {sum}, more than 1"),
            );
        }
        if self.pods == 0 {
            return bad("pods", "at least one pod is needed".to_owned());
        }
        if self.c2_share > 0.0 && (self.compromised_pods == 0 || self.c2_servers == 0) {
            return bad(
                "c2_share",
                "C2 traffic needs at least one compromised pod and one C2 server".to_owned(),
            );
        }
        if self.compromised_pods > self.pods {
            return bad(
                "compromised_pods",
                format!(
                    "{} compromised pods but only {} pods",
                    self.compromised_pods, self.pods
                ),
            );
        }
        if self.versions.is_empty() {
            return bad(
                "versions",
                "at least one firewall version is needed".to_owned(),
            );
        }
        if self
            .cluster
            .bytes()
            .any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r'))
        {
            return bad("cluster", format!("{:?} would break the CSV", self.cluster));
        }
        if !(self.events_per_sec.is_finite() && self.events_per_sec > 0.0) {
            return bad(
                "events_per_sec",
                format!("{} is not a positive rate", self.events_per_sec),
            );
        }
        if !(1970..=9999).contains(&self.start.year()) {
            return bad(
                "start",
                format!("{} is outside the years 1970–9999", self.start),
            );
        }
        Ok(())
    }
}

/// One generated line and what it is.
#[derive(Debug, Clone, Copy)]
pub struct Line<'a> {
    /// The whole line (header included), without a newline.
    pub text: &'a str,
    pub kind: LineKind,
    /// Whether this is a C2 line from the C2 share.
    pub c2: bool,
    /// The pod named in the CN-Series columns, if any.
    pub pod: Option<&'a Pod>,
}

/// Cumulative thresholds of the line mix, compared with one uniform draw.
#[derive(Debug, Clone, Copy)]
struct Mix {
    c2: f64,
    threat: f64,
    url: f64,
}

/// A seeded stream of PAN-OS lines. See the module docs.
#[derive(Debug)]
pub struct Generator {
    rng: SmallRng,
    mix: Mix,
    header: Header,
    cluster: String,
    pods: Vec<Pod>,
    compromised: Vec<usize>,
    /// Pods that serve something inside the cluster, CoreDNS apart.
    servers: Vec<usize>,
    coredns: Vec<usize>,
    /// Pods reachable from the internet.
    exposed: Vec<usize>,
    world: world::World,
    now: i64,
    mean_step_ms: f64,
    buf: Vec<u8>,
    stamps: clock::Stamps,
    /// URL/Filename and threat name of the line being built.
    misc: String,
    name: String,
}

impl Generator {
    pub fn new(opts: GenOptions) -> Result<Generator, GenError> {
        opts.validate()?;
        let mut rng = SmallRng::seed_from_u64(opts.seed);
        let pods = pods::build(&mut rng, opts.pods, opts.pod_cidr)?;
        let compromised = pods::compromised(&mut rng, &pods, opts.compromised_pods);
        let world = world::World::build(&mut rng, &opts.versions, opts.c2_servers.max(1));
        let by = |f: &dyn Fn(&Pod) -> bool| -> Vec<usize> {
            (0..pods.len()).filter(|&i| f(&pods[i])).collect()
        };
        let servers = by(&|p| p.workload().port != 0 && p.workload != pods::COREDNS);
        let coredns = by(&|p| p.workload == pods::COREDNS);
        let exposed = by(&|p| p.workload().exposed);
        Ok(Generator {
            rng,
            mix: Mix {
                c2: opts.c2_share,
                threat: opts.c2_share + opts.threat_share,
                url: opts.c2_share + opts.threat_share + opts.url_share,
            },
            header: opts.header,
            cluster: opts.cluster,
            pods,
            compromised,
            servers,
            coredns,
            exposed,
            world,
            now: opts.start.timestamp_millis(),
            mean_step_ms: 1000.0 / opts.events_per_sec,
            buf: Vec::with_capacity(2048),
            stamps: clock::Stamps::default(),
            misc: String::with_capacity(256),
            name: String::with_capacity(128),
        })
    }

    /// The pods of the simulated cluster, in a stable order.
    pub fn pods(&self) -> &[Pod] {
        &self.pods
    }

    /// The pods that talk to C2 servers.
    pub fn compromised_pods(&self) -> impl Iterator<Item = &Pod> + '_ {
        self.compromised.iter().filter_map(|&i| self.pods.get(i))
    }

    /// The C2 servers the compromised pods talk to.
    pub fn c2_servers(&self) -> &[C2Server] {
        &self.world.c2
    }

    /// Device names of the simulated firewalls (the syslog hostnames).
    pub fn firewalls(&self) -> impl Iterator<Item = (&str, PanosVersion)> + '_ {
        self.world
            .firewalls
            .iter()
            .map(|f| (f.name.as_str(), f.version))
    }

    /// Generates the next line and returns it with what it is.
    pub fn next_line(&mut self) -> Line<'_> {
        let meta = self.generate();
        Line {
            // Every byte written comes from a &str or is ASCII.
            text: std::str::from_utf8(&self.buf).unwrap_or_default(),
            kind: meta.kind,
            c2: meta.c2,
            pod: meta.pod.and_then(|i| self.pods.get(i)),
        }
    }

    /// Appends the next line (without a newline) to `out`: the fast path
    /// for benchmarks and senders.
    pub fn write_line(&mut self, out: &mut Vec<u8>) -> LineKind {
        let meta = self.generate();
        out.extend_from_slice(&self.buf);
        meta.kind
    }

    fn generate(&mut self) -> events::Meta {
        self.buf.clear();
        events::next(self)
    }
}

impl Iterator for Generator {
    type Item = String;

    /// Never ends: take as many lines as you need.
    fn next(&mut self) -> Option<String> {
        Some(self.next_line().text.to_owned())
    }
}

#[cfg(test)]
mod tests;
