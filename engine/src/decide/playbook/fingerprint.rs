//! A fingerprint of the playbook files: their names and contents.
//!
//! The watcher reloads only when it changed, so an event that did not
//! change what would be compiled (a `touch`, a save of the same text, a
//! stray event the filter let through) costs a few reads and hashes, and
//! never a reload, a refused playbook's error line, or a reload counted.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use crate::decide::playbook::PlaybookError;

/// Built up file by file, in the order the files are listed.
#[derive(Debug, Default)]
pub struct Fingerprint(Vec<u8>);

impl Fingerprint {
    /// One file: the xxh3 of its text, or how reading it failed.
    pub fn file(&mut self, path: &Path, content: Result<u64, ErrorKind>) {
        self.0
            .extend_from_slice(path.as_os_str().as_encoded_bytes());
        self.0.push(0);
        match content {
            Ok(hash) => {
                self.0.push(1);
                self.0.extend_from_slice(&hash.to_le_bytes());
            }
            Err(kind) => {
                self.0.push(2);
                self.0.extend_from_slice(format!("{kind:?}").as_bytes());
            }
        }
        self.0.push(0);
    }

    /// The directory could not be listed.
    pub fn listing_failed(&mut self, error: &str) {
        self.0.push(3);
        self.0.extend_from_slice(error.as_bytes());
        self.0.push(0);
    }

    pub fn finish(&self) -> u64 {
        xxhash_rust::xxh3::xxh3_64(&self.0)
    }
}

/// The xxh3 of a playbook's text, as compiled playbooks keep it.
pub fn content_hash(source: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(source.as_bytes())
}

/// Reads `files` (or the listing's error) now and fingerprints them.
pub fn current(files: Result<Vec<PathBuf>, PlaybookError>) -> u64 {
    let mut fp = Fingerprint::default();
    match files {
        Ok(files) => {
            for path in files {
                let content = std::fs::read_to_string(&path)
                    .map(|s| content_hash(&s))
                    .map_err(|e| e.kind());
                fp.file(&path, content);
            }
        }
        Err(e) => fp.listing_failed(&e.to_string()),
    }
    fp.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(dir: &Path) -> u64 {
        current(crate::decide::playbook::runtime::list_playbooks(dir))
    }

    #[test]
    fn changes_with_content_names_and_files_not_with_reads() {
        let dir = tempfile::tempdir().expect("dir");
        let a = dir.path().join("a.rhai");
        std::fs::write(&a, "let x = 1;\n").expect("write");
        let first = of(dir.path());
        let _ = std::fs::read_to_string(&a).expect("read");
        assert_eq!(of(dir.path()), first, "reading changes nothing");
        std::fs::write(&a, "let x = 1;\n").expect("same text");
        assert_eq!(
            of(dir.path()),
            first,
            "rewriting the same text changes nothing"
        );
        std::fs::write(&a, "let x = 2;\n").expect("new text");
        let second = of(dir.path());
        assert_ne!(second, first, "new content");
        std::fs::rename(&a, dir.path().join("b.rhai")).expect("rename");
        let third = of(dir.path());
        assert_ne!(third, second, "a renamed file");
        std::fs::write(dir.path().join("c.rhai"), "let y = 1;\n").expect("new file");
        assert_ne!(of(dir.path()), third, "a new file");
    }

    #[test]
    fn a_missing_directory_has_a_stable_fingerprint() {
        let missing = Path::new("/nonexistent/riposte-playbooks");
        assert_eq!(of(missing), of(missing));
    }
}
