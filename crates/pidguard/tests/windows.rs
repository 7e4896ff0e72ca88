//! The lock protocol on Windows, with real processes (issue 18; the design
//! is docs/WINDOWS.md). Run under Wine by `.ci/windows`: what that proves,
//! and what needs a real Windows host, is in docs/GUARANTEES.md.
//!
//! Other processes are this test binary re-executed in a helper role (see
//! `helper_process`): it acquires through the library, reports on stdout,
//! and holds the lock until its stdin closes. Tests end only processes they
//! started, through their own `Child` handles (`TerminateProcess`).
#![cfg(windows)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use pidguard::{ErrorKind, Liveness, Pid, Pidfile, Status};

const ROLE: &str = "PIDGUARD_TEST_ROLE";
const PATH: &str = "PIDGUARD_TEST_PATH";
const GO: &str = "PIDGUARD_TEST_GO";
const MARK: &str = "@pidguard-helper: ";
/// For the "exit" role: how long it holds before it releases and exits 0.
const HOLD_MS: &str = "PIDGUARD_TEST_HOLD_MS";

fn report(line: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "\n{MARK}{line}").unwrap();
    out.flush().unwrap();
}

/// Not a test: the body of the helper processes the other tests start.
#[test]
#[ignore = "helper process for the other tests; does nothing when run alone"]
fn helper_process() {
    let Ok(role) = std::env::var(ROLE) else {
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
            if role == "exit" {
                let ms: u64 = std::env::var(HOLD_MS).unwrap().parse().unwrap();
                std::thread::sleep(Duration::from_millis(ms));
                guard.release().unwrap();
                std::process::exit(0);
            }
            let mut sink = String::new();
            let _ = std::io::stdin().read_line(&mut sink);
            guard.release().unwrap();
            report("released");
        }
        Err(e) if e.kind() == ErrorKind::AlreadyRunning => {
            report(&format!("busy {:?}", e.holder().map(Pid::get)));
        }
        Err(e) => report(&format!("error {e}")),
    }
}

/// A helper process, ended (if still running) and waited for on drop.
struct Helper {
    child: Child,
    out: BufReader<ChildStdout>,
}

impl Helper {
    fn spawn(role: &str, path: &Path, go: Option<&Path>) -> Helper {
        Helper::spawn_with(role, path, go, &[])
    }

    fn spawn_with(role: &str, path: &Path, go: Option<&Path>, env: &[(&str, &str)]) -> Helper {
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.envs(env.iter().copied());
        cmd.args([
            "helper_process",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ROLE, role)
        .env(PATH, path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
        if let Some(go) = go {
            cmd.env(GO, go);
        }
        // Wine's CreateProcess now and then fails with ERROR_INTERNAL_ERROR
        // (1359) when many processes start at once (seen in CI: 16 helpers
        // under load); that is the harness's process start, not the lock
        // under test: try again a few times.
        let mut tries = 0;
        let mut child = loop {
            match cmd.spawn() {
                Ok(c) => break c,
                Err(e) if e.raw_os_error() == Some(1359) && tries < 5 => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(100 * tries));
                }
                Err(e) => panic!("starting a helper process: {e}"),
            }
        };
        let out = BufReader::new(child.stdout.take().unwrap());
        Helper { child, out }
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// The next report (waits for it).
    fn report(&mut self) -> String {
        let mut line = String::new();
        loop {
            line.clear();
            assert!(
                self.out.read_line(&mut line).unwrap() > 0,
                "helper {} ended without reporting",
                self.pid()
            );
            if let Some(r) = line.trim_end().strip_prefix(MARK) {
                return r.to_string();
            }
        }
    }

    /// Lets a holding helper release, and waits for it to exit.
    fn finish(mut self) {
        drop(self.child.stdin.take());
        self.child.wait().unwrap();
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

fn content(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

#[test]
fn uncontested_acquire_writes_pid_and_release_removes_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.pid");
    let guard = Pidfile::new(&path).acquire().unwrap();
    assert_eq!(content(&path), std::process::id().to_string());
    assert_eq!(guard.pid(), Pid::current());
    assert_eq!(pidguard::read(&path).unwrap(), Pid::current());
    // Who holds a lock cannot be read on Windows, so a file naming this
    // process is not proved to be its own (the Ourselves rule): held.
    assert!(
        matches!(pidguard::status(&path), Status::Held(pid) if pid == Pid::current()),
        "{:?}",
        pidguard::status(&path)
    );
    guard.release().unwrap();
    assert!(!path.exists(), "the released file is removed");
    assert!(matches!(pidguard::status(&path), Status::NotRunning));
    // No temporary file is left in the directory.
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
    // And it can be acquired again at once.
    drop(Pidfile::new(&path).acquire().unwrap());
    assert!(!path.exists());
}

#[test]
fn second_acquire_is_refused_naming_the_holder() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.pid");
    let mut holder = Helper::spawn("hold", &path, None);
    assert_eq!(holder.report(), format!("acquired {}", holder.pid()));
    let err = Pidfile::new(&path).acquire().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyRunning, "{err}");
    assert_eq!(err.holder().map(Pid::get), Some(holder.pid()), "{err}");
    // Another process is refused too, naming the same holder.
    let mut other = Helper::spawn("hold", &path, None);
    assert_eq!(other.report(), format!("busy Some({})", holder.pid()));
    other.finish();
    // Readers see it running, and the file whole.
    assert_eq!(pidguard::read(&path).unwrap().get(), holder.pid());
    let pid = Pid::new(holder.pid()).unwrap();
    assert_eq!(pidguard::liveness(pid), Liveness::Alive);
    assert!(
        matches!(pidguard::status(&path), Status::Running { pid: p, locked: true } if p == pid),
        "{:?}",
        pidguard::status(&path)
    );
    drop(holder.child.stdin.take());
    assert_eq!(holder.report(), "released");
    holder.finish();
    assert!(!path.exists());
}

#[test]
fn a_holder_killed_with_terminate_process_is_taken_over_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.pid");
    let mut holder = Helper::spawn("hold", &path, None);
    assert_eq!(holder.report(), format!("acquired {}", holder.pid()));
    let pid = Pid::new(holder.pid()).unwrap();
    holder.child.kill().unwrap(); // TerminateProcess
    holder.child.wait().unwrap();
    let started = Instant::now();
    let guard = Pidfile::new(&path).acquire().unwrap();
    let took = started.elapsed();
    assert_eq!(content(&path), std::process::id().to_string());
    assert_eq!(pidguard::liveness(pid), Liveness::Dead);
    eprintln!("take-over after TerminateProcess: {took:?}");
    assert!(took < Duration::from_secs(1), "{took:?}");
    guard.release().unwrap();
    assert!(!path.exists());
}

