// The front page opens with the crate's README (also the crates.io page),
// whose examples run as doctests.
#![doc = include_str!("../README.md")]
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
