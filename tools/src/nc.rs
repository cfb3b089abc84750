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
//!
//! One thread does it all: it sleeps in poll(2) on standard input and on
//! the readiness descriptor of a [`Poller`] watching the socket (which is
//! nonblocking), so no helper threads are needed.

use std::error::Error;
use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, SocketAddrV4};
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::time::{Duration, Instant};

use clap::Args;
use sockets_api::{Fd, Interest, PollEvent, Poller, Stack, TcpListener, TcpStream, UdpSocket};

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
    tcp_session(stack, stream, args.quit_after)
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
    tcp_session(stack, stream, args.quit_after)
}

/// Copies stdin to the connection and the connection to stdout until both
/// are done.
fn tcp_session(
    stack: &Stack,
    stream: TcpStream,
    quit_after: Option<Duration>,
) -> Result<(), String> {
    session(stack, Link::Tcp(stream), stdin()?, &mut Stdout, quit_after)
}

fn udp_connect(stack: &Stack, addr: SocketAddrV4, args: &NcArgs) -> Result<(), String> {
    let sock = UdpSocket::bind(stack, "0.0.0.0:0")
        .and_then(|s| s.connect(addr).map(|()| s))
        .map_err(|e| format!("UDP socket to {addr}: {}", describe_io_error(&e)))?;
    if args.verbose {
        eprintln!("ustack nc: sending datagrams to {addr}");
    }
    session(
        stack,
        Link::Udp(sock),
        stdin()?,
        &mut Stdout,
        args.quit_after,
    )
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
    let link = Link::UdpListen {
        sock,
        peer: None,
        verbose: args.verbose,
    };
    session(stack, link, stdin()?, &mut Stdout, args.quit_after)
}

/// What the session copies to and from.
enum Link {
    /// A connection: the end of input shuts its write side down, and the
    /// peer's end of stream ends the network direction.
    Tcp(TcpStream),
    /// A connected UDP socket: each read of input is one datagram.
    Udp(UdpSocket),
    /// A bound UDP socket: input goes to the last sender (and waits for
    /// the first).
    UdpListen {
        sock: UdpSocket,
        peer: Option<SocketAddr>,
        verbose: bool,
    },
}

/// What one nonblocking receive did.
enum Received {
    Data(usize),
    End,
    Nothing,
}

fn would_block(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
    )
}

impl Link {
    fn fd(&self) -> Fd {
        match self {
            Link::Tcp(s) => s.as_fd(),
            Link::Udp(s) | Link::UdpListen { sock: s, .. } => s.as_fd(),
        }
    }

    fn set_nonblocking(&self) -> io::Result<()> {
        match self {
            Link::Tcp(s) => s.set_nonblocking(true),
            Link::Udp(s) | Link::UdpListen { sock: s, .. } => s.set_nonblocking(true),
        }
    }

    /// True when input can go out now (a listening UDP socket needs a
    /// sender first).
    fn can_send(&self) -> bool {
        !matches!(self, Link::UdpListen { peer: None, .. })
    }

    /// Sends from `data` (a datagram goes whole): how much went, 0 when it
    /// would block or there is nobody to send to yet.
    fn send(&mut self, data: &[u8]) -> Result<usize, String> {
        let (sent, to) = match self {
            Link::Tcp(s) => (s.write(data), None),
            Link::Udp(s) => (s.send(data).map(|_| data.len()), None),
            Link::UdpListen { sock, peer, .. } => match peer {
                Some(to) => (sock.send_to(data, *to).map(|_| data.len()), Some(*to)),
                None => return Ok(0),
            },
        };
        match sent {
            Ok(n) => Ok(n),
            Err(e) if would_block(&e) => Ok(0),
            Err(e) => Err(match to {
                Some(to) => format!("sending to {to}: {}", describe_io_error(&e)),
                None => format!("sending: {}", describe_io_error(&e)),
            }),
        }
    }

    /// The end of input: a TCP connection shuts its write side down.
    fn finish(&self) -> Result<(), String> {
        match self {
            Link::Tcp(s) => s
                .shutdown(Shutdown::Write)
                .map_err(|e| format!("shutting down the write side: {}", describe_io_error(&e))),
            _ => Ok(()),
        }
    }

    /// One nonblocking receive into `buf`.
    fn recv(&mut self, buf: &mut [u8]) -> Result<Received, String> {
        let got = match self {
            Link::Tcp(s) => s.read(buf),
            Link::Udp(s) => s.recv(buf),
            Link::UdpListen {
                sock,
                peer,
                verbose,
            } => sock.recv_from(buf).map(|(n, from)| {
                if *verbose && *peer != Some(from) {
                    eprintln!("ustack nc: datagrams from {from}");
                }
                *peer = Some(from);
                n
            }),
        };
        match got {
            Ok(0) if matches!(self, Link::Tcp(_)) => Ok(Received::End),
            Ok(n) => Ok(Received::Data(n)),
            Err(e) if would_block(&e) => Ok(Received::Nothing),
            Err(e) => Err(format!("receiving: {}", describe_io_error(&e))),
        }
    }
}

/// Standard output, flushed after each write.
struct Stdout;

impl Write for Stdout {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let mut out = io::stdout().lock();
        out.write_all(data).and_then(|()| out.flush())?;
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stdout().flush()
    }
}

