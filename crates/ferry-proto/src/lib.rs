//! I/O-free FTP protocol core for ferry.
//!
//! This crate knows what FTP *means* and nothing about how bytes move: it has no sockets, no clock, no
//! filesystem and no async runtime. The glue (`ferry-ftpd`, and later `ferry-client`) feeds it bytes, lines,
//! storage results and the current time, and drains the actions it asks for.
//!
//! - [`telnet`]: RFC 854 NVT decoding of the control stream and line framing with a hard length limit.
//! - [`command`]: parsing of every RFC 959/775/2389/2428/3659/2640 verb into [`command::Command`].
//! - [`reply`]: reply codes as named constants and the single/multi-line reply encoder.
//! - [`addr`]: PORT/PASV and EPRT/EPSV address codecs, IPv4 and IPv6.
//! - [`listing`]: LIST (`ls -l`), NLST and MLSD/MLST formatting.
//! - [`reply_parser`], [`listing_parser`]: the client side — replies and LIST/MLSD lines from a server.
//! - [`hash`]: checksum algorithms, names and argument/reply parsers for FTP `HASH` and SFTP `check-file`.
//! - [`glob`]: bounded `*`/`?` wildcards for the last component of LIST/NLST arguments.
//! - [`path`]: virtual path normalisation that can never climb above `/`.
//! - [`ascii`]: TYPE A line-ending conversion, streaming.
//! - [`session`]: the per-connection state machine (`handle_*` in, `poll_output` out, `now` passed in).
//! - [`untrusted`]: peer-provided strings bounded and escaped for logs (FTP and SFTP alike).
//!
//! What it deliberately does not do: touch the network or disk, decide TLS policy details, or verify
//! passwords. Those belong to the glue and to `ferry-auth`.
#![forbid(unsafe_code)]

pub mod addr;
pub mod ascii;
pub mod command;
pub mod glob;
pub mod hash;
pub mod limits;
pub mod listing;
pub mod listing_parser;
pub mod path;
pub mod reply;
pub mod reply_parser;
pub mod session;
pub mod telnet;
pub mod untrusted;
