//! A SOAR receiver stand-in: an HTTP server on loopback that checks what
//! Riposte sends the way a careful receiver would, records what it
//! accepted, and fails on demand.
//!
//! It verifies Standard Webhooks signatures (constant time, ±5 minutes,
//! any of several secrets) and the configured auth header, and answers 401
//! when either is wrong. Accepted deliveries are recorded by `webhook-id`,
//! so a test can say "every notification arrived exactly once". Scripted
//! behaviours apply to the next requests in order: N×500, a hang (the
//! request never answers), 429 with a Retry-After, 410 Gone, a 200 with a
//! garbage body, accept-then-500 (a lost acknowledgement, which provokes a
//! resend). [`SoarReceiver::down`] closes the listener and every
//! connection; [`SoarReceiver::up`] serves again on the same port. With
//! [`SoarReceiver::answer_duplicates`], an id accepted before gets Splunk
//! SOAR's or TheHive's duplicate answer instead of being recorded twice.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use riposte_standins::soar_receiver::{Behaviour, SoarReceiver};
//! let rx = SoarReceiver::builder().secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").start().await?;
//! rx.script([Behaviour::Status(500), Behaviour::Status(500)]);
//! // point a target at rx.url("/hook") …
//! # Ok(()) }
//! ```
//!
//! A 2xx answers each accepted request with the id of "what it created", in
//! every spelling a SOAR uses: `{"ok": true, "success": true, "id": N,
//! "_id": "~N", "ts": "N.000100"}` (XSOAR's incident `id`, Splunk SOAR's
//! container `id`, TheHive's alert `_id`, Slack's message `ts`), N counting
//! accepted requests from 1; [`Delivery::answered`] keeps N, so a test can
//! check that an update went to the incident its opening request created.
//!
//! [`signature`] is the Standard Webhooks check, written from the
//! specification.

pub mod signature;

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpSocket};
use tokio_util::sync::CancellationToken;

use signature::{Key, Signed};

/// What the receiver does with one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Behaviour {
    /// Answer this status with an empty JSON object (not recorded unless 2xx).
    Status(u16),
    /// Never answer (until the client gives up or the receiver goes down).
    Hang,
    /// Answer the status with `Retry-After: <value>`.
    RetryAfter(u16, String),
    /// 200 with a body that is not JSON (recorded: 2xx is delivered).
    Garbage,
    /// Record the delivery, then answer 500: the sender never learns it
    /// got through and sends again.
    AcceptThen500,
}

/// Which duplicate answer to give for an id accepted before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DuplicateStyle {
    /// `{"failed": true, "message": "duplicate…", "existing_container_id": N}`.
    SplunkSoar,
    /// 400 `{"type": "CreateError", "message": "… already exists"}`.
    TheHive,
}

/// One accepted delivery.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub id: String,
    pub timestamp: i64,
    /// `POST`, or `PATCH` for a TheHive alert update.
    pub method: String,
    pub path: String,
    /// The number the receiver answered as the id of what the request
    /// created (see [`SoarReceiver`]): 1 for the first accepted request.
    pub answered: usize,
    pub headers: HashMap<String, String>,
    pub body: serde_json::Value,
    pub received_at: std::time::Instant,
}

#[derive(Debug, Default)]
struct State {
    script: VecDeque<Behaviour>,
    gone: bool,
    duplicates: Option<DuplicateStyle>,
    deliveries: Vec<Delivery>,
    accepted: HashMap<String, usize>,
    requests: usize,
    request_times: Vec<std::time::Instant>,
    unauthorized: usize,
    bad_signature: usize,
}

#[derive(Debug)]
struct Shared {
    keys: Vec<Key>,
    auth: Option<(String, String)>,
    tolerance_secs: i64,
    state: Mutex<State>,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Configures a [`SoarReceiver`].
#[derive(Debug, Default)]
pub struct Builder {
    secrets: Vec<String>,
    auth: Option<(String, String)>,
}

impl Builder {
    /// Requires a valid Standard Webhooks signature by this secret (or any
    /// other one added).
    pub fn secret(mut self, whsec: &str) -> Builder {
        self.secrets.push(whsec.to_string());
        self
    }

