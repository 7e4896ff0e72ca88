//! The crate's one error type.
//!
//! [`Error`] is a struct over a small amount of private state; callers match
//! on [`Error::kind`] and read details through accessors ([`Error::path`],
//! [`Error::holder`], [`Error::io_error`], [`Error::parse_error`],
//! [`Error::unsafe_file`]). Every message says what happened, to which path,
//! and what to do about it.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use crate::pid::{ParseError, Pid};

/// What went wrong, for callers to match on.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// Another process holds the PID file's lock. [`Error::holder`] names the
    /// PID written in the file when it could be read.
    AlreadyRunning,
    /// The file's content is not a valid PID. [`Error::parse_error`] says
    /// which rule rejected it and why.
    InvalidContents,
    /// The path is not a plain regular file with a single link (a symlink, a
    /// directory, a FIFO, a socket, a device, or a hard-linked file), so it is
    /// refused without being opened for writing. [`Error::unsafe_file_reason`] says
    /// which.
    UnsafeFile,
    /// The PID file (or its directory) could not be created or written:
    /// permissions on the directory, a read-only or full filesystem.
    CannotCreate,
    /// An existing PID file could not be opened or read for lack of
    /// permission.
    PermissionDenied,
    /// A name given to [`Pidfile::named`](crate::Pidfile::named) is not a safe
    /// file name, or no standard location could be found for it.
    InvalidName,
    /// A process was not signalled because the PID file cannot be trusted
    /// to name it (when running as root: a file others could have written),
    /// or because it names pidguard itself or its parent. The message says
    /// which check failed.
    Untrusted,
    /// Nothing was signalled (or concluded) because a fact needed to prove
    /// the process is the file's owner could not be read (`/proc` hidden
    /// or missing, another user's process), or because the lock's holder
    /// cannot be identified or reached from here (another PID namespace).
    /// The message names the fact.
    Unproved,
    /// The operation is not supported on this platform or filesystem.
    Unsupported,
    /// Any other I/O error. [`Error::io_error`] has it.
    Io,
}

/// Why a path was refused as a PID file.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UnsafeFile {
    /// The path is a symbolic link (never followed).
    Symlink,
    /// The path is a directory.
    Directory,
    /// The path is a FIFO (never opened in blocking mode).
    Fifo,
    /// The path is a Unix socket.
    Socket,
    /// The path is a character or block device.
    Device,
    /// The file has more than one hard link (the count is given).
    HardLinks(u64),
    /// The way to the file's directory goes through a symbolic link owned
    /// by neither root nor the caller (its owner's uid is given), which
    /// could point anywhere its owner likes. Links owned by root or the
    /// caller, such as `/var/run` → `/run`, are followed.
    ForeignSymlink {
        /// The link's owner.
        uid: u32,
    },
}

impl fmt::Display for UnsafeFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UnsafeFile::Symlink => f.write_str("is a symbolic link"),
            UnsafeFile::Directory => f.write_str("is a directory"),
            UnsafeFile::Fifo => f.write_str("is a FIFO"),
            UnsafeFile::Socket => f.write_str("is a socket"),
            UnsafeFile::Device => f.write_str("is a device node"),
            UnsafeFile::HardLinks(n) => write!(f, "has {n} hard links"),
            UnsafeFile::ForeignSymlink { uid } => write!(
                f,
                "is reached through a symbolic link owned by uid {uid}, neither root nor the caller"
            ),
        }
    }
}

/// The error type of every fallible operation in this crate.
///
/// Convert it into an [`io::Error`] with `?` or `From` when that is what the
/// caller deals in; the [`io::ErrorKind`] of an underlying I/O error is kept.
pub struct Error {
    inner: Box<Inner>,
}

#[derive(Debug)]
struct Inner {
    kind: ErrorKind,
    path: Option<PathBuf>,
    repr: Repr,
    /// A sentence of context, shown after the standard message (variants
    /// with a message of their own say everything themselves).
    detail: Option<String>,
}

/// What happened, with what each case knows: the accessors
/// ([`Error::holder`], [`Error::io_error`], [`Error::parse_error`],
/// [`Error::unsafe_file_reason`]) and the message follow from it.
#[derive(Debug)]
enum Repr {
    /// The kind's standard message, nothing more to tell.
    Plain,
    /// An underlying I/O error.
    Io(io::Error),
    /// The lock is held; the PID in the file when it could be read.
    Held { holder: Option<Pid> },
    /// Not locked, but the file names a running process that is not proved
    /// not to be its owner; `why` says what was found.
    RunningUnlocked { pid: Pid, why: String },
    /// The content is not a valid PID.
    Parse(ParseError),
    /// The path is not a plain regular file with one link.
    Unsafe(UnsafeFile),
    /// The directory is reached through `link`, owned by `uid`.
    ForeignSymlink { link: PathBuf, uid: u32 },
    /// `kill`/`pidfd_send_signal` was refused with `EPERM`.
    SignalDenied {
        pid: Pid,
        owner: String,
        io: io::Error,
    },
    /// A live process whose ownership could not be proved.
    Unproved {
        pid: Pid,
        uid: Option<u32>,
        why: String,
    },
    /// Locked by a process that cannot be identified from here.
    HolderUnreachable { file_pid: Pid },
}

