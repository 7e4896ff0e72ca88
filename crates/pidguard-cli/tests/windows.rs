//! The `pidguard` command on Windows, through the real binary (issue 18;
//! design: docs/WINDOWS.md). Run under Wine by `.ci/windows`; what that
//! proves and what needs a real Windows host is in docs/GUARANTEES.md
//! ("Windows").
//!
//! Commands run under `pidguard run` are this test binary re-executed in a
//! helper role (`helper_process`, chosen by an environment variable): it
//! sleeps, exits with a code, or starts a grandchild and sleeps. Tests end
//! only processes they started, through their own `Child` handles
//! (`TerminateProcess`), or through `pidguard stop`. Files live in
//! temporary directories.
#![cfg(windows)]

use std::ffi::c_void;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const ROLE: &str = "PIDGUARD_CLI_TEST_ROLE";

/// Not a test: the body of the commands the other tests run under
/// `pidguard run`. Roles: `sleep:MS`, `exit:N`, `mark:PATH` (creates PATH,
/// then exits 0), `tree:PATH` (starts a grandchild that sleeps, writes its
/// PID to PATH, sleeps).
#[test]
#[ignore = "helper process for the other tests; does nothing when run alone"]
fn helper_process() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    let (what, arg) = role.split_once(':').expect("ROLE:ARG");
    match what {
        "sleep" => std::thread::sleep(Duration::from_millis(arg.parse().unwrap())),
        "exit" => std::process::exit(arg.parse().unwrap()),
        "mark" => {
            std::fs::write(arg, b"ran").unwrap();
        }
        "tree" => {
            let mut grandchild = helper("sleep:60000").spawn().unwrap();
            let tmp = format!("{arg}.tmp");
            std::fs::write(&tmp, grandchild.id().to_string()).unwrap();
            std::fs::rename(&tmp, arg).unwrap();
            std::thread::sleep(Duration::from_secs(60));
            // Only if the job did not end us both first.
            let _ = grandchild.kill();
            let _ = grandchild.wait();
        }
        other => panic!("unknown role {other}"),
    }
}

/// This test binary as a helper in `role`.
fn helper(role: &str) -> Command {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(helper_args())
        .env(ROLE, role)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd
}

fn helper_args() -> [&'static str; 5] {
    [
        "helper_process",
        "--exact",
        "--ignored",
        "--quiet",
        "--test-threads=1",
    ]
}

fn pidguard() -> Command {
    Command::new(env!("CARGO_BIN_EXE_pidguard"))
}

