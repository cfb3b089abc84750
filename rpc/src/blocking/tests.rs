//! The blocking drivers' defences over loopback TCP (std::net). Timeouts
//! are made short so that the tests finish soon; no test asserts a time.

use super::{Client, SharedServer, serve};
use crate::auth::{AuthKey, ClientAuth, ServerAuth};
use crate::error::{RemoteError, RpcError};
use crate::frame::{DEFAULT_MAX_FRAME, FrameDecoder};
use crate::message::decode_message;
use crate::service::{CallContext, Caller, Dispatch};
use crate::{ClientConfig, ServerConfig, ServerMessage};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

/// Answers every call with the peer identity it was told about.
#[derive(Debug, Default)]
struct WhoAsks;

impl Dispatch for WhoAsks {
    fn dispatch(
        &mut self,
        ctx: &CallContext,
        _method: u32,
        _args: &[u8],
    ) -> Result<Vec<u8>, RemoteError> {
        Ok(format!("{:?}", ctx.peer).into_bytes())
    }
}

fn key(b: u8) -> AuthKey {
    AuthKey::from_bytes([b; 32])
}

fn start(config: ServerConfig) -> (SocketAddr, Arc<SharedServer<WhoAsks>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = SharedServer::new(WhoAsks, config);
    let s = Arc::clone(&server);
    thread::spawn(move || serve(move || listener.accept().map(|(c, _)| c), s));
    (addr, server)
}

fn keyed(k: Option<AuthKey>) -> ServerConfig {
    ServerConfig {
        auth: k.map(ServerAuth::new),
        ..ServerConfig::default()
    }
}

fn call(addr: SocketAddr, auth: Option<ClientAuth>) -> Result<String, RpcError> {
    let config = ClientConfig {
        call_timeout: Duration::from_secs(5),
        auth,
        ..ClientConfig::default()
    };
    let client = Client::new(move || TcpStream::connect(addr), config).expect("client");
    client
        .call(1, Vec::new())
        .map(|b| String::from_utf8_lossy(&b).into_owned())
}

#[test]
fn keys_decide_who_is_served_and_the_identity_reaches_the_call() {
    let (addr, server) = start(keyed(Some(key(1))));
    assert_eq!(
        call(addr, Some(ClientAuth::new(key(1), 42))).as_deref(),
        Ok("Some(42)")
    );
    assert!(matches!(
        call(addr, Some(ClientAuth::new(key(2), 42))),
        Err(RpcError::Unauthenticated(_))
    ));
    assert!(matches!(
        call(addr, None),
        Err(RpcError::Unauthenticated(_))
    ));
    let stats = server.stats();
    assert_eq!(stats.executed, 1);
    assert_eq!(stats.authenticated, 1);
    assert!(stats.auth_failed >= 1);
    // A server without a key serves clients without one, as before.
    let (plain, _) = start(keyed(None));
    assert_eq!(call(plain, None).as_deref(), Ok("None"));
    assert!(matches!(
        call(plain, Some(ClientAuth::new(key(1), 1))),
        Err(RpcError::Unauthenticated(_))
    ));
}

/// Reads the server's greeting off a raw connection.
fn read_greeting(s: &mut TcpStream) -> ServerMessage {
    let mut d = FrameDecoder::new(DEFAULT_MAX_FRAME);
    let mut buf = [0u8; 256];
    loop {
        let n = s.read(&mut buf).expect("read greeting");
        assert!(n > 0, "closed before the greeting");
        if let Some(frame) = d.decode(&mut &buf[..n]).expect("frame") {
            return decode_message(&frame).expect("message");
        }
    }
}

