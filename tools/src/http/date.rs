//! Date formats of HTTP (IMF-fixdate, RFC 9110 section 5.6.7) and of the
//! common log format, computed from `SystemTime` without any calendar crate.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

const WEEKDAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Whole seconds since the Unix epoch; times before it count as the epoch.
pub(crate) fn unix_seconds(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The time `secs` seconds after the Unix epoch.
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) fn from_unix_seconds(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

/// Broken-down UTC time.
struct Civil {
    year: i64,
    month: u32, // 1..=12
    day: u32,   // 1..=31
    hour: u64,
    minute: u64,
    second: u64,
    weekday: usize, // 0 = Sunday
}

fn civil(secs: u64) -> Civil {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    Civil {
        year,
        month,
        day,
        hour: rem / 3600,
        minute: rem % 3600 / 60,
        second: rem % 60,
        // 1970-01-01 was a Thursday.
        weekday: ((days + 4) % 7) as usize,
    }
}

/// Year, month (1-12) and day (1-31) of the day `z` days after 1970-01-01
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11]
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32; // [1, 31]
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32; // [1, 12]
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Days from 1970-01-01 to the given date (Howard Hinnant's
/// `days_from_civil`); the inverse of [`civil_from_days`].
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400); // [0, 399]
    let m = i64::from(m);
    let mp = if m > 2 { m - 3 } else { m + 9 }; // [0, 11]
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1; // [0, 365]
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // [0, 146096]
    era * 146_097 + doe - 719_468
}

/// `t` as an IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`.
pub(crate) fn imf_fixdate(t: SystemTime) -> String {
    let c = civil(unix_seconds(t));
    format!(
        "{}, {:02} {} {:04} {:02}:{:02}:{:02} GMT",
        WEEKDAYS[c.weekday],
        c.day,
        MONTHS[(c.month - 1) as usize],
        c.year,
        c.hour,
        c.minute,
        c.second
    )
}

/// `t` as in the common log format: `10/Oct/2000:13:55:36 +0000` (always UTC).
pub(crate) fn clf_date(t: SystemTime) -> String {
    let c = civil(unix_seconds(t));
    format!(
        "{:02}/{}/{:04}:{:02}:{:02}:{:02} +0000",
        c.day,
        MONTHS[(c.month - 1) as usize],
        c.year,
        c.hour,
        c.minute,
        c.second
    )
}

/// Parses an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) into seconds
/// since the Unix epoch. The obsolete RFC 850 and asctime forms, and dates
/// before 1970, give `None` (callers then ignore the header).
pub(crate) fn parse_imf_fixdate(s: &str) -> Option<u64> {
    let b = s.trim().as_bytes();
    // "Sun, 06 Nov 1994 08:49:37 GMT" is exactly 29 bytes.
    if b.len() != 29 || &b[3..5] != b", " || &b[25..] != b" GMT" {
        return None;
    }
    if !WEEKDAYS.iter().any(|w| w.as_bytes() == &b[..3]) {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<u32> {
        let part = &b[range];
        if part.iter().all(u8::is_ascii_digit) {
            std::str::from_utf8(part).ok()?.parse().ok()
        } else {
            None
        }
    };
    if b[7] != b' ' || b[11] != b' ' || b[16] != b' ' || b[19] != b':' || b[22] != b':' {
        return None;
    }
    let day = num(5..7)?;
    let month = MONTHS.iter().position(|m| m.as_bytes() == &b[8..11])? as u32 + 1;
    let year = num(12..16)?;
    let (hour, minute, second) = (num(17..19)?, num(20..22)?, num(23..25)?);
    if !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 || year < 1970 {
        return None;
    }
    let days = days_from_civil(i64::from(year), month, day);
    let secs = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second);
    u64::try_from(secs).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_dates() {
        assert_eq!(imf_fixdate(UNIX_EPOCH), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(
            imf_fixdate(from_unix_seconds(784_111_777)),
            "Sun, 06 Nov 1994 08:49:37 GMT"
        );
        // A leap day and the end of a century leap year.
        assert_eq!(
            imf_fixdate(from_unix_seconds(951_782_400)),
            "Tue, 29 Feb 2000 00:00:00 GMT"
        );
        assert_eq!(
            imf_fixdate(from_unix_seconds(978_307_199)),
            "Sun, 31 Dec 2000 23:59:59 GMT"
        );
        assert_eq!(
            clf_date(from_unix_seconds(971_185_336)),
            "10/Oct/2000:13:42:16 +0000"
        );
    }

    #[test]
    fn parse_round_trips() {
        for secs in [
            0,
            784_111_777,
            951_782_400,
            1_700_000_000,
            4_102_444_800,
            253_402_300_799,
        ] {
            let text = imf_fixdate(from_unix_seconds(secs));
            assert_eq!(parse_imf_fixdate(&text), Some(secs), "{text}");
        }
        // Every day over a few years, to cover all months and leap years.
        for day in 10_950..12_500u64 {
            let secs = day * 86_400 + 3_723;
            assert_eq!(
                parse_imf_fixdate(&imf_fixdate(from_unix_seconds(secs))),
                Some(secs)
            );
        }
    }

    #[test]
    fn parse_rejects_other_forms() {
        for bad in [
            "",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
            "Sun, 06 Nov 1994 08:49:37 UTC",
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "Sun, 32 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 24:49:37 GMT",
            "Sun, 06 Nov 1969 08:49:37 GMT",
            "Sun, 0x Nov 1994 08:49:37 GMT",
        ] {
            assert_eq!(parse_imf_fixdate(bad), None, "{bad}");
        }
    }
}
