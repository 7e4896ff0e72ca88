//! `--backend etcd://…` against real etcd servers (`/usr/bin/etcd`, Debian's
//! `etcd-server`), each test starting its own on free loopback ports with a
//! temporary data directory and killing it (by PID) at the end. Several
//! hosts are simulated with `PIDGUARD_ETCD_HOST_ID`. Skipped, with a printed
//! reason, when etcd is not installed.
#![cfg(feature = "etcd")]

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{alive, pidguard, text, tmp, wait_for, Owned};

const ETCD: &str = "/usr/bin/etcd";

/// The tests measure timings against the TTL: run them one at a time so
/// they do not compete for the two CPUs of a CI machine, both as threads of
/// one test binary (`cargo test`) and as processes (`cargo nextest`, which
/// runs each test in a process of its own): a mutex, then an exclusive
/// `flock` on a file in the temporary directory.
static SERIAL: Mutex<()> = Mutex::new(());

struct Serial {
    _file: std::fs::File,
    _guard: std::sync::MutexGuard<'static, ()>,
}

fn serial() -> Serial {
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

fn have_etcd() -> bool {
    if Path::new(ETCD).exists() {
        return true;
    }
    eprintln!("skipped: {ETCD} is not installed (apt-get install etcd-server)");
    false
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

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
        holder["pid"] != holder["supervisor_pid"]
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
    let a = run(&url, "host-a", "job", &[], "exec sleep 60");
    let mut holder = serde_json::Value::Null;
    wait_for("host-a holding with its command's PID", || {
        holder = status_json(&url, "host-b", "job");
        holder["state"] == "running" && holder["pid"] != holder["supervisor_pid"]
    });
    let pid = holder["pid"].as_i64().unwrap() as i32;
    let fence = holder["fence"].as_u64().unwrap();
    assert_eq!(
        std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .unwrap()
            .trim(),
        "sleep"
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
    // TTL 4 s: the member stopped first may be the leader, and an election
    // (up to about 1 s here) plus a renewal sent to the dead endpoint must
    // fit in the TTL on a loaded machine.
    let a = run(
        &url,
        "host-a",
        "job",
        &["--ttl", "4s"],
        &format!("echo $PIDGUARD_FENCE > {}; exec sleep 120", sh_quote(&fa)),
    );
    wait_for("host-a's command", || {
        std::fs::metadata(&fa).is_ok_and(|m| m.len() > 0)
    });
    let mut holder = serde_json::Value::Null;
    wait_for("the command's PID in the holder value", || {
        holder = status_json(&url, "host-c", "job");
        holder["pid"] != holder["supervisor_pid"]
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
        text(&out).contains("unknown: cannot read /test/job"),
        "{}",
        text(&out)
    );
    let out = pidguard()
        .args(["run", "--backend", &url, "-p", "/tmp/x.pid", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}
