//! pidguard beside the PID-file and lock crates people pick, on the same hard
//! cases (docs/comparison.md). Run by bench/comparison.sh.
//!
//! `pidguard-comparison cases DIR` runs every case for every crate with PID
//! files under DIR and prints a Markdown table; `pidguard-comparison cycle
//! DIR N ROUNDS` times acquire + release. Other processes are this binary
//! re-executed in a role (`hold`, `race`, `churn`): every process it starts
//! is its own child, killed by PID and reaped.

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The implementations compared, as a user of each would write the common
/// job: take the file (refused if another process holds it), write the PID
/// where the crate lets one, release.
const IMPLS: &[&str] = &[
    "pidguard",
    "pidlock",
    "pidfile-rs",
    "fslock",
    "fd-lock",
    "fs4",
    "single-instance",
    "proc-lock",
    "named-lock",
    "daemonize",
    "std-try_lock",
    "std-try_lock+remove",
];

/// What one attempt to take the file gave.
enum Got {
    Held,
    Refused,
}

/// Runs `body` while holding `path` with implementation `imp`. `Ok(Refused)`
/// when another process holds it.
fn with_lock(imp: &str, path: &Path, body: &mut dyn FnMut()) -> Result<Got, String> {
    let e = |x: &dyn std::fmt::Debug| format!("{x:?}");
    match imp {
        "pidguard" => match pidguard::Pidfile::new(path)
            .try_acquire()
            .map_err(|x| e(&x))?
        {
            Some(guard) => {
                body();
                guard.release().map_err(|x| e(&x))?;
                Ok(Got::Held)
            }
            None => Ok(Got::Refused),
        },
        "pidlock" => {
            let mut lock = pidlock::Pidlock::new_validated(path).map_err(|x| e(&x))?;
            match lock.acquire() {
                Ok(()) => {
                    body();
                    lock.release().map_err(|x| e(&x))?;
                    Ok(Got::Held)
                }
                Err(pidlock::PidlockError::LockExists) => Ok(Got::Refused),
                Err(x) => Err(e(&x)),
            }
        }
        "pidfile-rs" => {
            match pidfile_rs::Pidfile::new(path, fs::Permissions::from_mode_compat(0o644)) {
                Ok(mut pf) => {
                    pf.write().map_err(|x| e(&x))?;
                    body();
                    drop(pf); // removes the file
                    Ok(Got::Held)
                }
                Err(pidfile_rs::PidfileError::AlreadyRunning { .. }) => Ok(Got::Refused),
                Err(x) => Err(e(&x)),
            }
        }
        "fslock" => {
            let mut lock = fslock::LockFile::open(path).map_err(|x| e(&x))?;
            if lock.try_lock_with_pid().map_err(|x| e(&x))? {
                body();
                lock.unlock().map_err(|x| e(&x))?;
                Ok(Got::Held)
            } else {
                Ok(Got::Refused)
            }
        }
        "fd-lock" => {
            let mut lock = fd_lock::RwLock::new(open_rw(path)?);
            let got = match lock.try_write() {
                Ok(mut guard) => {
                    write_pid(&mut guard)?;
                    body();
                    drop(guard);
                    Ok(Got::Held)
                }
                Err(x) if x.kind() == std::io::ErrorKind::WouldBlock => Ok(Got::Refused),
                Err(x) => Err(e(&x)),
            };
            got
        }
        "fs4" => {
            let mut file = open_rw(path)?;
            match fs4::FileExt::try_lock(&file) {
                Ok(()) => {
                    write_pid(&mut file)?;
                    body();
                    fs4::FileExt::unlock(&file).map_err(|x| e(&x))?;
                    Ok(Got::Held)
                }
                Err(fs4::TryLockError::WouldBlock) => Ok(Got::Refused),
                Err(x) => Err(e(&x)),
            }
        }
        "single-instance" => {
            // Linux: an abstract socket named after the path; no file.
            let si =
                single_instance::SingleInstance::new(&path.to_string_lossy()).map_err(|x| e(&x))?;
            if si.is_single() {
                body();
                drop(si);
                Ok(Got::Held)
            } else {
                Ok(Got::Refused)
            }
        }
        "proc-lock" => match proc_lock::try_lock(&proc_lock::LockPath::FullPath(path)) {
            Ok(guard) => {
                body();
                drop(guard);
                Ok(Got::Held)
            }
            Err(x) if x.kind() == std::io::ErrorKind::WouldBlock => Ok(Got::Refused),
            Err(x) => Err(e(&x)),
        },
        "named-lock" => {
            let lock = named_lock::NamedLock::with_path(path).map_err(|x| e(&x))?;
            match lock.try_lock() {
                Ok(guard) => {
                    body();
                    drop(guard);
                    Ok(Got::Held)
                }
                Err(named_lock::Error::WouldBlock) => Ok(Got::Refused),
                Err(x) => Err(e(&x)),
            }
        }
        "daemonize" => daemonize_lock(path, body),
        "std-try_lock" | "std-try_lock+remove" => {
            let mut file = open_rw(path)?;
            match file.try_lock() {
                Ok(()) => {
                    write_pid(&mut file)?;
                    body();
                    if imp == "std-try_lock+remove" {
                        fs::remove_file(path).map_err(|x| e(&x))?;
                    }
                    drop(file);
                    Ok(Got::Held)
                }
                Err(std::fs::TryLockError::WouldBlock) => Ok(Got::Refused),
                Err(x) => Err(e(&x)),
            }
        }
        other => Err(format!("unknown implementation {other}")),
    }
}

