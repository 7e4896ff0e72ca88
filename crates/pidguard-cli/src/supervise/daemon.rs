//! Starting a daemon: `run --daemon` and `ensure`.
//!
//! The daemon is started as a gate in a new session (no controlling
//! terminal, stdin from /dev/null, stdout/stderr to files or /dev/null,
//! working directory `/`), the PID file is written naming it while pidguard
//! holds the lock, the locked descriptor is handed to it, and only then does
//! it exec the command: its PID never changes, so the file names the final
//! daemon from the first moment and the lock is never free. pidguard returns
//! once the command runs (with `--notify`, once it reports READY=1) and
//! leaves the lock with the daemon.

use std::fs::File;
use std::os::fd::AsFd;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use pidguard::ensure::{EnsureOptions, Ensured};
use pidguard::{Guard, Pid, Pidfile, Process};

use crate::cli::{DaemonArgs, EnsureArgs};
use crate::exit::{Exit, Failure};
use crate::supervise::gate::{Gated, Launch};
use crate::supervise::tree;
use crate::supervise::{acquire, become_subreaper, exit_code};
use crate::sys::{close_on_exec_above_stdio, has_children, open_fds, reap};

/// Starts `command` as a daemon holding `pf`'s lock; returns its PID (the
/// `MAINPID` it reported, with `--notify`; the descendant left holding the
/// lock, for a command that forks itself into the background).
pub fn start(
    mut pf: Pidfile,
    command: &[std::ffi::OsString],
    opts: &DaemonArgs,
    wait: Option<Duration>,
    socket: Option<&Path>,
) -> Result<Pid, Failure> {
    let notify = if opts.notify {
        Some(NotifySocket::new()?)
    } else {
        None
    };
    let stdout = log_file(opts.stdout.as_deref())?;
    let stderr = log_file(opts.stderr.as_deref())?;
    let dir = opts.chdir.clone().unwrap_or_else(|| PathBuf::from("/"));
    // Checked here for a clear message (the child's chdir failure reads
    // as "not found" for the command); the child still reports a race.
    match std::fs::metadata(&dir) {
        Ok(md) if md.is_dir() => {}
        Ok(_) => {
            return Err(Failure::new(
                Exit::Usage,
                format!("--chdir {}: not a directory", dir.display()),
            ))
        }
        Err(e) => {
            return Err(Failure::new(
                Exit::Usage,
                format!(
                    "--chdir {}: {e}; create it or name an existing directory",
                    dir.display()
                ),
            ))
        }
    }
    let umask = opts.umask;
    // A forking daemon's background process becomes our child, so we can
    // tell it holds the lock and name it.
    become_subreaper();
    // The daemon gets stdin, stdout, stderr and the lock, nothing else of
    // ours (a pipe it kept open would hold up `pidguard … | cat`).
    close_on_exec_above_stdio(open_fds());
    let null = || {
        File::open("/dev/null")
            .map_err(|e| Failure::new(Exit::IoErr, format!("cannot open /dev/null: {e}")))
    };
    let launch = Launch {
        stdio: [
            Some(null()?.into()),
            Some(match stdout {
                Some(f) => f.into(),
                None => null()?.into(),
            }),
            Some(match stderr {
                Some(f) => f.into(),
                None => null()?.into(),
            }),
        ],
        dir: Some(dir),
        env: notify
            .iter()
            .map(|n| ("NOTIFY_SOCKET".into(), n.path.clone().into()))
            .collect(),
        session: Some(umask),
    };
    let gated = Gated::spawn(command, launch)?;
    let mut target = Process::open(gated.pid).ok();
    let mut pid = gated.pid;
    pf.pid(pid);
    let mut guard = match acquire(&pf, wait) {
        Ok(g) => g,
        Err(f) => {
            gated.abandon();
            return Err(f);
        }
    };
    if let Err(f) = gated.open(guard.as_fd()) {
        let _ = guard.release();
        return Err(f);
    }
    let inode = match inode_of(&guard) {
        Ok(i) => i,
        Err(f) => {
            // The daemon runs and holds the lock: the file is its own.
            drop(guard.into_fd());
            return Err(f);
        }
    };
    if notify.is_none() {
        // A command that forks itself into the background exits right
        // away, leaving a descendant with the lock: name that one.
        if let Err(end) = settle(&mut pid, &mut target, &mut guard, inode, opts) {
            match end {
                End::Release(_) => {
                    let _ = guard.release();
                }
                // Someone may hold the lock: the file stays theirs.
                End::Keep(_) => drop(guard.into_fd()),
            }
            return Err(end.failure());
        }
    }
    let probe = match (&notify, socket) {
        (Some(n), _) => Some(Probe::Notify(n)),
        (None, Some(s)) => Some(Probe::Socket(s)),
        (None, None) => None,
    };
    if let Some(probe) = probe {
        let timeout = opts.ready_timeout();
        match wait_ready(&probe, &mut pid, &mut target, &mut guard, inode, timeout) {
            Readiness::Ready { mainpid } => {
                if let Some(main) = mainpid.filter(|m| *m != pid) {
                    // As systemd: only a process the daemon started (below
                    // us) may be named; any other would be written, with
                    // its kernel identity record, as the file's owner.
                    let pinned = Process::open(main).ok();
                    if pinned.is_none() || tree::is_below_us(main) != Some(true) {
                        let path = guard.path().to_path_buf();
                        drop(guard.into_fd());
                        return Err(Failure::new(
                            Exit::Unavailable,
                            format!(
                                "the daemon (PID {pid}) reported MAINPID={main}, which is not \
                                 a process it started: refused (as systemd refuses a MAINPID \
                                 outside its service); {} keeps naming PID {pid}; report the \
                                 PID of the daemon's own process, or none",
                                path.display()
                            ),
                        ));
                    }
                    if let Err(e) = guard.set_pid(main) {
                        // The daemon runs and holds the lock: keep its file.
                        drop(guard.into_fd());
                        return Err(e.into());
                    }
                    // Alive after its record was made: the record is its own.
                    if pinned.as_ref().is_some_and(Process::has_exited) {
                        let _ = guard.set_pid(pid);
                        drop(guard.into_fd());
                        return Err(Failure::new(
                            Exit::Unavailable,
                            format!(
                                "the daemon's MAINPID {main} exited as soon as it was reported"
                            ),
                        ));
                    }
                    pid = main;
                }
            }
            Readiness::Exited(status) => {
                let _ = guard.release();
                return Err(Failure::new(
                    Exit::Child(failed_code(status)),
                    format!(
                        "the daemon exited ({status}) before {}; nothing left running",
                        probe.became_ready()
                    ),
                ));
            }
            Readiness::Undecidable(why) => {
                drop(guard.into_fd());
                return Err(Failure::new(Exit::Unavailable, why));
            }
            Readiness::TimedOut => {
                let what = format!(
                    "the daemon (PID {pid}) did not {} within {timeout:?}",
                    probe.get_ready()
                );
                return Err(give_up(guard, pid, inode, what));
            }
        }
    }
    // The daemon holds the lock now; close our copy without removing the
    // file. The daemon is not waited for: once we exit, it is reparented.
    drop(guard.into_fd());
    Ok(pid)
}

