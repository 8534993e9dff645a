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
    let state_file = position_file(&data_dir, &config.path);
    let poll = Duration::from_millis(config.poll_interval_ms.max(10));
    let max_line = ingest.options().max_record_bytes;
    let mut saved = load_position(&state_file);
    let mut missing_logged = false;
    'reopen: loop {
        let (mut file, inode, len) = match open(&config.path).await {
            Ok(f) => f,
            Err(e) => {
                if !missing_logged {
                    tracing::warn!(path = %config.path.display(), error = %e, "EVE file not readable yet; waiting for it");
                    missing_logged = true;
                }
                tokio::select! {
                    () = tokio::time::sleep(poll) => continue 'reopen,
                    () = shutdown.cancelled() => return,
                }
            }
        };
        missing_logged = false;
        let mut offset = match saved.take() {
            Some(p) if p.inode == inode && p.offset <= len => p.offset,
            // A remembered position in another file (rotated while we were
            // down) or beyond the end (truncated): the new content is unread.
            Some(_) => 0,
            None if config.start_at == StartAt::End => len,
            None => 0,
        };
        if let Err(e) = file.seek(SeekFrom::Start(offset)).await {
            tracing::warn!(path = %config.path.display(), error = %e, "cannot seek EVE file");
            tokio::time::sleep(poll).await;
            continue 'reopen;
        }
        tracing::info!(path = %config.path.display(), offset, "following EVE file");
        let mut pending: Vec<u8> = Vec::with_capacity(64 * 1024);
        let mut skipped: u64 = 0;
        let mut draining = false;
        let mut chunk = vec![0u8; 64 * 1024];
        let mut last_saved = Position { inode, offset };
        let mut last_save_at = Instant::now();
        loop {
            let n = tokio::select! {
                r = file.read(&mut chunk) => r,
                () = shutdown.cancelled() => {
                    save_position(&state_file, Position { inode, offset });
                    return;
                }
            };
            match n {
                Ok(0) if draining => {
                    // The old file is read to its end: move to the new one.
                    saved = Some(Position {
                        inode: u64::MAX,
                        offset: 0,
                    });
                    continue 'reopen;
                }
                Ok(0) => {
                    let pos = Position { inode, offset };
                    if pos != last_saved && last_save_at.elapsed() >= Duration::from_secs(1) {
                        save_position(&state_file, pos);
                        last_saved = pos;
                        last_save_at = Instant::now();
                    }
                    tokio::select! {
                        () = tokio::time::sleep(poll) => {}
                        () = shutdown.cancelled() => {
                            save_position(&state_file, pos);
                            return;
                        }
                    }
                    match tokio::fs::metadata(&config.path).await {
                        Ok(meta) if meta.ino() != inode => {
                            // Rotated. Lines may have reached the old file
                            // after our last read: read it to its end first,
                            // then start the new one at 0.
                            tracing::info!(path = %config.path.display(), "EVE file rotated");
                            draining = true;
                        }
                        Ok(meta) if meta.len() < offset => {
                            tracing::info!(path = %config.path.display(), "EVE file truncated");
                            saved = Some(Position { inode, offset: 0 });
                            continue 'reopen;
                        }
                        _ => {}
                    }
                }
                Ok(n) => {
                    let mut data = &chunk[..n];
                    while let Some(i) = memchr::memchr(b'\n', data) {
                        let part = &data[..i];
                        data = &data[i + 1..];
                        let line_len = pending.len() as u64 + skipped + i as u64 + 1;
                        if skipped > 0 {
                            // The end of an oversized line, already counted.
                            skipped = 0;
                            offset += line_len;
                            continue;
                        }
                        let line: &[u8] = if pending.is_empty() {
                            part
                        } else {
                            pending.extend_from_slice(part);
                            &pending
                        };
                        let closed = handle_line(line, &ingest, &pipeline).await;
                        offset += line_len;
                        pending.clear();
                        if closed {
                            save_position(&state_file, Position { inode, offset });
                            return;
                        }
                    }
                    if skipped > 0 {
                        skipped += data.len() as u64;
                    } else if pending.len() + data.len() > max_line {
                        // Skip the rest of this line instead of buffering it.
                        ingest.metrics().dropped("too_long").inc();
                        skipped = (pending.len() + data.len()) as u64;
                        pending.clear();
                    } else {
                        pending.extend_from_slice(data);
                    }
                }
                Err(e) => {
                    tracing::warn!(path = %config.path.display(), error = %e, "EVE read failed; reopening");
                    saved = Some(Position { inode, offset });
                    tokio::time::sleep(poll).await;
                    continue 'reopen;
                }
            }
        }
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
