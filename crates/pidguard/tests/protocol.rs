//! The lock protocol with real processes, real files and real `flock(1)`.
//!
//! Other processes are this test binary re-executed in a helper role (see
//! `helper_process`): it acquires through the library, reports on stdout, and
//! holds the lock until its stdin closes. Tests kill only processes they
//! started, by PID, and reap them.
// Unix behaviour (Windows: tests/windows.rs).
#![cfg(unix)]

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use pidguard::{ErrorKind, Pid, Pidfile, Status, UnsafeFile};
use testkit::{helper_command, report, Helper};

const PATH: &str = "PIDGUARD_TEST_PATH";
const GO: &str = "PIDGUARD_TEST_GO";

/// Not a test: the body of the helper processes the other tests start.
#[test]
#[ignore = "helper process for the other tests; does nothing when run alone"]
fn helper_process() {
    let Some(role) = testkit::role() else {
        return;
    };
    let path = PathBuf::from(std::env::var_os(PATH).expect("PIDGUARD_TEST_PATH"));
    if role == "race" {
        let go = PathBuf::from(std::env::var_os(GO).expect("PIDGUARD_TEST_GO"));
        while !go.exists() {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    match Pidfile::new(&path).acquire() {
        Ok(guard) => {
            report(&format!("acquired {}", guard.pid()));
            // Hold until the test closes our stdin.
            let mut sink = String::new();
            let _ = std::io::stdin().read_line(&mut sink);
            guard.release().unwrap();
        }
        Err(e) if e.kind() == ErrorKind::AlreadyRunning => {
            report(&format!("busy {:?}", e.holder().map(Pid::get)));
        }
        Err(e) => report(&format!("error {e}")),
    }
}

/// A helper acquiring `path` in `role` ("hold", or "race": wait for `go`).
fn start_helper(role: &str, path: &Path, go: Option<&Path>, cwd: Option<&Path>) -> Helper {
    let mut cmd = helper_command("helper_process", role);
    cmd.env(PATH, path);
    if let Some(go) = go {
        cmd.env(GO, go);
    }
    if let Some(dir) = cwd {
        cmd.current_dir(dir);
    }
    Helper::spawn(cmd)
}

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn content(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

#[test]
fn uncontested_acquire_writes_pid_and_release_removes_file() {
    let dir = tmp();
    let path = dir.path().join("app.pid");
    let guard = Pidfile::new(&path).acquire().unwrap();
    assert_eq!(content(&path), format!("{}", std::process::id()));
    assert_eq!(guard.pid(), Pid::current());
    assert_eq!(guard.path(), path);
    let md = std::fs::metadata(&path).unwrap();
    assert_eq!(md.nlink(), 1);
    assert_eq!(md.mode() & 0o777 & !0o022, 0o644 & !0o022);
    guard.release().unwrap();
    assert!(!path.exists());
    // No temporary files left behind.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn second_acquire_in_same_process_fails_naming_our_pid() {
    let dir = tmp();
    let path = dir.path().join("app.pid");
    let _guard = Pidfile::new(&path).acquire().unwrap();
    let err = Pidfile::new(&path).acquire().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyRunning);
    assert_eq!(err.holder(), Some(Pid::current()));
    let msg = err.to_string();
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(msg.contains(&std::process::id().to_string()), "{msg}");
}

#[test]
fn contested_by_a_child_process() {
    let dir = tmp();
    let path = dir.path().join("app.pid");
    let mut holder = start_helper("hold", &path, None, None);
    assert_eq!(holder.report(), format!("acquired {}", holder.pid()));
    let err = Pidfile::new(&path).acquire().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyRunning);
    assert_eq!(err.holder().map(Pid::get), Some(holder.pid()));
    match pidguard::status(&path) {
        Status::Running { pid, locked: true } => assert_eq!(pid.get(), holder.pid()),
        other => panic!("expected running, got {other:?}"),
    }
    holder.finish();
    assert!(!path.exists(), "the holder's release removes its file");
    let guard = Pidfile::new(&path).acquire().unwrap();
    assert_eq!(content(&path), format!("{}", std::process::id()));
    drop(guard);
}

#[test]
fn sigkilled_holder_is_taken_over_at_once_in_place() {
    let dir = tmp();
    let path = dir.path().join("app.pid");
    let mut holder = start_helper("hold", &path, None, None);
    let dead = holder.pid();
    assert!(holder.report().starts_with("acquired"));
    let ino = std::fs::metadata(&path).unwrap().ino();
    holder.kill();
    // The file is left behind, complete, naming the dead process.
    assert_eq!(content(&path), format!("{dead}"));
    assert!(matches!(pidguard::status(&path), Status::Stale(p) if p.get() == dead));
    let started = Instant::now();
    let guard = Pidfile::new(&path).acquire().unwrap();
    assert!(started.elapsed() < Duration::from_millis(500));
    assert_eq!(content(&path), format!("{}", std::process::id()));
    assert_eq!(
        std::fs::metadata(&path).unwrap().ino(),
        ino,
        "taken over in place"
    );
    drop(guard);
    assert!(!path.exists());
}

#[test]
fn takeover_of_a_longer_stale_file_leaves_no_trailing_digits() {
    let dir = tmp();
    let path = dir.path().join("app.pid");
    std::fs::write(&path, "2147483647\n").unwrap();
    let _guard = Pidfile::new(&path).acquire().unwrap();
    assert_eq!(content(&path), format!("{}", std::process::id()));
}

#[test]
fn thirty_two_processes_race_and_exactly_one_wins_twenty_rounds() {
    let dir = tmp();
    for round in 0..20 {
        let path = dir.path().join(format!("race-{round}.pid"));
        let go = dir.path().join(format!("go-{round}"));
        let mut helpers: Vec<Helper> = (0..32)
            .map(|_| start_helper("race", &path, Some(&go), None))
            .collect();
        std::fs::write(&go, "").unwrap();
        let mut winners = Vec::new();
        let mut losers = Vec::new();
        for (i, h) in helpers.iter_mut().enumerate() {
            let r = h.report();
            if r.starts_with("acquired") {
                winners.push(i);
            } else {
                assert!(r.starts_with("busy Some("), "round {round}: {r}");
                losers.push(i);
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: winners {winners:?}");
        let winner_pid = helpers[winners[0]].pid();
        assert_eq!(content(&path), format!("{winner_pid}"));
        for h in helpers.drain(..) {
            h.finish();
        }
        assert!(!path.exists());
    }
}

#[test]
fn a_late_release_never_deletes_a_successors_file() {
    let dir = tmp();
    let path = dir.path().join("app.pid");
    let first = Pidfile::new(&path).acquire().unwrap();
    // Someone removes the file (an admin, a cleanup script) and a successor
    // creates a new one.
    std::fs::remove_file(&path).unwrap();
    let mut successor = start_helper("hold", &path, None, None);
    assert!(successor.report().starts_with("acquired"));
    let theirs = content(&path);
    first.release().unwrap();
    assert_eq!(content(&path), theirs, "the successor's file survives");
    assert!(matches!(
        pidguard::status(&path),
        Status::Running { locked: true, .. }
    ));
    successor.finish();
    assert!(!path.exists());
}

#[test]
fn relative_paths_are_resolved_against_the_current_directory() {
    let dir = tmp();
    let mut holder = start_helper("hold", Path::new("rel.pid"), None, Some(dir.path()));
    assert!(holder.report().starts_with("acquired"));
    let abs = dir.path().join("rel.pid");
    assert_eq!(content(&abs), format!("{}", holder.pid()));
    holder.finish();
    assert!(!abs.exists());
}

#[test]
fn missing_parent_directories_are_created() {
    let dir = tmp();
    let path = dir.path().join("a/b/app.pid");
    let guard = Pidfile::new(&path).acquire().unwrap();
    let mode = std::fs::metadata(dir.path().join("a/b"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777 & !0o022, 0o755 & !0o022);
    drop(guard);
}

#[test]
fn lock_survives_in_a_child_after_the_parent_closes() {
    let dir = tmp();
    let path = dir.path().join("app.pid");
    let guard = Pidfile::new(&path).inheritable(true).acquire().unwrap();
    let mut child = Command::new("sleep").arg("30").spawn().unwrap();
    drop(guard.into_fd()); // the parent's descriptor is closed
    let err = Pidfile::new(&path).acquire().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyRunning);
    child.kill().unwrap();
    child.wait().unwrap();
    let _guard = Pidfile::new(&path).acquire().unwrap();
}

#[test]
fn lock_is_close_on_exec_by_default() {
    let dir = tmp();
    let path = dir.path().join("app.pid");
    let guard = Pidfile::new(&path).acquire().unwrap();
    let mut child = Command::new("sleep").arg("30").spawn().unwrap();
    drop(guard.into_fd());
    // The child did not inherit the lock, so it is free now.
    let taken = Pidfile::new(&path).acquire();
    child.kill().unwrap();
    child.wait().unwrap();
    taken.unwrap();
}

#[test]
fn a_guard_dropped_in_a_forked_child_removes_and_unlocks_nothing() {
    let dir = tmp();
    let path = dir.path().join("app.pid");
    let guard = Pidfile::new(&path).acquire().unwrap();
    // SAFETY: the child only drops the guard (getpid, close, free of a path
    // buffer) and calls _exit; no lock is held by other threads of this test
    // process at the time of the fork.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        drop(guard);
        // SAFETY: _exit is async-signal-safe and ends the child at once.
        unsafe { libc::_exit(0) };
    }
    let mut status = 0;
    // SAFETY: waiting for our own child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert_eq!(content(&path), format!("{}", std::process::id()));
    let err = Pidfile::new(&path).acquire().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyRunning);
    drop(guard);
    assert!(!path.exists());
}

fn has_flock() -> bool {
    testkit::have_tool("flock", "--version")
}

#[test]
fn interop_with_flock1_when_flock_holds_the_file() {
    if !has_flock() {
        return;
    }
    let dir = tmp();
    let path = dir.path().join("app.pid");
    // -F: flock execs the command itself, so killing it ends the holder.
    let mut flock = Command::new("flock")
        .args(["-n", "-F"])
        .arg(&path)
        .args(["sleep", "30"])
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !path.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(50));
    let err = Pidfile::new(&path).acquire().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyRunning);
    assert!(matches!(pidguard::status(&path), Status::Starting));
    flock.kill().unwrap();
    flock.wait().unwrap();
    let guard = Pidfile::new(&path).acquire().unwrap();
    assert_eq!(content(&path), format!("{}", std::process::id()));
    drop(guard);
}

