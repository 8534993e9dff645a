//! The write operations (create, update, patch, apply, delete) with the
//! API server's rules: system metadata, status subresource scoping,
//! generation, validation, managed fields, no-op detection, finalizers and
//! garbage collection of dependents. HTTP handlers and test helpers both
//! go through here, so both see the same behaviour.

use std::sync::Arc;

use rand::Rng;
use serde_json::{json, Map, Value};

use super::apply;
use super::fieldset::Scope;
use super::patch::{self, PatchFailure};
use super::resources::{self, ResourceType};
use super::schema;
use super::status::{ApiError, Cause};
use super::store::{ns_name, Store, Txn};
use super::validate;

/// `fieldValidation`: what happens to fields the type does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FieldValidation {
    Ignore,
    /// The default: drop them and say so in a `Warning` header.
    #[default]
    Warn,
    Strict,
}

/// Who writes, and how.
#[derive(Debug, Clone, Default)]
pub struct Ctx {
    /// `fieldManager`, or the User-Agent's product name.
    pub manager: String,
    /// `dryRun=All`: everything but the commit.
    pub dry_run: bool,
    pub validation: FieldValidation,
    /// `Some("status")` for the status subresource.
    pub subresource: Option<String>,
    /// `force` as given (only valid for apply patches).
    pub force: Option<bool>,
}

impl Ctx {
    fn sub(&self) -> Option<&str> {
        self.subresource.as_deref()
    }
}

/// A committed (or dry-run) write.
#[derive(Debug, Clone)]
pub struct Written {
    pub object: Arc<Value>,
    /// 201 for creations, 200 otherwise.
    pub code: u16,
    pub warnings: Vec<String>,
}

/// RFC 3339 at second precision, as `metav1.Time` is serialized.
pub fn now() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// MicroTime, as event times are serialized.
pub fn now_micro() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

/// A random version 4 UUID.
pub fn new_uid() -> String {
    let b: [u8; 16] = rand::rng().random();
    let hex: String = b
        .iter()
        .enumerate()
        .map(|(i, x)| match i {
            6 => format!("{:02x}", (x & 0x0f) | 0x40),
            8 => format!("{:02x}", (x & 0x3f) | 0x80),
            _ => format!("{x:02x}"),
        })
        .collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// `generateName` + 5 characters from the API server's alphabet.
pub fn generate_name(prefix: &str) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    let cut = prefix.len().min(58);
    let mut name = prefix[..floor_char_boundary(prefix, cut)].to_string();
    for _ in 0..5 {
        name.push(ALPHABET[rng.random_range(0..ALPHABET.len())] as char);
    }
    name
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Runs `f` on the object's metadata map, creating it when missing.
/// Does nothing to a value that is not an object.
fn with_meta<R>(obj: &mut Value, f: impl FnOnce(&mut Map<String, Value>) -> R) -> Option<R> {
    let top = obj.as_object_mut()?;
    let meta = top
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !meta.is_object() {
        *meta = Value::Object(Map::new());
    }
    meta.as_object_mut().map(f)
}

fn meta_str<'a>(obj: &'a Value, key: &str) -> &'a str {
    obj.get("metadata")
        .and_then(|m| m.get(key))
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn require_object(res: &ResourceType, body: &Value) -> Result<(), ApiError> {
    if body.is_object() {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "{} in version {:?} cannot be handled as a {}: json: cannot unmarshal {} into Go value of type {}",
            res.kind,
            res.version,
            res.kind,
            json_type(body),
            res.kind
        )))
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// `apiVersion` and `kind`, when given, must be this endpoint's.
fn check_type_meta(res: &ResourceType, body: &Value) -> Result<(), ApiError> {
    let api_version = body.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let kind = body.get("kind").and_then(Value::as_str).unwrap_or("");
    if !api_version.is_empty() && api_version != res.api_version() {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({api_version}) does not match the expected API version ({})",
            res.api_version()
        )));
    }
    if !kind.is_empty() && kind != res.kind {
        return Err(ApiError::bad_request(format!(
            "{kind} in version {:?} cannot be handled as a {}: no kind {kind:?} is registered for version {:?}",
            res.version,
            res.kind,
            res.api_version()
        )));
    }
    Ok(())
}

/// Decodes as the Go type would and deals with unknown fields.
fn decode(
    res: &ResourceType,
    obj: &Value,
    validation: FieldValidation,
    warnings: &mut Vec<String>,
) -> Result<Value, ApiError> {
    let decoded = schema::decode(res, obj).map_err(ApiError::bad_request)?;
    let unknown = schema::unknown_fields(obj, &decoded);
    if !unknown.is_empty() {
        let msgs: Vec<String> = unknown
            .iter()
            .map(|f| format!("unknown field \"{f}\""))
            .collect();
        match validation {
            FieldValidation::Strict => {
                return Err(ApiError::bad_request(format!(
                    "strict decoding error: {}",
                    msgs.join(", ")
                )))
            }
            FieldValidation::Warn => warnings.extend(msgs),
            FieldValidation::Ignore => {}
        }
    }
    Ok(decoded)
}

