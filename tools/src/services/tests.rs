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
