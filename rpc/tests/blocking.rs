//! The blocking drivers over real loopback TCP (std::net).

use rpc::binding::{NameServiceClient, NameServiceServer, Registrar, Registry, Resolver};
use rpc::blocking::{Client, SharedServer, serve, serve_connection};
use rpc::frame::{DEFAULT_MAX_FRAME, FrameDecoder};
use rpc::message::{decode_message, encode_message};
use rpc::twopc::rpc::{Node, TwoPcPeerServer};
use rpc::twopc::{
    Bank, BankOp, CoordState, CoordinatorConfig, FileWal, PartState, ParticipantConfig,
};
use rpc::{CallContext, ClientConfig, Request, RpcError, ServerConfig, ServerMessage};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

rpc::service! {
    /// A counter with a slow increment.
    pub trait Counter {
        server CounterServer;
        client CounterClient;
        calls CounterCall;

        fn incr(by: u64) -> u64;
        fn incr_slow(by: u64, ms: u64) -> u64;
        fn echo(text: String) -> String;
    }
}

#[derive(Default)]
struct Count(u64);

impl Counter for Count {
    fn incr(&mut self, _ctx: &CallContext, by: u64) -> u64 {
        self.0 += by;
        self.0
    }
    fn incr_slow(&mut self, _ctx: &CallContext, by: u64, ms: u64) -> u64 {
        thread::sleep(Duration::from_millis(ms));
        self.0 += by;
        self.0
    }
    fn echo(&mut self, _ctx: &CallContext, text: String) -> String {
        text
    }
}

fn start_server() -> (SocketAddr, Arc<SharedServer<CounterServer<Count>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = SharedServer::new(CounterServer(Count::default()), ServerConfig::default());
    let s = Arc::clone(&server);
    thread::spawn(move || serve(move || listener.accept().map(|(s, _)| s), s));
    (addr, server)
}

fn quick() -> ClientConfig {
    ClientConfig {
        call_timeout: Duration::from_secs(5),
        attempt_timeout: Duration::from_secs(2),
        backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(100),
        ..ClientConfig::default()
    }
}

