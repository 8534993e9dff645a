//! One HTTP request, start to end: authentication, injected faults,
//! routing, the verb, the response, and the request log entry.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use serde_json::{json, Value};

use super::discovery;
use super::faults::FaultAction;
use super::log::RequestRecord;
use super::ops::{self, Ctx, DeleteOpts, FieldValidation, PatchType};
use super::query::{self, Continue, ListAt};
use super::resources::ResourceType;
use super::route::{self, Route};
use super::selectors::{labels_of, FieldSelector, LabelSelector};
use super::server::Shared;
use super::status::{ApiError, Cause};
use super::store::ns_name;
use super::watch::{self, WatchRequest};

/// The API server refuses request bodies over 3 MiB.
pub const MAX_BODY: usize = 3 * 1024 * 1024;

/// Watches without `timeoutSeconds` end after this long.
pub const DEFAULT_WATCH_TIMEOUT: Duration = Duration::from_secs(1800);

/// The longest watch served, whatever `timeoutSeconds` asks (a year).
pub const MAX_WATCH_TIMEOUT_SECS: u64 = 365 * 24 * 3600;

/// Returned to hyper to drop the connection without answering.
#[derive(Debug)]
pub struct Abort;

impl std::fmt::Display for Abort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection reset by injected fault")
    }
}

impl std::error::Error for Abort {}

fn header_str(h: &HeaderMap, name: header::HeaderName) -> Option<String> {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// Serves one request.
pub async fn handle<B>(shared: Arc<Shared>, req: Request<B>) -> Result<Response<Body>, Abort>
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let raw_query = parts.uri.query().unwrap_or("").to_string();
    let params = query::parse(&raw_query);
    let route = route::parse(&path);
    let verb = route::verb(&parts.method, &route, &params);
    let content_type = header_str(&parts.headers, header::CONTENT_TYPE);
    let mut record = RequestRecord {
        method: parts.method.to_string(),
        verb: match &route {
            Route::Resource { .. } => verb.unwrap_or("").to_string(),
            _ => String::new(),
        },
        path: path.clone(),
        query: raw_query,
        params: params.clone(),
        content_type: content_type.clone(),
        user_agent: header_str(&parts.headers, header::USER_AGENT),
        field_manager: params.get("fieldManager").cloned(),
        force: query::truthy(params.get("force")),
        body: None,
        status: 0,
        reason: None,
    };

    let bytes = match Limited::new(body, MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            let mut err = ApiError::bad_request(format!("reading the request body: {e}"));
            if e.to_string().contains("length limit") {
                err.code = 413;
                err.reason = "RequestEntityTooLarge".into();
                err.message = format!("Request entity too large: limit is {MAX_BODY}");
            }
            return Ok(finish(&shared, record, error_response(&err)));
        }
    };
    if !bytes.is_empty() {
        record.body = serde_json::from_slice(&bytes)
            .ok()
            .or_else(|| serde_yaml::from_slice(&bytes).ok());
    }

    if !authorized(&shared, &parts.headers) {
        return Ok(finish(
            &shared,
            record,
            error_response(&ApiError::unauthorized()),
        ));
    }
    if let Some(action) = shared.faults.take(&record.verb, &path) {
        match action {
            FaultAction::Status(code) => {
                return Ok(finish(&shared, record, error_response(&injected(code))));
            }
            FaultAction::TooManyRequests { retry_after_secs } => {
                let e = ApiError::too_many_requests(retry_after_secs);
                return Ok(finish(&shared, record, error_response(&e)));
            }
            FaultAction::Hang(d) => tokio::time::sleep(d).await,
            FaultAction::Reset => {
                record.status = 0;
                record.reason = Some("ConnectionReset".into());
                shared.log.push(record);
                return Err(Abort);
            }
        }
    }

    if let (
        Some(authz),
        Route::Resource {
            res,
            namespace,
            name,
            subresource,
        },
        Some(v),
    ) = (shared.authorizer(), &route, verb)
    {
        let name = name.as_deref().unwrap_or("");
        if let Err(e) = authz.check(v, res, namespace.as_deref(), name, subresource.as_deref()) {
            return Ok(finish(&shared, record, error_response(&e)));
        }
    }

    let accept = header_str(&parts.headers, header::ACCEPT).unwrap_or_default();
    let user_agent = record.user_agent.clone().unwrap_or_default();
    let response = match dispatch(
        &shared,
        &parts.method,
        route,
        verb,
        &params,
        &accept,
        content_type.as_deref(),
        &user_agent,
        &bytes,
    ) {
        Ok(r) => r,
        Err(e) => error_response(&e),
    };
    Ok(finish(&shared, record, response))
}

