//! socket-diff: the same socket scenarios against Linux kernel sockets and
//! against ustack sockets, with the same Linux peer, compared step by step
//! (return values, errno, bytes, poll revents, and whether a call returned
//! at once or only after blocking).
//!
//! Run inside the peer's namespace P, which holds a TAP device for ustack
//! and a veth pair to namespace L where the Linux sockets under test live
//! (scripts/itest/33-socket-diff.sh builds this topology):
//!
//! ```text
//! socket-diff --linux-netns L --linux-addr 10.77.1.2 --peer-linux 10.77.1.1 \
//!     --tap tap0 --ustack-addr 10.77.0.2/24 --peer-ustack 10.77.0.1 [--only NAME] [-v]
//! ```
//!
//! Prints `SAME name` or `DIFF name: linux=<step> ustack=<step>` (the first
//! differing step) per scenario and a summary; exits 1 on a difference not
//! in [`ACCEPTED`].

mod api;
mod linux;
mod peer;
mod scenarios;
mod trace;
mod ustack;

use std::net::Ipv4Addr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use sockets_api::{Ipv4Cidr, StackBuilder};

use api::Api;
use scenarios::Scenario;
use trace::{Ctx, Trace};

/// Differences that are not bugs: a differing step whose text (on either
/// side) contains the pattern is accepted. The scenarios are designed so
/// none of these shows up (no ephemeral port numbers, no buffer sizes, no
/// backlog-dependent outcomes); the table keeps them from failing the run
/// should one be added.
const ACCEPTED: &[(&str, &str)] = &[
    (
        "EPH-RANGE",
        "the ephemeral port range is ustack's own (49152..65535)",
    ),
    (
        "SO_RCVBUF",
        "default buffer sizes differ, and Linux doubles SO_RCVBUF",
    ),
    (
        "SO_SNDBUF",
        "default buffer sizes differ, and Linux doubles SO_SNDBUF",
    ),
    (
        "backlog",
        "the listen backlog is a hint; its exact limit differs",
    ),
];

/// A scenario that does not finish within this counts as hung.
const SCENARIO_LIMIT: Duration = Duration::from_secs(10);

struct Args {
    linux_netns: String,
    linux_addr: Ipv4Addr,
    peer_linux: Ipv4Addr,
    tap: String,
    ustack_addr: Ipv4Cidr,
    peer_ustack: Ipv4Addr,
    only: Vec<String>,
    verbose: bool,
    list: bool,
}

fn usage() -> ! {
    eprintln!(
        "usage: socket-diff --linux-netns NS --linux-addr A --peer-linux A --tap DEV \
         --ustack-addr A/LEN --peer-ustack A [--only NAME]... [-v] [--list]"
    );
    std::process::exit(2);
}

fn parse_args() -> Args {
    let mut it = std::env::args().skip(1);
    let (mut ns, mut la, mut pl, mut tap, mut ua, mut pu) = (None, None, None, None, None, None);
    let (mut only, mut verbose, mut list) = (Vec::new(), false, false);
    while let Some(a) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| usage());
        match a.as_str() {
            "--linux-netns" => ns = Some(val()),
            "--linux-addr" => la = Some(val().parse().unwrap_or_else(|_| usage())),
            "--peer-linux" => pl = Some(val().parse().unwrap_or_else(|_| usage())),
            "--tap" => tap = Some(val()),
            "--ustack-addr" => ua = Some(val().parse().unwrap_or_else(|_| usage())),
            "--peer-ustack" => pu = Some(val().parse().unwrap_or_else(|_| usage())),
            "--only" => only.push(val()),
            "-v" | "--verbose" => verbose = true,
            "--list" => list = true,
            _ => usage(),
        }
    }
    if list {
        return Args {
            linux_netns: String::new(),
            linux_addr: Ipv4Addr::UNSPECIFIED,
            peer_linux: Ipv4Addr::UNSPECIFIED,
            tap: String::new(),
            ustack_addr: Ipv4Cidr::new(Ipv4Addr::UNSPECIFIED, 0).unwrap(),
            peer_ustack: Ipv4Addr::UNSPECIFIED,
            only,
            verbose,
            list,
        };
    }
    match (ns, la, pl, tap, ua, pu) {
        (
            Some(linux_netns),
            Some(linux_addr),
            Some(peer_linux),
            Some(tap),
            Some(ustack_addr),
            Some(peer_ustack),
        ) => Args {
            linux_netns,
            linux_addr,
            peer_linux,
            tap,
            ustack_addr,
            peer_ustack,
            only,
            verbose,
            list,
        },
        _ => usage(),
    }
}

/// The /24 (or whatever prefix) broadcast and an unused host of `addr`'s
/// subnet.
fn subnet(addr: Ipv4Addr, prefix: u8) -> (Ipv4Addr, Ipv4Addr) {
    let mask = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix)
    };
    let net = u32::from(addr) & mask;
    (Ipv4Addr::from(net | !mask), Ipv4Addr::from(net | 99))
}

