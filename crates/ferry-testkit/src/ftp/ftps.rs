//! FTPS test support: the test certificate and a Python prelude for TLS clients built on `ssl` and
//! `ftplib`.

use std::sync::OnceLock;

use super::{run, Run, TestServer};

/// A self-signed certificate for `localhost`, `127.0.0.1` and `::1`, generated once per test process.
pub fn test_identity() -> &'static ferry_ftpd::PemIdentity {
    static IDENTITY: OnceLock<ferry_ftpd::PemIdentity> = OnceLock::new();
    IDENTITY.get_or_init(|| {
        ferry_ftpd::PemIdentity::self_signed(vec!["localhost".into(), "127.0.0.1".into(), "::1".into()])
            .expect("generate test certificate")
    })
}

/// Python prelude for FTPS scripts (run by [`python_ftps`]).
///
/// - `context(version, alpn)`: a client `SSLContext` that does not verify the (self-signed) certificate,
///   pinned to TLS `'1.2'` or `'1.3'` if asked, offering ALPN `ftp` unless told otherwise.
/// - `Reusing`: `ftplib.FTP_TLS` whose data connections resume the control connection's TLS session
///   (what real clients do); stock `ftplib.FTP_TLS` does not.
/// - `Raw`: a byte-level control connection (`cmd`, `reply`, `starttls`) for protocol checks.
/// - `expect_error(code, fn, ...)`: asserts an ftplib error with that code; returns its text.
pub const PY_FTPS: &str = r#"
import ftplib, hashlib, io, os, socket, ssl, sys, time
PORT = int(os.environ['FERRY_PORT'])
IPORT = int(os.environ.get('FERRY_IMPLICIT_PORT') or 0)
USER = os.environ['FERRY_USER']
PW = os.environ['FERRY_PASSWORD']
ROOT = os.environ['FERRY_ROOT']
HOST = '127.0.0.1'

def context(version=None, alpn=('ftp',)):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if version == '1.2':
        ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    elif version == '1.3':
        ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_3
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    return ctx

class Reusing(ftplib.FTP_TLS):
    """FTP_TLS whose data connections resume the control connection's TLS session."""
    def ntransfercmd(self, cmd, rest=None):
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        if self._prot_p:
            conn = self.context.wrap_socket(conn, server_hostname=self.host, session=self.sock.session)
        return conn, size

def login(cls=Reusing, ctx=None, user=None, pw=None, prot_p=True):
    f = cls(context=ctx or context(), timeout=20)
    f.connect(HOST, PORT)
    f.login(user or USER, pw or PW)
    if prot_p:
        f.prot_p()
    return f

def expect_error(code, fn, *args, **kw):
    try:
        fn(*args, **kw)
    except ftplib.all_errors as e:
        assert str(e)[:3] == code, f'{getattr(fn, "__name__", fn)}{args}: expected {code}, got {e!r}'
        return str(e)
    raise AssertionError(f'{getattr(fn, "__name__", fn)}{args}: expected {code}, but it succeeded')

def get(f, cmd):
    buf = io.BytesIO()
    f.retrbinary(cmd, buf.write)
    return buf.getvalue()

def put(f, cmd, data):
    return f.storbinary(cmd, io.BytesIO(data))

def server_file(name):
    return os.path.join(ROOT, name)

class Raw:
    """A control connection read and written byte by byte (no buffering past a reply)."""
    def __init__(self, port=None, implicit_ctx=None):
        self.s = socket.create_connection((HOST, port or PORT), timeout=20)
        if implicit_ctx is not None:
            self.s = implicit_ctx.wrap_socket(self.s, server_hostname='localhost')
        code, text = self.reply()
        assert code == 220, text
    def send(self, data):
        self.s.sendall(data)
    def line(self):
        out = b''
        while not out.endswith(b'\r\n'):
            c = self.s.recv(1)
            if not c:
                raise EOFError(f'connection closed after {out!r}')
            out += c
        return out[:-2].decode('utf-8', 'replace')
    def reply(self):
        first = self.line()
        lines = [first]
        if first[3:4] == '-':
            while not (lines[-1][:3] == first[:3] and lines[-1][3:4] == ' '):
                lines.append(self.line())
        return int(first[:3]), '\n'.join(lines)
    def cmd(self, line):
        self.send(line.encode() + b'\r\n')
        return self.reply()
    def expect(self, line, code):
        got, text = self.cmd(line)
        assert got == code, f'{line!r}: expected {code}, got {text!r}'
        return text
    def starttls(self, ctx=None, mech='TLS'):
        self.expect('AUTH ' + mech, 234)
        self.s = (ctx or context()).wrap_socket(self.s, server_hostname='localhost')
    def login(self):
        self.expect('USER ' + USER, 331)
        self.expect('PASS ' + PW, 230)
    def epsv(self):
        text = self.expect('EPSV', 229)
        port = int(text.split('|||')[1].split('|')[0])
        return socket.create_connection((HOST, port), timeout=20)
    def close(self):
        try:
            self.s.close()
        except OSError:
            pass

def retr_with_session(a, session, ctx, name='secret.bin'):
    """RETR `name` on control connection `a`, with a data connection that offers TLS `session` (or none).
    Returns (whether the server resumed it, the bytes received, the final reply)."""
    a.voidcmd('TYPE I')
    host, port = a.makepasv()
    a.putcmd('RETR ' + name)
    first = a.getresp()
    assert first.startswith('150'), first
    # Same server name (none: an IP address) as the control connection; a different SNI alone would
    # make the server refuse to resume (RFC 6066).
    d = ctx.wrap_socket(socket.create_connection((host, port), timeout=20),
                        server_hostname=a.host, session=session)
    reused = d.session_reused
    got = read_all(d)
    d.close()
    try:
        final = a.getresp()
    except ftplib.error_perm as e:
        final = str(e)
    return reused, got, final

def read_all(sock):
    out = b''
    while True:
        try:
            chunk = sock.recv(65536)
        except (ssl.SSLError, ConnectionError, OSError):
            break
        if not chunk:
            break
        out += chunk
    return out
"#;

/// Runs `script` after [`PY_FTPS`] against `server`; asserts that it exits 0 and prints `OK` last.
pub fn python_ftps(server: &TestServer, script: &str) -> Run {
    let mut cmd = server.client("python3");
    cmd.arg("-c")
        .arg(format!("{PY_FTPS}\n{script}\nprint('OK')\n"))
        .env("FERRY_PORT", server.port().to_string())
        .env(
            "FERRY_IMPLICIT_PORT",
            server
                .implicit_addr
                .map(|a| a.port().to_string())
                .unwrap_or_default(),
        )
        .env("FERRY_USER", super::USER)
        .env("FERRY_PASSWORD", super::PASSWORD)
        .env("FERRY_ROOT", server.root())
        .env("PYTHONIOENCODING", "utf-8")
        .env("PYTHONDONTWRITEBYTECODE", "1");
    let r = run(&mut cmd, None);
    r.assert_success();
    assert!(
        r.out().lines().last() == Some("OK"),
        "script did not finish: {}",
        r.dump()
    );
    r
}
