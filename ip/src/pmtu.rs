//! The path MTU cache (RFC 1191): what ICMP "fragmentation needed" messages
//! taught us about paths narrower than our link.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

/// Path MTU estimates per destination.
#[derive(Debug)]
pub struct PmtuCache {
    entries: HashMap<Ipv4Addr, (usize, Instant)>,
    lifetime: Duration,
    max_entries: usize,
}

/// RFC 1191 section 7: the MTU plateaus used to guess the next-hop MTU when
/// an old router reports zero.
const PLATEAUS: [usize; 11] = [
    65_535, 32_000, 17_914, 8_166, 4_352, 2_002, 1_492, 1_006, 508, 296, 68,
];

impl PmtuCache {
    /// The smallest path MTU believed: RFC 1191 and RFC 1122 both let a host
    /// assume 576 bytes get through, and refusing smaller values stops a
    /// forged ICMP message from forcing tiny fragments.
    pub const MIN_PMTU: usize = 576;

    /// An empty cache. RFC 1191 section 6.3 suggests a 10-minute lifetime
    /// before trying the larger MTU again.
    pub fn new() -> Self {
        PmtuCache {
            entries: HashMap::new(),
            lifetime: Duration::from_secs(600),
            max_entries: 4096,
        }
    }

    /// Sets how long an entry lives.
    pub fn set_lifetime(&mut self, lifetime: Duration) {
        self.lifetime = lifetime;
    }

    /// Records a Fragmentation Needed message about a datagram to `dst` of
    /// `original_len` bytes, reporting `next_hop_mtu` (0 from routers that
    /// predate RFC 1191). Returns the new path MTU if it went down.
    pub fn update(
        &mut self,
        now: Instant,
        dst: Ipv4Addr,
        next_hop_mtu: u16,
        original_len: usize,
        link_mtu: usize,
    ) -> Option<usize> {
        let reported = if next_hop_mtu >= 68 {
            next_hop_mtu as usize
        } else {
            // RFC 1191 section 5: take the plateau below the datagram's size.
            PLATEAUS
                .iter()
                .copied()
                .find(|&p| p < original_len)
                .unwrap_or(68)
        };
        let mtu = reported.clamp(Self::MIN_PMTU.min(link_mtu), link_mtu);
        let current = self.get(now, dst).unwrap_or(link_mtu);
        // RFC 1191 section 6.1: never raise the estimate on an ICMP message.
        if mtu >= current {
            return None;
        }
        if self.entries.len() >= self.max_entries && !self.entries.contains_key(&dst) {
            self.entries.retain(|_, (_, exp)| now < *exp);
            if self.entries.len() >= self.max_entries {
                return None;
            }
        }
        self.entries.insert(dst, (mtu, now + self.lifetime));
        Some(mtu)
    }

    /// The path MTU to `dst`, if something smaller than the link was learned
    /// and has not expired.
    pub fn get(&self, now: Instant, dst: Ipv4Addr) -> Option<usize> {
        match self.entries.get(&dst) {
            Some(&(mtu, expires)) if now < expires => Some(mtu),
            _ => None,
        }
    }

    /// Number of entries (live or expired but not yet removed).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl Default for PmtuCache {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests;
