//! Command handlers: what each control command does to the session, and the replies to storage results.

use std::net::SocketAddr;

use crate::command::{Command, Opts, ParseError, Secret, TransferType, IMPLEMENTED_VERBS};
use crate::limits;
use crate::listing::{format_mdtm, parse_list_args, EntryKind, MLST_FACTS_FEAT};
use crate::path::{PathError, VPath};
use crate::reply::{Reply, ReplyCode};

use super::*;

impl Session {
    pub(super) fn run(&mut self, parsed: Result<Command, ParseError>) {
        let cmd = match parsed {
            Ok(cmd) => cmd,
            Err(e) => {
                self.rename_from = None;
                return self.reply(e.code, e.message);
            }
        };
        // RNTO must immediately follow RNFR: any other command forgets the pending rename. Likewise a RANG
        // range applies to the HASH right after it.
        let rename_from = self.rename_from.take();
        let hash_range = match cmd {
            Command::Rang(_) => None,
            _ => self.hash_range.take(),
        };
        // REST survives data-connection set-up (clients send it before or after PASV) and is consumed by
        // the next transfer command.
        let restart = match cmd {
            Command::Retr(_)
            | Command::Stor(_)
            | Command::Appe(_)
            | Command::Stou(_)
            | Command::List(_)
            | Command::Nlst(_)
            | Command::Mlsd(_) => std::mem::take(&mut self.restart),
            _ => 0,
        };
        // Session-level commands legal in every phase.
        match &cmd {
            Command::Quit => return self.close_with(ReplyCode::CLOSING_CONTROL, "Goodbye"),
            Command::Noop => return self.reply(ReplyCode::COMMAND_OK, "NOOP ok"),
            Command::Syst => return self.reply(ReplyCode::SYSTEM_TYPE, "UNIX Type: L8"),
            Command::Feat => return self.feat(),
            Command::Help(topic) => return self.help(topic.as_deref()),
            Command::Opts(opts) => return self.opts(opts),
            Command::Abor => return self.reply(ReplyCode::DATA_OPEN_NO_TRANSFER, "No transfer to abort"),
            Command::Auth(mech) => return self.auth(*mech),
            Command::Pbsz(_) => return self.pbsz(),
            Command::Prot(level) => return self.prot(*level),
            Command::Ccc => return self.ccc(),
            Command::Security(verb) => {
                return self.reply(
                    ReplyCode::NOT_IMPLEMENTED,
                    format!("{verb} not supported: ferry uses TLS (AUTH TLS)"),
                )
            }
            Command::Unsupported(verb) => {
                return self.reply(ReplyCode::NOT_IMPLEMENTED, format!("{verb} not implemented"))
            }
            Command::Unknown(verb) => {
                let verb = if verb.is_empty() { "(empty)" } else { verb.as_str() };
                return self.reply(ReplyCode::SYNTAX_ERROR, format!("Unknown command {verb}"));
            }
            Command::Smnt(_) => return self.reply(ReplyCode::NOT_IMPLEMENTED, "SMNT not implemented"),
            Command::User(name) => return self.user_cmd(name.clone()),
            Command::Pass(pw) => return self.pass_cmd(pw.clone()),
            Command::Rein => return self.rein(),
            _ => {}
        }
        if self.login().is_none() {
            let text = match self.phase {
                Phase::AwaitPass { .. } => "Send PASS first",
                _ => "Please log in with USER and PASS",
            };
            return self.reply(ReplyCode::NOT_LOGGED_IN, text);
        }
        match cmd {
            Command::Acct(_) => self.reply(ReplyCode::SUPERFLUOUS, "ACCT not needed"),
            Command::Allo => self.reply(ReplyCode::SUPERFLUOUS, "ALLO not needed"),
            Command::Pwd => {
                let cwd = self.cwd.clone();
                self.push(Output::Reply(Reply::path_created(
                    cwd.as_bytes(),
                    "is the current directory",
                )));
            }
            Command::Cwd(arg) => self.with_path(&arg, |s, path| {
                s.storage(Pending::Cwd(path.clone()), StorageRequest::Stat(path))
            }),
            Command::Cdup => {
                let path = self.cwd.parent();
                self.storage(Pending::Cwd(path.clone()), StorageRequest::Stat(path));
            }
            Command::Type(t) => {
                self.transfer_type = t;
                let text = match t {
                    TransferType::Ascii => "Type set to A",
                    TransferType::Image => "Type set to I",
                };
                self.reply(ReplyCode::COMMAND_OK, text);
            }
            Command::Stru => self.reply(ReplyCode::COMMAND_OK, "Structure set to F"),
            Command::Mode => self.reply(ReplyCode::COMMAND_OK, "Mode set to S"),
            Command::Rest(n) => {
                self.restart = n;
                self.reply(
                    ReplyCode::FILE_ACTION_PENDING,
                    format!("Restarting at {n}; send STOR or RETR"),
                );
            }
            Command::Port(addr) => self.active(SocketAddr::V4(addr)),
            Command::Eprt(addr) => self.active(addr),
            Command::Pasv => self.passive(PassiveFamily::V4),
            Command::Epsv(arg) => self.epsv(arg),
            Command::Retr(arg) => self.retr(&arg, restart),
            Command::Stor(arg) => {
                let mode = if restart > 0 {
                    StoreMode::At(restart)
                } else {
                    StoreMode::Create
                };
                self.stor(&arg, mode)
            }
            Command::Appe(arg) => self.stor(&arg, StoreMode::Append),
            Command::Stou(arg) => {
                let arg = arg.unwrap_or_else(|| b"ferry-upload".to_vec());
                self.stor(&arg, StoreMode::Unique)
            }
            Command::List(arg) => self.list(arg.as_deref(), ListFormat::Long),
            Command::Nlst(arg) => self.list(arg.as_deref(), ListFormat::Names),
            Command::Mlsd(arg) => self.list(arg.as_deref(), ListFormat::Machine),
            // The metadata of a path the client names needs no permission (as SIZE, MDTM and SFTP
            // STAT); listing a directory's names needs `list`.
            Command::Mlst(arg) => {
                let arg = arg.unwrap_or_default();
                self.with_path(&arg, |s, path| {
                    s.storage(Pending::Mlst(path.clone()), StorageRequest::Stat(path))
                })
            }
            Command::Stat(None) => self.stat_server(),
            // The storage's policy layer decides: a file's entry needs no permission (as MLST), a
            // directory's listing needs `list`.
            Command::Stat(Some(arg)) => {
                let args = parse_list_args(Some(&arg));
                let arg = args.path.unwrap_or_default();
                self.with_path(&arg, |s, path| {
                    s.storage(Pending::StatPath, StorageRequest::ListBrief(path))
                })
            }
            Command::Size(arg) => self.with_path(&arg, |s, path| {
                s.storage(Pending::Size, StorageRequest::Stat(path))
            }),
            Command::Mdtm(arg) => self.with_path(&arg, |s, path| {
                s.storage(Pending::Mdtm, StorageRequest::Stat(path))
            }),
            Command::Mfmt(time, arg) => {
                if self.denied(|p| p.write) {
                    return;
                }
                self.with_path(&arg, |s, path| {
                    s.storage(
                        Pending::Mfmt(path.clone(), time),
                        StorageRequest::SetModified(path, time),
                    )
                })
            }
            Command::Mkd(arg) => {
                if self.denied(|p| p.mkdir) {
                    return;
                }
                self.with_path(&arg, |s, path| {
                    s.storage(Pending::Mkd(path.clone()), StorageRequest::CreateDir(path))
                })
            }
            Command::Rmd(arg) => {
                if self.denied(|p| p.delete) {
                    return;
                }
                self.with_path(&arg, |s, path| {
                    if path.is_root() {
                        return s.reply(ReplyCode::FILE_UNAVAILABLE, "Cannot remove the root directory");
                    }
                    s.storage(Pending::Rmd, StorageRequest::RemoveDir(path))
                })
            }
            Command::Dele(arg) => {
                if self.denied(|p| p.delete) {
                    return;
                }
                self.with_path(&arg, |s, path| {
                    s.storage(Pending::Dele, StorageRequest::RemoveFile(path))
                })
            }
            Command::Rnfr(arg) => {
                if self.denied(|p| p.rename) {
                    return;
                }
                self.with_path(&arg, |s, path| {
                    if path.is_root() {
                        return s.reply(ReplyCode::FILE_UNAVAILABLE, "Cannot rename the root directory");
                    }
                    s.storage(Pending::Rnfr(path.clone()), StorageRequest::Stat(path))
                })
            }
            Command::Rnto(arg) => match rename_from {
                None => self.reply(ReplyCode::BAD_SEQUENCE, "RNFR required first"),
                Some(from) => self.with_path(&arg, |s, to| {
                    if to.is_root() {
                        return s.reply(
                            ReplyCode::NAME_NOT_ALLOWED,
                            "Cannot rename onto the root directory",
                        );
                    }
                    s.storage(Pending::Rnto, StorageRequest::Rename { from, to })
                }),
            },
            Command::Site(arg) => self.site(&arg),
            Command::Hash(arg) => self.hash_file(&arg, None, hash_range.unwrap_or_default()),
            Command::XHash(algorithm, arg) => self.hash_file(&arg.path, Some(algorithm), arg.range),
            Command::Rang(range) => self.rang(range),
            // Handled above for every phase.
            Command::Quit
            | Command::Noop
            | Command::Syst
            | Command::Feat
            | Command::Help(_)
            | Command::Opts(_)
            | Command::Abor
            | Command::Auth(_)
            | Command::Pbsz(_)
            | Command::Prot(_)
            | Command::Ccc
            | Command::Security(_)
            | Command::Unsupported(_)
            | Command::Unknown(_)
            | Command::Smnt(_)
            | Command::User(_)
            | Command::Pass(_)
            | Command::Rein => {}
        }
    }

