//! Local delivery: traffic to our own address and to 127/8 never reaches
//! the device and is delivered by the next polls.

use super::*;

const LOCALHOST: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// One interface on its own; `out` records everything written to the
/// device.
struct Solo {
    iface: Interface,
    out: FrameBatch,
    now: Instant,
}

impl Solo {
    fn new() -> Solo {
        let now = Instant::now();
        Solo {
            iface: Interface::new(config(A_MAC, A_IP), now),
            out: FrameBatch::new(),
            now,
        }
    }

    /// Polls until the interface has nothing to do right away.
    fn run(&mut self) {
        for _ in 0..100_000 {
            self.iface.poll(self.now, &mut self.out);
            if !self.iface.needs_poll() {
                return;
            }
        }
        panic!("local delivery never settles");
    }

    /// Runs timers from deadline to deadline for `by` of virtual time.
    fn advance(&mut self, by: Duration) {
        let until = self.now + by;
        loop {
            self.run();
            match self.iface.poll_at() {
                Some(t) if t <= until => self.now = self.now.max(t),
                _ => break,
            }
            self.run();
            if self.iface.poll_at() == Some(self.now) && !self.iface.needs_poll() {
                // Due but not advancing: move time on a little.
                self.now += Duration::from_millis(1);
            }
        }
        self.now = until;
        self.run();
    }
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_be_bytes()[0] ^ seed)
        .collect()
}

/// Moves `a_data` from `a` to `b` and `b_data` from `b` to `a` at once,
/// returning what each side read.
fn exchange(
    s: &mut Solo,
    a: TcpHandle,
    b: TcpHandle,
    a_data: &[u8],
    b_data: &[u8],
) -> (Vec<u8>, Vec<u8>) {
    let (mut a_sent, mut b_sent) = (0, 0);
    let (mut at_b, mut at_a) = (Vec::new(), Vec::new());
    let mut buf = vec![0u8; 32 * 1024];
    for _ in 0..100_000 {
        if a_sent < a_data.len()
            && let Ok(n) = s.iface.tcp_send(a, &a_data[a_sent..])
        {
            a_sent += n;
        }
        if b_sent < b_data.len()
            && let Ok(n) = s.iface.tcp_send(b, &b_data[b_sent..])
        {
            b_sent += n;
        }
        while let Ok(n) = s.iface.tcp_recv(b, &mut buf) {
            if n == 0 {
                break;
            }
            at_b.extend_from_slice(&buf[..n]);
        }
        while let Ok(n) = s.iface.tcp_recv(a, &mut buf) {
            if n == 0 {
                break;
            }
            at_a.extend_from_slice(&buf[..n]);
        }
        if at_b.len() == a_data.len() && at_a.len() == b_data.len() {
            return (at_b, at_a);
        }
        s.advance(Duration::from_millis(1));
    }
    panic!(
        "transfer stalled: {} of {} and {} of {} bytes",
        at_b.len(),
        a_data.len(),
        at_a.len(),
        b_data.len()
    );
}

