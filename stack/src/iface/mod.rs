//! The interface: one Ethernet attachment with one IPv4 address, its ARP
//! cache, routes, sockets and counters. Sans-IO apart from the frames it is
//! handed and the [`FrameSink`] it writes to: the same code runs on a TAP
//! device and in a simulated network with a virtual clock.

mod icmp_socket;
mod ip_layer;

pub use icmp_socket::{EchoReply, IcmpHandle, IcmpSocket};
pub use ip_layer::{IpLayer, SendError};

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use arp::{ArpError, ArpOp, ArpRepr, NeighborAction, NeighborCache, NeighborConfig};
use ethernet::{EtherType, EthernetRepr, FrameError, MacAddr};
use ip::icmp::IcmpRepr;
use ip::{IcmpError, IpProtocol, Ipv4Cidr, Ipv4Error, Ipv4Repr, Route, RouteTable};
use rand::SeedableRng;
use rand::rngs::SmallRng;

use crate::counters::{Counters, DropReason};
use crate::device::FrameSink;
use crate::slab::Slab;
use ip_layer::IdentGenerator;

/// RFC 5227: ANNOUNCE_NUM announcements, ANNOUNCE_INTERVAL apart.
const ANNOUNCE_NUM: u8 = 2;
const ANNOUNCE_INTERVAL: Duration = Duration::from_secs(2);

/// How an interface is set up.
#[derive(Clone, Debug)]
pub struct InterfaceConfig {
    /// Our MAC address.
    pub mac: MacAddr,
    /// Our address and the on-link prefix.
    pub addr: Ipv4Cidr,
    /// Default gateway.
    pub gateway: Option<Ipv4Addr>,
    /// Further routes (longest prefix wins).
    pub routes: Vec<Route>,
    /// Link MTU: the largest IP packet one frame carries.
    pub mtu: usize,
    /// TTL of datagrams we originate.
    pub ttl: u8,
    /// ARP behaviour.
    pub neighbor: NeighborConfig,
    /// Send gratuitous ARP announcements at start-up.
    pub announce: bool,
    /// Seed for everything random (identification, ports, ISNs): the same
    /// seed and the same inputs give the same outputs.
    pub seed: u64,
}

impl InterfaceConfig {
    /// Defaults for `mac` at `addr`: MTU 1500, TTL 64, announcements on.
    pub fn new(mac: MacAddr, addr: Ipv4Cidr) -> Self {
        InterfaceConfig {
            mac,
            addr,
            gateway: None,
            routes: Vec::new(),
            mtu: 1500,
            ttl: 64,
            neighbor: NeighborConfig::default(),
            announce: true,
            seed: 0,
        }
    }
}

/// A network interface and everything above it.
pub struct Interface {
    ip: IpLayer,
    rng: SmallRng,
    icmp_sockets: Slab<IcmpSocket>,
    icmp_by_ident: std::collections::HashMap<u16, IcmpHandle>,
    announcements_left: u8,
    next_announcement: Option<Instant>,
    neighbor_actions: Vec<NeighborAction>,
}

impl Interface {
    /// A new interface; `now` starts its clocks.
    pub fn new(config: InterfaceConfig, now: Instant) -> Interface {
        let mut rng = SmallRng::seed_from_u64(config.seed);
        let mut routes = RouteTable::new();
        // The on-link prefix: deliver directly.
        routes.add(Route {
            dest: Ipv4Cidr::new(config.addr.network(), config.addr.prefix_len())
                .unwrap_or(config.addr),
            via: None,
        });
        if let Some(gw) = config.gateway {
            routes.add(Route {
                dest: Ipv4Cidr::new(Ipv4Addr::UNSPECIFIED, 0).unwrap_or(config.addr),
                via: Some(gw),
            });
        }
        for r in &config.routes {
            routes.add(*r);
        }
        let idents = IdentGenerator::new(&mut rng);
        let ip = IpLayer::new(
            config.mac,
            config.addr,
            config.mtu,
            config.ttl,
            routes,
            NeighborCache::new(config.neighbor.clone()),
            idents,
        );
        Interface {
            ip,
            rng,
            icmp_sockets: Slab::new(),
            icmp_by_ident: Default::default(),
            announcements_left: if config.announce { ANNOUNCE_NUM } else { 0 },
            next_announcement: config.announce.then_some(now),
            neighbor_actions: Vec::new(),
        }
    }

    /// Our MAC address.
    pub fn mac(&self) -> MacAddr {
        self.ip.mac
    }

    /// Our IPv4 address and prefix.
    pub fn cidr(&self) -> Ipv4Cidr {
        self.ip.cidr
    }

