//! The supervised command's first moments: held at a gate until the PID
//! file names it and the lock is its own.
//!
//! `run` (and `run --daemon`, `ensure`) fork the command's process
//! themselves (`sys::fork_exec`, not `std::process::Command`, whose
//! `spawn` returns only after the exec and so would need a second thread
//! while this one hands the lock over). In the child, between fork and
//! exec, the gate sends the child's PID over a socket and waits for the
//! locked descriptor to come back on it, using only async-signal-safe
//! system calls (write, recvmsg, close: no allocation, no lock).
//! Meanwhile the parent writes that PID into the PID file under the lock
//! and sends the locked descriptor. The child receives it without
//! close-on-exec (so the command holds the lock itself and the lock
//! outlives the supervisor) and execs the command: its PID stays the same,
//! so the file names the command from the first moment it runs, and the
//! lock is never free. If the parent gives up (the lock is held by someone
//! else), it closes its end of the socket and the child exits without
//! running the command.
//!
//! The same socket carries the child's failure, if any: a step of its
//! set-up or the exec itself reports `(step, errno)`; an exec that
//! succeeded closes the socket (close-on-exec), which the parent reads as
//! end of file. Nothing re-executes pidguard, and `/proc` is not needed.

use std::ffi::OsString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, IntoRawFd, OwnedFd, RawFd};
use std::path::Path;

use pidguard::Pid;

use crate::exit::{Exit, Failure};
use crate::supervise::exec_failure;
use crate::sys::{self, read_exact, receive_fd, send_fd, write_all, Exec, ExecStep};

/// What the command's process is started with, besides its command line
/// (defaults: ours).
#[derive(Default)]
pub struct Launch {
    /// Descriptors 0, 1 and 2 (`None`: ours).
    pub stdio: [Option<OwnedFd>; 3],
    /// The working directory.
    pub dir: Option<std::path::PathBuf>,
    /// Variables set in its environment.
    pub env: Vec<(OsString, OsString)>,
    /// `Some(umask)`: a new session, and the mask if given.
    pub session: Option<Option<u32>>,
}

/// The parent's side: a command forked, its PID known, held before exec.
pub struct Gated {
    pub pid: Pid,
    program: OsString,
    dir: Option<std::path::PathBuf>,
    sock: OwnedFd,
}

/// What the child said.
enum Word {
    /// It waits at its gate (the word carries its PID as it sees it).
    AtGate,
    Failed(ExecStep, i32),
}

impl Gated {
    /// Forks the command's process, set up as `launch` says. Returns once
    /// the child exists and waits at the gate.
    pub fn spawn(command: &[OsString], launch: Launch) -> Result<Gated, Failure> {
        let mut exec = Exec::new(command).map_err(|e| exec_failure(&command[0], &e))?;
        let Launch {
            stdio,
            dir,
            env,
            session,
        } = launch;
        for (n, fd) in stdio.into_iter().enumerate() {
            if let Some(fd) = fd {
                exec.stdio(n, fd);
            }
        }
        if let Some(d) = &dir {
            exec.dir(d).map_err(|e| exec_failure(&command[0], &e))?;
        }
        for (k, v) in env {
            exec.env(k, v);
        }
        if let Some(umask) = session {
            exec.new_session(umask);
        }
        let (ours, theirs) =
            sys::socketpair().map_err(|e| internal("cannot create a socket pair", e))?;
        let (our_raw, their_raw) = (ours.as_raw_fd(), theirs.as_raw_fd());
        // SAFETY: the gate makes only async-signal-safe system calls on the
        // two descriptors of the pair, which stay open in the child until
        // it closes the parent's or execs (close-on-exec); `their_raw` is
        // open there for the report.
        let pid = unsafe { sys::fork_exec(&exec, their_raw, || hold(our_raw, their_raw)) }
            .map_err(|e| internal("cannot fork", e))?;
        // Only the child's copy is left: its exit or exec closes it, so
        // the reads below see the end of file instead of waiting forever.
        drop(theirs);
        let gated = Gated {
            // A PID fork returned is positive.
            pid: Pid::new(pid).ok_or_else(|| internal("fork returned no PID", pid))?,
            program: command[0].clone(),
            dir,
            sock: ours,
        };
        // Every way out below that does not keep the child closes our end
        // first: the child, waiting at its gate, sees the end of file and
        // exits by itself, so reaping it cannot wait forever.
        match gated.word() {
            // (The PID it says is its own as its PID namespace numbers it;
            // the file takes fork's, ours.)
            Ok(Some(Word::AtGate)) => Ok(gated),
            Ok(Some(Word::Failed(step, errno))) => {
                let failure = gated.failure(step, errno);
                gated.abandon();
                Err(failure)
            }
            other => {
                gated.abandon();
                Err(internal(
                    "the command's process died before it started",
                    match other {
                        Err(e) => e.to_string(),
                        _ => String::new(),
                    },
                ))
            }
        }
    }

