//! Where the locks live: the backend URL, with TLS and authentication.

use std::fmt;
use std::time::Duration;

use etcd_client::ConnectOptions;

use crate::error::{Error, Result};

/// Where the locks live: etcd endpoints and a key prefix, from a URL
/// `etcd://HOST:PORT[,HOST:PORT…]/PREFIX`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backend {
    url: String,
    endpoints: Vec<String>,
    prefix: String,
    pub(crate) tls: Option<Tls>,
    pub(crate) auth: Option<(String, Password)>,
}

/// TLS settings: the CA that signs etcd's certificates, and a client
/// certificate with its key (PEM).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub(crate) struct Tls {
    ca: Option<Vec<u8>>,
    pub(crate) identity: Option<(Vec<u8>, Vec<u8>)>,
}

/// A password, never shown (not by `Debug` either).
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Password(String);

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
        .caused_by(e)
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
    /// let b = pidguard_etcd::Backend::parse("etcd://10.0.0.1:2379,10.0.0.2:2379/jobs").unwrap();
    /// assert_eq!(b.endpoints(), ["http://10.0.0.1:2379", "http://10.0.0.2:2379"]);
    /// assert_eq!(b.prefix(), "/jobs");
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

    /// Parses `url` ([`Backend::parse`]) and applies etcdctl's environment
    /// variables, as etcdctl reads them: `ETCDCTL_CACERT` (TLS, trusting
    /// that CA: [`Backend::ca_cert_file`]), `ETCDCTL_CERT` and `ETCDCTL_KEY`
    /// (a client certificate: [`Backend::client_cert_files`]),
    /// `ETCDCTL_USER` (`USER:PASSWORD`, or `USER` with `ETCDCTL_PASSWORD`:
    /// [`Backend::user`]). Unset and empty variables are ignored.
    ///
    /// [`Backend::parse`] never reads the environment: a program opts in
    /// here (so that it can be configured like etcdctl, with the same
    /// variables in the same place), or sets each option itself.
    ///
    /// Errors ([`ErrorKind::InvalidName`](pidguard::ErrorKind)): a file that
    /// cannot be read or is not PEM, a certificate without its key (or the
    /// reverse), a client certificate without a CA, a user without a
    /// password; each names the variable (and etcdctl's option for it).
    pub fn from_env(url: &str) -> Result<Backend> {
        Backend::configured(url, |name| std::env::var_os(name))
    }

    /// [`Backend::from_env`] with the values from `lookup` instead of the
    /// environment: `lookup(NAME)` is the value of etcdctl's variable NAME
    /// (`ETCDCTL_CACERT`, `ETCDCTL_CERT`, `ETCDCTL_KEY`, `ETCDCTL_USER`,
    /// `ETCDCTL_PASSWORD`), or `None`. A command line that takes etcdctl's
    /// options (`--cacert`, …) looks up its own option first, then the
    /// environment.
    pub fn configured(
        url: &str,
        lookup: impl Fn(&str) -> Option<std::ffi::OsString>,
    ) -> Result<Backend> {
        let mut backend = Backend::parse(url)?;
        let get = |name: &str| lookup(name).filter(|v| !v.is_empty());
        let (cacert, cert, key) = (
            get("ETCDCTL_CACERT"),
            get("ETCDCTL_CERT"),
            get("ETCDCTL_KEY"),
        );
        match (&cert, &key) {
            (Some(_), None) => {
                return Err(Error::invalid(
                    "--cert (ETCDCTL_CERT) needs --key (ETCDCTL_KEY): the client certificate's key",
                ))
            }
            (None, Some(_)) => {
                return Err(Error::invalid(
                    "--key (ETCDCTL_KEY) needs --cert (ETCDCTL_CERT): the client certificate",
                ))
            }
            _ => {}
        }
        if cert.is_some() && cacert.is_none() {
            return Err(Error::invalid(
                "TLS with a client certificate needs --cacert FILE (ETCDCTL_CACERT): the CA \
                 that signed etcd's certificate",
            ));
        }
        if let Some(ca) = &cacert {
            backend.ca_cert_file(ca)?;
        }
        if let (Some(c), Some(k)) = (&cert, &key) {
            backend.client_cert_files(c, k)?;
        }
        if let Some(user) = get("ETCDCTL_USER") {
            let user = user.to_string_lossy().into_owned();
            let password = get("ETCDCTL_PASSWORD").map(|p| p.to_string_lossy().into_owned());
            // With a password given apart, the user is the part before any
            // ':' (as etcdctl takes it).
            let (name, password) = match (user.split_once(':'), password) {
                (Some((name, _)), Some(p)) => (name.to_string(), p),
                (None, Some(p)) => (user.clone(), p),
                (Some((name, p)), None) => (name.to_string(), p.to_string()),
                (None, None) => {
                    return Err(Error::invalid(format!(
                        "--user {user} (ETCDCTL_USER) needs a password: --user \
                         {user}:PASSWORD, or --password (ETCDCTL_PASSWORD)"
                    )))
                }
            };
            if name.is_empty() {
                return Err(Error::invalid(
                    "--user (ETCDCTL_USER) needs a user name: --user USER:PASSWORD",
                ));
            }
            backend.user(name, password);
        }
        Ok(backend)
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

    pub(crate) fn connect_options(&self) -> ConnectOptions {
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

#[cfg(test)]
mod tests {
    use super::*;
    use pidguard::ErrorKind;

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
        // The file's error is the source, as well as in the message.
        let source = std::error::Error::source(&missing).expect("a source");
        let io = source
            .downcast_ref::<std::io::Error>()
            .expect("an io::Error");
        assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
    }
}
