//! Arguments people already type: every signal number up to the real-time
//! maximum, RTMIN+n, 0 as a probe; start-stop-daemon's schedule shorthand;
//! one duration grammar for every option.
#![cfg(unix)]

use testkit::*;

use std::process::Command;

/// A Python process that records each real-time signal it gets (by
/// number) in `log` and writes its PID file once its handlers are set.
fn rt_recorder(dir: &std::path::Path) -> (Owned, std::path::PathBuf, std::path::PathBuf) {
    let p = dir.join("rt.pid");
    let log = dir.join("got");
    let script = format!(
        "import os, signal, time\n\
         def got(n, f):\n    open({log:?}, 'a').write(str(n) + '\\n')\n\
         for n in range(signal.SIGRTMIN, signal.SIGRTMAX + 1):\n    signal.signal(n, got)\n\
         open({tmp:?}, 'w').write(str(os.getpid()) + '\\n')\n\
         os.rename({tmp:?}, {p:?})\n\
         while True: time.sleep(0.05)\n",
        log = log.to_str().unwrap(),
        tmp = format!("{}.tmp", p.display()),
        p = p.to_str().unwrap(),
    );
    let owned = Owned::spawn(Command::new("python3").args(["-c", &script]));
    wait_for("the recorder's PID file", || p.exists());
    (owned, p, log)
}

fn received(log: &std::path::Path) -> Vec<i32> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect()
}

#[test]
fn realtime_signals_by_number_and_name_reach_the_process() {
    if !testkit::have_tool("python3", "-V") {
        return;
    }
    let dir = tmp();
    let (target, p, log) = rt_recorder(dir.path());
    let mut want = Vec::new();
    for (arg, n) in [
        ("34", 34),
        ("RTMIN+1", 35),
        ("SIGRTMIN+2", 36),
        ("rtmax-1", 63),
        ("SIGRTMAX", 64),
    ] {
        let out = pidguard()
            .args(["signal", "-p"])
            .arg(&p)
            .arg(arg)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{arg}: {}", text(&out));
        want.push(n);
        wait_for(&format!("signal {n}"), || received(&log) == want);
    }
    assert!(alive(target.pid()));
    // Past the maximum: a usage error naming the range.
    let out = pidguard()
        .args(["signal", "-p"])
        .arg(&p)
        .arg("65")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("1 to 64"), "{}", text(&out));
}

#[test]
fn signal_zero_probes_and_sends_nothing() {
    let dir = tmp();
    let p = dir.path().join("probe.pid");
    let target = sleeper();
    write_pidfile(&p, &format!("{}\n", target.pid()));
    // Under the seam, which makes every signalling call fail with EPERM:
    // nothing is sent, and the probe (kill(pid, 0)) reports that the
    // process could not be signalled (77).
    let Some((out, signals)) = under_strace(
        ALL_SIGNALS,
        &["signal", "--json", "-p", p.to_str().unwrap(), "0"],
    ) else {
        return;
    };
    assert_eq!(out.status.code(), Some(77), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["exit"], 77, "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("not permitted"),
        "{v}"
    );
    // (The seam lists real signals only, not kill(pid, 0).)
    assert!(signals.is_empty(), "a real signal was sent: {signals:?}");
    assert!(alive(target.pid()));
    // Without the seam: it could be signalled.
    let out = pidguard()
        .args(["signal", "--json", "-p"])
        .arg(&p)
        .arg("0")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["probe"], true, "{v}");
    assert_eq!(v["outcome"], "signalled", "{v}");
    assert_eq!(v["pid"], target.pid(), "{v}");
    let out = pidguard()
        .args(["signal", "-p"])
        .arg(&p)
        .arg("0")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("nothing was sent"), "{}", text(&out));
    // No file: 3, as for any signal.
    let out = pidguard()
        .args(["signal", "-p"])
        .arg(dir.path().join("none.pid"))
        .arg("0")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
}

