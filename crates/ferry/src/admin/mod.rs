//! The admin HTTP listener (`admin.listen`): `/healthz`, `/readyz` and `/metrics`.
//!
//! Plain HTTP/1.1 on loopback by default; it exposes no user data and accepts no input beyond the
//! request line. Connections are bounded in number and time.

pub mod metrics;
pub mod storage;

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ferry_auth::UserStore;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, ALLOW, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing::{debug, warn};

pub use metrics::Metrics;

/// Admin connections served at once; more are closed at once.
const MAX_CONNECTIONS: usize = 32;
/// Time allowed for a request's headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// Time allowed for a whole connection.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(30);
/// Time allowed for the user-database probe of `/readyz`.
const DB_PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// The content type of the exposition (`prometheus-client` writes OpenMetrics text).
const METRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// What the endpoints report on.
#[derive(Debug)]
pub struct Admin {
    metrics: Arc<Metrics>,
    draining: AtomicBool,
    users: UserStore,
    /// The SQLite file of the user database (`None`: PostgreSQL, probed by a query only).
    users_db: Option<PathBuf>,
    storage: StorageProbe,
}

/// How `/readyz` checks the storage back-end.
#[derive(Debug)]
pub enum StorageProbe {
    /// The files root must be a reachable directory.
    Local(PathBuf),
    /// The bucket must answer a one-key listing.
    S3(ferry_vfs::s3::S3Fs),
}

impl Admin {
    /// State for the endpoints: the metrics, and the user database and files root `/readyz` probes.
    pub fn new(
        metrics: Arc<Metrics>,
        users: UserStore,
        users_db: Option<PathBuf>,
        storage: StorageProbe,
    ) -> Arc<Self> {
        Arc::new(Admin {
            metrics,
            draining: AtomicBool::new(false),
            users,
            users_db,
            storage,
        })
    }

    /// From now on `/readyz` answers 503: the server is shutting down.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    /// Why the server is not ready, if it is not: draining, the user database cannot be read, or the
    /// files root is gone.
    async fn not_ready(&self) -> Option<String> {
        if self.draining.load(Ordering::SeqCst) {
            return Some("draining: the server is shutting down".to_owned());
        }
        // The open pool keeps a removed file readable: look at the path as a new process would.
        if let Some(users_db) = &self.users_db {
            if let Err(e) = std::fs::File::open(users_db) {
                return Some(format!(
                    "the user database {} cannot be opened: {e}",
                    users_db.display()
                ));
            }
        }
        if let Some(why) = self.storage_not_ready().await {
            return Some(why);
        }
        match tokio::time::timeout(DB_PROBE_TIMEOUT, self.users.is_empty()).await {
            Ok(Ok(_)) => None,
            Ok(Err(e)) => Some(format!("the user database does not answer: {e}")),
            Err(_) => Some("the user database does not answer in time".to_owned()),
        }
    }

    /// Why the storage back-end is not usable, if it is not.
    async fn storage_not_ready(&self) -> Option<String> {
        match &self.storage {
            StorageProbe::Local(files_root) => match std::fs::metadata(files_root) {
                Ok(m) if m.is_dir() => None,
                Ok(_) => Some(format!(
                    "the files root {} is not a directory",
                    files_root.display()
                )),
                Err(e) => Some(format!(
                    "the files root {} cannot be reached: {e}",
                    files_root.display()
                )),
            },
            StorageProbe::S3(fs) => match tokio::time::timeout(DB_PROBE_TIMEOUT, fs.check()).await {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(format!("the S3 bucket does not answer: {e}")),
                Err(_) => Some("the S3 bucket does not answer in time".to_owned()),
            },
        }
    }

    async fn respond(&self, method: &Method, path: &str) -> Response<Full<Bytes>> {
        if method != Method::GET && method != Method::HEAD {
            let mut resp = text(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n".to_owned());
            resp.headers_mut()
                .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
            return resp;
        }
        match path {
            "/healthz" => text(StatusCode::OK, "ok\n".to_owned()),
            "/readyz" => match self.not_ready().await {
                None => text(StatusCode::OK, "ready\n".to_owned()),
                Some(why) => text(StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {why}\n")),
            },
            "/metrics" => {
                let mut resp = Response::new(Full::new(Bytes::from(self.metrics.encode())));
                resp.headers_mut()
                    .insert(CONTENT_TYPE, HeaderValue::from_static(METRICS_CONTENT_TYPE));
                resp
            }
            _ => text(
                StatusCode::NOT_FOUND,
                "not found; try /metrics, /healthz or /readyz\n".to_owned(),
            ),
        }
    }
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// Serves the endpoints on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, admin: Arc<Admin>) {
    let turns = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(pair) => pair,
            Err(e) => {
                warn!(error = %e, "admin listener: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(turn) = Arc::clone(&turns).try_acquire_owned() else {
            debug!(%peer, "admin listener: too many connections; closing");
            continue;
        };
        let admin = Arc::clone(&admin);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let admin = Arc::clone(&admin);
                let (method, path) = (req.method().clone(), req.uri().path().to_owned());
                async move { Ok::<_, Infallible>(admin.respond(&method, &path).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            match tokio::time::timeout(CONNECTION_TIMEOUT, conn).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => debug!(%peer, error = %e, "admin connection ended with an error"),
                Err(_) => debug!(%peer, "admin connection timed out"),
            }
            drop(turn);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `curl` (a real HTTP client) against `url`: the status code.
    async fn status(url: String) -> u16 {
        tokio::task::spawn_blocking(move || {
            let out = std::process::Command::new("curl")
                .args(["-sS", "--max-time", "10", "-o", "/dev/null", "-w", "%{http_code}"])
                .arg(&url)
                .output()
                .expect("curl is not installed; run scripts/install-test-deps.sh");
            String::from_utf8_lossy(&out.stdout).parse().expect("status")
        })
        .await
        .expect("curl task")
    }

    #[tokio::test]
    async fn readyz_turns_503_while_draining_and_healthz_stays_200() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("users.db");
        let users = UserStore::open(&db).await.expect("user database");
        let admin = Admin::new(
            Arc::new(Metrics::new()),
            users,
            Some(db),
            StorageProbe::Local(dir.path().to_path_buf()),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let task = tokio::spawn(serve(listener, Arc::clone(&admin)));
        assert_eq!(status(format!("{base}/readyz")).await, 200);
        admin.start_draining();
        assert_eq!(status(format!("{base}/readyz")).await, 503);
        assert_eq!(status(format!("{base}/healthz")).await, 200);
        task.abort();
    }
}
