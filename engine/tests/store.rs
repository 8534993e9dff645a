//! The store's contract, run against both backends: SQLite in a temporary
//! directory and PostgreSQL on 127.0.0.1:5432 (a database created for each
//! test and dropped after it; `RIPOSTE_TEST_POSTGRES` overrides the server
//! URL).

#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use riposte_engine::decide::decision::{
    ActionRecord, ActionStatus, Decision, DecisionLog, EventSummary, Mode, Outcome, Timings,
};
use riposte_engine::decide::intent::{Action, Intent, Target, Ttl};
use riposte_engine::store::audit::AuditOp;
use riposte_engine::store::{
    AuditQuery, AuditWriter, DatabaseUrl, DecideError, EdlVersion, IdempotencyBegin, NewApproval,
    NewEdlEntry, NewOutboxItem, OnTimeout, OutboxFilter, OutboxStatus, Store, StoreConfig,
    StoreError, Verdict,
};
use sqlx::Connection;
use tokio_util::sync::CancellationToken;

/// Where a test's store lives, and how to open it again.
struct Backend {
    config: StoreConfig,
    dir: tempfile::TempDir,
    /// The PostgreSQL database to drop afterwards.
    pg: Option<(String, String)>,
}

impl Backend {
    async fn open(&self) -> Store {
        Store::open(&self.config, self.dir.path()).await.unwrap()
    }

    /// The store with one audit record per decision (no coalescing), for
    /// the tests of filters and paging over single decisions.
    async fn open_uncoalesced(&self) -> Store {
        let config = StoreConfig {
            coalesce_window_secs: 0,
            ..self.config.clone()
        };
        Store::open(&config, self.dir.path()).await.unwrap()
    }
}

fn pg_server() -> String {
    std::env::var("RIPOSTE_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned())
}

async fn sqlite_backend() -> Backend {
    Backend {
        config: StoreConfig::default(),
        dir: tempfile::tempdir().unwrap(),
        pg: None,
    }
}

async fn postgres_backend(test: &str) -> Backend {
    let server = pg_server();
    let name = format!(
        "riposte_{}_{}_{}",
        test,
        std::process::id(),
        Utc::now().timestamp_micros()
    );
    let mut admin = sqlx::PgConnection::connect(&format!("{server}/postgres"))
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {server} (start it with .ci/services): {e}"));
    sqlx::query(&format!("CREATE DATABASE \"{name}\""))
        .execute(&mut admin)
        .await
        .unwrap();
    let _ = admin.close().await;
    let config = StoreConfig {
        url: Some(DatabaseUrl::new(format!("{server}/{name}"))),
        max_connections: 8,
        ..StoreConfig::default()
    };
    Backend {
        config,
        dir: tempfile::tempdir().unwrap(),
        pg: Some((server, name)),
    }
}

async fn drop_backend(backend: Backend) {
    if let Some((server, name)) = backend.pg {
        if let Ok(mut admin) = sqlx::PgConnection::connect(&format!("{server}/postgres")).await {
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                .execute(&mut admin)
                .await;
            let _ = admin.close().await;
        }
    }
}

/// Runs a case against a backend, dropping the database even when the case
/// fails.
async fn run_case<F, Fut>(backend: Backend, case: F)
where
    F: FnOnce(Arc<Backend>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let backend = Arc::new(backend);
    let result = tokio::spawn(case(backend.clone())).await;
    if let Ok(backend) = Arc::try_unwrap(backend) {
        drop_backend(backend).await;
    }
    if let Err(e) = result {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// One `#[tokio::test]` per backend for each case.
macro_rules! both {
    ($case:ident) => {
        mod $case {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                super::run_case(super::sqlite_backend().await, super::$case).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                super::run_case(
                    super::postgres_backend(stringify!($case)).await,
                    super::$case,
                )
                .await;
            }
        }
    };
}

fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_700_000_000 + secs, 0).unwrap()
}

fn decision(event: &str, playbook: &str, secs: i64, target: &str, outcome: Outcome) -> Decision {
    let (ns, name) = target.split_once('/').unwrap();
    let intents = vec![
        Intent::new(
            event,
            playbook,
            Action::Quarantine {
                target: Target::pod(ns, name).unwrap(),
                ttl: Ttl::parse("4h").unwrap(),
                reason: None,
            },
        ),
        Intent::new(
            event,
            playbook,
            Action::TagIp {
                ip: "203.0.113.66".parse().unwrap(),
                tag: "riposte-c2".into(),
                ttl: Ttl::parse("1d").unwrap(),
                reason: None,
            },
        ),
    ];
    Decision {
        event_id: event.into(),
        event: EventSummary {
            kind: "alert".into(),
            dataset: "panos.threat".into(),
            threat_name: Some("c2".into()),
            threat_type: Some("spyware".into()),
            severity: Some("critical".into()),
            source_ip: Some("10.244.1.17".parse().unwrap()),
            destination_ip: Some("203.0.113.66".parse().unwrap()),
            ..EventSummary::default()
        },
        playbook: playbook.into(),
        mode: Mode::Enforce,
        intents,
        outcome,
        timings: Timings {
            eval_us: 40,
            dispatch_us: 7,
        },
        at: at(secs),
        actions: Vec::new(),
    }
}

async fn persists_across_reopen(b: Arc<Backend>) {
    let store = b.open().await;
    store
        .append_decisions(&[decision("ev1", "c2", 0, "shop/checkout", Outcome::Applied)])
        .await
        .unwrap();
    store
        .outbox_enqueue(&NewOutboxItem {
            id: "msg_1".into(),
            target: "soar".into(),
            payload: serde_json::json!({"a": 1}),
            created_at: at(0),
        })
        .await
        .unwrap();
    store.close().await;
    let again = b.open().await;
    again.migrate().await.unwrap();
    assert_eq!(again.audit_count().await.unwrap(), 1);
    let item = again.outbox_get("msg_1").await.unwrap().unwrap();
    assert_eq!(item.payload, serde_json::json!({"a": 1}));
    // A third open on a migrated database changes nothing.
    let third = b.open().await;
    assert_eq!(third.audit_count().await.unwrap(), 1);
    third.ping().await.unwrap();
}
both!(persists_across_reopen);

