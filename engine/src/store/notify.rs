//! Coalescing windows of notifications (`notify_windows`) and the outbox
//! writes that go with them, committed together.
//!
//! A window's state is rewritten with every event counted into it, in the
//! same transaction as the outbox items its change produced (the opening
//! notification, an update), so what a SOAR is told and what the window
//! counted never disagree after a crash. Writes of one window only replace
//! an older state (`rev`), whatever order concurrent callers commit in.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{
    from_micros, with_reader, with_writer, NewOutboxItem, OutboxStatus, RowExt, Store, StoreError,
};

/// One window's stored state.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowRow {
    /// The incident key: the id of the notification that opened it.
    pub id: String,
    pub target: String,
    pub subject: String,
    pub window_end: DateTime<Utc>,
    pub closed: bool,
    pub rev: i64,
    pub state: WindowState,
    pub updated_at: DateTime<Utc>,
}

/// A window's state: as read back from the store, or as the notifier hands
/// it over, serialized only when it is written. A storm counts events into
/// a window many times per batch of the audit writer, and only the newest
/// state of each window is written; serializing every one was a tenth of
/// what the pipeline spent per storm event.
#[derive(Clone)]
pub enum WindowState {
    Value(serde_json::Value),
    Pending(Arc<dyn PendingJson>),
}

/// A value serialized when it is written.
pub trait PendingJson: Send + Sync {
    fn json(&self) -> serde_json::Result<String>;
}

impl<T: Serialize + Send + Sync> PendingJson for T {
    fn json(&self) -> serde_json::Result<String> {
        serde_json::to_string(self)
    }
}

impl WindowState {
    pub fn pending<T: Serialize + Send + Sync + 'static>(state: T) -> WindowState {
        WindowState::Pending(Arc::new(state))
    }

    /// The state's JSON text.
    pub fn text(&self) -> serde_json::Result<String> {
        match self {
            WindowState::Value(v) => serde_json::to_string(v),
            WindowState::Pending(p) => p.json(),
        }
    }

    pub fn into_value(self) -> serde_json::Result<serde_json::Value> {
        match self {
            WindowState::Value(v) => Ok(v),
            WindowState::Pending(p) => serde_json::from_str(&p.json()?),
        }
    }
}

impl std::fmt::Debug for WindowState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.text() {
            Ok(t) => f.write_str(&t),
            Err(e) => write!(f, "<unserializable: {e}>"),
        }
    }
}

impl PartialEq for WindowState {
    fn eq(&self, other: &Self) -> bool {
        match (self.text(), other.text()) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        }
    }
}

/// One write of a notification batch.
#[derive(Debug, Clone, PartialEq)]
pub enum NotifyWrite {
    /// A notification, due at `due` (the opening one of a window waits a
    /// moment for another playbook's notification of the same event).
    Enqueue {
        item: NewOutboxItem,
        due: DateTime<Utc>,
    },
    /// A window's new state.
    Window(WindowRow),
    /// Rewrites a notification's payload if it was never attempted nor
    /// claimed; answers whether it did.
    Amend {
        id: String,
        payload: serde_json::Value,
        now: DateTime<Utc>,
    },
}

/// What the store knows of an incident: the SOAR's id of it and where its
/// opening notification stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incident {
    pub reference: Option<String>,
    /// `None` when the opening notification is gone (purged).
    pub opening: Option<OutboxStatus>,
}

pub(crate) const ENQUEUE: &str =
    "INSERT INTO outbox (id, target, payload, status, attempts, next_attempt_at, \
     created_at, updated_at) VALUES ($1, $2, $3, 'pending', 0, $5, $4, $4) \
     ON CONFLICT (id) DO NOTHING";

/// `n` windows' new states, each taken only over an older one; answers
/// the ids it wrote. (During a storm every notification counted changes
/// its window: a batch writes its windows in a few statements, not one
/// each.)
pub(crate) fn save_windows_sql(n: usize) -> String {
    format!(
        "INSERT INTO notify_windows (id, target, subject, window_end, closed, rev, state, \
         updated_at) VALUES {} \
         ON CONFLICT (id) DO UPDATE SET window_end = excluded.window_end, \
         closed = excluded.closed, rev = excluded.rev, state = excluded.state, \
         updated_at = excluded.updated_at \
         WHERE notify_windows.rev < excluded.rev RETURNING id",
        super::audit_stage::placeholders(n, 8)
    )
}

pub(crate) const AMEND: &str = "UPDATE outbox SET payload = $2, updated_at = $3 WHERE id = $1 \
     AND status = 'pending' AND attempts = 0 AND locked_by IS NULL";

