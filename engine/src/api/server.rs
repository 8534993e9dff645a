//! The accept loop of the HTTP API, plain or over TLS (rustls).
//!
//! Served with hyper directly rather than `axum::serve` for two things the
//! latter does not offer: TLS on the same loop, and a header read timeout,
//! so a slowloris client trickling its request headers is cut off after
//! `http.header_read_timeout_secs` (bodies are bounded by the router's
//! request timeout).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

/// Largest read buffer of an HTTP/1 connection (request headers must fit).
const MAX_READ_BUFFER: usize = 64 * 1024;

/// How the listener behaves.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    pub header_read_timeout: Duration,
    pub tls_handshake_timeout: Duration,
    /// Open connections at most; more wait in the kernel's backlog.
    pub max_connections: usize,
    /// How long open requests may finish after shutdown begins.
    pub grace: Duration,
}

/// Serves `app` on `listener` until `shutdown`, then lets open requests
/// finish for up to `settings.grace`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    tls: Option<TlsAcceptor>,
    settings: ServerSettings,
    shutdown: CancellationToken,
) {
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(settings.max_connections.max(1)));
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_read_timeout)
        // Each connection's read buffer is memory outside the body budgets;
        // hyper's default lets it grow to ~400 KiB per connection.
        .max_buf_size(MAX_READ_BUFFER);
    builder.http2().timer(TokioTimer::new());
    let builder = Arc::new(builder);
    loop {
        let permit = tokio::select! {
            _ = shutdown.cancelled() => break,
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let (stream, peer): (tokio::net::TcpStream, SocketAddr) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: pause, go on.
                    tracing::warn!(error = %e, "HTTP accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let tls = tls.clone();
        let handshake = settings.tls_handshake_timeout;
        tokio::spawn(async move {
            let _permit = permit;
            match tls {
                None => {
                    let conn =
                        builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                    if let Err(e) = watcher.watch(conn).await {
                        tracing::debug!(peer = %peer, error = %e, "HTTP connection ended");
                    }
                }
                Some(acceptor) => {
                    let stream =
                        match tokio::time::timeout(handshake, acceptor.accept(stream)).await {
                            Ok(Ok(s)) => s,
                            Ok(Err(e)) => {
                                tracing::debug!(peer = %peer, error = %e, "TLS handshake failed");
                                return;
                            }
                            Err(_) => {
                                tracing::debug!(peer = %peer, "TLS handshake timed out");
                                return;
                            }
                        };
                    let conn =
                        builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                    if let Err(e) = watcher.watch(conn).await {
                        tracing::debug!(peer = %peer, error = %e, "HTTPS connection ended");
                    }
                }
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(settings.grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("HTTP connections still open after the grace period; closing them");
    }
}
