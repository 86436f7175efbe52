//! Transcript tests: command lines in, replies and actions out, time simulated. No sockets, no files.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use ferry_proto::listing::{Entry, EntryKind};
use ferry_proto::path::VPath;
use ferry_proto::reply::{Reply, ReplyCode};
use ferry_proto::session::{
    Config, DataTlsError, ErrorKind, FsError, ListFormat, Login, LoginTls, Output, PassiveFamily,
    Permissions, Session, StorageOk, StorageRequest, StoreMode, TlsPolicy, TlsSettings, Transfer,
    TransferEvent,
};
use ferry_proto::telnet::Urgent;

struct T {
    s: Session,
    now: Instant,
}

fn all_perms() -> Permissions {
    Permissions {
        list: true,
        read: true,
        write: true,
        delete: true,
        rename: true,
        mkdir: true,
    }
}

fn peer() -> SocketAddr {
    "127.0.0.1:40000".parse().unwrap()
}

fn local() -> SocketAddr {
    "127.0.0.1:2121".parse().unwrap()
}

fn file(name: &str, size: u64) -> Entry {
    Entry {
        name: name.as_bytes().to_vec(),
        kind: EntryKind::File,
        size,
        modified: Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)),
        mode: Some(0o644),
        nlink: 1,
        unique: Some("1.2".into()),
    }
}

fn dir(name: &str) -> Entry {
    Entry {
        kind: EntryKind::Dir,
        size: 4096,
        mode: Some(0o755),
        ..file(name, 0)
    }
}

impl T {
    fn new() -> Self {
        Self::with(Config::default(), peer(), local())
    }

    fn with(config: Config, peer: SocketAddr, local: SocketAddr) -> Self {
        let now = Instant::now();
        let mut t = Self {
            s: Session::new(config, peer, local, now),
            now,
        };
        let greeting = t.replies();
        assert_eq!(greeting, vec![(220, "ferry FTP server ready".to_owned())]);
        t
    }

    fn outputs(&mut self) -> Vec<Output> {
        std::iter::from_fn(|| self.s.poll_output()).collect()
    }

    fn replies(&mut self) -> Vec<(u16, String)> {
        self.outputs()
            .into_iter()
            .filter_map(|o| match o {
                Output::Reply(r) => Some((r.code().0, r.text())),
                _ => None,
            })
            .collect()
    }

    fn line(&mut self, line: &str) -> Vec<Output> {
        self.s.handle_line(self.now, line.as_bytes());
        self.outputs()
    }

    /// Sends a line and returns the codes of the replies.
    fn codes(&mut self, line: &str) -> Vec<u16> {
        self.s.handle_line(self.now, line.as_bytes());
        self.replies().into_iter().map(|(c, _)| c).collect()
    }

    fn login_with(&mut self, perms: Permissions) {
        assert_eq!(self.codes("USER alice"), vec![331]);
        let outs = self.line("PASS secret");
        assert!(matches!(&outs[..], [Output::Authenticate { user, password }]
            if user == "alice" && password.expose() == "secret"));
        self.s.handle_auth(
            self.now,
            Some(Login {
                user: "alice".into(),
                permissions: perms,
                tls: LoginTls::default(),
            }),
        );
        assert_eq!(self.replies(), vec![(230, "User alice logged in".to_owned())]);
    }

    fn login(&mut self) {
        self.login_with(all_perms());
    }

    fn storage(&mut self, result: Result<StorageOk, FsError>) -> Vec<(u16, String)> {
        self.s.handle_storage(self.now, result);
        self.replies()
    }

    fn pasv(&mut self) {
        let outs = self.line("PASV");
        assert_eq!(outs, vec![Output::OpenPassive(PassiveFamily::V4)]);
        self.s
            .handle_passive(self.now, Ok("127.0.0.1:50001".parse().unwrap()));
        assert_eq!(
            self.replies(),
            vec![(227, "Entering Passive Mode (127,0,0,1,195,81).".to_owned())]
        );
    }

    fn transfer(&mut self, line: &str) -> Transfer {
        let outs = self.line(line);
        match &outs[..] {
            [Output::Transfer(t)] => t.clone(),
            other => panic!("expected a transfer for {line}, got {other:?}"),
        }
    }

    fn event(&mut self, ev: TransferEvent) -> Vec<(u16, String)> {
        self.s.handle_transfer(self.now, ev);
        self.replies()
    }
}

fn codes(r: &[(u16, String)]) -> Vec<u16> {
    r.iter().map(|(c, _)| *c).collect()
}

#[test]
fn user_always_gets_331_and_bad_password_530() {
    let mut t = T::new();
    assert_eq!(t.codes("USER nosuchuser"), vec![331]);
    let outs = t.line("PASS wrong");
    assert!(matches!(&outs[..], [Output::Authenticate { .. }]));
    t.s.handle_auth(t.now, None);
    assert_eq!(codes(&t.replies()), vec![530]);
    // The session is usable again.
    t.login();
}

#[test]
fn too_many_failed_logins_close_the_connection() {
    let mut t = T::new();
    for i in 0..3 {
        t.codes("USER x");
        t.line("PASS y");
        t.s.handle_auth(t.now, None);
        let outs = t.outputs();
        if i < 2 {
            assert!(!outs.contains(&Output::Close));
        } else {
            assert!(outs.contains(&Output::Close), "{outs:?}");
        }
    }
    assert!(t.s.is_closed());
}

