//! Feature `etcd`: one instance across a cluster, on etcd leases.
//!
//! A PID file's `flock` holds on one host. This module gives the same
//! guarantee across hosts with an etcd v3 cluster: [`Lock`] is the builder
//! (as [`Pidfile`](crate::Pidfile) is), [`Guard`] is held while the lock is
//! (as [`crate::Guard`] is).
//!
//! * **Acquire** grants a lease with a TTL (default 10 s) and, in one
//!   transaction, creates the key `PREFIX/lock/NAME` bound to that lease if it
//!   does not exist. The value records the holder ([`Holder`]: host name,
//!   boot ID, PID, process start time, when, pidguard version).
//! * **Hold**: a background thread renews the lease (every third of the
//!   time the lock counts as held). The guard's [`Guard::deadline`] is one
//!   TTL (less a margin of TTL/10, at most 1 s) after the last renewal etcd
//!   confirmed, counted from when that renewal was *sent*; it counts itself
//!   held until the deadline less [`Lock::stop_within`] (the time the work
//!   needs to stop), then reports [`Event::Lost`]. etcd deletes
//!   the key when the lease expires, so another host can acquire it only
//!   after the holder stopped counting itself as the holder (assuming the
//!   holder's and the etcd leader's clocks run at the same rate).
//! * **Fencing token**: [`Guard::fence`] is the key's create revision. It
//!   increases strictly from one holder to the next: pass it along with
//!   every write to the protected resource so the resource can refuse a
//!   stale holder's writes.
//! * **Waiting** ([`Lock::acquire_timeout`], [`Lock::acquire_wait`])
//!   watches the key for its deletion; it does not poll.
//! * **Stop from anywhere**: [`Lock::request_stop`] writes the key
//!   `PREFIX/stop/NAME`, which the holder's guard watches: the holder sees
//!   [`Event::StopRequested`] (with the requested schedule), stops its work
//!   and releases; `request_stop` returns once the key is gone.
//!
//! The backend is named by a URL, `etcd://HOST:PORT[,HOST:PORT…]/PREFIX`
//! ([`Backend::parse`]); every endpoint is tried in turn when one fails.
//!
//! The API is blocking and runs its own small tokio runtime (the lease is
//! renewed on a background thread). From async code, call it inside
//! `tokio::task::spawn_blocking`.
//!
//! ```no_run
//! use pidguard::etcd::{Backend, Lock};
//! let backend = Backend::parse("etcd://127.0.0.1:2379/locks")?;
//! let guard = Lock::new(backend, "nightly").acquire()?;
//! println!("holding {} with fence {}", guard.key(), guard.fence());
//! // ... work, passing guard.fence() to the storage it writes ...
//! guard.release()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::future::Future;
use std::sync::{mpsc as std_mpsc, Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, EventType, GetResponse, KeyValue, PutOptions, Txn,
    TxnOp, TxnOpResponse, WatchOptions,
};
use tokio::sync::mpsc;

use crate::error::ErrorKind;
use crate::pid::Pid;
use crate::signal::Schedule;

/// The default lease TTL.
pub const DEFAULT_TTL: Duration = Duration::from_secs(10);

/// How long one request to one endpoint may take before the next endpoint
/// is tried.
const OP_TIMEOUT: Duration = Duration::from_secs(2);

/// How long starting a watch may take before the next endpoint is tried.
const WATCH_START_TIMEOUT: Duration = Duration::from_secs(2);

/// The environment variable that overrides the host name recorded in the
/// holder value (for tests that simulate several hosts on one machine).
const HOST_ID_ENV: &str = "PIDGUARD_ETCD_HOST_ID";

// ---------------------------------------------------------------------------
// Errors

/// An error from the etcd backend. [`Error::kind`] is
/// [`ErrorKind::AlreadyRunning`] when another holder has the key
/// ([`Error::holding`] describes it), [`ErrorKind::InvalidName`] for a bad
/// URL or name, [`ErrorKind::Io`] when etcd cannot be reached or has no
/// quorum.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    holding: Option<Box<Holding>>,
}

impl Error {
    fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            kind,
            message: message.into(),
            holding: None,
        }
    }

    fn invalid(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::InvalidName, message)
    }

    fn unreachable(backend: &Backend, what: &str, last: &str) -> Error {
        let remedy = cause(backend, last).unwrap_or_else(|| {
            "check that etcd runs there and has a quorum (a majority of its members up)".into()
        });
        Error::new(
            ErrorKind::Io,
            format!(
                "cannot {what} on etcd at {}: {last}; {remedy}",
                backend.endpoints.join(",")
            ),
        )
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// For [`ErrorKind::AlreadyRunning`]: the current holder.
    pub fn holding(&self) -> Option<&Holding> {
        self.holding.as_deref()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl From<Error> for std::io::Error {
    fn from(e: Error) -> std::io::Error {
        let kind = match e.kind {
            ErrorKind::AlreadyRunning => std::io::ErrorKind::WouldBlock,
            ErrorKind::InvalidName => std::io::ErrorKind::InvalidInput,
            _ => std::io::ErrorKind::Other,
        };
        std::io::Error::new(kind, e)
    }
}

/// An etcd client error with its sources (the TLS or HTTP/2 error under
/// a "transport error"), on one line.
fn err_text(e: &etcd_client::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let t = s.to_string();
        if !text.contains(&t) {
            text.push_str(": ");
            text.push_str(&t);
        }
        source = s.source();
    }
    text
}

/// What an error from etcd means, when it is not "unreachable": a TLS or
/// authentication problem, with the remedy. Never repeats a password
/// (etcd's messages do not carry it; the user name is ours).
fn cause(backend: &Backend, e: &str) -> Option<String> {
    let l = e.to_ascii_lowercase();
    let user = backend.auth.as_ref().map(|(u, _)| u.as_str());
    let has = |w: &[&str]| w.iter().any(|x| l.contains(x));
    if has(&["authentication failed", "invalid user id or password"]) {
        return Some(format!(
            "authentication failed for user {:?}: check the user name and password (--user \
             USER:PASSWORD, or --user USER with --password; ETCDCTL_USER)",
            user.unwrap_or("")
        ));
    }
    if has(&[
        "user name is empty",
        "user name not found",
        "invalid auth token",
    ]) {
        return Some(match user {
            None => "etcd has authentication enabled: give --user USER:PASSWORD (or --user \
                     USER with --password, or ETCDCTL_USER)"
                .into(),
            Some(u) => format!("etcd did not accept the user {u:?}: check --user"),
        });
    }
    if has(&["permission denied"]) {
        return Some(format!(
            "the user {:?} may not use these keys: grant it a role with read and write \
             permission on the prefix {}",
            user.unwrap_or(""),
            backend.prefix
        ));
    }
    let no_client_cert = backend.tls.as_ref().is_some_and(|t| t.identity.is_none());
    // (Go's TLS 1.3 server answers a missing client certificate with
    // "bad certificate".)
    if has(&["certificaterequired", "certificate required"])
        || (no_client_cert && has(&["badcertificate", "bad certificate"]))
    {
        return Some(
            "etcd requires a client certificate (it runs with --client-cert-auth): give --cert \
             and --key (or ETCDCTL_CERT and ETCDCTL_KEY)"
                .into(),
        );
    }
    if has(&[
        "badcertificate",
        "bad certificate",
        "unknown ca",
        "unknownca",
    ]) {
        return Some(
            "etcd refused the client certificate (not signed by a CA it trusts, or expired): \
             check --cert and --key"
                .into(),
        );
    }
    if has(&[
        "invalid peer certificate",
        "unknownissuer",
        "unknown issuer",
        "certificate verify",
        "notvalidforname",
        "not valid for name",
        "certnotvalidforname",
    ]) {
        return Some(
            "the TLS handshake failed: etcd's certificate is not trusted (not signed by the CA \
             in --cacert, or not valid for this host name or address): check --cacert and the \
             endpoint's name"
                .into(),
        );
    }
    // TLS 1.3: the server checks the client certificate after the client
    // considers the handshake done, and may just close the connection.
    let with_client_cert = backend.tls.as_ref().is_some_and(|t| t.identity.is_some());
    if backend.tls.is_some() && has(&["connection closed", "connection reset", "broken pipe"]) {
        return Some(
            if with_client_cert {
                "etcd closed the connection right after the TLS handshake: it most likely refused \
             the client certificate (--cert, --key: not signed by a CA it trusts, or \
             expired); if not, check that etcd runs there and has a quorum"
            } else {
                "etcd closed the connection right after the TLS handshake: it most likely requires \
             a client certificate (it runs with --client-cert-auth): give --cert and --key (or \
             ETCDCTL_CERT and ETCDCTL_KEY); if not, check that etcd runs there and has a quorum"
            }
            .into(),
        );
    }
    if backend.tls.is_some()
        && has(&[
            "invalidcontenttype",
            "corrupt message",
            "tls handshake eof",
            "received corrupt",
        ])
    {
        return Some(
            "the TLS handshake failed: the endpoint does not seem to speak TLS; drop --cacert, \
             --cert and --key for a plain-HTTP etcd"
                .into(),
        );
    }
    if backend.tls.is_some() && has(&["tls", "handshake"]) {
        return Some("the TLS handshake failed: check --cacert, --cert and --key".into());
    }
    if backend.tls.is_none()
        && has(&[
            "frame with invalid size",
            "connection reset",
            "broken pipe",
            "http2 error",
            "h2 protocol error",
        ])
    {
        return Some(
            "if etcd there serves TLS (https), give --cacert (and --cert and --key for a \
             client certificate), or ETCDCTL_CACERT; if it serves plain HTTP, check that it \
             runs there"
                .into(),
        );
    }
    None
}

/// `Result<T, etcd::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

// ---------------------------------------------------------------------------
// Backend URL

/// Where the locks live: etcd endpoints and a key prefix, from a URL
/// `etcd://HOST:PORT[,HOST:PORT…]/PREFIX`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backend {
    url: String,
    endpoints: Vec<String>,
    prefix: String,
    tls: Option<Tls>,
    auth: Option<(String, Password)>,
}

