//! The library API against a real etcd server (`/usr/bin/etcd`, Debian's
//! `etcd-server`): each test starts its own on free loopback ports with a
//! temporary data directory and kills it (by PID) at the end. Skipped, with
//! a printed reason, when etcd is not installed (under `CI=true` a missing
//! etcd fails instead: `.ci/run` installs it). The command line's own etcd
//! tests (many hosts, quorum loss, TLS through its options) are
//! pidguard-cli's tests/etcd.rs.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pidguard::{ErrorKind, Pid, Schedule};
use pidguard_etcd::{Backend, Event, Lock, StopOutcome};
use testkit::etcd::{free_port, have_etcd, serial, Certs, Serial, ETCD};

struct Etcd {
    child: Child,
    client: u16,
    _dir: tempfile::TempDir,
    _serial: Serial,
}

impl Drop for Etcd {
    fn drop(&mut self) {
        // By PID: the server this test started.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A one-member etcd on loopback, ready (a read succeeds); `None` (the
/// test skipped) without etcd.
fn etcd() -> Option<Etcd> {
    if !have_etcd() {
        return None;
    }
    // One at a time, with pidguard-cli's etcd tests too: the tests measure
    // timings against the TTL.
    let serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let (client, peer) = (free_port(), free_port());
    let client_url = format!("http://127.0.0.1:{client}");
    let peer_url = format!("http://127.0.0.1:{peer}");
    let log = std::fs::File::create(dir.path().join("etcd.log")).unwrap();
    let child = Command::new(ETCD)
        .args(["--name", "m0", "--data-dir"])
        .arg(dir.path().join("data"))
        .args(["--listen-client-urls", &client_url])
        .args(["--advertise-client-urls", &client_url])
        .args(["--listen-peer-urls", &peer_url])
        .args(["--initial-advertise-peer-urls", &peer_url])
        .args(["--initial-cluster", &format!("m0={peer_url}")])
        .args(["--initial-cluster-state", "new"])
        .args(["--heartbeat-interval", "50", "--election-timeout", "500"])
        .args(["--logger", "zap", "--log-level", "warn"])
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let backend = Backend::parse(&format!("etcd://127.0.0.1:{client}/test")).unwrap();
    Some(Etcd::ready(child, client, dir, serial, backend))
}

impl Etcd {
    /// The member started as `child` (client port `client`, files in
    /// `dir`), once a read through `backend` succeeds.
    fn ready(
        child: Child,
        client: u16,
        dir: tempfile::TempDir,
        serial: Serial,
        backend: Backend,
    ) -> Etcd {
        let etcd = Etcd {
            child,
            client,
            _dir: dir,
            _serial: serial,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        let probe = Lock::new(backend, "probe");
        while let Err(e) = probe.status() {
            assert!(Instant::now() < deadline, "etcd did not start: {e}");
            std::thread::sleep(Duration::from_millis(100));
        }
        etcd
    }

    fn backend(&self) -> Backend {
        Backend::parse(&format!("etcd://127.0.0.1:{}/test", self.client)).unwrap()
    }
}

#[test]
fn one_holder_at_a_time_with_increasing_fences() {
    let Some(etcd) = etcd() else { return };
    let mut lock = Lock::new(etcd.backend(), "job");
    lock.ttl(Duration::from_secs(5)).host("a").starting();
    let mut guard = lock.acquire().unwrap();
    assert!(guard.is_held());
    assert_eq!(guard.key(), "/test/lock/job");
    let held = lock.status().unwrap().expect("a holder");
    assert_eq!(held.fence, guard.fence());
    assert!(held.holder.starting);
    assert_eq!(held.holder.host, "a");
    // The protected process, recorded once it runs.
    guard.set_pid(Pid::current()).unwrap();
    let held = lock.status().unwrap().expect("a holder");
    assert_eq!(held.holder.pid, std::process::id());
    assert!(!held.holder.starting);
    assert!(held.holder.start_time.is_some(), "{held:?}");

    // A second holder is refused, and told who holds it.
    let mut other = Lock::new(etcd.backend(), "job");
    other.host("b");
    let e = other.acquire().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AlreadyRunning, "{e}");
    assert_eq!(e.holding().expect("the holder").fence, guard.fence());
    assert!(e.to_string().contains("held by host a"), "{e}");

    let first = guard.fence();
    guard.release().unwrap();
    assert!(lock.status().unwrap().is_none());
    let next = other.acquire().unwrap();
    assert!(next.fence() > first, "{} after {first}", next.fence());
    next.release().unwrap();
}

#[test]
fn a_waiter_takes_the_lock_once_it_is_released() {
    let Some(etcd) = etcd() else { return };
    let guard = Lock::new(etcd.backend(), "job").acquire().unwrap();
    let backend = etcd.backend();
    let waiter = std::thread::spawn(move || {
        let started = Instant::now();
        let g = Lock::new(backend, "job")
            .acquire_timeout(Duration::from_secs(20))
            .unwrap();
        (started.elapsed(), g.fence())
    });
    std::thread::sleep(Duration::from_millis(500));
    let fence = guard.fence();
    guard.release().unwrap();
    let (waited, next) = waiter.join().unwrap();
    assert!(waited >= Duration::from_millis(400), "{waited:?}");
    assert!(next > fence);
}

#[test]
fn a_stop_request_reaches_the_holder() {
    let Some(etcd) = etcd() else { return };
    let guard = Lock::new(etcd.backend(), "job").acquire().unwrap();
    let monitor = guard.monitor();
    let holder = std::thread::spawn(move || {
        let ev = monitor.wait_event(Some(Duration::from_secs(20)));
        guard.release().unwrap();
        ev
    });
    let schedule: Schedule = "TERM/2/KILL/1".parse().unwrap();
    let mut stopper = Lock::new(etcd.backend(), "job");
    stopper.host("b");
    let outcome = stopper
        .request_stop(Some(&schedule), Some(Duration::from_secs(20)))
        .unwrap();
    assert!(matches!(outcome, StopOutcome::Stopped(_)), "{outcome:?}");
    assert_eq!(
        holder.join().unwrap(),
        Some(Event::StopRequested {
            from: "b".into(),
            schedule: Some(schedule)
        })
    );
    let nobody = stopper.request_stop(None, Some(Duration::from_secs(5)));
    assert!(matches!(nobody.unwrap(), StopOutcome::NotRunning));
}

#[test]
fn the_holder_reports_the_loss_when_etcd_goes() {
    let Some(mut etcd) = etcd() else { return };
    let mut lock = Lock::new(etcd.backend(), "job");
    lock.ttl(Duration::from_secs(2));
    let guard = lock.acquire().unwrap();
    let deadline = guard.deadline().expect("a deadline");
    let _ = etcd.child.kill();
    let _ = etcd.child.wait();
    match guard.wait_event(Some(Duration::from_secs(10))) {
        Some(Event::Lost(why)) => assert!(why.contains("renewal"), "{why}"),
        other => panic!("no loss reported: {other:?}"),
    }
    assert!(!guard.is_held());
    // Reported before the deadline another host could take it at.
    assert!(Instant::now() <= deadline + Duration::from_millis(200));
    // Releasing without etcd does not hang: the lease expires by itself.
    let started = Instant::now();
    let _ = guard.release();
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[test]
fn an_unreachable_etcd_is_an_io_error_that_says_so() {
    let port = free_port();
    let backend = Backend::parse(&format!("etcd://127.0.0.1:{port}/test")).unwrap();
    let e = Lock::new(backend, "job").acquire().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Io, "{e}");
    assert!(e.to_string().contains(&format!("127.0.0.1:{port}")), "{e}");
    assert!(e.to_string().contains("quorum"), "{e}");
    // The etcd client's error is the source.
    let source = std::error::Error::source(&e).expect("a source");
    assert!(source.is::<etcd_client::Error>(), "{source:?}");
}

/// A backend on the TLS member at `port` with the prefix `prefix`: the
/// CA, and the client certificate unless `cert` is false.
fn tls_backend(certs: &Certs, port: u16, prefix: &str, cert: bool) -> Backend {
    let mut b = Backend::parse(&format!("etcd://127.0.0.1:{port}{prefix}")).unwrap();
    b.ca_cert_file(certs.path("good-ca.pem")).unwrap();
    if cert {
        b.client_cert_files(certs.path("client.pem"), certs.path("client.key"))
            .unwrap();
    }
    b
}

/// Users and roles on the TLS member, then authentication enabled
/// (through etcd-client itself, over TLS with the client certificate):
/// `root`, and `app` (password `app-s3cret`) with read and write
/// permission on the prefix `/test/` only.
fn enable_auth(certs: &Certs, port: u16) {
    use etcd_client::{Certificate, Client, ConnectOptions, Identity, Permission, TlsOptions};
    let read = |f: &str| std::fs::read(certs.path(f)).unwrap();
    let tls = TlsOptions::new()
        .ca_certificate(Certificate::from_pem(read("good-ca.pem")))
        .identity(Identity::from_pem(read("client.pem"), read("client.key")));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let options = ConnectOptions::new().with_tls(tls);
        let endpoint = format!("https://127.0.0.1:{port}");
        let mut c = Client::connect([endpoint], Some(options)).await.unwrap();
        c.user_add("root", "r00t-s3cret", None).await.unwrap();
        c.role_add("root").await.unwrap();
        c.user_grant_role("root", "root").await.unwrap();
        c.user_add("app", "app-s3cret", None).await.unwrap();
        c.role_add("app").await.unwrap();
        let perm = Permission::read_write("/test/").with_prefix();
        c.role_grant_permission("app", perm).await.unwrap();
        c.user_grant_role("app", "app").await.unwrap();
        c.auth_enable().await.unwrap();
    });
}

