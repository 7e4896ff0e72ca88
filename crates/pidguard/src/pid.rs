//! The [`Pid`] type and the PID-file content parser.
//!
//! A [`Pid`] can only hold a value in `1..=i32::MAX`, so `kill(0, …)` (the
//! caller's process group) and `kill(-1, …)` (every process the caller may
//! signal) can never be reached from a PID file's content.
//!
//! The parser's rules and examples are on [`Pid::parse`].

use std::fmt;
use std::num::NonZeroU32;

/// [`Pid::MAX_READ`] (documented there).
pub const MAX_READ: usize = Pid::MAX_READ;

/// The largest PID value that fits the type (`i32::MAX`), as a `u32`.
const I32_MAX: u32 = i32::MAX as u32;

/// How many bytes of offending content an error message shows.
const SHOWN: usize = 24;

// ---------------------------------------------------------------------------
// Pid
// ---------------------------------------------------------------------------

/// A process ID: always in `1..=i32::MAX`.
///
/// A `Pid` is never 0 and never negative, so signalling it can never mean
/// "my process group" or "every process". Build one with [`Pid::new`],
/// [`Pid::from_u32`], [`Pid::current`], [`Pid::parse`] or [`str::parse`].
///
/// ```
/// use pidguard::Pid;
///
/// let pid = Pid::new(1234).unwrap();
/// assert_eq!(pid.get(), 1234);
/// assert_eq!(pid.to_string(), "1234");
/// assert_eq!(format!("{pid:?}"), "Pid(1234)");
/// assert!(Pid::new(0).is_none());
/// assert!(Pid::new(-1).is_none());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Pid(NonZeroU32);

impl Pid {
    /// The most bytes of a PID file that are looked at (64).
    ///
    /// Readers read at most `MAX_READ + 1` bytes: with more than `MAX_READ`
    /// bytes the content is [`ParseErrorKind::TooLong`] under [`Rule::Strict`],
    /// and under [`Rule::Lenient`] when the first line does not end (with `\n`)
    /// within the first `MAX_READ` bytes. [`Pid::parse`] never looks past the first
    /// `MAX_READ + 1` bytes of its input, so reading more changes nothing.
    pub const MAX_READ: usize = 64;

    /// Parses a PID file's content under `rule`, accepting values in
    /// `1..=min(pid_max, i32::MAX)`.
    ///
    /// `pid_max` is the largest valid PID, inclusive: pass [`Pid::kernel_max`] for the
    /// running kernel's limit. The function is pure (no I/O), never panics and
    /// never looks past the first `MAX_READ + 1` bytes of `bytes`.
    ///
    /// [`Pid::parse`] turns the bytes of a PID file into a [`Pid`] under one of two
    /// [`Rule`]s:
    ///
    /// * [`Rule::Strict`], for files pidguard wrote itself: the whole content
    ///   must match `^[1-9][0-9]*\n?$`.
    /// * [`Rule::Lenient`], for files other programs wrote (nginx, BSD
    ///   `pidfile(3)`, shell scripts): only the first line counts, surrounding
    ///   whitespace is allowed and leading zeros are read as decimal.
    ///
    /// Under both rules the value must be at least 1 and at most the kernel's
    /// largest PID ([`Pid::kernel_max`]); signs, hexadecimal, NUL bytes and overlong
    /// content are rejected, each with its own [`ParseErrorKind`].
    ///
    /// ```
    /// use pidguard::{ParseErrorKind, Pid, Rule};
    ///
    /// let parse = Pid::parse;
    /// let pid = parse(b"1234\n", Rule::Strict, 4_194_303)?;
    /// assert_eq!(pid.get(), 1234);
    /// assert_eq!(pid.encode().as_bytes(), b"1234");
    ///
    /// // Another program's file: leading zeros are decimal, never octal.
    /// assert_eq!(parse(b" 010 \r\n", Rule::Lenient, 4_194_303)?.get(), 10);
    ///
    /// let err = parse(b"0\n", Rule::Lenient, 4_194_303).unwrap_err();
    /// assert_eq!(err.kind(), ParseErrorKind::Zero);
    /// # Ok::<(), pidguard::ParseError>(())
    /// ```
    ///
    /// # Order of checks
    ///
    /// The first check that fails decides the [`ParseErrorKind`]:
    ///
    /// 1. [`TooLong`](ParseErrorKind::TooLong): strict, more than [`Pid::MAX_READ`]
    ///    bytes; lenient, more than [`Pid::MAX_READ`] bytes and no `\n` within the
    ///    first [`Pid::MAX_READ`].
    /// 2. [`Nul`](ParseErrorKind::Nul): a NUL byte in the bytes read (the
    ///    first `MAX_READ + 1`), even after the first line.
    /// 3. The first line (up to the first `\n`) is blank:
    ///    [`Empty`](ParseErrorKind::Empty) for no bytes, strict `"\n"`, or any
    ///    blank lenient first line; strict [`MultipleLines`](ParseErrorKind::MultipleLines)
    ///    for an empty first line followed by more (`"\n\n"`), strict
    ///    [`Whitespace`](ParseErrorKind::Whitespace) for a first line of only
    ///    whitespace (`"  \n"`).
    /// 4. The number (the first line without surrounding whitespace), from its
    ///    first byte on: [`Negative`](ParseErrorKind::Negative) (`-`),
    ///    [`Sign`](ParseErrorKind::Sign) (`+`), [`Hex`](ParseErrorKind::Hex)
    ///    (`0x`/`0X`); then the first byte that is not a digit gives
    ///    [`Whitespace`](ParseErrorKind::Whitespace) or
    ///    [`NotDecimal`](ParseErrorKind::NotDecimal); then
    ///    [`Zero`](ParseErrorKind::Zero) (all zeros), strict
    ///    [`LeadingZero`](ParseErrorKind::LeadingZero), and
    ///    [`OutOfRange`](ParseErrorKind::OutOfRange) (above `pid_max` or
    ///    `i32::MAX`, however many digits).
    /// 5. Strict only: [`Whitespace`](ParseErrorKind::Whitespace) around the
    ///    number (`" 5"`, `"5\r\n"`), then
    ///    [`MultipleLines`](ParseErrorKind::MultipleLines) for anything after
    ///    the first `\n` (`"5\n6\n"`, `"5\n\n"`).
    ///
    /// ```
    /// use pidguard::{ParseErrorKind as K, Pid, Rule};
    /// let parse = Pid::parse;
    ///
    /// let max = 4_194_303;
    /// assert_eq!(parse(b"5\n", Rule::Strict, max).unwrap().get(), 5);
    /// assert_eq!(parse(b"5", Rule::Strict, max).unwrap().get(), 5);
    /// assert_eq!(parse(b"010", Rule::Strict, max).unwrap_err().kind(), K::LeadingZero);
    /// assert_eq!(parse(b"010", Rule::Lenient, max).unwrap().get(), 10);
    /// assert_eq!(parse(b"5\n6\n", Rule::Strict, max).unwrap_err().kind(), K::MultipleLines);
    /// assert_eq!(parse(b"5\n6\n", Rule::Lenient, max).unwrap().get(), 5);
    /// assert_eq!(parse(b"0x10", Rule::Lenient, max).unwrap_err().kind(), K::Hex);
    /// assert_eq!(parse(b"-1", Rule::Lenient, max).unwrap_err().kind(), K::Negative);
    /// assert_eq!(parse(b"4194304", Rule::Strict, max).unwrap_err().kind(), K::OutOfRange);
    /// ```
    pub fn parse(bytes: &[u8], rule: Rule, pid_max: u32) -> Result<Pid, ParseError> {
        parse(bytes, rule, pid_max)
    }

