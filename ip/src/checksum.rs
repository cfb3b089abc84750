//! The Internet checksum (RFC 1071): the 16-bit one's complement of the one's
//! complement sum of the data taken as big-endian 16-bit words.
//!
//! The sum is accumulated over native-endian 32-bit chunks in a 64-bit
//! accumulator and folded at the end; RFC 1071 section 2(B) shows the result
//! is independent of byte order as long as the final value is swapped back.

use std::net::Ipv4Addr;

/// Adds `data` to a running one's complement sum (not yet folded).
///
/// An odd-length slice is padded with a zero byte, so only the last slice of
/// a checksummed range may have odd length.
#[inline]
pub fn add(mut sum: u64, data: &[u8]) -> u64 {
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let v = u64::from_ne_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        let (s, carry) = sum.overflowing_add(v);
        sum = s + carry as u64;
    }
    let rest = chunks.remainder();
    let mut tail = [0u8; 8];
    tail[..rest.len()].copy_from_slice(rest);
    let v = u64::from_ne_bytes(tail);
    let (s, carry) = sum.overflowing_add(v);
    s + carry as u64
}

/// Folds a running sum to 16 bits (in host order of the original words).
#[inline]
pub fn fold(sum: u64) -> u16 {
    // 64 -> 32 bits, end-around carry included.
    let mut s = (sum & 0xffff_ffff) + (sum >> 32);
    s = (s & 0xffff_ffff) + (s >> 32);
    // 32 -> 16 bits; three rounds absorb every carry.
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    // Words were read native-endian; turn the sum back into network order.
    u16::from_be(s as u16)
}

/// The checksum field value for `data`: the complement of the folded sum.
#[inline]
pub fn checksum(data: &[u8]) -> u16 {
    !fold(add(0, data))
}

/// True when `data` (which includes its checksum field) sums to 0xffff.
#[inline]
pub fn verify(data: &[u8]) -> bool {
    fold(add(0, data)) == 0xffff
}

/// The running sum of the TCP/UDP pseudo-header (RFC 793/768): source,
/// destination, zero, protocol, and the transport length.
#[inline]
pub fn pseudo_header(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, length: u16) -> u64 {
    let mut ph = [0u8; 12];
    ph[0..4].copy_from_slice(&src.octets());
    ph[4..8].copy_from_slice(&dst.octets());
    ph[9] = protocol;
    ph[10..12].copy_from_slice(&length.to_be_bytes());
    add(0, &ph)
}

#[cfg(test)]
mod tests;
