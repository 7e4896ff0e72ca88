//! Run a closure as the only instance: the Rust form of the Python `pid`
//! package's `PidFile` context manager and decorator.

use crate::error::Result;
use crate::lock::{Guard, Pidfile};

/// Runs `f` as the only instance of application `app`, holding the PID file
/// [`Pidfile::named(app)`](Pidfile::named) while it runs.
///
/// The file is acquired without waiting: if another process holds it, the
/// [`ErrorKind::AlreadyRunning`](crate::ErrorKind::AlreadyRunning) error is
/// returned and `f` is not run. Otherwise `f` runs and its result is
/// returned, and the file is removed afterwards, also when `f` panics (the
/// panic then carries on once the file is removed); an error removing it is
/// returned instead of `f`'s result. See
/// [`run_exclusive_with`](crate::run_exclusive_with) for the details and for any other [`Pidfile`].
///
/// ```no_run
/// # fn sync_mailboxes() {}
/// match pidguard::run_exclusive("mailsync", || sync_mailboxes()) {
///     Ok(()) => {}
///     Err(e) if e.is_already_running() => {
///         eprintln!("mailsync is already running: {e}");
///     }
///     Err(e) => return Err(e),
/// }
/// # Ok::<(), pidguard::Error>(())
/// ```
pub fn run_exclusive<T>(app: &str, f: impl FnOnce() -> T) -> Result<T> {
    run_exclusive_with(&Pidfile::named(app), |_| f())
}

/// Runs `f` while holding `pidfile`, passing it the [`Guard`] (for its path
/// or PID), and returns what `f` returns.
///
/// * The file is acquired with [`Pidfile::acquire`], without waiting; any
///   error (such as
///   [`ErrorKind::AlreadyRunning`](crate::ErrorKind::AlreadyRunning)) is
///   returned and `f` is not run. To wait for the holder, acquire with
///   [`Pidfile::acquire_timeout`] yourself.
/// * After `f` returns, the guard is [released](Guard::release): the file is
///   removed if the path still names it, and the lock is let go. If
///   removing the file fails, that error is returned instead of `f`'s result
///   (`f` has run; the lock is gone either way, and the file left behind is
///   stale and taken over by the next acquire).
/// * If `f` panics, the guard is released while the panic unwinds, and the
///   panic carries on. With `panic = "abort"` nothing unwinds: the kernel
///   drops the lock when the process dies and the stale file stays behind,
///   harmless.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("report.pid");
/// use pidguard::{run_exclusive_with, ErrorKind, Pidfile};
///
/// let pidfile = Pidfile::new(&path);
/// let answer = run_exclusive_with(&pidfile, |guard| {
///     // Only one process gets here at a time; a second one is refused.
///     let again = run_exclusive_with(&pidfile, |_| unreachable!());
///     assert_eq!(again.unwrap_err().kind(), ErrorKind::AlreadyRunning);
///     assert!(guard.path().exists());
///     42
/// })?;
/// assert_eq!(answer, 42);
/// assert!(!path.exists()); // removed afterwards
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn run_exclusive_with<T>(pidfile: &Pidfile, f: impl FnOnce(&Guard) -> T) -> Result<T> {
    let guard = pidfile.acquire()?;
    // A panic in `f` unwinds through `guard`, whose Drop releases it.
    let out = f(&guard);
    guard.release()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::panic::{catch_unwind, AssertUnwindSafe};

    use super::*;
    use crate::error::ErrorKind;
    use crate::pid::Pid;

    #[test]
    fn runs_f_once_holding_the_file_and_removes_it_after() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.pid");
        let mut runs = 0;
        let out = run_exclusive_with(&Pidfile::new(&path), |guard| {
            runs += 1;
            assert_eq!(guard.path(), path);
            assert_eq!(
                std::fs::read_to_string(&path).unwrap(),
                format!("{}", std::process::id())
            );
            "done"
        })
        .unwrap();
        assert_eq!((out, runs), ("done", 1));
        assert!(!path.exists());
    }

    #[test]
    fn refused_without_running_f_while_another_guard_holds_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.pid");
        let held = Pidfile::new(&path).acquire().unwrap();
        let mut ran = false;
        let err = run_exclusive_with(&Pidfile::new(&path), |_| ran = true).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AlreadyRunning);
        assert_eq!(err.holder(), Some(Pid::current()));
        assert!(!ran);
        // The holder's file is untouched.
        assert!(path.exists());
        held.release().unwrap();
        assert!(!path.exists());
    }

    #[test]
    fn a_panic_in_f_still_removes_the_file_and_carries_on() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.pid");
        let pidfile = Pidfile::new(&path);
        let caught = catch_unwind(AssertUnwindSafe(|| {
            run_exclusive_with(&pidfile, |_| -> () { panic!("boom") })
        }))
        .unwrap_err();
        assert_eq!(caught.downcast_ref::<&str>(), Some(&"boom"));
        assert!(!path.exists());
        // And the lock is free again.
        assert_eq!(run_exclusive_with(&pidfile, |_| 7).unwrap(), 7);
    }

    #[test]
    // Windows refuses to rename a directory with a file open in it.
    #[cfg(unix)]
    fn an_error_releasing_the_file_is_returned_not_swallowed() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("run");
        let path = sub.join("app.pid");
        std::fs::create_dir(&sub).unwrap();
        let err = run_exclusive_with(&Pidfile::new(&path), |_| {
            // The directory is moved away and a plain file takes its name:
            // looking the PID file up again fails (ENOTDIR), even as root.
            std::fs::rename(&sub, dir.path().join("moved")).unwrap();
            std::fs::write(&sub, "not a directory").unwrap();
            "f ran"
        })
        .unwrap_err();
        assert_eq!(err.path(), Some(path.as_path()), "{err}");
        assert!(err.io_error().is_some(), "{err}");
    }

    #[test]
    #[cfg(unix)]
    fn other_acquire_errors_are_returned_without_running_f() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.pid");
        std::os::unix::fs::symlink("/nonexistent", &path).unwrap();
        let err = run_exclusive_with(&Pidfile::new(&path), |_| unreachable!()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::UnsafeFile);
        let err = run_exclusive("../escape", || unreachable!()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidName);
    }
}
