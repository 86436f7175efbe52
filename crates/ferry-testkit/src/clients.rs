//! Running client programs: find them (a missing one fails the test with the install hint), run
//! them with a time limit and keep what they printed.

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// Default time limit for one client process.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);

/// The hint printed when a client is missing.
pub const INSTALL_HINT: &str = "run scripts/install-test-deps.sh (scripts/test.sh does it for you)";

/// Fails the test, with the install hint, unless client program `tool` is on `PATH`. Returns
/// `false` so that call sites written as `if skip_unless("curl") { return; }` read on: a missing
/// client is never a silent pass. Tests that cannot run on a machine at all are `#[ignore = "…"]`.
pub fn skip_unless(tool: &str) -> bool {
    require(tool);
    false
}

/// Fails the test, with the install hint, unless client program `tool` is on `PATH`.
pub fn require(tool: &str) {
    assert!(
        on_path(tool),
        "client program `{tool}` is not installed: {INSTALL_HINT}"
    );
}

/// Fails the test, with the install hint, unless `python3` can import `module`. Returns `false`
/// (see [`skip_unless`]).
pub fn skip_unless_python_module(module: &str) -> bool {
    require("python3");
    let ok = Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "python module `{module}` is not installed: {INSTALL_HINT}");
    false
}

/// Whether an executable `tool` is on `PATH`.
pub fn on_path(tool: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let Some(path) = std::env::var_os("PATH") else {
        return false;
    };
    std::env::split_paths(&path).any(|dir| {
        std::fs::metadata(dir.join(tool)).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
}

/// What a finished client process printed.
#[derive(Debug)]
pub struct Run {
    /// The command line, for messages.
    pub command: String,
    /// Exit status.
    pub status: ExitStatus,
    /// Raw standard output.
    pub stdout: Vec<u8>,
    /// Standard error, lossily decoded.
    pub stderr: String,
}

impl Run {
    /// Standard output, lossily decoded.
    pub fn out(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Panics with the full output unless the process exited 0.
    pub fn assert_success(&self) -> &Self {
        assert!(
            self.status.success(),
            "`{}` failed: {}\n{}",
            self.command,
            self.status,
            self.dump()
        );
        self
    }

    /// Panics with the full output if the process exited 0.
    pub fn assert_failure(&self) -> &Self {
        assert!(
            !self.status.success(),
            "`{}` should have failed\n{}",
            self.command,
            self.dump()
        );
        self
    }

    /// The exit code (None if killed by a signal).
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// Both outputs, for assertion messages.
    pub fn dump(&self) -> String {
        format!("--- stdout ---\n{}\n--- stderr ---\n{}", self.out(), self.stderr)
    }
}

/// Runs `cmd` with `stdin` (or nothing) as input, within [`CLIENT_TIMEOUT`].
pub fn run(cmd: &mut Command, stdin: Option<&[u8]>) -> Run {
    run_timeout(cmd, stdin, CLIENT_TIMEOUT)
}

/// Runs `cmd` and waits at most `timeout`; on timeout the process is killed and the test fails with
/// whatever it printed.
pub fn run_timeout(cmd: &mut Command, stdin: Option<&[u8]>, timeout: Duration) -> Run {
    let command = describe(cmd);
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run `{command}`: {e}"));
    let input = stdin.map(<[u8]>::to_vec);
    let mut child_stdin = child.stdin.take();
    let writer = thread::spawn(move || {
        if let (Some(mut s), Some(input)) = (child_stdin.take(), input) {
            let _ = s.write_all(&input);
        }
    });
    let out_reader = drain(child.stdout.take());
    let err_reader = drain(child.stderr.take());
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => thread::sleep(Duration::from_millis(20)),
            Err(e) => panic!("waiting for `{command}`: {e}"),
        }
    };
    let _ = writer.join();
    let stdout = out_reader.join().unwrap_or_default();
    let stderr = String::from_utf8_lossy(&err_reader.join().unwrap_or_default()).into_owned();
    match status {
        Some(status) => Run { command, status, stdout, stderr },
        None => panic!(
            "`{command}` did not finish within {timeout:?}; killed\n--- stdout ---\n{}\n--- stderr ---\n{stderr}",
            String::from_utf8_lossy(&stdout)
        ),
    }
}

fn drain(pipe: Option<impl Read + Send + 'static>) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_end(&mut buf);
        }
        buf
    })
}

fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&shell_quote(a));
    }
    s
}

fn shell_quote(a: &OsStr) -> String {
    let a = a.to_string_lossy();
    if !a.is_empty()
        && a.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=,@%+".contains(c))
    {
        a.into_owned()
    } else {
        format!("'{}'", a.replace('\'', r"'\''"))
    }
}

/// Runs a paramiko script against the SFTP server on 127.0.0.1:`port` and returns what it printed;
/// `body` may use `transport(source='127.0.0.1')` (a started client transport) and
/// `try_password(t, user, pw)` (`'ok'` or `'refused'`). After a first authentication attempt,
/// further ones on the same connection ask for userauth directly, as OpenSSH does: stock paramiko
/// re-sends the `ssh-userauth` service request before each attempt, which russh does not answer.
/// Fails the test, with the install hint, if paramiko is missing or the script fails.
pub fn paramiko_script(port: u16, body: &str) -> String {
    let script = format!(
        "import paramiko, socket\n\
         from paramiko.message import Message\n\
         def transport(source='127.0.0.1'):\n\
         \x20   s = socket.create_connection(('127.0.0.1', {port}), timeout=15, source_address=(source, 0))\n\
         \x20   t = paramiko.Transport(s)\n\
         \x20   t.start_client(timeout=15)\n\
         \x20   return t\n\
         STOCK_REQUEST = paramiko.auth_handler.AuthHandler._request_auth\n\
         def request(self):\n\
         \x20   if getattr(self.transport, 'userauth_accepted', False):\n\
         \x20       m = Message(); m.add_string('ssh-userauth'); m.rewind()\n\
         \x20       self._parse_service_accept(m)\n\
         \x20   else:\n\
         \x20       self.transport.userauth_accepted = True\n\
         \x20       STOCK_REQUEST(self)\n\
         paramiko.auth_handler.AuthHandler._request_auth = request\n\
         def try_password(t, user, pw):\n\
         \x20   try:\n\
         \x20       t.auth_password(user, pw)\n\
         \x20       return 'ok'\n\
         \x20   except paramiko.AuthenticationException:\n\
         \x20       return 'refused'\n\
         {body}\n"
    );
    let out = std::process::Command::new("python3")
        .args(["-c", &script])
        .output()
        .expect("python3 (install with scripts/install-test-deps.sh)");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("No module named 'paramiko'"),
        "paramiko is not installed; run scripts/install-test-deps.sh"
    );
    assert!(
        out.status.success(),
        "paramiko script failed:\n{stdout}\n{stderr}"
    );
    stdout
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[should_panic(expected = "scripts/install-test-deps.sh")]
    fn a_missing_client_fails_the_test_with_the_install_hint() {
        skip_unless("ferry-test-no-such-client");
    }

    #[test]
    #[should_panic(expected = "python module `ferry_test_no_such_module` is not installed")]
    fn a_missing_python_module_fails_the_test() {
        skip_unless_python_module("ferry_test_no_such_module");
    }

    #[test]
    fn a_present_client_runs_and_its_output_is_kept() {
        assert!(!skip_unless("sh"));
        let r = run(
            Command::new("sh").args(["-c", "echo out; echo err >&2; exit 3"]),
            None,
        );
        assert_eq!(
            (r.out().as_str(), r.stderr.as_str(), r.code()),
            ("out\n", "err\n", Some(3))
        );
    }
}
