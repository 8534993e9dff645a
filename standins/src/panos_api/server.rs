//! Listening, the `/api/` handler, and faults.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Form, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use riposte_firewall::xmlapi::xml::{self, escape};
use tokio::net::{TcpListener, TcpSocket};
use tokio::task::JoinHandle;
use tokio_rustls::{rustls, TlsAcceptor};
use tokio_util::sync::CancellationToken;

use super::{lock, FaultKind, Request, Shared};

fn xml_response(status: StatusCode, body: String) -> Response {
    (
        status,
        [("content-type", "application/xml; charset=UTF-8")],
        body,
    )
        .into_response()
}

fn error_xml(code: Option<u32>, msg: &str) -> String {
    match code {
        Some(c) => format!(
            "<response status=\"error\" code=\"{c}\"><msg><line>{}</line></msg></response>",
            escape(msg)
        ),
        None => format!(
            "<response status=\"error\"><msg><line>{}</line></msg></response>",
            escape(msg)
        ),
    }
}

/// Takes the first matching fault, if any.
fn take_fault(shared: &Shared, kind: &str) -> Option<FaultKind> {
    let mut faults = lock(&shared.faults);
    let i = faults
        .iter()
        .position(|f| f.times > 0 && f.only_type.as_deref().is_none_or(|t| t == kind))?;
    faults[i].times -= 1;
    let k = faults[i].kind.clone();
    if faults[i].times == 0 {
        faults.remove(i);
    }
    Some(k)
}

async fn api(
    State(shared): State<Arc<Shared>>,
    method: Method,
    headers: HeaderMap,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let kind = field("type").unwrap_or_default();
    let cmd = field("cmd").unwrap_or_default();
    let mut req = Request {
        method: method.to_string(),
        kind: kind.clone(),
        vsys: field("vsys"),
        target: field("target"),
        authorized: false,
        entries: 0,
        body_bytes: fields.iter().map(|(k, v)| k.len() + v.len() + 2).sum(),
    };
    if let Some(fault) = take_fault(&shared, &kind) {
        lock(&shared.log).push(req);
        return match fault {
            FaultKind::Status(s) => (
                StatusCode::from_u16(s).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                "Service Unavailable",
            )
                .into_response(),
            FaultKind::Html => (
                StatusCode::OK,
                [("content-type", "text/html")],
                "<!DOCTYPE html><html><head><title>PAN-OS Login</title></head><body><form action=\"/php/login.php\"></form></body></html>",
            )
                .into_response(),
            FaultKind::Garbage => (StatusCode::OK, "\u{0}\u{1}garbage").into_response(),
            FaultKind::Hang => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                StatusCode::GATEWAY_TIMEOUT.into_response()
            }
        };
    }
    let given = headers
        .get("x-pan-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| field("key"));
    let key = lock(&shared.key).clone();
    if given.as_deref() != Some(key.as_str()) {
        lock(&shared.log).push(req);
        return xml_response(
            StatusCode::FORBIDDEN,
            "<response status = 'error' code = '403'><result><msg>Invalid Credential</msg></result></response>".into(),
        );
    }
    req.authorized = true;
    // The firewall takes GET only for short requests.
    if method == Method::GET && cmd.len() > 2048 {
        lock(&shared.log).push(req);
        return xml_response(
            StatusCode::OK,
            error_xml(Some(18), "request too long for GET, use POST"),
        );
    }
    let answer = match kind.as_str() {
        "user-id" => {
            req.entries = cmd.matches("<entry").count();
            let applied = lock(&shared.table).apply(&cmd, Instant::now());
            match applied {
                Ok(r) if r.messages.is_empty() => "<response status=\"success\"><result><uid-response><version>2.0</version><payload/></uid-response></result></response>".to_string(),
                Ok(r) => {
                    let mut reg = String::new();
                    let mut unreg = String::new();
                    for (section, ip, msg) in &r.messages {
                        let line = format!("<entry ip=\"{}\" message=\"{}\"/>", escape(ip), escape(msg));
                        if *section == "register" { reg.push_str(&line) } else { unreg.push_str(&line) }
                    }
                    format!("<response status=\"error\"><msg><line><uid-response><version>2.0</version><payload><register>{reg}</register><unregister>{unreg}</unregister></payload></uid-response></line></msg></response>")
                }
                Err(e) => error_xml(None, &e),
            }
        }
        "op" => match xml::parse(&cmd) {
            Ok(doc) if doc.name == "show" => match lock(&shared.table).show(&doc, Instant::now()) {
                Ok(body) => body,
                Err(e) => error_xml(Some(17), &e),
            },
            Ok(_) => error_xml(Some(17), "Invalid command"),
            Err(e) => error_xml(Some(18), &format!("Malformed command: {e}")),
        },
        "" => error_xml(Some(400), "Missing type parameter"),
        other => error_xml(Some(1), &format!("Unknown command type {other}")),
    };
    lock(&shared.log).push(req);
    xml_response(StatusCode::OK, answer)
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/api/", any(api))
        .route("/api", any(api))
        .with_state(shared)
}

