//! The `signal-cleanup` feature's signal handler (see `crate::cleanup`):
//! it removes the PID file when SIGTERM, SIGINT or SIGHUP arrives. Only
//! async-signal-safe calls, through libc (rustix's calls are not promised
//! to be async-signal-safe, and the dispositions need `sigaction`).

use std::ffi::CString;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering};

/// The most file content the handler compares; a PID file holds a dozen
/// bytes at most.
const CONTENT_MAX: usize = 64;

/// The signals whose handler blocks the others while it runs.
const SIGNALS: [libc::c_int; 3] = [libc::SIGTERM, libc::SIGINT, libc::SIGHUP];

/// Records a guard's file (`path`, open as `fd`: its inode and content, and
/// this process) as the one the handler removes, replacing the previous
/// one. `false` (nothing recorded) in PID 1, which is not killed by these
/// signals.
pub(crate) fn publish(path: &Path, fd: BorrowedFd<'_>) -> io::Result<bool> {
    let target = Target::of(path, fd)?;
    if target.owner == 1 {
        return Ok(false);
    }
    // Published before any handler can run, and never freed: a handler may
    // be reading the previous target right now.
    TARGET.store(Box::into_raw(Box::new(target)), Ordering::Release);
    Ok(true)
}

/// Forgets the recorded file: the handler removes nothing.
pub(crate) fn forget() {
    // The old target is left allocated: a handler may be reading it.
    TARGET.store(ptr::null_mut(), Ordering::Release);
}

/// Restores `sig`'s default disposition if its handler is still ours.
pub(crate) fn restore_default_if_ours(sig: libc::c_int) -> io::Result<()> {
    if disposition(sig)? == handler_address() {
        set_disposition(sig, libc::SIG_DFL)?;
    }
    Ok(())
}

/// What the handler needs, prepared in advance. Never freed once published
/// (a handler in another thread may still be reading it): a few dozen bytes
/// per call of [`remove_on_signals`].
struct Target {
    path: CString,
    dev: libc::dev_t,
    ino: libc::ino_t,
    owner: libc::pid_t,
    content: [u8; CONTENT_MAX],
    len: usize,
}

/// The file the handler removes; null when there is none.
static TARGET: AtomicPtr<Target> = AtomicPtr::new(ptr::null_mut());

