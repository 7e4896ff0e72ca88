//! The mechanisms of supervision: taking the lock, starting a command
//! under it (the gate), forwarding signals, following a command that
//! forks itself into the background, starting daemons, containing a job,
//! and supervision on etcd. `commands/` calls these; nothing here imports
//! `commands/`.
//!
//! The modules below are Unix mechanisms; on Windows `windows.rs` provides
//! the same names (`foreground::supervise` over a Job object, and the
//! refusals of what Windows does not have: `--exec`, `--daemon`,
//! `--notify`, `ensure`, `--backend`), so `commands/` is the same on every
//! platform.

#[cfg(unix)]
pub mod daemon;
#[cfg(unix)]
pub mod etcd;
#[cfg(unix)]
pub mod foreground;
#[cfg(unix)]
pub mod gate;
#[cfg(unix)]
pub mod job;
#[cfg(unix)]
pub mod tree;
#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub use unix::*;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub use windows::*;

mod common;
// The Unix modules import these as `supervise::…`.
#[allow(unused_imports)]
pub use common::*;