struct Running {
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Running")
    }
}

/// A listening socket that can be taken down and brought back.
#[derive(Debug)]
pub(crate) struct Endpoint {
    addr: SocketAddr,
    tls: Option<Arc<rustls::ServerConfig>>,
    running: tokio::sync::Mutex<Option<Running>>,
}

fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

impl Endpoint {
    pub async fn start(
        addr: SocketAddr,
        tls: Option<Arc<rustls::ServerConfig>>,
        shared: Arc<Shared>,
    ) -> std::io::Result<Endpoint> {
        let listener = bind(addr)?;
        let ep = Endpoint {
            addr: listener.local_addr()?,
            tls,
            running: tokio::sync::Mutex::new(None),
        };
        *ep.running.lock().await = Some(ep.spawn(listener, shared));
        Ok(ep)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn spawn(&self, listener: TcpListener, shared: Arc<Shared>) -> Running {
        let stop = CancellationToken::new();
        let tls = self.tls.clone().map(TlsAcceptor::from);
        let task = tokio::spawn(accept_loop(listener, tls, router(shared), stop.clone()));
        Running { stop, task }
    }

    pub async fn stop(&self) {
        if let Some(r) = self.running.lock().await.take() {
            r.stop.cancel();
            let _ = r.task.await;
        }
    }

    pub async fn restart(&self, shared: Arc<Shared>) -> std::io::Result<()> {
        let mut running = self.running.lock().await;
        if running.is_some() {
            return Ok(());
        }
        let mut tries = 0;
        let listener = loop {
            match bind(self.addr) {
                Ok(l) => break l,
                Err(_) if tries < 50 => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => return Err(e),
            }
        };
        *running = Some(self.spawn(listener, shared));
        Ok(())
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        if let Ok(mut running) = self.running.try_lock() {
            if let Some(r) = running.take() {
                r.stop.cancel();
            }
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    router: Router,
    stop: CancellationToken,
) {
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
        let stop = stop.clone();
        let tls = tls.clone();
        let svc = TowerToHyperService::new(router.clone());
        tokio::spawn(async move {
            let builder = auto::Builder::new(TokioExecutor::new());
            match tls {
                Some(acceptor) => {
                    let stream = tokio::select! {
                        _ = stop.cancelled() => return,
                        r = acceptor.accept(tcp) => match r {
                            Ok(s) => s,
                            Err(_) => return,
                        },
                    };
                    let conn = builder.serve_connection(TokioIo::new(stream), svc);
                    tokio::select! {
                        _ = stop.cancelled() => {}
                        _ = conn => {}
                    }
                }
                None => {
                    let conn = builder.serve_connection(TokioIo::new(tcp), svc);
                    tokio::select! {
                        _ = stop.cancelled() => {}
                        _ = conn => {}
                    }
                }
            }
        });
    }
}
