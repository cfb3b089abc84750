//! The `tokio` feature over the in-memory link: echo, many concurrent
//! tasks on both runtimes, half-close, UDP, cancellation of pending reads
//! and accepts, wake-ups that reach only the socket's own tasks, and a
//! stack that dies under pending futures.

use std::future::Future;
use std::io;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Instant;

use sockets_api::tokio::{TcpListener, TcpStream, UdpSocket};
use sockets_api::{Device, FrameSink, Stack, StackBuilder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn pair() -> (Stack, Stack) {
    StackBuilder::memory_pair(
        StackBuilder::memory().addr("10.0.0.1/24".parse().unwrap()),
        StackBuilder::memory().addr("10.0.0.2/24".parse().unwrap()),
    )
    .unwrap()
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

fn multi_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap()
}

/// Polls `f` once with a waker that counts its wake-ups.
fn poll_once<F: Future>(f: Pin<&mut F>, wakes: &Arc<Counter>) -> Poll<F::Output> {
    let waker = Waker::from(wakes.clone());
    f.poll(&mut Context::from_waker(&waker))
}

#[derive(Default)]
struct Counter(AtomicUsize);

impl Wake for Counter {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

impl Counter {
    fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// An echo server task per connection (split halves, tokio::io::copy).
async fn echo_server(listener: TcpListener, conns: usize) -> io::Result<u64> {
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let (mut conn, peer) = listener.accept().await?;
        assert_eq!(conn.peer_addr()?, peer);
        tasks.push(tokio::spawn(async move {
            let (mut rd, mut wr) = conn.split();
            let n = tokio::io::copy(&mut rd, &mut wr).await?;
            wr.shutdown().await?;
            io::Result::Ok(n)
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap()?;
    }
    Ok(total)
}

/// Sends `len` bytes of a pattern (from another task), reads the echo to
/// its end, and checks it.
async fn echo_client(client: Stack, port: u16, len: usize, seed: u8) -> io::Result<()> {
    let stream = TcpStream::connect(&client, ("10.0.0.1", port)).await?;
    stream.set_nodelay(true)?;
    assert!(stream.nodelay()?);
    let data: Vec<u8> = (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed)
        .collect();
    let (mut rd, mut wr) = stream.into_split();
    let sent = data.clone();
    let writer = tokio::spawn(async move {
        wr.write_all(&sent).await?;
        // Dropping the owned write half sends our FIN.
        drop(wr);
        io::Result::Ok(())
    });
    let mut back = Vec::with_capacity(len);
    rd.read_to_end(&mut back).await?;
    writer.await.unwrap()?;
    assert_eq!(back.len(), data.len());
    assert!(back == data, "echo differs");
    Ok(())
}

#[test]
fn echo_current_thread() {
    let (server, client) = pair();
    current_thread().block_on(async {
        let listener = TcpListener::bind(&server, "0.0.0.0:7").await.unwrap();
        assert_eq!(listener.local_addr().unwrap().port(), 7);
        let srv = tokio::spawn(echo_server(listener, 1));
        echo_client(client, 7, 300_000, 1).await.unwrap();
        assert_eq!(srv.await.unwrap().unwrap(), 300_000);
    });
}

#[test]
fn many_concurrent_tasks_multi_thread() {
    const CONNS: usize = 64;
    const LEN: usize = 40_000;
    let (server, client) = pair();
    multi_thread().block_on(async {
        let listener = TcpListener::bind(&server, "0.0.0.0:8").await.unwrap();
        let srv = tokio::spawn(echo_server(listener, CONNS));
        let clients: Vec<_> = (0..CONNS)
            .map(|i| tokio::spawn(echo_client(client.clone(), 8, LEN, i as u8)))
            .collect();
        for c in clients {
            c.await.unwrap().unwrap();
        }
        assert_eq!(srv.await.unwrap().unwrap(), (CONNS * LEN) as u64);
    });
}

#[test]
fn half_close_keeps_the_other_direction() {
    let (server, client) = pair();
    current_thread().block_on(async {
        let listener = TcpListener::bind(&server, "0.0.0.0:9").await.unwrap();
        let srv = tokio::spawn(async move {
            let (mut conn, _) = listener.accept().await.unwrap();
            // Read the request to its end (the client's FIN) ...
            let mut req = Vec::new();
            conn.read_to_end(&mut req).await.unwrap();
            // ... and still answer on our open half.
            conn.write_all(b"got ").await.unwrap();
            conn.write_all(&req).await.unwrap();
            conn.shutdown().await.unwrap();
            // Reading after end of stream keeps returning 0.
            assert_eq!(conn.read(&mut [0u8; 8]).await.unwrap(), 0);
        });
        let mut stream = TcpStream::connect(&client, "10.0.0.1:9").await.unwrap();
        stream.write_all(b"request").await.unwrap();
        stream.shutdown().await.unwrap();
        // Writing after our shutdown fails as on Linux (EPIPE).
        let err = stream.write_all(b"late").await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
        let mut reply = Vec::new();
        stream.read_to_end(&mut reply).await.unwrap();
        assert_eq!(reply, b"got request");
        srv.await.unwrap();
    });
}

#[test]
fn connect_refused_and_peer_addresses() {
    let (server, client) = pair();
    current_thread().block_on(async {
        let err = TcpStream::connect(&client, "10.0.0.1:1").await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
        let listener = TcpListener::bind(&server, "10.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        assert_ne!(port, 0);
        let stream = TcpStream::connect(&client, ("10.0.0.1", port))
            .await
            .unwrap();
        let (conn, peer) = listener.accept().await.unwrap();
        assert_eq!(peer, stream.local_addr().unwrap());
        assert_eq!(conn.local_addr().unwrap(), stream.peer_addr().unwrap());
    });
}

#[test]
fn udp_send_to_recv_from_connect_send_recv() {
    let (server, client) = pair();
    multi_thread().block_on(async {
        let srv = UdpSocket::bind(&server, "0.0.0.0:5353").await.unwrap();
        let cli = UdpSocket::bind(&client, "0.0.0.0:0").await.unwrap();
        let echo = tokio::spawn(async move {
            let mut buf = [0u8; 2048];
            for _ in 0..2 {
                let (n, from) = srv.recv_from(&mut buf).await.unwrap();
                srv.send_to(&buf[..n], from).await.unwrap();
            }
        });
        cli.send_to(b"one", "10.0.0.1:5353").await.unwrap();
        let mut buf = [0u8; 2048];
        let (n, from) = cli.recv_from(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"one");
        assert_eq!(from.to_string(), "10.0.0.1:5353");
        cli.connect("10.0.0.1:5353").await.unwrap();
        assert_eq!(cli.peer_addr().unwrap().to_string(), "10.0.0.1:5353");
        cli.send(&[7u8; 1400]).await.unwrap();
        let n = cli.recv(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], &[7u8; 1400][..]);
        echo.await.unwrap();
    });
}

/// A pending read dropped before data comes loses nothing: the next read
/// gets every byte. A pending accept dropped before the connection comes
/// does not take it.
#[test]
fn cancelled_read_and_accept_lose_nothing() {
    let (server, client) = pair();
    current_thread().block_on(async {
        let listener = TcpListener::bind(&server, "0.0.0.0:10").await.unwrap();
        let wakes = Arc::new(Counter::default());
        {
            let accept = pin!(listener.accept());
            assert!(poll_once(accept, &wakes).is_pending());
        }
        let mut stream = TcpStream::connect(&client, "10.0.0.1:10").await.unwrap();
        let (mut conn, _) = listener.accept().await.unwrap();

        let mut buf = [0u8; 64];
        {
            let read = pin!(conn.read(&mut buf));
            assert!(poll_once(read, &wakes).is_pending());
        }
        stream.write_all(b"all of it").await.unwrap();
        let mut got = [0u8; 9];
        conn.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"all of it");
        // The dropped futures' wakers were woken (the accept's by the
        // connection, the read's by the data), then forgotten.
        assert!(wakes.get() >= 1);

        // A cancelled recv_from does not take the datagram either.
        let a = UdpSocket::bind(&server, "0.0.0.0:11").await.unwrap();
        let b = UdpSocket::bind(&client, "0.0.0.0:0").await.unwrap();
        {
            let recv = pin!(a.recv_from(&mut buf));
            assert!(poll_once(recv, &wakes).is_pending());
        }
        b.send_to(b"dgram", "10.0.0.1:11").await.unwrap();
        let (n, _) = a.recv_from(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"dgram");
    });
}

/// Data for one connection wakes the task waiting on it and no other.
#[test]
fn only_the_sockets_own_tasks_are_woken() {
    let (server, client) = pair();
    current_thread().block_on(async {
        let listener = TcpListener::bind(&server, "0.0.0.0:12").await.unwrap();
        let mut sa = TcpStream::connect(&client, "10.0.0.1:12").await.unwrap();
        let (mut ca, _) = listener.accept().await.unwrap();
        let mut sb = TcpStream::connect(&client, "10.0.0.1:12").await.unwrap();
        let (mut cb, _) = listener.accept().await.unwrap();

        let (wa, wb) = (Arc::new(Counter::default()), Arc::new(Counter::default()));
        let (mut ba, mut bb) = ([0u8; 16], [0u8; 16]);
        let mut ra = pin!(ca.read(&mut ba));
        let mut rb = pin!(cb.read(&mut bb));
        assert!(poll_once(ra.as_mut(), &wa).is_pending());
        assert!(poll_once(rb.as_mut(), &wb).is_pending());

        // Data for B: once B's reader is woken the event was routed.
        sb.write_all(b"for b").await.unwrap();
        while wb.get() == 0 {
            tokio::task::yield_now().await;
        }
        assert_eq!(wa.get(), 0, "A's task was woken by B's data");
        match poll_once(rb.as_mut(), &wb) {
            Poll::Ready(r) => assert_eq!(r.unwrap(), 5),
            Poll::Pending => panic!("B woken without data"),
        }
        assert_eq!(&bb[..5], b"for b");

        sa.write_all(b"for a").await.unwrap();
        while wa.get() == 0 {
            tokio::task::yield_now().await;
        }
        match poll_once(ra.as_mut(), &wa) {
            Poll::Ready(r) => assert_eq!(r.unwrap(), 5),
            Poll::Pending => panic!("A woken without data"),
        }
        assert_eq!(&ba[..5], b"for a");
    });
}

const RUN: u8 = 0;
const FAIL: u8 = 1;
const PANIC: u8 = 2;

/// A link that loses every frame until told to fail (receive error) or
/// panic.
struct Breakable(Arc<AtomicU8>);

impl FrameSink for Breakable {
    fn send(&mut self, _now: Instant, _frame: &[u8]) -> io::Result<()> {
        Ok(())
    }
}

impl Device for Breakable {
    fn recv(&mut self, _now: Instant, _buf: &mut [u8]) -> io::Result<Option<usize>> {
        match self.0.load(Ordering::Acquire) {
            RUN => Ok(None),
            FAIL => Err(io::Error::from_raw_os_error(libc::EIO)),
            _ => panic!("the breakable device broke"),
        }
    }

    fn mtu(&self) -> usize {
        1500
    }
}

/// Pending accept, recv_from, read and connect futures on a stack whose
/// device fails (or whose thread panics) all complete with ENETDOWN, and
/// `last_error` names the cause.
fn stack_dies_under_pending_futures(how: u8, cause: &str) {
    let mode = Arc::new(AtomicU8::new(RUN));
    let stack = StackBuilder::device(Breakable(mode.clone()))
        .addr("10.0.0.1/24".parse().unwrap())
        .start()
        .unwrap();
    multi_thread().block_on(async {
        let listener = TcpListener::bind(&stack, "0.0.0.0:80").await.unwrap();
        let udp = UdpSocket::bind(&stack, "0.0.0.0:53").await.unwrap();
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let s = stack.clone();
        let pending = tokio::spawn(async move {
            let wakes = Arc::new(Counter::default());
            let mut buf = [0u8; 64];
            let mut accept = pin!(listener.accept());
            let mut recv = pin!(udp.recv_from(&mut buf));
            // The SYN to an address nobody answers stays unanswered.
            let mut connect = pin!(TcpStream::connect(&s, "10.0.0.9:80"));
            assert!(poll_once(accept.as_mut(), &wakes).is_pending());
            assert!(poll_once(recv.as_mut(), &wakes).is_pending());
            assert!(poll_once(connect.as_mut(), &wakes).is_pending());
            ready_tx.send(()).unwrap();
            let (a, r, c) = tokio::join!(accept, recv, connect);
            (a.map(|_| ()), r.map(|_| ()), c.map(|_| ()))
        });
        ready_rx.await.unwrap();
        mode.store(how, Ordering::Release);
        let (a, r, c) = pending.await.unwrap();
        for res in [a, r, c] {
            assert_eq!(res.unwrap_err().raw_os_error(), Some(libc::ENETDOWN));
        }
        let why = stack.last_error().expect("a cause");
        assert!(why.contains(cause), "{why}");
        // Later operations fail at once.
        let err = UdpSocket::bind(&stack, "0.0.0.0:54").await.unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENETDOWN));
    });
}

#[test]
fn device_failure_ends_pending_futures() {
    stack_dies_under_pending_futures(FAIL, "device failed");
}

#[test]
fn stack_panic_ends_pending_futures() {
    stack_dies_under_pending_futures(PANIC, "panicked");
}

/// A pending read on a live connection ends with ENETDOWN when the stack
/// is stopped.
#[test]
fn stop_ends_a_pending_read() {
    let (server, client) = pair();
    current_thread().block_on(async {
        let listener = TcpListener::bind(&server, "0.0.0.0:13").await.unwrap();
        let _stream = TcpStream::connect(&client, "10.0.0.1:13").await.unwrap();
        let (mut conn, _) = listener.accept().await.unwrap();
        let wakes = Arc::new(Counter::default());
        let mut buf = [0u8; 8];
        let mut read = pin!(conn.read(&mut buf));
        assert!(poll_once(read.as_mut(), &wakes).is_pending());
        server.stop();
        assert!(wakes.get() >= 1);
        match poll_once(read.as_mut(), &wakes) {
            Poll::Ready(r) => assert_eq!(r.unwrap_err().raw_os_error(), Some(libc::ENETDOWN)),
            Poll::Pending => panic!("still pending after stop"),
        }
    });
}

/// mio (through tokio's `AsyncFd`) waits on the poller's readiness
/// descriptor and on a kernel pipe in one `select!`.
#[test]
fn tokio_async_fd_on_the_poller_and_a_kernel_pipe() {
    use sockets_api::{Interest, PollEvent, Poller};
    use std::io::{Read, Write};
    use std::time::Duration;
    use tokio::io::unix::AsyncFd;

    let (server, client) = pair();
    let listener = sockets_api::TcpListener::bind(&server, "0.0.0.0:14").unwrap();
    let mut stream = sockets_api::TcpStream::connect(&client, "10.0.0.1:14").unwrap();
    let (mut conn, _) = listener.accept().unwrap();
    conn.set_nonblocking(true).unwrap();
    let poller = Poller::new(&server).unwrap();
    poller
        .register(conn.as_fd(), 1, Interest::READABLE)
        .unwrap();
    current_thread_io().block_on(async {
        // SAFETY: the poller owns its eventfd for its whole life (the
        // AsyncFd owns the poller) and always reports that descriptor.
        let afd = unsafe { AsyncFd::register(poller) }.unwrap();
        let (mut tx, mut rx) = tokio::net::unix::pipe::pipe().unwrap();
        stream.write_all(b"ustack").unwrap();
        tx.write_all(b"kernel").await.unwrap();
        let (mut from_socket, mut from_pipe) = (Vec::new(), Vec::new());
        while from_socket != b"ustack" || from_pipe != b"kernel" {
            let mut buf = [0u8; 64];
            tokio::select! {
                guard = afd.readable() => {
                    let mut guard = guard.unwrap();
                    // Cleared before looking: a change after the look is
                    // a new edge.
                    guard.clear_ready();
                    let mut events = [PollEvent::default(); 8];
                    let n = guard.get_inner().wait(&mut events, Some(Duration::ZERO)).unwrap();
                    if n > 0 {
                        while let Ok(k) = conn.read(&mut buf) {
                            if k == 0 {
                                break;
                            }
                            from_socket.extend_from_slice(&buf[..k]);
                        }
                    }
                }
                n = rx.read(&mut buf) => from_pipe.extend_from_slice(&buf[..n.unwrap()]),
            }
        }
    });
}

fn current_thread_io() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap()
}

/// `readable`, `peek`, `try_read`, `writable` and `try_write`, as tokio's
/// readiness-then-try pattern uses them.
#[test]
fn readiness_peek_and_try_io() {
    let (server, client) = pair();
    multi_thread().block_on(async {
        let listener = TcpListener::bind(&server, "0.0.0.0:15").await.unwrap();
        let stream = TcpStream::connect(&client, "10.0.0.1:15").await.unwrap();
        let (conn, _) = listener.accept().await.unwrap();
        let reader = tokio::spawn(async move {
            conn.readable().await.unwrap();
            let mut buf = [0u8; 16];
            let n = conn.peek(&mut buf).await.unwrap();
            // What arrived so far, still queued for the reads below.
            assert!(n > 0 && b"peeked".starts_with(&buf[..n]));
            let mut got = Vec::new();
            while got.len() < 6 {
                conn.readable().await.unwrap();
                match conn.try_read(&mut buf) {
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => panic!("{e}"),
                }
            }
            assert_eq!(got, b"peeked");
        });
        stream.writable().await.unwrap();
        assert_eq!(stream.try_write(b"peeked").unwrap(), 6);
        reader.await.unwrap();
    });
}

/// futures' `AsyncRead`/`AsyncWrite` (feature `futures-io`).
#[test]
fn futures_io_traits() {
    use futures_io::{AsyncRead as FRead, AsyncWrite as FWrite};
    use std::future::poll_fn;

    let (server, client) = pair();
    current_thread().block_on(async {
        let listener = TcpListener::bind(&server, "0.0.0.0:16").await.unwrap();
        let mut stream = TcpStream::connect(&client, "10.0.0.1:16").await.unwrap();
        let (mut conn, _) = listener.accept().await.unwrap();
        let n = poll_fn(|cx| FWrite::poll_write(Pin::new(&mut stream), cx, b"futures"))
            .await
            .unwrap();
        assert_eq!(n, 7);
        poll_fn(|cx| FWrite::poll_close(Pin::new(&mut stream), cx))
            .await
            .unwrap();
        let mut got = Vec::new();
        loop {
            let mut buf = [0u8; 4];
            let n = poll_fn(|cx| FRead::poll_read(Pin::new(&mut conn), cx, &mut buf))
                .await
                .unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got, b"futures");
    });
}

/// Over a link that loses, duplicates and reorders frames, progress
/// depends on the stack's retransmission timers: they must wake the
/// waiting tasks too (no lost wake-up leaves a task hanging).
#[test]
fn echo_over_a_lossy_link() {
    let faults = sockets_api::FaultConfig {
        loss: 0.03,
        dup: 0.02,
        reorder: 0.03,
        seed: 7,
        ..Default::default()
    };
    let (server, client) = StackBuilder::memory_pair(
        StackBuilder::memory()
            .addr("10.0.0.1/24".parse().unwrap())
            .faults(faults),
        StackBuilder::memory()
            .addr("10.0.0.2/24".parse().unwrap())
            .faults(faults),
    )
    .unwrap();
    multi_thread().block_on(async {
        let listener = TcpListener::bind(&server, "0.0.0.0:17").await.unwrap();
        let srv = tokio::spawn(echo_server(listener, 4));
        let clients: Vec<_> = (0..4)
            .map(|i| tokio::spawn(echo_client(client.clone(), 17, 60_000, i)))
            .collect();
        for c in clients {
            c.await.unwrap().unwrap();
        }
        assert_eq!(srv.await.unwrap().unwrap(), 240_000);
    });
}