/// Notification writes handed to the audit writer, committed in its next
/// transaction. On SQLite the store has one write connection: a notifier's
/// own transactions held it while their task waited to be scheduled (40 %
/// of the audit writer's time went to waiting for it during a storm), and
/// each cost a commit of its own.
#[derive(Debug)]
pub struct NotifyJob {
    pub(crate) writes: Vec<NotifyWrite>,
    reply: std::sync::Mutex<Option<Answer>>,
}

/// Where a [`NotifyJob`]'s caller waits for its answers.
type Answer = tokio::sync::oneshot::Sender<Result<Vec<bool>, StoreError>>;

impl NotifyJob {
    pub(crate) fn new(
        writes: Vec<NotifyWrite>,
    ) -> (
        NotifyJob,
        tokio::sync::oneshot::Receiver<Result<Vec<bool>, StoreError>>,
    ) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        (
            NotifyJob {
                writes,
                reply: std::sync::Mutex::new(Some(tx)),
            },
            rx,
        )
    }

    /// Answers the caller (once; later answers are ignored).
    pub(crate) fn answer(&self, result: Result<Vec<bool>, StoreError>) {
        let reply = self.reply.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(reply) = reply {
            let _ = reply.send(result);
        }
    }
}

/// A list of notification writes made ready to bind: each one's text, and
/// which window writes are their window's newest (only those are written).
#[derive(Debug)]
pub(crate) struct PreparedNotify<'a> {
    pub(crate) writes: Vec<&'a NotifyWrite>,
    pub(crate) bodies: Vec<String>,
    newest: HashMap<&'a str, usize>,
}

impl<'a> PreparedNotify<'a> {
    pub(crate) fn new(
        writes: impl IntoIterator<Item = &'a NotifyWrite>,
    ) -> Result<PreparedNotify<'a>, StoreError> {
        let writes: Vec<&NotifyWrite> = writes.into_iter().collect();
        let text = |v: &serde_json::Value| {
            serde_json::to_string(v).map_err(|e| StoreError::Invalid(format!("payload: {e}")))
        };
        // A window written several times in one batch: its newest state.
        let mut newest = HashMap::new();
        for (i, w) in writes.iter().enumerate() {
            if let NotifyWrite::Window(row) = w {
                let e = newest.entry(row.id.as_str()).or_insert(i);
                if let NotifyWrite::Window(have) = writes[*e] {
                    if have.rev <= row.rev {
                        *e = i;
                    }
                }
            }
        }
        let mut bodies = Vec::with_capacity(writes.len());
        for (i, w) in writes.iter().enumerate() {
            bodies.push(match w {
                NotifyWrite::Enqueue { item, .. } => text(&item.payload)?,
                // An older state of a window written again in this batch is
                // not written: not serialized either.
                NotifyWrite::Window(row) if newest.get(row.id.as_str()) != Some(&i) => {
                    String::new()
                }
                NotifyWrite::Window(row) => row
                    .state
                    .text()
                    .map_err(|e| StoreError::Invalid(format!("window state: {e}")))?,
                NotifyWrite::Amend { payload, .. } => text(payload)?,
            });
        }
        Ok(PreparedNotify {
            writes,
            bodies,
            newest,
        })
    }

    /// The windows to write, the newest state of each, with their text.
    pub(crate) fn windows(&self) -> Vec<(&WindowRow, &String)> {
        self.writes
            .iter()
            .zip(&self.bodies)
            .enumerate()
            .filter_map(|(i, (w, body))| match w {
                NotifyWrite::Window(row) if self.is_newest(i, row) => Some((row, body)),
                _ => None,
            })
            .collect()
    }

    pub(crate) fn is_newest(&self, i: usize, row: &WindowRow) -> bool {
        self.newest.get(row.id.as_str()) == Some(&i)
    }
}

