//! Is the PID in a file really the file's owner? Evidence, not guesses.
//!
//! For "PID P owns file F" pidguard gathers facts (each one either read or
//! unreadable, see [`Unproved`]) and reaches one verdict:
//!
//! * [`Identity::Verified`]: proved. P is a process (a thread-group
//!   leader, not a thread's TID) and holds the `flock` on F's inode
//!   through a descriptor of its own (Linux: a `lock:` line in
//!   `/proc/P/fdinfo/N`), and F has one link (no other name reaches its
//!   inode). A descriptor merely open on F is not a lock.
//! * [`Identity::Consistent`]: every consistency check was made and
//!   passed: P is a process, not PID 1, a kernel thread, pidguard or its
//!   parent; it is in this PID namespace; it started before F was last
//!   written; F was written after the current boot. A locked F with more
//!   than one link is judged so too: its lock proves nothing about F's
//!   name.
//! * [`Identity::Unproved`]: a fact a check rests on could not be read
//!   (`/proc` hidden by `hidepid=2` or `subset=pid`, not mounted, another
//!   user's process): it decides nothing, either way. The verdict names
//!   the fact.
//! * [`Identity::Mismatched`]: proved not the owner: P is a thread of
//!   another process, does not hold F's lock although F is locked, is PID
//!   1, a kernel thread, pidguard or its parent, lives in another PID
//!   namespace, started after F was written (its PID was reused), F
//!   predates the boot, or one of the user's [`Filters`] does not match.
//!
//! Only verified and consistent PIDs are ever signalled, and never through
//! a file with more than one link ([`trust_problem`]). What each verdict
//! allows (signal, delete, take over) is in `docs/GUARANTEES.md`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::read::kernel_id::KernelIdentity;
use crate::pid::Pid;
use crate::sys::proc::{self, ProcStat};
use crate::sys::{self, Errno, Stat};

/// How much a process's start time may exceed the file's modification time
/// and still count as "started before": their clocks have different
/// precision (a clock tick against the filesystem's timestamp granularity).
pub const START_TOLERANCE: Duration = Duration::from_secs(1);

/// The verdict on a PID read from a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Identity {
    /// Proved to be the file's owner: it holds the file's lock.
    Verified,
    /// Not proved, but every check was made and nothing speaks against it.
    Consistent,
    /// A fact needed to decide could not be read: nothing may be concluded.
    Unproved(Unproved),
    /// Proved not to be the file's owner.
    Mismatched(Mismatch),
}

impl Identity {
    /// Every name [`Identity::name`] returns, in order of strength.
    pub const NAMES: [&'static str; 4] = ["verified", "consistent", "unproved", "mismatched"];

    /// Whether the process may be signalled (verified or consistent).
    pub fn may_signal(&self) -> bool {
        matches!(self, Identity::Verified | Identity::Consistent)
    }

    /// `verified`, `consistent`, `unproved` or `mismatched`: the one
    /// vocabulary for identity verdicts (CLI output, JSON, `list`).
    pub fn name(&self) -> &'static str {
        match self {
            Identity::Verified => Identity::NAMES[0],
            Identity::Consistent => Identity::NAMES[1],
            Identity::Unproved(_) => Identity::NAMES[2],
            Identity::Mismatched(_) => Identity::NAMES[3],
        }
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Identity::Mismatched(m) => write!(f, "mismatched: {m}"),
            Identity::Unproved(u) => write!(f, "unproved: {u}"),
            other => f.write_str(other.name()),
        }
    }
}

