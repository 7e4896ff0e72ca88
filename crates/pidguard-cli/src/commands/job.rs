//! Job control for a supervised command: the whole job, not one PID.
//!
//! * [`contain`]: the command starts in a process group of its own (its
//!   PID is the group's ID) and is SIGKILLed by the kernel if the
//!   supervisor dies (`PR_SET_PDEATHSIG`).
//! * [`become_subreaper`]: processes of the job whose parent exits are
//!   re-parented to the supervisor (`PR_SET_CHILD_SUBREAPER`), not to init,
//!   so the supervisor still finds them, signals them and reaps them.
//! * [`Job`]: the command's process group plus every descendant of the
//!   supervisor (also those that left the group with `setsid` or
//!   `setpgid`), signalled and waited for as a whole. The leader is not
//!   reaped until the job is empty, so the group's ID cannot be reused
//!   while it is signalled.
//! * [`Watchdog`]: a small process (this binary, re-executed) holding its
//!   own deadline on `CLOCK_BOOTTIME`: if the supervisor does not move the
//!   deadline on in time (it is stopped, stalled, or the host slept) or
//!   dies, the watchdog SIGKILLs the job's process group itself. It does
//!   not share the supervisor's fate: it is a process of its own in a
//!   process group of its own, and ignores the signals a terminal or a
//!   service manager sends to the supervisor's group.
//!
//! Linux only (`/proc`, pidfds, `PR_SET_CHILD_SUBREAPER`).
// Used by `run --backend` (feature `etcd`) only, so far.
#![cfg_attr(not(feature = "etcd"), allow(dead_code))]

