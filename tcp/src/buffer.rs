//! Send and receive buffers: byte rings that grow lazily up to their
//! configured size (a thousand idle connections do not each pin megabytes)
//! and only with the data they actually hold, the store of out-of-order
//! data, and the assembler that tracks out-of-order ranges inside the
//! receive window.
//!
//! Growth follows the stack's memory budget ([`MemoryPressure`]), the way
//! Linux's buffers follow `tcp_mem`: under pressure rings stop growing past
//! a modest size and out-of-order data is held only in small amounts; when
//! the budget is exhausted nothing grows past a 4 KiB floor (Linux's
//! `tcp_rmem[0]` guarantee) and out-of-order data is let go first.

use std::collections::BTreeMap;

/// How much the buffers may grow, set by the stack from its memory budget.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum MemoryPressure {
    /// Buffers grow as data needs, up to the socket's buffer sizes.
    #[default]
    Normal,
    /// The stack is short of memory: rings grow only up to
    /// [`PRESSURE_RING`], out-of-order data is held only up to
    /// [`PRESSURE_OOO`] bytes per connection, windows offer no more than
    /// that room.
    Pressure,
    /// The budget is spent: rings grow only up to [`MIN_RING`], new
    /// out-of-order data is dropped and what is held is released.
    Exhausted,
}

/// Ring size every connection may reach whatever the memory state (Linux
/// guarantees `tcp_rmem[0]`/`tcp_wmem[0]`, 4 KiB, to every socket), so that
/// no connection is starved outright.
pub const MIN_RING: usize = 4096;
/// Ring size a connection may grow to while the stack is under pressure.
pub const PRESSURE_RING: usize = 64 * 1024;
/// Out-of-order bytes (charged) a connection may hold under pressure.
pub const PRESSURE_OOO: usize = 64 * 1024;

impl MemoryPressure {
    /// The largest physical ring size allowed now for a ring of `current`
    /// bytes whose configured limit is `limit`.
    fn ring_allowance(self, current: usize, limit: usize) -> usize {
        let floor = match self {
            MemoryPressure::Normal => return limit,
            MemoryPressure::Pressure => PRESSURE_RING,
            MemoryPressure::Exhausted => MIN_RING,
        };
        current.max(floor).min(limit.max(current))
    }
}

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

    /// Makes the physical ring at least `needed` bytes (at most `max_len`,
    /// which the caller checked is at least `needed`), keeping the first
    /// `used` bytes (from head) in order.
    fn reserve(&mut self, needed: usize, used: usize, max_len: usize) {
        if needed <= self.buf.len() {
            return;
        }
        let new_len = needed
            .max(self.buf.len() * 2)
            .max(4096)
            .min(self.limit.max(needed))
            .min(max_len.max(needed));
        let mut new = vec![0u8; new_len];
        let (a, b) = self.slices(0, used);
        new[..a.len()].copy_from_slice(a);
        new[a.len()..a.len() + b.len()].copy_from_slice(b);
        self.buf = new;
        self.head = 0;
    }

    /// Frees the ring's memory (it must hold nothing).
    fn release(&mut self) {
        self.buf = Vec::new();
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
    pressure: MemoryPressure,
}

