//! Evidence, not guesses (issue 13): every case where missing evidence
//! used to decide, tested for real. Anything that must not be signalled
//! runs under the strace EPERM seam (no signal can get through, every
//! attempt is seen) or inside a PID namespace of the test's own; real
//! daemons (nginx, redis, memcached, dnsmasq) run with their files in the
//! test's temporary directory, on loopback ports picked here, and are
//! stopped by PID. `docs/GUARANTEES.md` maps each case to its test.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, SystemTime};

use crate::containers::{held_by, held_unidentified, json, stop_refuses, stop_targets_only};
use crate::reuse::{started, under_strace, Namespace};
use crate::summary;
use testkit::{alive, bin, signal, text, tmp, wait_for, write_pidfile, Owned, Seam};
use testkit::{pid_in, pid_in_where, Pinned};
use testkit::{signals_in, wait_verified, BROADCAST_CAPABLE};

/// The extended attribute holding a file's kernel identity record.
#[cfg(target_os = "linux")]
const KERNEL_RECORD: &str = "user.pidguard.pidfd_ino";

/// Why the strace seam cannot be used here, if it cannot.
fn no_strace() -> Option<String> {
    // (Under CI=true a missing strace fails the test: testkit::have_tool.)
    (!testkit::have_tool("strace", "-V"))
        .then(|| "strace is not installed (the EPERM seam)".to_string())
}

/// Why the seam or python3 (a many-threaded test process) is unavailable.
fn no_strace_or_python() -> Option<String> {
    no_strace().or_else(|| {
        (!testkit::have_tool("python3", "-V"))
            .then(|| "python3 is not installed (a test process with threads)".to_string())
    })
}

/// Why a root-only trust case cannot run here.
fn not_root_or_no_strace() -> Option<String> {
    if !summary::is_root() {
        return Some("needs root (the trust checks apply to root)".into());
    }
    no_strace()
}

/// `pidguard run --exec -p P -- sleep 60`, once it holds the lock itself:
/// the process (killed on drop) and its PID.
fn locked_holder(p: &Path) -> (Owned, i32) {
    let holder = Owned::spawn(
        Command::new(bin())
            .args(["run", "--exec", "-p"])
            .arg(p)
            .args(["--", "sleep", "60"]),
    );
    let pid = wait_verified(p);
    (holder, pid)
}

/// `pidguard status --json -p P` on the host.
fn status_json(p: &Path) -> Output {
    Command::new(bin())
        .args(["status", "--json", "-p"])
        .arg(p)
        .output()
        .unwrap()
}

/// Whether a tool the test needs is missing: under CI (where `.ci/run`
/// installs it) that is a failure, elsewhere a skip with a reason.
fn missing(tool: &str, package: &str) -> Option<String> {
    if Path::new(tool).exists() {
        return None;
    }
    let why = format!("{tool} is not installed (Debian: {package})");
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{why}: .ci/run should have installed it"
    );
    Some(why)
}

/// `setpriv` running as `uid` (and its primary group), no other groups.
fn as_user(uid: u32, gid: u32) -> Command {
    let mut c = Command::new("setpriv");
    c.arg(format!("--reuid={uid}"))
        .arg(format!("--regid={gid}"))
        .args(["--clear-groups", "--"])
        .stdin(Stdio::null());
    c
}

/// `pidguard ARGS` under the seam: its output and the signals it tried.
fn seam(args: &[&str]) -> (Output, Vec<String>) {
    let mut cmd = Command::new(bin());
    cmd.args(args);
    under_strace(&cmd).expect("strace checked by the caller")
}

/// Sets a file's modification time `ago` in the past.
fn backdate(path: &Path, ago: Duration) {
    File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(SystemTime::now() - ago)
        .unwrap();
}

/// A loopback TCP port nobody listens on right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A daemon the test started (it forked away from us), pinned by pidfd
/// as soon as its PID file names it, and stopped through the pidfd
/// (SIGTERM, then SIGKILL after 10 s) when dropped.
struct Daemon {
    pid: i32,
    pin: Pinned,
}

