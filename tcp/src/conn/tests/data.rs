//! Data transfer: super segments, Nagle, delayed and quick ACKs,
//! out-of-order data, window scaling, closed windows, memory pressure.

use super::*;

/// With segmentation offload, new data leaves in super segments of whole
/// segments, within cwnd and the peer's window; only the end of the data
/// may be short, and the segment size handed down is the sender MSS.
#[test]
fn super_segments_hold_whole_segments_within_the_windows() {
    let mut w = Wire::new(cfg(), cfg());
    w.established();
    let data = pattern(40_000);
    assert_eq!(w.a.send(&data), Ok(40_000));
    let now = w.now;
    let mut out = Vec::new();
    w.a.poll_transmit_burst(now, 1500, 65_000, |seg, a, b, mss| {
        out.push((seg.seq, a.len() + b.len(), mss, seg.flags.psh()));
        true
    });
    let smss = w.a.stats().mss;
    let cwnd = w.a.stats().cwnd;
    let total: usize = out.iter().map(|o| o.1).sum();
    assert!(total <= cwnd, "{total} bytes sent with cwnd {cwnd}");
    assert!(total >= cwnd - smss, "cwnd used: {total} of {cwnd}");
    assert!(out[0].1 > smss, "a super segment: {out:?}");
    for &(_, len, mss, _) in &out {
        assert_eq!(mss, smss);
        assert_eq!(len % mss, 0, "whole segments while data remains: {out:?}");
    }
    // The peer's window bounds a super segment too: with 3,000 bytes of
    // window, two whole segments go and the 104-byte remnant waits (sender
    // SWS avoidance), as without offload.
    let mut w = Wire::new(cfg(), cfg());
    w.established();
    w.a.snd.wnd = 3_000;
    w.a.send(&data).unwrap();
    let mut lens = Vec::new();
    let now = w.now;
    w.a.poll_transmit_burst(now, 1500, 65_000, |_, a, b, _| {
        lens.push(a.len() + b.len());
        true
    });
    assert_eq!(lens, vec![2 * smss], "{lens:?}");
    // The end of the data may be short.
    let mut w = Wire::new(cfg(), cfg());
    w.established();
    w.a.send(&data[..5_000]).unwrap();
    let mut lens = Vec::new();
    let now = w.now;
    w.a.poll_transmit_burst(now, 1500, 65_000, |_, a, b, _| {
        lens.push(a.len() + b.len());
        true
    });
    assert_eq!(lens, vec![5_000]);
}

#[test]
fn ack_on_text_into_a_closed_window_is_still_processed() {
    // RFC 9293 3.10.7.4: at RCV.WND = 0 "special allowance should be made
    // to accept valid ACKs". B's window is closed, B has data of its own in
    // flight, and A's only acknowledgment of it rides on a zero-window probe.
    let mut w = Wire::new(cfg(), cfg());
    w.b_reads = false;
    w.established();
    let data = pattern(100_000);
    w.a_writes(&data, 0, 20, Duration::from_millis(100));
    assert_eq!(w.a.snd.wnd, 0, "B's window is closed");
    let b = w.b.as_mut().unwrap();
    assert_eq!(b.rcv.adv, b.rcv.nxt);
    b.send(b"reply").unwrap();
    w.flush_b(); // B sends it (and A will never see it).
    let b = w.b.as_mut().unwrap();
    let (una, nxt, rcv_nxt) = (b.snd.una, b.snd.una + 5, b.rcv.nxt);
    assert_eq!(b.snd.nxt, nxt);
    // A's probe: one byte at B's RCV.NXT, acknowledging B's reply.
    let (mut probe, _) = w.sent_a.last().unwrap().clone();
    probe.seq = rcv_nxt;
    probe.ack = nxt;
    probe.flags = crate::Flags(crate::Flags::ACK | crate::Flags::PSH);
    let now = w.now;
    let b = w.b.as_mut().unwrap();
    assert_eq!(b.snd.una, una);
    assert_eq!(b.handle_segment(now, &probe, b"x"), Input::Done);
    assert_eq!(b.snd.una, nxt, "the ACK field was processed");
    assert_eq!(b.rcv.nxt, rcv_nxt, "the text was not accepted");
    let mut acks = Vec::new();
    b.poll_transmit(now, 1500, |r, _, _| {
        acks.push(*r);
        true
    });
    assert!(
        acks.iter().any(|r| r.ack == rcv_nxt && r.window == 0),
        "answered with an ACK repeating the zero window"
    );
}

