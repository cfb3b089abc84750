use super::*;

const SRC: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const DST: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

/// A SYN from Linux 6.x: MSS 1460, SACK-permitted, timestamps, window
/// scale 7 (the option layout Linux uses), as captured.
fn linux_syn() -> Vec<u8> {
    let mut s = vec![
        0xb3, 0x7a, 0x00, 0x07, // ports 45946 -> 7
        0x5c, 0x4e, 0x1d, 0x02, // seq
        0x00, 0x00, 0x00, 0x00, // ack
        0xa0, 0x02, 0xfa, 0xf0, // offset 10, SYN, window 64240
        0x00, 0x00, 0x00, 0x00, // checksum, urgent
        0x02, 0x04, 0x05, 0xb4, // MSS 1460
        0x04, 0x02, 0x08, 0x0a, // SACK-permitted, timestamps
        0x9d, 0x1c, 0x30, 0x91, 0x00, 0x00, 0x00, 0x00, // TSval, TSecr
        0x01, 0x03, 0x03, 0x07, // NOP, window scale 7
    ];
    fill_checksum(&mut s, SRC, DST);
    s
}

#[test]
fn parses_linux_syn() {
    let syn = linux_syn();
    let (repr, payload) = TcpRepr::parse(&syn, SRC, DST).unwrap();
    assert!(payload.is_empty());
    assert_eq!(repr.src_port, 45946);
    assert_eq!(repr.dst_port, 7);
    assert_eq!(repr.seq, SeqNum(0x5c4e_1d02));
    assert!(repr.flags.syn() && !repr.flags.ack());
    assert_eq!(repr.window, 64240);
    assert_eq!(repr.options.mss, Some(1460));
    assert!(repr.options.sack_permitted);
    assert_eq!(repr.options.timestamps, Some((0x9d1c_3091, 0)));
    assert_eq!(repr.options.window_scale, Some(7));
    assert_eq!(repr.seq_len(0), 1);
}

#[test]
fn emit_reproduces_linux_layout() {
    let syn = linux_syn();
    let (repr, _) = TcpRepr::parse(&syn, SRC, DST).unwrap();
    let mut buf = vec![0u8; repr.header_len()];
    repr.emit_header(&mut buf);
    fill_checksum(&mut buf, SRC, DST);
    assert_eq!(buf, syn);
}

#[test]
fn sack_blocks_round_trip_with_timestamps() {
    let mut opts = TcpOptions {
        timestamps: Some((1, 2)),
        ..TcpOptions::default()
    };
    opts.push_sack(SeqNum(100), SeqNum(200));
    opts.push_sack(SeqNum(300), SeqNum(400));
    opts.push_sack(SeqNum(500), SeqNum(600));
    let repr = TcpRepr {
        src_port: 1,
        dst_port: 2,
        seq: SeqNum(7),
        ack: SeqNum(9),
        flags: Flags(Flags::ACK),
        window: 1000,
        options: opts,
        urgent: 0,
    };
    assert_eq!(repr.header_len(), 60);
    let mut buf = vec![0u8; repr.header_len() + 3];
    repr.emit_header(&mut buf);
    buf[60..].copy_from_slice(b"abc");
    fill_checksum(&mut buf, SRC, DST);
    let (back, payload) = TcpRepr::parse(&buf, SRC, DST).unwrap();
    assert_eq!(back, repr);
    assert_eq!(payload, b"abc");
}

#[test]
fn unknown_options_are_skipped_and_bad_lengths_rejected() {
    let base = |opts: &[u8]| {
        let mut s = linux_syn()[..20].to_vec();
        s.extend_from_slice(opts);
        while s.len() % 4 != 0 {
            s.push(0);
        }
        s[12] = ((s.len() / 4) as u8) << 4;
        fill_checksum(&mut s, SRC, DST);
        s
    };
    // Unknown kind 30 (MPTCP) with length 4, then MSS.
    let s = base(&[30, 4, 0xaa, 0xbb, 2, 4, 0x05, 0x00]);
    let (repr, _) = TcpRepr::parse(&s, SRC, DST).unwrap();
    assert_eq!(repr.options.mss, Some(1280));
    // Known option with the wrong length: ignored, not an error.
    let s = base(&[2, 3, 5, 1, 1, 1, 1, 1]);
    assert_eq!(TcpRepr::parse(&s, SRC, DST).unwrap().0.options.mss, None);
    // Length 0, length 1, and a length past the header: malformed.
    for opts in [&[30u8, 0, 1, 1][..], &[30, 1, 1, 1], &[30, 12, 1, 1]] {
        assert_eq!(
            TcpRepr::parse(&base(opts), SRC, DST),
            Err(SegmentError::BadOption)
        );
    }
    // Kind with no length octet at the end of the header.
    let mut s = base(&[1, 1, 1, 30]);
    s[12] = 6 << 4;
    fill_checksum(&mut s, SRC, DST);
    assert_eq!(TcpRepr::parse(&s, SRC, DST), Err(SegmentError::BadOption));
    // EOL stops parsing: garbage after it is ignored.
    let s = base(&[0, 30, 0, 0]);
    assert!(TcpRepr::parse(&s, SRC, DST).is_ok());
}

#[test]
fn malformed_headers() {
    let syn = linux_syn();
    for len in 0..20 {
        assert_eq!(
            TcpRepr::parse(&syn[..len], SRC, DST),
            Err(SegmentError::Truncated)
        );
    }
    assert_eq!(
        TcpRepr::parse(&syn[..30], SRC, DST),
        Err(SegmentError::Truncated)
    );
    let mut s = syn.clone();
    s[12] = 4 << 4;
    assert_eq!(
        TcpRepr::parse(&s, SRC, DST),
        Err(SegmentError::BadDataOffset)
    );
    let mut s = syn.clone();
    s[5] ^= 1;
    assert_eq!(TcpRepr::parse(&s, SRC, DST), Err(SegmentError::BadChecksum));
}
