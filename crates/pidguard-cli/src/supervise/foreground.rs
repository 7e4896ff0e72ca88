//! `run`'s default mode: stay as the command's parent, pass signals on,
//! follow a command that forks itself into the background, remove the file
//! when it is done. One thread does it all: it waits for signals (SIGCHLD
//! among them) and, between them, reaps, so a signal is never passed on by
//! PID to a process it has already reaped (that PID may have been reused).
//! The etcd supervisor shares [`FORWARDED`] and [`reached_the_child_too`].

use std::os::fd::AsFd;
use std::process::ExitStatus;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use pidguard::{Guard, Pidfile, Process, Signal};
use signal_hook::consts::{SIGCHLD, SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2};
use signal_hook::iterator::exfiltrator::WithOrigin;
use signal_hook::iterator::SignalsInfo;
use signal_hook::low_level::siginfo::{Cause, Origin};

use crate::exit::{Exit, Failure};
use crate::supervise::gate::{Gated, Launch};
use crate::supervise::{acquire, become_subreaper, daemon, exit_code, tree};

/// The signals a supervisor passes on to its command.
pub(crate) const FORWARDED: [i32; 6] = [SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2];

/// The process signals are forwarded to: the command, or the daemon it
/// forked into. `reaped` is set by the same thread, in the same pass, that
/// reaps it: while it is false the PID cannot have been reused, so sending
/// by PID (no pidfd) is safe.
pub(crate) struct Target {
    pub pid: pidguard::Pid,
    pub pinned: Option<Process>,
    pub reaped: bool,
}

impl Target {
    /// Sends `signal` if the target is known unreaped; `Ok(false)` if not.
    pub fn send(&self, signal: Signal) -> std::io::Result<bool> {
        if self.reaped {
            return Ok(false);
        }
        match &self.pinned {
            Some(p) => p.signal(signal)?,
            None => crate::sys::kill(self.pid, signal)?,
        }
        Ok(true)
    }
}

/// The signals the supervisor takes: [`FORWARDED`], passed on to the
/// target, and SIGCHLD, which only wakes the wait (the caller reaps).
/// Dropping it restores the previous handlers.
pub(crate) enum Signals {
    /// signal-hook's self-pipe: [`Signals::wait`] blocks until one comes.
    Pipe(SignalsInfo<WithOrigin>),
    /// Without descriptors for a self-pipe (a low descriptor limit): each
    /// handler sets a flag (all it does, async-signal-safe), and
    /// [`Signals::wait`] looks at the flags every 10 ms. The sender is not
    /// known then, so a signal the terminal sent to the whole process group
    /// (the command got its own) is forwarded too.
    Flags(Vec<(i32, Arc<AtomicBool>)>, Vec<signal_hook::SigId>),
}

impl Signals {
    pub fn install() -> Result<Signals, Failure> {
        let cannot = |e: std::io::Error| {
            Failure::new(
                Exit::Software,
                format!("cannot install signal handlers: {e}; the command was not started"),
            )
        };
        let all = FORWARDED.iter().copied().chain([SIGCHLD]);
        match SignalsInfo::<WithOrigin>::new(all.clone()) {
            Ok(s) => Ok(Signals::Pipe(s)),
            Err(e) if e.raw_os_error() == Some(crate::sys::Errno::MFILE.raw_os_error()) => {
                let mut flags = Vec::new();
                let mut ids = Vec::new();
                for sig in all {
                    let flag = Arc::new(AtomicBool::new(false));
                    ids.push(signal_hook::flag::register(sig, Arc::clone(&flag)).map_err(cannot)?);
                    flags.push((sig, flag));
                }
                Ok(Signals::Flags(flags, ids))
            }
            Err(e) => Err(cannot(e)),
        }
    }

