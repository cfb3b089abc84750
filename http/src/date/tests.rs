use super::*;
use std::time::Duration;

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

#[test]
fn formats_known_dates() {
    assert_eq!(imf_fixdate(UNIX_EPOCH), "Thu, 01 Jan 1970 00:00:00 GMT");
    assert_eq!(
        imf_fixdate(at(784_111_777)),
        "Sun, 06 Nov 1994 08:49:37 GMT"
    );
    // A leap day and the end of a century leap year.
    assert_eq!(
        imf_fixdate(at(951_782_400)),
        "Tue, 29 Feb 2000 00:00:00 GMT"
    );
    assert_eq!(
        imf_fixdate(at(978_307_199)),
        "Sun, 31 Dec 2000 23:59:59 GMT"
    );
    assert_eq!(clf_date(at(971_185_336)), "10/Oct/2000:13:42:16 +0000");
    assert_eq!(clf_date(UNIX_EPOCH), "01/Jan/1970:00:00:00 +0000");
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
        let text = imf_fixdate(at(secs));
        assert_eq!(parse_http_date(&text), Some(secs), "{text}");
    }
    // Every day over a few years, to cover all months and leap years.
    for day in 10_950..12_500u64 {
        let secs = day * 86_400 + 3_723;
        assert_eq!(parse_http_date(&imf_fixdate(at(secs))), Some(secs));
    }
}

#[test]
fn parses_all_three_forms() {
    for form in [
        "Sun, 06 Nov 1994 08:49:37 GMT",
        "Sunday, 06-Nov-94 08:49:37 GMT",
        "Sun Nov  6 08:49:37 1994",
        "  Sun, 06 Nov 1994 08:49:37 GMT ",
    ] {
        assert_eq!(parse_http_date(form), Some(784_111_777), "{form}");
    }
}

#[test]
fn parse_rejects_other_text() {
    for bad in [
        "",
        "yesterday",
        "Sun, 06 Nov 1994 08:49:37 UTC",
        "Sun, 06 Foo 1994 08:49:37 GMT",
        "Sun, 32 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 24:49:37 GMT",
        "Sun, 06 Nov 1969 08:49:37 GMT",
        "Sun, 0x Nov 1994 08:49:37 GMT",
        "\"etag\"",
    ] {
        assert_eq!(parse_http_date(bad), None, "{bad}");
    }
}
