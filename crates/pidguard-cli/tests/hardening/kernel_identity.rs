//! Identity proved by the kernel (issue 20): every PID file pidguard
//! writes records its owner's pidfs inode (`user.pidguard.pidfd_ino`), and
//! a reader that finds a record the kernel confirms or refutes trusts it
//! over locks and clocks. Provoked for real: PID reuse in a fresh PID
//! namespace, a clock step (`touch -d`), a process that closed its lock, a
//! foreign `echo $PID >`, and ramfs (no user extended attributes).

use std::path::Path;
use std::process::{Command, Output};

use crate::reuse::{crashed_holder, newcomer, started, under_strace, Namespace};
use crate::summary;
use testkit::{
    assert_records_owner, bin, kernel_identity_unavailable, kernel_record, pid_in, pid_in_where,
    pidfs_ino, pidguard, plant_record, run_true, sleeper, text, tmp, wait_for, Owned, RECORD_ATTR,
};

fn json(out: &Output) -> serde_json::Value {
    let first = String::from_utf8_lossy(&out.stdout);
    let first = first.lines().next().unwrap_or_default().to_owned();
    serde_json::from_str(&first).unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(out)))
}

/// `touch -d WHEN path`: the file's time as a clock step would leave it.
fn touch(path: &Path, when: &str) {
    let ok = Command::new("touch")
        .args(["-d", when])
        .arg(path)
        .status()
        .unwrap();
    assert!(ok.success(), "touch -d {when}");
}

/// `status --json` of `path`, run by `cmd` (in a namespace or not).
fn status_json(mut cmd: Command, path: &Path) -> serde_json::Value {
    let out = cmd
        .args(["status", "--json", "-p"])
        .arg(path)
        .output()
        .unwrap();
    json(&out)
}