/// daemonize's pid file: `Daemonize::new().pid_file(path)` forks twice;
/// the grandchild locks and writes the file (a held lock is
/// `Err(LockPidfile)` there) and runs on as the daemon, holding the lock
/// until it exits (daemonize has no release and never removes the file).
/// The original process exits at once, as daemonize's own parent does. The
/// daemon gets this role's stdin and stdout back (daemonize points them at
/// /dev/null), so it goes on with the role where the parent left it.
fn daemonize_lock(path: &Path, body: &mut dyn FnMut()) -> Result<Got, String> {
    // SAFETY: duplicating our own standard descriptors.
    let (saved_in, saved_out) = unsafe { (libc::dup(0), libc::dup(1)) };
    let outcome = daemonize::Daemonize::new()
        .pid_file(path)
        .working_directory("/")
        .execute();
    match outcome {
        daemonize::Outcome::Parent(Ok(_)) => std::process::exit(0),
        daemonize::Outcome::Parent(Err(x)) => Err(format!("{x:?}")),
        daemonize::Outcome::Child(res) => {
            // SAFETY: restoring the descriptors saved above.
            unsafe {
                libc::dup2(saved_in, 0);
                libc::dup2(saved_out, 1);
                libc::close(saved_in);
                libc::close(saved_out);
            }
            match res {
                Ok(_) => {
                    body();
                    // The lock goes when this process exits.
                    Ok(Got::Held)
                }
                Err(x) if format!("{x:?}").contains("LockPidfile") => Ok(Got::Refused),
                Err(x) => Err(format!("{x:?}")),
            }
        }
    }
}

trait ModeCompat {
    fn from_mode_compat(mode: u32) -> fs::Permissions;
}
impl ModeCompat for fs::Permissions {
    fn from_mode_compat(mode: u32) -> fs::Permissions {
        std::os::unix::fs::PermissionsExt::from_mode(mode)
    }
}

/// How a user of a plain lock opens the file: create it if missing, keep
/// the content (truncating before the lock would erase a holder's PID).
fn open_rw(path: &Path) -> Result<File, String> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o644)
        .open(path)
        .map_err(|x| format!("open {}: {x}", path.display()))
}

/// Truncates and writes this process's PID (under the lock).
fn write_pid(file: &mut File) -> Result<(), String> {
    file.set_len(0).map_err(|x| x.to_string())?;
    std::io::Seek::rewind(file).map_err(|x| x.to_string())?;
    writeln!(file, "{}", std::process::id()).map_err(|x| x.to_string())
}