impl Daemon {
    /// Waits for `pidfile` to name a live process.
    fn from_pidfile(pidfile: &Path) -> Daemon {
        let pid = pid_in_where(pidfile, |pid| pid > 1 && alive(pid));
        Daemon {
            pid,
            pin: Pinned::new([pid]),
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // Then the pin's own drop SIGKILLs it if it is still there.
        self.pin.terminate(Duration::from_secs(10));
    }
}

/// Case 1: a PID reused for real in a fresh PID namespace whose /proc is
/// mounted `subset=pid` (no /proc/uptime, no /proc/sys): not running, never
/// signalled (the start time is read against the boot clock, which needs
/// no /proc/uptime).
/// Removes the file's kernel identity record: whether it had one (Linux
/// only: other systems get none written).
fn remove_record(p: &Path) -> bool {
    #[cfg(target_os = "linux")]
    {
        match rustix::fs::removexattr(p, KERNEL_RECORD) {
            Ok(()) => true,
            Err(rustix::io::Errno::NODATA | rustix::io::Errno::OPNOTSUPP) => false,
            Err(e) => panic!("removing {KERNEL_RECORD} from {}: {e}", p.display()),
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = p;
        false
    }
}

#[test]
fn evidence_01_reused_pid_under_subset_pid() {
    const NAME: &str = "evidence-01-reuse-subset-pid";
    if let Some(why) = Namespace::unavailable().or_else(no_strace) {
        return summary::skipped(NAME, &why);
    }
    let dir = tmp();
    let p = dir.path().join("app.pid");
    let full = dir.path().join("fullproc");
    std::fs::create_dir(&full).unwrap();
    let ns = Namespace::start();
    // A full /proc elsewhere (for ns_last_pid), then /proc as subset=pid.
    let out = ns
        .command("sh")
        .arg("-c")
        .arg(format!(
            "mount -t proc proc {} && mount -t proc -o subset=pid proc /proc && ! test -e /proc/uptime",
            full.display()
        ))
        .output()
        .unwrap();
    if !out.status.success() {
        return summary::skipped(
            NAME,
            &format!("cannot mount /proc with subset=pid here: {}", text(&out)),
        );
    }
    let holder_cmd = Owned::spawn(
        ns.command(bin())
            .args(["run", "--exec", "-p"])
            .arg(&p)
            .args(["--", "sleep", "30"]),
    );
    let holder = Namespace::child_of(holder_cmd.pid());
    let n = ns.ns_pid(holder).unwrap();
    pid_in_where(&p, |pid| pid == n);
    let mut holder_cmd = holder_cmd;
    signal(holder, "KILL");
    let _ = holder_cmd.0.wait();
    backdate(&p, Duration::from_secs(10));
    // The newcomer gets the dead holder's PID.
    let set = ns
        .command("sh")
        .arg("-c")
        .arg(format!(
            "echo {} > {}/sys/kernel/ns_last_pid",
            n - 1,
            full.display()
        ))
        .output()
        .unwrap();
    assert!(set.status.success(), "{}", text(&set));
    let newcomer_cmd = Owned::spawn(ns.command("sleep").arg("30"));
    let newcomer = Namespace::child_of(newcomer_cmd.pid());
    assert_eq!(ns.ns_pid(newcomer), Some(n), "the PID was not reused");
    let birth = started(newcomer).unwrap();

    let status = || {
        let out = ns
            .command(bin())
            .args(["status", "--json", "-p"])
            .arg(&p)
            .output()
            .unwrap();
        assert_ne!(out.status.code(), Some(0), "{}", text(&out));
        let v = json(&out);
        assert_ne!(v["state"], "running", "{v}");
        assert_eq!(v["identity"], "mismatched", "{v}");
        v
    };
    // The holder's kernel identity record (Linux 6.9 and later, on a
    // filesystem with user extended attributes) decides first; without it
    // the start time, read against the boot clock with no /proc/uptime.
    let v = status();
    let record = remove_record(&p);
    if record {
        assert_eq!(v["evidence"], "kernel identity", "{v}");
    }
    let v = status();
    assert_eq!(v["evidence"], "consistent checks", "{v}");
    let detail = v["identity_detail"].as_str().unwrap();
    assert!(
        detail.contains("the process started") && detail.contains("after the file was written"),
        "timing decided: {v}"
    );
    let mut stop = ns.command(bin());
    stop.args(["stop", "--json", "-p"]).arg(&p);
    let (out, signals) = under_strace(&stop).unwrap();
    assert!(signals.is_empty(), "stop tried to signal: {signals:?}");
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    assert!(p.exists(), "a live process's file is kept");
    assert_eq!(started(newcomer), Some(birth), "the newcomer still runs");
    signal(newcomer, "KILL");
    drop(newcomer_cmd);
    drop(ns);
    summary::passed(
        NAME,
        &format!(
            "PID {n} reused in a PID namespace with /proc mounted subset=pid: status said \
             mismatched (not running), by {}the start time alone (consistent checks: \
             started after the file); stop attempted no signal and kept the file",
            if record {
                "the kernel identity record, then without it by "
            } else {
                ""
            }
        ),
    );
}

/// Case 2: the file names a process that merely has it open (`sleep 30 <
/// app.pid`) while another process holds the lock: that process is not
/// verified and never signalled; the real holder is named.
#[test]
fn evidence_02_an_open_descriptor_is_not_a_lock() {
    const NAME: &str = "evidence-02-open-descriptor";
    if let Some(why) = no_strace() {
        return summary::skipped(NAME, &why);
    }
    let dir = tmp();
    let p = dir.path().join("app.pid");
    // The real holder: flock(1), which writes nothing.
    let holder = Owned::spawn(Command::new("flock").arg(&p).args(["sleep", "30"]));
    wait_for("flock's lock", || {
        matches!(pidguard::status(&p), pidguard::Status::Starting)
    });
    // The newcomer holds the file open on its standard input.
    let newcomer = Owned::spawn(
        Command::new("sleep")
            .arg("30")
            .stdin(File::open(&p).unwrap()),
    );
    let n = newcomer.pid();
    // Written after the newcomer started: timing speaks for it; only the
    // lock tells.
    File::options()
        .write(true)
        .truncate(true)
        .open(&p)
        .unwrap()
        .write_all(format!("{n}\n").as_bytes())
        .unwrap();
    let out = status_json(&p);
    held_by("the host", &out, holder.pid(), n);
    let found = pidguard::inspect(&p, &Default::default());
    assert_ne!(found.status.running_pid().map(|p| p.get()), Some(n));
    stop_targets_only(&p, holder.pid(), n);
    assert!(alive(n), "the newcomer was left alone");
    drop(newcomer);
    // flock's command (its child, which shares the lock), by PID, then flock.
    let f = holder.pid();
    let kids = std::fs::read_to_string(format!("/proc/{f}/task/{f}/children")).unwrap_or_default();
    for kid in kids.split_whitespace() {
        signal(kid.parse().unwrap(), "KILL");
    }
    drop(holder);
    summary::passed(
        NAME,
        "a process with the locked file open on stdin was never taken for its owner: status \
         named flock's process (the lock holder), stop pinned and signalled only that one",
    );
}

/// `status --json` on a locked file with a second name: running, its
/// holder named, but not verified (the lock proves nothing about a file
/// others reach by another name): the consistency checks decided.
fn running_not_verified(caller: Command, p: &Path, holder: i32) {
    let mut status = caller;
    let out = status
        .arg(bin())
        .args(["status", "--json", "-p"])
        .arg(p)
        .output()
        .unwrap();
    let v = json(&out);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(
        (&v["state"], &v["pid"]),
        (&"running".into(), &holder.into()),
        "{v}"
    );
    assert_eq!(v["identity"], "consistent", "never verified: {v}");
    assert_eq!(v["evidence"], "consistent checks", "{v}");
}

/// `stop` and `signal HUP` through `p`, under the seam, with each of
/// `pins` (and without a filter): refused (77) for its hard links, no
/// signal attempted.
fn refused_for_links(caller: &dyn Fn() -> Command, p: &Path, pins: &[[&str; 2]]) {
    let ps = p.to_str().unwrap();
    let mut filters: Vec<&[&str]> = vec![&[]];
    filters.extend(pins.iter().map(|f| &f[..]));
    for filter in filters {
        for action in [&["stop"][..], &["signal", "HUP"][..]] {
            let mut cmd = caller();
            cmd.arg(bin()).args(action).args(filter).args(["-p", ps]);
            let (out, calls) = Seam::default().run(&cmd).unwrap();
            let signals = signals_in(&calls);
            assert!(signals.is_empty(), "{action:?} {filter:?}: {signals:?}");
            assert_eq!(
                out.status.code(),
                Some(77),
                "{action:?} {filter:?}: {}",
                text(&out)
            );
            assert!(
                text(&out).contains("hard links") && text(&out).contains("no filter lifts this"),
                "{action:?} {filter:?}: {}",
                text(&out)
            );
        }
    }
}

/// A command run as the caller itself (as `as_user` runs one as a user):
/// the program is the first argument.
fn as_is() -> Command {
    let mut c = Command::new("env");
    c.stdin(Stdio::null());
    c
}

/// Case 3: a hard link to root's locked PID file in a directory an
/// unprivileged user owns: root's stop and signal through it (and through
/// the original name) refuse, even with a filter that pins the process;
/// status says running, not verified.
#[test]
fn evidence_03_hard_link_to_a_locked_file_is_refused() {
    const NAME: &str = "evidence-03-hard-link";
    if let Some(why) = not_root_or_no_strace() {
        return summary::skipped(NAME, &why);
    }
    let root_dir = tmp();
    let user_dir = tmp();
    std::os::unix::fs::chown(user_dir.path(), Some(65534), Some(65534)).unwrap();
    std::fs::set_permissions(user_dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let real = root_dir.path().join("app.pid");
    let (_holder, holder) = locked_holder(&real);
    // (fs.protected_hardlinks keeps a user from linking root's file: the
    // link is made here as root, where the user would have planted it.)
    let planted = user_dir.path().join("app.pid");
    std::fs::hard_link(&real, &planted).unwrap();
    let exe = std::fs::read_link(format!("/proc/{holder}/exe")).unwrap();
    let pins = [["--exe", exe.to_str().unwrap()], ["--user", "root"]];
    for p in [&planted, &real] {
        running_not_verified(as_is(), p, holder);
        refused_for_links(&as_is, p, &pins);
    }
    assert!(alive(holder));
    summary::passed(
        NAME,
        "root's stop and signal through a hard link to a locked PID file, and through its \
         own name, refused (77) with and without --exe/--user pinning the holder, \
         attempting no signal; status running, consistent (never verified)",
    );
}

/// "Verified" needs F to be F (one link), for every caller: a user's own
/// locked file given a second name is judged by the consistency checks
/// (running, consistent), and the user's stop and signal through either
/// name refuse (77), a filter pinning the holder or not; once the second
/// name is gone the file is verified again. As root the test runs it all
/// as nobody, in nobody's directory (the trust checks for root are case 3).
#[test]
fn a_lock_taken_by_a_user_without_authority_proves_nothing() {
    const NAME: &str = "foreign-flock";
    if let Some(why) = no_strace() {
        return summary::skipped(NAME, &why);
    }
    if !summary::is_root() {
        return summary::skipped(
            NAME,
            "needs root (a daemon's file that another user can read)",
        );
    }
    // A daemon that does not lock its file (as nginx), root's file, 0644;
    // nobody, who can read it, flocks it (hostile review, finding 1: the
    // locker was "verified", and stop signalled it and removed the running
    // daemon's file with exit 0).
    let dir = tmp();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut daemon_cmd = Command::new("sleep");
    daemon_cmd.arg("300");
    let daemon = Owned::spawn(&mut daemon_cmd);
    let daemon_pid = daemon.0.id() as i32;
    let p = dir.path().join("d.pid");
    std::fs::write(&p, daemon_pid.to_string()).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut lock = as_user(65534, 65534);
    lock.arg("flock")
        .args(["--exclusive", "--no-fork"])
        .arg(&p)
        .args(["sleep", "300"]);
    let locker = Owned::spawn(&mut lock);
    let locker_pid = locker.0.id() as i32;
    wait_for("nobody's flock", || {
        std::fs::read_to_string("/proc/locks").is_ok_and(|l| {
            l.lines().any(|line| {
                line.contains("FLOCK")
                    && line.split_whitespace().nth(4) == Some(&locker_pid.to_string())
            })
        })
    });
    let out = as_is()
        .arg(bin())
        .args(["status", "--json", "-p"])
        .arg(&p)
        .output()
        .unwrap();
    let v = json(&out);
    assert_ne!(
        v["identity"], "verified",
        "a lock anyone could take proved the owner: {v}"
    );
    assert_eq!(v["identity"], "unproved", "{v}");
    for args in [&["stop", "--schedule", "TERM/1"][..], &["signal", "TERM"]] {
        let mut cmd = Command::new(bin());
        cmd.args(args).arg("-p").arg(&p);
        let (out, signals) = under_strace(&cmd).unwrap();
        assert!(signals.is_empty(), "{args:?} tried to signal: {signals:?}");
        assert_eq!(out.status.code(), Some(77), "{args:?}: {}", text(&out));
        assert!(
            text(&out).contains("holds the file's lock"),
            "{}",
            text(&out)
        );
    }
    let (out, signals) = {
        let mut cmd = Command::new(bin());
        cmd.args(["sweep", "--kill"]).arg(dir.path());
        under_strace(&cmd).unwrap()
    };
    assert!(
        signals.is_empty(),
        "sweep tried to signal: {signals:?}: {}",
        text(&out)
    );
    assert_eq!(
        std::fs::read_to_string(&p).unwrap(),
        daemon_pid.to_string(),
        "the daemon's file is kept"
    );
    // The same seen by nobody, the locker's own user, who cannot read the
    // root daemon's descriptors (whether it holds the lock is unknown):
    // that unread fact does not make nobody's own locker the owner.
    // (nobody runs a copy of pidguard in the test's directory.)
    let exe = dir.path().join("pidguard");
    std::fs::copy(bin(), &exe).unwrap();
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    let as_nobody = |args: &[&str]| {
        let mut c = as_user(65534, 65534);
        c.arg(&exe).args(args).arg(&p);
        c
    };
    let v = json(&as_nobody(&["status", "--json", "-p"]).output().unwrap());
    assert_eq!(v["identity"], "unproved", "as nobody: {v}");
    for args in [
        &["stop", "--schedule", "TERM/1", "-p"][..],
        &["signal", "TERM", "-p"],
    ] {
        let (out, signals) = under_strace(&as_nobody(args)).unwrap();
        assert!(
            signals.is_empty(),
            "as nobody, {args:?} tried to signal: {signals:?}"
        );
        assert_eq!(
            out.status.code(),
            Some(77),
            "as nobody, {args:?}: {}",
            text(&out)
        );
    }
    assert_eq!(std::fs::read_to_string(&p).unwrap(), daemon_pid.to_string());
    assert!(alive(daemon_pid) && alive(locker_pid));
    summary::passed(
        NAME,
        "a live daemon's unlocked file (root's, 0644) flocked by nobody: status unproved (never \
         verified), stop and signal refused (77) naming the lock's holder, sweep --kill kept \
         it; as nobody (the daemon's descriptors unreadable) unproved and refused too; nothing \
         was signalled, the file kept",
    );
}

#[test]
fn a_second_name_keeps_an_heir_of_the_lock_from_being_verified() {
    const NAME: &str = "two-links-heir";
    if let Some(why) = no_strace() {
        return summary::skipped(NAME, &why);
    }
    let dir = tmp();
    let real = dir.path().join("app.pid");
    // The file names a PID that is gone; flock(1) holds it now (an heir:
    // the lock's holder is not the PID in the file).
    let mut gone = Command::new("true").spawn().unwrap();
    let gone_pid = gone.id();
    gone.wait().unwrap();
    std::fs::write(&real, gone_pid.to_string()).unwrap();
    let mut hold = Command::new("flock");
    // --no-fork: flock(1) execs sleep itself (one process to stop).
    hold.args(["-n", "--no-fork"])
        .arg(&real)
        .args(["sleep", "60"]);
    let heir = Owned::spawn(&mut hold);
    let heir_pid = heir.0.id() as i32;
    let status = |p: &Path| {
        let out = as_is()
            .arg(bin())
            .args(["status", "--json", "-p"])
            .arg(p)
            .output()
            .unwrap();
        json(&out)
    };
    wait_for("flock(1) to hold the file", || {
        status(&real)["identity"] == "verified"
    });
    let v = status(&real);
    assert_eq!(
        (&v["state"], &v["locked"]),
        (&"running".into(), &true.into()),
        "{v}"
    );
    let second = dir.path().join("second.pid");
    std::fs::hard_link(&real, &second).unwrap();
    for p in [&real, &second] {
        let v = status(p);
        assert_eq!(v["state"], "running", "{v}");
        assert_ne!(
            v["identity"], "verified",
            "a second name: the lock proves nothing: {v}"
        );
        refused_for_links(&as_is, p, &[]);
    }
    std::fs::remove_file(&second).unwrap();
    assert_eq!(status(&real)["identity"], "verified");
    assert!(alive(heir_pid));
    summary::passed(
        NAME,
        "a file held by an heir (flock(1), not the PID in the file): verified with one name, \
         never verified with a second one (stop and signal refused, 77, no signal attempted)",
    );
}

#[test]
fn a_locked_file_with_two_links_is_never_verified_for_any_caller() {
    const NAME: &str = "two-links-any-caller";
    if let Some(why) = no_strace() {
        return summary::skipped(NAME, &why);
    }
    let dir = tmp();
    let mut user = summary::is_root().then_some(65534);
    if user.is_some() {
        std::os::unix::fs::chown(dir.path(), Some(65534), Some(65534)).unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let reach = as_user(65534, 65534)
            .arg(bin())
            .arg("--version")
            .output()
            .unwrap();
        if reach.status.code() == Some(126) {
            // (The binary is below a directory nobody cannot enter.)
            user = None;
        }
    }
    let caller = || match user {
        Some(u) => as_user(u, u),
        None => as_is(),
    };
    let real = dir.path().join("app.pid");
    let mut start = caller();
    start
        .arg(bin())
        .args(["run", "--exec", "-p"])
        .arg(&real)
        .args(["--", "sleep", "60"]);
    let _holder = Owned::spawn(&mut start);
    let holder = wait_verified(&real);
    let second = dir.path().join("second.pid");
    std::fs::hard_link(&real, &second).unwrap();
    let exe = std::fs::read_link(format!("/proc/{holder}/exe")).unwrap();
    let pins = [["--exe", exe.to_str().unwrap()]];
    for p in [&real, &second] {
        running_not_verified(caller(), p, holder);
        refused_for_links(&caller, p, &pins);
    }
    std::fs::remove_file(&second).unwrap();
    let out = caller()
        .arg(bin())
        .args(["status", "--json", "-p"])
        .arg(&real)
        .output()
        .unwrap();
    let v = json(&out);
    assert_eq!(
        (&v["identity"], &v["evidence"]),
        (&"verified".into(), &"lock".into()),
        "{v}"
    );
    assert!(alive(holder));
    summary::passed(
        NAME,
        &format!(
            "{}: a locked file with a second name was running but consistent (never \
             verified) through both names; stop and signal refused (77) with and without \
             --exe, no signal attempted; verified again once the second name was removed",
            match user {
                Some(_) => "as nobody",
                None => "as the caller",
            }
        ),
    );
}

/// Case 4: root's PID files in a sticky, world-writable directory owned by
/// a user; that user renames one over the other: root's stop refuses (77).
#[test]
fn evidence_04_sticky_directory_owned_by_a_user() {
    const NAME: &str = "evidence-04-sticky-user-dir";
    if let Some(why) = not_root_or_no_strace() {
        return summary::skipped(NAME, &why);
    }
    let dir = tmp();
    let d = dir.path();
    std::os::unix::fs::chown(d, Some(65534), Some(65534)).unwrap();
    std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let (a, b) = (d.join("a.pid"), d.join("b.pid"));
    let ((_ha, pa), (_hb, pb)) = (locked_holder(&a), locked_holder(&b));
    let mv = as_user(65534, 65534)
        .arg("mv")
        .arg(&a)
        .arg(&b)
        .output()
        .unwrap();
    assert!(
        mv.status.success(),
        "the directory's owner renames: {}",
        text(&mv)
    );
    let (out, signals) = seam(&["stop", "-p", b.to_str().unwrap()]);
    assert!(signals.is_empty(), "{signals:?}");
    assert_eq!(out.status.code(), Some(77), "{}", text(&out));
    assert!(
        text(&out).contains("which a non-root user can write"),
        "{}",
        text(&out)
    );
    assert!(alive(pa) && alive(pb));
    summary::passed(
        NAME,
        "after the owner of a sticky world-writable directory renamed one of root's PID \
         files over another, root's stop refused (77) with no signal",
    );
}

/// A process with two threads (python3): its PID and the other thread's TID.
fn two_threads() -> Option<(Owned, i32)> {
    let proc = Owned::spawn(Command::new("python3").args([
        "-c",
        "import threading, time\n\
         threading.Thread(target=time.sleep, args=(60,), daemon=True).start()\n\
         time.sleep(60)",
    ]));
    let pid = proc.pid();
    let mut tid = 0;
    wait_for("the second thread", || {
        tid = std::fs::read_dir(format!("/proc/{pid}/task"))
            .map(|d| {
                d.flatten()
                    .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
                    .find(|&t| t != pid)
                    .unwrap_or(0)
            })
            .unwrap_or(0);
        tid != 0
    });
    Some((proc, tid))
}

/// Case 5: a file naming a TID of another process, with and without pidfd
/// support: mismatched, never signalled, never called running.
#[test]
fn evidence_05_a_thread_id_is_not_a_process() {
    const NAME: &str = "evidence-05-tid";
    if let Some(why) = no_strace_or_python() {
        return summary::skipped(NAME, &why);
    }
    let dir = tmp();
    let p = dir.path().join("app.pid");
    let (proc, tid) = two_threads().unwrap();
    write_pidfile(&p, &format!("{tid}\n"));
    let out = status_json(&p);
    let v = json(&out);
    assert_ne!(v["state"], "running", "{v}");
    assert_eq!(v["identity"], "mismatched", "{v}");
    assert!(
        v["identity_detail"].as_str().unwrap().contains("thread"),
        "{v}"
    );
    let out = Command::new(bin())
        .args(["pid", "-p"])
        .arg(&p)
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0), "pid: {}", text(&out));
    for no_pidfd in [false, true] {
        let seam = Seam {
            also_trace: "pidfd_open",
            also_inject: if no_pidfd {
                "pidfd_open:error=ENOSYS"
            } else {
                ""
            },
            ..Seam::default()
        };
        let run = |args: &[&str]| {
            let mut cmd = Command::new(bin());
            cmd.args(args).arg("-p").arg(&p);
            let (out, calls) = seam.run(&cmd).unwrap();
            let signals = signals_in(&calls);
            assert!(signals.is_empty(), "{args:?} {no_pidfd}: {signals:?}");
            if no_pidfd {
                // The injection reached it: pidfd_open was refused.
                assert!(
                    calls
                        .iter()
                        .all(|c| !c.contains("pidfd_open(") || c.contains("ENOSYS")),
                    "{args:?}: {calls:?}"
                );
            }
            out
        };
        let out = run(&["status", "--json"]);
        let v = json(&out);
        assert_ne!(v["state"], "running", "no pidfd {no_pidfd}: {v}");
        assert_eq!(v["identity"], "mismatched", "no pidfd {no_pidfd}: {v}");
        assert_ne!(out.status.code(), Some(0), "status: {}", text(&out));
        let out = run(&["pid"]);
        assert_ne!(
            out.status.code(),
            Some(0),
            "pid, no pidfd {no_pidfd}: {}",
            text(&out)
        );
        assert!(text(&out).trim() != tid.to_string(), "pid printed the TID");
        for args in [&["stop"][..], &["signal", "HUP"][..]] {
            let out = run(args);
            assert_eq!(out.status.code(), Some(1), "{args:?}: {}", text(&out));
            assert!(p.exists());
        }
    }
    assert!(alive(proc.pid()));
    drop(proc);
    summary::passed(
        NAME,
        "a file naming a thread's TID: status mismatched (a thread, never running), pid \
         failed, stop and signal attempted no signal and kept the file, each with and \
         without pidfd_open (ENOSYS)",
    );
}

/// Case 6: a process whose main thread called pthread_exit while another
/// thread runs (the leader shows Z): alive, running; stop signals it and
/// waits for the whole thread group.
#[test]
fn evidence_06_pthread_exit_leader_is_alive() {
    const NAME: &str = "evidence-06-pthread-exit";
    if let Some(why) = no_strace_or_python() {
        return summary::skipped(NAME, &why);
    }
    let dir = tmp();
    let p = dir.path().join("app.pid");
    let mut proc = Owned::spawn(Command::new("python3").args([
        "-c",
        "import ctypes, threading, time\n\
         threading.Thread(target=time.sleep, args=(60,)).start()\n\
         time.sleep(0.1)\n\
         ctypes.CDLL(None).pthread_exit(None)",
    ]));
    let pid = proc.pid();
    wait_for("the leader to exit alone", || {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        stat.rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
            && status.lines().any(|l| l == "Threads:\t2")
    });
    write_pidfile(&p, &format!("{pid}\n"));
    let out = status_json(&p);
    let v = json(&out);
    assert_eq!(v["state"], "running", "{v}");
    assert_eq!(v["pid"], pid, "{v}");
    assert_eq!(v["identity"], "consistent", "{v}");
    // Only pidfd_send_signal may get through (it reaches the pinned
    // process alone).
    let mut cmd = Command::new(bin());
    cmd.args(["stop", "--schedule", "TERM/20", "--json", "-p"])
        .arg(&p);
    let seam = Seam {
        inject: BROADCAST_CAPABLE,
        ..Seam::default()
    };
    let (out, calls) = seam.run(&cmd).unwrap();
    let signals = signals_in(&calls);
    assert!(
        signals.iter().all(|l| l.contains("pidfd_send_signal(")),
        "{signals:?}"
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(json(&out)["outcome"], "stopped", "{}", text(&out));
    // The whole group is gone: the process can be reaped now.
    let status = proc.0.try_wait().unwrap();
    assert!(
        status.is_some(),
        "stop returned before the thread group exited"
    );
    summary::passed(
        NAME,
        "a process whose main thread called pthread_exit (leader Z, 2 threads): status \
         running (consistent), stop signalled it through its pidfd and returned once the \
         whole thread group exited",
    );
}

/// `pidguard ARGS` as `uid` in a private mount namespace whose /proc is
/// mounted `hidepid=2`, or (`uid` None) as root without /proc at all.
fn hidden_view(uid: Option<u32>, args: &[&str]) -> Command {
    let script = match uid {
        Some(uid) => format!(
            "mount -t proc -o hidepid=2 proc /proc && \
             exec setpriv --reuid={uid} --regid={uid} --clear-groups -- \"$0\" \"$@\""
        ),
        None => "umount -l /proc && exec \"$0\" \"$@\"".to_string(),
    };
    let mut c = Command::new("unshare");
    c.args(["--mount", "--", "sh", "-c", &script])
        .arg(bin())
        .args(args)
        .stdin(Stdio::null());
    c
}

/// Case 7: a live process hidden from pidguard (another user's under
/// hidepid=2; root without /proc): never stale, sweep keeps its file, stop
/// does not exit 0.
#[test]
fn evidence_07_a_hidden_process_is_never_stale() {
    const NAME: &str = "evidence-07-hidden";
    if !summary::is_root() {
        return summary::skipped(NAME, "needs root (mount namespaces, setpriv)");
    }
    if let Some(why) = no_strace() {
        return summary::skipped(NAME, &why);
    }
    let dir = tmp();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let p = dir.path().join("app.pid");
    let ps = p.to_str().unwrap();
    let ds = dir.path().to_str().unwrap();
    let target = Owned::spawn(as_user(65534, 65534).args(["sleep", "30"]));
    wait_for("the exec", || {
        std::fs::read_to_string(format!("/proc/{}/comm", target.pid()))
            .is_ok_and(|c| c.trim() == "sleep")
    });
    write_pidfile(&p, &format!("{}\n", target.pid()));
    let mut seen = Vec::new();
    for (who, uid) in [
        ("a user under hidepid=2", Some(65533)),
        ("root without /proc", None),
    ] {
        let out = hidden_view(uid, &["status", "--json", "-p", ps])
            .output()
            .unwrap();
        if uid.is_some() && out.status.code() == Some(126) {
            // Only this half needs another user to run the binary.
            testkit::skipped(&format!(
                "{NAME}: {who}: the binary is not reachable by UID 65533 (exit 126: a \
                 directory above it is closed to other users); the root half still runs"
            ));
            continue;
        }
        seen.push(who);
        let v = json(&out);
        assert_ne!(v["state"], "stale", "{who}: {v}");
        assert_eq!(out.status.code(), Some(4), "{who}: {}", text(&out));
        let (out, signals) =
            under_strace(&hidden_view(uid, &["sweep", "--kill", "--json", ds])).unwrap();
        assert!(signals.is_empty(), "{who}: {signals:?}");
        assert_eq!(
            json(&out)["actions"][0]["action"],
            "keep",
            "{who}: {}",
            text(&out)
        );
        assert!(p.exists(), "{who}: sweep removed a live process's file");
        let (out, signals) = under_strace(&hidden_view(uid, &["stop", "-p", ps])).unwrap();
        assert!(signals.is_empty(), "{who}: {signals:?}");
        assert_eq!(out.status.code(), Some(77), "{who}: {}", text(&out));
        assert!(
            text(&out).contains("could not be read"),
            "{who}: {}",
            text(&out)
        );
        assert!(p.exists() && alive(target.pid()));
    }
    assert!(
        seen.contains(&"root without /proc"),
        "the root half always runs"
    );
    summary::passed(
        NAME,
        &format!(
            "a live process hidden from {}: status unknown (4), never stale; sweep --kill \
             kept its file; stop refused (77){}",
            seen.join(" and from "),
            if seen.len() < 2 {
                " (the hidepid=2 half skipped: the binary is not reachable by UID 65533)"
            } else {
                ""
            }
        ),
    );
}

/// Case 8: a holder whose PID is above a pid_max lowered after it started
/// (per PID namespace since Linux 6.14): still named and stoppable.
#[test]
fn evidence_08_holder_above_a_lowered_pid_max() {
    const NAME: &str = "evidence-08-pid-max";
    if let Some(why) = Namespace::unavailable() {
        return summary::skipped(NAME, &why);
    }
    // Before 6.14 pid_max is global: lowering it would affect the host.
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut v = release
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse::<u32>().ok());
    let (major, minor) = (v.next().unwrap_or(0), v.next().unwrap_or(0));
    if (major, minor) < (6, 14) {
        return summary::skipped(NAME, "pid_max is per PID namespace only from Linux 6.14");
    }
    const HIGH: i32 = 30_000;
    let dir = tmp();
    let p = dir.path().join("app.pid");
    let ns = Namespace::start();
    ns.next_pid(HIGH);
    let _holder = Owned::spawn(
        ns.command(bin())
            .args(["run", "--exec", "-p"])
            .arg(&p)
            .args(["--", "sleep", "60"]),
    );
    pid_in_where(&p, |pid| pid == HIGH);
    let out = ns
        .command("sh")
        .arg("-c")
        .arg("echo 20000 > /proc/sys/kernel/pid_max && cat /proc/sys/kernel/pid_max")
        .output()
        .unwrap();
    assert_eq!(text(&out).trim(), "20000", "{}", text(&out));
    let out = ns
        .command(bin())
        .args(["pid", "-p"])
        .arg(&p)
        .output()
        .unwrap();
    assert_eq!(text(&out).trim(), HIGH.to_string(), "{}", text(&out));
    let out = ns
        .command(bin())
        .args(["stop", "--json", "-p"])
        .arg(&p)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(json(&out)["outcome"], "stopped", "{}", text(&out));
    drop(ns);
    summary::passed(
        NAME,
        &format!(
            "in a PID namespace whose pid_max was lowered to 20000 after the holder got PID \
             {HIGH}: pid named it and stop stopped it"
        ),
    );
}

/// nginx's configuration in `dir`, listening on `port` on loopback.
fn nginx_conf(dir: &Path, port: u16) -> PathBuf {
    let conf = dir.join("nginx.conf");
    let d = dir.display();
    std::fs::write(
        &conf,
        format!(
            "user www-data;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
             events {{ worker_connections 16; }}\n\
             http {{ access_log off; client_body_temp_path {d}/body;\n\
             server {{ listen 127.0.0.1:{port}; return 204; }} }}\n"
        ),
    )
    .unwrap();
    conf
}

/// Cases 9, 10 and 11: nginx started normally (its PID file unlocked).
/// Filters that do not match (a wrong --exe path is a usage error) leave it
/// running with its file; sweep --kill (no NAME.meta) signals nothing; run
/// --daemon and the library's acquire refuse its file (75, holder named);
/// after a clock step (the file older than nginx) stop neither signals nor
/// deletes.
#[test]
fn evidence_09_10_11_nginx() {
    const NAME: &str = "evidence-09-10-11-nginx";
    if let Some(why) = no_strace().or_else(|| missing("/usr/sbin/nginx", "nginx-light")) {
        return summary::skipped(NAME, &why);
    }
    if !summary::is_root() {
        return summary::skipped(NAME, "needs root (nginx's master runs as root)");
    }
    let dir = tmp();
    let d = dir.path();
    std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    let conf = nginx_conf(d, free_port());
    let started = Command::new("/usr/sbin/nginx")
        .arg("-p")
        .arg(d)
        .arg("-c")
        .arg(&conf)
        .output()
        .unwrap();
    assert!(started.status.success(), "nginx: {}", text(&started));
    let pidfile = d.join("nginx.pid");
    let nginx = Daemon::from_pidfile(&pidfile);
    let ps = pidfile.to_str().unwrap();
    let content = std::fs::read_to_string(&pidfile).unwrap();

    // Case 9: filters. A --exe path that surely does not exist (inside
    // the test's own directory, never created) is a usage error.
    let nowhere = d.join("no-such-dir").join("nginx");
    let (out, signals) = seam(&["stop", "--exe", nowhere.to_str().unwrap(), "-p", ps]);
    assert!(signals.is_empty(), "{signals:?}");
    assert_eq!(
        out.status.code(),
        Some(2),
        "--exe that does not exist: {}",
        text(&out)
    );
    for (filter, value) in [("--comm", "ngnix"), ("--user", "www-data")] {
        let (out, signals) = seam(&["stop", filter, value, "-p", ps]);
        assert!(signals.is_empty(), "{filter}: {signals:?}");
        assert_eq!(out.status.code(), Some(1), "{filter}: {}", text(&out));
        assert!(text(&out).contains(filter), "{filter}: {}", text(&out));
        assert!(alive(nginx.pid), "{filter}");
        assert_eq!(std::fs::read_to_string(&pidfile).unwrap(), content);
    }
    // Case 10: sweep --kill, no nginx.meta: nothing signalled, file kept.
    let (out, signals) = seam(&["sweep", "--kill", d.to_str().unwrap()]);
    assert!(signals.is_empty(), "sweep --kill: {signals:?}");
    assert!(text(&out).contains("nginx (PID"), "{}", text(&out));
    assert!(
        pidfile.exists(),
        "sweep removed nginx's file: {}",
        text(&out)
    );

    // Case 11: run --daemon and acquire refuse nginx's unlocked file.
    let mtime = std::fs::metadata(&pidfile).unwrap().modified().unwrap();
    // `pidguard VERB… -p nginx.pid -- nginx -g 'daemon off;'`.
    let second_nginx = |verb: &[&str]| {
        Command::new(bin())
            .args(verb)
            .args(["-p", ps, "--", "/usr/sbin/nginx", "-p"])
            .arg(d)
            .arg("-c")
            .arg(&conf)
            .args(["-g", "daemon off;"])
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let out = second_nginx(&["run", "--daemon"]);
    assert_eq!(out.status.code(), Some(75), "run --daemon: {}", text(&out));
    assert!(text(&out).contains("not locked"), "{}", text(&out));
    let err = pidguard::Pidfile::new(&pidfile).acquire().unwrap_err();
    assert_eq!(err.kind(), pidguard::ErrorKind::AlreadyRunning, "{err}");
    assert_eq!(err.holder().map(|p| p.get()), Some(nginx.pid), "{err}");
    // ensure: nginx is the daemon, already running (0, its PID), nothing
    // started or taken over.
    let out = second_nginx(&["ensure", "--json"]);
    assert_eq!(out.status.code(), Some(0), "ensure: {}", text(&out));
    let v = json(&out);
    assert_eq!(
        (&v["pid"], &v["started"]),
        (&nginx.pid.into(), &false.into()),
        "{v}"
    );
    assert_eq!(std::fs::read_to_string(&pidfile).unwrap(), content);
    assert_eq!(
        std::fs::metadata(&pidfile).unwrap().modified().unwrap(),
        mtime
    );

    // Case 9, clock step: the file now looks older than nginx.
    let touch = Command::new("touch")
        .args(["-d", "-1 hour", ps])
        .status()
        .unwrap();
    assert!(touch.success());
    let (out, signals) = seam(&["stop", "-p", ps]);
    assert!(signals.is_empty(), "{signals:?}");
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("clock"), "{}", text(&out));
    assert!(pidfile.exists() && alive(nginx.pid));
    drop(nginx);
    summary::passed(
        NAME,
        "nginx with its unlocked PID file: stop --exe (missing path) 2, --comm/--user no \
         match 1, sweep --kill and a clock-stepped stop signalled nothing and kept its file; \
         run --daemon and acquire() refused it (75, holder named); ensure reported it \
         running (0, started false), the file untouched",
    );
}

/// A service directory as Debian makes it (`/run/<svc>`, owned by the
/// service's user), inside `root`.
fn service_dir(root: &Path, svc: &str, uid: u32, gid: u32) -> PathBuf {
    let d = root.join("run").join(svc);
    std::fs::create_dir_all(&d).unwrap();
    std::os::unix::fs::chown(&d, Some(uid), Some(gid)).unwrap();
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
    d
}

/// The UID and GID of a system user, from /etc/passwd.
fn user_ids(name: &str) -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.first() == Some(&name))
            .then(|| Some((f.get(2)?.parse().ok()?, f.get(3)?.parse().ok()?)))?
    })
}

