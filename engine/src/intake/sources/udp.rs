//! Syslog over UDP: one record per datagram.
//!
//! UDP cannot push back, so a full pipeline drops the datagram and counts it
//! (`riposte_records_dropped_total{reason="queue_full"}`); a large kernel
//! receive buffer absorbs bursts first.

use std::net::SocketAddr;
use std::sync::Arc;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::allow::AllowList;
use super::{Ingest, Outcome};
use crate::error::EngineError;
use crate::intake::pipeline::{Closed, Pipeline};

/// Largest UDP payload.
const MAX_DATAGRAM: usize = 65_535;

/// Datagrams taken per wake-up at most.
const BATCH: usize = 64;

/// Binds the socket now (so configuration errors surface at start-up) and
/// returns it for [`serve`].
pub fn bind(addr: SocketAddr, receive_buffer: usize) -> Result<UdpSocket, EngineError> {
    let bind_err = |source| EngineError::Bind {
        what: "syslog UDP",
        addr,
        source,
    };
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))
        .map_err(bind_err)?;
    socket.set_reuse_address(true).map_err(bind_err)?;
    if receive_buffer > 0 {
        // The kernel may cap this (net.core.rmem_max); what it grants is logged.
        if let Err(e) = socket.set_recv_buffer_size(receive_buffer) {
            tracing::warn!(%addr, error = %e, "could not enlarge the UDP receive buffer");
        }
    }
    socket.set_nonblocking(true).map_err(bind_err)?;
    socket.bind(&addr.into()).map_err(bind_err)?;
    let granted = socket.recv_buffer_size().unwrap_or(0);
    tracing::debug!(%addr, granted, "UDP receive buffer");
    UdpSocket::from_std(socket.into()).map_err(bind_err)
}

/// Receives until shutdown, with `workers` tasks sharing the socket so
/// parsing uses more than one core.
pub async fn serve(
    socket: UdpSocket,
    workers: usize,
    allow: AllowList,
    ingest: Arc<Ingest>,
    pipeline: Pipeline,
    shutdown: CancellationToken,
) {
    let socket = Arc::new(socket);
    let mut tasks = JoinSet::new();
    for _ in 0..workers.max(1) {
        let (socket, allow, ingest, pipeline, shutdown) = (
            socket.clone(),
            allow.clone(),
            ingest.clone(),
            pipeline.clone(),
            shutdown.clone(),
        );
        tasks.spawn(async move {
            let mut buf = vec![0u8; MAX_DATAGRAM];
            let not_allowed = ingest.metrics().dropped("not_allowed");
            let queue_full = ingest.metrics().dropped("queue_full");
            loop {
                let first = tokio::select! {
                    r = socket.recv_from(&mut buf) => r,
                    () = shutdown.cancelled() => return,
                };
                // Take what else is already waiting, so queueing is paid
                // per batch rather than per datagram.
                let mut batch = Vec::new();
                let mut next = Some(first);
                let mut taken = 0;
                while let Some(received) = next.take() {
                    match received {
                        Ok((len, peer)) => {
                            if !allow.allows(peer.ip()) {
                                not_allowed.inc();
                            } else if let Outcome::Event(ev) = ingest.record(&buf[..len]) {
                                batch.push(ev);
                            }
                        }
                        // ICMP errors and the like surface here; the socket
                        // itself keeps working.
                        Err(e) => tracing::debug!(error = %e, "UDP receive error"),
                    }
                    taken += 1;
                    if taken < BATCH {
                        match socket.try_recv_from(&mut buf) {
                            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                            other => next = Some(other),
                        }
                    }
                }
                match pipeline.try_send_batch(batch) {
                    Ok(rejected) => {
                        queue_full.inc_by(rejected.len() as u64);
                    }
                    Err(Closed) => return,
                }
            }
        });
    }
    while tasks.join_next().await.is_some() {}
}
