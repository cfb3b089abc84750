//! IPv4 reassembly (RFC 791 section 3.2, RFC 815, RFC 1122 section 3.3.2),
//! hardened against hostile fragment floods.
//!
//! Fragments are keyed by (source, destination, protocol, identification).
//! Each partial datagram keeps only the bytes that filled a hole, as disjoint
//! pieces in a B-tree keyed by offset (the holes of RFC 815 are the gaps
//! between them), so duplicates cost no memory and one fragment costs
//! O(log pieces) plus the bytes it copies and compares, however the pieces
//! lie (a hole list walked per fragment is the FragmentSmack pattern,
//! CVE-2018-5391). Where a new fragment overlaps bytes already held, the
//! bytes must agree: a disagreement discards the whole datagram, which
//! defeats overlap attacks (teardrop and the like, and rewriting a TCP/UDP
//! header behind a filter's back).
//!
//! Limits:
//!
//! - the largest datagram (65,535 bytes; a fragment reaching past it is the
//!   "ping of death" and is dropped);
//! - pieces per datagram ([`ReassemblyConfig::max_pieces_per_datagram`]):
//!   more discards the datagram;
//! - a per-datagram timeout after which the partial is freed and reported
//!   (so the caller can send ICMP Time Exceeded when the first fragment had
//!   arrived);
//! - a cap on all memory held ([`ReassemblyConfig::max_held_bytes`]),
//!   enforced by evicting the oldest partial datagrams, O(log n) each.
//!
//! # Memory accounting
//!
//! Everything the reassembler holds is charged to the cap, and
//! [`Reassembler::memory_used`] is exactly the sum charged: payload bytes,
//! each piece's heap block and its share of the piece tree, each partial
//! datagram's own block, its entries in the datagram index and the expiry
//! queue and the root of its piece tree, the first fragment's quote, and the
//! roots of the index and queue while they are not empty. Sizes come from
//! `size_of` and two facts about std's B-trees (at most 11 entries and 12
//! edges in a node; every node but the root holds at least 5 entries), plus
//! 32 bytes of allocator bookkeeping per heap block, so the charge is an
//! upper bound on the heap the reassembler really uses. Nothing is kept for a
//! datagram once it is gone (completed, discarded, evicted or timed out),
//! and an empty reassembler holds nothing at all.

use std::collections::BTreeMap;
use std::mem::size_of;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use crate::Ipv4Repr;

mod partial;

use partial::{Age, FirstFragment, Fragment, Partial, Plan};

/// Limits of the reassembler.
#[derive(Clone, Debug)]
pub struct ReassemblyConfig {
    /// Largest datagram (header included) that may be reassembled.
    pub max_datagram: usize,
    /// Time a partial datagram may wait for its missing fragments.
    pub timeout: Duration,
    /// Memory all partial datagrams may hold together, bookkeeping included
    /// (see [`Reassembler::memory_used`]).
    pub max_held_bytes: usize,
    /// Disjoint pieces one partial datagram may be made of; a fragment that
    /// would take it past this discards the datagram
    /// ([`ReassemblyError::TooManyPieces`]).
    ///
    /// A piece is a run of bytes that filled a hole; bytes that follow a
    /// piece extend it. So a datagram holds at most one piece per fragment
    /// received, and fragments that arrive in order make a single piece
    /// however small they are. The default, 256, leaves room for every
    /// honest sender in any order: the largest datagram is 45 fragments at
    /// MTU 1500 and 119 at MTU 576 (the classic default for paths beyond
    /// the local network). What it stops is a hostile sender dicing one
    /// datagram into thousands of separated 8-byte pieces to multiply the
    /// per-piece work and bookkeeping.
    pub max_pieces_per_datagram: usize,
}

impl Default for ReassemblyConfig {
    fn default() -> Self {
        ReassemblyConfig {
            max_datagram: Ipv4Repr::MAX_PACKET_LEN,
            timeout: Duration::from_secs(30),
            max_held_bytes: 4 * 1024 * 1024,
            max_pieces_per_datagram: 256,
        }
    }
}

