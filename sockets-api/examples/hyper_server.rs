//! An HTTP/1.1 server with hyper 1.x on ustack (feature `tokio`), over a
//! TAP device: `GET /` answers a short text, `GET /bytes/N` N bytes of the
//! pattern `abc...z` repeated; connections are kept alive.
//!
//! ```text
//! sudo target/release/examples/hyper_server --tap tap0 --addr 10.7.0.2/24 --host-addr 10.7.0.1/24 --port 80
//! curl http://10.7.0.2/  ;  ab -k -c 50 -n 20000 http://10.7.0.2/
//! ```
//!
//! `--kernel ADDR:PORT` serves the same service on a Linux socket instead
//! (a tokio listener; no TAP), for comparisons. `--threads N` sets the
//! tokio worker threads (default 2); `--connections N` exits after
//! serving N connections.

mod async_common;

use std::io;
use std::net::SocketAddr;

use async_common::{Args, exit_on_error, service};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

fn main() -> std::process::ExitCode {
    exit_on_error("hyper_server", run())
}

fn run() -> io::Result<()> {
    let args = Args::parse(&["kernel", "threads", "connections"])?;
    let threads: usize = args.get("threads")?.unwrap_or(2);
    let limit: Option<usize> = args.get("connections")?;
    let kernel: Option<SocketAddr> = args.get("kernel")?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_io()
        .build()?;
    match kernel {
        Some(addr) => rt.block_on(async {
            let listener = tokio::net::TcpListener::bind(addr).await?;
            println!("hyper_server: listening on {addr} (Linux sockets)");
            serve(limit, || async {
                let (s, peer) = listener.accept().await?;
                s.set_nodelay(true)?;
                Ok((s, peer))
            })
            .await
        }),
        None => {
            let port = args.port()?;
            let stack = args.start_stack()?;
            let r = rt.block_on(async {
                let listener =
                    sockets_api::tokio::TcpListener::bind(&stack, ("0.0.0.0", port)).await?;
                println!(
                    "hyper_server: listening on {}:{port} (ustack, TAP {}, MAC {})",
                    stack.addr().addr(),
                    args.tap.as_deref().unwrap_or_default(),
                    stack.mac()
                );
                serve(limit, || async {
                    let (s, peer) = listener.accept().await?;
                    s.set_nodelay(true)?;
                    Ok((s, peer))
                })
                .await
            });
            if let Some(e) = stack.last_error() {
                eprintln!("hyper_server: the stack stopped: {e}");
            }
            r
        }
    }
}

/// Accepts connections with `accept` and serves each on its own task,
/// HTTP/1.1 with keep-alive; after `limit` connections, waits for them to
/// end and returns.
async fn serve<S, F, Fut>(limit: Option<usize>, mut accept: F) -> io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = io::Result<(S, SocketAddr)>>,
{
    let mut tasks = tokio::task::JoinSet::new();
    let mut served = 0usize;
    while limit.is_none_or(|l| served < l) {
        let (stream, peer) = accept().await?;
        served += 1;
        tasks.spawn(async move {
            let conn = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service_fn(service::handle));
            if let Err(e) = conn.await {
                eprintln!("hyper_server: {peer}: {e}");
            }
        });
        // Reap finished connections as we go.
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    println!("hyper_server: served {served} connections");
    Ok(())
}
