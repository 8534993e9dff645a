//! What can go wrong talking to RabbitMQ, and whether trying again helps.
//!
//! Callers retry [`AmqpError::is_transient`] errors (the connection broke,
//! the broker nacked, a timeout) and give up on the others (the broker
//! refused the credentials or the declaration, a message was unroutable).

use lapin::protocol::{AMQPErrorKind, AMQPHardError, AMQPSoftError};

#[derive(Debug, thiserror::Error)]
pub enum AmqpError {
    #[error("AMQP configuration: {0}")]
    Config(String),
    #[error("cannot connect to {url}: {source}")]
    Connect {
        url: String,
        #[source]
        source: lapin::Error,
    },
    #[error("connecting to {url} timed out")]
    ConnectTimeout { url: String },
    #[error("{op}: {source}")]
    Protocol {
        op: &'static str,
        #[source]
        source: lapin::Error,
    },
    #[error("message to exchange `{exchange}` with routing key `{routing_key}` is unroutable: {reply_code} {reply_text}")]
    Unroutable {
        exchange: String,
        routing_key: String,
        reply_code: u16,
        reply_text: String,
    },
    #[error("the broker refused to take the message (nack)")]
    Nacked,
    #[error("shutting down")]
    Shutdown,
}

impl AmqpError {
    pub(crate) fn protocol(op: &'static str) -> impl FnOnce(lapin::Error) -> AmqpError {
        move |source| AmqpError::Protocol { op, source }
    }

    /// Whether the same operation may succeed later (after a reconnect).
    pub fn is_transient(&self) -> bool {
        match self {
            AmqpError::Config(_) | AmqpError::Unroutable { .. } => false,
            AmqpError::ConnectTimeout { .. } | AmqpError::Nacked | AmqpError::Shutdown => true,
            AmqpError::Connect { source, .. } | AmqpError::Protocol { source, .. } => {
                lapin_transient(source)
            }
        }
    }

    /// A fixed label for metrics.
    pub fn code(&self) -> &'static str {
        match self {
            AmqpError::Config(_) => "config",
            AmqpError::Connect { .. } | AmqpError::ConnectTimeout { .. } => "connect",
            AmqpError::Protocol { source, .. } => {
                if lapin_transient(source) {
                    "connection"
                } else {
                    "refused"
                }
            }
            AmqpError::Unroutable { .. } => "unroutable",
            AmqpError::Nacked => "nacked",
            AmqpError::Shutdown => "shutdown",
        }
    }
}

/// The broker's soft errors about our request (access refused, not found,
/// a declaration that disagrees) do not heal by themselves; a broken
/// connection, a forced close or an internal error do.
fn lapin_transient(e: &lapin::Error) -> bool {
    match e.kind() {
        lapin::ErrorKind::ProtocolError(amqp) => match amqp.kind() {
            AMQPErrorKind::Soft(soft) => matches!(
                soft,
                AMQPSoftError::RESOURCELOCKED | AMQPSoftError::NOCONSUMERS
            ),
            AMQPErrorKind::Hard(hard) => matches!(
                hard,
                AMQPHardError::CONNECTIONFORCED
                    | AMQPHardError::RESOURCEERROR
                    | AMQPHardError::INTERNALERROR
                    | AMQPHardError::CHANNELERROR
                    | AMQPHardError::UNEXPECTEDFRAME
                    | AMQPHardError::FRAMEERROR
            ),
        },
        lapin::ErrorKind::AuthProviderError(_)
        | lapin::ErrorKind::InvalidProtocolVersion(_)
        | lapin::ErrorKind::NoDefaultRuntime
        | lapin::ErrorKind::SerialisationError(_) => false,
        _ => true,
    }
}