impl Target {
    /// Records a guard's file: its path, inode and content, and this process.
    fn of(file: &Path, fd: BorrowedFd<'_>) -> io::Result<Target> {
        let path = CString::new(file.as_os_str().as_bytes()).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("the PID file path {file:?} contains a NUL byte"),
            )
        })?;
        let mut st = MaybeUninit::<libc::stat>::uninit();
        // SAFETY: the descriptor is the guard's, open for as long as the
        // borrow `fd` lasts; `st` is valid for writing a `stat`.
        if unsafe { libc::fstat(fd.as_raw_fd(), st.as_mut_ptr()) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fstat succeeded, so it filled in `st`.
        let st = unsafe { st.assume_init() };
        let mut content = [0u8; CONTENT_MAX];
        let mut len = 0;
        while len < CONTENT_MAX {
            match rustix::io::pread(fd, &mut content[len..], len as u64) {
                Ok(0) => break,
                Ok(n) => len += n,
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Ok(Target {
            path,
            dev: st.st_dev,
            ino: st.st_ino,
            // SAFETY: getpid has no preconditions.
            owner: unsafe { libc::getpid() },
            content,
            len,
        })
    }
}

/// The signal handler: removes the target file if it is still this
/// process's, then dies of the signal.
extern "C" fn on_signal(sig: libc::c_int) {
    let target = TARGET.load(Ordering::Acquire);
    if !target.is_null() {
        // SAFETY: a non-null TARGET points to a `Target` that was fully
        // written before it was published (Release/Acquire) and is never
        // freed or modified afterwards.
        remove_if_ours(unsafe { &*target });
    }
    // SAFETY: signal and raise are async-signal-safe. The signal is blocked
    // while this handler runs, so the raised one is delivered, with the
    // default action (termination), as soon as the handler returns.
    unsafe {
        libc::signal(sig, libc::SIG_DFL);
        libc::raise(sig);
    }
}

/// Unlinks the target's path if this is the registering process and the
/// path still names the target's file with the target's content. Only
/// async-signal-safe calls; no allocation, no panics.
fn remove_if_ours(t: &Target) {
    // SAFETY: getpid has no preconditions.
    if unsafe { libc::getpid() } != t.owner {
        return;
    }
    if !names_target(t) || !content_matches(t) || !names_target(t) {
        return;
    }
    // SAFETY: `t.path` is a valid NUL-terminated string; unlink is
    // async-signal-safe.
    unsafe { libc::unlink(t.path.as_ptr()) };
}

/// Whether `stat` describes the target's file, and that file is a regular
/// file.
fn is_target(st: &libc::stat, t: &Target) -> bool {
    st.st_dev == t.dev && st.st_ino == t.ino && st.st_mode & libc::S_IFMT == libc::S_IFREG
}

/// Whether the path names the target's file (without following a symlink).
fn names_target(t: &Target) -> bool {
    let mut st = MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `t.path` is a valid NUL-terminated string and `st` is valid for
    // writing a `stat`; lstat is async-signal-safe.
    if unsafe { libc::lstat(t.path.as_ptr(), st.as_mut_ptr()) } != 0 {
        return false;
    }
    // SAFETY: lstat succeeded, so it filled in `st`.
    is_target(unsafe { st.assume_init_ref() }, t)
}

/// Whether the file at the path is the target's file and holds exactly the
/// content recorded for it.
fn content_matches(t: &Target) -> bool {
    let flags = libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY;
    // SAFETY: `t.path` is a valid NUL-terminated string; open is
    // async-signal-safe. O_CLOEXEC matters little (the process is about to
    // die), but keeps the descriptor from a concurrent exec.
    let fd = unsafe { libc::open(t.path.as_ptr(), flags | libc::O_CLOEXEC) };
    if fd < 0 {
        return false;
    }
    let mut same = false;
    let mut st = MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `fd` is open and `st` is valid for writing a `stat`.
    let ok = unsafe { libc::fstat(fd, st.as_mut_ptr()) } == 0;
    // SAFETY: `st` is read only when fstat succeeded and filled it in.
    if ok && is_target(unsafe { st.assume_init_ref() }, t) {
        let mut buf = [0u8; CONTENT_MAX + 1];
        let mut filled = 0;
        while filled < buf.len() {
            let rest = &mut buf[filled..];
            // SAFETY: `rest` is valid for writing `rest.len()` bytes; read is
            // async-signal-safe.
            let n = unsafe { libc::read(fd, rest.as_mut_ptr().cast(), rest.len()) };
            if n <= 0 {
                // End of file, or an error: judge what was read only at the
                // end of file; on error, leave the file alone.
                same = n == 0 && buf.get(..filled) == t.content.get(..t.len);
                break;
            }
            filled += n as usize;
        }
    }
    // SAFETY: `fd` was opened above and is closed once; close is
    // async-signal-safe.
    unsafe { libc::close(fd) };
    same
}

/// The handler's address as a disposition.
fn handler_address() -> libc::sighandler_t {
    on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t
}

/// The current disposition of `sig` (`SIG_DFL`, `SIG_IGN` or a handler's
/// address).
fn disposition(sig: libc::c_int) -> io::Result<libc::sighandler_t> {
    let mut old = MaybeUninit::<libc::sigaction>::uninit();
    // SAFETY: a null new action only queries; `old` is valid for writing a
    // `sigaction`.
    if unsafe { libc::sigaction(sig, ptr::null(), old.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: sigaction succeeded, so it filled in `old`.
    Ok(unsafe { old.assume_init_ref() }.sa_sigaction)
}

/// Sets `sig`'s disposition to `handler` (with the three cleanup signals
/// blocked while a handler runs).
fn set_disposition(sig: libc::c_int, handler: libc::sighandler_t) -> io::Result<()> {
    // SAFETY: an all-zero `sigaction` is a valid value (no flags, empty mask
    // filled in below, default restorer).
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = handler;
    action.sa_flags = libc::SA_RESTART;
    // SAFETY: `action.sa_mask` is a valid sigset_t to initialise and fill.
    unsafe {
        libc::sigemptyset(&mut action.sa_mask);
        for other in SIGNALS {
            libc::sigaddset(&mut action.sa_mask, other);
        }
    }
    // SAFETY: `action` is fully initialised; a null old action is allowed.
    if unsafe { libc::sigaction(sig, &action, ptr::null_mut()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Installs the handler for `sig` if its disposition is the default.
/// Returns whether the handler is installed (now or by an earlier call).
pub(crate) fn install_if_default(sig: libc::c_int) -> io::Result<bool> {
    let current = disposition(sig)?;
    if current == handler_address() {
        return Ok(true);
    }
    if current != libc::SIG_DFL {
        return Ok(false);
    }
    set_disposition(sig, handler_address())?;
    Ok(true)
}
