//! Many PID files in one directory: [`list`], [`sweep`], and a [`Registry`]
//! of managed children that cleans up orphans at start-up.
//!
//! An application that manages child servers keeps one PID file per child
//! in a directory (`dir/<name>.pid`), with optional metadata next to it
//! (`dir/<name>.meta`, `key=value` lines, written atomically). When the
//! manager crashes, its children live on as orphans; on the next start the
//! manager opens the registry (taking its singleton lock first, so two
//! managers never sweep each other's children) and sweeps.
//!
//! ```
//! # let dir = tempfile::tempdir().unwrap();
//! use pidguard::registry::{Registry, SweepPolicy};
//!
//! let registry = Registry::open(dir.path())?;
//! let report = registry.sweep(&SweepPolicy::default())?; // orphans of a crashed run
//! let mut child = registry.spawn("worker", std::process::Command::new("sleep").arg("5"), &[("port", "8080")])?;
//! assert_eq!(registry.list()?.len(), 1);
//! # child.kill().unwrap(); child.wait().unwrap();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::BTreeSet;
use std::io;
use crate::sys::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use crate::error::{Error, ErrorKind, Result, IoResultExt};
use crate::read::identity::{mtime, Filters, Identity, Me};
use crate::lock::location::validate_name;
use crate::pid::Pid;
use crate::lock::{remove_unlocked, Guard, Pidfile, Removal};
use crate::signal::Schedule;
use crate::read::status::{inspect_target, Status, Target};
use crate::control::{stop, Outcome};
use crate::sys;

/// The state column of [`list`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// A live process owns the file.
    Running,
    /// Locked, no PID yet.
    Starting,
    /// The process is gone, or the PID was reused.
    Stale,
    /// Unreadable or invalid.
    Unknown,
}

impl State {
    /// `running`, `starting`, `stale` or `unknown`.
    pub fn name(self) -> &'static str {
        match self {
            State::Running => "running",
            State::Starting => "starting",
            State::Stale => "stale",
            State::Unknown => "unknown",
        }
    }
}

/// One PID file, as [`list`] sees it.
#[derive(Debug)]
pub struct Row {
    /// The file name without `.pid`.
    pub name: String,
    /// The file's path.
    pub path: PathBuf,
    /// Its state.
    pub state: State,
    /// The PID it names, when readable.
    pub pid: Option<Pid>,
    /// The verdict on that PID, when it names a live process.
    pub identity: Option<Identity>,
    /// Which evidence decided the verdict.
    pub decided_by: Option<crate::DecidedBy>,
    /// Whether its lock is held.
    pub locked: bool,
    /// Time since the file was last written.
    pub age: Option<Duration>,
    /// The command line of the process the PID names, when it is alive
    /// (also when it is not the file's owner: what the PID runs now),
    /// arguments separated by spaces, bytes as they are.
    pub command: Option<std::ffi::OsString>,
    /// Why the state is unknown.
    pub problem: Option<Error>,
    /// Whether the file's owner is proved gone (see
    /// [`Inspection::owner_gone`](crate::Inspection::owner_gone)): only
    /// then is a stale file removed.
    pub owner_gone: bool,
}

impl Row {
    /// [`Identity::name`]: `verified`, `consistent`, `unproved` or
    /// `mismatched`; `None` when no live process is named.
    pub fn identity_label(&self) -> Option<&'static str> {
        self.identity.as_ref().map(Identity::name)
    }
}

/// Why a directory entry is not listed as a PID file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Skip {
    /// A symbolic link (never followed).
    Symlink,
    /// A directory.
    Directory,
    /// Not a regular file (FIFO, socket, device).
    NotRegular,
    /// A regular file whose name does not end in `.pid`.
    NotPidFile,
    /// A subdirectory that could not be opened (permissions).
    Unreadable,
    /// A subdirectory that is one of its own ancestors (a bind mount).
    Loop,
}

impl Skip {
    /// A short description.
    pub fn name(self) -> &'static str {
        match self {
            Skip::Symlink => "symlink",
            Skip::Directory => "directory",
            Skip::NotRegular => "not a regular file",
            Skip::NotPidFile => "not a PID file",
            Skip::Unreadable => "unreadable directory",
            Skip::Loop => "directory loop",
        }
    }
}

