//! Linux: `/proc` for the process tree, pidfds, `prctl`, `CLOCK_BOOTTIME`.

use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::process::Command;

use pidguard::{Pid, Signal};
use rustix::process::{self as rp, Pid as RPid};

/// Makes this process the subreaper of everything it starts
/// (`PR_SET_CHILD_SUBREAPER`).
pub(crate) fn become_subreaper() -> std::io::Result<()> {
    Ok(rp::set_child_subreaper(Some(rp::getpid()))?)
}

/// Has the kernel SIGKILL `cmd`'s process when this one dies
/// (`PR_SET_PDEATHSIG`, set between fork and exec).
pub(crate) fn contain_death(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    let parent = rp::getpid();
    // SAFETY: the closure runs in the child between fork and exec and
    // only makes two system calls (prctl, getppid); it allocates nothing
    // (an Errno converts to io::Error without allocating).
    unsafe {
        cmd.pre_exec(move || {
            rp::set_parent_process_death_signal(Some(rp::Signal::KILL))?;
            if rp::getppid() != Some(parent) {
                // The supervisor died before the prctl took effect.
                return Err(rustix::io::Errno::SRCH.into());
            }
            Ok(())
        });
    }
}

/// A pidfd on `pid`; `None` if it cannot be had.
pub(crate) fn pidfd_open(pid: i32) -> Option<OwnedFd> {
    rp::pidfd_open(RPid::from_raw(pid)?, rp::PidfdFlags::empty()).ok()
}

/// Sends `signal` through a pidfd.
pub(crate) fn pidfd_kill(fd: &OwnedFd, signal: Signal) {
    if let Some(s) = rp::Signal::from_named_raw(signal.as_raw()) {
        let _ = rp::pidfd_send_signal(fd, s);
    }
}

/// Now on `CLOCK_BOOTTIME` (which counts time suspended), in nanoseconds.
pub(crate) fn boot_now_ns() -> i128 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Boottime);
    i128::from(t.tv_sec) * 1_000_000_000 + i128::from(t.tv_nsec)
}

/// This program's executable (for re-executing it), `/proc/self/exe` if
/// its path cannot be had.
pub(crate) fn self_exe() -> std::path::PathBuf {
    std::env::current_exe().unwrap_or_else(|_| "/proc/self/exe".into())
}

/// The descriptors open in this process (`/proc/self/fd`).
pub(crate) fn open_fds() -> Option<Vec<i32>> {
    let dir = std::fs::read_dir("/proc/self/fd").ok()?;
    Some(
        dir.flatten()
            .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
            .collect(),
    )
}

/// Every process as `(pid, parent)`; `None` when `/proc` cannot be read.
pub(crate) fn process_parents() -> Option<Vec<(Pid, Pid)>> {
    // An empty /proc (not mounted) lists nothing: that is not "no children".
    parent_of(Pid::current())?;
    let mut parents = Vec::new();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.parse().ok())
            .and_then(Pid::new)
        else {
            continue;
        };
        if let Some(parent) = parent_of(pid) {
            parents.push((pid, parent));
        }
    }
    Some(parents)
}

/// `(state, parent, process group)` from `/proc/PID/stat`.
pub(crate) fn proc_stat(pid: i32) -> Option<(u8, i32, i32)> {
    stat_fields(pid).map(|(s, pp, pg, _)| (s, pp, pg))
}

/// `(state, parent, process group, start time in clock ticks)`.
pub(crate) fn stat_fields(pid: i32) -> Option<(u8, i32, i32, u64)> {
    let s = std::fs::read(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold anything, ")" included: the fields after
    // the last ')' are plain.
    let close = s.iter().rposition(|&b| b == b')')?;
    let rest = std::str::from_utf8(&s[close + 1..]).ok()?;
    let mut f = rest.split_ascii_whitespace();
    let state = f.next()?.bytes().next()?;
    let ppid = f.next()?.parse().ok()?;
    let pgrp = f.next()?.parse().ok()?;
    // Field 22 (starttime) is the 20th after the name.
    let start = f.nth(16)?.parse().ok()?;
    Some((state, ppid, pgrp, start))
}

/// The children of every thread of `pid` (`/proc/PID/task/*/children`).
pub(crate) fn children_of(pid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for t in tasks.flatten() {
        let Ok(text) = std::fs::read_to_string(t.path().join("children")) else {
            continue;
        };
        out.extend(
            text.split_ascii_whitespace()
                .filter_map(|p| p.parse::<i32>().ok()),
        );
    }
    out
}

/// The parent PID from `/proc/PID/stat` (field 4, after the `(comm)`),
/// for a live process. A process whose main thread has exited shows state
/// Z while its other threads run (and may hold the lock): it is alive as
/// long as `Threads:` in its status counts more than one.
pub(crate) fn parent_of(pid: Pid) -> Option<Pid> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    let mut fields = after.split_ascii_whitespace();
    let state = fields.next()?;
    if (state == "Z" || state == "X") && threads(pid)? < 2 {
        return None;
    }
    fields.next()?.parse().ok().and_then(Pid::new)
}

