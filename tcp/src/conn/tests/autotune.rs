//! Buffer autotuning: the send buffer grows with the congestion window
//! while the writer fills it (Linux's `tcp_sndbuf_expand`), up to
//! `send_buffer_max`, and not when the application chose its size, when
//! memory is short, or when the window itself is full.

use super::*;

/// A writer that keeps the buffer full on a path whose window outgrows
/// it: 10 ms round trips, a 1 MB receive window.
fn bulk(send_buffer: usize, send_buffer_max: usize) -> Wire {
    let a = TcpConfig {
        send_buffer,
        send_buffer_max,
        ..cfg()
    };
    let b = TcpConfig {
        recv_buffer: 1 << 20,
        ..cfg()
    };
    let mut w = Wire::new(a, b);
    w.established();
    w
}

#[test]
fn the_send_buffer_grows_with_the_window_up_to_its_bound() {
    let mut w = bulk(32 * 1024, 512 * 1024);
    transfer(&mut w, &pattern(4_000_000), Duration::from_secs(20));
    w.run(Duration::from_millis(100));
    let s = w.a.stats();
    assert!(s.send_buffer_grown > 0, "{s}");
    assert!(s.send_buffer > 32 * 1024, "grew: {}", s.send_buffer);
    assert!(s.send_buffer <= 512 * 1024, "bounded: {}", s.send_buffer);
    // Growth follows the window: twice cwnd for CUBIC at most.
    assert!(s.send_buffer <= 2 * s.cwnd.max(32 * 1024), "{s}");
    // The ring holds data only while there is some.
    assert_eq!(w.a.send_queued(), 0);
    assert_eq!(w.a.send_buffer_size(), s.send_buffer);
}

#[test]
fn a_size_the_application_chose_stays() {
    let mut w = bulk(32 * 1024, 512 * 1024);
    w.a.set_send_buffer(32 * 1024);
    transfer(&mut w, &pattern(1_000_000), Duration::from_secs(20));
    let s = w.a.stats();
    assert_eq!(s.send_buffer_grown, 0);
    assert_eq!(s.send_buffer, 32 * 1024);
    // The default configuration grows; one whose bound is its size does
    // not.
    let mut w = bulk(32 * 1024, 32 * 1024);
    transfer(&mut w, &pattern(1_000_000), Duration::from_secs(20));
    assert_eq!(w.a.stats().send_buffer, 32 * 1024);
}

#[test]
fn no_growth_while_memory_is_short() {
    let mut w = bulk(32 * 1024, 512 * 1024);
    w.a.set_memory_pressure(crate::MemoryPressure::Pressure);
    transfer(&mut w, &pattern(1_000_000), Duration::from_secs(20));
    assert_eq!(w.a.stats().send_buffer_grown, 0);
    assert_eq!(w.a.stats().send_buffer, 32 * 1024);
}

/// A writer that fills the buffer while the window is full: the window,
/// not the buffer, limits it, so the buffer keeps its size (Linux: "If
/// we filled the congestion window, do not expand").
#[test]
fn no_growth_while_the_window_is_full() {
    let mut w = bulk(64 * 1024, 512 * 1024);
    w.a.send(&pattern(64 * 1024)).unwrap();
    assert!(w.a.snd.nospace, "the writer filled the buffer");
    let now = w.now;
    w.a.poll_transmit(now, 1500, |_, _, _| true);
    let s = w.a.stats();
    assert_eq!(s.in_flight, s.cwnd, "the initial window is out");
    w.a.autotune_send_buffer();
    assert_eq!(w.a.stats().send_buffer_grown, 0);
    assert!(!w.a.snd.nospace, "the event was taken");
}

/// A receiver whose application keeps up, behind a sender with a large
/// buffer: 10 ms round trips.
fn reader(recv_buffer: usize, recv_buffer_max: usize) -> Wire {
    let a = TcpConfig {
        send_buffer: 4 << 20,
        ..cfg()
    };
    let b = TcpConfig {
        recv_buffer,
        recv_buffer_max,
        ..cfg()
    };
    let mut w = Wire::new(a, b);
    w.established();
    w
}

#[test]
fn the_receive_buffer_grows_with_what_the_application_reads() {
    let mut w = reader(64 * 1024, 2 << 20);
    let before = w.a.stats().snd_wnd;
    transfer(&mut w, &pattern(8_000_000), Duration::from_secs(20));
    let s = w.b().stats();
    assert!(s.recv_buffer_grown > 0, "{s}");
    assert!(s.recv_buffer > 64 * 1024, "grew: {}", s.recv_buffer);
    assert!(s.recv_buffer <= 2 << 20, "bounded: {}", s.recv_buffer);
    // The window offered grew with it.
    assert!(w.a.stats().snd_wnd > before, "{before} -> {}", w.a.stats());
    assert_eq!(w.b().config().recv_buffer, s.recv_buffer);
}

#[test]
fn the_receive_buffer_stays_for_a_chosen_size_or_a_slow_reader() {
    // SO_RCVBUF.
    let mut w = reader(64 * 1024, 2 << 20);
    w.b().set_recv_buffer(64 * 1024);
    transfer(&mut w, &pattern(2_000_000), Duration::from_secs(20));
    assert_eq!(w.b().stats().recv_buffer_grown, 0);
    assert_eq!(w.b().stats().recv_buffer, 64 * 1024);
    // An application that reads a little now and then earns nothing.
    let mut w = reader(64 * 1024, 2 << 20);
    w.b_reads = false;
    let data = pattern(2_000_000);
    let mut off = 0;
    for _ in 0..50 {
        off += w.a.send(&data[off..]).unwrap_or(0);
        w.run(Duration::from_millis(40));
        let mut buf = [0u8; 4096];
        let _ = w.b().recv(&mut buf);
    }
    assert_eq!(w.b().stats().recv_buffer_grown, 0, "{}", w.b().stats());
}
