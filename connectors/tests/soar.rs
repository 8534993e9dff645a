//! The SOAR connector against the receiver stand-in: what one attempt
//! sends (signature, auth, body) and what each kind of answer comes to.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use riposte_connectors::soar::{
    Auth, EventInfo, Format, Notification, NotificationKind, Outcome, SecretSource, Severity,
    SoarTarget, TargetConfig,
};
use riposte_standins::soar_receiver::{Behaviour, DuplicateStyle, SoarReceiver};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const OTHER: &str = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYX";

fn notification(id: &str) -> Notification {
    let mut n = Notification {
        id: id.into(),
        kind: NotificationKind::Notify,
        title: "C2 traffic to 203.0.113.9".into(),
        severity: Severity::Critical,
        occurred: chrono::Utc::now(),
        event: EventInfo {
            id: "ev-1".into(),
            source_ip: Some("10.244.1.17".parse().unwrap()),
            destination_ip: Some("203.0.113.9".parse().unwrap()),
            ..EventInfo::default()
        },
        pod: None,
        playbook: Some("c2-quarantine".into()),
        actions: vec![],
        fields: serde_json::Map::new(),
        indicators: vec![],
        links: vec![],
        approvals: vec![],
        coalesced: None,
    };
    n.collect_indicators();
    n
}

fn target(rx: &SoarReceiver, format: Format) -> TargetConfig {
    let mut t = TargetConfig::new("soar", rx.url("/hook"), format);
    t.allow_private = true;
    t.timeout_secs = 1;
    t
}

#[tokio::test]
async fn a_signed_delivery_verifies_with_any_rotated_secret() {
    let rx = SoarReceiver::builder().secret(OTHER).start().await.unwrap();
    let mut t = target(&rx, Format::Webhook);
    t.signing_secrets = vec![
        SecretSource::Inline(SECRET.into()),
        SecretSource::Inline(OTHER.into()),
    ];
    let target = SoarTarget::build(&t).unwrap();
    let o = target.attempt(&notification("n-1")).await;
    assert_eq!(o, Outcome::Delivered { status: 200 });
    let d = rx.deliveries();
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].id, "n-1");
    assert_eq!(d[0].body["type"], "riposte.notify");
    assert_eq!(d[0].body["data"]["id"], "n-1");
    assert_eq!(d[0].headers["webhook-signature"].split(' ').count(), 2);
    assert!((d[0].timestamp - chrono::Utc::now().timestamp()).abs() < 5);
}

#[tokio::test]
async fn a_wrong_secret_or_credential_is_rejected_for_good() {
    let rx = SoarReceiver::builder()
        .secret(SECRET)
        .auth("authorization", "Bearer t0ken")
        .start()
        .await
        .unwrap();
    let mut t = target(&rx, Format::Webhook);
    t.signing_secrets = vec![SecretSource::Inline(OTHER.into())];
    t.auth = Auth::Bearer {
        token: SecretSource::Inline("t0ken".into()),
    };
    let o = SoarTarget::build(&t)
        .unwrap()
        .attempt(&notification("n-1"))
        .await;
    assert!(matches!(o, Outcome::Rejected { status: 401, .. }), "{o:?}");
    assert_eq!(rx.bad_signatures(), 1);

    t.signing_secrets = vec![SecretSource::Inline(SECRET.into())];
    t.auth = Auth::Bearer {
        token: SecretSource::Inline("wrong".into()),
    };
    let o = SoarTarget::build(&t)
        .unwrap()
        .attempt(&notification("n-1"))
        .await;
    assert!(matches!(o, Outcome::Rejected { status: 401, .. }), "{o:?}");
    assert_eq!(rx.unauthorized(), 1);
    assert!(rx.deliveries().is_empty());
}

