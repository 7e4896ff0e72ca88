//! The platform seam: every syscall the protocol makes goes through here.
//!
//! `linux.rs` and `unix.rs` (other Unix systems) export the same set of
//! functions: [`create_unnamed`], [`link_unnamed`] and [`process_state`]. The
//! helpers in this file are common to both.

use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use rustix::fs::{FileType, FlockOperation, Mode, OFlags, Stat};
use rustix::io::Errno;

use crate::error::UnsafeFile;
use crate::pid::MAX_READ;

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
pub(crate) use linux::*;

#[cfg(all(unix, not(target_os = "linux")))]
mod unix;
#[cfg(all(unix, not(target_os = "linux")))]
pub(crate) use unix::*;

// The kernel identity record (pidfs inode, extended attribute): Linux
// only, "unsupported" elsewhere.
pub(crate) mod pidfs;

/// A new, locked-or-not-yet-locked file that is not yet visible at the PID
/// file's path: unnamed (`O_TMPFILE`) where the platform allows, otherwise a
/// temporary name in the same directory, removed on drop.
pub(crate) struct Unnamed {
    pub(crate) fd: OwnedFd,
    pub(crate) temp: Option<TempName>,
}

/// A temporary name, unlinked on drop.
pub(crate) struct TempName(PathBuf);

impl Drop for TempName {
    fn drop(&mut self) {
        let _ = rustix::fs::unlink(&self.0);
    }
}

/// What the kernel says about a process, beyond `kill(pid, 0)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ProcState {
    /// Running or sleeping: not a zombie.
    Live,
    /// Exited, waiting to be reaped.
    Zombie,
    /// No such process.
    Gone,
    /// The platform cannot tell.
    Unknown,
}

/// Creates a file under a unique temporary name in `dir` (`O_EXCL`,
/// never following a symlink). Used where `O_TMPFILE` is unavailable.
pub(crate) fn create_named_temp(dir: &Path, final_path: &Path, mode: u32) -> io::Result<Unnamed> {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let base = final_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "pidfile".into());
    loop {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let temp = dir.join(format!(".{base}.{}.{n}.tmp", std::process::id()));
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

/// Why a file may not be used as a PID file, judged from its stat (from
/// `lstat`, so a symlink is seen as one). `None` for a regular file with one
/// link (or none: an unlinked file is caught elsewhere).
pub(crate) fn unsafe_reason(st: &Stat) -> Option<UnsafeFile> {
    match FileType::from_raw_mode(st.st_mode as _) {
        FileType::RegularFile => {
            // st_nlink is u64 on Linux, narrower elsewhere.
            #[allow(clippy::unnecessary_cast)]
            let links = st.st_nlink as u64;
            (links > 1).then_some(UnsafeFile::HardLinks(links))
        }
        FileType::Symlink => Some(UnsafeFile::Symlink),
        FileType::Directory => Some(UnsafeFile::Directory),
        FileType::Fifo => Some(UnsafeFile::Fifo),
        FileType::Socket => Some(UnsafeFile::Socket),
        FileType::CharacterDevice | FileType::BlockDevice => Some(UnsafeFile::Device),
        FileType::Unknown => Some(UnsafeFile::Device),
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
pub(crate) fn record_locked(fd: impl AsFd) -> bool {
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

/// Writes `bytes` as the whole content of the file, in place.
///
/// A file longer than the new content (a PID with more digits) is
/// overwritten in one `pwrite` with the new content padded with newlines to
/// the old length, and only then truncated: at every moment, even if the
/// writer is killed between the two calls, the file holds the old content,
/// or the new PID (followed by blank lines, which the lenient rule and shell
/// readers ignore): never an empty file, and never digits of the old number.
/// Files longer than [`MAX_READ`](crate::pid::MAX_READ) bytes (not PID
/// files) are emptied first, and so is a file about to hold nothing (a
/// reserved file: locked and empty means "starting").
pub(crate) fn write_whole(fd: impl AsFd, bytes: &[u8], old_len: u64) -> io::Result<()> {
    let fd = fd.as_fd();
    let new_len = bytes.len() as u64;
    let mut padded = bytes.to_vec();
    let mut longer = old_len > new_len;
    if longer && (old_len > crate::pid::MAX_READ as u64 || bytes.is_empty()) {
        rustix::fs::ftruncate(fd, 0)?;
        longer = false;
    } else if longer {
        padded.resize(old_len as usize, b'\n');
    }
    let mut done = 0;
    while done < padded.len() {
        match rustix::io::pwrite(fd, &padded[done..], done as u64) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => done += n,
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    if longer {
        rustix::fs::ftruncate(fd, new_len)?;
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

/// A symbolic link on the way to a PID file's directory that neither root
/// nor the caller owns: following it would let its owner choose which file
/// pidguard locks, writes, removes or signals the owner of.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ForeignSymlink {
    /// The link, as reached from the directory's path.
    pub(crate) link: PathBuf,
    /// Its owner.
    pub(crate) uid: u32,
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