/// Reads until the server closes; true if it did (EOF or reset).
fn closed_by_server(s: &mut TcpStream) -> bool {
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut buf = [0u8; 256];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

#[test]
fn a_half_frame_stall_and_an_idle_connection_are_dropped() {
    let (addr, server) = start(ServerConfig {
        frame_timeout: Duration::from_millis(100),
        idle_timeout: Duration::from_millis(300),
        ..ServerConfig::default()
    });
    let mut staller = TcpStream::connect(addr).expect("connect");
    assert!(matches!(
        read_greeting(&mut staller),
        ServerMessage::Hello { .. }
    ));
    // A header promising 100 bytes, and 3 of them.
    staller
        .write_all(&[0, 0, 0, 100, crate::frame::FRAME_VERSION, 2, 3])
        .expect("write");
    assert!(closed_by_server(&mut staller));
    assert_eq!(server.stats().stalled, 1);
    let mut idler = TcpStream::connect(addr).expect("connect");
    let _ = read_greeting(&mut idler);
    assert!(closed_by_server(&mut idler));
    assert_eq!(server.stats().idle_closed, 1);
    // The server still serves.
    assert_eq!(call(addr, None).as_deref(), Ok("None"));
}

#[test]
fn a_stalled_greeting_is_dropped() {
    let (addr, server) = start(ServerConfig {
        frame_timeout: Duration::from_millis(100),
        ..keyed(Some(key(1)))
    });
    let mut s = TcpStream::connect(addr).expect("connect");
    assert!(matches!(
        read_greeting(&mut s),
        ServerMessage::Challenge { .. }
    ));
    s.write_all(&[0, 0, 0, 70, crate::frame::FRAME_VERSION])
        .expect("write");
    assert!(closed_by_server(&mut s));
    assert_eq!(server.stats().stalled, 1);
    assert_eq!(server.stats().executed, 0);
}

#[test]
fn connections_beyond_the_cap_are_closed_and_counted() {
    let (addr, server) = start(ServerConfig {
        max_connections: 1,
        ..ServerConfig::default()
    });
    let mut first = TcpStream::connect(addr).expect("connect");
    let _ = read_greeting(&mut first);
    let mut second = TcpStream::connect(addr).expect("connect");
    assert!(closed_by_server(&mut second));
    assert_eq!(server.stats().refused_connections, 1);
    drop(first);
    // Once the first has gone, a new connection is served.
    let mut served = false;
    for _ in 0..100 {
        if call(addr, None).is_ok() {
            served = true;
            break;
        }
        thread::sleep(Duration::from_millis(20));
    }
    assert!(served);
}

#[test]
fn a_failed_accept_costs_one_connection_not_the_server() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = SharedServer::new(WhoAsks, ServerConfig::default());
    let s = Arc::clone(&server);
    let mut failures = 2;
    thread::spawn(move || {
        serve(
            move || {
                if failures > 0 {
                    failures -= 1;
                    return Err(io::Error::other("EMFILE, say"));
                }
                listener.accept().map(|(c, _)| c)
            },
            s,
        )
    });
    assert_eq!(call(addr, None).as_deref(), Ok("None"));
    assert_eq!(server.stats().accept_errors, 2);
}

/// Answers every call with half a megabyte.
#[derive(Debug, Default)]
struct Big;

impl Dispatch for Big {
    fn dispatch(
        &mut self,
        _ctx: &CallContext,
        _method: u32,
        _args: &[u8],
    ) -> Result<Vec<u8>, RemoteError> {
        Ok(vec![7; 512 * 1024])
    }
}

#[test]
fn a_client_that_does_not_read_its_replies_is_dropped() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = SharedServer::new(
        Big,
        ServerConfig {
            frame_timeout: Duration::from_millis(100),
            ..ServerConfig::default()
        },
    );
    let s = Arc::clone(&server);
    thread::spawn(move || serve(move || listener.accept().map(|(c, _)| c), s));
    let mut c = TcpStream::connect(addr).expect("connect");
    let ServerMessage::Hello { incarnation } = read_greeting(&mut c) else {
        panic!("no hello");
    };
    // Many calls, and never a reply read: the server's writes stop
    // making progress.
    let mut requests = Vec::new();
    for request_id in 1..=200 {
        let req = crate::Request {
            client_id: 1,
            request_id,
            method: 1,
            args: Vec::new(),
            deadline_ms: None,
            incarnation,
        };
        crate::message::encode_message(&mut requests, &req, DEFAULT_MAX_FRAME).expect("encode");
    }
    c.write_all(&requests).expect("write requests");
    let mut waited = 0;
    while server.stats().stalled == 0 && waited < 1500 {
        thread::sleep(Duration::from_millis(20));
        waited += 1;
    }
    assert_eq!(server.stats().stalled, 1);
    assert!(closed_by_server(&mut c));
}

#[test]
fn a_failed_thread_spawn_costs_one_connection_not_the_server() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = SharedServer::new(WhoAsks, ServerConfig::default());
    let s = Arc::clone(&server);
    let mut spawns = 0;
    thread::spawn(move || {
        super::server::serve_with(
            move || listener.accept().map(|(c, _)| c),
            s,
            move |work| {
                spawns += 1;
                if spawns == 1 {
                    // The first connection's thread cannot start (its work,
                    // with the stream, is dropped).
                    return Err(io::Error::other("EAGAIN, say"));
                }
                thread::spawn(work);
                Ok(())
            },
        )
    });
    // The first connection is closed; the client retries on a new one.
    assert_eq!(call(addr, None).as_deref(), Ok("None"));
    assert_eq!(server.stats().spawn_failures, 1);
    assert_eq!(server.stats().executed, 1);
    // The failed connection no longer counts as open.
    let mut open = server.connections();
    for _ in 0..100 {
        if open == 0 {
            break;
        }
        thread::sleep(Duration::from_millis(20));
        open = server.connections();
    }
    assert_eq!(open, 0);
}

