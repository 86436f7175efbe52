//! Running a hook command: argv (no shell), the event as `FERRY_*` variables and as one line of
//! JSON on standard input, a time limit (the process is killed when it runs out).

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::Event;

/// Bytes of the command's output kept for messages.
const OUTPUT_KEPT: u64 = 4096;

/// Why a command did not succeed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Failure {
    #[error("hook command is empty")]
    Empty,
    #[error("cannot run the hook command {program}: {source}")]
    Spawn { program: String, source: std::io::Error },
    #[error("hook command exited with {status}{}", if first_line.is_empty() { String::new() } else { format!(": {first_line}") })]
    Exit { status: String, first_line: String },
    #[error("hook command did not finish within {0:?}; killed")]
    TimedOut(Duration),
}

/// Runs `argv` for `event`; `Ok` with its first output line when it exits 0.
pub(crate) async fn run(argv: &[String], event: &Event, timeout: Duration) -> Result<String, Failure> {
    let (program, args) = argv.split_first().ok_or(Failure::Empty)?;
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .envs(event.env())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().map_err(|source| Failure::Spawn {
        program: program.clone(),
        source,
    })?;
    let json = event.to_json() + "\n";
    let stdin = child.stdin.take();
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let work = async move {
        if let Some(mut stdin) = stdin {
            // A command that does not read its input is fine.
            let _ = stdin.write_all(json.as_bytes()).await;
            drop(stdin);
        }
        let (out, err) = tokio::join!(kept(stdout), kept(stderr));
        let status = child.wait().await;
        (status, out, err)
    };
    let (status, out, err) = tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| Failure::TimedOut(timeout))?;
    let status = status.map_err(|source| Failure::Spawn {
        program: program.clone(),
        source,
    })?;
    let first = |text: &str| {
        text.lines()
            .next()
            .unwrap_or("")
            .chars()
            .filter(|c| !c.is_control())
            .take(200)
            .collect::<String>()
    };
    if status.success() {
        Ok(first(&out))
    } else {
        let line = if out.trim().is_empty() {
            first(&err)
        } else {
            first(&out)
        };
        Err(Failure::Exit {
            status: status.to_string(),
            first_line: line,
        })
    }
}

/// The first [`OUTPUT_KEPT`] bytes of a stream; the rest is read and thrown away so the child
/// never blocks on a full pipe.
async fn kept<R: tokio::io::AsyncRead + Unpin>(stream: Option<R>) -> String {
    let Some(mut stream) = stream else {
        return String::new();
    };
    let mut buf = Vec::new();
    let _ = (&mut stream).take(OUTPUT_KEPT).read_to_end(&mut buf).await;
    let _ = tokio::io::copy(&mut stream, &mut tokio::io::sink()).await;
    String::from_utf8_lossy(&buf).into_owned()
}
