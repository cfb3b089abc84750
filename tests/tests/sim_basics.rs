//! The simulation harness itself: virtual time, hosts, links, switches and
//! applications, exercised with ICMP echo and UDP.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use sim::sim::{
    HostCtx, LinkConfig, Sim, UdpEcho, UdpSink, UdpSource, host_config, ping, seed_from_env,
};
use stack::DropReason;

const MS: Duration = Duration::from_millis(1);

#[test]
fn ping_rtt_is_twice_the_link_latency() {
    let mut sim = Sim::new(seed_from_env(1));
    let a = sim.add_host(host_config(1));
    let b = sim.add_host(host_config(2));
    let link = sim.add_link(a, b, LinkConfig::with_latency_of(10 * MS));

    // The first ping waits for ARP: request and reply, then echo and reply.
    let first = ping(&mut sim, a, b, 1, b"hello", Duration::from_secs(1));
    assert_eq!(first, Some(40 * MS));
    for seq in 2..10 {
        let rtt = ping(
            &mut sim,
            a,
            b,
            seq,
            &[seq as u8; 1000],
            Duration::from_secs(1),
        );
        assert_eq!(rtt, Some(20 * MS), "ping {seq}");
    }
    // Both ways, and the link saw exactly the frames we expect.
    assert_eq!(
        ping(&mut sim, b, a, 1, b"back", Duration::from_secs(1)),
        Some(20 * MS)
    );
    let stats = sim.link_stats(link);
    assert_eq!(stats.sent, 2 + 2 * 10);
    assert_eq!(stats.delivered, stats.sent);
    assert_eq!(sim.iface_ref(b).counters().icmp_echo_replies_sent, 9);
}

#[test]
fn virtual_time_jumps_over_idle_minutes() {
    let wall = Instant::now();
    let mut sim = Sim::new(seed_from_env(2));
    let a = sim.add_host(host_config(1));
    let b = sim.add_host(host_config(2));
    sim.add_link(a, b, LinkConfig::default());
    assert!(ping(&mut sim, a, b, 1, b"x", Duration::from_secs(1)).is_some());

    // A condition that never holds: exactly 60 s of virtual time pass.
    let t0 = sim.now();
    assert!(!sim.run_until(|_| false, Duration::from_secs(60)));
    assert_eq!(sim.now() - t0, Duration::from_secs(60));

    // A minute of traffic, one datagram every 10 ms, and an idle hour.
    let sink = UdpSink::bind(sim.iface(b), 9, false).expect("bind");
    let sink = sim.add_app(b, sink);
    let dst = SocketAddrV4::new(sim.ip(b), 9);
    let source = UdpSource::new(sim.iface(a), dst, 6000, 100, 10 * MS).expect("bind");
    sim.add_app(a, source);
    sim.run_for(Duration::from_secs(60));
    assert_eq!(sim.app::<UdpSink>(sink).received.len(), 6000);
    sim.run_for(Duration::from_secs(3600));
    assert_eq!(sim.elapsed(), t0 - sim.start() + Duration::from_secs(3720));
    // Neighbor entries went stale and were re-confirmed along the way: the
    // stack's timers ran under virtual time.
    assert!(ping(&mut sim, a, b, 2, b"y", Duration::from_secs(5)).is_some());
    eprintln!(
        "{:?} of virtual time took {:?} of wall time",
        sim.elapsed(),
        wall.elapsed()
    );
}

#[test]
fn switch_forwards_unicast_to_one_port_and_floods_broadcast() {
    let mut sim = Sim::new(seed_from_env(3));
    let a = sim.add_host(host_config(1));
    let b = sim.add_host(host_config(2));
    let c = sim.add_host(host_config(3));
    let sw = sim.add_switch(&[a, b, c], LinkConfig::with_latency_of(5 * MS));

    // A to B: the ARP request reaches B and C, everything else only B.
    assert_eq!(
        ping(&mut sim, a, b, 1, b"to b", Duration::from_secs(1)),
        Some(20 * MS)
    );
    assert_eq!(sim.rx_stats(sw, c).delivered, 1, "only the broadcast");
    assert_eq!(sim.iface_ref(c).counters().frames_in, 1);
    assert_eq!(
        sim.rx_stats(sw, b).delivered,
        2,
        "ARP request, echo request"
    );
    assert_eq!(sim.rx_stats(sw, a).delivered, 2, "ARP reply, echo reply");

    // A to C, and B to C.
    assert_eq!(
        ping(&mut sim, a, c, 2, b"to c", Duration::from_secs(1)),
        Some(20 * MS)
    );
    assert_eq!(
        ping(&mut sim, b, c, 3, b"b to c", Duration::from_secs(1)),
        Some(20 * MS)
    );
    assert_eq!(
        ping(&mut sim, c, a, 4, b"c to a", Duration::from_secs(1)),
        Some(10 * MS)
    );
    for h in [a, b, c] {
        let counters = sim.iface_ref(h).counters();
        assert_eq!(counters.drops(DropReason::EthNotForUs), 0, "{h:?}");
        // ARP requests for someone else are the only frames not for us.
        assert!(counters.total_drops() <= counters.drops(DropReason::ArpNotForUs));
    }
}

