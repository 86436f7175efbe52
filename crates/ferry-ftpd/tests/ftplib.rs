//! Python's ftplib (stdlib) against ferry: directory commands, listings and facts, ASCII conversion,
//! REST/APPE/STOU, UTF-8 names, error codes, and login rules.
//!
//! Each test runs a short script after a common prelude; the scripts assert and print `OK` at the end.

mod common;

use common::{make_dir, pseudo_random, read_file, run, skip_unless, write_file, TestServer};

const PRELUDE: &str = r#"
import ftplib, io, os, re, sys, time, calendar
PORT = int(os.environ['FERRY_PORT'])
USER = os.environ['FERRY_USER']
PW = os.environ['FERRY_PASSWORD']

def connect(login=True):
    f = ftplib.FTP(timeout=20)
    f.connect('127.0.0.1', PORT)
    if login:
        f.login(USER, PW)
    return f

def expect_error(code, fn, *args, **kw):
    try:
        fn(*args, **kw)
    except ftplib.all_errors as e:
        assert str(e)[:3] == code, f'{fn.__name__}{args}: expected {code}, got {e!r}'
        return str(e)
    raise AssertionError(f'{fn.__name__}{args}: expected {code}, but it succeeded')

def get(f, cmd, rest=None):
    buf = io.BytesIO()
    f.retrbinary(cmd, buf.write, rest=rest)
    return buf.getvalue()

def put(f, cmd, data):
    return f.storbinary(cmd, io.BytesIO(data))

def raw_transfer(f, cmd, payload=None):
    """Runs cmd over a data connection in whatever TYPE is set; returns bytes received."""
    conn = f.transfercmd(cmd)
    got = b''
    with conn:
        if payload is None:
            while True:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                got += chunk
        else:
            conn.sendall(payload)
    f.voidresp()
    return got
"#;

/// Runs `script` after [`PRELUDE`] against `server`; asserts it exits 0 and printed `OK`.
fn python(server: &TestServer, script: &str) -> common::Run {
    let mut cmd = server.client("python3");
    cmd.arg("-c")
        .arg(format!("{PRELUDE}\n{script}\nprint('OK')\n"))
        .env("FERRY_PORT", server.port().to_string())
        .env("FERRY_USER", common::USER)
        .env("FERRY_PASSWORD", common::PASSWORD)
        .env("FERRY_ROOT", server.root())
        .env("PYTHONIOENCODING", "utf-8")
        .env("PYTHONDONTWRITEBYTECODE", "1");
    let r = run(&mut cmd, None);
    r.assert_success();
    assert!(
        r.out().lines().any(|l| l == "OK"),
        "script did not finish: {}",
        r.dump()
    );
    r
}

#[test]
fn login_pwd_cwd_and_directory_commands() {
    if skip_unless("python3") {
        return;
    }
    let server = TestServer::start();
    python(
        &server,
        r#"
f = connect()
assert f.pwd() == '/', f.pwd()
assert f.mkd('d1') == '/d1'
f.cwd('d1')
assert f.pwd() == '/d1', f.pwd()
assert f.mkd('sub') == '/d1/sub'
put(f, 'STOR sub/file.txt', b'content')
f.cwd('..')
assert f.pwd() == '/'
expect_error('550', f.rmd, 'd1')          # not empty
expect_error('550', f.mkd, 'd1')          # exists
expect_error('550', f.rmd, 'd1/sub/file.txt')  # not a directory
f.delete('d1/sub/file.txt')
f.rmd('d1/sub')
f.rmd('/d1')
expect_error('550', f.cwd, 'd1')
f.sendcmd('CDUP')
assert f.pwd() == '/'
f.quit()
"#,
    );
    assert!(!server.path("d1").exists());
}

#[test]
fn nlst_and_mlsd_report_names_and_facts() {
    if skip_unless("python3") {
        return;
    }
    let server = TestServer::start();
    write_file(&server.path("a.txt"), b"hello");
    write_file(&server.path("sub/inner"), b"x");
    python(
        &server,
        r#"
f = connect()
assert sorted(f.nlst()) == ['a.txt', 'sub'], f.nlst()
entries = {name: facts for name, facts in f.mlsd() if facts.get('type') not in ('cdir', 'pdir')}
assert sorted(entries) == ['a.txt', 'sub'], entries
a = entries['a.txt']
assert a['type'] == 'file', a
assert a['size'] == '5', a
assert re.fullmatch(r'\d{14}(\.\d{1,3})?', a['modify']), a
mtime = calendar.timegm(time.strptime(a['modify'][:14], '%Y%m%d%H%M%S'))
assert abs(mtime - os.stat(os.path.join(os.environ['FERRY_ROOT'], 'a.txt')).st_mtime) < 2, (a, mtime)
assert entries['sub']['type'] == 'dir', entries['sub']
# mlsd of a subdirectory, asking for chosen facts
sub = list(f.mlsd('sub', facts=['type', 'size']))
assert [n for n, _ in sub if _.get('type') == 'file'] == ['inner'], sub
f.quit()
"#,
    );
}

