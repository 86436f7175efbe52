//! An FTP/FTPS client session (RFC 959, 2228/4217, 2428, 3659).
//!
//! One [`FtpClient`] is one control connection. Data connections are passive by default: `EPSV` first,
//! `PASV` when the server refuses it; either way the data connection goes to the control connection's peer
//! address and only the port is taken from the reply (a hostile or misconfigured server cannot point the
//! client at another host). Active mode (on request) listens on the control connection's local address,
//! announces it with `EPRT` (`PORT` when the server does not know EPRT) and accepts the server's
//! connection only from the control connection's peer address. Transfers use `TYPE I`; `TYPE A` on
//! request, with the line endings converted on the client (CRLF on the wire, LF locally). Under TLS every data connection resumes the control
//! connection's TLS session (servers such as vsftpd and ferry require it). Every reply line, listing line
//! and listing length is bounded, and every wait has a timeout.

mod control;
mod data;
mod splice;

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use ferry_proto::hash::Algorithm;
use ferry_proto::listing::EntryKind;
use ferry_proto::reply::{Reply, ReplyCode};

pub(crate) use control::connect_tcp;
use control::Control;
pub use control::Stream;

use crate::error::{Error, Result};
use crate::file::FileWriter;
use crate::names::check_arg;
use crate::remote::{Checksum, Entry, Progress};
use crate::secret::Secret;
use crate::trust::tls::{TlsContext, TlsVersions};
use crate::trust::TrustOptions;
use crate::url::{RemoteUrl, Scheme};

/// Settings of an FTP session.
#[derive(Debug, Clone)]
pub struct FtpOptions {
    /// Limit for connecting, for each reply and for each read or write of a stalled data connection.
    pub timeout: Duration,
    /// Certificate trust for FTPS.
    pub trust: TrustOptions,
    /// Active mode: the server connects to the client for data (`EPRT`/`PORT`).
    pub active: bool,
}

/// What the server advertised in `FEAT`.
#[derive(Debug, Clone, Default)]
struct Features {
    mlst: bool,
    mfmt: bool,
    utf8: bool,
    /// `REST STREAM` (RFC 3659): a transfer can start at an offset.
    rest_stream: bool,
    /// `HASH` algorithms offered, and the one selected (marked `*`).
    hash: Vec<Algorithm>,
    hash_selected: Option<Algorithm>,
    /// `XSHA256`/`XSHA1`/`XMD5`/`XCRC` verbs listed.
    xhash: Vec<Algorithm>,
}

/// Algorithms in the order a client prefers them.
const PREFERENCE: [Algorithm; 4] = Algorithm::ALL;

/// A logged-in FTP or FTPS session.
#[derive(Debug)]
pub struct FtpClient {
    control: Control,
    peer: SocketAddr,
    /// The control connection's local address (active mode listens there).
    local: SocketAddr,
    active: bool,
    eprt_refused: bool,
    /// `TYPE A` is in force.
    ascii: bool,
    tls: Option<TlsContext>,
    timeout: Duration,
    features: Features,
    epsv_refused: bool,
    /// The directory after login, to return to after probing with `CWD`.
    home: Option<String>,
    /// The pipe plain binary downloads into files are spliced through (made at the first one).
    pipe: Option<splice::Pipe>,
}

/// A data connection: plain TCP (downloads into files splice from it) or TLS.
enum Data {
    Plain(tokio::net::TcpStream),
    Tls(Box<dyn Stream>),
}

impl Data {
    fn boxed(self) -> Box<dyn Stream> {
        match self {
            Data::Plain(tcp) => Box::new(tcp),
            Data::Tls(s) => s,
        }
    }
}

