//! The services over two in-memory stacks: a server running `Services`
//! and a client using the socket API, as Linux would over the TAP.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::thread;
use std::time::{Duration, Instant};

use sockets_api::{Stack, StackBuilder, TcpStream, UdpSocket};

use super::*;
use http::test_support::TempDir;
use http::{self, Url};

const SERVER: &str = "10.7.0.1";

fn stacks() -> (Stack, Stack) {
    StackBuilder::memory_pair(
        StackBuilder::memory().addr("10.7.0.1/24".parse().unwrap()),
        StackBuilder::memory().addr("10.7.0.2/24".parse().unwrap()),
    )
    .unwrap()
}

fn addr(port: u16) -> SocketAddr {
    format!("{SERVER}:{port}").parse().unwrap()
}

fn connect(client: &Stack, port: u16) -> TcpStream {
    let s = TcpStream::connect_timeout(client, &addr(port), Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// Waits until the registry has counted `n` closed connections.
fn wait_closed(services: &Services, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let closed = services.context.registry.lock().totals.connections;
        if closed >= n {
            return;
        }
        assert!(Instant::now() < deadline, "only {closed} of {n} closed");
        thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn echo_discard_chargen_and_udp_echo() {
    let (server, client) = stacks();
    let services = Services::start(
        &server,
        ServiceConfig {
            udp_echo: vec![7],
            echo: vec![7],
            discard: vec![9],
            chargen: vec![19],
            ..ServiceConfig::default()
        },
    )
    .unwrap();
    assert_eq!(
        services.describe(),
        [
            "TCP echo on port 7",
            "UDP echo on port 7",
            "TCP discard on port 9",
            "TCP chargen on port 19"
        ]
    );

    // Echo: 1 MiB written by one thread, read back by another.
    let stream = connect(&client, 7);
    let data: Vec<u8> = (0..1 << 20).map(|i: u32| (i * 7 + i / 251) as u8).collect();
    let writer = {
        let (stream, data) = (stream.clone(), data.clone());
        thread::spawn(move || {
            (&stream).write_all(&data).unwrap();
            stream.shutdown(Shutdown::Write).unwrap();
        })
    };
    let mut back = Vec::new();
    (&stream).read_to_end(&mut back).unwrap();
    writer.join().unwrap();
    assert!(back == data, "echo differs ({} bytes back)", back.len());
    drop(stream);

    // Discard: everything is taken, nothing comes back.
    let stream = connect(&client, 9);
    (&stream).write_all(&data).unwrap();
    stream.shutdown(Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    (&stream).read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
    drop(stream);

    // Chargen: the pattern from offset 0; our end of stream ends it even
    // while its send buffer is full.
    let stream = connect(&client, 19);
    let mut got = vec![0u8; 300_000];
    (&stream).read_exact(&mut got).unwrap();
    for (i, b) in got.iter().enumerate() {
        assert_eq!(*b, b' ' + (i % CHARGEN_PERIOD) as u8, "byte {i}");
    }
    stream.shutdown(Shutdown::Write).unwrap();
    let mut sink = vec![0u8; 65_536];
    while (&stream).read(&mut sink).unwrap() > 0 {}
    drop(stream);

    // UDP echo.
    let udp = UdpSocket::bind(&client, "0.0.0.0:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    udp.send_to(b"ping over udp", addr(7)).unwrap();
    let mut buf = [0u8; 64];
    let (n, from) = udp.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"ping over udp");
    assert_eq!(from, addr(7));

    wait_closed(&services, 3);
    let summary = services.summary();
    assert!(
        summary
            .contains("3 TCP connections closed (0 reset by peer, 0 other errors), 0 still open"),
        "{summary}"
    );
    assert!(
        summary.contains("\nservices-totals: closed=3 resets=0 errors=0 open=0 bytes_in="),
        "{summary}"
    );
    server.stop();
    client.stop();
}

#[test]
fn many_concurrent_echo_connections_and_a_reset() {
    let (server, client) = stacks();
    let services = Services::start(
        &server,
        ServiceConfig {
            echo: vec![7],
            ..ServiceConfig::default()
        },
    )
    .unwrap();
    let streams: Vec<TcpStream> = (0..60).map(|_| connect(&client, 7)).collect();
    for (i, s) in streams.iter().enumerate() {
        let mut s = s;
        s.write_all(format!("connection {i} says hello\n").as_bytes())
            .unwrap();
    }
    for (i, s) in streams.iter().enumerate() {
        s.shutdown(Shutdown::Write).unwrap();
        let mut back = String::new();
        let mut r = s;
        r.read_to_string(&mut back).unwrap();
        assert_eq!(back, format!("connection {i} says hello\n"));
    }
    drop(streams);

    // One connection aborted with a RST, one left open.
    let aborted = connect(&client, 7);
    (&aborted).write_all(b"x").unwrap();
    let mut one = [0u8; 1];
    (&aborted).read_exact(&mut one).unwrap();
    aborted.set_linger(Some(Duration::ZERO)).unwrap();
    drop(aborted);
    let open = connect(&client, 7);
    (&open).write_all(b"y").unwrap();
    (&open).read_exact(&mut one).unwrap();

    wait_closed(&services, 61);
    let summary = services.summary();
    assert!(
        summary
            .contains("61 TCP connections closed (1 reset by peer, 0 other errors), 1 still open"),
        "{summary}"
    );
    assert!(
        summary.contains("\nservices-totals: closed=61 resets=1 errors=0 open=1 bytes_in="),
        "{summary}"
    );
    assert!(summary.contains("  echo 10.7.0.2:"), "{summary}");
    server.stop();
    client.stop();
}

#[test]
fn http_files_over_the_socket_api() {
    let dir = TempDir::new("services");
    let body: Vec<u8> = (0..3_000_000u32).map(|i| (i % 253) as u8).collect();
    dir.file("big.bin", &body);
    let (server, client) = stacks();
    let services = Services::start(
        &server,
        ServiceConfig {
            http: vec![80],
            file_server: Some(file_server(dir.path()).unwrap()),
            ..ServiceConfig::default()
        },
    )
    .unwrap();
    assert!(services.describe()[0].starts_with("HTTP on port 80, serving /"));

    let fetch = |path: &str| {
        let url = Url::parse(&format!("http://{SERVER}{path}")).unwrap();
        let mut stream = connect(&client, 80);
        let mut out = Vec::new();
        let result = http::get(&mut stream, &url, &mut out, &mut |_, _| {});
        (result, out)
    };
    let (response, out) = fetch("/big.bin");
    let response = response.unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.body_len, body.len() as u64);
    assert!(out == body);

    let (err, _) = fetch("/missing");
    assert!(err.unwrap_err().to_string().contains("404"));
    let (err, _) = fetch("/../etc/passwd");
    assert!(err.unwrap_err().to_string().contains("403"));

    wait_closed(&services, 3);
    server.stop();
    client.stop();
}

/// Services with a short idle timeout and the given caps.
fn limited(idle: Duration, max_conns: usize, per_ip: usize) -> ServiceConfig {
    ServiceConfig {
        idle_timeout: idle,
        max_conns,
        max_conns_per_ip: per_ip,
        ..ServiceConfig::default()
    }
}

/// Waits until `pred` holds over the registry totals.
fn wait_totals(services: &Services, what: &str, pred: impl Fn(&Totals) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if pred(&services.context.registry.lock().totals) {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(20));
    }
}

/// True once the server closed `stream` (reset or end of stream), reading
/// whatever was still queued.
fn closed_by_server(stream: &TcpStream) -> bool {
    let mut sink = vec![0u8; 65_536];
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    loop {
        match (&*stream).read(&mut sink) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) => {
                return matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted
                );
            }
        }
    }
}

