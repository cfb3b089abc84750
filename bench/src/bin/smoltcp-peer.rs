//! smoltcp-peer: the reference server of ustack's TCP benchmark.
//!
//! Runs smoltcp 0.14 on a Linux TAP device, opened with ustack's own TAP code
//! so that the link set-up (MTU, host address, non-blocking descriptor, no
//! offloads) is identical, and serves TCP discard (RFC 863), chargen (in the
//! spirit of RFC 864: an endless stream of a 95-character printable pattern)
//! and echo (RFC 862) to many connections at once. `scripts/bench` points the
//! same Linux clients at it and at `ustack serve`, and prints the ratios.
//!
//! usage: smoltcp-peer --tap NAME --addr A.B.C.D/LEN --host-addr A.B.C.D/LEN
//!        [--mtu N] [--discard PORT] [--chargen PORT] [--echo PORT]
//!        [--conns N] [--buf BYTES]
//!
//! A port of 0 disables that service. smoltcp needs one socket per
//! connection, so each service keeps `--conns` sockets listening on its port
//! and puts a socket back into listen once its connection is over.
//!
//! smoltcp settings are its defaults, on purpose: checksums computed in
//! software, Nagle on, 10 ms delayed ACKs, no TCP timestamps, at most 4
//! out-of-order ranges held per connection, and no congestion control (the
//! workspace does not enable `socket-tcp-reno` or `socket-tcp-cubic`), so it
//! sends whatever the peer's window allows. Ping is answered by smoltcp's
//! `auto-icmp-echo-reply` feature, which `bench/Cargo.toml` turns on.
//!
//! Costs that are smoltcp's own and show in the figures: every received
//! segment is matched by a linear scan of the sockets, and every round of
//! output visits every socket (3 x `--conns` of them), so a single bulk
//! transfer runs faster with a small `--conns`.

use std::fmt;
use std::io;
use std::os::fd::RawFd;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant as StdInstant;

use ip::Ipv4Cidr;
use smoltcp::iface::{
    Config, Interface, PollIngressSingleResult, PollResult, SocketHandle, SocketSet,
};
use smoltcp::phy::{self, DeviceCapabilities, Medium};
use smoltcp::socket::tcp;
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpAddress, IpCidr};
use stack::device::{Device as _, FrameSink as _, TapConfig, TapDevice};

const USAGE: &str = "smoltcp-peer --tap NAME --addr A.B.C.D/LEN --host-addr A.B.C.D/LEN \
                     [--mtu N] [--discard PORT] [--chargen PORT] [--echo PORT] [--conns N] [--buf BYTES]";

/// Ethernet II header: the TAP carries frames of up to MTU + 14 bytes.
const ETHERNET_HEADER_LEN: usize = 14;
/// Frame buffers are sized for the largest MTU a TAP accepts, so a frame
/// longer than expected is read whole (and dropped by smoltcp), never cut.
const FRAME_BUF_LEN: usize = 65_536 + ETHERNET_HEADER_LEN;
/// Egress rounds between two reads of the TAP (see the event loop).
const EGRESS_ROUNDS: usize = 64;
/// Longest sleep in `poll(2)`, so SIGINT/SIGTERM are noticed promptly even
/// when the signal lands between the flag check and the wait.
const MAX_WAIT_MS: i32 = 100;
/// Chargen's pattern repeats every 95 bytes: ASCII 32..=126.
const PATTERN_PERIOD: usize = 95;
/// The pattern is kept unrolled to about 64 KiB so that filling a send
/// buffer is a few large copies.
const PATTERN_LEN: usize = PATTERN_PERIOD * 690;
/// Echo moves data from the receive to the send buffer through this much
/// scratch space at a time (small enough to stay in cache).
const ECHO_CHUNK: usize = 64 * 1024;

static STOP: AtomicBool = AtomicBool::new(false);

