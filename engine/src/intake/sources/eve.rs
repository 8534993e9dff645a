//! Following Suricata's EVE JSON file.
//!
//! The file is polled for new lines; rotation (a new inode at the path) and
//! truncation (the file shrank below our position) are detected on every
//! poll. The position of the last record handed to the pipeline is saved in
//! the data directory, so a restart resumes where it stopped — neither
//! re-reading nor skipping records.

use std::io::SeekFrom;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::fs::File;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::sync::CancellationToken;

use super::{Ingest, Outcome};
use crate::config::{EveConfig, StartAt};
use crate::intake::pipeline::Pipeline;

/// Where a tail stands, as saved between runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    pub inode: u64,
    pub offset: u64,
}

/// The file that remembers the position of `path`, inside `data_dir`.
pub fn position_file(data_dir: &Path, path: &Path) -> PathBuf {
    let key = xxhash_rust::xxh3::xxh3_64(path.as_os_str().as_encoded_bytes());
    data_dir.join(format!("eve-{key:016x}.position.json"))
}

fn load_position(file: &Path) -> Option<Position> {
    let text = std::fs::read_to_string(file).ok()?;
    serde_json::from_str(&text).ok()
}

fn save_position(file: &Path, pos: Position) {
    let tmp = file.with_extension("tmp");
    let result = serde_json::to_vec(&pos)
        .map_err(std::io::Error::other)
        .and_then(|bytes| std::fs::write(&tmp, bytes))
        .and_then(|()| std::fs::rename(&tmp, file));
    if let Err(e) = result {
        tracing::warn!(file = %file.display(), error = %e, "cannot save EVE position");
    }
}

/// Follows one EVE file until shutdown.
pub async fn follow(
    config: EveConfig,
    data_dir: PathBuf,
    ingest: Arc<Ingest>,
    pipeline: Pipeline,
    shutdown: CancellationToken,
) {
    let tail = Tail {
        state_file: position_file(&data_dir, &config.path),
        poll: Duration::from_millis(config.poll_interval_ms.max(10)),
        max_line: ingest.options().max_record_bytes,
        config,
        ingest,
        pipeline,
        shutdown,
    };
    let mut saved = load_position(&tail.state_file);
    loop {
        let Some((mut file, inode, len)) = tail.open_when_there().await else {
            return;
        };
        let offset = match saved.take() {
            Some(p) if p.inode == inode && p.offset <= len => p.offset,
            // A remembered position in another file (rotated while we were
            // down) or beyond the end (truncated): the new content is unread.
            Some(_) => 0,
            None if tail.config.start_at == StartAt::End => len,
            None => 0,
        };
        if let Err(e) = file.seek(SeekFrom::Start(offset)).await {
            tracing::warn!(path = %tail.config.path.display(), error = %e, "cannot seek EVE file");
            tokio::time::sleep(tail.poll).await;
            continue;
        }
        tracing::info!(path = %tail.config.path.display(), offset, "following EVE file");
        match tail.read(Reading::new(file, inode, offset)).await {
            Next::Reopen(at) => saved = at,
            Next::Stop => return,
        }
    }
}

/// One EVE file followed, and where it goes.
struct Tail {
    config: EveConfig,
    state_file: PathBuf,
    poll: Duration,
    max_line: usize,
    ingest: Arc<Ingest>,
    pipeline: Pipeline,
    shutdown: CancellationToken,
}

/// What follows the end of reading one opened file.
enum Next {
    /// Open the path again, resuming at this position when given.
    Reopen(Option<Position>),
    /// Shutdown, or the pipeline closed: the position is saved.
    Stop,
}

/// One opened file being read.
struct Reading {
    file: File,
    inode: u64,
    /// Where the next unhandled line starts.
    offset: u64,
    /// The start of a line whose end has not been read yet.
    pending: Vec<u8>,
    /// Bytes of an oversized line skipped so far.
    skipped: u64,
    /// Rotated: read the old file to its end, then open the new one.
    draining: bool,
    last_saved: Position,
    last_save_at: Instant,
}

impl Reading {
    fn new(file: File, inode: u64, offset: u64) -> Reading {
        Reading {
            file,
            inode,
            offset,
            pending: Vec::with_capacity(64 * 1024),
            skipped: 0,
            draining: false,
            last_saved: Position { inode, offset },
            last_save_at: Instant::now(),
        }
    }

    fn position(&self) -> Position {
        Position {
            inode: self.inode,
            offset: self.offset,
        }
    }
}