/// A fact about a process that pidguard needs and could not read.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Fact {
    /// Whether the PID is a process or a thread (`/proc/P/status`).
    ThreadGroup,
    /// Whether it holds the file's lock (`/proc/P/fdinfo`).
    Lock,
    /// Its state, flags and start time (`/proc/P/stat`).
    ProcessStat,
    /// Its PID namespace (`/proc/P/ns/pid`).
    Namespace,
    /// When it started (its start time, or the boot time).
    StartTime,
    /// Its executable, for `exe` (`/proc/P/exe`).
    Executable,
    /// Its user, for `user` (`/proc/P/status`).
    User,
    /// Its command name, for `name` (`/proc/P/comm`).
    CommandName,
    /// Which of two processes owns the file: the one it names, which
    /// passes every check, or another that holds its lock without
    /// authority over it (anyone who can read a file can lock it).
    Owner,
}

impl Fact {
    /// Where the fact is read from, for messages.
    fn source(self, pid: Pid) -> String {
        match self {
            Fact::ThreadGroup | Fact::User => sys::fact_source(pid, "status"),
            Fact::Lock => sys::fact_source(pid, "fdinfo"),
            Fact::ProcessStat => sys::fact_source(pid, "stat"),
            Fact::Namespace => sys::fact_source(pid, "ns/pid"),
            Fact::StartTime => format!("the start time of PID {pid}"),
            Fact::Executable => sys::fact_source(pid, "exe"),
            Fact::CommandName => sys::fact_source(pid, "comm"),
            Fact::Owner => format!("the owner of the file naming PID {pid}"),
        }
    }

    /// What the fact would have told.
    fn meaning(self) -> &'static str {
        match self {
            Fact::ThreadGroup => "whether it is a process or a thread",
            Fact::Lock => "whether it holds the file's lock",
            Fact::ProcessStat => "its state and start time",
            Fact::Namespace => "its PID namespace",
            Fact::StartTime => "whether it started before the file was written",
            Fact::Executable => "its executable",
            Fact::User => "its user",
            Fact::CommandName => "its command name",
            Fact::Owner => "whether it owns the file",
        }
    }
}

/// Why a verdict is [`Identity::Unproved`]: the fact that could not be
/// read, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unproved {
    fact: Fact,
    pid: Pid,
    why: String,
}

impl Unproved {
    pub(crate) fn new(fact: Fact, pid: Pid, errno: Option<Errno>) -> Unproved {
        let why = match errno {
            Some(Errno::NOENT | Errno::SRCH) => {
                "it is not visible here (/proc hidden by hidepid or subset=pid, \
                 not mounted, or of another PID namespace)"
                    .to_string()
            }
            Some(Errno::XDEV) => "/proc is of another PID namespace (/proc/self does not name \
                 pidguard's own PID, so its numbers are other processes'): mount a /proc for \
                 this namespace (unshare --mount-proc)"
                .to_string(),
            Some(Errno::ACCESS | Errno::PERM) => {
                "permission denied (another user's process: run as root or as its user)".to_string()
            }
            Some(Errno::NOSYS) | None => "this platform does not provide it (pidguard reads \
                 it from /proc, on Linux only)"
                .to_string(),
            Some(e) => e.to_string(),
        };
        Unproved { fact, pid, why }
    }

    /// The file's lock is held by `holder`, which has no authority over
    /// the file, while `pid`, which it names, passes every check as its
    /// owner: who owns it cannot be told.
    pub(crate) fn contested(pid: Pid, holder: Pid, file_uid: u32) -> Unproved {
        Unproved {
            fact: Fact::Owner,
            pid,
            why: format!(
                "PID {holder} holds the file's lock, but it is neither PID {pid}, which the file \
                 names and which passes every check as its owner, nor an ancestor of it, and \
                 runs neither as root nor as the file's owner (UID {file_uid}): anyone who can \
                 read a file can lock it. If PID {holder} is the owner, stop it by its PID; \
                 otherwise end PID {holder}'s lock and try again"
            ),
        }
    }

    /// The fact that could not be read.
    pub fn fact(&self) -> Fact {
        self.fact
    }
}

