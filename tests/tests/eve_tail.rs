//! End to end: following Suricata's EVE file across appends, partial lines,
//! rotation, truncation and restarts, without losing or repeating records.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use riposte_engine::config::{EveConfig, StartAt};
use riposte_tests::service::{self, Service};

const WAIT: Duration = Duration::from_secs(10);

fn alert(n: u32) -> String {
    format!(
        r#"{{"timestamp":"2026-11-27T10:15:{:02}.123456+0000","flow_id":{},"in_iface":"eth0","event_type":"alert","src_ip":"10.244.1.17","src_port":51514,"dest_ip":"203.0.113.66","dest_port":443,"proto":"TCP","alert":{{"action":"blocked","gid":1,"signature_id":2030000,"rev":1,"signature":"ET MALWARE Cobalt Strike Beacon Observed","category":"A Network Trojan was detected","severity":1}}}}"#,
        n % 60,
        1000 + n
    )
}

fn append(path: &Path, lines: &[String]) -> anyhow::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    for l in lines {
        writeln!(f, "{l}")?;
    }
    Ok(())
}

async fn alerts_reach(svc: &Service, want: f64) -> anyhow::Result<()> {
    let got = riposte_tests::eventually(WAIT, || {
        let n = svc.metric(
            "riposte_events_parsed_total",
            &[("source", "eve_file"), ("dataset", "suricata.alert")],
        );
        (n >= want).then_some(n)
    })
    .await
    .map_err(|_| {
        anyhow::anyhow!(
            "wanted {want} alerts; metrics:\n{}",
            svc.running.metrics_text()
        )
    })?;
    // Give a duplicate the chance to show up before asserting there is none.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let settled = svc.metric(
        "riposte_events_parsed_total",
        &[("source", "eve_file"), ("dataset", "suricata.alert")],
    );
    assert_eq!(settled, want, "no record read twice (first saw {got})");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eve_file_is_followed_across_rotation_truncation_and_restart() -> anyhow::Result<()> {
    let logs = tempfile::tempdir()?;
    let eve = logs.path().join("eve.json");
    append(&eve, &[alert(1), alert(2), alert(3)])?;
    let eve_path = eve.clone();
    let svc = service::start_with(move |c, _| {
        c.eve = vec![EveConfig {
            path: eve_path,
            poll_interval_ms: 20,
            start_at: StartAt::Beginning,
        }];
    })
    .await?;
    alerts_reach(&svc, 3.0).await?;

    // Appends, and a line written in two halves, count once each.
    append(&eve, &[alert(4)])?;
    let half = alert(5);
    let (a, b) = half.split_at(half.len() / 2);
    {
        let mut f = std::fs::OpenOptions::new().append(true).open(&eve)?;
        f.write_all(a.as_bytes())?;
        f.flush()?;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    {
        let mut f = std::fs::OpenOptions::new().append(true).open(&eve)?;
        writeln!(f, "{b}")?;
    }
    alerts_reach(&svc, 5.0).await?;

    // Non-alert records are recognized and ignored, not failures.
    append(&eve, &[r#"{"timestamp":"2026-11-27T10:15:30.000000+0000","event_type":"flow","src_ip":"10.0.0.1","dest_ip":"10.0.0.2","proto":"TCP"}"#.to_string()])?;

    // Rotation: the file is renamed away and a new one appears.
    std::fs::rename(&eve, logs.path().join("eve.json.1"))?;
    append(&eve, &[alert(6), alert(7)])?;
    alerts_reach(&svc, 7.0).await?;

    // Truncation in place (copytruncate).
    std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&eve)?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    append(&eve, &[alert(8)])?;
    alerts_reach(&svc, 8.0).await?;
    assert!(svc.metric("riposte_records_ignored_total", &[("source", "eve_file")]) >= 1.0);

    // A restart resumes at the remembered position: what was written while
    // Riposte was down is read, nothing before it again.
    let restarted = {
        let svc = svc;
        let config = svc.config.clone();
        svc.running.shutdown();
        let Service { running, dir, .. } = svc;
        running.wait().await;
        append(&eve, &[alert(9), alert(10)])?;
        let running = riposte_engine::serve::start(
            config.clone(),
            tokio_util::sync::CancellationToken::new(),
        )
        .await?;
        Service {
            running,
            dir,
            config,
        }
    };
    alerts_reach(&restarted, 2.0).await?;
    restarted.stop().await;
    Ok(())
}
