//! The AMQP connector against the real RabbitMQ on loopback: confirmed
//! round trips, unroutable detection, poison messages dead-lettered with
//! their reason, recovery from a connection the broker closed, and the
//! prefetch bound. Every test uses queues and exchanges of its own and
//! deletes them afterwards.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use riposte_connectors::amqp::{
    subscribe, AmqpError, BindingSpec, ConsumerSettings, ExchangeSpec, ExchangeType, Outgoing,
    Publisher, QueueSpec, Settled, Topology, QUEUE_HEADER, REASON_HEADER,
};
use tokio_util::sync::CancellationToken;

/// The loopback broker's helpers, and a `Broker` handle on it (which the
/// support crate cannot build: it does not depend on this crate).
mod rabbit {
    use std::sync::Arc;

    use riposte_connectors::amqp::{AmqpError, Broker, BrokerSettings, BrokerUrl};
    pub use riposte_standins::rabbit::*;

    /// A broker connection named `name`, reconnecting quickly.
    pub fn broker(name: &str) -> Result<Arc<Broker>, AmqpError> {
        Broker::new(BrokerSettings {
            url: BrokerUrl::new(url()),
            connection_name: name.to_string(),
            reconnect_min_ms: 50,
            reconnect_max_ms: 500,
            heartbeat_secs: 10,
            ..BrokerSettings::default()
        })
    }
}

const WAIT: Duration = Duration::from_secs(10);

async fn next(
    sub: &mut riposte_connectors::amqp::Subscription,
) -> riposte_connectors::amqp::Delivery {
    tokio::time::timeout(WAIT, sub.deliveries.recv())
        .await
        .expect("a delivery in time")
        .expect("subscription open")
}

