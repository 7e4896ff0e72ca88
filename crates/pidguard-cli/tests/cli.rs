//! The CLI contract, driving the real binary with real processes.
//!
//! Every process a test starts is killed by PID (never by name) and waited
//! for; files live in temporary directories.
#![cfg(unix)]

use testkit::*;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use assert_cmd::prelude::*;
use pidguard::{Pid, Pidfile, Status};

fn gone(pid: i32) -> bool {
    pidguard::liveness(Pid::new(pid).unwrap()) == pidguard::Liveness::Dead
}

fn code(child: &mut Child) -> Option<i32> {
    child.wait().unwrap().code()
}

#[test]
fn run_supervises_and_the_file_names_the_command_not_pidguard() {
    let dir = tmp();
    let p = dir.path().join("app.pid");
    let out = dir.path().join("out");
    // The command records what the file says and its own PID.
    pidguard()
        .arg("run")
        .arg("-p")
        .arg(&p)
        .args([
            "--",
            "sh",
            "-c",
            r#"echo "$(cat "$0")" > "$1"; echo $$ >> "$1""#,
        ])
        .arg(&p)
        .arg(&out)
        .assert()
        .success();
    let text = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text:?}");
    assert_eq!(lines[0], lines[1], "the file names the command itself");
    assert!(
        !p.exists(),
        "the supervisor removes the file when the command exits"
    );
}

#[test]
fn run_exits_with_the_commands_status() {
    let dir = tmp();
    let p = dir.path().join("app.pid");
    pidguard()
        .arg("run")
        .arg("-p")
        .arg(&p)
        .args(["--", "sh", "-c", "exit 7"])
        .assert()
        .code(7);
    assert!(!p.exists());
    pidguard()
        .arg("run")
        .arg("-p")
        .arg(&p)
        .args(["--", "sh", "-c", "kill -KILL $$"])
        .assert()
        .code(128 + 9);
}

#[test]
fn run_refuses_when_held_with_75_naming_the_holder() {
    let dir = tmp();
    let p = dir.path().join("app.pid");
    let _guard = Pidfile::new(&p).acquire().unwrap();
    let out = pidguard()
        .arg("run")
        .arg("-p")
        .arg(&p)
        .args(["--", "touch"])
        .arg(dir.path().join("ran"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(75));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&std::process::id().to_string()), "{err}");
    assert!(err.contains("app.pid"), "{err}");
    assert!(!dir.path().join("ran").exists(), "the command never ran");
    assert_eq!(
        std::fs::read_to_string(&p).unwrap(),
        format!("{}", std::process::id()),
        "the holder's file is untouched"
    );
}

#[test]
fn run_exec_writes_its_own_pid_and_becomes_the_command() {
    let dir = tmp();
    let p = dir.path().join("app.pid");
    let out = dir.path().join("out");
    pidguard()
        .args(["run", "--exec", "-p"])
        .arg(&p)
        .args([
            "--",
            "sh",
            "-c",
            r#"echo "$(cat "$0")" > "$1"; echo $$ >> "$1""#,
        ])
        .arg(&p)
        .arg(&out)
        .assert()
        .success();
    let text = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text:?}");
    assert_eq!(lines[0], lines[1]);
    // No cleanup with --exec: the file is left, stale but harmless.
    assert!(matches!(pidguard::status(&p), Status::Stale(_)));
    let _g = Pidfile::new(&p).acquire().unwrap();
}

#[test]
fn run_exec_hands_the_lock_to_the_command() {
    let dir = tmp();
    let p = dir.path().join("app.pid");
    let mut child = pidguard()
        .args(["run", "--exec", "-p"])
        .arg(&p)
        .args(["--", "sleep", "30"])
        .spawn()
        .unwrap();
    let pid = wait_running_locked(&p);
    assert_eq!(pid as u32, child.id());
    assert_eq!(
        Pidfile::new(&p).acquire().unwrap_err().kind(),
        pidguard::ErrorKind::AlreadyRunning
    );
    child.kill().unwrap();
    child.wait().unwrap();
    let _g = Pidfile::new(&p).acquire().unwrap();
}