/// Why a fragment (or the datagram it belonged to) was dropped.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ReassemblyError {
    /// A fragment with no data, or a non-final fragment whose length is not
    /// a multiple of 8.
    BadFragmentLength,
    /// The fragment reaches past the largest datagram ("ping of death").
    TooLong,
    /// Overlapping fragments disagree on content: the datagram is discarded.
    OverlapConflict,
    /// Fragments disagree on where the datagram ends: the datagram is
    /// discarded.
    InconsistentLength,
    /// A single fragment is larger than the whole memory cap, or the
    /// datagram it belongs to cannot grow within the cap even with every
    /// other datagram evicted (the datagram is then discarded).
    NoMemory,
    /// The fragment would make its datagram hold more pieces than
    /// [`ReassemblyConfig::max_pieces_per_datagram`]: the datagram is
    /// discarded.
    TooManyPieces,
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

/// Counters of the reassembler.
#[derive(Clone, Debug, Default)]
pub struct ReassemblyStats {
    /// Datagrams completed and delivered.
    pub reassembled: u64,
    /// Partial datagrams freed by the timeout.
    pub timed_out: u64,
    /// Partial datagrams evicted to stay under the memory cap.
    pub evicted: u64,
    /// Partial datagrams discarded because a fragment was refused:
    /// conflicting bytes or lengths, too many pieces, or no memory left.
    pub discarded: u64,
    /// The highest [`Reassembler::memory_used`] seen.
    pub peak_memory_used: usize,
}

/// RFC 791 section 3.2: "BUFID <- source|destination|protocol|
/// identification".
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
struct Key {
    src: Ipv4Addr,
    dst: Ipv4Addr,
    protocol: u8,
    ident: u16,
}

impl Key {
    fn of(repr: &Ipv4Repr) -> Key {
        Key {
            src: repr.src,
            dst: repr.dst,
            protocol: repr.protocol.0,
            ident: repr.ident,
        }
    }
}

/// Payload bytes of the first fragment kept after its header for ICMP:
/// RFC 792 quotes "the internet header plus the first 64 bits of the
/// original datagram's data".
const QUOTED_PAYLOAD: usize = 8;

/// Allocator bookkeeping charged per heap block. glibc's malloc adds an
/// 8-byte header and rounds blocks up to 16 bytes (32 at least), so no block
/// costs more than 31 bytes beyond what was asked for.
const ALLOC_OVERHEAD: usize = 32;

/// An upper bound on the heap block of one node of std's
/// `BTreeMap<K, V>`, given the sizes of `K` and `V`: an internal node holds
/// a parent pointer, its index in the parent and its length, 11 keys, 11
/// values and 12 edges (a leaf is the same without the edges). 32 bytes
/// cover padding before the key and value arrays.
const fn btree_node(key: usize, value: usize) -> usize {
    const CAPACITY: usize = 11;
    size_of::<usize>()
        + 2 * size_of::<u16>()
        + CAPACITY * (key + value)
        + (CAPACITY + 1) * size_of::<usize>()
        + 32
        + ALLOC_OVERHEAD
}

/// An upper bound on a B-tree's memory per entry, the root node aside:
/// every other node holds at least 5 entries.
const fn btree_entry(key: usize, value: usize) -> usize {
    const MIN_LEN: usize = 5;
    btree_node(key, value).div_ceil(MIN_LEN)
}

/// Charged per stored piece, on top of its buffer's capacity: its heap
/// block's bookkeeping and its entry in the datagram's piece tree.
const PIECE_OVERHEAD: usize =
    ALLOC_OVERHEAD + btree_entry(size_of::<usize>(), size_of::<Vec<u8>>());

/// Charged per partial datagram: its own heap block, its entries in the
/// index and the expiry queue, and the root node of its piece tree.
const DATAGRAM_OVERHEAD: usize = size_of::<Partial>()
    + ALLOC_OVERHEAD
    + btree_entry(size_of::<Key>(), size_of::<Box<Partial>>())
    + btree_entry(size_of::<Age>(), size_of::<Key>())
    + btree_node(size_of::<usize>(), size_of::<Vec<u8>>());

/// Charged while any partial datagram is held: the root nodes of the index
/// and of the expiry queue.
const TABLE_ROOTS: usize = btree_node(size_of::<Key>(), size_of::<Box<Partial>>())
    + btree_node(size_of::<Age>(), size_of::<Key>());

/// Charged for the first fragment's quote of `len` bytes.
const fn quote_charge(len: usize) -> usize {
    len.saturating_add(ALLOC_OVERHEAD)
}