/// A directory entry.
#[derive(Debug)]
pub enum Entry {
    /// A `*.pid` regular file.
    File(Row),
    /// Anything else, never opened or followed.
    Skipped {
        /// The entry's file name (relative to the listed directory).
        name: String,
        /// The entry's path.
        path: PathBuf,
        /// Why it was skipped.
        reason: Skip,
    },
}

/// Lists every entry of `dir`: a [`Row`] per `*.pid` regular file, sorted
/// by name, and the rest as skipped.
pub fn list(dir: impl AsRef<Path>) -> Result<Vec<Entry>> {
    list_within(dir, 0)
}

/// [`list`], descending `max_depth` levels into subdirectories (0: `dir`
/// only; see [`for_each_within`]).
pub fn list_within(dir: impl AsRef<Path>, max_depth: usize) -> Result<Vec<Entry>> {
    let mut out = Vec::new();
    for_each_within(dir, max_depth, |e| out.push(e))?;
    Ok(out)
}

/// What [`list`] returns, handed to `f` one entry at a time in the same
/// order, each as soon as it is inspected: only the names are kept in
/// memory, so a directory of any size is listed in little memory.
pub fn for_each(dir: impl AsRef<Path>, f: impl FnMut(Entry)) -> Result<()> {
    for_each_within(dir, 0, f)
}

/// [`for_each`], descending up to `max_depth` levels into subdirectories
/// (Debian's `/run/redis/redis-server.pid`): a subdirectory's entries come
/// where the subdirectory sorts, named by their path relative to `dir`
/// (`redis/redis-server`); one deeper than `max_depth` is skipped as a
/// directory. A subdirectory is opened relative to its parent's descriptor
/// and never through a symlink (a symlinked directory is skipped as a
/// symlink); one that cannot be opened, or that is one of its own
/// ancestors (a bind mount), is skipped with that reason.
pub fn for_each_within(
    dir: impl AsRef<Path>,
    max_depth: usize,
    mut f: impl FnMut(Entry),
) -> Result<()> {
    let dir = dir.as_ref();
    if let Some(found) = sys::foreign_symlink(dir) {
        return Err(Error::foreign_symlink(dir, &found));
    }
    // One descriptor on the directory: entries are read from it and the PID
    // files opened relative to it, so the directory's path is resolved once,
    // not for every file. (Metadata files and what `sweep` does to a row go
    // by path again, each with its own checks.)
    let dir_fd = sys::open_dir(dir).open_err(dir)?;
    let st = sys::fstat(&dir_fd).open_err(dir)?;
    let mut walk = Walk {
        me: Me::now(),
        ancestors: vec![dir_id(&st)],
        f: &mut f,
    };
    walk.dir(&dir_fd, dir, Path::new(""), max_depth)
}

/// A directory's (device, inode).
#[allow(clippy::unnecessary_cast)]
fn dir_id(st: &sys::Stat) -> (u64, u64) {
    (st.st_dev as u64, st.st_ino as u64)
}

/// One listing in progress, possibly across subdirectories.
struct Walk<'f> {
    me: Me,
    /// The directories from the listed one down to the current one.
    ancestors: Vec<(u64, u64)>,
    f: &'f mut dyn FnMut(Entry),
}

