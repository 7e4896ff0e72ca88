//! A tokio daemon: `tokio_daemon [PATH]` (default: the standard location
//! for "mytokiod"). Needs the `tokio` feature:
//! `cargo run -p pidguard --features tokio --example tokio_daemon`.
//!
//! It waits up to 5 seconds for a previous instance to let go (without
//! blocking the runtime), tells a service manager it is ready, serves until
//! SIGTERM or ctrl-c, and removes its PID file then. See
//! docs/recipes/rust-daemon.md.

use std::process::ExitCode;
use std::time::Duration;

use pidguard::{asyncio, ErrorKind, Pidfile};

#[tokio::main]
async fn main() -> ExitCode {
    let pidfile = match std::env::args_os().nth(1) {
        Some(path) => Pidfile::new(path),
        None => Pidfile::named("mytokiod"),
    };

    let guard = match asyncio::acquire_timeout(&pidfile, Duration::from_secs(5)).await {
        Ok(guard) => guard,
        Err(e) if e.kind() == ErrorKind::AlreadyRunning => {
            eprintln!("mytokiod: still held after 5 s: {e}");
            return ExitCode::from(75);
        }
        Err(e) => {
            eprintln!("mytokiod: {e}");
            return ExitCode::from(73);
        }
    };
    eprintln!(
        "mytokiod: PID {} in {}",
        guard.pid(),
        guard.path().display()
    );

    // Releases the guard (removing the file) when SIGTERM or SIGINT arrives.
    let shutdown = tokio::spawn(asyncio::remove_on_shutdown(guard));

    if let Err(e) = pidguard::notify_ready() {
        eprintln!("mytokiod: cannot notify readiness: {e}");
    }

    // The server would run here, alongside the shutdown task; this one
    // just waits for the signal.
    match shutdown.await {
        Ok(Ok(signal)) => {
            eprintln!("mytokiod: stopped by SIG{signal}; PID file removed");
            ExitCode::SUCCESS
        }
        Ok(Err(e)) => {
            eprintln!("mytokiod: {e}");
            ExitCode::from(74)
        }
        Err(e) => {
            eprintln!("mytokiod: the shutdown task failed: {e}");
            ExitCode::from(70)
        }
    }
}
