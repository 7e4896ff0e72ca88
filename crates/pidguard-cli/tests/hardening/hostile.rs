//! Hostile input: whatever sits at a PID file's path, every command that
//! reads, locks, writes, removes or signals through it must never follow a
//! symlink planted there, never block, never write through to a victim and
//! never signal anyone.
//!
//! Each case puts something hostile at the path (a symlink to a victim, a
//! dangling symlink, a symlink in a parent directory owned by another user,
//! a hard link to a victim, a FIFO, a directory, a device node, every bad
//! content of the parser's list, a 1 GB sparse file). Victim files name a
//! live process the test owns, so that following the path would lead to a
//! signal. Then every command runs under the strace seam (every signal call
//! fails with EPERM, every attempt is recorded, and a command still running
//! after 20 s is a failure: it blocked). Afterwards: no signal attempted,
//! the process alive, each victim's bytes and mtime unchanged, nothing new
//! in the victims' directory.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::os::unix::fs::{symlink, FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, SystemTime};

use crate::summary;
use testkit::{bin, rejected_contents, signals_in, sleeper, text, tmp, write_pidfile, Owned, Seam};

/// The longest any command may take on a hostile path.
const DEADLINE: Duration = Duration::from_secs(20);

/// What is at the path, and what `run` must do with it.
struct Case {
    name: String,
    /// The hostile PID file's path.
    path: PathBuf,
    /// Files that must keep their bytes and mtime.
    victims: Vec<PathBuf>,
    /// `run` may take the path over (a regular file with bad contents is
    /// stale garbage, ours to replace); otherwise it must refuse with 73.
    takeover: bool,
}

/// A victim's bytes and mtime.
type Snapshot = BTreeMap<PathBuf, (Vec<u8>, SystemTime)>;

fn snapshot(case: &Case, victims_dir: &Path) -> (Snapshot, Vec<OsString>) {
    let files = case
        .victims
        .iter()
        .map(|v| {
            let meta = std::fs::symlink_metadata(v).unwrap();
            (
                v.clone(),
                (std::fs::read(v).unwrap(), meta.modified().unwrap()),
            )
        })
        .collect();
    let mut names: Vec<OsString> = std::fs::read_dir(victims_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    (files, names)
}

/// Runs one command under the seam; fails the test if it signalled or
/// blocked. `None` without strace.
fn seamed(case: &Case, args: &[&std::ffi::OsStr]) -> Option<Output> {
    let mut cmd = Command::new(bin());
    cmd.args(args);
    let seam = Seam {
        deadline: DEADLINE,
        ..Seam::default()
    };
    let (out, calls) = seam.run(&cmd)?;
    let signals = signals_in(&calls);
    assert!(
        signals.is_empty(),
        "{}: {args:?} tried to signal: {signals:?}\n{}",
        case.name,
        text(&out)
    );
    assert!(
        out.status.code().is_some(),
        "{}: {args:?} died of a signal: {}",
        case.name,
        text(&out)
    );
    Some(out)
}

/// Every command against one case. Returns false when strace is missing.
fn attack(case: &Case, victims_dir: &Path, bait: &Owned) -> bool {
    let before = snapshot(case, victims_dir);
    let p = case.path.as_os_str();
    let dir = case.path.parent().unwrap().as_os_str();
    let o = std::ffi::OsStr::new;
    let readers: Vec<Vec<&std::ffi::OsStr>> = vec![
        vec![o("status"), o("-p"), p],
        vec![o("status"), o("--json"), o("-p"), p],
        vec![o("pid"), o("-p"), p],
        vec![o("wait"), o("--timeout"), o("200ms"), o("-p"), p],
        vec![o("stop"), o("--schedule"), o("TERM/1/KILL/1"), o("-p"), p],
        vec![o("signal"), o("-p"), p, o("HUP")],
        vec![o("list"), dir],
        vec![o("list"), o("--json"), dir],
        vec![o("sweep"), o("--dry-run"), o("--kill"), dir],
        vec![
            o("sweep"),
            o("--kill"),
            o("--schedule"),
            o("TERM/1/KILL/1"),
            dir,
        ],
    ];
    for args in &readers {
        let Some(out) = seamed(case, args) else {
            return false;
        };
        let code = out.status.code();
        if args[0] == "status" || args[0] == "pid" {
            // Unknown (4; `pid` says 65 for invalid contents), stale (1:
            // "DEAD\n2\n" names a dead PID), or, once a sweep took a
            // stale file away, not running (3); never running.
            assert!(
                matches!(code, Some(1 | 3 | 4 | 65)),
                "{}: {args:?} gave {code:?}: {}",
                case.name,
                text(&out)
            );
        }
        if args[0] == "signal" {
            assert_ne!(code, Some(0), "{}: {args:?}: {}", case.name, text(&out));
        }
        if (args[0] == "list" || args[0] == "sweep") && case.name == "parent-symlink" {
            // The directory itself is reached through the foreign link:
            // the whole listing is refused, saying which link.
            assert_eq!(code, Some(73), "{args:?}: {}", text(&out));
            assert!(
                text(&out).contains("symbolic link"),
                "{args:?}: {}",
                text(&out)
            );
        }
    }
    let Some(out) = seamed(case, &[o("run"), o("-p"), p, o("--"), o("true")]) else {
        return false;
    };
    if case.takeover {
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}: run should take the file over: {}",
            case.name,
            text(&out)
        );
        assert!(
            std::fs::symlink_metadata(&case.path).is_err(),
            "{}: run left its file behind",
            case.name
        );
    } else {
        assert_eq!(
            out.status.code(),
            Some(73),
            "{}: run should refuse the path: {}",
            case.name,
            text(&out)
        );
    }
    assert_eq!(
        snapshot(case, victims_dir),
        before,
        "{}: a victim file was changed, or a file appeared among the victims",
        case.name
    );
    assert!(
        testkit::alive(bait.pid()),
        "{}: the bait process died",
        case.name
    );
    true
}

