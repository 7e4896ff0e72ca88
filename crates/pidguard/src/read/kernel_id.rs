//! Identity proved by the kernel: the owner's pidfs inode, recorded with
//! the PID file.
//!
//! Since Linux 6.9 every pidfd lives on pidfs, and the inode number of a
//! process's pidfd (`fstat(pidfd_open(pid)).st_ino`) is a 64-bit number the
//! kernel never gives to another process while the system runs. When
//! pidguard writes a PID file it records that number in the extended
//! attribute `user.pidguard.pidfd_ino`, as ASCII:
//!
//! ```text
//! pid=1234 ino=394949 boot=0f3b6a52-9d4e-4c1a-8a51-64a1d3d0b1c7
//! ```
//!
//! the PID the record is about, the owner's pidfs inode, and this boot's ID
//! (`/proc/sys/kernel/random/boot_id`: inode numbers start again at every
//! boot). The file's content stays the decimal PID.
//!
//! A reader trusts a record only about the PID in the file, in the boot it
//! was made in: a record naming another PID (the file was rewritten by a
//! tool that kept the attribute, or caught between two writes) or another
//! boot is ignored, as is a malformed one. Then `pidfd_open(PID)`, through
//! the seam's rule for every pidfd (`/proc` must be this PID namespace's
//! and the pidfd's `fdinfo` `Pid:` the PID checked: see `sys/pidfs.rs`):
//!
//! * the same inode proves the process is the one the file was written
//!   for, but only from a writer with authority over the process (the file
//!   owned by root, by the caller or by the process's user, and writable by
//!   its owner alone: anyone can compute another process's pidfs inode,
//!   and a user who may write a file may write its attribute), and never
//!   for a kernel thread;
//! * another inode proves the process at the PID is not the one recorded
//!   (its PID reused, or the file written in another PID namespace),
//!   whoever wrote the record: it is never signalled. It does not prove
//!   the recorded owner gone (it may live on in the writer's namespace):
//!   the file is kept and not taken over, as for other contrary evidence.
//!
//! The verdict is used where no lock decides (`identity::identify` with the
//! file unlocked: an unlocked file, the supervisor's child at its gate, a
//! take-over); a locked file is judged by its lock. Anything that cannot be
//! asked (no pidfs, no record, no user attributes on the filesystem, a
//! `/proc` of another namespace, a process that is gone or is not a
//! thread-group leader) decides nothing: the other evidence does.
//!
//! Across PID namespaces: a file written in a namespace below the
//! reader's (a container's, read from the host) holds the owner's PID
//! there, which here is another process or none. Where the file's PID
//! proves nothing here, [`recorded_elsewhere`] compares the record with the
//! lock's holder and with the processes that have the file's PID in a
//! namespace below (`NSpid`): the one with the recorded inode is the
//! owner, named by its PID here (`status::resolve_holder`, and an unlocked
//! file whose record reads [`KernelIdentity::Different`]).
//!
//! # Write order
//!
//! A new file gets its record on the unnamed (`O_TMPFILE`) or temporary
//! file, after its content and before it is linked into place: it never
//! appears without it. An existing file (take-over, [`Guard::set_pid`])
//! gets the new record *before* its new content: a reader in between sees
//! the old PID with a record naming the new one (ignored: another PID) or
//! the new PID with its own record, never a record that vouches for a PID
//! it was not made for. Where the new record cannot be set, the old one is
//! removed before the content changes; where neither can be done, the
//! write fails rather than leave a record that names the new PID's number
//! with an old identity.
//!
//! [`Guard::set_pid`]: crate::Guard::set_pid

use std::io;
use crate::sys::AsFd;

use crate::sys::Stat;

use crate::pid::Pid;
use crate::sys;

/// What the kernel says about the PID in a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KernelIdentity {
    /// The process at the PID is the one the record names: proved owner.
    Same,
    /// The process at the PID is another one: proved reused.
    Different {
        /// The pidfs inode in the record.
        recorded: u64,
        /// The pidfs inode of the process at the PID now.
        found: u64,
    },
    /// No proof either way.
    Absent(Absent),
}

/// Why the kernel decided nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Absent {
    /// The file carries no record (or its filesystem keeps no user
    /// attributes, or this is not Linux).
    NoRecord,
    /// The record could not be read or parsed.
    Malformed,
    /// The record is about another PID than the one in the file.
    OtherPid,
    /// The record was made in another boot, or this boot's ID is unknown.
    OtherBoot,
    /// No pidfs: pidfds are anonymous inodes (before Linux 6.9) or absent.
    Unsupported,
    /// The process is gone, is not a thread-group leader, or could not be
    /// opened.
    NoProcess,
    /// The record names the process, but its writer had no authority over
    /// it: the file is group- or world-writable, or owned by someone other
    /// than root, the caller and the process's user.
    Untrusted,
    /// Not read: the file is locked, and the lock decides.
    NotAsked,
}

