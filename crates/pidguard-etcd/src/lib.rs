//! One instance across a cluster, on etcd leases: the etcd backend of
//! [pidguard].
//!
//! A PID file's `flock` holds on one host. This crate gives the same
//! guarantee across hosts with an etcd v3 cluster: [`Lock`] is the builder
//! (as [`Pidfile`](pidguard::Pidfile) is), [`Guard`] is held while the lock is
//! (as [`pidguard::Guard`] is).
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
//!   increases strictly from one holder to the next as long as the
//!   cluster's history only moves forward (restoring an older snapshot,
//!   `etcdctl snapshot restore`, rewinds the revision and can hand a fence
//!   out again): pass it along with every write to the protected resource
//!   so the resource can refuse a stale holder's writes.
//! * **Waiting** ([`Lock::acquire_timeout`], [`Lock::acquire_wait`])
//!   watches the key for its deletion; it does not poll.
//! * **Stop from anywhere**: [`Lock::request_stop`] writes the key
//!   `PREFIX/stop/NAME`, which the holder's guard watches: the holder sees
//!   [`Event::StopRequested`] (with the requested schedule), stops its work
//!   and releases; `request_stop` returns once the key is gone.
//!
//! The backend is named by a URL, `etcd://HOST:PORT[,HOST:PORT…]/PREFIX`
//! ([`Backend::parse`]). With several endpoints, a connection is raced on
//! all of them at once and the first to answer is kept; after a failure
//! the race starts again, so a dead member costs only its connection
//! attempt.
//!
//! The API is blocking and runs its own small tokio runtime (the lease is
//! renewed on a background thread). From async code, call it inside
//! `tokio::task::spawn_blocking`.
//!
//! ```no_run
//! use pidguard_etcd::{Backend, Lock};
//! let backend = Backend::parse("etcd://127.0.0.1:2379/locks")?;
//! let guard = Lock::new(backend, "nightly").acquire()?;
//! println!("holding {} with fence {}", guard.key(), guard.fence());
//! // ... work, passing guard.fence() to the storage it writes ...
//! guard.release()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Crate layout
//!
//! The modules follow the protocol: `error` (the [`Error`] type and what
//! an error from etcd means), `backend` (the URL, TLS, authentication),
//! `holder` (the record stored in the lock key), `conn` (connections: the
//! endpoints raced, the first to answer kept), `lock` (the [`Lock`] builder, status and stop
//! requests), `acquire` (taking the lock) and `hold` (the [`Guard`] and its
//! background task). This crate depends on `pidguard` (for [`Pid`],
//! [`Schedule`] and [`ErrorKind`]) and `etcd-client` (the package
//! `pidguard-etcd-client`: etcd-client with its generated gRPC code
//! checked in, so no `protoc` is needed); `pidguard` does not depend on it.
//!
//! [`Pid`]: pidguard::Pid
//! [`Schedule`]: pidguard::Schedule
//! [`ErrorKind`]: pidguard::ErrorKind
#![deny(missing_docs)]
#![cfg(unix)]

mod acquire;
mod backend;
mod conn;
mod error;
mod hold;
mod holder;
mod lock;

pub use acquire::{margin, max_stop_within, min_ttl_for};
pub use backend::Backend;
pub use error::{Error, Result};
pub use hold::{Event, Guard, Monitor};
pub use holder::{Holder, Holding};
pub use lock::{Lock, StopOutcome, DEFAULT_TTL};