#[test]
fn pass_without_user_is_503_and_commands_before_login_are_530() {
    let mut t = T::new();
    assert_eq!(t.codes("PASS x"), vec![503]);
    for cmd in [
        "PWD",
        "CWD /",
        "LIST",
        "RETR x",
        "STOR x",
        "MKD d",
        "PASV",
        "PORT 127,0,0,1,4,1",
        "SIZE x",
        "STAT /",
    ] {
        assert_eq!(t.codes(cmd), vec![530], "{cmd}");
    }
    for (cmd, code) in [
        ("SYST", 215),
        ("NOOP", 200),
        ("FEAT", 211),
        ("HELP", 214),
        ("OPTS UTF8 ON", 200),
    ] {
        assert_eq!(t.codes(cmd), vec![code], "{cmd}");
    }
}

#[test]
fn pass_is_never_echoed_in_debug_output() {
    let mut t = T::new();
    t.codes("USER alice");
    let outs = t.line("PASS hunter2");
    assert!(!format!("{outs:?}").contains("hunter2"));
}

#[test]
fn unknown_unsupported_and_bad_argument_replies() {
    let mut t = T::new();
    t.login();
    assert_eq!(t.codes("FROB x"), vec![500]);
    assert_eq!(t.codes("SMNT /x"), vec![502]);
    assert_eq!(t.codes("LPSV"), vec![502]);
    assert_eq!(t.codes("AUTH TLS"), vec![502]);
    assert_eq!(t.codes("TYPE E"), vec![504]);
    assert_eq!(t.codes("MODE B"), vec![504]);
    assert_eq!(t.codes("STRU R"), vec![504]);
    assert_eq!(t.codes("PORT 1,2"), vec![501]);
    assert_eq!(t.codes("REST abc"), vec![501]);
    assert_eq!(t.codes("RETR"), vec![501]);
    assert_eq!(t.codes("SITE CHMOD 777 x"), vec![504]);
    assert_eq!(t.codes("ACCT x"), vec![202]);
    assert_eq!(t.codes("ALLO 100"), vec![202]);
    assert_eq!(t.codes("TYPE A"), vec![200]);
    assert_eq!(t.codes("TYPE I"), vec![200]);
    assert_eq!(t.codes("MODE S"), vec![200]);
    assert_eq!(t.codes("STRU F"), vec![200]);
    assert_eq!(t.codes("SYST"), vec![215]);
}

#[test]
fn line_too_long_is_500_and_session_continues() {
    let mut t = T::new();
    t.s.handle_line_too_long(t.now);
    assert_eq!(codes(&t.replies()), vec![500]);
    assert_eq!(t.codes("NOOP"), vec![200]);
}

#[test]
fn pwd_quotes_and_cwd_uses_storage() {
    let mut t = T::new();
    t.login();
    let outs = t.line("CWD sub");
    assert_eq!(
        outs,
        vec![Output::Storage(StorageRequest::Stat(
            VPath::root().resolve(b"/sub").unwrap()
        ))]
    );
    assert_eq!(codes(&t.storage(Ok(StorageOk::Entry(dir("sub"))))), vec![250]);
    let r = t.line("PWD");
    assert!(
        matches!(&r[..], [Output::Reply(r)] if r.to_bytes() == b"257 \"/sub\" is the current directory\r\n")
    );
    // CWD to a file: 550; to a missing directory: 550.
    t.line("CWD f");
    assert_eq!(codes(&t.storage(Ok(StorageOk::Entry(file("f", 1))))), vec![550]);
    t.line("CWD missing");
    assert_eq!(
        codes(&t.storage(Err(FsError::from(ErrorKind::NotFound)))),
        vec![550]
    );
    assert_eq!(t.s.cwd().as_bytes(), b"/sub");
    // CDUP and XCUP go to the parent; at the root they stay there.
    assert_eq!(
        t.line("CDUP"),
        vec![Output::Storage(StorageRequest::Stat(VPath::root()))]
    );
    t.storage(Ok(StorageOk::Entry(dir(""))));
    assert_eq!(
        t.line("XCUP"),
        vec![Output::Storage(StorageRequest::Stat(VPath::root()))]
    );
}

#[test]
fn traversal_never_leaves_the_root() {
    let mut t = T::new();
    t.login();
    let outs = t.line("CWD ../../../etc");
    assert_eq!(
        outs,
        vec![Output::Storage(StorageRequest::Stat(
            VPath::root().resolve(b"/etc").unwrap()
        ))]
    );
    t.storage(Err(FsError::from(ErrorKind::NotFound)));
    let Transfer::Retr { path, .. } = ({
        t.pasv();
        t.transfer("RETR ../../../../etc/passwd")
    }) else {
        panic!("retr")
    };
    assert_eq!(path.as_bytes(), b"/etc/passwd");
}

#[test]
fn nul_in_path_is_553() {
    let mut t = T::new();
    t.login();
    t.s.handle_line(t.now, b"MKD a\0b");
    assert_eq!(codes(&t.replies()), vec![553]);
}

#[test]
fn transfer_without_data_setup_is_425() {
    let mut t = T::new();
    t.login();
    assert_eq!(t.codes("RETR f"), vec![425]);
    assert_eq!(t.codes("LIST"), vec![425]);
    assert_eq!(t.codes("STOR f"), vec![425]);
}

#[test]
fn retr_sends_150_then_226() {
    let mut t = T::new();
    t.login();
    t.pasv();
    let tr = t.transfer("RETR f");
    assert_eq!(
        tr,
        Transfer::Retr {
            path: VPath::root().resolve(b"f").unwrap(),
            offset: 0,
            ascii: false
        }
    );
    let r = t.event(TransferEvent::Started {
        name: None,
        size: Some(10),
    });
    assert_eq!(codes(&r), vec![150]);
    assert!(r[0].1.contains("BINARY") && r[0].1.contains("10 bytes"), "{r:?}");
    assert_eq!(codes(&t.event(TransferEvent::Finished { bytes: 10 })), vec![226]);
    // The passive listener was used up.
    assert_eq!(t.codes("RETR f"), vec![425]);
}

