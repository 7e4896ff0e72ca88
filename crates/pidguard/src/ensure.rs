//! Auto-spawned daemons: make sure one instance runs, starting it if needed.
//!
//! Tools that start their daemon on the first client call (a language
//! server, a build daemon, a debug adapter) race: several clients find no
//! daemon at once and each starts one. [`ensure`] serialises the decision:
//!
//! 1. Probe: if the PID file's holder runs (and, with a socket, the socket
//!    accepts a connection), that is the daemon. A daemon that does not
//!    lock its file (nginx, sshd) runs too when its unlocked file names a
//!    live process proved its owner or passing every consistency check
//!    ([`Status::Running`](crate::Status::Running) with `locked: false`):
//!    it is reported, never taken over, and nothing is started.
//! 2. Otherwise take the *spawn lock*, a PID file next to the daemon's
//!    (`.<name>.spawn`), waiting for whoever holds it.
//! 3. Probe again: a client that waited finds the daemon the winner started.
//! 4. Still none: call the spawn closure, which starts the daemon and
//!    returns once the daemon holds the PID file; then wait for its socket.
//!    An unlocked file whose live process is neither the owner nor proved
//!    gone (timing evidence, an unreadable fact, or a daemon whose socket
//!    does not answer) is not taken over by that start either:
//!    [`Pidfile::acquire`] refuses it with
//!    [`ErrorKind::AlreadyRunning`], naming the PID.
//!
//! ```no_run
//! use std::time::Duration;
//! use pidguard::ensure::{ensure, EnsureOptions};
//! use pidguard::Pidfile;
//!
//! let pidfile = Pidfile::named("mydaemon");
//! let mut options = EnsureOptions::new();
//! options.socket("/run/user/1000/mydaemon/sock");
//! let daemon = ensure(&pidfile, &options, || {
//!     // Start the daemon (for example `pidguard run --daemon`), return its PID.
//!     # unimplemented!()
//! })?;
//! println!("daemon PID {}", daemon.pid());
//! # Ok::<(), pidguard::Error>(())
//! ```

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{Error, ErrorKind, Result};
use crate::pid::Pid;
use crate::lock::{remove_unlocked, Pidfile, Removal};
use crate::read::process::{liveness, Liveness, Process};
use crate::signal::Signal;
use crate::read::status::status;

/// Options for [`ensure`].
#[derive(Clone, Debug)]
pub struct EnsureOptions {
    socket: Option<PathBuf>,
    ready_timeout: Duration,
}

impl Default for EnsureOptions {
    fn default() -> Self {
        EnsureOptions::new()
    }
}

impl EnsureOptions {
    /// Default options: no socket, a 10 s readiness timeout.
    pub fn new() -> EnsureOptions {
        EnsureOptions {
            socket: None,
            ready_timeout: Duration::from_secs(10),
        }
    }

    /// A Unix stream socket the daemon listens on: it counts as running only
    /// when the socket accepts a connection, and a new daemon counts as ready
    /// only then. Default: none.
    pub fn socket(&mut self, path: impl Into<PathBuf>) -> &mut EnsureOptions {
        self.socket = Some(path.into());
        self
    }

    /// How long a new daemon may take to become ready, and how long a client
    /// waits for another client's spawn. Default: 10 s.
    pub fn ready_timeout(&mut self, timeout: Duration) -> &mut EnsureOptions {
        self.ready_timeout = timeout;
        self
    }
}

/// The daemon [`ensure`] found or started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ensured {
    /// It was already running: it holds the file's lock, or (a daemon that
    /// does not lock its file) the unlocked file names it and it passes
    /// every check. Nothing was started or taken over.
    Running(Pid),
    /// This call started it.
    Started(Pid),
}

impl Ensured {
    /// The daemon's PID.
    pub fn pid(self) -> Pid {
        match self {
            Ensured::Running(p) | Ensured::Started(p) => p,
        }
    }
}

