//! `ustack`: the command-line front end of the ustack userspace TCP/IP stack.

mod app;
mod cli;
mod dist;
mod get;
mod http;
mod nc;
mod ping;
mod serve;
mod services;
mod signals;
mod start;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return cli::report_usage_error(e),
    };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn"))
        .format_timestamp_micros()
        .init();
    let result = match cli.command {
        cli::Command::Serve(args) => serve::run(args),
        cli::Command::Get(args) => get::run(args),
        cli::Command::Ping(args) => ping::run(args),
        cli::Command::Nc(args) => nc::run(args),
        cli::Command::Rpc(args) => dist::run_rpc(args),
        cli::Command::TwoPc(args) => dist::run_2pc(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is::<cli::Exit>() => match e.downcast_ref::<cli::Exit>() {
            Some(cli::Exit(code)) => ExitCode::from(*code),
            None => ExitCode::FAILURE,
        },
        Err(e) if e.is::<cli::UsageError>() => {
            eprintln!("ustack: error: {e} (see ustack --help)");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("ustack: error: {e}");
            ExitCode::FAILURE
        }
    }
}