#[test]
fn missing_file_is_550_without_150() {
    let mut t = T::new();
    t.login();
    t.pasv();
    t.transfer("RETR nope");
    assert_eq!(
        codes(&t.event(TransferEvent::StorageFailed(FsError::from(ErrorKind::NotFound)))),
        vec![550]
    );
}

#[test]
fn a_denied_active_source_port_is_425_saying_why() {
    let mut t = T::new();
    t.login();
    t.pasv();
    t.transfer("RETR f");
    let replies = t.event(TransferEvent::SourcePortDenied { port: 20 });
    assert_eq!(codes(&replies), vec![425]);
    assert!(
        replies[0].1.contains("source port 20") && replies[0].1.contains("passive"),
        "{replies:?}"
    );
}

#[test]
fn data_connection_failures_are_425_and_426() {
    let mut t = T::new();
    t.login();
    t.pasv();
    t.transfer("RETR f");
    t.event(TransferEvent::Started {
        name: None,
        size: None,
    });
    assert_eq!(codes(&t.event(TransferEvent::NoConnection)), vec![425]);
    t.pasv();
    t.transfer("STOR f");
    t.event(TransferEvent::Started {
        name: None,
        size: None,
    });
    assert_eq!(codes(&t.event(TransferEvent::ConnectionLost)), vec![426]);
    t.pasv();
    t.transfer("STOR f");
    assert_eq!(
        codes(&t.event(TransferEvent::StorageFailed(FsError::from(
            ErrorKind::QuotaExceeded
        )))),
        vec![552]
    );
    t.pasv();
    t.transfer("STOR f");
    assert_eq!(
        codes(&t.event(TransferEvent::StorageFailed(FsError::from(ErrorKind::Io)))),
        vec![451]
    );
}

#[test]
fn abor_of_running_transfer_is_426_then_226() {
    let mut t = T::new();
    t.login();
    t.pasv();
    t.transfer("RETR big");
    t.event(TransferEvent::Started {
        name: None,
        size: None,
    });
    assert_eq!(t.line("ABOR"), vec![Output::AbortTransfer]);
    // A second ABOR does not ask twice.
    assert_eq!(t.line("ABOR"), vec![]);
    assert_eq!(codes(&t.event(TransferEvent::Aborted)), vec![426, 226]);
    assert_eq!(t.codes("NOOP"), vec![200]);
}

#[test]
fn abor_after_transfer_completed_gets_226_for_both() {
    let mut t = T::new();
    t.login();
    t.pasv();
    t.transfer("RETR f");
    t.event(TransferEvent::Started {
        name: None,
        size: None,
    });
    t.line("ABOR");
    assert_eq!(
        codes(&t.event(TransferEvent::Finished { bytes: 3 })),
        vec![226, 226]
    );
}

#[test]
fn abor_when_idle_is_225() {
    let mut t = T::new();
    t.login();
    assert_eq!(t.codes("ABOR"), vec![225]);
}

#[test]
fn urgent_signal_discards_held_commands() {
    let mut t = T::new();
    t.login();
    t.pasv();
    t.transfer("RETR f");
    t.event(TransferEvent::Started {
        name: None,
        size: None,
    });
    assert_eq!(t.line("DELE x"), vec![]);
    t.s.handle_urgent(t.now, Urgent::InterruptProcess);
    t.s.handle_urgent(t.now, Urgent::DataMark);
    assert_eq!(t.line("ABOR"), vec![Output::AbortTransfer]);
    // DELE was discarded: only 426 and 226 come back, and no storage request.
    let outs = {
        t.s.handle_transfer(t.now, TransferEvent::Aborted);
        t.outputs()
    };
    assert_eq!(outs.len(), 2, "{outs:?}");
}

#[test]
fn stat_noop_answered_during_transfer_other_commands_wait() {
    let mut t = T::new();
    t.login();
    t.pasv();
    t.transfer("RETR f");
    t.event(TransferEvent::Started {
        name: None,
        size: Some(100),
    });
    t.s.handle_transfer_progress(42);
    let r = {
        t.s.handle_line(t.now, b"STAT");
        t.replies()
    };
    assert_eq!(codes(&r), vec![211]);
    assert!(r[0].1.contains("42 bytes"), "{r:?}");
    assert_eq!(t.codes("NOOP"), vec![200]);
    // PWD waits for the transfer to end.
    assert_eq!(t.line("PWD"), vec![]);
    assert_eq!(
        codes(&t.event(TransferEvent::Finished { bytes: 100 })),
        vec![226, 257]
    );
}

#[test]
fn quit_during_transfer_waits_for_the_end_reply() {
    let mut t = T::new();
    t.login();
    t.pasv();
    t.transfer("STOR f");
    t.event(TransferEvent::Started {
        name: None,
        size: None,
    });
    assert_eq!(t.line("QUIT"), vec![]);
    t.s.handle_transfer(t.now, TransferEvent::Finished { bytes: 5 });
    let outs = t.outputs();
    assert!(
        matches!(&outs[..], [Output::Reply(a), Output::Reply(b), Output::Close]
        if a.code().0 == 226 && b.code().0 == 221),
        "{outs:?}"
    );
}

