//! Holding: the guard, its events, and the background task that renews
//! the lease and watches the lock and stop keys.

use std::fmt;
use std::sync::{mpsc as std_mpsc, Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use etcd_client::{
    Compare, CompareOp, EventType, PutOptions, Txn, TxnOp, TxnOpResponse, WatchOptions,
};
use pidguard::{ErrorKind, Pid, Schedule};
use tokio::sync::mpsc;

use crate::acquire::Held;
use crate::backend::Backend;
use crate::conn::{first_kv, revision_of, Conn};
use crate::error::{err_text, Error, Result};
use crate::holder::{clean, Holder};

/// How long starting a watch may take before the next endpoint is tried.
const WATCH_START_TIMEOUT: Duration = Duration::from_secs(2);

/// Something that happened to a held lock; see [`Guard::wait_event`].
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The lock is lost: the lease could not be renewed for one TTL (less
    /// the margin), etcd says the lease is gone, or someone deleted the key.
    /// The reason says which. Stop the protected work now.
    Lost(String),
    /// `pidguard stop` (or [`Lock::request_stop`](crate::Lock::request_stop)) asked the holder to stop.
    StopRequested {
        /// The requesting host.
        from: String,
        /// The schedule the requester asked for, if any.
        schedule: Option<Schedule>,
    },
}

#[derive(Default)]
pub(crate) struct Shared {
    state: Mutex<State>,
    cv: Condvar,
}

#[derive(Default)]
pub(crate) struct State {
    lost: Option<String>,
    lost_seen: bool,
    stop: Option<Event>,
    stop_seen: bool,
    valid_until: Option<Instant>,
    deadline: Option<Instant>,
}

impl Shared {
    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, State> {
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

    pub(crate) fn set_valid_until(&self, held: &Held) {
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

pub(crate) enum Cmd {
    SetPid(Pid, std_mpsc::Sender<Result<()>>),
    Release(std_mpsc::Sender<Result<()>>),
}

/// A held cluster-wide lock: the lease is renewed in the background until
/// [`Guard::release`] (or drop). The etcd counterpart of [`pidguard::Guard`].
pub struct Guard {
    pub(crate) key: String,
    pub(crate) fence: u64,
    pub(crate) lease: i64,
    pub(crate) holder: Holder,
    pub(crate) shared: Arc<Shared>,
    pub(crate) cmds: mpsc::UnboundedSender<Cmd>,
    pub(crate) thread: Option<std::thread::JoinHandle<()>>,
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
    /// than every earlier holder's, as long as the cluster's history only
    /// moves forward: after a restore of an older snapshot (`etcdctl
    /// snapshot restore`) the revision is rewound and a fence already
    /// handed out can be handed out again (restore with etcdutl's
    /// `--bump-revision` past every fence given out, or make the protected
    /// storage forget the fences it has seen).
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
    /// less the [`margin`](crate::margin); etcd may expire the lease, and another host
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
    /// [`pidguard::Guard::set_pid`] does for a PID file).
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
            self.holder.start_time = pidguard::start_time(pid);
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
pub(crate) async fn hold(
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
    holder.start_time = pidguard::start_time(pid);
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
        .map_err(|e| conn.unreachable(&format!("update {}", held.key), &e))?;
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
        Err(e) => Err(conn.unreachable(
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
pub(crate) async fn next_watch_response(
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
}
