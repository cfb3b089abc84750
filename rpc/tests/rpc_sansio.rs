//! The sans-IO client and server cores over an in-memory byte pipe with a
//! virtual clock: stubs, concurrency, deadlines, retries, at-most-once.

use rpc::frame::{DEFAULT_MAX_FRAME, encode_frame};
use rpc::{
    CallContext, CallId, ClientConfig, ClientCore, ClientEvent, RemoteError, Request, RpcError,
    ServerConfig, ServerCore, method_id,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum BankError {
    NoSuchAccount,
    InsufficientFunds,
}

rpc::service! {
    /// A bank.
    pub trait Bank {
        server BankServer;
        client BankClient;
        calls BankCall;

        /// Balance of an account.
        fn balance(account: String) -> u64;
        /// Moves money.
        fn transfer(from: String, to: String, amount: u64) -> Result<(), BankError>;
        /// How many transfers were executed.
        fn executed() -> u64;
    }
}

#[derive(Default)]
struct Accounts {
    balances: BTreeMap<String, u64>,
    transfers: u64,
}

impl Bank for Accounts {
    fn balance(&mut self, _ctx: &CallContext, account: String) -> u64 {
        self.balances.get(&account).copied().unwrap_or(0)
    }

    fn transfer(
        &mut self,
        _ctx: &CallContext,
        from: String,
        to: String,
        amount: u64,
    ) -> Result<(), BankError> {
        self.transfers += 1;
        let have = *self.balances.get(&from).ok_or(BankError::NoSuchAccount)?;
        if !self.balances.contains_key(&to) {
            return Err(BankError::NoSuchAccount);
        }
        let left = have
            .checked_sub(amount)
            .ok_or(BankError::InsufficientFunds)?;
        self.balances.insert(from, left);
        *self.balances.entry(to).or_default() += amount;
        Ok(())
    }

    fn executed(&mut self, _ctx: &CallContext) -> u64 {
        self.transfers
    }
}

fn server() -> ServerCore<BankServer<Accounts>> {
    server_run(1)
}

/// A server with 100 at alice, in run `incarnation`.
fn server_run(incarnation: u64) -> ServerCore<BankServer<Accounts>> {
    let mut accounts = Accounts::default();
    accounts.balances.insert("alice".into(), 100);
    accounts.balances.insert("bob".into(), 0);
    let config = ServerConfig {
        incarnation,
        ..ServerConfig::default()
    };
    ServerCore::new(BankServer(accounts), config)
}

/// Connects: the client learns of the connection, the server accepts it and
/// its greeting is delivered, so queued calls are in the client's transmit
/// buffer afterwards.
fn open(
    now: Instant,
    client: &mut ClientCore,
    server: &mut ServerCore<BankServer<Accounts>>,
    conn: u64,
) {
    client.handle_connected(now);
    server.handle_accepted(conn);
    let mut hello = Vec::new();
    server.poll_transmit(conn, &mut hello);
    client.handle_bytes(now, &hello).expect("greeting");
    assert_eq!(client.server_incarnation(), Some(server.incarnation()));
}

/// Connects a client that has no server behind it (greeting from run 1).
fn open_alone(now: Instant, client: &mut ClientCore) {
    client.handle_connected(now);
    client.handle_hello(now, 1);
}

fn drain(client: &mut ClientCore) -> Vec<(CallId, Result<Vec<u8>, RpcError>)> {
    let mut out = Vec::new();
    while let Some(ClientEvent::Completed { call, result }) = client.poll_event() {
        out.push((call, result));
    }
    out
}

/// Moves bytes both ways between a client and a server connection until idle.
fn pump(
    now: Instant,
    client: &mut ClientCore,
    server: &mut ServerCore<BankServer<Accounts>>,
    conn: u64,
) {
    loop {
        let mut up = Vec::new();
        client.poll_transmit(&mut up);
        if !up.is_empty() {
            server.handle_bytes(now, conn, &up).expect("server input");
        }
        let mut down = Vec::new();
        server.poll_transmit(conn, &mut down);
        if !down.is_empty() {
            client.handle_bytes(now, &down).expect("client input");
        }
        if up.is_empty() && down.is_empty() {
            return;
        }
    }
}

#[test]
fn method_ids_are_stable_hashes() {
    assert_eq!(method_id("Bank", "balance"), method_id("Bank", "balance"));
    assert_ne!(method_id("Bank", "balance"), method_id("Other", "balance"));
    // FNV-1a reference value of "Bank.balance".
    let mut h: u32 = 0x811c_9dc5;
    for b in b"Bank.balance" {
        h = (h ^ u32::from(*b)).wrapping_mul(0x0100_0193);
    }
    assert_eq!(method_id("Bank", "balance"), h);
    assert_eq!(BankCall::METHODS.len(), 3);
    assert_eq!(BankCall::METHODS[0], ("balance", h));
}

#[test]
fn typed_calls_through_the_sans_io_cores() {
    let t0 = Instant::now();
    let mut client = ClientCore::new(42, ClientConfig::default());
    let mut server = server();
    assert!(!client.wants_connection(t0), "no calls, no connection");
    let (m, a, transfer_reply) = BankCall::transfer("alice".into(), "bob".into(), 30)
        .expect("marshal")
        .into_parts();
    let t = client.start_call(t0, m, a, None);
    let (m, a, overdraft_reply) = BankCall::transfer("bob".into(), "alice".into(), 31)
        .expect("marshal")
        .into_parts();
    let o = client.start_call(t0, m, a, None);
    let (m, a, balance_reply) = BankCall::balance("bob".into())
        .expect("marshal")
        .into_parts();
    let b = client.start_call(t0, m, a, None);
    assert!(client.wants_connection(t0));
    client.handle_connected(t0);
    let mut nothing = Vec::new();
    client.poll_transmit(&mut nothing);
    assert!(nothing.is_empty(), "nothing is sent before the greeting");
    server.handle_accepted(1);
    pump(t0, &mut client, &mut server, 1);
    let done: BTreeMap<CallId, Result<Vec<u8>, RpcError>> =
        drain(&mut client).into_iter().collect();
    assert_eq!(
        transfer_reply.decode(done[&t].as_ref().expect("ok")),
        Ok(Ok(()))
    );
    assert_eq!(
        overdraft_reply.decode(done[&o].as_ref().expect("ok")),
        Ok(Err(BankError::InsufficientFunds))
    );
    assert_eq!(balance_reply.decode(done[&b].as_ref().expect("ok")), Ok(30));
    assert_eq!(client.outstanding(), 0);
    assert_eq!(client.poll_timeout(), None);
}

#[test]
fn replies_in_any_order_are_matched_by_id() {
    let t0 = Instant::now();
    let mut client = ClientCore::new(1, ClientConfig::default());
    let mut server = server();
    open(t0, &mut client, &mut server, 1);
    let ids: Vec<CallId> = (0..50)
        .map(|_| {
            let (m, a, _) = BankCall::balance("alice".into())
                .expect("marshal")
                .into_parts();
            client.start_call(t0, m, a, None)
        })
        .collect();
    let mut up = Vec::new();
    client.poll_transmit(&mut up);
    server.handle_bytes(t0, 1, &up).expect("server");
    let mut down = Vec::new();
    server.poll_transmit(1, &mut down);
    // Split the reply stream into frames and deliver them reversed.
    let mut decoder = rpc::frame::FrameDecoder::default();
    let mut frames = Vec::new();
    decoder.decode_all(&down, &mut frames).expect("frames");
    for f in frames.iter().rev() {
        let mut bytes = Vec::new();
        encode_frame(&mut bytes, f, DEFAULT_MAX_FRAME).expect("frame");
        client.handle_bytes(t0, &bytes).expect("client");
    }
    let mut done: Vec<CallId> = drain(&mut client)
        .into_iter()
        .map(|(id, r)| {
            assert!(r.is_ok());
            id
        })
        .collect();
    assert_eq!(done.first(), ids.last());
    done.sort();
    assert_eq!(done, ids);
}

#[test]
fn deadline_fails_a_call_with_timeout() {
    let t0 = Instant::now();
    let mut client = ClientCore::new(1, ClientConfig::default());
    open_alone(t0, &mut client);
    let call = client.start_call(t0, 1, vec![], Some(Duration::from_millis(300)));
    let mut sink = Vec::new();
    client.poll_transmit(&mut sink);
    assert_eq!(client.poll_timeout(), Some(t0 + Duration::from_millis(300)));
    client.handle_timeout(t0 + Duration::from_millis(299));
    assert!(drain(&mut client).is_empty());
    client.handle_timeout(t0 + Duration::from_millis(300));
    assert_eq!(drain(&mut client), vec![(call, Err(RpcError::Timeout))]);
}

#[test]
fn unreachable_when_every_connection_attempt_fails() {
    let t0 = Instant::now();
    let cfg = ClientConfig {
        max_attempts: 3,
        ..ClientConfig::default()
    };
    let mut client = ClientCore::new(1, cfg);
    let call = client.start_call(t0, 1, vec![], None);
    let mut now = t0;
    for _ in 0..3 {
        while !client.wants_connection(now) {
            now = client.poll_timeout().expect("timer");
            client.handle_timeout(now);
        }
        client.handle_connect_failed(now, "connection refused");
    }
    assert_eq!(
        drain(&mut client),
        vec![(
            call,
            Err(RpcError::Unreachable("connection refused".into()))
        )]
    );
}

#[test]
fn retry_after_reconnect_reuses_the_request_id_and_executes_once() {
    let t0 = Instant::now();
    let mut client = ClientCore::new(9, ClientConfig::default());
    let mut server = server();
    open(t0, &mut client, &mut server, 1);
    let (m, a, reply) = BankCall::transfer("alice".into(), "bob".into(), 10)
        .expect("marshal")
        .into_parts();
    let call = client.start_call(t0, m, a, None);
    // The request reaches the server, but the connection dies before the reply.
    let mut up = Vec::new();
    client.poll_transmit(&mut up);
    server.handle_bytes(t0, 1, &up).expect("server");
    server.handle_closed(1);
    client.handle_disconnected(t0);
    // Reconnect after the backoff and retry on connection 2.
    let mut now = t0;
    while !client.wants_connection(now) {
        now = client.poll_timeout().expect("timer");
        client.handle_timeout(now);
    }
    open(now, &mut client, &mut server, 2);
    let mut retry = Vec::new();
    client.poll_transmit(&mut retry);
    let decode = |bytes: &[u8]| -> Request {
        let mut frames = Vec::new();
        rpc::frame::FrameDecoder::default()
            .decode_all(bytes, &mut frames)
            .expect("frame");
        rpc::message::decode_message(&frames[0]).expect("request")
    };
    let (first, again) = (decode(&up), decode(&retry));
    assert_eq!(
        (again.client_id, again.request_id, &again.args),
        (first.client_id, first.request_id, &first.args)
    );
    assert!(
        again.deadline_ms < first.deadline_ms,
        "the remaining budget shrinks"
    );
    server.handle_bytes(now, 2, &retry).expect("server");
    let mut down = Vec::new();
    server.poll_transmit(2, &mut down);
    client.handle_bytes(now, &down).expect("client");
    let done = drain(&mut client);
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].0, call);
    assert_eq!(reply.decode(done[0].1.as_ref().expect("ok")), Ok(Ok(())));
    assert_eq!(server.stats().executed, 1);
    assert_eq!(server.stats().replayed, 1);
    assert_eq!(server.dispatcher().0.balances["alice"], 90);
}

