//! Contention with real processes: when other instances take and release
//! the file faster than one acquire can look, `try_acquire` answers
//! `None` ("someone else has it"), never an error, and `acquire` says
//! [`ErrorKind::AlreadyRunning`].
//!
//! Other processes are this test binary re-executed in a role (see
//! `helper_process`); each stops when its stdin closes (or at its own
//! deadline) and exits by itself: nothing is killed.
// Unix behaviour (Windows: tests/windows.rs).
#![cfg(unix)]

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pidguard::{ErrorKind, Pidfile};
use testkit::{helper_command, report, Helper};

const PATH: &str = "PIDGUARD_TEST_PATH";
const GO: &str = "PIDGUARD_TEST_GO";
const RUN_MS: &str = "PIDGUARD_TEST_RUN_MS";
const HOLD_US: &str = "PIDGUARD_TEST_HOLD_US";

/// Not a test: the body of the helper processes the other tests start.
#[test]
#[ignore = "helper process for the other tests; does nothing when run alone"]
fn helper_process() {
    let Some(role) = testkit::role() else {
        return;
    };
    let path = PathBuf::from(testkit::var(PATH));
    match role.as_str() {
        "replacer" => replacer(&path),
        "cycler" => cycler(&path),
        other => panic!("unknown role {other}"),
    }
}

/// Set when the test closes our stdin.
fn stop_on_stdin_eof() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    std::thread::spawn(move || {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        flag.store(true, Ordering::SeqCst);
    });
    stop
}

/// Keeps the path naming a file it holds, replacing it again and again: a
/// new file, locked and complete (our PID), renamed over the path, and
/// only then the previous one unlocked. Every file at the path is held by
/// a live process at every moment, so an acquire can never succeed, but
/// one that waits out a lock always finds the path replaced under it.
fn replacer(path: &Path) {
    let stop = stop_on_stdin_eof();
    let tmp = path.with_extension("next");
    let mut held: Option<std::fs::File> = None;
    let mut replaced = 0u64;
    while !stop.load(Ordering::SeqCst) {
        let mut next = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&tmp)
            .unwrap();
        // SAFETY: flock on a descriptor we own.
        assert_eq!(unsafe { libc::flock(next.as_raw_fd(), libc::LOCK_EX) }, 0);
        write!(next, "{}", std::process::id()).unwrap();
        std::fs::rename(&tmp, path).unwrap();
        // The previous file's lock goes only now: the path names the new one.
        drop(held.replace(next));
        replaced += 1;
        if replaced == 1 {
            report("ready");
        }
        std::thread::sleep(Duration::from_micros(50));
    }
    std::fs::remove_file(path).unwrap();
    drop(held);
    report(&format!("replaced {replaced}"));
}

/// CLOCK_MONOTONIC in nanoseconds: one clock for every process.
fn monotonic_ns() -> u128 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid timespec to fill.
    assert_eq!(
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) },
        0
    );
    ts.tv_sec as u128 * 1_000_000_000 + ts.tv_nsec as u128
}

/// Waits for the go file, then for RUN_MS takes the file with
/// `try_acquire`, holds it HOLD_US and releases it, again and again, as
/// docs/comparison.md's race (200 µs there); reports each hold (start and end on the
/// monotonic clock), how many times it was refused, and every error.
fn cycler(path: &Path) {
    let go = PathBuf::from(testkit::var(GO));
    let run = Duration::from_millis(testkit::var(RUN_MS).parse().unwrap());
    let hold = Duration::from_micros(testkit::var(HOLD_US).parse().unwrap());
    while !go.exists() {
        std::thread::sleep(Duration::from_micros(200));
    }
    let end = Instant::now() + run;
    let (mut holds, mut refused, mut errors) = (Vec::new(), 0u32, Vec::new());
    while Instant::now() < end {
        match Pidfile::new(path).try_acquire() {
            Ok(Some(guard)) => {
                let start = monotonic_ns();
                std::thread::sleep(hold);
                let stop = monotonic_ns();
                holds.push((start, stop));
                if let Err(e) = guard.release() {
                    errors.push(format!("release: {e}"));
                }
            }
            Ok(None) => refused += 1,
            Err(e) => errors.push(e.to_string()),
        }
    }
    for (start, stop) in &holds {
        report(&format!("hold {start} {stop}"));
    }
    for e in &errors {
        report(&format!("error {e}"));
    }
    report(&format!("done refused {refused}"));
}

