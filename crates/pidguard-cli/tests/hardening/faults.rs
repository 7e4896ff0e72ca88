//! Faults of the filesystem: full (no blocks, no inodes), read-only, and a
//! directory the user may not write. Each must give a clear error naming
//! the path, exit 73, leave no file (above all no empty one, which a reader
//! would take for a holder mid-write), and work again once the fault is
//! gone.
//!
//! The full and read-only cases mount a tiny tmpfs in the test's temporary
//! directory (root only; skipped with the reason otherwise), unmounted when
//! the test ends, even on failure.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::summary;
use testkit::{bin, pidguard, text, tmp};

/// A tmpfs mounted on a directory of the test's; unmounted on drop.
struct Tmpfs {
    dir: PathBuf,
    _parent: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs with these options, or says why it cannot.
    fn mount(options: &str) -> Result<Tmpfs, String> {
        if !summary::is_root() {
            return Err("needs root to mount a tmpfs".into());
        }
        let parent = tmp();
        let dir = parent.path().join("mnt");
        std::fs::create_dir(&dir).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "pidguard-test"])
            .arg(&dir)
            .output()
            .map_err(|e| format!("cannot run mount(8): {e}"))?;
        if !out.status.success() {
            return Err(format!("mount -t tmpfs fails here: {}", text(&out).trim()));
        }
        Ok(Tmpfs {
            dir,
            _parent: parent,
        })
    }

    fn remount(&self, options: &str) {
        let out = Command::new("mount")
            .args(["-o", &format!("remount,{options}")])
            .arg(&self.dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "remount: {}", text(&out));
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(&self.dir)
            .stderr(Stdio::null())
            .status();
    }
}

fn run_true(p: &Path) -> Output {
    pidguard()
        .arg("run")
        .arg("-p")
        .arg(p)
        .args(["--", "true"])
        .output()
        .unwrap()
}

/// No file at `p` and nothing but `keep` in its directory.
fn nothing_left(p: &Path, keep: &[&str]) {
    assert!(
        std::fs::symlink_metadata(p).is_err(),
        "{} was left behind",
        p.display()
    );
    let extra: Vec<String> = std::fs::read_dir(p.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !keep.contains(&n.as_str()))
        .collect();
    assert!(extra.is_empty(), "files left behind: {extra:?}");
}

/// Fills the filesystem at `dir` to the last block with one file.
fn fill_blocks(dir: &Path) -> PathBuf {
    use std::io::Write;
    let filler = dir.join("filler");
    let mut f = std::fs::File::create(&filler).unwrap();
    let chunk = vec![b'x'; 4096];
    loop {
        match f.write(&chunk) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(28) => break,
            Err(e) => panic!("filling {}: {e}", dir.display()),
        }
    }
    // Single bytes for the last partial block, if any.
    while f.write(b"x").is_ok_and(|n| n == 1) {}
    filler
}

#[test]
fn faults_full_filesystem_is_a_clear_error_and_leaves_no_file() {
    let fs = match Tmpfs::mount("size=64k,nr_inodes=64,mode=0755") {
        Ok(fs) => fs,
        Err(why) => return summary::skipped("faults-enospc", &why),
    };
    let p = fs.dir.join("app.pid");

    // No blocks left: the new file's content cannot be written.
    let filler = fill_blocks(&fs.dir);
    let out = run_true(&p);
    assert_eq!(out.status.code(), Some(73), "{}", text(&out));
    let msg = text(&out);
    assert!(msg.contains(&*p.to_string_lossy()), "{msg}");
    assert!(msg.contains("No space left on device"), "{msg}");
    nothing_left(&p, &["filler"]);
    // `status` agrees nothing runs.
    let st = pidguard().args(["status", "-p"]).arg(&p).output().unwrap();
    assert_eq!(st.status.code(), Some(3), "{}", text(&st));

    // Works again once space is freed.
    std::fs::remove_file(&filler).unwrap();
    let out = run_true(&p);
    assert!(out.status.success(), "after freeing space: {}", text(&out));
    nothing_left(&p, &[]);

    // No inodes left: the file cannot even be created.
    let mut made = 0;
    while std::fs::File::create(fs.dir.join(format!("i{made}"))).is_ok() {
        made += 1;
        assert!(made < 1000, "nr_inodes not honoured");
    }
    let out = run_true(&p);
    assert_eq!(out.status.code(), Some(73), "{}", text(&out));
    assert!(
        text(&out).contains("No space left on device"),
        "{}",
        text(&out)
    );
    assert!(std::fs::symlink_metadata(&p).is_err());
    for i in 0..made {
        std::fs::remove_file(fs.dir.join(format!("i{i}"))).unwrap();
    }
    let out = run_true(&p);
    assert!(out.status.success(), "after freeing inodes: {}", text(&out));
    nothing_left(&p, &[]);

    summary::passed(
        "faults-enospc",
        "tmpfs out of blocks and out of inodes: exit 73 naming the path, no file left, works once freed",
    );
}

