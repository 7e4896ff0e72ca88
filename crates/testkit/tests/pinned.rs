//! `Pinned`: a process the test started but is not the parent of is
//! killed through its pidfd when the pin is dropped, and waited for; one
//! already gone is left out.

use std::process::Command;

use testkit::{alive, pid_in, tmp, Pinned};

/// A `sleep` forked away from a shell that has exited: not our child.
fn orphan(dir: &std::path::Path) -> i32 {
    let file = dir.join("bg");
    let status = Command::new("sh")
        .arg("-c")
        .arg("sleep 30 >/dev/null 2>&1 & echo $! > \"$0\"")
        .arg(&file)
        .status()
        .unwrap();
    assert!(status.success());
    pid_in(&file)
}

#[test]
fn a_pinned_process_is_killed_and_waited_for_when_dropped() {
    let dir = tmp();
    let pid = orphan(dir.path());
    let pin = Pinned::new([pid]);
    assert!(alive(pid));
    drop(pin);
    assert!(!alive(pid), "{pid} runs on after the pin was dropped");
}

#[test]
fn terminate_sends_term_and_waits() {
    let dir = tmp();
    let pid = orphan(dir.path());
    let pin = Pinned::new([pid]);
    pin.terminate(std::time::Duration::from_secs(10));
    assert!(!alive(pid), "{pid} runs on after SIGTERM");
}

#[test]
fn a_process_already_gone_and_pids_0_and_1_are_left_out() {
    let mut gone = Command::new("true").spawn().unwrap();
    let pid = gone.id() as i32;
    gone.wait().unwrap();
    // Nothing to pin, nothing signalled: dropping returns at once.
    drop(Pinned::new([pid, 0, 1]));
}
