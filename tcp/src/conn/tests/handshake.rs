//! Opening: the three-way handshake, simultaneous open, SYN retries,
//! options, closing or shutting down while connecting.

use super::*;

#[test]
fn three_way_handshake_negotiates_options() {
    let mut w = Wire::new(cfg(), cfg());
    w.established();
    let syn = &w.sent_a[0].0;
    assert!(syn.flags.syn() && !syn.flags.ack());
    assert_eq!(syn.seq, SeqNum(1000));
    assert_eq!(syn.options.mss, Some(1460));
    assert_eq!(syn.options.window_scale, Some(7));
    assert!(syn.options.sack_permitted);
    assert!(syn.options.timestamps.is_some());
    let synack = &w.sent_b[0].0;
    assert!(synack.flags.syn() && synack.flags.ack());
    assert_eq!(synack.ack, SeqNum(1001));
    let s = w.a.stats();
    assert!(s.sack && s.timestamps);
    assert_eq!(s.window_scale, Some((7, 7)));
    assert_eq!(s.mss, 1460 - 12, "timestamps take 12 bytes of each segment");
    assert!(s.srtt.is_some(), "RTT measured on the handshake");
}

/// Initial sequence numbers anywhere in the space, including just below
/// 2^31 and 2^32 where the right edge of the first window wraps past a
/// comparison boundary, give both sides a usable window: data flows both
/// ways at once, with no retransmission. (An active opener once left its
/// advertised edge at zero, so with the peer's ISN in the 1 MiB below 2^31
/// every segment of the peer's was unacceptable: about one connection in
/// 4,000 stalled.)
#[test]
fn any_initial_sequence_numbers_give_a_usable_window() {
    let edges = [
        0u32,
        1,
        0x7fff_ffff - 1_048_576,
        0x7fff_ffff - 70_000,
        0x7fff_fffe,
        0x7fff_ffff,
        0x8000_0000,
        0xffff_ffff - 1_048_576,
        0xffff_fffe,
        0xffff_ffff,
    ];
    for &iss_a in &edges {
        for &iss_b in &edges {
            for big in [false, true] {
                let c = if big {
                    TcpConfig {
                        recv_buffer: 1 << 20,
                        send_buffer: 1 << 20,
                        ..cfg()
                    }
                } else {
                    cfg()
                };
                let mut w = Wire::with_iss(c.clone(), c, SeqNum(iss_a), SeqNum(iss_b));
                w.established();
                assert!(
                    w.a.stats().rcv_wnd > 0,
                    "A's window, ISS {iss_a:#x}/{iss_b:#x}"
                );
                assert!(
                    w.b().stats().rcv_wnd > 0,
                    "B's window, ISS {iss_a:#x}/{iss_b:#x}"
                );
                w.a.send(b"ping").unwrap();
                w.b().send(b"pong").unwrap();
                w.run(Duration::from_millis(50));
                let mut buf = [0u8; 8];
                assert_eq!(w.a.recv(&mut buf), Ok(4), "ISS {iss_a:#x}/{iss_b:#x}");
                assert_eq!(&buf[..4], b"pong");
                assert_eq!(w.b_rx, b"ping", "ISS {iss_a:#x}/{iss_b:#x}");
                assert_eq!(w.a.stats().retrans_rto, 0);
                assert_eq!(w.b().stats().retrans_rto, 0);
            }
        }
    }
}

#[test]
fn options_absent_means_defaults() {
    let bare = TcpConfig {
        window_scale: 0,
        timestamps: false,
        sack: false,
        ..cfg()
    };
    let mut w = Wire::new(bare, cfg());
    w.established();
    let s = w.b().stats();
    assert!(!s.sack && !s.timestamps);
    assert_eq!(s.window_scale, None);
    assert!(
        w.sent_b[0].0.options.timestamps.is_none(),
        "not offered back"
    );
}

#[test]
fn simultaneous_open() {
    // The two SYNs cross; both answer with SYN-ACK; each completes.
    let (mut a, mut b, sa, sb) = crossed_syns(&cfg());
    assert!(sa[0].0.flags.syn() && sa[0].0.flags.ack());
    let now = Instant::now();
    for (r, p) in &sb {
        a.handle_segment(now, r, p);
    }
    for (r, p) in &sa {
        b.handle_segment(now, r, p);
    }
    assert_eq!(a.state(), State::Established);
    assert_eq!(b.state(), State::Established);
}

