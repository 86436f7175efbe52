//! Data-connection set-up (PORT, EPRT, PASV, EPSV) and the transfer commands.

use std::net::SocketAddr;

use crate::addr::EpsvArg;
use crate::command::TransferType;
use crate::listing::parse_list_args;
use crate::reply::ReplyCode;

use super::*;

impl Session {
    pub(super) fn abort_running(&mut self) {
        if let Waiting::Transfer(r) = &mut self.waiting {
            if !r.aborting {
                r.aborting = true;
                self.push(Output::AbortTransfer);
            }
        }
    }

    pub(super) fn active(&mut self, target: SocketAddr) {
        if self.epsv_all {
            return self.reply(
                ReplyCode::BAD_SEQUENCE,
                "EPSV ALL in effect; only EPSV is allowed",
            );
        }
        let peer_ip = canonical(self.peer.ip());
        if canonical(target.ip()) != peer_ip && !self.danger_allow_fxp {
            return self.reply(
                ReplyCode::ARGUMENT_ERROR,
                "Active data connections only to your own address",
            );
        }
        if target.port() < 1024 {
            return self.reply(
                ReplyCode::ARGUMENT_ERROR,
                "Active data connections only to ports 1024 and above",
            );
        }
        self.data = DataSetup::Active;
        self.push(Output::SetActive(target));
        self.reply(ReplyCode::COMMAND_OK, "Active data connection target set");
    }

    pub(super) fn passive(&mut self, family: PassiveFamily) {
        if self.epsv_all && family == PassiveFamily::V4 {
            return self.reply(
                ReplyCode::BAD_SEQUENCE,
                "EPSV ALL in effect; only EPSV is allowed",
            );
        }
        if family == PassiveFamily::V4 && canonical(self.local.ip()).is_ipv6() {
            return self.reply(ReplyCode::CANT_OPEN_DATA, "PASV is IPv4-only; use EPSV on IPv6");
        }
        self.data = DataSetup::None;
        self.waiting = Waiting::Passive(family);
        self.push(Output::OpenPassive(family));
    }

    pub(super) fn epsv(&mut self, arg: EpsvArg) {
        match arg {
            EpsvArg::All => {
                self.epsv_all = true;
                self.reply(ReplyCode::COMMAND_OK, "EPSV ALL ok");
            }
            EpsvArg::Any => self.passive(PassiveFamily::Any),
            EpsvArg::Protocol(p) => {
                let ours = if canonical(self.local.ip()).is_ipv6() {
                    2
                } else {
                    1
                };
                if p == ours {
                    self.passive(PassiveFamily::Any)
                } else {
                    self.reply(
                        ReplyCode::PROTOCOL_NOT_SUPPORTED,
                        format!("Network protocol not supported, use ({ours})"),
                    )
                }
            }
        }
    }

    pub(super) fn retr(&mut self, arg: &[u8], offset: u64) {
        if self.denied(|p| p.read) {
            return;
        }
        let ascii = self.transfer_type == TransferType::Ascii;
        self.with_path(arg, |s, path| {
            let what = path.display();
            s.start_transfer(what, false, Transfer::Retr { path, offset, ascii });
        });
    }

    pub(super) fn stor(&mut self, arg: &[u8], mode: StoreMode) {
        if self.denied(|p| p.write) {
            return;
        }
        let ascii = self.transfer_type == TransferType::Ascii;
        self.with_path(arg, |s, path| {
            if path.is_root() {
                return s.reply(
                    ReplyCode::NAME_NOT_ALLOWED,
                    "Cannot store onto the root directory",
                );
            }
            let what = path.display();
            s.start_transfer(
                what,
                mode == StoreMode::Unique,
                Transfer::Stor { path, mode, ascii },
            );
        });
    }

    pub(super) fn list(&mut self, arg: Option<&[u8]>, format: ListFormat) {
        if self.denied(|p| p.list) {
            return;
        }
        let (flags, path_arg) = match format {
            // MLSD takes a path, never flags.
            ListFormat::Machine => (Vec::new(), arg.map(<[u8]>::to_vec)),
            _ => {
                let a = parse_list_args(arg);
                (a.flags, a.path)
            }
        };
        let permissions = self.login().map(|l| l.permissions).unwrap_or_default();
        let all = flags.contains(&b'a');
        self.with_path(path_arg.as_deref().unwrap_or_default(), |s, path| {
            let what = format!("listing of {}", path.display());
            s.start_transfer(
                what,
                false,
                Transfer::List {
                    path,
                    format,
                    permissions,
                    all,
                },
            );
        });
    }

    pub(super) fn start_transfer(&mut self, what: String, unique: bool, transfer: Transfer) {
        if self.tls && !self.prot_private && self.require_protected_data() {
            self.data = DataSetup::None;
            self.push(Output::ResetData);
            return self.reply(
                ReplyCode::PROT_LEVEL_DENIED,
                "Data connections must be protected: send PBSZ 0 and PROT P",
            );
        }
        if self.data == DataSetup::None {
            return self.reply(ReplyCode::CANT_OPEN_DATA, "Use PORT, EPRT, PASV or EPSV first");
        }
        self.data = DataSetup::None;
        self.waiting = Waiting::Transfer(Running {
            what,
            aborting: false,
            unique,
            bytes: 0,
        });
        self.push(Output::Transfer(transfer));
    }
}
