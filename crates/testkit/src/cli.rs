//! The `pidguard` binary under test, its output, and PID files written by
//! hand (pidguard-cli's tests).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The `pidguard` binary under test: `CARGO_BIN_EXE_pidguard` when the
/// runner sets it at run time (nextest), else the `pidguard` beside the
/// running test binary's `deps/` directory, where cargo builds the package's
/// binaries for its integration tests.
pub fn bin() -> PathBuf {
    if let Some(p) = std::env::var_os("CARGO_BIN_EXE_pidguard") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut dir = exe.parent().expect("the test binary's directory");
    if dir.ends_with("deps") {
        dir = dir.parent().expect("the profile directory");
    }
    let bin = dir.join(format!("pidguard{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} does not exist: testkit::bin() is for pidguard-cli's integration tests, \
         for which cargo builds the binary",
        bin.display()
    );
    bin
}

/// A `pidguard` command with stdin from /dev/null.
pub fn pidguard() -> Command {
    let mut c = Command::new(bin());
    c.stdin(Stdio::null());
    c
}

pub fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// Standard output and standard error together, for assertion messages.
pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `pidguard run -p path -- true`: its output (75 when the file is held or
/// not taken over).
pub fn run_true(path: &Path) -> Output {
    pidguard()
        .args(["run", "-p"])
        .arg(path)
        .args(["--", "true"])
        .output()
        .unwrap()
}

/// Writes a foreign, unlocked PID file (mode 0644).
pub fn write_pidfile(path: &Path, content: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, content).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
}

/// Contents every rule rejects: the core's list of bad PID files (empty,
/// zero, negative, signed, hex, out of range, NUL bytes, 1 MB of digits…).
pub fn rejected_contents() -> Vec<String> {
    let mut v: Vec<String> = [
        "",
        "\n",
        "0",
        "0\n",
        "-1\n",
        "-5",
        "+5\n",
        "5x\n",
        "0x10\n",
        "4294967295\n",
        "99999999999\n",
        "5\0\n",
        "\0",
        "-0\n",
        "1e3\n",
        " \n",
    ]
    .map(String::from)
    .to_vec();
    v.push("1".repeat(1 << 20));
    v
}
