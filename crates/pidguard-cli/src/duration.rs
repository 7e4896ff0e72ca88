//! Durations on the command line: `10`, `10s`, `250ms`, `1.5s`, `2m`, `1h`,
//! in the library's one grammar ([`pidguard::parse_duration`]),
//! which schedules use too.

use std::time::Duration;

/// Parses a duration. A bare number is seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    pidguard::parse_duration(s).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(parse_duration("10").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
    }

    #[test]
    fn rejects() {
        for bad in ["", "s", "-1", "10x", "1e400", "abc", "1..2"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        const UNITS: [(&str, u64); 9] = [
            ("", 1_000_000),
            ("s", 1_000_000),
            ("sec", 1_000_000),
            ("ms", 1_000),
            ("us", 1),
            ("µs", 1),
            ("m", 60_000_000),
            ("min", 60_000_000),
            ("h", 3_600_000_000),
        ];

        proptest! {
            /// Whole numbers in every unit give exactly that many units.
            #[test]
            fn whole_numbers_in_every_unit(n in 0u64..100_000, unit in 0usize..UNITS.len()) {
                let (suffix, micros) = UNITS[unit];
                let d = parse_duration(&format!("{n}{suffix}")).unwrap();
                prop_assert_eq!(d, Duration::from_micros(n * micros));
            }

            /// Surrounding whitespace is ignored.
            #[test]
            fn whitespace_around_is_ignored(n in 0u64..100_000, pre in "[ \t]{0,3}", post in "[ \t\n]{0,3}") {
                let d = parse_duration(&format!("{pre}{n}ms{post}")).unwrap();
                prop_assert_eq!(d, Duration::from_millis(n));
            }

            /// Fractions of a second are honoured to the microsecond.
            #[test]
            fn fractions(whole in 0u64..10_000, frac in 0u64..1000) {
                let d = parse_duration(&format!("{whole}.{frac:03}s")).unwrap();
                let want = Duration::from_millis(whole * 1000 + frac);
                let diff = d.abs_diff(want);
                prop_assert!(diff <= Duration::from_micros(1), "{d:?} vs {want:?}");
            }

            /// Any input: an error or a duration within range, never a panic;
            /// an error always quotes the input.
            #[test]
            fn any_input_is_an_error_or_in_range(s in "\\PC{0,12}") {
                match parse_duration(&s) {
                    Ok(d) => prop_assert!(d <= Duration::from_secs(1_000_000_000)),
                    Err(e) => prop_assert!(e.contains(&format!("{s:?}")), "{e}"),
                }
            }

            /// Negative numbers and unknown units are always refused.
            #[test]
            fn negatives_and_unknown_units_are_refused(n in 0u64..100_000, unit in "[a-zA-Z]{1,3}") {
                let negative = format!("-{n}");
                prop_assert!(parse_duration(&negative).is_err());
                let known = UNITS.iter().any(|(u, _)| *u == unit);
                prop_assert_eq!(parse_duration(&format!("{n}{unit}")).is_ok(), known);
            }
        }
    }
}
