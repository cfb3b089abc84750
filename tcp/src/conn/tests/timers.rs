//! Timers: retransmission back-off, the user timeout, keep-alives,
//! zero-window probes, orphans.

use super::*;

#[test]
fn zero_window_is_probed_and_reopens() {
    let mut w = Wire::new(cfg(), cfg());
    w.b_reads = false;
    w.established();
    let data = pattern(150_000);
    let mut off = w.a_writes(&data, 0, 100, Duration::from_millis(100));
    // B's 64 KiB buffer is full; A probes the zero window with backoff.
    assert_eq!(w.a.snd.wnd, 0);
    let probes = w.a.stats().zero_window_probes;
    assert!(probes >= 3, "probes: {probes}");
    w.run(Duration::from_secs(10));
    let later = w.a.stats().zero_window_probes;
    assert!(
        later - probes < 10,
        "backoff keeps probes rare: {}",
        later - probes
    );
    // The application reads: a window update reopens the flow.
    w.b_reads = true;
    while w.b_rx.len() < data.len() {
        off += w.a.send(&data[off..]).unwrap_or(0);
        w.run(Duration::from_millis(50));
        assert!(
            w.now < w.a.ts.epoch + Duration::from_secs(120),
            "never reopened"
        );
    }
    assert_eq!(w.b_rx, data);
}

#[test]
fn retransmissions_back_off_then_user_timeout_aborts() {
    let short = TcpConfig {
        user_timeout: Duration::from_secs(30),
        ..cfg()
    };
    let mut w = Wire::new(short, cfg());
    w.established();
    // B vanishes.
    w.filter_a = Box::new(|_, _, _| Fate::Drop);
    let start = w.sent_a.len();
    w.a.send(b"hello?").unwrap();
    w.run(Duration::from_secs(40));
    assert_eq!(w.a.state(), State::Closed);
    assert_eq!(w.a.error(), Some(TcpError::TimedOut));
    let times: Vec<u32> = w.sent_a[start..]
        .iter()
        .filter(|(_, p)| p == b"hello?")
        .map(|(r, _)| r.options.timestamps.unwrap().0)
        .collect();
    assert!(times.len() >= 4, "retransmitted: {times:?}");
    let gaps: Vec<u32> = times.windows(2).map(|p| p[1] - p[0]).collect();
    // The first resend is the tail loss probe, sent when the RTO would
    // have fired (RFC 8985 7.2); the timeouts back off from there.
    for g in gaps[1..].windows(2) {
        assert!(g[1] >= g[0] * 2 - 2, "exponential backoff: {gaps:?}");
    }
    // The last segment A sent is a RST.
    assert!(w.sent_a.last().unwrap().0.flags.rst());
}

#[test]
fn keepalive_probes_and_gives_up() {
    let ka = crate::Keepalive {
        idle: Duration::from_secs(10),
        interval: Duration::from_secs(2),
        probes: 3,
    };
    let c = TcpConfig {
        keepalive: Some(ka),
        ..cfg()
    };
    let mut w = Wire::new(c, cfg());
    w.established();
    w.run(Duration::from_secs(30));
    assert_eq!(
        w.a.state(),
        State::Established,
        "the live peer answers probes"
    );
    w.filter_b = Box::new(|_, _, _| Fate::Drop);
    w.run(Duration::from_secs(30));
    assert_eq!(w.a.error(), Some(TcpError::TimedOut));
}

#[test]
fn an_orphan_gives_up_on_a_window_that_never_opens() {
    let mut w = Wire::new(cfg(), cfg());
    w.b_reads = false;
    w.established();
    let data = pattern(200_000);
    w.a_writes(&data, 0, 20, Duration::from_millis(100));
    assert_eq!(w.a.snd.wnd, 0);
    let now = w.now;
    w.a.close(now);
    w.run(Duration::from_secs(3600));
    assert_eq!(w.a.state(), State::Closed, "gave up");
    assert_eq!(w.a.error(), Some(TcpError::TimedOut));
    assert!(w.a.stats().zero_window_probes <= u64::from(cfg().orphan_retries) + 3);
    assert_eq!(w.a.take_alarms().orphan_gave_up, 1);
    assert_eq!(w.b().error(), Some(TcpError::Reset), "the peer is told");
}