    pub(super) fn user_cmd(&mut self, name: String) {
        if self.login().is_some() {
            return self.reply(
                ReplyCode::BAD_SEQUENCE,
                "Already logged in; use REIN to change user",
            );
        }
        if name.len() > limits::MAX_USER || name.chars().any(char::is_control) {
            return self.reply(ReplyCode::ARGUMENT_ERROR, "Invalid user name");
        }
        if !self.is_tls() && self.config.tls.policy == TlsPolicy::Required {
            // Refused before the client sends its password in the clear; the same for every name.
            self.phase = Phase::AwaitUser;
            return self.reply(
                ReplyCode::NOT_LOGGED_IN,
                "TLS required: use AUTH TLS before logging in",
            );
        }
        // Always 331, whether or not the user exists.
        self.phase = Phase::AwaitPass { user: name };
        self.reply(ReplyCode::NEED_PASSWORD, "Password required");
    }

    pub(super) fn pass_cmd(&mut self, password: Secret) {
        match std::mem::replace(&mut self.phase, Phase::AwaitUser) {
            Phase::AwaitPass { user } => {
                self.waiting = Waiting::Auth;
                self.push(Output::Authenticate { user, password });
            }
            Phase::LoggedIn(login) => {
                self.phase = Phase::LoggedIn(login);
                self.reply(ReplyCode::BAD_SEQUENCE, "Already logged in");
            }
            Phase::AwaitUser => self.reply(ReplyCode::BAD_SEQUENCE, "Send USER first"),
        }
    }

