//! TCP urgent data between ustack and a Linux peer on a TAP device: sends
//! `hello`, then `!` as urgent data (send with MSG_OOB), then `world`; then
//! waits for the peer's own urgent data and reports where the mark was.
//!
//! ```text
//! sudo cargo run -p sockets-api --example tap_urgent -- TAP ADDR/LEN HOST_ADDR/LEN PEER:PORT
//! ```
//!
//! Prints `sent urgent`, then `mark after N bytes: B` (the byte at the mark)
//! and `read: TEXT` once the peer closes. Exit 1 on any error.

use std::io;
use std::net::SocketAddrV4;
use std::process::ExitCode;
use std::time::Duration;

use sockets_api::events::POLLPRI;
use sockets_api::{Domain, Ipv4Cidr, PollFd, Protocol, StackBuilder, Type};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tap_urgent: {e}");
            ExitCode::from(if e.kind() == io::ErrorKind::InvalidInput {
                2
            } else {
                1
            })
        }
    }
}

fn bad(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

fn run(args: &[String]) -> io::Result<()> {
    let [tap, addr, host, peer] = args else {
        return Err(bad(
            "usage: tap_urgent TAP ADDR/LEN HOST_ADDR/LEN PEER:PORT".into(),
        ));
    };
    let addr: Ipv4Cidr = addr
        .parse()
        .map_err(|e| bad(format!("bad address '{addr}': {e}")))?;
    let host: Ipv4Cidr = host
        .parse()
        .map_err(|e| bad(format!("bad host address '{host}': {e}")))?;
    let peer: SocketAddrV4 = peer
        .parse()
        .map_err(|_| bad(format!("bad peer '{peer}'")))?;
    let stack = StackBuilder::tap(tap.as_str())
        .addr(addr)
        .host_addr(host)
        .start()?;
    // The peer may not listen yet (it waits for this TAP device to come
    // up): retry a refused connect for a while.
    let mut attempts = 0;
    let fd = loop {
        let fd = stack.socket(Domain::Inet, Type::Stream, Protocol::Default)?;
        match stack.connect(fd, peer) {
            Ok(()) => break fd,
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused && attempts < 100 => {
                stack.close(fd)?;
                attempts += 1;
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => return Err(e),
        }
    };
    stack.send(fd, b"hello")?;
    stack.send_flags(fd, b"!", libc::MSG_OOB)?;
    stack.send(fd, b"world")?;
    println!("sent urgent");
    // The peer answers with urgent data of its own: wait for POLLPRI alone
    // (asking for POLLIN too would return at once as soon as the bytes
    // before the urgent ones are readable, before the urgent data came).
    let mut set = [PollFd::new(fd, POLLPRI)];
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        stack.poll(&mut set, Some(Duration::from_millis(100)))?;
        if set[0].revents & POLLPRI != 0 {
            break;
        }
    }
    if set[0].revents & POLLPRI == 0 {
        return Err(io::Error::other("no POLLPRI: urgent data not signalled"));
    }
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    let mut mark = None;
    loop {
        if stack.sockatmark(fd)? && mark.is_none() {
            mark = Some(got.len());
        }
        let n = stack.recv(fd, &mut buf)?;
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    let Some(at) = mark else {
        return Err(io::Error::other("never at the mark"));
    };
    println!(
        "mark after {at} bytes: {}",
        got.get(at).map_or('-', |&b| b as char)
    );
    println!("read: {}", String::from_utf8_lossy(&got));
    stack.close(fd)?;
    stack.stop();
    Ok(())
}
