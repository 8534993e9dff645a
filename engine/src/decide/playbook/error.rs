//! The playbook runtime's errors.

use std::io;
use std::path::PathBuf;

/// Why a playbook, or the playbook directory, could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum PlaybookError {
    /// The playbook directory is missing or unreadable.
    #[error("playbook directory {}: {source}", path.display())]
    Dir { path: PathBuf, source: io::Error },
    #[error("{}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    /// A problem in the metadata header or the trigger, at a place in the file.
    #[error("{}:{line}:{column}: {message}", path.display())]
    Header {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    /// The script does not compile.
    #[error("{}:{line}:{column}: {message}", path.display())]
    Compile {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    /// The checker found mistakes: each line `file:line:column: message`.
    #[error("{}", findings.join("\n"))]
    Check {
        path: PathBuf,
        findings: Vec<String>,
    },
    /// Two files declare the same playbook name.
    #[error("{}: playbook `{name}` is already defined by {}", path.display(), other.display())]
    Duplicate {
        path: PathBuf,
        name: String,
        other: PathBuf,
    },
    #[error("fixtures {}: {message}", path.display())]
    Fixture { path: PathBuf, message: String },
}

impl PlaybookError {
    /// The file the error is about.
    pub fn path(&self) -> &std::path::Path {
        match self {
            PlaybookError::Dir { path, .. }
            | PlaybookError::Read { path, .. }
            | PlaybookError::Header { path, .. }
            | PlaybookError::Compile { path, .. }
            | PlaybookError::Check { path, .. }
            | PlaybookError::Duplicate { path, .. }
            | PlaybookError::Fixture { path, .. } => path,
        }
    }
}
