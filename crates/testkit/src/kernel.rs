//! Kernel identity records, shared by the library's and the CLI's tests:
//! the `user.pidguard.pidfd_ino` attribute pidguard keeps with a PID file,
//! and a process's pidfs inode as the kernel gives it.

use std::path::Path;

/// The attribute in which pidguard records a PID file's owner as the kernel
/// knows it.
pub const RECORD_ATTR: &str = "user.pidguard.pidfd_ino";

/// The kernel identity record of a PID file: `(pid, pidfs inode)` from
/// `pid=P ino=I boot=B`, or `None` when the file carries none.
pub fn kernel_record(path: &Path) -> Option<(i32, u64)> {
    let mut buf = [0u8; 256];
    let n = xattr_get(path, RECORD_ATTR, &mut buf)?;
    let text = std::str::from_utf8(&buf[..n]).ok()?;
    let mut fields = text.split(' ');
    let pid = fields.next()?.strip_prefix("pid=")?.parse().ok()?;
    let ino = fields.next()?.strip_prefix("ino=")?.parse().ok()?;
    Some((pid, ino))
}

/// A process's identity as the kernel knows it: the inode of a pidfd for it
/// on pidfs. `None` without pidfs (Linux before 6.9: pidfds are anonymous
/// inodes, all one inode) or when the process is gone.
#[cfg(target_os = "linux")]
pub fn pidfs_ino(pid: i32) -> Option<u64> {
    let fd = rustix::process::pidfd_open(
        rustix::process::Pid::from_raw(pid)?,
        rustix::process::PidfdFlags::empty(),
    )
    .ok()?;
    // f_type's width differs between architectures.
    #[allow(clippy::unnecessary_cast)]
    let magic = rustix::fs::fstatfs(&fd).ok()?.f_type as u32;
    if magic != 0x5049_4446 {
        return None;
    }
    Some(rustix::fs::fstat(&fd).ok()?.st_ino)
}

/// No pidfs outside Linux.
#[cfg(not(target_os = "linux"))]
pub fn pidfs_ino(_pid: i32) -> Option<u64> {
    None
}

#[cfg(target_os = "linux")]
fn xattr_get(path: &Path, name: &str, buf: &mut [u8]) -> Option<usize> {
    rustix::fs::getxattr(path, name, buf).ok()
}

#[cfg(target_os = "linux")]
fn xattr_set(path: &Path, name: &str, value: &[u8]) -> std::io::Result<()> {
    Ok(rustix::fs::setxattr(
        path,
        name,
        value,
        rustix::fs::XattrFlags::empty(),
    )?)
}

/// Records are Linux's only (the tests that need them skip elsewhere).
#[cfg(not(target_os = "linux"))]
fn xattr_get(_path: &Path, _name: &str, _buf: &mut [u8]) -> Option<usize> {
    None
}

#[cfg(not(target_os = "linux"))]
fn xattr_set(_path: &Path, _name: &str, _value: &[u8]) -> std::io::Result<()> {
    Err(std::io::ErrorKind::Unsupported.into())
}

/// Why kernel identity records cannot be written in `dir`, if they cannot:
/// no pidfs, or no user extended attributes on its filesystem.
pub fn kernel_identity_unavailable(dir: &Path) -> Option<String> {
    if pidfs_ino(std::process::id() as i32).is_none() {
        return Some("no pidfs here (Linux before 6.9): no kernel identity".into());
    }
    let probe = dir.join(".xattr-probe");
    std::fs::write(&probe, "").unwrap();
    let set = xattr_set(&probe, "user.probe", b"1");
    let _ = std::fs::remove_file(&probe);
    set.err()
        .map(|e| format!("{} keeps no user extended attributes ({e})", dir.display()))
}

/// Asserts that the PID file at `path` records `pid` with its pidfs inode,
/// where the kernel and the filesystem allow records at all; elsewhere the
/// check is recorded as skipped ([`skipped`](crate::skipped)), with the
/// reason.
pub fn assert_records_owner(path: &Path, pid: i32) {
    let dir = path.parent().unwrap_or(Path::new("."));
    if let Some(why) = kernel_identity_unavailable(dir) {
        crate::skipped(&format!(
            "the kernel identity record of {} (PID {pid}) is not checked: {why}",
            path.display()
        ));
        return;
    }
    let ino = pidfs_ino(pid).expect("the owner runs");
    assert_eq!(
        kernel_record(path),
        Some((pid, ino)),
        "{} should record PID {pid} with pidfs inode {ino}",
        path.display()
    );
}

/// This boot's ID, as pidguard's records carry it.
pub fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .unwrap()
        .trim_end()
        .to_owned()
}

/// Sets the record `pid=PID ino=INO boot=<this boot>` on `path`, as a
/// writer (pidguard or a forger) would.
pub fn plant_record(path: &Path, pid: i32, ino: u64) {
    let record = format!("pid={pid} ino={ino} boot={}", boot_id());
    xattr_set(path, RECORD_ATTR, record.as_bytes()).unwrap();
}