#[test]
fn stat_without_transfer_and_stat_path() {
    let mut t = T::new();
    t.login();
    let r = {
        t.s.handle_line(t.now, b"STAT");
        t.replies()
    };
    assert_eq!(codes(&r), vec![211]);
    assert!(
        r[0].1.contains("Logged in as alice") && r[0].1.contains("No transfer"),
        "{r:?}"
    );
    assert_eq!(
        t.line("STAT -la /d"),
        vec![Output::Storage(StorageRequest::ListBrief(
            VPath::root().resolve(b"/d").unwrap()
        ))]
    );
    let r = t.storage(Ok(StorageOk::Entries {
        entries: vec![file("a", 1), dir("b")],
        truncated: true,
        listed_at: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_100),
    }));
    assert_eq!(codes(&r), vec![213]);
    assert!(r[0].1.contains(" a\n") && r[0].1.contains("truncated"), "{r:?}");
}

#[test]
fn rest_applies_to_the_next_retr_or_stor_only() {
    let mut t = T::new();
    t.login();
    assert_eq!(t.codes("REST 5"), vec![350]);
    t.pasv();
    t.codes("TYPE I");
    assert!(matches!(t.transfer("RETR f"), Transfer::Retr { offset: 5, .. }));
    t.event(TransferEvent::Finished { bytes: 5 });
    t.pasv();
    assert!(matches!(t.transfer("RETR f"), Transfer::Retr { offset: 0, .. }));
    t.event(TransferEvent::Finished { bytes: 10 });
    t.codes("REST 7");
    t.pasv();
    assert!(matches!(
        t.transfer("STOR f"),
        Transfer::Stor {
            mode: StoreMode::At(7),
            ..
        }
    ));
    t.event(TransferEvent::Finished { bytes: 10 });
    t.pasv();
    assert!(matches!(
        t.transfer("STOR f"),
        Transfer::Stor {
            mode: StoreMode::Create,
            ..
        }
    ));
    t.event(TransferEvent::Finished { bytes: 10 });
    t.pasv();
    assert!(matches!(
        t.transfer("APPE f"),
        Transfer::Stor {
            mode: StoreMode::Append,
            ..
        }
    ));
}

#[test]
fn stou_reports_the_chosen_name() {
    let mut t = T::new();
    t.login();
    t.pasv();
    assert!(matches!(
        t.transfer("STOU"),
        Transfer::Stor {
            mode: StoreMode::Unique,
            ..
        }
    ));
    let r = t.event(TransferEvent::Started {
        name: Some(b"ferry-upload.1".to_vec()),
        size: None,
    });
    assert_eq!(r, vec![(150, "FILE: ferry-upload.1".to_owned())]);
}

#[test]
fn ascii_type_flags_transfers() {
    let mut t = T::new();
    t.login();
    t.codes("TYPE A");
    t.pasv();
    assert!(matches!(t.transfer("RETR f"), Transfer::Retr { ascii: true, .. }));
    let r = t.event(TransferEvent::Started {
        name: None,
        size: None,
    });
    assert!(r[0].1.contains("ASCII"));
}

#[test]
fn rename_needs_rnfr_first_and_immediately() {
    let mut t = T::new();
    t.login();
    assert_eq!(t.codes("RNTO b"), vec![503]);
    t.line("RNFR a");
    assert_eq!(codes(&t.storage(Ok(StorageOk::Entry(file("a", 1))))), vec![350]);
    let outs = t.line("RNTO b");
    assert_eq!(
        outs,
        vec![Output::Storage(StorageRequest::Rename {
            from: VPath::root().resolve(b"a").unwrap(),
            to: VPath::root().resolve(b"b").unwrap()
        })]
    );
    assert_eq!(codes(&t.storage(Ok(StorageOk::Done))), vec![250]);
    // RNFR then another command: the pending rename is forgotten.
    t.line("RNFR a");
    t.storage(Ok(StorageOk::Entry(file("a", 1))));
    t.codes("NOOP");
    assert_eq!(t.codes("RNTO b"), vec![503]);
    // RNFR of a missing file.
    t.line("RNFR nope");
    assert_eq!(
        codes(&t.storage(Err(FsError::from(ErrorKind::NotFound)))),
        vec![550]
    );
}

#[test]
fn mkd_rmd_dele_replies() {
    let mut t = T::new();
    t.login();
    t.line("MKD new \"dir\"");
    let outs = {
        t.s.handle_storage(t.now, Ok(StorageOk::Done));
        t.outputs()
    };
    assert!(
        matches!(&outs[..], [Output::Reply(r)] if r.to_bytes() == b"257 \"/new \"\"dir\"\"\" created\r\n")
    );
    t.line("MKD exists");
    assert_eq!(
        codes(&t.storage(Err(FsError::from(ErrorKind::AlreadyExists)))),
        vec![550]
    );
    t.line("RMD full");
    assert_eq!(
        codes(&t.storage(Err(FsError::from(ErrorKind::DirectoryNotEmpty)))),
        vec![550]
    );
    t.line("RMD empty");
    assert_eq!(codes(&t.storage(Ok(StorageOk::Done))), vec![250]);
    assert_eq!(t.codes("RMD /"), vec![550]);
    t.line("DELE f");
    assert_eq!(codes(&t.storage(Ok(StorageOk::Done))), vec![250]);
    t.line("DELE d");
    assert_eq!(
        codes(&t.storage(Err(FsError::from(ErrorKind::IsADirectory)))),
        vec![550]
    );
}