/// Makes sure a daemon holds `pidfile`, starting it with `spawn` if none
/// does. Any number of concurrent calls start exactly one daemon and all
/// return its PID.
///
/// `spawn` must start the daemon and return its PID once the daemon holds
/// the PID file (as `pidguard run --daemon` does before it returns). Its
/// error type is the caller's, as long as this crate's [`Error`] converts
/// into it.
pub fn ensure<E: From<Error>>(
    pidfile: &Pidfile,
    options: &EnsureOptions,
    spawn: impl FnOnce() -> std::result::Result<Pid, E>,
) -> std::result::Result<Ensured, E> {
    let path = pidfile.path()?;
    if let Some(pid) = probe(&path, options.socket.as_deref()) {
        return Ok(Ensured::Running(pid));
    }
    let lock = spawn_lock_path(&path);
    // The winner may take up to the readiness timeout; wait a little longer.
    let wait = options.ready_timeout + Duration::from_secs(2);
    let _spawning = Pidfile::new(&lock).acquire_timeout(wait).map_err(|e| {
        if e.kind() == ErrorKind::AlreadyRunning {
            e.with_detail(format!(
                "another client has been starting the daemon for {} s",
                wait.as_secs()
            ))
        } else {
            e
        }
    })?;
    if let Some(pid) = probe(&path, options.socket.as_deref()) {
        return Ok(Ensured::Running(pid));
    }
    let pid = spawn()?;
    if let Some(sock) = &options.socket {
        if let Err(e) = wait_for_socket(&path, sock, pid, options.ready_timeout) {
            // A daemon that never answers is no daemon: stop it and remove
            // its file, so that a later call starts a fresh one.
            give_up(&path, pid);
            return Err(e.into());
        }
    }
    Ok(Ensured::Started(pid))
}

/// The spawn lock next to a PID file: `<dir>/.<file name>.spawn`.
pub fn spawn_lock_path(path: &Path) -> PathBuf {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    path.with_file_name(format!(".{name}.spawn"))
}

/// The running holder's PID, if the daemon is up (and its socket answers).
fn probe(path: &Path, socket: Option<&Path>) -> Option<Pid> {
    let pid = status(path).running_pid()?;
    match socket {
        Some(s) if !socket_answers(s) => None,
        _ => Some(pid),
    }
}

/// Stops the daemon this call started (TERM, up to 5 s, then KILL), if the
/// file still names it as running, and removes its file once unlocked.
fn give_up(pidfile: &Path, pid: Pid) {
    if let Ok(p) = Process::open(pid) {
        if status(pidfile).running_pid() == Some(pid) {
            let _ = p.signal(Signal::TERM);
            let _ = p.signal(Signal::CONT);
            if !p.wait_timeout(Duration::from_secs(5)) {
                let _ = p.signal(Signal::KILL);
                p.wait_timeout(Duration::from_secs(5));
            }
        }
    }
    // Its lock goes with its last descriptor, a moment after it exits.
    for _ in 0..100 {
        match remove_unlocked(pidfile, Some(pid)) {
            Ok(Removal::Locked) => std::thread::sleep(Duration::from_millis(10)),
            _ => return,
        }
    }
}

fn socket_answers(path: &Path) -> bool {
    std::os::unix::net::UnixStream::connect(path).is_ok()
}

/// Waits until the daemon's socket accepts a connection; fails if the
/// daemon exits first or the timeout passes.
fn wait_for_socket(pidfile: &Path, sock: &Path, pid: Pid, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(1);
    loop {
        if socket_answers(sock) {
            return Ok(());
        }
        if liveness(pid) == Liveness::Dead {
            return Err(Error::with_io(
                ErrorKind::Io,
                pidfile,
                io::Error::other(format!(
                    "the daemon (PID {pid}) exited before its socket {} accepted a connection",
                    sock.display()
                )),
            ));
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(Error::with_io(
                ErrorKind::Io,
                pidfile,
                io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "the daemon (PID {pid}) did not accept connections on {} within {:?}; \
                         it was stopped and its PID file removed",
                        sock.display(),
                        timeout
                    ),
                ),
            ));
        }
        std::thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}
