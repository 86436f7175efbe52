//! One interface over FTP/FTPS and SFTP sessions.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use ferry_proto::listing::EntryKind;
use ferry_proto::listing_parser::RemoteEntry;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::error::{Error, Result};
use crate::ftp::{FtpClient, FtpOptions};
use crate::secret::Secret;
use crate::sftp::{SftpClient, SftpOptions};
use crate::trust::TrustOptions;
use crate::url::{RemoteUrl, Scheme};

/// A checksum the server computed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checksum {
    /// The algorithm.
    pub algorithm: ferry_proto::hash::Algorithm,
    /// The digest.
    pub digest: Vec<u8>,
}

/// Called with the number of bytes just transferred.
pub type Progress<'a> = dyn FnMut(u64) + Send + 'a;

/// A remote directory entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The name as shown to people (invalid UTF-8 replaced).
    pub name: String,
    /// The name exactly as the server sent it (untrusted: see [`crate::names::local_component`]).
    pub raw_name: Vec<u8>,
    /// What it is.
    pub kind: EntryKind,
    /// Size in bytes, if known.
    pub size: Option<u64>,
    /// Modification time, if known.
    pub modified: Option<SystemTime>,
}

impl Entry {
    /// An entry from its parts.
    pub fn new(raw_name: Vec<u8>, kind: EntryKind, size: Option<u64>, modified: Option<SystemTime>) -> Entry {
        Entry {
            name: String::from_utf8_lossy(&raw_name).into_owned(),
            raw_name,
            kind,
            size,
            modified,
        }
    }
}

impl From<RemoteEntry> for Entry {
    fn from(e: RemoteEntry) -> Entry {
        Entry::new(e.name, e.kind, e.size, e.modified)
    }
}

/// Who logs in.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    /// User name.
    pub user: String,
    /// Password, if known (FTP needs one; SFTP tries keys first).
    pub password: Option<Secret>,
    /// SSH private key files to try, in order.
    pub identities: Vec<PathBuf>,
    /// An SSH agent's socket (`SSH_AUTH_SOCK`): its keys are tried first.
    pub agent: Option<PathBuf>,
    /// The passphrase of passphrase-protected key files in `identities` (tried on each of them).
    pub key_passphrase: Option<Secret>,
}

/// How to connect.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Limit for connecting, each reply, and each stalled read or write.
    pub timeout: Duration,
    /// Certificate and host key trust.
    pub trust: TrustOptions,
    /// FTP: active data connections (`EPRT`/`PORT`) instead of passive ones.
    pub active: bool,
}

/// A logged-in session of either protocol.
#[derive(Debug)]
pub enum Remote {
    /// FTP or FTPS.
    Ftp(FtpClient),
    /// SFTP.
    Sftp(SftpClient),
}

impl Remote {
    /// Connects to the server of `url` and logs in.
    ///
    /// # Errors
    ///
    /// Connection, trust and authentication failures.
    pub async fn connect(url: &RemoteUrl, creds: &Credentials, opts: &ConnectOptions) -> Result<Remote> {
        match url.scheme {
            Scheme::Sftp => {
                let o = SftpOptions {
                    timeout: opts.timeout,
                    trust: opts.trust.clone(),
                    identities: creds.identities.clone(),
                    agent: creds.agent.clone(),
                    key_passphrase: creds.key_passphrase.clone(),
                };
                let c = SftpClient::connect(&url.host, url.port, &creds.user, creds.password.as_ref(), &o)
                    .await?;
                Ok(Remote::Sftp(c))
            }
            _ => {
                let o = FtpOptions {
                    timeout: opts.timeout,
                    trust: opts.trust.clone(),
                    active: opts.active,
                };
                let anonymous = Secret::new("anonymous@");
                let password = creds.password.as_ref().unwrap_or(&anonymous);
                Ok(Remote::Ftp(
                    FtpClient::connect(url, &creds.user, password, &o).await?,
                ))
            }
        }
    }

    /// Downloads `path` from `offset` into `out`; returns the bytes received.
    ///
    /// # Errors
    ///
    /// See [`FtpClient::get`] and [`SftpClient::get`].
    pub async fn get(
        &mut self,
        path: &str,
        offset: u64,
        out: &mut (dyn AsyncWrite + Unpin + Send),
        progress: &mut Progress<'_>,
    ) -> Result<u64> {
        match self {
            Remote::Ftp(c) => c.get(path, offset, out, progress).await,
            Remote::Sftp(c) => c.get(path, offset, out, progress).await,
        }
    }

