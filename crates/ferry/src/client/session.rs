//! Connecting with the user's trust settings and credentials, with retries on transient failures.

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use ferry_client::remote::{ConnectOptions, Credentials};
use ferry_client::trust::{config_dir, Confirm, Fingerprint, TrustOptions};
use ferry_client::url::{RemoteUrl, Scheme};
use ferry_client::{Error, Remote, Secret};

use super::args::ClientOptions;
use super::creds;

/// What every command needs to reach servers.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub opts: ClientOptions,
    connect: ConnectOptions,
    /// Also told of every chunk transferred (the shell's `hash` marks).
    pub tick: Option<Tick>,
    /// The total bar of a multi-file operation.
    pub total: Option<super::output::Total>,
    /// The SSH key passphrase asked for on the terminal, asked once for every connection of this run.
    asked_passphrase: Arc<OnceLock<Option<Secret>>>,
    /// Passwords asked for on the terminal, by `user@host:port`: asked once for every connection of
    /// this run to that server (never sent to another).
    asked_passwords: Arc<Mutex<HashMap<String, Secret>>>,
}

/// A second progress observer, besides the progress bar.
#[derive(Clone)]
pub struct Tick(pub Arc<dyn Fn(u64) + Send + Sync>);

impl std::fmt::Debug for Tick {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tick")
    }
}

impl Ctx {
    /// Reports `n` bytes transferred to the tick observer, if any.
    pub fn tick(&self, n: u64) {
        if let Some(t) = &self.tick {
            (t.0)(n);
        }
        if let Some(t) = &self.total {
            t.inc(n);
        }
    }

    /// One file of a multi-file operation is finished.
    pub fn file_done(&self) {
        if let Some(t) = &self.total {
            t.file_done();
        }
    }
}

impl Ctx {
    /// Validates the flags.
    pub fn new(opts: &ClientOptions) -> Result<Ctx, Error> {
        let pin = match &opts.pin {
            Some(p) => Some(Fingerprint::parse(p).ok_or_else(|| {
                Error::Usage(format!(
                    "--pin {p}: expected a SHA-256 fingerprint such as SHA256:AB:CD:… (64 hex digits)"
                ))
            })?),
            None => None,
        };
        let mut known_hosts: Vec<PathBuf> = creds::home()
            .map(|h| vec![h.join(".ssh").join("known_hosts")])
            .unwrap_or_default();
        known_hosts.push(PathBuf::from("/etc/ssh/ssh_known_hosts"));
        let trust = TrustOptions {
            trust_on_first_use: opts.trust_on_first_use,
            pin,
            insecure: opts.danger_accept_any_certificate,
            known_certs: config_dir().map(|d| d.join("known_certs")),
            known_hosts,
            confirm: creds::interactive().then(|| Confirm(Arc::new(ask_first_contact))),
        };
        if opts.timeout == 0 {
            return Err(Error::Usage("--timeout must be at least 1 second".into()));
        }
        Ok(Ctx {
            opts: opts.clone(),
            connect: ConnectOptions {
                timeout: Duration::from_secs(opts.timeout),
                trust,
                active: opts.active,
            },
            tick: None,
            total: None,
            asked_passphrase: Arc::new(OnceLock::new()),
            asked_passwords: Arc::default(),
        })
    }

    /// FTP: active or passive data connections for sessions opened from now on.
    pub fn set_active(&mut self, active: bool) {
        self.opts.active = active;
        self.connect.active = active;
    }

    /// Parses a remote URL argument.
    pub fn url(arg: &str) -> Result<RemoteUrl, Error> {
        RemoteUrl::parse(arg)?.ok_or_else(|| {
            Error::Usage(format!(
                "`{arg}` is not a URL (ftp://, ftpes://, ftps:// or sftp://)"
            ))
        })
    }

    /// Connects and logs in, prompting for a password on a terminal when none was given, retrying
    /// transient failures.
    pub async fn connect(&self, url: &RemoteUrl) -> Result<Remote, Error> {
        let mut creds = self.credentials(url)?;
        let result = self.retry(|| self.connect_once(url, creds.clone())).await;
        match result {
            // SFTP keys were refused: ask for a password once, if there is a terminal.
            Err(Error::Auth(_)) if url.scheme == Scheme::Sftp && creds.password.is_none() => {
                match creds::prompt(url, &creds.user) {
                    Some(pw) => {
                        creds.password = Some(pw);
                        self.connect_once(url, creds).await
                    }
                    None => result,
                }
            }
            other => other,
        }
    }

    /// For callers that open many sessions themselves (`ferry bench`): the credentials for `url`, a
    /// password asked for at most once, and the connection options. No retries happen on this path.
    pub fn credentials_once(&self, url: &RemoteUrl) -> Result<(Credentials, ConnectOptions), Error> {
        Ok((self.credentials(url)?, self.connect.clone()))
    }

