//! IPv4 reassembly (RFC 791 section 3.2, with the hole-descriptor algorithm
//! of RFC 815).
//!
//! Fragments are keyed by (source, destination, protocol, identification).
//! Each partial datagram keeps the RFC 815 hole list and only the bytes that
//! filled a hole, so duplicates cost no memory. Where a new fragment overlaps
//! bytes already held, the bytes must agree: a disagreement discards the whole
//! datagram, which defeats overlap attacks (teardrop and the like, and
//! rewriting a TCP/UDP header behind a filter's back).
//!
//! Limits: the largest datagram (65,535 bytes; a fragment reaching past it is
//! the "ping of death" and is dropped), a per-datagram timeout after which the
//! partial is freed and reported (so the caller can send ICMP Time Exceeded
//! when the first fragment had arrived), and a cap on the bytes held by all
//! partials together, enforced by evicting the oldest. Memory is charged per
//! stored piece plus a fixed overhead, so floods of tiny fragments are held to
//! the cap as well.

use std::collections::{HashMap, VecDeque};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use crate::Ipv4Repr;

/// Limits of the reassembler.
#[derive(Clone, Debug)]
pub struct ReassemblyConfig {
    /// Largest datagram (header included) that may be reassembled.
    pub max_datagram: usize,
    /// Time a partial datagram may wait for its missing fragments.
    pub timeout: Duration,
    /// Bytes all partial datagrams may hold together.
    pub max_held_bytes: usize,
}

impl Default for ReassemblyConfig {
    fn default() -> Self {
        ReassemblyConfig {
            max_datagram: Ipv4Repr::MAX_PACKET_LEN,
            timeout: Duration::from_secs(30),
            max_held_bytes: 4 * 1024 * 1024,
        }
    }
}

/// Why a fragment (or the datagram it belonged to) was dropped.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ReassemblyError {
    /// A non-final fragment whose length is zero or not a multiple of 8.
    BadFragmentLength,
    /// The fragment reaches past the largest datagram ("ping of death").
    TooLong,
    /// Overlapping fragments disagree on content: the datagram is discarded.
    OverlapConflict,
    /// Fragments disagree on where the datagram ends: the datagram is
    /// discarded.
    InconsistentLength,
    /// A single fragment is larger than the whole memory cap.
    NoMemory,
}

/// A reassembled datagram.
#[derive(Debug, PartialEq, Eq)]
pub struct Datagram {
    /// The header of the first fragment, with fragmentation fields cleared
    /// and the payload length of the whole datagram.
    pub repr: Ipv4Repr,
    /// The payload (the header is not included).
    pub payload: Vec<u8>,
}

/// A partial datagram that timed out.
#[derive(Debug)]
pub struct Expired {
    /// Source of the datagram.
    pub src: Ipv4Addr,
    /// Destination of the datagram.
    pub dst: Ipv4Addr,
    /// If the first fragment had arrived: its IP header and the first 8
    /// bytes (at least) of its payload, to quote in ICMP Time Exceeded.
    pub first_fragment: Option<Vec<u8>>,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
struct Key {
    src: Ipv4Addr,
    dst: Ipv4Addr,
    protocol: u8,
    ident: u16,
}

/// RFC 815 hole descriptor: bytes `first..=last` are missing.
#[derive(Clone, Copy, Debug)]
struct Hole {
    first: usize,
    last: usize,
}

/// RFC 815: "infinity", a hole with no known end.
const INFINITY: usize = usize::MAX;

/// Memory charged per partial datagram and per stored piece, on top of data.
const DATAGRAM_OVERHEAD: usize = 256;
const PIECE_OVERHEAD: usize = 64;

#[derive(Debug)]
struct Partial {
    id: u64,
    holes: Vec<Hole>,
    /// Received bytes as (offset, data), kept sorted by offset, disjoint.
    pieces: Vec<(usize, Vec<u8>)>,
    /// Payload length, once the final fragment (MF=0) has arrived.
    total: Option<usize>,
    /// Header of the first fragment plus leading payload (for ICMP).
    first: Option<(Ipv4Repr, Vec<u8>)>,
    held: usize,
}

impl Partial {
    /// Checks every stored byte in `start..end` against `data` (which starts
    /// at `start`).
    fn agrees(&self, start: usize, data: &[u8]) -> bool {
        let end = start + data.len();
        // First piece that could overlap: the last one starting before `end`.
        let idx = self.pieces.partition_point(|(off, _)| *off < end);
        for (off, bytes) in self.pieces[..idx].iter().rev() {
            let p_end = off + bytes.len();
            if p_end <= start {
                break;
            }
            let lo = start.max(*off);
            let hi = end.min(p_end);
            if bytes[lo - off..hi - off] != data[lo - start..hi - start] {
                return false;
            }
        }
        true
    }

