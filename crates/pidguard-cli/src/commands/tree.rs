//! The supervisor's process tree: who is left holding the lock when the
//! command exits.
//!
//! A supervisor is a child subreaper (`PR_SET_CHILD_SUBREAPER`), so a
//! daemon that forks itself into the background (its first process exits,
//! a child carries on) becomes the supervisor's own child instead of
//! init's. When the process the file names exits, [`successor`] looks for
//! the descendant that still holds the lock's inode, the way systemd
//! guesses the main PID of a `Type=forking` service: exactly one holder at
//! the top of the tree, and it must be our child (so we can wait for it).

use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};

use pidguard::{Pid, Process, Signal};

/// What to do after the process the file names has exited and been reaped.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// Nothing of ours holds the lock any more: finish (remove the file).
    /// `left` lists descendants still running without the lock.
    Done { left: Vec<Pid> },
    /// This child of ours holds the lock: it is the daemon now.
    Follow(Pid),
    /// Descendants may hold the lock but which one is the daemon cannot be
    /// told: the reason, naming them.
    Undecidable(String),
}

/// Remedies for a command that daemonizes itself.
pub const FOREGROUND_HINT: &str = "run it in the foreground instead (for example \
    `nginx -g 'daemon off;'`, `redis-server --daemonize no`, `sshd -D`, `memcached` without -d)";

/// Decides who follows the exited main process, given the locked file's
/// `(dev, ino)`. `has_children` is whether we still have any child at all
/// (`waitid` did not report ECHILD).
pub fn successor(has_children: bool, dev: u64, ino: u64) -> Next {
    if !has_children {
        return Next::Done { left: Vec::new() };
    }
    let me = Pid::current();
    let Some(tree) = descendants(me) else {
        return Next::Undecidable(format!(
            "the command exited and left processes running that may hold the lock, \
             but /proc cannot be read to tell which; the PID file is kept; {FOREGROUND_HINT}"
        ));
    };
    let mut holders = Vec::new();
    let mut unknown = Vec::new();
    for &(pid, parent) in &tree {
        match holds_inode(pid, dev, ino) {
            Some(true) => holders.push((pid, parent)),
            Some(false) => {}
            None => unknown.push(pid),
        }
    }
    if !unknown.is_empty() {
        return Next::Undecidable(format!(
            "the command exited and left PID {} running, whose descriptors cannot be read \
             (it may hold the lock); the PID file is kept; {FOREGROUND_HINT}",
            list(&unknown)
        ));
    }
    // The holders nearest the top: their parent holds nothing.
    let top: Vec<(Pid, Pid)> = holders
        .iter()
        .copied()
        .filter(|(_, parent)| !holders.iter().any(|(p, _)| p == parent))
        .collect();
    match top.as_slice() {
        [] => Next::Done {
            left: tree.iter().filter(|(_, p)| *p == me).map(|t| t.0).collect(),
        },
        [(pid, parent)] if *parent == me => Next::Follow(*pid),
        [(pid, parent)] => Next::Undecidable(format!(
            "the command exited and left PID {pid} holding the lock, below PID {parent} \
             which does not hold it: pidguard cannot follow it; the PID file is kept; \
             {FOREGROUND_HINT}"
        )),
        several => {
            let pids: Vec<Pid> = several.iter().map(|t| t.0).collect();
            Next::Undecidable(format!(
                "the command exited and left several processes holding the lock (PIDs {}): \
                 which one is the daemon cannot be told; the PID file is kept; {FOREGROUND_HINT}",
                list(&pids)
            ))
        }
    }
}