fn tcp_to_self(dst: Ipv4Addr, offload: bool) {
    let mut s = Solo::new();
    s.iface.set_segmentation_offload(offload);
    let lh = s
        .iface
        .tcp_listen(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 80), 8)
        .unwrap();
    let remote = SocketAddrV4::new(dst, 80);
    let c = s.iface.tcp_connect(s.now, remote, None).unwrap();
    s.advance(Duration::from_millis(1));
    let a = s.iface.tcp_accept(lh).expect("connection accepted");
    assert!(s.iface.tcp(c).unwrap().is_established());
    assert!(s.iface.tcp(a).unwrap().is_established());
    // Source selection: 127.0.0.1 towards the loopback network.
    let expected_src = if dst.is_loopback() { LOCALHOST } else { A_IP };
    let client = s.iface.tcp(c).unwrap();
    assert_eq!(*client.local().ip(), expected_src);
    let server = s.iface.tcp(a).unwrap();
    assert_eq!(server.local(), remote);
    assert_eq!(server.remote(), client.local());

    let up = pattern(300_000, 1);
    let down = pattern(200_000, 2);
    let (at_server, at_client) = exchange(&mut s, c, a, &up, &down);
    assert!(at_server == up, "client -> server bytes differ");
    assert!(at_client == down, "server -> client bytes differ");

    let segments_in = s.iface.counters().tcp_segments_in;
    if offload {
        // Super segments were delivered whole: far fewer segments than
        // MSS-sized ones would need.
        assert!(
            segments_in < 500_000 / 1460,
            "{segments_in} segments for 500 kB"
        );
    } else {
        assert!(segments_in >= 500_000 / 1460);
    }

    s.iface.tcp_close(s.now, c);
    s.advance(Duration::from_millis(10));
    let mut buf = [0u8; 16];
    assert_eq!(s.iface.tcp_recv(a, &mut buf), Ok(0), "server sees the FIN");
    s.iface.tcp_close(s.now, a);
    s.advance(Duration::from_secs(130));
    assert_eq!(s.iface.tcp_connection_count(), 0);

    let counters = s.iface.counters();
    assert!(s.out.is_empty(), "nothing reached the device");
    assert_eq!(counters.frames_out, 0);
    assert_eq!(counters.arp_requests_sent, 0);
    assert!(counters.loopback_delivered > 0);
    assert_eq!(counters.drops(DropReason::LoopbackQueueFull), 0);
    assert_eq!(counters.drops(DropReason::TcpBadChecksum), 0);
    assert_eq!(counters.drops(DropReason::TcpNoSocket), 0);
    assert!(s.iface.neighbors().is_empty());
    s.iface.tcp_check_invariants().unwrap();
}

#[test]
fn tcp_to_own_address() {
    tcp_to_self(A_IP, false);
}

#[test]
fn tcp_to_localhost() {
    tcp_to_self(LOCALHOST, false);
}

#[test]
fn tcp_to_localhost_with_super_segments() {
    tcp_to_self(LOCALHOST, true);
}

#[test]
fn tcp_to_own_address_with_super_segments() {
    tcp_to_self(A_IP, true);
}

#[test]
fn tcp_to_a_closed_local_port_is_refused() {
    let mut s = Solo::new();
    let c = s
        .iface
        .tcp_connect(s.now, SocketAddrV4::new(LOCALHOST, 81), None)
        .unwrap();
    s.advance(Duration::from_millis(1));
    let conn = s.iface.tcp(c).unwrap();
    assert!(conn.is_closed());
    assert_eq!(conn.error(), Some(::tcp::TcpError::Refused));
    assert!(s.out.is_empty());
}

#[test]
fn udp_to_self() {
    let mut s = Solo::new();
    let server = s
        .iface
        .udp_bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 5000))
        .unwrap();
    let client = s
        .iface
        .udp_bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0))
        .unwrap();
    let client_port = s.iface.udp_socket(client).unwrap().local.port();
    let mut buf = [0u8; 64];
    for dst in [A_IP, LOCALHOST, Ipv4Addr::new(127, 1, 2, 3)] {
        let to = SocketAddrV4::new(dst, 5000);
        assert_eq!(
            s.iface
                .udp_send_to(s.now, client, b"ping", Some(to), &mut s.out),
            Ok(4)
        );
        assert_eq!(s.iface.loopback_queued().0, 1, "queued, not sent");
        s.run();
        let (n, from) = s.iface.udp_recv_from(server, &mut buf).unwrap();
        assert_eq!(&buf[..n], b"ping");
        assert_eq!(from.port(), client_port);
        assert!(s.iface.ip.is_local(*from.ip()));
        s.iface
            .udp_send_to(s.now, server, b"pong", Some(from), &mut s.out)
            .unwrap();
        s.run();
        let (n, _) = s.iface.udp_recv_from(client, &mut buf).unwrap();
        assert_eq!(&buf[..n], b"pong");
    }
    // A connected socket to a local port nobody has: port unreachable
    // comes back through the loopback too.
    let lonely = s
        .iface
        .udp_bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0))
        .unwrap();
    s.iface
        .udp_connect(lonely, SocketAddrV4::new(LOCALHOST, 5999))
        .unwrap();
    s.iface
        .udp_send_to(s.now, lonely, b"anyone?", None, &mut s.out)
        .unwrap();
    s.run();
    assert_eq!(
        s.iface.udp_recv_from(lonely, &mut buf),
        Err(SocketError::ConnectionRefused)
    );
    assert!(s.out.is_empty(), "nothing reached the device");
    assert_eq!(s.iface.counters().frames_out, 0);
}

