//! `list` and `sweep` over a directory holding every kind of entry.
//!
//! Runs that must signal nothing go under strace with every signal-sending
//! syscall failing (EPERM). The `--kill` run must signal the orphan, so it
//! runs with the broadcast-capable calls (kill, tgkill, tkill,
//! rt_sigqueueinfo) failing and only pidfd_send_signal (which can reach
//! nothing but the pinned process) allowed; the test then checks that
//! exactly the orphan died.
#![cfg(unix)]

use testkit::*;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use pidguard::Status;

struct Fixture {
    dir: tempfile::TempDir,
    victim: PathBuf,
    live: Owned,
    orphan: Owned,
    bare: Owned,
    newcomer: Owned,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A live, locked holder.
    let live = Owned(
        Command::new(bin())
            .args(["run", "--exec", "-p"])
            .arg(d.join("live.pid"))
            .args(["--", "sleep", "30"])
            .spawn()
            .unwrap(),
    );
    // Locked, and exec'd: the lock is taken before the exec, so the
    // command line could still be pidguard's own at the first look.
    let live_pid = live.0.id();
    wait_for("the live holder", || {
        matches!(
            pidguard::status(d.join("live.pid")),
            Status::Running { locked: true, .. }
        ) && std::fs::read_to_string(format!("/proc/{live_pid}/comm")).is_ok_and(|c| c == "sleep\n")
    });
    // A stale file: its process is gone.
    let mut gone = Command::new("true").spawn().unwrap();
    let gone_pid = gone.id();
    gone.wait().unwrap();
    write_pidfile(&d.join("stale.pid"), &format!("{gone_pid}\n"));
    // A reused PID: the process started an hour after the file was written.
    let newcomer = sleeper();
    write_pidfile(&d.join("reused.pid"), &format!("{}\n", newcomer.pid()));
    File::options()
        .write(true)
        .open(d.join("reused.pid"))
        .unwrap()
        .set_modified(SystemTime::now() - Duration::from_secs(3600))
        .unwrap();
    // An orphan: unlocked, alive, started before its file was written,
    // its executable recorded (only such an orphan is ever stopped).
    let orphan = sleeper();
    write_pidfile(&d.join("orphan.pid"), &format!("{}\n", orphan.pid()));
    let sleep_exe = std::fs::read_link(format!("/proc/{}/exe", orphan.pid())).unwrap();
    write_pidfile(
        &d.join("orphan.meta"),
        &format!("exe={}\n", sleep_exe.display()),
    );
    // An orphan of a daemon with no metadata: never signalled.
    let bare = sleeper();
    write_pidfile(&d.join("bare.pid"), &format!("{}\n", bare.pid()));
    // Garbage, a symlink to a victim, a subdirectory, an unrelated file.
    write_pidfile(&d.join("garbage.pid"), "banana\n");
    let victim = d.join("victim.txt");
    write_pidfile(&victim, "precious\n");
    std::os::unix::fs::symlink(&victim, d.join("link.pid")).unwrap();
    std::fs::create_dir(d.join("sub.pid")).unwrap();
    write_pidfile(&d.join("notes.txt"), "hello\n");
    Fixture {
        dir,
        victim,
        live,
        orphan,
        bare,
        newcomer,
    }
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn list_classifies_every_entry() {
    let f = fixture();
    let d = f.dir.path();
    let out = Command::new(bin())
        .arg("list")
        .arg("--json")
        .arg(d)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // One object; its entries in an array.
    let all: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(all["dir"], d.to_str().unwrap());
    let rows = all["entries"].as_array().unwrap();
    let get = |name: &str| {
        rows.iter()
            .find(|r| r["name"] == name)
            .unwrap_or_else(|| panic!("{name}: {rows:?}"))
    };
    assert_eq!(get("live")["state"], "running");
    assert_eq!(get("live")["identity"], "verified");
    assert_eq!(get("live")["pid"], f.live.pid());
    assert!(get("live")["command"]
        .as_str()
        .unwrap()
        .contains("sleep 30"));
    assert_eq!(get("stale")["state"], "stale");
    assert_eq!(get("reused")["state"], "stale");
    assert_eq!(get("reused")["identity"], "mismatched");
    assert_eq!(get("orphan")["state"], "running");
    assert_eq!(get("orphan")["identity"], "consistent");
    assert_eq!(get("stale")["stale_kind"], "gone");
    assert_eq!(get("reused")["stale_kind"], "other-process");
    // What the reused PID runs now.
    assert!(get("reused")["command"].as_str().unwrap().contains("sleep"));
    assert_eq!(get("orphan")["locked"], false);
    assert_eq!(get("garbage")["state"], "unknown");
    assert_eq!(get("link.pid")["skipped"], "symlink");
    assert_eq!(get("sub.pid")["skipped"], "directory");
    assert_eq!(get("notes.txt")["skipped"], "not a PID file");
    let human = Command::new(bin()).arg("list").arg(d).output().unwrap();
    assert!(String::from_utf8_lossy(&human.stdout).contains("skipped (symlink)"));
}

#[test]
fn sweep_dry_run_then_sweep_then_kill() {
    let f = fixture();
    let d = f.dir.path();
    let ds = d.to_str().unwrap();
    let before = names(d);

    // --dry-run: says what it would do, changes nothing, signals nothing.
    let Some((out, signals)) = under_strace(ALL_SIGNALS, &["sweep", "--dry-run", "--kill", ds])
    else {
        return;
    };
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(signals.is_empty(), "{signals:?}");
    let said = text(&out);
    assert!(said.contains("is gone): would remove the file"), "{said}");
    assert!(
        said.contains("orphan: would stop the process and remove the file"),
        "{said}"
    );
    assert!(
        !said.contains("file removed") && !said.contains("stopped,"),
        "{said}"
    );
    assert_eq!(names(d), before);

    // A plain sweep: only the stale file goes (its process is gone); the
    // reused PID's file stays (a live process whose only contrary evidence
    // is timing keeps its file); nothing is signalled.
    let (out, signals) = under_strace(ALL_SIGNALS, &["sweep", "--json", ds]).unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(signals.is_empty(), "{signals:?}");
    let mut after: Vec<String> = before.clone();
    after.retain(|n| n != "stale.pid");
    assert_eq!(names(d), after);
    assert!(
        text(&out).contains("clock was stepped"),
        "the reused PID's file is kept, saying a clock step can cause it: {}",
        text(&out)
    );
    assert!(alive(f.newcomer.pid()) && alive(f.orphan.pid()) && alive(f.live.pid()));

    // --kill: the orphan is stopped and its file removed; nothing else.
    let (out, _) = under_strace(
        BROADCAST_CAPABLE,
        &["sweep", "--kill", "--schedule", "TERM/5", ds],
    )
    .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("orphan: process stopped"),
        "{}",
        text(&out)
    );
    let mut orphan = f.orphan;
    let status = orphan.0.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(15)
    );
    after.retain(|n| n != "orphan.pid");
    assert_eq!(names(d), after);
    // The orphan without metadata (no recorded exe) was not signalled.
    assert!(alive(f.newcomer.pid()) && alive(f.live.pid()) && alive(f.bare.pid()));
    assert!(
        text(&out).contains("records no executable"),
        "{}",
        text(&out)
    );
    assert_eq!(std::fs::read_to_string(&f.victim).unwrap(), "precious\n");
    assert!(d.join("garbage.pid").exists() && d.join("link.pid").exists());
    drop(f.live);
}
