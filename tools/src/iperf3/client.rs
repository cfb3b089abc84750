//! `ustack iperf3 -c HOST`: the client side of iperf3 through ustack,
//! against a real `iperf3 -s` (or `ustack serve --iperf3`). It prints
//! iperf3-like interval and summary lines (the receiver's side of the
//! summary is what the server reported), then one `iperf3-summary:` line
//! of key=value pairs for scripts.

use std::error::Error;
use std::fmt::Write as _;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use clap::Args;
use sockets_api::{Stack, TcpStream, UdpSocket};

use super::server::{CONTROL_DEADLINE, read_json};
use super::streams::{self, Report, Settings, Shared};
use super::{
    COOKIE_SIZE, DEFAULT_UDP_BLKSIZE, MAX_UDP_BLKSIZE, MIN_UDP_BLKSIZE, Protocol, Results,
    StreamResult, TestParams, UDP_CONNECT_MSG, cpu_times, cpu_util, human_bytes, human_rate,
    is_connect_reply, make_cookie, parse_len, parse_rate, state, stream_id,
};
use crate::app;
use crate::args::{StackArgs, seconds};
use crate::start;

#[derive(Args, Debug)]
pub struct Iperf3Args {
    /// The iperf3 server (an IPv4 address or a name from /etc/hosts).
    #[arg(short = 'c', long = "client", value_name = "HOST")]
    pub host: String,
    /// The server's port.
    #[arg(short = 'p', long, value_name = "PORT", default_value_t = super::DEFAULT_PORT)]
    pub port: u16,
    /// Seconds to transmit.
    #[arg(short = 't', long, value_name = "SECS", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(1..=86_400))]
    pub time: u32,
    /// Stop after this many bytes in total (instead of -t); K/M/G
    /// suffixes (powers of 1024).
    #[arg(short = 'n', long = "bytes", value_name = "BYTES", value_parser = byte_count)]
    pub bytes: Option<u64>,
    /// Parallel streams.
    #[arg(short = 'P', long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=128))]
    pub parallel: u32,
    /// Reverse: the server sends, ustack receives.
    #[arg(short = 'R', long, conflicts_with = "bidir")]
    pub reverse: bool,
    /// Both directions at once.
    #[arg(long)]
    pub bidir: bool,
    /// UDP instead of TCP.
    #[arg(short = 'u', long)]
    pub udp: bool,
    /// Rate per stream in bit/s, K/M/G suffixes (powers of 1000); UDP
    /// defaults to 1M, TCP to unlimited.
    #[arg(short = 'b', long, value_name = "RATE", value_parser = parse_rate)]
    pub bitrate: Option<u64>,
    /// Bytes per write (TCP, default 128K) or per datagram (UDP, default:
    /// the control connection's MSS); K/M suffixes (powers of 1024).
    #[arg(short = 'l', long, value_name = "LEN", value_parser = parse_len)]
    pub length: Option<usize>,
    /// Seconds between interval reports (0: none).
    #[arg(short = 'i', long, value_name = "SECS", default_value = "1", value_parser = interval)]
    pub interval: Duration,
    /// 64-bit UDP packet numbers.
    #[arg(long)]
    pub udp_counters_64bit: bool,
    /// Give up connecting after this many seconds.
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = seconds)]
    pub connect_timeout: Duration,
    #[command(flatten)]
    pub stack: StackArgs,
}

fn byte_count(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (digits, shift) = match t.chars().last().map(|c| c.to_ascii_uppercase()) {
        Some('K') => (&t[..t.len() - 1], 10),
        Some('M') => (&t[..t.len() - 1], 20),
        Some('G') => (&t[..t.len() - 1], 30),
        _ => (t, 0),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("'{s}' is not a byte count (e.g. 100M, 2G)"))?;
    match n.checked_mul(1 << shift) {
        Some(v) if v > 0 => Ok(v),
        _ => Err(format!("byte count {s} out of range")),
    }
}

