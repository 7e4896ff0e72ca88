//! A daemon that runs as the only instance, using the library directly:
//! `daemon [PATH]` (default: the standard location for "mydaemon").
//!
//! It acquires its PID file without waiting, exits 75 (EX_TEMPFAIL) naming
//! the holder when another instance runs, tells a service manager (or
//! `pidguard run --daemon --notify`) it is ready, works, and removes its
//! file on the way out. docs/recipes/rust-daemon.md walks through it.

use std::process::ExitCode;
use std::time::Duration;

use pidguard::{ErrorKind, Pidfile};

fn main() -> ExitCode {
    // Pidfile::named("mydaemon") is /run/mydaemon.pid for root and
    // $XDG_RUNTIME_DIR/mydaemon/mydaemon.pid for a user.
    let pidfile = match std::env::args_os().nth(1) {
        Some(path) => Pidfile::new(path),
        None => Pidfile::named("mydaemon"),
    };

    // One attempt, no waiting: a second instance is refused at once.
    let guard = match pidfile.acquire() {
        Ok(guard) => guard,
        Err(e) if e.kind() == ErrorKind::AlreadyRunning => {
            // The message names the file and, when known, the holder's PID.
            match e.holder() {
                Some(pid) => eprintln!("mydaemon: already running as PID {pid}"),
                None => eprintln!("mydaemon: {e}"),
            }
            return ExitCode::from(75);
        }
        Err(e) => {
            eprintln!("mydaemon: {e}");
            return ExitCode::from(73);
        }
    };
    eprintln!(
        "mydaemon: PID {} in {}",
        guard.pid(),
        guard.path().display()
    );

    // Set-up done (sockets bound, configuration read): report readiness.
    // Ok(false) means nobody asked ($NOTIFY_SOCKET unset): nothing to do.
    if let Err(e) = pidguard::notify_ready() {
        eprintln!("mydaemon: cannot notify readiness: {e}");
    }

    // The daemon's work.
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(100));
    }

    // Removes the file only if it is still ours, then drops the lock.
    // Dropping the guard does the same, ignoring errors.
    match guard.release() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mydaemon: {e}");
            ExitCode::from(74)
        }
    }
}
