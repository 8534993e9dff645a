//! The Kubernetes API server stand-in, driven by the real `kube::Client`:
//! if these pass, Riposte's Kubernetes code sees what it would see from a
//! real API server.

use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Event as CoreEvent, Namespace, ObjectReference, Pod};
use k8s_openapi::api::events::v1::Event as EventV1;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch,
    PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Client, Discovery, ResourceExt};
use riposte_tests::kube_api::{Fault, KubeApiServer, Options, PodFixture};
use serde_json::{json, Value};

async fn start() -> (KubeApiServer, Client) {
    let kube = KubeApiServer::start().await.expect("stand-in starts");
    let client = kube.client().await.expect("client builds");
    (kube, client)
}

/// The `Status` of a failed call.
fn status(err: kube::Error) -> kube::core::Status {
    match err {
        kube::Error::Api(s) => *s,
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn raw_client(kube: &KubeApiServer) -> reqwest::Client {
    reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(kube.ca_pem().as_bytes()).expect("CA in PEM"),
        )
        .build()
        .expect("reqwest client")
}

async fn next_event<S, T>(stream: &mut S) -> T
where
    S: futures::Stream<Item = T> + Unpin,
{
    tokio::time::timeout(Duration::from_secs(15), stream.next())
        .await
        .expect("an event within 15 s")
        .expect("the stream goes on")
}

#[tokio::test]
async fn discovery_serves_every_group_to_kube() {
    let (_kube, client) = start().await;
    let version = client.apiserver_version().await.expect("version");
    assert_eq!(
        (version.major.as_str(), version.minor.as_str()),
        ("1", "33")
    );

    let discovery = Discovery::new(client.clone())
        .run()
        .await
        .expect("discovery");
    for group in [
        "",
        "apps",
        "batch",
        "networking.k8s.io",
        "events.k8s.io",
        "coordination.k8s.io",
        "cilium.io",
        "crd.projectcalico.org",
    ] {
        assert!(discovery.has_group(group), "group {group:?} not discovered");
    }
    let gvk = GroupVersionKind::gvk("cilium.io", "v2", "CiliumNetworkPolicy");
    let (ar, caps) = discovery
        .resolve_gvk(&gvk)
        .expect("CiliumNetworkPolicy resolves");
    assert_eq!(ar.plural, "ciliumnetworkpolicies");
    assert_eq!(caps.scope, kube::discovery::Scope::Namespaced);

    let aggregated = Discovery::new(client)
        .run_aggregated()
        .await
        .expect("aggregated discovery");
    let gvk = GroupVersionKind::gvk("crd.projectcalico.org", "v1", "NetworkPolicy");
    let (ar, _) = aggregated
        .resolve_gvk(&gvk)
        .expect("Calico NetworkPolicy resolves");
    assert_eq!(ar.plural, "networkpolicies");
}

#[tokio::test]
async fn requests_without_the_token_get_401() {
    let (kube, _client) = start().await;
    let http = raw_client(&kube);
    let resp = http
        .get(format!("{}/api/v1/pods", kube.url()))
        .send()
        .await
        .expect("response");
    assert_eq!(resp.status(), 401);
    let body: Value = resp.json().await.expect("JSON");
    assert_eq!(
        body,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": "Unauthorized", "reason": "Unauthorized", "code": 401})
    );
    let ok = http
        .get(format!("{}/api/v1/pods", kube.url()))
        .bearer_auth(kube.token())
        .send()
        .await
        .expect("response");
    assert_eq!(ok.status(), 200);
}

#[tokio::test]
async fn lists_filter_by_labels_and_fields_and_page() {
    let (kube, client) = start().await;
    kube.add_namespace("shop", &[("team", "payments")])
        .expect("namespace");
    kube.add_pod(
        PodFixture::new("shop", "web-1", "10.244.1.1").labels(&[("app", "web"), ("tier", "front")]),
    )
    .expect("pod");
    kube.add_pod(
        PodFixture::new("shop", "web-2", "10.244.1.2")
            .label("app", "web")
            .node("node-2"),
    )
    .expect("pod");
    kube.add_pod(
        PodFixture::new("shop", "db-1", "10.244.1.3")
            .label("app", "db")
            .phase("Failed"),
    )
    .expect("pod");
    kube.add_pod(PodFixture::new("other", "web-3", "10.244.2.1").label("app", "web"))
        .expect("pod");

    let shop: Api<Pod> = Api::namespaced(client.clone(), "shop");
    let all: Api<Pod> = Api::all(client.clone());
    let names = |l: kube::core::ObjectList<Pod>| -> Vec<String> {
        l.items.iter().map(|p| p.name_any()).collect()
    };

    let web = shop
        .list(&ListParams::default().labels("app=web"))
        .await
        .expect("list");
    assert_eq!(names(web), ["web-1", "web-2"]);
    let front = all
        .list(&ListParams::default().labels("app in (web),tier"))
        .await
        .expect("list");
    assert_eq!(names(front), ["web-1"]);
    let not_web = shop
        .list(&ListParams::default().labels("app!=web"))
        .await
        .expect("list");
    assert_eq!(names(not_web), ["db-1"]);
    let no_tier = all
        .list(&ListParams::default().labels("!tier,app notin (db)"))
        .await
        .expect("list");
    assert_eq!(
        names(no_tier),
        ["web-3", "web-2"],
        "all-namespace lists are ordered by namespace, then name"
    );

    let by_ip = all
        .list(&ListParams::default().fields("status.podIP=10.244.1.2"))
        .await
        .expect("list");
    assert_eq!(names(by_ip), ["web-2"]);
    let running_on_1 = all
        .list(&ListParams::default().fields("status.phase=Running,spec.nodeName=node-1"))
        .await
        .expect("list");
    assert_eq!(names(running_on_1), ["web-3", "web-1"]);
    let by_ns = all
        .list(&ListParams::default().fields("metadata.namespace=other"))
        .await
        .expect("list");
    assert_eq!(names(by_ns), ["web-3"]);

    let err = all
        .list(&ListParams::default().fields("spec.containers=x"))
        .await
        .expect_err("unsupported field");
    let s = status(err);
    assert_eq!((s.code, s.reason.as_str()), (400, "BadRequest"));
    let err = all
        .list(&ListParams::default().labels("app=not valid"))
        .await
        .expect_err("bad selector");
    assert_eq!(status(err).code, 400);

    // Paging: a consistent snapshot even when objects change between pages.
    let first = all
        .list(&ListParams::default().limit(2))
        .await
        .expect("page 1");
    assert_eq!(first.items.len(), 2);
    assert_eq!(first.metadata.remaining_item_count, Some(2));
    let token = first.metadata.continue_.clone().expect("a continue token");
    kube.delete("pods", "shop", "web-2")
        .expect("delete")
        .expect("existed");
    kube.add_pod(PodFixture::new("shop", "zz-late", "10.244.1.9"))
        .expect("pod");
    let second = all
        .list(&ListParams::default().limit(2).continue_token(&token))
        .await
        .expect("page 2");
    assert_eq!(
        names(second.clone()),
        ["web-1", "web-2"],
        "page 2 is as of page 1's snapshot"
    );
    assert_eq!(
        second.metadata.resource_version,
        first.metadata.resource_version
    );
    assert!(second.metadata.continue_.is_none());
}

#[tokio::test]
async fn errors_carry_the_api_servers_status() {
    let (kube, client) = start().await;
    kube.add_namespace("shop", &[]).expect("namespace");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "shop");

    let s = status(pods.get("nope").await.expect_err("absent"));
    assert_eq!((s.code, s.reason.as_str()), (404, "NotFound"));
    assert_eq!(s.message, "pods \"nope\" not found");
    let details = s.details.expect("details");
    assert_eq!(
        (details.name.as_str(), details.kind.as_str()),
        ("nope", "pods")
    );

    let pod: Pod = serde_json::from_value(PodFixture::new("shop", "p", "").to_json()).expect("pod");
    let created = pods
        .create(&PostParams::default(), &pod)
        .await
        .expect("created");
    assert_eq!(
        created.status.and_then(|s| s.phase).as_deref(),
        Some("Pending"),
        "status is the server's on create"
    );
    assert!(created.metadata.uid.is_some());
    assert!(created.metadata.creation_timestamp.is_some());
    let s = status(
        pods.create(&PostParams::default(), &pod)
            .await
            .expect_err("twice"),
    );
    assert_eq!((s.code, s.reason.as_str()), (409, "AlreadyExists"));

    let mut bad = pod.clone();
    bad.metadata.name = Some("q".into());
    bad.metadata.labels = Some(
        [(
            "riposte.io/quarantine".to_string(),
            "not valid!".to_string(),
        )]
        .into(),
    );
    let s = status(
        pods.create(&PostParams::default(), &bad)
            .await
            .expect_err("invalid label"),
    );
    assert_eq!((s.code, s.reason.as_str()), (422, "Invalid"));
    assert!(
        s.message
            .starts_with("Pod \"q\" is invalid: metadata.labels: Invalid value: \"not valid!\""),
        "{}",
        s.message
    );

    let mut bad_name = pod.clone();
    bad_name.metadata.name = Some("Not_A_Name".into());
    let s = status(
        pods.create(&PostParams::default(), &bad_name)
            .await
            .expect_err("invalid name"),
    );
    assert_eq!(s.code, 422);

    let elsewhere: Api<Pod> = Api::namespaced(client.clone(), "nowhere");
    let mut homeless = pod.clone();
    homeless.metadata.namespace = None;
    let s = status(
        elsewhere
            .create(&PostParams::default(), &homeless)
            .await
            .expect_err("no namespace"),
    );
    assert_eq!(
        (s.code, s.message.as_str()),
        (404, "namespaces \"nowhere\" not found")
    );

    // Optimistic concurrency on replace.
    let mut stale = pods.get("p").await.expect("get");
    pods.patch(
        "p",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"a": "1"}}})),
    )
    .await
    .expect("patched");
    stale.metadata.labels = Some([("b".to_string(), "2".to_string())].into());
    let s = status(
        pods.replace("p", &PostParams::default(), &stale)
            .await
            .expect_err("stale"),
    );
    assert_eq!((s.code, s.reason.as_str()), (409, "Conflict"));

    // A pod's spec is immutable apart from images and a few fields.
    let mut moved = pods.get("p").await.expect("get");
    if let Some(spec) = moved.spec.as_mut() {
        spec.node_name = Some("node-9".into());
    }
    let s = status(
        pods.replace("p", &PostParams::default(), &moved)
            .await
            .expect_err("immutable"),
    );
    assert_eq!(s.code, 422);

    let s = status(
        pods.delete("nope", &DeleteParams::default())
            .await
            .expect_err("absent"),
    );
    assert_eq!(s.code, 404);
}