#[derive(Debug)]
struct Args {
    tap: String,
    addr: Ipv4Cidr,
    host_addr: Ipv4Cidr,
    mtu: Option<u16>,
    discard: u16,
    chargen: u16,
    echo: u16,
    conns: usize,
    buf: usize,
}

fn parse_args(mut argv: impl Iterator<Item = String>) -> Result<Args, String> {
    fn value<T: std::str::FromStr>(name: &str, v: &str) -> Result<T, String> {
        v.parse()
            .map_err(|_| format!("invalid value '{v}' for --{name}"))
    }
    let (mut tap, mut addr, mut host_addr, mut mtu) = (None, None, None, None);
    let (mut discard, mut chargen, mut echo) = (9u16, 19u16, 7u16);
    let (mut conns, mut buf) = (64usize, 1usize << 20);
    while let Some(arg) = argv.next() {
        if arg == "--help" || arg == "-h" {
            println!("usage: {USAGE}");
            std::process::exit(0);
        }
        let Some(name) = arg.strip_prefix("--") else {
            return Err(format!("unexpected argument '{arg}'"));
        };
        let Some(v) = argv.next() else {
            return Err(format!("--{name} needs a value"));
        };
        match name {
            "tap" => tap = Some(v),
            "addr" => addr = Some(v.parse::<Ipv4Cidr>().map_err(|e| e.to_string())?),
            "host-addr" => host_addr = Some(v.parse::<Ipv4Cidr>().map_err(|e| e.to_string())?),
            "mtu" => mtu = Some(value::<u16>(name, &v)?),
            "discard" => discard = value(name, &v)?,
            "chargen" => chargen = value(name, &v)?,
            "echo" => echo = value(name, &v)?,
            "conns" => conns = value(name, &v)?,
            "buf" => buf = value(name, &v)?,
            _ => return Err(format!("unknown flag --{name}")),
        }
    }
    let tap = tap.ok_or("--tap is required")?;
    let addr = addr.ok_or("--addr is required")?;
    let host_addr = host_addr.ok_or("--host-addr is required")?;
    if addr.addr() == host_addr.addr() {
        return Err(format!(
            "--addr and --host-addr must differ (both are {})",
            addr.addr()
        ));
    }
    if mtu.is_some_and(|m| m < 576) {
        return Err("--mtu must be at least 576".into());
    }
    if !(1..=4096).contains(&conns) {
        return Err(format!("--conns must be from 1 to 4096, not {conns}"));
    }
    // smoltcp's window scale (RFC 7323) tops out at 2^14, i.e. 1 GiB windows.
    if !(1024..=1 << 30).contains(&buf) {
        return Err(format!("--buf must be from 1024 to 1073741824, not {buf}"));
    }
    let enabled: Vec<u16> = [discard, chargen, echo]
        .into_iter()
        .filter(|&p| p != 0)
        .collect();
    if enabled.is_empty() {
        return Err("every service is disabled (port 0)".into());
    }
    if (1..enabled.len()).any(|i| enabled[..i].contains(&enabled[i])) {
        return Err("two services share a port".into());
    }
    Ok(Args {
        tap,
        addr,
        host_addr,
        mtu,
        discard,
        chargen,
        echo,
        conns,
        buf,
    })
}

// ---------------------------------------------------------------------------
// The TAP device as a smoltcp `phy::Device`.

/// Frame counters of the device wrapper.
#[derive(Default, Debug)]
struct DeviceStats {
    rx_frames: u64,
    tx_frames: u64,
    rx_errors: u64,
    tx_errors: u64,
}

/// ustack's TAP device behind smoltcp's token interface. Frames are read into
/// and built in two buffers allocated once, so moving a frame costs one
/// `read(2)` or `write(2)` and no allocation.
struct SmolTap {
    tap: TapDevice,
    caps: DeviceCapabilities,
    rx_buf: Box<[u8]>,
    tx_buf: Box<[u8]>,
    /// The time of the current loop iteration (the TAP ignores it).
    now: StdInstant,
    stats: DeviceStats,
}