/// Watches the new daemon's first process for `--settle`: if it exits
/// leaving a descendant with the lock, that one is the daemon (`pid`,
/// `target` and the file name it). Returns only once the named process is
/// still running after the settle time and holds the lock itself (or that
/// cannot be read), waiting up to `--ready-timeout` more for a process that
/// runs without the lock (it may be handing it to a child). A process that
/// exits after this returns is not followed: the limit of a daemon that
/// forks itself later than `--settle`.
fn settle(
    pid: &mut Pid,
    target: &mut Option<Process>,
    guard: &mut Guard,
    inode: (u64, u64),
    opts: &DaemonArgs,
) -> Result<(), End> {
    let deadline = Instant::now() + opts.settle();
    let bound = deadline + opts.ready_timeout();
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let exited = match target {
            Some(p) => p.wait_timeout(remaining).then(|| reap(*pid)).flatten(),
            // No pidfd (a low descriptor limit): poll.
            None => poll_reap(*pid, remaining),
        };
        // A process that exited just after the wait is not reported.
        let exited = exited.or_else(|| reap(*pid));
        let Some(status) = exited else {
            match crate::sys::holds_inode(*pid, inode.0, inode.1) {
                Some(true) | None => return Ok(()),
                Some(false) if Instant::now() < bound => {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                }
                Some(false) => {
                    return Err(End::Keep(Failure::new(
                        Exit::Unavailable,
                        format!(
                            "the daemon (PID {pid}) runs but does not hold the lock of {}; \
                             the PID file is kept; {}",
                            guard.path().display(),
                            tree::FOREGROUND_HINT
                        ),
                    )));
                }
            }
        };
        match tree::successor(has_children(), inode.0, inode.1) {
            tree::Next::Follow(next) => {
                *target = Process::open(next).ok();
                guard
                    .set_pid(next)
                    .map_err(|e| End::Keep(Failure::from(e)))?;
                *pid = next;
            }
            tree::Next::Done { .. } => {
                return Err(End::Release(Failure::new(
                    Exit::Child(failed_code(status)),
                    format!(
                        "the daemon (PID {pid}) exited ({status}) right after it started; nothing left running"
                    ),
                )));
            }
            tree::Next::Undecidable(why) => {
                return Err(End::Keep(Failure::new(Exit::Unavailable, why)))
            }
        }
    }
}