/// Puts fragmented datagrams back together.
#[derive(Debug)]
pub struct Reassembler {
    config: ReassemblyConfig,
    /// The partial datagrams.
    partials: BTreeMap<Key, Box<Partial>>,
    /// The expiry queue: every partial datagram, oldest first (with equal
    /// timeouts, creation order is expiry order). It holds exactly the keys
    /// of `partials`, so eviction of the oldest and the timeout are O(log n).
    expiry: BTreeMap<Age, Key>,
    /// Memory charged (see [`Reassembler::memory_used`]).
    held: usize,
    next_seq: u64,
    stats: ReassemblyStats,
    /// Stored pieces looked at by all fragments so far.
    #[cfg(test)]
    pieces_visited: usize,
}

impl Reassembler {
    /// An empty reassembler.
    pub fn new(config: ReassemblyConfig) -> Self {
        Reassembler {
            config,
            partials: BTreeMap::new(),
            expiry: BTreeMap::new(),
            held: 0,
            next_seq: 0,
            stats: ReassemblyStats::default(),
            #[cfg(test)]
            pieces_visited: 0,
        }
    }

    /// The limits in use.
    pub fn config(&self) -> &ReassemblyConfig {
        &self.config
    }

    /// All memory the reassembler holds, as charged against
    /// [`ReassemblyConfig::max_held_bytes`] (never above it): payload bytes
    /// plus every piece's, datagram's and queue entry's bookkeeping. Zero
    /// when no partial datagram is held.
    pub fn memory_used(&self) -> usize {
        self.held
    }

    /// The same as [`Reassembler::memory_used`].
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
    /// Returns the whole datagram when this fragment completes it. An error
    /// drops the fragment; for [`ReassemblyError::OverlapConflict`],
    /// [`ReassemblyError::InconsistentLength`],
    /// [`ReassemblyError::TooManyPieces`] and (when the datagram itself no
    /// longer fits) [`ReassemblyError::NoMemory`], the datagram it belonged
    /// to is discarded too, with everything kept for it.
    pub fn push(
        &mut self,
        now: Instant,
        repr: &Ipv4Repr,
        header: &[u8],
        payload: &[u8],
    ) -> Result<Option<Datagram>, ReassemblyError> {
        let start = usize::from(repr.frag_offset);
        let len = payload.len();
        // RFC 791: "the fragment offset is measured in units of 8 octets",
        // so every fragment but the last carries a multiple of 8 bytes.
        if len == 0 || (repr.more_fragments && len % 8 != 0) {
            return Err(ReassemblyError::BadFragmentLength);
        }
        let end = start.checked_add(len).ok_or(ReassemblyError::TooLong)?;
        if repr.header_len.saturating_add(end) > self.config.max_datagram {
            return Err(ReassemblyError::TooLong);
        }
        // Where piece buffers stop growing while the end is unknown.
        let max_end = self
            .config
            .max_datagram
            .saturating_sub(Ipv4Repr::MIN_HEADER_LEN);
        let frag = Fragment {
            start,
            end,
            more: repr.more_fragments,
            data: payload,
        };
        let quote_len = header.len().saturating_add(len.min(QUOTED_PAYLOAD));
        let quote = if start == 0 {
            quote_charge(quote_len)
        } else {
            0
        };
        // The most this fragment can cost: a datagram of its own.
        let fresh = DATAGRAM_OVERHEAD
            .saturating_add(TABLE_ROOTS)
            .saturating_add(len)
            .saturating_add(PIECE_OVERHEAD)
            .saturating_add(quote);
        if fresh > self.config.max_held_bytes {
            return Err(ReassemblyError::NoMemory);
        }
        let key = Key::of(repr);
        let (is_new, pieces, plan) = match self.partials.get(&key) {
            None => (true, 0, Ok(Plan::fresh(&frag))),
            Some(p) => (false, p.piece_count(), p.plan(&frag, max_end)),
        };
        let plan = plan.map_err(|e| self.discard(key, e))?;
        self.count_visits(plan.visited);
        if is_new && start == 0 && !frag.more {
            // Offset zero and no MF: not a fragment but a whole datagram.
            self.stats.reassembled += 1;
            let mut repr = *repr;
            repr.payload_len = len;
            return Ok(Some(Datagram {
                repr,
                payload: payload.to_vec(),
            }));
        }
        if pieces.saturating_add(plan.new_pieces) > self.config.max_pieces_per_datagram {
            return Err(self.discard(key, ReassemblyError::TooManyPieces));
        }
        // RFC 815's steps 4-6 store the fragment and split its hole; here
        // only the bytes that fill holes are stored.
        let charge = plan.new_capacity
            + plan.new_pieces * PIECE_OVERHEAD
            + if plan.sets_first { quote } else { 0 }
            + if is_new { DATAGRAM_OVERHEAD } else { 0 };
        if !self.make_room(charge, (!is_new).then_some(key)) {
            return Err(self.discard(key, ReassemblyError::NoMemory));
        }
        let first = plan.sets_first.then(|| {
            let mut quote = Vec::with_capacity(quote_len);
            quote.extend_from_slice(header);
            quote.extend_from_slice(&payload[..len.min(QUOTED_PAYLOAD)]);
            FirstFragment {
                repr: *repr,
                quote: quote.into_boxed_slice(),
            }
        });
        // Overheads are charged as planned, buffers as they grew.
        let overhead = charge - plan.new_capacity;
        let (added, visited, complete) = if is_new {
            let age = (now, self.next_seq);
            self.next_seq += 1;
            let mut p = Box::new(Partial::new(age));
            let (added, visited) = p.apply(&frag, &plan, max_end, first);
            p.charged = overhead + added;
            let complete = p.is_complete();
            self.insert(key, p);
            (added, visited, complete)
        } else {
            let Some(p) = self.partials.get_mut(&key) else {
                return Ok(None);
            };
            let (added, visited) = p.apply(&frag, &plan, max_end, first);
            p.charged += overhead + added;
            let complete = p.is_complete();
            self.held += overhead + added;
            (added, visited, complete)
        };
        self.count_visits(visited);
        if complete {
            self.stats.reassembled += 1;
            return Ok(self.remove(key).and_then(|p| p.into_datagram()));
        }
        // Buffers grow by what `Vec::reserve_exact` was asked for, as
        // planned; should they ever grow by more, the cap still holds.
        if added > plan.new_capacity
            && self.held > self.config.max_held_bytes
            && !self.make_room(0, Some(key))
        {
            return Err(self.discard(key, ReassemblyError::NoMemory));
        }
        self.note_peak();
        Ok(None)
    }

