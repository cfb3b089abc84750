//! HTTP/1.1 for ustack's programs, generic over byte streams (anything
//! `Read + Write`: ustack's own `TcpStream`, `std::net::TcpStream`, or an
//! in-memory buffer in tests). Only the standard library is used.
//!
//! - [`FileServer`] serves the files below a directory (`ustack serve
//!   --http PORT --http-root DIR`): `GET` and `HEAD`, persistent and
//!   pipelined connections, single byte ranges, `If-Modified-Since`, and
//!   strict refusal of anything outside the root (403 for `..`, backslashes
//!   and symlinks leading out; 404 for what does not exist). One call of
//!   [`FileServer::serve_connection`] serves one connection; run one per
//!   thread, with read and write timeouts set on the stream.
//! - [`get`] fetches one URL over a connected stream (`ustack get URL`),
//!   streaming the body to a writer with progress callbacks, and
//!   [`render_progress`] draws a terminal progress line.
//!
//! Limits: request lines of 8 KiB, request heads of 64 KiB and 100 header
//! fields (the same 64 KiB for responses, with 256 fields); request bodies
//! on `GET`/`HEAD` up to 64 KiB are read and discarded.

mod client;
mod date;
mod server;
mod wire;

#[cfg(test)]
mod client_tests;
#[cfg(test)]
mod server_tests;
#[cfg(test)]
pub(crate) mod test_support;

pub use client::{HttpError, Response, Url, get, human_bytes, render_progress};
#[cfg(test)]
pub use server::{CHUNK_SIZE, ConnectionStats, MAX_REQUEST_LINE, RequestRecord};
pub use server::{CloseReason, FileServer, drain_input};