/// How starting a daemon failed: with the PID file to remove (nothing
/// holds the lock but us) or to keep (someone may hold it).
enum End {
    Release(Failure),
    Keep(Failure),
}

impl End {
    fn failure(self) -> Failure {
        match self {
            End::Release(f) | End::Keep(f) => f,
        }
    }
}

/// Polls our child `pid` until it exits (its status) or `timeout` passes.
fn poll_reap(pid: Pid, timeout: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(st) = reap(pid) {
            return Some(st);
        }
        let now = Instant::now();
        if now >= deadline {
            return None;
        }
        std::thread::sleep((deadline - now).min(Duration::from_millis(5)));
    }
}

/// After a readiness timeout: stops the daemon's whole tree (TERM, 5 s,
/// KILL), then removes the file only if nothing below us holds the lock any
/// more. `what` says what timed out.
fn give_up(guard: Guard, pid: Pid, inode: (u64, u64), what: String) -> Failure {
    tree::stop_below(pid, Duration::from_secs(5));
    match tree::successor(has_children(), inode.0, inode.1) {
        tree::Next::Done { .. } => match guard.release() {
            Ok(()) => Failure::new(
                Exit::Stale,
                format!("{what}; it was stopped and the PID file removed"),
            ),
            Err(e) => Failure::new(Exit::Stale, format!("{what}; it was stopped, but {e}")),
        },
        tree::Next::Follow(holder) => {
            drop(guard.into_fd());
            Failure::new(
                Exit::Unavailable,
                format!(
                    "{what}; stopping it failed: PID {holder} still holds the lock, so the PID \
                     file is kept; stop it with `kill -KILL {holder}` once you are sure it is the daemon"
                ),
            )
        }
        tree::Next::Undecidable(why) => {
            drop(guard.into_fd());
            Failure::new(
                Exit::Unavailable,
                format!("{what}; stopping it failed: {why}"),
            )
        }
    }
}

/// What a new daemon's readiness is judged by.
enum Probe<'a> {
    /// READY=1 on the notification socket.
    Notify(&'a NotifySocket),
    /// A connection accepted on this Unix socket (`ensure --socket`).
    Socket(&'a Path),
}

impl Probe<'_> {
    fn get_ready(&self) -> String {
        match self {
            Probe::Notify(_) => "report READY=1".into(),
            Probe::Socket(s) => format!("accept connections on {}", s.display()),
        }
    }

    fn became_ready(&self) -> String {
        match self {
            Probe::Notify(_) => "it reported READY=1".into(),
            Probe::Socket(s) => format!("its socket {} accepted a connection", s.display()),
        }
    }
}

/// The exit status for a daemon that exited early: its own, or 1 if it
/// exited 0 (it is still a failure to start).
fn failed_code(status: std::process::ExitStatus) -> u8 {
    match exit_code(status) {
        0 => 1,
        c => c,
    }
}

