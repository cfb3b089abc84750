//! RFC 5961 protections, PAWS, and every state against stray segments.

use super::*;

#[test]
fn rst_exact_sequence_resets_and_other_in_window_rst_gets_challenge_ack() {
    let mut w = Wire::new(cfg(), cfg());
    w.established();
    let rcv_nxt = w.a.rcv.nxt;
    let mut rst = w.a.make_rst(rcv_nxt + 100);
    rst.src_port = B.port();
    rst.dst_port = A.port();
    let before = w.a.stats().challenge_acks;
    w.a.handle_segment(w.now, &rst, &[]);
    assert_eq!(w.a.state(), State::Established, "in window but not exact");
    assert_eq!(w.a.stats().challenge_acks, before + 1);
    assert!(w.a.rcv.ack_now);
    // Far out of window: dropped (with an ACK), no challenge.
    rst.seq = rcv_nxt + 10_000_000;
    w.a.handle_segment(w.now, &rst, &[]);
    assert_eq!(w.a.state(), State::Established);
    rst.seq = rcv_nxt;
    w.a.handle_segment(w.now, &rst, &[]);
    assert_eq!(w.a.state(), State::Closed);
    assert_eq!(w.a.error(), Some(TcpError::Reset));
    let mut buf = [0u8; 4];
    assert_eq!(w.a.recv(&mut buf), Err(TcpError::Reset));
    assert_eq!(w.a.send(b"x"), Err(TcpError::Reset));
}

#[test]
fn syn_in_established_gets_challenge_ack_and_is_rate_limited() {
    let mut w = Wire::new(cfg(), cfg());
    w.established();
    let mut syn = w.sent_a[0].0;
    syn.src_port = B.port();
    syn.dst_port = A.port();
    syn.options.timestamps = Some((u32::MAX / 2, 0));
    // 50 SYNs over one second: RFC 5961 7 throttling lets one challenge
    // ACK out per 500 ms (Linux tcp_invalid_ratelimit).
    let t0 = w.now;
    for i in 0..50 {
        w.a.handle_segment(t0 + Duration::from_millis(20 * i), &syn, &[]);
    }
    assert_eq!(w.a.state(), State::Established);
    assert_eq!(w.a.stats().challenge_acks, 2, "one per 500 ms");
    assert_eq!(w.a.take_alarms().acks_throttled, 48);
}

#[test]
fn unacceptable_segments_share_one_ack_allowance() {
    // Out of window, failing PAWS, acknowledging unsent data, RST in the
    // window: all answered from one allowance of one ACK per 500 ms.
    let mut w = Wire::new(cfg(), cfg());
    w.established();
    let t0 = w.now + Duration::from_secs(1);
    let c = &mut w.a;
    let mut acks = 0;
    let mut out_of_window = from_peer(c, 1 << 30, crate::Flags::ACK);
    let mut old_ts = from_peer(c, 0, crate::Flags::ACK);
    old_ts.options.timestamps = old_ts
        .options
        .timestamps
        .map(|(v, e)| (v.wrapping_sub(1000), e));
    let mut unsent = from_peer(c, 0, crate::Flags::ACK);
    unsent.ack = c.snd.nxt + 100_000;
    let rst = from_peer(c, 10, crate::Flags::RST);
    for i in 0..400u64 {
        let now = t0 + Duration::from_millis(i * 5);
        let seg = [&out_of_window, &old_ts, &unsent, &rst][i as usize % 4];
        c.handle_segment(now, seg, &[]);
        if c.rcv.ack_now {
            acks += 1;
            c.rcv.ack_now = false;
        }
    }
    assert_eq!(acks, 4, "two seconds, one ACK per 500 ms");
    // A data segment outside the window is answered regardless (its
    // D-SACK matters; it cannot be part of an ACK loop).
    out_of_window.seq = c.rcv.nxt - 100;
    c.handle_segment(t0 + Duration::from_millis(2001), &out_of_window, &[1; 50]);
    assert!(c.rcv.ack_now);
}

#[test]
fn ack_of_unsent_data_is_answered_and_ignored() {
    let mut w = Wire::new(cfg(), cfg());
    w.established();
    let mut seg = w.sent_b.last().unwrap().0;
    seg.ack = w.a.snd.nxt + 5000;
    seg.options.timestamps = w.sent_b.last().unwrap().0.options.timestamps;
    let una = w.a.snd.una;
    w.a.handle_segment(w.now, &seg, b"data that must not be accepted");
    assert_eq!(w.a.snd.una, una);
    assert!(w.a.rcv.ack_now);
    assert_eq!(w.a.recv_queued(), 0);
}

#[test]
fn paws_drops_old_timestamps() {
    let mut w = Wire::new(cfg(), cfg());
    w.established();
    w.b().send(b"fresh").unwrap();
    w.run(Duration::from_millis(50));
    let (mut old, _) = w.sent_b.last().unwrap().clone();
    old.options.timestamps = old
        .options
        .timestamps
        .map(|(v, e)| (v.wrapping_sub(1_000_000), e));
    old.seq = w.a.rcv.nxt;
    w.a.handle_segment(w.now, &old, b"stale");
    assert_eq!(w.a.stats().paws_drops, 1);
    assert_eq!(w.a.recv_queued(), 5, "only the fresh data");
}

