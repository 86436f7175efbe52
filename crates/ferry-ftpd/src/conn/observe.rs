//! What a control connection reports (logins; file operations and transfers are reported by the
//! policy layer through the session's `SessionTap`) and how it ends when the
//! server shuts down: `421` at once when idle; a running transfer may finish (`226`, then `421`)
//! until the grace period ends, then it is aborted (`426`, the upload discarded) and `421` follows.

use ferry_admission::{LoginResult, Phase};
use ferry_observe::{LoginOutcome, SessionTap};
use ferry_proto::reply::{Reply, ReplyCode};
use ferry_proto::session::{Login, Transfer, TransferEvent};
use tracing::info;

use super::{Conn, Instant};
use crate::Server;

/// Reports a login attempt whose credentials took `verification` to check (and a ban it caused).
pub(super) fn login(
    tap: &SessionTap,
    server: &Server,
    user: &str,
    result: &LoginResult<Login>,
    verification: Option<std::time::Duration>,
) {
    let anonymous = server.config.anonymous.is_some() && matches!(user, "anonymous" | "ftp");
    let method = if anonymous { "anonymous" } else { "password" };
    match result {
        LoginResult::Accepted(login) => tap.login_result(&login.user, method, LoginOutcome::Ok, verification),
        LoginResult::Refused {
            already_banned: true, ..
        } => tap.login_result(user, method, LoginOutcome::Banned, None),
        LoginResult::Refused { banned, .. } => {
            tap.login_result(user, method, LoginOutcome::Failed, verification);
            if let Some(until) = banned {
                tap.banned(*until);
            }
        }
    }
}

impl Conn {
    /// Whether an upload may start (the pre-upload hook, if one is configured); a refused one is
    /// answered `550`.
    pub(super) async fn upload_allowed(&mut self, t: &Transfer) -> bool {
        let Transfer::Stor { path, .. } = t else {
            return true;
        };
        match self.tap.check_upload(&path.display()).await {
            Ok(()) => true,
            Err(_) => {
                let refused = TransferEvent::StorageFailed(ferry_proto::session::FsError {
                    kind: ferry_vfs::ErrorKind::PermissionDenied,
                    detail: Some("Upload refused by the server's pre-upload check".to_owned()),
                });
                self.session.handle_transfer(Instant::now(), refused);
                false
            }
        }
    }

    /// Whether the session is done draining: the server is shutting down and no transfer runs any
    /// more (its final reply has gone out); then says `421`.
    pub(super) async fn drained(&mut self) -> bool {
        if self.running.is_some() || self.stop.phase() == Phase::Serving {
            return false;
        }
        // Boxed: checked on every turn of the session loop, needed once.
        Box::pin(self.end_for_shutdown()).await;
        true
    }

    /// Ends the session for a shutdown: a transfer still running is aborted (`426`; an upload is
    /// discarded, never committed), then `421`.
    pub(super) async fn end_for_shutdown(&mut self) {
        if let Some(running) = self.running.take() {
            let mut last = None;
            for ev in running.cancel() {
                match ev {
                    TransferEvent::Started { .. } => self.session.handle_transfer(Instant::now(), ev),
                    ev => last = Some(ev),
                }
            }
            match last {
                // It ended just now, on its own: its own reply.
                Some(ev) => {
                    self.observe_transfer(&ev);
                    self.session.handle_transfer(Instant::now(), ev);
                    let _ = self.drain().await;
                }
                None => {
                    info!("shutdown grace period over: transfer aborted");
                    self.observe_transfer(&TransferEvent::Aborted);
                    let _ = self.drain().await;
                    let reply = Reply::new(
                        ReplyCode::TRANSFER_ABORTED,
                        "Server shutting down; transfer aborted",
                    );
                    self.out.extend(reply.to_bytes());
                }
            }
        }
        let bye = Reply::new(ReplyCode::SERVICE_NOT_AVAILABLE, "Server shutting down");
        self.out.extend(bye.to_bytes());
        let _ = self.flush().await;
    }
}
