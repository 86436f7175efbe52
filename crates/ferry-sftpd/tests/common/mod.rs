//! The SFTP test harness lives in the shared test kit (`crates/ferry-testkit`); this module keeps the
//! `common::…` paths of the test files working.
#![allow(unused_imports)]

pub use ferry_testkit::clients::{on_path, require, skip_unless_python_module};
pub use ferry_testkit::sftp::*;
pub use ferry_testkit::wait::{wait_every, wait_until};
