//! Commands that daemonize themselves, and process trees under the
//! supervisor (issue 14), with real processes: shell commands that fork
//! once and twice (keeping the inherited lock), and real nginx with its
//! default `daemon on`.
//!
//! Every process a test starts is pinned by pidfd once the PID it recorded
//! is read, and killed through that pidfd (never by name, never by a PID
//! that may have been reused) and waited for; files live in temporary
//! directories.
#![cfg(unix)]

use testkit::*;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Whether python3 is missing; if so the test is recorded as skipped,
/// saying what it needs python3 for (`why`).
fn no_python3(why: &str) -> bool {
    let missing = !testkit::have_tool("python3", "-V");
    if missing {
        skipped(why);
    }
    missing
}

fn file_pid(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The parent PID of `pid`.
fn ppid(pid: i32) -> i32 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &s[s.rfind(')').unwrap() + 2..];
    after.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

fn supervise(p: &Path, script: &str) -> Owned {
    Owned::spawn(
        pidguard()
            .arg("run")
            .arg("-p")
            .arg(p)
            .args(["--", "sh", "-c", script])
            .stderr(Stdio::piped()),
    )
}

/// The supervisor follows the forked process: the file names it, it holds
/// the lock, a second instance is refused, TERM to pidguard reaches it,
/// and the file goes only when it is gone.
fn assert_followed(p: &Path, sup: Owned, daemon: i32) {
    let reap = Pinned::new([daemon]);
    pid_in_where(p, |pid| pid == daemon);
    assert_eq!(wait_verified(p), daemon, "the daemon holds the lock itself");
    assert_eq!(ppid(daemon), sup.pid(), "reparented to the supervisor");
    // The file's kernel identity record moved with it: the daemon's.
    assert_records_owner(p, daemon);
    let again = pidguard()
        .args(["run", "-p"])
        .arg(p)
        .args(["--", "true"])
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(75), "{}", text(&again));
    signal(sup.pid(), "TERM");
    let mut sup = sup;
    let out = wait_output(&mut sup.0);
    assert_eq!(out.status.code(), Some(143), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("left PID {daemon} holding the lock")),
        "{}",
        text(&out)
    );
    assert!(!alive(daemon));
    assert!(!p.exists(), "removed once the daemon is gone");
    drop(reap);
}

fn wait_output(child: &mut std::process::Child) -> Output {
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the supervisor did not exit");
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut stderr = String::new();
    use std::io::Read;
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut stderr);
    }
    Output {
        status: child.wait().unwrap(),
        stdout: Vec::new(),
        stderr: stderr.into_bytes(),
    }
}

#[test]
fn a_command_that_forks_once_is_followed() {
    let dir = tmp();
    let p = dir.path().join("f.pid");
    let bg = dir.path().join("bg");
    // The shell's background child inherits the lock and outlives it.
    let script = format!("sleep 30 & echo $! > {}; exit 0", bg.display());
    let sup = supervise(&p, &script);
    let daemon = pid_in(&bg);
    assert_followed(&p, sup, daemon);
}

#[test]
fn a_command_that_forks_twice_is_followed() {
    let dir = tmp();
    let p = dir.path().join("ff.pid");
    let bg = dir.path().join("bg");
    // A subshell forks the daemon and exits; so does the first shell: the
    // daemon's parent and grandparent are both gone.
    let script = format!(
        "( setsid sleep 30 & echo $! > {}; sleep 0.2 ); exit 0",
        bg.display()
    );
    let sup = supervise(&p, &script);
    let daemon = pid_in(&bg);
    assert_followed(&p, sup, daemon);
}

