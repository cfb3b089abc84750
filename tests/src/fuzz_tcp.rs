//! Fuzz target bodies for TCP under a hostile peer: segments into an
//! established connection (sans-IO), and the whole receive path of an
//! interface with many live connections. After every input step the
//! stack's invariants are checked ([`tcp::Connection::check_invariants`],
//! [`stack::Interface::tcp_check_invariants`]), so a fuzzer finds broken
//! bookkeeping, not only panics.
//!
//! Inputs are read as records. A peer that can see our segments is the
//! strongest attacker, so sequence and acknowledgment numbers are taken
//! relative to what the connection last sent (the fuzzer then reaches the
//! in-window paths instead of bouncing off the acceptability test).

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use ethernet::MacAddr;
use ip::Ipv4Cidr;
use stack::device::FrameBatch;
use stack::{Interface, InterfaceConfig, ListenerHandle, MemoryPressure, TcpHandle};
use tcp::{Connection, Flags, SeqNum, TcpConfig, TcpOptions, TcpRepr};

use crate::sim::attack::tcp_frame;

const A: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 40_000);
const B: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 80);

/// Reads fixed-size records from the input, padding the last with zeros.
struct Records<'a> {
    data: &'a [u8],
}

impl Iterator for Records<'_> {
    type Item = [u8; 12];
    fn next(&mut self) -> Option<[u8; 12]> {
        if self.data.is_empty() {
            return None;
        }
        let n = self.data.len().min(12);
        let mut rec = [0u8; 12];
        rec[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Some(rec)
    }
}

/// What the attacker saw of the connection: the last sequence and
/// acknowledgment numbers it sent, and its timestamp.
#[derive(Default, Clone, Copy)]
struct Seen {
    seq: SeqNum,
    ack: SeqNum,
    ts: u32,
}

/// A segment built from a record, relative to what was seen.
fn segment(rec: &[u8; 12], seen: &Seen, ts_val: &mut u32, ports: (u16, u16)) -> (TcpRepr, usize) {
    let flags = rec[1] & 0x3f;
    let rel = |hi: u8, lo: u8| i64::from(i16::from_be_bytes([hi, lo]));
    // Mostly near the edges, sometimes far (scaled by the top bits).
    let scale = |x: u8| 1i64 << ((x >> 5) * 4);
    let seq = SeqNum((seen.ack.0 as i64 + rel(rec[2], rec[3]) * scale(rec[11])) as u32);
    let ack = SeqNum((seen.seq.0 as i64 + rel(rec[4], rec[5]) * scale(rec[10])) as u32);
    let mut options = TcpOptions::default();
    // Timestamps mostly move forward; sometimes back (PAWS).
    if rec[9] & 0x80 == 0 {
        *ts_val = ts_val.wrapping_add(u32::from(rec[9] & 0x3f));
        if rec[9] & 0x40 != 0 {
            *ts_val = ts_val.wrapping_sub(1000);
        }
        options.timestamps = Some((*ts_val, seen.ts));
    }
    // SACK blocks around what was sent.
    for i in 0..(rec[10] & 3) as usize {
        let l = seen.seq - (usize::from(rec[6]) << (4 * i)) - 1;
        let r = l + (usize::from(rec[7] | 1) << i);
        options.push_sack(l, r);
    }
    let seg = TcpRepr {
        src_port: ports.0,
        dst_port: ports.1,
        seq,
        ack,
        flags: Flags(flags),
        window: u16::from_be_bytes([rec[6], rec[7]]),
        options,
        urgent: 0,
    };
    let len = usize::from(rec[8]) * 12;
    (seg, len)
}

fn cfg() -> TcpConfig {
    TcpConfig {
        send_buffer: 256 * 1024,
        recv_buffer: 128 * 1024,
        ..TcpConfig::default()
    }
}