#[test]
fn at_most_once_under_duplicated_and_delayed_requests() {
    // Requests from several clients are duplicated and delivered in a
    // shuffled order on several connections; every transfer executes once.
    let t0 = Instant::now();
    let mut server = server();
    let mut rng = 0x1234_5678_u64;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut wire: Vec<(u64, Vec<u8>)> = Vec::new();
    let mut expected = 0;
    for client_id in 1..=5u64 {
        for request_id in 1..=20u64 {
            let (method, args, _) = BankCall::transfer("alice".into(), "bob".into(), 1)
                .expect("marshal")
                .into_parts();
            let req = Request {
                client_id,
                request_id,
                method,
                args,
                deadline_ms: Some(1000),
                incarnation: server.incarnation(),
            };
            let mut bytes = Vec::new();
            rpc::message::encode_message(&mut bytes, &req, DEFAULT_MAX_FRAME).expect("encode");
            for _ in 0..1 + next() % 4 {
                wire.push((next() % 3, bytes.clone()));
            }
            expected += 1;
        }
    }
    // Shuffle (Fisher-Yates) to delay some copies behind later requests.
    for i in (1..wire.len()).rev() {
        let j = (next() % (i as u64 + 1)) as usize;
        wire.swap(i, j);
    }
    let mut replies = 0;
    for (conn, bytes) in &wire {
        server.handle_bytes(t0, *conn, bytes).expect("server");
        let mut out = Vec::new();
        server.poll_transmit(*conn, &mut out);
        replies += usize::from(!out.is_empty());
    }
    assert_eq!(replies, wire.len(), "every copy is answered");
    assert_eq!(server.dispatcher().0.transfers, expected);
    assert_eq!(server.dispatcher().0.balances["bob"], expected);
    assert_eq!(server.stats().executed, expected);
    assert_eq!(
        server.stats().replayed as usize,
        wire.len() - expected as usize
    );
}