    fn insert_piece(&mut self, offset: usize, bytes: Vec<u8>) {
        let idx = self.pieces.partition_point(|(off, _)| *off < offset);
        self.held += bytes.len() + PIECE_OVERHEAD;
        self.pieces.insert(idx, (offset, bytes));
    }
}

/// Counters of the reassembler.
#[derive(Clone, Debug, Default)]
pub struct ReassemblyStats {
    /// Datagrams completed and delivered.
    pub reassembled: u64,
    /// Partial datagrams freed by the timeout.
    pub timed_out: u64,
    /// Partial datagrams evicted to stay under the memory cap.
    pub evicted: u64,
}

/// Puts fragmented datagrams back together.
#[derive(Debug)]
pub struct Reassembler {
    config: ReassemblyConfig,
    partials: HashMap<Key, Partial>,
    /// Creation order (= expiry order, all timeouts being equal). Entries of
    /// finished datagrams stay until they reach the front or a compaction.
    order: VecDeque<(Instant, Key, u64)>,
    held: usize,
    next_id: u64,
    stats: ReassemblyStats,
}

impl Reassembler {
    /// An empty reassembler.
    pub fn new(config: ReassemblyConfig) -> Self {
        Reassembler {
            config,
            partials: HashMap::new(),
            order: VecDeque::new(),
            held: 0,
            next_id: 0,
            stats: ReassemblyStats::default(),
        }
    }

    /// The limits in use.
    pub fn config(&self) -> &ReassemblyConfig {
        &self.config
    }

    /// Bytes held by partial datagrams (data plus bookkeeping overhead).
    pub fn held_bytes(&self) -> usize {
        self.held
    }

    /// Number of partial datagrams.
    pub fn partial_count(&self) -> usize {
        self.partials.len()
    }

    /// Counters.
    pub fn stats(&self) -> &ReassemblyStats {
        &self.stats
    }

    /// Adds a fragment. `header` is the fragment's raw IP header (kept from
    /// the first fragment for ICMP quoting) and `payload` its data.
    ///
    /// Returns the whole datagram when this fragment completes it.
    pub fn push(
        &mut self,
        now: Instant,
        repr: &Ipv4Repr,
        header: &[u8],
        payload: &[u8],
    ) -> Result<Option<Datagram>, ReassemblyError> {
        let first = repr.frag_offset as usize;
        let len = payload.len();
        // RFC 791: every fragment but the last carries a multiple of 8 bytes.
        if len == 0 || (repr.more_fragments && len % 8 != 0) {
            return Err(ReassemblyError::BadFragmentLength);
        }
        let end = first + len; // exclusive
        if repr.header_len + end > self.config.max_datagram {
            return Err(ReassemblyError::TooLong);
        }
        let charge = len + PIECE_OVERHEAD + DATAGRAM_OVERHEAD;
        if charge > self.config.max_held_bytes {
            return Err(ReassemblyError::NoMemory);
        }
        let key = Key {
            src: repr.src,
            dst: repr.dst,
            protocol: repr.protocol.0,
            ident: repr.ident,
        };
        if !self.partials.contains_key(&key) {
            self.make_room(charge);
            let id = self.next_id;
            self.next_id += 1;
            self.partials.insert(
                key,
                Partial {
                    id,
                    holes: vec![Hole {
                        first: 0,
                        last: INFINITY,
                    }],
                    pieces: Vec::new(),
                    total: None,
                    first: None,
                    held: DATAGRAM_OVERHEAD,
                },
            );
            self.held += DATAGRAM_OVERHEAD;
            self.order.push_back((now, key, id));
        } else {
            self.make_room_keeping(charge - DATAGRAM_OVERHEAD, key);
        }
        let result = self.add_to(key, repr, header, payload);
        match result {
            Ok(true) => {
                let partial = self.partials.remove(&key).expect("present");
                self.held -= partial.held;
                self.stats.reassembled += 1;
                self.compact_order();
                Ok(Some(Self::assemble(partial)))
            }
            Ok(false) => Ok(None),
            Err(e) => {
                if let Some(p) = self.partials.remove(&key) {
                    self.held -= p.held;
                }
                Err(e)
            }
        }
    }