/// Runs the handshake between a fresh client `a` and server `b`.
fn established(now: Instant) -> (Connection, Connection) {
    let mut a = Connection::connect(&cfg(), A, B, SeqNum(1000), 3, now, now);
    let mut syn = None;
    a.poll_transmit(now, 1500, |s, _, _| {
        syn = Some(*s);
        true
    });
    let syn = syn.expect("a SYN");
    let mut b = Connection::accept(&cfg(), B, A, SeqNum(90_000), 5, now, now, &syn);
    for _ in 0..4 {
        deliver(now, &mut b, &mut a);
        deliver(now, &mut a, &mut b);
    }
    (a, b)
}

/// Hands everything `from` sends now to `to`.
fn deliver(now: Instant, from: &mut Connection, to: &mut Connection) {
    let mut segments = Vec::new();
    from.poll_transmit(now, 1500, |s, x, y| {
        segments.push((*s, [x, y].concat()));
        true
    });
    for (s, p) in segments {
        to.handle_segment(now, &s, &p);
    }
}

/// TCP segments into an established connection (sans-IO), mixed with the
/// application's calls, timer runs and memory-pressure changes; the
/// connection's invariants hold after every step and everything it sends
/// is well-formed and inside its buffers.
pub fn tcp_conn(data: &[u8]) {
    let t0 = Instant::now();
    let mut now = t0;
    let (_, mut b) = established(now);
    assert!(b.is_established());
    let payload = vec![0x5au8; 255 * 12];
    let mut seen = Seen::default();
    let mut ts_val = 1_000u32;
    let mut out = vec![0u8; 64 * 1024];
    let mut app_data = 0u64;
    for rec in (Records { data }) {
        match rec[0] % 8 {
            0..=4 => {
                let (seg, len) = segment(&rec, &seen, &mut ts_val, (A.port(), B.port()));
                b.handle_segment(now, &seg, &payload[..len]);
            }
            5 => {
                let n = usize::from(rec[1]) * 256;
                let chunk: Vec<u8> = (0..n).map(|i| (app_data + i as u64) as u8).collect();
                if let Ok(k) = b.send(&chunk) {
                    app_data += k as u64;
                }
                let _ = b.recv(&mut out[..usize::from(rec[2]) * 256]);
            }
            6 => {
                now += Duration::from_millis(u64::from(rec[1]) * 10 + u64::from(rec[2]) * 1000);
            }
            _ => match rec[1] % 8 {
                0 => b.close(now),
                1 => b.shutdown_write(),
                2 => b.shutdown_read(),
                3 => b.abort(now),
                4 => {
                    b.set_memory_pressure(MemoryPressure::Normal);
                }
                5 => {
                    b.set_memory_pressure(MemoryPressure::Pressure);
                }
                6 => {
                    b.set_memory_pressure(MemoryPressure::Exhausted);
                }
                _ => b.set_recv_buffer(usize::from(rec[2]) * 1024 + 1024),
            },
        }
        let mut sent = Vec::new();
        b.poll_transmit(now, 1500, |s, x, y| {
            sent.push((*s, x.len() + y.len()));
            true
        });
        for (s, len) in sent {
            assert!(len <= 1460, "a segment of {len} bytes for MTU 1500");
            assert!(!s.flags.syn() || len == 0);
            if s.flags.rst() {
                continue;
            }
            seen.seq = s.seq + len + usize::from(s.flags.fin());
            seen.ack = s.ack;
            if let Some((val, _)) = s.options.timestamps {
                seen.ts = val;
            }
        }
        if let Err(e) = b.check_invariants() {
            panic!("{e}\n{b:?}");
        }
        b.release_unneeded_buffers();
    }
}

