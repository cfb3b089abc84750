//! A bounded receive queue for datagrams: payloads live in one byte ring,
//! metadata in a ring of fixed-size records, so queueing a datagram never
//! allocates once the queue has warmed up. A datagram that does not fit is
//! refused (the caller counts the drop), like a full SO_RCVBUF.

use std::collections::VecDeque;

/// Datagrams of type `M` metadata (e.g. the sender's address) and bytes.
#[derive(Debug)]
pub struct RecvQueue<M> {
    ring: Vec<u8>,
    /// Index of the first byte of the oldest datagram.
    head: usize,
    /// Bytes in use.
    used: usize,
    meta: VecDeque<(M, usize)>,
}

impl<M> RecvQueue<M> {
    /// A queue holding up to `capacity` payload bytes.
    pub fn new(capacity: usize) -> Self {
        RecvQueue {
            ring: vec![0; capacity],
            head: 0,
            used: 0,
            meta: VecDeque::new(),
        }
    }

    /// Payload bytes the queue can hold.
    pub fn capacity(&self) -> usize {
        self.ring.len()
    }

    /// Changes the capacity (SO_RCVBUF); queued datagrams are kept if they
    /// fit, and the oldest are dropped otherwise. Returns how many were
    /// dropped.
    pub fn set_capacity(&mut self, capacity: usize) -> usize {
        let mut kept: Vec<(M, Vec<u8>)> = Vec::new();
        let mut buf = vec![0u8; 65_536];
        while let Some((m, n)) = self.pop(&mut buf) {
            kept.push((m, buf[..n].to_vec()));
        }
        self.ring = vec![0; capacity];
        self.head = 0;
        self.used = 0;
        let mut dropped = 0;
        for (m, data) in kept {
            if !self.push(m, &data) {
                dropped += 1;
            }
        }
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

    /// Size of the oldest datagram.
    pub fn peek_len(&self) -> Option<usize> {
        self.meta.front().map(|(_, n)| *n)
    }

    /// Queues a datagram; false (and nothing queued) when it does not fit.
    pub fn push(&mut self, meta: M, data: &[u8]) -> bool {
        let cap = self.ring.len();
        if data.len() > cap - self.used {
            return false;
        }
        let tail = (self.head + self.used) % cap.max(1);
        let first = data.len().min(cap - tail);
        self.ring[tail..tail + first].copy_from_slice(&data[..first]);
        self.ring[..data.len() - first].copy_from_slice(&data[first..]);
        self.used += data.len();
        self.meta.push_back((meta, data.len()));
        true
    }

    /// Takes the oldest datagram, copying as much as fits into `buf`.
    /// Returns its metadata and its full length (which may exceed `buf`:
    /// like recvfrom on Linux, the excess is discarded).
    pub fn pop(&mut self, buf: &mut [u8]) -> Option<(M, usize)> {
        let (meta, len) = self.meta.pop_front()?;
        let cap = self.ring.len();
        let copy = len.min(buf.len());
        let first = copy.min(cap - self.head);
        buf[..first].copy_from_slice(&self.ring[self.head..self.head + first]);
        buf[first..copy].copy_from_slice(&self.ring[..copy - first]);
        self.head = (self.head + len) % cap.max(1);
        self.used -= len;
        if self.used == 0 {
            self.head = 0;
        }
        Some((meta, len))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_with_wraparound() {
        let mut q = RecvQueue::new(10);
        assert!(q.push(1, b"abcdef"));
        assert!(!q.push(2, b"ghijk"), "does not fit");
        assert!(q.push(2, b"ghij"));
        let mut buf = [0u8; 16];
        assert_eq!(q.pop(&mut buf), Some((1, 6)));
        assert_eq!(&buf[..6], b"abcdef");
        assert!(q.push(3, b"klmnop")); // wraps around the end of the ring
        assert_eq!(q.pop(&mut buf), Some((2, 4)));
        assert_eq!(&buf[..4], b"ghij");
        assert_eq!(q.pop(&mut buf), Some((3, 6)));
        assert_eq!(&buf[..6], b"klmnop");
        assert!(q.is_empty());
        assert_eq!(q.pop(&mut buf), None);
    }

    #[test]
    fn short_buffer_truncates_like_recvfrom() {
        let mut q = RecvQueue::new(64);
        q.push((), b"0123456789");
        let mut buf = [0u8; 4];
        assert_eq!(q.pop(&mut buf), Some(((), 10)));
        assert_eq!(&buf, b"0123");
        assert!(q.is_empty());
        assert_eq!(q.bytes(), 0);
    }

    #[test]
    fn empty_datagrams_are_kept() {
        let mut q = RecvQueue::new(4);
        assert!(q.push('a', b""));
        assert_eq!(q.len(), 1);
        let mut buf = [0u8; 4];
        assert_eq!(q.pop(&mut buf), Some(('a', 0)));
    }

    #[test]
    fn resize_keeps_what_fits() {
        let mut q = RecvQueue::new(100);
        q.push(1, &[1; 30]);
        q.push(2, &[2; 30]);
        q.push(3, &[3; 30]);
        assert_eq!(q.set_capacity(65), 1);
        assert_eq!(q.len(), 2);
        let mut buf = [0u8; 64];
        assert_eq!(q.pop(&mut buf), Some((1, 30)));
    }
}
