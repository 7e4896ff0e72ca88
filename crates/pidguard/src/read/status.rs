//! Reading PID files and asking what state they are in.
//!
//! Readers never take the lock for longer than an instant (a shared-lock
//! probe), never follow a symlink, never block on a FIFO, and read at most a
//! few dozen bytes. Files written by other programs are read with the
//! lenient [`Rule`].

use std::ffi::OsStr;
use std::fmt;
use std::io;
use crate::sys::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::time::Duration;

use crate::error::{Error, Result, UnsafeFile};
use crate::read::identity::{identify, links, Filters, Identity, Me, Mismatch, Unproved};
use crate::read::kernel_id::{self, kernel_identity, Absent, DecidedBy, KernelIdentity};
use crate::pid::{ParseErrorKind, Pid, Rule};
use crate::fs::{self, read_fd, refuse_foreign_links, Verified, MID_WRITE_BACKOFF_US};
use crate::read::process::{liveness_with_stat, Liveness};
use crate::sys::{self, Stat};
use crate::sys::proc::ProcStat;

/// The state of a PID file.
#[derive(Debug)]
pub enum Status {
    /// The file names a live process. `locked` says whether its lock is held
    /// (always, for files pidguard and other locking tools write; files of
    /// tools that do not lock, such as nginx's, are never locked).
    Running {
        /// The process named in the file.
        pid: Pid,
        /// Whether some process holds the file's lock.
        locked: bool,
    },
    /// The file is locked but holds no PID yet: its holder is starting (for
    /// example between BSD `pidfile_open` and `pidfile_write`, or a file
    /// locked by `flock(1)`, which writes nothing).
    Starting,
    /// The file is locked, so an instance runs, but its holder could not
    /// be identified from here: the PID in the file (given) does not hold
    /// the lock (it exited and a process that inherited the lock holds it,
    /// or the holder lives in another PID namespace and the PID names an
    /// unrelated process here). A held lock is never stale.
    Held(Pid),
    /// The file is not locked and names no live owner: its process is gone,
    /// or the PID now names a process proved not to be its owner (see the
    /// [identity](crate::Identity) verdict; such a live process's file is
    /// only removed when the process is gone, see `docs/GUARANTEES.md`).
    Stale(Pid),
    /// There is no file.
    NotRunning,
    /// The state cannot be told: the file is unreadable, holds invalid
    /// content, or is not a regular file. The error says which.
    Unknown(Error),
}

impl Status {
    /// The PID of a running holder.
    pub fn running_pid(&self) -> Option<Pid> {
        match self {
            Status::Running { pid, .. } => Some(*pid),
            _ => None,
        }
    }

    /// Whether an instance holds or owns the file ([`Status::Running`],
    /// [`Status::Starting`] or [`Status::Held`]).
    pub fn is_running(&self) -> bool {
        matches!(
            self,
            Status::Running { .. } | Status::Starting | Status::Held(_)
        )
    }

    /// A short lowercase name: `running` (also for [`Status::Held`]),
    /// `starting`, `stale`, `not-running`, `unknown`.
    pub fn name(&self) -> &'static str {
        match self {
            Status::Running { .. } | Status::Held(_) => "running",
            Status::Starting => "starting",
            Status::Stale(_) => "stale",
            Status::NotRunning => "not-running",
            Status::Unknown(_) => "unknown",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Status::Running { pid, locked: true } => write!(f, "running (PID {pid}, locked)"),
            Status::Running { pid, locked: false } => {
                write!(f, "running (PID {pid}; the file is not locked)")
            }
            Status::Starting => f.write_str("starting (the file is locked but holds no PID yet)"),
            Status::Held(pid) => write!(
                f,
                "running (locked, held by a process that could not be identified; \
                 the file names PID {pid}, which does not hold the lock)"
            ),
            Status::Stale(pid) => write!(f, "stale (PID {pid} is gone or is not the file's owner)"),
            Status::NotRunning => f.write_str("not running (no PID file)"),
            Status::Unknown(e) => write!(f, "unknown: {e}"),
        }
    }
}