    /// Downloads `path` from byte `offset` into `file` at its current position; returns the bytes
    /// received and, when `checksum` and the server can answer it with the transfer (FTP `HASH`, sent
    /// in the same write as `RETR`), the server's checksum of the file. Plain FTP in binary mode
    /// splices the data into the file; SFTP writes it through a buffer of `buffer` bytes (0: none).
    ///
    /// # Errors
    ///
    /// Refusals, timeouts, I/O errors on either side (the checksum's own errors are in the result).
    pub async fn get_file(
        &mut self,
        path: &str,
        offset: u64,
        file: &std::fs::File,
        buffer: usize,
        progress: &mut Progress<'_>,
        checksum: bool,
    ) -> Result<(u64, crate::ftp::Fetched)> {
        match self {
            Remote::Ftp(c) => c.get_file(path, offset, file, progress, checksum).await,
            Remote::Sftp(c) => {
                use tokio::io::AsyncWriteExt;
                let mut out = tokio::io::BufWriter::with_capacity(buffer, crate::file::FileWriter(file));
                let got = c.get(path, offset, &mut out, progress).await;
                // What arrived is written even after a failure (a resumed download continues there).
                let flushed = out
                    .flush()
                    .await
                    .map_err(|e| Error::local("writing the local file", e));
                let n = got?;
                flushed?;
                Ok((n, None))
            }
        }
    }

    /// Whether downloads can start at an offset: always over SFTP; over FTP when the server announces
    /// `REST STREAM` (RFC 3659) in FEAT.
    pub fn has_ranges(&self) -> bool {
        match self {
            Remote::Ftp(c) => c.has_restart(),
            Remote::Sftp(_) => true,
        }
    }

    /// Downloads at most `len` bytes of `path` from `offset` into `file` at its current position (a
    /// segment of a segmented download written in place): plain binary FTP splices it into the file,
    /// SFTP writes it through a buffer of `buffer` bytes (0: none). Over FTP the data connection is
    /// closed once `len` bytes are in: end the session after a segment.
    ///
    /// # Errors
    ///
    /// As [`FtpClient::get_range`] and [`SftpClient::get_range`].
    pub async fn get_file_range(
        &mut self,
        path: &str,
        offset: u64,
        len: u64,
        file: &std::fs::File,
        buffer: usize,
        progress: &mut Progress<'_>,
    ) -> Result<u64> {
        match self {
            Remote::Ftp(c) => c.get_file_range(path, offset, len, file, progress).await,
            Remote::Sftp(c) => {
                let mut out = tokio::io::BufWriter::with_capacity(buffer, crate::file::FileWriter(file));
                // get_range flushes `out` once the range is in.
                c.get_range(path, offset, len, &mut out, progress).await
            }
        }
    }

    /// Downloads at most `len` bytes of `path` from `offset` (a segment of a segmented download). Over
    /// FTP the data connection is closed once `len` bytes are in, which the server may report as an
    /// aborted transfer: end the session after a segment.
    ///
    /// # Errors
    ///
    /// As [`FtpClient::get_range`] and [`SftpClient::get_range`].
    pub async fn get_range(
        &mut self,
        path: &str,
        offset: u64,
        len: u64,
        out: &mut (dyn AsyncWrite + Unpin + Send),
        progress: &mut Progress<'_>,
    ) -> Result<u64> {
        match self {
            Remote::Ftp(c) => c.get_range(path, offset, len, out, progress).await,
            Remote::Sftp(c) => c.get_range(path, offset, len, out, progress).await,
        }
    }

    /// Uploads `input` to `path`; with `offset > 0` the input continues the remote file at that offset
    /// (resume: the caller has skipped those bytes of the input).
    ///
    /// # Errors
    ///
    /// See [`FtpClient::put`] and [`SftpClient::put`].
    pub async fn put(
        &mut self,
        path: &str,
        offset: u64,
        input: &mut (dyn AsyncRead + Unpin + Send),
        progress: &mut Progress<'_>,
    ) -> Result<u64> {
        match self {
            Remote::Ftp(c) => c.put(path, offset > 0, input, progress).await,
            Remote::Sftp(c) => c.put(path, offset, input, progress).await,
        }
    }

    /// Lists directory `path`.
    ///
    /// # Errors
    ///
    /// Refusals, [`Error::NotFound`], oversized listings, timeouts.
    pub async fn list(&mut self, path: &str) -> Result<Vec<Entry>> {
        match self {
            Remote::Ftp(c) => c.list(path).await,
            Remote::Sftp(c) => c.list(path).await,
        }
    }

    /// What `path` is.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when it does not exist.
    pub async fn stat(&mut self, path: &str) -> Result<Entry> {
        match self {
            Remote::Ftp(c) => c.stat(path).await,
            Remote::Sftp(c) => c.stat(path).await,
        }
    }