    pub(super) fn rein(&mut self) {
        self.phase = Phase::AwaitUser;
        self.cwd = VPath::root();
        self.transfer_type = TransferType::Image;
        self.restart = 0;
        self.rename_from = None;
        self.data = DataSetup::None;
        self.epsv_all = false;
        self.hash_algorithm = crate::hash::Algorithm::Sha256;
        self.hash_range = None;
        self.push(Output::ResetData);
        self.reply(ReplyCode::SERVICE_READY, "Session reinitialised; log in again");
    }

    pub(super) fn feat(&mut self) {
        let hash_line = crate::hash::feat_line(self.hash_algorithm);
        let lines: Vec<Vec<u8>> = [
            "Extensions supported:",
            "AUTH TLS",
            "EPRT",
            "EPSV",
            hash_line.as_str(),
            "MDTM",
            "MFMT",
            MLST_FACTS_FEAT,
            "PASV",
            "PBSZ",
            "PROT",
            "REST STREAM",
            "SIZE",
            "TVFS",
            "UTF8",
            "End",
        ]
        .iter()
        .filter(|f| self.config.tls.policy != TlsPolicy::Off || !matches!(**f, "AUTH TLS" | "PBSZ" | "PROT"))
        .filter(|f| self.config.hash_max_size > 0 || !f.starts_with("HASH "))
        .map(|s| s.as_bytes().to_vec())
        .collect();
        self.push(Output::Reply(Reply::multi(ReplyCode::SYSTEM_STATUS, lines)));
    }

