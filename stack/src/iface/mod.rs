//! The interface: one Ethernet attachment with one IPv4 address, its ARP
//! cache, routes, reassembly, sockets and counters. Sans-IO apart from the
//! frames it is handed and the [`FrameSink`] it writes to: the same code runs
//! on a TAP device and in a simulated network with a virtual clock.
//!
//! Layering, top to bottom, and who owns what:
//! - [`Interface`] (this file): the receive path (Ethernet, ARP, IPv4
//!   checks, reassembly, dispatch to the protocols), polling, events, the
//!   memory budget and the interface-wide [`Counters`], which count every
//!   layer and so belong to the interface;
//! - the sockets: their tables and demultiplexing in one member
//!   (`socket_set`: TCP table, UDP sockets and ports, ICMP sockets), the
//!   protocol code as methods on the interface over it: TCP (`tcp/`:
//!   table, input, output, timers, calls, listeners, resources), UDP
//!   (`udp`, `udp_socket`) and ICMP (`icmp`, `icmp_socket`);
//! - [`IpLayer`] (`ip_layer`): IPv4 output, ARP resolution and Ethernet
//!   framing down to the [`FrameSink`]. Sockets call into it to send and
//!   lend it the counters (`&mut Counters`) for the call; it never calls
//!   back up.

mod icmp;
mod icmp_socket;
mod ip_layer;
mod loopback;
mod snapshot;
mod socket_set;
mod tcp;
mod udp;
mod udp_socket;

pub use icmp_socket::{EchoReply, IcmpHandle, IcmpSocket};
pub use ip_layer::{IpLayer, SendError};
pub use snapshot::{SocketInfo, SocketKind, ss_state_name};
pub use tcp::{ListenerHandle, SynCookieMode, TcpHandle, TcpLimits, TcpListener, TcpSocket};
pub use udp_socket::{DEFAULT_RCVBUF, UdpHandle, UdpSocket};

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use arp::{ArpError, ArpOp, ArpRepr, NeighborAction, NeighborCache, NeighborConfig};
use ethernet::{EtherType, EthernetRepr, FrameError, MacAddr};
use ip::{
    Expired, IpProtocol, Ipv4Cidr, Ipv4Error, Ipv4Repr, Reassembler, ReassemblyConfig,
    ReassemblyError, Route, RouteTable,
};
use rand::SeedableRng;
use rand::rngs::SmallRng;

use crate::counters::{Counters, DropReason};
use crate::device::{FrameSink, Medium};
use crate::memory::{Component, MemoryBudget, MemoryPressure, MemoryStats};
use icmp::TokenBucket;
use ip_layer::IdentGenerator;
use socket_set::SocketSet;

/// RFC 5227: ANNOUNCE_NUM announcements, ANNOUNCE_INTERVAL apart.
const ANNOUNCE_NUM: u8 = 2;
const ANNOUNCE_INTERVAL: Duration = Duration::from_secs(2);

/// How an interface is set up.
#[derive(Clone, Debug)]
pub struct InterfaceConfig {
    /// What the device's frames are: Ethernet (ARP, MAC addresses) or bare
    /// IP packets (a TUN device: no link header, no ARP; `mac`, `neighbor`
    /// and `announce` are then unused). It must match the device's
    /// [`FrameSink::medium`].
    pub medium: Medium,
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
    /// Reassembly limits.
    pub reassembly: ReassemblyConfig,
    /// ICMP errors per second we may send (token bucket rate), and the burst.
    pub icmp_error_rate: (u32, u32),
    /// Receive buffer of new UDP sockets, in bytes.
    pub udp_rcvbuf: usize,
    /// TCP settings for new connections (the MSS is derived from the MTU).
    pub tcp: ::tcp::TcpConfig,
    /// Limits on TCP state peers can make the stack hold (SYN cookies,
    /// TIME-WAIT records, orphans).
    pub tcp_limits: TcpLimits,
    /// The memory budget for everything peers can make the stack hold
    /// (see [`crate::memory`]), in bytes.
    pub mem_limit: usize,
    /// Send gratuitous ARP announcements at start-up.
    pub announce: bool,
    /// Seed for everything random (identification, ports, ISNs): the same
    /// seed and the same inputs give the same outputs.
    pub seed: u64,
}

