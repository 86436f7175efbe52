//! A raw control connection for exact reply checks.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

/// How long to wait for a reply on the raw control connection.
const REPLY_TIMEOUT: Duration = Duration::from_secs(20);

/// One reply read off the control connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The three-digit code.
    pub code: u16,
    /// Every line as received, without CRLF (including the code prefix).
    pub lines: Vec<Vec<u8>>,
}

impl Reply {
    /// All lines joined with `\n`, lossily decoded.
    pub fn text(&self) -> String {
        self.lines
            .iter()
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The text of the last line after `ddd `.
    pub fn message(&self) -> String {
        let last = self.lines.last().map(Vec::as_slice).unwrap_or_default();
        String::from_utf8_lossy(last.get(4..).unwrap_or_default()).into_owned()
    }
}

/// A control connection over a blocking `TcpStream`, for exact reply checks.
#[derive(Debug)]
pub struct Control {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    /// Source address of the control and data connections, when not the kernel's choice.
    source: Option<IpAddr>,
}

impl Control {
    /// Connects and reads the 220 greeting.
    pub fn connect(addr: SocketAddr) -> Control {
        let stream =
            TcpStream::connect_timeout(&addr, Duration::from_secs(10)).expect("connect to control port");
        Control::over(stream, None)
    }

    /// Connects from `source` (e.g. 127.0.0.2, another loopback address), data connections included, and
    /// reads the 220 greeting.
    pub fn connect_from(source: IpAddr, addr: SocketAddr) -> Control {
        Control::over(tcp_from(source, addr), Some(source))
    }

    fn over(stream: TcpStream, source: Option<IpAddr>) -> Control {
        stream
            .set_read_timeout(Some(REPLY_TIMEOUT))
            .expect("set read timeout");
        stream.set_nodelay(true).expect("nodelay");
        let writer = stream.try_clone().expect("clone stream");
        let mut c = Control {
            reader: BufReader::new(stream),
            writer,
            source,
        };
        let greeting = c.reply();
        assert_eq!(greeting.code, 220, "greeting: {}", greeting.text());
        c
    }

    /// USER + PASS, asserting 331 and 230.
    pub fn login(&mut self, user: &str, password: &str) {
        self.expect(&format!("USER {user}"), 331);
        self.expect(&format!("PASS {password}"), 230);
    }

    /// Sends `line` followed by CRLF.
    pub fn send(&mut self, line: &str) {
        self.send_bytes(line.as_bytes());
    }

    /// Sends raw `bytes` followed by CRLF.
    pub fn send_bytes(&mut self, bytes: &[u8]) {
        let mut buf = bytes.to_vec();
        buf.extend_from_slice(b"\r\n");
        self.send_raw(&buf);
    }

    /// Sends exactly `bytes`.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).expect("write to control connection");
    }

    /// Sends exactly `bytes` as TCP urgent data (MSG_OOB): the urgent mark goes on the last byte.
    pub fn send_out_of_band(&mut self, bytes: &[u8]) {
        socket2::SockRef::from(&self.writer)
            .send_out_of_band(bytes)
            .expect("send urgent data");
    }

    /// Sends ABOR the way RFC 959 §4.1.3 describes and BSD-derived clients do it: IAC IP and IAC in
    /// band, the DM byte as TCP urgent data (MSG_OOB), then the ABOR line.
    pub fn send_urgent_abor(&mut self) {
        self.writer.write_all(b"\xff\xf4\xff").expect("write IAC IP IAC");
        socket2::SockRef::from(&self.writer)
            .send_out_of_band(b"\xf2")
            .expect("send DM as urgent data");
        self.writer.write_all(b"ABOR\r\n").expect("write ABOR");
    }

    /// Sends `line` and reads one reply.
    pub fn cmd(&mut self, line: &str) -> Reply {
        self.send(line);
        self.reply()
    }

    /// Sends `line` and asserts the reply code.
    pub fn expect(&mut self, line: &str, code: u16) -> Reply {
        let r = self.cmd(line);
        assert_eq!(r.code, code, "`{line}` got `{}`, expected {code}", r.text());
        r
    }

    /// Reads one complete (possibly multi-line) reply.
    pub fn reply(&mut self) -> Reply {
        let first = self.line();
        let code = reply_code(&first).unwrap_or_else(|| panic!("malformed reply line {:?}", lossy(&first)));
        let mut lines = vec![first.clone()];
        if first.get(3) == Some(&b'-') {
            let end = format!("{code} ");
            loop {
                let l = self.line();
                let done = l.starts_with(end.as_bytes()) || l == end.trim_end().as_bytes();
                lines.push(l);
                if done {
                    break;
                }
            }
        }
        Reply { code, lines }
    }

    /// Reads one reply and asserts its code.
    pub fn expect_reply(&mut self, code: u16) -> Reply {
        let r = self.reply();
        assert_eq!(r.code, code, "got `{}`, expected {code}", r.text());
        r
    }

    /// Reads exactly `n` raw bytes (e.g. a Telnet negotiation answer).
    pub fn read_exact(&mut self, n: usize) -> Vec<u8> {
        let mut buf = vec![0u8; n];
        self.reader
            .read_exact(&mut buf)
            .expect("read raw bytes from control connection");
        buf
    }