#[tokio::test]
async fn merge_strategic_and_json_patches() {
    let (kube, client) = start().await;
    kube.add_pod(PodFixture::new("shop", "p", "10.0.0.1").label("app", "web"))
        .expect("pod");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "shop");

    let merged = pods
        .patch(
            "p",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"metadata": {"labels": {"riposte.io/quarantine": "true", "app": null}}}),
            ),
        )
        .await
        .expect("merge patch");
    assert_eq!(
        merged
            .labels()
            .get("riposte.io/quarantine")
            .map(String::as_str),
        Some("true")
    );
    assert!(!merged.labels().contains_key("app"));

    let strategic = pods
        .patch(
            "p",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"containers": [{"name": "app", "image": "registry.example/app:2.0"}]},
                                     "metadata": {"annotations": {"riposte.io/reason": "c2"}}})),
        )
        .await
        .expect("strategic merge patch");
    let containers = strategic.spec.expect("spec").containers;
    assert_eq!(containers.len(), 1, "merged by name, not replaced");
    assert_eq!(
        containers[0].image.as_deref(),
        Some("registry.example/app:2.0")
    );
    assert_eq!(
        containers[0].ports.as_ref().map(Vec::len),
        Some(1),
        "other fields kept"
    );

    let json_patched = pods
        .patch(
            "p",
            &PatchParams::default(),
            &Patch::Json::<()>(serde_json::from_value(json!([
                {"op": "test", "path": "/metadata/labels/riposte.io~1quarantine", "value": "true"},
                {"op": "remove", "path": "/metadata/labels/riposte.io~1quarantine"},
                {"op": "add", "path": "/metadata/annotations/riposte.io~1released", "value": "yes"}
            ])).expect("json patch")),
        )
        .await
        .expect("JSON patch");
    assert!(!json_patched.labels().contains_key("riposte.io/quarantine"));
    assert_eq!(
        json_patched
            .annotations()
            .get("riposte.io/released")
            .map(String::as_str),
        Some("yes")
    );

    let failing = Patch::Json::<()>(
        serde_json::from_value(json!([
            {"op": "test", "path": "/metadata/labels/absent", "value": "x"}
        ]))
        .expect("json patch"),
    );
    let s = status(
        pods.patch("p", &PatchParams::default(), &failing)
            .await
            .expect_err("test fails"),
    );
    assert_eq!(s.code, 422);

    let s = status(
        pods.patch(
            "p",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"x": "bad value"}}})),
        )
        .await
        .expect_err("invalid label"),
    );
    assert_eq!(s.code, 422);

    let requests = kube.requests_matching("patch", "/api/v1/namespaces/shop/pods/p");
    let types: Vec<&str> = requests
        .iter()
        .filter_map(|r| r.content_type.as_deref())
        .collect();
    assert_eq!(
        types[..3],
        [
            "application/merge-patch+json",
            "application/strategic-merge-patch+json",
            "application/json-patch+json"
        ]
    );
}

