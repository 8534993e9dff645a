//! A Kubernetes API server stand-in that the real `kube::Client` talks to
//! unchanged, over HTTPS with a bearer token.
//!
//! It speaks the REST protocol faithfully enough that whatever Riposte
//! does against it also works against a real API server, and it refuses
//! what a real server refuses: discovery (plain and aggregated), GET, LIST
//! (label and field selectors, paging with continue tokens, resourceVersion
//! semantics), WATCH (bookmarks, initial events, 410 Expired past the
//! retained history), POST, PUT (optimistic concurrency), PATCH (JSON
//! merge, strategic merge for built-in types only, JSON patch, server-side
//! apply with managed fields and conflicts), DELETE (finalizers, garbage
//! collection of dependents) and DELETE collection, with the API server's
//! `Status` bodies (404 NotFound, 409 AlreadyExists/Conflict, 422 Invalid,
//! …). Built-in objects are decoded as their Go types would be (wrong types
//! are 400, unknown fields dropped with a `Warning`, or 400 with
//! `fieldValidation=Strict`).
//!
//! Defaulting a real server does to what Riposte writes is done too: a
//! NetworkPolicy without `policyTypes` gets `["Ingress"]` (so a "deny all"
//! that forgets them denies no egress), ports get `TCP`, new namespaces get
//! their `kubernetes.io/metadata.name` label, pods created through the API
//! start `Pending` (status is the kubelet's, written through `/status`).
//! [`KubeApiServer::restrict_to_manifests`] limits the token to the Roles
//! and ClusterRoles of an RBAC manifest, answering 403 Forbidden outside
//! them, so tests can prove the shipped least-privilege RBAC suffices.
//!
//! Known differences from a real API server, on purpose or for now:
//! deletion is immediate unless finalizers hold it (no graceful pod
//! termination); custom resources (Cilium, Calico) have no schema, so their
//! `spec` is neither validated nor pruned and their lists are atomic;
//! strategic merge knows the merge keys of the common lists (containers,
//! env, ports, volumes, ownerReferences, conditions, podIPs, finalizers, …)
//! and replaces other lists; only JSON (and YAML request bodies) is spoken,
//! no protobuf or Table output; there are no admission webhooks or quotas.
//!
//! Served types: namespaces, pods (+ `/status`), services, nodes, core and
//! `events.k8s.io/v1` events, `networking.k8s.io/v1` networkpolicies,
//! `apps/v1` deployments, replicasets, statefulsets, daemonsets, `batch/v1`
//! jobs and cronjobs, `coordination.k8s.io/v1` leases, `cilium.io/v2`
//! ciliumnetworkpolicies and ciliumclusterwidenetworkpolicies, and
//! `crd.projectcalico.org/v1` networkpolicies and globalnetworkpolicies.
//! A new cluster has the namespaces `default`, `kube-system`,
//! `kube-public` and `kube-node-lease`.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use riposte_standins::kube_api::{Fault, KubeApiServer, PodFixture};
//! use k8s_openapi::api::core::v1::Pod;
//! use kube::api::{Api, Patch, PatchParams};
//!
//! let kube = KubeApiServer::start().await?;
//! kube.add_namespace("shop", &[("team", "payments")])?;
//! let web = kube.add_deployment("shop", "checkout", &[("app", "checkout")])?;
//! let pod = kube.add_pod(web.pod("10.244.1.17"))?;
//!
//! // The real client, pointed at the stand-in (CA trusted, token set).
//! // `client_config()` gives the `kube::Config` to adjust first, and
//! // `kubeconfig()` / `write_kubeconfig()` a kubeconfig for code that
//! // loads one.
//! let client = kube.client().await?;
//! let pods: Api<Pod> = Api::namespaced(client, "shop");
//! let name = pod["metadata"]["name"].as_str().unwrap_or_default();
//! let patch = serde_json::json!({
//!     "apiVersion": "v1", "kind": "Pod",
//!     "metadata": {"labels": {"riposte.io/quarantine": "true"}},
//! });
//! pods.patch(name, &PatchParams::apply("riposte"), &Patch::Apply(&patch)).await?;
//!
//! // What Riposte sent, and what the cluster now holds.
//! assert!(kube.requests().iter().any(|r| r.is_apply_by("riposte")));
//! let stored = kube.get("pods", "shop", name).expect("the pod");
//! assert_eq!(stored["metadata"]["labels"]["riposte.io/quarantine"], "true");
//!
//! // Resilience: the next two patches fail with 500, then one is throttled.
//! kube.inject(Fault::status(500).times(2).verb("patch"));
//! kube.inject(Fault::too_many_requests(1).verb("patch"));
//! // The server goes away and comes back on the same port.
//! kube.stop().await;
//! kube.restart().await?;
//! # Ok(())
//! # }
//! ```
//!
//! Layout:
//! - [`server`]: listeners, stop/restart on the same port, shared state.
//! - [`handler`], [`route`], [`query`]: one request from path to response.
//! - [`store`]: objects, the resourceVersion counter and change history.
//! - [`ops`]: create/update/patch/apply/delete with the server's rules.
//! - [`apply`], [`fieldset`]: server-side apply and managed fields.
//! - [`patch`]: merge, JSON and strategic merge patches.
//! - [`schema`], [`validate`]: typed decoding, list semantics, validation.
//! - [`selectors`]: label and field selectors.
//! - [`watch`]: watch streams.
//! - [`discovery`]: discovery documents.
//! - [`faults`], [`log`]: fault injection and the request log.
//! - [`rbac`]: optional restriction of the token to Role/ClusterRole rules.
//! - [`fixtures`]: realistic pods, namespaces and workloads.
//! - [`status`]: `Status` failure bodies.
//! - [`tls`]: the throwaway CA and server certificate.

