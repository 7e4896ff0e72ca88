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

/// The process's state from `/proc/<pid>/stat` (a zombie counts as exited),
/// with the facts identity checks need, read in the same go.
///
/// A zombie *leader* whose other threads still run (its main thread called
/// `pthread_exit`) is a live process. `/proc/<pid>` missing while
/// `kill(pid, 0)` said the process exists means it is hidden from us
/// (`hidepid=2`, a `/proc` of another namespace, none mounted): that is
/// [`ProcState::Unknown`], never "gone".
pub(crate) fn process_state(pid: Pid) -> (ProcState, Option<proc::ProcStat>) {
    match proc::stat_result(pid) {
        Ok(st) if st.zombie && st.threads <= 1 => (ProcState::Zombie, Some(st)),
        Ok(st) => (ProcState::Live, Some(st)),
        Err(Errno::NOENT | Errno::SRCH) => {
            // Exited between the kill probe and now, or hidden: ask again.
            match exists(pid) {
                Some(false) => (ProcState::Gone, None),
                _ => (ProcState::Unknown, None),
            }
        }
        Err(_) => (ProcState::Unknown, None),
    }
}

/// Whether a process or thread with this PID exists, asked without
/// `kill(2)` (whose `EPERM` cannot tell another user's process from a
/// probe refused for any other reason): `pidfd_open(2)` needs no
/// permission, fails with `ESRCH` for no such process and `EINVAL` for a
/// thread that is not a leader. `None` without pidfds.
pub(crate) fn exists(pid: Pid) -> Option<bool> {
    match rustix::process::pidfd_open(pid.to_rustix(), rustix::process::PidfdFlags::empty()) {
        Ok(_) | Err(Errno::INVAL) => Some(true),
        Err(Errno::SRCH) => Some(false),
        Err(_) => None,
    }
}

/// Whether a POSIX (`fcntl`/`lockf`) or OFD lock is held on any byte of
/// the file, by anyone: asked of the kernel with `F_OFD_GETLK` for a write
/// lock on the whole file, which conflicts with every such lock but our
/// own descriptor's (pidguard takes none), whichever process and PID
/// namespace holds it (`/proc/locks` shows a lock only when its holder is
/// visible in the reader's namespace, and lines can be skipped while other
/// locks come and go). One system call, no parsing. `flock` locks are not
/// seen here (they are a separate kind on Linux: [`super::is_locked`]
/// probes them).
///
/// `None` when the kernel cannot answer (`EINVAL`: a kernel before 3.15;
/// `ENOLCK` and the like from a network filesystem), and on 32-bit
/// targets, where `F_OFD_GETLK` takes a `struct flock64` through
/// `fcntl64`: the caller then reads `/proc/locks` instead.
pub(crate) fn record_lock_held(fd: std::os::fd::BorrowedFd<'_>) -> Option<bool> {
    #[cfg(target_pointer_width = "64")]
    {
        // SAFETY: `flock` is plain integers; all zero is a valid value
        // (l_start 0 and l_len 0: the whole file; l_pid 0, which
        // F_OFD_GETLK requires).
        let mut fl: libc::flock = unsafe { std::mem::zeroed() };
        fl.l_type = libc::F_WRLCK as _;
        fl.l_whence = libc::SEEK_SET as _;
        // SAFETY: `fd` is an open descriptor for the call's duration and
        // `fl` a live `struct flock` the kernel reads and fills.
        let r = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_OFD_GETLK, &mut fl) };
        if r == -1 {
            return None;
        }
        Some(i32::from(fl.l_type) != libc::F_UNLCK)
    }
    #[cfg(not(target_pointer_width = "64"))]
    {
        let _ = fd;
        None
    }
}

/// Facts about a process from `/proc`, for identity checks.
pub(crate) mod proc {
    use std::os::unix::fs::MetadataExt;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Mutex;
    use std::time::{Duration, SystemTime};

    use rustix::fs::{Mode, OFlags};
    use rustix::io::Errno;

    use crate::pid::Pid;

    /// Whether `/proc` is this process's: mounted for its PID namespace, so
    /// that a PID read there is the process `kill(2)` and `pidfd_open(2)`
    /// reach by that number (`/proc/self` names our own PID). A `/proc` of
    /// another PID namespace (`unshare --pid` without `--mount-proc`)
    /// numbers other processes: every fact read there is then unproved
    /// (`EXDEV`), never evidence about the PID a file names. `ENOENT` when
    /// `/proc/self` cannot be read (no `/proc`, or one in which this
    /// process is not visible).
    ///
    /// Looked up once per process: the answer is kept with the PID it was
    /// found for, and a process with another PID (a child forked after
    /// `unshare(CLONE_NEWPID)` or `setns`, which lives in another PID
    /// namespace than the `/proc` its parent checked) looks again rather
    /// than inherit its parent's answer.
    pub(crate) fn ours() -> Result<(), Errno> {
        ours_as().map(|_| ())
    }