#[test]
fn unknown_method_and_bad_arguments_are_remote_errors() {
    let t0 = Instant::now();
    let mut client = ClientCore::new(1, ClientConfig::default());
    let mut server = server();
    open(t0, &mut client, &mut server, 1);
    let unknown = client.start_call(t0, 0xdead_beef, vec![], None);
    let bad = client.start_call(
        t0,
        method_id("Bank", "transfer"),
        vec![0xff, 0xff, 0xff],
        None,
    );
    pump(t0, &mut client, &mut server, 1);
    let done: BTreeMap<_, _> = drain(&mut client).into_iter().collect();
    assert_eq!(
        done[&unknown],
        Err(RpcError::Remote(RemoteError::UnknownMethod(0xdead_beef)))
    );
    assert!(matches!(
        done[&bad],
        Err(RpcError::Remote(RemoteError::BadArguments(_)))
    ));
    assert!(
        RpcError::Remote(RemoteError::UnknownMethod(1))
            .to_string()
            .contains("unknown method")
    );
}

#[test]
fn malformed_input_is_a_protocol_error_not_a_panic() {
    let t0 = Instant::now();
    let mut server = server();
    // A valid frame that does not hold a Request.
    let mut bytes = Vec::new();
    encode_frame(&mut bytes, &[0xff; 12], DEFAULT_MAX_FRAME).expect("frame");
    assert!(matches!(
        server.handle_bytes(t0, 1, &bytes),
        Err(RpcError::Protocol(_))
    ));
    assert!(matches!(
        server.handle_bytes(t0, 2, b"garbage!"),
        Err(RpcError::Protocol(_))
    ));
    assert_eq!(server.stats().protocol_errors, 2);
    let mut client = ClientCore::new(1, ClientConfig::default());
    open_alone(t0, &mut client);
    let call = client.start_call(t0, 1, vec![], None);
    assert!(matches!(
        client.handle_bytes(t0, &[0, 0, 0, 1, 9, 0]),
        Err(RpcError::Protocol(_))
    ));
    assert!(!client.is_connected());
    // The call survives the bad connection and is retried on the next one.
    assert!(drain(&mut client).is_empty());
    assert_eq!(client.outstanding(), 1);
    let _ = call;
}