#[test]
fn the_user_timeout_applies_while_the_window_stays_closed() {
    let quick = TcpConfig {
        user_timeout: Duration::from_secs(30),
        ..cfg()
    };
    let mut w = Wire::new(quick, cfg());
    w.b_reads = false;
    w.established();
    let data = pattern(200_000);
    let mut off = 0;
    while w.a.state() == State::Established && w.now < w.a.ts.epoch + Duration::from_secs(120) {
        off += w.a.send(&data[off..]).unwrap_or(0);
        w.run(Duration::from_millis(500));
    }
    // The peer answers every probe, yet the window stays shut.
    assert_eq!(w.a.error(), Some(TcpError::TimedOut));
    let took = w.now.saturating_duration_since(w.a.ts.epoch);
    assert!(took < Duration::from_secs(40), "{took:?}");
    assert_eq!(w.a.take_alarms().persist_timed_out, 1);
}

#[test]
fn keep_alive_probes_in_close_wait_and_gives_up() {
    let ka = TcpConfig {
        keepalive: Some(crate::Keepalive {
            idle: Duration::from_secs(10),
            interval: Duration::from_secs(1),
            probes: 3,
        }),
        ..cfg()
    };
    let mut w = Wire::new(ka, cfg());
    w.established();
    let now = w.now;
    w.b().close(now);
    w.run(Duration::from_millis(100));
    assert_eq!(w.a.state(), State::CloseWait);
    // B vanishes.
    w.filter_b = Box::new(|_, _, _| Fate::Drop);
    w.filter_a = Box::new(|_, _, _| Fate::Drop);
    w.run(Duration::from_secs(30));
    assert_eq!(w.a.error(), Some(TcpError::TimedOut));
}

#[test]
fn per_connection_user_timeout() {
    let mut w = Wire::new(cfg(), cfg());
    w.established();
    assert_eq!(w.a.user_timeout(), Duration::ZERO);
    assert_eq!(w.a.config().user_timeout, cfg().user_timeout);
    w.a.set_user_timeout(Duration::from_secs(3));
    assert_eq!(w.a.user_timeout(), Duration::from_secs(3));
    w.filter_a = Box::new(|_, _, _| Fate::Drop);
    w.a.send(b"lost").unwrap();
    w.run(Duration::from_millis(2900));
    assert_eq!(w.a.state(), State::Established, "not before 3 s");
    w.run(Duration::from_millis(200));
    assert_eq!(w.a.state(), State::Closed, "after 3 s, not 300 s");
    assert_eq!(w.a.error(), Some(TcpError::TimedOut));
    assert!(w.sent_a.last().unwrap().0.flags.rst());
    // Zero returns to the default (here 300 s): nothing gives up early.
    let mut w = Wire::new(cfg(), cfg());
    w.established();
    w.a.set_user_timeout(Duration::from_secs(3));
    w.a.set_user_timeout(Duration::ZERO);
    assert_eq!(w.a.user_timeout(), Duration::ZERO);
    w.filter_a = Box::new(|_, _, _| Fate::Drop);
    w.a.send(b"lost").unwrap();
    w.run(Duration::from_secs(10));
    assert_eq!(w.a.state(), State::Established);
}

#[test]
fn a_new_keepalive_idle_time_counts_from_the_last_segment_received() {
    let mut w = Wire::new(cfg(), cfg());
    w.established();
    w.run(Duration::from_secs(5));
    let last = w.a.last_rcvd_at;
    assert!(w.now >= last + Duration::from_secs(5), "idle for 5 s");
    let ka = crate::Keepalive {
        idle: Duration::from_secs(60),
        interval: Duration::from_secs(5),
        probes: 3,
    };
    // SO_KEEPALIVE on: the idle time runs from now.
    let now = w.now;
    w.a.set_keepalive(now, Some(ka));
    assert_eq!(w.a.timers.get(Timer::KeepAlive), Some(now + ka.idle));
    // TCP_KEEPIDLE changed: from the last segment received, as Linux.
    let shorter = crate::Keepalive {
        idle: Duration::from_secs(8),
        ..ka
    };
    w.a.set_keepalive(now, Some(shorter));
    assert_eq!(w.a.timers.get(Timer::KeepAlive), Some(last + shorter.idle));
    // Already past: the timer fires at once.
    w.a.set_keepalive(
        now,
        Some(crate::Keepalive {
            idle: Duration::from_secs(1),
            ..ka
        }),
    );
    assert_eq!(w.a.timers.get(Timer::KeepAlive), Some(now));
    // TCP_KEEPINTVL or TCP_KEEPCNT alone leave the timer be.
    let armed = w.a.timers.get(Timer::KeepAlive);
    w.a.set_keepalive(
        now,
        Some(crate::Keepalive {
            idle: Duration::from_secs(1),
            interval: Duration::from_secs(9),
            probes: 7,
        }),
    );
    assert_eq!(w.a.timers.get(Timer::KeepAlive), armed);
    w.a.set_keepalive(now, None);
    assert_eq!(w.a.timers.get(Timer::KeepAlive), None);
}