impl SendBuffer {
    /// An empty buffer that holds up to `capacity` bytes.
    pub fn new(capacity: usize) -> Self {
        SendBuffer {
            ring: Ring::new(capacity),
            len: 0,
            pressure: MemoryPressure::Normal,
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

    /// Sets how far the buffer may grow (from the stack's memory budget).
    pub fn set_pressure(&mut self, pressure: MemoryPressure) {
        self.pressure = pressure;
    }

    /// Room for more bytes: up to the capacity, and under memory pressure
    /// only as far as the ring may grow now.
    pub fn free(&self) -> usize {
        let allowed = self
            .pressure
            .ring_allowance(self.ring.buf.len(), self.ring.limit);
        allowed.min(self.ring.limit).saturating_sub(self.len)
    }

    /// True when memory pressure, not the capacity, is what limits
    /// [`free`](Self::free).
    pub fn limited_by_memory(&self) -> bool {
        self.free() < self.ring.limit.saturating_sub(self.len)
    }

    /// Appends as much of `data` as fits; returns how much.
    pub fn write(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(self.free());
        if n == 0 {
            return 0;
        }
        let allowed = self
            .pressure
            .ring_allowance(self.ring.buf.len(), self.ring.limit);
        self.ring.reserve(self.len + n, self.len, allowed);
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

    /// Bytes of memory the buffer holds (its ring).
    pub fn memory_used(&self) -> usize {
        self.ring.buf.capacity()
    }

    /// Frees the ring if it holds nothing; returns the bytes freed.
    pub fn release_if_empty(&mut self) -> usize {
        if self.len > 0 {
            return 0;
        }
        let freed = self.ring.buf.capacity();
        self.ring.release();
        freed
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

    /// Absolute stream position of RCV.NXT.
    pub(crate) fn base(&self) -> u64 {
        self.base
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

/// Memory charged per stored out-of-order chunk on top of its bytes (the
/// map node and the vector header), so that a flood of one-byte segments
/// costs what it really costs.
pub const CHUNK_OVERHEAD: usize = 64;
/// Largest out-of-order chunk: in-order runs of out-of-order segments are
/// appended to one chunk up to this size, then a new chunk starts (this
/// bounds the slack of a growing chunk).
const MAX_CHUNK: usize = 64 * 1024;

/// Bytes received: the contiguous part the application may read, in a ring
/// that grows with the data it holds, and out-of-order data kept apart in
/// chunks keyed by stream position (as Linux keeps out-of-order segments in
/// a tree beside the receive queue). One byte at the far edge of the window
/// therefore costs one small chunk, not a ring the size of the window.
#[derive(Debug)]
pub struct RecvBuffer {
    ring: Ring,
    readable: usize,
    assembler: Assembler,
    /// Out-of-order bytes: absolute stream position -> bytes. Disjoint;
    /// their union is exactly the assembler's ranges.
    ooo: BTreeMap<u64, Vec<u8>>,
    /// Memory charged for `ooo` (capacities plus [`CHUNK_OVERHEAD`] each).
    ooo_charged: usize,
    pressure: MemoryPressure,
}

/// Why a segment's data was not stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InsertError {
    /// Too many separate out-of-order ranges ([`Assembler::MAX_RANGES`]).
    TooManyRanges,
    /// The connection's out-of-order store is at its limit (the receive
    /// buffer size, or [`PRESSURE_OOO`] under memory pressure).
    OutOfOrderFull,
    /// The stack's memory budget does not allow the buffer to grow.
    NoMemory,
}

impl RecvBuffer {
    /// An empty buffer of `capacity` bytes (SO_RCVBUF).
    pub fn new(capacity: usize) -> Self {
        RecvBuffer {
            ring: Ring::new(capacity),
            readable: 0,
            assembler: Assembler::default(),
            ooo: BTreeMap::new(),
            ooo_charged: 0,
            pressure: MemoryPressure::Normal,
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

    /// Sets how far the buffer may grow (from the stack's memory budget).
    /// When the budget is exhausted, out-of-order data held is released
    /// (returns the bytes freed): the peer retransmits it, and since its
    /// ranges are forgotten we stop SACKing them (RFC 2018 8 allows a
    /// receiver to discard SACKed data).
    pub fn set_pressure(&mut self, pressure: MemoryPressure) -> usize {
        self.pressure = pressure;
        if pressure == MemoryPressure::Exhausted && !self.ooo.is_empty() {
            return self.drop_out_of_order();
        }
        0
    }

    /// Forgets all out-of-order data; returns the bytes freed.
    pub fn drop_out_of_order(&mut self) -> usize {
        let freed = self.ooo_charged;
        self.ooo.clear();
        self.ooo_charged = 0;
        self.assembler.clear();
        freed
    }

    /// Bytes the application can read now.
    pub fn readable(&self) -> usize {
        self.readable
    }

    /// Free space: the receive window we can offer.
    pub fn window(&self) -> usize {
        self.ring.limit - self.readable
    }

    /// The window the memory state allows now: [`window`](Self::window),
    /// limited under pressure to what the ring may grow to, and clamped to
    /// the pressure floor however large the ring already is (as Linux
    /// clamps `rcv_ssthresh` under `tcp_mem` pressure), so that peers send
    /// less while memory is short.
    pub fn window_allowed(&self) -> usize {
        let clamp = match self.pressure {
            MemoryPressure::Normal => return self.window(),
            MemoryPressure::Pressure => PRESSURE_RING,
            MemoryPressure::Exhausted => MIN_RING,
        };
        let allowed = self
            .pressure
            .ring_allowance(self.ring.buf.len(), self.ring.limit);
        self.window()
            .min(clamp)
            .min(allowed.saturating_sub(self.readable))
    }

    /// The out-of-order tracker.
    pub fn assembler(&self) -> &Assembler {
        &self.assembler
    }

    /// Bytes of memory held: the ring and the out-of-order chunks.
    pub fn memory_used(&self) -> usize {
        self.ring.buf.capacity() + self.ooo_charged
    }

    /// Out-of-order bytes held (without overhead).
    pub fn out_of_order_bytes(&self) -> usize {
        self.ooo.values().map(Vec::len).sum()
    }

    /// Frees the ring if it holds nothing; returns the bytes freed.
    pub fn release_if_empty(&mut self) -> usize {
        if self.readable > 0 || !self.ooo.is_empty() {
            return 0;
        }
        let freed = self.ring.buf.capacity();
        self.ring.release();
        freed
    }

    /// Stores `data` at `offset` bytes past the contiguous data (offset 0 is
    /// RCV.NXT). The caller has trimmed it to the window. Returns how many
    /// bytes became contiguous (RCV.NXT advances by that much), or why the
    /// segment was dropped (nothing of it is stored then).
    pub fn insert(&mut self, offset: usize, data: &[u8]) -> Result<usize, InsertError> {
        let end = offset + data.len();
        debug_assert!(end <= self.window(), "caller trims to the window");
        if data.is_empty() {
            return Ok(0);
        }
        if offset > 0 {
            if self.assembler.contains(offset, end) {
                return Ok(0); // duplicate of data already held
            }
            return self.insert_out_of_order(offset, data).map(|()| 0);
        }
        // In order: the ring grows by this segment (within what the memory
        // state allows), then out-of-order chunks it now reaches move in.
        let allowed = self
            .pressure
            .ring_allowance(self.ring.buf.len(), self.ring.limit);
        if self.readable + data.len() > allowed {
            return Err(InsertError::NoMemory);
        }
        let base = self.assembler.base();
        let reaches_ooo = self
            .ooo
            .first_key_value()
            .is_some_and(|(&k, _)| k <= base + data.len() as u64);
        if !reaches_ooo {
            self.ring
                .reserve(self.readable + data.len(), self.readable, allowed);
            self.ring.write_at(self.readable, data);
            self.readable += data.len();
            self.assembler.advance(data.len());
            return Ok(data.len());
        }
        // Touches the first out-of-order range: merges with it (no new
        // range, so the range limit cannot refuse it).
        self.assembler.add(0, end);
        let contiguous = self.assembler.take_front();
        // The chunks' memory is freed as they move, so the ring may take
        // them whatever the memory state.
        self.ring
            .reserve(self.readable + contiguous, self.readable, self.ring.limit);
        self.ring.write_at(self.readable, data);
        let reach = base + contiguous as u64;
        while let Some(entry) = self.ooo.first_entry() {
            let start = *entry.key();
            if start >= reach {
                break;
            }
            let chunk = entry.remove();
            self.ooo_charged -= chunk.capacity() + CHUNK_OVERHEAD;
            let chunk_end = start + chunk.len() as u64;
            debug_assert!(chunk_end <= reach, "chunks lie inside assembler ranges");
            // Skip what the in-order segment already covered.
            let from = start.max(base + data.len() as u64);
            if from < chunk_end {
                let bytes = &chunk[(from - start) as usize..];
                self.ring
                    .write_at(self.readable + (from - base) as usize, bytes);
            }
        }
        self.readable += contiguous;
        Ok(contiguous)
    }

    /// Keeps an out-of-order segment: only the parts no chunk holds yet are
    /// stored (the first copy of a byte wins), appended to the chunk they
    /// continue where possible. O(log chunks) per piece.
    fn insert_out_of_order(&mut self, offset: usize, data: &[u8]) -> Result<(), InsertError> {
        let limit = match self.pressure {
            MemoryPressure::Exhausted => return Err(InsertError::NoMemory),
            MemoryPressure::Pressure => PRESSURE_OOO,
            // The window bounds the bytes; the slack covers chunk overhead
            // and the spare room of growing chunks.
            MemoryPressure::Normal => self.ring.limit + self.ring.limit / 8 + MAX_CHUNK,
        };
        let base = self.assembler.base();
        let (start, end) = (base + offset as u64, base + (offset + data.len()) as u64);
        // First pass: what storing would cost.
        let mut cost = 0;
        self.for_each_gap(start, end, |a, b| cost += (b - a) as usize + CHUNK_OVERHEAD);
        if self.ooo_charged + cost > limit {
            return Err(if self.pressure == MemoryPressure::Normal {
                InsertError::OutOfOrderFull
            } else {
                InsertError::NoMemory
            });
        }
        if !self.assembler.add(offset, offset + data.len()) {
            return Err(InsertError::TooManyRanges);
        }
        let mut gaps = [(0u64, 0u64); 8];
        let mut pos = start;
        // Second pass, in batches so that no allocation is needed.
        while pos < end {
            let mut n = 0;
            let mut next = end;
            self.for_each_gap(pos, end, |a, b| {
                if n < gaps.len() {
                    gaps[n] = (a, b);
                    n += 1;
                } else if a < next {
                    next = a;
                }
            });
            if n == 0 {
                break;
            }
            for &(a, b) in &gaps[..n] {
                let bytes = &data[(a - start) as usize..(b - start) as usize];
                self.store_piece(a, bytes);
            }
            if next == end {
                break;
            }
            pos = next;
        }
        Ok(())
    }

    /// Calls `f(a, b)` for each part of `[start, end)` no chunk covers, in
    /// order.
    fn for_each_gap(&self, start: u64, end: u64, mut f: impl FnMut(u64, u64)) {
        let mut pos = start;
        if let Some((&k, v)) = self.ooo.range(..=pos).next_back() {
            pos = pos.max(k + v.len() as u64);
        }
        while pos < end {
            let next = self.ooo.range(pos..end).next();
            let gap_end = next.map_or(end, |(&k, _)| k);
            if gap_end > pos {
                f(pos, gap_end);
            }
            match next {
                Some((&k, v)) => pos = k + v.len() as u64,
                None => break,
            }
        }
    }

    /// Stores bytes at absolute position `at` (no chunk covers them).
    fn store_piece(&mut self, at: u64, bytes: &[u8]) {
        // Continue the chunk that ends exactly here, if it has room.
        if let Some((&k, chunk)) = self.ooo.range_mut(..at).next_back()
            && k + chunk.len() as u64 == at
            && chunk.len() + bytes.len() <= MAX_CHUNK
        {
            let before = chunk.capacity();
            if chunk.capacity() < chunk.len() + bytes.len() {
                // Doubling, capped at MAX_CHUNK: amortized O(1) per byte,
                // with at most half a chunk of spare room.
                let want = (chunk.len() + bytes.len())
                    .max(chunk.capacity() * 2)
                    .min(MAX_CHUNK);
                chunk.reserve_exact(want - chunk.len());
            }
            chunk.extend_from_slice(bytes);
            self.ooo_charged += chunk.capacity() - before;
            return;
        }
        let chunk = bytes.to_vec();
        self.ooo_charged += chunk.capacity() + CHUNK_OVERHEAD;
        self.ooo.insert(at, chunk);
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
        assert_eq!(r.insert(5, b"fghij"), Ok(0));
        assert_eq!(r.readable(), 0);
        assert_eq!(r.insert(12, b"mn"), Ok(0));
        assert_eq!(r.insert(0, b"abcde"), Ok(10));
        assert_eq!(r.insert(0, b"kl"), Ok(4));
        let mut out = [0u8; 32];
        let n = r.read(&mut out);
        assert_eq!(&out[..n], b"abcdefghijklmn");
        assert_eq!(r.window(), 100);
        // Duplicate out-of-order data is absorbed.
        assert_eq!(r.insert(3, b"xyz"), Ok(0));
        assert_eq!(r.insert(3, b"xyz"), Ok(0));
        assert_eq!(r.assembler().len(), 1);
    }

    #[test]
    fn out_of_order_data_far_beyond_the_ring_grows_it() {
        // One stream, delivered as: a little in order, a piece far past the
        // ring's current physical size, a piece in between, then the rest.
        let stream: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut r = RecvBuffer::new(1 << 20);
        assert_eq!(r.insert(0, &stream[..100]), Ok(100));
        let at = |o: usize, n: usize| &stream[100 + o..100 + o + n];
        assert_eq!(r.insert(200_000, at(200_000, 3000)), Ok(0));
        assert_eq!(r.insert(5000, at(5000, 1000)), Ok(0));
        assert_eq!(r.insert(0, at(0, 200_000)), Ok(203_000));
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

    /// A tiny deterministic generator for the property tests.
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            self.0 >> 33
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    #[test]
    fn one_byte_at_the_far_edge_does_not_grow_the_ring() {
        let mut r = RecvBuffer::new(1 << 20);
        assert_eq!(r.insert((1 << 20) - 1, b"x"), Ok(0));
        assert!(
            r.memory_used() <= 1 + CHUNK_OVERHEAD,
            "held {} bytes for one",
            r.memory_used()
        );
        assert_eq!(r.ring.buf.len(), 0, "the ring holds in-order data only");
        // The byte is delivered once the gap fills.
        let gap = vec![7u8; (1 << 20) - 1];
        assert_eq!(r.insert(0, &gap), Ok(1 << 20));
        let mut out = vec![0u8; 1 << 20];
        assert_eq!(r.read(&mut out), 1 << 20);
        assert_eq!(out[(1 << 20) - 1], b'x');
        assert!(out[..(1 << 20) - 1].iter().all(|&b| b == 7));
        assert_eq!(r.memory_used(), r.ring.buf.capacity(), "no chunk left");
    }

    #[test]
    fn segments_in_any_order_with_overlaps_arrive_byte_exact() {
        let mut rng = Lcg(42);
        for round in 0..20 {
            let limit = 64 * 1024 + rng.below(200_000);
            let stream: Vec<u8> = (0..limit * 3).map(|i| (i * 31 % 251) as u8).collect();
            let mut r = RecvBuffer::new(limit);
            let (mut got, mut nxt) = (Vec::new(), 0usize);
            let mut out = vec![0u8; 50_000];
            while nxt < stream.len() {
                // A burst of segments anywhere in the window, any order,
                // overlapping, duplicated; then the one at RCV.NXT.
                let window = r.window();
                for _ in 0..rng.below(40) {
                    let off = rng.below(window.max(1));
                    let len = (1 + rng.below(3000))
                        .min(window - off)
                        .min(stream.len() - nxt - off.min(stream.len() - nxt));
                    if len == 0 {
                        continue;
                    }
                    let seg = &stream[nxt + off..nxt + off + len];
                    let _ = r.insert(off, seg);
                    assert!(
                        r.memory_used() <= limit * 2 + 3 * MAX_CHUNK,
                        "round {round}: {} held for a {limit} buffer",
                        r.memory_used()
                    );
                }
                let len = (1 + rng.below(5000)).min(window).min(stream.len() - nxt);
                let advanced = r.insert(0, &stream[nxt..nxt + len]).expect("in order");
                assert!(advanced >= len);
                nxt += advanced;
                if rng.below(3) > 0 {
                    let n = r.read(&mut out);
                    got.extend_from_slice(&out[..n]);
                }
            }
            while r.readable() > 0 {
                let n = r.read(&mut out);
                got.extend_from_slice(&out[..n]);
            }
            assert_eq!(got, stream, "round {round}");
            assert_eq!(r.out_of_order_bytes(), 0);
        }
    }

    #[test]
    fn a_flood_of_one_byte_segments_is_bounded_by_the_buffer_size() {
        let limit = 256 * 1024;
        let mut r = RecvBuffer::new(limit);
        let mut refused = 0;
        for off in (1..limit).step_by(2) {
            match r.insert(off, b"z") {
                Ok(0) => {}
                Err(InsertError::OutOfOrderFull | InsertError::TooManyRanges) => refused += 1,
                other => panic!("{other:?}"),
            }
        }
        assert!(refused > 0);
        assert!(r.memory_used() <= limit + limit / 8 + MAX_CHUNK);
        assert!(r.assembler().len() <= Assembler::MAX_RANGES);
    }

    #[test]
    fn many_out_of_order_pieces_in_reverse_are_bounded() {
        let limit = 1 << 20;
        let mut r = RecvBuffer::new(limit);
        // Each piece ends where the previous (stored) one starts, so none
        // continues a chunk: one chunk each, all in one assembler range.
        let mut off = limit - 10;
        let mut refused = 0;
        while off > 10 {
            match r.insert(off, &[1u8; 10]) {
                Ok(_) => {}
                Err(_) => refused += 1,
            }
            off -= 10;
        }
        assert!(refused > 0, "the charge per chunk must cap the store");
        assert!(r.memory_used() <= limit + limit / 8 + MAX_CHUNK);
        assert_eq!(r.assembler().len(), 1);
    }

    #[test]
    fn memory_pressure_limits_growth_and_drops_out_of_order_data_first() {
        let mut r = RecvBuffer::new(1 << 20);
        r.insert(0, &[1; 1000]).unwrap();
        r.insert(5000, &[2; 1000]).unwrap();
        assert!(r.window_allowed() > PRESSURE_RING);
        r.set_pressure(MemoryPressure::Pressure);
        assert!(r.window_allowed() <= PRESSURE_RING);
        assert_eq!(
            r.insert(0, &vec![3; PRESSURE_RING]),
            Err(InsertError::NoMemory),
            "in order, but past what the ring may grow to"
        );
        assert_eq!(
            r.insert(200_000, &vec![3; PRESSURE_OOO]),
            Err(InsertError::NoMemory)
        );
        assert_eq!(r.insert(10_000, &[4; 100]), Ok(0), "a little is still kept");
        let held = r.memory_used();
        let freed = r.set_pressure(MemoryPressure::Exhausted);
        assert!(freed >= 1100);
        assert_eq!(r.memory_used(), held - freed);
        assert!(r.assembler().is_empty());
        assert_eq!(r.insert(3000, &[5; 10]), Err(InsertError::NoMemory));
        assert!(r.window_allowed() <= MIN_RING.max(r.ring.buf.len()));
        // In-order data that fits what is already allocated still goes in.
        assert_eq!(r.insert(0, &[6; 100]), Ok(100));
        r.set_pressure(MemoryPressure::Normal);
        assert_eq!(r.insert(0, &vec![7; 100_000]), Ok(100_000));
        let mut out = vec![0u8; 200_000];
        let n = r.read(&mut out);
        assert_eq!(n, 101_100);
        assert!(r.release_if_empty() > 0);
        assert_eq!(r.memory_used(), 0);
    }

    #[test]
    fn send_buffer_follows_memory_pressure_and_releases_when_empty() {
        let mut b = SendBuffer::new(1 << 20);
        b.set_pressure(MemoryPressure::Exhausted);
        assert_eq!(b.free(), MIN_RING);
        assert!(b.limited_by_memory());
        assert_eq!(b.write(&[1; 10_000]), MIN_RING);
        b.set_pressure(MemoryPressure::Pressure);
        assert_eq!(b.free(), PRESSURE_RING - MIN_RING);
        b.set_pressure(MemoryPressure::Normal);
        assert_eq!(b.free(), (1 << 20) - MIN_RING);
        assert!(!b.limited_by_memory());
        assert_eq!(b.release_if_empty(), 0, "holds data");
        b.consume(MIN_RING);
        assert!(b.release_if_empty() >= MIN_RING);
        assert_eq!(b.memory_used(), 0);
        assert_eq!(b.write(b"again"), 5);
    }
}
