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
    // A received frame is written at the next call (a fault injector
    // above may still comment on it).
    dev.flush().unwrap();
    let recorded = &dev.pcap().get_ref()[24 + 16..];
    assert_eq!(
        &buf[..n],
        &f[..],
        "the frame handed up keeps its partial checksum"
    );
    let mut completed = buf[..n].to_vec();
    assert!(crate::device::gso::complete_checksum(&mut completed, 14));
    assert_eq!(recorded, &completed[..], "the capture shows it completed");
    tcp::TcpRepr::parse(&recorded[34..], src, dst).expect("a valid checksum");

    // A fault injector above completes it once: the stack gets a valid
    // checksum (completing it twice would spoil it).
    let pcap = PcapWriter::new(Vec::new(), t0, UNIX_EPOCH).unwrap();
    let mut dev = crate::device::FaultDevice::new(
        PcapDevice::new(Trusting(Some(f.clone())), pcap),
        crate::device::FaultConfig {
            loss: 1e-12,
            seed: 1,
            ..Default::default()
        },
    );
    let n = dev.recv(t0, &mut buf).unwrap().unwrap();
    assert!(!dev.rx_checksum_trusted());
    assert_eq!(&buf[..n], &completed[..]);
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

/// An Ethernet frame carrying an ICMP echo request, checksums right.
fn ping_frame() -> Vec<u8> {
    let mut f = vec![
        0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00, // Ethernet
        0x45, 0, 0, 28, 0, 1, 0, 0, 64, 1, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2, // IPv4
        8, 0, 0, 0, 0, 1, 0, 1, // ICMP echo
    ];
    let sum = |b: &[u8]| {
        let mut s: u32 = b
            .chunks(2)
            .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
            .sum();
        while s > 0xffff {
            s = (s & 0xffff) + (s >> 16);
        }
        !(s as u16)
    };
    let ip = sum(&f[14..34]);
    f[24..26].copy_from_slice(&ip.to_be_bytes());
    let icmp = sum(&f[34..]);
    f[36..38].copy_from_slice(&icmp.to_be_bytes());
    f
}

/// The blocks of a pcapng file: (type, body).
fn blocks(bytes: &[u8]) -> Vec<(u32, Vec<u8>)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let kind = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
        let len = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
        assert_eq!(len % 4, 0);
        let trailer = u32::from_le_bytes(bytes[at + len - 4..at + len].try_into().unwrap());
        assert_eq!(trailer as usize, len);
        out.push((kind, bytes[at + 8..at + len - 4].to_vec()));
        at += len;
    }
    assert_eq!(at, bytes.len());
    out
}

/// Options from `at` in a block body: (code, value).
fn options(body: &[u8], mut at: usize) -> Vec<(u16, Vec<u8>)> {
    let mut out = Vec::new();
    while at + 4 <= body.len() {
        let code = u16::from_le_bytes([body[at], body[at + 1]]);
        let len = usize::from(u16::from_le_bytes([body[at + 2], body[at + 3]]));
        out.push((code, body[at + 4..at + 4 + len].to_vec()));
        at += 4 + len.div_ceil(4) * 4;
        if code == 0 {
            break;
        }
    }
    out
}

fn pcapng_sample() -> Vec<u8> {
    let t0 = Instant::now();
    let base = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let mut w = PcapWriter::with_format(
        Vec::new(),
        t0,
        base,
        CaptureFormat::Pcapng,
        LINKTYPE_ETHERNET,
    )
    .unwrap();
    let f = ping_frame();
    w.write_frame_with(
        t0 + Duration::from_nanos(1_000_000_007),
        &f,
        Direction::Inbound,
        None,
    )
    .unwrap();
    w.write_frame_with(t0, &f, Direction::Outbound, Some("fault: duplicated"))
        .unwrap();
    w.write_frame(t0, &f[..41]).unwrap();
    w.into_inner()
}