#[test]
fn two_holders_are_not_guessed_between_the_file_is_kept() {
    let dir = tmp();
    let p = dir.path().join("two.pid");
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let script = format!(
        "sleep 30 >/dev/null 2>&1 & echo $! > {}; sleep 30 >/dev/null 2>&1 & echo $! > {}; exit 0",
        a.display(),
        b.display()
    );
    let mut sup = supervise(&p, &script);
    let pids = [pid_in(&a), pid_in(&b)];
    let reap = Pinned::new(pids);
    let out = wait_output(&mut sup.0);
    assert_eq!(out.status.code(), Some(69), "{}", text(&out));
    let msg = text(&out);
    for pid in &pids {
        assert!(msg.contains(&pid.to_string()), "names {pid}: {msg}");
    }
    assert!(
        msg.contains("daemon off;") && msg.contains("--daemonize no"),
        "{msg}"
    );
    assert!(p.exists(), "the file is kept while its lock is held");
    assert!(!lock_free(&p), "and the lock is still held");
    drop(reap);
    wait_for("the lock to be free", || lock_free(&p));
}

#[test]
fn a_background_process_without_the_lock_does_not_keep_the_file() {
    let dir = tmp();
    let p = dir.path().join("nolock.pid");
    let bg = dir.path().join("bg");
    // The background process closes every inherited descriptor above 2,
    // then says so; the shell exits only then.
    let b = bg.display();
    let script = format!(
        "python3 -c 'import os,sys,time; os.closerange(3, 1024); open(sys.argv[1], \"w\").write(str(os.getpid())); time.sleep(30)' {b} >/dev/null 2>&1 & \
         while [ ! -s {b} ]; do sleep 0.01; done; exit 5"
    );
    if no_python3("python3 is needed") {
        return;
    }
    let mut sup = supervise(&p, &script);
    let reap = Pinned::new([pid_in(&bg)]);
    let out = wait_output(&mut sup.0);
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    assert!(text(&out).contains("without the lock"), "{}", text(&out));
    assert!(!p.exists());
    drop(reap);
}

/// nginx in a temporary prefix, its default `daemon on`.
struct Nginx {
    dir: tempfile::TempDir,
}

impl Nginx {
    fn new() -> Option<Nginx> {
        if !Path::new("/usr/sbin/nginx").exists() {
            assert!(
                std::env::var_os("CI").is_none(),
                "nginx is missing: .ci/run installs nginx-light"
            );
            skipped("nginx is not installed (Debian: nginx-light)");
            return None;
        }
        if !is_root() {
            skipped("nginx's master process needs root here");
            return None;
        }
        let dir = tmp();
        let d = dir.path().display();
        let conf = format!(
            "daemon on; master_process on; worker_processes 1;\n\
             pid {d}/nginx.pid; error_log {d}/error.log;\n\
             events {{ worker_connections 16; }}\n\
             http {{ access_log off;\n\
               client_body_temp_path {d}/body; proxy_temp_path {d}/proxy;\n\
               fastcgi_temp_path {d}/fastcgi; uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;\n\
               server {{ listen unix:{d}/sock; return 200 \"ok\\n\"; }} }}\n"
        );
        std::fs::write(dir.path().join("nginx.conf"), conf).unwrap();
        Some(Nginx { dir })
    }

    fn args(&self) -> Vec<String> {
        let d = self.dir.path().display();
        vec![
            "/usr/sbin/nginx".into(),
            "-p".into(),
            format!("{d}"),
            "-c".into(),
            format!("{d}/nginx.conf"),
        ]
    }