    /// The link MTU.
    pub fn mtu(&self) -> usize {
        self.ip.mtu
    }

    /// Traffic and drop counters.
    pub fn counters(&self) -> &Counters {
        &self.ip.counters
    }

    /// The neighbor cache (for inspection).
    pub fn neighbors(&self) -> &NeighborCache {
        &self.ip.neighbors
    }

    /// The route table.
    pub fn routes(&self) -> &RouteTable {
        &self.ip.routes
    }

    /// Handles one frame received from the device. Replies (ARP, ICMP, TCP
    /// acknowledgements...) go to `tx` at once.
    pub fn receive_frame<S: FrameSink + ?Sized>(&mut self, now: Instant, frame: &[u8], tx: &mut S) {
        self.ip.counters.frames_in += 1;
        self.ip.counters.bytes_in += frame.len() as u64;
        let (eth, payload) = match EthernetRepr::parse(frame) {
            Ok(x) => x,
            Err(FrameError::Truncated) => return self.ip.counters.drop(DropReason::EthTruncated),
            Err(FrameError::Ieee8023Length) => {
                return self.ip.counters.drop(DropReason::EthIeee8023);
            }
        };
        if eth.dst != self.ip.mac && !eth.dst.is_broadcast() {
            return self.ip.counters.drop(DropReason::EthNotForUs);
        }
        if eth.src.is_multicast() {
            return self.ip.counters.drop(DropReason::EthBadSource);
        }
        match eth.ethertype {
            EtherType::ARP => self.process_arp(now, payload, tx),
            EtherType::IPV4 => self.process_ipv4(now, &eth, payload, tx),
            _ => self.ip.counters.drop(DropReason::EthUnsupportedType),
        }
    }

    fn process_arp<S: FrameSink + ?Sized>(&mut self, now: Instant, payload: &[u8], tx: &mut S) {
        let arp = match ArpRepr::parse(payload) {
            Ok(a) => a,
            Err(ArpError::Truncated | ArpError::BadAddressLength) => {
                return self.ip.counters.drop(DropReason::ArpMalformed);
            }
            Err(_) => return self.ip.counters.drop(DropReason::ArpUnsupported),
        };
        let ours = self.ip.addr();
        if arp.sender_ip == ours && arp.sender_mac != self.ip.mac {
            log::warn!("ARP: {} claims our address {ours}", arp.sender_mac);
            return self.ip.counters.drop(DropReason::ArpAddressConflict);
        }
        if arp.sender_mac.is_multicast() {
            return self.ip.counters.drop(DropReason::ArpMalformed);
        }
        let we_are_target = arp.target_ip == ours;
        // An ARP probe (RFC 5227) has sender 0.0.0.0: nothing to learn.
        if !arp.sender_ip.is_unspecified() {
            if let Some(queued) =
                self.ip
                    .neighbors
                    .learn(now, arp.sender_ip, arp.sender_mac, we_are_target)
            {
                for packet in queued {
                    self.ip.send_raw_ipv4(now, arp.sender_mac, &packet, tx);
                }
            }
        }
        if !we_are_target {
            if arp.op == ArpOp::Request {
                self.ip.counters.drop(DropReason::ArpNotForUs);
            }
            return;
        }
        // RFC 826: "?Is the opcode ares_op$REQUEST? (NOW look at the opcode!!)
        // Yes: Swap hardware and protocol fields ... Send the packet to the
        // (new) target hardware address on the same hardware on which the
        // request was received."
        if arp.op == ArpOp::Request {
            let reply = arp.reply_from(self.ip.mac);
            self.ip.counters.arp_replies_sent += 1;
            self.ip.send_arp(now, arp.sender_mac, reply, tx);
        }
    }

