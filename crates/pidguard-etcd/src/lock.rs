//! The builder: [`Lock`], what it acquires, reads and asks to stop.

use std::sync::{mpsc as std_mpsc, Arc};
use std::time::{Duration, Instant};

use etcd_client::{Compare, CompareOp, EventType, PutOptions, Txn, TxnOp, WatchOptions};
use pidguard::{ErrorKind, Pid, Schedule};
use tokio::sync::mpsc;

use crate::acquire::{acquire_by, margin, max_stop_within, min_ttl_for};
use crate::backend::Backend;
use crate::conn::{first_kv, revision_of, runtime, Conn};
use crate::error::{err_text, Error, Result};
use crate::hold::{hold, next_watch_response, Guard, Shared};
use crate::holder::{clean, Holder, Holding};

/// The default lease TTL.
pub const DEFAULT_TTL: Duration = Duration::from_secs(10);

/// A cluster-wide lock on `PREFIX/lock/NAME`: the etcd counterpart of
/// [`Pidfile`](pidguard::Pidfile).
#[derive(Clone, Debug)]
pub struct Lock {
    pub(crate) backend: Backend,
    pub(crate) name: String,
    ttl: Duration,
    pub(crate) host: Option<String>,
    pub(crate) pid: Option<Pid>,
    pub(crate) starting: bool,
    pub(crate) stop_within: Duration,
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
    /// reports [`Event::Lost`](crate::Event::Lost) (and [`Guard::is_held`] turns false) this
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

    pub(crate) fn ttl_secs(&self) -> i64 {
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
            .map_err(|e| {
                Error::new(ErrorKind::Io, format!("cannot start a thread: {e}")).caused_by(e)
            })?;
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
            let resp = conn
                .get(&key)
                .await
                .map_err(|e| conn.unreachable(&format!("read {key}"), &e))?;
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
            let resp = conn
                .get(&key)
                .await
                .map_err(|e| conn.unreachable(&format!("read {key}"), &e))?;
            let Some(kv) = first_kv(&resp) else {
                return Ok(StopOutcome::NotRunning);
            };
            let holding = Holding::from_kv(&key, kv);
            let rev = revision_of(resp.header());
            let lease = conn
                .call(|mut c| async move { c.lease_grant(10, None).await })
                .await
                .map_err(|e| conn.unreachable("grant a lease", &e))?
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
                .map_err(|e| conn.unreachable(&format!("write {stop_key}"), &e))?;
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
pub(crate) async fn wait_released(
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
            let resp = conn.get(key).await?;
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

#[cfg(test)]
mod tests {
    use super::*;

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