    /// Returns `Some` for a value in `1..=i32::MAX`, `None` for 0 or a
    /// negative value.
    ///
    /// ```
    /// use pidguard::Pid;
    ///
    /// assert_eq!(Pid::new(1).map(Pid::get), Some(1));
    /// assert_eq!(Pid::new(i32::MAX).map(Pid::get), Some(i32::MAX));
    /// assert_eq!(Pid::new(0), None);
    /// assert_eq!(Pid::new(-1), None);
    /// ```
    pub const fn new(raw: i32) -> Option<Pid> {
        if raw <= 0 {
            return None;
        }
        Pid::from_u32(raw as u32)
    }

    /// Returns `Some` for a value in `1..=i32::MAX`, `None` for 0 or a
    /// value above `i32::MAX`.
    ///
    /// ```
    /// use pidguard::Pid;
    ///
    /// assert_eq!(Pid::from_u32(std::process::id()), Some(Pid::current()));
    /// assert_eq!(Pid::from_u32(0), None);
    /// assert_eq!(Pid::from_u32(1 << 31), None);
    /// ```
    pub const fn from_u32(raw: u32) -> Option<Pid> {
        if raw > I32_MAX {
            return None;
        }
        match NonZeroU32::new(raw) {
            Some(n) => Some(Pid(n)),
            None => None,
        }
    }

    /// The value, as the `pid_t`-compatible `i32` (always positive).
    pub const fn get(self) -> i32 {
        // Cannot wrap: the value is at most `i32::MAX`.
        self.0.get() as i32
    }

    /// The value, as a `u32` (always in `1..=i32::MAX`).
    pub const fn as_u32(self) -> u32 {
        self.0.get()
    }

    /// The ID of the calling process ([`std::process::id`]).
    ///
    /// ```
    /// use pidguard::Pid;
    ///
    /// assert_eq!(Pid::current().as_u32(), std::process::id());
    /// ```
    pub fn current() -> Pid {
        Pid::from_u32(std::process::id()).expect("the kernel gives a process an ID in 1..=i32::MAX")
    }