/// Standard input as a file of its own (a duplicate of descriptor 0), read
/// directly: no buffer hides data from poll(2).
fn stdin() -> Result<File, String> {
    io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .map(File::from)
        .map_err(|e| format!("reading standard input: {}", describe_io_error(&e)))
}

/// The poller token of the link.
const LINK: u64 = 1;

/// Copies `input` to the link and the link to `output` in one thread: it
/// sleeps in poll(2) on `input` and on the readiness descriptor of a
/// [`Poller`] watching the link, so a kernel descriptor and a ustack
/// socket are waited on together. Ends when both directions are done (for
/// UDP the network side never is), at the first error, or `quit_after`
/// past the end of input.
fn session(
    stack: &Stack,
    mut link: Link,
    mut input: File,
    output: &mut dyn Write,
    quit_after: Option<Duration>,
) -> Result<(), String> {
    // ENETDOWN: the stack stopped; say why when it was not asked to.
    let stack_err = |e: io::Error| {
        let why = describe_io_error(&e);
        match stack.last_error() {
            Some(cause) if e.kind() == io::ErrorKind::NetworkDown => {
                format!("receiving: {why}: {cause}")
            }
            _ => format!("receiving: {why}"),
        }
    };
    link.set_nonblocking().map_err(stack_err)?;
    let poller = Poller::new(stack).map_err(stack_err)?;
    let fd = link.fd();
    let (mut input_done, mut network_done, mut shut) = (false, false, false);
    let mut quit_at: Option<Instant> = None;
    // Input read and not sent yet.
    let mut pending: Vec<u8> = Vec::new();
    let mut sent = 0;
    // The interest registered with the poller (0: not registered).
    let mut registered: i16 = 0;
    let mut buf = vec![0u8; BUFFER];
    let mut events = [PollEvent::default(); 4];
    loop {
        if sent < pending.len() {
            sent += link.send(&pending[sent..])?;
        }
        if sent == pending.len() {
            pending.clear();
            sent = 0;
            if input_done && !shut {
                link.finish()?;
                shut = true;
            }
        }
        if input_done && network_done && pending.is_empty() {
            return Ok(());
        }
        let now = Instant::now();
        if quit_at.is_some_and(|t| now >= t) {
            return Ok(());
        }
        // Interest: reading until the peer's end, room to write while
        // input waits to go out.
        let mut want = 0;
        if !network_done {
            want |= Interest::READABLE.events();
        }
        if !pending.is_empty() && link.can_send() {
            want |= Interest::WRITABLE.events();
        }
        if want != registered {
            let r = match (registered, want) {
                (_, 0) => poller.deregister(fd),
                (0, w) => poller.register(fd, LINK, Interest::from_events(w)),
                (_, w) => poller.modify(fd, LINK, Interest::from_events(w)),
            };
            r.map_err(stack_err)?;
            registered = want;
        }
        let read_input = !input_done && pending.is_empty();
        let timeout = quit_at.map(|t| t.saturating_duration_since(now));
        let (input_ready, link_ready) = wait_readable(
            read_input.then(|| input.as_raw_fd()),
            poller.as_raw_fd(),
            timeout,
        )
        .map_err(|e| format!("waiting: {}", describe_io_error(&e)))?;
        if input_ready {
            match input.read(&mut buf[..DATAGRAM]) {
                Ok(0) => {
                    input_done = true;
                    quit_at = quit_after.map(|d| Instant::now() + d);
                }
                Ok(n) => pending.extend_from_slice(&buf[..n]),
                Err(e) if would_block(&e) => {}
                Err(e) => {
                    return Err(format!("reading standard input: {}", describe_io_error(&e)));
                }
            }
        }
        if link_ready {
            // Clears the descriptor once nothing is listed; what is ready
            // is found by trying.
            poller
                .wait(&mut events, Some(Duration::ZERO))
                .map_err(stack_err)?;
            while !network_done {
                match link.recv(&mut buf)? {
                    Received::Data(n) => output.write_all(&buf[..n]).map_err(|e| {
                        format!("writing standard output: {}", describe_io_error(&e))
                    })?,
                    Received::End => network_done = true,
                    Received::Nothing => break,
                }
            }
        }
    }
}

/// poll(2) for readability on `input` (when given) and `link` until one
/// is readable or `timeout` passes: which are readable (end of file and
/// errors count: the read tells).
fn wait_readable(
    input: Option<RawFd>,
    link: RawFd,
    timeout: Option<Duration>,
) -> io::Result<(bool, bool)> {
    let ms = timeout.map_or(-1, |t| {
        // Rounded up: waking before the deadline would spin.
        i32::try_from(t.as_nanos().div_ceil(1_000_000)).unwrap_or(i32::MAX)
    });
    let mut fds = [
        libc::pollfd {
            fd: link,
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: input.unwrap_or(-1),
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    let n = if input.is_some() { 2 } else { 1 };
    // SAFETY: `fds` holds at least `n` live pollfd structures.
    let r = unsafe { libc::poll(fds.as_mut_ptr(), n as libc::nfds_t, ms) };
    if r < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            return Ok((false, false));
        }
        return Err(e);
    }
    let ready = |p: &libc::pollfd| p.revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0;
    Ok((input.is_some() && ready(&fds[1]), ready(&fds[0])))
}

#[cfg(test)]
mod tests;