    /// True if no byte arrives within `wait`.
    pub fn quiet_for(&mut self, wait: Duration) -> bool {
        if !self.reader.buffer().is_empty() {
            return false;
        }
        self.reader
            .get_ref()
            .set_read_timeout(Some(wait))
            .expect("set read timeout");
        let quiet = match self.reader.fill_buf() {
            // Data, or EOF: something happened.
            Ok(_) => false,
            Err(e) => matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
        };
        self.reader
            .get_ref()
            .set_read_timeout(Some(REPLY_TIMEOUT))
            .expect("set read timeout");
        quiet
    }

    /// True once the server has closed the connection (reads EOF or reset), within the reply timeout.
    pub fn closed_by_server(&mut self) -> bool {
        let mut rest = Vec::new();
        match self.reader.read_to_end(&mut rest) {
            Ok(_) => true,
            Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
        }
    }

    /// PASV; returns the advertised data address.
    pub fn pasv(&mut self) -> SocketAddr {
        let r = self.expect("PASV", 227);
        parse_pasv(&r.message()).unwrap_or_else(|| panic!("unparsable 227 reply {:?}", r.text()))
    }

    /// EPSV; returns the data address (the control peer with the advertised port).
    pub fn epsv(&mut self) -> SocketAddr {
        let r = self.expect("EPSV", 229);
        let text = r.message();
        let port = text
            .split("|||")
            .nth(1)
            .and_then(|s| s.split('|').next())
            .and_then(|p| p.parse::<u16>().ok())
            .unwrap_or_else(|| panic!("unparsable 229 reply {text:?}"));
        SocketAddr::new(self.peer_ip(), port)
    }

    /// EPSV, then connects the data connection.
    pub fn data(&mut self) -> TcpStream {
        let addr = self.epsv();
        let s = match self.source {
            Some(source) => tcp_from(source, addr),
            None => {
                TcpStream::connect_timeout(&addr, Duration::from_secs(10)).expect("connect data connection")
            }
        };
        s.set_read_timeout(Some(REPLY_TIMEOUT)).expect("set read timeout");
        s
    }

    /// Runs a listing or download command over EPSV; returns the data and the final reply (226 on
    /// success, or the error reply when there was no 150).
    pub fn download(&mut self, command: &str) -> (Vec<u8>, Reply) {
        let mut data = self.data();
        let first = self.cmd(command);
        if first.code != 150 && first.code != 125 {
            return (Vec::new(), first);
        }
        let mut buf = Vec::new();
        data.read_to_end(&mut buf).expect("read data connection");
        (buf, self.reply())
    }

    /// Runs STOR-like `command` over EPSV sending `payload`; returns the final reply.
    pub fn upload(&mut self, command: &str, payload: &[u8]) -> Reply {
        let mut data = self.data();
        let first = self.cmd(command);
        if first.code != 150 && first.code != 125 {
            return first;
        }
        data.write_all(payload).expect("write data connection");
        drop(data);
        self.reply()
    }

    fn peer_ip(&self) -> IpAddr {
        self.writer.peer_addr().expect("peer addr").ip()
    }

    fn line(&mut self) -> Vec<u8> {
        let mut buf = Vec::new();
        let n = self
            .reader
            .read_until(b'\n', &mut buf)
            .expect("read reply line (timed out?)");
        assert!(n > 0, "control connection closed while waiting for a reply");
        assert!(
            buf.ends_with(b"\r\n"),
            "reply line not terminated by CRLF: {:?}",
            lossy(&buf)
        );
        buf.truncate(buf.len() - 2);
        buf
    }
}

fn reply_code(line: &[u8]) -> Option<u16> {
    let digits = line.get(..3)?;
    if !digits.iter().all(u8::is_ascii_digit) || !matches!(line.get(3), Some(b' ' | b'-') | None) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// A TCP connection to `to` from the local address `source` (any port).
pub fn tcp_from(source: IpAddr, to: SocketAddr) -> TcpStream {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(to),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )
    .expect("socket");
    socket
        .bind(&SocketAddr::new(source, 0).into())
        .unwrap_or_else(|e| panic!("bind {source}: {e}"));
    socket
        .connect_timeout(&to.into(), Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("connect {source} -> {to}: {e}"));
    socket.into()
}

/// Closes `stream` with a TCP reset (SO_LINGER 0) instead of a clean FIN: a broken connection.
pub fn reset(stream: TcpStream) {
    socket2::SockRef::from(&stream)
        .set_linger(Some(Duration::ZERO))
        .expect("set SO_LINGER 0");
    drop(stream);
}

/// Parses the `h1,h2,h3,h4,p1,p2` of a 227 reply.
pub fn parse_pasv(text: &str) -> Option<SocketAddr> {
    let start = text.find('(')? + 1;
    let end = start + text.get(start..)?.find(')')?;
    let nums: Vec<u8> = text
        .get(start..end)?
        .split(',')
        .map(|n| n.trim().parse().ok())
        .collect::<Option<_>>()?;
    let [a, b, c, d, p1, p2] = nums.as_slice() else {
        return None;
    };
    Some(SocketAddr::new(
        Ipv4Addr::new(*a, *b, *c, *d).into(),
        u16::from(*p1) << 8 | u16::from(*p2),
    ))
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

pub use crate::wait::wait_until;
