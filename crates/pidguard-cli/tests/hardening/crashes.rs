//! Crashes: a library holder that acquires and releases the PID file in a
//! tight loop is killed with SIGKILL at a random moment, 1,000 times, so the
//! kills land at random points of create, take-over and release.
//!
//! After each kill the file must be absent or hold a complete PID (the old
//! content or one the holder writes), never a partial one; or be empty,
//! when the kill fell between the two calls of a take-over's rewrite
//! (emptied, then written: see `write_whole`); a reader must say "not
//! running" or "stale" (or, of an empty file, that it is empty), never
//! anything else; no temporary file may be left in the directory; and the
//! next non-blocking acquire must succeed at once.
//!
//! Half of the holders abandon their file instead of releasing it (as a
//! crash would) and alternate the PID they write between their own and a
//! one-digit PID, so every acquire of theirs is a take-over in place of a
//! file holding a PID of another length, as after a PID wrap-around.

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use pidguard::{Pid, Pidfile, Rule, Status};

use crate::races::helper;
use crate::summary;
use testkit::tmp;
use testkit::var;

/// The one-digit PID abandoning holders write every other time.
const ALT: i32 = 7;

/// The helper role: acquire and release (or abandon) forever, until killed.
pub fn cycler() {
    let path = std::path::PathBuf::from(var("PG_PIDFILE"));
    let abandon = var("PG_MODE") == "abandon";
    let own = Pidfile::new(&path);
    let mut alt = Pidfile::new(&path);
    alt.pid(Pid::new(ALT).unwrap());
    testkit::report("cycling");
    for i in 0u64.. {
        let b = if abandon && i % 2 == 1 { &alt } else { &own };
        let g = b
            .acquire()
            .unwrap_or_else(|e| panic!("cycle {i}: acquire failed: {e}"));
        if abandon {
            drop(g.into_fd());
        } else {
            g.release()
                .unwrap_or_else(|e| panic!("cycle {i}: release failed: {e}"));
        }
    }
}

/// xorshift64*: reproducible with `PIDGUARD_SEED`.
pub struct Rng(u64);

impl Rng {
    pub fn new() -> (Rng, u64) {
        let seed = std::env::var("PIDGUARD_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            })
            | 1;
        (Rng(seed), seed)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

/// The file's content, `None` when there is no file.
fn content(p: &Path) -> Option<Vec<u8>> {
    match std::fs::read(p) {
        Ok(c) => Some(c),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => panic!("cannot read {}: {e}", p.display()),
    }
}

/// The PID in a complete file: a strictly valid PID, and nothing else.
fn complete(c: &[u8]) -> Option<i32> {
    pidguard::Pid::parse(c, Rule::Strict, pidguard::Pid::kernel_max())
        .ok()
        .map(Pid::get)
}

fn show(c: &Option<Vec<u8>>) -> String {
    match c {
        None => "no file".into(),
        Some(c) => format!("{:?}", String::from_utf8_lossy(c)),
    }
}

#[test]
fn crashes_sigkill_at_random_points_never_leave_a_partial_file() {
    let dir = tmp();
    let sub = dir.path().join("run");
    std::fs::create_dir(&sub).unwrap();
    let p = sub.join("crash.pid");
    let kills = summary::rounds(1000);
    let (mut rng, seed) = Rng::new();
    let started = Instant::now();
    let mut left = [0usize; 2]; // [absent, complete file]
    let mut modes = [0usize; 2];
    // Files left empty: killed between emptying the file and writing it.
    let mut emptied = 0;
    for i in 0..kills {
        let ctx = format!("kill {i} of {kills} (PIDGUARD_SEED={seed})");
        let before = content(&p);
        let abandon = rng.below(2) == 1;
        modes[abandon as usize] += 1;
        let mut cmd = helper("cycler");
        cmd.env("PG_PIDFILE", &p)
            .env("PG_MODE", if abandon { "abandon" } else { "release" })
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut h = testkit::Helper::spawn(cmd);
        let holder = h.pid();
        assert_eq!(h.report(), "cycling", "{ctx}: the holder did not start");
        // A random moment within the next few dozen acquire/release cycles.
        std::thread::sleep(Duration::from_micros(rng.below(400)));
        let status = h.kill();
        assert_eq!(
            status.signal(),
            Some(9),
            "{ctx}: the holder exited by itself ({status:?}): {}",
            h.stderr()
        );
        // Absent, or complete: the old content or a PID the holder writes;
        // or empty, when a take-over was killed between its two calls.
        let after = content(&p);
        let empty = after.as_ref().is_some_and(|c| c.is_empty());
        if let Some(c) = after.as_ref().filter(|_| !empty) {
            let pid = complete(c);
            let ok =
                Some(c) == before.as_ref() || pid == Some(holder) || (abandon && pid == Some(ALT));
            assert!(
                ok,
                "{ctx}: holder {holder} killed: the file holds {} (before: {}): \
                 partial or foreign",
                show(&after),
                show(&before)
            );
        }
        emptied += empty as usize;
        left[after.is_some() as usize] += 1;
        match pidguard::status(&p) {
            Status::NotRunning | Status::Stale(_) => {}
            Status::Unknown(e) if empty && e.to_string().contains("empty") => {}
            // A complete file naming a PID that is alive again (ALT, or a
            // PID reused at once) is a foreign process: not our concern here.
            Status::Running { locked: false, .. } => {}
            other => panic!("{ctx}: a reader says {other} after the kill"),
        }
        let names: Vec<_> = std::fs::read_dir(&sub)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(
            names.len() <= 1 && names.iter().all(|n| n == "crash.pid"),
            "{ctx}: litter in the directory: {names:?}"
        );
        // The next acquire succeeds at once.
        let g = Pidfile::new(&p)
            .acquire()
            .unwrap_or_else(|e| panic!("{ctx}: the next acquire failed: {e}"));
        assert_eq!(
            content(&p),
            Some(format!("{}", std::process::id()).into_bytes()),
            "{ctx}"
        );
        // Leave the next holder no file, or (as a crash would) ours.
        if rng.below(2) == 0 {
            g.release().unwrap();
        } else {
            drop(g.into_fd());
        }
    }
    let _ = std::fs::remove_file(&p);
    let detail = format!(
        "{kills} SIGKILLs ({} releasing, {} abandoning holders) in {:.1}s: \
         {} left no file, {} a complete one or an empty one ({emptied} empty: killed \
         between emptying and writing); \
         the next acquire always succeeded",
        modes[0],
        modes[1],
        started.elapsed().as_secs_f64(),
        left[0],
        left[1]
    );
    eprintln!("{detail}");
    summary::passed("crashes", &detail);
}
