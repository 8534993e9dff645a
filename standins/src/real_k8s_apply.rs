//! Manifests and credentials on the real cluster: server-side apply of any
//! YAML (charts, CRDs, RBAC), and ServiceAccount tokens from the
//! TokenRequest API.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, Context as _};
use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::discovery::{Discovery, Scope};
use kube::Client;
use serde_json::{json, Value};

use crate::real_k8s::RealCluster;

/// Applies every document of `yaml` with server-side apply as field manager
/// `test` (forcing conflicts: the test owns these objects). Discovery runs
/// per call, so kinds of CRDs applied by an earlier call are known.
pub async fn apply_yaml(client: &Client, yaml: &str, dry_run: bool) -> anyhow::Result<Vec<Value>> {
    let mut docs = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(yaml) {
        let value = <Value as serde::Deserialize>::deserialize(doc)?;
        if !value.is_null() {
            docs.push(value);
        }
    }
    let groups: Vec<String> = docs
        .iter()
        .filter_map(|d| d["apiVersion"].as_str())
        .map(|v| v.rsplit_once('/').map_or("", |(g, _)| g).to_owned())
        .collect();
    let groups: Vec<&str> = groups.iter().map(String::as_str).collect();
    // A CRD created a moment ago may be listed before its version serves
    // (404 on its discovery document): ask again.
    let discovery = crate::real_k8s::eventually_ok(Duration::from_secs(15), || {
        Discovery::new(client.clone()).filter(&groups).run()
    })
    .await?;
    let mut applied = Vec::new();
    for value in docs {
        let obj: DynamicObject = serde_json::from_value(value.clone())?;
        let tm = obj
            .types
            .clone()
            .ok_or_else(|| anyhow!("a document without apiVersion/kind: {value}"))?;
        let gvk = kube::api::GroupVersionKind::try_from(&tm)?;
        let (ar, caps) = discovery
            .resolve_gvk(&gvk)
            .ok_or_else(|| anyhow!("the server does not know {}/{}", tm.api_version, tm.kind))?;
        let name = obj
            .metadata
            .name
            .clone()
            .ok_or_else(|| anyhow!("{} without a name", tm.kind))?;
        let api: Api<DynamicObject> = match caps.scope {
            Scope::Namespaced => {
                let ns = obj.metadata.namespace.as_deref().unwrap_or("default");
                Api::namespaced_with(client.clone(), ns, &ar)
            }
            Scope::Cluster => Api::all_with(client.clone(), &ar),
        };
        let mut pp = PatchParams::apply("test").force();
        pp.dry_run = dry_run;
        let out = api
            .patch(&name, &pp, &Patch::Apply(&value))
            .await
            .with_context(|| format!("applying {} {name} (dry run: {dry_run})", tm.kind))?;
        applied.push(serde_json::to_value(out)?);
    }
    Ok(applied)
}

/// A ServiceAccount's kubeconfig: the admin kubeconfig with the account's
/// bearer token (valid for an hour) instead of admin's.
pub async fn service_account_kubeconfig(
    cluster: &RealCluster,
    ns: &str,
    name: &str,
    dest: &Path,
) -> anyhow::Result<PathBuf> {
    let api = Api::<ServiceAccount>::namespaced(cluster.admin().await?, ns);
    if api.get_opt(name).await?.is_none() {
        let sa: ServiceAccount = serde_json::from_value(json!({"metadata": {"name": name}}))?;
        api.create(&PostParams::default(), &sa).await?;
    }
    let req: TokenRequest = serde_json::from_value(json!({
        "spec": {"audiences": [], "expirationSeconds": 3600}
    }))?;
    let token = api
        .create_token_request(name, &PostParams::default(), &req)
        .await
        .with_context(|| format!("a token for {ns}/{name}"))?
        .status
        .ok_or_else(|| anyhow!("a TokenRequest answered without a token"))?
        .token;
    let admin_token = std::fs::read_to_string(cluster.dir().join("admin.token"))?;
    let admin = std::fs::read_to_string(cluster.admin_kubeconfig())?;
    let text = admin.replace(admin_token.trim(), &token);
    write_private(dest, &text)?;
    Ok(dest.to_path_buf())
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())?;
    Ok(())
}
