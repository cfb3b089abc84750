use super::*;

fn cache(capacity: usize) -> ReplyCache {
    ReplyCache::new(&ServerConfig {
        reply_cache_capacity: capacity,
        reply_ttl: Duration::from_secs(10),
        client_ttl: Duration::from_secs(100),
        incarnation: 77,
        ..ServerConfig::default()
    })
}

fn resp(id: u64) -> Response {
    Response {
        request_id: id,
        result: Ok(vec![id as u8]),
    }
}

#[test]
fn duplicate_in_progress_then_replay() {
    let t0 = Instant::now();
    let mut c = cache(10);
    assert_eq!(c.admit(t0, 1, 1), Admission::Execute);
    assert_eq!(c.admit(t0, 1, 1), Admission::InProgress);
    c.complete(t0, 1, resp(1));
    assert_eq!(c.admit(t0, 1, 1), Admission::Replay(resp(1)));
    // Another client with the same request id is a different call.
    assert_eq!(c.admit(t0, 2, 1), Admission::Execute);
}

#[test]
fn eviction_raises_floor_so_no_reexecution() {
    let t0 = Instant::now();
    let mut c = cache(2);
    for id in 1..=3 {
        assert_eq!(c.admit(t0, 7, id), Admission::Execute);
        c.complete(t0, 7, resp(id));
    }
    assert_eq!(c.len(), 2);
    assert_eq!(c.admit(t0, 7, 1), Admission::Stale);
    assert_eq!(c.admit(t0, 7, 2), Admission::Replay(resp(2)));
    assert_eq!(c.admit(t0, 7, 4), Admission::Execute);
}

#[test]
fn expiry_by_time() {
    let t0 = Instant::now();
    let mut c = cache(100);
    assert_eq!(c.admit(t0, 1, 5), Admission::Execute);
    c.complete(t0, 1, resp(5));
    assert_eq!(c.poll_timeout(), Some(t0 + Duration::from_secs(10)));
    c.expire(t0 + Duration::from_secs(10));
    assert!(c.is_empty());
    assert_eq!(
        c.admit(t0 + Duration::from_secs(11), 1, 5),
        Admission::Stale
    );
    // The idle client's floor goes after client_ttl.
    c.expire(t0 + Duration::from_secs(200));
    c.expire(t0 + Duration::from_secs(400));
    assert!(c.clients.is_empty());
}

#[test]
fn another_incarnation_is_refused_before_the_table() {
    let t0 = Instant::now();
    let mut c = cache(10);
    let mut req = Request {
        client_id: 1,
        request_id: 1,
        method: 0,
        args: vec![],
        deadline_ms: None,
        incarnation: 76,
    };
    assert_eq!(c.admit_request(t0, &req), Admission::Restarted);
    // Refused without being recorded: the right incarnation executes it.
    req.incarnation = 77;
    assert_eq!(c.admit_request(t0, &req), Admission::Execute);
    assert_eq!(c.admit_request(t0, &req), Admission::InProgress);
}

#[test]
fn the_cache_is_bounded_in_bytes() {
    let t0 = Instant::now();
    let mut c = ReplyCache::new(&ServerConfig {
        reply_cache_bytes: 3 * (1000 + 96),
        ..ServerConfig::default()
    });
    let big = |id: u64| Response {
        request_id: id,
        result: Ok(vec![0; 1000]),
    };
    for id in 1..=5 {
        assert_eq!(c.admit(t0, 1, id), Admission::Execute);
        c.complete(t0, 1, big(id));
        assert!(c.bytes() <= 3 * (1000 + 96));
    }
    assert_eq!(c.len(), 3);
    assert_eq!(c.evictions(), 2);
    // The evicted replies are below the floor: refused, not executed again.
    assert_eq!(c.admit(t0, 1, 2), Admission::Stale);
    assert_eq!(c.admit(t0, 1, 5), Admission::Replay(big(5)));
    // Expiry gives the bytes back.
    c.expire(t0 + Duration::from_secs(3600));
    assert_eq!(c.bytes(), 0);
}

// --- Authentication and connection bounds, sans-IO (a ClientCore against
// a ServerCore, bytes moved by hand) ---

use crate::auth::{AuthKey, ClientAuth, ServerAuth};
use crate::client::{ClientConfig, ClientCore, ClientEvent};
use crate::message::Authenticate;

/// Answers every call with the peer it was told about.
#[derive(Debug, Default)]
struct WhoAsks {
    peers: Vec<Option<u64>>,
}

