//! `notify_ready` against a real datagram socket, from a child process.
//!
//! The daemon side runs in a child (this test binary re-executed in a helper
//! role, see `helper_process`) started with its own `NOTIFY_SOCKET`, so no
//! test changes the environment of this multithreaded process.
// Unix behaviour (Windows: tests/windows.rs).
#![cfg(unix)]

use std::os::unix::net::UnixDatagram;
use std::process::Stdio;
use std::time::Duration;

use testkit::{helper_command, report, MARK};

/// Not a test: the body of the helper processes the other tests start.
/// Calls `notify_ready` and reports the result.
#[test]
#[ignore = "helper process for the other tests; does nothing when run alone"]
fn helper_process() {
    if testkit::role().is_none() {
        return;
    }
    match pidguard::notify_ready() {
        Ok(sent) => report(&format!("ok {sent}")),
        Err(e) => report(&format!("error {:?} {e}", e.kind())),
    }
}

/// Runs the helper with `NOTIFY_SOCKET` set to `socket` (unset for `None`)
/// and returns its report.
fn notify_from_child(socket: Option<&str>) -> String {
    let mut cmd = helper_command("helper_process", "notify");
    cmd.stdin(Stdio::null());
    match socket {
        Some(s) => cmd.env("NOTIFY_SOCKET", s),
        None => cmd.env_remove("NOTIFY_SOCKET"),
    };
    let out = cmd.output().expect("run helper");
    assert!(out.status.success(), "helper failed: {:?}", out.status);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.trim().strip_prefix(MARK).map(str::to_string))
        .unwrap_or_else(|| "no report".into())
}

fn recv(manager: &UnixDatagram) -> String {
    manager
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = [0u8; 256];
    let n = manager.recv(&mut buf).expect("a notification");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[test]
fn ready_reaches_a_path_socket() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify");
    let manager = UnixDatagram::bind(&path).unwrap();
    assert_eq!(notify_from_child(Some(path.to_str().unwrap())), "ok true");
    assert_eq!(recv(&manager), "READY=1");
    // Exactly one datagram.
    manager.set_nonblocking(true).unwrap();
    assert!(manager.recv(&mut [0u8; 16]).is_err());
}

#[cfg(target_os = "linux")]
#[test]
fn ready_reaches_an_abstract_socket() {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::SocketAddr;

    let name = format!("pidguard-test-notify-{}", std::process::id());
    let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let manager = UnixDatagram::bind_addr(&addr).unwrap();
    assert_eq!(notify_from_child(Some(&format!("@{name}"))), "ok true");
    assert_eq!(recv(&manager), "READY=1");
}

#[test]
fn unset_or_empty_socket_sends_nothing() {
    assert_eq!(notify_from_child(None), "ok false");
    assert_eq!(notify_from_child(Some("")), "ok false");
}

#[test]
fn a_socket_nobody_listens_on_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gone");
    let report = notify_from_child(Some(path.to_str().unwrap()));
    assert!(report.starts_with("error NotFound"), "{report}");
    // A bound socket whose owner closed it: refused.
    let bound = dir.path().join("closed");
    drop(UnixDatagram::bind(&bound).unwrap());
    let report = notify_from_child(Some(bound.to_str().unwrap()));
    assert!(report.starts_with("error ConnectionRefused"), "{report}");
}

#[test]
fn a_relative_or_vsock_address_is_refused() {
    for address in ["notify.sock", "vsock:2:1234"] {
        let report = notify_from_child(Some(address));
        assert!(
            report.starts_with("error Unsupported"),
            "{address}: {report}"
        );
    }
}
