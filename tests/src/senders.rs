//! Real syslog senders (syslog-ng, rsyslog, util-linux `logger`) run as
//! child processes with their own configs, and the real PAN-OS lines of
//! `../shared/samples` to feed them.
//!
//! syslog-ng and rsyslog conflict as Debian packages (both are the
//! system's log daemon) and installing either starts a system-wide daemon,
//! so `.ci/real-tools` unpacks both into one private folder,
//! `$RIPOSTE_SENDERS_DIR` (default `/var/tmp/riposte-senders`), and each
//! test runs its own daemon from there: its own temporary directory, pid
//! file, control socket and unprivileged loopback ports.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// Where `.ci/real-tools` unpacks syslog-ng and rsyslog.
pub fn senders_dir() -> PathBuf {
    std::env::var_os("RIPOSTE_SENDERS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/tmp/riposte-senders"))
}

fn require(path: PathBuf, what: &str) -> PathBuf {
    assert!(
        path.exists(),
        "{what} is missing at {}: run .ci/real-tools (it unpacks Debian's syslog-ng-core, \
         rsyslog and rsyslog-gnutls into $RIPOSTE_SENDERS_DIR, default /var/tmp/riposte-senders)",
        path.display()
    );
    path
}

/// A free loopback port (the kernel's pick, released for the daemon).
pub fn free_port() -> u16 {
    match riposte_standins::ports::free_port() {
        Ok(port) => port,
        Err(e) => panic!("{e:#}"),
    }
}

/// A sender daemon running in the foreground as a child process; killed
/// (and its temporary directory removed) when dropped.
pub struct Daemon {
    name: &'static str,
    child: Child,
    pub dir: TempDir,
}

impl std::fmt::Debug for Daemon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Daemon({}, pid {})", self.name, self.child.id())
    }
}

impl Daemon {
    fn spawn(name: &'static str, dir: TempDir, mut cmd: Command) -> Daemon {
        let log = match std::fs::File::create(dir.path().join("daemon.log")) {
            Ok(f) => f,
            Err(e) => panic!("creating {name}'s log: {e}"),
        };
        let err = match log.try_clone() {
            Ok(f) => f,
            Err(e) => panic!("cloning {name}'s log: {e}"),
        };
        cmd.stdin(Stdio::null()).stdout(log).stderr(err);
        match cmd.spawn() {
            Ok(child) => Daemon { name, child, dir },
            Err(e) => panic!("starting {name} ({cmd:?}): {e}"),
        }
    }

    /// What the daemon printed so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("daemon.log")).unwrap_or_default()
    }

    /// Waits until the daemon accepts TCP connections on `port`.
    pub fn wait_listening(&mut self, port: u16) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "{} exited ({status}) before listening:\n{}",
                    self.name,
                    self.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "{} did not listen on {addr} within 20 s:\n{}",
                self.name,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts syslog-ng in the foreground on `config`, with its persist file,
/// pid file and control socket in its own temporary directory.
pub fn syslog_ng(config: &str) -> Daemon {
    let root = senders_dir();
    let bin = require(root.join("usr/sbin/syslog-ng"), "syslog-ng");
    let modules = require(root.join("usr/lib/syslog-ng/3.38"), "syslog-ng's modules");
    let dir = tempdir();
    let conf = write(dir.path(), "syslog-ng.conf", config);
    let p = |name: &str| dir.path().join(name);
    let mut cmd = Command::new(bin);
    cmd.env("LD_LIBRARY_PATH", root.join("usr/lib/syslog-ng"))
        .arg("--foreground")
        .arg("--stderr")
        .arg("--no-caps")
        .arg(format!("--cfgfile={}", conf.display()))
        .arg(format!("--module-path={}", modules.display()))
        .arg(format!(
            "--persist-file={}",
            p("syslog-ng.persist").display()
        ))
        .arg(format!("--pidfile={}", p("syslog-ng.pid").display()))
        .arg(format!("--control={}", p("syslog-ng.ctl").display()));
    Daemon::spawn("syslog-ng", dir, cmd)
}

