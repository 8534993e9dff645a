//! RabbitMQ end to end, against the real broker (and PostgreSQL) on
//! loopback: a queue of logs consumed with poison messages dead-lettered;
//! ingest and worker replicas over the partition queues; a worker killed
//! mid-stream losing nothing; connections closed by the broker survived by
//! both roles; per-source order and each action applied once with two
//! workers; two workers sharing one store splitting the partitions, and the
//! survivor taking them all when the other dies; the leader role moving
//! when its holder dies.
//!
//! Every test has queues and exchanges of its own (unique names), so they
//! run in parallel. The playbook `relay` publishes one message per event to
//! the test's exchange (a `publish` intent, through the outbox): what the
//! test reads from its relay queue is what the workers decided.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use riposte_connectors::amqp::{
    subscribe, BindingSpec, Broker, BrokerUrl, ConsumerSettings, ExchangeSpec, ExchangeType,
    Outgoing, Publisher, QueueSpec, Topology, REASON_HEADER,
};
use riposte_engine::config::Config;
use riposte_engine::decide::decision::DecisionFilter;
use riposte_engine::intake::queues::config::{
    AmqpConfig, AmqpSourceConfig, MessageFormat, PartitionConfig,
};
use riposte_engine::intake::queues::Role;
use riposte_engine::store::DatabaseUrl;
use riposte_tests::service::{self, add_playbook, Service};
use riposte_tests::syslog::{self, Framing};
use riposte_tests::{eventually, lines, postgres, rabbit};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(90);