fn apply_labels(labels: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": labels}})
}

#[tokio::test]
async fn server_side_apply_tracks_ownership() {
    let (kube, client) = start().await;
    kube.add_pod(PodFixture::new("shop", "p", "10.0.0.1").label("app", "web"))
        .expect("pod");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "shop");
    let riposte = PatchParams::apply("riposte");

    let quarantine = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p",
        "labels": {"riposte.io/quarantine": "true"},
        "annotations": {"riposte.io/reason": "C2 traffic", "riposte.io/expires-at": "2030-01-01T00:00:00Z"}}});
    let applied = pods
        .patch("p", &riposte, &Patch::Apply(&quarantine))
        .await
        .expect("apply");
    assert_eq!(
        applied
            .labels()
            .get("riposte.io/quarantine")
            .map(String::as_str),
        Some("true")
    );
    assert_eq!(
        applied.labels().get("app").map(String::as_str),
        Some("web"),
        "other labels kept"
    );
    let rv = applied.resource_version();
    let mf = applied
        .metadata
        .managed_fields
        .clone()
        .expect("managed fields");
    let mine = mf
        .iter()
        .find(|e| e.manager.as_deref() == Some("riposte"))
        .expect("riposte entry");
    assert_eq!(mine.operation.as_deref(), Some("Apply"));
    assert_eq!(mine.fields_type.as_deref(), Some("FieldsV1"));
    let fields = mine
        .fields_v1
        .as_ref()
        .map(|f| f.0.clone())
        .expect("fieldsV1");
    assert!(
        fields["f:metadata"]["f:labels"]
            .get("f:riposte.io/quarantine")
            .is_some(),
        "{fields}"
    );

    // Idempotent: the same apply changes nothing, not even the resourceVersion.
    let again = pods
        .patch("p", &riposte, &Patch::Apply(&quarantine))
        .await
        .expect("apply again");
    assert_eq!(again.resource_version(), rv);

    // Another manager may not change riposte's field without force.
    let other = apply_labels(json!({"riposte.io/quarantine": "false"}));
    let s = status(
        pods.patch("p", &PatchParams::apply("kubectl"), &Patch::Apply(&other))
            .await
            .expect_err("conflict"),
    );
    assert_eq!((s.code, s.reason.as_str()), (409, "Conflict"));
    assert!(
        s.message.contains("conflict with \"riposte\""),
        "{}",
        s.message
    );
    assert!(
        s.message.contains(".metadata.labels.riposte.io/quarantine"),
        "{}",
        s.message
    );
    let forced = pods
        .patch(
            "p",
            &PatchParams::apply("kubectl").force(),
            &Patch::Apply(&other),
        )
        .await
        .expect("forced apply");
    assert_eq!(
        forced
            .labels()
            .get("riposte.io/quarantine")
            .map(String::as_str),
        Some("false")
    );

    // Applying without a field removes it when riposte alone owned it.
    let back = pods
        .patch("p", &riposte.clone().force(), &Patch::Apply(&quarantine))
        .await
        .expect("take it back");
    assert_eq!(
        back.labels()
            .get("riposte.io/quarantine")
            .map(String::as_str),
        Some("true")
    );
    let release = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}});
    let released = pods
        .patch("p", &riposte, &Patch::Apply(&release))
        .await
        .expect("release");
    assert!(
        !released.labels().contains_key("riposte.io/quarantine"),
        "{:?}",
        released.labels()
    );
    assert!(
        released.annotations().is_empty(),
        "{:?}",
        released.annotations()
    );
    assert_eq!(
        released.labels().get("app").map(String::as_str),
        Some("web")
    );

    // Apply creates what does not exist.
    let policies: Api<NetworkPolicy> = Api::namespaced(client.clone(), "shop");
    let deny_all = json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "riposte-quarantine", "labels": {"app.kubernetes.io/managed-by": "riposte"}},
        "spec": {"podSelector": {"matchExpressions": [{"key": "riposte.io/quarantine", "operator": "Exists"}]},
                 "policyTypes": ["Ingress", "Egress"]}});
    let np = policies
        .patch("riposte-quarantine", &riposte, &Patch::Apply(&deny_all))
        .await
        .expect("apply creates");
    assert_eq!(np.metadata.generation, Some(1));
    assert!(kube.requests().iter().any(
        |r| r.is_apply_by("riposte") && r.path.ends_with("/networkpolicies/riposte-quarantine")
    ));
    let created = kube.requests_matching(
        "patch",
        "/apis/networking.k8s.io/v1/namespaces/shop/networkpolicies/riposte-quarantine",
    );
    assert_eq!(created.last().map(|r| r.status), Some(201));

    // Apply needs a field manager, and apiVersion/kind in the body.
    let http = raw_client(&kube);
    let resp = http
        .patch(format!("{}/api/v1/namespaces/shop/pods/p", kube.url()))
        .bearer_auth(kube.token())
        .header("Content-Type", "application/apply-patch+yaml")
        .body("apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n")
        .send()
        .await
        .expect("response");
    assert_eq!(resp.status(), 422);
    let resp = http
        .patch(format!(
            "{}/api/v1/namespaces/shop/pods/p?fieldManager=riposte",
            kube.url()
        ))
        .bearer_auth(kube.token())
        .header("Content-Type", "application/apply-patch+yaml")
        .body("metadata:\n  name: p\n  labels:\n    a: b\n")
        .send()
        .await
        .expect("response");
    assert_eq!(resp.status(), 400);
    // YAML bodies work, as kubectl sends them.
    let resp = http
        .patch(format!(
            "{}/api/v1/namespaces/shop/pods/p?fieldManager=kubectl",
            kube.url()
        ))
        .bearer_auth(kube.token())
        .header("Content-Type", "application/apply-patch+yaml")
        .body("apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  labels:\n    owner: sre\n")
        .send()
        .await
        .expect("response");
    assert_eq!(resp.status(), 200);
    assert_eq!(
        kube.get("pods", "shop", "p").expect("pod")["metadata"]["labels"]["owner"],
        "sre"
    );
}

