//! The test support of pidguard's crates (not published): one copy, used
//! by the integration tests of `pidguard`, `pidguard-cli` and
//! `pidguard-etcd` (`use testkit::*;` or named items).
//!
//! - [`helper`]: helper processes, the test binary re-executed in a role
//!   ([`ROLE`], `PIDGUARD_TEST_ROLE`), reporting behind a marker;
//! - [`process`]: processes a test owns ([`Owned`]) or started and pinned
//!   by pidfd ([`Pinned`]), waits ([`wait_for`], [`pid_in`],
//!   [`wait_running`], [`wait_verified`]…), and the strace
//!   seam for "never signals" checks ([`Seam`], [`under_strace`]);
//! - [`cli`]: the `pidguard` binary under test, PID files written by hand,
//!   the contents every rule rejects ([`rejected_contents`]);
//! - [`kernel`]: kernel identity records and pidfs inodes;
//! - [`skip`]: tests that cannot run their body record why
//!   (`target/tmp/skipped/`, listed by `./test.sh`); a missing tool fails
//!   under `CI=true`;
//! - [`etcd`]: what the etcd tests share.
//!
//! The environment it reads: `PIDGUARD_TEST_ROLE` (a helper's role), `CI`
//! (a missing tool fails instead of skipping), and at run time
//! `CARGO_BIN_EXE_pidguard` when the runner sets it.
//!
//! Not in the published packages: cargo drops this path dependency when
//! packaging, and the tests that use it are left out of the packages
//! (`.ci/package`).

pub mod cli;
pub mod etcd;
pub mod helper;
pub mod kernel;
pub mod process;
pub mod skip;

pub use cli::*;
pub use helper::*;
pub use kernel::*;
pub use process::*;
pub use skip::*;
