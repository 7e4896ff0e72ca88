//! `pidguard run`: take the lock and run a command under it.

use std::ffi::OsString;
use std::io::{IoSlice, Read};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, ExitStatus};

use pidguard::{Guard, Pid, Pidfile, Process, Signal};
use rustix::net::{
    AddressFamily, SendAncillaryBuffer, SendAncillaryMessage, SendFlags, SocketFlags, SocketType,
};
use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2};
use signal_hook::iterator::Signals;

use crate::cli::RunArgs;
use crate::commands;
use crate::exit::{Exit, Failure};

/// The signals a supervisor passes on to its command.
const FORWARDED: [i32; 6] = [SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2];

pub fn run(args: RunArgs) -> Result<Exit, Failure> {
    let mut pf = commands::pidfile(&args.file);
    pf.fsync(args.fsync);
    if args.exec {
        exec_in_place(&pf, &args)
    } else {
        supervise(pf, &args)
    }
}

fn acquire(pf: &Pidfile, args: &RunArgs) -> Result<Guard, Failure> {
    Ok(match args.wait {
        Some(d) => pf.acquire_timeout(d)?,
        None => pf.acquire()?,
    })
}

/// `--exec`: write our own PID, keep the lock open across exec, become CMD.
fn exec_in_place(pf: &Pidfile, args: &RunArgs) -> Result<Exit, Failure> {
    let guard = acquire(pf, args)?;
    guard.set_inheritable(true)?;
    let program = &args.command[0];
    let err = Command::new(program).args(&args.command[1..]).exec();
    let _ = guard.release();
    Err(exec_failure(program, &err))
}

fn exec_failure(program: &OsString, err: &std::io::Error) -> Failure {
    let name = program.to_string_lossy();
    if err.kind() == std::io::ErrorKind::NotFound {
        Failure::new(Exit::NotFound, format!("command not found: {name}: {err}"))
    } else {
        Failure::new(Exit::CannotExecute, format!("cannot execute {name}: {err}"))
    }
}

fn internal(what: &str, e: impl std::fmt::Display) -> Failure {
    Failure::new(Exit::Software, format!("{what}: {e}"))
}

/// The default mode: stay as the command's parent.
fn supervise(mut pf: Pidfile, args: &RunArgs) -> Result<Exit, Failure> {
    let (ours, theirs) = rustix::net::socketpair(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::CLOEXEC,
        None,
    )
    .map_err(|e| internal("cannot create a socket pair", e))?;
    rustix::io::fcntl_setfd(&theirs, rustix::io::FdFlags::empty())
        .map_err(|e| internal("cannot prepare the socket", e))?;
    let mut child = Command::new(self_exe())
        .arg("__gate")
        .arg(theirs.as_raw_fd().to_string())
        .arg("--")
        .args(&args.command)
        .spawn()
        .map_err(|e| internal("cannot start the supervised process", e))?;
    drop(theirs);
    let child_pid = Pid::from_u32(child.id()).expect("a child's PID is positive");
    let abandon = |child: &mut std::process::Child| {
        let _ = child.kill();
        let _ = child.wait();
    };

    pf.pid(child_pid);
    let guard = match acquire(&pf, args) {
        Ok(g) => g,
        Err(f) => {
            abandon(&mut child);
            return Err(f);
        }
    };

    // From here on the supervisor outlives signals and passes them on.
    let mut signals = match Signals::new(FORWARDED) {
        Ok(s) => s,
        Err(e) => {
            abandon(&mut child);
            return Err(internal("cannot install signal handlers", e));
        }
    };
    let handle = signals.handle();
    // The child is ours and not yet reaped, so its PID cannot be reused
    // while the handle exists.
    let target = Process::open(child_pid).ok();
    let forwarder = std::thread::spawn(move || {
        for sig in signals.forever() {
            if let (Some(p), Some(s)) = (&target, Signal::from_raw(sig)) {
                let _ = p.signal(s);
            }
        }
    });

    // Hand over the lock, then learn whether exec worked (EOF) or not.
    let handed = send_fd(&ours, guard.as_fd());
    let mut report = String::new();
    if handed.is_ok() {
        let _ = std::fs::File::from(ours).read_to_string(&mut report);
    }
    let status = child
        .wait()
        .map_err(|e| internal("cannot wait for the command", e));
    handle.close();
    let _ = forwarder.join();
    let released = guard.release();
    let status = status?;
    if let Some(failure) = parse_report(&report) {
        return Err(failure);
    }
    if let Err(e) = handed {
        return Err(internal("cannot hand the lock to the command", e));
    }
    released?;
    Ok(Exit::Child(exit_code(status)))
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

/// The gate's report of a failed exec: "<exit code> <message>".
fn parse_report(report: &str) -> Option<Failure> {
    let (code, message) = report.split_once(' ')?;
    let exit = match code.parse::<u8>().ok()? {
        127 => Exit::NotFound,
        126 => Exit::CannotExecute,
        _ => Exit::Software,
    };
    Some(Failure::new(exit, message))
}

fn exit_code(status: ExitStatus) -> u8 {
    match (status.code(), status.signal()) {
        (Some(c), _) => c as u8,
        (None, Some(sig)) => 128u8.wrapping_add(sig as u8),
        (None, None) => Exit::Software.code(),
    }
}

/// This program, for re-executing as the gate.
fn self_exe() -> std::path::PathBuf {
    if cfg!(target_os = "linux") {
        "/proc/self/exe".into()
    } else {
        std::env::current_exe().unwrap_or_else(|_| "pidguard".into())
    }
}
