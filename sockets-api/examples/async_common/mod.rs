//! What the async examples share: their command line, the stack on a TAP
//! device, and the HTTP service of `hyper_server` (also used by the
//! hyper test over the in-memory link).

// Each example uses part of this module.
#![allow(dead_code)]

use std::io;

use sockets_api::{Ipv4Cidr, Stack, StackBuilder};

pub mod service;

/// The options every TAP example takes, and the rest of its arguments.
#[derive(Debug, Default)]
pub struct Args {
    pub tap: Option<String>,
    pub addr: Option<Ipv4Cidr>,
    pub host_addr: Option<Ipv4Cidr>,
    pub port: Option<u16>,
    /// `--name value` options the example reads itself.
    pub extra: Vec<(String, String)>,
    /// Arguments that are not options.
    pub free: Vec<String>,
}

pub fn bad(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

impl Args {
    /// Parses `--tap NAME --addr A.B.C.D/LEN --host-addr A.B.C.D/LEN
    /// --port P`, and the options named in `known` (each with a value).
    pub fn parse(known: &[&str]) -> io::Result<Args> {
        let mut args = Args::default();
        let mut it = std::env::args().skip(1);
        while let Some(a) = it.next() {
            let Some(name) = a.strip_prefix("--") else {
                args.free.push(a);
                continue;
            };
            let value = it
                .next()
                .ok_or_else(|| bad(format!("--{name} needs a value")))?;
            match name {
                "tap" => args.tap = Some(value),
                "addr" => args.addr = Some(parse_cidr(&value)?),
                "host-addr" => args.host_addr = Some(parse_cidr(&value)?),
                "port" => {
                    args.port = Some(
                        value
                            .parse()
                            .map_err(|_| bad(format!("bad port '{value}'")))?,
                    )
                }
                n if known.contains(&n) => args.extra.push((n.to_string(), value)),
                n => return Err(bad(format!("unknown option --{n}"))),
            }
        }
        Ok(args)
    }

    /// The value of `--name`, parsed.
    pub fn get<T: std::str::FromStr>(&self, name: &str) -> io::Result<Option<T>> {
        match self.extra.iter().rev().find(|(n, _)| n == name) {
            None => Ok(None),
            Some((_, v)) => v
                .parse()
                .map(Some)
                .map_err(|_| bad(format!("bad value '{v}' for --{name}"))),
        }
    }

    /// `--port`, which the example needs.
    pub fn port(&self) -> io::Result<u16> {
        self.port.ok_or_else(|| bad("--port is required".into()))
    }

    /// A ustack stack on the TAP device `--tap`, with `--addr`, the
    /// kernel side of the TAP getting `--host-addr`.
    pub fn start_stack(&self) -> io::Result<Stack> {
        let tap = self
            .tap
            .as_deref()
            .ok_or_else(|| bad("--tap is required".into()))?;
        let addr = self.addr.ok_or_else(|| bad("--addr is required".into()))?;
        let mut builder = StackBuilder::tap(tap).addr(addr);
        if let Some(h) = self.host_addr {
            builder = builder.host_addr(h);
        }
        builder.start()
    }
}

fn parse_cidr(s: &str) -> io::Result<Ipv4Cidr> {
    s.parse()
        .map_err(|e| bad(format!("bad address '{s}': {e}")))
}

/// Runs `f`, printing its error and exiting with 2 (usage) or 1.
pub fn exit_on_error(name: &str, r: io::Result<()>) -> std::process::ExitCode {
    match r {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: {e}");
            std::process::ExitCode::from(if e.kind() == io::ErrorKind::InvalidInput {
                2
            } else {
                1
            })
        }
    }
}
