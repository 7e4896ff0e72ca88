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
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use pidguard::{Guard, Pid, Pidfile, Process, Signal};

use crate::cli::DaemonArgs;
use crate::commands::gate::Gated;
use crate::commands::run::{acquire, become_subreaper, exit_code};
use crate::commands::tree;
use crate::exit::{Exit, Failure};

/// Starts `command` as a daemon holding `pf`'s lock; returns its PID (the
/// `MAINPID` it reported, with `--notify`; the descendant left holding the
/// lock, for a command that forks itself into the background).
pub fn start(
    mut pf: Pidfile,
    command: &[std::ffi::OsString],
    opts: &DaemonArgs,
    wait: Option<Duration>,
) -> Result<Pid, Failure> {
    let notify = if opts.notify {
        Some(NotifySocket::new()?)
    } else {
        None
    };
    let stdout = log_file(opts.stdout.as_deref())?;
    let stderr = log_file(opts.stderr.as_deref())?;
    let dir = opts.chdir.clone().unwrap_or_else(|| PathBuf::from("/"));
    let umask = opts.umask;
    // A forking daemon's background process becomes our child, so we can
    // tell it holds the lock and name it.
    become_subreaper();
    // The daemon gets stdin, stdout, stderr and the lock, nothing else of
    // ours (a pipe it kept open would hold up `pidguard … | cat`).
    close_on_exec_above_stdio();
    let gated = Gated::spawn(command, |cmd| {
        cmd.stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .current_dir(&dir);
        if let Some(n) = &notify {
            cmd.env("NOTIFY_SOCKET", &n.path);
        }
        // SAFETY: the closure runs in the child between fork and exec and
        // makes only async-signal-safe system calls (setsid, umask); it
        // allocates nothing.
        unsafe {
            cmd.pre_exec(move || {
                rustix::process::setsid()?;
                if let Some(m) = umask {
                    rustix::process::umask(rustix::fs::Mode::from_raw_mode(m as _));
                }
                Ok(())
            });
        }
    })?;
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
    let child = match gated.open(guard.as_fd()) {
        Ok(c) => c,
        Err(f) => {
            let _ = guard.release();
            return Err(f);
        }
    };
    drop(child);
    let inode = inode_of(&guard)?;
    if let Some(n) = notify {
        match n.wait_ready(
            &mut pid,
            &mut target,
            &mut guard,
            inode,
            opts.ready_timeout(),
        ) {
            Readiness::Ready { mainpid } => {
                if let Some(main) = mainpid.filter(|m| *m != pid) {
                    guard.set_pid(main)?;
                    pid = main;
                }
            }
            Readiness::Exited(status) => {
                let _ = guard.release();
                let code = match exit_code(status) {
                    0 => 1,
                    c => c,
                };
                return Err(Failure::new(
                    Exit::Child(code),
                    format!("the daemon exited ({status}) before it reported READY=1; nothing left running"),
                ));
            }
            Readiness::Undecidable(why) => {
                drop(guard.into_fd());
                return Err(Failure::new(Exit::Unavailable, why));
            }
            Readiness::TimedOut => {
                stop_child(pid, target.as_ref());
                let _ = guard.release();
                return Err(Failure::new(
                    Exit::Stale,
                    format!(
                        "the daemon did not report READY=1 within {:?}; it was stopped and the PID file removed",
                        opts.ready_timeout()
                    ),
                ));
            }
        }
    } else {
        // A command that forks itself into the background exits right
        // away, leaving a descendant with the lock: name that one.
        loop {
            let exited = match &target {
                Some(p) => p.wait_timeout(opts.settle()),
                None => false,
            };
            let status = match exited.then(|| reap(pid)).flatten() {
                Some(st) => st,
                None => break,
            };
            match tree::successor(has_children(), inode.0, inode.1) {
                tree::Next::Follow(next) => {
                    target = Process::open(next).ok();
                    guard.set_pid(next)?;
                    pid = next;
                }
                tree::Next::Done { .. } => {
                    let _ = guard.release();
                    let code = match exit_code(status) {
                        0 => 1,
                        c => c,
                    };
                    return Err(Failure::new(
                        Exit::Child(code),
                        format!(
                            "the daemon (PID {pid}) exited ({status}) right after it started; nothing left running"
                        ),
                    ));
                }
                tree::Next::Undecidable(why) => {
                    drop(guard.into_fd());
                    return Err(Failure::new(Exit::Unavailable, why));
                }
            }
        }
    }
    // The daemon holds the lock now; close our copy without removing the
    // file. The daemon is not waited for: once we exit, it is reparented.
    drop(guard.into_fd());
    Ok(pid)
}