#[test]
fn ping_self() {
    let mut s = Solo::new();
    let h = s.iface.icmp_open(Some(7)).unwrap();
    for (seq, dst) in [(1, A_IP), (2, LOCALHOST), (3, Ipv4Addr::new(127, 0, 0, 9))] {
        s.iface
            .icmp_send_echo(s.now, h, dst, seq, b"hello", &mut s.out)
            .unwrap();
        s.run();
        let reply = s.iface.icmp_socket(h).unwrap().recv().expect("echo reply");
        assert_eq!(reply.from, dst, "answered from the address pinged");
        assert_eq!(reply.seq, seq);
        assert_eq!(reply.data, b"hello");
    }
    let c = s.iface.counters();
    assert_eq!(c.icmp_echo_replies_sent, 3);
    assert!(s.out.is_empty());
    assert_eq!(c.frames_out, 0);
}

/// An IPv4/UDP packet from `src` to `dst` (checksums right).
fn udp_packet(src: Ipv4Addr, dst: Ipv4Addr) -> Vec<u8> {
    let udp = ::udp::UdpRepr {
        src_port: 1000,
        dst_port: 5000,
    };
    let data = b"martian";
    let len = ::udp::UdpRepr::HEADER_LEN + data.len();
    let ip = Ipv4Repr::new(src, dst, IpProtocol::UDP, 64, len);
    let mut p = vec![0u8; 20 + len];
    ip.emit(&mut p);
    udp.emit(&mut p[20..], src, dst, data);
    p
}

#[test]
fn loopback_addresses_from_the_device_are_martians() {
    let mut s = Solo::new();
    let server = s
        .iface
        .udp_bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 5000))
        .unwrap();
    let frames = [
        ip_frame(&udp_packet(B_IP, LOCALHOST)),
        ip_frame(&udp_packet(B_IP, Ipv4Addr::new(127, 9, 9, 9))),
        ip_frame(&udp_packet(LOCALHOST, LOCALHOST)),
        ip_frame(&udp_packet(LOCALHOST, A_IP)),
        // Our own address as source cannot come from the wire either.
        ip_frame(&udp_packet(A_IP, A_IP)),
    ];
    for f in &frames {
        s.iface.receive_frame(s.now, f, &mut s.out);
    }
    s.run();
    let c = s.iface.counters();
    assert_eq!(c.drops(DropReason::Ipv4MartianDestination), 3);
    assert_eq!(c.drops(DropReason::Ipv4BadSource), 2);
    assert_eq!(c.udp_delivered, 0);
    assert_eq!(c.loopback_delivered, 0);
    let mut buf = [0u8; 16];
    assert_eq!(
        s.iface.udp_recv_from(server, &mut buf),
        Err(SocketError::WouldBlock)
    );
    assert!(s.out.is_empty(), "no answer to a martian");
}

#[test]
fn loopback_source_never_leaves_the_host() {
    let mut s = Solo::new();
    // A datagram claiming a 127/8 source towards another host is refused.
    let repr = Ipv4Repr::new(LOCALHOST, B_IP, IpProtocol::UDP, 64, 0);
    let iface = &mut s.iface;
    let r = iface.ip.send_ipv4(
        &mut iface.counters,
        s.now,
        repr,
        8,
        |b| b.fill(0),
        &mut s.out,
    );
    assert_eq!(r, Err(SendError::NoRoute));
    assert_eq!(
        s.iface.counters().drops(DropReason::LoopbackSourceOffHost),
        1
    );
    s.run();
    assert!(s.out.is_empty());
}

