//! `stop`, `signal` and `wait` against real processes.
//!
//! Tests that check "never signals X" run pidguard under
//! `strace -f -e inject=kill,tgkill,pidfd_send_signal:error=EPERM`, so that a
//! bug cannot signal anything, and read strace's log to prove no signal was
//! even attempted. Tests signal only processes they started, by PID.
#![cfg(unix)]

use testkit::*;

use std::fs::File;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant, SystemTime};

/// A process that ignores SIGTERM (the ignored disposition survives exec).
fn term_ignorer() -> Owned {
    let p = Owned::spawn(Command::new("sh").args(["-c", "trap '' TERM; exec sleep 30"]));
    // Let the shell install the trap and exec.
    wait_for("the exec", || {
        std::fs::read_to_string(format!("/proc/{}/comm", p.pid()))
            .map(|c| c.trim() == "sleep")
            .unwrap_or(true)
    });
    p
}

fn set_mtime(path: &Path, t: SystemTime) {
    File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(t)
        .unwrap();
}

fn stop(path: &Path, extra: &[&str]) -> Output {
    pidguard()
        .arg("stop")
        .arg("-p")
        .arg(path)
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn stop_a_supervised_term_obeying_process() {
    let dir = tmp();
    let p = dir.path().join("app.pid");
    let sup = Owned::spawn(
        pidguard()
            .arg("run")
            .arg("-p")
            .arg(&p)
            .args(["--", "sleep", "30"]),
    );
    let pid = wait_verified(&p);
    let out = stop(&p, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("verified"), "{}", text(&out));
    assert!(!alive(pid));
    assert!(!p.exists());
    drop(sup);
}

#[test]
fn stop_an_exec_holder_and_remove_its_file() {
    let dir = tmp();
    let p = dir.path().join("app.pid");
    let mut holder = Owned::spawn(
        pidguard()
            .args(["run", "--exec", "-p"])
            .arg(&p)
            .args(["--", "sleep", "30"]),
    );
    let pid = wait_running(&p);
    assert_eq!(pid, holder.pid());
    let out = stop(&p, &["--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["outcome"], "stopped");
    assert_eq!(v["identity"], "verified");
    assert_eq!(v["file_gone"], true);
    assert!(!p.exists());
    assert!(
        holder.0.wait().unwrap().code().is_none(),
        "killed by SIGTERM"
    );
}

#[test]
fn a_term_ignoring_process_is_killed_by_the_schedule_on_time() {
    let dir = tmp();
    let p = dir.path().join("app.pid");
    let mut target = term_ignorer();
    write_pidfile(&p, &format!("{}\n", target.pid()));
    let started = Instant::now();
    let out = stop(&p, &["--schedule", "TERM/1/KILL/5"]);
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        took >= Duration::from_millis(950) && took < Duration::from_secs(4),
        "took {took:?}"
    );
    let status = target.0.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9)
    );
    assert!(!p.exists());
}