    /// The file form, without allocating: the decimal digits, no newline.
    ///
    /// No trailing newline, as BSD `pidfile_write(3)` writes it: BSD
    /// `pidfile_open(3)` (libbsd, FreeBSD) reads a held file's PID with
    /// `strtol` and refuses anything after the digits, so a newline would
    /// make it fail with `EINVAL` instead of reporting `EEXIST` and the
    /// holder's PID. Every other reader accepts it (start-stop-daemon,
    /// `pgrep -F`, systemd's `PIDFile=`, Python's `pid`, `kill $(cat F)`;
    /// tested in the CLI's tests/interop.rs).
    ///
    /// ```
    /// use pidguard::Pid;
    ///
    /// assert_eq!(Pid::new(42).unwrap().encode().as_bytes(), b"42");
    /// assert_eq!(Pid::new(i32::MAX).unwrap().encode().as_bytes(), b"2147483647");
    /// ```
    pub fn encode(self) -> EncodedPid {
        let mut buf = [0u8; ENCODED_LEN];
        let mut start = ENCODED_LEN;
        let mut n = self.as_u32();
        // At most 10 digits (`i32::MAX` has 10), so `start` stays >= 0.
        loop {
            start -= 1;
            buf[start] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        EncodedPid {
            buf,
            start: start as u8,
        }
    }
}

impl fmt::Display for Pid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for Pid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pid({})", self.0)
    }
}

impl From<Pid> for i32 {
    fn from(pid: Pid) -> i32 {
        pid.get()
    }
}

impl From<Pid> for u32 {
    fn from(pid: Pid) -> u32 {
        pid.as_u32()
    }
}

// ---------------------------------------------------------------------------
// EncodedPid
// ---------------------------------------------------------------------------

/// Ten digits (`i32::MAX`).
const ENCODED_LEN: usize = 10;

/// A [`Pid`] in the file form (digits only), on the stack.
///
/// Returned by [`Pid::encode`].
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct EncodedPid {
    buf: [u8; ENCODED_LEN],
    /// Index of the first digit in `buf`; the form runs to the end.
    start: u8,
}

impl EncodedPid {
    /// The bytes to write: `^[1-9][0-9]*$`.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[usize::from(self.start)..]
    }
}

impl AsRef<[u8]> for EncodedPid {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl fmt::Debug for EncodedPid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EncodedPid(\"{}\")", self.as_bytes().escape_ascii())
    }
}

// ---------------------------------------------------------------------------
// Rule
// ---------------------------------------------------------------------------

/// How strictly [`Pid::parse`] reads a PID file's content.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    /// For files pidguard wrote: the whole content must match
    /// `^[1-9][0-9]*\n?$` and be at most [`Pid::MAX_READ`] bytes.
    Strict,
    /// For files other programs wrote: only the first line counts
    /// (anything after the first `\n` is ignored); ASCII whitespace (space,
    /// tab, `\r`, vertical tab, form feed) around the number is allowed;
    /// leading zeros are allowed and read as decimal (`010` is 10). Zero,
    /// signs, hexadecimal, NUL bytes and out-of-range values are still
    /// rejected.
    Lenient,
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Rule::Strict => "strict",
            Rule::Lenient => "lenient",
        })
    }
}

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/// What [`Pid::parse`] rejected. Each variant is a distinct class; see [`Pid::parse`]
/// for the order in which they are checked.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseErrorKind {
    /// No PID at all: no bytes; under [`Rule::Strict`] just `"\n"`; under
    /// [`Rule::Lenient`] a first line that is empty or only whitespace.
    Empty,
    /// The number is zero (`"0"`, or `"000"` under [`Rule::Lenient`]).
    Zero,
    /// The number starts with `-`.
    Negative,
    /// The number starts with `+`.
    Sign,
    /// [`Rule::Strict`] only: a number with a leading zero, such as `"010"`.
    LeadingZero,
    /// Whitespace inside the number; under [`Rule::Strict`] also any
    /// whitespace around it other than the one final `\n` (`" 5"`,
    /// `"12\r\n"`, `"  \n"`).
    Whitespace,
    /// A hexadecimal prefix: `"0x…"` or `"0X…"`.
    Hex,
    /// Any other character that is not a decimal digit (`"5x"`, `"abc"`).
    NotDecimal,
    /// [`Rule::Strict`] only: content after the first `\n` (`"5\n6\n"`,
    /// `"5\n\n"`).
    MultipleLines,
    /// A NUL byte anywhere in the bytes read.
    Nul,
    /// More than [`Pid::MAX_READ`] bytes under [`Rule::Strict`]; under
    /// [`Rule::Lenient`] a first line that does not end within the first
    /// [`Pid::MAX_READ`] bytes.
    TooLong,
    /// The value is above the largest valid PID (the `pid_max` argument of
    /// [`Pid::parse`], and never above `i32::MAX`).
    OutOfRange,
}