    /// Adds the fragment to the partial; returns whether it is complete.
    fn add_to(
        &mut self,
        key: Key,
        repr: &Ipv4Repr,
        header: &[u8],
        payload: &[u8],
    ) -> Result<bool, ReassemblyError> {
        let p = self.partials.get_mut(&key).expect("present");
        let first = repr.frag_offset as usize;
        let end = first + payload.len();
        let last = end - 1;
        // The final fragment fixes the length; everything must agree with it.
        if !repr.more_fragments {
            match p.total {
                Some(t) if t != end => return Err(ReassemblyError::InconsistentLength),
                Some(_) => {}
                None => {
                    let held_end = p.pieces.last().map_or(0, |(off, b)| off + b.len());
                    if held_end > end {
                        return Err(ReassemblyError::InconsistentLength);
                    }
                    p.total = Some(end);
                }
            }
        }
        if let Some(t) = p.total
            && end > t
        {
            return Err(ReassemblyError::InconsistentLength);
        }
        if !p.agrees(first, payload) {
            return Err(ReassemblyError::OverlapConflict);
        }
        if first == 0 && p.first.is_none() {
            let quote = payload.len().min(8);
            let mut bytes = header.to_vec();
            bytes.extend_from_slice(&payload[..quote]);
            p.first = Some((*repr, bytes));
        }
        // RFC 815 steps 1-6, for every hole the fragment touches.
        let mut i = 0;
        let mut new_holes: Vec<Hole> = Vec::new();
        let mut filled: Vec<(usize, usize)> = Vec::new();
        while i < p.holes.len() {
            let hole = p.holes[i];
            // Step 2/3: skip holes the fragment does not touch.
            if first > hole.last || last < hole.first {
                i += 1;
                continue;
            }
            // Step 4: delete the hole from the list.
            p.holes.swap_remove(i);
            filled.push((first.max(hole.first), last.min(hole.last)));
            // Step 5: a hole remains before the fragment.
            if first > hole.first {
                new_holes.push(Hole {
                    first: hole.first,
                    last: first - 1,
                });
            }
            // Step 6: a hole remains after it, unless this is the end.
            if last < hole.last && repr.more_fragments {
                new_holes.push(Hole {
                    first: last + 1,
                    last: hole.last,
                });
            }
        }
        p.holes.extend(new_holes);
        // The final fragment cuts the infinite hole at the datagram's end.
        if let Some(t) = p.total {
            p.holes.retain_mut(|h| {
                if h.first >= t {
                    return false;
                }
                if h.last >= t {
                    h.last = t - 1;
                }
                true
            });
        }
        for (lo, hi) in filled {
            let bytes = payload[lo - first..=hi - first].to_vec();
            let before = p.held;
            p.insert_piece(lo, bytes);
            self.held += p.held - before;
        }
        // Step 8: no holes left, and the end is known.
        Ok(p.holes.is_empty() && p.total.is_some())
    }

