//! Stopping, signalling and waiting for a PID file's owner, safely.
//!
//! Every operation reads the file, pins the process it names (a pidfd on
//! Linux), classifies it (see [`identity`](crate::identity)) with the
//! process pinned, and acts only on a verified or consistent PID. A
//! mismatched PID means the file's real owner is gone: the file is stale and
//! the process is left alone. When running as root, a file that is not
//! verified must also pass the trust checks (not writable by others).

use std::io;
use std::path::Path;
use std::time::Duration;

use crate::error::{Error, ErrorKind, Result};
use crate::identity::{trust_problem, Filters, Identity};
use crate::pid::Pid;
use crate::pidfile::{remove_unlocked, Removal, MID_WRITE_BACKOFF_US};
use crate::process::Process;
use crate::signal::{Schedule, Signal, Step};
use crate::status::{inspect, Status};
use crate::sys;

/// What happened, in a [`Report`].
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// There is no PID file: nothing to do.
    NotRunning,
    /// The file is locked but names no PID yet: nothing to signal.
    Starting,
    /// The file was stale (its process is gone, or the PID now belongs to
    /// an unrelated process, which was left alone).
    Stale,
    /// The process exited.
    Stopped,
    /// The schedule ended (or the wait timed out) with the process still
    /// running.
    StillRunning,
    /// The signal was sent.
    Signalled,
}

/// What [`stop`], [`send_signal`] and [`wait`] found and did.
#[derive(Clone, Debug)]
pub struct Report {
    /// What happened.
    pub outcome: Outcome,
    /// The PID named in the file, if one was read.
    pub pid: Option<Pid>,
    /// The verdict on that PID, when it named a live process.
    pub identity: Option<Identity>,
    /// Whether the PID file is gone at the end (removed by pidguard as
    /// stale, or by its holder).
    pub file_gone: bool,
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
        }
    }
}

enum Pinned {
    Done(Report),
    Live(Process, Identity),
}

