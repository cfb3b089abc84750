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
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;
    use std::time::Duration;

    #[test]
    fn keyed_per_tuple_and_increasing_with_time() {
        let t0 = Instant::now();
        let g = IsnGenerator::new((1, 2), t0);
        let a = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 1000);
        let b = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 80);
        let c = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 81);
        let x = g.isn(t0, a, b);
        assert_ne!(x, g.isn(t0, a, c), "tuples get unrelated ISNs");
        assert_eq!(g.isn(t0 + Duration::from_millis(4), a, b).diff(x), 1000);
        let other_key = IsnGenerator::new((3, 4), t0);
        assert_ne!(x, other_key.isn(t0, a, b));
    }
}