/// Reads the PID in a file, with the lenient rule (first line, surrounding
/// whitespace allowed). The lock is not looked at: use [`status`] to know
/// whether the process is the file's live holder.
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// # let path = dir.path().join("nginx.pid");
/// std::fs::write(&path, "  1234\n")?;
/// assert_eq!(pidguard::read(&path)?.get(), 1234);
/// std::fs::write(&path, "0\n")?;
/// assert_eq!(pidguard::read(&path).unwrap_err().kind(), pidguard::ErrorKind::InvalidContents);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn read(path: impl AsRef<Path>) -> Result<Pid> {
    read_with(path, Rule::Lenient)
}

/// Reads the PID in a file with the given rule.
pub fn read_with(path: impl AsRef<Path>, rule: Rule) -> Result<Pid> {
    let path = path.as_ref();
    let (fd, _) = open_regular(path)?;
    read_fd(&fd, path, rule)
}

/// Opens an existing PID file for reading, refusing anything but a regular
/// file (checked before opening, so a device is never opened).
fn open_regular(path: &Path) -> Result<(OwnedFd, Stat)> {
    refuse_foreign_links(path)?;
    checked(path, fs::open_verified(path, fs::Open::Read)?, |e| Error::open(path, e))
}

/// What [`open_regular`] and [`open_target`] make of
/// [`fs::open_verified`]'s answer: the file, or an error (`open_error` says
/// what a failed `open` means).
fn checked(
    path: &Path,
    found: Verified,
    open_error: impl FnOnce(io::Error) -> Error,
) -> Result<(OwnedFd, Stat)> {
    match found {
        Verified::Open { fd, opened } => Ok((fd, opened)),
        Verified::NotLooked(e) => Err(Error::open(path, e)),
        Verified::NotOpened(e) => Err(open_error(e)),
        Verified::Replaced => Err(Error::open(
            path,
            io::Error::other("the file was replaced while it was being opened"),
        )),
    }
}

/// A file to inspect: a path, or an entry of a directory being listed.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Target<'a> {
    /// A path, resolved once per open (symlinks refused, see [`open_regular`]).
    Path(&'a Path),
    /// `name` in the open directory `dir`, a regular file according to
    /// `readdir`; `path` names it in messages.
    Entry {
        /// The directory being listed.
        dir: BorrowedFd<'a>,
        /// The entry's name in it.
        name: &'a OsStr,
        /// `dir`'s path joined with `name`.
        path: &'a Path,
    },
}

impl Target<'_> {
    /// The path, for messages.
    pub(crate) fn path(&self) -> &Path {
        match self {
            Target::Path(p) | Target::Entry { path: p, .. } => p,
        }
    }
}

/// [`open_regular`] for a [`Target`]. A directory entry is looked at and
/// opened relative to its directory: one path component to resolve, not
/// the whole path, with the same order as [`open_regular`] (`lstat`, then
/// `open` only if it is a regular file, then `fstat` to check it is the
/// inode looked at), so that a device or FIFO is never opened.
fn open_target(target: Target<'_>) -> Result<(OwnedFd, Stat)> {
    let (dir, name, path) = match target {
        Target::Path(path) => return open_regular(path),
        Target::Entry { dir, name, path } => (dir, name, path),
    };
    checked(path, fs::open_verified(path, fs::Open::At(dir, name))?, |e| {
        if sys::is_nofollow_refusal(&e) {
            // Replaced by a symlink since the lstat.
            Error::unsafe_file(path, UnsafeFile::Symlink)
        } else {
            Error::open(path, e)
        }
    })
}

