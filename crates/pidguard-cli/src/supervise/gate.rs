//! The supervised command's first moments: held at a gate until the PID
//! file names it and the lock is its own.
//!
//! `run` (and `run --daemon`, `ensure`) fork the command's process with
//! `std::process::Command`; in the child, between fork and exec, a hook
//! sends the child's PID over a socket and waits for the locked descriptor
//! to come back on it, using only async-signal-safe system calls (write,
//! recvmsg, close: no allocation, no lock). Meanwhile the parent writes that
//! PID into the PID file under the lock and sends the locked descriptor.
//! The child receives it without close-on-exec (so the command holds the
//! lock itself and the lock outlives the supervisor) and execs the command:
//! its PID stays the same, so the file names the command from the first
//! moment it runs, and the lock is never free. If the parent gives up (the
//! lock is held by someone else), it closes its end of the socket and the
//! child exits without running the command.
//!
//! `Command::spawn` returns only once the child has exec'd (it reports an
//! exec failure), so it runs on a helper thread while this thread does the
//! hand-over. Nothing re-executes pidguard, and `/proc` is not needed.

use std::ffi::OsString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, IntoRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::thread::JoinHandle;

use pidguard::Pid;

use crate::exit::{Exit, Failure};
use crate::supervise::exec_failure;
use crate::sys::{self, read_exact, receive_fd, send_fd, write_all};

/// The parent's side: a command forked, its PID known, held before exec.
pub struct Gated {
    pub pid: Pid,
    program: OsString,
    sock: OwnedFd,
    spawner: JoinHandle<io::Result<Child>>,
}

impl Gated {
    /// Forks the command's process; `configure` sets up the child (stdio,
    /// directory, environment, session: its `pre_exec` hooks run before the
    /// gate's). Returns once the child exists and waits at the gate.
    pub fn spawn(
        command: &[OsString],
        configure: impl FnOnce(&mut Command),
    ) -> Result<Gated, Failure> {
        let (ours, theirs) =
            sys::socketpair().map_err(|e| internal("cannot create a socket pair", e))?;
        let mut cmd = Command::new(&command[0]);
        cmd.args(&command[1..]);
        configure(&mut cmd);
        let (our_raw, their_raw) = (ours.as_raw_fd(), theirs.as_raw_fd());
        // SAFETY: the hook runs in the child between fork and exec and makes
        // only async-signal-safe system calls on descriptors it was given;
        // it allocates nothing and takes no lock.
        unsafe {
            cmd.pre_exec(move || hold(our_raw, their_raw));
        }
        // Our copy of the child's end is closed by whichever comes first:
        // the spawning thread once `spawn` returns (the child failed before
        // the gate, or never existed: then the read below sees EOF instead
        // of waiting forever), or this thread once the child sent its PID
        // (it has its own copy then; at a low descriptor limit the lock's
        // descriptor needs the slot).
        let theirs = std::sync::Arc::new(std::sync::Mutex::new(Some(theirs)));
        let close_theirs = {
            let theirs = std::sync::Arc::clone(&theirs);
            move || drop(theirs.lock().unwrap_or_else(|e| e.into_inner()).take())
        };
        let spawner = std::thread::Builder::new()
            .name("pidguard-spawn".into())
            .spawn({
                let close_theirs = close_theirs.clone();
                move || {
                    let spawned = cmd.spawn();
                    close_theirs();
                    spawned
                }
            })
            .map_err(|e| internal("cannot start a thread", e))?;
        // The child's first word is its PID; EOF means it never got there.
        let mut word = [0u8; 4];
        let got = read_exact(&ours, &mut word);
        close_theirs();
        match got.ok().and_then(|()| Pid::new(i32::from_ne_bytes(word))) {
            Some(pid) => Ok(Gated {
                pid,
                program: command[0].clone(),
                sock: ours,
                spawner,
            }),
            None => {
                drop(ours);
                Err(match spawner.join() {
                    Ok(Err(e)) => exec_failure(&command[0], &e),
                    Ok(Ok(mut child)) => {
                        let _ = child.wait();
                        internal("the command's process died before it started", "")
                    }
                    Err(_) => internal("the thread starting the command failed", ""),
                })
            }
        }
    }

    /// Lets the gated process go without running the command: closing our
    /// end of the socket makes it exit by itself (no signal is needed);
    /// `Command::spawn` reaps it.
    pub fn abandon(self) {
        drop(self.sock);
        if let Ok(Ok(mut child)) = self.spawner.join() {
            // It exec'd anyway (it cannot without the lock): reap it.
            let _ = child.wait();
        }
    }

    /// Hands the locked descriptor over and waits until the child has
    /// exec'd the command (`Ok`, with the child to wait for) or failed to
    /// (`Err`, 126 or 127: the child is already reaped).
    pub fn open(self, lock: BorrowedFd<'_>) -> Result<Child, Failure> {
        let sent = send_fd(&self.sock, lock);
        drop(self.sock);
        let spawned = self
            .spawner
            .join()
            .map_err(|_| internal("the thread starting the command failed", ""))?;
        match (spawned, sent) {
            (Ok(child), _) => Ok(child),
            (Err(e), Ok(())) => Err(exec_failure(&self.program, &e)),
            (Err(e), Err(s)) => Err(internal(
                "cannot hand the lock to the command",
                format!("{s} ({e})"),
            )),
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
    let pid = sys::getpid();
    write_all(sock, &pid.to_ne_bytes())?;
    match receive_fd(sock) {
        // Left open, without close-on-exec: the command's lock.
        Some(fd) => {
            let _ = fd.into_raw_fd();
            Ok(())
        }
        None => Err(sys::canceled()),
    }
}