/// `pidguard ARGS`, the broadcast-capable signal calls failing (only
/// pidfd_send_signal, which reaches the pinned process alone, works): its
/// output and the signals it sent.
fn pinned_only(args: &[&str]) -> (Output, Vec<String>) {
    let mut cmd = Command::new(bin());
    cmd.args(args);
    let seam = Seam {
        inject: BROADCAST_CAPABLE,
        ..Seam::default()
    };
    let (out, calls) = seam.run(&cmd).unwrap();
    let signals = signals_in(&calls);
    assert!(
        signals.iter().all(|l| l.contains("pidfd_send_signal(")),
        "{args:?}: {signals:?}"
    );
    (out, signals)
}

/// Starts a daemon that forks away (`cmd`), and waits for its PID file.
fn start_daemon(mut cmd: Command, pidfile: &Path) -> Daemon {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{cmd:?}: {}", text(&out));
    Daemon::from_pidfile(pidfile)
}

/// `wait --timeout 1s` without filters on a running daemon, under the
/// seam: it waits (no trust refusal), sends nothing, and says it still runs
/// (1).
fn waits_without_filters(pidfile: &str) {
    let (out, signals) = seam(&["wait", "--timeout", "1s", "-p", pidfile]);
    assert!(signals.is_empty(), "wait sent: {signals:?}");
    assert_eq!(
        out.status.code(),
        Some(1),
        "wait, no filter: {}",
        text(&out)
    );
}

