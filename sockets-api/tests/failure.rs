//! Failure is loud: when the stack's device fails or the stack thread
//! panics, blocked calls and pending poller waits end with ENETDOWN, later
//! calls fail with ENETDOWN, and `Stack::last_error` names the cause.

use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, AtomicU8, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use sockets_api::{Device, FrameSink};
use sockets_api::{
    Interest, PollEvent, Poller, Stack, StackBuilder, TcpListener, TcpStream, UdpSocket,
};

const RUN: u8 = 0;
const FAIL: u8 = 1;
const PANIC: u8 = 2;

/// A link that loses every frame and receives none until told to fail:
/// then its receive returns an error, or panics. Its transmit fails with
/// the errno in `send_error` (0: succeeds).
struct Breakable {
    mode: Arc<AtomicU8>,
    send_error: Arc<AtomicI32>,
}

impl FrameSink for Breakable {
    fn send(&mut self, _now: Instant, _frame: &[u8]) -> io::Result<()> {
        match self.send_error.load(Ordering::Acquire) {
            0 => Ok(()),
            e => Err(io::Error::from_raw_os_error(e)),
        }
    }
}

impl Device for Breakable {
    fn recv(&mut self, _now: Instant, _buf: &mut [u8]) -> io::Result<Option<usize>> {
        match self.mode.load(Ordering::Acquire) {
            RUN => Ok(None),
            FAIL => Err(io::Error::from_raw_os_error(libc::EIO)),
            _ => panic!("the breakable device broke"),
        }
    }

    fn mtu(&self) -> usize {
        1500
    }
}

fn stack() -> (Stack, Arc<AtomicU8>) {
    let (stack, mode, _) = stack_with_send_error();
    (stack, mode)
}

fn stack_with_send_error() -> (Stack, Arc<AtomicU8>, Arc<AtomicI32>) {
    let mode = Arc::new(AtomicU8::new(RUN));
    let send_error = Arc::new(AtomicI32::new(0));
    let dev = Breakable {
        mode: mode.clone(),
        send_error: send_error.clone(),
    };
    let stack = StackBuilder::device(dev)
        .addr("10.0.0.1/24".parse().unwrap())
        .start()
        .unwrap();
    (stack, mode, send_error)
}

fn is_netdown<T: std::fmt::Debug>(r: io::Result<T>) -> bool {
    match r {
        Err(e) => e.raw_os_error() == Some(libc::ENETDOWN),
        Ok(v) => panic!("expected ENETDOWN, got {v:?}"),
    }
}

/// Blocks an accept, a read, a connect and a poller wait in threads,
/// breaks the device with `how`, and checks that each ends with ENETDOWN.
fn blocked_calls_end_with_enetdown(how: u8) -> Stack {
    let (stack, mode) = stack();
    let listener = TcpListener::bind(&stack, "0.0.0.0:80").unwrap();
    let udp = UdpSocket::bind(&stack, "0.0.0.0:53").unwrap();
    let poller = Arc::new(Poller::new(&stack).unwrap());
    poller
        .register(listener.as_fd(), 1, Interest::READABLE)
        .unwrap();
    let mut events = [PollEvent::default(); 4];
    assert_eq!(poller.wait(&mut events, Some(Duration::ZERO)).unwrap(), 0);

    let accept = thread::spawn(move || listener.accept().map(|_| ()));
    let read = thread::spawn(move || udp.recv_from(&mut [0u8; 64]).map(|_| ()));
    let s = stack.clone();
    // The SYN is lost: connect waits for the stack.
    let connect = thread::spawn(move || {
        TcpStream::connect(&s, "10.0.0.2:80").and_then(|mut c| c.read(&mut [0u8; 1]))
    });
    let p = poller.clone();
    let wait = thread::spawn(move || {
        let mut events = [PollEvent::default(); 4];
        p.wait(&mut events, None)
    });
    // Let them block (if one has not yet, it fails at its start instead:
    // ENETDOWN all the same).
    thread::sleep(Duration::from_millis(50));
    assert!(stack.last_error().is_none());
    mode.store(how, Ordering::Release);

    assert!(is_netdown(accept.join().unwrap()));
    assert!(is_netdown(read.join().unwrap()));
    assert!(is_netdown(connect.join().unwrap()));
    assert!(is_netdown(wait.join().unwrap()));
    // Later calls fail too, and the poller's descriptor stays readable.
    assert!(is_netdown(TcpListener::bind(&stack, "0.0.0.0:81")));
    assert!(is_netdown(UdpSocket::bind(&stack, "0.0.0.0:54")));
    assert!(is_netdown(Poller::new(&stack)));
    let mut pfd = libc::pollfd {
        fd: poller.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one live pollfd.
    assert_eq!(unsafe { libc::poll(&mut pfd, 1, 0) }, 1);
    stack
}

#[test]
fn a_failing_device_stops_the_stack_loudly() {
    let stack = blocked_calls_end_with_enetdown(FAIL);
    let why = stack.last_error().expect("a cause");
    assert!(why.starts_with("device failed"), "{why}");
    assert!(
        why.contains(&io::Error::from_raw_os_error(libc::EIO).to_string()),
        "{why}"
    );
}

#[test]
fn a_panicking_stack_thread_stops_the_stack_loudly() {
    let stack = blocked_calls_end_with_enetdown(PANIC);
    let why = stack.last_error().expect("a cause");
    assert!(why.starts_with("stack thread panicked"), "{why}");
    assert!(why.contains("the breakable device broke"), "{why}");
}

#[test]
fn a_stopped_stack_has_no_error() {
    let (stack, _mode) = stack();
    let listener = TcpListener::bind(&stack, "0.0.0.0:80").unwrap();
    stack.stop();
    assert!(is_netdown(listener.accept()));
    assert_eq!(stack.last_error(), None);
}

#[test]
fn a_transmit_error_stops_the_stack_only_when_the_device_is_gone() {
    let (stack, _mode, send_error) = stack_with_send_error();
    let udp = UdpSocket::bind(&stack, "0.0.0.0:53").unwrap();
    // EIO (a TAP whose interface is down): frames are lost, the stack runs.
    send_error.store(libc::EIO, Ordering::Release);
    // Each new destination sends an ARP request.
    udp.send_to(b"x", "10.0.0.2:9").unwrap();
    let poller = Poller::new(&stack).unwrap();
    let mut events = [PollEvent::default(); 4];
    // Gives the stack thread time to transmit: a wait that times out.
    poller
        .wait(&mut events, Some(Duration::from_millis(20)))
        .unwrap();
    assert_eq!(stack.last_error(), None);
    udp.send_to(b"x", "10.0.0.3:9").unwrap();

    // EBADFD (the TAP was deleted): the stack stops, loudly.
    let reader = udp.try_clone().unwrap();
    let read = thread::spawn(move || reader.recv_from(&mut [0u8; 64]).map(|_| ()));
    send_error.store(libc::EBADFD, Ordering::Release);
    udp.send_to(b"x", "10.0.0.4:9").unwrap();
    assert!(is_netdown(read.join().unwrap()));
    let why = stack.last_error().expect("a cause");
    assert!(why.starts_with("device failed"), "{why}");
}
