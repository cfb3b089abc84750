//! The session driven directly, with a virtual clock: deadlines,
//! pipelining, bounded output, lingering close, 503.

use std::time::Duration;

use super::*;
use crate::test_support::{Parsed, TempDir, parse_responses};

const HELLO: &[u8] = b"Hello, world!\n";
const GET_HELLO: &[u8] = b"GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n";

fn pattern(n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| (i.wrapping_mul(13) ^ (i >> 9)) as u8)
        .collect()
}

struct Site {
    _dir: TempDir,
    server: FileServer,
    t0: Instant,
}

impl Site {
    fn new(name: &str) -> Site {
        let dir = TempDir::new(name);
        dir.file("root/hello.txt", HELLO);
        dir.file("root/large.bin", &pattern(3 << 20));
        let server = FileServer::new(&dir.path().join("root")).unwrap();
        Site {
            _dir: dir,
            server,
            t0: Instant::now(),
        }
    }

    /// The virtual time `secs` after the start.
    fn at(&self, secs: f64) -> Instant {
        self.t0 + Duration::from_secs_f64(secs)
    }

    fn session(&self) -> Session {
        self.server.session(self.t0, "198.51.100.1")
    }
}

/// Takes all the output at `now` in pieces of at most `piece` bytes;
/// returns it and the largest output the session held at once.
fn take_output(session: &mut Session, now: Instant, piece: usize) -> (Vec<u8>, usize) {
    let mut all = Vec::new();
    let mut most = 0;
    while session.wants_write() {
        let out = session.poll_output();
        most = most.max(out.len());
        let n = out.len().min(piece);
        all.extend_from_slice(&out[..n]);
        session.consume_output(now, n);
    }
    assert!(session.poll_output().is_empty());
    (all, most)
}

fn records(session: &mut Session) -> Vec<RequestRecord> {
    std::iter::from_fn(|| session.poll_record()).collect()
}

#[test]
fn slowloris_is_cut_at_the_total_head_deadline() {
    let site = Site::new("session-slowloris");
    let mut s = site.session();
    // One byte every 3 s: each one arrives long before any per-read
    // timeout would fire, but the head as a whole is late.
    let mut t = 0.0;
    for &byte in GET_HELLO.iter().take(20) {
        let now = site.at(t);
        if s.poll_timeout().is_some_and(|d| now >= d) {
            s.handle_timeout(now);
            break;
        }
        assert!(s.wants_read());
        assert_eq!(s.handle_input(now, &[byte]), 1);
        assert!(s.is_finished().is_none(), "still in time at {t} s");
        t += 3.0;
    }
    assert_eq!(s.is_finished(), Some(CloseReason::HeadTimeout));
    assert!(t <= 12.0, "cut at the 10 s deadline, not later ({t} s)");
    assert_eq!(s.stats().requests, 0);
    assert!(s.poll_output().is_empty() && !s.wants_read());
    assert_eq!(s.poll_timeout(), None);

    // The same for a second request on a keep-alive connection: its clock
    // starts with its first byte, not with the connection.
    let mut s = site.session();
    s.handle_input(site.at(0.0), GET_HELLO);
    let (out, _) = take_output(&mut s, site.at(0.5), usize::MAX);
    assert_eq!(parse_responses(&out, &[false])[0].body, HELLO);
    s.handle_input(site.at(5.0), b"GET /hel");
    assert!(s.poll_timeout().unwrap() <= site.at(15.0));
    s.handle_timeout(site.at(14.9));
    assert!(s.is_finished().is_none());
    s.handle_input(site.at(14.9), b"lo.txt HTTP/1.1\r\n");
    s.handle_timeout(site.at(15.0));
    assert_eq!(s.is_finished(), Some(CloseReason::HeadTimeout));
    assert_eq!(s.stats().close, CloseReason::HeadTimeout);
    assert_eq!(CloseReason::HeadTimeout.to_string(), "request head timeout");
}

#[test]
fn sessions_can_move_between_threads() {
    fn assert_send<T: Send + 'static>() {}
    assert_send::<Session>();
}