/// A connection the server refuses: reset right after the handshake (the
/// reset may even beat connect() back to the caller).
fn assert_refused(client: &Stack, port: u16) {
    let s = match TcpStream::connect_timeout(client, &addr(port), Duration::from_secs(5)) {
        Ok(s) => s,
        Err(e) => {
            assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}");
            return;
        }
    };
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut one = [0u8; 1];
    let e = (&s).read(&mut one).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset);
}

fn echo_once(stream: &TcpStream, msg: &[u8]) {
    (&*stream).write_all(msg).unwrap();
    let mut back = vec![0u8; msg.len()];
    (&*stream).read_exact(&mut back).unwrap();
    assert_eq!(back, msg);
}

#[test]
fn vanished_clients_are_closed_after_the_idle_timeout_on_every_service() {
    let dir = TempDir::new("services-idle");
    dir.file("a.txt", b"a");
    let (server, client) = stacks();
    let services = Services::start(
        &server,
        ServiceConfig {
            echo: vec![7],
            discard: vec![9],
            chargen: vec![19],
            http: vec![80],
            file_server: Some(file_server(dir.path()).unwrap()),
            ..limited(Duration::from_secs(2), 100, 100)
        },
    )
    .unwrap();
    // Each client does a little, then stops answering: echo and discard
    // send nothing more, chargen's reader stops reading (its window
    // closes, nothing new is acknowledged), HTTP sends half a request.
    let echo = connect(&client, 7);
    echo_once(&echo, b"hello");
    let discard = connect(&client, 9);
    (&discard).write_all(b"into the void").unwrap();
    let chargen = connect(&client, 19);
    let mut some = [0u8; 1000];
    (&chargen).read_exact(&mut some).unwrap();
    let http = connect(&client, 80);
    (&http).write_all(b"GET /a.txt HTTP/1.1\r\nHo").unwrap();

    wait_totals(&services, "four idle closes", |t| {
        t.idle[Kind::Echo.index()] == 1
            && t.idle[Kind::Discard.index()] == 1
            && t.idle[Kind::Chargen.index()] == 1
            && t.idle[Kind::Http.index()] == 1
    });
    for s in [&echo, &discard, &chargen, &http] {
        assert!(closed_by_server(s));
    }
    let summary = services.summary();
    assert!(summary.contains(", 0 still open"), "{summary}");
    assert!(
        summary.contains("4 closed idle (1 echo, 1 discard, 1 chargen, 1 http)"),
        "{summary}"
    );
    assert!(summary.contains(" idle_closed=4 "), "{summary}");
    server.stop();
    client.stop();
}

