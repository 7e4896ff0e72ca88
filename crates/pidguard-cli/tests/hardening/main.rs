//! The adversarial suite (issue 6): races, crashes, faults, hostile input,
//! PID reuse and containers. `docs/GUARANTEES.md` names the test that proves
//! each guarantee.
//!
//! Every scenario records its outcome with [`summary::passed`] or
//! [`summary::skipped`]; `./test.sh` prints the summary at the end.
//! Longer soak runs: `PIDGUARD_SOAK=1 ./test.sh` (scenarios scale their
//! round counts with [`summary::soak`]).
#![cfg(unix)]

mod containers;
mod crashes;
mod evidence;
mod faults;
mod hostile;
// Kernel identity records (pidfs, user extended attributes): Linux only.
#[cfg(target_os = "linux")]
mod kernel_identity;
mod races;
mod reuse;
mod summary;
