//! The PID parser on arbitrary bytes, under both rules and several
//! `pid_max` values: never a panic, never 0 or a negative value, never
//! above `pid_max`; strict is lenient's subset and agrees with it; a strict
//! file is exactly `^[1-9][0-9]*\n?$`; encoding a PID and parsing it back
//! gives the same PID.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pidguard::Pid;
use pidguard::Rule;

fuzz_target!(|data: &[u8]| {
    // The first two bytes pick pid_max (as a kernel might have it).
    let (pid_max, bytes) = match data {
        [a, b, rest @ ..] => (
            match u16::from_le_bytes([*a, *b]) % 4 {
                0 => 32_768,
                1 => 4_194_304,
                2 => 1 + u32::from(u16::from_le_bytes([*b, *a])),
                _ => i32::MAX as u32,
            },
            rest,
        ),
        _ => (32_768, data),
    };
    let strict = Pid::parse(bytes, Rule::Strict, pid_max);
    let lenient = Pid::parse(bytes, Rule::Lenient, pid_max);
    for pid in [&strict, &lenient].into_iter().flatten() {
        assert!(pid.get() > 0, "a PID of {} from {bytes:?}", pid.get());
        assert!(
            pid.get() as u32 <= pid_max,
            "{} > pid_max {pid_max}",
            pid.get()
        );
    }
    if let Ok(pid) = &strict {
        assert_eq!(
            lenient.as_ref().ok(),
            Some(pid),
            "strict accepted what lenient did not: {bytes:?}"
        );
        let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
        assert!(!body.is_empty() && body[0] != b'0', "{bytes:?}");
        assert!(body.iter().all(u8::is_ascii_digit), "{bytes:?}");
        assert!(bytes.len() <= Pid::MAX_READ, "{} bytes accepted", bytes.len());
        let encoded = pid.encode();
        let again = Pid::parse(encoded.as_bytes(), Rule::Strict, pid_max).unwrap();
        assert_eq!(&again, pid);
    }
    // Errors always have a message.
    if let Err(e) = &lenient {
        assert!(!e.to_string().is_empty());
    }
});
