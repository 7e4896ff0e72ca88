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

use pidguard::{Pid, Pidfile, Process, Signal};

use crate::cli::DaemonArgs;
use crate::commands::gate::Gated;
use crate::commands::run::{acquire, exit_code};
use crate::exit::{Exit, Failure};

/// Starts `command` as a daemon holding `pf`'s lock; returns its PID (the
/// `MAINPID` it reported, with `--notify`).
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
    let mut gated = Gated::spawn(command, |cmd| {
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
    pf.pid(gated.pid);
    let mut guard = match acquire(&pf, wait) {
        Ok(g) => g,
        Err(f) => {
            gated.abandon();
            return Err(f);
        }
    };
    if let Err(f) = gated.open(guard.as_fd()) {
        let _ = gated.child.wait();
        let _ = guard.release();
        return Err(f);
    }
    let mut pid = gated.pid;
    if let Some(n) = notify {
        match n.wait_ready(&mut gated, opts.ready_timeout()) {
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
            Readiness::TimedOut => {
                stop_child(&mut gated);
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
    }
    // The daemon holds the lock now; close our copy without removing the
    // file. The daemon is not waited for: once we exit, it is reparented.
    drop(guard.into_fd());
    Ok(pid)
}

/// TERM, up to 5 s, then KILL; reaps the child.
fn stop_child(gated: &mut Gated) {
    if let Ok(p) = Process::open(gated.pid) {
        let _ = p.signal(Signal::TERM);
        let _ = p.signal(Signal::CONT);
        if !p.wait_timeout(Duration::from_secs(5)) {
            let _ = p.signal(Signal::KILL);
        }
    }
    let _ = gated.child.wait();
}

/// Where a daemon's output goes: appended to a file, or /dev/null.
fn log_file(path: Option<&Path>) -> Result<Stdio, Failure> {
    match path {
        None => Ok(Stdio::null()),
        Some(p) => File::options()
            .create(true)
            .append(true)
            .open(p)
            .map(Stdio::from)
            .map_err(|e| {
                Failure::new(
                    Exit::CantCreate,
                    format!("cannot open log file {}: {e}", p.display()),
                )
            }),
    }
}

enum Readiness {
    Ready { mainpid: Option<Pid> },
    Exited(std::process::ExitStatus),
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

    /// Waits for READY=1, the daemon's exit, or the timeout.
    fn wait_ready(&self, gated: &mut Gated, timeout: Duration) -> Readiness {
        let deadline = Instant::now() + timeout;
        let mut mainpid = None;
        let mut buf = [0u8; 4096];
        loop {
            // Exited? Read what it sent before it went (a daemon may report
            // READY=1 with MAINPID= of a child and exit).
            let exited = gated.child.try_wait().ok().flatten();
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
                return Readiness::Exited(status);
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
