use std::process::ExitCode;

use clap::Parser;

// Events are allocated on the reading thread and freed on a pipeline shard:
// mimalloc handles that cross-thread traffic without the lock contention of
// the system allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = riposte_engine::cli::Cli::parse();
    match riposte_engine::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("riposte: {}", riposte_engine::error::report(e.as_ref()));
            ExitCode::from(2)
        }
    }
}
