//! What the etcd tests of pidguard-etcd and pidguard-cli share: the server
//! they start, free loopback ports, and running one at a time.

use std::net::TcpListener;
use std::path::Path;
use std::sync::Mutex;

use crate::missing;

/// The etcd server the tests start (Debian's `etcd-server`).
pub const ETCD: &str = "/usr/bin/etcd";

/// Whether [`ETCD`] is installed; if not, the test is recorded as skipped
/// (under `CI=true` it fails: `.ci/run` installs it).
pub fn have_etcd() -> bool {
    if Path::new(ETCD).exists() {
        return true;
    }
    missing(&format!("{ETCD} (Debian: etcd-server)"));
    false
}

/// A loopback port free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The tests measure timings against the TTL: they run one at a time so
/// that they do not compete for the two CPUs of a CI machine, both as
/// threads of one test binary (`cargo test`) and as processes (`cargo
/// nextest`, which runs each test in a process of its own; pidguard-etcd's
/// and pidguard-cli's alike): a mutex, then an exclusive `flock` on a file
/// in the temporary directory. Held until dropped.
pub struct Serial {
    _file: std::fs::File,
    _guard: std::sync::MutexGuard<'static, ()>,
}

static SERIAL: Mutex<()> = Mutex::new(());

/// Waits for the other etcd tests to finish; see [`Serial`].
pub fn serial() -> Serial {
    let guard = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let path = std::env::temp_dir().join("pidguard-etcd-tests.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .unwrap();
    file.lock().unwrap();
    Serial {
        _file: file,
        _guard: guard,
    }
}