    /// The master's PID, from nginx's own file.
    fn master(&self) -> i32 {
        pid_in(&self.dir.path().join("nginx.pid"))
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

#[test]
fn nginx_daemonizing_itself_under_run_is_followed_and_stopped() {
    let Some(nginx) = Nginx::new() else { return };
    let p = nginx.path("run.pid");
    let sup = Owned::spawn(
        pidguard()
            .arg("run")
            .arg("-p")
            .arg(&p)
            .arg("--")
            .args(nginx.args())
            .stderr(Stdio::piped()),
    );
    let master = nginx.master();
    let reap = Pinned::new([master]);
    pid_in_where(&p, |pid| pid == master);
    assert_eq!(wait_verified(&p), master);
    // A second `run` is refused (today's bug: it started a second nginx).
    let again = pidguard()
        .arg("run")
        .arg("-p")
        .arg(&p)
        .arg("--")
        .args(nginx.args())
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(75), "{}", text(&again));
    let out = pidguard().arg("stop").arg("-p").arg(&p).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let mut sup = sup;
    let out = wait_output(&mut sup.0);
    assert_eq!(
        out.status.code(),
        Some(0),
        "nginx exits 0 on TERM: {}",
        text(&out)
    );
    assert!(!alive(master));
    assert!(!p.exists());
    drop(reap);
}

#[test]
fn run_daemon_names_the_process_a_forking_command_leaves() {
    let dir = tmp();
    for (name, script) in [
        ("once", "sleep 30 & echo $! > BG; exit 0"),
        ("twice", "( setsid sleep 30 & echo $! > BG ); exit 0"),
    ] {
        let p = dir.path().join(format!("{name}.pid"));
        let bg = dir.path().join(format!("{name}.bg"));
        let script = script.replace("BG", &bg.display().to_string());
        let out = pidguard()
            .args(["run", "--daemon", "--json", "--settle", "1s", "-p"])
            .arg(&p)
            .args(["--", "sh", "-c", &script])
            .output()
            .unwrap();
        let daemon = pid_in(&bg);
        let reap = Pinned::new([daemon]);
        assert_eq!(out.status.code(), Some(0), "{name}: {}", text(&out));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["pid"].as_i64(), Some(daemon as i64), "{name}");
        assert_eq!(file_pid(&p), Some(daemon), "{name}");
        assert_eq!(wait_verified(&p), daemon, "{name}");
        drop(reap);
    }
}

#[test]
fn run_daemon_with_nginx_prints_the_master() {
    let Some(nginx) = Nginx::new() else { return };
    let p = nginx.path("d.pid");
    let out = pidguard()
        .args(["run", "--daemon", "--json", "--settle", "2s", "-p"])
        .arg(&p)
        .arg("--")
        .args(nginx.args())
        .output()
        .unwrap();
    let master = nginx.master();
    let reap = Pinned::new([master]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["pid"].as_i64(), Some(master as i64));
    assert_eq!(wait_verified(&p), master);
    let out = pidguard().arg("stop").arg("-p").arg(&p).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(!p.exists());
    drop(reap);
}

#[test]
fn notify_daemon_that_forks_before_ready_is_followed() {
    if no_python3("python3 is needed to send READY=1") {
        return;
    }
    let dir = tmp();
    let p = dir.path().join("n.pid");
    let bg = dir.path().join("bg");
    // The first process exits at once; its child reports READY=1 later
    // and carries on holding the lock.
    let notify = "import os,socket; s=socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.sendto(b'READY=1', os.environ['NOTIFY_SOCKET'])";
    let script = format!(
        "( sleep 1; python3 -c \"{notify}\"; exec sleep 30 ) & echo $! > {}; exit 0",
        bg.display()
    );
    let out = pidguard()
        .args(["run", "--daemon", "--notify", "--json", "-p"])
        .arg(&p)
        .args(["--", "sh", "-c", &script])
        .output()
        .unwrap();
    let daemon = pid_in(&bg);
    let reap = Pinned::new([daemon]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        !text(&out).contains("nothing left running"),
        "{}",
        text(&out)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["pid"].as_i64(), Some(daemon as i64));
    assert_eq!(wait_verified(&p), daemon);
    drop(reap);
}

/// The descriptors a process has open, by number.
fn open_fds(pid: i32) -> Vec<i32> {
    let mut fds: Vec<i32> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    fds.sort();
    fds
}

