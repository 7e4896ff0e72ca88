//! PID reuse, provoked for real: in a fresh PID namespace (where PIDs are
//! small and `ns_last_pid` picks the next one), a holder dies leaving its
//! files behind, and a newcomer is started with the dead holder's PID.
//! `status` must call the file stale (mismatched), and `stop` and
//! `sweep --kill` must leave the newcomer alone: they run under the strace
//! EPERM seam (no signal can get through, and any attempt is seen) and the
//! newcomer must still be alive afterwards.
//!
//! This module also hosts [`Namespace`], the PID namespace the container
//! scenario uses too.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, SystemTime};

use crate::summary;
use testkit::{bin, pid_in_where, signals_in, text, tmp, wait_for, Owned, Seam};

/// A PID namespace with its own `/proc` (`unshare --pid --fork
/// --mount-proc`), its PID 1 a `sleep`; torn down (every process in it
/// killed by the kernel) when dropped.
pub struct Namespace {
    /// `unshare`, our child, killed and reaped on drop; `--kill-child` then
    /// kills the namespace's PID 1, and the kernel everything in it.
    _unshare: Owned,
    /// The host PID of the namespace's PID 1.
    init: i32,
}

impl Namespace {
    /// Why namespaces cannot be used here, if they cannot.
    pub fn unavailable() -> Option<String> {
        if !summary::is_root() {
            return Some("needs root (unshare --pid, nsenter, ns_last_pid)".into());
        }
        for tool in ["unshare", "nsenter"] {
            if !testkit::have_tool(tool, "--version") {
                return Some(format!("{tool}(1) is not installed (util-linux)"));
            }
        }
        let probe = Command::new("unshare")
            .args(["--pid", "--fork", "--mount-proc", "true"])
            .output();
        match probe {
            Ok(o) if o.status.success() => None,
            Ok(o) => Some(format!(
                "unshare --pid --fork --mount-proc fails here: {}",
                text(&o).trim()
            )),
            Err(e) => Some(format!("cannot run unshare: {e}")),
        }
    }

    /// Starts a namespace whose PID 1 is `init` (a program and its
    /// arguments); `None` as init means `sleep 1000`.
    pub fn start_with(init: &[&str]) -> Namespace {
        Namespace::spawn(true, init)
    }

    /// A namespace (PID 1 `sleep 1000`) that keeps the host's `/proc`
    /// (`unshare --pid --fork` without `--mount-proc`): there `/proc`
    /// numbers the host's processes, not the namespace's.
    pub fn start_sharing_proc() -> Namespace {
        Namespace::spawn(false, &[])
    }

    fn spawn(mount_proc: bool, init: &[&str]) -> Namespace {
        let mut cmd = Command::new("unshare");
        cmd.args(["--pid", "--fork"]);
        if mount_proc {
            cmd.arg("--mount-proc");
        }
        cmd.args(["--kill-child", "--"]);
        if init.is_empty() {
            cmd.args(["sleep", "1000"]);
        } else {
            cmd.args(init);
        }
        let unshare = Owned::spawn(cmd.stdout(Stdio::null()));
        let u = unshare.pid();
        let mut pid = 0;
        wait_for("the namespace's PID 1", || {
            let kids =
                std::fs::read_to_string(format!("/proc/{u}/task/{u}/children")).unwrap_or_default();
            match kids.split_whitespace().next() {
                Some(k) => {
                    pid = k.parse().unwrap();
                    true
                }
                None => false,
            }
        });
        let ns = Namespace {
            _unshare: unshare,
            init: pid,
        };
        assert_eq!(ns.ns_pid(pid), Some(1), "the namespace's first process");
        ns
    }

    pub fn start() -> Namespace {
        Namespace::start_with(&[])
    }

    /// The host PID of the namespace's PID 1.
    pub fn init(&self) -> i32 {
        self.init
    }

    /// A process's PID inside its innermost namespace (`NSpid`), by host PID.
    pub fn ns_pid(&self, host_pid: i32) -> Option<i32> {
        let status = std::fs::read_to_string(format!("/proc/{host_pid}/status")).ok()?;
        let line = status.lines().find(|l| l.starts_with("NSpid:"))?;
        line.split_whitespace().last()?.parse().ok()
    }

