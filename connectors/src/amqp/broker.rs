//! The connection manager: one connection to the broker, re-established
//! with exponential backoff and jitter when it breaks, with the topology
//! every component registered declared again on each new connection.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lapin::tcp::OwnedTLSConfig;
use lapin::types::{LongString, ShortString};
use lapin::uri::{AMQPScheme, AMQPUri};
use lapin::{Channel, Connection, ConnectionProperties};
use rand::Rng;
use tokio_util::sync::CancellationToken;

use super::config::BrokerSettings;
use super::error::AmqpError;
use super::topology::Topology;

/// Exponential backoff with jitter: each wait is drawn between half and all
/// of `min * 2^attempt`, capped at `max`, so replicas that lost the broker
/// together do not all knock at the same instant.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    pub fn new(min: Duration, max: Duration) -> Backoff {
        Backoff {
            min: min.max(Duration::from_millis(1)),
            max: max.max(min),
            attempt: 0,
        }
    }

    pub fn next_delay(&mut self) -> Duration {
        let factor = 1u32 << self.attempt.min(20);
        self.attempt = self.attempt.saturating_add(1);
        let ceiling = self.min.saturating_mul(factor).min(self.max);
        let ms = ceiling.as_millis().max(1) as u64;
        Duration::from_millis(rand::rng().random_range(ms / 2..=ms))
    }

    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

struct Current {
    connection: Arc<Connection>,
    declared: bool,
}

/// A shared handle on the broker.
pub struct Broker {
    settings: BrokerSettings,
    uri: AMQPUri,
    tls: OwnedTLSConfig,
    current: tokio::sync::Mutex<Option<Current>>,
    topology: Mutex<Topology>,
    connects: AtomicU64,
}

impl fmt::Debug for Broker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Broker")
            .field("url", &self.settings.url)
            .field("connection_name", &self.settings.connection_name)
            .field("connects", &self.connects.load(Ordering::Relaxed))
            .finish()
    }
}

impl Broker {
    /// Checks the settings and reads the CA file; connects lazily.
    pub fn new(settings: BrokerSettings) -> Result<Arc<Broker>, AmqpError> {
        settings.validate().map_err(AmqpError::Config)?;
        let mut uri: AMQPUri = settings.url.expose().parse().map_err(|e: String| {
            // The parser's message may quote the URL: never show it whole.
            AmqpError::Config(format!(
                "url {} does not parse: {}",
                settings.url.redacted(),
                e.replace(settings.url.expose(), "<url>")
            ))
        })?;
        uri.query.heartbeat = Some(settings.heartbeat_secs);
        if uri.query.connection_timeout.is_none() {
            uri.query.connection_timeout = Some(settings.connect_timeout().as_millis() as u64);
        }
        let mut tls = OwnedTLSConfig::default();
        if let Some(ca) = &settings.ca_file {
            let pem = std::fs::read_to_string(ca)
                .map_err(|e| AmqpError::Config(format!("ca_file {}: {e}", ca.display())))?;
            if uri.scheme != AMQPScheme::AMQPS {
                tracing::warn!("amqp.ca_file is set but the URL is not amqps://: TLS is off");
            }
            tls.cert_chain = Some(pem);
        }
        Ok(Arc::new(Broker {
            settings,
            uri,
            tls,
            current: tokio::sync::Mutex::new(None),
            topology: Mutex::new(Topology::default()),
            connects: AtomicU64::new(0),
        }))
    }

    pub fn settings(&self) -> &BrokerSettings {
        &self.settings
    }

    /// Connections established so far (1 after the first, +1 per reconnect).
    pub fn connects(&self) -> u64 {
        self.connects.load(Ordering::Relaxed)
    }

    pub fn backoff(&self) -> Backoff {
        Backoff::new(
            Duration::from_millis(self.settings.reconnect_min_ms),
            Duration::from_millis(self.settings.reconnect_max_ms),
        )
    }

    /// Adds to what is declared on every connection, and declares it now if
    /// connected.
    pub async fn add_topology(&self, topology: &Topology) -> Result<(), AmqpError> {
        {
            let mut all = self.topology.lock().unwrap_or_else(|e| e.into_inner());
            all.merge(topology);
        }
        let mut current = self.current.lock().await;
        if let Some(c) = current.as_mut() {
            if c.connection.status().connected() {
                declare_on(&c.connection, topology).await?;
            }
        }
        Ok(())
    }