/// Whether the implementation keeps its lock on a file at the path (and
/// whether it writes a PID into it): single-instance has no file at all;
/// proc-lock and named-lock lock a file but give no access to write a PID.
fn has_file(imp: &str) -> bool {
    imp != "single-instance"
}
fn writes_pid(imp: &str) -> bool {
    !matches!(imp, "single-instance" | "proc-lock" | "named-lock")
}

fn monotonic_us() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1_000
}

// ---------------------------------------------------------------- roles

/// `hold IMPL PATH`: takes the file, prints `held PID` or `refused` (or
/// `error: …`), and if held keeps it until stdin closes, then releases and
/// prints `released`.
fn role_hold(imp: &str, path: &Path) {
    let mut out = std::io::stdout();
    let r = with_lock(imp, path, &mut || {
        println!("held {}", std::process::id());
        let _ = out.flush();
        let mut buf = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut buf);
    });
    match r {
        Ok(Got::Held) => println!("released"),
        Ok(Got::Refused) => println!("refused"),
        Err(x) => println!("error: {x}"),
    }
}

/// `race IMPL PATH MS`: waits for stdin to close (the start signal), then
/// for MS takes the file, holds it 200 µs and lets it go, again and again,
/// printing `held START END` (monotonic µs) for each hold and `error: …`
/// for each error. daemonize (whose lock lasts as long as the daemon) tries
/// once and holds for MS.
fn role_race(imp: &str, path: &Path, ms: u64) {
    let mut buf = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut buf);
    let end = Instant::now() + Duration::from_millis(ms);
    let once = imp == "daemonize";
    let hold = if once {
        Duration::from_millis(ms)
    } else {
        Duration::from_micros(200)
    };
    let mut out = String::new();
    loop {
        let mut span = (0, 0);
        let r = with_lock(imp, path, &mut || {
            let start = monotonic_us();
            std::thread::sleep(hold);
            span = (start, monotonic_us());
        });
        match r {
            Ok(Got::Held) => out.push_str(&format!("held {} {}\n", span.0, span.1)),
            Ok(Got::Refused) => {}
            Err(x) => out.push_str(&format!("error: {}\n", x.replace('\n', " "))),
        }
        if once || Instant::now() >= end {
            break;
        }
    }
    print!("{out}");
}

/// `churn IMPL PATH MS`: acquires and releases as fast as it can for MS.
fn role_churn(imp: &str, path: &Path, ms: u64) {
    let end = Instant::now() + Duration::from_millis(ms);
    let mut n = 0u64;
    while Instant::now() < end {
        if let Err(x) = with_lock(imp, path, &mut || {}) {
            println!("error: {x}");
            return;
        }
        n += 1;
    }
    println!("cycles {n}");
}

// ---------------------------------------------------------------- driver

fn me() -> PathBuf {
    std::env::current_exe().unwrap()
}

/// A helper process in a role, stdin and stdout piped.
struct Helper {
    child: Child,
    out: BufReader<std::process::ChildStdout>,
}

impl Helper {
    fn spawn(args: &[&str]) -> Helper {
        let mut child = Command::new(me())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let out = BufReader::new(child.stdout.take().unwrap());
        Helper { child, out }
    }
    fn line(&mut self) -> String {
        let mut s = String::new();
        let _ = self.out.read_line(&mut s);
        s.trim().to_owned()
    }
    /// Closes stdin (release / start) and returns the rest of the output.
    fn finish(mut self) -> String {
        drop(self.child.stdin.take());
        let mut rest = String::new();
        let _ = self.out.read_to_string(&mut rest);
        let _ = self.child.wait();
        rest.trim().to_owned()
    }
    /// The holder's PID from its `held PID` line (for daemonize the
    /// daemon, a grandchild reparented to us, the subreaper).
    fn held(&mut self) -> Option<i32> {
        let l = self.line();
        l.strip_prefix("held ").and_then(|p| p.parse().ok())
    }
    fn kill9(mut self, holder: i32) {
        // SAFETY: signalling our own descendant by PID, then reaping it.
        unsafe {
            libc::kill(holder, libc::SIGKILL);
            libc::waitpid(holder, std::ptr::null_mut(), 0);
        }
        let _ = self.child.wait();
    }
}

