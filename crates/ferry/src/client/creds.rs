//! Who logs in: user and password from the URL, `--user`, `$FERRY_PASSWORD`, `~/.netrc`, or a no-echo
//! prompt when standard input is a terminal; SSH keys from `--identity` or `~/.ssh`.

use std::io::IsTerminal;
use std::path::PathBuf;

use ferry_client::remote::Credentials;
use ferry_client::url::{RemoteUrl, Scheme};
use ferry_client::Secret;

use super::args::ClientOptions;

/// The environment variable holding the password.
pub const PASSWORD_ENV: &str = "FERRY_PASSWORD";

/// The environment variable holding the passphrase of passphrase-protected SSH key files.
pub const KEY_PASSPHRASE_ENV: &str = "FERRY_KEY_PASSPHRASE";

/// Credentials for `url`, without prompting.
pub fn resolve(url: &RemoteUrl, opts: &ClientOptions) -> Credentials {
    let netrc = home().and_then(|h| std::fs::read_to_string(h.join(".netrc")).ok());
    let from_netrc = netrc.as_deref().and_then(|t| netrc_lookup(t, &url.host));
    let user = url
        .user
        .clone()
        .or_else(|| opts.user.clone())
        .or_else(|| from_netrc.as_ref().and_then(|(u, _)| u.clone()))
        .unwrap_or_else(|| match url.scheme {
            Scheme::Sftp => std::env::var("USER").unwrap_or_else(|_| "root".into()),
            _ => "anonymous".into(),
        });
    let password = url
        .password
        .clone()
        .or_else(|| {
            std::env::var(PASSWORD_ENV)
                .ok()
                .filter(|p| !p.is_empty())
                .map(Secret::new)
        })
        .or_else(|| {
            from_netrc
                .as_ref()
                .filter(|(u, _)| u.as_deref().is_none_or(|u| u == user))
                .and_then(|(_, p)| p.clone())
                .map(Secret::new)
        });
    let identities = if opts.identity.is_empty() {
        home()
            .map(|h| {
                ["id_ed25519", "id_ecdsa", "id_rsa"]
                    .iter()
                    .map(|n| h.join(".ssh").join(n))
                    .filter(|p| p.is_file())
                    .collect()
            })
            .unwrap_or_default()
    } else {
        opts.identity.clone()
    };
    // The SSH agent, as OpenSSH finds it; its keys are tried first.
    let agent = std::env::var_os("SSH_AUTH_SOCK")
        .filter(|v| !v.is_empty())
        .map(std::path::PathBuf::from);
    let key_passphrase = std::env::var(KEY_PASSPHRASE_ENV)
        .ok()
        .filter(|p| !p.is_empty())
        .map(Secret::new);
    Credentials {
        user,
        password,
        identities,
        agent,
        key_passphrase,
    }
}

/// Asks on the terminal (no echo) for the passphrase of the first passphrase-protected key file among
/// `identities`; `None` when none is protected or standard input is not a terminal.
pub fn prompt_key_passphrase(identities: &[PathBuf]) -> Option<Secret> {
    if !std::io::stdin().is_terminal() {
        return None;
    }
    let key = identities
        .iter()
        .find(|p| ferry_client::sftp::key_is_encrypted(p))?;
    rpassword::prompt_password(format!("Passphrase for key {}: ", key.display()))
        .ok()
        .filter(|p| !p.is_empty())
        .map(Secret::new)
}

/// Asks for the password on the terminal (no echo); `None` when standard input is not a terminal.
pub fn prompt(url: &RemoteUrl, user: &str) -> Option<Secret> {
    if !std::io::stdin().is_terminal() {
        return None;
    }
    rpassword::prompt_password(format!("Password for {user}@{}: ", url.authority()))
        .ok()
        .map(Secret::new)
}

/// Whether a person is at the terminal (standard input and standard error both terminals).
pub fn interactive() -> bool {
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// The user's home directory.
pub fn home() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
}

/// `(login, password)` of the `machine` entry for `host` (else `default`) in netrc text.
fn netrc_lookup(text: &str, host: &str) -> Option<(Option<String>, Option<String>)> {
    let mut tokens = text.split_whitespace();
    let mut found: Option<(Option<String>, Option<String>)> = None;
    let mut default: Option<(Option<String>, Option<String>)> = None;
    let mut current: Option<bool> = None; // Some(true) = our machine, Some(false) = default
    while let Some(tok) = tokens.next() {
        match tok {
            "machine" => {
                if found.is_some() {
                    break;
                }
                current = (tokens.next() == Some(host)).then_some(true);
                if current.is_some() {
                    found = Some((None, None));
                }
            }
            "default" => {
                if found.is_some() {
                    break;
                }
                current = Some(false);
                default = Some((None, None));
            }
            "login" | "password" => {
                let value = tokens.next().map(str::to_owned);
                let slot = match current {
                    Some(true) => found.as_mut(),
                    Some(false) => default.as_mut(),
                    None => None,
                };
                if let Some(entry) = slot {
                    if tok == "login" {
                        entry.0 = value;
                    } else {
                        entry.1 = value;
                    }
                }
            }
            "macdef" => break,
            _ => {}
        }
    }
    found.or(default)
}

#[cfg(test)]
mod tests {
    use super::netrc_lookup;

    #[test]
    fn netrc_machine_then_default() {
        let text = "machine a.example login alice password pw1\ndefault login anon password x\n";
        assert_eq!(
            netrc_lookup(text, "a.example"),
            Some((Some("alice".into()), Some("pw1".into())))
        );
        assert_eq!(
            netrc_lookup(text, "b.example"),
            Some((Some("anon".into()), Some("x".into())))
        );
        assert_eq!(netrc_lookup("machine z login q", "a"), None);
    }
}