impl Error {
    fn new(kind: ErrorKind, path: Option<&Path>, repr: Repr) -> Error {
        Error {
            inner: Box::new(Inner {
                kind,
                path: path.map(Path::to_path_buf),
                repr,
                detail: None,
            }),
        }
    }

    pub(crate) fn already_running(path: &Path, holder: Option<Pid>) -> Error {
        Error::new(ErrorKind::AlreadyRunning, Some(path), Repr::Held { holder })
    }

    /// The file is not locked but names a running process that is not
    /// proved not to be its owner (a daemon that does not lock, as nginx):
    /// it is not taken over. `why` says what was found.
    pub(crate) fn running_unlocked(path: &Path, pid: Pid, why: &str) -> Error {
        let why = why.to_string();
        Error::new(ErrorKind::AlreadyRunning, Some(path), Repr::RunningUnlocked { pid, why })
    }

    pub(crate) fn invalid_contents(path: &Path, parse: ParseError) -> Error {
        Error::new(ErrorKind::InvalidContents, Some(path), Repr::Parse(parse))
    }

    pub(crate) fn unsafe_file(path: &Path, why: UnsafeFile) -> Error {
        Error::new(ErrorKind::UnsafeFile, Some(path), Repr::Unsafe(why))
    }

    /// The directory's path goes through a link someone else owns.
    pub(crate) fn foreign_symlink(path: &Path, found: &crate::sys::ForeignSymlink) -> Error {
        let repr = Repr::ForeignSymlink {
            link: found.link.clone(),
            uid: found.uid,
        };
        Error::new(ErrorKind::UnsafeFile, Some(path), repr)
    }

    pub(crate) fn untrusted(path: &Path, detail: String) -> Error {
        Error::new(ErrorKind::Untrusted, Some(path), Repr::Plain).with_detail(detail)
    }

    /// `kill`/`pidfd_send_signal` was refused with `EPERM`.
    pub(crate) fn signal_denied(path: &Path, pid: Pid, owner: String, io: io::Error) -> Error {
        let repr = Repr::SignalDenied { pid, owner, io };
        Error::new(ErrorKind::PermissionDenied, Some(path), repr)
    }

    /// The file names a live process whose ownership could not be proved
    /// (`why`: the fact that could not be read).
    pub(crate) fn unproved(path: &Path, pid: Pid, why: impl fmt::Display) -> Error {
        let uid = crate::sys::proc::uid(pid);
        let why = why.to_string();
        Error::new(ErrorKind::Unproved, Some(path), Repr::Unproved { pid, uid, why })
    }

    /// The file is locked by a process that cannot be identified or reached
    /// from here.
    pub(crate) fn holder_unreachable(path: &Path, file_pid: Pid) -> Error {
        let repr = Repr::HolderUnreachable { file_pid };
        Error::new(ErrorKind::Unproved, Some(path), repr)
    }

    pub(crate) fn invalid_name(detail: String) -> Error {
        Error::new(ErrorKind::InvalidName, None, Repr::Plain).with_detail(detail)
    }

    /// No standard location for a named PID file (no private runtime
    /// directory, no home directory): [`ErrorKind::CannotCreate`] without a
    /// path; `detail` says what to set.
    pub(crate) fn no_location(detail: String) -> Error {
        Error::new(ErrorKind::CannotCreate, None, Repr::Plain).with_detail(detail)
    }

    /// An I/O error while creating or writing the file: classified as
    /// [`ErrorKind::CannotCreate`] (or `Unsupported`).
    pub(crate) fn create(path: &Path, err: io::Error) -> Error {
        let kind = match err.kind() {
            io::ErrorKind::Unsupported => ErrorKind::Unsupported,
            _ => ErrorKind::CannotCreate,
        };
        Error::with_io(kind, path, err)
    }

    /// An I/O error while opening or reading an existing file.
    pub(crate) fn open(path: &Path, err: io::Error) -> Error {
        let kind = match err.kind() {
            io::ErrorKind::PermissionDenied => ErrorKind::PermissionDenied,
            io::ErrorKind::Unsupported => ErrorKind::Unsupported,
            _ => ErrorKind::Io,
        };
        Error::with_io(kind, path, err)
    }

    pub(crate) fn with_io(kind: ErrorKind, path: &Path, err: io::Error) -> Error {
        Error::new(kind, Some(path), Repr::Io(err))
    }