/// The state of the PID file at `path`.
///
/// A locked file is always running: [`Status::Running`] names the lock's
/// holder as this PID namespace numbers it (the process that holds the
/// lock, wherever the file's PID came from), [`Status::Held`] says it
/// could not be identified. An unlocked file naming a live process whose
/// [identity](crate::Identity) is mismatched (a reused PID, a thread, PID
/// 1, a process in another namespace…) is [`Status::Stale`]; one whose
/// identity is unproved (a fact could not be read) is
/// [`Status::Unknown`] with an [`ErrorKind::Unproved`](crate::ErrorKind)
/// error naming the fact. Use [`inspect`] for the identity verdict and
/// filters.
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// # let path = dir.path().join("app.pid");
/// use pidguard::{status, Pidfile, Status};
///
/// assert!(matches!(status(&path), Status::NotRunning));
/// let guard = Pidfile::new(&path).acquire()?;
/// assert!(matches!(status(&path), Status::Running { locked: true, .. }));
/// drop(guard);
/// assert!(matches!(status(&path), Status::NotRunning));
/// # Ok::<(), pidguard::Error>(())
/// ```
pub fn status(path: impl AsRef<Path>) -> Status {
    inspect(path, &Filters::default()).status
}

/// A PID file's state together with the identity verdict on its PID.
#[derive(Debug)]
pub struct Inspection {
    /// The state, without the filters (see [`status`]).
    pub status: Status,
    /// The verdict on the owner named by [`Status::Running`] (or, for other
    /// states, on the PID in the file when it names a live process), with
    /// the filters applied.
    pub identity: Option<Identity>,
    /// Which evidence decided [`identity`](Inspection::identity): the
    /// kernel's identity record, the lock, or the consistency checks.
    pub decided_by: Option<DecidedBy>,
    /// Whether the file's lock was held when it was read.
    pub locked: bool,
    /// The PID written in the file, when one was read. It differs from
    /// [`Status::Running`]'s when the lock's holder is another process
    /// (a holder in a container, whose file holds its PID in its own
    /// namespace, or a process that inherited the lock).
    pub file_pid: Option<Pid>,
    /// The file's metadata (from the open descriptor), when it was opened.
    pub(crate) file: Option<Stat>,
    /// Whether the file's owner is proved gone: not locked, and the PID is
    /// dead. Only then may the file be removed.
    pub(crate) owner_gone: bool,
}

impl Inspection {
    /// Whether the file may be removed as stale: nobody holds its lock and
    /// the PID in it is dead (not merely hidden). A live process that is
    /// mismatched (a reused PID, a thread's TID…) keeps its file.
    pub fn owner_gone(&self) -> bool {
        self.owner_gone
    }
}

/// Reads the file at `path`, decides its state and classifies its PID
/// (see [`Identity`](crate::Identity)), applying `filters`.
pub fn inspect(path: impl AsRef<Path>, filters: &Filters) -> Inspection {
    inspect_as(path.as_ref(), filters, Me::now())
}

/// [`inspect`], with the caller's identity looked up once for many files.
pub(crate) fn inspect_as(path: &Path, filters: &Filters, me: Me) -> Inspection {
    inspect_target(Target::Path(path), filters, me)
}