#[test]
fn closed_after_sending_with_no_attempts_left() {
    let t0 = Instant::now();
    let cfg = ClientConfig {
        max_attempts: 1,
        ..ClientConfig::default()
    };
    let mut client = ClientCore::new(1, cfg);
    open_alone(t0, &mut client);
    let call = client.start_call(t0, 1, vec![], None);
    client.handle_disconnected(t0);
    assert_eq!(drain(&mut client), vec![(call, Err(RpcError::Closed))]);
}

#[test]
fn in_process_caller_gives_location_transparency() {
    let mut accounts = Accounts::default();
    accounts.balances.insert("alice".into(), 5);
    let stub = BankClient::new(rpc::blocking::InProcess::new(BankServer(accounts)));
    assert_eq!(stub.balance("alice".into()), Ok(5));
    assert_eq!(
        stub.transfer("alice".into(), "nobody".into(), 1),
        Ok(Err(BankError::NoSuchAccount))
    );
}

#[test]
fn a_retry_never_reaches_a_restarted_server() {
    // The first copy reaches run 1, which executes it and dies before the
    // reply leaves. Run 2 has an empty at-most-once table: sending the retry
    // there would move the money twice, so the call fails with Restarted.
    let t0 = Instant::now();
    let mut client = ClientCore::new(9, ClientConfig::default());
    let mut run1 = server_run(1);
    open(t0, &mut client, &mut run1, 1);
    let (m, a, _) = BankCall::transfer("alice".into(), "bob".into(), 10)
        .expect("marshal")
        .into_parts();
    let call = client.start_call(t0, m, a, None);
    let mut up = Vec::new();
    client.poll_transmit(&mut up);
    run1.handle_bytes(t0, 1, &up).expect("server");
    assert_eq!(run1.dispatcher().0.balances["alice"], 90);
    drop(run1);
    client.handle_disconnected(t0);

    let mut run2 = server_run(2);
    let mut now = t0;
    while !client.wants_connection(now) {
        now = client.poll_timeout().expect("timer");
        client.handle_timeout(now);
    }
    open(now, &mut client, &mut run2, 1);
    let mut retry = Vec::new();
    client.poll_transmit(&mut retry);
    assert!(retry.is_empty(), "the retry is not sent to run 2");
    assert_eq!(drain(&mut client), vec![(call, Err(RpcError::Restarted))]);
    assert!(RpcError::Restarted.may_have_executed());
    assert_eq!(run2.stats().executed, 0);

    // A client that sends it anyway (the first copy's bytes, stamped with
    // run 1) is refused by run 2 without executing.
    run2.handle_bytes(now, 1, &up).expect("server");
    let mut down = Vec::new();
    run2.poll_transmit(1, &mut down);
    let mut frames = Vec::new();
    rpc::frame::FrameDecoder::default()
        .decode_all(&down, &mut frames)
        .expect("frames");
    let reply: rpc::ServerMessage = rpc::message::decode_message(&frames[0]).expect("reply");
    assert_eq!(
        reply,
        rpc::ServerMessage::Response(rpc::Response {
            request_id: call.0,
            result: Err(RemoteError::Restarted),
        })
    );
    assert_eq!(run2.stats().restarted, 1);
    assert_eq!(run2.stats().executed, 0);
    assert_eq!(run2.dispatcher().0.balances["alice"], 100);

    // New calls on the new run work as usual.
    let (m, a, reply) = BankCall::balance("alice".into())
        .expect("marshal")
        .into_parts();
    let balance = client.start_call(now, m, a, None);
    pump(now, &mut client, &mut run2, 1);
    let done = drain(&mut client);
    assert_eq!(done[0].0, balance);
    assert_eq!(reply.decode(done[0].1.as_ref().expect("ok")), Ok(100));
}