impl Dispatch for WhoAsks {
    fn dispatch(
        &mut self,
        ctx: &CallContext,
        _method: u32,
        _args: &[u8],
    ) -> Result<Vec<u8>, RemoteError> {
        self.peers.push(ctx.peer);
        Ok(vec![1])
    }
}

fn key(b: u8) -> AuthKey {
    AuthKey::from_bytes([b; 32])
}

fn server(auth: Option<AuthKey>) -> ServerCore<WhoAsks> {
    ServerCore::new(
        WhoAsks::default(),
        ServerConfig {
            incarnation: 5,
            auth: auth.map(|key| ServerAuth {
                keys: crate::auth::ServerKeys::Shared(key),
                nonce_seed: [3; 32],
            }),
            frame_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(300),
            ..ServerConfig::default()
        },
    )
}

fn client(auth: Option<(AuthKey, u64)>) -> ClientCore {
    ClientCore::new(
        11,
        ClientConfig {
            auth: auth.map(|(key, identity)| ClientAuth {
                key,
                identity,
                nonce_seed: [4; 32],
            }),
            ..ClientConfig::default()
        },
    )
}

/// Moves bytes both ways until neither side has any; returns the first
/// error either side reported.
fn pump(
    now: Instant,
    c: &mut ClientCore,
    s: &mut ServerCore<WhoAsks>,
    conn: ConnId,
) -> Result<(), RpcError> {
    for _ in 0..16 {
        let mut to_client = Vec::new();
        s.poll_transmit(conn, &mut to_client);
        if !to_client.is_empty() {
            c.handle_bytes(now, &to_client)?;
        }
        let mut to_server = Vec::new();
        c.poll_transmit(&mut to_server);
        if !to_server.is_empty() {
            if let Err(e) = s.handle_bytes(now, conn, &to_server) {
                // The driver sends what is left (a refusal), then closes.
                let mut last = Vec::new();
                s.poll_transmit(conn, &mut last);
                let _ = c.handle_bytes(now, &last);
                return Err(e);
            }
        }
        if to_client.is_empty() && to_server.is_empty() {
            return Ok(());
        }
    }
    Ok(())
}

fn completed(c: &mut ClientCore) -> Vec<Result<Vec<u8>, RpcError>> {
    let mut out = Vec::new();
    while let Some(ClientEvent::Completed { result, .. }) = c.poll_event() {
        out.push(result);
    }
    out
}

/// One call over a fresh connection: what the client got, and the server.
fn one_call(
    server_key: Option<AuthKey>,
    client_auth: Option<(AuthKey, u64)>,
) -> (Vec<Result<Vec<u8>, RpcError>>, ServerCore<WhoAsks>) {
    let t0 = Instant::now();
    let mut s = server(server_key);
    let mut c = client(client_auth);
    c.start_call(t0, 1, vec![], None);
    assert!(c.wants_connection(t0));
    c.handle_connected(t0);
    assert!(s.handle_accepted_at(t0, 1));
    let _ = pump(t0, &mut c, &mut s, 1);
    (completed(&mut c), s)
}

#[test]
fn a_good_key_authenticates_and_the_identity_reaches_the_call() {
    let (results, s) = one_call(Some(key(1)), Some((key(1), 42)));
    assert_eq!(results, vec![Ok(vec![1])]);
    assert_eq!(s.dispatcher().peers, vec![Some(42)]);
    assert_eq!(s.stats().authenticated, 1);
    assert_eq!(s.stats().auth_failed, 0);
}

#[test]
fn without_keys_the_peer_is_none() {
    let (results, s) = one_call(None, None);
    assert_eq!(results, vec![Ok(vec![1])]);
    assert_eq!(s.dispatcher().peers, vec![None]);
}

#[test]
fn a_wrong_key_is_refused_and_counted_and_nothing_runs() {
    let (results, s) = one_call(Some(key(1)), Some((key(2), 42)));
    assert!(
        matches!(results.as_slice(), [Err(RpcError::Unauthenticated(_))]),
        "{results:?}"
    );
    assert!(s.dispatcher().peers.is_empty());
    assert_eq!(s.stats().auth_failed, 1);
    assert_eq!(s.stats().executed, 0);
}

#[test]
fn a_client_without_a_key_is_told_and_nothing_runs() {
    let (results, mut s) = one_call(Some(key(1)), None);
    assert!(
        matches!(results.as_slice(), [Err(RpcError::Unauthenticated(_))]),
        "{results:?}"
    );
    assert_eq!(s.stats().executed, 0);
    // The client hangs up without answering the challenge: counted.
    assert_eq!(s.stats().auth_failed, 0);
    s.handle_closed(1);
    assert_eq!(s.stats().auth_failed, 1);
}

