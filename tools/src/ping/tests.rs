use super::*;

#[test]
fn summary_like_iputils() {
    let tally = Tally {
        transmitted: 3,
        received: 2,
        duplicates: 0,
        rtts: vec![Duration::from_micros(100), Duration::from_micros(300)],
    };
    assert_eq!(
        tally.summary("10.0.0.1", Duration::from_millis(2003)),
        "\n--- 10.0.0.1 ping statistics ---\n\
         3 packets transmitted, 2 received, 33.3333% packet loss, time 2003ms\n\
         rtt min/avg/max/mdev = 0.100/0.200/0.300/0.100 ms\n"
    );
    let none = Tally {
        transmitted: 2,
        ..Tally::default()
    };
    assert_eq!(
        none.summary("h", Duration::from_millis(1000)),
        "\n--- h ping statistics ---\n\
         2 packets transmitted, 0 received, 100% packet loss, time 1000ms\n"
    );
}

#[test]
fn rtt_formats() {
    assert_eq!(format_rtt(Duration::from_micros(123)), "0.123");
    assert_eq!(format_rtt(Duration::from_micros(4_567)), "4.57");
    assert_eq!(format_rtt(Duration::from_micros(45_670)), "45.7");
    assert_eq!(format_rtt(Duration::from_micros(456_700)), "457");
    assert_eq!(payload(3), vec![8, 9, 10]);
}

#[test]
fn pings_another_stack() {
    let (a, b) = sockets_api::StackBuilder::memory_pair(
        sockets_api::StackBuilder::memory().addr("10.9.0.1/24".parse().unwrap()),
        sockets_api::StackBuilder::memory()
            .addr("10.9.0.2/24".parse().unwrap())
            .ttl(33),
    )
    .unwrap();
    let sock = PingSocket::open(&a).unwrap();
    let args = PingArgs {
        host: "10.9.0.2".into(),
        count: Some(3),
        size: 100,
        interval: Duration::from_millis(20),
        timeout: Duration::from_secs(2),
        stack: crate::args::StackArgs::for_tests(),
    };
    let data = payload(100);
    let tally = pinger(&sock, Ipv4Addr::new(10, 9, 0, 2), &data, &args).unwrap();
    assert_eq!((tally.transmitted, tally.received), (3, 3));
    // Nobody there: all lost after the timeout.
    let args = PingArgs {
        count: Some(1),
        timeout: Duration::from_millis(300),
        ..args
    };
    let tally = pinger(&sock, Ipv4Addr::new(10, 9, 0, 99), &data, &args).unwrap();
    assert_eq!((tally.transmitted, tally.received), (1, 0));
    a.stop();
    b.stop();
}
