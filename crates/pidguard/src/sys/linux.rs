//! Linux: `O_TMPFILE` + `linkat`, and `/proc` for process state.

use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use rustix::fs::{AtFlags, Mode, OFlags, CWD};
use rustix::io::Errno;

use super::{create_named_temp, link_named_temp, ProcState, Unnamed};
use crate::pid::Pid;

/// Whether `linkat(fd, "", AT_EMPTY_PATH)` is allowed for this process (it
/// needs `CAP_DAC_READ_SEARCH` on most kernels); learnt on first use.
static EMPTY_PATH_DENIED: AtomicBool = AtomicBool::new(false);

/// Creates the new PID file unnamed in `dir` (`O_TMPFILE`), falling back to a
/// temporary name on filesystems that do not support it.
pub(crate) fn create_unnamed(dir: &Path, final_path: &Path, mode: u32) -> io::Result<Unnamed> {
    match rustix::fs::open(
        dir,
        OFlags::TMPFILE | OFlags::RDWR | OFlags::CLOEXEC,
        Mode::from_raw_mode(mode as _),
    ) {
        Ok(fd) => Ok(Unnamed { fd, temp: None }),
        Err(Errno::OPNOTSUPP | Errno::ISDIR | Errno::INVAL) => {
            create_named_temp(dir, final_path, mode)
        }
        Err(e) => Err(e.into()),
    }
}

