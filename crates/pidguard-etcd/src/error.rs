//! The crate's error type, and what an error from etcd means.

use std::fmt;

use pidguard::ErrorKind;

use crate::backend::Backend;
use crate::holder::Holding;

/// An error from the etcd backend. [`Error::kind`] is
/// [`ErrorKind::AlreadyRunning`] when another holder has the key
/// ([`Error::holding`] describes it), [`ErrorKind::InvalidName`] for a bad
/// URL or name, [`ErrorKind::Io`] when etcd cannot be reached or has no
/// quorum.
///
/// The message says what happened, on which etcd and to which key, and what
/// to do; [`std::error::Error::source`] is the underlying error where there
/// is one (the file that could not be read, the etcd client's error).
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    holding: Option<Box<Holding>>,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            kind,
            message: message.into(),
            holding: None,
            source: None,
        }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::InvalidName, message)
    }

    /// With the underlying error as its [`source`](std::error::Error::source).
    pub(crate) fn caused_by(
        mut self,
        source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Error {
        self.source = Some(source.into());
        self
    }

    /// Another holder has the lock.
    pub(crate) fn busy(message: impl Into<String>, holding: Holding) -> Error {
        let mut e = Error::new(ErrorKind::AlreadyRunning, message);
        e.holding = Some(Box::new(holding));
        e
    }

    pub(crate) fn unreachable(backend: &Backend, what: &str, last: &str) -> Error {
        let remedy = cause(backend, last).unwrap_or_else(|| {
            "check that etcd runs there and has a quorum (a majority of its members up)".into()
        });
        Error::new(
            ErrorKind::Io,
            format!(
                "cannot {what} on etcd at {}: {last}; {remedy}",
                backend.endpoints().join(",")
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

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

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
pub(crate) fn err_text(e: &etcd_client::Error) -> String {
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
            backend.prefix()
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
    // considers the handshake done, and may just close the connection. A
    // plain-HTTP member may reset the connection on the TLS greeting too
    // (seen in CI, instead of an answer that is not TLS): both are named.
    let with_client_cert = backend.tls.as_ref().is_some_and(|t| t.identity.is_some());
    // An I/O error's kind is shown in `Debug` form by hyper ("Kind(ConnectionReset)"), its
    // message in words: both are looked for.
    if backend.tls.is_some()
        && has(&[
            "connection closed",
            "connection reset",
            "connectionreset",
            "broken pipe",
            "brokenpipe",
        ])
    {
        return Some(
            if with_client_cert {
                "etcd closed the connection right after the TLS handshake: it most likely refused \
             the client certificate (--cert, --key: not signed by a CA it trusts, or \
             expired); or the endpoint does not seem to speak TLS; drop --cacert, --cert and \
             --key for a plain-HTTP etcd (a plain member may reset a TLS greeting); if neither, \
             check that etcd runs there and has a quorum"
            } else {
                "etcd closed the connection right after the TLS handshake: it most likely requires \
             a client certificate (it runs with --client-cert-auth): give --cert and --key (or \
             ETCDCTL_CERT and ETCDCTL_KEY); or the endpoint does not seem to speak TLS; drop \
             --cacert, --cert and --key for a plain-HTTP etcd (a plain member may reset a TLS \
             greeting); if neither, check that etcd runs there and has a quorum"
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
            "connectionreset",
            "broken pipe",
            "brokenpipe",
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

/// `Result<T, pidguard_etcd::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    /// hyper reports a reset as `Kind(ConnectionReset)` as well as in words
    /// ("connection reset by peer"): a plain-HTTP client talking to a TLS
    /// etcd gets either, and both get the --cacert hint (seen in CI: the
    /// `Debug` form, which the words alone missed).
    #[test]
    fn a_reset_from_a_tls_endpoint_suggests_cacert_in_either_form() {
        let plain = Backend::parse("etcd://127.0.0.1:2379/x").unwrap();
        for e in [
            "grpc request error: code: 'Unknown error', message: \"transport error\", source: \
             tonic::transport::Error(Transport, hyper::Error(Io, Kind(ConnectionReset)))",
            "transport error: connection reset by peer (os error 104)",
            "hyper::Error(Io, Kind(BrokenPipe))",
        ] {
            let c = cause(&plain, e).unwrap_or_default();
            assert!(c.contains("give --cacert"), "{e}: {c:?}");
        }
    }
}
