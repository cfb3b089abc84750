use super::*;

#[test]
fn parses_decimal_and_hex() {
    assert_eq!(parse_seed("42"), Some(42));
    assert_eq!(parse_seed(" 0x2a\n"), Some(42));
    assert_eq!(parse_seed("0XFF"), Some(255));
    assert_eq!(parse_seed("18446744073709551615"), Some(u64::MAX));
    assert_eq!(parse_seed("-1"), None);
    assert_eq!(parse_seed("seven"), None);
    assert_eq!(parse_seed(""), None);
}

#[test]
fn derived_streams_differ() {
    let a = derive_seed(1, Stream::Channel, 0);
    assert_ne!(a, derive_seed(1, Stream::Channel, 1));
    assert_ne!(a, derive_seed(1, Stream::Host, 0));
    assert_ne!(a, derive_seed(2, Stream::Channel, 0));
    assert_eq!(a, derive_seed(1, Stream::Channel, 0));
}
