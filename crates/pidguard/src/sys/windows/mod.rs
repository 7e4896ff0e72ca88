//! Windows: the whole seam over kernel32 (declared in `ffi.rs`) and std's
//! file handles. The protocol, and the facts each choice rests on (most
//! measured under Wine only), are in docs/WINDOWS.md.
//!
//! - The lock is `LockFileEx` on the one byte at `u64::MAX - 1` ([`LOCK_BYTE`]):
//!   past every file's content (byte-range locks are mandatory on Windows,
//!   so a lock over the content would make the PID unreadable), and inside
//!   the range std's `File::lock`, fd-lock and fs4 lock, so they and
//!   pidguard exclude each other. A lock belongs to the handle that took it.
//! - Every handle shares `READ | WRITE | DELETE` and none is inheritable
//!   unless asked ([`set_cloexec`]).
//! - A new file is created under a temporary name, written, locked, then
//!   renamed into place without replacing (`MoveFileExW(temp, path, 0)`):
//!   `ERROR_ALREADY_EXISTS` is `link(2)`'s `EEXIST`.
//! - Release deletes *the held file*, never a name: a second handle opened
//!   with `DELETE` is checked to be on the same file (volume serial, file
//!   index), and that handle's file is marked for deletion
//!   ([`remove_if_same`]).
//! - A process handle (`OpenProcess`) is the pidfd: while it is open the
//!   PID is not reused. Liveness is a wait on it; the start time is its
//!   creation time; the executable its image path. Who holds a lock cannot
//!   be read: a holder is never *verified*.
//! - There are no file owners or modes here (ACLs): [`Stat`] reports every
//!   file as owned by UID 0 and [`geteuid`] is 0, with permission bits made
//!   up from the attributes (0o644, 0o444 read-only, 0o755 directories), so
//!   the Unix ownership checks (run as root: a file owned by another user
//!   or group-writable) find nothing to refuse. [`fchown`] and [`fchmod`]
//!   fail with "not supported".

mod ffi;

use std::ffi::{OsStr, OsString};
use std::fs::{File, OpenOptions};
use std::io;
use std::mem::ManuallyDrop;
use std::os::windows::fs::{FileExt, OpenOptionsExt};
use std::os::windows::io::{AsHandle, AsRawHandle, FromRawHandle, RawHandle};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use self::ffi::*;
use super::{
    DirEntry, FileKind, ForeignSymlink, NodeKind, ProcState, RemoveFailed, RemoveOutcome,
    TempName, TempNames, Unnamed,
};
use crate::pid::{Pid, MAX_READ};
use crate::signal::Signal;

/// The handle types the seam's calls take and give (named as on Unix, so
/// that the code above the seam is the same).
pub(crate) type OwnedFd = std::os::windows::io::OwnedHandle;
/// A borrowed handle.
pub(crate) type BorrowedFd<'a> = std::os::windows::io::BorrowedHandle<'a>;

/// What can lend a handle: every [`AsHandle`] (`File`, `OwnedHandle`, a
/// `Guard`).
pub(crate) trait AsFd {
    /// The handle, borrowed.
    fn as_fd(&self) -> BorrowedFd<'_>;
}

impl<T: AsHandle + ?Sized> AsFd for T {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.as_handle()
    }
}

/// The offset of the lock byte (2⁶⁴ − 2): the last byte of std's
/// `File::lock` range, past every file's end.
const LOCK_BYTE: u64 = u64::MAX - 1;

/// Every handle shares reading, writing and deletion (docs/WINDOWS.md,
/// decision 2).
const SHARE_ALL: u32 = FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE;

// ---------------------------------------------------------------------------
// Errors and file status
// ---------------------------------------------------------------------------

/// A system call's error: a Win32 error code (`GetLastError`), with the
/// POSIX names the code above the seam matches on mapped to the Win32 code
/// Windows gives in that case (or the nearest one).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Errno(i32);

#[allow(dead_code)] // the names the code above the seam may use
impl Errno {
    /// No such file (`ERROR_FILE_NOT_FOUND`; `ERROR_PATH_NOT_FOUND` is
    /// made this too).
    pub(crate) const NOENT: Errno = Errno(ERROR_FILE_NOT_FOUND);
    /// Access denied (`ERROR_ACCESS_DENIED`).
    pub(crate) const ACCESS: Errno = Errno(ERROR_ACCESS_DENIED);
    /// Not permitted: a process that may not be opened or ended
    /// (`OpenProcess` says `ERROR_ACCESS_DENIED`; kept apart from
    /// [`ACCESS`](Errno::ACCESS) as `EPERM` is from `EACCES`).
    pub(crate) const PERM: Errno = Errno(ERROR_PRIVILEGE_NOT_HELD);
    /// No such process: `OpenProcess` says `ERROR_INVALID_PARAMETER`.
    pub(crate) const SRCH: Errno = Errno(ERROR_INVALID_PARAMETER);
    /// The path exists (`ERROR_ALREADY_EXISTS`; `ERROR_FILE_EXISTS` is
    /// made this too).
    pub(crate) const EXIST: Errno = Errno(ERROR_ALREADY_EXISTS);
    /// A reparse point (symlink, junction) where none may be followed.
    pub(crate) const LOOP: Errno = Errno(ERROR_STOPPED_ON_SYMLINK);
    /// Not a directory (`ERROR_DIRECTORY`).
    pub(crate) const NOTDIR: Errno = Errno(ERROR_DIRECTORY);
    /// A read-only medium (`ERROR_WRITE_PROTECT`).
    pub(crate) const ROFS: Errno = Errno(ERROR_WRITE_PROTECT);
    /// Not provided by this platform (`ERROR_CALL_NOT_IMPLEMENTED`).
    pub(crate) const NOSYS: Errno = Errno(ERROR_CALL_NOT_IMPLEMENTED);
    /// Not supported (`ERROR_NOT_SUPPORTED`).
    pub(crate) const NOTSUP: Errno = Errno(ERROR_NOT_SUPPORTED);
    /// Another device (`ERROR_NOT_SAME_DEVICE`).
    pub(crate) const XDEV: Errno = Errno(ERROR_NOT_SAME_DEVICE);
    /// A name too long (`ERROR_FILENAME_EXCED_RANGE`).
    pub(crate) const NAMETOOLONG: Errno = Errno(ERROR_FILENAME_EXCED_RANGE);
    /// An I/O error (`ERROR_IO_DEVICE`).
    pub(crate) const IO: Errno = Errno(ERROR_IO_DEVICE);
    /// A signal Windows cannot deliver (all but `KILL` and 0). Bit 29 marks
    /// an application-defined code: no system call returns it.
    pub(crate) const NOSIGNAL: Errno = Errno(0x2000_0001);
    /// File ownership or modes, which Windows does not have (ACLs).
    pub(crate) const NOACL: Errno = Errno(0x2000_0002);

    /// The error of a Win32 code, with the synonyms above folded.
    pub(crate) fn from_code(code: i32) -> Errno {
        Errno(match code {
            ERROR_PATH_NOT_FOUND => ERROR_FILE_NOT_FOUND,
            ERROR_FILE_EXISTS => ERROR_ALREADY_EXISTS,
            c => c,
        })
    }

    /// The last error of this thread (`GetLastError`).
    pub(crate) fn last() -> Errno {
        Errno::from_io_error(&io::Error::last_os_error()).unwrap_or(Errno::IO)
    }

    /// The error an `io::Error` carries, if it is a system one.
    pub(crate) fn from_io_error(e: &io::Error) -> Option<Errno> {
        e.raw_os_error().map(Errno::from_code)
    }

    /// The Win32 code.
    pub(crate) const fn raw_os_error(self) -> i32 {
        self.0
    }
}

