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

use pidguard::Pid;

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

/// The parent PID from `/proc/PID/stat` (field 4, after the `(comm)`).
fn parent_of(pid: Pid) -> Option<Pid> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    let mut fields = after.split_ascii_whitespace();
    let state = fields.next()?;
    if state == "Z" || state == "X" {
        return None;
    }
    fields.next()?.parse().ok().and_then(Pid::new)
}

/// Whether the process has a descriptor open on `(dev, ino)`; `None` when
/// its descriptors cannot be read.
fn holds_inode(pid: Pid, dev: u64, ino: u64) -> Option<bool> {
    let dir = match std::fs::read_dir(format!("/proc/{pid}/fd")) {
        Ok(d) => d,
        // Gone meanwhile: holds nothing.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Some(false),
        Err(_) => return None,
    };
    for entry in dir.flatten() {
        if let Ok(md) = std::fs::metadata(entry.path()) {
            if md.dev() == dev && md.ino() == ino {
                return Some(true);
            }
        }
    }
    Some(false)
}
