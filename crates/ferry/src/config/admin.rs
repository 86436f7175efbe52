//! The `[admin]` table: the HTTP listener for `/metrics`, `/healthz` and `/readyz`.

use std::net::SocketAddr;

/// Validated admin-listener settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminSettings {
    /// Listening addresses; empty: no admin listener.
    pub listen: Vec<SocketAddr>,
    /// Whether the addresses were configured (a flag, the environment or the file) rather than the
    /// default. A default address that is taken only costs a warning; a configured one is an error.
    pub configured: bool,
}
