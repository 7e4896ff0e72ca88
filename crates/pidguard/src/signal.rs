//! Signals by name or number, and start-stop-daemon's stop schedules.
//!
//! ```
//! use pidguard::{Schedule, Signal};
//! assert_eq!("HUP".parse::<Signal>().unwrap(), Signal::HUP);
//! assert_eq!("sighup".parse::<Signal>().unwrap(), Signal::HUP);
//! assert_eq!("1".parse::<Signal>().unwrap(), Signal::HUP);
//! let s: Schedule = "TERM/10/KILL/5".parse().unwrap();
//! assert_eq!(s.to_string(), "TERM/10/KILL/5");
//! ```

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A signal that may be sent: never 0 (which only probes), always one the
/// platform knows.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Signal(i32);

/// Names (without `SIG`) of the signals pidguard knows, with their numbers on
/// this platform (`sys/` checks them against the C library's).
pub(crate) const NAMES: &[(&str, i32)] = &[
    ("HUP", num::HUP),
    ("INT", num::INT),
    ("QUIT", num::QUIT),
    ("ILL", num::ILL),
    ("TRAP", num::TRAP),
    ("ABRT", num::ABRT),
    ("IOT", num::ABRT),
    ("BUS", num::BUS),
    ("FPE", num::FPE),
    ("KILL", num::KILL),
    ("USR1", num::USR1),
    ("SEGV", num::SEGV),
    ("USR2", num::USR2),
    ("PIPE", num::PIPE),
    ("ALRM", num::ALRM),
    ("TERM", num::TERM),
    ("CHLD", num::CHLD),
    ("CONT", num::CONT),
    ("STOP", num::STOP),
    ("TSTP", num::TSTP),
    ("TTIN", num::TTIN),
    ("TTOU", num::TTOU),
    ("URG", num::URG),
    ("XCPU", num::XCPU),
    ("XFSZ", num::XFSZ),
    ("VTALRM", num::VTALRM),
    ("PROF", num::PROF),
    ("WINCH", num::WINCH),
    ("IO", num::IO),
    ("SYS", num::SYS),
];

/// Whether the platform's real-time signals may be named by number (Linux:
/// 32 to 64).
pub(crate) const REALTIME: bool = cfg!(any(target_os = "linux", target_os = "android"));
/// glibc's `SIGRTMIN` (see [`Signal::RTMIN`]).
const RTMIN: i32 = 34;
/// `SIGRTMAX`.
const RTMAX: i32 = 64;

/// The platform's signal numbers. POSIX fixes the names, not the numbers;
/// the systems pidguard builds on number them in one of three ways. The
/// platform seam checks every number against the C library's as the crate
/// builds (`sys/unix.rs`), so a wrong one fails the build rather than
/// sends another signal; this file stays free of the seam (a leaf: README,
/// Layout). Windows has no signals of its own and takes Linux's numbers
/// (names stay parseable everywhere; only `KILL` and 0 can be sent there).
mod num {
    macro_rules! numbers {
        ($($name:ident = $n:literal),* $(,)?) => { $(pub(crate) const $name: i32 = $n;)* };
    }

