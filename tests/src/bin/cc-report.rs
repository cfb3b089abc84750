//! Prints the congestion-control measurements (throughput against loss next
//! to the Mathis bound, fairness, recovery) and writes cwnd traces as CSV.
//!
//!   cc-report [--seconds S] [--trace-dir DIR]

use std::io::Write;
use std::time::{Duration, Instant};

use sim::sim::experiments::{Bottleneck, cwnd_trace, fairness, loss_throughput_with};
use tcp::LossDetection;
use tcp::cc::Algorithm;

fn main() {
    let mut seconds = 30u64;
    let mut trace_dir: Option<String> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match (a.as_str(), args.next()) {
            ("--seconds", Some(v)) => seconds = v.parse().unwrap_or_else(|_| usage()),
            ("--trace-dir", Some(v)) => trace_dir = Some(v),
            _ => usage(),
        }
    }
    let net = Bottleneck::default();
    let algos = [Algorithm::NewReno, Algorithm::Cubic, Algorithm::Bbr];
    println!(
        "bottleneck {} Mbit/s, RTT {} ms, drop-tail queue {} KB (1 BDP); random loss on the data direction",
        net.bps / 1_000_000,
        net.rtt.as_millis(),
        net.queue / 1000
    );
    println!("goodput over {seconds} simulated seconds after 5 s of warm-up\n");
    println!(
        "{:<8} {:<7} {:>6} {:>12} {:>14} {:>9} {:>8} {:>8} {:>8} {:>9} {:>5} {:>5}",
        "cc",
        "detect",
        "loss",
        "goodput",
        "Mathis bound",
        "of bound",
        "of link",
        "fast rx",
        "rto rx",
        "rto share",
        "RTOs",
        "TLPs"
    );
    for (algo, detection) in algos
        .iter()
        .flat_map(|&a| [LossDetection::Rack, LossDetection::DupAck].map(move |d| (a, d)))
    {
        for p in [0.0, 0.001, 0.01, 0.05] {
            let wall = Instant::now();
            let r = loss_throughput_with(
                1,
                algo,
                detection,
                net,
                p,
                Duration::from_secs(5),
                Duration::from_secs(seconds),
            );
            let bound = if r.mathis.is_finite() {
                format!("{:.2} Mbit/s", r.mathis / 1e6)
            } else {
                "-".to_string()
            };
            let of_bound = if r.mathis.is_finite() {
                format!("{:.0}%", 100.0 * r.goodput / r.mathis)
            } else {
                "-".to_string()
            };
            println!(
                "{:<8} {:<7} {:>5.1}% {:>7.2} Mbit/s {:>14} {:>9} {:>7.1}% {:>8} {:>8} {:>8.1}% {:>5} {:>5}   ({:.1} s wall)",
                algo.name(),
                detection.name(),
                p * 100.0,
                r.goodput / 1e6,
                bound,
                of_bound,
                100.0 * r.goodput / net.bps as f64,
                r.stats.retrans_fast,
                r.stats.retrans_rto,
                100.0 * r.rto_share(),
                r.stats.rto_count,
                r.stats.tail_loss_probes,
                wall.elapsed().as_secs_f64()
            );
        }
    }
    println!("\nfairness: two flows, the second starting 2 s later, measured over 60 s after 10 s");
    for algo in algos {
        let (j, x) = fairness(
            2,
            algo,
            net,
            Duration::from_secs(10),
            Duration::from_secs(60),
        );
        println!(
            "{:<8} Jain's index {:.3}   flows {:.1} and {:.1} Mbit/s",
            algo.name(),
            j,
            x[0] / 1e6,
            x[1] / 1e6
        );
    }
    if let Some(dir) = trace_dir {
        std::fs::create_dir_all(&dir).expect("trace directory");
        for algo in algos {
            // No random loss: the drop-tail queue causes the losses, so the
            // window shapes of the algorithms show.
            let samples = cwnd_trace(
                3,
                algo,
                net,
                0.0,
                Duration::from_secs(40),
                Duration::from_millis(20),
            );
            let path = format!("{dir}/cwnd-{}.csv", algo.name());
            let mut f = std::fs::File::create(&path).expect("trace file");
            writeln!(f, "time_s,cwnd_bytes,ssthresh_bytes,flight_bytes").expect("write");
            for s in samples {
                writeln!(
                    f,
                    "{:.3},{},{},{}",
                    s.t,
                    s.cwnd,
                    s.ssthresh.map_or(String::new(), |v| v.to_string()),
                    s.flight
                )
                .expect("write");
            }
            println!("trace written to {path}");
        }
    }
}

fn usage() -> ! {
    eprintln!("error: usage: cc-report [--seconds S] [--trace-dir DIR]");
    std::process::exit(2);
}