    /// Adds a sentence of context, shown after the main message.
    pub(crate) fn with_detail(mut self, detail: impl Into<String>) -> Error {
        self.inner.detail = Some(detail.into());
        self
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.inner.kind
    }

    /// Whether another process holds the PID file
    /// ([`ErrorKind::AlreadyRunning`]): the answer to "is an instance
    /// already running?", as opposed to a failure.
    pub fn is_already_running(&self) -> bool {
        self.inner.kind == ErrorKind::AlreadyRunning
    }

    /// The PID file this error is about, when there is one.
    pub fn path(&self) -> Option<&Path> {
        self.inner.path.as_deref()
    }

    /// For [`ErrorKind::AlreadyRunning`]: the PID named in the file, when it
    /// could be read while the lock was held.
    pub fn holder(&self) -> Option<Pid> {
        match &self.inner.repr {
            Repr::Held { holder } => *holder,
            Repr::RunningUnlocked { pid, .. } | Repr::Unproved { pid, .. } => Some(*pid),
            _ => None,
        }
    }

    /// The underlying I/O error, if any.
    pub fn io_error(&self) -> Option<&io::Error> {
        match &self.inner.repr {
            Repr::Io(e) | Repr::SignalDenied { io: e, .. } => Some(e),
            _ => None,
        }
    }

    /// For [`ErrorKind::InvalidContents`]: what the parser rejected.
    pub fn parse_error(&self) -> Option<&ParseError> {
        match &self.inner.repr {
            Repr::Parse(p) => Some(p),
            _ => None,
        }
    }

    /// For [`ErrorKind::UnsafeFile`]: why the path was refused.
    pub fn unsafe_file_reason(&self) -> Option<UnsafeFile> {
        match &self.inner.repr {
            Repr::Unsafe(why) => Some(*why),
            Repr::ForeignSymlink { uid, .. } => Some(UnsafeFile::ForeignSymlink { uid: *uid }),
            _ => None,
        }
    }

    fn path_display(&self) -> std::path::Display<'_> {
        self.inner
            .path
            .as_deref()
            .unwrap_or(Path::new("<no path>"))
            .display()
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path_display();
        let i = &self.inner;
        // The variants with a message of their own: complete, remedy
        // included, never followed by a detail.
        match &i.repr {
            Repr::RunningUnlocked { pid, why } => {
                return write!(
                    f,
                    "{path} is not locked, but it names PID {pid}, which is running: {why}; it is \
                     not taken over: stop that process first (pidguard stop -p {path}), or remove \
                     the file if PID {pid} is not its owner"
                )
            }
            Repr::ForeignSymlink { link, uid } => {
                return write!(
                    f,
                    "{path} is reached through the symbolic link {}, owned by uid {uid} \
                     (neither root nor you), which could point anywhere; refusing to follow it: \
                     use the real directory's path, or have the link owned by root",
                    link.display()
                )
            }
            Repr::SignalDenied { pid, owner, .. } => {
                return write!(
                    f,
                    "not permitted to signal process {pid} named in {path}: it belongs to {owner}; \
                     run as that user or as root"
                )
            }
            Repr::Unproved { pid, uid, why } => {
                let owner = uid
                    .map(|u| format!(" (it belongs to UID {u})"))
                    .unwrap_or_default();
                return write!(
                    f,
                    "{path} names PID {pid}{owner}, which is alive, but it could not be proved to be \
                     the file's owner: {why}; nothing was signalled and the file is kept: run as \
                     root (or as the process's user) where /proc shows the process"
                );
            }
            Repr::HolderUnreachable { file_pid } => {
                return write!(
                    f,
                    "{path} is locked by a process that could not be identified from here (it names \
                     PID {file_pid}, which does not hold the lock: the holder lives in another PID \
                     namespace, or inherited the lock); nothing was signalled and the file is kept: \
                     stop it from where the holder runs"
                )
            }
            _ => {}
        }
        let io = self.io_error();
        match i.kind {
            ErrorKind::AlreadyRunning => match self.holder() {
                Some(pid) => write!(
                    f,
                    "{path} is locked by another instance (PID {pid}); \
                     stop that process or wait for it to exit"
                )?,
                None => write!(
                    f,
                    "{path} is locked by another instance (its PID could not be read); \
                     wait for it to exit"
                )?,
            },
            ErrorKind::InvalidContents => match self.parse_error() {
                Some(p) => write!(
                    f,
                    "{path} does not hold a valid PID: {p}; \
                     if no process owns it, remove the file"
                )?,
                None => write!(f, "{path} does not hold a valid PID")?,
            },
            ErrorKind::UnsafeFile => {
                let why = self
                    .unsafe_file_reason()
                    .map(|u| u.to_string())
                    .unwrap_or_else(|| "is not a regular file".into());
                write!(
                    f,
                    "{path} {why}; refusing to use it as a PID file \
                     (a PID file must be a regular file with one link): \
                     remove it or choose another path"
                )?
            }
            ErrorKind::CannotCreate if i.path.is_none() && io.is_none() => {
                f.write_str("no standard location for the PID file")?
            }
            ErrorKind::CannotCreate => {
                write!(f, "cannot create PID file {path}")?;
                if let Some(e) = io {
                    write!(f, ": {e}")?;
                }
                f.write_str(
                    "; check that the directory is writable by this user \
                     and that the filesystem is neither read-only nor full",
                )?
            }
            ErrorKind::PermissionDenied => {
                write!(f, "permission denied on PID file {path}")?;
                if let Some(e) = io {
                    write!(f, ": {e}")?;
                }
                f.write_str("; run as the file's owner or fix its permissions")?
            }
            ErrorKind::InvalidName => f.write_str("invalid PID file name")?,
            ErrorKind::Untrusted => write!(f, "refusing to signal the process named in {path}")?,
            ErrorKind::Unproved => write!(
                f,
                "refusing to signal the process named in {path}: its ownership is unproved"
            )?,
            ErrorKind::Unsupported => {
                write!(f, "unsupported operation on {path}")?;
                if let Some(e) = io {
                    write!(f, ": {e}")?;
                }
            }
            ErrorKind::Io => {
                write!(f, "I/O error on PID file {path}")?;
                if let Some(e) = io {
                    write!(f, ": {e}")?;
                }
            }
        }
        if let Some(d) = &i.detail {
            write!(f, ": {d}")?;
        }
        Ok(())
    }
}