/// Keeps only what `decoded` kept: an applied configuration without the
/// fields its type does not know (and without defaults decoding added).
fn prune_like(input: &Value, decoded: &Value) -> Value {
    match (input, decoded) {
        (Value::Object(a), Value::Object(b)) => Value::Object(
            a.iter()
                .filter_map(|(k, v)| b.get(k).map(|w| (k.clone(), prune_like(v, w))))
                .collect(),
        ),
        (Value::Array(a), Value::Array(b)) => {
            Value::Array(a.iter().zip(b).map(|(v, w)| prune_like(v, w)).collect())
        }
        _ => input.clone(),
    }
}

/// Identity and timestamps for an object about to be created.
fn stamp_new(res: &ResourceType, ns: &str, obj: &mut Value) -> Result<(), ApiError> {
    if !meta_str(obj, "resourceVersion").is_empty() {
        return Err(ApiError::internal(
            "resourceVersion should not be set on objects to be created",
        ));
    }
    let body_ns = meta_str(obj, "namespace").to_string();
    if res.namespaced && !body_ns.is_empty() && body_ns != ns {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    with_meta(obj, |meta| {
        if res.namespaced {
            meta.insert("namespace".into(), json!(ns));
        } else {
            meta.remove("namespace");
        }
        let name = meta.get("name").and_then(Value::as_str).unwrap_or("");
        let prefix = meta
            .get("generateName")
            .and_then(Value::as_str)
            .unwrap_or("");
        if name.is_empty() && !prefix.is_empty() {
            let generated = generate_name(prefix);
            meta.insert("name".into(), json!(generated));
        }
        meta.insert("uid".into(), json!(new_uid()));
        meta.insert("creationTimestamp".into(), json!(now()));
        for k in [
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "selfLink",
            "managedFields",
        ] {
            meta.remove(k);
        }
    });
    Ok(())
}

/// Everything of an object except metadata and status: what a generation
/// counts changes of.
fn spec_part(obj: &Value) -> Value {
    let mut v = obj.clone();
    if let Some(m) = v.as_object_mut() {
        m.remove("metadata");
        m.remove("status");
        m.remove("apiVersion");
        m.remove("kind");
    }
    v
}

/// How managed fields are handled by [`finalize`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Managed {
    /// Non-apply write: the writer owns what it changed.
    Track,
    /// Apply: the candidate already carries its managed fields.
    Keep,
}

/// The rules every write goes through after the new content is known.
fn finalize(
    res: &ResourceType,
    old: Option<&Value>,
    mut new: Value,
    ctx: &Ctx,
    managed: Managed,
    warnings: &mut Vec<String>,
) -> Result<Value, ApiError> {
    if let Some(m) = new.as_object_mut() {
        m.insert("apiVersion".into(), json!(res.api_version()));
        m.insert("kind".into(), json!(res.kind));
    }
    let incoming_managed = new
        .get("metadata")
        .and_then(|m| m.get("managedFields"))
        .cloned();
    if let Some(old) = old {
        let old_meta = old.get("metadata").and_then(Value::as_object);
        with_meta(&mut new, |meta| {
            for k in [
                "uid",
                "creationTimestamp",
                "generation",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "managedFields",
                "resourceVersion",
            ] {
                match old_meta.and_then(|m| m.get(k)) {
                    Some(v) => meta.insert(k.into(), v.clone()),
                    None => meta.remove(k),
                };
            }
        });
    }
    let mut new = decode(res, &new, ctx.validation, warnings)?;

    if res.status {
        match (ctx.sub(), old) {
            (Some("status"), Some(old)) => {
                let status = new.get("status").cloned();
                let mut merged = old.clone();
                if let Some(m) = merged.as_object_mut() {
                    match status {
                        Some(s) => m.insert("status".into(), s),
                        None => m.remove("status"),
                    };
                }
                new = merged;
            }
            (_, Some(old)) => {
                if let Some(m) = new.as_object_mut() {
                    match old.get("status") {
                        Some(s) => m.insert("status".into(), s.clone()),
                        None => m.remove("status"),
                    };
                }
            }
            (_, None) => reset_status(res, &mut new),
        }
    }
    if managed == Managed::Keep {
        with_meta(&mut new, |meta| match incoming_managed {
            Some(v) => meta.insert("managedFields".into(), v),
            None => meta.remove("managedFields"),
        });
    }
    if res.kind == "Namespace" && res.group.is_empty() {
        namespace_defaults(&mut new);
    }
    defaults(res, &mut new);
    if res.generation {
        let generation = match old {
            None => 1,
            Some(o) => {
                let g = o
                    .get("metadata")
                    .and_then(|m| m.get("generation"))
                    .and_then(Value::as_i64)
                    .unwrap_or(1);
                if spec_part(o) != spec_part(&new) {
                    g + 1
                } else {
                    g
                }
            }
        };
        with_meta(&mut new, |m| {
            m.insert("generation".into(), json!(generation))
        });
    }

    let mut causes = Vec::new();
    validate::metadata(res, &new, &mut causes);
    if let Some(old) = old {
        for k in ["name", "namespace"] {
            let (a, b) = (meta_str(&new, k), meta_str(old, k));
            if a != b {
                causes.push(Cause::invalid(
                    format!("metadata.{k}"),
                    a,
                    "field is immutable",
                ));
            }
        }
    }
    validate::kind_rules(res, &new, old, &mut causes);
    if !causes.is_empty() {
        let name = meta_str(&new, "name").to_string();
        return Err(ApiError::invalid(res, &name, causes));
    }
    if managed == Managed::Track {
        apply::track_update(res, old, &mut new, &ctx.manager, ctx.sub(), &now());
    }
    Ok(new)
}