#[test]
fn size_mdtm_mfmt_mlst() {
    let mut t = T::new();
    t.login();
    t.line("SIZE f");
    assert_eq!(
        t.storage(Ok(StorageOk::Entry(file("f", 1234)))),
        vec![(213, "1234".to_owned())]
    );
    t.line("SIZE d");
    assert_eq!(codes(&t.storage(Ok(StorageOk::Entry(dir("d"))))), vec![550]);
    t.line("MDTM f");
    assert_eq!(
        t.storage(Ok(StorageOk::Entry(file("f", 1)))),
        vec![(213, "20231114221320".to_owned())]
    );
    t.line("SIZE missing");
    assert_eq!(
        codes(&t.storage(Err(FsError::from(ErrorKind::NotFound)))),
        vec![550]
    );
    let outs = t.line("MFMT 20200102030405 f");
    assert!(matches!(
        &outs[..],
        [Output::Storage(StorageRequest::SetModified(..))]
    ));
    assert_eq!(
        t.storage(Ok(StorageOk::Done)),
        vec![(213, "Modify=20200102030405; f".to_owned())]
    );
    t.line("MLST f");
    let outs = {
        t.s.handle_storage(t.now, Ok(StorageOk::Entry(file("f", 3))));
        t.outputs()
    };
    let [Output::Reply(r)] = &outs[..] else {
        panic!("{outs:?}")
    };
    let wire = String::from_utf8(r.to_bytes()).unwrap();
    let lines: Vec<&str> = wire.split("\r\n").collect();
    assert!(lines[0].starts_with("250-"), "{wire}");
    assert!(
        lines[1].starts_with(" type=file;size=3;modify=20231114221320;"),
        "{wire}"
    );
    assert!(
        lines[1].ends_with("; /f") && !lines[1].starts_with("  "),
        "{wire}"
    );
    assert_eq!(lines[2], "250 End");
}

#[test]
fn list_flags_and_formats() {
    let mut t = T::new();
    t.login();
    t.pasv();
    let tr = t.transfer("LIST -al /d");
    assert_eq!(
        tr,
        Transfer::List {
            path: VPath::root().resolve(b"/d").unwrap(),
            format: ListFormat::Long,
            permissions: all_perms(),
            all: true
        }
    );
    t.event(TransferEvent::Finished { bytes: 0 });
    t.pasv();
    assert!(matches!(
        t.transfer("NLST"),
        Transfer::List {
            format: ListFormat::Names,
            all: false,
            ..
        }
    ));
    t.event(TransferEvent::Finished { bytes: 0 });
    t.pasv();
    assert!(matches!(
        t.transfer("MLSD"),
        Transfer::List {
            format: ListFormat::Machine,
            ..
        }
    ));
}

#[test]
fn permissions_are_enforced_before_storage_is_touched() {
    let mut t = T::new();
    t.login_with(Permissions {
        list: true,
        read: true,
        ..Permissions::default()
    });
    for cmd in [
        "STOR f",
        "APPE f",
        "STOU",
        "DELE f",
        "RMD d",
        "MKD d",
        "RNFR f",
        "MFMT 20200101000000 f",
    ] {
        assert_eq!(t.codes(cmd), vec![550], "{cmd}");
    }
    let mut t = T::new();
    t.login_with(Permissions::default());
    for cmd in ["RETR f", "LIST", "NLST", "MLSD"] {
        assert_eq!(t.codes(cmd), vec![550], "{cmd}");
    }
    // The metadata of a named path needs no permission (as SFTP STAT): MLST asks storage.
    let outs = t.line("MLST f");
    assert!(
        matches!(&outs[..], [Output::Storage(StorageRequest::Stat(_))]),
        "{outs:?}"
    );
}

#[test]
fn port_only_to_the_control_peer_and_high_ports() {
    let mut t = T::new();
    t.login();
    assert_eq!(t.codes("PORT 10,0,0,1,4,1"), vec![501]);
    assert_eq!(t.codes("PORT 127,0,0,1,0,80"), vec![501]);
    assert_eq!(t.codes("EPRT |1|127.0.0.1|80|"), vec![501]);
    assert_eq!(t.codes("EPRT |2|::1|5000|"), vec![501]);
    let outs = t.line("PORT 127,0,0,1,4,1");
    assert!(matches!(&outs[..], [Output::SetActive(a), Output::Reply(r)]
        if *a == "127.0.0.1:1025".parse::<SocketAddr>().unwrap() && r.code().0 == 200));
    let outs = t.line("EPRT |1|127.0.0.1|6000|");
    assert!(matches!(&outs[0], Output::SetActive(a) if a.port() == 6000));
}

#[test]
fn ipv4_mapped_peer_may_use_port() {
    let mut t = T::with(
        Config::default(),
        "[::ffff:127.0.0.1]:40000".parse().unwrap(),
        "[::ffff:127.0.0.1]:2121".parse().unwrap(),
    );
    t.login();
    assert_eq!(t.codes("PORT 127,0,0,1,4,1"), vec![200]);
}

#[test]
fn epsv_forms_and_epsv_all() {
    let mut t = T::new();
    t.login();
    assert_eq!(t.line("EPSV"), vec![Output::OpenPassive(PassiveFamily::Any)]);
    t.s.handle_passive(t.now, Ok("127.0.0.1:50002".parse().unwrap()));
    assert_eq!(
        t.replies(),
        vec![(229, "Entering Extended Passive Mode (|||50002|)".to_owned())]
    );
    assert_eq!(t.codes("EPSV 2"), vec![522]);
    assert_eq!(t.line("EPSV 1"), vec![Output::OpenPassive(PassiveFamily::Any)]);
    t.s.handle_passive(t.now, Ok("127.0.0.1:50003".parse().unwrap()));
    t.replies();
    assert_eq!(t.codes("EPSV ALL"), vec![200]);
    assert_eq!(t.codes("PASV"), vec![503]);
    assert_eq!(t.codes("PORT 127,0,0,1,4,1"), vec![503]);
    assert_eq!(t.codes("EPRT |1|127.0.0.1|6000|"), vec![503]);
    assert_eq!(t.line("EPSV"), vec![Output::OpenPassive(PassiveFamily::Any)]);
}

