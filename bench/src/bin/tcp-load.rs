//! TCP load from the Linux side (kernel sockets), for benchmarks:
//!
//!   tcp-load discard --target A:P [--bytes N]      write N bytes, report Gbit/s
//!   tcp-load chargen --target A:P [--bytes N]      read N bytes (pattern checked), report Gbit/s
//!   tcp-load pingpong --target A:P [--seconds S]   1-byte request/response rate on an echo port
//!   tcp-load connect --target A:P [--seconds S] [--parallel K]
//!                                                  connections per second: K loops of connect,
//!                                                  1-byte request, its echo, close
//!
//! `--cc NAME` sets the kernel socket's congestion control (TCP_CONGESTION,
//! e.g. `cubic`), so a comparison with ustack's CUBIC is not one with
//! whatever the system default is (BBR here).

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

fn main() {
    let usage = "tcp-load discard|chargen|pingpong|connect --target A.B.C.D:PORT [--bytes N] [--seconds S] [--check 0|1] [--parallel K] [--cc NAME]";
    let mode = std::env::args().nth(1).unwrap_or_default();
    let flags = bench::Flags::from_env_after(1, usage);
    let target = flags.string("target").unwrap_or_else(|| {
        eprintln!("error: --target is required (usage: {usage})");
        std::process::exit(2);
    });
    let bytes: u64 = flags.get("bytes", 1 << 30);
    let seconds: f64 = flags.get("seconds", 3.0);
    let check: u8 = flags.get("check", 1);
    let parallel: usize = flags.get("parallel", 1);
    if !(1..=MAX_PARALLEL).contains(&parallel) {
        eprintln!("error: --parallel must be from 1 to {MAX_PARALLEL}, not {parallel}");
        std::process::exit(2);
    }
    if let Some(cc) = flags.string("cc") {
        // Read by open() for every connection.
        CC.set(cc).expect("set once");
    }
    match mode.as_str() {
        "discard" => discard(&target, bytes),
        "chargen" => chargen(&target, bytes, check != 0),
        "pingpong" => pingpong(&target, seconds),
        "connect" => connect_loops(&target, seconds, parallel),
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

/// Largest `--parallel`.
const MAX_PARALLEL: usize = 256;
/// How long one connect, or the wait for one echo, may take before that
/// connection counts as failed (a SYN or the request lost, a peer that
/// does not accept).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Connections per second: `parallel` threads each repeat connect, write one
/// byte, read its echo, close, until `seconds` are over, so one connection's
/// round trips do not limit the rate. The client closes first (its socket
/// goes to TIME-WAIT, which the caller's namespace settings decide about).
/// A connection that is refused, times out or resets counts as failed and
/// the loop goes on.
fn connect_loops(target: &str, seconds: f64, parallel: usize) {
    let addr: SocketAddr = target.parse().unwrap_or_else(|_| {
        eprintln!("error: --target must be A.B.C.D:PORT, not '{target}'");
        std::process::exit(2);
    });
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(seconds);
    let loops: Vec<_> = (0..parallel)
        .map(|_| std::thread::spawn(move || connect_loop(addr, end)))
        .collect();
    let (mut done, mut failed) = (0u64, 0u64);
    let mut first_error = None;
    for l in loops {
        let (d, f, e) = l.join().expect("connect loop");
        done += d;
        failed += f;
        first_error = first_error.or(e);
    }
    let d = start.elapsed();
    println!(
        "connect/request/close, {parallel} in parallel: {done} in {:.2} s ({failed} failed{}; client CPU {:.0}% of a core): {:.0} connections/s",
        d.as_secs_f64(),
        first_error
            .map(|e| format!(", first: {e}"))
            .unwrap_or_default(),
        cpu_seconds() / d.as_secs_f64() * 100.0,
        done as f64 / d.as_secs_f64()
    );
}

/// User and system CPU time of this process so far, in seconds: whether
/// the client itself was busy (its system time includes the kernel's TCP
/// work done in its system calls).
fn cpu_seconds() -> f64 {
    // SAFETY: a zeroed rusage is a valid value of the plain C struct.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage only writes the struct it is given.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return 0.0;
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(ru.ru_utime) + secs(ru.ru_stime)
}

/// One loop of [`connect_loops`]: (completed, failed, first error).
fn connect_loop(addr: SocketAddr, end: Instant) -> (u64, u64, Option<String>) {
    let (mut done, mut failed, mut first) = (0u64, 0u64, None);
    while Instant::now() < end {
        match connect_once(addr) {
            Ok(()) => done += 1,
            Err(e) => {
                failed += 1;
                first.get_or_insert_with(|| e.to_string());
                // Ports exhausted or a refusing peer: do not spin.
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }
    (done, failed, first)
}

fn connect_once(addr: SocketAddr) -> std::io::Result<()> {
    let mut s = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)?;
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(CONNECT_TIMEOUT))?;
    s.write_all(b"x")?;
    let mut b = [0u8; 1];
    s.read_exact(&mut b)?;
    if b[0] != b'x' {
        return Err(std::io::Error::other("echo returned another byte"));
    }
    Ok(())
}
