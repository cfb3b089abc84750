//! `ustack`: the command-line front end of the ustack userspace TCP/IP stack.

mod app;
mod args;
mod cli;
mod control;
mod dist;
mod get;
mod iperf3;
mod metrics;
mod nc;
mod observe;
mod ping;
mod serve;
mod services;
mod signals;
mod start;

use std::process::ExitCode;

use clap::Parser;

/// Memory a peer made the stack use should go back to the system once it is
/// freed. glibc raises its mmap threshold to the size of each large block
/// freed (up to 32 MiB), after which 1 MiB socket buffers come from the
/// heap and stay resident when freed; a fixed threshold keeps every buffer
/// of 256 KiB or more in its own mapping, returned to the system on free.
/// Per-thread arenas are capped for the same reason (each service thread
/// would otherwise keep its own free lists).
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; called before any
    // thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1024 * 1024);
        libc::mallopt(libc::M_ARENA_MAX, 4);
    }
}

fn main() -> ExitCode {
    tune_allocator();
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return cli::report_usage_error(e),
    };
    // -v and -vv: shorthands for RUST_LOG=info and RUST_LOG=debug (an
    // explicit RUST_LOG wins).
    let default_level = match cli.verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(default_level))
        .format_timestamp_micros()
        .init();
    let result = match cli.command {
        cli::Command::Serve(args) => serve::run(args),
        cli::Command::Get(args) => get::run(args),
        cli::Command::Ping(args) => ping::run(args),
        cli::Command::Iperf3(args) => iperf3::client::run(args),
        cli::Command::Nc(args) => nc::run(args),
        cli::Command::Rpc(args) => dist::run_rpc(args),
        cli::Command::TwoPc(args) => dist::run_2pc(args),
        cli::Command::Ss(args) => observe::run_ss(args),
        cli::Command::Stats(args) => observe::run_stats(args),
    };
    control::remove_all();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is::<args::Exit>() => match e.downcast_ref::<args::Exit>() {
            Some(args::Exit(code)) => ExitCode::from(*code),
            None => ExitCode::FAILURE,
        },
        Err(e) if e.is::<args::UsageError>() => {
            eprintln!("ustack: error: {e} (see ustack --help)");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("ustack: error: {e}");
            ExitCode::FAILURE
        }
    }
}
