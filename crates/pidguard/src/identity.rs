//! Is the PID in a file really the file's owner?
//!
//! Every PID read from a file is classified before anything signals it:
//!
//! * [`Identity::Verified`]: proved. The file is locked and the process holds
//!   an open descriptor on the file's inode (Linux: `/proc/<pid>/fd`).
//! * [`Identity::Consistent`]: no proof, no evidence against. The process
//!   started before the file was last written, the file is newer than the
//!   current boot, and the optional [`Filters`] match.
//! * [`Identity::Mismatched`]: proved not the owner: the process started
//!   after the file was written (a reused PID), the file is older than the
//!   boot, a filter does not match, or (unless verified) the PID is 1, our
//!   own or our parent's, the process lives in another PID namespace, or
//!   the file is locked by a process this namespace cannot see.
//!
//! Only verified and consistent PIDs are ever signalled.

use std::fmt;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use rustix::fs::Stat;

use crate::pid::Pid;
use crate::sys::proc::{self, ProcStat};

/// How much a process's start time may exceed the file's modification time
/// and still count as "started before": their clocks have different
/// precision (a clock tick against the filesystem's timestamp granularity).
pub const START_TOLERANCE: Duration = Duration::from_secs(1);

/// The verdict on a PID read from a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Identity {
    /// Proved to be the file's owner.
    Verified,
    /// Not proved, but nothing speaks against it.
    Consistent,
    /// Proved not to be the file's owner.
    Mismatched(Mismatch),
}

impl Identity {
    /// Whether the process may be signalled (verified or consistent).
    pub fn may_signal(&self) -> bool {
        !matches!(self, Identity::Mismatched(_))
    }

    /// `verified`, `consistent` or `mismatched`.
    pub fn name(&self) -> &'static str {
        match self {
            Identity::Verified => "verified",
            Identity::Consistent => "consistent",
            Identity::Mismatched(_) => "mismatched",
        }
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Identity::Mismatched(m) => write!(f, "mismatched: {m}"),
            other => f.write_str(other.name()),
        }
    }
}

/// Why a PID is not the file's owner.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mismatch {
    /// The process started after the file was last written: the PID was
    /// reused by an unrelated process.
    StartedAfterFile {
        /// How long after the file's last write the process started.
        by: Duration,
    },
    /// The file was written before the current boot.
    FileBeforeBoot,
    /// PID 1 (init, or a container's main process) without proof.
    Init,
    /// The PID is this process's own.
    Ourselves,
    /// The PID is this process's parent's.
    OurParent,
    /// The process lives in another PID namespace.
    OtherNamespace,
    /// The file is locked by a process this PID namespace cannot see
    /// (another container sharing the directory): the PID in the file is
    /// the holder's in its own namespace, and names an unrelated process
    /// here.
    LockedElsewhere,
    /// The PID is a kernel thread's.
    KernelThread,
    /// The `exe` filter does not match the process's executable.
    Exe,
    /// The `user` filter does not match the process's user.
    User,
    /// The `name` filter does not match the process's command name.
    Name,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mismatch::StartedAfterFile { by } => write!(
                f,
                "the process started {:.1}s after the file was written (its PID was reused)",
                by.as_secs_f64()
            ),
            Mismatch::FileBeforeBoot => f.write_str("the file was written before the last boot"),
            Mismatch::Init => f.write_str("PID 1 is never signalled unless it holds the lock"),
            Mismatch::Ourselves => f.write_str("the PID is pidguard's own"),
            Mismatch::OurParent => f.write_str("the PID is pidguard's parent's"),
            Mismatch::OtherNamespace => f.write_str("the process is in another PID namespace"),
            Mismatch::LockedElsewhere => f.write_str(
                "the file is locked by a process in another PID namespace; the PID here \
                 is not its holder",
            ),
            Mismatch::KernelThread => f.write_str("the PID is a kernel thread's"),
            Mismatch::Exe => f.write_str("its executable does not match --exe"),
            Mismatch::User => f.write_str("its user does not match --user"),
            Mismatch::Name => f.write_str("its command name does not match --name"),
        }
    }
}

/// Optional conditions a process must meet (as start-stop-daemon's `--exe`,
/// `--user` and `--name`). Default: none.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filters {
    /// The process's executable must be this file (compared by device and
    /// inode, so a path through a symlink matches).
    pub exe: Option<PathBuf>,
    /// The process's real user ID.
    pub user: Option<u32>,
    /// The process's command name (`comm`, compared on its first 15 bytes).
    pub name: Option<String>,
}

impl Filters {
    /// Whether no filter is set.
    pub fn is_empty(&self) -> bool {
        self.exe.is_none() && self.user.is_none() && self.name.is_none()
    }

    fn check(&self, pid: Pid) -> Option<Mismatch> {
        if let Some(exe) = &self.exe {
            use std::os::unix::fs::MetadataExt;
            let want = std::fs::metadata(exe).ok().map(|m| (m.dev(), m.ino()));
            if want.is_none() || want != proc::exe_id(pid) {
                return Some(Mismatch::Exe);
            }
        }
        if let Some(uid) = self.user {
            if proc::uid(pid) != Some(uid) {
                return Some(Mismatch::User);
            }
        }
        if let Some(name) = &self.name {
            let want: String = name.bytes().take(15).map(char::from).collect();
            if proc::comm(pid).as_deref() != Some(want.as_str()) {
                return Some(Mismatch::Name);
            }
        }
        None
    }
}