#[test]
fn first_request_must_come_within_the_head_deadline() {
    let site = Site::new("session-silent");
    let mut s = site.session();
    assert!(s.wants_read() && !s.wants_write());
    assert_eq!(s.poll_timeout(), Some(site.at(10.0)));
    s.handle_timeout(site.at(9.0));
    assert!(s.is_finished().is_none());
    s.handle_timeout(site.at(10.0));
    assert_eq!(s.is_finished(), Some(CloseReason::HeadTimeout));
}

#[test]
fn keep_alive_idle_timeout_and_configured_limits() {
    let site = Site::new("session-idle");
    let mut s = site.session();
    s.handle_input(site.at(1.0), GET_HELLO);
    take_output(&mut s, site.at(2.0), usize::MAX);
    assert_eq!(records(&mut s).len(), 1);
    // Idle from the moment the response was taken.
    assert_eq!(s.poll_timeout(), Some(site.at(17.0)));
    // Taking nothing is no activity.
    s.consume_output(site.at(10.0), 0);
    assert_eq!(s.poll_timeout(), Some(site.at(17.0)));
    s.handle_timeout(site.at(16.0));
    assert!(s.is_finished().is_none() && s.wants_read());
    s.handle_timeout(site.at(17.0));
    assert_eq!(s.is_finished(), Some(CloseReason::IdleTimeout));

    // `--idle-timeout 60` and a 3 s head deadline.
    let server = site.server.clone().with_limits(ServerLimits {
        idle_timeout: Duration::from_secs(60),
        head_timeout: Duration::from_secs(3),
        ..ServerLimits::default()
    });
    assert_eq!(server.limits().idle_timeout, Duration::from_secs(60));
    let mut s = server.session(site.t0, "p");
    assert_eq!(s.poll_timeout(), Some(site.at(3.0)));
    s.handle_input(site.at(1.0), GET_HELLO);
    take_output(&mut s, site.at(1.0), usize::MAX);
    assert_eq!(s.poll_timeout(), Some(site.at(61.0)));
    s.handle_timeout(site.at(60.0));
    assert!(s.is_finished().is_none());
    s.handle_timeout(site.at(61.0));
    assert_eq!(s.is_finished(), Some(CloseReason::IdleTimeout));
}

#[test]
fn write_stall_drops_the_client_and_logs_an_incomplete_response() {
    let site = Site::new("session-stall");
    let mut s = site.session();
    s.handle_input(site.at(0.0), b"GET /large.bin HTTP/1.1\r\nHost: t\r\n\r\n");
    assert!(s.wants_write() && !s.wants_read());
    let head_len = s
        .poll_output()
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap()
        + 4;
    // The client takes 100 000 bytes at 1 s, then nothing.
    s.consume_output(site.at(1.0), 100_000);
    assert_eq!(s.poll_timeout(), Some(site.at(31.0)));
    s.handle_timeout(site.at(30.0));
    assert!(s.is_finished().is_none());
    // Slow progress keeps it alive.
    s.consume_output(site.at(30.0), 1);
    s.handle_timeout(site.at(59.0));
    assert!(s.is_finished().is_none());
    s.handle_timeout(site.at(60.0));
    assert_eq!(s.is_finished(), Some(CloseReason::WriteStalled));
    assert!(!s.wants_write() && s.poll_output().is_empty());
    let r = records(&mut s);
    assert_eq!(r.len(), 1);
    assert!(!r[0].complete);
    assert_eq!(r[0].status, 200);
    assert_eq!(r[0].body_bytes as usize, 100_001 - head_len);
    assert_eq!(s.stats().bytes_sent, 100_001);
}

#[test]
fn busy_session_answers_503_and_lingers() {
    let site = Site::new("session-busy");
    let mut s = site.server.busy_session(site.t0, "p");
    s.handle_input(site.at(0.5), GET_HELLO);
    let (out, _) = take_output(&mut s, site.at(0.5), usize::MAX);
    let r = parse_responses(&out, &[false]);
    assert_eq!(r[0].status, 503);
    assert_eq!(r[0].reason, "Service Unavailable");
    assert_eq!(r[0].header("Retry-After"), Some("5"));
    assert_eq!(r[0].header("Connection"), Some("close"));
    assert_eq!(records(&mut s)[0].status, 503);
    // Lingering close: shut down writing, keep draining briefly.
    assert!(s.wants_write_shutdown() && s.wants_read() && !s.wants_write());
    assert_eq!(s.poll_timeout(), Some(site.at(2.5)));
    assert!(s.stats().drain_before_close);
    assert_eq!(s.handle_input(site.at(1.0), GET_HELLO), GET_HELLO.len());
    assert!(s.poll_output().is_empty(), "nothing more is answered");
    s.handle_eof(site.at(1.5));
    assert_eq!(s.is_finished(), Some(CloseReason::Busy));
    assert_eq!(s.stats().requests, 1);
}

