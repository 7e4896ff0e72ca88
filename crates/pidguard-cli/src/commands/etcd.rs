//! `--backend etcd://…`: `run`, `status` and `stop` on a cluster-wide lock
//! (the library's `pidguard::etcd`). Built with the `etcd` feature; without
//! it, `--backend` fails with exit 69 and says how to get it.

#[cfg(not(feature = "etcd"))]
use crate::cli::{RunArgs, StatusArgs, StopArgs};
#[cfg(not(feature = "etcd"))]
use crate::exit::{Exit, Failure};

#[cfg(not(feature = "etcd"))]
fn unsupported() -> Failure {
    Failure::new(
        Exit::Unavailable,
        "--backend etcd://… needs a pidguard built with the `etcd` feature \
         (cargo install pidguard-cli --features etcd)",
    )
}

#[cfg(not(feature = "etcd"))]
pub fn run(_args: &RunArgs, _url: &str) -> Result<Exit, Failure> {
    Err(unsupported())
}

#[cfg(not(feature = "etcd"))]
pub fn status(_args: &StatusArgs, _url: &str) -> Result<Exit, Failure> {
    Err(unsupported())
}

#[cfg(not(feature = "etcd"))]
pub fn stop(_args: &StopArgs, _url: &str, _schedule: &pidguard::Schedule) -> Result<Exit, Failure> {
    Err(unsupported())
}

#[cfg(feature = "etcd")]
pub use imp::{run, status, stop};

#[cfg(feature = "etcd")]
mod imp {
    use std::collections::VecDeque;
    use std::process::{Command, ExitStatus};
    use std::sync::mpsc;
    use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

    use pidguard::etcd::{Backend, Event, Holding, Lock, StopOutcome};
    use pidguard::{ErrorKind, Pid, Process, Schedule, Signal, Step};
    use serde_json::json;
    use signal_hook::iterator::exfiltrator::WithOrigin;
    use signal_hook::iterator::SignalsInfo;

    use crate::cli::{FileArgs, RunArgs, StatusArgs, StopArgs};
    use crate::commands::run::{exec_failure, exit_code, reached_the_child_too, FORWARDED};
    use crate::exit::{Exit, Failure};

    /// The default schedule when the lock is lost: TERM, 10 s, KILL, 5 s.
    const LOST_SCHEDULE: Duration = Duration::from_secs(10);

    /// What `stop` adds to the schedule's length when waiting for the lock
    /// to be released: the holder's reaction, or its lease running out.
    const STOP_SLACK: Duration = Duration::from_secs(15);

    fn failure(e: pidguard::etcd::Error) -> Failure {
        let exit = match e.kind() {
            ErrorKind::AlreadyRunning => Exit::TempFail,
            ErrorKind::InvalidName => Exit::Usage,
            _ => Exit::Unavailable,
        };
        Failure::new(exit, e.to_string())
    }

    fn usage(message: impl Into<String>) -> Failure {
        Failure::new(Exit::Usage, message)
    }

    /// The lock a command names: `--name` on `--backend`.
    fn lock(file: &FileArgs, url: &str) -> Result<Lock, Failure> {
        if file.target.pidfile.is_some() {
            return Err(usage(
                "--backend takes --name NAME (the lock key is PREFIX/NAME), not --pidfile",
            ));
        }
        if file.instance.is_some() {
            return Err(usage(
                "--instance applies to PID files; with --backend put the instance into --name",
            ));
        }
        let name = file
            .target
            .name
            .as_deref()
            .ok_or_else(|| usage("--backend needs --name NAME"))?;
        let backend = Backend::parse(url).map_err(failure)?;
        backend.key(name).map_err(failure)?;
        Ok(Lock::new(backend, name))
    }

    enum Ev {
        Exited(std::io::Result<ExitStatus>),
        Lock(Event),
    }

