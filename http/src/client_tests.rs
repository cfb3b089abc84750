//! Tests of the client and the progress renderer.

use std::io::{self, ErrorKind, Write};
use std::time::Duration;

use super::test_support::{Duplex, End};
use super::{HttpError, Response, Url, get, render_progress};

fn url(s: &str) -> Url {
    Url::parse(s).unwrap()
}

/// The result of `get`, the body written, the progress calls, and the
/// request sent.
type Fetched = (
    Result<Response, HttpError>,
    Vec<u8>,
    Vec<(u64, Option<u64>)>,
    String,
);

/// Runs `get` against a canned response.
fn fetch(response: &[u8], read_chunk: usize) -> Fetched {
    let mut stream = Duplex::new(response).chunked(read_chunk);
    let mut body = Vec::new();
    let mut calls = Vec::new();
    let result = get(
        &mut stream,
        &url("http://example.com:8080/a/b?c=d"),
        &mut body,
        &mut |n, t| calls.push((n, t)),
    );
    (
        result,
        body,
        calls,
        String::from_utf8(stream.output).unwrap(),
    )
}

#[test]
fn url_parsing() {
    let cases = [
        ("http://example.com", "example.com", 80, "/"),
        ("http://example.com/", "example.com", 80, "/"),
        (
            "HTTP://Example.com:8080/a/b.txt",
            "Example.com",
            8080,
            "/a/b.txt",
        ),
        ("http://10.0.0.2:80/x?y=1#frag", "10.0.0.2", 80, "/x?y=1"),
        ("http://h?q", "h", 80, "/?q"),
        ("http://h:/x", "h", 80, "/x"),
        ("http://[::1]:81/x", "::1", 81, "/x"),
        ("http://h/a b\"c", "h", 80, "/a%20b%22c"),
        ("  http://h/%41  ", "h", 80, "/%41"),
    ];
    for (text, host, port, path) in cases {
        let u = url(text);
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            (host, port, path),
            "{text}"
        );
    }
    assert_eq!(url("http://h:8080/x").host_header(), "h:8080");
    assert_eq!(url("http://h/x").host_header(), "h");
    assert_eq!(url("http://[::1]/").to_string(), "http://[::1]/");
    assert_eq!(url("http://h:81/p").to_string(), "http://h:81/p");

    let errors = [
        ("https://example.com/", "https"),
        ("example.com/file", "missing scheme"),
        ("10.0.0.2:8080", "missing scheme"),
        ("ftp://h/", "unsupported URL scheme 'ftp'"),
        ("http://h:abc/", "bad port 'abc'"),
        ("http://h:0/", "bad port '0'"),
        ("http://h:70000/", "bad port '70000'"),
        ("http://h:-1/", "bad port"),
        ("http:///x", "empty host"),
        ("http://:80/x", "empty host"),
        ("http://", "empty host"),
        ("http://u:p@h/", "passwords"),
        ("http://[::1/", "unterminated"),
        ("http://a b/", "invalid host"),
    ];
    for (text, expected) in errors {
        let err = Url::parse(text).unwrap_err();
        assert!(err.contains(expected), "{text}: {err}");
        assert!(!err.contains('\n'));
    }
}

#[test]
fn sends_a_proper_request() {
    let (result, _, _, request) = fetch(b"HTTP/1.1 204 No Content\r\n\r\n", usize::MAX);
    assert_eq!(result.unwrap().status, 204);
    assert_eq!(
        request,
        "GET /a/b?c=d HTTP/1.1\r\nHost: example.com:8080\r\nUser-Agent: ustack\r\n\
         Accept: */*\r\nConnection: close\r\n\r\n"
    );
}

#[test]
fn content_length_body() {
    let response = b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\nContent-Type: text/plain\r\n\r\nhello worldEXTRA";
    for chunk in [usize::MAX, 1, 3] {
        let (result, body, calls, _) = fetch(response, chunk);
        let r = result.unwrap();
        assert_eq!((r.status, r.reason.as_str(), r.body_len), (200, "OK", 11));
        assert_eq!(r.header("CONTENT-TYPE"), Some("text/plain"));
        assert_eq!(r.headers[0], ("Content-Length".to_owned(), "11".to_owned()));
        assert_eq!(
            body, b"hello world",
            "bytes after the body are not part of it"
        );
        assert_eq!(calls.first(), Some(&(0, Some(11))));
        assert_eq!(calls.last(), Some(&(11, Some(11))));
    }
}