#[test]
fn faults_read_only_filesystem_is_a_clear_error() {
    let fs = match Tmpfs::mount("size=64k,mode=0755") {
        Ok(fs) => fs,
        Err(why) => return summary::skipped("faults-erofs", &why),
    };
    let p = fs.dir.join("app.pid");
    // A stale file from before the filesystem went read-only.
    let stale = fs.dir.join("stale.pid");
    let mut gone = Command::new("true").spawn().unwrap();
    gone.wait().unwrap();
    let stale_content = format!("{}\n", gone.id());
    std::fs::write(&stale, &stale_content).unwrap();
    fs.remount("ro");

    for path in [&p, &stale] {
        let out = run_true(path);
        assert_eq!(out.status.code(), Some(73), "{}", text(&out));
        let msg = text(&out);
        assert!(msg.contains(&*path.to_string_lossy()), "{msg}");
        assert!(msg.contains("Read-only file system"), "{msg}");
    }
    assert!(std::fs::symlink_metadata(&p).is_err());
    assert_eq!(std::fs::read_to_string(&stale).unwrap(), stale_content);
    // Readers still work.
    let st = pidguard()
        .args(["status", "-p"])
        .arg(&stale)
        .output()
        .unwrap();
    assert_eq!(st.status.code(), Some(1), "{}", text(&st));

    fs.remount("rw");
    let out = run_true(&p);
    assert!(out.status.success(), "after remount rw: {}", text(&out));
    summary::passed(
        "faults-erofs",
        "read-only tmpfs: exit 73 naming the path and EROFS, stale file untouched, status works, rw again works",
    );
}

#[test]
fn faults_directory_without_write_permission_for_a_user() {
    if !summary::is_root() {
        return summary::skipped("faults-no-write-dir", "needs root to run as user nobody");
    }
    if !testkit::have_tool("setpriv", "--version") {
        return summary::skipped("faults-no-write-dir", "setpriv(1) is not installed");
    }
    let dir = tmp();
    let locked_dir = dir.path().join("root-only");
    std::fs::create_dir(&locked_dir).unwrap();
    use std::os::unix::fs::PermissionsExt;
    for d in [dir.path(), &locked_dir] {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let p = locked_dir.join("app.pid");
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(bin())
        .arg("run")
        .arg("-p")
        .arg(&p)
        .args(["--", "true"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    if out.status.code() == Some(126) || out.status.code() == Some(127) {
        return summary::skipped(
            "faults-no-write-dir",
            "the test binary is not reachable by user nobody",
        );
    }
    assert_eq!(out.status.code(), Some(73), "{}", text(&out));
    let msg = text(&out);
    assert!(msg.contains(&*p.to_string_lossy()), "{msg}");
    assert!(msg.contains("Permission denied"), "{msg}");
    nothing_left(&p, &[]);
    summary::passed(
        "faults-no-write-dir",
        "user nobody, directory 0755 root: exit 73 naming the path, nothing created",
    );
}