    /// The live connection, connecting (once, no retry) when there is none.
    pub async fn connection(&self) -> Result<Arc<Connection>, AmqpError> {
        let mut current = self.current.lock().await;
        if let Some(c) = current.as_mut() {
            if c.connection.status().connected() {
                if !c.declared {
                    self.declare_all(&c.connection).await?;
                    c.declared = true;
                }
                return Ok(c.connection.clone());
            }
        }
        *current = None;
        let connection = Arc::new(self.connect_once().await?);
        let n = self.connects.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::info!(
            url = %self.settings.url,
            name = %self.settings.connection_name,
            connects = n,
            "connected to the AMQP broker"
        );
        let declared = match self.declare_all(&connection).await {
            Ok(()) => true,
            Err(e) => {
                *current = Some(Current {
                    connection,
                    declared: false,
                });
                return Err(e);
            }
        };
        *current = Some(Current {
            connection: connection.clone(),
            declared,
        });
        Ok(connection)
    }

    /// Like [`Broker::connection`], retrying with backoff until it works or
    /// `shutdown` fires.
    pub async fn connection_retrying(
        &self,
        shutdown: &CancellationToken,
    ) -> Result<Arc<Connection>, AmqpError> {
        let mut backoff = self.backoff();
        loop {
            if shutdown.is_cancelled() {
                return Err(AmqpError::Shutdown);
            }
            match self.connection().await {
                Ok(c) => return Ok(c),
                Err(e) => {
                    let delay = backoff.next_delay();
                    tracing::warn!(
                        error = %e,
                        transient = e.is_transient(),
                        retry_in_ms = delay.as_millis() as u64,
                        "AMQP broker not available"
                    );
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        () = shutdown.cancelled() => return Err(AmqpError::Shutdown),
                    }
                }
            }
        }
    }

    /// A new channel on the live connection.
    pub async fn channel(&self) -> Result<Channel, AmqpError> {
        let connection = self.connection().await?;
        match connection.create_channel().await {
            Ok(c) => Ok(c),
            Err(source) => {
                self.forget(&connection).await;
                Err(AmqpError::Protocol {
                    op: "channel.open",
                    source,
                })
            }
        }
    }

    /// Drops `connection` when it is the current one, so the next call
    /// connects afresh: a connection that cannot open a channel is dead,
    /// whatever its status says (a TCP connection cut without a close
    /// frame can leave it looking connected).
    pub async fn forget(&self, connection: &Arc<Connection>) {
        let mut current = self.current.lock().await;
        if current
            .as_ref()
            .is_some_and(|c| Arc::ptr_eq(&c.connection, connection))
        {
            tracing::warn!(url = %self.settings.url, "AMQP connection unusable; reconnecting");
            *current = None;
        }
    }

    /// Closes the connection (on shutdown); a later call reconnects.
    pub async fn close(&self) {
        let mut current = self.current.lock().await;
        if let Some(c) = current.take() {
            if c.connection.status().connected() {
                // Bounded: a broker that went away (or a close-ok that never
                // comes) must not hold a shutdown forever.
                let _ = tokio::time::timeout(
                    self.settings.connect_timeout(),
                    c.connection
                        .close(200, ShortString::from("riposte shutting down")),
                )
                .await;
            }
        }
    }

    async fn connect_once(&self) -> Result<Connection, AmqpError> {
        let url = self.settings.url.redacted();
        let properties = ConnectionProperties::default().with_connection_name(LongString::from(
            self.settings.connection_name.as_bytes().to_vec(),
        ));
        let runtime = lapin::runtime::default_runtime().map_err(|source| AmqpError::Connect {
            url: url.clone(),
            source,
        })?;
        let connect = Connection::connect_uri_with_config(
            self.uri.clone(),
            properties,
            self.tls.clone(),
            runtime,
        );
        match tokio::time::timeout(self.settings.connect_timeout(), connect).await {
            Ok(Ok(c)) => Ok(c),
            Ok(Err(source)) => Err(AmqpError::Connect { url, source }),
            Err(_) => Err(AmqpError::ConnectTimeout { url }),
        }
    }

    async fn declare_all(&self, connection: &Connection) -> Result<(), AmqpError> {
        let topology = self
            .topology
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if topology.is_empty() {
            return Ok(());
        }
        declare_on(connection, &topology).await
    }
}

/// Declares on a channel of its own: a refused declaration closes the
/// channel it was made on, and no other user should lose theirs for it.
async fn declare_on(connection: &Connection, topology: &Topology) -> Result<(), AmqpError> {
    let channel = connection
        .create_channel()
        .await
        .map_err(AmqpError::protocol("channel.open"))?;
    let result = topology.declare(&channel).await;
    if channel.status().connected() {
        let _ = channel.close(200, ShortString::from("declared")).await;
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_its_cap_with_jitter() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(1000));
        let first = b.next_delay();
        assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
        for _ in 0..10 {
            b.next_delay();
        }
        let capped = b.next_delay();
        assert!(capped >= Duration::from_millis(500) && capped <= Duration::from_millis(1000));
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(100));
    }
}