    // Linux's (most architectures), Android's and, by choice, Windows'.
    #[cfg(any(
        windows,
        all(
            any(target_os = "linux", target_os = "android"),
            not(any(
                target_arch = "mips",
                target_arch = "mips32r6",
                target_arch = "mips64",
                target_arch = "mips64r6",
                target_arch = "sparc",
                target_arch = "sparc64"
            ))
        )
    ))]
    numbers! {
        HUP = 1, INT = 2, QUIT = 3, ILL = 4, TRAP = 5, ABRT = 6, BUS = 7, FPE = 8,
        KILL = 9, USR1 = 10, SEGV = 11, USR2 = 12, PIPE = 13, ALRM = 14, TERM = 15,
        CHLD = 17, CONT = 18, STOP = 19, TSTP = 20, TTIN = 21, TTOU = 22, URG = 23,
        XCPU = 24, XFSZ = 25, VTALRM = 26, PROF = 27, WINCH = 28, IO = 29, SYS = 31,
    }

    // The BSDs' (macOS and iOS too), and Linux's on SPARC.
    #[cfg(any(
        target_vendor = "apple",
        target_os = "freebsd",
        target_os = "dragonfly",
        target_os = "netbsd",
        target_os = "openbsd",
        all(
            any(target_os = "linux", target_os = "android"),
            any(target_arch = "sparc", target_arch = "sparc64")
        )
    ))]
    numbers! {
        HUP = 1, INT = 2, QUIT = 3, ILL = 4, TRAP = 5, ABRT = 6, BUS = 10, FPE = 8,
        KILL = 9, USR1 = 30, SEGV = 11, USR2 = 31, PIPE = 13, ALRM = 14, TERM = 15,
        CHLD = 20, CONT = 19, STOP = 17, TSTP = 18, TTIN = 21, TTOU = 22, URG = 16,
        XCPU = 24, XFSZ = 25, VTALRM = 26, PROF = 27, WINCH = 28, IO = 23, SYS = 12,
    }

    // System V's: Solaris and illumos, and Linux's on MIPS.
    #[cfg(any(
        target_os = "solaris",
        target_os = "illumos",
        all(
            any(target_os = "linux", target_os = "android"),
            any(
                target_arch = "mips",
                target_arch = "mips32r6",
                target_arch = "mips64",
                target_arch = "mips64r6"
            )
        )
    ))]
    numbers! {
        HUP = 1, INT = 2, QUIT = 3, ILL = 4, TRAP = 5, ABRT = 6, BUS = 10, FPE = 8,
        KILL = 9, USR1 = 16, SEGV = 11, USR2 = 17, PIPE = 13, ALRM = 14, TERM = 15,
        CHLD = 18, CONT = 25, STOP = 23, TSTP = 24, TTIN = 26, TTOU = 27, URG = 21,
        XCPU = 30, XFSZ = 31, VTALRM = 28, PROF = 29, WINCH = 20, IO = 22, SYS = 12,
    }

    #[cfg(not(any(
        windows,
        target_os = "linux",
        target_os = "android",
        target_vendor = "apple",
        target_os = "freebsd",
        target_os = "dragonfly",
        target_os = "netbsd",
        target_os = "openbsd",
        target_os = "solaris",
        target_os = "illumos"
    )))]
    compile_error!(
        "pidguard does not know this system's signal numbers: it builds on Linux, Android, \
         FreeBSD, DragonFly, NetBSD, OpenBSD, macOS, Solaris, illumos and Windows. Add the \
         system to a table in crates/pidguard/src/signal.rs (sys/unix.rs checks it)."
    );

    /// The numbers the system names (not the real-time ones, see
    /// `REALTIME`): 1 to 31 on each of these systems, and FreeBSD's
    /// `SIGTHR` (32) and `SIGLIBRT` (33).
    pub(crate) const fn named(n: i32) -> bool {
        matches!(n, 1..=31) || (cfg!(target_os = "freebsd") && matches!(n, 32 | 33))
    }
}

impl Signal {
    /// `SIGHUP`.
    pub const HUP: Signal = Signal(num::HUP);
    /// `SIGINT`.
    pub const INT: Signal = Signal(num::INT);
    /// `SIGQUIT`.
    pub const QUIT: Signal = Signal(num::QUIT);
    /// `SIGKILL`.
    pub const KILL: Signal = Signal(num::KILL);
    /// `SIGUSR1`.
    pub const USR1: Signal = Signal(num::USR1);
    /// `SIGUSR2`.
    pub const USR2: Signal = Signal(num::USR2);
    /// `SIGTERM`.
    pub const TERM: Signal = Signal(num::TERM);
    /// `SIGCONT`.
    pub const CONT: Signal = Signal(num::CONT);
    /// `SIGSTOP`.
    pub const STOP: Signal = Signal(num::STOP);

