//! The poller's readiness descriptor (an eventfd) seen through poll(2):
//! readable when a registered socket becomes ready, while a
//! level-triggered one stays ready, not once the ready ones are drained;
//! and a kernel pipe waited on together with a ustack socket.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use sockets_api::{Interest, PollEvent, Poller, Stack, StackBuilder, TcpListener, TcpStream};

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

/// poll(2) on `fds` for readability with `timeout_ms`; the readable ones.
fn poll_in(fds: &[RawFd], timeout_ms: i32) -> Vec<RawFd> {
    let mut pfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|&fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    // SAFETY: `pfds` is a live array of `pfds.len()` pollfd structures.
    let n = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, timeout_ms) };
    assert!(n >= 0, "poll: {}", std::io::Error::last_os_error());
    pfds.iter()
        .filter(|p| p.revents & libc::POLLIN != 0)
        .map(|p| p.fd)
        .collect()
}

fn readable(fd: RawFd) -> bool {
    !poll_in(&[fd], 0).is_empty()
}

/// Blocks in poll(2) (up to 10 s) until `fd` is readable.
fn until_readable(fd: RawFd) -> bool {
    !poll_in(&[fd], 10_000).is_empty()
}

fn tokens(poller: &Poller) -> Vec<u64> {
    let mut events = [PollEvent::default(); 64];
    let n = poller.wait(&mut events, NOW).unwrap();
    events[..n].iter().map(|e| e.token).collect()
}

#[test]
fn readable_while_a_registered_socket_is_ready() {
    let (a, b) = pair();
    let listener = TcpListener::bind(&a, "0.0.0.0:80").unwrap();
    let poller = Poller::new(&a).unwrap();
    let pfd = poller.as_raw_fd();
    assert!(!readable(pfd));
    poller
        .register(listener.as_fd(), 1, Interest::READABLE)
        .unwrap();
    // Registration lists the descriptor to be looked at: readable, and a
    // look that finds nothing clears it.
    assert!(tokens(&poller).is_empty());
    assert!(!readable(pfd));

    let mut client = TcpStream::connect(&b, "10.0.0.1:80").unwrap();
    assert!(until_readable(pfd));
    assert_eq!(tokens(&poller), [1]);
    // Level-triggered and still ready (not accepted): stays readable.
    assert!(readable(pfd));
    assert_eq!(tokens(&poller), [1]);
    let (mut conn, _) = listener.accept().unwrap();
    assert!(tokens(&poller).is_empty());
    assert!(!readable(pfd));

    poller
        .register(conn.as_fd(), 2, Interest::READABLE)
        .unwrap();
    assert!(tokens(&poller).is_empty());
    assert!(!readable(pfd));
    client.write_all(b"hello").unwrap();
    assert!(until_readable(pfd));
    assert_eq!(tokens(&poller), [2]);
    assert!(readable(pfd));
    let mut buf = [0u8; 16];
    let mut got = 0;
    while got < 5 {
        got += conn.read(&mut buf[got..]).unwrap();
    }
    assert_eq!(&buf[..5], b"hello");
    // Drained: the next look reports nothing and the descriptor clears.
    assert!(tokens(&poller).is_empty());
    assert!(!readable(pfd));
}

#[test]
fn edge_triggered_registration_is_reported_once() {
    let (a, b) = pair();
    let listener = TcpListener::bind(&a, "0.0.0.0:81").unwrap();
    let poller = Poller::new(&a).unwrap();
    let pfd = poller.as_raw_fd();
    poller
        .register(listener.as_fd(), 7, Interest::READABLE.edge())
        .unwrap();
    assert!(tokens(&poller).is_empty());
    let _client = TcpStream::connect(&b, "10.0.0.1:81").unwrap();
    assert!(until_readable(pfd));
    assert_eq!(tokens(&poller), [7]);
    // Still ready, but reported: nothing listed, not readable.
    assert!(!readable(pfd));
}