/// Status as the API server sets it on create.
fn reset_status(res: &ResourceType, obj: &mut Value) {
    let Some(m) = obj.as_object_mut() else { return };
    match (res.group, res.kind) {
        ("", "Pod") => {
            m.insert(
                "status".into(),
                json!({"phase": "Pending", "qosClass": "BestEffort"}),
            );
        }
        ("", "Namespace") => {
            m.insert("status".into(), json!({"phase": "Active"}));
        }
        ("", "Node") => {}
        _ => {
            m.remove("status");
        }
    }
}

/// Defaulting the API server does to what Riposte writes. A NetworkPolicy
/// without `policyTypes` gets `["Ingress"]` (plus `"Egress"` only if it
/// has egress rules), so a "deny all" policy that forgets `policyTypes`
/// denies no egress, exactly as on a real cluster; ports default to TCP.
fn defaults(res: &ResourceType, obj: &mut Value) {
    if res.group != "networking.k8s.io" || res.kind != "NetworkPolicy" {
        return;
    }
    let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    let has_egress = spec
        .get("egress")
        .and_then(Value::as_array)
        .is_some_and(|e| !e.is_empty());
    let unset = spec
        .get("policyTypes")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty);
    if unset {
        let mut types = vec![json!("Ingress")];
        if has_egress {
            types.push(json!("Egress"));
        }
        spec.insert("policyTypes".into(), Value::Array(types));
    }
    for dir in ["ingress", "egress"] {
        for rule in spec
            .get_mut(dir)
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            for port in rule
                .get_mut("ports")
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
            {
                if let Some(p) = port.as_object_mut() {
                    p.entry("protocol").or_insert_with(|| json!("TCP"));
                }
            }
        }
    }
}

fn namespace_defaults(obj: &mut Value) {
    let name = meta_str(obj, "name").to_string();
    with_meta(obj, |meta| {
        let labels = meta
            .entry("labels")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(l) = labels.as_object_mut() {
            l.insert("kubernetes.io/metadata.name".into(), json!(name));
        }
    });
    if let Some(m) = obj.as_object_mut() {
        let spec = m.entry("spec").or_insert_with(|| json!({}));
        if spec.get("finalizers").is_none() {
            if let Some(s) = spec.as_object_mut() {
                s.insert("finalizers".into(), json!(["kubernetes"]));
            }
        }
        let status = m.entry("status").or_insert_with(|| json!({}));
        if status.get("phase").is_none() {
            if let Some(s) = status.as_object_mut() {
                s.insert("phase".into(), json!("Active"));
            }
        }
    }
}

/// A namespaced object may only be created in a namespace that exists and
/// is not being deleted (the NamespaceLifecycle admission plugin).
fn check_namespace(t: &Txn<'_>, res: &ResourceType, ns: &str, name: &str) -> Result<(), ApiError> {
    if !res.namespaced {
        return Ok(());
    }
    let Some(nsres) = resources::lookup("namespaces") else {
        return Ok(());
    };
    match t.get(nsres, "", ns) {
        None => Err(ApiError::not_found(nsres, ns)),
        Some(n) if !meta_str(&n, "deletionTimestamp").is_empty() => Err(ApiError::forbidden(
            res,
            name,
            &format!(
                "unable to create new content in namespace {ns} because it is being terminated"
            ),
        )),
        Some(_) => Ok(()),
    }
}

