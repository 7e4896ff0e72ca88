//! Stopping, signalling and waiting for a PID file's owner, safely, with
//! the one schedule runner ([`run_schedule`]) that the etcd backend and
//! the CLI also use.
//!
//! Every operation reads the file, pins the process it names (a pidfd on
//! Linux), classifies it (see [`identity`](crate::read::identity)) with the
//! process pinned, and signals only a verified or consistent owner:
//!
//! * an unproved verdict (a fact could not be read) or a lock held by a
//!   process that cannot be identified from here is an error
//!   ([`ErrorKind::Unproved`]): nothing is signalled, the file is kept;
//! * a live process proved not to be the owner (a filter does not match,
//!   timing evidence, a thread's TID…) is left alone and its file kept
//!   ([`Outcome::Mismatched`]);
//! * a file is removed only when its owner is proved gone (the PID is dead
//!   and nobody holds the lock).
//!
//! A file with more than one hard link is refused for every caller, and
//! no filter lifts that. When running as root, the file must also pass the
//! trust checks (see `trust_problem`: someone else could have written it),
//! unless the process is pinned by a matching `exe`, `user` or `name`
//! filter (as start-stop-daemon's `--exec`/`--user`/`--name`). [`wait`]
//! sends nothing and never refuses for trust.

use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::error::{Error, ErrorKind, Result};
use crate::read::identity::{trust_problem, Filters, Identity};
use crate::pid::Pid;
use crate::fs::MID_WRITE_BACKOFF_US;
use crate::lock::{remove_unlocked, Removal};
use crate::read::process::{Liveness, Process};
use crate::signal::{Schedule, Signal, Step};
use crate::read::status::{inspect, Status};
use crate::sys;

/// What happened, in a [`Report`].
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// There is no PID file: nothing to do.
    NotRunning,
    /// The file is locked but names no PID yet: nothing to signal.
    Starting,
    /// The file was stale: its process is gone (the PID is dead). Nothing
    /// was signalled; [`stop`] removes it.
    Stale,
    /// The file names a live process proved not to be its owner: a filter
    /// does not match, it started after the file was written or the file
    /// predates the boot (a clock step can cause these), it is a thread's
    /// TID, PID 1, in another PID namespace… Nothing was signalled and the
    /// file was kept.
    /// [`Report::identity`] says why.
    Mismatched,
    /// The process exited.
    Stopped,
    /// The schedule ended (or the wait timed out) with the process, or
    /// another holder of the file's lock, still running.
    StillRunning,
    /// The signal was sent.
    Signalled,
}

/// What [`stop`], [`send_signal`] and [`wait`] found and did.
#[derive(Clone, Debug)]
pub struct Report {
    /// What happened.
    pub outcome: Outcome,
    /// The PID of the owner acted on (the lock's holder as this namespace
    /// numbers it), or else the PID named in the file, if one was read.
    pub pid: Option<Pid>,
    /// The verdict on that PID, when it named a live process.
    pub identity: Option<Identity>,
    /// Whether the PID file is gone at the end (removed by pidguard as
    /// stale, or by its holder).
    pub file_gone: bool,
    /// The signals sent, in order ([`stop`]: each step's, with the `CONT`
    /// after a `TERM`; [`send_signal`]: the one). Empty when nothing was
    /// sent.
    pub sent: Vec<Signal>,
    /// The schedule's signals that cannot be delivered on this platform and
    /// were therefore not sent: their step was a wait for the next wait
    /// step's grace, then the next step (`KILL`). On Windows `TERM` (there
    /// is no SIGTERM: docs/WINDOWS.md, decision 10); always empty on Unix.
    /// [`Report::note`] says it in words.
    pub undelivered: Vec<Signal>,
}

impl Report {
    /// A sentence about the signals, when one is due: a schedule's signal
    /// that could not be delivered (see [`Report::undelivered`]), and
    /// whether the process then exited within the grace or was ended by the
    /// next signal.
    pub fn note(&self) -> Option<String> {
        let first = self.undelivered.first()?;
        let names: Vec<String> = self.undelivered.iter().map(|s| s.name()).collect();
        let then = match (self.outcome, self.sent.last()) {
            (Outcome::Stopped, Some(last)) => format!(
                "the process did not exit within the grace and was ended by {}{}",
                last.name(),
                if cfg!(windows) && *last == Signal::KILL {
                    " (TerminateProcess)"
                } else {
                    ""
                }
            ),
            (Outcome::Stopped, None) => "the process exited by itself within the grace".into(),
            _ => "the process did not exit within the grace".into(),
        };
        Some(format!(
            "{} cannot be delivered on this platform{}: its step waited the grace \
             instead; {then}",
            names.join(", "),
            if cfg!(windows) && *first == Signal::TERM {
                " (Windows has no SIGTERM)"
            } else {
                ""
            }
        ))
    }
}

