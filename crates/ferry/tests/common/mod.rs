//! The `ferry` binary's harness lives in the shared test kit (`crates/ferry-testkit`); this module keeps
//! the `common::…` paths of the test files working.
#![allow(unused_imports, dead_code)]

pub use ferry_testkit::binary::*;
pub use ferry_testkit::clients::{on_path, require, run, run_timeout, skip_unless, Run};
pub use ferry_testkit::wait::{wait_every, wait_until};

/// The `ferry` binary under test, for tests that run it through a shell.
pub const BIN: &str = env!("CARGO_BIN_EXE_ferry");
