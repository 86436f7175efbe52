//! Virtual paths: the normalised, absolute view of a user's tree that every FTP command works on.
//!
//! The type and its normaliser live in `ferry-vfs-types` so that the SFTP server and the storage layer
//! use the very same one; see [`VPath`].

pub use ferry_vfs_types::path::{PathError, VPath};