#[test]
fn syn_retries_then_timeout() {
    let c = TcpConfig {
        syn_retries: 3,
        ..cfg()
    };
    let mut w = Wire::new(c, cfg());
    w.filter_a = Box::new(|_, _, _| Fate::Drop);
    w.run(Duration::from_secs(60));
    assert_eq!(w.a.error(), Some(TcpError::TimedOut));
    let syns = w.sent_a.iter().filter(|(r, _)| r.flags.syn()).count();
    assert_eq!(syns, 4, "first SYN and 3 retries");
}

#[test]
fn refused_by_reset() {
    let mut w = Wire::new(cfg(), cfg());
    w.run(Duration::from_millis(1));
    let syn = w.sent_a[0].0;
    let rst = crate::reset_for(&syn, 0).unwrap();
    w.a.handle_segment(w.now, &rst, &[]);
    assert_eq!(w.a.error(), Some(TcpError::Refused));
}

#[test]
fn a_passive_open_gives_up_after_five_syn_ack_retransmissions() {
    let mut w = Wire::new(cfg(), cfg());
    w.filter_b = Box::new(|_, _, _| Fate::Drop);
    w.filter_a = Box::new(|i, _, _| if i == 0 { Fate::Deliver } else { Fate::Drop });
    w.run(Duration::from_secs(300));
    let synacks = w.sent_b.iter().filter(|(r, _)| r.flags.syn()).count();
    assert_eq!(synacks, 1 + 5);
    assert_eq!(w.b().state(), State::Closed);
}

#[test]
fn the_window_of_a_syn_ack_is_never_scaled_in_a_simultaneous_open() {
    // RFC 7323 2.2: "The window field in a SYN (i.e., a <SYN> or
    // <SYN,ACK>) segment itself is never scaled."
    let (mut a, _b, _sa, sb) = crossed_syns(&cfg());
    let now = Instant::now();
    for (r, p) in &sb {
        assert!(r.flags.syn() && r.flags.ack());
        a.handle_segment(now, r, p);
    }
    assert_eq!(a.state(), State::Established);
    assert_eq!(a.snd.wnd, usize::from(sb[0].0.window), "taken unscaled");
    assert!(a.snd.max_wnd <= 65_535);
}

#[test]
fn a_reset_in_syn_received_after_a_simultaneous_open_is_refused() {
    // An actively opened connection reports ECONNREFUSED for a reset in
    // SYN-RECEIVED, whether it got there through a simultaneous open or not.
    let (mut a, _b, _sa, _sb) = crossed_syns(&cfg());
    assert_eq!(a.state(), State::SynReceived);
    let now = Instant::now();
    let rst = from_peer(&a, 0, crate::Flags::RST);
    a.handle_segment(now, &rst, &[]);
    assert_eq!(a.state(), State::Closed);
    assert_eq!(a.error(), Some(TcpError::Refused));
}

#[test]
fn shutdown_while_connecting_sends_the_data_then_the_fin() {
    let mut w = Wire::new(cfg(), cfg());
    w.a.send(b"early").unwrap();
    w.a.shutdown_write();
    assert_eq!(w.a.state(), State::SynSent, "kept until connected");
    w.run(Duration::from_millis(100));
    assert_eq!(w.b_rx, b"early");
    assert!(w.b().peer_closed(), "the FIN followed the data");
    assert_eq!(w.a.state(), State::FinWait2);
}

#[test]
fn close_while_connecting_deletes_the_connection_and_its_timers() {
    let mut w = Wire::new(cfg(), cfg());
    let now = w.now;
    w.a.poll_transmit(now, 1500, |_, _, _| true); // the SYN
    w.a.close(now);
    assert_eq!(w.a.state(), State::Closed);
    assert_eq!(w.a.poll_at(), None, "no timer left armed");
}

