//! Opening a PID file with care, written once: the path checks (no
//! directory reached through a stranger's symlink), the open-and-verify
//! sequence every opener goes through (`lstat`, refuse anything but a
//! regular file, `open` without following symlinks, `fstat` to check the
//! descriptor is the inode looked at; after the caller's `flock`,
//! [`still_names`] checks the path still names it), and reading the PID
//! from the open file. Used by the lock protocol (`lock/`) and the readers
//! (`read/`), so that neither imports the other's helpers.
use std::ffi::OsStr;
use std::io;
use std::path::Path;

use crate::error::{Error, Result, UnsafeFile, IoResultExt};
use crate::pid::{self, Pid, Rule};
use crate::sys::{self, AsFd, BorrowedFd, NodeKind, OwnedFd, Stat};

/// Pauses (in microseconds) a contender or reader gives a holder that is
/// mid-write (locked, but the file is empty or names no live process).
pub(crate) const MID_WRITE_BACKOFF_US: [u64; 6] = [200, 500, 1_000, 2_000, 4_000, 8_000];

/// How [`open_verified`] opens the file.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Open<'a> {
    /// The path, read-only.
    Read,
    /// The path, read-write.
    Write,
    /// `name` in the open directory `dir`, read-only: one path component
    /// to resolve, not the whole path.
    At(BorrowedFd<'a>, &'a OsStr),
}

/// What [`open_verified`] found.
#[derive(Debug)]
// A `Stat` is large on some systems (232 bytes on FreeBSD): the value lives
// on the stack for one open, where a Box would cost an allocation.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Verified {
    /// The descriptor, and its `fstat` (the inode `lstat` saw).
    Open { fd: OwnedFd, opened: Stat },
    /// `lstat` failed: the caller decides what that means (often: missing).
    NotLooked(io::Error),
    /// `open` failed (after a successful `lstat`).
    NotOpened(io::Error),
    /// The path named another inode by the time it was opened.
    Replaced,
}

/// The open-and-verify sequence: `lstat` the path, refuse anything but a
/// regular file (a hard-linked one is left to the caller, which judges it
/// after the lock), `open` it without following symlinks (so a device or
/// FIFO is never opened), and check with `fstat` that the descriptor is
/// the inode looked at. Errors are an unsafe file and a failed `fstat`;
/// what a failed `lstat` or `open` means is the caller's to say.
pub(crate) fn open_verified(path: &Path, how: Open<'_>) -> Result<Verified> {
    let looked = match how {
        Open::At(dir, name) => sys::lstat_at(dir, name),
        Open::Read | Open::Write => sys::lstat(path),
    };
    let st = match looked {
        Ok(st) => st,
        Err(e) => return Ok(Verified::NotLooked(e)),
    };
    match unsafe_reason(&st) {
        None | Some(UnsafeFile::HardLinks(_)) => {}
        Some(why) => return Err(Error::unsafe_file(path, why)),
    }
    let fd = match how {
        Open::At(dir, name) => sys::open_existing_at(dir, name),
        Open::Read => sys::open_existing(path, false),
        Open::Write => sys::open_existing(path, true),
    };
    let fd = match fd {
        Ok(fd) => fd,
        Err(e) => return Ok(Verified::NotOpened(e)),
    };
    let opened = sys::fstat(&fd).open_err(path)?;
    if !sys::same_inode(&st, &opened) {
        return Ok(Verified::Replaced);
    }
    Ok(Verified::Open { fd, opened })
}

/// What [`still_names`] found.
#[derive(Debug)]
// A `Stat` is large on some systems (232 bytes on FreeBSD): the value lives
// on the stack for one open, where a Box would cost an allocation.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Still {
    /// The path names the inode; its `lstat` now.
    Same(Stat),
    /// The path names another inode.
    Changed,
    /// The path is gone.
    Missing,
}

/// The last step of the sequence, once the caller holds the lock: does the
/// path still name the inode `opened` (the descriptor's `fstat`)?
pub(crate) fn still_names(path: &Path, opened: &Stat) -> Result<Still> {
    match sys::lstat(path) {
        Ok(now) if sys::same_inode(&now, opened) => Ok(Still::Same(now)),
        Ok(_) => Ok(Still::Changed),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Still::Missing),
        Err(e) => Err(Error::open(path, e)),
    }
}

/// Why a file may not be used as a PID file, judged from its stat (from
/// `lstat`, so a symlink is seen as one). `None` for a regular file with one
/// link (or none: an unlinked file is caught elsewhere).
pub(crate) fn unsafe_reason(st: &Stat) -> Option<UnsafeFile> {
    match sys::node_kind(st) {
        NodeKind::Regular { links } => (links > 1).then_some(UnsafeFile::HardLinks(links)),
        NodeKind::Symlink => Some(UnsafeFile::Symlink),
        NodeKind::Directory => Some(UnsafeFile::Directory),
        NodeKind::Fifo => Some(UnsafeFile::Fifo),
        NodeKind::Socket => Some(UnsafeFile::Socket),
        NodeKind::Device => Some(UnsafeFile::Device),
    }
}

/// The directory a PID file is in (`.` for a bare file name).
pub(crate) fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// Refuses `path` when its directory is reached through a symbolic link
/// that neither root nor the caller owns: the check a PID file's path gets,
/// for other files opened with the same care (the CLI's daemon log files).
pub fn check_directory_links(path: &Path) -> Result<()> {
    refuse_foreign_links(path)
}

/// Refuses a path whose directory is reached through a symbolic link that
/// neither root nor the caller owns (see [`sys::foreign_symlink`]).
pub(crate) fn refuse_foreign_links(path: &Path) -> Result<()> {
    match sys::foreign_symlink(parent_dir(path)) {
        Some(found) => Err(Error::foreign_symlink(path, &found)),
        None => Ok(()),
    }
}

/// Reads and parses the PID in an open file.
pub(crate) fn read_fd(fd: impl AsFd, path: &Path, rule: Rule) -> Result<Pid> {
    let (buf, n) = sys::read_head(fd).open_err(path)?;
    // An existing file may name a holder above today's pid_max (lowered
    // after it started): the limit is the largest PID there can be.
    pid::parse(&buf[..n], rule, Pid::largest_possible())
        .map_err(|e| Error::invalid_contents(path, e))
}
