//! The lock protocol: the [`Pidfile`] builder and acquire, whose steps
//! (numbered on the crate's front page, lib.rs) are the functions named
//! after them: [`prepare_new`](Pidfile::prepare_new) (1, create),
//! [`take_over`](Pidfile::take_over) (2), and the [`Guard`]'s release (3);
//! [`remove_unlocked`] removes a stale file by the same rules.
//!
//! - `contend.rs`: a held lock (a holder mid-write, a reader's probe) and
//!   an unlocked file whose owner may still run.
//! - `guard.rs`: the [`Guard`] that holds the lock.
//! - `location.rs`: where [`Pidfile::named`] files go.
mod contend;
mod guard;
pub(crate) mod location;

pub use guard::Guard;

use contend::{held_or_denied, live_unlocked_owner, wait_out_mid_write};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::error::{Error, ErrorKind, Result, UnsafeFile, IoResultExt};
use crate::fs::{self, parent_dir, read_fd, refuse_foreign_links, Still, Verified};
use crate::pid::{Pid, Rule};
use crate::read::status::{self, Status};
use crate::sys::{self, OwnedFd, RemoveFailed, RemoveOutcome};

/// How many times the protocol starts over when the path changes under it
/// before giving up (with [`ErrorKind::AlreadyRunning`] when another
/// instance was seen, see [`Contention`]).
const MAX_ATTEMPTS: u32 = 100;

/// Whether this process's last acquire made its file (step 1) rather than
/// taking one over (step 2): which step its next acquire tries first.
static CREATED_LAST: AtomicBool = AtomicBool::new(false);

/// What [`Pidfile::acquire`] does when the PID file is on a network
/// filesystem (NFS, SMB/CIFS, Ceph, AFS, 9P, Lustre, Coda), where `flock`
/// may be emulated, or hold only among the processes of one host.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetworkFs {
    /// Go ahead silently.
    Allow,
    /// Go ahead; [`Guard::network_fs`] names the filesystem so the caller
    /// can warn (the CLI prints a warning).
    Warn,
    /// Fail with [`ErrorKind::Unsupported`].
    Refuse,
}

/// A PID file to acquire: a builder.
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// # let path = dir.path().join("app.pid");
/// use pidguard::Pidfile;
///
/// let guard = Pidfile::new(&path).acquire()?;
/// assert_eq!(std::fs::read_to_string(&path)?, std::process::id().to_string());
/// // A second acquire, even from the same process, is refused.
/// let err = Pidfile::new(&path).acquire().unwrap_err();
/// assert_eq!(err.kind(), pidguard::ErrorKind::AlreadyRunning);
/// drop(guard); // unlinks the file, then unlocks it
/// assert!(!path.exists());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct Pidfile {
    target: Target,
    pid: Option<Pid>,
    fsync: bool,
    inheritable: bool,
    mode: u32,
    /// Whether `mode` was set: then applied exactly (`fchmod`), umask or not.
    mode_set: bool,
    /// The owner and group to give a file pidguard creates or takes over.
    owner: Option<u32>,
    group: Option<u32>,
    /// Publish the file locked but empty ("starting"); the PID follows with
    /// [`Guard::set_pid`].
    reserve: bool,
    network_fs: NetworkFs,
    /// Record the owner's pidfs inode with the file (see `read/kernel_id.rs`).
    kernel_identity: bool,
}

#[derive(Clone, Debug)]
enum Target {
    Path {
        path: PathBuf,
        instance: Option<String>,
    },
    Named {
        app: String,
        instance: Option<String>,
    },
}

impl Pidfile {
    /// A PID file at an explicit path. A relative path is made absolute
    /// (against the current directory) when the file is acquired.
    pub fn new(path: impl Into<PathBuf>) -> Pidfile {
        Pidfile::with_target(Target::Path {
            path: path.into(),
            instance: None,
        })
    }

