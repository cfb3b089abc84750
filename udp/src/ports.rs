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
mod tests;
