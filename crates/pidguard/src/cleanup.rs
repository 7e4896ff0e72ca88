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

use std::io;
use std::os::fd::AsFd;

use crate::lock::Guard;
use crate::signal::Signal;
use crate::sys::cleanup as handler;

/// The signals a handler is installed for, with their `Installed` bits.
const SIGNALS: [(Signal, u8); 3] = [
    (Signal::TERM, TERM_BIT),
    (Signal::INT, INT_BIT),
    (Signal::HUP, HUP_BIT),
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
            .any(|&(sig, bit)| sig == signal && self.bits & bit != 0)
    }

    /// The signals that got the handler, in the order SIGTERM, SIGINT,
    /// SIGHUP.
    pub fn signals(self) -> Vec<Signal> {
        SIGNALS
            .iter()
            .filter(|&&(_, bit)| self.bits & bit != 0)
            .map(|&(sig, _)| sig)
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
    if !handler::publish(guard.path(), guard.as_fd())? {
        return Ok(Installed::default());
    }
    let mut installed = Installed::default();
    for (sig, bit) in SIGNALS {
        if handler::install_if_default(sig.as_raw())? {
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
    handler::forget();
    for (sig, _) in SIGNALS {
        handler::restore_default_if_ours(sig.as_raw())?;
    }
    Ok(())
}
