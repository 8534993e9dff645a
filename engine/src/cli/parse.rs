//! `riposte parse`: log lines in, normalized NDJSON out.

use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use riposte_firewall::{parse_record, Format, ParseOptions, Parsed};

use crate::intake::records::{self, for_each_line, open, Line};

#[derive(Debug, Args)]
pub struct ParseArgs {
    /// Payload format: auto, panos, cef, leef or eve.
    #[arg(long, default_value = "auto")]
    pub format: Format,
    /// The firewall's time zone, for PAN-OS CSV times (which carry none).
    #[arg(long, default_value = "UTC")]
    pub timezone: chrono_tz::Tz,
    /// Files to read; `-` or nothing reads standard input.
    pub files: Vec<PathBuf>,
}

pub fn run(args: ParseArgs) -> anyhow::Result<ExitCode> {
    let opts = ParseOptions {
        format: args.format,
        timezone: args.timezone,
        ..ParseOptions::default()
    };
    let files = records::inputs(args.files);
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let (mut parsed, mut ignored, mut failed) = (0u64, 0u64, 0u64);
    let mut write_error: Option<io::Error> = None;
    for file in &files {
        let name = file.display().to_string();
        let mut reader = match open(file) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("{name}: {e}");
                return Ok(ExitCode::from(2));
            }
        };
        for_each_line(&mut reader, |line_no, line| {
            if write_error.is_some() {
                return;
            }
            let record = match line {
                Line::Record(r) => r,
                Line::TooLong(len) => {
                    failed += 1;
                    eprintln!("{name}:{line_no}: line of {len} bytes is too long");
                    return;
                }
            };
            match parse_record(record, &opts) {
                Ok(Parsed::Event(ev)) => {
                    parsed += 1;
                    let written = serde_json::to_writer(&mut out, &ev)
                        .map_err(io::Error::from)
                        .and_then(|()| out.write_all(b"\n"));
                    if let Err(e) = written {
                        write_error = Some(e);
                    }
                }
                Ok(Parsed::Ignored(_)) => ignored += 1,
                Err(e) => {
                    failed += 1;
                    eprintln!("{name}:{line_no}: {e}");
                }
            }
        })?;
    }
    match write_error.map_or_else(|| out.flush(), Err) {
        // A closed pipe (`riposte parse | head`) is the reader's choice.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(ExitCode::SUCCESS),
        Err(e) => return Err(e.into()),
        Ok(()) => {}
    }
    if ignored > 0 {
        eprintln!("{ignored} record(s) ignored (valid, but not threat or traffic logs)");
    }
    if failed > 0 {
        eprintln!("{failed} record(s) failed, {parsed} parsed");
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}
