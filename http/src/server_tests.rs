//! Tests of the file server, over an in-memory stream and over loopback
//! TCP.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::symlink;
use std::thread::{self, JoinHandle};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::date::{imf_fixdate, parse_http_date};
use super::test_support::{Duplex, End, Parsed, TempDir, parse_responses};
use super::{
    CloseReason, ConnectionStats, FileServer, HttpError, MAX_REQUEST_LINE, RequestRecord,
    ServerLimits, Url, drain_input, get,
};

const HELLO: &[u8] = b"Hello, world!\n";
const SECRET: &[u8] = b"TOP SECRET OUTSIDE THE ROOT";
/// 1994-11-06 08:49:37 UTC.
const MTIME: u64 = 784_111_777;
/// [`MTIME`] in the three HTTP date forms (RFC 9110 section 5.6.7).
const MTIME_FORMS: [&str; 3] = [
    "Sun, 06 Nov 1994 08:49:37 GMT",
    "Sunday, 06-Nov-94 08:49:37 GMT",
    "Sun Nov  6 08:49:37 1994",
];

fn from_unix_seconds(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| (i.wrapping_mul(7) ^ (i >> 11)) as u8)
        .collect()
}

/// A temporary site: `root/` is served, `secret.txt` lies next to it.
struct Site {
    dir: TempDir,
    server: FileServer,
}

impl Site {
    fn new(name: &str) -> Site {
        let dir = TempDir::new(name);
        let hello = dir.file("root/hello.txt", HELLO);
        File::options()
            .write(true)
            .open(&hello)
            .unwrap()
            .set_modified(from_unix_seconds(MTIME))
            .unwrap();
        dir.file("root/index.html", b"<h1>top index</h1>");
        dir.file("root/sub/index.html", b"<h1>sub index</h1>");
        dir.file("root/sub/page.htm", b"<p>page</p>");
        dir.file("root/data.bin", &pattern(1000));
        dir.file("root/empty.txt", b"");
        dir.file("root/%2e%2e/literal.txt", b"literal dots");
        fs::create_dir_all(dir.path().join("root/noindex")).unwrap();
        dir.file("secret.txt", SECRET);
        let server = FileServer::new(&dir.path().join("root")).unwrap();
        Site { dir, server }
    }

    fn root(&self) -> std::path::PathBuf {
        self.dir.path().join("root")
    }

    /// Serves `input` on an in-memory connection.
    fn exchange(&self, input: &[u8]) -> (Vec<u8>, ConnectionStats, Vec<RequestRecord>) {
        let mut stream = Duplex::new(input);
        let mut records = Vec::new();
        let stats = self
            .server
            .serve_connection_logged(&mut stream, "192.0.2.7", &mut |r| records.push(r.clone()))
            .unwrap();
        assert_eq!(stats.requests as usize, records.len());
        assert_eq!(stats.bytes_sent as usize, stream.output.len());
        assert_eq!(stats.bytes_received as usize, input.len() - stream.unread());
        (stream.output, stats, records)
    }

    /// Serves one raw request; returns its response and the stats.
    fn one(&self, request: &str) -> (Parsed, ConnectionStats) {
        let (out, stats, _) = self.exchange(request.as_bytes());
        let head = request.starts_with("HEAD ");
        let mut responses = parse_responses(&out, &[head]);
        assert_eq!(responses.len(), 1, "{request:?}");
        (responses.remove(0), stats)
    }

    fn get(&self, target: &str) -> Parsed {
        self.one(&format!("GET {target} HTTP/1.1\r\nHost: test\r\n\r\n"))
            .0
    }
}

fn assert_error_page(r: &Parsed, status: u16) {
    assert_eq!(r.status, status, "{r:?}");
    assert_eq!(r.header("Content-Type"), Some("text/html; charset=utf-8"));
    let text = r.text();
    assert!(text.contains(&format!("<h1>{status} ")), "{text}");
    assert!(r.body.len() < 300);
    assert!(!text.contains("TOP SECRET"));
}

#[test]
fn new_requires_a_directory() {
    let site = Site::new("new");
    assert!(FileServer::new(&site.root().join("hello.txt")).is_err());
    assert!(FileServer::new(&site.root().join("missing")).is_err());
    let server = FileServer::new(&site.root().join("sub/..")).unwrap();
    assert_eq!(server.root(), fs::canonicalize(site.root()).unwrap());
}

#[test]
fn get_file_with_headers() {
    let site = Site::new("get");
    let (r, stats) = site.one("GET /hello.txt HTTP/1.1\r\nHost: test\r\n\r\n");
    assert_eq!((r.status, r.reason.as_str()), (200, "OK"));
    assert_eq!(r.body, HELLO);
    assert_eq!(r.header("Content-Length"), Some("14"));
    assert_eq!(r.header("Content-Type"), Some("text/plain; charset=utf-8"));
    assert_eq!(r.header("Accept-Ranges"), Some("bytes"));
    assert_eq!(
        r.header("Last-Modified"),
        Some("Sun, 06 Nov 1994 08:49:37 GMT")
    );
    assert_eq!(r.header("Server"), Some("ustack"));
    let date = parse_http_date(r.header("Date").unwrap()).unwrap();
    assert!(date > 1_700_000_000);
    // HTTP/1.1 keeps the connection: no Connection header; served until EOF.
    assert_eq!(r.header("Connection"), None);
    assert_eq!(stats.requests, 1);
    assert_eq!(stats.close, CloseReason::ClientClosed);
    assert!(!stats.drain_before_close);
    for header in [
        "Content-Length",
        "Content-Type",
        "Date",
        "Server",
        "Last-Modified",
    ] {
        assert_eq!(r.count(header), 1, "{header}");
    }
}