/// One attempt in a fresh process: `held`, `refused` or `error: …`; the
/// process releases at once.
fn attempt(imp: &str, path: &Path) -> String {
    let h = Helper::spawn(&["hold", imp, path.to_str().unwrap()]);
    let mut h = h;
    let first = h.line();
    h.finish();
    first.split(' ').next().unwrap_or("").to_owned()
}

/// Reaps daemons that ended (they were reparented to us).
fn reap_orphans() {
    // SAFETY: waitpid on any child, not blocking.
    while unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) } > 0 {}
}

fn flock_sees_lock(path: &Path) -> bool {
    Command::new("flock")
        .arg("-n")
        .arg(path)
        .arg("true")
        .status()
        .map(|s| s.code() == Some(1))
        .unwrap_or(false)
}

fn content(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|_| "<none>".into())
}

/// A case's verdict: a short cell for the table, and pass or fail.
struct Cell {
    ok: Option<bool>, // None: not applicable
    text: String,
}
fn pass(t: impl Into<String>) -> Cell {
    Cell {
        ok: Some(true),
        text: t.into(),
    }
}
fn fail(t: impl Into<String>) -> Cell {
    Cell {
        ok: Some(false),
        text: t.into(),
    }
}
fn na(t: impl Into<String>) -> Cell {
    Cell {
        ok: None,
        text: t.into(),
    }
}

fn case_second_refused(imp: &str, p: &Path) -> Cell {
    let mut a = Helper::spawn(&["hold", imp, p.to_str().unwrap()]);
    if a.held().is_none() {
        a.finish();
        return fail("first not held");
    }
    let second = attempt(imp, p);
    a.finish();
    if second == "refused" {
        pass("refused")
    } else {
        fail(format!("second: {second}"))
    }
}

fn case_sigkill_takeover(imp: &str, p: &Path) -> Cell {
    let mut a = Helper::spawn(&["hold", imp, p.to_str().unwrap()]);
    let Some(holder) = a.held() else {
        a.finish();
        return fail("first not held");
    };
    a.kill9(holder);
    let next = attempt(imp, p);
    if next == "held" {
        pass("taken over")
    } else {
        fail(next)
    }
}

/// The file exists, unlocked, with `bytes` in it: a correct implementation
/// takes it over (the lock, not the content, says whether one runs) and
/// leaves its own PID in it.
fn case_content(imp: &str, p: &Path, bytes: &[u8], backdate: bool) -> Cell {
    if !has_file(imp) {
        return na("no file");
    }
    fs::write(p, bytes).unwrap();
    if backdate {
        // Written an hour ago, before the process it names started: its
        // PID has been reused since.
        let then = std::time::SystemTime::now() - Duration::from_secs(3600);
        File::options()
            .write(true)
            .open(p)
            .unwrap()
            .set_modified(then)
            .unwrap();
    }
    let mut a = Helper::spawn(&["hold", imp, p.to_str().unwrap()]);
    let first = a.line();
    let now = content(p);
    a.finish();
    let _ = fs::remove_file(p);
    let Some(pid) = first.strip_prefix("held ") else {
        return fail(first);
    };
    if writes_pid(imp) && now.trim() != pid {
        return fail(format!("held, file {:?}", now));
    }
    pass("taken over")
}

