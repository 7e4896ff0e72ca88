//! Acquiring: a lease, the key created on it in one transaction, and the
//! time the lock then counts as held.

use std::time::{Duration, Instant};

use etcd_client::{Compare, CompareOp, PutOptions, Txn, TxnOp, TxnOpResponse};
use pidguard::{ErrorKind, Pid};

use crate::backend::Backend;
use crate::conn::{first_kv, revision_of, Conn};
use crate::error::{Error, Result};
use crate::holder::{Holder, Holding};
use crate::lock::{wait_released, Lock};

/// A lock just taken, as the holder's background task keeps it.
pub(crate) struct Held {
    pub(crate) key: String,
    pub(crate) stop_key: String,
    pub(crate) fence: u64,
    pub(crate) lease: i64,
    pub(crate) ttl: Duration,
    pub(crate) last_ok: Instant,
    pub(crate) holder: Holder,
    pub(crate) backend: Backend,
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
    pub(crate) fn deadline(&self) -> Instant {
        self.last_ok + self.ttl - margin(self.ttl)
    }

    /// How often the lease is renewed: a third of the time it counts as
    /// held after a renewal (TTL/3 less a little without
    /// [`Lock::stop_within`]), so that two more renewals can be tried, each
    /// given that long, before the lock counts as lost.
    pub(crate) fn renew_interval(&self) -> Duration {
        self.valid_until().saturating_duration_since(self.last_ok) / 3
    }

    /// Until when the lock counts as held: the deadline less the time the
    /// work needs to stop.
    pub(crate) fn valid_until(&self) -> Instant {
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
            // The transaction's error, not the revocation's, is the source.
            let source = conn.take_last_error();
            let _ = conn
                .call(|mut c| async move { c.lease_revoke(lease).await })
                .await;
            conn.set_last_error(source);
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
    let message = format!(
        "{} on {} is held by {h}; stop it with `pidguard stop --backend {} --name {}` or \
         wait for it (--wait)",
        h.key,
        lock.backend.endpoints().join(","),
        lock.backend.url(),
        lock.name
    );
    Error::busy(message, h)
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
pub(crate) async fn acquire_by(
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
                    lock.backend.endpoints().join(","),
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
                    return Err(conn.unreachable(&format!("lock {key}"), &e));
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}
