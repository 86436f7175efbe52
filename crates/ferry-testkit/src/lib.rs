//! The test kit shared by the integration tests of ferry-ftpd, ferry-sftpd and ferry: what those
//! suites used to carry as copies in their `tests/common` modules (which are now thin re-exports).
//!
//! - [`clients`]: run real client programs with a time limit. A missing client program fails the
//!   test with the install hint under a plain `cargo test` too — never a silent pass.
//! - [`ftp`]: an in-process ferry FTP server over a temp dir, a raw control-connection client, the
//!   Python FTPS helper and resource probes.
//! - [`sftp`]: an in-process ferry SFTP server with a user key made by `ssh-keygen`.
//! - [`binary`]: the `ferry` binary in a temp dir, a `ferry serve` child read line by line, a small
//!   FTP control client.
//! - [`wait`]: waiting for a condition with a deadline rather than sleeping a fixed time.
//! - [`files`]: hashes, pseudo-random content and file trees.
//!
//! It is not published and is not part of ferry; it may panic freely (it is test code).
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used)]

pub mod binary;
pub mod clients;
pub mod files;
pub mod ftp;
pub mod logs;
pub mod sftp;
pub mod wait;