/// Starts rsyslogd in the foreground on `config`, its pid file in its own
/// temporary directory; `{{dir}}` in `config` is replaced with that
/// directory (for `global(workDirectory=...)`).
pub fn rsyslogd(config: &str) -> Daemon {
    let root = senders_dir();
    let bin = require(root.join("usr/sbin/rsyslogd"), "rsyslogd");
    let modules = require(
        root.join("usr/lib/x86_64-linux-gnu/rsyslog"),
        "rsyslog's modules",
    );
    require(modules.join("lmnsd_gtls.so"), "rsyslog-gnutls");
    let dir = tempdir();
    let config = config.replace("{{dir}}", &dir.path().display().to_string());
    let conf = write(dir.path(), "rsyslog.conf", &config);
    let mut cmd = Command::new(bin);
    cmd.arg("-n")
        .arg("-f")
        .arg(conf)
        .arg("-i")
        .arg(dir.path().join("rsyslogd.pid"))
        .arg("-M")
        .arg(modules);
    Daemon::spawn("rsyslogd", dir, cmd)
}

fn tempdir() -> TempDir {
    match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => panic!("creating a temporary directory: {e}"),
    }
}

/// Writes `text` to `dir/name` and returns the path.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    if let Err(e) = std::fs::write(&path, text) {
        panic!("writing {}: {e}", path.display());
    }
    path
}

/// The real PAN-OS lines of the samples, without the syslog header each
/// came with: the CSV body a firewall puts after its header (`1,2019/...`).
/// The Prisma Access forwarder lines (another layout) and LEEF are left out.
#[derive(Debug, Clone)]
pub struct Samples {
    pub bodies: Vec<String>,
    pub threats: usize,
    pub traffic: usize,
}

/// Reads every `*.log` of `../shared/samples/panos`.
pub fn panos_samples() -> Samples {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/samples/panos");
    assert!(
        dir.is_dir(),
        "the shared samples folder {} is missing: the real-sender tests feed real \
         third-party PAN-OS lines from it (it sits beside the repository clone as shared/samples)",
        dir.display()
    );
    let mut files: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "log"))
            .collect(),
        Err(e) => panic!("listing {}: {e}", dir.display()),
    };
    files.sort();
    let mut bodies = Vec::new();
    for file in files {
        let bytes = std::fs::read(&file).unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        bodies.extend(text.lines().filter_map(csv_body).map(str::to_owned));
    }
    let kind = |k: &str| {
        bodies
            .iter()
            .filter(|b| b.split(',').nth(3) == Some(k))
            .count()
    };
    let (threats, traffic) = (kind("THREAT"), kind("TRAFFIC"));
    assert_eq!(
        threats + traffic,
        bodies.len(),
        "only THREAT and TRAFFIC lines"
    );
    Samples {
        bodies,
        threats,
        traffic,
    }
}

/// The PAN-OS CSV after a line's syslog header: from the word holding the
/// first comma, when it reads `<digits>,<yyyy>/`.
fn csv_body(line: &str) -> Option<&str> {
    let comma = line.find(',')?;
    let start = line[..comma].rfind(' ').map_or(0, |i| i + 1);
    let body = &line[start..];
    let (first, rest) = body.split_once(',')?;
    let classic = !first.is_empty()
        && first.bytes().all(|b| b.is_ascii_digit())
        && rest.get(4..5) == Some("/")
        && rest[..4].bytes().all(|b| b.is_ascii_digit());
    classic.then_some(body.trim_end())
}

/// Each body behind a BSD (RFC 3164) header, as a firewall sends it.
pub fn bsd(bodies: &[String]) -> Vec<String> {
    bodies
        .iter()
        .map(|b| format!("<14>Dec  6 18:00:00 pa-fw-1 {b}"))
        .collect()
}

/// Each body behind an RFC 5424 header with no app name, process id,
/// message id or structured data, as PAN-OS's "IETF" syslog format sends it.
pub fn rfc5424(bodies: &[String]) -> Vec<String> {
    bodies
        .iter()
        .map(|b| format!("<14>1 2026-12-06T18:00:00.000Z pa-fw-1 - - - - {b}"))
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_csv_body_follows_any_header() {
        let body = "1,2018/02/12 15:10:06,0009C103236,THREAT,virus";
        for header in [
            "Feb 12 15:10:06 PA-5050 ",
            "<14>Feb  22 21:32:20 pa-fw-2 ",
            "<13> Jul 23 15:45:11 NY-APP-8.local ",
            "2023-07-06T08:11:40+02:00 paloalto.test.host ",
            "",
        ] {
            assert_eq!(super::csv_body(&format!("{header}{body}  ")), Some(body));
        }
        assert_eq!(
            super::csv_body("<14>1 2021-10-28T02:58:53Z h logforwarder - panwlogs - 2021-10-28T02:58:52Z,no-serial,THREAT"),
            None
        );
    }
}