    /// The signal with this number, if the platform has it (never 0): a
    /// named one, or on Linux any number up to [`Signal::RTMAX`] (the
    /// real-time signals).
    pub fn from_raw(n: i32) -> Option<Signal> {
        Signal::known(n).then_some(Signal(n))
    }

    /// Whether [`Signal::from_raw`] takes `n` (`sys/` checks this against
    /// the C library's list, as the crate builds).
    pub(crate) const fn known(n: i32) -> bool {
        num::named(n) || (REALTIME && n > 0 && n <= RTMAX)
    }

    /// The first real-time signal as glibc and `kill -l` number it (34 on
    /// Linux: the kernel's 32 and 33 are taken by the C library's threads,
    /// but may still be sent by number).
    pub const RTMIN: i32 = RTMIN;

    /// The last real-time signal (64 on Linux).
    pub const RTMAX: i32 = RTMAX;

    /// The signal's number.
    pub fn as_raw(self) -> i32 {
        self.0
    }

    /// The signal's name without `SIG` (`"TERM"`), or its number as text for
    /// a signal without a name here.
    ///
    /// Real-time signals are named as `kill -l` names them: `RTMIN`,
    /// `RTMIN+1`…, `RTMAX` (32 and 33, below `RTMIN`, by number).
    pub fn name(self) -> String {
        if let Some((name, _)) = NAMES.iter().find(|(_, n)| *n == self.0) {
            return (*name).to_string();
        }
        match self.0 {
            RTMAX => "RTMAX".into(),
            RTMIN => "RTMIN".into(),
            n if REALTIME && n > RTMIN && n < RTMAX => format!("RTMIN+{}", n - RTMIN),
            n => n.to_string(),
        }
    }
}

impl fmt::Debug for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SIG{}", self.name())
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// A signal or schedule that could not be parsed; the message says why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyntaxError(String);

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SyntaxError {}

impl FromStr for Signal {
    type Err = SyntaxError;

    /// `HUP`, `SIGHUP`, `hup` and `1` all name SIGHUP; `RTMIN+2`,
    /// `SIGRTMIN+2`, `RTMAX-1` and `36` real-time signals (Linux). `0` is
    /// refused (it sends nothing), and so is any unknown name or number.
    fn from_str(s: &str) -> Result<Signal, SyntaxError> {
        let t = s.trim();
        if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
            return t
                .parse::<i32>()
                .ok()
                .filter(|n| *n > 0)
                .and_then(Signal::from_raw)
                .ok_or_else(|| {
                    let range = if REALTIME {
                        format!("1 to {RTMAX}")
                    } else {
                        "a signal number this system has".into()
                    };
                    SyntaxError(format!(
                        "{t:?} is not a signal number this system knows (use {range}, or a name \
                         such as TERM; 0, which sends nothing, only with `signal`)"
                    ))
                });
        }
        let upper = t.to_ascii_uppercase();
        let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
        if let Some(sig) = NAMES.iter().find(|(name, _)| *name == bare) {
            return Ok(Signal(sig.1));
        }
        let realtime = |base: i32, rest: &str, sign: i32| -> Option<Signal> {
            let off = match rest {
                "" => 0,
                r if r.len() > 1 && r.bytes().skip(1).all(|b| b.is_ascii_digit()) => {
                    let (op, n) = r.split_at(1);
                    let n: i32 = n.parse().ok()?;
                    match op {
                        "+" if sign > 0 => n,
                        "-" if sign < 0 => -n,
                        _ => return None,
                    }
                }
                _ => return None,
            };
            let n = base.checked_add(off)?;
            (REALTIME && (RTMIN..=RTMAX).contains(&n)).then_some(Signal(n))
        };
        let rt = if let Some(rest) = bare.strip_prefix("RTMIN") {
            realtime(RTMIN, rest, 1)
        } else if let Some(rest) = bare.strip_prefix("RTMAX") {
            realtime(RTMAX, rest, -1)
        } else {
            None
        };
        rt.ok_or_else(|| {
            SyntaxError(format!(
                "unknown signal {s:?}: use a name such as TERM, HUP, KILL, USR1 (with or \
                 without SIG), RTMIN+N or RTMAX-N (N up to {}), or a number",
                RTMAX - RTMIN
            ))
        })
    }
}

