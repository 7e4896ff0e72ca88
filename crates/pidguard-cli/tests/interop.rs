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
