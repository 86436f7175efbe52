//! What a user may do: the storage policy layer's own type (parsed from and shown as `list,read,…`),
//! so the user database, the settings and both front ends share one definition.

pub use ferry_vfs_types::Permissions;
