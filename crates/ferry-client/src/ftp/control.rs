//! The control connection: bounded line reading, reply assembly, commands that cannot be split.

use std::time::Duration;

use ferry_proto::reply::Reply;
use ferry_proto::reply_parser::ReplyParser;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::error::{Error, Result};
use crate::limits::MAX_CONTROL_LINE;
use crate::names::check_arg;
use crate::secret::Secret;
use crate::trust::tls::TlsContext;

/// A byte stream: TCP or TLS over TCP.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send + Sync {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Sync> Stream for T {}

/// The control connection of one session.
pub(crate) struct Control {
    stream: Option<BufReader<Box<dyn Stream>>>,
    parser: ReplyParser,
    timeout: Duration,
}

impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Control").finish_non_exhaustive()
    }
}

/// Connects to the first address of `host` that answers within `timeout`.
pub(crate) async fn connect_tcp(host: &str, port: u16, timeout: Duration) -> Result<TcpStream> {
    let shown = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let connect = async {
        let addrs = tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| Error::io(format!("resolving {host}"), e))?;
        let mut last = None;
        for addr in addrs {
            match TcpStream::connect(addr).await {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    return Ok(s);
                }
                Err(e) => last = Some(e),
            }
        }
        Err(Error::io(
            format!("connecting to {shown}"),
            last.unwrap_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no address found")),
        ))
    };
    tokio::time::timeout(timeout, connect)
        .await
        .map_err(|_| Error::Timeout {
            what: format!("connecting to {shown}"),
            secs: timeout.as_secs(),
        })?
}

impl Control {
    pub(crate) fn new(stream: Box<dyn Stream>, timeout: Duration) -> Control {
        Control {
            stream: Some(BufReader::new(stream)),
            parser: ReplyParser::new(),
            timeout,
        }
    }

    /// Sends `VERB[ arg]`; refuses an argument with CR, LF or NUL before anything is written.
    pub(crate) async fn send(&mut self, verb: &str, arg: Option<&str>) -> Result<()> {
        let mut line = verb.to_owned();
        if let Some(arg) = arg {
            check_arg(arg)?;
            line.push(' ');
            line.push_str(arg);
        }
        line.push_str("\r\n");
        self.write(line.as_bytes(), verb).await
    }

    /// Sends several commands in one write (pipelined); the caller reads their replies in order. Each
    /// argument is checked as in [`Control::send`] before anything is written.
    pub(crate) async fn send_all(&mut self, commands: &[(&str, Option<&str>)]) -> Result<()> {
        let mut lines = String::new();
        for (verb, arg) in commands {
            lines.push_str(verb);
            if let Some(arg) = arg {
                check_arg(arg)?;
                lines.push(' ');
                lines.push_str(arg);
            }
            lines.push_str("\r\n");
        }
        let verbs = commands.iter().map(|(v, _)| *v).collect::<Vec<_>>().join(" + ");
        self.write(lines.as_bytes(), &verbs).await
    }

    /// Sends `VERB secret` without the secret ever appearing in an error.
    pub(crate) async fn send_secret(&mut self, verb: &str, secret: &Secret) -> Result<()> {
        check_arg(secret.expose()).map_err(|_| Error::Usage("the password contains CR, LF or NUL".into()))?;
        let line = format!("{verb} {}\r\n", secret.expose());
        self.write(line.as_bytes(), verb).await
    }

    async fn write(&mut self, bytes: &[u8], verb: &str) -> Result<()> {
        let stream = self.stream.as_mut().ok_or_else(closed)?.get_mut();
        let write = async {
            stream.write_all(bytes).await?;
            stream.flush().await
        };
        tokio::time::timeout(self.timeout, write)
            .await
            .map_err(|_| Error::Timeout {
                what: format!("sending {verb}"),
                secs: self.timeout.as_secs(),
            })?
            .map_err(|e| Error::io(format!("sending {verb}"), e))
    }

    /// Reads one complete reply (single- or multi-line).
    pub(crate) async fn reply(&mut self) -> Result<Reply> {
        let timeout = self.timeout;
        tokio::time::timeout(timeout, self.reply_untimed())
            .await
            .map_err(|_| Error::Timeout {
                what: "the server's reply".into(),
                secs: timeout.as_secs(),
            })?
    }

    async fn reply_untimed(&mut self) -> Result<Reply> {
        loop {
            let line = self.line().await?;
            match self.parser.push_line(&line) {
                Ok(Some(reply)) => return Ok(reply),
                Ok(None) => {}
                Err(e) => {
                    let shown = String::from_utf8_lossy(&line)
                        .chars()
                        .take(100)
                        .collect::<String>();
                    return Err(Error::Protocol(format!("{e}: {}", shown.escape_debug())));
                }
            }
        }
    }

    /// One line without CR LF, at most [`MAX_CONTROL_LINE`] bytes.
    async fn line(&mut self) -> Result<Vec<u8>> {
        let stream = self.stream.as_mut().ok_or_else(closed)?;
        let mut line = Vec::new();
        loop {
            let buf = stream
                .fill_buf()
                .await
                .map_err(|e| Error::io("reading the server's reply", e))?;
            if buf.is_empty() {
                return Err(Error::io(
                    "reading the server's reply",
                    std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "the server closed the connection",
                    ),
                ));
            }
            let (take, done) = match buf.iter().position(|&b| b == b'\n') {
                Some(i) => (i + 1, true),
                None => (buf.len(), false),
            };
            if line.len() + take > MAX_CONTROL_LINE + 2 {
                return Err(Error::Protocol(format!(
                    "a reply line is longer than {MAX_CONTROL_LINE} bytes"
                )));
            }
            line.extend_from_slice(buf.get(..take).unwrap_or_default());
            stream.consume(take);
            if done {
                while matches!(line.last(), Some(b'\n' | b'\r')) {
                    line.pop();
                }
                return Ok(line);
            }
        }
    }

    /// Upgrades the connection to TLS after `234` (explicit FTPS). Bytes the server sent after its `234`
    /// in cleartext would be an injection attempt: refused.
    pub(crate) async fn upgrade(&mut self, ctx: &TlsContext) -> Result<()> {
        let reader = self.stream.take().ok_or_else(closed)?;
        if !reader.buffer().is_empty() {
            return Err(Error::Protocol(
                "the server sent cleartext after accepting AUTH TLS".into(),
            ));
        }
        let inner = reader.into_inner();
        let tls = super::data::tls_connect(ctx, inner, self.timeout).await?;
        self.stream = Some(BufReader::new(Box::new(tls)));
        Ok(())
    }
}

fn closed() -> Error {
    Error::io(
        "using the control connection",
        std::io::Error::new(std::io::ErrorKind::NotConnected, "the connection is closed"),
    )
}