impl SmolTap {
    fn new(tap: TapDevice) -> Self {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        // For Ethernet, smoltcp's MTU counts the 14-byte header.
        caps.max_transmission_unit = tap.mtu() + ETHERNET_HEADER_LEN;
        // `caps.checksum` stays at its default: smoltcp computes and verifies
        // every IPv4/TCP/ICMP checksum in software, as ustack does.
        SmolTap {
            tap,
            caps,
            rx_buf: vec![0; FRAME_BUF_LEN].into_boxed_slice(),
            tx_buf: vec![0; FRAME_BUF_LEN].into_boxed_slice(),
            now: StdInstant::now(),
            stats: DeviceStats::default(),
        }
    }

    fn raw_fd(&self) -> RawFd {
        self.tap.raw_fd().expect("a TAP device has a descriptor")
    }
}

struct TapRxToken<'a> {
    frame: &'a [u8],
}

struct TapTxToken<'a> {
    tap: &'a mut TapDevice,
    buf: &'a mut [u8],
    now: StdInstant,
    stats: &'a mut DeviceStats,
}

impl phy::RxToken for TapRxToken<'_> {
    fn consume<R, F>(self, f: F) -> R
    where
        F: FnOnce(&[u8]) -> R,
    {
        f(self.frame)
    }
}

impl phy::TxToken for TapTxToken<'_> {
    fn consume<R, F>(self, len: usize, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        // smoltcp never asks for more than `max_transmission_unit` bytes.
        let frame = &mut self.buf[..len];
        let result = f(frame);
        match self.tap.send(self.now, frame) {
            Ok(()) => self.stats.tx_frames += 1,
            Err(e) => {
                // Like a full NIC queue: the frame is lost, TCP recovers.
                self.stats.tx_errors += 1;
                if self.stats.tx_errors == 1 {
                    eprintln!("smoltcp-peer: writing a frame to the TAP failed: {e}");
                }
            }
        }
        result
    }
}

impl phy::Device for SmolTap {
    type RxToken<'a> = TapRxToken<'a>;
    type TxToken<'a> = TapTxToken<'a>;

    fn receive(&mut self, _timestamp: Instant) -> Option<(TapRxToken<'_>, TapTxToken<'_>)> {
        let len = match self.tap.recv(self.now, &mut self.rx_buf) {
            Ok(Some(len)) => len,
            Ok(None) => return None,
            Err(e) => {
                self.stats.rx_errors += 1;
                if self.stats.rx_errors == 1 {
                    eprintln!("smoltcp-peer: reading from the TAP failed: {e}");
                }
                return None;
            }
        };
        self.stats.rx_frames += 1;
        Some((
            TapRxToken {
                frame: &self.rx_buf[..len],
            },
            TapTxToken {
                tap: &mut self.tap,
                buf: &mut self.tx_buf,
                now: self.now,
                stats: &mut self.stats,
            },
        ))
    }

    fn transmit(&mut self, _timestamp: Instant) -> Option<TapTxToken<'_>> {
        Some(TapTxToken {
            tap: &mut self.tap,
            buf: &mut self.tx_buf,
            now: self.now,
            stats: &mut self.stats,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        self.caps.clone()
    }
}

// ---------------------------------------------------------------------------
// The services.

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Service {
    Discard,
    Chargen,
    Echo,
}

impl Service {
    const ALL: [Service; 3] = [Service::Discard, Service::Chargen, Service::Echo];

    fn index(self) -> usize {
        self as usize
    }

    fn name(self) -> &'static str {
        match self {
            Service::Discard => "discard",
            Service::Chargen => "chargen",
            Service::Echo => "echo",
        }
    }
}

/// One socket of a service and what the server remembers about it.
struct Conn {
    handle: SocketHandle,
    service: Service,
    port: u16,
    /// Chargen: stream offset modulo the pattern period.
    phase: usize,
    /// A connection reached Established on this socket and is not over yet.
    active: bool,
}

