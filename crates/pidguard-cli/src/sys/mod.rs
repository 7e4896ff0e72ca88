//! The command's platform seam: the only code in the CLI that names
//! rustix, kernel32 or reads `/proc` (`tests/seam.rs` keeps it so). The
//! library's own seam (`pidguard/src/sys/`) does the PID-file protocol;
//! this one has what supervising and daemonizing need.
//!
//! Chosen by `cfg` here and nowhere else, as the library's seam is:
//!
//! - `unix.rs`: every Unix (through rustix): waiting, process groups,
//!   descriptor passing; with `linux.rs` (`/proc`, pidfds, `prctl`) or
//!   `other.rs` (FreeBSD, macOS…, where the process tree is unknown) on top.
//!   `supervise/`'s Unix mechanisms (the gate, signal forwarding, daemons,
//!   jobs, etcd) use these.
//! - `windows/`: what `run` needs on Windows (docs/WINDOWS.md, decision 9):
//!   a Job object with `JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE` that the
//!   supervisor joins before it spawns the command, and a console control
//!   handler; kernel32 calls declared by hand in `windows/ffi.rs`, as the
//!   library's are. `supervise/windows.rs` uses these.

#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub(crate) use unix::*;

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
pub(crate) use linux::*;

#[cfg(all(unix, not(target_os = "linux")))]
mod other;
#[cfg(all(unix, not(target_os = "linux")))]
pub(crate) use other::*;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub(crate) use windows::*;
