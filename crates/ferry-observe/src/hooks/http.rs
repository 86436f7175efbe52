//! POSTing an event's JSON to an HTTP(S) URL: one HTTP/1.1 request per attempt on a new
//! connection; HTTPS verifies the server against the system's trusted roots. A 2xx answer is
//! success; anything else (or no answer within the time limit) is a failed attempt.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::header::{CONTENT_TYPE, HOST, USER_AGENT};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// Response bytes read at most (the body is not used; reading a little lets the connection end
/// cleanly).
const MAX_RESPONSE: usize = 64 * 1024;

/// POSTs `json` to `url`; `Err` says why the attempt failed.
pub(crate) async fn post(url: &str, json: String, timeout: Duration) -> Result<(), String> {
    tokio::time::timeout(timeout, attempt(url, json))
        .await
        .map_err(|_| format!("no answer from {url} within {timeout:?}"))?
}

async fn attempt(url: &str, json: String) -> Result<(), String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("invalid hook URL {url}: {e}"))?;
    let host = parsed
        .host_str()
        .ok_or_else(|| format!("hook URL {url} has no host"))?
        .to_owned();
    let port = parsed
        .port_or_known_default()
        .ok_or_else(|| format!("hook URL {url} has no port"))?;
    let authority = match parsed.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.clone(),
    };
    let mut target = parsed.path().to_owned();
    if let Some(q) = parsed.query() {
        target.push('?');
        target.push_str(q);
    }
    let bare_host = host.trim_start_matches('[').trim_end_matches(']').to_owned();
    let tcp = TcpStream::connect((bare_host.as_str(), port))
        .await
        .map_err(|e| format!("cannot connect to {authority}: {e}"))?;
    let _ = tcp.set_nodelay(true);
    let request = Request::builder()
        .method(Method::POST)
        .uri(target)
        .header(HOST, authority)
        .header(CONTENT_TYPE, "application/json")
        .header(USER_AGENT, concat!("ferry/", env!("CARGO_PKG_VERSION")))
        .body(Full::new(Bytes::from(json)))
        .map_err(|e| e.to_string())?;
    match parsed.scheme() {
        "http" => send(tcp, request).await,
        "https" => {
            let name = rustls::pki_types::ServerName::try_from(bare_host)
                .map_err(|_| format!("`{host}` is not a valid TLS server name"))?;
            let tls = tokio_rustls::TlsConnector::from(client_config()?)
                .connect(name, tcp)
                .await
                .map_err(|e| format!("TLS with {host} failed: {e}"))?;
            send(tls, request).await
        }
        other => Err(format!("hook URL scheme `{other}` is not http or https")),
    }
}

async fn send<S>(stream: S, request: Request<Full<Bytes>>) -> Result<(), String>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    let driver = tokio::spawn(conn);
    let response = sender.send_request(request).await.map_err(|e| e.to_string());
    let result = match response {
        Ok(resp) => {
            let status = resp.status();
            let mut body = resp.into_body();
            let mut read = 0;
            while read < MAX_RESPONSE {
                match body.frame().await {
                    Some(Ok(frame)) => read += frame.data_ref().map_or(0, |d| d.len()),
                    _ => break,
                }
            }
            if status.is_success() {
                Ok(())
            } else {
                Err(format!("the hook URL answered {status}"))
            }
        }
        Err(e) => Err(e),
    };
    driver.abort();
    result
}

/// The TLS client configuration: the system's roots, loaded once.
fn client_config() -> Result<Arc<rustls::ClientConfig>, String> {
    static CONFIG: OnceLock<Result<Arc<rustls::ClientConfig>, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let mut roots = rustls::RootCertStore::empty();
            let loaded = rustls_native_certs::load_native_certs();
            let _ = roots.add_parsable_certificates(loaded.certs);
            let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
            rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map(|b| Arc::new(b.with_root_certificates(roots).with_no_client_auth()))
                .map_err(|e| e.to_string())
        })
        .clone()
}
