//! Watch streams: newline-delimited `{"type": …, "object": …}` events,
//! served from the store's change history.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::resources::ResourceType;
use super::selectors::{labels_of, FieldSelector, LabelSelector};
use super::server::Shared;
use super::status::ApiError;
use super::store::{Change, ChangeType};

/// A validated watch request.
#[derive(Debug, Clone)]
pub struct WatchRequest {
    pub res: &'static ResourceType,
    pub namespace: Option<String>,
    pub labels: LabelSelector,
    pub fields: FieldSelector,
    /// Start after this resourceVersion; `None` (or "0"): start with
    /// synthetic ADDED events for the current state.
    pub resource_version: Option<u64>,
    pub send_initial_events: bool,
    pub bookmarks: bool,
    pub timeout: Duration,
    /// `Accept: …;as=PartialObjectMetadata`: objects reduced to metadata.
    pub metadata_only: bool,
}

impl WatchRequest {
    fn matches(&self, obj: &Value) -> bool {
        self.labels.matches(labels_of(obj)) && self.fields.matches(obj)
    }

    fn in_scope(&self, obj: &Value) -> bool {
        match &self.namespace {
            None => true,
            Some(ns) => {
                obj.get("metadata")
                    .and_then(|m| m.get("namespace"))
                    .and_then(Value::as_str)
                    == Some(ns.as_str())
            }
        }
    }
}

/// An object as a response shows it: whole, or as PartialObjectMetadata.
pub fn present(obj: &Value, metadata_only: bool) -> Value {
    if metadata_only {
        json!({
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
        })
    } else {
        obj.clone()
    }
}

fn with_rv(obj: &Value, rv: u64) -> Value {
    let mut o = obj.clone();
    if let Some(m) = o.get_mut("metadata").and_then(Value::as_object_mut) {
        m.insert("resourceVersion".into(), json!(rv.to_string()));
    }
    o
}

/// The event a watcher with this filter sees for a change, if any. An
/// object that stops matching is DELETED for it, one that starts matching
/// is ADDED, as the API server's watch cache does.
fn event_for(w: &WatchRequest, c: &Change) -> Option<(&'static str, Value)> {
    if !w.in_scope(&c.object) {
        return None;
    }
    let now = w.matches(&c.object);
    match c.kind {
        ChangeType::Added => now.then(|| ("ADDED", (*c.object).clone())),
        ChangeType::Deleted => {
            let before = c.prev.as_deref().is_some_and(|p| w.matches(p));
            (before || now).then(|| ("DELETED", (*c.object).clone()))
        }
        ChangeType::Modified => {
            let before = c.prev.as_deref().is_some_and(|p| w.matches(p));
            match (before, now) {
                (true, true) => Some(("MODIFIED", (*c.object).clone())),
                (false, true) => Some(("ADDED", (*c.object).clone())),
                (true, false) => c.prev.as_deref().map(|p| ("DELETED", with_rv(p, c.rv))),
                (false, false) => None,
            }
        }
    }
}

fn line(kind: &str, object: Value) -> Bytes {
    let mut s = json!({"type": kind, "object": object}).to_string();
    s.push('\n');
    Bytes::from(s)
}

fn bookmark(w: &WatchRequest, rv: u64, initial_end: bool) -> Bytes {
    let (kind, api_version) = if w.metadata_only {
        (
            "PartialObjectMetadata".to_string(),
            "meta.k8s.io/v1".to_string(),
        )
    } else {
        (w.res.kind.to_string(), w.res.api_version())
    };
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if initial_end {
        meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    line(
        "BOOKMARK",
        json!({"kind": kind, "apiVersion": api_version, "metadata": meta}),
    )
}

/// Starts streaming `w`; the body ends at the timeout, when the stand-in
/// drops its watches, or when the client goes away.
pub fn start(shared: Arc<Shared>, w: WatchRequest, stop: CancellationToken) -> Body {
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    tokio::spawn(run(shared, w, tx, stop));
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, Infallible>(b), rx))
    });
    Body::from_stream(stream)
}

