//! The PostgreSQL on loopback, for tests: a fresh database per test, so
//! tests (and their advisory locks, which are per database) never meet.

use std::time::Duration;

/// The server: `RIPOSTE_TEST_PG_URL` (without a database name), or the
/// trusted `postgres` user on 127.0.0.1:5432.
pub fn server() -> String {
    std::env::var("RIPOSTE_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

async fn psql(sql: &str) -> anyhow::Result<String> {
    let out = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::process::Command::new("psql")
            .args([
                &format!("{}/postgres", server()),
                "-v",
                "ON_ERROR_STOP=1",
                "-Atc",
                sql,
            ])
            .output(),
    )
    .await??;
    if !out.status.success() {
        anyhow::bail!("psql {sql}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A database of its own; returns its URL.
pub async fn fresh_database(prefix: &str) -> anyhow::Result<String> {
    let name = crate::rabbit::unique(prefix)
        .replace('-', "_")
        .to_lowercase();
    psql(&format!("CREATE DATABASE {name}")).await?;
    Ok(format!("{}/{name}", server()))
}

/// Drops a database made by [`fresh_database`] (best effort).
pub async fn drop_database(url: &str) {
    if let Some(name) = url.rsplit('/').next() {
        let _ = psql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
    }
}

/// Ends every server session of `url`'s database running a query that
/// contains `pattern` (as a crash or a network cut would); returns how many.
pub async fn terminate_sessions(url: &str, pattern: &str) -> anyhow::Result<usize> {
    let name = url.rsplit('/').next().unwrap_or_default();
    let out = psql(&format!(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE datname = '{name}' AND query LIKE '%{pattern}%' AND pid <> pg_backend_pid()"
    ))
    .await?;
    Ok(out.trim().parse().unwrap_or(0))
}