    /// [`ours`], and the caller's PID it was decided for.
    fn ours_as() -> Result<u32, Errno> {
        /// `pid << 32 | answer`: 0 not looked up yet, `u32::MAX` ours,
        /// otherwise the errno. One word: a reader never sees one
        /// process's PID with another's answer.
        static OURS: AtomicU64 = AtomicU64::new(0);
        let me = rustix::process::getpid().as_raw_nonzero().get().unsigned_abs();
        let cached = OURS.load(Ordering::Relaxed);
        if cached >> 32 == u64::from(me) {
            match cached as u32 {
                0 => {}
                u32::MAX => return Ok(me),
                e => return Err(Errno::from_raw_os_error(e as i32)),
            }
        }
        let answer = proc_self_is(me);
        let code = match answer {
            Ok(()) => u32::MAX,
            // Never 0: errno values are positive.
            Err(e) => e.raw_os_error().unsigned_abs(),
        };
        OURS.store(u64::from(me) << 32 | u64::from(code), Ordering::Relaxed);
        answer.map(|()| me)
    }

    /// Whether `/proc/self` names `me`: [`ours`] without the memory.
    fn proc_self_is(me: u32) -> Result<(), Errno> {
        let link = rustix::fs::readlink("/proc/self", Vec::new())?;
        if link.to_bytes() == me.to_string().as_bytes() {
            Ok(())
        } else {
            Err(Errno::XDEV)
        }
    }

    /// The PID `pidfd` refers to, as this `/proc` numbers it (the `Pid:`
    /// line of `/proc/self/fdinfo/<pidfd>`, Linux 5.10 and later): `None`
    /// when the line is absent or unreadable; 0 when the process is not
    /// visible in `/proc`'s namespace, -1 when it has exited.
    pub(crate) fn pidfd_pid(pidfd: &std::os::fd::OwnedFd) -> Option<i32> {
        use std::os::fd::AsRawFd;
        let mut buf = [0u8; 512];
        let path = format!("/proc/self/fdinfo/{}", pidfd.as_raw_fd());
        let data = read_small(path.as_str(), &mut buf).ok()?;
        std::str::from_utf8(data)
            .ok()?
            .lines()
            .find_map(|l| l.strip_prefix("Pid:"))?
            .trim()
            .parse()
            .ok()
    }

    /// Reads a small file (a `/proc` entry) into `buf` with one `read`:
    /// open, read, close, and nothing else.
    pub(crate) fn read_small<P: rustix::path::Arg>(
        path: P,
        buf: &mut [u8],
    ) -> Result<&[u8], Errno> {
        let fd = rustix::fs::open(path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())?;
        let n = rustix::io::read(&fd, &mut *buf)?;
        Ok(&buf[..n])
    }

    /// `/proc/<pid>/<leaf>`, formatted on the stack (list reads several of
    /// these per file; no allocation for each).
    pub(crate) struct ProcPath {
        buf: [u8; 48],
        /// The length without the NUL; `None` if the path did not fit.
        len: Option<usize>,
    }

    impl ProcPath {
        pub(crate) fn new(pid: Pid, leaf: &str) -> ProcPath {
            use std::io::Write;
            let mut buf = [0u8; 48];
            let mut w = &mut buf[..];
            let fits = write!(w, "/proc/{pid}/{leaf}").is_ok() && !w.is_empty();
            // What is left of `buf` after the path holds its NUL.
            let len = fits.then(|| 48 - w.len());
            ProcPath { buf, len }
        }

        /// The path. A path that did not fit fails closed (`ENAMETOOLONG`,
        /// never read as "no such process").
        pub(crate) fn get(&self) -> Result<&std::ffi::CStr, Errno> {
            let len = self.len.ok_or(Errno::NAMETOOLONG)?;
            std::ffi::CStr::from_bytes_with_nul(&self.buf[..=len]).map_err(|_| Errno::INVAL)
        }
    }

    /// What liveness and identity checks need from `/proc/<pid>/stat`,
    /// read once.
    #[derive(Clone, Copy, Debug)]
    pub(crate) struct ProcStat {
        /// Field 3, `state`, is Z or X: exited, not reaped.
        pub(crate) zombie: bool,
        /// Field 9, `flags`.
        pub(crate) flags: u64,
        /// Field 20, `num_threads`.
        pub(crate) threads: u64,
        /// Field 22, `starttime`, in clock ticks since boot.
        pub(crate) start_ticks: u64,
    }