/// Commits `new` over `old`, unless nothing changed or it is a dry run;
/// an object whose deletion waited for finalizers goes once they are gone.
fn commit(
    t: &mut Txn<'_>,
    res: &ResourceType,
    old: Option<&Arc<Value>>,
    mut new: Value,
    ctx: &Ctx,
) -> Arc<Value> {
    if let Some(old) = old {
        if **old == new {
            return old.clone();
        }
    }
    let deleting = !meta_str(&new, "deletionTimestamp").is_empty();
    let finalizers_left = new
        .get("metadata")
        .and_then(|m| m.get("finalizers"))
        .and_then(Value::as_array)
        .is_some_and(|f| !f.is_empty());
    if ctx.dry_run {
        if old.is_none() {
            with_meta(&mut new, |m| m.remove("resourceVersion"));
        }
        return Arc::new(new);
    }
    if deleting && !finalizers_left {
        let (ns, name) = ns_name(&new);
        t.put(res, new);
        return t
            .remove(res, &ns, &name)
            .unwrap_or_else(|| Arc::new(Value::Null));
    }
    t.put(res, new)
}

/// POST.
pub fn create(
    store: &Store,
    res: &ResourceType,
    ns: &str,
    body: Value,
    ctx: &Ctx,
) -> Result<Written, ApiError> {
    require_object(res, &body)?;
    check_type_meta(res, &body)?;
    let mut obj = body;
    stamp_new(res, ns, &mut obj)?;
    let mut warnings = Vec::new();
    let obj = finalize(res, None, obj, ctx, Managed::Track, &mut warnings)?;
    let name = meta_str(&obj, "name").to_string();
    let object = store.transact(|t| {
        check_namespace(t, res, ns, &name)?;
        if t.get(res, ns, &name).is_some() {
            return Err(ApiError::already_exists(res, &name));
        }
        Ok(commit(t, res, None, obj, ctx))
    })?;
    Ok(Written {
        object,
        code: 201,
        warnings,
    })
}

/// PUT.
pub fn update(
    store: &Store,
    res: &ResourceType,
    ns: &str,
    name: &str,
    body: Value,
    ctx: &Ctx,
) -> Result<Written, ApiError> {
    require_object(res, &body)?;
    check_type_meta(res, &body)?;
    let body_name = meta_str(&body, "name");
    if body_name != name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({body_name}) does not match the name on the URL ({name})"
        )));
    }
    let body_ns = meta_str(&body, "namespace");
    if res.namespaced && !body_ns.is_empty() && body_ns != ns {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    let mut body = body;
    if res.namespaced {
        with_meta(&mut body, |m| m.insert("namespace".into(), json!(ns)));
    }
    let mut warnings = Vec::new();
    let object = store.transact(|t| {
        let Some(old) = t.get(res, ns, name) else {
            if res.create_on_update && ctx.subresource.is_none() {
                let mut obj = body.clone();
                with_meta(&mut obj, |m| m.remove("resourceVersion"));
                stamp_new(res, ns, &mut obj)?;
                let obj = finalize(res, None, obj, ctx, Managed::Track, &mut warnings)?;
                check_namespace(t, res, ns, name)?;
                return Ok((commit(t, res, None, obj, ctx), 201));
            }
            return Err(ApiError::not_found(res, name));
        };
        let rv = meta_str(&body, "resourceVersion");
        if !rv.is_empty() && rv != meta_str(&old, "resourceVersion") {
            return Err(ApiError::stale(res, name));
        }
        let uid = meta_str(&body, "uid");
        if !uid.is_empty() && uid != meta_str(&old, "uid") {
            return Err(ApiError::conflict(
                res,
                name,
                &format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                    meta_str(&old, "uid")
                ),
            ));
        }
        let new = finalize(
            res,
            Some(&old),
            body.clone(),
            ctx,
            Managed::Track,
            &mut warnings,
        )?;
        Ok((commit(t, res, Some(&old), new, ctx), 200))
    })?;
    Ok(Written {
        object: object.0,
        code: object.1,
        warnings,
    })
}

/// The PATCH body formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    Json,
    Merge,
    Strategic,
    Apply,
}

/// Patch types every resource takes; strategic merge only built-ins.
pub const PATCH_TYPES_CUSTOM: &[&str] = &[
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/apply-patch+yaml",
];
pub const PATCH_TYPES_BUILTIN: &[&str] = &[
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
];