#[test]
fn slowloris_on_echo_does_not_starve_a_live_client() {
    const SLOW: usize = 300;
    let (server, client) = stacks();
    let services = Services::start(
        &server,
        ServiceConfig {
            echo: vec![7],
            ..limited(Duration::from_secs(2), 1_000, 1_000)
        },
    )
    .unwrap();
    let slow: Vec<TcpStream> = (0..SLOW).map(|_| connect(&client, 7)).collect();
    let live = connect(&client, 7);
    // A few rounds: every slow connection trickles one byte, and the live
    // client gets a full echo between rounds.
    for round in 0..5u8 {
        for s in &slow {
            (&*s).write_all(&[round]).unwrap();
        }
        echo_once(&live, format!("live client, round {round}").as_bytes());
    }
    // Then the slow ones vanish; the live one keeps being served until
    // every one of them was closed for idleness.
    let deadline = Instant::now() + Duration::from_secs(60);
    while services.context.registry.lock().totals.idle[Kind::Echo.index()] < SLOW as u64 {
        assert!(Instant::now() < deadline, "slow connections not closed");
        echo_once(&live, b"still here");
        thread::sleep(Duration::from_millis(50));
    }
    echo_once(&live, b"and after");
    let mut closed = 0;
    for s in &slow {
        closed += usize::from(closed_by_server(s));
    }
    assert_eq!(closed, SLOW);
    let summary = services.summary();
    assert!(summary.contains(", 1 still open"), "{summary}");
    assert!(
        summary.contains(&format!(" idle_closed={SLOW} ")),
        "{summary}"
    );
    server.stop();
    client.stop();
}

#[test]
fn connections_over_the_caps_are_refused_with_a_reset() {
    let (server, client) = stacks();
    let services = Services::start(
        &server,
        ServiceConfig {
            echo: vec![7],
            discard: vec![9],
            ..limited(Duration::from_secs(60), 3, 4)
        },
    )
    .unwrap();
    // --max-conns 3 per service: the fourth echo connection is reset.
    let echoes: Vec<TcpStream> = (0..3).map(|_| connect(&client, 7)).collect();
    for s in &echoes {
        echo_once(s, b"admitted");
    }
    assert_refused(&client, 7);
    wait_totals(&services, "a max-conns refusal", |t| {
        t.refused_max_conns == 1
    });

    // --max-conns-per-ip 4, all services together: one discard connection
    // fits beside the three echoes, the next does not.
    let d1 = connect(&client, 9);
    (&d1).write_all(b"fits").unwrap();
    assert_refused(&client, 9);
    wait_totals(&services, "a per-IP refusal", |t| t.refused_per_ip == 1);

    // Room again once one closes.
    drop(echoes);
    wait_closed(&services, 3);
    let again = connect(&client, 7);
    echo_once(&again, b"back in");
    let summary = services.summary();
    assert!(
        summary.contains("1 refused over --max-conns, 1 over --max-conns-per-ip"),
        "{summary}"
    );
    assert!(
        summary.contains(" refused_max_conns=1 refused_per_ip=1"),
        "{summary}"
    );
    server.stop();
    client.stop();
}

/// Threads of this process.
fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

/// The child half of the thread-count test: run alone in a process of its
/// own, so that no other test's threads come and go meanwhile.
#[test]
#[ignore = "run by thread_count_stays_constant in a process of its own"]
fn thread_count_child() {
    if std::env::var_os("USTACK_THREAD_COUNT_CHILD").is_none() {
        return;
    }
    let (server, client) = stacks();
    let services = Services::start(
        &server,
        ServiceConfig {
            echo: vec![7],
            udp_echo: vec![7],
            discard: vec![9],
            ..limited(Duration::from_secs(60), 1_000, 1_000)
        },
    )
    .unwrap();
    let before = threads();
    let mut streams: Vec<TcpStream> = (0..400).map(|_| connect(&client, 7)).collect();
    streams.extend((0..100).map(|_| connect(&client, 9)));
    for s in &streams[..400] {
        echo_once(s, b"x");
    }
    for s in &streams[400..] {
        (&*s).write_all(b"y").unwrap();
    }
    let during = threads();
    drop(streams);
    wait_closed(&services, 500);
    let after = threads();
    println!("threads: before {before}, with 500 connections {during}, after {after}");
    assert_eq!((during, after), (before, before));
    server.stop();
    client.stop();
}

#[test]
fn thread_count_stays_constant() {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "services::tests::thread_count_child",
            "--ignored",
            "--test-threads=1",
            "--nocapture",
        ])
        .env("USTACK_THREAD_COUNT_CHILD", "1")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("threads: before"), "{text}");
}
