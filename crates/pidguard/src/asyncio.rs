//! tokio support (feature `tokio`): acquire with a timeout without blocking
//! a thread, and remove the PID file on ctrl-c or SIGTERM.
//!
//! Both need a tokio runtime: [`acquire_timeout`] with the time driver
//! (`enable_time`), [`remove_on_shutdown`] with the I/O driver, which carries
//! signals (`enable_io`); `enable_all` or `#[tokio::main]` gives both.
//!
//! ```
//! # let dir = tempfile::tempdir()?;
//! # let path = dir.path().join("server.pid");
//! use std::time::Duration;
//! use pidguard::{asyncio, Pidfile};
//!
//! let runtime = tokio::runtime::Builder::new_current_thread()
//!     .enable_all()
//!     .build()?;
//! runtime.block_on(async {
//!     let guard = asyncio::acquire_timeout(&Pidfile::new(&path), Duration::from_secs(5)).await?;
//!     // Serve until ctrl-c or SIGTERM, then remove the PID file:
//!     // let signal = asyncio::remove_on_shutdown(guard).await?;
//!     # drop(guard);
//!     Ok::<(), pidguard::Error>(())
//! })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::future::poll_fn;
use std::io;
use std::task::Poll;
use std::time::Duration;

use tokio::time::Instant;

use crate::error::{Error, ErrorKind, Result};
use crate::lock::{Guard, Pidfile};
use crate::signal::Signal;

/// The first pause between attempts; it doubles up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(1);
/// The longest pause between attempts.
const MAX_PAUSE: Duration = Duration::from_millis(50);

/// Like [`Pidfile::acquire_timeout`], but waits on the tokio timer instead
/// of blocking the thread: other tasks keep running while the holder is
/// waited out.
///
/// Tries [`Pidfile::acquire`] at once, then again after pauses of 1 ms,
/// doubling up to 50 ms, until it succeeds, fails with an error other than
/// [`ErrorKind::AlreadyRunning`], or `timeout` has passed; on timeout the
/// error is the last `AlreadyRunning` (naming the holder). A zero timeout
/// tries once.
///
/// Each attempt is the non-blocking acquire: it returns at once, except that
/// a holder caught between locking and writing its file is given up to a
/// few milliseconds, in the thread.
///
/// # Panics
///
/// Outside a tokio runtime with the time driver enabled, as
/// [`tokio::time::sleep`] does.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("app.pid");
/// use std::time::Duration;
/// use pidguard::{asyncio, ErrorKind, Pidfile};
///
/// let runtime = tokio::runtime::Builder::new_current_thread()
///     .enable_time()
///     .build()?;
/// let pidfile = Pidfile::new(&path);
/// runtime.block_on(async {
///     let first = asyncio::acquire_timeout(&pidfile, Duration::from_secs(1)).await?;
///     // Held: a second acquire gives up after 100 ms.
///     let second = asyncio::acquire_timeout(&pidfile, Duration::from_millis(100)).await;
///     assert_eq!(second.unwrap_err().kind(), ErrorKind::AlreadyRunning);
///     first.release()
/// })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub async fn acquire_timeout(pidfile: &Pidfile, timeout: Duration) -> Result<Guard> {
    let deadline = Instant::now().checked_add(timeout);
    let mut pause = FIRST_PAUSE;
    loop {
        match pidfile.acquire() {
            Err(e) if e.kind() == ErrorKind::AlreadyRunning => {
                let now = Instant::now();
                let mut sleep = pause;
                if let Some(deadline) = deadline {
                    if now >= deadline {
                        return Err(e);
                    }
                    sleep = sleep.min(deadline - now);
                }
                tokio::time::sleep(sleep).await;
                pause = (pause * 2).min(MAX_PAUSE);
            }
            other => return other,
        }
    }
}

