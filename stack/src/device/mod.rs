//! Devices: where frames come from and go to.
//!
//! A [`Device`] moves whole frames of its [`Medium`]: Ethernet II frames,
//! or bare IPv4 packets on an IP link. Implementations: the Linux TAP
//! (Ethernet) and TUN (IP) devices, an in-memory pair for tests and
//! same-process stacks, a pcap recorder that wraps any device, and (for
//! impairment) a fault injector.

pub mod checksum;
pub mod fault;
pub mod gso;
mod memory;
mod pcap;
mod tap;

pub use checksum::ChecksumCaps;
pub use fault::{
    DirectionStats, FaultConfig, FaultDevice, FaultStats, FaultStatsHandle, MAX_HELD_BYTES,
    RATE_QUEUE_BYTES,
};
pub use memory::{MemoryDevice, memory_pair, memory_pair_medium};
pub use pcap::{
    CaptureFormat, Direction, FLUSH_INTERVAL, LINKTYPE_ETHERNET, LINKTYPE_RAW, PcapDevice,
    PcapWriter, link_type,
};
pub use tap::{MAX_NAME_LEN, TapConfig, TapDevice, TapError, TunDevice, TunError};

use std::io;
use std::os::fd::RawFd;
use std::time::Instant;

/// What a device's frames are, like smoltcp's `Medium`.
///
/// On [`Ethernet`](Medium::Ethernet) a frame is an Ethernet II frame and the
/// interface resolves next hops with ARP. On [`Ip`](Medium::Ip) (a TUN
/// device, a tunnel) a frame is one bare IP packet: no link header, no ARP,
/// no MAC address; the routes decide the next hop only for path MTU and TTL.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Medium {
    /// Ethernet II frames (no preamble, no FCS).
    #[default]
    Ethernet,
    /// Bare IP packets (IPv4; anything else received is counted and
    /// dropped).
    Ip,
}

impl Medium {
    /// Length of the link header before the IP packet in a frame: 14 on
    /// Ethernet, 0 on IP.
    pub const fn header_len(self) -> usize {
        match self {
            Medium::Ethernet => 14,
            Medium::Ip => 0,
        }
    }
}

/// Something frames can be sent to.
pub trait FrameSink {
    /// What the frames this sink takes are (Ethernet by default). A device
    /// on an IP link (TUN) returns [`Medium::Ip`]; the interface built for
    /// it must be configured with the same medium
    /// ([`InterfaceConfig::medium`](crate::InterfaceConfig::medium)).
    fn medium(&self) -> Medium {
        Medium::Ethernet
    }

    /// Sends one frame. Like Ethernet, a device that cannot take the frame
    /// may drop it; an error means the frame was not sent.
    fn send(&mut self, now: Instant, frame: &[u8]) -> io::Result<()>;

    /// Sends an Ethernet frame holding a TCP super segment (see [`gso`]):
    /// on the wire, segments of at most `mss` payload bytes. This default
    /// cuts it in software and sends the pieces one by one; a device with
    /// segmentation offload takes it whole.
    fn send_segmented(&mut self, now: Instant, frame: &[u8], mss: usize) -> io::Result<()> {
        let mut scratch = Vec::with_capacity(mss + 128);
        let mut result = Ok(());
        gso::split_tcp(
            frame,
            self.medium().header_len(),
            mss,
            &mut scratch,
            |piece| {
                if let Err(e) = self.send(now, piece) {
                    result = Err(e);
                }
            },
        );
        result
    }

    /// Shows a frame in captures without sending it: traffic the stack
    /// delivered to itself (its own address, 127.0.0.0/8) when the user
    /// asked for it to be captured
    /// ([`Interface::set_capture_loopback`](crate::Interface::set_capture_loopback)).
    /// Only a capture writer does anything with it.
    fn capture_local(&mut self, _now: Instant, _frame: &[u8]) {}
}

/// A link-layer device moving whole frames of its
/// [`medium`](FrameSink::medium): Ethernet II frames (no preamble, no FCS)
/// or bare IP packets.
///
/// Implement it to run a stack over anything that carries frames (an
/// AF_PACKET socket, a tunnel, a test harness): [`recv`](Self::recv) and
/// [`FrameSink::send`] are all that is required; [`mtu`](Self::mtu) bounds
/// the IP packets the stack builds, [`FrameSink::medium`] says whether
/// frames carry an Ethernet header, and [`checksum_caps`](Self::checksum_caps)
/// declares offloads (none by default).
pub trait Device: FrameSink {
    /// Reads one frame into `buf`; `Ok(None)` when none is ready.
    fn recv(&mut self, now: Instant, buf: &mut [u8]) -> io::Result<Option<usize>>;

