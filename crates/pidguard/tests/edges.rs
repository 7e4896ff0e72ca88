//! Edges a hostile review probed: a POSIX lock of this very process, off
//! byte 0, is seen by pidguard's record-lock check (`F_OFD_GETLK`); no text
//! parses to a `Pid` of 0, a negative number or one past `i32::MAX`; every
//! parsed signal is in range and named right. (A known limit, documented
//! in docs/GUARANTEES.md, is not tested here: POSIX drops all of a
//! process's `fcntl` locks on a file when it closes any descriptor of it,
//! so a process that guards its own PID file with `lockf` loses that lock
//! when it asks pidguard about the file.)
#![cfg(target_os = "linux")]

use std::os::fd::AsRawFd;

use pidguard::{Pid, Signal};

/// Whether a POSIX/OFD lock conflicting with a whole-file write lock is
/// held, asked through `probe` (an OFD of our own, opened before any lock
/// was taken and never closed: closing it would itself drop our process's
/// POSIX locks on the file).
fn held(probe: &std::fs::File) -> bool {
    // SAFETY: plain integers.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = libc::F_WRLCK as _;
    fl.l_whence = libc::SEEK_SET as _;
    // SAFETY: a live fd and flock.
    let r = unsafe { libc::fcntl(probe.as_raw_fd(), libc::F_OFD_GETLK, &mut fl) };
    assert_eq!(r, 0);
    i32::from(fl.l_type) != libc::F_UNLCK
}

fn posix_lock(f: &std::fs::File, start: i64, len: i64) {
    // SAFETY: plain integers.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = libc::F_WRLCK as _;
    fl.l_whence = libc::SEEK_SET as _;
    fl.l_start = start;
    fl.l_len = len;
    // SAFETY: a live fd and flock.
    assert_eq!(unsafe { libc::fcntl(f.as_raw_fd(), libc::F_SETLK, &fl) }, 0);
}

/// A PID file naming this process, a probe descriptor opened first (kept
/// open: see [`held`]), and the file, POSIX-locked by this process on
/// `start..start+len`.
fn own_locked_file(
    dir: &std::path::Path,
    start: i64,
    len: i64,
) -> (std::path::PathBuf, std::fs::File, std::fs::File) {
    let path = dir.join("own.pid");
    std::fs::write(&path, format!("{}\n", std::process::id())).unwrap();
    let probe = std::fs::File::open(&path).unwrap();
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    posix_lock(&f, start, len);
    assert!(held(&probe));
    (path, probe, f)
}

/// A process holding a POSIX lock (on a byte range away from 0) on its own
/// PID file is seen as a holder by pidguard's status in that very process
/// (F_OFD_GETLK conflicts with our own process's POSIX locks).
#[test]
fn own_process_posix_lock_off_zero_is_seen() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _probe, _f) = own_locked_file(dir.path(), 100, 1);
    let st = pidguard::status(&path);
    let text = format!("{st:?}");
    assert!(
        text.to_lowercase().contains("running") || text.contains("Held"),
        "{text}"
    );
}

/// No text makes a Pid of 0, a negative number or one above i32::MAX:
/// kill(0, …) and kill(-1, …) cannot be reached through a parsed Pid.
#[test]
fn pid_from_str_never_yields_0_negative_or_wrapped() {
    for s in [
        "0",
        "-1",
        "+5",
        " 5",
        "5 ",
        "5\0",
        "\u{0}5",
        "-0",
        "00",
        "0x10",
        "1e3",
        "2147483648",
        "4294967295",
        "4294967296",
        "99999999999999999999",
        "",
        "\n",
        "5\n\n",
        "٥",
    ] {
        if let Ok(p) = s.parse::<Pid>() {
            panic!("{s:?} parsed as {p:?}");
        }
    }
    let max = Pid::kernel_max();
    assert!(max.to_string().parse::<Pid>().is_ok());
    assert!((u64::from(max) + 1).to_string().parse::<Pid>().is_err());
    assert_eq!("5\n".parse::<Pid>().unwrap().get(), 5);
}

/// Every Signal a text can name is 1..=64 and is the C library's number
/// for its name.
#[test]
fn every_parsed_signal_is_in_range_and_named_right() {
    let c = [
        ("HUP", libc::SIGHUP),
        ("INT", libc::SIGINT),
        ("QUIT", libc::SIGQUIT),
        ("KILL", libc::SIGKILL),
        ("TERM", libc::SIGTERM),
        ("CONT", libc::SIGCONT),
        ("STOP", libc::SIGSTOP),
        ("USR1", libc::SIGUSR1),
        ("USR2", libc::SIGUSR2),
        ("CHLD", libc::SIGCHLD),
        ("BUS", libc::SIGBUS),
        ("SYS", libc::SIGSYS),
        ("IO", libc::SIGIO),
        ("URG", libc::SIGURG),
        ("IOT", libc::SIGABRT),
    ];
    for (name, n) in c {
        assert_eq!(name.parse::<Signal>().unwrap().as_raw(), n, "{name}");
    }
    assert_eq!(Signal::RTMAX, libc::SIGRTMAX());
    assert_eq!(Signal::RTMIN, libc::SIGRTMIN());
    for s in [
        "0",
        "-1",
        "65",
        "-9",
        "4294967305",
        "RTMIN-3",
        "RTMAX+1",
        "RTMIN+4294967296",
        "SIG0",
    ] {
        assert!(s.parse::<Signal>().is_err(), "{s}");
    }
    for n in -1000..1000 {
        if let Some(s) = Signal::from_raw(n) {
            assert!((1..=64).contains(&s.as_raw()), "{n}");
        }
    }
}
