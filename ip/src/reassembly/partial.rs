//! One datagram being reassembled: the bytes received so far, as disjoint
//! pieces in a B-tree keyed by offset.
//!
//! RFC 815 describes a partial datagram by its holes: "Each hole can be
//! characterized by two numbers, hole.first, the number of the first octet
//! in the hole, and hole.last, the number of the last octet in the hole."
//! Here the holes are implied instead of listed: they are the gaps between
//! consecutive pieces, before the first piece, and after the last one (up to
//! the end once the final fragment has told it, to "infinity" before). A
//! fragment finds the piece before it and the pieces inside it by descending
//! the tree, so it costs O(log pieces) plus the pieces it overlaps (whose
//! bytes it compares), rather than a walk over every hole as in RFC 815's
//! list.
//!
//! Bytes that fill a hole right after a piece are appended to that piece
//! (its buffer grows by doubling, capped at the largest datagram), so
//! fragments arriving in order make one piece however small they are, and a
//! datagram whose fragments all arrived in order is handed over without a
//! final copy. Bytes that fill a hole with no piece just before it start a
//! new piece.

use std::collections::BTreeMap;
use std::ops::Bound::Excluded;
use std::time::Instant;

use super::{Datagram, ReassemblyError};
use crate::Ipv4Repr;

/// Where a datagram sits in the expiry queue: when its first fragment
/// arrived, and a sequence number that keeps datagrams created at the same
/// instant apart (and in arrival order).
pub(super) type Age = (Instant, u64);

/// A validated fragment: payload bytes `start..end` of its datagram.
#[derive(Clone, Copy)]
pub(super) struct Fragment<'a> {
    pub(super) start: usize,
    pub(super) end: usize,
    /// The MF flag: more fragments follow.
    pub(super) more: bool,
    pub(super) data: &'a [u8],
}

/// The first fragment's header, kept for the reassembled datagram, and its
/// raw header plus leading payload, kept to quote in ICMP Time Exceeded.
#[derive(Debug)]
pub(super) struct FirstFragment {
    pub(super) repr: Ipv4Repr,
    pub(super) quote: Box<[u8]>,
}

/// What adding a fragment to a partial datagram will change, worked out
/// before anything is changed (so the memory it needs can be made room for,
/// or refused, first).
#[derive(Clone, Copy, Debug)]
pub(super) struct Plan {
    /// The payload length after the fragment (known once MF=0 has arrived).
    pub(super) total: Option<usize>,
    /// Bytes of the fragment that fill holes (the rest duplicates bytes
    /// already held, and costs nothing).
    pub(super) new_bytes: usize,
    /// Pieces the fragment starts: one per hole it fills that has no piece
    /// just before it.
    pub(super) new_pieces: usize,
    /// Heap bytes the fragment adds to piece buffers: new buffers, and the
    /// growth of those it appends to. Bytes that duplicate bytes already
    /// held cost nothing.
    pub(super) new_capacity: usize,
    /// Whether this is the first fragment (offset zero), not seen before.
    pub(super) sets_first: bool,
    /// Stored pieces looked at (a measure of work, for tests).
    pub(super) visited: usize,
}

impl Plan {
    /// The plan of a fragment that starts a new datagram.
    pub(super) fn fresh(frag: &Fragment<'_>) -> Plan {
        Plan {
            total: (!frag.more).then_some(frag.end),
            new_bytes: frag.data.len(),
            new_pieces: 1,
            new_capacity: frag.data.len(),
            sets_first: frag.start == 0,
            visited: 0,
        }
    }
}

/// The capacity a piece buffer starting at `offset`, holding `len` bytes in
/// `capacity`, grows to when it must hold `needed`: doubled (amortized O(1)
/// per appended byte), but never past `limit`, the end of the datagram (or
/// of the largest datagram while the end is unknown).
fn grown_capacity(capacity: usize, needed: usize, offset: usize, limit: usize) -> usize {
    if needed <= capacity {
        return capacity;
    }
    capacity
        .saturating_mul(2)
        .min(limit.saturating_sub(offset))
        .max(needed)
}

