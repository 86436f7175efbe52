//! A real OpenSSH `ssh-agent` on a private socket, with keys made by `ssh-keygen` and added with
//! `ssh-add`; killed on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running agent.
#[derive(Debug)]
pub struct SshAgent {
    child: Child,
    socket: PathBuf,
}

impl SshAgent {
    /// Starts `ssh-agent -D` with its socket in `dir` (fails the test with the install hint when
    /// OpenSSH's client tools are missing).
    pub fn start(dir: &Path) -> SshAgent {
        for tool in ["ssh-agent", "ssh-add", "ssh-keygen"] {
            crate::clients::require(tool);
        }
        let socket = dir.join("agent.sock");
        let child = Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&socket)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start ssh-agent");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !socket.exists() {
            assert!(
                Instant::now() < deadline,
                "ssh-agent did not create {}",
                socket.display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        SshAgent { child, socket }
    }

    /// The socket, for `SSH_AUTH_SOCK`.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Makes an ed25519 key `path` (and `path.pub`) and adds it to the agent; returns the public key
    /// line.
    pub fn add_new_key(&self, path: &Path, comment: &str) -> String {
        let st = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
            .arg(path)
            .status()
            .expect("ssh-keygen");
        assert!(st.success(), "ssh-keygen failed");
        let st = Command::new("ssh-add")
            .arg("-q")
            .arg(path)
            .env("SSH_AUTH_SOCK", &self.socket)
            .stderr(Stdio::null())
            .status()
            .expect("ssh-add");
        assert!(st.success(), "ssh-add failed");
        std::fs::read_to_string(path.with_extension("pub"))
            .expect("public key")
            .trim()
            .to_owned()
    }
}

impl Drop for SshAgent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