/// Per-service totals, printed on exit.
#[derive(Default, Debug)]
struct ServiceStats {
    connections: u64,
    /// Discard: bytes read; chargen: bytes written; echo: bytes echoed.
    bytes: u64,
}

struct Server {
    conns: Vec<Conn>,
    /// The chargen pattern, unrolled: byte i is `b' ' + (i % 95)`.
    pattern: Box<[u8]>,
    scratch: Box<[u8]>,
    stats: [ServiceStats; 3],
}

impl Server {
    /// Creates `conns` listening sockets of `buf`-byte buffers for each
    /// enabled service.
    fn new(sockets: &mut SocketSet<'_>, args: &Args) -> Result<Server, String> {
        let mut conns = Vec::new();
        for (service, port) in Service::ALL
            .into_iter()
            .zip([args.discard, args.chargen, args.echo])
        {
            if port == 0 {
                continue;
            }
            for _ in 0..args.conns {
                // Zeroed allocations: the kernel commits the pages only when
                // a connection actually fills them.
                let rx = tcp::SocketBuffer::new(vec![0u8; args.buf]);
                let tx = tcp::SocketBuffer::new(vec![0u8; args.buf]);
                let mut socket = tcp::Socket::new(rx, tx);
                socket
                    .listen(port)
                    .map_err(|e| format!("cannot listen on port {port}: {e}"))?;
                conns.push(Conn {
                    handle: sockets.add(socket),
                    service,
                    port,
                    phase: 0,
                    active: false,
                });
            }
        }
        let pattern = (0..PATTERN_LEN)
            .map(|i| b' ' + (i % PATTERN_PERIOD) as u8)
            .collect();
        Ok(Server {
            conns,
            pattern,
            scratch: vec![0; ECHO_CHUNK].into_boxed_slice(),
            stats: Default::default(),
        })
    }

    /// Moves data on every connection and recycles finished sockets. Returns
    /// true when something changed that smoltcp should act on at once
    /// (data read or written, a close).
    fn serve(&mut self, sockets: &mut SocketSet<'_>) -> bool {
        let mut progress = false;
        for conn in &mut self.conns {
            let socket = sockets.get_mut::<tcp::Socket<'_>>(conn.handle);
            match socket.state() {
                tcp::State::Listen | tcp::State::SynReceived => continue,
                tcp::State::Closed => {
                    // Finished, reset or timed out: take the next connection.
                    conn.active = false;
                    if let Err(e) = socket.listen(conn.port) {
                        eprintln!("smoltcp-peer: cannot listen on port {}: {e}", conn.port);
                    }
                    continue;
                }
                _ => {}
            }
            let stats = &mut self.stats[conn.service.index()];
            if !conn.active {
                conn.active = true;
                conn.phase = 0;
                stats.connections += 1;
            }
            let moved = match conn.service {
                Service::Discard => {
                    let n = drain(socket);
                    // The peer sent FIN and everything before it is read.
                    if socket.state() == tcp::State::CloseWait {
                        socket.close();
                        progress = true;
                    }
                    n
                }
                Service::Chargen => {
                    // RFC 864: "Data received is thrown away".
                    drain(socket);
                    if socket.state() == tcp::State::CloseWait {
                        // The peer closed its half: finish with a FIN after
                        // what is queued (a reset ends it sooner).
                        socket.close();
                        progress = true;
                        0
                    } else {
                        fill_with_pattern(socket, &self.pattern, &mut conn.phase)
                    }
                }
                Service::Echo => {
                    let n = echo(socket, &mut self.scratch);
                    if socket.state() == tcp::State::CloseWait && socket.recv_queue() == 0 {
                        socket.close();
                        progress = true;
                    }
                    n
                }
            };
            if moved > 0 {
                stats.bytes += moved as u64;
                progress = true;
            }
        }
        progress
    }
}

