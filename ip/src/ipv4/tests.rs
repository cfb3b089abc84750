use super::*;

/// An ICMP echo request from Linux ping (10.0.0.1 -> 10.0.0.2), 20-byte
/// header plus 16 bytes of ICMP, as captured.
pub(crate) const PING: [u8; 36] = [
    0x45, 0x00, 0x00, 0x24, 0x3c, 0x1f, 0x40, 0x00, 0x40, 0x01, 0xea, 0xb7, 10, 0, 0, 1, 10, 0, 0,
    2, // IPv4
    0x08, 0x00, 0x66, 0x3f, 0x00, 0x2a, 0x00, 0x01, // ICMP echo, id 42, seq 1
    0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, // "abcdefgh"
];

#[test]
fn parses_fixture() {
    let (repr, payload) = Ipv4Repr::parse(&PING).unwrap();
    assert_eq!(repr.src, Ipv4Addr::new(10, 0, 0, 1));
    assert_eq!(repr.dst, Ipv4Addr::new(10, 0, 0, 2));
    assert_eq!(repr.protocol, IpProtocol::ICMP);
    assert_eq!(repr.ttl, 64);
    assert_eq!(repr.ident, 0x3c1f);
    assert!(repr.dont_fragment);
    assert!(!repr.is_fragment());
    assert_eq!(payload.len(), 16);
}

#[test]
fn emit_matches_fixture() {
    let (repr, _) = Ipv4Repr::parse(&PING).unwrap();
    let mut buf = [0u8; 20];
    repr.emit(&mut buf);
    assert_eq!(buf, PING[..20]);
}

#[test]
fn trims_ethernet_padding() {
    let mut padded = PING.to_vec();
    padded.extend_from_slice(&[0; 10]);
    let (_, payload) = Ipv4Repr::parse(&padded).unwrap();
    assert_eq!(payload.len(), 16);
}

#[test]
fn rejects_malformed() {
    for len in 0..PING.len() {
        assert!(Ipv4Repr::parse(&PING[..len]).is_err(), "len {len}");
    }
    let mut p = PING;
    p[0] = 0x65;
    assert_eq!(Ipv4Repr::parse(&p), Err(Ipv4Error::BadVersion));
    let mut p = PING;
    p[0] = 0x44;
    assert_eq!(Ipv4Repr::parse(&p), Err(Ipv4Error::BadHeaderLength));
    let mut p = PING;
    p[3] = 19; // total length below the header (checksum not fixed: length is checked first)
    assert_eq!(Ipv4Repr::parse(&p), Err(Ipv4Error::BadTotalLength));
    let mut p = PING;
    p[3] = 200;
    assert_eq!(Ipv4Repr::parse(&p), Err(Ipv4Error::Truncated));
    let mut p = PING;
    p[8] = 63; // TTL changed without fixing the checksum
    assert_eq!(Ipv4Repr::parse(&p), Err(Ipv4Error::BadChecksum));
}

#[test]
fn fragment_fields_round_trip() {
    let mut repr = Ipv4Repr::new(
        Ipv4Addr::new(1, 2, 3, 4),
        Ipv4Addr::new(5, 6, 7, 8),
        IpProtocol::UDP,
        64,
        8,
    );
    repr.ident = 0xbeef;
    repr.more_fragments = true;
    repr.frag_offset = 1480;
    let mut buf = [0u8; 28];
    repr.emit(&mut buf);
    let (back, payload) = Ipv4Repr::parse(&buf).unwrap();
    assert_eq!(back, repr);
    assert!(back.is_fragment());
    assert_eq!(payload.len(), 8);
}

#[test]
fn options_are_skipped() {
    // 24-byte header with one NOP NOP NOP EOL option word.
    let mut p = vec![
        0x46, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 1, 1, 1, 0,
    ];
    p.extend_from_slice(&[9, 9, 9, 9]);
    let sum = checksum::checksum(&p[..24]);
    p[10..12].copy_from_slice(&sum.to_be_bytes());
    let (repr, payload) = Ipv4Repr::parse(&p).unwrap();
    assert_eq!(repr.header_len, 24);
    assert_eq!(payload, &[9, 9, 9, 9]);
}
