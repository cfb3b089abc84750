//! The data streams of a test, one thread each (a UDP receiver: one per
//! socket), on blocking sockets with short timeouts so that they notice
//! the end of the test. Both the server and the client use them.

use std::collections::HashMap;
use std::io::{self, ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sockets_api::{TcpStream, UdpSocket};

use super::{MAX_BLKSIZE, StreamResult, UdpHeader, UdpReceiveStats, pacing_delay};

/// What TCP senders send: one block of zeros for every stream of every
/// test (in .bss; a sender holds no buffer of its own).
static ZEROS: [u8; MAX_BLKSIZE] = [0; MAX_BLKSIZE];
/// Largest read buffer of a TCP receiver (a stream's reads need not be
/// its writes' size), so that 256 streams hold at most 32 MiB.
const RECV_BUF: usize = 128 * 1024;

/// How often a blocked worker looks at the stop flag.
const POLL: Duration = Duration::from_millis(100);

/// What the workers of one test share: the stop flag and a live byte
/// count per stream (for interval reports).
pub struct Shared {
    pub stop: AtomicBool,
    pub bytes: Vec<AtomicU64>,
    /// Datagrams too short to carry a header, dropped.
    pub malformed: AtomicU64,
    pub start: Instant,
}

impl Shared {
    pub fn new(streams: usize, start: Instant) -> Arc<Shared> {
        Arc::new(Shared {
            stop: AtomicBool::new(false),
            bytes: (0..streams).map(|_| AtomicU64::new(0)).collect(),
            malformed: AtomicU64::new(0),
            start,
        })
    }

    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    pub fn total_bytes(&self) -> u64 {
        self.bytes.iter().map(|b| b.load(Ordering::Relaxed)).sum()
    }
}

/// A stream's report when its worker ends: the index of the stream and
/// its result (id filled in by the caller).
pub type Report = Vec<(usize, StreamResult)>;

/// Settings every worker of a test shares.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    pub len: usize,
    /// Bit/s per sending stream (0: unlimited).
    pub rate: u64,
    pub counters_64bit: bool,
    /// Stop sending after this many bytes in total (0: no limit), or
    /// blocks.
    pub bytes: u64,
    pub blocks: u64,
}

fn secs_since(start: Instant) -> f64 {
    start.elapsed().as_secs_f64()
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

/// Sends blocks on a TCP stream until stopped (or the byte or block
/// count is reached, or the peer goes).
pub fn tcp_sender(
    stream: TcpStream,
    index: usize,
    shared: Arc<Shared>,
    settings: Settings,
) -> io::Result<JoinHandle<Report>> {
    stream.set_write_timeout(Some(POLL))?;
    thread::Builder::new()
        .name(format!("iperf3-tx{index}"))
        .spawn(move || {
            let block = &ZEROS[..settings.len.min(ZEROS.len())];
            let mut sent: u64 = 0;
            let mut blocks: u64 = 0;
            let mut offset = 0;
            while !shared.stopped() {
                if (settings.bytes > 0 && sent >= settings.bytes)
                    || (settings.blocks > 0 && blocks >= settings.blocks)
                {
                    thread::sleep(POLL);
                    continue;
                }
                if let Some(d) = pacing_delay(settings.rate, sent, shared.start.elapsed()) {
                    thread::sleep(d.min(POLL));
                    continue;
                }
                match (&stream).write(&block[offset..]) {
                    Ok(0) => break,
                    Ok(n) => {
                        sent += n as u64;
                        shared.bytes[index].fetch_add(n as u64, Ordering::Relaxed);
                        offset += n;
                        if offset == block.len() {
                            offset = 0;
                            blocks += 1;
                        }
                    }
                    Err(e) if is_timeout(&e) || e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => {
                        log::debug!("iperf3 stream {index}: send ended: {e}");
                        break;
                    }
                }
            }
            let retransmits = stream
                .stats()
                .map_or(0, |s| (s.retrans_fast + s.retrans_rto) as i64);
            vec![(
                index,
                StreamResult {
                    bytes: sent,
                    retransmits,
                    end_time: secs_since(shared.start),
                    ..StreamResult::default()
                },
            )]
        })
}

/// Reads a TCP stream until stopped or the peer closes.
pub fn tcp_receiver(
    stream: TcpStream,
    index: usize,
    shared: Arc<Shared>,
    settings: Settings,
) -> io::Result<JoinHandle<Report>> {
    stream.set_read_timeout(Some(POLL))?;
    thread::Builder::new()
        .name(format!("iperf3-rx{index}"))
        .spawn(move || {
            let mut buf = vec![0u8; settings.len.clamp(16 * 1024, RECV_BUF)];
            let mut received: u64 = 0;
            while !shared.stopped() {
                match (&stream).read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        received += n as u64;
                        shared.bytes[index].fetch_add(n as u64, Ordering::Relaxed);
                    }
                    Err(e) if is_timeout(&e) || e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => {
                        log::debug!("iperf3 stream {index}: receive ended: {e}");
                        break;
                    }
                }
            }
            vec![(
                index,
                StreamResult {
                    bytes: received,
                    retransmits: -1,
                    end_time: secs_since(shared.start),
                    ..StreamResult::default()
                },
            )]
        })
}