    fn process_ipv4<S: FrameSink + ?Sized>(
        &mut self,
        now: Instant,
        eth: &EthernetRepr,
        payload: &[u8],
        tx: &mut S,
    ) {
        let (repr, data) = match Ipv4Repr::parse(payload) {
            Ok(x) => x,
            Err(e) => {
                return self.ip.counters.drop(match e {
                    Ipv4Error::Truncated => DropReason::Ipv4Truncated,
                    Ipv4Error::BadVersion => DropReason::Ipv4BadVersion,
                    Ipv4Error::BadHeaderLength => DropReason::Ipv4BadHeaderLength,
                    Ipv4Error::BadTotalLength => DropReason::Ipv4BadTotalLength,
                    Ipv4Error::BadChecksum => DropReason::Ipv4BadChecksum,
                });
            }
        };
        // RFC 791: "If this field contains the value zero, then the datagram
        // must be destroyed."
        if repr.ttl == 0 {
            return self.ip.counters.drop(DropReason::Ipv4TtlZero);
        }
        // RFC 1122 3.2.1.3: a host MUST silently discard a datagram whose
        // source is not a unicast address (broadcast, multicast, class E).
        let src = repr.src;
        if src.is_broadcast()
            || src.is_multicast()
            || src.is_unspecified()
            || u32::from(src) >> 28 == 0xf
            || self.ip.is_broadcast(src)
            || src == self.ip.addr()
        {
            return self.ip.counters.drop(DropReason::Ipv4BadSource);
        }
        let to_broadcast = self.ip.is_broadcast(repr.dst);
        if repr.dst != self.ip.addr() && !to_broadcast {
            return self.ip.counters.drop(DropReason::Ipv4NotForUs);
        }
        // RFC 1122 3.3.6: a datagram that arrived as a link-layer broadcast
        // but is addressed to a unicast IP address SHOULD be discarded.
        if eth.dst.is_broadcast() && !to_broadcast {
            return self.ip.counters.drop(DropReason::Ipv4NotForUs);
        }
        if repr.is_fragment() {
            return self.ip.counters.drop(DropReason::Ipv4Fragment);
        }
        self.deliver_ipv4(now, &repr, data, to_broadcast, tx);
    }

    /// Hands a complete datagram to its protocol.
    fn deliver_ipv4<S: FrameSink + ?Sized>(
        &mut self,
        now: Instant,
        repr: &Ipv4Repr,
        data: &[u8],
        to_broadcast: bool,
        tx: &mut S,
    ) {
        match repr.protocol {
            IpProtocol::ICMP => {
                self.ip.counters.ipv4_delivered += 1;
                self.process_icmp(now, repr, data, to_broadcast, tx)
            }
            _ => self.ip.counters.drop(DropReason::Ipv4UnknownProtocol),
        }
    }

    fn process_icmp<S: FrameSink + ?Sized>(
        &mut self,
        now: Instant,
        ip_repr: &Ipv4Repr,
        data: &[u8],
        to_broadcast: bool,
        tx: &mut S,
    ) {
        let msg = match IcmpRepr::parse(data) {
            Ok(m) => m,
            Err(IcmpError::Truncated) => return self.ip.counters.drop(DropReason::IcmpMalformed),
            Err(IcmpError::BadChecksum) => {
                return self.ip.counters.drop(DropReason::IcmpBadChecksum);
            }
        };
        match msg {
            IcmpRepr::EchoRequest { ident, seq, data } => {
                // RFC 1122 3.2.2.6: an echo request to a broadcast address
                // MAY be silently discarded; Linux does so by default.
                if to_broadcast {
                    return self.ip.counters.drop(DropReason::IcmpBroadcastEcho);
                }
                // RFC 792: "the source and destination addresses are simply
                // reversed, the type code changed to 0, and the checksum
                // recomputed." Identifier, sequence and data are echoed.
                let reply = IcmpRepr::EchoReply { ident, seq, data };
                let mut out = Ipv4Repr::new(
                    self.ip.addr(),
                    ip_repr.src,
                    IpProtocol::ICMP,
                    self.ip.ttl,
                    0,
                );
                out.tos = ip_repr.tos;
                if self
                    .ip
                    .send_ipv4(now, out, reply.buffer_len(), |b| reply.emit(b), tx)
                    .is_ok()
                {
                    self.ip.counters.icmp_echo_replies_sent += 1;
                }
            }
            IcmpRepr::EchoReply { ident, seq, data } => {
                let Some(&handle) = self.icmp_by_ident.get(&ident) else {
                    return self.ip.counters.drop(DropReason::IcmpNoSocket);
                };
                let Some(socket) = self.icmp_sockets.get_mut(handle) else {
                    return self.ip.counters.drop(DropReason::IcmpNoSocket);
                };
                let reply = EchoReply {
                    from: ip_repr.src,
                    ident,
                    seq,
                    ttl: ip_repr.ttl,
                    data: data.to_vec(),
                    received_at: now,
                };
                if !socket.push(reply) {
                    self.ip.counters.drop(DropReason::IcmpSocketFull);
                }
            }
            _ => self.ip.counters.drop(DropReason::IcmpUnsupported),
        }
    }

