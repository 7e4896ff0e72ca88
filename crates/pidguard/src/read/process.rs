//! Processes: is the PID in a file alive?
//!
//! Liveness is three-valued: a process is [`Liveness::Alive`],
//! [`Liveness::Dead`] (no such process, or a zombie waiting to be reaped), or
//! [`Liveness::AliveNotOurs`] (it exists but this process may not signal it).

use std::io;
use crate::sys::OwnedFd;
use std::time::{Duration, Instant, SystemTime};

use crate::pid::Pid;
use crate::signal::Signal;
use crate::sys::proc::ProcStat;
use crate::sys::{self, Errno, ProcState};

/// Whether a process exists, as far as signalling it is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Liveness {
    /// The process exists and this process may signal it.
    Alive,
    /// No such process, or it has exited and is only waiting to be reaped
    /// (a zombie).
    Dead,
    /// The process exists but belongs to another user: `kill(pid, 0)` gave
    /// `EPERM`.
    AliveNotOurs,
}

impl Liveness {
    /// `true` unless [`Liveness::Dead`].
    pub fn is_alive(self) -> bool {
        self != Liveness::Dead
    }
}

/// Probes a process with `kill(pid, 0)` (no signal is sent) and, on Linux,
/// `/proc/<pid>/stat` to count a zombie as dead.
///
/// ```
/// use pidguard::{liveness, Liveness, Pid};
/// assert_eq!(liveness(Pid::current()), Liveness::Alive);
/// ```
///
/// # Platform notes
/// Zombies are recognised on Linux only; elsewhere a zombie counts as alive
/// until it is reaped.
pub fn liveness(pid: Pid) -> Liveness {
    liveness_with_stat(pid).0
}

/// When the process `pid` started, on the wall clock (to a clock tick,
/// 10 ms on most systems), or `None` when it cannot be told (no such
/// process, no `/proc`, other Unix systems). What a lock's holder record
/// states (`pidguard-etcd` records it for the protected process).
pub fn start_time(pid: Pid) -> Option<SystemTime> {
    sys::proc::start_time(pid)
}

/// [`liveness`], with what `/proc/<pid>/stat` said (for identity checks).
pub(crate) fn liveness_with_stat(pid: Pid) -> (Liveness, Option<ProcStat>) {
    let probe = sys::probe(pid);
    let base = match probe {
        Ok(()) => Liveness::Alive,
        Err(Errno::SRCH) => return (Liveness::Dead, None),
        // Another user's process, or a probe refused for another reason:
        // ask the kernel without a permission check.
        Err(Errno::PERM) => match sys::exists(pid) {
            Some(false) => return (Liveness::Dead, None),
            _ => Liveness::AliveNotOurs,
        },
        // Anything else: be conservative and treat it as alive.
        Err(_) => Liveness::Alive,
    };
    match sys::process_state(pid) {
        (ProcState::Zombie | ProcState::Gone, st) => (Liveness::Dead, st),
        (ProcState::Live | ProcState::Unknown, st) => (base, st),
    }
}

/// A process pinned for signalling: on Linux a pidfd, so the PID cannot be
/// reused between the identity check, the signal and the wait.
///
/// Open it, verify the process is the one you mean (see
/// [`Identity`](crate::Identity)), then [`signal`](Process::signal) and
/// [`wait_timeout`](Process::wait_timeout).
///
/// # Platform notes
/// Without pidfds (other Unix systems, Linux before 5.3) the handle holds
/// the PID only: signals go through `kill(2)` and waiting polls with a
/// short, growing interval.
#[derive(Debug)]
pub struct Process {
    pid: Pid,
    pidfd: Option<OwnedFd>,
}

impl Process {
    /// Pins the process `pid`. Fails with `io::ErrorKind::NotFound` when
    /// there is no such process.
    pub fn open(pid: Pid) -> io::Result<Process> {
        let pidfd = sys::pidfd_open(pid)?;
        if pidfd.is_none() && liveness(pid) == Liveness::Dead {
            return Err(io::Error::from(io::ErrorKind::NotFound));
        }
        Ok(Process { pid, pidfd })
    }

    /// The process's PID.
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// Whether the process has exited (a zombie counts as exited).
    pub fn has_exited(&self) -> bool {
        match &self.pidfd {
            Some(fd) => sys::pidfd_exited(fd, Some(Duration::ZERO)),
            None => liveness(self.pid) == Liveness::Dead,
        }
    }

    /// Sends `signal`. An `EPERM` comes back as
    /// `io::ErrorKind::PermissionDenied`; a process that already exited is
    /// not an error.
    pub fn signal(&self, signal: Signal) -> io::Result<()> {
        match sys::send_signal(self.pidfd.as_ref(), self.pid, signal) {
            Ok(()) | Err(Errno::SRCH) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Waits up to `timeout` for the process to exit; `true` if it did. With
    /// a pidfd the exit is seen the moment it happens.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        if let Some(fd) = &self.pidfd {
            return sys::pidfd_exited(fd, Some(timeout));
        }
        let deadline = Instant::now() + timeout;
        let mut pause = Duration::from_micros(500);
        loop {
            if liveness(self.pid) == Liveness::Dead {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            std::thread::sleep(pause.min(deadline - now));
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }
}
