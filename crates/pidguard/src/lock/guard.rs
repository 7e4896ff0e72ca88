//! The [`Guard`]: holds a PID file's lock, and releases it (step 3).
use std::io;
use std::path::{Path, PathBuf};

use crate::error::{Error, ErrorKind, Result, IoResultExt};
use crate::pid::Pid;
use crate::sys::{self, AsFd, BorrowedFd, OwnedFd, RemoveFailed};

use super::stale_record;

/// Holds a PID file's lock for as long as it lives.
///
/// Dropping the guard releases it (as [`Guard::release`] does, ignoring
/// errors). A guard that was inherited by a forked child is inert there:
/// dropping it in the child neither removes the file nor releases the
/// parent's lock.
#[derive(Debug)]
pub struct Guard {
    pub(super) fd: Option<OwnedFd>,
    pub(super) path: PathBuf,
    pub(super) pid: Pid,
    /// The process that acquired (or adopted) the guard.
    pub(super) owner: u32,
    pub(super) fsync: bool,
    pub(super) network_fs: Option<&'static str>,
    /// Whether [`set_pid`](Guard::set_pid) records the new owner's identity.
    pub(super) kernel_identity: bool,
}

impl Guard {
    pub(super) fn on(mut self, network_fs: Option<&'static str>) -> Guard {
        self.network_fs = network_fs;
        self
    }

    /// The network filesystem the file is on (`"NFS"`, `"CIFS"`, …), when
    /// it is on one and the policy was [`NetworkFs::Warn`](crate::NetworkFs::Warn): `flock` there may
    /// be emulated or hold only on this host.
    pub fn network_fs(&self) -> Option<&'static str> {
        self.network_fs
    }

    /// The PID file's path (absolute).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The PID written in the file.
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// Removes the file (only if the path still names the inode this guard
    /// locked), then unlocks it by closing the descriptor.
    ///
    /// In a forked child of the process that acquired the guard this does
    /// nothing but close the child's copy of the descriptor.
    pub fn release(mut self) -> Result<()> {
        self.release_inner()
    }

    fn release_inner(&mut self) -> Result<()> {
        let Some(fd) = self.fd.take() else {
            return Ok(());
        };
        if std::process::id() != self.owner {
            return Ok(());
        }
        // Only the file this guard holds: never a successor's.
        match sys::remove_if_same(&self.path, &fd) {
            Ok(_) => {}
            Err(RemoveFailed::Check(e)) => return Err(Error::open(&self.path, e)),
            Err(RemoveFailed::Remove(e)) => {
                return Err(Error::with_io(ErrorKind::Io, &self.path, e))
            }
        }
        if self.fsync {
            if let Some(dir) = self.path.parent() {
                sys::fsync_dir(dir).io_err(dir)?;
            }
        }
        drop(fd);
        Ok(())
    }

    /// Whether the lock descriptor survives `exec` (clears or sets
    /// `FD_CLOEXEC`). Use it to hand the lock to a program you `exec` in
    /// place: the kernel releases the lock when that program exits.
    pub fn set_inheritable(&self, yes: bool) -> Result<()> {
        sys::set_cloexec(self.fd(), !yes).io_err(&self.path)
    }

    /// Rewrites the file to name `pid`, after checking that the path still
    /// names the inode this guard holds.
    pub fn set_pid(&mut self, pid: Pid) -> Result<()> {
        let mine = sys::fstat(self.fd()).open_err(&self.path)?;
        match sys::lstat(&self.path) {
            Ok(st) if sys::same_inode(&st, &mine) => {}
            Ok(_) | Err(_) => {
                return Err(Error::with_io(
                    ErrorKind::Io,
                    &self.path,
                    io::Error::other("the PID file was removed or replaced while locked"),
                ))
            }
        }
        // The record first, then the content (see kernel_id's write order).
        let recorded = self.kernel_identity.then_some(pid);
        crate::read::kernel_id::replace(self.fd(), recorded, Pid::current())
            .map_err(|e| stale_record(&self.path, e))?;
        let encoded = pid.encode();
        sys::write_whole(self.fd(), encoded.as_bytes(), mine.st_size as u64)
            .create_err(&self.path)?;
        self.pid = pid;
        Ok(())
    }

    /// Makes the current process the guard's owner and writes its PID: for a
    /// daemon that acquired the file before forking (as BSD `pidfile_open`
    /// before `daemon()`), called in the child that carries on. The parent
    /// must not release its copy: it should leave with
    /// `into_fd` (`into_handle` on Windows; dropping what it returns) or
    /// `std::process::exit`, never by dropping the guard after the child
    /// adopted it (that would remove the child's file).
    pub fn adopt(&mut self) -> Result<()> {
        self.owner = std::process::id();
        self.set_pid(Pid::current())
    }

    /// Gives up the guard without removing the file, returning the locked
    /// descriptor: the lock lasts as long as this descriptor (or a copy of
    /// it, including in children) stays open.
    #[cfg(unix)]
    pub fn into_fd(mut self) -> OwnedFd {
        self.fd.take().expect("a live guard has its descriptor")
    }

    /// [`into_fd`](Guard::into_fd) on every platform.
    pub(crate) fn into_owned(mut self) -> OwnedFd {
        self.fd.take().expect("a live guard has its descriptor")
    }

    /// Gives up the guard without removing the file, returning the locked
    /// handle: the lock lasts as long as this handle stays open *in this
    /// process* (a lock on Windows belongs to the process that took it: a
    /// copy inherited by a child does not keep it once this process exits).
    #[cfg(windows)]
    pub fn into_handle(mut self) -> std::os::windows::io::OwnedHandle {
        self.fd.take().expect("a live guard has its descriptor")
    }

    fn fd(&self) -> BorrowedFd<'_> {
        self.fd
            .as_ref()
            .expect("a live guard has its descriptor")
            .as_fd()
    }
}

#[cfg(unix)]
impl std::os::fd::AsFd for Guard {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd()
    }
}

#[cfg(windows)]
impl std::os::windows::io::AsHandle for Guard {
    fn as_handle(&self) -> BorrowedFd<'_> {
        self.fd()
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.release_inner();
    }
}
