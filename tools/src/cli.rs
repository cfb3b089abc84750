//! Command-line arguments. Every bad argument gets one clear line and exit
//! code 2.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use ethernet::MacAddr;
use ip::Ipv4Cidr;

/// A userspace TCP/IP stack on a Linux TAP device.
#[derive(Parser, Debug)]
#[command(name = "ustack", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a ustack host on a TAP device: answers ARP and ping.
    Serve(ServeArgs),
}

/// Flags every command that starts a stack shares.
#[derive(Args, Debug, Clone)]
pub struct StackArgs {
    /// TAP device to open (created if missing).
    #[arg(long, value_name = "NAME")]
    pub tap: String,
    /// ustack's own address and prefix length.
    #[arg(long, value_name = "A.B.C.D/LEN")]
    pub addr: Ipv4Cidr,
    /// Default gateway for off-link destinations.
    #[arg(long, value_name = "A.B.C.D")]
    pub gateway: Option<Ipv4Addr>,
    /// ustack's MAC address (default: a random locally administered one).
    #[arg(long, value_name = "MAC")]
    pub mac: Option<MacAddr>,
    /// Link MTU (also applied to the TAP device); default: the device's.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(68..))]
    pub mtu: Option<u16>,
    /// Give the kernel side of the TAP this address and bring it up.
    #[arg(long, value_name = "A.B.C.D/LEN")]
    pub host_addr: Option<Ipv4Cidr>,
    /// Write every frame received and sent to this pcap file.
    #[arg(long, value_name = "FILE")]
    pub pcap: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    #[command(flatten)]
    pub stack: StackArgs,
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
