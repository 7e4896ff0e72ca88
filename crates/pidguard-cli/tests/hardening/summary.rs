//! Outcomes of the hardening scenarios, one file per scenario under
//! `$CARGO_TARGET_TMPDIR/hardening-summary/`, printed by `./test.sh`.
#![allow(dead_code)]

use std::path::PathBuf;

/// Where outcomes are recorded (the test target's own temporary directory).
pub fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("hardening-summary")
}

fn record(scenario: &str, line: &str) {
    let dir = dir();
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("{scenario}.txt")), format!("{line}\n")).unwrap();
}

/// Call last in a scenario that ran and asserted everything it checks.
pub fn passed(scenario: &str, detail: &str) {
    record(scenario, &format!("passed: {detail}"));
}

/// Call (and return) when a scenario cannot run here; says why on stderr too.
pub fn skipped(scenario: &str, reason: &str) {
    eprintln!("SKIP {scenario}: {reason}");
    testkit::skipped(&format!("{scenario}: {reason}"));
    record(scenario, &format!("skipped: {reason}"));
}

/// Whether the long soak runs were asked for (`PIDGUARD_SOAK=1`).
pub fn soak() -> bool {
    std::env::var_os("PIDGUARD_SOAK").is_some_and(|v| v != "0")
}

/// `normal` rounds, or ten times as many in a soak run.
pub fn rounds(normal: usize) -> usize {
    if soak() {
        normal * 10
    } else {
        normal
    }
}

/// Whether the tests run as root (fault and namespace scenarios need it).
pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}