/// Which evidence decided an identity verdict (`status --json`'s and
/// `list --json`'s `evidence`).
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DecidedBy {
    /// The process's pidfs inode against the one recorded with the file.
    KernelIdentity,
    /// The file's lock, held through a descriptor of the process.
    Lock,
    /// Start time, boot time, namespace and filters.
    ConsistentChecks,
}

impl DecidedBy {
    /// `kernel identity`, `lock` or `consistent checks`.
    pub fn name(self) -> &'static str {
        match self {
            DecidedBy::KernelIdentity => "kernel identity",
            DecidedBy::Lock => "lock",
            DecidedBy::ConsistentChecks => "consistent checks",
        }
    }

    /// Which evidence decided `identity` (filters applied), judged with
    /// the lock held (`locked`: the lock decides) or not (a record the
    /// kernel confirmed or refuted decides, else the consistency checks).
    /// `None` for an unproved verdict: nothing decided it.
    pub(crate) fn of(identity: &crate::Identity, locked: bool) -> Option<DecidedBy> {
        use crate::{Identity, Mismatch};
        Some(match identity {
            Identity::Unproved(_) => return None,
            Identity::Mismatched(Mismatch::KernelIdentity { .. }) => DecidedBy::KernelIdentity,
            Identity::Mismatched(Mismatch::NotLockHolder) => DecidedBy::Lock,
            Identity::Verified if locked => DecidedBy::Lock,
            // Unlocked, only a record the kernel confirmed verifies.
            Identity::Verified => DecidedBy::KernelIdentity,
            Identity::Consistent | Identity::Mismatched(_) => DecidedBy::ConsistentChecks,
        })
    }
}

/// The longest record read; longer is malformed.
const MAX_RECORD: usize = 128;

/// A record's text, built on the stack (it is made on every write).
struct Encoded {
    buf: [u8; MAX_RECORD],
    len: usize,
}