/// `pidguard ARGS` on a daemon: succeeds, signalling only the pinned one,
/// with `signal` (`SIGHUP`…): the trace shows that pidfd_send_signal.
fn pinned_ok(args: &[&str], signal: &str) {
    let (out, signals) = pinned_only(args);
    assert_eq!(out.status.code(), Some(0), "{args:?}: {}", text(&out));
    assert!(
        signals.iter().any(|l| l.contains("pidfd_send_signal(")
            && l.contains(&format!(", {signal},"))
            && l.ends_with("= 0")),
        "{args:?}: no {signal} sent through a pidfd: {signals:?}"
    );
}

/// `pidguard ARGS` (no filter) on a file others could have written: refused
/// (77), no signal attempted, the message naming a filter that would allow it.
fn refused_unpinned(args: &[&str]) {
    let (out, signals) = seam(args);
    assert!(signals.is_empty(), "{args:?}: {signals:?}");
    assert_eq!(out.status.code(), Some(77), "unpinned: {}", text(&out));
    assert!(
        text(&out).contains("--exe"),
        "names the filter: {}",
        text(&out)
    );
}

/// Case 12: as root, redis, memcached and dnsmasq with their files in
/// Debian-style directories owned by their service users: a filter pins
/// the process and allows signal and stop; without one they are refused
/// naming the filters; wait works without filters.
#[test]
fn evidence_12_debian_daemons_as_root() {
    const NAME: &str = "evidence-12-debian-daemons";
    if !summary::is_root() {
        return summary::skipped(NAME, "needs root (service users, trust checks)");
    }
    if let Some(why) = no_strace()
        .or_else(|| missing("/usr/bin/redis-server", "redis-server"))
        .or_else(|| missing("/usr/bin/memcached", "memcached"))
        .or_else(|| missing("/usr/sbin/dnsmasq", "dnsmasq-base"))
    {
        return summary::skipped(NAME, &why);
    }
    let ids = |n: &str| user_ids(n).unwrap_or_else(|| panic!("no user {n} (its package makes it)"));
    let root = tmp();
    std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o755)).unwrap();

    // redis, as its user.
    let (ru, rg) = ids("redis");
    let rdir = service_dir(root.path(), "redis", ru, rg);
    let rfile = rdir.join("redis-server.pid");
    let port = free_port().to_string();
    let mut cmd = as_user(ru, rg);
    cmd.args([
        "/usr/bin/redis-server",
        "--port",
        &port,
        "--bind",
        "127.0.0.1",
    ])
    .args(["--daemonize", "yes", "--save", "", "--appendonly", "no"])
    .arg("--pidfile")
    .arg(&rfile)
    .arg("--dir")
    .arg(&rdir)
    .arg("--logfile")
    .arg(rdir.join("redis.log"));
    let redis = start_daemon(cmd, &rfile);
    let rs = rfile.to_str().unwrap();
    refused_unpinned(&["signal", "-p", rs, "HUP"]);
    pinned_ok(
        &["signal", "--exe", "/usr/bin/redis-server", "-p", rs, "HUP"],
        "SIGHUP",
    );
    assert!(alive(redis.pid), "redis ignores SIGHUP");
    pinned_ok(&["signal", "--user", "redis", "-p", rs, "HUP"], "SIGHUP");
    assert!(alive(redis.pid), "redis ignores SIGHUP");
    waits_without_filters(rs);
    pinned_ok(
        &["stop", "--exe", "/usr/bin/redis-server", "-p", rs],
        "SIGTERM",
    );
    assert!(!alive(redis.pid));

    // memcached, as its user.
    let (mu, mg) = ids("memcache");
    let mdir = service_dir(root.path(), "memcached", mu, mg);
    let mfile = mdir.join("memcached.pid");
    let port = free_port().to_string();
    let mut cmd = as_user(mu, mg);
    cmd.args([
        "/usr/bin/memcached",
        "-d",
        "-l",
        "127.0.0.1",
        "-U",
        "0",
        "-p",
        &port,
    ])
    .arg("-P")
    .arg(&mfile);
    let memcached = start_daemon(cmd, &mfile);
    let ms = mfile.to_str().unwrap();
    refused_unpinned(&["stop", "-p", ms]);
    pinned_ok(
        &["stop", "--exe", "/usr/bin/memcached", "-p", ms],
        "SIGTERM",
    );
    assert!(!alive(memcached.pid));

    // dnsmasq: started as root, drops to its user.
    let (du, dg) = ids("dnsmasq");
    let ddir = service_dir(root.path(), "dnsmasq", du, dg);
    let dfile = ddir.join("dnsmasq.pid");
    let port = free_port().to_string();
    let mut cmd = Command::new("/usr/sbin/dnsmasq");
    cmd.args(["--conf-file=/dev/null", "--no-resolv", "--no-hosts"])
        .args([
            "--bind-interfaces",
            "--listen-address=127.0.0.1",
            "--user=dnsmasq",
        ])
        .arg(format!("--port={port}"))
        .arg(format!("--pid-file={}", dfile.display()))
        .arg(format!(
            "--log-facility={}",
            ddir.join("dnsmasq.log").display()
        ));
    let dnsmasq = start_daemon(cmd, &dfile);
    let ds = dfile.to_str().unwrap();
    pinned_ok(
        &["signal", "--comm", "dnsmasq", "-p", ds, "USR1"],
        "SIGUSR1",
    );
    assert!(alive(dnsmasq.pid));
    waits_without_filters(ds);
    pinned_ok(&["stop", "--comm", "dnsmasq", "-p", ds], "SIGTERM");
    assert!(!alive(dnsmasq.pid));
    summary::passed(
        NAME,
        "as root, redis/memcached/dnsmasq with files in service-user directories: unpinned \
         signal/stop refused (77) naming the filters; signal HUP --exe and --user redis, \
         stop --exe redis/memcached, signal USR1/stop --comm dnsmasq each sent its signal \
         through a pidfd (seen in the trace); wait worked without filters, sending nothing",
    );
}