    pub(super) fn auth(&mut self, mech: crate::command::AuthMechanism) {
        if self.config.tls.policy == TlsPolicy::Off {
            return self.reply(ReplyCode::NOT_IMPLEMENTED, "AUTH not supported: TLS is off");
        }
        if self.tls {
            return self.reply(ReplyCode::BAD_SEQUENCE, "Already using TLS");
        }
        if self.login().is_some() {
            return self.reply(ReplyCode::BAD_SEQUENCE, "AUTH TLS must come before login");
        }
        // RFC 4217 §4: a USER sent before AUTH must be sent again under TLS.
        self.phase = Phase::AwaitUser;
        self.rename_from = None;
        if mech == crate::command::AuthMechanism::TlsProtected {
            self.pbsz = true;
            self.prot_private = true;
        }
        self.reply(ReplyCode::AUTH_OK, "AUTH TLS successful; start TLS negotiation");
        // Anything pipelined after AUTH was sent in the clear: drop it, never run it under TLS.
        self.held.clear();
        self.waiting = Waiting::Tls;
        self.push(Output::StartTls);
    }

    /// CCC (RFC 4217 §6): back to a cleartext control connection, only where configured and only after
    /// login (so the password was protected). Data protection stays as it was.
    pub(super) fn ccc(&mut self) {
        if !self.is_tls() {
            return self.reply(ReplyCode::PROTECTION_DENIED, "CCC needs a TLS control connection");
        }
        if !self.config.tls.allow_ccc || self.config.tls.implicit {
            return self.reply(
                ReplyCode::POLICY_DENIED,
                "CCC refused by policy: the control connection stays encrypted",
            );
        }
        if self.login().is_none() {
            return self.reply(ReplyCode::BAD_SEQUENCE, "CCC is allowed only after login");
        }
        self.reply(
            ReplyCode::COMMAND_OK,
            "CCC ok; the control connection continues in the clear",
        );
        self.held.clear();
        self.waiting = Waiting::Ccc;
        self.push(Output::StopTls);
    }

    pub(super) fn pbsz(&mut self) {
        if !self.tls {
            return self.reply(ReplyCode::BAD_SEQUENCE, "PBSZ needs AUTH TLS first");
        }
        self.pbsz = true;
        // RFC 4217 §8: TLS streams, so the only buffer size is 0.
        self.reply(ReplyCode::COMMAND_OK, "PBSZ=0");
    }

    pub(super) fn prot(&mut self, level: crate::command::ProtLevel) {
        use crate::command::ProtLevel;
        if !self.tls {
            return self.reply(ReplyCode::BAD_SEQUENCE, "PROT needs AUTH TLS first");
        }
        if !self.pbsz {
            return self.reply(ReplyCode::BAD_SEQUENCE, "PROT needs PBSZ 0 first");
        }
        match level {
            ProtLevel::Private => {
                self.prot_private = true;
                self.reply(ReplyCode::COMMAND_OK, "Protection level set to P");
            }
            ProtLevel::Clear if self.require_protected_data() => self.reply(
                ReplyCode::POLICY_DENIED,
                "PROT C refused by policy: data connections must be protected",
            ),
            ProtLevel::Clear => {
                self.prot_private = false;
                self.reply(ReplyCode::COMMAND_OK, "Protection level set to C");
            }
            ProtLevel::Safe | ProtLevel::Confidential => self.reply(
                ReplyCode::PROT_NOT_SUPPORTED,
                "Only PROT P and PROT C are supported with TLS",
            ),
        }
    }

    /// Whether data connections must be protected: the user's override once logged in, else the listener's.
    pub(super) fn require_protected_data(&self) -> bool {
        self.login()
            .and_then(|l| l.tls.protected_data)
            .unwrap_or(self.config.tls.require_protected_data)
    }

    pub(super) fn help(&mut self, topic: Option<&str>) {
        if let Some(topic) = topic {
            let topic = topic.trim().to_ascii_uppercase();
            return if IMPLEMENTED_VERBS.contains(&topic.as_str()) {
                self.reply(ReplyCode::HELP, format!("{topic} is implemented"))
            } else {
                self.reply(ReplyCode::ARGUMENT_ERROR, format!("Unknown command {topic}"))
            };
        }
        let mut lines = vec![b"The following commands are recognized:".to_vec()];
        for chunk in IMPLEMENTED_VERBS.chunks(10) {
            lines.push(chunk.join(" ").into_bytes());
        }
        lines.push(b"Help OK".to_vec());
        self.push(Output::Reply(Reply::multi(ReplyCode::HELP, lines)));
    }