use std::ffi::OsString;
use std::io::Write;
use std::process::{Child, ChildStdin, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use pidguard::{Pid, Signal};
use rustix::process::{self as rp, Pid as RPid};

/// The first argument that makes `pidguard` run as a [`Watchdog`].
pub const WATCHDOG_ARG: &str = "__pidguard-job-watchdog";

fn rsig(s: Signal) -> Option<rustix::process::Signal> {
    rustix::process::Signal::from_named_raw(s.as_raw())
}

/// Prepares `cmd` to start a job: a process group of its own, and killed
/// (SIGKILL) by the kernel when the supervisor dies.
pub fn contain(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    cmd.process_group(0);
    #[cfg(target_os = "linux")]
    {
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
}

/// Makes this process the subreaper of everything it starts.
#[cfg(target_os = "linux")]
pub fn become_subreaper() -> std::io::Result<()> {
    Ok(rp::set_child_subreaper(Some(rp::getpid()))?)
}

#[cfg(not(target_os = "linux"))]
pub fn become_subreaper() -> std::io::Result<()> {
    Ok(())
}

/// `(state, parent, process group)` from `/proc/PID/stat`.
fn stat(pid: i32) -> Option<(u8, i32, i32)> {
    stat_fields(pid).map(|(s, pp, pg, _)| (s, pp, pg))
}

/// `(state, parent, process group, start time in clock ticks)`.
fn stat_fields(pid: i32) -> Option<(u8, i32, i32, u64)> {
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
fn children_of(pid: i32) -> Vec<i32> {
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

/// A supervised command and everything it started.
#[derive(Clone, Debug)]
pub struct Job {
    leader: i32,
    /// Adopt the supervisor's other children (orphans of the job
    /// re-parented to it as subreaper), except these (the watchdog).
    adopt: Option<Vec<i32>>,
}

/// One live process of a job.
#[derive(Clone, Copy, Debug)]
struct Member {
    pid: i32,
    ppid: i32,
    pgrp: i32,
}

impl Job {
    /// The job led by `leader`, started by [`contain`] (its PID is its
    /// process group's ID). Its descendants count; the supervisor's other
    /// children do not.
    pub fn new(leader: Pid) -> Job {
        Job {
            leader: leader.get(),
            adopt: None,
        }
    }

    /// Also counts the supervisor's other children (and theirs), but not
    /// `except`: in a supervisor that is a subreaper and starts nothing else,
    /// these are the job's orphans.
    pub fn adopting(mut self, except: &[i32]) -> Job {
        self.adopt = Some(except.to_vec());
        self
    }

    fn roots(&self) -> Vec<i32> {
        let mut roots = vec![self.leader];
        if let Some(except) = &self.adopt {
            let me = rp::getpid().as_raw_nonzero().get();
            roots.extend(
                children_of(me)
                    .into_iter()
                    .filter(|p| *p != self.leader && !except.contains(p)),
            );
        }
        roots
    }

    /// The job's processes that have not exited (zombies are gone).
    fn members(&self) -> Vec<Member> {
        let mut out: Vec<Member> = Vec::new();
        let mut todo = self.roots();
        while let Some(pid) = todo.pop() {
            if out.iter().any(|m| m.pid == pid) {
                continue;
            }
            let Some((state, ppid, pgrp)) = stat(pid) else {
                continue;
            };
            if state == b'Z' || state == b'X' {
                continue;
            }
            out.push(Member { pid, ppid, pgrp });
            todo.extend(children_of(pid));
        }
        out
    }

    /// How many of the job's processes have not exited.
    pub fn count(&self) -> usize {
        self.members().len()
    }

    /// Whether every process of the job has exited.
    pub fn is_empty(&self) -> bool {
        self.reap_adopted();
        self.members().is_empty()
    }

    /// Sends `sig` to the whole job: its process group (one system call,
    /// which also reaches a child forked at that moment), then each
    /// process that left the group, through a pidfd opened after it was
    /// found and checked again (its parent still in the job) before use.
    /// Must not be called after the leader was reaped.
    pub fn signal(&self, sig: Signal) {
        let Some(s) = rsig(sig) else { return };
        if let Some(group) = RPid::from_raw(self.leader) {
            let _ = rp::kill_process_group(group, s);
        }
        let members = self.members();
        let me = rp::getpid().as_raw_nonzero().get();
        for m in members.iter().filter(|m| m.pgrp != self.leader) {
            let Some(p) = RPid::from_raw(m.pid) else {
                continue;
            };
            let Ok(fd) = rp::pidfd_open(p, rp::PidfdFlags::empty()) else {
                continue;
            };
            // The PID may have been reused between the listing and the
            // pidfd: only a process whose parent is this supervisor or a
            // process of the job is signalled.
            let parent_ok = stat(m.pid).is_some_and(|(_, ppid, _)| {
                ppid == m.ppid && (ppid == me || members.iter().any(|o| o.pid == ppid))
            });
            if parent_ok {
                let _ = rp::pidfd_send_signal(&fd, s);
            }
        }
    }

    /// The job's processes outside its process group (they left it with
    /// `setsid` or `setpgid`), with their start times: what only a
    /// signal to each one reaches.
    pub fn outside_group(&self) -> Vec<(i32, u64)> {
        self.members()
            .into_iter()
            .filter(|m| m.pgrp != self.leader)
            .filter_map(|m| stat_fields(m.pid).map(|(.., start)| (m.pid, start)))
            .collect()
    }

    /// Reaps the job's orphans that were re-parented to the supervisor and
    /// have exited (never the leader: see [`Job::signal`]).
    pub fn reap_adopted(&self) {
        let Some(except) = &self.adopt else { return };
        let me = rp::getpid().as_raw_nonzero().get();
        for pid in children_of(me) {
            if pid == self.leader || except.contains(&pid) {
                continue;
            }
            if stat(pid).is_some_and(|(state, ..)| state == b'Z') {
                if let Some(p) = RPid::from_raw(pid) {
                    let _ = rp::waitpid(Some(p), rp::WaitOptions::NOHANG);
                }
            }
        }
    }

    /// Waits up to `timeout` for the whole job to exit; `true` if it did.
    pub fn wait_empty(&self, timeout: Duration) -> bool {
        let end = Instant::now().checked_add(timeout);
        loop {
            if self.is_empty() {
                return true;
            }
            let left = end.map_or(Duration::MAX, |e| {
                e.saturating_duration_since(Instant::now())
            });
            if left.is_zero() {
                return false;
            }
            std::thread::sleep(left.min(Duration::from_millis(10)));
        }
    }

    /// Blocks until the leader has exited, without reaping it (so that its
    /// PID, the group's ID, stays reserved).
    pub fn wait_leader_exited(&self) -> std::io::Result<()> {
        let p = RPid::from_raw(self.leader).expect("positive");
        loop {
            match rp::waitid(
                rp::WaitId::Pid(p),
                rp::WaitIdOptions::EXITED | rp::WaitIdOptions::NOWAIT,
            ) {
                Ok(_) => return Ok(()),
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// Now on `CLOCK_BOOTTIME` (which counts time suspended), in nanoseconds.
fn boot_now_ns() -> i128 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Boottime);
    i128::from(t.tv_sec) * 1_000_000_000 + i128::from(t.tv_nsec)
}

/// The supervisor's side of a watchdog process. See the module's
/// description. Messages on its standard input, one per line: `G PGID`
/// (the job's process group), `P PID START` (a process of the job outside
/// the group, with its start time: the watchdog holds a pidfd on it once
/// the start time matches), `D NS` (kill the job when `CLOCK_BOOTTIME`
/// reaches NS), `X` (the job is over: exit). An end of input without `X`
/// (the supervisor died) kills the job at once.
pub struct Watchdog {
    child: Child,
    input: Option<ChildStdin>,
    last: Option<Instant>,
    told: Vec<(i32, u64)>,
}

impl Watchdog {
    /// Starts the watchdog (this binary, re-executed through
    /// `/proc/self/exe`).
    pub fn start() -> std::io::Result<Watchdog> {
        use std::os::unix::process::CommandExt;
        let exe = std::env::current_exe().unwrap_or_else(|_| "/proc/self/exe".into());
        let mut cmd = Command::new(exe);
        cmd.arg(WATCHDOG_ARG)
            .arg(std::process::id().to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .process_group(0);
        let mut child = cmd.spawn()?;
        let input = child.stdin.take();
        Ok(Watchdog {
            child,
            input,
            last: None,
            told: Vec::new(),
        })
    }

    /// The watchdog's PID.
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    fn send(&mut self, line: &str) -> std::io::Result<()> {
        match &mut self.input {
            Some(i) => i.write_all(line.as_bytes()),
            None => Err(std::io::Error::other("the watchdog's input is closed")),
        }
    }

    /// The job's process group to guard.
    pub fn guard(&mut self, job: &Job) -> std::io::Result<()> {
        self.send(&format!("G {}\n", job.leader))
    }

    /// Kill the group at `at` (on the monotonic clock) unless moved on.
    /// Sent only when it changed.
    pub fn deadline(&mut self, at: Instant) -> std::io::Result<()> {
        if self.last == Some(at) {
            return Ok(());
        }
        let left = at.saturating_duration_since(Instant::now());
        let ns = boot_now_ns() + left.as_nanos() as i128;
        self.send(&format!("D {ns}\n"))?;
        self.last = Some(at);
        Ok(())
    }

    /// Tells the watchdog about the job's processes outside its group
    /// (those it has not been told about yet).
    pub fn outside_group(&mut self, job: &Job) -> std::io::Result<()> {
        for p in job.outside_group() {
            if !self.told.contains(&p) {
                self.send(&format!("P {} {}\n", p.0, p.1))?;
                self.told.push(p);
            }
        }
        Ok(())
    }

    /// The job is over: the watchdog exits (and is reaped).
    pub fn disarm(mut self) {
        let _ = self.send("X\n");
        self.input = None;
        let _ = self.child.wait();
    }
}

/// The watchdog process (see [`Watchdog`]); `args` are what follows
/// [`WATCHDOG_ARG`]: the supervisor's PID.
pub fn watchdog_main(args: &[OsString]) -> ExitCode {
    use std::os::fd::AsFd;
    let supervisor = args
        .first()
        .and_then(|a| a.to_str())
        .and_then(|a| a.parse::<i32>().ok())
        .unwrap_or(0);
    // The supervisor handles the signals meant for the job's supervision;
    // the watchdog only ever ends on X, or kills the job on its deadline
    // or its supervisor's death.
    let ignored = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for s in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
        signal_hook::consts::SIGQUIT,
        signal_hook::consts::SIGPIPE,
        signal_hook::consts::SIGUSR1,
        signal_hook::consts::SIGUSR2,
        signal_hook::consts::SIGTSTP,
        signal_hook::consts::SIGTTIN,
        signal_hook::consts::SIGTTOU,
    ] {
        let _ = signal_hook::flag::register(s, ignored.clone());
    }
    let stdin = std::io::stdin();
    let fd = stdin.as_fd();
    let mut group: Option<RPid> = None;
    // pidfds on the job's processes outside the group.
    let mut outside: Vec<std::os::fd::OwnedFd> = Vec::new();
    let mut deadline: Option<i128> = None;
    let mut fired = false;
    let mut buf = Vec::new();
    let kill_job = |group: Option<RPid>, outside: &[std::os::fd::OwnedFd]| -> bool {
        // `true` while the group still has members.
        for fd in outside {
            let _ = rp::pidfd_send_signal(fd, rp::Signal::KILL);
        }
        match group {
            Some(g) => rp::kill_process_group(g, rp::Signal::KILL).is_ok(),
            None => false,
        }
    };
    loop {
        let now = boot_now_ns();
        if let (Some(d), false) = (deadline, fired) {
            if now >= d {
                fired = true;
                if kill_job(group, &outside) {
                    eprintln!(
                        "pidguard: watchdog: the supervisor (PID {supervisor}) did not confirm \
                         the lock in time (stopped, stalled, or the host was suspended): \
                         killed the command's process group {} (SIGKILL) before the lock \
                         could pass to another host",
                        group.map_or(0, |g| g.as_raw_nonzero().get())
                    );
                }
            }
        }
        // After firing: again every 50 ms (a process forked meanwhile)
        // until the group is empty.
        let wait = if fired {
            if !kill_job(group, &outside) {
                deadline = None;
            }
            Some(50_000_000i128)
        } else {
            deadline.map(|d| (d - now).max(0))
        };
        let timeout = wait.map(|ns| rustix::time::Timespec {
            tv_sec: (ns / 1_000_000_000) as i64,
            tv_nsec: (ns % 1_000_000_000) as _,
        });
        let mut fds = [rustix::event::PollFd::new(
            &fd,
            rustix::event::PollFlags::IN,
        )];
        match rustix::event::poll(&mut fds, timeout.as_ref()) {
            Ok(0) => continue,
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => return ExitCode::from(70),
        }
        let mut chunk = [0u8; 512];
        let n = match rustix::io::read(fd, &mut chunk) {
            Ok(n) => n,
            Err(rustix::io::Errno::INTR) | Err(rustix::io::Errno::AGAIN) => continue,
            Err(_) => 0,
        };
        if n == 0 {
            // The supervisor is gone without saying the job is over.
            let end = Instant::now() + Duration::from_secs(5);
            while kill_job(group, &outside) && Instant::now() < end {
                std::thread::sleep(Duration::from_millis(20));
            }
            return ExitCode::SUCCESS;
        }
        buf.extend_from_slice(&chunk[..n]);
        while let Some(i) = buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buf.drain(..=i).collect();
            let line = String::from_utf8_lossy(&line[..line.len() - 1]).into_owned();
            let (cmd, arg) = line.split_once(' ').unwrap_or((&line, ""));
            match cmd {
                "G" => group = arg.parse().ok().and_then(RPid::from_raw),
                "P" => {
                    let mut f = arg.split(' ').map(|x| x.parse::<u64>().ok());
                    if let (Some(Some(pid)), Some(Some(start))) = (f.next(), f.next()) {
                        let pid = i32::try_from(pid).ok().and_then(RPid::from_raw);
                        if let Some(fd) =
                            pid.and_then(|p| rp::pidfd_open(p, rp::PidfdFlags::empty()).ok())
                        {
                            // Still the process the supervisor saw (not a
                            // reused PID): then the pidfd pins it.
                            let same = pid.and_then(|p| stat_fields(p.as_raw_nonzero().get()));
                            if same.is_some_and(|(.., st)| st == start) {
                                outside.push(fd);
                            }
                        }
                    }
                }
                "D" if !fired => deadline = arg.parse().ok(),
                "X" => return ExitCode::SUCCESS,
                _ => {}
            }
        }
    }
}
