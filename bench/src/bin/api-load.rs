//! The socket API's own cost: two ustack stacks in one process joined by an
//! in-memory link, driven through `sockets-api` (`TcpStream` reads and
//! writes from application threads, one stack thread each).
//!
//! ```text
//! api-load [--bytes N] [--write-size N] [--requests N] [--connections N]
//! ```
//!
//! Prints bulk throughput (one stream, writes of `--write-size`), the
//! request/response rate on one connection (1-byte ping-pong), and the
//! connection rate (connect, 1-byte request, reply, close).

use std::io::{Read, Write};
use std::thread;
use std::time::Instant;

use sockets_api::{StackBuilder, TcpListener, TcpStream};

const USAGE: &str = "api-load [--bytes N] [--write-size N] [--requests N] [--connections N]";

fn main() {
    let flags = bench::Flags::from_env(USAGE);
    let bytes: u64 = flags.get("bytes", 1 << 30);
    let write_size: usize = flags.get("write-size", 64 * 1024);
    let requests: u64 = flags.get("requests", 20_000);
    let connections: u64 = flags.get("connections", 2_000);
    if write_size == 0 {
        eprintln!("error: --write-size must be positive");
        std::process::exit(2);
    }
    let (a, b) = StackBuilder::memory_pair(
        StackBuilder::memory().addr("10.0.0.1/24".parse().expect("addr")),
        StackBuilder::memory().addr("10.0.0.2/24".parse().expect("addr")),
    )
    .unwrap_or_else(|e| {
        eprintln!("error: cannot start the stacks: {e}");
        std::process::exit(1);
    });

    // Bulk: a sink on A, a writer on B.
    let sink = TcpListener::bind(&a, "0.0.0.0:9").expect("bind");
    let reader = thread::spawn(move || {
        let (mut s, _) = sink.accept().expect("accept");
        let mut buf = vec![0u8; 256 * 1024];
        let mut total = 0u64;
        loop {
            match s.read(&mut buf) {
                Ok(0) => break total,
                Ok(n) => total += n as u64,
                Err(e) => panic!("sink: {e}"),
            }
        }
    });
    let mut c = TcpStream::connect(&b, "10.0.0.1:9").expect("connect");
    let chunk = vec![0x5au8; write_size];
    let t0 = Instant::now();
    let mut sent = 0u64;
    while sent < bytes {
        let n = (bytes - sent).min(write_size as u64) as usize;
        c.write_all(&chunk[..n]).expect("write");
        sent += n as u64;
    }
    c.shutdown(std::net::Shutdown::Write).expect("shutdown");
    let got = reader.join().expect("reader");
    let el = t0.elapsed();
    assert_eq!(got, bytes);
    let st = c.stats().expect("stats");
    println!(
        "bulk: {} MiB in {:.2} s = {:.2} Gbit/s ({} B writes, {} retransmitted bytes)",
        bytes >> 20,
        el.as_secs_f64(),
        bytes as f64 * 8.0 / el.as_secs_f64() / 1e9,
        write_size,
        st.bytes_retransmitted
    );
    drop(c);

    // Ping-pong on one connection.
    let echo = TcpListener::bind(&a, "0.0.0.0:7").expect("bind");
    let server = thread::spawn(move || {
        let (mut s, _) = echo.accept().expect("accept");
        s.set_nodelay(true).expect("nodelay");
        let mut b = [0u8; 1];
        while let Ok(1) = s.read(&mut b) {
            s.write_all(&b).expect("echo");
        }
    });
    let mut c = TcpStream::connect(&b, "10.0.0.1:7").expect("connect");
    c.set_nodelay(true).expect("nodelay");
    let t0 = Instant::now();
    let mut one = [0u8; 1];
    for _ in 0..requests {
        c.write_all(b"x").expect("write");
        c.read_exact(&mut one).expect("read");
    }
    let el = t0.elapsed();
    println!(
        "ping-pong: {requests} round trips in {:.2} s = {:.0} req/s ({:.1} us each)",
        el.as_secs_f64(),
        requests as f64 / el.as_secs_f64(),
        el.as_secs_f64() * 1e6 / requests as f64
    );
    drop(c);
    server.join().expect("server");

    // Connections: connect, request, reply, close.
    let l = TcpListener::bind(&a, "0.0.0.0:80").expect("bind");
    let server = thread::spawn(move || {
        for _ in 0..connections {
            let (mut s, _) = l.accept().expect("accept");
            let mut b = [0u8; 1];
            s.read_exact(&mut b).expect("read");
            s.write_all(&b).expect("write");
        }
    });
    let t0 = Instant::now();
    for _ in 0..connections {
        let mut c = TcpStream::connect(&b, "10.0.0.1:80").expect("connect");
        c.write_all(b"q").expect("write");
        c.read_exact(&mut one).expect("read");
    }
    let el = t0.elapsed();
    server.join().expect("server");
    println!(
        "connections: {connections} in {:.2} s = {:.0} conn/s",
        el.as_secs_f64(),
        connections as f64 / el.as_secs_f64()
    );
}