/// Where a download goes.
enum Sink<'a> {
    Writer(&'a mut (dyn tokio::io::AsyncWrite + Unpin + Send)),
    /// A local file, written at its current position (spliced into when the connection is plain TCP
    /// in binary mode).
    File(&'a std::fs::File),
}

/// The server's answer to a checksum request sent with a transfer: `None` when none was sent.
pub type Fetched = Option<Result<Option<Checksum>>>;

impl FtpClient {
    /// Connects to `url`'s server and logs in as `user`.
    ///
    /// # Errors
    ///
    /// Connection, TLS, trust and login failures (a wrong password is [`Error::Auth`]).
    pub async fn connect(
        url: &RemoteUrl,
        user: &str,
        password: &Secret,
        opts: &FtpOptions,
    ) -> Result<FtpClient> {
        // TLS 1.2 first (its session resumes on every data connection; see `TlsVersions`), then
        // TLS 1.3 for a server that refuses 1.2.
        match Self::connect_with(url, user, password, opts, TlsVersions::Tls12).await {
            Err(Error::Tls(first)) if url.scheme != Scheme::Ftp => {
                Self::connect_with(url, user, password, opts, TlsVersions::Tls13)
                    .await
                    .map_err(|e| match e {
                        Error::Tls(second) => {
                            Error::Tls(format!("{second} (and with TLS 1.2 only: {first})"))
                        }
                        other => other,
                    })
            }
            other => other,
        }
    }

    async fn connect_with(
        url: &RemoteUrl,
        user: &str,
        password: &Secret,
        opts: &FtpOptions,
        versions: TlsVersions,
    ) -> Result<FtpClient> {
        check_arg(user)?;
        check_arg(password.expose())
            .map_err(|_| Error::Usage("the password contains CR, LF or NUL; refusing to send it".into()))?;
        let tcp = control::connect_tcp(&url.host, url.port, opts.timeout).await?;
        let peer = tcp
            .peer_addr()
            .map_err(|e| Error::io(format!("connecting to {}", url.authority()), e))?;
        let local = tcp
            .local_addr()
            .map_err(|e| Error::io(format!("connecting to {}", url.authority()), e))?;
        let tls = match url.scheme {
            Scheme::Ftp => None,
            Scheme::Ftpes | Scheme::Ftps => Some(TlsContext::with_versions(
                &url.host,
                url.port,
                &opts.trust,
                versions,
            )?),
            Scheme::Sftp => return Err(Error::Usage("sftp:// URLs need the SFTP client".into())),
        };
        let stream: Box<dyn Stream> = match (&tls, url.scheme) {
            (Some(ctx), Scheme::Ftps) => Box::new(data::tls_connect(ctx, tcp, opts.timeout).await?),
            _ => Box::new(tcp),
        };
        let mut client = FtpClient {
            control: Control::new(stream, opts.timeout),
            peer,
            local,
            active: opts.active,
            eprt_refused: false,
            ascii: false,
            tls,
            timeout: opts.timeout,
            features: Features::default(),
            epsv_refused: false,
            home: None,
            pipe: None,
        };
        client.greeting().await?;
        if url.scheme == Scheme::Ftpes {
            client.auth_tls().await?;
        }
        client.login(user, password).await?;
        client.setup().await?;
        Ok(client)
    }

    /// Whether the control connection is protected by TLS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Whether data connections are active (the server connects to the client).
    pub fn is_active(&self) -> bool {
        self.active
    }

    /// Switches between active and passive data connections for the next transfers.
    pub fn set_active(&mut self, active: bool) {
        self.active = active;
    }

    /// Whether `TYPE A` is in force.
    pub fn is_ascii(&self) -> bool {
        self.ascii
    }

    /// `TYPE A` (text: CRLF on the wire, LF in local files) or `TYPE I` (bytes unchanged).
    ///
    /// # Errors
    ///
    /// The server's refusal; connection errors.
    pub async fn set_ascii(&mut self, ascii: bool) -> Result<()> {
        let r = self.cmd("TYPE", Some(if ascii { "A" } else { "I" })).await?;
        expect(
            &r,
            &[ReplyCode::COMMAND_OK],
            if ascii { "TYPE A" } else { "TYPE I" },
            "",
        )?;
        self.ascii = ascii;
        Ok(())
    }

    /// Downloads `path` from byte `offset` into `out`; returns the bytes received.
    ///
    /// # Errors
    ///
    /// Refusals, timeouts, I/O errors on either side.
    pub async fn get(
        &mut self,
        path: &str,
        offset: u64,
        out: &mut (dyn tokio::io::AsyncWrite + Unpin + Send),
        progress: &mut Progress<'_>,
    ) -> Result<u64> {
        // A range without end: the whole rest of the file, and the server's 226 is required.
        self.get_range(path, offset, u64::MAX, out, progress).await
    }

    /// Downloads at most `len` bytes of `path` from `offset` (`REST`, then `RETR`, closing the data
    /// connection once `len` bytes are in: a segment of a segmented download). The server may answer
    /// the early close with 426/451; the caller should end this session afterwards.
    ///
    /// # Errors
    ///
    /// Refusals, timeouts, I/O errors; a transfer that ends short of `len` with a failure reply.
    pub async fn get_range(
        &mut self,
        path: &str,
        offset: u64,
        len: u64,
        out: &mut (dyn tokio::io::AsyncWrite + Unpin + Send),
        progress: &mut Progress<'_>,
    ) -> Result<u64> {
        let (n, _) = self
            .retrieve(path, offset, len, Sink::Writer(out), progress, false)
            .await?;
        Ok(n)
    }

    /// Downloads `path` from byte `offset` into `file` at its current position (a plain binary
    /// transfer is spliced from the socket into the file, the bytes never passing through user
    /// space); returns the bytes received. With `checksum`, when the server offers `HASH` and
    /// `offset` is 0, the file's checksum is asked for in the same write as the `RETR` (no extra
    /// round trip) and returned as well (`None` when it was not asked for; then use
    /// [`FtpClient::checksum`]).
    ///
    /// # Errors
    ///
    /// Refusals, timeouts, I/O errors on either side (the checksum's own errors are in the result).
    pub async fn get_file(
        &mut self,
        path: &str,
        offset: u64,
        file: &std::fs::File,
        progress: &mut Progress<'_>,
        checksum: bool,
    ) -> Result<(u64, Fetched)> {
        self.retrieve(path, offset, u64::MAX, Sink::File(file), progress, checksum)
            .await
    }

    /// Downloads at most `len` bytes of `path` from `offset` into `file` at its current position (a
    /// segment of a segmented download, spliced like [`FtpClient::get_file`]); the data connection is
    /// closed once `len` bytes are in, as in [`FtpClient::get_range`]: end the session afterwards.
    ///
    /// # Errors
    ///
    /// As [`FtpClient::get_range`].
    pub async fn get_file_range(
        &mut self,
        path: &str,
        offset: u64,
        len: u64,
        file: &std::fs::File,
        progress: &mut Progress<'_>,
    ) -> Result<u64> {
        let (n, _) = self
            .retrieve(path, offset, len, Sink::File(file), progress, false)
            .await?;
        Ok(n)
    }

    /// `REST` (when `offset` > 0) and `RETR`, with `HASH` in front of it when `checksum`, the server
    /// offers it and there is no `REST`; reads at most `len` bytes into `sink`.
    async fn retrieve(
        &mut self,
        path: &str,
        offset: u64,
        len: u64,
        sink: Sink<'_>,
        progress: &mut Progress<'_>,
        checksum: bool,
    ) -> Result<(u64, Fetched)> {
        check_arg(path)?;
        if self.ascii && (offset > 0 || len != u64::MAX) {
            return Err(Error::Usage(
                "resuming or segmenting is not possible in ASCII mode (byte offsets differ from the server's); use binary mode".into(),
            ));
        }
        // Not between REST and RETR: a server may take any other command as cancelling the offset.
        let algorithm = if checksum && offset == 0 {
            self.hash_algorithm().await?
        } else {
            None
        };
        if offset > 0 {
            let r = self.cmd("REST", Some(&offset.to_string())).await?;
            expect(&r, &[ReplyCode::FILE_ACTION_PENDING], "REST (resume)", path)?;
        }
        let (conn, hashed) = self.transfer_with(algorithm.is_some(), "RETR", path).await?;
        let fetched = algorithm.zip(hashed).map(|(a, r)| hash_reply(&r, a, path));
        let (timeout, ascii) = (self.timeout, self.ascii);
        // The data connection is closed before the final reply is read (a range closes it early).
        let received = match (conn, sink) {
            (Data::Plain(tcp), Sink::File(file)) if !ascii => self.splice_in(tcp, file, progress, len).await,
            (conn, Sink::File(file)) => {
                data::copy_in(
                    &mut conn.boxed(),
                    &mut FileWriter(file),
                    timeout,
                    progress,
                    len,
                    ascii,
                )
                .await
            }
            (conn, Sink::Writer(out)) => {
                data::copy_in(&mut conn.boxed(), out, timeout, progress, len, ascii).await
            }
        };
        let end = self.control.reply().await?;
        let n = received?;
        if n < len {
            expect_done(&end, "RETR", path)?;
        }
        Ok((n, fetched))
    }

    /// Splices `tcp` into `file` through the session's pipe (copying when no pipe can be made or the
    /// file refuses splicing); closes `tcp` at the end.
    async fn splice_in(
        &mut self,
        tcp: tokio::net::TcpStream,
        file: &std::fs::File,
        progress: &mut Progress<'_>,
        len: u64,
    ) -> Result<u64> {
        if self.pipe.is_none() {
            self.pipe = splice::Pipe::new();
        }
        let timeout = self.timeout;
        let spliced = match &self.pipe {
            Some(pipe) => splice::receive(&tcp, pipe, file, timeout, len, progress).await,
            None => Ok(splice::Received::Unsupported(0)),
        };
        match spliced {
            Ok(splice::Received::Done(n)) => Ok(n),
            Ok(splice::Received::Unsupported(n)) => {
                let mut conn: Box<dyn Stream> = Box::new(tcp);
                let mut out = FileWriter(file);
                let rest = data::copy_in(&mut conn, &mut out, timeout, progress, len - n, false).await?;
                Ok(n + rest)
            }
            Err(e) => {
                // The pipe may still hold bytes of this transfer.
                self.pipe = None;
                Err(e)
            }
        }
    }

    /// Uploads `input` to `path` (appending with `APPE` when `append`); returns the bytes sent.
    ///
    /// # Errors
    ///
    /// Refusals, timeouts, I/O errors on either side.
    pub async fn put(
        &mut self,
        path: &str,
        append: bool,
        input: &mut (dyn tokio::io::AsyncRead + Unpin + Send),
        progress: &mut Progress<'_>,
    ) -> Result<u64> {
        check_arg(path)?;
        if self.ascii && append {
            return Err(Error::Usage(
                "resuming is not possible in ASCII mode (byte offsets differ from the server's); use binary mode"
                    .into(),
            ));
        }
        let verb = if append { "APPE" } else { "STOR" };
        let mut conn = self.transfer(verb, path).await?;
        let sent = data::copy_out(input, &mut conn, self.timeout, progress, self.ascii).await;
        let closed = data::finish_upload(&mut conn, self.timeout).await;
        drop(conn);
        let end = self.control.reply().await?;
        let n = sent?;
        closed?;
        expect_done(&end, verb, path)?;
        Ok(n)
    }

    /// Lists directory `path` (MLSD when the server offers it, else LIST).
    ///
    /// # Errors
    ///
    /// Refusals (a missing directory is [`Error::NotFound`]), oversized listings, timeouts.
    pub async fn list(&mut self, path: &str) -> Result<Vec<Entry>> {
        check_arg(path)?;
        let mlsd = self.features.mlst;
        let (verb, arg) = if mlsd {
            ("MLSD", path.to_owned())
        } else if path.starts_with('-') {
            // A leading '-' would be taken for LIST flags.
            ("LIST", format!("./{path}"))
        } else {
            ("LIST", path.to_owned())
        };
        let mut conn = self.transfer(verb, &arg).await?;
        let lines = data::read_lines(&mut conn, self.timeout).await;
        drop(conn);
        let end = self.control.reply().await?;
        let lines = lines?;
        expect_done(&end, verb, path)?;
        let now = SystemTime::now();
        Ok(lines
            .iter()
            .filter_map(|l| {
                if mlsd {
                    ferry_proto::listing_parser::parse_mlsd_line(l)
                } else {
                    ferry_proto::listing_parser::parse_list_line(l, now)
                }
            })
            .map(Entry::from)
            .collect())
    }

    /// What `path` is: `MLST` when offered, else `SIZE`/`MDTM`, else a `CWD` probe for directories.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when it does not exist; timeouts and connection errors.
    pub async fn stat(&mut self, path: &str) -> Result<Entry> {
        check_arg(path)?;
        if self.features.mlst {
            let r = self.cmd("MLST", Some(path)).await?;
            if r.code() == ReplyCode::FILE_ACTION_OK {
                let entry = r
                    .lines()
                    .iter()
                    .filter_map(|l| l.strip_prefix(b" "))
                    .find_map(ferry_proto::listing_parser::parse_mlsd_line);
                if let Some(mut e) = entry.map(Entry::from) {
                    let name = crate::names::remote_basename(path).unwrap_or(path);
                    e.name = name.to_owned();
                    e.raw_name = name.as_bytes().to_vec();
                    return Ok(e);
                }
            } else {
                return Err(refusal(&r, "MLST", path));
            }
        }
        self.stat_without_mlst(path).await
    }

    async fn stat_without_mlst(&mut self, path: &str) -> Result<Entry> {
        let name = crate::names::remote_basename(path).unwrap_or(path).to_owned();
        let size = self.cmd("SIZE", Some(path)).await?;
        if size.code() == ReplyCode::FILE_STATUS {
            let bytes = size.text().trim().parse::<u64>().ok();
            let mdtm = self.cmd("MDTM", Some(path)).await?;
            let modified = (mdtm.code() == ReplyCode::FILE_STATUS)
                .then(|| ferry_proto::listing::parse_mdtm(mdtm.text().trim()))
                .flatten();
            return Ok(Entry::new(name.into_bytes(), EntryKind::File, bytes, modified));
        }
        let cwd = self.cmd("CWD", Some(path)).await?;
        if cwd.code() == ReplyCode::FILE_ACTION_OK {
            if let Some(home) = self.home.clone() {
                let _ = self.cmd("CWD", Some(&home)).await?;
            }
            return Ok(Entry::new(name.into_bytes(), EntryKind::Dir, None, None));
        }
        Err(refusal(&size, "SIZE", path))
    }

    /// Deletes file `path` (`DELE`).
    ///
    /// # Errors
    ///
    /// The server's refusal.
    pub async fn remove(&mut self, path: &str) -> Result<()> {
        self.simple("DELE", path, &[ReplyCode::FILE_ACTION_OK]).await
    }

    /// Creates directory `path` (`MKD`).
    ///
    /// # Errors
    ///
    /// The server's refusal.
    pub async fn mkdir(&mut self, path: &str) -> Result<()> {
        self.simple("MKD", path, &[ReplyCode::PATH_CREATED, ReplyCode::FILE_ACTION_OK])
            .await
    }

    /// Removes empty directory `path` (`RMD`).
    ///
    /// # Errors
    ///
    /// The server's refusal.
    pub async fn rmdir(&mut self, path: &str) -> Result<()> {
        self.simple("RMD", path, &[ReplyCode::FILE_ACTION_OK]).await
    }

    /// Renames `from` to `to` (`RNFR`/`RNTO`).
    ///
    /// # Errors
    ///
    /// The server's refusal.
    pub async fn rename(&mut self, from: &str, to: &str) -> Result<()> {
        check_arg(to)?;
        self.simple("RNFR", from, &[ReplyCode::FILE_ACTION_PENDING])
            .await?;
        self.simple("RNTO", to, &[ReplyCode::FILE_ACTION_OK]).await
    }

    /// Sets the modification time of `path` with `MFMT` when the server offers it; `Ok(false)` otherwise.
    ///
    /// # Errors
    ///
    /// Connection errors (a refusal is `Ok(false)`).
    pub async fn set_modified(&mut self, path: &str, t: SystemTime) -> Result<bool> {
        check_arg(path)?;
        if !self.features.mfmt {
            return Ok(false);
        }
        let arg = format!("{} {path}", ferry_proto::listing::format_mdtm(t));
        let r = self.cmd("MFMT", Some(&arg)).await?;
        Ok(r.code() == ReplyCode::FILE_STATUS)
    }

    /// Whether the server announced `REST STREAM` in FEAT: a download can start at an offset (resume,
    /// the segments of a segmented download).
    pub fn has_restart(&self) -> bool {
        self.features.rest_stream
    }

    /// Whether the server offers checksums (`HASH` in FEAT, or one of the `X…` verbs).
    pub fn has_checksums(&self) -> bool {
        !self.features.hash.is_empty() || !self.features.xhash.is_empty()
    }

    /// The server's checksum of `path`: `HASH` (SHA-256 preferred, selected with `OPTS HASH`) when FEAT
    /// offers it, else `XSHA256`/`XSHA1`/`XMD5`/`XCRC`. `Ok(None)` when the server offers none or declines
    /// for this file (too large, disabled).
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`], connection errors and timeouts.
    pub async fn checksum(&mut self, path: &str) -> Result<Option<Checksum>> {
        check_arg(path)?;
        if !self.features.hash.is_empty() {
            let Some(algorithm) = self.hash_algorithm().await? else {
                return Ok(None);
            };
            let r = self.cmd("HASH", Some(path)).await?;
            return hash_reply(&r, algorithm, path);
        }
        let Some(algorithm) = PREFERENCE.into_iter().find(|a| self.features.xhash.contains(a)) else {
            return Ok(None);
        };
        let verb = xhash_verb(algorithm);
        let r = self.cmd(verb, Some(path)).await?;
        if !(200..300).contains(&r.code().0) {
            return declined(&r, verb, path);
        }
        Ok(ferry_proto::hash::parse_xhash_reply(algorithm, &r.text())
            .map(|digest| Checksum { algorithm, digest }))
    }

    /// The algorithm `HASH` answers with: the preferred one the server offers, selected with `OPTS HASH`
    /// first when it is not already. `None` when the server offers no `HASH` or refuses the selection.
    async fn hash_algorithm(&mut self) -> Result<Option<Algorithm>> {
        let Some(algorithm) = PREFERENCE.into_iter().find(|a| self.features.hash.contains(a)) else {
            return Ok(None);
        };
        if self.features.hash_selected != Some(algorithm) {
            let r = self
                .cmd("OPTS", Some(&format!("HASH {}", algorithm.ftp_name())))
                .await?;
            if r.code() != ReplyCode::COMMAND_OK {
                return Ok(None);
            }
            self.features.hash_selected = Some(algorithm);
        }
        Ok(Some(algorithm))
    }

    /// `MFMT` and then the checksum of `path` ([`FtpClient::checksum`]) in one round trip: when the
    /// server offers `MFMT` and `HASH` with the preferred algorithm already selected, both commands go
    /// out in one write and their replies are read in order (a mirror's upload saves a round trip per
    /// file); otherwise one after the other. Returns whether the time was set, and the checksum's result
    /// (its own errors, such as a file the server no longer shows, do not hide the time's).
    ///
    /// # Errors
    ///
    /// Connection errors and timeouts.
    pub async fn set_modified_and_checksum(
        &mut self,
        path: &str,
        t: SystemTime,
    ) -> Result<(bool, Result<Option<Checksum>>)> {
        check_arg(path)?;
        let algorithm = PREFERENCE.into_iter().find(|a| self.features.hash.contains(a));
        let pipelined = match algorithm {
            Some(a) if self.features.mfmt && self.features.hash_selected == Some(a) => a,
            _ => {
                let set = self.set_modified(path, t).await?;
                return Ok((set, self.checksum(path).await));
            }
        };
        let mfmt = format!("{} {path}", ferry_proto::listing::format_mdtm(t));
        self.control
            .send_all(&[("MFMT", Some(mfmt.as_str())), ("HASH", Some(path))])
            .await?;
        let set = self.control.reply().await?.code() == ReplyCode::FILE_STATUS;
        let r = self.control.reply().await?;
        Ok((set, hash_reply(&r, pipelined, path)))
    }

    /// Says goodbye (`QUIT`), ignoring the answer.
    pub async fn quit(mut self) {
        let _ = self.cmd("QUIT", None).await;
    }

    async fn simple(&mut self, verb: &str, path: &str, ok: &[ReplyCode]) -> Result<()> {
        let r = self.cmd(verb, Some(path)).await?;
        expect(&r, ok, verb, path).map(|_| ())
    }

    async fn cmd(&mut self, verb: &str, arg: Option<&str>) -> Result<Reply> {
        self.control.send(verb, arg).await?;
        self.control.reply().await
    }

    async fn greeting(&mut self) -> Result<()> {
        let mut r = self.control.reply().await?;
        if r.code() == ReplyCode::SERVICE_READY_SOON {
            r = self.control.reply().await?;
        }
        expect(&r, &[ReplyCode::SERVICE_READY], "the greeting", "").map(|_| ())
    }

    async fn auth_tls(&mut self) -> Result<()> {
        let r = self.cmd("AUTH", Some("TLS")).await?;
        if r.code() != ReplyCode::AUTH_OK {
            return Err(Error::Refused {
                what: "AUTH TLS (ftpes:// requires TLS; use ftp:// only for servers without it)".into(),
                reply: describe(&r),
            });
        }
        let ctx = self
            .tls
            .clone()
            .ok_or_else(|| Error::Tls("no TLS context".into()))?;
        self.control.upgrade(&ctx).await
    }

    async fn login(&mut self, user: &str, password: &Secret) -> Result<()> {
        let r = self.cmd("USER", Some(user)).await?;
        let r = if r.code() == ReplyCode::NEED_PASSWORD {
            self.control.send_secret("PASS", password).await?;
            self.control.reply().await?
        } else {
            r
        };
        match r.code() {
            ReplyCode::LOGGED_IN | ReplyCode::SUPERFLUOUS => Ok(()),
            c if c.0 >= 400 && c.0 < 500 && c != ReplyCode(430) => Err(transient(&r, "login", user)),
            _ => Err(Error::Auth(format!("the server answered {}", describe(&r)))),
        }
    }

    async fn setup(&mut self) -> Result<()> {
        if self.tls.is_some() {
            let r = self.cmd("PBSZ", Some("0")).await?;
            expect(&r, &[ReplyCode::COMMAND_OK], "PBSZ 0", "")?;
            let r = self.cmd("PROT", Some("P")).await?;
            expect(
                &r,
                &[ReplyCode::COMMAND_OK],
                "PROT P (protected data connections)",
                "",
            )?;
        }
        let feat = self.cmd("FEAT", None).await?;
        if feat.code() == ReplyCode::SYSTEM_STATUS {
            for line in feat.lines() {
                let upper = String::from_utf8_lossy(line).trim().to_ascii_uppercase();
                let word = upper.split(' ').next().unwrap_or_default();
                match word {
                    "MLST" => self.features.mlst = true,
                    "MFMT" => self.features.mfmt = true,
                    "UTF8" => self.features.utf8 = true,
                    "REST" => self.features.rest_stream |= upper.split(' ').nth(1) == Some("STREAM"),
                    "HASH" => {
                        let list = upper.trim_start_matches("HASH").trim();
                        for name in list.split(';').filter(|n| !n.is_empty()).take(16) {
                            let selected = name.ends_with('*');
                            if let Some(a) = Algorithm::from_ftp_name(name.trim_end_matches('*')) {
                                self.features.hash.push(a);
                                if selected {
                                    self.features.hash_selected = Some(a);
                                }
                            }
                        }
                    }
                    "XSHA256" | "XSHA1" | "XMD5" | "XCRC" => {
                        let a = PREFERENCE.into_iter().find(|a| xhash_verb(*a) == word);
                        self.features.xhash.extend(a);
                    }
                    _ => {}
                }
            }
        }
        self.pipelined_setup().await
    }

    /// The rest of the set-up in one write, replies read in order: `OPTS UTF8 ON` (when offered),
    /// `TYPE I`, `PWD` and `OPTS HASH` for the preferred algorithm (when offered and not already
    /// selected, so that the first checksum of this connection costs no extra round trip). One round
    /// trip instead of up to four for every connection, which matters on a long path.
    async fn pipelined_setup(&mut self) -> Result<()> {
        let hash = PREFERENCE
            .into_iter()
            .find(|a| self.features.hash.contains(a))
            .filter(|a| self.features.hash_selected != Some(*a));
        let hash_arg = hash.map(|a| format!("HASH {}", a.ftp_name()));
        let mut commands = Vec::with_capacity(4);
        if self.features.utf8 {
            commands.push(("OPTS", Some("UTF8 ON")));
        }
        commands.push(("TYPE", Some("I")));
        commands.push(("PWD", None));
        if let Some(arg) = &hash_arg {
            commands.push(("OPTS", Some(arg.as_str())));
        }
        self.control.send_all(&commands).await?;
        if self.features.utf8 {
            let _ = self.control.reply().await?;
        }
        let type_reply = self.control.reply().await?;
        let pwd = self.control.reply().await?;
        if let Some(a) = hash {
            if self.control.reply().await?.code() == ReplyCode::COMMAND_OK {
                self.features.hash_selected = Some(a);
            }
        }
        expect(&type_reply, &[ReplyCode::COMMAND_OK], "TYPE I", "")?;
        if pwd.code() == ReplyCode::PATH_CREATED {
            self.home = quoted_path(&pwd.text());
        }
        Ok(())
    }

    /// Opens a data connection (passive, or active when asked), sends `verb path`, and waits for
    /// `150`/`125`.
    async fn transfer(&mut self, verb: &str, path: &str) -> Result<Box<dyn Stream>> {
        let (conn, _) = self.transfer_with(false, verb, path).await?;
        Ok(conn.boxed())
    }

    /// [`FtpClient::transfer`], with `HASH path` sent in the same write as `verb path` when
    /// `hash_first` (its reply, read before the transfer's, is returned).
    async fn transfer_with(
        &mut self,
        hash_first: bool,
        verb: &str,
        path: &str,
    ) -> Result<(Data, Option<Reply>)> {
        let (tcp, hashed) = if self.active {
            self.active_transfer(hash_first, verb, path).await?
        } else {
            let tcp = self.passive().await?;
            let hashed = self.send_transfer(hash_first, verb, path).await?;
            let r = self.control.reply().await?;
            if !matches!(r.code(), ReplyCode::FILE_STATUS_OK | ReplyCode::DATA_ALREADY_OPEN) {
                return Err(refusal(&r, verb, path));
            }
            (tcp, hashed)
        };
        let conn = match &self.tls {
            Some(ctx) => Data::Tls(Box::new(data::tls_connect(ctx, tcp, self.timeout).await?)),
            None => Data::Plain(tcp),
        };
        Ok((conn, hashed))
    }

    /// Sends `verb path`, after `HASH path` in the same write when `hash_first`, and reads the `HASH`
    /// reply.
    async fn send_transfer(&mut self, hash_first: bool, verb: &str, path: &str) -> Result<Option<Reply>> {
        if !hash_first {
            self.control.send(verb, Some(path)).await?;
            return Ok(None);
        }
        self.control
            .send_all(&[("HASH", Some(path)), (verb, Some(path))])
            .await?;
        Ok(Some(self.control.reply().await?))
    }

    /// Active mode: listens on the control connection's local address, announces it (`EPRT`, else
    /// `PORT`), sends `verb path` (after `HASH path` when `hash_first`) and accepts the server's
    /// connection, from its control address only.
    async fn active_transfer(
        &mut self,
        hash_first: bool,
        verb: &str,
        path: &str,
    ) -> Result<(tokio::net::TcpStream, Option<Reply>)> {
        let listener = tokio::net::TcpListener::bind(SocketAddr::new(self.local.ip(), 0))
            .await
            .map_err(|e| Error::io("listening for the active data connection", e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::io("listening for the active data connection", e))?;
        self.announce_active(addr).await?;
        let (peer, timeout) = (self.peer.ip(), self.timeout);
        // Accepted while the replies are read: some servers connect before they send 150.
        let accept = tokio::spawn(tokio::time::timeout(timeout, accept_from(listener, peer)));
        let replies = async {
            let hashed = self.send_transfer(hash_first, verb, path).await?;
            Ok::<_, Error>((hashed, self.control.reply().await?))
        };
        let (hashed, r) = match replies.await {
            Ok(r) => r,
            Err(e) => {
                accept.abort();
                return Err(e);
            }
        };
        if !matches!(r.code(), ReplyCode::FILE_STATUS_OK | ReplyCode::DATA_ALREADY_OPEN) {
            accept.abort();
            return Err(refusal(&r, verb, path));
        }
        match accept.await {
            Ok(Ok(conn)) => conn.map(|c| (c, hashed)),
            Ok(Err(_)) => Err(Error::Timeout {
                what: format!("the server's active data connection to {addr}"),
                secs: timeout.as_secs(),
            }),
            Err(e) => Err(Error::io(
                "accepting the active data connection",
                std::io::Error::other(e),
            )),
        }
    }

    /// `EPRT` with our listening address; `PORT` for IPv4 when the server does not know `EPRT`.
    async fn announce_active(&mut self, addr: SocketAddr) -> Result<()> {
        if !self.eprt_refused {
            let r = self
                .cmd("EPRT", Some(&ferry_proto::addr::format_eprt_arg(addr)))
                .await?;
            if r.code() == ReplyCode::COMMAND_OK {
                return Ok(());
            }
            if !matches!(r.code().0, 500 | 502) {
                return Err(refusal(&r, "EPRT", ""));
            }
            self.eprt_refused = true;
        }
        let SocketAddr::V4(v4) = addr else {
            return Err(Error::Refused {
                what: "EPRT".into(),
                reply: "the server does not know EPRT, and PORT cannot carry an IPv6 address".into(),
            });
        };
        let r = self
            .cmd("PORT", Some(&ferry_proto::addr::format_port_arg(v4)))
            .await?;
        expect(&r, &[ReplyCode::COMMAND_OK], "PORT", "").map(|_| ())
    }

    /// EPSV, else PASV; connects to the control peer's address at the port the server names.
    async fn passive(&mut self) -> Result<tokio::net::TcpStream> {
        if !self.epsv_refused {
            let r = self.cmd("EPSV", None).await?;
            if r.code() == ReplyCode::EXTENDED_PASSIVE_MODE {
                let port = ferry_proto::addr::parse_epsv_reply(&r.text())
                    .map_err(|_| Error::Protocol(format!("unreadable EPSV reply: {}", describe(&r))))?;
                return self.connect_data(port).await;
            }
            if r.code().0 < 500 {
                return Err(refusal(&r, "EPSV", ""));
            }
            self.epsv_refused = true;
        }
        let r = self.cmd("PASV", None).await?;
        if r.code() != ReplyCode::PASSIVE_MODE {
            return Err(refusal(&r, "PASV", ""));
        }
        let announced = ferry_proto::addr::parse_pasv_reply(&r.text())
            .map_err(|_| Error::Protocol(format!("unreadable PASV reply: {}", describe(&r))))?;
        // The announced address is ignored (NAT, or a server pointing the client elsewhere); only the
        // port is used, with the control connection's peer.
        self.connect_data(announced.port()).await
    }

    async fn connect_data(&self, port: u16) -> Result<tokio::net::TcpStream> {
        let addr = SocketAddr::new(self.peer.ip(), port);
        let tcp = tokio::time::timeout(self.timeout, tokio::net::TcpStream::connect(addr))
            .await
            .map_err(|_| Error::Timeout {
                what: format!("the data connection to {addr}"),
                secs: self.timeout.as_secs(),
            })?
            .map_err(|e| Error::io(format!("opening the data connection to {addr}"), e))?;
        let _ = tcp.set_nodelay(true);
        Ok(tcp)
    }
}

/// Accepts the first connection from `peer` (the server's control address); others are closed at once.
async fn accept_from(
    listener: tokio::net::TcpListener,
    peer: std::net::IpAddr,
) -> Result<tokio::net::TcpStream> {
    let canonical = |ip: std::net::IpAddr| match ip {
        std::net::IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map_or(std::net::IpAddr::V6(v6), std::net::IpAddr::V4),
        v4 => v4,
    };
    loop {
        let (conn, from) = listener
            .accept()
            .await
            .map_err(|e| Error::io("accepting the active data connection", e))?;
        if canonical(from.ip()) == canonical(peer) {
            let _ = conn.set_nodelay(true);
            return Ok(conn);
        }
        drop(conn);
    }
}

/// The checksum in a `HASH` reply for `algorithm`. A reply in another form than the draft's is no
/// checksum (servers differ), not an error.
fn hash_reply(r: &Reply, algorithm: Algorithm, path: &str) -> Result<Option<Checksum>> {
    match r.code() {
        ReplyCode::FILE_STATUS => Ok(ferry_proto::hash::parse_hash_reply(&r.text())
            .filter(|h| h.algorithm == algorithm && h.start == 0)
            .map(|h| Checksum {
                algorithm,
                digest: h.digest,
            })),
        _ => declined(r, "HASH", path),
    }
}

/// The legacy verb of an algorithm.
fn xhash_verb(a: Algorithm) -> &'static str {
    match a {
        Algorithm::Sha256 => "XSHA256",
        Algorithm::Sha1 => "XSHA1",
        Algorithm::Md5 => "XMD5",
        Algorithm::Crc32 => "XCRC",
    }
}

/// A checksum request the server did not answer: a missing file is an error, anything else (too large,
/// disabled, not a file) is no checksum.
fn declined(r: &Reply, verb: &str, path: &str) -> Result<Option<Checksum>> {
    match refusal(r, verb, path) {
        e @ (Error::NotFound(_) | Error::Transient { .. }) => Err(e),
        _ => Ok(None),
    }
}

/// `"` quoted path of a 257 reply, with doubled quotes undone.
fn quoted_path(text: &str) -> Option<String> {
    let start = text.find('"')? + 1;
    let mut out = String::new();
    let mut chars = text.get(start..)?.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '"' {
            if chars.peek() == Some(&'"') {
                chars.next();
                out.push('"');
            } else {
                return Some(out);
            }
        } else {
            out.push(c);
        }
    }
    None
}

/// `code text`, bounded for messages.
fn describe(r: &Reply) -> String {
    let mut text = r.text();
    if text.len() > 300 {
        let mut cut = 300;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    format!("{} {}", r.code(), text.escape_debug())
}

fn expect<'r>(r: &'r Reply, ok: &[ReplyCode], verb: &str, path: &str) -> Result<&'r Reply> {
    if ok.contains(&r.code()) {
        Ok(r)
    } else {
        Err(refusal(r, verb, path))
    }
}

