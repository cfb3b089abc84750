//! The lower half of the interface: IPv4 output (source choice, routing,
//! identification, path MTU, fragmentation, the queue of packets to
//! ourselves) and the link below it (next-hop resolution through the ARP
//! cache, Ethernet framing, the device). Sockets call into it to send; it
//! never calls back into sockets, so the two borrow independently.
//!
//! It owns no counters: the interface does (they count every layer), and
//! lends them (`&mut Counters`) to each send that counts something.
use std::net::Ipv4Addr;
use std::time::Instant;

use arp::{ArpRepr, Lookup, NeighborCache, QueueError};
use ethernet::{EtherType, EthernetRepr, MacAddr};
use ip::reassembly::fragments;
use ip::{Ipv4Cidr, Ipv4Repr, PmtuCache, RouteTable};

use super::loopback::LoopbackQueue;
use crate::counters::{Counters, DropReason};
use crate::device::{FrameSink, Medium};

/// The source of loopback traffic (RFC 1122 3.2.1.3 (g)).
const LOOPBACK_ADDR: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// Why a datagram could not be sent.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SendError {
    /// No route covers the destination (ENETUNREACH).
    NoRoute,
    /// Larger than the path MTU with DF set, or larger than an IPv4 datagram
    /// can be (EMSGSIZE). Carries the MTU that applies.
    MessageTooBig(usize),
}

/// Per-destination IP identification counters (RFC 6864 asks for IDs unique
/// per (source, destination, protocol) over the datagram lifetime). Like
/// Linux, destinations hash into a fixed table of counters that start at
/// random values, so memory is bounded and IDs for one destination do not
/// repeat until 65,536 datagrams later.
pub(crate) struct IdentGenerator {
    counters: Box<[u16]>,
    key: u64,
}

impl IdentGenerator {
    const BUCKETS: usize = 2048;

    pub(crate) fn new(rng: &mut impl rand::Rng) -> Self {
        let counters = (0..Self::BUCKETS).map(|_| rng.next_u32() as u16).collect();
        IdentGenerator {
            counters,
            key: rng.next_u64(),
        }
    }

    pub(crate) fn next(&mut self, dst: Ipv4Addr, protocol: u8) -> u16 {
        let mut h = (u32::from(dst) as u64 | (protocol as u64) << 32) ^ self.key;
        h = h.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let bucket = (h >> 53) as usize % Self::BUCKETS;
        let id = self.counters[bucket];
        self.counters[bucket] = id.wrapping_add(1);
        id
    }
}

/// IPv4 output, ARP and Ethernet state of one interface (see the module
/// docs); the counters it bumps are lent by the [`Interface`](super::Interface).
pub struct IpLayer {
    /// Ethernet (ARP, framing) or bare IP packets (neither).
    pub(crate) medium: Medium,
    pub(crate) mac: MacAddr,
    pub(crate) cidr: Ipv4Cidr,
    pub(crate) mtu: usize,
    pub(crate) ttl: u8,
    pub(crate) routes: RouteTable,
    pub(crate) neighbors: NeighborCache,
    pub(crate) idents: IdentGenerator,
    pub(crate) pmtu: PmtuCache,
    /// Scratch space for building one frame; reused, never reallocated after
    /// start-up.
    tx_buf: Vec<u8>,
    /// Scratch space for a datagram about to be fragmented.
    frag_buf: Vec<u8>,
    /// The device segments TCP super segments itself.
    pub(crate) segmentation_offload: bool,
    /// Packets may wait for address resolution (false while the stack's
    /// memory budget is exhausted).
    pub(crate) queue_allowed: bool,
    /// A packet was queued for resolution since the last poll: the ARP
    /// request for it goes out from the neighbour cache's poll, so the
    /// interface needs one soon even when the packet was sent from an
    /// application thread (see [`Interface::needs_poll`]).
    pub(crate) resolution_queued: bool,
    /// Packets to ourselves, waiting for the next poll (see
    /// [`super::loopback`]).
    pub(crate) loopback: LoopbackQueue,
}