/// `procs` processes start at once on a stale file (the PID of a process
/// that has exited, unlocked: a crashed holder's) and take it, hold it
/// briefly and let it go for 500 ms, `rounds` times; a round with two
/// holders at the same time is a failure, and so is one with none.
fn case_race(imp: &str, p: &Path, procs: usize, rounds: usize, stale: &str) -> Cell {
    let (mut doubles, mut double_holds, mut holds) = (0, 0, 0);
    let mut none = 0;
    let mut errors = Vec::new();
    for _ in 0..rounds {
        let _ = fs::remove_file(p);
        if has_file(imp) {
            fs::write(p, stale).unwrap();
        }
        let hs: Vec<Helper> = (0..procs)
            .map(|_| Helper::spawn(&["race", imp, p.to_str().unwrap(), "500"]))
            .collect();
        std::thread::sleep(Duration::from_millis(100));
        // Start them all at once: close every stdin.
        let hs: Vec<Helper> = hs
            .into_iter()
            .map(|mut h| {
                drop(h.child.stdin.take());
                h
            })
            .collect();
        let mut spans = Vec::new();
        for h in hs {
            for l in h.finish().lines() {
                if let Some(rest) = l.strip_prefix("held ") {
                    let v: Vec<u64> = rest.split(' ').map(|x| x.parse().unwrap()).collect();
                    spans.push((v[0], v[1]));
                } else if l.starts_with("error") {
                    errors.push(l.to_owned());
                }
            }
        }
        spans.sort();
        // Two holders at once: a hold that starts before an earlier one ended.
        let mut latest_end = 0;
        let mut overlaps = 0;
        for &(start, end) in &spans {
            if start < latest_end {
                overlaps += 1;
            }
            latest_end = latest_end.max(end);
        }
        if overlaps > 0 {
            doubles += 1;
            double_holds += overlaps;
        }
        holds += spans.len();
        if spans.is_empty() {
            none += 1;
        }
    }
    let _ = fs::remove_file(p);
    let text = format!(
        "2+ holders in {doubles}/{rounds} rounds ({double_holds}/{holds} holds overlapped){}{}",
        if none > 0 {
            format!(", {none} with none")
        } else {
            String::new()
        },
        match errors.first() {
            Some(first) => {
                eprintln!(
                    "{imp}: {} errors in the race, the first: {first}",
                    errors.len()
                );
                format!("; {} errors", errors.len())
            }
            None => String::new(),
        }
    );
    if doubles == 0 && none == 0 && errors.is_empty() {
        pass(text)
    } else {
        fail(text)
    }
}

/// A holds; the file is removed (an admin, a cleanup script); B takes the
/// path; then A releases. B's file must survive, still locked.
fn case_late_release(imp: &str, p: &Path) -> Cell {
    if !has_file(imp) {
        return na("no file");
    }
    let mut a = Helper::spawn(&["hold", imp, p.to_str().unwrap()]);
    if a.held().is_none() {
        a.finish();
        return fail("first not held");
    }
    let _ = fs::remove_file(p);
    let mut b = Helper::spawn(&["hold", imp, p.to_str().unwrap()]);
    if b.held().is_none() {
        a.finish();
        b.finish();
        return fail("successor not held");
    }
    let before = content(p);
    a.finish();
    let exists = p.exists();
    let after = content(p);
    b.finish();
    let _ = fs::remove_file(p);
    if !exists {
        fail("successor's file deleted")
    } else if after != before {
        fail(format!("successor's file changed: {after:?}"))
    } else {
        pass("successor's file kept")
    }
}

/// A symlink at the path to a victim file: the victim must stay untouched.
fn case_symlink(imp: &str, p: &Path) -> Cell {
    if !has_file(imp) {
        return na("no file");
    }
    let victim = p.with_extension("victim");
    fs::write(&victim, "precious\n").unwrap();
    std::os::unix::fs::symlink(&victim, p).unwrap();
    let got = attempt(imp, p);
    let after = content(&victim);
    let _ = fs::remove_file(p);
    let _ = fs::remove_file(&victim);
    if after != "precious\n" {
        fail(format!("{got}; victim now {:?}", after))
    } else if got == "held" {
        // Taken, but nothing written through the link.
        pass("held; victim untouched")
    } else if got == "refused" {
        pass("refused")
    } else {
        pass("refused with an error")
    }
}

fn case_flock(imp: &str, p: &Path) -> Cell {
    if !has_file(imp) {
        return na("no file");
    }
    let mut a = Helper::spawn(&["hold", imp, p.to_str().unwrap()]);
    if a.held().is_none() {
        a.finish();
        return fail("not held");
    }
    let seen = flock_sees_lock(p);
    a.finish();
    let _ = fs::remove_file(p);
    if seen {
        pass("locked")
    } else {
        fail("not locked")
    }
}