async fn run(
    shared: Arc<Shared>,
    w: WatchRequest,
    tx: mpsc::Sender<Bytes>,
    stop: CancellationToken,
) {
    let store = &shared.store;
    let mut changed = store.subscribe();
    changed.borrow_and_update();
    let ns = w.namespace.as_deref();
    let initial = w.resource_version.is_none() || w.send_initial_events;
    let mut cursor = match w.resource_version {
        Some(rv) if !w.send_initial_events => rv,
        _ => 0,
    };
    if initial {
        let (objects, rv) = match store.list(w.res, ns, None, None) {
            Ok(x) => x,
            Err(e) => {
                let _ = tx.send(line("ERROR", e.to_status())).await;
                return;
            }
        };
        for o in objects.iter().filter(|o| w.matches(o)) {
            if tx
                .send(line("ADDED", present(o, w.metadata_only)))
                .await
                .is_err()
            {
                return;
            }
        }
        cursor = rv;
        if w.send_initial_events && tx.send(bookmark(&w, cursor, true)).await.is_err() {
            return;
        }
    }
    let deadline = tokio::time::Instant::now() + w.timeout;
    let every = shared
        .options
        .bookmark_interval
        .max(Duration::from_millis(1));
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    loop {
        changed.borrow_and_update();
        match store.changes_since(cursor) {
            Err(oldest) => {
                let gone =
                    ApiError::expired(format!("too old resource version: {cursor} ({oldest})"));
                let _ = tx.send(line("ERROR", gone.to_status())).await;
                return;
            }
            Ok(changes) => {
                for c in changes {
                    cursor = c.rv;
                    if c.res != w.res.index() {
                        continue;
                    }
                    if let Some((kind, obj)) = event_for(&w, &c) {
                        if tx
                            .send(line(kind, present(&obj, w.metadata_only)))
                            .await
                            .is_err()
                        {
                            return;
                        }
                    }
                }
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tx.closed() => return,
            _ = tokio::time::sleep_until(deadline) => return,
            _ = tick.tick(), if w.bookmarks => {
                if tx.send(bookmark(&w, cursor, false)).await.is_err() {
                    return;
                }
            }
            r = changed.changed() => {
                if r.is_err() {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kube_api::resources::lookup;
    use std::sync::Arc;

    fn req(selector: &str) -> WatchRequest {
        WatchRequest {
            res: lookup("pods").expect("served"),
            namespace: Some("shop".into()),
            labels: LabelSelector::parse(selector).expect("valid"),
            fields: FieldSelector::default(),
            resource_version: Some(1),
            send_initial_events: false,
            bookmarks: false,
            timeout: Duration::from_secs(1),
            metadata_only: false,
        }
    }

    fn pod(labels: Value, rv: &str) -> Arc<Value> {
        Arc::new(
            json!({"metadata": {"namespace": "shop", "name": "p", "labels": labels, "resourceVersion": rv}}),
        )
    }

    fn change(kind: ChangeType, prev: Option<Arc<Value>>, obj: Arc<Value>) -> Change {
        Change {
            rv: 9,
            res: 1,
            kind,
            object: obj,
            prev,
        }
    }

    #[test]
    fn selector_transitions_become_added_and_deleted() {
        let w = req("app=web");
        let web = pod(json!({"app": "web"}), "8");
        let db = pod(json!({"app": "db"}), "9");
        let leaves = change(ChangeType::Modified, Some(web.clone()), db.clone());
        let (kind, obj) = event_for(&w, &leaves).expect("an event");
        assert_eq!(kind, "DELETED");
        assert_eq!(obj["metadata"]["labels"]["app"], "web");
        assert_eq!(obj["metadata"]["resourceVersion"], "9");
        let joins = change(ChangeType::Modified, Some(db.clone()), web.clone());
        assert_eq!(event_for(&w, &joins).map(|e| e.0), Some("ADDED"));
        let unrelated = change(ChangeType::Modified, Some(db.clone()), db);
        assert!(event_for(&w, &unrelated).is_none());
    }

    #[test]
    fn other_namespaces_are_not_seen() {
        let w = req("");
        let other = Arc::new(json!({"metadata": {"namespace": "kube-system", "name": "p"}}));
        assert!(event_for(&w, &change(ChangeType::Added, None, other)).is_none());
    }

    #[test]
    fn metadata_only_objects_are_partial() {
        let p = present(&json!({"metadata": {"name": "x"}, "spec": {}}), true);
        assert_eq!(
            p,
            json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": {"name": "x"}})
        );
    }
}
