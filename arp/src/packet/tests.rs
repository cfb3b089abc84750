use super::*;

const REQUEST: [u8; 28] = [
    0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, //
    0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 10, 0, 0, 1, //
    0, 0, 0, 0, 0, 0, 10, 0, 0, 2,
];

#[test]
fn parses_request_fixture() {
    let repr = ArpRepr::parse(&REQUEST).unwrap();
    assert_eq!(repr.op, ArpOp::Request);
    assert_eq!(
        repr.sender_mac,
        MacAddr([0x52, 0x54, 0x00, 0x12, 0x34, 0x56])
    );
    assert_eq!(repr.sender_ip, Ipv4Addr::new(10, 0, 0, 1));
    assert_eq!(repr.target_mac, MacAddr::ZERO);
    assert_eq!(repr.target_ip, Ipv4Addr::new(10, 0, 0, 2));
}

#[test]
fn emits_byte_exact_fixture() {
    let repr = ArpRepr::parse(&REQUEST).unwrap();
    let mut buf = [0u8; 28];
    repr.emit(&mut buf);
    assert_eq!(buf, REQUEST);
}

#[test]
fn reply_swaps_fields() {
    let ours = MacAddr([2, 0, 0, 0, 0, 2]);
    let reply = ArpRepr::parse(&REQUEST).unwrap().reply_from(ours);
    let mut buf = [0u8; 28];
    reply.emit(&mut buf);
    let expected: [u8; 28] = [
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x02, //
        2, 0, 0, 0, 0, 2, 10, 0, 0, 2, //
        0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 10, 0, 0, 1,
    ];
    assert_eq!(buf, expected);
}

#[test]
fn padding_is_ignored() {
    let mut padded = [0u8; 46];
    padded[..28].copy_from_slice(&REQUEST);
    assert_eq!(
        ArpRepr::parse(&padded).unwrap(),
        ArpRepr::parse(&REQUEST).unwrap()
    );
}

#[test]
fn malformed_inputs_are_errors() {
    for len in 0..28 {
        assert!(ArpRepr::parse(&REQUEST[..len]).is_err(), "len {len}");
    }
    let mut p = REQUEST;
    p[1] = 6; // IEEE 802 hardware type
    assert_eq!(ArpRepr::parse(&p), Err(ArpError::UnsupportedHardware));
    let mut p = REQUEST;
    p[2] = 0x86;
    p[3] = 0xdd;
    assert_eq!(ArpRepr::parse(&p), Err(ArpError::UnsupportedProtocol));
    let mut p = REQUEST;
    p[4] = 8;
    assert_eq!(ArpRepr::parse(&p), Err(ArpError::BadAddressLength));
    let mut p = REQUEST;
    p[7] = 3; // RARP request
    assert_eq!(ArpRepr::parse(&p), Err(ArpError::UnsupportedOperation));
}
