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

use std::io::{IoSliceMut, Write};
use std::mem::MaybeUninit;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::Command;

use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};

use crate::cli::GateArgs;
use crate::exit::{Exit, Failure};

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