#[test]
fn writes_pcapng_blocks() {
    let bytes = pcapng_sample();
    let b = blocks(&bytes);
    assert_eq!(b.len(), 5);
    assert_eq!(b[0].0, 0x0a0d_0d0a);
    assert_eq!(&b[0].1[0..4], &0x1a2b_3c4du32.to_le_bytes());
    assert_eq!(b[1].0, 1);
    assert_eq!(u16::from_le_bytes([b[1].1[0], b[1].1[1]]), 1);
    assert_eq!(options(&b[1].1, 8), vec![(9, vec![9]), (0, vec![])]);
    let epb = &b[2].1;
    assert_eq!(b[2].0, 6);
    let ts = (u64::from(u32::from_le_bytes(epb[4..8].try_into().unwrap())) << 32)
        | u64::from(u32::from_le_bytes(epb[8..12].try_into().unwrap()));
    assert_eq!(ts, 1_700_000_001_000_000_007);
    let caplen = u32::from_le_bytes(epb[12..16].try_into().unwrap()) as usize;
    assert_eq!(caplen, 42);
    assert_eq!(&epb[20..20 + caplen], &ping_frame()[..]);
    let opts_at = 20 + caplen.div_ceil(4) * 4;
    assert_eq!(
        options(epb, opts_at),
        vec![(2, 1u32.to_le_bytes().to_vec()), (0, vec![])]
    );
    let epb = &b[3].1;
    assert_eq!(
        options(epb, opts_at),
        vec![
            (2, 2u32.to_le_bytes().to_vec()),
            (1, b"fault: duplicated".to_vec()),
            (0, vec![])
        ]
    );
    // No direction, no comment: no options at all.
    assert_eq!(b[4].1.len(), 20 + 44);
}

/// tshark reads the pcapng back: directions and the comment (skipped
/// where tshark is not installed).
#[test]
fn tshark_reads_pcapng() {
    let Ok(probe) = std::process::Command::new("tshark")
        .arg("--version")
        .output()
    else {
        eprintln!("tshark not installed: skipped");
        return;
    };
    assert!(probe.status.success());
    let path = std::env::temp_dir().join(format!("ustack-pcapng-{}.pcapng", std::process::id()));
    std::fs::write(&path, pcapng_sample()).unwrap();
    let out = std::process::Command::new("tshark")
        .args(["-r"])
        .arg(&path)
        .args([
            "-T",
            "fields",
            "-e",
            "frame.packet_flags_direction",
            "-e",
            "frame.comment",
            "-e",
            "icmp.type",
        ])
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&path);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        !stderr.contains("appears to be damaged") && !stderr.contains("cut short"),
        "{stderr}"
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    let dir = |l: &str| {
        let f = l.split('\t').next().unwrap_or_default();
        u32::from_str_radix(f.trim_start_matches("0x"), 16).ok()
    };
    assert_eq!(dir(lines[0]), Some(1), "{text}");
    assert_eq!(dir(lines[1]), Some(2), "{text}");
    assert_eq!(dir(lines[2]), None, "{text}");
    assert!(lines[1].contains("fault: duplicated"), "{text}");
    assert!(lines[0].ends_with("\t8"), "{text}");
}

/// The comments of the enhanced packet blocks of a pcapng capture, in order.
fn comments(bytes: &[u8]) -> Vec<Option<String>> {
    blocks(bytes)
        .into_iter()
        .filter(|(kind, _)| *kind == 6)
        .map(|(_, body)| {
            let caplen = u32::from_le_bytes(body[12..16].try_into().unwrap()) as usize;
            options(&body, 20 + caplen.div_ceil(4) * 4)
                .into_iter()
                .find(|(code, _)| *code == 1)
                .map(|(_, v)| String::from_utf8(v).unwrap())
        })
        .collect()
}

fn faulty(
    config: super::super::FaultConfig,
) -> (
    Shared,
    super::super::FaultDevice<PcapDevice<Trusting, Shared>>,
) {
    let t0 = Instant::now();
    let file = Shared::default();
    let w = PcapWriter::with_format(
        file.clone(),
        t0,
        SystemTime::now(),
        CaptureFormat::Pcapng,
        LINKTYPE_ETHERNET,
    )
    .unwrap();
    (
        file,
        super::super::FaultDevice::new(PcapDevice::new(Trusting(None), w), config),
    )
}