#[tokio::test]
async fn unknown_fields_are_dropped_with_a_warning_or_refused_when_strict() {
    let (kube, client) = start().await;
    kube.add_pod(PodFixture::new("shop", "p", "10.0.0.1"))
        .expect("pod");
    let pods: Api<Pod> = Api::namespaced(client, "shop");
    let typo =
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labelz": {"a": "b"}}});
    pods.patch("p", &PatchParams::apply("riposte"), &Patch::Apply(&typo))
        .await
        .expect("warned, not refused");
    assert!(kube.get("pods", "shop", "p").expect("pod")["metadata"]
        .get("labelz")
        .is_none());
    let s = status(
        pods.patch(
            "p",
            &PatchParams::apply("riposte").validation_strict(),
            &Patch::Apply(&typo),
        )
        .await
        .expect_err("strict"),
    );
    assert_eq!(s.code, 400);
    assert!(
        s.message.contains("unknown field \"metadata.labelz\""),
        "{}",
        s.message
    );
}

#[tokio::test]
async fn status_subresource_is_separate_from_the_main_resource() {
    let (kube, client) = start().await;
    kube.add_pod(PodFixture::new("shop", "p", "10.0.0.1"))
        .expect("pod");
    let pods: Api<Pod> = Api::namespaced(client, "shop");
    let ignored = pods
        .patch(
            "p",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Failed"}})),
        )
        .await
        .expect("patch");
    assert_eq!(
        ignored.status.and_then(|s| s.phase).as_deref(),
        Some("Running")
    );
    let changed = pods
        .patch_status(
            "p",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"status": {"phase": "Failed"}, "metadata": {"labels": {"x": "y"}}}),
            ),
        )
        .await
        .expect("patch status");
    assert_eq!(
        changed.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Failed")
    );
    assert!(
        !changed.labels().contains_key("x"),
        "status writes change only status"
    );
}

#[tokio::test]
async fn raw_watch_sees_added_modified_deleted_and_gone() {
    let (kube, client) = start().await;
    kube.add_namespace("shop", &[]).expect("namespace");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "shop");
    let start_rv = pods
        .list(&ListParams::default())
        .await
        .expect("list")
        .metadata
        .resource_version
        .expect("rv");
    let mut events = pods
        .watch(&WatchParams::default().timeout(60), &start_rv)
        .await
        .expect("watch")
        .boxed();
    kube.add_pod(PodFixture::new("shop", "p", "10.0.0.1").label("app", "web"))
        .expect("pod");
    match next_event(&mut events).await.expect("event") {
        WatchEvent::Added(p) => assert_eq!(p.name_any(), "p"),
        other => panic!("expected ADDED, got {other:?}"),
    }
    kube.modify("pods", "shop", "p", |p| {
        p["metadata"]["labels"]["app"] = json!("api")
    })
    .expect("modify");
    match next_event(&mut events).await.expect("event") {
        WatchEvent::Modified(p) => {
            assert_eq!(p.labels().get("app").map(String::as_str), Some("api"))
        }
        other => panic!("expected MODIFIED, got {other:?}"),
    }
    kube.delete("pods", "shop", "p").expect("delete");
    match next_event(&mut events).await.expect("event") {
        WatchEvent::Deleted(p) => assert_eq!(p.name_any(), "p"),
        other => panic!("expected DELETED, got {other:?}"),
    }

    // Label-selected watches see objects leave and join their selection.
    let mut web = pods
        .watch(&WatchParams::default().labels("app=web").timeout(60), "0")
        .await
        .expect("watch")
        .boxed();
    kube.add_pod(PodFixture::new("shop", "q", "10.0.0.2").label("app", "web"))
        .expect("pod");
    assert!(matches!(
        next_event(&mut web).await.expect("event"),
        WatchEvent::Added(_)
    ));
    kube.modify("pods", "shop", "q", |p| {
        p["metadata"]["labels"]["app"] = json!("db")
    })
    .expect("modify");
    assert!(matches!(
        next_event(&mut web).await.expect("event"),
        WatchEvent::Deleted(_)
    ));

    // A resourceVersion older than the retained history: ERROR 410.
    kube.compact();
    let mut old = pods
        .watch(&WatchParams::default(), &start_rv)
        .await
        .expect("watch")
        .boxed();
    match next_event(&mut old).await.expect("event") {
        WatchEvent::Error(e) => assert_eq!((e.code, e.reason.as_str()), (410, "Expired")),
        other => panic!("expected ERROR 410, got {other:?}"),
    }

    // Bookmarks carry the newest resourceVersion.
    let kube_fast = KubeApiServer::start_with(Options {
        bookmark_interval: Duration::from_millis(100),
        ..Options::default()
    })
    .await
    .expect("starts");
    let fast: Api<Pod> = Api::namespaced(kube_fast.client().await.expect("client"), "default");
    let mut marks = fast
        .watch(&WatchParams::default().timeout(60), "0")
        .await
        .expect("watch")
        .boxed();
    match next_event(&mut marks).await.expect("event") {
        WatchEvent::Bookmark(b) => assert_eq!(
            b.metadata.resource_version,
            kube_fast.resource_version().to_string()
        ),
        other => panic!("expected BOOKMARK, got {other:?}"),
    }
}

/// The names a runtime watcher's events are about, with their kind.
fn describe(e: &watcher::Event<Pod>) -> String {
    match e {
        watcher::Event::Apply(p) => format!("apply {}", p.name_any()),
        watcher::Event::Delete(p) => format!("delete {}", p.name_any()),
        watcher::Event::Init => "init".into(),
        watcher::Event::InitApply(p) => format!("init-apply {}", p.name_any()),
        watcher::Event::InitDone => "init-done".into(),
    }
}

async fn wait_for(
    events: &mut (impl futures::Stream<Item = Result<watcher::Event<Pod>, watcher::Error>> + Unpin),
    want: &str,
) -> Vec<String> {
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let next = tokio::time::timeout(left, events.next()).await;
        match next {
            Ok(Some(Ok(e))) => {
                let d = describe(&e);
                seen.push(d.clone());
                if d == want {
                    return seen;
                }
            }
            Ok(Some(Err(_))) => seen.push("error".into()),
            Ok(None) => panic!("watcher ended; saw {seen:?}"),
            Err(_) => panic!("no {want:?} within 30 s; saw {seen:?}"),
        }
    }
}

