//! kernel-serve: the Linux kernel's TCP as a same-run anchor for
//! `scripts/bench`.
//!
//! Serves echo (RFC 862), discard (RFC 863) and chargen (the endless
//! 95-character printable pattern of `ustack serve --chargen`, which
//! `tcp-load chargen --check 1` verifies) on kernel sockets, so the same
//! Linux client can be pointed at it, at `ustack serve` and at
//! `smoltcp-peer` in one run.
//!
//! usage: kernel-serve [--addr A.B.C.D] [--echo PORT] [--discard PORT]
//!        [--chargen PORT] [--workers N]
//!
//! A port of 0 disables that service (defaults 7, 9 and 19). Each service
//! has `--workers` threads (default 64, at most 1,024) that take turns in
//! `accept(2)` on one listening socket and serve the connection they got
//! with blocking calls: that many connections are served at once per
//! service, and further ones wait in the listen backlog. A pool that exists
//! before the first connection costs no thread start-up per connection,
//! which a connections-per-second run would otherwise measure.
//!
//! What each service does, as `ustack serve` does it:
//! - echo writes back what it reads (`TCP_NODELAY` on, as ustack sets it
//!   for echo) and closes after the peer's FIN once everything is written;
//! - discard reads until the peer's FIN, then closes;
//! - chargen writes the pattern, continuing where the last write stopped,
//!   until a write fails (the peer closed or reset) or the peer's FIN
//!   arrives; what the peer sends is read and dropped.
//!
//! On start-up it prints one `kernel-serve: listening on ...` line to
//! standard output; SIGINT or SIGTERM ends it.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, TcpListener, TcpStream};
use std::process::ExitCode;
use std::sync::Arc;
use std::thread;

const USAGE: &str =
    "kernel-serve [--addr A.B.C.D] [--echo PORT] [--discard PORT] [--chargen PORT] [--workers N]";
/// Chargen's pattern repeats every 95 bytes: ASCII 32..=126.
const PATTERN_PERIOD: usize = 95;
/// The pattern kept unrolled so that one write can take up to this many
/// bytes starting at any phase (a whole number of periods).
const PATTERN_WRITE: usize = PATTERN_PERIOD * 690;
/// Read buffer of each worker.
const BUF_LEN: usize = 256 * 1024;
/// Default and largest `--workers`.
const DEFAULT_WORKERS: usize = 64;
const MAX_WORKERS: usize = 1024;

#[derive(Clone, Copy, Debug)]
enum Kind {
    Echo,
    Discard,
    Chargen,
}

fn main() -> ExitCode {
    let flags = bench::Flags::from_env(USAGE);
    let addr: Ipv4Addr = flags.get("addr", Ipv4Addr::UNSPECIFIED);
    let workers: usize = flags.get("workers", DEFAULT_WORKERS);
    if !(1..=MAX_WORKERS).contains(&workers) {
        eprintln!("error: --workers must be from 1 to {MAX_WORKERS}, not {workers}");
        return ExitCode::from(2);
    }
    let services = [
        (Kind::Echo, flags.get("echo", 7u16)),
        (Kind::Discard, flags.get("discard", 9u16)),
        (Kind::Chargen, flags.get("chargen", 19u16)),
    ];
    let pattern: Arc<[u8]> = pattern(PATTERN_WRITE + PATTERN_PERIOD).into();
    let mut listening = Vec::new();
    let mut handles = Vec::new();
    for (kind, port) in services {
        if port == 0 {
            continue;
        }
        let listener = match TcpListener::bind((addr, port)) {
            Ok(l) => Arc::new(l),
            Err(e) => {
                eprintln!("error: cannot listen on {addr}:{port}: {e}");
                return ExitCode::FAILURE;
            }
        };
        for _ in 0..workers {
            let listener = Arc::clone(&listener);
            let pattern = Arc::clone(&pattern);
            handles.push(thread::spawn(move || worker(&listener, kind, &pattern)));
        }
        listening.push(format!("{kind:?} {addr}:{port}").to_lowercase());
    }
    if listening.is_empty() {
        eprintln!("error: every service is disabled (usage: {USAGE})");
        return ExitCode::from(2);
    }
    println!(
        "kernel-serve: listening on {} ({workers} workers each)",
        listening.join(", ")
    );
    for h in handles {
        let _ = h.join();
    }
    ExitCode::SUCCESS
}

/// `len` bytes of the chargen pattern from phase 0.
fn pattern(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| b' ' + (i % PATTERN_PERIOD) as u8)
        .collect()
}

