//! `ustack nc`: netcat through ustack. Standard input goes to the
//! connection and the connection to standard output.
//!
//! TCP: at the end of standard input the write side is shut down (a FIN),
//! and reading goes on until the peer closes; the program exits when both
//! directions are done (or `-q SECS` after the end of input). `-l` listens
//! on PORT (HOST is the local address, 0.0.0.0 by default) and serves one
//! connection. UDP (`-u`): each read of standard input is one datagram;
//! with `-l`, replies go to the last sender. UDP has no end, so after the
//! end of input it keeps printing what arrives until `-q SECS` or SIGINT.

use std::error::Error;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, SocketAddrV4};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use clap::Args;
use sockets_api::{Stack, TcpListener, TcpStream, UdpSocket};

use crate::app::{self, describe_duration, describe_io_error};
use crate::args::{StackArgs, UsageError, seconds};
use crate::start;

/// Largest datagram sent from one read of standard input.
const DATAGRAM: usize = 16 * 1024;
/// TCP copy buffer.
const BUFFER: usize = 64 * 1024;

#[derive(Args, Debug)]
pub struct NcArgs {
    /// Listen on PORT (HOST: the local address to bind, default 0.0.0.0)
    /// instead of connecting to HOST PORT.
    #[arg(short = 'l', long = "listen")]
    pub listen: bool,
    /// UDP instead of TCP.
    #[arg(short = 'u', long = "udp")]
    pub udp: bool,
    /// Give up connecting after this many seconds.
    #[arg(short = 'w', long = "wait", value_name = "SECS", default_value = "10",
          value_parser = seconds)]
    pub connect_timeout: Duration,
    /// After the end of standard input, quit at most this many seconds
    /// later even if the peer has not closed (0: at once).
    #[arg(short = 'q', value_name = "SECS", value_parser = seconds_or_zero)]
    pub quit_after: Option<Duration>,
    /// Report the connection (or first datagram) on standard error.
    #[arg(short = 'v', long = "verbose")]
    pub verbose: bool,
    /// Host to connect to (with -l: local address to listen on).
    #[arg(value_name = "HOST")]
    pub host: String,
    /// Port to connect to or listen on (with -l, HOST may be left out).
    #[arg(value_name = "PORT")]
    pub port: Option<String>,
    #[command(flatten)]
    pub stack: StackArgs,
}

fn seconds_or_zero(s: &str) -> Result<Duration, String> {
    if s.trim() == "0" {
        Ok(Duration::ZERO)
    } else {
        seconds(s)
    }
}

/// One direction finished (Ok) or failed (a one-line message).
enum Done {
    Input(Result<(), String>),
    Network(Result<(), String>),
}

/// The address and port the arguments name.
fn endpoint(args: &NcArgs) -> Result<SocketAddrV4, Box<dyn Error>> {
    let (host, port) = match (&args.port, args.listen) {
        (Some(p), _) => (args.host.as_str(), p.as_str()),
        (None, true) => ("0.0.0.0", args.host.as_str()),
        (None, false) => return Err(UsageError("missing PORT (ustack nc HOST PORT)".into()).into()),
    };
    let port: u16 = match port.parse() {
        Ok(p) if p > 0 || args.listen => p,
        _ => return Err(UsageError(format!("invalid port '{port}' (expected 1-65535)")).into()),
    };
    let ip = if host == "0.0.0.0" {
        Ipv4Addr::UNSPECIFIED
    } else {
        app::resolve_host(host)?
    };
    Ok(SocketAddrV4::new(ip, port))
}

pub fn run(args: NcArgs) -> Result<(), Box<dyn Error>> {
    let addr = endpoint(&args)?;
    let stack = start::start(&args.stack)?;
    let result = match (args.udp, args.listen) {
        (false, false) => tcp_connect(&stack, addr, &args),
        (false, true) => tcp_listen(&stack, addr, &args),
        (true, false) => udp_connect(&stack, addr, &args),
        (true, true) => udp_listen(&stack, addr, &args),
    };
    // Delivers what is still queued (our FIN included), then stops.
    stack.stop();
    Ok(result?)
}