/// [`inspect_as`] for a [`Target`]: the evidence model applied to one file.
pub(crate) fn inspect_target(target: Target<'_>, filters: &Filters, me: Me) -> Inspection {
    let Classified {
        status,
        file,
        fd,
        pstat,
        locked,
    } = classify(target);
    let mut found = Inspection {
        file_pid: match &status {
            Status::Running { pid, .. } | Status::Stale(pid) | Status::Held(pid) => Some(*pid),
            _ => None,
        },
        status,
        identity: None,
        decided_by: None,
        locked,
        file,
        owner_gone: false,
    };
    let Some(st) = found.file else {
        return found;
    };
    // The file's kernel identity record, asked only where no lock decides.
    let record = Record {
        fd: fd.as_ref().map(|fd| fd.as_fd()),
        st: &st,
        me,
    };
    let not_asked = KernelIdentity::Absent(Absent::NotAsked);
    match std::mem::replace(&mut found.status, Status::NotRunning) {
        // Unlocked, and the PID is dead: the owner is proved gone.
        Status::Stale(pid) => {
            found.owner_gone = true;
            found.status = Status::Stale(pid);
        }
        // Unlocked, naming a live process: it is the owner only if its
        // kernel identity record proves it, or every consistency check was
        // made and passed.
        Status::Running { pid, locked: false } => {
            let owner = identify(pid, &st, false, pstat, me, record.about(pid));
            // The record names another process than the one at the PID
            // here: the file may have been written in a PID namespace
            // below this one, where its owner has that PID.
            if let Identity::Mismatched(Mismatch::KernelIdentity { .. }) = owner {
                if found.name_recorded_elsewhere(&record, pid, None, false, filters) {
                    return found;
                }
            }
            found.status = match &owner {
                Identity::Verified | Identity::Consistent => Status::Running { pid, locked: false },
                Identity::Unproved(u) => Status::Unknown(Error::unproved(target.path(), pid, u)),
                // Alive, not the owner: stale, but the file is kept (only a
                // dead PID proves the owner gone).
                Identity::Mismatched(_) => Status::Stale(pid),
            };
            found.set_identity(with_filters(owner, filters, pid), false);
        }
        // Locked: an instance runs. Who holds the lock?
        Status::Running { pid, locked: true } => {
            let owner = identify(pid, &st, true, pstat, me, not_asked);
            if owner.may_signal() {
                found.status = Status::Running { pid, locked: true };
                found.set_identity(with_filters(owner, filters, pid), true);
            } else {
                resolve_holder(&mut found, pid, Some(owner), filters, &record);
            }
        }
        Status::Held(pid) => resolve_holder(&mut found, pid, None, filters, &record),
        other => found.status = other,
    }
    found
}

impl Inspection {
    /// Sets the verdict and the evidence that decided it (`locked`: judged
    /// by the lock).
    fn set_identity(&mut self, identity: Identity, locked: bool) {
        self.decided_by = DecidedBy::of(&identity, locked);
        self.identity = Some(identity);
    }

    /// Names the process the file's kernel identity record proves its
    /// owner under another PID than the file's `file_pid` (see
    /// [`kernel_id::recorded_elsewhere`]; `holder` is the lock's, if it
    /// was found), as running (`locked`: the file's lock is held), decided
    /// by the kernel identity. `false` when no process is proved.
    fn name_recorded_elsewhere(
        &mut self,
        record: &Record<'_>,
        file_pid: Pid,
        holder: Option<Pid>,
        locked: bool,
        filters: &Filters,
    ) -> bool {
        let Some(owner) = record.elsewhere(file_pid, holder) else {
            return false;
        };
        // The record is proved; a kernel thread still owns no file.
        let verdict = identify(
            owner,
            record.st,
            false,
            None,
            record.me,
            KernelIdentity::Same,
        );
        if !verdict.may_signal() {
            return false;
        }
        self.status = Status::Running { pid: owner, locked };
        self.set_identity(with_filters(verdict, filters, owner), false);
        true
    }
}

/// The file's kernel identity record (see `kernel_id.rs`), asked about
/// processes.
struct Record<'a> {
    /// The open file, when it was kept (a file naming a live PID).
    fd: Option<BorrowedFd<'a>>,
    /// Its `fstat`.
    st: &'a Stat,
    me: Me,
}

impl Record<'_> {
    /// What the record says about the process at `pid` here.
    fn about(&self, pid: Pid) -> KernelIdentity {
        match self.fd {
            Some(fd) => kernel_identity(pid, fd, self.st, self.me.pid),
            None => KernelIdentity::Absent(Absent::NoRecord),
        }
    }

    /// The process the record (about `file_pid`) proves the owner, under
    /// another PID here: see [`kernel_id::recorded_elsewhere`].
    fn elsewhere(&self, file_pid: Pid, holder: Option<Pid>) -> Option<Pid> {
        let recorded = kernel_id::recorded(file_pid, self.fd?).ok()?;
        kernel_id::recorded_elsewhere(recorded, file_pid, holder, self.st, self.me.pid)
    }
}