impl Report {
    fn new(
        outcome: Outcome,
        pid: Option<Pid>,
        identity: Option<Identity>,
        file_gone: bool,
    ) -> Self {
        Report {
            outcome,
            pid,
            identity,
            file_gone,
            sent: Vec::new(),
            undelivered: Vec::new(),
        }
    }
}

/// What the operation is for: what it may do with what it finds.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Purpose {
    /// `stop`: signals, and removes a file whose owner is proved gone.
    Stop,
    /// `signal`: signals; removes nothing.
    Signal,
    /// `wait`: sends nothing, removes nothing, never refuses for trust.
    Wait,
}

enum Pinned {
    Done(Report),
    /// The owner, pinned, its verdict, and the PID the file names.
    Live(Process, Identity, Option<Pid>),
    /// (`wait` only) The lock is held by a process that cannot be
    /// identified (or whose ownership is unproved): wait for the lock.
    LockOnly(Option<Pid>, Option<Identity>),
}

/// Finds the file's owner and pins it, or says why there is none.
fn pin(path: &Path, filters: &Filters, purpose: Purpose) -> Result<Pinned> {
    for _ in 0..3 {
        let first = inspect(path, filters);
        let pid = match first.status {
            Status::NotRunning => {
                return Ok(Pinned::Done(Report::new(
                    Outcome::NotRunning,
                    None,
                    None,
                    true,
                )))
            }
            // Locked, no PID yet (or never: flock(1) writes nothing): wait
            // waits for the lock.
            Status::Starting if purpose == Purpose::Wait => {
                return Ok(Pinned::LockOnly(None, None));
            }
            Status::Starting => {
                return Ok(Pinned::Done(Report::new(
                    Outcome::Starting,
                    None,
                    None,
                    false,
                )))
            }
            Status::Unknown(e) => return Err(e),
            Status::Held(file_pid) => {
                if purpose == Purpose::Wait {
                    return Ok(Pinned::LockOnly(Some(file_pid), first.identity));
                }
                return Err(Error::holder_unreachable(path, file_pid));
            }
            Status::Stale(pid) if first.owner_gone() => {
                let gone = purpose == Purpose::Stop && cleanup(path, pid);
                return Ok(Pinned::Done(Report::new(
                    Outcome::Stale,
                    Some(pid),
                    first.identity,
                    gone,
                )));
            }
            // Alive, proved not the owner: left alone, the file kept.
            Status::Stale(pid) => {
                return Ok(Pinned::Done(Report::new(
                    Outcome::Mismatched,
                    Some(pid),
                    first.identity,
                    false,
                )))
            }
            Status::Running { pid, .. } => match &first.identity {
                Some(Identity::Mismatched(_)) => {
                    return Ok(Pinned::Done(Report::new(
                        Outcome::Mismatched,
                        Some(pid),
                        first.identity,
                        false,
                    )))
                }
                // (Only a locked file names a running PID that is unproved:
                // the lock says an instance runs.)
                Some(Identity::Unproved(u)) => {
                    if purpose == Purpose::Wait {
                        return Ok(Pinned::LockOnly(Some(pid), first.identity));
                    }
                    return Err(Error::unproved(path, pid, u));
                }
                _ => pid,
            },
        };
        let process = match Process::open(pid) {
            Ok(p) => p,
            // Gone, or a thread's TID (pidfd_open refuses those): look again.
            Err(e)
                if e.kind() == io::ErrorKind::NotFound
                    || e.kind() == io::ErrorKind::InvalidInput =>
            {
                continue
            }
            Err(e) => return Err(Error::with_io(ErrorKind::Io, path, e)),
        };
        // Classify again with the process pinned: if it is still alive
        // afterwards, /proc described this very process.
        let second = inspect(path, filters);
        match (&second.status, second.identity) {
            (Status::Running { pid: p, .. }, Some(identity))
                if *p == pid && identity.may_signal() =>
            {
                if process.has_exited() {
                    continue;
                }
                if purpose != Purpose::Wait {
                    let st = second.file.as_ref().expect("a running file was opened");
                    let verified = identity == Identity::Verified;
                    if let Some(distrust) = trust_problem(path, st, verified) {
                        // As start-stop-daemon: a process pinned by a
                        // matching --exe/--user/--comm may be signalled
                        // through a file others could have written (never
                        // through one with several names).
                        if !distrust.pin_lifts {
                            return Err(Error::untrusted(path, distrust.why));
                        }
                        if !filters.pins_process() {
                            return Err(Error::untrusted(
                                path,
                                format!(
                                    "{}; pin the process with a matching filter \
                                     (pidguard --exe PATH, --user USER or --comm NAME) to \
                                     signal it anyway",
                                    distrust.why
                                ),
                            ));
                        }
                    }
                    let me = Pid::current();
                    let parent = sys::parent_pid();
                    if pid == me || Some(pid) == parent {
                        return Err(Error::untrusted(
                            path,
                            format!("PID {pid} is pidguard itself or its parent"),
                        ));
                    }
                }
                return Ok(Pinned::Live(process, identity, second.file_pid));
            }
            _ => continue,
        }
    }
    Err(Error::with_io(
        ErrorKind::Io,
        path,
        io::Error::other("the file kept changing while it was being read"),
    ))
}

