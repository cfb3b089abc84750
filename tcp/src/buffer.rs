//! Send and receive buffers: byte rings that grow lazily up to their
//! configured size (a thousand idle connections do not each pin megabytes),
//! and the assembler that tracks out-of-order data inside the receive window.

/// A ring of bytes that grows on demand up to `limit`.
#[derive(Debug)]
struct Ring {
    buf: Vec<u8>,
    head: usize,
    limit: usize,
}

impl Ring {
    fn new(limit: usize) -> Self {
        Ring {
            buf: Vec::new(),
            head: 0,
            limit,
        }
    }

    /// Makes the physical ring at least `needed` bytes (at most `limit`),
    /// keeping the first `used` bytes (from head) in order.
    fn reserve(&mut self, needed: usize, used: usize) {
        if needed <= self.buf.len() {
            return;
        }
        let new_len = needed
            .max(self.buf.len() * 2)
            .max(4096)
            .min(self.limit.max(needed));
        let mut new = vec![0u8; new_len];
        let (a, b) = self.slices(0, used);
        new[..a.len()].copy_from_slice(a);
        new[a.len()..a.len() + b.len()].copy_from_slice(b);
        self.buf = new;
        self.head = 0;
    }

    /// Up to `len` bytes at `offset` from head, as two slices.
    fn slices(&self, offset: usize, len: usize) -> (&[u8], &[u8]) {
        let cap = self.buf.len();
        if cap == 0 || len == 0 {
            return (&[], &[]);
        }
        let start = (self.head + offset) % cap;
        let first = len.min(cap - start);
        (&self.buf[start..start + first], &self.buf[..len - first])
    }

    /// Copies `data` to `offset` from head (the ring must be big enough).
    fn write_at(&mut self, offset: usize, data: &[u8]) {
        let cap = self.buf.len();
        let start = (self.head + offset) % cap;
        let first = data.len().min(cap - start);
        self.buf[start..start + first].copy_from_slice(&data[..first]);
        self.buf[..data.len() - first].copy_from_slice(&data[first..]);
    }

    fn advance(&mut self, n: usize) {
        if !self.buf.is_empty() {
            self.head = (self.head + n) % self.buf.len();
        }
    }
}

/// Bytes the application wrote that are not yet acknowledged: the first
/// byte is at sequence number SND.UNA (or ISS+1 before the SYN is acked).
#[derive(Debug)]
pub struct SendBuffer {
    ring: Ring,
    len: usize,
}

impl SendBuffer {
    /// An empty buffer that holds up to `capacity` bytes.
    pub fn new(capacity: usize) -> Self {
        SendBuffer {
            ring: Ring::new(capacity),
            len: 0,
        }
    }

    /// Bytes held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Most bytes the buffer may hold (SO_SNDBUF).
    pub fn capacity(&self) -> usize {
        self.ring.limit
    }

    /// Changes the capacity; never below what is held.
    pub fn set_capacity(&mut self, capacity: usize) {
        self.ring.limit = capacity.max(self.len);
    }

    /// Room for more bytes.
    pub fn free(&self) -> usize {
        self.ring.limit.saturating_sub(self.len)
    }

    /// Appends as much of `data` as fits; returns how much.
    pub fn write(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(self.free());
        if n == 0 {
            return 0;
        }
        self.ring.reserve(self.len + n, self.len);
        self.ring.write_at(self.len, &data[..n]);
        self.len += n;
        n
    }

    /// Up to `len` bytes starting `offset` bytes into the buffer.
    pub fn slices(&self, offset: usize, len: usize) -> (&[u8], &[u8]) {
        let len = len.min(self.len.saturating_sub(offset));
        self.ring.slices(offset, len)
    }

    /// Drops `n` acknowledged bytes from the front.
    pub fn consume(&mut self, n: usize) {
        let n = n.min(self.len);
        self.ring.advance(n);
        self.len -= n;
    }
}

