use super::*;

const SRC: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const DST: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

/// Port 40000 -> 7, "hello", checksum computed independently.
const FIXTURE: [u8; 13] = [
    0x9c, 0x40, 0x00, 0x07, 0x00, 0x0d, 0x0b, 0xb8, b'h', b'e', b'l', b'l', b'o',
];

#[test]
fn parses_and_emits_fixture() {
    let (repr, data) = UdpRepr::parse(&FIXTURE, SRC, DST).unwrap();
    assert_eq!(
        repr,
        UdpRepr {
            src_port: 40000,
            dst_port: 7
        }
    );
    assert_eq!(data, b"hello");
    let mut buf = [0u8; 13];
    repr.emit(&mut buf, SRC, DST, b"hello");
    assert_eq!(buf, FIXTURE);
}

#[test]
fn zero_checksum_is_accepted() {
    let mut d = FIXTURE;
    d[6] = 0;
    d[7] = 0;
    assert!(UdpRepr::parse(&d, SRC, DST).is_ok());
}

#[test]
fn malformed_is_rejected() {
    for len in 0..8 {
        assert_eq!(
            UdpRepr::parse(&FIXTURE[..len], SRC, DST),
            Err(UdpError::Truncated)
        );
    }
    let mut d = FIXTURE;
    d[5] = 7;
    assert_eq!(UdpRepr::parse(&d, SRC, DST), Err(UdpError::BadLength));
    let mut d = FIXTURE;
    d[5] = 14;
    assert_eq!(UdpRepr::parse(&d, SRC, DST), Err(UdpError::BadLength));
    let mut d = FIXTURE;
    d[9] ^= 1;
    assert_eq!(UdpRepr::parse(&d, SRC, DST), Err(UdpError::BadChecksum));
    // The pseudo-header counts: the same bytes to another host fail.
    assert_eq!(
        UdpRepr::parse(&FIXTURE, SRC, Ipv4Addr::new(10, 0, 0, 3)),
        Err(UdpError::BadChecksum)
    );
}

#[test]
fn computed_zero_is_sent_as_all_ones() {
    // Search payloads until one sums to zero.
    let mut buf = [0u8; 10];
    for x in 0..=u16::MAX {
        let payload = x.to_be_bytes();
        UdpRepr {
            src_port: 1,
            dst_port: 2,
        }
        .emit(&mut buf, SRC, DST, &payload);
        let stored = u16::from_be_bytes([buf[6], buf[7]]);
        assert_ne!(stored, 0);
        if stored == 0xffff {
            assert!(UdpRepr::parse(&buf, SRC, DST).is_ok());
            return;
        }
    }
    panic!("no payload gave a zero checksum");
}
