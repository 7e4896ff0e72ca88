//! The registry of managed children: a crashed manager's orphans are
//! stopped by the next manager, and a second concurrent manager is refused.
//!
//! The crashing manager is this test binary re-executed in a helper role
//! (see `manager_process`). Tests kill only processes they started (the
//! manager, and the children whose PIDs the manager reported), by PID.
// Unix behaviour (Windows: tests/windows.rs).
#![cfg(unix)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use pidguard::registry::{Action, Registry, State, SweepPolicy};
use pidguard::{ErrorKind, Liveness, Pid, Schedule};
use testkit::{helper_command, report, Helper};

const DIR: &str = "PIDGUARD_TEST_REGISTRY";

/// Not a test: the body of the manager processes the other tests start.
#[test]
#[ignore = "helper process for the other tests; does nothing when run alone"]
fn manager_process() {
    if testkit::role().is_none() {
        return;
    }
    let dir = PathBuf::from(std::env::var_os(DIR).expect("PIDGUARD_TEST_REGISTRY"));
    match Registry::open(&dir) {
        Ok(registry) => {
            let mut pids = Vec::new();
            for name in ["model-a", "model-b"] {
                let child = registry
                    .spawn(
                        name,
                        Command::new("sleep").arg("30"),
                        &[("exe", "/bin/sleep"), ("port", "1")],
                    )
                    .unwrap();
                pids.push(child.id().to_string());
                std::mem::forget(child);
            }
            report(&format!("spawned {}", pids.join(" ")));
            let mut line = String::new();
            let _ = std::io::stdin().read_line(&mut line);
        }
        Err(e) if e.kind() == ErrorKind::AlreadyRunning => report("busy"),
        Err(e) => report(&format!("error {e}")),
    }
}

fn start_manager(dir: &Path) -> Helper {
    let mut cmd = helper_command("manager_process", "manager");
    cmd.env(DIR, dir);
    Helper::spawn(cmd)
}

fn alive(pid: i32) -> bool {
    pidguard::liveness(Pid::new(pid).unwrap()) != Liveness::Dead
}

#[test]
fn a_crashed_managers_orphans_are_stopped_by_the_next_manager() {
    let dir = tempfile::tempdir().unwrap();
    let mut manager = start_manager(dir.path());
    let report = manager.report();
    let pids: Vec<i32> = report
        .strip_prefix("spawned ")
        .unwrap_or_else(|| panic!("{report}"))
        .split(' ')
        .map(|p| p.parse().unwrap())
        .collect();
    // Pinned by pidfd at once: killed through it if the test fails before
    // they are stopped.
    let _leftovers = testkit::Pinned::new(pids.clone());
    // The children hold their own locks; the files name them.
    for (name, pid) in ["model-a", "model-b"].iter().zip(&pids) {
        let path = dir.path().join(format!("{name}.pid"));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), format!("{pid}"));
        assert!(dir.path().join(format!("{name}.meta")).exists());
    }
    // The manager crashes.
    manager.kill();
    assert!(pids.iter().all(|p| alive(*p)), "orphans live on");

    let registry = Registry::open(dir.path()).unwrap();
    let rows = registry.list().unwrap();
    assert_eq!(rows.len(), 2);
    assert!(rows
        .iter()
        .all(|r| r.state == State::Running && r.identity_label() == Some("verified")));
    // A dry run changes nothing.
    let dry = SweepPolicy {
        dry_run: true,
        kill: true,
        ..SweepPolicy::default()
    };
    let report = registry.sweep(&dry).unwrap();
    assert!(
        report
            .iter()
            .all(|s| matches!(s.action, Action::StoppedOrphan)),
        "{report:?}"
    );
    assert!(pids.iter().all(|p| alive(*p)));

    let policy = SweepPolicy {
        kill: true,
        schedule: "TERM/5/KILL/5".parse::<Schedule>().unwrap(),
        ..SweepPolicy::default()
    };
    let report = registry.sweep(&policy).unwrap();
    assert!(
        report
            .iter()
            .all(|s| matches!(s.action, Action::StoppedOrphan)),
        "{report:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while pids.iter().any(|p| alive(*p)) {
        assert!(Instant::now() < deadline, "orphans still alive");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(registry.list().unwrap().is_empty());
    assert!(
        !dir.path().join("model-a.meta").exists(),
        "metadata goes with its file"
    );

    // The new manager's own children are kept.
    let mut child = registry
        .spawn("mine", Command::new("sleep").arg("30"), &[])
        .unwrap();
    let report = registry.sweep(&policy).unwrap();
    assert!(matches!(&report[0].action, Action::Kept(_)), "{report:?}");
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn a_second_manager_is_refused_and_touches_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::open(dir.path()).unwrap();
    let mut child = registry
        .spawn("worker", Command::new("sleep").arg("30"), &[])
        .unwrap();
    let before = std::fs::read_to_string(dir.path().join("worker.pid")).unwrap();
    let mut second = start_manager(dir.path());
    assert_eq!(second.report(), "busy");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("worker.pid")).unwrap(),
        before
    );
    assert!(alive(child.id() as i32));
    let err = Registry::open(dir.path()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyRunning);
    child.kill().unwrap();
    child.wait().unwrap();
    // The child is gone: its file is stale now and a sweep removes it.
    let report = registry.sweep(&SweepPolicy::default()).unwrap();
    assert!(
        matches!(report[0].action, Action::RemovedStale),
        "{report:?}"
    );
    assert!(!dir.path().join("worker.pid").exists());
}

