//! Starting a ustack stack from the shared stack flags, through the public
//! `sockets-api` builder (every program but the raw-interface parts of
//! `serve` runs on the socket API).

use std::error::Error;
use std::io;
use std::time::Duration;

use sockets_api::{FaultConfig, Stack, StackBuilder};

use crate::args::{StackArgs, UsageError};

/// The fault injection the stack flags ask for (seed 0: the stack's seed).
pub fn fault_config(args: &StackArgs) -> Result<FaultConfig, UsageError> {
    let config = FaultConfig {
        loss: args.loss,
        dup: args.dup,
        reorder: args.reorder,
        corrupt: args.corrupt,
        delay: Duration::from_secs_f64(args.delay / 1000.0),
        seed: 0,
        ..FaultConfig::default()
    };
    config.validate().map_err(UsageError)?;
    Ok(config)
}

/// The builder the stack flags describe (validated; nothing opened yet).
pub fn builder(args: &StackArgs) -> Result<StackBuilder, UsageError> {
    let device = match (&args.tun, &args.tap) {
        (Some(tun), _) => StackBuilder::tun(tun.clone()),
        (None, Some(tap)) => StackBuilder::tap(tap.clone()),
        (None, None) => return Err(UsageError("--tap or --tun is required".into())),
    };
    let mut b = device
        .addr(args.addr)
        .ttl(args.ttl)
        .faults(fault_config(args)?)
        .congestion(args.cc)
        .busy_poll(Duration::from_micros(args.busy_poll))
        .offload(!args.no_offload)
        .mem_limit(args.mem_limit)
        .tcp_limits(sockets_api::TcpLimits {
            syncookies: args.syncookies,
            max_time_wait: args.max_time_wait,
            max_orphans: args.max_orphans,
        })
        .tcp(tcp::TcpConfig {
            orphan_retries: args.orphan_retries,
            user_timeout: args.user_timeout,
            loss_detection: args.loss_detection,
            pacing: args.pacing.unwrap_or(tcp::TcpConfig::default().pacing),
            ..tcp::TcpConfig::default()
        });
    if let Some(gw) = args.gateway {
        b = b.gateway(gw);
    }
    for r in args.routes()? {
        b = b.route(r);
    }
    if let Some(mac) = args.mac {
        b = b.mac(mac);
    }
    if let Some(mtu) = args.mtu {
        b = b.mtu(usize::from(mtu));
    }
    if let Some(h) = args.host_addr {
        b = b.host_addr(h);
    }
    if let Some(p) = &args.pcap {
        if p.as_os_str() == "-" {
            return Err(UsageError(
                "--pcap - (a capture on standard output) is only for ustack serve".into(),
            ));
        }
        b = b.pcap(p.clone()).capture_loopback(args.pcap_loopback);
    }
    if let Some(s) = args.seed {
        b = b.seed(s);
    }
    Ok(b)
}

/// Opens the TAP or TUN device and starts the stack thread the flags describe.
/// A configuration the stack refuses (an off-link gateway, say) is a usage
/// error (exit 2); a device that cannot be opened is a failure (exit 1).
pub fn start(args: &StackArgs) -> Result<Stack, Box<dyn Error>> {
    start_with(args, builder(args)?)
}

/// [`start`] with a builder the caller adjusted. Also opens the control
/// socket (`--control`) and the metrics endpoint (`--metrics`) the flags
/// ask for, each served by a thread of its own.
pub fn start_with(args: &StackArgs, builder: StackBuilder) -> Result<Stack, Box<dyn Error>> {
    let stack = builder.start().map_err(|e| -> Box<dyn Error> {
        if e.kind() == io::ErrorKind::InvalidInput {
            Box::new(UsageError(e.to_string()))
        } else {
            Box::new(e)
        }
    })?;
    if let Some(path) = &args.control {
        crate::control::serve(path, stack.observer())?;
    }
    if let Some(addr) = args.metrics {
        crate::metrics::serve(addr, stack.observer())?;
    }
    Ok(stack)
}