    fn assemble(partial: Partial) -> Datagram {
        let total = partial.total.unwrap_or(0);
        let mut payload = Vec::with_capacity(total);
        for (off, bytes) in &partial.pieces {
            debug_assert_eq!(*off, payload.len());
            payload.extend_from_slice(bytes);
        }
        let (mut repr, _) = partial
            .first
            .expect("complete datagram has its first fragment");
        repr.more_fragments = false;
        repr.frag_offset = 0;
        repr.payload_len = total;
        Datagram { repr, payload }
    }

    /// Evicts the oldest partials until `charge` more bytes fit.
    fn make_room(&mut self, charge: usize) {
        while self.held + charge > self.config.max_held_bytes {
            if !self.evict_oldest(None) {
                break;
            }
        }
    }

    /// Like `make_room`, but never evicts `keep` (the datagram the fragment
    /// belongs to) unless it is the only one left.
    fn make_room_keeping(&mut self, charge: usize, keep: Key) {
        while self.held + charge > self.config.max_held_bytes {
            if !self.evict_oldest(Some(keep)) {
                break;
            }
        }
    }

    fn evict_oldest(&mut self, keep: Option<Key>) -> bool {
        let mut skipped = None;
        while let Some((created, key, id)) = self.order.pop_front() {
            let live = self.partials.get(&key).is_some_and(|p| p.id == id);
            if !live {
                continue;
            }
            if Some(key) == keep {
                skipped = Some((created, key, id));
                continue;
            }
            let p = self.partials.remove(&key).expect("live");
            self.held -= p.held;
            self.stats.evicted += 1;
            if let Some(s) = skipped {
                self.order.push_front(s);
            }
            return true;
        }
        if let Some(s) = skipped {
            self.order.push_front(s);
        }
        false
    }

    /// Drops stale order entries when they outnumber live partials, keeping
    /// the queue proportional to the partials actually held.
    fn compact_order(&mut self) {
        if self.order.len() > 2 * self.partials.len() + 64 {
            let partials = &self.partials;
            self.order
                .retain(|(_, key, id)| partials.get(key).is_some_and(|p| p.id == *id));
        }
    }

    /// Frees partial datagrams older than the timeout, reporting each.
    pub fn poll(&mut self, now: Instant, mut expired: impl FnMut(Expired)) {
        while let Some(&(created, key, id)) = self.order.front() {
            let live = self.partials.get(&key).is_some_and(|p| p.id == id);
            if !live {
                self.order.pop_front();
                continue;
            }
            if now < created + self.config.timeout {
                break;
            }
            self.order.pop_front();
            let p = self.partials.remove(&key).expect("live");
            self.held -= p.held;
            self.stats.timed_out += 1;
            expired(Expired {
                src: key.src,
                dst: key.dst,
                first_fragment: p.first.map(|(_, bytes)| bytes),
            });
        }
    }

    /// When the oldest partial datagram times out. O(1): a stale entry at
    /// the front only makes the wake-up early, and `poll` then discards it.
    pub fn poll_at(&self) -> Option<Instant> {
        self.order
            .front()
            .map(|(created, _, _)| *created + self.config.timeout)
    }
}

/// Splits a payload into fragment-sized pieces: yields `(offset, len, more)`
/// for each fragment of a datagram with `payload_len` payload bytes sent over
/// a link with `mtu` (header of `header_len` bytes in every fragment).
pub fn fragments(
    payload_len: usize,
    mtu: usize,
    header_len: usize,
) -> impl Iterator<Item = (usize, usize, bool)> {
    // RFC 791: fragment data lengths are multiples of 8, except the last.
    let max = ((mtu - header_len) / 8 * 8).max(8);
    let mut offset = 0;
    std::iter::from_fn(move || {
        if offset >= payload_len && !(offset == 0 && payload_len == 0) {
            return None;
        }
        let len = max.min(payload_len - offset);
        let more = offset + len < payload_len;
        let item = (offset, len, more);
        offset += len.max(1);
        Some(item)
    })
}

#[cfg(test)]
#[path = "reassembly/tests.rs"]
mod tests;
