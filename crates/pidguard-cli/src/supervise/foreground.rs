//! `run`'s default mode: stay as the command's parent, pass signals on,
//! follow a command that forks itself into the background, remove the file
//! when it is done. The signal forwarding (the thread that passes the
//! signals a supervisor receives on to its command, never to a PID that may
//! have been reused) is here too; the etcd supervisor shares [`FORWARDED`]
//! and [`reached_the_child_too`].

use std::os::fd::AsFd;
use std::process::ExitStatus;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use pidguard::{Guard, Pidfile, Process, Signal};
use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2};
use signal_hook::iterator::exfiltrator::WithOrigin;
use signal_hook::iterator::SignalsInfo;
use signal_hook::low_level::siginfo::{Cause, Origin};

use crate::exit::{Exit, Failure};
use crate::supervise::gate::Gated;
use crate::supervise::{acquire, become_subreaper, daemon, exit_code, tree};

/// The signals a supervisor passes on to its command.
pub(crate) const FORWARDED: [i32; 6] = [SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2];

/// The process signals are forwarded to: the command, or the daemon it
/// forked into. `reaped` is set, under the mutex, in the same critical
/// section that reaps it: while it is false the PID cannot have been
/// reused, so sending by PID (no pidfd) is safe.
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

pub(crate) fn lock(t: &Mutex<Target>) -> std::sync::MutexGuard<'_, Target> {
    t.lock().unwrap_or_else(|e| e.into_inner())
}

/// The thread passing FORWARDED signals on to the target.
pub(crate) struct Forwarder {
    stop: Stop,
    thread: std::thread::JoinHandle<()>,
}

/// How the forwarding thread is told to finish.
enum Stop {
    /// The signal iterator's handle (its self-pipe wakes the thread).
    Handle(signal_hook::iterator::Handle),
    /// Without descriptors for a self-pipe (a low descriptor limit): the
    /// handlers only set flags, the thread polls them.
    Flag(Arc<AtomicBool>, Vec<signal_hook::SigId>),
}

impl Forwarder {
    pub fn start(target: Arc<Mutex<Target>>) -> Result<Forwarder, Failure> {
        let mut signals = match SignalsInfo::<WithOrigin>::new(FORWARDED) {
            Ok(s) => s,
            Err(e) if e.raw_os_error() == Some(crate::sys::Errno::MFILE.raw_os_error()) => {
                return Forwarder::polling(target)
            }
            Err(e) => {
                return Err(Failure::new(
                    Exit::Software,
                    format!("cannot install signal handlers: {e}; the command was not started"),
                ))
            }
        };
        let handle = signals.handle();
        let thread = std::thread::spawn(move || {
            for origin in signals.forever() {
                let t = lock(&target);
                if reached_the_child_too(&origin, t.pid) {
                    continue;
                }
                forward(&t, origin.signal);
            }
        });
        Ok(Forwarder {
            stop: Stop::Handle(handle),
            thread,
        })
    }

