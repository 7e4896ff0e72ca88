//! `pidguard __gate FD -- CMD…` (internal): the supervised command's first
//! moments.
//!
//! `run` starts this gate as its child, learns the child's PID, writes that
//! PID into the PID file under the lock, and only then sends the locked
//! descriptor over the socket `FD`. The gate keeps the descriptor open across
//! `exec` (so the command holds the lock itself and the lock outlives the
//! supervisor) and execs the command: the PID stays the same, so the file
//! names the command from the first moment it runs. If `exec` fails, the gate
//! reports why on the socket and exits 126 or 127.

use std::ffi::OsString;
use std::io::{IoSlice, IoSliceMut, Read, Write};
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};

use pidguard::Pid;
use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags, SocketFlags, SocketType,
};

use crate::cli::GateArgs;
use crate::exit::{Exit, Failure};

/// The parent's side: a command started as a gate, its PID known, not yet
/// running the command.
pub struct Gated {
    pub child: Child,
    pub pid: Pid,
    sock: Option<OwnedFd>,
}

impl Gated {
    /// Starts `pidguard __gate FD -- command…`; `configure` sets up the
    /// child (stdio, directory, environment, session).
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
        rustix::io::fcntl_setfd(&theirs, rustix::io::FdFlags::empty())
            .map_err(|e| internal("cannot prepare the socket", e))?;
        let mut cmd = Command::new(self_exe());
        cmd.arg("__gate")
            .arg(theirs.as_raw_fd().to_string())
            .arg("--")
            .args(command);
        configure(&mut cmd);
        let child = cmd
            .spawn()
            .map_err(|e| internal("cannot start the process", e))?;
        drop(theirs);
        let pid = Pid::from_u32(child.id()).expect("a child's PID is positive");
        Ok(Gated {
            child,
            pid,
            sock: Some(ours),
        })
    }

    /// Lets the gated process go (it never ran the command) and reaps it:
    /// closing our end of the socket makes it exit by itself, so no signal
    /// is needed.
    pub fn abandon(mut self) {
        drop(self.sock.take());
        let _ = self.child.wait();
    }

    /// Hands the locked descriptor over and waits until the gate has exec'd
    /// the command (`Ok`) or reported why it could not (`Err`, exit 126 or
    /// 127). If the gate died before taking the descriptor, `Ok` too: the
    /// caller learns its fate from its exit status.
    pub fn open(&mut self, lock: BorrowedFd<'_>) -> Result<(), Failure> {
        let Some(sock) = self.sock.take() else {
            return Ok(());
        };
        if send_fd(&sock, lock).is_err() {
            return Ok(());
        }
        let mut report = String::new();
        let _ = std::fs::File::from(sock).read_to_string(&mut report);
        match parse_report(&report) {
            Some(f) => Err(f),
            None => Ok(()),
        }
    }
}

fn internal(what: &str, e: impl std::fmt::Display) -> Failure {
    Failure::new(Exit::Software, format!("{what}: {e}"))
}

/// This program, for re-executing as the gate.
fn self_exe() -> std::path::PathBuf {
    if cfg!(target_os = "linux") {
        "/proc/self/exe".into()
    } else {
        std::env::current_exe().unwrap_or_else(|_| "pidguard".into())
    }
}

/// Sends one descriptor with `SCM_RIGHTS`.
fn send_fd(sock: &OwnedFd, fd: BorrowedFd<'_>) -> std::io::Result<()> {
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    let fds = [fd];
    if !control.push(SendAncillaryMessage::ScmRights(&fds)) {
        return Err(std::io::Error::other("control buffer too small"));
    }
    rustix::net::sendmsg(
        sock,
        &[IoSlice::new(b"L")],
        &mut control,
        SendFlags::NOSIGNAL,
    )?;
    Ok(())
}

/// The gate's report of a failed exec: `"<exit code> <message>"`.
fn parse_report(report: &str) -> Option<Failure> {
    let (code, message) = report.split_once(' ')?;
    let exit = match code.parse::<u8>().ok()? {
        127 => Exit::NotFound,
        126 => Exit::CannotExecute,
        _ => Exit::Software,
    };
    Some(Failure::new(exit, message))
}

/// Exit status when the supervisor went away without handing over the lock.
const NO_LOCK: u8 = 125;

pub fn run(args: GateArgs) -> Result<Exit, Failure> {
    if args.fd < 3 {
        return Err(Failure::new(
            Exit::Usage,
            "__gate is internal to `pidguard run`",
        ));
    }
    // SAFETY: `run` passes the number of the socket it left open (not
    // close-on-exec) for this process; nothing else in this process owns it.
    let sock = unsafe { OwnedFd::from_raw_fd(args.fd) };
    let Some(lock) = receive_fd(&sock) else {
        return Ok(Exit::Child(NO_LOCK));
    };
    let inherit = rustix::io::fcntl_setfd(&lock, rustix::io::FdFlags::empty());
    let hide = rustix::io::fcntl_setfd(&sock, rustix::io::FdFlags::CLOEXEC);
    if let Err(e) = inherit.and(hide) {
        return report(
            &sock,
            Exit::Software,
            format!("cannot prepare the lock descriptor: {e}"),
        );
    }
    let program = &args.command[0];
    let err = Command::new(program).args(&args.command[1..]).exec();
    let (exit, what) = if err.kind() == std::io::ErrorKind::NotFound {
        (Exit::NotFound, "command not found")
    } else {
        (Exit::CannotExecute, "cannot execute command")
    };
    report(
        &sock,
        exit,
        format!("{what}: {}: {err}", program.to_string_lossy()),
    )
}

/// Tells the supervisor why the command did not start.
fn report(sock: &OwnedFd, exit: Exit, message: String) -> Result<Exit, Failure> {
    let mut stream = std::fs::File::from(sock.try_clone().map_err(|e| {
        Failure::new(
            Exit::Software,
            format!("cannot report to the supervisor: {e}"),
        )
    })?);
    let _ = write!(stream, "{} {message}", exit.code());
    Ok(exit)
}

/// Receives one descriptor sent with `SCM_RIGHTS`; `None` on EOF or error.
fn receive_fd(sock: &OwnedFd) -> Option<OwnedFd> {
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let mut byte = [0u8; 1];
    let mut iov = [IoSliceMut::new(&mut byte)];
    loop {
        match rustix::net::recvmsg(sock, &mut iov, &mut control, RecvFlags::empty()) {
            Ok(msg) if msg.bytes == 0 => return None,
            Ok(_) => break,
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => return None,
        }
    }
    control.drain().find_map(|m| match m {
        RecvAncillaryMessage::ScmRights(mut fds) => fds.next(),
        _ => None,
    })
}