/// One step of a [`Schedule`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Send this signal.
    Signal(Signal),
    /// Wait up to this long for the process to exit.
    Wait(Duration),
}

/// A stop schedule in start-stop-daemon's syntax: `SIG/SECONDS/SIG/SECONDS…`,
/// with `forever` marking where the rest of the schedule repeats forever.
///
/// A number is a wait, in the duration grammar of every option
/// ([`parse_duration`]: `30`, `0.5`, `500ms`, `2m`); a lone duration `N` is
/// start-stop-daemon's shorthand for `TERM/N/KILL/N`. A signal is a name (`TERM`, `SIGTERM`) or a number written with
/// a leading `-` (`-9`), as start-stop-daemon has it. The schedule fails if
/// the process is still running when it ends.
///
/// ```
/// use std::time::Duration;
/// use pidguard::{Schedule, Signal, Step};
/// let s: Schedule = "TERM/30/forever/KILL/5".parse().unwrap();
/// assert_eq!(s.steps()[0], Step::Signal(Signal::TERM));
/// assert_eq!(s.repeat_from(), Some(2));
/// assert_eq!(Schedule::timeout(Signal::TERM, Duration::from_secs(10)).to_string(), "TERM/10/KILL/5");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule {
    steps: Vec<Step>,
    repeat_from: Option<usize>,
}

impl Schedule {
    /// `SIGNAL/TIMEOUT/KILL/5`: what `--timeout` means.
    pub fn timeout(signal: Signal, timeout: Duration) -> Schedule {
        Schedule {
            steps: vec![
                Step::Signal(signal),
                Step::Wait(timeout),
                Step::Signal(Signal::KILL),
                Step::Wait(Duration::from_secs(5)),
            ],
            repeat_from: None,
        }
    }

    /// `SIGNAL/TIMEOUT/KILL/TIMEOUT`: start-stop-daemon's `--retry
    /// TIMEOUT`, and what a schedule of one duration (`"30"`) means.
    pub fn retry(signal: Signal, timeout: Duration) -> Schedule {
        Schedule {
            steps: vec![
                Step::Signal(signal),
                Step::Wait(timeout),
                Step::Signal(Signal::KILL),
                Step::Wait(timeout),
            ],
            repeat_from: None,
        }
    }

    /// The steps, in order.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// Where `forever` stood: the steps from this index on repeat forever.
    pub fn repeat_from(&self) -> Option<usize> {
        self.repeat_from
    }
}

impl FromStr for Schedule {
    type Err = SyntaxError;

