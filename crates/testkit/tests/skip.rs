//! testkit finds at run time what cargo gives a test crate at compile time
//! (and gives testkit itself not at all): the records of skipped tests go
//! where `./test.sh` reads them. A missing tool is such a skip, except
//! under `CI=true`, where it fails the test.
//!
//! The tool checks run in a child process, this test binary re-executed
//! (testkit's helpers): one with `CI` removed from its environment, one
//! with `CI=true`.

use std::path::{Path, PathBuf};
use std::process::Stdio;

/// A program no machine has.
const NO_TOOL: &str = "pidguard-testkit-no-such-tool";

#[test]
fn skips_are_recorded_in_the_test_crates_target_tmpdir() {
    assert_eq!(
        testkit::skip_dir(),
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("skipped")
    );
}

#[test]
fn the_test_crate_is_named_as_cargo_names_it() {
    assert_eq!(testkit::test_crate(), env!("CARGO_CRATE_NAME"));
}

/// The body of both helpers: check for the missing tool, say the answer.
fn check_for_the_missing_tool() {
    if testkit::role().is_some() {
        let found = testkit::have_tool(NO_TOOL, "--version");
        testkit::report(&format!("have_tool {found}"));
    }
}

/// Not a test: the helper run without `CI`.
#[test]
#[ignore = "helper process for the other tests; does nothing when run alone"]
fn helper_without_ci() {
    check_for_the_missing_tool();
}

/// Not a test: the helper run with `CI=true`.
#[test]
#[ignore = "helper process for the other tests; does nothing when run alone"]
fn helper_under_ci() {
    check_for_the_missing_tool();
}

/// Where a helper's skip is recorded: this crate's record for that test.
fn record_of(helper: &str) -> PathBuf {
    testkit::skip_dir().join(format!("{}__{helper}.txt", env!("CARGO_CRATE_NAME")))
}

#[test]
fn without_ci_a_missing_tool_is_a_recorded_skip() {
    let record = record_of("helper_without_ci");
    let _ = std::fs::remove_file(&record);
    let mut cmd = testkit::helper_command("helper_without_ci", "missing-tool");
    cmd.env_remove("CI");
    let mut helper = testkit::Helper::spawn(cmd);
    assert_eq!(helper.report(), "have_tool false");
    helper.finish();
    let written = std::fs::read_to_string(&record);
    // Not a skip of this run: the record goes before ./test.sh lists it.
    let _ = std::fs::remove_file(&record);
    assert_eq!(
        written.unwrap_or_else(|e| panic!("{}: {e}", record.display())),
        format!("{NO_TOOL} is not installed\n")
    );
}

#[test]
fn under_ci_a_missing_tool_fails_the_test() {
    let record = record_of("helper_under_ci");
    let _ = std::fs::remove_file(&record);
    let mut cmd = testkit::helper_command("helper_under_ci", "missing-tool");
    cmd.env("CI", "true").stderr(Stdio::piped());
    let mut helper = testkit::Helper::spawn(cmd);
    assert_eq!(
        helper.report(),
        "eof",
        "the helper got an answer instead of failing"
    );
    let status = helper.wait();
    let stderr = helper.stderr();
    assert!(!status.success(), "{status:?}: {stderr}");
    assert!(
        stderr.contains(&format!("{NO_TOOL} is not installed: CI=true")),
        "{stderr}"
    );
    assert!(!record.exists(), "no skip recorded: {}", record.display());
}
