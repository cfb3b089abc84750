//! Ephemeral port selection (RFC 6056).

/// The IANA ephemeral range, 49152-65535 (RFC 6056 section 2.1 recommends it).
pub const EPHEMERAL_PORTS: std::ops::RangeInclusive<u16> = 49152..=65535;

/// Picks a free ephemeral port: RFC 6056 Algorithm 1 ("simple port
/// randomization"): start at a random offset and walk the range until a port
/// not `in_use` turns up. `None` when every port is taken.
pub fn ephemeral_port<R: rand_core::Rng + ?Sized>(
    rng: &mut R,
    mut in_use: impl FnMut(u16) -> bool,
) -> Option<u16> {
    let min = *EPHEMERAL_PORTS.start() as u32;
    let num = *EPHEMERAL_PORTS.end() as u32 - min + 1;
    let mut next = rng.next_u32() % num;
    for _ in 0..num {
        let port = (min + next) as u16;
        if !in_use(port) {
            return Some(port);
        }
        next = (next + 1) % num;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Seq(u32);
    impl rand_core::TryRng for Seq {
        type Error = std::convert::Infallible;
        fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
            self.0 = self.0.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            Ok(self.0)
        }
        fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
            Ok(self.try_next_u32()? as u64)
        }
        fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
            for b in dst {
                *b = self.try_next_u32()? as u8;
            }
            Ok(())
        }
    }

    #[test]
    fn random_and_in_range() {
        let mut rng = Seq(1);
        let ports: Vec<u16> = (0..100)
            .map(|_| ephemeral_port(&mut rng, |_| false).unwrap())
            .collect();
        assert!(ports.iter().all(|p| EPHEMERAL_PORTS.contains(p)));
        let mut distinct = ports.clone();
        distinct.sort();
        distinct.dedup();
        assert!(distinct.len() > 90, "ports should look random");
    }

    #[test]
    fn skips_used_and_reports_exhaustion() {
        let mut rng = Seq(5);
        assert_eq!(ephemeral_port(&mut rng, |p| p != 60000), Some(60000));
        assert_eq!(ephemeral_port(&mut rng, |_| true), None);
    }
}