fn list(pids: &[Pid]) -> String {
    pids.iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Every process below `root` as `(pid, parent)`, parents first; `None`
/// when `/proc` cannot be read.
pub fn descendants(root: Pid) -> Option<Vec<(Pid, Pid)>> {
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
    let mut found = Vec::new();
    let mut queue = vec![root];
    while let Some(p) = queue.pop() {
        for &(child, parent) in &parents {
            if parent == p {
                found.push((child, parent));
                queue.push(child);
            }
        }
    }
    Some(found)
}

/// Whether `pid` is below us: its chain of parents reaches this process
/// (a subreaper keeps a daemon's descendants below it even after a double
/// fork). `None` when `/proc` cannot tell (not mounted, the chain broken
/// by a process that exited meanwhile).
pub fn is_below_us(pid: Pid) -> Option<bool> {
    let me = Pid::current();
    parent_of(me)?;
    let mut p = pid;
    // PIDs only go up the chain to PID 1; the bound only guards a loop.
    for _ in 0..4096 {
        if p == me {
            return Some(p != pid);
        }
        if p.get() == 1 {
            return Some(false);
        }
        p = parent_of(p)?;
    }
    None
}

/// Stops every process below us (the daemon we started and whatever it
/// forked, which a subreaper keeps below it even after a double fork):
/// TERM and CONT, up to `grace` for them to go, then KILL, reaping our
/// children as they exit; returns once none is left, or 5 s after the KILL.
/// Each process is pinned (pidfd) and confirmed still below us before it is
/// signalled. Without `/proc` only our child `direct` is signalled, by PID
/// (it is our child and unreaped, so the PID cannot be reused).
pub fn stop_below(direct: Pid, grace: Duration) {
    let me = Pid::current();
    let kill_at = Instant::now() + grace;
    let give_up_at = kill_at + Duration::from_secs(5);
    let mut termed: Vec<Pid> = Vec::new();
    loop {
        reap_children();
        let now = Instant::now();
        let kill = now >= kill_at;
        match descendants(me) {
            Some(tree) if tree.is_empty() => return,
            Some(tree) => {
                for &(pid, _) in &tree {
                    if kill || !termed.contains(&pid) {
                        signal_below(me, pid, &tree, kill);
                        termed.push(pid);
                    }
                }
            }
            None => {
                if !child_running(direct) {
                    return;
                }
                if kill || !termed.contains(&direct) {
                    let sig = if kill {
                        rustix::process::Signal::KILL
                    } else {
                        rustix::process::Signal::TERM
                    };
                    let _ = rustix::process::kill_process(super::rustix_pid(direct), sig);
                    if !kill {
                        let _ = rustix::process::kill_process(
                            super::rustix_pid(direct),
                            rustix::process::Signal::CONT,
                        );
                    }
                    termed.push(direct);
                }
            }
        }
        if now >= give_up_at {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Signals `pid` (TERM and CONT, or KILL) through a pidfd, once it is
/// confirmed still below us after pinning (its parent is us or one of
/// `tree`); our own child may also be signalled by PID when no pidfd can be
/// had (nobody else reaps it).
fn signal_below(me: Pid, pid: Pid, tree: &[(Pid, Pid)], kill: bool) {
    let Ok(p) = Process::open(pid) else {
        if parent_of(pid) == Some(me) {
            let sig = if kill {
                rustix::process::Signal::KILL
            } else {
                rustix::process::Signal::TERM
            };
            let _ = rustix::process::kill_process(super::rustix_pid(pid), sig);
        }
        return;
    };
    match parent_of(pid) {
        Some(parent) if parent == me || tree.iter().any(|t| t.0 == parent) => {}
        _ => return,
    }
    if kill {
        let _ = p.signal(Signal::KILL);
    } else {
        let _ = p.signal(Signal::TERM);
        let _ = p.signal(Signal::CONT);
    }
}

/// Reaps every child of ours that has exited.
fn reap_children() {
    use rustix::process::{wait, WaitOptions};
    loop {
        match wait(WaitOptions::NOHANG) {
            Ok(Some(_)) => {}
            Err(rustix::io::Errno::INTR) => {}
            _ => return,
        }
    }
}

/// Whether our child `pid` exists and has not exited.
fn child_running(pid: Pid) -> bool {
    use rustix::process::{waitid, WaitId, WaitIdOptions};
    matches!(
        waitid(
            WaitId::Pid(super::rustix_pid(pid)),
            WaitIdOptions::EXITED | WaitIdOptions::NOHANG | WaitIdOptions::NOWAIT
        ),
        Ok(None)
    )
}

/// The parent PID from `/proc/PID/stat` (field 4, after the `(comm)`),
/// for a live process. A process whose main thread has exited shows state
/// Z while its other threads run (and may hold the lock): it is alive as
/// long as `Threads:` in its status counts more than one.
fn parent_of(pid: Pid) -> Option<Pid> {
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
pub fn holds_inode(pid: Pid, dev: u64, ino: u64) -> Option<bool> {
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
