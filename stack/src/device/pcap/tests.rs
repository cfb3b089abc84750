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

/// A file stand-in whose contents the test can read while the writer
/// still holds it.
#[derive(Clone, Default)]
struct Shared(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn frames_reach_the_file_within_the_flush_interval() {
    let t0 = Instant::now();
    let file = Shared::default();
    let w = PcapWriter::new(
        BufWriter::with_capacity(1 << 16, file.clone()),
        t0,
        SystemTime::now(),
    )
    .unwrap();
    let mut dev = PcapDevice::new(Trusting(None), w);
    assert_eq!(dev.poll_at(), None);
    dev.send(t0, &[0u8; 60]).unwrap();
    // Buffered: nothing written yet, and the device asks to be polled
    // when the frame is due.
    assert!(file.0.lock().unwrap().is_empty());
    assert_eq!(dev.poll_at(), Some(t0 + FLUSH_INTERVAL));
    let mut buf = [0u8; 1500];
    dev.recv(t0 + FLUSH_INTERVAL / 2, &mut buf).unwrap();
    assert!(file.0.lock().unwrap().is_empty());
    dev.recv(t0 + FLUSH_INTERVAL, &mut buf).unwrap();
    assert_eq!(file.0.lock().unwrap().len(), 24 + 16 + 60);
    assert_eq!(dev.poll_at(), None);
    // Records are written whole: the file always ends at a record boundary.
    for i in 0..2000u32 {
        let t = t0 + FLUSH_INTERVAL * 2 + Duration::from_millis(u64::from(i));
        dev.send(t, &vec![0u8; 60 + (i as usize % 1400)]).unwrap();
        let bytes = file.0.lock().unwrap().clone();
        let mut at = 24;
        while at < bytes.len() {
            let incl = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize;
            at += 16 + incl;
        }
        assert_eq!(at, bytes.len(), "a record cut short after frame {i}");
    }
}