    /// A PID file in the standard location for application `app`, which
    /// must be a plain file name (checked when the path is resolved):
    ///
    /// | who | where |
    /// |---|---|
    /// | root (effective UID 0) | `/run/app.pid` |
    /// | a user, with a private `$XDG_RUNTIME_DIR` | `$XDG_RUNTIME_DIR/app/app.pid` |
    /// | a user, with a private `/run/user/<uid>` | `/run/user/<uid>/app/app.pid` |
    /// | a user, otherwise (Linux and other Unix) | `${XDG_CACHE_HOME:-~/.cache}/app/app.pid` |
    /// | a user, otherwise (macOS) | `~/Library/Application Support/app/app.pid` |
    /// | Windows (any user) | `%LOCALAPPDATA%\app\app.pid` |
    ///
    /// A runtime directory is used only when it exists, is owned by the user and
    /// is not group- or world-writable. `.instance(key)` adds a directory
    /// `instance-<hash>` (12 hex digits of a hash of the key) before the file
    /// name, e.g. `/run/app/instance-3f2a9c0d1b4e/app.pid`, so that one
    /// application can run once per project, per port, per checkout.
    ///
    pub fn named(app: impl Into<String>) -> Pidfile {
        Pidfile::with_target(Target::Named {
            app: app.into(),
            instance: None,
        })
    }

    fn with_target(target: Target) -> Pidfile {
        Pidfile {
            target,
            pid: None,
            fsync: false,
            inheritable: false,
            mode: 0o644,
            mode_set: false,
            owner: None,
            group: None,
            reserve: false,
            network_fs: NetworkFs::Warn,
            kernel_identity: true,
        }
    }

    /// One instance per `key` (a project directory, a port, a user name):
    /// the file goes into a directory `instance-<hash of key>` next to where
    /// it would otherwise be. Default: no instance key.
    pub fn instance(&mut self, key: impl Into<String>) -> &mut Pidfile {
        match &mut self.target {
            Target::Path { instance, .. } | Target::Named { instance, .. } => {
                *instance = Some(key.into())
            }
        }
        self
    }

    /// The PID to write. Default: the current process's.
    pub fn pid(&mut self, pid: Pid) -> &mut Pidfile {
        self.pid = Some(pid);
        self
    }

    /// Whether to `fsync` the file and its directory after writing and
    /// removing it. Default: `false` (PID files are runtime state and belong
    /// on a tmpfs such as `/run`).
    pub fn fsync(&mut self, yes: bool) -> &mut Pidfile {
        self.fsync = yes;
        self
    }

    /// Whether the lock descriptor survives `exec` (is not close-on-exec).
    /// Default: `false`. See also [`Guard::set_inheritable`].
    pub fn inheritable(&mut self, yes: bool) -> &mut Pidfile {
        self.inheritable = yes;
        self
    }

    /// Permission bits of the file: when set, exactly these (`fchmod`, the
    /// umask does not apply), on a new file and on a stale one taken over.
    /// Default: a new file gets `0o644` less the umask; a taken-over file
    /// keeps its mode.
    pub fn mode(&mut self, mode: u32) -> &mut Pidfile {
        self.mode = mode & 0o7777;
        self.mode_set = true;
        self
    }

    /// The file's owner and group (numeric IDs; `None` leaves either as
    /// the process's), set with `fchown` on a new file before it becomes
    /// visible and on a stale file taken over, for a daemon that drops
    /// privileges (as Python's `pid` has `gid`). Changing the owner needs
    /// root (or `CAP_CHOWN`); a group the process belongs to does not.
    /// Default: neither.
    ///
    /// Note that `stop`, `signal` and `wait` run as root refuse a file
    /// that is not verified (locked and held by the process) when it is
    /// owned by another user or group-writable: the daemon's own lock
    /// keeps it verified while it runs.
    pub fn owner(&mut self, uid: Option<u32>, gid: Option<u32>) -> &mut Pidfile {
        self.owner = uid;
        self.group = gid;
        self
    }

    /// Applies [`owner`](Pidfile::owner) and [`mode`](Pidfile::mode) to
    /// the file behind `fd`.
    fn set_ownership(&self, fd: &OwnedFd, path: &Path) -> Result<()> {
        if self.owner.is_some() || self.group.is_some() {
            sys::fchown(fd, self.owner, self.group).map_err(|e| {
                Error::create(path, e.into()).with_detail(format!(
                    "cannot give it to {}:{} (changing the owner needs root; a group, \
                     membership of it)",
                    self.owner.map_or("-".into(), |u| u.to_string()),
                    self.group.map_or("-".into(), |g| g.to_string()),
                ))
            })?;
        }
        if self.mode_set {
            sys::fchmod(fd, self.mode).create_err(path)?;
        }
        Ok(())
    }

