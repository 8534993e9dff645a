//! Sending syslog the way firewalls do.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpStream, UdpSocket};
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::{self, ClientConfig};

/// One datagram per line.
pub async fn send_udp(addr: SocketAddr, lines: &[String]) -> anyhow::Result<()> {
    let socket = UdpSocket::bind("127.0.0.1:0").await?;
    for line in lines {
        socket.send_to(line.as_bytes(), addr).await?;
    }
    Ok(())
}

/// How records are framed on a stream (RFC 6587).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    NewLine,
    OctetCounting,
}

pub fn frame(lines: &[String], framing: Framing) -> Vec<u8> {
    let mut out = Vec::new();
    for line in lines {
        match framing {
            Framing::NewLine => {
                out.extend_from_slice(line.as_bytes());
                out.push(b'\n');
            }
            Framing::OctetCounting => {
                out.extend_from_slice(format!("{} ", line.len()).as_bytes());
                out.extend_from_slice(line.as_bytes());
            }
        }
    }
    out
}

pub async fn send_tcp(addr: SocketAddr, lines: &[String], framing: Framing) -> anyhow::Result<()> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.write_all(&frame(lines, framing)).await?;
    stream.shutdown().await?;
    Ok(())
}

/// A TLS client trusting `ca_pem`, optionally presenting a client
/// certificate.
pub fn tls_client(ca_pem: &str, client: Option<(&str, &str)>) -> anyhow::Result<ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut ca_pem.as_bytes()) {
        roots.add(cert?)?;
    }
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
    Ok(match client {
        None => builder.with_no_client_auth(),
        Some((cert_pem, key_pem)) => {
            let certs =
                rustls_pemfile::certs(&mut cert_pem.as_bytes()).collect::<Result<Vec<_>, _>>()?;
            let key = rustls_pemfile::private_key(&mut key_pem.as_bytes())?
                .ok_or_else(|| anyhow::anyhow!("no private key in PEM"))?;
            builder.with_client_auth_cert(certs, key)?
        }
    })
}

pub async fn send_tls(
    addr: SocketAddr,
    config: ClientConfig,
    lines: &[String],
    framing: Framing,
) -> anyhow::Result<()> {
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(addr).await?;
    let mut tls = connector
        .connect(ServerName::try_from("localhost")?, tcp)
        .await?;
    tls.write_all(&frame(lines, framing)).await?;
    tls.flush().await?;
    tls.shutdown().await?;
    Ok(())
}
