use super::*;

#[test]
fn request_lines() {
    assert_eq!(
        parse_request_line(b"GET /x HTTP/1.1"),
        Ok(("GET".to_owned(), b"/x".to_vec(), false))
    );
    assert_eq!(
        parse_request_line(b"GET /x HTTP/1.0").map(|r| r.2),
        Ok(true)
    );
    assert_eq!(parse_request_line(b"GET /x HTTP/2.0"), Err(505));
    for bad in [
        &b"GET /x"[..],
        b"GET  /x HTTP/1.1",
        b"GET /x HTTP/1.1 ",
        b"G(T /x HTTP/1.1",
        b"GET /x HTTP/1",
        b"GET /\x01 HTTP/1.1",
        b"",
    ] {
        assert_eq!(
            parse_request_line(bad),
            Err(400),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
}
#[test]
fn log_lines_are_escaped() {
    assert_eq!(sanitize(b"GET /\"x\\\x01\xff"), "GET /\\\"x\\\\\\x01\\xff");
    assert_eq!(sanitize(b""), "-");
}