    /// What to do on a network filesystem. Default: [`NetworkFs::Warn`].
    ///
    /// # Platform notes
    /// Network filesystems are recognised on Linux only (by `statfs`).
    pub fn network_fs(&mut self, policy: NetworkFs) -> &mut Pidfile {
        self.network_fs = policy;
        self
    }

    /// Whether to record the owner's identity as the kernel knows it (its
    /// pidfs inode, Linux 6.9 and later) in the file's extended attribute
    /// `user.pidguard.pidfd_ino`, so that readers can prove whether the PID
    /// in an unlocked file is still its owner, across clock steps (a
    /// locked file is judged by its lock). Default: `true`. Where the kernel or the filesystem
    /// cannot (older kernels, other systems, filesystems without user
    /// attributes), no record is written and nothing fails. With `false`,
    /// a record left by an earlier owner is removed on take-over.
    ///
    /// The record is ASCII, `pid=PID ino=INODE boot=BOOT_ID` (the boot's
    /// `/proc/sys/kernel/random/boot_id`). A new file gets it before it is
    /// linked into place; an existing one before its new content. Readers
    /// ([`inspect`](crate::inspect), [`stop`](crate::stop()), `list`) trust it
    /// only for the PID and the boot it names, and as proof of ownership
    /// only in a file writable by its owner alone, owned by root, the
    /// reader or the process's user; [`Inspection::decided_by`] says when
    /// it decided. See `docs/GUARANTEES.md`, "Identity proved by the
    /// kernel".
    ///
    /// [`Inspection::decided_by`]: crate::Inspection::decided_by
    pub fn kernel_identity(&mut self, yes: bool) -> &mut Pidfile {
        self.kernel_identity = yes;
        self
    }

    /// The path this PID file resolves to, and the mode for directories
    /// created on the way.
    fn resolve(&self) -> Result<(PathBuf, u32)> {
        match &self.target {
            Target::Path { path, instance } => {
                let path = if path.is_absolute() {
                    path.clone()
                } else {
                    std::path::absolute(path).open_err(path)?
                };
                let path = match instance {
                    None => path,
                    Some(key) => {
                        let name = path.file_name().unwrap_or_default().to_owned();
                        let dir = path.parent().unwrap_or(Path::new("/"));
                        dir.join(location::instance_dir(key)).join(name)
                    }
                };
                Ok((path, location::PUBLIC_DIR_MODE))
            }
            Target::Named { app, instance } => location::resolve(app, instance.as_deref()),
        }
    }

    /// The path of the PID file (resolving [`Pidfile::named`] locations).
    pub fn path(&self) -> Result<PathBuf> {
        self.resolve().map(|(p, _)| p)
    }

    /// The file's current state: see [`status`](crate::status()).
    pub fn status(&self) -> Status {
        match self.path() {
            Ok(p) => status::status(p),
            Err(e) => Status::Unknown(e),
        }
    }

    /// Takes the lock now, or fails at once with
    /// [`ErrorKind::AlreadyRunning`] if another process holds it (also
    /// when other processes take and release it in turn so fast that every
    /// one of its attempts found it taken by the next: it starts over when
    /// the path changes under it, up to 100 times).
    ///
    /// The returned [`Guard`] holds the lock until it is dropped or
    /// [released](Guard::release).
    pub fn acquire(&self) -> Result<Guard> {
        let (path, dir_mode) = self.resolve()?;
        self.acquire_at(path, dir_mode)
    }

