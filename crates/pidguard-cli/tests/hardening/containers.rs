//! Containers: two PID namespaces share the directory of a PID file, each
//! with a process of the same PID (PID 1, as every container's main
//! process; or any equal PID). The second acquire is refused by the lock
//! (exit 75), and `status` and `stop` from the other namespace or from the
//! host never take the local process of that PID for the holder (`stop`
//! runs under the strace EPERM seam: no signal can get through, and any
//! attempt is seen).

use std::path::Path;
use std::process::{Command, Output, Stdio};

use crate::common::{bin, text, tmp, wait_for};
use crate::reuse::{started, under_strace, Namespace};
use crate::summary;

fn json(out: &Output) -> serde_json::Value {
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

/// Checks a `status --json` answer from a place where the file's PID is not
/// the holder: never "running" (which would name a local process).
fn not_running(where_: &str, out: &Output) {
    let v = json(out);
    assert_ne!(
        v["state"], "running",
        "{where_}: status takes a local process for the holder: {v}"
    );
    assert_ne!(v["identity"], "verified", "{where_}: {v}");
    assert_ne!(v["identity"], "consistent", "{where_}: {v}");
}

/// `stop --json -p P` under the seam: attempts no signal.
fn stop_signals_nothing(where_: &str, mut cmd: Command, p: &Path) -> Output {
    cmd.args(["stop", "--json", "-p"]).arg(p);
    let (out, signals) = under_strace(&cmd).unwrap();
    assert!(
        signals.is_empty(),
        "{where_}: stop tried to signal: {signals:?}"
    );
    assert!(p.exists(), "{where_}: stop removed the holder's file");
    out
}

fn unavailable() -> Option<String> {
    Namespace::unavailable().or_else(|| {
        Command::new("strace")
            .arg("-V")
            .output()
            .is_err()
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
    wait_for("A's holder", || {
        std::fs::read_to_string(&p).ok().as_deref() == Some("1")
    });
    let holder = a.init();
    let birth = started(holder).unwrap();

    // Namespace B, as PID 1: the second acquire is refused by the lock.
    let out = as_pid_1(&["run", "-p"], &p, &["--", "true"]);
    assert_eq!(out.status.code(), Some(75), "{}", text(&out));
    let out = as_pid_1(&["run", "--exec", "-p"], &p, &["--", "true"]);
    assert_eq!(out.status.code(), Some(75), "{}", text(&out));

    // status from B, as PID 1 itself, and as another process (PID 1 a
    // sleep); from the host.
    not_running(
        "B (status is PID 1)",
        &as_pid_1(&["status", "--json", "-p"], &p, &[]),
    );
    let b = Namespace::start();
    let mut status = b.command(bin());
    status.args(["status", "--json", "-p"]).arg(&p);
    not_running("B (PID 1 is a sleep)", &status.output().unwrap());
    let mut status = Command::new(bin());
    status.args(["status", "--json", "-p"]).arg(&p);
    not_running("the host", &status.output().unwrap());

    // stop from B and from the host: nothing signalled, the holder alive.
    stop_signals_nothing("B", b.command(bin()), &p);
    stop_signals_nothing("the host", Command::new(bin()), &p);
    assert_eq!(started(holder), Some(birth), "the holder still runs");
    drop(b);
    drop(a);
    summary::passed(
        "containers-pid1",
        "two PID namespaces sharing the directory, PID 1 holding in one: the other's \
         PID 1 was refused (75); status from the other namespace (as PID 1 and not) and \
         from the host never said running; stop attempted no signal",
    );
}

#[test]
fn containers_equal_pids_in_two_namespaces() {
    if let Some(why) = unavailable() {
        return summary::skipped("containers-equal-pids", &why);
    }
    const N: i32 = 50;
    let dir = tmp();
    let p = dir.path().join("app.pid");
    // Namespace B first: a bystander with PID N, started before the file
    // is written (so its start time does not give it away).
    let b = Namespace::start();
    b.next_pid(N);
    let bystander_cmd = crate::common::Owned::spawn(b.command("sleep").arg("60"));
    let bystander = Namespace::child_of(bystander_cmd.pid());
    assert_eq!(b.ns_pid(bystander), Some(N));
    let bystander_birth = started(bystander).unwrap();
    // Namespace A: the holder, also PID N.
    let a = Namespace::start();
    a.next_pid(N);
    let holder_cmd = crate::common::Owned::spawn(
        a.command(bin())
            .args(["run", "--exec", "-p"])
            .arg(&p)
            .args(["--", "sleep", "60"]),
    );
    let holder = Namespace::child_of(holder_cmd.pid());
    assert_eq!(a.ns_pid(holder), Some(N));
    wait_for("A's holder", || {
        std::fs::read_to_string(&p).ok() == Some(format!("{N}"))
    });
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

    // status from B: PID N there is the bystander, not the holder.
    let mut status = b.command(bin());
    status.args(["status", "--json", "-p"]).arg(&p);
    let out = status.output().unwrap();
    not_running("B", &out);
    let v = json(&out);
    assert!(
        v["identity_detail"]
            .as_str()
            .unwrap_or_default()
            .contains("another PID namespace"),
        "{v}"
    );
    stop_signals_nothing("B", b.command(bin()), &p);
    assert_eq!(started(bystander), Some(bystander_birth));
    assert_eq!(started(holder), Some(holder_birth));
    drop(holder_cmd);
    drop(bystander_cmd);
    summary::passed(
        "containers-equal-pids",
        &format!(
            "two PID namespaces sharing the directory, PID {N} in each: the second acquire \
             was refused (75); status from the other namespace did not take its own PID {N} \
             for the holder; stop attempted no signal"
        ),
    );
}