#[test]
fn nagle_coalesces_small_writes_and_nodelay_does_not() {
    for nodelay in [false, true] {
        let c = TcpConfig { nodelay, ..cfg() };
        let mut w = Wire::new(c, cfg());
        w.established();
        let before = w.sent_a.len();
        for _ in 0..10 {
            w.a.send(b"x").unwrap();
            w.round();
        }
        w.run(Duration::from_millis(100));
        let data_segments = w.sent_a[before..]
            .iter()
            .filter(|(_, p)| !p.is_empty())
            .count();
        if nodelay {
            assert_eq!(data_segments, 10);
        } else {
            assert_eq!(data_segments, 2, "one, then the rest once it is acked");
        }
        assert_eq!(w.b_rx, b"xxxxxxxxxx");
    }
}

#[test]
fn delayed_ack_every_second_segment_or_after_the_timer() {
    let mut w = Wire::new(cfg(), cfg());
    w.established();
    let before = w.sent_b.len();
    w.a.send(b"one small segment").unwrap();
    w.run(Duration::from_millis(20));
    assert_eq!(w.sent_b.len(), before, "ACK delayed");
    w.run(Duration::from_millis(40));
    assert_eq!(w.sent_b.len(), before + 1, "ACK after the 40 ms timer");
    let before = w.sent_b.len();
    w.a.send(&pattern(1448 * 2)).unwrap();
    w.run(Duration::from_millis(8));
    assert_eq!(
        w.sent_b.len(),
        before + 1,
        "immediate ACK for two full segments"
    );
}

#[test]
fn out_of_order_data_is_sacked_and_delivered_in_order() {
    let mut w = Wire::new(cfg(), cfg());
    w.established();
    // Hold back A's first data segment for 30 ms.
    let mut held = false;
    w.filter_a = Box::new(move |_, _, p| {
        if !p.is_empty() && !held {
            held = true;
            return Fate::Drop;
        }
        Fate::Deliver
    });
    let data = pattern(1448 * 4);
    transfer(&mut w, &data, Duration::from_secs(5));
    let sack_acks: Vec<_> = w
        .sent_b
        .iter()
        .filter(|(r, _)| r.options.sack_count > 0)
        .collect();
    assert!(!sack_acks.is_empty());
    let (first_left, _) = sack_acks[0].0.options.sack()[0];
    assert!(
        first_left > w.a.snd.iss + 1,
        "SACK covers data above the hole"
    );
}

#[test]
fn window_scaling_allows_large_windows() {
    let big = TcpConfig {
        send_buffer: 4 << 20,
        recv_buffer: 4 << 20,
        ..cfg()
    };
    let mut w = Wire::new(big.clone(), big);
    w.delay = Duration::from_millis(50);
    w.established();
    let data = pattern(3 << 20);
    transfer(&mut w, &data, Duration::from_secs(30));
    let max_wnd = w.a.snd.max_wnd;
    assert!(max_wnd > 1 << 20, "window {max_wnd}");
    assert!(w.a.stats().cwnd > 200_000, "{}", w.a.stats());
    // The delivery rate: non-zero, and no more than the window allows per
    // round trip (what is delivered in an RTT was in flight in one).
    let s = w.a.stats();
    let rtt = s.srtt.unwrap().as_secs_f64();
    assert!(s.delivery_rate > 0, "{s}");
    assert!(
        s.delivery_rate as f64 * rtt <= max_wnd as f64 * 1.1,
        "rate {} B/s over rtt {rtt} s with a window of {max_wnd}",
        s.delivery_rate
    );
}