fn interval(s: &str) -> Result<Duration, String> {
    let v: f64 = s
        .parse()
        .map_err(|_| format!("'{s}' is not a number of seconds"))?;
    if !(0.0..=60.0).contains(&v) || (v > 0.0 && v < 0.1) {
        return Err(format!("interval {s} (0, or 0.1 to 60 seconds)"));
    }
    Ok(Duration::from_secs_f64(v))
}

pub fn run(args: Iperf3Args) -> Result<(), Box<dyn Error>> {
    let ip = app::resolve_host(&args.host)?;
    let target = SocketAddr::V4(SocketAddrV4::new(ip, args.port));
    let stack = start::start(&args.stack)?;
    let result = run_on(&stack, target, &args);
    stack.stop();
    result.map_err(|e| e.into())
}

/// Runs one test against `target` on a running stack.
pub fn run_on(stack: &Stack, target: SocketAddr, args: &Iperf3Args) -> io::Result<()> {
    Client::new(stack, target, args)?.run()
}

fn err(what: impl Into<String>) -> io::Error {
    io::Error::other(what.into())
}

/// One data stream, from the client's side.
struct Stream {
    id: u32,
    sends: bool,
    tcp: Option<TcpStream>,
    udp: Option<UdpSocket>,
}

struct Client<'a> {
    stack: &'a Stack,
    target: SocketAddr,
    args: &'a Iperf3Args,
    ctrl: TcpStream,
    cookie: [u8; COOKIE_SIZE],
    params: TestParams,
}

