//! The epoll-shaped `Poller` over two in-memory stacks: readiness of
//! accept, read, write, hang-up and errors; deregistration, close while
//! registered, level and edge triggering, many registrations, stop.

use std::io::{ErrorKind, Read, Write};
use std::net::Shutdown;
use std::thread;
use std::time::Duration;

use sockets_api::events::{POLLERR, POLLHUP, POLLIN, POLLOUT};
use sockets_api::{
    Interest, PollEvent, Poller, Stack, StackBuilder, TcpListener, TcpStream, UdpSocket,
};

const WAIT: Option<Duration> = Some(Duration::from_secs(10));
const NOW: Option<Duration> = Some(Duration::ZERO);

fn pair() -> (Stack, Stack) {
    StackBuilder::memory_pair(
        StackBuilder::memory()
            .addr("10.0.0.1/24".parse().unwrap())
            .seed(1),
        StackBuilder::memory()
            .addr("10.0.0.2/24".parse().unwrap())
            .seed(2),
    )
    .unwrap()
}

/// Waits (up to 10 s) for an event of `token` and returns its revents.
fn wait_for(poller: &Poller, token: u64) -> i16 {
    let mut events = [PollEvent::default(); 64];
    for _ in 0..100 {
        let n = poller.wait(&mut events, WAIT).unwrap();
        if let Some(e) = events[..n].iter().find(|e| e.token == token) {
            return e.revents;
        }
    }
    panic!("no event for token {token}");
}

fn tokens(poller: &Poller, timeout: Option<Duration>) -> Vec<u64> {
    let mut events = [PollEvent::default(); 64];
    let n = poller.wait(&mut events, timeout).unwrap();
    events[..n].iter().map(|e| e.token).collect()
}

/// A listener on A and a connected pair (server side on A, client on B).
fn connected(a: &Stack, b: &Stack, port: u16) -> (TcpListener, TcpStream, TcpStream) {
    let l = TcpListener::bind(a, ("0.0.0.0", port)).unwrap();
    let c = TcpStream::connect(b, ("10.0.0.1", port)).unwrap();
    let (s, _) = l.accept().unwrap();
    (l, s, c)
}

#[test]
fn accept_read_and_write_readiness() {
    let (a, b) = pair();
    let listener = TcpListener::bind(&a, "0.0.0.0:80").unwrap();
    let poller = Poller::new(&a).unwrap();
    poller
        .register(listener.as_fd(), 7, Interest::READABLE)
        .unwrap();
    assert!(tokens(&poller, NOW).is_empty());

    let mut client = TcpStream::connect(&b, "10.0.0.1:80").unwrap();
    assert!(wait_for(&poller, 7) & POLLIN != 0);
    // Level-triggered: still reported until accepted.
    assert_eq!(tokens(&poller, NOW), [7]);
    let (conn, _) = listener.accept().unwrap();
    assert!(tokens(&poller, NOW).is_empty());

    poller
        .register(conn.as_fd(), 8, Interest::READABLE | Interest::WRITABLE)
        .unwrap();
    // Writable at once, not readable.
    assert_eq!(wait_for(&poller, 8) & (POLLIN | POLLOUT), POLLOUT);
    poller.modify(conn.as_fd(), 9, Interest::READABLE).unwrap();
    assert!(tokens(&poller, NOW).is_empty());
    client.write_all(b"hello").unwrap();
    assert!(wait_for(&poller, 9) & POLLIN != 0);
    let mut buf = [0u8; 16];
    assert_eq!((&conn).read(&mut buf).unwrap(), 5);
    assert!(tokens(&poller, NOW).is_empty(), "drained: no longer ready");

    // Registering twice is EEXIST; unknown descriptors ENOENT/EBADF.
    let e = poller
        .register(conn.as_fd(), 1, Interest::READABLE)
        .unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EEXIST));
    let e = poller.modify(999, 1, Interest::READABLE).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ENOENT));
    let e = poller.register(999, 1, Interest::READABLE).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EBADF));
    a.stop();
    b.stop();
}

