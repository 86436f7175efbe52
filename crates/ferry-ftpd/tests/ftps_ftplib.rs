//! Python's ftplib (`FTP_TLS`, OpenSSL) against ferry's explicit FTPS.
//!
//! A client that resumes the control connection's TLS session on its data connections (what curl, lftp and
//! FileZilla do; here a small `FTP_TLS` subclass) transfers and lists under TLS 1.3 and 1.2. Stock
//! `FTP_TLS` does not resume, so its data connections get `522` and move nothing, unless the danger switch
//! `danger_allow_unresumed_data_tls` is on globally or for that user only.

mod common;

use common::{python_ftps, skip_unless, TestServer};

/// Python: a transfer the server must refuse after `150`; returns (bytes received, final reply text).
/// The data socket is read or written by hand because the server drops it right after the handshake.
const REFUSED: &str = r#"
def refused(f, cmd, payload=None):
    conn = f.transfercmd(cmd)
    got = b''
    try:
        if payload is not None:
            conn.sendall(payload)
        else:
            got = read_all(conn)
    except (ssl.SSLError, OSError):
        pass
    conn.close()
    try:
        resp = f.getresp()
    except ftplib.error_perm as e:
        return got, str(e)
    raise AssertionError(f'{cmd}: expected a refusal, got {resp!r}')

def assert_522(f, cmd, payload=None):
    got, text = refused(f, cmd, payload)
    assert text.startswith('522 '), text
    assert 'session reuse required' in text, text
    assert got == b'', f'{cmd}: {len(got)} bytes arrived on a refused data connection'

def stock_works(f, name, data):
    put(f, 'STOR ' + name, data)
    assert get(f, 'RETR ' + name) == data
    assert name in f.nlst()
"#;

fn script(body: &str) -> String {
    format!("{REFUSED}\n{body}")
}

#[test]
fn resuming_client_transfers_and_lists_with_tls13_and_tls12() {
    if skip_unless("python3") {
        return;
    }
    let server = TestServer::start_ftps(|_| {});
    python_ftps(
        &server,
        r#"
class Checked(Reusing):
    reused = []
    def ntransfercmd(self, cmd, rest=None):
        conn, size = Reusing.ntransfercmd(self, cmd, rest)
        Checked.reused.append((conn.version(), conn.session_reused))
        return conn, size

for version, name in (('1.3', 'TLSv1.3'), ('1.2', 'TLSv1.2')):
    Checked.reused = []
    f = login(cls=Checked, ctx=context(version))
    assert f.sock.version() == name, f.sock.version()
    data = os.urandom(2 * 1024 * 1024 + 3)
    f.mkd('d' + version)
    put(f, f'STOR d{version}/big.bin', data)
    with open(server_file(f'd{version}/big.bin'), 'rb') as h:
        assert hashlib.sha256(h.read()).digest() == hashlib.sha256(data).digest()
    assert get(f, f'RETR d{version}/big.bin') == data
    assert f.nlst(f'd{version}') in ([f'd{version}/big.bin'], ['big.bin']), f.nlst(f'd{version}')
    lines = []
    f.retrlines('LIST d' + version, lines.append)
    assert len(lines) == 1 and lines[0].endswith(' big.bin'), lines
    facts = list(f.mlsd('d' + version))
    assert [n for n, _ in facts if n == 'big.bin'], facts
    # Every data connection used the pinned version and resumed the control connection's session.
    assert len(Checked.reused) == 5, Checked.reused
    assert all(r == (name, True) for r in Checked.reused), Checked.reused
    f.quit()
"#,
    );
}

#[test]
fn stock_ftp_tls_gets_522_and_moves_no_data() {
    if skip_unless("python3") {
        return;
    }
    let server = TestServer::start_ftps(|_| {});
    common::write_file(&server.path("secret.bin"), b"top secret bytes");
    python_ftps(
        &server,
        &script(
            r#"
for version in ('1.3', '1.2'):
    f = login(cls=ftplib.FTP_TLS, ctx=context(version))
    assert_522(f, 'RETR secret.bin')
    assert_522(f, 'LIST')
    assert_522(f, 'STOR stock.bin', b'x' * 100000)
    assert not os.path.exists(server_file('stock.bin'))
    # The session is still usable and the refusal does not stick to it.
    f.voidcmd('NOOP')
    f.quit()
assert sorted(os.listdir(ROOT)) == ['secret.bin'], os.listdir(ROOT)
"#,
        ),
    );
}

#[test]
fn danger_switch_on_globally_lets_stock_ftp_tls_work() {
    if skip_unless("python3") {
        return;
    }
    let server = TestServer::start_ftps(|c| c.ftps.danger_allow_unresumed_data_tls = true);
    python_ftps(
        &server,
        &script(
            r#"
for version in ('1.3', '1.2'):
    f = login(cls=ftplib.FTP_TLS, ctx=context(version))
    stock_works(f, f'stock{version}.bin', os.urandom(700000))
    f.quit()
"#,
        ),
    );
}

#[test]
fn danger_switch_for_one_user_applies_to_that_user_only() {
    if skip_unless("python3") {
        return;
    }
    let server = TestServer::start_ftps(|_| {});
    server.add_user("bob", "bob pw");
    server.set_user_tls(
        common::USER,
        ferry_auth::UserTls {
            danger_allow_unresumed_data_tls: Some(true),
            ..ferry_auth::UserTls::default()
        },
    );
    python_ftps(
        &server,
        &script(
            r#"
alice = login(cls=ftplib.FTP_TLS)
stock_works(alice, 'alice.bin', os.urandom(300000))
bob = login(cls=ftplib.FTP_TLS, user='bob', pw='bob pw')
assert_522(bob, 'RETR alice.bin')
assert_522(bob, 'STOR bob.bin', b'y' * 1000)
assert not os.path.exists(server_file('bob.bin'))
# Bob with a resuming client is fine: only the danger switch differs.
bob2 = login(user='bob', pw='bob pw')
assert len(get(bob2, 'RETR alice.bin')) == 300000
for f in (alice, bob, bob2):
    f.quit()
"#,
        ),
    );
}
