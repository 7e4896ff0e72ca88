//! Connections: the endpoints raced, the first to answer kept for the
//! requests that follow, and raced again after a failure.

use std::future::Future;
use std::time::Duration;

use etcd_client::{Client, GetResponse, KeyValue};
use pidguard::ErrorKind;

use crate::backend::Backend;
use crate::error::{err_text, Error, Result};

/// How long one request to one endpoint may take before the next endpoint
/// is tried.
const OP_TIMEOUT: Duration = Duration::from_secs(2);

pub(crate) struct Conn {
    backend: Backend,
    next: usize,
    client: Option<Client>,
    /// The etcd client's error behind the last failure, when it was one
    /// (not a timeout, not several endpoints' failures at once): the
    /// [`source`](std::error::Error::source) of the error made of it.
    last_error: Option<etcd_client::Error>,
}

impl Conn {
    pub(crate) fn new(backend: &Backend) -> Conn {
        Conn {
            backend: backend.clone(),
            next: 0,
            client: None,
            last_error: None,
        }
    }

    pub(crate) fn endpoint(&self) -> &str {
        &self.backend.endpoints()[self.next % self.backend.endpoints().len()]
    }

    /// The current connection, or a new one: with several endpoints, all
    /// are tried at once (connect, then a linearizable read, so that a
    /// member without a leader does not win) and the first to answer is
    /// kept, so a dead or black-holed member costs nothing but its
    /// connection attempt. The error names every endpoint's failure.
    pub(crate) async fn client(&mut self) -> std::result::Result<Client, String> {
        if let Some(c) = &self.client {
            return Ok(c.clone());
        }
        let options = self.backend.connect_options();
        let endpoints = self.backend.endpoints().to_vec();
        if endpoints.len() == 1 {
            let c = match Client::connect([endpoints[0].clone()], Some(options)).await {
                Ok(c) => c,
                Err(e) => {
                    let text = format!("{}: {}", endpoints[0], err_text(&e));
                    self.last_error = Some(e);
                    return Err(text);
                }
            };
            self.client = Some(c.clone());
            return Ok(c);
        }
        // (Several endpoints' failures: no one error to name as the source.)
        self.last_error = None;
        let probe = format!("{}/lock/", self.backend.prefix());
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

    /// The error "cannot `what` on etcd" after `last` (what [`Conn::call`]
    /// or [`Conn::client`] returned), with the etcd client's error behind
    /// it as its source when there was one.
    pub(crate) fn unreachable(&mut self, what: &str, last: &str) -> Error {
        let e = Error::unreachable(&self.backend, what, last);
        match self.last_error.take() {
            Some(source) => e.caused_by(source),
            None => e,
        }
    }

    /// Takes the etcd client's error behind the last failure (see
    /// [`Conn::unreachable`]), to be put back with [`Conn::set_last_error`]
    /// around a request of its own (a clean-up after the failure).
    pub(crate) fn take_last_error(&mut self) -> Option<etcd_client::Error> {
        self.last_error.take()
    }

    /// See [`Conn::take_last_error`].
    pub(crate) fn set_last_error(&mut self, e: Option<etcd_client::Error>) {
        self.last_error = e;
    }

    /// Forgets the current connection and moves on to the next endpoint.
    pub(crate) fn failed(&mut self) {
        self.client = None;
        self.next = self.next.wrapping_add(1);
    }

    /// Reads `key` (see [`Conn::call`]).
    pub(crate) async fn get(&mut self, key: &str) -> std::result::Result<GetResponse, String> {
        self.call(|mut c| {
            let k = key.to_string();
            async move { c.get(k, None).await }
        })
        .await
    }

    /// One request, tried on each endpoint in turn (each within
    /// `OP_TIMEOUT`); the last error if all fail.
    pub(crate) async fn call<T, F, Fut>(&mut self, mut f: F) -> std::result::Result<T, String>
    where
        F: FnMut(Client) -> Fut,
        Fut: Future<Output = std::result::Result<T, etcd_client::Error>>,
    {
        let mut last = String::new();
        self.last_error = None;
        for _ in 0..self.backend.endpoints().len() {
            // No endpoint answers: every one was just tried.
            let c = self.client().await?;
            let endpoint = self.endpoint().to_string();
            let result = match tokio::time::timeout(OP_TIMEOUT, f(c)).await {
                Ok(Ok(v)) => Ok(v),
                Ok(Err(e)) => {
                    let text = err_text(&e);
                    self.last_error = Some(e);
                    Err(text)
                }
                Err(_) => {
                    self.last_error = None;
                    Err(format!("no answer within {OP_TIMEOUT:?}"))
                }
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

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::new(ErrorKind::Io, format!("cannot start the etcd client: {e}")))
}

pub(crate) fn first_kv(resp: &GetResponse) -> Option<&KeyValue> {
    resp.kvs().first()
}

pub(crate) fn revision_of(header: Option<&etcd_client::ResponseHeader>) -> i64 {
    header.map(|h| h.revision()).unwrap_or(0)
}