#[test]
fn a_full_send_buffer_becomes_writable_when_the_peer_reads() {
    let (a, b) = pair();
    let (_l, conn, client) = connected(&a, &b, 81);
    conn.set_nonblocking(true).unwrap();
    let mut chunk = vec![0u8; 65_536];
    let poller = Poller::new(&a).unwrap();
    poller
        .register(conn.as_fd(), 1, Interest::WRITABLE)
        .unwrap();
    // Fill the send buffer; the stack keeps sending into the peer's window
    // meanwhile, so writability may come back: write again until the
    // poller reports the descriptor not writable (the peer's window and our
    // buffer are both full, and the peer reads nothing).
    loop {
        match (&conn).write(&chunk) {
            Ok(_) => continue,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => panic!("{e}"),
        }
        if tokens(&poller, NOW).is_empty() {
            break;
        }
    }
    let reader = thread::spawn(move || {
        let mut total = 0;
        while total < 300_000 {
            total += (&client).read(&mut chunk).unwrap();
        }
        client
    });
    assert!(wait_for(&poller, 1) & POLLOUT != 0);
    drop(reader.join().unwrap());
    a.stop();
    b.stop();
}

#[test]
fn hangup_and_error() {
    let (a, b) = pair();
    let (l, conn, client) = connected(&a, &b, 82);
    let poller = Poller::new(&a).unwrap();
    poller
        .register(conn.as_fd(), 1, Interest::READABLE)
        .unwrap();
    assert!(tokens(&poller, NOW).is_empty());
    // The peer's FIN: readable (end of stream).
    client.shutdown(Shutdown::Write).unwrap();
    assert!(wait_for(&poller, 1) & POLLIN != 0);
    // Our own shutdown of both ways: hung up.
    conn.shutdown(Shutdown::Both).unwrap();
    assert!(wait_for(&poller, 1) & POLLHUP != 0);
    // Level-triggered, it stays reported while hung up.
    assert_eq!(tokens(&poller, NOW), [1]);
    poller.deregister(conn.as_fd()).unwrap();
    drop(client);

    // A reset: error and hang-up.
    let c2 = TcpStream::connect(&b, "10.0.0.1:82").unwrap();
    let (s2, _) = l.accept().unwrap();
    poller.register(s2.as_fd(), 2, Interest::READABLE).unwrap();
    assert!(!tokens(&poller, NOW).contains(&2));
    c2.set_linger(Some(Duration::ZERO)).unwrap();
    drop(c2);
    let r = wait_for(&poller, 2);
    assert!(r & POLLERR != 0 && r & POLLHUP != 0, "revents {r:#x}");
    let mut buf = [0u8; 4];
    let e = (&s2).read(&mut buf).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConnectionReset);
    a.stop();
    b.stop();
}

#[test]
fn deregister_and_close_while_registered() {
    let (a, b) = pair();
    let (l, conn, mut client) = connected(&a, &b, 83);
    let poller = Poller::new(&a).unwrap();
    poller
        .register(conn.as_fd(), 1, Interest::READABLE)
        .unwrap();
    poller.register(l.as_fd(), 2, Interest::READABLE).unwrap();
    assert_eq!(poller.len(), 2);
    client.write_all(b"x").unwrap();
    assert!(wait_for(&poller, 1) & POLLIN != 0);
    poller.deregister(conn.as_fd()).unwrap();
    assert!(tokens(&poller, NOW).is_empty());
    let e = poller.deregister(conn.as_fd()).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ENOENT));

    // Registered again, then closed while listed as ready: the
    // registration goes with the descriptor.
    poller
        .register(conn.as_fd(), 3, Interest::READABLE)
        .unwrap();
    let fd = conn.as_fd();
    drop(conn);
    assert!(tokens(&poller, NOW).is_empty());
    assert_eq!(poller.len(), 1);
    let e = poller.deregister(fd).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ENOENT));

    // A new socket that reuses the descriptor number is not registered.
    let _c2 = TcpStream::connect(&b, "10.0.0.1:83").unwrap();
    assert!(wait_for(&poller, 2) & POLLIN != 0);
    let (again, _) = l.accept().unwrap();
    assert_eq!(again.as_fd(), fd);
    assert!(tokens(&poller, NOW).is_empty());
    a.stop();
    b.stop();
}