impl PatchType {
    /// The patch type for a `Content-Type` on `res`, or 415.
    pub fn from_content_type(res: &ResourceType, content_type: &str) -> Result<Self, ApiError> {
        let media = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        let accepted = if res.builtin {
            PATCH_TYPES_BUILTIN
        } else {
            PATCH_TYPES_CUSTOM
        };
        match media.as_str() {
            "application/json-patch+json" => Ok(PatchType::Json),
            "application/merge-patch+json" => Ok(PatchType::Merge),
            "application/strategic-merge-patch+json" if res.builtin => Ok(PatchType::Strategic),
            "application/apply-patch+yaml" => Ok(PatchType::Apply),
            _ => Err(ApiError::unsupported_media_type(content_type, accepted)),
        }
    }
}

fn parse_json(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))
}

fn patch_failure(res: &ResourceType, name: &str, f: PatchFailure) -> ApiError {
    match f {
        PatchFailure::Malformed(m) => ApiError::bad_request(m),
        PatchFailure::DoesNotApply(m) => {
            let mut e = ApiError::invalid(res, name, vec![]);
            e.message = m;
            e.details = None;
            e
        }
    }
}

/// PATCH, all four kinds. `force` is only valid for apply.
pub fn patch(
    store: &Store,
    res: &ResourceType,
    ns: &str,
    name: &str,
    kind: PatchType,
    body: &[u8],
    ctx: &Ctx,
) -> Result<Written, ApiError> {
    let force = ctx.force;
    if kind != PatchType::Apply && force.is_some() {
        return Err(ApiError::invalid_params(
            "PatchOptions.meta.k8s.io",
            vec![Cause::forbidden(
                "force",
                "may not be specified for non-apply patch",
            )],
        ));
    }
    if kind == PatchType::Apply {
        return apply_patch(store, res, ns, name, body, force.unwrap_or(false), ctx);
    }
    let doc = parse_json(body)?;
    let mut warnings = Vec::new();
    let object = store.transact(|t| {
        let Some(old) = t.get(res, ns, name) else {
            return Err(ApiError::not_found(res, name));
        };
        let mut candidate = (*old).clone();
        match kind {
            PatchType::Json => {
                patch::json_patch(&mut candidate, &doc).map_err(|f| patch_failure(res, name, f))?
            }
            PatchType::Merge => {
                if !doc.is_object() {
                    return Err(ApiError::bad_request(
                        "error decoding patch: a merge patch must be a JSON object",
                    ));
                }
                patch::merge_patch(&mut candidate, &doc)
            }
            PatchType::Strategic => {
                if !doc.is_object() {
                    return Err(ApiError::bad_request(
                        "error decoding patch: a strategic merge patch must be a JSON object",
                    ));
                }
                patch::strategic_merge_patch(res, &mut candidate, &doc)
                    .map_err(|f| patch_failure(res, name, f))?
            }
            PatchType::Apply => {}
        }
        require_object(res, &candidate)?;
        let rv = meta_str(&candidate, "resourceVersion");
        if !rv.is_empty() && rv != meta_str(&old, "resourceVersion") {
            return Err(ApiError::stale(res, name));
        }
        let uid = meta_str(&candidate, "uid");
        if !uid.is_empty() && uid != meta_str(&old, "uid") {
            return Err(ApiError::conflict(
                res,
                name,
                &format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                    meta_str(&old, "uid")
                ),
            ));
        }
        let new = finalize(
            res,
            Some(&old),
            candidate,
            ctx,
            Managed::Track,
            &mut warnings,
        )?;
        Ok(commit(t, res, Some(&old), new, ctx))
    })?;
    Ok(Written {
        object,
        code: 200,
        warnings,
    })
}

