//! UDP echo load from the Linux side: keeps a window of datagrams in flight
//! to an echo server and reports echoed datagrams per second.
//!
//! usage: udp-load --target A.B.C.D:PORT [--size BYTES] [--seconds S] [--window N]

use std::net::UdpSocket;
use std::time::{Duration, Instant};

fn main() {
    let usage = "udp-load --target A.B.C.D:PORT [--size BYTES] [--seconds S] [--window N]";
    let flags = bench::Flags::from_env(usage);
    let target = flags.string("target").unwrap_or_else(|| {
        eprintln!("error: --target is required (usage: {usage})");
        std::process::exit(2);
    });
    let size: usize = flags.get("size", 1);
    let seconds: f64 = flags.get("seconds", 3.0);
    let window: usize = flags.get("window", 32);
    let sock = UdpSocket::bind("0.0.0.0:0").expect("bind");
    sock.connect(&target).expect("connect");
    sock.set_read_timeout(Some(Duration::from_millis(50)))
        .expect("timeout");
    let payload = vec![0x5au8; size];
    let mut buf = vec![0u8; 65_536];
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(seconds);
    let (mut echoed, mut sent, mut stalls) = (0u64, 0u64, 0u64);
    for _ in 0..window {
        sock.send(&payload).expect("send");
        sent += 1;
    }
    while Instant::now() < end {
        match sock.recv(&mut buf) {
            Ok(n) if n == size => {
                echoed += 1;
                sock.send(&payload).expect("send");
                sent += 1;
            }
            Ok(_) => {}
            Err(_) => {
                // Lost datagrams: refill the window.
                stalls += 1;
                for _ in 0..window {
                    sock.send(&payload).expect("send");
                    sent += 1;
                }
            }
        }
    }
    let elapsed = start.elapsed();
    let rate = bench::per_second(echoed as f64, elapsed);
    println!(
        "udp echo {size:>5} B: {rate:>10.0} datagrams/s  {:>8.1} Mbit/s each way  (window {window}, {sent} sent, {echoed} echoed, {stalls} stalls)",
        rate * size as f64 * 8.0 / 1e6
    );
}
