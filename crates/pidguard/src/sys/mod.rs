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
//! | [`read_pid_max`] (behind [`Pid::kernel_max`], defined here) | `/proc/sys/kernel/pid_max` | `None` (any positive `pid_t`) |
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

use crate::pid::{ParseError, Pid, Rule};

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

// ---------------------------------------------------------------------------
// The system's PID limits, and the methods of `Pid` that ask for them
// ---------------------------------------------------------------------------
//
// They are here, not in pid.rs, so that the value types stay leaves below
// this seam (README, Layout): pid.rs parses against a limit it is given.

/// On Linux, the largest PID before `PID_MAX_LIMIT` is read: 2^22 - 1.
#[cfg(any(target_os = "linux", target_os = "android"))]
const FALLBACK_PID_MAX: u32 = 4_194_303;
/// Elsewhere, any positive `pid_t`.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
const FALLBACK_PID_MAX: u32 = i32::MAX as u32;

/// [`Pid::kernel_max`] (documented there).
fn pid_max() -> u32 {
    static PID_MAX: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *PID_MAX.get_or_init(|| read_pid_max().unwrap_or(FALLBACK_PID_MAX))
}

/// [`Pid::largest_possible`] (documented there).
fn largest_possible_pid() -> u32 {
    #[cfg(all(
        any(target_os = "linux", target_os = "android"),
        target_pointer_width = "32"
    ))]
    const LIMIT: u32 = 32_767;
    #[cfg(not(all(
        any(target_os = "linux", target_os = "android"),
        target_pointer_width = "32"
    )))]
    const LIMIT: u32 = FALLBACK_PID_MAX;
    // Where LIMIT is already the kernel's ceiling (PID_MAX_LIMIT - 1 on
    // 64-bit Linux; any pid_t elsewhere) no pid_max can exceed it: the file
    // is not read (one open and read less on every start-up). A 32-bit
    // program may run on a 64-bit kernel, whose pid_max can be larger.
    #[cfg(all(
        any(target_os = "linux", target_os = "android"),
        target_pointer_width = "32"
    ))]
    return LIMIT.max(pid_max());
    #[cfg(not(all(
        any(target_os = "linux", target_os = "android"),
        target_pointer_width = "32"
    )))]
    LIMIT
}

impl Pid {
    /// The largest valid PID on this system (inclusive).
    ///
    /// On Linux this is one less than `/proc/sys/kernel/pid_max` (the kernel
    /// hands out PIDs strictly below that value), read once and cached for the
    /// life of the process. If the file cannot be read or parsed, it is
    /// 4,194,303 (`PID_MAX_LIMIT - 1` on 64-bit Linux). On other systems it is
    /// `i32::MAX`. The result is always in `1..=i32::MAX`.
    ///
    /// ```
    /// let max = pidguard::Pid::kernel_max();
    /// assert!(max >= 1 && max <= i32::MAX as u32);
    /// assert!(std::process::id() <= max);
    /// ```
    pub fn kernel_max() -> u32 {
        pid_max()
    }

    /// The largest PID the kernel can ever hand out (inclusive): the limit
    /// for reading a PID from an existing file. Today's
    /// [`Pid::kernel_max`] is not: it may have been lowered after the
    /// holder started, and a holder above it still runs and must still be
    /// named and stoppable. On 64-bit Linux this is 4,194,303
    /// (`PID_MAX_LIMIT - 1`; 32-bit Linux: 32,767), elsewhere `i32::MAX`.
    /// Never below [`Pid::kernel_max`].
    ///
    /// ```
    /// use pidguard::Pid;
    /// assert!(Pid::largest_possible() >= Pid::kernel_max());
    /// ```
    pub fn largest_possible() -> u32 {
        largest_possible_pid()
    }
}

/// Parses with [`Rule::Strict`] against the kernel's [`Pid::kernel_max`]; one
/// trailing `\n` is allowed but not required.
///
/// ```
/// use pidguard::{ParseErrorKind, Pid};
///
/// assert_eq!("42".parse::<Pid>().unwrap().get(), 42);
/// assert_eq!("42\n".parse::<Pid>().unwrap().get(), 42);
/// assert_eq!(" 42".parse::<Pid>().unwrap_err().kind(), ParseErrorKind::Whitespace);
/// ```
impl std::str::FromStr for Pid {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Pid, ParseError> {
        Pid::parse(s.as_bytes(), Rule::Strict, pid_max())
    }
}
/// Records that the running test skipped its body, and why, where
/// `./test.sh` lists skips: `TARGET/tmp/skipped/pidguard__TEST.txt`,
/// as testkit's `skipped` does for the integration tests (this crate's
/// own unit tests cannot use testkit: cargo drops that dev-dependency
/// from the published package, whose unit tests still run).
#[cfg(all(test, target_os = "linux"))]
pub(crate) fn test_skipped(reason: &str) {
    eprintln!("skipped: {reason}");
    // This binary is TARGET/PROFILE/deps/pidguard-HASH.
    let exe = std::env::current_exe().unwrap_or_default();
    let Some(target) = exe.ancestors().nth(3) else {
        return;
    };
    let test = std::thread::current().name().unwrap_or("unnamed").replace("::", "__");
    let dir = target.join("tmp").join("skipped");
    // Best effort: the record must not make the test fail.
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(dir.join(format!("pidguard__{test}.txt")), format!("{reason}\n"));
}


#[cfg(test)]
mod tests {
    use crate::pid::{ParseErrorKind as K, Pid, Rule};

    #[test]
    fn system_pid_max() {
        let max = Pid::kernel_max();
        assert!((1..=i32::MAX as u32).contains(&max));
        assert!(std::process::id() <= max);
        assert_eq!(Pid::kernel_max(), max);
        assert!(Pid::largest_possible() >= max);
    }

    #[test]
    fn from_str() {
        assert_eq!("42".parse::<Pid>().unwrap().get(), 42);
        assert_eq!("42\n".parse::<Pid>().unwrap().get(), 42);
        assert_eq!("042".parse::<Pid>().unwrap_err().kind(), K::LeadingZero);
        assert_eq!("".parse::<Pid>().unwrap_err().rule(), Rule::Strict);
    }
}
