//! `ustack serve`: a ustack host on a TAP device.

use std::error::Error;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ethernet::MacAddr;
use stack::device::{
    Device, FaultConfig, FaultDevice, PcapDevice, PcapWriter, TapConfig, TapDevice,
};
use stack::runtime::{self, Waker};
use stack::{Interface, InterfaceConfig};

use crate::cli::{ServeArgs, StackArgs, UsageError};
use crate::services::Services;
use crate::signals;

/// The fault injection the stack flags ask for.
pub fn fault_config(args: &StackArgs, seed: u64) -> Result<FaultConfig, UsageError> {
    let config = FaultConfig {
        loss: args.loss,
        dup: args.dup,
        reorder: args.reorder,
        corrupt: args.corrupt,
        delay: Duration::from_secs_f64(args.delay / 1000.0),
        seed,
        ..FaultConfig::default()
    };
    config.validate().map_err(UsageError)?;
    Ok(config)
}

/// Opens the device described by the stack flags: the TAP, wrapped in a pcap
/// recorder when asked, wrapped in the fault injector when faults are asked
/// for (so the capture shows what crossed the wire).
pub fn open_device(
    args: &StackArgs,
    faults: &FaultConfig,
) -> Result<Box<dyn Device>, Box<dyn Error>> {
    let tap = TapDevice::open(&TapConfig {
        name: args.tap.clone(),
        mtu: args.mtu.map(usize::from),
        host_addr: args.host_addr,
    })?;
    let dev: Box<dyn Device> = match &args.pcap {
        Some(path) => {
            let writer = PcapWriter::create(path)
                .map_err(|e| format!("cannot create pcap file {}: {e}", path.display()))?;
            Box::new(PcapDevice::new(tap, writer))
        }
        None => Box::new(tap),
    };
    Ok(if faults.is_noop() {
        dev
    } else {
        Box::new(FaultDevice::new(dev, *faults))
    })
}

/// Builds the interface configuration from the stack flags.
pub fn interface_config(
    args: &StackArgs,
    mtu: usize,
    seed: u64,
) -> Result<InterfaceConfig, UsageError> {
    let mac = args.mac.unwrap_or_else(|| {
        let mut rng =
            <rand::rngs::SmallRng as rand::SeedableRng>::seed_from_u64(seed ^ 0x6d61_6321);
        MacAddr::random_local(&mut rng)
    });
    let mut config = InterfaceConfig::new(mac, args.addr);
    config.gateway = args.gateway;
    config.routes = args.routes()?;
    config.mtu = mtu;
    config.ttl = args.ttl;
    config.seed = seed;
    config.tcp.congestion = args.cc;
    Ok(config)
}

/// The seed for this run: `--seed`, or fresh randomness.
pub fn run_seed(args: &StackArgs) -> u64 {
    args.seed.unwrap_or_else(|| {
        let mut seed_bytes = [0u8; 8];
        getrandom_or_time(&mut seed_bytes);
        u64::from_le_bytes(seed_bytes)
    })
}

/// Fills `buf` from the kernel's random source (falls back to the clock,
/// which is only ever used for non-security values).
fn getrandom_or_time(buf: &mut [u8]) {
    // SAFETY: `buf` is valid for writes of its length.
    let n = unsafe { libc::getrandom(buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n != buf.len() as isize {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        for (i, b) in buf.iter_mut().enumerate() {
            *b = (t >> ((i % 8) * 8)) as u8;
        }
    }
}

pub fn run(args: ServeArgs) -> Result<(), Box<dyn Error>> {
    let seed = run_seed(&args.stack);
    // Validate everything that does not need the device before opening it.
    interface_config(&args.stack, 1500, seed)?;
    let faults = fault_config(&args.stack, seed)?;
    let mut dev = open_device(&args.stack, &faults)?;
    let mtu = dev.mtu();
    let config = interface_config(&args.stack, mtu, seed)?;
    let mut iface =
        Interface::try_new(config, Instant::now()).map_err(|e| UsageError(e.to_string()))?;
    let mut services = Services::start(&mut iface, &args)?;
    let waker = Arc::new(Waker::new()?);
    signals::stop_on_signals(waker.clone())?;
    println!(
        "ustack: serving {} on {} (MAC {}, MTU {}, congestion control {})",
        iface.cidr(),
        args.stack.tap,
        iface.mac(),
        mtu,
        args.stack.cc
    );
    if !faults.is_noop() {
        println!("ustack: fault injection: {faults}");
    }
    for line in services.describe() {
        println!("ustack: {line}");
    }
    let options = runtime::RunOptions {
        busy_poll: Duration::from_micros(args.stack.busy_poll),
    };
    runtime::run_with(&mut iface, &mut dev, &waker, options, |iface, now, dev| {
        services.poll(iface, now, dev)
    })?;
    drop(dev);
    println!("ustack: stopped");
    print!("{}", iface.counters());
    print!("{}", services.summary(&iface));
    if let Some(path) = &args.stack.pcap {
        println!("pcap written to {}", path.display());
    }
    Ok(())
}