#[test]
fn command_not_found_or_not_executable_leaves_no_file() {
    let dir = tmp();
    let p = dir.path().join("app.pid");
    for exec in [false, true] {
        let mut cmd = pidguard();
        cmd.arg("run");
        if exec {
            cmd.arg("--exec");
        }
        let out = cmd
            .arg("-p")
            .arg(&p)
            .args(["--", "/nonexistent/pidguard-no-such-command"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(127), "exec={exec}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("not found") && err.contains("no-such-command"),
            "{err}"
        );
        assert!(!p.exists(), "exec={exec}: no file left behind");
    }
    let script = dir.path().join("not-executable");
    std::fs::write(&script, "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = pidguard()
        .arg("run")
        .arg("-p")
        .arg(&p)
        .arg("--")
        .arg(&script)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(126),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!p.exists());
}

#[test]
fn sigterm_to_the_supervisor_reaches_the_command_and_exits_143() {
    let dir = tmp();
    let p = dir.path().join("app.pid");
    let mut sup = pidguard()
        .arg("run")
        .arg("-p")
        .arg(&p)
        .args(["--", "sleep", "30"])
        .spawn()
        .unwrap();
    let cmd_pid = wait_running_locked(&p);
    assert_ne!(
        cmd_pid as u32,
        sup.id(),
        "the file never names the supervisor"
    );
    signal(sup.id() as i32, "TERM");
    assert_eq!(code(&mut sup), Some(143));
    assert!(!p.exists());
    assert!(gone(cmd_pid));
}

#[test]
fn the_lock_outlives_a_killed_supervisor() {
    let dir = tmp();
    let p = dir.path().join("app.pid");
    let mut sup = pidguard()
        .arg("run")
        .arg("-p")
        .arg(&p)
        .args(["--", "sleep", "30"])
        .spawn()
        .unwrap();
    // The command holds the lock itself once the supervisor handed it over
    // (killing the supervisor before that would take the lock with it).
    let cmd_pid = wait_verified(&p);
    sup.kill().unwrap();
    sup.wait().unwrap();
    // The command still runs and still holds the lock.
    assert_eq!(wait_running_locked(&p), cmd_pid);
    pidguard()
        .arg("run")
        .arg("-p")
        .arg(&p)
        .args(["--", "true"])
        .assert()
        .code(75);
    signal(cmd_pid, "KILL");
    wait_for("the orphaned command to exit", || gone(cmd_pid));
    pidguard()
        .arg("run")
        .arg("-p")
        .arg(&p)
        .args(["--", "true"])
        .assert()
        .success();
}

#[test]
fn run_wait_waits_for_the_lock() {
    let dir = tmp();
    let p = dir.path().join("app.pid");
    let guard = Pidfile::new(&p).acquire().unwrap();
    let mut waiting = pidguard()
        .args(["run", "--wait", "10s", "-p"])
        .arg(&p)
        .args(["--", "true"])
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(waiting.try_wait().unwrap().is_none(), "still waiting");
    drop(guard);
    assert_eq!(code(&mut waiting), Some(0));
    let guard = Pidfile::new(&p).acquire().unwrap();
    pidguard()
        .args(["run", "--wait", "200ms", "-p"])
        .arg(&p)
        .args(["--", "true"])
        .assert()
        .code(75);
    drop(guard);
}

#[test]
fn status_exit_codes_and_json() {
    let dir = tmp();
    let p = dir.path().join("s.pid");
    let status = |p: &Path| pidguard().arg("status").arg("-p").arg(p).output().unwrap();

    assert_eq!(status(&p).status.code(), Some(3));

    let guard = Pidfile::new(&p).acquire().unwrap();
    let out = status(&p);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("running"));
    let out = pidguard()
        .args(["status", "--json", "-p"])
        .arg(&p)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["state"], "running");
    assert_eq!(v["pid"], std::process::id());
    assert_eq!(v["locked"], true);
    drop(guard);

    let mut dead = Command::new("true").spawn().unwrap();
    let dead_pid = dead.id();
    dead.wait().unwrap();
    std::fs::write(&p, format!("{dead_pid}\n")).unwrap();
    assert_eq!(status(&p).status.code(), Some(1));

    for bad in ["", "0\n", "-1\n", "0x10\n", "99999999999\n", "5x\n"] {
        std::fs::write(&p, bad).unwrap();
        let out = status(&p);
        assert_eq!(out.status.code(), Some(4), "{bad:?}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("s.pid"));
    }

    let link = dir.path().join("link.pid");
    std::os::unix::fs::symlink(&p, &link).unwrap();
    let out = status(&link);
    assert_eq!(out.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&out.stdout).contains("symbolic link"));
}