#[test]
fn concurrent_calls_from_many_threads_share_one_connection() {
    let (addr, server) = start_server();
    let client = Client::new(move || TcpStream::connect(addr), quick()).expect("client");
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let stub = CounterClient::new(client.clone());
            thread::spawn(move || {
                for j in 0..50 {
                    let text = format!("thread {i} call {j}");
                    assert_eq!(stub.echo(text.clone()), Ok(text));
                    stub.incr(1).expect("incr");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("thread");
    }
    assert_eq!(server.service().0.0, 400);
    assert_eq!(server.stats().executed, 800);
    assert_eq!(server.stats().replayed, 0);
}

/// Accepts one connection for `server`, greets it, executes the first
/// request and drops the connection without replying (a lost reply, or a
/// crash right after executing).
fn execute_then_drop(listener: &TcpListener, server: &SharedServer<CounterServer<Count>>) {
    let (mut conn, _) = listener.accept().expect("accept");
    let mut hello = Vec::new();
    let greeting = ServerMessage::Hello {
        incarnation: server.incarnation(),
    };
    encode_message(&mut hello, &greeting, DEFAULT_MAX_FRAME).expect("encode");
    conn.write_all(&hello).expect("greet");
    let mut decoder = FrameDecoder::default();
    let mut buf = [0u8; 4096];
    let mut frames = Vec::new();
    while frames.is_empty() {
        let n = conn.read(&mut buf).expect("read");
        decoder.decode_all(&buf[..n], &mut frames).expect("frames");
    }
    let req: Request = decode_message(&frames[0]).expect("request");
    assert_eq!(req.incarnation, server.incarnation());
    assert!(server.handle(req).is_some());
}

#[test]
fn lost_reply_is_retried_on_a_new_connection_and_executed_once() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = SharedServer::new(CounterServer(Count::default()), ServerConfig::default());
    let s = Arc::clone(&server);
    thread::spawn(move || {
        execute_then_drop(&listener, &s);
        // Then serve normally.
        let (conn, _) = listener.accept().expect("accept");
        let _ = serve_connection(conn, &s);
    });
    let stub =
        CounterClient::new(Client::new(move || TcpStream::connect(addr), quick()).expect("client"));
    assert_eq!(stub.incr(5), Ok(5), "the retry gets the cached reply");
    assert_eq!(server.service().0.0, 5, "executed once");
    assert_eq!(server.stats().executed, 1);
    assert_eq!(server.stats().replayed, 1);
}

#[test]
fn a_retry_after_the_server_restarts_is_not_executed_again() {
    // Run 1 executes the call and dies before replying; run 2 (same
    // address, empty at-most-once table) must not execute the retry.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let run1 = SharedServer::new(CounterServer(Count::default()), ServerConfig::default());
    let run2 = SharedServer::new(CounterServer(Count::default()), ServerConfig::default());
    assert_ne!(run1.incarnation(), run2.incarnation());
    let (r1, r2) = (Arc::clone(&run1), Arc::clone(&run2));
    thread::spawn(move || {
        execute_then_drop(&listener, &r1);
        drop(r1);
        let _ = serve(move || listener.accept().map(|(s, _)| s), r2);
    });
    let client = Client::new(move || TcpStream::connect(addr), quick()).expect("client");
    let stub = CounterClient::new(client.clone());
    assert_eq!(stub.incr(5), Err(RpcError::Restarted));
    assert_eq!(run1.service().0.0, 5, "run 1 executed it");
    assert_eq!(run2.service().0.0, 0, "run 2 did not");
    assert_eq!(run2.stats().executed, 0);
    // The client goes on working with run 2.
    assert_eq!(stub.incr(2), Ok(2));
}

#[test]
fn a_server_slow_to_greet_is_left_for_a_new_connection() {
    // The first connection is accepted but never greeted (a server busy
    // recovering, say); the client gives it up after its attempt timeout,
    // connects again and the call goes through on the second connection.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = SharedServer::new(CounterServer(Count::default()), ServerConfig::default());
    let s = Arc::clone(&server);
    thread::spawn(move || {
        let (mut silent, _) = listener.accept().expect("accept");
        let _ = serve(move || listener.accept().map(|(c, _)| c), s);
        // Keep the silent connection open meanwhile.
        let _ = silent.read(&mut [0u8; 16]);
    });
    let config = ClientConfig {
        attempt_timeout: Duration::from_millis(300),
        ..quick()
    };
    let client = Client::new(move || TcpStream::connect(addr), config).expect("client");
    let started = Instant::now();
    let stub = CounterClient::new(client);
    assert_eq!(stub.incr(3), Ok(3));
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(stub.incr(1), Ok(4));
    assert_eq!(server.stats().executed, 2);
}

#[test]
fn duplicate_while_executing_waits_for_the_original() {
    let (addr, server) = start_server();
    let (method, args, _) = CounterCall::incr_slow(1, 300)
        .expect("marshal")
        .into_parts();
    let req = Request {
        client_id: 77,
        request_id: 1,
        method,
        args,
        deadline_ms: None,
        incarnation: server.incarnation(),
    };
    let mut bytes = Vec::new();
    encode_message(&mut bytes, &req, DEFAULT_MAX_FRAME).expect("encode");
    let send = move |bytes: Vec<u8>| {
        thread::spawn(move || {
            let mut conn = TcpStream::connect(addr).expect("connect");
            conn.write_all(&bytes).expect("write");
            let mut decoder = FrameDecoder::default();
            let mut frames = Vec::new();
            let mut buf = [0u8; 4096];
            // The greeting, then the reply.
            while frames.len() < 2 {
                let n = conn.read(&mut buf).expect("read");
                assert!(n > 0, "closed without reply");
                decoder.decode_all(&buf[..n], &mut frames).expect("frames");
            }
            match decode_message::<ServerMessage>(&frames[1]).expect("response") {
                ServerMessage::Response(r) => r,
                other => panic!("expected a reply, got {other:?}"),
            }
        })
    };
    let a = send(bytes.clone());
    thread::sleep(Duration::from_millis(50));
    let b = send(bytes);
    let (ra, rb) = (a.join().expect("a"), b.join().expect("b"));
    assert_eq!(ra, rb);
    assert_eq!(server.service().0.0, 1, "executed once");
    assert_eq!(server.stats().in_progress_duplicates, 1);
}

#[test]
fn unreachable_server_and_deadlines() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let stub =
        CounterClient::new(Client::new(move || TcpStream::connect(addr), quick()).expect("client"));
    assert!(matches!(stub.incr(1), Err(RpcError::Unreachable(_))));

    let (addr, _server) = start_server();
    let client = Client::new(move || TcpStream::connect(addr), quick()).expect("client");
    let started = Instant::now();
    let stub = CounterClient::new(client.with_timeout(Duration::from_millis(200)));
    assert_eq!(stub.incr_slow(1, 1000), Err(RpcError::Timeout));
    assert!(started.elapsed() < Duration::from_millis(900));
}