    /// "Am I the only one?": takes the lock now, or returns `Ok(None)` if
    /// another process holds it (the case [`acquire`](Pidfile::acquire)
    /// reports as [`ErrorKind::AlreadyRunning`]). Every other problem (an
    /// unsafe path, a directory that cannot be written) is still an error.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let path = dir.path().join("app.pid");
    /// let Some(guard) = pidguard::Pidfile::new(&path).try_acquire()? else {
    ///     return Ok(()); // another instance is running
    /// };
    /// assert!(pidguard::Pidfile::new(&path).try_acquire()?.is_none());
    /// # drop(guard);
    /// # Ok::<(), pidguard::Error>(())
    /// ```
    ///
    /// Use [`acquire`](Pidfile::acquire) to learn the holder's PID
    /// ([`Error::holder`]).
    pub fn try_acquire(&self) -> Result<Option<Guard>> {
        match self.acquire() {
            Ok(guard) => Ok(Some(guard)),
            Err(e) if e.is_already_running() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Like [`acquire`](Pidfile::acquire), but waits up to `timeout` for the
    /// holder to go away. On timeout the error is the last
    /// [`ErrorKind::AlreadyRunning`].
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<Guard> {
        self.acquire_until(Some(Instant::now() + timeout))
    }

    /// Like [`acquire`](Pidfile::acquire), but waits as long as it takes.
    pub fn acquire_wait(&self) -> Result<Guard> {
        self.acquire_until(None)
    }

    /// Takes the lock now, publishing the file locked but empty (readers see
    /// [`Status::Starting`]) until [`Guard::set_pid`] writes the PID: for a
    /// holder whose PID is not known yet (a child about to be spawned with
    /// the lock inherited), as BSD `pidfile_open` before `pidfile_write`.
    pub(crate) fn acquire_reserved(&self) -> Result<Guard> {
        let mut pf = self.clone();
        pf.reserve = true;
        pf.acquire()
    }

    fn acquire_until(&self, deadline: Option<Instant>) -> Result<Guard> {
        let (path, dir_mode) = self.resolve()?;
        let mut pause = Duration::from_millis(1);
        loop {
            match self.acquire_at(path.clone(), dir_mode) {
                Err(e) if e.kind() == ErrorKind::AlreadyRunning => {
                    let now = Instant::now();
                    let mut sleep = pause;
                    if let Some(d) = deadline {
                        if now >= d {
                            return Err(e);
                        }
                        sleep = sleep.min(d - now);
                    }
                    std::thread::sleep(sleep);
                    pause = (pause * 2).min(Duration::from_millis(50));
                }
                other => return other,
            }
        }
    }

    fn acquire_at(&self, path: PathBuf, dir_mode: u32) -> Result<Guard> {
        // One getpid(2) serves both the content and the guard's owner.
        let me = Pid::current();
        let pid = self.pid.unwrap_or(me);
        let encoded = pid.encode();
        let content = if self.reserve {
            &[][..]
        } else {
            encoded.as_bytes()
        };
        let dir = parent_dir(&path).to_path_buf();
        refuse_foreign_links(&path)?;
        let network = match self.network_fs {
            NetworkFs::Allow => None,
            _ => sys::network_fs(&dir),
        };
        if let (Some(fs), NetworkFs::Refuse) = (network, self.network_fs) {
            return Err(Error::with_io(
                ErrorKind::Unsupported,
                &path,
                io::Error::other(format!("the directory is on {fs}")),
            )
            .with_detail(format!(
                "flock on {fs} may be emulated or hold only on this host, so one \
                 instance per host cannot be guaranteed; use a local directory such as /run"
            )));
        }
        let mut unnamed: Option<sys::Unnamed> = None;
        let mut seen = Contention::default();
        for attempt in 0..MAX_ATTEMPTS {
            // Step 2 first where the file is likely left over (a daemon's
            // restart, `run --exec`, whose file stays behind): no unnamed
            // inode is made only to fail its link. Not where this process
            // created its last file (a guard taken and dropped in a loop
            // removes it). Either order gives the same outcome: step 2
            // finds no file, or step 1 finds one and goes to step 2.
            if attempt == 0 && !CREATED_LAST.load(Ordering::Relaxed) {
                match self.take_over_first(&path, content, pid, me, &mut seen)? {
                    Takeover::Acquired(fd) => {
                        self.set_ownership(&fd, &path)?;
                        return Ok(self.guard(fd, path, pid, me).on(network));
                    }
                    Takeover::Vanished => {}
                    Takeover::Changed => continue,
                }
            }
            if unnamed.is_none() {
                match self.prepare_new(&dir, &path, dir_mode, content, pid, me) {
                    Ok(u) => unnamed = Some(u),
                    // The directory may not be writable while the file exists
                    // and is held: report that, not the create error.
                    Err(e) => match self.take_over(&path, content, pid, me, &mut seen)? {
                        Takeover::Acquired(fd) => {
                            self.set_ownership(&fd, &path)?;
                            return Ok(self.guard(fd, path, pid, me).on(network));
                        }
                        Takeover::Vanished => return Err(e),
                        Takeover::Changed => continue,
                    },
                }
            }
            let u = unnamed.as_mut().expect("prepared above");
            match sys::link_unnamed(u, &path) {
                Ok(()) => {
                    if self.fsync {
                        sys::fsync_dir(&dir).create_err(&path)?;
                    }
                    let u = unnamed.take().expect("prepared above");
                    CREATED_LAST.store(true, Ordering::Relaxed);
                    return Ok(self.guard(u.fd, path, pid, me).on(network));
                }
                Err(e) if e.raw_os_error() == Some(sys::Errno::EXIST.raw_os_error()) => {}
                Err(e) => return Err(Error::create(&path, e)),
            }
            match self.take_over(&path, content, pid, me, &mut seen)? {
                Takeover::Acquired(fd) => {
                    self.set_ownership(&fd, &path)?;
                    return Ok(self.guard(fd, path, pid, me).on(network));
                }
                Takeover::Vanished | Takeover::Changed => continue,
            }
        }
        Err(seen.gave_up(&path))
    }

    /// Step 1: a new, complete, locked file that is not yet visible.
    fn prepare_new(
        &self,
        dir: &Path,
        path: &Path,
        dir_mode: u32,
        content: &[u8],
        pid: Pid,
        me: Pid,
    ) -> Result<sys::Unnamed> {
        let u = match sys::create_unnamed(dir, path, self.mode) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                create_dirs(dir, dir_mode).create_err(path)?;
                sys::create_unnamed(dir, path, self.mode)
            }
            other => other,
        }
        .create_err(path)?;
        self.set_ownership(&u.fd, path)?;
        sys::write_whole(&u.fd, content, 0).create_err(path)?;
        if self.records(content) {
            // Before the file is linked: it never appears without it.
            crate::read::kernel_id::record_new(&u.fd, pid, me);
        }
        if !sys::try_lock_exclusive(&u.fd).create_err(path)? {
            // Only possible for a named temporary file someone else opened.
            return Err(Error::create(
                path,
                io::Error::other("the temporary file was locked by another process"),
            ));
        }
        if self.fsync {
            sys::fsync(&u.fd).create_err(path)?;
        }
        if self.inheritable {
            sys::set_cloexec(&u.fd, false).create_err(path)?;
        }
        Ok(u)
    }