impl std::ops::Deref for Encoded {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// The record's text for `pid`, whose pidfs inode is `ino`, in boot `boot`
/// (at most 36 bytes: [`sys::pidfs::boot_id`]'s length).
fn encode(pid: Pid, ino: u64, boot: &[u8]) -> Encoded {
    use std::io::Write;
    let mut buf = [0u8; MAX_RECORD];
    let mut w = &mut buf[..];
    // 4 + 10 + 5 + 20 + 6 + 36 bytes at most: always fits.
    let _ = write!(w, "pid={pid} ino={ino} boot=");
    let _ = w.write_all(&boot[..boot.len().min(36)]);
    let len = MAX_RECORD - w.len();
    Encoded { buf, len }
}

/// Parses a record: `(pid, ino, boot)`.
fn parse(bytes: &[u8]) -> Option<(u32, u64, &[u8])> {
    let text = std::str::from_utf8(bytes).ok()?;
    let mut fields = text.split(' ');
    let pid = fields.next()?.strip_prefix("pid=")?;
    let ino = fields.next()?.strip_prefix("ino=")?;
    let boot = fields.next()?.strip_prefix("boot=")?;
    if fields.next().is_some() || boot.is_empty() {
        return None;
    }
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(pid) || !digits(ino) {
        return None;
    }
    Some((pid.parse().ok()?, ino.parse().ok()?, boot.as_bytes()))
}

/// The record for `pid`, or `None` where the kernel cannot name it.
fn make(pid: Pid, me: Pid) -> Option<Encoded> {
    let boot = sys::pidfs::boot_id()?;
    let ino = sys::pidfs::ino(pid, me).ok()?;
    Some(encode(pid, ino, boot))
}

/// Records `pid`'s identity on a new, not yet visible file. `false` where
/// it could not be (no pidfs, no user attributes): the file simply carries
/// no record.
pub(crate) fn record_new(fd: impl AsFd, pid: Pid, me: Pid) -> bool {
    match make(pid, me) {
        Some(value) => sys::pidfs::set_record(fd, &value).is_ok(),
        None => false,
    }
}

/// Before an existing file's content changes to `pid` (`None`: to nothing,
/// or recording is turned off): sets the new record, or removes the old one
/// where that is not possible. Fails only when a record is left that could
/// not be replaced or removed.
pub(crate) fn replace(fd: impl AsFd, pid: Option<Pid>, me: Pid) -> io::Result<()> {
    let fd = fd.as_fd();
    if let Some(value) = pid.and_then(|p| make(p, me)) {
        if sys::pidfs::set_record(fd, &value).is_ok() {
            return Ok(());
        }
    }
    sys::pidfs::remove_record(fd)
}

/// What the kernel says about `pid`, read from the file open at `fd`, whose
/// `fstat` is `file`. `me` is the caller's PID.
pub(crate) fn kernel_identity(pid: Pid, fd: impl AsFd, file: &Stat, me: Pid) -> KernelIdentity {
    match recorded(pid, fd) {
        Ok(ino) => judge(ino, pid, file, me),
        Err(why) => KernelIdentity::Absent(why),
    }
}

/// The pidfs inode the file open at `fd` records for `pid`: only a record
/// about that PID, made in this boot, is read.
pub(crate) fn recorded(pid: Pid, fd: impl AsFd) -> Result<u64, Absent> {
    let mut buf = [0u8; MAX_RECORD];
    let n = match sys::pidfs::get_record(fd, &mut buf) {
        Ok(Some(n)) => n,
        Ok(None) => return Err(Absent::NoRecord),
        // ERANGE (too long) and the rest.
        Err(_) => return Err(Absent::Malformed),
    };
    let Some((rec_pid, recorded, boot)) = parse(&buf[..n]) else {
        return Err(Absent::Malformed);
    };
    if rec_pid != pid.as_u32() {
        return Err(Absent::OtherPid);
    }
    if sys::pidfs::boot_id() != Some(boot) {
        return Err(Absent::OtherBoot);
    }
    Ok(recorded)
}

/// What the kernel says about process `candidate` (as this PID namespace
/// numbers it) against the pidfs inode `recorded` with the file whose
/// `fstat` is `file`.
fn judge(recorded: u64, candidate: Pid, file: &Stat, me: Pid) -> KernelIdentity {
    match sys::pidfs::ino(candidate, me) {
        Ok(found) if found == recorded && credible(file, candidate) => KernelIdentity::Same,
        Ok(found) if found == recorded => KernelIdentity::Absent(Absent::Untrusted),
        // Whoever wrote it, a record that names another process never
        // leads to a signal.
        Ok(found) => KernelIdentity::Different { recorded, found },
        Err(sys::pidfs::NoIno::Unsupported) => KernelIdentity::Absent(Absent::Unsupported),
        Err(_) => KernelIdentity::Absent(Absent::NoProcess),
    }
}

/// The process the file's record names, found under another PID than the
/// file's `file_pid`, which here is not it (dead, or another process): the
/// record was made in another PID namespace (a container sharing the
/// directory), where the process is `file_pid`. The candidates are the
/// lock's `holder` (when the file is locked and it was found), then every
/// process whose PID in a namespace below this one is `file_pid` (the
/// `NSpid:` line of `/proc/P/status`, after its first entry, the PID
/// here); the one whose pidfs inode is `recorded` (and whose writer had
/// authority over it, as for any record) is the owner, named by its PID
/// here. `None` where nothing is proved, or no record could prove
/// anything (no pidfs, a `/proc` of another namespace, a file writable
/// by others).
pub(crate) fn recorded_elsewhere(
    recorded: u64,
    file_pid: Pid,
    holder: Option<Pid>,
    file: &Stat,
    me: Pid,
) -> Option<Pid> {
    // Cheap refusals first: the search reads every process's status. (A
    // /proc of another namespace is not refused here, since asking for
    // one's own identity does not look at /proc: each candidate's judge
    // then refuses it, as ForeignProc.)
    if !writer_may_vouch(file) || sys::pidfs::ino(me, me).is_err() {
        return None;
    }
    let proves = |p: Pid| judge(recorded, p, file, me) == KernelIdentity::Same;
    if let Some(h) = holder.filter(|&h| h != file_pid) {
        if proves(h) {
            return Some(h);
        }
    }
    let below = |p: Pid| {
        sys::proc::status_result(p).is_ok_and(|s| {
            s.tgid == p.get() && s.nspid.iter().skip(1).any(|&n| n == file_pid.get())
        })
    };
    sys::proc::all_pids()
        .into_iter()
        .filter(|&p| p != file_pid && Some(p) != holder)
        .find(|&p| below(p) && proves(p))
}

/// Whether the file's writer had authority over process `pid`: the file is
/// writable by its owner alone, and that owner is root, the caller, or the
/// process's (real) user. The owner must be a UID this user namespace maps:
/// an unmapped one reads as the overflow UID, shared by every unmapped user
/// (the caller's own, and the process's, may read the same).
fn credible(file: &Stat, pid: Pid) -> bool {
    if !writer_may_vouch(file) {
        return false;
    }
    let owner = file.st_uid;
    owner == 0
        || owner == sys::geteuid()
        || sys::pidfs::process_uid(pid) == Some(owner)
}

/// [`credible`]'s part about the file alone: writable by its owner alone,
/// a UID this user namespace maps.
fn writer_may_vouch(file: &Stat) -> bool {
    file.st_mode & 0o022 == 0 && sys::pidfs::uid_mapped(file.st_uid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_malformed_ones_are_refused() {
        let pid = Pid::new(1234).unwrap();
        let boot = b"0f3b6a52-9d4e-4c1a-8a51-64a1d3d0b1c7";
        let v = encode(pid, 394949, boot);
        assert_eq!(
            &v[..],
            b"pid=1234 ino=394949 boot=0f3b6a52-9d4e-4c1a-8a51-64a1d3d0b1c7"
        );
        assert_eq!(parse(&v), Some((1234, 394949, &boot[..])));
        // The longest record fits, whole.
        let max = Pid::new(i32::MAX).unwrap();
        let v = encode(max, u64::MAX, boot);
        assert_eq!(parse(&v), Some((i32::MAX as u32, u64::MAX, &boot[..])));
        for bad in [
            &b""[..],
            b"pid=1234 ino=394949",
            b"pid=1234 ino=394949 boot=",
            b"pid=+1234 ino=394949 boot=x",
            b"pid=1234 ino=-1 boot=x",
            b"pid=1234  ino=1 boot=x",
            b"ino=1 pid=1234 boot=x",
            b"pid=1234 ino=1 boot=x extra",
            b"pid=99999999999 ino=1 boot=x",
            b"pid=1 ino=99999999999999999999999 boot=x",
            b"pid=1 ino=1 boot=\xff",
        ] {
            assert_eq!(parse(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[cfg(target_os = "linux")]
    fn st(file: &std::fs::File) -> Stat {
        sys::fstat(file).unwrap()
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_record_proves_its_own_process_and_is_ignored_for_another_pid() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.pid");
        let file = std::fs::File::create(&path).unwrap();
        let me = Pid::current();
        if !record_new(&file, me, me) {
            crate::sys::test_skipped(&format!(
                "no pidfs or no user xattrs on {}",
                dir.path().display()
            ));
            return;
        }
        assert_eq!(
            kernel_identity(me, &file, &st(&file), me),
            KernelIdentity::Same
        );
        // Looked up without the cache: the same answer.
        let parent = Pid::new(std::os::unix::process::parent_id() as i32).unwrap();
        assert_eq!(
            kernel_identity(me, &file, &st(&file), parent),
            KernelIdentity::Same,
            "uncached"
        );
        // A record about the parent says nothing about us.
        assert!(record_new(&file, parent, me));
        assert_eq!(
            kernel_identity(me, &file, &st(&file), me),
            KernelIdentity::Absent(Absent::OtherPid)
        );
        // Another boot's record is ignored.
        let boot = b"00000000-0000-0000-0000-000000000000";
        let ino = sys::pidfs::ino(me, me).unwrap();
        sys::pidfs::set_record(&file, &encode(me, ino, boot)).unwrap();
        assert_eq!(
            kernel_identity(me, &file, &st(&file), me),
            KernelIdentity::Absent(Absent::OtherBoot)
        );
        // Another process's identity at our PID: proved reused.
        let real = sys::pidfs::boot_id().unwrap();
        sys::pidfs::set_record(&file, &encode(me, ino + 1, real)).unwrap();
        assert_eq!(
            kernel_identity(me, &file, &st(&file), me),
            KernelIdentity::Different {
                recorded: ino + 1,
                found: ino
            }
        );
        // A writer without authority over the process: a file anyone in
        // its group may write proves nothing; its contrary evidence stands.
        sys::pidfs::set_record(&file, &encode(me, ino, real)).unwrap();
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o664))
            .unwrap();
        assert_eq!(
            kernel_identity(me, &file, &st(&file), me),
            KernelIdentity::Absent(Absent::Untrusted)
        );
        sys::pidfs::set_record(&file, &encode(me, ino + 1, real)).unwrap();
        assert!(matches!(
            kernel_identity(me, &file, &st(&file), me),
            KernelIdentity::Different { .. }
        ));
        file.set_permissions(std::fs::Permissions::from_mode(0o644))
            .unwrap();
        // Removed: nothing.
        replace(&file, None, me).unwrap();
        assert_eq!(
            kernel_identity(me, &file, &st(&file), me),
            KernelIdentity::Absent(Absent::NoRecord)
        );
        replace(&file, None, me).unwrap();
    }
}