/// Containers, the other direction: a file locked by a host process, seen
/// from a PID namespace, with no process of that PID there and with one:
/// running (never stale), never taken over, stop refuses, sweep keeps it.
#[test]
fn containers_host_holder_seen_from_a_namespace() {
    const NAME: &str = "containers-host-holder";
    if let Some(why) = Namespace::unavailable().or_else(no_strace) {
        return summary::skipped(NAME, &why);
    }
    let dir = tmp();
    let p = dir.path().join("app.pid");
    let (_holder, h) = locked_holder(&p);
    let b = Namespace::start();
    let check = |what: &str| {
        let mut status = b.command(bin());
        status.args(["status", "--json", "-p"]).arg(&p);
        held_unidentified(what, &status.output().unwrap());
        let out = b
            .command(bin())
            .args(["run", "-p"])
            .arg(&p)
            .args(["--", "true"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(75), "{what}: {}", text(&out));
        stop_refuses(what, b.command(bin()), &p);
        let mut sweep = b.command(bin());
        sweep.args(["sweep", "--kill", "--json"]).arg(dir.path());
        let (out, signals) = under_strace(&sweep).unwrap();
        assert!(signals.is_empty(), "{what}: {signals:?}");
        assert_eq!(
            json(&out)["actions"][0]["action"],
            "keep",
            "{what}: {}",
            text(&out)
        );
        assert!(p.exists(), "{what}");
    };
    check(&format!("a namespace without PID {h}"));
    // Now a bystander with the holder's host PID inside the namespace.
    b.next_pid(h);
    let bystander_cmd = Owned::spawn(b.command("sleep").arg("60"));
    let bystander = Namespace::child_of(bystander_cmd.pid());
    assert_eq!(b.ns_pid(bystander), Some(h));
    check(&format!("a namespace whose PID {h} is a bystander"));
    assert!(alive(h) && alive(bystander));
    drop(bystander_cmd);
    drop(b);
    summary::passed(
        NAME,
        "a file locked on the host seen from a PID namespace, without and with a bystander \
         of the same PID there: running with no PID named, run refused (75), stop refused \
         (77) and sweep --kill kept it, no signal attempted",
    );
}

/// Issue 14's inheritor: the PID in the file exited and a process that
/// inherited the lock holds it: running, naming the holder (or, where its
/// descriptors cannot be read, "held by a process that could not be
/// identified"), never stale; stop targets only the holder; wait does not
/// return 0 while it runs.
#[test]
fn inheritor_holds_the_lock() {
    const NAME: &str = "inheritor";
    if let Some(why) = no_strace() {
        return summary::skipped(NAME, &why);
    }
    let dir = tmp();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let p = dir.path().join("app.pid");
    let child_file = dir.path().join("child");
    let mut first = Owned::spawn(
        Command::new(bin())
            .args(["run", "--exec", "-p"])
            .arg(&p)
            .args(["--", "sh", "-c", "sleep 60 & echo $! > \"$0\""])
            .arg(&child_file),
    );
    let first_pid = first.pid();
    first.0.wait().unwrap();
    let heir = pid_in(&child_file);
    let _heir = Pinned::new([heir]);
    let out = status_json(&p);
    held_by("the host", &out, heir, first_pid);
    stop_targets_only(&p, heir, first_pid);
    let out = Command::new(bin())
        .args(["wait", "--timeout", "1s", "-p"])
        .arg(&p)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "wait: {}", text(&out));
    // A user cannot read root's descriptors: the holder is unknown. The
    // user runs a copy of pidguard in the test's directory, which it can
    // always execute (the build's own may lie under a directory it cannot
    // enter).
    let user_sees = if summary::is_root() {
        let exe = dir.path().join("pidguard");
        std::fs::copy(bin(), &exe).unwrap();
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        let as_a_user = |args: &[&str]| {
            let mut c = as_user(65533, 65533);
            c.arg(&exe).args(args);
            c
        };
        let out = as_a_user(&["status", "--json", "-p"])
            .arg(&p)
            .output()
            .unwrap();
        held_unidentified("a user", &out);
        let v = json(&out);
        assert_eq!(v["file_pid"], first_pid, "a user: {v}");
        assert_eq!(v["locked"], true, "a user: {v}");
        let out = as_a_user(&["status", "-p"]).arg(&p).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "a user: {}", text(&out));
        assert!(
            text(&out).contains(&format!(
                "running (locked, held by a process that could not be identified; the file \
                 names PID {first_pid}, which does not hold the lock)"
            )),
            "a user: {}",
            text(&out)
        );
        stop_refuses("a user", as_a_user(&[]), &p);
        let out = as_a_user(&["wait", "--timeout", "1s", "-p"])
            .arg(&p)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "a user's wait: {}", text(&out));
        "; a user who cannot read its descriptors saw running, held by a process that could \
         not be identified (naming the file's PID), its stop refused (77, no signal attempted) \
         and its wait --timeout exited 1"
    } else {
        summary::skipped(
            "inheritor-as-a-user",
            "needs root (a user who cannot read the holder's descriptors)",
        );
        "; the case of a user who cannot read its descriptors needs root (skipped)"
    };
    assert!(alive(heir));
    summary::passed(
        NAME,
        &format!(
            "the file's PID exited and its child kept the lock: status named the child (and \
             the file's PID), stop and signal targeted only it, wait --timeout exited 1{user_sees}"
        ),
    );
}

