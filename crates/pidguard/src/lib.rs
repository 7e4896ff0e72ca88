//! PID files that get the hard cases right.
//!
//! A PID file is a small file holding a running process's ID. Daemons write
//! it at start-up; scripts, init systems and other tools read it to check
//! liveness, to send signals, and to refuse a second instance. pidguard makes
//! each of those safe:
//!
//! * **One instance.** The file is locked (`flock(LOCK_EX)`) for as long as
//!   its [`Guard`] lives. The lock is on the PID file's own inode, so
//!   pidguard interoperates with `flock(1)`, BSD/libbsd `pidfile(3)` and
//!   Python's `pid` package on the same path: whoever locks first wins.
//! * **No half-written files.** A new file is written and locked before it
//!   gets its name (`O_TMPFILE` + `linkat` on Linux), so a reader sees no
//!   file, or a complete and locked one.
//! * **Stale files are taken over safely.** A crashed holder's lock dies with
//!   it; the next [`Pidfile::acquire`] locks the old file in place, checks
//!   that the path still names the inode it locked, and rewrites it.
//! * **Release never removes a successor's file.** The file is unlinked only
//!   if the path still names the guard's inode, and while the lock is still
//!   held.
//! * **Never 0, never negative.** A [`Pid`] cannot hold 0 or a negative
//!   value, so `kill(0, …)` and `kill(-1, …)` cannot be reached from a file's
//!   content. The parser ([`pid::parse`]) rejects empty files, signs, hex,
//!   octal-looking numbers, values above the kernel's `pid_max`, NUL bytes
//!   and overlong files, each with its own [`ParseErrorKind`].
//! * **Hostile paths are refused.** A symlink, directory, FIFO, socket,
//!   device or hard-linked file at the path is never opened for writing
//!   ([`ErrorKind::UnsafeFile`]).
//!
//! # Example
//!
//! ```
//! # let dir = tempfile::tempdir().unwrap();
//! # let path = dir.path().join("myapp.pid");
//! use pidguard::{ErrorKind, Pidfile};
//!
//! let guard = match Pidfile::new(&path).acquire() {
//!     Ok(guard) => guard,
//!     Err(e) if e.kind() == ErrorKind::AlreadyRunning => {
//!         eprintln!("already running as PID {:?}", e.holder());
//!         return Ok(());
//!     }
//!     Err(e) => return Err(e.into()),
//! };
//! // ... the daemon's work, as the only instance ...
//! guard.release()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! For standard locations use [`Pidfile::named`] (`/run/app.pid` for root,
//! `$XDG_RUNTIME_DIR/app/app.pid` for a user; see [`location`]).
//!
//! # The lock protocol
//!
//! See [`pidfile`] for the exact steps of acquire, take-over and release.
//! Readers ([`status`], [`read`]) probe the lock with a shared lock held for
//! an instant, and give a locked file that is empty (or names a dead
//! process) a few milliseconds to be written before they report.
//!
//! # Platform notes
//!
//! Unix only. On Linux, new files are created with `O_TMPFILE`; on other
//! Unix systems (and Linux filesystems without `O_TMPFILE`) under a
//! temporary name that is `link(2)`ed into place. Zombies are recognised as
//! dead on Linux only (through `/proc`). `flock` locks are local to a host:
//! on NFS they may be emulated or not shared between clients.
//!
//! # Beyond one host
//!
//! With the feature `etcd`, the module `etcd` offers the same guarantee
//! across a cluster: a lock on an etcd lease (`etcd::Lock`, `etcd::Guard`),
//! with a fencing token and loss detection (see `docs/ETCD.md`).
#![deny(missing_docs)]
#![cfg(unix)]

#[cfg(feature = "tokio")]
pub mod asyncio;
#[cfg(feature = "signal-cleanup")]
pub mod cleanup;
pub mod ensure;
mod error;
#[cfg(feature = "etcd")]
pub mod etcd;
mod exclusive;
pub mod identity;
pub mod location;
mod notify;
pub mod pid;
pub mod pidfile;
mod process;
pub mod registry;
pub mod signal;
mod status;
pub mod stop;
mod sys;

pub use error::{Error, ErrorKind, Result, UnsafeFile};
pub use exclusive::{run_exclusive, run_exclusive_with};
pub use identity::{Filters, Identity, Mismatch};
pub use notify::{notify_ready, notify_state};
pub use pid::{ParseError, ParseErrorKind, Pid, Rule};
pub use pidfile::{Guard, NetworkFs, Pidfile};
pub use process::{liveness, Liveness, Process};
pub use signal::{Schedule, Signal, Step, SyntaxError};
pub use status::{inspect, read, read_with, status, Inspection, Status};
pub use stop::{send_signal, stop, wait, Outcome, Report};

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