#[test]
fn lingering_close_after_an_error_is_bounded() {
    let site = Site::new("session-linger");
    let mut s = site.session();
    s.handle_input(site.at(0.0), b"BREW /pot HTTP/1.1\r\n\r\n");
    let (out, _) = take_output(&mut s, site.at(0.0), usize::MAX);
    assert_eq!(parse_responses(&out, &[false])[0].status, 400);
    assert!(s.wants_write_shutdown());
    // At most 1 MiB is drained...
    let junk = vec![b'x'; 64 * 1024];
    let mut fed = 0;
    while s.is_finished().is_none() {
        fed += s.handle_input(site.at(1.0), &junk);
        assert!(fed <= (1 << 20) + junk.len());
    }
    assert_eq!(s.is_finished(), Some(CloseReason::Rejected));
    // ... for at most 2 s.
    let mut s = site.session();
    s.handle_input(site.at(0.0), b"GET /\x01 HTTP/1.1\r\n\r\n");
    take_output(&mut s, site.at(1.0), usize::MAX);
    assert_eq!(s.poll_timeout(), Some(site.at(3.0)));
    s.handle_timeout(site.at(3.0));
    assert_eq!(s.is_finished(), Some(CloseReason::Rejected));
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let site = Site::new("session-pipeline");
    let mut s = site.session();
    let mut input = Vec::new();
    input.extend_from_slice(GET_HELLO);
    input.extend_from_slice(b"HEAD /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n");
    input.extend_from_slice(b"GET /large.bin HTTP/1.1\r\nHost: t\r\nRange: bytes=10-19\r\n\r\n");
    input.extend_from_slice(b"GET /nope HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(s.handle_input(site.at(0.0), &input), input.len());
    s.handle_eof(site.at(0.0));
    let (out, _) = take_output(&mut s, site.at(0.1), 7);
    let r: Vec<Parsed> = parse_responses(&out, &[false, true, false, false]);
    assert_eq!(r.len(), 4);
    assert_eq!(r[0].body, HELLO);
    assert_eq!(
        (r[1].status, r[1].header("Content-Length")),
        (200, Some("14"))
    );
    assert!(r[1].body.is_empty(), "HEAD has no body");
    assert_eq!(r[2].status, 206);
    assert_eq!(r[2].body, &pattern(3 << 20)[10..20]);
    assert_eq!(r[2].header("Content-Range"), Some("bytes 10-19/3145728"));
    assert_eq!(r[3].status, 404);
    assert_eq!(s.is_finished(), Some(CloseReason::ClientClosed));
    let logged = records(&mut s);
    let statuses: Vec<u16> = logged.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [200, 200, 206, 404]);
    assert!(
        logged
            .iter()
            .all(|r| r.complete && r.peer == "198.51.100.1")
    );
    assert_eq!(logged[1].body_bytes, 0);
    assert_eq!(logged[2].body_bytes, 10);
    let stats = s.stats();
    assert_eq!((stats.requests, stats.bytes_sent), (4, out.len() as u64));
    assert_eq!(stats.bytes_received, input.len() as u64);
}