impl IpLayer {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        medium: Medium,
        mac: MacAddr,
        cidr: Ipv4Cidr,
        mtu: usize,
        ttl: u8,
        routes: RouteTable,
        neighbors: NeighborCache,
        idents: IdentGenerator,
    ) -> Self {
        IpLayer {
            medium,
            mac,
            cidr,
            mtu,
            ttl,
            routes,
            neighbors,
            idents,
            pmtu: PmtuCache::new(),
            tx_buf: vec![0u8; EthernetRepr::HEADER_LEN + Ipv4Repr::MAX_PACKET_LEN],
            frag_buf: vec![0u8; Ipv4Repr::MAX_PACKET_LEN],
            segmentation_offload: false,
            queue_allowed: true,
            resolution_queued: false,
            loopback: LoopbackQueue::new(),
        }
    }

    /// Our address.
    pub fn addr(&self) -> Ipv4Addr {
        self.cidr.addr()
    }

    /// True for the addresses of this host: ours and the loopback network
    /// 127.0.0.0/8 (Linux's `local` routing table). Packets to them are
    /// delivered locally, never sent to the device.
    pub(crate) fn is_local(&self, ip: Ipv4Addr) -> bool {
        ip == self.addr() || ip.is_loopback()
    }

    /// The source address for a datagram to `dst` from a socket not bound
    /// to a specific address: 127.0.0.1 towards the loopback network, our
    /// address otherwise (Linux picks the preferred source of the route:
    /// 127.0.0.1 on `lo`).
    pub(crate) fn source_for(&self, dst: Ipv4Addr) -> Ipv4Addr {
        if dst.is_loopback() {
            LOOPBACK_ADDR
        } else {
            self.addr()
        }
    }

    /// The source a datagram from `requested` to `dst` goes out with:
    /// `requested` when it is one of our addresses (a bound socket or a
    /// connection, whose transport checksum covers it), else the one
    /// [`source_for`](Self::source_for) picks. A loopback source towards
    /// another host is refused: RFC 1122 3.2.1.3 (g), 127/8 addresses "MUST
    /// NOT appear outside a host".
    fn pick_source(
        &mut self,
        counters: &mut Counters,
        requested: Ipv4Addr,
        dst: Ipv4Addr,
    ) -> Result<Ipv4Addr, SendError> {
        let src = if self.is_local(requested) {
            requested
        } else {
            self.source_for(dst)
        };
        if src.is_loopback() && !self.is_local(dst) {
            counters.drop(DropReason::LoopbackSourceOffHost);
            return Err(SendError::NoRoute);
        }
        Ok(src)
    }

    /// Queues a datagram to ourselves for the next poll (see
    /// [`super::loopback`]); `repr` is complete but for the length.
    /// Nothing reaches the device: no ARP, no frame, no capture. A full
    /// queue drops the packet and counts it, as a full device would.
    fn send_local(
        &mut self,
        counters: &mut Counters,
        mut repr: Ipv4Repr,
        payload_len: usize,
        checksum_trusted: bool,
        fill: impl FnOnce(&mut [u8]),
    ) {
        repr.header_len = Ipv4Repr::MIN_HEADER_LEN;
        repr.payload_len = payload_len;
        let total = Ipv4Repr::MIN_HEADER_LEN + payload_len;
        let queued = self.loopback.push_with(total, checksum_trusted, |buf| {
            repr.emit(buf);
            fill(&mut buf[Ipv4Repr::MIN_HEADER_LEN..]);
        });
        if queued {
            counters.ipv4_sent += 1;
        } else {
            counters.drop(DropReason::LoopbackQueueFull);
        }
    }

    /// True for the limited broadcast and our subnet's directed broadcast.
    pub(crate) fn is_broadcast(&self, ip: Ipv4Addr) -> bool {
        ip.is_broadcast() || self.cidr.broadcast() == Some(ip)
    }

    /// Sends one Ethernet frame whose payload `fill` writes (`len` bytes).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn send_frame<S: FrameSink + ?Sized>(
        &mut self,
        counters: &mut Counters,
        now: Instant,
        dst: MacAddr,
        ethertype: EtherType,
        len: usize,
        fill: impl FnOnce(&mut [u8]),
        tx: &mut S,
    ) {
        self.transmit(counters, now, dst, ethertype, len, None, fill, tx);
    }

    /// Frames `len` payload bytes written by `fill` and hands the frame to
    /// the device: whole, or with `gso_mss` as a TCP super segment the
    /// device cuts into segments of that many payload bytes. On an IP link
    /// there is no frame header: the payload (an IP packet) is the frame,
    /// and `dst` and `ethertype` are unused.
    #[allow(clippy::too_many_arguments)]
    fn transmit<S: FrameSink + ?Sized>(
        &mut self,
        counters: &mut Counters,
        now: Instant,
        dst: MacAddr,
        ethertype: EtherType,
        len: usize,
        gso_mss: Option<usize>,
        fill: impl FnOnce(&mut [u8]),
        tx: &mut S,
    ) {
        let link_len = self.medium.header_len();
        let total = link_len + len;
        let buf = &mut self.tx_buf[..total];
        if self.medium == Medium::Ethernet {
            EthernetRepr {
                dst,
                src: self.mac,
                ethertype,
            }
            .emit(buf);
        }
        fill(&mut buf[link_len..]);
        let result = match gso_mss {
            None => tx.send(now, buf),
            Some(mss) => tx.send_segmented(now, buf, mss),
        };
        match result {
            Ok(()) => {
                counters.frames_out += 1;
                counters.bytes_out += total as u64;
            }
            Err(e) => {
                log::debug!("device transmit failed: {e}");
                counters.drop(DropReason::DeviceTxError);
            }
        }
    }

    /// Sends an IPv4 packet of `len` bytes (written by `fill`) to the next
    /// hop: at once when its link address is known (`hop` is `Ok`), else
    /// queued until ARP resolves it. With `gso_mss` the packet is a TCP
    /// super segment (see [`send_ipv4_segmented`](Self::send_ipv4_segmented)):
    /// the device cuts it, or, while the next hop is unresolved, it is cut
    /// here and the pieces are queued.
    #[allow(clippy::too_many_arguments)]
    fn send_or_queue<S: FrameSink + ?Sized>(
        &mut self,
        counters: &mut Counters,
        now: Instant,
        hop: Result<MacAddr, Ipv4Addr>,
        len: usize,
        gso_mss: Option<usize>,
        fill: impl FnOnce(&mut [u8]),
        tx: &mut S,
    ) {
        match (hop, gso_mss) {
            (Ok(mac), _) => {
                counters.ipv4_sent += 1;
                self.transmit(counters, now, mac, EtherType::IPV4, len, gso_mss, fill, tx);
            }
            (Err(next_hop), None) => {
                let mut packet = vec![0u8; len];
                fill(&mut packet);
                self.queue_for_resolution(counters, now, next_hop, packet);
            }
            (Err(next_hop), Some(mss)) => {
                let mut packet = std::mem::take(&mut self.tx_buf);
                fill(&mut packet[..len]);
                let mut scratch = Vec::new();
                crate::device::gso::split_tcp(&packet[..len], 0, mss, &mut scratch, |piece| {
                    self.queue_for_resolution(counters, now, next_hop, piece.to_vec())
                });
                self.tx_buf = packet;
            }
        }
    }

    /// Sends an ARP packet.
    pub(crate) fn send_arp<S: FrameSink + ?Sized>(
        &mut self,
        counters: &mut Counters,
        now: Instant,
        dst: MacAddr,
        arp: ArpRepr,
        tx: &mut S,
    ) {
        if self.medium != Medium::Ethernet {
            return;
        }
        self.send_frame(
            counters,
            now,
            dst,
            EtherType::ARP,
            ArpRepr::LEN,
            |b| arp.emit(b),
            tx,
        );
    }

    /// The MTU towards `dst`: the link MTU, or less if path MTU discovery
    /// (RFC 1191) learned of a narrower hop.
    pub fn path_mtu(&self, now: Instant, dst: Ipv4Addr) -> usize {
        self.pmtu
            .get(now, dst)
            .map_or(self.mtu, |p| p.min(self.mtu))
    }

    /// The link address for `dst`, or the next hop to resolve first. On an
    /// IP link nothing is resolved (the address returned is unused): the
    /// route only has to exist.
    fn next_hop_mac(
        &mut self,
        counters: &mut Counters,
        now: Instant,
        dst: Ipv4Addr,
    ) -> Result<Result<MacAddr, Ipv4Addr>, SendError> {
        if self.is_broadcast(dst) {
            return Ok(Ok(MacAddr::BROADCAST));
        }
        let Some(hop) = self.routes.lookup(dst) else {
            counters.drop(DropReason::Ipv4NoRoute);
            return Err(SendError::NoRoute);
        };
        if self.medium == Medium::Ip {
            return Ok(Ok(MacAddr::BROADCAST));
        }
        Ok(match self.neighbors.lookup(now, hop.addr) {
            Lookup::Found(mac) => Ok(mac),
            Lookup::Unknown => Err(hop.addr),
        })
    }

    /// Sends an IPv4 datagram. `repr` supplies source, destination,
    /// protocol, TTL, TOS and DF; this checks the source (see
    /// [`pick_source`](Self::pick_source): one of ours is kept, anything
    /// else is replaced) and fills in identification and length. `fill`
    /// writes the `payload_len` payload bytes.
    ///
    /// A datagram to one of our own addresses (ours or 127/8) is delivered
    /// locally on the next poll, whole, and never reaches the device (see
    /// [`super::loopback`]).
    ///
    /// The datagram goes out at once when the next hop is resolved, and is
    /// queued (bounded) while ARP resolves it otherwise. A datagram larger
    /// than the path MTU is fragmented (RFC 791), unless DF is set, in which
    /// case it is refused with the MTU that applies (EMSGSIZE).
    pub(crate) fn send_ipv4<S: FrameSink + ?Sized>(
        &mut self,
        counters: &mut Counters,
        now: Instant,
        mut repr: Ipv4Repr,
        payload_len: usize,
        fill: impl FnOnce(&mut [u8]),
        tx: &mut S,
    ) -> Result<(), SendError> {
        let total = Ipv4Repr::MIN_HEADER_LEN + payload_len;
        if total > Ipv4Repr::MAX_PACKET_LEN {
            return Err(SendError::MessageTooBig(Ipv4Repr::MAX_PACKET_LEN));
        }
        let dst = repr.dst;
        repr.src = self.pick_source(counters, repr.src, dst)?;
        if self.is_local(dst) {
            repr.ident = self.idents.next(dst, repr.protocol.0);
            self.send_local(counters, repr, payload_len, false, fill);
            return Ok(());
        }
        let mtu = self.path_mtu(now, dst);
        if total > mtu && repr.dont_fragment {
            counters.drop(DropReason::Ipv4TooBig);
            return Err(SendError::MessageTooBig(mtu));
        }
        let hop = self.next_hop_mac(counters, now, dst)?;
        repr.ident = self.idents.next(dst, repr.protocol.0);
        repr.header_len = Ipv4Repr::MIN_HEADER_LEN;
        repr.payload_len = payload_len;
        if total <= mtu {
            let fill = |buf: &mut [u8]| {
                repr.emit(buf);
                fill(&mut buf[Ipv4Repr::MIN_HEADER_LEN..]);
            };
            self.send_or_queue(counters, now, hop, total, None, fill, tx);
            return Ok(());
        }
        // Fragment: the payload is written once into scratch space, then each
        // fragment is framed from a slice of it.
        let mut payload = std::mem::take(&mut self.frag_buf);
        fill(&mut payload[..payload_len]);
        for (offset, len, more) in fragments(payload_len, mtu, Ipv4Repr::MIN_HEADER_LEN) {
            let mut frag = repr;
            frag.frag_offset = offset as u16;
            frag.more_fragments = more;
            frag.payload_len = len;
            let data = &payload[offset..offset + len];
            let frag_total = Ipv4Repr::MIN_HEADER_LEN + len;
            counters.fragments_sent += 1;
            let fill = |buf: &mut [u8]| {
                frag.emit(buf);
                buf[Ipv4Repr::MIN_HEADER_LEN..].copy_from_slice(data);
            };
            self.send_or_queue(counters, now, hop, frag_total, None, fill, tx);
        }
        self.frag_buf = payload;
        Ok(())
    }

    /// Sends a TCP super segment (see [`crate::device::gso`]): one IPv4
    /// packet of up to 64 KiB whose TCP payload the device cuts into
    /// segments of `mss` bytes, each within the path MTU. `fill` writes the
    /// TCP header (its checksum field holding the pseudo-header sum) and
    /// payload. While the next hop is unresolved the pieces are cut here and
    /// queued like any datagram.
    ///
    /// A super segment to ourselves is delivered whole, as Linux's `lo`
    /// (which offloads segmentation) does: one IPv4 packet of up to 64 KiB,
    /// its TCP checksum taken on trust on input like a device's
    /// `CHECKSUM_PARTIAL` frame (it holds only the pseudo-header sum).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn send_ipv4_segmented<S: FrameSink + ?Sized>(
        &mut self,
        counters: &mut Counters,
        now: Instant,
        mut repr: Ipv4Repr,
        payload_len: usize,
        mss: usize,
        fill: impl FnOnce(&mut [u8]),
        tx: &mut S,
    ) -> Result<(), SendError> {
        let total = Ipv4Repr::MIN_HEADER_LEN + payload_len;
        if total > Ipv4Repr::MAX_PACKET_LEN {
            return Err(SendError::MessageTooBig(Ipv4Repr::MAX_PACKET_LEN));
        }
        let dst = repr.dst;
        repr.src = self.pick_source(counters, repr.src, dst)?;
        if self.is_local(dst) {
            repr.ident = self.idents.next(dst, repr.protocol.0);
            self.send_local(counters, repr, payload_len, true, fill);
            return Ok(());
        }
        let hop = self.next_hop_mac(counters, now, dst)?;
        repr.ident = self.idents.next(dst, repr.protocol.0);
        repr.header_len = Ipv4Repr::MIN_HEADER_LEN;
        repr.payload_len = payload_len;
        let fill = |buf: &mut [u8]| {
            repr.emit(buf);
            fill(&mut buf[Ipv4Repr::MIN_HEADER_LEN..]);
        };
        self.send_or_queue(counters, now, hop, total, Some(mss), fill, tx);
        Ok(())
    }

    fn queue_for_resolution(
        &mut self,
        counters: &mut Counters,
        now: Instant,
        next_hop: Ipv4Addr,
        packet: Vec<u8>,
    ) {
        if !self.queue_allowed {
            // The stack's memory budget is spent: nothing waits for
            // resolution (RFC 1122 2.3.2.2's one packet is best effort).
            return counters.drop(DropReason::ArpTotalQueueFull);
        }
        match self.neighbors.enqueue(now, next_hop, packet) {
            Ok(()) => self.resolution_queued = true,
            Err(QueueError::QueueFull) => counters.drop(DropReason::ArpQueueFull),
            Err(QueueError::CacheFull) => counters.drop(DropReason::ArpCacheFull),
            Err(QueueError::TotalQueueFull) => counters.drop(DropReason::ArpTotalQueueFull),
        }
    }

    /// Sends an already built IPv4 packet (from the ARP queue) to `dst_mac`.
    pub(crate) fn send_raw_ipv4<S: FrameSink + ?Sized>(
        &mut self,
        counters: &mut Counters,
        now: Instant,
        dst_mac: MacAddr,
        packet: &[u8],
        tx: &mut S,
    ) {
        let fill = |b: &mut [u8]| b.copy_from_slice(packet);
        self.send_or_queue(counters, now, Ok(dst_mac), packet.len(), None, fill, tx);
    }
}