#[test]
fn a_schedule_without_kill_leaves_it_running_and_exits_1() {
    let dir = tmp();
    let p = dir.path().join("app.pid");
    let mut target = term_ignorer();
    write_pidfile(&p, &format!("{}\n", target.pid()));
    let out = stop(&p, &["--schedule", "TERM/0.3"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("still running"), "{}", text(&out));
    assert!(target.0.try_wait().unwrap().is_none(), "still running");
    assert!(p.exists(), "the file is kept");
}

#[test]
fn a_stopped_process_still_stops() {
    let dir = tmp();
    let p = dir.path().join("app.pid");
    let mut target = sleeper();
    write_pidfile(&p, &format!("{}\n", target.pid()));
    assert!(Command::new("kill")
        .args(["-STOP", &target.pid().to_string()])
        .status()
        .unwrap()
        .success());
    let out = stop(&p, &["--schedule", "TERM/5"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let status = target.0.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(15)
    );
}

#[test]
fn a_zombie_counts_as_exited_at_once() {
    let dir = tmp();
    let p = dir.path().join("app.pid");
    // This test is the target's parent and does not reap it until the end,
    // so after SIGTERM it stays a zombie while stop runs.
    let mut target = sleeper();
    write_pidfile(&p, &format!("{}\n", target.pid()));
    let started = Instant::now();
    let out = stop(&p, &["--schedule", "TERM/20"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", target.pid())).unwrap();
    assert!(stat.contains(") Z "), "still a zombie, not reaped: {stat}");
    target.0.wait().unwrap();
}

#[test]
fn bad_contents_never_reach_a_kill() {
    let dir = tmp();
    let p = dir.path().join("bad.pid");
    let rejected = rejected_contents();
    for content in &rejected {
        write_pidfile(&p, content);
        for cmd in [vec!["stop"], vec!["signal", "KILL"]] {
            let mut args: Vec<&str> = cmd.clone();
            let ps = p.to_str().unwrap();
            args.extend(["-p", ps]);
            let Some((out, signals)) = under_strace(ALL_SIGNALS, &args) else {
                return;
            };
            assert!(
                signals.is_empty(),
                "{content:?}: {cmd:?} tried to signal: {signals:?}"
            );
            assert_eq!(
                out.status.code(),
                Some(65),
                "{content:?} {cmd:?}: {}",
                text(&out)
            );
            assert!(text(&out).contains("bad.pid"), "{}", text(&out));
        }
    }
}

#[test]
fn reused_pids_init_and_odd_forms_are_never_signalled() {
    let dir = tmp();
    let p = dir.path().join("reused.pid");
    let newcomer = sleeper();
    let n = newcomer.pid();
    // The file was written an hour before the process named in it started:
    // its PID was reused. Lenient odd forms must not change the verdict.
    for content in [
        format!("{n}\n"),
        format!(" {n} \n"),
        format!("0{n}\n"),
        format!("{n}\n1\n"),
        format!("{n}\r\n"),
        "1\n".to_string(),
    ] {
        write_pidfile(&p, &content);
        set_mtime(&p, SystemTime::now() - Duration::from_secs(3600));
        let ps = p.to_str().unwrap();
        let Some((out, signals)) = under_strace(ALL_SIGNALS, &["stop", "-p", ps, "--json"]) else {
            return;
        };
        assert!(
            signals.is_empty(),
            "{content:?}: tried to signal: {signals:?}"
        );
        // A live process proved not the owner keeps its file (only timing
        // says so, and a clock step can cause that): exit 1.
        assert_eq!(out.status.code(), Some(1), "{content:?}: {}", text(&out));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["outcome"], "mismatched", "{content:?}: {v}");
        assert_eq!(v["identity"], "mismatched", "{content:?}: {v}");
        assert!(p.exists(), "{content:?}: a live process's file is kept");
        assert!(alive(n));
    }
    // `status` agrees: stale, exit 1.
    write_pidfile(&p, &format!("{n}\n"));
    set_mtime(&p, SystemTime::now() - Duration::from_secs(3600));
    let out = pidguard().arg("status").arg("-p").arg(&p).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("reused"), "{}", text(&out));
    // And `signal` refuses too.
    let ps = p.to_str().unwrap();
    if let Some((out, signals)) = under_strace(ALL_SIGNALS, &["signal", "-p", ps, "HUP"]) {
        assert!(signals.is_empty(), "{signals:?}");
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    }
}

#[test]
fn filters_that_do_not_match_prevent_signalling() {
    let dir = tmp();
    let p = dir.path().join("f.pid");
    let target = sleeper();
    write_pidfile(&p, &format!("{}\n", target.pid()));
    let ps = p.to_str().unwrap();
    for filter in [
        ["--comm", "nginx"],
        ["--exe", "/bin/sh"],
        ["--user", "65534"],
    ] {
        let mut args = vec!["stop", "-p", ps];
        args.extend(filter);
        let Some((out, signals)) = under_strace(ALL_SIGNALS, &args) else {
            return;
        };
        assert!(signals.is_empty(), "{filter:?}: {signals:?}");
        // Nothing signalled, the file kept, exit 1, and the message says
        // which filter failed and what the process is.
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        assert!(text(&out).contains(filter[0]), "{filter:?}: {}", text(&out));
        assert!(alive(target.pid()));
        assert!(p.exists(), "{filter:?}: the file is kept");
    }
    // Matching filters allow it.
    let sleep_exe = std::fs::canonicalize(format!("/proc/{}/exe", target.pid())).unwrap();
    let out = stop(
        &p,
        &[
            "--comm",
            "sleep",
            "--exe",
            sleep_exe.to_str().unwrap(),
            "--schedule",
            "TERM/5",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(!alive(target.pid()) || !p.exists());
}

/// Runs pidguard as another user, when the tests run as root.
fn as_user(uid: u32) -> Option<Command> {
    if !rustix::process::geteuid().is_root() {
        skipped("needs root to run processes as other users");
        return None;
    }
    let mut c = Command::new("setpriv");
    c.arg(format!("--reuid={uid}"))
        .arg(format!("--regid={uid}"))
        .args(["--clear-groups", "--"]);
    Some(c)
}

#[test]
fn eperm_exits_77_and_keeps_the_file() {
    let Some(mut victim_cmd) = as_user(65534) else {
        return;
    };
    let dir = tmp();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let p = dir.path().join("other.pid");
    let victim = Owned::spawn(victim_cmd.args(["sleep", "30"]));
    wait_for("the exec", || {
        std::fs::read_to_string(format!("/proc/{}/comm", victim.pid()))
            .map(|c| c.trim() == "sleep")
            .unwrap_or(false)
    });
    write_pidfile(&p, &format!("{}\n", victim.pid()));
    let out = as_user(65533)
        .unwrap()
        .arg(bin())
        .arg("stop")
        .arg("-p")
        .arg(&p)
        .output()
        .unwrap();
    if out.status.code() == Some(126) {
        skipped("the binary is not reachable by another user");
        return;
    }
    assert_eq!(out.status.code(), Some(77), "{}", text(&out));
    assert!(text(&out).contains("65534"), "{}", text(&out));
    assert!(p.exists());
    assert!(alive(victim.pid()));
}

#[test]
fn as_root_untrusted_files_are_refused() {
    if !rustix::process::geteuid().is_root() {
        skipped("trust checks apply when running as root");
        return;
    }
    let dir = tmp();
    let p = dir.path().join("t.pid");
    let target = sleeper();
    write_pidfile(&p, &format!("{}\n", target.pid()));
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o666)).unwrap();
    let ps = p.to_str().unwrap();
    let Some((out, signals)) = under_strace(ALL_SIGNALS, &["stop", "-p", ps]) else {
        return;
    };
    assert!(signals.is_empty(), "{signals:?}");
    assert_eq!(out.status.code(), Some(77), "{}", text(&out));
    assert!(text(&out).contains("world-writable"), "{}", text(&out));
    // A world-writable directory on the way (without the sticky bit).
    let open = dir.path().join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    let p2 = open.join("t.pid");
    write_pidfile(&p2, &format!("{}\n", target.pid()));
    let ps2 = p2.to_str().unwrap();
    let Some((out, signals)) = under_strace(ALL_SIGNALS, &["signal", "-p", ps2, "HUP"]) else {
        return;
    };
    assert!(signals.is_empty(), "{signals:?}");
    assert_eq!(out.status.code(), Some(77), "{}", text(&out));
    assert!(
        text(&out).contains("non-root user can write"),
        "{}",
        text(&out)
    );
    assert!(alive(target.pid()));
}

#[test]
fn signal_sends_one_signal() {
    let dir = tmp();
    let p = dir.path().join("s.pid");
    let out_file = dir.path().join("got");
    let script = format!(
        "trap 'echo HUP >> {}' HUP; echo $$ > {}.tmp; mv {}.tmp {}; while :; do sleep 0.05; done",
        out_file.display(),
        p.display(),
        p.display(),
        p.display()
    );
    let target = Owned::spawn(Command::new("sh").args(["-c", &script]));
    wait_for("the pid file", || p.exists());
    for (i, name) in ["HUP", "SIGHUP", "1"].iter().enumerate() {
        let out = pidguard()
            .args(["signal", "-p"])
            .arg(&p)
            .arg(name)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        // One at a time: pending signals of one kind coalesce.
        wait_for("the HUP to be handled", || {
            std::fs::read_to_string(&out_file)
                .map(|s| s.lines().count() == i + 1)
                .unwrap_or(false)
        });
    }
    assert!(alive(target.pid()));
    pidguard()
        .args(["signal", "-p"])
        .arg(&p)
        .arg("NOPE")
        .assert_usage();
    std::fs::remove_file(&p).unwrap();
    let out = pidguard()
        .args(["signal", "-p"])
        .arg(&p)
        .arg("HUP")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
}

trait AssertUsage {
    fn assert_usage(&mut self);
}

impl AssertUsage for Command {
    fn assert_usage(&mut self) {
        let out = self.output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    }
}

#[test]
fn wait_returns_when_the_process_exits_or_times_out() {
    let dir = tmp();
    let p = dir.path().join("w.pid");
    let mut target = sleeper();
    write_pidfile(&p, &format!("{}\n", target.pid()));
    let out = pidguard()
        .args(["wait", "--timeout", "200ms", "-p"])
        .arg(&p)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let mut waiter = pidguard()
        .args(["wait", "--timeout", "10s", "-p"])
        .arg(&p)
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    target.0.kill().unwrap();
    assert_eq!(waiter.wait().unwrap().code(), Some(0));
    target.0.wait().unwrap();
    std::fs::remove_file(&p).unwrap();
    let out = pidguard().args(["wait", "-p"]).arg(&p).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "not running: nothing to wait for"
    );
}

#[test]
fn a_start_stop_daemon_file_is_stopped() {
    if !have_tool("start-stop-daemon", "--version") {
        return;
    }
    let dir = tmp();
    let p = dir.path().join("ssd.pid");
    let status = Command::new("start-stop-daemon")
        .args(["--start", "--background", "--make-pidfile", "--pidfile"])
        .arg(&p)
        .args(["--exec", "/bin/sleep", "--", "30"])
        .status()
        .unwrap();
    assert!(status.success());
    let pid = wait_running(&p);
    let out = stop(&p, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("consistent"), "{}", text(&out));
    wait_for("the daemon to exit", || !alive(pid));
    assert!(!p.exists());
}

#[test]
fn usage_and_schedule_errors() {
    for bad in [
        vec!["stop", "-p", "x.pid", "--schedule", "TERM//5"],
        vec!["stop", "-p", "x.pid", "--schedule", "5/10"],
        vec!["stop", "-p", "x.pid", "--signal", "NOPE"],
        vec!["stop", "-p", "x.pid", "--timeout", "soon"],
        vec!["signal", "-p", "x.pid", "65"],
        vec!["signal", "-p", "x.pid"],
    ] {
        pidguard().args(&bad).assert_usage();
    }
}

/// `--exe` matches a daemon whose binary was replaced since it started
/// (a package upgrade: `/proc/PID/exe` reads `PATH (deleted)`, and a new
/// inode sits at PATH), as start-stop-daemon's `--exec` compares by path;
/// another path still does not match.
#[test]
fn exe_matches_a_replaced_binary() {
    let dir = tmp();
    let exe = dir.path().join("mydaemon");
    let real_sleep = Command::new("sh")
        .args(["-c", "command -v sleep"])
        .output()
        .unwrap();
    let real_sleep =
        std::fs::canonicalize(String::from_utf8_lossy(&real_sleep.stdout).trim()).unwrap();
    std::fs::copy(&real_sleep, &exe).unwrap();
    let daemon = Owned::spawn(Command::new(&exe).arg("30"));
    wait_for("the exec", || {
        std::fs::read_link(format!("/proc/{}/exe", daemon.pid()))
            .ok()
            .as_deref()
            == Some(exe.as_path())
    });
    // The upgrade: the old binary removed, a new one put in its place.
    std::fs::remove_file(&exe).unwrap();
    std::fs::copy(&real_sleep, &exe).unwrap();
    let link = std::fs::read_link(format!("/proc/{}/exe", daemon.pid())).unwrap();
    assert!(link.to_string_lossy().ends_with(" (deleted)"), "{link:?}");
    let p = dir.path().join("d.pid");
    write_pidfile(&p, &format!("{}\n", daemon.pid()));
    let ps = p.to_str().unwrap();
    // Another path: no match, nothing signalled.
    let Some((out, signals)) = under_strace(
        ALL_SIGNALS,
        &["signal", "--exe", "/bin/sh", "-p", ps, "CONT"],
    ) else {
        return;
    };
    assert!(signals.is_empty(), "{signals:?}");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    // The replaced binary's path matches: stopped.
    let out = stop(
        &p,
        &["--exe", exe.to_str().unwrap(), "--schedule", "TERM/5"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    wait_for("the daemon's end", || !alive(daemon.pid()));
}

/// A locked file naming a live process that does not hold the lock, read
/// where the descriptors cannot be listed (`getdents64` failing with
/// `ENOSYS`, as a seccomp filter may make it): whether the named process
/// holds the lock is unproved, so it is not signalled. On Linux `ENOSYS`
/// is a refused system call, not a platform without a lock table.
#[test]
fn a_lock_holder_check_failing_with_enosys_signals_nothing() {
    let dir = tmp();
    let target = sleeper();
    let p = dir.path().join("held.pid");
    write_pidfile(&p, &format!("{}\n", target.pid()));
    let _holder = Owned::spawn(
        Command::new("flock")
            .arg("--no-fork")
            .arg(&p)
            .args(["sleep", "30"]),
    );
    wait_for("flock(1) to hold the file", || !lock_free(&p));
    let ps = p.to_str().unwrap();
    let seam = Seam {
        also_trace: "getdents64",
        also_inject: "getdents64:error=ENOSYS",
        ..Seam::default()
    };
    let mut cmd = pidguard();
    cmd.args(["signal", "-p", ps, "CONT"]);
    let Some((out, calls)) = seam.run(&cmd) else {
        return;
    };
    let signals = signals_in(&calls);
    assert!(signals.is_empty(), "{signals:?}\n{}", text(&out));
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    let mut cmd = pidguard();
    cmd.args(["status", "-p", ps, "--json"]);
    let (out, _) = seam.run(&cmd).unwrap();
    let json = String::from_utf8_lossy(&out.stdout);
    assert!(!json.contains("\"consistent\""), "{json}");
    assert!(alive(target.pid()));
}

/// A file in the starting state (locked, no PID yet: `flock(1)` holding an
/// empty file): `stop`, `signal` and `signal 0` signal nothing (under the
/// strace seam), keep the file, exit 1 (exit::TABLE's row 1) and say so.
#[test]
fn stop_and_signal_on_a_starting_file_exit_1_signalling_nothing() {
    if !have_tool("flock", "--version") {
        return;
    }
    let dir = tmp();
    let p = dir.path().join("starting.pid");
    std::fs::write(&p, "").unwrap();
    let holder = Owned::spawn(
        Command::new("flock")
            .arg("--no-fork")
            .arg(&p)
            .args(["sleep", "30"]),
    );
    wait_for("flock(1) to hold the file", || {
        matches!(pidguard::status(&p), pidguard::Status::Starting)
    });
    let ps = p.to_str().unwrap();
    for args in [
        vec!["stop", "--json", "-p", ps],
        vec!["signal", "--json", "-p", ps, "TERM"],
        vec!["signal", "--json", "-p", ps, "0"],
    ] {
        let Some((out, signals)) = under_strace(ALL_SIGNALS, &args) else {
            return;
        };
        assert!(signals.is_empty(), "{args:?} tried to signal: {signals:?}");
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", text(&out));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", text(&out)));
        assert_eq!(v["outcome"], "starting", "{args:?}: {v}");
        assert_eq!(v["pid"], serde_json::Value::Null, "{args:?}: {v}");
        assert_eq!(v["file_gone"], false, "{args:?}: {v}");
    }
    for args in [vec!["stop", "-p", ps], vec!["signal", "-p", ps, "HUP"]] {
        let out = pidguard().args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", text(&out));
        assert!(
            text(&out).contains("starting (locked, no PID yet): nothing to signal"),
            "{args:?}: {}",
            text(&out)
        );
    }
    assert_eq!(
        std::fs::read(&p).unwrap(),
        b"",
        "the file is kept as it was"
    );
    assert!(
        alive(holder.pid()) && !lock_free(&p),
        "flock(1) still holds it"
    );
}