impl InterfaceConfig {
    /// Defaults for `mac` at `addr`: MTU 1500, TTL 64, announcements on,
    /// ICMP errors limited like Linux (1000/s, burst 50).
    pub fn new(mac: MacAddr, addr: Ipv4Cidr) -> Self {
        InterfaceConfig {
            medium: Medium::Ethernet,
            mac,
            addr,
            gateway: None,
            routes: Vec::new(),
            mtu: 1500,
            ttl: 64,
            neighbor: NeighborConfig::default(),
            reassembly: ReassemblyConfig::default(),
            icmp_error_rate: (1000, 50),
            udp_rcvbuf: DEFAULT_RCVBUF,
            tcp: ::tcp::TcpConfig::default(),
            tcp_limits: TcpLimits::default(),
            mem_limit: crate::memory::DEFAULT_MEM_LIMIT,
            announce: true,
            seed: 0,
        }
    }
}

/// A socket whose state may have changed: data or end of stream to read,
/// room to write, an error, a connection to accept. Events are hints, like
/// epoll's edge-triggered ones: the application tries the operation and
/// takes WouldBlock as "nothing after all".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Event {
    /// A TCP connection.
    Tcp(TcpHandle),
    /// A listener with connections to accept.
    Listener(ListenerHandle),
    /// A UDP socket with datagrams or an error.
    Udp(UdpHandle),
    /// An ICMP echo socket with replies.
    Icmp(IcmpHandle),
}

/// Why a configuration was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// A network interface and everything above it.
pub struct Interface {
    ip: IpLayer,
    /// Traffic, drop and defence counters of every layer (the IP layer
    /// gets them lent for each send).
    counters: Counters,
    rng: SmallRng,
    reassembler: Reassembler,
    reassembly_evictions_seen: u64,
    icmp_limiter: TokenBucket,
    /// The sockets (TCP, UDP, ICMP) and their demultiplexing tables.
    sockets: SocketSet,
    announcements_left: u8,
    next_announcement: Option<Instant>,
    neighbor_actions: Vec<NeighborAction>,
    expired: Vec<Expired>,
    /// The `now` of the latest call, for "due immediately" deadlines.
    last_poll: Instant,
    /// Sockets whose state may have changed since the last drain.
    events: Vec<Event>,
    /// The frame being received is a TCP segment whose checksum the device
    /// vouches for (see [`receive_frame_from`](Self::receive_frame_from)).
    rx_checksum_trusted: bool,
    /// The memory budget.
    mem: MemoryBudget,
    /// ARP statistics already folded into the counters.
    arp_stats_seen: arp::NeighborStats,
}

impl Interface {
    /// A new interface; `now` starts its clocks.
    ///
    /// # Panics
    /// If the configuration is invalid; use [`try_new`](Self::try_new) to get
    /// an error instead.
    pub fn new(config: InterfaceConfig, now: Instant) -> Interface {
        match Self::try_new(config, now) {
            Ok(iface) => iface,
            Err(e) => panic!("invalid interface configuration: {e}"),
        }
    }