impl Walk<'_> {
    /// Lists the open directory `dir_fd` (at `dir`, `prefix` relative to
    /// the listed directory), `depth` more levels down.
    fn dir(
        &mut self,
        dir_fd: &sys::OwnedFd,
        dir: &Path,
        prefix: &Path,
        depth: usize,
    ) -> Result<()> {
        use sys::FileKind;

        let entries = sys::read_dir(dir_fd.as_fd()).open_err(dir)?;
        // (file name, why it is skipped); the type comes from readdir (an
        // `lstat` only where the filesystem does not say), so nothing is
        // opened or followed here.
        let mut names: Vec<(std::ffi::OsString, Option<Skip>)> = Vec::new();
        for entry in entries {
            let file_name = entry.name;
            let bytes = file_name.as_encoded_bytes();
            let kind = match entry.kind {
                None => match sys::lstat_at(dir_fd.as_fd(), &file_name) {
                    Ok(st) => sys::file_kind(&st),
                    // Gone since readdir.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(Error::open(&dir.join(&file_name), e)),
                },
                Some(kind) => kind,
            };
            let pid_file = bytes.ends_with(b".pid") && !bytes.starts_with(b".");
            let skip = match kind {
                FileKind::Symlink => Some(Skip::Symlink),
                FileKind::Directory => Some(Skip::Directory),
                FileKind::Regular if pid_file => None,
                FileKind::Regular => Some(Skip::NotPidFile),
                FileKind::Other => Some(Skip::NotRegular),
            };
            names.push((file_name, skip));
        }
        // Rows are named without ".pid" and sorted by that name (compared in
        // place: no copy of the names for sorting).
        names.sort_by(|a, b| sort_key(&a.0, a.1).cmp(&sort_key(&b.0, b.1)));
        // Metadata files are looked for only where the listing shows one.
        let metas: BTreeSet<String> = names
            .iter()
            .filter(|(_, skip)| *skip == Some(Skip::NotPidFile))
            .filter_map(|(n, _)| n.to_str()?.strip_suffix(".meta").map(str::to_owned))
            .collect();
        for (file_name, skip) in names {
            let rel = prefix.join(&file_name);
            let path = dir.join(&file_name);
            let name = rel.to_string_lossy().into_owned();
            match skip {
                Some(Skip::Directory) if depth > 0 => {
                    self.subdir(dir_fd, &file_name, &path, &rel, depth - 1)?
                }
                Some(reason) => (self.f)(Entry::Skipped { name, path, reason }),
                None => {
                    let has_meta = file_name
                        .to_str()
                        .is_some_and(|n| metas.contains(n.trim_end_matches(".pid")));
                    let target = Target::Entry {
                        dir: dir_fd.as_fd(),
                        name: &file_name,
                        path: &path,
                    };
                    if let Some(row) = row(target, &name, has_meta, self.me) {
                        (self.f)(Entry::File(row));
                    }
                }
            }
        }
        Ok(())
    }

    /// Opens the subdirectory `name` of `parent` (never through a symlink)
    /// and lists it, or reports why not.
    fn subdir(
        &mut self,
        parent: &sys::OwnedFd,
        name: &std::ffi::OsStr,
        path: &Path,
        rel: &Path,
        depth: usize,
    ) -> Result<()> {
        let skipped = |reason| Entry::Skipped {
            name: rel.to_string_lossy().into_owned(),
            path: path.to_path_buf(),
            reason,
        };
        let opened = sys::open_dir_at(parent.as_fd(), name);
        let fd = match opened {
            Ok(fd) => fd,
            // Gone since readdir.
            Err(sys::Errno::NOENT) => return Ok(()),
            // Replaced by a symlink (or something else) since readdir.
            Err(sys::Errno::LOOP | sys::Errno::NOTDIR) => {
                (self.f)(skipped(Skip::Symlink));
                return Ok(());
            }
            Err(_) => {
                (self.f)(skipped(Skip::Unreadable));
                return Ok(());
            }
        };
        let id = match sys::fstat(&fd) {
            Ok(st) => dir_id(&st),
            Err(_) => {
                (self.f)(skipped(Skip::Unreadable));
                return Ok(());
            }
        };
        if self.ancestors.contains(&id) {
            (self.f)(skipped(Skip::Loop));
            return Ok(());
        }
        self.ancestors.push(id);
        let listed = self.dir(&fd, path, rel, depth);
        self.ancestors.pop();
        listed
    }
}

/// The name an entry is listed and sorted by: a row's without ".pid".
fn sort_key(name: &std::ffi::OsStr, skip: Option<Skip>) -> std::borrow::Cow<'_, str> {
    use std::borrow::Cow;
    match (name.to_string_lossy(), skip) {
        (Cow::Borrowed(n), None) => Cow::Borrowed(n.trim_end_matches(".pid")),
        (Cow::Owned(n), None) => Cow::Owned(n.trim_end_matches(".pid").to_owned()),
        (n, Some(_)) => n,
    }
}