/// A holder cycles for `ms`; a reader opens and reads the path in a loop.
/// Counts reads that found the file present but empty.
fn case_reader(imp: &str, p: &Path, ms: u64) -> Cell {
    if !writes_pid(imp) {
        return na("no PID written");
    }
    if imp == "daemonize" {
        return na("a release is the daemon's exit");
    }
    let _ = fs::remove_file(p);
    let churn = Helper::spawn(&["churn", imp, p.to_str().unwrap(), &ms.to_string()]);
    let end = Instant::now() + Duration::from_millis(ms);
    let (mut reads, mut empty) = (0u64, 0u64);
    let mut buf = Vec::with_capacity(64);
    while Instant::now() < end {
        if let Ok(mut f) = File::open(p) {
            buf.clear();
            if f.read_to_end(&mut buf).is_ok() {
                reads += 1;
                if buf.is_empty() {
                    empty += 1;
                }
            }
        }
    }
    let out = churn.finish();
    let _ = fs::remove_file(p);
    let text = format!("{empty} empty of {reads} reads");
    if out.starts_with("error") {
        fail(format!("{text}; holder {out}"))
    } else if empty == 0 {
        pass(text)
    } else {
        fail(text)
    }
}

fn cases(dir: &Path, procs: usize, rounds: usize, reader_ms: u64) {
    // daemonize's daemons are our grandchildren: adopt and reap them.
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    // A live process that holds nothing: its PID in the file is a lie.
    let mut foreign = Command::new("sleep").arg("600").spawn().unwrap();
    let foreign_pid = format!("{}\n", foreign.id());
    // A PID that names no process: one that has exited and been reaped.
    let mut gone = Command::new("true").spawn().unwrap();
    let stale = format!("{}\n", gone.id());
    gone.wait().unwrap();
    let names = [
        "second instance refused",
        "SIGKILLed holder taken over",
        "empty file",
        "garbage",
        "`-1`",
        "live PID, started after the file (informational: only timing says it is not the owner)",
        "live PID, file newer than the process (informational: a daemon that does not lock?)",
        "race: all start at once, take turns",
        "late release after a successor",
        "symlink planted at the path",
        "`flock -n` sees the lock",
        "reader sees an empty file",
    ];
    let mut rows: Vec<(String, Vec<Cell>)> = Vec::new();
    for imp in IMPLS {
        eprintln!("cases: {imp}");
        let d = dir.join(imp);
        fs::create_dir_all(&d).unwrap();
        let p = d.join("app.pid");
        let mut r = Vec::new();
        let _ = fs::remove_file(&p);
        r.push(case_second_refused(imp, &p));
        let _ = fs::remove_file(&p);
        r.push(case_sigkill_takeover(imp, &p));
        let _ = fs::remove_file(&p);
        r.push(case_content(imp, &p, b"", false));
        r.push(case_content(imp, &p, b"garbage\n", false));
        r.push(case_content(imp, &p, b"-1\n", false));
        // Not pass/fail cases: an unlocked file naming a live process.
        // Started after the file was written: only the clocks say it is
        // not the owner (a clock step says the same of a real owner).
        // Started before: it may be the daemon of a tool that does not
        // lock (nginx). Nothing proves the owner gone in either; pidguard
        // refuses (exit 75 naming the PID, as start-stop-daemon and
        // Python's pid do), and taking over may start a second instance.
        // Shown, not scored (docs/comparison.md, "Reading the results").
        for backdated in [true, false] {
            let mut c = case_content(imp, &p, foreign_pid.as_bytes(), backdated);
            if c.ok.is_some() {
                c = na(if c.ok == Some(true) {
                    "taken over"
                } else {
                    "refused"
                });
            }
            r.push(c);
        }
        r.push(case_race(imp, &p, procs, rounds, &stale));
        r.push(case_late_release(imp, &p));
        r.push(case_symlink(imp, &p));
        r.push(case_flock(imp, &p));
        r.push(case_reader(imp, &p, reader_ms));
        let _ = fs::remove_file(&p);
        reap_orphans();
        rows.push((imp.to_string(), r));
    }
    let _ = foreign.kill();
    let _ = foreign.wait();

    println!("| case | {} |", IMPLS.join(" | "));
    println!("|---{}|", "|---".repeat(IMPLS.len()));
    for (i, name) in names.iter().enumerate() {
        let cells: Vec<String> = rows
            .iter()
            .map(|(_, r)| {
                let c = &r[i];
                let mark = match c.ok {
                    Some(true) => "✅",
                    Some(false) => "❌",
                    None => "–",
                };
                format!("{mark} {}", c.text)
            })
            .collect();
        println!("| {name} | {} |", cells.join(" | "));
    }
    let totals: Vec<String> = rows
        .iter()
        .map(|(_, r)| {
            let passed = r.iter().filter(|c| c.ok == Some(true)).count();
            let applicable = r.iter().filter(|c| c.ok.is_some()).count();
            format!("**{passed}/{applicable}**")
        })
        .collect();
    println!(
        "| passed (of the cases that apply) | {} |",
        totals.join(" | ")
    );
}

