//! Responses: status lines, error pages, and the response to a file
//! (conditional requests and ranges).

use std::fs::File;
use std::time::SystemTime;

use super::range::{RangeOutcome, apply_range, parse_range};
use super::request::Request;
use super::target::Found;
use crate::date::{imf_fixdate, parse_http_date, unix_seconds};

/// The reason phrase sent with `status`.
pub(super) fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        206 => "Partial Content",
        304 => "Not Modified",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Error",
    }
}

/// A response about to be sent.
pub(super) struct Reply {
    pub(super) status: u16,
    pub(super) headers: Vec<(&'static str, String)>,
    /// `Content-Length`; `None` sends none (304).
    pub(super) content_length: Option<u64>,
    pub(super) body: Body,
}

/// The body of a [`Reply`].
pub(super) enum Body {
    Empty,
    Bytes(Vec<u8>),
    /// `len` bytes of the file from `offset`.
    File {
        file: File,
        offset: u64,
        len: u64,
    },
}

impl Reply {
    /// An error response with a short HTML body.
    pub(super) fn error(status: u16) -> Reply {
        let text = format!("{status} {}", reason_phrase(status));
        let body = format!(
            "<!DOCTYPE html>\n<html><head><title>{text}</title></head>\
             <body><h1>{text}</h1></body></html>\n"
        );
        Reply {
            status,
            headers: vec![("Content-Type", "text/html; charset=utf-8".to_owned())],
            content_length: Some(body.len() as u64),
            body: Body::Bytes(body.into_bytes()),
        }
    }

    pub(super) fn method_not_allowed() -> Reply {
        let mut reply = Reply::error(405);
        reply.headers.push(("Allow", "GET, HEAD".to_owned()));
        reply
    }
}

/// The response to a `GET` or `HEAD` of a file that was found.
pub(super) fn file_reply(request: &Request, found: Found) -> Reply {
    // Last-Modified must not be in the future (RFC 9110 section 8.8.2.1).
    let mtime = found.mtime.min(SystemTime::now());
    let mut headers = vec![
        ("Content-Type", found.content_type.to_owned()),
        ("Last-Modified", imf_fixdate(mtime)),
        ("Accept-Ranges", "bytes".to_owned()),
    ];
    // If-Modified-Since is ignored when If-None-Match is present (we have
    // no entity tags to compare); RFC 9110 section 13.1.3.
    if request.header("if-none-match").is_none() {
        let since = request
            .header("if-modified-since")
            .and_then(parse_http_date);
        if since.is_some_and(|since| unix_seconds(mtime) <= since) {
            headers.remove(0);
            return Reply {
                status: 304,
                headers,
                content_length: None,
                body: Body::Empty,
            };
        }
    }
    let len = found.len;
    // Ranges apply to GET only (RFC 9110 section 14.2); several Range
    // fields, or an If-Range that does not match, mean the whole file. We
    // have no entity tags, so only an If-Range date naming the exact
    // Last-Modified second matches (RFC 9110 section 13.1.5), in any of
    // the three date forms.
    let mut ranges = request.all("range");
    let outcome = match (ranges.next(), ranges.next()) {
        (Some(range), None)
            if request.method == "GET"
                && request
                    .header("if-range")
                    .is_none_or(|v| parse_http_date(v) == Some(unix_seconds(mtime))) =>
        {
            parse_range(range).map_or(RangeOutcome::Full, |spec| apply_range(spec, len))
        }
        _ => RangeOutcome::Full,
    };
    match outcome {
        RangeOutcome::Full => Reply {
            status: 200,
            headers,
            content_length: Some(len),
            body: Body::File {
                file: found.file,
                offset: 0,
                len,
            },
        },
        RangeOutcome::Part(first, last) => {
            headers.push(("Content-Range", format!("bytes {first}-{last}/{len}")));
            let n = last - first + 1;
            Reply {
                status: 206,
                headers,
                content_length: Some(n),
                body: Body::File {
                    file: found.file,
                    offset: first,
                    len: n,
                },
            }
        }
        RangeOutcome::Unsatisfiable => {
            let mut reply = Reply::error(416);
            reply
                .headers
                .push(("Content-Range", format!("bytes */{len}")));
            reply
        }
    }
}
