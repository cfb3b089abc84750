//! Closing: orderly and simultaneous close, half close, TIME-WAIT, FIN-
//! WAIT-2, resets on close.

use super::*;

#[test]
fn data_both_ways_and_orderly_close() {
    let mut w = Wire::new(cfg(), cfg());
    w.established();
    let data = pattern(200_000);
    transfer(&mut w, &data, Duration::from_secs(10));
    w.b().send(b"reply").unwrap();
    w.run(Duration::from_millis(100));
    let mut buf = [0u8; 16];
    assert_eq!(w.a.recv(&mut buf), Ok(5));
    // A closes first: FIN-WAIT-1 -> FIN-WAIT-2 -> TIME-WAIT; B: CLOSE-WAIT
    // -> LAST-ACK -> CLOSED.
    w.a.close(w.now);
    w.run(Duration::from_millis(100));
    assert_eq!(w.a.state(), State::FinWait2);
    assert_eq!(w.b().state(), State::CloseWait);
    assert_eq!(w.b().recv(&mut buf), Ok(0), "end of stream");
    let now = w.now;
    w.b().close(now);
    w.run(Duration::from_millis(100));
    assert_eq!(w.b().state(), State::Closed);
    assert_eq!(w.b().error(), None);
    assert_eq!(w.a.state(), State::TimeWait);
    // TIME-WAIT lasts 2*MSL (60 s by default).
    w.run(Duration::from_secs(59));
    assert_eq!(w.a.state(), State::TimeWait);
    w.run(Duration::from_secs(2));
    assert_eq!(w.a.state(), State::Closed);
}

#[test]
fn simultaneous_close_goes_through_closing() {
    let mut w = Wire::new(cfg(), cfg());
    w.established();
    let now = w.now;
    w.a.close(now);
    w.b().close(now);
    w.run(Duration::from_millis(2)); // FINs in flight, not yet delivered
    assert_eq!(w.a.state(), State::FinWait1);
    w.run(Duration::from_millis(4)); // each receives the other's FIN first
    assert!(matches!(w.a.state(), State::Closing | State::TimeWait));
    w.run(Duration::from_millis(50));
    assert_eq!(w.a.state(), State::TimeWait);
    assert_eq!(w.b().state(), State::TimeWait);
}