/// Removes the file once its process is gone, giving a holder (a
/// supervisor) a few milliseconds to remove it first. `true` when the file
/// is gone.
fn cleanup(path: &Path, pid: Pid) -> bool {
    let mut pauses = MID_WRITE_BACKOFF_US.iter();
    loop {
        match remove_unlocked(path, Some(pid)) {
            Ok(Removal::Removed | Removal::Missing) => return true,
            Ok(Removal::Locked) => match pauses.next() {
                Some(us) => std::thread::sleep(Duration::from_micros(*us)),
                None => return false,
            },
            Ok(Removal::Changed) | Err(_) => return sys::lstat(path).is_err(),
        }
    }
}

/// Waits until nobody holds the file's lock (or the file is gone), up to
/// `deadline` (forever with `None`). `true` when the lock was free.
fn wait_unlocked(path: &Path, deadline: Option<Instant>) -> bool {
    let mut pause = Duration::from_millis(1);
    loop {
        let free = match sys::open_existing(path, false) {
            Ok(fd) => !sys::is_locked(&fd).unwrap_or(true),
            Err(e) => e.kind() == io::ErrorKind::NotFound,
        };
        if free {
            return true;
        }
        let now = Instant::now();
        let mut sleep = pause;
        if let Some(d) = deadline {
            if now >= d {
                return false;
            }
            sleep = sleep.min(d - now);
        }
        std::thread::sleep(sleep);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// Whether the file is still locked although the process that was its
/// owner has exited: a process that inherited the lock holds it. Gives
/// a supervisor that is releasing it a moment.
fn still_held(path: &Path) -> bool {
    !wait_unlocked(path, Some(Instant::now() + Duration::from_millis(200)))
}

fn signal_error(path: &Path, pid: Pid, e: io::Error) -> Error {
    if e.kind() == io::ErrorKind::PermissionDenied {
        let owner = sys::proc::uid(pid)
            .map(|u| format!("UID {u}"))
            .unwrap_or_else(|| "another user".into());
        Error::signal_denied(path, pid, owner, e)
    } else {
        Error::with_io(ErrorKind::Io, path, e)
    }
}

/// What a [`Schedule`] is followed on by [`run_schedule`]: one process
/// ([`stop`] follows it on a PID file's owner), a process group, a whole
/// job of processes.
pub trait ScheduleTarget {
    /// What sending a signal can fail with.
    type Error;

    /// Sends `signal` to the target.
    fn signal(&mut self, signal: Signal) -> std::result::Result<(), Self::Error>;

    /// Waits up to `timeout` for the target to be gone; `true` once it is
    /// (with a zero timeout: whether it is gone now).
    fn wait_gone(&mut self, timeout: Duration) -> bool;

    /// Asked before every step, and every [`ScheduleTarget::poll_every`]
    /// of a wait: `true` gives up the schedule at once
    /// ([`ScheduleEnd::Interrupted`]). By default, never.
    fn interrupted(&mut self) -> bool {
        false
    }

    /// How often a wait step asks [`ScheduleTarget::interrupted`]. `None`
    /// (the default): each wait step is waited whole.
    fn poll_every(&self) -> Option<Duration> {
        None
    }

    /// Whether `signal` can be delivered to the target at all. A signal
    /// step whose signal cannot (`TERM` to a process on Windows, which has
    /// no SIGTERM) is not sent and is not an error: [`run_schedule`] tells
    /// [`ScheduleTarget::undeliverable`] and goes on, so that the next wait
    /// step is a grace for the target to exit by itself, and the step after
    /// it (`KILL`) follows. By default every signal can.
    fn can_deliver(&mut self, signal: Signal) -> bool {
        let _ = signal;
        true
    }

    /// Told of each signal step skipped because [`ScheduleTarget::can_deliver`]
    /// said no. By default, nothing is done.
    fn undeliverable(&mut self, signal: Signal) {
        let _ = signal;
    }
}

/// How [`run_schedule`] ended.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScheduleEnd {
    /// The target is gone.
    Exited,
    /// The schedule ran out with the target still there.
    Running,
    /// [`ScheduleTarget::interrupted`] asked to stop following it.
    Interrupted,
}

/// Follows `schedule` on `target`: sends each signal (a `SIGCONT` after
/// every `SIGTERM`, so that a stopped process can act on it), waits each
/// wait step until the target is gone, and repeats from `forever` if the
/// schedule says so. The one schedule loop: [`stop`] runs it on a PID
/// file's owner, `pidguard run --backend etcd://…` on the command's job.
/// The first signal that fails ends it with that error. A signal the
/// target says it cannot be sent ([`ScheduleTarget::can_deliver`]: `TERM`
/// on Windows) is skipped and reported to
/// [`ScheduleTarget::undeliverable`]: its step becomes "wait the next wait
/// step's grace, then the next step".
pub fn run_schedule<T: ScheduleTarget + ?Sized>(
    schedule: &Schedule,
    target: &mut T,
) -> std::result::Result<ScheduleEnd, T::Error> {
    let steps = schedule.steps();
    let mut i = 0;
    loop {
        if i == steps.len() {
            match schedule.repeat_from() {
                Some(r) => i = r,
                None if target.wait_gone(Duration::ZERO) => return Ok(ScheduleEnd::Exited),
                None => return Ok(ScheduleEnd::Running),
            }
        }
        if target.interrupted() {
            return Ok(ScheduleEnd::Interrupted);
        }
        match steps[i] {
            Step::Signal(sig) if !target.can_deliver(sig) => target.undeliverable(sig),
            Step::Signal(sig) => {
                target.signal(sig)?;
                if sig == Signal::TERM && target.can_deliver(Signal::CONT) {
                    target.signal(Signal::CONT)?;
                }
            }
            Step::Wait(d) => {
                let Some(poll) = target.poll_every() else {
                    if target.wait_gone(d) {
                        return Ok(ScheduleEnd::Exited);
                    }
                    i += 1;
                    continue;
                };
                let end = Instant::now().checked_add(d);
                loop {
                    let left = end.map_or(Duration::MAX, |e| {
                        e.saturating_duration_since(Instant::now())
                    });
                    if target.wait_gone(left.min(poll)) {
                        return Ok(ScheduleEnd::Exited);
                    }
                    if left <= poll {
                        break;
                    }
                    if target.interrupted() {
                        return Ok(ScheduleEnd::Interrupted);
                    }
                }
            }
        }
        i += 1;
    }
}

/// A PID file's pinned owner, as [`stop`] follows its schedule on it.
struct Owner<'a> {
    process: &'a Process,
    path: &'a Path,
    /// What was sent, and what could not be ([`Report::sent`],
    /// [`Report::undelivered`]).
    sent: Vec<Signal>,
    undelivered: Vec<Signal>,
}