impl fmt::Display for Unproved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.fact == Fact::Owner {
            return write!(
                f,
                "{} is not proved ({}), so nothing is concluded",
                self.fact.source(self.pid),
                self.why
            );
        }
        write!(
            f,
            "{} could not be read ({}): {} of PID {} is unknown, so nothing is concluded",
            self.fact.source(self.pid),
            self.why,
            self.fact.meaning(),
            self.pid
        )
    }
}

/// Why a PID is not the file's owner.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mismatch {
    /// The process started after the file was last written: the PID was
    /// reused by an unrelated process (timing evidence: a clock step can
    /// cause it too).
    StartedAfterFile {
        /// How long after the file's last write the process started.
        by: Duration,
    },
    /// The file was written before the current boot (timing evidence).
    /// Decisive only where the process's start time could not be read
    /// (`/proc/P/stat` hidden, or no `/proc`) while the boot time could
    /// (`CLOCK_BOOTTIME`): a process alive now started after the boot, so
    /// with its start time known [`Mismatch::StartedAfterFile`] decides
    /// first.
    FileBeforeBoot,
    /// The PID is a thread's (a TID), not a process's: `tgid` is the
    /// process it belongs to.
    Thread {
        /// The thread group (process) the TID belongs to.
        tgid: i32,
    },
    /// The file is locked, and this process does not hold the lock.
    NotLockHolder,
    /// PID 1 (init, or a container's main process) without proof.
    Init,
    /// The PID is this process's own.
    Ourselves,
    /// The PID is this process's parent's.
    OurParent,
    /// The process lives in another PID namespace.
    OtherNamespace,
    /// The PID is a kernel thread's.
    KernelThread,
    /// The kernel's identity of the process at the PID (its pidfs inode)
    /// is not the one recorded with the file: the PID was reused (or the
    /// file was written in another PID namespace, where the PID names
    /// another process). Proved by the kernel, whatever the clocks say.
    KernelIdentity {
        /// The pidfs inode recorded with the file.
        recorded: u64,
        /// The pidfs inode of the process at the PID now.
        found: u64,
    },
    /// The `exe` filter does not match the process's executable.
    Exe {
        /// The filter.
        wanted: PathBuf,
        /// The process's executable (`/proc/P/exe`).
        actual: PathBuf,
    },
    /// The `user` filter does not match the process's real, effective and
    /// saved user IDs (all three must be it).
    User {
        /// The filter.
        wanted: u32,
        /// The first of the process's real, effective and saved UIDs that
        /// is not the filter's.
        actual: u32,
    },
    /// The `name` filter does not match the process's command name.
    Name {
        /// The filter (its first 15 bytes).
        wanted: String,
        /// The process's `comm`.
        actual: String,
    },
}

impl Mismatch {
    /// Whether this is a filter the user gave that does not match.
    pub fn is_filter(&self) -> bool {
        matches!(
            self,
            Mismatch::Exe { .. } | Mismatch::User { .. } | Mismatch::Name { .. }
        )
    }

    /// Whether the only evidence is timing (start time against the file's
    /// modification time and the boot): a clock step can cause it.
    pub fn is_timing(&self) -> bool {
        matches!(
            self,
            Mismatch::StartedAfterFile { .. } | Mismatch::FileBeforeBoot
        )
    }
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const CLOCK: &str =
            " (or the clock was stepped since: then remove the file yourself if its process is gone)";
        match self {
            Mismatch::StartedAfterFile { by } => write!(
                f,
                "the process started {:.1}s after the file was written (its PID was reused){CLOCK}",
                by.as_secs_f64()
            ),
            Mismatch::FileBeforeBoot => {
                write!(f, "the file was written before the last boot{CLOCK}")
            }
            Mismatch::Thread { tgid } => {
                write!(f, "the PID is a thread of process {tgid}, not a process")
            }
            Mismatch::NotLockHolder => {
                f.write_str("the file is locked and this process does not hold the lock")
            }
            Mismatch::Init => f.write_str("PID 1 is never signalled unless it holds the lock"),
            Mismatch::Ourselves => f.write_str("the PID is pidguard's own"),
            Mismatch::OurParent => f.write_str("the PID is pidguard's parent's"),
            Mismatch::OtherNamespace => f.write_str("the process is in another PID namespace"),
            Mismatch::KernelThread => f.write_str("the PID is a kernel thread's"),
            Mismatch::KernelIdentity { recorded, found } => write!(
                f,
                "the process at this PID (pidfs inode {found}) is not the one recorded \
                 with the file ({recorded}): its PID was reused, or the file was written \
                 in another PID namespace"
            ),
            // The running image's path is anyone's choice (a copied
            // binary): shown on one line, as `list` shows names.
            Mismatch::Exe { wanted, actual } => write!(
                f,
                "its executable is {}, not {} (--exe)",
                OneLine(actual),
                OneLine(wanted)
            ),
            Mismatch::User { wanted, actual } => {
                write!(f, "its user is UID {actual}, not UID {wanted} (--user)")
            }
            Mismatch::Name { wanted, actual } => {
                write!(f, "its command name is {actual:?}, not {wanted:?} (--comm)")
            }
        }
    }
}