#[test]
fn every_state_handles_rst_syn_fin_and_out_of_window_segments() {
    use crate::Flags as F;
    let states = [
        State::SynReceived,
        State::Established,
        State::FinWait1,
        State::FinWait2,
        State::CloseWait,
        State::Closing,
        State::LastAck,
        State::TimeWait,
    ];
    for st in states {
        let now = Instant::now() + Duration::from_secs(1);
        // RST exactly at RCV.NXT: the connection ends (in TIME-WAIT it is
        // ignored, RFC 1337).
        let mut c = in_state(st);
        assert_eq!(c.state(), st, "recipe for {st:?}");
        c.handle_segment(now, &from_peer(&c, 0, F::RST), &[]);
        if st == State::TimeWait {
            assert_eq!(c.state(), State::TimeWait, "RFC 1337");
            continue;
        }
        assert_eq!(c.state(), State::Closed, "{st:?}: exact RST");
        let expect = match st {
            State::Established | State::FinWait1 | State::FinWait2 => Some(TcpError::Reset),
            // Linux tcp_reset: EPIPE in CLOSE-WAIT.
            State::CloseWait => Some(TcpError::ResetAfterFin),
            _ => None,
        };
        assert_eq!(c.error(), expect, "{st:?}: error after RST");

        // RST in the window but not exact: challenge ACK, nothing else.
        let mut c = in_state(st);
        let before = c.stats().challenge_acks;
        c.handle_segment(now, &from_peer(&c, 10, F::RST | F::ACK), &[]);
        assert_eq!(c.state(), st, "{st:?}: in-window RST");
        assert_eq!(
            c.stats().challenge_acks,
            before + 1,
            "{st:?}: challenge ACK"
        );

        // RST far outside the window: dropped silently.
        let mut c = in_state(st);
        c.rcv.ack_now = false;
        c.handle_segment(now, &from_peer(&c, 1 << 30, F::RST), &[]);
        assert_eq!(c.state(), st, "{st:?}: out-of-window RST");
        assert!(!c.rcv.ack_now, "{st:?}: no reply to a bad RST");

        // SYN: challenge ACK (RFC 5961 4), state unchanged.
        let mut c = in_state(st);
        let before = c.stats().challenge_acks;
        c.handle_segment(now, &from_peer(&c, 5, F::SYN), &[]);
        assert_eq!(c.state(), st, "{st:?}: SYN");
        if st != State::TimeWait {
            assert_eq!(
                c.stats().challenge_acks,
                before + 1,
                "{st:?}: SYN challenged"
            );
        }

        // Data outside the window: an ACK, no data.
        let mut c = in_state(st);
        c.rcv.ack_now = false;
        c.handle_segment(now, &from_peer(&c, 1 << 30, F::ACK), b"outside");
        assert_eq!(c.state(), st, "{st:?}: out-of-window data");
        assert!(c.rcv.ack_now, "{st:?}: ACK for an unacceptable segment");
        assert_eq!(c.recv_queued(), 0);

        // FIN in order.
        let mut c = in_state(st);
        let expect = match st {
            State::SynReceived => State::SynReceived, // FIN without ACK of our SYN
            State::Established => State::CloseWait,
            State::FinWait1 => State::Closing,
            State::FinWait2 => State::TimeWait,
            other => other, // the FIN was already received
        };
        let off = if matches!(
            st,
            State::CloseWait | State::Closing | State::LastAck | State::TimeWait
        ) {
            -1 // a retransmission of the FIN already consumed
        } else {
            0
        };
        let flags = if st == State::SynReceived {
            F::FIN
        } else {
            F::FIN | F::ACK
        };
        let mut fin = from_peer(&c, off, flags);
        if st == State::FinWait1 {
            fin.ack = c.snd.una; // our FIN not acknowledged yet: CLOSING
        }
        c.handle_segment(now, &fin, &[]);
        assert_eq!(c.state(), expect, "{st:?}: FIN");
        if st == State::FinWait1 {
            // The same FIN acknowledging ours goes straight to TIME-WAIT
            // ("If our FIN has been ACKed (perhaps in this segment)").
            let mut c = in_state(st);
            c.handle_segment(now, &from_peer(&c, 0, F::FIN | F::ACK), &[]);
            assert_eq!(c.state(), State::TimeWait);
        }
    }
}

#[test]
fn segments_without_timestamps_are_accepted_and_counted() {
    let mut w = Wire::new(cfg(), cfg());
    w.established();
    let now = w.now;
    let b = w.b.as_mut().unwrap();
    let mut seg = from_peer(b, 0, crate::Flags::ACK | crate::Flags::PSH);
    seg.options.timestamps = None;
    b.handle_segment(now, &seg, b"stripped");
    assert_eq!(b.recv_queued(), 8, "a middlebox stripped the option");
    assert_eq!(b.stats().timestamps_missing, 1);
}