#[test]
fn edge_triggered_reports_once_per_change() {
    let (a, b) = pair();
    let (_l, conn, mut client) = connected(&a, &b, 84);
    let poller = Poller::new(&a).unwrap();
    poller
        .register(conn.as_fd(), 1, Interest::READABLE.edge())
        .unwrap();
    assert!(tokens(&poller, NOW).is_empty());
    client.write_all(b"one").unwrap();
    assert!(wait_for(&poller, 1) & POLLIN != 0);
    // Not read, but no new change: not reported again.
    assert!(tokens(&poller, NOW).is_empty());
    client.write_all(b"two").unwrap();
    assert!(wait_for(&poller, 1) & POLLIN != 0);
    a.stop();
    b.stop();
}

#[test]
fn two_thousand_registered_one_ready_is_one_event() {
    let (a, b) = pair();
    let poller = Poller::new(&a).unwrap();
    let socks: Vec<UdpSocket> = (0..2_000u16)
        .map(|i| UdpSocket::bind(&a, ("0.0.0.0", 10_000 + i)).unwrap())
        .collect();
    for (i, s) in socks.iter().enumerate() {
        poller
            .register(s.as_fd(), i as u64, Interest::READABLE)
            .unwrap();
    }
    // Registration looks at each once; none is readable.
    assert!(tokens(&poller, NOW).is_empty());
    let sender = UdpSocket::bind(&b, "0.0.0.0:0").unwrap();
    sender.send_to(b"ping", "10.0.0.1:11234").unwrap();
    let mut events = [PollEvent::default(); 4096];
    let n = poller.wait(&mut events, WAIT).unwrap();
    assert_eq!(n, 1);
    assert_eq!(events[0].token, 1234);
    let mut buf = [0u8; 16];
    assert_eq!(socks[1234].recv(&mut buf).unwrap(), 4);
    assert_eq!(poller.wait(&mut events, NOW).unwrap(), 0);
    a.stop();
    b.stop();
}

#[test]
fn wake_and_stop() {
    let (a, b) = pair();
    let poller = std::sync::Arc::new(Poller::new(&a).unwrap());
    let l = TcpListener::bind(&a, "0.0.0.0:85").unwrap();
    poller.register(l.as_fd(), 1, Interest::READABLE).unwrap();
    let waiter = {
        let poller = poller.clone();
        thread::spawn(move || {
            let mut events = [PollEvent::default(); 4];
            poller.wait(&mut events, None)
        })
    };
    thread::sleep(Duration::from_millis(50));
    poller.wake();
    assert_eq!(waiter.join().unwrap().unwrap(), 0);

    let waiter = {
        let poller = poller.clone();
        thread::spawn(move || {
            let mut events = [PollEvent::default(); 4];
            poller.wait(&mut events, None)
        })
    };
    thread::sleep(Duration::from_millis(50));
    a.stop();
    let e = waiter.join().unwrap().unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ENETDOWN));
    b.stop();
}

#[test]
fn a_registration_belongs_to_its_descriptor_not_to_its_dups() {
    let (a, b) = pair();
    let (_l, conn, mut client) = connected(&a, &b, 86);
    let poller = Poller::new(&a).unwrap();
    let dup = a.dup(conn.as_fd()).unwrap();
    poller.register(dup, 1, Interest::READABLE).unwrap();
    poller
        .register(conn.as_fd(), 2, Interest::READABLE)
        .unwrap();
    client.write_all(b"z").unwrap();
    let mut seen = Vec::new();
    while seen.len() < 2 {
        for t in tokens(&poller, WAIT) {
            if !seen.contains(&t) {
                seen.push(t);
            }
        }
    }
    // Closing the dup removes its registration only; the socket lives on.
    a.close(dup).unwrap();
    assert_eq!(poller.len(), 1);
    assert_eq!(tokens(&poller, NOW), [2]);
    // Dropping the poller leaves the socket usable.
    drop(poller);
    let mut buf = [0u8; 1];
    assert_eq!((&conn).read(&mut buf).unwrap(), 1);
    a.stop();
    b.stop();
}
