//! The platform seam: the only code in the crate that names rustix, libc
//! or `/proc` (`tests/seam.rs` keeps it so). Everything above it speaks in
//! [`Pid`], [`Signal`](crate::Signal), paths, descriptors, [`Stat`] and
//! [`Errno`].
//!
//! # The contract
//!
//! This file holds the types every platform shares. `unix.rs` holds what
//! every Unix system offers the same way (through rustix): opening without
//! following symlinks, `stat`, `flock`, `pread` / `pwrite`, `kill`, the
//! check of `signal.rs`'s signal numbers against the C library's,
//! directory reading; each Unix platform module exports the same
//! set of functions on top of it. `windows/` implements the whole contract
//! over kernel32 (design and measurements: docs/WINDOWS.md):
//!
//! | function | Linux (`linux.rs`) | other Unix (`other.rs`: FreeBSD, macOS…) |
//! |---|---|---|
//! | [`create_unnamed`], [`link_unnamed`] | `O_TMPFILE` + `linkat` | a temporary name (`O_EXCL\|O_NOFOLLOW`) + `link(2)` |
//! | [`process_state`] | `/proc/P/stat` (a zombie is dead) | [`ProcState::Unknown`]: a zombie counts as alive |
//! | [`exists`] | `pidfd_open(2)` (no permission needed) | `None`: `kill(2)`'s answer stands |
//! | [`pidfd_open`], [`pidfd_exited`], [`send_signal`] | pidfds: the PID cannot be reused under us | no pidfds: `kill(2)` by PID |
//! | [`network_fs`] | `statfs` magic numbers | `statfs`'s `f_fstypename` (the BSDs, macOS); `None` elsewhere |
//! | [`read_pid_max`] | `/proc/sys/kernel/pid_max` | `None` (any positive `pid_t`) |
//! | `proc::*` (the identity facts) | read from `/proc` | every fact is *unproved* (`ENOSYS`) |
//!
//! A platform that cannot read a fact reports it as unreadable: an
//! `Err(Errno)`, `None` or [`ProcState::Unknown`], which the identity model
//! (docs/GUARANTEES.md) treats as *unproved*, never as "dead" or
//! "consistent". The `signal-cleanup` feature's async-signal-safe handler
//! is in `cleanup.rs` (libc).
//!
//! On Windows (`windows/`) the same functions take and give handles
//! (`OwnedHandle`, under the seam's names [`OwnedFd`], [`BorrowedFd`],
//! [`AsFd`]), [`Stat`] and [`Errno`] are the seam's own types (a Unix-shaped
//! view of `GetFileInformationByHandle`, and Win32 error codes), and the
//! lock is `LockFileEx` on one byte past any content.

use std::path::PathBuf;

#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub(crate) use unix::*;

#[cfg(all(unix, feature = "signal-cleanup"))]
pub(crate) mod cleanup;

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

// The kernel identity record (pidfs inode, extended attribute): Linux
// only, "unsupported" elsewhere.
pub(crate) mod pidfs;

/// A new, locked-or-not-yet-locked file that is not yet visible at the PID
/// file's path: unnamed (`O_TMPFILE`) where the platform allows, otherwise a
/// temporary name in the same directory, removed on drop.
pub(crate) struct Unnamed {
    pub(crate) fd: OwnedFd,
    pub(crate) temp: Option<TempName>,
}

/// The temporary names tried for a new PID file: `.NAME.PID.N.tmp` in its
/// directory, `N` counting up for the life of the process.
pub(crate) struct TempNames {
    dir: PathBuf,
    base: String,
}

impl TempNames {
    pub(crate) fn new(dir: &std::path::Path, final_path: &std::path::Path) -> TempNames {
        let base = final_path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "pidfile".into());
        TempNames {
            dir: dir.to_path_buf(),
            base,
        }
    }

    /// The next name to try.
    pub(crate) fn next(&self) -> PathBuf {
        use std::sync::atomic::{AtomicU32, Ordering};
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        self.dir.join(format!(".{}.{pid}.{n}.tmp", self.base))
    }
}

/// A temporary name, removed on drop unless [`disarm`](TempName::disarm)ed.
pub(crate) struct TempName(pub(crate) PathBuf);

impl TempName {
    /// Forgets the name without removing it (it was renamed into place).
    #[cfg_attr(unix, allow(dead_code))]
    pub(crate) fn disarm(mut self) {
        self.0 = PathBuf::new();
    }
}

impl Drop for TempName {
    fn drop(&mut self) {
        if !self.0.as_os_str().is_empty() {
            remove_temp(&self.0);
        }
    }
}

/// What the kernel says about a process, beyond `kill(pid, 0)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub(crate) enum ProcState {
    /// Running or sleeping: not a zombie.
    Live,
    /// Exited, waiting to be reaped.
    Zombie,
    /// No such process.
    Gone,
    /// The platform cannot tell.
    Unknown,
}


/// What `/proc/<pid>/status` says about a process's place among
/// processes (Linux; never made elsewhere).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ProcStatus {
    /// `Tgid`: the thread group (process) this PID belongs to; equal to
    /// the PID for a process, another for a thread (a TID).
    pub(crate) tgid: i32,
    /// `PPid`.
    pub(crate) ppid: i32,
    /// The real user ID (`Uid`, first field).
    pub(crate) uid: u32,
    /// The real, effective and saved user IDs (`Uid`'s first three
    /// fields).
    pub(crate) uids: [u32; 3],
    /// `NSpid`: the PID in each nested PID namespace, from the reader's
    /// down to the process's own (innermost last).
    pub(crate) nspid: Vec<i32>,
}


/// A symbolic link on the way to a PID file's directory that neither root
/// nor the caller owns: following it would let its owner choose which file
/// pidguard locks, writes, removes or signals the owner of.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ForeignSymlink {
    /// The link, as reached from the directory's path.
    pub(crate) link: PathBuf,
    /// Its owner.
    pub(crate) uid: u32,
}


/// What kind of file a `stat` describes in full (the seam reports;
/// `fs.rs` decides which kinds are refused).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(windows, allow(dead_code))] // no FIFOs or sockets there
pub(crate) enum NodeKind {
    /// A regular file, with its number of hard links.
    Regular { links: u64 },
    Symlink,
    Directory,
    Fifo,
    Socket,
    /// A character or block device, or a type the platform does not name.
    Device,
}

/// What kind of file a directory entry or a stat is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FileKind {
    Regular,
    Directory,
    Symlink,
    /// A FIFO, socket or device.
    Other,
}


/// An entry of a directory, as [`read_dir`] gives it.
pub(crate) struct DirEntry {
    /// Its name (never `.` or `..`).
    pub(crate) name: std::ffi::OsString,
    /// Its kind when the directory says (`d_type`); `None` when it does
    /// not know (some filesystems): then [`lstat_at`] tells.
    pub(crate) kind: Option<FileKind>,
}


/// What [`remove_if_same`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RemoveOutcome {
    /// The path named the held file: it was removed.
    Removed,
    /// Nothing at the path.
    Missing,
    /// The path names another file (a successor's): left alone.
    Other,
}

/// Why [`remove_if_same`] failed.
#[derive(Debug)]
pub(crate) enum RemoveFailed {
    /// The held file or the path could not be examined.
    Check(std::io::Error),
    /// The path names the held file, and removing it failed.
    Remove(std::io::Error),
}
