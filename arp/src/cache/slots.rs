//! The entries' storage: slots indexed by address, and one LRU list per
//! eviction class threaded through them, so that eviction and "use" are
//! O(1).

use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::time::Instant;

use ethernet::MacAddr;

use super::NeighborCache;

#[derive(Debug)]
pub(super) enum State {
    Incomplete {
        attempts: u32,
        next_attempt: Instant,
        queue: VecDeque<Vec<u8>>,
        /// What the queue is charged: lengths plus per-packet overhead.
        queued_bytes: usize,
        /// Heap the queue really holds (buffers' capacities), for
        /// `memory_used`.
        heap: usize,
    },
    Reachable {
        mac: MacAddr,
        until: Instant,
    },
    Probe {
        mac: MacAddr,
        attempts: u32,
        next_attempt: Instant,
    },
}

/// Eviction classes, evicted in this order.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Class {
    /// Created by a packet that targeted us, not used since.
    Unsolicited = 0,
    /// `Incomplete`.
    Pending = 1,
    /// Resolved because we asked, or used by our traffic.
    Confirmed = 2,
}

pub(super) const EVICTION_ORDER: [Class; 3] =
    [Class::Unsolicited, Class::Pending, Class::Confirmed];

/// No slot: the end of a list.
pub(super) const NIL: usize = usize::MAX;

#[derive(Debug)]
pub(super) struct Node {
    pub(super) ip: Ipv4Addr,
    pub(super) state: State,
    pub(super) class: Class,
    /// When the MAC was last set or the state confirmed by an ARP packet
    /// (Linux `neigh->updated`): the lock time runs from here. Confirming the
    /// same MAC again does not move it, so no-op updates cannot keep an
    /// entry locked.
    pub(super) updated: Instant,
    /// Neighbors in the LRU list of `class` (towards least / most recent).
    pub(super) prev: usize,
    pub(super) next: usize,
}

/// One LRU list: `head` is the least recently used.
#[derive(Clone, Copy, Debug)]
pub(super) struct List {
    pub(super) head: usize,
    pub(super) tail: usize,
    pub(super) len: usize,
}

impl List {
    pub(super) const EMPTY: List = List {
        head: NIL,
        tail: NIL,
        len: 0,
    };
}

impl NeighborCache {
    pub(super) fn node(&self, idx: usize) -> Option<&Node> {
        self.slots.get(idx)?.as_ref()
    }

    pub(super) fn node_mut(&mut self, idx: usize) -> Option<&mut Node> {
        self.slots.get_mut(idx)?.as_mut()
    }

    /// Stores a new entry as the most recently used of `class`.
    pub(super) fn insert(
        &mut self,
        ip: Ipv4Addr,
        state: State,
        class: Class,
        now: Instant,
    ) -> usize {
        let node = Node {
            ip,
            state,
            class,
            updated: now,
            prev: NIL,
            next: NIL,
        };
        let idx = match self.free.pop() {
            Some(idx) if idx < self.slots.len() => {
                self.slots[idx] = Some(node);
                idx
            }
            _ => {
                self.slots.push(Some(node));
                self.slots.len() - 1
            }
        };
        self.index.insert(ip, idx);
        self.push_back(idx, class);
        idx
    }

    /// Removes an entry from every structure, releasing its queue's charge.
    pub(super) fn remove_slot(&mut self, idx: usize) -> Option<Node> {
        self.unlink(idx);
        let node = self.slots.get_mut(idx)?.take()?;
        self.free.push(idx);
        self.index.remove(&node.ip);
        self.active.remove(&node.ip);
        if let State::Incomplete {
            queued_bytes, heap, ..
        } = node.state
        {
            self.queued_bytes = self.queued_bytes.saturating_sub(queued_bytes);
            self.queue_heap = self.queue_heap.saturating_sub(heap);
        }
        if self.index.is_empty() {
            // Every slot is free: start afresh (keeps the capacity).
            self.slots.clear();
            self.free.clear();
        }
        Some(node)
    }

    /// Makes `idx` the most recently used entry of `class`, moving it there
    /// from its current list.
    pub(super) fn touch(&mut self, idx: usize, class: Class) {
        let Some(node) = self.node(idx) else {
            return;
        };
        if node.class == class && self.lists[class as usize].tail == idx {
            return;
        }
        self.unlink(idx);
        self.push_back(idx, class);
    }

    pub(super) fn unlink(&mut self, idx: usize) {
        let Some(node) = self.node_mut(idx) else {
            return;
        };
        let (class, prev, next) = (node.class, node.prev, node.next);
        node.prev = NIL;
        node.next = NIL;
        let list = &mut self.lists[class as usize];
        if list.head != idx && prev == NIL {
            // Not linked.
            return;
        }
        list.len = list.len.saturating_sub(1);
        if prev == NIL {
            list.head = next;
        }
        if next == NIL {
            list.tail = prev;
        }
        if let Some(p) = self.node_mut(prev) {
            p.next = next;
        }
        if let Some(n) = self.node_mut(next) {
            n.prev = prev;
        }
    }

    pub(super) fn push_back(&mut self, idx: usize, class: Class) {
        let tail = self.lists[class as usize].tail;
        let Some(node) = self.node_mut(idx) else {
            return;
        };
        node.class = class;
        node.prev = tail;
        node.next = NIL;
        match self.node_mut(tail) {
            Some(t) => t.next = idx,
            None => self.lists[class as usize].head = idx,
        }
        let list = &mut self.lists[class as usize];
        list.tail = idx;
        list.len += 1;
    }
}
