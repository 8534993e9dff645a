//! `riposte hash-token`: the SHA-256 to configure for an API token.

use std::io::{self, BufRead};
use std::process::ExitCode;

use clap::Args;
use rand::RngCore;

#[derive(Debug, Args)]
pub struct HashTokenArgs {
    /// Make a new random token and print it with its hash, instead of
    /// reading one from standard input.
    #[arg(long)]
    pub generate: bool,
}

pub fn run(args: HashTokenArgs) -> anyhow::Result<ExitCode> {
    if args.generate {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        println!("token:  {token}");
        println!("sha256: {}", crate::auth::hash_token(&token));
        return Ok(ExitCode::SUCCESS);
    }
    // Read from stdin, never from arguments: those end up in shell history
    // and process listings.
    let mut line = String::new();
    io::stdin().lock().read_line(&mut line)?;
    let token = line.trim_end_matches(['\r', '\n']);
    if token.is_empty() {
        eprintln!("no token on standard input (or use --generate)");
        return Ok(ExitCode::from(2));
    }
    println!("{}", crate::auth::hash_token(token));
    Ok(ExitCode::SUCCESS)
}
