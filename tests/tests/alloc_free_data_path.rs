//! The TCP data path does not allocate: after warm-up, moving data between
//! two interfaces (receive, acknowledge, transmit, application reads and
//! writes) performs no heap allocation at all. A counting global allocator
//! checks it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ethernet::MacAddr;
use ip::Ipv4Cidr;
use stack::device::FrameBatch;
use stack::{Interface, InterfaceConfig, SocketError};

struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: delegates to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn iface(n: u8, now: Instant) -> Interface {
    let mut c = InterfaceConfig::new(
        MacAddr([2, 0, 0, 0, 0, n]),
        Ipv4Cidr::new(Ipv4Addr::new(10, 0, 0, n), 24).unwrap(),
    );
    c.announce = false;
    Interface::new(c, now)
}

#[test]
fn steady_state_tcp_transfer_allocates_nothing() {
    transfer_allocates_nothing(false);
}

/// The same with segmentation offload at the sender: super segments built
/// and cut into wire segments (as the simulator and non-offloading devices
/// do), still without allocating.
#[test]
fn steady_state_transfer_with_super_segments_allocates_nothing() {
    transfer_allocates_nothing(true);
}

fn transfer_allocates_nothing(offload: bool) {
    let mut now = Instant::now();
    let mut a = iface(1, now);
    a.set_segmentation_offload(offload);
    let mut scratch = Vec::with_capacity(2048);
    let mut supers = 0u64;
    let mut b = iface(2, now);
    let l = b
        .tcp_listen(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 9), 4)
        .unwrap();
    let c = a
        .tcp_connect(now, SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 9), None)
        .unwrap();
    let mut to_b = FrameBatch::new();
    let mut to_a = FrameBatch::new();
    let mut spare = FrameBatch::new();
    let data = vec![0x42u8; 64 * 1024];
    let mut buf = vec![0u8; 64 * 1024];
    let mut server = None;
    let mut moved = 0u64;
    let mut segments = 0u64;
    let mut counting_from = None;
    for round in 0..20_000u32 {
        now += Duration::from_micros(20);
        if round == 5_000 {
            // Warmed up: buffers grown, caches filled, queues sized.
            counting_from = Some(segments);
            ALLOCATIONS.store(0, Ordering::Relaxed);
            COUNTING.store(true, Ordering::Relaxed);
        }
        let _ = a.tcp_send(c, &data);
        a.poll(now, &mut to_b);
        for (f, mss) in to_b.iter_segmented() {
            if mss == 0 {
                segments += 1;
                b.receive_frame(now, f, &mut spare);
            } else {
                supers += 1;
                segments += stack::device::gso::split_tcp(f, 14, mss, &mut scratch, |p| {
                    b.receive_frame(now, p, &mut spare)
                }) as u64;
            }
        }
        to_b.clear();
        if server.is_none() {
            server = b.tcp_accept(l).ok();
        }
        if let Some(s) = server {
            loop {
                match b.tcp_recv(s, &mut buf) {
                    Ok(n) if n > 0 => moved += n as u64,
                    Ok(_) | Err(SocketError::WouldBlock) => break,
                    Err(e) => panic!("{e}"),
                }
            }
        }
        b.poll(now, &mut to_a);
        for f in spare.iter().chain(to_a.iter()) {
            a.receive_frame(now, f, &mut to_b);
        }
        spare.clear();
        to_a.clear();
    }
    COUNTING.store(false, Ordering::Relaxed);
    let counted = segments - counting_from.expect("warm-up finished");
    let allocations = ALLOCATIONS.load(Ordering::Relaxed);
    eprintln!("{counted} segments, {moved} bytes moved, {allocations} allocations while counting");
    assert!(counted > 50_000, "enough traffic: {counted} segments");
    assert_eq!(supers > 0, offload, "{supers} super segments");
    assert_eq!(allocations, 0, "heap allocations on the data path");
}