/// Classifies `pid`, read from the file described by `file` (its `fstat`),
/// whose lock is (`locked`) or is not held.
/// The calling process and its parent, looked up once for a batch of
/// checks (`list` over many files).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Me {
    pub(crate) pid: Pid,
    pub(crate) parent: Option<Pid>,
}

impl Me {
    pub(crate) fn now() -> Me {
        Me {
            pid: Pid::current(),
            parent: rustix::process::getppid().and_then(|p| Pid::new(p.as_raw_nonzero().get())),
        }
    }
}

/// `pstat` is `/proc/<pid>/stat` if the caller already read it.
pub(crate) fn identify(
    pid: Pid,
    file: &Stat,
    locked: bool,
    filters: &Filters,
    pstat: Option<ProcStat>,
    me: Me,
) -> Identity {
    // The stat field types differ between platforms.
    #[allow(clippy::unnecessary_cast)]
    let (dev, ino) = (file.st_dev as u64, file.st_ino as u64);
    let holds = if locked {
        proc::holds_inode(pid, dev, ino)
    } else {
        None
    };
    let verified = holds == Some(true);
    if let Some(m) = filters.check(pid) {
        return Identity::Mismatched(m);
    }
    if verified {
        return Identity::Verified;
    }
    if pid == me.pid {
        return Identity::Mismatched(Mismatch::Ourselves);
    }
    if Some(pid) == me.parent {
        return Identity::Mismatched(Mismatch::OurParent);
    }
    if pid.get() == 1 {
        return Identity::Mismatched(Mismatch::Init);
    }
    let pstat = pstat.or_else(|| proc::stat(pid));
    if pstat.as_ref().is_some_and(proc::is_kernel_thread_of) {
        return Identity::Mismatched(Mismatch::KernelThread);
    }
    if proc::same_pid_namespace(pid) == Some(false) {
        return Identity::Mismatched(Mismatch::OtherNamespace);
    }
    // Only where the process could be looked at and holds no descriptor on
    // the file: a process we may not inspect (another user's, for a user)
    // whose lock was taken by a supervisor that died keeps "consistent".
    if holds == Some(false) && proc::flock_visible(ino) == Some(false) {
        return Identity::Mismatched(Mismatch::LockedElsewhere);
    }
    let mtime = mtime(file);
    let started = pstat.as_ref().and_then(proc::start_time_of);
    if let (Some(started), Some(written)) = (started, mtime) {
        if let Ok(by) = started.duration_since(written) {
            if by > START_TOLERANCE {
                return Identity::Mismatched(Mismatch::StartedAfterFile { by });
            }
        }
    }
    if let (Some(boot), Some(written)) = (proc::boot_time(), mtime) {
        if written + START_TOLERANCE < boot {
            return Identity::Mismatched(Mismatch::FileBeforeBoot);
        }
    }
    Identity::Consistent
}

/// The file's modification time.
pub(crate) fn mtime(st: &Stat) -> Option<SystemTime> {
    let secs = u64::try_from(st.st_mtime).ok()?;
    let nanos = u32::try_from(st.st_mtime_nsec).unwrap_or(0);
    SystemTime::UNIX_EPOCH.checked_add(Duration::new(secs, nanos))
}

/// When running as root: why a file that is not verified may not be trusted
/// to name a process to signal (as systemd and start-stop-daemon harden
/// this). `None` when it may be trusted, or when not running as root.
///
/// Refused: a file owned by someone other than root or the caller, a file
/// that is group- or world-writable, and a file reached through a directory
/// a non-root user can write (except a sticky directory such as `/tmp`
/// whose entry on the way is owned by root, which others cannot replace).
pub(crate) fn trust_problem(path: &std::path::Path, file: &Stat) -> Option<String> {
    let me = rustix::process::geteuid();
    if !me.is_root() {
        return None;
    }
    if file.st_uid != 0 && file.st_uid != me.as_raw() {
        return Some(format!(
            "{} is owned by UID {}, not by root",
            path.display(),
            file.st_uid
        ));
    }
    if file.st_mode & 0o022 != 0 {
        return Some(format!(
            "{} is group- or world-writable (mode {:o})",
            path.display(),
            file.st_mode & 0o7777
        ));
    }
    let abs = std::path::absolute(path).ok()?;
    let mut child_uid = file.st_uid;
    let mut dir = abs.parent();
    while let Some(d) = dir {
        let Ok(st) = rustix::fs::stat(d) else {
            return Some(format!("cannot check directory {}", d.display()));
        };
        let writable_by_others =
            (st.st_uid != 0 && st.st_mode & 0o200 != 0) || st.st_mode & 0o022 != 0;
        let sticky = st.st_mode & 0o1000 != 0;
        if writable_by_others && !(sticky && child_uid == 0) {
            return Some(format!(
                "{} is reached through {}, which a non-root user can write (owner UID {}, mode {:o})",
                path.display(),
                d.display(),
                st.st_uid,
                st.st_mode & 0o7777
            ));
        }
        child_uid = st.st_uid;
        dir = d.parent();
    }
    None
}