fn apply_patch(
    store: &Store,
    res: &ResourceType,
    ns: &str,
    name: &str,
    body: &[u8],
    force: bool,
    ctx: &Ctx,
) -> Result<Written, ApiError> {
    if ctx.manager.is_empty() {
        return Err(ApiError::invalid_params(
            "PatchOptions.meta.k8s.io",
            vec![Cause::required(
                "fieldManager",
                "is required for apply patch",
            )],
        ));
    }
    let applied: Value = serde_yaml::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?;
    require_object(res, &applied)?;
    let api_version = applied
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    let kind = applied.get("kind").and_then(Value::as_str).unwrap_or("");
    if api_version.is_empty() || kind.is_empty() {
        return Err(ApiError::bad_request(format!(
            "error decoding YAML: Object 'Kind' is missing in '{}'",
            String::from_utf8_lossy(body)
                .chars()
                .take(200)
                .collect::<String>()
        )));
    }
    check_type_meta(res, &applied)?;
    let body_name = meta_str(&applied, "name");
    if !body_name.is_empty() && body_name != name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({body_name}) does not match the name on the URL ({name})"
        )));
    }
    let body_ns = meta_str(&applied, "namespace");
    if res.namespaced && !body_ns.is_empty() && body_ns != ns {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    let mut warnings = Vec::new();
    let decoded = decode(res, &applied, ctx.validation, &mut warnings)?;
    let mut applied = prune_like(&applied, &decoded);
    with_meta(&mut applied, |meta| {
        meta.insert("name".into(), json!(name));
        if res.namespaced {
            meta.insert("namespace".into(), json!(ns));
        }
        // Identity and bookkeeping are the server's, not the applier's.
        for k in [
            "uid",
            "resourceVersion",
            "creationTimestamp",
            "generation",
            "managedFields",
        ] {
            meta.remove(k);
        }
    });
    let now = now();
    let (object, code) = store.transact(|t| {
        let old = t.get(res, ns, name);
        if old.is_none() && ctx.subresource.is_some() {
            return Err(ApiError::not_found(res, name));
        }
        let merged = apply::apply(
            res,
            old.as_deref(),
            &applied,
            &ctx.manager,
            force,
            ctx.sub(),
            &now,
        )
        .map_err(|c| ApiError::apply_conflicts(&c))?;
        match old {
            Some(old) => {
                let new = finalize(res, Some(&old), merged, ctx, Managed::Keep, &mut warnings)?;
                Ok((commit(t, res, Some(&old), new, ctx), 200))
            }
            None => {
                let mut obj = merged;
                stamp_new_keep_managed(res, ns, &mut obj)?;
                let new = finalize(res, None, obj, ctx, Managed::Keep, &mut warnings)?;
                check_namespace(t, res, ns, name)?;
                Ok((commit(t, res, None, new, ctx), 201))
            }
        }
    })?;
    Ok(Written {
        object,
        code,
        warnings,
    })
}

fn stamp_new_keep_managed(res: &ResourceType, ns: &str, obj: &mut Value) -> Result<(), ApiError> {
    let managed = obj
        .get("metadata")
        .and_then(|m| m.get("managedFields"))
        .cloned();
    stamp_new(res, ns, obj)?;
    if let Some(m) = managed {
        with_meta(obj, |meta| meta.insert("managedFields".into(), m));
    }
    Ok(())
}

/// DeleteOptions that matter here.
#[derive(Debug, Clone, Default)]
pub struct DeleteOpts {
    pub propagation: Option<String>,
    pub precondition_uid: Option<String>,
    pub precondition_rv: Option<String>,
    pub dry_run: bool,
}

impl DeleteOpts {
    fn check(&self) -> Result<(), ApiError> {
        if let Some(p) = &self.propagation {
            if !["Orphan", "Background", "Foreground"].contains(&p.as_str()) {
                return Err(ApiError::invalid_params(
                    "DeleteOptions.meta.k8s.io",
                    vec![Cause::not_supported(
                        "propagationPolicy",
                        p,
                        &["Background", "Foreground", "Orphan"],
                    )],
                ));
            }
        }
        Ok(())
    }
}

/// DELETE one object: 200 with its last state when it is gone, 202 when
/// finalizers keep it (it then carries `deletionTimestamp`).
pub fn delete(
    store: &Store,
    res: &ResourceType,
    ns: &str,
    name: &str,
    opts: &DeleteOpts,
) -> Result<(Arc<Value>, u16), ApiError> {
    opts.check()?;
    store.transact(|t| delete_in(t, res, ns, name, opts))
}

fn delete_in(
    t: &mut Txn<'_>,
    res: &ResourceType,
    ns: &str,
    name: &str,
    opts: &DeleteOpts,
) -> Result<(Arc<Value>, u16), ApiError> {
    let Some(old) = t.get(res, ns, name) else {
        return Err(ApiError::not_found(res, name));
    };
    if let Some(uid) = &opts.precondition_uid {
        if uid != meta_str(&old, "uid") {
            return Err(ApiError::conflict(
                res,
                name,
                &format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                    meta_str(&old, "uid")
                ),
            ));
        }
    }
    if let Some(rv) = &opts.precondition_rv {
        if rv != meta_str(&old, "resourceVersion") {
            return Err(ApiError::conflict(
                res,
                name,
                &format!(
                    "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                    meta_str(&old, "resourceVersion")
                ),
            ));
        }
    }
    let has_finalizers = old
        .get("metadata")
        .and_then(|m| m.get("finalizers"))
        .and_then(Value::as_array)
        .is_some_and(|f| !f.is_empty());
    if has_finalizers {
        if !meta_str(&old, "deletionTimestamp").is_empty() || opts.dry_run {
            return Ok((old, 202));
        }
        let mut marked = (*old).clone();
        with_meta(&mut marked, |meta| {
            meta.insert("deletionTimestamp".into(), json!(now()));
            meta.insert("deletionGracePeriodSeconds".into(), json!(0));
        });
        return Ok((t.put(res, marked), 202));
    }
    if opts.dry_run {
        return Ok((old, 200));
    }
    if res.kind == "Namespace" && res.group.is_empty() {
        for (r, obj) in t.in_namespace(name) {
            let (n, m) = ns_name(&obj);
            t.remove(r, &n, &m);
        }
    }
    let gone = t
        .remove(res, ns, name)
        .ok_or_else(|| ApiError::not_found(res, name))?;
    collect_garbage(t, ns, meta_str(&old, "uid"), opts.propagation.as_deref());
    Ok((gone, 200))
}