/// The locked file's `(dev, ino)` (fstat: no descriptor needed).
pub(crate) fn inode_of(guard: &Guard) -> Result<(u64, u64), Failure> {
    crate::sys::inode(guard.as_fd()).map_err(|e| {
        Failure::new(
            Exit::IoErr,
            format!("cannot stat {}: {e}", guard.path().display()),
        )
    })
}

/// Where a daemon's output goes: appended to a file, or /dev/null. The
/// file is opened with a PID file's care: no symbolic link someone else
/// owns is followed (on the way or at the path), and it must be a regular
/// file with one link (or a character device such as /dev/null); as root,
/// never one another user owns.
/// The log file `path` names (opened with care), or `None` (/dev/null).
fn log_file(path: Option<&Path>) -> Result<Option<File>, Failure> {
    path.map(open_log).transpose()
}

fn open_log(p: &Path) -> Result<File, Failure> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
    let refuse = |why: String| {
        Failure::new(
            Exit::CantCreate,
            format!("refusing log file {}: {why}", p.display()),
        )
    };
    pidguard::check_directory_links(p)?;
    let euid = crate::sys::geteuid();
    let mut nofollow = false;
    match std::fs::symlink_metadata(p) {
        Ok(md) if md.file_type().is_symlink() => {
            if md.uid() != euid && md.uid() != 0 {
                return Err(refuse(format!(
                    "it is a symbolic link owned by UID {}, neither root nor us; remove it or \
                     point --stdout/--stderr at the real file",
                    md.uid()
                )));
            }
        }
        _ => nofollow = true,
    }
    let flags = crate::sys::log_open_flags(nofollow);
    let file = File::options()
        .create(true)
        .append(true)
        .mode(0o640)
        .custom_flags(flags)
        .open(p)
        .map_err(|e| {
            Failure::new(
                Exit::CantCreate,
                format!("cannot open log file {}: {e}", p.display()),
            )
        })?;
    let md = file.metadata().map_err(|e| {
        Failure::new(
            Exit::CantCreate,
            format!("cannot stat log file {}: {e}", p.display()),
        )
    })?;
    let kind = md.file_type();
    if kind.is_char_device() {
        // /dev/null, /dev/console, a terminal.
    } else if !kind.is_file() {
        return Err(refuse("not a regular file".into()));
    } else if md.nlink() > 1 {
        return Err(refuse(format!(
            "it has {} hard links (one may be a file you do not mean to write)",
            md.nlink()
        )));
    } else if euid == 0 && md.uid() != 0 {
        return Err(refuse(format!(
            "running as root, and the file belongs to UID {}: remove it, or run as that user",
            md.uid()
        )));
    }
    crate::sys::clear_nonblock(&file);
    Ok(file)
}

enum Readiness {
    Ready { mainpid: Option<Pid> },
    Exited(std::process::ExitStatus),
    Undecidable(String),
    TimedOut,
}

/// Waits for the daemon to be ready (`probe`), to exit, or the timeout. A
/// daemon whose process exits leaving a descendant with the lock (it
/// forked before it was ready) is followed: `pid`, `target` and the file
/// name that one.
fn wait_ready(
    probe: &Probe<'_>,
    pid: &mut Pid,
    target: &mut Option<Process>,
    guard: &mut Guard,
    inode: (u64, u64),
    timeout: Duration,
) -> Readiness {
    let deadline = Instant::now() + timeout;
    let mut mainpid = None;
    let mut buf = [0u8; 4096];
    loop {
        // Exited? Read what it sent before it went (a daemon may report
        // READY=1 with MAINPID= of a child and exit).
        let exited = reap(*pid);
        let now = Instant::now();
        if exited.is_none() && now >= deadline {
            return Readiness::TimedOut;
        }
        let slice = match exited {
            Some(_) => Duration::from_millis(1),
            None => (deadline - now).min(Duration::from_millis(5)),
        };
        match probe {
            Probe::Notify(n) => {
                let _ = n.sock.set_read_timeout(Some(slice));
                while let Ok(len) = n.sock.recv(&mut buf) {
                    if NotifySocket::parse(&buf[..len], &mut mainpid) {
                        return Readiness::Ready { mainpid };
                    }
                    let _ = n.sock.set_read_timeout(Some(Duration::from_millis(1)));
                }
            }
            // Judged only while the process the file names runs.
            Probe::Socket(path) if exited.is_none() => {
                if std::os::unix::net::UnixStream::connect(path).is_ok() {
                    return Readiness::Ready { mainpid: None };
                }
                std::thread::sleep(slice);
            }
            Probe::Socket(_) => {}
        }
        if let Some(status) = exited {
            match tree::successor(has_children(), inode.0, inode.1) {
                tree::Next::Follow(next) => {
                    *target = Process::open(next).ok();
                    if let Err(e) = guard.set_pid(next) {
                        return Readiness::Undecidable(e.to_string());
                    }
                    *pid = next;
                }
                tree::Next::Done { .. } => return Readiness::Exited(status),
                tree::Next::Undecidable(why) => return Readiness::Undecidable(why),
            }
        }
    }
}

