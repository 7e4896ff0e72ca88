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
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use pidguard::{Pid, Signal};

use crate::sys::{self, boot_now_ns, children_of, proc_stat as stat, stat_fields};

/// The first argument that makes `pidguard` run as a [`Watchdog`].
pub const WATCHDOG_ARG: &str = "__pidguard-job-watchdog";

/// Prepares `cmd` to start a job: a process group of its own, and killed
/// (SIGKILL) by the kernel when the supervisor dies.
pub fn contain(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    cmd.process_group(0);
    sys::contain_death(cmd);
}

/// Makes this process the subreaper of everything it starts (Linux;
/// elsewhere a no-op).
pub fn become_subreaper() -> std::io::Result<()> {
    sys::become_subreaper()
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
            let me = sys::getpid();
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
        let _ = sys::kill_group(self.leader, sig);
        let members = self.members();
        let me = sys::getpid();
        for m in members.iter().filter(|m| m.pgrp != self.leader) {
            let Some(fd) = sys::pidfd_open(m.pid) else {
                continue;
            };
            // The PID may have been reused between the listing and the
            // pidfd: only a process whose parent is this supervisor or a
            // process of the job is signalled.
            let parent_ok = stat(m.pid).is_some_and(|(_, ppid, _)| {
                ppid == m.ppid && (ppid == me || members.iter().any(|o| o.pid == ppid))
            });
            if parent_ok {
                sys::pidfd_kill(&fd, sig);
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
        let me = sys::getpid();
        for pid in children_of(me) {
            if pid == self.leader || except.contains(&pid) {
                continue;
            }
            if stat(pid).is_some_and(|(state, ..)| state == b'Z') {
                let _ = sys::reap_raw(pid);
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
        sys::wait_exited(self.leader)
    }
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
        let exe = sys::self_exe();
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
pub fn watchdog_main(args: &[OsString]) -> u8 {
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
    let mut group: Option<i32> = None;
    // pidfds on the job's processes outside the group.
    let mut outside: Vec<std::os::fd::OwnedFd> = Vec::new();
    let mut deadline: Option<i128> = None;
    let mut fired = false;
    let mut buf = Vec::new();
    let kill_job = |group: Option<i32>, outside: &[std::os::fd::OwnedFd]| -> bool {
        // `true` while the group still has members.
        for fd in outside {
            sys::pidfd_kill(fd, Signal::KILL);
        }
        match group {
            Some(g) => sys::kill_group(g, Signal::KILL),
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
                        group.unwrap_or(0)
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
        match sys::poll_readable(fd, wait) {
            Ok(false) => continue,
            Ok(true) => {}
            Err(sys::Errno::INTR) => continue,
            Err(_) => return 70,
        }
        let mut chunk = [0u8; 512];
        let n = match sys::read(fd, &mut chunk) {
            Ok(n) => n,
            Err(sys::Errno::INTR) | Err(sys::Errno::AGAIN) => continue,
            Err(_) => 0,
        };
        if n == 0 {
            // The supervisor is gone without saying the job is over.
            let end = Instant::now() + Duration::from_secs(5);
            while kill_job(group, &outside) && Instant::now() < end {
                std::thread::sleep(Duration::from_millis(20));
            }
            return 0;
        }
        buf.extend_from_slice(&chunk[..n]);
        while let Some(i) = buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buf.drain(..=i).collect();
            let line = String::from_utf8_lossy(&line[..line.len() - 1]).into_owned();
            let (cmd, arg) = line.split_once(' ').unwrap_or((&line, ""));
            match cmd {
                "G" => group = arg.parse().ok().filter(|g: &i32| *g > 0),
                "P" => {
                    let mut f = arg.split(' ').map(|x| x.parse::<u64>().ok());
                    if let (Some(Some(pid)), Some(Some(start))) = (f.next(), f.next()) {
                        let pid = i32::try_from(pid).ok().filter(|p| *p > 0);
                        if let Some(fd) = pid.and_then(sys::pidfd_open) {
                            // Still the process the supervisor saw (not a
                            // reused PID): then the pidfd pins it.
                            let same = pid.and_then(stat_fields);
                            if same.is_some_and(|(.., st)| st == start) {
                                outside.push(fd);
                            }
                        }
                    }
                }
                "D" if !fired => deadline = arg.parse().ok(),
                "X" => return 0,
                _ => {}
            }
        }
    }
}
