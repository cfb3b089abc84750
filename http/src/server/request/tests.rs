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

/// Feeds `input` to a parser in pieces of `piece` bytes; returns the
/// outcome and how many bytes it consumed.
fn parse_in_pieces(input: &[u8], piece: usize) -> (Option<Head>, usize) {
    let mut parser = HeadParser::default();
    let mut consumed = 0;
    for chunk in input.chunks(piece) {
        let (n, head) = parser.feed(chunk);
        consumed += n;
        if head.is_some() {
            return (head, consumed);
        }
        assert_eq!(n, chunk.len(), "an unfinished head takes everything");
    }
    (None, consumed)
}

#[test]
fn heads_are_parsed_incrementally() {
    let input = b"\r\nGET /a HTTP/1.1\r\nHost: x\r\nAccept:  */* \nX-Y: z\r\n\r\nGET /next";
    let end = input.len() - b"GET /next".len();
    for piece in [1, 2, 3, 7, input.len()] {
        let (head, consumed) = parse_in_pieces(input, piece);
        let Some(Head::Request(r)) = head else {
            panic!("no request with pieces of {piece}");
        };
        assert_eq!(consumed, end, "the next request is left unread");
        assert_eq!(
            (r.method.as_str(), r.target.as_slice()),
            ("GET", &b"/a"[..])
        );
        assert_eq!(r.header("accept"), Some("*/*"));
        assert_eq!(r.header("x-y"), Some("z"));
        assert_eq!(r.log_line, "GET /a HTTP/1.1");
    }
    // Incomplete: nothing decided yet.
    assert!(
        parse_in_pieces(b"GET /a HTTP/1.1\r\nHost: x\r\n", 4)
            .0
            .is_none()
    );
}

#[test]
fn head_limits_are_enforced_while_feeding() {
    let status = |input: &[u8], piece| match parse_in_pieces(input, piece).0 {
        Some(Head::Reject(status, _)) => status,
        Some(Head::Request(_)) => 0,
        None => 1,
    };
    // A request line one byte too long, with or without its end.
    let long = format!("GET /{} HTTP/1.1", "a".repeat(MAX_REQUEST_LINE));
    assert_eq!(status(long.as_bytes(), 100), 400);
    assert_eq!(status(format!("{long}\r\n").as_bytes(), 1000), 400);
    // Endless header bytes, too many fields, folding, a bad field.
    let big = format!("GET / HTTP/1.1\r\nX: {}", "b".repeat(MAX_HEADER_BYTES));
    assert_eq!(status(big.as_bytes(), 4096), 431);
    let many = format!(
        "GET / HTTP/1.1\r\n{}\r\n",
        "A: b\r\n".repeat(MAX_HEADERS + 1)
    );
    assert_eq!(status(many.as_bytes(), 64), 431);
    assert_eq!(status(b"GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n", 5), 400);
    assert_eq!(status(b"GET / HTTP/1.1\r\nA : b\r\n\r\n", 5), 400);
    assert_eq!(status(&b"\r\n".repeat(20), 3), 400);
    assert_eq!(status(b"GET / HTTP/3.0\r\n", 3), 505);
    // Exactly at the limits is fine.
    let fields = "A: b\r\n".repeat(MAX_HEADERS);
    assert_eq!(
        status(format!("GET / HTTP/1.1\r\n{fields}\r\n").as_bytes(), 9),
        0
    );
}