#[test]
fn pasv_on_ipv6_control_is_refused_and_passive_failure_is_425() {
    let mut t = T::with(
        Config::default(),
        "[::1]:40000".parse().unwrap(),
        "[::1]:2121".parse().unwrap(),
    );
    t.login();
    assert_eq!(t.codes("PASV"), vec![425]);
    assert_eq!(t.line("EPSV"), vec![Output::OpenPassive(PassiveFamily::Any)]);
    t.s.handle_passive(t.now, Err(()));
    assert_eq!(codes(&t.replies()), vec![425]);
}

#[test]
fn commands_pipelined_during_storage_requests_run_in_order() {
    let mut t = T::new();
    t.login();
    t.line("MKD a");
    assert_eq!(t.line("MKD b"), vec![]);
    assert_eq!(t.line("PWD"), vec![]);
    t.s.handle_storage(t.now, Ok(StorageOk::Done));
    let outs = t.outputs();
    assert!(
        matches!(&outs[..], [Output::Reply(r), Output::Storage(StorageRequest::CreateDir(p))]
        if r.code().0 == 257 && p.as_bytes() == b"/b"),
        "{outs:?}"
    );
    assert_eq!(codes(&t.storage(Ok(StorageOk::Done))), vec![257, 257]);
}

#[test]
fn too_many_pipelined_commands_close_with_421() {
    let mut t = T::new();
    t.login();
    t.line("MKD a");
    for _ in 0..ferry_proto::limits::MAX_PENDING_COMMANDS {
        assert_eq!(t.line("NOOP"), vec![]);
    }
    let outs = t.line("NOOP");
    assert!(outs.contains(&Output::Close), "{outs:?}");
}

#[test]
fn rein_logs_out_and_resets() {
    let mut t = T::new();
    t.login();
    t.codes("TYPE A");
    let outs = t.line("REIN");
    assert!(outs.contains(&Output::ResetData));
    assert_eq!(t.codes("PWD"), vec![530]);
    t.login();
    t.pasv();
    assert!(matches!(
        t.transfer("RETR f"),
        Transfer::Retr { ascii: false, .. }
    ));
}

#[test]
fn user_while_logged_in_is_503() {
    let mut t = T::new();
    t.login();
    assert_eq!(t.codes("USER bob"), vec![503]);
    assert_eq!(t.codes("PASS x"), vec![503]);
}

#[test]
fn login_timeout_and_idle_timeout_close_with_421() {
    let config = Config {
        login_timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(100),
        ..Config::default()
    };
    let mut t = T::with(config.clone(), peer(), local());
    let deadline = t.s.poll_timeout().unwrap();
    assert_eq!(deadline, t.now + Duration::from_secs(10));
    t.s.handle_timeout(t.now + Duration::from_secs(9));
    assert!(!t.s.is_closed());
    t.s.handle_timeout(t.now + Duration::from_secs(10));
    let outs = t.outputs();
    assert!(
        matches!(&outs[..], [Output::Reply(r), Output::Close] if r.code().0 == 421),
        "{outs:?}"
    );

    let mut t = T::with(config, peer(), local());
    t.login();
    t.now += Duration::from_secs(50);
    t.codes("NOOP");
    assert_eq!(t.s.poll_timeout(), Some(t.now + Duration::from_secs(100)));
    // No idle timeout while a transfer runs.
    t.pasv();
    t.transfer("RETR f");
    assert_eq!(t.s.poll_timeout(), None);
    t.event(TransferEvent::Finished { bytes: 1 });
    t.s.handle_timeout(t.now + Duration::from_secs(100));
    assert!(t.s.is_closed());
}

#[test]
fn feat_is_multiline_with_space_prefixed_features() {
    let mut t = T::new();
    let outs = t.line("FEAT");
    let [Output::Reply(r)] = &outs[..] else { panic!() };
    let wire = String::from_utf8(r.to_bytes()).unwrap();
    assert!(wire.starts_with("211-"));
    assert!(wire.ends_with("\r\n211 End\r\n"));
    for feat in [
        " UTF8\r\n",
        " EPSV\r\n",
        " EPRT\r\n",
        " SIZE\r\n",
        " MDTM\r\n",
        " REST STREAM\r\n",
        " MLST type*;",
    ] {
        assert!(wire.contains(feat), "{feat} missing from {wire}");
    }
}

#[test]
fn help_lists_commands_and_single_topics() {
    let mut t = T::new();
    let r = {
        t.s.handle_line(t.now, b"HELP");
        t.replies()
    };
    assert_eq!(r[0].0, 214);
    assert!(r[0].1.contains("RETR") && r[0].1.contains("MLSD"));
    assert_eq!(t.codes("HELP retr"), vec![214]);
    assert_eq!(t.codes("HELP FOO"), vec![501]);
}

#[test]
fn quit_closes() {
    let mut t = T::new();
    let outs = t.line("QUIT");
    assert!(matches!(&outs[..], [Output::Reply(r), Output::Close] if r.code().0 == 221));
    assert!(t.s.is_closed());
    assert_eq!(t.line("NOOP"), vec![]);
}

// ----- FTPS (RFC 4217) -------------------------------------------------------------------------------------

