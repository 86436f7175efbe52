//! ferry's client library: FTP, FTPS (explicit `AUTH TLS` and implicit) and SFTP.
//!
//! - [`url`]: `ftp://`, `ftpes://` (explicit TLS), `ftps://` (implicit TLS) and `sftp://` URLs.
//! - [`ftp`]: an FTP/FTPS session over ferry-proto's reply and listing parsers: EPSV first, PASV as the
//!   fallback with the announced address ignored in favour of the control connection's peer, `TYPE I`, TLS
//!   sessions resumed on data connections.
//! - [`sftp`]: an SSH connection (russh) carrying a small SFTP v3 client that pipelines reads and writes
//!   (64 requests in flight).
//! - [`trust`]: TLS certificates checked against the system roots, else against pins kept in the user's
//!   config dir (trust on first use only when asked); SSH host keys against OpenSSH `known_hosts` files.
//! - [`remote`]: one interface over both protocols, used by the `ferry get/put/ls/mirror` commands.
//! - [`names`]: what a hostile server can send: names and arguments that must never reach a command line
//!   or a local path.
//!
//! What it deliberately does not do: print, prompt, read the terminal, or install a tracing subscriber.
//! Prompts and progress belong to the binary, which passes passwords in and receives progress callbacks.
#![forbid(unsafe_code)]

pub mod error;
mod file;
pub mod ftp;
pub mod limits;
pub mod names;
pub mod remote;
pub mod secret;
pub mod sftp;
pub mod trust;
pub mod url;

pub use error::Error;
pub use remote::{Checksum, Entry, Remote};
pub use secret::Secret;