/// The locked file's `(dev, ino)`.
pub(crate) fn inode_of(guard: &Guard) -> Result<(u64, u64), Failure> {
    use std::os::unix::fs::MetadataExt;
    let copy = guard
        .as_fd()
        .try_clone_to_owned()
        .map_err(|e| Failure::new(Exit::Software, format!("cannot duplicate the lock: {e}")))?;
    let md = File::from(copy).metadata().map_err(|e| {
        Failure::new(
            Exit::IoErr,
            format!("cannot stat {}: {e}", guard.path().display()),
        )
    })?;
    Ok((md.dev(), md.ino()))
}

/// Reaps our child `pid` if it has exited.
fn reap(pid: Pid) -> Option<std::process::ExitStatus> {
    use std::os::unix::process::ExitStatusExt;
    loop {
        match rustix::process::waitpid(
            Some(super::rustix_pid(pid)),
            rustix::process::WaitOptions::NOHANG,
        ) {
            Ok(Some((_, st))) => return Some(std::process::ExitStatus::from_raw(st.as_raw())),
            Ok(None) => return None,
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => return None,
        }
    }
}

/// Whether we still have any child (running or not yet reaped).
pub(crate) fn has_children() -> bool {
    use rustix::process::{waitid, WaitId, WaitIdOptions};
    !matches!(
        waitid(
            WaitId::All,
            WaitIdOptions::EXITED | WaitIdOptions::NOHANG | WaitIdOptions::NOWAIT
        ),
        Err(rustix::io::Errno::CHILD)
    )
}

/// Marks every descriptor above 2 close-on-exec (the ones listed in
/// `/proc/self/fd`, or every number below the descriptor limit without
/// `/proc`), so a daemon started next inherits none of them. This process
/// execs nothing else, so it loses nothing.
fn close_on_exec_above_stdio() {
    use rustix::io::{fcntl_getfd, fcntl_setfd, FdFlags};
    use std::os::fd::BorrowedFd;
    let fds: Vec<i32> = match std::fs::read_dir("/proc/self/fd") {
        Ok(dir) => dir
            .flatten()
            .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
            .collect(),
        Err(_) => {
            let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile)
                .current
                .unwrap_or(1 << 16)
                .min(1 << 16);
            (3..limit as i32).collect()
        }
    };
    for fd in fds.into_iter().filter(|&fd| fd > 2) {
        // SAFETY: only the descriptor's flags are read and changed; a
        // number that is not open (any more) fails with EBADF.
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        if let Ok(flags) = fcntl_getfd(fd) {
            let _ = fcntl_setfd(fd, flags | FdFlags::CLOEXEC);
        }
    }
}

/// TERM, up to 5 s, then KILL; reaps it (it is our child).
fn stop_child(pid: Pid, target: Option<&Process>) {
    if let Some(p) = target {
        let _ = p.signal(Signal::TERM);
        let _ = p.signal(Signal::CONT);
        if !p.wait_timeout(Duration::from_secs(5)) {
            let _ = p.signal(Signal::KILL);
            p.wait_timeout(Duration::from_secs(5));
        }
    }
    let _ = reap(pid);
}

/// Where a daemon's output goes: appended to a file, or /dev/null. The
/// file is opened with a PID file's care: no symbolic link someone else
/// owns is followed (on the way or at the path), and it must be a regular
/// file with one link (or a character device such as /dev/null); as root,
/// never one another user owns.
fn log_file(path: Option<&Path>) -> Result<Stdio, Failure> {
    match path {
        None => Ok(Stdio::null()),
        Some(p) => open_log(p).map(Stdio::from),
    }
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
    let euid = rustix::process::geteuid().as_raw();
    let mut flags =
        rustix::fs::OFlags::NONBLOCK.bits() as i32 | rustix::fs::OFlags::NOCTTY.bits() as i32;
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
        _ => flags |= rustix::fs::OFlags::NOFOLLOW.bits() as i32,
    }
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
    let _ = rustix::fs::fcntl_setfl(
        &file,
        rustix::fs::fcntl_getfl(&file)
            .map(|f| f - rustix::fs::OFlags::NONBLOCK)
            .unwrap_or(rustix::fs::OFlags::APPEND),
    );
    Ok(file)
}

enum Readiness {
    Ready { mainpid: Option<Pid> },
    Exited(std::process::ExitStatus),
    Undecidable(String),
    TimedOut,
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

    /// Waits for READY=1, the daemon's exit, or the timeout. A daemon whose
    /// process exits leaving a descendant with the lock (it forked before
    /// READY=1) is followed: `pid`, `target` and the file name that one.
    fn wait_ready(
        &self,
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
            let _ = self.sock.set_read_timeout(Some(slice));
            while let Ok(n) = self.sock.recv(&mut buf) {
                if Self::parse(&buf[..n], &mut mainpid) {
                    return Readiness::Ready { mainpid };
                }
                let _ = self.sock.set_read_timeout(Some(Duration::from_millis(1)));
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
