//! FTPS security and protocol rules, checked byte by byte with Python's `ssl` (OpenSSL) as the client:
//! data connections bound to their own control connection's TLS session, TLS-required logins, PROT
//! policy, pipelined cleartext after AUTH TLS, truncated uploads (no close_notify), strict ALPN, and the
//! RFC 4217 command sequence.

mod common;

use common::{python_ftps, skip_unless, write_file, TestServer};

fn require_tls(c: &mut ferry_ftpd::Config) {
    c.ftps.loopback_policy = ferry_ftpd::TlsPolicy::Required;
}

#[test]
fn in_own_mode_a_data_connection_resuming_another_control_sessions_tls_is_refused_with_522() {
    if skip_unless("python3") {
        return;
    }
    let server = TestServer::start_ftps(|c| c.ftps.data_session = ferry_ftpd::DataSession::Own);
    write_file(&server.path("secret.bin"), b"only for session A\n".repeat(1000));
    python_ftps(
        &server,
        r#"
for version in ('1.3', '1.2'):
    ctx = context(version)
    a = login(ctx=ctx)
    b = login(ctx=ctx)
    # Session B is a perfectly good session of this server, for the same user: still refused on A's
    # data connection.
    reused, got, final = retr_with_session(a, b.sock.session, ctx)
    assert not reused, 'the server resumed a foreign session'
    assert got == b'', f'{len(got)} bytes leaked to the foreign session'
    assert final.startswith('522 ') and 'session reuse required' in final, final
    # No session at all: refused the same way.
    reused, got, final = retr_with_session(a, None, ctx)
    assert got == b'' and final.startswith('522 '), final
    # A's own session works on the same control connection afterwards.
    reused, got, final = retr_with_session(a, a.sock.session, ctx)
    assert reused, 'own session not resumed'
    assert got == b'only for session A\n' * 1000 and final.startswith('226 '), final
    a.quit(); b.quit()
"#,
    );
}

#[test]
fn by_default_only_the_same_users_sessions_are_accepted_and_a_thief_gets_522() {
    if skip_unless("python3") {
        return;
    }
    // The default `ftps.data_session = same_user`.
    let server = TestServer::start_ftps(|_| {});
    server.add_user("mallory", "mallory pw");
    write_file(&server.path("secret.bin"), b"alice's data\n".repeat(1000));
    python_ftps(
        &server,
        r#"
for version in ('1.3', '1.2'):
    ctx = context(version)
    a = login(ctx=ctx)
    sibling = login(ctx=ctx)
    mallory = login(user='mallory', pw='mallory pw', ctx=ctx)
    # Another control connection of the same user from the same address: accepted.
    reused, got, final = retr_with_session(a, sibling.sock.session, ctx)
    assert got == b"alice's data\n" * 1000 and final.startswith('226 '), (version, reused, final)
    # A control connection of another user from the same address: refused, nothing leaks.
    reused, got, final = retr_with_session(a, mallory.sock.session, ctx)
    assert got == b'', f'{len(got)} bytes leaked to another user'
    assert final.startswith('522 '), final
    a.quit(); sibling.quit(); mallory.quit()
"#,
    );
}

#[test]
fn danger_any_accepts_another_users_session() {
    if skip_unless("python3") {
        return;
    }
    let server = TestServer::start_ftps(|c| c.ftps.data_session = ferry_ftpd::DataSession::DangerAny);
    server.add_user("mallory", "mallory pw");
    write_file(&server.path("secret.bin"), b"alice's data\n".repeat(100));
    python_ftps(
        &server,
        r#"
ctx = context('1.3')
a = login(ctx=ctx)
mallory = login(user='mallory', pw='mallory pw', ctx=ctx)
# What the danger is: another user's TLS session is accepted on alice's data connection.
reused, got, final = retr_with_session(a, mallory.sock.session, ctx)
assert reused and got == b"alice's data\n" * 100 and final.startswith('226 '), (reused, final)
a.quit(); mallory.quit()
"#,
    );
}