#[test]
fn wake_and_stop_make_it_readable() {
    let (a, _b) = pair();
    let poller = Poller::new(&a).unwrap();
    let pfd = poller.as_raw_fd();
    poller.wake();
    assert!(readable(pfd));
    assert!(tokens(&poller).is_empty());
    assert!(!readable(pfd));
    a.stop();
    assert!(readable(pfd));
    let mut events = [PollEvent::default(); 4];
    let e = poller.wait(&mut events, NOW).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ENETDOWN));
}

/// A kernel pipe and a ustack socket in one poll(2) loop: the loop sees
/// each when it has data, through the pipe itself and the poller's
/// descriptor.
#[test]
fn kernel_pipe_and_ustack_socket_together() {
    let (a, b) = pair();
    let listener = TcpListener::bind(&a, "0.0.0.0:82").unwrap();
    let mut client = TcpStream::connect(&b, "10.0.0.1:82").unwrap();
    let (mut conn, _) = listener.accept().unwrap();
    let poller = Poller::new(&a).unwrap();
    poller
        .register(conn.as_fd(), 1, Interest::READABLE)
        .unwrap();
    let pfd = poller.as_raw_fd();

    let mut fds = [0 as RawFd; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 returns.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    let (pipe_r, pipe_w) = (fds[0], fds[1]);

    let mut from_pipe = Vec::new();
    let mut from_socket = Vec::new();
    let mut step = 0;
    while from_pipe != b"kernel" || from_socket != b"ustack" {
        // Produce one input at a time, alternating, once the loop is idle.
        let ready = poll_in(&[pipe_r, pfd], 0);
        if ready.is_empty() {
            match step {
                0 => {
                    // SAFETY: writes 6 bytes from a live buffer to our pipe.
                    let n = unsafe { libc::write(pipe_w, b"kernel".as_ptr().cast(), 6) };
                    assert_eq!(n, 6);
                }
                1 => client.write_all(b"ustack").unwrap(),
                _ => {}
            }
            step += 1;
        }
        let ready = poll_in(&[pipe_r, pfd], 10_000);
        assert!(!ready.is_empty(), "nothing readable");
        if ready.contains(&pipe_r) {
            let mut buf = [0u8; 64];
            // SAFETY: reads at most 64 bytes into a live buffer.
            let n = unsafe { libc::read(pipe_r, buf.as_mut_ptr().cast(), 64) };
            assert!(n > 0);
            from_pipe.extend_from_slice(&buf[..n as usize]);
        }
        if ready.contains(&pfd) {
            let mut events = [PollEvent::default(); 8];
            let n = poller.wait(&mut events, NOW).unwrap();
            for e in &events[..n] {
                assert_eq!(e.token, 1);
                conn.set_nonblocking(true).unwrap();
                let mut buf = [0u8; 64];
                while let Ok(k) = conn.read(&mut buf) {
                    if k == 0 {
                        break;
                    }
                    from_socket.extend_from_slice(&buf[..k]);
                }
            }
        }
    }
    // SAFETY: closes the two pipe descriptors we own and no longer use.
    unsafe {
        libc::close(pipe_r);
        libc::close(pipe_w);
    }
}

/// Until the descriptor is handed out the poller writes no eventfd (its
/// waits sleep on a condition variable); handing it out makes it readable
/// for what is listed already.
#[test]
fn handed_out_after_a_socket_became_ready() {
    let (a, b) = pair();
    let listener = TcpListener::bind(&a, "0.0.0.0:84").unwrap();
    let poller = Poller::new(&a).unwrap();
    poller
        .register(listener.as_fd(), 7, Interest::READABLE)
        .unwrap();
    let _client = TcpStream::connect(&b, "10.0.0.1:84").unwrap();
    // A blocking wait, woken by the stack thread.
    let mut events = [PollEvent::default(); 4];
    let n = poller
        .wait(&mut events, Some(Duration::from_secs(10)))
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(events[0].token, 7);
    // Level-triggered and not accepted: still listed, so the descriptor
    // handed out now is readable at once.
    let pfd = poller.as_raw_fd();
    assert!(readable(pfd));
    assert_eq!(tokens(&poller), [7]);
    let _conn = listener.accept().unwrap();
    assert!(tokens(&poller).is_empty());
    assert!(!readable(pfd));
}
