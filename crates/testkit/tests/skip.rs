//! testkit finds at run time what cargo gives a test crate at compile time
//! (and gives testkit itself not at all): the records of skipped tests go
//! where `./test.sh` reads them.

use std::path::Path;

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
