//! `cleanup::remove_on_signals` with real signals, in child processes.
//!
//! Every process that gets a signal is this test binary re-executed in a
//! helper role (see `helper_process`): it acquires a PID file in a temporary
//! directory, registers the handlers, reports on stdout and waits for its
//! stdin to close. Tests signal only the children they started, by PID, and
//! reap them.
// Unix behaviour (Windows: tests/windows.rs).
#![cfg(unix)]
#![cfg(feature = "signal-cleanup")]

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};

use testkit::{helper_command, report, Helper};

use pidguard::cleanup::{disarm, remove_on_signals};
use pidguard::Pidfile;

const PATH: &str = "PIDGUARD_TEST_PATH";
const PATH2: &str = "PIDGUARD_TEST_PATH2";

/// The exit code of the application's own SIGTERM handler in role
/// `own-handler`.
const OWN_HANDLER_EXIT: i32 = 42;

extern "C" fn own_handler(_: libc::c_int) {
    // SAFETY: _exit is async-signal-safe.
    unsafe { libc::_exit(OWN_HANDLER_EXIT) };
}

/// Not a test: the body of the helper processes the other tests start.
#[test]
#[ignore = "helper process for the other tests; does nothing when run alone"]
fn helper_process() {
    let Some(role) = testkit::role() else {
        return;
    };
    let path = PathBuf::from(std::env::var_os(PATH).expect("PIDGUARD_TEST_PATH"));
    if role == "own-handler" {
        // SAFETY: installs a handler that only calls _exit, and ignores
        // SIGHUP; no other code in this process handles these signals.
        unsafe {
            libc::signal(
                libc::SIGTERM,
                own_handler as extern "C" fn(libc::c_int) as libc::sighandler_t,
            );
            libc::signal(libc::SIGHUP, libc::SIG_IGN);
        }
    }
    let guard = Pidfile::new(&path).acquire().unwrap();
    let installed = remove_on_signals(&guard).unwrap();
    // Kept alive until the process dies.
    let mut _second = None;
    match role.as_str() {
        "disarm" => disarm().unwrap(),
        "reregister" => {
            let path2 = PathBuf::from(std::env::var_os(PATH2).expect("PIDGUARD_TEST_PATH2"));
            let second = Pidfile::new(&path2).acquire().unwrap();
            assert_eq!(remove_on_signals(&second).unwrap(), installed);
            _second = Some(second);
        }
        "fork" => {
            // SAFETY: the child calls only raise (async-signal-safe) and, if
            // it survives that, _exit.
            let child = unsafe { libc::fork() };
            assert!(child >= 0, "fork failed");
            if child == 0 {
                // SAFETY: raise and _exit are async-signal-safe.
                unsafe {
                    libc::raise(libc::SIGTERM);
                    libc::_exit(99);
                }
            }
            let mut status = 0;
            // SAFETY: waits for the child forked just above.
            let reaped = unsafe { libc::waitpid(child, &mut status, 0) };
            assert_eq!(reaped, child);
            let signal = if libc::WIFSIGNALED(status) {
                libc::WTERMSIG(status)
            } else {
                -1
            };
            report(&format!(
                "forked child died of {signal}, file exists: {}",
                path.exists()
            ));
        }
        _ => {}
    }
    report(&format!("ready {installed:?}"));
    // Wait for a signal (or for the test to close stdin).
    let mut sink = String::new();
    let _ = std::io::stdin().read_line(&mut sink);
    drop(guard);
}

/// A helper in `role` holding `path` (and `path2` where the role needs it).
fn start_helper(role: &str, path: &Path, path2: Option<&Path>) -> Helper {
    let mut cmd = helper_command("helper_process", role);
    cmd.env(PATH, path);
    if let Some(p) = path2 {
        cmd.env(PATH2, p);
    }
    Helper::spawn(cmd)
}

#[test]
fn sigterm_removes_the_file_and_the_process_dies_of_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.pid");
    let mut h = start_helper("plain", &path, None);
    assert_eq!(h.report(), "ready {SIGTERM, SIGINT, SIGHUP}");
    assert!(path.exists());
    h.signal(libc::SIGTERM);
    let status = h.wait();
    assert_eq!(status.signal(), Some(libc::SIGTERM), "{status:?}");
    assert!(!path.exists());
}

