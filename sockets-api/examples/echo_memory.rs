//! An echo server and a client talking to it over two in-memory ustack
//! stacks in one process: the library used like `std::net`.
//!
//! Run with `cargo run -p sockets-api --example echo_memory`.

use std::io::{self, BufRead, BufReader, Write};
use std::thread;

use sockets_api::{StackBuilder, TcpListener, TcpStream};

fn main() -> io::Result<()> {
    let (server_stack, client_stack) = StackBuilder::memory_pair(
        StackBuilder::memory().addr("192.168.7.1/24".parse().expect("address")),
        StackBuilder::memory().addr("192.168.7.2/24".parse().expect("address")),
    )?;

    // The server: one thread per connection, echoing lines back.
    let listener = TcpListener::bind(&server_stack, "0.0.0.0:7")?;
    println!("server listening on {}", listener.local_addr()?);
    thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { break };
            thread::spawn(move || {
                let peer = conn.peer_addr().ok();
                let mut reader = BufReader::new(&conn);
                let mut line = String::new();
                while reader.read_line(&mut line).unwrap_or(0) > 0 {
                    if (&conn).write_all(line.as_bytes()).is_err() {
                        break;
                    }
                    line.clear();
                }
                println!("server: {peer:?} closed");
            });
        }
    });

    // The client.
    let stream = TcpStream::connect(&client_stack, "192.168.7.1:7")?;
    stream.set_nodelay(true)?;
    println!(
        "client connected from {} to {}",
        stream.local_addr()?,
        stream.peer_addr()?
    );
    let mut reader = BufReader::new(stream.try_clone()?);
    for word in ["hello", "from", "ustack"] {
        writeln!(&stream, "{word}")?;
        let mut echoed = String::new();
        reader.read_line(&mut echoed)?;
        println!("client: sent {word:?}, got back {:?}", echoed.trim_end());
        assert_eq!(echoed.trim_end(), word);
    }
    let stats = stream.stats()?;
    println!(
        "client: srtt {:?}, cwnd {} bytes, {} bytes sent",
        stats.srtt, stats.cwnd, stats.bytes_sent
    );
    stream.shutdown(std::net::Shutdown::Write)?;
    drop(stream);
    drop(reader);
    // Dropping the stacks closes their sockets and stops their threads.
    Ok(())
}
