//! What a control connection reports (file operations, logins, transfers) and how it ends when the
//! server shuts down: `421` at once when idle; a running transfer may finish (`226`, then `421`)
//! until the grace period ends, then it is aborted (`426`, the upload discarded) and `421` follows.

use ferry_admission::{LoginResult, Phase, Stop};
use ferry_observe::{EventKind, SessionTap};
use ferry_proto::reply::{Reply, ReplyCode};
use ferry_proto::session::{FsError, Login, StorageOk, StorageRequest, Transfer, TransferEvent};
use tracing::info;

use super::{Conn, Instant};
use crate::Server;

/// A file operation under way, for its event.
pub(super) struct Op {
    kind: EventKind,
    path: String,
    target: Option<String>,
}

/// The file operation a storage request is (`None` for reads: stat, brief listings, MDTM).
pub(super) fn op_of(request: &StorageRequest) -> Option<Op> {
    let (kind, path, target) = match request {
        StorageRequest::CreateDir(p) => (EventKind::Mkdir, p, None),
        StorageRequest::RemoveDir(p) => (EventKind::Rmdir, p, None),
        StorageRequest::RemoveFile(p) => (EventKind::Delete, p, None),
        StorageRequest::Rename { from, to } => (EventKind::Rename, from, Some(to.display())),
        StorageRequest::Stat(_) | StorageRequest::ListBrief(_) | StorageRequest::SetModified(..) => {
            return None
        }
    };
    Some(Op {
        kind,
        path: path.display(),
        target,
    })
}

/// Reports how a file operation ended.
pub(super) fn op_done(tap: &SessionTap, op: Option<Op>, result: &Result<StorageOk, FsError>) {
    if let Some(op) = op {
        let result = result.as_ref().map(drop).map_err(|e| format!("{e:?}"));
        tap.file_op(op.kind, &op.path, op.target.as_deref(), result);
    }
}

/// A transfer's end as a result for its event.
pub(super) fn transfer_result(ev: &TransferEvent) -> Result<(), String> {
    match ev {
        TransferEvent::Finished { .. } => Ok(()),
        TransferEvent::Aborted => Err("aborted".to_owned()),
        TransferEvent::NoConnection => Err("no data connection".to_owned()),
        TransferEvent::SourcePortDenied { .. } => Err("active source port denied".to_owned()),
        TransferEvent::ConnectionLost => Err("data connection lost".to_owned()),
        TransferEvent::StorageFailed(e) => Err(format!("storage: {e:?}")),
        TransferEvent::DataTlsRefused(e) => Err(format!("data connection TLS: {e:?}")),
        other => Err(format!("{other:?}")),
    }
}

/// Reports a login attempt (and a ban it caused).
pub(super) fn login(tap: &SessionTap, server: &Server, user: &str, result: &LoginResult<Login>) {
    let anonymous = server.config.anonymous.is_some() && matches!(user, "anonymous" | "ftp");
    let method = if anonymous { "anonymous" } else { "password" };
    match result {
        LoginResult::Accepted(login) => tap.login(&login.user, method, true),
        LoginResult::Refused { banned } => {
            tap.login(user, method, false);
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
                let refused = TransferEvent::StorageFailed(FsError::PermissionDenied);
                self.session.handle_transfer(Instant::now(), refused);
                false
            }
        }
    }

    /// Whether the session is done draining: the server is shutting down and no transfer runs any
    /// more (its final reply has gone out); then says `421`.
    pub(super) async fn drained(&mut self, stop: &Stop) -> bool {
        if self.running.is_some() || stop.phase() == Phase::Serving {
            return false;
        }
        self.end_for_shutdown().await;
        true
    }

    /// Ends the session for a shutdown: a transfer still running is aborted (`426`; an upload is
    /// discarded, never committed), then `421`.
    pub(super) async fn end_for_shutdown(&mut self) {
        if let Some(mut running) = self.running.take() {
            running.handle.abort();
            let _ = (&mut running.handle).await;
            let mut last = None;
            while let Ok(ev) = running.events.try_recv() {
                match ev {
                    TransferEvent::Started { .. } => self.session.handle_transfer(Instant::now(), ev),
                    ev => last = Some(ev),
                }
            }
            match last {
                // It ended just now, on its own: its own reply.
                Some(ev) => {
                    self.observe_transfer(&running, &ev);
                    self.session.handle_transfer(Instant::now(), ev);
                    let _ = self.drain().await;
                }
                None => {
                    info!("shutdown grace period over: transfer aborted");
                    self.observe_transfer(&running, &TransferEvent::Aborted);
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
