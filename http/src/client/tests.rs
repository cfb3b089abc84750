use super::*;

#[test]
fn status_lines() {
    assert_eq!(
        parse_status_line(b"HTTP/1.1 200 OK").unwrap(),
        (200, "OK".to_owned())
    );
    assert_eq!(
        parse_status_line(b"HTTP/1.0 404").unwrap(),
        (404, String::new())
    );
    assert_eq!(
        parse_status_line(b"HTTP/1.1 500 ").unwrap(),
        (500, String::new())
    );
    assert_eq!(
        parse_status_line(b"HTTP/1.1 302 Moved Temporarily").unwrap(),
        (302, "Moved Temporarily".to_owned())
    );
    for bad in [
        &b"HTTP/2 200 OK"[..],
        b"HTTP/1.1 20 OK",
        b"HTTP/1.1 2000 OK",
        b"SSH-2.0-OpenSSH",
        b"",
        b"HTTP/1.1 099 X",
        b"HTTP/1.1 abc",
    ] {
        assert!(
            parse_status_line(bad).is_err(),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
}

#[test]
fn chunk_sizes() {
    assert_eq!(parse_chunk_size(b"1a"), Some(26));
    assert_eq!(parse_chunk_size(b"FF ; name=value"), Some(255));
    assert_eq!(parse_chunk_size(b"0"), Some(0));
    assert_eq!(parse_chunk_size(b"00000000000000000010"), Some(16));
    assert_eq!(parse_chunk_size(b"10000000000000000"), None);
    assert_eq!(parse_chunk_size(b""), None);
    assert_eq!(parse_chunk_size(b"-1"), None);
    assert_eq!(parse_chunk_size(b"0x10"), None);
}