    /// `stat`, with "not found" as `None`.
    ///
    /// # Errors
    ///
    /// Anything but "not found".
    pub async fn try_stat(&mut self, path: &str) -> Result<Option<Entry>> {
        match self.stat(path).await {
            Ok(e) => Ok(Some(e)),
            Err(Error::NotFound(_)) => Ok(None),
            // Some FTP servers answer a plain 550 without saying why.
            Err(Error::Refused { reply, .. })
                if matches!(self, Remote::Ftp(_)) && reply.starts_with("550") =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Deletes a file.
    ///
    /// # Errors
    ///
    /// The server's refusal.
    pub async fn remove(&mut self, path: &str) -> Result<()> {
        match self {
            Remote::Ftp(c) => c.remove(path).await,
            Remote::Sftp(c) => c.remove(path).await,
        }
    }

    /// Creates a directory.
    ///
    /// # Errors
    ///
    /// The server's refusal.
    pub async fn mkdir(&mut self, path: &str) -> Result<()> {
        match self {
            Remote::Ftp(c) => c.mkdir(path).await,
            Remote::Sftp(c) => c.mkdir(path).await,
        }
    }

    /// Removes an empty directory.
    ///
    /// # Errors
    ///
    /// The server's refusal.
    pub async fn rmdir(&mut self, path: &str) -> Result<()> {
        match self {
            Remote::Ftp(c) => c.rmdir(path).await,
            Remote::Sftp(c) => c.rmdir(path).await,
        }
    }

    /// Renames.
    ///
    /// # Errors
    ///
    /// The server's refusal.
    pub async fn rename(&mut self, from: &str, to: &str) -> Result<()> {
        match self {
            Remote::Ftp(c) => c.rename(from, to).await,
            Remote::Sftp(c) => c.rename(from, to).await,
        }
    }

    /// Sets a file's modification time where the server allows; `Ok(false)` when it cannot.
    ///
    /// # Errors
    ///
    /// Connection errors.
    pub async fn set_modified(&mut self, path: &str, t: SystemTime) -> Result<bool> {
        match self {
            Remote::Ftp(c) => c.set_modified(path, t).await,
            Remote::Sftp(c) => c.set_modified(path, t).await,
        }
    }

    /// [`Remote::set_modified`] and then [`Remote::checksum`], in one round trip where the protocol
    /// allows (FTP: `MFMT` and `HASH` pipelined). Returns whether the time was set and the checksum's
    /// result.
    ///
    /// # Errors
    ///
    /// Connection errors.
    pub async fn set_modified_and_checksum(
        &mut self,
        path: &str,
        t: SystemTime,
    ) -> Result<(bool, Result<Option<Checksum>>)> {
        match self {
            Remote::Ftp(c) => c.set_modified_and_checksum(path, t).await,
            Remote::Sftp(c) => {
                let set = c.set_modified(path, t).await?;
                Ok((set, c.checksum(path).await))
            }
        }
    }

    /// FTP: `TYPE A` (text, line endings converted: CRLF on the wire, LF locally) or `TYPE I`.
    ///
    /// # Errors
    ///
    /// [`Error::Usage`] for SFTP (it has no text mode); the FTP server's refusal.
    pub async fn set_ascii(&mut self, ascii: bool) -> Result<()> {
        match self {
            Remote::Ftp(c) => c.set_ascii(ascii).await,
            Remote::Sftp(_) if ascii => Err(Error::Usage(
                "ASCII mode exists only in FTP; SFTP transfers bytes unchanged".into(),
            )),
            Remote::Sftp(_) => Ok(()),
        }
    }

    /// FTP: active or passive data connections for the next transfers (SFTP has none; ignored).
    pub fn set_active(&mut self, active: bool) {
        if let Remote::Ftp(c) = self {
            c.set_active(active);
        }
    }

    /// Whether the server offers checksums (FTP `HASH`/`XSHA256`…, SFTP `check-file`).
    pub fn has_checksums(&self) -> bool {
        match self {
            Remote::Ftp(c) => c.has_checksums(),
            Remote::Sftp(c) => c.has_checksums(),
        }
    }

    /// The server's checksum of file `path`, when it offers one (`Ok(None)` otherwise, or when it declines
    /// for this file, e.g. over its size limit).
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`], connection errors and timeouts.
    pub async fn checksum(&mut self, path: &str) -> Result<Option<Checksum>> {
        match self {
            Remote::Ftp(c) => c.checksum(path).await,
            Remote::Sftp(c) => c.checksum(path).await,
        }
    }

    /// Ends the session politely.
    pub async fn close(self) {
        match self {
            Remote::Ftp(c) => c.quit().await,
            Remote::Sftp(c) => drop(c),
        }
    }
}