#[test]
fn a_client_with_a_key_refuses_a_server_without_one() {
    let (results, s) = one_call(None, Some((key(1), 42)));
    assert!(
        matches!(results.as_slice(), [Err(RpcError::Unauthenticated(_))]),
        "{results:?}"
    );
    assert_eq!(s.stats().executed, 0);
}

/// The first frame a server sends on `conn`, decoded.
fn greeting(s: &mut ServerCore<WhoAsks>, conn: ConnId) -> ServerMessage {
    let mut out = Vec::new();
    s.poll_transmit(conn, &mut out);
    let mut d = FrameDecoder::new(DEFAULT_MAX_FRAME);
    let frame = d.decode(&mut &out[..]).expect("frame").expect("whole");
    decode_message(&frame).expect("message")
}

#[test]
fn a_replayed_greeting_is_refused() {
    let t0 = Instant::now();
    let k = key(1);
    let mut s = server(Some(k.clone()));
    assert!(s.handle_accepted_at(t0, 1));
    let ServerMessage::Challenge { nonce } = greeting(&mut s, 1) else {
        panic!("no challenge");
    };
    // A genuine answer on connection 1, recorded by an eavesdropper.
    let answer = Authenticate {
        identity: 7,
        nonce: [9; 32],
        mac: k.client_mac(&nonce, &[9; 32], 7),
    };
    let mut recorded = Vec::new();
    encode_message(&mut recorded, &answer, DEFAULT_MAX_FRAME).expect("encode");
    s.handle_bytes(t0, 1, &recorded).expect("accepted");
    assert!(matches!(
        greeting(&mut s, 1),
        ServerMessage::Accepted { .. }
    ));
    // Replayed on connection 2, which was challenged with another nonce.
    assert!(s.handle_accepted_at(t0, 2));
    let ServerMessage::Challenge { nonce: other } = greeting(&mut s, 2) else {
        panic!("no challenge");
    };
    assert_ne!(nonce, other);
    assert!(matches!(
        s.handle_bytes(t0, 2, &recorded),
        Err(RpcError::Unauthenticated(_))
    ));
    assert_eq!(greeting(&mut s, 2), ServerMessage::Refused);
    assert_eq!(s.stats().authenticated, 1);
    assert_eq!(s.stats().auth_failed, 1);
    // Anything more on the refused connection is refused too.
    assert!(s.handle_bytes(t0, 2, &[0, 0, 0, 1, 1, 0]).is_err());
}

#[test]
fn a_truncated_greeting_is_dropped_after_the_frame_timeout() {
    let t0 = Instant::now();
    let mut s = server(Some(key(1)));
    assert!(s.handle_accepted_at(t0, 1));
    let _ = greeting(&mut s, 1);
    let mut answer = Vec::new();
    let a = Authenticate {
        identity: 1,
        nonce: [0; 32],
        mac: [0; 32],
    };
    encode_message(&mut answer, &a, DEFAULT_MAX_FRAME).expect("encode");
    s.handle_bytes(t0, 1, &answer[..answer.len() / 2])
        .expect("half a frame is no error yet");
    let t1 = t0 + Duration::from_secs(10);
    assert!(s.poll_timeout().is_some_and(|t| t <= t1));
    s.handle_timeout(t1);
    assert_eq!(s.poll_close(), Some(1));
    assert_eq!(s.stats().stalled, 1);
    assert_eq!(s.connections(), 0);
}

#[test]
fn a_half_frame_stall_and_an_idle_connection_are_dropped() {
    let t0 = Instant::now();
    let mut s = server(None);
    assert!(s.handle_accepted_at(t0, 1));
    assert!(s.handle_accepted_at(t0, 2));
    // Connection 1 sends a frame header promising 100 bytes, then stalls;
    // connection 2 sends nothing at all.
    s.handle_bytes(t0, 1, &[0, 0, 0, 100, crate::frame::FRAME_VERSION, 2, 3])
        .expect("partial");
    s.handle_timeout(t0 + Duration::from_secs(9));
    assert_eq!(s.poll_close(), None);
    s.handle_timeout(t0 + Duration::from_secs(10));
    assert_eq!(s.poll_close(), Some(1));
    assert_eq!(s.stats().stalled, 1);
    s.handle_timeout(t0 + Duration::from_secs(300));
    assert_eq!(s.poll_close(), Some(2));
    assert_eq!(s.stats().idle_closed, 1);
    assert_eq!(s.connections(), 0);
}