/// A partial datagram.
#[derive(Debug)]
pub(super) struct Partial {
    /// Its key in the expiry queue.
    pub(super) age: Age,
    /// Received bytes, as disjoint pieces keyed by their first offset.
    pieces: BTreeMap<usize, Vec<u8>>,
    /// Bytes held in `pieces`.
    stored: usize,
    /// Payload length, once the final fragment (MF=0) has arrived.
    total: Option<usize>,
    pub(super) first: Option<FirstFragment>,
    /// Memory charged to the reassembler's cap for this datagram.
    pub(super) charged: usize,
}

impl Partial {
    /// An empty partial datagram created at `age`.
    pub(super) fn new(age: Age) -> Partial {
        Partial {
            age,
            pieces: BTreeMap::new(),
            stored: 0,
            total: None,
            first: None,
            charged: 0,
        }
    }

    /// Number of stored pieces.
    pub(super) fn piece_count(&self) -> usize {
        self.pieces.len()
    }

    /// Works out what `frag` adds, checking it against everything held.
    /// `max_end` is the end of the largest datagram.
    ///
    /// Errors mean the datagram must be discarded: the final fragments
    /// disagree on the length, a fragment reaches past the known end, or
    /// overlapping bytes differ.
    pub(super) fn plan(
        &self,
        frag: &Fragment<'_>,
        max_end: usize,
    ) -> Result<Plan, ReassemblyError> {
        let mut total = self.total;
        // RFC 791 section 3.2: "IF MF = 0 THEN TDL <- TL-(IHL*4)+(FO*8)":
        // the final fragment fixes the total data length, which every
        // fragment must then respect.
        if !frag.more {
            match total {
                Some(t) if t != frag.end => return Err(ReassemblyError::InconsistentLength),
                Some(_) => {}
                None => {
                    if self.held_end() > frag.end {
                        return Err(ReassemblyError::InconsistentLength);
                    }
                    total = Some(frag.end);
                }
            }
        }
        if total.is_some_and(|t| frag.end > t) {
            return Err(ReassemblyError::InconsistentLength);
        }
        let limit = total.unwrap_or(max_end);
        let mut new_bytes = 0;
        let mut new_pieces = 0;
        let mut new_capacity = 0;
        let mut visited = 0;
        // A hole of `gap` bytes is filled: appended to `left`, the piece
        // ending where the hole starts, if there is one.
        let mut fill = |left: Option<(usize, &Vec<u8>)>, gap: usize| {
            new_bytes += gap;
            match left {
                Some((off, bytes)) => {
                    let grown = grown_capacity(bytes.capacity(), bytes.len() + gap, off, limit);
                    new_capacity += grown - bytes.capacity();
                }
                None => {
                    new_pieces += 1;
                    new_capacity += gap;
                }
            }
        };
        // Walk the stored pieces the fragment overlaps or follows: where
        // bytes are held twice they must agree; the gaps between them are
        // the holes it fills.
        let mut cursor = frag.start;
        let mut left = None;
        if let Some((&off, bytes)) = self.pieces.range(..=frag.start).next_back() {
            visited += 1;
            let piece_end = off + bytes.len();
            if piece_end >= frag.start {
                let hi = piece_end.min(frag.end);
                if bytes[frag.start - off..hi - off] != frag.data[..hi - frag.start] {
                    return Err(ReassemblyError::OverlapConflict);
                }
                cursor = hi;
                left = Some((off, bytes));
            }
        }
        for (&off, bytes) in self
            .pieces
            .range((Excluded(frag.start), Excluded(frag.end)))
        {
            visited += 1;
            if off > cursor {
                fill(left, off - cursor);
            }
            let hi = (off + bytes.len()).min(frag.end);
            if bytes[..hi - off] != frag.data[off - frag.start..hi - frag.start] {
                return Err(ReassemblyError::OverlapConflict);
            }
            cursor = hi;
            left = Some((off, bytes));
        }
        if cursor < frag.end {
            fill(left, frag.end - cursor);
        }
        Ok(Plan {
            total,
            new_bytes,
            new_pieces,
            new_capacity,
            sets_first: frag.start == 0 && self.first.is_none(),
            visited,
        })
    }