#[test]
fn name_service_registers_renews_resolves_and_expires() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let registry = SharedServer::new(
        NameServiceServer(Registry::new(
            Duration::from_millis(50),
            Duration::from_secs(60),
        )),
        ServerConfig::default(),
    );
    let r = Arc::clone(&registry);
    thread::spawn(move || serve(move || listener.accept().map(|(s, _)| s), r));
    let connect = move || Client::new(move || TcpStream::connect(addr), quick()).expect("client");

    let registrar = Registrar::start(
        NameServiceClient::new(connect()),
        "counter".into(),
        "127.0.0.1:9999".into(),
        Duration::from_millis(300),
    )
    .expect("register");
    // Renewed past several lease lengths.
    thread::sleep(Duration::from_millis(1000));
    let resolver = Resolver::new(NameServiceClient::new(connect()), Duration::from_secs(10));
    assert_eq!(resolver.resolve("counter"), Ok("127.0.0.1:9999".into()));
    assert!(registrar.lease().is_some());
    drop(registrar); // unregisters
    resolver.invalidate("counter");
    assert!(resolver.resolve("counter").is_err());

    // A lease that is not renewed expires.
    let names = NameServiceClient::new(connect());
    names
        .register("tmp".into(), "x".into(), 100)
        .expect("rpc")
        .expect("register");
    assert_eq!(names.lookup("tmp".into()).expect("rpc"), Ok("x".into()));
    thread::sleep(Duration::from_millis(150));
    assert!(names.lookup("tmp".into()).expect("rpc").is_err());
}