fn start(role: &str, path: &Path) -> Helper {
    let mut cmd = helper_command("helper_process", role);
    cmd.env(PATH, path);
    Helper::spawn(cmd)
}

/// The path is replaced under every acquire by another live process's
/// locked file: each of its attempts finds the file it locked gone from
/// the path, until the attempts run out. That is another instance
/// running: `try_acquire` says `None` (it said "the path kept changing
/// while acquiring it", an error, before), `acquire` `AlreadyRunning`
/// naming the holder.
#[test]
fn a_path_replaced_under_every_attempt_by_a_live_holder_is_already_running() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.pid");
    let mut replacer = start("replacer", &path);
    assert_eq!(replacer.report(), "ready");
    let holder = replacer.pid();
    let deadline = Instant::now() + Duration::from_millis(1500);
    let mut tries = 0;
    while tries < 20 || Instant::now() < deadline {
        tries += 1;
        match Pidfile::new(&path).try_acquire() {
            Ok(None) => {}
            Ok(Some(_)) => panic!("acquired a file another process holds at every moment"),
            Err(e) => panic!("try {tries}: an error instead of None: {e}"),
        }
        let err = Pidfile::new(&path).acquire().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AlreadyRunning, "try {tries}: {err}");
        // The holder is named when it was seen (always, but for a file
        // just renamed into place before its PID could be read).
        if let Some(pid) = err.holder() {
            assert_eq!(pid.get(), holder, "try {tries}: {err}");
        }
    }
    replacer.close_stdin();
    let replaced: u64 = replacer
        .report()
        .strip_prefix("replaced ")
        .expect("the replacer's count")
        .parse()
        .unwrap();
    assert!(replacer.wait().success());
    // The replacer went round while the acquires looked (else this test
    // proved nothing about a path changing under them).
    assert!(
        replaced > tries as u64,
        "replaced {replaced} times in {tries} tries"
    );
    assert!(!path.exists());
}

/// docs/comparison.md's race: 16 processes take the file, hold it 200 µs
/// and let it go, again and again for a second. No two holds overlap, and
/// every answer is a guard or `None`: no error, however often the path
/// changed under an acquire. Every other process holds it 3 ms instead:
/// an acquire that finds a live holder looks again for about 2.3 ms (a
/// reader's probe may be what it saw), which outlasts every 200 µs hold,
/// so on a fast machine only a longer hold is ever refused, and the test
/// must see refusals to prove the processes contended.
#[test]
fn processes_taking_turns_get_a_guard_or_none_never_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.pid");
    let go = dir.path().join("go");
    let mut helpers: Vec<Helper> = (0..16)
        .map(|i| {
            let mut cmd = helper_command("helper_process", "cycler");
            let hold = if i % 2 == 0 { "200" } else { "3000" };
            cmd.env(PATH, &path)
                .env(GO, &go)
                .env(RUN_MS, "1000")
                .env(HOLD_US, hold);
            Helper::spawn(cmd)
        })
        .collect();
    std::fs::write(&go, "").unwrap();
    let (mut holds, mut refused, mut errors) = (Vec::new(), 0u32, Vec::new());
    for h in &mut helpers {
        loop {
            let r = h.report();
            if let Some(n) = r.strip_prefix("done refused ") {
                refused += n.parse::<u32>().unwrap();
                break;
            } else if let Some(hold) = r.strip_prefix("hold ") {
                let (a, b) = hold.split_once(' ').unwrap();
                holds.push((a.parse::<u128>().unwrap(), b.parse::<u128>().unwrap()));
            } else if let Some(e) = r.strip_prefix("error ") {
                errors.push(e.to_string());
            } else {
                panic!("a cycler ended without its report: {r}");
            }
        }
    }
    for h in &mut helpers {
        assert!(h.wait().success());
    }
    assert!(errors.is_empty(), "{} errors: {errors:#?}", errors.len());
    assert!(
        !holds.is_empty() && refused > 0,
        "holds {}, refused {refused}",
        holds.len()
    );
    holds.sort();
    for w in holds.windows(2) {
        assert!(
            w[1].0 >= w[0].1,
            "two holders at once: {:?} and {:?}",
            w[0],
            w[1]
        );
    }
    assert!(!path.exists());
}
