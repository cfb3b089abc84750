//! A TCP echo server with tokio on ustack (feature `tokio`), over a TAP
//! device: one task per connection, `tokio::io::copy` between the halves
//! of the connection.
//!
//! ```text
//! sudo target/release/examples/tokio_echo --tap tap0 --addr 10.7.0.2/24 --host-addr 10.7.0.1/24 --port 7
//! echo hello | nc -N 10.7.0.2 7
//! ```
//!
//! `--connections N` exits after serving N connections.

mod async_common;

use std::io;

use async_common::{Args, exit_on_error};
use sockets_api::tokio::TcpListener;
use tokio::io::AsyncWriteExt;

fn main() -> std::process::ExitCode {
    exit_on_error("tokio_echo", run())
}

fn run() -> io::Result<()> {
    let args = Args::parse(&["connections"])?;
    let limit: Option<usize> = args.get("connections")?;
    let port = args.port()?;
    let stack = args.start_stack()?;
    let rt = tokio::runtime::Builder::new_current_thread().build()?;
    rt.block_on(async {
        let listener = TcpListener::bind(&stack, ("0.0.0.0", port)).await?;
        println!(
            "tokio_echo: listening on {}:{port} (MAC {})",
            stack.addr().addr(),
            stack.mac()
        );
        let mut tasks = tokio::task::JoinSet::new();
        let mut served = 0;
        while limit.is_none_or(|l| served < l) {
            let (mut conn, peer) = listener.accept().await?;
            served += 1;
            tasks.spawn(async move {
                let (mut rd, mut wr) = conn.split();
                match tokio::io::copy(&mut rd, &mut wr).await {
                    Ok(n) => {
                        let _ = wr.shutdown().await;
                        println!("tokio_echo: {peer} echoed {n} bytes");
                    }
                    Err(e) => eprintln!("tokio_echo: {peer}: {e}"),
                }
            });
            while tasks.try_join_next().is_some() {}
        }
        while tasks.join_next().await.is_some() {}
        io::Result::Ok(())
    })
}