#[test]
fn half_close_still_receives() {
    let mut w = Wire::new(cfg(), cfg());
    w.established();
    w.a.shutdown_write();
    w.run(Duration::from_millis(50));
    assert_eq!(w.a.state(), State::FinWait2);
    assert_eq!(w.a.send(b"late"), Err(TcpError::Closed));
    let reply = pattern(100_000);
    let mut got = Vec::new();
    let mut off = 0;
    for _ in 0..200 {
        if off < reply.len() {
            off += w.b().send(&reply[off..]).unwrap_or(0);
        }
        w.run(Duration::from_millis(10));
        let mut buf = [0u8; 65536];
        while let Ok(n) = w.a.recv(&mut buf) {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
    }
    assert_eq!(got, reply);
}

#[test]
fn time_wait_restarts_on_retransmitted_fin_and_allows_new_syn() {
    let mut w = Wire::new(cfg(), cfg());
    w.established();
    let now = w.now;
    w.a.close(now);
    w.run(Duration::from_millis(50));
    let now = w.now;
    w.b().close(now);
    w.run(Duration::from_millis(50));
    assert_eq!(w.a.state(), State::TimeWait);
    let fin = w
        .sent_b
        .iter()
        .rev()
        .find(|(r, _)| r.flags.fin())
        .unwrap()
        .0;
    w.run(Duration::from_secs(50));
    let mut fin2 = fin;
    fin2.options.timestamps = fin.options.timestamps.map(|(v, e)| (v + 50_000, e));
    w.a.handle_segment(w.now, &fin2, &[]);
    assert!(w.a.rcv.ack_now, "re-acknowledged");
    w.run(Duration::from_secs(50));
    assert_eq!(w.a.state(), State::TimeWait, "timer restarted");
    // A new SYN with a higher timestamp may reopen the pair.
    let mut syn = w.sent_a[0].0;
    syn.src_port = B.port();
    syn.dst_port = A.port();
    syn.options.timestamps = Some((fin2.options.timestamps.unwrap().0 + 1, 0));
    assert_eq!(w.a.handle_segment(w.now, &syn, &[]), Input::Reincarnate);
    w.run(Duration::from_secs(11));
    assert_eq!(w.a.state(), State::Closed);
}

#[test]
fn close_with_unread_data_resets() {
    let mut w = Wire::new(cfg(), cfg());
    w.b_reads = false;
    w.established();
    w.a.send(b"unread").unwrap();
    w.run(Duration::from_millis(50));
    let now = w.now;
    w.b().close(now);
    w.run(Duration::from_millis(50));
    assert_eq!(w.a.error(), Some(TcpError::Reset));
    assert!(w.sent_b.last().unwrap().0.flags.rst());
}

#[test]
fn data_after_close_is_answered_with_a_reset() {
    let mut w = Wire::new(cfg(), cfg());
    w.established();
    let now = w.now;
    w.a.close(now);
    w.run(Duration::from_millis(20));
    assert_eq!(w.a.state(), State::FinWait2);
    // The peer keeps sending: nobody will ever read it.
    w.b().send(b"too late").unwrap();
    w.run(Duration::from_millis(20));
    assert_eq!(w.a.state(), State::Closed);
    assert_eq!(w.a.take_alarms().reset_on_data_after_close, 1);
    assert!(w.sent_a.last().unwrap().0.flags.rst());
    // B had A's FIN (CLOSE-WAIT): Linux reports that reset as EPIPE.
    assert_eq!(w.b().error(), Some(TcpError::ResetAfterFin));
}

#[test]
fn the_fin_wait_2_timeout_sends_nothing() {
    let quick = TcpConfig {
        fin_wait2_timeout: Duration::from_secs(5),
        ..cfg()
    };
    let mut w = Wire::new(quick, cfg());
    w.established();
    let now = w.now;
    w.a.close(now);
    w.run(Duration::from_millis(50));
    assert_eq!(w.a.state(), State::FinWait2);
    let sent = w.sent_a.len();
    w.run(Duration::from_secs(10));
    assert_eq!(w.a.state(), State::Closed);
    assert_eq!(
        w.sent_a.len(),
        sent,
        "no segment the peer could take for a FIN or an ACK of one"
    );
}

#[test]
fn time_wait_frees_buffers_and_its_record_answers_a_retransmitted_fin() {
    let mut w = Wire::new(cfg(), cfg());
    w.established();
    transfer(&mut w, &pattern(100_000), Duration::from_secs(5));
    let now = w.now;
    w.a.close(now);
    w.run(Duration::from_millis(20));
    let now = w.now;
    w.b().close(now);
    w.run(Duration::from_millis(20));
    assert_eq!(w.a.state(), State::TimeWait);
    w.a.release_unneeded_buffers();
    assert_eq!(
        w.a.memory_used(),
        std::mem::size_of::<Connection>() + w.a.sack_scratch.capacity() * 16,
        "no ring left in TIME-WAIT"
    );
    let mut tw = w.a.time_wait_record(w.now).expect("in TIME-WAIT");
    let b = w.b.as_ref().unwrap();
    let mut fin = w
        .sent_b
        .iter()
        .rev()
        .find(|(r, _)| r.flags.fin())
        .unwrap()
        .0;
    fin.options.timestamps = fin.options.timestamps.map(|(v, e)| (v + 5, e));
    let later = w.now + Duration::from_secs(10);
    match tw.handle_segment(later, &fin, 0) {
        crate::TimeWaitInput::Ack(ack) => {
            assert_eq!(ack.ack, b.snd.nxt);
            assert_eq!(ack.seq, w.a.snd.nxt);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(tw.expires(), later + 2 * cfg().msl);
}

#[test]
fn a_reset_in_close_wait_is_a_broken_pipe_not_a_reset() {
    let mut w = Wire::new(cfg(), cfg());
    w.established();
    w.b().shutdown_write();
    w.run(Duration::from_millis(50));
    assert_eq!(w.a.state(), State::CloseWait);
    let mut rst = w.a.make_rst(w.a.rcv.nxt);
    rst.src_port = B.port();
    rst.dst_port = A.port();
    w.a.handle_segment(w.now, &rst, &[]);
    assert_eq!(w.a.state(), State::Closed);
    assert_eq!(w.a.error(), Some(TcpError::ResetAfterFin));
    assert_eq!(w.a.send(b"x"), Err(TcpError::ResetAfterFin));
}
