//! Processes a test owns, waiting for what they do, and the strace seam:
//! a command run under `strace -f` with the signal-sending system calls
//! failing with EPERM, so that a "never signals" test cannot signal
//! anything even when the code under test is wrong.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use pidguard::{Liveness, Pid, Status};

use crate::{bin, have_tool};

/// Polls `cond` every 5 ms for up to 30 s (generous: CI machines can be
/// loaded).
pub fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Whether a process exists (a zombie counts as gone).
pub fn alive(pid: i32) -> bool {
    pidguard::liveness(Pid::new(pid).unwrap()) != Liveness::Dead
}

/// Waits until the PID file names a running process; returns its PID.
pub fn wait_running(path: &Path) -> i32 {
    let mut pid = 0;
    wait_for("a running holder", || match pidguard::status(path) {
        Status::Running { pid: p, .. } => {
            pid = p.get();
            true
        }
        _ => false,
    });
    pid
}

/// Waits until the PID file names a running process that holds the lock.
pub fn wait_running_locked(path: &Path) -> i32 {
    let mut pid = 0;
    wait_for("a running, locked holder", || {
        match pidguard::status(path) {
            Status::Running {
                pid: p,
                locked: true,
            } => {
                pid = p.get();
                true
            }
            _ => false,
        }
    });
    pid
}

/// Waits until the PID file's holder is verified and the command itself
/// holds the locked file (in supervise mode the lock reaches the command a
/// moment after the file names it; the kernel identity record verifies it
/// before that). Returns its PID.
pub fn wait_verified(path: &Path) -> i32 {
    let pid = wait_running_locked(path);
    wait_for("the command to hold the lock itself", || {
        pidguard::inspect(path, &pidguard::Filters::default()).identity
            == Some(pidguard::Identity::Verified)
            && holds_file(pid, path)
    });
    pid
}

/// Whether process `pid` has a descriptor open on the file at `path`
/// (`/proc/<pid>/task/<tid>/fd`: a process whose main thread exited shows
/// its descriptors only through its live threads).
pub fn holds_file(pid: i32, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(want) = std::fs::metadata(path) else {
        return false;
    };
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.flatten().any(|task| {
        let Ok(fds) = std::fs::read_dir(task.path().join("fd")) else {
            return false;
        };
        fds.flatten().any(|fd| {
            std::fs::metadata(fd.path())
                .is_ok_and(|m| m.dev() == want.dev() && m.ino() == want.ino())
        })
    })
}