/// Out-of-order ranges held beyond the contiguous data. Offsets in the API
/// are relative to RCV.NXT; inside, ranges are kept as absolute stream
/// positions so that advancing RCV.NXT never shifts them. Bounded: a segment
/// that would need more than `MAX_RANGES` separate ranges is dropped (the
/// sender will retransmit it). The bound is generous because a drop-tail
/// queue that overflows during slow start drops every other segment, which
/// leaves hundreds of separate ranges that must all be SACKed for loss
/// recovery to proceed without a timeout.
#[derive(Debug, Default)]
pub struct Assembler {
    /// (start, end, recency), absolute positions, sorted by start,
    /// disjoint and not adjacent.
    ranges: std::collections::VecDeque<(u64, u64, u64)>,
    /// Absolute position of RCV.NXT.
    base: u64,
    clock: u64,
}

impl Assembler {
    /// Most separate out-of-order ranges held.
    pub const MAX_RANGES: usize = 1024;

    /// True when no out-of-order data is held.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Number of ranges.
    pub fn len(&self) -> usize {
        self.ranges.len()
    }

    /// Records bytes `start..end` (relative to RCV.NXT). Returns false (and
    /// records nothing) when that would exceed the range limit.
    pub fn add(&mut self, start: usize, end: usize) -> bool {
        if start >= end {
            return true;
        }
        let (start, end) = (self.base + start as u64, self.base + end as u64);
        self.clock += 1;
        let clock = self.clock;
        // Ranges overlapping or touching [start, end] merge into one.
        let first = self.ranges.partition_point(|r| r.1 < start);
        let last = self.ranges.partition_point(|r| r.0 <= end);
        if first == last {
            if self.ranges.len() >= Self::MAX_RANGES {
                return false;
            }
            self.ranges.insert(first, (start, end, clock));
            return true;
        }
        let lo = start.min(self.ranges[first].0);
        let hi = end.max(self.ranges[last - 1].1);
        self.ranges.drain(first + 1..last);
        self.ranges[first] = (lo, hi, clock);
        true
    }

    /// If a range starts at RCV.NXT, removes it and returns its length
    /// (RCV.NXT advances by that much).
    pub fn take_front(&mut self) -> usize {
        match self.ranges.front() {
            Some(&(start, end, _)) if start == self.base => {
                self.ranges.pop_front();
                self.base = end;
                (end - start) as usize
            }
            _ => 0,
        }
    }

    /// RCV.NXT moved by `n` bytes of in-order data that was not held here.
    pub fn advance(&mut self, n: usize) {
        self.base += n as u64;
    }

    /// True when every byte of `start..end` (relative) is already held.
    pub fn contains(&self, start: usize, end: usize) -> bool {
        let (start, end) = (self.base + start as u64, self.base + end as u64);
        let i = self.ranges.partition_point(|r| r.1 < end);
        self.ranges
            .get(i)
            .is_some_and(|r| r.0 <= start && end <= r.1)
    }

    /// Ranges (relative), most recently extended first (RFC 2018 section 4:
    /// the first SACK block covers the most recent segment, then the next
    /// most recent). At most `limit` are returned.
    pub fn by_recency(&self, out: &mut Vec<(usize, usize)>, limit: usize) {
        out.clear();
        // A partial selection of the `limit` most recent ranges: the list is
        // short (`limit` is 3 or 4), so this stays linear in the range count.
        let mut best: [Option<(u64, u64, u64)>; 4] = [None; 4];
        let limit = limit.min(4);
        for &r in &self.ranges {
            let mut cand = Some(r);
            for slot in best.iter_mut().take(limit) {
                match (*slot, cand) {
                    (None, c) => {
                        *slot = c;
                        break;
                    }
                    (Some(cur), Some(c)) if c.2 > cur.2 => {
                        *slot = Some(c);
                        cand = Some(cur);
                    }
                    _ => {}
                }
            }
        }
        out.extend(
            best.iter()
                .take(limit)
                .flatten()
                .map(|r| ((r.0 - self.base) as usize, (r.1 - self.base) as usize)),
        );
    }

    /// Offset (relative) one past the highest byte held.
    pub fn highest(&self) -> usize {
        self.ranges.back().map_or(0, |r| (r.1 - self.base) as usize)
    }

    /// Forgets everything.
    pub fn clear(&mut self) {
        self.ranges.clear();
    }
}