/// Waits for SIGTERM or SIGINT (ctrl-c), then releases `guard` (removing
/// the PID file) and returns the signal that arrived ([`Signal::TERM`] or
/// [`Signal::INT`]).
///
/// The handlers are registered when the future is first polled; a signal
/// that arrives before that gets its default action (the process dies, the
/// file stays behind, stale and harmless). As with any use of
/// [`tokio::signal`], the handlers stay for the life of the process: later
/// SIGTERMs and SIGINTs no longer kill it, so the application should shut
/// down once this returns.
///
/// # Errors
///
/// The error of [`Guard::release`]; or, with [`ErrorKind::Io`], a failure
/// to register the signal handlers (the guard is then released at once) or
/// the runtime's signal driver shutting down (the guard is released).
///
/// # Panics
///
/// Outside a tokio runtime with the I/O driver (which carries signals)
/// enabled, as tokio's signal streams do.
///
/// ```no_run
/// use pidguard::{asyncio, Pidfile};
///
/// #[tokio::main]
/// async fn main() -> Result<(), pidguard::Error> {
///     let guard = Pidfile::named("myserver").acquire()?;
///     let shutdown = tokio::spawn(asyncio::remove_on_shutdown(guard));
///     // ... serve, until:
///     let signal = shutdown.await.expect("the cleanup task panicked")?;
///     eprintln!("stopped by SIG{signal}; PID file removed");
///     Ok(())
/// }
/// ```
pub async fn remove_on_shutdown(guard: Guard) -> Result<Signal> {
    let arrived = next_shutdown(&guard).await?;
    let Some(arrived) = arrived else {
        let path = guard.path().to_path_buf();
        drop(guard);
        return Err(Error::with_io(
            ErrorKind::Io,
            &path,
            io::Error::other("the tokio runtime's signal driver shut down"),
        ));
    };
    guard.release()?;
    Ok(arrived)
}

/// The next SIGTERM or SIGINT; `None` when the runtime's signal driver is
/// gone.
#[cfg(unix)]
async fn next_shutdown(guard: &Guard) -> Result<Option<Signal>> {
    use tokio::signal::unix::{signal, SignalKind};
    let register = |kind: SignalKind| {
        signal(kind).map_err(|e| {
            Error::with_io(ErrorKind::Io, guard.path(), e)
                .with_detail("cannot register the SIGTERM/SIGINT handlers")
        })
    };
    let mut term = register(SignalKind::terminate())?;
    let mut int = register(SignalKind::interrupt())?;
    Ok(poll_fn(|cx| {
        let term = term.poll_recv(cx);
        let int = int.poll_recv(cx);
        match (term, int) {
            (Poll::Ready(Some(())), _) => Poll::Ready(Some(Signal::TERM)),
            (_, Poll::Ready(Some(()))) => Poll::Ready(Some(Signal::INT)),
            // A stream ends only when the runtime's signal driver is gone.
            (Poll::Ready(None), _) | (_, Poll::Ready(None)) => Poll::Ready(None),
            _ => Poll::Pending,
        }
    })
    .await)
}

/// Windows has no signals: Ctrl+Break stands for SIGTERM and Ctrl+C for
/// SIGINT (console control events); `None` when the runtime's signal
/// driver is gone.
#[cfg(windows)]
async fn next_shutdown(guard: &Guard) -> Result<Option<Signal>> {
    use tokio::signal::windows::{ctrl_break, ctrl_c};
    let failed = |e| {
        Error::with_io(ErrorKind::Io, guard.path(), e)
            .with_detail("cannot register the Ctrl+Break/Ctrl+C handlers")
    };
    let mut brk = ctrl_break().map_err(failed)?;
    let mut int = ctrl_c().map_err(failed)?;
    Ok(poll_fn(|cx| {
        let brk = brk.poll_recv(cx);
        let int = int.poll_recv(cx);
        match (brk, int) {
            (Poll::Ready(Some(())), _) => Poll::Ready(Some(Signal::TERM)),
            (_, Poll::Ready(Some(()))) => Poll::Ready(Some(Signal::INT)),
            (Poll::Ready(None), _) | (_, Poll::Ready(None)) => Poll::Ready(None),
            _ => Poll::Pending,
        }
    })
    .await)
}
