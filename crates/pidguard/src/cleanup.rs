//! Remove the PID file when SIGTERM, SIGINT or SIGHUP arrives (feature
//! `signal-cleanup`).
//!
//! A process killed by a signal never drops its [`Guard`], so its PID file
//! stays behind. That is harmless (the kernel drops the lock with the
//! process, readers report the file as stale, and the next acquire takes it
//! over), but untidy. [`remove_on_signals`] installs handlers that remove the
//! file and then let the signal do what it would have done: the process dies
//! of it, as a parent or shell expects.
//!
//! Handlers are installed only for those of SIGTERM, SIGINT and SIGHUP whose
//! disposition is still the default (the Python `pid` package's "auto"
//! mode). A signal the application handles itself, or ignores (`SIG_IGN`,
//! as under `nohup`), is left alone; the returned [`Installed`] says which
//! signals were taken.
//!
//! ```
//! # let dir = tempfile::tempdir()?;
//! # let path = dir.path().join("app.pid");
//! use pidguard::cleanup::remove_on_signals;
//! use pidguard::{Pidfile, Signal};
//!
//! let guard = Pidfile::new(&path).acquire()?;
//! let installed = remove_on_signals(&guard)?;
//! if !installed.contains(Signal::TERM) {
//!     // The application handles SIGTERM itself: it should drop the guard
//!     // (or call guard.release()) on its way out.
//! }
//! // ... run; on SIGTERM, SIGINT or SIGHUP the file is removed and the
//! // process dies of the signal ...
//! guard.release()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # What the handler does
//!
//! Everything it needs is prepared when [`remove_on_signals`] is called: the
//! path, the device and inode number of the guard's file, its content, and
//! the PID of the process. The handler calls only async-signal-safe
//! functions (`getpid`, `lstat`, `open`, `fstat`, `read`, `close`, `unlink`,
//! `signal`, `raise`), and allocates nothing. It removes the file only if
//!
//! * it runs in the process that registered it (not in a forked child that
//!   inherited the handler), and
//! * the path still names the guard's file (same device and inode, a
//!   regular file, reached without following a symlink), and
//! * the file still holds what it held when the handler was registered (so
//!   a successor's file is never removed, even one that reuses the inode
//!   number of a file released earlier).
//!
//! Then it restores the default disposition of the signal and raises it
//! again, so the process dies of the signal (exit status 128+N in a shell).
//!
//! # Limits
//!
//! * One PID file per process: each call replaces the previous one's file
//!   (the last call wins). The handlers stay installed.
//! * Call it in the process that keeps the guard, after anything that
//!   rewrites the file: after [`Guard::adopt`] in a forked daemon, after
//!   [`Guard::set_pid`]. A changed file is not removed.
//! * If the application gives up the lock while it keeps running
//!   ([`Guard::into_fd`] and closing the descriptor), call [`disarm`]: a
//!   successor could otherwise take the stale file over in place, and for
//!   the moment between its lock and its write the file would still look
//!   like this process's. A guard that is released or dropped normally
//!   removes its file, and needs nothing more.
//! * In a process that is PID 1 (in a container, say) nothing is installed:
//!   the kernel does not let PID 1 die of a signal's default action, so the
//!   file would be removed from a process that keeps running.
//! * The handler does not preserve `errno`: once it returns, the raised
//!   signal's default action ends the process before any other code runs.

use std::ffi::CString;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::ffi::OsStrExt;
use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering};

use crate::pidfile::Guard;
use crate::signal::Signal;

/// The most file content the handler compares; a PID file holds a dozen
/// bytes at most.
const CONTENT_MAX: usize = 64;

/// The signals a handler is installed for, with their `Installed` bits.
const SIGNALS: [(libc::c_int, u8); 3] = [
    (libc::SIGTERM, TERM_BIT),
    (libc::SIGINT, INT_BIT),
    (libc::SIGHUP, HUP_BIT),
];
const TERM_BIT: u8 = 1;
const INT_BIT: u8 = 2;
const HUP_BIT: u8 = 4;

