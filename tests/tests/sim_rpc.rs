//! At-most-once RPC over ustack TCP in the simulated network: the `rpc`
//! crate's sans-IO client and server cores, driven over real stacks whose
//! links lose, duplicate, delay and reorder frames, with connections reset
//! under the calls so that clients retry (same request id) on the same and
//! on new connections.
//!
//! The service is a counter whose `increment` returns the new value: a
//! request executed twice would make its client miss a value, and the
//! server's execution log would name the request twice.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddrV4;
use std::time::Duration;

use rpc::message::from_bytes;
use rpc::{
    AuthKey, ClientAuth, ClientConfig, RemoteError, Request, RpcError, ServerAuth, ServerConfig,
};
use sim::sim::rpc_apps::{CounterClientApp, CounterServer, CounterServerApp, RequestReplayer};
use sim::sim::{AppId, HostId, LinkConfig, LinkId, Sim, host_config, seed_from_env};

const PORT: u16 = 4000;

struct Net {
    sim: Sim,
    server_host: HostId,
    client_hosts: Vec<HostId>,
    switch: LinkId,
    server: AppId,
    clients: Vec<AppId>,
}

/// Impairments on every switch port towards a host: each frame crosses one
/// impaired downlink.
fn hostile_link() -> LinkConfig {
    LinkConfig::with_latency_of(Duration::from_millis(5))
        .with_jitter(Duration::from_millis(2))
        .with_loss(0.03)
        .with_dup(0.25)
        .with_reorder(0.10)
}

/// Calls retry quickly (the attempt timeout is a few round trips, shorter
/// than a TCP retransmission timeout, so retries race the originals) and
/// never give up within the test.
fn eager_retries() -> ClientConfig {
    ClientConfig {
        call_timeout: Duration::from_secs(60),
        attempt_timeout: Duration::from_millis(30),
        max_attempts: 10_000,
        backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(100),
        ..ClientConfig::default()
    }
}

/// A counter server on host 1, and `clients` clients (hosts 2, 3, ...)
/// making `calls` increments each on their own key, 4 at a time.
fn counter_net(seed: u64, link: LinkConfig, clients: usize, calls: u64, chaos: bool) -> Net {
    counter_net_keyed(seed, link, clients, calls, chaos, None)
}

/// [`counter_net`] where the server requires `key` and every client has
/// it (client i claims identity 100 + i).
fn counter_net_keyed(
    seed: u64,
    link: LinkConfig,
    clients: usize,
    calls: u64,
    chaos: bool,
    key: Option<AuthKey>,
) -> Net {
    let mut sim = Sim::new(seed);
    let server_host = sim.add_host(host_config(1));
    let client_hosts: Vec<HostId> = (0..clients)
        .map(|i| sim.add_host(host_config(2 + i as u8)))
        .collect();
    let mut all = vec![server_host];
    all.extend(&client_hosts);
    let switch = sim.add_switch(&all, link);
    let app = CounterServerApp::listen(
        sim.iface(server_host),
        PORT,
        CounterServer::default(),
        ServerConfig {
            incarnation: seed,
            auth: key.clone().map(|key| ServerAuth {
                keys: rpc::ServerKeys::Shared(key),
                nonce_seed: seed.to_be_bytes().repeat(4).try_into().unwrap(),
            }),
            ..ServerConfig::default()
        },
    )
    .unwrap();
    let server = sim.add_app(server_host, app);
    if chaos {
        // Reset every connection now and then: calls in flight are retried
        // on new connections.
        let start = sim.now();
        sim.app::<CounterServerApp>(server).resets = (1..=20)
            .map(|i| start + Duration::from_millis(170 * i))
            .collect();
    }
    let dst = SocketAddrV4::new(sim.ip(server_host), PORT);
    let mut client_apps = Vec::new();
    for (i, &h) in client_hosts.iter().enumerate() {
        let client_id = sim.derive_seed(i as u64);
        let config = ClientConfig {
            auth: key.clone().map(|key| ClientAuth {
                key,
                identity: 100 + i as u64,
                nonce_seed: client_id.to_le_bytes().repeat(4).try_into().unwrap(),
            }),
            ..eager_retries()
        };
        let mut app = CounterClientApp::new(client_id, dst, config, &format!("c{i}"), calls, 4);
        if chaos {
            let now = sim.now();
            app = app.with_chaos(
                sim.derive_seed(100 + i as u64),
                Duration::from_millis(250),
                now,
            );
        }
        client_apps.push(sim.add_app(h, app));
    }
    Net {
        sim,
        server_host,
        client_hosts,
        switch,
        server,
        clients: client_apps,
    }
}

