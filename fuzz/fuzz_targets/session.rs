//! The FTP session state machine fed arbitrary command sequences, with every action it asks for answered
//! by a fake result chosen by the input (success, failure, wrong kind, or an event at an odd time).
//! Checks: no panic; every reply well-formed; active targets only to the control peer on ports >= 1024;
//! nothing after Close; a bounded number of outputs per input.
#![no_main]

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use ferry_proto::limits::MAX_LINE;
use ferry_proto::listing::{Entry, EntryKind};
use ferry_proto::session::{
    Config, DataTlsError, ErrorKind, FsError, HashError, HashValue, Login, LoginTls, Output, Permissions, Session,
    StorageOk, TlsPolicy, TlsSettings, TransferEvent,
};
use ferry_proto::telnet::{ControlDecoder, ControlInput, Urgent};
use libfuzzer_sys::fuzz_target;

struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }
    fn line(&mut self) -> &[u8] {
        let end = self
            .0
            .iter()
            .position(|&b| b == b'\n')
            .map_or(self.0.len(), |i| i + 1);
        let (line, rest) = self.0.split_at(end);
        self.0 = rest;
        line
    }
    fn done(&self) -> bool {
        self.0.is_empty()
    }
}

fn fs_error(b: u8) -> FsError {
    [
        ErrorKind::NotFound,
        ErrorKind::PermissionDenied,
        ErrorKind::AlreadyExists,
        ErrorKind::NotADirectory,
        ErrorKind::IsADirectory,
        ErrorKind::DirectoryNotEmpty,
        ErrorKind::InvalidName,
        ErrorKind::QuotaExceeded,
        ErrorKind::Unsupported,
        ErrorKind::Io,
    ][usize::from(b) % 10]
    .into()
}

fn transfer_end(b: u8) -> TransferEvent {
    match b % 7 {
        0 => TransferEvent::Finished { bytes: u64::from(b) },
        1 => TransferEvent::StorageFailed(fs_error(b / 7)),
        2 => TransferEvent::NoConnection,
        3 => TransferEvent::ConnectionLost,
        4 => TransferEvent::DataTlsRefused(DataTlsError::NotResumed),
        5 => TransferEvent::DataTlsRefused(DataTlsError::Handshake),
        _ => TransferEvent::Aborted,
    }
}

fn entry(b: u8) -> Entry {
    Entry {
        name: vec![b'a' + b % 26, b'\n', b],
        kind: [
            EntryKind::File,
            EntryKind::Dir,
            EntryKind::Symlink,
            EntryKind::Other,
        ][usize::from(b) % 4],
        size: u64::from(b) << 20,
        modified: (b & 1 == 0).then(|| SystemTime::UNIX_EPOCH + Duration::from_secs(u64::from(b) << 24)),
        mode: Some(u32::from(b)),
        nlink: 1,
        unique: None,
    }
}