#[test]
fn a_large_file_is_streamed_with_bounded_output() {
    let site = Site::new("session-large");
    let mut s = site.session();
    let request =
        b"GET /large.bin HTTP/1.1\r\nHost: t\r\n\r\nGET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n";
    s.handle_input(site.at(0.0), request);
    // While the body goes out, no more input is wanted.
    assert!(!s.wants_read());
    let (out, most) = take_output(&mut s, site.at(0.2), 100_000);
    assert!(most <= CHUNK_SIZE, "held {most} bytes of output at once");
    let r = parse_responses(&out, &[false, false]);
    assert_eq!(r.len(), 2);
    assert!(r[0].body == pattern(3 << 20), "body differs");
    assert_eq!(r[1].body, HELLO);
    let logged = records(&mut s);
    assert_eq!(logged[0].body_bytes, 3 << 20);
    assert!(logged[0].complete);
    // Idle again, with the output buffer given back.
    assert!(s.wants_read() && !s.wants_write());
    assert!(s.out.capacity() <= KEEP_OUTPUT_CAPACITY);
    assert_eq!(s.input.capacity(), 0, "no input buffer while idle");
}

#[test]
fn a_client_vanishing_mid_body_is_logged_incomplete() {
    let site = Site::new("session-vanish");
    let mut s = site.session();
    s.handle_input(site.at(0.0), b"GET /large.bin HTTP/1.1\r\nHost: t\r\n\r\n");
    let head_len = s
        .poll_output()
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap()
        + 4;
    let mut taken = 0;
    while taken < 600_000 {
        let n = s.poll_output().len().min(50_000);
        s.consume_output(site.at(0.1), n);
        taken += n;
    }
    s.handle_reset(site.at(0.2));
    assert_eq!(s.is_finished(), Some(CloseReason::Reset));
    let r = records(&mut s);
    assert_eq!(r.len(), 1);
    assert!(!r[0].complete);
    assert_eq!(r[0].body_bytes as usize, taken - head_len);
    assert!(!s.wants_read() && !s.wants_write() && s.poll_timeout().is_none());
    // Later calls are harmless.
    s.consume_output(site.at(0.3), 10);
    assert_eq!(s.handle_input(site.at(0.3), b"x"), 0);
    s.handle_timeout(site.at(100.0));
    assert_eq!(s.is_finished(), Some(CloseReason::Reset));
}

#[test]
fn end_of_stream_after_a_request_still_gets_the_answer() {
    let site = Site::new("session-eof");
    let mut s = site.session();
    s.handle_input(site.at(0.0), GET_HELLO);
    s.handle_eof(site.at(0.0));
    assert!(s.is_finished().is_none());
    let (out, _) = take_output(&mut s, site.at(0.1), usize::MAX);
    assert_eq!(parse_responses(&out, &[false])[0].body, HELLO);
    assert_eq!(s.is_finished(), Some(CloseReason::ClientClosed));
    // A partial head before end of stream is dropped quietly.
    let mut s = site.session();
    s.handle_input(site.at(0.0), b"GET /hello.txt HTT");
    s.handle_eof(site.at(0.0));
    assert_eq!(s.is_finished(), Some(CloseReason::ClientClosed));
    assert_eq!(s.stats().requests, 0);
}

#[test]
fn oversized_heads_are_refused_with_bounded_buffering() {
    let site = Site::new("session-oversized");
    // A request line that never ends.
    let mut s = site.session();
    let junk = vec![b'a'; 4096];
    let mut fed = 0;
    while !s.wants_write() {
        fed += s.handle_input(site.at(0.0), &junk);
        assert!(fed < 64 * 1024, "kept reading an endless request line");
    }
    let (out, _) = take_output(&mut s, site.at(0.0), usize::MAX);
    assert_eq!(parse_responses(&out, &[false])[0].status, 400);
    // Header fields that never end.
    let mut s = site.session();
    s.handle_input(site.at(0.0), b"GET / HTTP/1.1\r\nHost: t\r\nX: ");
    let mut fed = 0;
    while !s.wants_write() {
        fed += s.handle_input(site.at(0.0), &junk);
        assert!(fed < 128 * 1024, "kept reading endless header fields");
    }
    let (out, _) = take_output(&mut s, site.at(0.0), usize::MAX);
    assert_eq!(parse_responses(&out, &[false])[0].status, 431);
    assert!(s.wants_write_shutdown());
}