    pub fn run(args: &RunArgs, url: &str) -> Result<Exit, Failure> {
        for (set, flag) in [
            (args.exec, "--exec"),
            (args.daemon, "--daemon"),
            (args.fsync, "--fsync"),
        ] {
            if set {
                return Err(usage(format!(
                    "{flag} is not available with --backend: the supervisor must stay to keep \
                     the lease alive"
                )));
            }
        }
        let mut lock = lock(&args.file, url)?;
        if let Some(ttl) = args.ttl {
            if ttl < Duration::from_secs(1) || ttl.subsec_nanos() != 0 {
                return Err(usage(format!(
                    "invalid --ttl {ttl:?}: etcd leases count whole seconds; give at least 1s, \
                     e.g. --ttl 10s"
                )));
            }
            lock.ttl(ttl);
        }
        // The record names the command once it runs, not the supervisor.
        lock.starting();
        let schedule = args
            .schedule
            .clone()
            .unwrap_or_else(|| Schedule::timeout(Signal::TERM, LOST_SCHEDULE));
        let mut guard = match args.wait {
            Some(d) => lock.acquire_timeout(d),
            None => lock.acquire(),
        }
        .map_err(failure)?;
        let key = guard.key().to_string();

        // From here on the supervisor outlives signals and passes them on
        // (those arriving before the command starts are queued).
        let mut signals = match SignalsInfo::<WithOrigin>::new(FORWARDED) {
            Ok(s) => s,
            Err(e) => {
                let _ = guard.release();
                return Err(Failure::new(
                    Exit::Software,
                    format!("cannot install signal handlers: {e}"),
                ));
            }
        };
        let handle = signals.handle();

        // Taking the lock may have been slow, or etcd may have become
        // unreachable since: never start the command without the lock.
        if !guard.is_held() {
            let why = match guard.wait_event(Some(Duration::ZERO)) {
                Some(Event::Lost(why)) => why,
                _ => "its lease was not renewed in time".to_string(),
            };
            handle.close();
            let _ = guard.release();
            return Err(Failure::new(
                Exit::Unavailable,
                format!(
                    "lost the lock {key} before the command started ({why}); the command was \
                     not started; check that etcd at {url} answers and has a quorum, then try \
                     again"
                ),
            ));
        }

        let program = &args.command[0];
        let mut cmd = Command::new(program);
        cmd.args(&args.command[1..])
            .env("PIDGUARD_FENCE", guard.fence().to_string());
        die_with_supervisor(&mut cmd);
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                handle.close();
                let _ = guard.release();
                return Err(exec_failure(program, &e));
            }
        };
        let pid = Pid::from_u32(child.id()).expect("a child's PID is positive");
        // The child is ours and not yet reaped: its PID cannot be reused
        // while these handles exist. Both are opened before the thread that
        // reaps it starts: one to run schedules, one to forward signals.
        let (process, target) = match Process::open(pid).and_then(|p| Ok((p, Process::open(pid)?)))
        {
            Ok(pair) => pair,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                handle.close();
                let _ = guard.release();
                return Err(Failure::new(
                    Exit::Unavailable,
                    format!(
                        "cannot open a handle on the command (PID {pid}) to supervise it: {e}; \
                         the command was killed and the lock {key} released; check the limit \
                         on open files (ulimit -n) and try again"
                    ),
                ));
            }
        };

        let (tx, rx) = mpsc::channel();
        // Loss and stop events flow from now on, even while the PID is
        // being recorded below.
        let monitor = guard.monitor();
        let events = tx.clone();
        std::thread::spawn(move || loop {
            if let Some(ev) = monitor.wait_event(None) {
                if events.send(Ev::Lock(ev)).is_err() {
                    return;
                }
            }
        });
        std::thread::spawn(move || {
            let _ = tx.send(Ev::Exited(child.wait()));
        });
        let forwarder = std::thread::spawn(move || {
            for origin in signals.forever() {
                if reached_the_child_too(&origin, pid) {
                    continue;
                }
                if let Some(s) = Signal::from_raw(origin.signal) {
                    let _ = target.signal(s);
                }
            }
        });
        if let Err(e) = guard.set_pid(pid) {
            eprintln!("pidguard: warning: cannot record the command's PID in {key}: {e}");
        }

        // Events that arrived while a stop schedule ran, oldest first.
        let mut pending: VecDeque<Ev> = VecDeque::new();
        let mut lost = None;
        let status = loop {
            let next = match pending.pop_front() {
                Some(ev) => Ok(ev),
                None => rx.recv(),
            };
            match next {
                Ok(Ev::Exited(status)) => break status,
                Ok(Ev::Lock(Event::Lost(why))) => {
                    if lost.is_some() {
                        continue;
                    }
                    eprintln!(
                        "pidguard: lost the lock {key}: {why}; stopping the command (PID {pid}) \
                         with {schedule}"
                    );
                    run_schedule(&process, &schedule, &mut || false);
                    lost = Some(why);
                }
                Ok(Ev::Lock(Event::StopRequested { from, schedule: s })) => {
                    if lost.is_some() {
                        continue;
                    }
                    let s = s.unwrap_or_else(|| schedule.clone());
                    eprintln!(
                        "pidguard: stop requested from host {from}: stopping the command (PID \
                         {pid}) with {s}"
                    );
                    // A loss while following the request takes over at once.
                    let mut lost_meanwhile = || {
                        while let Ok(ev) = rx.try_recv() {
                            if matches!(ev, Ev::Lock(Event::Lost(_))) {
                                pending.push_front(ev);
                                return true;
                            }
                            pending.push_back(ev);
                        }
                        false
                    };
                    run_schedule(&process, &s, &mut lost_meanwhile);
                }
                Ok(Ev::Lock(_)) => {}
                Err(_) => {
                    break Err(std::io::Error::other("the waiting thread ended"));
                }
            }
        };
        handle.close();
        let _ = forwarder.join();
        let released = guard.release();
        let status = status.map_err(|e| {
            Failure::new(Exit::Software, format!("cannot wait for the command: {e}"))
        })?;
        if let Some(why) = lost {
            return Err(Failure::new(
                Exit::Unavailable,
                format!(
                    "lost the lock {key} while the command ran ({why}); the command was stopped \
                     (exit status {})",
                    exit_code(status)
                ),
            ));
        }
        if let Err(e) = released {
            eprintln!("pidguard: warning: {e}");
        }
        Ok(Exit::Child(exit_code(status)))
    }

    /// The command must not outlive its supervisor: nobody would renew the
    /// lease, and another host would start a second instance. On Linux the
    /// kernel kills it (SIGKILL) when the supervisor dies.
    #[cfg(target_os = "linux")]
    fn die_with_supervisor(cmd: &mut Command) {
        use std::os::unix::process::CommandExt;
        let parent = rustix::process::getpid();
        // SAFETY: the closure runs in the child between fork and exec and
        // only makes two system calls (prctl, getppid); it allocates nothing
        // (an Errno converts to io::Error without allocating).
        unsafe {
            cmd.pre_exec(move || {
                let kill = rustix::process::Signal::KILL;
                rustix::process::set_parent_process_death_signal(Some(kill))?;
                if rustix::process::getppid() != Some(parent) {
                    // The supervisor died before the prctl took effect.
                    return Err(rustix::io::Errno::SRCH.into());
                }
                Ok(())
            });
        }
    }

    #[cfg(not(target_os = "linux"))]
    fn die_with_supervisor(_cmd: &mut Command) {}

    /// How often a schedule's waits look for a reason to stop following it.
    const SCHEDULE_POLL: Duration = Duration::from_millis(100);

    /// How [`run_schedule`] ended.
    #[derive(Debug, PartialEq, Eq)]
    enum ScheduleEnd {
        /// The process exited.
        Exited,
        /// The schedule ran out with the process still running.
        Running,
        /// `interrupt` asked to stop following the schedule.
        Interrupted,
    }

    /// Follows `schedule` on the process, calling `interrupt` between steps
    /// and every [`SCHEDULE_POLL`] of a wait; it returns `true` to give up
    /// the schedule at once.
    fn run_schedule(
        process: &Process,
        schedule: &Schedule,
        interrupt: &mut dyn FnMut() -> bool,
    ) -> ScheduleEnd {
        let steps = schedule.steps();
        let mut i = 0;
        loop {
            if i == steps.len() {
                match schedule.repeat_from() {
                    Some(r) => i = r,
                    None if process.has_exited() => return ScheduleEnd::Exited,
                    None => return ScheduleEnd::Running,
                }
            }
            if interrupt() {
                return ScheduleEnd::Interrupted;
            }
            match steps[i] {
                Step::Signal(sig) => {
                    let _ = process.signal(sig);
                    if sig == Signal::TERM {
                        let _ = process.signal(Signal::CONT);
                    }
                }
                Step::Wait(d) => {
                    let end = Instant::now().checked_add(d);
                    loop {
                        let left = end.map_or(Duration::MAX, |e| {
                            e.saturating_duration_since(Instant::now())
                        });
                        if process.wait_timeout(left.min(SCHEDULE_POLL)) {
                            return ScheduleEnd::Exited;
                        }
                        if left <= SCHEDULE_POLL {
                            break;
                        }
                        if interrupt() {
                            return ScheduleEnd::Interrupted;
                        }
                    }
                }
            }
            i += 1;
        }
    }

    /// The schedule's total length; `None` if it repeats forever.
    fn schedule_length(s: &Schedule) -> Option<Duration> {
        if s.repeat_from().is_some() {
            return None;
        }
        Some(
            s.steps()
                .iter()
                .map(|st| match st {
                    Step::Wait(d) => *d,
                    Step::Signal(_) => Duration::ZERO,
                })
                .sum(),
        )
    }

    fn unix_secs(t: Option<SystemTime>) -> Option<f64> {
        t.and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_millis() as f64 / 1000.0)
    }

    /// `YYYY-MM-DDTHH:MM:SSZ`.
    fn iso_utc(t: SystemTime) -> String {
        let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()) as i64;
        let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
        // Howard Hinnant's civil_from_days.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = doy - (153 * mp + 2) / 5 + 1;
        let m = if mp < 10 { mp + 3 } else { mp - 9 };
        let y = yoe + era * 400 + i64::from(m <= 2);
        format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
            rem / 3600,
            rem % 3600 / 60,
            rem % 60
        )
    }

    fn holding_json(url: &str, h: &Holding) -> serde_json::Value {
        let starting = h.holder.starting;
        json!({
            "backend": url,
            "key": h.key,
            "state": if starting { "starting" } else { "running" },
            "host": h.holder.host,
            "boot_id": h.holder.boot_id,
            "pid": (!starting).then_some(h.holder.pid),
            "supervisor_pid": h.holder.supervisor_pid,
            "start_time": unix_secs(h.holder.start_time),
            "since": unix_secs(h.holder.since),
            "fence": h.fence,
            "version": h.holder.version,
            "lease_ttl": h.lease_ttl.map(|d| d.as_secs()),
        })
    }

    fn describe(h: &Holding) -> String {
        let since = h
            .holder
            .since
            .map(|t| format!(", since {}", iso_utc(t)))
            .unwrap_or_default();
        let ttl = h
            .lease_ttl
            .map(|d| format!(", lease {} s left", d.as_secs()))
            .unwrap_or_default();
        let pid = if h.holder.starting {
            format!(
                "supervisor PID {}, command not started yet",
                h.holder.supervisor_pid
            )
        } else {
            format!("PID {}", h.holder.pid)
        };
        format!(
            "host {} ({pid}{since}, fence {}{ttl})",
            h.holder.host, h.fence
        )
    }

    pub fn status(args: &StatusArgs, url: &str) -> Result<Exit, Failure> {
        let lock = lock(&args.file, url)?;
        let key = lock.key().map_err(failure)?;
        match lock.status() {
            Ok(Some(h)) => {
                if args.file.json {
                    println!("{}", holding_json(url, &h));
                } else {
                    let state = if h.holder.starting {
                        "starting"
                    } else {
                        "running"
                    };
                    println!("{key}: {state} on {}", describe(&h));
                }
                Ok(Exit::Success)
            }
            Ok(None) => {
                if args.file.json {
                    println!(
                        "{}",
                        json!({ "backend": url, "key": key, "state": "not-running" })
                    );
                } else {
                    println!("{key}: not running (no holder)");
                }
                Ok(Exit::NotRunning)
            }
            Err(e) if e.kind() == ErrorKind::InvalidName => Err(failure(e)),
            Err(e) => {
                if args.file.json {
                    println!(
                        "{}",
                        json!({ "backend": url, "key": key, "state": "unknown",
                                "error": e.to_string() })
                    );
                } else {
                    println!("{key}: unknown: {e}");
                }
                Ok(Exit::Unknown)
            }
        }
    }

    pub fn stop(args: &StopArgs, url: &str, schedule: &Schedule) -> Result<Exit, Failure> {
        let f = &args.filters;
        if f.exe.is_some() || f.user.is_some() || f.comm.is_some() {
            return Err(usage(
                "--exe, --user and --comm check a local process; they do not apply with --backend",
            ));
        }
        let lock = lock(&args.file, url)?;
        let key = lock.key().map_err(failure)?;
        let timeout = schedule_length(schedule).map(|d| d + STOP_SLACK);
        let outcome = lock
            .request_stop(Some(schedule), timeout)
            .map_err(failure)?;
        let (state, holding, exit) = match &outcome {
            StopOutcome::NotRunning => ("not-running", None, Exit::Success),
            StopOutcome::Stopped(h) => ("stopped", Some(h), Exit::Success),
            StopOutcome::StillRunning(h) => ("still-running", Some(h), Exit::Stale),
            _ => ("other", None, Exit::Software),
        };
        if args.file.json {
            let mut v = json!({ "backend": url, "key": key, "outcome": state });
            if let Some(h) = holding {
                v["host"] = json!(h.holder.host);
                v["pid"] = json!(h.holder.pid);
                v["fence"] = json!(h.fence);
            }
            println!("{v}");
        } else {
            match (&outcome, holding) {
                (StopOutcome::Stopped(_), Some(h)) => {
                    println!("{key}: stopped {}; the lock is released", describe(h))
                }
                (StopOutcome::StillRunning(_), Some(h)) => println!(
                    "{key}: still held by {} at the end of the schedule",
                    describe(h)
                ),
                _ => println!("{key}: not running (no holder)"),
            }
        }
        Ok(exit)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn formats_utc_dates() {
            let t = UNIX_EPOCH + Duration::from_secs(1_764_103_201);
            assert_eq!(iso_utc(t), "2025-11-25T20:40:01Z");
            assert_eq!(iso_utc(UNIX_EPOCH), "1970-01-01T00:00:00Z");
            let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
            assert_eq!(iso_utc(leap), "2000-02-29T00:00:00Z");
        }

        #[test]
        fn a_schedule_gives_way_to_an_interrupt_between_steps() {
            // A child that ignores TERM: only the interrupt ends the wait early.
            use std::io::BufRead;
            let mut child = Command::new("sh")
                .args(["-c", "trap '' TERM; echo ready; exec sleep 30"])
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("spawn sh");
            let mut line = String::new();
            let out = child.stdout.take().unwrap();
            std::io::BufReader::new(out).read_line(&mut line).unwrap();
            assert_eq!(line, "ready\n");
            let pid = Pid::from_u32(child.id()).unwrap();
            let process = Process::open(pid).expect("pin the child");
            let s: Schedule = "TERM/20/KILL/1".parse().unwrap();
            let started = Instant::now();
            let mut calls = 0;
            let end = run_schedule(&process, &s, &mut || {
                calls += 1;
                started.elapsed() >= Duration::from_millis(300)
            });
            let took = started.elapsed();
            let still_running = !process.has_exited();
            let _ = child.kill();
            let _ = child.wait();
            assert_eq!(end, ScheduleEnd::Interrupted);
            assert!(took < Duration::from_secs(2), "took {took:?}");
            assert!(calls >= 2, "interrupt polled {calls} times");
            assert!(still_running, "TERM is ignored, KILL never sent");

            // Without an interrupt the schedule runs to the end.
            let mut child = Command::new("sleep")
                .arg("30")
                .spawn()
                .expect("spawn sleep");
            let pid = Pid::from_u32(child.id()).unwrap();
            let process = Process::open(pid).expect("pin the child");
            let end = run_schedule(&process, &"TERM/5/KILL/1".parse().unwrap(), &mut || false);
            let _ = child.wait();
            assert_eq!(end, ScheduleEnd::Exited);
        }

        #[test]
        fn schedule_lengths() {
            let s: Schedule = "TERM/3/KILL/2".parse().unwrap();
            assert_eq!(schedule_length(&s), Some(Duration::from_secs(5)));
            let s: Schedule = "TERM/3/forever/KILL/2".parse().unwrap();
            assert_eq!(schedule_length(&s), None);
        }
    }
}