/// TLS settings: the CA that signs etcd's certificates, and a client
/// certificate with its key (PEM).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
struct Tls {
    ca: Option<Vec<u8>>,
    identity: Option<(Vec<u8>, Vec<u8>)>,
}

/// A password, never shown (not by `Debug` either).
#[derive(Clone, PartialEq, Eq)]
struct Password(String);

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
}

fn read_pem(what: &str, path: &std::path::Path) -> Result<Vec<u8>> {
    let pem = std::fs::read(path).map_err(|e| {
        Error::invalid(format!(
            "cannot read the {what} {}: {e}; give a readable PEM file",
            path.display()
        ))
    })?;
    if !pem.windows(11).any(|w| w == b"-----BEGIN ") {
        return Err(Error::invalid(format!(
            "the {what} {} is not in PEM format (no \"-----BEGIN\" line); give a PEM file",
            path.display()
        )));
    }
    Ok(pem)
}

impl Backend {
    /// Parses `etcd://HOST:PORT[,HOST:PORT…]/PREFIX`. The prefix is the
    /// path (`/PREFIX`, default `/pidguard`); lock keys are `PREFIX/lock/NAME`.
    ///
    /// ```
    /// # #[cfg(feature = "etcd")] {
    /// let b = pidguard::etcd::Backend::parse("etcd://10.0.0.1:2379,10.0.0.2:2379/jobs").unwrap();
    /// assert_eq!(b.endpoints(), ["http://10.0.0.1:2379", "http://10.0.0.2:2379"]);
    /// assert_eq!(b.prefix(), "/jobs");
    /// # }
    /// ```
    pub fn parse(url: &str) -> Result<Backend> {
        let bad = |why: &str| {
            Error::invalid(format!(
                "invalid backend {url:?}: {why}; use etcd://HOST:PORT[,HOST:PORT…]/PREFIX, \
                 e.g. etcd://127.0.0.1:2379/locks"
            ))
        };
        let rest = url
            .strip_prefix("etcd://")
            .ok_or_else(|| bad("the scheme must be etcd://"))?;
        let (hosts, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let mut endpoints = Vec::new();
        for h in hosts.split(',') {
            let h = h.trim();
            let Some((host, port)) = h.rsplit_once(':') else {
                return Err(bad(&format!("endpoint {h:?} has no :PORT")));
            };
            if host.is_empty() || port.parse::<u16>().map_or(true, |p| p == 0) {
                return Err(bad(&format!("endpoint {h:?} is not HOST:PORT")));
            }
            if h.chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == '@')
            {
                return Err(bad(&format!("endpoint {h:?} has forbidden characters")));
            }
            endpoints.push(format!("http://{h}"));
        }
        let path = path.trim_end_matches('/');
        if path.chars().any(|c| c.is_control()) {
            return Err(bad("the prefix has control characters"));
        }
        let prefix = if path.is_empty() {
            "/pidguard".to_string()
        } else {
            path.to_string()
        };
        Ok(Backend {
            url: url.to_string(),
            endpoints,
            prefix,
            tls: None,
            auth: None,
        })
    }

    fn tls_mut(&mut self) -> &mut Tls {
        for e in &mut self.endpoints {
            if let Some(rest) = e.strip_prefix("http://") {
                *e = format!("https://{rest}");
            }
        }
        self.tls.get_or_insert_with(Tls::default)
    }

    /// Speaks TLS (`https`) to etcd, trusting the CA in the PEM file
    /// `path` (etcdctl's `--cacert`).
    pub fn ca_cert_file(&mut self, path: impl AsRef<std::path::Path>) -> Result<&mut Backend> {
        let pem = read_pem("CA certificate (--cacert)", path.as_ref())?;
        self.tls_mut().ca = Some(pem);
        Ok(self)
    }

    /// Speaks TLS to etcd with this client certificate and key (PEM
    /// files; etcdctl's `--cert` and `--key`), for an etcd that runs with
    /// `--client-cert-auth`.
    pub fn client_cert_files(
        &mut self,
        cert: impl AsRef<std::path::Path>,
        key: impl AsRef<std::path::Path>,
    ) -> Result<&mut Backend> {
        let cert = read_pem("client certificate (--cert)", cert.as_ref())?;
        let key = read_pem("client key (--key)", key.as_ref())?;
        self.tls_mut().identity = Some((cert, key));
        Ok(self)
    }

    /// Authenticates as `user` with `password` (etcd's user/password
    /// authentication; etcdctl's `--user USER:PASSWORD`). The password is
    /// never shown, in errors or in `Debug`.
    pub fn user(&mut self, user: impl Into<String>, password: impl Into<String>) -> &mut Backend {
        self.auth = Some((user.into(), Password(password.into())));
        self
    }

    /// Whether TLS is used.
    pub fn uses_tls(&self) -> bool {
        self.tls.is_some()
    }

    fn connect_options(&self) -> ConnectOptions {
        let mut o = ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(1))
            .with_keep_alive(Duration::from_secs(5), Duration::from_secs(2))
            .with_require_leader(true);
        if let Some((user, password)) = &self.auth {
            o = o.with_user(user.clone(), password.0.clone());
        }
        if let Some(tls) = &self.tls {
            let mut t = etcd_client::TlsOptions::new();
            if let Some(ca) = &tls.ca {
                t = t.ca_certificate(etcd_client::Certificate::from_pem(ca));
            }
            if let Some((cert, key)) = &tls.identity {
                t = t.identity(etcd_client::Identity::from_pem(cert, key));
            }
            o = o.with_tls(t);
        }
        o
    }

    /// The endpoints, as `http://HOST:PORT`.
    pub fn endpoints(&self) -> &[String] {
        &self.endpoints
    }

    /// The key prefix (starts with `/`).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The URL it was parsed from.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The lock key for `name`: `PREFIX/lock/NAME`. The name must be a
    /// plain, non-empty name without `/` or control characters.
    ///
    /// Lock keys end in `/lock/NAME` and stop requests in `/stop/NAME`
    /// (with a name that has no `/`), so no job's lock key can be another
    /// job's stop key, whatever prefixes two jobs use (`etcd://E/a` with
    /// `--name stop` and `etcd://E` with `--name a` are distinct: they were
    /// not with `PREFIX/NAME` and `PREFIX/NAME/stop`).
    pub fn key(&self, name: &str) -> Result<String> {
        check_name(name)?;
        Ok(format!("{}/lock/{name}", self.prefix))
    }

    /// The key a stop request for `name` is written to: `PREFIX/stop/NAME`.
    pub fn stop_key(&self, name: &str) -> Result<String> {
        check_name(name)?;
        Ok(format!("{}/stop/{name}", self.prefix))
    }
}