    /// The link MTU: the largest IP packet a frame can carry.
    fn mtu(&self) -> usize;

    /// The longest frame [`recv`](Self::recv) can return: the MTU plus the
    /// link header (Ethernet's, by default) (and room for a VLAN tag), or more on a device that
    /// coalesces received segments (TAP receive offload hands over TCP
    /// segments of up to 64 KiB).
    fn max_frame_len(&self) -> usize {
        self.mtu() + 14 + 4
    }

    /// When the device next has something to do by itself (a delayed frame
    /// becoming due, for instance).
    fn poll_at(&self) -> Option<Instant> {
        None
    }

    /// A descriptor that becomes readable when frames may be ready, for the
    /// event loop to wait on.
    fn raw_fd(&self) -> Option<RawFd> {
        None
    }

    /// Writes out anything buffered (captures).
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }

    /// A capture marks the next frame it records with `comment` (the
    /// fault injector says what it did to the frame it hands over next).
    /// Devices without a capture ignore it.
    fn annotate_next(&mut self, _comment: &'static str) {}

    /// A capture records `frame`, which was meant to leave but never
    /// reached the device (the fault injector dropped it), marked with
    /// `comment`. Devices without a capture ignore it.
    fn record_unsent(&mut self, _now: Instant, _frame: &[u8], _comment: &'static str) {}

    /// A capture marks the frame the last `recv` returned with `comment`
    /// (the fault injector above says what it did with a received frame:
    /// dropped, corrupted, duplicated, held back). Devices without a
    /// capture ignore it.
    fn annotate_received(&mut self, _comment: &'static str) {}

    /// What the device does with TCP checksums and super segments: the
    /// one declaration a device makes (the default: nothing offloaded, every
    /// received checksum complete). [`segmentation_offload`] and
    /// [`rx_checksum_trusted`] read it; implement this, not them.
    ///
    /// [`segmentation_offload`]: Self::segmentation_offload
    /// [`rx_checksum_trusted`]: Self::rx_checksum_trusted
    fn checksum_caps(&self) -> ChecksumCaps {
        ChecksumCaps::default()
    }

    /// True when [`send_segmented`](FrameSink::send_segmented) hands super
    /// segments to hardware (or the kernel) instead of cutting them here:
    /// only then is building them worth it
    /// ([`ChecksumCaps::segmentation_offload`]).
    fn segmentation_offload(&self) -> bool {
        self.checksum_caps().segmentation_offload
    }

    /// True when the frame the last [`recv`](Self::recv) returned is a TCP
    /// segment whose checksum the device vouches for and left unfinished:
    /// the kernel hands its own segments over a TAP device with only the
    /// pseudo-header sum in the checksum field (`NEEDS_CSUM`, Linux's
    /// `CHECKSUM_PARTIAL`), as they never crossed a wire. The stack then
    /// takes the segment without verifying its checksum (see
    /// [`Interface::receive_frame_from`](crate::Interface::receive_frame_from)),
    /// which spares summing up to 64 KiB twice ([`ChecksumCaps::rx_partial`]).
    fn rx_checksum_trusted(&self) -> bool {
        self.checksum_caps().rx_partial
    }
}

impl<S: FrameSink + ?Sized> FrameSink for &mut S {
    fn medium(&self) -> Medium {
        (**self).medium()
    }
    fn send(&mut self, now: Instant, frame: &[u8]) -> io::Result<()> {
        (**self).send(now, frame)
    }
    fn send_segmented(&mut self, now: Instant, frame: &[u8], mss: usize) -> io::Result<()> {
        (**self).send_segmented(now, frame, mss)
    }
}

impl<S: FrameSink + ?Sized> FrameSink for Box<S> {
    fn medium(&self) -> Medium {
        (**self).medium()
    }
    fn send(&mut self, now: Instant, frame: &[u8]) -> io::Result<()> {
        (**self).send(now, frame)
    }
    fn send_segmented(&mut self, now: Instant, frame: &[u8], mss: usize) -> io::Result<()> {
        (**self).send_segmented(now, frame, mss)
    }
}

impl<D: Device + ?Sized> Device for Box<D> {
    fn recv(&mut self, now: Instant, buf: &mut [u8]) -> io::Result<Option<usize>> {
        (**self).recv(now, buf)
    }
    fn mtu(&self) -> usize {
        (**self).mtu()
    }
    fn max_frame_len(&self) -> usize {
        (**self).max_frame_len()
    }
    fn poll_at(&self) -> Option<Instant> {
        (**self).poll_at()
    }
    fn raw_fd(&self) -> Option<RawFd> {
        (**self).raw_fd()
    }
    fn flush(&mut self) -> io::Result<()> {
        (**self).flush()
    }
    fn annotate_next(&mut self, comment: &'static str) {
        (**self).annotate_next(comment)
    }
    fn record_unsent(&mut self, now: Instant, frame: &[u8], comment: &'static str) {
        (**self).record_unsent(now, frame, comment)
    }
    fn annotate_received(&mut self, comment: &'static str) {
        (**self).annotate_received(comment)
    }
    fn checksum_caps(&self) -> ChecksumCaps {
        (**self).checksum_caps()
    }
    fn segmentation_offload(&self) -> bool {
        (**self).segmentation_offload()
    }
    fn rx_checksum_trusted(&self) -> bool {
        (**self).rx_checksum_trusted()
    }
}

/// A sink that keeps frames in memory (tests, and batching output so the
/// stack can send after releasing a lock). Buffers are reused: after warm-up,
/// collecting frames does not allocate.
#[derive(Default, Debug)]
pub struct FrameBatch {
    data: Vec<u8>,
    /// End of each frame in `data`, and its segment size (0: a plain frame;
    /// [`CAPTURE_ONLY`]: a frame for [`FrameSink::capture_local`]; otherwise
    /// a super segment for [`FrameSink::send_segmented`]).
    ends: Vec<(usize, usize)>,
}

/// The segment size that marks a batched frame as capture-only.
const CAPTURE_ONLY: usize = usize::MAX;

impl FrameBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of frames held.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// True when no frame is held.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The frames to send, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        self.iter_segmented().map(|(f, _)| f)
    }

    /// The frames to send with their segment size (0 for plain frames).
    pub fn iter_segmented(&self) -> impl Iterator<Item = (&[u8], usize)> {
        self.iter_all().filter(|&(_, mss)| mss != CAPTURE_ONLY)
    }

    /// Every frame, capture-only ones included.
    fn iter_all(&self) -> impl Iterator<Item = (&[u8], usize)> {
        let mut start = 0;
        self.ends.iter().map(move |&(end, mss)| {
            let f = &self.data[start..end];
            start = end;
            (f, mss)
        })
    }

    /// Forgets all frames, keeping the memory.
    pub fn clear(&mut self) {
        self.data.clear();
        self.ends.clear();
    }

    /// Sends every frame to `sink` and clears the batch.
    pub fn flush_to<S: FrameSink + ?Sized>(
        &mut self,
        now: Instant,
        sink: &mut S,
    ) -> io::Result<()> {
        let mut result = Ok(());
        for (frame, mss) in self.iter_all() {
            let sent = match mss {
                0 => sink.send(now, frame),
                CAPTURE_ONLY => {
                    sink.capture_local(now, frame);
                    Ok(())
                }
                _ => sink.send_segmented(now, frame, mss),
            };
            if let Err(e) = sent {
                result = Err(e);
            }
        }
        self.clear();
        result
    }
}

impl FrameSink for FrameBatch {
    fn send(&mut self, _now: Instant, frame: &[u8]) -> io::Result<()> {
        self.data.extend_from_slice(frame);
        self.ends.push((self.data.len(), 0));
        Ok(())
    }

    fn send_segmented(&mut self, _now: Instant, frame: &[u8], mss: usize) -> io::Result<()> {
        self.data.extend_from_slice(frame);
        self.ends
            .push((self.data.len(), mss.clamp(1, CAPTURE_ONLY - 1)));
        Ok(())
    }

    fn capture_local(&mut self, _now: Instant, frame: &[u8]) {
        self.data.extend_from_slice(frame);
        self.ends.push((self.data.len(), CAPTURE_ONLY));
    }
}
