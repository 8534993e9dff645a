//! `riposte gen`: write realistic PAN-OS syslog lines to standard output, a
//! file, or a syslog receiver, at a chosen rate.

use std::io;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use ipnet::Ipv4Net;

use riposte_gen::pace::Pacer;
use riposte_gen::send::{Framing, Sink, Target};
use riposte_gen::{GenOptions, Generator, Header, PanosVersion};

use crate::intake::enrich::InventoryPod;

/// Generate realistic PAN-OS THREAT and TRAFFIC syslog lines from a
/// simulated Kubernetes cluster, for demos, benchmarks and tests.
#[derive(Debug, clap::Args)]
pub struct GenArgs {
    /// How many lines to write; 0 writes until interrupted.
    #[arg(long, default_value_t = 1000)]
    pub count: u64,
    /// Lines per second (default: as fast as possible).
    #[arg(long, value_name = "EVENTS_PER_SEC", value_parser = positive_rate)]
    pub rate: Option<f64>,
    /// Seed for reproducible output (default: random; the summary shows it).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Pods in the simulated cluster.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..=65_000))]
    pub pods: u64,
    /// Where pod addresses come from (each node gets a /24 of it).
    #[arg(long, default_value = "10.244.0.0/16")]
    pub pod_cidr: Ipv4Net,
    /// Share of lines that are C2 traffic from compromised pods (0 to 1).
    #[arg(long, default_value_t = 0.002, value_parser = share)]
    pub c2_share: f64,
    /// Share of lines that are other threats: virus, vulnerability, scan,
    /// flood, WildFire, … (0 to 1).
    #[arg(long, default_value_t = 0.03, value_parser = share)]
    pub threat_share: f64,
    /// Share of lines that are URL filtering logs (0 to 1); the rest is
    /// TRAFFIC.
    #[arg(long, default_value_t = 0.2, value_parser = share)]
    pub url_share: f64,
    /// Syslog header before each line: bsd, rfc5424 or none.
    #[arg(long, default_value = "bsd")]
    pub header: Header,
    /// PAN-OS versions of the simulated firewalls, one firewall each
    /// (10.1, 11.0, 11.1; comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "10.1,11.0,11.1")]
    pub panos_version: Vec<PanosVersion>,
    /// Generated time of the first line, RFC 3339 (default: now).
    #[arg(long)]
    pub start: Option<DateTime<Utc>>,
    /// Write to this file instead of standard output.
    #[arg(long, conflicts_with = "syslog")]
    pub out: Option<PathBuf>,
    /// Send to a syslog receiver: udp://HOST:PORT (one datagram per line) or
    /// tcp://HOST:PORT (newline framing).
    #[arg(long, value_name = "URL")]
    pub syslog: Option<Target>,
    /// Frame TCP syslog with RFC 6587 octet counting instead of newlines.
    #[arg(long)]
    pub octet_counting: bool,
    /// Also write the simulated pods to this file, in the format of
    /// `[pods] inventory_file` and `replay --pods`.
    #[arg(long, value_name = "FILE")]
    pub inventory: Option<PathBuf>,
    /// Also write the seed, the compromised pods and the C2 servers to this
    /// file as JSON (what a test of the generated logs should find).
    #[arg(long, value_name = "FILE")]
    pub answers: Option<PathBuf>,
    /// Don't print the summary on standard error.
    #[arg(long, short)]
    pub quiet: bool,
}

// clap value parsers: the String is the usage error clap prints for the
// flag (here and in `positive_rate`).
fn share(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("`{s}` is not a number"))?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{v} is not between 0 and 1"))
    }
}

fn positive_rate(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("`{s}` is not a number"))?;
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        Err(format!("{v} is not a positive rate"))
    }
}

/// Lines between two updates of the progress bar: the bar redraws a few
/// times a second anyway, and the loop stays a loop of writes.
const PROGRESS_EVERY: u64 = 1024;

/// A progress bar on standard error when it is a terminal, not `--quiet`,
/// and the lines themselves do not go to that same terminal; hidden
/// otherwise (piped, redirected, CI), where it would be noise in a log.
fn progress_bar(args: &GenArgs, target: &Target) -> indicatif::ProgressBar {
    use std::io::IsTerminal as _;
    let lines_on_terminal = *target == Target::Stdout && io::stdout().is_terminal();
    if args.quiet || lines_on_terminal || !io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let (bar, template) = if args.count == 0 {
        (
            indicatif::ProgressBar::new_spinner(),
            "{spinner} {human_pos} lines in {elapsed}",
        )
    } else {
        (
            indicatif::ProgressBar::new(args.count),
            "{bar:40} {human_pos}/{human_len} lines, {elapsed} elapsed, eta {eta}",
        )
    };
    if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar.set_draw_target(indicatif::ProgressDrawTarget::stderr_with_hz(4));
    bar.enable_steady_tick(std::time::Duration::from_millis(250));
    bar
}

