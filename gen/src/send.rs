//! Where generated lines go: standard output, a file, or a syslog receiver
//! over UDP (one datagram per line) or TCP (newline or RFC 6587 octet
//! counting framing).
//!
//! Every error names the destination, so `riposte gen` can report it as is.

use std::fmt;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const BUFFER: usize = 256 * 1024;

/// A destination for generated lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Stdout,
    File(PathBuf),
    /// `udp://HOST:PORT`
    Udp(String),
    /// `tcp://HOST:PORT`
    Tcp(String),
}

impl FromStr for Target {
    // A String on purpose: clap's value parser prints it as the usage error
    // of the command-line flag, and nothing else matches on it.
    type Err = String;

    /// Parses a syslog URL: `udp://HOST:PORT` or `tcp://HOST:PORT`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (scheme, addr) = s.split_once("://").ok_or_else(|| {
            format!("`{s}` is not a syslog URL (expected udp://HOST:PORT or tcp://HOST:PORT)")
        })?;
        let valid = addr
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        if !valid {
            return Err(format!(
                "`{s}` needs a host and a port, as in {scheme}://127.0.0.1:5514"
            ));
        }
        match scheme.to_ascii_lowercase().as_str() {
            "udp" => Ok(Target::Udp(addr.to_owned())),
            "tcp" => Ok(Target::Tcp(addr.to_owned())),
            other => Err(format!(
                "unsupported scheme `{other}` in `{s}` (expected udp or tcp)"
            )),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Stdout => f.write_str("standard output"),
            Target::File(p) => write!(f, "{}", p.display()),
            Target::Udp(a) => write!(f, "udp://{a}"),
            Target::Tcp(a) => write!(f, "tcp://{a}"),
        }
    }
}

/// How records are delimited on a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Framing {
    /// Each line ends with `\n` (the common syslog-over-TCP practice).
    #[default]
    Newline,
    /// RFC 6587 octet counting: `LEN SP MSG`, no terminator.
    OctetCounting,
}

#[derive(Debug)]
enum Inner {
    Stream(BufWriter<Box<dyn WriteDebug>>),
    Udp(UdpSocket),
}

/// `Write` that can be shown in `Debug` output.
trait WriteDebug: Write + fmt::Debug + Send {}
impl<T: Write + fmt::Debug + Send> WriteDebug for T {}

/// An open destination.
#[derive(Debug)]
pub struct Sink {
    inner: Inner,
    framing: Framing,
    target: Target,
    bytes: u64,
}

fn named(target: &Target, what: &str, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{what} {target}: {e}"))
}

fn resolve(target: &Target, addr: &str) -> io::Result<Vec<SocketAddr>> {
    let addrs: Vec<SocketAddr> = addr
        .to_socket_addrs()
        .map_err(|e| named(target, "cannot resolve", e))?
        .collect();
    if addrs.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("cannot resolve {target}: no address"),
        ));
    }
    Ok(addrs)
}

impl Sink {
    /// Opens (or connects to) `target`. Octet counting applies to TCP only;
    /// files and standard output always get one line per line.
    pub fn open(target: &Target, framing: Framing) -> io::Result<Sink> {
        let inner = match target {
            Target::Stdout => {
                Inner::Stream(BufWriter::with_capacity(BUFFER, Box::new(io::stdout())))
            }
            Target::File(path) => {
                let file = File::create(path).map_err(|e| named(target, "cannot create", e))?;
                Inner::Stream(BufWriter::with_capacity(BUFFER, Box::new(file)))
            }
            Target::Udp(addr) => {
                let mut last = None;
                let mut socket = None;
                for a in resolve(target, addr)? {
                    let local: SocketAddr = if a.is_ipv4() {
                        ([0, 0, 0, 0], 0).into()
                    } else {
                        ([0u16; 8], 0).into()
                    };
                    match UdpSocket::bind(local).and_then(|s| s.connect(a).map(|()| s)) {
                        Ok(s) => {
                            socket = Some(s);
                            break;
                        }
                        Err(e) => last = Some(e),
                    }
                }
                match socket {
                    Some(s) => Inner::Udp(s),
                    None => {
                        let e = last.unwrap_or_else(|| io::Error::other("no usable address"));
                        return Err(named(target, "cannot send to", e));
                    }
                }
            }
            Target::Tcp(addr) => {
                let mut last = None;
                let mut stream = None;
                for a in resolve(target, addr)? {
                    match TcpStream::connect_timeout(&a, CONNECT_TIMEOUT) {
                        Ok(s) => {
                            stream = Some(s);
                            break;
                        }
                        Err(e) => last = Some(e),
                    }
                }
                match stream {
                    Some(s) => Inner::Stream(BufWriter::with_capacity(BUFFER, Box::new(s))),
                    None => {
                        let e = last.unwrap_or_else(|| io::Error::other("no usable address"));
                        return Err(named(target, "cannot connect to", e));
                    }
                }
            }
        };
        let framing = if matches!(target, Target::Tcp(_)) {
            framing
        } else {
            Framing::Newline
        };
        Ok(Sink {
            inner,
            framing,
            target: target.clone(),
            bytes: 0,
        })
    }

