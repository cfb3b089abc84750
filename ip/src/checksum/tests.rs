use super::*;

/// The reference one's complement sum, word by word, as RFC 1071 defines it.
fn reference(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for pair in data.chunks(2) {
        let word = u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]);
        sum += word as u32;
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[test]
fn rfc1071_example() {
    // RFC 1071 section 3: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2.
    let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
    assert_eq!(fold(add(0, &data)), 0xddf2);
    assert_eq!(checksum(&data), !0xddf2);
}

#[test]
fn matches_reference_for_all_lengths() {
    let data: Vec<u8> = (0..300u32)
        .map(|i| (i.wrapping_mul(97) ^ 0x5a) as u8)
        .collect();
    for len in 0..data.len() {
        assert_eq!(checksum(&data[..len]), reference(&data[..len]), "len {len}");
    }
    let ones = vec![0xffu8; 4096];
    assert_eq!(checksum(&ones), reference(&ones));
}

#[test]
fn known_ipv4_header() {
    // A real header (from a capture) with its correct checksum 0xb861.
    let mut h = [
        0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8, 0x00,
        0x01, 0xc0, 0xa8, 0x00, 0xc7,
    ];
    assert!(verify(&h));
    h[10] = 0;
    h[11] = 0;
    assert_eq!(checksum(&h), 0xb861);
}
