//! Fetches a URL with hyper's HTTP/1.1 client through ustack (feature
//! `tokio`), over a TAP device, and writes the body to stdout.
//!
//! ```text
//! sudo target/release/examples/hyper_client --tap tap0 --addr 10.7.0.2/24 --host-addr 10.7.0.1/24 http://10.7.0.1:8000/
//! ```
//!
//! `--repeat N` fetches the URL N times over the one keep-alive connection (the body is
//! written each time). Fails (exit 1) unless every answer is 2xx.

mod async_common;

use std::io::{self, Write};
use std::net::SocketAddr;

use async_common::{Args, bad, exit_on_error};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper_util::rt::TokioIo;
use sockets_api::tokio::TcpStream;

fn main() -> std::process::ExitCode {
    exit_on_error("hyper_client", run())
}

fn run() -> io::Result<()> {
    let args = Args::parse(&["repeat"])?;
    let repeat: usize = args.get("repeat")?.unwrap_or(1);
    let [url] = args.free.as_slice() else {
        return Err(bad(
            "usage: hyper_client --tap NAME --addr A.B.C.D/LEN [--host-addr A.B.C.D/LEN] URL"
                .into(),
        ));
    };
    let uri: hyper::Uri = url
        .parse()
        .map_err(|e| bad(format!("bad URL '{url}': {e}")))?;
    if uri.scheme_str() != Some("http") {
        return Err(bad("only http:// URLs".into()));
    }
    let host = uri
        .host()
        .ok_or_else(|| bad("the URL has no host".into()))?;
    let port = uri.port_u16().unwrap_or(80);
    let server: SocketAddr = format!("{host}:{port}")
        .parse()
        .map_err(|_| bad(format!("'{host}' is not an IPv4 address")))?;
    let authority = uri.authority().map(|a| a.to_string()).unwrap_or_default();
    let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_string();

    let stack = args.start_stack()?;
    let rt = tokio::runtime::Builder::new_current_thread().build()?;
    rt.block_on(async {
        let stream = TcpStream::connect(&stack, server).await?;
        stream.set_nodelay(true)?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(io::Error::other)?;
        let driver = tokio::spawn(conn);
        let mut out = io::stdout().lock();
        for _ in 0..repeat {
            let req = Request::get(path.as_str())
                .header("host", authority.as_str())
                .body(Empty::<Bytes>::new())
                .map_err(io::Error::other)?;
            let resp = sender.send_request(req).await.map_err(io::Error::other)?;
            let status = resp.status();
            let body = resp
                .into_body()
                .collect()
                .await
                .map_err(io::Error::other)?
                .to_bytes();
            eprintln!("hyper_client: {status}, {} bytes", body.len());
            out.write_all(&body)?;
            if !status.is_success() {
                return Err(io::Error::other(format!("{url}: {status}")));
            }
        }
        out.flush()?;
        drop(sender);
        let _ = driver.await;
        Ok(())
    })
}
