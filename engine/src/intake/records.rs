//! Reading recorded logs from files or standard input, one record per line,
//! for the offline commands (`parse`, `replay`, `playbook test`).

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};

use std::path::{Path, PathBuf};

/// Longest line the offline readers accept before reporting it as too long;
/// the bytes beyond are skipped, so one runaway line cannot exhaust memory.
pub const MAX_LINE_BYTES: usize = 1024 * 1024;

/// Opens `path`, or standard input when it is `-`.
/// The files an offline command reads: those named, or standard input
/// (`-`) when none is.
pub fn inputs(files: Vec<PathBuf>) -> Vec<PathBuf> {
    if files.is_empty() {
        vec![PathBuf::from("-")]
    } else {
        files
    }
}

pub fn open(path: &Path) -> io::Result<Box<dyn BufRead>> {
    if path.as_os_str() == "-" {
        Ok(Box::new(BufReader::new(io::stdin())))
    } else {
        Ok(Box::new(BufReader::with_capacity(
            256 * 1024,
            File::open(path)?,
        )))
    }
}

/// One line of input.
#[derive(Debug)]
pub enum Line<'a> {
    /// The line's bytes without the trailing newline (and CR).
    Record(&'a [u8]),
    /// The line exceeded [`MAX_LINE_BYTES`]; this many bytes were skipped.
    TooLong(usize),
}

/// Calls `f(line_number, line)` for every non-empty line (1-based numbers).
/// Lines are handed over as bytes: invalid UTF-8 is the parser's to report.
pub fn for_each_line<R: BufRead + ?Sized>(
    reader: &mut R,
    mut f: impl FnMut(u64, Line<'_>),
) -> io::Result<()> {
    let mut buf = Vec::with_capacity(4096);
    let mut line_no = 0u64;
    loop {
        buf.clear();
        let n = (&mut *reader)
            .take(MAX_LINE_BYTES as u64 + 1)
            .read_until(b'\n', &mut buf)?;
        if n == 0 {
            return Ok(());
        }
        line_no += 1;
        if buf.len() > MAX_LINE_BYTES && buf.last() != Some(&b'\n') {
            // Skip the rest of the runaway line.
            let mut skipped = buf.len();
            loop {
                let chunk = reader.fill_buf()?;
                if chunk.is_empty() {
                    break;
                }
                match memchr::memchr(b'\n', chunk) {
                    Some(i) => {
                        skipped += i;
                        reader.consume(i + 1);
                        break;
                    }
                    None => {
                        let len = chunk.len();
                        skipped += len;
                        reader.consume(len);
                    }
                }
            }
            f(line_no, Line::TooLong(skipped));
            continue;
        }
        let mut line = &buf[..];
        while let [rest @ .., b'\n' | b'\r'] = line {
            line = rest;
        }
        if line.iter().all(|b| b.is_ascii_whitespace()) {
            continue;
        }
        f(line_no, Line::Record(line));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(input: &[u8]) -> Vec<(u64, Result<Vec<u8>, usize>)> {
        let mut out = Vec::new();
        for_each_line(&mut io::Cursor::new(input), |n, line| {
            out.push((
                n,
                match line {
                    Line::Record(r) => Ok(r.to_vec()),
                    Line::TooLong(len) => Err(len),
                },
            ))
        })
        .expect("reading from memory");
        out
    }

    #[test]
    fn numbers_lines_and_skips_blank_ones() {
        let out = collect(b"a\r\n\n  \nb");
        assert_eq!(out, vec![(1, Ok(b"a".to_vec())), (4, Ok(b"b".to_vec()))]);
    }

    #[test]
    fn runaway_line_is_reported_and_skipped() {
        let mut input = vec![b'x'; MAX_LINE_BYTES + 10];
        input.extend_from_slice(b"\nnext\n");
        let out = collect(&input);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0], (1, Err(MAX_LINE_BYTES + 10)));
        assert_eq!(out[1], (2, Ok(b"next".to_vec())));
    }
}