/// Why a PID file's content was rejected: the [`kind`](ParseError::kind) of
/// problem and the [`rule`](ParseError::rule) that rejected it.
///
/// The message is an English sentence naming the problem and the rule, and
/// showing the start of the offending content (at most 24 bytes, with
/// non-printable bytes escaped). It does not name the file.
///
/// ```
/// use pidguard::{ParseErrorKind, Pid, Rule};
/// let parse = Pid::parse;
///
/// let err = parse(b"0\n", Rule::Lenient, 4_194_303).unwrap_err();
/// assert_eq!(err.kind(), ParseErrorKind::Zero);
/// assert_eq!(err.rule(), Rule::Lenient);
/// assert_eq!(err.to_string(), r#""0" is not a valid PID: PIDs start at 1 (lenient rule)"#);
///
/// let err = parse(b"", Rule::Strict, 4_194_303).unwrap_err();
/// assert_eq!(err.to_string(), "the file is empty (strict rule)");
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ParseError {
    kind: ParseErrorKind,
    rule: Rule,
    /// The largest PID that was allowed, for [`ParseErrorKind::OutOfRange`].
    limit: u32,
    /// The start of the offending content.
    shown: [u8; SHOWN],
    shown_len: u8,
    /// Whether the offending content was longer than `shown`.
    truncated: bool,
}

impl ParseError {
    fn new(kind: ParseErrorKind, rule: Rule, content: &[u8], limit: u32) -> ParseError {
        let n = content.len().min(SHOWN);
        let mut shown = [0u8; SHOWN];
        shown[..n].copy_from_slice(&content[..n]);
        ParseError {
            kind,
            rule,
            limit,
            shown,
            shown_len: n as u8,
            truncated: content.len() > SHOWN,
        }
    }

    /// What was wrong.
    pub fn kind(&self) -> ParseErrorKind {
        self.kind
    }

    /// The rule that rejected the content.
    pub fn rule(&self) -> Rule {
        self.rule
    }

    fn shown(&self) -> &[u8] {
        &self.shown[..usize::from(self.shown_len)]
    }
}

/// Writes `"…"` with the shown content escaped, and `...` if truncated.
struct Quoted<'a>(&'a ParseError);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\"", self.0.shown().escape_ascii())?;
        if self.0.truncated {
            f.write_str("...")?;
        }
        Ok(())
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ParseErrorKind as K;
        let q = Quoted(self);
        match self.kind {
            K::Empty if self.shown_len == 0 => f.write_str("the file is empty")?,
            K::Empty => write!(f, "{q} holds no PID: its first line is blank")?,
            K::TooLong => match self.rule {
                Rule::Strict => write!(f, "the file is longer than {MAX_READ} bytes: {q}")?,
                Rule::Lenient => write!(
                    f,
                    "the first line does not end within {MAX_READ} bytes: {q}"
                )?,
            },
            K::Nul => write!(f, "{q} is not a valid PID: it contains a NUL byte")?,
            K::OutOfRange => write!(
                f,
                "{q} is not a valid PID: it is above the largest PID, {}",
                self.limit
            )?,
            kind => {
                let why = match kind {
                    K::Zero => "PIDs start at 1",
                    K::Negative => "it is negative",
                    K::Sign => "a sign is not allowed",
                    K::LeadingZero => "leading zeros are not allowed",
                    K::Whitespace if self.rule == Rule::Strict => "whitespace is not allowed",
                    K::Whitespace => "whitespace inside the number is not allowed",
                    K::Hex => "hexadecimal is not allowed",
                    K::NotDecimal => "it is not a decimal number",
                    K::MultipleLines => "there is content after the first line",
                    // Handled above.
                    K::Empty | K::TooLong | K::Nul | K::OutOfRange => "it is malformed",
                };
                write!(f, "{q} is not a valid PID: {why}")?;
            }
        }
        write!(f, " ({} rule)", self.rule)
    }
}

impl fmt::Debug for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ParseError")
            .field("kind", &self.kind)
            .field("rule", &self.rule)
            .field("content", &format_args!("{}", Quoted(self)))
            .finish()
    }
}

impl std::error::Error for ParseError {}

// ---------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------

/// The whitespace [`Rule::Lenient`] allows around the number: space, tab,
/// `\r`, vertical tab and form feed (`\n` ends the line).
fn is_blank(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | 0x0b | 0x0c)
}

fn trim_blanks(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if !is_blank(*first) {
            break;
        }
        s = rest;
    }
    while let [rest @ .., last] = s {
        if !is_blank(*last) {
            break;
        }
        s = rest;
    }
    s
}

