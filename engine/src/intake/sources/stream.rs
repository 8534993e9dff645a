//! Syslog over TCP and TLS: RFC 6587 framing on a byte stream.
//!
//! [`Slots`] bound the connections, per sender and in all, keeping some for
//! the priority senders; peers outside the allow-list and connections beyond
//! a bound are refused (closed at once) and counted by reason. Each
//! connection is read by its own task: a full pipeline makes it stop
//! reading, so the sender's TCP window closes and it slows down — nothing
//! accepted is dropped. A connection that stalls mid-frame is closed after
//! the idle timeout; an oversized frame is skipped without being buffered.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use riposte_firewall::syslog::{FrameError, Framer};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::allow::AllowList;
use super::slots::{Refusal, SlotPolicy, Slots};
use super::{Ingest, Outcome};
use crate::error::EngineError;
use crate::intake::pipeline::Pipeline;

/// How a stream listener behaves.
#[derive(Debug, Clone)]
pub struct StreamSettings {
    pub slots: SlotPolicy,
    pub idle_timeout: Duration,
    pub handshake_timeout: Duration,
    pub max_record_bytes: usize,
}

pub async fn bind(addr: SocketAddr, what: &'static str) -> Result<TcpListener, EngineError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| EngineError::Bind { what, addr, source })
}

/// Accepts connections until shutdown; with `tls` set, each one is a TLS
/// session first.
#[allow(clippy::too_many_arguments)]
pub async fn serve(
    listener: TcpListener,
    settings: StreamSettings,
    tls: Option<TlsAcceptor>,
    allow: AllowList,
    ingest: Arc<Ingest>,
    pipeline: Pipeline,
    shutdown: CancellationToken,
) {
    let slots = Slots::new(settings.slots.clone());
    let not_allowed = ingest.metrics().refused("not_allowed");
    // Resolved once: a flood of refusals costs no label lookups.
    let refused = [Refusal::SourceLimit, Refusal::Reserved, Refusal::Full]
        .map(|r| (r, ingest.metrics().refused(r.reason())));
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            () = shutdown.cancelled() => return,
        };
        let (socket, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of
                // spinning, and keep serving the connections already open.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if !allow.allows(peer.ip()) {
            not_allowed.inc();
            continue;
        }
        let permit = match slots.acquire(peer.ip()) {
            Ok(slot) => slot,
            Err(refusal) => {
                if let Some((_, counter)) = refused.iter().find(|(r, _)| *r == refusal) {
                    counter.inc();
                }
                continue;
            }
        };
        let (settings, tls, ingest, pipeline, shutdown) = (
            settings.clone(),
            tls.clone(),
            ingest.clone(),
            pipeline.clone(),
            shutdown.clone(),
        );
        let span = tracing::debug_span!("connection", source = ingest.metrics().source, %peer);
        tokio::spawn(
            async move {
                let _permit = permit;
                let gauge = ingest.metrics().connections.clone();
                gauge.inc();
                match tls {
                    None => read_frames(socket, &settings, &ingest, &pipeline, &shutdown).await,
                    Some(acceptor) => {
                        match tokio::time::timeout(
                            settings.handshake_timeout,
                            acceptor.accept(socket),
                        )
                        .await
                        {
                            Ok(Ok(stream)) => {
                                read_frames(stream, &settings, &ingest, &pipeline, &shutdown).await
                            }
                            Ok(Err(e)) => {
                                ingest.metrics().refused("tls_handshake").inc();
                                tracing::debug!(error = %e, "TLS handshake failed");
                            }
                            Err(_) => {
                                ingest.metrics().refused("tls_handshake_timeout").inc();
                            }
                        }
                    }
                }
                gauge.dec();
            }
            .instrument(span),
        );
    }
}

/// Reads framed records from one connection until it closes, stalls, breaks
/// the framing beyond repair, or shutdown begins.
pub async fn read_frames<S: AsyncRead + Unpin>(
    mut stream: S,
    settings: &StreamSettings,
    ingest: &Ingest,
    pipeline: &Pipeline,
    shutdown: &CancellationToken,
) {
    const READ_CHUNK: usize = 64 * 1024;
    let mut framer = Framer::new(settings.max_record_bytes);
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    loop {
        // Everything decodable from this read goes on as one batch.
        let mut batch = Vec::new();
        loop {
            match framer.decode(&mut buf) {
                Ok(Some(frame)) => {
                    if let Outcome::Event(ev) = ingest.record(&frame) {
                        batch.push(ev);
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    if !frame_error(&e, ingest) {
                        let _ = pipeline.send_batch(batch).await;
                        return;
                    }
                }
            }
        }
        if !batch.is_empty() && pipeline.send_batch(batch).await.is_err() {
            return;
        }
        if buf.capacity() - buf.len() < READ_CHUNK / 4 {
            buf.reserve(READ_CHUNK);
        }
        let read = tokio::select! {
            r = tokio::time::timeout(settings.idle_timeout, stream.read_buf(&mut buf)) => r,
            () = shutdown.cancelled() => return,
        };
        match read {
            Ok(Ok(0)) => {
                match framer.decode_eof(&mut buf) {
                    Ok(Some(frame)) => {
                        if let Outcome::Event(ev) = ingest.record(&frame) {
                            let _ = pipeline.send(ev).await;
                        }
                    }
                    Ok(None) => {}
                    Err(e) => {
                        frame_error(&e, ingest);
                    }
                }
                return;
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "connection read failed");
                return;
            }
            Err(_) => {
                ingest.metrics().dropped("idle_timeout").inc();
                tracing::debug!("closing idle connection");
                return;
            }
        }
    }
}

/// Counts a framing problem; `false` when the connection must be closed.
fn frame_error(error: &FrameError, ingest: &Ingest) -> bool {
    ingest.metrics().dropped(error.reason()).inc();
    tracing::debug!(%error, "framing error");
    !error.is_fatal()
}