fn run_calls(net: &mut Net) {
    let clients = net.clients.clone();
    let ok = net.sim.run_until(
        |sim| {
            clients
                .iter()
                .all(|&c| sim.app::<CounterClientApp>(c).done())
        },
        Duration::from_secs(300),
    );
    assert!(ok, "calls did not finish");
}

/// Everything the test can say about at-most-once from the outside:
/// every call succeeded, with the value of the one execution of its
/// request; each key's values are exactly 1..=calls; no request executed
/// twice. Returns (request frames written, distinct requests).
fn check_exactly_once(net: &mut Net, calls: u64) -> (usize, usize) {
    let executions = net
        .sim
        .app::<CounterServerApp>(net.server)
        .server
        .core
        .dispatcher()
        .0
        .executions
        .clone();
    let mut by_request = BTreeMap::new();
    for e in &executions {
        let before = by_request.insert((e.client_id, e.request_id), e.value);
        assert!(
            before.is_none(),
            "request {}/{} executed twice",
            e.client_id,
            e.request_id
        );
    }
    let (mut frames, mut distinct) = (0, 0);
    for &c in &net.clients {
        let app = net.sim.app::<CounterClientApp>(c);
        let client_id = app.rpc.core.client_id();
        let mut values = BTreeSet::new();
        for seq in 0..calls {
            let value = match &app.results[&seq] {
                Ok(v) => *v,
                Err(e) => panic!("client {}: call {seq} failed: {e}", app.key()),
            };
            let request = app.call_ids[&seq].0;
            assert_eq!(
                by_request.get(&(client_id, request)),
                Some(&value),
                "client {}: call {seq} got a value no single execution produced",
                app.key()
            );
            assert!(values.insert(value), "value {value} seen twice");
        }
        assert_eq!(
            values,
            (1..=calls).collect::<BTreeSet<u64>>(),
            "client {}: values skipped (double execution) or missing",
            app.key()
        );
        let sent = app.rpc.recorded.as_ref().expect("recording");
        frames += sent.len();
        distinct += sent
            .iter()
            .map(|r| r.request_id)
            .collect::<BTreeSet<_>>()
            .len();
    }
    let server = net.sim.app::<CounterServerApp>(net.server);
    let counters = &server.server.core.dispatcher().0.values;
    for i in 0..net.clients.len() {
        assert_eq!(counters.get(&format!("c{i}")), Some(&calls), "counter c{i}");
    }
    assert_eq!(
        executions.len() as u64,
        calls * net.clients.len() as u64,
        "executions"
    );
    assert_eq!(server.server.core.stats().executed, executions.len() as u64);
    (frames, distinct)
}

#[test]
fn each_call_executes_exactly_once_under_duplication_reordering_loss_and_resets() {
    let calls = 100;
    let (mut replayed, mut resent, mut reconnects, mut dups) = (0, 0, 0, 0);
    // SIM_SEED=N runs seeds N, N+1, ... (a failure prints its seed).
    let master = seed_from_env(1);
    for seed in (0..6).map(|i| master.wrapping_add(i)) {
        let mut net = counter_net(seed, hostile_link(), 3, calls, true);
        run_calls(&mut net);
        let (frames, distinct) = check_exactly_once(&mut net, calls);
        let stats = net
            .sim
            .app::<CounterServerApp>(net.server)
            .server
            .core
            .stats();
        let link = net.sim.link_stats(net.switch);
        let conns = net
            .clients
            .iter()
            .map(|&c| net.sim.app::<CounterClientApp>(c).rpc.stats.connects)
            .sum::<u64>();
        eprintln!(
            "seed {seed}: {distinct} calls, {frames} request frames, {} replayed from the \
             cache, {} connections, {} s virtual; link: {} lost, {} duplicated, {} reordered",
            stats.replayed,
            conns,
            net.sim.elapsed().as_secs_f64(),
            link.lost,
            link.duplicated,
            link.reordered
        );
        assert!(link.lost > 0 && link.duplicated > 0 && link.reordered > 0);
        replayed += stats.replayed;
        resent += frames - distinct;
        reconnects += conns - net.clients.len() as u64;
        dups += link.duplicated;
    }
    // The conditions the test is about really occurred: requests were sent
    // more than once, on the same and on new connections, and duplicates
    // reached the server after the original had executed.
    assert!(resent > 100, "only {resent} retransmitted requests");
    assert!(reconnects > 20, "only {reconnects} reconnections");
    assert!(
        replayed > 50,
        "only {replayed} duplicates answered from the cache"
    );
    assert!(dups > 100);
}