/// The parser behind [`Pid::parse`] (documented there).
pub fn parse(bytes: &[u8], rule: Rule, pid_max: u32) -> Result<Pid, ParseError> {
    use ParseErrorKind as K;

    let limit = pid_max.min(I32_MAX);
    let window = &bytes[..bytes.len().min(MAX_READ + 1)];
    let over = bytes.len() > MAX_READ;
    let fail = |kind, content: &[u8]| Err(ParseError::new(kind, rule, content, limit));

    // 1. Length.
    let newline = window[..window.len().min(MAX_READ)]
        .iter()
        .position(|&b| b == b'\n');
    if over && (rule == Rule::Strict || newline.is_none()) {
        return fail(K::TooLong, window);
    }
    // From here on, `window` is all of `bytes` under the strict rule.

    // 2. NUL bytes.
    if window.contains(&0) {
        return fail(K::Nul, window);
    }

    let (line, rest) = match newline {
        Some(i) => (&window[..i], &window[i + 1..]),
        None => (window, &window[window.len()..]),
    };
    // Strict errors show the whole content; lenient ones the first line.
    let shown = match rule {
        Rule::Strict => window,
        Rule::Lenient => line,
    };

    // 3. A blank first line.
    let number = trim_blanks(line);
    if number.is_empty() {
        return match rule {
            Rule::Strict if line.is_empty() && rest.is_empty() => fail(K::Empty, window),
            Rule::Strict if line.is_empty() => fail(K::MultipleLines, window),
            Rule::Strict => fail(K::Whitespace, window),
            Rule::Lenient => fail(K::Empty, window),
        };
    }

    // 4. The number itself.
    let pid = match parse_number(number, rule, limit) {
        Ok(pid) => pid,
        Err(kind) => return fail(kind, shown),
    };

    // 5. Strict layout.
    if rule == Rule::Strict {
        if number.len() != line.len() {
            return fail(K::Whitespace, shown);
        }
        if !rest.is_empty() {
            return fail(K::MultipleLines, shown);
        }
    }
    Ok(pid)
}

