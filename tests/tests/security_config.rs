//! Issue 12, items 10, 11 and 12a: a config `serve` would refuse is refused
//! by `check-config` too, with the same key named (one validation path);
//! a missing playbook directory refuses the start instead of a ready
//! service that runs nothing; a refused config's error never shows an
//! inline secret; two tokens may not share a name.
//!
//! `check-config` runs in-process through the function the command runs
//! (`check_config::check`), `serve` through `serve::start` on the config
//! file loaded as `riposte serve --config` loads it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use riposte_engine::auth::hash_token;
use riposte_engine::cli::check_config;
use riposte_engine::config::Config;
use riposte_engine::intake::queues::Role;
use riposte_engine::serve;
use tokio_util::sync::CancellationToken;

const PLAYBOOK: &str =
    "// name: ok\n// trigger: threat.type = spyware\n// mode: dry-run\nlog(\"info\", \"seen\");\n";

/// A directory holding a good base config's playbooks, data and the
/// files the cases point at.
struct Lab {
    dir: tempfile::TempDir,
}

impl Lab {
    fn new() -> Lab {
        let dir = tempfile::tempdir().expect("tempdir");
        let pb = dir.path().join("playbooks");
        std::fs::create_dir_all(&pb).expect("playbooks");
        std::fs::write(pb.join("ok.rhai"), PLAYBOOK).expect("playbook");
        std::fs::write(dir.path().join("garbage.pem"), "not a PEM file at all\n").expect("pem");
        std::fs::write(dir.path().join("inventory-bad.json"), "[{\"namespace\": ").expect("inv");
        std::fs::write(dir.path().join("inventory.json"), "[]").expect("inv");
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).expect("cert");
        std::fs::write(dir.path().join("cert.pem"), cert.cert.pem()).expect("cert");
        std::fs::write(dir.path().join("key.pem"), cert.key_pair.serialize_pem()).expect("key");
        Lab { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The base config (loopback, port 0, no cluster) with `extra`, where
    /// `{dir}` stands for the lab directory. Lines of `extra` before its
    /// first table header go into the base's `[http]` table.
    fn write(&self, name: &str, extra: &str) -> PathBuf {
        let d = self.dir.path().display().to_string();
        let extra = extra.replace("{dir}", &d);
        let split = extra.find('[').unwrap_or(extra.len());
        let (http, tables) = extra.split_at(split);
        let mut text = format!(
            "data_dir = '{d}/data'\n\
             [syslog.udp]\nlisten = ['127.0.0.1:0']\n\
             [syslog.tcp]\nlisten = ['127.0.0.1:0']\n\
             [kubernetes]\nmode = 'off'\n\
             [http]\nlisten = '127.0.0.1:0'\n{http}"
        );
        if !tables.contains("[playbooks]") {
            text.push_str(&format!(
                "[playbooks]\ndir = '{d}/playbooks'\nwatch = false\n"
            ));
        }
        text.push_str(tables);
        let path = self.path(name);
        std::fs::write(&path, text).expect("config");
        path
    }
}

/// Both commands' verdicts on a config file: `check-config`'s and the
/// in-process start's (a file that does not load fails the start as
/// `riposte serve --config` does).
async fn verdicts(path: &Path) -> (Result<String, String>, Result<(), String>) {
    let checked = check_config::check(path, Role::All).await;
    let started = match Config::load(path) {
        Err(e) => Err(e.to_string()),
        Ok(config) => match serve::start(config, CancellationToken::new()).await {
            Ok(running) => {
                running.shutdown();
                running.wait().await;
                Ok(())
            }
            Err(e) => Err(e.to_string()),
        },
    };
    (checked, started)
}

/// (case, config text after the base, the key both refusals must name)
fn bad_configs() -> Vec<(&'static str, &'static str, &'static str)> {
    vec![
        (
            "missing playbook directory",
            "[playbooks]\ndir = '{dir}/no-such-dir'\n",
            "playbooks.dir",
        ),
        (
            "garbage syslog TLS certificate",
            "[syslog.tls]\nlisten = ['127.0.0.1:0']\ncert_file = '{dir}/garbage.pem'\nkey_file = '{dir}/key.pem'\n",
            "syslog.tls.cert_file",
        ),
        (
            "garbage syslog TLS key",
            "[syslog.tls]\nlisten = ['127.0.0.1:0']\ncert_file = '{dir}/cert.pem'\nkey_file = '{dir}/garbage.pem'\n",
            "syslog.tls.key_file",
        ),
        (
            "garbage syslog TLS client CA",
            "[syslog.tls]\nlisten = ['127.0.0.1:0']\ncert_file = '{dir}/cert.pem'\nkey_file = '{dir}/key.pem'\nclient_ca_file = '{dir}/garbage.pem'\n",
            "syslog.tls.client_ca_file",
        ),
        (
            "garbage HTTP TLS key",
            "tls_cert_file = '{dir}/cert.pem'\ntls_key_file = '{dir}/garbage.pem'\n",
            "http.tls_key_file",
        ),
        (
            "garbage HTTP client CA",
            "tls_cert_file = '{dir}/cert.pem'\ntls_key_file = '{dir}/key.pem'\ntls_client_ca_file = '{dir}/garbage.pem'\n",
            "http.tls_client_ca_file",
        ),
        (
            "notification target on the metadata address",
            "[[notify.targets]]\nname = 'soar'\nurl = 'http://169.254.169.254/latest/meta-data'\n",
            "notify.targets[0]",
        ),
        (
            "notification target on loopback",
            "[[notify.targets]]\nname = 'soar'\nurl = 'http://127.0.0.1:9/hook'\n",
            "notify.targets[0]",
        ),
        (
            "notification target on file:",
            "[[notify.targets]]\nname = 'soar'\nurl = 'file:///etc/passwd'\n",
            "notify.targets[0]",
        ),
        (
            "notification target URL with user:password",
            "[[notify.targets]]\nname = 'soar'\nurl = 'https://riposte:url-password-1@soar.example.com/hook'\n",
            "notify.targets[0]",
        ),
        (
            "notification password from a missing file",
            "[[notify.targets]]\nname = 'soar'\nurl = 'https://soar.example.com/hook'\nauth = { kind = 'basic', username = 'u', password = { file = '{dir}/no-such-secret' } }\n",
            "notify.targets[0]",
        ),
        (
            "webhook secret from an unset variable",
            "[[api.webhooks]]\nname = 'soar'\nverify = 'standard'\nsecrets = [{ env = 'RIPOSTE_TEST_SURELY_UNSET_WEBHOOK_SECRET' }]\n",
            "api.webhooks",
        ),
        (
            "approval secret from an unset variable",
            "[api]\napproval_secret = { env = 'RIPOSTE_TEST_SURELY_UNSET_APPROVAL_SECRET' }\n",
            "api.approval_secret",
        ),
        (
            "approval secret from a missing file",
            "[api]\napproval_secret = { file = '{dir}/no-such-secret' }\n",
            "api.approval_secret",
        ),
        (
            "damaged approval key kept in the data directory",
            "[api]\npublic_url = 'https://riposte.example'\n#DAMAGED_KEY\n",
            "api.approval_secret",
        ),
        (
            "unparseable pod inventory",
            "[pods]\ninventory_file = '{dir}/inventory-bad.json'\n",
            "pods.inventory_file",
        ),
        (
            "PAN-OS key file missing",
            "[[firewall.targets]]\nname = 'fw'\nurl = 'https://192.0.2.10'\nkey_file = '{dir}/no-such-key'\n",
            "firewall.targets",
        ),
        (
            "PAN-OS CA file garbage",
            "[[firewall.targets]]\nname = 'fw'\nurl = 'https://192.0.2.10'\nkey = 'k'\nca_file = '{dir}/garbage.pem'\n",
            "firewall.targets",
        ),
        (
            "leader on PostgreSQL without a PostgreSQL store",
            "[leader]\nbackend = 'postgres'\n",
            "leader",
        ),
        (
            "PostgreSQL password file missing",
            "[store]\nurl = 'postgres://riposte@127.0.0.1:5432/riposte'\npassword_file = '{dir}/no-such-password'\n",
            "store",
        ),
        (
            "two tokens with one name",
            "[[api.tokens]]\nname = 'soc'\nsha256 = 'SHA_A'\nscopes = ['read']\n[[api.tokens]]\nname = 'soc'\nsha256 = 'SHA_B'\nscopes = ['act']\n",
            "api.tokens[1]",
        ),
        (
            "two webhooks with one name",
            "[[api.webhooks]]\nname = 'soar'\nverify = 'github'\nsecrets = [{ value = 'a' }]\n[[api.webhooks]]\nname = 'soar'\nverify = 'github'\nsecrets = [{ value = 'b' }]\n",
            "api.webhooks[1]",
        ),
        (
            "two notification targets with one name",
            "[[notify.targets]]\nname = 'soar'\nurl = 'https://a.example.com/'\n[[notify.targets]]\nname = 'soar'\nurl = 'https://b.example.com/'\n",
            "notify.targets[1]",
        ),
        (
            "two EDL lists with one name",
            "[[firewall.edl]]\nname = 'c2'\nkind = 'ip'\n[[firewall.edl]]\nname = 'c2'\nkind = 'domain'\n",
            "c2",
        ),
    ]
}

#[tokio::test]
async fn check_config_and_serve_refuse_the_same_configs_naming_the_key() {
    let lab = Lab::new();
    let mut disagreements = Vec::new();
    for (i, (case, extra, key)) in bad_configs().into_iter().enumerate() {
        let extra = extra
            .replace("SHA_A", &hash_token("token-a"))
            .replace("SHA_B", &hash_token("token-b"));
        let path = lab.write(&format!("case{i}.toml"), &extra);
        if extra.contains("#DAMAGED_KEY") {
            std::fs::create_dir_all(lab.path("data")).expect("data dir");
            std::fs::write(lab.path("data/approval-secret"), "not hex").expect("key");
        } else {
            let _ = std::fs::remove_file(lab.path("data/approval-secret"));
        }
        let (checked, started) = verdicts(&path).await;
        let checked_names_key = matches!(&checked, Err(m) if m.contains(key));
        let start_names_key = matches!(&started, Err(m) if m.contains(key));
        if !checked_names_key || !start_names_key {
            disagreements.push(format!(
                "{case}: check-config {checked:?}, serve {started:?} (expected both to name `{key}`)"
            ));
        }
    }
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
}

#[tokio::test]
async fn a_good_config_passes_check_config_and_starts_ready() {
    let lab = Lab::new();
    std::fs::write(lab.path("webhook-secret"), "webhook secret\n").expect("secret");
    let path = lab.write(
        "good.toml",
        "[syslog.tls]\nlisten = ['127.0.0.1:0']\ncert_file = '{dir}/cert.pem'\nkey_file = '{dir}/key.pem'\n\
         [pods]\ninventory_file = '{dir}/inventory.json'\n\
         [api]\napproval_secret = { value = 'approval secret' }\n\
         [[api.webhooks]]\nname = 'soar'\nverify = 'standard'\nsecrets = [{ file = '{dir}/webhook-secret' }]\n\
         [[notify.targets]]\nname = 'soar'\nurl = 'https://soar.example.com/hook'\n",
    );
    let checked = check_config::check(&path, Role::All).await;
    assert!(
        checked.as_ref().is_ok_and(|m| m.contains("1 playbook")),
        "{checked:?}"
    );
    let config = Config::load(&path).expect("loads");
    let running = serve::start(config, CancellationToken::new())
        .await
        .expect("starts");
    let ready = riposte_tests::eventually(std::time::Duration::from_secs(10), || {
        running.readiness.is_ready().then_some(())
    })
    .await;
    assert_eq!(
        running.playbooks.as_ref().map(|p| p.playbooks().len()),
        Some(1)
    );
    running.shutdown();
    running.wait().await;
    ready.expect("ready");
}

#[tokio::test]
async fn a_missing_playbook_directory_refuses_the_start_with_its_path() {
    let lab = Lab::new();
    let path = lab.write("nodir.toml", "[playbooks]\ndir = '{dir}/playbookz'\n");
    let (checked, started) = verdicts(&path).await;
    for verdict in [checked.map(drop), started] {
        let message = verdict.expect_err("refused");
        assert!(
            message.contains("playbooks.dir") && message.contains("playbookz"),
            "{message}"
        );
    }
}

/// Inline secrets in wrong shapes: the refusal names the place, never the
/// secret, in `check-config`'s output and in the error `serve` stops with.
#[tokio::test]
async fn a_refused_config_never_shows_an_inline_secret() {
    let lab = Lab::new();
    let cases = [
        // A string where `{ value = … }` belongs: "unknown variant `<secret>`".
        "[api]\napproval_secret = 'S3CRET-approval-1'\n",
        // A misspelt variant beside the secret, on the same line.
        "[api]\napproval_secret = { valeu = 'S3CRET-approval-2' }\n",
        // The wrong type for a secret.
        "[api]\napproval_secret = { value = 4242424242 }\n",
        // An unknown key next to a webhook secret.
        "[[api.webhooks]]\nname = 's'\nverify = 'standard'\nsecrets = [{ value = 'S3CRET-webhook' }]\nbogus = 1\n",
        "[[api.webhooks]]\nname = 's'\nverify = 'standard'\nsecrets = [{ value = 'S3CRET-webhook-3', bogus = 1 }]\n",
        // Two variants at once in a webhook secret.
        "[[api.webhooks]]\nname = 's'\nverify = 'standard'\nsecrets = [{ value = 'S3CRET-webhook-2', env = 'X' }]\n",
        // A notification password next to an unknown auth key.
        "[[notify.targets]]\nname = 's'\nurl = 'https://soar.example.com'\nauth = { kind = 'basic', username = 'u', password = 'S3CRET-basic', realm = 'x' }\n",
        // A header value of the wrong kind.
        "[[notify.targets]]\nname = 's'\nurl = 'https://soar.example.com'\nauth = { kind = 'headr', name = 'X-Key', value = 'S3CRET-header' }\n",
        // A PAN-OS key next to a misspelt key.
        "[[firewall.targets]]\nname = 'fw'\nurl = 'https://192.0.2.1'\nkey = 'S3CRET-panos'\ntimout_secs = 3\n",
        // A store URL password where the scheme is wrong.
        "[store]\nurl = 'mysql://riposte:S3CRET-store@db/riposte'\n",
        // An AMQP URL password next to an unknown key.
        "[amqp]\nurl = 'amqp://riposte:S3CRET-amqp@broker:5672/%2f'\nbogus = true\n",
        // A syntax error on the secret's own line.
        "[api]\napproval_secret = { value = 'S3CRET-syntax }\n",
        // A multi-line secret of the wrong type.
        "[api]\napproval_secret = { value = 4242 }\n[[api.webhooks]]\nname = 's'\nverify = 'standard'\nsecrets = [\n  { value = '''S3CRET-multi\nline''' },\n  1,\n]\n",
    ];
    let mut leaks = Vec::new();
    for (i, extra) in cases.iter().enumerate() {
        let path = lab.write(&format!("secret{i}.toml"), extra);
        let (checked, started) = verdicts(&path).await;
        for (who, verdict) in [("check-config", checked.map(drop)), ("serve", started)] {
            match verdict {
                Ok(()) => leaks.push(format!("case {i}: {who} accepted it")),
                Err(m) if m.contains("S3CRET") || m.contains("4242") => {
                    leaks.push(format!("case {i}: {who}: {m}"))
                }
                Err(_) => {}
            }
        }
    }
    assert!(leaks.is_empty(), "{}", leaks.join("\n---\n"));
}

#[tokio::test]
async fn duplicate_token_hashes_are_refused_too() {
    let lab = Lab::new();
    let sha = hash_token("shared");
    let path = lab.write(
        "twins.toml",
        &format!(
            "[[api.tokens]]\nname = 'a'\nsha256 = '{sha}'\nscopes = ['read']\n\
             [[api.tokens]]\nname = 'b'\nsha256 = '{sha}'\nscopes = ['admin']\n"
        ),
    );
    let (checked, started) = verdicts(&path).await;
    for verdict in [checked.map(drop), started] {
        let m = verdict.expect_err("refused");
        assert!(m.contains("api.tokens[1]"), "{m}");
    }
}