#[test]
fn connections_beyond_the_cap_are_refused_and_counted() {
    let t0 = Instant::now();
    let mut s = ServerCore::new(
        WhoAsks::default(),
        ServerConfig {
            max_connections: 2,
            ..ServerConfig::default()
        },
    );
    assert!(s.handle_accepted_at(t0, 1));
    assert!(s.handle_accepted_at(t0, 2));
    assert!(!s.handle_accepted_at(t0, 3));
    assert_eq!(s.stats().refused_connections, 1);
    s.handle_closed(1);
    assert!(s.handle_accepted_at(t0, 3));
}

// --- Frames after the greeting carry MACs (sans-IO, bytes moved by hand) ---

/// A client and a server whose connection 1 has passed the greeting with
/// `key` (identity 42).
fn open_pair(t0: Instant) -> (ClientCore, ServerCore<WhoAsks>) {
    let mut s = server(Some(key(1)));
    let mut c = client(Some((key(1), 42)));
    c.handle_connected(t0);
    assert!(s.handle_accepted_at(t0, 1));
    pump(t0, &mut c, &mut s, 1).expect("greeting");
    assert!(c.server_incarnation().is_some(), "greeted");
    (c, s)
}

/// Starts `n` calls and returns their frames as the client sends them.
fn call_frames(t0: Instant, c: &mut ClientCore, n: usize) -> Vec<Vec<u8>> {
    for _ in 0..n {
        c.start_call(t0, 1, vec![7; 20], None);
    }
    let mut bytes = Vec::new();
    c.poll_transmit(&mut bytes);
    split_frames(&bytes)
}

fn split_frames(mut bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    while !bytes.is_empty() {
        let len = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
        let (frame, rest) = bytes.split_at(crate::frame::HEADER_LEN + len);
        frames.push(frame.to_vec());
        bytes = rest;
    }
    frames
}

#[test]
fn a_flipped_bit_in_a_call_closes_the_connection_uncounted_by_the_handler() {
    let t0 = Instant::now();
    let (mut c, _) = open_pair(t0);
    let frame = call_frames(t0, &mut c, 1).remove(0);
    // Every bit after the header (the header's own bits break the framing
    // or the version instead): length and version stay, body or tag change.
    for bit in crate::frame::HEADER_LEN * 8..frame.len() * 8 {
        let (_, mut s) = open_pair(t0);
        let mut bad = frame.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        assert!(s.handle_bytes(t0, 1, &bad).is_err(), "bit {bit}");
        assert_eq!(s.stats().bad_mac, 1, "bit {bit}");
        assert_eq!(s.stats().protocol_errors, 0, "not decoded");
        assert_eq!(s.stats().executed, 0);
        assert!(s.dispatcher().peers.is_empty(), "handler not called");
        assert_eq!(s.connections(), 0, "closed");
    }
    // The frame as sent is accepted.
    let (_, mut s) = open_pair(t0);
    s.handle_bytes(t0, 1, &frame).expect("genuine");
    assert_eq!(s.dispatcher().peers, vec![Some(42)]);
}

#[test]
fn a_replayed_call_is_refused_before_the_reply_cache_sees_it() {
    let t0 = Instant::now();
    let (mut c, mut s) = open_pair(t0);
    let frame = call_frames(t0, &mut c, 1).remove(0);
    s.handle_bytes(t0, 1, &frame).expect("genuine");
    assert_eq!(s.stats().executed, 1);
    assert!(s.handle_bytes(t0, 1, &frame).is_err());
    assert_eq!(s.stats().bad_mac, 1);
    assert_eq!(s.stats().replayed, 0, "never reached the reply cache");
    assert_eq!(s.connections(), 0);
}

#[test]
fn reordered_calls_are_refused() {
    let t0 = Instant::now();
    let (mut c, mut s) = open_pair(t0);
    let frames = call_frames(t0, &mut c, 2);
    assert_eq!(frames.len(), 2);
    let mut swapped = frames[1].clone();
    swapped.extend_from_slice(&frames[0]);
    assert!(s.handle_bytes(t0, 1, &swapped).is_err());
    assert_eq!(s.stats().bad_mac, 1);
    assert_eq!(s.stats().executed, 0);
}

#[test]
fn an_injected_unsealed_call_is_refused() {
    let t0 = Instant::now();
    let (_, mut s) = open_pair(t0);
    let forged = Request {
        client_id: 11,
        request_id: 1,
        method: 1,
        args: vec![],
        deadline_ms: None,
        incarnation: 5,
    };
    let mut bytes = Vec::new();
    encode_message(&mut bytes, &forged, DEFAULT_MAX_FRAME).expect("encode");
    assert!(s.handle_bytes(t0, 1, &bytes).is_err());
    assert_eq!(s.stats().bad_mac, 1);
    assert_eq!(s.stats().executed, 0);
}