/// Runs one scenario in its own thread; a hung one is abandoned (the
/// process exits at the end) and its trace ends with `HUNG`.
fn run_one(api: &Arc<dyn Api + Send + Sync>, sc: &Scenario, ctx: Ctx) -> Vec<String> {
    let mut trace = Trace::new(ctx);
    let steps = trace.steps.clone();
    let (tx, rx) = mpsc::channel();
    let api = api.clone();
    let run = sc.run;
    std::thread::Builder::new()
        .name(format!("{}-{}", trace.ctx.side, sc.name))
        .spawn(move || {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                run(&*api, &trace.ctx.clone(), &mut trace)
            }));
            let _ = tx.send(r.is_ok());
        })
        .expect("scenario thread");
    let end = match rx.recv_timeout(SCENARIO_LIMIT) {
        Ok(true) => None,
        Ok(false) => Some("PANICKED"),
        Err(_) => Some("HUNG (scenario did not finish)"),
    };
    let mut v = steps.lock().unwrap_or_else(|e| e.into_inner()).clone();
    if let Some(e) = end {
        v.push(e.to_string());
    }
    v
}

fn accepted(l: &str, u: &str) -> Option<&'static str> {
    ACCEPTED
        .iter()
        .find(|(pat, _)| l.contains(pat) || u.contains(pat))
        .map(|(_, why)| *why)
}

fn main() -> ExitCode {
    // A write to a reset connection must fail with EPIPE, not kill us.
    // SAFETY: setting a signal disposition.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    let args = parse_args();
    let all = scenarios::all();
    if args.list {
        for s in &all {
            println!("{}", s.name);
        }
        return ExitCode::SUCCESS;
    }
    let linux: Arc<dyn Api + Send + Sync> = match linux::Linux::new(&args.linux_netns) {
        Ok(l) => Arc::new(l),
        Err(e) => {
            eprintln!("socket-diff: namespace {}: {e}", args.linux_netns);
            return ExitCode::from(2);
        }
    };
    let prefix = args.ustack_addr.prefix_len();
    let stack = match StackBuilder::tap(&args.tap)
        .addr(args.ustack_addr)
        .host_addr(Ipv4Cidr::new(args.peer_ustack, prefix).expect("prefix"))
        .start()
    {
        Ok(s) => s,
        Err(e) => {
            eprintln!("socket-diff: ustack on {}: {e}", args.tap);
            return ExitCode::from(2);
        }
    };
    let ustack: Arc<dyn Api + Send + Sync> = Arc::new(ustack::Ustack { stack });

    let (lbcast, lunreach) = subnet(args.linux_addr, prefix);
    let (ubcast, uunreach) = subnet(args.ustack_addr.addr(), prefix);
    let (mut same, mut diff, mut acc) = (0, 0, 0);
    assert!(all.len() <= 200, "port ranges hold 200 scenarios");
    for (i, sc) in all.iter().enumerate() {
        if !args.only.is_empty() && !args.only.iter().any(|o| o == sc.name) {
            continue;
        }
        let i = i as u16;
        // Separate port ranges per side, below Linux's ephemeral range, so
        // one side's TIME-WAIT never meets the other's ports.
        let lctx = Ctx {
            side: "linux",
            own: args.linux_addr,
            peer: args.peer_linux,
            unreach: lunreach,
            bcast: lbcast,
            own_base: 20000 + i * 10,
            peer_base: 22000 + i * 10,
        };
        let uctx = Ctx {
            side: "ustack",
            own: args.ustack_addr.addr(),
            peer: args.peer_ustack,
            unreach: uunreach,
            bcast: ubcast,
            own_base: 24000 + i * 10,
            peer_base: 26000 + i * 10,
        };
        let lt = run_one(&linux, sc, lctx);
        let ut = run_one(&ustack, sc, uctx);
        if args.verbose {
            for s in &lt {
                println!("    linux  {s}");
            }
            for s in &ut {
                println!("    ustack {s}");
            }
        }
        let n = lt.len().max(ut.len());
        let first = (0..n).find(|&k| lt.get(k) != ut.get(k));
        match first {
            None => {
                same += 1;
                println!("SAME {}", sc.name);
            }
            Some(k) => {
                let end = "<end>".to_string();
                let (l, u) = (lt.get(k).unwrap_or(&end), ut.get(k).unwrap_or(&end));
                diff += 1;
                match accepted(l, u) {
                    Some(why) => {
                        acc += 1;
                        println!(
                            "DIFF {}: linux=<{l}> ustack=<{u}> (accepted: {why})",
                            sc.name
                        );
                    }
                    None => println!("DIFF {}: linux=<{l}> ustack=<{u}>", sc.name),
                }
            }
        }
    }
    println!("socket-diff: {same} same, {diff} diff ({acc} accepted)");
    // Hung scenario threads may still hold the stack: leave without
    // waiting for them.
    let code = if diff > acc { 1 } else { 0 };
    std::process::exit(code);
}