impl std::fmt::Debug for Errno {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Errno({}: {})", self.0, io::Error::from(*self))
    }
}

impl std::fmt::Display for Errno {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        io::Error::from(*self).fmt(f)
    }
}

impl std::error::Error for Errno {}

impl From<Errno> for io::Error {
    fn from(e: Errno) -> io::Error {
        match e {
            Errno::SRCH => io::Error::new(io::ErrorKind::NotFound, "no such process"),
            Errno::NOSIGNAL => io::Error::new(
                io::ErrorKind::Unsupported,
                "this signal cannot be sent on Windows: there are no signals there, only \
                 KILL (TerminateProcess) and 0 (is it running?)",
            ),
            Errno::NOACL => io::Error::new(
                io::ErrorKind::Unsupported,
                "file owners and modes do not exist on Windows (access is an ACL there): \
                 leave Pidfile::owner and Pidfile::mode unset",
            ),
            Errno::PERM => io::Error::new(
                io::ErrorKind::PermissionDenied,
                "the process may not be opened or ended (another user's, or protected)",
            ),
            e => io::Error::from_raw_os_error(e.0),
        }
    }
}

/// A Win32 call's `BOOL` result as an `io::Result`.
fn check(ok: BOOL) -> io::Result<()> {
    if ok != 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// A file's status: a Unix-shaped view of `GetFileInformationByHandle`
/// (the field names and types are those of Linux's `struct stat`, so that
/// the code above the seam reads it the same way).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Stat {
    /// The volume serial number (0 under Wine through some handles: see
    /// [`same_inode`]).
    pub(crate) st_dev: u64,
    /// The file index.
    pub(crate) st_ino: u64,
    /// The number of links.
    pub(crate) st_nlink: u64,
    /// A type (`S_IFREG`, `S_IFDIR`, `S_IFLNK` for a reparse point,
    /// `S_IFCHR` for anything not on a disk) and permission bits made up
    /// from the attributes (there are no modes: see the module's doc).
    pub(crate) st_mode: u32,
    /// Always 0 (see the module's doc).
    pub(crate) st_uid: u32,
    /// The size in bytes.
    pub(crate) st_size: i64,
    /// The last write time, in seconds since the Unix epoch.
    pub(crate) st_mtime: i64,
    /// Its nanoseconds (to 100 ns).
    pub(crate) st_mtime_nsec: i64,
    /// The file attributes (`FILE_ATTRIBUTE_*`).
    pub(crate) attributes: u32,
    /// Which file it is: what [`same_inode`] compares.
    pub(crate) key: FileKey,
}

/// A file's identity on its volume (docs/WINDOWS.md, decision 6):
/// `FileIdInfo`'s 64-bit volume serial and 128-bit file ID where the
/// filesystem gives them (ReFS's IDs do not fit in 64 bits), else
/// `GetFileInformationByHandle`'s 32-bit serial and 64-bit file index (the
/// index zero-extended: on NTFS the 128-bit ID is the index so extended
/// **[docs]**). Equal ([`same_key`]) when the IDs are equal and the volumes
/// are: in full when both keys are 128-bit, in their low 32 bits (the short
/// serial) when one is not, and whatever they are when one serial is 0
/// (Wine's serial through the handle that created a file). Not an
/// equivalence (that 0 matches every serial), hence no `Eq`.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct FileKey {
    /// The volume serial number (64 bits from `FileIdInfo`, else 32).
    volume: u64,
    /// The file ID (128 bits from `FileIdInfo`, else the 64-bit index).
    id: u128,
    /// Whether both came from `FileIdInfo`.
    wide: bool,
}

impl PartialEq for FileKey {
    fn eq(&self, other: &FileKey) -> bool {
        same_key(self, other)
    }
}

/// See [`FileKey`].
fn same_key(a: &FileKey, b: &FileKey) -> bool {
    let volumes = if a.volume == 0 || b.volume == 0 {
        true
    } else if a.wide && b.wide {
        a.volume == b.volume
    } else {
        a.volume as u32 == b.volume as u32
    };
    a.id == b.id && volumes
}

/// The key of a file from what the two calls gave (`id_info` when
/// `FileIdInfo` succeeded).
fn file_key(info: &BY_HANDLE_FILE_INFORMATION, id_info: Option<&FILE_ID_INFO>) -> FileKey {
    match id_info {
        Some(x) => FileKey {
            volume: x.VolumeSerialNumber,
            id: u128::from_le_bytes(x.FileId),
            wide: true,
        },
        None => FileKey {
            volume: u64::from(info.dwVolumeSerialNumber),
            id: (u128::from(info.nFileIndexHigh) << 32) | u128::from(info.nFileIndexLow),
            wide: false,
        },
    }
}

/// `GetFileInformationByHandleEx(FileIdInfo)`: `None` where the system or
/// filesystem does not give it (before Windows 8 / Server 2012, some
/// filesystems).
fn file_id_info(h: RawHandle) -> Option<FILE_ID_INFO> {
    let mut x = FILE_ID_INFO::default();
    // SAFETY: the struct outlives the call, which writes `size` bytes.
    let ok = unsafe {
        GetFileInformationByHandleEx(
            h,
            FileIdInfo,
            (&mut x as *mut FILE_ID_INFO).cast(),
            std::mem::size_of::<FILE_ID_INFO>() as u32,
        )
    };
    (ok != 0).then_some(x)
}

const S_IFMT: u32 = 0o170_000;
const S_IFREG: u32 = 0o100_000;
const S_IFDIR: u32 = 0o040_000;
const S_IFLNK: u32 = 0o120_000;
const S_IFCHR: u32 = 0o020_000;

/// 100 ns intervals from 1601-01-01 to the Unix epoch.
const EPOCH_DIFF_100NS: u64 = 116_444_736_000_000_000;

/// A FILETIME (100 ns intervals since 1601) on the wall clock.
fn filetime(t: FILETIME) -> Option<SystemTime> {
    let ticks = (u64::from(t.dwHighDateTime) << 32) | u64::from(t.dwLowDateTime);
    let since = ticks.checked_sub(EPOCH_DIFF_100NS)?;
    SystemTime::UNIX_EPOCH.checked_add(Duration::new(
        since / 10_000_000,
        (since % 10_000_000) as u32 * 100,
    ))
}

/// `fstat`: `GetFileInformationByHandle` of the handle.
pub(crate) fn fstat(fd: impl AsFd) -> io::Result<Stat> {
    let h = fd.as_fd().as_raw_handle();
    // SAFETY: `h` is a live handle (borrowed); the call fills the struct.
    let kind = unsafe { GetFileType(h) };
    let mut info = BY_HANDLE_FILE_INFORMATION::default();
    // SAFETY: as above.
    let got = check(unsafe { GetFileInformationByHandle(h, &mut info) });
    if kind != FILE_TYPE_DISK {
        // A pipe, console or device: none of the file's facts apply.
        return Ok(Stat {
            st_mode: S_IFCHR | 0o600,
            st_nlink: 1,
            ..Stat::default()
        });
    }
    got?;
    let attrs = info.dwFileAttributes;
    let st_mode = if attrs & FILE_ATTRIBUTE_REPARSE_POINT != 0 {
        S_IFLNK | 0o777
    } else if attrs & FILE_ATTRIBUTE_DIRECTORY != 0 {
        S_IFDIR | 0o755
    } else if attrs & FILE_ATTRIBUTE_READONLY != 0 {
        S_IFREG | 0o444
    } else {
        S_IFREG | 0o644
    };
    let written = (u64::from(info.ftLastWriteTime.dwHighDateTime) << 32)
        | u64::from(info.ftLastWriteTime.dwLowDateTime);
    let since = written.saturating_sub(EPOCH_DIFF_100NS);
    Ok(Stat {
        st_dev: u64::from(info.dwVolumeSerialNumber),
        st_ino: (u64::from(info.nFileIndexHigh) << 32) | u64::from(info.nFileIndexLow),
        st_nlink: u64::from(info.nNumberOfLinks),
        st_mode,
        st_uid: 0,
        st_size: ((i64::from(info.nFileSizeHigh)) << 32) | i64::from(info.nFileSizeLow),
        st_mtime: (since / 10_000_000) as i64,
        st_mtime_nsec: ((since % 10_000_000) * 100) as i64,
        attributes: attrs,
        key: file_key(&info, file_id_info(h).as_ref()),
    })
}