/// Inspects one file; `None` if it vanished.
fn row(target: Target<'_>, file_name: &str, has_meta: bool, me: Me) -> Option<Row> {
    let path = target.path();
    let filters = if has_meta {
        filters_from_meta(path)
    } else {
        Filters::default()
    };
    let found = inspect_target(target, &filters, me);
    let name = file_name.trim_end_matches(".pid").to_string();
    let age = found
        .file
        .as_ref()
        .and_then(mtime)
        .and_then(|t| SystemTime::now().duration_since(t).ok());
    let (state, pid, locked) = match &found.status {
        Status::NotRunning => return None,
        Status::Running { pid, locked } => (State::Running, Some(*pid), *locked),
        Status::Held(pid) => (State::Running, Some(*pid), true),
        Status::Starting => (State::Starting, None, true),
        Status::Stale(pid) => (State::Stale, Some(*pid), false),
        Status::Unknown(_) => (State::Unknown, None, false),
    };
    let locked = locked || found.locked;
    let owner_gone = found.owner_gone();
    // What the PID runs now: for a PID proved not to be the owner too (it
    // names a live process).
    let command = match (&found.status, &found.identity) {
        (Status::Running { pid, .. }, _) => sys::proc::cmdline(*pid),
        (_, Some(_)) => pid.and_then(sys::proc::cmdline),
        _ => None,
    };
    let problem = match found.status {
        Status::Unknown(e) => Some(e),
        _ => None,
    };
    Some(Row {
        name,
        path: path.to_path_buf(),
        state,
        pid,
        identity: found.identity,
        decided_by: found.decided_by,
        locked,
        age,
        command,
        problem,
        owner_gone,
    })
}

/// The metadata file next to a PID file: `dir/<name>.meta`.
pub fn meta_path(pidfile: &Path) -> PathBuf {
    let name = pidfile.file_name().unwrap_or_default().to_string_lossy();
    let stem = name.strip_suffix(".pid").unwrap_or(&name);
    pidfile.with_file_name(format!("{stem}.meta"))
}

/// The most of a metadata file that is read.
const MAX_META: u64 = 64 * 1024;

/// Reads `key=value` metadata; a missing or unreadable file is empty, and
/// so is anything but a regular file (a symlink is not followed, a FIFO
/// not waited on). At most 64 KiB are read.
pub fn read_meta(pidfile: &Path) -> Vec<(String, String)> {
    use std::io::Read;
    let read = || -> Option<String> {
        let fd = sys::open_existing(&meta_path(pidfile), false).ok()?;
        let st = sys::fstat(&fd).ok()?;
        if !sys::is_regular(&st) {
            return None;
        }
        let mut text = String::new();
        std::fs::File::from(fd)
            .take(MAX_META)
            .read_to_string(&mut text)
            .ok()?;
        Some(text)
    };
    let Some(text) = read() else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// Writes metadata atomically (temporary file + rename).
fn write_meta(pidfile: &Path, meta: &[(&str, &str)]) -> io::Result<()> {
    let path = meta_path(pidfile);
    let mut text = String::new();
    for (k, v) in meta {
        if k.contains(['=', '\n']) || v.contains('\n') {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("metadata {k:?}={v:?}: keys may not contain '=' or newlines, values no newlines"),
            ));
        }
        text.push_str(&format!("{k}={v}\n"));
    }
    let tmp = path.with_extension(format!("meta.tmp.{}", std::process::id()));
    // Created new, never through a symlink (like the PID file itself): a
    // name left by an earlier process with this PID, or planted, is
    // removed (the name, not what a symlink points to) and made anew.
    let create = || sys::create_new(&tmp, 0o666);
    let mut file = match create() {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            std::fs::remove_file(&tmp)?;
            create()?
        }
        other => other?,
    };
    let written = std::io::Write::write_all(&mut file, text.as_bytes())
        .and_then(|()| std::fs::rename(&tmp, &path));
    written.inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// The filters a PID file's metadata implies: its recorded executable.
fn filters_from_meta(pidfile: &Path) -> Filters {
    let exe = read_meta(pidfile)
        .into_iter()
        .find(|(k, _)| k == "exe")
        .map(|(_, v)| PathBuf::from(v))
        .filter(|p| p.is_absolute() && p.exists());
    Filters {
        exe,
        ..Filters::default()
    }
}

/// What [`sweep`] does.
#[derive(Clone, Debug)]
pub struct SweepPolicy {
    /// Only say what would be done.
    pub dry_run: bool,
    /// Stop orphans: unlocked files naming a live process whose identity
    /// holds (started before the file was written; recorded executable
    /// matches). Default: `false` (orphans are reported and left alone).
    pub kill: bool,
    /// The stop schedule for orphans. Default: TERM/10/KILL/5.
    pub schedule: Schedule,
    /// How many levels of subdirectories to sweep too (see
    /// [`for_each_within`]). Default: 0, the directory only.
    pub max_depth: usize,
}

