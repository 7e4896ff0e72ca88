//! Supervision on Windows (docs/WINDOWS.md, decision 9): `run` takes the
//! lock itself and keeps it while its command runs in a Job object; and
//! the refusals, with exit 69, of what Windows does not have (`--exec`,
//! `--daemon`, `--notify`, `--umask`, `ensure`, `--backend`). The same
//! names as the Unix modules, so `commands/` is the same everywhere.

use std::ffi::OsString;
use std::process::{Command, ExitStatus};
use std::time::Duration;

use pidguard::{Pid, Pidfile};

use crate::cli::RunArgs;
use crate::exit::{Exit, Failure};
use crate::supervise::common::{acquire, exec_failure};

/// A clear "not here" (exit 69, unsupported on this platform).
fn unix_only(what: &str, why: &str) -> Failure {
    Failure::new(
        Exit::Unavailable,
        format!("{what} is Unix-only: not available on Windows ({why})"),
    )
}

/// Refuses the options of `run` that Windows does not have, before any
/// file is touched.
pub fn check_run(args: &RunArgs) -> Result<(), Failure> {
    if args.backend.backend.is_some() {
        return Err(etcd::unsupported());
    }
    if args.exec {
        return Err(unix_only(
            "run --exec",
            "there is no exec, and a lock cannot be handed to another process; \
             use pidguard run without --exec, which supervises",
        ));
    }
    if args.daemon {
        return Err(unix_only(
            "--daemon",
            "no session to detach from; run pidguard run under a service manager \
             (sc.exe, Task Scheduler)",
        ));
    }
    if args.detach.notify {
        return Err(unix_only("--notify", "it is systemd's readiness protocol"));
    }
    if args.detach.umask.is_some() {
        return Err(unix_only("--umask", "file modes are ACLs there"));
    }
    Ok(())
}

/// Never reached: [`check_run`] refuses `--exec` first.
pub fn exec_in_place(
    _pf: &Pidfile,
    _command: &[OsString],
    _wait: Option<Duration>,
) -> Result<Exit, Failure> {
    Err(unix_only("run --exec", "there is no exec"))
}

/// A command's exit code as pidguard's (Windows has no signals: the low 8
/// bits of the code, as a Unix shell sees them).
pub fn exit_code(status: ExitStatus) -> u8 {
    match status.code() {
        Some(c) => c as u8,
        None => Exit::Software.code(),
    }
}

pub mod foreground {
    //! `run`'s default mode on Windows.

    use crate::supervise::windows::*;

    /// Joins a new Job object (ended with this process), takes the lock,
    /// starts the command, names it in the file, waits for it, removes the
    /// file, and exits with the command's code.
    ///
    /// The lock stays with the supervisor: on Windows a lock belongs to
    /// the process that took it (docs/WINDOWS.md, decision 7), so the
    /// command is not given the handle. The file names the supervisor
    /// from the moment it is locked until the command is started (a few
    /// milliseconds), then the command; a second `run` is refused before
    /// its command is started at all.
    pub fn supervise(
        pf: Pidfile,
        command: &[OsString],
        wait: Option<Duration>,
    ) -> Result<Exit, Failure> {
        // First: the command is in the job before it runs any code.
        if let Err(e) = crate::sys::join_new_job() {
            eprintln!(
                "pidguard: warning: cannot put the command in a Job object ({e}); if \
                 pidguard is killed, the command and its children keep running"
            );
        }
        crate::sys::outlive_console_interrupts();
        let mut guard = acquire(&pf, wait)?;
        let mut child = match Command::new(&command[0]).args(&command[1..]).spawn() {
            Ok(c) => c,
            Err(e) => {
                let _ = guard.release();
                return Err(exec_failure(&command[0], &e));
            }
        };
        let pid = i32::try_from(child.id())
            .ok()
            .and_then(Pid::new)
            .expect("a Windows process ID is positive and below 2^31");
        if let Err(e) = guard.set_pid(pid) {
            // The file would name us, not the command: end it (it is
            // ours, by its handle) rather than leave it unnamed.
            let _ = child.kill();
            let _ = child.wait();
            let _ = guard.release();
            return Err(Failure::new(
                Exit::for_error(&e),
                format!("{e}; the command (PID {pid}) was ended"),
            ));
        }
        let status = match child.wait() {
            Ok(s) => s,
            Err(e) => {
                // The command may still run: the file stays (locked by
                // us until we exit, when the job ends the command too).
                return Err(Failure::new(
                    Exit::Software,
                    format!("cannot wait for the command (PID {pid}): {e}"),
                ));
            }
        };
        if let Some(n) = crate::sys::job_others().filter(|&n| n > 0) {
            eprintln!(
                "pidguard: warning: the command exited and left {n} process(es) running in \
                 its job; they are ended when pidguard exits"
            );
        }
        if let Err(e) = guard.release() {
            eprintln!("pidguard: warning: the command exited ({status}), but {e}");
        }
        Ok(Exit::Child(exit_code(status)))
    }
}

pub mod daemon {
    //! `--daemon` and `ensure`: not on Windows.

    use crate::cli::{DaemonArgs, EnsureArgs};
    use crate::supervise::windows::*;

    fn refused() -> Failure {
        unix_only(
            "--daemon",
            "no session to detach from; run pidguard run under a service manager \
             (sc.exe, Task Scheduler)",
        )
    }

    /// Never reached: [`check_run`](crate::supervise::windows::check_run) refuses `--daemon`.
    pub fn start(
        _pf: Pidfile,
        _command: &[OsString],
        _opts: &DaemonArgs,
        _wait: Option<Duration>,
        _socket: Option<&std::path::Path>,
    ) -> Result<Pid, Failure> {
        Err(refused())
    }

    /// `ensure` starts a daemon: refused.
    pub fn ensure(_pf: &Pidfile, _args: &EnsureArgs) -> Result<(Pid, bool), Failure> {
        Err(unix_only(
            "ensure",
            "it starts its command with --daemon, and there is no session to detach \
             from; run pidguard run under a service manager (sc.exe, Task Scheduler)",
        ))
    }
}

pub mod etcd {
    //! `--backend etcd://…`: not on Windows (its supervisor contains the
    //! command's job with Unix process groups and signals).

    use crate::cli::{StatusArgs, StopArgs};
    use crate::supervise::windows::*;

    pub(super) fn unsupported() -> Failure {
        unix_only(
            "--backend etcd://…",
            "its supervisor stops the command's job with process groups and signals",
        )
    }

    pub fn run(_args: &RunArgs, _url: &str) -> Result<Exit, Failure> {
        Err(unsupported())
    }

    pub fn status(_args: &StatusArgs, _url: &str) -> Result<Exit, Failure> {
        Err(unsupported())
    }

    pub fn stop(
        _args: &StopArgs,
        _url: &str,
        _schedule: &pidguard::Schedule,
    ) -> Result<Exit, Failure> {
        Err(unsupported())
    }
}

pub mod job {
    //! No job watchdog process on Windows (the Job object is the kernel's).

    /// The first argument that makes `pidguard` run as the Unix job
    /// watchdog; on Windows it is an unknown argument like any other.
    pub const WATCHDOG_ARG: &str = "__pidguard-job-watchdog";

    pub fn watchdog_main(_args: &[std::ffi::OsString]) -> u8 {
        eprintln!("pidguard: {WATCHDOG_ARG} is Unix-only: not available on Windows");
        crate::exit::Exit::Unavailable.code()
    }
}
