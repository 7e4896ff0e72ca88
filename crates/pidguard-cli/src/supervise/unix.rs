//! The Unix parts of `supervise/mod.rs`: `--exec`, the subreaper, exit
//! statuses with signals; and [`check_run`], which has nothing to refuse
//! here.

use std::ffi::OsString;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, ExitStatus};

use pidguard::Pidfile;

use crate::cli::RunArgs;
use crate::exit::{Exit, Failure};
use crate::supervise::common::{acquire, exec_failure};

/// Options of `run` this platform does not have: none on Unix.
pub fn check_run(_args: &RunArgs) -> Result<(), Failure> {
    Ok(())
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