#[tokio::test]
async fn every_auth_kind_reaches_the_receiver() {
    let cases = [
        (
            Auth::Basic {
                username: "riposte".into(),
                password: SecretSource::Inline("pw".into()),
            },
            ("authorization", "Basic cmlwb3N0ZTpwdw=="),
        ),
        (
            Auth::Header {
                name: "X-Api-Key".into(),
                value: SecretSource::Inline("k".into()),
            },
            ("x-api-key", "k"),
        ),
        (
            Auth::PhAuthToken {
                token: SecretSource::Inline("ph".into()),
            },
            ("ph-auth-token", "ph"),
        ),
    ];
    for (auth, (name, value)) in cases {
        let rx = SoarReceiver::builder()
            .auth(name, value)
            .start()
            .await
            .unwrap();
        let mut t = target(&rx, Format::Xsoar);
        t.auth = auth;
        let o = SoarTarget::build(&t)
            .unwrap()
            .attempt(&notification("n-1"))
            .await;
        assert!(o.is_delivered(), "{name}: {o:?}");
        assert_eq!(rx.deliveries()[0].body["name"], "C2 traffic to 203.0.113.9");
    }
}

#[tokio::test]
async fn failures_are_classified() {
    let rx = SoarReceiver::start().await.unwrap();
    let target = SoarTarget::build(&target(&rx, Format::Webhook)).unwrap();
    let n = notification("n-1");
    rx.script([
        Behaviour::Status(500),
        Behaviour::Status(501),
        Behaviour::RetryAfter(429, "3".into()),
        Behaviour::RetryAfter(503, "Thu, 01 Jan 2099 00:00:00 GMT".into()),
        Behaviour::Status(404),
        Behaviour::Garbage,
    ]);
    assert!(matches!(
        target.attempt(&n).await,
        Outcome::Retry {
            status: Some(500),
            ..
        }
    ));
    assert!(matches!(
        target.attempt(&n).await,
        Outcome::Rejected { status: 501, .. }
    ));
    match target.attempt(&n).await {
        Outcome::Retry {
            after,
            status: Some(429),
            ..
        } => assert_eq!(after, Some(Duration::from_secs(3))),
        other => panic!("{other:?}"),
    }
    match target.attempt(&n).await {
        // An HTTP-date far away is capped at retry_max_secs (600 by default).
        Outcome::Retry {
            after,
            status: Some(503),
            ..
        } => assert_eq!(after, Some(Duration::from_secs(600))),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        target.attempt(&n).await,
        Outcome::Rejected { status: 404, .. }
    ));
    assert_eq!(target.attempt(&n).await, Outcome::Delivered { status: 200 });
    rx.set_gone(true);
    assert!(matches!(target.attempt(&n).await, Outcome::Disabled { .. }));
}

#[tokio::test]
async fn a_hanging_or_absent_receiver_is_a_retry() {
    let rx = SoarReceiver::start().await.unwrap();
    let target = SoarTarget::build(&target(&rx, Format::Webhook)).unwrap();
    let n = notification("n-1");
    rx.script([Behaviour::Hang]);
    let started = std::time::Instant::now();
    let o = target.attempt(&n).await;
    assert!(matches!(o, Outcome::Retry { status: None, .. }), "{o:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
    rx.down();
    let o = target.attempt(&n).await;
    assert!(matches!(o, Outcome::Retry { status: None, .. }), "{o:?}");
    rx.up().unwrap();
    assert!(target.attempt(&n).await.is_delivered());
    assert_eq!(rx.accepted_counts()["n-1"], 1);
}

#[tokio::test]
async fn soar_duplicate_answers_count_as_delivered() {
    for (format, style) in [
        (Format::SplunkSoar, DuplicateStyle::SplunkSoar),
        (Format::Thehive, DuplicateStyle::TheHive),
    ] {
        let rx = SoarReceiver::start().await.unwrap();
        rx.answer_duplicates(Some(style));
        let target = SoarTarget::build(&target(&rx, format)).unwrap();
        let n = notification("n-1");
        // The first attempt gets through but its answer is lost.
        rx.script([Behaviour::AcceptThen500]);
        assert!(matches!(target.attempt(&n).await, Outcome::Retry { .. }));
        let o = target.attempt(&n).await;
        assert!(matches!(o, Outcome::Duplicate { .. }), "{format:?}: {o:?}");
        assert_eq!(rx.accepted_counts()["n-1"], 1);
        let body = &rx.deliveries()[0].body;
        match format {
            Format::SplunkSoar => assert_eq!(body["source_data_identifier"], "n-1"),
            _ => assert_eq!(body["sourceRef"], "n-1"),
        }
    }
}