#[test]
fn head_has_same_headers_and_no_body() {
    let site = Site::new("head");
    let (out, _, records) = site.exchange(
        b"HEAD /data.bin HTTP/1.1\r\nHost: t\r\n\r\nGET /data.bin HTTP/1.1\r\nHost: t\r\n\r\n",
    );
    let r = parse_responses(&out, &[true, false]);
    assert_eq!(r.len(), 2);
    assert_eq!(r[0].status, 200);
    assert!(r[0].body.is_empty());
    assert_eq!(r[1].body, pattern(1000));
    for name in [
        "Content-Length",
        "Content-Type",
        "Last-Modified",
        "Accept-Ranges",
    ] {
        assert_eq!(r[0].header(name), r[1].header(name), "{name}");
    }
    assert_eq!(r[0].header("Content-Length"), Some("1000"));
    assert_eq!(records[0].body_bytes, 0);
    assert_eq!(records[1].body_bytes, 1000);
    // HEAD of an error: headers of the page, no body.
    let (r, _) = site.one("HEAD /missing HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(r.status, 404);
    assert!(r.body.is_empty());
    assert!(r.header("Content-Length").unwrap().parse::<u32>().unwrap() > 0);
}

#[test]
fn content_types() {
    let site = Site::new("types");
    let cases = [
        ("a.html", "text/html; charset=utf-8"),
        ("a.htm", "text/html; charset=utf-8"),
        ("a.txt", "text/plain; charset=utf-8"),
        ("a.css", "text/css; charset=utf-8"),
        ("a.js", "text/javascript; charset=utf-8"),
        ("a.json", "application/json"),
        ("a.png", "image/png"),
        ("a.jpg", "image/jpeg"),
        ("a.JPEG", "image/jpeg"),
        ("a.gif", "image/gif"),
        ("a.svg", "image/svg+xml"),
        ("a.ico", "image/x-icon"),
        ("a.pdf", "application/pdf"),
        ("a.wasm", "application/wasm"),
        ("a.bin", "application/octet-stream"),
        ("a.xyz", "application/octet-stream"),
        ("Makefile", "application/octet-stream"),
    ];
    for (name, _) in cases {
        site.dir.file(&format!("root/types/{name}"), b"x");
    }
    for (name, expected) in cases {
        let r = site.get(&format!("/types/{name}"));
        assert_eq!(r.status, 200, "{name}");
        assert_eq!(r.header("Content-Type"), Some(expected), "{name}");
    }
    // Directories are served as their index.html.
    assert_eq!(
        site.get("/sub/").header("Content-Type"),
        Some("text/html; charset=utf-8")
    );
}

#[test]
fn index_html_for_directories() {
    let site = Site::new("index");
    assert_eq!(site.get("/").body, b"<h1>top index</h1>");
    assert_eq!(site.get("/sub/").body, b"<h1>sub index</h1>");
    assert_eq!(site.get("/sub").body, b"<h1>sub index</h1>");
    assert_eq!(site.get("//sub/./").body, b"<h1>sub index</h1>");
    assert_eq!(site.get("/sub/page.htm?x=1#frag").body, b"<p>page</p>");
    assert_error_page(&site.get("/noindex/"), 404);
    assert_error_page(&site.get("/noindex"), 404);
    // absolute-form targets (RFC 9112 section 3.2.2)
    assert_eq!(site.get("http://test/sub/page.htm").body, b"<p>page</p>");
    assert_eq!(site.get("http://test").body, b"<h1>top index</h1>");
}

#[test]
fn missing_files_are_404() {
    let site = Site::new("missing");
    for target in [
        "/missing.txt",
        "/sub/missing/",
        "/hello.txt/x",
        "/hello.txt/",
        "/hello.txt/.",
    ] {
        assert_error_page(&site.get(target), 404);
    }
    // A 404 keeps the connection open.
    let (out, stats, _) = site.exchange(
        b"GET /nope HTTP/1.1\r\nHost: t\r\n\r\nGET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n",
    );
    let r = parse_responses(&out, &[]);
    assert_eq!((r[0].status, r[1].status), (404, 200));
    assert_eq!(stats.requests, 2);
}

#[test]
fn empty_file() {
    let site = Site::new("emptyfile");
    let r = site.get("/empty.txt");
    assert_eq!((r.status, r.header("Content-Length")), (200, Some("0")));
    let r = site
        .one("GET /empty.txt HTTP/1.1\r\nHost: t\r\nRange: bytes=0-\r\n\r\n")
        .0;
    assert_eq!(
        (r.status, r.header("Content-Range")),
        (416, Some("bytes */0"))
    );
    let r = site
        .one("GET /empty.txt HTTP/1.1\r\nHost: t\r\nRange: bytes=-5\r\n\r\n")
        .0;
    assert_eq!(r.status, 200);
}

#[test]
fn keep_alive_pipelined_in_memory() {
    let site = Site::new("pipeline");
    let requests = "GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n\
                    HEAD /sub/ HTTP/1.1\r\nHost: t\r\n\r\n\
                    GET /data.bin HTTP/1.1\r\nHost: t\r\nRange: bytes=10-19\r\n\r\n\
                    GET /sub/page.htm HTTP/1.1\r\nHost: t\r\n\r\n";
    // Whole, and one byte per read: no byte of a following request is lost.
    for chunk in [usize::MAX, 1, 5] {
        let mut stream = Duplex::new(requests).chunked(chunk);
        let stats = site.server.serve_connection(&mut stream, "p").unwrap();
        let r = parse_responses(&stream.output, &[false, true, false, false]);
        assert_eq!(r.len(), 4);
        assert_eq!(r[0].body, HELLO);
        assert_eq!(
            (r[1].status, r[1].header("Content-Length")),
            (200, Some("18"))
        );
        assert_eq!(r[2].status, 206);
        assert_eq!(r[2].body, &pattern(1000)[10..20]);
        assert_eq!(r[3].body, b"<p>page</p>");
        assert_eq!(stats.requests, 4);
        assert_eq!(stats.close, CloseReason::ClientClosed);
    }
}

#[test]
fn connection_close_is_honoured() {
    let site = Site::new("close");
    let (out, stats, _) = site.exchange(
        b"GET /hello.txt HTTP/1.1\r\nHost: t\r\nConnection: Close\r\n\r\nGET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n",
    );
    let r = parse_responses(&out, &[]);
    assert_eq!(r.len(), 1, "the second request is not answered");
    assert_eq!(r[0].header("Connection"), Some("close"));
    assert_eq!(r[0].body, HELLO);
    assert_eq!(stats.close, CloseReason::ConnectionClose);
    assert!(
        stats.drain_before_close,
        "a pipelined request was left unread"
    );
    // A token list containing close.
    let (r, stats) = site.one("GET / HTTP/1.1\r\nHost: t\r\nConnection: keep-alive, close\r\n\r\n");
    assert_eq!(r.header("Connection"), Some("close"));
    assert_eq!(stats.close, CloseReason::ConnectionClose);
    assert!(!stats.drain_before_close);
}

#[test]
fn http10_closes_unless_keep_alive() {
    let site = Site::new("http10");
    let two = "GET /hello.txt HTTP/1.0\r\n\r\nGET /hello.txt HTTP/1.0\r\n\r\n";
    let (out, stats, _) = site.exchange(two.as_bytes());
    let r = parse_responses(&out, &[]);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].status, 200, "HTTP/1.0 needs no Host");
    assert_eq!(r[0].header("Connection"), Some("close"));
    assert_eq!(stats.close, CloseReason::ConnectionClose);

    let two = "GET /hello.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n\
               GET /hello.txt HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n";
    let (out, stats, _) = site.exchange(two.as_bytes());
    let r = parse_responses(&out, &[]);
    assert_eq!(r.len(), 2);
    assert_eq!(r[0].header("Connection"), Some("keep-alive"));
    assert_eq!(r[1].body, HELLO);
    assert_eq!(stats.close, CloseReason::ClientClosed);
}

