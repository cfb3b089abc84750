//! Sets of disjoint intervals of sequence space with byte sums, for the
//! scoreboard: an AVL tree in an arena, so that every query and update
//! costs O(log n) whatever a receiver SACKs.

use std::fmt;

use crate::SeqNum;

/// Counts one step of work in tests (tree levels visited, entries
/// examined), to show the per-ACK bounds without timing anything.
#[cfg(test)]
pub(super) fn step() {
    super::tests::STEPS.with(|s| s.set(s.get() + 1));
}

#[cfg(not(test))]
#[inline(always)]
pub(super) fn step() {}

/// No node.
pub(super) const NIL: u32 = u32::MAX;

#[derive(Clone, Copy, Debug)]
pub(super) struct Node {
    start: SeqNum,
    end: SeqNum,
    left: u32,
    right: u32,
    /// Bytes of all intervals in this subtree (below 2^31: they lie in one
    /// window).
    sum: u32,
    height: u8,
}

/// A set of disjoint, non-touching intervals of sequence space: an AVL tree
/// keyed by interval start, its nodes in an arena, each carrying the bytes
/// of its subtree. Sequence numbers compare circularly, which orders them
/// correctly as long as all of them (and the query points) lie within 2^31
/// of each other, as everything inside one window does.
///
/// Lookups are O(log n); adding an interval costs O(log n) for each
/// interval it absorbs, removing a stretch O(log n) for each interval it
/// touches.
#[derive(Clone)]
pub(super) struct IntervalSet {
    nodes: Vec<Node>,
    /// First unused arena slot; unused slots are chained by `left`.
    free: u32,
    root: u32,
    len: usize,
}

/// SACKed ranges in order, from [`Scoreboard::ranges`](super::Scoreboard::ranges).
#[derive(Clone, Debug)]
pub struct Ranges<'a> {
    set: &'a IntervalSet,
    /// The nodes whose left subtree is done and which come next, nearest
    /// last.
    path: Vec<u32>,
    left: usize,
}

impl Ranges<'_> {
    pub(super) fn descend_left(&mut self, mut i: u32) {
        while i != NIL {
            self.path.push(i);
            i = self.set.nodes[i as usize].left;
        }
    }
}

