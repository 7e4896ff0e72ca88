//! The tokio helpers: `asyncio::acquire_timeout` on a single-threaded
//! runtime (so a blocked thread would stall everything), and
//! `asyncio::remove_on_shutdown` with real signals in a child process (this
//! test binary re-executed in a helper role, see `helper_process`). Tests
//! signal only the children they started, by PID, and reap them.
// Unix behaviour (Windows: tests/windows.rs).
#![cfg(unix)]
#![cfg(feature = "tokio")]

use std::cell::Cell;
use std::future::Future;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::rc::Rc;
use std::task::Poll;
use std::time::{Duration, Instant};

use pidguard::{asyncio, ErrorKind, Pid, Pidfile};
use testkit::{helper_command, report, Helper};

const PATH: &str = "PIDGUARD_TEST_PATH";

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Counts ticks every 5 ms on the same (single) thread, until dropped.
fn ticker(local: &tokio::task::LocalSet) -> Rc<Cell<u32>> {
    let ticks = Rc::new(Cell::new(0));
    let t = Rc::clone(&ticks);
    local.spawn_local(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(5)).await;
            t.set(t.get() + 1);
        }
    });
    ticks
}

#[test]
fn acquire_timeout_succeeds_once_the_holder_lets_go_without_blocking_the_thread() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.pid");
    let held = Pidfile::new(&path).acquire().unwrap();
    let rt = current_thread();
    let local = tokio::task::LocalSet::new();
    let ticks = ticker(&local);
    let pidfile = Pidfile::new(&path);
    let (guard, waited) = local.block_on(&rt, async {
        // The holder goes away after 200 ms: a task on this same thread
        // drops it, so it can only run if the wait below yields.
        tokio::task::spawn_local(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            drop(held);
        });
        let start = Instant::now();
        let guard = asyncio::acquire_timeout(&pidfile, Duration::from_secs(10))
            .await
            .unwrap();
        (guard, start.elapsed())
    });
    assert!(waited >= Duration::from_millis(190), "{waited:?}");
    assert!(waited < Duration::from_secs(5), "{waited:?}");
    // Other tasks ran while it waited (one tick per 5 ms, give or take).
    assert!(ticks.get() >= 5, "only {} ticks", ticks.get());
    assert_eq!(guard.path(), path);
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        format!("{}", std::process::id())
    );
    guard.release().unwrap();
    assert!(!path.exists());
}

#[test]
fn acquire_timeout_gives_up_with_already_running() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.pid");
    let held = Pidfile::new(&path).acquire().unwrap();
    let rt = current_thread();
    let local = tokio::task::LocalSet::new();
    let ticks = ticker(&local);
    let pidfile = Pidfile::new(&path);
    let start = Instant::now();
    let err = local
        .block_on(
            &rt,
            asyncio::acquire_timeout(&pidfile, Duration::from_millis(300)),
        )
        .unwrap_err();
    let waited = start.elapsed();
    assert_eq!(err.kind(), ErrorKind::AlreadyRunning);
    assert_eq!(err.holder(), Some(Pid::current()));
    assert!(waited >= Duration::from_millis(300), "{waited:?}");
    assert!(waited < Duration::from_secs(5), "{waited:?}");
    assert!(ticks.get() >= 5, "only {} ticks", ticks.get());
    // The holder's file is untouched.
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        format!("{}", std::process::id())
    );
    held.release().unwrap();
}

#[test]
fn acquire_timeout_takes_a_free_file_at_once_and_a_zero_timeout_tries_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.pid");
    let pidfile = Pidfile::new(&path);
    let rt = current_thread();
    rt.block_on(async {
        let guard = asyncio::acquire_timeout(&pidfile, Duration::ZERO)
            .await
            .unwrap();
        let start = Instant::now();
        let err = asyncio::acquire_timeout(&pidfile, Duration::ZERO)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AlreadyRunning);
        assert!(start.elapsed() < Duration::from_secs(1));
        guard.release().unwrap();
        // Errors other than AlreadyRunning are returned at once.
        let bad = Pidfile::new(dir.path().join("missing-dir").join("x").join("y.pid"));
        std::fs::write(dir.path().join("missing-dir"), "a file, not a dir").unwrap();
        let err = asyncio::acquire_timeout(&bad, Duration::from_secs(10))
            .await
            .unwrap_err();
        assert_ne!(err.kind(), ErrorKind::AlreadyRunning);
    });
}

/// Not a test: the body of the helper processes the other tests start.
/// Acquires the PID file, waits in `remove_on_shutdown`, and reports the
/// signal that ended the wait.
#[test]
#[ignore = "helper process for the other tests; does nothing when run alone"]
fn helper_process() {
    if testkit::role().is_none() {
        return;
    }
    let path = PathBuf::from(std::env::var_os(PATH).expect("PIDGUARD_TEST_PATH"));
    let rt = current_thread();
    rt.block_on(async {
        let guard = asyncio::acquire_timeout(&Pidfile::new(&path), Duration::from_secs(5))
            .await
            .unwrap();
        let mut shutdown = pin!(asyncio::remove_on_shutdown(guard));
        // Poll once, which registers the handlers, before telling the test
        // it may send the signal.
        let first = std::future::poll_fn(|cx| Poll::Ready(shutdown.as_mut().poll(cx))).await;
        assert!(first.is_pending());
        report("ready");
        match shutdown.await {
            Ok(signal) => report(&format!("stopped by {signal}")),
            Err(e) => report(&format!("error {e}")),
        }
    });
}

/// A helper acquiring `path` and waiting in `remove_on_shutdown`.
fn start_helper(path: &Path) -> Helper {
    let mut cmd = helper_command("helper_process", "shutdown");
    cmd.env(PATH, path);
    Helper::spawn(cmd)
}

#[test]
fn remove_on_shutdown_releases_the_file_on_sigterm_and_sigint() {
    for (sig, name) in [(libc::SIGTERM, "TERM"), (libc::SIGINT, "INT")] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.pid");
        let mut h = start_helper(&path);
        assert_eq!(h.report(), "ready");
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("{}", h.child.id())
        );
        h.signal(sig);
        assert_eq!(h.report(), format!("stopped by {name}"));
        let status = h.wait();
        assert!(
            status.success(),
            "{status:?} (signal {:?})",
            status.signal()
        );
        assert!(!path.exists(), "SIG{name}");
    }
}