/// `pidguard ARGS`, to completion.
fn pg(args: &[&str]) -> Output {
    pidguard().args(args).stdin(Stdio::null()).output().unwrap()
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `pidguard run --pidfile PATH -- helper(role)`, in the background.
struct Supervisor {
    child: Child,
}

impl Supervisor {
    fn start(pidfile: &Path, role: &str) -> Supervisor {
        let mut cmd = pidguard();
        cmd.arg("run")
            .arg("--pidfile")
            .arg(pidfile)
            .arg("--")
            .arg(std::env::current_exe().unwrap())
            .args(helper_args())
            .env(ROLE, role)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        Supervisor {
            child: cmd.spawn().unwrap(),
        }
    }

    /// Waits until the file names the command (not the supervisor, which
    /// it names while the command is being started); returns its PID.
    fn command_pid(&mut self, pidfile: &Path) -> u32 {
        self.command_pid_other_than(pidfile, None)
    }

    /// [`command_pid`](Self::command_pid), when the file may still name
    /// `old` (a dead command, until the take-over rewrites it).
    fn command_pid_other_than(&mut self, pidfile: &Path, old: Option<u32>) -> u32 {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let named = read_pid(pidfile).filter(|&p| p != self.child.id() && Some(p) != old);
            if let Some(pid) = named {
                return pid;
            }
            if let Some(st) = self.child.try_wait().unwrap() {
                panic!("pidguard run exited ({st}) before the file named its command");
            }
            assert!(
                Instant::now() < deadline,
                "the file never named the command"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The supervisor's exit code, waiting up to 20 s.
    fn exit_code(&mut self) -> i32 {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st.code().unwrap();
            }
            assert!(Instant::now() < deadline, "pidguard run did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        // Ends the supervisor (and, through its Job object, its command).
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read_pid(pidfile: &Path) -> Option<u32> {
    std::fs::read_to_string(pidfile).ok()?.trim().parse().ok()
}

/// A process handle (`OpenProcess(SYNCHRONIZE)`): pins its PID, tells when
/// it exits.
struct ProcessHandle(*mut c_void);

#[link(name = "kernel32")]
extern "system" {
    fn OpenProcess(access: u32, inherit: i32, pid: u32) -> *mut c_void;
    fn WaitForSingleObject(h: *mut c_void, ms: u32) -> u32;
    fn CloseHandle(h: *mut c_void) -> i32;
}

const SYNCHRONIZE: u32 = 0x0010_0000;

impl ProcessHandle {
    fn open(pid: u32) -> ProcessHandle {
        // SAFETY: no pointers; null is failure.
        let h = unsafe { OpenProcess(SYNCHRONIZE, 0, pid) };
        assert!(!h.is_null(), "cannot open PID {pid}");
        ProcessHandle(h)
    }

    /// Whether the process exited within `timeout`.
    fn exited_within(&self, timeout: Duration) -> bool {
        // SAFETY: a valid process handle; 0 is WAIT_OBJECT_0.
        unsafe { WaitForSingleObject(self.0, timeout.as_millis() as u32) == 0 }
    }
}

impl Drop for ProcessHandle {
    fn drop(&mut self) {
        // SAFETY: opened above, closed once.
        unsafe { CloseHandle(self.0) };
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `run` → `status` running → a second `run` refused (75, its command
/// never started) → `stop` → the command ended, the supervisor exits with
/// its code, the file is gone.
#[test]
fn run_status_second_run_refused_stop() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("app.pid");
    let mut sup = Supervisor::start(&pidfile, "sleep:60000");
    let pid = sup.command_pid(&pidfile);
    let command = ProcessHandle::open(pid);

    let st = pg(&["status", "--pidfile", s(&pidfile)]);
    assert_eq!(code(&st), 0, "status: {}", stderr(&st));
    assert!(stdout(&st).contains("running"), "{}", stdout(&st));
    let p = pg(&["pid", "--pidfile", s(&pidfile)]);
    assert_eq!(code(&p), 0, "pid: {}", stderr(&p));
    assert_eq!(stdout(&p).trim(), pid.to_string());

    let mark = dir.path().join("second-ran");
    let second = pidguard()
        .arg("run")
        .arg("--pidfile")
        .arg(&pidfile)
        .arg("--")
        .arg(std::env::current_exe().unwrap())
        .args(helper_args())
        .env(ROLE, format!("mark:{}", mark.display()))
        .output()
        .unwrap();
    assert_eq!(code(&second), 75, "second run: {}", stderr(&second));
    assert!(
        stderr(&second).contains(&pid.to_string()),
        "the refusal names the holder: {}",
        stderr(&second)
    );
    assert!(!mark.exists(), "the refused run started its command");
    assert_eq!(
        read_pid(&pidfile),
        Some(pid),
        "the refused run changed the file"
    );

    let stop = pg(&["stop", "--pidfile", s(&pidfile), "--schedule", "KILL/10"]);
    assert_eq!(code(&stop), 0, "stop: {}{}", stdout(&stop), stderr(&stop));
    assert!(command.exited_within(Duration::from_secs(10)));
    // TerminateProcess(h, 1): the command's code, passed through.
    assert_eq!(sup.exit_code(), 1);
    assert!(!pidfile.exists(), "the file outlived the command");
    let st = pg(&["status", "--pidfile", s(&pidfile)]);
    assert_eq!(code(&st), 3, "status after stop: {}", stdout(&st));
}

/// `stop`'s default schedule (`TERM/10/KILL/5`, here with `--timeout 1s`):
/// the `TERM` step cannot be delivered on Windows and is waited out as a
/// grace (the library's), then `KILL` ends the command; `run` removes the
/// file and exits with the command's code.
#[test]
fn stop_with_the_default_schedule_waits_then_kills() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("app.pid");
    let mut sup = Supervisor::start(&pidfile, "sleep:60000");
    let pid = sup.command_pid(&pidfile);
    let command = ProcessHandle::open(pid);
    let started = Instant::now();
    let stop = pg(&["stop", "--pidfile", s(&pidfile), "--timeout", "1s"]);
    assert_eq!(code(&stop), 0, "stop: {}{}", stdout(&stop), stderr(&stop));
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "the TERM step was not waited out: {:?}",
        started.elapsed()
    );
    assert!(command.exited_within(Duration::from_secs(10)));
    assert_eq!(sup.exit_code(), 1);
    assert!(!pidfile.exists(), "the file outlived the command");
}

/// The command's exit code is `run`'s, and the file is removed.
#[test]
fn exit_code_is_passed_through() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("app.pid");
    let mut sup = Supervisor::start(&pidfile, "exit:7");
    assert_eq!(sup.exit_code(), 7);
    assert!(!pidfile.exists());
    let missing = pg(&[
        "run",
        "--pidfile",
        s(&pidfile),
        "--",
        "Z:\\nonexistent\\no-such-program.exe",
    ]);
    assert_eq!(code(&missing), 127, "{}", stderr(&missing));
    assert!(
        !pidfile.exists(),
        "a command that never started left its file"
    );
}

/// The supervisor killed with `TerminateProcess`: its Job object ends the
/// command and the command's own child; the file is left naming the dead
/// command (stale, exit 1) and unlocked, and the next `run` takes it over.
#[test]
fn killed_supervisor_ends_the_job_and_the_file_is_taken_over() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("app.pid");
    let gc_file = dir.path().join("grandchild");
    let mut sup = Supervisor::start(&pidfile, &format!("tree:{}", gc_file.display()));
    let pid = sup.command_pid(&pidfile);
    let command = ProcessHandle::open(pid);
    let deadline = Instant::now() + Duration::from_secs(20);
    let gc_pid = loop {
        if let Some(p) = read_pid(&gc_file) {
            break p;
        }
        assert!(
            Instant::now() < deadline,
            "the command never started its child"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let grandchild = ProcessHandle::open(gc_pid);

    sup.child.kill().unwrap();
    sup.child.wait().unwrap();
    assert!(
        command.exited_within(Duration::from_secs(5)),
        "the command outlived its killed supervisor"
    );
    assert!(
        grandchild.exited_within(Duration::from_secs(5)),
        "the command's child outlived the killed supervisor"
    );

    let st = pg(&["status", "--pidfile", s(&pidfile)]);
    assert_eq!(code(&st), 1, "status: {}{}", stdout(&st), stderr(&st));
    assert!(stdout(&st).contains("stale"), "{}", stdout(&st));

    let mut next = Supervisor::start(&pidfile, "sleep:60000");
    next.command_pid_other_than(&pidfile, Some(pid));
    let st = pg(&["status", "--pidfile", s(&pidfile)]);
    assert_eq!(code(&st), 0, "status after take-over: {}", stderr(&st));
    let stop = pg(&["stop", "--pidfile", s(&pidfile), "--signal", "KILL"]);
    assert_eq!(code(&stop), 0, "stop: {}", stderr(&stop));
    assert_eq!(next.exit_code(), 1);
    assert!(!pidfile.exists());
}

/// `wait` returns once the command exits by itself.
#[test]
fn wait_returns_when_the_command_exits() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("app.pid");
    let mut sup = Supervisor::start(&pidfile, "sleep:1500");
    sup.command_pid(&pidfile);
    let started = Instant::now();
    let w = pg(&["wait", "--pidfile", s(&pidfile), "--timeout", "20s"]);
    assert_eq!(code(&w), 0, "wait: {}{}", stdout(&w), stderr(&w));
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(sup.exit_code(), 0);
    let w = pg(&["wait", "--pidfile", s(&pidfile), "--timeout", "1s"]);
    assert_eq!(code(&w), 0, "wait on a gone file: {}", stderr(&w));
}

/// `list` names a running entry and a stale one.
#[test]
fn list_shows_running_and_stale_entries() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("alive.pid");
    let mut sup = Supervisor::start(&pidfile, "sleep:60000");
    let pid = sup.command_pid(&pidfile);
    // A file naming a process that has exited (an unlocked leftover).
    let mut gone = helper("exit:0").spawn().unwrap();
    let gone_pid = gone.id();
    gone.wait().unwrap();
    std::fs::write(dir.path().join("dead.pid"), format!("{gone_pid}\n")).unwrap();

    let l = pg(&["list", s(dir.path()), "--json"]);
    assert_eq!(code(&l), 0, "list: {}", stderr(&l));
    let listed: serde_json::Value = serde_json::from_str(stdout(&l).trim()).unwrap();
    let rows = listed["entries"].as_array().expect("entries").clone();
    let row = |name: &str| {
        rows.iter()
            .find(|r| r["name"] == name)
            .unwrap_or_else(|| panic!("no row {name} in {rows:?}"))
            .clone()
    };
    assert_eq!(row("alive")["state"], "running", "{rows:?}");
    assert_eq!(row("alive")["pid"], pid);
    assert_eq!(row("dead")["state"], "stale", "{rows:?}");
    let text = pg(&["list", s(dir.path())]);
    assert_eq!(code(&text), 0);
    assert!(stdout(&text).contains("alive"), "{}", stdout(&text));
}

/// What Windows does not have fails at run time, exit 69, naming the
/// option and saying it is Unix-only; no file is created, no command run.
/// `signal` sends only `KILL` and 0 there; a `stop` schedule may also
/// name `TERM` and `INT` (waited out), nothing else.
#[test]
fn unix_only_options_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("app.pid");
    let mark = dir.path().join("ran");
    let exe = std::env::current_exe().unwrap();
    let exe = s(&exe);
    let cases: &[(&[&str], &str)] = &[
        (&["run", "--notify"], "--notify"),
        (&["run", "--daemon"], "--daemon"),
        (&["run", "--daemon", "--notify"], "--daemon"),
        (&["run", "--exec"], "run --exec"),
        (&["run", "--umask", "022"], "--umask"),
        (&["ensure"], "ensure"),
    ];
    for (args, named) in cases {
        let o = pidguard()
            .args(*args)
            .arg("--pidfile")
            .arg(&pidfile)
            .arg("--")
            .arg(exe)
            .args(helper_args())
            .env(ROLE, format!("mark:{}", mark.display()))
            .output()
            .unwrap();
        assert_eq!(code(&o), 69, "{args:?}: {}", stderr(&o));
        let e = stderr(&o);
        assert!(
            e.contains(named) && e.contains("Unix-only"),
            "{args:?}: {e}"
        );
        assert!(!pidfile.exists(), "{args:?} created the file");
        assert!(!mark.exists(), "{args:?} ran the command");
    }
    // signal NAME and a schedule naming a signal Windows does not have.
    std::fs::write(&pidfile, format!("{}\n", std::process::id())).unwrap();
    for args in [
        &["signal", "HUP"][..],
        &["signal", "USR1"][..],
        &["signal", "TERM"][..],
        &["stop", "--signal", "HUP"][..],
        &["stop", "--schedule", "QUIT/1/KILL/1"][..],
    ] {
        let o = pidguard()
            .args(args)
            .arg("--pidfile")
            .arg(&pidfile)
            .output()
            .unwrap();
        assert_eq!(code(&o), 69, "{args:?}: {}", stderr(&o));
        let e = stderr(&o);
        assert!(
            e.contains("Unix-only") && e.contains("signal"),
            "{args:?}: {e}"
        );
    }
    // With --json: one object, the error's.
    let o = pg(&[
        "run",
        "--daemon",
        "--json",
        "--pidfile",
        s(&pidfile),
        "--",
        exe,
    ]);
    assert_eq!(code(&o), 69);
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(v["exit"], 69, "{v}");
}

/// `signal 0` probes, `signal KILL` ends the command (TerminateProcess).
#[test]
fn signal_zero_and_kill() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("app.pid");
    let mut sup = Supervisor::start(&pidfile, "sleep:60000");
    let pid = sup.command_pid(&pidfile);
    let command = ProcessHandle::open(pid);
    let o = pg(&["signal", "0", "--pidfile", s(&pidfile)]);
    assert_eq!(code(&o), 0, "signal 0: {}", stderr(&o));
    assert!(!command.exited_within(Duration::ZERO));
    let o = pg(&["signal", "KILL", "--pidfile", s(&pidfile)]);
    assert_eq!(code(&o), 0, "signal KILL: {}", stderr(&o));
    assert!(command.exited_within(Duration::from_secs(10)));
    assert_eq!(sup.exit_code(), 1);
    assert!(!pidfile.exists());
}

/// `path --name` is `%LOCALAPPDATA%\NAME\NAME.pid`; without
/// `%LOCALAPPDATA%` there is no standard location (73). Nothing is created.
#[test]
fn path_is_under_local_app_data() {
    let dir = tempfile::tempdir().unwrap();
    let o = pidguard()
        .args(["path", "--name", "demo"])
        .env("LOCALAPPDATA", dir.path())
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "path: {}", stderr(&o));
    let want: PathBuf = dir.path().join("demo").join("demo.pid");
    assert_eq!(stdout(&o).trim_end(), want.to_str().unwrap());
    assert!(!dir.path().join("demo").exists());
    let o = pidguard()
        .args(["path", "--name", "demo"])
        .env_remove("LOCALAPPDATA")
        .output()
        .unwrap();
    assert_eq!(code(&o), 73, "path without LOCALAPPDATA: {}", stdout(&o));
    assert!(stderr(&o).contains("LOCALAPPDATA"), "{}", stderr(&o));
    // `status` of a file that does not exist: not running (3).
    let o = pg(&["status", "--pidfile", s(&dir.path().join("none.pid"))]);
    assert_eq!(code(&o), 3, "{}", stdout(&o));
}