/// Accepts and serves connections one at a time, forever. A failed accept
/// (a connection reset while queued, descriptors exhausted) is skipped.
fn worker(listener: &TcpListener, kind: Kind, pattern: &[u8]) {
    let mut buf = vec![0u8; BUF_LEN];
    loop {
        let stream = match listener.accept() {
            Ok((s, _)) => s,
            Err(_) => {
                thread::yield_now();
                continue;
            }
        };
        // A connection ends with an error as often as not (a peer that
        // resets): it is just over.
        let _ = match kind {
            Kind::Echo => echo(stream, &mut buf),
            Kind::Discard => discard(stream, &mut buf),
            Kind::Chargen => chargen(stream, pattern),
        };
    }
}

fn echo(mut s: TcpStream, buf: &mut [u8]) -> io::Result<()> {
    s.set_nodelay(true)?;
    loop {
        let n = s.read(buf)?;
        if n == 0 {
            return Ok(());
        }
        s.write_all(&buf[..n])?;
    }
}

fn discard(mut s: TcpStream, buf: &mut [u8]) -> io::Result<()> {
    while s.read(buf)? > 0 {}
    Ok(())
}

/// Writes the pattern from this thread while a second one reads and drops
/// what the peer sends; the peer's FIN shuts the writing side down, which
/// ends the writes.
fn chargen(s: TcpStream, pattern: &[u8]) -> io::Result<()> {
    let mut reader = s.try_clone()?;
    let drain = thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while matches!(reader.read(&mut buf), Ok(n) if n > 0) {}
        let _ = reader.shutdown(Shutdown::Both);
    });
    let mut w = &s;
    let mut offset = 0usize;
    let result = loop {
        let phase = offset % PATTERN_PERIOD;
        match w.write(&pattern[phase..phase + PATTERN_WRITE]) {
            Ok(0) => break Ok(()),
            Ok(n) => offset += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => break Err(e),
        }
    };
    let _ = s.shutdown(Shutdown::Both);
    let _ = drain.join();
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pattern is the one `tcp-load chargen --check 1` verifies: byte
    /// `i` of the stream is `' ' + i % 95`, whatever phase a write starts at.
    #[test]
    fn chargen_pattern_continues_across_writes() {
        let p = pattern(PATTERN_WRITE + PATTERN_PERIOD);
        let mut stream = Vec::new();
        let mut offset = 0usize;
        for take in [1usize, 94, 95, 1000, PATTERN_WRITE, 7] {
            let phase = offset % PATTERN_PERIOD;
            stream.extend_from_slice(&p[phase..phase + take]);
            offset += take;
        }
        for (i, &b) in stream.iter().enumerate() {
            assert_eq!(b, b' ' + (i % 95) as u8, "byte {i}");
        }
    }

    /// Echo, discard and chargen over loopback, served by real workers.
    #[test]
    fn services_over_loopback() {
        let pattern: Arc<[u8]> = pattern(PATTERN_WRITE + PATTERN_PERIOD).into();
        let mut addrs = Vec::new();
        for kind in [Kind::Echo, Kind::Discard, Kind::Chargen] {
            let l = Arc::new(TcpListener::bind("127.0.0.1:0").unwrap());
            addrs.push(l.local_addr().unwrap());
            let p = Arc::clone(&pattern);
            thread::spawn(move || worker(&l, kind, &p));
        }
        // Echo: what goes in comes back, then the server closes after our FIN.
        let mut e = TcpStream::connect(addrs[0]).unwrap();
        let msg: Vec<u8> = (0..300_000u32).map(|i| (i * 7) as u8).collect();
        let writer = {
            let mut w = e.try_clone().unwrap();
            let msg = msg.clone();
            thread::spawn(move || {
                w.write_all(&msg).unwrap();
                w.shutdown(Shutdown::Write).unwrap();
            })
        };
        let mut back = Vec::new();
        e.read_to_end(&mut back).unwrap();
        writer.join().unwrap();
        assert_eq!(back, msg);
        // Discard: takes everything, closes after our FIN, sends nothing.
        let mut d = TcpStream::connect(addrs[1]).unwrap();
        d.write_all(&msg).unwrap();
        d.shutdown(Shutdown::Write).unwrap();
        let mut none = Vec::new();
        d.read_to_end(&mut none).unwrap();
        assert!(none.is_empty());
        // Chargen: a long prefix of the pattern, then our FIN ends it.
        let mut c = TcpStream::connect(addrs[2]).unwrap();
        let mut got = vec![0u8; 1 << 20];
        c.read_exact(&mut got).unwrap();
        for (i, &b) in got.iter().enumerate() {
            assert_eq!(b, b' ' + (i % 95) as u8, "byte {i}");
        }
        c.shutdown(Shutdown::Write).unwrap();
        let mut rest = Vec::new();
        let _ = c.read_to_end(&mut rest);
    }
}
