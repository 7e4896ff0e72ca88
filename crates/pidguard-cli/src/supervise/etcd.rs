//! `--backend etcd://…`: `run`, `status` and `stop` on a cluster-wide lock
//! (the crate `pidguard-etcd`). Built with the `etcd` feature; without
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
    use std::ffi::OsString;
    use std::process::Command;
    use std::sync::mpsc;
    use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

    use pidguard::{ErrorKind, Pid, Schedule, ScheduleEnd, ScheduleTarget, Signal, Step};
    use pidguard_etcd::{
        margin, max_stop_within, min_ttl_for, Backend, Event, Holding, Lock, StopOutcome,
        DEFAULT_TTL,
    };
    use serde_json::json;
    use signal_hook::iterator::exfiltrator::WithOrigin;
    use signal_hook::iterator::SignalsInfo;

    use crate::cli::{BackendArgs, FileArgs, RunArgs, StatusArgs, StopArgs};
    use crate::exit::{Exit, Failure};
    use crate::output::print_json;
    use crate::supervise::foreground::{reached_the_child_too, FORWARDED};
    use crate::supervise::job::{self, Job, Watchdog};
    use crate::supervise::{exec_failure, exit_code};

    /// What `stop` adds to the schedule's length when waiting for the lock
    /// to be released: the holder's reaction, or its lease running out.
    const STOP_SLACK: Duration = Duration::from_secs(15);

    fn failure(e: pidguard_etcd::Error) -> Failure {
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

    /// The backend a command names: the URL, TLS files, the etcd user;
    /// each option, or else etcdctl's environment variable for it
    /// ([`Backend::configured`]).
    fn backend(url: &str, args: &BackendArgs, user: Option<&str>) -> Result<Backend, Failure> {
        let env_user = std::env::var_os("ETCDCTL_USER").filter(|u| !u.is_empty());
        if args.password.is_some() && user.is_none() && env_user.is_none() {
            return Err(usage("--password needs --user USER (or ETCDCTL_USER)"));
        }
        let option = |name: &str| -> Option<OsString> {
            match name {
                "ETCDCTL_CACERT" => args.cacert.clone().map(OsString::from),
                "ETCDCTL_CERT" => args.cert.clone().map(OsString::from),
                "ETCDCTL_KEY" => args.key.clone().map(OsString::from),
                "ETCDCTL_USER" => user.map(OsString::from),
                "ETCDCTL_PASSWORD" => args.password.clone().map(OsString::from),
                _ => None,
            }
        };
        Backend::configured(url, |name| option(name).or_else(|| std::env::var_os(name)))
            .map_err(failure)
    }

    /// The lock a command names: `--name` on `--backend`.
    fn lock(
        file: &FileArgs,
        url: &str,
        args: &BackendArgs,
        user: Option<&str>,
    ) -> Result<Lock, Failure> {
        if file.target.pidfile.is_some() {
            return Err(usage(
                "--backend takes --name NAME (the lock key is PREFIX/lock/NAME), not --pidfile",
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
        let backend = backend(url, args, user)?;
        backend.key(name).map_err(failure)?;
        Ok(Lock::new(backend, name))
    }

    enum Ev {
        Exited(std::io::Result<()>),
        Lock(Event),
    }

    /// The lost-lock schedule and the time it needs (what the lock must
    /// reserve before etcd may expire the lease): the given `--schedule`
    /// if it fits in the lease, else a usage error saying why; by default
    /// TERM, then KILL, then the KILL's confirmation, in a third of the TTL.
    fn loss_schedule(
        given: Option<&Schedule>,
        ttl: Duration,
    ) -> Result<(Schedule, Duration), Failure> {
        let confirm = margin(ttl);
        let max = max_stop_within(ttl);
        let default = {
            let term = (ttl / 3).saturating_sub(confirm);
            let ms = |d: Duration| d.as_millis();
            format!("TERM/{}ms/KILL/{}ms", ms(term), ms(confirm))
                .parse::<Schedule>()
                .expect("a valid schedule")
        };
        let Some(s) = given else {
            let need = schedule_length(&default).expect("finite");
            return Ok((default, need));
        };
        let why = |what: String| {
            usage(format!(
                "invalid --schedule {s} with --backend: {what}; the command must be gone \
                 before etcd may expire the lease (TTL {} s) and let another host take the \
                 lock. The default for this TTL is {default}",
                ttl.as_secs()
            ))
        };
        let Some(length) = schedule_length(s) else {
            return Err(why("it repeats forever".into()));
        };
        let last_signal = s.steps().iter().rev().find_map(|st| match st {
            Step::Signal(sig) => Some(*sig),
            Step::Wait(_) => None,
        });
        if last_signal != Some(Signal::KILL) {
            return Err(why(
                "it does not end with KILL, so a command that ignores its signals would run \
                 on beside the next holder"
                    .into(),
            ));
        }
        let trailing: Duration = s
            .steps()
            .iter()
            .rev()
            .take_while(|st| matches!(st, Step::Wait(_)))
            .map(|st| match st {
                Step::Wait(d) => *d,
                Step::Signal(_) => Duration::ZERO,
            })
            .sum();
        // Time to confirm the KILL, if the schedule leaves none.
        let need = length + confirm.saturating_sub(trailing);
        if need > max {
            return Err(why(format!(
                "it needs {:.1} s (with {:.1} s to confirm the KILL), but the lock can be \
                 given up at most {:.1} s before that (half the TTL less a margin of {:.1} s); \
                 give a shorter schedule or --ttl {}s or more",
                need.as_secs_f64(),
                confirm.as_secs_f64(),
                max.as_secs_f64(),
                confirm.as_secs_f64(),
                min_ttl_for(need).as_secs()
            )));
        }
        Ok((s.clone(), need))
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
        let mut lock = lock(
            &args.file,
            url,
            &args.backend,
            args.etcd_user.user.as_deref(),
        )?;
        if let Some(ttl) = args.ttl {
            if ttl < Duration::from_secs(1) || ttl.subsec_nanos() != 0 {
                return Err(usage(format!(
                    "invalid --ttl {ttl:?}: etcd leases count whole seconds; give at least 1s, \
                     e.g. --ttl 10s"
                )));
            }
            lock.ttl(ttl);
        }
        let ttl = args.ttl.unwrap_or(DEFAULT_TTL);
        let (schedule, stop_time) = loss_schedule(args.schedule.as_ref(), ttl)?;
        // The record names the command once it runs, not the supervisor;
        // the lock counts as lost early enough for the schedule to end
        // before another host can take it.
        lock.starting().stop_within(stop_time);
        // Orphans of the job come to this process, not to init.
        if let Err(e) = job::become_subreaper() {
            eprintln!(
                "pidguard: warning: cannot become the subreaper of the command's processes \
                 ({e}); those that leave its process group and lose their parent are not \
                 stopped with it"
            );
        }
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
        let give_up = |guard: pidguard_etcd::Guard, f: Failure| {
            handle.close();
            let _ = guard.release();
            Err(f)
        };

        // The watchdog runs before the command does.
        let mut watchdog = match Watchdog::start() {
            Ok(w) => w,
            Err(e) => {
                return give_up(
                    guard,
                    Failure::new(
                        Exit::Unavailable,
                        format!(
                            "cannot start the watchdog process that stops the command if this \
                             supervisor stalls ({e}); the command was not started and the lock \
                             {key} released"
                        ),
                    ),
                )
            }
        };

        // Taking the lock may have been slow, or etcd may have become
        // unreachable since: never start the command without the lock.
        if !guard.is_held() {
            let why = loss_reason(&guard);
            watchdog.disarm();
            return give_up(
                guard,
                Failure::new(
                    Exit::Unavailable,
                    format!(
                        "lost the lock {key} before the command started ({why}); the command \
                         was not started; check that etcd at {url} answers and has a quorum, \
                         then try again"
                    ),
                ),
            );
        }

        let program = &args.command[0];
        let mut cmd = Command::new(program);
        cmd.args(&args.command[1..])
            .env("PIDGUARD_FENCE", guard.fence().to_string());
        job::contain(&mut cmd);
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                watchdog.disarm();
                return give_up(guard, exec_failure(program, &e));
            }
        };
        let pid = Pid::from_u32(child.id()).expect("a child's PID is positive");
        // The command's process group and every process it starts; the
        // leader is reaped only once all are gone.
        let job = Job::new(pid).adopting(&[watchdog.pid()]);
        let feed = |watchdog: &mut Watchdog, guard: &pidguard_etcd::Monitor| {
            if let Some(d) = guard.deadline() {
                // Kill at the latest when the KILL's confirmation must start.
                let _ = watchdog.deadline(d.checked_sub(margin(ttl)).unwrap_or(d));
            }
        };
        let monitor = guard.monitor();
        if watchdog.guard(&job).is_err() {
            // No protection against a stall: do not run.
            job.signal(Signal::KILL);
            let _ = child.wait();
            watchdog.disarm();
            return give_up(
                guard,
                Failure::new(
                    Exit::Unavailable,
                    format!(
                        "the watchdog process ended before it could guard the command; the \
                         command was killed and the lock {key} released; try again"
                    ),
                ),
            );
        }
        feed(&mut watchdog, &monitor);

        let (tx, rx) = mpsc::channel();
        // Loss and stop events flow from now on, even while the PID is
        // being recorded below.
        let events = tx.clone();
        let m = monitor.clone();
        std::thread::spawn(move || loop {
            if let Some(ev) = m.wait_event(None) {
                if events.send(Ev::Lock(ev)).is_err() {
                    return;
                }
            }
        });
        let leader = job.clone();
        std::thread::spawn(move || {
            let _ = tx.send(Ev::Exited(leader.wait_leader_exited()));
        });
        let target = job.clone();
        let forwarder = std::thread::spawn(move || {
            for origin in signals.forever() {
                if reached_the_child_too(&origin, pid) {
                    continue;
                }
                if let Some(s) = Signal::from_raw(origin.signal) {
                    target.signal(s);
                }
            }
        });
        if let Err(e) = guard.set_pid(pid) {
            eprintln!("pidguard: warning: cannot record the command's PID in {key}: {e}");
        }

        // Events that arrived while a stop schedule ran, oldest first.
        let mut pending: VecDeque<Ev> = VecDeque::new();
        let mut lost = None;
        // (The first time at once: what left the group already is known
        // from the start.)
        let mut told: Option<Instant> = None;
        let exited = loop {
            feed(&mut watchdog, &monitor);
            if told.is_none_or(|t| t.elapsed() >= TELL_OUTSIDE) {
                let _ = watchdog.outside_group(&job);
                told = Some(Instant::now());
            }
            let next = match pending.pop_front() {
                Some(ev) => Ok(ev),
                None => match rx.recv_timeout(WATCHDOG_FEED) {
                    Err(mpsc::RecvTimeoutError::Timeout) => continue,
                    Err(mpsc::RecvTimeoutError::Disconnected) => Err(()),
                    Ok(ev) => Ok(ev),
                },
            };
            match next {
                Ok(Ev::Exited(r)) => break r,
                Ok(Ev::Lock(Event::Lost(why))) => {
                    if lost.is_some() {
                        continue;
                    }
                    eprintln!(
                        "pidguard: lost the lock {key}: {why}; stopping the command (PID {pid}) \
                         and its processes with {schedule}"
                    );
                    stop_job(&job, &schedule, &monitor, &mut || false);
                    lost = Some(why);
                }
                Ok(Ev::Lock(Event::StopRequested { from, schedule: s })) => {
                    if lost.is_some() {
                        continue;
                    }
                    let s = s.unwrap_or_else(|| schedule.clone());
                    eprintln!(
                        "pidguard: stop requested from host {from}: stopping the command (PID \
                         {pid}) and its processes with {s}"
                    );
                    // A loss while following the request takes over at once.
                    let mut lost_meanwhile = || {
                        feed(&mut watchdog, &monitor);
                        while let Ok(ev) = rx.try_recv() {
                            if matches!(ev, Ev::Lock(Event::Lost(_))) {
                                pending.push_front(ev);
                                return true;
                            }
                            pending.push_back(ev);
                        }
                        false
                    };
                    run_schedule(&job, &s, &mut lost_meanwhile);
                }
                Ok(Ev::Lock(_)) => {}
                Err(()) => {
                    break Err(std::io::Error::other("the waiting thread ended"));
                }
            }
        };
        // A command killed by the watchdog while this supervisor was
        // stopped: the lock was lost, whether or not the loss was reported
        // before the exit.
        if lost.is_none() && !guard.is_held() {
            let why = loss_reason(&guard);
            lost = Some(format!(
                "{why}; this supervisor was stopped or stalled meanwhile, and its watchdog \
                 killed the command's job"
            ));
        }
        // The command has exited; processes it left behind are part of
        // the job and must not outlive the lock.
        if exited.is_ok() && lost.is_none() && !job.is_empty() {
            eprintln!(
                "pidguard: the command (PID {pid}) exited, leaving {} processes of its job \
                 running; stopping them with {schedule} before releasing the lock {key}",
                job.count()
            );
            stop_job(&job, &schedule, &monitor, &mut || {
                feed(&mut watchdog, &monitor);
                false
            });
        }
        // The lock is lost and processes of the job are left: those that
        // left its process group too recently for the watchdog to know them
        // when it killed the job for a stalled supervisor. No time for a
        // schedule: another host may hold the lock already.
        if lost.is_some() && !job.is_empty() {
            eprintln!(
                "pidguard: {} processes of the command's job outlived the lost lock {key} (the \
                 watchdog did not know them yet); killing them (SIGKILL)",
                job.count()
            );
            stop_job(&job, &KILL_NOW, &monitor, &mut || false);
        }
        handle.close();
        let _ = forwarder.join();
        let gone = job.is_empty();
        watchdog.disarm();
        let status = child.wait();
        job.reap_adopted();
        let released = guard.release();
        let status = status.map_err(|e| {
            Failure::new(Exit::Software, format!("cannot wait for the command: {e}"))
        })?;
        if !gone {
            eprintln!(
                "pidguard: warning: {} processes of the command's job could not be killed \
                 (uninterruptible sleep?)",
                job.count()
            );
        }
        if let Some(why) = lost {
            return Err(Failure::new(
                Exit::Unavailable,
                format!(
                    "lost the lock {key} while the command ran ({why}); the command and its \
                     processes were stopped (exit status {})",
                    exit_code(status)
                ),
            ));
        }
        if let Err(e) = released {
            eprintln!("pidguard: warning: {e}");
        }
        Ok(Exit::Child(exit_code(status)))
    }

    /// Why a guard no longer counts as held.
    fn loss_reason(guard: &pidguard_etcd::Guard) -> String {
        match guard.wait_event(Some(Duration::ZERO)) {
            Some(Event::Lost(why)) => why,
            _ => "its lease was not renewed in time".to_string(),
        }
    }

    /// SIGKILL, then up to a second for the job to go (then [`stop_job`]
    /// goes on sending SIGKILL for a second).
    static KILL_NOW: std::sync::LazyLock<Schedule> =
        std::sync::LazyLock::new(|| "KILL/1".parse().expect("a valid schedule"));

    /// How often the supervisor moves the watchdog's deadline on.
    const WATCHDOG_FEED: Duration = Duration::from_millis(50);

    /// How often the supervisor tells the watchdog about processes of the
    /// job outside its process group.
    const TELL_OUTSIDE: Duration = Duration::from_millis(500);

    /// Runs the lost-lock (or leftovers) schedule on the whole job, then
    /// makes sure it is gone: SIGKILL again until the lock's deadline (and
    /// a little after: nothing else can be done).
    fn stop_job(
        job: &Job,
        schedule: &Schedule,
        monitor: &pidguard_etcd::Monitor,
        interrupt: &mut dyn FnMut() -> bool,
    ) {
        if run_schedule(job, schedule, interrupt) == ScheduleEnd::Exited {
            return;
        }
        let until = monitor
            .deadline()
            .unwrap_or_else(Instant::now)
            .max(Instant::now())
            + Duration::from_secs(1);
        while Instant::now() < until {
            job.signal(Signal::KILL);
            if job.wait_empty(Duration::from_millis(50)) {
                return;
            }
        }
    }

    /// How often a schedule's waits look for a reason to stop following it.
    const SCHEDULE_POLL: Duration = Duration::from_millis(100);

    /// The whole job, as the library's one schedule loop
    /// ([`pidguard::run_schedule`]) follows a schedule on it: `interrupt`
    /// is called between steps and every [`SCHEDULE_POLL`] of a wait, and
    /// returns `true` to give up the schedule at once.
    struct JobTarget<'a> {
        job: &'a Job,
        interrupt: &'a mut dyn FnMut() -> bool,
    }

    impl ScheduleTarget for JobTarget<'_> {
        type Error = std::convert::Infallible;

        fn signal(&mut self, signal: Signal) -> Result<(), Self::Error> {
            self.job.signal(signal);
            Ok(())
        }

        fn wait_gone(&mut self, timeout: Duration) -> bool {
            self.job.wait_empty(timeout)
        }

        fn interrupted(&mut self) -> bool {
            (self.interrupt)()
        }

        fn poll_every(&self) -> Option<Duration> {
            Some(SCHEDULE_POLL)
        }
    }

    /// Follows `schedule` on the whole job (see [`JobTarget`]).
    fn run_schedule(
        job: &Job,
        schedule: &Schedule,
        interrupt: &mut dyn FnMut() -> bool,
    ) -> ScheduleEnd {
        let mut target = JobTarget { job, interrupt };
        match pidguard::run_schedule(schedule, &mut target) {
            Ok(end) => end,
            Err(never) => match never {},
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
        let lock = lock(
            &args.file,
            url,
            &args.backend,
            args.etcd_user.user.as_deref(),
        )?;
        let key = lock.key().map_err(failure)?;
        match lock.status() {
            Ok(Some(h)) => {
                if args.file.json {
                    print_json(&holding_json(url, &h));
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
                    print_json(&json!({ "backend": url, "key": key, "state": "not-running" }));
                } else {
                    println!("{key}: not running (no holder)");
                }
                Ok(Exit::NotRunning)
            }
            Err(e) if e.kind() == ErrorKind::InvalidName => Err(failure(e)),
            Err(e) => {
                if args.file.json {
                    // A failure's object: `error` and `exit` too.
                    print_json(&json!({ "backend": url, "key": key, "state": "unknown",
                                "error": e.to_string(), "exit": Exit::Unknown.code() }));
                } else {
                    println!("{key}: unknown: {e}");
                }
                Ok(Exit::Unknown)
            }
        }
    }

    pub fn stop(args: &StopArgs, url: &str, schedule: &Schedule) -> Result<Exit, Failure> {
        let f = &args.filters;
        if f.exe.is_some() || f.comm.is_some() {
            return Err(usage(
                "--exe and --comm check a local process; they do not apply with --backend",
            ));
        }
        // With --backend, --user is the etcd user.
        let lock = lock(&args.file, url, &args.backend, f.user.as_deref())?;
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
                // null while starting (no command yet), as `status` says.
                v["pid"] = json!((!h.holder.starting).then_some(h.holder.pid));
                v["fence"] = json!(h.fence);
            }
            print_json(&v);
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
            let mut cmd = Command::new("sh");
            cmd.args(["-c", "trap '' TERM; echo ready; exec sleep 30"])
                .stdout(std::process::Stdio::piped());
            job::contain(&mut cmd);
            let mut child = cmd.spawn().expect("spawn sh");
            let mut line = String::new();
            let out = child.stdout.take().unwrap();
            std::io::BufReader::new(out).read_line(&mut line).unwrap();
            assert_eq!(line, "ready\n");
            let job = Job::new(Pid::from_u32(child.id()).unwrap());
            let s: Schedule = "TERM/20/KILL/1".parse().unwrap();
            let started = Instant::now();
            let mut calls = 0;
            let end = run_schedule(&job, &s, &mut || {
                calls += 1;
                started.elapsed() >= Duration::from_millis(300)
            });
            let took = started.elapsed();
            let still_running = !job.is_empty();
            let _ = child.kill();
            let _ = child.wait();
            assert_eq!(end, ScheduleEnd::Interrupted);
            assert!(took < Duration::from_secs(2), "took {took:?}");
            assert!(calls >= 2, "interrupt polled {calls} times");
            assert!(still_running, "TERM is ignored, KILL never sent");

            // Without an interrupt the schedule runs to the end; a job of
            // a shell and its child (in the shell's own group) ends whole.
            let mut cmd = Command::new("sh");
            cmd.args(["-c", "sleep 30 & wait"]);
            job::contain(&mut cmd);
            let mut child = cmd.spawn().expect("spawn sh");
            let job = Job::new(Pid::from_u32(child.id()).unwrap());
            let t = Instant::now();
            while job.count() < 2 {
                assert!(t.elapsed() < Duration::from_secs(10), "sleep never started");
                std::thread::sleep(Duration::from_millis(5));
            }
            let end = run_schedule(&job, &"TERM/5/KILL/1".parse().unwrap(), &mut || false);
            assert_eq!(end, ScheduleEnd::Exited);
            assert_eq!(job.count(), 0);
            let _ = child.wait();
        }

        #[test]
        fn lost_lock_schedules_fit_in_the_lease() {
            let ttl = |s| Duration::from_secs(s);
            let (s, need) = loss_schedule(None, ttl(10)).unwrap();
            assert_eq!(s.to_string(), "TERM/2333ms/KILL/1");
            assert_eq!(need, Duration::from_millis(3333));
            let (s, need) = loss_schedule(None, ttl(3)).unwrap();
            assert_eq!(s.to_string(), "TERM/700ms/KILL/300ms");
            assert_eq!(need, Duration::from_secs(1));
            let ok: Schedule = "TERM/3/KILL/1".parse().unwrap();
            assert_eq!(loss_schedule(Some(&ok), ttl(10)).unwrap().1, ttl(4));
            // KILL last without a wait: the confirmation is added.
            let bare: Schedule = "TERM/3/KILL".parse().unwrap();
            assert_eq!(loss_schedule(Some(&bare), ttl(10)).unwrap().1, ttl(4));
            for (bad, why) in [
                ("TERM/10/KILL/5", "--ttl 32s or more"),
                ("TERM/2", "does not end with KILL"),
                ("TERM/1/forever/KILL/1", "repeats forever"),
            ] {
                let s: Schedule = bad.parse().unwrap();
                let e = loss_schedule(Some(&s), ttl(10)).unwrap_err();
                assert!(e.message.contains(why), "{bad}: {}", e.message);
                assert!(e.message.contains("TERM/2333ms/KILL/1"), "{}", e.message);
            }
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
