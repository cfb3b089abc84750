//! TCP load from the Linux side (kernel sockets), for benchmarks:
//!
//!   tcp-load discard --target A:P [--bytes N]      write N bytes, report Gbit/s
//!   tcp-load chargen --target A:P [--bytes N]      read N bytes (pattern checked), report Gbit/s
//!   tcp-load pingpong --target A:P [--seconds S]   1-byte request/response rate on an echo port
//!   tcp-load connect --target A:P [--seconds S]    connect/request/close loop (connections per second)
//!
//! `--cc NAME` sets the kernel socket's congestion control (TCP_CONGESTION,
//! e.g. `cubic`), so a comparison with ustack's CUBIC is not one with
//! whatever the system default is (BBR here).

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

fn main() {
    let usage = "tcp-load discard|chargen|pingpong|connect --target A.B.C.D:PORT [--bytes N] [--seconds S] [--check 0|1] [--cc NAME]";
    let mode = std::env::args().nth(1).unwrap_or_default();
    let flags = bench::Flags::from_env_after(1, usage);
    let target = flags.string("target").unwrap_or_else(|| {
        eprintln!("error: --target is required (usage: {usage})");
        std::process::exit(2);
    });
    let bytes: u64 = flags.get("bytes", 1 << 30);
    let seconds: f64 = flags.get("seconds", 3.0);
    let check: u8 = flags.get("check", 1);
    if let Some(cc) = flags.string("cc") {
        // Read by open() for every connection.
        CC.set(cc).expect("set once");
    }
    match mode.as_str() {
        "discard" => discard(&target, bytes),
        "chargen" => chargen(&target, bytes, check != 0),
        "pingpong" => pingpong(&target, seconds),
        "connect" => connect_loop(&target, seconds),
        _ => {
            eprintln!("error: unknown mode '{mode}' (usage: {usage})");
            std::process::exit(2);
        }
    }
}

fn gbits(bytes: u64, d: Duration) -> f64 {
    bytes as f64 * 8.0 / d.as_secs_f64() / 1e9
}

/// The `--cc` congestion control, if any.
static CC: std::sync::OnceLock<String> = std::sync::OnceLock::new();

fn open(target: &str) -> TcpStream {
    let s = TcpStream::connect(target).unwrap_or_else(|e| {
        eprintln!("error: connect {target}: {e}");
        std::process::exit(1);
    });
    if let Some(cc) = CC.get() {
        use std::os::fd::AsRawFd;
        // SAFETY: the option value is a valid buffer of the given length
        // for the duration of the call, and the descriptor is open.
        let rc = unsafe {
            libc::setsockopt(
                s.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_CONGESTION,
                cc.as_ptr().cast(),
                cc.len() as libc::socklen_t,
            )
        };
        if rc != 0 {
            eprintln!(
                "error: TCP_CONGESTION {cc}: {}",
                std::io::Error::last_os_error()
            );
            std::process::exit(1);
        }
    }
    s
}

fn discard(target: &str, bytes: u64) {
    let mut s = open(target);
    let buf = vec![0x5au8; 1 << 20];
    let start = Instant::now();
    let mut sent = 0u64;
    while sent < bytes {
        let n = (bytes - sent).min(buf.len() as u64) as usize;
        s.write_all(&buf[..n]).expect("write");
        sent += n as u64;
    }
    s.shutdown(Shutdown::Write).expect("shutdown");
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    let d = start.elapsed();
    println!(
        "discard: {bytes} bytes into ustack in {:.2} s: {:.2} Gbit/s",
        d.as_secs_f64(),
        gbits(bytes, d)
    );
}

fn chargen(target: &str, bytes: u64, check: bool) {
    let mut s = open(target);
    let mut buf = vec![0u8; 1 << 20];
    let start = Instant::now();
    let mut got = 0u64;
    while got < bytes {
        let want = (bytes - got).min(buf.len() as u64) as usize;
        let n = s.read(&mut buf[..want]).expect("read");
        if n == 0 {
            eprintln!("error: chargen closed after {got} bytes");
            std::process::exit(1);
        }
        if check {
            for (k, &b) in buf[..n].iter().enumerate() {
                if b != b' ' + ((got + k as u64) % 95) as u8 {
                    eprintln!("error: chargen pattern broken at byte {}", got + k as u64);
                    std::process::exit(1);
                }
            }
        }
        got += n as u64;
    }
    let d = start.elapsed();
    println!(
        "chargen: {bytes} bytes out of ustack in {:.2} s: {:.2} Gbit/s{}",
        d.as_secs_f64(),
        gbits(bytes, d),
        if check { " (pattern verified)" } else { "" }
    );
}

fn pingpong(target: &str, seconds: f64) {
    let mut s = open(target);
    s.set_nodelay(true).expect("nodelay");
    let mut b = [0u8; 1];
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(seconds);
    let mut n = 0u64;
    while Instant::now() < end {
        s.write_all(b"x").expect("write");
        s.read_exact(&mut b).expect("read");
        n += 1;
    }
    let d = start.elapsed();
    println!(
        "echo ping-pong: {n} round trips in {:.2} s: {:.0} requests/s ({:.1} us each)",
        d.as_secs_f64(),
        n as f64 / d.as_secs_f64(),
        d.as_secs_f64() * 1e6 / n as f64
    );
}

fn connect_loop(target: &str, seconds: f64) {
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(seconds);
    let mut n = 0u64;
    let mut b = [0u8; 64];
    while Instant::now() < end {
        let mut s = open(target);
        s.write_all(b"hello\n").expect("write");
        let _ = s.read(&mut b).expect("read");
        drop(s);
        n += 1;
    }
    let d = start.elapsed();
    println!(
        "connect/request/close: {n} in {:.2} s: {:.0} connections/s",
        d.as_secs_f64(),
        n as f64 / d.as_secs_f64()
    );
}