const RELAY: &str = r#"// name: relay
// trigger: threat.type = spyware
// mode: enforce
publish("EXCHANGE", "relay", #{ id: event.id, src: `${event.source.ip}`, session: event.panos.session_id });
"#;

struct Names {
    base: String,
    exchange: String,
    relay: String,
    partitions: PartitionConfig,
}

fn names(prefix: &str) -> Names {
    let base = rabbit::unique(prefix);
    Names {
        exchange: format!("{base}.out"),
        relay: format!("{base}.relay"),
        partitions: PartitionConfig {
            exchange: format!("{base}.ev"),
            queue_prefix: format!("{base}.ev"),
            count: 4,
            prefetch: 64,
            delivery_limit: 5,
            dead_letter_exchange: format!("{base}.ev.dlx"),
            // Quick to rebalance, slow to declare a worker dead: a loaded
            // machine may delay a heartbeat by seconds.
            rebalance_interval_ms: 250,
            member_ttl_ms: 4_000,
        },
        base,
    }
}

impl Names {
    fn queues(&self) -> Vec<String> {
        let mut q: Vec<String> = (0..self.partitions.count)
            .map(|n| self.partitions.queue(n))
            .collect();
        q.push(format!("{}.dead", self.partitions.queue_prefix));
        q.push(self.relay.clone());
        q
    }

    fn exchanges(&self) -> Vec<String> {
        vec![
            self.exchange.clone(),
            self.partitions.exchange.clone(),
            self.partitions.dead_letter_exchange.clone(),
        ]
    }

    async fn cleanup(&self, more_queues: &[String], more_exchanges: &[String]) {
        let mut q = self.queues();
        q.extend_from_slice(more_queues);
        let mut e = self.exchanges();
        e.extend_from_slice(more_exchanges);
        rabbit::cleanup(&q, &e).await;
    }
}

/// The `[amqp]` of the test's replicas, and the relay playbook.
fn configure(c: &mut Config, n: &Names, pg: Option<&str>) {
    let a = AmqpConfig {
        url: BrokerUrl::new(rabbit::url()),
        connection_name: format!("svc-{}", n.base),
        reconnect_min_ms: 50,
        reconnect_max_ms: 500,
        heartbeat_secs: 10,
        partitions: n.partitions.clone(),
        ..AmqpConfig::default()
    };
    c.amqp = Some(a);
    if let Some(amqp) = c.amqp.as_mut() {
        amqp.outbox.poll_ms = 100;
    }
    add_playbook(c, "relay.rhai", &RELAY.replace("EXCHANGE", &n.exchange)).unwrap();
    if let Some(url) = pg {
        c.store.url = Some(DatabaseUrl::new(url));
    }
    c.leader.check_interval_ms = 200;
}

/// What the relay queue received, in order.
struct Relay {
    seen: Arc<Mutex<Vec<Value>>>,
    broker: Arc<Broker>,
    stop: CancellationToken,
}

impl Relay {
    async fn start(n: &Names) -> Relay {
        let broker = rabbit::broker(&format!("rd-{}", n.base)).unwrap();
        broker
            .add_topology(&Topology {
                exchanges: vec![ExchangeSpec {
                    name: n.exchange.clone(),
                    kind: ExchangeType::Direct,
                    declare: true,
                }],
                queues: vec![QueueSpec::quorum(&n.relay)],
                bindings: vec![BindingSpec {
                    queue: n.relay.clone(),
                    exchange: n.exchange.clone(),
                    routing_key: "relay".into(),
                }],
            })
            .await
            .unwrap();
        let publisher = Arc::new(Publisher::new(broker.clone()));
        let stop = CancellationToken::new();
        let mut sub = subscribe(
            broker.clone(),
            publisher,
            ConsumerSettings {
                queue: QueueSpec::quorum(&n.relay),
                prefetch: 500,
                tag: String::new(),
            },
            stop.clone(),
        )
        .await
        .unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        tokio::spawn(async move {
            while let Some(d) = sub.deliveries.recv().await {
                let v = serde_json::from_slice(&d.body).unwrap_or(Value::Null);
                s.lock().unwrap().push(v);
                let _ = d.ack().await;
            }
        });
        Relay { seen, broker, stop }
    }

    fn sessions(&self) -> Vec<u64> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter_map(|v| v["session"].as_u64())
            .collect()
    }

    /// Waits until every session in `expected` was relayed at least once.
    async fn wait_for(&self, expected: &BTreeSet<u64>) {
        let got = eventually(WAIT, || {
            let seen: BTreeSet<u64> = self.sessions().into_iter().collect();
            expected.is_subset(&seen).then_some(())
        })
        .await;
        if got.is_err() {
            let seen: BTreeSet<u64> = self.sessions().into_iter().collect();
            let missing: Vec<&u64> = expected.difference(&seen).take(20).collect();
            panic!(
                "{} of {} relayed; missing e.g. {missing:?}",
                expected.intersection(&seen).count(),
                expected.len()
            );
        }
    }

    async fn stop(self) {
        self.stop.cancel();
        self.broker.close().await;
    }
}

/// C2 logs from `sources` addresses, `per_source` each, sessions
/// `first..`; returns the lines and their session numbers (40000 + seq).
fn c2_lines(sources: u32, per_source: u64, first: u64) -> (Vec<String>, BTreeSet<u64>) {
    let mut out = Vec::new();
    let mut sessions = BTreeSet::new();
    for i in 0..per_source {
        for s in 0..sources {
            let seq = first + i * u64::from(sources) + u64::from(s);
            out.push(lines::with_bsd_header(&lines::c2(
                &format!("10.9.{}.{}", s / 200, 1 + s % 200),
                "203.0.113.66",
                seq,
            )));
            sessions.insert(40_000 + seq);
        }
    }
    (out, sessions)
}

/// One connection: records of separate connections have no order between
/// them.
async fn send(svc: &Service, lines: &[String]) {
    syslog::send_tcp(svc.running.tcp[0], lines, Framing::OctetCounting)
        .await
        .unwrap();
}