/// Bytes received: the contiguous part the application may read, followed
/// by out-of-order data placed at its offset in the window.
#[derive(Debug)]
pub struct RecvBuffer {
    ring: Ring,
    readable: usize,
    assembler: Assembler,
}

impl RecvBuffer {
    /// An empty buffer of `capacity` bytes (SO_RCVBUF).
    pub fn new(capacity: usize) -> Self {
        RecvBuffer {
            ring: Ring::new(capacity),
            readable: 0,
            assembler: Assembler::default(),
        }
    }

    /// The capacity.
    pub fn capacity(&self) -> usize {
        self.ring.limit
    }

    /// Changes the capacity; never below what is held.
    pub fn set_capacity(&mut self, capacity: usize) {
        self.ring.limit = capacity.max(self.readable + self.assembler.highest());
    }

    /// Bytes the application can read now.
    pub fn readable(&self) -> usize {
        self.readable
    }

    /// Free space: the receive window we can offer.
    pub fn window(&self) -> usize {
        self.ring.limit - self.readable
    }

    /// The out-of-order tracker.
    pub fn assembler(&self) -> &Assembler {
        &self.assembler
    }

    /// Stores `data` at `offset` bytes past the contiguous data (offset 0 is
    /// RCV.NXT). The caller has trimmed it to the window. Returns how many
    /// bytes became contiguous (RCV.NXT advances by that much), or `None`
    /// when the segment was dropped for lack of assembler room.
    pub fn insert(&mut self, offset: usize, data: &[u8]) -> Option<usize> {
        let end = offset + data.len();
        debug_assert!(end <= self.window(), "caller trims to the window");
        if data.is_empty() {
            return Some(0);
        }
        if offset > 0 && self.assembler.contains(offset, end) {
            return Some(0); // duplicate of data already held
        }
        // Grow the ring first, preserving what it holds now (the new range
        // is not recorded yet, so it does not count as held).
        let held = self.readable + self.assembler.highest();
        self.ring
            .reserve(self.readable + end.max(self.assembler.highest()), held);
        if offset > 0 && !self.assembler.add(offset, end) {
            return None;
        }
        self.ring.write_at(self.readable + offset, data);
        let advanced = if offset == 0 {
            // In order: this range plus any out-of-order data it now touches.
            if self.assembler.is_empty() {
                self.assembler.advance(end);
                end
            } else {
                self.assembler.add(0, end);
                self.assembler.take_front()
            }
        } else {
            0
        };
        self.readable += advanced;
        Some(advanced)
    }

    /// Copies readable bytes into `out`; returns how many.
    pub fn read(&mut self, out: &mut [u8]) -> usize {
        let n = out.len().min(self.readable);
        let (a, b) = self.ring.slices(0, n);
        out[..a.len()].copy_from_slice(a);
        out[a.len()..n].copy_from_slice(b);
        self.ring.advance(n);
        self.readable -= n;
        n
    }

    /// The readable bytes as (up to) two slices, without consuming them.
    pub fn peek(&self) -> (&[u8], &[u8]) {
        self.ring.slices(0, self.readable)
    }