    /// Requires header `name` to equal `value` (e.g. `authorization`,
    /// `Bearer t0ken`; `ph-auth-token`, `t0ken`).
    pub fn auth(mut self, name: &str, value: &str) -> Builder {
        self.auth = Some((name.to_ascii_lowercase(), value.to_string()));
        self
    }

    pub async fn start(self) -> anyhow::Result<SoarReceiver> {
        let keys = self
            .secrets
            .iter()
            .map(|s| Key::parse(s))
            .collect::<Result<Vec<_>, _>>()?;
        let shared = Arc::new(Shared {
            keys,
            auth: self.auth,
            tolerance_secs: 300,
            state: Mutex::new(State::default()),
        });
        let listener = bind("127.0.0.1:0".parse()?)?;
        let addr = listener.local_addr()?;
        let stop = CancellationToken::new();
        tokio::spawn(serve(listener, shared.clone(), stop.clone()));
        Ok(SoarReceiver {
            addr,
            shared,
            stop: Mutex::new(Some(stop)),
        })
    }
}

/// The running receiver.
#[derive(Debug)]
pub struct SoarReceiver {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Mutex<Option<CancellationToken>>,
}

fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    // Lets `up` take the port back while old connections linger.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

impl SoarReceiver {
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// A receiver that checks nothing but records everything.
    pub async fn start() -> anyhow::Result<SoarReceiver> {
        Builder::default().start().await
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Queues behaviours for the next requests, in order; after them,
    /// requests are accepted.
    pub fn script(&self, behaviours: impl IntoIterator<Item = Behaviour>) {
        self.shared.lock().script.extend(behaviours);
    }

    /// Answers 410 Gone to everything from now on (or stops doing so).
    pub fn set_gone(&self, gone: bool) {
        self.shared.lock().gone = gone;
    }

    /// Answers a repeated id the way Splunk SOAR or TheHive would.
    pub fn answer_duplicates(&self, style: Option<DuplicateStyle>) {
        self.shared.lock().duplicates = style;
    }

    /// Closes the listener and drops every open connection.
    pub fn down(&self) {
        if let Some(stop) = self.stop.lock().unwrap_or_else(|e| e.into_inner()).take() {
            stop.cancel();
        }
    }

    /// Serves again on the same port.
    pub fn up(&self) -> anyhow::Result<()> {
        let mut slot = self.stop.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_some() {
            return Ok(());
        }
        let listener = bind(self.addr)?;
        let stop = CancellationToken::new();
        tokio::spawn(serve(listener, self.shared.clone(), stop.clone()));
        *slot = Some(stop);
        Ok(())
    }

    /// Every accepted delivery, in arrival order.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.shared.lock().deliveries.clone()
    }

    /// How many deliveries were accepted in all (cheap: no copy).
    pub fn accepted_total(&self) -> usize {
        self.shared.lock().deliveries.len()
    }

    /// How many times each webhook-id was accepted.
    pub fn accepted_counts(&self) -> HashMap<String, usize> {
        self.shared.lock().accepted.clone()
    }

    /// Requests received, whatever became of them.
    pub fn requests(&self) -> usize {
        self.shared.lock().requests
    }

    /// When each request arrived, in order.
    pub fn request_times(&self) -> Vec<std::time::Instant> {
        self.shared.lock().request_times.clone()
    }

    /// Requests refused for a wrong or missing auth header.
    pub fn unauthorized(&self) -> usize {
        self.shared.lock().unauthorized
    }

    /// Requests refused for a bad, stale or missing signature.
    pub fn bad_signatures(&self) -> usize {
        self.shared.lock().bad_signature
    }
}

impl Drop for SoarReceiver {
    fn drop(&mut self) {
        self.down();
    }
}

async fn serve(listener: TcpListener, shared: Arc<Shared>, stop: CancellationToken) {
    loop {
        let tcp = tokio::select! {
            _ = stop.cancelled() => break,
            r = listener.accept() => match r {
                Ok((tcp, _)) => tcp,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let shared = shared.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| handle(shared.clone(), req));
            let builder = auto::Builder::new(TokioExecutor::new());
            let conn = builder.serve_connection(TokioIo::new(tcp), svc);
            tokio::select! {
                _ = stop.cancelled() => {}
                _ = conn => {}
            }
        });
    }
}