#[test]
fn two_phase_commit_nodes_over_tcp_with_file_logs() {
    let dir = std::env::temp_dir().join(format!("rpc-2pc-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("mkdir");
    let listeners: Vec<TcpListener> = (0..3)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind"))
        .collect();
    let addrs: Arc<Vec<SocketAddr>> = Arc::new(
        listeners
            .iter()
            .map(|l| l.local_addr().expect("addr"))
            .collect(),
    );
    let banks = [Bank::new([("alice", 100)]), Bank::new([("bob", 0)])];
    let mut nodes = Vec::new();
    for (id, listener) in listeners.into_iter().enumerate() {
        let id = id as u32;
        let wal = FileWal::open(dir.join(format!("node{id}.wal"))).expect("wal");
        let a = Arc::clone(&addrs);
        let connect = move |peer: u32| TcpStream::connect(a[peer as usize]);
        let (coord, part) = if id == 0 {
            (Some(CoordinatorConfig::default()), None)
        } else {
            (
                None,
                Some((banks[id as usize - 1].clone(), ParticipantConfig::default())),
            )
        };
        let node = Node::start(id, wal, coord, part, connect, |_| {}).expect("node");
        let server = SharedServer::new(TwoPcPeerServer(node.inbox()), ServerConfig::default());
        thread::spawn(move || serve(move || listener.accept().map(|(s, _)| s), server));
        nodes.push(node);
    }
    let op = |a: &str, d: i64| {
        BankOp::encode(&[BankOp {
            account: a.into(),
            delta: d,
        }])
    };
    let t1 = nodes[0]
        .begin(vec![(1, op("alice", -40)), (2, op("bob", 40))])
        .expect("begin");
    let t2 = nodes[0]
        .begin(vec![(1, op("alice", -70)), (2, op("bob", 70))])
        .expect("begin");
    let deadline = Instant::now() + Duration::from_secs(10);
    let ended = |tx| {
        matches!(
            nodes[0].with_coordinator(|c| c.state(tx)).flatten(),
            Some(CoordState::Ended { .. })
        )
    };
    while !(ended(t1) && ended(t2)) {
        assert!(Instant::now() < deadline, "transactions did not finish");
        thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        nodes[0].with_coordinator(|c| c.state(t1)).flatten(),
        Some(CoordState::Ended { committed: true })
    );
    assert_eq!(
        nodes[0].with_coordinator(|c| c.state(t2)).flatten(),
        Some(CoordState::Ended { committed: false })
    );
    assert_eq!(
        nodes[1]
            .with_participant(|p| p.resource().balance("alice"))
            .flatten(),
        Some(60)
    );
    assert_eq!(
        nodes[2]
            .with_participant(|p| p.resource().balance("bob"))
            .flatten(),
        Some(40)
    );
    // Aborted, or already forgotten after the end-of-transaction notice.
    let s2 = nodes[2]
        .with_participant(|p| (p.status(t2), p.forgot(t2)))
        .expect("participant");
    assert!(
        matches!(s2, (Some(PartState::Aborted), _) | (None, true)),
        "{s2:?}"
    );
    // The participants' files replay to the same balances.
    // (The node still holds its log, locked: read it without opening it.)
    use rpc::twopc::Participant;
    let records = FileWal::read_records(dir.join("node1.wal")).expect("read");
    let p = Participant::recover(
        1,
        banks[0].clone(),
        ParticipantConfig::default(),
        &records,
        Instant::now(),
    )
    .expect("recover");
    assert_eq!(p.resource().balance("alice"), Some(60));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A log whose disk went away: appends are accepted, nothing can be synced.
struct FailingWal;

impl rpc::twopc::Wal for FailingWal {
    fn append(&mut self, _rec: &rpc::twopc::LogRecord) -> std::io::Result<()> {
        Ok(())
    }
    fn sync(&mut self) -> std::io::Result<()> {
        Err(std::io::Error::other("disk gone"))
    }
    fn replay(&mut self) -> std::io::Result<Vec<rpc::twopc::LogRecord>> {
        Ok(Vec::new())
    }
    fn size(&self) -> u64 {
        0
    }
    fn rewrite(&mut self, _records: &[rpc::twopc::LogRecord]) -> std::io::Result<()> {
        Err(std::io::Error::other("disk gone"))
    }
}

#[test]
fn a_node_whose_log_fails_says_so() {
    let connect = |_peer: u32| TcpStream::connect("127.0.0.1:9");
    let node: Node<Bank> = Node::start(
        0,
        FailingWal,
        Some(CoordinatorConfig::default()),
        None,
        connect,
        |_| {},
    )
    .expect("node");
    assert_eq!(node.failure(), None);
    let work = BankOp::encode(&[BankOp {
        account: "alice".into(),
        delta: -1,
    }]);
    let _ = node.begin(vec![(1, work)]);
    let deadline = Instant::now() + Duration::from_secs(5);
    while node.failure().is_none() {
        assert!(Instant::now() < deadline, "no failure reported");
        thread::sleep(Duration::from_millis(10));
    }
    let why = node.failure().expect("failure");
    assert!(why.contains("disk gone"), "{why}");
}

/// Over an authenticated connection (`CallContext::peer` set), a delivery
/// whose `from` is not the proved node id is dropped and counted before
/// the state machines see it; a matching one goes through (and is then
/// judged by the protocol's own sender rule).
#[test]
fn a_delivery_whose_from_is_not_the_proved_peer_is_dropped() {
    use rpc::twopc::rpc::TwoPcPeer;
    use rpc::twopc::{MemWal, Msg, TxId};
    let connect = |_peer: u32| TcpStream::connect("127.0.0.1:9");
    let node: Node<Bank> = Node::start(
        1,
        MemWal::new(),
        None,
        Some((Bank::new([("alice", 100)]), ParticipantConfig::default())),
        connect,
        |_| {},
    )
    .expect("node");
    let tx = TxId {
        coordinator: 0,
        seq: 1,
        nonce: 42,
    };
    let prepare = Msg::Prepare {
        tx,
        participants: vec![1, 2],
        work: BankOp::work(&[("alice", -100)]),
    };
    let ctx = |peer| CallContext {
        now: Instant::now(),
        client_id: 1,
        request_id: 1,
        deadline: None,
        peer,
    };
    let mut inbox = node.inbox();
    // Node 2 proved who it is, then claims to be the coordinator.
    inbox.deliver(&ctx(Some(2)), 0, prepare.clone());
    assert_eq!(node.forged(), 1);
    // An unauthenticated forgery that does not even claim to be the
    // coordinator: refused by the protocol's rule.
    inbox.deliver(&ctx(None), 2, prepare.clone());
    let deadline = Instant::now() + Duration::from_secs(5);
    while node.stats().refused < 1 {
        assert!(Instant::now() < deadline, "not refused");
        thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(
        node.with_participant(|p| (p.status(tx), p.resource().locked())),
        Some((None, 0))
    );
    // The real coordinator, proved: taken.
    inbox.deliver(&ctx(Some(0)), 0, prepare);
    while node.with_participant(|p| p.status(tx)).flatten() != Some(PartState::Ready) {
        assert!(Instant::now() < deadline, "not prepared");
        thread::sleep(Duration::from_millis(5));
    }
    let stats = node.stats();
    assert_eq!((stats.forged, stats.refused), (1, 1));
}

/// Messages to ever more peers (here: presumed-abort answers to forged
/// sender ids) do not make the node spawn a sender per id: past
/// `max_peers` they are dropped and counted.
#[test]
fn a_node_keeps_senders_for_a_bounded_number_of_peers() {
    use rpc::twopc::rpc::{NodeOptions, TwoPcPeer};
    use rpc::twopc::{MemWal, Msg, TxId};
    let connect = |_peer: u32| TcpStream::connect("127.0.0.1:9");
    let node: Node<Bank> = Node::start_with(
        0,
        MemWal::new(),
        Some(CoordinatorConfig::default()),
        None,
        connect,
        |_| {},
        NodeOptions {
            max_peers: 2,
            ..NodeOptions::default()
        },
    )
    .expect("node");
    let ctx = CallContext {
        now: Instant::now(),
        client_id: 1,
        request_id: 1,
        deadline: None,
        peer: None,
    };
    let mut inbox = node.inbox();
    for from in 10..15u32 {
        let tx = TxId {
            coordinator: 0,
            seq: 1,
            nonce: u128::from(from),
        };
        inbox.deliver(&ctx, from, Msg::DecisionRequest { tx });
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while node.stats().dropped_sends < 3 {
        assert!(Instant::now() < deadline, "{:?}", node.stats());
        thread::sleep(Duration::from_millis(5));
    }
    thread::sleep(Duration::from_millis(50));
    assert_eq!(node.stats().dropped_sends, 3);
}