#[test]
fn zero_copy_input_and_expect_continue() {
    let site = Site::new("session-zero-copy");
    let mut s = site.session();
    let request =
        b"GET /hello.txt HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n";
    let buf = s.input_buffer();
    assert!(buf.len() >= request.len());
    buf[..request.len()].copy_from_slice(request);
    s.commit_input(site.at(0.0), request.len());
    let (out, _) = take_output(&mut s, site.at(0.0), usize::MAX);
    assert_eq!(out, b"HTTP/1.1 100 Continue\r\n\r\n");
    // The body must arrive within the request deadline too.
    assert_eq!(s.poll_timeout(), Some(site.at(10.0)));
    s.handle_input(site.at(1.0), b"abc");
    let (out, _) = take_output(&mut s, site.at(1.0), usize::MAX);
    assert_eq!(parse_responses(&out, &[false])[0].body, HELLO);
    assert_eq!(s.poll_timeout(), Some(site.at(16.0)));
}

// ---- the driver loop of the documentation, over loopback TCP ----

/// Drives `session` over a non-blocking socket as the `Session` docs
/// sketch it (readiness approximated by short sleeps).
fn drive_nonblocking(
    mut session: Session,
    mut sock: std::net::TcpStream,
) -> (CloseReason, Vec<RequestRecord>) {
    use std::io::{ErrorKind, Read, Write};
    sock.set_nonblocking(true).unwrap();
    let mut scratch = vec![0u8; 16 * 1024];
    let mut shut = false;
    let mut logged = Vec::new();
    loop {
        let now = Instant::now();
        while session.wants_write() {
            match sock.write(session.poll_output()) {
                Ok(n) => session.consume_output(Instant::now(), n),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(_) => session.handle_reset(now),
            }
        }
        if session.wants_write_shutdown() && !shut {
            let _ = sock.shutdown(std::net::Shutdown::Write);
            shut = true;
        }
        while session.wants_read() {
            let room = session.input_room().min(scratch.len());
            match sock.read(&mut scratch[..room]) {
                Ok(0) => session.handle_eof(now),
                Ok(n) => assert_eq!(session.handle_input(now, &scratch[..n]), n),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(_) => session.handle_reset(now),
            }
        }
        logged.extend(std::iter::from_fn(|| session.poll_record()));
        if let Some(reason) = session.is_finished() {
            return (reason, logged);
        }
        if session.wants_write() {
            continue;
        }
        std::thread::sleep(Duration::from_millis(1));
        let now = Instant::now();
        if session.poll_timeout().is_some_and(|d| now >= d) {
            session.handle_timeout(now);
        }
    }
}

#[test]
fn nonblocking_driver_over_loopback() {
    use std::io::{Read, Write};
    use std::net::{Shutdown, TcpListener, TcpStream};
    let site = Site::new("session-loopback");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = site.server.clone();
    let handle = std::thread::spawn(move || {
        let mut results = Vec::new();
        for _ in 0..2 {
            let (sock, peer) = listener.accept().unwrap();
            let session = server.session(Instant::now(), peer.ip().to_string());
            results.push(drive_nonblocking(session, sock));
        }
        results
    });
    // Pipelined: a 3 MiB file, then a small one, then end of stream.
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    c.write_all(
        b"GET /large.bin HTTP/1.1\r\nHost: t\r\n\r\nGET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n",
    )
    .unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    let mut out = Vec::new();
    c.read_to_end(&mut out).unwrap();
    let r = parse_responses(&out, &[false, false]);
    assert!(r[0].body == pattern(3 << 20), "large body differs");
    assert_eq!(r[1].body, HELLO);
    // A bad request followed by junk: the 400 still arrives whole, then
    // the end of stream (lingering close, no RST).
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut bad = b"GET / HTTP/1.1\r\n\r\n".to_vec();
    bad.extend(vec![b'j'; 200_000]);
    c.write_all(&bad).unwrap();
    let mut out = Vec::new();
    c.read_to_end(&mut out).unwrap();
    assert_eq!(parse_responses(&out, &[false])[0].status, 400);
    drop(c);
    let results = handle.join().unwrap();
    assert_eq!(results[0].0, CloseReason::ClientClosed);
    assert_eq!(results[0].1.len(), 2);
    assert!(results[0].1.iter().all(|r| r.complete));
    assert_eq!(results[1].0, CloseReason::Rejected);
    assert_eq!(results[1].1[0].status, 400);
}
