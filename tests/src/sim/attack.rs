//! Hostile peers for simulation tests: raw frames with forged addresses,
//! written straight onto a host's link (the attacker's stack is bypassed),
//! and a SYN flood from random spoofed sources (seeded, so floods replay).

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use ethernet::{EtherType, EthernetRepr, MacAddr};
use ip::{IpProtocol, Ipv4Repr};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tcp::{Flags, SeqNum, TcpOptions, TcpRepr};

use super::host::{App, HostCtx};

/// An Ethernet frame carrying `repr` and `payload`.
pub fn ipv4_frame(src_mac: MacAddr, dst_mac: MacAddr, repr: &Ipv4Repr, payload: &[u8]) -> Vec<u8> {
    let mut frame = vec![0u8; EthernetRepr::HEADER_LEN + repr.header_len + payload.len()];
    EthernetRepr {
        dst: dst_mac,
        src: src_mac,
        ethertype: EtherType::IPV4,
    }
    .emit(&mut frame);
    repr.emit(&mut frame[EthernetRepr::HEADER_LEN..]);
    frame[EthernetRepr::HEADER_LEN + repr.header_len..].copy_from_slice(payload);
    frame
}

/// An Ethernet frame carrying the TCP segment `seg` (with `payload`) from
/// `src` to `dst`, checksums filled in.
pub fn tcp_frame(
    src_mac: MacAddr,
    dst_mac: MacAddr,
    src: SocketAddrV4,
    dst: SocketAddrV4,
    seg: &TcpRepr,
    payload: &[u8],
) -> Vec<u8> {
    let hlen = seg.header_len();
    let mut tcp = vec![0u8; hlen + payload.len()];
    seg.emit_header(&mut tcp);
    tcp[hlen..].copy_from_slice(payload);
    tcp::fill_checksum(&mut tcp, *src.ip(), *dst.ip());
    let repr = Ipv4Repr::new(*src.ip(), *dst.ip(), IpProtocol::TCP, 64, tcp.len());
    ipv4_frame(src_mac, dst_mac, &repr, &tcp)
}

/// A random unicast address that is not a martian, not in 10/8 (the
/// simulated link's prefix) and not multicast or reserved: what
/// `hping3 --rand-source` sends from, give or take.
pub fn routable_source(rng: &mut impl Rng) -> Ipv4Addr {
    loop {
        let a = Ipv4Addr::from(rng.next_u32());
        let first = a.octets()[0];
        if !matches!(first, 0 | 10 | 127) && first < 224 {
            return a;
        }
    }
}

/// Floods `target` with SYNs from random spoofed sources, `rate` per
/// second, from start until `until`, as frames addressed to `target_mac`.
pub struct SynFlood {
    target: SocketAddrV4,
    target_mac: MacAddr,
    src_mac: MacAddr,
    rate: u64,
    until: Instant,
    next: Option<Instant>,
    rng: SmallRng,
    /// SYNs sent.
    pub sent: u64,
}

impl SynFlood {
    /// A flood of `rate` SYNs per second until `until`.
    pub fn new(
        target: SocketAddrV4,
        target_mac: MacAddr,
        src_mac: MacAddr,
        rate: u64,
        until: Instant,
        seed: u64,
    ) -> SynFlood {
        SynFlood {
            target,
            target_mac,
            src_mac,
            rate,
            until,
            next: None,
            rng: SmallRng::seed_from_u64(seed),
            sent: 0,
        }
    }

    /// One spoofed SYN, as `hping3 -S` builds it (a window, no options)
    /// or, every other one, as a Linux client would (MSS, SACK, timestamps,
    /// window scale).
    pub fn syn(&mut self) -> (SocketAddrV4, TcpRepr) {
        let src = SocketAddrV4::new(
            routable_source(&mut self.rng),
            1024 + (self.sent % 60_000) as u16,
        );
        let r = self.rng.next_u64();
        let options = if r & 1 == 0 {
            TcpOptions::default()
        } else {
            TcpOptions {
                mss: Some(1460),
                window_scale: Some(7),
                sack_permitted: true,
                timestamps: Some(((r >> 8) as u32, 0)),
                ..TcpOptions::default()
            }
        };
        let seg = TcpRepr {
            src_port: src.port(),
            dst_port: self.target.port(),
            seq: SeqNum((r >> 32) as u32),
            ack: SeqNum(0),
            flags: Flags(Flags::SYN),
            window: 512,
            options,
            urgent: 0,
        };
        (src, seg)
    }
}

/// SYNs are sent in bursts this far apart (the rate is kept on average).
const BURST_EVERY: Duration = Duration::from_millis(1);

impl App for SynFlood {
    fn step(&mut self, cx: &mut HostCtx<'_>) {
        let next = *self.next.get_or_insert(cx.now);
        if cx.now < next || cx.now >= self.until {
            if cx.now < self.until {
                cx.wake_at(next);
            }
            return;
        }
        let per_burst = (self.rate as u128 * BURST_EVERY.as_nanos() / 1_000_000_000) as u64;
        for _ in 0..per_burst.max(1) {
            let (src, seg) = self.syn();
            let frame = tcp_frame(self.src_mac, self.target_mac, src, self.target, &seg, &[]);
            let _ = cx.tx.send(cx.now, &frame);
            self.sent += 1;
        }
        let next = next + BURST_EVERY;
        self.next = Some(next);
        cx.wake_at(next);
    }
}