    /// A new interface, or why the configuration is unusable (a gateway that
    /// is not on the link, an MTU below 68).
    pub fn try_new(config: InterfaceConfig, now: Instant) -> Result<Interface, ConfigError> {
        if config.mtu < 68 || config.mtu > Ipv4Repr::MAX_PACKET_LEN {
            return Err(ConfigError(format!(
                "MTU {} is outside 68..=65535 (RFC 791 minimum is 68)",
                config.mtu
            )));
        }
        if config.ttl == 0 {
            return Err(ConfigError(
                "TTL must be at least 1 (RFC 1122 3.2.1.7)".into(),
            ));
        }
        let mut rng = SmallRng::seed_from_u64(config.seed);
        let mut routes = RouteTable::new();
        let on_link = Ipv4Cidr::new(config.addr.network(), config.addr.prefix_len())
            .ok_or_else(|| ConfigError("bad prefix".into()))?;
        // The on-link prefix: deliver directly.
        routes.add(Route {
            dest: on_link,
            via: None,
        });
        // The loopback network (RFC 1122 3.2.1.3 (g)), like Linux's `lo`
        // route: packets to it never reach the link (the IP layer delivers
        // them locally before routing), but connect and the listeners' "is
        // there a route back" checks find it here.
        routes.add(Route {
            dest: Ipv4Cidr::new(Ipv4Addr::new(127, 0, 0, 0), 8).expect("valid"),
            via: None,
        });
        let check_gw = |gw: Ipv4Addr| {
            if on_link.contains(gw) && gw != config.addr.addr() {
                Ok(())
            } else {
                Err(ConfigError(format!(
                    "gateway {gw} is not a neighbor on {on_link}"
                )))
            }
        };
        if let Some(gw) = config.gateway {
            check_gw(gw)?;
            routes.add(Route {
                dest: Ipv4Cidr::new(Ipv4Addr::UNSPECIFIED, 0).expect("valid"),
                via: Some(gw),
            });
        }
        for r in &config.routes {
            if let Some(gw) = r.via {
                check_gw(gw)?;
            }
            routes.add(*r);
        }
        let idents = IdentGenerator::new(&mut rng);
        let mut tcp_cfg = config.tcp.clone();
        tcp_cfg.mss = (config.mtu - 40).min(u16::MAX as usize) as u16;
        let isn_key = (rand::Rng::next_u64(&mut rng), rand::Rng::next_u64(&mut rng));
        // The SYN cookie secret is derived from the ISN secret (a keyed
        // hash of it), so that seeded runs keep drawing the same numbers.
        let cookie_key = {
            use std::hash::Hasher;
            let mut h = siphasher::sip::SipHasher24::new_with_keys(isn_key.1, isn_key.0);
            h.write(b"ustack syn cookies");
            let a = h.finish();
            h.write_u64(a);
            (a, h.finish())
        };
        let announce = config.announce && config.medium == Medium::Ethernet;
        let ip = IpLayer::new(
            config.medium,
            config.mac,
            config.addr,
            config.mtu,
            config.ttl,
            routes,
            NeighborCache::new(config.neighbor.clone()),
            idents,
        );
        Ok(Interface {
            ip,
            counters: Counters::default(),
            rng,
            reassembler: Reassembler::new(config.reassembly.clone()),
            reassembly_evictions_seen: 0,
            rx_checksum_trusted: false,
            icmp_limiter: TokenBucket::new(config.icmp_error_rate.0, config.icmp_error_rate.1, now),
            sockets: SocketSet::new(
                tcp::TcpTable::new(tcp_cfg, config.tcp_limits, isn_key, cookie_key, now),
                config.udp_rcvbuf,
            ),
            mem: MemoryBudget::new(config.mem_limit),
            arp_stats_seen: arp::NeighborStats::default(),
            announcements_left: if announce { ANNOUNCE_NUM } else { 0 },
            next_announcement: announce.then_some(now),
            neighbor_actions: Vec::new(),
            expired: Vec::new(),
            last_poll: now,
            events: Vec::new(),
        })
    }

    /// Our MAC address (unused on an IP link).
    pub fn mac(&self) -> MacAddr {
        self.ip.mac
    }

    /// What the device's frames are (see [`InterfaceConfig::medium`]).
    pub fn medium(&self) -> Medium {
        self.ip.medium
    }

    /// Our IPv4 address and prefix.
    pub fn cidr(&self) -> Ipv4Cidr {
        self.ip.cidr
    }

    /// The TTL of packets whose socket set none (IP_TTL's default).
    pub fn default_ttl(&self) -> u8 {
        self.ip.ttl
    }

    /// Tells the interface that its device cuts TCP super segments itself
    /// ([`Device::segmentation_offload`](crate::device::Device::segmentation_offload)):
    /// TCP then hands it up to 64 KiB of new data per frame.
    pub fn set_segmentation_offload(&mut self, on: bool) {
        self.ip.segmentation_offload = on;
    }

    /// The link MTU.
    pub fn mtu(&self) -> usize {
        self.ip.mtu
    }

    /// The MTU towards `dst` (link MTU or a smaller learned path MTU).
    pub fn path_mtu(&self, now: Instant, dst: Ipv4Addr) -> usize {
        self.ip.path_mtu(now, dst)
    }

