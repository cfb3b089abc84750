//! The same RPC code over ustack's own sockets: two ustack stacks joined by
//! an in-memory link, `sockets_api::TcpStream` as the transport, with
//! injected loss and duplication on the link.

use rpc::blocking::{Client, SharedServer, serve};
use rpc::{CallContext, ClientConfig, RpcError, ServerConfig};
use sockets_api::{FaultConfig, Stack, StackBuilder, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

rpc::service! {
    /// A counter: double execution would show in the values.
    pub trait Counter {
        server CounterServer;
        client CounterClient;
        calls CounterCall;

        fn incr(by: u64) -> u64;
        fn echo(data: Vec<u8>) -> Vec<u8>;
    }
}

#[derive(Default)]
struct Count(u64);

impl Counter for Count {
    fn incr(&mut self, _ctx: &CallContext, by: u64) -> u64 {
        self.0 += by;
        self.0
    }
    fn echo(&mut self, _ctx: &CallContext, data: Vec<u8>) -> Vec<u8> {
        data
    }
}

fn stacks(faults: FaultConfig) -> (Stack, Stack) {
    StackBuilder::memory_pair(
        StackBuilder::memory()
            .addr("10.1.0.1/24".parse().unwrap())
            .seed(7)
            .faults(faults),
        StackBuilder::memory()
            .addr("10.1.0.2/24".parse().unwrap())
            .seed(8)
            .faults(faults),
    )
    .unwrap()
}

fn config() -> ClientConfig {
    ClientConfig {
        call_timeout: Duration::from_secs(20),
        attempt_timeout: Duration::from_secs(3),
        backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(200),
        ..ClientConfig::default()
    }
}

#[test]
fn calls_over_ustack_sockets_under_loss_and_duplication() {
    let faults = FaultConfig {
        loss: 0.02,
        dup: 0.05,
        reorder: 0.02,
        ..FaultConfig::default()
    };
    let (server_stack, client_stack) = stacks(faults);
    let listener = TcpListener::bind(&server_stack, "0.0.0.0:4000").unwrap();
    let server = SharedServer::new(CounterServer(Count::default()), ServerConfig::default());
    let s = Arc::clone(&server);
    thread::spawn(move || serve(move || listener.accept().map(|(c, _)| c), s));

    let cs = client_stack.clone();
    let client = Client::new(move || TcpStream::connect(&cs, "10.1.0.1:4000"), config()).unwrap();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let stub = CounterClient::new(client.clone());
            thread::spawn(move || {
                for i in 0..50u32 {
                    stub.incr(1).expect("incr");
                    // Payloads up to 100 KB cross many segments.
                    let data: Vec<u8> = (0..(i as usize * 2_000 + t))
                        .map(|k| (k * 31 + t) as u8)
                        .collect();
                    assert_eq!(stub.echo(data.clone()).expect("echo"), data);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(
        server.service().0.0,
        200,
        "each increment executed exactly once"
    );
}

#[test]
fn unreachable_server_is_reported() {
    let (_server_stack, client_stack) = stacks(FaultConfig::default());
    let cs = client_stack.clone();
    let cfg = ClientConfig {
        call_timeout: Duration::from_secs(2),
        attempt_timeout: Duration::from_millis(500),
        ..config()
    };
    let client = Client::new(move || TcpStream::connect(&cs, "10.1.0.1:4001"), cfg).unwrap();
    let stub = CounterClient::new(client);
    match stub.incr(1) {
        Err(RpcError::Unreachable(msg)) => assert!(msg.contains("refused"), "{msg}"),
        other => panic!("expected Unreachable, got {other:?}"),
    }
}
