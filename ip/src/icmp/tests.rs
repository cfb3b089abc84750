use super::*;

const ECHO: [u8; 16] = [
    0x08, 0x00, 0x66, 0x3f, 0x00, 0x2a, 0x00, 0x01, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68,
];

#[test]
fn echo_request_fixture() {
    let repr = IcmpRepr::parse(&ECHO).unwrap();
    assert_eq!(
        repr,
        IcmpRepr::EchoRequest {
            ident: 42,
            seq: 1,
            data: b"abcdefgh"
        }
    );
    assert!(!repr.is_error());
    let mut buf = [0u8; 16];
    repr.emit(&mut buf);
    assert_eq!(buf, ECHO);
}

#[test]
fn echo_reply_checksum() {
    let reply = IcmpRepr::EchoReply {
        ident: 42,
        seq: 1,
        data: b"abcdefgh",
    };
    let mut buf = [0u8; 16];
    reply.emit(&mut buf);
    assert_eq!(buf[0], 0);
    // Changing the type from 8 to 0 changes the checksum by 0x0800.
    assert_eq!(u16::from_be_bytes([buf[2], buf[3]]), 0x663f + 0x0800);
    assert_eq!(IcmpRepr::parse(&buf).unwrap(), reply);
}

#[test]
fn frag_needed_carries_mtu() {
    let original = [0x45u8; 28];
    let msg = IcmpRepr::DestUnreachable {
        code: dest_unreachable::FRAG_NEEDED,
        next_hop_mtu: 1400,
        original: &original,
    };
    let mut buf = vec![0u8; msg.buffer_len()];
    msg.emit(&mut buf);
    assert_eq!(&buf[4..8], &[0, 0, 0x05, 0x78]);
    assert_eq!(IcmpRepr::parse(&buf).unwrap(), msg);
    assert!(msg.is_error());
}

#[test]
fn malformed_is_rejected() {
    for len in 0..8 {
        assert_eq!(IcmpRepr::parse(&ECHO[..len]), Err(IcmpError::Truncated));
    }
    let mut bad = ECHO;
    bad[9] ^= 1;
    assert_eq!(IcmpRepr::parse(&bad), Err(IcmpError::BadChecksum));
}

#[test]
fn unknown_types_are_other() {
    // Timestamp request (13): a query, not an error.
    let mut buf = [13u8, 0, 0, 0, 0, 0, 0, 0];
    let sum = checksum::checksum(&buf);
    buf[2..4].copy_from_slice(&sum.to_be_bytes());
    let repr = IcmpRepr::parse(&buf).unwrap();
    assert_eq!(
        repr,
        IcmpRepr::Other {
            icmp_type: 13,
            code: 0
        }
    );
    assert!(!repr.is_error());
    // Redirect (5) is an error message even though we do not act on it.
    let mut buf = [5u8, 1, 0, 0, 0, 0, 0, 0];
    let sum = checksum::checksum(&buf);
    buf[2..4].copy_from_slice(&sum.to_be_bytes());
    assert!(IcmpRepr::parse(&buf).unwrap().is_error());
}