impl Default for SweepPolicy {
    fn default() -> Self {
        SweepPolicy {
            dry_run: false,
            kill: false,
            schedule: Schedule::timeout(crate::Signal::TERM, Duration::from_secs(10)),
            max_depth: 0,
        }
    }
}

/// What [`sweep`] did (or, dry, would do) with one file.
#[derive(Debug)]
pub enum Action {
    /// A stale file was removed: its owner is proved gone (the PID is dead
    /// and nobody holds the lock). A reused PID's file is kept
    /// ([`Kept::NotProvedGone`]) while the process lives.
    RemovedStale,
    /// An orphan was stopped and its file removed.
    StoppedOrphan,
    /// Left alone, for this reason.
    Kept(Kept),
    /// Removing the file or stopping the process failed.
    Failed(Error),
}

/// Why [`sweep`] left a file (and its process) alone; its `Display` is a
/// short sentence for a report.
#[non_exhaustive]
#[derive(Debug)]
pub enum Kept {
    /// The process runs: its lock is held.
    Running,
    /// Locked by a live holder by the time it was to be removed.
    Locked,
    /// Rewritten by a new holder by the time it was to be removed.
    Rewritten,
    /// The PID is stale but the lock is held (by a process that inherited
    /// it, for example).
    StaleButLocked,
    /// The PID names a live process that is not proved gone: the file is
    /// kept (with the verdict, when there is one).
    NotProvedGone {
        /// The PID in the file.
        pid: Option<Pid>,
        /// The verdict on it.
        identity: Option<Identity>,
    },
    /// An orphan whose metadata file (this path) records no executable:
    /// nothing proves the process is the file's, so it is never signalled
    /// (stop it with `pidguard stop --exe PATH`).
    NoExecutableRecorded(PathBuf),
    /// Stopping it was refused: the process is not proved the file's owner.
    NotSignalled(Identity),
    /// Locked, and no PID written yet.
    Starting,
    /// The file could not be read or parsed: this says why.
    Unreadable(Error),
    /// An orphan (alive, unlocked, its identity holds), left running
    /// because the policy does not stop orphans.
    Orphan,
    /// Still running at the end of the stop schedule.
    StillRunning,
    /// Stopping it ended otherwise than with the process stopped.
    Stop(Outcome),
    /// A child of this [`Registry`]'s manager.
    ManagersChild,
}

impl std::fmt::Display for Kept {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Kept::Running => f.write_str("running: its lock is held"),
            Kept::Locked => f.write_str("locked by a live holder"),
            Kept::Rewritten => f.write_str("rewritten by a new holder"),
            Kept::StaleButLocked => f.write_str("stale PID but the lock is held"),
            Kept::NotProvedGone { pid, identity } => write!(
                f,
                "PID {} is alive and not proved gone ({}): the file is kept",
                pid.map(|p| p.to_string()).unwrap_or_default(),
                identity
                    .as_ref()
                    .map(|i| i.to_string())
                    .unwrap_or_else(|| "no verdict".into())
            ),
            Kept::NoExecutableRecorded(meta) => write!(
                f,
                "orphan: {} records no executable, so it is never signalled \
                 (stop it with pidguard stop --exe PATH)",
                meta.display()
            ),
            Kept::NotSignalled(identity) => write!(f, "not signalled: {identity}"),
            Kept::Starting => f.write_str("starting: locked, no PID yet"),
            Kept::Unreadable(problem) => write!(f, "unknown: {problem}"),
            Kept::Orphan => f.write_str("orphan: alive and unlocked (sweep with kill to stop it)"),
            Kept::StillRunning => f.write_str("still running at the end of the schedule"),
            Kept::Stop(outcome) => write!(f, "{outcome:?}"),
            Kept::ManagersChild => f.write_str("a child of this manager"),
        }
    }
}

/// One line of a sweep report.
#[derive(Debug)]
pub struct Swept {
    /// The file name without `.pid`.
    pub name: String,
    /// The file's path.
    pub path: PathBuf,
    /// The PID it named.
    pub pid: Option<Pid>,
    /// The verdict on that PID, when it named a live process (for a stale
    /// file: the PID now belongs to another process; `None`: it is gone).
    pub identity: Option<Identity>,
    /// What was done, or would be done with `dry_run`.
    pub action: Action,
    /// Whether this was a dry run.
    pub dry_run: bool,
}