#[test]
fn interop_with_flock1_when_pidguard_holds_the_file() {
    if !has_flock() {
        return;
    }
    let dir = tmp();
    let path = dir.path().join("app.pid");
    let guard = Pidfile::new(&path).acquire().unwrap();
    let status = Command::new("flock")
        .arg("-n")
        .arg(&path)
        .arg("true")
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(1), "flock -n must find the lock held");
    drop(guard);
    let status = Command::new("flock")
        .arg("-n")
        .arg(&path)
        .arg("true")
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn acquire_timeout_waits_for_the_holder() {
    let dir = tmp();
    let path = dir.path().join("app.pid");
    let mut holder = start_helper("hold", &path, None, None);
    assert!(holder.report().starts_with("acquired"));
    let started = Instant::now();
    let err = Pidfile::new(&path)
        .acquire_timeout(Duration::from_millis(150))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyRunning);
    assert!(started.elapsed() >= Duration::from_millis(150));
    let stdin = holder.child.stdin.take().unwrap();
    let closer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        drop(stdin);
    });
    let guard = Pidfile::new(&path)
        .acquire_timeout(Duration::from_secs(10))
        .unwrap();
    closer.join().unwrap();
    holder.finish();
    assert_eq!(content(&path), format!("{}", std::process::id()));
    drop(guard);
}