    pub(super) fn opts(&mut self, opts: &Opts) {
        match opts {
            // Paths are bytes end to end (RFC 2640 §2.2: servers should treat them so), so the switch
            // only needs acknowledging.
            Opts::Utf8(on) => {
                self.reply(
                    ReplyCode::COMMAND_OK,
                    if *on {
                        "UTF8 mode enabled"
                    } else {
                        "UTF8 mode disabled"
                    },
                );
            }
            // ferry always sends every fact it has; clients ignore extra ones (RFC 3659 §7.9 allows it).
            Opts::Mlst(_) => self.reply(
                ReplyCode::COMMAND_OK,
                "MLST OPTS type;size;modify;perm;unique;unix.mode;",
            ),
            Opts::Hash(algorithm) => self.opts_hash(*algorithm),
        }
    }

    pub(super) fn site(&mut self, arg: &str) {
        let word = arg
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        match word.as_str() {
            "HELP" => self.reply(ReplyCode::HELP, "SITE commands: HELP QUOTA"),
            "QUOTA" => self.storage(Pending::SiteQuota, StorageRequest::Quota),
            _ => self.reply(
                ReplyCode::PARAMETER_NOT_IMPLEMENTED,
                format!("SITE {word} not supported"),
            ),
        }
    }

    pub(super) fn denied(&mut self, allowed: impl Fn(&Permissions) -> bool) -> bool {
        let ok = self.login().is_some_and(|l| allowed(&l.permissions));
        if !ok {
            self.reply(ReplyCode::FILE_UNAVAILABLE, "Permission denied");
        }
        !ok
    }

    pub(super) fn with_path(&mut self, arg: &[u8], then: impl FnOnce(&mut Self, VPath)) {
        match self.cwd.resolve(arg) {
            Ok(path) => then(self, path),
            Err(e) => self.path_error(e),
        }
    }

    pub(super) fn path_error(&mut self, e: PathError) {
        let text = match e {
            PathError::Nul => "File name not allowed",
            PathError::TooLong => "Path too long",
            PathError::NameTooLong => "File name too long",
        };
        self.reply(ReplyCode::NAME_NOT_ALLOWED, text);
    }

    pub(super) fn storage(&mut self, pending: Pending, request: StorageRequest) {
        self.waiting = Waiting::Storage(pending);
        self.push(Output::Storage(request));
    }