/// The interface the many-connections target feeds: a server with a
/// listener and `n` connections established from a client interface.
pub fn many_connections(
    now: Instant,
    n: usize,
) -> (Interface, Interface, Vec<TcpHandle>, ListenerHandle) {
    let iface = |mac: u8| {
        let mut c = InterfaceConfig::new(
            MacAddr([2, 0, 0, 0, 0, mac]),
            Ipv4Cidr::new(Ipv4Addr::new(10, 0, 0, mac), 24).expect("valid prefix"),
        );
        c.announce = false;
        c.mem_limit = 4 << 20;
        c.tcp.recv_buffer = 64 * 1024;
        c.tcp.send_buffer = 64 * 1024;
        c.tcp_limits.max_time_wait = 8;
        Interface::new(c, now)
    };
    let mut client = iface(1);
    let mut server = iface(2);
    let listener = server
        .tcp_listen(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 80), 64)
        .expect("listen");
    let dst = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 80);
    let mut handles = Vec::new();
    for _ in 0..n {
        handles.push(client.tcp_connect(now, dst, None).expect("connect"));
    }
    let mut to_server = FrameBatch::new();
    let mut to_client = FrameBatch::new();
    for _ in 0..10 {
        client.poll(now, &mut to_server);
        for f in to_server.iter() {
            server.receive_frame(now, f, &mut to_client);
        }
        to_server.clear();
        server.poll(now, &mut to_client);
        for f in to_client.iter() {
            client.receive_frame(now, f, &mut to_server);
        }
        to_client.clear();
    }
    assert!(
        handles
            .iter()
            .all(|&h| client.tcp(h).is_some_and(|c| c.is_established())),
        "the connections are established before the input is fed"
    );
    (server, client, handles, listener)
}

/// The whole receive path of an interface with many live connections: TCP
/// segments for one of them (or for the listener, or for a TIME-WAIT
/// record), built from the input with valid checksums and numbers
/// relative to the connection's state, through Ethernet, IPv4 and TCP;
/// between them the application reads, writes and closes, time passes,
/// and the memory budget is squeezed. The interface's TCP bookkeeping must
/// be consistent after every frame.
pub fn interface_many(data: &[u8]) {
    const N: usize = 16;
    let t0 = Instant::now();
    let mut now = t0;
    let (mut server, client, handles, listener) = many_connections(now, N);
    let mut accepted = Vec::new();
    let mut out = FrameBatch::new();
    let payload = vec![0xa5u8; 255 * 12];
    let mut ts_val = 5_000u32;
    let server_mac = MacAddr([2, 0, 0, 0, 0, 2]);
    let client_mac = MacAddr([2, 0, 0, 0, 0, 1]);
    let mut buf = vec![0u8; 32 * 1024];
    for rec in (Records { data }) {
        let which = usize::from(rec[0] >> 3) % (N + 2);
        match rec[0] % 8 {
            0..=4 => {
                // A segment on connection `which` (or a new port).
                let (local, seen) = match handles.get(which) {
                    Some(&h) => {
                        let c = client.tcp(h).expect("client side lives");
                        let seen = Seen {
                            seq: c.rcv_nxt(),
                            ack: c.snd_nxt(),
                            ts: 0,
                        };
                        (c.local(), seen)
                    }
                    None => (
                        SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 30_000 + u16::from(rec[11])),
                        Seen::default(),
                    ),
                };
                let (seg, len) = segment(&rec, &seen, &mut ts_val, (local.port(), 80));
                let frame = tcp_frame(
                    client_mac,
                    server_mac,
                    local,
                    SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 80),
                    &seg,
                    &payload[..len],
                );
                server.receive_frame(now, &frame, &mut out);
            }
            5 => {
                // The application: accept, read, write, close.
                while let Ok(h) = server.tcp_accept(listener) {
                    accepted.push(h);
                }
                if let Some(&h) = accepted.get(which) {
                    match rec[1] % 4 {
                        0 => {
                            let _ = server.tcp_recv(h, &mut buf);
                        }
                        1 => {
                            let _ = server.tcp_send(h, &buf[..usize::from(rec[2]) * 128]);
                        }
                        2 => server.tcp_close(now, h),
                        _ => server.tcp_abort(now, h),
                    }
                }
            }
            6 => now += Duration::from_millis(u64::from(rec[1]) * 20 + u64::from(rec[2]) * 2000),
            _ => {
                let limit = [4 << 20, 1 << 20, 256 << 10][usize::from(rec[1]) % 3];
                server.set_mem_limit(limit);
            }
        }
        server.poll(now, &mut out);
        out.clear();
        if let Err(e) = server.tcp_check_invariants() {
            panic!("{e}");
        }
        let m = server.memory();
        assert_eq!(
            m.used,
            m.tcp + m.time_wait + m.reassembly + m.arp + m.udp,
            "the budget's parts add up"
        );
    }
}
