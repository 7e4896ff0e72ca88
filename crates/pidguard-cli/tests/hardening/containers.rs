//! Containers: two PID namespaces share the directory of a PID file, each
//! with a process of the same PID (PID 1, as every container's main
//! process; or any equal PID). The second acquire is refused by the lock
//! (exit 75). From the other namespace the file is running (a held lock is
//! never stale) but its holder cannot be identified: `status` names no
//! PID, `stop` refuses (77) and never takes the local process of that PID
//! for the holder. From the host, `status` names the holder by its host
//! PID (the lock and its kernel identity record prove it) and the file's
//! PID as written in its namespace, never the host's process of that PID,
//! and `stop` and `signal` signal that real holder only; `sweep --kill`
//! keeps the file from either side (every `stop`, `signal` and `sweep`
//! runs under the strace EPERM seam: no signal can get through, and every
//! attempt and every pidfd opened is seen).

use std::path::Path;
use std::process::{Command, Output, Stdio};

use crate::reuse::{started, under_strace, Namespace};
use crate::summary;
use testkit::{bin, pid_in_where, signals_in, text, tmp, Seam};

pub(crate) fn json(out: &Output) -> serde_json::Value {
    let s = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(s.lines().next().unwrap_or_default())
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(out)))
}

/// `pidguard ARGS P TAIL` as PID 1 of a fresh namespace of its own.
fn as_pid_1(args: &[&str], p: &Path, tail: &[&str]) -> Output {
    Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc", "--kill-child", "--"])
        .arg(bin())
        .args(args)
        .arg(p)
        .args(tail)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// Checks a `status --json` answer from a namespace where the file's PID
/// is not the holder and the holder cannot be seen: running (the lock is
/// held: never stale), exit 0, but no PID named (never a local process).
pub(crate) fn held_unidentified(where_: &str, out: &Output) {
    let v = json(out);
    assert_eq!(out.status.code(), Some(0), "{where_}: {}", text(out));
    assert_eq!(
        v["state"], "running",
        "{where_}: a held lock is running: {v}"
    );
    assert!(
        v["pid"].is_null(),
        "{where_}: status takes a local process for the holder: {v}"
    );
    assert_ne!(v["identity"], "verified", "{where_}: {v}");
    assert_ne!(v["identity"], "consistent", "{where_}: {v}");
}

/// Checks a `status --json` answer from the host: running, naming the
/// holder by its host PID, and the PID the file holds (in its namespace).
pub(crate) fn held_by(where_: &str, out: &Output, holder: i32, file_pid: i32) {
    let v = json(out);
    assert_eq!(out.status.code(), Some(0), "{where_}: {}", text(out));
    assert_eq!(v["state"], "running", "{where_}: {v}");
    assert_eq!(v["pid"], holder, "{where_}: the holder's host PID: {v}");
    assert_eq!(v["file_pid"], file_pid, "{where_}: {v}");
    assert_eq!(v["identity"], "verified", "{where_}: {v}");
}

/// `stop --json -p P` from a namespace that cannot see the holder, under
/// the seam: refused (77), no signal attempted, the file kept.
pub(crate) fn stop_refuses(where_: &str, mut cmd: Command, p: &Path) -> Output {
    cmd.args(["stop", "--json", "-p"]).arg(p);
    let (out, signals) = under_strace(&cmd).unwrap();
    assert!(
        signals.is_empty(),
        "{where_}: stop tried to signal: {signals:?}"
    );
    assert_eq!(out.status.code(), Some(77), "{where_}: {}", text(&out));
    assert!(
        text(&out).contains("could not be identified"),
        "{where_}: {}",
        text(&out)
    );
    assert!(p.exists(), "{where_}: stop removed the holder's file");
    out
}

/// `stop -p P` and `signal TERM -p P` from the host, under the seam with
/// pidfd_open traced: the only process pinned is `holder` (by its host
/// PID), the only signals attempted go through its pidfd (refused by the
/// seam: exit 77), and the host process whose PID equals the file's is
/// never touched.
pub(crate) fn stop_targets_only(p: &Path, holder: i32, file_pid: i32) {
    for args in [&["stop", "--schedule", "TERM/1"][..], &["signal", "TERM"]] {
        let mut cmd = Command::new(bin());
        cmd.args(args).arg("-p").arg(p);
        let seam = Seam {
            also_trace: "pidfd_open",
            ..Seam::default()
        };
        let (out, calls) = seam.run(&cmd).unwrap();
        // The descriptors of pidfds opened on the holder (others are opened
        // only to ask whether a PID exists, and closed).
        let holder_fds: Vec<String> = calls
            .iter()
            .filter(|l| l.contains(&format!("pidfd_open({holder},")))
            .filter_map(|l| Some(l.rsplit_once("= ")?.1.trim().to_string()))
            .collect();
        assert!(
            !holder_fds.is_empty(),
            "{args:?}: the holder was never pinned: {calls:?}"
        );
        let signals = signals_in(&calls);
        assert!(
            !signals.is_empty()
                && signals.iter().all(|l| holder_fds
                    .iter()
                    .any(|fd| l.contains(&format!("pidfd_send_signal({fd},")))),
            "{args:?} signalled otherwise than through the holder's pidfd {holder_fds:?}: \
             {signals:?}"
        );
        assert!(
            !calls
                .iter()
                .any(|l| file_pid != holder && l.contains(&format!("kill({file_pid}, SIG"))),
            "{args:?} signalled the host's PID {file_pid}: {calls:?}"
        );
        assert_eq!(out.status.code(), Some(77), "{args:?}: {}", text(&out));
        assert!(p.exists(), "{args:?}: the holder's file is kept");
    }
}

/// `sweep --kill --json DIR` run by `cmd` (the host, or inside a
/// namespace), under the seam: the held file `p` is kept, nothing is
/// signalled.
pub(crate) fn sweep_kill_keeps(where_: &str, mut cmd: Command, dir: &Path, p: &Path) {
    cmd.args(["sweep", "--kill", "--json"]).arg(dir);
    let (out, signals) = under_strace(&cmd).unwrap();
    assert!(
        signals.is_empty(),
        "{where_}: sweep --kill tried to signal: {signals:?}"
    );
    assert_eq!(out.status.code(), Some(0), "{where_}: {}", text(&out));
    let action = &json(&out)["actions"][0];
    assert_eq!(action["action"], "keep", "{where_}: {action}");
    assert!(p.exists(), "{where_}: sweep --kill removed a held file");
}

/// From the host, the file `p` in `dir` (its only file), locked by a
/// holder in a container that wrote its own file: `status` names the
/// holder by its host PID (and the file's PID), with the evidence of
/// [`host_evidence`]; `list` shows it running under that PID; `pid` prints
/// it. Never the host's own process of PID `file_pid`.
fn host_names_holder(dir: &Path, p: &Path, holder: i32, file_pid: i32) {
    let mut status = Command::new(bin());
    status.args(["status", "--json", "-p"]).arg(p);
    let out = status.output().unwrap();
    held_by("the host", &out, holder, file_pid);
    let evidence = &json(&out)["evidence"];
    assert_eq!(evidence, host_evidence(dir), "{}", text(&out));
    let out = Command::new(bin())
        .args(["list", "--json"])
        .arg(dir)
        .output()
        .unwrap();
    let row = json(&out)["entries"][0].clone();
    assert_eq!(row["state"], "running", "list from the host: {row}");
    assert_eq!(
        row["pid"], holder,
        "list names the holder's host PID, not PID {file_pid}: {row}"
    );
    let out = Command::new(bin())
        .args(["pid", "-p"])
        .arg(p)
        .output()
        .unwrap();
    assert_eq!(
        text(&out).trim(),
        holder.to_string(),
        "pid prints the holder's host PID"
    );
}

/// The evidence the host's `status` gives for a holder in a container
/// that wrote its own file: its kernel identity record (the file's PID is
/// another process here, or none), or, where records cannot be kept, the
/// lock.
fn host_evidence(dir: &Path) -> &'static str {
    match testkit::kernel_identity_unavailable(dir) {
        None => "kernel identity",
        Some(_) => "lock",
    }
}

