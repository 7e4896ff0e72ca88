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

/// No pidfds here: existence is `kill(2)`'s answer.
pub(crate) fn exists(_pid: Pid) -> Option<bool> {
    None
}

/// Facts about a process: not available without `/proc`; every answer is
/// "unknown".
pub(crate) mod proc {
    use std::time::SystemTime;

    use rustix::io::Errno;

    use crate::pid::Pid;

    /// Nothing is known of a process here.
    #[derive(Clone, Copy, Debug)]
    pub(crate) struct ProcStat;
    pub(crate) fn flocks_on(_ino: u64) -> Option<(bool, bool)> {
        None
    }
    pub(crate) fn record_locks_on(_ino: u64) -> bool {
        false
    }
    /// Not known here.
    pub(crate) fn start_time(_pid: Pid) -> Option<SystemTime> {
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