#[test]
fn ccc_is_refused_by_default_and_when_allowed_clears_only_the_control_connection() {
    if skip_unless("python3") {
        return;
    }
    let strict = TestServer::start_ftps(|_| {});
    python_ftps(
        &strict,
        r#"
a = login()
expect_error('534', a.voidcmd, 'CCC')
a.voidcmd('NOOP')
a.quit()
"#,
    );
    let server = TestServer::start_ftps(|c| c.ftps.danger_allow_ccc = true);
    write_file(&server.path("after-ccc.bin"), b"still protected\n".repeat(500));
    python_ftps(
        &server,
        r#"
class AfterCcc(Reusing):
    # After CCC the control socket is plain; data connections resume the session saved before.
    saved = None
    def ntransfercmd(self, cmd, rest=None):
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        conn = self.context.wrap_socket(conn, server_hostname=self.host, session=self.saved)
        assert conn.session_reused, 'data connection did not resume after CCC'
        return conn, size

f = AfterCcc(context=context('1.3'), timeout=20)
f.connect(HOST, PORT)
f.auth()
# Not before login: the password must not follow in the clear.
expect_error('503', f.voidcmd, 'CCC')
f.login(USER, PW)
f.prot_p()
f.saved = f.sock.session
resp = f.ccc()   # sends CCC, then unwraps TLS (close_notify both ways)
assert resp.startswith('200'), resp
# The server now reads cleartext: a NOOP sent in the clear is answered.
assert f.voidcmd('NOOP').startswith('200')
buf = io.BytesIO()
assert f.retrbinary('RETR after-ccc.bin', buf.write).startswith('226')
assert buf.getvalue() == b'still protected\n' * 500
# PROT C is still refused by policy, and CCC again has no TLS to clear.
expect_error('534', f.voidcmd, 'PROT C')
expect_error('533', f.voidcmd, 'CCC')
f.quit()
"#,
    );
}

#[test]
fn cleartext_login_is_refused_when_tls_is_required() {
    if skip_unless("python3") {
        return;
    }
    let server = TestServer::start_ftps(require_tls);
    python_ftps(
        &server,
        r#"
c = Raw()
code, text = c.cmd('USER ' + USER)
assert code == 530 and 'TLS' in text, text
# The password is never asked for in the clear, and sending it anyway logs nobody in.
c.expect('PASS ' + PW, 503)
c.expect('PWD', 530)
c.starttls()
c.login()
c.expect('PWD', 257)
c.close()
# Implicit FTPS needs no AUTH.
i = Raw(port=IPORT, implicit_ctx=context())
i.login()
i.expect('AUTH TLS', 503)
i.close()
"#,
    );
}

#[test]
fn a_user_who_requires_tls_cannot_log_in_in_the_clear_where_tls_is_optional() {
    if skip_unless("python3") {
        return;
    }
    let server = TestServer::start_ftps(|_| {});
    server.set_user_tls(
        common::USER,
        ferry_auth::UserTls {
            require_tls: true,
            ..ferry_auth::UserTls::default()
        },
    );
    server.add_user("bob", "bob pw");
    python_ftps(
        &server,
        r#"
c = Raw()
c.expect('USER ' + USER, 331)
code, text = c.cmd('PASS ' + PW)
assert code == 530 and 'TLS' in text, text
c.expect('PWD', 530)
c.close()
# Bob has no such override: cleartext is fine for him on loopback.
b = Raw()
b.expect('USER bob', 331)
b.expect('PASS bob pw', 230)
b.close()
t = Raw()
t.starttls()
t.login()
t.close()
"#,
    );
}

#[test]
fn prot_c_is_refused_when_protection_is_required() {
    if skip_unless("python3") {
        return;
    }
    let server = TestServer::start_ftps(|_| {});
    python_ftps(
        &server,
        r#"
c = Raw()
c.starttls()
c.login()
c.expect('PBSZ 0', 200)
code, text = c.cmd('PROT C')
assert code == 534, text
c.expect('PROT P', 200)
c.close()
"#,
    );
}