#[test]
fn schedule_shorthand_is_sig_n_kill_n() {
    let dir = tmp();
    // Ignores TERM: only the KILL after N stops it.
    let p = dir.path().join("stubborn.pid");
    let script = format!(
        "trap '' TERM; echo $$ > {0}.tmp; mv {0}.tmp {0}; while :; do sleep 0.05; done",
        p.display()
    );
    let mut target = Owned::spawn(Command::new("sh").args(["-c", &script]));
    wait_for("the PID file", || p.exists());
    let out = pidguard()
        .args(["stop", "--json", "--schedule", "1", "-p"])
        .arg(&p)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let status = target.0.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9)
    );

    // With --signal: HUP/N/KILL/N; the process exits on the HUP.
    let p = dir.path().join("hup.pid");
    let script = format!(
        "trap 'exit 7' HUP; echo $$ > {0}.tmp; mv {0}.tmp {0}; while :; do sleep 0.05; done",
        p.display()
    );
    let mut target = Owned::spawn(Command::new("sh").args(["-c", &script]));
    wait_for("the PID file", || p.exists());
    let out = pidguard()
        .args(["stop", "--signal", "HUP", "--schedule", "30", "-p"])
        .arg(&p)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(target.0.wait().unwrap().code(), Some(7));

    // --signal beside a full schedule is refused (the schedule names its
    // signals).
    let out = pidguard()
        .args(["stop", "--signal", "HUP", "--schedule", "TERM/5", "-p"])
        .arg(&p)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

#[test]
fn every_duration_option_takes_the_same_grammar() {
    let dir = tmp();
    let none = dir.path().join("none.pid");
    let none = none.to_str().unwrap();
    for d in ["2m", "1.5s", "250ms", "10", "1h", "0.5"] {
        let schedule = format!("TERM/{d}/KILL/{d}");
        for args in [
            vec!["stop", "-p", none, "--timeout", d],
            vec!["stop", "-p", none, "--schedule", &schedule],
            vec!["stop", "-p", none, "--schedule", d],
            vec!["wait", "-p", none, "--timeout", d],
            vec![
                "sweep",
                "--schedule",
                &schedule,
                dir.path().to_str().unwrap(),
            ],
        ] {
            let out = pidguard().args(&args).output().unwrap();
            assert_eq!(out.status.code(), Some(0), "{args:?}: {}", text(&out));
        }
        // Options that need a running command: the argument is accepted
        // (the command's own status comes back).
        let out = pidguard()
            .args([
                "run",
                "-p",
                &format!("{none}.run"),
                "--wait",
                d,
                "--",
                "true",
            ])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "--wait {d}: {}", text(&out));
    }
    for bad in ["2x", "-1", "TERM/2x"] {
        let out = pidguard()
            .args(["stop", "-p", none, "--schedule", bad])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad}: {}", text(&out));
        assert!(
            text(&out).contains("2x") || text(&out).contains("-1"),
            "{}",
            text(&out)
        );
    }
}

#[test]
fn run_gives_the_file_an_owner_group_and_mode() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    if !rustix::process::geteuid().is_root() {
        skipped("giving a file to another user needs root");
        return;
    }
    let dir = tmp();
    let p = dir.path().join("app.pid");
    // The command sees its file already with its owner, group and mode.
    let out = pidguard()
        .args([
            "run", "--owner", "65534", "--group", "65534", "--mode", "640", "-p",
        ])
        .arg(&p)
        .args(["--", "sh", "-c", r#"stat -c '%u %g %a' "$0""#])
        .arg(&p)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "65534 65534 640"
    );

    // A stale file taken over gets them too; root's stop accepts the file
    // while its holder runs (verified: locked and held).
    write_pidfile(&p, "999999\n");
    let mut holder = Owned::spawn(
        pidguard()
            .args(["run", "--group", "65534", "--mode", "0640", "-p"])
            .arg(&p)
            .args(["--", "sleep", "30"]),
    );
    wait_running_locked(&p);
    let md = std::fs::metadata(&p).unwrap();
    assert_eq!(
        (md.uid(), md.gid(), md.permissions().mode() & 0o777),
        (0, 65534, 0o640)
    );
    let out = pidguard().args(["stop", "-p"]).arg(&p).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(holder.0.wait().unwrap().code(), Some(143));
    assert!(!p.exists());

    // Not root: giving the file away fails, saying why; no file is left.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(bin())
        .args(["run", "--owner", "0", "-p"])
        .arg(&p)
        .args(["--", "true"])
        .output();
    let Ok(out) = out else {
        testkit::missing("setpriv");
        skipped("the non-root part: setpriv(1) is not installed");
        return;
    };
    assert_eq!(out.status.code(), Some(73), "{}", text(&out));
    assert!(text(&out).contains("needs root"), "{}", text(&out));
    assert!(!p.exists());
}

