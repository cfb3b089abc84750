use super::*;
use std::net::Ipv4Addr;

const SRC: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const DST: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);

/// An Ethernet frame carrying one IPv4/TCP segment with `payload`, a
/// 12-byte option block, and `flags`; checksum partial when `partial`.
fn frame(payload: &[u8], flags: u8, partial: bool) -> Vec<u8> {
    let mut f = vec![0u8; 14];
    f[12] = 0x08;
    let tcp_len = 32 + payload.len();
    let mut ip = [0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&((20 + tcp_len) as u16).to_be_bytes());
    ip[4..6].copy_from_slice(&0xfff0u16.to_be_bytes());
    ip[6] = 0x40;
    ip[8] = 64;
    ip[9] = 6;
    ip[12..16].copy_from_slice(&SRC.octets());
    ip[16..20].copy_from_slice(&DST.octets());
    let c = checksum::checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    let mut tcp = vec![0u8; 32];
    tcp[0..2].copy_from_slice(&40000u16.to_be_bytes());
    tcp[2..4].copy_from_slice(&80u16.to_be_bytes());
    tcp[4..8].copy_from_slice(&0xffff_fff0u32.to_be_bytes());
    tcp[8..12].copy_from_slice(&7u32.to_be_bytes());
    tcp[12] = 8 << 4;
    tcp[13] = flags;
    tcp[14..16].copy_from_slice(&512u16.to_be_bytes());
    tcp[20..32].copy_from_slice(&[1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2]);
    tcp.extend_from_slice(payload);
    if partial {
        fill_partial_checksum(&mut tcp, SRC, DST, tcp_len);
    } else {
        tcp::fill_checksum(&mut tcp, SRC, DST);
    }
    f.extend_from_slice(&tcp);
    f
}

#[test]
fn pieces_are_wire_segments_with_their_own_headers() {
    let payload: Vec<u8> = (0..3500u32).map(|i| (i * 7 % 251) as u8).collect();
    let big = frame(&payload, 0x18 | 0x01, true); // PSH|ACK|FIN
    let mut pieces: Vec<Vec<u8>> = Vec::new();
    let n = split_tcp(&big, 14, 1448, &mut Vec::new(), |p| pieces.push(p.to_vec()));
    assert_eq!(n, 3);
    let mut joined = Vec::new();
    for (i, p) in pieces.iter().enumerate() {
        let (repr, ip_payload) = ip::Ipv4Repr::parse(&p[14..]).expect("valid IPv4");
        assert_eq!(repr.ident, 0xfff0u16.wrapping_add(i as u16));
        assert!(repr.dont_fragment);
        let (seg, data) = tcp::TcpRepr::parse(ip_payload, SRC, DST).expect("valid checksum");
        assert_eq!(seg.seq.0, 0xffff_fff0u32.wrapping_add(i as u32 * 1448));
        assert_eq!(seg.options.timestamps, Some((1, 2)), "options repeated");
        let last = i == 2;
        assert_eq!(seg.flags.fin(), last);
        assert_eq!(seg.flags.psh(), last);
        assert!(seg.flags.ack());
        assert_eq!(data.len(), if last { 3500 - 2 * 1448 } else { 1448 });
        joined.extend_from_slice(data);
    }
    assert_eq!(joined, payload);
}

#[test]
fn a_segment_within_the_mss_comes_out_whole_and_checksummed() {
    let payload = [9u8; 100];
    let partial = frame(&payload, 0x10, true);
    let full = frame(&payload, 0x10, false);
    let mut out = Vec::new();
    assert_eq!(
        split_tcp(&partial, 14, 1448, &mut Vec::new(), |p| out = p.to_vec()),
        1
    );
    assert_eq!(out, full);
}

#[test]
fn a_completed_super_segment_is_the_fully_checksummed_one() {
    let payload: Vec<u8> = (0..5000u32).map(|i| (i * 13 % 241) as u8).collect();
    let mut partial = frame(&payload, 0x10, true);
    assert!(complete_checksum(&mut partial, 14));
    assert_eq!(partial, frame(&payload, 0x10, false));
    let mut udp = frame(&[1, 2, 3], 0x10, true);
    udp[14 + 9] = 17;
    let before = udp.clone();
    assert!(!complete_checksum(&mut udp, 14));
    assert_eq!(udp, before);
}

#[test]
fn anything_else_is_refused() {
    let mut f = frame(&[1, 2, 3], 0x10, true);
    let mut called = false;
    f[14 + 9] = 17; // UDP
    assert_eq!(
        split_tcp(&f, 14, 1448, &mut Vec::new(), |_| called = true),
        0
    );
    assert_eq!(
        split_tcp(&f[..30], 14, 1448, &mut Vec::new(), |_| called = true),
        0
    );
    assert_eq!(
        split_tcp(&[], 14, 1448, &mut Vec::new(), |_| called = true),
        0
    );
    assert!(!called);
}

/// A run of pieces cut out of a super segment is the super segment those
/// pieces would have made: completed, it equals the pieces `split_tcp`
/// makes laid end to end (same headers as the first, FIN/PSH as the last),
/// and it carries a partial checksum until then. The sequence number
/// wraps; an empty or out-of-range run is refused.
#[test]
fn a_sub_segment_is_the_run_of_pieces_it_stands_for() {
    let payload: Vec<u8> = (0..2500u32).map(|i| (i % 253) as u8).collect();
    let f = frame(&payload, 0x80 | 0x18 | 0x01, true); // CWR, PSH, ACK, FIN
    let h = TcpHeaders::find(&f, 14).unwrap();
    let mut pieces = Vec::new();
    let mut scratch = Vec::new();
    assert_eq!(
        split_tcp(&f, 14, 500, &mut scratch, |p| pieces.push(p.to_vec())),
        5
    );
    assert_eq!(
        pieces[1][14 + 20 + 13] & 0x80,
        0,
        "CWR on the first piece only"
    );
    let mut run = Vec::new();
    for (first, count) in [(0, 2), (1, 3), (2, 3), (4, 1), (0, 5)] {
        assert!(sub_segment(&f, h, 500, first, count, &mut run));
        let last = &pieces[first + count - 1];
        let tcp_len = run.len() - 34;
        let mut partial = run.clone();
        fill_partial_checksum(&mut partial[34..], SRC, DST, tcp_len);
        assert_eq!(run, partial, "a partial checksum");
        assert!(complete_checksum(&mut run, 14));
        let head = &pieces[first];
        assert_eq!(&run[..16], &head[..16]);
        assert_eq!(
            u16::from_be_bytes([run[16], run[17]]) as usize,
            run.len() - 14,
            "IP length"
        );
        assert_eq!(&run[18..20], &head[18..20], "identification of the first");
        assert_eq!(checksum::checksum(&run[14..34]), 0, "IP header checksum");
        assert_eq!(&run[38..42], &head[38..42], "sequence number of the first");
        assert_eq!(run[47] & !0x09, head[47] & !0x09, "CWR as the first");
        assert_eq!(run[47] & 0x09, last[47] & 0x09, "FIN and PSH as the last");
        let body: Vec<u8> = pieces[first..first + count]
            .iter()
            .flat_map(|p| p[66..].to_vec())
            .collect();
        assert_eq!(&run[66..], &body[..]);
        tcp::TcpRepr::parse(&run[34..], SRC, DST).expect("a valid checksum");
    }
    assert!(!sub_segment(&f, h, 500, 5, 1, &mut run), "past the payload");
    assert!(!sub_segment(&f, h, 500, 1, 0, &mut run), "empty");
    assert!(run.is_empty());
}