#[tokio::test]
async fn runtime_watcher_recovers_from_gone_and_from_a_restart() {
    let (kube, client) = start().await;
    kube.add_pod(PodFixture::new("shop", "a", "10.0.0.1"))
        .expect("pod");
    let pods: Api<Pod> = Api::all(client);
    let mut events = watcher(pods, watcher::Config::default())
        .default_backoff()
        .boxed();
    let seen = wait_for(&mut events, "init-done").await;
    assert!(seen.contains(&"init-apply a".to_string()), "{seen:?}");

    kube.add_pod(PodFixture::new("shop", "b", "10.0.0.2"))
        .expect("pod");
    wait_for(&mut events, "apply b").await;
    kube.modify("pods", "shop", "b", |p| {
        p["metadata"]["labels"] = json!({"x": "y"})
    })
    .expect("modify");
    wait_for(&mut events, "apply b").await;
    kube.delete("pods", "shop", "a").expect("delete");
    wait_for(&mut events, "delete a").await;

    // The server goes away; meanwhile a pod is added and the history
    // compacted. Back on the same port, the re-watch from the watcher's
    // last resourceVersion gets 410 Expired and the watcher relists.
    let lists_before = kube.requests_matching("list", "/api/v1/pods").len();
    kube.stop().await;
    kube.add_pod(PodFixture::new("shop", "c", "10.0.0.3"))
        .expect("pod");
    kube.compact();
    tokio::time::sleep(Duration::from_millis(300)).await;
    kube.restart().await.expect("restart");
    let seen = wait_for(&mut events, "init-done").await;
    assert!(seen.contains(&"init-apply c".to_string()), "{seen:?}");
    assert!(seen.contains(&"init-apply b".to_string()), "{seen:?}");
    assert!(
        kube.requests_matching("list", "/api/v1/pods").len() > lists_before,
        "relisted"
    );

    // Down and up again without compaction: the watch resumes where it
    // stopped and sees what changed in between.
    kube.stop().await;
    kube.add_pod(PodFixture::new("shop", "d", "10.0.0.4"))
        .expect("pod");
    kube.restart().await.expect("restart");
    let seen = wait_for(&mut events, "apply d").await;
    assert!(
        !seen.contains(&"init".to_string()),
        "no relist needed: {seen:?}"
    );

    // Watches dropped by the server are resumed.
    kube.drop_watches();
    kube.add_pod(PodFixture::new("shop", "e", "10.0.0.5"))
        .expect("pod");
    wait_for(&mut events, "apply e").await;
}

#[tokio::test]
async fn streaming_list_watchers_get_initial_events_and_the_end_bookmark() {
    let (kube, client) = start().await;
    kube.add_pod(PodFixture::new("shop", "a", "10.0.0.1"))
        .expect("pod");
    kube.add_pod(PodFixture::new("shop", "b", "10.0.0.2"))
        .expect("pod");
    let pods: Api<Pod> = Api::namespaced(client, "shop");
    let mut events = watcher(pods, watcher::Config::default().streaming_lists())
        .default_backoff()
        .boxed();
    let seen = wait_for(&mut events, "init-done").await;
    assert_eq!(seen, ["init", "init-apply a", "init-apply b", "init-done"]);
    let watches = kube.requests_matching("watch", "/api/v1/namespaces/shop/pods");
    assert_eq!(watches[0].param("sendInitialEvents"), Some("true"));
    assert!(
        kube.requests_matching("list", "/api/v1/namespaces/shop/pods")
            .is_empty(),
        "no list needed"
    );
    kube.add_pod(PodFixture::new("shop", "c", "10.0.0.3"))
        .expect("pod");
    wait_for(&mut events, "apply c").await;
}

#[tokio::test]
async fn metadata_watcher_and_list_metadata_work() {
    let (kube, client) = start().await;
    kube.add_namespace("shop", &[("riposte.io/exempt", "true")])
        .expect("namespace");
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let metas = namespaces
        .list_metadata(&ListParams::default())
        .await
        .expect("list metadata");
    let shop = metas
        .items
        .iter()
        .find(|m| m.name_any() == "shop")
        .expect("shop listed");
    assert_eq!(
        shop.labels().get("riposte.io/exempt").map(String::as_str),
        Some("true")
    );
    assert_eq!(
        shop.labels()
            .get("kubernetes.io/metadata.name")
            .map(String::as_str),
        Some("shop")
    );
    let partial: Api<kube::core::PartialObjectMeta<Namespace>> = Api::all(client);
    let mut stream = watcher(partial, watcher::Config::default())
        .default_backoff()
        .applied_objects()
        .boxed();
    let mut names = Vec::new();
    while names.len() < 5 {
        let ns = next_event(&mut stream).await.expect("namespace");
        names.push(ns.name_any());
    }
    names.sort();
    assert_eq!(
        names,
        [
            "default",
            "kube-node-lease",
            "kube-public",
            "kube-system",
            "shop"
        ]
    );
}

#[tokio::test]
async fn events_are_created_in_both_apis() {
    let (kube, client) = start().await;
    let pod = kube
        .add_pod(PodFixture::new("shop", "p", "10.0.0.1"))
        .expect("pod");
    let reference = ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Pod".into()),
        name: Some("p".into()),
        namespace: Some("shop".into()),
        uid: pod["metadata"]["uid"].as_str().map(str::to_string),
        ..ObjectReference::default()
    };

    let recorder = kube::runtime::events::Recorder::new(
        client.clone(),
        kube::runtime::events::Reporter {
            controller: "riposte".into(),
            instance: Some("riposte-0".into()),
        },
    );
    let ev = kube::runtime::events::Event {
        type_: kube::runtime::events::EventType::Warning,
        reason: "RiposteQuarantined".into(),
        note: Some("C2 traffic to 203.0.113.9".into()),
        action: "Quarantine".into(),
        secondary: None,
    };
    recorder
        .publish(&ev, &reference)
        .await
        .expect("event published");
    recorder
        .publish(&ev, &reference)
        .await
        .expect("series patched");
    let v1: Api<EventV1> = Api::namespaced(client.clone(), "shop");
    let list = v1
        .list(&ListParams::default().fields("reason=RiposteQuarantined"))
        .await
        .expect("list");
    assert_eq!(list.items.len(), 1);
    assert_eq!(list.items[0].series.as_ref().map(|s| s.count), Some(2));
    assert_eq!(
        list.items[0]
            .regarding
            .as_ref()
            .and_then(|r| r.name.as_deref()),
        Some("p")
    );

    let invalid = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event",
        "metadata": {"name": "bad", "namespace": "shop"}, "type": "Normal", "reason": "X"});
    let s = status(
        v1.create(
            &PostParams::default(),
            &serde_json::from_value(invalid).expect("event"),
        )
        .await
        .expect_err("missing reporting fields"),
    );
    assert_eq!(s.code, 422);

    let about = kube.events_about("shop", "p");
    assert_eq!(about.len(), 1);
    assert_eq!(
        (
            about[0].reason.as_str(),
            about[0].type_.as_str(),
            about[0].reporter.as_str(),
            about[0].count
        ),
        ("RiposteQuarantined", "Warning", "riposte", 2)
    );
    assert_eq!(about[0].message, "C2 traffic to 203.0.113.9");

    let core: Api<CoreEvent> = Api::namespaced(client, "shop");
    let event: CoreEvent = serde_json::from_value(json!({
        "metadata": {"generateName": "p."},
        "involvedObject": {"kind": "Pod", "namespace": "shop", "name": "p"},
        "reason": "RiposteReleased", "message": "released", "type": "Normal",
        "source": {"component": "riposte"}, "count": 1,
    }))
    .expect("core event");
    let created = core
        .create(&PostParams::default(), &event)
        .await
        .expect("core event created");
    assert!(created.name_any().starts_with("p."));
    let listed = core
        .list(&ListParams::default().fields("involvedObject.name=p,source=riposte"))
        .await
        .expect("list");
    assert_eq!(listed.items.len(), 1);
    let about = kube.events_about("shop", "p");
    assert_eq!(about.len(), 2, "both APIs");
    assert_eq!(about[1].api_version, "v1");
    assert_eq!(about[1].reason, "RiposteReleased");
}

