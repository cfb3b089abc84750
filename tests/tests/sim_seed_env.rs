//! `SIM_SEED` end to end: this test binary runs itself as a child process
//! with `SIM_SEED` set, and checks that the seed changes the run and that a
//! failing test prints the line that replays it.
//!
//! The `child_*` tests are what the child runs; they are ignored, and do
//! nothing unless `SIM_CHILD` is set, so `cargo test -- --ignored` is safe.

use std::process::{Command, Output};
use std::time::Duration;

use sim::sim::{LinkConfig, Sim, UdpSink, UdpSource, host_config, ping, seed_from_env};

const DEFAULT_SEED: u64 = 31;

/// Runs the ignored test `name` of this binary with `SIM_SEED=seed` (unset
/// when `None`).
fn run_child(name: &str, seed: Option<&str>) -> Output {
    let exe = std::env::current_exe().expect("test binary path");
    let mut cmd = Command::new(exe);
    cmd.args([
        "--exact",
        name,
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env("SIM_CHILD", "1")
    .env_remove("SIM_SEED")
    .env_remove("SIM_PCAP_DIR");
    if let Some(seed) = seed {
        cmd.env("SIM_SEED", seed);
    }
    cmd.output().expect("child test runs")
}

/// The `OUTCOME` line a child printed.
fn outcome(output: &Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "child failed: {stdout}");
    stdout
        .lines()
        .find_map(|l| l.split_once("OUTCOME ").map(|(_, o)| o))
        .unwrap_or_else(|| panic!("no OUTCOME line in {stdout}"))
        .to_string()
}

#[test]
fn sim_seed_replays_and_changes_runs() {
    let default = outcome(&run_child("child_prints_outcome", None));
    let explicit = outcome(&run_child(
        "child_prints_outcome",
        Some(&DEFAULT_SEED.to_string()),
    ));
    let hex = outcome(&run_child("child_prints_outcome", Some("0x1f")));
    let other = outcome(&run_child("child_prints_outcome", Some("32")));
    assert_eq!(default, explicit, "SIM_SEED=31 is the default run");
    assert_eq!(default, hex, "hex seeds are the same number");
    assert_ne!(default, other, "another SIM_SEED, another run");
}

#[test]
fn failing_test_prints_its_seed() {
    let output = run_child("child_fails", Some("777"));
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("SIM_SEED=777 replays this test"),
        "stderr: {stderr}"
    );
}

#[test]
fn bad_sim_seed_is_refused() {
    let output = run_child("child_prints_outcome", Some("twelve"));
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("is not a decimal or 0x-hex u64"),
        "{stderr}"
    );
}

fn in_child() -> bool {
    std::env::var_os("SIM_CHILD").is_some()
}

/// A lossy run whose outcome depends on the seed.
#[test]
#[ignore = "run by sim_seed_replays_and_changes_runs"]
fn child_prints_outcome() {
    if !in_child() {
        return;
    }
    let mut sim = Sim::new(seed_from_env(DEFAULT_SEED));
    let a = sim.add_host(host_config(1));
    let b = sim.add_host(host_config(2));
    let link = sim.add_link(a, b, LinkConfig::default());
    assert!(ping(&mut sim, a, b, 1, b"warm", Duration::from_secs(1)).is_some());
    sim.set_link_config(
        link,
        LinkConfig::lossy(0.2).with_jitter(Duration::from_millis(2)),
    );
    let sink = UdpSink::bind(sim.iface(b), 9, false).expect("bind");
    let sink = sim.add_app(b, sink);
    let dst = std::net::SocketAddrV4::new(sim.ip(b), 9);
    let source =
        UdpSource::new(sim.iface(a), dst, 200, 100, Duration::from_millis(1)).expect("bind");
    sim.add_app(a, source);
    sim.run_for(Duration::from_secs(2));
    let times: Vec<_> = sim
        .app::<UdpSink>(sink)
        .received
        .iter()
        .map(|r| r.at)
        .collect();
    let start = sim.start();
    let last = times.last().map(|&t| t - start);
    println!(
        "OUTCOME {:?} received={} last={last:?}",
        sim.link_stats(link),
        times.len()
    );
}

#[test]
#[ignore = "run by failing_test_prints_its_seed"]
fn child_fails() {
    if !in_child() {
        return;
    }
    let _sim = Sim::new(seed_from_env(1));
    panic!("deliberate failure");
}