pub fn run(args: GenArgs) -> anyhow::Result<ExitCode> {
    let target = match (&args.out, &args.syslog) {
        (Some(path), _) => Target::File(path.clone()),
        (None, Some(t)) => t.clone(),
        (None, None) => Target::Stdout,
    };
    if args.octet_counting && !matches!(target, Target::Tcp(_)) {
        anyhow::bail!("--octet-counting applies to --syslog tcp://… only");
    }
    let seed = args.seed.unwrap_or_else(rand::random);
    let defaults = GenOptions::default();
    let opts = GenOptions {
        seed,
        pods: usize::try_from(args.pods).unwrap_or(usize::MAX),
        pod_cidr: args.pod_cidr,
        c2_share: args.c2_share,
        threat_share: args.threat_share,
        url_share: args.url_share,
        header: args.header,
        versions: args.panos_version.clone(),
        start: args.start.unwrap_or_else(Utc::now),
        // Log time follows wall time when the rate is set.
        events_per_sec: args.rate.unwrap_or(defaults.events_per_sec),
        ..defaults
    };
    let mut generator = Generator::new(opts)?;
    if let Some(path) = &args.inventory {
        // Exactly the `[pods] inventory_file` format, so that `serve` and
        // `replay --pods` read the pods the lines come from.
        let pods: Vec<InventoryPod> = generator
            .pods()
            .iter()
            .map(|p| InventoryPod::from_context(p.to_pod_context(), vec![IpAddr::V4(p.ip)]))
            .collect();
        let text = serde_json::to_string_pretty(&pods)?;
        std::fs::write(path, text)
            .with_context(|| format!("cannot write inventory {}", path.display()))?;
    }
    if let Some(path) = &args.answers {
        let answers = serde_json::json!({
            "seed": seed,
            "compromised_pods": generator.compromised_pods().map(|p| format!("{}/{}", p.namespace, p.name)).collect::<Vec<_>>(),
            "c2_servers": generator.c2_servers(),
        });
        std::fs::write(path, serde_json::to_string_pretty(&answers)?)
            .with_context(|| format!("cannot write answers {}", path.display()))?;
    }
    let framing = if args.octet_counting {
        Framing::OctetCounting
    } else {
        Framing::Newline
    };
    let mut sink = match Sink::open(&target, framing) {
        Ok(sink) => sink,
        Err(e) => {
            // The error names the destination; 1 says "could not deliver".
            eprintln!("riposte gen: {e}");
            return Ok(ExitCode::from(1));
        }
    };
    let pacer = Pacer::new(args.rate);
    let progress = progress_bar(&args, &target);
    let mut sent = 0u64;
    let outcome = (|| -> io::Result<()> {
        while args.count == 0 || sent < args.count {
            if pacer.at_boundary(sent) {
                sink.flush()?;
                pacer.wait_for(sent);
            }
            sink.send(generator.next_line().text.as_bytes())?;
            sent += 1;
            if sent.is_multiple_of(PROGRESS_EVERY) {
                progress.set_position(sent);
            }
        }
        sink.flush()
    })();
    progress.finish_and_clear();
    let secs = pacer.elapsed().as_secs_f64();
    if !args.quiet {
        let per_sec = if secs > 0.0 { sent as f64 / secs } else { 0.0 };
        let mb_per_sec = if secs > 0.0 {
            sink.bytes() as f64 / secs / 1e6
        } else {
            0.0
        };
        eprintln!(
            "riposte gen: {sent} lines, {} bytes to {target} in {secs:.3} s ({per_sec:.0} lines/s, {mb_per_sec:.1} MB/s), seed {seed}",
            sink.bytes()
        );
    }
    match outcome {
        Ok(()) => Ok(ExitCode::SUCCESS),
        // A closed pipe (`riposte gen | head`) is the reader saying enough.
        Err(e) if target == Target::Stdout && e.kind() == io::ErrorKind::BrokenPipe => {
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("riposte gen: {e}");
            Ok(ExitCode::from(1))
        }
    }
}
