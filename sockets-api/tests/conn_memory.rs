//! Per-connection memory (issue 21): an idle established connection costs
//! at most 4 KiB beyond its buffered bytes. A counting global allocator
//! measures the heap the stacks, the socket library and the handles keep
//! for N idle connections (both ends live in this process, so each
//! connection is counted twice: its client end and its server end).
//!
//! Alone in its test binary: the allocator counts the whole process.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{Read, Write};
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sockets_api::{StackBuilder, TcpListener, TcpStream};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);
static BLOCKS: AtomicIsize = AtomicIsize::new(0);
static ALLOCS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        BLOCKS.fetch_add(1, Ordering::Relaxed);
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract is passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        BLOCKS.fetch_sub(1, Ordering::Relaxed);
        // SAFETY: the caller's contract is passed on.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract is passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Connections opened (each with two ends in this process).
const N: usize = 2000;

/// The target: stack memory per idle connection beyond its
/// buffered bytes.
const TARGET: usize = 4096;

#[test]
fn an_idle_connection_costs_at_most_4_kib() {
    let (server, client) = StackBuilder::memory_pair(
        StackBuilder::memory()
            .addr("10.0.0.1/24".parse().unwrap())
            .seed(41),
        StackBuilder::memory()
            .addr("10.0.0.2/24".parse().unwrap())
            .seed(42),
    )
    .unwrap();
    let listener = TcpListener::bind(&server, "0.0.0.0:7").unwrap();
    let mut streams = Vec::with_capacity(2 * N);
    let before = LIVE.load(Ordering::Relaxed);
    let blocks_before = BLOCKS.load(Ordering::Relaxed);
    let mut one = [0u8; 1];
    for _ in 0..N {
        // As the bench's idle_conns.py: connect, echo one byte, hold.
        let mut c = TcpStream::connect(&client, "10.0.0.1:7").unwrap();
        let (mut s, _) = listener.accept().unwrap();
        c.write_all(b"x").unwrap();
        s.read_exact(&mut one).unwrap();
        s.write_all(&one).unwrap();
        c.read_exact(&mut one).unwrap();
        streams.push(c);
        streams.push(s);
    }
    // Idle: every ACK (delayed ones included) sent and taken, nothing left
    // in flight; wait until the counts settle.
    let give_up = Instant::now() + Duration::from_secs(60);
    let mut last = LIVE.load(Ordering::Relaxed);
    loop {
        std::thread::sleep(Duration::from_millis(200));
        let now = LIVE.load(Ordering::Relaxed);
        if now == last || Instant::now() > give_up {
            break;
        }
        last = now;
    }
    let live = LIVE.load(Ordering::Relaxed) - before;
    let blocks = BLOCKS.load(Ordering::Relaxed) - blocks_before;
    let buffered: usize = server
        .sockets()
        .iter()
        .chain(client.sockets().iter())
        .map(|s| s.recv_queue + s.send_queue)
        .sum();
    let per_end = (live.max(0) as usize).saturating_sub(buffered) / (2 * N);
    println!(
        "{N} idle connections: {live} bytes in {blocks} heap blocks \
         ({per_end} bytes and {:.1} blocks per connection end; {buffered} bytes buffered); \
         size_of tcp::Connection {} bytes",
        blocks as f64 / (2 * N) as f64,
        std::mem::size_of::<tcp::Connection>(),
    );
    assert!(
        per_end <= TARGET,
        "{per_end} bytes per idle connection end, target {TARGET}"
    );
    drop(streams);
}

#[test]
fn time_wait_records_are_small() {
    // A compact TIME-WAIT record replaces an orphaned connection's control
    // block (see "Hostile peers"): a fraction of it, and no more than
    // Linux's `tcp_timewait_sock` (about 200 bytes on 64-bit builds).
    let record = std::mem::size_of::<tcp::TimeWait>();
    println!(
        "size_of tcp::TimeWait {record} bytes, tcp::Connection {} bytes",
        std::mem::size_of::<tcp::Connection>()
    );
    assert!(record <= 192, "{record} bytes");
    assert!(record * 8 < std::mem::size_of::<tcp::Connection>());
}