impl ScheduleTarget for Owner<'_> {
    type Error = Error;

    fn signal(&mut self, signal: Signal) -> Result<()> {
        let pid = self.process.pid();
        self.process
            .signal(signal)
            .map_err(|e| signal_error(self.path, pid, e))?;
        self.sent.push(signal);
        Ok(())
    }

    fn wait_gone(&mut self, timeout: Duration) -> bool {
        self.process.wait_timeout(timeout)
    }

    fn can_deliver(&mut self, signal: Signal) -> bool {
        can_deliver(signal)
    }

    fn undeliverable(&mut self, signal: Signal) {
        self.undelivered.push(signal);
    }
}

/// Whether a schedule's `signal` can be delivered to a process: every
/// signal on Unix; on Windows what the seam can send
/// (`sys::schedule_deliverable`: `KILL`, not `TERM`; docs/WINDOWS.md,
/// decision 10).
#[cfg(unix)]
fn can_deliver(_signal: Signal) -> bool {
    true
}

#[cfg(windows)]
fn can_deliver(signal: Signal) -> bool {
    sys::schedule_deliverable(signal)
}

/// Stops the owner of the PID file at `path` following `schedule`, and
/// removes the file once it is gone (unless its holder does).
///
/// After `SIGTERM` a `SIGCONT` follows, so a stopped process can act on it.
/// On Windows, which has no SIGTERM, a `TERM` step is not sent: it is
/// listed in [`Report::undelivered`] and the schedule's next wait is a
/// grace for the process to exit by itself, after which `KILL`
/// (`TerminateProcess` through the handle pinned for the identity checks)
/// follows; [`Report::sent`] says whether it was sent, and
/// [`Report::note`] says both in words. Returns [`Outcome::Stopped`], [`Outcome::NotRunning`],
/// [`Outcome::Stale`] (the stale file is removed, nothing is signalled), or
/// [`Outcome::StillRunning`] when the schedule ends first (the file is
/// kept). Errors: [`ErrorKind::PermissionDenied`] (`EPERM`),
/// [`ErrorKind::Untrusted`], [`ErrorKind::InvalidContents`], …
pub fn stop(path: impl AsRef<Path>, schedule: &Schedule, filters: &Filters) -> Result<Report> {
    let path = path.as_ref();
    let (process, identity, file_pid) = match pin(path, filters, Purpose::Stop)? {
        Pinned::Done(r) => return Ok(r),
        Pinned::Live(p, i, f) => (p, i, f),
        Pinned::LockOnly(..) => unreachable!("only wait waits for the lock alone"),
    };
    let pid = process.pid();
    let mut owner = Owner {
        process: &process,
        path,
        sent: Vec::new(),
        undelivered: Vec::new(),
    };
    let end = run_schedule(schedule, &mut owner)?;
    let Owner {
        sent, undelivered, ..
    } = owner;
    let with_signals = |mut r: Report| {
        r.sent = sent;
        r.undelivered = undelivered;
        Ok(r)
    };
    if end != ScheduleEnd::Exited {
        return with_signals(Report::new(
            Outcome::StillRunning,
            Some(pid),
            Some(identity),
            false,
        ));
    }
    // The file is removed only when the process it names is gone: the one
    // just stopped, or, where that was a holder of the lock other than the
    // file's PID (an heir), a file's PID that is dead too.
    let names_a_live_other = file_pid
        .is_some_and(|f| f != pid && crate::read::process::liveness(f) != Liveness::Dead);
    let gone = !names_a_live_other && cleanup(path, file_pid.unwrap_or(pid));
    // The owner exited, but a process that inherited the lock still holds
    // it: an instance still runs.
    if !gone && still_held(path) {
        return with_signals(Report::new(
            Outcome::StillRunning,
            Some(pid),
            Some(identity),
            false,
        ));
    }
    with_signals(Report::new(
        Outcome::Stopped,
        Some(pid),
        Some(identity),
        gone || sys::lstat(path).is_err(),
    ))
}