    /// Traffic, drop and defence counters, with the memory budget's
    /// figures.
    pub fn counters(&self) -> Counters {
        let mut c = self.counters.clone();
        c.memory = self.mem.stats();
        c
    }

    /// The memory budget's figures.
    pub fn memory(&self) -> MemoryStats {
        self.mem.stats()
    }

    /// Changes the memory budget's limit.
    pub fn set_mem_limit(&mut self, bytes: usize) {
        let mut budget = MemoryBudget::new(bytes);
        for c in [
            Component::Tcp,
            Component::TimeWait,
            Component::Reassembly,
            Component::Arp,
            Component::Udp,
        ] {
            budget.set(c, self.mem.part(c));
        }
        let before = self.mem.state();
        self.mem = budget;
        if self.mem.state() != before {
            self.mem_state_changed(Some(before));
        }
    }

    /// The neighbor cache (for inspection).
    pub fn neighbors(&self) -> &NeighborCache {
        &self.ip.neighbors
    }

    /// The reassembler (for inspection: held bytes, partial datagrams).
    pub fn reassembler(&self) -> &Reassembler {
        &self.reassembler
    }

    /// The route table.
    pub fn routes(&self) -> &RouteTable {
        &self.ip.routes
    }

    /// Handles one frame received from the device. Replies (ARP, ICMP, TCP
    /// acknowledgements...) go to `tx` at once.
    ///
    /// Traffic to ourselves never goes through here nor through `tx`:
    /// packets to our own address or to 127.0.0.0/8 are delivered by the
    /// next [`poll`](Self::poll) (local delivery, like Linux's `lo`), so a
    /// capture of the device (pcap) does not show them.
    pub fn receive_frame<S: FrameSink + ?Sized>(&mut self, now: Instant, frame: &[u8], tx: &mut S) {
        self.receive_frame_from(now, frame, false, tx);
    }

    /// [`receive_frame`](Self::receive_frame) for a frame from a device
    /// that may vouch for its TCP checksum: with `checksum_trusted` (what
    /// [`Device::rx_checksum_trusted`](crate::Device::rx_checksum_trusted)
    /// said of it), a TCP segment in it is taken without verifying its
    /// checksum, as Linux takes `CHECKSUM_PARTIAL` data. Nothing else is
    /// trusted: IP header checks, fragments and other protocols are as for
    /// any frame.
    pub fn receive_frame_from<S: FrameSink + ?Sized>(
        &mut self,
        now: Instant,
        frame: &[u8],
        checksum_trusted: bool,
        tx: &mut S,
    ) {
        self.rx_checksum_trusted = checksum_trusted;
        self.receive_one(now, frame, tx);
        self.rx_checksum_trusted = false;
    }

    fn receive_one<S: FrameSink + ?Sized>(&mut self, now: Instant, frame: &[u8], tx: &mut S) {
        self.last_poll = self.last_poll.max(now);
        self.counters.frames_in += 1;
        self.counters.bytes_in += frame.len() as u64;
        if self.ip.medium == Medium::Ip {
            // A bare IP packet: the version nibble says which.
            return match frame.first().map(|b| b >> 4) {
                Some(4) => self.process_ipv4(now, false, frame, tx),
                Some(6) => self.counters.drop(DropReason::IpNotIpv4),
                Some(_) => self.counters.drop(DropReason::Ipv4BadVersion),
                None => self.counters.drop(DropReason::Ipv4Truncated),
            };
        }
        let (eth, payload) = match EthernetRepr::parse(frame) {
            Ok(x) => x,
            Err(FrameError::Truncated) => return self.counters.drop(DropReason::EthTruncated),
            Err(FrameError::Ieee8023Length) => {
                return self.counters.drop(DropReason::EthIeee8023);
            }
        };
        if eth.dst != self.ip.mac && !eth.dst.is_broadcast() {
            return self.counters.drop(DropReason::EthNotForUs);
        }
        if eth.src.is_multicast() {
            return self.counters.drop(DropReason::EthBadSource);
        }
        match eth.ethertype {
            EtherType::ARP => self.process_arp(now, payload, tx),
            EtherType::IPV4 => self.process_ipv4(now, eth.dst.is_broadcast(), payload, tx),
            _ => self.counters.drop(DropReason::EthUnsupportedType),
        }
    }