fn now_since_epoch() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// Sends paced datagrams to `peer` (or the connected peer when `None`)
/// until stopped.
pub fn udp_sender(
    socket: UdpSocket,
    peer: Option<SocketAddr>,
    index: usize,
    shared: Arc<Shared>,
    settings: Settings,
) -> io::Result<JoinHandle<Report>> {
    socket.set_write_timeout(Some(POLL))?;
    thread::Builder::new()
        .name(format!("iperf3-utx{index}"))
        .spawn(move || {
            let mut buf = vec![0u8; settings.len];
            let mut sent: u64 = 0;
            let mut packets: u64 = 0;
            let mut errors = 0u64;
            while !shared.stopped() {
                if (settings.bytes > 0 && sent >= settings.bytes)
                    || (settings.blocks > 0 && packets >= settings.blocks)
                {
                    thread::sleep(POLL);
                    continue;
                }
                if let Some(d) = pacing_delay(settings.rate, sent, shared.start.elapsed()) {
                    thread::sleep(d.min(POLL));
                    continue;
                }
                let now = now_since_epoch();
                let header = UdpHeader {
                    sec: now.as_secs() as u32,
                    usec: now.subsec_micros(),
                    count: packets + 1,
                };
                header.write(&mut buf, settings.counters_64bit);
                let r = match peer {
                    Some(p) => socket.send_to(&buf, p),
                    None => socket.send(&buf),
                };
                match r {
                    Ok(n) => {
                        packets += 1;
                        sent += n as u64;
                        shared.bytes[index].fetch_add(n as u64, Ordering::Relaxed);
                    }
                    Err(e) if is_timeout(&e) || e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => {
                        // No buffer space and the like: the datagram is
                        // not sent; the rate holds the next one back.
                        errors += 1;
                        if errors % 1000 == 1 {
                            log::debug!("iperf3 UDP stream {index}: send: {e}");
                        }
                        thread::sleep(Duration::from_millis(1));
                    }
                }
            }
            vec![(
                index,
                StreamResult {
                    bytes: sent,
                    retransmits: -1,
                    packets,
                    end_time: secs_since(shared.start),
                    ..StreamResult::default()
                },
            )]
        })
}

/// Receives the datagrams of one or more streams on `socket`: from the
/// connected peer (`peers` empty, one stream `single`), or by source
/// address. Datagrams from elsewhere, or too short, are counted as
/// malformed and dropped.
pub fn udp_receiver(
    socket: UdpSocket,
    peers: HashMap<SocketAddr, usize>,
    single: Option<usize>,
    shared: Arc<Shared>,
    settings: Settings,
) -> io::Result<JoinHandle<Report>> {
    socket.set_read_timeout(Some(POLL))?;
    thread::Builder::new()
        .name("iperf3-urx".into())
        .spawn(move || {
            let mut buf = vec![0u8; 65_536];
            let mut stats: HashMap<usize, (UdpReceiveStats, u64)> = HashMap::new();
            for &i in peers.values().chain(single.iter()) {
                stats.insert(i, (UdpReceiveStats::default(), 0));
            }
            while !shared.stopped() {
                let (n, index) = match socket.recv_from(&mut buf) {
                    Ok((n, from)) => match single.or_else(|| peers.get(&from).copied()) {
                        Some(i) => (n, i),
                        None => {
                            shared.malformed.fetch_add(1, Ordering::Relaxed);
                            continue;
                        }
                    },
                    Err(e) if is_timeout(&e) || e.kind() == ErrorKind::Interrupted => continue,
                    Err(e) => {
                        log::debug!("iperf3 UDP receive ended: {e}");
                        break;
                    }
                };
                let Some(header) = UdpHeader::read(&buf[..n], settings.counters_64bit) else {
                    // A late connect datagram or a runt.
                    shared.malformed.fetch_add(1, Ordering::Relaxed);
                    continue;
                };
                let transit = now_since_epoch().as_secs_f64() - header.sent_secs();
                if let Some((s, bytes)) = stats.get_mut(&index) {
                    s.on_datagram(header.count, transit);
                    *bytes += n as u64;
                }
                shared.bytes[index].fetch_add(n as u64, Ordering::Relaxed);
            }
            let end = secs_since(shared.start);
            stats
                .into_iter()
                .map(|(i, (s, bytes))| {
                    (
                        i,
                        StreamResult {
                            bytes,
                            retransmits: -1,
                            jitter: s.jitter,
                            errors: s.lost,
                            packets: s.packet_count,
                            end_time: end,
                            ..StreamResult::default()
                        },
                    )
                })
                .collect()
        })
}

/// Stops the workers and gathers their reports, by stream index.
pub fn finish(shared: &Shared, workers: Vec<JoinHandle<Report>>) -> HashMap<usize, StreamResult> {
    shared.stop.store(true, Ordering::Relaxed);
    let mut out = HashMap::new();
    for w in workers {
        if let Ok(report) = w.join() {
            out.extend(report);
        }
    }
    out
}