/// A path as one line of text that no name can forge: a backslash is
/// doubled, control characters are written as Rust escapes (`\n`,
/// `\u{1b}`) and bytes that are not UTF-8 as `\xHH`. Reversible, as the
/// CLI's escaping of names in `list` is.
struct OneLine<'a>(&'a Path);

impl fmt::Display for OneLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use fmt::Write;
        for chunk in self.0.as_os_str().as_encoded_bytes().utf8_chunks() {
            for c in chunk.valid().chars() {
                match c {
                    '\\' => f.write_str("\\\\")?,
                    c if c.is_control() => write!(f, "{}", c.escape_default())?,
                    c => f.write_char(c)?,
                }
            }
            for byte in chunk.invalid() {
                write!(f, "\\x{byte:02X}")?;
            }
        }
        Ok(())
    }
}

/// Optional conditions a process must meet (as start-stop-daemon's `--exe`,
/// `--user` and `--name`). Default: none.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filters {
    /// The process's executable must be this file: the same inode, or (as
    /// start-stop-daemon compares) the same path, which also matches a
    /// daemon whose binary was replaced by a package upgrade since it
    /// started (`/proc/P/exe` reads `PATH (deleted)`).
    pub exe: Option<PathBuf>,
    /// The process's user ID: its real, effective and saved UIDs must all
    /// be this one (a setuid program another user started is not theirs).
    pub user: Option<u32>,
    /// The process's command name (`comm`, compared on its first 15 bytes).
    pub name: Option<String>,
}

impl Filters {
    /// Whether no filter is set.
    pub fn is_empty(&self) -> bool {
        self.exe.is_none() && self.user.is_none() && self.name.is_none()
    }

    /// Whether the process is pinned by a filter (which, as root, lets a
    /// file others could have written be used, as start-stop-daemon's
    /// `--exec`, `--user` and `--name` do; never a file with more than one
    /// link).
    pub(crate) fn pins_process(&self) -> bool {
        !self.is_empty()
    }