#[test]
fn queue_cap_is_respected_and_counted() {
    let mut s = Solo::new();
    let server = s
        .iface
        .udp_bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 5000))
        .unwrap();
    let client = s
        .iface
        .udp_bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0))
        .unwrap();
    let to = Some(SocketAddrV4::new(LOCALHOST, 5000));
    // Packet cap.
    s.iface.set_loopback_limits(3, 1 << 20);
    for _ in 0..10 {
        // A full queue is a drop on the way, like a full device: the send
        // itself succeeds.
        s.iface
            .udp_send_to(s.now, client, &[7; 100], to, &mut s.out)
            .unwrap();
    }
    assert_eq!(s.iface.loopback_queued(), (3, 3 * 128));
    assert!(s.iface.needs_poll());
    assert_eq!(s.iface.poll_at(), Some(s.now));
    assert_eq!(s.iface.counters().drops(DropReason::LoopbackQueueFull), 7);
    s.run();
    assert_eq!(s.iface.loopback_queued(), (0, 0));
    assert!(!s.iface.needs_poll());
    let mut buf = [0u8; 200];
    let mut got = 0;
    while s.iface.udp_recv_from(server, &mut buf).is_ok() {
        got += 1;
    }
    assert_eq!(got, 3);
    // Byte cap: two 1000-byte payloads (1028-byte packets) fit in 2100.
    s.iface.set_loopback_limits(100, 2100);
    for _ in 0..5 {
        s.iface
            .udp_send_to(s.now, client, &[7; 1000], to, &mut s.out)
            .unwrap();
    }
    assert_eq!(s.iface.loopback_queued(), (2, 2056));
    assert_eq!(s.iface.counters().drops(DropReason::LoopbackQueueFull), 10);
    s.run();
    assert!(s.iface.loopback_memory() <= 2 * (2100 + 100 * 32));
    assert!(s.out.is_empty());
}

#[test]
fn a_whole_queue_is_one_round() {
    let mut s = Solo::new();
    let a = s
        .iface
        .udp_bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 5000))
        .unwrap();
    let to = Some(SocketAddrV4::new(LOCALHOST, 5000));
    for _ in 0..500 {
        s.iface.udp_send_to(s.now, a, b"x", to, &mut s.out).unwrap();
    }
    s.iface.poll(s.now, &mut s.out);
    assert!(!s.iface.needs_poll());
    let mut buf = [0u8; 8];
    let mut got = 0;
    while s.iface.udp_recv_from(a, &mut buf).is_ok() {
        got += 1;
    }
    assert_eq!(got, 500);
}

#[test]
fn loopback_is_captured_only_when_asked() {
    use crate::device::{PcapDevice, PcapWriter, memory_pair};
    for capture in [false, true] {
        let mut s = Solo::new();
        s.iface.set_capture_loopback(capture);
        let h = s.iface.icmp_open(Some(9)).unwrap();
        s.iface
            .icmp_send_echo(s.now, h, LOCALHOST, 1, b"seen?", &mut s.out)
            .unwrap();
        s.run();
        assert!(s.iface.icmp_socket(h).unwrap().recv().is_some());
        // Nothing to send either way; the capture-only frames are not sent.
        assert_eq!(s.out.iter().count(), 0);
        let (dev, _peer) = memory_pair(1500).unwrap();
        let w = PcapWriter::new(Vec::new(), s.now, std::time::SystemTime::now()).unwrap();
        let mut pcap = PcapDevice::new(dev, w);
        s.out.flush_to(s.now, &mut pcap).unwrap();
        let frames = pcap.pcap().frames();
        assert_eq!(frames, if capture { 2 } else { 0 }, "request and reply");
        if capture {
            // From our MAC to itself, IPv4 to 127.0.0.1.
            let bytes = pcap.pcap().get_ref().clone();
            let frame = &bytes[24 + 16..];
            assert_eq!(&frame[..6], &A_MAC.0);
            assert_eq!(&frame[6..12], &A_MAC.0);
            assert_eq!(&frame[12..14], &[0x08, 0x00]);
            assert_eq!(&frame[14 + 16..14 + 20], &[127, 0, 0, 1]);
        }
    }
}
