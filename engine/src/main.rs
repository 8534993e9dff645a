use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = riposte_engine::cli::Cli::parse();
    match riposte_engine::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("riposte: {e:#}");
            ExitCode::from(2)
        }
    }
}