/// A private datagram socket for the systemd notification protocol, in a
/// directory only this user can enter; removed on drop.
struct NotifySocket {
    dir: PathBuf,
    path: PathBuf,
    sock: UnixDatagram,
}

impl NotifySocket {
    fn new() -> Result<NotifySocket, Failure> {
        use std::os::unix::fs::DirBuilderExt;
        let base = std::env::var_os("XDG_RUNTIME_DIR")
            .map(PathBuf::from)
            .filter(|p| p.is_dir())
            .unwrap_or_else(std::env::temp_dir);
        let nonce = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir = base.join(format!("pidguard-notify-{}-{nonce}", std::process::id()));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(|e| {
                Failure::new(
                    Exit::CantCreate,
                    format!("cannot create {}: {e}", dir.display()),
                )
            })?;
        let path = dir.join("notify");
        let sock = UnixDatagram::bind(&path).map_err(|e| {
            let _ = std::fs::remove_dir(&dir);
            Failure::new(
                Exit::CantCreate,
                format!("cannot bind {}: {e}", path.display()),
            )
        })?;
        Ok(NotifySocket { dir, path, sock })
    }

    /// Reads one notification; `true` on READY=1.
    fn parse(msg: &[u8], mainpid: &mut Option<Pid>) -> bool {
        let mut ready = false;
        for line in String::from_utf8_lossy(msg).lines() {
            if line == "READY=1" {
                ready = true;
            } else if let Some(v) = line.strip_prefix("MAINPID=") {
                *mainpid = v.trim().parse::<i32>().ok().and_then(Pid::new);
            }
        }
        ready
    }
}

impl Drop for NotifySocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// `ensure`: the library's [`pidguard::ensure::ensure`], starting the daemon
/// with [`start`] when no live daemon holds `pf`. Returns its PID and
/// whether this call started it.
pub fn ensure(pf: &Pidfile, args: &EnsureArgs) -> Result<(Pid, bool), Failure> {
    let mut options = EnsureOptions::new();
    options.ready_timeout(args.detach.ready_timeout());
    if let Some(s) = &args.socket {
        options.socket(s);
    }
    let found = pidguard::ensure::ensure(pf, &options, || {
        start(
            pf.clone(),
            &args.command,
            &args.detach,
            None,
            args.socket.as_deref(),
        )
        .map_err(Failed::Start)
    })
    .map_err(|f| match f {
        Failed::Start(f) => f,
        // A daemon that never accepted a connection was stopped and its
        // file removed: as with --notify's timeout, exit 1.
        Failed::Ensure(e)
            if e.io_error().map(|io| io.kind()) == Some(std::io::ErrorKind::TimedOut) =>
        {
            Failure::new(Exit::Stale, Failure::from(e).message)
        }
        Failed::Ensure(e) => e.into(),
    })?;
    Ok((found.pid(), matches!(found, Ensured::Started(_))))
}

/// Why `ensure` failed: starting the daemon, or the library's part.
enum Failed {
    Start(Failure),
    Ensure(pidguard::Error),
}

impl From<pidguard::Error> for Failed {
    fn from(e: pidguard::Error) -> Failed {
        Failed::Ensure(e)
    }
}