impl Tail {
    /// Opens the file, waiting for it to appear; none at shutdown.
    async fn open_when_there(&self) -> Option<(File, u64, u64)> {
        let mut missing_logged = false;
        loop {
            match open(&self.config.path).await {
                Ok(f) => return Some(f),
                Err(e) => {
                    if !missing_logged {
                        tracing::warn!(path = %self.config.path.display(), error = %e, "EVE file not readable yet; waiting for it");
                        missing_logged = true;
                    }
                    tokio::select! {
                        () = tokio::time::sleep(self.poll) => {}
                        () = self.shutdown.cancelled() => return None,
                    }
                }
            }
        }
    }

    /// Reads `r` until it must be reopened or everything stops.
    async fn read(&self, mut r: Reading) -> Next {
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            let n = tokio::select! {
                n = r.file.read(&mut chunk) => n,
                () = self.shutdown.cancelled() => {
                    save_position(&self.state_file, Position { inode: r.inode, offset: r.offset });
                    return Next::Stop;
                }
            };
            match n {
                Ok(0) if r.draining => {
                    // The old file is read to its end: move to the new one.
                    return Next::Reopen(Some(Position {
                        inode: u64::MAX,
                        offset: 0,
                    }));
                }
                Ok(0) => {
                    if let Some(next) = self.at_end(&mut r).await {
                        return next;
                    }
                }
                Ok(n) => {
                    if self.lines(&mut r, &chunk[..n]).await {
                        save_position(&self.state_file, r.position());
                        return Next::Stop;
                    }
                }
                Err(e) => {
                    tracing::warn!(path = %self.config.path.display(), error = %e, "EVE read failed; reopening");
                    tokio::time::sleep(self.poll).await;
                    return Next::Reopen(Some(r.position()));
                }
            }
        }
    }

    /// At the end of the file: saves the position now and then, waits a
    /// poll, and looks for rotation and truncation.
    async fn at_end(&self, r: &mut Reading) -> Option<Next> {
        let pos = r.position();
        if pos != r.last_saved && r.last_save_at.elapsed() >= Duration::from_secs(1) {
            save_position(&self.state_file, pos);
            r.last_saved = pos;
            r.last_save_at = Instant::now();
        }
        tokio::select! {
            () = tokio::time::sleep(self.poll) => {}
            () = self.shutdown.cancelled() => {
                save_position(&self.state_file, pos);
                return Some(Next::Stop);
            }
        }
        match tokio::fs::metadata(&self.config.path).await {
            Ok(meta) if meta.ino() != r.inode => {
                // Rotated. Lines may have reached the old file after our
                // last read: read it to its end first, then start the new
                // one at 0.
                tracing::info!(path = %self.config.path.display(), "EVE file rotated");
                r.draining = true;
            }
            Ok(meta) if meta.len() < r.offset => {
                tracing::info!(path = %self.config.path.display(), "EVE file truncated");
                return Some(Next::Reopen(Some(Position {
                    inode: r.inode,
                    offset: 0,
                })));
            }
            _ => {}
        }
        None
    }

    /// Hands the complete lines of `data` to the pipeline and keeps the
    /// rest; `true` when the pipeline closed.
    async fn lines(&self, r: &mut Reading, mut data: &[u8]) -> bool {
        while let Some(i) = memchr::memchr(b'\n', data) {
            let part = &data[..i];
            data = &data[i + 1..];
            let line_len = r.pending.len() as u64 + r.skipped + i as u64 + 1;
            if r.skipped > 0 {
                // The end of an oversized line, already counted.
                r.skipped = 0;
                r.offset += line_len;
                continue;
            }
            let line: &[u8] = if r.pending.is_empty() {
                part
            } else {
                r.pending.extend_from_slice(part);
                &r.pending
            };
            let closed = handle_line(line, &self.ingest, &self.pipeline).await;
            r.offset += line_len;
            r.pending.clear();
            if closed {
                return true;
            }
        }
        if r.skipped > 0 {
            r.skipped += data.len() as u64;
        } else if r.pending.len() + data.len() > self.max_line {
            // Skip the rest of this line instead of buffering it.
            self.ingest.metrics().dropped("too_long").inc();
            r.skipped = (r.pending.len() + data.len()) as u64;
            r.pending.clear();
        } else {
            r.pending.extend_from_slice(data);
        }
        false
    }
}

async fn open(path: &Path) -> std::io::Result<(File, u64, u64)> {
    let file = File::open(path).await?;
    let meta = file.metadata().await?;
    Ok((file, meta.ino(), meta.len()))
}

/// Parses one line and waits for room; `true` when the pipeline closed.
async fn handle_line(line: &[u8], ingest: &Ingest, pipeline: &Pipeline) -> bool {
    if line.iter().all(u8::is_ascii_whitespace) {
        return false;
    }
    match ingest.record(line) {
        Outcome::Event(ev) => pipeline.send(ev).await.is_err(),
        Outcome::Ignored | Outcome::Failed(_) => false,
    }
}