/// Median µs per acquire + release, in this process: each round runs `n`
/// cycles, or as many as fit in `max_ms` (some crates fsync every write).
/// `only`: one implementation (for `strace -c`).
fn cycle(dir: &Path, n: usize, rounds: usize, max_ms: u64, only: Option<&str>) {
    let impls: Vec<&str> = IMPLS
        .iter()
        .copied()
        .filter(|i| *i != "daemonize" && only.is_none_or(|o| o == *i))
        .collect();
    let budget = Duration::from_millis(max_ms);
    let mut per: Vec<Vec<f64>> = vec![Vec::new(); impls.len()];
    for round in 0..rounds {
        // Alternate the order so that no implementation always runs first.
        let order: Vec<usize> = if round % 2 == 0 {
            (0..impls.len()).collect()
        } else {
            (0..impls.len()).rev().collect()
        };
        for &i in &order {
            let p = dir.join(format!("cycle-{}.pid", impls[i]));
            let _ = fs::remove_file(&p);
            let start = Instant::now();
            let mut done = 0;
            while done < n && (done % 64 != 0 || start.elapsed() < budget) {
                with_lock(impls[i], &p, &mut || {}).unwrap();
                done += 1;
            }
            per[i].push(start.elapsed().as_secs_f64() * 1e6 / done as f64);
            let _ = fs::remove_file(&p);
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v[v.len() / 2]
    };
    let meds: Vec<f64> = per.iter_mut().map(median).collect();
    let base = meds[0];
    for (i, imp) in impls.iter().enumerate() {
        println!(
            "{imp}\t{:.2}\t{:.2}",
            meds[i],
            meds[i] / base // this one's time over pidguard's: below 1, pidguard is slower
        );
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    match a.get(1..) {
        Some(["hold", imp, path]) => role_hold(imp, Path::new(path)),
        Some(["race", imp, path, ms]) => role_race(imp, Path::new(path), ms.parse().unwrap()),
        Some(["churn", imp, path, ms]) => role_churn(imp, Path::new(path), ms.parse().unwrap()),
        Some(["cases", dir, procs, rounds, reader_ms]) => cases(
            Path::new(dir),
            procs.parse().unwrap(),
            rounds.parse().unwrap(),
            reader_ms.parse().unwrap(),
        ),
        Some(["cycle", dir, n, rounds, max_ms, only @ ..]) => cycle(
            Path::new(dir),
            n.parse().unwrap(),
            rounds.parse().unwrap(),
            max_ms.parse().unwrap(),
            only.first().copied(),
        ),
        _ => {
            eprintln!(
                "usage: pidguard-comparison cases DIR PROCS ROUNDS READER_MS | cycle DIR N ROUNDS MAX_MS [IMPL]"
            );
            std::process::exit(2);
        }
    }
}