#[test]
fn a_reused_pid_is_proved_by_the_kernel_with_and_without_a_clock_step() {
    let scenario = "kernel-identity-reuse";
    if let Some(why) = Namespace::unavailable() {
        return summary::skipped(scenario, &why);
    }
    if !testkit::have_tool("strace", "-V") {
        return summary::skipped(scenario, "strace is not installed (the EPERM seam)");
    }
    let dir = tmp();
    if let Some(why) = kernel_identity_unavailable(dir.path()) {
        return summary::skipped(scenario, &why);
    }
    let (pa, pb, pc) = (
        dir.path().join("a.pid"),
        dir.path().join("b.pid"),
        dir.path().join("c.pid"),
    );
    let ns = Namespace::start();

    // The holder writes and locks a.pid and b.pid, then crashes; its files
    // stay, unlocked, not backdated: the newcomer starts within the
    // start-time check's one-second tolerance, so the clocks cannot tell it
    // from the owner.
    let mut recorded = 0;
    let (n, _) = crashed_holder(&ns, &pa, &pb, |holder| {
        recorded = pidfs_ino(holder).expect("pidfs");
        let n = ns.ns_pid(holder).unwrap();
        assert_eq!(kernel_record(&pa), Some((n, recorded)), "a.pid's record");
        assert_eq!(kernel_record(&pb), Some((n, recorded)), "b.pid's record");
    });
    let (newcomer_cmd, newcomer) = newcomer(&ns, n);
    let birth = started(newcomer).expect("the newcomer runs");
    let newcomer_alive = || started(newcomer) == Some(birth);
    assert_ne!(pidfs_ino(newcomer), Some(recorded), "a new identity");

    // A clock step: b.pid now looks written an hour after the newcomer
    // started. c.pid names the same PID without a record, written after the
    // newcomer started: only the clocks can judge it.
    touch(&pb, "+1 hour");
    std::fs::write(&pc, format!("{n}\n")).unwrap();

    for (path, step) in [(&pa, "no clock step"), (&pb, "a clock step")] {
        let v = status_json(ns.command(bin()), path);
        assert_eq!(v["state"], "stale", "{step}: {v}");
        assert_eq!(v["identity"], "mismatched", "{step}: {v}");
        assert_eq!(v["evidence"], "kernel identity", "{step}: {v}");
        let detail = v["identity_detail"].as_str().unwrap();
        assert!(
            detail.contains("reused") && detail.contains(&recorded.to_string()),
            "{step}: {v}"
        );
    }
    let v = status_json(ns.command(bin()), &pc);
    assert_eq!(v["evidence"], "consistent checks", "without a record: {v}");
    assert_ne!(v["identity"], "verified", "without a record: {v}");

    // Never signalled, by stop or signal, with or without the clock step.
    for path in [&pa, &pb] {
        for args in [
            &["signal", "--json", "TERM", "-p"][..],
            &["stop", "--json", "-p"],
        ] {
            let mut cmd = ns.command(bin());
            cmd.args(args).arg(path);
            let (out, signals) = under_strace(&cmd).unwrap();
            assert!(
                signals.is_empty(),
                "{args:?} {}: tried to signal: {signals:?}\n{}",
                path.display(),
                text(&out)
            );
            assert!(newcomer_alive(), "{args:?} left the newcomer alone");
            if args[0] == "stop" {
                assert_eq!(out.status.code(), Some(1), "{}", text(&out));
            }
            assert!(path.exists(), "{args:?} keeps a live process's file");
        }
        // Not taken over either: the recorded process is not proved gone
        // (a writer in another PID namespace numbers processes otherwise).
        let out = ns
            .command(bin())
            .args(["run", "-p"])
            .arg(path)
            .args(["--", "true"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(75), "{}", text(&out));
        assert_eq!(std::fs::read_to_string(path).unwrap(), n.to_string());
    }
    // sweep keeps them too (not proved gone), and sends nothing.
    let mut sweep = ns.command(bin());
    sweep.args(["sweep", "--json"]).arg(dir.path());
    let (out, signals) = under_strace(&sweep).unwrap();
    assert!(signals.is_empty(), "sweep tried to signal: {signals:?}");
    assert!(
        pa.exists() && pb.exists(),
        "sweep kept them: {}",
        text(&out)
    );
    assert!(newcomer_alive());
    drop(newcomer_cmd);
    drop(ns);
    summary::passed(
        scenario,
        &format!(
            "PID {n} reused in a PID namespace within a second, with and without a clock step \
             (touch -d '+1 hour'): status said mismatched by kernel identity (pidfs inode \
             {recorded} recorded), stop and signal under the strace EPERM seam attempted no \
             signal, stop exited 1 and kept the files, run refused to take them over (75), sweep \
             kept them; the \
             same PID without a record was left to the consistency checks"
        ),
    );
}

/// `pidguard run --exec -p path -- command…`, owned.
fn exec_holder(path: &Path, command: &[&str]) -> Owned {
    Owned::spawn(
        pidguard()
            .args(["run", "--exec", "-p"])
            .arg(path)
            .arg("--")
            .args(command),
    )
}

/// Closes every descriptor above 2, then sleeps: a daemon that drops the
/// lock it inherited.
const CLOSE_FDS_THEN_SLEEP: &str =
    "for fd in $(ls /proc/$$/fd); do [ \"$fd\" -gt 2 ] && eval \"exec $fd>&-\"; done; exec sleep 30";

/// `run --exec` of a process that then drops the lock: its file stays,
/// unlocked, naming it, with its record. Returns it once it sleeps.
fn unlocked_owner(path: &Path) -> Owned {
    let owner = exec_holder(path, &["bash", "-c", CLOSE_FDS_THEN_SLEEP]);
    let pid = owner.pid();
    wait_for("the owner to drop its lock", || {
        matches!(
            pidguard::status(path),
            pidguard::Status::Running { locked: false, pid: q } if q.get() == pid
        ) && std::fs::read_to_string(format!("/proc/{pid}/comm")).ok() == Some("sleep\n".into())
    });
    assert_records_owner(path, pid);
    owner
}

#[test]
fn the_owner_without_its_lock_is_proved_by_its_record_even_after_a_clock_step() {
    let scenario = "kernel-identity-owner";
    let dir = tmp();
    if let Some(why) = kernel_identity_unavailable(dir.path()) {
        return summary::skipped(scenario, &why);
    }
    let p = dir.path().join("d.pid");
    let owner = unlocked_owner(&p);
    // A clock step: the file now looks written an hour before the owner
    // started, which the start-time check reads as a reused PID.
    touch(&p, "-1 hour");
    let v = status_json(pidguard(), &p);
    assert_eq!(v["state"], "running", "{v}");
    assert_eq!(v["locked"], false, "{v}");
    assert_eq!(v["identity"], "verified", "{v}");
    assert_eq!(v["evidence"], "kernel identity", "{v}");
    let out = pidguard()
        .args(["list", "--json"])
        .arg(dir.path())
        .output()
        .unwrap();
    let row = json(&out)["entries"][0].clone();
    assert_eq!(row["evidence"], "kernel identity", "list: {row}");
    assert_eq!(row["identity"], "verified", "list: {row}");

    // Without the record the clocks decide, and they are wrong.
    let saved = {
        let mut buf = [0u8; 256];
        let n = rustix::fs::getxattr(&p, RECORD_ATTR, &mut buf[..]).unwrap();
        buf[..n].to_vec()
    };
    rustix::fs::removexattr(&p, RECORD_ATTR).unwrap();
    let v = status_json(pidguard(), &p);
    assert_eq!(v["identity"], "mismatched", "no record: {v}");
    assert_eq!(v["evidence"], "consistent checks", "no record: {v}");
    rustix::fs::setxattr(&p, RECORD_ATTR, &saved, rustix::fs::XattrFlags::empty()).unwrap();

    // Proved, so never taken over: 75, saying what proved it.
    let out = run_true(&p);
    assert_eq!(out.status.code(), Some(75), "{}", text(&out));
    assert!(
        text(&out).contains("kernel identity record"),
        "{}",
        text(&out)
    );

    // Proved, so stop signals it: it is gone, the file removed.
    let out = pidguard()
        .args(["stop", "--json", "-p"])
        .arg(&p)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(json(&out)["identity"], "verified", "{}", text(&out));
    let mut owner = owner;
    let _ = owner.0.wait();
    assert!(!p.exists(), "stop removes the owner's file");
    summary::passed(
        scenario,
        "a process that closed its lock, its file stepped an hour back: proved owner by its \
         kernel identity record (status, list), stopped; without the record the clocks called it \
         reused",
    );
}

#[test]
fn a_file_rewritten_by_another_tool_is_never_judged_by_its_stale_record() {
    let scenario = "kernel-identity-rewrite";
    let dir = tmp();
    if let Some(why) = kernel_identity_unavailable(dir.path()) {
        return summary::skipped(scenario, &why);
    }
    let sh = |script: String| {
        let ok = Command::new("sh").arg("-c").arg(script).status().unwrap();
        assert!(ok.success());
    };
    let other = sleeper();
    let b = other.pid();

    // Locked: the owner A holds the lock. `echo $PID >` truncates in place:
    // the attribute stays, naming A, while the file now names B. The lock
    // decides: its holder A is named (verified by the lock), B never.
    let p = dir.path().join("locked.pid");
    let owner = exec_holder(&p, &["sleep", "30"]);
    let a = owner.pid();
    pid_in_where(&p, |pid| pid == a);
    assert_records_owner(&p, a);
    sh(format!("echo {b} > '{}'", p.display()));
    assert_eq!(kernel_record(&p).map(|r| r.0), Some(a), "the record stayed");
    let v = status_json(pidguard(), &p);
    assert_eq!(v["pid"], a, "the lock's holder is named: {v}");
    assert_eq!(v["file_pid"], b, "{v}");
    assert_eq!(v["identity"], "verified", "{v}");
    assert_eq!(v["evidence"], "lock", "{v}");
    drop(owner);

    // Unlocked: the owner A closed its lock. Rewritten to name B, the
    // record (naming A) is ignored: the consistency checks judge B.
    let p = dir.path().join("unlocked.pid");
    let owner = unlocked_owner(&p);
    let a = owner.pid();
    sh(format!("echo {b} > '{}'", p.display()));
    assert_eq!(kernel_record(&p).map(|r| r.0), Some(a), "the record stayed");
    let v = status_json(pidguard(), &p);
    assert_eq!(v["pid"], b, "{v}");
    assert_eq!(v["locked"], false, "{v}");
    assert_ne!(
        v["identity"], "verified",
        "a stale record proves nothing: {v}"
    );
    assert_eq!(v["evidence"], "consistent checks", "{v}");

    // Written back with the owner's PID: the record names that process
    // again, and it is still the one at the PID.
    sh(format!("echo {a} > '{}'", p.display()));
    let v = status_json(pidguard(), &p);
    assert_eq!(v["pid"], a, "{v}");
    assert_eq!(v["identity"], "verified", "{v}");
    assert_eq!(v["evidence"], "kernel identity", "{v}");

    // Replaced by rename (a new inode, no attribute): the record is gone.
    let new = dir.path().join("unlocked.pid.new");
    std::fs::write(&new, format!("{b}\n")).unwrap();
    std::fs::rename(&new, &p).unwrap();
    assert_eq!(kernel_record(&p), None);
    let v = status_json(pidguard(), &p);
    assert_eq!(v["evidence"], "consistent checks", "{v}");
    drop(owner);
    drop(other);
    summary::passed(
        scenario,
        "a file rewritten by `echo $PID >` keeps a record naming the old PID: locked, the \
         lock's holder is named (by the lock); unlocked, the record is ignored and the \
         consistency checks judge the new PID; written back with the recorded PID: proved \
         again by the kernel; replaced by rename: no record",
    );
}

#[test]
fn a_filesystem_without_user_xattrs_falls_back_cleanly() {
    let scenario = "kernel-identity-ramfs";
    if !summary::is_root() {
        return summary::skipped(scenario, "needs root (mount -t ramfs in a mount namespace)");
    }
    if !testkit::have_tool("unshare", "--version") {
        return summary::skipped(scenario, "unshare(1) is not installed (util-linux)");
    }
    let dir = tmp();
    let mnt = dir.path().join("ramfs");
    std::fs::create_dir(&mnt).unwrap();
    // In a private mount namespace: the mount goes away with it. A file
    // written new (run --exec), one taken over after its holder died
    // (run, supervise), and a status of each: verified by the lock, no
    // record, no error.
    let pg = bin();
    let script = format!(
        r#"set -e
mount -t ramfs ramfs "$1"
f="$1/x.pid"
"{pg}" run --exec -p "$f" -- "{pg}" status --json -p "$f"
"{pg}" run -p "$f" -- "{pg}" status --json -p "$f"
"#,
        pg = pg.display()
    );
    let out = Command::new("unshare")
        .args([
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            &script,
            "sh",
        ])
        .arg(&mnt)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{}", text(&out));
    for v in &lines {
        assert_eq!(v["state"], "running", "{v}");
        assert_eq!(v["identity"], "verified", "{v}");
        assert_eq!(v["evidence"], "lock", "no record on ramfs: {v}");
    }
    assert!(
        text(&out).lines().all(|l| !l.contains("warning")),
        "{}",
        text(&out)
    );
    summary::passed(
        scenario,
        "on ramfs (no user extended attributes) acquire and take-over work without a record; \
         identity is proved by the lock",
    );
}

#[test]
fn a_record_from_a_writer_without_authority_over_the_process_proves_nothing() {
    use std::os::unix::fs::PermissionsExt;
    let scenario = "kernel-identity-forged";
    if !summary::is_root() {
        return summary::skipped(
            scenario,
            "needs root (a file of another user, read by root)",
        );
    }
    if !testkit::have_tool("strace", "-V") {
        return summary::skipped(scenario, "strace is not installed (the EPERM seam)");
    }
    let dir = tmp();
    if let Some(why) = kernel_identity_unavailable(dir.path()) {
        return summary::skipped(scenario, &why);
    }
    // Root's process; anyone can learn its pidfs inode and write a record
    // naming it into a file of their own.
    let victim = sleeper();
    let v = victim.pid();
    let ino = pidfs_ino(v).unwrap();
    let forged = |name: &str, uid: u32, mode: u32| {
        let p = dir.path().join(name);
        std::fs::write(&p, format!("{v}\n")).unwrap();
        plant_record(&p, v, ino);
        std::os::unix::fs::chown(&p, Some(uid), None).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    };
    let others = forged("nobody.pid", 65534, 0o644);
    let group_writable = forged("group.pid", 0, 0o664);
    for p in [&others, &group_writable] {
        let v = status_json(pidguard(), p);
        assert_ne!(v["identity"], "verified", "{}: {v}", p.display());
        assert_ne!(v["evidence"], "kernel identity", "{}: {v}", p.display());
        let mut stop = pidguard();
        stop.args(["stop", "--json", "-p"]).arg(p);
        let (out, signals) = under_strace(&stop).unwrap();
        assert!(signals.is_empty(), "{}: tried {signals:?}", p.display());
        assert_eq!(out.status.code(), Some(77), "{}", text(&out));
    }
    // The same record in root's own file, writable by root alone, proves
    // the owner.
    let own = forged("root.pid", 0, 0o644);
    let v = status_json(pidguard(), &own);
    assert_eq!(v["evidence"], "kernel identity", "{v}");
    assert_eq!(v["identity"], "verified", "{v}");
    assert!(started(victim.pid()).is_some(), "the victim still runs");
    summary::passed(
        scenario,
        "a correct record naming root's process in a file owned by another user, and in a \
         group-writable file: not a proof; root's stop refused (77) and attempted no signal \
         (strace seam); in root's own file the record proves the owner",
    );
}

/// The host PIDs of the direct children of host PID `parent`.
fn children(parent: i32) -> Vec<i32> {
    std::fs::read_to_string(format!("/proc/{parent}/task/{parent}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

#[test]
fn a_record_read_through_a_foreign_proc_decides_nothing() {
    let scenario = "kernel-identity-foreign-proc";
    if let Some(why) = Namespace::unavailable() {
        return summary::skipped(scenario, &why);
    }
    let dir = tmp();
    if let Some(why) = kernel_identity_unavailable(dir.path()) {
        return summary::skipped(scenario, &why);
    }
    let (p, go) = (dir.path().join("f.pid"), dir.path().join("go"));
    // A fresh PID namespace *without* its own /proc: the host's /proc
    // numbers other processes than this namespace's PIDs.
    let script = r#"sleep 30 &
echo $! > "$1"
while [ ! -e "$2" ]; do sleep 0.05; done
"$3" status --json -p "$1"
kill $!
"#;
    // --kill-child: killed with unshare, the namespace goes with it.
    let mut inner = Owned::spawn(
        Command::new("unshare")
            .args(["--pid", "--fork", "--kill-child", "sh", "-c", script, "sh"])
            .arg(&p)
            .arg(&go)
            .arg(bin())
            .stdout(std::process::Stdio::piped()),
    );
    let n = pid_in(&p);
    // The sleeper's host PID: unshare → sh → sleep.
    let mut host = 0;
    wait_for("the inner sleeper", || {
        host = children(inner.pid())
            .into_iter()
            .flat_map(children)
            .find(|&c| {
                std::fs::read_to_string(format!("/proc/{c}/comm")).ok() == Some("sleep\n".into())
            })
            .unwrap_or(0);
        host > 0
    });
    // A correct record for it (its pidfs inode is the same in every
    // namespace), in a file root owns, writable by root alone.
    let ino = pidfs_ino(host).unwrap();
    plant_record(&p, n, ino);
    // Control: the same process named by its host PID, read with the
    // host's own /proc, is proved by the same kind of record.
    let hp = dir.path().join("host.pid");
    std::fs::write(&hp, format!("{host}")).unwrap();
    plant_record(&hp, host, ino);
    let c = status_json(pidguard(), &hp);
    assert_eq!(c["identity"], "verified", "control, the host's /proc: {c}");
    assert_eq!(c["evidence"], "kernel identity", "control: {c}");
    // Now the namespace's pidguard reads its file.
    std::fs::write(&go, "").unwrap();
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut inner.0.stdout.take().unwrap(), &mut stdout).unwrap();
    let _ = inner.0.wait();
    drop(inner);
    let first = stdout.lines().next().unwrap_or_default();
    let v: serde_json::Value =
        serde_json::from_str(first).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"));
    assert_ne!(
        v["identity"], "verified",
        "a foreign /proc proves nothing: {v}"
    );
    assert_ne!(v["evidence"], "kernel identity", "{v}");
    summary::passed(
        scenario,
        &format!(
            "in a PID namespace without its own /proc, a correct record for PID {n} (pidfs inode \
             {ino}) decided nothing: identity {}, evidence {}",
            v["identity"], v["evidence"]
        ),
    );
}

#[test]
fn a_record_never_makes_a_kernel_thread_an_owner() {
    let scenario = "kernel-identity-kernel-thread";
    if !testkit::have_tool("strace", "-V") {
        return summary::skipped(scenario, "strace is not installed (the EPERM seam)");
    }
    let dir = tmp();
    if let Some(why) = kernel_identity_unavailable(dir.path()) {
        return summary::skipped(scenario, &why);
    }
    // kthreadd (PID 2 where this PID namespace is the first one).
    let is_kthreadd = std::fs::read_to_string("/proc/2/comm").ok() == Some("kthreadd\n".into());
    let Some(ino) = pidfs_ino(2).filter(|_| is_kthreadd) else {
        return summary::skipped(scenario, "PID 2 is not kthreadd here (a PID namespace)");
    };
    // A correct record for it, in our own file, writable by us alone: the
    // writer had authority, and still a kernel thread owns no file.
    let p = dir.path().join("k.pid");
    std::fs::write(&p, "2").unwrap();
    plant_record(&p, 2, ino);
    let v = status_json(pidguard(), &p);
    assert_eq!(v["identity"], "mismatched", "{v}");
    assert!(
        v["identity_detail"]
            .as_str()
            .unwrap()
            .contains("kernel thread"),
        "{v}"
    );
    let mut stop = pidguard();
    stop.args(["stop", "--json", "-p"]).arg(&p);
    let (out, signals) = under_strace(&stop).unwrap();
    assert!(signals.is_empty(), "stop tried to signal: {signals:?}");
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    // A kernel thread is no owner: the file is taken over (as without a
    // record), and the new record names the new owner.
    let out = run_true(&p);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    summary::passed(
        scenario,
        "a correct record naming kthreadd in our own file: mismatched (a kernel thread), \
         stop attempted no signal (strace seam), run took the file over",
    );
}

/// Review of issue 20 (branch revpidfs): any user who can read a PID file
/// (pidguard's are 0644) can take its flock (flock(2) needs no write
/// access). On a file whose owner runs without its lock, proved by its
/// kernel identity record, that lock used to decide: `stop` named the
/// locker as the "verified" owner, signalled it, and once it exited removed
/// the file of the live, proved owner, exit 0.
#[test]
fn a_lock_taken_on_a_proved_owners_file_never_costs_the_owner_its_file() {
    let scenario = "kernel-identity-stolen-lock";
    if let Some(why) = Namespace::unavailable() {
        return summary::skipped(scenario, &why);
    }
    let dir = tmp();
    if let Some(why) = kernel_identity_unavailable(dir.path()) {
        return summary::skipped(scenario, &why);
    }
    // Every process involved runs in a PID namespace of its own: whatever
    // pidguard signals, it is one of ours.
    let ns = Namespace::start();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let p = dir.path().join("d.pid");

    // The owner: `run --exec` of a process that then drops its lock.
    let owner_cmd = Owned::spawn(
        ns.command(bin())
            .args(["run", "--exec", "-p"])
            .arg(&p)
            .args(["--", "bash", "-c", CLOSE_FDS_THEN_SLEEP]),
    );
    let owner = Namespace::child_of(owner_cmd.pid());
    wait_for("the owner to drop its lock", || {
        std::fs::read_to_string(format!("/proc/{owner}/comm")).ok() == Some("sleep\n".into())
    });
    let n = ns.ns_pid(owner).unwrap();
    assert_eq!(
        kernel_record(&p).map(|r| r.0),
        Some(n),
        "the owner's record"
    );
    let v = status_json(ns.command(bin()), &p);
    assert_eq!(v["pid"], n, "{v}");
    assert_eq!(v["evidence"], "kernel identity", "{v}");

    // Another user locks it: `flock -o` keeps the lock in flock itself.
    let locker_cmd = Owned::spawn(
        ns.command("setpriv")
            .args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
            .args(["flock", "-x", "-o"])
            .arg(&p)
            .args(["sleep", "30"]),
    );
    let locker = Namespace::child_of(locker_cmd.pid());
    wait_for("the other user's lock", || !testkit::lock_free(&p));
    let locker_birth = started(locker).expect("the locker runs");
    let owner_birth = started(owner).expect("the owner runs");

    // The kernel still proves the file's owner: it is named, not the locker.
    let v = status_json(ns.command(bin()), &p);
    assert_eq!(v["state"], "running", "{v}");
    assert_eq!(
        v["pid"], n,
        "the proved owner is named, not the locker: {v}"
    );
    assert_eq!(v["evidence"], "kernel identity", "{v}");

    // stop: the locker is never signalled, and the file is never removed
    // while its proved owner runs.
    let out = ns
        .command(bin())
        .args(["stop", "--json", "-p"])
        .arg(&p)
        .output()
        .unwrap();
    assert_eq!(
        started(locker),
        Some(locker_birth),
        "stop signalled the locker: {}",
        text(&out)
    );
    if started(owner) == Some(owner_birth) {
        assert!(
            p.exists(),
            "the live owner's file was removed: {}",
            text(&out)
        );
        assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    }
    // Held by the locker: never stale, never taken over.
    assert!(p.exists(), "a held lock's file was removed: {}", text(&out));
    drop(locker_cmd);
    drop(owner_cmd);
    drop(ns);
    summary::passed(
        scenario,
        "another user took the flock of a file whose owner runs without its lock, proved by \
         its kernel identity record: status named the owner (kernel identity), stop did not \
         signal the locker and did not remove the file",
    );
}

/// Review of issue 20 (branch revpidfs): `run --daemon --notify` took any
/// `MAINPID=` the daemon sent and wrote it, with that process's kernel
/// identity record, into the file: a daemon could name any process on the
/// system (systemd refuses a `MAINPID` outside the service), and the record
/// then "proved" it the owner, over the lock its real holder keeps.
#[test]
fn a_mainpid_outside_the_daemon_is_never_recorded_as_the_owner() {
    let scenario = "kernel-identity-foreign-mainpid";
    if !testkit::have_tool("python3", "-V") {
        return summary::skipped(scenario, "python3 is not installed (the notify client)");
    }
    let dir = tmp();
    let p = dir.path().join("n.pid");
    let me = dir.path().join("daemon.pid");
    // Not ours to name: a process the daemon did not start.
    let victim = sleeper();
    let v = victim.pid();
    const NOTIFY: &str = "import os,socket,sys; s=socket.socket(socket.AF_UNIX, \
        socket.SOCK_DGRAM); s.sendto(sys.argv[1].encode().replace(b'|', b'\\n'), \
        os.environ['NOTIFY_SOCKET'])";
    let script = format!(
        "echo $$ > '{}'; python3 -c \"{NOTIFY}\" 'MAINPID={v}|READY=1'; exec sleep 30",
        me.display()
    );
    let out = pidguard()
        .args(["run", "--daemon", "--notify", "--json", "-p"])
        .arg(&p)
        .args(["--", "sh", "-c", &script])
        .output()
        .unwrap();
    let daemon: i32 = std::fs::read_to_string(&me)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let named = std::fs::read_to_string(&p).unwrap_or_default();
    let status = status_json(pidguard(), &p);
    // The daemon is ours (it wrote its PID above): stop it before judging.
    testkit::signal(daemon, "KILL");
    assert_ne!(
        named.trim(),
        v.to_string(),
        "the file names a process the daemon did not start: {}",
        text(&out)
    );
    assert_ne!(kernel_record(&p).map(|r| r.0), Some(v), "recorded");
    assert_ne!(status["pid"], v, "{status}");
    assert!(
        text(&out).contains("MAINPID"),
        "the refusal names MAINPID: {}",
        text(&out)
    );
    drop(victim);
    summary::passed(
        scenario,
        "a --notify daemon sent MAINPID= of a process it did not start: refused, the file \
         (and its kernel identity record) never named it",
    );
}

/// Review of issue 20 (branch revpidfs): in a user namespace that does not
/// map them (`unshare -U`), every other user's UID reads as the overflow
/// UID (65534), the reader's own included; root keeps its real
/// credentials there (it may still signal root's processes). The record's
/// authority check compared those overflow UIDs: another user's forged
/// record naming root's process was taken as proof, over the clocks.
#[test]
fn a_record_is_not_trusted_through_uids_a_user_namespace_does_not_map() {
    let scenario = "kernel-identity-unmapped-uids";
    if !summary::is_root() {
        return summary::skipped(scenario, "needs root (a file of another user)");
    }
    if !testkit::have_tool("strace", "-V") {
        return summary::skipped(scenario, "strace is not installed (the EPERM seam)");
    }
    if !testkit::have_tool("unshare", "--version") {
        return summary::skipped(scenario, "unshare(1) is not installed (util-linux)");
    }
    let probe = Command::new("unshare").args(["-U", "true"]).output();
    if !probe.is_ok_and(|o| o.status.success()) {
        return summary::skipped(scenario, "unshare -U does not work here");
    }
    let dir = tmp();
    if let Some(why) = kernel_identity_unavailable(dir.path()) {
        return summary::skipped(scenario, &why);
    }
    // Root's process; UID 1000 forges a correct record naming it in a file
    // of its own, which claims to be written an hour after it started.
    let victim = sleeper();
    let v = victim.pid();
    let p = dir.path().join("forged.pid");
    std::fs::write(&p, format!("{v}\n")).unwrap();
    plant_record(&p, v, pidfs_ino(v).unwrap());
    std::os::unix::fs::chown(&p, Some(1000), Some(1000)).unwrap();
    touch(&p, "-1 hour");
    let in_userns = |args: &[&str]| {
        let mut c = Command::new("unshare");
        c.args(["-U", "--"]).arg(bin()).args(args).arg(&p);
        c
    };
    let out = in_userns(&["status", "--json", "-p"]).output().unwrap();
    let s = json(&out);
    assert_ne!(s["evidence"], "kernel identity", "{s}");
    assert_ne!(s["identity"], "verified", "{s}");
    let (out, signals) = under_strace(&in_userns(&["stop", "--json", "-p"])).unwrap();
    assert!(signals.is_empty(), "tried {signals:?}: {}", text(&out));
    assert!(started(v).is_some(), "the victim still runs");
    drop(victim);
    summary::passed(
        scenario,
        "in `unshare -U`, another user's forged record naming root's process (UIDs both read \
         65534): not a proof; stop attempted no signal (strace seam)",
    );
}

/// The row of `name` (a file's name without `.pid`) in `pidguard list DIR`'s
/// table: NAME, PID, STATE, IDENTITY, EVIDENCE, AGE, COMMAND…
fn list_row(dir: &Path, name: &str) -> Vec<String> {
    let out = pidguard().arg("list").arg(dir).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut lines = table.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        ["NAME", "PID", "STATE", "IDENTITY", "EVIDENCE", "AGE", "COMMAND"],
        "{table}"
    );
    lines
        .map(|l| l.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
        .find(|row| row.first().map(String::as_str) == Some(name))
        .unwrap_or_else(|| panic!("no row {name}: {table}"))
}

/// `pidguard status -p path`'s line.
fn status_line(path: &Path) -> String {
    let out = pidguard()
        .args(["status", "-p"])
        .arg(path)
        .output()
        .unwrap();
    text(&out)
}

/// From the host, `dir/NAME.pid`, written in a child PID namespace (where
/// its owner is `file_pid`): `status` (JSON and words), `list` and `pid`
/// name the owner by its host PID, decided by its kernel identity record,
/// the file `locked` or not.
fn host_names_owner(dir: &Path, name: &str, owner: i32, file_pid: i32, locked: bool) {
    let path = dir.join(format!("{name}.pid"));
    let v = status_json(pidguard(), &path);
    assert_eq!(v["state"], "running", "{name}: {v}");
    assert_eq!(
        v["pid"], owner,
        "{name}: named by its host PID, not PID {file_pid}: {v}"
    );
    assert_eq!(v["file_pid"], file_pid, "{name}: {v}");
    assert_eq!(v["locked"], locked, "{name}: {v}");
    assert_eq!(v["identity"], "verified", "{name}: {v}");
    assert_eq!(v["evidence"], "kernel identity", "{name}: {v}");
    let line = status_line(&path);
    let state = if locked {
        format!("running (PID {owner}, locked)")
    } else {
        format!("running (PID {owner}; the file is not locked)")
    };
    assert!(
        line.contains(&state) && line.contains("(by kernel identity)"),
        "{name}: {line}"
    );
    let row = list_row(dir, name);
    assert_eq!(row[1], owner.to_string(), "{name}: list: {row:?}");
    assert_eq!(row[4], "kernel", "{name}: list's EVIDENCE: {row:?}");
    let out = pidguard().args(["pid", "-p"]).arg(&path).output().unwrap();
    assert_eq!(
        text(&out).trim(),
        owner.to_string(),
        "{name}: pid prints the host PID"
    );
}

/// Issue 20's "even across PID namespaces once the holder's PID here is
/// known": a holder in a child PID namespace (a container sharing the
/// directory) writes its own file, with its PID there and its record; the
/// host reads it. The file's PID names another process on the host, or
/// none; the record proves the holder, named by its host PID.
#[test]
fn a_holder_in_a_child_pid_namespace_is_proved_by_its_record_from_the_host() {
    let scenario = "kernel-identity-across-namespaces";
    if let Some(why) = Namespace::unavailable() {
        return summary::skipped(scenario, &why);
    }
    if !testkit::have_tool("strace", "-V") {
        return summary::skipped(scenario, "strace is not installed (the EPERM seam)");
    }
    let dir = tmp();
    if let Some(why) = kernel_identity_unavailable(dir.path()) {
        return summary::skipped(scenario, &why);
    }
    let (p1, p2) = (dir.path().join("sup.pid"), dir.path().join("own.pid"));

    // 1. Locked: plain supervised `run` as PID 1 of its namespace
    // (`unshare --pid --fork --mount-proc`); the file names its command
    // there, and records the command's identity, not pidguard's.
    let a = Namespace::start_with(&[
        bin().to_str().unwrap(),
        "run",
        "-p",
        p1.to_str().unwrap(),
        "--",
        "sleep",
        "60",
    ]);
    let supervisor = a.init();
    let command = Namespace::child_of(supervisor);
    let n1 = a.ns_pid(command).unwrap();
    pid_in_where(&p1, |pid| pid == n1);
    wait_for("the command to hold the lock", || {
        std::fs::read_to_string(format!("/proc/{command}/comm")).ok() == Some("sleep\n".into())
            && testkit::holds_file(command, &p1)
            && !testkit::lock_free(&p1)
    });
    let ino = pidfs_ino(command).unwrap();
    assert_eq!(
        kernel_record(&p1),
        Some((n1, ino)),
        "the record names the command (PID {n1} there), not the supervisor (PID 1, pidfs \
         inode {:?})",
        pidfs_ino(supervisor)
    );
    host_names_owner(dir.path(), "sup", command, n1, true);
    // stop and signal pin and signal it alone (the strace seam refuses).
    crate::containers::stop_targets_only(&p1, command, n1);
    // Without the record the lock still proves a holder: the command, or
    // the supervisor, which took the lock and holds it with its command
    // (the lock table names the supervisor): the record is what names the
    // file's own process.
    let saved = {
        let mut buf = [0u8; 256];
        let n = rustix::fs::getxattr(&p1, RECORD_ATTR, &mut buf[..]).unwrap();
        buf[..n].to_vec()
    };
    rustix::fs::removexattr(&p1, RECORD_ATTR).unwrap();
    let v = status_json(pidguard(), &p1);
    assert!(
        v["pid"] == command || v["pid"] == supervisor,
        "no record: a holder of the lock: {v}"
    );
    assert_eq!(v["evidence"], "lock", "no record: {v}");
    rustix::fs::setxattr(&p1, RECORD_ATTR, &saved, rustix::fs::XattrFlags::empty()).unwrap();

    // 2. Unlocked, the file's PID a live host process: a bystander on the
    // host, and the owner given its PID in a namespace of its own
    // (ns_last_pid); the owner then closes its lock.
    let bystander = sleeper();
    let b = bystander.pid();
    let bystander_birth = started(b).unwrap();
    let c = Namespace::start();
    c.next_pid(b);
    let owner_cmd = Owned::spawn(
        c.command(bin())
            .args(["run", "--exec", "-p"])
            .arg(&p2)
            .args(["--", "bash", "-c", CLOSE_FDS_THEN_SLEEP]),
    );
    let owner = Namespace::child_of(owner_cmd.pid());
    assert_eq!(
        c.ns_pid(owner),
        Some(b),
        "the owner has the bystander's PID there"
    );
    wait_for("the owner to drop its lock", || {
        std::fs::read_to_string(format!("/proc/{owner}/comm")).ok() == Some("sleep\n".into())
            && testkit::lock_free(&p2)
    });
    assert_eq!(kernel_record(&p2), Some((b, pidfs_ino(owner).unwrap())));
    host_names_owner(dir.path(), "own", owner, b, false);
    crate::containers::stop_targets_only(&p2, owner, b);
    assert_eq!(started(b), Some(bystander_birth), "the host's PID {b}");
    // Not taken over: its owner is proved to run.
    let out = run_true(&p2);
    assert_eq!(out.status.code(), Some(75), "{}", text(&out));
    drop(owner_cmd);
    drop(c);
    drop(bystander);
    drop(a);
    summary::passed(
        scenario,
        &format!(
            "a holder in a child PID namespace wrote its own file: supervised run's (locked, \
             PID {n1} there) recorded the command, not pidguard; the host's status, list and \
             pid named it by its host PID, decided by kernel identity (a holder by the lock \
             once the record was removed); run --exec's, its lock closed and its PID {b} there a host \
             bystander's: the host named the owner by its host PID, unlocked, by kernel \
             identity; stop and signal (strace seam) pinned and signalled only the holders, \
             never the host's processes of the files' PIDs; run refused to take the second \
             over (75)"
        ),
    );
}

/// Without pidfds (`pidfd_open` failing with ENOSYS, as before Linux
/// 5.3; the same path as pidfds without pidfs, before 6.9) a record
/// decides nothing: an unlocked file's owner is judged by the
/// consistency checks, and the record stays.
#[test]
fn without_pidfds_a_record_decides_nothing() {
    let scenario = "kernel-identity-no-pidfds";
    if !testkit::have_tool("strace", "-V") {
        return summary::skipped(scenario, "strace is not installed (the ENOSYS seam)");
    }
    let dir = tmp();
    if let Some(why) = kernel_identity_unavailable(dir.path()) {
        return summary::skipped(scenario, &why);
    }
    let p = dir.path().join("u.pid");
    let owner = unlocked_owner(&p);
    // With pidfds: the record decides.
    let v = status_json(pidguard(), &p);
    assert_eq!(v["evidence"], "kernel identity", "with pidfds: {v}");
    let mut status = pidguard();
    status.args(["status", "--json", "-p"]).arg(&p);
    let seam = testkit::Seam {
        // status sends no signal; its kill(pid, 0) probes are left alone.
        inject: "pidfd_send_signal",
        also_trace: "pidfd_open",
        also_inject: "pidfd_open:error=ENOSYS",
        ..testkit::Seam::default()
    };
    let (out, calls) = seam.run(&status).unwrap();
    let opens: Vec<&String> = calls.iter().filter(|l| l.contains("pidfd_open(")).collect();
    assert!(
        !opens.is_empty() && opens.iter().all(|l| l.contains("ENOSYS")),
        "status asked for pidfds, and got none: {calls:?}"
    );
    let v = json(&out);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(v["state"], "running", "{v}");
    assert_eq!(v["pid"], owner.pid(), "{v}");
    assert_eq!(v["locked"], false, "{v}");
    assert_eq!(v["identity"], "consistent", "{v}");
    assert_eq!(v["evidence"], "consistent checks", "{v}");
    assert_records_owner(&p, owner.pid());
    drop(owner);
    summary::passed(
        scenario,
        "pidfd_open failing with ENOSYS (strace): an unlocked file's correct record decided \
         nothing, the consistency checks did (consistent); with pidfds the record decides",
    );
}

/// The evidence that decided, in words: `list`'s EVIDENCE column
/// (`kernel`, `lock`, `checks`) and `status`'s `(by …)`.
#[test]
fn list_and_status_name_the_evidence_that_decided() {
    let scenario = "kernel-identity-evidence-words";
    let dir = tmp();
    if let Some(why) = kernel_identity_unavailable(dir.path()) {
        return summary::skipped(scenario, &why);
    }
    // kernel: an owner without its lock, proved by its record.
    let k = dir.path().join("k.pid");
    let kernel_owner = unlocked_owner(&k);
    // checks: the same, its record removed.
    let c = dir.path().join("c.pid");
    let checks_owner = unlocked_owner(&c);
    rustix::fs::removexattr(&c, RECORD_ATTR).unwrap();
    // lock: a holder of its lock.
    let l = dir.path().join("l.pid");
    let holder = exec_holder(&l, &["sleep", "30"]);
    pid_in_where(&l, |pid| pid == holder.pid());
    testkit::wait_verified(&l);
    for (path, name, pid, identity, word, by) in [
        (
            &k,
            "k",
            kernel_owner.pid(),
            "verified",
            "kernel",
            "kernel identity",
        ),
        (
            &c,
            "c",
            checks_owner.pid(),
            "consistent",
            "checks",
            "consistent checks",
        ),
        (&l, "l", holder.pid(), "verified", "lock", "lock"),
    ] {
        let row = list_row(dir.path(), name);
        assert_eq!(row[1], pid.to_string(), "{name}: {row:?}");
        assert_eq!(row[2], "running", "{name}: {row:?}");
        assert_eq!(row[3], identity, "{name}: {row:?}");
        assert_eq!(row[4], word, "{name}: {row:?}");
        let line = status_line(path);
        assert!(
            line.contains(&format!("identity: {identity} (by {by})")),
            "{name}: {line}"
        );
        assert_eq!(status_json(pidguard(), path)["evidence"], by, "{name}");
    }
    drop(holder);
    drop(checks_owner);
    drop(kernel_owner);
    summary::passed(
        scenario,
        "list's EVIDENCE column said kernel, checks and lock, and status said (by kernel \
         identity), (by consistent checks) and (by lock), as --json's evidence",
    );
}
