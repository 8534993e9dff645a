//! `riposte` as a client of a running Riposte's API, in the habits of
//! `kubectl` and `cscli`: one command group per resource, `-o
//! table|json|yaml`, the server and token from flags or the environment.
//!
//! Every request and answer is one of the handlers' own types
//! ([`crate::api::wire`]), so the client and the server cannot drift.
//! Exit codes: 0 done, 1 the API refused or could not be reached (one line
//! with the problem's title and detail), 2 usage (clap's own, or a flag
//! value the client cannot use).

pub mod actions;
pub mod approvals;
pub mod audit;
pub mod decisions;
pub mod edl;
mod http;
pub mod outbox;
pub mod output;
pub mod playbooks;
pub mod quarantines;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

pub use http::Client;
pub use output::Format;

/// Where the client looks without --server or RIPOSTE_URL.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:8080";

/// Where the API is and who is asking; common to every client command.
#[derive(Debug, Clone, Args)]
pub struct Connection {
    /// The Riposte API's base URL.
    #[arg(
        long,
        env = "RIPOSTE_URL",
        default_value = DEFAULT_SERVER,
        global = true
    )]
    pub server: String,
    /// The API bearer token (prefer --token-file or the environment: a flag
    /// shows in the process list).
    #[arg(long, env = "RIPOSTE_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
    /// A file holding the API token (overrides --token and RIPOSTE_TOKEN).
    #[arg(long, value_name = "FILE", global = true)]
    pub token_file: Option<PathBuf>,
    /// A PEM file of CA certificates to trust for an https server, besides
    /// the public roots.
    #[arg(long, value_name = "FILE", global = true)]
    pub ca_file: Option<PathBuf>,
    /// Output: a table that fits the terminal, JSON or YAML (the API's own
    /// documents).
    #[arg(
        short = 'o',
        long = "output",
        value_enum,
        default_value = "table",
        global = true
    )]
    pub output: Format,
    /// Seconds to wait for each answer.
    #[arg(long, default_value_t = 30, value_name = "SECS", global = true)]
    pub timeout: u64,
}

/// Why a client command failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// A value the client cannot use (exit 2).
    #[error("{0}")]
    Usage(String),
    /// The API answered with a problem document.
    #[error("{status} {title}: {detail}{hint}")]
    Api {
        status: u16,
        title: String,
        detail: String,
        hint: &'static str,
    },
    #[error("cannot reach {server}: {cause}")]
    Unreachable { server: String, cause: String },
    #[error("TLS with {server} failed: {cause} (is --server http or https, and does --ca-file hold the server's CA?)")]
    Tls { server: String, cause: String },
    #[error("{server} did not answer within {secs} s")]
    Timeout { server: String, secs: u64 },
    /// A success the client cannot read: another version of Riposte, or not
    /// Riposte at all. The body is not shown.
    #[error("the answer to {what} is not one this client understands ({cause}); is --server a Riposte of the same version?")]
    Unexpected { what: String, cause: String },
    /// The API did what was asked, and what came of it is a failure (an
    /// action refused, a playbook file refused); already printed.
    #[error("{0}")]
    Failed(String),
    #[error("writing the output: {0}")]
    Output(#[source] std::io::Error),
}

impl ClientError {
    fn exit_code(&self) -> ExitCode {
        match self {
            ClientError::Usage(_) => ExitCode::from(2),
            ClientError::Output(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                ExitCode::SUCCESS
            }
            _ => ExitCode::FAILURE,
        }
    }
}

/// Runs one client command on a small runtime of its own, and turns its
/// error into one line on stderr and the exit code.
pub fn run<F, Fut>(conn: &Connection, command: F) -> anyhow::Result<ExitCode>
where
    F: FnOnce(Client, Format) -> Fut,
    Fut: std::future::Future<Output = Result<(), ClientError>>,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let outcome = match Client::new(conn) {
        Ok(client) => runtime.block_on(command(client, conn.output)),
        Err(e) => Err(e),
    };
    Ok(match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let code = e.exit_code();
            if code != ExitCode::SUCCESS {
                eprintln!("riposte: {e}");
            }
            code
        }
    })
}

/// `NS/POD` into its two halves.
pub fn pod_ref(text: &str) -> Result<(String, String), ClientError> {
    match text.split_once('/') {
        Some((ns, pod)) if !ns.is_empty() && !pod.is_empty() && !pod.contains('/') => {
            Ok((ns.to_owned(), pod.to_owned()))
        }
        _ => Err(ClientError::Usage(format!("`{text}` is not NAMESPACE/POD"))),
    }
}