fn check_reply(wire: &[u8]) {
    assert!(wire.len() >= 6 && wire.ends_with(b"\r\n"), "reply {wire:?}");
    let code = &wire[..3];
    assert!(
        code.iter().all(u8::is_ascii_digit) && (b'1'..=b'5').contains(&code[0]),
        "reply {wire:?}"
    );
    let lines: Vec<&[u8]> = wire[..wire.len() - 2].split(|&b| b == b'\n').collect();
    let last = lines[lines.len() - 1];
    assert!(
        last.starts_with(code) && last.get(3) == Some(&b' '),
        "reply {wire:?}"
    );
    if lines.len() > 1 {
        assert_eq!(wire[3], b'-', "reply {wire:?}");
        for middle in &lines[1..lines.len() - 1] {
            assert!(
                !(middle.starts_with(code) && middle.get(3) == Some(&b' ')),
                "reply {wire:?}"
            );
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let peer: SocketAddr = "127.0.0.1:40000".parse().expect("addr");
    let local: SocketAddr = "127.0.0.1:2121".parse().expect("addr");
    let mut now = Instant::now();
    // The first byte picks the FTPS settings of the connection.
    let t = input.byte();
    let config = Config {
        tls: TlsSettings {
            policy: [TlsPolicy::Off, TlsPolicy::Optional, TlsPolicy::Required][usize::from(t % 3)],
            require_protected_data: t & 4 != 0,
            implicit: t & 8 != 0,
            allow_ccc: t & 16 != 0,
        },
        ..Config::default()
    };
    let mut session = Session::new(config, peer, local, now);
    let mut decoder = ControlDecoder::new(MAX_LINE);
    let mut closed = false;
    let mut steps = 0;
    while !input.done() && steps < 10_000 {
        steps += 1;
        let op = input.byte();
        now += Duration::from_millis(u64::from(op) * 40);
        match op % 16 {
            0 => session.handle_timeout(now + Duration::from_secs(u64::from(input.byte()) * 4)),
            1 => session.handle_urgent(
                now,
                if op & 16 != 0 {
                    Urgent::InterruptProcess
                } else {
                    Urgent::DataMark
                },
            ),
            2 => session.handle_transfer(now, transfer_end(input.byte())),
            3 => session.handle_storage(now, Err(fs_error(input.byte()))),
            4 => session.handle_auth(now, None),
            5 => session.handle_passive(now, Err(())),
            _ => {
                let line = input.line().to_vec();
                decoder.push(&line);
                while let Some(i) = decoder.next() {
                    match i {
                        ControlInput::Line(l) => session.handle_line(now, &l),
                        ControlInput::TooLong => session.handle_line_too_long(now),
                        ControlInput::Urgent(u) => session.handle_urgent(now, u),
                        ControlInput::Respond(_) => {}
                    }
                }
            }
        }
        let mut outputs = 0;
        while let Some(out) = session.poll_output() {
            outputs += 1;
            assert!(outputs < 10_000, "unbounded outputs");
            assert!(!closed, "output after Close: {out:?}");
            match out {
                Output::Reply(r) => check_reply(&r.to_bytes()),
                Output::Authenticate { user, .. } => {
                    let b = input.byte();
                    let ok = (b & 1 == 0).then(|| Login {
                        user,
                        permissions: Permissions {
                            list: b & 2 == 0,
                            read: b & 4 == 0,
                            write: b & 8 == 0,
                            delete: b & 16 == 0,
                            rename: b & 32 == 0,
                            mkdir: b & 64 == 0,
                        },
                        tls: LoginTls {
                            required: b & 128 != 0,
                            protected_data: None,
                        },
                    });
                    session.handle_auth(now, ok);
                }
                Output::Storage(_) => {
                    let b = input.byte();
                    let result = match b % 4 {
                        0 => Err(fs_error(b / 4)),
                        1 => Ok(StorageOk::Done),
                        2 => Ok(StorageOk::Entry(entry(b))),
                        _ => Ok(StorageOk::Entries {
                            entries: (0..b % 7).map(entry).collect(),
                            truncated: b & 8 != 0,
                            listed_at: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
                        }),
                    };
                    session.handle_storage(now, result);
                }
                Output::Hash(request) => {
                    let b = input.byte();
                    let size = u64::from(b);
                    let result = match b % 4 {
                        0 => Err(HashError::Storage(fs_error(b / 4))),
                        1 => Err(HashError::TooLarge {
                            size,
                            limit: request.max_size,
                        }),
                        2 => Err(HashError::BeyondEnd { size }),
                        _ => Ok(HashValue {
                            digest: vec![b; usize::from(b % 33)],
                            start: request.range.start,
                            end: request.range.start.saturating_add(size),
                        }),
                    };
                    session.handle_hash(now, result);
                }
                Output::OpenPassive(_) => {
                    let b = input.byte();
                    let addr: SocketAddr = ["127.0.0.1:50000", "[::1]:50001", "10.0.0.1:1"]
                        [usize::from(b) % 3]
                        .parse()
                        .expect("addr");
                    session.handle_passive(now, if b & 4 == 0 { Ok(addr) } else { Err(()) });
                }
                Output::Transfer(_) => {
                    let b = input.byte();
                    if b & 1 == 0 {
                        session.handle_transfer(
                            now,
                            TransferEvent::Started {
                                name: Some(vec![b]),
                                size: Some(u64::from(b)),
                            },
                        );
                    }
                    if b & 2 == 0 {
                        session.handle_transfer_progress(u64::from(b));
                        session.handle_transfer(now, transfer_end(b >> 2));
                    }
                }
                Output::AbortTransfer => session.handle_transfer(now, TransferEvent::Aborted),
                Output::SetActive(a) => {
                    assert_eq!(a.ip(), peer.ip(), "active connection to a third party");
                    assert!(a.port() >= 1024, "active connection to a privileged port");
                }
                Output::ResetData => {}
                Output::StartTls => session.handle_tls(now, input.byte() & 1 == 0),
                Output::StopTls => session.handle_tls_stopped(now, input.byte() & 1 == 0),
                Output::Close => closed = true,
            }
        }
        assert_eq!(closed, session.is_closed());
        if closed {
            session.handle_line(now, b"NOOP");
            assert!(session.poll_output().is_none());
            return;
        }
    }
});