#[test]
fn unsafe_paths_are_refused_and_victims_untouched() {
    let dir = tmp();
    let victim = dir.path().join("victim");
    std::fs::write(&victim, "precious\n").unwrap();
    let before = std::fs::metadata(&victim).unwrap().modified().unwrap();

    let link = dir.path().join("link.pid");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    let err = Pidfile::new(&link).acquire().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UnsafeFile);
    assert_eq!(err.unsafe_file_reason(), Some(UnsafeFile::Symlink));
    assert!(matches!(pidguard::status(&link), Status::Unknown(_)));

    let hard = dir.path().join("hard.pid");
    std::fs::hard_link(&victim, &hard).unwrap();
    let err = Pidfile::new(&hard).acquire().unwrap_err();
    assert_eq!(err.unsafe_file_reason(), Some(UnsafeFile::HardLinks(2)));

    let sub = dir.path().join("dir.pid");
    std::fs::create_dir(&sub).unwrap();
    let err = Pidfile::new(&sub).acquire().unwrap_err();
    assert_eq!(err.unsafe_file_reason(), Some(UnsafeFile::Directory));

    let fifo = dir.path().join("fifo.pid");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let started = Instant::now();
    let err = Pidfile::new(&fifo).acquire().unwrap_err();
    assert_eq!(err.unsafe_file_reason(), Some(UnsafeFile::Fifo));
    assert!(matches!(pidguard::status(&fifo), Status::Unknown(_)));
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "never blocks on a FIFO"
    );

    assert_eq!(content(&victim), "precious\n");
    assert_eq!(
        std::fs::metadata(&victim).unwrap().modified().unwrap(),
        before
    );
}