pub mod apply;
pub mod discovery;
pub mod error;
pub mod faults;
pub mod fieldset;
pub mod fixtures;
pub mod handler;
pub mod log;
pub mod ops;
pub mod patch;
pub mod query;
pub mod rbac;
pub mod resources;
pub mod route;
pub mod schema;
pub mod selectors;
pub mod server;
pub mod status;
pub mod store;
pub mod tls;
pub mod validate;
pub mod watch;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use base64::Engine;
use serde_json::Value;

pub use error::Error;
pub use faults::{Fault, FaultAction};
pub use fixtures::{OwnerRef, PodFixture, Workload};
pub use log::RequestRecord;
pub use rbac::{Authorizer, Grant, PolicyRule};
pub use resources::ResourceType;
pub use server::Options;
pub use status::ApiError;

use server::{Endpoint, Shared};

/// An Event from either events API, reduced to what tests assert on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventSummary {
    /// `v1` or `events.k8s.io/v1`.
    pub api_version: String,
    /// Normal or Warning.
    pub type_: String,
    pub reason: String,
    /// `message` (core) or `note` (events.k8s.io).
    pub message: String,
    /// `source.component` (core) or `reportingController`.
    pub reporter: String,
    /// `action` (events.k8s.io only).
    pub action: String,
    /// Occurrences: `count` (core) or `series.count`, at least 1.
    pub count: u64,
    pub resource_version: u64,
    /// The stored object.
    pub object: Value,
}

impl EventSummary {
    fn s(v: &Value) -> String {
        v.as_str().unwrap_or("").to_string()
    }

    fn rv(e: &Value) -> u64 {
        e["metadata"]["resourceVersion"]
            .as_str()
            .and_then(|r| r.parse().ok())
            .unwrap_or(0)
    }

    fn from_core(e: &Value) -> Self {
        Self {
            api_version: "v1".into(),
            type_: Self::s(&e["type"]),
            reason: Self::s(&e["reason"]),
            message: Self::s(&e["message"]),
            reporter: match Self::s(&e["reportingComponent"]) {
                r if r.is_empty() => Self::s(&e["source"]["component"]),
                r => r,
            },
            action: Self::s(&e["action"]),
            count: e["count"].as_u64().unwrap_or(1).max(1),
            resource_version: Self::rv(e),
            object: e.clone(),
        }
    }

    fn from_v1(e: &Value) -> Self {
        Self {
            api_version: "events.k8s.io/v1".into(),
            type_: Self::s(&e["type"]),
            reason: Self::s(&e["reason"]),
            message: Self::s(&e["note"]),
            reporter: Self::s(&e["reportingController"]),
            action: Self::s(&e["action"]),
            count: e["series"]["count"].as_u64().unwrap_or(1).max(1),
            resource_version: Self::rv(e),
            object: e.clone(),
        }
    }
}

/// The namespaces a new cluster has.
pub const INITIAL_NAMESPACES: &[&str] =
    &["default", "kube-system", "kube-public", "kube-node-lease"];