/// Reads and throws away everything in the receive buffer.
fn drain(socket: &mut tcp::Socket<'_>) -> usize {
    let mut total = 0;
    // The ring buffer hands out at most two contiguous pieces.
    while socket.can_recv() {
        match socket.recv(|data| (data.len(), data.len())) {
            Ok(n) if n > 0 => total += n,
            _ => break,
        }
    }
    total
}

/// Fills the send buffer with the chargen pattern, continuing at stream
/// offset `phase` (modulo 95).
fn fill_with_pattern(socket: &mut tcp::Socket<'_>, pattern: &[u8], phase: &mut usize) -> usize {
    let mut total = 0;
    while socket.can_send() {
        let written = socket.send(|space| {
            let mut done = 0;
            while done < space.len() {
                let src = &pattern[*phase..];
                let n = src.len().min(space.len() - done);
                space[done..done + n].copy_from_slice(&src[..n]);
                done += n;
                *phase = (*phase + n) % PATTERN_PERIOD;
            }
            (space.len(), space.len())
        });
        match written {
            Ok(n) if n > 0 => total += n,
            _ => break,
        }
    }
    total
}

/// Moves as much received data to the send buffer as it has room for; what
/// does not fit stays in the receive buffer (and its window closes), so no
/// byte is lost.
fn echo(socket: &mut tcp::Socket<'_>, scratch: &mut [u8]) -> usize {
    let mut total = 0;
    while socket.can_recv() && socket.may_send() {
        let room = socket.send_capacity() - socket.send_queue();
        if room == 0 {
            break;
        }
        let want = room.min(scratch.len());
        let n = match socket.recv_slice(&mut scratch[..want]) {
            Ok(n) if n > 0 => n,
            _ => break,
        };
        let sent = socket.send_slice(&scratch[..n]).unwrap_or(0);
        debug_assert_eq!(sent, n, "echo lost bytes");
        total += n;
    }
    total
}

// ---------------------------------------------------------------------------
// Program.

extern "C" fn on_signal(_signal: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

fn stop_on_signals() -> io::Result<()> {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: a zeroed sigaction is valid; the handler only stores to an
        // atomic, which is async-signal-safe. No SA_RESTART: poll(2) returns
        // EINTR at once.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as *const () as libc::sighandler_t;
            libc::sigemptyset(&mut action.sa_mask);
            if libc::sigaction(signal, &action, std::ptr::null_mut()) != 0 {
                return Err(io::Error::last_os_error());
            }
        }
    }
    Ok(())
}

/// Random bytes from the kernel (MAC address, smoltcp's seed for initial
/// sequence numbers and ephemeral ports).
fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    // SAFETY: `buf` is valid for writes of N bytes.
    let n = unsafe { libc::getrandom(buf.as_mut_ptr().cast(), N, 0) };
    if n != N as isize {
        // Not security-relevant here: fall back to the clock.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        for (i, b) in buf.iter_mut().enumerate() {
            *b = (t >> ((i % 8) * 8)) as u8 ^ (i as u8).wrapping_mul(0x9d);
        }
    }
    buf
}

struct Mac([u8; 6]);

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = &self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

/// Milliseconds to wait for `delay`, rounded up so a timer is never polled
/// early into a busy loop.
fn wait_ms(delay: Option<smoltcp::time::Duration>) -> i32 {
    match delay {
        None => MAX_WAIT_MS,
        Some(d) => d.total_micros().div_ceil(1000).min(MAX_WAIT_MS as u64) as i32,
    }
}

