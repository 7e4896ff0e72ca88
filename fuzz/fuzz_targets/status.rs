//! `read`, `status` and `inspect` on arbitrary file contents and file
//! types: whatever is at the path, they return (never panic, never block on
//! a FIFO, never follow a symlink), a non-regular file is refused as
//! unsafe, and a regular file's PID is exactly what the lenient parser
//! gives for its first bytes.
//!
//! The first byte picks what is at the path; the rest is the content.
#![no_main]

use std::os::unix::fs::symlink;
use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use pidguard::Pid;
use pidguard::{ErrorKind, Filters, Rule, Status};

/// One private directory for the whole run, removed at exit by run.sh.
fn dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = std::env::var_os("PIDGUARD_FUZZ_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        let d = base.join(format!("pidguard-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    })
}

fn clear(path: &PathBuf) {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path).unwrap(),
        Ok(_) => std::fs::remove_file(path).unwrap(),
        Err(_) => {}
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&kind, content)) = data.split_first() else {
        return;
    };
    let path = dir().join("x.pid");
    let victim = dir().join("victim");
    clear(&path);
    std::fs::write(&victim, content).unwrap();
    // Regular (twice as likely), a symlink to the victim, a FIFO nobody
    // writes to, a directory, a hard link to the victim.
    let kind = kind % 6;
    match kind {
        0 | 1 => std::fs::write(&path, content).unwrap(),
        2 => symlink(&victim, &path).unwrap(),
        3 => rustix::fs::mknodat(
            rustix::fs::CWD,
            &path,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o644),
            0,
        )
        .unwrap(),
        4 => std::fs::create_dir(&path).unwrap(),
        _ => std::fs::hard_link(&victim, &path).unwrap(),
    }
    let read = pidguard::read(&path);
    let status = pidguard::status(&path);
    let inspection = pidguard::inspect(&path, &Filters::default());
    if matches!(kind, 0 | 1 | 5) {
        // Readable: exactly the lenient parse of the first bytes.
        let head = &content[..content.len().min(Pid::MAX_READ + 1)];
        let want = Pid::parse(head, Rule::Lenient, Pid::largest_possible()).ok();
        assert_eq!(read.as_ref().ok(), want.as_ref(), "{content:?}");
    } else {
        let e = read.as_ref().expect_err("a non-regular file was read");
        assert_eq!(e.kind(), ErrorKind::UnsafeFile, "{kind}: {e}");
    }
    if kind >= 2 {
        // Never usable as a PID file: nothing runs "there".
        assert!(matches!(status, Status::Unknown(_)), "{kind}: {status:?}");
        assert!(!inspection.status.is_running(), "{kind}");
    }
    // The victim behind a link is never written.
    assert_eq!(std::fs::read(&victim).unwrap(), content);
});