#[test]
fn chunked_body_with_trailers() {
    let response = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n\
        5\r\nhello\r\n1;ext=\"x\"\r\n \r\nA \r\n0123456789\r\n000\r\nX-Sum: 42\r\nX-B: b\r\n\r\n";
    for chunk in [usize::MAX, 1, 2, 7] {
        let (result, body, calls, _) = fetch(response, chunk);
        let r = result.unwrap();
        assert_eq!(body, b"hello 0123456789");
        assert_eq!(r.body_len, 16);
        assert_eq!(
            r.trailers,
            [("X-Sum".into(), "42".into()), ("X-B".into(), "b".into())]
        );
        assert_eq!(calls.first(), Some(&(0, None)));
        assert_eq!(calls.last(), Some(&(16, None)));
    }
    // Transfer-Encoding wins over Content-Length; a close right after the
    // last chunk is accepted.
    let (result, body, _, _) = fetch(
        b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n",
        usize::MAX,
    );
    assert_eq!((result.unwrap().body_len, body), (3, b"abc".to_vec()));
    for bad in [
        &b"zz\r\nabc\r\n0\r\n\r\n"[..],
        b"3\r\nabcd\r\n0\r\n\r\n",
        b"\r\n",
        b"0x3\r\nabc\r\n0\r\n\r\n",
    ] {
        let mut response = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        response.extend_from_slice(bad);
        let (result, _, _, _) = fetch(&response, usize::MAX);
        assert!(
            matches!(result, Err(HttpError::Malformed(_))),
            "{:?}: {result:?}",
            String::from_utf8_lossy(bad)
        );
    }
}