#[test]
fn a_daemon_gets_only_stdio_and_the_lock_so_a_pipe_closes_at_once() {
    let dir = tmp();
    for mode in ["run", "ensure"] {
        let p = dir.path().join(format!("{mode}.pid"));
        // `{ pidguard run --daemon … ; } | cat`, the pipe also open as
        // descriptor 9 in pidguard: the pipe must reach EOF while the
        // daemon runs (it inherits none of pidguard's descriptors).
        let verb = if mode == "run" {
            "run --daemon"
        } else {
            "ensure"
        };
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg(format!(
            "{{ exec 9>&1; {} {verb} -p {} -- sleep 30; }} | cat",
            bin().display(),
            p.display()
        ));
        let started = Instant::now();
        let out = cmd.stdin(Stdio::null()).output().unwrap();
        let took = started.elapsed();
        let pid = file_pid(&p).expect("the daemon's PID");
        let reap = Pinned::new([pid]);
        assert!(out.status.success(), "{mode}: {}", text(&out));
        assert!(
            took < Duration::from_secs(10),
            "{mode}: the pipe stayed open {took:?}"
        );
        let fds = open_fds(pid);
        assert_eq!(fds.len(), 4, "{mode}: stdio and the lock only: {fds:?}");
        assert_eq!(&fds[..3], &[0, 1, 2], "{mode}");
        assert_eq!(wait_verified(&p), pid, "{mode}: the fourth is the lock");
        drop(reap);
    }
}

#[test]
fn ensure_socket_that_never_accepts_stops_the_daemon_and_removes_the_file() {
    if no_python3("python3 is needed for a listening daemon") {
        return;
    }
    let dir = tmp();
    let p = dir.path().join("e.pid");
    let sock = dir.path().join("e.sock");
    let bg = dir.path().join("bg");
    let script = format!("echo $$ > {}; exec sleep 30", bg.display());
    // Pinned while ensure still runs (it stops the daemon only at the
    // readiness timeout): once it has returned, the daemon is gone and
    // reaped, and its PID may be another process's.
    let (out, first, reap) = std::thread::scope(|s| {
        let run = s.spawn(|| {
            pidguard()
                .args(["ensure", "--ready-timeout", "1s", "--socket"])
                .arg(&sock)
                .arg("-p")
                .arg(&p)
                .args(["--", "sh", "-c", &script])
                .output()
                .unwrap()
        });
        let first = pid_in(&bg);
        let pin = Pinned::new([first]);
        (run.join().unwrap(), first, pin)
    });
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("it was stopped"), "{}", text(&out));
    assert!(!alive(first), "the daemon was stopped");
    assert!(!p.exists(), "its file was removed");
    // The next call starts a fresh daemon, which listens.
    let server = format!(
        "import socket,time; s=socket.socket(socket.AF_UNIX); s.bind('{}'); s.listen(); time.sleep(30)",
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
    let second = v["pid"].as_i64().unwrap() as i32;
    let _reap2 = Pinned::new([second]);
    assert_eq!(v["started"], true);
    assert_ne!(second, first);
    drop(reap);
}

/// `sh -c 'ulimit -n N; exec pidguard run -p P -- CMD'`.
fn at_fd_limit(limit: u32, p: &Path, script: &str) -> Owned {
    Owned::spawn(
        Command::new("sh")
            .arg("-c")
            .arg(format!(
                // Descriptors the test harness may have left open do not
                // count against the limit.
                "exec 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&-; \
                 ulimit -n {limit} && exec {} run -p {} -- sh -c '{script}'",
                bin().display(),
                p.display()
            ))
            .stderr(Stdio::piped()),
    )
}

