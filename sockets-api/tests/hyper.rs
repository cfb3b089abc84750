//! hyper 1.x over ustack: the `hyper_server` example's service on one
//! in-memory stack, hyper's HTTP/1.1 client on the other; 1,000 requests
//! over 50 concurrent keep-alive connections, every answer checked.

#[path = "../examples/async_common/service.rs"]
mod service;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use sockets_api::StackBuilder;
use sockets_api::tokio::{TcpListener, TcpStream};

const CONNECTIONS: usize = 50;
const PER_CONNECTION: usize = 20;

#[test]
fn thousand_requests_over_fifty_keep_alive_connections() {
    let (server, client) = StackBuilder::memory_pair(
        StackBuilder::memory().addr("10.0.0.1/24".parse().unwrap()),
        StackBuilder::memory().addr("10.0.0.2/24".parse().unwrap()),
    )
    .unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    rt.block_on(async {
        let listener = TcpListener::bind(&server, "0.0.0.0:80").await.unwrap();
        let count = accepted.clone();
        let srv = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            for _ in 0..CONNECTIONS {
                let (stream, _) = listener.accept().await.unwrap();
                count.fetch_add(1, Ordering::SeqCst);
                conns.spawn(async move {
                    http1::Builder::new()
                        .keep_alive(true)
                        .serve_connection(TokioIo::new(stream), service_fn(service::handle))
                        .await
                });
            }
            while let Some(r) = conns.join_next().await {
                r.unwrap().unwrap();
            }
        });

        let mut clients = tokio::task::JoinSet::new();
        for c in 0..CONNECTIONS {
            let client = client.clone();
            clients.spawn(async move {
                let stream = TcpStream::connect(&client, "10.0.0.1:80").await.unwrap();
                let (mut sender, conn) =
                    hyper::client::conn::http1::handshake(TokioIo::new(stream))
                        .await
                        .unwrap();
                let driver = tokio::spawn(conn);
                for i in 0..PER_CONNECTION {
                    // Alternate the short text and bodies of many sizes
                    // (up to several segments and past the shared buffer).
                    let n = (c * 7919 + i * 104_729) % 200_000;
                    let path = if i % 2 == 0 {
                        "/".to_string()
                    } else {
                        format!("/bytes/{n}")
                    };
                    let req = Request::get(path.as_str())
                        .header("host", "10.0.0.1")
                        .body(Empty::<Bytes>::new())
                        .unwrap();
                    let resp = sender.send_request(req).await.unwrap();
                    assert_eq!(resp.status(), 200, "{path}");
                    let body = resp.into_body().collect().await.unwrap().to_bytes();
                    if i % 2 == 0 {
                        assert_eq!(body, service::HELLO.as_bytes());
                    } else {
                        assert_eq!(body.len(), n, "{path}");
                        assert!(
                            body.iter()
                                .enumerate()
                                .all(|(k, &b)| b == service::pattern_byte(k)),
                            "{path}: wrong bytes"
                        );
                    }
                }
                drop(sender);
                driver.await.unwrap().unwrap();
                PER_CONNECTION
            });
        }
        let mut answered = 0;
        while let Some(r) = clients.join_next().await {
            answered += r.unwrap();
        }
        assert_eq!(answered, 1000);
        srv.await.unwrap();
    });
    // Keep-alive: one connection per client, all requests over them.
    assert_eq!(accepted.load(Ordering::SeqCst), CONNECTIONS);
}

#[test]
fn unknown_paths_and_bad_lengths() {
    let (server, client) = StackBuilder::memory_pair(
        StackBuilder::memory().addr("10.0.1.1/24".parse().unwrap()),
        StackBuilder::memory().addr("10.0.1.2/24".parse().unwrap()),
    )
    .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let listener = TcpListener::bind(&server, "0.0.0.0:80").await.unwrap();
        let srv = tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service_fn(service::handle))
                .await
                .unwrap();
        });
        let stream = TcpStream::connect(&client, "10.0.1.1:80").await.unwrap();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        let driver = tokio::spawn(conn);
        for (path, status) in [
            ("/nope", 404),
            ("/bytes/x", 400),
            ("/bytes/999999999999", 400),
            ("/bytes/0", 200),
        ] {
            let req = Request::get(path)
                .header("host", "10.0.1.1")
                .body(Empty::<Bytes>::new())
                .unwrap();
            // hyper's client connection takes the next request only once
            // the previous response was read to its end.
            sender.ready().await.unwrap();
            let resp = sender.send_request(req).await.unwrap();
            assert_eq!(resp.status(), status, "{path}");
            resp.into_body().collect().await.unwrap();
        }
        drop(sender);
        driver.await.unwrap().unwrap();
        srv.await.unwrap();
    });
}
