//! Other Unix systems: a temporary name + `link(2)`; no `/proc`.

use std::io;
use std::path::Path;

use super::{create_named_temp, link_named_temp, ProcState, Unnamed};
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

/// Zombies cannot be told apart portably; `kill(pid, 0)` is all there is.
pub(crate) fn process_state(_pid: Pid) -> (ProcState, Option<proc::ProcStat>) {
    (ProcState::Unknown, None)
}

/// Facts about a process: not available without `/proc`; every answer is
/// "unknown".
pub(crate) mod proc {
    use std::time::SystemTime;

    use crate::pid::Pid;

    /// Nothing is known of a process here.
    #[derive(Clone, Copy, Debug)]
    pub(crate) struct ProcStat;

    pub(crate) fn stat(_pid: Pid) -> Option<ProcStat> {
        None
    }
    pub(crate) fn boot_time() -> Option<SystemTime> {
        None
    }
    pub(crate) fn start_time_of(_st: &ProcStat) -> Option<SystemTime> {
        None
    }
    pub(crate) fn start_time(_pid: Pid) -> Option<SystemTime> {
        None
    }
    pub(crate) fn is_kernel_thread_of(_st: &ProcStat) -> bool {
        false
    }
    pub(crate) fn holds_inode(_pid: Pid, _dev: u64, _ino: u64) -> Option<bool> {
        None
    }
    pub(crate) fn exe_id(_pid: Pid) -> Option<(u64, u64)> {
        None
    }
    pub(crate) fn uid(_pid: Pid) -> Option<u32> {
        None
    }
    pub(crate) fn comm(_pid: Pid) -> Option<String> {
        None
    }
    pub(crate) fn cmdline(_pid: Pid) -> Option<std::ffi::OsString> {
        None
    }
    pub(crate) fn same_pid_namespace(_pid: Pid) -> Option<bool> {
        None
    }
    pub(crate) fn flock_visible(_ino: u64) -> Option<bool> {
        None
    }
    pub(crate) fn flocks_on(_ino: u64) -> Option<(bool, bool)> {
        None
    }
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

/// Network filesystems are not recognised here.
pub(crate) fn network_fs(_dir: &Path) -> Option<&'static str> {
    None
}