/// Sweeps `dir`: removes the PID files whose owner is proved gone (nobody
/// holds the lock and the PID is dead; a live process that is mismatched,
/// unproved or hidden keeps its file: [`Kept::NotProvedGone`]), and with
/// `policy.kill` stops orphans, using the safe removal and stop of this
/// crate (never a locked file, never through a symlink, never a
/// successor's; only verified or consistent processes).
pub fn sweep(dir: impl AsRef<Path>, policy: &SweepPolicy) -> Result<Vec<Swept>> {
    let mut out = Vec::new();
    for entry in list_within(dir, policy.max_depth)? {
        let Entry::File(mut row) = entry else { continue };
        let action = sweep_one(&mut row, policy, false);
        out.push(Swept::new(row, action, policy));
    }
    Ok(out)
}

impl Swept {
    fn new(row: Row, action: Action, policy: &SweepPolicy) -> Swept {
        Swept {
            name: row.name,
            path: row.path,
            pid: row.pid,
            identity: row.identity,
            action,
            dry_run: policy.dry_run,
        }
    }
}

fn sweep_one(row: &mut Row, policy: &SweepPolicy, orphan_if_locked: bool) -> Action {
    let remove = |action: Action| -> Action {
        if policy.dry_run {
            return action;
        }
        match remove_unlocked(&row.path, row.pid) {
            Ok(Removal::Removed | Removal::Missing) => action,
            Ok(Removal::Locked) => Action::Kept(Kept::Locked),
            Ok(Removal::Changed) => Action::Kept(Kept::Rewritten),
            Err(e) => Action::Failed(e),
        }
    };
    match row.state {
        State::Stale if row.locked => Action::Kept(Kept::StaleButLocked),
        State::Stale if !row.owner_gone => Action::Kept(Kept::NotProvedGone {
            pid: row.pid,
            identity: row.identity.clone(),
        }),
        State::Stale => remove(Action::RemovedStale),
        State::Starting => Action::Kept(Kept::Starting),
        // (A row in the unknown state always has its problem.)
        State::Unknown => Action::Kept(Kept::Unreadable(row.problem.take().unwrap_or_else(|| {
            Error::with_io(ErrorKind::Io, &row.path, io::Error::other("unreadable"))
        }))),
        State::Running if row.locked && !orphan_if_locked => Action::Kept(Kept::Running),
        State::Running => {
            if !policy.kill {
                return Action::Kept(Kept::Orphan);
            }
            // An orphan is only ever signalled when its recorded executable
            // matches: without one, nothing proves it is the file's.
            let filters = filters_from_meta(&row.path);
            if filters.exe.is_none() {
                return Action::Kept(Kept::NoExecutableRecorded(meta_path(&row.path)));
            }
            if policy.dry_run {
                return Action::StoppedOrphan;
            }
            match stop(&row.path, &policy.schedule, &filters) {
                Ok(r) if r.outcome == Outcome::Stopped => Action::StoppedOrphan,
                Ok(r) if r.outcome == Outcome::Stale && r.file_gone => Action::RemovedStale,
                Ok(r) if r.outcome == Outcome::StillRunning => Action::Kept(Kept::StillRunning),
                Ok(r) => Action::Kept(match r.identity {
                    Some(i) => Kept::NotSignalled(i),
                    None => Kept::Stop(r.outcome),
                }),
                Err(e) => Action::Failed(e),
            }
        }
    }
}

/// A manager's directory of child PID files, held by one manager at a time.
#[derive(Debug)]
pub struct Registry {
    dir: PathBuf,
    _singleton: Guard,
    spawned: Mutex<BTreeSet<String>>,
}

/// The manager's singleton lock file in a registry directory.
pub const MANAGER_LOCK: &str = ".manager.lock";

impl Registry {
    /// Opens (creating it, mode 0700, if missing) the registry in `dir` and
    /// takes the manager's singleton lock (`dir/.manager.lock`). A second
    /// manager gets [`ErrorKind::AlreadyRunning`] and must touch nothing.
    pub fn open(dir: impl AsRef<Path>) -> Result<Registry> {
        let dir = std::path::absolute(dir.as_ref()).open_err(dir.as_ref())?;
        if !dir.exists() {
            sys::create_dir_all(&dir, 0o700).create_err(&dir)?;
        }
        let singleton = Pidfile::new(dir.join(MANAGER_LOCK)).acquire()?;
        Ok(Registry {
            dir,
            _singleton: singleton,
            spawned: Mutex::new(BTreeSet::new()),
        })
    }

