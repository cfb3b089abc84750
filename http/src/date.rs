//! Date formats of HTTP (RFC 9110 section 5.6.7), through the `httpdate`
//! crate, and of the common log format.

use std::time::{SystemTime, UNIX_EPOCH};

/// Whole seconds since the Unix epoch; times before it count as the epoch.
pub(crate) fn unix_seconds(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// `t` as an IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`. Times before
/// the Unix epoch are given as the epoch.
pub(crate) fn imf_fixdate(t: SystemTime) -> String {
    httpdate::fmt_http_date(t.max(UNIX_EPOCH))
}

/// `t` as in the common log format: `10/Oct/2000:13:55:36 +0000` (always
/// UTC), rearranged from the fixed-width IMF-fixdate.
pub(crate) fn clf_date(t: SystemTime) -> String {
    let imf = imf_fixdate(t);
    // "Sun, 06 Nov 1994 08:49:37 GMT"
    //  0    5  8   12   17
    match (
        imf.get(5..7),
        imf.get(8..11),
        imf.get(12..16),
        imf.get(17..25),
    ) {
        (Some(day), Some(month), Some(year), Some(time)) => {
            format!("{day}/{month}/{year}:{time} +0000")
        }
        _ => imf,
    }
}

/// Parses an HTTP date in any of the three forms a recipient must accept
/// (RFC 9110 section 5.6.7): IMF-fixdate (`Sun, 06 Nov 1994 08:49:37
/// GMT`), the obsolete RFC 850 form (`Sunday, 06-Nov-94 08:49:37 GMT`) and
/// asctime's (`Sun Nov  6 08:49:37 1994`), into seconds since the Unix
/// epoch. Anything else, and dates before 1970, give `None` (callers then
/// ignore the header).
pub(crate) fn parse_http_date(s: &str) -> Option<u64> {
    let t = httpdate::parse_http_date(s.trim()).ok()?;
    t.duration_since(UNIX_EPOCH).ok().map(|d| d.as_secs())
}

#[cfg(test)]
mod tests;
