//! Hot reload: the playbook directory is watched, and SIGHUP reloads too.
//!
//! Only events that can change what is loaded count: writes, creates,
//! removes and renames, never reads (a reload's own reads would otherwise
//! set off the next reload, forever). They are debounced (an editor's save
//! is a burst of them), and the reload happens only when the files' names
//! or contents differ from what the last reload read (see
//! [`fingerprint`](super::fingerprint)). A reload compiles on a blocking
//! thread, then swaps the set in one step, so events keep flowing through
//! the old set meanwhile. Kubernetes ConfigMap mounts update through a
//! `..data` symlink swap rather than the `.rhai` names themselves: that
//! counts as a change too. SIGHUP always reloads.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use notify::event::{AccessKind, AccessMode, EventKind, ModifyKind};
use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::decide::playbook::runtime::{PlaybookRuntime, ReloadReport};

impl PlaybookRuntime {
    /// Watches the playbook directory (when `watch` is on) and SIGHUP until
    /// `shutdown`.
    pub fn spawn_reloader(self: Arc<Self>, shutdown: CancellationToken) -> JoinHandle<()> {
        tokio::spawn(async move {
            let (tx, mut changes) = mpsc::channel::<()>(1);
            // Kept alive for the task's life: dropping it stops the watch.
            let _watcher = if self.cfg.watch {
                start_watcher(&self.cfg.dir, tx)
            } else {
                None
            };
            let mut hangup = match tokio::signal::unix::signal(
                tokio::signal::unix::SignalKind::hangup(),
            ) {
                Ok(s) => Some(s),
                Err(e) => {
                    tracing::warn!(target: "riposte::playbook", "cannot listen for SIGHUP: {e}");
                    None
                }
            };
            let debounce = Duration::from_millis(self.cfg.watch_debounce_ms);
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    Some(()) = changes.recv() => {
                        // Wait for a quiet period before reloading.
                        loop {
                            tokio::select! {
                                _ = shutdown.cancelled() => return,
                                _ = tokio::time::sleep(debounce) => break,
                                Some(()) = changes.recv() => continue,
                            }
                        }
                        reload_if_changed(&self).await;
                    }
                    Some(()) = async {
                        match hangup.as_mut() {
                            Some(h) => h.recv().await,
                            None => std::future::pending().await,
                        }
                    } => {
                        reload_in_background(&self, "SIGHUP").await;
                    }
                }
            }
        })
    }
}

async fn reload_in_background(rt: &Arc<PlaybookRuntime>, why: &'static str) {
    let rt2 = rt.clone();
    match tokio::task::spawn_blocking(move || rt2.reload()).await {
        Ok(report) => log_report(&report, why),
        Err(e) => tracing::error!(target: "riposte::playbook", "playbook reload failed: {e}"),
    }
}

async fn reload_if_changed(rt: &Arc<PlaybookRuntime>) {
    let rt2 = rt.clone();
    match tokio::task::spawn_blocking(move || rt2.reload_if_changed()).await {
        Ok(Some(report)) => log_report(&report, "file change"),
        Ok(None) => {
            tracing::debug!(target: "riposte::playbook", "playbook files touched but unchanged: not reloaded");
        }
        Err(e) => tracing::error!(target: "riposte::playbook", "playbook reload failed: {e}"),
    }
}

fn log_report(report: &ReloadReport, why: &str) {
    for e in &report.errors {
        tracing::error!(target: "riposte::playbook", reason = why, "playbook refused, previous version kept: {e}");
    }
    tracing::info!(
        target: "riposte::playbook",
        reason = why,
        loaded = report.loaded.len(),
        unchanged = report.unchanged.len(),
        removed = report.removed.len(),
        errors = report.errors.len(),
        "playbook reload"
    );
}

fn start_watcher(dir: &Path, tx: mpsc::Sender<()>) -> Option<notify::RecommendedWatcher> {
    let handler = move |res: notify::Result<notify::Event>| {
        let Ok(event) = res else { return };
        if is_change(&event.kind) && event.paths.iter().any(|p| is_relevant(p)) {
            // A full channel already holds a pending change: that is enough.
            let _ = tx.try_send(());
        }
    };
    let mut watcher = match notify::recommended_watcher(handler) {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!(target: "riposte::playbook", "cannot watch {}: {e}; reload with SIGHUP", dir.display());
            return None;
        }
    };
    if let Err(e) = watcher.watch(dir, RecursiveMode::NonRecursive) {
        tracing::warn!(target: "riposte::playbook", "cannot watch {}: {e}; reload with SIGHUP", dir.display());
        return None;
    }
    Some(watcher)
}

/// Writes, creates, removes and renames; not opens, reads, closes after
/// reading, or attribute changes.
fn is_change(kind: &EventKind) -> bool {
    match kind {
        EventKind::Create(_) | EventKind::Remove(_) => true,
        EventKind::Modify(ModifyKind::Metadata(_)) => false,
        EventKind::Modify(_) => true,
        // A writer closing the file: its write is complete.
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) | EventKind::Any | EventKind::Other => false,
    }
}

