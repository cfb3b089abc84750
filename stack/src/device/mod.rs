//! Devices: where frames come from and go to.
//!
//! A [`Device`] moves whole Ethernet frames. Implementations: the Linux TAP
//! device, an in-memory pair for tests and same-process stacks, a pcap
//! recorder that wraps any device, and (for impairment) a fault injector.

mod fault;
mod memory;
mod pcap;
mod tap;

pub use fault::{
    DirectionStats, FaultConfig, FaultDevice, FaultStats, MAX_HELD_BYTES, RATE_QUEUE_BYTES,
};
pub use memory::{MemoryDevice, memory_pair};
pub use pcap::{PcapDevice, PcapWriter};
pub use tap::{MAX_NAME_LEN, TapConfig, TapDevice, TapError};

use std::io;
use std::os::fd::RawFd;
use std::time::Instant;

/// Something frames can be sent to.
pub trait FrameSink {
    /// Sends one frame. Like Ethernet, a device that cannot take the frame
    /// may drop it; an error means the frame was not sent.
    fn send(&mut self, now: Instant, frame: &[u8]) -> io::Result<()>;
}

/// A link-layer device moving Ethernet II frames (no preamble, no FCS).
pub trait Device: FrameSink {
    /// Reads one frame into `buf`; `Ok(None)` when none is ready.
    fn recv(&mut self, now: Instant, buf: &mut [u8]) -> io::Result<Option<usize>>;

    /// The link MTU: the largest IP packet a frame can carry.
    fn mtu(&self) -> usize;

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
}

impl<S: FrameSink + ?Sized> FrameSink for &mut S {
    fn send(&mut self, now: Instant, frame: &[u8]) -> io::Result<()> {
        (**self).send(now, frame)
    }
}

impl<S: FrameSink + ?Sized> FrameSink for Box<S> {
    fn send(&mut self, now: Instant, frame: &[u8]) -> io::Result<()> {
        (**self).send(now, frame)
    }
}

impl<D: Device + ?Sized> Device for Box<D> {
    fn recv(&mut self, now: Instant, buf: &mut [u8]) -> io::Result<Option<usize>> {
        (**self).recv(now, buf)
    }
    fn mtu(&self) -> usize {
        (**self).mtu()
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
}

/// A sink that keeps frames in memory (tests, and batching output so the
/// stack can send after releasing a lock). Buffers are reused: after warm-up,
/// collecting frames does not allocate.
#[derive(Default, Debug)]
pub struct FrameBatch {
    data: Vec<u8>,
    ends: Vec<usize>,
}

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

    /// The frames, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        let mut start = 0;
        self.ends.iter().map(move |&end| {
            let f = &self.data[start..end];
            start = end;
            f
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
        for frame in self.iter() {
            if let Err(e) = sink.send(now, frame) {
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
        self.ends.push(self.data.len());
        Ok(())
    }
}