#[test]
fn memory_pressure_shrinks_the_offered_window_and_exhaustion_drops_out_of_order_data() {
    let big = TcpConfig {
        send_buffer: 1 << 20,
        recv_buffer: 1 << 20,
        ..cfg()
    };
    let mut w = Wire::new(big.clone(), big);
    w.established();
    let data = pattern(3_000_000);
    transfer(&mut w, &data[..100_000], Duration::from_secs(5));
    w.b().set_memory_pressure(crate::MemoryPressure::Pressure);
    // The edge already offered does not move left (RFC 9293 3.8.6), but
    // once the data reaches it the window offered is clamped to the
    // pressure floor.
    w.b_rx.clear();
    transfer(&mut w, &data[100_000..2_500_000], Duration::from_secs(20));
    let offered = w.b().rcv.adv.since(w.b().rcv.nxt);
    assert!(offered <= crate::PRESSURE_RING, "offered {offered}");
    let mut rx = data[..2_500_000].to_vec();
    std::mem::swap(&mut rx, &mut w.b_rx);
    // Exhausted: out-of-order data is not kept. Lose one segment so the
    // following ones arrive out of order.
    w.b().set_memory_pressure(crate::MemoryPressure::Exhausted);
    let mut lost = false;
    w.filter_a = Box::new(move |_, _, p| {
        if !p.is_empty() && !lost {
            lost = true;
            return Fate::Drop;
        }
        Fate::Deliver
    });
    w.a.send(&data[2_500_000..2_550_000]).unwrap();
    w.run(Duration::from_millis(30));
    assert!(
        w.b().rcv.buf.assembler().is_empty(),
        "nothing held out of order"
    );
    let alarms = w.b().take_alarms();
    assert!(alarms.data_dropped_no_memory > 0, "{alarms:?}");
    // Memory comes back: the transfer completes byte-exact.
    w.b().set_memory_pressure(crate::MemoryPressure::Normal);
    w.b_rx.truncate(2_500_000);
    let mut off = 2_550_000;
    while w.b_rx.len() < data.len() {
        if off < data.len() {
            off += w.a.send(&data[off..]).unwrap_or(0);
        }
        w.run(Duration::from_millis(50));
        assert!(w.now < w.a.ts.epoch + Duration::from_secs(60), "stalled");
    }
    assert_eq!(w.b_rx, data);
}

#[test]
fn delayed_acks_follow_a_shrinking_peer_mss() {
    let nodelay = TcpConfig {
        nodelay: true,
        ..cfg()
    };
    let mut w = Wire::new(nodelay, cfg());
    w.established();
    // One full-sized segment, then a stream of slightly smaller ones, one
    // every millisecond.
    w.a.send(&[1u8; 1448]).unwrap();
    w.run(Duration::from_millis(100));
    let acks_before = w.sent_b.len();
    for _ in 0..40 {
        w.a.send(&[2u8; 1400]).unwrap();
        w.run(Duration::from_millis(1));
    }
    let acks = w.sent_b.len() - acks_before;
    // RFC 5681 4.2: at least every second full-sized segment. Without the
    // shrinking estimate only the 40 ms timer answered (about 2 ACKs).
    assert!(acks >= 19, "{acks} ACKs for 40 segments");
    assert_eq!(w.b().rcv.mss, 1400);
}

#[test]
fn in_order_data_is_taken_when_the_out_of_order_ranges_are_full() {
    let mut r = crate::RecvBuffer::new(1 << 20);
    for i in 0..crate::Assembler::MAX_RANGES {
        assert_eq!(r.insert(10_000 + 2 * i, b"x"), Ok(0));
    }
    assert_eq!(
        r.insert(500_000, b"y"),
        Err(crate::InsertError::TooManyRanges)
    );
    assert_eq!(
        r.insert(0, &[7u8; 1000]),
        Ok(1000),
        "data at RCV.NXT is always taken"
    );
}

