use super::*;
use std::net::Ipv4Addr;

const L: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 80);
const R: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 40000);

fn record(now: Instant, ts: bool) -> TimeWait {
    TimeWait {
        local: L,
        remote: R,
        snd_nxt: SeqNum(5000),
        rcv_nxt: SeqNum(9000),
        window: 100,
        ts_recent: ts.then_some((1000, now)),
        ts_offset: 0,
        epoch: now,
        expires: now + Duration::from_secs(60),
        msl2: Duration::from_secs(60),
        oow_interval: Duration::from_millis(500),
        last_oow_ack: None,
        tos: 0,
        reuse_addr: false,
    }
}

fn seg(seq: u32, flags: u8, ts: Option<u32>) -> TcpRepr {
    TcpRepr {
        src_port: R.port(),
        dst_port: L.port(),
        seq: SeqNum(seq),
        ack: SeqNum(5000),
        flags: Flags(flags),
        window: 1000,
        options: TcpOptions {
            timestamps: ts.map(|v| (v, 0)),
            ..TcpOptions::default()
        },
        urgent: 0,
    }
}

#[test]
fn retransmitted_fin_is_acked_and_restarts_the_timer() {
    let t0 = Instant::now();
    let mut tw = record(t0, true);
    let later = t0 + Duration::from_secs(30);
    let r = tw.handle_segment(later, &seg(8999, Flags::FIN | Flags::ACK, Some(1500)), 0);
    let TimeWaitInput::Ack(ack) = r else {
        panic!("{r:?}")
    };
    assert_eq!((ack.seq, ack.ack), (SeqNum(5000), SeqNum(9000)));
    assert_eq!(ack.options.timestamps.map(|t| t.1), Some(1500));
    assert_eq!(tw.expires(), later + Duration::from_secs(60));
}

#[test]
fn a_fin_failing_paws_or_the_sequence_check_does_not_restart_the_timer() {
    let t0 = Instant::now();
    let mut tw = record(t0, true);
    let later = t0 + Duration::from_secs(30);
    // Old timestamp.
    tw.handle_segment(later, &seg(8999, Flags::FIN | Flags::ACK, Some(900)), 0);
    // Wrong sequence number.
    tw.handle_segment(later, &seg(12345, Flags::FIN | Flags::ACK, Some(1500)), 0);
    // No timestamp although they are in use.
    tw.handle_segment(later, &seg(8999, Flags::FIN | Flags::ACK, None), 0);
    assert_eq!(tw.expires(), t0 + Duration::from_secs(60));
}

#[test]
fn rst_is_ignored_rfc_1337() {
    let t0 = Instant::now();
    let mut tw = record(t0, false);
    assert_eq!(
        tw.handle_segment(t0, &seg(9000, Flags::RST, None), 0),
        TimeWaitInput::Drop
    );
    assert_eq!(tw.expires(), t0 + Duration::from_secs(60));
}

#[test]
fn junk_is_answered_at_most_once_per_interval() {
    let t0 = Instant::now();
    let mut tw = record(t0, false);
    let mut acks = 0;
    for i in 0..1000u32 {
        let now = t0 + Duration::from_millis(i as u64);
        if let TimeWaitInput::Ack(_) =
            tw.handle_segment(now, &seg(77_000 + i, Flags::ACK, None), 10)
        {
            acks += 1;
        }
    }
    assert_eq!(acks, 2, "one per 500 ms over one second");
}

#[test]
fn a_newer_syn_reincarnates_and_an_older_one_does_not() {
    let t0 = Instant::now();
    let mut tw = record(t0, true);
    assert_eq!(
        tw.handle_segment(t0, &seg(100, Flags::SYN, Some(2000)), 0),
        TimeWaitInput::Reincarnate,
        "newer timestamp, whatever the sequence number"
    );
    assert!(matches!(
        tw.handle_segment(t0, &seg(100, Flags::SYN, Some(999)), 0),
        TimeWaitInput::Ack(_)
    ));
    let mut tw = record(t0, false);
    assert_eq!(
        tw.handle_segment(t0, &seg(9500, Flags::SYN, None), 0),
        TimeWaitInput::Reincarnate
    );
    assert!(matches!(
        tw.handle_segment(t0, &seg(8000, Flags::SYN, None), 0),
        TimeWaitInput::Ack(_)
    ));
}