/// A directory for the hostile paths and one for the victims.
struct Scene {
    _root: tempfile::TempDir,
    here: PathBuf,
    victims: PathBuf,
}

fn scene() -> Scene {
    let root = tmp();
    let here = root.path().join("here");
    let victims = root.path().join("victims");
    std::fs::create_dir(&here).unwrap();
    std::fs::create_dir(&victims).unwrap();
    Scene {
        here,
        victims,
        _root: root,
    }
}

/// A victim file in `dir` naming `pid`, written a while ago (so that a
/// change of mtime would show).
fn victim(dir: &Path, name: &str, pid: i32) -> PathBuf {
    let v = current_victim(dir, name, pid);
    std::fs::File::options()
        .write(true)
        .open(&v)
        .unwrap()
        .set_modified(SystemTime::now() - Duration::from_secs(3600))
        .unwrap();
    v
}

/// A victim file in `dir` naming `pid`, written now: after `pid` started,
/// so that the timing checks speak for it, and only the way the path
/// reaches it (a second link) keeps it from being signalled. (A change of
/// mtime still shows: the snapshot's resolution is the filesystem's.)
fn current_victim(dir: &Path, name: &str, pid: i32) -> PathBuf {
    let v = dir.join(name);
    write_pidfile(&v, &format!("{pid}\n"));
    v
}

#[test]
fn hostile_symlinks_and_hard_links_are_never_followed_or_written_through() {
    // (Outlives the longest run under load: killed on drop.)
    let bait = Owned::spawn(Command::new("sleep").arg("600"));
    let mut ran = Vec::new();
    let mut kinds: Vec<&str> = vec!["symlink", "dangling-symlink", "hard-link"];
    if summary::is_root() {
        kinds.push("parent-symlink");
    }
    for kind in kinds.iter().copied() {
        let s = scene();
        let path = s.here.join("app.pid");
        let mut victims = Vec::new();
        match kind {
            "symlink" => {
                let v = victim(&s.victims, "victim.pid", bait.pid());
                symlink(&v, &path).unwrap();
                victims.push(v);
            }
            "dangling-symlink" => {
                // The classic attack: a link to a file that does not exist
                // yet, so that O_CREAT would create it where the attacker
                // chose.
                symlink(s.victims.join("created-by-attack"), &path).unwrap();
            }
            "hard-link" => {
                // Written now, after the bait started: timing alone would
                // let it be signalled; the refusal is the second link's.
                let v = current_victim(&s.victims, "victim.pid", bait.pid());
                let alone = pidguard::inspect(&v, &Default::default());
                assert_eq!(
                    alone.identity,
                    Some(pidguard::Identity::Consistent),
                    "with one link the victim names a process that may be signalled: {:?}",
                    alone.status
                );
                std::fs::hard_link(&v, &path).unwrap();
                victims.push(v);
            }
            "parent-symlink" => {
                // here/sub -> victims, owned by nobody: the path
                // here/sub/victim.pid leads to a root-owned file naming a
                // live process.
                let v = victim(&s.victims, "victim.pid", bait.pid());
                let link = s.here.join("sub");
                symlink(&s.victims, &link).unwrap();
                rustix::fs::chownat(
                    rustix::fs::CWD,
                    &link,
                    Some(rustix::fs::Uid::from_raw(65534)),
                    None,
                    rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
                )
                .unwrap();
                victims.push(v);
                let case = Case {
                    name: kind.into(),
                    path: link.join("victim.pid"),
                    victims,
                    takeover: false,
                };
                if !attack(&case, &s.victims, &bait) {
                    return summary::skipped("hostile-links", "strace is not installed");
                }
                ran.push(kind);
                continue;
            }
            _ => unreachable!(),
        }
        let case = Case {
            name: kind.into(),
            path: path.clone(),
            victims,
            takeover: false,
        };
        if !attack(&case, &s.victims, &bait) {
            return summary::skipped("hostile-links", "strace is not installed");
        }
        // The link itself is still there, still a link.
        let meta = std::fs::symlink_metadata(&path).unwrap();
        assert!(
            meta.file_type().is_symlink() || meta.nlink() == 2,
            "{kind}: the path was replaced"
        );
        ran.push(kind);
    }
    let note = if summary::is_root() {
        ""
    } else {
        " (parent-symlink needs root to own a link as another user: not run)"
    };
    summary::passed(
        "hostile-links",
        &format!(
            "{} x 11 commands under the strace seam: nothing followed, written or signalled{note}",
            ran.join(", ")
        ),
    );
}

