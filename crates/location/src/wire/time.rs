//! Timestamps as Cisco servers write them: `2017-11-23T15:30:41.662+0700` (offset without a colon),
//! RFC 3339, `2020-12-16 22:10:24.468+0000`, or epoch milliseconds.

use chrono::{DateTime, FixedOffset, TimeZone, Utc};

/// Parses a server timestamp; `None` when it is in no format on record.
pub fn parse_timestamp(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        let millis: i64 = text.parse().ok()?;
        return Utc.timestamp_millis_opt(millis).single();
    }
    const FORMATS: [&str; 4] = [
        "%Y-%m-%dT%H:%M:%S%.f%z",
        "%Y-%m-%d %H:%M:%S%.f%z",
        "%Y-%m-%dT%H:%M:%S%.f%:z",
        "%Y-%m-%d %H:%M:%S%.f%:z",
    ];
    FORMATS
        .iter()
        .find_map(|format| DateTime::<FixedOffset>::parse_from_str(text, format).ok())
        .or_else(|| DateTime::parse_from_rfc3339(text).ok())
        .map(|t| t.with_timezone(&Utc))
}

/// Whole seconds from `earlier` to `later`, never negative (clocks disagree).
pub(crate) fn seconds_between(earlier: DateTime<Utc>, later: DateTime<Utc>) -> u64 {
    u64::try_from((later - earlier).num_seconds()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cisco_formats() {
        let a = parse_timestamp("2017-11-23T15:30:41.662+0700");
        let b = parse_timestamp("2017-11-23T08:30:41.662Z");
        assert!(a.is_some());
        assert_eq!(a, b);
        assert_eq!(
            parse_timestamp("2020-12-16 22:10:24.468+0000"),
            parse_timestamp("2020-12-16T22:10:24.468+00:00")
        );
        assert_eq!(
            parse_timestamp("1530864250486"),
            parse_timestamp("2018-07-06T08:04:10.486Z")
        );
        assert_eq!(
            parse_timestamp("2013-12-11T10:00:26-0800"),
            parse_timestamp("2013-12-11T18:00:26Z")
        );
        assert_eq!(parse_timestamp("yesterday"), None);
        assert_eq!(parse_timestamp(""), None);
        assert_eq!(parse_timestamp("99999999999999999999999"), None);
    }

    #[test]
    fn seconds_never_negative() {
        let early = parse_timestamp("2017-11-23T15:30:36.280+0700").unwrap();
        let late = parse_timestamp("2017-11-23T15:30:41.662+0700").unwrap();
        assert_eq!(seconds_between(early, late), 5);
        assert_eq!(seconds_between(late, early), 0);
    }
}