/// Which of SIGTERM, SIGINT and SIGHUP got the cleanup handler (see
/// [`remove_on_signals`]). The others are handled or ignored by the
/// application and were left alone.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let guard = pidguard::Pidfile::new(dir.path().join("app.pid")).acquire()?;
/// let installed = pidguard::cleanup::remove_on_signals(&guard)?;
/// for signal in installed.signals() {
///     println!("the PID file is removed on SIG{signal}");
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Installed {
    bits: u8,
}

impl Installed {
    /// Whether `signal` got the handler (always `false` for signals other
    /// than SIGTERM, SIGINT and SIGHUP).
    pub fn contains(self, signal: Signal) -> bool {
        SIGNALS
            .iter()
            .any(|&(sig, bit)| sig == signal.as_raw() && self.bits & bit != 0)
    }

    /// The signals that got the handler, in the order SIGTERM, SIGINT,
    /// SIGHUP.
    pub fn signals(self) -> Vec<Signal> {
        SIGNALS
            .iter()
            .filter(|&&(_, bit)| self.bits & bit != 0)
            .filter_map(|&(sig, _)| Signal::from_raw(sig))
            .collect()
    }

    /// Whether no handler was installed at all.
    pub fn is_empty(self) -> bool {
        self.bits == 0
    }
}

impl std::fmt::Debug for Installed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.signals()).finish()
    }
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

/// Installs handlers that remove `guard`'s PID file when SIGTERM, SIGINT or
/// SIGHUP arrives, for each of those signals whose disposition is the
/// default, and returns which ones got the handler.
///
/// A signal with a handler of the application's own, or ignored, is left as
/// it is. Calling it again is allowed: the handlers installed before stay
/// (and count as installed), and the new guard's file replaces the previous
/// one. See the [module documentation](self) for what the handler checks
/// and for the limits.
///
/// The guard itself is unchanged: drop it or [release](Guard::release) it as
/// usual. The handler removes nothing once the guard has removed its file.
///
/// # Errors
///
/// An I/O error if the guard's file cannot be examined (its descriptor
/// `fstat`ed and read) or a disposition cannot be queried or set; the path
/// must not contain a NUL byte.
pub fn remove_on_signals(guard: &Guard) -> io::Result<Installed> {
    let target = Target::of(guard)?;
    if target.owner == 1 {
        return Ok(Installed::default());
    }
    // Published before any handler can run, and never freed: a handler may
    // be reading the previous target right now.
    TARGET.store(Box::into_raw(Box::new(target)), Ordering::Release);
    let mut installed = Installed::default();
    for (sig, bit) in SIGNALS {
        if install_if_default(sig)? {
            installed.bits |= bit;
        }
    }
    Ok(installed)
}

/// Stops removing the PID file on signals: forgets the file, and restores
/// the default disposition of each of SIGTERM, SIGINT and SIGHUP whose
/// handler is still the one [`remove_on_signals`] installed (a handler
/// installed by the application since is left alone).
///
/// Call it when the application gives up the lock but keeps running (after
/// [`Guard::into_fd`]). Not needed after releasing or dropping a guard.
pub fn disarm() -> io::Result<()> {
    // The old target is left allocated: a handler may be reading it.
    TARGET.store(ptr::null_mut(), Ordering::Release);
    for (sig, _) in SIGNALS {
        if disposition(sig)? == handler_address() {
            set_disposition(sig, libc::SIG_DFL)?;
        }
    }
    Ok(())
}

impl Target {
    /// Records `guard`'s file: its path, inode and content, and this process.
    fn of(guard: &Guard) -> io::Result<Target> {
        let path = CString::new(guard.path().as_os_str().as_bytes()).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("the PID file path {:?} contains a NUL byte", guard.path()),
            )
        })?;
        let mut st = MaybeUninit::<libc::stat>::uninit();
        // SAFETY: the descriptor is the guard's, open for as long as the
        // borrow of `guard` lasts; `st` is valid for writing a `stat`.
        if unsafe { libc::fstat(guard.as_fd().as_raw_fd(), st.as_mut_ptr()) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fstat succeeded, so it filled in `st`.
        let st = unsafe { st.assume_init() };
        let mut content = [0u8; CONTENT_MAX];
        let mut len = 0;
        while len < CONTENT_MAX {
            match rustix::io::pread(guard, &mut content[len..], len as u64) {
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
        for (other, _) in SIGNALS {
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
fn install_if_default(sig: libc::c_int) -> io::Result<bool> {
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