fn is_relevant(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "rhai") || path.file_name().is_some_and(|n| n == "..data")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::playbook::config::PlaybookConfig;
    use crate::decide::playbook::runtime::testing::runtime;

    async fn wait_for(rt: &PlaybookRuntime, n: usize) -> bool {
        for _ in 0..100 {
            if rt.playbooks().len() == n {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    #[tokio::test]
    async fn a_new_file_is_picked_up_by_the_watcher() {
        let cfg = PlaybookConfig {
            watch_debounce_ms: 50,
            ..PlaybookConfig::default()
        };
        let (dir, rt) = runtime(&[("a.rhai", "// trigger: any\nlet x = 1;\n")], cfg);
        let rt = Arc::new(rt);
        let shutdown = CancellationToken::new();
        let task = rt.clone().spawn_reloader(shutdown.clone());
        // Let the watcher start before the change.
        tokio::time::sleep(Duration::from_millis(200)).await;
        std::fs::write(dir.path().join("b.rhai"), "// trigger: any\nlet y = 2;\n").expect("write");
        assert!(wait_for(&rt, 2).await, "the new playbook was not loaded");
        shutdown.cancel();
        task.await.expect("reloader stops on shutdown");
    }

    #[tokio::test]
    async fn sighup_reloads() {
        let cfg = PlaybookConfig {
            watch: false,
            ..PlaybookConfig::default()
        };
        let (dir, rt) = runtime(&[("a.rhai", "// trigger: any\nlet x = 1;\n")], cfg);
        let rt = Arc::new(rt);
        let shutdown = CancellationToken::new();
        let task = rt.clone().spawn_reloader(shutdown.clone());
        tokio::time::sleep(Duration::from_millis(200)).await;
        std::fs::write(dir.path().join("b.rhai"), "// trigger: any\nlet y = 2;\n").expect("write");
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(
            rt.playbooks().len(),
            1,
            "no watch: nothing happens by itself"
        );
        let status = std::process::Command::new("kill")
            .args(["-HUP", &std::process::id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        assert!(wait_for(&rt, 2).await, "SIGHUP did not reload");
        shutdown.cancel();
        task.await.expect("reloader stops on shutdown");
    }

    #[test]
    fn only_writes_creates_removes_and_renames_are_changes() {
        use notify::event::{CreateKind, DataChange, MetadataKind, RemoveKind, RenameMode};
        for kind in [
            EventKind::Create(CreateKind::File),
            EventKind::Remove(RemoveKind::File),
            EventKind::Modify(ModifyKind::Data(DataChange::Any)),
            EventKind::Modify(ModifyKind::Name(RenameMode::To)),
            EventKind::Modify(ModifyKind::Name(RenameMode::From)),
            EventKind::Access(AccessKind::Close(AccessMode::Write)),
        ] {
            assert!(is_change(&kind), "{kind:?} is a change");
        }
        for kind in [
            EventKind::Access(AccessKind::Open(AccessMode::Any)),
            EventKind::Access(AccessKind::Read),
            EventKind::Access(AccessKind::Close(AccessMode::Read)),
            EventKind::Modify(ModifyKind::Metadata(MetadataKind::Any)),
            EventKind::Any,
            EventKind::Other,
        ] {
            assert!(!is_change(&kind), "{kind:?} is not a change");
        }
    }

    #[tokio::test]
    async fn the_watcher_ignores_reads_and_reports_writes() {
        // The watcher alone: a reloader would also answer the SIGHUP that
        // `sighup_reloads` sends to the whole test process.
        let dir = tempfile::tempdir().expect("dir");
        let file = dir.path().join("a.rhai");
        std::fs::write(&file, "// trigger: any\nlet x = 1;\n").expect("write");
        let (tx, mut changes) = mpsc::channel(1);
        let _watcher = start_watcher(dir.path(), tx).expect("watching");
        for _ in 0..5 {
            std::fs::read_to_string(&file).expect("read");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(changes.try_recv().is_err(), "a read counted as a change");
        std::fs::write(&file, "// trigger: any\nlet x = 2;\n").expect("write");
        let seen = tokio::time::timeout(Duration::from_secs(10), changes.recv()).await;
        assert!(matches!(seen, Ok(Some(()))), "a write was not noticed");
    }

    #[test]
    fn unchanged_files_are_not_reloaded() {
        let (dir, rt) = runtime(
            &[("a.rhai", "// trigger: any\nlet x = 1;\n")],
            PlaybookConfig::default(),
        );
        assert!(
            rt.reload_if_changed().is_none(),
            "nothing changed since the load"
        );
        std::fs::write(dir.path().join("a.rhai"), "// trigger: any\nlet x = 1;\n").expect("same");
        assert!(rt.reload_if_changed().is_none(), "same text");
        std::fs::write(dir.path().join("b.rhai"), "// trigger: any\nlet = ;\n").expect("bad");
        let report = rt.reload_if_changed().expect("a new file");
        assert_eq!(report.errors.len(), 1, "{report:?}");
        assert!(
            rt.reload_if_changed().is_none(),
            "a refused file is refused once"
        );
    }

    #[test]
    fn only_playbooks_and_configmap_swaps_are_relevant() {
        assert!(is_relevant(Path::new("/p/c2.rhai")));
        assert!(is_relevant(Path::new("/p/..data")));
        assert!(!is_relevant(Path::new("/p/.c2.rhai.swp")));
        assert!(!is_relevant(Path::new("/p/README.md")));
    }
}