    /// `program args…` run inside the namespace (its PIDs and its /proc).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("nsenter");
        c.args(["-t", &self.init.to_string(), "-p", "-m", "--"])
            .arg(program)
            .stdin(Stdio::null());
        c
    }

    /// Makes the namespace's next new process get PID `pid` (if free).
    pub fn next_pid(&self, pid: i32) {
        let out = self
            .command("sh")
            .arg("-c")
            .arg(format!("echo {} > /proc/sys/kernel/ns_last_pid", pid - 1))
            .output()
            .unwrap();
        assert!(out.status.success(), "ns_last_pid: {}", text(&out));
    }

    /// The host PID of the first child of `parent` (host PID), waiting for it.
    pub fn child_of(parent: i32) -> i32 {
        let mut pid = 0;
        wait_for("a child process", || {
            let kids = std::fs::read_to_string(format!("/proc/{parent}/task/{parent}/children"))
                .unwrap_or_default();
            match kids.split_whitespace().next() {
                Some(k) => {
                    pid = k.parse().unwrap();
                    true
                }
                None => false,
            }
        });
        pid
    }
}

/// A process's start time (`/proc/<pid>/stat` field 22), by host PID;
/// `None` when it is gone or a zombie.
pub fn started(host_pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{host_pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    if fields.first() == Some(&"Z") {
        return None;
    }
    fields.get(19)?.parse().ok()
}

/// Runs `cmd` under `strace -f` with every signal-sending call failing with
/// EPERM (testkit's strace seam); returns its output and the signal
/// calls it attempted (`kill(pid, 0)` probes left out). `None` without
/// strace.
pub fn under_strace(cmd: &Command) -> Option<(Output, Vec<String>)> {
    let (out, calls) = Seam::default().run(cmd)?;
    Some((out, signals_in(&calls)))
}

fn json(out: &Output) -> serde_json::Value {
    let first = String::from_utf8_lossy(&out.stdout);
    let first = first.lines().next().unwrap_or_default().to_owned();
    serde_json::from_str(&first).unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(out)))
}

/// Sets a file's modification time `ago` in the past.
fn backdate(path: &Path, ago: Duration) {
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(SystemTime::now() - ago)
        .unwrap();
}

/// A holder in `ns` (one process: `run --exec` twice, exec keeping the PID,
/// then `sleep`) that wrote and locked `pa` and `pb`, then crashed: SIGKILL
/// (our grandchild, not yet reaped by nsenter, our child), reaped by
/// nsenter. Its files stay, unlocked. `before_crash` is given its host PID
/// while it still runs. Returns its PID in the namespace and its (former)
/// host PID.
pub fn crashed_holder(
    ns: &Namespace,
    pa: &Path,
    pb: &Path,
    before_crash: impl FnOnce(i32),
) -> (i32, i32) {
    let mut holder_cmd = Owned::spawn(
        ns.command(bin())
            .args(["run", "--exec", "-p"])
            .arg(pa)
            .arg("--")
            .arg(bin())
            .args(["run", "--exec", "-p"])
            .arg(pb)
            .args(["--", "sleep", "30"]),
    );
    let holder_host = Namespace::child_of(holder_cmd.pid());
    let n = ns.ns_pid(holder_host).unwrap();
    pid_in_where(pb, |pid| pid == n);
    assert_eq!(std::fs::read_to_string(pa).unwrap(), format!("{n}"));
    before_crash(holder_host);
    let rc = Command::new("kill")
        .args(["-KILL", &holder_host.to_string()])
        .status()
        .unwrap();
    assert!(rc.success());
    let _ = holder_cmd.0.wait().unwrap();
    (n, holder_host)
}

/// Whether a host PID names a live process.
fn alive_host(pid: i32) -> bool {
    started(pid).is_some()
}

/// A newcomer in `ns` given PID `n` (`ns_last_pid`): `sleep 30`, and its
/// host PID.
pub fn newcomer(ns: &Namespace, n: i32) -> (Owned, i32) {
    ns.next_pid(n);
    let newcomer_cmd = Owned::spawn(ns.command("sleep").arg("30"));
    let newcomer = Namespace::child_of(newcomer_cmd.pid());
    assert_eq!(
        ns.ns_pid(newcomer),
        Some(n),
        "the newcomer did not get the dead holder's PID"
    );
    (newcomer_cmd, newcomer)
}