#[test]
fn a_bare_fin_is_taken_into_a_closed_window() {
    let mut w = Wire::new(cfg(), cfg());
    w.b_reads = false;
    w.established();
    let data = pattern(200_000);
    w.a_writes(&data, 0, 20, Duration::from_millis(50));
    let now = w.now;
    let b = w.b.as_mut().unwrap();
    // Fill what is left of the window (less than a segment: A's sender SWS
    // avoidance keeps it from sending that little).
    let left = b.rcv.adv.since(b.rcv.nxt);
    let fill = from_peer(b, 0, crate::Flags::ACK);
    b.handle_segment(now, &fill, &vec![9u8; left]);
    assert_eq!(b.rcv.adv, b.rcv.nxt, "B's window is closed");
    let fin = from_peer(b, 0, crate::Flags::FIN | crate::Flags::ACK);
    b.handle_segment(now, &fin, &[]);
    assert_eq!(b.state(), State::CloseWait);
}

#[test]
fn quickack_sends_the_pending_ack_and_acks_the_next_segments_at_once() {
    let mut w = Wire::new(cfg(), cfg());
    w.established();
    let before = w.sent_b.len();
    w.a.send(b"one").unwrap();
    w.run(Duration::from_millis(10));
    assert_eq!(w.sent_b.len(), before, "ACK delayed");
    let now = w.now;
    w.b().set_quickack(now, true);
    assert!(w.b().quickack());
    w.round();
    assert_eq!(w.sent_b.len(), before + 1, "the pending ACK at once");
    // The next segments are acknowledged on arrival.
    for i in 0..3 {
        let before = w.sent_b.len();
        w.a.send(b"two").unwrap();
        w.run(Duration::from_millis(12));
        assert_eq!(w.sent_b.len(), before + 1, "segment {i}: immediate ACK");
    }
    // Off: delayed again.
    let now = w.now;
    w.b().set_quickack(now, false);
    assert!(!w.b().quickack());
    let before = w.sent_b.len();
    w.a.send(b"three").unwrap();
    w.run(Duration::from_millis(20));
    assert_eq!(w.sent_b.len(), before, "delayed after quickack off");
    w.run(Duration::from_millis(40));
    assert_eq!(w.sent_b.len(), before + 1);
}

#[test]
fn quickack_mode_ends_after_its_segments() {
    let mut w = Wire::new(cfg(), cfg());
    w.established();
    let now = w.now;
    w.b().set_quickack(now, true);
    for _ in 0..QUICKACK_SEGMENTS {
        w.a.send(b"q").unwrap();
        w.run(Duration::from_millis(12));
    }
    assert!(!w.b().quickack(), "mode used up");
    let before = w.sent_b.len();
    w.a.send(b"later").unwrap();
    w.run(Duration::from_millis(20));
    assert_eq!(w.sent_b.len(), before, "delayed again");
}

#[test]
fn the_send_buffer_follows_snd_una_past_two_gib_sent() {
    // Sequence numbers compare modulo 2^32: once more than 2^31 bytes were
    // acknowledged, SND.UNA is "before" ISS + 1. The send buffer must
    // still start at SND.UNA (a connection stalled after 2 GiB when it
    // did not).
    let mut w = Wire::new(cfg(), cfg());
    w.established();
    let iss = w.a.snd.iss;
    assert_eq!(w.a.send_buf_seq(), iss + 1);
    for sent in [(1usize << 31) - 1, 1 << 31, (1 << 31) + 1460, (3 << 30) + 7] {
        let una = iss + 1 + sent;
        w.a.snd.una = una;
        w.a.snd.nxt = una;
        assert_eq!(w.a.send_buf_seq(), una, "after {sent} bytes");
        assert_eq!(w.a.data_end(), una + w.a.snd.buf.len());
    }
}