/// Sends a signal with kill(1) to a process this test started, by PID.
pub fn signal(pid: i32, sig: &str) {
    assert!(pid > 1);
    let ok = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

/// A process this test owns, killed and reaped on drop.
pub struct Owned(pub Child);

impl Owned {
    pub fn spawn(cmd: &mut Command) -> Owned {
        Owned(cmd.stdin(Stdio::null()).spawn().unwrap())
    }

    pub fn pid(&self) -> i32 {
        self.0.id() as i32
    }
}

impl Drop for Owned {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `sleep 30`, owned.
pub fn sleeper() -> Owned {
    Owned::spawn(Command::new("sleep").arg("30"))
}

/// Waits (up to 30 s, [`wait_for`]) for a file a test command writes a
/// PID into; returns the PID (a positive number; white space around it is
/// ignored).
pub fn pid_in(path: &Path) -> i32 {
    pid_in_where(path, |_| true)
}

/// [`pid_in`], waiting until the PID in the file is one `accept` takes
/// (e.g. a given PID, or a live one): the file's other contents meanwhile
/// (none yet, a half-written line, another PID) are waited past.
pub fn pid_in_where(path: &Path, accept: impl Fn(i32) -> bool) -> i32 {
    let mut pid = 0;
    wait_for(
        &format!("a PID in {}", path.display()),
        || match std::fs::read_to_string(path)
            .ok()
            .and_then(|s| s.trim().parse().ok())
        {
            Some(p) if p > 0 && accept(p) => {
                pid = p;
                true
            }
            _ => false,
        },
    );
    pid
}

/// Processes this test started but is not the parent of (they forked away;
/// their PIDs were read from a file or an output), pinned by pidfd as soon
/// as their PIDs are known, and SIGKILLed through that pidfd when dropped,
/// then waited for: a failed or timed-out assertion does not leave them
/// running, and a PID freed and reused meanwhile is never signalled (never
/// by PID). A process already gone when pinned is left out (nothing to
/// kill), and so are PIDs 0 and 1 (never a test's).
///
/// Without pidfds (not Linux, where these tests are only built) a process
/// is known by its PID alone, and signalled by PID while it exists.
pub struct Pinned(Vec<Pin>);

impl Pinned {
    /// Pins each of `pids` (panics if a process that exists cannot be
    /// pinned: it could not be killed safely at the end).
    pub fn new(pids: impl IntoIterator<Item = i32>) -> Pinned {
        Pinned(pids.into_iter().filter_map(Pin::open).collect())
    }

    /// SIGTERM to each pinned process still running, then waits up to
    /// `grace` for them to exit (the drop SIGKILLs any left).
    pub fn terminate(&self, grace: Duration) {
        let deadline = Instant::now() + grace;
        for p in &self.0 {
            p.signal(libc::SIGTERM);
        }
        for p in &self.0 {
            p.wait_gone(deadline.saturating_duration_since(Instant::now()));
        }
    }
}

impl Drop for Pinned {
    fn drop(&mut self) {
        for p in &self.0 {
            p.signal(libc::SIGKILL);
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        for p in &self.0 {
            let gone = p.wait_gone(deadline.saturating_duration_since(Instant::now()));
            // A second panic while unwinding would abort the run.
            if !gone && !std::thread::panicking() {
                panic!(
                    "timed out waiting for process {} to exit after SIGKILL",
                    p.pid
                );
            }
        }
    }
}

/// One pinned process: its PID (for messages) and its pidfd.
struct Pin {
    pid: i32,
    #[cfg(target_os = "linux")]
    fd: std::os::fd::OwnedFd,
}

#[cfg(target_os = "linux")]
impl Pin {
    fn open(pid: i32) -> Option<Pin> {
        if pid <= 1 {
            return None;
        }
        let raw = rustix::process::Pid::from_raw(pid)?;
        match rustix::process::pidfd_open(raw, rustix::process::PidfdFlags::empty()) {
            Ok(fd) => Some(Pin { pid, fd }),
            // Gone already: nothing to kill.
            Err(rustix::io::Errno::SRCH) => None,
            Err(e) => panic!(
                "cannot pin process {pid} by pidfd (pidfd_open: {e}): it could not be \
                 killed safely when the test ends (Linux 5.3 or later has pidfds)"
            ),
        }
    }

    /// Sends `sig` through the pidfd (an exited process is not signalled:
    /// the kernel refuses with ESRCH, which is ignored).
    fn signal(&self, sig: libc::c_int) {
        if let Some(sig) = rustix::process::Signal::from_named_raw(sig) {
            let _ = rustix::process::pidfd_send_signal(&self.fd, sig);
        }
    }

    /// Waits up to `timeout` until the process has exited (its pidfd is
    /// readable once every thread is gone, reaped or a zombie); whether it
    /// has.
    fn wait_gone(&self, timeout: Duration) -> bool {
        use std::os::fd::AsRawFd;
        let deadline = Instant::now() + timeout;
        loop {
            let mut pfd = libc::pollfd {
                fd: self.fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            let left = deadline.saturating_duration_since(Instant::now());
            let ms = left.as_millis().min(1000) as libc::c_int;
            // SAFETY: one valid pollfd, for the duration of the call.
            let n = unsafe { libc::poll(&mut pfd, 1, ms) };
            if n > 0 {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
        }
    }
}

#[cfg(not(target_os = "linux"))]
impl Pin {
    fn open(pid: i32) -> Option<Pin> {
        (pid > 1 && alive(pid)).then_some(Pin { pid })
    }

    fn signal(&self, sig: libc::c_int) {
        if alive(self.pid) {
            // SAFETY: kill(2) takes plain integers.
            unsafe { libc::kill(self.pid, sig) };
        }
    }

    fn wait_gone(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while alive(self.pid) {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        true
    }
}

/// Whether `flock -n` can take the file's lock (nobody holds it).
pub fn lock_free(path: &Path) -> bool {
    Command::new("flock")
        .args(["-n", "-E", "99"])
        .arg(path)
        .arg("true")
        .status()
        .unwrap()
        .code()
        == Some(0)
}

/// Every signal-sending system call.
pub const ALL_SIGNALS: &str = "kill,tgkill,tkill,pidfd_send_signal,rt_sigqueueinfo";
/// The ones that can reach more than one process or a PID that was never
/// pinned (kill(-1), kill(0), a reused PID); pidfd_send_signal is left out.
pub const BROADCAST_CAPABLE: &str = "kill,tgkill,tkill,rt_sigqueueinfo";

/// Runs pidguard under `strace -f`, making the `inject` system calls fail
/// with EPERM so that nothing can be signalled through them, and returns
/// its output and every signal-sending call it attempted (`kill(pid, 0)`
/// probes are not signals and are left out). `None`, with a printed reason,
/// when strace is not installed.
pub fn under_strace(inject: &str, args: &[&str]) -> Option<(Output, Vec<String>)> {
    let mut cmd = Command::new(bin());
    cmd.args(args);
    let seam = Seam {
        inject,
        ..Seam::default()
    };
    seam.run(&cmd).map(|(out, calls)| (out, signals_in(&calls)))
}

/// The strace seam, configurable: which calls fail with EPERM, which extra
/// calls are traced, and how long the command may take before it is
/// killed and the test fails ("never blocks").
pub struct Seam<'a> {
    /// Calls that fail with EPERM (default: every signal-sending call).
    pub inject: &'a str,
    /// Calls traced besides the signal-sending ones (e.g. `pidfd_open`).
    pub also_trace: &'a str,
    /// The longest the command may run.
    pub deadline: Duration,
    /// A further injection (`-e inject=…`), e.g. `pidfd_open:error=ENOSYS`.
    pub also_inject: &'a str,
}

impl Default for Seam<'_> {
    fn default() -> Self {
        Seam {
            inject: ALL_SIGNALS,
            also_trace: "",
            deadline: Duration::from_secs(60),
            also_inject: "",
        }
    }
}

impl Seam<'_> {
    /// Runs `cmd` under the seam; returns its output and every traced call
    /// (one strace line each). `None`, with a printed reason, without
    /// strace. Panics if the command outlives the deadline.
    pub fn run(&self, cmd: &Command) -> Option<(Output, Vec<String>)> {
        if !have_tool("strace", "-V") {
            return None;
        }
        let log = tempfile::NamedTempFile::new().unwrap();
        let mut trace = ALL_SIGNALS.to_owned();
        if !self.also_trace.is_empty() {
            trace = format!("{trace},{}", self.also_trace);
        }
        let mut child = Command::new("strace")
            .args(["-f", "-qq", "-o"])
            .arg(log.path())
            .args(["-e", &format!("trace={trace}")])
            .args(["-e", &format!("inject={}:error=EPERM", self.inject)])
            .args(if self.also_inject.is_empty() {
                vec![]
            } else {
                vec!["-e".to_string(), format!("inject={}", self.also_inject)]
            })
            .arg(cmd.get_program())
            .args(cmd.get_args())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while child.try_wait().unwrap().is_none() {
            if started.elapsed() > self.deadline {
                // Killing strace alone would detach its tracees and leave
                // them running: kill them first, by PID, leaves first.
                for pid in descendants(child.id()).into_iter().rev() {
                    let _ = Command::new("kill")
                        .args(["-KILL", &pid.to_string()])
                        .status();
                }
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{:?} {:?} was still running after {:?}: it blocked",
                    cmd.get_program(),
                    cmd.get_args().collect::<Vec<_>>(),
                    self.deadline
                );
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let out = child.wait_with_output().unwrap();
        let log = std::fs::read_to_string(log.path()).unwrap_or_default();
        let calls = log
            .lines()
            .filter(|l| !l.contains("+++") && !l.contains("---"))
            .map(str::to_owned)
            .collect();
        Some((out, calls))
    }
}

/// Every process below `pid` (children first, then theirs), from
/// `/proc/<pid>/task/*/children`.
fn descendants(pid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    let mut queue = vec![pid];
    while let Some(p) = queue.pop() {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{p}/task")) else {
            continue;
        };
        for task in tasks.flatten() {
            let children =
                std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            for c in children.split_whitespace().filter_map(|c| c.parse().ok()) {
                found.push(c);
                queue.push(c);
            }
        }
    }
    found
}

/// The signal-sending calls among strace lines (`kill(pid, 0)` probes and
/// other traced calls left out).
pub fn signals_in(calls: &[String]) -> Vec<String> {
    let signalling: Vec<&str> = ALL_SIGNALS.split(',').collect();
    calls
        .iter()
        .filter(|l| {
            // `strace -f` prefixes each line with the caller's PID.
            let call = match l.split_once(' ') {
                Some((pid, rest)) if pid.bytes().all(|b| b.is_ascii_digit()) => rest,
                _ => l.as_str(),
            };
            let name = call.split('(').next().unwrap_or_default().trim();
            // The signal argument: third for tgkill, second otherwise; 0 is
            // a probe (pidfd_send_signal's trailing flags 0 is not).
            let args = call.split_once('(').map(|(_, a)| a).unwrap_or_default();
            let args = args.split(')').next().unwrap_or_default();
            let sig_index = if name == "tgkill" { 2 } else { 1 };
            let sig = args.split(", ").nth(sig_index).unwrap_or_default().trim();
            signalling.contains(&name) && sig != "0"
        })
        .cloned()
        .collect()
}
