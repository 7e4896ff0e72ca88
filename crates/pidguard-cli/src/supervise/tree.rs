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

use std::time::{Duration, Instant};

use pidguard::{Pid, Process, Signal};

use crate::sys::{self, child_running, holds_inode, parent_of, reap_children};

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
    let parents = sys::process_parents()?;
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
                    let sig = if kill { Signal::KILL } else { Signal::TERM };
                    let _ = sys::kill(direct, sig);
                    if !kill {
                        let _ = sys::kill(direct, Signal::CONT);
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
            let sig = if kill { Signal::KILL } else { Signal::TERM };
            let _ = sys::kill(pid, sig);
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
