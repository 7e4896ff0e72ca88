//! `pidguard run`: take the lock and run a command under it.

use std::ffi::OsString;
use std::os::fd::AsFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, ExitStatus};

use pidguard::{Guard, Pidfile, Process, Signal};
use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2};
use signal_hook::iterator::exfiltrator::WithOrigin;
use signal_hook::iterator::SignalsInfo;
use signal_hook::low_level::siginfo::{Cause, Origin};

use crate::cli::RunArgs;
use crate::commands::{self, daemon, gate::Gated};
use crate::exit::{Exit, Failure};

/// The signals a supervisor passes on to its command.
pub(crate) const FORWARDED: [i32; 6] = [SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2];

pub fn run(args: RunArgs) -> Result<Exit, Failure> {
    if let Some(url) = &args.backend.backend {
        return super::etcd::run(&args, url);
    }
    let mut pf = commands::pidfile(&args.file);
    pf.fsync(args.fsync);
    commands::creation(&mut pf, &args.create)?;
    if args.exec {
        exec_in_place(&pf, &args)
    } else if args.daemon {
        let pid = daemon::start(pf, &args.command, &args.detach, args.wait)?;
        if args.file.json {
            println!("{}", serde_json::json!({ "pid": pid.get() }));
        }
        Ok(Exit::Success)
    } else {
        supervise(pf, &args)
    }
}

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
fn exec_in_place(pf: &Pidfile, args: &RunArgs) -> Result<Exit, Failure> {
    let guard = acquire(pf, args.wait)?;
    guard.set_inheritable(true)?;
    let program = &args.command[0];
    let err = Command::new(program).args(&args.command[1..]).exec();
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

/// The default mode: stay as the command's parent.
fn supervise(mut pf: Pidfile, args: &RunArgs) -> Result<Exit, Failure> {
    let mut gated = Gated::spawn(&args.command, |_| {})?;
    pf.pid(gated.pid);
    let guard = match acquire(&pf, args.wait) {
        Ok(g) => g,
        Err(f) => {
            gated.abandon();
            return Err(f);
        }
    };

    // From here on the supervisor outlives signals and passes them on.
    let mut signals = match SignalsInfo::<WithOrigin>::new(FORWARDED) {
        Ok(s) => s,
        Err(e) => {
            gated.abandon();
            return Err(Failure::new(
                Exit::Software,
                format!("cannot install signal handlers: {e}"),
            ));
        }
    };
    let handle = signals.handle();
    // The child is ours and not yet reaped, so its PID cannot be reused
    // while the handle exists.
    let target = Process::open(gated.pid).ok();
    let child = gated.pid;
    let forwarder = std::thread::spawn(move || {
        for origin in signals.forever() {
            if reached_the_child_too(&origin, child) {
                continue;
            }
            if let (Some(p), Some(s)) = (&target, Signal::from_raw(origin.signal)) {
                let _ = p.signal(s);
            }
        }
    });

    let started = gated.open(guard.as_fd());
    let status = gated.child.wait();
    handle.close();
    let _ = forwarder.join();
    let released = guard.release();
    started?;
    let status = status
        .map_err(|e| Failure::new(Exit::Software, format!("cannot wait for the command: {e}")))?;
    released?;
    Ok(Exit::Child(exit_code(status)))
}

/// Whether a signal was sent by the terminal to our whole foreground process
/// group (Ctrl-C, Ctrl-\\, a hang-up), which the command shares: it got its
/// own copy, and forwarding would deliver the signal twice. Signals sent to
/// pidguard alone (`kill PID`) and a command that moved to a process group
/// of its own still get forwarded.
pub(crate) fn reached_the_child_too(origin: &Origin, child: pidguard::Pid) -> bool {
    if origin.cause != Cause::Kernel {
        return false;
    }
    let Some(child) = rustix::process::Pid::from_raw(child.get()) else {
        return false;
    };
    match rustix::process::getpgid(Some(child)) {
        Ok(group) => group == rustix::process::getpgrp(),
        Err(_) => false,
    }
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