/// Runs prepared notification writes `$p` in the open transaction `$tx`;
/// evaluates to whether each changed anything (a new outbox item, a newer
/// window state, an amended payload). A macro, like the audit writer's, so
/// one text serves both backends' transactions.
macro_rules! notify_statements {
    ($tx:ident, $p:expr) => {{
        let p: &$crate::store::notify::PreparedNotify = $p;
        let mut saved = std::collections::HashSet::new();
        let windows = p.windows();
        for part in $crate::store::audit_stage::chunks(&windows, 32) {
            let sql = $crate::store::audit_stage::binds(
                &$tx,
                $crate::store::notify::save_windows_sql(part.len()),
            );
            let mut q = sqlx::query(&sql);
            for (row, body) in part {
                q = q
                    .bind(&row.id)
                    .bind(&row.target)
                    .bind(&row.subject)
                    .bind($crate::store::micros(row.window_end))
                    .bind(row.closed)
                    .bind(row.rev)
                    .bind(*body)
                    .bind($crate::store::micros(row.updated_at));
            }
            for r in q.fetch_all(&mut *$tx).await? {
                saved.insert($crate::store::RowExt::text(&r, "id")?);
            }
        }
        let mut out = Vec::with_capacity(p.writes.len());
        for (i, (w, body)) in p.writes.iter().zip(&p.bodies).enumerate() {
            let changed = match w {
                $crate::store::notify::NotifyWrite::Enqueue { item, due } => {
                    sqlx::query($crate::store::notify::ENQUEUE)
                        .bind(&item.id)
                        .bind(&item.target)
                        .bind(body)
                        .bind($crate::store::micros(item.created_at))
                        .bind($crate::store::micros(*due))
                        .execute(&mut *$tx)
                        .await?
                        .rows_affected()
                        == 1
                }
                $crate::store::notify::NotifyWrite::Window(row) if p.is_newest(i, row) => {
                    saved.contains(&row.id)
                }
                $crate::store::notify::NotifyWrite::Window(_) => false,
                $crate::store::notify::NotifyWrite::Amend { id, now, .. } => {
                    sqlx::query($crate::store::notify::AMEND)
                        .bind(id)
                        .bind(body)
                        .bind($crate::store::micros(*now))
                        .execute(&mut *$tx)
                        .await?
                        .rows_affected()
                        == 1
                }
            };
            out.push(changed);
        }
        out
    }};
}
pub(crate) use notify_statements;

impl Store {
    /// Commits `writes` in one transaction; answers for each whether it
    /// changed anything (a new outbox item, a newer window state, an
    /// amended payload).
    pub async fn notify_write(&self, writes: &[NotifyWrite]) -> Result<Vec<bool>, StoreError> {
        let prepared = PreparedNotify::new(writes)?;
        self.run("notify_write", async {
            with_writer!(self, pool => {
                let mut tx = pool.begin().await?;
                let out = notify_statements!(tx, &prepared);
                tx.commit().await?;
                Ok(out)
            })
        })
        .await
    }

    /// Every window not closed yet (a restart goes on counting into them).
    pub async fn notify_windows_open(&self) -> Result<Vec<WindowRow>, StoreError> {
        self.run("notify_windows", async {
            with_reader!(self, pool => {
                let rows = sqlx::query(
                    "SELECT id, target, subject, window_end, closed, rev, state, updated_at \
                     FROM notify_windows WHERE closed = FALSE ORDER BY window_end",
                )
                .fetch_all(pool)
                .await?;
                let mut out = Vec::with_capacity(rows.len());
                for row in &rows {
                    out.push(WindowRow {
                        id: row.text("id")?,
                        target: row.text("target")?,
                        subject: row.text("subject")?,
                        window_end: from_micros(row.int("window_end")?),
                        closed: row.boolean("closed")?,
                        rev: row.int("rev")?,
                        state: WindowState::Value(serde_json::from_str(&row.text("state")?)?),
                        updated_at: from_micros(row.int("updated_at")?),
                    });
                }
                Ok(out)
            })
        })
        .await
    }

    /// The incident `id` (its window's key): the SOAR's reference and the
    /// opening notification's status. `None` when no window has that key.
    pub async fn notify_incident(&self, id: &str) -> Result<Option<Incident>, StoreError> {
        self.run("notify_incident", async {
            with_reader!(self, pool => {
                let row = sqlx::query(
                    "SELECT w.reference AS reference, o.status AS status FROM notify_windows w \
                     LEFT JOIN outbox o ON o.id = w.id WHERE w.id = $1",
                )
                .bind(id)
                .fetch_optional(pool)
                .await?;
                match row {
                    None => Ok(None),
                    Some(row) => Ok(Some(Incident {
                        reference: row.opt_text("reference")?,
                        opening: row.opt_text("status")?.as_deref().and_then(OutboxStatus::parse),
                    })),
                }
            })
        })
        .await
    }

