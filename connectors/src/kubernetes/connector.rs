//! [`KubernetesConnector`]: the client, the configuration, and what every
//! action shares (timeouts, reading the target pod, per-namespace locks).
//!
//! The actions themselves live one per file: `quarantine`, `detach`,
//! `release`, `egress`, `events`, `edit`.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use dashmap::DashMap;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PatchParams};
use tokio::sync::{Mutex, OnceCell, OwnedMutexGuard};

use crate::kubernetes::config::KubernetesConfig;
use crate::kubernetes::error::{KubeError, Result};
use crate::kubernetes::target::PodRef;

/// Every Kubernetes action Riposte takes. Cheap to clone; all writes are
/// idempotent, so the dispatcher may retry any of them.
#[derive(Clone)]
pub struct KubernetesConnector {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) client: kube::Client,
    pub(crate) config: KubernetesConfig,
    /// Serializes "is any pod still quarantined here? then delete the
    /// policy" against quarantines in the same namespace (within this
    /// process; across replicas, resourceVersion preconditions do it).
    ns_locks: DashMap<String, Arc<Mutex<()>>>,
    /// The Calico tier is ensured once per process.
    pub(crate) calico_tier: OnceCell<()>,
    /// `reportingInstance` of Events: the pod name in a cluster.
    pub(crate) instance: String,
}

impl fmt::Debug for KubernetesConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KubernetesConnector")
            .field("field_manager", &self.inner.config.field_manager)
            .field("instance", &self.inner.instance)
            .finish_non_exhaustive()
    }
}

impl KubernetesConnector {
    pub fn new(client: kube::Client, config: KubernetesConfig) -> KubernetesConnector {
        let instance = std::env::var("HOSTNAME")
            .ok()
            .filter(|h| !h.is_empty() && h.len() <= 128)
            .unwrap_or_else(|| "riposte".into());
        KubernetesConnector {
            inner: Arc::new(Inner {
                client,
                config,
                ns_locks: DashMap::new(),
                calico_tier: OnceCell::new(),
                instance,
            }),
        }
    }

    pub fn config(&self) -> &KubernetesConfig {
        &self.inner.config
    }

    pub fn client(&self) -> &kube::Client {
        &self.inner.client
    }

    /// One API call, bounded by the request timeout.
    pub(crate) async fn call<T>(
        &self,
        fut: impl Future<Output = std::result::Result<T, kube::Error>>,
    ) -> Result<T> {
        let limit = self.inner.config.request_timeout();
        match tokio::time::timeout(limit, fut).await {
            Ok(r) => r.map_err(KubeError::from),
            Err(_) => Err(KubeError::Timeout(limit)),
        }
    }

    pub(crate) fn pods(&self, namespace: &str) -> Api<Pod> {
        Api::namespaced(self.inner.client.clone(), namespace)
    }

    /// Server-side apply, forced: Riposte's fields are Riposte's, even if a
    /// human set them before.
    pub(crate) fn apply_params(&self) -> PatchParams {
        PatchParams::apply(&self.inner.config.field_manager).force()
    }

    /// Merge patches, recorded under the same manager name.
    pub(crate) fn patch_params(&self) -> PatchParams {
        PatchParams {
            field_manager: Some(self.inner.config.field_manager.clone()),
            ..PatchParams::default()
        }
    }

    /// The live pod; `PodGone` when it does not exist or another pod (other
    /// uid) took its name.
    pub(crate) async fn get_pod(&self, pod: &PodRef) -> Result<Pod> {
        let api = self.pods(&pod.namespace);
        let live = self
            .call(api.get_opt(&pod.name))
            .await?
            .ok_or_else(|| gone(pod))?;
        if let Some(want) = &pod.uid {
            if live.metadata.uid.as_deref() != Some(want.as_str()) {
                return Err(gone(pod));
            }
        }
        Ok(live)
    }

    /// After a write to a pod failed with a status that a vanished or
    /// replaced pod also produces (404, 409, 422), tells the two apart.
    pub(crate) async fn classify_pod_error(&self, pod: &PodRef, err: KubeError) -> KubeError {
        match err.status_code() {
            Some(404) => gone(pod),
            Some(409) | Some(422) => match self.get_pod(pod).await {
                Err(e @ KubeError::PodGone { .. }) => e,
                _ => err,
            },
            _ => err,
        }
    }

    /// The namespace's lock for quarantine-policy changes.
    pub(crate) async fn namespace_lock(&self, namespace: &str) -> OwnedMutexGuard<()> {
        let lock = self
            .inner
            .ns_locks
            .entry(namespace.to_owned())
            .or_default()
            .clone();
        lock.lock_owned().await
    }
}

pub(crate) fn gone(pod: &PodRef) -> KubeError {
    KubeError::PodGone {
        namespace: pod.namespace.clone(),
        name: pod.name.clone(),
    }
}

/// The pod's uid, resourceVersion and labels, read defensively.
pub(crate) fn pod_meta(pod: &Pod) -> (String, String) {
    (
        pod.metadata.uid.clone().unwrap_or_default(),
        pod.metadata.resource_version.clone().unwrap_or_default(),
    )
}