#[test]
fn pid_prints_the_holder_and_exit_codes() {
    let dir = tmp();
    let p = dir.path().join("p.pid");
    pidguard().arg("pid").arg("-p").arg(&p).assert().code(3);
    let guard = Pidfile::new(&p).acquire().unwrap();
    pidguard()
        .arg("pid")
        .arg("-p")
        .arg(&p)
        .assert()
        .success()
        .stdout(format!("{}\n", std::process::id()));
    drop(guard);
    let mut dead = Command::new("true").spawn().unwrap();
    let dead_pid = dead.id();
    dead.wait().unwrap();
    std::fs::write(&p, format!("{dead_pid}")).unwrap();
    pidguard().arg("pid").arg("-p").arg(&p).assert().code(1);
    std::fs::write(&p, "banana\n").unwrap();
    let out = pidguard().arg("pid").arg("-p").arg(&p).output().unwrap();
    assert_eq!(out.status.code(), Some(65));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("p.pid") && err.contains("lenient"), "{err}");
}

#[test]
fn path_resolves_names_and_instances() {
    let out = pidguard()
        .args(["path", "--name", "pidguard-cli-test"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let path = String::from_utf8(out.stdout).unwrap();
    assert!(path.trim().ends_with("pidguard-cli-test.pid"), "{path}");
    if rustix::process::geteuid().is_root() {
        assert_eq!(path, "/run/pidguard-cli-test.pid\n");
    }
    let out = pidguard()
        .args([
            "path",
            "--name",
            "pidguard-cli-test",
            "--instance",
            "/srv/a",
        ])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("/instance-"));
    pidguard().args(["path", "--name", "../x"]).assert().code(2);
}

#[test]
fn usage_errors_exit_2() {
    pidguard().args(["run", "--", "true"]).assert().code(2);
    pidguard()
        .args(["run", "-p", "a.pid", "--name", "a", "--", "true"])
        .assert()
        .code(2);
    pidguard().args(["run", "-p", "a.pid"]).assert().code(2);
    pidguard()
        .args(["run", "--wait", "soon", "-p", "a.pid", "--", "true"])
        .assert()
        .code(2);
    pidguard().args(["status"]).assert().code(2);
}

#[test]
fn unusable_paths_exit_73() {
    let dir = tmp();
    let victim = dir.path().join("victim");
    std::fs::write(&victim, "keep\n").unwrap();
    let link = dir.path().join("link.pid");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    let out = pidguard()
        .arg("run")
        .arg("-p")
        .arg(&link)
        .args(["--", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(73));
    assert!(String::from_utf8_lossy(&out.stderr).contains("symbolic link"));
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep\n");
    // A parent "directory" that is a file cannot be created.
    let p = victim.join("x.pid");
    let out = pidguard()
        .arg("run")
        .arg("-p")
        .arg(&p)
        .args(["--", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(73));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot create"));
}

/// Runs pidguard as user nobody, when the tests run as root.
fn as_nobody() -> Option<Command> {
    if !rustix::process::geteuid().is_root() {
        skipped("needs root to switch to another user");
        return None;
    }
    if !have_tool("setpriv", "--version") {
        return None;
    }
    let mut c = Command::new("setpriv");
    c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(bin());
    Some(c)
}

#[test]
fn permission_denied_exits_77_and_read_only_dirs_73() {
    let Some(mut cmd) = as_nobody() else { return };
    let dir = tmp();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let p = dir.path().join("root.pid");
    std::fs::write(&p, "1\n").unwrap();
    let out = cmd
        .arg("run")
        .arg("-p")
        .arg(&p)
        .args(["--", "true"])
        .output()
        .unwrap();
    if !bin().starts_with("/") || out.status.code() == Some(126) {
        skipped("the binary is not reachable by user nobody");
        return;
    }
    assert_eq!(
        out.status.code(),
        Some(77),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("permission denied"));
    std::fs::remove_file(&p).unwrap();
    let out = as_nobody()
        .unwrap()
        .arg("run")
        .arg("-p")
        .arg(&p)
        .args(["--", "true"])
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(73),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!p.exists());
}

#[test]
fn a_user_gets_a_private_directory_under_xdg_runtime_dir() {
    let Some(mut cmd) = as_nobody() else { return };
    let dir = tmp();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let runtime = dir.path().join("runtime");
    std::fs::create_dir(&runtime).unwrap();
    std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o700)).unwrap();
    let chown = Command::new("chown")
        .arg("65534:65534")
        .arg(&runtime)
        .status()
        .unwrap();
    assert!(chown.success());
    let out = cmd
        .env("XDG_RUNTIME_DIR", &runtime)
        .args([
            "run",
            "--name",
            "userapp",
            "--",
            "sh",
            "-c",
            "cat \"$XDG_RUNTIME_DIR/userapp/userapp.pid\"",
        ])
        .output()
        .unwrap();
    if out.status.code() == Some(126) {
        skipped("the binary is not reachable by user nobody");
        return;
    }
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let app_dir = runtime.join("userapp");
    let md = std::fs::metadata(&app_dir).unwrap();
    assert_eq!(
        md.permissions().mode() & 0o777,
        0o700,
        "private per-user directory"
    );
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&md), 65534);
    let pid: i32 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    assert!(pid > 1);
    assert!(
        !app_dir.join("userapp.pid").exists(),
        "removed when the command exited"
    );
    // A runtime directory others can write is not used.
    std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = as_nobody()
        .unwrap()
        .env("XDG_RUNTIME_DIR", &runtime)
        .env("HOME", dir.path())
        .args(["path", "--name", "userapp"])
        .output()
        .unwrap();
    let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(!path.starts_with(runtime.to_str().unwrap()), "{path}");
}