#[test]
fn status_of_every_kind_of_file() {
    let dir = tmp();
    let path = dir.path().join("s.pid");
    assert!(matches!(pidguard::status(&path), Status::NotRunning));

    // A foreign, unlocked file naming a live process that started before
    // it was written (as nginx writes it, without a newline).
    let mut daemon = Command::new("sleep").arg("30").spawn().unwrap();
    std::fs::write(&path, format!("{}", daemon.id())).unwrap();
    let seen = pidguard::status(&path);
    // Our own PID in an unlocked file is never taken for the owner.
    std::fs::write(&path, format!("{}\n", std::process::id())).unwrap();
    let ours = pidguard::status(&path);
    daemon.kill().unwrap();
    daemon.wait().unwrap();
    assert!(
        matches!(seen, Status::Running { locked: false, pid } if pid.get() as u32 == daemon.id()),
        "{seen:?}"
    );
    assert!(
        matches!(ours, Status::Stale(p) if p == Pid::current()),
        "{ours:?}"
    );

    // Invalid content: unknown, saying why.
    std::fs::write(&path, "-1\n").unwrap();
    match pidguard::status(&path) {
        Status::Unknown(e) => {
            assert_eq!(e.kind(), ErrorKind::InvalidContents);
            assert!(e.to_string().contains("s.pid"), "{e}");
        }
        other => panic!("{other:?}"),
    }

    // A dead process: stale.
    let mut child = Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    std::fs::write(&path, format!("{dead}\n")).unwrap();
    assert!(matches!(pidguard::status(&path), Status::Stale(p) if p.get() as u32 == dead));
}

