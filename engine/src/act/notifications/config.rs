//! The `[notify]` section: notification targets and the outbox worker.

use serde::Deserialize;

use riposte_connectors::soar::TargetConfig;

/// ```toml
/// [notify]
/// public_url = "https://riposte.example"
///
/// [[notify.targets]]
/// name = "soar"
/// format = "xsoar"
/// url = "https://xsoar.example/instance/execute/riposte"
/// auth = { kind = "basic", username = "riposte", password = { env = "XSOAR_PASSWORD" } }
/// signing_secrets = [{ file = "/run/secrets/riposte-webhook" }]
/// on = ["notify", "refused", "failed"]
/// ```
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct NotifyConfig {
    /// The targets playbooks may name in `notify("<name>", …)`. Each key is
    /// documented on [`TargetConfig`] and in the README.
    pub targets: Vec<TargetConfig>,
    /// Riposte's own external URL; when set, notifications carry a link to
    /// the decision in the API (`/v1/decisions?event_id=…`).
    pub public_url: Option<String>,
    /// Items the worker claims from the outbox at once, per target
    /// (default 256).
    pub batch: usize,
    /// How often the worker looks for retries that came due, in
    /// milliseconds (default 250). New notifications wake it at once.
    pub poll_interval_ms: u64,
    /// How long the notification that opens an incident waits before it
    /// is sent, in milliseconds (default 200), so that another playbook's
    /// notification of the same event to the same target joins it: one
    /// notification naming both. 0 sends at once (the other playbook is
    /// then named in the first update).
    pub event_merge_ms: u64,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            targets: Vec::new(),
            public_url: None,
            batch: 256,
            poll_interval_ms: 250,
            event_merge_ms: 200,
        }
    }
}

impl NotifyConfig {
    /// Checks each target and the worker settings; the error names the key.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let mut names = std::collections::HashSet::new();
        for (i, t) in self.targets.iter().enumerate() {
            let key = format!("notify.targets[{i}]");
            t.validate().map_err(|m| (key.clone(), m))?;
            if !names.insert(t.name.as_str()) {
                return Err((key, format!("a second target named `{}`", t.name)));
            }
        }
        if self.batch == 0 || self.batch > 10_000 {
            return Err(("notify.batch".into(), "must be 1 to 10000".into()));
        }
        if self.poll_interval_ms == 0 || self.poll_interval_ms > 60_000 {
            return Err((
                "notify.poll_interval_ms".into(),
                "must be 1 to 60000".into(),
            ));
        }
        if self.event_merge_ms > 10_000 {
            return Err(("notify.event_merge_ms".into(), "must be 0 to 10000".into()));
        }
        if let Some(url) = &self.public_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err((
                    "notify.public_url".into(),
                    "must start with http:// or https://".into(),
                ));
            }
            if crate::config::redact::has_userinfo(url) {
                return Err((
                    "notify.public_url".into(),
                    "must not hold user:password (it is sent in every notification)".into(),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_targets_and_refuses_unknown_keys_and_twins() {
        let c: NotifyConfig = toml::from_str(
            r#"
            [[targets]]
            name = "soar"
            url = "https://xsoar.example/instance/execute/riposte"
            format = "xsoar"
            auth = { kind = "basic", username = "u", password = { env = "P" } }
            on = ["notify", "failed"]
            "#,
        )
        .expect("parse");
        assert_eq!(c.targets.len(), 1);
        assert_eq!(c.validate(), Ok(()));
        let err =
            toml::from_str::<NotifyConfig>("[[targets]]\nname='a'\nurl='https://x'\nbogus=1\n")
                .expect_err("unknown key");
        assert!(err.to_string().contains("bogus"), "{err}");
        let mut twins = c.clone();
        twins.targets.push(c.targets[0].clone());
        assert!(twins.validate().is_err());
    }
}
