//! `HASH`, `OPTS HASH`, `RANG` and the `X…` checksum verbs: the session asks the glue for a checksum
//! ([`Output::Hash`]) and turns the answer ([`Session::handle_hash`]) into the reply.

use std::time::Instant;

use crate::hash::{self, Algorithm, Range};
use crate::path::VPath;
use crate::reply::ReplyCode;

use super::{fs_reply, FsError, Output, Session, Waiting};

/// A checksum the glue must compute by reading the file through the storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashRequest {
    /// The file.
    pub path: VPath,
    /// The algorithm.
    pub algorithm: Algorithm,
    /// The byte range (the whole file by default).
    pub range: Range,
    /// Refuse ranges longer than this many bytes ([`HashError::TooLarge`]).
    pub max_size: u64,
}

/// A computed checksum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashValue {
    /// The digest.
    pub digest: Vec<u8>,
    /// First byte hashed.
    pub start: u64,
    /// One past the last byte hashed.
    pub end: u64,
}

/// Why no checksum could be given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashError {
    /// The storage refused or failed (a directory is `ErrorKind::IsADirectory`).
    Storage(FsError),
    /// The range is longer than the configured limit.
    TooLarge {
        /// Bytes that would have been read.
        size: u64,
        /// The limit (`hash_max_size`).
        limit: u64,
    },
    /// The range starts beyond the end of the file.
    BeyondEnd {
        /// The file's size.
        size: u64,
    },
}

/// What a pending checksum is for, so that the reply has the right form.
#[derive(Debug, Clone)]
pub(super) struct PendingHash {
    algorithm: Algorithm,
    /// The path as the client gave it (echoed in the `HASH` reply).
    shown: Vec<u8>,
    /// `X…` verbs answer `250 <hex>`; `HASH` answers in the draft's `213` form.
    legacy: bool,
}

impl Session {
    /// The answer to [`Output::Hash`].
    pub fn handle_hash(&mut self, now: Instant, result: Result<HashValue, HashError>) {
        let Waiting::Hash(pending) = std::mem::replace(&mut self.waiting, Waiting::Nothing) else {
            return;
        };
        self.last_activity = now;
        match result {
            Ok(v) if pending.legacy => self.reply(ReplyCode::FILE_ACTION_OK, hash::hex(&v.digest)),
            Ok(v) => {
                let mut text = format!(
                    "{} {}-{} {} ",
                    pending.algorithm.ftp_name(),
                    v.start,
                    v.end,
                    hash::hex(&v.digest)
                )
                .into_bytes();
                text.extend_from_slice(&pending.shown);
                self.reply(ReplyCode::FILE_STATUS, text);
            }
            Err(HashError::Storage(e)) => {
                let (code, text) = fs_reply(e);
                self.reply(code, text);
            }
            Err(HashError::TooLarge { size, limit }) => self.reply(
                ReplyCode::FILE_UNAVAILABLE,
                format!(
                    "File too large to hash: {size} bytes is over the server's hash_max_size of {limit} bytes"
                ),
            ),
            Err(HashError::BeyondEnd { size }) => self.reply(
                ReplyCode::FILE_UNAVAILABLE,
                format!("Range starts beyond the end of the file ({size} bytes)"),
            ),
        }
        self.run_held();
    }

    /// `OPTS HASH [algorithm]`.
    pub(super) fn opts_hash(&mut self, algorithm: Option<Algorithm>) {
        if self.hash_disabled() {
            return;
        }
        if let Some(a) = algorithm {
            self.hash_algorithm = a;
        }
        let name = self.hash_algorithm.ftp_name();
        self.reply(ReplyCode::COMMAND_OK, name);
    }

    /// `RANG start end`: the range of the next `HASH`.
    pub(super) fn rang(&mut self, range: Option<Range>) {
        self.hash_range = range;
        match range {
            None => self.reply(ReplyCode::FILE_ACTION_PENDING, "Range reset"),
            Some(r) => {
                let last = r
                    .end
                    .map_or_else(|| "end".to_owned(), |e| e.saturating_sub(1).to_string());
                self.reply(
                    ReplyCode::FILE_ACTION_PENDING,
                    format!("Range set to bytes {} to {last} for the next HASH", r.start),
                )
            }
        }
    }

    /// `HASH path` (with the range of a preceding `RANG`), or an `X…` verb with its own algorithm and range.
    pub(super) fn hash_file(&mut self, arg: &[u8], algorithm: Option<Algorithm>, range: Range) {
        if self.hash_disabled() || self.denied(|p| p.read) {
            return;
        }
        let legacy = algorithm.is_some();
        let algorithm = algorithm.unwrap_or(self.hash_algorithm);
        let max_size = self.config.hash_max_size;
        self.with_path(arg, |s, path| {
            s.waiting = Waiting::Hash(PendingHash {
                algorithm,
                shown: arg.to_vec(),
                legacy,
            });
            s.push(Output::Hash(HashRequest {
                path,
                algorithm,
                range,
                max_size,
            }));
        });
    }

    fn hash_disabled(&mut self) -> bool {
        let off = self.config.hash_max_size == 0;
        if off {
            self.reply(
                ReplyCode::NOT_IMPLEMENTED,
                "Checksums are disabled on this server (hash_max_size = 0)",
            );
        }
        off
    }
}

#[cfg(test)]
mod tests {
    use super::super::*;
    use super::*;
    use crate::reply::Reply;
    use std::net::SocketAddr;