#[test]
fn authenticated_connections_keep_calls_exactly_once_under_loss_and_resets() {
    let calls = 50;
    let master = seed_from_env(21);
    for seed in (0..2).map(|i| master.wrapping_add(i)) {
        let key = AuthKey::from_bytes([seed as u8; 32]);
        let mut net = counter_net_keyed(seed, hostile_link(), 2, calls, true, Some(key));
        run_calls(&mut net);
        check_exactly_once(&mut net, calls);
        let stats = net
            .sim
            .app::<CounterServerApp>(net.server)
            .server
            .core
            .stats();
        let conns = net
            .clients
            .iter()
            .map(|&c| net.sim.app::<CounterClientApp>(c).rpc.stats.connects)
            .sum::<u64>();
        eprintln!(
            "seed {seed}: {} connections authenticated of {conns} opened, {} failed",
            stats.authenticated, stats.auth_failed
        );
        // Every call ran on an authenticated connection (several, since
        // connections were reset under the calls).
        assert!(stats.authenticated > net.clients.len() as u64);
        assert!(stats.authenticated <= conns);
    }
}

#[test]
fn delayed_duplicates_get_the_cached_reply_then_are_refused_never_reexecuted() {
    let calls = 25;
    let mut net = counter_net(seed_from_env(11), hostile_link(), 2, calls, false);
    run_calls(&mut net);
    check_exactly_once(&mut net, calls);
    let first = net.clients[0];
    let (requests, expected) = {
        let app = net.sim.app::<CounterClientApp>(first);
        // Each distinct request once, newest first.
        let mut seen = BTreeSet::new();
        let mut requests: Vec<Request> = app
            .rpc
            .recorded
            .clone()
            .unwrap()
            .into_iter()
            .filter(|r| seen.insert(r.request_id))
            .collect();
        requests.reverse();
        let expected: BTreeMap<u64, u64> = app
            .call_ids
            .iter()
            .map(|(seq, id)| (id.0, *app.results[seq].as_ref().unwrap()))
            .collect();
        (requests, expected)
    };
    assert_eq!(requests.len() as u64, calls);
    let executed = |net: &mut Net| {
        net.sim
            .app::<CounterServerApp>(net.server)
            .server
            .core
            .stats()
            .executed
    };
    let before = executed(&mut net);
    let dst = SocketAddrV4::new(net.sim.ip(net.server_host), PORT);
    let host = net.client_hosts[0];

    let replay = |net: &mut Net, copies: usize| {
        let now = net.sim.now();
        let app =
            RequestReplayer::connect(net.sim.iface(host), now, dst, &requests, copies).unwrap();
        let id = net.sim.add_app(host, app);
        let want = requests.len() * copies;
        assert!(
            net.sim.run_until(
                |sim| sim.app::<RequestReplayer>(id).responses.len() >= want,
                Duration::from_secs(60)
            ),
            "replies to the replayed requests"
        );
        let app = net.sim.app::<RequestReplayer>(id);
        assert_eq!(app.error, None);
        let responses = app.responses.clone();
        net.sim.remove_app(id);
        responses
    };

    // Five seconds later (a duplicate delayed in the network, or sent by a
    // confused retransmission): every copy gets the original reply.
    net.sim.run_for(Duration::from_secs(5));
    let responses = replay(&mut net, 2);
    assert_eq!(responses.len(), 2 * requests.len());
    for r in &responses {
        let bytes = r.result.as_ref().expect("cached reply");
        let value: u64 = from_bytes(bytes).unwrap();
        assert_eq!(
            value, expected[&r.request_id],
            "request {}: the replayed reply differs from the original",
            r.request_id
        );
    }
    assert_eq!(executed(&mut net), before, "a duplicate was executed");

    // Past the reply cache's memory (60 s): the requests are refused as
    // stale, still not executed.
    net.sim.run_for(Duration::from_secs(65));
    let responses = replay(&mut net, 1);
    let mut answered: VecDeque<u64> = responses.iter().map(|r| r.request_id).collect();
    for r in &responses {
        assert_eq!(
            r.result,
            Err(RemoteError::Stale),
            "request {}",
            r.request_id
        );
    }
    answered.make_contiguous().sort_unstable();
    assert_eq!(
        Vec::from(answered),
        expected.keys().copied().collect::<Vec<_>>()
    );
    assert_eq!(executed(&mut net), before, "a stale duplicate was executed");
    let server = net.sim.app::<CounterServerApp>(net.server);
    assert_eq!(
        server.server.core.dispatcher().0.values.get("c0"),
        Some(&calls)
    );
    assert!(server.server.core.stats().stale >= calls);
    assert!(server.server.core.stats().replayed >= 2 * calls);
}