fn tls_config(policy: TlsPolicy, require_protected_data: bool) -> Config {
    Config {
        tls: TlsSettings {
            policy,
            require_protected_data,
            implicit: false,
            allow_ccc: false,
        },
        ..Config::default()
    }
}

impl T {
    fn with_tls(policy: TlsPolicy, require_protected_data: bool) -> Self {
        Self::with(tls_config(policy, require_protected_data), peer(), local())
    }

    /// AUTH TLS, then a successful handshake.
    fn auth_tls(&mut self) {
        let outs = self.line("AUTH TLS");
        assert_eq!(
            outs,
            vec![
                Output::Reply(Reply::new(
                    ReplyCode(234),
                    "AUTH TLS successful; start TLS negotiation"
                )),
                Output::StartTls
            ]
        );
        self.s.handle_tls(self.now, true);
        assert!(self.s.is_tls());
        assert!(self.outputs().is_empty());
    }

    fn login_tls(&mut self, tls: LoginTls) -> Vec<(u16, String)> {
        assert_eq!(self.codes("USER alice"), vec![331]);
        let outs = self.line("PASS secret");
        assert!(matches!(&outs[..], [Output::Authenticate { .. }]));
        self.s.handle_auth(
            self.now,
            Some(Login {
                user: "alice".into(),
                permissions: all_perms(),
                tls,
            }),
        );
        self.replies()
    }
}

#[test]
fn feat_offers_auth_tls_pbsz_prot_unless_tls_is_off() {
    let mut t = T::with_tls(TlsPolicy::Optional, true);
    t.s.handle_line(t.now, b"FEAT");
    let feat = t.outputs();
    let Output::Reply(r) = &feat[0] else { panic!() };
    let text = String::from_utf8(r.to_bytes()).unwrap();
    for f in [" AUTH TLS\r\n", " PBSZ\r\n", " PROT\r\n"] {
        assert!(text.contains(f), "{f:?} missing from {text}");
    }
    let mut t = T::with_tls(TlsPolicy::Off, true);
    t.s.handle_line(t.now, b"FEAT");
    let feat = t.outputs();
    let Output::Reply(r) = &feat[0] else { panic!() };
    let text = String::from_utf8(r.to_bytes()).unwrap();
    assert!(!text.contains("AUTH") && !text.contains("PROT"), "{text}");
    assert_eq!(t.codes("AUTH TLS"), vec![502]);
}

#[test]
fn pipelined_cleartext_after_auth_tls_is_discarded() {
    let mut t = T::with_tls(TlsPolicy::Optional, true);
    let outs = t.line("AUTH TLS");
    assert_eq!(outs.last(), Some(&Output::StartTls));
    // Lines decoded from the same cleartext read, before the handshake: never executed.
    t.s.handle_line(t.now, b"USER alice");
    t.s.handle_line(t.now, b"PASS secret");
    t.s.handle_line(t.now, b"DELE important");
    assert!(t.outputs().is_empty());
    t.s.handle_tls(t.now, true);
    assert!(t.outputs().is_empty());
    // The session is in its pre-login state under TLS.
    assert_eq!(t.codes("PASS secret"), vec![503]);
}

#[test]
fn failed_control_handshake_closes_the_session() {
    let mut t = T::with_tls(TlsPolicy::Optional, true);
    t.line("AUTH TLS");
    t.s.handle_tls(t.now, false);
    assert_eq!(t.outputs(), vec![Output::Close]);
    assert!(t.s.is_closed());
}

#[test]
fn auth_rules_already_tls_after_login_and_a_pending_user_is_forgotten() {
    let mut t = T::with_tls(TlsPolicy::Optional, true);
    assert_eq!(t.codes("USER alice"), vec![331]);
    t.auth_tls();
    // RFC 4217 §4: USER must be sent again under TLS.
    assert_eq!(t.codes("PASS secret"), vec![503]);
    assert_eq!(t.codes("AUTH TLS"), vec![503]);
    let mut t = T::with_tls(TlsPolicy::Optional, false);
    t.login();
    assert_eq!(t.codes("AUTH TLS"), vec![503]);
}

#[test]
fn cleartext_user_is_refused_when_tls_is_required() {
    let mut t = T::with_tls(TlsPolicy::Required, true);
    let replies = {
        t.s.handle_line(t.now, b"USER alice");
        t.replies()
    };
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].0, 530);
    assert!(replies[0].1.contains("AUTH TLS"), "{replies:?}");
    // The password is never asked for, and PASS finds no pending USER.
    assert_eq!(t.codes("PASS secret"), vec![503]);
    t.auth_tls();
    assert_eq!(t.login_tls(LoginTls::default())[0].0, 230);
}

#[test]
fn a_user_who_requires_tls_cannot_log_in_in_the_clear() {
    let mut t = T::with_tls(TlsPolicy::Optional, true);
    let tls = LoginTls {
        required: true,
        protected_data: None,
    };
    let replies = t.login_tls(tls);
    assert_eq!(replies[0].0, 530);
    assert!(replies[0].1.contains("requires TLS"), "{replies:?}");
    assert_eq!(t.codes("PWD"), vec![530]);
    t.auth_tls();
    assert_eq!(t.login_tls(tls)[0].0, 230);
}

#[test]
fn pbsz_and_prot_sequence() {
    let mut t = T::with_tls(TlsPolicy::Optional, true);
    // Before AUTH.
    assert_eq!(t.codes("PBSZ 0"), vec![503]);
    assert_eq!(t.codes("PROT P"), vec![503]);
    t.auth_tls();
    // PROT before PBSZ.
    assert_eq!(t.codes("PROT P"), vec![503]);
    assert_eq!(t.codes("PBSZ 1024"), vec![200]);
    assert_eq!(t.codes("PROT S"), vec![536]);
    assert_eq!(t.codes("PROT E"), vec![536]);
    assert_eq!(t.codes("PROT Q"), vec![504]);
    // Policy requires protection: PROT C is refused and P stays.
    assert_eq!(t.codes("PROT C"), vec![534]);
    assert_eq!(t.codes("PROT P"), vec![200]);
    assert!(t.s.data_protected());
    assert_eq!(t.codes("CCC"), vec![534]);
}