    /// Reads `/proc/<pid>/stat`. The command name may contain anything,
    /// including ") "; the fields after it start after the last ')'.
    pub(crate) fn stat_result(pid: Pid) -> Result<ProcStat, Errno> {
        ours()?;
        let mut buf = [0u8; 1024];
        let data = read_small(ProcPath::new(pid, "stat").get()?, &mut buf)?;
        let parse = || {
            let close = data.iter().rposition(|&b| b == b')')?;
            let rest = std::str::from_utf8(data.get(close + 2..)?).ok()?;
            let mut fields = rest.split_ascii_whitespace();
            // After the name: state is field 3; flags is field 9, starttime 22.
            let state = fields.next()?;
            let flags = fields.nth(5)?.parse().ok()?;
            let threads = fields.nth(10)?.parse().ok()?;
            let start_ticks = fields.nth(1)?.parse().ok()?;
            Some(ProcStat {
                zombie: matches!(state, "Z" | "X" | "x"),
                flags,
                threads,
                start_ticks,
            })
        };
        parse().ok_or(Errno::INVAL)
    }

    /// When the system booted, on the wall clock: now minus the boot clock
    /// (`CLOCK_BOOTTIME`, the clock `/proc/<pid>/stat`'s start times count
    /// on). Needs no `/proc/uptime` (absent under `subset=pid`). `None`
    /// only if the wall clock is before the boot clock's value.
    pub(crate) fn boot_time() -> Option<SystemTime> {
        use rustix::time::{clock_gettime, ClockId};
        let up = clock_gettime(ClockId::Boottime);
        let up = Duration::new(
            u64::try_from(up.tv_sec).ok()?,
            u32::try_from(up.tv_nsec).ok()?,
        );
        SystemTime::now().checked_sub(up)
    }

    /// When the process started, on the wall clock (precise to a clock tick,
    /// 10 ms on most systems): boot time plus its start on the boot clock,
    /// which does not depend on `/proc/stat`'s whole-second `btime`.
    pub(crate) fn start_time_of(st: &ProcStat) -> Option<SystemTime> {
        let hz = rustix::param::clock_ticks_per_second().max(1);
        let started = Duration::from_secs_f64(st.start_ticks as f64 / hz as f64);
        boot_time()?.checked_add(started)
    }

    /// When the process started (see [`start_time_of`]).
    pub(crate) fn start_time(pid: Pid) -> Option<SystemTime> {
        start_time_of(&stat_result(pid).ok()?)
    }

    /// Whether the process is a kernel thread (`PF_KTHREAD` in `flags`).
    pub(crate) fn is_kernel_thread_of(st: &ProcStat) -> bool {
        const PF_KTHREAD: u64 = 0x0020_0000;
        st.flags & PF_KTHREAD != 0
    }

