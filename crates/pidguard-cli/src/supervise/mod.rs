//! The mechanisms of supervision: taking the lock, starting a command
//! under it (the gate), forwarding signals, following a command that
//! forks itself into the background, starting daemons, containing a job,
//! and supervision on etcd. `commands/` calls these; nothing here imports
//! `commands/`.

pub mod daemon;
pub mod etcd;
pub mod foreground;
pub mod gate;
pub mod job;
pub mod tree;

use std::ffi::OsString;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, ExitStatus};

use pidguard::{Guard, Pidfile};

use crate::exit::{Exit, Failure};

/// Takes the lock, waiting up to `wait` if given.
pub fn acquire(pf: &Pidfile, wait: Option<std::time::Duration>) -> Result<Guard, Failure> {
    let guard = match wait {
        Some(d) => pf.acquire_timeout(d)?,
        None => pf.acquire()?,
    };
    if let Some(fs) = guard.network_fs() {
        eprintln!(
            "pidguard: warning: {} is on {fs}, where flock may be emulated or hold only on \
             this host; prefer a local directory such as /run",
            guard.path().display()
        );
    }
    Ok(guard)
}

/// `--exec`: write our own PID, keep the lock open across exec, become CMD.
pub fn exec_in_place(
    pf: &Pidfile,
    command: &[OsString],
    wait: Option<std::time::Duration>,
) -> Result<Exit, Failure> {
    let guard = acquire(pf, wait)?;
    guard.set_inheritable(true)?;
    let program = &command[0];
    let err = Command::new(program).args(&command[1..]).exec();
    let _ = guard.release();
    Err(exec_failure(program, &err))
}

pub(crate) fn exec_failure(program: &OsString, err: &std::io::Error) -> Failure {
    let name = program.to_string_lossy();
    if err.kind() == std::io::ErrorKind::NotFound {
        Failure::new(Exit::NotFound, format!("command not found: {name}: {err}"))
    } else {
        Failure::new(Exit::CannotExecute, format!("cannot execute {name}: {err}"))
    }
}

/// Makes this process a child subreaper (Linux; elsewhere a no-op), and
/// makes sure its children are not reaped behind its back: a SIGCHLD
/// inherited as ignored would have the kernel reap them at once (and their
/// PIDs be reused while we still signal them by PID). A handler (that does
/// nothing) replaces it; unlike "ignored", it does not survive exec.
pub(crate) fn become_subreaper() {
    let _ = crate::sys::become_subreaper();
    static CHILD_EXITED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    let _ = signal_hook::flag::register(signal_hook::consts::SIGCHLD, &CHILD_EXITED);
}

/// A command's exit status as pidguard's: its code, or 128+N if killed by
/// signal N.
pub fn exit_code(status: ExitStatus) -> u8 {
    match (status.code(), status.signal()) {
        (Some(c), _) => c as u8,
        (None, Some(sig)) => 128u8.wrapping_add(sig as u8),
        (None, None) => Exit::Software.code(),
    }
}