#[test]
fn at_a_low_descriptor_limit_no_signal_is_lost_silently() {
    // As daemon.rs's run_works_at_ulimit_7_and_8_and_forwards_signals: the
    // command runs at every limit from 7 (below, spawn's own pipe cannot be
    // had), and TERM reaches it.
    let dir = tmp();
    for limit in [7, 8, 9, 10] {
        let marker = dir.path().join(format!("started{limit}"));
        let p = dir.path().join(format!("{limit}.pid"));
        let script = format!(
            "trap \"exit 3\" TERM; touch {}; while :; do sleep 0.05; done",
            marker.display()
        );
        let mut sup = at_fd_limit(limit, &p, &script);
        wait_for("the command to start (or pidguard to exit)", || {
            marker.exists() || sup.0.try_wait().unwrap().is_some()
        });
        if !marker.exists() {
            let out = wait_output(&mut sup.0);
            panic!(
                "at ulimit -n {limit} the command must run: {:?} {}",
                out.status,
                text(&out)
            );
        }
        // TERM reaches it (by pidfd, or where no descriptor is left for
        // one, by PID while it is known unreaped).
        let command = wait_verified(&p);
        assert_ne!(command, sup.pid(), "the file names the command");
        // Plain supervised run: the record is the command's, not pidguard's.
        // At ulimit -n 7 no descriptor is left for the pidfd the record is
        // read from: the file then has none (absence decides nothing),
        // never a wrong one.
        if limit > 7 {
            assert_records_owner(&p, command);
        } else {
            let record = kernel_record(&p);
            assert!(
                record.is_none() || record == pidfs_ino(command).map(|i| (command, i)),
                "ulimit -n {limit}: a record that is not the command's: {record:?}"
            );
        }
        signal(sup.pid(), "TERM");
        let out = wait_output(&mut sup.0);
        assert_eq!(
            out.status.code(),
            Some(3),
            "ulimit -n {limit}: the command got TERM: {}",
            text(&out)
        );
        assert!(!p.exists(), "ulimit -n {limit}: the file is removed");
    }
}

/// strace lines of `pid`'s calls that reap it (wait4/waitid returning it
/// without WNOWAIT) and that signal it by PID.
fn reaped_then_signalled(calls: &[String], child: i32) -> Option<String> {
    let c = child.to_string();
    let mut reaped = false;
    for line in calls {
        let call = line
            .split_once(' ')
            .map(|x| x.1.trim_start())
            .unwrap_or(line);
        if call.contains("wait4") && call.trim_end().ends_with(&format!("= {c}")) {
            reaped = true;
        } else if reaped && call.starts_with(&format!("kill({c},")) {
            return Some(line.clone());
        }
    }
    None
}

