//! A ustack socket and a kernel pipe waited on at once by the kernel's
//! epoll (edge-triggered, as mio registers descriptors), through the
//! poller's readiness descriptor.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use sockets_api::{Interest, PollEvent, Poller, StackBuilder, TcpListener, TcpStream};

const PIPE: u64 = 1;
const USTACK: u64 = 2;

/// An epoll instance, closed on drop.
struct Epoll(RawFd);

impl Epoll {
    fn new() -> Epoll {
        // SAFETY: plain system call without pointers.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        assert!(fd >= 0);
        Epoll(fd)
    }

    /// Adds `fd` for edge-triggered readability, reported as `token`.
    fn add(&self, fd: RawFd, token: u64) {
        let mut ev = libc::epoll_event {
            events: (libc::EPOLLIN | libc::EPOLLET) as u32,
            u64: token,
        };
        // SAFETY: `ev` is a live epoll_event for the duration of the call.
        let r = unsafe { libc::epoll_ctl(self.0, libc::EPOLL_CTL_ADD, fd, &mut ev) };
        assert_eq!(r, 0, "{}", std::io::Error::last_os_error());
    }

    /// The tokens reported within 10 s (empty on timeout).
    fn wait(&self) -> Vec<u64> {
        let mut evs = [libc::epoll_event { events: 0, u64: 0 }; 8];
        // SAFETY: `evs` has room for the 8 events we allow.
        let n = unsafe { libc::epoll_wait(self.0, evs.as_mut_ptr(), 8, 10_000) };
        assert!(n >= 0, "{}", std::io::Error::last_os_error());
        evs[..n as usize].iter().map(|e| e.u64).collect()
    }
}

impl Drop for Epoll {
    fn drop(&mut self) {
        // SAFETY: closes the descriptor this value owns.
        unsafe { libc::close(self.0) };
    }
}

#[test]
fn epoll_waits_on_a_ustack_socket_and_a_kernel_pipe() {
    let (a, b) = StackBuilder::memory_pair(
        StackBuilder::memory().addr("10.0.0.1/24".parse().unwrap()),
        StackBuilder::memory().addr("10.0.0.2/24".parse().unwrap()),
    )
    .unwrap();
    let listener = TcpListener::bind(&a, "0.0.0.0:90").unwrap();
    let mut client = TcpStream::connect(&b, "10.0.0.1:90").unwrap();
    let (mut conn, _) = listener.accept().unwrap();
    conn.set_nonblocking(true).unwrap();
    let poller = Poller::new(&a).unwrap();
    poller
        .register(conn.as_fd(), 7, Interest::READABLE)
        .unwrap();

    let mut fds = [0 as RawFd; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 returns.
    let r = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) };
    assert_eq!(r, 0);
    let (pipe_r, pipe_w) = (fds[0], fds[1]);
    let epoll = Epoll::new();
    epoll.add(pipe_r, PIPE);
    epoll.add(poller.as_raw_fd(), USTACK);

    // Handles what epoll reported; returns what each source gave.
    let mut from_socket = Vec::new();
    let mut from_pipe = Vec::new();
    let mut handle = |tokens: Vec<u64>, from_socket: &mut Vec<u8>, from_pipe: &mut Vec<u8>| {
        assert!(!tokens.is_empty(), "epoll timed out");
        for t in tokens {
            match t {
                PIPE => loop {
                    let mut buf = [0u8; 64];
                    // SAFETY: reads at most 64 bytes into a live buffer.
                    let n = unsafe { libc::read(pipe_r, buf.as_mut_ptr().cast(), 64) };
                    if n <= 0 {
                        break;
                    }
                    from_pipe.extend_from_slice(&buf[..n as usize]);
                },
                USTACK => {
                    let mut events = [PollEvent::default(); 8];
                    let n = poller.wait(&mut events, Some(Duration::ZERO)).unwrap();
                    for e in &events[..n] {
                        assert_eq!(e.token, 7);
                        let mut buf = [0u8; 64];
                        while let Ok(k) = conn.read(&mut buf) {
                            if k == 0 {
                                break;
                            }
                            from_socket.extend_from_slice(&buf[..k]);
                        }
                    }
                }
                t => panic!("unknown token {t}"),
            }
        }
    };

    // The socket alone, then the pipe alone: each wakes epoll.
    client.write_all(b"ustack").unwrap();
    while from_socket != b"ustack" {
        handle(epoll.wait(), &mut from_socket, &mut from_pipe);
    }
    assert!(from_pipe.is_empty());
    // SAFETY: writes 6 bytes from a live buffer to our pipe.
    assert_eq!(
        unsafe { libc::write(pipe_w, b"kernel".as_ptr().cast(), 6) },
        6
    );
    while from_pipe != b"kernel" {
        handle(epoll.wait(), &mut from_socket, &mut from_pipe);
    }
    // Both at once, and again (edge-triggered: each change is a new edge).
    for round in 0..3 {
        client.write_all(b"!").unwrap();
        // SAFETY: as above.
        assert_eq!(unsafe { libc::write(pipe_w, b"?".as_ptr().cast(), 1) }, 1);
        while from_socket.len() < 7 + round || from_pipe.len() < 7 + round {
            handle(epoll.wait(), &mut from_socket, &mut from_pipe);
        }
    }
    assert_eq!(from_socket, b"ustack!!!");
    assert_eq!(from_pipe, b"kernel???");
    // SAFETY: closes the two pipe descriptors we own.
    unsafe {
        libc::close(pipe_r);
        libc::close(pipe_w);
    }
}