impl<'a> Client<'a> {
    fn new(stack: &'a Stack, target: SocketAddr, args: &'a Iperf3Args) -> io::Result<Client<'a>> {
        let ctrl =
            TcpStream::connect_timeout(stack, &target, args.connect_timeout).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("cannot connect to {target}: {}", app::describe_io_error(&e)),
                )
            })?;
        ctrl.set_nodelay(true)?;
        ctrl.set_write_timeout(Some(CONTROL_DEADLINE))?;
        let cookie = make_cookie();
        (&ctrl).write_all(&cookie)?;
        let protocol = if args.udp {
            Protocol::Udp
        } else {
            Protocol::Tcp
        };
        let len = match (args.length, protocol) {
            (Some(l), _) => l,
            (None, Protocol::Tcp) => super::DEFAULT_TCP_BLKSIZE,
            (None, Protocol::Udp) => ctrl
                .stats()
                .ok()
                .map(|s| s.mss)
                .filter(|m| (MIN_UDP_BLKSIZE..=MAX_UDP_BLKSIZE).contains(m))
                .unwrap_or(DEFAULT_UDP_BLKSIZE),
        };
        if protocol == Protocol::Udp && !(MIN_UDP_BLKSIZE..=MAX_UDP_BLKSIZE).contains(&len) {
            return Err(err(format!(
                "UDP length {len} (from {MIN_UDP_BLKSIZE} to {MAX_UDP_BLKSIZE})"
            )));
        }
        let params = TestParams {
            protocol,
            time: if args.bytes.is_some() { 0 } else { args.time },
            bytes: args.bytes.unwrap_or(0),
            parallel: args.parallel,
            reverse: args.reverse,
            bidirectional: args.bidir,
            len,
            bandwidth: args.bitrate.unwrap_or(0),
            udp_counters_64bit: args.udp_counters_64bit,
            client_version: Some(format!("ustack {}", env!("CARGO_PKG_VERSION"))),
            ..TestParams::default()
        };
        println!("Connecting to host {}, port {}", target.ip(), target.port());
        if args.reverse {
            println!("Reverse mode, remote host {} is sending", target.ip());
        }
        Ok(Client {
            stack,
            target,
            args,
            ctrl,
            cookie,
            params,
        })
    }

    fn read_state(&self, timeout: Duration) -> io::Result<Option<i8>> {
        self.ctrl.set_read_timeout(Some(timeout))?;
        let mut b = [0u8; 1];
        match (&self.ctrl).read(&mut b) {
            Ok(0) => Err(err("the server closed the control connection")),
            Ok(_) => Ok(Some(b[0] as i8)),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn run(self) -> io::Result<()> {
        let mut streams: Vec<Stream> = Vec::new();
        let mut running: Option<Running> = None;
        let mut server_results: Option<Results> = None;
        loop {
            let s = match self.read_state(CONTROL_DEADLINE)? {
                Some(s) => s,
                None => return Err(err("the server did not answer in time")),
            };
            match s {
                state::PARAM_EXCHANGE => {
                    let text = self.params.to_json();
                    let mut msg = (text.len() as u32).to_be_bytes().to_vec();
                    msg.extend_from_slice(text.as_bytes());
                    (&self.ctrl).write_all(&msg)?;
                }
                state::CREATE_STREAMS => streams = self.create_streams()?,
                state::TEST_START => {}
                state::TEST_RUNNING => {
                    let mut r = Running::start(&self, std::mem::take(&mut streams))?;
                    r.run(&self)?;
                    running = Some(r);
                }
                state::EXCHANGE_RESULTS => {
                    let Some(r) = running.as_mut() else {
                        return Err(err("results asked for before the test ran"));
                    };
                    let ours = r.finish();
                    let text = ours.to_json();
                    let mut msg = (text.len() as u32).to_be_bytes().to_vec();
                    msg.extend_from_slice(text.as_bytes());
                    (&self.ctrl).write_all(&msg)?;
                    let theirs = read_json(&self.ctrl, CONTROL_DEADLINE)?;
                    server_results = Some(Results::from_json(&theirs).map_err(err)?);
                }
                state::DISPLAY_RESULTS => {
                    let (Some(r), Some(theirs)) = (running.as_ref(), server_results.as_ref())
                    else {
                        return Err(err("DISPLAY_RESULTS before the results"));
                    };
                    print!("{}", r.summary(&self, theirs));
                    let _ = (&self.ctrl).write_all(&[state::IPERF_DONE as u8]);
                    return Ok(());
                }
                state::ACCESS_DENIED => {
                    return Err(err("the server is busy running a test. try again later"));
                }
                state::SERVER_ERROR => {
                    let mut b = [0u8; 8];
                    self.ctrl.set_read_timeout(Some(CONTROL_DEADLINE))?;
                    let code = match (&self.ctrl).read_exact(&mut b) {
                        Ok(()) => i32::from_be_bytes([b[0], b[1], b[2], b[3]]),
                        Err(_) => -1,
                    };
                    return Err(err(format!(
                        "the server reported error {code}: {}",
                        super::errors::describe(code)
                    )));
                }
                state::SERVER_TERMINATE => return Err(err("the server has terminated")),
                other => return Err(err(format!("unexpected control message {other}"))),
            }
        }
    }

    fn create_streams(&self) -> io::Result<Vec<Stream>> {
        let mut out = Vec::new();
        for (i, sends) in self.params.client_roles().into_iter().enumerate() {
            let id = stream_id(i);
            let mut stream = Stream {
                id,
                sends,
                tcp: None,
                udp: None,
            };
            let local = match self.params.protocol {
                Protocol::Tcp => {
                    let s = TcpStream::connect_timeout(
                        self.stack,
                        &self.target,
                        self.args.connect_timeout,
                    )
                    .map_err(|e| io::Error::new(e.kind(), format!("data stream {id}: {e}")))?;
                    s.set_write_timeout(Some(CONTROL_DEADLINE))?;
                    (&s).write_all(&self.cookie)?;
                    let local = s.local_addr()?;
                    stream.tcp = Some(s);
                    local
                }
                Protocol::Udp => {
                    let s = UdpSocket::bind(self.stack, "0.0.0.0:0")?;
                    s.connect(self.target)?;
                    self.udp_handshake(&s, id)?;
                    let local = s.local_addr()?;
                    stream.udp = Some(s);
                    local
                }
            };
            println!(
                "[{id:>3}] local {} port {} connected to {} port {}",
                local.ip(),
                local.port(),
                self.target.ip(),
                self.target.port()
            );
            out.push(stream);
        }
        Ok(out)
    }

    /// Sends the connect datagram (again every second, up to 5 times) and
    /// waits for the reply.
    fn udp_handshake(&self, s: &UdpSocket, id: u32) -> io::Result<()> {
        s.set_read_timeout(Some(Duration::from_secs(1)))?;
        let mut buf = vec![0u8; 65_536];
        for _ in 0..5 {
            s.send(&UDP_CONNECT_MSG.to_le_bytes())?;
            let deadline = Instant::now() + Duration::from_secs(1);
            while Instant::now() < deadline {
                match s.recv(&mut buf) {
                    Ok(n) if is_connect_reply(&buf[..n]) => return Ok(()),
                    Ok(_) => {}
                    Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Err(err(format!("UDP stream {id}: the server did not answer")))
    }
}

/// A running test: the workers and their shared state, senders and
/// receivers apart (the senders stop at the end of the test, the
/// receivers only when the results are asked for).
struct Running {
    ids: Vec<(u32, bool)>,
    senders: Arc<Shared>,
    receivers: Arc<Shared>,
    send_workers: Vec<JoinHandle<Report>>,
    recv_workers: Vec<JoinHandle<Report>>,
    start: Instant,
    cpu_start: (Duration, Duration),
    duration: Duration,
    cpu: (f64, f64, f64),
    results: Vec<StreamResult>,
}

impl Running {
    fn start(client: &Client<'_>, streams: Vec<Stream>) -> io::Result<Running> {
        let n = streams.len();
        let start = Instant::now();
        let p = &client.params;
        let settings = Settings {
            len: p.len,
            rate: p.rate(),
            counters_64bit: p.udp_counters_64bit,
            // A byte count ends the whole test (all streams together): the
            // run loop watches it.
            bytes: 0,
            blocks: 0,
        };
        let mut r = Running {
            ids: streams.iter().map(|s| (s.id, s.sends)).collect(),
            senders: Shared::new(n, start),
            receivers: Shared::new(n, start),
            send_workers: Vec::new(),
            recv_workers: Vec::new(),
            start,
            cpu_start: cpu_times(),
            duration: Duration::ZERO,
            cpu: (0.0, 0.0, 0.0),
            results: Vec::new(),
        };
        for (i, s) in streams.into_iter().enumerate() {
            let (tx, rx) = (r.senders.clone(), r.receivers.clone());
            match (s.tcp, s.udp, s.sends) {
                (Some(t), _, true) => r
                    .send_workers
                    .push(streams::tcp_sender(t, i, tx, settings)?),
                (Some(t), _, false) => r
                    .recv_workers
                    .push(streams::tcp_receiver(t, i, rx, settings)?),
                (None, Some(u), true) => r
                    .send_workers
                    .push(streams::udp_sender(u, None, i, tx, settings)?),
                (None, Some(u), false) => r.recv_workers.push(streams::udp_receiver(
                    u,
                    Default::default(),
                    Some(i),
                    rx,
                    settings,
                )?),
                (None, None, _) => return Err(err("a stream without a socket")),
            }
        }
        Ok(r)
    }

    fn bytes(&self, i: usize) -> u64 {
        let shared = if self.ids[i].1 {
            &self.senders
        } else {
            &self.receivers
        };
        shared.bytes[i].load(Ordering::Relaxed)
    }

    /// Prints one interval line per stream (and their sum) since `from`,
    /// remembering the byte counts in `last`.
    fn report(&self, last: &mut [u64], from: Duration, to: Duration) {
        let mut sum = 0;
        for (i, l) in last.iter_mut().enumerate() {
            let b = self.bytes(i);
            let d = b - *l;
            *l = b;
            sum += d;
            println!(
                "{}",
                line(&format!("{:>3}", self.ids[i].0), from, to, d, "")
            );
        }
        if last.len() > 1 {
            println!("{}", line("SUM", from, to, sum, ""));
        }
    }

    /// Runs the test for its duration (or byte count) with interval
    /// reports, then sends `TEST_END`.
    fn run(&mut self, client: &Client<'_>) -> io::Result<()> {
        // With a byte count (-n) the test has no duration: it ends when the
        // bytes are through (capped at a day, like iperf3's MAX_TIME).
        let limit = client.params.bytes;
        let total = if limit > 0 {
            Duration::from_secs(u64::from(super::MAX_TIME))
        } else {
            Duration::from_secs(u64::from(client.params.time))
        };
        let every = client.args.interval;
        if !every.is_zero() {
            println!("[ ID] Interval           Transfer     Bitrate");
        }
        let mut last = vec![0u64; self.ids.len()];
        let mut last_t = Duration::ZERO;
        let mut next = if every.is_zero() {
            total
        } else {
            every.min(total)
        };
        loop {
            let now = self.start.elapsed();
            let moved = if client.params.client_sends() {
                self.senders.total_bytes()
            } else {
                self.receivers.total_bytes()
            };
            let done = now >= total || (limit > 0 && moved >= limit);
            if now >= next || done {
                if !every.is_zero() {
                    self.report(&mut last, last_t, now);
                }
                last_t = now;
                if done {
                    break;
                }
                next = if every.is_zero() {
                    total
                } else {
                    (next + every).min(total)
                };
            }
            let wait = next.saturating_sub(now).min(Duration::from_millis(20));
            if let Some(s) = client.read_state(wait.max(Duration::from_millis(1)))? {
                return Err(match s {
                    state::SERVER_TERMINATE => err("the server has terminated"),
                    state::SERVER_ERROR => err("the server reported an error"),
                    other => err(format!(
                        "unexpected control message {other} during the test"
                    )),
                });
            }
        }
        self.duration = self.start.elapsed();
        self.cpu = cpu_util(self.cpu_start, cpu_times(), self.duration);
        // The senders stop; the receivers keep draining until the
        // results are asked for (so that a sending server is never
        // blocked before it reads TEST_END).
        let sent = streams::finish(&self.senders, std::mem::take(&mut self.send_workers));
        self.store(sent);
        (&client.ctrl).write_all(&[state::TEST_END as u8])?;
        Ok(())
    }

    fn store(&mut self, reports: std::collections::HashMap<usize, StreamResult>) {
        for (i, mut r) in reports {
            r.id = self.ids[i].0;
            r.start_time = 0.0;
            self.results.push(r);
        }
    }

    /// Stops the receivers and returns our results.
    fn finish(&mut self) -> Results {
        let received = streams::finish(&self.receivers, std::mem::take(&mut self.recv_workers));
        self.store(received);
        self.results.sort_by_key(|r| r.id);
        let sends = self.ids.iter().any(|(_, s)| *s);
        Results {
            cpu_util_total: self.cpu.0,
            cpu_util_user: self.cpu.1,
            cpu_util_system: self.cpu.2,
            sender_has_retransmits: if sends { 1 } else { -1 },
            congestion_used: None,
            streams: self.results.clone(),
            server_output_text: None,
        }
    }

    fn summary(&self, client: &Client<'_>, theirs: &Results) -> String {
        let udp = client.params.protocol == Protocol::Udp;
        let mut out = String::new();
        let _ = writeln!(out, "- - - - - - - - - - - - - - - - - - - - - - - - -");
        if udp {
            let _ = writeln!(
                out,
                "[ ID] Interval           Transfer     Bitrate         Jitter    Lost/Total Datagrams"
            );
        } else {
            let _ = writeln!(
                out,
                "[ ID] Interval           Transfer     Bitrate         Retr"
            );
        }
        let mut sums = [(0u64, 0f64, 0u64, 0u64, 0f64); 2]; // sender, receiver
        let mut retr_total = 0i64;
        for (id, sends) in &self.ids {
            let ours = self
                .results
                .iter()
                .find(|r| r.id == *id)
                .cloned()
                .unwrap_or_default();
            let peer = theirs
                .streams
                .iter()
                .find(|r| r.id == *id)
                .cloned()
                .unwrap_or_default();
            let (sender, receiver) = if *sends {
                (&ours, &peer)
            } else {
                (&peer, &ours)
            };
            let secs = |r: &StreamResult| {
                let s = r.end_time - r.start_time;
                if s > 0.0 {
                    s
                } else {
                    self.duration.as_secs_f64()
                }
            };
            let tag = format!("{id:>3}");
            let (s_secs, r_secs) = (secs(sender), secs(receiver));
            let extra = if udp {
                format!("  {:.3} ms  0/{} (0%)  sender", 0.0, sender.packets)
            } else {
                retr_total += sender.retransmits.max(0);
                format!("  {:>4}             sender", sender.retransmits.max(0))
            };
            let _ = writeln!(
                out,
                "{}{extra}",
                line(&tag, Duration::ZERO, dur(s_secs), sender.bytes, "")
            );
            let extra = if udp {
                let total = receiver.packets.max(1);
                format!(
                    "  {:.3} ms  {}/{} ({:.2}%)  receiver",
                    receiver.jitter * 1000.0,
                    receiver.errors,
                    receiver.packets,
                    receiver.errors as f64 * 100.0 / total as f64
                )
            } else {
                "                   receiver".to_string()
            };
            let _ = writeln!(
                out,
                "{}{extra}",
                line(&tag, Duration::ZERO, dur(r_secs), receiver.bytes, "")
            );
            sums[0].0 += sender.bytes;
            sums[0].1 = sums[0].1.max(s_secs);
            sums[0].3 += sender.packets;
            sums[1].0 += receiver.bytes;
            sums[1].1 = sums[1].1.max(r_secs);
            sums[1].2 += receiver.errors;
            sums[1].3 += receiver.packets;
            sums[1].4 = sums[1].4.max(receiver.jitter);
        }
        if self.ids.len() > 1 {
            let _ = writeln!(
                out,
                "{}  sender",
                line("SUM", Duration::ZERO, dur(sums[0].1), sums[0].0, "")
            );
            let _ = writeln!(
                out,
                "{}  receiver",
                line("SUM", Duration::ZERO, dur(sums[1].1), sums[1].0, "")
            );
        }
        let (local, remote) = if client.params.client_sends() {
            ("local/sender", "remote/receiver")
        } else {
            ("local/receiver", "remote/sender")
        };
        let _ = writeln!(
            out,
            "CPU Utilization: {local} {:.1}% ({:.1}%u/{:.1}%s), {remote} {:.1}% ({:.1}%u/{:.1}%s)",
            self.cpu.0,
            self.cpu.1,
            self.cpu.2,
            theirs.cpu_util_total,
            theirs.cpu_util_user,
            theirs.cpu_util_system
        );
        if let Some(c) = &theirs.congestion_used {
            let _ = writeln!(out, "remote congestion control: {c}");
        }
        let bps = |b: u64, s: f64| if s > 0.0 { b as f64 * 8.0 / s } else { 0.0 };
        let _ = writeln!(
            out,
            "iperf3-summary: protocol={} streams={} reverse={} bidir={} seconds={:.3} \
             sent_bytes={} received_bytes={} sender_bps={:.0} receiver_bps={:.0} retransmits={} \
             lost={} packets={} jitter_ms={:.3}",
            client.params.protocol,
            client.params.parallel,
            u8::from(client.params.reverse),
            u8::from(client.params.bidirectional),
            self.duration.as_secs_f64(),
            sums[0].0,
            sums[1].0,
            bps(sums[0].0, sums[0].1),
            bps(sums[1].0, sums[1].1),
            retr_total,
            sums[1].2,
            sums[1].3,
            sums[1].4 * 1000.0
        );
        out
    }
}

fn dur(secs: f64) -> Duration {
    Duration::from_secs_f64(secs.max(0.0))
}

/// `[ ID]   0.00-1.00   sec   112 MBytes   941 Mbits/sec`
fn line(tag: &str, from: Duration, to: Duration, bytes: u64, extra: &str) -> String {
    let secs = to.saturating_sub(from).as_secs_f64();
    let rate = if secs > 0.0 {
        bytes as f64 * 8.0 / secs
    } else {
        0.0
    };
    format!(
        "[{tag}] {:>6.2}-{:<6.2} sec  {:>11}  {:>14}{extra}",
        from.as_secs_f64(),
        to.as_secs_f64(),
        human_bytes(bytes),
        human_rate(rate)
    )
}
