//! The holder record: who holds a lock, as stored in the lock key.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use etcd_client::KeyValue;
use pidguard::Pid;

/// The environment variable that overrides the host name recorded in the
/// holder value (for tests that simulate several hosts on one machine).
const HOST_ID_ENV: &str = "PIDGUARD_ETCD_HOST_ID";

/// Who holds a lock: the value of the lock key, as `key=value` lines.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holder {
    /// The host name (or the host ID given to [`Lock::host`](crate::Lock::host)).
    pub host: String,
    /// The host's boot ID (`/proc/sys/kernel/random/boot_id`), empty if
    /// unknown.
    pub boot_id: String,
    /// The PID of the protected process (the supervised command under
    /// `pidguard run`); 0 while [`Holder::starting`].
    pub pid: u32,
    /// The lock is held but the protected process is not started yet
    /// (see [`Lock::starting`](crate::Lock::starting)): `pid` is 0 until [`Guard::set_pid`](crate::Guard::set_pid).
    pub starting: bool,
    /// The PID of the process holding the lease (the supervisor).
    pub supervisor_pid: u32,
    /// When the protected process started (wall clock), if known.
    pub start_time: Option<SystemTime>,
    /// When the lock was acquired (wall clock of the holder).
    pub since: Option<SystemTime>,
    /// The holder's pidguard version.
    pub version: String,
}

impl Holder {
    pub(crate) fn local(host: Option<&str>, pid: Option<Pid>) -> Holder {
        let host = host
            .map(str::to_owned)
            .or_else(|| std::env::var(HOST_ID_ENV).ok().filter(|h| !h.is_empty()))
            .or_else(|| read_line("/proc/sys/kernel/hostname"))
            .or_else(|| read_line("/etc/hostname"))
            .unwrap_or_else(|| "unknown".into());
        Holder {
            host,
            boot_id: read_line("/proc/sys/kernel/random/boot_id").unwrap_or_default(),
            pid: pid.map_or(0, |p| p.get() as u32),
            starting: pid.is_none(),
            supervisor_pid: std::process::id(),
            start_time: pid.and_then(pidguard::start_time),
            since: Some(SystemTime::now()),
            version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }

    /// The record as `key=value` lines (what is stored in etcd).
    pub fn encode(&self) -> String {
        let t = |t: Option<SystemTime>| t.map(unix_millis).unwrap_or_default();
        format!(
            "host={}\nboot_id={}\nstate={}\npid={}\nsupervisor_pid={}\nstart_time={}\nsince={}\n\
             version={}\n",
            clean(&self.host),
            clean(&self.boot_id),
            if self.starting { "starting" } else { "running" },
            self.pid,
            self.supervisor_pid,
            t(self.start_time),
            t(self.since),
            clean(&self.version),
        )
    }

    /// Reads a record written by [`Holder::encode`]; unknown keys are
    /// ignored and missing ones left empty or 0.
    pub fn decode(text: &str) -> Holder {
        let mut h = Holder {
            host: String::new(),
            boot_id: String::new(),
            pid: 0,
            starting: false,
            supervisor_pid: 0,
            start_time: None,
            since: None,
            version: String::new(),
        };
        let time = |v: &str| {
            let (s, ms) = v.split_once('.').unwrap_or((v, "0"));
            let s: u64 = s.parse().ok()?;
            let ms: u64 = format!("{ms:0<3}").get(..3)?.parse().ok()?;
            // Written by anyone: never overflow, never panic.
            let millis = s.checked_mul(1000)?.checked_add(ms)?;
            UNIX_EPOCH.checked_add(Duration::from_millis(millis))
        };
        for line in text.lines() {
            let Some((k, v)) = line.split_once('=') else {
                continue;
            };
            match k {
                "host" => h.host = clean(v),
                "boot_id" => h.boot_id = clean(v),
                "pid" => h.pid = v.parse().unwrap_or(0),
                "state" => h.starting = v == "starting",
                "supervisor_pid" => h.supervisor_pid = v.parse().unwrap_or(0),
                "start_time" => h.start_time = time(v),
                "since" => h.since = time(v),
                "version" => h.version = clean(v),
                _ => {}
            }
        }
        h
    }
}

fn read_line(path: &str) -> Option<String> {
    let s = std::fs::read_to_string(path).ok()?;
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}

/// A value safe for one `key=value` line.
pub(crate) fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// `SECONDS.MMM` since the epoch.
fn unix_millis(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    format!("{}.{:03}", d.as_secs(), d.subsec_millis())
}

/// A lock's current holder, as [`Lock::status`](crate::Lock::status) reads it.
#[non_exhaustive]
#[derive(Clone, Debug)]
pub struct Holding {
    /// The lock key.
    pub key: String,
    /// Who holds it.
    pub holder: Holder,
    /// The fencing token: the key's create revision.
    pub fence: u64,
    /// The lease the key is bound to.
    pub lease: i64,
    /// The lease's remaining time to live, when it could be read.
    pub lease_ttl: Option<Duration>,
}

impl Holding {
    pub(crate) fn from_kv(key: &str, kv: &KeyValue) -> Holding {
        Holding {
            key: key.to_string(),
            holder: Holder::decode(&String::from_utf8_lossy(kv.value())),
            fence: kv.create_revision() as u64,
            lease: kv.lease(),
            lease_ttl: None,
        }
    }
}

impl fmt::Display for Holding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let h = &self.holder;
        if h.starting {
            write!(
                f,
                "host {} (starting, supervisor PID {}, fence {})",
                h.host, h.supervisor_pid, self.fence
            )
        } else {
            write!(f, "host {} (PID {}, fence {})", h.host, h.pid, self.fence)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pidguard::Pid;

    #[test]
    fn holder_round_trips() {
        let h = Holder::local(Some("host\nx"), Some(Pid::current()));
        let back = Holder::decode(&h.encode());
        assert_eq!(back.host, "host?x");
        assert_eq!(back.pid, std::process::id());
        assert_eq!(back.version, env!("CARGO_PKG_VERSION"));
        assert!(!back.starting);
        let starting = Holder::decode(&Holder::local(None, None).encode());
        assert!(starting.starting);
        assert_eq!(starting.pid, 0);
        let ms = |t: Option<SystemTime>| t.unwrap().duration_since(UNIX_EPOCH).unwrap().as_millis();
        assert_eq!(ms(back.since), ms(h.since));
        let empty = Holder::decode("garbage\nx=y\n");
        assert_eq!(empty.pid, 0);
        assert!(empty.since.is_none());
    }
}