/// What the garbage collector does to the dependents of a deleted object.
fn collect_garbage(t: &mut Txn<'_>, ns: &str, uid: &str, propagation: Option<&str>) {
    if uid.is_empty() {
        return;
    }
    for (r, dep) in t.dependents(ns, uid) {
        let (n, m) = ns_name(&dep);
        if propagation == Some("Orphan") {
            let mut orphan = (*dep).clone();
            with_meta(&mut orphan, |meta| {
                if let Some(refs) = meta
                    .get_mut("ownerReferences")
                    .and_then(Value::as_array_mut)
                {
                    refs.retain(|r| r.get("uid").and_then(Value::as_str) != Some(uid));
                }
            });
            t.put(r, orphan);
        } else {
            let opts = DeleteOpts {
                propagation: propagation.map(str::to_string),
                ..DeleteOpts::default()
            };
            // A dependent already gone (or kept by finalizers) is fine.
            let _ = delete_in(t, r, &n, &m, &opts);
        }
    }
}

/// DELETE on a collection: every object the filter keeps.
pub fn delete_collection(
    store: &Store,
    res: &ResourceType,
    ns: Option<&str>,
    keep: &dyn Fn(&Value) -> bool,
    opts: &DeleteOpts,
) -> Result<(Vec<Arc<Value>>, u64), ApiError> {
    opts.check()?;
    store.transact(|t| {
        let mut out = Vec::new();
        for obj in t.list(res, ns) {
            if !keep(&obj) {
                continue;
            }
            let (n, m) = ns_name(&obj);
            if let Ok((gone, _)) = delete_in(t, res, &n, &m, opts) {
                out.push(gone);
            }
        }
        Ok((out, t.next_rv() - 1))
    })
}

/// Stores an object as cluster state, the way a controller or kubelet
/// would have left it: identity stamped, names and labels validated,
/// decoded as its type, status kept, no managed fields.
pub fn seed(t: &mut Txn<'_>, res: &ResourceType, obj: Value) -> Result<Arc<Value>, ApiError> {
    seed_with(t, res, obj, true)
}

/// [`seed`] for objects built by [`super::fixtures`], whose shape is known
/// to decode (a unit test there proves it): skips the typed round trip,
/// which dominates the cost of seeding thousands of pods.
pub fn seed_trusted(
    t: &mut Txn<'_>,
    res: &ResourceType,
    obj: Value,
) -> Result<Arc<Value>, ApiError> {
    seed_with(t, res, obj, false)
}

fn seed_with(
    t: &mut Txn<'_>,
    res: &ResourceType,
    mut obj: Value,
    decode_typed: bool,
) -> Result<Arc<Value>, ApiError> {
    require_object(res, &obj)?;
    check_type_meta(res, &obj)?;
    let ns = if res.namespaced {
        match meta_str(&obj, "namespace") {
            "" => "default".to_string(),
            n => n.to_string(),
        }
    } else {
        String::new()
    };
    let keep_uid = meta_str(&obj, "uid").to_string();
    let keep_created = meta_str(&obj, "creationTimestamp").to_string();
    with_meta(&mut obj, |m| m.remove("resourceVersion"));
    stamp_new(res, &ns, &mut obj)?;
    with_meta(&mut obj, |meta| {
        if !keep_uid.is_empty() {
            meta.insert("uid".into(), json!(keep_uid));
        }
        if !keep_created.is_empty() {
            meta.insert("creationTimestamp".into(), json!(keep_created));
        }
        if res.generation {
            meta.insert("generation".into(), json!(1));
        }
    });
    if let Some(m) = obj.as_object_mut() {
        m.insert("apiVersion".into(), json!(res.api_version()));
        m.insert("kind".into(), json!(res.kind));
    }
    if decode_typed {
        obj = schema::decode(res, &obj).map_err(ApiError::bad_request)?;
    }
    if res.kind == "Namespace" && res.group.is_empty() {
        namespace_defaults(&mut obj);
    }
    defaults(res, &mut obj);
    let mut causes = Vec::new();
    validate::metadata(res, &obj, &mut causes);
    validate::kind_rules(res, &obj, None, &mut causes);
    let name = meta_str(&obj, "name").to_string();
    if !causes.is_empty() {
        return Err(ApiError::invalid(res, &name, causes));
    }
    check_namespace(t, res, &ns, &name)?;
    if t.get(res, &ns, &name).is_some() {
        return Err(ApiError::already_exists(res, &name));
    }
    Ok(t.put(res, obj))
}

