//! The kernel identity record's system calls (issue 20), kept apart from
//! the rest of the seam: a process's pidfs inode (`pidfd_open`, `fstatfs`
//! and `fstat`, Linux 6.9 and later), this boot's ID, and the extended
//! attribute `user.pidguard.pidfd_ino` (`fsetxattr`, `fgetxattr`,
//! `fremovexattr`). What the record means is in `read/kernel_id.rs`.
//!
//! Only Linux has any of it; elsewhere every function answers
//! "unsupported" (no identity, no boot ID, no record), so that the record
//! is simply absent and the other evidence decides.

use std::io;
use crate::sys::AsFd;

use crate::pid::Pid;

/// Why the kernel cannot name a process by its pidfs inode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
// Elsewhere every answer is `Unsupported`.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub(crate) enum NoIno {
    /// No pidfds (`ENOSYS`), pidfds that are anonymous inodes (before
    /// Linux 6.9 every pidfd shares one inode: its number names nothing),
    /// or not Linux.
    Unsupported,
    /// `/proc` is not this PID namespace's (or cannot be read), so the
    /// pidfd cannot be tied to the PID checked (its `fdinfo` `Pid:` line):
    /// nothing is concluded, as for every other fact read there.
    ForeignProc,
    /// No such process (`ESRCH`), or it exited while being looked at.
    Gone,
    /// The PID is not a thread-group leader (`EINVAL`).
    NotLeader,
    /// Another error (`EMFILE`, a seccomp filter…).
    Other,
}

#[cfg(target_os = "linux")]
pub(crate) use linux::*;
#[cfg(not(target_os = "linux"))]
pub(crate) use other::*;

