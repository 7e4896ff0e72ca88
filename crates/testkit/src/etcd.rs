//! What the etcd tests of pidguard-etcd and pidguard-cli share: the server
//! they start, free loopback ports, running one at a time, and TLS
//! certificates made with the `openssl` command.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use crate::{have_tool, missing, text};

/// The etcd server the tests start (Debian's `etcd-server`).
pub const ETCD: &str = "/usr/bin/etcd";

/// Whether [`ETCD`] is installed; if not, the test is recorded as skipped
/// (under `CI=true` it fails: `.ci/run` installs it).
pub fn have_etcd() -> bool {
    if Path::new(ETCD).exists() {
        return true;
    }
    missing(&format!("{ETCD} (Debian: etcd-server)"));
    false
}

/// A loopback port free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The tests measure timings against the TTL: they run one at a time so
/// that they do not compete for the two CPUs of a CI machine, both as
/// threads of one test binary (`cargo test`) and as processes (`cargo
/// nextest`, which runs each test in a process of its own; pidguard-etcd's
/// and pidguard-cli's alike): a mutex, then an exclusive `flock` on a file
/// in the temporary directory. Held until dropped.
pub struct Serial {
    _file: std::fs::File,
    _guard: std::sync::MutexGuard<'static, ()>,
}

static SERIAL: Mutex<()> = Mutex::new(());

/// Waits for the other etcd tests to finish; see [`Serial`].
pub fn serial() -> Serial {
    let guard = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let path = std::env::temp_dir().join("pidguard-etcd-tests.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .unwrap();
    file.lock().unwrap();
    Serial {
        _file: file,
        _guard: guard,
    }
}

/// TLS certificates for the etcd tests, made with the `openssl` command in
/// a directory: two CAs (`good`, `other`), a certificate for 127.0.0.1
/// usable by a server and a client signed by `good` for the server
/// (`server`) and a client (`client`), and one signed by `other` (a
/// `stranger`'s client certificate). Each is `NAME.pem` with `NAME.key`;
/// the CAs `NAME-ca.pem`.
pub struct Certs {
    dir: PathBuf,
}

/// A new P-256 key without a passphrase, for `openssl req`.
const NEW_KEY: &str = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";

impl Certs {
    /// Makes the certificates in `dir`; `None` (the test skipped, or
    /// failed under `CI=true`) without the `openssl` command.
    pub fn make(dir: &Path) -> Option<Certs> {
        if !have_tool("openssl", "version") {
            return None;
        }
        let certs = Certs {
            dir: dir.to_path_buf(),
        };
        certs.ca("good");
        certs.ca("other");
        certs.cert("good", "server");
        certs.cert("good", "client");
        certs.cert("other", "stranger");
        Some(certs)
    }

    /// The file `name` (`good-ca.pem`, `client.key`, …), as a string.
    pub fn path(&self, name: &str) -> String {
        self.dir.join(name).to_str().unwrap().to_string()
    }

    /// `openssl WORDS… EXTRA…` in the directory (WORDS split at spaces).
    fn openssl(&self, words: &str, extra: &[&str]) {
        let out = Command::new("openssl")
            .current_dir(&self.dir)
            .args(words.split(' '))
            .args(extra)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openssl {words} {extra:?}: {}",
            text(&out)
        );
    }

    /// A CA (`NAME-ca.pem`, `NAME-ca.key`).
    fn ca(&self, name: &str) {
        let words = format!("req -x509 {NEW_KEY} -keyout {name}-ca.key -out {name}-ca.pem -days 2");
        self.openssl(&words, &["-subj", &format!("/CN={name} test CA")]);
    }

    /// A certificate `NAME.pem` (key `NAME.key`) signed by the CA `ca`, for
    /// 127.0.0.1, usable by a server and a client.
    fn cert(&self, ca: &str, name: &str) {
        let words = format!("req {NEW_KEY} -keyout {name}.key -out {name}.csr");
        self.openssl(&words, &["-subj", &format!("/CN={name}")]);
        let ext = self.dir.join(format!("{name}.ext"));
        std::fs::write(
            &ext,
            "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n",
        )
        .unwrap();
        let words = format!(
            "x509 -req -in {name}.csr -CA {ca}-ca.pem -CAkey {ca}-ca.key -CAcreateserial \
             -out {name}.pem -days 2 -extfile"
        );
        self.openssl(&words, &[ext.to_str().unwrap()]);
    }

    /// An etcd member (not started) serving TLS only on `client`, with the
    /// `server` certificate and client certificates signed by `good`
    /// required (`--client-cert-auth`), its data in `data`, its log to
    /// `log`.
    pub fn tls_member(&self, client: u16, peer: u16, data: &Path, log: &Path) -> Command {
        let log = std::fs::File::create(log).unwrap();
        let curl = format!("https://127.0.0.1:{client}");
        let purl = format!("http://127.0.0.1:{peer}");
        let mut cmd = Command::new(ETCD);
        cmd.args(["--name", "tls", "--data-dir"])
            .arg(data)
            .args([
                "--listen-client-urls",
                &curl,
                "--advertise-client-urls",
                &curl,
            ])
            .args([
                "--listen-peer-urls",
                &purl,
                "--initial-advertise-peer-urls",
                &purl,
            ])
            .args(["--initial-cluster", &format!("tls={purl}")])
            .args(["--cert-file", &self.path("server.pem")])
            .args(["--key-file", &self.path("server.key")])
            .args([
                "--trusted-ca-file",
                &self.path("good-ca.pem"),
                "--client-cert-auth",
            ])
            .args(["--logger", "zap", "--log-level", "error"])
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        cmd
    }
}