/// The write scope of a request, for callers that need it.
pub fn scope(res: &ResourceType, ctx: &Ctx) -> Scope {
    Scope::of(res, ctx.sub())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kube_api::fixtures;

    fn setup() -> Store {
        let store = Store::new(100);
        let ns = resources::lookup("namespaces").expect("served");
        store
            .transact(|t| seed(t, ns, fixtures::namespace("shop", &[])).map(|_| ()))
            .expect("namespace");
        store
    }

    fn ctx() -> Ctx {
        Ctx {
            manager: "test".into(),
            ..Ctx::default()
        }
    }

    #[test]
    fn network_policies_get_the_api_servers_defaults() {
        let store = setup();
        let np = resources::lookup("networkpolicies").expect("served");
        let body = json!({"metadata": {"name": "deny"}, "spec": {"podSelector": {},
            "ingress": [{"ports": [{"port": 53}]}]}});
        let w = create(&store, np, "shop", body, &ctx()).expect("created");
        assert_eq!(
            w.object["spec"]["policyTypes"],
            json!(["Ingress"]),
            "no Egress without egress rules"
        );
        assert_eq!(
            w.object["spec"]["ingress"][0]["ports"][0]["protocol"],
            "TCP"
        );
        assert_eq!(w.object["metadata"]["generation"], 1);
    }

    #[test]
    fn generation_counts_spec_changes_and_no_ops_keep_the_version() {
        let store = setup();
        let np = resources::lookup("networkpolicies").expect("served");
        let body = json!({"metadata": {"name": "p"}, "spec": {"podSelector": {}, "policyTypes": ["Egress"]}});
        let w = create(&store, np, "shop", body, &ctx()).expect("created");
        let rv = w.object["metadata"]["resourceVersion"].clone();
        let same = patch(
            &store,
            np,
            "shop",
            "p",
            PatchType::Merge,
            br#"{"spec":{"policyTypes":["Egress"]}}"#,
            &ctx(),
        )
        .expect("no-op");
        assert_eq!(same.object["metadata"]["resourceVersion"], rv);
        let labelled = patch(
            &store,
            np,
            "shop",
            "p",
            PatchType::Merge,
            br#"{"metadata":{"labels":{"a":"b"}}}"#,
            &ctx(),
        )
        .expect("labels");
        assert_eq!(
            labelled.object["metadata"]["generation"], 1,
            "metadata is not spec"
        );
        let changed = patch(
            &store,
            np,
            "shop",
            "p",
            PatchType::Merge,
            br#"{"spec":{"policyTypes":["Ingress"]}}"#,
            &ctx(),
        )
        .expect("spec");
        assert_eq!(changed.object["metadata"]["generation"], 2);
    }

    #[test]
    fn dry_runs_validate_but_store_nothing() {
        let store = setup();
        let pods = resources::lookup("pods").expect("served");
        let dry = Ctx {
            dry_run: true,
            ..ctx()
        };
        let body = fixtures::PodFixture::new("shop", "p", "10.0.0.1").to_json();
        let w = create(&store, pods, "shop", body.clone(), &dry).expect("valid");
        assert_eq!(w.code, 201);
        assert!(store.get(pods, "shop", "p").is_none());
        let mut bad = body;
        bad["metadata"]["labels"] = json!({"x": "not ok"});
        assert_eq!(
            create(&store, pods, "shop", bad, &dry)
                .expect_err("invalid")
                .code,
            422
        );
    }

    #[test]
    fn patch_type_follows_content_type_and_resource() {
        let pods = resources::lookup("pods").expect("served");
        let cnp = resources::lookup("cnp").expect("served");
        assert_eq!(
            PatchType::from_content_type(
                pods,
                "application/strategic-merge-patch+json; charset=utf-8"
            )
            .ok(),
            Some(PatchType::Strategic)
        );
        assert_eq!(
            PatchType::from_content_type(cnp, "application/strategic-merge-patch+json")
                .map_err(|e| e.code),
            Err(415)
        );
        assert_eq!(
            PatchType::from_content_type(pods, "application/json").map_err(|e| e.code),
            Err(415)
        );
    }
}
