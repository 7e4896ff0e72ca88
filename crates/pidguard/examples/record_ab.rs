//! What the kernel identity record costs, measured so that a busy machine
//! cancels out: `record_ab PATH BATCHES`.
//!
//! Runs BATCHES pairs of 500-cycle batches of `Pidfile::acquire` +
//! `Guard::release` (as `examples/cycle.rs` does), one batch with the
//! record (the default) and one without (`Pidfile::kernel_identity(false)`),
//! alternating which goes first. Load that comes and goes hits both halves
//! of a pair alike, so the median of the per-pair ratios is steadier than
//! two separate runs. Prints one line:
//!
//! ```text
//! record_ab with=<ns> without=<ns> ratio=<median of with/without> pairs=<BATCHES>
//! ```
//!
//! (`with` and `without` are the medians of the batches' means, in ns per
//! cycle.) Put PATH on a tmpfs (`/dev/shm`).
//!
//! ```sh
//! cargo run --release --example record_ab -p pidguard -- /dev/shm/ab.pid 200
//! ```
//!
//! Exit status: 0 on success, 1 if an acquire or release fails, 2 on bad
//! arguments.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use pidguard::Pidfile;

const BATCH: u32 = 500;

fn batch(pidfile: &Pidfile) -> Result<f64, pidguard::Error> {
    let start = Instant::now();
    for _ in 0..BATCH {
        pidfile.acquire()?.release()?;
    }
    Ok(start.elapsed().as_nanos() as f64 / f64::from(BATCH))
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

fn main() -> ExitCode {
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    let parsed = match args.as_slice() {
        [path, n] => n
            .to_str()
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|n| *n > 0)
            .map(|n| (PathBuf::from(path), n)),
        _ => None,
    };
    let Some((path, pairs)) = parsed else {
        eprintln!("usage: record_ab PATH BATCHES   (BATCHES >= 1 pairs of 500-cycle batches)");
        return ExitCode::from(2);
    };
    let with = Pidfile::new(&path);
    let mut without = Pidfile::new(&path);
    without.kernel_identity(false);
    let (mut w, mut wo, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    let run = || -> Result<(), pidguard::Error> {
        // Warm-up, untimed.
        batch(&with)?;
        batch(&without)?;
        Ok(())
    };
    if let Err(e) = run() {
        eprintln!("record_ab: warm-up failed on {}: {e}", path.display());
        return ExitCode::from(1);
    }
    for i in 0..pairs {
        let pair = if i % 2 == 0 {
            batch(&with).and_then(|a| Ok((a, batch(&without)?)))
        } else {
            batch(&without).and_then(|b| Ok((batch(&with)?, b)))
        };
        match pair {
            Ok((a, b)) => {
                w.push(a);
                wo.push(b);
                ratios.push(a / b);
            }
            Err(e) => {
                eprintln!("record_ab: failed on {}: {e}", path.display());
                return ExitCode::from(1);
            }
        }
    }
    println!(
        "record_ab with={:.0} without={:.0} ratio={:.3} pairs={pairs}",
        median(&mut w),
        median(&mut wo),
        median(&mut ratios)
    );
    ExitCode::SUCCESS
}
