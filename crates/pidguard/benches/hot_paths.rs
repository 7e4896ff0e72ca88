//! Criterion benches for the library's hot paths.
//!
//! ```sh
//! cargo bench -p pidguard --bench hot_paths                 # full measurement
//! cargo bench -p pidguard --bench hot_paths -- --quick      # a quick look
//! cargo bench -p pidguard --bench hot_paths -- status       # one group
//! ```
//!
//! Files live in a fresh temporary directory on `/dev/shm` (a tmpfs) when it
//! is writable, else in the system temporary directory, so the numbers are
//! the library and its system calls, not a disk. Every bench checks once,
//! before it is timed, that the operation gives the expected answer.
//!
//! - `cycle/acquire_release`: `Pidfile::acquire` + `Guard::release` on a
//!   path with no file (the create path), as `examples/cycle.rs` does.
//! - `read/lenient`: `pidguard::read` of a file holding `"12345\n"`.
//! - `status/held`: `pidguard::status` of a file this process holds locked
//!   (`Running { locked: true }`: open, lock probe, read, `/proc` identity).
//! - `status/stale`: `pidguard::status` of an unlocked file naming a PID
//!   whose process has exited and been reaped (`Stale`).
//! - `parse/strict`, `parse/lenient`: `pidguard::Pid::parse` of a
//!   well-formed PID (`"4194303\n"`) and of a sloppy one (`" 0123\r\n"`),
//!   no I/O.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Command;

use criterion::{criterion_group, criterion_main, Criterion};
use pidguard::{Pid, Rule};
use pidguard::{Pidfile, Status};

/// A fresh temporary directory, on `/dev/shm` when possible.
fn tmpfs_dir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(dir) = tempfile::Builder::new()
            .prefix("pidguard-bench.")
            .tempdir_in(shm)
        {
            return dir;
        }
    }
    tempfile::Builder::new()
        .prefix("pidguard-bench.")
        .tempdir()
        .expect("cannot create a temporary directory (check $TMPDIR)")
}

/// The PID of a child that has exited and been reaped.
fn dead_pid() -> i32 {
    let mut child = Command::new("true")
        .spawn()
        .expect("cannot run `true` to get a dead PID");
    let pid = i32::try_from(child.id()).expect("a PID fits in i32");
    child.wait().expect("cannot reap `true`");
    pid
}

fn cycle(c: &mut Criterion, dir: &Path) {
    let path = dir.join("cycle.pid");
    let pidfile = Pidfile::new(&path);
    pidfile
        .acquire()
        .and_then(|g| g.release())
        .unwrap_or_else(|e| panic!("acquire/release of {} failed: {e}", path.display()));
    assert!(!path.exists(), "{} left behind", path.display());

    c.bench_function("cycle/acquire_release", |b| {
        b.iter(|| {
            let guard = pidfile.acquire().expect("acquire");
            guard.release().expect("release");
        })
    });
}

fn read(c: &mut Criterion, dir: &Path) {
    let path = dir.join("read.pid");
    std::fs::write(&path, "12345\n").expect("write read.pid");
    assert_eq!(pidguard::read(&path).expect("read").get(), 12345);

    c.bench_function("read/lenient", |b| {
        b.iter(|| pidguard::read(black_box(&path)).expect("read"))
    });
}

fn status(c: &mut Criterion, dir: &Path) {
    let held: PathBuf = dir.join("held.pid");
    let guard = Pidfile::new(&held).acquire().expect("acquire held.pid");
    assert!(
        matches!(
            pidguard::status(&held),
            Status::Running { locked: true, .. }
        ),
        "held.pid: expected running and locked, got {:?}",
        pidguard::status(&held)
    );

    let stale = dir.join("stale.pid");
    let dead = dead_pid();
    std::fs::write(&stale, format!("{dead}\n")).expect("write stale.pid");
    assert!(
        matches!(pidguard::status(&stale), Status::Stale(p) if p.get() == dead),
        "stale.pid: expected stale {dead}, got {:?}",
        pidguard::status(&stale)
    );

    let mut group = c.benchmark_group("status");
    group.bench_function("held", |b| b.iter(|| pidguard::status(black_box(&held))));
    group.bench_function("stale", |b| b.iter(|| pidguard::status(black_box(&stale))));
    group.finish();
    guard.release().expect("release held.pid");
}

fn parse_pid(c: &mut Criterion) {
    let max = Pid::kernel_max();
    let strict: &[u8] = b"4194303\n";
    let lenient: &[u8] = b" 0123\r\n";
    assert!(Pid::parse(strict, Rule::Strict, 4_194_303).is_ok());
    assert_eq!(
        Pid::parse(lenient, Rule::Lenient, max)
            .expect("lenient")
            .get(),
        123
    );

    let mut group = c.benchmark_group("parse");
    group.bench_function("strict", |b| {
        b.iter(|| Pid::parse(black_box(strict), Rule::Strict, black_box(4_194_303)))
    });
    group.bench_function("lenient", |b| {
        b.iter(|| Pid::parse(black_box(lenient), Rule::Lenient, black_box(max)))
    });
    group.finish();
}

fn hot_paths(c: &mut Criterion) {
    let dir = tmpfs_dir();
    cycle(c, dir.path());
    read(c, dir.path());
    status(c, dir.path());
    parse_pid(c);
}

criterion_group!(benches, hot_paths);
criterion_main!(benches);