    /// The registry's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The PID file of child `name`.
    pub fn pidfile_path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.pid"))
    }

    /// Starts `command` as child `name`: `dir/name.pid` is locked and the
    /// lock is inherited by the child (so a live child is always told apart
    /// from a stale file), then the child's PID is written. `meta` goes to
    /// `dir/name.meta` (the key `exe`, an absolute path, is also used to
    /// verify the process when sweeping). Fails with
    /// [`ErrorKind::AlreadyRunning`] when a live child holds the name.
    ///
    /// The file is visible, locked and empty ("starting") between the lock
    /// and the child's start. Another thread spawning a process at the same
    /// moment could inherit the lock too; spawn children from one thread.
    ///
    /// # Platform notes
    /// Not on Windows ([`ErrorKind::Unsupported`]): a lock belongs to the
    /// process that took it there, so a child cannot hold it for the
    /// registry (docs/WINDOWS.md).
    pub fn spawn(&self, name: &str, command: &mut Command, meta: &[(&str, &str)]) -> Result<Child> {
        validate_name(name)?;
        if cfg!(windows) {
            return Err(Error::with_io(
                ErrorKind::Unsupported,
                &self.pidfile_path(name),
                io::Error::new(
                    io::ErrorKind::Unsupported,
                    "Registry::spawn is not available on Windows: a lock cannot be handed to \
                     a child process there; let the child acquire its PID file itself \
                     (Pidfile::acquire)",
                ),
            ));
        }
        let path = self.pidfile_path(name);
        let mut guard = Pidfile::new(&path).inheritable(true).acquire_reserved()?;
        let child = match command.spawn() {
            Ok(c) => c,
            Err(e) => {
                let _ = guard.release();
                let exe = command.get_program().to_string_lossy().into_owned();
                return Err(Error::with_io(ErrorKind::Io, &path, e)
                    .with_detail(format!("cannot start {exe:?}")));
            }
        };
        let pid = Pid::from_u32(child.id()).expect("a child's PID is positive");
        let written = guard
            .set_inheritable(false)
            .and_then(|()| guard.set_pid(pid))
            .and_then(|()| {
                write_meta(&path, meta).create_err(&meta_path(&path))
            });
        if let Err(e) = written {
            let _ = guard.release();
            return Err(e);
        }
        // The child holds the lock now; close the manager's copy.
        drop(guard.into_owned());
        self.spawned
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.to_string());
        Ok(child)
    }

    /// The rows of the registry's directory (skipped entries left out).
    pub fn list(&self) -> Result<Vec<Row>> {
        Ok(list(&self.dir)?
            .into_iter()
            .filter_map(|e| match e {
                Entry::File(r) => Some(r),
                Entry::Skipped { .. } => None,
            })
            .collect())
    }

    /// Sweeps the registry: as [`sweep`], and in addition, with
    /// `policy.kill`, children that still hold their own lock but were not
    /// started by this registry are orphans of a previous manager (this
    /// manager holds the singleton lock) and are stopped. Metadata files of
    /// removed PID files are removed too; a missing or corrupt metadata file
    /// never blocks the removal of a stale PID file.
    pub fn sweep(&self, policy: &SweepPolicy) -> Result<Vec<Swept>> {
        let ours = self
            .spawned
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mut out = Vec::new();
        for mut row in self.list()? {
            let foreign = !ours.contains(&row.name);
            let orphan_if_locked = foreign && row.identity == Some(Identity::Verified);
            let action = if ours.contains(&row.name) && row.state == State::Running {
                Action::Kept(Kept::ManagersChild)
            } else {
                sweep_one(&mut row, policy, orphan_if_locked)
            };
            if !policy.dry_run
                && matches!(
                    action,
                    Action::RemovedStale | Action::StoppedOrphan
                )
                && !row.path.exists()
            {
                let _ = std::fs::remove_file(meta_path(&row.path));
            }
            out.push(Swept::new(row, action, policy));
        }
        Ok(out)
    }
}