#[tokio::test]
async fn cilium_and_calico_policies_through_dynamic_objects() {
    let (kube, client) = start().await;
    kube.add_namespace("shop", &[]).expect("namespace");
    let cnp = ApiResource::from_gvk(&GroupVersionKind::gvk(
        "cilium.io",
        "v2",
        "CiliumNetworkPolicy",
    ));
    let calico = ApiResource::from_gvk(&GroupVersionKind::gvk(
        "crd.projectcalico.org",
        "v1",
        "NetworkPolicy",
    ));
    assert_eq!(cnp.plural, "ciliumnetworkpolicies");

    let cilium: Api<DynamicObject> = Api::namespaced_with(client.clone(), "shop", &cnp);
    let body = json!({"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy",
        "metadata": {"name": "riposte-egress-deny", "labels": {"app.kubernetes.io/managed-by": "riposte"}},
        "spec": {"endpointSelector": {"matchLabels": {"app": "checkout"}},
                 "egressDeny": [{"toCIDR": ["203.0.113.9/32"]}]}});
    let applied = cilium
        .patch(
            "riposte-egress-deny",
            &PatchParams::apply("riposte"),
            &Patch::Apply(&body),
        )
        .await
        .expect("apply a CiliumNetworkPolicy");
    assert_eq!(
        applied.data["spec"]["egressDeny"][0]["toCIDR"][0],
        "203.0.113.9/32"
    );
    let listed = cilium
        .list(&ListParams::default().labels("app.kubernetes.io/managed-by=riposte"))
        .await
        .expect("list");
    assert_eq!(listed.items.len(), 1);
    let s = status(
        cilium
            .patch(
                "riposte-egress-deny",
                &PatchParams::default(),
                &Patch::Strategic(json!({"spec": {}})),
            )
            .await
            .expect_err("no strategic merge for custom resources"),
    );
    assert_eq!((s.code, s.reason.as_str()), (415, "UnsupportedMediaType"));

    let calico_api: Api<DynamicObject> = Api::namespaced_with(client.clone(), "shop", &calico);
    let mut policy = DynamicObject::new("riposte-deny", &calico).within("shop");
    policy.data = json!({"spec": {"selector": "app == 'checkout'", "types": ["Egress"],
        "egress": [{"action": "Deny", "destination": {"nets": ["203.0.113.9/32"]}}]}});
    calico_api
        .create(&PostParams::default(), &policy)
        .await
        .expect("create a Calico policy");
    let got = calico_api.get("riposte-deny").await.expect("get");
    assert_eq!(got.data["spec"]["egress"][0]["action"], "Deny");
    assert_eq!(
        got.types.as_ref().map(|t| t.api_version.as_str()),
        Some("crd.projectcalico.org/v1")
    );
    calico_api
        .delete("riposte-deny", &DeleteParams::default())
        .await
        .expect("delete");
    assert!(kube
        .get(
            "networkpolicies.crd.projectcalico.org",
            "shop",
            "riposte-deny"
        )
        .is_none());
    assert!(
        kube.list("networkpolicies", Some("shop")).is_empty(),
        "the built-in kind is separate"
    );
}

#[tokio::test]
async fn deletes_collect_garbage_and_collections_go_by_selector() {
    let (kube, client) = start().await;
    let web = kube
        .add_deployment("shop", "web", &[("app", "web")])
        .expect("deployment");
    kube.add_pod(web.pod("10.0.0.1")).expect("pod");
    kube.add_pod(web.pod("10.0.0.2")).expect("pod");
    kube.add_pod(PodFixture::new("shop", "loner", "10.0.0.3").label("app", "other"))
        .expect("pod");
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "shop");
    deployments
        .delete("web", &DeleteParams::background())
        .await
        .expect("deleted");
    let rs: Api<ReplicaSet> = Api::namespaced(client.clone(), "shop");
    assert!(rs
        .list(&ListParams::default())
        .await
        .expect("list")
        .items
        .is_empty());
    assert_eq!(
        kube.list("pods", Some("shop")).len(),
        1,
        "the deployment's pods are gone"
    );

    kube.add_pod(PodFixture::new("shop", "q1", "10.0.0.4").label("riposte.io/quarantine", "true"))
        .expect("pod");
    kube.add_pod(PodFixture::new("shop", "q2", "10.0.0.5").label("riposte.io/quarantine", "true"))
        .expect("pod");
    let pods: Api<Pod> = Api::namespaced(client, "shop");
    let gone = pods
        .delete_collection(
            &DeleteParams::default(),
            &ListParams::default().labels("riposte.io/quarantine"),
        )
        .await
        .expect("delete collection");
    let names: Vec<String> = gone
        .left()
        .map(|l| l.items.iter().map(|p| p.name_any()).collect())
        .unwrap_or_default();
    assert_eq!(names, ["q1", "q2"]);
    let left: Vec<String> = kube
        .list("pods", Some("shop"))
        .iter()
        .filter_map(|p| p["metadata"]["name"].as_str().map(str::to_string))
        .collect();
    assert_eq!(left, ["loner"]);

    // Finalizers keep an object until they are removed.
    kube.add_pod(PodFixture::new("shop", "held", "10.0.0.6"))
        .expect("pod");
    kube.modify("pods", "shop", "held", |p| {
        p["metadata"]["finalizers"] = json!(["riposte.io/forensics"])
    })
    .expect("finalizer");
    let r = pods
        .delete("held", &DeleteParams::default())
        .await
        .expect("delete accepted");
    let kept = r.left().expect("the object");
    assert!(kept.metadata.deletion_timestamp.is_some());
    assert!(kube.get("pods", "shop", "held").is_some());
    pods.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .expect("finalizer removed");
    assert!(
        kube.get("pods", "shop", "held").is_none(),
        "deleted once its finalizers are gone"
    );
}