#[test]
fn a_server_that_never_greets_is_a_failed_connection() {
    let t0 = Instant::now();
    let cfg = ClientConfig {
        max_attempts: 2,
        attempt_timeout: Duration::from_millis(200),
        ..ClientConfig::default()
    };
    let mut client = ClientCore::new(1, cfg);
    let call = client.start_call(t0, 1, vec![], None);
    let mut now = t0;
    for attempt in 1..=2 {
        while !client.wants_connection(now) {
            now = client.poll_timeout().expect("timer");
            client.handle_timeout(now);
        }
        client.handle_connected(now);
        assert_eq!(
            client.poll_timeout(),
            Some(now + Duration::from_millis(200))
        );
        now += Duration::from_millis(200);
        client.handle_timeout(now);
        assert!(!client.is_connected(), "attempt {attempt}: given up");
        let mut sent = Vec::new();
        client.poll_transmit(&mut sent);
        assert!(sent.is_empty());
    }
    assert_eq!(
        drain(&mut client),
        vec![(
            call,
            Err(RpcError::Unreachable("the server did not greet".into()))
        )]
    );
}

#[test]
fn a_call_never_sent_by_its_deadline_is_unreachable_not_a_timeout() {
    let t0 = Instant::now();
    let mut client = ClientCore::new(1, ClientConfig::default());
    client.handle_connected(t0);
    let call = client.start_call(t0, 1, vec![], Some(Duration::from_millis(100)));
    client.handle_timeout(t0 + Duration::from_millis(100));
    let done = drain(&mut client);
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].0, call);
    assert!(matches!(&done[0].1, Err(RpcError::Unreachable(_))));
    assert!(!done[0].1.as_ref().expect_err("error").may_have_executed());
}

#[test]
fn replies_before_the_greeting_and_second_greetings_are_protocol_errors() {
    let t0 = Instant::now();
    let frame = |msg: &rpc::ServerMessage| {
        let mut out = Vec::new();
        rpc::message::encode_message(&mut out, msg, DEFAULT_MAX_FRAME).expect("encode");
        out
    };
    let reply = frame(&rpc::ServerMessage::Response(rpc::Response {
        request_id: 1,
        result: Ok(vec![]),
    }));
    let hello = frame(&rpc::ServerMessage::Hello { incarnation: 3 });

    let mut client = ClientCore::new(1, ClientConfig::default());
    client.start_call(t0, 1, vec![], None);
    client.handle_connected(t0);
    assert!(matches!(
        client.handle_bytes(t0, &reply),
        Err(RpcError::Protocol(_))
    ));
    assert!(!client.is_connected());

    client.handle_connected(t0);
    client.handle_bytes(t0, &hello).expect("greeting");
    assert!(matches!(
        client.handle_bytes(t0, &hello),
        Err(RpcError::Protocol(_))
    ));
    assert!(!client.is_connected());
    assert_eq!(
        client.outstanding(),
        1,
        "the call waits for a good connection"
    );
}
