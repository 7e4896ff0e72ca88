//! What every Unix system offers the same way (through rustix): opening
//! without following symlinks, `stat`, `flock`, `pread` / `pwrite`,
//! `kill`, signal numbers, directory reading. `linux.rs` and `other.rs`
//! add what differs.

use std::ffi::OsStr;
use std::io;
use std::path::{Path, PathBuf};

use rustix::fs::{FileType, FlockOperation, Mode, OFlags};

use super::{
    proc, record_lock_held, DirEntry, FileKind, ForeignSymlink, NodeKind, RemoveFailed,
    RemoveOutcome, TempName,
    TempNames, Unnamed,
};
use crate::pid::{Pid, MAX_READ};
use crate::signal::Signal;

/// The descriptor types the seam's calls take and give.
pub(crate) use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

/// A file's status (`struct stat`), as the seam's calls return it.
pub(crate) use rustix::fs::Stat;
/// A system call's error number.
pub(crate) use rustix::io::Errno;

/// Creates a file under a unique temporary name in `dir` (`O_EXCL`,
/// never following a symlink). Used where `O_TMPFILE` is unavailable.
pub(crate) fn create_named_temp(dir: &Path, final_path: &Path, mode: u32) -> io::Result<Unnamed> {
    let names = TempNames::new(dir, final_path);
    loop {
        let temp = names.next();
        match rustix::fs::open(
            &temp,
            OFlags::RDWR | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(mode as _),
        ) {
            Ok(fd) => {
                return Ok(Unnamed {
                    fd,
                    temp: Some(TempName(temp)),
                })
            }
            Err(Errno::EXIST) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Links a temporary-named file into place with `link(2)` (fails with
/// `EEXIST` if the path exists), then removes the temporary name.
pub(crate) fn link_named_temp(u: &mut Unnamed, path: &Path) -> io::Result<()> {
    let temp = u.temp.as_ref().expect("named temp file has a name");
    rustix::fs::linkat(
        rustix::fs::CWD,
        &temp.0,
        rustix::fs::CWD,
        path,
        rustix::fs::AtFlags::empty(),
    )?;
    u.temp = None; // unlinks the temporary name
    Ok(())
}

/// Opens an existing path without following a symlink in its last component
/// and without blocking on a FIFO.
pub(crate) fn open_existing(path: &Path, write: bool) -> io::Result<OwnedFd> {
    let access = if write { OFlags::RDWR } else { OFlags::RDONLY };
    Ok(rustix::fs::open(
        path,
        access | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// [`open_existing`] for read, by name in an open directory (`openat(2)`),
/// for walking a directory without resolving its path again for each entry.
pub(crate) fn open_existing_at(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<OwnedFd> {
    Ok(rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// `lstat(2)` of `name` in the open directory `dir` (`fstatat(2)` with
/// `AT_SYMLINK_NOFOLLOW`).
pub(crate) fn lstat_at(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<Stat> {
    Ok(rustix::fs::statat(
        dir,
        name,
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    )?)
}

/// Whether an `open` with `O_NOFOLLOW` failed because the last component is
/// a symlink: `ELOOP` on Linux, macOS and OpenBSD; FreeBSD says `EMLINK`,
/// NetBSD `EFTYPE`.
pub(crate) fn is_nofollow_refusal(e: &io::Error) -> bool {
    let code = e.raw_os_error();
    #[cfg(target_os = "freebsd")]
    if code == Some(Errno::MLINK.raw_os_error()) {
        return true;
    }
    #[cfg(target_os = "netbsd")]
    if code == Some(Errno::FTYPE.raw_os_error()) {
        return true;
    }
    code == Some(Errno::LOOP.raw_os_error())
}

/// `lstat(2)`.
pub(crate) fn lstat(path: &Path) -> io::Result<Stat> {
    Ok(rustix::fs::lstat(path)?)
}

/// `fstat(2)`.
pub(crate) fn fstat(fd: impl AsFd) -> io::Result<Stat> {
    Ok(rustix::fs::fstat(fd)?)
}

/// Whether two stats describe the same inode.
pub(crate) fn same_inode(a: &Stat, b: &Stat) -> bool {
    a.st_dev == b.st_dev && a.st_ino == b.st_ino
}

/// The kind of file `st` describes.
pub(crate) fn node_kind(st: &Stat) -> NodeKind {
    match FileType::from_raw_mode(st.st_mode as _) {
        FileType::RegularFile => {
            // st_nlink is u64 on Linux, narrower elsewhere.
            #[allow(clippy::unnecessary_cast)]
            let links = st.st_nlink as u64;
            NodeKind::Regular { links }
        }
        FileType::Symlink => NodeKind::Symlink,
        FileType::Directory => NodeKind::Directory,
        FileType::Fifo => NodeKind::Fifo,
        FileType::Socket => NodeKind::Socket,
        FileType::CharacterDevice | FileType::BlockDevice => NodeKind::Device,
        FileType::Unknown => NodeKind::Device,
    }
}

/// Tries to take the exclusive lock without blocking: `Ok(false)` when
/// another open file description holds a lock on the inode.
pub(crate) fn try_lock_exclusive(fd: impl AsFd) -> io::Result<bool> {
    match rustix::fs::flock(fd, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(true),
        Err(Errno::WOULDBLOCK) => Ok(false),
        Err(Errno::INTR) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Whether some other open file description holds an exclusive lock on the
/// inode. Takes a shared lock for an instant and drops it. A POSIX or OFD
/// lock on the inode (`/proc/locks`, which `flock` does not see) counts as
/// held too.
pub(crate) fn is_locked(fd: impl AsFd) -> io::Result<bool> {
    let fd = fd.as_fd();
    match rustix::fs::flock(fd, FlockOperation::NonBlockingLockShared) {
        Ok(()) => {
            let _ = rustix::fs::flock(fd, FlockOperation::Unlock);
            Ok(record_locked(fd))
        }
        Err(Errno::WOULDBLOCK) => Ok(true),
        Err(e) => Err(e.into()),
    }
}

/// Whether the file has a POSIX or OFD lock on it (see [`is_locked`]).
///
/// Asked of the kernel for this very file ([`record_lock_held`]) where it
/// can answer; otherwise read from the lock table by inode. Like `flock`,
/// this sees the locks on this inode object: one taken through another
/// view of the same file (the merged mount of an overlayfs whose upper
/// directory we were given) is on another object, for both kinds of lock
/// (docs/GUARANTEES.md, "Conditions": one view of the file).
pub(crate) fn record_locked(fd: impl AsFd) -> bool {
    let fd = fd.as_fd();
    if let Some(held) = record_lock_held(fd) {
        return held;
    }
    // st_ino's width differs between platforms.
    #[allow(clippy::unnecessary_cast)]
    fstat(fd).is_ok_and(|st| proc::record_locks_on(st.st_ino as u64))
}

/// Reads at most `MAX_READ + 1` bytes from the start of the file.
pub(crate) fn read_head(fd: impl AsFd) -> io::Result<([u8; MAX_READ + 1], usize)> {
    let mut buf = [0u8; MAX_READ + 1];
    let mut filled = 0;
    let fd = fd.as_fd();
    while filled < buf.len() {
        let want = buf.len() - filled;
        match rustix::io::pread(fd, &mut buf[filled..], filled as u64) {
            Ok(0) => break,
            // A short read of a regular file is its end: no second call.
            Ok(n) if n < want => {
                filled += n;
                break;
            }
            Ok(n) => filled += n,
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Ok((buf, filled))
}

/// Writes `bytes` as the whole content of the file, in place, while the
/// caller holds its lock.
///
/// A file that holds anything is emptied first (`ftruncate` to 0), then
/// written in one `pwrite`: at every moment a reader finds the old
/// content, nothing, or the new content. Never a mix: a `pwrite` over
/// content is not atomic for a concurrent `read` (on ext4 a reader can see
/// the first digits of a longer PID with the old length, or a same-length
/// PID half old, half new), but one into an empty file is (its length
/// changes once the bytes are in). Never anything after the digits
/// either: BSD `pidfile_open(3)` (libbsd, FreeBSD) refuses a held file
/// with anything after its digits (`EINVAL`, where it should report
/// `EEXIST` and the holder) but retries an empty one (for 100 ms), as
/// pidguard's readers give a locked empty file a few milliseconds. (A
/// shorter PID used to be written padded with newlines over the longer
/// one, then the file truncated: never empty, but refused by BSD readers
/// meanwhile.) A writer killed between the two calls leaves the file
/// empty, never a partial PID.
pub(crate) fn write_whole(fd: impl AsFd, bytes: &[u8], old_len: u64) -> io::Result<()> {
    let fd = fd.as_fd();
    if old_len > 0 {
        rustix::fs::ftruncate(fd, 0)?;
    }
    let mut done = 0;
    while done < bytes.len() {
        match rustix::io::pwrite(fd, &bytes[done..], done as u64) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => done += n,
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// `fsync(2)` on a directory, by path.
pub(crate) fn fsync_dir(dir: &Path) -> io::Result<()> {
    let fd = rustix::fs::open(
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    Ok(rustix::fs::fsync(fd)?)
}

/// Sets or clears `FD_CLOEXEC`.
pub(crate) fn set_cloexec(fd: impl AsFd, cloexec: bool) -> io::Result<()> {
    let flags = if cloexec {
        rustix::io::FdFlags::CLOEXEC
    } else {
        rustix::io::FdFlags::empty()
    };
    Ok(rustix::io::fcntl_setfd(fd, flags)?)
}

/// The first symbolic link on the way to `dir` (including the links its
/// links lead through) owned by neither root nor the effective user, if any.
/// Links owned by root or the caller (such as `/var/run` → `/run`) are
/// followed. Components that do not exist yet are not judged: pidguard
/// creates them itself. Cached per directory for the life of the process.
pub(crate) fn foreign_symlink(dir: &Path) -> Option<ForeignSymlink> {
    use std::sync::Mutex;
    type Cache = Vec<(PathBuf, Option<ForeignSymlink>)>;
    static CACHE: Mutex<Cache> = Mutex::new(Vec::new());
    let mut cache = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, found)) = cache.iter().find(|(d, _)| d == dir) {
        return found.clone();
    }
    let abs = if dir.is_absolute() {
        dir.to_path_buf()
    } else {
        std::env::current_dir().ok()?.join(dir)
    };
    let euid = rustix::process::geteuid().as_raw();
    // The kernel gives up after 40 links; so do we.
    let mut budget = 40;
    let found = first_foreign_link(&abs, euid, &mut budget);
    if cache.len() < 64 {
        cache.push((dir.to_path_buf(), found.clone()));
    }
    found
}

fn first_foreign_link(path: &Path, euid: u32, budget: &mut u32) -> Option<ForeignSymlink> {
    use std::path::Component;
    let mut prefix = PathBuf::new();
    for comp in path.components() {
        prefix.push(comp);
        if !matches!(comp, Component::Normal(_)) {
            continue;
        }
        // lstat resolves every earlier component the way open(2) will and
        // shows this one as it is.
        let Ok(st) = rustix::fs::lstat(&prefix) else {
            return None;
        };
        if FileType::from_raw_mode(st.st_mode as _) != FileType::Symlink {
            continue;
        }
        if st.st_uid != 0 && st.st_uid != euid {
            return Some(ForeignSymlink {
                link: prefix,
                uid: st.st_uid,
            });
        }
        if *budget == 0 {
            return None;
        }
        *budget -= 1;
        let target = std::fs::read_link(&prefix).ok()?;
        // A relative target is resolved from the link's own directory.
        let resolved = prefix.parent().unwrap_or(Path::new("/")).join(target);
        if let Some(found) = first_foreign_link(&resolved, euid, budget) {
            return Some(found);
        }
    }
    None
}

// ---------------------------------------------------------------------------
// Processes and signals (every Unix)
// ---------------------------------------------------------------------------

impl Pid {
    /// The same ID as a [`rustix::process::Pid`], for system calls.
    pub(crate) fn to_rustix(self) -> rustix::process::Pid {
        rustix::process::Pid::from_raw(self.get())
            .expect("a Pid is in 1..=i32::MAX, so it is a valid rustix Pid")
    }
}

impl Signal {
    pub(crate) fn to_rustix(self) -> rustix::process::Signal {
        if let Some(s) = rustix::process::Signal::from_named_raw(self.as_raw()) {
            return s;
        }
        // SAFETY: only a number from 1 to RTMAX (checked by `from_raw`, the
        // only way to make a `Signal` that is not named) gets here, and it
        // is only ever sent to another process (kill, pidfd_send_signal):
        // never blocked, consumed or handled in this one, which is what
        // rustix reserves for the C library.
        unsafe { rustix::process::Signal::from_raw_unchecked(self.as_raw()) }
    }
}

// signal.rs holds the signal numbers (it is a leaf, below this seam):
// checked here against the C library's as the crate builds, so that a
// wrong table fails the build instead of sending another signal.
const _: () = {
    use crate::signal::{Signal, NAMES, REALTIME};
    let mut i = 0;
    while i < NAMES.len() {
        let (name, n) = NAMES[i];
        if n != c_signal_number(name) {
            panic!("signal.rs numbers a signal unlike the C library: fix its table");
        }
        i += 1;
    }
    // `Signal::from_raw` takes what the C library names, and on Linux
    // the real-time signals up to RTMAX.
    let mut n = -1;
    while n <= 256 {
        let named = rustix::process::Signal::from_named_raw(n).is_some();
        let realtime = REALTIME && n > 0 && n <= Signal::RTMAX;
        if Signal::known(n) != (named || realtime) {
            panic!("signal.rs's `named` differs from the C library's list: fix it");
        }
        n += 1;
    }
};

/// The C library's number for a signal named in signal.rs's table.
const fn c_signal_number(name: &str) -> i32 {
    use rustix::process::Signal as S;
    let s = match name.as_bytes() {
        b"HUP" => S::HUP,
        b"INT" => S::INT,
        b"QUIT" => S::QUIT,
        b"ILL" => S::ILL,
        b"TRAP" => S::TRAP,
        b"ABRT" | b"IOT" => S::ABORT,
        b"BUS" => S::BUS,
        b"FPE" => S::FPE,
        b"KILL" => S::KILL,
        b"USR1" => S::USR1,
        b"SEGV" => S::SEGV,
        b"USR2" => S::USR2,
        b"PIPE" => S::PIPE,
        b"ALRM" => S::ALARM,
        b"TERM" => S::TERM,
        b"CHLD" => S::CHILD,
        b"CONT" => S::CONT,
        b"STOP" => S::STOP,
        b"TSTP" => S::TSTP,
        b"TTIN" => S::TTIN,
        b"TTOU" => S::TTOU,
        b"URG" => S::URG,
        b"XCPU" => S::XCPU,
        b"XFSZ" => S::XFSZ,
        b"VTALRM" => S::VTALARM,
        b"PROF" => S::PROF,
        b"WINCH" => S::WINCH,
        b"IO" => S::IO,
        b"SYS" => S::SYS,
        _ => panic!("a signal in signal.rs's table that the seam does not map: add it here"),
    };
    s.as_raw()
}

/// `kill(pid, 0)`: whether the process exists and may be signalled
/// (`ESRCH`: no such process; `EPERM`: another user's).
pub(crate) fn probe(pid: Pid) -> Result<(), Errno> {
    rustix::process::test_kill_process(pid.to_rustix())
}

/// `kill(2)` by PID.
pub(crate) fn kill(pid: Pid, signal: Signal) -> Result<(), Errno> {
    rustix::process::kill_process(pid.to_rustix(), signal.to_rustix())
}

/// The effective user ID.
pub(crate) fn geteuid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// The parent process, if any (none for a process whose parent is outside
/// its PID namespace).
pub(crate) fn parent_pid() -> Option<Pid> {
    rustix::process::getppid().and_then(|p| Pid::new(p.as_raw_nonzero().get()))
}

// ---------------------------------------------------------------------------
// Files and directories (every Unix)
// ---------------------------------------------------------------------------

/// `stat(2)` (following symlinks).
pub(crate) fn stat(path: &Path) -> io::Result<Stat> {
    Ok(rustix::fs::stat(path)?)
}

/// Whether the stat is of a regular file.
pub(crate) fn is_regular(st: &Stat) -> bool {
    FileType::from_raw_mode(st.st_mode as _) == FileType::RegularFile
}

/// Whether the stat is of a directory.
pub(crate) fn is_dir(st: &Stat) -> bool {
    FileType::from_raw_mode(st.st_mode as _) == FileType::Directory
}

/// `unlink(2)`.
pub(crate) fn unlink(path: &Path) -> Result<(), Errno> {
    rustix::fs::unlink(path)
}

/// `fsync(2)`.
pub(crate) fn fsync(fd: impl AsFd) -> io::Result<()> {
    Ok(rustix::fs::fsync(fd)?)
}

/// `fchown(2)`; `None` leaves that ID as it is.
pub(crate) fn fchown(fd: impl AsFd, uid: Option<u32>, gid: Option<u32>) -> Result<(), Errno> {
    rustix::fs::fchown(
        fd,
        uid.map(rustix::process::Uid::from_raw),
        gid.map(rustix::process::Gid::from_raw),
    )
}

/// `fchmod(2)`.
pub(crate) fn fchmod(fd: impl AsFd, mode: u32) -> Result<(), Errno> {
    rustix::fs::fchmod(fd, Mode::from_raw_mode(mode as _))
}

/// Opens a directory for reading its entries and opening names in it
/// (`O_DIRECTORY`, following symlinks: callers judge the path first).
pub(crate) fn open_dir(path: &Path) -> Result<OwnedFd, Errno> {
    rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

/// Opens the directory `name` in `dir` without following a symlink
/// (`ELOOP` or `ENOTDIR` for anything but a directory).
pub(crate) fn open_dir_at(dir: BorrowedFd<'_>, name: &OsStr) -> Result<OwnedFd, Errno> {
    rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

impl FileKind {
    fn of(t: FileType) -> FileKind {
        match t {
            FileType::RegularFile => FileKind::Regular,
            FileType::Directory => FileKind::Directory,
            FileType::Symlink => FileKind::Symlink,
            _ => FileKind::Other,
        }
    }
}

/// The kind of file the stat is of (from `lstat`: a symlink is one).
pub(crate) fn file_kind(st: &Stat) -> FileKind {
    FileKind::of(FileType::from_raw_mode(st.st_mode as _))
}

/// The entries of the open directory `dir` (read through a new descriptor
/// on it, from the start).
pub(crate) fn read_dir(dir: BorrowedFd<'_>) -> Result<Vec<DirEntry>, Errno> {
    use std::os::unix::ffi::OsStrExt;
    let entries = rustix::fs::Dir::read_from(dir)?;
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name == b"." || name == b".." {
            continue;
        }
        let kind = match entry.file_type() {
            FileType::Unknown => None,
            t => Some(FileKind::of(t)),
        };
        out.push(DirEntry {
            name: OsStr::from_bytes(name).to_os_string(),
            kind,
        });
    }
    Ok(out)
}

/// Creates a new file at `path` for writing, never following a symlink and
/// never opening an existing file (`O_CREAT|O_EXCL|O_NOFOLLOW`).
pub(crate) fn create_new(path: &Path, mode: u32) -> io::Result<std::fs::File> {
    let fd = rustix::fs::open(
        path,
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(mode as _),
    )?;
    Ok(std::fs::File::from(fd))
}

/// Makes a FIFO at `path` (tests: a file that is not a regular file), with
/// mkfifo(1), which every Unix has (rustix has no `mkfifo` on macOS).
#[cfg(test)]
pub(crate) fn mkfifo(path: &Path) -> io::Result<()> {
    let status = std::process::Command::new("mkfifo").arg(path).status()?;
    if status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!("mkfifo {} failed: {status}", path.display())))
    }
}

/// Removes `path` if it names the file `held` is open on (checked with
/// `lstat` against `fstat`, then `unlink(2)`: the caller holds the lock, so
/// no successor can be linking a file there in between).
pub(crate) fn remove_if_same(path: &Path, held: impl AsFd) -> Result<RemoveOutcome, RemoveFailed> {
    let mine = fstat(held).map_err(RemoveFailed::Check)?;
    match lstat(path) {
        Ok(st) if same_inode(&st, &mine) => match unlink(path) {
            Ok(()) => Ok(RemoveOutcome::Removed),
            Err(Errno::NOENT) => Ok(RemoveOutcome::Missing),
            Err(e) => Err(RemoveFailed::Remove(e.into())),
        },
        Ok(_) => Ok(RemoveOutcome::Other),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(RemoveOutcome::Missing),
        Err(e) => Err(RemoveFailed::Check(e)),
    }
}

/// Unlinks a temporary name (see [`TempName`]).
pub(crate) fn remove_temp(path: &Path) {
    let _ = rustix::fs::unlink(path);
}

/// Creates `dir` and its missing parents with `mode` (less the umask).
pub(crate) fn create_dir_all(dir: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(dir)
}

/// The `(device, inode)` of the file at `path` (following symlinks).
pub(crate) fn file_id(path: &Path) -> io::Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let md = std::fs::metadata(path)?;
    Ok((md.dev(), md.ino()))
}