/// Review finding 1: a PID namespace that kept the host's `/proc`
/// (`unshare --pid --fork` without `--mount-proc`). The file names its
/// holder's host PID H; inside, a bystander gets PID H too (ns_last_pid).
/// `/proc/H` there describes the host holder (it holds the lock) while
/// `pidfd_open(H)` reaches the bystander: every `/proc` fact is unproved
/// there, so stop refuses (77) and attempts no signal, status names no
/// PID, run refuses (75), and both processes live on.
#[test]
fn foreign_proc_proves_nothing() {
    const NAME: &str = "foreign-proc";
    if let Some(why) = Namespace::unavailable().or_else(no_strace) {
        return summary::skipped(NAME, &why);
    }
    let dir = tmp();
    let p = dir.path().join("app.pid");
    let (_holder, h) = locked_holder(&p);
    let b = Namespace::start_sharing_proc();
    b.next_pid(h);
    let bystander_cmd = Owned::spawn(b.command("sleep").arg("60"));
    let bystander = Namespace::child_of(bystander_cmd.pid());
    assert_eq!(b.ns_pid(bystander), Some(h), "the bystander's PID inside");
    let what = format!("a namespace on the host's /proc whose PID {h} is a bystander");
    for args in [&["stop", "--json", "-p"][..], &["signal", "TERM", "-p"][..]] {
        let mut cmd = b.command(bin());
        cmd.args(args).arg(&p);
        let (out, signals) = under_strace(&cmd).unwrap();
        assert!(
            signals.is_empty(),
            "{what}: {args:?} signalled: {signals:?}"
        );
        assert_eq!(
            out.status.code(),
            Some(77),
            "{what}: {args:?}: {}",
            text(&out)
        );
        assert!(p.exists(), "{what}: {args:?} removed the file");
    }
    let mut status = b.command(bin());
    status.args(["status", "--json", "-p"]).arg(&p);
    let out = status.output().unwrap();
    held_unidentified(&what, &out);
    assert!(
        text(&out).contains("/proc is of another PID namespace"),
        "{what}: the reason: {}",
        text(&out)
    );
    let out = b
        .command(bin())
        .args(["run", "-p"])
        .arg(&p)
        .args(["--", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(75), "{what}: run: {}", text(&out));
    assert!(alive(h) && alive(bystander));
    drop(bystander_cmd);
    drop(b);
    summary::passed(
        NAME,
        "a namespace sharing the host's /proc, with a bystander of the holder's PID: \
         stop and signal refused (77) with no signal attempted, status running with no PID \
         named (/proc is of another PID namespace), run refused (75)",
    );
}

/// `pidguard run -p P -- true` in `cmd`'s place: refused with 75 (the file
/// not taken over), the file's bytes unchanged.
fn run_refused(what: &str, mut cmd: Command, p: &Path) {
    let before = std::fs::read(p).unwrap();
    let out = cmd
        .args(["run", "-p"])
        .arg(p)
        .args(["--", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(75), "{what}: {}", text(&out));
    assert!(
        text(&out).contains("not taken over"),
        "{what}: the reason: {}",
        text(&out)
    );
    assert_eq!(
        std::fs::read(p).unwrap(),
        before,
        "{what}: the file changed"
    );
}

/// Review finding 4: an unlocked file naming a live process is taken over
/// only when its owner is proved gone (dead, a TID). Timing evidence (the
/// file older than the process) and PID 1 in a container are not proof:
/// `run` refuses (75) and the file is untouched.
#[test]
fn unlocked_file_of_a_live_process_is_taken_over_only_when_proved_gone() {
    const NAME: &str = "takeover-proof";
    let dir = tmp();
    let p = dir.path().join("app.pid");
    let daemon = Owned::spawn(Command::new("sleep").arg("60"));
    write_pidfile(&p, &format!("{}\n", daemon.pid()));
    backdate(&p, Duration::from_secs(3600));
    run_refused(
        "a file older than its live process",
        Command::new(bin()),
        &p,
    );
    assert!(alive(daemon.pid()));
    drop(daemon);
    if let Some(why) = Namespace::unavailable() {
        return summary::skipped(NAME, &format!("the container case: {why}"));
    }
    let nginx = dir.path().join("nginx.pid");
    let script = format!("echo 1 > '{}'; exec sleep 1000", nginx.display());
    let b = Namespace::start_with(&["sh", "-c", &script]);
    pid_in_where(&nginx, |pid| pid == 1);
    run_refused(
        "a container's PID 1 naming itself",
        b.command(bin()),
        &nginx,
    );
    drop(b);
    summary::passed(
        NAME,
        "an unlocked file older than its live process, and a container's PID 1 naming \
         itself: run refused (75, the reason named), the file unchanged",
    );
}

/// A file's bytes and modification time.
fn snapshot(p: &Path) -> (Vec<u8>, SystemTime) {
    let bytes = std::fs::read(p).unwrap();
    (bytes, std::fs::metadata(p).unwrap().modified().unwrap())
}

/// ensure and a daemon that does not lock its PID file (a stand-in for
/// nginx or sshd: a live process whose unlocked file it wrote after it
/// started): the daemon already runs, so ensure prints its PID and exits
/// 0, starting nothing and leaving the file alone (the library's
/// `ensure` says `Ensured::Running` without calling its spawn). With a
/// `--socket` that does not answer it tries to start one, and the start
/// refuses the file (75): still nothing started, the file untouched.
#[test]
fn ensure_reports_a_daemon_that_does_not_lock_as_running() {
    const NAME: &str = "ensure-unlocked-daemon";
    if let Some(why) = no_strace() {
        return summary::skipped(NAME, &why);
    }
    let dir = tmp();
    let p = dir.path().join("daemon.pid");
    let mark = dir.path().join("second-instance-started");
    let daemon = Owned::spawn(Command::new("sleep").arg("60"));
    let pid = daemon.pid();
    // Written after it started, as a daemon writes its own file.
    write_pidfile(&p, &format!("{pid}\n"));
    let before = snapshot(&p);
    let start = format!("touch '{}'; exec sleep 60", mark.display());
    let ensure = |extra: &[&str]| {
        let mut cmd = Command::new(bin());
        cmd.args(["ensure", "--json", "-p"])
            .arg(&p)
            .args(extra)
            .args(["--", "sh", "-c", &start]);
        let (out, signals) = under_strace(&cmd).expect("strace checked above");
        assert!(
            signals.is_empty(),
            "ensure {extra:?} signalled: {signals:?}"
        );
        out
    };
    let out = ensure(&[]);
    assert_eq!(out.status.code(), Some(0), "ensure: {}", text(&out));
    let v = json(&out);
    assert_eq!(
        (&v["pid"], &v["started"]),
        (&pid.into(), &false.into()),
        "{v}"
    );
    let sock = dir.path().join("daemon.sock");
    let out = ensure(&["--socket", sock.to_str().unwrap(), "--ready-timeout", "2s"]);
    assert_eq!(
        out.status.code(),
        Some(75),
        "ensure --socket: {}",
        text(&out)
    );
    assert!(text(&out).contains("not locked"), "{}", text(&out));
    let spawned = std::cell::Cell::new(false);
    let found = pidguard::ensure::ensure(
        &pidguard::Pidfile::new(&p),
        &pidguard::ensure::EnsureOptions::new(),
        || {
            spawned.set(true);
            Err::<pidguard::Pid, std::io::Error>(std::io::Error::other(
                "a second instance was to be started",
            ))
        },
    );
    assert!(!spawned.get(), "ensure() called spawn: {found:?}");
    assert_eq!(found.unwrap().pid().get(), pid);
    // (Give a start that was wrongly begun time to show.)
    std::thread::sleep(Duration::from_millis(200));
    assert!(!mark.exists(), "a second instance was started");
    assert_eq!(snapshot(&p), before, "the file was changed");
    assert!(alive(pid));
    summary::passed(
        NAME,
        "a live daemon's unlocked file (written after it started): ensure printed its PID \
         (exit 0, started false), signalled and started nothing, the library's ensure said Running \
         without spawning; with a socket that does not answer the start was refused (75); \
         the file untouched",
    );
}

/// Item "file predates the boot": timing evidence that decides only where
/// the start time of the process cannot be read while the boot time can
/// (`CLOCK_BOOTTIME` needs no /proc). With /proc, a process alive now
/// started after the boot, hence after such a file: "started after the
/// file" decides first. Root in a mount namespace without /proc, a file
/// written before the boot naming a live process: mismatched ("before the
/// last boot", the clock-step wording), stale but kept; stop attempts no
/// signal and exits 1; sweep --kill keeps it.
#[test]
fn a_file_from_before_the_boot_is_timing_evidence_where_start_times_are_hidden() {
    const NAME: &str = "file-before-boot";
    if let Some(why) = not_root_or_no_strace() {
        return summary::skipped(NAME, &format!("{why} (a mount namespace without /proc)"));
    }
    let dir = tmp();
    let p = dir.path().join("app.pid");
    let ps = p.to_str().unwrap();
    let target = Owned::spawn(Command::new("sleep").arg("60"));
    write_pidfile(&p, &format!("{}\n", target.pid()));
    let uptime: f64 = std::fs::read_to_string("/proc/uptime")
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    backdate(
        &p,
        Duration::from_secs_f64(uptime) + Duration::from_secs(3600),
    );
    let v = json(&status_json(&p));
    assert_eq!(v["identity"], "mismatched", "{v}");
    assert!(
        v["identity_detail"].as_str().unwrap().contains("started"),
        "with /proc the start time decides: {v}"
    );
    let out = hidden_view(None, &["status", "--json", "-p", ps])
        .output()
        .unwrap();
    let v = json(&out);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(
        (&v["state"], &v["identity"]),
        (&"stale".into(), &"mismatched".into()),
        "{v}"
    );
    let detail = v["identity_detail"].as_str().unwrap();
    assert!(
        detail.contains("before the last boot") && detail.contains("clock was stepped"),
        "{v}"
    );
    let (out, signals) = under_strace(&hidden_view(None, &["stop", "-p", ps])).unwrap();
    assert!(signals.is_empty(), "stop: {signals:?}");
    assert_eq!(out.status.code(), Some(1), "stop: {}", text(&out));
    assert!(
        text(&out).contains("before the last boot"),
        "{}",
        text(&out)
    );
    let ds = dir.path().to_str().unwrap();
    let (out, signals) =
        under_strace(&hidden_view(None, &["sweep", "--kill", "--json", ds])).unwrap();
    assert!(signals.is_empty(), "sweep: {signals:?}");
    assert_eq!(json(&out)["actions"][0]["action"], "keep", "{}", text(&out));
    assert!(p.exists() && alive(target.pid()));
    summary::passed(
        NAME,
        "a file written before the boot naming a live process: with /proc the start time \
         decided (started after the file); root without /proc: mismatched, the file before \
         the last boot (clock-step wording), stale but kept; stop sent nothing and exited 1, \
         sweep --kill kept it",
    );
}

/// A running image's path is anyone's choice (a binary copied under a name
/// with a newline and an escape sequence): the --exe mismatch in stop's and
/// signal's human output shows it escaped on one line, so it cannot
/// forge a line of output.
#[test]
fn an_executable_path_with_control_characters_is_shown_escaped() {
    const NAME: &str = "exe-path-escaped";
    if let Some(why) = no_strace() {
        return summary::skipped(NAME, &why);
    }
    let dir = tmp();
    let sleep = Owned::spawn(Command::new("sleep").arg("60"));
    let real = std::fs::read_link(format!("/proc/{}/exe", sleep.pid())).unwrap();
    drop(sleep);
    let odd = dir.path().join("x\nforged: PID 1 stopped\x1b[2K");
    std::fs::create_dir(&odd).unwrap();
    let copy = odd.join("sleep");
    std::fs::copy(&real, &copy).unwrap();
    let target = Owned::spawn(Command::new(&copy).arg("60"));
    wait_for("the copy to run", || {
        std::fs::read_link(format!("/proc/{}/exe", target.pid())).is_ok_and(|e| e == copy)
    });
    let p = dir.path().join("app.pid");
    write_pidfile(&p, &format!("{}\n", target.pid()));
    let (ps, rs) = (p.to_str().unwrap(), real.to_str().unwrap());
    for args in [
        &["stop", "--exe", rs, "-p", ps][..],
        &["signal", "--exe", rs, "-p", ps, "HUP"][..],
    ] {
        let (out, signals) = seam(args);
        assert!(signals.is_empty(), "{args:?}: {signals:?}");
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", text(&out));
        let all = text(&out);
        assert!(!all.contains('\x1b'), "{args:?}: a raw escape: {all:?}");
        assert!(
            all.lines().all(|l| !l.starts_with("forged")),
            "{args:?}: a forged line: {all:?}"
        );
        assert!(
            all.contains("x\\nforged: PID 1 stopped\\u{1b}[2K/sleep, not"),
            "{args:?}: {all:?}"
        );
    }
    assert!(alive(target.pid()));
    summary::passed(
        NAME,
        "a process run from a path with a newline and an escape sequence: stop and signal \
         --exe (no match, 1, nothing signalled) showed the path escaped on one line",
    );
}

/// Review finding 13: `--user` needs the real, effective and saved UIDs to
/// be the user's. As root, a setuid-root program started by nobody (real
/// UID 65534, effective and saved 0) is not nobody's, nor root's: `stop
/// --user` with either exits 1 under the seam, nothing signalled, the
/// file kept.
#[test]
fn user_filter_needs_real_effective_and_saved_uids() {
    const NAME: &str = "user-all-uids";
    if let Some(why) = not_root_or_no_strace() {
        return summary::skipped(NAME, &why);
    }
    let dir = tmp();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let prog = dir.path().join("suid-sleep");
    std::fs::copy("/bin/sleep", &prog).unwrap();
    std::fs::set_permissions(&prog, std::fs::Permissions::from_mode(0o4755)).unwrap();
    let daemon = Owned::spawn(as_user(65534, 65534).arg(&prog).arg("60"));
    let pid = daemon.pid();
    let uids = || {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("Uid:").map(str::to_owned))
            .unwrap_or_default()
    };
    wait_for("the setuid program to run", || {
        uids().split_whitespace().take(3).collect::<Vec<_>>() == ["65534", "0", "0"]
    });
    let p = dir.path().join("app.pid");
    write_pidfile(&p, &format!("{pid}\n"));
    for user in ["65534", "0"] {
        let (out, signals) = seam(&["stop", "--user", user, "-p", p.to_str().unwrap()]);
        assert!(signals.is_empty(), "--user {user}: {signals:?}");
        assert_eq!(out.status.code(), Some(1), "--user {user}: {}", text(&out));
        assert!(
            text(&out).contains("--user"),
            "--user {user}: {}",
            text(&out)
        );
        assert!(p.exists() && alive(pid), "--user {user}");
    }
    drop(daemon);
    summary::passed(
        NAME,
        "a setuid-root sleep started by nobody: stop --user 65534 and --user 0 exit 1 \
         naming --user, nothing signalled, the file kept",
    );
}

/// Review finding 14: a command name that is not UTF-8 (an executable
/// named with byte 0xff) is read as bytes: the holder is verified and
/// `stop` stops it.
#[test]
fn a_command_name_that_is_not_utf8_is_read() {
    use std::os::unix::ffi::OsStrExt;
    const NAME: &str = "comm-bytes";
    let dir = tmp();
    let prog = dir.path().join(std::ffi::OsStr::from_bytes(b"\xffsleep"));
    std::fs::copy("/bin/sleep", &prog).unwrap();
    let p = dir.path().join("app.pid");
    let holder = Owned::spawn(
        Command::new(bin())
            .args(["run", "--exec", "-p"])
            .arg(&p)
            .arg("--")
            .arg(&prog)
            .arg("60"),
    );
    let pid = wait_verified(&p);
    assert_eq!(pid, holder.pid());
    // The file is verified from the moment `run --exec` wrote it, which is
    // before its exec: wait until the process is the command.
    let comm_of = || std::fs::read(format!("/proc/{pid}/comm")).unwrap();
    wait_for("the exec of the command", || comm_of() != b"pidguard\n");
    let comm = comm_of();
    assert!(std::str::from_utf8(&comm).is_err(), "comm {comm:?}");
    let out = Command::new(bin())
        .args(["stop", "-p"])
        .arg(&p)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    wait_for("the holder to exit", || !alive(pid));
    assert!(!p.exists());
    summary::passed(
        NAME,
        "a holder whose comm is not UTF-8: verified, stopped (0), its file removed",
    );
}

/// Review finding 7: issue 13's case 6 with a locked file. The command
/// (a C program compiled here) holds the lock `run --exec` handed it; its
/// main thread calls `pthread_exit` while another thread runs on, so
/// `/proc/PID/fdinfo` is empty (the leader is a zombie): the lock is read
/// through a live thread's `/proc/PID/task/TID/fdinfo`. status: verified;
/// stop: stops it (0), the file removed.
#[test]
fn a_locked_holder_whose_main_thread_exited_is_verified() {
    const NAME: &str = "zombie-leader-locked";
    if !testkit::have_tool("gcc", "--version") {
        return summary::skipped(NAME, "gcc is not installed (a pthread_exit program)");
    }
    let dir = tmp();
    let src = dir.path().join("zl.c");
    std::fs::write(
        &src,
        "#include <pthread.h>\n#include <unistd.h>\n\
         static void *run(void *a) { (void)a; sleep(60); return 0; }\n\
         int main(void) { pthread_t t; pthread_create(&t, 0, run, 0); pthread_exit(0); }\n",
    )
    .unwrap();
    let zl = dir.path().join("zl");
    let out = Command::new("gcc")
        .args(["-pthread", "-o"])
        .arg(&zl)
        .arg(&src)
        .output()
        .unwrap();
    assert!(out.status.success(), "gcc: {}", text(&out));
    let p = dir.path().join("app.pid");
    let holder = Owned::spawn(
        Command::new(bin())
            .args(["run", "--exec", "-p"])
            .arg(&p)
            .arg("--")
            .arg(&zl),
    );
    let pid = holder.pid();
    wait_for("the leader to exit (state Z, a thread left)", || {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        stat.rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z'))
    });
    assert_eq!(
        std::fs::read_dir(format!("/proc/{pid}/fdinfo"))
            .unwrap()
            .count(),
        0,
        "the zombie leader's fdinfo is empty"
    );
    assert_eq!(wait_verified(&p), pid);
    let out = status_json(&p);
    let v = json(&out);
    assert_eq!(v["identity"], "verified", "{v}");
    assert_eq!(v["pid"], pid, "{v}");
    let out = Command::new(bin())
        .args(["stop", "-p"])
        .arg(&p)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    wait_for("the holder to exit", || !alive(pid));
    assert!(!p.exists());
    summary::passed(
        NAME,
        "a locked holder whose main thread called pthread_exit: verified through \
         task/TID/fdinfo, stop 0, file removed",
    );
}

/// Review finding 6 (the library's half): the file names a child of the
/// lock's holder that merely has the file open (not at a gate: it has
/// exec'd `sleep`). The child is not the owner: status names the holder,
/// verified, and stop (under the seam) pins and signals only the holder,
/// never the child.
#[test]
fn a_child_of_the_holder_with_the_file_open_is_not_the_owner() {
    const NAME: &str = "holder-child";
    if let Some(why) = no_strace_or_python() {
        return summary::skipped(NAME, &why);
    }
    let dir = tmp();
    let p = dir.path().join("app.pid");
    let ready = dir.path().join("ready");
    let script = "import fcntl, os, subprocess, sys, time\n\
        p, ready = sys.argv[1], sys.argv[2]\n\
        fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o644)\n\
        fcntl.flock(fd, fcntl.LOCK_EX)\n\
        c = subprocess.Popen(['sleep', '133'], stdin=open(p), close_fds=True)\n\
        time.sleep(0.05)\n\
        os.pwrite(fd, b'%d\\n' % c.pid, 0)\n\
        open(ready, 'w').write(str(c.pid))\n\
        time.sleep(120)\n";
    let holder = Owned::spawn(
        Command::new("python3")
            .args(["-c", script])
            .arg(&p)
            .arg(&ready),
    );
    let h = holder.pid();
    let child = pid_in(&ready);
    let _child = Pinned::new([child]);
    let out = status_json(&p);
    held_by("the child with the file open", &out, h, child);
    stop_targets_only(&p, h, child);
    assert!(alive(child) && alive(h));
    summary::passed(
        NAME,
        "the file names a child of the holder that only has it open: status names the \
         holder (verified), stop signals only the holder",
    );
}

/// Review finding 16: a locked empty file (as `flock(1)` leaves it) is an
/// instance starting or running: `wait` waits for the lock (a timeout
/// runs out, exit 1), and returns 0 once the holder is gone.
#[test]
fn wait_on_a_locked_empty_file_waits_for_the_lock() {
    const NAME: &str = "wait-locked-empty";
    if !testkit::have_tool("flock", "-V") {
        return summary::skipped(NAME, "flock(1) is not installed (util-linux)");
    }
    let dir = tmp();
    let p = dir.path().join("app.pid");
    // --no-fork: flock(1) execs sleep, which holds the lock: killing it frees it.
    let holder = Owned::spawn(
        Command::new("flock")
            .arg("--no-fork")
            .arg(&p)
            .args(["sleep", "60"]),
    );
    wait_for("flock(1) to hold the lock", || {
        matches!(pidguard::status(&p), pidguard::Status::Starting)
    });
    let started = std::time::Instant::now();
    let out = Command::new(bin())
        .args(["wait", "--timeout", "2s", "-p"])
        .arg(&p)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        started.elapsed() >= Duration::from_millis(1900),
        "wait returned after {:?} without waiting for the lock",
        started.elapsed()
    );
    let waiter = Owned::spawn(Command::new(bin()).args(["wait", "-p"]).arg(&p));
    std::thread::sleep(Duration::from_millis(200));
    drop(holder);
    let mut waiter = waiter;
    let status = waiter.0.wait().unwrap();
    assert_eq!(status.code(), Some(0), "wait after the holder's exit");
    summary::passed(
        NAME,
        "a file flock(1) holds empty: wait --timeout 2s waited 2 s (exit 1); wait returned 0 \
         once the holder was gone",
    );
}