#[test]
fn fault_injection_is_marked_in_pcapng() {
    use super::super::FaultConfig;
    let now = Instant::now();
    let f = ping_frame();

    let (file, mut dev) = faulty(FaultConfig {
        loss: 1.0,
        seed: 1,
        ..FaultConfig::default()
    });
    dev.send(now, &f).unwrap();
    let c = comments(&file.0.lock().unwrap());
    assert_eq!(
        c,
        vec![Some("fault injection: dropped (never sent)".to_string())]
    );

    let (file, mut dev) = faulty(FaultConfig {
        dup: 1.0,
        seed: 1,
        ..FaultConfig::default()
    });
    dev.send(now, &f).unwrap();
    let c = comments(&file.0.lock().unwrap());
    assert_eq!(
        c,
        vec![None, Some("fault injection: duplicate".to_string())]
    );

    let (file, mut dev) = faulty(FaultConfig {
        corrupt: 1.0,
        seed: 1,
        ..FaultConfig::default()
    });
    dev.send(now, &f).unwrap();
    let c = comments(&file.0.lock().unwrap());
    assert_eq!(
        c,
        vec![Some(
            "fault injection: corrupted (one bit flipped)".to_string()
        )]
    );

    let (file, mut dev) = faulty(FaultConfig {
        delay: Duration::from_millis(10),
        seed: 1,
        ..FaultConfig::default()
    });
    dev.send(now, &f).unwrap();
    dev.flush_due(now + Duration::from_millis(10)).unwrap();
    let c = comments(&file.0.lock().unwrap());
    assert_eq!(
        c,
        vec![Some(
            "fault injection: held back (delay, rate or reordering)".to_string()
        )]
    );
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

#[test]
fn received_frames_the_injector_changed_are_marked() {
    use super::super::FaultConfig;
    let now = Instant::now();
    let f = ping_frame();
    let received = |config: FaultConfig| {
        let (file, mut dev) = faulty(config);
        dev.inner_mut().inner_mut().0 = Some(f.clone());
        let mut buf = [0u8; 2048];
        // The frame, then nothing more (a held or duplicated copy is
        // handed over later, and not recorded again).
        let mut got = 0;
        for i in 0..4 {
            got += usize::from(
                dev.recv(now + Duration::from_millis(20 * i), &mut buf)
                    .unwrap()
                    .is_some(),
            );
        }
        dev.flush().unwrap();
        (comments(&file.0.lock().unwrap()), got)
    };
    let one = |s: &str| vec![Some(s.to_string())];

    let (c, got) = received(FaultConfig {
        loss: 1.0,
        seed: 1,
        ..FaultConfig::default()
    });
    assert_eq!(
        (c, got),
        (one("fault injection: dropped (never delivered)"), 0)
    );

    let (c, got) = received(FaultConfig {
        dup: 1.0,
        seed: 1,
        ..FaultConfig::default()
    });
    assert_eq!(
        (c, got),
        (one("fault injection: duplicated (delivered twice)"), 2)
    );

    let (c, got) = received(FaultConfig {
        corrupt: 1.0,
        seed: 1,
        ..FaultConfig::default()
    });
    assert_eq!(
        (c, got),
        (one("fault injection: corrupted (one bit flipped)"), 1)
    );

    let (c, got) = received(FaultConfig {
        delay: Duration::from_millis(10),
        seed: 1,
        ..FaultConfig::default()
    });
    assert_eq!(
        (c, got),
        (
            one("fault injection: held back (delay, rate or reordering)"),
            1
        )
    );

    // Untouched: recorded without a comment.
    let (c, got) = received(FaultConfig {
        seed: 1,
        ..FaultConfig::default()
    });
    assert_eq!((c, got), (vec![None], 1));
}
