//! Initial sequence numbers (RFC 6528): ISN = M + F(localip, localport,
//! remoteip, remoteport, secretkey), where M is a 4-microsecond timer and F a
//! keyed hash. Off-path attackers cannot predict another connection's ISN,
//! and a new incarnation of a 4-tuple still starts above the old one.

use std::hash::Hasher;
use std::net::SocketAddrV4;
use std::time::Instant;

use siphasher::sip::SipHasher24;

use crate::SeqNum;

/// Generates ISNs for one stack.
#[derive(Clone, Debug)]
pub struct IsnGenerator {
    key: (u64, u64),
    epoch: Instant,
}

impl IsnGenerator {
    /// A generator with a 128-bit secret key (random per stack) and a clock
    /// starting at `epoch`.
    pub fn new(key: (u64, u64), epoch: Instant) -> Self {
        IsnGenerator { key, epoch }
    }

    /// The ISN for a connection from `local` to `remote` opened at `now`.
    pub fn isn(&self, now: Instant, local: SocketAddrV4, remote: SocketAddrV4) -> SeqNum {
        // RFC 6528 section 3: "M is the 4 microsecond timer".
        let m = (now.saturating_duration_since(self.epoch).as_micros() / 4) as u32;
        // "F() is a pseudorandom function (PRF) of the connection-id and
        // some secret data"; SipHash-2-4 is a keyed PRF.
        let mut h = SipHasher24::new_with_keys(self.key.0, self.key.1);
        h.write(&local.ip().octets());
        h.write_u16(local.port());
        h.write(&remote.ip().octets());
        h.write_u16(remote.port());
        SeqNum(m.wrapping_add(h.finish() as u32))
    }

    /// The timestamp offset (RFC 7323 section 7.1) for connections between
    /// `local` and `remote`: a keyed hash of the *address pair* only (as
    /// Linux does), not the ports. Timestamps do not leak the stack's
    /// uptime, yet every connection between two hosts shares one clock, so
    /// the SYN of a new incarnation of a 4-tuple carries a timestamp above
    /// the old one and a peer in TIME-WAIT accepts it (RFC 6191). Random
    /// per-connection offsets would fail that test half of the time, and
    /// the connection would wait for a SYN retransmission.
    pub fn ts_offset(&self, local: std::net::Ipv4Addr, remote: std::net::Ipv4Addr) -> u32 {
        let mut h = SipHasher24::new_with_keys(self.key.1 ^ 0x7473_6f66_6673_6574, self.key.0);
        h.write(&local.octets());
        h.write(&remote.octets());
        h.finish() as u32
    }
}

#[cfg(test)]
mod tests;