fn unavailable() -> Option<String> {
    Namespace::unavailable().or_else(|| {
        (!testkit::have_tool("strace", "-V"))
            .then(|| "strace is not installed (the EPERM seam)".to_string())
    })
}

#[test]
fn containers_pid_1_holders_in_two_namespaces() {
    if let Some(why) = unavailable() {
        return summary::skipped("containers-pid1", &why);
    }
    let dir = tmp();
    let p = dir.path().join("app.pid");
    let ps = p.to_str().unwrap();
    // Namespace A: the holder is its PID 1.
    let a = Namespace::start_with(&[
        bin().to_str().unwrap(),
        "run",
        "--exec",
        "-p",
        ps,
        "--",
        "sleep",
        "60",
    ]);
    pid_in_where(&p, |pid| pid == 1);
    let holder = a.init();
    let birth = started(holder).unwrap();

    // Namespace B, as PID 1: the second acquire is refused by the lock.
    let out = as_pid_1(&["run", "-p"], &p, &["--", "true"]);
    assert_eq!(out.status.code(), Some(75), "{}", text(&out));
    let out = as_pid_1(&["run", "--exec", "-p"], &p, &["--", "true"]);
    assert_eq!(out.status.code(), Some(75), "{}", text(&out));

    // status from B, as PID 1 itself, and as another process (PID 1 a
    // sleep): running, the holder unidentified; from the host: running,
    // the holder named by its host PID.
    held_unidentified(
        "B (status is PID 1)",
        &as_pid_1(&["status", "--json", "-p"], &p, &[]),
    );
    let b = Namespace::start();
    let mut status = b.command(bin());
    status.args(["status", "--json", "-p"]).arg(&p);
    held_unidentified("B (PID 1 is a sleep)", &status.output().unwrap());
    host_names_holder(dir.path(), &p, holder, 1);

    // stop from B refuses; from the host stop and signal target the real
    // holder only (never the host's PID 1). sweep --kill keeps the file
    // and signals nothing, from either.
    stop_refuses("B", b.command(bin()), &p);
    stop_targets_only(&p, holder, 1);
    sweep_kill_keeps("B", b.command(bin()), dir.path(), &p);
    sweep_kill_keeps("the host", Command::new(bin()), dir.path(), &p);
    assert_eq!(started(holder), Some(birth), "the holder still runs");
    drop(b);
    drop(a);
    summary::passed(
        "containers-pid1",
        "two PID namespaces sharing the directory, PID 1 holding in one: the other's \
         PID 1 was refused (75); status from the other namespace (as PID 1 and not) said \
         running without naming a local process, stop there refused (77) and attempted no \
         signal; from the host status and pid named the holder's host PID and stop and \
         signal targeted only it (by its pidfd); sweep --kill from both kept the file and \
         attempted no signal",
    );
}

