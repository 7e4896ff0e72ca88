//! Other programs reading pidguard's files, and pidguard reading theirs.
//! pidguard writes the PID without a trailing newline so that BSD
//! `pidfile_open(3)` (libbsd), whose strict parser refuses one, reports
//! EEXIST with the holder's PID; every other reader is checked to accept
//! the same file.
#![cfg(unix)]

use testkit::*;

use std::path::{Path, PathBuf};
use std::process::Command;

/// A tool the test needs: present, or a printed skip (a failure under CI,
/// where .ci/run installs it).
fn have(what: &str, probe: &mut Command) -> bool {
    if probe.output().is_ok_and(|o| o.status.success()) {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{what} is missing under CI (.ci/run installs it)"
    );
    skipped(&format!("{what} is not installed"));
    false
}

/// tests/c/bsd_pidfile.c, compiled against libbsd into `dir`.
fn bsd_pidfile(dir: &Path) -> Option<PathBuf> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c/bsd_pidfile.c");
    let exe = dir.join("bsd_pidfile");
    let built = Command::new("gcc")
        .arg("-o")
        .arg(&exe)
        .arg(&src)
        .arg("-lbsd")
        .output();
    match built {
        Ok(o) if o.status.success() => Some(exe),
        Ok(o) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "cannot build against libbsd under CI: {}",
                text(&o)
            );
            skipped(&format!(
                "cannot build against libbsd (Debian: libbsd-dev): {}",
                text(&o)
            ));
            None
        }
        Err(e) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "gcc missing under CI: {e}"
            );
            skipped(&format!("gcc is not installed: {e}"));
            None
        }
    }
}

/// A supervised `pidguard run` holding a file for `sleep 30`; stopped on
/// drop by a TERM, which it forwards (a KILL would leave the command).
struct Holder(Owned);

impl Drop for Holder {
    fn drop(&mut self) {
        signal(self.0.pid(), "TERM");
        let _ = self.0 .0.wait();
    }
}

/// A [`Holder`] of `p`, and its command's PID.
fn pidguard_holder(p: &Path) -> (Holder, i32) {
    let holder = Owned::spawn(
        pidguard()
            .arg("run")
            .arg("-p")
            .arg(p)
            .args(["--", "sleep", "30"]),
    );
    let pid = wait_running_locked(p);
    (Holder(holder), pid)
}

#[test]
fn bsd_pidfile_open_on_a_pidguard_held_file_reports_eexist_with_the_holder() {
    let dir = tmp();
    let Some(bsd) = bsd_pidfile(dir.path()) else {
        return;
    };
    let p = dir.path().join("app.pid");
    let (holder, pid) = pidguard_holder(&p);
    // The format: the digits, no newline.
    assert_eq!(std::fs::read(&p).unwrap(), pid.to_string().into_bytes());
    let out = Command::new(&bsd).arg("open").arg(&p).output().unwrap();
    assert_eq!(text(&out).trim(), format!("EEXIST {pid}"), "{}", text(&out));
    // Left alone: still pidguard's, still the same content.
    assert_eq!(std::fs::read(&p).unwrap(), pid.to_string().into_bytes());
    assert!(alive(pid));
    drop(holder);
    assert!(!p.exists());
    // Free now: the BSD daemon gets it.
    let out = Command::new(&bsd).arg("open").arg(&p).output().unwrap();
    assert_eq!(text(&out).trim(), "acquired", "{}", text(&out));
}

#[test]
fn pidguard_sees_a_libbsd_holder() {
    let dir = tmp();
    let Some(bsd) = bsd_pidfile(dir.path()) else {
        return;
    };
    let p = dir.path().join("bsd.pid");
    let ready = dir.path().join("ready");
    let holder = Owned::spawn(Command::new(&bsd).arg("hold").arg(&p).arg(&ready));
    wait_for("the BSD holder", || ready.exists());
    let out = pidguard()
        .args(["status", "--json", "-p"])
        .arg(&p)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["pid"], holder.pid(), "{v}");
    assert_eq!(v["locked"], true, "{v}");
    let out = pidguard()
        .args(["run", "-p"])
        .arg(&p)
        .args(["--", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(75), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("PID {}", holder.pid())),
        "{}",
        text(&out)
    );
}

#[test]
fn other_readers_accept_the_file_without_a_newline() {
    let dir = tmp();
    let p = dir.path().join("app.pid");
    let (_holder, pid) = pidguard_holder(&p);
    let ps = p.to_str().unwrap();

    // The shell: kill $(cat F), and $(cat F) itself.
    let out = Command::new("sh")
        .args([
            "-c",
            r#"kill -0 $(cat "$0") && printf '%s' "$(cat "$0")""#,
            ps,
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), pid.to_string());

    // pgrep -F (procps).
    if have("pgrep", Command::new("pgrep").arg("-V")) {
        let out = Command::new("pgrep").arg("-F").arg(&p).output().unwrap();
        assert!(out.status.success(), "{}", text(&out));
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), pid.to_string());
    }

    // start-stop-daemon --status: 0 means running.
    if have(
        "start-stop-daemon",
        Command::new("start-stop-daemon").arg("--version"),
    ) {
        let out = Command::new("start-stop-daemon")
            .args(["--status", "--pidfile"])
            .arg(&p)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    }

    // Python's `pid` package (installed, or in target/bench/pylib, where
    // .ci/run and bench/cycle.sh put it): check() says another instance
    // runs, with its PID.
    // PIDGUARD_PYLIB names it where the repository's target/ is elsewhere
    // (.ci/package tests the packaged crate outside the workspace).
    let pylib = std::env::var_os("PIDGUARD_PYLIB")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench/pylib"));
    let python = |code: &str| {
        Command::new("python3")
            .env("PYTHONPATH", &pylib)
            .args(["-c", code])
            .arg(dir.path())
            .output()
    };
    if have("Python's pid package", &mut {
        let mut c = Command::new("python3");
        c.env("PYTHONPATH", &pylib).args(["-c", "import pid"]);
        c
    }) {
        let out = python(
            "import sys, pid\n\
             try:\n    pid.PidFile('app', piddir=sys.argv[1]).check()\n    print('free')\n\
             except pid.PidFileAlreadyRunningError as e:\n    print('running', e.pid)\n",
        )
        .unwrap();
        assert!(out.status.success(), "{}", text(&out));
        assert_eq!(text(&out).trim(), format!("running {pid}"));
    }
}

