//! Tests that cannot run their body here say so, and the run keeps count.
//!
//! [`skipped`] prints "skipped: REASON" and records one line under
//! `target/tmp/skipped/` (cargo's `CARGO_TARGET_TMPDIR`, found from the
//! running test binary), which `./test.sh` lists at the end (a
//! skipped test still counts as passed for the harness). [`have_tool`] is
//! the check for a program the tests run: without it the test skips, but
//! under `CI=true` it fails, because `.ci/run` installs every such tool and
//! a "never signals" claim must not go untested there unnoticed.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Where skips are recorded, one file per test: `tmp/skipped` in the
/// target directory that holds the running test binary (`target/` by
/// default): the same directory as the test's own `CARGO_TARGET_TMPDIR`,
/// which cargo gives only to the test crate, not to this one.
///
/// A test binary is `TARGET/PROFILE/deps/NAME-HASH` (or
/// `TARGET/TRIPLE/PROFILE/deps/…` when built for a named target). Cargo's
/// `CACHEDIR.TAG` is not a reliable mark: cargo writes it only when it
/// creates the target directory itself, not when a script made
/// `target/tmp` first (as `.ci/run` does).
pub fn skip_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    let profile = exe
        .parent()
        .filter(|d| d.file_name().is_some_and(|n| n == "deps"))
        .and_then(Path::parent);
    let target = match profile.and_then(Path::parent) {
        // Built for a named target: TARGET/TRIPLE/PROFILE/deps.
        Some(t)
            if !t.join("CACHEDIR.TAG").is_file()
                && t.parent().is_some_and(|p| p.join("CACHEDIR.TAG").is_file()) =>
        {
            t.parent().map(Path::to_path_buf)
        }
        Some(t) => Some(t.to_path_buf()),
        None => None,
    };
    target
        .unwrap_or_else(std::env::temp_dir)
        .join("tmp")
        .join("skipped")
}

/// The running test crate's name (cargo's `CARGO_CRATE_NAME`): the test
/// binary's file name without its `-HASH`.
pub fn test_crate() -> String {
    let exe = std::env::current_exe().unwrap_or_default();
    let stem = exe
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    match stem.rsplit_once('-') {
        Some((name, _hash)) => name.to_owned(),
        None => stem,
    }
}

/// Records that the running test skipped its body, and why (call, then
/// return).
pub fn skipped(reason: &str) {
    eprintln!("skipped: {reason}");
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("unnamed").replace("::", "__");
    let name = format!("{}__{test}.txt", test_crate());
    let dir = skip_dir();
    // Best effort: the summary must not make a test fail.
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(dir.join(name), format!("{reason}\n"));
}

/// Whether `program` runs (as `program probe`). If not, the test is
/// recorded as skipped (`program is not installed`), or, with `CI=true`,
/// it panics.
pub fn have_tool(program: &str, probe: &str) -> bool {
    let runs = Command::new(program)
        .arg(probe)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !runs {
        missing(program);
    }
    runs
}

/// Reports `program` as missing: fails under `CI=true`, else records the
/// skip.
pub fn missing(program: &str) {
    let reason = format!("{program} is not installed");
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{reason}: CI=true, and .ci/run installs it (a missing tool fails in CI instead of skipping)");
    }
    skipped(&reason);
}