    /// The credentials for `url`: from the URL, flags, environment or ~/.netrc; a key passphrase and a
    /// password asked on a terminal at most once per command (per user and server).
    fn credentials(&self, url: &RemoteUrl) -> Result<Credentials, Error> {
        let mut creds = creds::resolve(url, &self.opts);
        let wants_password = match url.scheme {
            Scheme::Sftp => creds.identities.is_empty() && creds.agent.is_none(),
            _ => creds.user != "anonymous" && creds.user != "ftp",
        };
        if url.scheme == Scheme::Sftp && creds.key_passphrase.is_none() {
            creds.key_passphrase = self
                .asked_passphrase
                .get_or_init(|| creds::prompt_key_passphrase(&creds.identities))
                .clone();
        }
        if creds.password.is_none() && wants_password {
            let key = format!("{}@{}", creds.user, url.authority());
            let asked = self
                .asked_passwords
                .lock()
                .ok()
                .and_then(|m| m.get(&key).cloned());
            creds.password = asked.or_else(|| {
                let pw = creds::prompt(url, &creds.user)?;
                if let Ok(mut m) = self.asked_passwords.lock() {
                    m.insert(key, pw.clone());
                }
                Some(pw)
            });
            if creds.password.is_none() && url.scheme != Scheme::Sftp {
                return Err(Error::Auth(format!(
                    "no password for {}: put it in ${}, in ~/.netrc, or run on a terminal to be asked",
                    creds.user,
                    creds::PASSWORD_ENV
                )));
            }
        }
        Ok(creds)
    }

    /// How many connections a multi-connection operation opens: `wanted` (its `-j`/`-P`/`-n`), at
    /// most `--max-connections`, and no more than it has `items` to spread.
    pub fn connections(&self, wanted: u16, items: usize) -> usize {
        usize::from(wanted.min(self.opts.max_connections)).min(items)
    }

    /// One more connection for a parallel operation that already holds one: a single attempt, no
    /// retries. A refusal (typically the server's limit of connections per client) is not an error of
    /// the operation, which continues over the connections it has: `None`, with a note.
    pub async fn extra_connection(&self, url: &RemoteUrl) -> Option<Remote> {
        let mut creds = creds::resolve(url, &self.opts);
        if url.scheme == Scheme::Sftp && creds.key_passphrase.is_none() {
            creds.key_passphrase = self.asked_passphrase.get().cloned().flatten();
        }
        let key = format!("{}@{}", creds.user, url.authority());
        if let Some(pw) = self
            .asked_passwords
            .lock()
            .ok()
            .and_then(|m| m.get(&key).cloned())
        {
            creds.password.get_or_insert(pw);
        }
        match self.connect_once(url, creds).await {
            Ok(r) => Some(r),
            Err(e) => {
                if !EXTRA_REFUSED.swap(true, std::sync::atomic::Ordering::Relaxed) {
                    eprintln!(
                        "ferry: note: {} refused another connection ({e}); continuing over fewer connections",
                        url.authority()
                    );
                }
                None
            }
        }
    }

    async fn connect_once(&self, url: &RemoteUrl, creds: Credentials) -> Result<Remote, Error> {
        let mut remote = Remote::connect(url, &creds, &self.connect).await?;
        if self.opts.ascii {
            if let Err(e) = remote.set_ascii(true).await {
                remote.close().await;
                return Err(e);
            }
        }
        Ok(remote)
    }

    /// Runs `op` until it succeeds, fails for good, or `--retries` retryable failures have happened,
    /// waiting 1 s, 2 s, 4 s … (at most 60 s) in between.
    pub async fn retry<T, F, Fut>(&self, mut op: F) -> Result<T, Error>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Error>>,
    {
        let mut attempt = 0u32;
        loop {
            match op().await {
                Err(e) if e.is_retryable() && attempt < self.opts.retries => {
                    self.backoff(attempt, Some(&e)).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// Waits before retry number `attempt + 1`: 1 s, 2 s, 4 s … at most 60 s.
    pub async fn backoff(&self, attempt: u32, cause: Option<&Error>) {
        let wait = Duration::from_secs(1u64 << attempt.min(6)).min(Duration::from_secs(60));
        if let Some(e) = cause {
            eprintln!("ferry: {e}; retrying in {} s", wait.as_secs());
        }
        tokio::time::sleep(wait).await;
    }
}

/// The note about a refused extra connection is printed once per run.
static EXTRA_REFUSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Asks on the terminal whether to trust a server seen for the first time.
fn ask_first_contact(what: &str) -> bool {
    use std::io::Write;
    eprint!("ferry: {what}.\nferry: Is this the server you meant? Trust it and remember it? [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    if std::io::stdin().read_line(&mut answer).is_err() {
        return false;
    }
    matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes")
}