#[test]
fn named_locations() {
    let pf = Pidfile::named("pidguard-test-app");
    let path = pf.path().unwrap();
    assert!(
        path.ends_with("pidguard-test-app.pid"),
        "{}",
        path.display()
    );
    if rustix::process::geteuid().is_root() {
        assert_eq!(path, Path::new("/run/pidguard-test-app.pid"));
    }
    let mut pf = Pidfile::named("pidguard-test-app");
    pf.instance("/home/me/project");
    let inst = pf.path().unwrap();
    let parent = inst
        .parent()
        .unwrap()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert!(parent.starts_with("instance-"), "{}", inst.display());
    let err = Pidfile::named("../evil").path().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidName);
}

/// Readers (`status`, `list`) probe the lock with a shared lock held for an
/// instant. An acquire that meets such a probe on an unlocked file naming a
/// live PID whose owner is proved gone (here a thread's TID, which names no
/// process; an unlocked file naming a live process is refused unless its
/// owner is proved gone, see `unlocked_file_of_a_live_daemon_is_not_taken_over`)
/// must not mistake the reader for a running instance.
#[test]
fn readers_probing_the_lock_never_make_a_free_file_look_held() {
    let dir = tmp();
    let path = dir.path().join("app.pid");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            // "/proc/thread-self" reads "PID/task/TID".
            let link = std::fs::read_link("/proc/thread-self").unwrap();
            let tid: i32 = link.file_name().unwrap().to_str().unwrap().parse().unwrap();
            tx.send(tid).unwrap();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        })
    };
    let live = rx.recv().unwrap();
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (path, stop) = (path.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut looks = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let _ = pidguard::status(&path);
                    looks += 1;
                }
                looks
            })
        })
        .collect();
    let mut failures = Vec::new();
    for _ in 0..2000 {
        std::fs::write(&path, format!("{live}\n")).unwrap();
        match Pidfile::new(&path).acquire() {
            Ok(guard) => guard.release().unwrap(),
            Err(e) => failures.push(e.to_string()),
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    thread.join().unwrap();
    let looks: u64 = readers.into_iter().map(|r| r.join().unwrap()).sum();
    assert!(looks > 1000, "the readers hardly ran ({looks} looks)");
    assert!(
        failures.is_empty(),
        "{} of 2000 acquires failed, e.g. {}",
        failures.len(),
        failures[0]
    );
}

/// An unlocked file naming a live process that passes every check (as
/// nginx's or sshd's: they do not lock) is not taken over: AlreadyRunning,
/// the holder named, the file untouched. Once the process is gone, it is.
#[test]
fn unlocked_file_of_a_live_daemon_is_not_taken_over() {
    let dir = tmp();
    let path = dir.path().join("daemon.pid");
    let mut daemon = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    let pid = daemon.id();
    std::fs::write(&path, format!("{pid}\n")).unwrap();
    let err = Pidfile::new(&path).acquire().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyRunning, "{err}");
    assert_eq!(err.holder().map(|p| p.as_u32()), Some(pid), "{err}");
    assert!(err.to_string().contains("not locked"), "{err}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), format!("{pid}\n"));
    daemon.kill().unwrap();
    daemon.wait().unwrap();
    let guard = Pidfile::new(&path).acquire().unwrap();
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        std::process::id().to_string()
    );
    drop(guard);
}

/// A temporary directory where kernel identity records are written, or
/// `None` (with a printed reason) where they cannot be.
fn records_dir() -> Option<tempfile::TempDir> {
    let dir = tempfile::tempdir().unwrap();
    match testkit::kernel::kernel_identity_unavailable(dir.path()) {
        Some(why) => {
            testkit::skipped(&why);
            None
        }
        None => Some(dir),
    }
}