#[tokio::test]
async fn injected_faults_fail_then_succeed() {
    let (kube, client) = start().await;
    kube.add_pod(PodFixture::new("shop", "p", "10.0.0.1"))
        .expect("pod");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "shop");

    kube.inject(Fault::status(500).verb("get"));
    let s = status(pods.get("p").await.expect_err("500"));
    assert_eq!((s.code, s.reason.as_str()), (500, "InternalError"));
    pods.get("p").await.expect("then success");

    // kube's default client retries 429 honouring Retry-After.
    kube.clear_requests();
    kube.inject(Fault::too_many_requests(1).verb("patch"));
    let started = Instant::now();
    pods.patch(
        "p",
        &PatchParams::apply("riposte"),
        &Patch::Apply(apply_labels(json!({"a": "b"}))),
    )
    .await
    .expect("retried after 429");
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "waited for Retry-After"
    );
    let statuses: Vec<u16> = kube
        .requests_matching("patch", "/api/v1/namespaces/shop/pods/p")
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, [429, 200]);

    // Without retries the 429 reaches the caller, Retry-After included.
    let mut config = kube.client_config().expect("config");
    config.default_retry = false;
    let plain: Api<Pod> = Api::namespaced(Client::try_from(config).expect("client"), "shop");
    kube.inject(Fault::too_many_requests(2).path_prefix("/api/v1/namespaces/shop/pods"));
    let s = status(plain.get("p").await.expect_err("429"));
    assert_eq!((s.code, s.reason.as_str()), (429, "TooManyRequests"));
    assert_eq!(s.details.map(|d| d.retry_after_seconds), Some(2));

    kube.inject(Fault::hang(Duration::from_millis(400)).verb("list"));
    let started = Instant::now();
    plain
        .list(&ListParams::default())
        .await
        .expect("slow, then served");
    assert!(started.elapsed() >= Duration::from_millis(400));

    kube.inject(Fault::reset().verb("get"));
    assert!(plain.get("p").await.is_err(), "connection dropped");
    plain.get("p").await.expect("served again");
    assert_eq!(kube.pending_faults(), 0);

    // Down: connections are refused; back up on the same port.
    kube.stop().await;
    assert!(plain.get("p").await.is_err());
    kube.restart().await.expect("restart");
    plain.get("p").await.expect("back");
}

#[tokio::test]
async fn plain_http_is_offered_when_asked() {
    let kube = KubeApiServer::start_with(Options {
        plain_http: true,
        ..Options::default()
    })
    .await
    .expect("starts");
    let url = kube.plain_url().expect("plain URL");
    let resp = reqwest::Client::new()
        .get(format!("{url}/version"))
        .bearer_auth(kube.token())
        .send()
        .await
        .expect("response");
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.expect("JSON");
    assert_eq!(v["minor"], "33");
}

#[tokio::test]
async fn kubeconfig_loads_into_a_working_client() {
    let kube = KubeApiServer::start().await.expect("starts");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("kubeconfig");
    kube.write_kubeconfig(&path).expect("written");
    let kc = kube::config::Kubeconfig::read_from(&path).expect("parses");
    let config =
        kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await
            .expect("config");
    let client = Client::try_from(config).expect("client");
    let ns: Api<Namespace> = Api::all(client);
    ns.get("kube-system").await.expect("served");
}

#[tokio::test]
async fn ten_thousand_pods_seed_and_list_quickly() {
    let (kube, client) = start().await;
    let started = Instant::now();
    let n = kube
        .seed_pods((0..10_000u32).map(|i| {
            PodFixture::new(
                &format!("ns-{}", i % 20),
                &format!("pod-{i}"),
                &format!("10.{}.{}.{}", 100 + (i >> 16), (i >> 8) & 255, i & 255),
            )
            .label("app", &format!("app-{}", i % 50))
        }))
        .expect("seeded");
    let seeded = started.elapsed();
    assert_eq!(n, 10_000);

    let pods: Api<Pod> = Api::all(client);
    let started = Instant::now();
    let mut total = 0;
    let mut lp = ListParams::default().limit(500);
    loop {
        let page = pods.list(&lp).await.expect("page");
        total += page.items.len();
        match page.metadata.continue_ {
            Some(t) if !t.is_empty() => lp = ListParams::default().limit(500).continue_token(&t),
            _ => break,
        }
    }
    let listed = started.elapsed();
    assert_eq!(total, 10_000);
    let one = pods
        .list(&ListParams::default().fields("status.podIP=10.100.39.15"))
        .await
        .expect("by IP");
    assert_eq!(one.items.len(), 1);
    eprintln!("seeded 10000 pods in {seeded:?}; listed them in 20 pages in {listed:?}");
    assert!(seeded < Duration::from_secs(20), "seeding took {seeded:?}");
}

#[tokio::test]
async fn rbac_restriction_gives_the_api_servers_403() {
    let (kube, client) = start().await;
    kube.add_pod(PodFixture::new("shop", "p", "10.0.0.1"))
        .expect("pod");
    kube.restrict_to_manifests(
        "system:serviceaccount:riposte:riposte",
        r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: riposte}
rules:
  - apiGroups: [""]
    resources: ["pods"]
    verbs: ["get", "list", "watch", "patch"]
"#,
    )
    .expect("roles");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "shop");
    pods.get("p").await.expect("allowed");
    pods.patch(
        "p",
        &PatchParams::apply("riposte"),
        &Patch::Apply(apply_labels(json!({"a": "b"}))),
    )
    .await
    .expect("allowed");
    let s = status(
        pods.delete("p", &DeleteParams::default())
            .await
            .expect_err("forbidden"),
    );
    assert_eq!((s.code, s.reason.as_str()), (403, "Forbidden"));
    assert_eq!(
        s.message,
        "pods \"p\" is forbidden: User \"system:serviceaccount:riposte:riposte\" cannot delete resource \"pods\" in API group \"\" in the namespace \"shop\""
    );
    let np: Api<NetworkPolicy> = Api::namespaced(client.clone(), "shop");
    assert_eq!(
        status(
            np.list(&ListParams::default())
                .await
                .expect_err("forbidden")
        )
        .code,
        403
    );
    Discovery::new(client)
        .run()
        .await
        .expect("discovery stays open");
    kube.unrestrict();
    pods.delete("p", &DeleteParams::default())
        .await
        .expect("allowed again");
}

