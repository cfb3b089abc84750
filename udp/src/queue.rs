//! A bounded receive queue for datagrams: payloads live in one byte ring,
//! metadata in a ring of fixed-size records, so queueing a datagram never
//! allocates once the queue has warmed up. The byte ring grows with the
//! data queued (an idle socket holds nothing), up to the capacity. A
//! datagram that does not fit is refused (the caller counts the drop),
//! like a full SO_RCVBUF.
//!
//! Each datagram is charged [`DATAGRAM_OVERHEAD`] bytes on top of its
//! payload, as Linux charges every datagram its buffer's true size: empty
//! datagrams cost memory too (their metadata record), and without the
//! charge a flood of them would grow the queue without bound.

use std::collections::VecDeque;

/// Bytes charged per queued datagram on top of its payload.
pub const DATAGRAM_OVERHEAD: usize = 64;

/// Datagrams of type `M` metadata (e.g. the sender's address) and bytes.
#[derive(Debug)]
pub struct RecvQueue<M> {
    ring: Vec<u8>,
    /// Index of the first byte of the oldest datagram.
    head: usize,
    /// Payload bytes in use.
    used: usize,
    /// Bytes charged: payload plus the per-datagram overhead.
    charged: usize,
    /// Most bytes that may be charged (SO_RCVBUF).
    capacity: usize,
    meta: VecDeque<(M, usize)>,
}

impl<M> RecvQueue<M> {
    /// A queue that may hold up to `capacity` bytes (payload plus
    /// overhead). Nothing is allocated until datagrams arrive.
    pub fn new(capacity: usize) -> Self {
        RecvQueue {
            ring: Vec::new(),
            head: 0,
            used: 0,
            charged: 0,
            capacity,
            meta: VecDeque::new(),
        }
    }

    /// Bytes the queue can hold (payload plus overhead).
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Changes the capacity (SO_RCVBUF); queued datagrams are kept, oldest
    /// first, as far as they fit, and the newest that do not are dropped.
    /// Returns how many were dropped.
    pub fn set_capacity(&mut self, capacity: usize) -> usize {
        let mut dropped = 0;
        while self.charged > capacity {
            let Some((_, len)) = self.meta.pop_back() else {
                break;
            };
            // The newest datagram ends at the tail of the ring.
            self.used -= len;
            self.charged -= len + DATAGRAM_OVERHEAD;
            dropped += 1;
        }
        if self.used == 0 {
            self.head = 0;
        }
        self.capacity = capacity;
        dropped
    }

    /// Datagrams queued.
    pub fn len(&self) -> usize {
        self.meta.len()
    }

    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.meta.is_empty()
    }

    /// Payload bytes queued.
    pub fn bytes(&self) -> usize {
        self.used
    }

    /// Bytes charged against the capacity (payload plus overhead).
    pub fn charged(&self) -> usize {
        self.charged
    }

    /// Bytes of memory the queue holds (its ring and metadata records).
    pub fn memory_used(&self) -> usize {
        self.ring.capacity() + self.meta.capacity() * std::mem::size_of::<(M, usize)>()
    }

    /// Frees the memory of an empty queue; returns the bytes freed.
    pub fn release_if_empty(&mut self) -> usize {
        if !self.meta.is_empty() {
            return 0;
        }
        let freed = self.memory_used();
        self.ring = Vec::new();
        self.meta = VecDeque::new();
        self.head = 0;
        freed
    }

    /// Size of the oldest datagram.
    pub fn peek_len(&self) -> Option<usize> {
        self.meta.front().map(|(_, n)| *n)
    }

    /// True when a datagram of `len` bytes fits the capacity now.
    pub fn fits(&self, len: usize) -> bool {
        len + DATAGRAM_OVERHEAD <= self.capacity.saturating_sub(self.charged)
    }

    /// Queues a datagram; false (and nothing queued) when it does not fit.
    pub fn push(&mut self, meta: M, data: &[u8]) -> bool {
        self.push_within(meta, data, true)
    }

    /// Queues a datagram, growing the ring only if `may_grow` (the stack's
    /// memory budget allows it); false (and nothing queued) when it does
    /// not fit.
    pub fn push_within(&mut self, meta: M, data: &[u8], may_grow: bool) -> bool {
        let charge = data.len() + DATAGRAM_OVERHEAD;
        if !self.fits(data.len()) {
            return false;
        }
        if self.used + data.len() > self.ring.len() {
            if !may_grow {
                return false;
            }
            self.grow(self.used + data.len());
        } else if !may_grow && self.meta.len() == self.meta.capacity() {
            return false;
        }
        let cap = self.ring.len();
        if cap > 0 {
            let tail = (self.head + self.used) % cap;
            let first = data.len().min(cap - tail);
            self.ring[tail..tail + first].copy_from_slice(&data[..first]);
            self.ring[..data.len() - first].copy_from_slice(&data[first..]);
        }
        self.used += data.len();
        self.charged += charge;
        self.meta.push_back((meta, data.len()));
        true
    }

    /// Makes the ring at least `needed` bytes, keeping the queued bytes in
    /// order (from index 0).
    fn grow(&mut self, needed: usize) {
        let new_len = needed
            .max(self.ring.len() * 2)
            .max(4096)
            .min(self.capacity.max(needed));
        let mut new = vec![0u8; new_len];
        let cap = self.ring.len();
        if cap > 0 {
            let first = self.used.min(cap - self.head);
            new[..first].copy_from_slice(&self.ring[self.head..self.head + first]);
            new[first..self.used].copy_from_slice(&self.ring[..self.used - first]);
        }
        self.ring = new;
        self.head = 0;
    }

    /// Takes the oldest datagram, copying as much as fits into `buf`.
    /// Returns its metadata and its full length (which may exceed `buf`:
    /// like recvfrom on Linux, the excess is discarded).
    pub fn pop(&mut self, buf: &mut [u8]) -> Option<(M, usize)> {
        let (meta, len) = self.meta.pop_front()?;
        let cap = self.ring.len();
        let copy = len.min(buf.len());
        if cap > 0 {
            let first = copy.min(cap - self.head);
            buf[..first].copy_from_slice(&self.ring[self.head..self.head + first]);
            buf[first..copy].copy_from_slice(&self.ring[..copy - first]);
            self.head = (self.head + len) % cap;
        }
        self.used -= len;
        self.charged -= len + DATAGRAM_OVERHEAD;
        if self.used == 0 {
            self.head = 0;
        }
        Some((meta, len))
    }

    /// Copies the oldest datagram into `buf` (truncated to it) without
    /// removing it (MSG_PEEK): its metadata and full length.
    pub fn peek(&self, buf: &mut [u8]) -> Option<(M, usize)>
    where
        M: Clone,
    {
        let (meta, len) = self.meta.front()?;
        let cap = self.ring.len();
        let copy = (*len).min(buf.len());
        if cap > 0 {
            let first = copy.min(cap - self.head);
            buf[..first].copy_from_slice(&self.ring[self.head..self.head + first]);
            buf[first..copy].copy_from_slice(&self.ring[..copy - first]);
        }
        Some((meta.clone(), *len))
    }
}

#[cfg(test)]
mod tests;