/// A file naming a dead PID, a record lock of `kind` ("posix": python's
/// `fcntl.lockf`; "ofd": `F_OFD_SETLK`) taken on it by a python process of
/// this namespace, then checked by pidguard here or, with `container`,
/// from inside a fresh PID namespace where the holder is invisible
/// (`/proc/locks` there leaves out a lock whose holder is not in the
/// reader's namespace): the file is held, never stale — `status` says
/// running, `run` refuses (75), `sweep --kill` keeps it and signals
/// nothing.
fn record_lock_is_held(kind: &str, container: bool) {
    // struct flock on 64-bit Linux: short, short, 4 bytes padding, off_t,
    // off_t, pid_t, 4 bytes padding.
    let script = "import fcntl, os, struct, sys, time\n\
        fd = os.open(sys.argv[1], os.O_RDWR)\n\
        if sys.argv[3] == 'posix':\n\
        \x20   fcntl.lockf(fd, fcntl.LOCK_EX)\n\
        else:\n\
        \x20   fcntl.fcntl(fd, fcntl.F_OFD_SETLK, struct.pack('hhxxxxqqixxxx', fcntl.F_WRLCK, 0, 0, 0, 0))\n\
        open(sys.argv[2], 'w').write('1')\n\
        time.sleep(120)\n";
    let dir = tmp();
    let p = dir.path().join("app.pid");
    let ready = dir.path().join("ready");
    let mut dead = Command::new("true").spawn().unwrap();
    let dead_pid = dead.id();
    dead.wait().unwrap();
    write_pidfile(&p, &format!("{dead_pid}\n"));
    let _holder = Owned::spawn(
        Command::new("python3")
            .args(["-c", script])
            .arg(&p)
            .arg(&ready)
            .arg(kind),
    );
    wait_for("the record lock", || ready.exists());
    let pidguard = |args: &[&str]| {
        let mut c = if container {
            let mut c = Command::new("unshare");
            c.args(["--pid", "--fork", "--mount-proc", "--kill-child", "--"])
                .arg(bin());
            c
        } else {
            Command::new(bin())
        };
        c.args(args).stdin(Stdio::null());
        c
    };
    let case = format!("{kind} lock, container: {container}");
    let out = pidguard(&["status", "--json", "-p"])
        .arg(&p)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{case}: status: {}", text(&out));
    assert_eq!(json(&out)["state"], "running", "{case}: {}", text(&out));
    let out = pidguard(&["run", "-p"])
        .arg(&p)
        .args(["--", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(75), "{case}: run: {}", text(&out));
    let mut sweep = pidguard(&["sweep", "--kill"]);
    sweep.arg(dir.path());
    let (out, signals) = under_strace(&sweep).unwrap();
    assert!(signals.is_empty(), "{case}: sweep: {signals:?}");
    assert!(
        p.exists(),
        "{case}: sweep removed the held file: {}",
        text(&out)
    );
    assert_eq!(
        std::fs::read_to_string(&p).unwrap(),
        format!("{dead_pid}\n"),
        "{case}"
    );
}

/// Review finding 15: a POSIX lock (python's `fcntl.lockf`, which `flock`
/// does not see) or an OFD lock on a file naming a dead PID: the file is
/// held, never stale: status says running, `run` refuses (75), `sweep`
/// keeps it.
#[test]
fn a_posix_lock_counts_as_held() {
    const NAME: &str = "posix-lock-held";
    if let Some(why) = no_strace_or_python() {
        return summary::skipped(NAME, &why);
    }
    record_lock_is_held("posix", false);
    record_lock_is_held("ofd", false);
    summary::passed(
        NAME,
        "POSIX- and OFD-locked files naming a dead PID: running, run refused (75), sweep kept them",
    );
}

/// The same, with the lock taken by a host process and pidguard run from
/// inside a PID namespace that cannot see it: the kernel is asked directly
/// (`F_OFD_GETLK`), so where the holder lives does not matter.
#[test]
fn a_record_lock_of_the_host_is_held_seen_from_a_container() {
    const NAME: &str = "record-lock-from-a-container";
    if let Some(why) = no_strace_or_python().or_else(Namespace::unavailable) {
        return summary::skipped(NAME, &why);
    }
    record_lock_is_held("posix", true);
    record_lock_is_held("ofd", true);
    summary::passed(
        NAME,
        "a host's POSIX and OFD locks, seen from a PID namespace: running, run refused (75), \
         sweep kept the file",
    );
}