/// `Threads:` from `/proc/PID/status`.
fn threads(pid: Pid) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse().ok())
}

/// Whether the process holds the flock on `(dev, ino)`: a descriptor open
/// on the inode whose `fdinfo` shows the lock (a `lock:` line naming FLOCK
/// on that inode, not a waiter). Merely having the file open is not
/// holding it. Descriptors are read through each live thread
/// (`/proc/PID/task/TID/fd`): a process whose main thread has exited shows
/// an empty `/proc/PID/fd`. `None` when they cannot be read.
pub(crate) fn holds_inode(pid: Pid, dev: u64, ino: u64) -> Option<bool> {
    let tasks = match std::fs::read_dir(format!("/proc/{pid}/task")) {
        Ok(d) => d,
        // Gone meanwhile: holds nothing (unless /proc is not mounted).
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return parent_of(Pid::current()).map(|_| false)
        }
        Err(_) => return None,
    };
    let mut readable = false;
    for task in tasks.flatten() {
        let base = task.path();
        let Ok(dir) = std::fs::read_dir(base.join("fd")) else {
            continue;
        };
        readable = true;
        for entry in dir.flatten() {
            let Ok(md) = std::fs::metadata(entry.path()) else {
                continue;
            };
            if md.dev() != dev || md.ino() != ino {
                continue;
            }
            let info = base.join("fdinfo").join(entry.file_name());
            match std::fs::read_to_string(info) {
                Ok(text) if flock_line(&text, ino) => return Some(true),
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(_) => return None,
            }
        }
    }
    // No thread's descriptors could be read: it exited meanwhile, or we may
    // not look.
    if readable || std::fs::metadata(format!("/proc/{pid}")).is_err() {
        Some(false)
    } else {
        None
    }
}

/// Whether an `fdinfo` text shows a held flock on `ino`:
/// `lock:\t1: FLOCK  ADVISORY  WRITE 1234 00:2d:5678 0 EOF`; a waiter
/// (`1: -> FLOCK …`) holds nothing.
fn flock_line(fdinfo: &str, ino: u64) -> bool {
    fdinfo
        .lines()
        .filter_map(|l| l.strip_prefix("lock:"))
        .any(|l| {
            let f: Vec<&str> = l.split_ascii_whitespace().collect();
            f.get(1) == Some(&"FLOCK")
                && f.get(5)
                    .and_then(|d| d.rsplit(':').next())
                    .and_then(|i| i.parse::<u64>().ok())
                    == Some(ino)
        })
}

/// What pidguard keeps of Rust's start-up when `main.rs` is the C entry
/// point (glibc): descriptors 0, 1 and 2 that are closed are opened on
/// `/dev/null` (else the PID file, a lock or a socket would get one, and a
/// later `println!` or the supervised command would write into it), and
/// SIGPIPE is ignored (a closed pipe is an `EPIPE` error, not death; the
/// supervised command gets the default back before its exec). On error,
/// which descriptor could not be filled.
#[cfg(all(target_env = "gnu", not(test)))]
pub(crate) fn runtime_init() -> Result<(), (i32, std::io::Error)> {
    let mut fds = [0, 1, 2].map(|fd| libc::pollfd {
        fd,
        events: 0,
        revents: 0,
    });
    // SAFETY: poll reads and writes the three pollfds only; open and
    // signal take a NUL-terminated path and constants.
    unsafe {
        let polled = libc::poll(fds.as_mut_ptr(), 3, 0) >= 0;
        for p in &fds {
            let closed = if polled {
                p.revents & libc::POLLNVAL != 0
            } else {
                // poll failed (EINTR, ENOMEM): ask each descriptor.
                libc::fcntl(p.fd, libc::F_GETFD) == -1
                    && std::io::Error::last_os_error().raw_os_error() == Some(libc::EBADF)
            };
            // The lowest free descriptor is this one: 0, 1 and 2 are
            // filled in order.
            if closed && libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) != p.fd {
                return Err((p.fd, std::io::Error::last_os_error()));
            }
        }
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::flock_line;

    #[test]
    fn fdinfo_lock_lines() {
        let held = "pos:\t0\nflags:\t02\nlock:\t1: FLOCK  ADVISORY  WRITE 1234 00:2d:5678 0 EOF\n";
        assert!(flock_line(held, 5678));
        assert!(!flock_line(held, 5679));
        assert!(!flock_line(
            "lock:\t1: -> FLOCK  ADVISORY  WRITE 1 00:2d:5678 0 EOF\n",
            5678
        ));
        assert!(!flock_line(
            "lock:\t1: POSIX  ADVISORY  WRITE 1 00:2d:5678 0 EOF\n",
            5678
        ));
        assert!(!flock_line("pos:\t0\nflags:\t02\n", 5678));
    }
}