#[test]
fn sixteen_racing_processes_have_one_holder_in_each_of_ten_rounds() {
    let dir = tempfile::tempdir().unwrap();
    for round in 0..10 {
        let path = dir.path().join(format!("race{round}.pid"));
        let go = dir.path().join(format!("go{round}"));
        let mut helpers: Vec<Helper> = (0..16)
            .map(|_| Helper::spawn("race", &path, Some(&go)))
            .collect();
        std::fs::write(&go, "").unwrap();
        let reports: Vec<String> = helpers.iter_mut().map(Helper::report).collect();
        let winners: Vec<&Helper> = helpers
            .iter()
            .zip(&reports)
            .filter(|(_, r)| r.starts_with("acquired"))
            .map(|(h, _)| h)
            .collect();
        assert_eq!(winners.len(), 1, "round {round}: {reports:?}");
        let winner = winners[0].pid();
        for r in &reports {
            assert!(
                r == &format!("acquired {winner}") || r == &format!("busy Some({winner})"),
                "round {round}: {reports:?}"
            );
        }
        assert_eq!(content(&path), winner.to_string());
        for h in helpers {
            h.finish();
        }
        assert!(!path.exists(), "round {round}: the winner removed its file");
    }
}

#[test]
fn a_late_release_leaves_a_successors_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.pid");
    let aside = dir.path().join("aside.pid");
    let first = Pidfile::new(&path).acquire().unwrap();
    // The held file is moved away (an administrator, a cleanup tool) and a
    // successor acquires the path.
    std::fs::rename(&path, &aside).unwrap();
    let mut successor = Helper::spawn("hold", &path, None);
    assert_eq!(successor.report(), format!("acquired {}", successor.pid()));
    // The late release must not remove the successor's file.
    first.release().unwrap();
    assert_eq!(content(&path), successor.pid().to_string());
    assert_eq!(pidguard::read(&path).unwrap().get(), successor.pid());
    drop(successor.child.stdin.take());
    assert_eq!(successor.report(), "released");
    successor.finish();
    assert!(!path.exists());
}

#[test]
fn a_reader_never_sees_a_partial_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.pid");
    let me = std::process::id().to_string();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (path, stop, me) = (path.clone(), stop.clone(), me.clone());
        std::thread::spawn(move || {
            let (mut whole, mut absent) = (0u32, 0u32);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                match std::fs::read_to_string(&path) {
                    Ok(s) => {
                        assert_eq!(s, me, "a reader saw a partial file");
                        whole += 1;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => absent += 1,
                    // Opening a file the release has just marked for
                    // deletion is refused on Windows (access denied).
                    Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => absent += 1,
                    Err(e) => panic!("reading {}: {e}", path.display()),
                }
            }
            (whole, absent)
        })
    };
    for _ in 0..300 {
        let guard = Pidfile::new(&path).acquire().unwrap();
        guard.release().unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (whole, absent) = reader.join().unwrap();
    eprintln!("reader: {whole} whole files, {absent} reads with no file, 0 partial");
}

