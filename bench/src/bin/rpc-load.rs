//! RPC calls per second, with and without authentication (per-frame
//! HMAC-SHA-256 after a challenge-response greeting, see `rpc::auth`).
//!
//! usage: rpc-load [--transport memory|tcp] [--auth on|off] [--payload BYTES]
//!                 [--seconds S] [--threads N] [--window N]
//!
//! `memory`: a `ClientCore` and a `ServerCore` in one thread, bytes moved
//! between them by hand, `--window` calls in flight: the protocol's own
//! cost (marshalling, MACs, the at-most-once table), no I/O.
//! `tcp`: the blocking client and server over kernel loopback TCP,
//! `--threads` callers each making one call at a time through one shared
//! connection. Each call carries `--payload` bytes and gets them back.
//! Prints one line: `rpc-load: ... calls/s R`.

use rpc::{
    AuthKey, CallContext, Caller, ClientAuth, ClientConfig, ClientCore, ClientEvent, Dispatch,
    RemoteError, ServerAuth, ServerConfig, ServerCore,
};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// Echoes the arguments.
struct Echo;

impl Dispatch for Echo {
    fn dispatch(
        &mut self,
        _ctx: &CallContext,
        _method: u32,
        args: &[u8],
    ) -> Result<Vec<u8>, RemoteError> {
        Ok(args.to_vec())
    }
}

fn configs(auth: bool) -> (ServerConfig, ClientConfig) {
    let key = AuthKey::from_bytes([0x42; 32]);
    let server = ServerConfig {
        auth: auth.then(|| ServerAuth::new(key.clone())),
        // Every call is new: keep the reply cache from dominating.
        reply_ttl: Duration::from_secs(1),
        ..ServerConfig::default()
    };
    let client = ClientConfig {
        auth: auth.then(|| ClientAuth::new(key, 1)),
        call_timeout: Duration::from_secs(10),
        attempt_timeout: Duration::from_secs(5),
        ..ClientConfig::default()
    };
    (server, client)
}

fn memory(auth: bool, payload: usize, seconds: f64, window: usize) -> (u64, Duration) {
    let (server_config, client_config) = configs(auth);
    let mut server = ServerCore::new(Echo, server_config);
    let mut client = ClientCore::new(7, client_config);
    let args = vec![0x5a; payload];
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(seconds);
    let mut now = start;
    let (mut done, mut in_flight) = (0u64, 0usize);
    let (mut up, mut down) = (Vec::new(), Vec::new());
    client.handle_connected(now);
    assert!(server.handle_accepted_at(now, 1));
    loop {
        while in_flight < window {
            client.start_call(now, 1, args.clone(), None);
            in_flight += 1;
        }
        server.poll_transmit(1, &mut down);
        if !down.is_empty() {
            client.handle_bytes(now, &down).expect("client");
            down.clear();
        }
        while let Some(ClientEvent::Completed { result, .. }) = client.poll_event() {
            assert_eq!(result.expect("call").len(), payload);
            in_flight -= 1;
            done += 1;
        }
        client.poll_transmit(&mut up);
        if !up.is_empty() {
            server.handle_bytes(now, 1, &up).expect("server");
            up.clear();
        }
        if done % 1024 == 0 {
            now = Instant::now();
            server.handle_timeout(now);
            if now >= end {
                return (done, now - start);
            }
        }
    }
}

fn tcp(auth: bool, payload: usize, seconds: f64, threads: usize) -> (u64, Duration) {
    let (server_config, client_config) = configs(auth);
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = rpc::blocking::SharedServer::new(Echo, server_config);
    thread::spawn(move || {
        rpc::blocking::serve(
            move || {
                let (s, _) = listener.accept()?;
                s.set_nodelay(true)?;
                Ok(s)
            },
            server,
        )
    });
    let client = rpc::blocking::Client::new(
        move || {
            let s = TcpStream::connect(addr)?;
            s.set_nodelay(true)?;
            Ok(s)
        },
        client_config,
    )
    .expect("client");
    // One call first: the connection and the greeting are not measured.
    client.call(1, vec![0; payload]).expect("first call");
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (client, stop, done) = (client.clone(), Arc::clone(&stop), Arc::clone(&done));
            thread::spawn(move || {
                let args = vec![0x5a; payload];
                while !stop.load(Ordering::Relaxed) {
                    let reply = client.call(1, args.clone()).expect("call");
                    assert_eq!(reply.len(), payload);
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let start = Instant::now();
    thread::sleep(Duration::from_secs_f64(seconds));
    let counted = done.load(Ordering::Relaxed);
    let elapsed = start.elapsed();
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        let _ = w.join();
    }
    (counted, elapsed)
}

fn main() {
    let usage = "rpc-load [--transport memory|tcp] [--auth on|off] [--payload BYTES] \
                 [--seconds S] [--threads N] [--window N]";
    let flags = bench::Flags::from_env(usage);
    let transport = flags.string("transport").unwrap_or_else(|| "memory".into());
    let auth = match flags.string("auth").as_deref() {
        None | Some("on") => true,
        Some("off") => false,
        Some(other) => {
            eprintln!("error: --auth is on or off, not '{other}'");
            std::process::exit(2);
        }
    };
    let payload: usize = flags.get("payload", 64);
    let seconds: f64 = flags.get("seconds", 3.0);
    let threads: usize = flags.get("threads", 1);
    let window: usize = flags.get("window", 16);
    let (calls, elapsed) = match transport.as_str() {
        "memory" => memory(auth, payload, seconds, window.max(1)),
        "tcp" => tcp(auth, payload, seconds, threads.max(1)),
        other => {
            eprintln!("error: --transport is memory or tcp, not '{other}'");
            std::process::exit(2);
        }
    };
    println!(
        "rpc-load: transport {transport} auth {} payload {payload} calls {calls} calls/s {:.0}",
        if auth { "on" } else { "off" },
        bench::per_second(calls as f64, elapsed)
    );
}
