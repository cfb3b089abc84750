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
            // Receive offload hands the super segment over whole: complete
            // its checksum as the TAP device does.
            let mut whole = frame.to_vec();
            if let Some(h) = crate::device::gso::TcpHeaders::find(&whole, 14) {
                let c = ip::checksum::checksum(&whole[h.tcp..]);
                whole[h.tcp + 16..h.tcp + 18].copy_from_slice(&c.to_be_bytes());
            }
            p.b.receive_frame(p.now, &whole, &mut p.db);
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