/// The owner verdict with the user's filters applied: a filter that does
/// not match (or could not be checked) overrides a verified or consistent
/// verdict; a mismatch or unproved verdict stays what it is.
fn with_filters(owner: Identity, filters: &Filters, pid: Pid) -> Identity {
    if !owner.may_signal() || filters.is_empty() {
        return owner;
    }
    filters.check(pid).unwrap_or(owner)
}

/// The file is locked, and the PID it names (`file_pid`, judged `owner`;
/// `None` when it is dead) is not proved to hold the lock: find the
/// process that does. The lock table (`/proc/locks`) names the process
/// that took the lock, numbered for this PID namespace (a holder in a
/// container appears under its PID here); it is only a candidate, proved
/// by its own descriptor. Failing that (the locker exited and a process
/// that inherited the lock holds it) every process is looked at.
///
/// The file's kernel identity record is asked first: the file's live PID
/// it proves, or (the file written in a PID namespace below this one) the
/// process it proves under another PID here, the lock's holder or not, is
/// the owner.
fn resolve_holder(
    found: &mut Inspection,
    file_pid: Pid,
    owner: Option<Identity>,
    filters: &Filters,
    record: &Record<'_>,
) {
    let (st, me) = (record.st, record.me);
    // The stat field types differ between platforms.
    #[allow(clippy::unnecessary_cast)]
    let (dev, ino) = (st.st_dev as u64, st.st_ino as u64);
    let holds = |p: Pid| {
        sys::proc::holds_flock(p, dev, ino) == Ok(true)
            && sys::proc::status_result(p).is_ok_and(|s| s.tgid == p.get())
    };
    // A holder of the lock through its own descriptor is verified, unless
    // another name reaches the file's inode ("F is F"): then the lock
    // proves nothing about this path, and the consistency checks decide.
    let not_asked = KernelIdentity::Absent(Absent::NotAsked);
    let held = |p: Pid| {
        if links(st) <= 1 {
            Identity::Verified
        } else {
            identify(p, st, true, None, me, not_asked)
        }
    };
    let lockers = sys::proc::flock_pids(ino);
    let holder = lockers
        .iter()
        .copied()
        .find(|&p| p != file_pid && holds(p))
        .or_else(|| {
            sys::proc::all_pids()
                .into_iter()
                .find(|&p| p != file_pid && p != me.pid && holds(p))
        })
        .or_else(|| holds(me.pid).then_some(me.pid));
    if owner.is_some() {
        // The file names the holder's child still at its gate, about to
        // get the lock (a supervisor hands the lock to its command a
        // moment after writing the command's PID; until it execs, the
        // child runs the supervisor's executable): that child is the owner
        // if it is consistent in every other way. Any other child of the
        // holder (one that merely has the file open) is not.
        // The file's live PID whose kernel identity record proves it the
        // owner is the owner too, whoever took the lock: anyone who can
        // read a file can flock it, and a process that locked another's
        // file is not its owner (signalled, its exit would let the live
        // owner's file be removed).
        let about = record.about(file_pid);
        let at_gate = |h: Pid| {
            sys::proc::status_result(file_pid).is_ok_and(|s| s.ppid == h.get())
                && sys::proc::same_exe(file_pid, h)
        };
        if about == KernelIdentity::Same || holder.is_some_and(at_gate) {
            let child = identify(file_pid, st, false, None, me, about);
            if child.may_signal() {
                found.status = Status::Running {
                    pid: file_pid,
                    locked: true,
                };
                found.set_identity(with_filters(child, filters, file_pid), false);
                return;
            }
        }
        // The child may have got the lock (and exec'd) since it was
        // judged: it holds it now through its own descriptor.
        if holder.is_some() && holds(file_pid) {
            found.status = Status::Running {
                pid: file_pid,
                locked: true,
            };
            found.set_identity(with_filters(held(file_pid), filters, file_pid), true);
            return;
        }
    }
    // Written in a PID namespace below this one: the record proves its
    // owner by the kernel's identity, under its PID here (the lock's
    // holder, or not: see above).
    if found.name_recorded_elsewhere(record, file_pid, holder, true, filters) {
        return;
    }
    match (holder, owner) {
        (Some(h), owner) => {
            found.status = Status::Running {
                pid: h,
                locked: true,
            };
            // The file's PID runs without the lock (or whether it holds it
            // could not be read): if it passes every other check as the
            // owner, or those could not be read either, a holder that is
            // not its ancestor and has no authority over the file (neither
            // root nor the file's user) proves nothing: anyone who can
            // read a file can lock it (and stopping that holder would let
            // the live owner's file be removed).
            if matches!(
                owner,
                Some(Identity::Mismatched(Mismatch::NotLockHolder) | Identity::Unproved(_))
            ) {
                let alone = identify(file_pid, st, false, None, me, not_asked);
                if !matches!(alone, Identity::Mismatched(_)) && !has_authority(h, file_pid, st) {
                    let uid = file_uid(st);
                    found.set_identity(Identity::Unproved(Unproved::contested(file_pid, h, uid)), true);
                    return;
                }
            }
            found.set_identity(with_filters(held(h), filters, h), true);
        }
        // The file's PID may hold the lock, but that could not be read;
        // the lock table says it took the lock: name it, unproved.
        (None, Some(Identity::Unproved(u))) if lockers.contains(&file_pid) => {
            found.status = Status::Running {
                pid: file_pid,
                locked: true,
            };
            found.set_identity(Identity::Unproved(u), true);
        }
        (None, owner) => {
            found.status = Status::Held(file_pid);
            if let Some(owner) = owner {
                found.set_identity(owner, true);
            }
        }
    }
}

