use super::*;
use std::net::Ipv4Addr;

/// An Ethernet/IPv4/TCP frame with `payload`, checksum partial.
fn partial_frame(payload: &[u8]) -> Vec<u8> {
    let (src, dst) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
    let mut f = vec![0u8; 14 + 20 + 20];
    f[12] = 0x08;
    f[14] = 0x45;
    let total = (40 + payload.len()) as u16;
    f[16..18].copy_from_slice(&total.to_be_bytes());
    f[22] = 64;
    f[23] = 6;
    f[26..30].copy_from_slice(&src.octets());
    f[30..34].copy_from_slice(&dst.octets());
    let c = ip::checksum::checksum(&f[14..34]);
    f[24..26].copy_from_slice(&c.to_be_bytes());
    f[34 + 12] = 5 << 4;
    f[34 + 13] = 0x10;
    f.extend_from_slice(payload);
    let tcp_len = 20 + payload.len();
    super::super::gso::fill_partial_checksum(&mut f[34..], src, dst, tcp_len);
    f
}

#[test]
fn vnet_header_round_trips() {
    let h = VnetHdr {
        flags: 1,
        gso_type: 1,
        hdr_len: 66,
        gso_size: 1448,
        csum_start: 34,
        csum_offset: 16,
    };
    assert_eq!(VnetHdr::parse(&h.emit()), h);
    assert_eq!(VnetHdr::parse(&[0; VNET_HDR_LEN]), VnetHdr::default());
}

#[test]
fn a_partial_checksum_is_completed_and_verifies() {
    let payload: Vec<u8> = (0..3001u32).map(|i| (i * 7) as u8).collect();
    let mut f = partial_frame(&payload);
    let hdr = VnetHdr::for_tcp_segments(&f, 14, 1448).expect("a TCP frame");
    assert_eq!((hdr.csum_start, hdr.csum_offset, hdr.hdr_len), (34, 16, 54));
    assert_eq!((hdr.gso_type, hdr.gso_size), (1, 1448));
    assert!(hdr.complete_checksum(&mut f));
    let (repr, tcp) = ip::Ipv4Repr::parse(&f[14..]).unwrap();
    let (_, data) = tcp::TcpRepr::parse(tcp, repr.src, repr.dst).expect("checksum verifies");
    assert_eq!(data, &payload[..]);
    // Without NEEDS_CSUM nothing changes.
    let before = f.clone();
    assert!(VnetHdr::default().complete_checksum(&mut f));
    assert_eq!(f, before);
}

#[test]
fn a_whole_tcp_segment_keeps_its_partial_checksum_and_is_trusted() {
    let payload: Vec<u8> = (0..5000u32).map(|i| (i * 11) as u8).collect();
    let mut f = partial_frame(&payload);
    let hdr = VnetHdr::for_tcp_segments(&f, 14, 1448).unwrap();
    let before = f.clone();
    assert_eq!(hdr.settle_checksum(&mut f, 14), Some(true));
    assert_eq!(f, before, "left for the stack, which need not verify it");
    // No NEEDS_CSUM: a complete checksum, verified as usual.
    assert_eq!(VnetHdr::default().settle_checksum(&mut f, 14), Some(false));
    assert_eq!(f, before);
    // A fragment, or a checksum elsewhere than TCP's field: completed.
    let mut frag = before.clone();
    frag[14 + 6] |= 0x20; // more fragments
    assert_eq!(hdr.settle_checksum(&mut frag, 14), Some(false));
    assert_ne!(frag[34 + 16..34 + 18], before[34 + 16..34 + 18]);
    let mut other = before.clone();
    let not_tcp = VnetHdr {
        csum_offset: 6, // UDP's checksum field
        ..hdr
    };
    assert_eq!(not_tcp.settle_checksum(&mut other, 14), Some(false));
    assert_ne!(other, before);
    // Offsets outside the frame: refused, unchanged.
    let mut short = before[..40].to_vec();
    assert_eq!(hdr.settle_checksum(&mut short, 14), None);
    assert_eq!(short, before[..40]);
}

#[test]
fn checksum_offsets_outside_the_frame_are_refused() {
    let mut f = partial_frame(b"abc");
    let before = f.clone();
    for (start, offset) in [(60, 16), (34, 40), (u16::MAX, u16::MAX)] {
        let hdr = VnetHdr {
            flags: 1,
            csum_start: start,
            csum_offset: offset,
            ..VnetHdr::default()
        };
        assert!(!hdr.complete_checksum(&mut f), "{start}/{offset}");
        assert_eq!(f, before);
    }
    assert!(VnetHdr::for_tcp_segments(&f[..40], 14, 1448).is_none());
}

#[test]
fn names_are_checked_before_any_syscall() {
    assert!(matches!(
        TapDevice::open(&TapConfig::new("a-name-that-is-too-long")),
        Err(TapError::NameTooLong(_))
    ));
    for bad in ["", "a b", "x/y", "..", "tap\0"] {
        assert!(
            matches!(
                TapDevice::open(&TapConfig::new(bad)),
                Err(TapError::InvalidName(_))
            ),
            "{bad:?}"
        );
    }
    let msg = TapError::PermissionDenied("tap0".into()).to_string();
    assert!(msg.contains("CAP_NET_ADMIN"));
}

#[test]
fn tun_errors_say_tun() {
    let err = TunDevice::open(&TapConfig::new("a-name-that-is-too-long")).unwrap_err();
    assert!(matches!(err.0, TapError::NameTooLong(_)));
    assert_eq!(
        err.to_string(),
        "TUN device name 'a-name-that-is-too-long' is too long: at most 15 bytes"
    );
    let busy = TunError(TapError::Busy("tun0".into())).to_string();
    assert!(busy.starts_with("TUN device 'tun0' is busy"), "{busy}");
    assert!(
        TapError::Busy("tap0".into())
            .to_string()
            .starts_with("TAP device 'tap0' is busy")
    );
}

#[test]
fn super_segments_on_an_ip_link_are_offset_by_nothing() {
    let f = partial_frame(&[7u8; 3000]);
    let packet = &f[14..];
    let hdr = VnetHdr::for_tcp_segments(packet, 0, 1448).expect("a TCP packet");
    assert_eq!((hdr.csum_start, hdr.hdr_len, hdr.gso_size), (20, 40, 1448));
    let mut p = packet.to_vec();
    assert_eq!(hdr.settle_checksum(&mut p, 0), Some(true));
    // At the Ethernet offset, the same header does not fit the packet.
    assert!(VnetHdr::for_tcp_segments(packet, 14, 1448).is_none());
}