fn tcp_connect(stack: &Stack, addr: SocketAddrV4, args: &NcArgs) -> Result<(), String> {
    let target = SocketAddr::V4(addr);
    let stream = TcpStream::connect_timeout(stack, &target, args.connect_timeout).map_err(|e| {
        let why = match e.kind() {
            io::ErrorKind::TimedOut => {
                format!(
                    "timed out after {}",
                    describe_duration(args.connect_timeout)
                )
            }
            _ => describe_io_error(&e),
        };
        format!("cannot connect to {target}: {why}")
    })?;
    if args.verbose {
        eprintln!("ustack nc: connected to {target}");
    }
    tcp_session(stream, args.quit_after)
}

fn tcp_listen(stack: &Stack, addr: SocketAddrV4, args: &NcArgs) -> Result<(), String> {
    let listener = TcpListener::bind(stack, addr)
        .map_err(|e| format!("cannot listen on {addr}: {}", describe_io_error(&e)))?;
    if args.verbose {
        let local = listener
            .local_addr()
            .map_or(addr.to_string(), |a| a.to_string());
        eprintln!("ustack nc: listening on {local}");
    }
    let (stream, peer) = listener
        .accept()
        .map_err(|e| format!("accept: {}", describe_io_error(&e)))?;
    // One connection only: later ones are refused.
    drop(listener);
    if args.verbose {
        eprintln!("ustack nc: connection received from {peer}");
    }
    tcp_session(stream, args.quit_after)
}

