//! What scripts and sysadmins see: one JSON object per command on success
//! and failure, non-UTF-8 names encoded losslessly, `list` escaping and
//! descending into subdirectories, messages that say what happened.
#![cfg(unix)]

use testkit::*;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// Exactly one JSON object on standard output, whatever the exit code.
fn one_object(out: &Output) -> Value {
    let s = std::str::from_utf8(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not UTF-8 ({e}): {}", text(out)));
    assert_eq!(s.lines().count(), 1, "not one line: {}", text(out));
    let v: Value = serde_json::from_str(s)
        .unwrap_or_else(|e| panic!("not one JSON object ({e}): {}", text(out)));
    assert!(v.is_object(), "{v}");
    v
}

/// The bytes a field stands for: its `_hex` twin when present.
fn bytes_of(v: &Value, key: &str) -> Vec<u8> {
    match v.get(format!("{key}_hex")) {
        Some(Value::String(h)) => (0..h.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
            .collect(),
        _ => v[key]
            .as_str()
            .unwrap_or_else(|| panic!("{key} in {v}"))
            .as_bytes()
            .to_vec(),
    }
}

/// The `name` of each entry of a `list --json` object.
fn entry_names(v: &Value) -> Vec<&str> {
    v["entries"]
        .as_array()
        .unwrap_or_else(|| panic!("no entries: {v}"))
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect()
}

/// The PID of a process that has exited (and was reaped).
fn dead_pid() -> u32 {
    let mut c = Command::new("true").spawn().unwrap();
    c.wait().unwrap();
    c.id()
}

fn run(args: &[&OsStr]) -> Output {
    pidguard().args(args).output().unwrap()
}

fn os(s: &str) -> &OsStr {
    OsStr::new(s)
}

/// A directory whose name holds 0xff, and a file in it.
fn non_utf8_dir(base: &Path) -> PathBuf {
    let d = base.join(OsStr::from_bytes(b"bad\xffdir"));
    std::fs::create_dir(&d).unwrap();
    d
}

#[test]
fn non_utf8_paths_never_panic_and_come_back_exactly() {
    let dir = tmp();
    let d = non_utf8_dir(dir.path());
    let p = d.join(OsStr::from_bytes(b"app\xfe.pid"));
    let target = sleeper();
    write_pidfile(&p, &format!("{}\n", target.pid()));
    for cmd in ["status", "pid", "path"] {
        let out = run(&[os(cmd), os("--json"), os("-p"), p.as_os_str()]);
        assert_eq!(out.status.code(), Some(0), "{cmd}: {}", text(&out));
        let v = one_object(&out);
        assert_eq!(bytes_of(&v, "path"), p.as_os_str().as_bytes(), "{cmd}: {v}");
        assert!(v["path"].as_str().unwrap().contains("\\xFF"), "{v}");
    }
    for cmd in ["list", "sweep"] {
        let out = run(&[os(cmd), os("--json"), d.as_os_str()]);
        assert_eq!(out.status.code(), Some(0), "{cmd}: {}", text(&out));
        let v = one_object(&out);
        assert_eq!(bytes_of(&v, "dir"), d.as_os_str().as_bytes(), "{v}");
        let key = if cmd == "list" { "entries" } else { "actions" };
        let row = &v[key][0];
        assert_eq!(bytes_of(row, "name"), b"app\xfe", "{cmd}: {v}");
        assert_eq!(bytes_of(row, "path"), p.as_os_str().as_bytes(), "{v}");
    }
    // The human forms escape the bytes instead.
    let out = run(&[os("status"), os("-p"), p.as_os_str()]);
    assert!(String::from_utf8(out.stdout)
        .unwrap()
        .contains("bad\\xFFdir/app\\xFE.pid"));
    // stop: stops the process, then prints its one object (it used to
    // abort after stopping).
    let out = run(&[
        os("stop"),
        os("--json"),
        os("--timeout"),
        os("5"),
        os("-p"),
        p.as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let v = one_object(&out);
    assert_eq!(v["outcome"], "stopped", "{v}");
    assert_eq!(bytes_of(&v, "path"), p.as_os_str().as_bytes());
    assert!(!alive(target.pid()));
    assert!(!p.exists());
}

#[test]
fn every_command_prints_one_object_on_failure() {
    let dir = tmp();
    let bad = dir.path().join("bad.pid");
    write_pidfile(&bad, "banana\n");
    // Invalid content: 65, for each of the signalling commands.
    for args in [
        vec!["stop", "--json", "-p"],
        vec!["signal", "--json", "-p"],
        vec!["wait", "--json", "--timeout", "1", "-p"],
    ] {
        let out = pidguard()
            .args(&args)
            .arg(&bad)
            .arg_if_signal(&args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(65), "{args:?}: {}", text(&out));
        let v = one_object(&out);
        assert_eq!(v["exit"], 65, "{v}");
        assert!(v["error"].as_str().unwrap().contains("banana"), "{v}");
        assert_eq!(v["path"], bad.to_str().unwrap(), "{v}");
    }
    // run: the lock is held by another live process (75); the holder is
    // ours.
    let held = dir.path().join("held.pid");
    let mut holder = Owned::spawn(
        pidguard()
            .arg("run")
            .arg("-p")
            .arg(&held)
            .args(["--", "sleep", "30"]),
    );
    wait_running_locked(&held);
    let out = pidguard()
        .args(["run", "--json", "-p"])
        .arg(&held)
        .args(["--", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(75), "{}", text(&out));
    let v = one_object(&out);
    assert_eq!(v["exit"], 75, "{v}");
    assert!(v["error"].as_str().unwrap().contains("locked"), "{v}");
    signal(holder.pid(), "TERM");
    let _ = holder.0.wait();
    // run (supervised) on success: the command's status as one object.
    let out = pidguard()
        .args(["run", "--json", "-p"])
        .arg(dir.path().join("ok.pid"))
        .args(["--", "sh", "-c", "exit 3"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert_eq!(one_object(&out), serde_json::json!({ "exit": 3 }));
    // ensure: the command is not found (127).
    let out = pidguard()
        .args(["ensure", "--json", "-p"])
        .arg(dir.path().join("e.pid"))
        .args(["--", "/nonexistent/daemon"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(127), "{}", text(&out));
    assert_eq!(one_object(&out)["exit"], 127);
    // pid on a missing file: the state, with error and exit.
    let out = pidguard()
        .args(["pid", "--json", "-p"])
        .arg(dir.path().join("none.pid"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let v = one_object(&out);
    assert_eq!(
        (v["state"].clone(), v["exit"].clone()),
        ("not-running".into(), 3.into())
    );
    // A usage error, with --json among the arguments.
    let out = pidguard()
        .args(["signal", "--json", "-p", "x.pid", "NOPE"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let v = one_object(&out);
    assert_eq!(v["exit"], 2);
    assert!(v["error"].as_str().unwrap().contains("NOPE"), "{v}");
    // list of a directory that does not exist.
    let out = pidguard()
        .args(["list", "--json"])
        .arg(dir.path().join("nowhere"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(74), "{}", text(&out));
    assert_eq!(one_object(&out)["exit"], 74);
}

/// `signal` needs a signal after the path.
trait ArgIfSignal {
    fn arg_if_signal(&mut self, args: &[&str]) -> &mut Self;
}

impl ArgIfSignal for Command {
    fn arg_if_signal(&mut self, args: &[&str]) -> &mut Self {
        if args[0] == "signal" {
            self.arg("HUP");
        }
        self
    }
}

#[test]
fn list_escapes_names_so_no_row_can_be_forged() {
    let dir = tmp();
    let d = dir.path();
    let target = sleeper();
    let forged = format!("x\nsshd {} running verified 1s sshd", target.pid());
    write_pidfile(&d.join(format!("{forged}.pid")), "999999999\n");
    write_pidfile(
        &d.join("esc\u{1b}[2J\t.pid"),
        &format!("{}\n", target.pid()),
    );
    let out = pidguard().arg("list").arg(d).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let s = String::from_utf8(out.stdout).unwrap();
    // A header and two rows, nothing else.
    assert_eq!(s.lines().count(), 3, "{s}");
    assert!(s.contains("x\\nsshd"), "{s}");
    assert!(s.contains("esc\\x1B[2J\\t"), "{s}");
    assert!(!s.chars().any(|c| c.is_control() && c != '\n'), "{s:?}");
    // JSON keeps the name as it is.
    let out = pidguard().args(["list", "--json"]).arg(d).output().unwrap();
    let v = one_object(&out);
    let names = entry_names(&v);
    assert!(names.contains(&forged.as_str()), "{names:?}");
}

#[test]
fn list_and_sweep_descend_into_subdirectories_never_through_symlinks() {
    let dir = tmp();
    let d = dir.path();
    let target = sleeper();
    let live = format!("{}\n", target.pid());
    std::fs::create_dir_all(d.join("redis/deeper")).unwrap();
    write_pidfile(&d.join("top.pid"), &live);
    write_pidfile(&d.join("redis/redis-server.pid"), &live);
    let dead = dead_pid();
    write_pidfile(&d.join("redis/deeper/gone.pid"), &format!("{dead}\n"));
    // A symlinked directory elsewhere: never followed, never swept.
    let elsewhere = tmp();
    write_pidfile(&elsewhere.path().join("victim.pid"), "999999999\n");
    std::os::unix::fs::symlink(elsewhere.path(), d.join("link")).unwrap();

    let names = |args: &[&str]| -> Vec<(String, String)> {
        let out = pidguard().args(args).arg(d).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", text(&out));
        one_object(&out)["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                let what = e["state"].as_str().or(e["skipped"].as_str()).unwrap();
                (e["name"].as_str().unwrap().to_owned(), what.to_owned())
            })
            .collect()
    };
    let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    };
    assert_eq!(
        names(&["list", "--json"]),
        pairs(&[
            ("link", "symlink"),
            ("redis", "directory"),
            ("top", "running")
        ])
    );
    assert_eq!(
        names(&["list", "--json", "--max-depth", "1"]),
        pairs(&[
            ("link", "symlink"),
            ("redis/deeper", "directory"),
            ("redis/redis-server", "running"),
            ("top", "running"),
        ])
    );
    let all = pairs(&[
        ("link", "symlink"),
        ("redis/deeper/gone", "stale"),
        ("redis/redis-server", "running"),
        ("top", "running"),
    ]);
    assert_eq!(names(&["list", "--json", "--recursive"]), all);
    let human = pidguard().args(["list", "-r"]).arg(d).output().unwrap();
    let human = String::from_utf8(human.stdout).unwrap();
    assert!(human.contains("redis/redis-server "), "{human}");

    // sweep -r: the stale file one level down goes; the symlinked
    // directory's stale file stays.
    let out = pidguard().args(["sweep", "-r"]).arg(d).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains(&format!(
            "redis/deeper/gone (PID {dead}): stale (PID {dead} is gone): file removed"
        )),
        "{}",
        text(&out)
    );
    assert!(!d.join("redis/deeper/gone.pid").exists());
    assert!(elsewhere.path().join("victim.pid").exists());
    assert!(d.join("redis/redis-server.pid").exists() && alive(target.pid()));
}

#[test]
fn wait_never_speaks_of_keeping_the_file_and_stale_says_which_kind() {
    let dir = tmp();
    let p = dir.path().join("w.pid");
    let target = sleeper();
    write_pidfile(&p, &format!("{}\n", target.pid()));
    let out = pidguard()
        .args(["wait", "--timeout", "100ms", "-p"])
        .arg(&p)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let said = text(&out);
    assert!(said.contains("is still running"), "{said}");
    assert!(
        !said.contains("kept") && !said.contains("file is"),
        "{said}"
    );

    // `status` in words and in JSON: the stale file says which kind.
    let status = |kind: &str, words: &[&str]| {
        let out = pidguard().args(["status", "-p"]).arg(&p).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        for w in words {
            assert!(text(&out).contains(w), "{w}: {}", text(&out));
        }
        let out = pidguard()
            .args(["status", "--json", "-p"])
            .arg(&p)
            .output()
            .unwrap();
        let v = one_object(&out);
        assert_eq!(v["stale_kind"], kind, "{v}");
    };
    // Gone: the process exited.
    let dead = dead_pid();
    write_pidfile(&p, &format!("{dead}\n"));
    status("gone", &[&format!("stale (PID {dead} is gone)")]);
    // Another process: the PID was reused (the file is older than it).
    write_pidfile(&p, &format!("{}\n", target.pid()));
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    let f = std::fs::File::options().write(true).open(&p).unwrap();
    f.set_modified(old).unwrap();
    status(
        "other-process",
        &["now belongs to another process", "reused"],
    );
    assert!(alive(target.pid()));
}

#[test]
fn a_missing_home_is_not_an_invalid_name() {
    if !rustix::process::geteuid().is_root() {
        skipped("needs root to run as another user without a home");
        return;
    }
    // UID 65534 with no environment at all: no XDG_RUNTIME_DIR, no HOME,
    // and (on a test machine) no /run/user/65534.
    if Path::new("/run/user/65534").exists() {
        skipped("/run/user/65534 exists");
        return;
    }
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "env",
            "-i",
        ])
        .arg(bin())
        .args(["path", "--name", "app"])
        .output();
    let Ok(out) = out else {
        testkit::missing("setpriv");
        return;
    };
    assert_eq!(out.status.code(), Some(73), "{}", text(&out));
    let said = text(&out);
    assert!(!said.contains("invalid PID file name"), "{said}");
    assert!(
        said.contains("no standard location") && said.contains("XDG_RUNTIME_DIR"),
        "{said}"
    );
}

/// A process whose command line holds a newline, control characters and
/// bytes that are not UTF-8 (python3 re-executing itself with such an
/// argv), named in a PID file: `list` keeps one row for it, the command
/// escaped; `list --json` gives the command line back exactly.
#[test]
fn a_hostile_command_line_keeps_one_row_and_comes_back_exactly() {
    if !have_tool("python3", "-V") {
        return;
    }
    let dir = tmp();
    let d = dir.path();
    let argv: [&[u8]; 6] = [
        b"hostile\nsshd 1 running verified",
        b"-c",
        b"import time; time.sleep(30)",
        b"esc\x1b[2J\tx",
        b"bad\xff\xfebyte",
        b"del\x7f",
    ];
    // Each argument as Python's bytes([…]) of its byte values.
    let py_argv: Vec<String> = argv.iter().map(|a| format!("bytes({a:?})")).collect();
    let script = format!(
        "import os, sys\nos.execv(sys.executable, [{}])\n",
        py_argv.join(", ")
    );
    let target = Owned::spawn(Command::new("python3").args(["-c", &script]));
    let joined = argv.join(&b' ');
    wait_for("the re-executed python", || {
        std::fs::read(format!("/proc/{}/cmdline", target.pid()))
            .is_ok_and(|c| c.starts_with(argv[0]) && c.ends_with(b"del\x7f\0"))
    });
    write_pidfile(&d.join("hostile.pid"), &format!("{}\n", target.pid()));

    let out = pidguard().arg("list").arg(d).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let s = String::from_utf8(out.stdout).expect("list's table is text");
    let lines: Vec<&str> = s.lines().collect();
    assert_eq!(lines.len(), 2, "a header and one row: {s}");
    let row = lines[1];
    assert!(row.starts_with("hostile "), "{row}");
    assert!(row.contains(" running "), "{row}");
    assert!(
        row.ends_with(
            "hostile\\nsshd 1 running verified -c import time; time.sleep(30) \
             esc\\x1B[2J\\tx bad\\xFF\\xFEbyte del\\x7F"
        ),
        "{row}"
    );
    assert!(!s.chars().any(|c| c.is_control() && c != '\n'), "{s:?}");

    let out = pidguard().args(["list", "--json"]).arg(d).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let v = one_object(&out);
    let row = &v["entries"][0];
    assert_eq!(v["entries"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(row["state"], "running", "{row}");
    assert_eq!(bytes_of(row, "command"), joined, "{row}");
    assert!(row.get("command_hex").is_some(), "not UTF-8: {row}");
    assert!(
        row["command"]
            .as_str()
            .unwrap()
            .contains("bad\\xFF\\xFEbyte"),
        "{row}"
    );
}

/// `list --recursive` failing part-way (a subdirectory that can be opened
/// but not searched): the object already begun ends with the failure's
/// `error`, `exit` and `path` after the entries listed, still one object;
/// the human form keeps its rows and says what failed on standard error.
#[test]
fn list_failing_part_way_ends_its_object_with_the_error() {
    use std::os::unix::fs::PermissionsExt;
    let root = rustix::process::geteuid().is_root();
    // Root searches any directory: the listing runs as nobody then.
    let as_nobody = |args: &[&OsStr]| -> Output {
        let mut c = if root {
            let mut c = Command::new("setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
                .arg(bin());
            c
        } else {
            pidguard()
        };
        c.args(args).output().unwrap()
    };
    if root && !have_tool("setpriv", "--version") {
        return;
    }
    let dir = tmp();
    let d = dir.path();
    std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    let target = sleeper();
    write_pidfile(&d.join("a.pid"), &format!("{}\n", target.pid()));
    let z = d.join("z");
    std::fs::create_dir(&z).unwrap();
    write_pidfile(&z.join("inner.pid"), &format!("{}\n", target.pid()));
    // Readable (it opens), not searchable (its entries cannot be read).
    std::fs::set_permissions(&z, std::fs::Permissions::from_mode(0o444)).unwrap();

    let out = as_nobody(&[os("list"), os("--json"), os("-r"), d.as_os_str()]);
    assert_eq!(out.status.code(), Some(77), "{}", text(&out));
    let v = one_object(&out);
    assert_eq!(bytes_of(&v, "dir"), d.as_os_str().as_bytes(), "{v}");
    let names = entry_names(&v);
    assert_eq!(names, ["a"], "the entries before the failure: {v}");
    assert_eq!(v["exit"], 77, "{v}");
    assert_eq!(bytes_of(&v, "path"), z.as_os_str().as_bytes(), "{v}");
    let error = v["error"].as_str().unwrap();
    assert!(
        error.contains(z.to_str().unwrap()) && error.contains("Permission denied"),
        "{v}"
    );
    let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["dir", "entries", "error", "exit", "path"], "{v}");

    let out = as_nobody(&[os("list"), os("-r"), d.as_os_str()]);
    assert_eq!(out.status.code(), Some(77), "{}", text(&out));
    let rows = String::from_utf8(out.stdout.clone()).unwrap();
    assert_eq!(rows.lines().count(), 2, "a header and the row of a: {rows}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(error),
        "{}",
        text(&out)
    );
}

/// `--json` after `--` is the supervised command's argument, not
/// pidguard's: a usage error then prints clap's message only, no object.
/// And `run --exec --json` prints nothing of its own when the command runs
/// (pidguard becomes it), one error object when it cannot.
#[test]
fn json_after_the_double_dash_is_the_commands_and_exec_prints_nothing() {
    let dir = tmp();
    let p = dir.path().join("app.pid");
    let ps = p.to_str().unwrap();
    let out = pidguard()
        .args(["run", "--no-such-option", "-p", ps, "--", "echo", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(out.stdout.is_empty(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--no-such-option"),
        "{}",
        text(&out)
    );
    // Before `--`, it is pidguard's.
    let out = pidguard()
        .args(["run", "--json", "--no-such-option", "-p", ps, "--", "echo"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let v = one_object(&out);
    assert_eq!(v["exit"], 2, "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("--no-such-option"),
        "{v}"
    );
    // A supervised command's own `--json` reaches it, untouched.
    let out = pidguard()
        .args(["run", "-p", ps, "--", "echo", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(out.stdout, b"--json\n");

    // run --exec --json: the command's output only.
    let out = pidguard()
        .args(["run", "--exec", "--json", "-p", ps, "--", "echo", "hello"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(out.stdout, b"hello\n", "{}", text(&out));
    let out = pidguard()
        .args([
            "run",
            "--exec",
            "--json",
            "-p",
            ps,
            "--",
            "/nonexistent/cmd",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(127), "{}", text(&out));
    assert_eq!(one_object(&out)["exit"], 127);
}