#[test]
fn close_in_syn_received_sends_the_fin_once_established() {
    // RFC 9293 3.10.4 CLOSE in SYN-RECEIVED: "If no SENDs have been issued
    // and there is no pending data to send, then form a FIN segment and
    // send it, and enter FIN-WAIT-1 state; otherwise, queue for processing
    // after entering ESTABLISHED state."
    let mut w = Wire::new(cfg(), cfg());
    // A's ACK of the SYN-ACK is lost, so B stays in SYN-RECEIVED.
    w.filter_a = Box::new(|i, _, _| if i == 1 { Fate::Drop } else { Fate::Deliver });
    w.run(Duration::from_millis(20));
    assert_eq!(w.b().state(), State::SynReceived);
    let now = w.now;
    w.b().close(now);
    w.run(Duration::from_secs(3));
    assert!(w.a.peer_closed(), "B's FIN arrived");
    assert_eq!(w.b().state(), State::FinWait2);
    let now = w.now;
    w.a.close(now);
    w.run(Duration::from_millis(100));
    assert_eq!(w.b().state(), State::TimeWait, "not stuck in CLOSE-WAIT");
    assert_eq!(w.a.state(), State::Closed);
}

#[test]
fn a_retransmitted_syn_leaves_a_one_segment_window_and_a_3_second_rto() {
    let mut w = Wire::new(cfg(), cfg());
    w.filter_a = Box::new(|i, _, _| if i == 0 { Fate::Drop } else { Fate::Deliver });
    w.run(Duration::from_secs(2));
    assert_eq!(w.a.state(), State::Established);
    let s = w.a.stats();
    assert_eq!(s.cwnd, s.mss, "RFC 5681 3.1: one segment");
    assert_eq!(s.rto, Duration::from_secs(3), "RFC 6298 5.7");
    // The passive side: its SYN-ACK is lost once.
    let mut w = Wire::new(cfg(), cfg());
    w.filter_b = Box::new(|i, _, _| if i == 0 { Fate::Drop } else { Fate::Deliver });
    w.run(Duration::from_secs(3));
    let s = w.b().stats();
    assert_eq!(w.b().state(), State::Established);
    assert_eq!(s.cwnd, s.mss);
}

#[test]
fn data_and_a_fin_in_the_syn_ack_are_processed() {
    let now = Instant::now();
    let mut a = Connection::connect(&cfg(), A, B, SeqNum(100), 1, now, now);
    a.poll_transmit(now, 1500, |_, _, _| true);
    let synack = TcpRepr {
        src_port: B.port(),
        dst_port: A.port(),
        seq: SeqNum(5000),
        ack: SeqNum(101),
        flags: crate::Flags(crate::Flags::SYN | crate::Flags::ACK | crate::Flags::FIN),
        window: 1000,
        options: crate::TcpOptions {
            mss: Some(1460),
            ..crate::TcpOptions::default()
        },
        urgent: 0,
    };
    a.handle_segment(now, &synack, b"hi");
    assert_eq!(a.state(), State::CloseWait);
    let mut buf = [0u8; 8];
    assert_eq!(a.recv(&mut buf), Ok(2));
    assert_eq!(&buf[..2], b"hi");
    assert_eq!(a.recv(&mut buf), Ok(0), "then the end of the stream");
    let mut acked = None;
    a.poll_transmit(now, 1500, |r, _, _| {
        acked = Some(r.ack);
        true
    });
    assert_eq!(acked, Some(SeqNum(5000 + 1 + 2 + 1)));
}

#[test]
fn a_smaller_mss_is_advertised_and_bounds_what_we_send() {
    let small = TcpConfig { mss: 1000, ..cfg() };
    let mut w = Wire::new(small, cfg());
    assert_eq!(w.a.mss(), 536, "before the handshake: the default");
    w.established();
    assert_eq!(w.sent_a[0].0.options.mss, Some(1000));
    assert_eq!(w.a.mss(), 1000 - 12, "timestamps take 12");
    assert_eq!(w.b().mss(), 1000 - 12, "the peer follows our MSS");
    let before = w.sent_a.len();
    transfer(&mut w, &pattern(10_000), Duration::from_secs(2));
    let sizes = a_data_sizes(&w, before);
    assert!(sizes.iter().all(|&n| n <= 988), "{sizes:?}");
    assert!(sizes.contains(&988));
}

#[test]
fn tos_is_kept_per_connection_without_ecn_bits() {
    let mut c = Connection::connect(&cfg(), A, B, SeqNum(1), 0, Instant::now(), Instant::now());
    assert_eq!(c.tos(), 0);
    c.set_tos(0x10 | 0b11);
    assert_eq!(c.tos(), 0x10);
    let c = Connection::connect(
        &TcpConfig { tos: 0xb8, ..cfg() },
        A,
        B,
        SeqNum(1),
        0,
        Instant::now(),
        Instant::now(),
    );
    assert_eq!(c.tos(), 0xb8);
}
