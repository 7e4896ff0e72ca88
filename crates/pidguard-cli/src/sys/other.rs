//! Other Unix systems (FreeBSD, macOS…): no `/proc`, no pidfds, no
//! `prctl`. The process-tree readers answer `None` (unknown): callers
//! signal only their own child, by PID, and name no lock holder.

use std::os::fd::OwnedFd;
use std::process::Command;

use pidguard::{Pid, Signal};

/// No subreaper here: orphans of the command go to init.
pub(crate) fn become_subreaper() -> std::io::Result<()> {
    Ok(())
}

/// No parent-death signal here: the command outlives a killed supervisor.
pub(crate) fn contain_death(_cmd: &mut Command) {}

/// No pidfds here.
pub(crate) fn pidfd_open(_pid: i32) -> Option<OwnedFd> {
    None
}

/// Never called without a pidfd.
pub(crate) fn pidfd_kill(_fd: &OwnedFd, _signal: Signal) {}

/// Now on `CLOCK_MONOTONIC`, in nanoseconds (whether it counts time
/// suspended depends on the system: FreeBSD's does not, macOS's does).
pub(crate) fn boot_now_ns() -> i128 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    i128::from(t.tv_sec) * 1_000_000_000 + i128::from(t.tv_nsec)
}

/// This program's executable (for re-executing it); an empty path (which
/// fails to start, saying so) if it cannot be had.
pub(crate) fn self_exe() -> std::path::PathBuf {
    std::env::current_exe().unwrap_or_default()
}

/// Not listed here: every number below the descriptor limit is tried.
pub(crate) fn open_fds() -> Option<Vec<i32>> {
    None
}

/// Unknown without `/proc`.
pub(crate) fn process_parents() -> Option<Vec<(Pid, Pid)>> {
    None
}

/// `(state, parent, process group)` of our own child `pid`, which `waitid`
/// can tell about without `/proc`: running (`S`) or exited and not yet
/// reaped (`Z`). Any other process is unknown (`None`): a job's leader
/// thus counts as running until it exits, never as gone; its descendants
/// are reached only through its process group.
pub(crate) fn proc_stat(pid: i32) -> Option<(u8, i32, i32)> {
    use rustix::process as rp;
    let p = rp::Pid::from_raw(pid)?;
    let exited = match rp::waitid(
        rp::WaitId::Pid(p),
        rp::WaitIdOptions::EXITED | rp::WaitIdOptions::NOHANG | rp::WaitIdOptions::NOWAIT,
    ) {
        Ok(None) => false,
        Ok(Some(_)) => true,
        Err(_) => return None,
    };
    let pgrp = rp::getpgid(Some(p)).ok()?.as_raw_nonzero().get();
    let state = if exited { b'Z' } else { b'S' };
    Some((state, rp::getpid().as_raw_nonzero().get(), pgrp))
}

/// Unknown without `/proc`.
pub(crate) fn stat_fields(_pid: i32) -> Option<(u8, i32, i32, u64)> {
    None
}

/// Unknown without `/proc`: none found.
pub(crate) fn children_of(_pid: i32) -> Vec<i32> {
    Vec::new()
}

/// Unknown without `/proc`.
pub(crate) fn parent_of(_pid: Pid) -> Option<Pid> {
    None
}

/// Unknown without `/proc` (unproved: no holder is named).
pub(crate) fn holds_inode(_pid: Pid, _dev: u64, _ino: u64) -> Option<bool> {
    None
}