/// Opens `path` for its attributes only (no access: never refused by a
/// sharing mode), without following a reparse point when `nofollow`.
fn open_for_stat(path: &Path, nofollow: bool) -> io::Result<File> {
    let mut flags = FILE_FLAG_BACKUP_SEMANTICS;
    if nofollow {
        flags |= FILE_FLAG_OPEN_REPARSE_POINT;
    }
    open_unless_pending(
        OpenOptions::new()
            .access_mode(FILE_READ_ATTRIBUTES)
            .share_mode(SHARE_ALL)
            .custom_flags(flags),
        path,
    )
}

/// Opens `path` with `opts`, a delete-pending file being no file
/// (`ERROR_FILE_NOT_FOUND`): its name goes when the last handle on it
/// closes, so nothing may be read from it, rewritten in it or taken over
/// (docs/WINDOWS.md, decision 5). An acquire that meets one starts again
/// (its take-over sees the path vanish), a bounded number of times; a
/// reader finds nothing running. See [`is_delete_pending`] for how one is
/// recognised.
fn open_unless_pending(opts: &OpenOptions, path: &Path) -> io::Result<File> {
    let opened = opts.open(path);
    // Read at once (the next failing call overwrites it): the NTSTATUS
    // behind the Win32 error, which std's open returns without another call.
    // SAFETY: no arguments; reads this thread's TEB.
    let status = opened.is_err().then(|| unsafe { RtlGetLastNtStatus() } as u32);
    let flag = opened.as_ref().ok().and_then(|f| delete_pending(f).ok());
    let code = opened.as_ref().err().and_then(io::Error::raw_os_error);
    if is_delete_pending(code, status, flag) {
        return Err(io::Error::from_raw_os_error(ERROR_FILE_NOT_FOUND));
    }
    opened
}

/// Whether an open met a delete-pending file: on Windows the open fails
/// with `ERROR_ACCESS_DENIED` whose NTSTATUS is `STATUS_DELETE_PENDING`
/// **[docs]**; where it succeeds (Wine 8, which also reads the flag as
/// false **[Wine]**), the opened file's `FileStandardInfo.DeletePending`.
/// `code` is the open's Win32 error, `status` the thread's last NTSTATUS
/// after it, `flag` the opened handle's `DeletePending`.
fn is_delete_pending(code: Option<i32>, status: Option<u32>, flag: Option<bool>) -> bool {
    match code {
        Some(ERROR_ACCESS_DENIED) => status == Some(STATUS_DELETE_PENDING),
        Some(_) => false,
        None => flag == Some(true),
    }
}

/// `lstat`: a reparse point (symlink, junction) is seen as itself.
pub(crate) fn lstat(path: &Path) -> io::Result<Stat> {
    fstat(open_for_stat(path, true)?)
}

/// `stat`, following reparse points.
pub(crate) fn stat(path: &Path) -> io::Result<Stat> {
    fstat(open_for_stat(path, false)?)
}

/// Whether two stats describe the same file: the same file ID (128-bit
/// where the filesystem gives one), and the same volume where both serials
/// are known (Wine reports serial 0 through the handle that created a
/// file: docs/WINDOWS.md, decision 6). See [`FileKey`].
pub(crate) fn same_inode(a: &Stat, b: &Stat) -> bool {
    same_key(&a.key, &b.key)
}

/// The kind of file the stat is of.
pub(crate) fn file_kind(st: &Stat) -> FileKind {
    match st.st_mode & S_IFMT {
        S_IFREG => FileKind::Regular,
        S_IFDIR => FileKind::Directory,
        S_IFLNK => FileKind::Symlink,
        _ => FileKind::Other,
    }
}

/// Whether the stat is of a regular file.
pub(crate) fn is_regular(st: &Stat) -> bool {
    file_kind(st) == FileKind::Regular
}

/// Whether the stat is of a directory.
pub(crate) fn is_dir(st: &Stat) -> bool {
    file_kind(st) == FileKind::Directory
}

/// The kind of file `st` describes (a reparse point is a symlink;
/// anything not on a disk a device).
pub(crate) fn node_kind(st: &Stat) -> NodeKind {
    match file_kind(st) {
        FileKind::Regular => NodeKind::Regular { links: st.st_nlink },
        FileKind::Symlink => NodeKind::Symlink,
        FileKind::Directory => NodeKind::Directory,
        FileKind::Other => NodeKind::Device,
    }
}

// ---------------------------------------------------------------------------
// Opening, creating, linking, removing
// ---------------------------------------------------------------------------

/// A handle that is a reparse point is refused as a symlink would be with
/// `O_NOFOLLOW`.
fn refuse_reparse(f: File) -> io::Result<File> {
    match fstat(&f) {
        Ok(st) if st.attributes & FILE_ATTRIBUTE_REPARSE_POINT != 0 => Err(Errno::LOOP.into()),
        _ => Ok(f),
    }
}

/// Opens an existing path without following a reparse point in its last
/// component (there are no FIFOs to block on). The handle has no `DELETE`
/// access (a reader without `FILE_SHARE_DELETE` could not open the file
/// then) and shares everything.
pub(crate) fn open_existing(path: &Path, write: bool) -> io::Result<OwnedFd> {
    let f = open_unless_pending(
        OpenOptions::new()
            .read(true)
            .write(write)
            .share_mode(SHARE_ALL)
            .custom_flags(FILE_FLAG_OPEN_REPARSE_POINT),
        path,
    )?;
    Ok(refuse_reparse(f)?.into())
}

/// Whether an open failed because the last component is a reparse point.
pub(crate) fn is_nofollow_refusal(e: &io::Error) -> bool {
    e.raw_os_error() == Some(ERROR_STOPPED_ON_SYMLINK)
}

/// The path of an open directory (`GetFinalPathNameByHandleW`): Win32 has
/// no `*at` calls, so names in it are opened by this path joined with the
/// name. Weaker than `openat` against a directory swapped meanwhile.
fn dir_path(dir: BorrowedFd<'_>) -> io::Result<PathBuf> {
    use std::os::windows::ffi::OsStringExt;
    let mut buf = vec![0u16; 512];
    loop {
        // SAFETY: `buf` has `len` elements; the handle is live.
        let n = unsafe {
            GetFinalPathNameByHandleW(dir.as_raw_handle(), buf.as_mut_ptr(), buf.len() as u32, 0)
        } as usize;
        if n == 0 {
            return Err(io::Error::last_os_error());
        }
        if n < buf.len() {
            return Ok(OsString::from_wide(&buf[..n]).into());
        }
        buf.resize(n + 1, 0);
    }
}

