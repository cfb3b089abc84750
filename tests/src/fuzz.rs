//! Fuzz target bodies. Each takes arbitrary bytes and must never panic; where
//! a parse succeeds, emitting the result and parsing again must give the same
//! value (a round-trip check that catches parser/emitter disagreements).
//!
//! `fuzz/fuzz_targets/*.rs` call these under libFuzzer; `tests/tests/fuzz_corpus.rs`
//! replays the committed corpus through them on stable Rust.

use std::net::Ipv4Addr;
use std::time::Instant;

use arp::ArpRepr;
use ethernet::{EthernetRepr, MacAddr};
use ip::{IcmpRepr, Ipv4Cidr, Ipv4Repr};
use stack::device::FrameBatch;
use stack::{Interface, InterfaceConfig};

/// A fuzz target body.
pub type Target = fn(&[u8]);

/// The targets, named as their directories under `fuzz/corpus/`.
pub const TARGETS: &[(&str, Target)] = &[
    ("ethernet", ethernet),
    ("arp", arp),
    ("ipv4", ipv4),
    ("icmp", icmp),
    ("udp", udp),
    ("reassembly", reassembly),
    ("interface_rx", interface_rx),
    ("tcp_conn", crate::fuzz_tcp::tcp_conn),
    ("interface_many", crate::fuzz_tcp::interface_many),
];

/// Ethernet II header parsing and emission.
pub fn ethernet(data: &[u8]) {
    if let Ok((repr, payload)) = EthernetRepr::parse(data) {
        assert_eq!(payload.len(), data.len() - EthernetRepr::HEADER_LEN);
        let mut buf = [0u8; EthernetRepr::HEADER_LEN];
        repr.emit(&mut buf);
        assert_eq!(&buf[..], &data[..EthernetRepr::HEADER_LEN]);
    }
}

/// ARP packet parsing and emission.
pub fn arp(data: &[u8]) {
    if let Ok(repr) = ArpRepr::parse(data) {
        let mut buf = [0u8; ArpRepr::LEN];
        repr.emit(&mut buf);
        assert_eq!(ArpRepr::parse(&buf), Ok(repr));
    }
}

/// IPv4 header validation and emission.
pub fn ipv4(data: &[u8]) {
    if let Ok((repr, payload)) = Ipv4Repr::parse(data) {
        assert_eq!(payload.len(), repr.payload_len);
        assert!(repr.total_len() <= data.len());
        if repr.header_len == Ipv4Repr::MIN_HEADER_LEN && repr.frag_offset % 8 == 0 {
            let mut buf = vec![0u8; repr.total_len()];
            repr.emit(&mut buf);
            buf[Ipv4Repr::MIN_HEADER_LEN..].copy_from_slice(payload);
            let (again, _) = Ipv4Repr::parse(&buf).expect("emitted header parses");
            assert_eq!(again, repr);
        }
    }
}

/// ICMP message parsing and emission.
pub fn icmp(data: &[u8]) {
    if let Ok(repr) = IcmpRepr::parse(data) {
        let mut buf = vec![0u8; repr.buffer_len()];
        repr.emit(&mut buf);
        // Messages we only classify ("Other") do not keep their body.
        if !matches!(repr, IcmpRepr::Other { .. }) {
            assert_eq!(IcmpRepr::parse(&buf), Ok(repr));
        }
    }
}

/// UDP parsing (with checksum) and emission.
pub fn udp(data: &[u8]) {
    let (src, dst) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
    if let Ok((repr, payload)) = ::udp::UdpRepr::parse(data, src, dst) {
        let mut buf = vec![0u8; ::udp::UdpRepr::HEADER_LEN + payload.len()];
        repr.emit(&mut buf, src, dst, payload);
        let (again, p2) = ::udp::UdpRepr::parse(&buf, src, dst).expect("emitted datagram parses");
        assert_eq!(again, repr);
        assert_eq!(p2, payload);
    }
}