    /// The filters' verdict: `None` when every filter set matches; a
    /// mismatch as soon as one does not; otherwise [`Identity::Unproved`]
    /// when one could not be checked.
    pub(crate) fn check(&self, pid: Pid) -> Option<Identity> {
        let mut unread = None;
        if let Some(exe) = &self.exe {
            match exe_matches(exe, pid) {
                Ok(None) => {}
                Ok(Some(m)) => return Some(Identity::Mismatched(m)),
                Err(u) => unread = unread.or(Some(u)),
            }
        }
        if let Some(uid) = self.user {
            // Real, effective and saved: a setuid program another user
            // started is not that user's.
            match proc::status_result(pid) {
                Ok(st) if st.uids.iter().all(|&u| u == uid) => {}
                Ok(st) => {
                    let actual = st.uids.into_iter().find(|&u| u != uid).unwrap_or(st.uid);
                    return Some(Identity::Mismatched(Mismatch::User {
                        wanted: uid,
                        actual,
                    }));
                }
                Err(e) => unread = unread.or(Some(Unproved::new(Fact::User, pid, Some(e)))),
            }
        }
        if let Some(name) = &self.name {
            let want = &name.as_bytes()[..name.len().min(15)];
            match proc::comm(pid) {
                Some(c) if c == want => {}
                Some(c) => {
                    return Some(Identity::Mismatched(Mismatch::Name {
                        wanted: String::from_utf8_lossy(want).into_owned(),
                        actual: String::from_utf8_lossy(&c).into_owned(),
                    }))
                }
                None => {
                    let errno = proc::comm_errno(pid);
                    unread = unread.or(Some(Unproved::new(Fact::CommandName, pid, errno)));
                }
            }
        }
        unread.map(Identity::Unproved)
    }
}

/// Whether the process's executable is `wanted`: the same inode, or the
/// same path as `/proc/P/exe` reads it (without a ` (deleted)` suffix:
/// the binary was replaced or removed since the process started).
fn exe_matches(wanted: &Path, pid: Pid) -> Result<Option<Mismatch>, Unproved> {
    let actual = proc::exe_link(pid).map_err(|e| Unproved::new(Fact::Executable, pid, Some(e)))?;
    let mismatch = || {
        Some(Mismatch::Exe {
            wanted: wanted.to_path_buf(),
            actual: actual.clone(),
        })
    };
    let Ok(canonical) = std::fs::canonicalize(wanted) else {
        return Ok(mismatch());
    };
    let running = actual.as_os_str().as_encoded_bytes();
    let running = running.strip_suffix(b" (deleted)").unwrap_or(running);
    if running == canonical.as_os_str().as_encoded_bytes() {
        return Ok(None);
    }
    let same_inode = match (sys::exe_inode(pid), sys::file_id(&canonical)) {
        (Some(a), Ok(b)) => a == b,
        _ => false,
    };
    Ok(if same_inode { None } else { mismatch() })
}

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
            parent: sys::parent_pid(),
        }
    }
}

/// The first fact that could not be read, while the checks go on (a later
/// one may still prove a mismatch, which is decisive).
#[derive(Default)]
struct Unread(Option<Unproved>);

impl Unread {
    fn note(&mut self, u: Unproved) {
        self.0.get_or_insert(u);
    }
}