    /// `SIG/TIME/SIG/TIME…` (see [`Schedule`]), or start-stop-daemon's
    /// shorthand, a lone duration `N`: `TERM/N/KILL/N` (as its `--retry N`).
    fn from_str(s: &str) -> Result<Schedule, SyntaxError> {
        if !s.contains('/') {
            if let Ok(d) = parse_duration(s) {
                return Ok(Schedule::retry(Signal::TERM, d));
            }
        }
        let mut steps = Vec::new();
        let mut repeat_from = None;
        for item in s.split('/') {
            let item = item.trim();
            if item.is_empty() {
                return Err(SyntaxError(format!(
                    "invalid schedule {s:?}: empty item (items are separated by single '/')"
                )));
            }
            if item.eq_ignore_ascii_case("forever") {
                if repeat_from.is_some() {
                    return Err(SyntaxError(format!(
                        "invalid schedule {s:?}: 'forever' appears more than once"
                    )));
                }
                repeat_from = Some(steps.len());
                continue;
            }
            let step = if let Some(num) = item.strip_prefix('-') {
                Step::Signal(num.parse().map_err(|e: SyntaxError| {
                    SyntaxError(format!("invalid schedule {s:?}: {e}"))
                })?)
            } else if item.starts_with(|c: char| c.is_ascii_digit() || c == '.') {
                Step::Wait(
                    parse_duration(item)
                        .map_err(|e| SyntaxError(format!("invalid schedule {s:?}: {e}")))?,
                )
            } else {
                Step::Signal(item.parse().map_err(|e: SyntaxError| {
                    SyntaxError(format!("invalid schedule {s:?}: {e}"))
                })?)
            };
            steps.push(step);
        }
        if !steps.iter().any(|s| matches!(s, Step::Signal(_))) {
            return Err(SyntaxError(format!(
                "invalid schedule {s:?}: it sends no signal"
            )));
        }
        if let Some(from) = repeat_from {
            let waits = steps[from..]
                .iter()
                .any(|s| matches!(s, Step::Wait(d) if !d.is_zero()));
            if !waits {
                return Err(SyntaxError(format!(
                    "invalid schedule {s:?}: the part after 'forever' must contain a wait"
                )));
            }
        }
        Ok(Schedule { steps, repeat_from })
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (i, step) in self.steps.iter().enumerate() {
            if !first {
                f.write_str("/")?;
            }
            first = false;
            if self.repeat_from == Some(i) {
                f.write_str("forever/")?;
            }
            match step {
                Step::Signal(s) => write!(f, "{s}")?,
                Step::Wait(d) => {
                    if d.subsec_nanos() == 0 {
                        write!(f, "{}", d.as_secs())?
                    } else {
                        write!(f, "{}ms", d.as_millis())?
                    }
                }
            }
        }
        Ok(())
    }
}

