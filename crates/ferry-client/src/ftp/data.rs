//! Data connections: TLS set-up with session resumption, bounded copying with stall timeouts, listings.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::Stream;
use crate::error::{Error, Result};
use crate::limits::{MAX_LISTING_ENTRIES, MAX_LISTING_LINE};
use crate::remote::Progress;
use crate::trust::tls::TlsContext;

/// Largest copy buffer.
const BUF: usize = 256 * 1024;

/// First copy buffer: a transfer starts small and doubles its buffer each time a read fills it, up
/// to [`BUF`]. A fresh zeroed 256 KiB buffer per file was the largest user-space cost of mirroring
/// many small files (`perf`: memset, and glibc serving allocations that large with mmap/munmap).
const FIRST_BUF: usize = 16 * 1024;

/// Doubles `buf` (up to [`BUF`]) when the last read or write used all of it.
fn grow(buf: &mut Vec<u8>, used: usize) {
    if used == buf.len() && buf.len() < BUF {
        buf.resize((buf.len() * 2).min(BUF), 0);
    }
}

/// TLS handshake over `io` with `ctx` (its session cache makes data connections resume the control
/// connection's session).
pub(crate) async fn tls_connect<S>(
    ctx: &TlsContext,
    io: S,
    timeout: Duration,
) -> Result<tokio_rustls::client::TlsStream<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let connector = tokio_rustls::TlsConnector::from(ctx.config.clone());
    let handshake = connector.connect(ctx.server_name.clone(), io);
    match tokio::time::timeout(timeout, handshake).await {
        Err(_) => Err(Error::Timeout {
            what: "the TLS handshake".into(),
            secs: timeout.as_secs(),
        }),
        Ok(Err(e)) => Err(ctx.handshake_error("handshake", e)),
        Ok(Ok(s)) => Ok(s),
    }
}

fn stalled(timeout: Duration) -> Error {
    Error::Timeout {
        what: "the data connection (stalled)".into(),
        secs: timeout.as_secs(),
    }
}

/// Reads `conn` to its end into `out`. A TLS peer that closes without close_notify is accepted here: the
/// transfer's final reply decides success.
pub(crate) async fn copy_in(
    conn: &mut Box<dyn Stream>,
    out: &mut (dyn AsyncWrite + Unpin + Send),
    timeout: Duration,
    progress: &mut Progress<'_>,
    limit: u64,
    ascii: bool,
) -> Result<u64> {
    let mut buf = vec![0u8; FIRST_BUF];
    let mut total = 0u64;
    let mut text = ascii.then(|| (ferry_proto::ascii::FromNetwork::new(), Vec::new()));
    while total < limit {
        let want = usize::try_from(limit - total).unwrap_or(BUF).min(buf.len());
        let n = match tokio::time::timeout(timeout, conn.read(&mut buf[..want])).await {
            Err(_) => return Err(stalled(timeout)),
            Ok(Ok(n)) => n,
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => 0,
            Ok(Err(e)) => return Err(Error::io("receiving data", e)),
        };
        if n == 0 {
            break;
        }
        let chunk = buf.get(..n).unwrap_or_default();
        let chunk = match &mut text {
            Some((conv, converted)) => {
                converted.clear();
                conv.convert(chunk, converted);
                &converted[..]
            }
            None => chunk,
        };
        out.write_all(chunk)
            .await
            .map_err(|e| Error::local("writing the local file", e))?;
        total += n as u64;
        progress(n as u64);
        grow(&mut buf, n);
    }
    if let Some((mut conv, mut rest)) = text {
        rest.clear();
        conv.finish(&mut rest);
        out.write_all(&rest)
            .await
            .map_err(|e| Error::local("writing the local file", e))?;
    }
    out.flush()
        .await
        .map_err(|e| Error::local("writing the local file", e))?;
    Ok(total)
}