/// [`open_existing`] for read, by name in an open directory.
pub(crate) fn open_existing_at(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<OwnedFd> {
    open_existing(&dir_path(dir)?.join(name), false)
}

/// [`lstat`] of `name` in the open directory `dir`.
pub(crate) fn lstat_at(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<Stat> {
    lstat(&dir_path(dir)?.join(name))
}

/// Opens a directory (following reparse points: callers judge the path
/// first).
pub(crate) fn open_dir(path: &Path) -> Result<OwnedFd, Errno> {
    open_dir_with(path, false)
}

/// Opens the directory `name` in `dir` without following a reparse point
/// (`LOOP` for one, `NOTDIR` for anything but a directory).
pub(crate) fn open_dir_at(dir: BorrowedFd<'_>, name: &OsStr) -> Result<OwnedFd, Errno> {
    let parent = dir_path(dir).map_err(|e| Errno::from_io_error(&e).unwrap_or(Errno::IO))?;
    open_dir_with(&parent.join(name), true)
}

fn open_dir_with(path: &Path, nofollow: bool) -> Result<OwnedFd, Errno> {
    let mut flags = FILE_FLAG_BACKUP_SEMANTICS;
    if nofollow {
        flags |= FILE_FLAG_OPEN_REPARSE_POINT;
    }
    let f = OpenOptions::new()
        .read(true)
        .share_mode(SHARE_ALL)
        .custom_flags(flags)
        .open(path)
        .map_err(|e| Errno::from_io_error(&e).unwrap_or(Errno::IO))?;
    let st = fstat(&f).map_err(|e| Errno::from_io_error(&e).unwrap_or(Errno::IO))?;
    match file_kind(&st) {
        FileKind::Directory => Ok(f.into()),
        FileKind::Symlink => Err(Errno::LOOP),
        _ => Err(Errno::NOTDIR),
    }
}

/// The entries of the open directory `dir` (`FindFirstFileExW` through
/// std, by the directory's path); a reparse point is a symlink.
pub(crate) fn read_dir(dir: BorrowedFd<'_>) -> Result<Vec<DirEntry>, Errno> {
    use std::os::windows::fs::MetadataExt;
    let io = |e: io::Error| Errno::from_io_error(&e).unwrap_or(Errno::IO);
    let path = dir_path(dir).map_err(io)?;
    let mut out = Vec::new();
    for entry in std::fs::read_dir(path).map_err(io)? {
        let entry = entry.map_err(io)?;
        let kind = entry.metadata().ok().map(|md| {
            let a = md.file_attributes();
            if a & FILE_ATTRIBUTE_REPARSE_POINT != 0 {
                FileKind::Symlink
            } else if a & FILE_ATTRIBUTE_DIRECTORY != 0 {
                FileKind::Directory
            } else {
                FileKind::Regular
            }
        });
        out.push(DirEntry {
            name: entry.file_name(),
            kind,
        });
    }
    Ok(out)
}

/// Creates `dir` and its missing parents (`mode` has no meaning here:
/// the directory inherits its parent's ACL).
pub(crate) fn create_dir_all(dir: &Path, _mode: u32) -> io::Result<()> {
    std::fs::create_dir_all(dir)
}

/// Which file is at `path` (following reparse points): its [`FileKey`].
pub(crate) fn file_id(path: &Path) -> io::Result<FileKey> {
    Ok(stat(path)?.key)
}

/// Creates a new file at `path` (`CREATE_NEW`, never through a reparse
/// point), shared as every handle is. `mode` has no meaning here.
fn create_new_file(path: &Path, write_only: bool) -> io::Result<File> {
    OpenOptions::new()
        .read(!write_only)
        .write(true)
        .create_new(true)
        .share_mode(SHARE_ALL)
        .custom_flags(FILE_FLAG_OPEN_REPARSE_POINT)
        .open(path)
}

/// Creates a new file at `path` for writing, never opening an existing
/// file (`mode` is not applied: there are no modes here).
pub(crate) fn create_new(path: &Path, _mode: u32) -> io::Result<File> {
    create_new_file(path, true)
}

/// Creates a file under a unique temporary name in `dir`
/// (`.NAME.PID.N.tmp`, `CREATE_NEW`).
pub(crate) fn create_named_temp(
    dir: &Path,
    final_path: &Path,
    _mode: u32,
) -> io::Result<Unnamed> {
    let names = TempNames::new(dir, final_path);
    loop {
        let temp = names.next();
        match create_new_file(&temp, false) {
            Ok(f) => {
                return Ok(Unnamed {
                    fd: f.into(),
                    temp: Some(TempName(temp)),
                })
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

/// The new PID file is made under a temporary name (there is no unnamed
/// file on Windows).
pub(crate) fn create_unnamed(dir: &Path, final_path: &Path, mode: u32) -> io::Result<Unnamed> {
    create_named_temp(dir, final_path, mode)
}

/// Renames the temporary file into place without replacing
/// (`MoveFileExW(temp, path, 0)`): fails with `ERROR_ALREADY_EXISTS`
/// ([`Errno::EXIST`]) when the path exists. The open, locked handle moves
/// with the file.
pub(crate) fn link_named_temp(u: &mut Unnamed, path: &Path) -> io::Result<()> {
    let temp = u.temp.as_ref().expect("named temp file has a name");
    let (from, to) = (wide(&temp.0), wide(path));
    // SAFETY: both are NUL-terminated wide strings that outlive the call.
    match check(unsafe { MoveFileExW(from.as_ptr(), to.as_ptr(), 0) }) {
        Ok(()) => {
            // The temporary name is gone with the rename.
            u.temp.take().expect("checked above").disarm();
            Ok(())
        }
        Err(e) if e.raw_os_error() == Some(ERROR_FILE_EXISTS) => {
            Err(io::Error::from_raw_os_error(ERROR_ALREADY_EXISTS))
        }
        Err(e) => Err(e),
    }
}

/// See [`link_named_temp`].
pub(crate) fn link_unnamed(u: &mut Unnamed, path: &Path) -> io::Result<()> {
    link_named_temp(u, path)
}

/// `DeleteFileW` (a reparse point is removed itself, not its target).
pub(crate) fn unlink(path: &Path) -> Result<(), Errno> {
    let w = wide(path);
    // SAFETY: a NUL-terminated wide string.
    check(unsafe { DeleteFileW(w.as_ptr()) })
        .map_err(|e| Errno::from_io_error(&e).unwrap_or(Errno::IO))
}

/// Removes a temporary name (see [`TempName`]).
pub(crate) fn remove_temp(path: &Path) {
    let _ = unlink(path);
}

/// Removes `path` if it names the file `held` is open on, deleting *that
/// file* rather than a name: a handle with `DELETE` access is opened on the
/// path (never following a reparse point), checked to be on the held file,
/// and its file marked for deletion (`FileDispositionInfoEx` with POSIX
/// semantics, the name going at once; else `FileDispositionInfo`, the name
/// going when the last handle closes). A late release can therefore never
/// remove a successor's file. A reader that opened the file without
/// `FILE_SHARE_DELETE` makes the open fail with a sharing violation: it is
/// retried for a few milliseconds, then reported.
pub(crate) fn remove_if_same(path: &Path, held: impl AsFd) -> Result<RemoveOutcome, RemoveFailed> {
    let mine = fstat(held).map_err(RemoveFailed::Check)?;
    let mut pause = Duration::from_micros(200);
    let mut tries = 0;
    let f = loop {
        match open_unless_pending(
            OpenOptions::new()
                .access_mode(DELETE | FILE_READ_ATTRIBUTES)
                .share_mode(SHARE_ALL)
                .custom_flags(FILE_FLAG_OPEN_REPARSE_POINT | FILE_FLAG_BACKUP_SEMANTICS),
            path,
        ) {
            Ok(f) => break f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(RemoveOutcome::Missing),
            Err(e) if e.raw_os_error() == Some(ERROR_SHARING_VIOLATION) && tries < 10 => {
                tries += 1;
                std::thread::sleep(pause);
                pause *= 2;
            }
            Err(e) => return Err(RemoveFailed::Check(e)),
        }
    };
    let st = fstat(&f).map_err(RemoveFailed::Check)?;
    if !same_inode(&st, &mine) || st.attributes & FILE_ATTRIBUTE_REPARSE_POINT != 0 {
        return Ok(RemoveOutcome::Other);
    }
    let h = f.as_raw_handle();
    let posix = FILE_DISPOSITION_INFO_EX {
        Flags: FILE_DISPOSITION_FLAG_DELETE | FILE_DISPOSITION_FLAG_POSIX_SEMANTICS,
    };
    // SAFETY: the struct outlives the call, which reads `size` bytes of it.
    let ok = unsafe {
        SetFileInformationByHandle(
            h,
            FileDispositionInfoEx,
            (&posix as *const FILE_DISPOSITION_INFO_EX).cast(),
            std::mem::size_of::<FILE_DISPOSITION_INFO_EX>() as u32,
        )
    };
    if ok == 0 {
        // Before Windows 10 1709, on other filesystems, and under Wine 8
        // (ERROR_INVALID_PARAMETER): the classic disposition.
        let classic = FILE_DISPOSITION_INFO { DeleteFile: 1 };
        // SAFETY: as above.
        check(unsafe {
            SetFileInformationByHandle(
                h,
                FileDispositionInfo,
                (&classic as *const FILE_DISPOSITION_INFO).cast(),
                std::mem::size_of::<FILE_DISPOSITION_INFO>() as u32,
            )
        })
        .map_err(RemoveFailed::Remove)?;
    }
    Ok(RemoveOutcome::Removed)
}

/// Whether the file is marked for deletion (a release in progress behind
/// another handle): `FileStandardInfo.DeletePending`. Under Wine it reads
/// false (docs/WINDOWS.md, decision 5).
pub(crate) fn delete_pending(fd: impl AsFd) -> io::Result<bool> {
    let mut info = FILE_STANDARD_INFO::default();
    // SAFETY: the struct outlives the call, which writes `size` bytes.
    check(unsafe {
        GetFileInformationByHandleEx(
            fd.as_fd().as_raw_handle(),
            FileStandardInfo,
            (&mut info as *mut FILE_STANDARD_INFO).cast(),
            std::mem::size_of::<FILE_STANDARD_INFO>() as u32,
        )
    })?;
    Ok(info.DeletePending != 0)
}

// ---------------------------------------------------------------------------
// Locks, reading, writing
// ---------------------------------------------------------------------------

/// `LockFileEx` without waiting on `len` bytes from `offset`: `Ok(false)`
/// when another handle holds a conflicting lock.
fn lock_range(h: RawHandle, offset: u64, len: u64, exclusive: bool) -> io::Result<bool> {
    let mut ov = OVERLAPPED {
        Offset: offset as u32,
        OffsetHigh: (offset >> 32) as u32,
        ..OVERLAPPED::default()
    };
    let mut flags = LOCKFILE_FAIL_IMMEDIATELY;
    if exclusive {
        flags |= LOCKFILE_EXCLUSIVE_LOCK;
    }
    // SAFETY: a live handle, and an OVERLAPPED that outlives the call (the
    // handle is synchronous: the call completes before returning).
    let ok = unsafe { LockFileEx(h, flags, 0, len as u32, (len >> 32) as u32, &mut ov) };
    if ok != 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(ERROR_LOCK_VIOLATION) => Ok(false),
        _ => Err(e),
    }
}

fn unlock_range(h: RawHandle, offset: u64, len: u64) {
    let mut ov = OVERLAPPED {
        Offset: offset as u32,
        OffsetHigh: (offset >> 32) as u32,
        ..OVERLAPPED::default()
    };
    // SAFETY: as in `lock_range`.
    unsafe { UnlockFileEx(h, 0, len as u32, (len >> 32) as u32, &mut ov) };
}

/// Tries to take the exclusive lock (the lock byte) without blocking:
/// `Ok(false)` when another handle holds a lock on it.
pub(crate) fn try_lock_exclusive(fd: impl AsFd) -> io::Result<bool> {
    lock_range(fd.as_fd().as_raw_handle(), LOCK_BYTE, 1, true)
}

/// Whether another handle holds the lock: a shared lock on the lock byte
/// for an instant, then [`record_locked`].
pub(crate) fn is_locked(fd: impl AsFd) -> io::Result<bool> {
    let h = fd.as_fd().as_raw_handle();
    if !lock_range(h, LOCK_BYTE, 1, false)? {
        return Ok(true);
    }
    unlock_range(h, LOCK_BYTE, 1);
    Ok(record_locked(fd))
}

/// Whether a foreign locker (Python's `pid` on byte 0, std's `File::lock`
/// on everything) holds a lock in the content range `[0, 2⁶⁴ − 2)`: a
/// shared lock there for an instant (shared, so that two readers probing
/// at once do not see each other as holders).
pub(crate) fn record_locked(fd: impl AsFd) -> bool {
    let h = fd.as_fd().as_raw_handle();
    match lock_range(h, 0, LOCK_BYTE, false) {
        Ok(true) => {
            unlock_range(h, 0, LOCK_BYTE);
            false
        }
        Ok(false) => true,
        Err(_) => false,
    }
}

/// A `File` view of a borrowed handle, never closed by this view.
fn file_of(fd: BorrowedFd<'_>) -> ManuallyDrop<File> {
    // SAFETY: the handle is live for the borrow, and `ManuallyDrop` never
    // closes it.
    ManuallyDrop::new(unsafe { File::from_raw_handle(fd.as_raw_handle()) })
}

/// Reads at most `MAX_READ + 1` bytes from the start of the file.
pub(crate) fn read_head(fd: impl AsFd) -> io::Result<([u8; MAX_READ + 1], usize)> {
    let mut buf = [0u8; MAX_READ + 1];
    let mut filled = 0;
    let f = file_of(fd.as_fd());
    while filled < buf.len() {
        let want = buf.len() - filled;
        match f.seek_read(&mut buf[filled..], filled as u64) {
            Ok(0) => break,
            Ok(n) if n < want => {
                filled += n;
                break;
            }
            Ok(n) => filled += n,
            // End of file (ReadFile at or past the end says so).
            Err(e) if e.raw_os_error() == Some(38) => break,
            Err(e) => return Err(e),
        }
    }
    Ok((buf, filled))
}

/// Writes `bytes` as the whole content of the file, in place: padded with
/// newlines over the old content, then truncated (Unix empties the file
/// first instead, see its `write_whole`).
pub(crate) fn write_whole(fd: impl AsFd, bytes: &[u8], old_len: u64) -> io::Result<()> {
    let f = file_of(fd.as_fd());
    let new_len = bytes.len() as u64;
    let mut padded = bytes.to_vec();
    let mut longer = old_len > new_len;
    if longer && (old_len > MAX_READ as u64 || bytes.is_empty()) {
        f.set_len(0)?;
        longer = false;
    } else if longer {
        padded.resize(old_len as usize, b'\n');
    }
    let mut done = 0;
    while done < padded.len() {
        match f.seek_write(&padded[done..], done as u64)? {
            0 => return Err(io::ErrorKind::WriteZero.into()),
            n => done += n,
        }
    }
    if longer {
        f.set_len(new_len)?;
    }
    Ok(())
}

/// `FlushFileBuffers`.
pub(crate) fn fsync(fd: impl AsFd) -> io::Result<()> {
    file_of(fd.as_fd()).sync_all()
}

/// Nothing to do: NTFS journals its metadata, and a directory cannot be
/// flushed through a handle opened for reading.
pub(crate) fn fsync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

/// Makes the handle inheritable (`cloexec == false`) or not
/// (`SetHandleInformation(HANDLE_FLAG_INHERIT)`). An inherited handle does
/// not carry the lock (it belongs to the process that took it:
/// docs/WINDOWS.md, decision 7).
pub(crate) fn set_cloexec(fd: impl AsFd, cloexec: bool) -> io::Result<()> {
    let flags = if cloexec { 0 } else { HANDLE_FLAG_INHERIT };
    // SAFETY: a live handle.
    check(unsafe { SetHandleInformation(fd.as_fd().as_raw_handle(), HANDLE_FLAG_INHERIT, flags) })
}

/// Not on Windows (ownership is a SID in an ACL).
pub(crate) fn fchown(_fd: impl AsFd, _uid: Option<u32>, _gid: Option<u32>) -> Result<(), Errno> {
    Err(Errno::NOACL)
}

/// Not on Windows (permissions are ACLs).
pub(crate) fn fchmod(_fd: impl AsFd, _mode: u32) -> Result<(), Errno> {
    Err(Errno::NOACL)
}

/// The owner of a reparse point is not judged yet (`GetSecurityInfo`, a
/// later step): no link is reported as foreign.
pub(crate) fn foreign_symlink(_dir: &Path) -> Option<ForeignSymlink> {
    None
}

/// A network drive or share (`GetDriveTypeW` of the volume holding `dir`
/// is `DRIVE_REMOTE`, as for a `\\server\share` path): `"SMB"`.
pub(crate) fn network_fs(dir: &Path) -> Option<&'static str> {
    let w = wide(dir);
    let mut root = vec![0u16; w.len().max(4) + 2];
    // SAFETY: `root` has `len` elements; `w` is NUL-terminated.
    let ok = unsafe { GetVolumePathNameW(w.as_ptr(), root.as_mut_ptr(), root.len() as u32) };
    if ok == 0 {
        return None;
    }
    // SAFETY: `root` is NUL-terminated by the call above.
    (unsafe { GetDriveTypeW(root.as_ptr()) } == DRIVE_REMOTE).then_some("SMB")
}

// ---------------------------------------------------------------------------
// Processes and signals
// ---------------------------------------------------------------------------

/// A process handle, closed on drop.
fn open_process(pid: Pid, access: u32) -> Result<OwnedFd, Errno> {
    // SAFETY: no pointers; a null handle is failure.
    let h = unsafe { OpenProcess(access, 0, pid.get() as u32) };
    if h.is_null() {
        let e = io::Error::last_os_error().raw_os_error().unwrap_or(0);
        return Err(match e {
            ERROR_INVALID_PARAMETER => Errno::SRCH,
            ERROR_ACCESS_DENIED => Errno::PERM,
            c => Errno::from_code(c),
        });
    }
    // SAFETY: a handle just opened, owned by no one else.
    Ok(unsafe { OwnedFd::from_raw_handle(h) })
}

/// Whether a process handle is signalled (the process exited) within
/// `ms` milliseconds.
fn wait_ms(h: BorrowedFd<'_>, ms: u32) -> bool {
    // SAFETY: a live process handle opened with SYNCHRONIZE.
    unsafe { WaitForSingleObject(h.as_raw_handle(), ms) == WAIT_OBJECT_0 }
}

/// Opens `pid` to query and wait on it; an exited process (whose handle
/// someone still holds) is [`Errno::SRCH`], as there are no zombies here.
fn open_live(pid: Pid, extra: u32) -> Result<OwnedFd, Errno> {
    let h = open_process(pid, PROCESS_QUERY_LIMITED_INFORMATION | SYNCHRONIZE | extra)?;
    if wait_ms(h.as_fd(), 0) {
        return Err(Errno::SRCH);
    }
    Ok(h)
}

/// Whether the process exists and may be opened (`kill(pid, 0)`):
/// `SRCH` for none (or one that exited), `PERM` for one we may not open.
pub(crate) fn probe(pid: Pid) -> Result<(), Errno> {
    open_live(pid, 0).map(drop)
}

/// Whether the process exists, asked without the permission `probe`
/// needs: an open refused for access is a process.
pub(crate) fn exists(pid: Pid) -> Option<bool> {
    match open_live(pid, 0) {
        Ok(_) | Err(Errno::PERM) => Some(true),
        Err(Errno::SRCH) => Some(false),
        Err(_) => None,
    }
}

/// Live or gone (there are no zombies), with the creation time read
/// through the same handle.
pub(crate) fn process_state(pid: Pid) -> (ProcState, Option<proc::ProcStat>) {
    match open_process(pid, PROCESS_QUERY_LIMITED_INFORMATION | SYNCHRONIZE) {
        Ok(h) if wait_ms(h.as_fd(), 0) => (ProcState::Gone, None),
        Ok(h) => (ProcState::Live, proc::stat_of(pid, h.as_fd()).ok()),
        Err(Errno::SRCH) => (ProcState::Gone, None),
        Err(_) => (ProcState::Unknown, None),
    }
}

/// Ends the process behind `h` (`TerminateProcess(h, 1)`), unless it
/// already exited.
fn terminate(h: BorrowedFd<'_>) -> Result<(), Errno> {
    if wait_ms(h, 0) {
        return Err(Errno::SRCH);
    }
    // SAFETY: a live process handle opened with PROCESS_TERMINATE.
    match check(unsafe { TerminateProcess(h.as_raw_handle(), 1) }) {
        Ok(()) => Ok(()),
        // A process that exited meanwhile refuses with access denied.
        Err(_) if wait_ms(h, 0) => Err(Errno::SRCH),
        Err(e) if e.raw_os_error() == Some(ERROR_ACCESS_DENIED) => Err(Errno::PERM),
        Err(e) => Err(Errno::from_io_error(&e).unwrap_or(Errno::IO)),
    }
}

/// Delivers `signal` the only ways Windows has: 0 probes, `KILL` is
/// `TerminateProcess` (through `pidfd` when given: the PID cannot have been
/// reused); any other signal (`TERM` included: there is no SIGTERM, and
/// console events reach only a console's own process groups) is
/// [`Errno::NOSIGNAL`].
pub(crate) fn send_signal(
    pidfd: Option<&OwnedFd>,
    pid: Pid,
    signal: Signal,
) -> Result<(), Errno> {
    match signal.as_raw() {
        0 => match pidfd {
            Some(h) if wait_ms(h.as_fd(), 0) => Err(Errno::SRCH),
            Some(_) => Ok(()),
            None => probe(pid),
        },
        n if n == Signal::KILL.as_raw() => match pidfd {
            Some(h) => terminate(h.as_fd()),
            None => terminate(open_live(pid, PROCESS_TERMINATE)?.as_fd()),
        },
        _ => Err(Errno::NOSIGNAL),
    }
}

/// Whether [`stop`](crate::stop)'s schedule can deliver `signal` to a
/// process: `KILL` (`TerminateProcess`) and 0 only.
///
/// `TERM` would be a console control event, `GenerateConsoleCtrlEvent(
/// CTRL_BREAK_EVENT, group)`, and it is never sent to a PID file's owner:
/// the event is addressed to a *process group* sharing the caller's
/// console, and whether the owner leads a group cannot be known. That it
/// shares our console can be read (`GetConsoleProcessList`), but its group
/// is recorded only in its undocumented process parameters, and an event
/// addressed to a PID that is not a group's is undocumented (it is reported
/// to reach every process on the console, this one included): sending it
/// could signal processes not proved to be the owner. Under Wine the call
/// fails anyway (`ERROR_INVALID_ACCESS`, docs/WINDOWS.md, decision 10). So
/// a `TERM` step is waited out as a grace, then the next step (`KILL`).
pub(crate) fn schedule_deliverable(signal: Signal) -> bool {
    signal.as_raw() == 0 || signal == Signal::KILL
}

/// There are no user IDs here: 0, as every [`Stat`]'s owner (see the
/// module's doc).
pub(crate) fn geteuid() -> u32 {
    0
}

/// Every process, as `(PID, parent PID)` (`CreateToolhelp32Snapshot`).
fn snapshot() -> Vec<(u32, u32)> {
    // SAFETY: no pointers; INVALID_HANDLE_VALUE is failure.
    let snap = unsafe { CreateToolhelp32Snapshot(TH32CS_SNAPPROCESS, 0) };
    if snap == INVALID_HANDLE_VALUE || snap.is_null() {
        return Vec::new();
    }
    // SAFETY: a handle just opened, owned here.
    let snap = unsafe { OwnedFd::from_raw_handle(snap) };
    // SAFETY: all-zero is a valid PROCESSENTRY32W.
    let mut entry: PROCESSENTRY32W = unsafe { std::mem::zeroed() };
    entry.dwSize = std::mem::size_of::<PROCESSENTRY32W>() as u32;
    let mut out = Vec::new();
    // SAFETY: `entry` is a PROCESSENTRY32W with its size set.
    let mut ok = unsafe { Process32FirstW(snap.as_raw_handle(), &mut entry) };
    while ok != 0 {
        out.push((entry.th32ProcessID, entry.th32ParentProcessID));
        // SAFETY: as above.
        ok = unsafe { Process32NextW(snap.as_raw_handle(), &mut entry) };
    }
    out
}

/// The parent process, from a process snapshot: a hint only (the parent
/// may have exited and its PID been reused).
pub(crate) fn parent_pid() -> Option<Pid> {
    let me = std::process::id();
    snapshot()
        .into_iter()
        .find(|&(pid, _)| pid == me)
        .and_then(|(_, parent)| Pid::new(i32::try_from(parent).ok()?))
}

/// A process handle that pins the PID (`OpenProcess` with `SYNCHRONIZE`,
/// and `PROCESS_TERMINATE` where allowed): `NotFound` for no such process
/// or one that exited.
pub(crate) fn pidfd_open(pid: Pid) -> io::Result<Option<OwnedFd>> {
    let h = match open_live(pid, PROCESS_TERMINATE) {
        Err(Errno::PERM) => open_live(pid, 0),
        other => other,
    };
    match h {
        Ok(h) => Ok(Some(h)),
        Err(Errno::SRCH) => Err(io::ErrorKind::NotFound.into()),
        Err(e) => Err(e.into()),
    }
}

/// Waits up to `timeout` (forever for `None`) for the process to exit.
pub(crate) fn pidfd_exited(fd: &OwnedFd, timeout: Option<Duration>) -> bool {
    let Some(timeout) = timeout else {
        return wait_ms(fd.as_fd(), INFINITE);
    };
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        // Rounded up, so that a wait never ends before its timeout.
        let ms = left.as_nanos().div_ceil(1_000_000).min(u128::from(INFINITE - 1)) as u32;
        if wait_ms(fd.as_fd(), ms) {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
    }
}

/// Any PID `OpenProcess` accepts.
pub(crate) fn read_pid_max() -> Option<u32> {
    None
}

/// Where a fact about `pid` is read from, for messages.
pub(crate) fn fact_source(pid: Pid, leaf: &str) -> String {
    match leaf {
        "stat" => format!("the creation time of PID {pid} (GetProcessTimes)"),
        "exe" | "comm" => format!("the image of PID {pid} (QueryFullProcessImageNameW)"),
        _ => format!("{leaf} of PID {pid} (not readable on Windows)"),
    }
}

/// Which file the process's image is: its [`FileKey`].
pub(crate) fn exe_inode(pid: Pid) -> Option<FileKey> {
    Some(stat(&proc::exe_link(pid).ok()?).ok()?.key)
}

/// The identity facts, through a process handle.
pub(crate) mod proc {
    use std::os::windows::io::{AsHandle, AsRawHandle};
    use std::time::{Duration, SystemTime};

    use super::{ffi::*, open_process, BorrowedFd, Errno};
    use crate::pid::Pid;

    pub(crate) use crate::sys::ProcStatus;

    /// What a process handle says, for identity checks.
    #[derive(Clone, Copy, Debug)]
    pub(crate) struct ProcStat {
        /// The PID (4 is the System process).
        pid: i32,
        /// Its creation time, on the wall clock.
        created: Option<SystemTime>,
    }

    /// The creation time through an open handle.
    pub(crate) fn stat_of(pid: Pid, h: BorrowedFd<'_>) -> Result<ProcStat, Errno> {
        let mut t = [FILETIME::default(); 4];
        let [c, e, k, u] = &mut t;
        // SAFETY: four FILETIMEs that outlive the call; a live handle.
        let ok = unsafe { GetProcessTimes(h.as_raw_handle(), c, e, k, u) };
        if ok == 0 {
            return Err(Errno::last());
        }
        Ok(ProcStat {
            pid: pid.get(),
            created: super::filetime(t[0]),
        })
    }

    pub(crate) fn stat_result(pid: Pid) -> Result<ProcStat, Errno> {
        let h = open_process(pid, PROCESS_QUERY_LIMITED_INFORMATION)?;
        stat_of(pid, h.as_handle())
    }

    /// A PID that opens is a process (thread IDs are refused by
    /// `OpenProcess`); users, parents and namespaces are not read here:
    /// UID 0 (as for files), parent 0.
    pub(crate) fn status_result(pid: Pid) -> Result<ProcStatus, Errno> {
        open_process(pid, PROCESS_QUERY_LIMITED_INFORMATION)?;
        Ok(ProcStatus {
            tgid: pid.get(),
            ppid: 0,
            uid: 0,
            uids: [0; 3],
            nspid: vec![pid.get()],
        })
    }

    /// Who holds a lock cannot be read on Windows.
    pub(crate) fn holds_flock(_pid: Pid, _dev: u64, _ino: u64) -> Result<bool, Errno> {
        Err(Errno::NOSYS)
    }

    /// No PID namespaces (silos are out of scope).
    pub(crate) fn same_pid_namespace_result(_pid: Pid) -> Result<bool, Errno> {
        Ok(true)
    }

    /// The image's path (`QueryFullProcessImageNameW`, a DOS path).
    pub(crate) fn exe_link(pid: Pid) -> Result<std::path::PathBuf, Errno> {
        use std::os::windows::ffi::OsStringExt;
        let h = open_process(pid, PROCESS_QUERY_LIMITED_INFORMATION)?;
        let mut buf = vec![0u16; 32_768];
        let mut len = buf.len() as u32;
        // SAFETY: `buf` has `len` elements; a live handle.
        let ok =
            unsafe { QueryFullProcessImageNameW(h.as_raw_handle(), 0, buf.as_mut_ptr(), &mut len) };
        if ok == 0 {
            return Err(Errno::last());
        }
        Ok(std::ffi::OsString::from_wide(&buf[..len as usize]).into())
    }

    /// The image's file name (`app.exe`).
    pub(crate) fn comm(pid: Pid) -> Option<Vec<u8>> {
        let path = exe_link(pid).ok()?;
        Some(path.file_name()?.to_string_lossy().into_owned().into_bytes())
    }

    /// Why [`comm`] could not be read.
    pub(crate) fn comm_errno(pid: Pid) -> Option<Errno> {
        exe_link(pid).err()
    }

    /// Not read yet (`NtQueryInformationProcess`, a later step).
    pub(crate) fn cmdline(_pid: Pid) -> Option<std::ffi::OsString> {
        None
    }

    /// Processes are owned by SIDs, not UIDs.
    pub(crate) fn uid(_pid: Pid) -> Option<u32> {
        None
    }

    /// When the system booted: now minus `GetTickCount64`.
    pub(crate) fn boot_time() -> Option<SystemTime> {
        // SAFETY: no arguments.
        let up = Duration::from_millis(unsafe { GetTickCount64() });
        SystemTime::now().checked_sub(up)
    }

    pub(crate) fn start_time_of(st: &ProcStat) -> Option<SystemTime> {
        st.created
    }

    pub(crate) fn start_time(pid: Pid) -> Option<SystemTime> {
        start_time_of(&stat_result(pid).ok()?)
    }

    /// The System process (PID 4 on Windows) is the kernel's.
    pub(crate) fn is_kernel_thread_of(st: &ProcStat) -> bool {
        st.pid == 4
    }

    /// The same image file (its [`FileKey`](super::FileKey)).
    pub(crate) fn same_exe(a: Pid, b: Pid) -> bool {
        match (super::exe_inode(a), super::exe_inode(b)) {
            (Some(x), Some(y)) => x == y,
            _ => false,
        }
    }

    /// No lock table to name a holder.
    pub(crate) fn flock_pids(_ino: u64) -> Vec<Pid> {
        Vec::new()
    }

    /// Every process (`CreateToolhelp32Snapshot`).
    pub(crate) fn all_pids() -> Vec<Pid> {
        super::snapshot()
            .into_iter()
            .filter_map(|(pid, _)| Pid::new(i32::try_from(pid).ok()?))
            .collect()
    }

    /// The lock table cannot be read.
    pub(crate) fn flocks_on(_ino: u64) -> Option<(bool, bool)> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delete_pending_file_is_recognised_by_its_status_or_its_flag() {
        let denied = Some(ERROR_ACCESS_DENIED);
        // Windows: the open is refused, and the NTSTATUS says why.
        assert!(is_delete_pending(denied, Some(STATUS_DELETE_PENDING), None));
        // Access denied for another reason (an ACL): a real refusal.
        assert!(!is_delete_pending(denied, Some(0xC000_0022), None));
        assert!(!is_delete_pending(denied, None, None));
        // Any other failure is what it is.
        let other = Some(ERROR_SHARING_VIOLATION);
        assert!(!is_delete_pending(other, Some(STATUS_DELETE_PENDING), None));
        // An open that succeeded: the handle's DeletePending.
        assert!(is_delete_pending(None, None, Some(true)));
        assert!(!is_delete_pending(None, None, Some(false)));
        assert!(!is_delete_pending(None, None, None));
    }

    /// A file marked for deletion while another handle keeps it open: on
    /// Windows it is no file to the seam (so an acquire starts again and a
    /// reader finds nothing). Wine 8 keeps it visible and reads its flag
    /// as false (docs/WINDOWS.md, decision 5): there the test can only say
    /// so.
    #[test]
    fn a_delete_pending_file_is_no_file_where_the_system_shows_one() {
        let dir = std::env::temp_dir().join(format!("pidguard-pending-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("app.pid");
        std::fs::write(&path, "123").unwrap();
        let reader = open_existing(&path, false).unwrap();
        let doomed = OpenOptions::new()
            .access_mode(DELETE)
            .share_mode(SHARE_ALL)
            .open(&path)
            .unwrap();
        let classic = FILE_DISPOSITION_INFO { DeleteFile: 1 };
        // SAFETY: the struct outlives the call.
        check(unsafe {
            SetFileInformationByHandle(
                doomed.as_raw_handle(),
                FileDispositionInfo,
                (&classic as *const FILE_DISPOSITION_INFO).cast(),
                std::mem::size_of::<FILE_DISPOSITION_INFO>() as u32,
            )
        })
        .unwrap();
        drop(doomed);
        let flag = delete_pending(&reader).unwrap();
        let seen = lstat(&path).map(drop);
        let opened = open_existing(&path, true).map(drop);
        if flag {
            assert_eq!(seen.unwrap_err().kind(), io::ErrorKind::NotFound);
            assert_eq!(opened.unwrap_err().kind(), io::ErrorKind::NotFound);
        } else {
            eprintln!(
                "this system does not show a delete-pending file (Wine): \
                 DeletePending false, lstat {seen:?}, open {opened:?}"
            );
        }
        drop(reader);
        assert!(!path.exists(), "the name went with the last handle");
        std::fs::remove_dir(&dir).unwrap();
    }

    fn key(volume: u64, id: u128, wide: bool) -> FileKey {
        FileKey { volume, id, wide }
    }

    #[test]
    fn file_keys_compare_128_bit_ids_and_fall_back_to_the_64_bit_index() {
        // 128-bit IDs (ReFS): two that share their low 64 bits differ.
        let high = 1u128 << 64;
        assert!(same_key(&key(7, high | 5, true), &key(7, high | 5, true)));
        assert!(!same_key(&key(7, high | 5, true), &key(7, 5, true)));
        // Their 64-bit serials compare in full...
        assert!(!same_key(&key(1 << 32 | 7, 5, true), &key(7, 5, true)));
        // ...but against a short (32-bit) serial only in their low bits.
        assert!(same_key(&key(1 << 32 | 7, 5, true), &key(7, 5, false)));
        assert!(!same_key(&key(8, 5, true), &key(7, 5, false)));
        // The fallback: the 64-bit index, zero-extended.
        assert!(same_key(&key(7, 5, false), &key(7, 5, false)));
        assert!(!same_key(&key(7, 6, false), &key(7, 5, false)));
        // Serial 0 (Wine, through the creating handle): the ID decides.
        assert!(same_key(&key(0, 5, false), &key(7, 5, true)));
        assert!(!same_key(&key(0, 6, false), &key(7, 5, true)));
        // file_key makes them from the two calls' structs.
        let info = BY_HANDLE_FILE_INFORMATION {
            dwVolumeSerialNumber: 7,
            nFileIndexHigh: 1,
            nFileIndexLow: 2,
            ..Default::default()
        };
        assert_eq!(file_key(&info, None), key(7, 1 << 32 | 2, false));
        let mut id = FILE_ID_INFO {
            VolumeSerialNumber: 1 << 32 | 7,
            ..Default::default()
        };
        id.FileId[0] = 2;
        id.FileId[4] = 1;
        id.FileId[15] = 0x80;
        let wide = file_key(&info, Some(&id));
        assert_eq!(wide.id, (0x80u128 << 120) | 1 << 32 | 2);
        assert!(wide.wide && wide.volume == 1 << 32 | 7);
    }

    /// Both paths on this system's files: two handles on one file have one
    /// key, two files two; and where `FileIdInfo` answers, its key equals
    /// the fallback's (the 64-bit index zero-extended, as on NTFS).
    #[test]
    fn a_files_key_is_the_same_through_two_handles_and_either_call() {
        let dir = std::env::temp_dir().join(format!("pidguard-key-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (a, b) = (dir.join("a"), dir.join("b"));
        std::fs::write(&a, "1").unwrap();
        std::fs::write(&b, "2").unwrap();
        let ha = open_existing(&a, false).unwrap();
        let (one, two) = (fstat(&ha).unwrap(), lstat(&a).unwrap());
        assert!(same_inode(&one, &two), "{one:?} {two:?}");
        assert!(!same_inode(&one, &lstat(&b).unwrap()));
        let mut info = BY_HANDLE_FILE_INFORMATION::default();
        // SAFETY: a live handle; the call fills the struct.
        check(unsafe { GetFileInformationByHandle(ha.as_raw_handle(), &mut info) }).unwrap();
        let narrow = file_key(&info, None);
        match file_id_info(ha.as_raw_handle()) {
            Some(id) => {
                let wide = file_key(&info, Some(&id));
                eprintln!("FileIdInfo answers: {wide:?} (fallback {narrow:?})");
                assert!(one.key.wide);
                assert!(same_key(&wide, &narrow), "{wide:?} {narrow:?}");
            }
            None => {
                eprintln!("FileIdInfo does not answer here: the 64-bit index is used");
                assert!(!one.key.wide);
            }
        }
        drop(ha);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
