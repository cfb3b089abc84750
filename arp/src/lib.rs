//! ARP (RFC 826) for Ethernet and IPv4: the packet format and a neighbor
//! cache that resolves next hops, queues packets while resolution is under
//! way, retries, expires entries and re-confirms stale ones.
//!
//! Sans-IO: every call that depends on time takes `now`, and the cache tells
//! its owner what to send through [`NeighborCache::poll`].

#![warn(missing_docs)]

mod cache;
mod packet;

pub use cache::{
    Lookup, NeighborAction, NeighborCache, NeighborConfig, NeighborState, NeighborStats, QueueError,
};
pub use packet::{ArpError, ArpOp, ArpRepr};
