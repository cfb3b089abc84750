use super::*;
use std::time::Duration;

#[test]
fn writes_classic_pcap() {
    let t0 = Instant::now();
    let base = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let mut w = PcapWriter::new(Vec::new(), t0, base).unwrap();
    w.write_frame(t0 + Duration::from_micros(1_500_001), &[1, 2, 3])
        .unwrap();
    let bytes = w.into_inner();
    assert_eq!(&bytes[0..4], &[0xd4, 0xc3, 0xb2, 0xa1]);
    assert_eq!(u32::from_le_bytes(bytes[20..24].try_into().unwrap()), 1);
    let rec = &bytes[24..];
    assert_eq!(
        u32::from_le_bytes(rec[0..4].try_into().unwrap()),
        1_700_000_001
    );
    assert_eq!(u32::from_le_bytes(rec[4..8].try_into().unwrap()), 500_001);
    assert_eq!(u32::from_le_bytes(rec[8..12].try_into().unwrap()), 3);
    assert_eq!(&rec[16..], &[1, 2, 3]);
}

/// A device handing over one TCP segment with a partial checksum that
/// it vouches for, as a TAP device does for the kernel's segments.
struct Trusting(Option<Vec<u8>>);

impl FrameSink for Trusting {
    fn send(&mut self, _now: Instant, _frame: &[u8]) -> io::Result<()> {
        Ok(())
    }
}

impl Device for Trusting {
    fn recv(&mut self, _now: Instant, buf: &mut [u8]) -> io::Result<Option<usize>> {
        Ok(self.0.take().map(|f| {
            buf[..f.len()].copy_from_slice(&f);
            f.len()
        }))
    }
    fn mtu(&self) -> usize {
        1500
    }
    fn checksum_caps(&self) -> ChecksumCaps {
        ChecksumCaps {
            rx_partial: true,
            ..ChecksumCaps::default()
        }
    }
}

#[test]
fn captures_show_trusted_segments_with_their_real_checksum() {
    let (src, dst) = (
        std::net::Ipv4Addr::new(10, 0, 0, 1),
        std::net::Ipv4Addr::new(10, 0, 0, 2),
    );
    let mut f = vec![0u8; 14 + 20 + 20 + 3000];
    f[12] = 0x08;
    f[14] = 0x45;
    f[16..18].copy_from_slice(&3040u16.to_be_bytes());
    f[23] = 6;
    f[26..30].copy_from_slice(&src.octets());
    f[30..34].copy_from_slice(&dst.octets());
    f[34 + 12] = 5 << 4;
    for (i, b) in f[54..].iter_mut().enumerate() {
        *b = i as u8;
    }
    crate::device::gso::fill_partial_checksum(&mut f[34..], src, dst, 3020);
    let t0 = Instant::now();
    let pcap = PcapWriter::new(Vec::new(), t0, UNIX_EPOCH).unwrap();
    let mut dev = PcapDevice::new(Trusting(Some(f.clone())), pcap);
    let mut buf = vec![0u8; 4096];
    let n = dev.recv(t0, &mut buf).unwrap().unwrap();
    assert!(dev.rx_checksum_trusted());
    let recorded = &dev.pcap().get_ref()[24 + 16..];
    assert_eq!(recorded, &buf[..n], "the stack gets what the capture shows");
    tcp::TcpRepr::parse(&recorded[34..], src, dst).expect("a valid checksum");
}

#[test]
fn ip_links_are_captured_as_raw_ip_with_super_segments_cut() {
    let (a, mut b) = super::super::memory_pair_medium(1500, Medium::Ip).unwrap();
    let t0 = Instant::now();
    let w = PcapWriter::with_medium(Vec::new(), t0, UNIX_EPOCH, Medium::Ip).unwrap();
    let mut dev = PcapDevice::new(a, w);
    assert_eq!(dev.medium(), Medium::Ip);
    // A TCP super segment, bare IPv4: 3000 payload bytes cut by 1000.
    let mut packet = vec![0u8; 40 + 3000];
    let ip = ip::Ipv4Repr::new(
        std::net::Ipv4Addr::new(10, 0, 0, 1),
        std::net::Ipv4Addr::new(10, 0, 0, 2),
        ip::IpProtocol::TCP,
        64,
        3020,
    );
    ip.emit(&mut packet);
    packet[32] = 5 << 4;
    dev.send_segmented(t0, &packet, 1000).unwrap();
    // The peer got what the default segmentation cut: three packets.
    let mut buf = [0u8; 2000];
    let mut sizes = Vec::new();
    while let Some(n) = b.recv(t0, &mut buf).unwrap() {
        assert_eq!(buf[0], 0x45);
        sizes.push(n);
    }
    assert_eq!(sizes, [1040, 1040, 1040]);
    assert_eq!(dev.pcap().frames(), 3);
    let bytes = dev.pcap().get_ref().clone();
    assert_eq!(u32::from_le_bytes(bytes[20..24].try_into().unwrap()), 101);
    // The first record is an IPv4 packet with no link header.
    assert_eq!(u32::from_le_bytes(bytes[32..36].try_into().unwrap()), 1040);
    assert_eq!(bytes[40], 0x45);
}
