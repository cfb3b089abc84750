//! Helpers for tests of HTTP code (this crate's and its users'): an
//! in-memory duplex stream, temporary directories, and a small independent
//! response parser. Built for this crate's tests and with the
//! `test-support` feature.

use std::fs;
use std::io::{self, ErrorKind, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// What a [`Duplex`] read gives once its input is used up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// `Ok(0)`: the peer closed.
    Eof,
    /// `Err(WouldBlock)`, as a read timeout on a socket.
    Timeout,
    /// `Err(ConnectionReset)`.
    Reset,
}

/// An in-memory stream: reads come from `input`, writes collect in
/// `output`.
pub struct Duplex {
    input: Vec<u8>,
    pos: usize,
    /// Everything written so far.
    pub output: Vec<u8>,
    /// At most this many bytes per read.
    pub read_chunk: usize,
    /// What reads give once the input is used up.
    pub end: End,
    /// Writes fail (broken pipe) once `output` would exceed this.
    pub write_limit: usize,
}

impl Duplex {
    /// A stream whose reads give `input`, then end of stream.
    pub fn new(input: impl Into<Vec<u8>>) -> Duplex {
        Duplex {
            input: input.into(),
            pos: 0,
            output: Vec::new(),
            read_chunk: usize::MAX,
            end: End::Eof,
            write_limit: usize::MAX,
        }
    }

    /// Reads give at most `read_chunk` bytes each.
    pub fn chunked(mut self, read_chunk: usize) -> Duplex {
        self.read_chunk = read_chunk;
        self
    }

    /// Reads end as `end` says once the input is used up.
    pub fn ending(mut self, end: End) -> Duplex {
        self.end = end;
        self
    }

    /// Input bytes not read yet.
    pub fn unread(&self) -> usize {
        self.input.len() - self.pos
    }
}

impl Read for Duplex {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.input.len() {
            return match self.end {
                End::Eof => Ok(0),
                End::Timeout => Err(ErrorKind::WouldBlock.into()),
                End::Reset => Err(ErrorKind::ConnectionReset.into()),
            };
        }
        let n = buf
            .len()
            .min(self.read_chunk)
            .min(self.input.len() - self.pos);
        buf[..n].copy_from_slice(&self.input[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl Write for Duplex {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = self.write_limit.saturating_sub(self.output.len());
        if room == 0 && !buf.is_empty() {
            return Err(ErrorKind::BrokenPipe.into());
        }
        let n = buf.len().min(room);
        self.output.extend_from_slice(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A directory under the system temporary directory, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    /// A new, empty directory whose name contains `name`.
    pub fn new(name: &str) -> TempDir {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let unique = format!(
            "ustack-http-{name}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let path = std::env::temp_dir().join(unique);
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Creates `rel` (and its parent directories) holding `data`.
    pub fn file(&self, rel: &str, data: &[u8]) -> PathBuf {
        let path = self.0.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, data).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A response parsed by [`parse_responses`].
#[derive(Debug, Clone)]
pub struct Parsed {
    /// Status code.
    pub status: u16,
    /// Reason phrase.
    pub reason: String,
    /// Header fields in arrival order.
    pub headers: Vec<(String, String)>,
    /// Body (empty for `HEAD`, 1xx and 304).
    pub body: Vec<u8>,
}

impl Parsed {
    /// The first header field called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// How many header fields are called `name` (case-insensitive).
    pub fn count(&self, name: &str) -> usize {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .count()
    }

    /// The body as (lossy) UTF-8 text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Splits `bytes` into responses; `head_only[i]` says whether response `i`
/// answers a `HEAD` (no body despite `Content-Length`). Panics on anything
/// that is not a well-formed sequence of responses with `Content-Length`
/// (or none for 1xx/304), and on leftover bytes.
pub fn parse_responses(mut bytes: &[u8], head_only: &[bool]) -> Vec<Parsed> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let end = bytes
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| panic!("no end of head in {:?}", String::from_utf8_lossy(bytes)));
        let head = std::str::from_utf8(&bytes[..end]).expect("ASCII head");
        bytes = &bytes[end + 4..];
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap();
        assert!(status_line.starts_with("HTTP/1.1 "), "{status_line}");
        let status: u16 = status_line[9..12].parse().unwrap();
        let reason = status_line.get(13..).unwrap_or("").to_owned();
        let headers: Vec<(String, String)> = lines
            .map(|l| {
                let (n, v) = l
                    .split_once(": ")
                    .unwrap_or_else(|| panic!("bad line {l:?}"));
                (n.to_owned(), v.to_owned())
            })
            .collect();
        let mut parsed = Parsed {
            status,
            reason,
            headers,
            body: Vec::new(),
        };
        if status == 100 {
            continue;
        }
        let no_body = head_only.get(out.len()).copied().unwrap_or(false) || status == 304;
        if !no_body {
            let len: usize = parsed
                .header("Content-Length")
                .expect("Content-Length")
                .parse()
                .unwrap();
            assert!(
                bytes.len() >= len,
                "body of {len} bytes, {} left",
                bytes.len()
            );
            parsed.body = bytes[..len].to_vec();
            bytes = &bytes[len..];
        }
        out.push(parsed);
    }
    out
}
