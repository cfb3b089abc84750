//! The iperf3 protocol pieces, then the server and the client against
//! each other over two in-memory stacks, and the server against a
//! hand-driven control connection (busy server, bad parameters).

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use sockets_api::{Stack, StackBuilder, TcpStream};

use super::*;

// --- parameters ---------------------------------------------------------------

#[test]
fn parameters_of_iperf3_3_12_parse() {
    // What `iperf3 -c X -u -b 100M -P 4 -R -t 5` sends (keys in its order).
    let text = br#"{"udp":true,"omit":0,"time":5,"num":0,"blockcount":0,"parallel":4,"reverse":true,"len":1448,"bandwidth":100000000,"pacing_timer":1000,"client_version":"3.12"}"#;
    let p = TestParams::from_json(text).unwrap();
    assert_eq!(p.protocol, Protocol::Udp);
    assert_eq!(
        (p.time, p.parallel, p.len, p.bandwidth),
        (5, 4, 1448, 100_000_000)
    );
    assert!(p.reverse && !p.bidirectional && !p.udp_counters_64bit);
    assert_eq!(p.client_version.as_deref(), Some("3.12"));
    assert_eq!(p.client_roles(), vec![false; 4]);
    assert_eq!(p.rate(), 100_000_000);
}

#[test]
fn parameters_round_trip_and_defaults() {
    let p = TestParams {
        protocol: Protocol::Tcp,
        time: 3,
        parallel: 2,
        bidirectional: true,
        len: 64 * 1024,
        udp_counters_64bit: true,
        ..TestParams::default()
    };
    assert_eq!(TestParams::from_json(p.to_json().as_bytes()).unwrap(), p);
    // Bidirectional: the client's sending streams first.
    assert_eq!(p.client_roles(), vec![true, true, false, false]);
    // No len: the protocol's default block; UDP without a rate: 1 Mbit/s.
    let tcp = TestParams::from_json(br#"{"tcp":true,"time":1,"parallel":1}"#).unwrap();
    assert_eq!(tcp.len, DEFAULT_TCP_BLKSIZE);
    assert_eq!(tcp.rate(), 0);
    let udp = TestParams::from_json(br#"{"udp":true,"time":1}"#).unwrap();
    assert_eq!(
        (udp.len, udp.rate()),
        (DEFAULT_UDP_BLKSIZE, DEFAULT_UDP_RATE)
    );
}

#[test]
fn bad_parameters_are_refused_with_iperf3_error_numbers() {
    let code = |t: &[u8]| TestParams::from_json(t).unwrap_err().code;
    assert_eq!(
        code(br#"{"tcp":true,"parallel":129}"#),
        errors::IENUMSTREAMS
    );
    assert_eq!(code(br#"{"tcp":true,"parallel":0}"#), errors::IENUMSTREAMS);
    assert_eq!(code(br#"{"tcp":true,"len":2000000}"#), errors::IEBLOCKSIZE);
    assert_eq!(code(br#"{"udp":true,"len":8}"#), errors::IEUDPBLOCKSIZE);
    assert_eq!(code(br#"{"udp":true,"len":70000}"#), errors::IEUDPBLOCKSIZE);
    assert_eq!(code(br#"{"sctp":true}"#), errors::IEUNIMP);
    assert_eq!(code(br#"{"tcp":true,"time":86401}"#), errors::IERECVPARAMS);
    assert_eq!(code(br#"{"tcp":true,"time":-1}"#), errors::IERECVPARAMS);
    assert_eq!(
        code(br#"{"tcp":true,"parallel":"4"}"#),
        errors::IERECVPARAMS
    );
    assert_eq!(code(br#"[1,2]"#), errors::IERECVPARAMS);
    assert_eq!(code(b"{\"tcp\":tr"), errors::IERECVPARAMS);
    assert_eq!(code(b"\xff\xfe"), errors::IERECVPARAMS);
}

// --- results ----------------------------------------------------------------

#[test]
fn results_round_trip() {
    let r = Results {
        cpu_util_total: 12.5,
        cpu_util_user: 2.5,
        cpu_util_system: 10.0,
        sender_has_retransmits: 1,
        congestion_used: Some("cubic".into()),
        streams: vec![
            StreamResult {
                id: 1,
                bytes: 5_000_000_000,
                retransmits: 3,
                end_time: 10.0,
                ..StreamResult::default()
            },
            StreamResult {
                id: 3,
                bytes: 1448 * 10,
                retransmits: -1,
                jitter: 0.000_25,
                errors: 2,
                packets: 12,
                start_time: 0.0,
                end_time: 9.5,
            },
        ],
        server_output_text: Some("text\n".into()),
    };
    assert_eq!(Results::from_json(r.to_json().as_bytes()).unwrap(), r);
}

#[test]
fn results_lacking_what_iperf3_requires_are_refused() {
    // iperf3's client refuses results without the CPU figures or
    // sender_has_retransmits, and streams without id/bytes/...
    assert!(Results::from_json(br#"{"streams":[]}"#).is_err());
    let base = r#""cpu_util_total":1,"cpu_util_user":0.5,"cpu_util_system":0.5,"sender_has_retransmits":-1"#;
    assert!(Results::from_json(format!("{{{base}}}").as_bytes()).is_err());
    let ok = format!(
        r#"{{{base},"streams":[{{"id":1,"bytes":10,"retransmits":-1,"jitter":0,"errors":0,"packets":0}}]}}"#
    );
    let r = Results::from_json(ok.as_bytes()).unwrap();
    assert_eq!((r.streams[0].id, r.streams[0].bytes), (1, 10));
    let no_bytes = format!(
        r#"{{{base},"streams":[{{"id":1,"retransmits":-1,"jitter":0,"errors":0,"packets":0}}]}}"#
    );
    assert!(Results::from_json(no_bytes.as_bytes()).is_err());
    let negative = format!(
        r#"{{{base},"streams":[{{"id":1,"bytes":-5,"retransmits":-1,"jitter":0,"errors":0,"packets":0}}]}}"#
    );
    assert!(Results::from_json(negative.as_bytes()).is_err());
}

#[test]
fn stream_ids_skip_two_like_iperf3() {
    let ids: Vec<u32> = (0..5).map(stream_id).collect();
    assert_eq!(ids, vec![1, 3, 4, 5, 6]);
}

#[test]
fn json_length_prefix_is_bounded() {
    assert_eq!(json_length(100u32.to_be_bytes()), Ok(100));
    assert!(json_length(0u32.to_be_bytes()).is_err());
    assert!(json_length((MAX_JSON as u32 + 1).to_be_bytes()).is_err());
    assert!(json_length(u32::MAX.to_be_bytes()).is_err());
}

// --- UDP ----------------------------------------------------------------------

#[test]
fn udp_header_both_counter_sizes() {
    let h = UdpHeader {
        sec: 1_700_000_000,
        usec: 250_000,
        count: 7,
    };
    let mut buf = [0u8; 16];
    h.write(&mut buf, false);
    assert_eq!(
        &buf[..12],
        &[0x65, 0x53, 0xf1, 0x00, 0, 3, 0xd0, 0x90, 0, 0, 0, 7]
    );
    assert_eq!(UdpHeader::read(&buf, false), Some(h));
    h.write(&mut buf, true);
    assert_eq!(&buf[8..16], &[0, 0, 0, 0, 0, 0, 0, 7]);
    assert_eq!(UdpHeader::read(&buf, true), Some(h));
    assert_eq!(h.sent_secs(), 1_700_000_000.25);
    // Runts are refused, not read past.
    assert_eq!(UdpHeader::read(&buf[..11], false), None);
    assert_eq!(UdpHeader::read(&buf[..15], true), None);
    assert_eq!(UdpHeader::read(&[], false), None);
}

#[test]
fn connect_replies_in_either_byte_order() {
    assert!(is_connect_reply(&UDP_CONNECT_REPLY.to_le_bytes()));
    assert!(is_connect_reply(&LEGACY_UDP_CONNECT_REPLY.to_le_bytes()));
    assert!(is_connect_reply(&LEGACY_UDP_CONNECT_REPLY.to_be_bytes()));
    assert!(!is_connect_reply(&UDP_CONNECT_MSG.to_le_bytes()));
    assert!(!is_connect_reply(&[0x39, 0x38, 0x37]));
    assert!(!is_connect_reply(&[0u8; 12]));
}

#[test]
fn udp_losses_reordering_and_jitter() {
    let mut s = UdpReceiveStats::default();
    // 1, 2, then 5: 3 and 4 are counted lost.
    s.on_datagram(1, 0.010);
    s.on_datagram(2, 0.010);
    s.on_datagram(5, 0.010);
    assert_eq!((s.packet_count, s.lost, s.out_of_order), (5, 2, 0));
    assert_eq!(s.jitter, 0.0);
    // 3 arrives late: one loss less, one reordering.
    s.on_datagram(3, 0.010);
    assert_eq!((s.packet_count, s.lost, s.out_of_order), (5, 1, 1));
    // A transit 16 ms longer: jitter moves 1/16 of the way (RFC 3550).
    s.on_datagram(6, 0.026);
    assert!((s.jitter - 0.001).abs() < 1e-12, "{}", s.jitter);
    assert_eq!(s.received, 5);
    // A duplicate with nothing lost does not underflow.
    let mut d = UdpReceiveStats::default();
    d.on_datagram(1, 0.0);
    d.on_datagram(1, 0.0);
    assert_eq!((d.lost, d.out_of_order), (0, 1));
}

#[test]
fn pacing_holds_senders_to_their_rate() {
    // 1 Mbit/s: 125000 bytes are due at 1 s.
    assert_eq!(
        pacing_delay(1_000_000, 125_000, Duration::from_secs(1)),
        None
    );
    assert_eq!(
        pacing_delay(1_000_000, 250_000, Duration::from_secs(1)),
        Some(Duration::from_secs(1))
    );
    assert_eq!(pacing_delay(0, u64::MAX, Duration::ZERO), None);
}

#[test]
fn rates_and_lengths_parse_like_iperf3() {
    assert_eq!(parse_rate("100M"), Ok(100_000_000));
    assert_eq!(parse_rate("1.5G"), Ok(1_500_000_000));
    assert_eq!(parse_rate("64k"), Ok(64_000));
    assert_eq!(parse_rate("1000"), Ok(1000));
    assert!(parse_rate("fast").is_err());
    assert!(parse_rate("-1M").is_err());
    assert_eq!(parse_len("128K"), Ok(128 * 1024));
    assert_eq!(parse_len("1460"), Ok(1460));
    assert_eq!(parse_len("1M"), Ok(1 << 20));
    assert!(parse_len("2M").is_err());
    assert!(parse_len("0").is_err());
}

#[test]
fn cookies_are_36_characters_and_a_nul() {
    let a = make_cookie();
    let b = make_cookie();
    assert_eq!(a[36], 0);
    assert!(
        a[..36]
            .iter()
            .all(|c| c.is_ascii_lowercase() || (b'2'..=b'7').contains(c))
    );
    assert_ne!(a, b);
}

#[test]
fn cpu_util_is_a_percentage_of_wall_time() {
    let start = (Duration::from_secs(1), Duration::from_secs(2));
    let end = (Duration::from_millis(1500), Duration::from_millis(3000));
    let (t, u, s) = cpu_util(start, end, Duration::from_secs(2));
    assert_eq!((t, u, s), (75.0, 25.0, 50.0));
    assert_eq!(cpu_util(start, end, Duration::ZERO), (0.0, 0.0, 0.0));
}

// --- server and client --------------------------------------------------------

const PORT: u16 = 5201;

fn stacks() -> (Stack, Stack) {
    StackBuilder::memory_pair(
        StackBuilder::memory().addr("10.7.0.1/24".parse().unwrap()),
        StackBuilder::memory().addr("10.7.0.2/24".parse().unwrap()),
    )
    .unwrap()
}

fn server_addr() -> SocketAddr {
    format!("10.7.0.1:{PORT}").parse().unwrap()
}

fn client_args(extra: &[&str]) -> client::Iperf3Args {
    let mut argv = vec![
        "ustack",
        "iperf3",
        "--tap",
        "unused",
        "--addr",
        "10.7.0.2/24",
        "-c",
        "10.7.0.1",
        "-t",
        "1",
        "-i",
        "0",
    ];
    argv.extend_from_slice(extra);
    match crate::cli::Cli::try_parse_from(argv).unwrap().command {
        crate::cli::Command::Iperf3(a) => a,
        _ => unreachable!(),
    }
}

fn run_client(stack: &Stack, extra: &[&str]) -> std::io::Result<()> {
    client::run_on(stack, server_addr(), &client_args(extra))
}

#[test]
fn client_against_server_tcp_reverse_parallel_udp_bidir() {
    let (server_stack, client_stack) = stacks();
    let server = server::Server::start(&server_stack, PORT).unwrap();
    let runs: [&[&str]; 7] = [
        &[],
        &["-R"],
        &["-n", "3M", "-P", "2"],
        &["-n", "2M", "-R"],
        &["-P", "3", "-l", "16K"],
        &["-u", "-b", "20M", "-l", "1000"],
        &["--bidir", "-u", "-b", "5M", "--udp-counters-64bit"],
    ];
    for (i, extra) in runs.iter().enumerate() {
        run_client(&client_stack, extra).unwrap_or_else(|e| panic!("{extra:?}: {e}"));
        // The server counts a test once the client's IPERF_DONE is in.
        let t = wait_totals(&server, |t| t.tests + t.failed > i as u64);
        assert_eq!((t.tests, t.failed), (i as u64 + 1, 0), "{extra:?}");
    }
    let t = server.totals();
    assert!(t.bytes > 0);
    assert_eq!((t.refused, t.malformed), (0, 0));
}

fn control(stack: &Stack, cookie: &[u8; COOKIE_SIZE]) -> TcpStream {
    let s = TcpStream::connect_timeout(stack, &server_addr(), Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    (&s).write_all(cookie).unwrap();
    s
}

fn read_byte(s: &TcpStream) -> i8 {
    let mut b = [0u8; 1];
    (&*s).read_exact(&mut b).unwrap();
    b[0] as i8
}

fn wait_totals(server: &server::Server, done: impl Fn(&server::Totals) -> bool) -> server::Totals {
    for _ in 0..1000 {
        let t = server.totals();
        if done(&t) {
            return t;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("server totals stuck at {:?}", server.totals());
}

#[test]
fn one_test_at_a_time_and_bad_parameters_get_server_error() {
    let (server_stack, client_stack) = stacks();
    let server = server::Server::start(&server_stack, PORT).unwrap();
    let first = control(&client_stack, &make_cookie());
    assert_eq!(read_byte(&first), state::PARAM_EXCHANGE);
    // A second client while the first test runs: ACCESS_DENIED, closed.
    let second = control(&client_stack, &make_cookie());
    assert_eq!(read_byte(&second), state::ACCESS_DENIED);
    let mut rest = Vec::new();
    (&second).read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
    // ustack's own client says so too.
    let busy = run_client(&client_stack, &[]).unwrap_err();
    assert!(busy.to_string().contains("busy"), "{busy}");
    // The first asks for 200 streams: SERVER_ERROR, IENUMSTREAMS, errno.
    let params = br#"{"tcp":true,"time":1,"parallel":200}"#;
    let mut msg = (params.len() as u32).to_be_bytes().to_vec();
    msg.extend_from_slice(params);
    (&first).write_all(&msg).unwrap();
    assert_eq!(read_byte(&first), state::SERVER_ERROR);
    let mut err = [0u8; 8];
    (&first).read_exact(&mut err).unwrap();
    assert_eq!(
        i32::from_be_bytes(err[..4].try_into().unwrap()),
        errors::IENUMSTREAMS
    );
    let t = wait_totals(&server, |t| t.failed == 1);
    assert_eq!((t.tests, t.refused), (0, 2));
    // An oversized JSON length ends the test too, and the server is free
    // again afterwards.
    let third = control(&client_stack, &make_cookie());
    assert_eq!(read_byte(&third), state::PARAM_EXCHANGE);
    (&third).write_all(&u32::MAX.to_be_bytes()).unwrap();
    wait_totals(&server, |t| t.failed == 2);
    run_client(&client_stack, &[]).unwrap();
    wait_totals(&server, |t| t.tests == 1);
}

#[test]
fn a_stream_with_a_wrong_cookie_is_refused() {
    let (server_stack, client_stack) = stacks();
    let server = server::Server::start(&server_stack, PORT).unwrap();
    let cookie = make_cookie();
    let ctrl = control(&client_stack, &cookie);
    assert_eq!(read_byte(&ctrl), state::PARAM_EXCHANGE);
    let params = br#"{"tcp":true,"time":1,"parallel":1}"#;
    let mut msg = (params.len() as u32).to_be_bytes().to_vec();
    msg.extend_from_slice(params);
    (&ctrl).write_all(&msg).unwrap();
    assert_eq!(read_byte(&ctrl), state::CREATE_STREAMS);
    let stranger = control(&client_stack, &make_cookie());
    assert_eq!(read_byte(&stranger), state::ACCESS_DENIED);
    let ours = control(&client_stack, &cookie);
    assert_eq!(read_byte(&ctrl), state::TEST_START);
    assert_eq!(read_byte(&ctrl), state::TEST_RUNNING);
    (&ours).write_all(&[0u8; 1000]).unwrap();
    // The client vanishes mid-test: the test ends, counted as failed.
    drop(ctrl);
    drop(ours);
    let t = wait_totals(&server, |t| t.failed == 1);
    assert_eq!((t.tests, t.refused), (0, 1));
}

#[test]
fn a_connection_without_a_cookie_is_refused_after_the_deadline() {
    let (server_stack, client_stack) = stacks();
    let server = server::Server::start(&server_stack, PORT).unwrap();
    let silent =
        TcpStream::connect_timeout(&client_stack, &server_addr(), Duration::from_secs(5)).unwrap();
    silent
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    // Half a cookie, then nothing: it holds no test.
    (&silent).write_all(&[b'a'; 10]).unwrap();
    // Meanwhile a whole test runs.
    run_client(&client_stack, &[]).unwrap();
    assert_eq!(read_byte(&silent), state::ACCESS_DENIED);
    let t = wait_totals(&server, |t| t.tests == 1 && t.refused == 1);
    assert_eq!(t.failed, 0);
}

#[test]
fn stray_datagrams_during_a_udp_test_are_counted_and_dropped() {
    let (server_stack, client_stack) = stacks();
    let server = server::Server::start(&server_stack, PORT).unwrap();
    let stack = client_stack.clone();
    let test = std::thread::spawn(move || run_client(&stack, &["-u", "-b", "10M"]));
    // A stranger sends runts and whole datagrams to the test's port until
    // the test is over; none of them is a stream's.
    let stray = sockets_api::UdpSocket::bind(&client_stack, "0.0.0.0:0").unwrap();
    while !test.is_finished() {
        let _ = stray.send_to(&[1, 2, 3], server_addr());
        let _ = stray.send_to(&[0u8; 100], server_addr());
        std::thread::sleep(Duration::from_millis(5));
    }
    test.join().unwrap().unwrap();
    let t = wait_totals(&server, |t| t.tests == 1);
    assert!(t.malformed > 0, "{t:?}");
    assert_eq!(t.failed, 0);
}