async fn audit_filters_and_pages(b: Arc<Backend>) {
    let store = b.open_uncoalesced().await;
    let mut batch = Vec::new();
    for i in 0..25 {
        let (playbook, target, outcome) = match i % 3 {
            0 => ("c2", "shop/checkout-7d9f", Outcome::Applied),
            1 => (
                "c2",
                "shop/cart-1",
                Outcome::Refused {
                    reason: "protected namespace".into(),
                },
            ),
            _ => ("scan", "web/front-2", Outcome::DryRun),
        };
        batch.push(decision(&format!("ev{i}"), playbook, i, target, outcome));
    }
    store.append_decisions(&batch).await.unwrap();

    // Newest first, paged with the cursor, no entry twice or missing.
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = store
            .query_audit(&AuditQuery {
                limit: Some(7),
                cursor: cursor.clone(),
                ..Default::default()
            })
            .await
            .unwrap();
        seen.extend(page.entries.iter().map(|e| e.event_id.clone()));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let expected: Vec<String> = (0..25).rev().map(|i| format!("ev{i}")).collect();
    assert_eq!(seen, expected);

    let q = |query: AuditQuery| {
        let store = store.clone();
        async move {
            store
                .query_audit(&query)
                .await
                .unwrap()
                .entries
                .into_iter()
                .map(|e| e.event_id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        q(AuditQuery {
            playbook: Some("scan".into()),
            ..Default::default()
        })
        .await
        .len(),
        8
    );
    let refused = q(AuditQuery {
        outcome: Some("refused".into()),
        ..Default::default()
    })
    .await;
    assert_eq!(refused.len(), 8);
    assert_eq!(
        q(AuditQuery {
            from: Some(at(10)),
            to: Some(at(13)),
            ..Default::default()
        })
        .await,
        ["ev12", "ev11", "ev10"]
    );
    assert_eq!(
        q(AuditQuery {
            target: Some("checkout".into()),
            ..Default::default()
        })
        .await
        .len(),
        9
    );
    assert!(q(AuditQuery {
        target: Some("checkout".into()),
        target_exact: true,
        ..Default::default()
    })
    .await
    .is_empty());
    assert_eq!(
        q(AuditQuery {
            target: Some("shop/cart-1".into()),
            target_exact: true,
            ..Default::default()
        })
        .await
        .len(),
        8
    );
    // LIKE wildcards in the filter are literals.
    assert!(q(AuditQuery {
        target: Some("shop/%".into()),
        ..Default::default()
    })
    .await
    .is_empty());
    assert_eq!(
        q(AuditQuery {
            action: Some("tag_ip".into()),
            playbook: Some("c2".into()),
            ..Default::default()
        })
        .await
        .len(),
        17
    );
    assert!(q(AuditQuery {
        action: Some("tag".into()),
        ..Default::default()
    })
    .await
    .is_empty());
    assert!(matches!(
        store
            .query_audit(&AuditQuery {
                cursor: Some("not-a-cursor".into()),
                ..Default::default()
            })
            .await,
        Err(StoreError::Invalid(_))
    ));
}
both!(audit_filters_and_pages);

/// Decisions and action outcomes through the decision log's sink and the
/// batched writer, as the dispatcher records them.
async fn audit_writer_through_the_decision_log(b: Arc<Backend>) {
    let store = b.open_uncoalesced().await;
    let writer = AuditWriter::new(store.clone());
    let stop = CancellationToken::new();
    let task = writer.spawn(stop.clone());
    let log = DecisionLog::new(100);
    log.set_sink(Arc::new(writer.clone()));
    for i in 0..300 {
        writer.wait_for_room().await;
        log.record(decision(
            &format!("ev{i}"),
            "c2",
            i,
            "shop/checkout",
            Outcome::Pending {
                reason: "dispatching".into(),
            },
        ));
    }
    // An action finishing on a decision still in memory settles it.
    log.record_action(
        "ev299",
        "c2",
        ActionRecord {
            action_id: "a1".into(),
            action: "quarantine".into(),
            target: Some("shop/checkout-7d9f8b6c5-x2k4q".into()),
            status: ActionStatus::Applied,
            reason: Some("labelled".into()),
            code: None,
            attempts: 1,
            duration_us: 1200,
            at: at(300),
        },
    );
    // One whose decision fell out of memory still lands in the store.
    log.record_action(
        "ev0",
        "c2",
        ActionRecord {
            action_id: "a0".into(),
            action: "quarantine".into(),
            target: None,
            status: ActionStatus::Failed,
            reason: Some("API server timeout".into()),
            code: Some("timeout".into()),
            attempts: 3,
            duration_us: 5,
            at: at(301),
        },
    );
    writer.flush().await.unwrap();
    assert_eq!(store.audit_count().await.unwrap(), 300);
    let newest = store
        .query_audit(&AuditQuery {
            event_id: Some("ev299".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(newest.entries[0].outcome, Outcome::Applied);
    assert_eq!(newest.entries[0].actions.len(), 1);
    // The resolved pod is searchable as a target.
    let by_pod = store
        .query_audit(&AuditQuery {
            target: Some("shop/checkout-7d9f8b6c5-x2k4q".into()),
            target_exact: true,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(by_pod.entries.len(), 1);
    let oldest = store
        .query_audit(&AuditQuery {
            event_id: Some("ev0".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(oldest.entries[0].actions[0].status, ActionStatus::Failed);
    assert!(store.metrics().audit_batches.get() < 300, "batched");
    stop.cancel();
    task.await.unwrap();
}
both!(audit_writer_through_the_decision_log);

/// The ids of the records `GET /v1/audit?event_id=` answers for `event`.
async fn records_of(store: &Store, event: &str) -> Vec<i64> {
    store
        .query_audit(&AuditQuery {
            event_id: Some(event.into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .entries
        .iter()
        .map(|e| e.id)
        .collect()
}

/// Identical decisions are one record with a count on both backends; a
/// redelivered event is not counted again; every event finds its record.
async fn coalesced_records_count_every_event_once(b: Arc<Backend>) {
    let store = b.open().await;
    let now = Utc::now().timestamp() - 1_700_000_000;
    let batch: Vec<Decision> = (0..30)
        .map(|i| {
            decision(
                &format!("ev{i}"),
                "c2",
                now + i / 3,
                "shop/checkout",
                Outcome::Applied,
            )
        })
        .collect();
    store.append_decisions(&batch[..10]).await.unwrap();
    store.append_decisions(&batch).await.unwrap();
    let page = store.query_audit(&AuditQuery::default()).await.unwrap();
    assert_eq!(page.entries.len(), 1);
    let e = &page.entries[0];
    assert_eq!(e.count, 30);
    assert_eq!(e.event_id, "ev0");
    assert_eq!(e.sample.len(), 8);
    assert_eq!(e.last_at, Some(at(now + 9)));
    assert_eq!(store.audit_totals().await.unwrap(), (1, 30, 30));
    assert_eq!(store.metrics().audit_duplicates.get(), 10);
    for i in [0, 9, 10, 29] {
        assert_eq!(records_of(&store, &format!("ev{i}")).await, [e.id], "ev{i}");
    }
    // Reopened inside the window: the same record goes on counting.
    drop(store);
    let store = b.open().await;
    let more = decision("ev30", "c2", now + 20, "shop/checkout", Outcome::Applied);
    store.append_decisions(&[more]).await.unwrap();
    assert_eq!(store.audit_totals().await.unwrap(), (1, 31, 31));
}

both!(coalesced_records_count_every_event_once);

/// Every audit record's body comes back as it was decided: packed without
/// a dictionary at first, then with one the writer trained from the
/// records themselves, and read by this process and by another that never
/// saw the dictionary.
async fn records_are_packed_and_read_back_whole(b: Arc<Backend>) {
    let store = b.open_uncoalesced().await;
    let now = Utc::now().timestamp() - 1_700_000_000;
    let made = |i: usize| {
        decision(
            &format!("ev{i}"),
            "c2",
            now,
            &format!("shop/pod-{}", i % 300),
            Outcome::Applied,
        )
    };
    let mut written: Vec<Decision> = (0..2_100).map(made).collect();
    for chunk in written.chunks(300) {
        store.append_decisions(chunk).await.unwrap();
    }
    let plain = (
        store.metrics().audit_body_bytes.get(),
        store.metrics().audit_packed_bytes.get(),
    );
    assert!(plain.1 < plain.0, "packed {} of {} bytes", plain.1, plain.0);
    assert_eq!(store.metrics().audit_dictionary.get(), 0);
    // The dictionary is trained off the writer's task: a batch after the
    // training ends stores it and packs with it.
    let started = std::time::Instant::now();
    while store.metrics().audit_dictionary.get() == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no dictionary"
        );
        let d = made(written.len());
        store
            .append_decisions(std::slice::from_ref(&d))
            .await
            .unwrap();
        written.push(d);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let before = (
        store.metrics().audit_body_bytes.get(),
        store.metrics().audit_packed_bytes.get(),
    );
    let more: Vec<Decision> = (written.len()..written.len() + 300).map(made).collect();
    store.append_decisions(&more).await.unwrap();
    written.extend(more);
    let with_dict = (
        store.metrics().audit_body_bytes.get() - before.0,
        store.metrics().audit_packed_bytes.get() - before.1,
    );
    assert!(
        with_dict.1 * plain.0 < plain.1 * with_dict.0,
        "the dictionary packs tighter: {with_dict:?} against {plain:?}"
    );
    let reader = b.open_uncoalesced().await;
    for s in [&store, &reader] {
        let mut read = Vec::new();
        let mut query = AuditQuery {
            limit: Some(500),
            ..AuditQuery::default()
        };
        loop {
            let page = s.query_audit(&query).await.unwrap();
            read.extend(page.entries);
            match page.next_cursor {
                Some(c) => query.cursor = Some(c),
                None => break,
            }
        }
        assert_eq!(read.len(), written.len());
        let by_event: std::collections::HashMap<&str, &Decision> =
            written.iter().map(|d| (d.event_id.as_str(), d)).collect();
        for e in &read {
            let d = by_event[e.event_id.as_str()];
            assert_eq!(e.event, d.event, "{}", e.event_id);
            assert_eq!(
                e.intents,
                serde_json::to_value(&d.intents).unwrap(),
                "{}",
                e.event_id
            );
        }
    }
}

both!(records_are_packed_and_read_back_whole);

/// SQLite appends new event index rows to a journal and merges it into the
/// index in sorted runs (here every 7 rows): an event is counted once
/// whether its row is in the journal, merged, or written by another
/// process on the same file since this one last looked, across a reopen;
/// every event finds its record before and after a merge. (PostgreSQL
/// writes the index directly: the same contract holds.)
async fn the_event_index_journal_counts_once_across_merges(b: Arc<Backend>) {
    let config = StoreConfig {
        audit_index_merge_rows: 7,
        ..b.config.clone()
    };
    let open = || Store::open(&config, b.dir.path());
    let sqlite = b.pg.is_none();
    let now = Utc::now().timestamp() - 1_700_000_000;
    let d = |i: i64| {
        decision(
            &format!("ev{i}"),
            "c2",
            now + i,
            "shop/checkout",
            Outcome::Applied,
        )
    };
    let store = open().await.unwrap();
    store
        .append_decisions(&(0..5).map(d).collect::<Vec<_>>())
        .await
        .unwrap();
    assert_eq!(
        store.metrics().audit_index_journal.get(),
        if sqlite { 5 } else { 0 }
    );
    let record = records_of(&store, "ev0").await;
    assert_eq!(record.len(), 1);
    assert_eq!(
        records_of(&store, "ev4").await,
        record,
        "found in the journal"
    );

    // Reopened (the journal read back): five redelivered, five new; the
    // journal reaches 10 rows and is merged.
    drop(store);
    let store = open().await.unwrap();
    store
        .append_decisions(&(0..10).map(d).collect::<Vec<_>>())
        .await
        .unwrap();
    assert_eq!(store.metrics().audit_duplicates.get(), 5);
    assert_eq!(
        store.metrics().audit_index_merged.get(),
        if sqlite { 10 } else { 0 }
    );
    assert_eq!(store.metrics().audit_index_journal.get(), 0);
    assert_eq!(store.audit_totals().await.unwrap(), (1, 10, 10));

    // Merged rows are still counted (redeliveries), new ones journaled.
    store.append_decisions(&[d(3), d(8), d(10)]).await.unwrap();
    assert_eq!(store.metrics().audit_duplicates.get(), 7);
    assert_eq!(store.audit_totals().await.unwrap(), (1, 11, 11));

    // A second process on the same file counts ev11; this one has read the
    // journal before that and must not count ev11 again.
    let other = open().await.unwrap();
    other.append_decisions(&[d(11)]).await.unwrap();
    store.append_decisions(&[d(11), d(12)]).await.unwrap();
    assert_eq!(store.metrics().audit_duplicates.get(), 8);
    assert_eq!(store.audit_totals().await.unwrap(), (1, 13, 13));
    for i in 0..13 {
        assert_eq!(records_of(&store, &format!("ev{i}")).await, record, "ev{i}");
    }
    // And the other the other way round, after this one merged.
    store
        .append_decisions(&(13..20).map(d).collect::<Vec<_>>())
        .await
        .unwrap();
    other
        .append_decisions(&[d(12), d(19), d(20)])
        .await
        .unwrap();
    assert_eq!(other.metrics().audit_duplicates.get(), 2);
    assert_eq!(store.audit_totals().await.unwrap(), (1, 21, 21));
}

both!(the_event_index_journal_counts_once_across_merges);

/// One audit batch that opens records, counts a later event into one,
/// meets a redelivery and carries actions (queued, then final), then a
/// second batch whose actions land on the stored records: what the batch
/// held in memory and wrote in multi-row statements reads back as each
/// write in order would have left it, on both backends.
async fn one_batch_opens_counts_and_settles_records(b: Arc<Backend>) {
    let store = b.open().await;
    let now = Utc::now().timestamp() - 1_700_000_000;
    let d = |ev: &str, secs: i64, target: &str| {
        decision(
            ev,
            "c2",
            now + secs,
            target,
            Outcome::Pending {
                reason: "dispatching".into(),
            },
        )
    };
    let action = |ev: &str, d: &Decision, i: usize, status: ActionStatus, outcome| {
        let intent = &d.intents[i];
        AuditOp::Action {
            event_id: ev.into(),
            playbook: "c2".into(),
            record: Box::new(ActionRecord {
                action_id: intent.action_id.clone(),
                action: intent.action.name().into(),
                target: Some(match i {
                    0 => intent_pod(d),
                    _ => "203.0.113.66".into(),
                }),
                status,
                reason: Some(format!("{status:?}")),
                code: None,
                attempts: 1,
                duration_us: 10,
                at: d.at,
            }),
            outcome,
        }
    };
    let (d1, d2, d3) = (
        d("ev1", 0, "shop/a"),
        d("ev2", 1, "shop/a"),
        d("ev3", 2, "shop/b"),
    );
    let ops = vec![
        AuditOp::decision(d1.clone()),
        action("ev1", &d1, 0, ActionStatus::Queued, None),
        AuditOp::decision(d2.clone()),
        action("ev1", &d1, 0, ActionStatus::Applied, None),
        AuditOp::decision(d3.clone()),
        // A later event's queued record never takes the row back.
        action("ev2", &d2, 0, ActionStatus::Queued, None),
        AuditOp::decision(d1.clone()),
        action("ev3", &d3, 0, ActionStatus::Skipped, None),
        action(
            "ev3",
            &d3,
            1,
            ActionStatus::Skipped,
            Some(Outcome::Pending {
                reason: "not configured".into(),
            }),
        ),
    ];
    let ids = store.apply_audit(&ops).await.unwrap();
    assert_eq!(ids.len(), 4);
    assert_eq!(ids[0], ids[1], "ev2 counted in ev1's record");
    assert_eq!(ids[0], ids[3], "the redelivered ev1 finds its record");
    assert!(ids[2] > ids[0], "ids in order");
    assert_eq!(store.audit_totals().await.unwrap(), (2, 3, 3));
    assert_eq!(store.metrics().audit_duplicates.get(), 1);

    // The second batch: the first event's other action and a later
    // event's on the stored record, and a record opened and acted on.
    let d4 = d("ev4", 3, "shop/c");
    let ops = vec![
        action("ev1", &d1, 1, ActionStatus::Applied, Some(Outcome::Applied)),
        action("ev2", &d2, 1, ActionStatus::Failed, None),
        AuditOp::decision(d4.clone()),
        action("ev4", &d4, 0, ActionStatus::Applied, Some(Outcome::Applied)),
    ];
    let more = store.apply_audit(&ops).await.unwrap();
    assert!(more[0] > ids[2]);
    let entries = store
        .query_audit(&AuditQuery::default())
        .await
        .unwrap()
        .entries;
    let by_event = |ev: &str| entries.iter().find(|e| e.event_id == ev).unwrap().clone();
    let (r1, r3, r4) = (by_event("ev1"), by_event("ev3"), by_event("ev4"));
    assert_eq!((r1.count, r3.count, r4.count), (2, 1, 1));
    assert_eq!(r1.sample, ["ev1", "ev2"]);
    let status = |e: &riposte_engine::store::AuditEntry, action: &str| {
        e.actions
            .iter()
            .filter(|a| a.action == action)
            .map(|a| (a.action_id.clone(), a.status))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        status(&r1, "quarantine"),
        [(d1.intents[0].action_id.clone(), ActionStatus::Applied)],
        "one row, the first event's, applied"
    );
    assert_eq!(
        status(&r1, "tag_ip"),
        [(d1.intents[1].action_id.clone(), ActionStatus::Failed)],
        "the later event's failure lands on the first event's row"
    );
    // The batch's last action record of it carried no outcome: settled as
    // its stored rows say.
    assert_eq!(
        r1.outcome,
        Outcome::Failed {
            message: "tag_ip 203.0.113.66: Failed".into()
        }
    );
    assert_eq!(
        r3.outcome,
        Outcome::Pending {
            reason: "not configured".into()
        }
    );
    assert_eq!(r3.actions.len(), 2);
    assert_eq!(r4.outcome, Outcome::Applied);
    assert_eq!(status(&r4, "quarantine").len(), 1);
    // Every event finds its record; the next record follows the others.
    for (ev, record) in [("ev2", r1.id), ("ev3", r3.id), ("ev4", r4.id)] {
        assert_eq!(records_of(&store, ev).await, [record], "{ev}");
    }
    let found = store
        .query_audit(&AuditQuery {
            target: Some("shop/c".into()),
            target_exact: true,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(found.entries.len(), 1);
    drop(store);
    let store = b.open().await;
    let d5 = d("ev5", 600, "shop/d");
    let last = store.append_decisions(&[d5]).await.unwrap();
    assert!(last[0] > r4.id, "{} after {}", last[0], r4.id);
}

fn intent_pod(d: &Decision) -> String {
    match &d.intents[0].action {
        Action::Quarantine {
            target: Target::Pod { namespace, name },
            ..
        } => format!("{namespace}/{name}"),
        other => panic!("{other:?}"),
    }
}

both!(one_batch_opens_counts_and_settles_records);

/// Another replica counts an event of this replica's batch after the
/// batch read the event index and before it wrote its rows (PostgreSQL:
/// replicas share the store). The batch's index write waits for the other
/// transaction, finds the event counted, and the whole batch starts over
/// one statement at a time: the event is the other replica's, counted
/// once, and the rest of the batch is recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_batch_meeting_another_replicas_count_starts_over() {
    run_case(postgres_backend("batch_retry").await, |b| async move {
        let store = b.open().await;
        store.migrate().await.unwrap();
        let now = Utc::now().timestamp() - 1_700_000_000;
        let mine = decision("ev-a", "c2", now, "shop/a", Outcome::Applied);
        let both = decision("ev-b", "c2", now, "shop/b", Outcome::Applied);
        let (server, name) = b.pg.clone().unwrap();
        let mut other = sqlx::PgConnection::connect(&format!("{server}/{name}"))
            .await
            .unwrap();
        let mut tx = other.begin().await.unwrap();
        let micros = mine.at.timestamp_micros();
        let theirs: i64 = sqlx::query_scalar(
            "INSERT INTO audit_decisions (event_id, playbook, mode, outcome, event_json, \
             intents_json, targets, actions, eval_us, dispatch_us, at, coalesce_key, count, \
             last_at, window_end, sample) VALUES ('ev-b', 'c2', 'enforce', 'applied', '{}', \
             '[]', '', '', 0, 0, $1, 1, 1, $1, $1, '') RETURNING id",
        )
        .bind(micros)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
        // The event index's key of a playbook: its hash, as the store
        // makes it.
        let playbook_key = ((xxhash_rust::xxh3::xxh3_64(b"c2") >> 1) as i64).max(1);
        sqlx::query("INSERT INTO audit_events (event_id, coalesce_key, decision_id) VALUES ('ev-b', $1, $2)")
            .bind(playbook_key)
            .bind(theirs)
            .execute(&mut *tx)
            .await
            .unwrap();
        let batch = tokio::spawn({
            let store = store.clone();
            async move { store.append_decisions(&[mine, both]).await }
        });
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(
            !batch.is_finished(),
            "the batch's index write waits for the other transaction"
        );
        tx.commit().await.unwrap();
        let ids = tokio::time::timeout(Duration::from_secs(30), batch)
            .await
            .expect("the batch finishes")
            .unwrap()
            .unwrap();
        assert_eq!(ids[1], theirs, "ev-b is counted in the other replica's record");
        assert_ne!(ids[0], theirs);
        assert_eq!(store.metrics().audit_duplicates.get(), 1);
        assert_eq!(store.audit_totals().await.unwrap(), (2, 2, 2));
        for (ev, id) in [("ev-a", ids[0]), ("ev-b", theirs)] {
            assert_eq!(records_of(&store, ev).await, [id], "{ev}");
        }
    })
    .await;
}

/// Two workers claim the same target at once, over and over: no item is
/// ever handed to both, and every item is delivered once.
async fn outbox_claims_are_exclusive(b: Arc<Backend>) {
    let store = b.open().await;
    let items: Vec<NewOutboxItem> = (0..400)
        .map(|i| NewOutboxItem {
            id: format!("msg_{i:04}"),
            target: "soar".into(),
            payload: serde_json::json!({"n": i}),
            created_at: at(i),
        })
        .collect();
    assert_eq!(store.outbox_enqueue_many(&items).await.unwrap(), 400);
    assert_eq!(store.outbox_enqueue_many(&items[..10]).await.unwrap(), 0);
    let now = Utc::now();
    let worker = |owner: &'static str| {
        let store = store.clone();
        tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let claimed = store
                    .outbox_claim(Some("soar"), owner, Duration::from_secs(60), 7, now)
                    .await
                    .unwrap();
                if claimed.is_empty() {
                    return mine;
                }
                for item in claimed {
                    assert_eq!(item.locked_by.as_deref(), Some(owner));
                    assert!(store.outbox_delivered(&item.id, now).await.unwrap());
                    mine.push(item.id);
                }
            }
        })
    };
    let (a, b2) = tokio::join!(worker("replica-a"), worker("replica-b"));
    let (a, b2) = (a.unwrap(), b2.unwrap());
    let all: HashSet<&String> = a.iter().chain(b2.iter()).collect();
    assert_eq!(a.len() + b2.len(), 400, "no item claimed twice");
    assert_eq!(all.len(), 400, "every item claimed");
    let counts = store.outbox_counts().await.unwrap();
    assert_eq!(counts.len(), 1);
    assert_eq!(
        (counts[0].status, counts[0].count),
        (OutboxStatus::Delivered, 400)
    );

    // Dead-letter, list, replay.
    store
        .outbox_enqueue(&NewOutboxItem {
            id: "late".into(),
            target: "slack".into(),
            payload: serde_json::json!({}),
            created_at: now,
        })
        .await
        .unwrap();
    assert!(store
        .outbox_dead_letter("late", "older than 24h", now)
        .await
        .unwrap());
    let dead = store
        .outbox_list(&OutboxFilter {
            status: Some(OutboxStatus::Dead),
            target: Some("slack".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(dead.items.len(), 1);
    let replayed = store.outbox_replay("late", now).await.unwrap();
    assert_eq!(replayed.status, OutboxStatus::Pending);
    store
        .outbox_disable_target("slack", "410 Gone", now)
        .await
        .unwrap();
    assert!(
        store
            .outbox_target("slack")
            .await
            .unwrap()
            .unwrap()
            .disabled
    );
}
both!(outbox_claims_are_exclusive);

async fn idempotency_states(b: Arc<Backend>) {
    let store = b.open().await;
    let now = Utc::now();
    let ttl = Duration::from_secs(3600);
    let begin = |hash: &'static str| {
        let store = store.clone();
        async move {
            store
                .idempotency_begin("soar", "key-1", hash, ttl, now)
                .await
                .unwrap()
        }
    };
    // Two concurrent first uses: exactly one is new.
    let (x, y) = tokio::join!(begin("h1"), begin("h1"));
    let news = [&x, &y]
        .iter()
        .filter(|r| ***r == IdempotencyBegin::New)
        .count();
    assert_eq!(news, 1, "{x:?} {y:?}");
    assert_eq!(begin("h1").await, IdempotencyBegin::InFlight);
    assert_eq!(begin("h2").await, IdempotencyBegin::Mismatch);
    store
        .idempotency_finish(
            "soar",
            "key-1",
            202,
            "{\"id\":\"a1\"}",
            now + ChronoDuration::hours(1),
        )
        .await
        .unwrap();
    assert_eq!(
        begin("h1").await,
        IdempotencyBegin::Done {
            status: 202,
            body: "{\"id\":\"a1\"}".into()
        }
    );
    assert_eq!(begin("h2").await, IdempotencyBegin::Mismatch);
}
both!(idempotency_states);

async fn approvals_are_single_use(b: Arc<Backend>) {
    let store = b.open().await;
    let now = Utc::now();
    for i in 0..20 {
        store
            .approval_create(&NewApproval {
                id: format!("ap{i}"),
                intent: serde_json::json!({"action": "quarantine"}),
                event_id: "ev1".into(),
                playbook: "c2".into(),
                created_at: now,
                expires_at: now + ChronoDuration::minutes(30),
                on_timeout: OnTimeout::Drop,
                context: None,
            })
            .await
            .unwrap();
    }
    // Approve and deny race on each approval: exactly one wins.
    for i in 0..20 {
        let id = format!("ap{i}");
        let (a, d) = tokio::join!(
            store.approval_decide(&id, Verdict::Approve, "alice", now),
            store.approval_decide(&id, Verdict::Deny, "bob", now)
        );
        let wins = [a.is_ok(), d.is_ok()].iter().filter(|w| **w).count();
        assert_eq!(wins, 1, "{a:?} {d:?}");
        let loser = if a.is_ok() { d } else { a };
        assert!(
            matches!(loser, Err(DecideError::AlreadyDecided(_))),
            "{loser:?}"
        );
    }
    // Timeouts: two replicas take expired approvals at once, each once.
    for i in 0..30 {
        store
            .approval_create(&NewApproval {
                id: format!("t{i}"),
                intent: serde_json::json!({"action": "tag_ip"}),
                event_id: "ev2".into(),
                playbook: "c2".into(),
                created_at: now,
                expires_at: now + ChronoDuration::seconds(1),
                on_timeout: OnTimeout::Apply,
                context: Some(serde_json::json!({"approvers": ["soc"]})),
            })
            .await
            .unwrap();
    }
    let later = now + ChronoDuration::seconds(2);
    let take = || {
        let store = store.clone();
        tokio::spawn(async move {
            let mut got = Vec::new();
            loop {
                let batch = store.approvals_take_expired(later, 4).await.unwrap();
                if batch.is_empty() {
                    return got;
                }
                got.extend(batch.into_iter().map(|a| a.id));
            }
        })
    };
    let (x, y) = tokio::join!(take(), take());
    let (x, y) = (x.unwrap(), y.unwrap());
    let t1 = store.approval_get("t1").await.unwrap().unwrap();
    assert_eq!(
        t1.context,
        Some(serde_json::json!({"approvers": ["soc"]})),
        "the context is kept"
    );
    let all: HashSet<&String> = x.iter().chain(y.iter()).collect();
    assert_eq!((x.len() + y.len(), all.len()), (30, 30));
    assert!(matches!(
        store
            .approval_decide("t1", Verdict::Approve, "alice", later)
            .await,
        Err(DecideError::AlreadyDecided(_))
    ));
}
both!(approvals_are_single_use);

/// The API's state (seen webhook ids, idempotency keys, approvals) through
/// the `ApiStore` trait the API uses, kept across a reopen and shared by
/// two stores on one database (two replicas).
async fn api_state_is_durable_and_shared(b: Arc<Backend>) {
    use riposte_engine::act::approvals::{Approval, ApprovalState};
    use riposte_engine::api::store::{ApiStore, DecideError, IdempotencyBegin as Begin};
    use riposte_engine::decide::decision::EventSummary;
    use riposte_engine::decide::intent::ApprovalDefault;
    let one = b.open().await;
    let two = b.open().await;
    let (r1, r2): (&dyn ApiStore, &dyn ApiStore) = (&one, &two);
    // Stored times have microsecond precision.
    let now = DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).unwrap();
    let keep = ChronoDuration::minutes(5);
    assert!(r1.insert_webhook_id("soar", "m1", now, keep).await.unwrap());
    assert!(
        !r2.insert_webhook_id("soar", "m1", now, keep).await.unwrap(),
        "the other replica sees the id"
    );
    assert_eq!(
        r1.idempotency_begin("soc", "k", "h1", now).await.unwrap(),
        Begin::Started
    );
    assert_eq!(
        r2.idempotency_begin("soc", "k", "h1", now).await.unwrap(),
        Begin::InFlight
    );
    r1.idempotency_finish("soc", "k", 202, "{\"id\":\"x\"}".into(), now)
        .await
        .unwrap();
    let intent = Intent::new(
        "ev9",
        "c2",
        Action::Quarantine {
            target: Target::pod("shop", "web-1").unwrap(),
            ttl: Ttl::parse("1h").unwrap(),
            reason: None,
        },
    );
    let approval = Approval {
        id: "ap-durable".into(),
        event_id: "ev9".into(),
        event: EventSummary {
            kind: "alert".into(),
            dataset: "panos.threat".into(),
            threat_name: Some("Beacon".into()),
            source_ip: Some("10.0.0.1".parse().unwrap()),
            ..EventSummary::default()
        },
        playbook: "c2".into(),
        intent: intent.clone(),
        default: ApprovalDefault::Apply,
        approvers: vec!["soc-lead".into()],
        reason: Some("beacon".into()),
        created_at: now,
        expires_at: now + ChronoDuration::hours(1),
        state: ApprovalState::Pending,
        decided_by: None,
        decided_at: None,
        approve_url: None,
        deny_url: None,
    };
    r1.approval_create(approval.clone()).await.unwrap();
    one.close().await;
    two.close().await;

    let again = b.open().await;
    let r: &dyn ApiStore = &again;
    assert!(!r.insert_webhook_id("soar", "m1", now, keep).await.unwrap());
    assert_eq!(
        r.idempotency_begin("soc", "k", "h1", now).await.unwrap(),
        Begin::Done {
            status: 202,
            body: "{\"id\":\"x\"}".into()
        }
    );
    assert_eq!(
        r.idempotency_begin("soc", "k", "h2", now).await.unwrap(),
        Begin::Mismatch
    );
    let pending = r.approval_list(true, 10).await.unwrap();
    assert_eq!(pending, vec![approval.clone()]);
    let decided = r
        .approval_decide("ap-durable", Verdict::Approve, "alice", now)
        .await
        .unwrap();
    assert_eq!(decided.state, ApprovalState::Approved);
    assert_eq!(decided.intent, intent);
    assert_eq!(
        r.approval_decide("ap-durable", Verdict::Deny, "bob", now)
            .await,
        Err(DecideError::AlreadyDecided(ApprovalState::Approved))
    );
}
both!(api_state_is_durable_and_shared);

async fn edl_versions_follow_content(b: Arc<Backend>) {
    let store = b.open().await;
    let now = Utc::now();
    let v0 = store.edl_version("c2", now).await.unwrap();
    let entries: Vec<NewEdlEntry> = (0..1000)
        .map(|i| NewEdlEntry {
            value: format!("10.{}.{}.1", i / 256, i % 256),
            expires_at: now + ChronoDuration::seconds(if i == 0 { 5 } else { 3600 }),
            reason: None,
            action_id: Some(format!("act{i}")),
        })
        .collect();
    store.edl_upsert("c2", &entries, now).await.unwrap();
    let v1 = store.edl_version("c2", now).await.unwrap();
    assert_ne!(v1, v0);
    assert_eq!(
        store.edl_active_values("c2", now).await.unwrap().len(),
        1000
    );
    let later = now + ChronoDuration::seconds(6);
    let v2 = store.edl_version("c2", later).await.unwrap();
    assert_ne!(v2.etag(), v1.etag(), "an expiry changes the ETag");
    let values = store.edl_active_values("c2", later).await.unwrap();
    assert_eq!(values.len(), 999);
    // The body the EDL is rendered from: the same values, byte order, one
    // a line, joined by the database.
    let body = store.edl_active_body("c2", later).await.unwrap();
    let mut sorted = values.clone();
    sorted.sort();
    assert_eq!(body, sorted.join("\n"));
    assert_eq!(store.edl_active_body("nothing", later).await.unwrap(), "");
    assert!(store.edl_remove("c2", "10.0.1.1", later).await.unwrap());
    let v3 = store.edl_version("c2", later).await.unwrap();
    assert_ne!(v3, v2);
    assert_eq!(store.edl_purge_expired(later).await.unwrap(), 1);
    assert_ne!(store.edl_version("c2", later).await.unwrap(), v3);
    assert_eq!(
        store.edl_version("other", later).await.unwrap(),
        EdlVersion {
            revision: 0,
            expired: 0
        }
    );
}
both!(edl_versions_follow_content);

async fn seen_ids_dedupe(b: Arc<Backend>) {
    let store = b.open().await;
    let now = Utc::now();
    let exp = now + ChronoDuration::minutes(5);
    let (x, y) = tokio::join!(
        store.seen_insert("xsoar", "msg_1", exp, now),
        store.seen_insert("xsoar", "msg_1", exp, now)
    );
    assert_ne!(x.unwrap(), y.unwrap(), "exactly one first sighting");
    assert!(!store.seen_insert("xsoar", "msg_1", exp, now).await.unwrap());
    assert!(store
        .seen_insert("thehive", "msg_1", exp, now)
        .await
        .unwrap());
}
both!(seen_ids_dedupe);

async fn retention_purge(b: Arc<Backend>) {
    let store = b.open().await;
    let now = Utc::now();
    let mut old = decision("old", "c2", 0, "shop/a", Outcome::Applied);
    old.at = now - ChronoDuration::days(31);
    old.actions.push(ActionRecord {
        action_id: "x".into(),
        action: "quarantine".into(),
        target: Some("shop/a".into()),
        status: ActionStatus::Applied,
        reason: None,
        code: None,
        attempts: 1,
        duration_us: 1,
        at: old.at,
    });
    let mut new = decision("new", "c2", 0, "shop/b", Outcome::Applied);
    new.at = now - ChronoDuration::days(29);
    store.append_decisions(&[old, new]).await.unwrap();
    store
        .idempotency_begin(
            "p",
            "k",
            "h",
            Duration::from_secs(1),
            now - ChronoDuration::seconds(10),
        )
        .await
        .unwrap();
    let report = store.purge(now).await.unwrap();
    assert_eq!(report.audit_decisions, 1);
    assert_eq!(report.idempotency_keys, 1);
    let left = store.query_audit(&AuditQuery::default()).await.unwrap();
    assert_eq!(left.entries.len(), 1);
    assert_eq!(left.entries[0].event_id, "new");
    // The purged record's event left the index; the kept one's did not.
    assert_eq!(store.audit_totals().await.unwrap(), (1, 1, 1));
    assert_eq!(records_of(&store, "new").await.len(), 1);
    assert_eq!(store.purge(now).await.unwrap().audit_decisions, 0);
}
both!(retention_purge);

async fn leases_round_trip(b: Arc<Backend>) {
    use riposte_engine::store::NewTagLease;
    let store = b.open().await;
    let now = Utc::now();
    store
        .lease_upsert(
            &[NewTagLease {
                firewall: "fw1".into(),
                ip: "203.0.113.66".into(),
                tag: "riposte-c2".into(),
                expires_at: now + ChronoDuration::hours(1),
                action_id: None,
            }],
            now,
        )
        .await
        .unwrap();
    assert_eq!(store.leases_active("fw1", now).await.unwrap().len(), 1);
    assert_eq!(
        store
            .lease_release(None, "203.0.113.66", "riposte-c2", now)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store.leases_to_unregister("fw1", now).await.unwrap().len(),
        1
    );
    assert!(store
        .lease_mark_unregistered("fw1", "203.0.113.66", "riposte-c2", now)
        .await
        .unwrap());
    assert!(store
        .leases_to_unregister("fw1", now)
        .await
        .unwrap()
        .is_empty());
}
both!(leases_round_trip);

/// An unreachable PostgreSQL does not stop the open: the store is unready,
/// its operations fail as unavailable, and the password never shows in
/// errors or the redacted URL.
#[tokio::test]
async fn unreachable_postgres_opens_unready_and_redacted() {
    let config = StoreConfig {
        url: Some(DatabaseUrl::new(
            "postgres://riposte:hunter2@127.0.0.1:1/riposte",
        )),
        connect_timeout_secs: 1,
        ..StoreConfig::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&config, dir.path()).await.unwrap();
    assert!(!store.is_ready());
    let err = store.ping().await.unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert!(!err.to_string().contains("hunter2"), "{err}");
    let err = store.audit_count().await.unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert!(!store.is_ready());
    assert!(!format!("{config:?}").contains("hunter2"));
    assert!(!store.url().contains("hunter2"));
}

/// Two replicas on one PostgreSQL: only one holds a leader lock; when it
/// lets go (or its connection dies), the other takes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_leader_lock_is_exclusive() {
    run_case(postgres_backend("leader").await, |b| async move {
        let one = b.open().await;
        let two = b.open().await;
        let mut lock = one.try_leader_lock("expiry").await.unwrap().unwrap();
        assert!(lock.is_held().await);
        assert!(two.try_leader_lock("expiry").await.unwrap().is_none());
        assert!(two.try_leader_lock("reconcile").await.unwrap().is_some());
        lock.release().await;
        let taken = two.try_leader_lock("expiry").await.unwrap();
        assert!(taken.is_some(), "released lock is free");
        drop(taken);
        one.close().await;
        two.close().await;
    })
    .await;
}

/// A replica completes what a dead one left in flight, from what the store
/// shows, and leaves a live one's decisions alone.
async fn inflight_decisions_of_a_dead_process_are_completed(b: Arc<Backend>) {
    let dead = b.open().await;
    let now = Utc::now();
    let edl = Intent::new(
        "ev-x",
        "pb",
        Action::EdlAdd {
            list: "c2".into(),
            value: "203.0.113.9".into(),
            ttl: Ttl::parse("1h").unwrap(),
            reason: None,
        },
    );
    let notify = Intent::new(
        "ev-x",
        "pb",
        Action::Notify {
            target: "soar".into(),
            fields: serde_json::Value::Null,
        },
    );
    let decision = Decision {
        event_id: "ev-x".into(),
        event: EventSummary {
            kind: "alert".into(),
            dataset: "panos.threat".into(),
            ..EventSummary::default()
        },
        playbook: "pb".into(),
        mode: Mode::Enforce,
        intents: vec![edl.clone(), notify.clone()],
        outcome: Outcome::Pending {
            reason: "dispatching".into(),
        },
        timings: Timings::default(),
        at: now,
        actions: vec![ActionRecord {
            action_id: edl.action_id.clone(),
            action: "edl_add".into(),
            target: Some("edl c2: 203.0.113.9".into()),
            status: ActionStatus::Queued,
            reason: None,
            code: None,
            attempts: 0,
            duration_us: 0,
            at: now,
        }],
    };
    dead.append_decisions(&[decision]).await.unwrap();
    dead.edl_upsert(
        "c2",
        &[NewEdlEntry {
            value: "203.0.113.9".into(),
            expires_at: now + ChronoDuration::hours(1),
            reason: None,
            action_id: Some(edl.action_id.clone()),
        }],
        now,
    )
    .await
    .unwrap();
    dead.outbox_enqueue(&NewOutboxItem {
        id: notify.action_id.clone(),
        target: "soar".into(),
        payload: serde_json::json!({}),
        created_at: now,
    })
    .await
    .unwrap();
    let next = b.open().await;
    let grace = now - ChronoDuration::minutes(10);
    let live = vec![dead.instance().to_string(), next.instance().to_string()];
    let untouched = next.recover_inflight(&live, grace, now).await.unwrap();
    assert_eq!(untouched.decisions, 0, "the process is alive");
    let done = next
        .recover_inflight(&[next.instance().to_string()], grace, now)
        .await
        .unwrap();
    assert_eq!((done.decisions, done.actions), (1, 2));
    let page = next
        .query_audit(&AuditQuery {
            event_id: Some("ev-x".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let entry = &page.entries[0];
    assert_eq!(entry.outcome, Outcome::Applied, "{entry:#?}");
    assert_eq!(entry.actions.len(), 2);
    assert!(entry
        .actions
        .iter()
        .all(|a| a.status == ActionStatus::Applied));
    dead.close().await;
    next.close().await;
}
both!(inflight_decisions_of_a_dead_process_are_completed);

/// Coalescing windows of notifications on both backends: a window only
/// takes a newer state, an outbox item written with it waits until due and
/// can be rewritten until claimed, the SOAR's reference of the incident is
/// kept, and a closed window is no longer read back.
async fn notify_windows_keep_the_newest_state_and_the_reference(b: Arc<Backend>) {
    use riposte_engine::store::{Incident, NotifyWrite, WindowRow};
    let store = b.open().await;
    let now = Utc::now();
    let window = |rev: i64, count: u64, closed: bool| {
        NotifyWrite::Window(WindowRow {
            id: "inc-1".into(),
            target: "soar".into(),
            subject: "riposte.notify|shop/a|C2".into(),
            window_end: now + ChronoDuration::seconds(600),
            closed,
            rev,
            state: riposte_engine::store::WindowState::Value(serde_json::json!({ "count": count })),
            updated_at: now,
        })
    };
    let opening = NotifyWrite::Enqueue {
        item: NewOutboxItem {
            id: "inc-1".into(),
            target: "soar".into(),
            payload: serde_json::json!({ "id": "inc-1" }),
            created_at: now,
        },
        due: now + ChronoDuration::milliseconds(200),
    };
    let done = store
        .notify_write(&[opening, window(1, 1, false), window(3, 3, false)])
        .await
        .unwrap();
    assert_eq!(done, [true, false, true]);
    assert_eq!(
        store.notify_write(&[window(2, 2, false)]).await.unwrap(),
        [false]
    );
    let open = store.notify_windows_open().await.unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(
        open[0].state.clone().into_value().expect("state")["count"],
        3
    );
    let lease = Duration::from_secs(30);
    assert!(store
        .outbox_claim(None, "w", lease, 10, now)
        .await
        .unwrap()
        .is_empty());
    let amend = NotifyWrite::Amend {
        id: "inc-1".into(),
        payload: serde_json::json!({ "id": "inc-1", "playbooks": 2 }),
        now,
    };
    assert_eq!(
        store
            .notify_write(std::slice::from_ref(&amend))
            .await
            .unwrap(),
        [true]
    );
    let later = now + ChronoDuration::seconds(1);
    let claimed = store
        .outbox_claim(None, "w", lease, 10, later)
        .await
        .unwrap();
    assert_eq!(claimed[0].payload["playbooks"], 2);
    assert_eq!(store.notify_write(&[amend]).await.unwrap(), [false]);
    assert!(store.notify_set_reference("inc-1", "417").await.unwrap());
    store.outbox_delivered("inc-1", later).await.unwrap();
    assert_eq!(
        store.notify_incident("inc-1").await.unwrap(),
        Some(Incident {
            reference: Some("417".into()),
            opening: Some(OutboxStatus::Delivered)
        })
    );
    store.notify_write(&[window(4, 3, true)]).await.unwrap();
    assert!(store.notify_windows_open().await.unwrap().is_empty());
    store.close().await;
}
both!(notify_windows_keep_the_newest_state_and_the_reference);