/// `--mode` is exact: under `umask 077` a file made with `--mode 666` is
/// 666, while the default (644 less the umask) is 600 there.
#[test]
fn mode_is_exact_whatever_the_umask() {
    let dir = tmp();
    let mode_under_umask_077 = |name: &str, extra: &[&str]| -> String {
        let p = dir.path().join(name);
        let out = Command::new("sh")
            .args([
                "-c",
                r#"umask 077; bin=$1; p=$2; shift 2; exec "$bin" run "$@" -p "$p" -- stat -c %a "$p""#,
                "sh",
            ])
            .arg(bin())
            .arg(&p)
            .args(extra)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{extra:?}: {}", text(&out));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    assert_eq!(mode_under_umask_077("exact.pid", &["--mode", "666"]), "666");
    assert_eq!(mode_under_umask_077("default.pid", &[]), "600");
    assert_eq!(
        mode_under_umask_077("octal.pid", &["--mode", "0604"]),
        "604"
    );
}

/// `ensure --owner/--group/--mode` and `run --daemon --owner`: the daemon's
/// file gets them (as root); root's `stop` still stops the daemon, whose
/// own lock keeps it verified.
#[test]
fn ensure_and_run_daemon_give_the_file_an_owner() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    if !rustix::process::geteuid().is_root() {
        skipped("giving a file to another user needs root");
        return;
    }
    let dir = tmp();
    let owned = |p: &std::path::Path| {
        let md = std::fs::metadata(p).unwrap();
        (md.uid(), md.gid(), md.permissions().mode() & 0o777)
    };
    let stop = |p: &std::path::Path, pid: i32| {
        let out = pidguard().args(["stop", "-p"]).arg(p).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        assert!(text(&out).contains("verified"), "{}", text(&out));
        assert!(!alive(pid) && !p.exists(), "{}", text(&out));
    };

    let p = dir.path().join("ensured.pid");
    let out = pidguard()
        .args([
            "ensure", "--owner", "65534", "--group", "65534", "--mode", "640", "-p",
        ])
        .arg(&p)
        .args(["--", "sleep", "30"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let pid: i32 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    let _daemon = Pinned::new([pid]);
    assert_eq!(owned(&p), (65534, 65534, 0o640));
    // Ensured again: the same daemon, the file unchanged.
    let out = pidguard()
        .args(["ensure", "--owner", "65534", "-p"])
        .arg(&p)
        .args(["--", "sleep", "30"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), pid.to_string());
    stop(&p, pid);

    let p = dir.path().join("daemon.pid");
    let out = pidguard()
        .args(["run", "--daemon", "--json", "--owner", "65534", "-p"])
        .arg(&p)
        .args(["--", "sleep", "30"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let pid = v["pid"].as_i64().unwrap() as i32;
    let _daemon = Pinned::new([pid]);
    // The owner given; the group left as the process's.
    let (uid, gid, _) = owned(&p);
    assert_eq!((uid, gid), (65534, rustix::process::getegid().as_raw()));
    stop(&p, pid);
}
