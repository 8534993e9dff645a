//! Requests to the API and their answers, typed with [`crate::api::wire`].

use std::time::Duration;

use reqwest::{Method, RequestBuilder, Url};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{ClientError, Connection};
use crate::api::wire::Problem;

/// A client of one Riposte API.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: Url,
    token: Option<String>,
    timeout: u64,
}

fn read_token(conn: &Connection) -> Result<Option<String>, ClientError> {
    let Some(path) = &conn.token_file else {
        return Ok(conn.token.clone().filter(|t| !t.is_empty()));
    };
    let text = std::fs::read_to_string(path).map_err(|e| {
        ClientError::Usage(format!(
            "cannot read the token file {}: {e}",
            path.display()
        ))
    })?;
    let token = text.trim();
    if token.is_empty() {
        return Err(ClientError::Usage(format!(
            "the token file {} is empty",
            path.display()
        )));
    }
    Ok(Some(token.to_owned()))
}

fn with_ca(
    builder: reqwest::ClientBuilder,
    conn: &Connection,
) -> Result<reqwest::ClientBuilder, ClientError> {
    let Some(path) = &conn.ca_file else {
        return Ok(builder);
    };
    let pem = std::fs::read(path).map_err(|e| {
        ClientError::Usage(format!("cannot read the CA file {}: {e}", path.display()))
    })?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem)
        .ok()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| {
            ClientError::Usage(format!("{} holds no PEM certificate", path.display()))
        })?;
    Ok(certs
        .into_iter()
        .fold(builder, |b, c| b.add_root_certificate(c)))
}

/// What went wrong on the way, as one line: the causes under reqwest's own
/// "error sending request" wrapper.
fn cause(e: &reqwest::Error) -> String {
    let text = match std::error::Error::source(e) {
        Some(source) => crate::error::report(source),
        None => e.to_string(),
    };
    // hyper-util's wrapper says nothing an operator can use.
    text.replace("client error (Connect): ", "")
        .replace("client error (SendRequest): ", "")
}

impl Client {
    pub fn new(conn: &Connection) -> Result<Client, ClientError> {
        // An empty RIPOSTE_URL is an unset one, as in kubectl.
        let server = match conn.server.trim() {
            "" => super::DEFAULT_SERVER,
            s => s,
        };
        let base = Url::parse(server)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
            .ok_or_else(|| {
                ClientError::Usage(format!(
                    "--server `{server}` is not an http:// or https:// URL"
                ))
            })?;
        let builder = reqwest::Client::builder()
            .timeout(Duration::from_secs(conn.timeout.max(1)))
            .connect_timeout(Duration::from_secs(conn.timeout.clamp(1, 10)))
            .user_agent(concat!("riposte-cli/", env!("CARGO_PKG_VERSION")));
        let http = with_ca(builder, conn)?.build().map_err(|e| {
            ClientError::Usage(format!("cannot set up the HTTP client: {}", cause(&e)))
        })?;
        Ok(Client {
            http,
            base,
            token: read_token(conn)?,
            timeout: conn.timeout.max(1),
        })
    }

    /// The URL of `segments` under the base, each segment percent-encoded
    /// (an EDL value `10.0.0.0/8` stays one segment).
    pub fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    pub fn request(&self, method: Method, segments: &[&str]) -> RequestBuilder {
        let req = self.http.request(method, self.url(segments));
        match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        }
    }

    fn transport(&self, e: &reqwest::Error) -> ClientError {
        let server = self.base.to_string();
        if e.is_timeout() {
            return ClientError::Timeout {
                server,
                secs: self.timeout,
            };
        }
        let cause = cause(e);
        let lower = cause.to_ascii_lowercase();
        // "invalid HTTP version": a TLS server answered plain HTTP.
        let tls = [
            "tls",
            "certificate",
            "rustls",
            "corrupt message",
            "invalid http version",
            "handshake",
        ]
        .iter()
        .any(|w| lower.contains(w));
        if tls {
            ClientError::Tls { server, cause }
        } else if e.is_connect() || e.is_request() {
            ClientError::Unreachable { server, cause }
        } else {
            ClientError::Unreachable {
                server,
                cause: format!("the connection failed: {cause}"),
            }
        }
    }

    /// Sends `req`; a refusal becomes [`ClientError::Api`] with the
    /// problem's title and detail (or the status alone when the body is not
    /// a problem document).
    pub async fn send(&self, req: RequestBuilder) -> Result<reqwest::Response, ClientError> {
        let resp = req.send().await.map_err(|e| self.transport(&e))?;
        let status = resp.status();
        if status.is_success() || status == reqwest::StatusCode::NOT_MODIFIED {
            return Ok(resp);
        }
        let bytes = resp.bytes().await.unwrap_or_default();
        let problem = serde_json::from_slice::<Problem>(&bytes).ok();
        let title = problem
            .as_ref()
            .map(|p| p.title.clone())
            .filter(|t| !t.is_empty())
            .or_else(|| status.canonical_reason().map(str::to_owned))
            .unwrap_or_default();
        let detail = problem
            .map(|p| p.detail)
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| "(no detail given)".to_owned());
        let hint = match status.as_u16() {
            401 => " (check --token, --token-file or RIPOSTE_TOKEN)",
            403 => " (ask for a token with that scope)",
            _ => "",
        };
        Err(ClientError::Api {
            status: status.as_u16(),
            title,
            detail,
            hint,
        })
    }

    /// Sends `req` and reads the answer as `T`.
    pub async fn json<T: DeserializeOwned>(
        &self,
        req: RequestBuilder,
        what: &str,
    ) -> Result<T, ClientError> {
        let resp = self.send(req).await?;
        let bytes = resp.bytes().await.map_err(|e| self.transport(&e))?;
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Unexpected {
            what: what.to_owned(),
            cause: e.to_string(),
        })
    }

    pub async fn get<T: DeserializeOwned, Q: Serialize + ?Sized>(
        &self,
        segments: &[&str],
        query: &Q,
    ) -> Result<T, ClientError> {
        let req = self.request(Method::GET, segments).query(query);
        self.json(req, &format!("GET {}", segments.join("/"))).await
    }

    pub async fn post<T: DeserializeOwned, B: Serialize + ?Sized>(
        &self,
        segments: &[&str],
        body: Option<&B>,
    ) -> Result<T, ClientError> {
        let mut req = self.request(Method::POST, segments);
        if let Some(body) = body {
            req = req.json(body);
        }
        self.json(req, &format!("POST {}", segments.join("/")))
            .await
    }

    pub async fn delete<T: DeserializeOwned>(&self, segments: &[&str]) -> Result<T, ClientError> {
        let req = self.request(Method::DELETE, segments);
        self.json(req, &format!("DELETE {}", segments.join("/")))
            .await
    }
}