/// Context for I/O results: which path, and what was being done to it
/// (as tempfile's `IoResultExt::with_err_path`), instead of a hand-written
/// `.map_err(|e| Error::open(path, e))` at every call.
pub(crate) trait IoResultExt<T> {
    /// Opening or reading an existing file failed ([`Error::open`]).
    fn open_err(self, path: &Path) -> Result<T>;
    /// Creating or writing the file failed ([`Error::create`]).
    fn create_err(self, path: &Path) -> Result<T>;
    /// Any other I/O error on `path` ([`ErrorKind::Io`]).
    fn io_err(self, path: &Path) -> Result<T>;
}

impl<T, E: Into<io::Error>> IoResultExt<T> for std::result::Result<T, E> {
    fn open_err(self, path: &Path) -> Result<T> {
        self.map_err(|e| Error::open(path, e.into()))
    }

    fn create_err(self, path: &Path) -> Result<T> {
        self.map_err(|e| Error::create(path, e.into()))
    }

    fn io_err(self, path: &Path) -> Result<T> {
        self.map_err(|e| Error::with_io(ErrorKind::Io, path, e.into()))
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.inner.repr {
            Repr::Io(e) | Repr::SignalDenied { io: e, .. } => Some(e),
            Repr::Parse(p) => Some(p),
            _ => None,
        }
    }
}

impl From<Error> for io::Error {
    fn from(e: Error) -> io::Error {
        let kind = match e.kind() {
            ErrorKind::AlreadyRunning => io::ErrorKind::WouldBlock,
            ErrorKind::InvalidContents => io::ErrorKind::InvalidData,
            ErrorKind::InvalidName => io::ErrorKind::InvalidInput,
            ErrorKind::PermissionDenied | ErrorKind::Untrusted | ErrorKind::Unproved => {
                io::ErrorKind::PermissionDenied
            }
            ErrorKind::Unsupported => io::ErrorKind::Unsupported,
            ErrorKind::UnsafeFile | ErrorKind::CannotCreate | ErrorKind::Io => e
                .io_error()
                .map(io::Error::kind)
                .unwrap_or(io::ErrorKind::InvalidInput),
        };
        io::Error::new(kind, e)
    }
}

/// `Result<T, pidguard::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_path_and_a_remedy() {
        let p = Path::new("/run/x.pid");
        let e = Error::already_running(p, Pid::new(42));
        let s = e.to_string();
        assert!(s.contains("/run/x.pid") && s.contains("42"), "{s}");
        let e = Error::unsafe_file(p, UnsafeFile::Symlink);
        assert!(e.to_string().contains("symbolic link"));
        assert_eq!(e.kind(), ErrorKind::UnsafeFile);
        let e = Error::create(p, io::Error::from_raw_os_error(30));
        assert_eq!(e.kind(), ErrorKind::CannotCreate);
        assert!(e.to_string().contains("read-only"), "{e}");
    }

    #[test]
    fn converts_to_io_error_keeping_kind() {
        let p = Path::new("x.pid");
        let e: io::Error = Error::open(p, io::Error::from(io::ErrorKind::PermissionDenied)).into();
        assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
        let e: io::Error = Error::already_running(p, None).into();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
    }
}