    fn process_arp<S: FrameSink + ?Sized>(&mut self, now: Instant, payload: &[u8], tx: &mut S) {
        let arp = match ArpRepr::parse(payload) {
            Ok(a) => a,
            Err(ArpError::Truncated | ArpError::BadAddressLength) => {
                return self.counters.drop(DropReason::ArpMalformed);
            }
            Err(_) => return self.counters.drop(DropReason::ArpUnsupported),
        };
        let ours = self.ip.addr();
        if arp.sender_ip == ours && arp.sender_mac != self.ip.mac {
            log::warn!("ARP: {} claims our address {ours}", arp.sender_mac);
            return self.counters.drop(DropReason::ArpAddressConflict);
        }
        if arp.sender_mac.is_multicast() {
            return self.counters.drop(DropReason::ArpMalformed);
        }
        let we_are_target = arp.target_ip == ours;
        // Learn only neighbors on our own prefix: a sender elsewhere can
        // only be spoofed or misconfigured, and we would never send to it
        // directly (routes go through a gateway). An ARP probe (RFC 5227)
        // has sender 0.0.0.0: nothing to learn either.
        let on_link = self.ip.cidr.contains(arp.sender_ip);
        if !on_link && !arp.sender_ip.is_unspecified() {
            self.counters.defenses.arp_foreign_senders += 1;
        }
        if on_link
            && !arp.sender_ip.is_unspecified()
            && let Some(queued) =
                self.ip
                    .neighbors
                    .learn(now, arp.sender_ip, arp.sender_mac, we_are_target)
        {
            for packet in queued {
                self.ip
                    .send_raw_ipv4(&mut self.counters, now, arp.sender_mac, &packet, tx);
            }
        }
        self.sync_arp();
        if !we_are_target {
            if arp.op == ArpOp::Request {
                self.counters.drop(DropReason::ArpNotForUs);
            }
            return;
        }
        // RFC 826: "?Is the opcode ares_op$REQUEST? (NOW look at the opcode!!)
        // Yes: Swap hardware and protocol fields ... Send the packet to the
        // (new) target hardware address on the same hardware on which the
        // request was received."
        if arp.op == ArpOp::Request {
            let reply = arp.reply_from(self.ip.mac);
            self.counters.arp_replies_sent += 1;
            self.ip
                .send_arp(&mut self.counters, now, arp.sender_mac, reply, tx);
        }
    }