#[test]
fn body_until_eof() {
    let (result, body, calls, _) = fetch(b"HTTP/1.0 200 OK\r\nServer: old\r\n\r\nall of it\n", 4);
    let r = result.unwrap();
    assert_eq!((r.body_len, body.as_slice()), (10, &b"all of it\n"[..]));
    assert_eq!(calls.first(), Some(&(0, None)));
    assert_eq!(calls.last(), Some(&(10, None)));
    // Transfer-Encoding other than chunked is also read to the end.
    let (result, body, _, _) = fetch(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nzz", 100);
    assert_eq!((result.unwrap().body_len, body), (2, b"zz".to_vec()));
}

#[test]
fn interim_responses_are_skipped() {
    let (result, body, _, _) = fetch(
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        usize::MAX,
    );
    let r = result.unwrap();
    assert_eq!((r.status, r.headers.len()), (200, 1));
    assert_eq!(body, b"ok");
    let (result, _, _, _) = fetch(b"HTTP/1.1 101 Switching Protocols\r\n\r\n", usize::MAX);
    assert!(matches!(result, Err(HttpError::Malformed(_))));
}

#[test]
fn non_2xx_is_an_error_and_the_body_is_discarded() {
    let (result, body, calls, _) = fetch(
        b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot here!",
        usize::MAX,
    );
    let err = result.unwrap_err();
    assert!(
        matches!(&err, HttpError::Status { status: 404, reason, location: None } if reason == "Not Found")
    );
    assert_eq!(err.to_string(), "server answered 404 Not Found");
    assert!(body.is_empty());
    assert!(calls.is_empty());
    let (result, _, _, _) = fetch(
        b"HTTP/1.1 301 Moved Permanently\r\nLocation: http://x/y/\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n",
        1,
    );
    assert_eq!(
        result.unwrap_err().to_string(),
        "server answered 301 Moved Permanently (Location: http://x/y/)"
    );
    // Even a truncated error body reports the status.
    let (result, _, _, _) = fetch(
        b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 100\r\n\r\nshort",
        1,
    );
    assert!(matches!(result, Err(HttpError::Status { status: 500, .. })));
    // A huge error body is not read to its end.
    let mut response = b"HTTP/1.1 503 Busy\r\n\r\n".to_vec();
    response.resize(response.len() + 3_000_000, b'x');
    let mut stream = Duplex::new(response);
    let err = get(
        &mut stream,
        &url("http://h/"),
        &mut io::sink(),
        &mut |_, _| {},
    )
    .unwrap_err();
    assert!(matches!(err, HttpError::Status { status: 503, .. }));
    assert!(stream.unread() > 1_000_000);
}

#[test]
fn premature_close_is_detected() {
    let (result, body, _, _) = fetch(
        b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly fifty?",
        usize::MAX,
    );
    let err = result.unwrap_err();
    assert!(
        matches!(
            err,
            HttpError::Truncated {
                received: 11,
                expected: Some(100)
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "connection closed early: got 11 of 100 body bytes"
    );
    assert_eq!(body, b"only fifty?");
    let (result, _, _, _) = fetch(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n3\r\nab",
        1,
    );
    let err = result.unwrap_err();
    assert!(
        matches!(
            err,
            HttpError::Truncated {
                received: 7,
                expected: None
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("chunked body ended without its last chunk")
    );
    let (result, _, _, _) = fetch(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello",
        1,
    );
    assert!(matches!(
        result,
        Err(HttpError::Truncated {
            received: 5,
            expected: None
        })
    ));
}

#[test]
fn malformed_responses() {
    let cases: [&[u8]; 8] = [
        b"",
        b"HTTP/1.1 200 OK\r\nContent-Len",
        b"SSH-2.0-OpenSSH_9.6\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
        b"HTTP/1.1 200 OK\r\nBad Header\r\n\r\n",
        b"HTTP/1.1 OK\r\n\r\n",
        b"HTTP/1.1 200",
    ];
    for response in cases {
        let (result, _, _, _) = fetch(response, usize::MAX);
        let err = result.unwrap_err();
        assert!(matches!(err, HttpError::Malformed(_)), "{err:?}");
        assert!(err.to_string().starts_with("malformed response: "));
    }
    let (result, _, _, _) = fetch(b"", usize::MAX);
    assert_eq!(
        result.unwrap_err().to_string(),
        "malformed response: connection closed before a response arrived"
    );
    // Obsolete folding is unfolded; equal repeated Content-Length is fine.
    let (result, body, _, _) = fetch(
        b"HTTP/1.1 200 OK\r\nX-A: one\r\n two\r\nContent-Length: 2, 2\r\n\r\nok",
        usize::MAX,
    );
    assert_eq!(result.unwrap().header("x-a"), Some("one two"));
    assert_eq!(body, b"ok");
}

#[test]
fn too_large_headers() {
    let mut response = b"HTTP/1.1 200 OK\r\n".to_vec();
    response.extend_from_slice(format!("X-Big: {}\r\n\r\n", "a".repeat(70_000)).as_bytes());
    let (result, _, _, _) = fetch(&response, usize::MAX);
    assert!(matches!(result, Err(HttpError::HeadersTooLarge)));
    let mut response = b"HTTP/1.1 200 OK\r\n".to_vec();
    for i in 0..300 {
        response.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
    }
    response.extend_from_slice(b"\r\n");
    let (result, _, _, _) = fetch(&response, usize::MAX);
    let err = result.unwrap_err();
    assert!(matches!(err, HttpError::HeadersTooLarge));
    assert!(err.to_string().contains("too large"));
}

#[test]
fn io_errors_and_timeouts() {
    let mut stream =
        Duplex::new("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc").ending(End::Timeout);
    let err = get(
        &mut stream,
        &url("http://h/"),
        &mut io::sink(),
        &mut |_, _| {},
    )
    .unwrap_err();
    assert!(matches!(err, HttpError::Io { .. }));
    assert_eq!(err.to_string(), "reading response body: timed out");
    let mut stream = Duplex::new("").ending(End::Reset);
    let err = get(
        &mut stream,
        &url("http://h/"),
        &mut io::sink(),
        &mut |_, _| {},
    )
    .unwrap_err();
    assert!(
        err.to_string().starts_with("reading response headers: "),
        "{err}"
    );
    assert!(std::error::Error::source(&err).is_some());
    let mut stream = Duplex::new("");
    stream.write_limit = 10;
    let err = get(
        &mut stream,
        &url("http://h/"),
        &mut io::sink(),
        &mut |_, _| {},
    )
    .unwrap_err();
    assert!(err.to_string().starts_with("sending request: "), "{err}");

    // The output failing is its own error.
    struct Full;
    impl Write for Full {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::new(ErrorKind::StorageFull, "disk full"))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let mut stream = Duplex::new("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc");
    let err = get(&mut stream, &url("http://h/"), &mut Full, &mut |_, _| {}).unwrap_err();
    assert_eq!(err.to_string(), "writing output: disk full");
}

#[test]
fn progress_is_reported_regularly() {
    let len = 3 * 1024 * 1024 + 17;
    let mut response = format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\n\r\n").into_bytes();
    response.extend((0..len).map(|i| i as u8));
    let (result, body, calls, _) = fetch(&response, 1000);
    assert_eq!(result.unwrap().body_len, len as u64);
    assert_eq!(body.len(), len);
    assert_eq!(calls.first(), Some(&(0, Some(len as u64))));
    assert_eq!(calls.last(), Some(&(len as u64, Some(len as u64))));
    assert!(calls.len() >= 12);
    for w in calls.windows(2) {
        assert!(w[0].0 <= w[1].0);
        assert!(w[1].0 - w[0].0 <= 256 * 1024 + 1000, "{w:?}");
    }
}

#[test]
fn progress_rendering() {
    let mib = 1024 * 1024;
    let line = render_progress(10 * mib, Some(40 * mib), Duration::from_secs(2), 80);
    assert!(line.len() <= 80, "{line}");
    assert!(line.starts_with('['), "{line}");
    assert!(line.contains(" 25%"), "{line}");
    assert!(line.contains("10.0 MiB / 40.0 MiB"), "{line}");
    assert!(line.contains("5.0 MiB/s"), "{line}");
    assert!(line.contains("ETA 0:06"), "{line}");
    let bar = &line[1..line.find(']').unwrap()];
    assert_eq!(bar.chars().filter(|&c| c == '=').count(), bar.len() / 4);
    assert!(bar.contains('>'));

    let done = render_progress(40 * mib, Some(40 * mib), Duration::from_secs(8), 80);
    assert!(done.contains("100%") && done.contains("ETA 0:00"), "{done}");
    assert!(!done.contains('>'), "{done}");
    assert_eq!(done.len(), 80);

    // Narrow terminals lose the bar, then get cut.
    let narrow = render_progress(10 * mib, Some(40 * mib), Duration::from_secs(2), 50);
    assert!(!narrow.contains('[') && narrow.contains("25%"), "{narrow}");
    assert_eq!(
        render_progress(1, Some(2), Duration::from_secs(1), 10).len(),
        10
    );
    assert_eq!(render_progress(1, Some(2), Duration::from_secs(1), 0), "");

    // Unknown total: received, rate, elapsed.
    let plain = render_progress(3 * 1024, None, Duration::from_secs(65), 80);
    assert_eq!(plain, "3.0 KiB  47 B/s  1:05");
    // No time yet, nothing received, zero-length and overfull totals.
    let start = render_progress(0, Some(1000), Duration::ZERO, 80);
    assert!(
        start.contains("  0%") && start.contains("--/s") && start.contains("ETA -:--"),
        "{start}"
    );
    assert!(render_progress(0, Some(0), Duration::ZERO, 80).contains("100%"));
    assert!(render_progress(5000, Some(1000), Duration::from_secs(1), 80).contains("100%"));
    let gib = render_progress(3 << 30, Some(4 << 30), Duration::from_secs(3600), 100);
    assert!(
        gib.contains("3.0 GiB / 4.0 GiB") && gib.contains("ETA 20:00"),
        "{gib}"
    );
}