#[tokio::test]
async fn network_policies_are_defaulted_like_a_real_cluster() {
    let (kube, client) = start().await;
    kube.add_namespace("shop", &[]).expect("namespace");
    let np: Api<NetworkPolicy> = Api::namespaced(client, "shop");
    // Forgetting policyTypes makes a "deny all" deny only ingress.
    let forgot = json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "deny-all"}, "spec": {"podSelector": {}}});
    let stored = np
        .patch(
            "deny-all",
            &PatchParams::apply("riposte"),
            &Patch::Apply(&forgot),
        )
        .await
        .expect("applied");
    assert_eq!(
        stored.spec.and_then(|s| s.policy_types),
        Some(vec!["Ingress".to_string()])
    );
}

#[tokio::test]
async fn odd_requests_get_the_api_servers_answers_never_a_crash() {
    let (kube, _client) = start().await;
    kube.add_pod(PodFixture::new("shop", "p", "10.0.0.1"))
        .expect("pod");
    kube.compact();
    let http = raw_client(&kube);
    let base = kube.url();
    let send = |method: reqwest::Method, path: &str, ct: &str, body: Vec<u8>| {
        let mut rb = http
            .request(method, format!("{base}{path}"))
            .bearer_auth(kube.token());
        if !ct.is_empty() {
            rb = rb.header("Content-Type", ct);
        }
        rb.body(body).send()
    };
    use reqwest::Method as M;
    let pods = "/api/v1/namespaces/shop/pods";
    // (method, path, content type, body, expected code, expected reason)
    type Case<'a> = (M, String, &'a str, Vec<u8>, u16, &'a str);
    let cases: Vec<Case> = vec![
        (M::POST, pods.into(), "application/json", b"{not json".to_vec(), 400, "BadRequest"),
        (M::POST, pods.into(), "application/json", b"[1,2]".to_vec(), 400, "BadRequest"),
        (M::POST, pods.into(), "application/json",
         br#"{"apiVersion":"v1","kind":"Service","metadata":{"name":"x"}}"#.to_vec(), 400, "BadRequest"),
        (M::POST, pods.into(), "application/json",
         br#"{"metadata":{"name":"x","labels":"app=web"}}"#.to_vec(), 400, "BadRequest"),
        (M::POST, pods.into(), "application/json",
         br#"{"metadata":{"name":"x","resourceVersion":"5"},"spec":{"containers":[{"name":"a","image":"b"}]}}"#.to_vec(), 500, "InternalError"),
        (M::POST, pods.into(), "text/plain", b"hello".to_vec(), 415, "UnsupportedMediaType"),
        (M::PATCH, format!("{pods}/p"), "application/xml", b"<a/>".to_vec(), 415, "UnsupportedMediaType"),
        (M::PATCH, format!("{pods}/p"), "application/merge-patch+json", b"[]".to_vec(), 400, "BadRequest"),
        (M::PATCH, format!("{pods}/p?force=true"), "application/merge-patch+json", b"{}".to_vec(), 422, "Invalid"),
        (M::PATCH, format!("{pods}/p"), "application/json-patch+json", br#"[{"op":"move","from":"/a","path":"/b"}]"#.to_vec(), 422, "Invalid"),
        (M::PATCH, format!("{pods}/p"), "application/merge-patch+json",
         br#"{"metadata":{"name":"q"}}"#.to_vec(), 422, "Invalid"),
        (M::PUT, format!("{pods}/p"), "application/json",
         br#"{"metadata":{"name":"q"}}"#.to_vec(), 400, "BadRequest"),
        (M::DELETE, format!("{pods}/p?propagationPolicy=Sideways"), "", vec![], 422, "Invalid"),
        (M::GET, format!("{pods}?continue=garbage"), "", vec![], 400, "BadRequest"),
        (M::GET, format!("{pods}?labelSelector=a%20in%20(b"), "", vec![], 400, "BadRequest"),
        (M::GET, format!("{pods}?resourceVersion=1&resourceVersionMatch=Exact"), "", vec![], 410, "Expired"),
        (M::GET, format!("{pods}?resourceVersion=99999&resourceVersionMatch=NotOlderThan"), "", vec![], 504, "Timeout"),
        (M::GET, format!("{pods}?watch=1&resourceVersionMatch=NotOlderThan"), "", vec![], 422, "Invalid"),
        (M::GET, "/api/v1/namespaces/shop/pods/p/exec".into(), "", vec![], 404, "NotFound"),
        (M::GET, "/apis/unknown.example/v1/things".into(), "", vec![], 404, "NotFound"),
        (M::PATCH, pods.into(), "application/merge-patch+json", b"{}".to_vec(), 405, "MethodNotAllowed"),
        (M::POST, "/api/v1/pods".into(), "application/json", b"{}".to_vec(), 405, "MethodNotAllowed"),
        (M::POST, pods.into(), "application/json", vec![b' '; 3 * 1024 * 1024 + 1], 413, "RequestEntityTooLarge"),
    ];
    for (method, path, ct, body, code, reason) in cases {
        let what = format!("{method} {path} ({ct})");
        let resp = send(method, &path, ct, body).await.expect("a response");
        assert_eq!(resp.status().as_u16(), code, "{what}");
        let status: Value = resp.json().await.expect("a Status body");
        assert_eq!(status["kind"], "Status", "{what}");
        assert_eq!(status["reason"], reason, "{what}: {status}");
    }
    // Still serving.
    let resp = send(M::GET, &format!("{pods}/p"), "", vec![])
        .await
        .expect("a response");
    assert_eq!(resp.status(), 200);
    // An absurd watch timeout is served, not a crash.
    let resp = http
        .get(format!(
            "{base}{pods}?watch=true&timeoutSeconds=18446744073709551615"
        ))
        .bearer_auth(kube.token())
        .send()
        .await
        .expect("a response");
    assert_eq!(resp.status(), 200);
}
