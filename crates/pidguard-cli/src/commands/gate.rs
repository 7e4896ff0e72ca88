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
use std::io::{self, IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, BorrowedFd, IntoRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::thread::JoinHandle;

use pidguard::Pid;
use rustix::io::Errno;
use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags, SocketFlags, SocketType,
};

use crate::commands::run::exec_failure;
use crate::exit::{Exit, Failure};

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
        let (ours, theirs) = rustix::net::socketpair(
            AddressFamily::UNIX,
            SocketType::STREAM,
            SocketFlags::CLOEXEC,
            None,
        )
        .map_err(|e| internal("cannot create a socket pair", e))?;
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
        let spawner = std::thread::Builder::new()
            .name("pidguard-spawn".into())
            .spawn(move || cmd.spawn())
            .map_err(|e| internal("cannot start a thread", e))?;
        // The child's first word is its PID; EOF means it never got there.
        let mut word = [0u8; 4];
        let got = read_exact(&ours, &mut word);
        // The child has its own copy now (or is gone).
        drop(theirs);
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
    unsafe { rustix::io::close(parent_end) };
    // SAFETY: `our_end` is open in this child until exec (close-on-exec).
    let sock = unsafe { BorrowedFd::borrow_raw(our_end) };
    let pid = rustix::process::getpid().as_raw_nonzero().get();
    write_all(sock, &pid.to_ne_bytes())?;
    match receive_fd(sock) {
        // Left open, without close-on-exec: the command's lock.
        Some(fd) => {
            let _ = fd.into_raw_fd();
            Ok(())
        }
        None => Err(io::Error::from_raw_os_error(Errno::CANCELED.raw_os_error())),
    }
}

fn write_all(sock: BorrowedFd<'_>, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        match rustix::io::write(sock, bytes) {
            Ok(0) => return Err(io::Error::from_raw_os_error(Errno::PIPE.raw_os_error())),
            Ok(n) => bytes = &bytes[n..],
            Err(Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

fn read_exact(sock: &OwnedFd, mut buf: &mut [u8]) -> io::Result<()> {
    while !buf.is_empty() {
        match rustix::io::read(sock, &mut *buf) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => buf = &mut buf[n..],
            Err(Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Sends one descriptor with `SCM_RIGHTS`.
fn send_fd(sock: &OwnedFd, fd: BorrowedFd<'_>) -> io::Result<()> {
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    let fds = [fd];
    if !control.push(SendAncillaryMessage::ScmRights(&fds)) {
        return Err(io::Error::other("control buffer too small"));
    }
    rustix::net::sendmsg(
        sock,
        &[IoSlice::new(b"L")],
        &mut control,
        SendFlags::NOSIGNAL,
    )?;
    Ok(())
}

/// Receives one descriptor sent with `SCM_RIGHTS` (allocation-free);
/// `None` on EOF or error.
fn receive_fd(sock: BorrowedFd<'_>) -> Option<OwnedFd> {
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let mut byte = [0u8; 1];
    let mut iov = [IoSliceMut::new(&mut byte)];
    loop {
        match rustix::net::recvmsg(sock, &mut iov, &mut control, RecvFlags::empty()) {
            Ok(msg) if msg.bytes == 0 => return None,
            Ok(_) => break,
            Err(Errno::INTR) => continue,
            Err(_) => return None,
        }
    }
    control.drain().find_map(|m| match m {
        RecvAncillaryMessage::ScmRights(mut fds) => fds.next(),
        _ => None,
    })
}