/// Ctrl-C at a terminal signals the whole foreground process group, which
/// the supervised command shares with pidguard: the command gets its own
/// SIGINT, and pidguard must not send it a second one. A SIGINT sent to
/// pidguard alone is still passed on. Runs pidguard (under strace, to see
/// every signal it sends) on a pseudo-terminal made by Python's `pty`.
#[test]
fn ctrl_c_at_a_terminal_reaches_the_command_once() {
    if !have_tool("strace", "-V") || !have_tool("python3", "-V") {
        return;
    }
    let dir = tmp();
    let p = dir.path().join("app.pid");
    let log = dir.path().join("ints");
    let trace = dir.path().join("trace");
    // The command counts the SIGINTs it gets and exits on SIGTERM.
    let script = format!(
        "trap 'echo int >> {log}' INT; trap 'exit 0' TERM; echo > {log}.ready; \
         while :; do sleep 0.02; done",
        log = log.display()
    );
    let driver = r#"
import os, pty, signal, sys, time
pg, pidfile, trace, ready, script = sys.argv[1:6]
pid, fd = pty.fork()
if pid == 0:
    os.execvp("strace", ["strace", "-f", "-qq", "-o", trace,
        "-e", "trace=kill,tgkill,tkill,pidfd_send_signal",
        pg, "run", "-p", pidfile, "--", "sh", "-c", script])
def drain():
    try:
        os.read(fd, 4096)
    except OSError:
        pass
deadline = time.time() + 20
while not os.path.exists(ready):
    if time.time() > deadline:
        sys.exit("the command never started")
    time.sleep(0.01)
time.sleep(0.2)
os.write(fd, b"\x03")          # Ctrl-C: SIGINT to the foreground group
time.sleep(0.5)
drain()
holder = int(open(pidfile).read())
os.kill(holder, signal.SIGTERM)  # end the command; pidguard follows
deadline = time.time() + 20
while True:
    done, status = os.waitpid(pid, os.WNOHANG)
    if done:
        break
    if time.time() > deadline:
        os.kill(pid, signal.SIGKILL)
        os.kill(holder, signal.SIGKILL)
        os.waitpid(pid, 0)
        sys.exit("pidguard did not exit")
    drain()
    time.sleep(0.02)
print(os.waitstatus_to_exitcode(status))
"#;
    let ready = format!("{}.ready", log.display());
    let out = Command::new("python3")
        .args(["-c", driver])
        .arg(bin())
        .arg(&p)
        .arg(&trace)
        .arg(&ready)
        .arg(&script)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "driver failed: {}", text(&out));
    let ints = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        ints.lines().filter(|l| *l == "int").count() >= 1,
        "the command never saw the terminal's SIGINT"
    );
    let trace = std::fs::read_to_string(&trace).unwrap();
    let sent_int: Vec<&str> = trace
        .lines()
        .filter(|l| {
            (l.contains("pidfd_send_signal(") || l.contains("kill(")) && l.contains("SIGINT")
        })
        .collect();
    assert!(
        sent_int.is_empty(),
        "pidguard forwarded the terminal's SIGINT a second time: {sent_int:?}"
    );
    assert!(!p.exists(), "the file is removed when the command exits");
}