    /// Frees partial datagrams older than the timeout, reporting each.
    ///
    /// RFC 1122 section 3.3.2: "If the timeout expires, the
    /// partially-reassembled datagram MUST be discarded and an ICMP Time
    /// Exceeded message sent to the source host (if fragment zero has been
    /// received)."
    pub fn poll(&mut self, now: Instant, mut expired: impl FnMut(Expired)) {
        while let Some((&(created, _), &key)) = self.expiry.first_key_value() {
            match created.checked_add(self.config.timeout) {
                Some(deadline) if now >= deadline => {}
                _ => break,
            }
            let Some(p) = self.remove(key) else { break };
            self.stats.timed_out += 1;
            expired(Expired {
                src: key.src,
                dst: key.dst,
                first_fragment: p.first.map(|first| first.quote.into_vec()),
            });
        }
    }

    /// When the oldest partial datagram times out (None when none is held,
    /// or when the timeout is too long to be expressed).
    pub fn poll_at(&self) -> Option<Instant> {
        let (&(created, _), _) = self.expiry.first_key_value()?;
        created.checked_add(self.config.timeout)
    }

    /// Adds a partial datagram to the index and the expiry queue, charging
    /// it (and the roots of both, for the first one).
    fn insert(&mut self, key: Key, p: Box<Partial>) {
        if self.partials.is_empty() {
            self.held += TABLE_ROOTS;
        }
        self.held += p.charged;
        self.expiry.insert(p.age, key);
        self.partials.insert(key, p);
        debug_assert_eq!(self.partials.len(), self.expiry.len());
    }