/// The verdict on `pid` as the owner of the file described by `file` (its
/// `fstat`), whose lock is (`locked`) or is not held; filters are applied
/// separately ([`Filters::check`]). `pstat` is `/proc/<pid>/stat` if the
/// caller already read it; `kernel` is what the file's kernel identity
/// record says (see `kernel_id.rs`).
pub(crate) fn identify(
    pid: Pid,
    file: &Stat,
    locked: bool,
    pstat: Option<ProcStat>,
    me: Me,
    kernel: KernelIdentity,
) -> Identity {
    // "F is F": with another name reaching its inode, neither the lock nor
    // a kernel identity record proves anything about this path's PID; the
    // consistency checks decide.
    let one_link = links(file) <= 1;
    // ---- kernel identity hook (issue 20) ----
    // For an unlocked judgment, a record the kernel confirms or refutes
    // decides before every other check (thread group, PID 1, namespace,
    // clocks); the caller's filters still apply to a proved owner. An
    // absent record decides nothing. A locked file is judged by its lock
    // (the holder is named by the lock; see `status::resolve_holder`).
    if !locked {
        match kernel {
            KernelIdentity::Same if one_link => {
                // Even a record its writer had authority to make cannot
                // make a kernel thread own a file.
                let pstat = pstat.or_else(|| proc::stat_result(pid).ok());
                if pstat.as_ref().is_some_and(proc::is_kernel_thread_of) {
                    return Identity::Mismatched(Mismatch::KernelThread);
                }
                return Identity::Verified;
            }
            KernelIdentity::Same => {}
            KernelIdentity::Different { recorded, found } => {
                return Identity::Mismatched(Mismatch::KernelIdentity { recorded, found })
            }
            KernelIdentity::Absent(_) => {}
        }
    }
    // ---- end of kernel identity hook ----
    // The stat field types differ between platforms.
    #[allow(clippy::unnecessary_cast)]
    let (dev, ino) = (file.st_dev as u64, file.st_ino as u64);
    let mut unread = Unread::default();
    // A process, not a thread: a TID answers kill(2) and has a (hidden)
    // /proc entry, but names no process.
    match proc::status_result(pid) {
        Ok(st) if st.tgid != pid.get() => {
            return Identity::Mismatched(Mismatch::Thread { tgid: st.tgid })
        }
        Ok(_) => {}
        Err(e) => unread.note(Unproved::new(Fact::ThreadGroup, pid, Some(e))),
    }
    match proc::same_pid_namespace_result(pid) {
        Ok(true) => {}
        Ok(false) => return Identity::Mismatched(Mismatch::OtherNamespace),
        Err(e) => unread.note(Unproved::new(Fact::Namespace, pid, Some(e))),
    }
    if locked {
        match proc::holds_flock(pid, dev, ino) {
            Ok(true) if one_link => {
                return match unread.0 {
                    None => Identity::Verified,
                    Some(u) => Identity::Unproved(u),
                }
            }
            Ok(true) => {}
            Ok(false) => return Identity::Mismatched(Mismatch::NotLockHolder),
            // Windows has no lock table to read: the lock proves nothing
            // either way, and the other facts decide (docs/WINDOWS.md,
            // decision 8). Only there: on Linux ENOSYS is a refused system
            // call (seccomp), the fact unread; on other Unix every fact is
            // ENOSYS, so noting it changes nothing.
            #[cfg(windows)]
            Err(Errno::NOSYS) => {}
            Err(e) => unread.note(Unproved::new(Fact::Lock, pid, Some(e))),
        }
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
    let pstat = match pstat {
        Some(st) => Some(st),
        None => match proc::stat_result(pid) {
            Ok(st) => Some(st),
            Err(e) => {
                unread.note(Unproved::new(Fact::ProcessStat, pid, Some(e)));
                None
            }
        },
    };
    if pstat.as_ref().is_some_and(proc::is_kernel_thread_of) {
        return Identity::Mismatched(Mismatch::KernelThread);
    }
    let written = mtime(file);
    let started = pstat.as_ref().and_then(proc::start_time_of);
    match (started, written) {
        (Some(started), Some(written)) => {
            if let Ok(by) = started.duration_since(written) {
                if by > START_TOLERANCE {
                    return Identity::Mismatched(Mismatch::StartedAfterFile { by });
                }
            }
        }
        _ => unread.note(Unproved::new(Fact::StartTime, pid, None)),
    }
    match (proc::boot_time(), written) {
        (Some(boot), Some(written)) => {
            if written + START_TOLERANCE < boot {
                return Identity::Mismatched(Mismatch::FileBeforeBoot);
            }
        }
        _ => unread.note(Unproved::new(Fact::StartTime, pid, None)),
    }
    match unread.0 {
        None => Identity::Consistent,
        Some(u) => Identity::Unproved(u),
    }
}

/// The file's modification time.
pub(crate) fn mtime(st: &Stat) -> Option<SystemTime> {
    let secs = u64::try_from(st.st_mtime).ok()?;
    let nanos = u32::try_from(st.st_mtime_nsec).unwrap_or(0);
    SystemTime::UNIX_EPOCH.checked_add(Duration::new(secs, nanos))
}

/// How many names the file has (its link count).
// st_nlink's width differs between platforms.
#[allow(clippy::unnecessary_cast)]
pub(crate) fn links(file: &Stat) -> u64 {
    file.st_nlink as u64
}

/// Why a file may not be trusted to name a process to signal (as systemd
/// and start-stop-daemon harden this), from [`trust_problem`].
#[derive(Debug)]
pub(crate) struct Distrust {
    /// What is wrong, naming the path, and what to do.
    pub(crate) why: String,
    /// Whether pinning the process with a matching filter (`--exe`,
    /// `--user`, `--comm`) lifts it: yes for a file someone else could
    /// have written, never for a file with more than one link.
    pub(crate) pin_lifts: bool,
}

/// Why a file may not be trusted to name a process to signal; `None` when
/// it may.
///
/// For every caller, a file with more than one hard link is refused, and
/// no filter lifts that: another name, perhaps planted by someone else,
/// reaches the same inode, so the file is not proved to be the one meant.
///
/// When running as root, also refused (unless a filter pins the process):
/// a file reached through a directory a non-root user can write (who could
/// rename another file over it), except a sticky directory owned by root
/// (such as `/tmp`) whose entry is owned by root: others can neither
/// replace that entry nor own the directory. A file that is not `verified`
/// is also refused when owned by someone other than root or the caller,
/// or group- or world-writable.
pub(crate) fn trust_problem(path: &Path, file: &Stat, verified: bool) -> Option<Distrust> {
    let shown = OneLine(path);
    let links = links(file);
    if links > 1 {
        return Some(Distrust {
            why: format!(
                "{shown} has {links} hard links: another name for the same file may have been \
                 planted by someone else, and no filter lifts this (list the names with \
                 find / -xdev -samefile {shown}, and remove the ones that are not yours)"
            ),
            pin_lifts: false,
        });
    }
    let me = sys::geteuid();
    if me != 0 {
        return None;
    }
    let pinnable = |why: String| {
        Some(Distrust {
            why,
            pin_lifts: true,
        })
    };
    if !verified && file.st_uid != 0 && file.st_uid != me {
        return pinnable(format!("{shown} is owned by UID {}, not by root", file.st_uid));
    }
    if !verified && file.st_mode & 0o022 != 0 {
        return pinnable(format!(
            "{shown} is group- or world-writable (mode {:o})",
            file.st_mode & 0o7777
        ));
    }
    let abs = std::path::absolute(path).ok()?;
    let mut child_uid = file.st_uid;
    let mut dir = abs.parent();
    while let Some(d) = dir {
        let Ok(st) = sys::stat(d) else {
            return pinnable(format!("cannot check directory {}", OneLine(d)));
        };
        let writable_by_others =
            (st.st_uid != 0 && st.st_mode & 0o200 != 0) || st.st_mode & 0o022 != 0;
        let sticky = st.st_mode & 0o1000 != 0;
        let protected = sticky && st.st_uid == 0 && child_uid == 0;
        if writable_by_others && !protected {
            return pinnable(format!(
                "{shown} is reached through {}, which a non-root user can write (owner UID {}, mode {:o})",
                OneLine(d),
                st.st_uid,
                st.st_mode & 0o7777
            ));
        }
        child_uid = st.st_uid;
        dir = d.parent();
    }
    None
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn an_executable_path_is_shown_on_one_line_that_no_name_can_forge() {
        use std::os::unix::ffi::OsStrExt;
        let name = std::ffi::OsStr::from_bytes(b"/tmp/a\n/x: PID 1 stopped\\\x1b[2J\xff\xc2\x85");
        let m = Mismatch::Exe {
            wanted: PathBuf::from("/usr/bin/x"),
            actual: PathBuf::from(name),
        };
        let shown = m.to_string();
        assert!(!shown.chars().any(char::is_control), "{shown:?}");
        assert_eq!(
            shown,
            "its executable is /tmp/a\\n/x: PID 1 stopped\\\\\\u{1b}[2J\\xFF\\u{85}, not \
             /usr/bin/x (--exe)"
        );
    }
}