#[test]
fn every_write_records_the_owner_and_set_pid_moves_the_record() {
    use testkit::kernel::{kernel_record, pidfs_ino};
    let Some(dir) = records_dir() else { return };
    let path = dir.path().join("k.pid");
    let me = std::process::id() as i32;
    let mut guard = Pidfile::new(&path).acquire().unwrap();
    assert_eq!(kernel_record(&path), Some((me, pidfs_ino(me).unwrap())));
    // Locked: the lock decides (and names its holder).
    let found = pidguard::inspect(&path, &Default::default());
    assert_eq!(found.decided_by, Some(pidguard::DecidedBy::Lock));
    // Unlocked (the lock's descriptor closed, the file left): the record
    // proves the owner.
    let unlocked = dir.path().join("unlocked.pid");
    drop(Pidfile::new(&unlocked).acquire().unwrap().into_fd());
    let found = pidguard::inspect(&unlocked, &Default::default());
    assert!(!found.locked);
    assert_eq!(found.identity, Some(pidguard::Identity::Verified));
    assert_eq!(found.decided_by, Some(pidguard::DecidedBy::KernelIdentity));
    std::fs::remove_file(&unlocked).unwrap();
    // A proved owner still has to pass the caller's filters.
    let filters = pidguard::Filters {
        name: Some("no-such-comm".into()),
        ..Default::default()
    };
    let found = pidguard::inspect(&path, &filters);
    assert!(
        matches!(
            found.identity,
            Some(pidguard::Identity::Mismatched(
                pidguard::Mismatch::Name { .. }
            ))
        ),
        "{found:?}"
    );
    assert_eq!(
        found.decided_by,
        Some(pidguard::DecidedBy::ConsistentChecks)
    );

    // The holder names a child: the record follows, before the content.
    let mut child = Command::new("sleep").arg("30").spawn().unwrap();
    let c = child.id() as i32;
    guard.set_pid(Pid::new(c).unwrap()).unwrap();
    assert_eq!(kernel_record(&path), Some((c, pidfs_ino(c).unwrap())));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), format!("{c}"));
    child.kill().unwrap();
    child.wait().unwrap();
    drop(guard);

    // The registry's children, written through set_pid, too.
    let registry = pidguard::registry::Registry::open(dir.path()).unwrap();
    let mut child = registry
        .spawn("w", Command::new("sleep").arg("30"), &[])
        .unwrap();
    let c = child.id() as i32;
    let w = dir.path().join("w.pid");
    assert_eq!(kernel_record(&w), Some((c, pidfs_ino(c).unwrap())));
    let rows = registry.list().unwrap();
    assert_eq!(rows[0].decided_by, Some(pidguard::DecidedBy::Lock));
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn a_take_over_replaces_a_stale_record_that_names_the_same_pid() {
    use testkit::kernel::{kernel_record, pidfs_ino, plant_record};
    let Some(dir) = records_dir() else { return };
    let path = dir.path().join("s.pid");
    let me = std::process::id() as i32;
    let ino = pidfs_ino(me).unwrap();
    // A previous owner with our PID number (reused): unlocked, its record
    // names another process.
    let plant = |path: &Path| {
        std::fs::write(path, format!("{me}\n")).unwrap();
        plant_record(path, me, ino + 1000);
    };
    plant(&path);
    let found = pidguard::inspect(&path, &Default::default());
    assert!(
        matches!(
            found.identity,
            Some(pidguard::Identity::Mismatched(pidguard::Mismatch::KernelIdentity { recorded, found }))
                if recorded == ino + 1000 && found == ino
        ),
        "{found:?}"
    );
    assert_eq!(found.decided_by, Some(pidguard::DecidedBy::KernelIdentity));
    // Taken over: the record names us, and proves it.
    let guard = Pidfile::new(&path).acquire().unwrap();
    assert_eq!(kernel_record(&path), Some((me, ino)));
    assert_eq!(
        pidguard::inspect(&path, &Default::default()).identity,
        Some(pidguard::Identity::Verified)
    );
    drop(guard);

    // Without records, a take-over still removes the stale one, and a new
    // file gets none.
    plant(&path);
    let guard = Pidfile::new(&path)
        .kernel_identity(false)
        .acquire()
        .unwrap();
    assert_eq!(kernel_record(&path), None);
    let found = pidguard::inspect(&path, &Default::default());
    assert_eq!(found.decided_by, Some(pidguard::DecidedBy::Lock));
    drop(guard);
    let guard = Pidfile::new(&path)
        .kernel_identity(false)
        .acquire()
        .unwrap();
    assert_eq!(kernel_record(&path), None);
    drop(guard);
}