/// Passes the greeting by hand on a raw connection (identity 42 with
/// `k`): the client's side of the session.
fn raw_authenticated(addr: SocketAddr, k: &AuthKey) -> (TcpStream, crate::auth::Session) {
    use crate::message::{Authenticate, encode_message};
    let mut s = TcpStream::connect(addr).expect("connect");
    let ServerMessage::Challenge { nonce: sn } = read_greeting(&mut s) else {
        panic!("no challenge");
    };
    let cn = [5u8; 32];
    let answer = Authenticate {
        identity: 42,
        nonce: cn,
        mac: k.client_mac(&sn, &cn, 42),
    };
    let mut out = Vec::new();
    encode_message(&mut out, &answer, DEFAULT_MAX_FRAME).expect("encode");
    s.write_all(&out).expect("write");
    let ServerMessage::Accepted { incarnation, .. } = read_greeting(&mut s) else {
        panic!("not accepted");
    };
    let session = crate::auth::Session::client(k, &sn, &cn, 42, incarnation);
    (s, session)
}

/// A sealed request frame for the next sequence number of `session`.
fn sealed_call(session: &mut crate::auth::Session, incarnation: u64) -> Vec<u8> {
    let req = crate::Request {
        client_id: 1,
        request_id: 1,
        method: 1,
        args: vec![],
        deadline_ms: None,
        incarnation,
    };
    let mut out = Vec::new();
    crate::message::encode_message(&mut out, &req, DEFAULT_MAX_FRAME).expect("encode");
    session.send.seal(&mut out, 0).expect("seal");
    out
}

#[test]
fn a_tampered_frame_over_tcp_closes_the_connection_and_is_counted() {
    let (addr, server) = start(keyed(Some(key(1))));
    let incarnation = server.incarnation();
    // Genuine: served.
    let (mut s, mut session) = raw_authenticated(addr, &key(1));
    s.write_all(&sealed_call(&mut session, incarnation))
        .expect("write");
    let mut d = FrameDecoder::new(DEFAULT_MAX_FRAME + crate::auth::MAC_LEN);
    let mut buf = [0u8; 256];
    let mut reply = loop {
        let n = s.read(&mut buf).expect("read reply");
        assert!(n > 0, "closed before the reply");
        if let Some(frame) = d.decode(&mut &buf[..n]).expect("frame") {
            break frame;
        }
    };
    // The reply is sealed by the server and opens with the session.
    session.recv.open(&mut reply).expect("the server's MAC");
    let reply: ServerMessage = decode_message(&reply).expect("message");
    assert!(matches!(reply, ServerMessage::Response(_)), "{reply:?}");
    // One bit flipped in the next frame: closed, counted, not executed.
    let mut bad = sealed_call(&mut session, incarnation);
    bad[7] ^= 4;
    s.write_all(&bad).expect("write");
    assert!(closed_by_server(&mut s));
    let stats = server.stats();
    assert_eq!(stats.bad_mac, 1);
    assert_eq!(stats.executed, 1);
    assert_eq!(stats.protocol_errors, 0);
}

#[test]
fn concurrent_callers_on_one_authenticated_connection_keep_frames_in_order() {
    let (addr, server) = start(keyed(Some(key(1))));
    let config = ClientConfig {
        call_timeout: Duration::from_secs(10),
        auth: Some(ClientAuth::new(key(1), 42)),
        ..ClientConfig::default()
    };
    let client = Client::new(move || TcpStream::connect(addr), config).expect("client");
    let callers: Vec<_> = (0..8)
        .map(|_| {
            let client = client.clone();
            thread::spawn(move || {
                (0..50)
                    .map(|_| client.call(1, Vec::new()))
                    .filter(|r| r.is_ok())
                    .count()
            })
        })
        .collect();
    let ok: usize = callers.into_iter().map(|c| c.join().expect("caller")).sum();
    assert_eq!(ok, 400);
    // Frames numbered by the core went out in its order: no MAC failed and
    // no connection was lost.
    assert_eq!(server.stats().bad_mac, 0);
    assert_eq!(client.stats().bad_mac, 0);
    assert_eq!(server.stats().authenticated, 1);
}
