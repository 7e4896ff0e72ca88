//! `--backend etcd://…` against real etcd servers (`/usr/bin/etcd`, Debian's
//! `etcd-server`), each test starting its own on free loopback ports with a
//! temporary data directory and killing it (by PID) at the end. Several
//! hosts are simulated with `PIDGUARD_ETCD_HOST_ID`. Skipped, with a printed
//! reason, when etcd is not installed.
#![cfg(all(unix, feature = "etcd"))]

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use testkit::etcd::{free_port, have_etcd, serial, Certs, Serial, ETCD};
use testkit::{alive, pidguard, signal, text, tmp, wait_for, Owned, Pinned};

// One at a time (testkit::etcd::serial): the tests measure timings
// against the TTL.

/// One etcd member, killed (by PID) on drop.
struct Member {
    name: String,
    client: u16,
    peer: u16,
    data: PathBuf,
    log: PathBuf,
    initial_cluster: String,
    token: String,
    child: Option<Child>,
}

impl Member {
    fn start(&mut self) {
        assert!(self.child.is_none());
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let client = format!("http://127.0.0.1:{}", self.client);
        let peer = format!("http://127.0.0.1:{}", self.peer);
        let child = Command::new(ETCD)
            .args(["--name", &self.name, "--data-dir"])
            .arg(&self.data)
            .args(["--listen-client-urls", &client])
            .args(["--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer])
            .args(["--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &self.initial_cluster])
            .args(["--initial-cluster-state", "new"])
            .args(["--initial-cluster-token", &self.token])
            .args(["--heartbeat-interval", "50", "--election-timeout", "500"])
            .args(["--logger", "zap", "--log-level", "warn"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    /// Kills the member (SIGKILL, by PID) and reaps it.
    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A static etcd cluster on loopback.
struct Cluster {
    members: Vec<Member>,
    dir: tempfile::TempDir,
}

impl Cluster {
    fn start(n: usize) -> Cluster {
        let dir = tmp();
        let ports: Vec<(u16, u16)> = (0..n).map(|_| (free_port(), free_port())).collect();
        let initial = ports
            .iter()
            .enumerate()
            .map(|(i, (_, p))| format!("m{i}=http://127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",");
        let mut members: Vec<Member> = ports
            .iter()
            .enumerate()
            .map(|(i, (c, p))| Member {
                name: format!("m{i}"),
                client: *c,
                peer: *p,
                data: dir.path().join(format!("m{i}.data")),
                log: dir.path().join(format!("m{i}.log")),
                initial_cluster: initial.clone(),
                token: format!("pidguard-test-{}", ports[0].1),
                child: None,
            })
            .collect();
        for m in &mut members {
            m.start();
        }
        let cluster = Cluster { members, dir };
        cluster.wait_ready();
        cluster
    }

    fn url(&self) -> String {
        let eps = self
            .members
            .iter()
            .map(|m| format!("127.0.0.1:{}", m.client))
            .collect::<Vec<_>>()
            .join(",");
        format!("etcd://{eps}/test")
    }

    /// Until a linearizable read succeeds (the cluster has a leader).
    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let out = status(&self.url(), "probe", "probe", false);
            if out.status.code() == Some(3) {
                return;
            }
            if Instant::now() > deadline {
                let logs: String = self
                    .members
                    .iter()
                    .map(|m| std::fs::read_to_string(&m.log).unwrap_or_default())
                    .collect();
                panic!("etcd did not start: {}\n{logs}", text(&out));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// One etcd member for a test, the etcd tests serialised until the
/// [`Serial`] is dropped (bind it first: it is dropped last); `None` (the
/// test skipped, with the reason) without etcd.
fn one_member() -> Option<(Serial, Cluster)> {
    if !have_etcd() {
        return None;
    }
    let serial = serial();
    Some((serial, Cluster::start(1)))
}

fn as_host<'a>(cmd: &'a mut Command, host: &str) -> &'a mut Command {
    cmd.env("PIDGUARD_ETCD_HOST_ID", host)
}

/// `pidguard run --backend URL --name NAME ARGS… -- sh -c SCRIPT`, owned.
fn run(url: &str, host: &str, name: &str, args: &[&str], script: &str) -> Owned {
    let mut cmd = pidguard();
    as_host(&mut cmd, host)
        .args(["run", "--backend", url, "--name", name])
        .args(args)
        .args(["--", "sh", "-c", script])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    Owned::spawn(&mut cmd)
}

fn status(url: &str, host: &str, name: &str, json: bool) -> Output {
    let mut cmd = pidguard();
    as_host(&mut cmd, host).args(["status", "--backend", url, "--name", name]);
    if json {
        cmd.arg("--json");
    }
    cmd.output().unwrap()
}

fn status_json(url: &str, host: &str, name: &str) -> serde_json::Value {
    let out = status(url, host, name, true);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)))
}

/// Waits for the owned process to exit (up to `limit`), returning its
/// output.
fn finish(mut p: Owned, limit: Duration) -> Output {
    let deadline = Instant::now() + limit;
    while p.0.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "pidguard still running");
        std::thread::sleep(Duration::from_millis(10));
    }
    // Reaped already: take the pipes' rest.
    let mut out = Output {
        status: p.0.wait().unwrap(),
        stdout: Vec::new(),
        stderr: Vec::new(),
    };
    use std::io::Read;
    if let Some(mut s) = p.0.stdout.take() {
        s.read_to_end(&mut out.stdout).unwrap();
    }
    if let Some(mut s) = p.0.stderr.take() {
        s.read_to_end(&mut out.stderr).unwrap();
    }
    out
}

fn read_fence(path: &Path) -> u64 {
    std::fs::read_to_string(path)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

fn sh_quote(p: &Path) -> String {
    format!("'{}'", p.display())
}

#[test]
fn exactly_one_of_16_hosts_runs_and_waiters_take_turns() {
    if !have_etcd() {
        return;
    }
    let _serial = serial();
    let cluster = Cluster::start(1);
    let url = cluster.url();
    let log = cluster.dir.path().join("log");
    // The winner holds on until the test says so: after the 15 others have
    // exited, so that a racer started late on a loaded machine still meets
    // a held lock.
    let release = cluster.dir.path().join("release");
    let script = format!(
        "echo $PIDGUARD_FENCE >> {}; while [ ! -e {} ]; do sleep 0.05; done",
        sh_quote(&log),
        sh_quote(&release)
    );
    let mut racers: Vec<Owned> = (0..16)
        .map(|i| run(&url, &format!("host-{i}"), "job", &[], &script))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    while racers
        .iter_mut()
        .map(|r| r.0.try_wait().unwrap().is_some())
        .filter(|exited| *exited)
        .count()
        < 15
    {
        assert!(Instant::now() < deadline, "the 15 losers did not all exit");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::fs::write(&release, "").unwrap();
    let outs: Vec<Output> = racers
        .into_iter()
        .map(|p| finish(p, Duration::from_secs(30)))
        .collect();
    let codes: Vec<Option<i32>> = outs.iter().map(|o| o.status.code()).collect();
    assert_eq!(
        codes.iter().filter(|c| **c == Some(0)).count(),
        1,
        "{codes:?}"
    );
    assert_eq!(
        codes.iter().filter(|c| **c == Some(75)).count(),
        15,
        "{codes:?}"
    );
    let busy = outs.iter().find(|o| o.status.code() == Some(75)).unwrap();
    assert!(
        text(busy).contains("is held by host host-"),
        "{}",
        text(busy)
    );
    let lines = std::fs::read_to_string(&log).unwrap();
    assert_eq!(lines.lines().count(), 1, "{lines}");
    let first: u64 = lines.trim().parse().unwrap();

    // With --wait, four hosts run one after another, never overlapping,
    // each with a greater fence.
    let log2 = cluster.dir.path().join("log2");
    let l = sh_quote(&log2);
    let script =
        format!("echo start $PIDGUARD_FENCE >> {l}; sleep 0.3; echo end $PIDGUARD_FENCE >> {l}");
    let waiters: Vec<Owned> = (0..4)
        .map(|i| run(&url, &format!("w-{i}"), "job", &["--wait", "30s"], &script))
        .collect();
    for w in waiters {
        let out = finish(w, Duration::from_secs(30));
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    }
    let lines: Vec<String> = std::fs::read_to_string(&log2)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(lines.len(), 8, "{lines:?}");
    let mut last = first;
    for pair in lines.chunks(2) {
        let s = pair[0].strip_prefix("start ").expect("a start line");
        let e = pair[1].strip_prefix("end ").expect("then its end line");
        assert_eq!(s, e, "overlap: {lines:?}");
        let fence: u64 = s.parse().unwrap();
        assert!(fence > last, "fences must increase: {lines:?}");
        last = fence;
    }
}

#[test]
fn a_killed_holder_is_replaced_within_ttl_plus_one_second() {
    if !have_etcd() {
        return;
    }
    let _serial = serial();
    let cluster = Cluster::start(1);
    let url = cluster.url();
    let dir = cluster.dir.path();
    let (fa, fb) = (dir.join("a.fence"), dir.join("b.fence"));
    let mut a = run(
        &url,
        "host-a",
        "job",
        &["--ttl", "2s"],
        &format!("echo $PIDGUARD_FENCE > {}; exec sleep 60", sh_quote(&fa)),
    );
    wait_for("host-a's command", || fa.exists());
    let mut holder = serde_json::Value::Null;
    wait_for("the command's PID in the holder value", || {
        holder = status_json(&url, "host-c", "job");
        holder["state"] == "running"
    });
    let command = holder["pid"].as_i64().unwrap() as i32;
    assert_eq!(holder["supervisor_pid"].as_i64().unwrap() as i32, a.pid());
    assert_eq!(holder["host"], "host-a");
    let b = run(
        &url,
        "host-b",
        "job",
        &["--ttl", "2s", "--wait", "30s"],
        &format!("echo $PIDGUARD_FENCE > {}; exec sleep 60", sh_quote(&fb)),
    );
    std::thread::sleep(Duration::from_millis(500));
    assert!(!fb.exists(), "host-b ran while host-a held the lock");

    // The crash of host-a: SIGKILL its supervisor and its command.
    let killed = Instant::now();
    a.0.kill().unwrap();
    // The command may already be gone: it dies with its supervisor
    // (PR_SET_PDEATHSIG); a "no such process" is fine.
    let _ = std::process::Command::new("kill")
        .args(["-KILL", &command.to_string()])
        .stderr(std::process::Stdio::null())
        .status();
    let _ = a.0.wait();
    wait_for("host-b's command", || {
        std::fs::metadata(&fb).is_ok_and(|m| m.len() > 0)
    });
    let took = killed.elapsed();
    assert!(
        took <= Duration::from_secs(3),
        "takeover took {took:?}, more than TTL (2 s) + 1 s"
    );
    eprintln!("takeover after SIGKILL: {took:?}");
    assert!(read_fence(&fb) > read_fence(&fa));
    assert!(!alive(command));
    let now = status_json(&url, "host-c", "job");
    assert_eq!(now["host"], "host-b");
    drop(b);
}

#[test]
fn status_and_stop_work_from_another_host() {
    if !have_etcd() {
        return;
    }
    let _serial = serial();
    let cluster = Cluster::start(1);
    let url = cluster.url();
    let child = cluster.dir.path().join("child");
    let a = run(
        &url,
        "host-a",
        "job",
        &[],
        &format!("sleep 60 & echo $! > {}; wait", sh_quote(&child)),
    );
    let mut holder = serde_json::Value::Null;
    wait_for("host-a holding with its command's PID", || {
        holder = status_json(&url, "host-b", "job");
        holder["state"] == "running"
    });
    let pid = holder["pid"].as_i64().unwrap() as i32;
    let fence = holder["fence"].as_u64().unwrap();
    assert_eq!(
        std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .unwrap()
            .trim(),
        "sh"
    );
    assert!(holder["since"].as_f64().unwrap() > 1.0e9, "{holder}");
    let out = status(&url, "host-b", "job", false);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("running on host host-a"), "{t}");
    assert!(t.contains(&format!("PID {pid}")), "{t}");
    assert!(t.contains(&format!("fence {fence}")), "{t}");
    assert!(t.contains(", since 20"), "{t}");

    let started = Instant::now();
    let mut cmd = pidguard();
    let out = as_host(&mut cmd, "host-b")
        .args([
            "stop",
            "--backend",
            &url,
            "--name",
            "job",
            "--timeout",
            "5s",
        ])
        .output()
        .unwrap();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("stopped host host-a"), "{t}");
    assert!(started.elapsed() < Duration::from_secs(5), "{t}");
    let a_out = finish(a, Duration::from_secs(10));
    // The command was killed by SIGTERM: pidguard exits 128+15.
    assert_eq!(a_out.status.code(), Some(143), "{}", text(&a_out));
    assert!(
        text(&a_out).contains("stop requested from host host-b"),
        "{}",
        text(&a_out)
    );
    assert!(!alive(pid));
    // The whole job was stopped, not only the command.
    let child: i32 = std::fs::read_to_string(&child)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(!alive(child), "the command's child survived the stop");
    let out = status(&url, "host-b", "job", false);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    // Nothing to stop: exit 0.
    let mut cmd = pidguard();
    let out = as_host(&mut cmd, "host-b")
        .args(["stop", "--backend", &url, "--name", "job"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("not running"), "{}", text(&out));
}

#[test]
fn three_members_survive_one_loss_and_quorum_loss_stops_the_holder() {
    if !have_etcd() {
        return;
    }
    let _serial = serial();
    let mut cluster = Cluster::start(3);
    let url = cluster.url();
    let dir = cluster.dir.path().to_path_buf();
    let (fa, fb) = (dir.join("a.fence"), dir.join("b.fence"));
    let child = dir.join("a.child");
    // TTL 4 s: the member stopped first may be the leader, and an election
    // (up to about 1 s here) plus a renewal sent to the dead endpoint must
    // fit in the TTL on a loaded machine. host-a's job: the command and a
    // child in its group that ignores SIGTERM.
    let a = run(
        &url,
        "host-a",
        "job",
        &["--ttl", "4s"],
        &format!(
            "(trap '' TERM; exec sleep 120) & echo $! > {}; echo $PIDGUARD_FENCE > {}; \
             exec sleep 120",
            sh_quote(&child),
            sh_quote(&fa)
        ),
    );
    wait_for("host-a's command", || {
        std::fs::metadata(&fa).is_ok_and(|m| m.len() > 0)
    });
    let mut holder = serde_json::Value::Null;
    wait_for("the command's PID in the holder value", || {
        holder = status_json(&url, "host-c", "job");
        holder["state"] == "running"
    });
    let command = holder["pid"].as_i64().unwrap() as i32;

    // One member down (the first endpoint, the one host-a talks to first):
    // the lock keeps working.
    cluster.members[0].stop();
    std::thread::sleep(Duration::from_secs(3));
    let mut a = a;
    assert!(
        a.0.try_wait().unwrap().is_none(),
        "host-a's supervisor exited"
    );
    assert!(alive(command));
    let now = status_json(&url, "host-c", "job");
    assert_eq!(now["host"], "host-a", "{now}");
    assert_eq!(now["fence"].as_u64(), Some(read_fence(&fa)));
    let busy = finish(
        run(&url, "host-c", "job", &[], "true"),
        Duration::from_secs(20),
    );
    assert_eq!(busy.status.code(), Some(75), "{}", text(&busy));

    // A waiting contender, then quorum lost.
    let b = run(
        &url,
        "host-b",
        "job",
        &["--ttl", "2s", "--wait", "60s"],
        &format!("echo $PIDGUARD_FENCE > {}; exec sleep 120", sh_quote(&fb)),
    );
    std::thread::sleep(Duration::from_millis(500));
    let lost = Instant::now();
    cluster.members[1].stop();
    let a_out = finish(a, Duration::from_secs(20));
    let took = lost.elapsed();
    // The holder gives up at most one TTL (4 s) after its last confirmed
    // renewal. That renewal can come up to two election timeouts (1 s)
    // after the member went down (the last member, if it was the leader,
    // renews until its quorum check fails); plus 1 s of slack for a loaded
    // machine.
    assert!(
        took <= Duration::from_secs(6),
        "the holder stopped {took:?} after quorum loss"
    );
    eprintln!("holder stopped {took:?} after quorum loss");
    assert_eq!(a_out.status.code(), Some(69), "{}", text(&a_out));
    assert!(text(&a_out).contains("lost the lock"), "{}", text(&a_out));
    assert!(!alive(command));
    let child: i32 = std::fs::read_to_string(&child)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(!alive(child), "the command's child survived the lost lock");
    // No second holder while there is no quorum.
    std::thread::sleep(Duration::from_secs(3));
    assert!(!fb.exists(), "host-b started without a quorum");

    // Quorum back: host-b takes over, with a greater fence.
    cluster.members[1].start();
    let back = Instant::now();
    wait_for("host-b's command", || {
        std::fs::metadata(&fb).is_ok_and(|m| m.len() > 0)
    });
    eprintln!(
        "host-b took over {:?} after quorum returned",
        back.elapsed()
    );
    assert!(read_fence(&fb) > read_fence(&fa));
    drop(b);
}

#[test]
fn unreachable_etcd_is_exit_69_for_run_and_4_for_status() {
    // A free port: nothing listens there.
    let url = format!("etcd://127.0.0.1:{}/test", free_port());
    let marker = tmp();
    let ran = marker.path().join("ran");
    let out = pidguard()
        .args(["run", "--backend", &url, "--name", "job", "--", "touch"])
        .arg(&ran)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(69), "{}", text(&out));
    assert!(
        text(&out).contains("check that etcd runs"),
        "{}",
        text(&out)
    );
    assert!(!ran.exists(), "the command ran without the lock");
    let out = status(&url, "host-a", "job", false);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(
        text(&out).contains("unknown: cannot read /test/lock/job"),
        "{}",
        text(&out)
    );
    let out = pidguard()
        .args(["run", "--backend", &url, "-p", "/tmp/x.pid", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

#[test]
fn a_schedule_the_lease_cannot_fit_is_refused_before_anything_runs() {
    // Refused before etcd is asked (nothing listens at this URL): exit 2,
    // saying why, the default for the TTL and the TTL it would need; the
    // command never runs.
    let url = format!("etcd://127.0.0.1:{}/test", free_port());
    let marker = tmp();
    let ran = marker.path().join("ran");
    for (ttl, schedule, why) in [
        (
            "3s",
            "TERM/10/KILL/5",
            "it needs 15.0 s (with 0.3 s to confirm the KILL), but the lock can be given up at \
             most 1.2 s before that",
        ),
        ("10s", "TERM/2", "it does not end with KILL"),
        ("10s", "TERM/1/forever/KILL/1", "it repeats forever"),
    ] {
        let out = pidguard()
            .args(["run", "--backend", &url, "--name", "job", "--ttl", ttl])
            .args(["--schedule", schedule, "--", "touch"])
            .arg(&ran)
            .output()
            .unwrap();
        let t = text(&out);
        assert_eq!(out.status.code(), Some(2), "{schedule}: {t}");
        assert!(
            t.contains(&format!("invalid --schedule {schedule} with --backend")),
            "{t}"
        );
        assert!(t.contains(why), "{schedule}: expected {why:?}: {t}");
        assert!(
            t.contains("the command must be gone before etcd may expire the lease"),
            "{t}"
        );
        let default = if ttl == "3s" {
            "TERM/700ms/KILL/300ms"
        } else {
            "TERM/2333ms/KILL/1"
        };
        assert!(
            t.contains(&format!("The default for this TTL is {default}")),
            "{t}"
        );
        if ttl == "3s" {
            assert!(
                t.contains("give a shorter schedule or --ttl 32s or more"),
                "{t}"
            );
        }
        assert!(!ran.exists(), "the command ran");
    }
}

// ---------------------------------------------------------------------------
// One host's link to etcd: a TCP proxy that can be slowed down or cut

/// A TCP proxy in front of an etcd member's client port, standing for one
/// host's network link: it copies bytes both ways (HTTP/2 gRPC, untouched),
/// each chunk held back by an added latency per direction (a slow link: a
/// delay line, so latency does not pile up), and [`Proxy::cut`] partitions
/// the host: open connections are shut down, new ones are accepted and
/// black-holed (never answered), until [`Proxy::restore`] heals the link.
/// Every thread ends, and every socket is closed, on drop.
struct Proxy {
    addr: std::net::SocketAddr,
    shared: Arc<ProxyShared>,
    acceptor: Option<JoinHandle<()>>,
}

#[derive(Default)]
struct ProxyShared {
    /// Added latency etcd→client, in ms.
    down_ms: AtomicU64,
    /// Added latency client→etcd, in ms.
    up_ms: AtomicU64,
    /// Set (under `links`) by [`Proxy::cut`], cleared by
    /// [`Proxy::restore`].
    cut: AtomicBool,
    /// Connections forwarded to etcd so far.
    forwarded: AtomicU64,
    /// Bytes read from either side so far.
    bytes: AtomicU64,
    /// Set (under `links`) on drop.
    stop: AtomicBool,
    links: Mutex<Links>,
    /// Every thread started for a connection, joined on drop.
    threads: Mutex<Vec<JoinHandle<()>>>,
}

#[derive(Default)]
struct Links {
    /// The open connections (a link lives while one of its four threads
    /// does), to shut down on cut and on drop.
    open: Vec<Weak<Link>>,
    /// Connections accepted while cut: held open, never answered (closed
    /// by [`Proxy::restore`]).
    black_holed: Vec<TcpStream>,
}

struct Link {
    client: TcpStream,
    upstream: TcpStream,
}

impl Link {
    fn shut(&self) {
        let _ = self.client.shutdown(Shutdown::Both);
        let _ = self.upstream.shutdown(Shutdown::Both);
    }
}

fn locked<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Proxy {
    /// A proxy on a free loopback port forwarding to `127.0.0.1:port`.
    fn start(port: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let target: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
        let shared = Arc::new(ProxyShared::default());
        let s = shared.clone();
        let acceptor = std::thread::Builder::new()
            .name("proxy-accept".into())
            .spawn(move || accept_loop(listener, target, s))
            .unwrap();
        Proxy {
            addr,
            shared,
            acceptor: Some(acceptor),
        }
    }

    /// The backend URL reaching etcd through this proxy.
    fn url(&self) -> String {
        format!("etcd://{}/test", self.addr)
    }

    /// The added latency of each chunk etcd→client (answers) and
    /// client→etcd (requests), for chunks read from now on.
    fn set_delay(&self, down: Duration, up: Duration) {
        let ms = |d: Duration| d.as_millis() as u64;
        self.shared.down_ms.store(ms(down), SeqCst);
        self.shared.up_ms.store(ms(up), SeqCst);
    }

    /// Partitions the host from etcd: shuts down every open connection
    /// (anything still held back is dropped) and black-holes new ones.
    fn cut(&self) {
        let mut links = locked(&self.shared.links);
        self.shared.cut.store(true, SeqCst);
        for link in links.open.drain(..).filter_map(|w| w.upgrade()) {
            link.shut();
        }
    }

    /// Heals a [`Proxy::cut`]: new connections are forwarded again; those
    /// black-holed meanwhile are closed (the host sees them fail and
    /// connects anew, as after a connection timed out).
    fn restore(&self) {
        let mut links = locked(&self.shared.links);
        self.shared.cut.store(false, SeqCst);
        for s in links.black_holed.drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    /// Connections forwarded to etcd so far.
    fn connections(&self) -> u64 {
        self.shared.forwarded.load(SeqCst)
    }

    /// Waits until at least `connections` connections have been forwarded
    /// and no byte has gone through for 300 ms (the host is idle: waiting
    /// on a watch, nothing to retry; HTTP/2 keep-alive pings come every
    /// 5 s).
    fn wait_quiet(&self, connections: u64, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut last = (u64::MAX, Instant::now());
        loop {
            let (c, b) = (self.connections(), self.shared.bytes.load(SeqCst));
            if b != last.0 {
                last = (b, Instant::now());
            } else if c >= connections && last.1.elapsed() >= Duration::from_millis(300) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: {c} connections forwarded, {b} bytes"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        {
            let mut links = locked(&self.shared.links);
            self.shared.stop.store(true, SeqCst);
            for link in links.open.drain(..).filter_map(|w| w.upgrade()) {
                link.shut();
            }
            for s in links.black_holed.drain(..) {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
        // Wake the acceptor (it sees `stop` and ends), then join every
        // thread: none can be added once the acceptor has ended.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(a) = self.acceptor.take() {
            let _ = a.join();
        }
        for t in locked(&self.shared.threads).drain(..) {
            let _ = t.join();
        }
    }
}

fn accept_loop(listener: TcpListener, target: std::net::SocketAddr, shared: Arc<ProxyShared>) {
    for client in listener.incoming() {
        let Ok(client) = client else { continue };
        let mut links = locked(&shared.links);
        if shared.stop.load(SeqCst) {
            return;
        }
        links.open.retain(|w| w.strong_count() > 0);
        if shared.cut.load(SeqCst) {
            links.black_holed.push(client);
            continue;
        }
        // Registered under the lock that `cut` takes: no connection slips
        // through a cut.
        let Ok(upstream) = TcpStream::connect_timeout(&target, Duration::from_secs(1)) else {
            continue;
        };
        let _ = client.set_nodelay(true);
        let _ = upstream.set_nodelay(true);
        let link = Arc::new(Link { client, upstream });
        links.open.push(Arc::downgrade(&link));
        shared.forwarded.fetch_add(1, SeqCst);
        drop(links);
        let mut threads = locked(&shared.threads);
        // Reap the threads of connections that are over.
        let (done, running): (Vec<_>, Vec<_>) = threads
            .drain(..)
            .partition(|t: &JoinHandle<()>| t.is_finished());
        *threads = running;
        for t in done {
            let _ = t.join();
        }
        threads.extend(pump(&link, &shared, true));
        threads.extend(pump(&link, &shared, false));
    }
}

/// Copies one direction of `link` (`up`: client→etcd) through a delay
/// line: a reader stamps each chunk with when it is due, a writer sends it
/// then. An end of stream is passed on as a half close.
fn pump(link: &Arc<Link>, shared: &Arc<ProxyShared>, up: bool) -> [JoinHandle<()>; 2] {
    let (tx, rx) = std::sync::mpsc::channel::<(Instant, Vec<u8>)>();
    let (l, s) = (link.clone(), shared.clone());
    let reader = std::thread::spawn(move || {
        let (mut src, delay) = if up {
            (&l.client, &s.up_ms)
        } else {
            (&l.upstream, &s.down_ms)
        };
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match src.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    s.bytes.fetch_add(n as u64, SeqCst);
                    let due = Instant::now() + Duration::from_millis(delay.load(SeqCst));
                    if tx.send((due, buf[..n].to_vec())).is_err() {
                        return;
                    }
                }
            }
        }
    });
    let (l, s) = (link.clone(), shared.clone());
    let writer = std::thread::spawn(move || {
        let mut dst = if up { &l.upstream } else { &l.client };
        let gone = || s.cut.load(SeqCst) || s.stop.load(SeqCst);
        for (due, chunk) in rx {
            loop {
                if gone() {
                    return;
                }
                let now = Instant::now();
                if now >= due {
                    break;
                }
                std::thread::sleep((due - now).min(Duration::from_millis(10)));
            }
            if dst.write_all(&chunk).is_err() {
                l.shut();
                return;
            }
        }
        let _ = dst.shutdown(Shutdown::Write);
    });
    [reader, writer]
}

/// The lines of a log the tests' commands append to (none if it does not
/// exist yet).
fn log_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// A command for `host` that appends `start HOST FENCE [NOTE]` to `log`,
/// runs `body`, then appends `end HOST FENCE`; on SIGTERM (the lost-lock
/// schedule) it appends `end HOST FENCE term` and exits 143. `body` must
/// wait in short steps (`sleep 0.05`): sh runs the trap only once its
/// foreground child has exited, and a short `sleep` left behind by a
/// SIGKILLed shell ends by itself at once.
fn logged(log: &Path, host: &str, note: &str, body: &str) -> String {
    let l = sh_quote(log);
    format!(
        "trap \"echo end {host} $PIDGUARD_FENCE term >> {l}; exit 143\" TERM; \
         echo start {host} $PIDGUARD_FENCE {note} >> {l}; {body}; \
         echo end {host} $PIDGUARD_FENCE >> {l}"
    )
}

/// A parsed log line: (`start`/`end`, host, fence, rest).
fn parse_line(line: &str) -> (&str, &str, u64, &str) {
    let mut f = line.splitn(4, ' ');
    let (what, host, fence) = (f.next().unwrap(), f.next().unwrap(), f.next().unwrap());
    let fence = fence
        .parse()
        .unwrap_or_else(|_| panic!("no fence in {line:?}"));
    (what, host, fence, f.next().unwrap_or(""))
}

/// A command that runs until it is stopped (for `logged`).
const FOREVER: &str = "while :; do sleep 0.05; done";

/// The set-up of the tests that put a host behind a [`Proxy`]: one etcd
/// member, a proxy in front of it, and the path of the shared log. `None`
/// (the test is skipped, with the reason printed) without etcd.
struct ProxyScene {
    // (Tests take it apart with `_serial` bound first, so that it is
    // dropped last: the tests stay serialised until the rest is gone.)
    _serial: Serial,
    cluster: Cluster,
    proxy: Proxy,
    log: PathBuf,
    url: String,
}

impl ProxyScene {
    fn start() -> Option<ProxyScene> {
        if !have_etcd() {
            return None;
        }
        let serial = serial();
        let cluster = Cluster::start(1);
        Some(ProxyScene {
            url: cluster.url(),
            proxy: Proxy::start(cluster.members[0].client),
            log: cluster.dir.path().join("log"),
            cluster,
            _serial: serial,
        })
    }
}

/// The log of a handover from host-a to host-b, in the order written:
/// host-a's command started, ended on SIGTERM, then host-b's started, with
/// a greater fence. Returns (host-a's fence, host-b's fence, the rest of
/// host-b's start line) and the lines for messages.
fn handover(log: &Path) -> (u64, u64, String, Vec<String>) {
    let lines = log_lines(log);
    assert_eq!(lines.len(), 3, "{lines:?}");
    let (w0, h0, fa, _) = parse_line(&lines[0]);
    let (w1, h1, fa_end, why) = parse_line(&lines[1]);
    let (w2, h2, fb, rest) = parse_line(&lines[2]);
    assert_eq!((w0, h0), ("start", "host-a"), "{lines:?}");
    assert_eq!(
        (w1, h1, fa_end, why),
        ("end", "host-a", fa, "term"),
        "{lines:?}"
    );
    assert_eq!((w2, h2), ("start", "host-b"), "{lines:?}");
    assert!(fb > fa, "fences must increase: {lines:?}");
    let rest = rest.to_string();
    (fa, fb, rest, lines)
}

#[test]
fn a_cut_off_holder_stops_before_another_host_takes_over() {
    let Some(scene) = ProxyScene::start() else {
        return;
    };
    // Bound in this order, dropped in reverse: the serial lock last.
    let ProxyScene {
        _serial,
        cluster: _cluster,
        proxy,
        log,
        url,
    } = scene;
    // host-a reaches etcd through the proxy only.
    let mut a = run(
        &proxy.url(),
        "host-a",
        "job",
        &["--ttl", "3s"],
        &logged(&log, "host-a", "", FOREVER),
    );
    wait_for("host-a's command", || log_lines(&log).len() == 1);
    let mut holder = serde_json::Value::Null;
    wait_for("the command's PID in the holder value", || {
        holder = status_json(&url, "host-c", "job");
        holder["state"] == "running"
    });
    let a_cmd = holder["pid"].as_i64().unwrap() as i32;
    assert_eq!(holder["host"], "host-a");
    // host-b, direct to etcd, waits. When its command starts, it notes the
    // state of host-a's command: gone, or Z (exited, not yet reaped by its
    // supervisor). Anything else would be two commands at once.
    let note = format!("a=$(cut -d' ' -f3 /proc/{a_cmd}/stat 2>/dev/null); echo ${{a:-gone}}");
    let mut b = run(
        &url,
        "host-b",
        "job",
        &["--ttl", "3s", "--wait", "30s"],
        &logged(&log, "host-b", &format!("$({note})"), FOREVER),
    );
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        a.0.try_wait().unwrap().is_none(),
        "host-a's supervisor exited"
    );
    assert!(
        b.0.try_wait().unwrap().is_none(),
        "host-b's supervisor exited"
    );
    assert_eq!(log_lines(&log).len(), 1, "{:?}", log_lines(&log));

    // The partition of host-a alone; etcd stays up for host-b.
    let cut = Instant::now();
    proxy.cut();
    let (mut a_end, mut b_start, mut a_exit) = (None, None, None);
    let deadline = cut + Duration::from_secs(20);
    while a_end.is_none() || b_start.is_none() || a_exit.is_none() {
        let now = Instant::now();
        let lines = log_lines(&log);
        let seen = |prefix: &str| lines.iter().any(|l| l.starts_with(prefix));
        if a_end.is_none() && seen("end host-a") {
            a_end = Some(now - cut);
        }
        if b_start.is_none() && seen("start host-b") {
            b_start = Some(now - cut);
        }
        if a_exit.is_none() && a.0.try_wait().unwrap().is_some() {
            a_exit = Some(now - cut);
        }
        assert!(
            now < deadline,
            "after the cut: host-a's command ended {a_end:?}, host-a's supervisor exited \
             {a_exit:?}, host-b's command started {b_start:?}; log {lines:?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let (a_end, b_start, a_exit) = (a_end.unwrap(), b_start.unwrap(), a_exit.unwrap());
    eprintln!(
        "after the cut: host-a's command ended at {a_end:?}, host-a's supervisor exited at \
         {a_exit:?}, host-b's command started at {b_start:?}"
    );
    let a_out = finish(a, Duration::from_secs(1));
    assert_eq!(a_out.status.code(), Some(69), "{}", text(&a_out));
    assert!(text(&a_out).contains("lost the lock"), "{}", text(&a_out));
    assert!(!alive(a_cmd));

    // In the order written (appends on one machine): host-a's command ended
    // before host-b's started, and host-b's fence is greater.
    let (_, _, a_state, lines) = handover(&log);
    assert!(
        a_state == "gone" || a_state == "Z",
        "host-a's command was still running (state {a_state}) when host-b's started: {lines:?}"
    );
    // host-a stops within one TTL (less a margin) of its last confirmed
    // renewal, sent at most TTL/3 before the cut; etcd expires the lease
    // one TTL (+ up to 0.5 s) after that renewal. Slack for a loaded
    // machine on top.
    assert!(
        a_end <= Duration::from_millis(3500),
        "host-a's command ended {a_end:?} after the cut (TTL 3 s)"
    );
    assert!(
        b_start <= Duration::from_secs(5),
        "host-b's command started {b_start:?} after the cut (TTL 3 s)"
    );
    // host-b's supervisor passes SIGTERM on: its command logs its end
    // (and leaves no `sleep` behind) and exits 143.
    signal(b.pid(), "TERM");
    let b_out = finish(b, Duration::from_secs(10));
    assert_eq!(b_out.status.code(), Some(143), "{}", text(&b_out));
}

#[test]
fn a_slow_link_never_gives_two_holders() {
    let Some(scene) = ProxyScene::start() else {
        return;
    };
    // Bound in this order, dropped in reverse: the serial lock last.
    let ProxyScene {
        _serial,
        cluster: _cluster,
        proxy,
        log,
        url,
    } = scene;
    let work = "i=0; while [ $i -lt 10 ]; do sleep 0.05; i=$((i+1)); done";
    // host-a behind the slow link, host-b direct; each runs its command
    // again and again, host-b pausing between runs to leave host-a room.
    let hosts = [
        ("host-a", proxy.url(), Duration::from_millis(50)),
        ("host-b", url.clone(), Duration::from_millis(1000)),
    ];
    // Phases: answers to host-a 1.2 s late (0.6 × TTL 2 s: its lease comes
    // back with less than half the TTL left, so it never gets a usable
    // lease, which pidguard must notice before creating the key), then
    // 0.3 s late (it can take the lock; its renewals are answered late).
    let phases = [
        (Duration::from_millis(1200), Duration::from_secs(10)),
        (Duration::from_millis(300), Duration::from_secs(8)),
    ];
    let mut current: [Option<(Owned, usize)>; 2] = [None, None];
    let mut next_start = [Instant::now(); 2];
    // (host index, phase, exit code, output) for every run.
    let mut runs: Vec<(usize, usize, Option<i32>, String)> = Vec::new();
    // When the test saw each log line appear (polling), for the report.
    let mut seen: Vec<Duration> = Vec::new();
    let started = Instant::now();
    let mut phase_end = started;
    for (phase, (delay, length)) in phases.iter().enumerate() {
        proxy.set_delay(*delay, Duration::ZERO);
        phase_end += *length;
        loop {
            let now = Instant::now();
            let n = log_lines(&log).len();
            seen.resize(n.max(seen.len()), now - started);
            for (i, (host, url, pause)) in hosts.iter().enumerate() {
                if let Some((p, _)) = &mut current[i] {
                    if p.0.try_wait().unwrap().is_some() {
                        let (p, ph) = current[i].take().unwrap();
                        let out = finish(p, Duration::from_secs(1));
                        runs.push((i, ph, out.status.code(), text(&out)));
                        next_start[i] = now + *pause;
                    }
                }
                if current[i].is_none() && now < phase_end && now >= next_start[i] {
                    let args = ["--ttl", "2s", "--wait", "4s"];
                    let p = run(url, host, "job", &args, &logged(&log, host, "", work));
                    current[i] = Some((p, phase));
                }
            }
            let last = phase + 1 == phases.len();
            if now >= phase_end && (!last || current.iter().all(Option::is_none)) {
                break;
            }
            assert!(
                now < started + Duration::from_secs(40),
                "the runs did not end: {runs:?}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    let lines = log_lines(&log);
    seen.resize(lines.len(), started.elapsed());
    // Commands started per phase (by when the test saw the start line)
    // and host.
    let phase_of = |at: Duration| {
        let mut end = Duration::ZERO;
        phases
            .iter()
            .position(|(_, length)| {
                end += *length;
                at < end
            })
            .unwrap_or(phases.len() - 1)
    };
    let mut ran = vec![[0usize; 2]; phases.len()];
    for (line, at) in lines.iter().zip(&seen) {
        let (w, host, ..) = parse_line(line);
        if w == "start" {
            ran[phase_of(*at)][usize::from(host == "host-b")] += 1;
        }
    }
    for ((delay, _), [a, b]) in phases.iter().zip(&ran) {
        eprintln!(
            "answers to host-a {delay:?} late: host-a ran its command {a} times, host-b {b} times"
        );
    }
    for (i, (host, ..)) in hosts.iter().enumerate() {
        let codes: Vec<Option<i32>> = runs.iter().filter(|r| r.0 == i).map(|r| r.2).collect();
        eprintln!("{host}: exit codes {codes:?}");
    }
    for (line, at) in lines.iter().zip(&seen) {
        eprintln!("{:>6.2} s: {line}", at.as_secs_f64());
    }
    // No two commands at once: in the order written (appends on one
    // machine), each start is followed by its own end; every holder's
    // fence is greater than the one before.
    let mut last_fence = 0;
    for pair in lines.chunks(2) {
        let (w, host, fence, _) = parse_line(&pair[0]);
        assert_eq!(w, "start", "{lines:?}");
        assert_eq!(pair.len(), 2, "a run without its end: {lines:?}");
        let (w2, host2, fence2, _) = parse_line(&pair[1]);
        assert_eq!(
            (w2, host2, fence2),
            ("end", host, fence),
            "overlap: {lines:?}"
        );
        assert!(fence > last_fence, "fences must increase: {lines:?}");
        last_fence = fence;
    }
    for (i, ph, code, out) in &runs {
        // Ran (0), timed out waiting (75), or gave up (69): a lease that
        // came too late, or the lock lost while the command ran (stopped
        // by the lost-lock schedule, which the log shows as an end line).
        assert!(
            matches!(code, Some(0 | 69 | 75)),
            "{} in phase {ph}: exit {code:?}: {out}",
            hosts[*i].0
        );
        if *i == 1 {
            assert_ne!(*code, Some(69), "host-b has a good link: {out}");
        }
        if *i == 0 && *ph == 0 && *code == Some(69) {
            // 1.2 s late: the lease comes back with less than half its TTL
            // left, so host-a gives it back without creating the key (it
            // never keeps host-b waiting in vain).
            assert!(
                out.contains("answered too slowly") && out.contains("once the lease was granted"),
                "host-a in phase 0: {out}"
            );
        }
        if !out.is_empty() {
            eprintln!(
                "{} in phase {ph}: exit {code:?}: {}",
                hosts[*i].0,
                out.trim()
            );
        }
    }
    // Every command that started is in the log, and only those.
    for (i, (host, ..)) in hosts.iter().enumerate() {
        let started = lines
            .iter()
            .filter(|l| l.starts_with(&format!("start {host} ")))
            .count();
        let ran = runs
            .iter()
            .filter(|r| r.0 == i)
            .filter(|r| r.2 == Some(0) || r.3.contains("while the command ran"))
            .count();
        assert_eq!(started, ran, "{host}: {lines:?} {runs:?}");
    }
    // The slow host neither starves nor breaks the fast one: host-b runs
    // every 1.5 to 2 s (its pause, its command, host-a's turns). Whether
    // host-a runs at 0.3 s late is not asserted: it may lose every race
    // (at 1.2 s late it never runs, asserted above).
    // At 1.2 s late host-a never starts a command (a run launched then may
    // still start one once the link is fast again: it counts in phase 1),
    // and it gives up at least once, saying why (checked above).
    assert_eq!(ran[0][0], 0, "host-a ran on a 1.2 s late link: {lines:?}");
    assert!(
        runs.iter().any(|r| r.0 == 0 && r.1 == 0 && r.2 == Some(69)),
        "host-a never gave up in phase 0: {runs:?}"
    );
    for (min, ((delay, _), [_, b])) in [3, 2].into_iter().zip(phases.iter().zip(&ran)) {
        assert!(
            *b >= min,
            "host-b ran only {b} times while host-a's link was {delay:?} late: {lines:?}"
        );
    }
}

// ---------------------------------------------------------------------------
// etcd's JSON gateway (no etcdctl here): writes and compactions behind a
// waiter's back

/// Standard base64 (the gateway's encoding of keys and values).
fn base64(data: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// `POST path` with a JSON body to the gRPC JSON gateway on an etcd
/// member's client port, as a raw HTTP/1.1 request: the HTTP status and
/// the JSON answer.
fn gateway(port: u16, path: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
    let body = body.to_string();
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)
        .unwrap_or_else(|e| panic!("POST {path}: no answer from etcd's gateway: {e}"));
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = raw
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("POST {path}: not an HTTP answer: {raw:?}"));
    let code: u16 = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("POST {path}: no HTTP status: {raw:?}"));
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    let mut text = String::new();
    if chunked {
        let mut rest = rest;
        loop {
            let (size, after) = rest.split_once("\r\n").unwrap_or(("0", ""));
            let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if size == 0 || after.len() < size {
                break;
            }
            text.push_str(&after[..size]);
            rest = after[size..].trim_start_matches("\r\n");
        }
    } else {
        text = rest.to_owned();
    }
    let json = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("POST {path}: HTTP {code}, not JSON ({e}): {raw:?}"));
    (code, json)
}

/// The revision in a gateway answer's header (an int64: a JSON string).
fn header_revision(json: &serde_json::Value) -> u64 {
    json["header"]["revision"]
        .as_str()
        .and_then(|r| r.parse().ok())
        .unwrap_or_else(|| panic!("no header.revision in {json}"))
}

/// `n` puts to keys `/test/other/TAG-i` (under the prefix, not the lock's
/// key): the revisions of the first and the last.
fn put_others(port: u16, tag: &str, n: usize) -> (u64, u64) {
    let revisions: Vec<u64> = (0..n)
        .map(|i| {
            let key = format!("/test/other/{tag}-{i}");
            let body = serde_json::json!({
                "key": base64(key.as_bytes()),
                "value": base64(format!("value {i}").as_bytes()),
            });
            let (code, json) = gateway(port, "/v3/kv/put", &body);
            assert_eq!(
                code, 200,
                "put {key} through etcd's gateway: HTTP {code}, expected 200: {json}"
            );
            header_revision(&json)
        })
        .collect();
    assert!(revisions.windows(2).all(|w| w[1] > w[0]), "{revisions:?}");
    (revisions[0], revisions[n - 1])
}

/// Compacts etcd's history up to `revision` (physical: the compaction is
/// done when the answer comes), then checks that a read at `older` is
/// refused as compacted.
fn compact(port: u16, revision: u64, older: u64) {
    let body = serde_json::json!({ "revision": revision.to_string(), "physical": true });
    let (code, json) = gateway(port, "/v3/kv/compaction", &body);
    assert_eq!(
        code, 200,
        "compaction at revision {revision} through etcd's gateway: HTTP {code}, expected 200: \
         {json}"
    );
    let body = serde_json::json!({
        "key": base64(b"/test/lock/job"),
        "revision": older.to_string(),
    });
    let (code, json) = gateway(port, "/v3/kv/range", &body);
    assert!(
        code != 200 && json.to_string().contains("compacted"),
        "a read at revision {older} after compacting at {revision}: HTTP {code} (expected an \
         error saying compacted): {json}"
    );
}

#[test]
fn a_waiters_watch_restarted_after_compaction_still_takes_over() {
    let Some(scene) = ProxyScene::start() else {
        return;
    };
    // Bound in this order, dropped in reverse: the serial lock last.
    let ProxyScene {
        _serial,
        cluster,
        proxy,
        log,
        url,
    } = scene;
    let port = cluster.members[0].client;
    // host-a, direct to etcd, holds the lock.
    let a = run(
        &url,
        "host-a",
        "job",
        &["--ttl", "3s"],
        &logged(&log, "host-a", "", FOREVER),
    );
    wait_for("host-a's command", || log_lines(&log).len() == 1);
    wait_for("host-a holding", || {
        status_json(&url, "host-c", "job")["host"] == "host-a"
    });
    // host-b, through the proxy, waits: its attempt and its wait each use a
    // connection; once both are open and the link is idle, it is watching.
    let mut b = run(
        &proxy.url(),
        "host-b",
        "job",
        &["--ttl", "3s", "--wait", "40s"],
        &logged(&log, "host-b", "", FOREVER),
    );
    proxy.wait_quiet(2, "host-b watching the key");
    let b_running = |b: &mut Owned, when: &str| {
        assert!(
            b.0.try_wait().unwrap().is_none(),
            "host-b's supervisor exited {when}"
        );
    };
    b_running(&mut b, "while waiting");

    // 1. host-b's link cut; meanwhile the revision moves on and the history
    // is compacted past where host-b's watch was: a watch restarted from
    // there would be refused. host-a still holds when the link comes back:
    // host-b must go on waiting, not start, not fail.
    proxy.cut();
    let (first, last) = put_others(port, "one", 5);
    compact(port, last, first);
    std::thread::sleep(Duration::from_millis(500));
    let before = proxy.connections();
    proxy.restore();
    proxy.wait_quiet(before + 1, "host-b watching again after the link came back");
    std::thread::sleep(Duration::from_millis(500));
    b_running(&mut b, "after its watch restarted past a compaction");
    assert_eq!(log_lines(&log).len(), 1, "{:?}", log_lines(&log));
    assert_eq!(status_json(&url, "host-c", "job")["host"], "host-a");

    // 2. Cut again; more writes and a compaction, then host-a stops (its
    // command logs its end, its supervisor deletes the key), then more
    // writes and a compaction past the deletion: host-b's watch never
    // sees the delete event.
    proxy.cut();
    let (first, last) = put_others(port, "two", 3);
    compact(port, last, first);
    signal(a.pid(), "TERM");
    let a_out = finish(a, Duration::from_secs(10));
    assert_eq!(a_out.status.code(), Some(143), "{}", text(&a_out));
    let out = status(&url, "host-c", "job", false);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let (_, last) = put_others(port, "three", 3);
    compact(port, last, first);
    std::thread::sleep(Duration::from_millis(500));
    b_running(&mut b, "while cut off");
    assert_eq!(log_lines(&log).len(), 2, "{:?}", log_lines(&log));

    let restored = Instant::now();
    proxy.restore();
    let deadline = restored + Duration::from_secs(15);
    while !log_lines(&log)
        .iter()
        .any(|l| l.starts_with("start host-b"))
    {
        if b.0.try_wait().unwrap().is_some() {
            let out = finish(b, Duration::from_secs(1));
            panic!(
                "host-b exited {:?} instead of taking over: {}",
                out.status.code(),
                text(&out)
            );
        }
        assert!(
            Instant::now() < deadline,
            "host-b's command did not start within 15 s of the link coming back (the lock \
             was free): {:?}",
            log_lines(&log)
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let took = restored.elapsed();
    eprintln!("host-b's command started {took:?} after its link came back");

    // In the order written: host-a's command ended before host-b's
    // started, and host-b's fence is greater.
    let (_, fb, _, _) = handover(&log);
    let now = status_json(&url, "host-c", "job");
    assert_eq!(now["host"], "host-b", "{now}");
    assert_eq!(now["fence"].as_u64(), Some(fb), "{now}");
    signal(b.pid(), "TERM");
    let b_out = finish(b, Duration::from_secs(10));
    let t = text(&b_out);
    assert_eq!(b_out.status.code(), Some(143), "{t}");
    assert!(!t.to_ascii_lowercase().contains("compact"), "{t}");
    // (sh itself may report the `sleep` that the whole group's SIGTERM
    // ended: "Terminated".)
    assert!(
        !t.contains("pidguard:"),
        "host-b's supervisor said something: {t}"
    );
}

/// Puts `value` at `key` through etcd's JSON gateway (no lease).
fn gateway_put(port: u16, key: &str, value: &str) {
    let body = serde_json::json!({
        "key": base64(key.as_bytes()),
        "value": base64(value.as_bytes()),
    });
    let (code, json) = gateway(port, "/v3/kv/put", &body);
    assert_eq!(
        code, 200,
        "put {key} through etcd's gateway: HTTP {code}: {json}"
    );
}

#[test]
fn jobs_on_nested_prefixes_never_share_a_key_and_a_holder_watches_only_its_own() {
    let Some(scene) = ProxyScene::start() else {
        return;
    };
    let ProxyScene {
        _serial,
        cluster,
        proxy,
        log,
        url: _,
    } = scene;
    let port = cluster.members[0].client;
    let direct = |prefix: &str| format!("etcd://127.0.0.1:{port}{prefix}");
    let behind = format!("etcd://{}/test/a", proxy.addr);
    // host-a holds prefix /test/a, name "stop", through the proxy.
    let mut a = run(
        &behind,
        "host-a",
        "stop",
        &[],
        &logged(&log, "host-a", "", FOREVER),
    );
    wait_for("host-a holding", || {
        status_json(&direct("/test/a"), "host-c", "stop")["state"] == "running"
    });
    // Prefix /test, name "a": a different job. Its stop request must not
    // touch host-a's lock (with PREFIX/NAME and PREFIX/NAME/stop both were
    // /test/a/stop).
    let mut cmd = pidguard();
    let out = as_host(&mut cmd, "host-c")
        .args(["stop", "--backend", &direct("/test"), "--name", "a"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("not running"), "{}", text(&out));
    assert!(
        a.0.try_wait().unwrap().is_none(),
        "host-a's supervisor exited"
    );
    let now = status_json(&direct("/test/a"), "host-c", "stop");
    assert_eq!(now["host"], "host-a", "{now}");

    // 200 writes to keys next to host-a's own (other names that share its
    // name as a prefix, other prefixes' keys): its link stays quiet.
    proxy.wait_quiet(2, "host-a holding and watching");
    let bytes = || proxy.shared.bytes.load(SeqCst);
    let before = bytes();
    let siblings = [
        "/test/a/lock/stop-x",
        "/test/a/lock/stop.x",
        "/test/a/lock/stop0",
        "/test/a/lock/stopp",
        "/test/a/stop/stop-x",
        "/test/a/stop/stop.x",
        "/test/a/lock/stop/x",
        "/test/a/stop/stop/x",
    ];
    let started = Instant::now();
    for i in 0..200 {
        gateway_put(port, siblings[i % siblings.len()], &format!("value {i}"));
    }
    let siblings_took = started.elapsed();
    let sibling_bytes = bytes() - before;
    // The control: 20 writes to host-a's own stop key (naming a fence that
    // is not its own: ignored) do reach it.
    let before = bytes();
    let fence = now["fence"].as_u64().unwrap();
    for i in 0..20 {
        let stale = format!("fence={}\nfrom=host-c\nnote={i}\n", fence - 1);
        gateway_put(port, "/test/a/stop/stop", &stale);
    }
    proxy.wait_quiet(0, "host-a's link after the writes to its stop key");
    let own_bytes = bytes() - before;
    eprintln!(
        "bytes on host-a's link: {sibling_bytes} during 200 writes to sibling keys \
         ({siblings_took:?}), {own_bytes} for 20 writes to its own stop key"
    );
    assert!(
        own_bytes >= 20 * 40,
        "host-a's watch did not see its own stop key: {own_bytes} bytes"
    );
    // Renewals (every 3.3 s) and HTTP/2 pings (every 5 s) are a few hundred
    // bytes; 200 watch events would be ten thousands.
    assert!(
        sibling_bytes < 1500 + 500 * siblings_took.as_secs(),
        "200 writes to other keys reached host-a's link: {sibling_bytes} bytes"
    );
    assert!(
        a.0.try_wait().unwrap().is_none(),
        "host-a's supervisor exited"
    );
    assert_eq!(log_lines(&log).len(), 1, "{:?}", log_lines(&log));
    signal(a.pid(), "TERM");
    let a_out = finish(a, Duration::from_secs(10));
    assert_eq!(a_out.status.code(), Some(143), "{}", text(&a_out));
}

#[test]
fn status_says_starting_until_the_command_runs() {
    if !have_etcd() {
        return;
    }
    let _serial = serial();
    let cluster = Cluster::start(1);
    let url = cluster.url();
    // A holder record as `run` writes it right after taking the lock,
    // before its command has started.
    let record = "host=host-a\nstate=starting\npid=0\nsupervisor_pid=4242\nsince=1764103201.000\n";
    gateway_put(cluster.members[0].client, "/test/lock/job", record);
    let out = status(&url, "host-b", "job", false);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(
        t.contains(
            "/test/lock/job: starting on host host-a (supervisor PID 4242, command not started yet"
        ),
        "{t}"
    );
    let j = status_json(&url, "host-b", "job");
    assert_eq!(j["state"], "starting", "{j}");
    assert!(j["pid"].is_null(), "{j}");
    assert_eq!(j["supervisor_pid"], 4242, "{j}");
    // Busy, naming the supervisor, not a command PID.
    let out = finish(
        run(&url, "host-b", "job", &[], "true"),
        Duration::from_secs(20),
    );
    assert_eq!(out.status.code(), Some(75), "{}", text(&out));
    assert!(
        text(&out).contains("held by host host-a (starting, supervisor PID 4242"),
        "{}",
        text(&out)
    );
}

#[test]
fn stop_json_says_pid_null_while_the_holder_is_starting() {
    // As `status --json` does: a holder whose command has not started has
    // no command PID (the record's pid=0 is not one).
    let Some((_serial, cluster)) = one_member() else {
        return;
    };
    let url = cluster.url();
    let port = cluster.members[0].client;
    let record = "host=host-a\nstate=starting\npid=0\nsupervisor_pid=4242\nsince=1764103201.000\n";
    gateway_put(port, "/test/lock/job", record);
    let mut cmd = pidguard();
    as_host(&mut cmd, "host-b")
        .args(["stop", "--backend", &url, "--name", "job", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let stop = Owned::spawn(&mut cmd);
    // No supervisor answers the request: the test releases the key once
    // the request is written, as the holder would.
    wait_for("the stop request", || {
        let (code, json) = gateway(
            port,
            "/v3/kv/range",
            &serde_json::json!({ "key": base64(b"/test/stop/job") }),
        );
        code == 200 && json["kvs"].as_array().is_some_and(|k| !k.is_empty())
    });
    let (code, json) = gateway(
        port,
        "/v3/kv/deleterange",
        &serde_json::json!({ "key": base64(b"/test/lock/job") }),
    );
    assert_eq!(code, 200, "{json}");
    let out = finish(stop, Duration::from_secs(20));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let j: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
    assert_eq!(j["outcome"], "stopped", "{j}");
    assert_eq!(j["host"], "host-a", "{j}");
    assert!(j["pid"].is_null(), "{j}");
}

// ---------------------------------------------------------------------------
// The whole job, stopped before the next holder starts

/// Appends to `pids` the PID of the shell and, per `kind`, starts the rest
/// of host-a's job: `children` a background child ignoring SIGTERM in the
/// group and one that left it (`setsid`); `slow-term` a shell that takes
/// 1.5 s to exit on SIGTERM; `deaf` one that ignores SIGTERM. Then loops
/// until killed.
fn job_script(kind: &str, log: &Path, pids: &Path) -> String {
    let (l, p) = (sh_quote(log), sh_quote(pids));
    let setup = match kind {
        "children" => format!(
            "(trap '' TERM; while :; do sleep 0.05; done) & echo $! >> {p}; \
             setsid sh -c 'while :; do sleep 0.05; done' & echo $! >> {p};"
        ),
        "slow-term" => "trap 'sleep 1.5; exit 143' TERM;".to_string(),
        "deaf" => "trap '' TERM;".to_string(),
        _ => unreachable!(),
    };
    format!(
        "{setup} echo $$ >> {p}; echo start host-a $PIDGUARD_FENCE >> {l}; \
         while :; do sleep 0.05; done"
    )
}

/// host-b's command: notes which of the PIDs in `pids` still run (state
/// not Z, not gone) in its start line, then loops.
fn survivor_note_script(log: &Path, pids: &Path) -> String {
    let (l, p) = (sh_quote(log), sh_quote(pids));
    format!(
        "alive=; for p in $(cat {p}); do s=$(cut -d' ' -f3 /proc/$p/stat 2>/dev/null); \
         case \"$s\" in ''|Z) ;; *) alive=\"$alive $p:$s\";; esac; done; \
         echo start host-b $PIDGUARD_FENCE alive:$alive >> {l}; \
         while :; do sleep 0.05; done"
    )
}

fn read_pids(path: &Path) -> Vec<i32> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect()
}

/// The job's processes (the PIDs in `pids`, started by this test), pinned
/// by pidfd as soon as they are known, and SIGKILLed through that pidfd
/// when the test ends, if any still runs: a failed or timed-out assertion
/// must not leave them (one ignores TERM, one left the group). Through the
/// pidfd, never by PID: a PID freed meanwhile is not signalled.
fn pin_job(pids: &Path) -> Pinned {
    Pinned::new(read_pids(pids))
}

/// host-a (through `a_url`) and host-b (through `b_url`, `--wait 30s`),
/// both with TTL 3 s, on the lock `name`: host-a runs `script`, which
/// writes its start line to `log` and `want` PIDs to `pids` (pinned, see
/// [`pin_job`]), and holds the lock with its command's PID recorded
/// (checked through `b_url`); then host-b waits, noting what still runs of
/// host-a's job when its command starts ([`survivor_note_script`]).
/// Returns (host-a, host-b, the pinned job).
fn a_holds_b_waits(
    a_url: &str,
    b_url: &str,
    name: &str,
    script: &str,
    log: &Path,
    pids: &Path,
    want: usize,
) -> (Owned, Owned, Pinned) {
    let a = run(a_url, "host-a", name, &["--ttl", "3s"], script);
    wait_for("host-a's job", || {
        log_lines(log).len() == 1 && read_pids(pids).len() == want
    });
    let reap = pin_job(pids);
    wait_for("host-a running", || {
        status_json(b_url, "host-c", name)["state"] == "running"
    });
    let b = run(
        b_url,
        "host-b",
        name,
        &["--ttl", "3s", "--wait", "30s"],
        &survivor_note_script(log, pids),
    );
    (a, b, reap)
}

/// When host-a's job went and host-b's command started, as the test saw
/// them (polling every 5 ms), counted from a moment the test chose.
struct Handover {
    /// What host-b's command noted as still running of host-a's job when
    /// it started (empty: nothing).
    survivors: String,
    /// When the last of host-a's job (the PIDs in `pids`) was seen gone.
    a_gone: Duration,
    /// When host-b's start line was seen in the log.
    b_start: Duration,
}

impl Handover {
    /// How long host-a's job ran beside host-b's command (zero if it was
    /// gone first).
    fn overlap(&self) -> Duration {
        self.a_gone.saturating_sub(self.b_start)
    }
}

/// Waits until host-b's start line is in `log` and host-a's job (the PIDs
/// in `pids`) is gone, whichever comes last; prints both times.
fn wait_handover(log: &Path, pids: &Path, b: &mut Owned, since: Instant) -> Handover {
    let deadline = since + Duration::from_secs(20);
    let (mut a_gone, mut b_start, mut survivors) = (None, None, String::new());
    loop {
        let now = since.elapsed();
        if a_gone.is_none() && read_pids(pids).iter().all(|p| !alive(*p)) {
            a_gone = Some(now);
        }
        if b_start.is_none() {
            if let Some(l) = log_lines(log)
                .iter()
                .find(|l| l.starts_with("start host-b"))
            {
                survivors = l
                    .split_once("alive:")
                    .map(|x| x.1.trim())
                    .unwrap_or("?")
                    .into();
                b_start = Some(now);
            }
        }
        if let (Some(a_gone), Some(b_start)) = (a_gone, b_start) {
            eprintln!("host-a's job gone at {a_gone:?}, host-b's command started at {b_start:?}");
            return Handover {
                survivors,
                a_gone,
                b_start,
            };
        }
        assert!(
            b.0.try_wait().unwrap().is_none(),
            "host-b's supervisor exited"
        );
        assert!(
            Instant::now() < deadline,
            "host-a's job gone at {a_gone:?}, host-b started at {b_start:?}: {:?}; still \
             running of host-a's job: {:?}",
            log_lines(log),
            read_pids(pids)
                .iter()
                .filter(|p| alive(**p))
                .map(|p| std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default())
                .collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Ends host-b (SIGTERM to its supervisor, which passes it on).
fn end_b(b: Owned) {
    signal(b.pid(), "TERM");
    let out = finish(b, Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(143), "{}", text(&out));
}

#[test]
fn a_cut_off_holders_whole_job_is_gone_before_the_next_one_starts() {
    let Some(scene) = ProxyScene::start() else {
        return;
    };
    let ProxyScene {
        _serial,
        cluster,
        proxy,
        log: _,
        url,
    } = scene;
    let dir = cluster.dir.path();
    for kind in ["children", "slow-term", "deaf"] {
        let (log, pids) = (
            dir.join(format!("{kind}.log")),
            dir.join(format!("{kind}.pids")),
        );
        let want = if kind == "children" { 3 } else { 1 };
        let (a, mut b, _reap) = a_holds_b_waits(
            &proxy.url(),
            &url,
            kind,
            &job_script(kind, &log, &pids),
            &log,
            &pids,
            want,
        );
        std::thread::sleep(Duration::from_millis(500));
        let cut = Instant::now();
        proxy.cut();
        let Handover {
            survivors, b_start, ..
        } = wait_handover(&log, &pids, &mut b, cut);
        let a_out = finish(a, Duration::from_secs(10));
        eprintln!(
            "{kind}: host-b's command started {b_start:?} after the cut; host-a: {}",
            text(&a_out).trim()
        );
        assert!(
            survivors.is_empty(),
            "{kind}: host-a's job still ran when host-b's command started: {survivors}"
        );
        assert_eq!(a_out.status.code(), Some(69), "{kind}: {}", text(&a_out));
        for p in read_pids(&pids) {
            assert!(!alive(p), "{kind}: PID {p} of host-a's job survived");
        }
        assert!(b_start <= Duration::from_secs(6), "{kind}: {b_start:?}");
        end_b(b);
        proxy.restore();
    }
}

#[test]
fn a_stalled_supervisors_job_is_killed_by_its_watchdog_before_the_next_one_starts() {
    let Some((_serial, cluster)) = one_member() else {
        return;
    };
    let url = cluster.url();
    let dir = cluster.dir.path();
    let (log, pids) = (dir.join("log"), dir.join("pids"));
    let (a, mut b, _reap) = a_holds_b_waits(
        &url,
        &url,
        "job",
        &job_script("children", &log, &pids),
        &log,
        &pids,
        3,
    );
    // The supervisor tells its watchdog about processes outside the group
    // every half second: the one that left it must be known by now (a
    // newer one is not: an_escapee_the_watchdog_does_not_know_yet_…).
    std::thread::sleep(Duration::from_secs(1));
    let stopped = Instant::now();
    signal(a.pid(), "STOP");
    let Handover {
        survivors, b_start, ..
    } = wait_handover(&log, &pids, &mut b, stopped);
    signal(a.pid(), "CONT");
    let a_out = finish(a, Duration::from_secs(10));
    eprintln!(
        "stalled supervisor: host-b's command started {b_start:?} after SIGSTOP; host-a: {}",
        text(&a_out).trim()
    );
    assert!(
        survivors.is_empty(),
        "host-a's job still ran when host-b's started: {survivors}"
    );
    for p in read_pids(&pids) {
        assert!(!alive(p), "PID {p} of host-a's job survived");
    }
    assert!(text(&a_out).contains("watchdog"), "{}", text(&a_out));
    assert_eq!(a_out.status.code(), Some(69), "{}", text(&a_out));
    end_b(b);

    // The supervisor SIGKILLed (not its command): the kernel kills the
    // command, the watchdog the rest of its group and the process that
    // left it, at once (within 1 s); host-b, waiting, starts only after.
    let (log, pids) = (dir.join("log2"), dir.join("pids2"));
    let (mut a, mut b, _reap) = a_holds_b_waits(
        &url,
        &url,
        "job2",
        &job_script("children", &log, &pids),
        &log,
        &pids,
        3,
    );
    // The supervisor tells its watchdog about processes outside the group
    // every half second.
    std::thread::sleep(Duration::from_secs(1));
    let killed = Instant::now();
    a.0.kill().unwrap();
    let _ = a.0.wait();
    let h = wait_handover(&log, &pids, &mut b, killed);
    eprintln!(
        "SIGKILLed supervisor: its job gone {:?} after, host-b's command started {:?} after",
        h.a_gone, h.b_start
    );
    assert!(
        h.a_gone <= Duration::from_secs(1),
        "host-a's job went {:?} after its supervisor was SIGKILLed",
        h.a_gone
    );
    assert!(
        h.survivors.is_empty(),
        "host-a's job still ran when host-b's started: {}",
        h.survivors
    );
    end_b(b);
}

/// host-a's job for [`an_escapee_the_watchdog_does_not_know_yet_outlives_a_stopped_supervisor`]:
/// a shell (its PID in `shell` and `pids`) that, each time the file
/// `trigger` appears, starts a process that leaves its group and session
/// (`setsid`) and appends its PID to `pids`.
fn escaping_job_script(log: &Path, shell: &Path, pids: &Path, trigger: &Path) -> String {
    let (l, sp, p, t) = (
        sh_quote(log),
        sh_quote(shell),
        sh_quote(pids),
        sh_quote(trigger),
    );
    format!(
        "echo $$ >> {sp}; echo $$ >> {p}; echo start host-a $PIDGUARD_FENCE >> {l}; \
         while :; do if [ -e {t} ]; then rm -f {t}; \
         setsid sh -c 'echo $$ >> {p}; while :; do sleep 0.05; done' & fi; sleep 0.05; done"
    )
}

#[test]
fn an_escapee_the_watchdog_does_not_know_yet_outlives_a_stopped_supervisor() {
    // The limit docs/ETCD.md states (no cgroup): a process that leaves the
    // job's process group while its supervisor is stopped is not known to
    // the watchdog, survives its kill and runs beside the next holder;
    // the supervisor, once continued, SIGKILLs it and exits 69.
    let Some((_serial, cluster)) = one_member() else {
        return;
    };
    let url = cluster.url();
    let dir = cluster.dir.path();
    let (log, shell, pids, trigger) = (
        dir.join("log"),
        dir.join("shell"),
        dir.join("pids"),
        dir.join("trigger"),
    );
    let (a, mut b, _reap) = a_holds_b_waits(
        &url,
        &url,
        "job",
        &escaping_job_script(&log, &shell, &pids, &trigger),
        &log,
        &pids,
        1,
    );
    std::thread::sleep(Duration::from_millis(500));
    signal(a.pid(), "STOP");
    std::fs::write(&trigger, "").unwrap();
    wait_for("the escapee", || read_pids(&pids).len() == 2);
    let escapee = read_pids(&pids)[1];
    let _reap_escapee = Pinned::new([escapee]);
    // The watchdog kills the shell before host-b's command starts; the
    // escapee runs on beside it.
    let h = wait_handover(&log, &shell, &mut b, Instant::now());
    assert!(h.a_gone < h.b_start, "{:?} {:?}", h.a_gone, h.b_start);
    let running: Vec<&str> = h
        .survivors
        .split_whitespace()
        .filter_map(|s| s.split(':').next())
        .collect();
    assert_eq!(
        running,
        [escapee.to_string()],
        "host-b's command should have found the escapee alone running: {:?}",
        log_lines(&log)
    );
    assert!(alive(escapee));
    let continued = Instant::now();
    signal(a.pid(), "CONT");
    let a_out = finish(a, Duration::from_secs(10));
    let took = continued.elapsed();
    let t = text(&a_out);
    eprintln!(
        "escapee killed by the continued supervisor within {took:?}: {}",
        t.trim()
    );
    assert_eq!(a_out.status.code(), Some(69), "{t}");
    assert!(t.contains("outlived the lost lock"), "{t}");
    assert!(
        !alive(escapee),
        "the escapee survived its continued supervisor"
    );
    assert!(took <= Duration::from_secs(2), "{took:?}");
    end_b(b);
}

/// The lease of the key `key`, as etcd's gateway gives it (an int64 as a
/// JSON string).
fn lease_of(port: u16, key: &str) -> String {
    let (code, json) = gateway(
        port,
        "/v3/kv/range",
        &serde_json::json!({ "key": base64(key.as_bytes()) }),
    );
    assert_eq!(code, 200, "range {key}: {json}");
    json["kvs"][0]["lease"]
        .as_str()
        .unwrap_or_else(|| panic!("no lease on {key}: {json}"))
        .to_string()
}

#[test]
fn a_revoked_lease_or_a_deleted_key_stops_a_term_ignoring_job_within_its_schedule() {
    // `etcdctl lease revoke` and `etcdctl del` of a holder's lock (through
    // the JSON gateway): the key is gone at once, so a waiting host takes
    // the lock at once, while the holder learns of it from its watch at the
    // same moment and needs its lost-lock schedule (TERM/700ms/KILL/300ms
    // at TTL 3 s) to stop a job that ignores SIGTERM. The overlap is
    // measured, and bounded by the schedule; it cannot be zero (see
    // docs/ETCD.md, "Lost lock").
    let Some((_serial, cluster)) = one_member() else {
        return;
    };
    let url = cluster.url();
    let port = cluster.members[0].client;
    let dir = cluster.dir.path();
    for how in ["revoke", "delete"] {
        let (log, pids) = (
            dir.join(format!("{how}.log")),
            dir.join(format!("{how}.pids")),
        );
        let (a, mut b, _reap) = a_holds_b_waits(
            &url,
            &url,
            how,
            &job_script("deaf", &log, &pids),
            &log,
            &pids,
            1,
        );
        std::thread::sleep(Duration::from_millis(500));
        let key = format!("/test/lock/{how}");
        let lease = lease_of(port, &key);
        let at = Instant::now();
        let (code, json) = match how {
            "revoke" => gateway(
                port,
                "/v3/lease/revoke",
                &serde_json::json!({ "ID": lease }),
            ),
            _ => gateway(
                port,
                "/v3/kv/deleterange",
                &serde_json::json!({ "key": base64(key.as_bytes()) }),
            ),
        };
        assert_eq!(code, 200, "{how} {key}: {json}");
        let h = wait_handover(&log, &pids, &mut b, at);
        let a_out = finish(a, Duration::from_secs(10));
        let t = text(&a_out);
        eprintln!(
            "{how}: host-b's command started {:?} after, host-a's job gone {:?} after: \
             overlap {:?}; host-a: {}",
            h.b_start,
            h.a_gone,
            h.overlap(),
            t.trim()
        );
        assert_eq!(a_out.status.code(), Some(69), "{how}: {t}");
        assert!(
            t.contains(&format!("the lock key {key} was deleted")),
            "{how}: {t}"
        );
        assert!(t.contains("TERM/700ms/KILL/300ms"), "{how}: {t}");
        // The whole job is gone within the schedule's length (1 s) and
        // slack for the watch and a loaded machine; so the overlap is too.
        assert!(
            h.a_gone <= Duration::from_millis(1500),
            "{how}: host-a's job went {:?} after",
            h.a_gone
        );
        assert!(
            h.overlap() <= Duration::from_millis(1500),
            "{how}: {:?}",
            h.overlap()
        );
        for p in read_pids(&pids) {
            assert!(!alive(p), "{how}: PID {p} of host-a's job survived");
        }
        end_b(b);
    }
}

#[test]
fn a_command_that_exits_leaving_processes_has_them_stopped_before_the_release() {
    // The command exits 0 and leaves two processes of its job: one in its
    // group that ignores SIGTERM, one that left the group (`setsid`).
    // They are stopped with the lost-lock schedule before the lock is
    // released, so a waiting host starts only once they are gone; pidguard
    // exits with the command's status.
    let Some((_serial, cluster)) = one_member() else {
        return;
    };
    let url = cluster.url();
    let dir = cluster.dir.path();
    let (log, pids, go) = (dir.join("log"), dir.join("pids"), dir.join("go"));
    let (l, p, g) = (sh_quote(&log), sh_quote(&pids), sh_quote(&go));
    let script = format!(
        "(trap '' TERM; while :; do sleep 0.05; done) & echo $! >> {p}; \
         setsid sh -c 'while :; do sleep 0.05; done' & echo $! >> {p}; \
         echo $$ >> {p}; echo start host-a $PIDGUARD_FENCE >> {l}; \
         while [ ! -e {g} ]; do sleep 0.05; done; exit 0"
    );
    let (a, mut b, _reap) = a_holds_b_waits(&url, &url, "job", &script, &log, &pids, 3);
    let leader = read_pids(&pids)[2];
    std::thread::sleep(Duration::from_millis(500));
    let exited = Instant::now();
    std::fs::write(&go, "").unwrap();
    let h = wait_handover(&log, &pids, &mut b, exited);
    let a_out = finish(a, Duration::from_secs(10));
    let t = text(&a_out);
    eprintln!(
        "leftovers gone {:?} after the command's exit, host-b started {:?} after: {}",
        h.a_gone,
        h.b_start,
        t.trim()
    );
    assert_eq!(a_out.status.code(), Some(0), "{t}");
    assert!(
        t.contains(&format!("the command (PID {leader}) exited, leaving ")),
        "{t}"
    );
    assert!(
        t.contains("stopping them with TERM/700ms/KILL/300ms before releasing the lock"),
        "{t}"
    );
    assert!(
        h.survivors.is_empty(),
        "host-a's job still ran when host-b's command started: {}",
        h.survivors
    );
    assert!(h.a_gone <= h.b_start);
    // TERM, 0.7 s, KILL for the one that ignores it.
    assert!(h.a_gone <= Duration::from_millis(1500), "{:?}", h.a_gone);
    end_b(b);
}

// ---------------------------------------------------------------------------
// Secured etcd: TLS with client certificates, user/password authentication

/// `pidguard ARGS…` as host-b, its output.
fn pidguard_out(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = pidguard();
    as_host(&mut cmd, "host-b").args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

#[test]
fn tls_with_client_certificates_and_password_authentication() {
    if !have_etcd() {
        return;
    }
    let dir = tmp();
    let d = dir.path();
    let Some(certs) = Certs::make(d) else { return };
    let _serial = serial();
    let p = |f: &str| certs.path(f);

    // One member serving TLS only, with client certificates required.
    let (client, peer) = (free_port(), free_port());
    let _etcd =
        Owned::spawn(&mut certs.tls_member(client, peer, &d.join("tls.data"), &d.join("etcd.log")));
    let url = format!("etcd://127.0.0.1:{client}/test");
    let tls = [
        "--cacert",
        &p("good-ca.pem"),
        "--cert",
        &p("client.pem"),
        "--key",
        &p("client.key"),
    ];
    let status_with = |extra: &[&str], env: &[(&str, &str)]| {
        let mut args = vec!["status", "--backend", &url, "--name", "job"];
        args.extend_from_slice(extra);
        pidguard_out(&args, env)
    };
    wait_for("the TLS member", || {
        status_with(&tls, &[]).status.code() == Some(3)
    });

    // Each misconfiguration is named for what it is.
    let cases: [(&[&str], &str); 4] = [
        (&[], "if etcd there serves TLS (https), give --cacert"),
        (
            &["--cacert", &p("good-ca.pem")],
            "requires a client certificate",
        ),
        (
            &["--cacert", &p("other-ca.pem")],
            "etcd's certificate is not trusted",
        ),
        (
            &[
                "--cacert",
                &p("good-ca.pem"),
                "--cert",
                &p("stranger.pem"),
                "--key",
                &p("stranger.key"),
            ],
            "refused the client certificate",
        ),
    ];
    for (args, want) in cases {
        let started = Instant::now();
        let out = status_with(args, &[]);
        let t = text(&out);
        eprintln!("{args:?}: {:?}: {}", started.elapsed(), t.trim());
        assert_eq!(out.status.code(), Some(4), "{args:?}: {t}");
        assert!(t.contains(want), "{args:?}: expected {want:?}: {t}");
        assert!(
            !t.contains("(a majority of its members up)"),
            "{args:?}: {t}"
        );
    }
    let out = status_with(&["--cacert", &p("missing.pem")], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("missing.pem"), "{}", text(&out));
    let out = status_with(
        &["--cacert", &p("good-ca.pem"), "--cert", &p("client.pem")],
        &[],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("--cert (ETCDCTL_CERT) needs --key"),
        "{}",
        text(&out)
    );

    // run, status (through etcdctl's environment variables) and stop.
    let fence = d.join("fence");
    let mut cmd = pidguard();
    let a = {
        as_host(&mut cmd, "host-a")
            .args(["run", "--backend", &url, "--name", "job"])
            .args(tls)
            .args(["--", "sh", "-c"])
            .arg(format!(
                "echo $PIDGUARD_FENCE > {}; exec sleep 60",
                sh_quote(&fence)
            ))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        Owned::spawn(&mut cmd)
    };
    wait_for("host-a's command over TLS", || fence.exists());
    let env = [
        ("ETCDCTL_CACERT", p("good-ca.pem")),
        ("ETCDCTL_CERT", p("client.pem")),
        ("ETCDCTL_KEY", p("client.key")),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    wait_for("status over TLS from the environment", || {
        text(&status_with(&[], &env)).contains("running on host host-a")
    });
    let out = pidguard_out(
        &[
            "stop",
            "--backend",
            &url,
            "--name",
            "job",
            "--timeout",
            "5s",
        ],
        &env,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let a_out = finish(a, Duration::from_secs(10));
    assert_eq!(a_out.status.code(), Some(143), "{}", text(&a_out));

    // A plain member: TLS options against it are named for what they are.
    let cluster = Cluster::start(1);
    let url = cluster.url();
    let port = cluster.members[0].client;
    let status_as = |extra: &[&str], env: &[(&str, &str)]| {
        let mut args = vec!["status", "--backend", &url, "--name", "job"];
        args.extend_from_slice(extra);
        pidguard_out(&args, env)
    };
    let out = status_as(&["--cacert", &p("good-ca.pem")], &[]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(4), "{t}");
    assert!(
        t.contains("the endpoint does not seem to speak TLS; drop --cacert"),
        "{t}"
    );

    // Authentication, on the plain member (with client certificates, etcd
    // would take the certificate's name as the user). root, and a user
    // "backup" whose role covers another prefix only.
    let rw_elsewhere = serde_json::json!({
        "name": "elsewhere",
        "perm": {
            "permType": "READWRITE",
            "key": base64(b"/elsewhere/"),
            "range_end": base64(b"/elsewhere0"),
        },
    });
    for (path, body) in [
        (
            "/v3/auth/user/add",
            serde_json::json!({"name": "root", "password": "r00t-secret"}),
        ),
        ("/v3/auth/role/add", serde_json::json!({"name": "root"})),
        (
            "/v3/auth/user/grant",
            serde_json::json!({"user": "root", "role": "root"}),
        ),
        (
            "/v3/auth/user/add",
            serde_json::json!({"name": "backup", "password": "b4ckup-secret"}),
        ),
        (
            "/v3/auth/role/add",
            serde_json::json!({"name": "elsewhere"}),
        ),
        ("/v3/auth/role/grant", rw_elsewhere),
        (
            "/v3/auth/user/grant",
            serde_json::json!({"user": "backup", "role": "elsewhere"}),
        ),
        ("/v3/auth/enable", serde_json::json!({})),
    ] {
        let (code, json) = gateway(port, path, &body);
        assert_eq!(code, 200, "{path}: {json}");
    }
    let out = status_as(&[], &[]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(
        text(&out).contains("etcd has authentication enabled: give --user"),
        "{}",
        text(&out)
    );
    let out = status_as(&["--user", "root:wrong-guess"], &[]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(4), "{t}");
    assert!(t.contains("authentication failed for user \"root\""), "{t}");
    assert!(!t.contains("wrong-guess"), "the password was shown: {t}");
    let out = status_as(&["--user", "root"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("needs a password"), "{}", text(&out));
    // A user without a role for the prefix: named, with the remedy, for
    // status (4) and run (69, the command not run).
    let out = status_as(&["--user", "backup:b4ckup-secret"], &[]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(4), "{t}");
    assert!(
        t.contains(
            "the user \"backup\" may not use these keys: grant it a role with read and write \
             permission on the prefix /test"
        ),
        "{t}"
    );
    assert!(!t.contains("b4ckup-secret"), "the password was shown: {t}");
    let ran = cluster.dir.path().join("ran");
    let mut cmd = pidguard();
    let out = as_host(&mut cmd, "host-a")
        .args(["run", "--backend", &url, "--name", "job"])
        .args(["--user", "backup:b4ckup-secret", "--", "touch"])
        .arg(&ran)
        .output()
        .unwrap();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(69), "{t}");
    assert!(t.contains("may not use these keys"), "{t}");
    assert!(!ran.exists(), "the command ran without the lock");
    for (args, env) in [
        (vec!["--user", "root:r00t-secret"], vec![]),
        (vec!["--user", "root", "--password", "r00t-secret"], vec![]),
        (vec![], vec![("ETCDCTL_USER", "root:r00t-secret")]),
        (
            vec![],
            vec![
                ("ETCDCTL_USER", "root"),
                ("ETCDCTL_PASSWORD", "r00t-secret"),
            ],
        ),
    ] {
        let out = status_as(&args, &env);
        assert_eq!(
            out.status.code(),
            Some(3),
            "{args:?} {env:?}: {}",
            text(&out)
        );
    }
    let mut cmd = pidguard();
    let out = as_host(&mut cmd, "host-a")
        .args([
            "run",
            "--backend",
            &url,
            "--name",
            "job",
            "--user",
            "root:r00t-secret",
        ])
        .args(["--", "touch"])
        .arg(&ran)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(ran.exists());

    // run configured through the environment only (ETCDCTL_USER and
    // ETCDCTL_PASSWORD); stop with a wrong password fails (69) and leaves
    // it running, with the right one stops it.
    let fence = cluster.dir.path().join("fence");
    let mut cmd = pidguard();
    as_host(&mut cmd, "host-a")
        .env("ETCDCTL_USER", "root")
        .env("ETCDCTL_PASSWORD", "r00t-secret")
        .args(["run", "--backend", &url, "--name", "job", "--", "sh", "-c"])
        .arg(format!(
            "echo $PIDGUARD_FENCE > {}; exec sleep 60",
            sh_quote(&fence)
        ))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut a = Owned::spawn(&mut cmd);
    wait_for(
        "host-a's command, authenticated through the environment",
        || std::fs::metadata(&fence).is_ok_and(|m| m.len() > 0),
    );
    let stop_as = |extra: &[&str], env: &[(&str, &str)]| {
        let mut args = vec![
            "stop",
            "--backend",
            &url,
            "--name",
            "job",
            "--timeout",
            "5s",
        ];
        args.extend_from_slice(extra);
        pidguard_out(&args, env)
    };
    for (args, env) in [
        (vec!["--user", "root:wrong-guess"], vec![]),
        (vec![], vec![("ETCDCTL_USER", "root:wrong-guess")]),
    ] {
        let out = stop_as(&args, &env);
        assert_eq!(
            out.status.code(),
            Some(69),
            "{args:?} {env:?}: {}",
            text(&out)
        );
        assert!(!text(&out).contains("wrong-guess"), "{}", text(&out));
    }
    assert!(
        a.0.try_wait().unwrap().is_none(),
        "host-a's supervisor exited"
    );
    let out = stop_as(&["--user", "root", "--password", "r00t-secret"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("stopped host host-a"), "{}", text(&out));
    let a_out = finish(a, Duration::from_secs(10));
    assert_eq!(a_out.status.code(), Some(143), "{}", text(&a_out));
    let out = status_as(&["--user", "root:r00t-secret"], &[]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
}

// ---------------------------------------------------------------------------
// Endpoints: a dead first one costs milliseconds; --wait is a deadline

#[test]
fn a_black_holed_first_endpoint_costs_milliseconds_and_wait_is_a_deadline() {
    let Some(scene) = ProxyScene::start() else {
        return;
    };
    let ProxyScene {
        _serial,
        mut cluster,
        proxy,
        log,
        url: _,
    } = scene;
    let port = cluster.members[0].client;
    // Dead endpoints before the healthy one: proxies that accept
    // connections and never answer (black holes), one, then two.
    let second = Proxy::start(port);
    proxy.cut();
    second.cut();
    let timed = |args: &[&str]| {
        let started = Instant::now();
        let mut cmd = pidguard();
        let out = as_host(&mut cmd, "host-a").args(args).output().unwrap();
        (out, started.elapsed())
    };
    let l = sh_quote(&log);
    let script = format!("echo ran >> {l}");
    let one = format!("etcd://{},127.0.0.1:{port}/test", proxy.addr);
    let two = format!(
        "etcd://{},{},127.0.0.1:{port}/test",
        proxy.addr, second.addr
    );
    for (dead, url) in [(1, &one), (2, &two)] {
        let (out, status_took) = timed(&["status", "--backend", url, "--name", "job"]);
        assert_eq!(out.status.code(), Some(3), "{}", text(&out));
        let (out, run_took) = timed(&[
            "run",
            "--backend",
            url,
            "--name",
            "job",
            "--",
            "sh",
            "-c",
            &script,
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        eprintln!(
            "{dead} black-holed endpoint(s) first: status took {status_took:?}, run took \
             {run_took:?}"
        );
        // Before: 2 s for each request's timeout on each dead endpoint.
        assert!(
            status_took <= Duration::from_millis(300),
            "{dead} dead: status took {status_took:?}"
        );
        assert!(
            run_took <= Duration::from_millis(1000),
            "{dead} dead: run took {run_took:?}"
        );
    }
    assert_eq!(log_lines(&log), ["ran", "ran"]);
    let url = two;

    // Every member frozen: `--wait 1s` returns after about 1 s, exit 69.
    let member = cluster.members[0].child.as_ref().unwrap().id() as i32;
    signal(member, "STOP");
    let (out, took) = timed(&[
        "run",
        "--backend",
        &url,
        "--name",
        "job",
        "--wait",
        "1s",
        "--",
        "sh",
        "-c",
        &script,
    ]);
    let (st, st_took) = timed(&["status", "--backend", &url, "--name", "job"]);
    signal(member, "CONT");
    eprintln!("all frozen: run --wait 1s took {took:?}, status {st_took:?}");
    assert_eq!(out.status.code(), Some(69), "{}", text(&out));
    assert!(
        text(&out).contains("within the time given (--wait)"),
        "{}",
        text(&out)
    );
    assert!(
        took < Duration::from_millis(1700),
        "--wait 1s took {took:?}"
    );
    assert_eq!(st.status.code(), Some(4), "{}", text(&st));
    assert!(
        st_took < Duration::from_millis(2700),
        "status took {st_took:?}"
    );
    assert_eq!(log_lines(&log), ["ran", "ran"]);
    cluster.members[0].stop();
}

/// `--json` with `--backend`, as without it: `run` prints exactly one
/// object, `{"exit": N}` with the command's status once it has exited, or
/// the error's (75 when another host holds the lock); `status` of an etcd
/// that cannot be read is the unknown state with `error` and `exit` 4.
#[test]
fn json_with_a_backend_prints_one_object_on_success_and_failure() {
    if !have_etcd() {
        return;
    }
    let _serial = serial();
    let cluster = Cluster::start(1);
    let url = cluster.url();
    let one_object = |out: &Output| -> serde_json::Value {
        let s = String::from_utf8_lossy(&out.stdout);
        assert_eq!(s.lines().count(), 1, "not one line: {}", text(out));
        serde_json::from_str(&s).unwrap_or_else(|e| panic!("{e}: {}", text(out)))
    };
    let run_json = |name: &str, script: &str| -> Output {
        finish(
            run(&url, "host-j", name, &["--json"], script),
            Duration::from_secs(30),
        )
    };
    // The command's status, as the one object; its own output before it.
    let out = run_json("j", "echo from-the-command; exit 3");
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout, "from-the-command\n{\"exit\":3}\n", "{}", text(&out));
    let out = run_json("j", "true");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(one_object(&out), serde_json::json!({ "exit": 0 }));

    // Held by another host: 75, the error's object.
    let ready = cluster.dir.path().join("ready");
    let _holder = run(
        &url,
        "host-a",
        "held",
        &[],
        &format!("touch {}; exec sleep 30", sh_quote(&ready)),
    );
    wait_for("host-a's command", || ready.exists());
    let out = run_json("held", "echo never");
    assert_eq!(out.status.code(), Some(75), "{}", text(&out));
    let v = one_object(&out);
    assert_eq!(v["exit"], 75, "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("host-a"),
        "the holder is named: {v}"
    );

    // etcd not there: unknown, with the error and its exit code.
    let nowhere = format!("etcd://127.0.0.1:{}/test", free_port());
    let out = status(&nowhere, "host-j", "j", true);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    let v = one_object(&out);
    assert_eq!(v["state"], "unknown", "{v}");
    assert_eq!(v["exit"], 4, "{v}");
    assert!(v["error"].as_str().unwrap().contains("127.0.0.1"), "{v}");
}
