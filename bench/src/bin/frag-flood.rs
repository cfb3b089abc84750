//! Reassembly under hostile fragment floods, in process.
//!
//! Fragments from spoofed random sources with random identifications,
//! offsets and lengths, pushed straight into `ip::Reassembler::push` and fed
//! as Ethernet frames through a whole `stack::Interface` receive path; the
//! FragmentSmack pattern (thousands of separated small fragments into one
//! datagram); and, for comparison, legitimate 64 KiB datagrams alone and
//! mixed into a flood. Prints fragments per second and the peak of
//! `memory_used()` against the cap.
//!
//! usage: frag-flood [--fragments N] [--frames N] [--datagrams N] [--seed S]

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use ethernet::{EtherType, EthernetRepr, MacAddr};
use ip::{IpProtocol, Ipv4Cidr, Ipv4Repr, Reassembler, ReassemblyConfig, ReassemblyError};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use stack::device::FrameBatch;
use stack::{Interface, InterfaceConfig};

/// A number below `n` (`n` > 0).
fn below(rng: &mut SmallRng, n: usize) -> usize {
    (rng.next_u64() % n as u64) as usize
}

const DST: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
/// The largest payload of one datagram (65,535 less a 20-byte header).
const MAX_PAYLOAD: usize = 65_515;

/// One flood fragment: a spoofed source, a random identification, offset
/// and length (a multiple of 8, MF set: it never completes anything).
#[derive(Clone, Copy)]
struct Spoofed {
    src: Ipv4Addr,
    ident: u16,
    offset: usize,
    len: usize,
}

/// `count` random flood fragments of `min..=max` bytes (multiples of 8).
fn flood(rng: &mut SmallRng, count: usize, min: usize, max: usize) -> Vec<Spoofed> {
    (0..count)
        .map(|_| {
            let len = 8 * (min / 8 + below(rng, (max - min) / 8 + 1));
            Spoofed {
                // Anywhere in 172.16.0.0/12: unicast, not on our prefix.
                src: Ipv4Addr::from(0xac10_0000 | below(rng, 1 << 20) as u32),
                ident: rng.next_u64() as u16,
                offset: 8 * below(rng, (MAX_PAYLOAD - len) / 8),
                len,
            }
        })
        .collect()
}

fn repr_of(f: &Spoofed) -> Ipv4Repr {
    let mut repr = Ipv4Repr::new(f.src, DST, IpProtocol::UDP, 64, f.len);
    repr.ident = f.ident;
    repr.frag_offset = f.offset as u16;
    repr.more_fragments = true;
    repr
}

/// The fragments of one legitimate datagram at MTU 1500, as (repr, range of
/// the payload).
fn legitimate(src: Ipv4Addr, len: usize) -> Vec<(Ipv4Repr, std::ops::Range<usize>)> {
    ip::reassembly::fragments(len, 1500, 20)
        .map(|(off, n, more)| {
            let mut repr = Ipv4Repr::new(src, DST, IpProtocol::UDP, 64, n);
            repr.frag_offset = off as u16;
            repr.more_fragments = more;
            (repr, off..off + n)
        })
        .collect()
}

fn rate(count: usize, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64()
}

fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn main() {
    let flags = bench::Flags::from_env(
        "frag-flood [--fragments N] [--frames N] [--datagrams N] [--seed S]",
    );
    let fragments: usize = flags.get("fragments", 4_000_000);
    let frames: usize = flags.get("frames", 2_000_000);
    let datagrams: usize = flags.get("datagrams", 20_000);
    let mut rng = SmallRng::seed_from_u64(flags.get("seed", 1u64));
    let cap = ReassemblyConfig::default().max_held_bytes;
    let header = [0x45u8; 20];
    // Payload bytes: fragments take the slice at their offset, so any two
    // that overlap agree.
    let noise: Vec<u8> = (0..MAX_PAYLOAD).map(|_| rng.next_u64() as u8).collect();
    let now = Instant::now();

    // Legitimate datagrams alone: the reference.
    let legit = legitimate(Ipv4Addr::new(10, 0, 0, 1), 65_507);
    for (order, reversed) in [("in order", false), ("last fragment first", true)] {
        let mut r = Reassembler::new(ReassemblyConfig::default());
        let mut frags = legit.clone();
        if reversed {
            frags.reverse();
        }
        let start = Instant::now();
        let mut delivered = 0;
        for i in 0..datagrams {
            for (repr, range) in &frags {
                let mut repr = *repr;
                repr.ident = i as u16;
                if let Ok(Some(d)) = r.push(now, &repr, &header, &noise[range.clone()]) {
                    delivered += d.payload.len();
                }
            }
        }
        let elapsed = start.elapsed();
        assert_eq!(delivered, datagrams * 65_507);
        println!(
            "push, 65,507 B datagrams, {} fragments {order}: {:.0} datagrams/s, {:.1} Gbit/s, \
             {:.0} fragments/s; peak memory_used {:.2} MiB",
            legit.len(),
            rate(datagrams, elapsed),
            delivered as f64 * 8.0 / elapsed.as_secs_f64() / 1e9,
            rate(datagrams * legit.len(), elapsed),
            mib(r.stats().peak_memory_used)
        );
    }

    // The flood: spoofed sources, random idents, offsets and lengths.
    let table = flood(&mut rng, 1 << 20, 8, 1480);
    let tiny = flood(&mut rng, 1 << 20, 8, 8);
    for (what, table) in [("8..1480 B", &table), ("8 B", &tiny)] {
        let mut r = Reassembler::new(ReassemblyConfig::default());
        let start = Instant::now();
        let mut bytes = 0;
        for f in table.iter().cycle().take(fragments) {
            let _ = r.push(
                now,
                &repr_of(f),
                &header,
                &noise[f.offset..f.offset + f.len],
            );
            bytes += f.len;
        }
        let elapsed = start.elapsed();
        let stats = r.stats();
        assert!(stats.peak_memory_used <= cap);
        println!(
            "push, random-offset flood of {what} fragments from spoofed sources: {:.0} fragments/s \
             ({:.1} Gbit/s of fragment data); peak memory_used {:.2} MiB of a {:.0} MiB cap, \
             {} partials held, {} evicted",
            rate(fragments, elapsed),
            bytes as f64 * 8.0 / elapsed.as_secs_f64() / 1e9,
            mib(stats.peak_memory_used),
            mib(cap),
            r.partial_count(),
            stats.evicted
        );
    }

    // Legitimate datagrams in the flood: one of their fragments in ten.
    let mut r = Reassembler::new(ReassemblyConfig::default());
    let mut flood_frags = table.iter().cycle();
    let (mut sent, mut delivered, mut pushed) = (0, 0, 0);
    let start = Instant::now();
    while pushed < fragments {
        for (repr, range) in &legit {
            let mut repr = *repr;
            repr.ident = sent as u16;
            if let Ok(Some(_)) = r.push(now, &repr, &header, &noise[range.clone()]) {
                delivered += 1;
            }
            for f in flood_frags.by_ref().take(9) {
                let _ = r.push(
                    now,
                    &repr_of(f),
                    &header,
                    &noise[f.offset..f.offset + f.len],
                );
            }
            pushed += 10;
        }
        sent += 1;
    }
    let elapsed = start.elapsed();
    println!(
        "push, 65,507 B datagrams mixed into the flood (1 fragment in 10): {delivered} of {sent} \
         reassembled, {:.0} fragments/s; peak memory_used {:.2} MiB",
        rate(pushed, elapsed),
        mib(r.stats().peak_memory_used)
    );

    // FragmentSmack (CVE-2018-5391): one datagram diced into 4,094 separated
    // 8-byte fragments (every other 8 bytes of the largest datagram), each a
    // piece of its own. With the piece cap raised out of the way, this
    // measures the cost of many pieces; with the default cap, the datagram
    // is discarded at piece 257 and the rest start over.
    const SMACK: usize = 4094;
    for max_pieces in [8192, ReassemblyConfig::default().max_pieces_per_datagram] {
        let config = ReassemblyConfig {
            max_pieces_per_datagram: max_pieces,
            ..ReassemblyConfig::default()
        };
        let mut r = Reassembler::new(config);
        let rounds = (fragments / SMACK).max(1);
        let mut too_many = 0;
        let start = Instant::now();
        for round in 0..rounds {
            let src = Ipv4Addr::from(0xac10_0000 | round as u32);
            for k in 0..SMACK {
                let f = Spoofed {
                    src,
                    ident: 7,
                    offset: 16 * k,
                    len: 8,
                };
                if r.push(now, &repr_of(&f), &header, &noise[f.offset..f.offset + 8])
                    == Err(ReassemblyError::TooManyPieces)
                {
                    too_many += 1;
                }
            }
        }
        let elapsed = start.elapsed();
        println!(
            "push, FragmentSmack pattern ({SMACK} separated 8 B fragments per datagram, piece \
             cap {max_pieces}): {:.0} fragments/s; peak memory_used {:.2} MiB; {too_many} \
             fragments refused for too many pieces",
            rate(rounds * SMACK, elapsed),
            mib(r.stats().peak_memory_used)
        );
    }

    // The flood through a whole interface: Ethernet, IPv4 header checks,
    // reassembly.
    let mut config = InterfaceConfig::new(
        MacAddr([2, 0, 0, 0, 0, 2]),
        Ipv4Cidr::new(DST, 24).expect("valid prefix"),
    );
    config.announce = false;
    let mut receiver = Interface::new(config, now);
    let mut sink = FrameBatch::new();
    let mut frame = vec![0u8; 14 + 20 + 1480];
    let eth = EthernetRepr {
        dst: MacAddr([2, 0, 0, 0, 0, 2]),
        src: MacAddr([2, 0, 0, 0, 0, 9]),
        ethertype: EtherType::IPV4,
    };
    eth.emit(&mut frame);
    let start = Instant::now();
    let mut peak = 0;
    for f in table.iter().cycle().take(frames) {
        let len = 14 + 20 + f.len;
        repr_of(f).emit(&mut frame[14..34]);
        frame[34..len].copy_from_slice(&noise[f.offset..f.offset + f.len]);
        receiver.receive_frame(now, &frame[..len], &mut sink);
        peak = peak.max(receiver.reassembler().memory_used());
        sink.clear();
    }
    let elapsed = start.elapsed();
    assert!(peak <= cap);
    let counters = receiver.counters();
    assert_eq!(counters.fragments_received, frames as u64);
    println!(
        "interface, random-offset flood of 8..1480 B fragments from spoofed sources: {:.0} \
         frames/s; peak memory_used {:.2} MiB of a {:.0} MiB cap, {} partials held",
        rate(frames, elapsed),
        mib(peak),
        mib(cap),
        receiver.reassembler().partial_count()
    );
}