    /// Blocks until some signal came (SIGCHLD included; with flags, at
    /// most 10 ms) and passes the forwarded ones on to `target`.
    fn wait(&mut self, target: &Target) {
        match self {
            Signals::Pipe(signals) => {
                for origin in signals.wait() {
                    if origin.signal == SIGCHLD || reached_the_child_too(&origin, target.pid) {
                        continue;
                    }
                    forward(target, origin.signal);
                }
            }
            Signals::Flags(flags, _) => {
                let mut any = false;
                for (sig, flag) in flags.iter() {
                    if flag.swap(false, Ordering::SeqCst) {
                        any = true;
                        if *sig != SIGCHLD {
                            forward(target, *sig);
                        }
                    }
                }
                if !any {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
            }
        }
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        if let Signals::Flags(_, ids) = self {
            for id in ids.drain(..) {
                signal_hook::low_level::unregister(id);
            }
        }
    }
}

/// Passes `raw` on to the target, reporting what could not be sent.
fn forward(t: &Target, raw: i32) {
    let Some(sig) = Signal::from_raw(raw) else {
        return;
    };
    match t.send(sig) {
        Ok(true) => {}
        Ok(false) => eprintln!(
            "pidguard: {} not forwarded: PID {} has already exited",
            sig.name(),
            t.pid
        ),
        Err(e) => eprintln!(
            "pidguard: cannot forward {} to PID {}: {e}",
            sig.name(),
            t.pid
        ),
    }
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
    crate::sys::in_our_group(child)
}

/// The default mode: stay as the command's parent, pass signals on, follow
/// a command that daemonizes itself, remove the file when it is done.
pub fn supervise(
    mut pf: Pidfile,
    command: &[std::ffi::OsString],
    wait: Option<std::time::Duration>,
) -> Result<Exit, Failure> {
    // Orphaned descendants (a daemon that forks into the background) become
    // our children instead of init's, so we can tell who holds the lock.
    become_subreaper();
    let gated = Gated::spawn(command, Launch::default())?;
    let child = gated.pid;
    pf.pid(child);
    let mut guard = match acquire(&pf, wait) {
        Ok(g) => g,
        Err(f) => {
            gated.abandon();
            return Err(f);
        }
    };
    // From here on the supervisor outlives signals and passes them on:
    // the handlers are in place before the command can run (or exit).
    let mut signals = match Signals::install() {
        Ok(s) => s,
        Err(f) => {
            gated.abandon();
            return Err(f);
        }
    };
    // A pidfd if one can be had; at a low descriptor limit (or without
    // pidfd support) signals go by PID instead, which is as safe here: the
    // child is ours and is sent nothing once reaped (see `Target`).
    let mut target = Target {
        pid: child,
        pinned: Process::open(child).ok(),
        reaped: false,
    };
    // Signals that come while the command execs wait in the self-pipe (or
    // their flags) until `follow`. If the exec fails, the child is reaped
    // here, and nothing is sent to its PID after that.
    if let Err(f) = gated.open(guard.as_fd()) {
        // The command never ran: nobody else holds the lock.
        let _ = guard.release();
        return Err(f);
    }
    let (status, next) = match follow(&mut target, &mut signals, &mut guard) {
        Ok(done) => done,
        // Supervision failed while the command (or the daemon it forked
        // into) may run and hold the lock: the file stays theirs.
        Err(f) => {
            drop(guard.into_fd());
            return Err(f);
        }
    };
    // The file is dealt with before the handlers go: a TERM that comes
    // meanwhile is not lost on the way out.
    let result = finish(guard, status, next);
    drop(signals);
    result
}

/// After the command (and any daemon it forked into) exited: remove the
/// file, unless a descendant may still hold the lock.
fn finish(guard: Guard, status: ExitStatus, next: tree::Next) -> Result<Exit, Failure> {
    match next {
        tree::Next::Undecidable(why) => {
            // Someone below us may hold the lock: the file stays theirs.
            drop(guard.into_fd());
            return Err(Failure::new(Exit::Unavailable, why));
        }
        tree::Next::Done { left } if !left.is_empty() => eprintln!(
            "pidguard: warning: the command exited and left PID {} running, without the lock",
            left.iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        _ => {}
    }
    // The command's status is the result; a file that cannot be removed is
    // worth a warning, not a different status.
    if let Err(e) = guard.release() {
        eprintln!("pidguard: warning: the command exited ({status}), but {e}");
    }
    Ok(Exit::Child(exit_code(status)))
}

/// Waits for the target, reaping every child of ours that exits (orphans
/// reparented to us included) and passing signals on between reaps; when
/// the target exits, follows the descendant left holding the lock, if any.
/// Returns the last target's status and why supervision ended.
fn follow(
    target: &mut Target,
    signals: &mut Signals,
    guard: &mut Guard,
) -> Result<(ExitStatus, tree::Next), Failure> {
    use crate::sys::{reap_any, Errno};
    let (dev, ino) = daemon::inode_of(guard)?;
    loop {
        // Reap what has exited (a SIGCHLD that came before the handlers,
        // or while we passed a signal on, is not needed: every pass looks).
        let mut status = None;
        let mut has_children = true;
        loop {
            match reap_any() {
                Ok(Some((pid, st))) => {
                    if pid == target.pid.get() {
                        target.reaped = true;
                        status = Some(st);
                    }
                }
                Ok(None) => break,
                Err(Errno::INTR) => {}
                Err(_) => {
                    has_children = false;
                    break;
                }
            }
        }
        let Some(status) = status else {
            if !has_children && !target.reaped {
                return Err(Failure::new(
                    Exit::Software,
                    format!("PID {} was reaped by someone else", target.pid),
                ));
            }
            signals.wait(target);
            continue;
        };
        match tree::successor(has_children, dev, ino) {
            tree::Next::Follow(pid) => {
                let old = target.pid;
                // Pinned before the file names it (it is our child and
                // unreaped: the PID cannot be reused meanwhile).
                target.pinned = Process::open(pid).ok();
                target.pid = pid;
                target.reaped = false;
                guard.set_pid(pid)?;
                eprintln!(
                    "pidguard: PID {old} exited ({status}) and left PID {pid} holding the lock \
                     (a daemon that forked itself): following it; the PID file names it now"
                );
            }
            next => return Ok((status, next)),
        }
    }
}