impl Iterator for Ranges<'_> {
    type Item = (SeqNum, SeqNum);

    fn next(&mut self) -> Option<(SeqNum, SeqNum)> {
        let i = self.path.pop()?;
        self.left -= 1;
        self.descend_left(self.set.nodes[i as usize].right);
        Some(self.set.interval(i))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for Ranges<'_> {}

impl fmt::Debug for IntervalSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl IntervalSet {
    pub(super) fn new() -> Self {
        IntervalSet {
            nodes: Vec::new(),
            free: NIL,
            root: NIL,
            len: 0,
        }
    }

    /// Empties the set; a large arena is given back.
    pub(super) fn clear(&mut self) {
        if self.nodes.capacity() > 64 {
            *self = IntervalSet::new();
            return;
        }
        self.nodes.clear();
        self.free = NIL;
        self.root = NIL;
        self.len = 0;
    }

    pub(super) fn memory_used(&self) -> usize {
        self.nodes.capacity() * std::mem::size_of::<Node>()
    }

    pub(super) fn len(&self) -> usize {
        self.len
    }

    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes in all intervals.
    pub(super) fn bytes(&self) -> usize {
        self.sum(self.root)
    }

    pub(super) fn iter(&self) -> Ranges<'_> {
        let mut r = Ranges {
            set: self,
            path: Vec::new(),
            left: self.len,
        };
        r.descend_left(self.root);
        r
    }

    pub(super) fn sum(&self, i: u32) -> usize {
        if i == NIL {
            0
        } else {
            self.nodes[i as usize].sum as usize
        }
    }

    pub(super) fn height(&self, i: u32) -> u8 {
        if i == NIL {
            0
        } else {
            self.nodes[i as usize].height
        }
    }

    pub(super) fn interval(&self, i: u32) -> (SeqNum, SeqNum) {
        let n = &self.nodes[i as usize];
        (n.start, n.end)
    }

    /// The interval with the greatest start that `pick` accepts, where
    /// `pick(start)` holds for a prefix of the intervals in order.
    pub(super) fn last_where(&self, pick: impl Fn(SeqNum) -> bool) -> Option<(SeqNum, SeqNum)> {
        self.search(pick, true)
    }

    /// The interval with the least start that `pick` accepts, where
    /// `pick(start)` holds for a suffix of the intervals in order.
    pub(super) fn first_where(&self, pick: impl Fn(SeqNum) -> bool) -> Option<(SeqNum, SeqNum)> {
        self.search(pick, false)
    }

    /// The tree search behind [`last_where`](Self::last_where) (`last`)
    /// and [`first_where`](Self::first_where): from an accepted node it
    /// goes on towards later starts for the last one, earlier ones for the
    /// first.
    fn search(&self, pick: impl Fn(SeqNum) -> bool, last: bool) -> Option<(SeqNum, SeqNum)> {
        let mut best = NIL;
        let mut i = self.root;
        while i != NIL {
            step();
            let n = &self.nodes[i as usize];
            let accepted = pick(n.start);
            if accepted {
                best = i;
            }
            i = if accepted == last { n.right } else { n.left };
        }
        (best != NIL).then(|| self.interval(best))
    }

    pub(super) fn first(&self) -> Option<(SeqNum, SeqNum)> {
        self.first_where(|_| true)
    }

    pub(super) fn last(&self) -> Option<(SeqNum, SeqNum)> {
        self.last_where(|_| true)
    }

    /// The interval starting last before `seq`.
    pub(super) fn before(&self, seq: SeqNum) -> Option<(SeqNum, SeqNum)> {
        self.last_where(|s| s < seq)
    }

    /// The interval starting first at or after `seq`.
    pub(super) fn first_from(&self, seq: SeqNum) -> Option<(SeqNum, SeqNum)> {
        self.first_where(|s| s >= seq)
    }

    /// The interval holding `seq`.
    pub(super) fn containing(&self, seq: SeqNum) -> Option<(SeqNum, SeqNum)> {
        self.last_where(|s| s <= seq).filter(|r| seq < r.1)
    }

    /// The first sequence number at or after `seq` outside every interval
    /// (the end of the one holding `seq`: intervals never touch).
    pub(super) fn first_uncovered(&self, seq: SeqNum) -> SeqNum {
        self.containing(seq).map_or(seq, |r| r.1)
    }

    /// Bytes of the intervals below `seq`.
    pub(super) fn bytes_below(&self, seq: SeqNum) -> usize {
        let mut total = 0;
        let mut i = self.root;
        while i != NIL {
            step();
            let n = &self.nodes[i as usize];
            if seq <= n.start {
                i = n.left;
            } else {
                // The left subtree ends before this interval starts.
                total += self.sum(n.left) + seq.min(n.end).since(n.start);
                i = n.right;
            }
        }
        total
    }

    /// Bytes of the intervals inside [a, b).
    pub(super) fn measure(&self, a: SeqNum, b: SeqNum) -> usize {
        if a >= b || self.is_empty() {
            return 0;
        }
        self.bytes_below(b) - self.bytes_below(a)
    }

    /// Adds [l, r), merging it with the intervals it overlaps or touches;
    /// `gap` is called for each newly covered stretch, in order. Returns the
    /// merged interval and the bytes newly covered, or `None` (and changes
    /// nothing) if [l, r) touches no interval and `cap` are held already.
    pub(super) fn add(
        &mut self,
        l: SeqNum,
        r: SeqNum,
        cap: usize,
        mut gap: impl FnMut(SeqNum, SeqNum),
    ) -> Option<(SeqNum, SeqNum, usize)> {
        debug_assert!(l < r);
        // The first interval touching [l, r], which absorbs the others.
        let first = match self.last_where(|s| s <= l) {
            Some((s, e)) if e >= l => Some((s, e)),
            _ => self.first_where(|s| s > l).filter(|&(s, _)| s <= r),
        };
        let Some((s0, e0)) = first else {
            if self.len >= cap {
                return None;
            }
            gap(l, r);
            self.put(l, r);
            return Some((l, r, r.since(l)));
        };
        if s0 <= l && r <= e0 {
            // Nothing new (a repeated block).
            return Some((s0, e0, 0));
        }
        let lo = l.min(s0);
        let mut hi = r.max(e0);
        let mut added = 0;
        if lo < s0 {
            gap(lo, s0);
            added += s0.since(lo);
        }
        // Absorb, in order, every further interval starting in [s0, hi].
        let mut pos = e0;
        while let Some((s, e)) = self.first_where(|x| x > s0)
            && s <= hi
        {
            step();
            // Intervals never touch: there is a gap before this one.
            gap(pos, s);
            added += s.since(pos);
            pos = e;
            hi = hi.max(e);
            self.delete(s);
        }
        if pos < hi {
            gap(pos, hi);
            added += hi.since(pos);
        }
        if added > 0 {
            self.reshape((s0, e0), lo, hi);
        }
        Some((lo, hi, added))
    }

    /// Gives the interval [start, end) the bounds [lo, hi), which must not
    /// change its place in the order: the node stays, the byte sums on its
    /// path grow.
    pub(super) fn reshape(&mut self, (start, end): (SeqNum, SeqNum), lo: SeqNum, hi: SeqNum) {
        let grown = (hi.since(lo) - end.since(start)) as u32;
        let mut i = self.root;
        while i != NIL {
            step();
            let n = &mut self.nodes[i as usize];
            n.sum += grown;
            if start == n.start {
                n.start = lo;
                n.end = hi;
                return;
            }
            i = if start < n.start { n.left } else { n.right };
        }
        debug_assert!(false, "no interval at {start}");
    }

    /// Removes [a, b); `removed` is called for each stretch that was
    /// covered, in order. An interval cut in two keeps only its left part
    /// if `cap` intervals are held already.
    pub(super) fn remove(
        &mut self,
        a: SeqNum,
        b: SeqNum,
        cap: usize,
        mut removed: impl FnMut(SeqNum, SeqNum),
    ) {
        if a >= b {
            return;
        }
        let mut from = match self.containing(a) {
            Some((s, _)) => s,
            None => a,
        };
        while let Some((s, e)) = self.first_from(from)
            && s < b
        {
            step();
            self.delete(s);
            if s < a {
                self.put(s, a);
            }
            let cut_end = if e > b && self.len < cap {
                self.put(b, e);
                b
            } else {
                e
            };
            removed(s.max(a), cut_end);
            from = cut_end;
        }
    }

    /// Inserts [start, end), which overlaps nothing.
    pub(super) fn put(&mut self, start: SeqNum, end: SeqNum) {
        let node = Node {
            start,
            end,
            left: NIL,
            right: NIL,
            sum: end.since(start) as u32,
            height: 1,
        };
        let i = if self.free == NIL {
            self.nodes.push(node);
            (self.nodes.len() - 1) as u32
        } else {
            let i = self.free;
            self.free = self.nodes[i as usize].left;
            self.nodes[i as usize] = node;
            i
        };
        self.root = self.insert_at(self.root, i);
        self.len += 1;
    }

    /// Deletes the interval starting at `start` (which exists).
    pub(super) fn delete(&mut self, start: SeqNum) {
        let before = self.len;
        self.root = self.delete_at(self.root, start);
        debug_assert_eq!(self.len + 1, before, "no interval at {start}");
    }

    pub(super) fn insert_at(&mut self, t: u32, i: u32) -> u32 {
        step();
        if t == NIL {
            return i;
        }
        if self.nodes[i as usize].start < self.nodes[t as usize].start {
            let l = self.insert_at(self.nodes[t as usize].left, i);
            self.nodes[t as usize].left = l;
        } else {
            let r = self.insert_at(self.nodes[t as usize].right, i);
            self.nodes[t as usize].right = r;
        }
        self.rebalance(t)
    }

    pub(super) fn delete_at(&mut self, t: u32, start: SeqNum) -> u32 {
        step();
        if t == NIL {
            return NIL;
        }
        let n = self.nodes[t as usize];
        if start < n.start {
            let l = self.delete_at(n.left, start);
            self.nodes[t as usize].left = l;
        } else if start > n.start {
            let r = self.delete_at(n.right, start);
            self.nodes[t as usize].right = r;
        } else {
            self.nodes[t as usize].left = self.free;
            self.free = t;
            self.len -= 1;
            if n.left == NIL {
                return n.right;
            }
            if n.right == NIL {
                return n.left;
            }
            // The successor takes this node's place.
            let (right, m) = self.take_min(n.right);
            self.nodes[m as usize].left = n.left;
            self.nodes[m as usize].right = right;
            return self.rebalance(m);
        }
        self.rebalance(t)
    }

    /// Detaches the least node of subtree `t`: (new subtree, that node).
    pub(super) fn take_min(&mut self, t: u32) -> (u32, u32) {
        step();
        let left = self.nodes[t as usize].left;
        if left == NIL {
            return (self.nodes[t as usize].right, t);
        }
        let (l, m) = self.take_min(left);
        self.nodes[t as usize].left = l;
        (self.rebalance(t), m)
    }

    /// Recomputes height and byte sum of `t` from its children.
    pub(super) fn update(&mut self, t: u32) {
        let n = self.nodes[t as usize];
        let height = 1 + self.height(n.left).max(self.height(n.right));
        let sum = self.sum(n.left) + self.sum(n.right) + n.end.since(n.start);
        let n = &mut self.nodes[t as usize];
        n.height = height;
        n.sum = sum as u32;
    }

    pub(super) fn rotate_right(&mut self, t: u32) -> u32 {
        let l = self.nodes[t as usize].left;
        self.nodes[t as usize].left = self.nodes[l as usize].right;
        self.nodes[l as usize].right = t;
        self.update(t);
        self.update(l);
        l
    }

    pub(super) fn rotate_left(&mut self, t: u32) -> u32 {
        let r = self.nodes[t as usize].right;
        self.nodes[t as usize].right = self.nodes[r as usize].left;
        self.nodes[r as usize].left = t;
        self.update(t);
        self.update(r);
        r
    }

    /// Restores the AVL balance at `t` (children balanced, heights within
    /// two of each other) and its height and sum; returns the subtree root.
    pub(super) fn rebalance(&mut self, t: u32) -> u32 {
        let (l, r) = (self.nodes[t as usize].left, self.nodes[t as usize].right);
        let (hl, hr) = (self.height(l), self.height(r));
        if hl > hr + 1 {
            let ll = self.nodes[l as usize].left;
            let lr = self.nodes[l as usize].right;
            if self.height(ll) < self.height(lr) {
                let nl = self.rotate_left(l);
                self.nodes[t as usize].left = nl;
            }
            return self.rotate_right(t);
        }
        if hr > hl + 1 {
            let rl = self.nodes[r as usize].left;
            let rr = self.nodes[r as usize].right;
            if self.height(rr) < self.height(rl) {
                let nr = self.rotate_right(r);
                self.nodes[t as usize].right = nr;
            }
            return self.rotate_left(t);
        }
        self.update(t);
        t
    }
}

#[cfg(test)]
impl IntervalSet {
    /// Checks order, spacing, AVL balance, heights and sums; returns the
    /// tree height.
    pub(super) fn check(&self) -> u8 {
        fn walk(set: &IntervalSet, i: u32, count: &mut usize) -> (u8, usize) {
            if i == NIL {
                return (0, 0);
            }
            let n = set.nodes[i as usize];
            assert!(n.start < n.end, "empty interval");
            let (hl, sl) = walk(set, n.left, count);
            let (hr, sr) = walk(set, n.right, count);
            *count += 1;
            assert!(hl.abs_diff(hr) <= 1, "unbalanced");
            assert_eq!(n.height, 1 + hl.max(hr), "height");
            let sum = sl + sr + n.end.since(n.start);
            assert_eq!(n.sum as usize, sum, "sum");
            (n.height, sum)
        }
        let mut count = 0;
        let (height, _) = walk(self, self.root, &mut count);
        assert_eq!(count, self.len);
        let v: Vec<_> = self.iter().collect();
        assert_eq!(v.len(), self.len);
        for w in v.windows(2) {
            assert!(w[0].1 < w[1].0, "intervals touch or overlap: {w:?}");
        }
        height
    }
}