    /// An IPv4 packet from the link; `link_broadcast` when its frame was a
    /// link-layer broadcast (never on an IP link).
    fn process_ipv4<S: FrameSink + ?Sized>(
        &mut self,
        now: Instant,
        link_broadcast: bool,
        payload: &[u8],
        tx: &mut S,
    ) {
        let (repr, data) = match Ipv4Repr::parse(payload) {
            Ok(x) => x,
            Err(e) => {
                return self.counters.drop(match e {
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
            return self.counters.drop(DropReason::Ipv4TtlZero);
        }
        // RFC 1122 3.2.1.3: a host MUST silently discard a datagram whose
        // source is not a unicast address (broadcast, multicast, class E).
        // Martians (RFC 1812 5.3.7, Linux's `log_martians`): "this host on
        // this network" (0/8) and loopback (127/8) never arrive from a
        // wire either.
        // RFC 1122 3.2.1.3 (g): "{ 127, <any> } Internal host loopback
        // address. Addresses of this form MUST NOT appear outside a host."
        // A loopback destination from the wire is a martian too (Linux
        // drops it unless `route_localnet`); a loopback source with another
        // destination is counted with the other bad sources below.
        if repr.dst.is_loopback() {
            return self.counters.drop(DropReason::Ipv4MartianDestination);
        }
        let src = repr.src;
        let first = src.octets()[0];
        if src.is_broadcast()
            || src.is_multicast()
            || first == 0
            || first == 127
            || u32::from(src) >> 28 == 0xf
            || self.ip.is_broadcast(src)
            || src == self.ip.addr()
        {
            return self.counters.drop(DropReason::Ipv4BadSource);
        }
        let to_broadcast = self.ip.is_broadcast(repr.dst);
        if repr.dst != self.ip.addr() && !to_broadcast {
            return self.counters.drop(DropReason::Ipv4NotForUs);
        }
        // RFC 1122 3.3.6: a datagram that arrived as a link-layer broadcast
        // but is addressed to a unicast IP address SHOULD be discarded.
        if link_broadcast && !to_broadcast {
            return self.counters.drop(DropReason::Ipv4NotForUs);
        }
        let header = &payload[..repr.header_len];
        if repr.is_fragment() {
            self.rx_checksum_trusted = false;
            self.counters.fragments_received += 1;
            // The stack's budget: when it is spent, fragments (which need
            // memory until their datagram completes) are dropped first.
            if self.mem.state() == MemoryPressure::Exhausted {
                return self.counters.drop(DropReason::FragNoBudget);
            }
            let result = self.reassembler.push(now, &repr, header, data);
            self.sync_reassembly_evictions();
            let changed = self
                .mem
                .set(Component::Reassembly, self.reassembler.memory_used());
            self.mem_state_changed(changed);
            match result {
                Ok(Some(datagram)) => {
                    self.counters.reassembled += 1;
                    self.deliver_ipv4(
                        now,
                        &datagram.repr,
                        None,
                        &datagram.payload,
                        to_broadcast,
                        tx,
                    );
                }
                Ok(None) => {}
                Err(e) => self.counters.drop(match e {
                    ReassemblyError::BadFragmentLength => DropReason::FragBadLength,
                    ReassemblyError::TooLong => DropReason::FragTooLong,
                    ReassemblyError::OverlapConflict => DropReason::FragOverlapConflict,
                    ReassemblyError::InconsistentLength => DropReason::FragInconsistent,
                    ReassemblyError::NoMemory => DropReason::FragNoMemory,
                    ReassemblyError::TooManyPieces => DropReason::FragTooManyPieces,
                }),
            }
            return;
        }
        self.deliver_ipv4(now, &repr, Some(header), data, to_broadcast, tx);
    }

    fn sync_reassembly_evictions(&mut self) {
        let evicted = self.reassembler.stats().evicted;
        if evicted > self.reassembly_evictions_seen {
            self.counters.drop_n(
                DropReason::FragEvicted,
                evicted - self.reassembly_evictions_seen,
            );
            self.reassembly_evictions_seen = evicted;
        }
    }

    /// Hands a complete datagram to its protocol. `header` is the raw header
    /// when the datagram arrived whole (for quoting in ICMP errors).
    fn deliver_ipv4<S: FrameSink + ?Sized>(
        &mut self,
        now: Instant,
        repr: &Ipv4Repr,
        header: Option<&[u8]>,
        data: &[u8],
        to_broadcast: bool,
        tx: &mut S,
    ) {
        match repr.protocol {
            IpProtocol::ICMP => {
                self.counters.ipv4_delivered += 1;
                self.process_icmp(now, repr, data, to_broadcast, tx)
            }
            IpProtocol::UDP => {
                self.counters.ipv4_delivered += 1;
                self.process_udp(now, repr, header, data, to_broadcast, tx)
            }
            IpProtocol::TCP => {
                self.counters.ipv4_delivered += 1;
                self.process_tcp(now, repr, data, to_broadcast, tx)
            }
            _ => {
                self.counters.drop(DropReason::Ipv4UnknownProtocol);
                // RFC 1122 3.2.2.1: a host SHOULD generate Protocol
                // Unreachable for a transport protocol it does not support.
                self.send_icmp_error(
                    now,
                    icmp::ErrorKind::ProtocolUnreachable,
                    repr,
                    header,
                    data,
                    to_broadcast,
                    tx,
                );
            }
        }
    }

    /// Runs timers and sends what is due: ARP retries and probes, gratuitous
    /// announcements, reassembly timeouts; delivers the packets the stack
    /// sent to itself (a bounded number of rounds: [`needs_poll`](Self::needs_poll)
    /// stays true while some are left).
    pub fn poll<S: FrameSink + ?Sized>(&mut self, now: Instant, tx: &mut S) {
        self.last_poll = self.last_poll.max(now);
        if let Some(t) = self.next_announcement
            && now >= t
        {
            let ours = self.ip.addr();
            log::debug!("ARP: announcing {ours} at {}", self.ip.mac);
            self.counters.arp_requests_sent += 1;
            self.ip.send_arp(
                &mut self.counters,
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
        self.ip.resolution_queued = false;
        self.ip.neighbors.poll(now, |a| actions.push(a));
        for action in actions.drain(..) {
            match action {
                NeighborAction::SendRequest { target, dst } => {
                    self.counters.arp_requests_sent += 1;
                    let req = ArpRepr::request(self.ip.mac, self.ip.addr(), target);
                    self.ip.send_arp(
                        &mut self.counters,
                        now,
                        dst.unwrap_or(MacAddr::BROADCAST),
                        req,
                        tx,
                    );
                }
                NeighborAction::Unreachable {
                    target,
                    dropped,
                    packets,
                } => {
                    log::debug!("ARP: {target} did not answer; {dropped} packets dropped");
                    self.counters
                        .drop_n(DropReason::ArpUnresolved, dropped as u64);
                    for packet in &packets {
                        self.link_failure(now, packet);
                    }
                }
            }
        }
        self.neighbor_actions = actions;
        self.sync_arp();
        self.tcp_poll(now, tx);
        self.poll_loopback(now, tx);
        if self.reassembler.poll_at().is_some_and(|t| now >= t) {
            let mut expired = std::mem::take(&mut self.expired);
            self.reassembler.poll(now, |e| expired.push(e));
            for e in expired.drain(..) {
                self.counters.drop(DropReason::FragTimeout);
                self.reassembly_timed_out(now, e, tx);
            }
            self.expired = expired;
            let changed = self
                .mem
                .set(Component::Reassembly, self.reassembler.memory_used());
            self.mem_state_changed(changed);
        }
    }

    /// Folds the neighbor cache's statistics into the counters and charges
    /// its memory (entries and packets waiting for resolution) to the
    /// budget; tells the IP layer whether it may queue more.
    fn sync_arp(&mut self) {
        let stats = self.ip.neighbors.stats();
        if stats != self.arp_stats_seen {
            let old = std::mem::replace(&mut self.arp_stats_seen, stats);
            let d = &mut self.counters.defenses;
            d.arp_evictions += stats.evictions() - old.evictions();
            d.arp_mac_changes += stats.mac_changes - old.mac_changes;
            d.arp_mac_changes_locked += stats.mac_changes_refused - old.mac_changes_refused;
        }
        let changed = self
            .mem
            .set(Component::Arp, self.ip.neighbors.memory_used());
        self.mem_state_changed(changed);
        self.ip.queue_allowed = self.mem.state() != MemoryPressure::Exhausted;
    }

    /// Moves the pending events into `out` (which is cleared first). Each
    /// socket appears at most once per drain.
    pub fn take_events(&mut self, out: &mut Vec<Event>) {
        out.clear();
        std::mem::swap(out, &mut self.events);
        for e in out.iter() {
            if let Event::Tcp(h) = *e {
                self.tcp_event_taken(h);
            }
        }
    }

    /// True when events are waiting.
    pub fn has_events(&self) -> bool {
        !self.events.is_empty()
    }

    /// True when [`poll`](Self::poll) has work to do right away (an
    /// application call queued a transmission, a packet waits for an ARP
    /// request that poll sends, or packets to ourselves wait for local
    /// delivery).
    pub fn needs_poll(&self) -> bool {
        self.tcp_has_ready() || !self.ip.loopback.is_empty() || self.ip.resolution_queued
    }

    /// When [`poll`](Self::poll) next has work, if ever.
    pub fn poll_at(&self) -> Option<Instant> {
        let now = self.last_poll;
        [
            // Local delivery is due at once.
            (!self.ip.loopback.is_empty()).then_some(now),
            self.next_announcement,
            self.ip.neighbors.poll_at(),
            self.reassembler.poll_at(),
            self.sockets.tcp.poll_at(now),
        ]
        .into_iter()
        .flatten()
        .min()
    }
}

#[cfg(test)]
mod tests;
