//! `riposte serve`: run the service.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use tokio_util::sync::CancellationToken;

use crate::config::Config;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The TOML config file. Without it, Riposte runs on its embedded
    /// defaults: syslog UDP+TCP on 127.0.0.1:5514, HTTP on 127.0.0.1:8080,
    /// playbooks from ./playbooks, data in ./riposte-data.
    #[arg(long, short, env = "RIPOSTE_CONFIG")]
    pub config: Option<PathBuf>,
    /// `all` (default): everything in this process. `ingest`: receive
    /// syslog, HTTP and EVE and publish the events to the partition queues
    /// of `[amqp]`. `worker`: consume the partitions and run the playbooks.
    #[arg(long, env = "RIPOSTE_ROLE", default_value = "all")]
    pub role: crate::intake::queues::Role,
}

pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let config = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    crate::telemetry::init(config.log.format, &config.log.level);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("riposte")
        .build()?;
    runtime.block_on(async move {
        let shutdown = CancellationToken::new();
        crate::serve::cancel_on_signal(shutdown.clone());
        let log_format = config.log.format;
        let summary_config = config.clone();
        let running = crate::serve::start_role(config, args.role, shutdown).await?;
        // Once, for the person who started it. A JSON log stream is read by
        // a collector: the block would be noise there unless a person is
        // watching the terminal.
        use std::io::IsTerminal as _;
        if log_format == crate::config::LogFormat::Text || std::io::stderr().is_terminal() {
            eprint!(
                "{}",
                crate::serve::summary::render(&running, &summary_config)
            );
        }
        running.wait().await;
        Ok(ExitCode::SUCCESS)
    })
}
