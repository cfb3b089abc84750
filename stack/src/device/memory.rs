//! An in-memory point-to-point link: two devices, each receiving what the
//! other sends. Usable from one thread (tests with a virtual clock) or from
//! two (two stacks in one process); each end has an eventfd that is readable
//! while frames wait, so an event loop can sleep on it.

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::{Device, FrameSink, Medium};
use crate::sys::EventFd;

/// Frames a queue holds before it drops new ones, like a NIC ring.
const QUEUE_LIMIT: usize = 4096;

#[derive(Debug)]
struct Queue {
    frames: Mutex<QueueInner>,
    ready: EventFd,
}

#[derive(Debug, Default)]
struct QueueInner {
    frames: VecDeque<Vec<u8>>,
    /// Buffers handed back by the receiver, reused by the sender.
    spare: Vec<Vec<u8>>,
    dropped: u64,
}

/// One end of an in-memory link.
#[derive(Debug)]
pub struct MemoryDevice {
    inbox: Arc<Queue>,
    outbox: Arc<Queue>,
    mtu: usize,
    medium: Medium,
}

/// Two connected devices with the given MTU, moving Ethernet frames.
pub fn memory_pair(mtu: usize) -> io::Result<(MemoryDevice, MemoryDevice)> {
    memory_pair_medium(mtu, Medium::Ethernet)
}

/// Two connected devices with the given MTU and medium (bare IP packets
/// with [`Medium::Ip`], like two ends of a TUN link).
pub fn memory_pair_medium(mtu: usize, medium: Medium) -> io::Result<(MemoryDevice, MemoryDevice)> {
    let a = Arc::new(Queue {
        frames: Mutex::new(QueueInner::default()),
        ready: EventFd::new()?,
    });
    let b = Arc::new(Queue {
        frames: Mutex::new(QueueInner::default()),
        ready: EventFd::new()?,
    });
    Ok((
        MemoryDevice {
            inbox: a.clone(),
            outbox: b.clone(),
            mtu,
            medium,
        },
        MemoryDevice {
            inbox: b,
            outbox: a,
            mtu,
            medium,
        },
    ))
}

impl MemoryDevice {
    /// Frames dropped because this end's inbox was full.
    pub fn dropped(&self) -> u64 {
        self.inbox.frames.lock().map(|q| q.dropped).unwrap_or(0)
    }

    /// Frames waiting in this end's inbox.
    pub fn pending(&self) -> usize {
        self.inbox
            .frames
            .lock()
            .map(|q| q.frames.len())
            .unwrap_or(0)
    }
}

impl FrameSink for MemoryDevice {
    fn medium(&self) -> Medium {
        self.medium
    }

    fn send(&mut self, _now: Instant, frame: &[u8]) -> io::Result<()> {
        let mut q = self
            .outbox
            .frames
            .lock()
            .map_err(|_| io::Error::other("memory link poisoned"))?;
        if q.frames.len() >= QUEUE_LIMIT {
            q.dropped += 1;
            return Ok(());
        }
        let mut buf = q.spare.pop().unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(frame);
        q.frames.push_back(buf);
        drop(q);
        self.outbox.ready.notify();
        Ok(())
    }
}

impl Device for MemoryDevice {
    fn recv(&mut self, _now: Instant, buf: &mut [u8]) -> io::Result<Option<usize>> {
        let pop = |inbox: &Queue, buf: &mut [u8]| -> io::Result<Option<usize>> {
            let mut q = inbox
                .frames
                .lock()
                .map_err(|_| io::Error::other("memory link poisoned"))?;
            Ok(q.frames.pop_front().map(|frame| {
                let n = frame.len().min(buf.len());
                buf[..n].copy_from_slice(&frame[..n]);
                if q.spare.len() < 256 {
                    q.spare.push(frame);
                }
                n
            }))
        };
        if let Some(n) = pop(&self.inbox, buf)? {
            return Ok(Some(n));
        }
        // Empty: clear the wake-up, then look once more, so a frame pushed
        // between the first look and the clear is not left without a wake-up.
        self.inbox.ready.drain();
        pop(&self.inbox, buf)
    }

    fn mtu(&self) -> usize {
        self.mtu
    }

    fn raw_fd(&self) -> Option<RawFd> {
        Some(self.inbox.ready.as_raw_fd())
    }
}

#[cfg(test)]
mod tests;