#[test]
fn without_pidfds_no_signal_goes_to_a_reaped_command() {
    // Issue 13, case 13: the command exits while signals keep arriving at
    // the supervisor; with pidfd_open failing (ENOSYS, as on old kernels)
    // signals go by PID, and never after the command was reaped (the PID
    // may be reused). kill() is made to fail with EPERM: nothing is hurt.
    if !testkit::have_tool("strace", "-V") {
        return;
    }
    let dir = tmp();
    for round in 0..5 {
        let p = dir.path().join(format!("r{round}.pid"));
        let log = dir.path().join(format!("r{round}.strace"));
        let mut strace = Command::new("strace")
            .args(["-f", "-qq", "-o"])
            .arg(&log)
            .args(["-e", "trace=kill,wait4,pidfd_open,pidfd_send_signal"])
            .args(["-e", "inject=pidfd_open:error=ENOSYS"])
            .args(["-e", "inject=kill:error=EPERM"])
            .arg(bin())
            .args(["run", "-p"])
            .arg(&p)
            .args(["--", "sh", "-c", "sleep 1; exit 7"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Its handlers are in place once the command runs; the supervisor
        // is the command's parent.
        let sup = ppid(wait_verified(&p));
        // HUP, again and again, across the command's exit.
        let mut sent = 0;
        while strace.try_wait().unwrap().is_none() {
            let _ = Command::new("kill")
                .args(["-HUP", &sup.to_string()])
                .stderr(Stdio::null())
                .status();
            sent += 1;
            std::thread::sleep(Duration::from_millis(3));
        }
        assert!(sent > 0, "round {round}: no HUP was sent to pidguard {sup}");
        let out = strace.wait_with_output().unwrap();
        let calls: Vec<String> = std::fs::read_to_string(&log)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect();
        let child = calls
            .iter()
            .find_map(|l| {
                l.split_once(' ')?
                    .1
                    .trim_start()
                    .strip_prefix("pidfd_open(")?
                    .split(',')
                    .next()?
                    .parse::<i32>()
                    .ok()
            })
            .expect("the supervisor tried a pidfd for its command");
        assert!(
            calls.iter().any(|l| l.contains(&format!("kill({child}, SIGHUP"))),
            "round {round}: HUP (sent {sent} times to {sup}) was forwarded by PID while the command ran: {calls:#?}"
        );
        assert_eq!(
            reaped_then_signalled(&calls, child),
            None,
            "round {round}: signalled after it was reaped: {calls:#?}"
        );
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("cannot forward HUP"),
            "round {round}: the failed forward (EPERM) is reported: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn run_keeps_the_command_status_when_the_file_cannot_be_removed() {
    if !is_root() {
        skipped("needs root (a tmpfs remounted read-only in a mount namespace)");
        return;
    }
    let dir = tmp();
    let mnt = dir.path().join("m");
    std::fs::create_dir(&mnt).unwrap();
    let script = format!(
        "mount -t tmpfs tmpfs {m} && {bin} run -p {m}/x.pid -- \
         sh -c 'mount --bind {m} {m} && mount -o remount,bind,ro {m} && exit 3; exit 90'; echo \"rc=$?\"",
        m = mnt.display(),
        bin = bin().display()
    );
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .output()
        .unwrap();
    let t = text(&out);
    assert!(t.contains("rc=3"), "the command's status, not 74: {t}");
    assert!(t.contains("warning") && t.contains("x.pid"), "{t}");
}

#[test]
fn run_works_without_proc() {
    if !is_root() {
        skipped("needs root (unshare --mount, umount /proc)");
        return;
    }
    let dir = tmp();
    let d = dir.path().display();
    let bin = bin();
    let b = bin.display();
    let script = format!(
        "umount -l /proc || exit 90; [ -e /proc/self ] && exit 91; \
         {b} run -p {d}/a.pid -- sh -c 'cat {d}/a.pid > {d}/named; exit 4'; echo \"plain=$?\"; \
         [ -e {d}/a.pid ] && echo left-a; \
         {b} run --daemon -p {d}/b.pid -- sh -c 'echo $$ > {d}/bpid; exec sleep 30'; echo \"daemon=$?\"; \
         {b} run -p {d}/c.pid -- sh -c 'sleep 30 >/dev/null 2>&1 & echo $! > {d}/cbg; exit 0'; echo \"forking=$?\""
    );
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .output()
        .unwrap();
    let daemon = pid_in(&dir.path().join("bpid"));
    let reap = Pinned::new([daemon, pid_in(&dir.path().join("cbg"))]);
    let t = text(&out);
    assert!(t.contains("plain=4"), "{t}");
    assert!(!t.contains("left-a"), "{t}");
    assert!(
        std::fs::read_to_string(dir.path().join("named"))
            .unwrap()
            .trim()
            .parse::<i32>()
            .is_ok(),
        "the file named the command"
    );
    assert!(t.contains("daemon=0"), "{t}");
    assert_eq!(file_pid(&dir.path().join("b.pid")), Some(daemon));
    // Without /proc, who holds the lock cannot be told: the file is kept,
    // and the error says why and what to do.
    assert!(t.contains("forking=69"), "{t}");
    assert!(t.contains("/proc cannot be read"), "{t}");
    assert!(dir.path().join("c.pid").exists());
    drop(reap);
}

#[test]
fn log_files_are_opened_with_a_pid_files_care() {
    if !is_root() {
        skipped("needs root (files owned by another user)");
        return;
    }
    let dir = tmp();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
    let target = dir.path().join("precious");
    std::fs::write(&target, "keep\n").unwrap();
    let nobody = |path: &Path| {
        let ok = Command::new("chown")
            .args(["-h", "65534:65534"])
            .arg(path)
            .status()
            .unwrap();
        assert!(ok.success());
    };
    // A symlink someone else planted.
    let planted = dir.path().join("planted.log");
    std::os::unix::fs::symlink(&target, &planted).unwrap();
    nobody(&planted);
    // A file another user owns.
    let theirs = dir.path().join("theirs.log");
    std::fs::write(&theirs, "").unwrap();
    nobody(&theirs);
    // A second name for the precious file.
    let linked = dir.path().join("linked.log");
    std::fs::hard_link(&target, &linked).unwrap();
    for stream in ["--stdout", "--stderr"] {
        for (log, why) in [
            (&planted, "symbolic link owned by UID 65534"),
            (&theirs, "belongs to UID 65534"),
            (&linked, "hard links"),
        ] {
            let p = dir.path().join("l.pid");
            let out = pidguard()
                .args(["run", "--daemon", stream])
                .arg(log)
                .arg("-p")
                .arg(&p)
                .args(["--", "sh", "-c", "echo written; echo written >&2"])
                .output()
                .unwrap();
            assert_eq!(
                out.status.code(),
                Some(73),
                "{stream} {}: {}",
                log.display(),
                text(&out)
            );
            assert!(text(&out).contains(why), "{stream}: {}", text(&out));
            assert!(
                text(&out).contains(&log.display().to_string()),
                "{stream}: the message names the log file: {}",
                text(&out)
            );
            assert!(
                !p.exists(),
                "{stream}: no PID file for a command never started"
            );
        }
        assert_eq!(
            std::fs::read_to_string(&target).unwrap(),
            "keep\n",
            "{stream}: the precious file"
        );
        assert_eq!(std::fs::read_to_string(&theirs).unwrap(), "", "{stream}");
    }
    // Our own file, and our own symlink to it, are fine, for either stream.
    for (stream, script) in [
        ("--stdout", "echo written; exec sleep 30"),
        ("--stderr", "echo written >&2; exec sleep 30"),
    ] {
        let ours = dir.path().join(format!("ours{stream}.log"));
        let link = dir.path().join(format!("ours-link{stream}.log"));
        std::os::unix::fs::symlink(&ours, &link).unwrap();
        let p = dir.path().join(format!("ok{stream}.pid"));
        let out = pidguard()
            .args(["run", "--daemon", stream])
            .arg(&link)
            .arg("-p")
            .arg(&p)
            .args(["--", "sh", "-c", script])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{stream}: {}", text(&out));
        let reap = Pinned::new([file_pid(&p).unwrap()]);
        wait_for("the daemon's output", || {
            std::fs::read_to_string(&ours).unwrap_or_default() == "written\n"
        });
        drop(reap);
    }
}

#[test]
fn a_sigchld_inherited_as_ignored_does_not_reap_the_command_behind_our_back() {
    // With SIGCHLD ignored the kernel reaps children at once: the
    // supervisor could not wait for the command, and a PID it signals could
    // be reused. pidguard replaces the disposition before it forks.
    if no_python3("python3 is needed to exec pidguard with SIGCHLD ignored") {
        return;
    }
    let dir = tmp();
    let p = dir.path().join("ign.pid");
    let out = Command::new("python3")
        .args([
            "-c",
            "import os,signal,sys; signal.signal(signal.SIGCHLD, signal.SIG_IGN); os.execv(sys.argv[1], sys.argv[1:])",
        ])
        .arg(bin())
        .arg("run")
        .arg("-p")
        .arg(&p)
        .args(["--", "sh", "-c", "sleep 0.2; exit 5"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    assert!(!p.exists());
}