#[test]
fn prot_c_allowed_when_policy_does_not_require_protection() {
    let mut t = T::with_tls(TlsPolicy::Optional, false);
    t.auth_tls();
    assert_eq!(t.codes("PBSZ 0"), vec![200]);
    assert_eq!(t.codes("PROT P"), vec![200]);
    assert_eq!(t.codes("PROT C"), vec![200]);
    assert!(!t.s.data_protected());
    assert_eq!(t.login_tls(LoginTls::default())[0].0, 230);
    t.pasv();
    assert!(matches!(t.transfer("RETR f"), Transfer::Retr { .. }));
}

#[test]
fn transfers_under_tls_without_prot_p_get_521_when_protection_is_required() {
    let mut t = T::with_tls(TlsPolicy::Optional, true);
    t.auth_tls();
    assert_eq!(t.login_tls(LoginTls::default())[0].0, 230);
    t.pasv();
    let outs = t.line("RETR f");
    assert_eq!(outs[0], Output::ResetData);
    let Output::Reply(r) = &outs[1] else {
        panic!("{outs:?}")
    };
    assert_eq!(r.code().0, 521);
    assert!(r.text().contains("PROT P"));
    assert_eq!(t.codes("PBSZ 0"), vec![200]);
    assert_eq!(t.codes("PROT P"), vec![200]);
    t.pasv();
    assert!(matches!(t.transfer("RETR f"), Transfer::Retr { .. }));
}

#[test]
fn a_user_override_can_relax_or_tighten_data_protection() {
    let mut t = T::with_tls(TlsPolicy::Optional, true);
    t.auth_tls();
    let relaxed = LoginTls {
        required: false,
        protected_data: Some(false),
    };
    assert_eq!(t.login_tls(relaxed)[0].0, 230);
    t.pasv();
    assert!(matches!(t.transfer("LIST"), Transfer::List { .. }));

    let mut t = T::with_tls(TlsPolicy::Optional, false);
    t.auth_tls();
    let strict = LoginTls {
        required: false,
        protected_data: Some(true),
    };
    assert_eq!(t.login_tls(strict)[0].0, 230);
    assert_eq!(t.codes("PBSZ 0"), vec![200]);
    assert_eq!(t.codes("PROT C"), vec![534]);
}

#[test]
fn data_tls_refusal_is_522_after_150() {
    let mut t = T::with_tls(TlsPolicy::Optional, true);
    t.auth_tls();
    t.login_tls(LoginTls::default());
    t.codes("PBSZ 0");
    t.codes("PROT P");
    t.pasv();
    t.transfer("STOR f");
    t.s.handle_transfer(
        t.now,
        TransferEvent::Started {
            name: Some(b"f".to_vec()),
            size: None,
        },
    );
    assert_eq!(t.replies()[0].0, 150);
    t.s.handle_transfer(t.now, TransferEvent::DataTlsRefused(DataTlsError::NotResumed));
    let r = t.replies();
    assert_eq!(r[0].0, 522);
    assert!(r[0].1.contains("session reuse required"), "{r:?}");
    assert_eq!(t.codes("NOOP"), vec![200]);
}

#[test]
fn implicit_tls_starts_protected() {
    let config = Config {
        tls: TlsSettings {
            policy: TlsPolicy::Required,
            require_protected_data: true,
            implicit: true,
            allow_ccc: true,
        },
        ..Config::default()
    };
    let mut t = T::with(config, peer(), local());
    assert!(t.s.is_tls() && t.s.data_protected());
    assert_eq!(t.codes("AUTH TLS"), vec![503]);
    assert_eq!(t.login_tls(LoginTls::default())[0].0, 230);
    t.pasv();
    assert!(matches!(t.transfer("RETR f"), Transfer::Retr { .. }));
}

#[test]
fn ccc_only_when_allowed_after_login_and_never_on_implicit() {
    let mut t = T::with_tls(TlsPolicy::Optional, true);
    assert_eq!(t.codes("CCC"), vec![533]);
    t.auth_tls();
    assert_eq!(t.codes("CCC"), vec![534]);

    let mut config = tls_config(TlsPolicy::Optional, true);
    config.tls.allow_ccc = true;
    let mut t = T::with(config, peer(), local());
    t.auth_tls();
    // Before login the password would follow in the clear.
    assert_eq!(t.codes("CCC"), vec![503]);
    t.login_tls(LoginTls::default());
    t.codes("PBSZ 0");
    t.codes("PROT P");
    let outs = t.line("CCC");
    assert!(
        matches!(&outs[..], [Output::Reply(r), Output::StopTls] if r.code().0 == 200),
        "{outs:?}"
    );
    // Lines that arrive before the glue has finished are dropped, as after AUTH TLS.
    t.s.handle_line(t.now, b"DELE x");
    assert!(t.outputs().is_empty());
    t.s.handle_tls_stopped(t.now, true);
    assert!(!t.s.is_tls());
    // The data protection level is unaffected by CCC (RFC 4217 §6).
    assert!(t.s.data_protected());
    assert_eq!(t.codes("NOOP"), vec![200]);
    assert_eq!(t.codes("CCC"), vec![533]);
}
