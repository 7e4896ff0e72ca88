//! Contention: what a contender does when the lock is held (a holder
//! mid-write, a reader probing it for an instant) or when an unlocked file
//! names a process that may still be its owner.
use std::io;
use std::path::Path;
use std::time::Duration;

use crate::error::{Error, Result, IoResultExt};
use crate::fs::{read_fd, MID_WRITE_BACKOFF_US};
use crate::pid::{Pid, Rule};
use crate::read::process::{liveness, Liveness};
use crate::sys::{self, OwnedFd};

/// Pauses before trying the lock again when it is held and the file names a
/// live process: the holder may be a reader (`status`, `list`, another
/// tool) probing the lock for an instant rather than an instance.
const READER_PROBE_RETRY_US: [u64; 3] = [20, 300, 2_000];

/// How long to keep trying when the only locks on the file are shared ones
/// (readers' probes, however slow), never an exclusive holder's.
const READERS_ONLY_PATIENCE: Duration = Duration::from_millis(500);

/// How long to keep trying when the lock is held but `/proc/locks` shows
/// no lock on the file at all: a reader's probe that ended in between (try
/// again), or a holder in another PID namespace (hidden; it keeps the lock).
const UNSEEN_HOLDER_PATIENCE: Duration = Duration::from_millis(20);

/// The lock is held. If the file names a live process, that is the holder:
/// fail with `AlreadyRunning`. If it is empty, invalid or names a dead
/// process, the holder may be mid-write (or a reader probing the lock): give
/// it a few milliseconds, trying the lock again. `Ok(_)` means the lock was
/// taken after all: `Ok(Some(pid))` when the file named the live process
/// `pid` while the lock was held (a holder that has just released it).
pub(super) fn wait_out_mid_write(fd: &OwnedFd, path: &Path) -> Result<Option<Pid>> {
    let mut named = None;
    for pause in MID_WRITE_BACKOFF_US {
        if let Ok(pid) = read_fd(fd, path, Rule::Lenient) {
            named = Some(pid);
            if liveness(pid) != Liveness::Dead {
                // A reader's shared-lock probe lasts a few microseconds:
                // look again before calling the file held.
                for pause in READER_PROBE_RETRY_US {
                    std::thread::sleep(Duration::from_micros(pause));
                    if sys::try_lock_exclusive(fd).open_err(path)? {
                        return Ok(Some(pid));
                    }
                }
                // Still held. What the kernel shows on the inode tells
                // readers from an instance: shared locks only are readers (a
                // preempted one can hold its probe for milliseconds on a
                // loaded machine); no lock at all means the probe ended
                // between our two looks, or a holder this PID namespace
                // cannot see, which keeps its lock: that case gets only a
                // few milliseconds.
                if let Ok(st) = sys::fstat(fd) {
                    // st_ino's width differs between platforms.
                    #[allow(clippy::unnecessary_cast)]
                    let ino = st.st_ino as u64;
                    let start = std::time::Instant::now();
                    // Once readers were seen, a moment with no lock at all
                    // is the gap between two of their probes.
                    let mut readers_seen = false;
                    loop {
                        let patience = match sys::proc::flocks_on(ino) {
                            Some((false, true)) => {
                                readers_seen = true;
                                READERS_ONLY_PATIENCE
                            }
                            Some((false, false)) if readers_seen => READERS_ONLY_PATIENCE,
                            Some((false, false)) => UNSEEN_HOLDER_PATIENCE,
                            _ => break,
                        };
                        if start.elapsed() >= patience {
                            break;
                        }
                        std::thread::sleep(Duration::from_millis(1));
                        if sys::try_lock_exclusive(fd).open_err(path)? {
                            return Ok(Some(pid));
                        }
                    }
                }
                return Err(Error::already_running(path, Some(pid)));
            }
        }
        std::thread::sleep(Duration::from_micros(pause));
        if sys::try_lock_exclusive(fd).open_err(path)? {
            return Ok(None);
        }
    }
    let err = Error::already_running(path, None);
    Err(match named {
        Some(pid) => err.with_detail(format!(
            "the file names PID {pid}, which is not running; a process that \
             inherited the lock from it still holds it"
        )),
        None => err,
    })
}

/// The refusal to take over an unlocked file naming `pid`, unless `pid` is
/// proved gone: dead, or its PID a thread's (a TID, a kernel thread), or
/// our own (the file is ours). A live process
/// proved not the owner only by timing, or being PID 1, our parent or in
/// another namespace, keeps its file. A live process that passes every check is
/// a daemon that does not lock its file (nginx, sshd), as Python's `pid`
/// and `start-stop-daemon --start` judge it; one that cannot be judged
/// (a fact could not be read) is not taken over either.
pub(super) fn live_unlocked_owner(
    path: &Path,
    fd: &OwnedFd,
    pid: Pid,
    file: &sys::Stat,
    me: Pid,
) -> Option<Error> {
    use crate::read::identity::{identify, Identity, Me, Mismatch};
    // Our own PID: the file is ours (its lock closed), to take again; its
    // record may prove us its owner, which is no reason to refuse.
    if pid == me || liveness(pid) == Liveness::Dead {
        return None;
    }
    // A kernel identity record decides here too: a proved owner is
    // refused; a proved other process keeps its file like any other
    // evidence short of the owner's death (below).
    let kernel = crate::read::kernel_id::kernel_identity(pid, fd, file, me);
    match identify(pid, file, false, None, Me::now(), kernel) {
        // A TID or a kernel thread is no process that could own a file:
        // no process has the PID here, the owner is gone.
        Identity::Mismatched(
            Mismatch::Thread { .. } | Mismatch::KernelThread | Mismatch::Ourselves,
        ) => None,
        // Timing, PID 1, our parent, another namespace, a kernel identity
        // that is not the recorded one…: evidence that it is not the
        // owner, not proof that the owner is gone.
        Identity::Mismatched(m) => Some(Error::running_unlocked(
            path,
            pid,
            &format!(
                "it looks unrelated ({m}), but a live process's file is only taken over \
                 when its owner is proved gone (dead, or the PID a thread's)"
            ),
        )),
        // Unlocked, only the kernel identity record verifies.
        Identity::Verified => Some(Error::running_unlocked(
            path,
            pid,
            "the file's kernel identity record (user.pidguard.pidfd_ino) proves it is the \
             process the file was written for: its owner runs without the lock",
        )),
        Identity::Consistent => Some(Error::running_unlocked(
            path,
            pid,
            "it passes every check (a process, started before the file was written, in \
             this PID namespace), so it is taken for a daemon that does not lock its PID file",
        )),
        Identity::Unproved(u) => Some(Error::running_unlocked(
            path,
            pid,
            &format!("it could not be proved not to be the file's owner: {u}"),
        )),
    }
}

/// `open(O_RDWR)` was refused: if the file is locked by someone, say so
/// (that is the more useful answer); otherwise it is a permission problem.
pub(super) fn held_or_denied(path: &Path, denied: io::Error) -> Error {
    if let Ok(fd) = sys::open_existing(path, false) {
        if let Ok(true) = sys::is_locked(&fd) {
            return Error::already_running(path, read_fd(&fd, path, Rule::Lenient).ok());
        }
    }
    Error::open(path, denied)
}