    /// Removes a partial datagram and everything kept for it.
    fn remove(&mut self, key: Key) -> Option<Box<Partial>> {
        let p = self.partials.remove(&key)?;
        self.expiry.remove(&p.age);
        self.held -= p.charged;
        if self.partials.is_empty() {
            // Empty B-trees keep their root node: drop them to free it.
            self.partials = BTreeMap::new();
            self.expiry = BTreeMap::new();
            self.held -= TABLE_ROOTS;
            debug_assert_eq!(self.held, 0);
        }
        debug_assert_eq!(self.partials.len(), self.expiry.len());
        Some(p)
    }

    /// Discards the datagram of `key` (if held) because of `error`.
    fn discard(&mut self, key: Key, error: ReassemblyError) -> ReassemblyError {
        if self.remove(key).is_some() {
            self.stats.discarded += 1;
        }
        error
    }

    /// Evicts the oldest partial datagrams, never `keep` (the datagram the
    /// fragment belongs to), until `charge` more bytes fit under the cap.
    /// False if they cannot.
    fn make_room(&mut self, charge: usize, keep: Option<Key>) -> bool {
        loop {
            let roots = if self.partials.is_empty() {
                TABLE_ROOTS
            } else {
                0
            };
            if self.held.saturating_add(roots).saturating_add(charge) <= self.config.max_held_bytes
            {
                return true;
            }
            // The oldest, or the next oldest when the oldest is `keep`.
            let victim = self.expiry.values().copied().find(|k| Some(*k) != keep);
            let Some(victim) = victim else { return false };
            self.remove(victim);
            self.stats.evicted += 1;
        }
    }

    fn note_peak(&mut self) {
        self.stats.peak_memory_used = self.stats.peak_memory_used.max(self.held);
    }

    fn count_visits(&mut self, _visited: usize) {
        #[cfg(test)]
        {
            self.pieces_visited += _visited;
        }
    }
}

/// Inspection for tests.
#[cfg(test)]
impl Reassembler {
    /// Entries in the index and in the expiry queue, and pieces held.
    fn bookkeeping(&self) -> (usize, usize, usize) {
        let pieces = self.partials.values().map(|p| p.piece_count()).sum();
        (self.partials.len(), self.expiry.len(), pieces)
    }

    /// Stored pieces looked at by all fragments so far.
    fn pieces_visited(&self) -> usize {
        self.pieces_visited
    }

    /// Pieces of the partial datagram `(src, ident)` (UDP to any
    /// destination the tests use), as (offset, length, capacity).
    fn pieces_of(&self, src: Ipv4Addr, ident: u16) -> Vec<(usize, usize, usize)> {
        self.partials
            .iter()
            .filter(|(k, _)| k.src == src && k.ident == ident)
            .flat_map(|(_, p)| p.piece_spans())
            .collect()
    }

    /// Checks every invariant from scratch: the queue holds exactly the
    /// partial datagrams; pieces are sorted, disjoint, not empty and inside
    /// the datagram, no more than the cap allows; and the memory charged is
    /// the sum of its parts, under the cap.
    fn check_invariants(&self) {
        assert_eq!(self.partials.len(), self.expiry.len());
        let mut sum = if self.partials.is_empty() {
            0
        } else {
            TABLE_ROOTS
        };
        for (key, p) in &self.partials {
            assert_eq!(self.expiry.get(&p.age), Some(key));
            assert!(!p.is_complete(), "complete datagram left behind");
            assert!(p.piece_count() >= 1);
            assert!(p.piece_count() <= self.config.max_pieces_per_datagram);
            let mut charge = DATAGRAM_OVERHEAD;
            if let Some(first) = &p.first {
                charge += quote_charge(first.quote.len());
            }
            let (mut end, mut stored) = (0, 0);
            for (off, len, capacity) in p.piece_spans() {
                assert!(len > 0, "empty piece");
                assert!(off >= end, "pieces overlap or are out of order");
                end = off + len;
                stored += len;
                charge += capacity + PIECE_OVERHEAD;
            }
            let (held, total) = p.lengths();
            assert_eq!(held, stored);
            if let Some(total) = total {
                assert!(end <= total, "piece past the end");
            }
            assert_eq!(p.charged, charge, "charge of {key:?}");
            sum += charge;
        }
        assert_eq!(self.held, sum);
        assert!(self.held <= self.config.max_held_bytes);
        assert!(self.held <= self.stats.peak_memory_used);
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
    let max = (mtu.saturating_sub(header_len) / 8 * 8).max(8);
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