#[test]
fn pid_reuse_in_a_namespace_is_reported_stale_and_never_signalled() {
    if let Some(why) = Namespace::unavailable() {
        return summary::skipped("pid-reuse", &why);
    }
    if !testkit::have_tool("strace", "-V") {
        return summary::skipped("pid-reuse", "strace is not installed (the EPERM seam)");
    }
    let dir = tmp();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    std::fs::create_dir(&a).unwrap();
    std::fs::create_dir(&b).unwrap();
    let (pa, pb) = (a.join("app.pid"), b.join("app.pid"));
    let ns = Namespace::start();

    let (n, holder_host) = crashed_holder(&ns, &pa, &pb, |_| {});
    assert!(!alive_host(holder_host));
    // This case is about timing evidence: files without the kernel identity
    // record (another tool's, or a filesystem without user extended
    // attributes). With the record the kernel decides instead:
    // kernel_identity::a_reused_pid_is_proved_by_the_kernel_with_and_without_a_clock_step.
    for p in [&pa, &pb] {
        // Records exist on Linux only.
        #[cfg(target_os = "linux")]
        let _ = rustix::fs::removexattr(p, testkit::RECORD_ATTR);
        assert_eq!(testkit::kernel_record(p), None);
    }
    // It died 10 s ago (beyond the identity check's 1 s clock tolerance).
    backdate(&pa, Duration::from_secs(10));
    backdate(&pb, Duration::from_secs(10));

    let (newcomer_cmd, newcomer) = newcomer(&ns, n);
    // Alive, and the same process (same start time) as at the start.
    let birth = started(newcomer).expect("the newcomer runs");
    let newcomer_alive = || started(newcomer) == Some(birth);

    // status, in the namespace: stale, mismatched (started after the file).
    let out = ns
        .command(bin())
        .args(["status", "--json", "-p"])
        .arg(&pa)
        .output()
        .unwrap();
    let v = json(&out);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(v["state"], "stale", "{v}");
    assert_eq!(v["pid"], n, "{v}");
    assert_eq!(v["identity"], "mismatched", "{v}");
    assert!(
        v["identity_detail"].as_str().unwrap().contains("reused"),
        "{v}"
    );

    // stop, in the namespace, under the seam: nothing signalled, and the
    // file kept (a live process whose only contrary evidence is timing
    // keeps its file: a clock step could cause it), exit 1.
    let mut stop = ns.command(bin());
    stop.args(["stop", "--json", "-p"]).arg(&pa);
    let (out, signals) = under_strace(&stop).unwrap();
    assert!(signals.is_empty(), "stop tried to signal: {signals:?}");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let v = json(&out);
    assert_eq!(v["outcome"], "mismatched", "{v}");
    assert_eq!(v["identity"], "mismatched", "{v}");
    assert!(
        v["identity_detail"].as_str().unwrap().contains("clock"),
        "the message says a clock step can cause it: {v}"
    );
    assert!(pa.exists(), "stop keeps a live process's file");
    assert!(newcomer_alive(), "stop must leave the newcomer alone");

    // sweep --kill, in the namespace, under the seam: the file stays, the
    // newcomer too.
    let mut sweep = ns.command(bin());
    sweep.args(["sweep", "--kill", "--json"]).arg(&b);
    let (out, signals) = under_strace(&sweep).unwrap();
    assert!(
        signals.is_empty(),
        "sweep --kill tried to signal: {signals:?}"
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let v = json(&out)["actions"][0].clone();
    assert_eq!(v["action"], "keep", "{v}");
    assert_eq!(v["pid"], n, "{v}");
    assert!(pb.exists(), "sweep keeps a live process's file");
    assert!(
        newcomer_alive(),
        "sweep --kill must leave the newcomer alone"
    );

    // Once the newcomer is gone, the owner is proved gone: stop removes
    // the file.
    // (Our grandchild, by its host PID; nsenter, our child, reaps it.)
    testkit::signal(newcomer, "KILL");
    drop(newcomer_cmd);
    wait_for("the newcomer's end", || !newcomer_alive());
    let mut stop = ns.command(bin());
    stop.args(["stop", "--json", "-p"]).arg(&pa);
    let (out, signals) = under_strace(&stop).unwrap();
    assert!(signals.is_empty(), "stop tried to signal: {signals:?}");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(json(&out)["outcome"], "stale", "{}", text(&out));
    assert!(!pa.exists(), "stop removes the stale file");

    drop(ns);
    summary::passed(
        "pid-reuse",
        &format!(
            "in a PID namespace a newcomer got the dead holder's PID {n}: status said stale \
             (mismatched), stop and sweep --kill (under the strace EPERM seam) attempted no \
             signal, left it running and kept its file; once it was gone stop removed the file"
        ),
    );
}