#[test]
fn prot_c_is_allowed_and_moves_cleartext_data_when_protection_is_not_required() {
    if skip_unless("python3") {
        return;
    }
    let server = TestServer::start_ftps(|c| c.ftps.require_protected_data = false);
    write_file(
        &server.path("plain.txt"),
        b"cleartext data under a TLS control connection\n",
    );
    python_ftps(
        &server,
        r#"
c = Raw()
c.starttls()
c.login()
c.expect('PBSZ 0', 200)
c.expect('PROT C', 200)
d = c.epsv()
c.expect('RETR plain.txt', 150)
# Plain bytes on the data connection: no TLS record header.
assert read_all(d) == b'cleartext data under a TLS control connection\n'
d.close()
assert c.reply()[0] == 226
c.close()
"#,
    );
}

#[test]
fn transfers_under_tls_without_prot_p_get_521() {
    if skip_unless("python3") {
        return;
    }
    let server = TestServer::start_ftps(|_| {});
    write_file(&server.path("f.txt"), b"x");
    python_ftps(
        &server,
        r#"
c = Raw()
c.starttls()
c.login()
for cmd in ('LIST', 'RETR f.txt', 'STOR new.txt', 'NLST', 'MLSD'):
    d = c.epsv()
    code, text = c.cmd(cmd)
    assert code == 521, f'{cmd}: {text}'
    d.close()
assert not os.path.exists(server_file('new.txt'))
# PBSZ 0 alone is not enough.
c.expect('PBSZ 0', 200)
d = c.epsv()
code, text = c.cmd('LIST')
assert code == 521, text
d.close()
c.close()
"#,
    );
}

#[test]
fn pipelined_cleartext_after_auth_tls_is_never_executed() {
    if skip_unless("python3") {
        return;
    }
    let server = TestServer::start_ftps(|_| {});
    python_ftps(
        &server,
        r#"
for mech in ('TLS', 'SSL'):
    c = Raw()
    c.send(f'AUTH {mech}\r\nUSER {USER}\r\nPASS {PW}\r\nMKD /smuggled\r\n'.encode())
    code, text = c.reply()
    assert code == 234, text
    try:
        c.s = context().wrap_socket(c.s, server_hostname='localhost')
    except (ssl.SSLError, OSError) as e:
        # Closing the connection because the cleartext corrupted the handshake is acceptable.
        print('handshake refused:', e)
    else:
        # The handshake survived: the session must answer at once, not be logged in, and have nothing
        # queued (a timeout or a closed connection here fails the test).
        c.s.settimeout(5)
        code, text = c.cmd('PWD')
        assert code == 530, f'pipelined cleartext ran: {text}'
        c.expect('NOOP', 200)
    c.close()
    time.sleep(0.2)
    assert not os.path.exists(server_file('smuggled')), 'MKD /smuggled was executed'
# The same MKD is allowed when sent properly, so its absence above is the discard at work.
f = login()
f.mkd('/smuggled-check')
f.quit()
assert os.path.isdir(server_file('smuggled-check'))
assert not os.path.exists(server_file('smuggled'))
"#,
    );
}

#[test]
fn a_tls_upload_ending_without_close_notify_gets_426_and_is_discarded() {
    if skip_unless("python3") {
        return;
    }
    let server = TestServer::start_ftps(|_| {});
    python_ftps(
        &server,
        r#"
payload = os.urandom(300000)
for version in ('1.3', '1.2'):
    ctx = context(version)
    c = Raw()
    c.starttls(ctx)
    c.login()
    c.expect('PBSZ 0', 200)
    c.expect('PROT P', 200)
    c.expect('TYPE I', 200)

    # Truncated: all bytes sent, then a TCP FIN without close_notify (what an attacker cutting the
    # connection, or a crashing client, produces).
    name = f'cut{version}.bin'
    d = c.epsv()
    c.expect('STOR ' + name, 150)
    d = ctx.wrap_socket(d, server_hostname='localhost', session=c.s.session)
    assert d.session_reused
    d.sendall(payload)
    raw = socket.socket(fileno=os.dup(d.fileno()))
    raw.shutdown(socket.SHUT_WR)
    code, text = c.reply()
    assert code == 426, f'truncated upload: {text}'
    raw.close()
    d.close()
    time.sleep(0.1)
    assert not os.path.exists(server_file(name)), f'truncated upload {name} was kept'

    # The same upload closed properly (close_notify, then FIN) is stored.
    name = f'whole{version}.bin'
    d = c.epsv()
    c.expect('STOR ' + name, 150)
    d = ctx.wrap_socket(d, server_hostname='localhost', session=c.s.session)
    d.sendall(payload)
    d = d.unwrap()
    d.close()
    code, text = c.reply()
    assert code == 226, text
    with open(server_file(name), 'rb') as h:
        assert h.read() == payload
    c.close()
# Nothing else was left behind (no temporary files of the discarded uploads).
assert sorted(os.listdir(ROOT)) == ['whole1.2.bin', 'whole1.3.bin'], os.listdir(ROOT)
"#,
    );
}