#[test]
fn a_server_restart_never_executes_a_call_twice() {
    // The server crashes and restarts every 150 ms while three clients make
    // 100 increments each over a hostile link. The counters survive the
    // crashes (as if on disk); the at-most-once table does not. A retry that
    // reached the new run would execute a second time; instead the client
    // learns the new incarnation from the greeting and reports the call as
    // Restarted ("may have executed once").
    let calls = 100;
    let (mut restarted, mut restarted_but_executed, mut ok_calls) = (0, 0, 0);
    let master = seed_from_env(21);
    for seed in (0..4).map(|i| master.wrapping_add(i)) {
        let mut net = counter_net(seed, hostile_link(), 3, calls, false);
        let start = net.sim.now();
        net.sim.app::<CounterServerApp>(net.server).restarts = (1..=20u64)
            .map(|i| (start + Duration::from_millis(150 * i), (seed << 8) + i))
            .collect();
        run_calls(&mut net);
        let server = net.sim.app::<CounterServerApp>(net.server);
        let restarts = server.server.stats.restarts;
        assert!(
            restarts >= 4,
            "seed {seed}: only {restarts} restarts before the end"
        );
        let counters = server.server.core.dispatcher().0.values.clone();
        let executions = server.server.core.dispatcher().0.executions.clone();
        let mut by_request = BTreeMap::new();
        for e in &executions {
            let before = by_request.insert((e.client_id, e.request_id), e.value);
            assert!(
                before.is_none(),
                "seed {seed}: request {}/{} executed twice (across a restart)",
                e.client_id,
                e.request_id
            );
        }
        for &c in &net.clients {
            let app = net.sim.app::<CounterClientApp>(c);
            let client_id = app.rpc.core.client_id();
            let mut values = BTreeSet::new();
            for seq in 0..calls {
                let request = app.call_ids[&seq].0;
                let executed = by_request.get(&(client_id, request));
                match &app.results[&seq] {
                    Ok(v) => {
                        ok_calls += 1;
                        assert_eq!(executed, Some(v), "seed {seed}: call {seq}");
                        assert!(values.insert(*v));
                    }
                    Err(RpcError::Restarted) => {
                        restarted += 1;
                        restarted_but_executed += u64::from(executed.is_some());
                    }
                    Err(e) => panic!("seed {seed}: client {}: call {seq}: {e}", app.key()),
                }
            }
            let of_key = executions.iter().filter(|e| e.key == app.key()).count() as u64;
            assert_eq!(counters.get(app.key()).copied().unwrap_or(0), of_key);
        }
        eprintln!(
            "seed {seed}: {restarts} restarts, {} executions; {restarted} calls so far \
             reported restarted",
            executions.len(),
        );
    }
    eprintln!(
        "{ok_calls} calls answered, {restarted} reported Restarted, of which \
         {restarted_but_executed} had executed before the crash (a retry would have \
         executed them twice)"
    );
    // The case the test is about happened: calls executed by a run that
    // crashed before replying, whose retries met the next run.
    assert!(
        restarted_but_executed > 0,
        "no call executed before a crash"
    );
    assert!(ok_calls > restarted, "most calls succeed");
}