    /// Runs timers and sends what is due: ARP retries and probes, gratuitous
    /// announcements.
    pub fn poll<S: FrameSink + ?Sized>(&mut self, now: Instant, tx: &mut S) {
        if let Some(t) = self.next_announcement
            && now >= t
        {
            let ours = self.ip.addr();
            log::debug!("ARP: announcing {ours} at {}", self.ip.mac);
            self.ip.counters.arp_requests_sent += 1;
            self.ip.send_arp(
                now,
                MacAddr::BROADCAST,
                ArpRepr::gratuitous(self.ip.mac, ours),
                tx,
            );
            self.announcements_left = self.announcements_left.saturating_sub(1);
            self.next_announcement =
                (self.announcements_left > 0).then_some(now + ANNOUNCE_INTERVAL);
        }
        let mut actions = std::mem::take(&mut self.neighbor_actions);
        self.ip.neighbors.poll(now, |a| actions.push(a));
        for action in actions.drain(..) {
            match action {
                NeighborAction::SendRequest { target, dst } => {
                    self.ip.counters.arp_requests_sent += 1;
                    let req = ArpRepr::request(self.ip.mac, self.ip.addr(), target);
                    self.ip
                        .send_arp(now, dst.unwrap_or(MacAddr::BROADCAST), req, tx);
                }
                NeighborAction::Unreachable { target, dropped } => {
                    log::debug!("ARP: {target} did not answer; {dropped} packets dropped");
                    self.ip
                        .counters
                        .drop_n(DropReason::ArpUnresolved, dropped as u64);
                }
            }
        }
        self.neighbor_actions = actions;
    }

    /// When [`poll`](Self::poll) next has work, if ever.
    pub fn poll_at(&self) -> Option<Instant> {
        [self.next_announcement, self.ip.neighbors.poll_at()]
            .into_iter()
            .flatten()
            .min()
    }

    /// Opens an ICMP echo socket with identifier `ident`, or a random free
    /// one. Replies carrying that identifier are queued on it.
    pub fn icmp_open(&mut self, ident: Option<u16>) -> Result<IcmpHandle, SocketError> {
        let ident = match ident {
            Some(id) if self.icmp_by_ident.contains_key(&id) => return Err(SocketError::AddrInUse),
            Some(id) => id,
            None => loop {
                if self.icmp_by_ident.len() >= u16::MAX as usize {
                    return Err(SocketError::AddrInUse);
                }
                let id = rand::Rng::next_u32(&mut self.rng) as u16;
                if !self.icmp_by_ident.contains_key(&id) {
                    break id;
                }
            },
        };
        let handle = self.icmp_sockets.insert(IcmpSocket::new(ident));
        self.icmp_by_ident.insert(ident, handle);
        Ok(handle)
    }

    /// Closes an ICMP socket.
    pub fn icmp_close(&mut self, handle: IcmpHandle) {
        if let Some(s) = self.icmp_sockets.remove(handle) {
            self.icmp_by_ident.remove(&s.ident());
        }
    }

    /// The socket behind `handle`.
    pub fn icmp_socket(&mut self, handle: IcmpHandle) -> Option<&mut IcmpSocket> {
        self.icmp_sockets.get_mut(handle)
    }

    /// Sends an echo request from the socket to `dst`.
    pub fn icmp_send_echo<S: FrameSink + ?Sized>(
        &mut self,
        now: Instant,
        handle: IcmpHandle,
        dst: Ipv4Addr,
        seq: u16,
        data: &[u8],
        tx: &mut S,
    ) -> Result<(), SocketError> {
        let ident = self
            .icmp_sockets
            .get(handle)
            .ok_or(SocketError::BadHandle)?
            .ident();
        let msg = IcmpRepr::EchoRequest { ident, seq, data };
        let repr = Ipv4Repr::new(self.ip.addr(), dst, IpProtocol::ICMP, self.ip.ttl, 0);
        self.ip
            .send_ipv4(now, repr, msg.buffer_len(), |b| msg.emit(b), tx)
            .map_err(SocketError::from)
    }
}

/// Errors of socket operations on the interface.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SocketError {
    /// The handle does not name a live socket.
    BadHandle,
    /// The address (or ICMP identifier, or port) is taken.
    AddrInUse,
    /// No route to the destination.
    NoRoute,
    /// The datagram does not fit.
    MessageTooBig(usize),
}

impl From<SendError> for SocketError {
    fn from(e: SendError) -> Self {
        match e {
            SendError::NoRoute => SocketError::NoRoute,
            SendError::MessageTooBig(m) => SocketError::MessageTooBig(m),
        }
    }
}

impl std::fmt::Display for SocketError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SocketError::BadHandle => f.write_str("no such socket"),
            SocketError::AddrInUse => f.write_str("address in use"),
            SocketError::NoRoute => f.write_str("no route to host"),
            SocketError::MessageTooBig(mtu) => write!(f, "message too long (MTU {mtu})"),
        }
    }
}

impl std::error::Error for SocketError {}

#[cfg(test)]
mod tests;