#[test]
fn tls_with_a_client_certificate_and_authentication_through_the_backend() {
    if !have_etcd() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let Some(certs) = Certs::make(dir.path()) else {
        return;
    };
    let serial = serial();
    // One member serving TLS only, with client certificates required.
    let (client, peer) = (free_port(), free_port());
    let data = dir.path().join("data");
    let child = certs
        .tls_member(client, peer, &data, &dir.path().join("etcd.log"))
        .spawn()
        .unwrap();
    let backend = tls_backend(&certs, client, "/test", true);
    let etcd = Etcd::ready(child, client, dir, serial, backend);
    enable_auth(&certs, etcd.client);

    // TLS, the client certificate and the user `app`: one holder at a
    // time, increasing fences, the holder seen from another backend.
    let app = |prefix: &str, password: &str| {
        let mut b = tls_backend(&certs, etcd.client, prefix, true);
        b.user("app", password);
        b
    };
    let guard = Lock::new(app("/test", "app-s3cret"), "job")
        .acquire()
        .unwrap();
    assert!(guard.is_held());
    let held = Lock::new(app("/test", "app-s3cret"), "job")
        .status()
        .unwrap()
        .expect("a holder");
    assert_eq!(held.fence, guard.fence());
    let e = Lock::new(app("/test", "app-s3cret"), "job")
        .acquire()
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AlreadyRunning, "{e}");
    let first = guard.fence();
    guard.release().unwrap();

    // etcdctl's variables, through Backend::configured (Backend::from_env
    // reads the same from the environment): USER with PASSWORD apart.
    let vars = |user: &'static str, password: Option<&'static str>| {
        let (ca, cert, key) = (
            certs.path("good-ca.pem"),
            certs.path("client.pem"),
            certs.path("client.key"),
        );
        move |name: &str| -> Option<std::ffi::OsString> {
            match name {
                "ETCDCTL_CACERT" => Some(ca.clone().into()),
                "ETCDCTL_CERT" => Some(cert.clone().into()),
                "ETCDCTL_KEY" => Some(key.clone().into()),
                "ETCDCTL_USER" => Some(user.into()),
                "ETCDCTL_PASSWORD" => password.map(Into::into),
                _ => None,
            }
        }
    };
    let url = format!("etcd://127.0.0.1:{}/test", etcd.client);
    for (user, password) in [("app", Some("app-s3cret")), ("app:app-s3cret", None)] {
        let backend = Backend::configured(&url, vars(user, password)).unwrap();
        assert!(backend.uses_tls());
        let next = Lock::new(backend, "job").acquire().unwrap();
        assert!(next.fence() > first, "{} after {first}", next.fence());
        next.release().unwrap();
    }
    let e = Backend::configured(&url, vars("app", None)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidName, "{e}");
    assert!(e.to_string().contains("needs a password"), "{e}");
    let e = Backend::configured(&url, |name: &str| {
        (name == "ETCDCTL_CERT").then(|| certs.path("client.pem").into())
    })
    .unwrap_err();
    assert!(e.to_string().contains("needs --key (ETCDCTL_KEY)"), "{e}");

    // Each misconfiguration is an I/O error naming its cause, never the
    // password.
    let wrong = Lock::new(app("/test", "wrong-guess"), "job")
        .acquire()
        .unwrap_err();
    assert_eq!(wrong.kind(), ErrorKind::Io, "{wrong}");
    assert!(
        wrong
            .to_string()
            .contains("authentication failed for user \"app\""),
        "{wrong}"
    );
    assert!(!wrong.to_string().contains("wrong-guess"), "{wrong}");
    assert!(!format!("{wrong:?}").contains("wrong-guess"), "{wrong:?}");
    let elsewhere = Lock::new(app("/other", "app-s3cret"), "job")
        .acquire()
        .unwrap_err();
    assert!(
        elsewhere.to_string().contains(
            "the user \"app\" may not use these keys: grant it a role with read and write \
             permission on the prefix /other"
        ),
        "{elsewhere}"
    );
    let mut no_cert = tls_backend(&certs, etcd.client, "/test", false);
    no_cert.user("app", "app-s3cret");
    let e = Lock::new(no_cert, "job").status().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Io, "{e}");
    assert!(
        e.to_string().contains("requires a client certificate"),
        "{e}"
    );
    let mut plain = Backend::parse(&url).unwrap();
    plain.user("app", "app-s3cret");
    let e = Lock::new(plain, "job").status().unwrap_err();
    assert!(e.to_string().contains("give --cacert"), "{e}");
}
