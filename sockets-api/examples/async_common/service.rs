//! The HTTP service of `hyper_server`: `GET /` answers a short text,
//! `GET /bytes/N` answers N bytes of a known pattern (`abc...z` repeated),
//! anything else 404 (or 405 for another method).

use std::convert::Infallible;
use std::sync::OnceLock;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};

/// The text `GET /` answers.
pub const HELLO: &str = "hello from hyper on ustack\n";

/// Largest body `GET /bytes/N` serves (a bound on what one request makes
/// the server allocate); above it the answer is 400.
pub const MAX_BYTES: usize = 64 << 20;

/// The pattern's byte at offset `i`.
pub fn pattern_byte(i: usize) -> u8 {
    b'a' + (i % 26) as u8
}

/// The first `n` bytes of the pattern.
pub fn pattern(n: usize) -> Bytes {
    // Up to 1 MiB is sliced from one shared buffer (no copy per request).
    const SHARED: usize = 1 << 20;
    static BUF: OnceLock<Bytes> = OnceLock::new();
    if n <= SHARED {
        let buf = BUF.get_or_init(|| (0..SHARED).map(pattern_byte).collect::<Vec<u8>>().into());
        return buf.slice(..n);
    }
    (0..n).map(pattern_byte).collect::<Vec<u8>>().into()
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut()
        .insert("content-type", "text/plain".parse().unwrap());
    r
}

/// Answers one request.
pub async fn handle(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    if req.method() != Method::GET {
        return Ok(text(StatusCode::METHOD_NOT_ALLOWED, "GET only\n"));
    }
    let path = req.uri().path();
    if path == "/" {
        return Ok(text(StatusCode::OK, HELLO));
    }
    if let Some(n) = path.strip_prefix("/bytes/") {
        return Ok(match n.parse::<usize>() {
            Ok(n) if n <= MAX_BYTES => {
                let mut r = Response::new(Full::new(pattern(n)));
                r.headers_mut()
                    .insert("content-type", "application/octet-stream".parse().unwrap());
                r
            }
            _ => text(StatusCode::BAD_REQUEST, "bad length\n"),
        });
    }
    Ok(text(StatusCode::NOT_FOUND, "not found\n"))
}