fn check_name(name: &str) -> Result<()> {
    if name.is_empty()
        || name.len() > 255
        || name.contains('/')
        || name.chars().any(|c| c.is_control())
    {
        return Err(Error::invalid(format!(
            "invalid lock name {name:?}: use a non-empty name of at most 255 bytes without \
             '/' or control characters"
        )));
    }
    Ok(())
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url)
    }
}

// ---------------------------------------------------------------------------
// The holder record

/// Who holds a lock: the value of the lock key, as `key=value` lines.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holder {
    /// The host name (or the host ID given to [`Lock::host`]).
    pub host: String,
    /// The host's boot ID (`/proc/sys/kernel/random/boot_id`), empty if
    /// unknown.
    pub boot_id: String,
    /// The PID of the protected process (the supervised command under
    /// `pidguard run`); 0 while [`Holder::starting`].
    pub pid: u32,
    /// The lock is held but the protected process is not started yet
    /// (see [`Lock::starting`]): `pid` is 0 until [`Guard::set_pid`].
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
    fn local(host: Option<&str>, pid: Option<Pid>) -> Holder {
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
            start_time: pid.and_then(crate::sys::proc::start_time),
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
fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// `SECONDS.MMM` since the epoch.
fn unix_millis(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    format!("{}.{:03}", d.as_secs(), d.subsec_millis())
}

/// A lock's current holder, as [`Lock::status`] reads it.
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
    fn from_kv(key: &str, kv: &KeyValue) -> Holding {
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

// ---------------------------------------------------------------------------
// Connections: one endpoint at a time, the next one on failure

struct Conn {
    backend: Backend,
    next: usize,
    client: Option<Client>,
}

impl Conn {
    fn new(backend: &Backend) -> Conn {
        Conn {
            backend: backend.clone(),
            next: 0,
            client: None,
        }
    }

    fn endpoint(&self) -> &str {
        &self.backend.endpoints[self.next % self.backend.endpoints.len()]
    }

    /// The current connection, or a new one: with several endpoints, all
    /// are tried at once (connect, then a linearizable read, so that a
    /// member without a leader does not win) and the first to answer is
    /// kept, so a dead or black-holed member costs nothing but its
    /// connection attempt. The error names every endpoint's failure.
    async fn client(&mut self) -> std::result::Result<Client, String> {
        if let Some(c) = &self.client {
            return Ok(c.clone());
        }
        let options = self.backend.connect_options();
        let endpoints = self.backend.endpoints.clone();
        if endpoints.len() == 1 {
            let c = Client::connect([endpoints[0].clone()], Some(options))
                .await
                .map_err(|e| format!("{}: {}", endpoints[0], err_text(&e)))?;
            self.client = Some(c.clone());
            return Ok(c);
        }
        let probe = format!("{}/lock/", self.backend.prefix);
        let mut set = tokio::task::JoinSet::new();
        for (i, endpoint) in endpoints.iter().enumerate() {
            let (endpoint, options, probe) = (endpoint.clone(), options.clone(), probe.clone());
            set.spawn(async move {
                let attempt = async {
                    let mut c = Client::connect([endpoint], Some(options))
                        .await
                        .map_err(|e| err_text(&e))?;
                    let count = Some(etcd_client::GetOptions::new().with_count_only());
                    c.get(probe, count).await.map_err(|e| err_text(&e))?;
                    Ok::<_, String>(c)
                };
                let r = tokio::time::timeout(OP_TIMEOUT, attempt)
                    .await
                    .unwrap_or_else(|_| Err(format!("no answer within {OP_TIMEOUT:?}")));
                (i, r)
            });
        }
        let mut errors = Vec::new();
        while let Some(joined) = set.join_next().await {
            let Ok((i, r)) = joined else { continue };
            match r {
                Ok(c) => {
                    self.next = i;
                    self.client = Some(c.clone());
                    return Ok(c);
                }
                Err(e) => errors.push(format!("{}: {e}", endpoints[i])),
            }
        }
        Err(errors.join("; "))
    }

    /// Forgets the current connection and moves on to the next endpoint.
    fn failed(&mut self) {
        self.client = None;
        self.next = self.next.wrapping_add(1);
    }

    /// One request, tried on each endpoint in turn (each within
    /// `OP_TIMEOUT`); the last error if all fail.
    async fn call<T, F, Fut>(&mut self, mut f: F) -> std::result::Result<T, String>
    where
        F: FnMut(Client) -> Fut,
        Fut: Future<Output = std::result::Result<T, etcd_client::Error>>,
    {
        let mut last = String::new();
        for _ in 0..self.backend.endpoints.len() {
            // No endpoint answers: every one was just tried.
            let c = self.client().await?;
            let endpoint = self.endpoint().to_string();
            let result = match tokio::time::timeout(OP_TIMEOUT, f(c)).await {
                Ok(r) => r.map_err(|e| err_text(&e)),
                Err(_) => Err(format!("no answer within {OP_TIMEOUT:?}")),
            };
            match result {
                Ok(v) => return Ok(v),
                Err(e) => {
                    last = format!("{endpoint}: {e}");
                    self.failed();
                }
            }
        }
        Err(last)
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::new(ErrorKind::Io, format!("cannot start the etcd client: {e}")))
}

fn first_kv(resp: &GetResponse) -> Option<&KeyValue> {
    resp.kvs().first()
}

fn revision_of(header: Option<&etcd_client::ResponseHeader>) -> i64 {
    header.map(|h| h.revision()).unwrap_or(0)
}

// ---------------------------------------------------------------------------
// The builder

/// A cluster-wide lock on `PREFIX/lock/NAME`: the etcd counterpart of
/// [`Pidfile`](crate::Pidfile).
#[derive(Clone, Debug)]
pub struct Lock {
    backend: Backend,
    name: String,
    ttl: Duration,
    host: Option<String>,
    pid: Option<Pid>,
    starting: bool,
    stop_within: Duration,
}

/// What [`Lock::request_stop`] found and did.
#[non_exhaustive]
#[derive(Clone, Debug)]
pub enum StopOutcome {
    /// Nobody held the lock.
    NotRunning,
    /// The holder released the lock (or its lease expired).
    Stopped(Holding),
    /// The holder still had the lock when the timeout ran out.
    StillRunning(Holding),
}

impl Lock {
    /// A lock named `name` on `backend`, with the default TTL (10 s).
    pub fn new(backend: Backend, name: impl Into<String>) -> Lock {
        Lock {
            backend,
            name: name.into(),
            ttl: DEFAULT_TTL,
            host: None,
            pid: None,
            starting: false,
            stop_within: Duration::ZERO,
        }
    }

    /// The lease TTL, in whole seconds (rounded up; at least 1 s). A holder
    /// that cannot renew its lease counts itself as no longer holding
    /// after about this long; a crashed holder's lock is free after it.
    pub fn ttl(&mut self, ttl: Duration) -> &mut Lock {
        self.ttl = ttl;
        self
    }

    /// The host name to record (default: the system's host name).
    pub fn host(&mut self, host: impl Into<String>) -> &mut Lock {
        self.host = Some(host.into());
        self
    }

    /// The PID to record as the protected process (default: this process).
    pub fn pid(&mut self, pid: Pid) -> &mut Lock {
        self.pid = Some(pid);
        self.starting = false;
        self
    }

    /// How long the protected work needs to stop (default 0): the guard
    /// reports [`Event::Lost`] (and [`Guard::is_held`] turns false) this
    /// long before the earliest moment etcd may expire the lease and let
    /// another host in ([`Guard::deadline`]), so that the work can be
    /// stopped, and confirmed gone, before then. At most
    /// [`max_stop_within`] of the TTL; [`Lock::acquire`] refuses more.
    pub fn stop_within(&mut self, d: Duration) -> &mut Lock {
        self.stop_within = d;
        self
    }

    /// The protected process is started once the lock is held: the
    /// holder record says `starting` (no PID) until [`Guard::set_pid`]
    /// names it, so that `status` never shows the lock holder's own PID
    /// as the protected process's.
    pub fn starting(&mut self) -> &mut Lock {
        self.starting = true;
        self.pid = None;
        self
    }

    /// The lock key, `PREFIX/lock/NAME`.
    pub fn key(&self) -> Result<String> {
        self.backend.key(&self.name)
    }

    fn ttl_secs(&self) -> i64 {
        let ms = self.ttl.as_millis().max(1);
        (ms.div_ceil(1000)).min(i64::MAX as u128) as i64
    }

    /// Takes the lock now, or fails with [`ErrorKind::AlreadyRunning`].
    pub fn acquire(&self) -> Result<Guard> {
        self.acquire_until(None)
    }

    /// Takes the lock, waiting up to `timeout` for the holder to release
    /// it (watching the key, not polling). etcd errors while waiting are
    /// retried until the timeout.
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<Guard> {
        // A timeout too large to add is "forever".
        self.acquire_until(Instant::now().checked_add(timeout))
    }

    /// Takes the lock, waiting as long as it takes.
    pub fn acquire_wait(&self) -> Result<Guard> {
        self.acquire_timeout(Duration::from_secs(100 * 365 * 24 * 3600))
    }

    fn acquire_until(&self, deadline: Option<Instant>) -> Result<Guard> {
        let key = self.key()?;
        let ttl = Duration::from_secs(self.ttl_secs() as u64);
        if self.stop_within > max_stop_within(ttl) {
            return Err(Error::invalid(format!(
                "the work needs {:.1} s to stop, but with a lease TTL of {} s it can be told to \
                 stop at most {:.1} s before another host may take {key} (half the TTL, less \
                 a margin of {:.1} s); give a TTL of at least {} s, or stop faster",
                self.stop_within.as_secs_f64(),
                ttl.as_secs(),
                max_stop_within(ttl).as_secs_f64(),
                margin(ttl).as_secs_f64(),
                min_ttl_for(self.stop_within).as_secs(),
            )));
        }
        let lock = self.clone();
        let shared = Arc::new(Shared::default());
        let (tx, rx) = std_mpsc::channel();
        let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
        let shared2 = shared.clone();
        let thread = std::thread::Builder::new()
            .name("pidguard-etcd".into())
            .spawn(move || {
                let rt = match runtime() {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                };
                rt.block_on(async move {
                    let mut conn = Conn::new(&lock.backend);
                    match acquire_by(&lock, &key, &mut conn, deadline).await {
                        Ok(held) => {
                            let info = (held.fence, held.lease, held.holder.clone());
                            shared2.set_valid_until(&held);
                            let _ = tx.send(Ok(info));
                            hold(held, conn, shared2, cmd_rx).await;
                        }
                        Err(e) => {
                            let _ = tx.send(Err(e));
                        }
                    }
                });
            })
            .map_err(|e| Error::new(ErrorKind::Io, format!("cannot start a thread: {e}")))?;
        match rx.recv() {
            Ok(Ok((fence, lease, holder))) => Ok(Guard {
                key: self.key()?,
                fence,
                lease,
                holder,
                shared,
                cmds: cmd_tx,
                thread: Some(thread),
            }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => {
                let _ = thread.join();
                Err(Error::new(
                    ErrorKind::Io,
                    format!(
                        "the etcd client thread for {key} ended before taking the lock (it \
                         panicked; see the message above); try again, and report it as a \
                         pidguard bug if it happens again",
                        key = self.key()?
                    ),
                ))
            }
        }
    }

    /// The current holder, or `None` when nobody holds the lock.
    pub fn status(&self) -> Result<Option<Holding>> {
        let key = self.key()?;
        let rt = runtime()?;
        rt.block_on(async {
            let mut conn = Conn::new(&self.backend);
            let k = key.clone();
            let resp = conn
                .call(|mut c| {
                    let k = k.clone();
                    async move { c.get(k, None).await }
                })
                .await
                .map_err(|e| Error::unreachable(&self.backend, &format!("read {key}"), &e))?;
            let Some(kv) = first_kv(&resp) else {
                return Ok(None);
            };
            let mut holding = Holding::from_kv(&key, kv);
            if holding.lease != 0 {
                let id = holding.lease;
                if let Ok(t) = conn
                    .call(|mut c| async move { c.lease_time_to_live(id, None).await })
                    .await
                {
                    if t.ttl() >= 0 {
                        holding.lease_ttl = Some(Duration::from_secs(t.ttl() as u64));
                    }
                }
            }
            Ok(Some(holding))
        })
    }

    /// Asks the holder to stop: writes `PREFIX/stop/NAME` (naming the
    /// holder's fence and the `schedule` its supervisor should follow), then
    /// waits up to `timeout` (forever with `None`) for the lock key to be
    /// released. The request key lives on a lease of its own, removed at
    /// the end.
    pub fn request_stop(
        &self,
        schedule: Option<&Schedule>,
        timeout: Option<Duration>,
    ) -> Result<StopOutcome> {
        let key = self.key()?;
        let stop_key = self.backend.stop_key(&self.name)?;
        let from = Holder::local(self.host.as_deref(), None).host;
        let rt = runtime()?;
        let backend = &self.backend;
        rt.block_on(async {
            let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
            let mut conn = Conn::new(backend);
            let k = key.clone();
            let resp = conn
                .call(|mut c| {
                    let k = k.clone();
                    async move { c.get(k, None).await }
                })
                .await
                .map_err(|e| Error::unreachable(backend, &format!("read {key}"), &e))?;
            let Some(kv) = first_kv(&resp) else {
                return Ok(StopOutcome::NotRunning);
            };
            let holding = Holding::from_kv(&key, kv);
            let rev = revision_of(resp.header());
            let lease = conn
                .call(|mut c| async move { c.lease_grant(10, None).await })
                .await
                .map_err(|e| Error::unreachable(backend, "grant a lease", &e))?
                .id();
            let mut value = format!("fence={}\nfrom={}\n", holding.fence, clean(&from));
            if let Some(s) = schedule {
                value.push_str(&format!("schedule={s}\n"));
            }
            let (sk, v) = (stop_key.clone(), value.clone());
            let put = conn
                .call(|mut c| {
                    let (sk, v) = (sk.clone(), v.clone());
                    async move {
                        c.put(sk, v, Some(PutOptions::new().with_lease(lease)))
                            .await
                    }
                })
                .await
                .map_err(|e| Error::unreachable(backend, &format!("write {stop_key}"), &e))?;
            let put_rev = revision_of(put.header());
            // Keep the request's lease alive while waiting.
            let keeper = tokio::spawn(keep_request_alive(backend.clone(), lease));
            let released = wait_released(backend, &key, holding.fence, rev + 1, deadline).await;
            keeper.abort();
            let sk = stop_key.clone();
            let _ = conn
                .call(|mut c| {
                    let sk = sk.clone();
                    async move {
                        let txn = Txn::new()
                            .when([Compare::mod_revision(sk.clone(), CompareOp::Equal, put_rev)])
                            .and_then([TxnOp::delete(sk, None)]);
                        c.txn(txn).await?;
                        c.lease_revoke(lease).await
                    }
                })
                .await;
            Ok(if released {
                StopOutcome::Stopped(holding)
            } else {
                StopOutcome::StillRunning(holding)
            })
        })
    }
}

async fn keep_request_alive(backend: Backend, lease: i64) {
    let mut conn = Conn::new(&backend);
    loop {
        let _ = conn
            .call(|mut c| async move { c.lease_keep_alive(lease).await.map(|_| ()) })
            .await;
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
}

/// Waits until the key holding `fence` is gone (deleted, or replaced by a
/// new holder's). `true` if it went before the deadline.
async fn wait_released(
    backend: &Backend,
    key: &str,
    fence: u64,
    mut from: i64,
    deadline: Option<Instant>,
) -> bool {
    let mut conn = Conn::new(backend);
    loop {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return false;
        }
        let remaining = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        let watched = async {
            // Current state first: the key may be gone already.
            let k = key.to_string();
            let resp = conn
                .call(|mut c| {
                    let k = k.clone();
                    async move { c.get(k, None).await }
                })
                .await?;
            match first_kv(&resp) {
                Some(kv) if kv.create_revision() as u64 == fence => {}
                _ => return Ok(true),
            }
            from = from.max(revision_of(resp.header()) + 1);
            let mut client = conn.client().await?;
            let opts = WatchOptions::new().with_start_revision(from);
            let mut stream = client
                .watch(key.to_string(), Some(opts))
                .await
                .map_err(|e| err_text(&e))?;
            loop {
                let resp = next_watch_response(&mut stream).await?;
                for ev in resp.events() {
                    if let Some(kv) = ev.kv() {
                        from = kv.mod_revision() + 1;
                        let gone = ev.event_type() == EventType::Delete
                            || kv.create_revision() as u64 != fence;
                        if gone {
                            return Ok(true);
                        }
                    }
                }
            }
        };
        let result: std::result::Result<bool, String> = match remaining {
            Some(r) => tokio::time::timeout(r, watched).await.unwrap_or(Ok(false)),
            None => watched.await,
        };
        match result {
            Ok(true) => return true,
            Ok(false) => return false,
            Err(_) => {
                conn.failed();
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Acquiring

struct Held {
    key: String,
    stop_key: String,
    fence: u64,
    lease: i64,
    ttl: Duration,
    last_ok: Instant,
    holder: Holder,
    backend: Backend,
    /// [`Lock::stop_within`].
    lead: Duration,
}

/// How much earlier than one TTL after the last renewal a holder's work
/// must be gone: TTL/10, at most 1 s (for clock rates, and etcd's answer
/// to the renewal arriving after it was sent).
pub fn margin(ttl: Duration) -> Duration {
    (ttl / 10).min(Duration::from_secs(1))
}

/// The longest [`Lock::stop_within`] a lease of `ttl` (whole seconds)
/// allows: half the TTL less the [`margin`], so that a lock is reported
/// lost no sooner than half a TTL after its last confirmed renewal (one
/// renewal, sent every TTL/3, may fail or be slow without the work being
/// stopped).
pub fn max_stop_within(ttl: Duration) -> Duration {
    (ttl / 2).saturating_sub(margin(ttl))
}

/// The shortest TTL (whole seconds) whose [`max_stop_within`] is at least
/// `stop`.
pub fn min_ttl_for(stop: Duration) -> Duration {
    let mut secs = 1u64;
    while max_stop_within(Duration::from_secs(secs)) < stop && secs < u64::MAX / 4 {
        secs += 1;
    }
    Duration::from_secs(secs)
}

impl Held {
    /// The latest the protected work may run: one TTL after the last
    /// confirmed renewal was sent, less the margin.
    fn deadline(&self) -> Instant {
        self.last_ok + self.ttl - margin(self.ttl)
    }

    /// How often the lease is renewed: a third of the time it counts as
    /// held after a renewal (TTL/3 less a little without
    /// [`Lock::stop_within`]), so that two more renewals can be tried, each
    /// given that long, before the lock counts as lost.
    fn renew_interval(&self) -> Duration {
        self.valid_until().saturating_duration_since(self.last_ok) / 3
    }

    /// Until when the lock counts as held: the deadline less the time the
    /// work needs to stop.
    fn valid_until(&self) -> Instant {
        self.deadline()
            .checked_sub(self.lead)
            .unwrap_or_else(|| self.deadline())
    }
}

enum Attempt {
    Held(Box<Held>),
    Busy(Holding, i64),
    /// Less than half the lease's TTL was left (a slow link) once the
    /// lease was granted (then no key was created on it, so a slow host
    /// does not keep others waiting in vain) or once the key was created;
    /// the lease was revoked. (time left, TTL, which step)
    TooSlow(Duration, Duration, &'static str),
}

async fn try_once(
    lock: &Lock,
    key: &str,
    conn: &mut Conn,
    seen: &mut Seen,
) -> std::result::Result<Attempt, String> {
    let ttl = lock.ttl_secs();
    let sent = Instant::now();
    let grant = conn
        .call(|mut c| async move { c.lease_grant(ttl, None).await })
        .await?;
    let lease = grant.id();
    // Given back if the deadline cuts this attempt short.
    seen.lease = Some(lease);
    let granted = Duration::from_secs(grant.ttl().max(1) as u64);
    let left = (sent + granted - margin(granted)).saturating_duration_since(Instant::now());
    if left < granted / 2 {
        let _ = conn
            .call(|mut c| async move { c.lease_revoke(lease).await })
            .await;
        return Ok(Attempt::TooSlow(left, granted, "the lease was granted"));
    }
    let pid = (!lock.starting).then(|| lock.pid.unwrap_or_else(Pid::current));
    let holder = Holder::local(lock.host.as_deref(), pid);
    let value = holder.encode();
    let k = key.to_string();
    let txn = conn
        .call(|mut c| {
            let (k, value) = (k.clone(), value.clone());
            async move {
                let txn = Txn::new()
                    .when([Compare::create_revision(k.clone(), CompareOp::Equal, 0)])
                    .and_then([TxnOp::put(
                        k.clone(),
                        value,
                        Some(PutOptions::new().with_lease(lease)),
                    )])
                    .or_else([TxnOp::get(k, None)]);
                c.txn(txn).await
            }
        })
        .await;
    let txn = match txn {
        Ok(t) => t,
        Err(e) => {
            let _ = conn
                .call(|mut c| async move { c.lease_revoke(lease).await })
                .await;
            return Err(e);
        }
    };
    let revision = revision_of(txn.header());
    if txn.succeeded() {
        let held = Held {
            key: key.to_string(),
            stop_key: lock
                .backend
                .stop_key(&lock.name)
                .map_err(|e| e.to_string())?,
            fence: revision as u64,
            lease,
            ttl: granted,
            last_ok: sent,
            holder,
            backend: lock.backend.clone(),
            lead: lock.stop_within,
        };
        // Validity counts from before the lease grant.
        let left = held.deadline().saturating_duration_since(Instant::now());
        if left >= granted / 2 {
            seen.lease = None;
            return Ok(Attempt::Held(Box::new(held)));
        }
        let _ = conn
            .call(|mut c| async move { c.lease_revoke(lease).await })
            .await;
        return Ok(Attempt::TooSlow(left, granted, "the key was created"));
    }
    let _ = conn
        .call(|mut c| async move { c.lease_revoke(lease).await })
        .await;
    let holding = txn.op_responses().into_iter().find_map(|r| match r {
        TxnOpResponse::Get(g) => first_kv(&g).map(|kv| Holding::from_kv(key, kv)),
        _ => None,
    });
    match holding {
        Some(h) => Ok(Attempt::Busy(h, revision)),
        // Released between the compare and the get: try again at once.
        None => Err("the key changed during the attempt".into()),
    }
}

fn busy_error(lock: &Lock, h: Holding) -> Error {
    let mut e = Error::new(
        ErrorKind::AlreadyRunning,
        format!(
            "{} on {} is held by {h}; stop it with `pidguard stop --backend {} --name {}` or \
             wait for it (--wait)",
            h.key,
            lock.backend.endpoints.join(","),
            lock.backend.url,
            lock.name
        ),
    );
    e.holding = Some(Box::new(h));
    e
}

/// What the attempts to acquire saw last, for the error when the deadline
/// cuts them short.
#[derive(Default)]
struct Seen {
    busy: Option<Holding>,
    /// The last attempt came back too late (the message).
    slow: Option<String>,
    error: Option<String>,
    /// A lease granted by an attempt still under way.
    lease: Option<i64>,
}

/// [`acquire_loop`] within the deadline, which is a deadline: a request
/// under way when it passes is abandoned (a lease it was granted is given
/// back, within 0.3 s at most).
async fn acquire_by(
    lock: &Lock,
    key: &str,
    conn: &mut Conn,
    deadline: Option<Instant>,
) -> Result<Held> {
    let mut seen = Seen::default();
    let Some(d) = deadline else {
        return acquire_loop(lock, key, conn, deadline, &mut seen).await;
    };
    let at = tokio::time::Instant::from_std(d);
    match tokio::time::timeout_at(at, acquire_loop(lock, key, conn, deadline, &mut seen)).await {
        Ok(r) => r,
        Err(_) => {
            if let Some(lease) = seen.lease {
                let revoke = conn.call(|mut c| async move { c.lease_revoke(lease).await });
                let _ = tokio::time::timeout(Duration::from_millis(300), revoke).await;
            }
            Err(match (seen.busy, seen.error) {
                (Some(h), None) => busy_error(lock, h),
                (None, _) if seen.slow.is_some() => {
                    Error::new(ErrorKind::Io, seen.slow.unwrap_or_default())
                }
                (_, Some(e)) => Error::unreachable(
                    &lock.backend,
                    &format!("lock {key} within the time given (--wait)"),
                    &e,
                ),
                (None, None) => Error::unreachable(
                    &lock.backend,
                    &format!("lock {key} within the time given (--wait)"),
                    "no answer from etcd in time",
                ),
            })
        }
    }
}

async fn acquire_loop(
    lock: &Lock,
    key: &str,
    conn: &mut Conn,
    deadline: Option<Instant>,
    seen: &mut Seen,
) -> Result<Held> {
    let mut retried = false;
    let mut slow_retried = false;
    loop {
        let expired = || deadline.is_none_or(|d| Instant::now() >= d);
        let attempt = try_once(lock, key, conn, seen).await;
        // Its lease is held or given back by now.
        seen.lease = None;
        match attempt {
            Ok(Attempt::Held(h)) => return Ok(*h),
            Ok(Attempt::TooSlow(left, ttl, step)) => {
                // Not handed out: a lock about to expire (see try_once).
                // One retry even without a deadline; more only while waiting.
                let why = format!(
                    "etcd at {} answered too slowly to take {key}: only {:.1} s of the {} s \
                     lease were left once {step}; check the etcd members' load and network \
                     latency, or give a longer --ttl",
                    lock.backend.endpoints.join(","),
                    left.as_secs_f64(),
                    ttl.as_secs()
                );
                if slow_retried && expired() {
                    return Err(Error::new(ErrorKind::Io, why));
                }
                seen.slow = Some(why);
                slow_retried = true;
            }
            Ok(Attempt::Busy(h, rev)) => {
                seen.busy = Some(h.clone());
                seen.error = None;
                if expired() {
                    return Err(busy_error(lock, h));
                }
                let d = deadline.expect("not expired");
                if !wait_released(&lock.backend, key, h.fence, rev + 1, Some(d)).await && expired()
                {
                    return Err(busy_error(lock, h));
                }
            }
            Err(e) => {
                seen.error = Some(e.clone());
                // A race with a release is retried once even without a
                // deadline; etcd errors only while waiting.
                if e.starts_with("the key changed") && !retried {
                    retried = true;
                    continue;
                }
                if expired() {
                    return Err(Error::unreachable(
                        &lock.backend,
                        &format!("lock {key}"),
                        &e,
                    ));
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Holding

/// Something that happened to a held lock; see [`Guard::wait_event`].
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The lock is lost: the lease could not be renewed for one TTL (less
    /// the margin), etcd says the lease is gone, or someone deleted the key.
    /// The reason says which. Stop the protected work now.
    Lost(String),
    /// `pidguard stop` (or [`Lock::request_stop`]) asked the holder to stop.
    StopRequested {
        /// The requesting host.
        from: String,
        /// The schedule the requester asked for, if any.
        schedule: Option<Schedule>,
    },
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    cv: Condvar,
}

#[derive(Default)]
struct State {
    lost: Option<String>,
    lost_seen: bool,
    stop: Option<Event>,
    stop_seen: bool,
    valid_until: Option<Instant>,
    deadline: Option<Instant>,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn set_lost(&self, why: String) {
        let mut s = self.lock();
        if s.lost.is_none() {
            s.lost = Some(why);
        }
        self.cv.notify_all();
    }

    fn set_stop(&self, ev: Event) {
        let mut s = self.lock();
        if s.stop.is_none() {
            s.stop = Some(ev);
        }
        self.cv.notify_all();
    }

    fn set_valid_until(&self, held: &Held) {
        let mut s = self.lock();
        s.valid_until = Some(held.valid_until());
        s.deadline = Some(held.deadline());
    }

    fn deadline(&self) -> Option<Instant> {
        self.lock().deadline
    }

    fn take_event(s: &mut State) -> Option<Event> {
        if let (Some(why), false) = (&s.lost, s.lost_seen) {
            s.lost_seen = true;
            return Some(Event::Lost(why.clone()));
        }
        if let (Some(ev), false) = (&s.stop, s.stop_seen) {
            s.stop_seen = true;
            return Some(ev.clone());
        }
        None
    }

    fn wait_event(&self, timeout: Option<Duration>) -> Option<Event> {
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let mut s = self.lock();
        loop {
            if let Some(ev) = Shared::take_event(&mut s) {
                return Some(ev);
            }
            s = match deadline {
                None => self.cv.wait(s).unwrap_or_else(|p| p.into_inner()),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return None;
                    }
                    self.cv
                        .wait_timeout(s, d - now)
                        .unwrap_or_else(|p| p.into_inner())
                        .0
                }
            };
        }
    }
}

enum Cmd {
    SetPid(Pid, std_mpsc::Sender<Result<()>>),
    Release(std_mpsc::Sender<Result<()>>),
}

/// A held cluster-wide lock: the lease is renewed in the background until
/// [`Guard::release`] (or drop). The etcd counterpart of [`crate::Guard`].
pub struct Guard {
    key: String,
    fence: u64,
    lease: i64,
    holder: Holder,
    shared: Arc<Shared>,
    cmds: mpsc::UnboundedSender<Cmd>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl fmt::Debug for Guard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Guard")
            .field("key", &self.key)
            .field("fence", &self.fence)
            .field("lease", &self.lease)
            .finish_non_exhaustive()
    }
}

/// A handle to wait for a [`Guard`]'s events from another thread.
#[derive(Clone)]
pub struct Monitor(Arc<Shared>);

impl Monitor {
    /// See [`Guard::wait_event`].
    pub fn wait_event(&self, timeout: Option<Duration>) -> Option<Event> {
        self.0.wait_event(timeout)
    }

    /// See [`Guard::deadline`].
    pub fn deadline(&self) -> Option<Instant> {
        self.0.deadline()
    }
}

impl Guard {
    /// The fencing token: the lock key's create revision. Strictly greater
    /// than every earlier holder's.
    pub fn fence(&self) -> u64 {
        self.fence
    }

    /// The lock key, `PREFIX/lock/NAME`.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The lease ID.
    pub fn lease(&self) -> i64 {
        self.lease
    }

    /// The holder record written at acquisition.
    pub fn holder(&self) -> &Holder {
        &self.holder
    }

    /// Whether the lock still counts as held: no loss was seen and the last
    /// confirmed renewal is recent enough (checked against the clock here,
    /// so a stalled background thread cannot make it lie).
    pub fn is_held(&self) -> bool {
        let s = self.shared.lock();
        s.lost.is_none() && s.valid_until.is_some_and(|t| Instant::now() < t)
    }

    /// Waits up to `timeout` (forever with `None`) for the next event:
    /// [`Event::Lost`] or [`Event::StopRequested`]. Each event is returned
    /// once.
    pub fn wait_event(&self, timeout: Option<Duration>) -> Option<Event> {
        self.shared.wait_event(timeout)
    }

    /// The latest moment the protected work may still run: one TTL after
    /// the last renewal etcd confirmed (counted from when it was sent),
    /// less the [`margin`]; etcd may expire the lease, and another host
    /// take the lock, soon after. It moves on with every renewal. A
    /// supervisor can hand it to a process of its own (a watchdog) that
    /// kills the work then, even if the supervisor itself is stalled.
    pub fn deadline(&self) -> Option<Instant> {
        self.shared.deadline()
    }

    /// A handle for waiting on events from another thread.
    pub fn monitor(&self) -> Monitor {
        Monitor(self.shared.clone())
    }

    /// Records `pid` as the protected process in the holder value (as
    /// [`crate::Guard::set_pid`] does for a PID file).
    pub fn set_pid(&mut self, pid: Pid) -> Result<()> {
        let (tx, rx) = std_mpsc::channel();
        let stopped = || {
            Error::new(
                ErrorKind::Io,
                format!(
                    "cannot record PID {pid} in {}: the lock's background thread has stopped \
                     (the lock was released, or that thread panicked), so the lock is no \
                     longer held; stop the protected work and acquire the lock again",
                    self.key
                ),
            )
        };
        if self.cmds.send(Cmd::SetPid(pid, tx)).is_err() {
            return Err(stopped());
        }
        let r = rx.recv().unwrap_or_else(|_| Err(stopped()));
        if r.is_ok() {
            self.holder.pid = pid.get() as u32;
            self.holder.starting = false;
            self.holder.start_time = crate::sys::proc::start_time(pid);
        }
        r
    }

    /// Releases the lock: deletes the key (only if it is still this
    /// holder's) and revokes the lease. If etcd cannot be reached, the
    /// lease expires by itself within its TTL.
    pub fn release(mut self) -> Result<()> {
        self.release_inner()
    }

    fn release_inner(&mut self) -> Result<()> {
        let Some(thread) = self.thread.take() else {
            return Ok(());
        };
        let (tx, rx) = std_mpsc::channel();
        let r = if self.cmds.send(Cmd::Release(tx)).is_ok() {
            rx.recv().unwrap_or(Ok(()))
        } else {
            Ok(())
        };
        let _ = thread.join();
        r
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.release_inner();
    }
}

/// The holder's background task: renews the lease, watches the key and
/// the stop key, and serves the guard's commands.
async fn hold(
    mut held: Held,
    mut conn: Conn,
    shared: Arc<Shared>,
    mut cmds: mpsc::UnboundedReceiver<Cmd>,
) {
    let watcher = tokio::spawn(watch_held(
        held.backend.clone(),
        held.key.clone(),
        held.stop_key.clone(),
        held.fence,
        shared.clone(),
    ));
    let mut keeper: Option<(etcd_client::LeaseKeeper, etcd_client::LeaseKeepAliveStream)> = None;
    let mut failed_last = false;
    // The endpoint and error of the last failed renewal.
    let mut last_error: Option<String> = None;
    loop {
        let now = Instant::now();
        let lost = shared.lock().lost.is_some();
        if !lost && now >= held.valid_until() {
            let why = last_error
                .as_deref()
                .map(|e| format!("last renewal failed at {e}"))
                .unwrap_or_else(|| "no renewal could be attempted in time".to_string());
            shared.set_lost(format!(
                "no lease renewal confirmed by etcd for {:.1} s (TTL {} s; {why}); another \
                 host may take the lock",
                now.duration_since(held.last_ok).as_secs_f64(),
                held.ttl.as_secs(),
            ));
        }
        let lost = shared.lock().lost.is_some();
        let wake = if lost {
            now + Duration::from_secs(3600)
        } else if failed_last {
            (now + Duration::from_millis(100)).min(held.valid_until())
        } else {
            (held.last_ok + held.renew_interval()).min(held.valid_until())
        };
        let cmd = match tokio::time::timeout(wake.saturating_duration_since(now), cmds.recv()).await
        {
            Ok(c) => c,
            Err(_) => {
                if !lost {
                    match renew(&mut held, &mut conn, &mut keeper, &shared).await {
                        Ok(()) => failed_last = false,
                        Err(e) => {
                            failed_last = true;
                            last_error = Some(e);
                        }
                    }
                }
                continue;
            }
        };
        match cmd {
            Some(Cmd::SetPid(pid, reply)) => {
                let r = update_pid(&mut held, &mut conn, pid).await;
                let _ = reply.send(r);
            }
            Some(Cmd::Release(reply)) => {
                watcher.abort();
                let r = release(&held, &mut conn, lost).await;
                let _ = reply.send(r);
                return;
            }
            None => {
                watcher.abort();
                let _ = release(&held, &mut conn, lost).await;
                return;
            }
        }
    }
}

/// One renewal; the failing endpoint and its error unless etcd confirmed it.
async fn renew(
    held: &mut Held,
    conn: &mut Conn,
    keeper: &mut Option<(etcd_client::LeaseKeeper, etcd_client::LeaseKeepAliveStream)>,
    shared: &Shared,
) -> std::result::Result<(), String> {
    let sent = Instant::now();
    let endpoint = conn.endpoint().to_string();
    let budget = held
        .renew_interval()
        .max(Duration::from_millis(200))
        .min(held.valid_until().saturating_duration_since(sent));
    let id = held.lease;
    let attempt = async {
        match keeper {
            None => {
                let mut c = conn.client().await?;
                let pair = c.lease_keep_alive(id).await.map_err(|e| err_text(&e))?;
                *keeper = Some(pair);
                Ok(None)
            }
            Some((k, s)) => {
                k.keep_alive().await.map_err(|e| err_text(&e))?;
                match s.message().await.map_err(|e| err_text(&e))? {
                    Some(r) => Ok(Some(r.ttl())),
                    None => Err("the keep-alive stream ended".to_string()),
                }
            }
        }
    };
    let result = tokio::time::timeout(budget, attempt)
        .await
        .unwrap_or_else(|_| Err("no answer in time".into()));
    match result {
        Ok(Some(ttl)) if ttl <= 0 => {
            shared.set_lost(format!(
                "etcd says the lease {id:x} has expired or was revoked"
            ));
            Err(format!("{endpoint}: the lease {id:x} has expired"))
        }
        Ok(ttl) => {
            if let Some(t) = ttl {
                held.ttl = Duration::from_secs(t as u64);
            }
            held.last_ok = sent;
            shared.set_valid_until(held);
            Ok(())
        }
        Err(e) => {
            if e.contains("lease not found") {
                shared.set_lost(format!(
                    "etcd says the lease {id:x} has expired or was revoked"
                ));
            }
            *keeper = None;
            conn.failed();
            Err(format!("{endpoint}: {e}"))
        }
    }
}

async fn update_pid(held: &mut Held, conn: &mut Conn, pid: Pid) -> Result<()> {
    let mut holder = held.holder.clone();
    holder.pid = pid.get() as u32;
    holder.starting = false;
    holder.start_time = crate::sys::proc::start_time(pid);
    let value = holder.encode();
    let (key, fence, lease) = (held.key.clone(), held.fence as i64, held.lease);
    // This runs in the holder's loop, between renewals: never past the
    // time the lock counts as held, so a slow etcd cannot delay the renewal
    // or the loss report beyond that.
    let budget = held.valid_until().saturating_duration_since(Instant::now());
    let attempt = conn.call(|mut c| {
        let (key, value) = (key.clone(), value.clone());
        async move {
            let txn = Txn::new()
                .when([Compare::create_revision(
                    key.clone(),
                    CompareOp::Equal,
                    fence,
                )])
                .and_then([TxnOp::put(
                    key,
                    value,
                    Some(PutOptions::new().with_lease(lease)),
                )]);
            c.txn(txn).await
        }
    });
    let txn = tokio::time::timeout(budget, attempt)
        .await
        .unwrap_or_else(|_| {
            Err(format!(
                "no answer within {:.1} s, the time left before the lease counts as expired",
                budget.as_secs_f64()
            ))
        })
        .map_err(|e| Error::unreachable(&held.backend, &format!("update {}", held.key), &e))?;
    if !txn.succeeded() {
        return Err(Error::new(
            ErrorKind::Io,
            format!("{} is no longer held by this process", held.key),
        ));
    }
    held.holder = holder;
    Ok(())
}

/// How long a release may take before the lease is left to expire: short
/// when the lock is already lost (etcd is likely unreachable).
fn release_budget(lost: bool) -> Duration {
    if lost {
        Duration::from_secs(1)
    } else {
        Duration::from_secs(5)
    }
}

async fn release(held: &Held, conn: &mut Conn, lost: bool) -> Result<()> {
    let (key, fence, lease) = (held.key.clone(), held.fence as i64, held.lease);
    let attempt = conn.call(|mut c| {
        let key = key.clone();
        async move {
            let txn = Txn::new()
                .when([Compare::create_revision(
                    key.clone(),
                    CompareOp::Equal,
                    fence,
                )])
                .and_then([TxnOp::delete(key, None)]);
            c.txn(txn).await?;
            c.lease_revoke(lease).await.map(|_| ())
        }
    });
    // Never past the time the lease counts as expired (at least 1 s to
    // try): after that the key goes with the lease anyway.
    let left = held.valid_until().saturating_duration_since(Instant::now());
    let expired = lost || left.is_zero();
    let budget = release_budget(expired).min(left.max(Duration::from_secs(1)));
    let r = tokio::time::timeout(budget, attempt)
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {budget:?}")));
    match r {
        Ok(()) => Ok(()),
        Err(_) if expired => Ok(()),
        Err(e) if e.contains("lease not found") => Ok(()),
        Err(e) => Err(Error::unreachable(
            &held.backend,
            &format!("release {} (its lease expires by itself)", held.key),
            &e,
        )),
    }
}

/// Watches the lock key (lost if deleted or re-created by someone else)
/// and the stop key (a stop request naming this holder's fence).
async fn watch_held(
    backend: Backend,
    key: String,
    stop_key: String,
    fence: u64,
    shared: Arc<Shared>,
) {
    let mut conn = Conn::new(&backend);
    loop {
        let result: std::result::Result<(), String> = async {
            // Current state first, on every (re)start: events missed while
            // not watching (or compacted away) are not replayed.
            let (k, sk) = (key.clone(), stop_key.clone());
            let now = conn
                .call(|mut c| {
                    let txn = Txn::new()
                        .and_then([TxnOp::get(k.clone(), None), TxnOp::get(sk.clone(), None)]);
                    async move { c.txn(txn).await }
                })
                .await?;
            let mut gets = now.op_responses().into_iter().filter_map(|r| match r {
                TxnOpResponse::Get(g) => Some(g),
                _ => None,
            });
            let (lock_kv, stop_kv) = (gets.next(), gets.next());
            match lock_kv.as_ref().and_then(first_kv) {
                None => {
                    shared.set_lost(format!(
                        "the lock key {key} is gone (its lease expired or was revoked, or \
                         someone removed the key)"
                    ));
                    return Ok(());
                }
                Some(kv) if kv.create_revision() as u64 != fence => {
                    shared.set_lost(format!("the lock key {key} now belongs to another holder"));
                    return Ok(());
                }
                Some(_) => {}
            }
            if let Some(kv) = stop_kv.as_ref().and_then(first_kv) {
                if let Some(ev) = parse_stop(&String::from_utf8_lossy(kv.value()), fence) {
                    shared.set_stop(ev);
                }
            }
            let from = revision_of(now.header()) + 1;
            let mut client = conn.client().await?;
            // Two watches of one key each on one stream: nothing but this
            // holder's own keys wakes it (a range would also cover every
            // key sorting between them, such as other jobs' locks).
            let opts = || Some(WatchOptions::new().with_start_revision(from));
            let start = async {
                let mut stream = client.watch(key.clone(), opts()).await?;
                stream.watch(stop_key.clone(), opts()).await?;
                Ok::<_, etcd_client::Error>(stream)
            };
            let mut stream = tokio::time::timeout(WATCH_START_TIMEOUT, start)
                .await
                .map_err(|_| format!("no watch within {WATCH_START_TIMEOUT:?}"))?
                .map_err(|e| err_text(&e))?;
            loop {
                let resp = next_watch_response(&mut stream).await?;
                for ev in resp.events() {
                    let Some(kv) = ev.kv() else { continue };
                    if kv.key() == key.as_bytes() {
                        if ev.event_type() == EventType::Delete {
                            shared.set_lost(format!(
                                "the lock key {key} was deleted (its lease was revoked or \
                                 someone removed the key)"
                            ));
                        } else if kv.create_revision() as u64 != fence {
                            shared.set_lost(format!(
                                "the lock key {key} now belongs to another holder"
                            ));
                        }
                    } else if kv.key() == stop_key.as_bytes() && ev.event_type() == EventType::Put {
                        if let Some(ev) = parse_stop(&String::from_utf8_lossy(kv.value()), fence) {
                            shared.set_stop(ev);
                        }
                    }
                }
            }
        }
        .await;
        match result {
            // The lock is lost: nothing left to watch for.
            Ok(()) => return,
            Err(_) => {
                conn.failed();
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

/// The next response on a watch; an ended or canceled watch is an error
/// (the caller starts a new one, on another endpoint if need be).
async fn next_watch_response(
    stream: &mut etcd_client::WatchStream,
) -> std::result::Result<etcd_client::WatchResponse, String> {
    let Some(resp) = stream.message().await.map_err(|e| err_text(&e))? else {
        return Err("the watch ended".into());
    };
    if resp.canceled() {
        return Err(format!("the watch was canceled: {}", resp.cancel_reason()));
    }
    Ok(resp)
}

/// A stop request's value: `fence=N`, `from=HOST`, optional `schedule=…`.
fn parse_stop(text: &str, fence: u64) -> Option<Event> {
    let mut matches = false;
    let mut from = String::new();
    let mut schedule = None;
    for line in text.lines() {
        match line.split_once('=') {
            Some(("fence", v)) => matches = v.parse::<u64>().ok() == Some(fence),
            Some(("from", v)) => from = clean(v),
            Some(("schedule", v)) => schedule = v.parse().ok(),
            _ => {}
        }
    }
    matches.then_some(Event::StopRequested { from, schedule })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_backend_urls() {
        let b = Backend::parse("etcd://127.0.0.1:2379/test").unwrap();
        assert_eq!(b.endpoints(), ["http://127.0.0.1:2379"]);
        assert_eq!(b.key("job").unwrap(), "/test/lock/job");
        assert_eq!(b.stop_key("job").unwrap(), "/test/stop/job");
        // Another prefix's lock key is never this one's stop key.
        let a = Backend::parse("etcd://127.0.0.1:2379/test/stop").unwrap();
        assert_ne!(a.key("job").unwrap(), b.stop_key("job").unwrap());
        let b = Backend::parse("etcd://a:1,b:2").unwrap();
        assert_eq!(b.prefix(), "/pidguard");
        assert_eq!(b.endpoints().len(), 2);
        for bad in [
            "http://a:1/x",
            "etcd://a/x",
            "etcd://a:0/x",
            "etcd://:1/x",
            "etcd://a:b/x",
        ] {
            let e = Backend::parse(bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidName, "{bad}");
            assert!(e.to_string().contains("etcd://HOST:PORT"), "{e}");
        }
        for bad in ["", "a/b", "a\nb"] {
            assert!(b.key(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn passwords_are_never_shown() {
        let mut b = Backend::parse("etcd://127.0.0.1:2379/x").unwrap();
        b.user("root", "s3cret-pw");
        assert!(!format!("{b:?}").contains("s3cret-pw"), "{b:?}");
        let e = Error::unreachable(&b, "read /x/lock/a", "etcdserver: authentication failed");
        assert!(
            e.to_string()
                .contains("authentication failed for user \"root\""),
            "{e}"
        );
        assert!(!e.to_string().contains("s3cret-pw"), "{e}");
        let missing = b.ca_cert_file("/nonexistent/ca.pem").unwrap_err();
        assert!(
            missing.to_string().contains("/nonexistent/ca.pem"),
            "{missing}"
        );
    }

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

    #[test]
    fn stop_requests_name_the_fence() {
        let ev = parse_stop("fence=7\nfrom=b\nschedule=TERM/1/KILL/1\n", 7).unwrap();
        assert_eq!(
            ev,
            Event::StopRequested {
                from: "b".into(),
                schedule: Some("TERM/1/KILL/1".parse().unwrap())
            }
        );
        assert!(parse_stop("fence=6\nfrom=b\n", 7).is_none());
    }

    #[test]
    fn ttl_rounds_up_to_seconds() {
        let b = Backend::parse("etcd://a:1/x").unwrap();
        let mut l = Lock::new(b, "n");
        l.ttl(Duration::from_millis(1500));
        assert_eq!(l.ttl_secs(), 2);
        l.ttl(Duration::ZERO);
        assert_eq!(l.ttl_secs(), 1);
        assert_eq!(margin(Duration::from_secs(2)), Duration::from_millis(200));
        assert_eq!(margin(Duration::from_secs(60)), Duration::from_secs(1));
    }
}