fn authorized(shared: &Shared, h: &HeaderMap) -> bool {
    let Some(v) = h.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let Some((scheme, token)) = v.split_once(' ') else {
        return false;
    };
    scheme.eq_ignore_ascii_case("bearer") && token.trim() == shared.token
}

fn injected(code: u16) -> ApiError {
    match code {
        429 => ApiError::too_many_requests(1),
        500 => ApiError::internal("injected fault"),
        c => ApiError::other(c, "injected fault"),
    }
}

fn finish(shared: &Shared, mut record: RequestRecord, resp: Response<Body>) -> Response<Body> {
    record.status = resp.status().as_u16();
    if let Some(reason) = resp.extensions().get::<Reason>() {
        record.reason = Some(reason.0.clone());
    }
    shared.log.push(record);
    resp
}

/// The failure reason, kept on the response for the request log.
#[derive(Debug, Clone)]
struct Reason(String);

fn base_response(code: u16) -> axum::http::response::Builder {
    Response::builder()
        .status(StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CACHE_CONTROL, "no-cache, private")
        .header("Audit-Id", ops::new_uid())
}

fn with_warnings(
    mut b: axum::http::response::Builder,
    warnings: &[String],
) -> axum::http::response::Builder {
    for w in warnings {
        let text = format!("299 - \"{}\"", w.replace('\\', "\\\\").replace('"', "\\\""));
        if let Ok(v) = HeaderValue::from_str(&text) {
            b = b.header("Warning", v);
        }
    }
    b
}