    /// The child's next report: `None` at the end of file.
    fn word(&self) -> io::Result<Option<Word>> {
        let mut word = [0u8; 8];
        match read_exact(&self.sock, &mut word) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e),
        }
        let a = i32::from_ne_bytes(word[..4].try_into().expect("4 bytes"));
        let b = i32::from_ne_bytes(word[4..].try_into().expect("4 bytes"));
        Ok(Some(match ExecStep::from_code(a) {
            Some(step) => Word::Failed(step, b),
            None => Word::AtGate,
        }))
    }

    /// The message for a child's failed step.
    fn failure(&self, step: ExecStep, errno: i32) -> Failure {
        let e = io::Error::from_raw_os_error(errno);
        let name = self.program.to_string_lossy();
        match step {
            ExecStep::Exec => exec_failure(&self.program, &e),
            ExecStep::Chdir => Failure::new(
                Exit::CannotExecute,
                format!(
                    "cannot start {name}: cannot change to {}: {e}",
                    self.dir.as_deref().unwrap_or(Path::new("?")).display()
                ),
            ),
            ExecStep::Stdio => Failure::new(
                Exit::CannotExecute,
                format!("cannot start {name}: cannot set up its stdin/stdout/stderr: {e}"),
            ),
            ExecStep::Session => Failure::new(
                Exit::CannotExecute,
                format!("cannot start {name}: setsid failed: {e}"),
            ),
            ExecStep::Gate => Failure::new(
                Exit::CannotExecute,
                format!("cannot start {name}: the hand-over of the lock failed: {e}"),
            ),
        }
    }

    /// Lets the gated process go without running the command: closing our
    /// end of the socket makes it exit by itself (no signal is needed);
    /// it is reaped here.
    pub fn abandon(self) {
        let pid = self.pid.get();
        drop(self.sock);
        sys::reap_blocking(pid);
    }

    /// Hands the locked descriptor over and waits until the child has
    /// exec'd the command (`Ok`) or failed to (`Err`, 126 or 127: the
    /// child is reaped then).
    pub fn open(self, lock: BorrowedFd<'_>) -> Result<(), Failure> {
        if let Err(e) = send_fd(&self.sock, lock) {
            // EPIPE: the child closed its end, having failed at its gate;
            // what it said is there to read (no wait). Otherwise it still
            // waits for the lock: our end closed, it exits without running
            // the command (a wait for its word would wait forever).
            if e.raw_os_error() == Some(sys::Errno::PIPE.raw_os_error()) {
                if let Ok(Some(Word::Failed(step, errno))) = self.word() {
                    let failure = self.failure(step, errno);
                    self.abandon();
                    return Err(failure);
                }
            }
            self.abandon();
            return Err(internal("cannot hand the lock to the command", e));
        }
        match self.word() {
            // The end of file: the child exec'd (or was killed; then the
            // caller's wait sees its status).
            Ok(None) => Ok(()),
            Ok(Some(Word::Failed(step, errno))) => {
                let failure = self.failure(step, errno);
                self.abandon();
                Err(failure)
            }
            Ok(Some(Word::AtGate)) => {
                self.abandon();
                Err(internal(
                    "the command's process said it was at its gate twice",
                    "",
                ))
            }
            Err(e) => {
                self.abandon();
                Err(internal("cannot read from the command's process", e))
            }
        }
    }
}

fn internal(what: &str, e: impl std::fmt::Display) -> Failure {
    let e = e.to_string();
    if e.is_empty() {
        Failure::new(Exit::Software, what)
    } else {
        Failure::new(Exit::Software, format!("{what}: {e}"))
    }
}

/// In the child, between fork and exec (async-signal-safe calls only):
/// close the parent's end, send our PID, wait for the lock. The lock
/// arrives without close-on-exec, so the command inherits it.
fn hold(parent_end: RawFd, our_end: RawFd) -> io::Result<()> {
    // SAFETY: `parent_end` is the parent's socket, copied into this child
    // by fork; nothing in the child uses it. Closing it lets us see EOF
    // when the parent gives up.
    unsafe { sys::close_raw(parent_end) };
    // SAFETY: `our_end` is open in this child until exec (close-on-exec).
    let sock = unsafe { BorrowedFd::borrow_raw(our_end) };
    let mut word = [0u8; 8];
    word[4..].copy_from_slice(&sys::getpid().to_ne_bytes());
    write_all(sock, &word)?;
    match receive_fd(sock)? {
        // Left open, without close-on-exec: the command's lock.
        Some(fd) => {
            let _ = fd.into_raw_fd();
            Ok(())
        }
        // The parent gave up (the lock is someone else's): no report.
        None => Err(sys::canceled()),
    }
}