/// Whether the lock's holder `h` may be the owner of a file whose own PID
/// `file_pid` runs: it is an ancestor of that process (a parent that
/// took the lock for its child), or runs as root or as the file's owner
/// (real, effective and saved UIDs). What cannot be read gives no
/// authority.
fn has_authority(h: Pid, file_pid: Pid, st: &Stat) -> bool {
    let owner = file_uid(st);
    if sys::proc::status_result(h)
        .is_ok_and(|s| s.uids[1] == 0 || s.uids.iter().all(|&u| u == owner))
    {
        return true;
    }
    let mut p = file_pid;
    for _ in 0..64 {
        match sys::proc::status_result(p) {
            Ok(s) if s.ppid == h.get() => return true,
            Ok(s) => match Pid::new(s.ppid) {
                Some(parent) if parent != p => p = parent,
                _ => return false,
            },
            Err(_) => return false,
        }
    }
    false
}

/// The file's owner (its UID).
// st_uid's width differs between platforms.
#[allow(clippy::unnecessary_cast)]
fn file_uid(st: &Stat) -> u32 {
    st.st_uid as u32
}

/// The state from the lock and liveness alone (and, for a running file,
/// what `/proc/<pid>/stat` said). A locked file whose PID is dead is
/// [`Status::Held`] here, never stale.
fn classify(target: Target<'_>) -> Classified {
    let path = target.path();
    let (fd, st) = match open_target(target) {
        Ok(x) => x,
        Err(e) if e.io_error().map(io::Error::kind) == Some(io::ErrorKind::NotFound) => {
            return Classified::new(Status::NotRunning, None, false)
        }
        Err(e) => return Classified::new(Status::Unknown(e), None, false),
    };
    let file = Some(st);
    let mut pauses = MID_WRITE_BACKOFF_US.iter();
    loop {
        let locked = match sys::is_locked(&fd) {
            Ok(l) => l,
            Err(e) => return Classified::new(Status::Unknown(Error::open(path, e)), file, false),
        };
        let content = read_fd(&fd, path, Rule::Lenient);
        if !locked {
            if let Some(why @ UnsafeFile::HardLinks(_)) = fs::unsafe_reason(&st) {
                let e = Error::unsafe_file(path, why);
                return Classified::new(Status::Unknown(e), file, locked);
            }
            return match content {
                Ok(pid) => match liveness_with_stat(pid) {
                    (Liveness::Dead, _) => Classified::new(Status::Stale(pid), file, locked),
                    (_, pstat) => Classified {
                        pstat,
                        fd: Some(fd),
                        ..Classified::new(Status::Running { pid, locked }, file, locked)
                    },
                },
                Err(e) => Classified::new(Status::Unknown(e), file, locked),
            };
        }
        // Locked: a live PID is the answer. Otherwise the holder may be
        // mid-write; give it a few milliseconds.
        if let Ok(pid) = content {
            let (alive, pstat) = liveness_with_stat(pid);
            if alive != Liveness::Dead {
                return Classified {
                    pstat,
                    fd: Some(fd),
                    ..Classified::new(Status::Running { pid, locked }, file, locked)
                };
            }
        }
        match pauses.next() {
            Some(us) => std::thread::sleep(Duration::from_micros(*us)),
            None => {
                let status = match content {
                    // Locked, its PID dead: a process that inherited the
                    // lock (or one in another namespace) holds it.
                    Ok(pid) => Status::Held(pid),
                    Err(e) if e.parse_error().map(|p| p.kind()) == Some(ParseErrorKind::Empty) => {
                        Status::Starting
                    }
                    Err(e) => Status::Unknown(e),
                };
                return Classified::new(status, file, locked);
            }
        }
    }
}

