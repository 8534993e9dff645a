//! Listeners (HTTPS, and plain HTTP if asked), the state requests share,
//! and stopping and restarting on the same port.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpSocket};
use tokio::task::JoinHandle;
use tokio_rustls::{rustls, TlsAcceptor};
use tokio_util::sync::CancellationToken;

use super::faults::Faults;
use super::handler;
use super::log::RequestLog;
use super::rbac::Authorizer;
use super::store::{Store, DEFAULT_HISTORY};

/// How the stand-in is started.
#[derive(Debug, Clone)]
pub struct Options {
    /// Changes kept for watches and paged lists; older resourceVersions
    /// get 410 Expired.
    pub history: usize,
    /// How often watches with `allowWatchBookmarks` get a BOOKMARK (the
    /// API server sends one about every minute; tests want it sooner).
    pub bookmark_interval: Duration,
    /// Also listen on plain HTTP (same token required).
    pub plain_http: bool,
    /// The bearer token clients must send; random when `None`.
    pub token: Option<String>,
    /// Requests the log remembers (the oldest are forgotten).
    pub log_capacity: usize,
    /// Whether the log keeps request bodies.
    pub log_bodies: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            history: DEFAULT_HISTORY,
            bookmark_interval: Duration::from_secs(5),
            plain_http: false,
            token: None,
            log_capacity: super::log::DEFAULT_CAPACITY,
            log_bodies: true,
        }
    }
}

/// State every request handler sees.
#[derive(Debug)]
pub struct Shared {
    pub store: Store,
    pub token: String,
    pub faults: Faults,
    pub log: RequestLog,
    pub options: Options,
    watch_stop: Mutex<CancellationToken>,
    address: Mutex<String>,
    authorizer: Mutex<Option<Authorizer>>,
}

impl Shared {
    pub fn new(options: Options, token: String) -> Self {
        Self {
            store: Store::new(options.history),
            token,
            faults: Faults::default(),
            log: RequestLog::new(options.log_capacity, options.log_bodies),
            options,
            watch_stop: Mutex::new(CancellationToken::new()),
            address: Mutex::new(String::new()),
            authorizer: Mutex::new(None),
        }
    }

    /// The RBAC restriction in force, if any.
    pub fn authorizer(&self) -> Option<Authorizer> {
        self.authorizer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn set_authorizer(&self, a: Option<Authorizer>) {
        *self.authorizer.lock().unwrap_or_else(|p| p.into_inner()) = a;
    }

    /// A token cancelled by the next [`Shared::drop_watches`].
    pub fn watch_token(&self) -> CancellationToken {
        self.watch_stop
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .child_token()
    }

    /// Ends every open watch stream (cleanly, as at a watch timeout).
    pub fn drop_watches(&self) {
        let mut t = self.watch_stop.lock().unwrap_or_else(|p| p.into_inner());
        t.cancel();
        *t = CancellationToken::new();
    }

    /// `host:port` for `/api`'s serverAddressByClientCIDRs.
    pub fn server_address(&self) -> String {
        self.address
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn set_server_address(&self, a: String) {
        *self.address.lock().unwrap_or_else(|p| p.into_inner()) = a;
    }
}

#[derive(Debug)]
struct Running {
    stop: CancellationToken,
    task: JoinHandle<()>,
}

/// One listening socket that can be taken down and brought back on the
/// same port.
#[derive(Debug)]
pub struct Endpoint {
    addr: SocketAddr,
    tls: Option<Arc<rustls::ServerConfig>>,
    running: tokio::sync::Mutex<Option<Running>>,
}

fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    // Lets a restart take the port back while old connections linger.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

impl Endpoint {
    /// Binds `addr` (port 0: the kernel picks) and starts serving.
    pub async fn start(
        addr: SocketAddr,
        tls: Option<Arc<rustls::ServerConfig>>,
        shared: Arc<Shared>,
    ) -> std::io::Result<Self> {
        let listener = bind(addr)?;
        let addr = listener.local_addr()?;
        let ep = Self {
            addr,
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
        let task = tokio::spawn(accept_loop(listener, tls, shared, stop.clone()));
        Running { stop, task }
    }

    /// Closes the listener and every open connection: clients get
    /// "connection refused" until [`Endpoint::restart`].
    pub async fn stop(&self) {
        if let Some(r) = self.running.lock().await.take() {
            r.stop.cancel();
            let _ = r.task.await;
        }
    }

    /// Listens again on the same port.
    pub async fn restart(&self, shared: Arc<Shared>) -> std::io::Result<()> {
        let mut running = self.running.lock().await;
        if running.is_some() {
            return Ok(());
        }
        let mut tries = 0;
        let listener = loop {
            match bind(self.addr) {
                Ok(l) => break l,
                Err(e) if tries < 50 => {
                    tries += 1;
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => return Err(e),
            }
        };
        *running = Some(self.spawn(listener, shared));
        Ok(())
    }

    pub async fn is_running(&self) -> bool {
        self.running.lock().await.is_some()
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        // A dropped stand-in stops listening and closes its connections.
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
    shared: Arc<Shared>,
    stop: CancellationToken,
) {
    loop {
        let tcp = tokio::select! {
            _ = stop.cancelled() => break,
            r = listener.accept() => match r {
                Ok((tcp, _)) => tcp,
                Err(_) => {
                    // Out of descriptors or a reset during accept: back off
                    // briefly rather than spin.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let shared = shared.clone();
        let stop = stop.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| handler::handle(shared.clone(), req));
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