fn json_response(code: u16, body: &Value, warnings: &[String]) -> Response<Body> {
    with_warnings(base_response(code), warnings)
        .body(Body::from(body.to_string()))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

fn error_response(e: &ApiError) -> Response<Body> {
    let mut b = with_warnings(base_response(e.code), &e.warnings);
    if let Some(secs) = e.retry_after {
        b = b.header(header::RETRY_AFTER, secs.to_string());
    }
    let mut resp = b
        .body(Body::from(e.to_status().to_string()))
        .unwrap_or_else(|_| Response::new(Body::empty()));
    resp.extensions_mut().insert(Reason(e.reason.clone()));
    resp
}

/// How objects are shown: whole, or as PartialObjectMetadata.
fn wants_metadata_only(accept: &str) -> Result<bool, ApiError> {
    if accept.trim().is_empty() {
        return Ok(false);
    }
    for range in accept.split(',') {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or("");
        let params: Vec<&str> = parts.collect();
        let as_ = params.iter().find_map(|p| p.strip_prefix("as="));
        match (media, as_) {
            ("application/json" | "*/*" | "application/*", None) => return Ok(false),
            ("application/json", Some("PartialObjectMetadata" | "PartialObjectMetadataList")) => {
                return Ok(true)
            }
            _ => {}
        }
    }
    Err(ApiError::not_acceptable(accept))
}

#[allow(clippy::too_many_arguments)]
fn dispatch(
    shared: &Arc<Shared>,
    method: &Method,
    route: Route,
    verb: Option<&'static str>,
    params: &BTreeMap<String, String>,
    accept: &str,
    content_type: Option<&str>,
    user_agent: &str,
    body: &[u8],
) -> Result<Response<Body>, ApiError> {
    let get_only = |v: Option<Value>| -> Result<Response<Body>, ApiError> {
        if method != Method::GET {
            return Err(ApiError::method_not_allowed());
        }
        v.map(|v| json_response(200, &v, &[]))
            .ok_or_else(ApiError::no_route)
    };
    match route {
        Route::Version => get_only(Some(discovery::version())),
        Route::Health => {
            if method != Method::GET {
                return Err(ApiError::method_not_allowed());
            }
            Ok(Response::builder()
                .status(200)
                .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
                .body(Body::from("ok"))
                .unwrap_or_else(|_| Response::new(Body::empty())))
        }
        Route::CoreVersions if accept.contains("as=APIGroupDiscoveryList") => {
            aggregated(method, true)
        }
        Route::Groups if accept.contains("as=APIGroupDiscoveryList") => aggregated(method, false),
        Route::CoreVersions => get_only(Some(discovery::api_versions(&shared.server_address()))),
        Route::Groups => get_only(Some(discovery::api_group_list())),
        Route::Group(g) => get_only(discovery::api_group(&g)),
        Route::ResourceList { group, version } => {
            get_only(discovery::resource_list(&group, &version))
        }
        Route::NotFound => Err(ApiError::no_route()),
        Route::Resource {
            res,
            namespace,
            name,
            subresource,
        } => {
            let Some(verb) = verb else {
                return Err(ApiError::method_not_allowed());
            };
            let req = ResourceRequest {
                shared,
                res,
                namespace,
                name: name.unwrap_or_default(),
                subresource,
                params,
                accept,
                content_type: content_type.unwrap_or(""),
                user_agent,
                body,
            };
            match verb {
                "get" => req.get(),
                "list" => req.list(),
                "watch" => req.watch(),
                "create" => req.create(),
                "update" => req.update(),
                "patch" => req.patch(),
                "delete" => req.delete(),
                "deletecollection" => req.delete_collection(),
                _ => Err(ApiError::method_not_allowed()),
            }
        }
    }
}

fn aggregated(method: &Method, core: bool) -> Result<Response<Body>, ApiError> {
    if method != Method::GET {
        return Err(ApiError::method_not_allowed());
    }
    Response::builder()
        .status(200)
        .header(header::CONTENT_TYPE, discovery::AGGREGATED)
        .body(Body::from(discovery::aggregated(core).to_string()))
        .map_err(|e| ApiError::internal(&e.to_string()))
}

struct ResourceRequest<'a> {
    shared: &'a Arc<Shared>,
    res: &'static ResourceType,
    namespace: Option<String>,
    name: String,
    subresource: Option<String>,
    params: &'a BTreeMap<String, String>,
    accept: &'a str,
    content_type: &'a str,
    user_agent: &'a str,
    body: &'a [u8],
}