#[test]
fn other_methods_get_405() {
    let site = Site::new("methods");
    for method in ["POST", "PUT", "DELETE", "OPTIONS", "PATCH", "BREW"] {
        let (r, stats) = site.one(&format!("{method} /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n"));
        assert_error_page(&r, 405);
        assert_eq!(r.header("Allow"), Some("GET, HEAD"));
        assert_eq!(
            stats.close,
            CloseReason::ClientClosed,
            "405 keeps the connection"
        );
    }
    let (r, _) = site.one("OPTIONS * HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(r.status, 405);
    // A small body is read and thrown away; the next request still works.
    let (out, stats, _) = site.exchange(
        b"POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhelloGET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n",
    );
    let r = parse_responses(&out, &[]);
    assert_eq!((r[0].status, r[1].status), (405, 200));
    assert_eq!(stats.close, CloseReason::ClientClosed);
    // A large or chunked body: 405 and close.
    for framing in ["Content-Length: 1000000", "Transfer-Encoding: chunked"] {
        let (out, stats, _) =
            site.exchange(format!("PUT /x HTTP/1.1\r\nHost: t\r\n{framing}\r\n\r\n").as_bytes());
        let r = parse_responses(&out, &[]);
        assert_eq!(r[0].status, 405);
        assert_eq!(r[0].header("Connection"), Some("close"));
        assert_eq!(stats.close, CloseReason::Rejected);
    }
}

#[test]
fn bad_requests_get_400_and_close() {
    let site = Site::new("bad");
    let long_target = format!("/{}", "a".repeat(MAX_REQUEST_LINE));
    let cases: Vec<(String, u16)> = vec![
        ("garbage\r\n\r\n".into(), 400),
        ("GET\r\n\r\n".into(), 400),
        ("GET /\r\n\r\n".into(), 400),
        ("GET / HTTP/1.1 extra\r\nHost: t\r\n\r\n".into(), 400),
        ("GET  / HTTP/1.1\r\nHost: t\r\n\r\n".into(), 400),
        ("GET / HTTP/1.x\r\nHost: t\r\n\r\n".into(), 400),
        ("GET / FTP/1.1\r\nHost: t\r\n\r\n".into(), 400),
        ("G@T / HTTP/1.1\r\nHost: t\r\n\r\n".into(), 400),
        ("GET / HTTP/2.0\r\nHost: t\r\n\r\n".into(), 505),
        (
            "\x16\x03\x01\x02\x00\x01\x00\x01\x7c\x03\x03\r\n\r\n".into(),
            400,
        ),
        ("GET /hello.txt HTTP/1.1\r\n\r\n".into(), 400),
        ("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n".into(), 400),
        ("GET / HTTP/1.1\r\nHost: a b\r\n\r\n".into(), 400),
        ("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n".into(), 400),
        ("GET / HTTP/1.1\r\nHost : t\r\n\r\n".into(), 400),
        ("GET / HTTP/1.1\r\nHost: t\r\nNoColon\r\n\r\n".into(), 400),
        (
            "GET / HTTP/1.1\r\nHost: t\r\nX-A: 1\r\n folded\r\n\r\n".into(),
            400,
        ),
        (
            "GET / HTTP/1.1\r\nHost: t\r\nContent-Length: x\r\n\r\n".into(),
            400,
        ),
        (
            "GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n".into(),
            400,
        ),
        (
            "GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
                .into(),
            400,
        ),
        (
            "GET / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".into(),
            400,
        ),
        (
            "GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 65537\r\n\r\n".into(),
            400,
        ),
        (
            "GET / HTTP/1.1\r\nHost: t\r\nExpect: magic\r\n\r\n".into(),
            417,
        ),
        ("GET /%zz HTTP/1.1\r\nHost: t\r\n\r\n".into(), 400),
        ("GET /hello.txt%00 HTTP/1.1\r\nHost: t\r\n\r\n".into(), 400),
        ("GET /hello.txt%0 HTTP/1.1\r\nHost: t\r\n\r\n".into(), 400),
        ("GET /a% HTTP/1.1\r\nHost: t\r\n\r\n".into(), 400),
        ("GET hello.txt HTTP/1.1\r\nHost: t\r\n\r\n".into(), 400),
        ("GET /a\x7fb HTTP/1.1\r\nHost: t\r\n\r\n".into(), 400),
        (
            format!("GET {long_target} HTTP/1.1\r\nHost: t\r\n\r\n"),
            400,
        ),
        (
            format!(
                "GET / HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n",
                "b".repeat(70_000)
            ),
            431,
        ),
        (
            format!(
                "GET / HTTP/1.1\r\nHost: t\r\n{}\r\n",
                (0..40)
                    .map(|i| format!("X-H{i}: {}\r\n", "v".repeat(2000)))
                    .collect::<String>()
            ),
            431,
        ),
        (
            format!(
                "GET / HTTP/1.1\r\nHost: t\r\n{}\r\n",
                (0..101)
                    .map(|i| format!("X-H{i}: v\r\n"))
                    .collect::<String>()
            ),
            431,
        ),
        ("\r\n".repeat(20) + "GET / HTTP/1.1\r\nHost: t\r\n\r\n", 400),
    ];
    for (request, status) in cases {
        // A valid request follows: it must not be answered.
        let input = format!("{request}GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n");
        let (out, stats, records) = site.exchange(input.as_bytes());
        let r = parse_responses(&out, &[]);
        let shown = &request[..request.len().min(60)];
        assert_eq!(r.len(), 1, "{shown:?}");
        assert_error_page(&r[0], status);
        assert_eq!(r[0].header("Connection"), Some("close"), "{shown:?}");
        assert_eq!(stats.close, CloseReason::Rejected, "{shown:?}");
        assert!(stats.drain_before_close);
        assert_eq!(records[0].status, status);
        assert!(records[0].request_line.len() <= 1024 + 3);
    }
    // 100 headers are fine, and a few empty lines before the request line.
    let many: String = (0..99).map(|i| format!("X-H{i}: v\r\n")).collect();
    let (r, _) = site.one(&format!(
        "\r\n\r\nGET /hello.txt HTTP/1.1\r\nHost: t\r\n{many}\r\n"
    ));
    assert_eq!(r.status, 200);
    // An HTTP/1.1 request line of exactly the limit is read (404: no such file).
    let exact = format!(
        "/{}",
        "a".repeat(MAX_REQUEST_LINE - "GET  HTTP/1.1".len() - 1)
    );
    let (r, _) = site.one(&format!("GET {exact} HTTP/1.1\r\nHost: t\r\n\r\n"));
    assert_eq!(r.status, 404);
}

#[test]
fn request_bodies_on_get() {
    let site = Site::new("bodies");
    let (out, stats, _) = site.exchange(
        b"GET /hello.txt HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\nabcdGET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n",
    );
    let r = parse_responses(&out, &[]);
    assert_eq!(r.len(), 2);
    assert_eq!(r[1].body, HELLO);
    assert_eq!(stats.close, CloseReason::ClientClosed);
    // Expect: 100-continue gets the interim response before the body is read.
    let (out, _, _) = site.exchange(
        b"GET /hello.txt HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nxy",
    );
    assert!(out.starts_with(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n"));
    // The client vanishing inside the body ends the connection quietly.
    let (out, stats, _) =
        site.exchange(b"GET /hello.txt HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc");
    assert!(out.is_empty());
    assert_eq!(stats.close, CloseReason::ClientClosed);
}

#[test]
fn ranges() {
    let site = Site::new("ranges");
    let data = pattern(1000);
    let range = |spec: &str| {
        site.one(&format!(
            "GET /data.bin HTTP/1.1\r\nHost: t\r\nRange: {spec}\r\n\r\n"
        ))
        .0
    };
    let partial = [
        ("bytes=0-99", 0, 99),
        ("bytes=100-100", 100, 100),
        ("bytes=900-", 900, 999),
        ("bytes=-10", 990, 999),
        ("bytes=-5000", 0, 999),
        ("bytes=990-5000", 990, 999),
        ("bytes=0-99999999999999999999999", 0, 999),
        ("Bytes=5-9", 5, 9),
        ("bytes=5-9,", 5, 9),
    ];
    for (spec, first, last) in partial {
        let r = range(spec);
        assert_eq!(r.status, 206, "{spec}");
        assert_eq!(r.reason, "Partial Content");
        assert_eq!(
            r.header("Content-Range"),
            Some(format!("bytes {first}-{last}/1000").as_str())
        );
        assert_eq!(
            r.header("Content-Length"),
            Some((last - first + 1).to_string().as_str())
        );
        assert_eq!(r.header("Content-Type"), Some("application/octet-stream"));
        assert_eq!(r.body, &data[first..=last], "{spec}");
    }
    for spec in ["bytes=1000-", "bytes=1000-2000", "bytes=5000-", "bytes=-0"] {
        let r = range(spec);
        assert_eq!(r.status, 416, "{spec}");
        assert_eq!(r.header("Content-Range"), Some("bytes */1000"));
        assert_error_page(&r, 416);
    }
    // Malformed and multiple ranges are ignored: the whole file.
    for spec in [
        "bytes=9-5",
        "bytes=abc",
        "bytes=",
        "bytes 0-5",
        "lines=0-5",
        "bytes=0-1,5-6",
        "bytes=-",
        "bytes=1-2-3",
    ] {
        let r = range(spec);
        assert_eq!(r.status, 200, "{spec}");
        assert_eq!(r.header("Content-Range"), None);
        assert_eq!(r.body, data, "{spec}");
    }
    // Two Range fields are ignored too, and HEAD ignores Range.
    let r = site
        .one("GET /data.bin HTTP/1.1\r\nHost: t\r\nRange: bytes=0-1\r\nRange: bytes=3-4\r\n\r\n")
        .0;
    assert_eq!(r.status, 200);
    let r = site
        .one("HEAD /data.bin HTTP/1.1\r\nHost: t\r\nRange: bytes=0-1\r\n\r\n")
        .0;
    assert_eq!((r.status, r.header("Content-Length")), (200, Some("1000")));
    // If-Range: the Last-Modified date applies the range; anything else not.
    let lm = imf_fixdate(from_unix_seconds(MTIME));
    let if_range = |value: &str| {
        site.one(&format!(
            "GET /hello.txt HTTP/1.1\r\nHost: t\r\nRange: bytes=0-4\r\nIf-Range: {value}\r\n\r\n"
        ))
        .0
    };
    assert_eq!(if_range(&lm).body, b"Hello");
    for form in MTIME_FORMS {
        let r = if_range(form);
        assert_eq!(
            (r.status, r.body.as_slice()),
            (206, &b"Hello"[..]),
            "{form}"
        );
    }
    for other in [
        "Mon, 07 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 08:49:36 GMT",
        "Monday, 07-Nov-94 08:49:37 GMT",
        "Sun Nov  6 08:49:38 1994",
    ] {
        let r = if_range(other);
        assert_eq!((r.status, r.body.as_slice()), (200, HELLO), "{other}");
    }
    assert_eq!(if_range("\"etag\"").body, HELLO);
}

#[test]
fn if_modified_since() {
    let site = Site::new("ims");
    let req = |date: &str| {
        site.one(&format!(
            "GET /hello.txt HTTP/1.1\r\nHost: t\r\nIf-Modified-Since: {date}\r\n\r\n"
        ))
        .0
    };
    let r = req("Sun, 06 Nov 1994 08:49:37 GMT");
    assert_eq!((r.status, r.header("Content-Length")), (304, None));
    assert_eq!(
        r.header("Last-Modified"),
        Some("Sun, 06 Nov 1994 08:49:37 GMT")
    );
    assert_eq!(req("Sat, 01 Jan 2050 00:00:00 GMT").status, 304);
    assert_eq!(req("Sun, 06 Nov 1994 08:49:36 GMT").status, 200);
    // The obsolete forms a recipient must accept too.
    for form in MTIME_FORMS {
        assert_eq!(req(form).status, 304, "{form}");
    }
    assert_eq!(req("Sat Jan  1 00:00:00 2050").status, 304);
    assert_eq!(req("Sunday, 06-Nov-94 08:49:36 GMT").status, 200);
    assert_eq!(req("Sun Nov  6 08:49:36 1994").status, 200);
    assert_eq!(req("yesterday").status, 200);
    let r = site
        .one("GET /hello.txt HTTP/1.1\r\nHost: t\r\nIf-None-Match: \"x\"\r\nIf-Modified-Since: Sat, 01 Jan 2050 00:00:00 GMT\r\n\r\n")
        .0;
    assert_eq!(r.status, 200);
}

#[test]
fn path_escapes_are_refused() {
    let site = Site::new("escapes");
    let root = site.root();
    // Links inside the root: to the outside (file and directory) and inside.
    symlink(site.dir.path().join("secret.txt"), root.join("leak.txt")).unwrap();
    symlink(site.dir.path(), root.join("updir")).unwrap();
    symlink("/etc", root.join("etc")).unwrap();
    symlink(root.join("hello.txt"), root.join("alias.txt")).unwrap();
    symlink("sub", root.join("relsub")).unwrap();
    fs::create_dir_all(site.dir.path().join("outside")).unwrap();
    site.dir.file("outside/index.html", SECRET);
    symlink(
        site.dir.path().join("outside/index.html"),
        root.join("noindex/index.html"),
    )
    .unwrap();

    let forbidden = [
        "/../secret.txt",
        "/../etc/passwd",
        "/%2e%2e/secret.txt",
        "/%2E%2E/secret.txt",
        "/a/%2e%2e/%2e%2e/secret.txt",
        "/sub/..",
        "/sub/../hello.txt",
        "/..%2fsecret.txt",
        "/sub%2f..%2f..%2fsecret.txt",
        "/%2e%2e%2fsecret.txt",
        "/..\\secret.txt",
        "/%5c..%5csecret.txt",
        "/leak.txt",
        "/updir/secret.txt",
        "/etc/passwd",
        "/noindex/",
        "http://test/../secret.txt",
    ];
    for target in forbidden {
        let r = site.get(target);
        assert_error_page(&r, 403);
    }
    // Double encoding is decoded once: a literal "%2e%2e" directory.
    assert_error_page(&site.get("/%252e%252e/secret.txt"), 404);
    assert_eq!(site.get("/%252e%252e/literal.txt").body, b"literal dots");
    // Links that stay inside the root are fine.
    assert_eq!(site.get("/alias.txt").body, HELLO);
    assert_eq!(site.get("/relsub/page.htm").body, b"<p>page</p>");
    assert_eq!(site.get("/relsub/").body, b"<h1>sub index</h1>");
    // Percent-encoded ordinary characters work.
    assert_eq!(site.get("/%68ello.txt").body, HELLO);
    // A connection survives a 403.
    let (out, _, _) = site.exchange(
        b"GET /../x HTTP/1.1\r\nHost: t\r\n\r\nGET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n",
    );
    let r = parse_responses(&out, &[]);
    assert_eq!((r[0].status, r[1].status), (403, 200));
}

#[test]
fn special_files_are_not_served() {
    let site = Site::new("special");
    // A FIFO would block an open(); it must be refused without opening.
    let fifo = site.root().join("fifo");
    let status = std::process::Command::new("mkfifo").arg(&fifo).status();
    if status.is_ok_and(|s| s.success()) {
        assert_error_page(&site.get("/fifo"), 404);
    }
    symlink("/dev/zero", site.root().join("zero")).unwrap();
    assert_error_page(&site.get("/zero"), 403);
    symlink("missing-target", site.root().join("dangling")).unwrap();
    assert_error_page(&site.get("/dangling"), 404);
}

#[test]
fn idle_reset_and_write_errors() {
    let site = Site::new("idle");
    let mut stream = Duplex::new("GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n").ending(End::Timeout);
    let stats = site.server.serve_connection(&mut stream, "p").unwrap();
    assert_eq!((stats.requests, stats.close), (1, CloseReason::Idle));
    // Stalled in the middle of a head: also idle, nothing sent.
    let mut stream = Duplex::new("GET /hello.txt HTTP/1.1\r\nHo").ending(End::Timeout);
    let stats = site.server.serve_connection(&mut stream, "p").unwrap();
    assert_eq!((stats.requests, stats.close), (0, CloseReason::Idle));
    assert!(stream.output.is_empty());
    let mut stream = Duplex::new("").ending(End::Reset);
    let stats = site.server.serve_connection(&mut stream, "p").unwrap();
    assert_eq!(stats.close, CloseReason::Reset);
    // A write error aborts the connection; the record says incomplete.
    let big = site.dir.file("root/big.bin", &pattern(600_000));
    assert!(big.exists());
    let mut stream = Duplex::new(
        "GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\nGET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n",
    );
    stream.write_limit = 300_000;
    let mut records = Vec::new();
    let err = site
        .server
        .serve_connection_logged(&mut stream, "p", &mut |r| records.push(r.clone()))
        .unwrap_err();
    assert!(err.to_string().contains("writing response"), "{err}");
    assert_eq!(records.len(), 1);
    assert!(!records[0].complete);
    // The first piece (head and body together: 256 KiB) went out whole.
    let head_len = stream
        .output
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap()
        + 4;
    assert_eq!(records[0].body_bytes as usize, super::CHUNK_SIZE - head_len);
    assert_eq!(stream.output.len(), 300_000);
}

#[test]
fn blocking_driver_honours_the_session_deadlines() {
    let site = Site::new("blocking-deadlines");
    let limits = |head: u64, idle: u64| ServerLimits {
        head_timeout: Duration::from_secs(head),
        idle_timeout: Duration::from_secs(idle),
        ..ServerLimits::default()
    };
    // A head deadline already passed: nothing is served.
    let server = site.server.clone().with_limits(limits(0, 15));
    let mut stream = Duplex::new("GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n").chunked(1);
    let stats = server.serve_connection(&mut stream, "p").unwrap();
    assert_eq!((stats.requests, stats.close), (0, CloseReason::HeadTimeout));
    assert!(stream.output.is_empty());
    // An idle deadline passed when the stream's read timeout fires.
    let server = site.server.clone().with_limits(limits(10, 0));
    let mut stream = Duplex::new("GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n").ending(End::Timeout);
    let stats = server.serve_connection(&mut stream, "p").unwrap();
    assert_eq!((stats.requests, stats.close), (1, CloseReason::IdleTimeout));
}

#[test]
fn access_log_lines() {
    let site = Site::new("log");
    let (_, _, records) = site.exchange(
        b"GET /hello.txt?q=\"x\" HTTP/1.1\r\nHost: t\r\nUser-Agent: curl/8\r\nReferer: http://r/\r\n\r\nHEAD /nope HTTP/1.1\r\nHost: t\r\n\r\n",
    );
    assert_eq!(records.len(), 2);
    assert_eq!(records[0].user_agent.as_deref(), Some("curl/8"));
    assert_eq!(records[0].referer.as_deref(), Some("http://r/"));
    let line = records[0].access_log_line();
    let (start, rest) = line.split_once(" [").unwrap();
    assert_eq!(start, "192.0.2.7 - -");
    let (date, rest) = rest.split_once("] ").unwrap();
    assert_eq!(date.len(), "10/Oct/2000:13:55:36 +0000".len());
    assert!(date.ends_with(" +0000"));
    assert_eq!(rest, "\"GET /hello.txt?q=\\\"x\\\" HTTP/1.1\" 200 14");
    assert!(
        records[1]
            .access_log_line()
            .ends_with("\"HEAD /nope HTTP/1.1\" 404 -")
    );
}

// ---- over loopback TCP ----

/// Serves `connections` connections on a loopback listener the way a
/// program should: timeouts on the stream, then a lingering close when
/// asked for.
fn spawn_tcp(
    server: &FileServer,
    connections: usize,
    read_timeout: Duration,
) -> (SocketAddr, JoinHandle<Vec<ConnectionStats>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = server.clone();
    let handle = thread::spawn(move || {
        let mut all = Vec::new();
        for _ in 0..connections {
            let (mut stream, peer) = listener.accept().unwrap();
            stream.set_read_timeout(Some(read_timeout)).unwrap();
            stream
                .set_write_timeout(Some(Duration::from_secs(20)))
                .unwrap();
            let stats = server
                .serve_connection(&mut stream, &peer.ip().to_string())
                .unwrap();
            if stats.drain_before_close {
                let _ = stream.shutdown(Shutdown::Write);
                stream
                    .set_read_timeout(Some(Duration::from_millis(500)))
                    .unwrap();
                drain_input(&mut stream, 1 << 20, Duration::from_secs(2));
            }
            all.push(stats);
        }
        all
    });
    (addr, handle)
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream
}

/// Reads exactly one response (with a Content-Length body unless
/// `head_only`) from `stream`.
fn read_response(stream: &mut TcpStream, head_only: bool) -> Parsed {
    let mut head = Vec::new();
    let mut byte = [0u8];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(stream.read(&mut byte).unwrap(), 1, "EOF inside a head");
        head.push(byte[0]);
    }
    let parsed = parse_responses(&head, &[true]).remove(0);
    let len: usize = parsed.header("Content-Length").unwrap().parse().unwrap();
    let mut body = vec![0; if head_only { 0 } else { len }];
    stream.read_exact(&mut body).unwrap();
    Parsed { body, ..parsed }
}

fn read_to_end(stream: &mut TcpStream) -> Vec<u8> {
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).unwrap();
    rest
}

#[test]
fn tcp_keep_alive_sequential_and_pipelined() {
    let site = Site::new("tcp-keepalive");
    let (addr, handle) = spawn_tcp(&site.server, 1, Duration::from_secs(5));
    let mut s = connect(addr);
    s.write_all(b"GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    assert_eq!(read_response(&mut s, false).body, HELLO);
    s.write_all(b"GET /data.bin HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    assert_eq!(read_response(&mut s, false).body, pattern(1000));
    // Two pipelined requests in one write.
    s.write_all(
        b"GET /sub/page.htm HTTP/1.1\r\nHost: t\r\n\r\nHEAD /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n",
    )
    .unwrap();
    assert_eq!(read_response(&mut s, false).body, b"<p>page</p>");
    let head = read_response(&mut s, true);
    assert_eq!(head.header("Content-Length"), Some("14"));
    s.shutdown(Shutdown::Write).unwrap();
    assert!(read_to_end(&mut s).is_empty());
    let stats = handle.join().unwrap();
    assert_eq!(stats[0].requests, 4);
    assert_eq!(stats[0].close, CloseReason::ClientClosed);
}

#[test]
fn tcp_close_idle_and_rejects() {
    let site = Site::new("tcp-close");
    let (addr, handle) = spawn_tcp(&site.server, 4, Duration::from_millis(300));
    // HTTP/1.0: one response, then EOF.
    let mut s = connect(addr);
    s.write_all(b"GET /hello.txt HTTP/1.0\r\n\r\n").unwrap();
    let out = read_to_end(&mut s);
    let r = parse_responses(&out, &[]);
    assert_eq!((r.len(), r[0].header("Connection")), (1, Some("close")));
    // Connection: close with a pipelined request behind it.
    let mut s = connect(addr);
    s.write_all(b"GET /hello.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    let out = read_to_end(&mut s);
    assert_eq!(parse_responses(&out, &[]).len(), 1);
    // Oversized headers: 431 arrives although the server stopped reading.
    let mut s = connect(addr);
    let big = format!(
        "GET / HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n",
        "x".repeat(200_000)
    );
    let _ = s.write_all(big.as_bytes());
    let out = read_to_end(&mut s);
    let r = parse_responses(&out, &[]);
    assert_eq!((r.len(), r[0].status), (1, 431));
    // Idle: nothing sent; the server gives up after its read timeout.
    let mut s = connect(addr);
    assert!(read_to_end(&mut s).is_empty());
    let stats = handle.join().unwrap();
    let reasons: Vec<CloseReason> = stats.iter().map(|s| s.close).collect();
    assert_eq!(
        reasons,
        [
            CloseReason::ConnectionClose,
            CloseReason::ConnectionClose,
            CloseReason::Rejected,
            CloseReason::Idle
        ]
    );
}

#[test]
fn tcp_large_file_byte_exact() {
    let site = Site::new("tcp-large");
    let data = pattern(20 << 20);
    site.dir.file("root/large.bin", &data);
    let (addr, handle) = spawn_tcp(&site.server, 3, Duration::from_secs(5));

    // Raw client.
    let mut s = connect(addr);
    s.write_all(b"GET /large.bin HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let r = read_response(&mut s, false);
    assert_eq!(r.header("Content-Length"), Some("20971520"));
    assert!(r.body == data, "body differs");
    assert!(read_to_end(&mut s).is_empty());

    // A range from the middle.
    let mut s = connect(addr);
    s.write_all(b"GET /large.bin HTTP/1.1\r\nHost: t\r\nRange: bytes=1000000-9999999\r\nConnection: close\r\n\r\n").unwrap();
    let r = read_response(&mut s, false);
    assert_eq!(r.status, 206);
    assert!(r.body == data[1_000_000..10_000_000], "range differs");

    // ustack's own client.
    let mut s = connect(addr);
    let url = Url::parse(&format!("http://{addr}/large.bin")).unwrap();
    let mut body = Vec::new();
    let mut calls = Vec::new();
    let response = get(&mut s, &url, &mut body, &mut |n, total| {
        calls.push((n, total))
    })
    .unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.body_len, 20 << 20);
    assert!(body == data, "client body differs");
    assert_eq!(calls.first(), Some(&(0, Some(20 << 20))));
    assert_eq!(calls.last(), Some(&(20 << 20, Some(20 << 20))));
    assert!(
        calls
            .windows(2)
            .all(|w| w[0].0 <= w[1].0 && w[1].0 - w[0].0 <= 256 * 1024 + 65536)
    );

    let stats = handle.join().unwrap();
    assert!(stats[0].bytes_sent > 20 << 20);
    assert_eq!(stats.iter().map(|s| s.requests).sum::<u64>(), 3);
}

#[test]
fn tcp_client_errors_against_server() {
    let site = Site::new("tcp-client");
    let (addr, handle) = spawn_tcp(&site.server, 2, Duration::from_secs(5));
    let mut s = connect(addr);
    let url = Url::parse(&format!("http://{addr}/nope.txt")).unwrap();
    let mut body = Vec::new();
    match get(&mut s, &url, &mut body, &mut |_, _| {}) {
        Err(HttpError::Status {
            status: 404,
            reason,
            location: None,
        }) => {
            assert_eq!(reason, "Not Found");
        }
        other => panic!("{other:?}"),
    }
    assert!(body.is_empty());
    let mut s = connect(addr);
    let url = Url::parse(&format!("http://{addr}/sub/")).unwrap();
    let response = get(&mut s, &url, &mut body, &mut |_, _| {}).unwrap();
    assert_eq!(
        response.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(body, b"<h1>sub index</h1>");
    handle.join().unwrap();
}
