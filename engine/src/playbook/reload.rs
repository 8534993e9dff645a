//! Hot reload: the playbook directory is watched, and SIGHUP reloads too.
//!
//! File events are debounced (an editor's save is a burst of them) and a
//! reload compiles on a blocking thread, then swaps the set in one step, so
//! events keep flowing through the old set meanwhile. Kubernetes ConfigMap
//! mounts update through a `..data` symlink swap rather than the `.rhai`
//! names themselves: that counts as a change too.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::playbook::runtime::{PlaybookRuntime, ReloadReport};

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
                        reload_in_background(&self, "file change").await;
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
        if event.paths.iter().any(|p| is_relevant(p)) {
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

fn is_relevant(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "rhai") || path.file_name().is_some_and(|n| n == "..data")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::playbook::config::PlaybookConfig;
    use crate::playbook::runtime::testing::runtime;

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
    fn only_playbooks_and_configmap_swaps_are_relevant() {
        assert!(is_relevant(Path::new("/p/c2.rhai")));
        assert!(is_relevant(Path::new("/p/..data")));
        assert!(!is_relevant(Path::new("/p/.c2.rhai.swp")));
        assert!(!is_relevant(Path::new("/p/README.md")));
    }
}
