//! A TCP echo server on a TAP device: Linux programs (nc, telnet, curl)
//! talk to it through the kernel side of the TAP.
//!
//! ```text
//! sudo cargo run -p sockets-api --example tap_echo -- TAP ADDR/LEN HOST_ADDR/LEN PORT [CONNECTIONS]
//! sudo cargo run -p sockets-api --example tap_echo -- tap0 10.7.0.2/24 10.7.0.1/24 7 1
//! echo hello | nc -N 10.7.0.2 7
//! ```
//!
//! With CONNECTIONS, it exits after serving that many connections.

use std::io::{self, Read, Write};
use std::process::ExitCode;

use sockets_api::{Ipv4Cidr, StackBuilder, TcpListener};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tap_echo: {e}");
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
    let [tap, addr, host, port, rest @ ..] = args else {
        return Err(bad(
            "usage: tap_echo TAP ADDR/LEN HOST_ADDR/LEN PORT [CONNECTIONS]".into(),
        ));
    };
    let addr: Ipv4Cidr = addr
        .parse()
        .map_err(|e| bad(format!("bad address '{addr}': {e}")))?;
    let host: Ipv4Cidr = host
        .parse()
        .map_err(|e| bad(format!("bad host address '{host}': {e}")))?;
    let port: u16 = port
        .parse()
        .map_err(|_| bad(format!("bad port '{port}'")))?;
    let limit: Option<usize> = match rest.first() {
        Some(n) => Some(
            n.parse()
                .map_err(|_| bad(format!("bad connection count '{n}'")))?,
        ),
        None => None,
    };

    let stack = StackBuilder::tap(tap.as_str())
        .addr(addr)
        .host_addr(host)
        .start()?;
    let listener = TcpListener::bind(&stack, ("0.0.0.0", port))?;
    println!(
        "tap_echo: listening on {}:{port} (TAP {tap}, MAC {})",
        addr.addr(),
        stack.mac()
    );
    let mut served = 0;
    while limit.is_none_or(|l| served < l) {
        let (mut conn, peer) = listener.accept()?;
        let mut buf = [0u8; 16 * 1024];
        let mut total = 0u64;
        loop {
            let n = conn.read(&mut buf)?;
            if n == 0 {
                break;
            }
            conn.write_all(&buf[..n])?;
            total += n as u64;
        }
        println!("tap_echo: {peer} echoed {total} bytes");
        served += 1;
    }
    // Dropping the stack delivers what is queued, then stops it.
    Ok(())
}