fn expect_done(r: &Reply, verb: &str, path: &str) -> Result<()> {
    expect(
        r,
        &[ReplyCode::CLOSING_DATA, ReplyCode::FILE_ACTION_OK],
        verb,
        path,
    )
    .map(|_| ())
}

fn transient(r: &Reply, verb: &str, path: &str) -> Error {
    Error::Transient {
        what: what(verb, path),
        reply: describe(r),
    }
}

/// The error for an unexpected reply: 4xx transient, 550 for a missing file not found, else refused.
fn refusal(r: &Reply, verb: &str, path: &str) -> Error {
    let code = r.code().0;
    if (400..500).contains(&code) {
        return transient(r, verb, path);
    }
    let lower = r.text().to_ascii_lowercase();
    let missing = [
        "no such",
        "not found",
        "not exist",
        "doesn't exist",
        "does not exist",
        "cannot find",
    ];
    if code == 550 && missing.iter().any(|m| lower.contains(m)) {
        return Error::NotFound(format!("{path} ({})", describe(r)));
    }
    if (100..400).contains(&code) {
        return Error::Protocol(format!(
            "unexpected reply to {}: {}",
            what(verb, path),
            describe(r)
        ));
    }
    Error::Refused {
        what: what(verb, path),
        reply: describe(r),
    }
}

fn what(verb: &str, path: &str) -> String {
    if path.is_empty() {
        verb.to_owned()
    } else {
        format!("{verb} {path}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pwd_reply_path_with_doubled_quotes() {
        assert_eq!(
            quoted_path(r#""/a ""b""" is the current directory"#).as_deref(),
            Some(r#"/a "b""#)
        );
        assert_eq!(quoted_path("no quotes"), None);
    }

    #[test]
    fn replies_map_to_errors_by_fault() {
        let r = Reply::new(ReplyCode(550), "No such file or directory".as_bytes().to_vec());
        assert!(matches!(refusal(&r, "RETR", "/x"), Error::NotFound(_)));
        let r = Reply::new(ReplyCode(421), "Too many connections".as_bytes().to_vec());
        assert!(refusal(&r, "RETR", "/x").is_retryable());
        let r = Reply::new(ReplyCode(553), "denied".as_bytes().to_vec());
        assert!(matches!(refusal(&r, "STOR", "/x"), Error::Refused { .. }));
    }
}