    /// Step 2 tried before step 1: as [`Self::take_over`], but a path
    /// that could not be looked at (too long, a directory on the way not
    /// searchable) goes to step 1, whose error names the create that
    /// failed, as when step 1 runs first.
    fn take_over_first(
        &self,
        path: &Path,
        content: &[u8],
        pid: Pid,
        me: Pid,
        seen: &mut Contention,
    ) -> Result<Takeover> {
        let opened = match fs::open_verified(path, fs::Open::Write)? {
            Verified::NotLooked(_) => return Ok(Takeover::Vanished),
            opened => opened,
        };
        let t = self.take_over_verified(path, opened, content, pid, me, seen);
        if let Ok(Takeover::Acquired(_)) = t {
            CREATED_LAST.store(false, Ordering::Relaxed);
        }
        t
    }

    /// Step 2: the path exists. Lock it in place if nobody holds it. What
    /// it sees of other instances on the way goes into `seen`.
    fn take_over(
        &self,
        path: &Path,
        content: &[u8],
        pid: Pid,
        me: Pid,
        seen: &mut Contention,
    ) -> Result<Takeover> {
        let opened = fs::open_verified(path, fs::Open::Write)?;
        self.take_over_verified(path, opened, content, pid, me, seen)
    }

    /// Step 2 on what [`fs::open_verified`] found.
    fn take_over_verified(
        &self,
        path: &Path,
        opened: Verified,
        content: &[u8],
        pid: Pid,
        me: Pid,
        seen: &mut Contention,
    ) -> Result<Takeover> {
        let (fd, opened) = match opened {
            Verified::Open { fd, opened } => (fd, opened),
            Verified::NotLooked(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                ) =>
            {
                return Ok(Takeover::Vanished)
            }
            Verified::NotLooked(e) => return Err(Error::open(path, e)),
            Verified::NotOpened(e) if e.kind() == io::ErrorKind::NotFound => {
                return Ok(Takeover::Vanished)
            }
            Verified::NotOpened(e) if e.raw_os_error() == Some(sys::Errno::LOOP.raw_os_error()) => {
                return Err(Error::unsafe_file(path, UnsafeFile::Symlink))
            }
            Verified::NotOpened(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                return Err(held_or_denied(path, e))
            }
            // A stale file on a read-only filesystem cannot be reused.
            Verified::NotOpened(e) if e.raw_os_error() == Some(sys::Errno::ROFS.raw_os_error()) => {
                return Err(Error::create(path, e))
            }
            Verified::NotOpened(e) => return Err(Error::open(path, e)),
            Verified::Replaced => {
                seen.replaced += 1;
                return Ok(Takeover::Changed);
            }
        };
        if !sys::try_lock_exclusive(&fd).open_err(path)? {
            if let Some(holder) = wait_out_mid_write(&fd, path)? {
                seen.holder = Some(holder);
            }
        }
        // Locked. Is the path still this inode?
        let now = match fs::still_names(path, &opened)? {
            Still::Same(now) => now,
            Still::Changed => {
                seen.replaced += 1;
                return Ok(Takeover::Changed);
            }
            Still::Missing => return Ok(Takeover::Vanished),
        };
        if let Some(why) = fs::unsafe_reason(&now) {
            return Err(Error::unsafe_file(path, why));
        }
        // A POSIX or OFD lock on it: a holder runs (flock does not see it).
        if sys::record_locked(&fd) {
            let pid = read_fd(&fd, path, Rule::Lenient).ok();
            return Err(Error::already_running(path, pid).with_detail(
                "it holds a POSIX or OFD lock (fcntl, lockf) on the file, which flock does not \
                 see"
                .to_string(),
            ));
        }
        // Nobody else holds the lock. An unlocked file is only taken over
        // when its owner is proved not running (dropping `fd` on refusal
        // unlocks it again).
        if let Ok(old) = read_fd(&fd, path, Rule::Lenient) {
            if let Some(refusal) = live_unlocked_owner(path, &fd, old, &now, me) {
                return Err(refusal);
            }
        }
        // The record first, then the content (see kernel_id's write order).
        let recorded = self.records(content).then_some(pid);
        crate::read::kernel_id::replace(&fd, recorded, me).map_err(|e| stale_record(path, e))?;
        sys::write_whole(&fd, content, now.st_size as u64).create_err(path)?;
        if self.fsync {
            sys::fsync(&fd).create_err(path)?;
        }
        if self.inheritable {
            sys::set_cloexec(&fd, false).create_err(path)?;
        }
        Ok(Takeover::Acquired(fd))
    }

