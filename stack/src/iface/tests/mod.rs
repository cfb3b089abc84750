//! Interfaces on an in-memory link, driven by a virtual clock.

#![allow(clippy::field_reassign_with_default)]

use super::*;
pub(super) use crate::device::FrameBatch;
use crate::device::{Device, MemoryDevice, memory_pair_medium};
pub(super) use crate::error::SocketError;
pub(super) use ip::IcmpRepr;
use std::net::SocketAddrV4;

pub(super) const A_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
pub(super) const B_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
pub(super) const A_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
pub(super) const B_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);

pub(super) struct Pair {
    pub a: Interface,
    pub b: Interface,
    pub da: MemoryDevice,
    pub db: MemoryDevice,
    pub now: Instant,
    /// Frames a sent, as seen on the wire (for assertions).
    pub a_sent: Vec<Vec<u8>>,
    /// Frames b sent.
    pub b_sent: Vec<Vec<u8>>,
}

pub(super) fn config(mac: MacAddr, ip: Ipv4Addr) -> InterfaceConfig {
    let mut c = InterfaceConfig::new(mac, Ipv4Cidr::new(ip, 24).unwrap());
    c.announce = false;
    c
}

impl Pair {
    pub fn new() -> Pair {
        Self::with(config(A_MAC, A_IP), config(B_MAC, B_IP))
    }

    pub fn with(ca: InterfaceConfig, cb: InterfaceConfig) -> Pair {
        let now = Instant::now();
        let (da, db) = memory_pair_medium(ca.mtu, ca.medium).unwrap();
        Pair {
            a: Interface::new(ca, now),
            b: Interface::new(cb, now),
            da,
            db,
            now,
            a_sent: Vec::new(),
            b_sent: Vec::new(),
        }
    }

    /// Delivers frames both ways and runs timers until nothing moves.
    pub fn settle(&mut self) {
        let mut buf = vec![0u8; 70_000];
        for _ in 0..1000 {
            let mut moved = false;
            self.a.poll(self.now, &mut self.da);
            self.b.poll(self.now, &mut self.db);
            while let Some(n) = self.db.recv(self.now, &mut buf).unwrap() {
                self.a_sent.push(buf[..n].to_vec());
                self.b.receive_frame(self.now, &buf[..n], &mut self.db);
                moved = true;
            }
            while let Some(n) = self.da.recv(self.now, &mut buf).unwrap() {
                self.b_sent.push(buf[..n].to_vec());
                self.a.receive_frame(self.now, &buf[..n], &mut self.da);
                moved = true;
            }
            if !moved {
                return;
            }
        }
        panic!("link never settled");
    }

    /// Jumps the virtual clock from deadline to deadline until `until`.
    pub fn advance(&mut self, by: Duration) {
        let until = self.now + by;
        loop {
            self.settle();
            let next = [self.a.poll_at(), self.b.poll_at()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(t) if t <= until => self.now = t.max(self.now),
                _ => break,
            }
            if next == Some(self.now) {
                // Due now: run the timers, then look again.
                self.settle();
                let again = [self.a.poll_at(), self.b.poll_at()]
                    .into_iter()
                    .flatten()
                    .min();
                if again == Some(self.now) {
                    panic!("timer does not advance");
                }
            }
        }
        self.now = until;
        self.settle();
    }
}

/// A frame carrying `ip` (header and payload) from B to A.
pub(super) fn ip_frame(ip_packet: &[u8]) -> Vec<u8> {
    let mut f = vec![0u8; 14];
    EthernetRepr {
        dst: A_MAC,
        src: B_MAC,
        ethertype: EtherType::IPV4,
    }
    .emit(&mut f);
    f.extend_from_slice(ip_packet);
    f
}

/// An ICMP Destination Unreachable (`code`, next-hop MTU `mtu`) from B
/// about a TCP segment A sent from `local` to `remote` at `seq`.
pub(super) fn tcp_unreachable(
    code: u8,
    mtu: u16,
    local: SocketAddrV4,
    remote: SocketAddrV4,
    seq: ::tcp::SeqNum,
) -> Vec<u8> {
    let mut quoted = vec![0u8; 28];
    let mut orig = Ipv4Repr::new(*local.ip(), *remote.ip(), IpProtocol::TCP, 64, 1460);
    orig.dont_fragment = true;
    orig.emit(&mut quoted);
    quoted[20..22].copy_from_slice(&local.port().to_be_bytes());
    quoted[22..24].copy_from_slice(&remote.port().to_be_bytes());
    quoted[24..28].copy_from_slice(&seq.0.to_be_bytes());
    let msg = IcmpRepr::DestUnreachable {
        code,
        next_hop_mtu: mtu,
        original: &quoted,
    };
    let ip = Ipv4Repr::new(B_IP, A_IP, IpProtocol::ICMP, 64, msg.buffer_len());
    let mut packet = vec![0u8; 20 + msg.buffer_len()];
    ip.emit(&mut packet);
    msg.emit(&mut packet[20..]);
    ip_frame(&packet)
}

/// Frames in `frames` that are ICMP messages of `icmp_type` (and their code).
pub(super) fn icmp_of_type(frames: &[Vec<u8>], icmp_type: u8) -> Vec<u8> {
    frames
        .iter()
        .filter(|f| f.len() > 34 && f[12..14] == [0x08, 0x00] && f[23] == 1)
        .filter(|f| {
            let ihl = (f[14] & 0x0f) as usize * 4;
            f[14 + ihl] == icmp_type
        })
        .map(|f| {
            let ihl = (f[14] & 0x0f) as usize * 4;
            f[14 + ihl + 1]
        })
        .collect()
}

mod arp_failure;
mod arp_icmp;
mod hardening;
mod ip_medium;
mod loopback;
mod offload;
mod tcp_icmp;
mod tcp_options;
mod udp_frag;