    fn logged_in(config: Config) -> (Session, Instant) {
        let now = Instant::now();
        let peer: SocketAddr = "127.0.0.1:5000".parse().expect("addr");
        let local: SocketAddr = "127.0.0.1:21".parse().expect("addr");
        let mut s = Session::new(config, peer, local, now);
        s.handle_line(now, b"USER u");
        s.handle_line(now, b"PASS p");
        s.handle_auth(
            now,
            Some(Login {
                user: "u".into(),
                permissions: Permissions {
                    read: true,
                    write: true,
                    delete: true,
                    rename: true,
                    mkdir: true,
                    list: true,
                },
                tls: LoginTls::default(),
            }),
        );
        while s.poll_output().is_some() {}
        (s, now)
    }

    fn replies(s: &mut Session) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(o) = s.poll_output() {
            if let Output::Reply(r) = o {
                out.push(String::from_utf8_lossy(&Reply::to_bytes(&r)).into_owned());
            }
        }
        out
    }

    fn request(s: &mut Session) -> HashRequest {
        match s.poll_output() {
            Some(Output::Hash(r)) => r,
            other => panic!("expected a hash request, got {other:?}"),
        }
    }

    #[test]
    fn hash_uses_the_selected_algorithm_and_the_draft_reply_form() {
        let (mut s, now) = logged_in(Config::default());
        s.handle_line(now, b"FEAT");
        assert!(replies(&mut s)[0].contains(" HASH SHA-256*;SHA-1;MD5;CRC32\r\n"));
        s.handle_line(now, b"OPTS HASH MD5");
        assert_eq!(replies(&mut s), ["200 MD5\r\n"]);
        s.handle_line(now, b"HASH dir/f x");
        let r = request(&mut s);
        assert_eq!(r.algorithm, Algorithm::Md5);
        assert_eq!(r.path.as_bytes(), b"/dir/f x");
        assert_eq!(r.range, Range::default());
        assert_eq!(r.max_size, crate::hash::DEFAULT_MAX_SIZE);
        // Commands wait for the checksum.
        s.handle_line(now, b"PWD");
        assert!(replies(&mut s).is_empty());
        s.handle_hash(
            now,
            Ok(HashValue {
                digest: vec![0xab, 0xcd],
                start: 0,
                end: 7,
            }),
        );
        let r = replies(&mut s);
        assert_eq!(r[0], "213 MD5 0-7 abcd dir/f x\r\n");
        assert!(r[1].starts_with("257 "));
    }

    #[test]
    fn rang_applies_to_the_next_hash_only() {
        let (mut s, now) = logged_in(Config::default());
        s.handle_line(now, b"RANG 10 19");
        assert!(replies(&mut s)[0].starts_with("350 "));
        s.handle_line(now, b"HASH f");
        assert_eq!(
            request(&mut s).range,
            Range {
                start: 10,
                end: Some(20)
            }
        );
        s.handle_hash(
            now,
            Err(HashError::Storage(crate::session::ErrorKind::NotFound.into())),
        );
        assert!(replies(&mut s)[0].starts_with("550 "));
        s.handle_line(now, b"HASH f");
        assert_eq!(request(&mut s).range, Range::default());
        s.handle_hash(now, Err(HashError::BeyondEnd { size: 3 }));
        // Any other command in between forgets the range.
        s.handle_line(now, b"RANG 0 0");
        s.handle_line(now, b"NOOP");
        replies(&mut s);
        s.handle_line(now, b"HASH f");
        assert_eq!(request(&mut s).range, Range::default());
    }

    #[test]
    fn legacy_verbs_answer_250_with_the_hex_digest() {
        let (mut s, now) = logged_in(Config::default());
        s.handle_line(now, b"XCRC \"f\" 1 5");
        let r = request(&mut s);
        assert_eq!(r.algorithm, Algorithm::Crc32);
        assert_eq!(
            r.range,
            Range {
                start: 1,
                end: Some(5)
            }
        );
        s.handle_hash(
            now,
            Ok(HashValue {
                digest: vec![0xcb, 0xf4, 0x39, 0x26],
                start: 1,
                end: 5,
            }),
        );
        assert_eq!(replies(&mut s), ["250 cbf43926\r\n"]);
    }

    #[test]
    fn too_large_names_the_setting_and_zero_disables_hashing() {
        let (mut s, now) = logged_in(Config::default());
        s.handle_line(now, b"XSHA256 big");
        request(&mut s);
        s.handle_hash(now, Err(HashError::TooLarge { size: 5, limit: 4 }));
        let r = replies(&mut s);
        assert!(
            r[0].starts_with("550 ") && r[0].contains("hash_max_size"),
            "{r:?}"
        );

        let (mut s, now) = logged_in(Config {
            hash_max_size: 0,
            ..Config::default()
        });
        s.handle_line(now, b"FEAT");
        assert!(!replies(&mut s)[0].contains("HASH"));
        s.handle_line(now, b"HASH f");
        let r = replies(&mut s);
        assert!(
            r[0].starts_with("502 ") && r[0].contains("hash_max_size"),
            "{r:?}"
        );
    }

    #[test]
    fn hash_needs_read_permission_and_login() {
        let now = Instant::now();
        let peer: SocketAddr = "127.0.0.1:5000".parse().expect("addr");
        let mut s = Session::new(Config::default(), peer, peer, now);
        replies(&mut s);
        s.handle_line(now, b"HASH f");
        assert!(replies(&mut s)[0].starts_with("530 "));
        s.handle_line(now, b"USER u");
        s.handle_line(now, b"PASS p");
        s.handle_auth(
            now,
            Some(Login {
                user: "u".into(),
                permissions: Permissions {
                    list: true,
                    ..Permissions::default()
                },
                tls: LoginTls::default(),
            }),
        );
        replies(&mut s);
        s.handle_line(now, b"HASH f");
        assert_eq!(replies(&mut s), ["550 Permission denied\r\n"]);
    }
}