#[test]
fn a_parent_symlink_owned_by_root_or_the_caller_is_followed() {
    // /var/run -> /run is the common case: a link its owner (root, or the
    // caller) made is trusted.
    let s = scene();
    let link = s.here.join("run");
    symlink(&s.victims, &link).unwrap();
    let p = link.join("ok.pid");
    let out = testkit::pidguard()
        .args(["run", "-p"])
        .arg(&p)
        .args(["--", "sh", "-c", "cat \"$0\"", p.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(!s.victims.join("ok.pid").exists());
    summary::passed(
        "hostile-trusted-parent-link",
        "a parent symlink owned by the caller is followed",
    );
}

#[test]
fn hostile_special_files_are_never_opened_or_blocked_on() {
    // (Outlives the longest run under load: killed on drop.)
    let bait = Owned::spawn(Command::new("sleep").arg("600"));
    let mut kinds = vec!["fifo", "directory", "socket"];
    if summary::is_root() {
        kinds.push("device");
    }
    for kind in kinds.iter().copied() {
        let s = scene();
        let path = s.here.join("app.pid");
        match kind {
            "fifo" => {
                // Nobody writes to it: a blocking open or read would hang.
                // mkfifo(1): rustix has no mknodat on macOS.
                let made = std::process::Command::new("mkfifo")
                    .arg(&path)
                    .status()
                    .unwrap();
                assert!(made.success());
            }
            "directory" => {
                std::fs::create_dir(&path).unwrap();
                victim(&path, "inside", bait.pid());
            }
            "socket" => {
                let _listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
            }
            "device" => {
                // /dev/zero's numbers: reading it would never end.
                // mknod(1): rustix has no mknodat on macOS.
                let made = std::process::Command::new("mknod")
                    .args(["-m", "644"])
                    .arg(&path)
                    .args(["c", "1", "5"])
                    .status()
                    .unwrap();
                assert!(made.success());
            }
            _ => unreachable!(),
        }
        let victims = if kind == "directory" {
            vec![path.join("inside")]
        } else {
            Vec::new()
        };
        let case = Case {
            name: kind.into(),
            path: path.clone(),
            victims,
            takeover: false,
        };
        let victims_dir = if kind == "directory" {
            path.clone()
        } else {
            s.victims.clone()
        };
        if !attack(&case, &victims_dir, &bait) {
            return summary::skipped("hostile-special-files", "strace is not installed");
        }
        let ft = std::fs::symlink_metadata(&path).unwrap().file_type();
        let same = match kind {
            "fifo" => ft.is_fifo(),
            "directory" => ft.is_dir(),
            "socket" => ft.is_socket(),
            _ => ft.is_char_device(),
        };
        assert!(same, "{kind}: the path was replaced");
    }
    summary::passed(
        "hostile-special-files",
        &format!(
            "{} x 11 commands: refused at once (20 s deadline), none opened or changed",
            kinds.join(", ")
        ),
    );
}

#[test]
fn hostile_contents_are_rejected_never_signalled_and_taken_over_by_run() {
    // (Outlives the longest run under load: killed on drop.)
    let bait = Owned::spawn(Command::new("sleep").arg("600"));
    // Rejected by every rule, plus two lines (the first, a dead PID, is
    // read and never signalled; a live one such as PID 1 keeps its file:
    // evidence::unlocked_file_of_a_live_process_is_taken_over_only_when_proved_gone).
    let mut dead = Command::new("true").spawn().unwrap();
    let dead_pid = dead.id();
    dead.wait().unwrap();
    let mut contents = rejected_contents();
    contents.push(format!("{dead_pid}\n2\n"));
    for content in &contents {
        let s = scene();
        let path = s.here.join("app.pid");
        write_pidfile(&path, content);
        let case = Case {
            name: format!("contents {:?}", &content[..content.len().min(16)]),
            path,
            victims: Vec::new(),
            takeover: true,
        };
        if !attack(&case, &s.victims, &bait) {
            return summary::skipped("hostile-contents", "strace is not installed");
        }
    }
    // A 1 GB sparse file: read bounded, never loaded.
    let s = scene();
    let path = s.here.join("app.pid");
    std::fs::File::create(&path)
        .unwrap()
        .set_len(1 << 30)
        .unwrap();
    let case = Case {
        name: "1 GB sparse file".into(),
        path,
        victims: Vec::new(),
        takeover: true,
    };
    if !attack(&case, &s.victims, &bait) {
        return summary::skipped("hostile-contents", "strace is not installed");
    }
    summary::passed(
        "hostile-contents",
        &format!(
            "{} bad contents and a 1 GB sparse file x 12 commands: rejected, never signalled, run takes over",
            contents.len()
        ),
    );
}

#[test]
fn a_file_changing_between_reads_yields_one_whole_pid_or_an_error() {
    // Two processes of ours; a writer thread rewrites the file in place
    // the way a shell does (truncate, then write: empty moments included)
    // alternating their PIDs, the longer first. Every read must give one of
    // the two PIDs or an error (an empty file), never a mix of old and new
    // digits; `signal` may only ever aim at one of them.
    let (a, b) = (sleeper(), sleeper());
    let s = scene();
    let path = s.here.join("app.pid");
    // The longer PID first, so that the shorter one written over it would
    // show trailing digits if a reader mixed two versions.
    let (long, short) = if a.pid().to_string().len() >= b.pid().to_string().len() {
        (a.pid(), b.pid())
    } else {
        (b.pid(), a.pid())
    };
    write_pidfile(&path, &format!("{long}\n"));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (stop, path) = (stop.clone(), path.clone());
        std::thread::spawn(move || {
            use std::io::Write;
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let pid = if n.is_multiple_of(2) { short } else { long };
                // As `echo $PID > file` does: truncate, then one write.
                let mut f = std::fs::File::create(&path).unwrap();
                f.write_all(format!("{pid}\n").as_bytes()).unwrap();
                n += 1;
            }
            n
        })
    };
    let mut seen = BTreeMap::new();
    for _ in 0..5000 {
        let got = match pidguard::read(&path) {
            Ok(pid) => pid.get().to_string(),
            Err(e) => format!("{:?}", e.kind()),
        };
        *seen.entry(got).or_insert(0) += 1;
    }
    let mut aimed = Vec::new();
    for _ in 0..10 {
        let mut cmd = Command::new(bin());
        cmd.args(["signal", "-p"]).arg(&path).arg("HUP");
        let seam = Seam {
            also_trace: "pidfd_open",
            deadline: DEADLINE,
            ..Seam::default()
        };
        let Some((_, calls)) = seam.run(&cmd) else {
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            writer.join().unwrap();
            return summary::skipped("hostile-changing-file", "strace is not installed");
        };
        for l in calls {
            // pidfd_open(PID, 0) and kill(PID, SIG…) name a PID as their
            // first argument (pidfd_send_signal names the pidfd opened
            // before; kill(PID, 0) is a probe).
            let call = l.split_once(' ').map_or(l.as_str(), |(_, c)| c);
            let names_pid = call.starts_with("pidfd_open(")
                || (call.starts_with("kill(") && !call.contains(", 0)"));
            if let (true, Some(arg)) = (
                names_pid,
                call.split('(').nth(1).and_then(|r| r.split(',').next()),
            ) {
                aimed.push(arg.trim().to_owned());
            }
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let rewrites = writer.join().unwrap();
    let allowed = [long.to_string(), short.to_string()];
    for (got, _) in seen
        .iter()
        .filter(|(g, _)| g.starts_with(|c: char| c.is_ascii_digit()))
    {
        assert!(allowed.contains(got), "a read gave {got}: {seen:?}");
    }
    for pid in &aimed {
        assert!(allowed.contains(pid), "signal aimed at {pid}: {aimed:?}");
    }
    assert!(testkit::alive(a.pid()) && testkit::alive(b.pid()));
    summary::passed(
        "hostile-changing-file",
        &format!(
            "5000 reads during {rewrites} in-place rewrites: {seen:?}; signal aimed only at the two PIDs"
        ),
    );
}