async fn stop_all(services: Vec<Service>) {
    for s in services {
        s.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_of_logs_becomes_decisions_and_poison_is_dead_lettered() {
    let n = names("src");
    let queue = format!("{}.logs", n.base);
    let dlx = format!("{}.logs.dlx", n.base);
    let relay = Relay::start(&n).await;
    let source = AmqpSourceConfig {
        queue: queue.clone(),
        declare: true,
        quorum: true,
        format: MessageFormat::Auto,
        prefetch: 16,
        delivery_limit: 3,
        dead_letter_exchange: Some(dlx.clone()),
    };
    let svc = service::start_with(|c, _| {
        configure(c, &n, None);
        if let Some(a) = c.amqp.as_mut() {
            a.sources = vec![source.clone()];
        }
    })
    .await
    .unwrap();
    // The test declares the queue as the service does (same arguments), so
    // it can publish before the service's consumer is up.
    relay
        .broker
        .add_topology(&Topology {
            queues: vec![source.queue_spec()],
            ..Topology::default()
        })
        .await
        .unwrap();
    let publisher = Publisher::new(relay.broker.clone());
    let (logs, sessions) = c2_lines(5, 1, 0);
    for line in &logs {
        publisher
            .publish(&Outgoing::new("", &queue, line.clone().into_bytes()))
            .await
            .unwrap();
    }
    // One message holding two normalized events, as `riposte parse`
    // prints them.
    let (more, more_sessions) = c2_lines(2, 1, 100);
    let opts = svc.config.parse_options().unwrap();
    let events: Vec<Value> = more
        .iter()
        .map(
            |l| match riposte_firewall::parse_record(l.as_bytes(), &opts).unwrap() {
                riposte_firewall::Parsed::Event(ev) => serde_json::to_value(&ev).unwrap(),
                other => panic!("not an event: {other:?}"),
            },
        )
        .collect();
    publisher
        .publish(
            &Outgoing::new("", &queue, serde_json::to_vec(&events).unwrap())
                .content_type("application/json"),
        )
        .await
        .unwrap();
    let garbage = b"\x00\x01 this is no threat log".to_vec();
    publisher
        .publish(&Outgoing::new("", &queue, garbage.clone()))
        .await
        .unwrap();

    let mut all = sessions.clone();
    all.extend(more_sessions);
    relay.wait_for(&all).await;

    let dead_queue = format!("{queue}.dead");
    let stop = CancellationToken::new();
    let mut dead = subscribe(
        relay.broker.clone(),
        Arc::new(Publisher::new(relay.broker.clone())),
        ConsumerSettings {
            queue: QueueSpec::quorum(&dead_queue),
            prefetch: 1,
            tag: String::new(),
        },
        stop.clone(),
    )
    .await
    .unwrap();
    let d = tokio::time::timeout(WAIT, dead.deliveries.recv())
        .await
        .expect("a dead letter in time")
        .expect("subscription open");
    assert_eq!(d.body, garbage);
    let reason = d.header(REASON_HEADER).unwrap_or_default();
    assert!(reason.starts_with("undecodable"), "{reason}");
    d.ack().await.unwrap();
    stop.cancel();

    let acked = eventually(WAIT, || {
        let v = svc.metric(
            "riposte_amqp_messages_total",
            &[("queue", queue.as_str()), ("result", "acked")],
        );
        (v >= 6.0).then_some(v)
    })
    .await
    .unwrap();
    assert_eq!(acked, 6.0, "five logs and one message of two events");
    assert_eq!(
        svc.metric(
            "riposte_amqp_dead_letters_total",
            &[("queue", queue.as_str()), ("reason", "undecodable")]
        ),
        1.0
    );
    // Every decision is in the audit trail: acked only once written.
    let audited = svc.running.store.audit_count().await.unwrap();
    assert!(audited >= 7, "{audited} audit records");

    svc.stop().await;
    relay.stop().await;
    n.cleanup(&[queue, dead_queue], &[dlx]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_stream_loses_nothing() {
    let n = names("kill");
    // Workers share the PostgreSQL store, as replicas must: what the killed
    // worker acked is in the shared outbox, which the other one delivers
    // (with a store of its own it would wait for that worker's restart).
    let url = postgres::fresh_database("kill").await.unwrap();
    let relay = Relay::start(&n).await;
    let ingest = service::start_role_with(Role::Ingest, |c, _| configure(c, &n, None))
        .await
        .unwrap();
    let first = service::start_role_with(Role::Worker, |c, _| configure(c, &n, Some(&url)))
        .await
        .unwrap();
    let (logs, sessions) = c2_lines(20, 150, 0);
    send(&ingest, &logs).await;
    // Kill the worker once it is part-way through.
    eventually(WAIT, || (first.running.decisions.len() >= 40).then_some(()))
        .await
        .unwrap();
    if let Some(a) = &first.running.amqp {
        a.kill().await;
    }
    let acked_by_first = first.metric("riposte_amqp_messages_total", &[("result", "acked")]);
    assert!(
        acked_by_first < sessions.len() as f64,
        "killed mid-stream ({acked_by_first} acked)"
    );
    first.stop().await;
    let second = service::start_role_with(Role::Worker, |c, _| configure(c, &n, Some(&url)))
        .await
        .unwrap();
    relay.wait_for(&sessions).await;
    // The survivor decided again what the killed worker recorded but had
    // not acked: the audit trail counts each event once all the same, and
    // no event is missing from it.
    let store = second.running.store.clone();
    let deadline = std::time::Instant::now() + WAIT;
    let (records, counted, indexed) = loop {
        let t = store.audit_totals().await.unwrap();
        if t.1 >= sessions.len() as i64 || std::time::Instant::now() > deadline {
            break t;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        (counted, indexed),
        (sessions.len() as i64, sessions.len() as i64),
        "every event counted once ({records} records)"
    );
    eprintln!(
        "redelivered events recognised: {}",
        second.metric("riposte_audit_duplicates_total", &[])
    );
    // (The relay itself may see a message twice: a worker killed between
    // publishing an outbox item and marking it delivered publishes it
    // again from the shared outbox, with the same message id. That is the
    // outbox's at-least-once, not a second decision.)
    stop_all(vec![ingest, second]).await;
    relay.stop().await;
    n.cleanup(&[], &[]).await;
    postgres::drop_database(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_closed_by_the_broker_are_survived_by_both_roles() {
    let n = names("bounce");
    let relay = Relay::start(&n).await;
    let ingest = service::start_role_with(Role::Ingest, |c, _| configure(c, &n, None))
        .await
        .unwrap();
    let worker = service::start_role_with(Role::Worker, |c, _| configure(c, &n, None))
        .await
        .unwrap();
    // Split replicas are ready once the broker answers (`amqp` check).
    eventually(WAIT, || {
        (ingest.running.readiness.is_ready() && worker.running.readiness.is_ready()).then_some(())
    })
    .await
    .unwrap();
    let (logs, sessions) = c2_lines(5, 10, 0);
    send(&ingest, &logs).await;
    relay.wait_for(&sessions).await;

    // As a broker restart does to its clients.
    let closed = rabbit::close_connections_named(&format!("svc-{}", n.base))
        .await
        .unwrap();
    assert!(closed >= 2, "closed {closed} connections");
    let (logs, more) = c2_lines(5, 10, 1000);
    send(&ingest, &logs).await;
    relay.wait_for(&more).await;
    assert!(
        ingest
            .running
            .amqp
            .as_ref()
            .map_or(0, |a| a.broker.connects())
            >= 2,
        "the ingest replica reconnected"
    );
    assert!(
        worker
            .running
            .amqp
            .as_ref()
            .map_or(0, |a| a.broker.connects())
            >= 2,
        "the worker reconnected"
    );
    stop_all(vec![ingest, worker]).await;
    relay.stop().await;
    n.cleanup(&[], &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_keep_each_sources_order_and_act_once() {
    let n = names("order");
    let relay = Relay::start(&n).await;
    let ingest = service::start_role_with(Role::Ingest, |c, _| configure(c, &n, None))
        .await
        .unwrap();
    let a = service::start_role_with(Role::Worker, |c, _| configure(c, &n, None))
        .await
        .unwrap();
    let b = service::start_role_with(Role::Worker, |c, _| configure(c, &n, None))
        .await
        .unwrap();
    let (logs, sessions) = c2_lines(16, 25, 0);
    send(&ingest, &logs).await;
    relay.wait_for(&sessions).await;

    let seen = relay.seen.lock().unwrap().clone();
    // Each event's action (its publish) was carried out once, by one worker.
    let mut count: BTreeMap<u64, usize> = BTreeMap::new();
    for v in &seen {
        if let Some(s) = v["session"].as_u64() {
            *count.entry(s).or_default() += 1;
        }
    }
    let twice: Vec<_> = count.iter().filter(|(_, c)| **c > 1).collect();
    assert!(twice.is_empty(), "applied more than once: {twice:?}");
    // And in each source's order.
    let mut by_source: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for v in &seen {
        by_source
            .entry(v["src"].as_str().unwrap_or("").to_string())
            .or_default()
            .push(v["session"].as_u64().unwrap_or(0));
    }
    assert_eq!(by_source.len(), 16);
    for (src, order) in &by_source {
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_eq!(order, &sorted, "events of {src} out of order");
    }
    let decided = |s: &Service| {
        s.running
            .decisions
            .recent(10_000, &DecisionFilter::default())
            .len()
    };
    assert_eq!(decided(&a) + decided(&b), 400, "each event decided once");
    stop_all(vec![ingest, a, b]).await;
    relay.stop().await;
    n.cleanup(&[], &[]).await;
}

fn owned(s: &Service) -> f64 {
    s.metric("riposte_amqp_partitions_owned", &[])
}

fn acked(s: &Service) -> f64 {
    s.metric("riposte_amqp_messages_total", &[("result", "acked")])
}

/// Sessions relayed more than once among `sessions`.
fn repeats(seen: &[Value], sessions: &BTreeSet<u64>) -> Vec<u64> {
    let mut count: BTreeMap<u64, usize> = BTreeMap::new();
    for s in seen.iter().filter_map(|v| v["session"].as_u64()) {
        if sessions.contains(&s) {
            *count.entry(s).or_default() += 1;
        }
    }
    count
        .into_iter()
        .filter(|(_, c)| *c > 1)
        .map(|(s, _)| s)
        .collect()
}

/// The sources whose events the workers decided out of order, among
/// `sessions`: the decisions of every worker, by time (one process, one
/// clock), sessions known from the relayed messages' event ids.
fn decided_out_of_order(
    workers: &[&Service],
    seen: &[Value],
    sessions: &BTreeSet<u64>,
) -> Vec<String> {
    let session_of: BTreeMap<&str, u64> = seen
        .iter()
        .filter_map(|v| Some((v["id"].as_str()?, v["session"].as_u64()?)))
        .filter(|(_, s)| sessions.contains(s))
        .collect();
    let mut decided = Vec::new();
    for w in workers {
        let mut mine = w
            .running
            .decisions
            .recent(100_000, &DecisionFilter::default());
        // Newest first: back to the order they were made.
        mine.reverse();
        decided.extend(mine);
    }
    decided.sort_by_key(|d| d.at);
    let matched = decided
        .iter()
        .filter(|d| session_of.contains_key(d.event_id.as_str()))
        .count();
    assert_eq!(
        matched,
        sessions.len(),
        "decisions found for the relayed events"
    );
    let mut by_source: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for d in &decided {
        if let Some(s) = session_of.get(d.event_id.as_str()) {
            let src = d
                .event
                .source_ip
                .map(|ip| ip.to_string())
                .unwrap_or_default();
            by_source.entry(src).or_default().push(*s);
        }
    }
    by_source
        .into_iter()
        .filter(|(_, order)| order.windows(2).any(|w| w[0] > w[1]))
        .map(|(src, order)| format!("{src}: {order:?}"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_sharing_a_store_split_the_partitions_and_a_survivor_takes_them_all() {
    let n = names("share");
    let url = postgres::fresh_database("share").await.unwrap();
    let relay = Relay::start(&n).await;
    let ingest = service::start_role_with(Role::Ingest, |c, _| configure(c, &n, None))
        .await
        .unwrap();
    let a = service::start_role_with(Role::Worker, |c, _| configure(c, &n, Some(&url)))
        .await
        .unwrap();
    eventually(WAIT, || (owned(&a) == 4.0).then_some(()))
        .await
        .expect("a lone worker consumes every partition");
    let decided = |s: &Service| {
        s.running
            .decisions
            .recent(10_000, &DecisionFilter::default())
            .len()
    };

    // `b` joins while `a` works through a backlog: `a` hands two partitions
    // over mid-stream, and no event is decided twice or out of order.
    let (logs, sessions) = c2_lines(16, 200, 0);
    send(&ingest, &logs).await;
    eventually(WAIT, || (decided(&a) >= 100).then_some(()))
        .await
        .unwrap();
    let b = service::start_role_with(Role::Worker, |c, _| configure(c, &n, Some(&url)))
        .await
        .unwrap();
    eventually(WAIT, || {
        (owned(&a) == 2.0 && owned(&b) == 2.0).then_some(())
    })
    .await
    .unwrap_or_else(|_| panic!("partitions owned: a {}, b {}", owned(&a), owned(&b)));
    relay.wait_for(&sessions).await;
    let check = |sessions: &BTreeSet<u64>| {
        let seen = relay.seen.lock().unwrap().clone();
        let twice = repeats(&seen, sessions);
        assert!(twice.is_empty(), "applied more than once: {twice:?}");
        // Order is checked on the decisions: the relayed messages go
        // through the shared outbox, which either worker's outbox worker
        // delivers.
        let disordered = decided_out_of_order(&[&a, &b], &seen, sessions);
        assert!(
            disordered.is_empty(),
            "decided out of order: {disordered:?}"
        );
    };
    check(&sessions);
    assert_eq!(
        decided(&a) + decided(&b),
        sessions.len(),
        "each event decided once"
    );

    // Both take part now: 16 sources reach all four partitions.
    let (da, db) = (decided(&a), decided(&b));
    let (logs, sessions) = c2_lines(16, 25, 3_200);
    send(&ingest, &logs).await;
    relay.wait_for(&sessions).await;
    check(&sessions);
    let (da, db) = (decided(&a) - da, decided(&b) - db);
    assert_eq!(da + db, 400, "each event decided once");
    assert!(
        da > 0 && db > 0,
        "both workers decided events: a {da}, b {db}"
    );

    // `a` dies mid-stream (no goodbye: its heartbeat row stays until it
    // expires); `b` takes every partition and nothing is lost.
    let (more, more_sessions) = c2_lines(16, 100, 3_600);
    send(&ingest, &more).await;
    let before_kill = acked(&a);
    eventually(WAIT, || (acked(&a) >= before_kill + 10.0).then_some(()))
        .await
        .expect("a works on the second batch");
    if let Some(amqp) = &a.running.amqp {
        amqp.kill().await;
    }
    eventually(WAIT, || (owned(&b) == 4.0).then_some(()))
        .await
        .unwrap_or_else(|_| panic!("b owns {} partitions after a died", owned(&b)));
    relay.wait_for(&more_sessions).await;
    a.stop().await;
    stop_all(vec![ingest, b]).await;
    relay.stop().await;
    n.cleanup(&[], &[]).await;
    postgres::drop_database(&url).await;
}

const TICK: &str = r#"// name: tick
// schedule: * * * * * *
// mode: dry-run
log("info", "tick");
"#;

fn ticks(s: &Service) -> usize {
    s.running
        .decisions
        .recent(
            10_000,
            &DecisionFilter {
                playbook: Some("tick".into()),
                ..Default::default()
            },
        )
        .len()
}

fn leads(s: &Service) -> bool {
    s.running.leadership.as_ref().is_some_and(|l| l.is_leader())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_role_moves_when_its_holder_dies() {
    let url = postgres::fresh_database("leader").await.unwrap();
    let start = || {
        let url = url.clone();
        service::start_with(move |c, _| {
            c.store.url = Some(DatabaseUrl::new(&url));
            c.leader.check_interval_ms = 200;
            add_playbook(c, "tick.rhai", TICK).unwrap();
        })
    };
    let a = start().await.unwrap();
    let b = start().await.unwrap();
    let services = [&a, &b];
    let first = eventually(WAIT, || {
        let leaders: Vec<usize> = (0..2).filter(|i| leads(services[*i])).collect();
        (leaders.len() == 1).then(|| leaders[0])
    })
    .await
    .unwrap();
    let (leader, other) = if first == 0 { (a, b) } else { (b, a) };
    // The schedule runs on the leader only.
    eventually(WAIT, || (ticks(&leader) >= 2).then_some(()))
        .await
        .unwrap();
    assert!(!leads(&other));
    assert_eq!(ticks(&other), 0, "schedules run on the leader only");

    // The leader's lock session dies (a crash, a cut connection): it stops
    // leading, and one replica takes over.
    let ended = postgres::terminate_sessions(&url, "pg_try_advisory_lock")
        .await
        .unwrap();
    assert!(ended >= 1, "the lock session ended");
    let terms = |s: &Service| s.running.leadership.as_ref().map_or(0, |l| l.terms());
    eventually(WAIT, || {
        (terms(&leader) >= 2 || leads(&other)).then_some(())
    })
    .await
    .unwrap();

    // The leading process goes away entirely: the other one leads and runs
    // the schedules.
    let pair = [&leader, &other];
    let now = eventually(WAIT, || {
        let leaders: Vec<usize> = (0..2).filter(|i| leads(pair[*i])).collect();
        (leaders.len() == 1).then(|| leaders[0])
    })
    .await
    .unwrap();
    let (dying, survivor) = if now == 0 {
        (leader, other)
    } else {
        (other, leader)
    };
    dying.stop().await;
    let before = ticks(&survivor);
    eventually(WAIT, || leads(&survivor).then_some(()))
        .await
        .unwrap();
    eventually(WAIT, || (ticks(&survivor) >= before + 2).then_some(()))
        .await
        .unwrap();
    assert_eq!(
        survivor.metric("riposte_leader", &[]),
        1.0,
        "the gauge shows who leads"
    );
    survivor.stop().await;
    postgres::drop_database(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kubernetes_lease_elects_one_leader_and_passes_on() {
    use riposte_engine::leader::LeaderBackend;
    use riposte_tests::kube_api::KubeApiServer;
    let kube = KubeApiServer::start().await.unwrap();
    let lease = rabbit::unique("lease");
    let start = |identity: &str| {
        let (kube, lease, identity) = (&kube, lease.clone(), identity.to_string());
        service::start_with(move |c, dir| {
            service::use_cluster(c, dir, kube).unwrap();
            c.leader.backend = LeaderBackend::Kubernetes;
            c.leader.lease_name = lease;
            c.leader.lease_namespace = Some("default".into());
            c.leader.identity = Some(identity);
            c.leader.check_interval_ms = 200;
            c.leader.lease_duration_secs = 3;
            add_playbook(c, "tick.rhai", TICK).unwrap();
        })
    };
    let a = start("replica-a").await.unwrap();
    eventually(WAIT, || leads(&a).then_some(())).await.unwrap();
    let b = start("replica-b").await.unwrap();
    let holder = |kube: &KubeApiServer| {
        kube.get("leases", "default", &lease)
            .and_then(|l| l["spec"]["holderIdentity"].as_str().map(str::to_string))
    };
    assert_eq!(holder(&kube).as_deref(), Some("replica-a"));
    eventually(WAIT, || (ticks(&a) >= 2).then_some(()))
        .await
        .unwrap();
    assert!(!leads(&b), "one leader at a time");
    assert_eq!(ticks(&b), 0, "schedules run on the leader only");

    // The leader stops (and gives the Lease up): the other takes it.
    a.stop().await;
    eventually(WAIT, || leads(&b).then_some(())).await.unwrap();
    assert_eq!(holder(&kube).as_deref(), Some("replica-b"));
    eventually(WAIT, || (ticks(&b) >= 2).then_some(()))
        .await
        .unwrap();
    b.stop().await;
}

/// Counts the messages arriving on `queue`, bound to `exchange` by `key`.
async fn collect(
    broker: &Arc<Broker>,
    exchange: &str,
    kind: ExchangeType,
    queue: &str,
    key: &str,
) -> (Arc<Mutex<Vec<Value>>>, CancellationToken) {
    broker
        .add_topology(&Topology {
            exchanges: vec![ExchangeSpec {
                name: exchange.to_string(),
                kind,
                declare: true,
            }],
            queues: vec![QueueSpec::quorum(queue)],
            bindings: vec![BindingSpec {
                queue: queue.to_string(),
                exchange: exchange.to_string(),
                routing_key: key.to_string(),
            }],
        })
        .await
        .unwrap();
    let stop = CancellationToken::new();
    let mut sub = subscribe(
        broker.clone(),
        Arc::new(Publisher::new(broker.clone())),
        ConsumerSettings {
            queue: QueueSpec::quorum(queue),
            prefetch: 500,
            tag: String::new(),
        },
        stop.clone(),
    )
    .await
    .unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    tokio::spawn(async move {
        while let Some(d) = sub.deliveries.recv().await {
            let mut v: Value = serde_json::from_slice(&d.body).unwrap_or(Value::Null);
            v["routing_key"] = Value::String(d.routing_key.clone());
            s.lock().unwrap().push(v);
            let _ = d.ack().await;
        }
    });
    (seen, stop)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_the_broker_is_away_publishes_wait_in_the_outbox() {
    let n = names("away");
    let relay = Relay::start(&n).await;
    let stream_exchange = format!("{}.decisions", n.base);
    let stream_queue = format!("{}.decisions.siem", n.base);
    let (stream, stop_stream) = collect(
        &relay.broker,
        &stream_exchange,
        ExchangeType::Topic,
        &stream_queue,
        "decision.relay.#",
    )
    .await;
    let proxy = rabbit::proxy().await.unwrap();
    let svc = service::start_with(|c, _| {
        configure(c, &n, None);
        if let Some(a) = c.amqp.as_mut() {
            a.url = BrokerUrl::new(rabbit::url_through(&proxy));
            a.decisions = Some(
                riposte_engine::intake::queues::config::DecisionStreamConfig {
                    exchange: stream_exchange.clone(),
                    kind: ExchangeType::Topic,
                    declare: true,
                    include_no_action: false,
                    actions: true,
                },
            );
        }
    })
    .await
    .unwrap();
    let (logs, first) = c2_lines(4, 5, 0);
    send(&svc, &logs).await;
    relay.wait_for(&first).await;

    proxy.down();
    let (logs, second) = c2_lines(4, 5, 1000);
    send(&svc, &logs).await;
    // Decided and applied (written to the outbox) while the broker is away.
    let pending = eventually(WAIT, || {
        let applied = svc.metric(
            "riposte_actions_total",
            &[("action", "publish"), ("status", "applied")],
        );
        (applied >= 40.0).then_some(())
    })
    .await;
    pending.unwrap();
    let waiting = svc
        .running
        .store
        .outbox_counts()
        .await
        .unwrap()
        .into_iter()
        .filter(|c| c.target == "amqp:publish" && c.status.as_str() == "pending")
        .map(|c| c.count)
        .sum::<i64>();
    assert!(
        waiting > 0,
        "messages wait in the outbox while the broker is away"
    );
    let relayed_while_down = relay
        .sessions()
        .iter()
        .filter(|s| second.contains(s))
        .count();
    assert_eq!(relayed_while_down, 0);

    proxy.up();
    relay.wait_for(&second).await;
    // The decision stream got every decision too, through the same outbox.
    eventually(WAIT, || (stream.lock().unwrap().len() >= 40).then_some(()))
        .await
        .unwrap();
    let keys: BTreeSet<String> = stream
        .lock()
        .unwrap()
        .iter()
        .filter_map(|v| v["routing_key"].as_str().map(str::to_string))
        .collect();
    assert!(
        keys.iter().all(|k| k.starts_with("decision.relay.")),
        "{keys:?}"
    );
    stop_stream.cancel();
    svc.stop().await;
    relay.stop().await;
    n.cleanup(&[stream_queue], &[stream_exchange]).await;
}