/// A held file rewritten over and over between a long PID and a short
/// one (`Guard::set_pid`, as a supervisor does when it names its command;
/// a take-over writes the same way): a libbsd daemon's `pidfile_open()`
/// polling it meanwhile always gets EEXIST with one of the two PIDs, never
/// EINVAL (a shorter PID used to be written padded with newlines over the
/// longer one, then truncated); pidguard's own reader never finds a
/// partial file (a longer PID written over a shorter one could be read as
/// its first digits, which name another process).
#[test]
fn bsd_pidfile_open_never_fails_while_the_holder_rewrites_a_shorter_pid() {
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicBool, Ordering};
    let dir = tmp();
    let Some(bsd) = bsd_pidfile(dir.path()) else {
        return;
    };
    let p = dir.path().join("app.pid");
    // Two live PIDs of different lengths: this process's and init's.
    let long = pidguard::Pid::current();
    let short = pidguard::Pid::new(1).unwrap();
    assert!(
        long.get() > 9,
        "this test needs a PID of two digits or more"
    );
    let mut guard = pidguard::Pidfile::new(&p).acquire().unwrap();
    let done = AtomicBool::new(false);
    // What pidfile_open() said ("EEXIST <pid>", "errno …"), and how often.
    let mut said = BTreeMap::<String, u64>::new();
    let mut rewrites = 0u64;
    let seen = std::thread::scope(|s| {
        // pidguard's reader, in a loop.
        let reader = s.spawn(|| {
            let mut seen = BTreeMap::<String, u32>::new();
            while !done.load(Ordering::Relaxed) {
                let what = match pidguard::status(&p) {
                    pidguard::Status::Running { pid, locked: true }
                        if pid == long || pid == short =>
                    {
                        format!("running {pid}")
                    }
                    other => format!("{other:?}"),
                };
                *seen.entry(what).or_default() += 1;
            }
            seen
        });
        // Rounds of 20,000 calls until both PIDs were reported (a loaded
        // machine may run the poller while the file holds one of them).
        for _ in 0..10 {
            let mut poller = Command::new(&bsd)
                .arg("poll")
                .arg(&p)
                .arg("20000")
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            while poller.try_wait().unwrap().is_none() {
                for pid in [short, long] {
                    guard.set_pid(pid).unwrap();
                    rewrites += 1;
                }
            }
            let out = poller.wait_with_output().unwrap();
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            assert!(out.status.success(), "{text}");
            for line in text.lines() {
                // "EEXIST <pid> <count>", "errno <n> <count> <message>",
                // "acquired <count>".
                let f: Vec<&str> = line.splitn(4, ' ').collect();
                let (what, count) = match f[..] {
                    ["errno", n, count, message] => (format!("errno {n}: {message}"), count),
                    [what, pid, count] => (format!("{what} {pid}"), count),
                    [what, count] => (what.to_owned(), count),
                    _ => panic!("unexpected output of bsd_pidfile poll: {text}"),
                };
                *said.entry(what).or_default() += count.parse::<u64>().unwrap();
            }
            if said.len() >= 2 {
                break;
            }
        }
        done.store(true, Ordering::Relaxed);
        reader.join().unwrap()
    });
    let both: BTreeMap<String, u64> = said
        .iter()
        .filter(|(k, _)| **k == format!("EEXIST {long}") || **k == format!("EEXIST {short}"))
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    assert!(
        both.len() == 2 && said.len() == 2,
        "pidfile_open() while pidguard held the file and rewrote it {rewrites} times: {said:?} \
         (only EEXIST with PID {short} and with PID {long} expected, both)"
    );
    // Running, locked, with one of the two PIDs: nothing else (`Starting`
    // only if each of the reader's looks over some milliseconds found the
    // file emptied by one rewrite or the next, which this loop makes
    // possible).
    let wanted = [short, long].map(|p| format!("running {p}"));
    assert!(
        seen.keys().all(|k| wanted.contains(k) || k == "Starting"),
        "pidguard::status saw a partial or foreign file while it was rewritten: {seen:?}"
    );
    assert!(!seen.is_empty(), "pidguard's reader never ran");
    assert_eq!(std::fs::read(&p).unwrap(), long.to_string().into_bytes());
    guard.release().unwrap();
}
