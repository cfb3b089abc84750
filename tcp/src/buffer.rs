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
mod tests;