#[test]
fn size_mdtm_rename_and_delete() {
    if skip_unless("python3") {
        return;
    }
    let server = TestServer::start();
    let path = server.path("s.bin");
    write_file(&path, pseudo_random(1234, 1));
    // 2020-01-02 03:04:05 UTC
    common::set_mtime(&path, 1_577_934_245);
    python(
        &server,
        r#"
f = connect()
f.voidcmd('TYPE I')
assert f.size('s.bin') == 1234, f.size('s.bin')
assert f.sendcmd('MDTM s.bin') == '213 20200102030405', f.sendcmd('MDTM s.bin')
f.rename('s.bin', 'renamed.bin')
expect_error('550', f.size, 's.bin')
assert f.size('renamed.bin') == 1234
expect_error('550', f.rename, 'nope', 'x')
f.delete('renamed.bin')
expect_error('550', f.delete, 'renamed.bin')
f.quit()
"#,
    );
    assert!(!server.path("s.bin").exists() && !server.path("renamed.bin").exists());
}

#[test]
fn storbinary_and_retrbinary_round_trip() {
    if skip_unless("python3") {
        return;
    }
    let server = TestServer::start();
    let content = pseudo_random(2_000_003, 2);
    write_file(&server.path("in.bin"), &content);
    python(
        &server,
        r#"
f = connect()
data = get(f, 'RETR in.bin')
assert len(data) == 2000003, len(data)
put(f, 'STOR out.bin', data)
put(f, 'STOR empty.bin', b'')
assert get(f, 'RETR empty.bin') == b''
f.quit()
"#,
    );
    assert_eq!(read_file(&server.path("out.bin")), content);
    assert_eq!(read_file(&server.path("empty.bin")), b"");
}

#[test]
fn ascii_mode_converts_line_endings_both_ways() {
    if skip_unless("python3") {
        return;
    }
    let server = TestServer::start();
    write_file(&server.path("unix.txt"), b"one\ntwo\n\nthree\n");
    python(
        &server,
        r#"
f = connect()
f.voidcmd('TYPE A')
raw_transfer(f, 'STOR crlf.txt', b'a\r\nb\r\n')
f.storlines('STOR lines.txt', io.BytesIO(b'x\ny\r\nz\n'))
f.voidcmd('TYPE A')
got = raw_transfer(f, 'RETR unix.txt')
assert got == b'one\r\ntwo\r\n\r\nthree\r\n', got
lines = []
f.retrlines('RETR unix.txt', lines.append)
assert lines == ['one', 'two', '', 'three'], lines
# Binary mode leaves bytes alone.
assert get(f, 'RETR unix.txt') == b'one\ntwo\n\nthree\n'
f.quit()
"#,
    );
    assert_eq!(read_file(&server.path("crlf.txt")), b"a\nb\n");
    assert_eq!(read_file(&server.path("lines.txt")), b"x\ny\nz\n");
}

#[test]
fn rest_resumes_a_download_and_appe_appends() {
    if skip_unless("python3") {
        return;
    }
    let server = TestServer::start();
    let content = pseudo_random(100_000, 3);
    write_file(&server.path("r.bin"), &content);
    write_file(&server.path("log.txt"), b"first\n");
    python(
        &server,
        r#"
f = connect()
whole = get(f, 'RETR r.bin')
tail = get(f, 'RETR r.bin', rest=60000)
assert tail == whole[60000:], (len(tail), len(whole))
assert get(f, 'RETR r.bin', rest=100000) == b''
put(f, 'APPE log.txt', b'second\n')
put(f, 'APPE new.txt', b'created by APPE\n')
f.quit()
"#,
    );
    assert_eq!(read_file(&server.path("log.txt")), b"first\nsecond\n");
    assert_eq!(read_file(&server.path("new.txt")), b"created by APPE\n");
}

#[test]
fn stou_names_the_stored_file_in_its_150_reply() {
    if skip_unless("python3") {
        return;
    }
    let server = TestServer::start();
    write_file(&server.path("report.txt"), b"original");
    let r = python(
        &server,
        r#"
f = connect()
seen = []
orig = f.getresp
def recording():
    r = orig()
    seen.append(r)
    return r
f.getresp = recording
f.voidcmd('TYPE I')
conn = f.transfercmd('STOU report.txt')
conn.sendall(b'unique content')
conn.close()
f.voidresp()
first = [r for r in seen if r.startswith('150')]
assert len(first) == 1, seen
assert first[0].startswith('150 FILE: '), first[0]
print('NAME=' + first[0][len('150 FILE: '):])
f.quit()
"#,
    );
    let out = r.out();
    let name = out
        .lines()
        .find_map(|l| l.strip_prefix("NAME="))
        .expect("STOU name")
        .trim();
    let stored = server.path(name.trim_start_matches('/'));
    assert_ne!(
        stored,
        server.path("report.txt"),
        "STOU overwrote the existing file"
    );
    assert_eq!(read_file(&stored), b"unique content", "STOU file {name}");
    assert_eq!(read_file(&server.path("report.txt")), b"original");
}

