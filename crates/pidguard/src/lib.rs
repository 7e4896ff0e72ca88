// The front page opens with the crate's README (also the crates.io page),
// whose examples run as doctests.
#![doc = include_str!("../README.md")]
//!
//! # The lock protocol
//!
//! 1. **Create**: the new file is made unnamed (`O_TMPFILE`, or a temporary
//!    name where that is unsupported) in the target directory, the PID is
//!    written, the file is locked (`flock(LOCK_EX)`), and only then is it
//!    linked into place with `linkat`. A reader never sees it half-written or
//!    unlocked. `EEXIST` means the path exists: go to 2.
//! 2. **Take over**: the existing file is opened without following symlinks
//!    or blocking, and locked in place without waiting. If the lock is held,
//!    another instance runs (a holder found mid-write is given a few
//!    milliseconds). If the lock is taken, the path must still name the
//!    locked inode (dev/ino compared); if not, start over. Then the content is
//!    rewritten in place. The inode at the path never changes while the file
//!    exists, so everyone locks the same inode.
//!
//!    Unless the process's last acquire created its file, step 2 is tried
//!    first (a file left behind by `run --exec` or a crash is the common
//!    case on a restart): a path it finds missing, or cannot look at, goes
//!    to step 1. The outcome is the same in either order.
//! 3. **Release**: if the path still names our inode, unlink it while still
//!    holding the lock, then close. A late release never removes a
//!    successor's file; a guard dropped in a forked child removes nothing.
//!
//! Readers ([`status`], [`read`]) probe the lock with a shared lock held for
//! an instant, and give a locked file that is empty (or names a dead
//! process) a few milliseconds to be written before they report.
//!
//! # Whose PID is it?
//!
//! Every PID read from a file gets a verdict, an [`Identity`], from facts
//! about the process and the file (each read, or [`Unproved`] when it could
//! not be): [`Identity::Verified`] (it holds the file's lock),
//! [`Identity::Consistent`], [`Identity::Unproved`] or
//! [`Identity::Mismatched`] (a reused PID, PID 1, another namespace, a
//! filter that does not match; see [`Mismatch`]). Only verified and
//! consistent PIDs are ever signalled: [`stop`], [`send_signal`], [`wait`]
//! and [`inspect`] apply these checks, with the optional [`Filters`].
//!
//! # Platform notes
//!
//! Unix and Windows (other targets fail to build, saying so). On Linux, new files
//! are created with `O_TMPFILE`; on other Unix systems (and Linux
//! filesystems without `O_TMPFILE`) under a temporary name that is
//! `link(2)`ed into place. Process identity is read from `/proc`, on Linux
//! only: on FreeBSD, macOS and the other BSDs (which build, and are
//! checked in CI, but are not tested) every fact about a live process is
//! unproved, so [`stop`] and [`send_signal`] refuse to signal it
//! ([`Identity::Unproved`]); zombies count as alive there until reaped.
//! `flock` locks are local to a host: on NFS they may be emulated or not
//! shared between clients.
//!
//! On Windows (built and tested under Wine in CI; docs/WINDOWS.md) the
//! lock is `LockFileEx` on one byte past the content, a new file is
//! renamed into place without replacing, release deletes the held file by
//! handle, and process facts come from a process handle (`OpenProcess`):
//! who holds a lock cannot be read there, so a holder is at best
//! [`Identity::Consistent`], never verified. Only `KILL` (`TerminateProcess`)
//! and 0 can be sent; [`Pidfile::mode`] and [`Pidfile::owner`] are not
//! supported; `ensure`, the `signal-cleanup` feature and
//! `Registry::spawn` are Unix only.
//!
//! # Beyond one host
//!
//! The crate `pidguard-etcd` offers the same guarantee across a cluster: a
//! lock on an etcd lease (`pidguard_etcd::Lock`, `pidguard_etcd::Guard`),
//! with a fencing token and loss detection (see `docs/ETCD.md`). It depends
//! on this crate; this crate knows nothing of etcd.
#![deny(missing_docs)]

// Unix and Windows only: say so on any other target, rather than fail
// with unresolved imports. There every module below is left out, so that
// this is the only error.
#[cfg(not(any(unix, windows)))]
compile_error!(
    "pidguard supports Unix and Windows only: Linux (every guarantee, through O_TMPFILE, \
     pidfds and /proc), FreeBSD, macOS and the other BSDs (flock-based locking and atomic \
     creation; process identity facts are unproved there), and Windows (LockFileEx; see \
     docs/WINDOWS.md). This target is neither."
);

/// Declares its items on the supported platforms only (see the
/// `compile_error!` above).
macro_rules! supported_only {
    ($($item:item)*) => { $(#[cfg(any(unix, windows))] $item)* };
}

supported_only! {
// Lowest first: each module imports only those above it (pid and signal
// import nothing; sys speaks in their types), checked by tests/layers.rs;
// README's Layout section says what each holds.
mod pid;
mod signal;
mod sys;
mod error;
mod fs;
mod read;
mod lock;
mod control;
#[cfg(unix)]
pub mod ensure;
pub mod registry;
mod exclusive;
mod notify;
#[cfg(all(unix, feature = "signal-cleanup"))]
pub mod cleanup;
#[cfg(feature = "tokio")]
pub mod asyncio;

pub use crate::{
    control::{
        probe_signal, run_schedule, send_signal, stop, wait, Outcome, Report, ScheduleEnd,
        ScheduleTarget,
    },
    error::{Error, ErrorKind, Result, UnsafeFile},
    exclusive::{run_exclusive, run_exclusive_with},
    fs::check_directory_links,
    lock::{Guard, NetworkFs, Pidfile},
    notify::{notify_ready, notify_state},
    pid::{EncodedPid, ParseError, ParseErrorKind, Pid, Rule},
    read::identity::{Fact, Filters, Identity, Mismatch, Unproved},
    read::kernel_id::DecidedBy,
    read::process::{liveness, start_time, Liveness, Process},
    read::status::{inspect, read, read_with, status, Inspection, Status},
    signal::{parse_duration, Schedule, Signal, Step, SyntaxError},
};
}