    /// Sends one line (without its newline).
    pub fn send(&mut self, line: &[u8]) -> io::Result<()> {
        match &mut self.inner {
            Inner::Udp(socket) => {
                socket
                    .send(line)
                    .map_err(|e| named(&self.target, "cannot send to", e))?;
                self.bytes += line.len() as u64;
            }
            Inner::Stream(w) => {
                let res = match self.framing {
                    Framing::Newline => w.write_all(line).and_then(|()| w.write_all(b"\n")),
                    Framing::OctetCounting => {
                        let mut len = Vec::with_capacity(8);
                        super::lines::push_u64(&mut len, line.len() as u64);
                        len.push(b' ');
                        self.bytes += len.len() as u64 - 1;
                        w.write_all(&len).and_then(|()| w.write_all(line))
                    }
                };
                res.map_err(|e| named(&self.target, "cannot write to", e))?;
                self.bytes += line.len() as u64 + 1;
            }
        }
        Ok(())
    }

    /// Pushes buffered lines out.
    pub fn flush(&mut self) -> io::Result<()> {
        match &mut self.inner {
            Inner::Udp(_) => Ok(()),
            Inner::Stream(w) => w
                .flush()
                .map_err(|e| named(&self.target, "cannot write to", e)),
        }
    }

    /// Bytes sent so far, framing included.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    pub fn target(&self) -> &Target {
        &self.target
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::net::TcpListener;

    use super::*;

    #[test]
    fn syslog_urls_parse_and_bad_ones_say_why() {
        assert_eq!(
            "udp://127.0.0.1:5514".parse(),
            Ok(Target::Udp("127.0.0.1:5514".into()))
        );
        assert_eq!(
            "TCP://[::1]:601".parse(),
            Ok(Target::Tcp("[::1]:601".into()))
        );
        assert!(Target::from_str("127.0.0.1:514")
            .expect_err("no scheme")
            .contains("syslog URL"));
        assert!(Target::from_str("udp://localhost")
            .expect_err("no port")
            .contains("port"));
        assert!(Target::from_str("http://h:1")
            .expect_err("scheme")
            .contains("unsupported scheme"));
    }

    #[test]
    fn tcp_octet_counting_frames_each_line_with_its_length() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let reader = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().expect("accept");
            let mut out = String::new();
            s.read_to_string(&mut out).expect("read");
            out
        });
        let target = Target::Tcp(addr.to_string());
        let mut sink = Sink::open(&target, Framing::OctetCounting).expect("connect");
        sink.send(b"hello").expect("send");
        sink.send(b"a, \"b\"").expect("send");
        sink.flush().expect("flush");
        assert_eq!(sink.bytes(), 15);
        drop(sink);
        assert_eq!(reader.join().expect("reader"), "5 hello6 a, \"b\"");
    }

    #[test]
    fn refused_connection_names_the_address() {
        // Bind then drop to get a port nobody listens on.
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("port")
            .port();
        let target = Target::Tcp(format!("127.0.0.1:{port}"));
        let err = Sink::open(&target, Framing::Newline).expect_err("nothing listens");
        assert!(
            err.to_string().contains(&format!("tcp://127.0.0.1:{port}")),
            "{err}"
        );
    }
}