#[test]
fn corrupt_metadata_never_blocks_removing_a_stale_file() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::open(dir.path()).unwrap();
    let mut gone = Command::new("true").spawn().unwrap();
    let pid = gone.id();
    gone.wait().unwrap();
    std::fs::write(dir.path().join("x.pid"), format!("{pid}\n")).unwrap();
    std::fs::write(dir.path().join("x.meta"), [0xff, 0x00, b'=', b'\n']).unwrap();
    let report = registry.sweep(&SweepPolicy::default()).unwrap();
    assert!(
        matches!(report[0].action, Action::RemovedStale),
        "{report:?}"
    );
    assert!(!dir.path().join("x.pid").exists());
}

/// A metadata "file" that is a FIFO is never waited on, and one that is a
/// symlink is never followed: the listing goes on as if there were none.
#[test]
fn metadata_that_is_a_fifo_or_a_symlink_is_not_read() {
    let dir = tempfile::tempdir().unwrap();
    let mut gone = Command::new("true").spawn().unwrap();
    let pid = gone.id();
    gone.wait().unwrap();
    // A live process, started before its file: consistent.
    // b.meta names another executable: if it were followed, b would be
    // "mismatched".
    let mut live = Command::new("sleep").arg("30").spawn().unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let decoy = dir.path().join("decoy");
    std::fs::write(&decoy, "exe=/bin/sh\n").unwrap();
    std::fs::write(dir.path().join("a.pid"), format!("{pid}\n")).unwrap();
    // mkfifo(1): rustix has no mknodat on macOS.
    let made = Command::new("mkfifo")
        .arg(dir.path().join("a.meta"))
        .status()
        .unwrap();
    assert!(made.success());
    std::fs::write(dir.path().join("b.pid"), format!("{}\n", live.id())).unwrap();
    std::os::unix::fs::symlink(&decoy, dir.path().join("b.meta")).unwrap();

    let (tx, rx) = std::sync::mpsc::channel();
    let path = dir.path().to_path_buf();
    std::thread::spawn(move || {
        let _ = tx.send(pidguard::registry::list(&path));
    });
    let rows = rx.recv_timeout(Duration::from_secs(20));
    live.kill().unwrap();
    live.wait().unwrap();
    let rows = rows.expect("list waited on the FIFO").unwrap();
    let row = |name: &str| {
        rows.iter()
            .find_map(|e| match e {
                pidguard::registry::Entry::File(r) if r.name == name => Some(r),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no row {name} in {rows:?}"))
    };
    assert_eq!(row("a").state, State::Stale);
    let b = row("b");
    assert_eq!(b.state, State::Running, "{b:?}");
    assert_eq!(
        b.identity_label(),
        Some("consistent"),
        "the symlinked metadata was followed: {b:?}"
    );
    assert!(pidguard::registry::read_meta(&dir.path().join("b.pid")).is_empty());
    assert!(pidguard::registry::read_meta(&dir.path().join("a.pid")).is_empty());
}

/// The metadata is written under a temporary name that is created new and
/// never followed: a symlink planted at that name (it is predictable: the
/// writer's PID) does not make `spawn` write through it.
#[test]
fn metadata_is_never_written_through_a_planted_symlink() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let victim = outside.path().join("victim");
    std::fs::write(&victim, "untouched\n").unwrap();
    let tmp = dir
        .path()
        .join(format!("x.meta.tmp.{}", std::process::id()));
    std::os::unix::fs::symlink(&victim, &tmp).unwrap();
    let registry = Registry::open(dir.path()).unwrap();
    let mut child = registry
        .spawn(
            "x",
            Command::new("sleep").arg("30"),
            &[("exe", "/bin/sleep")],
        )
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "untouched\n");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("x.meta")).unwrap(),
        "exe=/bin/sleep\n"
    );
    assert!(
        std::fs::symlink_metadata(&tmp).is_err(),
        "the temporary name is gone"
    );
}

/// A file that cannot be judged is kept, and the sweep says why as the
/// library's error (its kind and path), as `list` does: invalid content,
/// and a hard-linked file (never taken for a PID file of its own).
#[test]
fn an_unreadable_file_is_kept_with_its_error() {
    use pidguard::registry::{self, Entry, Kept};
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.pid");
    std::fs::write(&garbage, "not a pid\n").unwrap();
    let linked = dir.path().join("linked.pid");
    std::fs::write(&linked, format!("{}\n", std::process::id())).unwrap();
    std::fs::hard_link(&linked, dir.path().join("other-name")).unwrap();
    let expected = [
        (&garbage, ErrorKind::InvalidContents),
        (&linked, ErrorKind::UnsafeFile),
    ];
    let rows: Vec<_> = registry::list(dir.path())
        .unwrap()
        .into_iter()
        .filter_map(|e| match e {
            Entry::File(r) => Some(r),
            Entry::Skipped { .. } => None,
        })
        .collect();
    assert_eq!(rows.len(), 2, "{rows:?}");
    for (row, (path, kind)) in rows.iter().zip(expected) {
        assert_eq!(row.state, State::Unknown, "{row:?}");
        let problem = row.problem.as_ref().expect("an unknown row says why");
        assert_eq!(
            (problem.kind(), problem.path()),
            (kind, Some(path.as_path()))
        );
    }
    let report = registry::sweep(dir.path(), &SweepPolicy::default()).unwrap();
    assert_eq!(report.len(), 2, "{report:?}");
    for (item, (path, kind)) in report.iter().zip(expected) {
        match &item.action {
            Action::Kept(why @ Kept::Unreadable(e)) => {
                assert_eq!((e.kind(), e.path()), (kind, Some(path.as_path())), "{e}");
                assert_eq!(why.to_string(), format!("unknown: {e}"));
            }
            other => panic!("{}: {other:?}", path.display()),
        }
        assert!(path.exists(), "{} is kept", path.display());
    }
}