/// A duration, in the one grammar every pidguard option and schedule
/// uses: a number (fractions allowed) and an optional unit, `ms`, `us`/`µs`,
/// `s`/`sec` (the default), `m`/`min` or `h`: `10`, `1.5s`, `250ms`, `2m`,
/// `1h`. Surrounding whitespace is ignored; negative, non-finite and
/// absurdly long (over 10⁹ s) durations are refused.
///
/// ```
/// use std::time::Duration;
/// use pidguard::parse_duration;
/// assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
/// assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
/// assert!(parse_duration("10x").is_err());
/// ```
pub fn parse_duration(s: &str) -> Result<Duration, SyntaxError> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let scale = match unit {
        "" | "s" | "sec" => 1.0,
        "ms" => 0.001,
        "us" | "µs" => 0.000_001,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        _ => {
            return Err(SyntaxError(format!(
            "invalid duration {s:?}: unknown unit {unit:?} (use ms, s, m or h, e.g. 500ms or 10s)"
        )))
        }
    };
    let value: f64 = num.parse().map_err(|_| {
        SyntaxError(format!(
            "invalid duration {s:?}: expected a number such as 10, 1.5s or 250ms"
        ))
    })?;
    let secs = value * scale;
    if !secs.is_finite() || !(0.0..=1e9).contains(&secs) {
        return Err(SyntaxError(format!("invalid duration {s:?}: out of range")));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    #[cfg(unix)] // real-time signal numbers (Linux)
    fn signals_by_name_and_number() {
        for s in ["HUP", "SIGHUP", "hup", "SigHup", "1", " HUP "] {
            assert_eq!(s.parse::<Signal>().unwrap(), Signal::HUP, "{s}");
        }
        assert_eq!("9".parse::<Signal>().unwrap(), Signal::KILL);
        assert_eq!("TERM".parse::<Signal>().unwrap().as_raw(), 15);
        assert_eq!("34".parse::<Signal>().unwrap().name(), "RTMIN");
        for (name, n) in [
            ("RTMIN", 34),
            ("SIGRTMIN+2", 36),
            ("rtmin+30", 64),
            ("RTMAX", 64),
            ("SIGRTMAX-1", 63),
            ("32", 32),
            ("64", 64),
        ] {
            let sig: Signal = name.parse().unwrap();
            assert_eq!(sig.as_raw(), n, "{name}");
            assert_eq!(sig.name().parse::<Signal>().unwrap(), sig, "{name}");
        }
        for n in 1..=Signal::RTMAX {
            let sig = n.to_string().parse::<Signal>().unwrap();
            assert_eq!(sig.as_raw(), n);
            #[cfg(unix)]
            assert_eq!(sig.to_rustix().as_raw(), n);
        }
        for bad in [
            "",
            "0",
            "65",
            "RTMIN-1",
            "RTMAX+1",
            "RTMIN+31",
            "RTMIN+",
            "RTMIN+-1",
            "-1",
            "SIG",
            "NOPE",
            "99999",
            "1x",
            "+1",
            "SIGSIGHUP",
        ] {
            assert!(bad.parse::<Signal>().is_err(), "{bad:?}");
        }
        assert_eq!(Signal::USR1.name(), "USR1");
        assert_eq!(format!("{:?}", Signal::TERM), "SIGTERM");
    }

    #[test]
    fn schedules() {
        let s: Schedule = "TERM/10/KILL/5".parse().unwrap();
        assert_eq!(
            s.steps(),
            &[
                Step::Signal(Signal::TERM),
                Step::Wait(Duration::from_secs(10)),
                Step::Signal(Signal::KILL),
                Step::Wait(Duration::from_secs(5)),
            ]
        );
        let s: Schedule = "-15/0.5/-9/250ms".parse().unwrap();
        assert_eq!(s.steps()[1], Step::Wait(Duration::from_millis(500)));
        assert_eq!(s.steps()[2], Step::Signal(Signal::KILL));
        assert_eq!(s.to_string(), "TERM/500ms/KILL/250ms");
        // start-stop-daemon's shorthand, and durations as every option has
        // them.
        let s: Schedule = "30".parse().unwrap();
        assert_eq!(s, Schedule::retry(Signal::TERM, Duration::from_secs(30)));
        assert_eq!(s.to_string(), "TERM/30/KILL/30");
        let s: Schedule = "TERM/2m/KILL/1.5s".parse().unwrap();
        assert_eq!(s.to_string(), "TERM/120/KILL/1500ms");
        let s: Schedule = "TERM/forever/5".parse().unwrap();
        assert_eq!(s.repeat_from(), Some(1));
        assert_eq!(s.to_string(), "TERM/forever/5");
        for bad in [
            "",
            "/",
            "TERM//5",
            "10/5",
            "TERM/forever",
            "TERM/forever/KILL",
            "TERM/x",
            "forever/forever/TERM/1",
            "NOPE/5",
            "TERM/-5s",
            "TERM/1e99",
        ] {
            assert!(bad.parse::<Schedule>().is_err(), "{bad:?}");
        }
    }

    fn signal_strategy() -> impl Strategy<Value = Signal> {
        proptest::sample::select(NAMES.iter().map(|(_, n)| Signal(*n)).collect::<Vec<_>>())
    }

    fn step_strategy() -> impl Strategy<Value = Step> {
        prop_oneof![
            signal_strategy().prop_map(Step::Signal),
            (0u64..100_000).prop_map(|ms| Step::Wait(Duration::from_millis(ms))),
        ]
    }

    proptest! {
        #[test]
        fn schedule_display_round_trips(
            steps in proptest::collection::vec(step_strategy(), 1..8),
            sig in signal_strategy(),
        ) {
            let mut steps = steps;
            steps.push(Step::Signal(sig));
            let s = Schedule { steps, repeat_from: None };
            let back: Schedule = s.to_string().parse().unwrap();
            prop_assert_eq!(back, s);
        }

        #[test]
        fn schedule_parser_never_panics(input in "[A-Za-z0-9./ -]{0,40}") {
            let _ = input.parse::<Schedule>();
            let _ = input.parse::<Signal>();
        }

        #[test]
        fn signal_names_round_trip(sig in signal_strategy()) {
            prop_assert_eq!(sig.name().parse::<Signal>().unwrap(), sig);
            prop_assert_eq!(sig.as_raw().to_string().parse::<Signal>().unwrap(), sig);
        }
    }
}
