//! `run_exclusive` through the public API.
//!
//! `run_exclusive(app, …)` puts its file in the standard location for `app`
//! (`/run` for root), which a test must not touch; the behaviour with a file
//! in a temporary directory (run once, refused while held, removed after a
//! panic) is tested through `run_exclusive_with` in `src/exclusive.rs`.
// Unix behaviour (Windows: tests/windows.rs).
#![cfg(unix)]

use pidguard::{run_exclusive, ErrorKind};

#[test]
fn an_unusable_name_is_refused_without_running_f() {
    for app in ["", "../escape", "a/b", ".hidden", "bad name"] {
        let mut ran = false;
        let err = run_exclusive(app, || ran = true).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidName, "{app:?}: {err}");
        assert!(!ran, "{app:?}");
    }
}

#[test]
fn the_error_converts_to_io_error() {
    let err: std::io::Error = run_exclusive("a/b", || ()).unwrap_err().into();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
}