/// Gives the unnamed file its name. Fails with `EEXIST` when the path exists.
pub(crate) fn link_unnamed(u: &mut Unnamed, path: &Path) -> io::Result<()> {
    if u.temp.is_some() {
        return link_named_temp(u, path);
    }
    if !EMPTY_PATH_DENIED.load(Ordering::Relaxed) {
        match rustix::fs::linkat(&u.fd, "", CWD, path, AtFlags::EMPTY_PATH) {
            Ok(()) => return Ok(()),
            Err(Errno::NOENT | Errno::PERM) => {
                // ENOENT here usually means "not allowed" (no
                // CAP_DAC_READ_SEARCH); the /proc route below works without
                // it, and reports a vanished directory as ENOENT too.
                EMPTY_PATH_DENIED.store(true, Ordering::Relaxed);
            }
            Err(e) => return Err(e.into()),
        }
    }
    let proc_path = format!("/proc/self/fd/{}", u.fd.as_raw_fd());
    match rustix::fs::linkat(CWD, proc_path.as_str(), CWD, path, AtFlags::SYMLINK_FOLLOW) {
        Ok(()) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// The process's state from `/proc/<pid>/stat` (a zombie counts as exited).
pub(crate) fn process_state(pid: Pid) -> ProcState {
    let path = format!("/proc/{pid}/stat");
    let data = match std::fs::read(&path) {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return ProcState::Gone,
        Err(_) => return ProcState::Unknown,
    };
    // The command name may contain anything, including ") "; the state is
    // the first field after the last ')'.
    let Some(close) = data.iter().rposition(|&b| b == b')') else {
        return ProcState::Unknown;
    };
    match data.get(close + 2) {
        Some(b'Z') | Some(b'X') | Some(b'x') => ProcState::Zombie,
        Some(_) => ProcState::Live,
        None => ProcState::Unknown,
    }
}

/// Facts about a process from `/proc`, for identity checks.
pub(crate) mod proc {
    use std::os::unix::fs::MetadataExt;
    use std::time::{Duration, SystemTime};

    use crate::pid::Pid;

    /// The `stat` line's fields after the command name (field 3 onwards).
    fn stat_fields(pid: Pid) -> Option<Vec<String>> {
        let data = std::fs::read(format!("/proc/{pid}/stat")).ok()?;
        let close = data.iter().rposition(|&b| b == b')')?;
        let rest = String::from_utf8_lossy(data.get(close + 2..)?).into_owned();
        Some(rest.split_ascii_whitespace().map(str::to_owned).collect())
    }

    /// Seconds since boot, from `/proc/uptime`.
    fn uptime() -> Option<Duration> {
        let s = std::fs::read_to_string("/proc/uptime").ok()?;
        let secs: f64 = s.split_ascii_whitespace().next()?.parse().ok()?;
        Some(Duration::from_secs_f64(secs))
    }

    /// When the system booted, on the wall clock.
    pub(crate) fn boot_time() -> Option<SystemTime> {
        SystemTime::now().checked_sub(uptime()?)
    }

    /// When the process started, on the wall clock (precise to a clock tick,
    /// 10 ms on most systems): now minus its age, which is measured on the
    /// boot-time clock and so does not depend on `/proc/stat`'s whole-second
    /// `btime`.
    pub(crate) fn start_time(pid: Pid) -> Option<SystemTime> {
        let fields = stat_fields(pid)?;
        // Field 22 (starttime) is index 19 after the name (fields 3..).
        let ticks: u64 = fields.get(19)?.parse().ok()?;
        let hz = rustix::param::clock_ticks_per_second().max(1);
        let started = Duration::from_secs_f64(ticks as f64 / hz as f64);
        let age = uptime()?.checked_sub(started).unwrap_or_default();
        SystemTime::now().checked_sub(age)
    }

    /// Whether the process is a kernel thread (`PF_KTHREAD` in field 9).
    pub(crate) fn is_kernel_thread(pid: Pid) -> Option<bool> {
        const PF_KTHREAD: u64 = 0x0020_0000;
        let flags: u64 = stat_fields(pid)?.get(6)?.parse().ok()?;
        Some(flags & PF_KTHREAD != 0)
    }

    /// Whether the process has an open descriptor on the inode `(dev, ino)`.
    /// `None` when its descriptors cannot be read (another user's process).
    pub(crate) fn holds_inode(pid: Pid, dev: u64, ino: u64) -> Option<bool> {
        let dir = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
        for entry in dir.flatten() {
            if let Ok(md) = std::fs::metadata(entry.path()) {
                if md.dev() == dev && md.ino() == ino {
                    return Some(true);
                }
            }
        }
        Some(false)
    }

    /// The `(dev, ino)` of the process's executable.
    pub(crate) fn exe_id(pid: Pid) -> Option<(u64, u64)> {
        let md = std::fs::metadata(format!("/proc/{pid}/exe")).ok()?;
        Some((md.dev(), md.ino()))
    }

    /// The process's real user ID.
    pub(crate) fn uid(pid: Pid) -> Option<u32> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let line = status.lines().find(|l| l.starts_with("Uid:"))?;
        line.split_ascii_whitespace().nth(1)?.parse().ok()
    }

    /// The process's command name (`comm`, at most 15 bytes).
    pub(crate) fn comm(pid: Pid) -> Option<String> {
        let s = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
        Some(s.trim_end_matches('\n').to_owned())
    }

    /// Whether the process is in this process's PID namespace. `None` when
    /// that cannot be read.
    pub(crate) fn same_pid_namespace(pid: Pid) -> Option<bool> {
        let theirs = std::fs::metadata(format!("/proc/{pid}/ns/pid")).ok()?;
        let ours = std::fs::metadata("/proc/self/ns/pid").ok()?;
        Some(theirs.dev() == ours.dev() && theirs.ino() == ours.ino())
    }
}

/// `pidfd_open(2)`; `Ok(None)` where the kernel has no pidfds.
pub(crate) fn pidfd_open(pid: Pid) -> io::Result<Option<std::os::fd::OwnedFd>> {
    match rustix::process::pidfd_open(pid.to_rustix(), rustix::process::PidfdFlags::empty()) {
        Ok(fd) => Ok(Some(fd)),
        Err(Errno::NOSYS) => Ok(None),
        Err(Errno::SRCH) => Err(io::ErrorKind::NotFound.into()),
        Err(e) => Err(e.into()),
    }
}

/// Waits up to `timeout` (forever for `None`) for a pidfd to report exit.
pub(crate) fn pidfd_exited(
    fd: &std::os::fd::OwnedFd,
    timeout: Option<std::time::Duration>,
) -> bool {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    let deadline = timeout.map(|t| std::time::Instant::now() + t);
    loop {
        let left = deadline.map(|d| d.saturating_duration_since(std::time::Instant::now()));
        let ts = left.map(|l| Timespec {
            tv_sec: l.as_secs() as _,
            tv_nsec: l.subsec_nanos() as _,
        });
        let mut fds = [PollFd::new(fd, PollFlags::IN)];
        match poll(&mut fds, ts.as_ref()) {
            Ok(0) => return false,
            Ok(_) => return true,
            Err(Errno::INTR) => continue,
            // A pidfd that cannot be polled: treat as exited only if the
            // caller re-checks; report "not yet" and let them time out.
            Err(_) => return false,
        }
    }
}