    /// Whether a file with `content` gets a kernel identity record: not an
    /// empty (reserved) one, which names nobody yet.
    fn records(&self, content: &[u8]) -> bool {
        self.kernel_identity && !content.is_empty()
    }

    fn guard(&self, fd: OwnedFd, path: PathBuf, pid: Pid, owner: Pid) -> Guard {
        Guard {
            fd: Some(fd),
            path,
            pid,
            owner: owner.as_u32(),
            fsync: self.fsync,
            network_fs: None,
            kernel_identity: self.kernel_identity,
        }
    }
}

enum Takeover {
    Acquired(OwnedFd),
    /// The path disappeared: try to create it.
    Vanished,
    /// The path names another inode now: start over.
    Changed,
}

/// What one acquire saw of other processes while it started over: the
/// answer when its [`MAX_ATTEMPTS`] run out.
#[derive(Debug, Default)]
struct Contention {
    /// The last live process found holding the lock (named in the file
    /// while the lock was held), which released it before our next look.
    holder: Option<Pid>,
    /// How many times the path was replaced by another file between our
    /// open and our check: another process linked (created) its own file
    /// there, which only an acquire does in pidguard's protocol.
    replaced: u32,
}

impl Contention {
    /// The error when the attempts ran out. A live holder seen, or the
    /// path replaced by another process's new file, shows that other
    /// instances held the file during this acquire, one after another:
    /// that is [`ErrorKind::AlreadyRunning`] (so `try_acquire` answers
    /// `None` and `acquire_wait` keeps waiting), not a failure. Without
    /// either, every attempt found the file gone again, never locked: a
    /// program creates and removes it in a loop without locking it.
    fn gave_up(&self, path: &Path) -> Error {
        if self.holder.is_none() && self.replaced == 0 {
            return Error::with_io(
                ErrorKind::Io,
                path,
                io::Error::other("the path kept changing while acquiring it"),
            )
            .with_detail(format!(
                "it vanished under this acquire {MAX_ATTEMPTS} times and was never found \
                 locked by a live process: another program creates and removes it in a loop \
                 without locking it; stop that program"
            ));
        }
        Error::already_running(path, self.holder).with_detail(format!(
            "other instances took and released it in turn during all {MAX_ATTEMPTS} attempts \
             of this acquire (the path was replaced under it {} times)",
            self.replaced
        ))
    }
}