/// The reassembler under arbitrary fragment sequences: never a panic, memory
/// never above the cap, no bookkeeping outliving its datagrams (an empty
/// reassembler charges nothing and has no timer), and every datagram it
/// delivers has exactly the length its fragments described.
///
/// Each 6-byte record is one event: ident (1 byte, few values so fragments
/// collide), offset in 8-byte units (2 bytes), length (1 byte, times 8 when
/// more-fragments is set), flags (bit 0: more fragments, bit 1: advance the
/// clock 10 s first, bit 2: use a second source address), fill byte.
pub fn reassembly(data: &[u8]) {
    use ip::{IpProtocol, Reassembler, ReassemblyConfig};
    use std::time::Duration;
    // A small cap and few pieces, so eviction and the piece cap are reached.
    let config = ReassemblyConfig {
        max_held_bytes: 64 * 1024,
        max_pieces_per_datagram: 16,
        ..ReassemblyConfig::default()
    };
    let cap = config.max_held_bytes;
    let mut r = Reassembler::new(config);
    let mut now = Instant::now();
    let header = [0x45u8; 20];
    let check = |r: &Reassembler| {
        let used = r.memory_used();
        assert!(used <= cap, "memory used {used} > cap {cap}");
        assert_eq!(used, r.held_bytes());
        // Nothing is kept (charged, or queued for expiry) without a partial
        // datagram to keep it for.
        let empty = r.partial_count() == 0;
        assert_eq!(
            empty,
            used == 0,
            "{} partials, {used} bytes",
            r.partial_count()
        );
        assert_eq!(empty, r.poll_at().is_none());
    };
    for rec in data.chunks_exact(6) {
        let flags = rec[4];
        if flags & 2 != 0 {
            now += Duration::from_secs(10);
            r.poll(now, |_| {});
            check(&r);
        }
        let more = flags & 1 != 0;
        let len = if more {
            rec[3] as usize * 8
        } else {
            rec[3] as usize
        };
        let src = if flags & 4 != 0 {
            [10, 0, 0, 3]
        } else {
            [10, 0, 0, 1]
        };
        let mut repr = Ipv4Repr::new(
            Ipv4Addr::from(src),
            Ipv4Addr::new(10, 0, 0, 2),
            IpProtocol::UDP,
            64,
            len,
        );
        repr.ident = rec[0] as u16 % 4;
        repr.frag_offset = (u16::from_be_bytes([rec[1], rec[2]]) % 8192) * 8;
        repr.more_fragments = more;
        let payload = vec![rec[5]; len];
        if let Ok(Some(d)) = r.push(now, &repr, &header, &payload) {
            assert_eq!(d.payload.len(), d.repr.payload_len);
            assert!(d.payload.len() + 20 <= 65_535);
        }
        check(&r);
    }
    assert!(r.stats().peak_memory_used <= cap);
    r.poll(now + Duration::from_secs(60), |_| {});
    check(&r);
    assert_eq!(r.memory_used(), 0);
    assert_eq!(r.partial_count(), 0);
}

/// The interface the whole-receive-path target feeds.
pub fn fuzz_interface(now: Instant) -> Interface {
    let mut config = InterfaceConfig::new(
        MacAddr([2, 0, 0, 0, 0, 2]),
        Ipv4Cidr::new(Ipv4Addr::new(10, 0, 0, 2), 24).expect("valid prefix"),
    );
    config.gateway = Some(Ipv4Addr::new(10, 0, 0, 1));
    config.announce = false;
    let mut iface = Interface::new(config, now);
    // Give the receive path sockets to deliver to.
    let any = |port| std::net::SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port);
    let echo = iface.udp_bind(any(7)).expect("port 7 free");
    let _ = iface.udp_bind(any(53));
    let _ = iface.udp_connect(
        echo,
        std::net::SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 5000),
    );
    let _ = iface.icmp_open(Some(42));
    let _ = iface.tcp_listen(any(80), 8);
    iface
}