fn answer(status: u16, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}

fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_string();
    let method = req.method().to_string();
    let headers: HashMap<String, String> = req
        .headers()
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
        .collect();
    let body = match Limited::new(req.into_body(), 16 * 1024 * 1024)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(_) => return Ok(answer(413, "{}")),
    };
    let behaviour = {
        let mut st = shared.lock();
        st.requests += 1;
        st.request_times.push(std::time::Instant::now());
        if let Some((name, value)) = &shared.auth {
            if headers.get(name) != Some(value) {
                st.unauthorized += 1;
                return Ok(answer(401, r#"{"error":"unauthorized"}"#));
            }
        }
        if !shared.keys.is_empty() {
            let signed = Signed {
                id: headers.get(signature::HEADER_ID).map(String::as_str),
                timestamp: headers.get(signature::HEADER_TIMESTAMP).map(String::as_str),
                signature: headers.get(signature::HEADER_SIGNATURE).map(String::as_str),
            };
            let checked = signature::verify(
                &shared.keys,
                signed,
                &body,
                now_secs(),
                shared.tolerance_secs,
            );
            if let Err(e) = checked {
                st.bad_signature += 1;
                return Ok(answer(401, format!(r#"{{"error":"{}"}}"#, e.as_str())));
            }
        }
        if st.gone {
            return Ok(answer(410, r#"{"error":"gone"}"#));
        }
        st.script.pop_front()
    };
    let id = headers
        .get(signature::HEADER_ID)
        .cloned()
        .unwrap_or_default();
    let record = |shared: &Shared| -> Result<usize, Box<Response<Full<Bytes>>>> {
        let mut st = shared.lock();
        let seen = st.accepted.get(&id).copied().unwrap_or(0);
        if seen > 0 {
            match st.duplicates {
                Some(DuplicateStyle::SplunkSoar) => {
                    return Err(Box::new(answer(
                        200,
                        r#"{"failed": true, "message": "duplicate source_data_identifier", "existing_container_id": 7}"#,
                    )))
                }
                Some(DuplicateStyle::TheHive) => {
                    return Err(Box::new(answer(
                        400,
                        r#"{"type":"CreateError","message":"Alert already exists"}"#,
                    )))
                }
                None => {}
            }
        }
        *st.accepted.entry(id.clone()).or_insert(0) += 1;
        let timestamp = headers
            .get(signature::HEADER_TIMESTAMP)
            .and_then(|t| t.parse().ok())
            .unwrap_or(0);
        let answered = st.deliveries.len() + 1;
        st.deliveries.push(Delivery {
            id: id.clone(),
            timestamp,
            method: method.clone(),
            path: path.clone(),
            answered,
            headers: headers.clone(),
            body: serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
            received_at: std::time::Instant::now(),
        });
        Ok(answered)
    };
    let created = |n: usize| {
        format!(r#"{{"ok":true,"success":true,"id":{n},"_id":"~{n}","ts":"{n}.000100"}}"#)
    };
    Ok(match behaviour {
        None => record(&shared).map_or_else(|r| *r, |n| answer(200, created(n))),
        Some(Behaviour::Status(code)) if (200..300).contains(&code) => {
            record(&shared).map_or_else(|r| *r, |n| answer(code, created(n)))
        }
        Some(Behaviour::Status(code)) => answer(code, "{}"),
        Some(Behaviour::RetryAfter(code, value)) => {
            let mut r = answer(code, "{}");
            if let Ok(v) = hyper::header::HeaderValue::from_str(&value) {
                r.headers_mut().insert(hyper::header::RETRY_AFTER, v);
            }
            r
        }
        Some(Behaviour::Hang) => {
            // Dropped when the client gives up or the receiver goes down.
            tokio::time::sleep(Duration::from_secs(3600)).await;
            answer(504, "{}")
        }
        Some(Behaviour::Garbage) => {
            record(&shared).map_or_else(|r| *r, |_| answer(200, "<html>\u{0}\u{1}not json"))
        }
        Some(Behaviour::AcceptThen500) => {
            let _ = record(&shared);
            answer(500, "{}")
        }
    })
}