/// Sends one signal to the owner of the PID file at `path`, with the same
/// checks as [`stop`]. A stale file is reported ([`Outcome::Stale`]) and
/// left in place; nothing is signalled.
pub fn send_signal(path: impl AsRef<Path>, signal: Signal, filters: &Filters) -> Result<Report> {
    let path = path.as_ref();
    match pin(path, filters, Purpose::Signal)? {
        Pinned::Done(r) => Ok(r),
        Pinned::Live(process, identity, _) => {
            let pid = process.pid();
            process
                .signal(signal)
                .map_err(|e| signal_error(path, pid, e))?;
            let mut report = Report::new(Outcome::Signalled, Some(pid), Some(identity), false);
            report.sent.push(signal);
            Ok(report)
        }
        Pinned::LockOnly(..) => unreachable!("only wait waits for the lock alone"),
    }
}

/// Waits for the owner of the PID file at `path` to exit, up to `timeout`
/// (forever with `None`), and for the file's lock to be free: a lock held
/// by a process that cannot be identified (another PID namespace, an
/// inheritor) is waited for too. Nothing is signalled or removed, and
/// nothing is refused for trust reasons.
pub fn wait(
    path: impl AsRef<Path>,
    timeout: Option<Duration>,
    filters: &Filters,
) -> Result<Report> {
    let path = path.as_ref();
    let deadline = timeout.map(|t| Instant::now() + t);
    let (pid, identity, exited) = match pin(path, filters, Purpose::Wait)? {
        Pinned::Done(r) => return Ok(r),
        Pinned::LockOnly(pid, identity) => (pid, identity, wait_unlocked(path, deadline)),
        Pinned::Live(process, identity, _) => {
            let exited = match deadline {
                Some(d) => process.wait_timeout(d.saturating_duration_since(Instant::now())),
                None => loop {
                    if process.wait_timeout(Duration::from_secs(3600)) {
                        break true;
                    }
                },
            };
            // Its exit ends the wait only once nobody holds the lock.
            // (A supervisor releasing it is given a moment past the deadline.)
            let lock_deadline =
                deadline.map(|d| d.max(Instant::now() + Duration::from_millis(200)));
            let free = exited && wait_unlocked(path, lock_deadline);
            (Some(process.pid()), Some(identity), free)
        }
    };
    let outcome = if exited {
        Outcome::Stopped
    } else {
        Outcome::StillRunning
    };
    Ok(Report::new(
        outcome,
        pid,
        identity,
        sys::lstat(path).is_err(),
    ))
}