#[test]
fn alpn_other_than_ftp_is_refused_on_control_and_data_connections() {
    if skip_unless("python3") {
        return;
    }
    let server = TestServer::start_ftps(|_| {});
    write_file(&server.path("f.txt"), b"data");
    python_ftps(
        &server,
        r#"
def refused(make):
    try:
        make()
    except (ssl.SSLError, ConnectionError) as e:
        return str(e)
    raise AssertionError('handshake with ALPN http/1.1 succeeded')

c = Raw()
err = refused(lambda: c.starttls(context(alpn=('http/1.1',))))
assert 'NO_APPLICATION_PROTOCOL' in err.upper() or 'ALERT' in err.upper(), err
c.close()
# Implicit listener too.
err = refused(lambda: Raw(port=IPORT, implicit_ctx=context(alpn=('http/1.1',))))
# Offering ftp (with or without others) works and selects ftp; offering nothing works too.
for alpn, selected in ((('ftp',), 'ftp'), (('http/1.1', 'ftp'), 'ftp'), (None, None)):
    c = Raw()
    c.starttls(context(alpn=alpn))
    assert c.s.selected_alpn_protocol() == selected, (alpn, c.s.selected_alpn_protocol())
    c.login()
    c.close()
# A data connection offering only http/1.1 fails its handshake: 522 and no data.
ctx = context()
c = Raw()
c.starttls(ctx)
c.login()
c.expect('PBSZ 0', 200)
c.expect('PROT P', 200)
d = c.epsv()
c.expect('RETR f.txt', 150)
bad = context(alpn=('http/1.1',))
refused(lambda: bad.wrap_socket(d, server_hostname='localhost'))
code, text = c.reply()
assert code == 522, text
c.close()
"#,
    );
}

#[test]
fn feat_auth_ssl_and_the_rfc_4217_command_sequence() {
    if skip_unless("python3") {
        return;
    }
    let server = TestServer::start_ftps(|_| {});
    write_file(&server.path("f.txt"), b"implicit data");
    python_ftps(
        &server,
        r#"
c = Raw()
feat = c.expect('FEAT', 211).split('\n')
for f in ('AUTH TLS', 'PBSZ', 'PROT'):
    assert ' ' + f in feat, (f, feat)
c.expect('PBSZ 0', 503)
c.expect('PROT P', 503)
c.starttls(mech='SSL')
assert c.s.version() in ('TLSv1.3', 'TLSv1.2'), c.s.version()
c.expect('AUTH TLS', 503)
c.login()
c.expect('PROT P', 503)
c.expect('PBSZ 0', 200)
c.expect('PROT S', 536)
c.expect('PROT E', 536)
c.expect('CCC', 534)
c.expect('PROT P', 200)
c.close()

# AUTH TLS-P also turns on PROT P: a protected transfer needs no PBSZ or PROT.
ctx = context()
p = Raw()
p.starttls(ctx, mech='TLS-P')
p.login()
d = p.epsv()
p.expect('RETR f.txt', 150)
d = ctx.wrap_socket(d, server_hostname='localhost', session=p.s.session)
assert read_all(d) == b'implicit data'
d.close()
assert p.reply()[0] == 226
p.close()

# Implicit FTPS: data is protected from the start, without PBSZ or PROT.
ctx = context()
i = Raw(port=IPORT, implicit_ctx=ctx)
i.login()
d = i.epsv()
i.expect('RETR f.txt', 150)
d = ctx.wrap_socket(d, server_hostname='localhost', session=i.s.session)
assert d.session_reused
assert read_all(d) == b'implicit data'
d.close()
assert i.reply()[0] == 226
i.close()
"#,
    );
}