    /// Saves the SOAR's id of incident `id`, from the answer to its opening
    /// notification.
    pub async fn notify_set_reference(
        &self,
        id: &str,
        reference: &str,
    ) -> Result<bool, StoreError> {
        self.run("notify_reference", async {
            with_writer!(self, pool => {
                let done = sqlx::query("UPDATE notify_windows SET reference = $2 WHERE id = $1")
                    .bind(id)
                    .bind(reference)
                    .execute(pool)
                    .await?;
                Ok(done.rows_affected() == 1)
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing;

    fn window(id: &str, rev: i64, count: u64, closed: bool) -> NotifyWrite {
        NotifyWrite::Window(WindowRow {
            id: id.into(),
            target: "soar".into(),
            subject: "riposte.notify|shop/a|C2".into(),
            window_end: Utc::now() + chrono::Duration::seconds(600),
            closed,
            rev,
            state: WindowState::Value(serde_json::json!({ "count": count })),
            updated_at: Utc::now(),
        })
    }

    /// A state that counts how often it is serialized.
    struct Counted(u64, Arc<std::sync::atomic::AtomicUsize>);

    impl Serialize for Counted {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            serde_json::json!({ "count": self.0 }).serialize(s)
        }
    }

    #[tokio::test]
    async fn only_the_newest_state_of_a_window_in_a_batch_is_serialized_and_written() {
        let (store, _dir) = testing::sqlite().await;
        let serialized = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let pending = |rev: i64| {
            NotifyWrite::Window(WindowRow {
                id: "w9".into(),
                target: "soar".into(),
                subject: "riposte.notify|shop/a|C2".into(),
                window_end: Utc::now() + chrono::Duration::seconds(600),
                closed: false,
                rev,
                state: WindowState::pending(Counted(rev as u64, serialized.clone())),
                updated_at: Utc::now(),
            })
        };
        let done = store
            .notify_write(&[pending(1), pending(4), pending(2)])
            .await
            .expect("write");
        assert_eq!(done, [false, true, false]);
        assert_eq!(serialized.load(std::sync::atomic::Ordering::SeqCst), 1);
        let open = store.notify_windows_open().await.expect("open");
        assert_eq!(open.len(), 1);
        assert_eq!(open[0].rev, 4);
        assert_eq!(
            open[0].state.clone().into_value().expect("state"),
            serde_json::json!({ "count": 4 })
        );
    }

    #[tokio::test]
    async fn windows_keep_their_newest_state_and_incidents_their_reference() {
        let (store, _dir) = testing::sqlite().await;
        let now = Utc::now();
        let item = NewOutboxItem {
            id: "w1".into(),
            target: "soar".into(),
            payload: serde_json::json!({"id": "w1"}),
            created_at: now,
        };
        let done = store
            .notify_write(&[
                NotifyWrite::Enqueue {
                    item: item.clone(),
                    due: now + chrono::Duration::milliseconds(200),
                },
                window("w1", 1, 1, false),
                // Newer in the same batch: only it is written.
                window("w1", 3, 3, false),
            ])
            .await
            .expect("write");
        assert_eq!(done, [true, false, true]);
        // An older state committed later changes nothing.
        assert_eq!(
            store
                .notify_write(&[window("w1", 2, 2, false)])
                .await
                .expect("write"),
            [false]
        );
        let open = store.notify_windows_open().await.expect("open");
        assert_eq!(open.len(), 1);
        assert_eq!(
            open[0].state.clone().into_value().expect("state")["count"],
            3
        );
        // Not claimable before it is due.
        let lease = std::time::Duration::from_secs(30);
        assert!(store
            .outbox_claim(None, "w", lease, 10, now)
            .await
            .expect("claim")
            .is_empty());
        // Unclaimed, it can be rewritten.
        let amend = NotifyWrite::Amend {
            id: "w1".into(),
            payload: serde_json::json!({"id": "w1", "playbooks": 2}),
            now,
        };
        assert_eq!(
            store
                .notify_write(std::slice::from_ref(&amend))
                .await
                .expect("amend"),
            [true]
        );
        let later = now + chrono::Duration::seconds(1);
        let claimed = store
            .outbox_claim(None, "w", lease, 10, later)
            .await
            .expect("claim");
        assert_eq!(claimed[0].payload["playbooks"], 2);
        // Claimed, it is on its way: no rewrite.
        assert_eq!(store.notify_write(&[amend]).await.expect("amend"), [false]);

        let i = store
            .notify_incident("w1")
            .await
            .expect("incident")
            .expect("known");
        assert_eq!(
            i,
            Incident {
                reference: None,
                opening: Some(OutboxStatus::Pending)
            }
        );
        assert!(store.notify_set_reference("w1", "417").await.expect("ref"));
        store
            .outbox_delivered("w1", later)
            .await
            .expect("delivered");
        let i = store
            .notify_incident("w1")
            .await
            .expect("incident")
            .expect("known");
        assert_eq!(i.reference.as_deref(), Some("417"));
        assert_eq!(i.opening, Some(OutboxStatus::Delivered));
        assert_eq!(store.notify_incident("nope").await.expect("incident"), None);

        store
            .notify_write(&[window("w1", 4, 3, true)])
            .await
            .expect("close");
        assert!(store.notify_windows_open().await.expect("open").is_empty());
    }
}
