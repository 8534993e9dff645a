//! `riposte completions bash|zsh|fish`: the shell completion script, from
//! the same clap definition the binary parses with.

use std::process::ExitCode;

use clap::{Args, CommandFactory};
use clap_complete::Shell;

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// bash, zsh or fish (also elvish and powershell).
    pub shell: Shell,
}

pub fn run(args: CompletionsArgs) -> anyhow::Result<ExitCode> {
    let mut cmd = super::Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "riposte", &mut out);
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(&out).and_then(|()| stdout.flush()) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shell_gets_a_script_naming_the_client_commands() {
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let mut out = Vec::new();
            clap_complete::generate(
                shell,
                &mut super::super::Cli::command(),
                "riposte",
                &mut out,
            );
            let text = String::from_utf8_lossy(&out);
            for word in [
                "quarantines",
                "approvals",
                "audit",
                "outbox",
                "server",
                "token-file",
            ] {
                assert!(text.contains(word), "{shell}: {word}");
            }
        }
    }
}