#[test]
fn switch_port_bandwidth_is_shared_by_senders() {
    // Two senders, one receiver on a 10 Mbit/s port: the receiver's downlink
    // is the bottleneck and both senders' frames queue there.
    let mut sim = Sim::new(seed_from_env(4));
    let hosts: Vec<_> = (1..=3).map(|n| sim.add_host(host_config(n))).collect();
    let [a, b, c] = [hosts[0], hosts[1], hosts[2]];
    let port = LinkConfig::bottleneck(10_000_000, 2 * MS, 1 << 20);
    let sw = sim.add_switch(&hosts, port);
    for h in [a, b] {
        assert!(ping(&mut sim, h, c, 1, b"warm", Duration::from_secs(1)).is_some());
    }
    let sink = UdpSink::bind(sim.iface(c), 9, false).expect("bind");
    let sink = sim.add_app(c, sink);
    let dst = SocketAddrV4::new(sim.ip(c), 9);
    for h in [a, b] {
        let source = UdpSource::new(sim.iface(h), dst, 100, 1000, Duration::ZERO).expect("bind");
        sim.add_app(h, source);
    }
    let t0 = sim.now();
    assert!(sim.run_until(
        |sim| sim.app::<UdpSink>(sink).received.len() == 200,
        Duration::from_secs(5)
    ));
    // 200 frames of 1042 bytes at 10 Mbit/s, plus 1 ms of latency.
    let tx = Duration::from_nanos(1042 * 8 * 100);
    assert_eq!(sim.now() - t0, 200 * tx + MS);
    assert_eq!(sim.rx_stats(sw, c).max_queue_bytes, 200 * 1042);
}

#[test]
fn applications_run_on_frames_and_timers() {
    let mut sim = Sim::new(seed_from_env(5));
    let a = sim.add_host(host_config(1));
    let b = sim.add_host(host_config(2));
    sim.add_link(a, b, LinkConfig::with_latency_of(3 * MS));
    let echo = UdpEcho::bind(sim.iface(b), 7).expect("bind");
    let echo = sim.add_app(b, echo);

    // A closure client: one request every 50 ms, counts replies.
    let sock = sim
        .iface(a)
        .udp_bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0))
        .expect("bind");
    let dst = SocketAddrV4::new(sim.ip(b), 7);
    let replies = std::rc::Rc::new(std::cell::Cell::new(0u32));
    let seen = replies.clone();
    let mut next = sim.now();
    let mut sent = 0u32;
    sim.add_app(a, move |cx: &mut HostCtx<'_>| {
        let mut buf = [0u8; 64];
        while cx.iface.udp_recv_from(sock, &mut buf).is_ok() {
            seen.set(seen.get() + 1);
        }
        if sent < 20 && cx.now >= next {
            let msg = sent.to_be_bytes();
            cx.iface
                .udp_send_to(cx.now, sock, &msg, Some(dst), cx.tx)
                .expect("send");
            sent += 1;
            next += 50 * MS;
        }
        if sent < 20 {
            cx.wake_at(next);
        }
    });
    sim.run_for(Duration::from_secs(2));
    assert_eq!(replies.get(), 20);
    assert_eq!(sim.app::<UdpEcho>(echo).echoed, 20);
    // After the last reply nothing is left to do but interface timers.
    assert_eq!(sim.in_flight(), 0);
}

#[test]
fn removed_application_stops() {
    let mut sim = Sim::new(seed_from_env(6));
    let a = sim.add_host(host_config(1));
    let b = sim.add_host(host_config(2));
    sim.add_link(a, b, LinkConfig::default());
    let dst = SocketAddrV4::new(sim.ip(b), 9);
    let source = UdpSource::new(sim.iface(a), dst, 1000, 10, 10 * MS).expect("bind");
    let id = sim.add_app(a, source);
    sim.run_for(95 * MS);
    assert_eq!(sim.app::<UdpSource>(id).sent, 10);
    sim.remove_app(id);
    sim.run_for(Duration::from_secs(1));
    assert_eq!(sim.iface_ref(a).counters().udp_sent, 10);
}

#[test]
fn host_without_link_drops_its_frames() {
    let mut sim = Sim::new(seed_from_env(7));
    let lonely = sim.add_host(host_config(9));
    let sock = sim.iface(lonely).icmp_open(None).expect("socket");
    let dst = Ipv4Addr::new(10, 0, 0, 1);
    sim.with_host(lonely, |cx| {
        cx.iface.icmp_send_echo(cx.now, sock, dst, 1, b"?", cx.tx)
    })
    .expect("queued for ARP");
    sim.run_for(Duration::from_secs(10));
    // Three ARP requests, then the packet was given up on.
    assert_eq!(sim.unattached_drops(lonely), 3);
    assert_eq!(
        sim.iface_ref(lonely)
            .counters()
            .drops(DropReason::ArpUnresolved),
        1
    );
}

#[test]
#[should_panic(expected = "livelock")]
fn livelock_is_detected() {
    let mut sim = Sim::new(seed_from_env(8));
    let a = sim.add_host(host_config(1));
    sim.set_livelock_limit(1000);
    // An application that keeps asking to run at the current instant.
    sim.add_app(a, |cx: &mut HostCtx<'_>| cx.wake_at(cx.now));
    sim.run_for(Duration::from_secs(1));
}

#[test]
#[should_panic(expected = "already plugged into")]
fn a_host_has_one_interface() {
    let mut sim = Sim::new(0);
    let a = sim.add_host(host_config(1));
    let b = sim.add_host(host_config(2));
    let c = sim.add_host(host_config(3));
    sim.add_link(a, b, LinkConfig::default());
    sim.add_link(a, c, LinkConfig::default());
}