#[test]
fn containers_equal_pids_in_two_namespaces() {
    if let Some(why) = unavailable() {
        return summary::skipped("containers-equal-pids", &why);
    }
    let dir = tmp();
    let p = dir.path().join("app.pid");
    // A host bystander, and N its PID: the PID the holder and B's
    // bystander get in their namespaces too (ns_last_pid), so that the
    // file's PID names a live process in B and on the host alike.
    let host_bystander = testkit::sleeper();
    let n = host_bystander.pid();
    let host_bystander_birth = started(n).unwrap();
    // Namespace B first: a bystander with PID N, started before the file
    // is written (so its start time does not give it away).
    let b = Namespace::start();
    b.next_pid(n);
    let bystander_cmd = testkit::Owned::spawn(b.command("sleep").arg("60"));
    let bystander = Namespace::child_of(bystander_cmd.pid());
    assert_eq!(b.ns_pid(bystander), Some(n));
    let bystander_birth = started(bystander).unwrap();
    // Namespace A: the holder, also PID N.
    let a = Namespace::start();
    a.next_pid(n);
    let holder_cmd = testkit::Owned::spawn(
        a.command(bin())
            .args(["run", "--exec", "-p"])
            .arg(&p)
            .args(["--", "sleep", "60"]),
    );
    let holder = Namespace::child_of(holder_cmd.pid());
    assert_eq!(a.ns_pid(holder), Some(n));
    pid_in_where(&p, |pid| pid == n);
    let holder_birth = started(holder).unwrap();

    // B's acquire is refused by the lock.
    let out = b
        .command(bin())
        .args(["run", "-p"])
        .arg(&p)
        .args(["--", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(75), "{}", text(&out));

    // status from B: PID N there is the bystander, not the holder; the
    // file is running, its holder unidentified.
    let mut status = b.command(bin());
    status.args(["status", "--json", "-p"]).arg(&p);
    let out = status.output().unwrap();
    held_unidentified("B", &out);
    let v = json(&out);
    assert!(
        v["identity_detail"]
            .as_str()
            .unwrap_or_default()
            .contains("does not hold the lock"),
        "{v}"
    );
    stop_refuses("B", b.command(bin()), &p);
    sweep_kill_keeps("B", b.command(bin()), dir.path(), &p);
    // From the host: the holder by its host PID, never the host's own
    // PID N; stop and signal target the holder only, sweep --kill keeps
    // the file.
    host_names_holder(dir.path(), &p, holder, n);
    stop_targets_only(&p, holder, n);
    sweep_kill_keeps("the host", Command::new(bin()), dir.path(), &p);
    assert_eq!(started(bystander), Some(bystander_birth));
    assert_eq!(started(n), Some(host_bystander_birth), "the host's PID {n}");
    assert_eq!(started(holder), Some(holder_birth));
    drop(holder_cmd);
    drop(bystander_cmd);
    drop(host_bystander);
    summary::passed(
        "containers-equal-pids",
        &format!(
            "two PID namespaces sharing the directory and the host, each with a process of \
             PID {n}: the second acquire was refused (75); status from the other namespace \
             said running without taking its own PID {n} for the holder, stop there refused \
             (77) with no signal; from the host status, list and pid named the holder's host \
             PID (never the host's PID {n}), stop and signal targeted only it (by its pidfd); \
             sweep --kill from both kept the file and attempted no signal; every bystander \
             kept running"
        ),
    );
}