    /// Stores what `plan` (made by [`Partial::plan`] for this very fragment
    /// with the same `max_end`, or [`Plan::fresh`] for an empty partial)
    /// says is new. Returns the heap bytes added to piece buffers (what the
    /// plan said) and the stored pieces looked at.
    pub(super) fn apply(
        &mut self,
        frag: &Fragment<'_>,
        plan: &Plan,
        max_end: usize,
        first: Option<FirstFragment>,
    ) -> (usize, usize) {
        self.total = plan.total;
        if self.first.is_none() {
            self.first = first;
        }
        if plan.new_bytes == 0 {
            // A duplicate: nothing to store.
            return (0, 0);
        }
        let limit = plan.total.unwrap_or(max_end);
        let mut added = 0;
        let mut visited = 0;
        // The same walk as in `plan`, filling each gap: one descent of the
        // tree per gap.
        let mut cursor = frag.start;
        let mut left = None;
        if let Some((&off, bytes)) = self.pieces.range(..=frag.start).next_back() {
            visited += 1;
            let piece_end = off + bytes.len();
            if piece_end >= frag.start {
                cursor = piece_end;
                left = Some(off);
            }
        }
        while cursor < frag.end {
            let next = self
                .pieces
                .range(cursor..frag.end)
                .next()
                .map(|(&off, bytes)| (off, off + bytes.len()));
            visited += usize::from(next.is_some());
            let gap_end = next.map_or(frag.end, |(off, _)| off);
            if gap_end > cursor {
                let bytes = &frag.data[cursor - frag.start..gap_end - frag.start];
                self.stored += bytes.len();
                match left.and_then(|off| Some((off, self.pieces.get_mut(&off)?))) {
                    Some((off, piece)) => {
                        let before = piece.capacity();
                        let grown = grown_capacity(before, piece.len() + bytes.len(), off, limit);
                        piece.reserve_exact(grown - piece.len());
                        piece.extend_from_slice(bytes);
                        added += piece.capacity() - before;
                    }
                    None => {
                        let piece = bytes.to_vec();
                        added += piece.capacity();
                        self.pieces.insert(cursor, piece);
                    }
                }
            }
            match next {
                Some((off, piece_end)) => {
                    left = Some(off);
                    cursor = piece_end;
                }
                None => cursor = frag.end,
            }
        }
        debug_assert_eq!(added, plan.new_capacity);
        (added, visited)
    }

    /// End of the last stored byte (zero when nothing is stored).
    fn held_end(&self) -> usize {
        self.pieces
            .last_key_value()
            .map_or(0, |(off, bytes)| off + bytes.len())
    }

    /// RFC 815 step eight: "If the hole descriptor list is now empty, the
    /// datagram is now complete." With disjoint pieces inside `0..total`,
    /// no hole is left exactly when they hold `total` bytes.
    pub(super) fn is_complete(&self) -> bool {
        self.first.is_some() && self.total == Some(self.stored)
    }

    /// The whole datagram, if complete.
    pub(super) fn into_datagram(self) -> Option<Datagram> {
        if !self.is_complete() {
            return None;
        }
        let first = self.first?;
        let total = self.stored;
        let payload = if self.pieces.len() == 1 {
            // One piece from offset zero is the whole payload already.
            self.pieces.into_values().next()?
        } else {
            let mut payload = Vec::with_capacity(total);
            for (off, bytes) in self.pieces {
                debug_assert_eq!(off, payload.len());
                payload.extend_from_slice(&bytes);
            }
            payload
        };
        let mut repr = first.repr;
        repr.more_fragments = false;
        repr.frag_offset = 0;
        repr.payload_len = total;
        Some(Datagram { repr, payload })
    }

    /// The stored pieces as (offset, length, capacity), in order (for
    /// tests).
    #[cfg(test)]
    pub(super) fn piece_spans(&self) -> impl Iterator<Item = (usize, usize, usize)> + '_ {
        self.pieces
            .iter()
            .map(|(&off, bytes)| (off, bytes.len(), bytes.capacity()))
    }

    /// Bytes stored and the total length if known (for tests).
    #[cfg(test)]
    pub(super) fn lengths(&self) -> (usize, Option<usize>) {
        (self.stored, self.total)
    }
}