/// The old kernel identity record could be neither replaced nor removed:
/// writing a new PID under it could make it vouch for the wrong process.
pub(super) fn stale_record(path: &Path, e: io::Error) -> Error {
    Error::create(path, e).with_detail(
        "the file's kernel identity record (user.pidguard.pidfd_ino) could not be \
         replaced or removed; remove it with `setfattr -x user.pidguard.pidfd_ino` or \
         remove the file",
    )
}

/// Creates missing directories with `mode`, refusing a symlink or non-directory
/// at any level we create.
fn create_dirs(dir: &Path, mode: u32) -> io::Result<()> {
    sys::create_dir_all(dir, mode)?;
    let st = sys::lstat(dir)?;
    if !sys::is_dir(&st) {
        return Err(io::Error::new(
            io::ErrorKind::NotADirectory,
            format!("{} is not a directory", dir.display()),
        ));
    }
    Ok(())
}

/// What [`remove_unlocked`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Removal {
    /// The file was removed.
    Removed,
    /// There was no file.
    Missing,
    /// Someone holds the lock: the file is theirs to remove.
    Locked,
    /// The path was replaced, or the file now names another PID: it is a
    /// successor's.
    Changed,
}

/// Removes a stale PID file safely: never a locked file, never through a
/// symlink, never a successor's. The file is locked in place first (so no
/// holder can be starting on it), the path must still name the locked inode,
/// and, with `expected`, the file must still name that PID. It is unlinked
/// while the lock is held.
pub(crate) fn remove_unlocked(path: &Path, expected: Option<Pid>) -> Result<Removal> {
    let (fd, opened) = match fs::open_verified(path, fs::Open::Read)? {
        Verified::Open { fd, opened } => (fd, opened),
        Verified::NotLooked(e) | Verified::NotOpened(e) if e.kind() == io::ErrorKind::NotFound => {
            return Ok(Removal::Missing)
        }
        Verified::NotLooked(e) | Verified::NotOpened(e) => return Err(Error::open(path, e)),
        Verified::Replaced => return Ok(Removal::Changed),
    };
    if !sys::try_lock_exclusive(&fd).open_err(path)? || sys::record_locked(&fd) {
        return Ok(Removal::Locked);
    }
    match fs::still_names(path, &opened)? {
        Still::Same(_) => {}
        Still::Changed => return Ok(Removal::Changed),
        Still::Missing => return Ok(Removal::Missing),
    }
    if let Some(pid) = expected {
        if read_fd(&fd, path, Rule::Lenient).ok() != Some(pid) {
            return Ok(Removal::Changed);
        }
    }
    // The locked file itself (on Windows, by handle: never a name that a
    // successor's file may have taken meanwhile).
    match sys::remove_if_same(path, &fd) {
        Ok(RemoveOutcome::Removed) => Ok(Removal::Removed),
        Ok(RemoveOutcome::Missing) => Ok(Removal::Missing),
        Ok(RemoveOutcome::Other) => Ok(Removal::Changed),
        Err(RemoveFailed::Check(e)) => Err(Error::open(path, e)),
        Err(RemoveFailed::Remove(e)) => {
            Err(Error::open(path, e).with_detail("the stale file could not be removed"))
        }
    }
}