/// A running stand-in API server. Dropping it does not stop the listener
/// tasks immediately; call [`KubeApiServer::stop`] to refuse connections.
#[derive(Debug)]
pub struct KubeApiServer {
    shared: Arc<Shared>,
    https: Endpoint,
    plain: Option<Endpoint>,
    ca_pem: String,
    ca_der: Vec<u8>,
}

fn kind(name: &str) -> Result<&'static ResourceType, Error> {
    resources::lookup(name).ok_or_else(|| Error::UnknownKind(name.to_string()))
}

impl KubeApiServer {
    /// Starts on a loopback port the kernel picks, with default options.
    pub async fn start() -> Result<Self, Error> {
        Self::start_with(Options::default()).await
    }

    /// Starts with `options`.
    pub async fn start_with(options: Options) -> Result<Self, Error> {
        let certs = tls::generate()?;
        let token = options
            .token
            .clone()
            .unwrap_or_else(|| format!("riposte-test-{}", ops::new_uid()));
        let plain_http = options.plain_http;
        let shared = Arc::new(Shared::new(options, token));
        shared.store.transact(|t| {
            let ns = kind("namespaces").map_err(|e| ApiError::internal(&e.to_string()))?;
            for name in INITIAL_NAMESPACES {
                ops::seed(t, ns, fixtures::namespace(name, &[]))?;
            }
            Ok(())
        })?;
        let any: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 0));
        let https = Endpoint::start(any, Some(certs.server.clone()), shared.clone()).await?;
        shared.set_server_address(https.addr().to_string());
        let plain = if plain_http {
            Some(Endpoint::start(any, None, shared.clone()).await?)
        } else {
            None
        };
        Ok(Self {
            shared,
            https,
            plain,
            ca_pem: certs.ca_pem,
            ca_der: certs.ca_der,
        })
    }

    /// `https://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("https://{}", self.https.addr())
    }

    /// `http://127.0.0.1:<port>` when started with `plain_http`.
    pub fn plain_url(&self) -> Option<String> {
        self.plain.as_ref().map(|p| format!("http://{}", p.addr()))
    }

    pub fn addr(&self) -> SocketAddr {
        self.https.addr()
    }

    /// The CA certificate (PEM) that signed the server certificate.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The bearer token clients must present.
    pub fn token(&self) -> &str {
        &self.shared.token
    }

    /// A `kube::Config` for the stand-in: its URL, the CA trusted, the
    /// token set, namespace `default`.
    pub fn client_config(&self) -> Result<kube::Config, Error> {
        let mut c = kube::Config::new(self.url().parse()?);
        c.root_cert = Some(vec![self.ca_der.clone()]);
        c.auth_info.token = Some(secrecy::SecretString::from(self.shared.token.clone()));
        Ok(c)
    }

    /// The real `kube::Client` for the stand-in.
    pub async fn client(&self) -> Result<kube::Client, Error> {
        Ok(kube::Client::try_from(self.client_config()?)?)
    }

    /// A kubeconfig file's text for the stand-in (for code that loads
    /// `KUBECONFIG`).
    pub fn kubeconfig(&self) -> String {
        let ca = base64::engine::general_purpose::STANDARD.encode(self.ca_pem.as_bytes());
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: stand-in\n  cluster:\n    server: {}\n    certificate-authority-data: {ca}\nusers:\n- name: riposte\n  user:\n    token: {}\ncontexts:\n- name: stand-in\n  context:\n    cluster: stand-in\n    user: riposte\n    namespace: default\ncurrent-context: stand-in\n",
            self.url(),
            self.shared.token
        )
    }

    /// Writes [`KubeApiServer::kubeconfig`] to `path`.
    pub fn write_kubeconfig(&self, path: &std::path::Path) -> Result<(), Error> {
        std::fs::write(path, self.kubeconfig())?;
        Ok(())
    }

    // ---- lifecycle and faults ----

    /// Takes the server down: open connections are closed and new ones
    /// refused until [`KubeApiServer::restart`].
    pub async fn stop(&self) {
        self.https.stop().await;
        if let Some(p) = &self.plain {
            p.stop().await;
        }
    }

    /// Brings the server back on the same port(s), with the same objects.
    pub async fn restart(&self) -> Result<(), Error> {
        self.https.restart(self.shared.clone()).await?;
        if let Some(p) = &self.plain {
            p.restart(self.shared.clone()).await?;
        }
        Ok(())
    }

    /// Ends every open watch stream cleanly, as an API server does when a
    /// watch times out or it shuts down gracefully.
    pub fn drop_watches(&self) {
        self.shared.drop_watches();
    }

    /// Forgets the change history: every watch or continue token from
    /// before now gets 410 Expired, as after an etcd compaction.
    pub fn compact(&self) {
        self.shared.store.compact();
    }

    /// Arms a fault for the next matching request(s).
    pub fn inject(&self, fault: Fault) {
        self.shared.faults.inject(fault);
    }

    /// Disarms all faults.
    pub fn clear_faults(&self) {
        self.shared.faults.clear();
    }

    /// Injected failures not yet fired.
    pub fn pending_faults(&self) -> usize {
        self.shared.faults.pending()
    }

    /// Restricts the token to these RBAC grants: requests outside them get
    /// the API server's 403 Forbidden. Discovery stays open, as the
    /// `system:discovery` role grants it to everyone authenticated.
    pub fn restrict(&self, authorizer: Authorizer) {
        self.shared.set_authorizer(Some(authorizer));
    }

    /// Restricts the token to the Roles and ClusterRoles in these
    /// manifests (e.g. the Helm chart's rendered RBAC), as `user`.
    pub fn restrict_to_manifests(&self, user: &str, yaml: &str) -> Result<(), Error> {
        let a = Authorizer::from_manifests(user, yaml).map_err(Error::Rbac)?;
        self.restrict(a);
        Ok(())
    }

    /// Lifts an RBAC restriction: the token may do anything again.
    pub fn unrestrict(&self) {
        self.shared.set_authorizer(None);
    }

    // ---- the request log ----

    /// Every request since start (or [`KubeApiServer::clear_requests`]).
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared.log.all()
    }

    /// Requests with this verb whose path starts with `prefix`.
    pub fn requests_matching(&self, verb: &str, prefix: &str) -> Vec<RequestRecord> {
        self.requests()
            .into_iter()
            .filter(|r| r.verb == verb && r.path.starts_with(prefix))
            .collect()
    }

    pub fn clear_requests(&self) {
        self.shared.log.clear();
    }

    // ---- objects, directly ----

    /// The current (newest) resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.shared.store.rv()
    }

    /// Stores an object as cluster state (status kept, no managed
    /// fields), checked like the API server checks names, labels and
    /// types. `kind` is a plural, singular, short name or Kind, optionally
    /// qualified with its group (`networkpolicies.crd.projectcalico.org`).
    pub fn create(&self, kind_name: &str, obj: Value) -> Result<Value, Error> {
        let res = kind(kind_name)?;
        let stored = self.shared.store.transact(|t| ops::seed(t, res, obj))?;
        Ok((*stored).clone())
    }

    /// Stores many objects of one type in one transaction.
    pub fn create_many(&self, kind_name: &str, objs: Vec<Value>) -> Result<usize, Error> {
        let res = kind(kind_name)?;
        let n = objs.len();
        self.shared.store.transact(|t| {
            for o in objs {
                ops::seed(t, res, o)?;
            }
            Ok(())
        })?;
        Ok(n)
    }

    /// The object, if it exists (`namespace` is ignored for cluster-scoped
    /// types).
    pub fn get(&self, kind_name: &str, namespace: &str, name: &str) -> Option<Value> {
        let res = resources::lookup(kind_name)?;
        self.shared
            .store
            .get(res, namespace, name)
            .map(|v| (*v).clone())
    }

    /// Objects of a type in `namespace` (`None`: everywhere), by key.
    pub fn list(&self, kind_name: &str, namespace: Option<&str>) -> Vec<Value> {
        let Some(res) = resources::lookup(kind_name) else {
            return Vec::new();
        };
        self.shared
            .store
            .list(res, namespace, None, None)
            .map(|(v, _)| v.iter().map(|o| (**o).clone()).collect())
            .unwrap_or_default()
    }

    /// Changes an object the way a controller or kubelet would (a new
    /// resourceVersion and a MODIFIED event, no managed fields).
    pub fn modify(
        &self,
        kind_name: &str,
        namespace: &str,
        name: &str,
        change: impl FnOnce(&mut Value),
    ) -> Result<Value, Error> {
        let res = kind(kind_name)?;
        let stored = self.shared.store.transact(|t| {
            let old = t
                .get(res, namespace, name)
                .ok_or_else(|| ApiError::not_found(res, name))?;
            let mut new = (*old).clone();
            change(&mut new);
            let new = schema::decode(res, &new).map_err(ApiError::bad_request)?;
            let mut causes = Vec::new();
            validate::metadata(res, &new, &mut causes);
            if !causes.is_empty() {
                return Err(ApiError::invalid(res, name, causes));
            }
            Ok(t.put(res, new))
        })?;
        Ok((*stored).clone())
    }

    /// Deletes an object (dependents are garbage-collected, finalizers
    /// honoured). `Ok(None)` when it did not exist.
    pub fn delete(
        &self,
        kind_name: &str,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Value>, Error> {
        let res = kind(kind_name)?;
        match ops::delete(
            &self.shared.store,
            res,
            namespace,
            name,
            &ops::DeleteOpts::default(),
        ) {
            Ok((v, _)) => Ok(Some((*v).clone())),
            Err(e)
                if e.code == 404
                    && e.details.as_ref().and_then(|d| d["name"].as_str()) == Some(name) =>
            {
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The labels of an object (empty when it or they do not exist).
    pub fn labels(&self, kind_name: &str, namespace: &str, name: &str) -> BTreeMap<String, String> {
        self.get(kind_name, namespace, name)
            .map(|o| selectors::label_map(&o))
            .unwrap_or_default()
    }

    /// The annotations of an object (empty when it or they do not exist).
    pub fn annotations(
        &self,
        kind_name: &str,
        namespace: &str,
        name: &str,
    ) -> BTreeMap<String, String> {
        self.get(kind_name, namespace, name)
            .and_then(|o| o["metadata"]["annotations"].as_object().cloned())
            .map(|m| {
                m.into_iter()
                    .filter_map(|(k, v)| v.as_str().map(|s| (k, s.to_string())))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every Event about an object, from both the core and the
    /// `events.k8s.io/v1` API (`involvedObject` / `regarding`), oldest first.
    /// Each is returned as stored; use [`EventSummary`] for the common view.
    pub fn events_about(&self, namespace: &str, name: &str) -> Vec<EventSummary> {
        let mut out: Vec<EventSummary> = Vec::new();
        for e in self.list("events", Some(namespace)) {
            let about = &e["involvedObject"];
            if about["name"] == name {
                out.push(EventSummary::from_core(&e));
            }
        }
        for e in self.list("events.events.k8s.io", Some(namespace)) {
            let about = &e["regarding"];
            if about["name"] == name {
                out.push(EventSummary::from_v1(&e));
            }
        }
        out.sort_by_key(|e| e.resource_version);
        out
    }

    // ---- fixtures ----

    /// A namespace with labels (plus `kubernetes.io/metadata.name`).
    pub fn add_namespace(&self, name: &str, labels: &[(&str, &str)]) -> Result<Value, Error> {
        self.create("namespaces", fixtures::namespace(name, labels))
    }

    fn ensure_namespace(&self, name: &str) -> Result<(), Error> {
        if self.get("namespaces", "", name).is_none() {
            self.add_namespace(name, &[])?;
        }
        Ok(())
    }

    /// A Deployment and its ReplicaSet (the namespace is made if missing).
    /// Make its pods with [`Workload::pod`].
    pub fn add_deployment(
        &self,
        namespace: &str,
        name: &str,
        labels: &[(&str, &str)],
    ) -> Result<Workload, Error> {
        self.ensure_namespace(namespace)?;
        let d = self.create("deployments", fixtures::deployment(namespace, name, labels))?;
        let hash = format!(
            "{}{}",
            fixtures::random_suffix(5),
            fixtures::random_suffix(5)
        );
        let rs = self.create("replicasets", fixtures::replicaset_of(&d, &hash))?;
        Ok(Workload {
            deployment: d,
            replicaset: rs,
        })
    }

    /// A pod (the namespace is made if missing).
    pub fn add_pod(&self, pod: PodFixture) -> Result<Value, Error> {
        self.ensure_namespace(&pod.namespace)?;
        self.create("pods", pod.to_json())
    }

    /// Many pods in one transaction (namespaces made if missing): the
    /// fast path for index-scale tests.
    pub fn seed_pods(&self, pods: impl IntoIterator<Item = PodFixture>) -> Result<usize, Error> {
        let pods_res = kind("pods")?;
        let ns_res = kind("namespaces")?;
        let pods: Vec<PodFixture> = pods.into_iter().collect();
        let n = pods.len();
        self.shared.store.transact(|t| {
            for p in pods {
                if t.get(ns_res, "", &p.namespace).is_none() {
                    ops::seed(t, ns_res, fixtures::namespace(&p.namespace, &[]))?;
                }
                ops::seed_trusted(t, pods_res, p.to_json())?;
            }
            Ok(())
        })?;
        Ok(n)
    }
}