/// Step 4 of [`Pid::parse`]: `number` is non-empty and has no surrounding blanks.
fn parse_number(number: &[u8], rule: Rule, limit: u32) -> Result<Pid, ParseErrorKind> {
    use ParseErrorKind as K;

    match number {
        [b'-', ..] => return Err(K::Negative),
        [b'+', ..] => return Err(K::Sign),
        [b'0', x, ..] if x.eq_ignore_ascii_case(&b'x') => return Err(K::Hex),
        _ => {}
    }
    if let Some(&b) = number.iter().find(|b| !b.is_ascii_digit()) {
        return Err(if is_blank(b) {
            K::Whitespace
        } else {
            K::NotDecimal
        });
    }
    let significant = match number.iter().position(|&b| b != b'0') {
        Some(i) => &number[i..],
        None => return Err(K::Zero),
    };
    if rule == Rule::Strict && significant.len() != number.len() {
        return Err(K::LeadingZero);
    }
    // `i32::MAX` has 10 digits; 10 digits fit a u64 without overflow.
    if significant.len() > 10 {
        return Err(K::OutOfRange);
    }
    let value = significant
        .iter()
        .fold(0u64, |acc, &d| acc * 10 + u64::from(d - b'0'));
    if value > u64::from(limit) {
        return Err(K::OutOfRange);
    }
    u32::try_from(value)
        .ok()
        .and_then(Pid::from_u32)
        .ok_or(K::OutOfRange)
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::ParseErrorKind as K;
    use super::*;
    use proptest::prelude::*;

    const MAX: u32 = 4_194_303;

    fn strict(b: &[u8]) -> Outcome {
        parse(b, Rule::Strict, MAX)
            .map(Pid::get)
            .map_err(|e| e.kind())
    }

    fn lenient(b: &[u8]) -> Outcome {
        parse(b, Rule::Lenient, MAX)
            .map(Pid::get)
            .map_err(|e| e.kind())
    }

    #[test]
    fn pid_constructors() {
        assert_eq!(Pid::new(0), None);
        assert_eq!(Pid::new(-1), None);
        assert_eq!(Pid::new(i32::MIN), None);
        assert_eq!(Pid::new(1).unwrap().get(), 1);
        assert_eq!(Pid::new(i32::MAX).unwrap().as_u32(), I32_MAX);
        assert_eq!(Pid::from_u32(0), None);
        assert_eq!(Pid::from_u32(I32_MAX + 1), None);
        assert_eq!(Pid::from_u32(u32::MAX), None);
        assert_eq!(Pid::from_u32(I32_MAX).unwrap().get(), i32::MAX);
        let p = Pid::new(1234).unwrap();
        assert_eq!(i32::from(p), 1234);
        assert_eq!(u32::from(p), 1234);
        assert_eq!(p.to_string(), "1234");
        assert_eq!(format!("{p:?}"), "Pid(1234)");
        assert_eq!(Pid::current().as_u32(), std::process::id());
        assert!(Pid::new(2) > Pid::new(1));
    }

    #[test]
    fn encode_forms() {
        assert_eq!(Pid::new(1).unwrap().encode().as_bytes(), b"1");
        assert_eq!(Pid::new(10).unwrap().encode().as_bytes(), b"10");
        assert_eq!(
            Pid::new(i32::MAX).unwrap().encode().as_bytes(),
            b"2147483647"
        );
        let e = Pid::new(7).unwrap().encode();
        assert_eq!(e.as_ref(), b"7");
        assert_eq!(format!("{e:?}"), r#"EncodedPid("7")"#);
    }

    #[test]
    fn rule_display() {
        assert_eq!(Rule::Strict.to_string(), "strict");
        assert_eq!(Rule::Lenient.to_string(), "lenient");
    }

    type Outcome = Result<i32, K>;

    #[test]
    fn listed_cases() {
        let mb_ones = vec![b'1'; 1 << 20];
        let mut mb_seven = vec![b'9'; 1 << 20];
        mb_seven[..2].copy_from_slice(b"7\n");

        let cases: &[(&[u8], Outcome, Outcome)] = &[
            (b"", Err(K::Empty), Err(K::Empty)),
            (b"\n", Err(K::Empty), Err(K::Empty)),
            (b"0", Err(K::Zero), Err(K::Zero)),
            (b"0\n", Err(K::Zero), Err(K::Zero)),
            (b"000", Err(K::Zero), Err(K::Zero)),
            (b"-1", Err(K::Negative), Err(K::Negative)),
            (b"-5", Err(K::Negative), Err(K::Negative)),
            (b"+5", Err(K::Sign), Err(K::Sign)),
            (b" 5", Err(K::Whitespace), Ok(5)),
            (b"5x", Err(K::NotDecimal), Err(K::NotDecimal)),
            (b"abc", Err(K::NotDecimal), Err(K::NotDecimal)),
            (b"0x10", Err(K::Hex), Err(K::Hex)),
            (b"0X10", Err(K::Hex), Err(K::Hex)),
            (b"010", Err(K::LeadingZero), Ok(10)),
            (b"4294967295", Err(K::OutOfRange), Err(K::OutOfRange)),
            (b"99999999999", Err(K::OutOfRange), Err(K::OutOfRange)),
            (b"5\n6\n", Err(K::MultipleLines), Ok(5)),
            (b"5\n\n", Err(K::MultipleLines), Ok(5)),
            (b"5\0", Err(K::Nul), Err(K::Nul)),
            (b"5\n\0", Err(K::Nul), Err(K::Nul)),
            (&mb_ones, Err(K::TooLong), Err(K::TooLong)),
            (&mb_seven, Err(K::TooLong), Ok(7)),
            (b"12\r\n", Err(K::Whitespace), Ok(12)),
            (b"5\n", Ok(5), Ok(5)),
            (b"5", Ok(5), Ok(5)),
            (b"  \n", Err(K::Whitespace), Err(K::Empty)),
            (b"\n5\n", Err(K::MultipleLines), Err(K::Empty)),
            (b"\n\n", Err(K::MultipleLines), Err(K::Empty)),
            (b"5 6", Err(K::Whitespace), Err(K::Whitespace)),
            (b" \t\x0b\x0c0042\r \n junk", Err(K::LeadingZero), Ok(42)),
            (b" \t\x0b\x0c42\r \n junk", Err(K::Whitespace), Ok(42)),
            (b" -5", Err(K::Negative), Err(K::Negative)),
            (b"4194303", Ok(4_194_303), Ok(4_194_303)),
            (b"4194304", Err(K::OutOfRange), Err(K::OutOfRange)),
        ];
        for (input, want_strict, want_lenient) in cases {
            let shown = input[..input.len().min(30)].escape_ascii().to_string();
            assert_eq!(strict(input), *want_strict, "strict {shown}");
            assert_eq!(lenient(input), *want_lenient, "lenient {shown}");
        }
    }

    #[test]
    fn max_read_boundary() {
        // Exactly MAX_READ bytes is fine under both rules.
        let mut exact = vec![b'0'; MAX_READ - 2];
        exact.extend_from_slice(b"7\n");
        assert_eq!(lenient(&exact), Ok(7));
        assert_eq!(strict(&exact), Err(K::LeadingZero));
        exact.push(b'x');
        assert_eq!(strict(&exact), Err(K::TooLong));
        assert_eq!(lenient(&exact), Ok(7));

        // A first line that ends only at byte MAX_READ + 1 is too long.
        let mut late = vec![b'0'; MAX_READ - 1];
        late.extend_from_slice(b"7\n");
        assert_eq!(lenient(&late), Err(K::TooLong));
        // Without more bytes, a first line without a newline is complete.
        let mut bsd = vec![b'0'; MAX_READ - 1];
        bsd.push(b'7');
        assert_eq!(lenient(&bsd), Ok(7));
        bsd.push(b'\n');
        assert_eq!(lenient(&bsd), Err(K::TooLong));
    }

    #[test]
    fn pid_max_bound() {
        for rule in [Rule::Strict, Rule::Lenient] {
            assert_eq!(parse(b"300\n", rule, 300).unwrap().get(), 300);
            assert_eq!(
                parse(b"301\n", rule, 300).unwrap_err().kind(),
                K::OutOfRange
            );
            assert_eq!(parse(b"1", rule, 0).unwrap_err().kind(), K::OutOfRange);
            let top = parse(b"2147483647", rule, u32::MAX).unwrap();
            assert_eq!(top.get(), i32::MAX);
            let over = parse(b"2147483648", rule, u32::MAX).unwrap_err();
            assert_eq!(over.kind(), K::OutOfRange);
            assert_eq!(
                parse(b"4294967296", rule, u32::MAX).unwrap_err().kind(),
                K::OutOfRange
            );
        }
    }

    #[test]
    fn messages() {
        let msg = |b: &[u8], rule| parse(b, rule, 300).unwrap_err().to_string();
        assert_eq!(msg(b"", Rule::Strict), "the file is empty (strict rule)");
        assert_eq!(
            msg(b"0\n", Rule::Lenient),
            r#""0" is not a valid PID: PIDs start at 1 (lenient rule)"#
        );
        assert_eq!(
            msg(b"12\r\n", Rule::Strict),
            r#""12\r\n" is not a valid PID: whitespace is not allowed (strict rule)"#
        );
        assert_eq!(
            msg(b"301", Rule::Strict),
            r#""301" is not a valid PID: it is above the largest PID, 300 (strict rule)"#
        );
        assert_eq!(
            msg(b"5\0", Rule::Lenient),
            r#""5\x00" is not a valid PID: it contains a NUL byte (lenient rule)"#
        );
        assert_eq!(
            msg(&[b'1'; 100], Rule::Strict),
            r#"the file is longer than 64 bytes: "111111111111111111111111"... (strict rule)"#
        );
        assert_eq!(
            msg(b"\n", Rule::Strict),
            r#""\n" holds no PID: its first line is blank (strict rule)"#
        );
        // Every kind has a message naming its rule, without a path.
        for (kind, input, rule) in examples() {
            let e = parse(input, rule, 300).unwrap_err();
            assert_eq!(e.kind(), kind);
            let text = e.to_string();
            assert!(text.ends_with(&format!("({rule} rule)")), "{text}");
            assert!(!text.contains("malformed"), "{text}");
            assert!(text.len() < 120, "{text}");
            assert!(format!("{e:?}").contains(&format!("{kind:?}")));
        }
    }

    /// One input per rejection class. The exhaustive `match` makes a new
    /// variant fail to compile until it has an example here.
    fn examples() -> Vec<(K, &'static [u8], Rule)> {
        let all = [
            K::Empty,
            K::Zero,
            K::Negative,
            K::Sign,
            K::LeadingZero,
            K::Whitespace,
            K::Hex,
            K::NotDecimal,
            K::MultipleLines,
            K::Nul,
            K::TooLong,
            K::OutOfRange,
        ];
        let mut out = Vec::new();
        for kind in all {
            let (input, rule): (&'static [u8], Rule) = match kind {
                K::Empty => (b"", Rule::Strict),
                K::Zero => (b"00\n", Rule::Lenient),
                K::Negative => (b"-1\n", Rule::Strict),
                K::Sign => (b"+1\n", Rule::Lenient),
                K::LeadingZero => (b"01\n", Rule::Strict),
                K::Whitespace => (b"1 \n", Rule::Strict),
                K::Hex => (b"0x1\n", Rule::Lenient),
                K::NotDecimal => (b"1a\n", Rule::Strict),
                K::MultipleLines => (b"1\n2\n", Rule::Strict),
                K::Nul => (b"\0", Rule::Lenient),
                K::TooLong => (&[b' '; MAX_READ + 1], Rule::Lenient),
                K::OutOfRange => (b"301\n", Rule::Strict),
            };
            out.push((kind, input, rule));
        }
        out
    }

    #[test]
    fn every_kind_reachable() {
        for (kind, input, rule) in examples() {
            let got = parse(input, rule, 300).map_err(|e| e.kind());
            assert_eq!(
                got,
                Err(kind),
                "{:?} {rule}",
                input.escape_ascii().to_string()
            );
        }
    }

    /// Hand-written `^[1-9][0-9]*\n?$`.
    fn strict_form(b: &[u8]) -> bool {
        let digits = b.strip_suffix(b"\n").unwrap_or(b);
        matches!(digits.first(), Some(b'1'..=b'9')) && digits.iter().all(u8::is_ascii_digit)
    }

    /// Numeric value of an all-digit string, saturating.
    fn value(digits: &[u8]) -> u64 {
        digits.iter().fold(0u64, |acc, &d| {
            acc.saturating_mul(10).saturating_add(u64::from(d - b'0'))
        })
    }

    /// Reference lenient rule: the first line (within MAX_READ bytes),
    /// trimmed, all digits, in range, no NUL in the bytes read.
    fn lenient_model(b: &[u8], limit: u32) -> Option<u64> {
        let read = &b[..b.len().min(MAX_READ + 1)];
        if read.contains(&0) {
            return None;
        }
        let line = match read.iter().position(|&c| c == b'\n') {
            Some(i) if i < MAX_READ => &read[..i],
            _ if b.len() > MAX_READ => return None,
            _ => read,
        };
        let text = std::str::from_utf8(line).ok()?;
        let t = text.trim_matches(|c| matches!(c, ' ' | '\t' | '\r' | '\x0b' | '\x0c'));
        if t.is_empty() || !t.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        let v = value(t.as_bytes());
        (1..=u64::from(limit.min(I32_MAX)))
            .contains(&v)
            .then_some(v)
    }

    fn near_pid() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(
            prop::sample::select(b"0123456789\n\r\t \x0b\x0c-+xX\0a".to_vec()),
            0..24,
        )
    }

    fn any_rule() -> impl Strategy<Value = Rule> {
        prop_oneof![Just(Rule::Strict), Just(Rule::Lenient)]
    }

    proptest! {
        #[test]
        fn round_trip(raw in 1..=i32::MAX) {
            let pid = Pid::new(raw).unwrap();
            let enc = pid.encode();
            prop_assert!(strict_form(enc.as_bytes()));
            prop_assert!(!enc.as_bytes().ends_with(b"\n"));
            prop_assert_eq!(parse(enc.as_bytes(), Rule::Strict, I32_MAX), Ok(pid));
            prop_assert_eq!(parse(enc.as_bytes(), Rule::Lenient, I32_MAX), Ok(pid));
            let text = format!("{pid}");
            prop_assert_eq!(enc.as_bytes(), text.as_bytes());
        }

        #[test]
        fn never_panics(
            bytes in prop::collection::vec(any::<u8>(), 0..200),
            rule in any_rule(),
            limit in any::<u32>(),
        ) {
            if let Ok(pid) = parse(&bytes, rule, limit) {
                prop_assert!(pid.get() >= 1);
                prop_assert!(pid.as_u32() <= limit);
            }
            // Errors render without panicking.
            if let Err(e) = parse(&bytes, rule, limit) {
                prop_assert!(!e.to_string().is_empty());
            }
        }

        #[test]
        fn strict_accepts_only_the_strict_form(
            bytes in prop_oneof![near_pid(), prop::collection::vec(any::<u8>(), 0..40)],
            limit in prop_oneof![Just(MAX), any::<u32>()],
        ) {
            let got = parse(&bytes, Rule::Strict, limit);
            if !strict_form(&bytes) {
                prop_assert!(got.is_err());
            } else {
                let digits = bytes.strip_suffix(b"\n").unwrap_or(&bytes);
                let fits = bytes.len() <= MAX_READ
                    && value(digits) <= u64::from(limit.min(I32_MAX));
                prop_assert_eq!(got.map(|p| u64::from(p.as_u32())).ok(), fits.then(|| value(digits)));
            }
        }

        #[test]
        fn lenient_matches_model(
            bytes in prop_oneof![
                near_pid(),
                prop::collection::vec(any::<u8>(), 0..40),
                prop::collection::vec(prop::sample::select(b"0 1\n".to_vec()), 60..70),
            ],
            limit in prop_oneof![Just(MAX), any::<u32>()],
        ) {
            let got = parse(&bytes, Rule::Lenient, limit).map(|p| u64::from(p.as_u32())).ok();
            prop_assert_eq!(got, lenient_model(&bytes, limit));
        }

        #[test]
        fn only_first_max_read_plus_one_bytes_matter(
            bytes in prop::collection::vec(
                prop::sample::select(b"0123456789\n \0x".to_vec()), 0..200),
            rule in any_rule(),
        ) {
            let head = &bytes[..bytes.len().min(MAX_READ + 1)];
            prop_assert_eq!(parse(&bytes, rule, MAX), parse(head, rule, MAX));
        }

        #[test]
        fn kinds_by_construction(
            digits in "[1-9][0-9]{0,5}",
            zeros in "0{1,3}",
            junk in "[a-wyzA-WYZ_.]",
            ws in "[ \t\r\u{b}\u{c}]{1,3}",
        ) {
            let d = digits.as_str();
            let cases: Vec<(String, Rule, K)> = vec![
                (String::new(), Rule::Strict, K::Empty),
                (format!("{ws}\n{d}"), Rule::Lenient, K::Empty),
                (format!("{zeros}\n"), Rule::Strict, K::Zero),
                (format!("{ws}{zeros}{ws}"), Rule::Lenient, K::Zero),
                (format!("-{d}"), Rule::Lenient, K::Negative),
                (format!("+{d}\n"), Rule::Strict, K::Sign),
                (format!("{zeros}{d}"), Rule::Strict, K::LeadingZero),
                (format!("{ws}{d}\n"), Rule::Strict, K::Whitespace),
                (format!("{d}{ws}"), Rule::Strict, K::Whitespace),
                (format!("{d}{ws}{d}"), Rule::Lenient, K::Whitespace),
                (format!("0x{d}"), Rule::Lenient, K::Hex),
                (format!("0X{d}\n"), Rule::Strict, K::Hex),
                (format!("{d}{junk}"), Rule::Lenient, K::NotDecimal),
                (format!("{junk}{d}\n"), Rule::Strict, K::NotDecimal),
                (format!("{d}\n{d}"), Rule::Strict, K::MultipleLines),
                (format!("{d}\0"), Rule::Strict, K::Nul),
                (format!("{d}\n\0"), Rule::Lenient, K::Nul),
                (d.repeat(MAX_READ + 1), Rule::Strict, K::TooLong),
                (format!("{d}0000000000"), Rule::Lenient, K::OutOfRange),
            ];
            for (input, rule, kind) in cases {
                let got = parse(input.as_bytes(), rule, MAX).map_err(|e| e.kind());
                prop_assert_eq!(got, Err(kind), "{:?} {}", input, rule);
            }
        }
    }
}
