use super::*;
use clap::Parser;

fn parse(argv: &[&str]) -> NcArgs {
    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        nc: NcArgs,
    }
    let mut all = vec!["nc", "--tap", "t0", "--addr", "10.0.0.2/24"];
    all.extend_from_slice(argv);
    Wrapper::try_parse_from(all).unwrap().nc
}

#[test]
fn endpoints() {
    let a = parse(&["10.0.0.1", "80"]);
    assert_eq!(endpoint(&a).unwrap(), "10.0.0.1:80".parse().unwrap());
    let a = parse(&["-l", "5000"]);
    assert_eq!(endpoint(&a).unwrap(), "0.0.0.0:5000".parse().unwrap());
    let a = parse(&["-l", "0.0.0.0", "5000"]);
    assert_eq!(endpoint(&a).unwrap(), "0.0.0.0:5000".parse().unwrap());
    let a = parse(&["10.0.0.1"]);
    let e = endpoint(&a).unwrap_err();
    assert!(e.is::<UsageError>() && e.to_string().contains("missing PORT"));
    let a = parse(&["10.0.0.1", "70000"]);
    assert!(
        endpoint(&a)
            .unwrap_err()
            .to_string()
            .contains("invalid port")
    );
    let a = parse(&["-u", "-q", "0", "10.0.0.1", "7"]);
    assert_eq!(a.quit_after, Some(Duration::ZERO));
}

fn pair() -> (Stack, Stack) {
    sockets_api::StackBuilder::memory_pair(
        sockets_api::StackBuilder::memory()
            .addr("10.0.0.1/24".parse().unwrap())
            .seed(1),
        sockets_api::StackBuilder::memory()
            .addr("10.0.0.2/24".parse().unwrap())
            .seed(2),
    )
    .unwrap()
}

/// A kernel pipe carrying `data` then its end (written by a thread: it
/// may not fit in the pipe).
fn input(data: Vec<u8>) -> File {
    use std::os::fd::{FromRawFd, OwnedFd};
    let mut fds = [0 as RawFd; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 returns.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: pipe2 just returned these two descriptors; each is owned once.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    std::thread::spawn(move || File::from(w).write_all(&data).unwrap());
    File::from(r)
}

fn pattern(len: usize, salt: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + i / 1000 + salt) as u8).collect()
}

#[test]
fn tcp_session_copies_both_ways_and_ends_when_both_are_done() {
    let (a, b) = pair();
    let listener = TcpListener::bind(&b, "0.0.0.0:7").unwrap();
    let client = TcpStream::connect(&a, "10.0.0.2:7").unwrap();
    let (server, _) = listener.accept().unwrap();
    let (up, down) = (pattern(300_000, 1), pattern(200_000, 2));
    let to_send = down.clone();
    let writer = server.clone();
    let w = std::thread::spawn(move || {
        (&writer).write_all(&to_send).unwrap();
        writer.shutdown(Shutdown::Write).unwrap();
    });
    let r = std::thread::spawn(move || {
        let mut got = Vec::new();
        (&server).read_to_end(&mut got).unwrap();
        got
    });
    let mut out = Vec::new();
    session(&a, Link::Tcp(client), input(up.clone()), &mut out, None).unwrap();
    w.join().unwrap();
    assert_eq!(r.join().unwrap(), up);
    assert_eq!(out, down);
}

#[test]
fn udp_session_quits_after_the_end_of_input() {
    let (a, b) = pair();
    let peer = UdpSocket::bind(&b, "0.0.0.0:9").unwrap();
    let sock = UdpSocket::bind(&a, "0.0.0.0:0").unwrap();
    sock.connect("10.0.0.2:9").unwrap();
    let mut out = Vec::new();
    let link = Link::Udp(sock);
    session(
        &a,
        link,
        input(b"ping".to_vec()),
        &mut out,
        Some(Duration::ZERO),
    )
    .unwrap();
    let mut buf = [0u8; 16];
    let (n, _) = peer.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"ping");
}

#[test]
fn udp_listen_session_answers_the_last_sender() {
    let (a, b) = pair();
    let sock = UdpSocket::bind(&a, "0.0.0.0:9").unwrap();
    let peer = UdpSocket::bind(&b, "0.0.0.0:0").unwrap();
    let link = Link::UdpListen {
        sock,
        peer: None,
        verbose: false,
    };
    let p = std::thread::spawn(move || {
        peer.send_to(b"hello", "10.0.0.1:9").unwrap();
        let mut buf = [0u8; 16];
        let (n, from) = peer.recv_from(&mut buf).unwrap();
        (buf[..n].to_vec(), from)
    });
    let mut out = Vec::new();
    session(
        &a,
        link,
        input(b"reply".to_vec()),
        &mut out,
        Some(Duration::ZERO),
    )
    .unwrap();
    let (got, from) = p.join().unwrap();
    assert_eq!(got, b"reply");
    assert_eq!(from, "10.0.0.1:9".parse().unwrap());
    assert_eq!(out, b"hello");
}

#[test]
fn a_stopped_stack_ends_the_session_with_an_error() {
    let (a, b) = pair();
    let listener = TcpListener::bind(&b, "0.0.0.0:7").unwrap();
    let client = TcpStream::connect(&a, "10.0.0.2:7").unwrap();
    let _server = listener.accept().unwrap();
    // Input that never ends: the session waits on the network.
    let mut fds = [0 as RawFd; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 returns.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    use std::os::fd::{FromRawFd, OwnedFd};
    // SAFETY: pipe2 just returned these two descriptors; each is owned once.
    let (r, _w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let stack = a.clone();
    let s = std::thread::spawn(move || {
        let mut out = Vec::new();
        session(&stack, Link::Tcp(client), File::from(r), &mut out, None)
    });
    std::thread::sleep(Duration::from_millis(20));
    a.stop();
    let e = s.join().unwrap().unwrap_err();
    assert!(e.contains("network is down"), "{e}");
}