    /// Consumes `n` readable bytes (after [`peek`](Self::peek)).
    pub fn consume(&mut self, n: usize) {
        let n = n.min(self.readable);
        self.ring.advance(n);
        self.readable -= n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn send_buffer_ring() {
        let mut b = SendBuffer::new(10);
        assert_eq!(b.write(b"abcdefgh"), 8);
        assert_eq!(b.write(b"ijkl"), 2);
        assert_eq!(b.free(), 0);
        b.consume(6);
        assert_eq!(b.write(b"mnopq"), 5);
        let (x, y) = b.slices(0, 100);
        let all: Vec<u8> = x.iter().chain(y).copied().collect();
        assert_eq!(all, b"ghijmnopq");
        let (x, y) = b.slices(3, 3);
        let part: Vec<u8> = x.iter().chain(y).copied().collect();
        assert_eq!(part, b"jmn");
    }

    #[test]
    fn send_buffer_grows_lazily() {
        let mut b = SendBuffer::new(1 << 20);
        assert_eq!(b.ring.buf.len(), 0);
        b.write(&[1; 100]);
        assert!(b.ring.buf.len() < 10_000);
        b.consume(50);
        b.write(&[2; 50_000]);
        let (x, y) = b.slices(0, b.len());
        let all: Vec<u8> = x.iter().chain(y).copied().collect();
        assert_eq!(&all[..50], &[1; 50][..]);
        assert_eq!(&all[50..], &vec![2; 50_000][..]);
    }

    #[test]
    fn assembler_merges_and_bounds() {
        let mut a = Assembler::default();
        assert!(a.add(10, 20));
        assert!(a.add(30, 40));
        assert!(a.add(20, 30)); // bridges both
        assert_eq!(a.len(), 1);
        assert!(a.contains(15, 35));
        assert!(!a.contains(5, 15));
        assert_eq!(a.take_front(), 0);
        assert!(a.add(0, 10));
        assert_eq!(a.take_front(), 40);
        assert!(a.is_empty());
        for i in 0..Assembler::MAX_RANGES {
            assert!(a.add(i * 10 + 1, i * 10 + 5));
        }
        assert!(!a.add(100_000, 100_001), "range limit");
        assert!(a.add(2, 3), "inside an existing range is fine");
    }

    #[test]
    fn recency_order() {
        let mut a = Assembler::default();
        a.add(10, 20);
        a.add(30, 40);
        a.add(50, 60);
        a.add(12, 14);
        let mut v = Vec::new();
        a.by_recency(&mut v, 4);
        assert_eq!(v, vec![(10, 20), (50, 60), (30, 40)]);
        a.by_recency(&mut v, 2);
        assert_eq!(v, vec![(10, 20), (50, 60)]);
    }

    #[test]
    fn recv_buffer_reorders() {
        let mut r = RecvBuffer::new(100);
        assert_eq!(r.insert(5, b"fghij"), Some(0));
        assert_eq!(r.readable(), 0);
        assert_eq!(r.insert(12, b"mn"), Some(0));
        assert_eq!(r.insert(0, b"abcde"), Some(10));
        assert_eq!(r.insert(0, b"kl"), Some(4));
        let mut out = [0u8; 32];
        let n = r.read(&mut out);
        assert_eq!(&out[..n], b"abcdefghijklmn");
        assert_eq!(r.window(), 100);
        // Duplicate out-of-order data is absorbed.
        assert_eq!(r.insert(3, b"xyz"), Some(0));
        assert_eq!(r.insert(3, b"xyz"), Some(0));
        assert_eq!(r.assembler().len(), 1);
    }

    #[test]
    fn out_of_order_data_far_beyond_the_ring_grows_it() {
        // One stream, delivered as: a little in order, a piece far past the
        // ring's current physical size, a piece in between, then the rest.
        let stream: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut r = RecvBuffer::new(1 << 20);
        assert_eq!(r.insert(0, &stream[..100]), Some(100));
        let at = |o: usize, n: usize| &stream[100 + o..100 + o + n];
        assert_eq!(r.insert(200_000, at(200_000, 3000)), Some(0));
        assert_eq!(r.insert(5000, at(5000, 1000)), Some(0));
        assert_eq!(r.insert(0, at(0, 200_000)), Some(203_000));
        let mut out = vec![0u8; 300_000];
        let n = r.read(&mut out);
        assert_eq!(n, 203_100);
        assert_eq!(&out[..n], &stream[..n], "held data survived the growth");
    }

    #[test]
    fn recv_buffer_wraps_and_grows() {
        let mut r = RecvBuffer::new(64 * 1024);
        let data: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
        let mut got = Vec::new();
        let mut off = 0;
        let mut out = vec![0u8; 7000];
        while off < data.len() {
            let n = (data.len() - off).min(1460).min(r.window());
            r.insert(0, &data[off..off + n]).unwrap();
            off += n;
            let k = r.read(&mut out);
            got.extend_from_slice(&out[..k]);
        }
        while r.readable() > 0 {
            let k = r.read(&mut out);
            got.extend_from_slice(&out[..k]);
        }
        assert_eq!(got, data);
    }
}