fn consumer(queue: QueueSpec, prefetch: u16) -> ConsumerSettings {
    ConsumerSettings {
        queue,
        prefetch,
        tag: String::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirmed_round_trip_keeps_order_and_persistence() {
    let name = rabbit::unique("rt");
    let broker = rabbit::broker(&name).unwrap();
    let publisher = Arc::new(Publisher::new(broker.clone()));
    let stop = CancellationToken::new();
    let mut sub = subscribe(
        broker.clone(),
        publisher.clone(),
        consumer(QueueSpec::quorum(&name), 10),
        stop.clone(),
    )
    .await
    .unwrap();
    for i in 0..20 {
        let msg = Outgoing::new("", &name, format!("event {i}").into_bytes())
            .message_id(&format!("id-{i}"))
            .header("x-test", "yes");
        publisher.publish(&msg).await.unwrap();
    }
    for i in 0..20 {
        let d = next(&mut sub).await;
        assert_eq!(d.body, format!("event {i}").into_bytes());
        assert_eq!(d.message_id(), Some(format!("id-{i}").as_str()));
        assert_eq!(d.header("x-test").as_deref(), Some("yes"));
        assert_eq!(*d.properties.delivery_mode(), Some(2), "persistent");
        assert_eq!(d.delivery_count(), 0);
        d.ack().await.unwrap();
    }
    stop.cancel();
    rabbit::cleanup(&[name], &[]).await;
    broker.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unroutable_publish_is_a_permanent_error() {
    let name = rabbit::unique("unroutable");
    let broker = rabbit::broker(&name).unwrap();
    broker
        .add_topology(&Topology {
            exchanges: vec![ExchangeSpec {
                name: name.clone(),
                kind: ExchangeType::Topic,
                declare: true,
            }],
            ..Topology::default()
        })
        .await
        .unwrap();
    let publisher = Publisher::new(broker.clone());
    // No queue of that name on the default exchange.
    let err = publisher
        .publish(&Outgoing::new(
            "",
            &format!("{name}-nowhere"),
            b"x".to_vec(),
        ))
        .await
        .expect_err("unroutable");
    assert!(matches!(err, AmqpError::Unroutable { .. }), "{err}");
    assert!(!err.is_transient());
    // An exchange with nothing bound.
    let err = publisher
        .publish(&Outgoing::new(&name, "a.b", b"x".to_vec()))
        .await
        .expect_err("unroutable");
    assert_eq!(err.code(), "unroutable");
    // A missing exchange is refused by the broker (channel closed), and
    // the publisher reopens its channel for the next message.
    let err = publisher
        .publish(&Outgoing::new(
            &format!("{name}-missing"),
            "a",
            b"x".to_vec(),
        ))
        .await
        .expect_err("no exchange");
    assert!(!err.is_transient(), "{err}");
    let queue = rabbit::unique("unroutable-q");
    broker
        .add_topology(&Topology {
            queues: vec![QueueSpec::quorum(&queue)],
            ..Topology::default()
        })
        .await
        .unwrap();
    publisher
        .publish(&Outgoing::new("", &queue, b"fine".to_vec()))
        .await
        .unwrap();
    rabbit::cleanup(&[queue], &[name]).await;
    broker.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_messages_are_dead_lettered_with_their_reason() {
    let name = rabbit::unique("poison");
    let dlx = format!("{name}.dlx");
    let dead = format!("{name}.dead");
    let broker = rabbit::broker(&name).unwrap();
    broker
        .add_topology(&Topology {
            exchanges: vec![ExchangeSpec {
                name: dlx.clone(),
                kind: ExchangeType::Fanout,
                declare: true,
            }],
            queues: vec![QueueSpec::quorum(&dead)],
            bindings: vec![BindingSpec {
                queue: dead.clone(),
                exchange: dlx.clone(),
                routing_key: String::new(),
            }],
        })
        .await
        .unwrap();
    let publisher = Arc::new(Publisher::new(broker.clone()));
    let stop = CancellationToken::new();
    let queue = QueueSpec {
        delivery_limit: Some(3),
        dead_letter_exchange: Some(dlx.clone()),
        ..QueueSpec::quorum(&name)
    };
    let mut sub = subscribe(
        broker.clone(),
        publisher.clone(),
        consumer(queue, 4),
        stop.clone(),
    )
    .await
    .unwrap();
    let mut dead_sub = subscribe(
        broker.clone(),
        publisher.clone(),
        consumer(QueueSpec::quorum(&dead), 4),
        stop.clone(),
    )
    .await
    .unwrap();

    // Unparseable: dead-lettered at once with the reason.
    publisher
        .publish(&Outgoing::new("", &name, b"not a log".to_vec()).message_id("bad-1"))
        .await
        .unwrap();
    next(&mut sub)
        .await
        .dead_letter("unparseable: no format recognised")
        .await
        .unwrap();
    let d = next(&mut dead_sub).await;
    assert_eq!(d.body, b"not a log");
    assert_eq!(
        d.header(REASON_HEADER).as_deref(),
        Some("unparseable: no format recognised")
    );
    assert_eq!(d.header(QUEUE_HEADER).as_deref(), Some(name.as_str()));
    assert_eq!(d.message_id(), Some("bad-1"));
    d.ack().await.unwrap();

    // Keeps failing: requeued until the delivery limit, then dead-lettered
    // with the last error.
    publisher
        .publish(&Outgoing::new("", &name, b"flaky".to_vec()))
        .await
        .unwrap();
    let mut settled = Vec::new();
    for _ in 0..3 {
        let d = next(&mut sub).await;
        settled.push(d.retry("store unavailable").await.unwrap());
    }
    assert_eq!(
        settled,
        vec![Settled::Requeued, Settled::Requeued, Settled::DeadLettered]
    );
    let d = next(&mut dead_sub).await;
    assert_eq!(d.body, b"flaky");
    let reason = d.header(REASON_HEADER).unwrap_or_default();
    assert!(reason.contains("delivery limit 3"), "{reason}");
    assert!(reason.contains("store unavailable"), "{reason}");
    d.ack().await.unwrap();
    stop.cancel();
    rabbit::cleanup(&[name, dead], &[dlx]).await;
    broker.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_closed_by_the_broker_is_reestablished() {
    let name = rabbit::unique("reconnect");
    let broker = rabbit::broker(&name).unwrap();
    let publisher = Arc::new(Publisher::new(broker.clone()));
    let stop = CancellationToken::new();
    let mut sub = subscribe(
        broker.clone(),
        publisher.clone(),
        consumer(QueueSpec::quorum(&name), 8),
        stop.clone(),
    )
    .await
    .unwrap();
    publisher
        .publish(&Outgoing::new("", &name, b"before".to_vec()))
        .await
        .unwrap();
    let d = next(&mut sub).await;
    assert_eq!(d.body, b"before");
    // Held unacked across the close: the broker must hand it out again.
    let closed = rabbit::close_connections_named(&name).await.unwrap();
    assert!(closed >= 1, "the test's connection was found");
    let _ = d.ack().await;
    publisher
        .publish_retrying(&Outgoing::new("", &name, b"after".to_vec()), &stop)
        .await
        .unwrap();
    let mut seen = Vec::new();
    while !seen.contains(&b"after".to_vec()) {
        let d = next(&mut sub).await;
        seen.push(d.body.clone());
        d.ack().await.unwrap();
    }
    assert!(
        seen.contains(&b"before".to_vec()),
        "the unacked message came back"
    );
    assert!(broker.connects() >= 2, "reconnected");
    stop.cancel();
    rabbit::cleanup(&[name], &[]).await;
    broker.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefetch_bounds_what_is_in_flight() {
    let name = rabbit::unique("prefetch");
    let broker = rabbit::broker(&name).unwrap();
    let publisher = Arc::new(Publisher::new(broker.clone()));
    let stop = CancellationToken::new();
    let mut sub = subscribe(
        broker.clone(),
        publisher.clone(),
        consumer(QueueSpec::quorum(&name), 5),
        stop.clone(),
    )
    .await
    .unwrap();
    for i in 0..20 {
        publisher
            .publish(&Outgoing::new("", &name, vec![i]))
            .await
            .unwrap();
    }
    let mut held = Vec::new();
    for _ in 0..5 {
        held.push(next(&mut sub).await);
    }
    // Nothing more while five are unacknowledged.
    let more = tokio::time::timeout(Duration::from_millis(500), sub.deliveries.recv()).await;
    assert!(more.is_err(), "a sixth delivery arrived beyond prefetch 5");
    held.remove(0).ack().await.unwrap();
    let sixth = next(&mut sub).await;
    assert_eq!(sixth.body, vec![5]);
    sixth.ack().await.unwrap();
    for d in held {
        d.ack().await.unwrap();
    }
    stop.cancel();
    rabbit::cleanup(&[name], &[]).await;
    broker.close().await;
}
