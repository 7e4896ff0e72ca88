//! A POSIX lock taken through an
//! overlayfs mount is on the overlay's inode; `F_OFD_GETLK` asked through
//! the upper layer's path (the same file, another inode object) does not
//! see it, and `run` takes the file over and removes it. `/proc/locks`,
//! matched by inode number as before this round, did see it (the overlay
//! inode has the upper file's number). Runs in `unshare -rm` (a user and
//! mount namespace: no root needed); nothing is signalled (`run` runs
//! `true`). record_locked checks the table after F_OFD_GETLK's "not held"
//! for this reason (a hostile review found it).
#![cfg(target_os = "linux")]

use std::process::Command;

use testkit::*;

#[test]
fn a_posix_lock_taken_through_an_overlay_keeps_the_upper_file() {
    let dir = tmp();
    let d = dir.path().display();
    let b = bin();
    let b = b.display();
    let script = format!(
        "cd {d} && mkdir lower upper work merged && \
         mount -t overlay overlay -o lowerdir=lower,upperdir=upper,workdir=work merged || exit 90; \
         echo 99999 > merged/app.pid; \
         python3 -c 'import fcntl,os,time; fd=os.open(\"merged/app.pid\",os.O_RDWR); \
fcntl.lockf(fd,fcntl.LOCK_EX); open(\"ready\",\"w\").write(\"1\"); time.sleep(5)' & \
         while [ ! -e ready ]; do sleep 0.02; done; \
         {b} run -p upper/app.pid -- true; echo \"run=$?\"; \
         [ -e upper/app.pid ] && echo kept; kill $!; wait"
    );
    let out = Command::new("unshare")
        .args(["-rm", "sh", "-c", &script])
        .output()
        .unwrap();
    let t = text(&out);
    if out.status.code() == Some(90) || t.contains("unshare:") {
        skipped("unshare -rm or an unprivileged overlay mount is not available");
        return;
    }
    assert!(t.contains("run=75"), "the file was taken over: {t}");
    assert!(t.contains("kept"), "{t}");
}
