//! Local delivery: IPv4 packets the stack sends to its own address or into
//! 127.0.0.0/8 never reach the device. The IP layer queues them here, and
//! the next [`Interface::poll`] feeds them back into IP input, as Linux
//! delivers such traffic over its `lo` device.
//!
//! RFC 1122 3.2.1.3 (g): "`{ 127, <any> }` Internal host loopback address.
//! Addresses of this form MUST NOT appear outside a host." So nothing sent
//! here touches the link: no ARP resolution and no Ethernet frame. Nor is
//! it captured by default (on Linux it would be captured on `lo`, not on
//! the Ethernet device either); [`Interface::set_capture_loopback`] asks
//! for it to be shown in the device's capture, as frames from our MAC
//! address to itself (see [`FrameSink::capture_local`]).
//!
//! # Bounds
//!
//! The queue is two reusable arenas: one fills while the other is being
//! delivered, then they swap, so steady traffic allocates nothing per
//! packet. The arena that fills is capped in packets and bytes (defaults
//! [`DEFAULT_LOOPBACK_PACKETS`], Linux's `netdev_max_backlog`, and
//! [`DEFAULT_LOOPBACK_BYTES`]); a packet beyond the cap is dropped and
//! counted ([`DropReason::LoopbackQueueFull`]) like a frame a full device
//! refuses, and TCP recovers it as any loss. At most twice the caps are held
//! (both arenas), see [`Interface::loopback_memory`].
//!
//! # Progress
//!
//! Each poll delivers at most [`LOOPBACK_ROUNDS`] rounds (a round: every
//! packet queued before it, then the TCP transmissions they caused), so
//! two endpoints answering each other cannot keep one poll spinning; what
//! is left makes [`Interface::needs_poll`] true and
//! [`Interface::poll_at`] due at once.

use std::mem::size_of;
use std::time::Instant;

use ip::Ipv4Repr;

use super::Interface;
use crate::counters::DropReason;
use crate::device::FrameSink;

/// Default cap on the packets waiting for local delivery (Linux's
/// `netdev_max_backlog`, 1000).
pub(crate) const DEFAULT_LOOPBACK_PACKETS: usize = 1000;

/// Default cap on the bytes waiting for local delivery: 1 MiB, sixteen
/// 64 KiB super segments.
pub(crate) const DEFAULT_LOOPBACK_BYTES: usize = 1 << 20;

/// Rounds of local delivery per poll.
pub(crate) const LOOPBACK_ROUNDS: usize = 16;

/// One queued packet: where it is in the arena.
#[derive(Clone, Copy, Debug)]
struct Entry {
    start: usize,
    len: usize,
    /// The TCP checksum holds only the pseudo-header sum (a super segment):
    /// input takes it as a trusted device's frame.
    checksum_trusted: bool,
}

/// Packets back to back in one buffer.
#[derive(Debug, Default)]
struct Arena {
    bytes: Vec<u8>,
    entries: Vec<Entry>,
}

impl Arena {
    fn memory_used(&self) -> usize {
        self.bytes.capacity() + self.entries.capacity() * size_of::<Entry>()
    }

    fn clear(&mut self) {
        self.bytes.clear();
        self.entries.clear();
    }
}

/// Grows `v` to hold `extra` more elements, doubling but never past `cap`
/// elements of capacity (`len + extra <= cap` is checked by the caller).
fn grow<T>(v: &mut Vec<T>, extra: usize, cap: usize) {
    let need = v.len() + extra;
    if need > v.capacity() {
        let want = v.capacity().saturating_mul(2).clamp(need, cap.max(need));
        v.reserve_exact(want - v.len());
    }
}

/// Packets waiting for local delivery (see the module documentation).
#[derive(Debug)]
pub(crate) struct LoopbackQueue {
    /// Where packets sent now go.
    filling: Arena,
    /// The other arena, empty, kept for its capacity.
    spare: Arena,
    max_packets: usize,
    max_bytes: usize,
    /// Show delivered packets in captures.
    capture: bool,
    /// Where the frame shown in a capture is built (reused).
    capture_frame: Vec<u8>,
}

impl LoopbackQueue {
    pub(crate) fn new() -> Self {
        LoopbackQueue {
            filling: Arena::default(),
            spare: Arena::default(),
            max_packets: DEFAULT_LOOPBACK_PACKETS,
            max_bytes: DEFAULT_LOOPBACK_BYTES,
            capture: false,
            capture_frame: Vec::new(),
        }
    }

    /// True when nothing waits for delivery.
    pub(crate) fn is_empty(&self) -> bool {
        self.filling.entries.is_empty()
    }

    /// Queues a `len`-byte packet written by `fill`. False (and `fill` not
    /// called) when it would exceed the caps.
    pub(crate) fn push_with(
        &mut self,
        len: usize,
        checksum_trusted: bool,
        fill: impl FnOnce(&mut [u8]),
    ) -> bool {
        let a = &mut self.filling;
        if a.entries.len() >= self.max_packets || a.bytes.len() + len > self.max_bytes {
            return false;
        }
        grow(&mut a.bytes, len, self.max_bytes);
        grow(&mut a.entries, 1, self.max_packets);
        let start = a.bytes.len();
        a.bytes.resize(start + len, 0);
        fill(&mut a.bytes[start..]);
        a.entries.push(Entry {
            start,
            len,
            checksum_trusted,
        });
        true
    }