impl ResourceRequest<'_> {
    fn ns(&self) -> &str {
        self.namespace.as_deref().unwrap_or("")
    }

    fn param(&self, k: &str) -> Option<&String> {
        self.params.get(k)
    }

    fn selectors(&self) -> Result<(LabelSelector, FieldSelector), ApiError> {
        let labels = LabelSelector::parse(self.param("labelSelector").map_or("", String::as_str))
            .map_err(ApiError::bad_request)?;
        let fields = FieldSelector::parse(
            self.param("fieldSelector").map_or("", String::as_str),
            self.res,
        )
        .map_err(ApiError::bad_request)?;
        Ok((labels, fields))
    }

    fn ctx(&self, apply: bool) -> Result<Ctx, ApiError> {
        let explicit = self.param("fieldManager").cloned().unwrap_or_default();
        if explicit.len() > 128 {
            return Err(ApiError::invalid_params(
                "PatchOptions.meta.k8s.io",
                vec![Cause::too_long("fieldManager", 128)],
            ));
        }
        let manager = if explicit.is_empty() && !apply {
            // Without fieldManager, the API server names the manager
            // after the client's product token.
            self.user_agent
                .split('/')
                .next()
                .unwrap_or("")
                .chars()
                .take(128)
                .collect()
        } else {
            explicit
        };
        let dry_run = match self.param("dryRun").map(String::as_str) {
            None | Some("") => false,
            Some("All") => true,
            Some(other) => {
                return Err(ApiError::invalid_params(
                    "CreateOptions.meta.k8s.io",
                    vec![Cause::not_supported("dryRun", other, &["All"])],
                ))
            }
        };
        let validation = match self.param("fieldValidation").map(String::as_str) {
            None | Some("") => FieldValidation::Warn,
            Some("Ignore") => FieldValidation::Ignore,
            Some("Warn") => FieldValidation::Warn,
            Some("Strict") => FieldValidation::Strict,
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "fieldValidation must be one of Ignore, Warn, Strict; got {other:?}"
                )))
            }
        };
        Ok(Ctx {
            manager,
            dry_run,
            validation,
            subresource: self.subresource.clone(),
            force: None,
        })
    }

    /// The body of a create or replace: JSON, or YAML when sent as
    /// `application/yaml` (as kubectl can).
    fn json_body(&self) -> Result<Value, ApiError> {
        let media = self.content_type.split(';').next().unwrap_or("").trim();
        match media {
            "application/yaml" => serde_yaml::from_slice(self.body).map_err(|e| {
                ApiError::bad_request(format!("couldn't get version/kind; yaml parse error: {e}"))
            }),
            "" | "application/json" | "*/*" => serde_json::from_slice(self.body).map_err(|e| {
                ApiError::bad_request(format!("couldn't get version/kind; json parse error: {e}"))
            }),
            other => Err(ApiError::unsupported_media_type(
                other,
                &["application/json", "application/yaml"],
            )),
        }
    }

    fn present(&self, obj: &Value) -> Result<Value, ApiError> {
        Ok(watch::present(obj, wants_metadata_only(self.accept)?))
    }

    fn get(&self) -> Result<Response<Body>, ApiError> {
        let obj = self
            .shared
            .store
            .get(self.res, self.ns(), &self.name)
            .ok_or_else(|| ApiError::not_found(self.res, &self.name))?;
        Ok(json_response(200, &self.present(&obj)?, &[]))
    }

    fn list(&self) -> Result<Response<Body>, ApiError> {
        let metadata_only = wants_metadata_only(self.accept)?;
        let (labels, fields) = self.selectors()?;
        let limit = match self.param("limit").map(String::as_str) {
            None | Some("") => 0,
            Some(l) => l
                .parse::<i64>()
                .map_err(|_| ApiError::bad_request(format!("invalid limit {l:?}")))?,
        };
        let token = self.param("continue").filter(|c| !c.is_empty());
        let at = query::list_at(
            self.param("resourceVersion"),
            self.param("resourceVersionMatch"),
            token,
        )?;
        let store = &self.shared.store;
        let (snapshot, after) = match token {
            Some(t) => {
                let c = Continue::decode(t)?;
                (Some(c.rv), Some((c.namespace, c.name)))
            }
            None => match at {
                ListAt::Latest => (None, None),
                ListAt::Exact(rv) => (Some(rv), None),
                ListAt::NotOlderThan(rv) => {
                    let current = store.rv();
                    if rv > current {
                        return Err(ApiError::too_large_resource_version(rv, current));
                    }
                    (None, None)
                }
            },
        };
        let ns = self.namespace.as_deref();
        let (objects, rv) = store
            .list(self.res, ns, snapshot, after.as_ref())
            .map_err(|e| {
                if e.code == 410 && token.is_some() {
                    ApiError::expired("The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.")
                } else {
                    e
                }
            })?;
        let mut matching = objects
            .into_iter()
            .filter(|o| labels.matches(labels_of(o)) && fields.matches(o));
        let mut items: Vec<Arc<Value>> = Vec::new();
        let mut more = None;
        let mut remaining = 0u64;
        for o in matching.by_ref() {
            if limit > 0 && items.len() as i64 == limit {
                more = Some(o);
                break;
            }
            items.push(o);
        }
        let mut meta = json!({"resourceVersion": rv.to_string()});
        if more.is_some() {
            remaining = 1 + matching.count() as u64;
            if let Some(last) = items.last() {
                let (n, m) = ns_name(last);
                meta["continue"] = json!(Continue {
                    rv,
                    namespace: n,
                    name: m
                }
                .encode());
            }
            // Counting the rest is only cheap (and only offered) without selectors.
            if labels.is_empty() && fields.is_empty() {
                meta["remainingItemCount"] = json!(remaining);
            }
        }
        let _ = remaining;
        Ok(json_response(
            200,
            &list_body(self.res, &items, meta, metadata_only),
            &[],
        ))
    }

    fn watch(&self) -> Result<Response<Body>, ApiError> {
        let metadata_only = wants_metadata_only(self.accept)?;
        let (labels, fields) = self.selectors()?;
        let send_initial = match self.param("sendInitialEvents").map(String::as_str) {
            None | Some("") | Some("false") => false,
            Some("true") => true,
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "invalid sendInitialEvents {other:?}"
                )))
            }
        };
        let bookmarks = query::truthy(self.param("allowWatchBookmarks"));
        let rv_match = self
            .param("resourceVersionMatch")
            .map_or("", String::as_str);
        let mut causes = Vec::new();
        if send_initial {
            if rv_match != "NotOlderThan" {
                causes.push(Cause::forbidden(
                    "resourceVersionMatch",
                    "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
                ));
            }
            if !bookmarks {
                causes.push(Cause::forbidden(
                    "allowWatchBookmarks",
                    "sendInitialEvents requires setting allowWatchBookmarks to true",
                ));
            }
        } else if !rv_match.is_empty() {
            causes.push(Cause::forbidden(
                "resourceVersionMatch",
                "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
            ));
        }
        if !causes.is_empty() {
            return Err(ApiError::invalid_params("ListOptions.meta.k8s.io", causes));
        }
        let resource_version = match self.param("resourceVersion").map(String::as_str) {
            None | Some("") | Some("0") => None,
            Some(rv) => Some(rv.parse::<u64>().map_err(|_| {
                ApiError::invalid_params(
                    "ListOptions.meta.k8s.io",
                    vec![Cause::invalid(
                        "resourceVersion",
                        rv,
                        "must be a valid resource version",
                    )],
                )
            })?),
        };
        let timeout = match self.param("timeoutSeconds").map(String::as_str) {
            None | Some("") => DEFAULT_WATCH_TIMEOUT,
            Some(t) => {
                let secs = t
                    .parse::<u64>()
                    .map_err(|_| ApiError::bad_request(format!("invalid timeoutSeconds {t:?}")))?;
                // A deadline past the clock's range would overflow.
                Duration::from_secs(secs.min(MAX_WATCH_TIMEOUT_SECS))
            }
        };
        let w = WatchRequest {
            res: self.res,
            namespace: self.namespace.clone(),
            labels,
            fields,
            resource_version,
            send_initial_events: send_initial,
            bookmarks,
            timeout,
            metadata_only,
        };
        let body = watch::start(self.shared.clone(), w, self.shared.watch_token());
        Response::builder()
            .status(200)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::CACHE_CONTROL, "no-cache, private")
            .body(body)
            .map_err(|e| ApiError::internal(&e.to_string()))
    }

    fn create(&self) -> Result<Response<Body>, ApiError> {
        let ctx = self.ctx(false)?;
        let body = self.json_body()?;
        let w = ops::create(&self.shared.store, self.res, self.ns(), body, &ctx)?;
        Ok(json_response(w.code, &w.object, &w.warnings))
    }

    fn update(&self) -> Result<Response<Body>, ApiError> {
        let ctx = self.ctx(false)?;
        let body = self.json_body()?;
        let w = ops::update(
            &self.shared.store,
            self.res,
            self.ns(),
            &self.name,
            body,
            &ctx,
        )?;
        Ok(json_response(w.code, &w.object, &w.warnings))
    }

    fn patch(&self) -> Result<Response<Body>, ApiError> {
        let kind = PatchType::from_content_type(self.res, self.content_type)?;
        let mut ctx = self.ctx(kind == PatchType::Apply)?;
        ctx.force = match self.param("force").map(String::as_str) {
            None => None,
            Some("true") | Some("1") => Some(true),
            Some("false") | Some("0") | Some("") => Some(false),
            Some(other) => return Err(ApiError::bad_request(format!("invalid force {other:?}"))),
        };
        let w = ops::patch(
            &self.shared.store,
            self.res,
            self.ns(),
            &self.name,
            kind,
            self.body,
            &ctx,
        )?;
        Ok(json_response(w.code, &w.object, &w.warnings))
    }

    fn delete_opts(&self) -> Result<DeleteOpts, ApiError> {
        let body: Value = if self.body.is_empty() {
            json!({})
        } else {
            serde_json::from_slice(self.body)
                .map_err(|e| ApiError::bad_request(format!("error decoding DeleteOptions: {e}")))?
        };
        let propagation = self
            .param("propagationPolicy")
            .cloned()
            .or_else(|| body["propagationPolicy"].as_str().map(str::to_string));
        let orphan = body["orphanDependents"]
            .as_bool()
            .or_else(|| self.param("orphanDependents").map(|v| v == "true"));
        let propagation = match (propagation, orphan) {
            (Some(p), _) => Some(p),
            (None, Some(true)) => Some("Orphan".to_string()),
            _ => None,
        };
        let dry_run = self.param("dryRun").is_some_and(|v| v == "All")
            || body["dryRun"]
                .as_array()
                .is_some_and(|a| a.iter().any(|v| v == "All"));
        Ok(DeleteOpts {
            propagation,
            precondition_uid: body["preconditions"]["uid"].as_str().map(str::to_string),
            precondition_rv: body["preconditions"]["resourceVersion"]
                .as_str()
                .map(str::to_string),
            dry_run,
        })
    }

    fn delete(&self) -> Result<Response<Body>, ApiError> {
        let opts = self.delete_opts()?;
        let (obj, code) = ops::delete(&self.shared.store, self.res, self.ns(), &self.name, &opts)?;
        Ok(json_response(code, &obj, &[]))
    }

    fn delete_collection(&self) -> Result<Response<Body>, ApiError> {
        let opts = self.delete_opts()?;
        let (labels, fields) = self.selectors()?;
        let keep = |o: &Value| labels.matches(labels_of(o)) && fields.matches(o);
        let (gone, rv) = ops::delete_collection(
            &self.shared.store,
            self.res,
            self.namespace.as_deref(),
            &keep,
            &opts,
        )?;
        let meta = json!({"resourceVersion": rv.to_string()});
        Ok(json_response(
            200,
            &list_body(self.res, &gone, meta, false),
            &[],
        ))
    }
}

/// A list response. Built-in lists carry their items without
/// apiVersion/kind, as the API server encodes them; custom resource items
/// keep theirs.
pub fn list_body(
    res: &ResourceType,
    items: &[Arc<Value>],
    meta: Value,
    metadata_only: bool,
) -> Value {
    if metadata_only {
        let items: Vec<Value> = items.iter().map(|o| watch::present(o, true)).collect();
        return json!({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": meta, "items": items});
    }
    let items: Vec<Value> = items
        .iter()
        .map(|o| {
            let mut v = (**o).clone();
            if res.builtin {
                if let Some(m) = v.as_object_mut() {
                    m.remove("apiVersion");
                    m.remove("kind");
                }
            }
            v
        })
        .collect();
    json!({"kind": format!("{}List", res.kind), "apiVersion": res.api_version(), "metadata": meta, "items": items})
}