/// Copies `input` to `conn`.
pub(crate) async fn copy_out(
    input: &mut (dyn AsyncRead + Unpin + Send),
    conn: &mut Box<dyn Stream>,
    timeout: Duration,
    progress: &mut Progress<'_>,
    ascii: bool,
) -> Result<u64> {
    let mut buf = vec![0u8; FIRST_BUF];
    let mut total = 0u64;
    let mut text = ascii.then(|| (ferry_proto::ascii::ToNetwork::new(), Vec::new()));
    loop {
        let n = input
            .read(&mut buf)
            .await
            .map_err(|e| Error::local("reading the local file", e))?;
        if n == 0 {
            return Ok(total);
        }
        let chunk = buf.get(..n).unwrap_or_default();
        let chunk = match &mut text {
            Some((conv, converted)) => {
                converted.clear();
                conv.convert(chunk, converted);
                &converted[..]
            }
            None => chunk,
        };
        match tokio::time::timeout(timeout, conn.write_all(chunk)).await {
            Err(_) => return Err(stalled(timeout)),
            Ok(Err(e)) => return Err(Error::io("sending data", e)),
            Ok(Ok(())) => {}
        }
        total += n as u64;
        progress(n as u64);
        grow(&mut buf, n);
    }
}

/// Ends an upload: close_notify (TLS) and FIN, then waits (bounded) for the server to close its side.
pub(crate) async fn finish_upload(conn: &mut Box<dyn Stream>, timeout: Duration) -> Result<()> {
    match tokio::time::timeout(timeout, conn.shutdown()).await {
        Err(_) => return Err(stalled(timeout)),
        Ok(Err(e)) => return Err(Error::io("closing the data connection", e)),
        Ok(Ok(())) => {}
    }
    let mut sink = [0u8; 512];
    let drain = async {
        loop {
            match conn.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    };
    let _ = tokio::time::timeout(timeout, drain).await;
    Ok(())
}

/// Reads listing lines, each at most [`MAX_LISTING_LINE`] bytes, at most [`MAX_LISTING_ENTRIES`] lines.
pub(crate) async fn read_lines(conn: &mut Box<dyn Stream>, timeout: Duration) -> Result<Vec<Vec<u8>>> {
    let mut lines = Vec::new();
    let mut current = Vec::new();
    let mut buf = vec![0u8; FIRST_BUF];
    loop {
        let n = match tokio::time::timeout(timeout, conn.read(&mut buf)).await {
            Err(_) => return Err(stalled(timeout)),
            Ok(Ok(n)) => n,
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => 0,
            Ok(Err(e)) => return Err(Error::io("receiving the listing", e)),
        };
        if n == 0 {
            break;
        }
        for &b in buf.get(..n).unwrap_or_default() {
            if b == b'\n' {
                if current.last() == Some(&b'\r') {
                    current.pop();
                }
                if !current.is_empty() {
                    if lines.len() >= MAX_LISTING_ENTRIES {
                        return Err(Error::Protocol(format!(
                            "the listing has more than {MAX_LISTING_ENTRIES} entries"
                        )));
                    }
                    lines.push(std::mem::take(&mut current));
                }
            } else if current.len() >= MAX_LISTING_LINE {
                return Err(Error::Protocol(format!(
                    "a listing line is longer than {MAX_LISTING_LINE} bytes"
                )));
            } else {
                current.push(b);
            }
        }
        grow(&mut buf, n);
    }
    if !current.is_empty() {
        lines.push(current);
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::{grow, BUF, FIRST_BUF};

    #[test]
    fn the_copy_buffer_doubles_only_when_filled_and_stops_at_its_limit() {
        let mut buf = vec![0u8; FIRST_BUF];
        grow(&mut buf, FIRST_BUF - 1);
        assert_eq!(buf.len(), FIRST_BUF);
        grow(&mut buf, FIRST_BUF);
        assert_eq!(buf.len(), 2 * FIRST_BUF);
        for _ in 0..10 {
            let full = buf.len();
            grow(&mut buf, full);
        }
        assert_eq!(buf.len(), BUF);
    }
}
