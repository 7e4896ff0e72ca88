//! Other Unix systems (FreeBSD, macOS, the BSDs): a temporary name +
//! `link(2)` instead of `O_TMPFILE`; no pidfds; no `/proc`.
//!
//! Every fact that Linux reads from `/proc` is *unproved* here (`ENOSYS`):
//! never "dead", never "consistent". What that means for each operation is
//! in docs/GUARANTEES.md ("Other Unix systems").

use std::io;
use std::path::Path;

use super::{create_named_temp, link_named_temp, Errno, ProcState, Unnamed};
use crate::pid::Pid;

/// Creates the new PID file under a temporary name in `dir`.
pub(crate) fn create_unnamed(dir: &Path, final_path: &Path, mode: u32) -> io::Result<Unnamed> {
    create_named_temp(dir, final_path, mode)
}

/// Links the temporary file into place. Fails with `EEXIST` when the path
/// exists.
pub(crate) fn link_unnamed(u: &mut Unnamed, path: &Path) -> io::Result<()> {
    link_named_temp(u, path)
}

/// Zombies cannot be told apart without `/proc`; `kill(pid, 0)` is all
/// there is (a zombie counts as alive until it is reaped).
pub(crate) fn process_state(_pid: Pid) -> (ProcState, Option<proc::ProcStat>) {
    (ProcState::Unknown, None)
}

/// No pidfds here: existence is `kill(2)`'s answer.
pub(crate) fn exists(_pid: Pid) -> Option<bool> {
    None
}

/// No pidfds here: always by PID.
pub(crate) fn send_signal(
    _pidfd: Option<&std::os::fd::OwnedFd>,
    pid: Pid,
    signal: crate::signal::Signal,
) -> Result<(), Errno> {
    super::kill(pid, signal)
}

/// Not read here: any positive `pid_t` may be a PID.
pub(crate) fn read_pid_max() -> Option<u32> {
    None
}

/// Where a fact about `pid` would be read from, for messages.
pub(crate) fn fact_source(pid: Pid, leaf: &str) -> String {
    format!("{leaf} of PID {pid} (read from /proc on Linux only)")
}

/// Not known without `/proc`.
pub(crate) fn exe_inode(_pid: Pid) -> Option<(u64, u64)> {
    None
}

/// The identity facts: none can be read without `/proc`. Every reader
/// fails with `ENOSYS` (unproved), answers `None`, or finds nothing (no
/// holder named, no lock seen): never evidence either way.
pub(crate) mod proc {
    use std::time::SystemTime;

    use super::Errno;
    use crate::pid::Pid;

    /// Why every fact is unreadable here.
    const UNSUPPORTED: Errno = Errno::NOSYS;

    /// Never made here: [`stat_result`] always fails.
    #[derive(Clone, Copy, Debug)]
    pub(crate) struct ProcStat {
        never: std::convert::Infallible,
    }

    pub(crate) use crate::sys::ProcStatus;

    pub(crate) fn stat_result(_pid: Pid) -> Result<ProcStat, Errno> {
        Err(UNSUPPORTED)
    }
    pub(crate) fn status_result(_pid: Pid) -> Result<ProcStatus, Errno> {
        Err(UNSUPPORTED)
    }
    pub(crate) fn holds_flock(_pid: Pid, _dev: u64, _ino: u64) -> Result<bool, Errno> {
        Err(UNSUPPORTED)
    }
    pub(crate) fn same_pid_namespace_result(_pid: Pid) -> Result<bool, Errno> {
        Err(UNSUPPORTED)
    }
    pub(crate) fn exe_link(_pid: Pid) -> Result<std::path::PathBuf, Errno> {
        Err(UNSUPPORTED)
    }
    pub(crate) fn comm(_pid: Pid) -> Option<Vec<u8>> {
        None
    }
    pub(crate) fn comm_errno(_pid: Pid) -> Option<Errno> {
        Some(UNSUPPORTED)
    }
    pub(crate) fn cmdline(_pid: Pid) -> Option<std::ffi::OsString> {
        None
    }
    pub(crate) fn uid(_pid: Pid) -> Option<u32> {
        None
    }
    pub(crate) fn boot_time() -> Option<SystemTime> {
        None
    }
    pub(crate) fn start_time_of(st: &ProcStat) -> Option<SystemTime> {
        match st.never {}
    }
    pub(crate) fn start_time(_pid: Pid) -> Option<SystemTime> {
        None
    }
    pub(crate) fn is_kernel_thread_of(st: &ProcStat) -> bool {
        match st.never {}
    }
    /// Not proof of anything: the same answer as an unreadable `/proc`.
    pub(crate) fn same_exe(_a: Pid, _b: Pid) -> bool {
        false
    }
    /// No lock table to name a holder: the holder stays unnamed.
    pub(crate) fn flock_pids(_ino: u64) -> Vec<Pid> {
        Vec::new()
    }
    pub(crate) fn all_pids() -> Vec<Pid> {
        Vec::new()
    }
    /// `None`: the lock table cannot be read.
    pub(crate) fn flocks_on(_ino: u64) -> Option<(bool, bool)> {
        None
    }
    /// POSIX/OFD locks are not seen without `/proc/locks` (as on Linux when
    /// it cannot be read): only `flock` locks count.
    pub(crate) fn record_locks_on(_ino: u64) -> bool {
        false
    }
}

/// The lock table cannot be asked for POSIX locks apart from `flock`
/// ones here (on the BSDs the two kinds are one): `None`, see
/// [`proc::record_locks_on`].
pub(crate) fn record_lock_held(_fd: std::os::fd::BorrowedFd<'_>) -> Option<bool> {
    None
}

/// No pidfds here.
pub(crate) fn pidfd_open(_pid: Pid) -> io::Result<Option<std::os::fd::OwnedFd>> {
    Ok(None)
}

/// Never called without a pidfd.
pub(crate) fn pidfd_exited(
    _fd: &std::os::fd::OwnedFd,
    _timeout: Option<std::time::Duration>,
) -> bool {
    false
}

/// The name of the network filesystem holding `dir`, if it is one on which
/// `flock` may be emulated or local to this host, from `statfs`'s
/// `f_fstypename` (the BSDs and macOS name the filesystem type).
#[cfg(any(
    target_os = "freebsd",
    target_os = "dragonfly",
    target_os = "openbsd",
    target_vendor = "apple"
))]
pub(crate) fn network_fs(dir: &Path) -> Option<&'static str> {
    let st = rustix::fs::statfs(dir).ok()?;
    // c_char is i8 or u8, by architecture.
    #[allow(clippy::unnecessary_cast)]
    let name: Vec<u8> = st
        .f_fstypename
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    network_fs_type(&name)
}

/// The network filesystem with this `f_fstypename`, if any.
#[cfg_attr(
    not(any(
        target_os = "freebsd",
        target_os = "dragonfly",
        target_os = "openbsd",
        target_vendor = "apple"
    )),
    allow(dead_code)
)]
fn network_fs_type(name: &[u8]) -> Option<&'static str> {
    Some(match name {
        b"nfs" => "NFS",
        b"smbfs" => "SMB",
        b"cifs" => "CIFS",
        b"afpfs" => "AFP",
        b"webdav" => "WebDAV",
        b"afs" => "AFS",
        _ => return None,
    })
}

/// Network filesystems are not recognised here (no type name in `statfs`).
#[cfg(not(any(
    target_os = "freebsd",
    target_os = "dragonfly",
    target_os = "openbsd",
    target_vendor = "apple"
)))]
pub(crate) fn network_fs(_dir: &Path) -> Option<&'static str> {
    None
}