#[cfg(target_os = "linux")]
mod linux {
    use super::*;
    use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};

    use rustix::io::Errno;

    use crate::sys::proc;

    /// `PID_FS_MAGIC` (`include/uapi/linux/magic.h`): pidfds live on pidfs,
    /// whose inode numbers are 64-bit and never reused while the system
    /// runs.
    const PID_FS_MAGIC: u32 = 0x5049_4446;

    /// Whether pidfds are on pidfs: 0 not known yet, 1 yes, 2 no. The same
    /// for the whole system while it runs.
    static PIDFS: AtomicU8 = AtomicU8::new(0);

    /// The kernel's identity of process `pid`: the inode number of a pidfd
    /// for it on pidfs. `me` is the caller's PID: its own identity is
    /// looked up once per process (see [`SelfIno`]).
    ///
    /// The pidfd is the seam's own [`pidfd_open`](crate::sys::pidfd_open),
    /// which keeps it only when its `fdinfo` `Pid:` line is `pid` (so a
    /// `/proc` of another PID namespace, or a process gone meanwhile,
    /// yields no identity); and `/proc` must be this namespace's
    /// ([`proc::ours`]) for the line to mean anything.
    pub(crate) fn ino(pid: Pid, me: Pid) -> Result<u64, NoIno> {
        if PIDFS.load(Ordering::Relaxed) == 2 {
            return Err(NoIno::Unsupported);
        }
        let cache = (pid == me).then(SelfIno::get).flatten();
        if let Some(ino) = cache.and_then(|c| c.lookup(me)) {
            return Ok(ino);
        }
        let fd = if pid == me && Pid::current() == me {
            // This process, asking for itself (getpid just said so, also
            // after a fork): pidfd_open resolves the number in the
            // caller's own PID namespace, where getpid gave it, so the
            // pidfd is this process. /proc is not needed to tie the two.
            match rustix::process::pidfd_open(pid.to_rustix(), rustix::process::PidfdFlags::empty()) {
                Ok(fd) => fd,
                Err(Errno::NOSYS) => {
                    PIDFS.store(2, Ordering::Relaxed);
                    return Err(NoIno::Unsupported);
                }
                Err(_) => return Err(NoIno::Other),
            }
        } else {
            other_process_pidfd(pid)?
        };
        if PIDFS.load(Ordering::Relaxed) == 0 {
            // f_type's width differs between architectures.
            #[allow(clippy::unnecessary_cast)]
            let on_pidfs = match rustix::fs::fstatfs(&fd) {
                Ok(st) => st.f_type as u32 == PID_FS_MAGIC,
                Err(_) => return Err(NoIno::Other),
            };
            PIDFS.store(if on_pidfs { 1 } else { 2 }, Ordering::Relaxed);
            if !on_pidfs {
                return Err(NoIno::Unsupported);
            }
        }
        let ino = rustix::fs::fstat(&fd).map_err(|_| NoIno::Other)?.st_ino;
        if let Some(c) = cache {
            c.store(me, ino);
        }
        Ok(ino)
    }

    /// A pidfd on another process, tied to `pid` through this namespace's
    /// /proc (its fdinfo `Pid:` line): without that tie, no identity.
    fn other_process_pidfd(pid: Pid) -> Result<std::os::fd::OwnedFd, NoIno> {
        if proc::ours().is_err() {
            return Err(NoIno::ForeignProc);
        }
        let (fd, line) = match crate::sys::pidfd_open_read(pid) {
            Ok(Some(opened)) => opened,
            Ok(None) => {
                PIDFS.store(2, Ordering::Relaxed);
                return Err(NoIno::Unsupported);
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(NoIno::Gone),
            Err(e) if e.raw_os_error() == Some(Errno::INVAL.raw_os_error()) => {
                return Err(NoIno::NotLeader)
            }
            Err(e) if e.raw_os_error().is_none() => return Err(NoIno::ForeignProc),
            Err(_) => return Err(NoIno::Other),
        };
        // On pidfs (Linux 6.9+) the fdinfo always has its `Pid:` line; a
        // missing one means it could not be read: no tie, no identity.
        if line != Some(pid.get()) {
            return Err(NoIno::ForeignProc);
        }
        Ok(fd)
    }

    /// The caller's own pidfs inode, remembered in a page the kernel
    /// empties in a forked child (`MADV_WIPEONFORK`, Linux 4.14): a child,
    /// even one that has the parent's PID number in another PID namespace,
    /// never sees its parent's identity as its own.
    struct SelfIno {
        /// `[pid, ino]`; zero in a fresh child.
        page: &'static [AtomicU64; 2],
    }

    impl SelfIno {
        /// The cache, or `None` where the page cannot be set up (then
        /// every lookup asks the kernel).
        fn get() -> Option<&'static SelfIno> {
            static CELL: std::sync::OnceLock<Option<SelfIno>> = std::sync::OnceLock::new();
            CELL.get_or_init(|| {
                use rustix::mm::{madvise, mmap_anonymous, munmap, Advice, MapFlags, ProtFlags};
                let len = rustix::param::page_size();
                // SAFETY: a fresh private anonymous mapping, used only
                // through the two atomics below (zeroed by the kernel, and
                // page-aligned); unmapped again if madvise fails. It is
                // never unmapped otherwise: the reference is 'static.
                unsafe {
                    let addr = mmap_anonymous(
                        std::ptr::null_mut(),
                        len,
                        ProtFlags::READ | ProtFlags::WRITE,
                        MapFlags::PRIVATE,
                    )
                    .ok()?;
                    if madvise(addr, len, Advice::LinuxWipeOnFork).is_err() {
                        let _ = munmap(addr, len);
                        return None;
                    }
                    let page = &*(addr as *const [AtomicU64; 2]);
                    Some(SelfIno { page })
                }
            })
            .as_ref()
        }

        fn lookup(&self, me: Pid) -> Option<u64> {
            let pid = self.page[0].load(Ordering::Acquire);
            let ino = self.page[1].load(Ordering::Acquire);
            (pid == u64::from(me.as_u32()) && ino != 0).then_some(ino)
        }

        fn store(&self, me: Pid, ino: u64) {
            self.page[1].store(ino, Ordering::Release);
            self.page[0].store(u64::from(me.as_u32()), Ordering::Release);
        }
    }

    /// This boot's ID (`/proc/sys/kernel/random/boot_id`, 36 bytes), read
    /// once per process. `None` where it cannot be read.
    pub(crate) fn boot_id() -> Option<&'static [u8]> {
        static CELL: std::sync::OnceLock<Option<[u8; 36]>> = std::sync::OnceLock::new();
        CELL.get_or_init(|| {
            let mut buf = [0u8; 64];
            let text = proc::read_small("/proc/sys/kernel/random/boot_id", &mut buf).ok()?;
            let id = text.strip_suffix(b"\n").unwrap_or(text);
            id.try_into().ok()
        })
        .as_ref()
        .map(|id| &id[..])
    }

    /// The real user ID of process `pid` (`/proc/<pid>/status`), `None`
    /// when it cannot be read (or `/proc` is another namespace's).
    pub(crate) fn process_uid(pid: Pid) -> Option<u32> {
        proc::uid(pid)
    }

    /// Whether `uid` is mapped in this process's user namespace
    /// (`/proc/self/uid_map`, read once). An unmapped UID reads as the
    /// overflow UID (65534), which every unmapped user shares: it names no
    /// one. `false` where the map cannot be read.
    pub(crate) fn uid_mapped(uid: u32) -> bool {
        static MAP: std::sync::OnceLock<Vec<(u64, u64)>> = std::sync::OnceLock::new();
        let map = MAP.get_or_init(|| {
            let mut buf = [0u8; 1024];
            let Ok(text) = proc::read_small("/proc/self/uid_map", &mut buf) else {
                return Vec::new();
            };
            String::from_utf8_lossy(text)
                .lines()
                .filter_map(|l| {
                    let mut f = l.split_ascii_whitespace();
                    let inside: u64 = f.next()?.parse().ok()?;
                    let _outside: u64 = f.next()?.parse().ok()?;
                    let count: u64 = f.next()?.parse().ok()?;
                    Some((inside, count))
                })
                .collect()
        });
        let uid = u64::from(uid);
        map.iter()
            .any(|&(inside, count)| uid >= inside && uid - inside < count)
    }

    /// The extended attribute that carries a PID file's record.
    const RECORD_ATTR: &std::ffi::CStr = c"user.pidguard.pidfd_ino";

    /// Sets the record attribute on an open file (`fsetxattr`).
    pub(crate) fn set_record(fd: impl AsFd, value: &[u8]) -> io::Result<()> {
        Ok(rustix::fs::fsetxattr(
            fd,
            RECORD_ATTR,
            value,
            rustix::fs::XattrFlags::empty(),
        )?)
    }

    /// Removes the record attribute (`fremovexattr`); none there, or a
    /// filesystem without user attributes, is not an error.
    pub(crate) fn remove_record(fd: impl AsFd) -> io::Result<()> {
        match rustix::fs::fremovexattr(fd, RECORD_ATTR) {
            Ok(()) | Err(Errno::NODATA | Errno::NOTSUP) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Reads the record attribute into `buf` (`fgetxattr`): `Ok(None)` when
    /// the file has none or its filesystem keeps no user attributes.
    pub(crate) fn get_record(fd: impl AsFd, buf: &mut [u8]) -> io::Result<Option<usize>> {
        match rustix::fs::fgetxattr(fd, RECORD_ATTR, buf) {
            Ok(n) => Ok(Some(n)),
            Err(Errno::NODATA | Errno::NOTSUP) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod other {
    use super::*;

    /// No pidfs here: no kernel identity.
    pub(crate) fn ino(_pid: Pid, _me: Pid) -> Result<u64, NoIno> {
        Err(NoIno::Unsupported)
    }

    /// No boot ID here.
    pub(crate) fn boot_id() -> Option<&'static [u8]> {
        None
    }

    /// Not known here.
    pub(crate) fn process_uid(_pid: Pid) -> Option<u32> {
        None
    }

    /// Not known here: no records are trusted.
    pub(crate) fn uid_mapped(_uid: u32) -> bool {
        false
    }

    /// Never called without a kernel identity to record.
    pub(crate) fn set_record(_fd: impl AsFd, _value: &[u8]) -> io::Result<()> {
        Err(io::ErrorKind::Unsupported.into())
    }

    /// Records are not written here; a file copied from Linux may carry
    /// one, which is left alone (it is never read here).
    pub(crate) fn remove_record(_fd: impl AsFd) -> io::Result<()> {
        Ok(())
    }

    /// Records are not read here.
    pub(crate) fn get_record(_fd: impl AsFd, _buf: &mut [u8]) -> io::Result<Option<usize>> {
        Ok(None)
    }
}