    /// The fallback needing no descriptor: each handler sets a flag (all
    /// it does, async-signal-safe), a thread forwards the flagged signals
    /// every 10 ms. The sender is not known here, so a signal the terminal
    /// sent to the whole process group (the command got its own) is
    /// forwarded too.
    fn polling(target: Arc<Mutex<Target>>) -> Result<Forwarder, Failure> {
        let mut flags = Vec::new();
        let mut ids = Vec::new();
        for sig in FORWARDED {
            let flag = Arc::new(AtomicBool::new(false));
            let id = signal_hook::flag::register(sig, Arc::clone(&flag)).map_err(|e| {
                Failure::new(
                    Exit::Software,
                    format!("cannot install signal handlers: {e}; the command was not started"),
                )
            })?;
            ids.push(id);
            flags.push((sig, flag));
        }
        let done = Arc::new(AtomicBool::new(false));
        let thread = {
            let done = Arc::clone(&done);
            std::thread::spawn(move || loop {
                let last = done.load(Ordering::SeqCst);
                for (sig, flag) in &flags {
                    if flag.swap(false, Ordering::SeqCst) {
                        forward(&lock(&target), *sig);
                    }
                }
                if last {
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            })
        };
        Ok(Forwarder {
            stop: Stop::Flag(done, ids),
            thread,
        })
    }

    pub fn stop(self) {
        match self.stop {
            Stop::Handle(handle) => {
                handle.close();
                let _ = self.thread.join();
            }
            Stop::Flag(done, ids) => {
                done.store(true, Ordering::SeqCst);
                let _ = self.thread.join();
                for id in ids {
                    signal_hook::low_level::unregister(id);
                }
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
    let gated = Gated::spawn(command, |_| {})?;
    let child = gated.pid;
    pf.pid(child);
    let mut guard = match acquire(&pf, wait) {
        Ok(g) => g,
        Err(f) => {
            gated.abandon();
            return Err(f);
        }
    };
    // The target is pinned (below) once the forwarder exists; until the
    // command runs, nothing is sent (the mutex is held across the exec).
    let target = Arc::new(Mutex::new(Target {
        pid: child,
        pinned: None,
        reaped: false,
    }));
    // From here on the supervisor outlives signals and passes them on.
    let forwarder = match Forwarder::start(Arc::clone(&target)) {
        Ok(f) => f,
        Err(f) => {
            gated.abandon();
            return Err(f);
        }
    };
    // A pidfd if one can be had; at a low descriptor limit (or without
    // pidfd support) signals go by PID instead, which is as safe here: the
    // child is ours and is sent nothing once reaped (see `Target`).
    lock(&target).pinned = Process::open(child).ok();
    // The forwarder waits while the command execs: if exec fails, the
    // child is reaped by the spawning thread, and nothing may be sent to
    // its PID after that.
    let started = {
        let mut t = lock(&target);
        let started = gated.open(guard.as_fd());
        t.reaped = started.is_err();
        started
    };
    let outcome = match started {
        Ok(_child) => Ok(follow(&target, &mut guard)),
        Err(f) => Err(f),
    };
    let (status, next) = match outcome {
        Ok(Ok(done)) => done,
        // The command never ran: nobody else holds the lock.
        Err(f) => {
            let _ = guard.release();
            forwarder.stop();
            return Err(f);
        }
        // Supervision failed while the command (or the daemon it forked
        // into) may run and hold the lock: the file stays theirs.
        Ok(Err(f)) => {
            drop(guard.into_fd());
            forwarder.stop();
            return Err(f);
        }
    };
    // The file is dealt with before the signal thread is stopped: whoever
    // waits for it to go (`stop`) need not wait for that thread.
    let result = finish(guard, status, next);
    forwarder.stop();
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
/// reparented to us included); when the target exits, follows the
/// descendant left holding the lock, if any. Returns the last target's
/// status and why supervision ended.
fn follow(target: &Mutex<Target>, guard: &mut Guard) -> Result<(ExitStatus, tree::Next), Failure> {
    use crate::sys::{reap_any, wait_any_exited, Errno};
    let (dev, ino) = daemon::inode_of(guard)?;
    loop {
        // Block until some child is a zombie, without reaping it: the
        // reaping happens below, under the target's mutex.
        match wait_any_exited() {
            Ok(_) | Err(Errno::CHILD) => {}
            Err(Errno::INTR) => continue,
            Err(e) => {
                return Err(Failure::new(
                    Exit::Software,
                    format!("cannot wait for the command: {e}"),
                ))
            }
        }
        let mut t = lock(target);
        let mut status = None;
        let mut has_children = true;
        loop {
            match reap_any() {
                Ok(Some((pid, st))) => {
                    if pid == t.pid.get() {
                        t.reaped = true;
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
            if !has_children && !t.reaped {
                return Err(Failure::new(
                    Exit::Software,
                    format!("PID {} was reaped by someone else", t.pid),
                ));
            }
            continue;
        };
        match tree::successor(has_children, dev, ino) {
            tree::Next::Follow(pid) => {
                let old = t.pid;
                // Pinned before the file names it (it is our child and
                // unreaped: the PID cannot be reused meanwhile).
                t.pinned = Process::open(pid).ok();
                t.pid = pid;
                t.reaped = false;
                drop(t);
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