    /// Whether the process holds a `flock` on the inode `(dev, ino)` through
    /// a descriptor of its own: one of its descriptors on that inode shows
    /// a `lock:` line for a `FLOCK` in `/proc/<pid>/fdinfo/<fd>` (the locks
    /// of that open file description). A descriptor merely open on the file
    /// (`sleep 30 < app.pid`) is not a lock. `Err` when its descriptors
    /// cannot be read (another user's process, `hidepid`, no `/proc`).
    ///
    /// A process whose main thread exited (`pthread_exit`, the leader a
    /// zombie while other threads run) shows no descriptors under
    /// `/proc/<pid>`: they are read through one of its live threads
    /// (`/proc/<pid>/task/<tid>`).
    pub(crate) fn holds_flock(pid: Pid, dev: u64, ino: u64) -> Result<bool, Errno> {
        ours()?;
        let io = |e: std::io::Error| Errno::from_io_error(&e).unwrap_or(Errno::IO);
        let leader = format!("/proc/{pid}");
        if holds_flock_in(&leader, dev, ino)? {
            return Ok(true);
        }
        if std::fs::read_dir(format!("{leader}/fd"))
            .map_err(io)?
            .next()
            .is_some()
        {
            return Ok(false);
        }
        // No descriptors: the leader may have exited; its threads share
        // the descriptor table.
        for task in std::fs::read_dir(format!("{leader}/task"))
            .map_err(io)?
            .flatten()
        {
            if task.file_name().to_str() == Some(leader.trim_start_matches("/proc/")) {
                continue;
            }
            let base = task.path();
            if holds_flock_in(&base.to_string_lossy(), dev, ino).unwrap_or(false) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// [`holds_flock`] for the descriptors under `base` (`/proc/<pid>` or
    /// `/proc/<pid>/task/<tid>`).
    fn holds_flock_in(base: &str, dev: u64, ino: u64) -> Result<bool, Errno> {
        let dir = std::fs::read_dir(format!("{base}/fdinfo"))
            .map_err(|e| Errno::from_io_error(&e).unwrap_or(Errno::IO))?;
        let ino_line = format!("ino:\t{ino}\n");
        let lock_tail = format!(":{ino} ");
        let mut buf = [0u8; 4096];
        for entry in dir {
            let entry = entry.map_err(|e| Errno::from_io_error(&e).unwrap_or(Errno::IO))?;
            let Ok(info) = read_small(entry.path().as_path(), &mut buf) else {
                // Closed since the directory was read.
                continue;
            };
            let info = String::from_utf8_lossy(info);
            if !info.contains(&ino_line) {
                continue;
            }
            let locked = info.lines().any(|l| {
                l.starts_with("lock:")
                    && l.contains(" FLOCK ")
                    && !l.contains("->")
                    && l.contains(&lock_tail)
            });
            if !locked {
                continue;
            }
            // The same inode number on the same device.
            let fd = format!("{base}/fd/{}", entry.file_name().to_string_lossy());
            if let Ok(md) = std::fs::metadata(fd) {
                if md.dev() == dev && md.ino() == ino {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    pub(crate) use crate::sys::ProcStatus;

    /// Reads `/proc/<pid>/status`.
    pub(crate) fn status_result(pid: Pid) -> Result<ProcStatus, Errno> {
        ours()?;
        let mut buf = [0u8; 4096];
        let data = read_small(ProcPath::new(pid, "status").get()?, &mut buf)?;
        // `Name:` is the command name, any bytes: the other lines are ASCII.
        let text = String::from_utf8_lossy(data);
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name))
                .map(|rest| rest.split_ascii_whitespace())
        };
        let first = |name: &str| field(name).and_then(|mut f| f.next()?.parse::<i64>().ok());
        let (Some(tgid), Some(ppid), Some(uid)) = (
            first("Tgid:").and_then(|v| i32::try_from(v).ok()),
            first("PPid:").and_then(|v| i32::try_from(v).ok()),
            first("Uid:").and_then(|v| u32::try_from(v).ok()),
        ) else {
            return Err(Errno::INVAL);
        };
        let mut ids = field("Uid:").ok_or(Errno::INVAL)?.map(|v| v.parse::<u32>());
        let mut id = || ids.next().and_then(Result::ok).ok_or(Errno::INVAL);
        let uids = [id()?, id()?, id()?];
        let nspid = field("NSpid:")
            .map(|f| f.filter_map(|p| p.parse().ok()).collect())
            .unwrap_or_default();
        Ok(ProcStatus {
            tgid,
            ppid,
            uid,
            uids,
            nspid,
        })
    }

    /// Where `/proc/<pid>/exe` points: the executable's path as the process
    /// sees it, ending in ` (deleted)` when the file was removed or
    /// replaced since it started (a package upgrade).
    pub(crate) fn exe_link(pid: Pid) -> Result<std::path::PathBuf, Errno> {
        ours()?;
        let target = rustix::fs::readlink(ProcPath::new(pid, "exe").get()?, Vec::new())?;
        use std::os::unix::ffi::OsStringExt;
        Ok(std::ffi::OsString::from_vec(target.into_bytes()).into())
    }

    /// Whether two processes run the same executable (the same inode
    /// behind `/proc/<pid>/exe`): a forked child that has not called
    /// `exec` yet runs its parent's. `false` when either cannot be read.
    pub(crate) fn same_exe(a: Pid, b: Pid) -> bool {
        if ours().is_err() {
            return false;
        }
        match (
            std::fs::metadata(format!("/proc/{a}/exe")),
            std::fs::metadata(format!("/proc/{b}/exe")),
        ) {
            (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
            _ => false,
        }
    }

    /// Every PID listed in `/proc` (thread-group leaders), for the rare
    /// search for a lock's holder that the lock table does not name.
    pub(crate) fn all_pids() -> Vec<Pid> {
        if ours().is_err() {
            return Vec::new();
        }
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        dir.flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            .filter_map(Pid::new)
            .collect()
    }

    /// The text of `/proc/locks`, read in large pieces: the kernel hands
    /// out at most a page per `read`, and `read_to_string`'s first reads of
    /// 32 bytes and up cost a system call each (several per file in `list`).
    fn lock_table() -> std::io::Result<String> {
        use std::io::Read;
        // Not `read_to_string`: on a `File` it also asks for the size and
        // the position (statx, lseek), which /proc does not know anyway.
        let mut f = std::fs::File::open("/proc/locks")?;
        let mut buf = vec![0u8; 16 * 1024];
        let mut len = 0;
        loop {
            if len == buf.len() {
                buf.resize(buf.len() * 2, 0);
            }
            match f.read(&mut buf[len..]) {
                Ok(0) => break,
                Ok(n) => len += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        buf.truncate(len);
        String::from_utf8(buf).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
    }

    /// The PIDs `/proc/locks` names as holding a `flock` (exclusive or
    /// shared) on inode `ino`, as this PID namespace numbers them. Not
    /// proof: the number is the process that took the lock, which may have
    /// exited since (its descriptor inherited) and the number reused.
    pub(crate) fn flock_pids(ino: u64) -> Vec<Pid> {
        if ours().is_err() {
            return Vec::new();
        }
        let Ok(locks) = lock_table() else {
            return Vec::new();
        };
        locks
            .lines()
            .filter_map(|line| flock_on(line, ino))
            .filter_map(|(_, pid)| Pid::new(pid?))
            .collect()
    }

    /// A `/proc/locks` line for a `flock` held on inode `ino` (any device:
    /// `/proc/locks` and `stat` may number devices differently): whether
    /// it is exclusive, and the PID shown. `None` for any other line.
    /// "1: FLOCK  ADVISORY  WRITE 1234 00:2d:5678 0 EOF"; waiters
    /// ("1: -> FLOCK …") hold nothing.
    fn flock_on(line: &str, ino: u64) -> Option<(bool, Option<i32>)> {
        let f: Vec<&str> = line.split_whitespace().collect();
        let on_ino = f
            .get(5)
            .and_then(|d| d.rsplit(':').next())
            .and_then(|i| i.parse::<u64>().ok())
            == Some(ino);
        (f.get(1) == Some(&"FLOCK") && on_ino).then(|| {
            (
                f.get(3) == Some(&"WRITE"),
                f.get(4).and_then(|p| p.parse().ok()),
            )
        })
    }

    /// Whether `/proc/locks` shows a POSIX (`fcntl`/`lockf`) or OFD lock
    /// held on inode `ino` (any device: a collision only makes a file look
    /// held, never free). `flock` does not see those locks, but a holder
    /// that took one (or inherited an OFD lock) runs: its file is never
    /// stale, removed or taken over.
    ///
    /// `/proc/locks` is not a snapshot: the kernel hands it out a page per
    /// `read`, and a lock released between two pages shifts the rest, so
    /// one line can be skipped while other processes take and drop locks
    /// (seen under a loaded test run). A lock not seen is looked for again,
    /// up to [`RECORD_LOCK_READS`] passes; a line is never invented, so a
    /// pass that finds it is proof.
    pub(crate) fn record_locks_on(ino: u64) -> bool {
        (0..RECORD_LOCK_READS).any(|_| {
            let Ok(locks) = lock_table() else {
                return false;
            };
            locks.lines().any(|line| {
                let f: Vec<&str> = line.split_whitespace().collect();
                matches!(f.get(1), Some(&"POSIX" | &"OFDLCK"))
                    && f.get(5)
                        .and_then(|d| d.rsplit(':').next())
                        .and_then(|i| i.parse::<u64>().ok())
                        == Some(ino)
            })
        })
    }

    /// Passes over `/proc/locks` before a POSIX or OFD lock counts as
    /// absent (see [`record_locks_on`]).
    const RECORD_LOCK_READS: usize = 3;

    /// The process's real user ID.
    pub(crate) fn uid(pid: Pid) -> Option<u32> {
        status_result(pid).ok().map(|s| s.uid)
    }

    /// The process's command name (`comm`, at most 15 bytes, any bytes but
    /// NUL: not necessarily UTF-8).
    pub(crate) fn comm(pid: Pid) -> Option<Vec<u8>> {
        ours().ok()?;
        let mut s = std::fs::read(format!("/proc/{pid}/comm")).ok()?;
        if s.last() == Some(&b'\n') {
            s.pop();
        }
        Some(s)
    }

    /// Why [`comm`] could not be read.
    pub(crate) fn comm_errno(pid: Pid) -> Option<Errno> {
        if let Err(e) = ours() {
            return Some(e);
        }
        let e = std::fs::read(format!("/proc/{pid}/comm")).err()?;
        Errno::from_io_error(&e)
    }

    /// The process's command line, arguments joined by spaces.
    pub(crate) fn cmdline(pid: Pid) -> Option<std::ffi::OsString> {
        use std::os::unix::ffi::OsStringExt;
        ours().ok()?;
        // The first 4 KiB are enough to show.
        let mut buf = [0u8; 4096];
        let raw = read_small(ProcPath::new(pid, "cmdline").get().ok()?, &mut buf).ok()?;
        let mut line = Vec::with_capacity(raw.len());
        for part in raw.split(|&b| b == 0).filter(|p| !p.is_empty()) {
            if !line.is_empty() {
                line.push(b' ');
            }
            line.extend_from_slice(part);
        }
        Some(std::ffi::OsString::from_vec(line))
    }

    /// The visible `flock` locks on inode `ino`: (any exclusive, any shared).
    /// `None` when `/proc/locks` cannot be read.
    pub(crate) fn flocks_on(ino: u64) -> Option<(bool, bool)> {
        ours().ok()?;
        let locks = lock_table().ok()?;
        let (mut exclusive, mut shared) = (false, false);
        for (write, _) in locks.lines().filter_map(|l| flock_on(l, ino)) {
            if write {
                exclusive = true;
            } else {
                shared = true;
            }
        }
        Some((exclusive, shared))
    }

    /// Whether the process is in this process's PID namespace; `Err` when
    /// that cannot be read.
    pub(crate) fn same_pid_namespace_result(pid: Pid) -> Result<bool, Errno> {
        // The link's text ("pid:[4026531836]") names the namespace; reading
        // it costs half of a `stat` through it, which instantiates the
        // namespace's inode.
        let me = ours_as()?;
        // Ours, kept with the PID it was read for, as `ours` keeps its
        // answer: a child forked after `unshare(CLONE_NEWPID)` is in
        // another namespace than its parent.
        static OURS: Mutex<Option<(u32, Vec<u8>)>> = Mutex::new(None);
        let theirs = ns_link(ProcPath::new(pid, "ns/pid").get()?)?;
        let mut ours = OURS.lock().unwrap_or_else(|p| p.into_inner());
        match &*ours {
            Some((pid, link)) if *pid == me => Ok(theirs == *link),
            _ => {
                let link = ns_link("/proc/self/ns/pid").map_err(|_| Errno::NOENT)?;
                let same = theirs == link;
                *ours = Some((me, link));
                Ok(same)
            }
        }
    }

    /// The target of a `/proc/…/ns/…` link.
    fn ns_link<P: rustix::path::Arg>(path: P) -> Result<Vec<u8>, Errno> {
        let target = rustix::fs::readlink(path, Vec::with_capacity(32))?;
        Ok(target.into_bytes())
    }
}

/// `pidfd_open(2)`; `Ok(None)` where the kernel has no pidfds.
///
/// The pidfd is tied to the `/proc` facts read about `pid`: its `Pid:`
/// line (as `/proc` numbers it) must be `pid`, or the process pinned is
/// not the one `/proc/<pid>` described (a `/proc` of another PID
/// namespace) and nothing is pinned.
pub(crate) fn pidfd_open(pid: Pid) -> io::Result<Option<std::os::fd::OwnedFd>> {
    pidfd_open_read(pid).map(|opened| opened.map(|(fd, _)| fd))
}

/// [`pidfd_open`], with the `Pid:` line the pidfd was checked against
/// (`None`: absent or unreadable), for a caller that needs it present
/// (the kernel identity): read once, not twice.
pub(crate) fn pidfd_open_read(
    pid: Pid,
) -> io::Result<Option<(std::os::fd::OwnedFd, Option<i32>)>> {
    match rustix::process::pidfd_open(pid.to_rustix(), rustix::process::PidfdFlags::empty()) {
        Ok(fd) => match proc::pidfd_pid(&fd) {
            None => Ok(Some((fd, None))),
            Some(n) if n == pid.get() => Ok(Some((fd, Some(n)))),
            Some(-1) => Err(io::ErrorKind::NotFound.into()),
            Some(n) => Err(io::Error::other(format!(
                "PID {pid} here is PID {n} in /proc's numbering: /proc is of another PID \
                 namespace, so what it says about PID {pid} is not about this process; \
                 nothing was signalled (mount a /proc for this namespace)"
            ))),
        },
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

/// The name of the network filesystem holding `dir`, if it is one on which
/// `flock` may be emulated or local to this host (NFS, SMB/CIFS, Ceph, AFS,
/// 9P, Lustre, Coda). Cached per directory for the life of the process.
pub(crate) fn network_fs(dir: &Path) -> Option<&'static str> {
    use std::sync::Mutex;
    static CACHE: Mutex<Vec<(std::path::PathBuf, Option<&'static str>)>> = Mutex::new(Vec::new());
    let mut cache = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, kind)) = cache.iter().find(|(d, _)| d == dir) {
        return *kind;
    }
    let kind = match rustix::fs::statfs(dir) {
        // f_type's width differs between architectures.
        #[allow(clippy::unnecessary_cast)]
        Ok(st) => network_fs_name(st.f_type as i64),
        // Not there yet (created on the way) or unreadable: judged later.
        Err(_) => return None,
    };
    if cache.len() < 64 {
        cache.push((dir.to_path_buf(), kind));
    }
    kind
}

/// The network filesystem with this `statfs` magic number, if any.
pub(crate) fn network_fs_name(magic: i64) -> Option<&'static str> {
    Some(match magic as u32 {
        0x6969 => "NFS",
        0x517B => "SMB",
        0xFF53_4D42 => "CIFS",
        0xFE53_4D42 => "SMB2",
        0x00C3_6400 => "Ceph",
        0x5346_414F => "AFS",
        0x0102_1997 => "9P",
        0x0BD0_0BD0 => "Lustre",
        0x7375_7245 => "Coda",
        _ => return None,
    })
}

/// Sends `signal` through the pidfd when there is one (the PID cannot have
/// been reused), else by PID.
pub(crate) fn send_signal(
    pidfd: Option<&std::os::fd::OwnedFd>,
    pid: Pid,
    signal: crate::signal::Signal,
) -> Result<(), Errno> {
    match pidfd {
        Some(fd) => rustix::process::pidfd_send_signal(fd, signal.to_rustix()),
        None => super::kill(pid, signal),
    }
}

/// The largest PID the kernel gives now (`/proc/sys/kernel/pid_max`).
pub(crate) fn read_pid_max() -> Option<u32> {
    let content = std::fs::read("/proc/sys/kernel/pid_max").ok()?;
    largest_pid_from_kernel(&content)
}

/// Converts the content of `/proc/sys/kernel/pid_max` (one more than the
/// largest PID) into the largest PID, clamped to `i32::MAX`.
fn largest_pid_from_kernel(content: &[u8]) -> Option<u32> {
    let text = std::str::from_utf8(content).ok()?;
    let value: u32 = text.trim().parse().ok()?;
    match value.checked_sub(1)? {
        0 => None,
        largest => Some(largest.min(i32::MAX as u32)),
    }
}

/// Where a fact about `pid` is read from, for messages: `/proc/<pid>/<leaf>`.
pub(crate) fn fact_source(pid: Pid, leaf: &str) -> String {
    format!("/proc/{pid}/{leaf}")
}

/// The `(device, inode)` of the process's executable (`stat` through
/// `/proc/<pid>/exe`: the running image, even when its path was replaced).
pub(crate) fn exe_inode(pid: Pid) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    proc::ours().ok()?;
    let md = std::fs::metadata(format!("/proc/{pid}/exe")).ok()?;
    Some((md.dev(), md.ino()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn largest_pid_from_the_kernels_pid_max() {
        assert_eq!(largest_pid_from_kernel(b"32768\n"), Some(32767));
        assert_eq!(largest_pid_from_kernel(b"4194304\n"), Some(4_194_303));
        assert_eq!(largest_pid_from_kernel(b"4294967295\n"), Some(i32::MAX as u32));
        assert_eq!(largest_pid_from_kernel(b"1\n"), None);
        assert_eq!(largest_pid_from_kernel(b"0\n"), None);
        assert_eq!(largest_pid_from_kernel(b"x\n"), None);
    }

    #[test]
    fn proc_paths_fit_for_every_pid_and_fail_closed_otherwise() {
        let max = Pid::new(i32::MAX).unwrap();
        for leaf in ["stat", "cmdline", "ns/pid"] {
            let p = proc::ProcPath::new(max, leaf);
            assert_eq!(
                p.get().unwrap().to_str().unwrap(),
                format!("/proc/2147483647/{leaf}")
            );
        }
        let long = "x".repeat(40);
        assert_eq!(
            proc::ProcPath::new(max, &long).get().unwrap_err(),
            Errno::NAMETOOLONG
        );
        // Exactly filling the buffer leaves no room for the NUL.
        let exact = "y".repeat(48 - "/proc/2147483647/".len());
        assert_eq!(
            proc::ProcPath::new(max, &exact).get().unwrap_err(),
            Errno::NAMETOOLONG
        );
    }

    #[test]
    fn this_proc_is_ours_and_a_pidfd_names_its_pid() {
        assert_eq!(proc::ours(), Ok(()));
        let me = Pid::current();
        let fd = pidfd_open(me).unwrap().expect("pidfds on the test machine");
        // Linux 5.10 and later show the line.
        if let Some(n) = proc::pidfd_pid(&fd) {
            assert_eq!(n, me.get());
        }
    }

    /// Issue 20's fork hazard: `proc::ours()` and our PID namespace are
    /// remembered, and a child inherits its parent's memory. A child forked
    /// after `unshare(CLONE_NEWPID)` lives in another PID namespace than
    /// the `/proc` its parent looked at, and must look again.
    ///
    /// A forked child C (single-threaded, so it may also unshare a user
    /// namespace where the test does not run as root) asks both questions,
    /// then unshares a PID and a mount namespace and forks G1, PID 1 there:
    /// on C's `/proc` (the test's) `/proc/self` is not G1's PID (EXDEV).
    /// G1 then mounts a `/proc` of its own and forks G2, which finds it
    /// ours, and G1 (PID 1) in its own namespace. Exit codes carry the
    /// answers back.
    #[test]
    fn a_child_forked_into_a_new_pid_namespace_looks_at_proc_again() {
        use rustix::io::Errno;
        // What the children report (their exit codes).
        const PASSED: i32 = 0;
        const NO_NAMESPACES: i32 = 99;
        const G1_INHERITED: i32 = 10;
        const G2_NOT_OURS: i32 = 20;
        const G2_WRONG_NAMESPACE: i32 = 21;
        const SETUP: i32 = 30;
        // Both answers in the parent first: C inherits them.
        assert_eq!(proc::ours(), Ok(()));
        assert_eq!(proc::same_pid_namespace_result(Pid::current()), Ok(true));
        /// Forks; the child runs `body` and exits with its code. Returns
        /// the child's exit code (or `SETUP` when it did not exit).
        fn forked(body: impl FnOnce() -> i32) -> i32 {
            // SAFETY: the child only makes system calls and the checks
            // under test (which allocate: glibc's fork makes malloc
            // usable in the child), and leaves with _exit, never
            // returning into the test harness.
            unsafe {
                match libc::fork() {
                    -1 => SETUP,
                    0 => libc::_exit(body()),
                    child => {
                        let mut status = 0;
                        if libc::waitpid(child, &mut status, 0) != child
                            || !libc::WIFEXITED(status)
                        {
                            return SETUP;
                        }
                        libc::WEXITSTATUS(status)
                    }
                }
            }
        }
        let code = forked(|| {
            // C: the answers it inherited are right for it.
            if proc::ours() != Ok(()) {
                return SETUP;
            }
            let ns = libc::CLONE_NEWPID | libc::CLONE_NEWNS;
            // SAFETY: plain system calls.
            let unshared = unsafe {
                libc::unshare(ns) == 0 || libc::unshare(ns | libc::CLONE_NEWUSER) == 0
            };
            if !unshared {
                return NO_NAMESPACES;
            }
            forked(|| {
                // G1, PID 1 of the new namespace, on C's /proc.
                if proc::ours() != Err(Errno::XDEV) {
                    return G1_INHERITED;
                }
                // SAFETY: plain system calls, on this mount namespace.
                let mounted = unsafe {
                    libc::mount(
                        std::ptr::null(),
                        c"/".as_ptr(),
                        std::ptr::null(),
                        libc::MS_REC | libc::MS_PRIVATE,
                        std::ptr::null(),
                    ) == 0
                        && libc::mount(
                            c"proc".as_ptr(),
                            c"/proc".as_ptr(),
                            c"proc".as_ptr(),
                            0,
                            std::ptr::null(),
                        ) == 0
                };
                if !mounted {
                    return NO_NAMESPACES;
                }
                forked(|| {
                    // G2, PID 2, on the namespace's own /proc.
                    if proc::ours() != Ok(()) {
                        return G2_NOT_OURS;
                    }
                    let init = Pid::new(1).unwrap();
                    if proc::same_pid_namespace_result(init) != Ok(true) {
                        return G2_WRONG_NAMESPACE;
                    }
                    PASSED
                })
            })
        });
        if code == NO_NAMESPACES {
            crate::sys::test_skipped(
                "unshare(CLONE_NEWPID | CLONE_NEWNS), with or without CLONE_NEWUSER, or \
                 mounting /proc there is not allowed here: run as root",
            );
            return;
        }
        assert_eq!(
            code, PASSED,
            "{G1_INHERITED}: PID 1 of a new namespace kept its parent's answer that /proc is \
             ours; {G2_NOT_OURS}: its own /proc was not; {G2_WRONG_NAMESPACE}: PID 1 there was \
             judged in another namespace (the parent's kept); {SETUP}: fork or wait failed"
        );
    }

    #[test]
    fn network_filesystems_are_named_and_local_ones_are_not() {
        assert_eq!(network_fs_name(0x6969), Some("NFS"));
        assert_eq!(network_fs_name(0xFF53_4D42u32 as i32 as i64), Some("CIFS"));
        assert_eq!(network_fs_name(0x0102_1997), Some("9P"));
        // tmpfs, ext4, btrfs, xfs, overlayfs
        for local in [0x0102_1994, 0xEF53, 0x9123_683E, 0x5846_5342, 0x794C_7630] {
            assert_eq!(network_fs_name(local), None, "{local:#x}");
        }
        // The directory the tests run in is local here.
        assert_eq!(network_fs(Path::new("/proc")), None);
    }
}
