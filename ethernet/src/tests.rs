use super::*;

/// A broadcast ARP request as Linux sends it over a TAP (42 bytes, unpadded).
const ARP_FRAME: [u8; 42] = [
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // dst
    0x52, 0x54, 0x00, 0x12, 0x34, 0x56, // src
    0x08, 0x06, // ARP
    0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, // htype ptype hlen plen op
    0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 10, 0, 0, 1, // sha spa
    0, 0, 0, 0, 0, 0, 10, 0, 0, 2, // tha tpa
];

#[test]
fn parses_fixture() {
    let (repr, payload) = EthernetRepr::parse(&ARP_FRAME).unwrap();
    assert_eq!(repr.dst, MacAddr::BROADCAST);
    assert_eq!(repr.src, MacAddr([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]));
    assert_eq!(repr.ethertype, EtherType::ARP);
    assert_eq!(payload.len(), 28);
}

#[test]
fn emit_round_trips() {
    let (repr, _) = EthernetRepr::parse(&ARP_FRAME).unwrap();
    let mut buf = [0u8; 14];
    repr.emit(&mut buf);
    assert_eq!(buf, ARP_FRAME[..14]);
}

#[test]
fn truncated_frames_are_errors() {
    for len in 0..14 {
        assert_eq!(
            EthernetRepr::parse(&ARP_FRAME[..len]),
            Err(FrameError::Truncated)
        );
    }
    // Exactly a header and no payload is a valid (if useless) frame.
    assert!(EthernetRepr::parse(&ARP_FRAME[..14]).is_ok());
}

#[test]
fn ieee_802_3_length_field_is_rejected() {
    let mut frame = ARP_FRAME;
    frame[12..14].copy_from_slice(&100u16.to_be_bytes());
    assert_eq!(EthernetRepr::parse(&frame), Err(FrameError::Ieee8023Length));
}

#[test]
fn mac_parse_and_display() {
    let mac: MacAddr = "02:AB:cd:00:0f:10".parse().unwrap();
    assert_eq!(mac.0, [0x02, 0xab, 0xcd, 0x00, 0x0f, 0x10]);
    assert_eq!(mac.to_string(), "02:ab:cd:00:0f:10");
    assert_eq!("02-ab-cd-00-0f-10".parse::<MacAddr>().unwrap(), mac);
    for bad in [
        "",
        "02:ab:cd:00:0f",
        "02:ab:cd:00:0f:10:11",
        "02:ab:cd:00:0f:1g",
        "02:ab:cd:00:0f:100",
        "02::cd:00:0f:10",
        "hello",
    ] {
        assert!(bad.parse::<MacAddr>().is_err(), "{bad} should be rejected");
    }
}

#[test]
fn random_local_is_unicast_and_local() {
    use rand::SeedableRng;
    let mut rng = rand::rngs::SmallRng::seed_from_u64(7);
    for _ in 0..100 {
        let mac = MacAddr::random_local(&mut rng);
        assert!(mac.is_unicast());
        assert!(mac.is_locally_administered());
    }
    assert!(MacAddr::BROADCAST.is_multicast());
}