/// The whole receive path: bytes as a sequence of frames fed to an interface.
///
/// Input layout: the first byte holds flags; the rest is split into frames at
/// each two-byte big-endian length prefix. Flag bit 0 asks for IPv4 and ICMP
/// checksums to be repaired before delivery, so the fuzzer reaches the code
/// behind checksum validation instead of being stopped at it; flag bit 1
/// delivers every frame as from a device that vouches for TCP checksums
/// (which opens TCP to the fuzzer the same way).
pub fn interface_rx(data: &[u8]) {
    let Some((&flags, mut rest)) = data.split_first() else {
        return;
    };
    let now = Instant::now();
    let mut iface = fuzz_interface(now);
    let mut out = FrameBatch::new();
    let mut frames = 0u64;
    while rest.len() >= 2 {
        let len = (u16::from_be_bytes([rest[0], rest[1]]) as usize).min(rest.len() - 2);
        let mut frame = rest[2..2 + len].to_vec();
        rest = &rest[2 + len..];
        if flags & 1 != 0 {
            repair_checksums(&mut frame);
        }
        iface.receive_frame_from(now, &frame, flags & 2 != 0, &mut out);
        frames += 1;
        // Everything we send must itself be well formed.
        for sent in out.iter() {
            let (eth, payload) = EthernetRepr::parse(sent).expect("we emit valid Ethernet");
            if eth.ethertype == ethernet::EtherType::IPV4 {
                let (_, body) = Ipv4Repr::parse(payload).expect("we emit valid IPv4");
                let _ = body;
            }
        }
        out.clear();
    }
    iface.poll(now, &mut out);
    assert_eq!(iface.counters().frames_in, frames);
}

/// Recomputes the IPv4 header checksum and, for ICMP, the ICMP checksum of
/// an Ethernet frame, if the frame is long enough to have them.
pub fn repair_checksums(frame: &mut [u8]) {
    const ETH: usize = EthernetRepr::HEADER_LEN;
    if frame.len() < ETH + 20 || frame[12..14] != [0x08, 0x00] {
        return;
    }
    let ihl = (frame[ETH] & 0x0f) as usize * 4;
    if ihl < 20 || frame.len() < ETH + ihl {
        return;
    }
    frame[ETH + 10] = 0;
    frame[ETH + 11] = 0;
    let sum = ip::checksum::checksum(&frame[ETH..ETH + ihl]);
    frame[ETH + 10..ETH + 12].copy_from_slice(&sum.to_be_bytes());
    let total = u16::from_be_bytes([frame[ETH + 2], frame[ETH + 3]]) as usize;
    let end = (ETH + total).min(frame.len());
    let start = ETH + ihl;
    if frame[ETH + 9] == 1 && end >= start + 8 {
        frame[start + 2] = 0;
        frame[start + 3] = 0;
        let sum = ip::checksum::checksum(&frame[start..end]);
        frame[start + 2..start + 4].copy_from_slice(&sum.to_be_bytes());
    }
    // UDP: fix the length field and the checksum over the pseudo-header.
    if frame[ETH + 9] == 17 && end >= start + 8 {
        let src = Ipv4Addr::new(
            frame[ETH + 12],
            frame[ETH + 13],
            frame[ETH + 14],
            frame[ETH + 15],
        );
        let dst = Ipv4Addr::new(
            frame[ETH + 16],
            frame[ETH + 17],
            frame[ETH + 18],
            frame[ETH + 19],
        );
        let len = (end - start) as u16;
        frame[start + 4..start + 6].copy_from_slice(&len.to_be_bytes());
        frame[start + 6] = 0;
        frame[start + 7] = 0;
        let sum = ip::checksum::add(
            ip::checksum::pseudo_header(src, dst, 17, len),
            &frame[start..end],
        );
        let csum = !ip::checksum::fold(sum);
        frame[start + 6..start + 8].copy_from_slice(&csum.to_be_bytes());
    }
}