#[test]
fn a_forked_child_records_its_own_identity_not_its_parents() {
    use testkit::kernel::{kernel_record, pidfs_ino};
    let Some(dir) = records_dir() else { return };
    // The parent's own identity is cached first.
    let mine = dir.path().join("parent.pid");
    drop(Pidfile::new(&mine).acquire().unwrap());
    let path = dir.path().join("child.pid");
    // SAFETY: the child acquires through the library, compares its record
    // with a pidfd of its own, and leaves with _exit; no lock is held by
    // other threads of this test process at the time of the fork.
    match unsafe { libc::fork() } {
        0 => {
            let me = std::process::id() as i32;
            let ok = match Pidfile::new(&path).acquire() {
                Ok(g) => {
                    let _ = g.into_fd();
                    kernel_record(&path).is_some()
                        && kernel_record(&path) == pidfs_ino(me).map(|i| (me, i))
                }
                Err(_) => false,
            };
            // SAFETY: _exit is async-signal-safe and ends the child at once.
            unsafe { libc::_exit(if ok { 0 } else { 1 }) };
        }
        -1 => panic!("fork failed"),
        child => {
            let mut status = 0;
            // SAFETY: waiting for our own child.
            assert_eq!(unsafe { libc::waitpid(child, &mut status, 0) }, child);
            assert_eq!(status, 0, "the child's record names its own identity");
            // The child is gone, so its identity can no longer be asked:
            // the record must name its PID and not the parent's identity.
            let (pid, ino) = kernel_record(&path).expect("a record");
            assert_eq!(pid, child);
            assert_ne!(ino, pidfs_ino(std::process::id() as i32).unwrap());
        }
    }
}

/// `Pidfile::owner` and `mode`, as root (giving a file away needs it): a
/// new file gets its owner, group and mode, the mode exactly; a stale file
/// taken over gets them too, an owner or a group alone changing only that;
/// without `mode` a taken-over file keeps its own.
#[test]
fn owner_group_and_mode_on_a_new_and_a_taken_over_file() {
    if !rustix::process::geteuid().is_root() {
        testkit::skipped("giving a file to another user needs root");
        return;
    }
    let dir = tmp();
    let path = dir.path().join("owned.pid");
    let owned = |p: &Path| {
        let md = std::fs::metadata(p).unwrap();
        (md.uid(), md.gid(), md.permissions().mode() & 0o7777)
    };
    let guard = Pidfile::new(&path)
        .owner(Some(65534), Some(65534))
        .mode(0o640)
        .acquire()
        .unwrap();
    assert_eq!(owned(&path), (65534, 65534, 0o640));
    assert_eq!(content(&path), std::process::id().to_string());
    guard.release().unwrap();
    assert!(!path.exists());

    // A stale file of root's (a dead PID), taken over: the group only.
    let mut gone = Command::new("true").spawn().unwrap();
    gone.wait().unwrap();
    std::fs::write(&path, format!("{}\n", gone.id())).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let guard = Pidfile::new(&path)
        .owner(None, Some(65534))
        .acquire()
        .unwrap();
    assert_eq!(owned(&path), (0, 65534, 0o644), "its mode is kept");
    // Abandoned (as a crash would), then taken over with an owner and a mode.
    drop(guard.into_fd());
    let guard = Pidfile::new(&path)
        .owner(Some(65534), None)
        .mode(0o600)
        .acquire()
        .unwrap();
    assert_eq!(owned(&path), (65534, 65534, 0o600));
    assert_eq!(content(&path), std::process::id().to_string());
    guard.release().unwrap();
}