#[test]
fn list_names_a_held_file_and_kill_ends_its_holder_through_its_handle() {
    use pidguard::registry::{list, Entry};
    use pidguard::{Filters, Outcome, Signal};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.pid");
    let mut holder = Helper::spawn("hold", &path, None);
    assert_eq!(holder.report(), format!("acquired {}", holder.pid()));
    let pid = Pid::new(holder.pid()).unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not a PID file").unwrap();
    let entries = list(dir.path()).unwrap();
    let rows: Vec<_> = entries
        .iter()
        .filter_map(|e| match e {
            Entry::File(row) => Some(row),
            Entry::Skipped { .. } => None,
        })
        .collect();
    assert_eq!(rows.len(), 1, "{entries:?}");
    assert_eq!(rows[0].name, "app");
    assert_eq!(rows[0].pid, Some(pid));
    assert!(rows[0].locked, "{:?}", rows[0]);
    assert_eq!(
        entries.len(),
        2,
        "the other file is listed as skipped: {entries:?}"
    );
    // TERM cannot be delivered on Windows: said, and nothing happens.
    let err = pidguard::send_signal(&path, Signal::TERM, &Filters::default()).unwrap_err();
    assert!(err.to_string().contains("only KILL"), "{err}");
    assert_eq!(
        holder.child.try_wait().unwrap(),
        None,
        "TERM must not end it"
    );
    // KILL is TerminateProcess, through the handle pinned for the checks.
    let report = pidguard::send_signal(&path, Signal::KILL, &Filters::default()).unwrap();
    assert_eq!(report.pid, Some(pid), "{report:?}");
    assert!(matches!(report.outcome, Outcome::Signalled), "{report:?}");
    let status = holder.child.wait().unwrap();
    assert_eq!(status.code(), Some(1), "TerminateProcess(h, 1)");
    assert_eq!(pidguard::liveness(pid), Liveness::Dead);
    // Its file is stale now, and taken over at once.
    assert!(
        matches!(pidguard::status(&path), Status::Stale(p) if p == pid),
        "{:?}",
        pidguard::status(&path)
    );
    drop(Pidfile::new(&path).acquire().unwrap());
    assert!(!path.exists());
}

#[test]
fn modes_and_owners_are_refused_saying_why() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.pid");
    let err = Pidfile::new(&path).mode(0o600).acquire().unwrap_err();
    assert!(err.to_string().contains("ACL"), "{err}");
    let err = Pidfile::new(&path)
        .owner(Some(0), None)
        .acquire()
        .unwrap_err();
    assert!(err.to_string().contains("ACL"), "{err}");
    assert!(!path.exists(), "a refused acquire leaves no file");
}

#[test]
fn stop_waits_the_grace_of_an_undeliverable_term_then_terminates() {
    use pidguard::{Filters, Outcome, Signal};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.pid");
    // A holder that ignores everything but TerminateProcess (it waits on
    // its stdin, which stays open).
    let mut holder = Helper::spawn("hold", &path, None);
    assert_eq!(holder.report(), format!("acquired {}", holder.pid()));
    let pid = Pid::new(holder.pid()).unwrap();
    let schedule = "TERM/1/KILL/5".parse().unwrap();
    let started = Instant::now();
    let report = pidguard::stop(&path, &schedule, &Filters::default()).unwrap();
    let took = started.elapsed();
    assert_eq!(report.outcome, Outcome::Stopped, "{report:?}");
    assert_eq!(report.pid, Some(pid), "{report:?}");
    assert_eq!(report.undelivered, [Signal::TERM], "{report:?}");
    assert_eq!(report.sent, [Signal::KILL], "{report:?}");
    let note = report.note().unwrap();
    assert!(note.contains("TERM cannot be delivered"), "{note}");
    assert!(note.contains("ended by KILL (TerminateProcess)"), "{note}");
    assert!(
        took >= Duration::from_secs(1),
        "the grace was waited: {took:?}"
    );
    assert!(took < Duration::from_secs(5), "{took:?}");
    let status = holder.child.wait().unwrap();
    assert_eq!(status.code(), Some(1), "TerminateProcess(h, 1)");
    assert!(report.file_gone, "{report:?}");
    assert!(!path.exists(), "the dead holder's file is removed");
    eprintln!("stop: TERM waited out, then KILL, in {took:?}: {note}");
}

#[test]
fn stop_does_not_terminate_an_owner_that_exits_within_the_grace() {
    use pidguard::{Filters, Outcome, Signal};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.pid");
    let mut holder = Helper::spawn_with("exit", &path, None, &[(HOLD_MS, "700")]);
    assert_eq!(holder.report(), format!("acquired {}", holder.pid()));
    let schedule = "TERM/10/KILL/5".parse().unwrap();
    let started = Instant::now();
    let report = pidguard::stop(&path, &schedule, &Filters::default()).unwrap();
    let took = started.elapsed();
    assert_eq!(report.outcome, Outcome::Stopped, "{report:?}");
    assert_eq!(report.undelivered, [Signal::TERM], "{report:?}");
    assert!(report.sent.is_empty(), "nothing was sent: {report:?}");
    let note = report.note().unwrap();
    assert!(note.contains("exited by itself within the grace"), "{note}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    let status = holder.child.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(0),
        "it exited by itself, not terminated"
    );
    assert!(!path.exists(), "its release removed the file");
}
