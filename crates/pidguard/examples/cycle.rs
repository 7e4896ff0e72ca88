//! Acquire/release benchmark: `cycle [--no-kernel-identity] PATH N`.
//!
//! Measures the mean wall-clock time of one full PID file life cycle through
//! the public API: `Pidfile::new(PATH).acquire()` (create the file unnamed,
//! write the PID, lock it, link it into place) followed by
//! `Guard::release()` (check that the path still names the locked inode,
//! unlink it, close/unlock). The builder is made once; each cycle starts with
//! no file at PATH, so every acquire takes the create path, never the
//! take-over path.
//!
//! About 1% of N cycles (at least one) are run first as a warm-up and not
//! timed. Then N cycles are timed together with `std::time::Instant` and the
//! program prints exactly one line, the mean in whole nanoseconds:
//!
//! ```text
//! pidguard <ns> ns/cycle
//! ```
//!
//! With `--no-kernel-identity` the files carry no kernel identity record
//! (`Pidfile::kernel_identity(false)`), and the line starts with
//! `pidguard-no-record`: the two together show what the record costs.
//!
//! Put PATH on a tmpfs (`/dev/shm`, `/run`) to measure the library and the
//! syscalls rather than a disk. `bench/cycle.sh` builds this with its C
//! counterparts (`bench/c/floor.c`, `bench/c/libbsd.c`) and compares them.
//!
//! ```sh
//! cargo run --release --example cycle -p pidguard -- /dev/shm/cycle.pid 200000
//! ```
//!
//! Exit status: 0 on success, 1 if an acquire or release fails (the error
//! is printed), 2 on bad arguments.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use pidguard::Pidfile;

const USAGE: &str =
    "usage: cycle [--no-kernel-identity] PATH N   (N: number of acquire+release cycles, >= 1)";

fn parse_args() -> Result<(PathBuf, u64, bool), String> {
    let mut args = std::env::args_os().skip(1).peekable();
    let record = args.next_if(|a| a == "--no-kernel-identity").is_none();
    let (Some(path), Some(n), None) = (args.next(), args.next(), args.next()) else {
        return Err("expected exactly two arguments".into());
    };
    if path.is_empty() {
        return Err("PATH is empty".into());
    }
    let n = n
        .to_str()
        .ok_or_else(|| "N is not valid UTF-8".to_string())?;
    let n: u64 = n
        .parse()
        .map_err(|e| format!("N must be a positive integer, got {n:?}: {e}"))?;
    if n == 0 {
        return Err("N must be at least 1".into());
    }
    Ok((PathBuf::from(path), n, record))
}

fn cycles(pidfile: &Pidfile, n: u64) -> Result<(), pidguard::Error> {
    for _ in 0..n {
        let guard = pidfile.acquire()?;
        guard.release()?;
    }
    Ok(())
}

fn main() -> ExitCode {
    let (path, n, record) = match parse_args() {
        Ok(a) => a,
        Err(msg) => {
            eprintln!("cycle: {msg}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let mut pidfile = Pidfile::new(&path);
    pidfile.kernel_identity(record);
    let name = if record {
        "pidguard"
    } else {
        "pidguard-no-record"
    };

    let warmup = (n / 100).max(1);
    if let Err(e) = cycles(&pidfile, warmup) {
        eprintln!("cycle: warm-up failed on {}: {e}", path.display());
        return ExitCode::from(1);
    }

    let start = Instant::now();
    let result = cycles(&pidfile, n);
    let elapsed = start.elapsed();
    if let Err(e) = result {
        eprintln!("cycle: failed on {}: {e}", path.display());
        return ExitCode::from(1);
    }

    let mean_ns = (elapsed.as_nanos() + u128::from(n) / 2) / u128::from(n);
    println!("{name} {mean_ns} ns/cycle");
    ExitCode::SUCCESS
}