/// What [`classify`] found.
struct Classified {
    status: Status,
    /// The file's `fstat`, when it was opened.
    file: Option<Stat>,
    /// The open file, kept for a running one (its kernel identity record).
    fd: Option<OwnedFd>,
    /// `/proc/<pid>/stat` of a live process named in the file.
    pstat: Option<ProcStat>,
    /// Whether the lock was held at the last look.
    locked: bool,
}

impl Classified {
    fn new(status: Status, file: Option<Stat>, locked: bool) -> Classified {
        Classified {
            status,
            file,
            fd: None,
            pstat: None,
            locked,
        }
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    /// What `list` sees for a directory entry that is not a regular file by
    /// the time it is opened: refused from `fstatat`, without opening it.
    #[test]
    fn directory_entries_that_are_not_regular_files_are_refused_unopened() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "1\n").unwrap();
        std::os::unix::fs::symlink(&victim, dir.path().join("link.pid")).unwrap();
        sys::mkfifo(&dir.path().join("fifo.pid")).unwrap();
        std::fs::create_dir(dir.path().join("dir.pid")).unwrap();
        let dir_fd = sys::open_dir(dir.path()).unwrap();
        for (name, why) in [
            ("link.pid", UnsafeFile::Symlink),
            ("fifo.pid", UnsafeFile::Fifo),
            ("dir.pid", UnsafeFile::Directory),
        ] {
            let path = dir.path().join(name);
            let target = Target::Entry {
                dir: dir_fd.as_fd(),
                name: OsStr::new(name),
                path: &path,
            };
            let found = inspect_target(target, &Filters::default(), Me::now());
            match found.status {
                Status::Unknown(e) => {
                    assert_eq!(e.unsafe_file_reason(), Some(why), "{name}: {e}");
                    assert_eq!(e.path(), Some(path.as_path()), "{name}");
                }
                other => panic!("{name}: {other:?}"),
            }
        }
        // A regular entry is read as usual; a vanished one is "not running".
        std::fs::write(dir.path().join("ok.pid"), "1\n").unwrap();
        let path = dir.path().join("ok.pid");
        let target = Target::Entry {
            dir: dir_fd.as_fd(),
            name: OsStr::new("ok.pid"),
            path: &path,
        };
        let found = inspect_target(target, &Filters::default(), Me::now());
        assert!(
            matches!(found.status, Status::Stale(p) if p.get() == 1),
            "{:?}",
            found.status
        );
        let path = dir.path().join("gone.pid");
        let target = Target::Entry {
            dir: dir_fd.as_fd(),
            name: OsStr::new("gone.pid"),
            path: &path,
        };
        let found = inspect_target(target, &Filters::default(), Me::now());
        assert!(
            matches!(found.status, Status::NotRunning),
            "{:?}",
            found.status
        );
    }
}