#[test]
fn a_call_cut_short_waits_then_times_out_as_before() {
    let t0 = Instant::now();
    let (mut c, mut s) = open_pair(t0);
    let frame = call_frames(t0, &mut c, 1).remove(0);
    s.handle_bytes(t0, 1, &frame[..frame.len() - 3])
        .expect("a partial frame is no error yet");
    assert_eq!(s.stats().executed, 0);
    s.handle_timeout(t0 + Duration::from_secs(9));
    assert_eq!(s.poll_close(), None);
    s.handle_timeout(t0 + Duration::from_secs(10));
    assert_eq!(s.poll_close(), Some(1));
    assert_eq!(s.stats().stalled, 1);
    assert_eq!(s.stats().bad_mac, 0);
}

#[test]
fn a_tampered_reply_is_dropped_by_the_client_and_the_call_retried() {
    let t0 = Instant::now();
    let (mut c, mut s) = open_pair(t0);
    let frame = call_frames(t0, &mut c, 1).remove(0);
    s.handle_bytes(t0, 1, &frame).expect("genuine");
    let mut reply = Vec::new();
    s.poll_transmit(1, &mut reply);
    let last = reply.len() - 1;
    reply[last] ^= 0x80;
    assert!(c.handle_bytes(t0, &reply).is_err());
    assert_eq!(c.stats().bad_mac, 1);
    assert!(c.poll_event().is_none(), "the reply was not used");
    assert!(!c.is_connected());
    assert_eq!(c.outstanding(), 1, "retried on a new connection");
}

#[test]
fn per_node_keys_bind_the_identity() {
    let t0 = Instant::now();
    let keys: std::collections::BTreeMap<u64, AuthKey> =
        [(2, key(2)), (3, key(3))].into_iter().collect();
    let per_node = || {
        ServerCore::new(
            WhoAsks::default(),
            ServerConfig {
                incarnation: 5,
                auth: Some(ServerAuth {
                    keys: crate::auth::ServerKeys::PerNode(keys.clone()),
                    nonce_seed: [3; 32],
                }),
                ..ServerConfig::default()
            },
        )
    };
    let call = |identity: u64, k: AuthKey| {
        let mut s = per_node();
        let mut c = client(Some((k, identity)));
        c.start_call(t0, 1, vec![], None);
        c.handle_connected(t0);
        assert!(s.handle_accepted_at(t0, 1));
        let _ = pump(t0, &mut c, &mut s, 1);
        (completed(&mut c), s)
    };
    // Node 2 with its own key: accepted, as node 2.
    let (results, s) = call(2, key(2));
    assert_eq!(results, vec![Ok(vec![1])]);
    assert_eq!(s.dispatcher().peers, vec![Some(2)]);
    // Node 2's key claiming node 3, or an unlisted node 9: refused.
    for (identity, k) in [(3, key(2)), (9, key(2))] {
        let (results, s) = call(identity, k);
        assert!(
            matches!(results.as_slice(), [Err(RpcError::Unauthenticated(_))]),
            "{results:?}"
        );
        assert_eq!(s.stats().auth_failed, 1);
        assert_eq!(s.stats().executed, 0);
    }
}

#[test]
fn an_old_format_peer_fails_the_greeting_naming_the_versions() {
    let t0 = Instant::now();
    let mut c = client(None);
    c.start_call(t0, 1, vec![], None);
    c.handle_connected(t0);
    // A version-1 server's Hello { incarnation: 5 }.
    let old_hello = [0, 0, 0, 2, 1, 0, 5];
    let e = c.handle_bytes(t0, &old_hello).expect_err("old format");
    assert!(e.to_string().contains("version 1"), "{e}");
    assert!(e.to_string().contains("expected 2"), "{e}");
    // The call fails at once, saying why (retrying would meet the same).
    let results = completed(&mut c);
    assert!(
        matches!(results.as_slice(), [Err(RpcError::Protocol(why))] if why.contains("version 1")),
        "{results:?}"
    );
    // And a version-1 client's first frame to a new server.
    let mut s = server(None);
    assert!(s.handle_accepted_at(t0, 1));
    assert!(s.handle_bytes(t0, 1, &[0, 0, 0, 1, 1, 0]).is_err());
    assert_eq!(s.stats().protocol_errors, 1);
}