    /// Takes what is queued; new packets go to the spare arena meanwhile.
    fn take(&mut self) -> Arena {
        let spare = std::mem::take(&mut self.spare);
        std::mem::replace(&mut self.filling, spare)
    }

    /// Gives a delivered arena back for reuse.
    fn recycle(&mut self, mut arena: Arena) {
        arena.clear();
        // Never keep more capacity than the caps allow.
        arena.bytes.shrink_to(self.max_bytes);
        arena.entries.shrink_to(self.max_packets);
        self.spare = arena;
    }

    fn memory_used(&self) -> usize {
        self.filling.memory_used() + self.spare.memory_used()
    }
}

impl Interface {
    /// Shows traffic delivered locally (to our address or 127/8) in the
    /// device's capture, which it otherwise never reaches. Off by default.
    pub fn set_capture_loopback(&mut self, on: bool) {
        self.ip.loopback.capture = on;
        if !on {
            self.ip.loopback.capture_frame = Vec::new();
        }
    }

    /// Sets the caps of the local delivery queue: packets and bytes sent to
    /// ourselves (our address or 127/8) waiting for the next poll. Defaults
    /// 1000 packets (Linux's `netdev_max_backlog`) and 1 MiB. Beyond them a
    /// packet is dropped and counted
    /// ([`DropReason::LoopbackQueueFull`]). Packets already queued stay.
    pub fn set_loopback_limits(&mut self, max_packets: usize, max_bytes: usize) {
        let q = &mut self.ip.loopback;
        q.max_packets = max_packets;
        q.max_bytes = max_bytes;
        q.spare.bytes.shrink_to(max_bytes);
        q.spare.entries.shrink_to(max_packets);
    }

    /// Packets and bytes waiting for local delivery.
    pub fn loopback_queued(&self) -> (usize, usize) {
        let a = &self.ip.loopback.filling;
        (a.entries.len(), a.bytes.len())
    }

    /// Heap held by the local delivery queue (both arenas, at capacity):
    /// at most about twice its caps.
    pub fn loopback_memory(&self) -> usize {
        self.ip.loopback.memory_used()
    }

    /// Delivers queued local packets: at most `LOOPBACK_ROUNDS` rounds,
    /// each the packets queued before it followed by the TCP
    /// transmissions they released (which may queue more).
    pub(super) fn poll_loopback<S: FrameSink + ?Sized>(&mut self, now: Instant, tx: &mut S) {
        for _ in 0..LOOPBACK_ROUNDS {
            if self.ip.loopback.is_empty() {
                return;
            }
            let batch = self.ip.loopback.take();
            for e in &batch.entries {
                let packet = &batch.bytes[e.start..e.start + e.len];
                self.loopback_input(now, packet, e.checksum_trusted, tx);
            }
            self.ip.loopback.recycle(batch);
            // Acknowledgements and data the batch released, as after a
            // receive batch from the device.
            self.tcp_poll(now, tx);
        }
    }

    /// IP input for one packet we sent ourselves. The martian checks of
    /// device input do not apply (our own and 127/8 sources are expected
    /// here); the packet was built by the IP layer, so anything unusable is
    /// a bug, counted and dropped.
    fn loopback_input<S: FrameSink + ?Sized>(
        &mut self,
        now: Instant,
        packet: &[u8],
        checksum_trusted: bool,
        tx: &mut S,
    ) {
        let Ok((repr, data)) = Ipv4Repr::parse(packet) else {
            return self.counters.drop(DropReason::LoopbackMalformed);
        };
        // Loopback packets are never fragmented (the loopback MTU is the
        // largest IPv4 datagram).
        if repr.is_fragment() || !self.ip.is_local(repr.dst) {
            return self.counters.drop(DropReason::LoopbackMalformed);
        }
        self.counters.loopback_delivered += 1;
        if self.ip.loopback.capture {
            self.capture_loopback(now, packet, checksum_trusted, tx);
        }
        let header = &packet[..repr.header_len];
        self.rx_checksum_trusted = checksum_trusted;
        self.deliver_ipv4(now, &repr, Some(header), data, false, tx);
        self.rx_checksum_trusted = false;
    }

    /// Shows one delivered packet in the capture: an Ethernet frame from our
    /// MAC address to itself (the bare packet on an IP link), its TCP checksum completed when it only held
    /// the pseudo-header sum (a super segment).
    fn capture_loopback<S: FrameSink + ?Sized>(
        &mut self,
        now: Instant,
        packet: &[u8],
        checksum_trusted: bool,
        tx: &mut S,
    ) {
        let mac = self.ip.mac;
        let mut frame = std::mem::take(&mut self.ip.loopback.capture_frame);
        frame.clear();
        let medium = self.ip.medium;
        if medium == crate::device::Medium::Ethernet {
            frame.extend_from_slice(&mac.0);
            frame.extend_from_slice(&mac.0);
            frame.extend_from_slice(&ethernet::EtherType::IPV4.0.to_be_bytes());
        }
        frame.extend_from_slice(packet);
        if checksum_trusted {
            crate::device::gso::complete_checksum(&mut frame, medium.header_len());
        }
        tx.capture_local(now, &frame);
        self.ip.loopback.capture_frame = frame;
    }
}