/// Whether the owner of the PID file at `path` could be signalled, with the
/// same checks as [`send_signal`], sending nothing (signal 0: `kill(pid,
/// 0)`): [`Outcome::Signalled`] when it could, the same outcomes as
/// [`send_signal`] otherwise, and [`ErrorKind::PermissionDenied`] when the
/// kernel would refuse a signal.
pub fn probe_signal(path: impl AsRef<Path>, filters: &Filters) -> Result<Report> {
    let path = path.as_ref();
    match pin(path, filters, Purpose::Signal)? {
        Pinned::Done(r) => Ok(r),
        Pinned::Live(process, identity, _) => {
            let pid = process.pid();
            match sys::probe(pid) {
                Ok(()) | Err(sys::Errno::SRCH) => {}
                Err(e) => return Err(signal_error(path, pid, e.into())),
            }
            Ok(Report::new(
                Outcome::Signalled,
                Some(pid),
                Some(identity),
                false,
            ))
        }
        Pinned::LockOnly(..) => unreachable!("only wait waits for the lock alone"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records what the schedule does; gone after `gone_after` waits.
    #[derive(Default)]
    struct Fake {
        sent: Vec<Signal>,
        waits: Vec<Duration>,
        gone_after: Option<usize>,
        interrupt_after: Option<usize>,
        asked: usize,
        poll: Option<Duration>,
        /// Signals that cannot be delivered, and those skipped.
        cannot: Vec<Signal>,
        skipped: Vec<Signal>,
    }

    impl ScheduleTarget for Fake {
        type Error = Signal;

        fn signal(&mut self, signal: Signal) -> std::result::Result<(), Signal> {
            if signal == Signal::HUP {
                return Err(signal);
            }
            self.sent.push(signal);
            Ok(())
        }

        fn wait_gone(&mut self, timeout: Duration) -> bool {
            self.waits.push(timeout);
            self.gone_after.is_some_and(|n| self.waits.len() > n)
        }

        fn interrupted(&mut self) -> bool {
            self.asked += 1;
            self.interrupt_after.is_some_and(|n| self.asked > n)
        }

        fn poll_every(&self) -> Option<Duration> {
            self.poll
        }

        fn can_deliver(&mut self, signal: Signal) -> bool {
            !self.cannot.contains(&signal)
        }

        fn undeliverable(&mut self, signal: Signal) {
            self.skipped.push(signal);
        }
    }

    fn schedule(s: &str) -> Schedule {
        s.parse().unwrap()
    }

    #[test]
    fn the_schedule_runs_to_its_end_with_cont_after_term() {
        let mut t = Fake::default();
        let end = run_schedule(&schedule("TERM/2/KILL/1"), &mut t);
        assert_eq!(end, Ok(ScheduleEnd::Running));
        assert_eq!(t.sent, [Signal::TERM, Signal::CONT, Signal::KILL]);
        let s = Duration::from_secs;
        // Each wait whole, then whether it is gone now.
        assert_eq!(t.waits, [s(2), s(1), Duration::ZERO]);
    }

    #[test]
    fn the_schedule_ends_when_the_target_is_gone_and_repeats_forever() {
        let mut t = Fake {
            gone_after: Some(1),
            ..Fake::default()
        };
        assert_eq!(
            run_schedule(&schedule("TERM/1/KILL/1"), &mut t),
            Ok(ScheduleEnd::Exited)
        );
        assert_eq!(t.sent, [Signal::TERM, Signal::CONT, Signal::KILL]);
        let mut t = Fake {
            gone_after: Some(4),
            ..Fake::default()
        };
        let end = run_schedule(&schedule("TERM/1/forever/KILL/1"), &mut t);
        assert_eq!(end, Ok(ScheduleEnd::Exited));
        assert_eq!(t.sent.iter().filter(|s| **s == Signal::KILL).count(), 4);
    }

    #[test]
    fn a_failed_signal_or_an_interrupt_ends_the_schedule() {
        let mut t = Fake::default();
        assert_eq!(
            run_schedule(&schedule("TERM/1/HUP/1/KILL"), &mut t),
            Err(Signal::HUP)
        );
        assert_eq!(t.sent, [Signal::TERM, Signal::CONT]);
        // Polled waits: asked before each step and after each poll.
        let mut t = Fake {
            poll: Some(Duration::from_millis(100)),
            interrupt_after: Some(3),
            ..Fake::default()
        };
        let end = run_schedule(&schedule("TERM/1/KILL/1"), &mut t);
        assert_eq!(end, Ok(ScheduleEnd::Interrupted));
        assert_eq!(t.sent, [Signal::TERM, Signal::CONT]);
        // (Asked before TERM, before the wait, after each of two polls.)
        assert_eq!(t.waits, [Duration::from_millis(100); 2]);
    }

    #[test]
    fn an_undeliverable_term_is_skipped_its_grace_waited_then_kill_sent() {
        // As on Windows: TERM (and CONT) cannot be sent.
        let cannot = vec![Signal::TERM, Signal::CONT];
        let mut t = Fake {
            cannot: cannot.clone(),
            ..Fake::default()
        };
        let end = run_schedule(&schedule("TERM/2/KILL/1"), &mut t);
        assert_eq!(end, Ok(ScheduleEnd::Running));
        assert_eq!(t.skipped, [Signal::TERM]);
        assert_eq!(t.sent, [Signal::KILL]);
        let s = Duration::from_secs;
        assert_eq!(t.waits, [s(2), s(1), Duration::ZERO]);
        // Gone within the grace: KILL is never sent.
        let mut t = Fake {
            cannot,
            gone_after: Some(0),
            ..Fake::default()
        };
        let end = run_schedule(&schedule("TERM/2/KILL/1"), &mut t);
        assert_eq!(end, Ok(ScheduleEnd::Exited));
        assert_eq!(t.skipped, [Signal::TERM]);
        assert!(t.sent.is_empty(), "{:?}", t.sent);
    }

    #[test]
    fn the_note_says_what_could_not_be_delivered_and_what_followed() {
        let mut r = Report::new(Outcome::Stopped, None, None, true);
        assert_eq!(r.note(), None, "nothing undelivered: no note");
        r.undelivered = vec![Signal::TERM];
        let exited = r.note().unwrap();
        assert!(exited.contains("TERM cannot be delivered"), "{exited}");
        assert!(exited.contains("exited by itself within the grace"), "{exited}");
        r.sent = vec![Signal::KILL];
        let killed = r.note().unwrap();
        assert!(killed.contains("ended by KILL"), "{killed}");
        r.outcome = Outcome::StillRunning;
        assert!(r.note().unwrap().contains("did not exit within the grace"));
    }
}