/// Finds the file's owner and pins it, or says why there is none.
fn pin(path: &Path, filters: &Filters, clean_stale: bool) -> Result<Pinned> {
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
            Status::Starting => {
                return Ok(Pinned::Done(Report::new(
                    Outcome::Starting,
                    None,
                    None,
                    false,
                )))
            }
            Status::Unknown(e) => return Err(e),
            Status::Stale(pid) => {
                let gone = clean_stale && cleanup(path, pid);
                return Ok(Pinned::Done(Report::new(
                    Outcome::Stale,
                    Some(pid),
                    first.identity,
                    gone,
                )));
            }
            Status::Running { pid, .. } => pid,
        };
        let process = match Process::open(pid) {
            Ok(p) => p,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::with_io(ErrorKind::Io, path, e)),
        };
        // Classify again with the process pinned: if it is still alive
        // afterwards, /proc described this very process.
        let second = inspect(path, filters);
        match (&second.status, second.identity) {
            (Status::Running { pid: p, .. }, Some(identity)) if *p == pid => {
                if process.has_exited() {
                    continue;
                }
                if identity != Identity::Verified {
                    let st = second.file.as_ref().expect("a running file was opened");
                    if let Some(why) = trust_problem(path, st) {
                        return Err(Error::untrusted(path, why));
                    }
                }
                let me = Pid::current();
                let parent =
                    rustix::process::getppid().and_then(|p| Pid::new(p.as_raw_nonzero().get()));
                if pid == me || Some(pid) == parent {
                    return Err(Error::untrusted(
                        path,
                        format!("PID {pid} is pidguard itself or its parent"),
                    ));
                }
                return Ok(Pinned::Live(process, identity));
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

/// Stops the owner of the PID file at `path` following `schedule`, and
/// removes the file once it is gone (unless its holder does).
///
/// After `SIGTERM` a `SIGCONT` follows, so a stopped process can act on it.
/// Returns [`Outcome::Stopped`], [`Outcome::NotRunning`],
/// [`Outcome::Stale`] (the stale file is removed, nothing is signalled), or
/// [`Outcome::StillRunning`] when the schedule ends first (the file is
/// kept). Errors: [`ErrorKind::PermissionDenied`] (`EPERM`),
/// [`ErrorKind::Untrusted`], [`ErrorKind::InvalidContents`], …
pub fn stop(path: impl AsRef<Path>, schedule: &Schedule, filters: &Filters) -> Result<Report> {
    let path = path.as_ref();
    let (process, identity) = match pin(path, filters, true)? {
        Pinned::Done(r) => return Ok(r),
        Pinned::Live(p, i) => (p, i),
    };
    let pid = process.pid();
    let steps = schedule.steps();
    let mut i = 0;
    let mut exited = false;
    while !exited {
        if i == steps.len() {
            match schedule.repeat_from() {
                Some(r) => i = r,
                None => break,
            }
        }
        match steps[i] {
            Step::Signal(sig) => {
                process
                    .signal(sig)
                    .map_err(|e| signal_error(path, pid, e))?;
                if sig == Signal::TERM {
                    process
                        .signal(Signal::CONT)
                        .map_err(|e| signal_error(path, pid, e))?;
                }
            }
            Step::Wait(d) => exited = process.wait_timeout(d),
        }
        i += 1;
    }
    if !exited && !process.has_exited() {
        return Ok(Report::new(
            Outcome::StillRunning,
            Some(pid),
            Some(identity),
            false,
        ));
    }
    let gone = cleanup(path, pid);
    Ok(Report::new(
        Outcome::Stopped,
        Some(pid),
        Some(identity),
        gone,
    ))
}

/// Sends one signal to the owner of the PID file at `path`, with the same
/// checks as [`stop`]. A stale file is reported ([`Outcome::Stale`]) and
/// left in place; nothing is signalled.
pub fn send_signal(path: impl AsRef<Path>, signal: Signal, filters: &Filters) -> Result<Report> {
    let path = path.as_ref();
    match pin(path, filters, false)? {
        Pinned::Done(r) => Ok(r),
        Pinned::Live(process, identity) => {
            let pid = process.pid();
            process
                .signal(signal)
                .map_err(|e| signal_error(path, pid, e))?;
            Ok(Report::new(
                Outcome::Signalled,
                Some(pid),
                Some(identity),
                false,
            ))
        }
    }
}

/// Waits for the owner of the PID file at `path` to exit, up to `timeout`
/// (forever with `None`). Nothing is signalled or removed.
pub fn wait(
    path: impl AsRef<Path>,
    timeout: Option<Duration>,
    filters: &Filters,
) -> Result<Report> {
    let path = path.as_ref();
    match pin(path, filters, false)? {
        Pinned::Done(r) => Ok(r),
        Pinned::Live(process, identity) => {
            let pid = process.pid();
            let exited = match timeout {
                Some(t) => process.wait_timeout(t),
                None => loop {
                    if process.wait_timeout(Duration::from_secs(3600)) {
                        break true;
                    }
                },
            };
            let outcome = if exited {
                Outcome::Stopped
            } else {
                Outcome::StillRunning
            };
            Ok(Report::new(
                outcome,
                Some(pid),
                Some(identity),
                sys::lstat(path).is_err(),
            ))
        }
    }
}

/// Whether the owner of the PID file at `path` could be signalled, with the
/// same checks as [`send_signal`], sending nothing (signal 0: `kill(pid,
/// 0)`): [`Outcome::Signalled`] when it could, the same outcomes as
/// [`send_signal`] otherwise, and [`ErrorKind::PermissionDenied`] when the
/// kernel would refuse a signal.
pub fn probe_signal(path: impl AsRef<Path>, filters: &Filters) -> Result<Report> {
    let path = path.as_ref();
    match pin(path, filters, false)? {
        Pinned::Done(r) => Ok(r),
        Pinned::Live(process, identity) => {
            let pid = process.pid();
            match rustix::process::test_kill_process(pid.to_rustix()) {
                Ok(()) | Err(rustix::io::Errno::SRCH) => {}
                Err(e) => return Err(signal_error(path, pid, e.into())),
            }
            Ok(Report::new(
                Outcome::Signalled,
                Some(pid),
                Some(identity),
                false,
            ))
        }
    }
}