fn run(args: Args) -> Result<(), String> {
    stop_on_signals().map_err(|e| format!("cannot install signal handlers: {e}"))?;
    let tap = TapDevice::open(&TapConfig {
        name: args.tap.clone(),
        mtu: args.mtu.map(usize::from),
        host_addr: Some(args.host_addr),
        // smoltcp handles wire-sized frames only.
        offload: false,
    })
    .map_err(|e| e.to_string())?;
    let mtu = tap.mtu();
    let mut device = SmolTap::new(tap);
    let fd = device.raw_fd();

    let random: [u8; 14] = random_bytes();
    let mut mac = [0u8; 6];
    mac.copy_from_slice(&random[..6]);
    mac[0] = (mac[0] & 0xfe) | 0x02; // unicast, locally administered
    let mut seed = [0u8; 8];
    seed.copy_from_slice(&random[6..]);
    let mut config = Config::new(HardwareAddress::Ethernet(EthernetAddress(mac)));
    config.random_seed = u64::from_le_bytes(seed);

    let start = StdInstant::now();
    let timestamp = |now: StdInstant| Instant::from_micros((now - start).as_micros() as i64);
    let mut iface = Interface::new(config, &mut device, timestamp(start));
    iface.update_ip_addrs(|addrs| {
        addrs
            .push(IpCidr::new(
                IpAddress::Ipv4(args.addr.addr()),
                args.addr.prefix_len(),
            ))
            .expect("the first address fits");
    });
    let mut sockets = SocketSet::new(Vec::new());
    let mut server = Server::new(&mut sockets, &args)?;

    let services: Vec<String> = Service::ALL
        .into_iter()
        .zip([args.discard, args.chargen, args.echo])
        .filter(|&(_, port)| port != 0)
        .map(|(s, port)| format!("{} on port {port}", s.name()))
        .collect();
    println!(
        "smoltcp-peer: serving {} at {} (MAC {}) on TAP {} (MTU {mtu}); {} sockets per service, {}-byte socket buffers",
        services.join(", "),
        args.addr,
        Mac(mac),
        args.tap,
        args.conns,
        args.buf
    );

    let mut pollfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    while !STOP.load(Ordering::Relaxed) {
        let now = StdInstant::now();
        device.now = now;
        let ts = timestamp(now);
        iface.poll_maintenance(ts);
        // Read every frame the TAP holds: the kernel drops what does not fit
        // in the TAP's queue (txqueuelen, 1000 frames), so reading promptly
        // is what keeps Linux's segments and ACKs from being lost.
        while iface.poll_ingress_single(ts, &mut device, &mut sockets)
            != PollIngressSingleResult::None
        {}
        // Then send, in bounded rounds (each round sends at most one frame
        // per socket) rather than `Interface::poll`'s "until nothing is
        // left", which with many connections and no congestion control can
        // write tens of MiB while incoming frames pile up and are dropped.
        let mut egress_done = false;
        for _ in 0..EGRESS_ROUNDS {
            if iface.poll_egress(ts, &mut device, &mut sockets) == PollResult::None {
                egress_done = true;
                break;
            }
        }
        if server.serve(&mut sockets) || !egress_done {
            // New data in a send buffer, room in a receive buffer, or frames
            // still to send: go round again before sleeping.
            continue;
        }
        let timeout = wait_ms(iface.poll_delay(ts, &sockets));
        if timeout == 0 {
            continue;
        }
        // SAFETY: `pollfd` is a valid array of one element.
        let n = unsafe { libc::poll(&mut pollfd, 1, timeout) };
        if n < 0 {
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(format!("poll on the TAP descriptor failed: {err}"));
            }
        } else if pollfd.revents & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0 {
            return Err(format!("the TAP device {} went away", args.tap));
        }
    }

    let stats = &device.stats;
    println!(
        "smoltcp-peer: stopped; frames in {} out {} (read errors {}, write errors {})",
        stats.rx_frames, stats.tx_frames, stats.rx_errors, stats.tx_errors
    );
    for service in Service::ALL {
        let s = &server.stats[service.index()];
        if s.connections > 0 {
            println!(
                "smoltcp-peer: {}: {} connections, {} bytes",
                service.name(),
                s.connections,
                s.bytes
            );
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(msg) => {
            eprintln!("smoltcp-peer: {msg} (usage: {USAGE})");
            return ExitCode::from(2);
        }
    };
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("smoltcp-peer: {msg}");
            ExitCode::from(1)
        }
    }
}
