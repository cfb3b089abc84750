//! Reassembly throughput: 64 KiB UDP datagrams, fragmented at MTU 1500,
//! fed through an interface's whole receive path (Ethernet, IPv4,
//! reassembly, UDP checksum, socket queue) and read back from the socket.
//!
//! usage: reassembly [--datagrams N]

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Instant;

use ethernet::MacAddr;
use ip::Ipv4Cidr;
use stack::device::FrameBatch;
use stack::{Interface, InterfaceConfig};

fn main() {
    let flags = bench::Flags::from_env("reassembly [--datagrams N]");
    let count: usize = flags.get("datagrams", 20_000);
    let now = Instant::now();
    let iface = |mac: [u8; 6], ip: [u8; 4]| {
        let mut c =
            InterfaceConfig::new(MacAddr(mac), Ipv4Cidr::new(Ipv4Addr::from(ip), 24).unwrap());
        c.announce = false;
        c.udp_rcvbuf = 1 << 20;
        Interface::new(c, now)
    };
    let mut sender = iface([2, 0, 0, 0, 0, 1], [10, 0, 0, 1]);
    let mut receiver = iface([2, 0, 0, 0, 0, 2], [10, 0, 0, 2]);
    let rx = receiver
        .udp_bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 9))
        .unwrap();
    let tx = sender
        .udp_bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0))
        .unwrap();
    let dst = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 9);
    // Resolve ARP both ways, then capture the frames of one datagram.
    let mut a = FrameBatch::new();
    let mut b = FrameBatch::new();
    sender
        .udp_send_to(now, tx, b"x", Some(dst), &mut a)
        .unwrap();
    sender.poll(now, &mut a);
    for f in a.iter() {
        receiver.receive_frame(now, f, &mut b);
    }
    for f in b.iter() {
        sender.receive_frame(now, f, &mut a);
    }
    let mut buf = vec![0u8; 65_536];
    let _ = receiver.udp_recv_from(rx, &mut buf);
    a.clear();
    let payload: Vec<u8> = (0..65_507u32).map(|i| i as u8).collect();
    sender
        .udp_send_to(now, tx, &payload, Some(dst), &mut a)
        .unwrap();
    let frames: Vec<Vec<u8>> = a.iter().map(<[u8]>::to_vec).collect();
    // Each datagram needs its own identification: patch it in every frame
    // (and fix the header checksum) as a real sender would.
    let mut sink = FrameBatch::new();
    let mut frame = vec![0u8; 1514];
    let start = Instant::now();
    let mut bytes = 0u64;
    for i in 0..count {
        for f in &frames {
            let frame = &mut frame[..f.len()];
            frame.copy_from_slice(f);
            let ident = (i as u16).to_be_bytes();
            frame[14 + 4..14 + 6].copy_from_slice(&ident);
            frame[14 + 10..14 + 12].copy_from_slice(&[0, 0]);
            let sum = ip::checksum::checksum(&frame[14..34]);
            frame[14 + 10..14 + 12].copy_from_slice(&sum.to_be_bytes());
            receiver.receive_frame(now, frame, &mut sink);
        }
        let (n, _) = receiver
            .udp_recv_from(rx, &mut buf)
            .expect("datagram reassembled");
        assert_eq!(n, payload.len());
        bytes += n as u64;
        sink.clear();
    }
    let elapsed = start.elapsed();
    assert_eq!(&buf[..payload.len()], &payload[..]);
    println!(
        "reassembly: {count} datagrams of 65507 B ({} fragments each) in {:.2} s: {:.0} datagrams/s, {:.2} Gbit/s; peak reassembly memory_used {} KiB",
        frames.len(),
        elapsed.as_secs_f64(),
        count as f64 / elapsed.as_secs_f64(),
        bytes as f64 * 8.0 / elapsed.as_secs_f64() / 1e9,
        receiver.reassembler().stats().peak_memory_used / 1024
    );
}