#[test]
fn names_with_spaces_and_utf8_work_everywhere() {
    if skip_unless("python3") {
        return;
    }
    let server = TestServer::start();
    python(
        &server,
        r#"
f = connect()
name = 'résumé ü.txt'
put(f, 'STOR ' + name, 'données ✓\n'.encode())
assert name in f.nlst(), f.nlst()
assert f.size(name) == len('données ✓\n'.encode())
assert get(f, 'RETR ' + name) == 'données ✓\n'.encode()
assert f.mkd('dossier été') == '/dossier été'
f.cwd('dossier été')
assert f.pwd() == '/dossier été', f.pwd()
put(f, 'STOR  leading space.txt', b'x')
f.cwd('/')
listing = []
f.retrlines('LIST dossier été', listing.append)
assert len(listing) == 1 and listing[0].endswith(' leading space.txt'), listing
facts = dict(f.mlsd())
assert facts[name]['type'] == 'file', facts
f.rename(name, 'ñ 2.txt')
assert 'ñ 2.txt' in f.nlst()
f.quit()
"#,
    );
    assert_eq!(read_file(&server.path("ñ 2.txt")), "données ✓\n".as_bytes());
    assert_eq!(read_file(&server.path("dossier été/ leading space.txt")), b"x");
}

#[test]
fn missing_directory_gets_550_for_every_command() {
    if skip_unless("python3") {
        return;
    }
    let server = TestServer::start();
    python(
        &server,
        r#"
f = connect()
expect_error('550', f.cwd, 'nope')
expect_error('550', f.retrlines, 'LIST nope')
expect_error('550', f.retrlines, 'LIST -la nope')
expect_error('550', f.nlst, 'nope')
expect_error('550', lambda: list(f.mlsd('nope')))
expect_error('550', f.size, 'nope')
expect_error('550', f.sendcmd, 'MDTM nope')
expect_error('550', f.sendcmd, 'MLST nope')
expect_error('550', get, f, 'RETR nope/file')
expect_error('550', put, f, 'STOR nope/file', b'x')
expect_error('550', f.mkd, 'nope/deeper')
# The session is still usable.
assert f.pwd() == '/'
f.quit()
"#,
    );
    assert!(
        std::fs::read_dir(server.root()).expect("root").next().is_none(),
        "something was created"
    );
}

#[test]
fn wrong_password_is_530_and_a_retry_succeeds() {
    if skip_unless("python3") {
        return;
    }
    let server = TestServer::start();
    python(
        &server,
        r#"
f = connect(login=False)
expect_error('530', f.login, USER, 'wrong')
expect_error('530', f.login, 'nosuchuser', PW)
expect_error('530', f.pwd)
f.login(USER, PW)
assert f.pwd() == '/'
f.quit()
"#,
    );
}

#[test]
fn anonymous_login_is_refused_by_default() {
    if skip_unless("python3") {
        return;
    }
    let server = TestServer::start();
    python(
        &server,
        r#"
f = connect(login=False)
expect_error('530', f.login)
f = connect(login=False)
expect_error('530', f.login, 'ftp', 'guest@example.com')
"#,
    );
}

#[test]
fn anonymous_login_when_configured_is_read_only() {
    if skip_unless("python3") {
        return;
    }
    let server = TestServer::start_anonymous();
    write_file(&server.path("pub.txt"), b"public\n");
    make_dir(&server.path("dir"));
    python(
        &server,
        r#"
f = connect(login=False)
f.login()
assert sorted(f.nlst()) == ['dir', 'pub.txt'], f.nlst()
assert get(f, 'RETR pub.txt') == b'public\n'
f.cwd('dir')
f.cwd('/')
expect_error('550', put, f, 'STOR up.txt', b'nope')
expect_error('550', put, f, 'APPE pub.txt', b'nope')
expect_error('550', f.mkd, 'newdir')
expect_error('550', f.rmd, 'dir')
expect_error('550', f.delete, 'pub.txt')
expect_error('550', f.rename, 'pub.txt', 'x.txt')
f.quit()
"#,
    );
    assert_eq!(read_file(&server.path("pub.txt")), b"public\n");
    assert!(!server.path("up.txt").exists());
    assert!(server.path("dir").is_dir());
}