#[test]
fn sigint_and_sighup_remove_the_file_too() {
    for sig in [libc::SIGINT, libc::SIGHUP] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.pid");
        let mut h = start_helper("plain", &path, None);
        assert!(h.report().starts_with("ready"));
        h.signal(sig);
        let status = h.wait();
        assert_eq!(status.signal(), Some(sig), "{status:?}");
        assert!(!path.exists(), "signal {sig}");
    }
}

#[test]
fn the_applications_own_handler_and_ignored_signals_are_left_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.pid");
    let mut h = start_helper("own-handler", &path, None);
    // SIGTERM has the application's handler and SIGHUP is ignored: only
    // SIGINT was taken.
    assert_eq!(h.report(), "ready {SIGINT}");
    h.signal(libc::SIGTERM);
    let status = h.wait();
    assert_eq!(status.code(), Some(OWN_HANDLER_EXIT), "{status:?}");
    // The application's handler exited without tidying: the file stays
    // (stale: the kernel dropped the lock).
    assert!(path.exists());
    assert!(!pidguard::status(&path).is_running());

    // In the same set-up SIGINT, which was taken, removes the file.
    std::fs::remove_file(&path).unwrap();
    let mut h = start_helper("own-handler", &path, None);
    assert_eq!(h.report(), "ready {SIGINT}");
    h.signal(libc::SIGINT);
    let status = h.wait();
    assert_eq!(status.signal(), Some(libc::SIGINT), "{status:?}");
    assert!(!path.exists());
}

#[test]
fn a_successors_file_at_the_path_is_not_removed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.pid");
    let mut h = start_helper("plain", &path, None);
    assert!(h.report().starts_with("ready"));
    // Replaced by another file (another inode) while the helper runs.
    std::fs::remove_file(&path).unwrap();
    std::fs::write(&path, "99999\n").unwrap();
    h.signal(libc::SIGTERM);
    let status = h.wait();
    assert_eq!(status.signal(), Some(libc::SIGTERM), "{status:?}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "99999\n");
}

#[test]
fn a_file_rewritten_in_place_is_not_removed() {
    // The same inode with other content: what a successor that took the
    // file over in place leaves.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.pid");
    let mut h = start_helper("plain", &path, None);
    assert!(h.report().starts_with("ready"));
    std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&path)
        .and_then(|mut f| std::io::Write::write_all(&mut f, b"99999\n"))
        .unwrap();
    h.signal(libc::SIGTERM);
    let status = h.wait();
    assert_eq!(status.signal(), Some(libc::SIGTERM), "{status:?}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "99999\n");
}

#[test]
fn a_forked_child_dying_of_the_signal_leaves_the_parents_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.pid");
    let mut h = start_helper("fork", &path, None);
    assert_eq!(
        h.report(),
        format!("forked child died of {}, file exists: true", libc::SIGTERM)
    );
    assert!(h.report().starts_with("ready"));
    assert!(path.exists());
    // The parent, which registered the handler, still removes it.
    h.signal(libc::SIGTERM);
    let status = h.wait();
    assert_eq!(status.signal(), Some(libc::SIGTERM), "{status:?}");
    assert!(!path.exists());
}

#[test]
fn the_last_registration_wins() {
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("first.pid");
    let second = dir.path().join("second.pid");
    let mut h = start_helper("reregister", &first, Some(&second));
    assert_eq!(h.report(), "ready {SIGTERM, SIGINT, SIGHUP}");
    h.signal(libc::SIGTERM);
    let status = h.wait();
    assert_eq!(status.signal(), Some(libc::SIGTERM), "{status:?}");
    assert!(first.exists());
    assert!(!second.exists());
}

#[test]
fn after_disarm_the_signal_has_its_default_action_and_removes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.pid");
    let mut h = start_helper("disarm", &path, None);
    assert!(h.report().starts_with("ready"));
    h.signal(libc::SIGTERM);
    let status = h.wait();
    assert_eq!(status.signal(), Some(libc::SIGTERM), "{status:?}");
    assert!(path.exists());
}

#[test]
fn a_released_guard_leaves_nothing_for_the_handler() {
    // Closing stdin makes the helper drop its guard and exit normally.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.pid");
    let mut h = start_helper("plain", &path, None);
    assert!(h.report().starts_with("ready"));
    drop(h.child.stdin.take());
    let status = h.wait();
    assert!(status.success(), "{status:?}");
    assert!(!path.exists());
}