/// Copies stdin to the connection and the connection to stdout until both
/// are done.
fn tcp_session(stream: TcpStream, quit_after: Option<Duration>) -> Result<(), String> {
    let (tx, rx) = mpsc::channel();
    let writer = stream.clone();
    spawn_input(tx.clone(), move |chunk| match chunk {
        Some(data) => (&writer)
            .write_all(data)
            .map_err(|e| format!("sending: {}", describe_io_error(&e))),
        None => writer
            .shutdown(Shutdown::Write)
            .map_err(|e| format!("shutting down the write side: {}", describe_io_error(&e))),
    });
    let reader = stream;
    spawn_named("nc network", move || {
        let mut buf = vec![0u8; BUFFER];
        let result = loop {
            match (&reader).read(&mut buf) {
                Ok(0) => break Ok(()),
                Ok(n) => {
                    if let Err(e) = write_stdout(&buf[..n]) {
                        break Err(e);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(format!("receiving: {}", describe_io_error(&e))),
            }
        };
        let _ = tx.send(Done::Network(result));
    });
    wait_both(&rx, quit_after)
}

fn udp_connect(stack: &Stack, addr: SocketAddrV4, args: &NcArgs) -> Result<(), String> {
    let sock = UdpSocket::bind(stack, "0.0.0.0:0")
        .and_then(|s| s.connect(addr).map(|()| s))
        .map_err(|e| format!("UDP socket to {addr}: {}", describe_io_error(&e)))?;
    if args.verbose {
        eprintln!("ustack nc: sending datagrams to {addr}");
    }
    let (tx, rx) = mpsc::channel();
    let sender = sock.clone();
    spawn_input(tx.clone(), move |chunk| match chunk {
        Some(data) => sender
            .send(data)
            .map(|_| ())
            .map_err(|e| format!("sending: {}", describe_io_error(&e))),
        None => Ok(()),
    });
    spawn_named("nc network", move || {
        let mut buf = vec![0u8; 65_536];
        let result = loop {
            match sock.recv(&mut buf) {
                Ok(n) => {
                    if let Err(e) = write_stdout(&buf[..n]) {
                        break Err(e);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(format!("receiving: {}", describe_io_error(&e))),
            }
        };
        let _ = tx.send(Done::Network(result));
    });
    wait_both(&rx, args.quit_after)
}

fn udp_listen(stack: &Stack, addr: SocketAddrV4, args: &NcArgs) -> Result<(), String> {
    let sock = UdpSocket::bind(stack, addr)
        .map_err(|e| format!("cannot listen on UDP {addr}: {}", describe_io_error(&e)))?;
    if args.verbose {
        let local = sock
            .local_addr()
            .map_or(addr.to_string(), |a| a.to_string());
        eprintln!("ustack nc: listening on UDP {local}");
    }
    // The last sender: where standard input goes.
    let peer = Arc::new((Mutex::new(None::<SocketAddr>), Condvar::new()));
    let (tx, rx) = mpsc::channel();
    let (sender, send_peer) = (sock.clone(), peer.clone());
    spawn_input(tx.clone(), move |chunk| {
        let Some(data) = chunk else { return Ok(()) };
        let (lock, cond) = &*send_peer;
        let mut guard = lock.lock().unwrap_or_else(|e| e.into_inner());
        while guard.is_none() {
            guard = cond.wait(guard).unwrap_or_else(|e| e.into_inner());
        }
        let to = guard.unwrap_or(SocketAddr::V4(addr));
        drop(guard);
        sender
            .send_to(data, to)
            .map(|_| ())
            .map_err(|e| format!("sending to {to}: {}", describe_io_error(&e)))
    });
    let verbose = args.verbose;
    spawn_named("nc network", move || {
        let mut buf = vec![0u8; 65_536];
        let result = loop {
            match sock.recv_from(&mut buf) {
                Ok((n, from)) => {
                    let (lock, cond) = &*peer;
                    let mut guard = lock.lock().unwrap_or_else(|e| e.into_inner());
                    if verbose && *guard != Some(from) {
                        eprintln!("ustack nc: datagrams from {from}");
                    }
                    *guard = Some(from);
                    cond.notify_all();
                    drop(guard);
                    if let Err(e) = write_stdout(&buf[..n]) {
                        break Err(e);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(format!("receiving: {}", describe_io_error(&e))),
            }
        };
        let _ = tx.send(Done::Network(result));
    });
    wait_both(&rx, args.quit_after)
}

fn spawn_named(name: &str, f: impl FnOnce() + Send + 'static) {
    if let Err(e) = thread::Builder::new().name(name.into()).spawn(f) {
        // Without the thread nothing can work; say so and give up.
        eprintln!("ustack: error: cannot start a thread: {e}");
        std::process::exit(1);
    }
}

/// Reads standard input in a thread, handing each chunk to `sink`, then
/// `None` at its end; reports the outcome on `tx`.
fn spawn_input(
    tx: Sender<Done>,
    mut sink: impl FnMut(Option<&[u8]>) -> Result<(), String> + Send + 'static,
) {
    spawn_named("nc input", move || {
        let mut stdin = io::stdin().lock();
        let mut buf = vec![0u8; DATAGRAM];
        let result = loop {
            match stdin.read(&mut buf) {
                Ok(0) => break sink(None),
                Ok(n) => {
                    if let Err(e) = sink(Some(&buf[..n])) {
                        break Err(e);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(format!("reading standard input: {}", describe_io_error(&e))),
            }
        };
        let _ = tx.send(Done::Input(result));
    });
}

fn write_stdout(data: &[u8]) -> Result<(), String> {
    let mut out = io::stdout().lock();
    out.write_all(data)
        .and_then(|()| out.flush())
        .map_err(|e| format!("writing standard output: {}", describe_io_error(&e)))
}

/// Waits until both directions are done, the first error, or
/// `quit_after` past the end of input.
fn wait_both(rx: &mpsc::Receiver<Done>, quit_after: Option<Duration>) -> Result<(), String> {
    let (mut input_done, mut network_done) = (false, false);
    let mut quit_at: Option<Instant> = None;
    while !(input_done && network_done) {
        let event = match quit_at {
            Some(at) => match rx.recv_timeout(at.saturating_duration_since(Instant::now())) {
                Ok(event) => event,
                Err(RecvTimeoutError::Timeout) => return Ok(()),
                Err(RecvTimeoutError::Disconnected) => return Ok(()),
            },
            None => match rx.recv() {
                Ok(event) => event,
                Err(_) => return Ok(()),
            },
        };
        match event {
            Done::Input(result) => {
                result?;
                input_done = true;
                quit_at = quit_after.map(|d| Instant::now() + d);
            }
            Done::Network(result) => {
                result?;
                network_done = true;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
