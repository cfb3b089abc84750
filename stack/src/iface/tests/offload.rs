//! Segmentation and receive offload at the interface: super segments out,
//! whole super segments in.

use super::*;
use std::net::SocketAddrV4;

/// A sender with segmentation offload hands its device super segments (up
/// to 64 KiB of new data each, checksum left partial); a receiver given each
/// one whole, as a TAP device with receive offload delivers them, takes it:
/// the stream arrives byte-exact and is acknowledged.
#[test]
fn super_segments_out_and_whole_super_segments_in() {
    let mut p = Pair::new();
    p.a.set_segmentation_offload(true);
    let lh = p.b.tcp_listen(SocketAddrV4::new(B_IP, 80), 4).unwrap();
    let c =
        p.a.tcp_connect(p.now, SocketAddrV4::new(B_IP, 80), None)
            .unwrap();
    p.advance(Duration::from_millis(10));
    let s = p.b.tcp_accept(lh).unwrap();
    let data: Vec<u8> = (0..2_000_000u32).map(|i| (i * 13 % 251) as u8).collect();
    let mut sent = 0;
    let mut got = Vec::new();
    let mut supers = 0;
    let mut largest = 0;
    let mut out = FrameBatch::new();
    let mut buf = vec![0u8; 1 << 20];
    for _ in 0..10_000 {
        if sent < data.len() {
            sent += p.a.tcp_send(c, &data[sent..]).unwrap_or(0);
        }
        p.a.poll(p.now, &mut out);
        for (frame, mss) in out.iter_segmented() {
            if mss > 0 {
                supers += 1;
                largest = largest.max(frame.len());
                assert!(mss <= 1460, "segments within the MSS");
            }
            // Receive offload hands the super segment over whole, its
            // checksum partial: in turn trusted as it is (as a TAP device
            // reports the kernel's segments) and completed (as any other
            // device would deliver it).
            let mut whole = frame.to_vec();
            let trusted = supers % 2 == 0;
            if mss > 0 && !trusted {
                assert!(crate::device::gso::complete_checksum(&mut whole, 14));
            }
            p.b.receive_frame_from(p.now, &whole, mss > 0 && trusted, &mut p.db);
        }
        out.clear();
        while let Ok(n) = p.b.tcp_recv(s, &mut buf) {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        p.now += Duration::from_millis(1);
        p.settle();
        if got.len() == data.len() {
            break;
        }
    }
    assert_eq!(got.len(), data.len());
    assert!(got == data, "byte-exact");
    assert!(supers > 0, "no super segment was built");
    assert!(
        largest > 4 * 1514,
        "super segments of {largest} bytes at most"
    );
    assert_eq!(p.b.counters().total_drops(), 0, "{:?}", p.b.counters());
    let st = p.a.tcp(c).unwrap().stats();
    assert_eq!(st.bytes_retransmitted, 0, "{st}");
}

/// A segment with a partial checksum is taken only from a device that
/// vouches for it; anything else with a bad checksum is dropped, and trust
/// never extends beyond TCP's checksum.
#[test]
fn only_a_trusted_partial_checksum_is_taken_unverified() {
    let mut p = Pair::new();
    p.a.set_segmentation_offload(true);
    let lh = p.b.tcp_listen(SocketAddrV4::new(B_IP, 80), 4).unwrap();
    let c =
        p.a.tcp_connect(p.now, SocketAddrV4::new(B_IP, 80), None)
            .unwrap();
    p.advance(Duration::from_millis(10));
    let s = p.b.tcp_accept(lh).unwrap();
    p.a.tcp_send(c, &[7u8; 20_000]).unwrap();
    let mut out = FrameBatch::new();
    p.a.poll(p.now, &mut out);
    let (frame, mss) = out.iter_segmented().next().expect("a super segment");
    assert!(mss > 0);
    let frame = frame.to_vec();
    let bad = p.b.counters().drops(DropReason::TcpBadChecksum);
    // Not vouched for: a bad checksum.
    p.b.receive_frame(p.now, &frame, &mut p.db);
    assert_eq!(p.b.counters().drops(DropReason::TcpBadChecksum), bad + 1);
    // A corrupted IP header is caught even from a trusting device.
    let mut broken = frame.clone();
    broken[14 + 8] ^= 1; // TTL: the IP header checksum no longer matches
    p.b.receive_frame_from(p.now, &broken, true, &mut p.db);
    assert_eq!(p.b.counters().drops(DropReason::Ipv4BadChecksum), 1);
    // Vouched for: taken.
    p.b.receive_frame_from(p.now, &frame, true, &mut p.db);
    let mut buf = vec![0u8; 65536];
    let n = p.b.tcp_recv(s, &mut buf).unwrap();
    assert_eq!(
        n,
        frame.len() - 14 - 20 - 32,
        "the whole super segment's payload"
    );
    assert!(buf[..n].iter().all(|&b| b == 7));
}
