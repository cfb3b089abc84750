//! Command-line arguments: the commands and their arguments. Every bad
//! argument gets one clear line and exit code 2.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::serve::ServeArgs;

/// A userspace TCP/IP stack on a Linux TAP device.
#[derive(Parser, Debug)]
#[command(
    name = "ustack",
    version,
    about,
    propagate_version = true,
    after_help = "Logging: -v (info) and -vv (debug) before the command, e.g. `ustack -v serve ...`; \
                  RUST_LOG, when set, wins.\n\
                  Observability: --control PATH on any command that runs a stack, then \
                  `ustack ss --control PATH -ti` and `ustack stats --control PATH [--json]`; \
                  --metrics 127.0.0.1:9100 for Prometheus."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// More log output on standard error, before the command (`ustack -v
    /// serve ...`): -v is RUST_LOG=info, -vv debug, -vvv trace (RUST_LOG,
    /// when set, wins).
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a ustack host on a TAP device: answers ARP and ping, runs services.
    #[command(after_help = "Examples:\n  \
        ustack serve --tap tap0 --addr 10.0.0.2/24 --host-addr 10.0.0.1/24 --echo 7 --http 80 --http-root .\n  \
        ustack -v serve --tap tap0 --addr 10.0.0.2/24 --discard 9 --control /run/ustack.sock --metrics 127.0.0.1:9100\n  \
        ustack serve --tap tap0 --addr 10.0.0.2/24 --echo 7 --pcap - | wireshark -k -i -\n  \
        ustack serve --tap tap0 --addr 10.0.0.2/24 --echo 7 --loss 0.01 --pcap run.pcapng")]
    Serve(ServeArgs),
    /// Download a URL over HTTP/1.1 through ustack.
    #[command(after_help = "Examples:\n  \
        ustack get --tap tap0 --addr 10.0.0.2/24 http://10.0.0.1/file -o file\n  \
        ustack -vv get --tap tap0 --addr 10.0.0.2/24 --control /tmp/get.sock http://10.0.0.1/big -o /dev/null")]
    Get(crate::get::GetArgs),
    /// Send ICMP echo requests through ustack, like Linux ping.
    #[command(after_help = "Examples:\n  \
        ustack ping --tap tap0 --addr 10.0.0.2/24 -c 3 10.0.0.1\n  \
        ustack -v ping --tap tap0 --addr 10.0.0.2/24 --pcap ping.pcapng 10.0.0.1")]
    Ping(crate::ping::PingArgs),
    /// iperf3 client through ustack, against `iperf3 -s` (or `ustack serve
    /// --iperf3`).
    #[command(after_help = "Examples:\n  \
        ustack iperf3 --tap tap0 --addr 10.0.0.2/24 -c 10.0.0.1\n  \
        ustack iperf3 --tap tap0 --addr 10.0.0.2/24 -c 10.0.0.1 -R -P 4 -t 5\n  \
        ustack iperf3 --tap tap0 --addr 10.0.0.2/24 -c 10.0.0.1 -u -b 100M -l 1400")]
    Iperf3(crate::iperf3::client::Iperf3Args),
    /// Connect or listen, copying stdin to the connection and it to stdout.
    #[command(after_help = "Examples:\n  \
        ustack nc --tap tap0 --addr 10.0.0.2/24 10.0.0.1 7\n  \
        ustack nc --tap tap0 --addr 10.0.0.2/24 -l 5000 --control /tmp/nc.sock > received")]
    Nc(crate::nc::NcArgs),
    /// RPC over ustack: the name service, and looking names up in it.
    Rpc(crate::dist::RpcArgs),
    /// Two-phase commit bank: coordinator, participants, transfers.
    #[command(name = "2pc")]
    TwoPc(crate::dist::TwoPcArgs),
    /// List the sockets of a running stack (its --control socket), like ss.
    #[command(
        after_help = "Examples:\n  ustack ss --control /run/ustack.sock -tn\n  \
                            ustack ss --control /run/ustack.sock -ti\n  \
                            ustack ss --control /run/ustack.sock -lu"
    )]
    Ss(crate::observe::SsArgs),
    /// Print every counter of a running stack (its --control socket).
    #[command(
        after_help = "Examples:\n  ustack stats --control /run/ustack.sock\n  \
                            ustack stats --control /run/ustack.sock --json | python3 -m json.tool\n  \
                            ustack stats --control /run/ustack.sock --watch 1"
    )]
    Stats(crate::observe::StatsArgs),
}

/// Prints a clap error as one line (help and version go out whole) and
/// returns the exit code: 0 for help/version, 2 for a usage error.
pub fn report_usage_error(err: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match err.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = err.print();
            if err.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            }
        }
        _ => {
            // clap's first paragraph, minus hints, joined into one line.
            let rendered = err.render().to_string();
            let line = rendered
                .lines()
                .take_while(|l| !l.trim().is_empty())
                .map(str::trim)
                .filter(|l| !l.starts_with("tip:"))
                .collect::<Vec<_>>()
                .join(" ");
            let line = line.trim_start_matches("error: ");
            eprintln!("ustack: error: {line} (see ustack --help)");
            ExitCode::from(2)
        }
    }
}