    pub(super) fn storage_reply(&mut self, pending: Pending, result: Result<StorageOk, FsError>) {
        let ok = match result {
            Ok(ok) => ok,
            Err(e) => {
                let (code, text) = fs_reply(e);
                return self.reply(code, text);
            }
        };
        match (pending, ok) {
            (Pending::Cwd(path), StorageOk::Entry(e)) => {
                if e.kind != EntryKind::Dir {
                    return self.reply(ReplyCode::FILE_UNAVAILABLE, "Not a directory");
                }
                if self.denied(|p| p.list) {
                    return;
                }
                self.cwd = path;
                self.reply(ReplyCode::FILE_ACTION_OK, "Directory changed");
            }
            (Pending::Mkd(path), StorageOk::Done) => {
                self.push(Output::Reply(Reply::path_created(path.as_bytes(), "created")));
            }
            (Pending::Rmd, StorageOk::Done) => self.reply(ReplyCode::FILE_ACTION_OK, "Directory removed"),
            (Pending::Dele, StorageOk::Done) => self.reply(ReplyCode::FILE_ACTION_OK, "File deleted"),
            (Pending::Rnfr(path), StorageOk::Entry(_)) => {
                self.rename_from = Some(path);
                self.reply(ReplyCode::FILE_ACTION_PENDING, "Ready for RNTO");
            }
            (Pending::Rnto, StorageOk::Done) => self.reply(ReplyCode::FILE_ACTION_OK, "Rename successful"),
            (Pending::Size, StorageOk::Entry(e)) => match e.kind {
                EntryKind::File => self.reply(ReplyCode::FILE_STATUS, e.size.to_string()),
                _ => self.reply(ReplyCode::FILE_UNAVAILABLE, "Not a plain file"),
            },
            (Pending::Mdtm, StorageOk::Entry(e)) => match (e.kind, e.modified) {
                (EntryKind::File, Some(t)) => self.reply(ReplyCode::FILE_STATUS, format_mdtm(t)),
                (EntryKind::File, None) => {
                    self.reply(ReplyCode::FILE_UNAVAILABLE, "Modification time unknown")
                }
                _ => self.reply(ReplyCode::FILE_UNAVAILABLE, "Not a plain file"),
            },
            (Pending::Mfmt(path, time), StorageOk::Done) => {
                let mut text = format!("Modify={}; ", format_mdtm(time)).into_bytes();
                text.extend_from_slice(path.file_name().unwrap_or(b"/"));
                self.reply(ReplyCode::FILE_STATUS, text);
            }
            (Pending::Mlst(path), StorageOk::Entry(mut e)) => {
                let perms = self.login().map(|l| l.permissions).unwrap_or_default();
                // MLST names the entry by the path as asked (RFC 3659 §7.3.1 allows the full pathname).
                e.name = path.as_bytes().to_vec();
                // Reply::multi sends middle lines with exactly one leading space, as RFC 3659 §7.2 wants.
                let mut line = Vec::new();
                crate::listing::write_mlsx_facts(&mut line, &e, perms);
                let mut first = b"Listing ".to_vec();
                first.extend_from_slice(path.as_bytes());
                self.push(Output::Reply(Reply::multi(
                    ReplyCode::FILE_ACTION_OK,
                    vec![first, line, b"End".to_vec()],
                )));
            }
            (
                Pending::StatPath,
                StorageOk::Entries {
                    entries,
                    truncated,
                    listed_at,
                },
            ) => {
                let mut lines = vec![b"Status follows:".to_vec()];
                for e in &entries {
                    let mut l = Vec::new();
                    crate::listing::write_list_line(&mut l, e, listed_at);
                    while l.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                        l.pop();
                    }
                    lines.push(l);
                }
                if truncated {
                    lines.push(
                        format!("(listing truncated at {} entries; use LIST)", entries.len()).into_bytes(),
                    );
                }
                lines.push(b"End of status".to_vec());
                self.push(Output::Reply(Reply::multi(ReplyCode::FILE_STATUS, lines)));
            }
            (Pending::SiteQuota, StorageOk::Text(lines)) => {
                let lines = lines.into_iter().map(String::into_bytes).collect();
                self.push(Output::Reply(Reply::multi(ReplyCode::COMMAND_OK, lines)));
            }
            (_, _) => self.reply(
                ReplyCode::LOCAL_ERROR,
                "Internal error: unexpected storage result",
            ),
        }
    }

    pub(super) fn stat_server(&mut self) {
        let mut lines = vec![b"ferry FTP server status:".to_vec()];
        lines.push(format!("Connected from {}", self.peer.ip()).into_bytes());
        match &self.phase {
            Phase::LoggedIn(l) => lines.push(format!("Logged in as {}", l.user).into_bytes()),
            _ => lines.push(b"Not logged in".to_vec()),
        }
        lines.push(format!("TYPE: {}, STRU: F, MODE: S", self.mode_name()).into_bytes());
        lines.push(
            match (self.is_tls(), self.prot_private) {
                (false, _) => "Control connection: cleartext",
                (true, true) => "Control connection: TLS; data connections: TLS (PROT P)",
                (true, false) => "Control connection: TLS; data connections: cleartext (PROT C)",
            }
            .as_bytes()
            .to_vec(),
        );
        let data = match self.data {
            DataSetup::None => "none",
            DataSetup::Passive => "passive listener ready",
            DataSetup::Active => "active target set",
        };
        lines.push(format!("Data connection: {data}").into_bytes());
        if let Waiting::Transfer(r) = &self.waiting {
            lines.push(format!("Transferring {}: {} bytes so far", r.what, r.bytes).into_bytes());
        } else {
            lines.push(b"No transfer in progress".to_vec());
        }
        lines.push(b"End of status".to_vec());
        self.push(Output::Reply(Reply::multi(ReplyCode::SYSTEM_STATUS, lines)));
    }
}
