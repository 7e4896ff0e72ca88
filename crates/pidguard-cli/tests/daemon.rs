//! `run --daemon`, `--notify` and `ensure`, with real daemons.
//!
//! Every daemon a test starts is stopped by the PID pidguard reports (never
//! by name) and waited for; files live in temporary directories.

mod common;

use common::*;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use pidguard::Status;

/// Kills a daemon a test started (by the PID pidguard reported) when dropped.
struct Daemon(i32);

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.0 > 1 && alive(self.0) {
            let _ = Command::new("kill")
                .args(["-KILL", &self.0.to_string()])
                .status();
            wait_for("the daemon to exit", || !alive(self.0));
        }
    }
}

/// Fields of /proc/PID/stat after the command name.
fn stat_fields(pid: i32) -> Vec<String> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let close = s.rfind(')').unwrap();
    s[close + 2..]
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

fn running_locked(path: &Path) -> i32 {
    match pidguard::inspect(path, &Default::default()) {
        pidguard::Inspection {
            status: Status::Running { pid, locked: true },
            identity: Some(pidguard::Identity::Verified),
            ..
        } => pid.get(),
        other => panic!("expected a verified, locked holder: {other:?}"),
    }
}

#[test]
fn run_daemon_returns_with_a_detached_locked_daemon() {
    let dir = tmp();
    let p = dir.path().join("d.pid");
    let log = dir.path().join("out.log");
    let started = Instant::now();
    let child = pidguard()
        .args(["run", "--daemon", "--umask", "027", "--stdout"])
        .arg(&log)
        .arg("-p")
        .arg(&p)
        .args(["--", "sh", "-c", "pwd; umask; exec sleep 30"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let runner = child.id().to_string();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(started.elapsed() < Duration::from_secs(5));
    // Already in place when run returned: no polling needed.
    let pid = running_locked(&p);
    let daemon = Daemon(pid);
    let f = stat_fields(pid);
    assert_eq!(
        f[3],
        pid.to_string(),
        "session leader: its session id is its PID"
    );
    assert_ne!(f[1], runner, "its parent is not pidguard");
    assert_eq!(f[4], "0", "no controlling terminal");
    wait_for("the daemon's output", || {
        std::fs::read_to_string(&log)
            .map(|s| s.lines().count() >= 2)
            .unwrap_or(false)
    });
    let logged = std::fs::read_to_string(&log).unwrap();
    assert_eq!(logged, "/\n0027\n", "chdir / and the umask");
    let stop = pidguard().arg("stop").arg("-p").arg(&p).output().unwrap();
    assert_eq!(stop.status.code(), Some(0), "{}", text(&stop));
    assert!(!p.exists());
    drop(daemon);
}

#[test]
fn run_daemon_with_a_missing_command_fails_and_leaves_no_file() {
    let dir = tmp();
    let p = dir.path().join("d.pid");
    let out = pidguard()
        .args(["run", "--daemon", "-p"])
        .arg(&p)
        .args(["--", "/nonexistent/pidguard-no-such-daemon"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(127), "{}", text(&out));
    assert!(text(&out).contains("not found"), "{}", text(&out));
    assert!(!p.exists());
}

#[test]
fn run_daemon_when_held_exits_75() {
    let dir = tmp();
    let p = dir.path().join("d.pid");
    let guard = pidguard::Pidfile::new(&p).acquire().unwrap();
    let out = pidguard()
        .args(["run", "--daemon", "-p"])
        .arg(&p)
        .args(["--", "sleep", "30"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(75), "{}", text(&out));
    assert_eq!(
        std::fs::read_to_string(&p).unwrap(),
        format!("{}\n", std::process::id())
    );
    drop(guard);
}

const NOTIFY: &str = "import os,socket,sys; s=socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.sendto(sys.argv[1].encode().replace(b'|', b'\\n'), os.environ['NOTIFY_SOCKET'])";

fn has_python() -> bool {
    have_tool("python3", "-V")
}

#[test]
fn notify_waits_for_readiness() {
    if !has_python() {
        return;
    }
    let dir = tmp();
    let p = dir.path().join("n.pid");
    let script = format!("sleep 1; python3 -c \"{NOTIFY}\" READY=1; exec sleep 30");
    let started = Instant::now();
    let out = pidguard()
        .args([
            "run",
            "--daemon",
            "--notify",
            "--ready-timeout",
            "10s",
            "-p",
        ])
        .arg(&p)
        .args(["--", "sh", "-c", &script])
        .output()
        .unwrap();
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let _daemon = Daemon(running_locked(&p));
    assert!(
        took >= Duration::from_millis(950) && took < Duration::from_secs(4),
        "took {took:?}"
    );
}

#[test]
fn notify_honours_mainpid() {
    if !has_python() {
        return;
    }
    let dir = tmp();
    let p = dir.path().join("m.pid");
    let script = format!("sleep 30 & python3 -c \"{NOTIFY}\" \"MAINPID=$!|READY=1\"; exit 0");
    let out = pidguard()
        .args(["run", "--daemon", "--notify", "--json", "-p"])
        .arg(&p)
        .args(["--", "sh", "-c", &script])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let main = v["pid"].as_i64().unwrap() as i32;
    let daemon = Daemon(main);
    assert_eq!(std::fs::read_to_string(&p).unwrap(), format!("{main}\n"));
    // The shell has exited; the daemon it forked holds the lock.
    assert_eq!(running_locked(&p), main);
    drop(daemon);
}

#[test]
fn notify_reports_a_daemon_that_exits_first_and_leaves_no_file() {
    let dir = tmp();
    let p = dir.path().join("x.pid");
    let out = pidguard()
        .args(["run", "--daemon", "--notify", "-p"])
        .arg(&p)
        .args(["--", "sh", "-c", "exit 3"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        text(&out).contains("before it reported READY=1"),
        "{}",
        text(&out)
    );
    assert!(!p.exists());
    let out = pidguard()
        .args([
            "run",
            "--daemon",
            "--notify",
            "--ready-timeout",
            "300ms",
            "-p",
        ])
        .arg(&p)
        .args(["--", "sleep", "30"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("did not report READY=1"),
        "{}",
        text(&out)
    );
    assert!(!p.exists());
}

/// Processes whose environment contains `marker`.
fn processes_with(marker: &str) -> Vec<i32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if let Ok(env) = std::fs::read(entry.path().join("environ")) {
            if String::from_utf8_lossy(&env).contains(marker) {
                found.push(pid);
            }
        }
    }
    found
}

#[test]
fn sixteen_concurrent_ensures_start_one_daemon_ten_rounds() {
    let dir = tmp();
    for round in 0..10 {
        let p = dir.path().join(format!("e{round}.pid"));
        let marker = format!("pidguard-ensure-test-{}-{round}", std::process::id());
        let children: Vec<_> = (0..16)
            .map(|_| {
                pidguard()
                    .arg("ensure")
                    .arg("-p")
                    .arg(&p)
                    .env("PIDGUARD_TEST_MARKER", &marker)
                    .args(["--", "sleep", "30"])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let outs: Vec<Output> = children
            .into_iter()
            .map(|c| c.wait_with_output().unwrap())
            .collect();
        let pids: Vec<String> = outs
            .iter()
            .map(|o| {
                assert_eq!(o.status.code(), Some(0), "round {round}: {}", text(o));
                String::from_utf8_lossy(&o.stdout).trim().to_string()
            })
            .collect();
        let pid: i32 = pids[0].parse().unwrap();
        let _daemon = Daemon(pid);
        assert!(
            pids.iter().all(|p| *p == pids[0]),
            "round {round}: {pids:?}"
        );
        assert_eq!(
            processes_with(&marker),
            vec![pid],
            "round {round}: exactly one daemon"
        );
        assert_eq!(running_locked(&p), pid);
        let spawn_lock = pidguard::ensure::spawn_lock_path(&p);
        assert!(!spawn_lock.exists(), "the spawn lock is released");
    }
}

#[test]
fn ensure_with_a_socket_waits_until_it_accepts() {
    if !has_python() {
        return;
    }
    let dir = tmp();
    let p = dir.path().join("s.pid");
    let sock = dir.path().join("s.sock");
    let server = format!(
        "import socket,time; time.sleep(0.5); s=socket.socket(socket.AF_UNIX); s.bind('{}'); s.listen(); time.sleep(30)",
        sock.display()
    );
    let out = pidguard()
        .args(["ensure", "--json", "--socket"])
        .arg(&sock)
        .arg("-p")
        .arg(&p)
        .args(["--", "python3", "-c", &server])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let pid = v["pid"].as_i64().unwrap() as i32;
    let _daemon = Daemon(pid);
    assert_eq!(v["started"], true);
    assert!(std::os::unix::net::UnixStream::connect(&sock).is_ok());
    // A second call finds it.
    let out = pidguard()
        .args(["ensure", "--json", "--socket"])
        .arg(&sock)
        .arg("-p")
        .arg(&p)
        .args(["--", "false"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["pid"].as_i64().unwrap() as i32, pid);
    assert_eq!(v["started"], false);
}
