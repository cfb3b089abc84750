//! HTTP/1.1 for ustack's programs, generic over byte streams (anything
//! `Read + Write`: ustack's own `TcpStream`, `std::net::TcpStream`, or an
//! in-memory buffer in tests).
//!
//! - [`FileServer`] serves the files below a directory (`ustack serve
//!   --http PORT --http-root DIR`): `GET` and `HEAD`, persistent and
//!   pipelined connections, single byte ranges, `If-Modified-Since` and
//!   `If-Range` (dates in any of the three forms of RFC 9110 section
//!   5.6.7), and strict refusal of anything outside the root (403 for `..`,
//!   backslashes and symlinks leading out; 404 for what does not exist).
//!   Each connection is a sans-IO [`Session`] ([`FileServer::session`]):
//!   an event loop feeds it bytes and the time and writes what it
//!   produces, so a few threads serve thousands of connections under the
//!   deadlines of [`ServerLimits`] (request head, keep-alive idle, write
//!   stall, lingering close), with 503 for connections over a cap
//!   ([`FileServer::busy_session`]). [`FileServer::serve_connection`]
//!   drives one session over a blocking stream.
//! - [`get`] fetches one URL over a connected stream (`ustack get URL`),
//!   streaming the body to a writer with progress callbacks, and
//!   [`render_progress`] draws a terminal progress line.
//!
//! Limits: request lines of 8 KiB, request heads of 64 KiB and 100 header
//! fields (the same 64 KiB for responses, with 256 fields); request bodies
//! on `GET`/`HEAD` up to 64 KiB are read and discarded.

#![warn(missing_docs)]

mod client;
mod date;
mod progress;
mod server;
mod wire;

#[cfg(test)]
mod client_tests;
#[cfg(test)]
mod server_tests;
#[cfg(any(test, feature = "test-support"))]
pub mod test_support;

pub use client::{
    HttpError, MAX_RESPONSE_HEADER_BYTES, MAX_RESPONSE_HEADERS, PROGRESS_BYTES, PROGRESS_INTERVAL,
    Response, Url, get,
};
pub use progress::{human_bytes, render_progress};
pub use server::{
    CHUNK_SIZE, CloseReason, ConnectionStats, FileServer, MAX_DISCARDED_BODY, MAX_HEADER_BYTES,
    MAX_HEADERS, MAX_REQUEST_LINE, RequestRecord, ServerLimits, Session, drain_input,
};