#[test]
fn closed_standard_descriptors_never_become_the_pid_file() {
    // pidguard started with 0, 1 and 2 closed: were they left closed, the
    // PID file (or its lock) would get descriptor 0 and the command would
    // read its stdin from the PID file. They are opened on /dev/null, as
    // Rust's own start-up does (pidguard has its own C main on glibc).
    let dir = tmp();
    for exec in [false, true] {
        let p = dir.path().join(format!("app-{exec}.pid"));
        let out = dir.path().join(format!("fds-{exec}"));
        let mode = if exec { "--exec" } else { "--fsync" };
        let status = Command::new("sh")
            .arg("-c")
            .arg(r#"exec "$0" run "$1" -p "$2" -- sh -c 'for f in 0 1 2; do [ "$(readlink /proc/$$/fd/$f)" = /dev/null ] || exit 9; done; touch "$0"' "$3" <&- >&- 2>&-"#)
            .arg(bin())
            .arg(mode)
            .arg(&p)
            .arg(&out)
            .status()
            .unwrap();
        // 9: one of the command's descriptors 0-2 was not /dev/null.
        assert_eq!(status.code(), Some(0), "{mode}: the command's exit");
        assert!(
            out.exists(),
            "{mode}: the command saw /dev/null on 0, 1 and 2"
        );
    }
}

#[test]
fn a_path_too_long_to_look_at_is_reported_as_the_create_that_failed() {
    // `run` tries step 2 (take over) before step 1 (create) on its first
    // attempt; a path whose lstat fails for another reason than "missing"
    // must still be reported as the failed create (73), not as an I/O error.
    let dir = tmp();
    let p = dir.path().join("x".repeat(300));
    let out = pidguard()
        .arg("run")
        .arg("-p")
        .arg(&p)
        .args(["--", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(73), "{}", text(&out));
    assert!(
        text(&out).contains("cannot create PID file"),
        "{}",
        text(&out)
    );
    assert!(text(&out).contains("File name too long"), "{}", text(&out));
}

#[test]
fn a_restart_over_a_left_file_takes_it_over_without_a_temporary_inode() {
    // `run --exec` leaves its file behind (the kernel drops the lock when
    // the command exits); the next start takes it over in place (step 2
    // first): no unnamed inode is made only to fail its link.
    if !have_tool("strace", "-V") {
        return;
    }
    let dir = tmp();
    let p = dir.path().join("app.pid");
    let first = pidguard()
        .arg("run")
        .arg("--exec")
        .arg("-p")
        .arg(&p)
        .args(["--", "true"])
        .output()
        .unwrap();
    assert!(first.status.success(), "{}", text(&first));
    assert!(p.exists(), "run --exec leaves its file");
    let log = dir.path().join("strace.log");
    let out = Command::new("strace")
        .arg("-o")
        .arg(&log)
        .args(["-e", "trace=open,openat,linkat"])
        .arg(bin())
        .args(["run", "--exec", "-p"])
        .arg(&p)
        .args(["--", "true"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let calls = std::fs::read_to_string(&log).unwrap();
    assert!(!calls.contains("O_TMPFILE"), "{calls}");
    assert!(!calls.contains("linkat("), "{calls}");
    assert!(
        calls.contains("app.pid"),
        "the file was opened in place: {calls}"
    );
}
