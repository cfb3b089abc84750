//! `ustack get URL`: an HTTP/1.1 download through ustack, like a small
//! `curl -o` / `wget`. The body goes to `-o FILE` or standard output; a
//! progress line is drawn on standard error when it is a terminal, and a
//! one-line summary follows (unless `--quiet`). Refusal, timeouts,
//! truncated bodies and non-2xx answers end it with one line and exit 1.

use std::error::Error;
use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Args;
use sockets_api::{Stack, TcpStream};

use crate::app::{self, describe_duration, describe_io_error};
use crate::args::{StackArgs, UsageError, seconds};
use crate::start;
use http::{self, HttpError, Response, Url, human_bytes, render_progress};

#[derive(Args, Debug)]
pub struct GetArgs {
    // The help is an attribute, not a doc comment: rustdoc would read the
    // brackets as links.
    #[arg(
        value_name = "URL",
        help = "What to download: http://A.B.C.D[:PORT][/PATH] (an IPv4 address or a name \
                from /etc/hosts; ustack has no DNS)"
    )]
    pub url: String,
    /// Write the body to FILE instead of standard output (a file this run
    /// creates is removed again if the download fails).
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Give up when the server sends nothing (or takes nothing) for this
    /// many seconds.
    #[arg(long, value_name = "SECS", default_value = "30", value_parser = seconds)]
    pub timeout: Duration,
    /// Give up connecting after this many seconds.
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = seconds)]
    pub connect_timeout: Duration,
    /// No progress line and no summary on standard error.
    #[arg(short, long)]
    pub quiet: bool,
    #[command(flatten)]
    pub stack: StackArgs,
}

/// Where the body goes.
enum Output {
    Stdout(BufWriter<io::Stdout>),
    /// The file, its path, and whether this run created it (only then is
    /// it removed after a failure: never `/dev/null`, a FIFO, or a file
    /// that was there before).
    File(BufWriter<File>, PathBuf, bool),
}

impl Output {
    fn open(path: Option<&PathBuf>) -> Result<Output, String> {
        Ok(match path {
            None => Output::Stdout(BufWriter::with_capacity(256 * 1024, io::stdout())),
            Some(p) => {
                let created = std::fs::symlink_metadata(p).is_err();
                let f = File::create(p).map_err(|e| {
                    format!("cannot create {}: {}", p.display(), describe_io_error(&e))
                })?;
                Output::File(BufWriter::with_capacity(256 * 1024, f), p.clone(), created)
            }
        })
    }

    fn writer(&mut self) -> &mut dyn Write {
        match self {
            Output::Stdout(w) => w,
            Output::File(w, _, _) => w,
        }
    }

    fn name(&self) -> String {
        match self {
            Output::Stdout(_) => "standard output".into(),
            Output::File(_, p, _) => p.display().to_string(),
        }
    }

    /// Flushes; on failure, removes a partly written file it created.
    fn finish(mut self, ok: bool) -> Result<(), String> {
        let flushed = self.writer().flush();
        if let Output::File(w, path, created) = self {
            drop(w);
            let regular = std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_file());
            if (!ok || flushed.is_err()) && created && regular {
                let _ = std::fs::remove_file(&path);
            }
        }
        flushed.map_err(|e| format!("writing output: {}", describe_io_error(&e)))
    }
}

pub fn run(args: GetArgs) -> Result<(), Box<dyn Error>> {
    let url = Url::parse(&args.url).map_err(UsageError)?;
    let ip = app::resolve_host(&url.host)?;
    let target = SocketAddr::from((ip, url.port));
    let mut output = Output::open(args.output.as_ref())?;
    let stack = match start::start(&args.stack) {
        Ok(s) => s,
        Err(e) => {
            let _ = output.finish(false);
            return Err(e);
        }
    };
    let show_progress = !args.quiet && io::stderr().is_terminal();
    let start = Instant::now();
    let result = fetch(&stack, target, &url, &args, output.writer(), show_progress);
    // Delivers our FIN and ACKs, ends the stack thread, flushes the pcap.
    stack.stop();
    let name = output.name();
    output.finish(result.is_ok())?;
    let response = result?;
    if !args.quiet {
        let secs = start.elapsed().as_secs_f64().max(1e-6);
        eprintln!(
            "ustack: {} {}: {} in {:.2} s ({}/s) to {name}",
            response.status,
            response.reason,
            human_bytes(response.body_len),
            secs,
            human_bytes((response.body_len as f64 / secs) as u64),
        );
    }
    Ok(())
}

/// Connects to `target` and downloads `url` into `out`. Errors are one
/// line.
fn fetch(
    stack: &Stack,
    target: SocketAddr,
    url: &Url,
    args: &GetArgs,
    out: &mut dyn Write,
    show_progress: bool,
) -> Result<Response, String> {
    let stream = TcpStream::connect_timeout(stack, &target, args.connect_timeout).map_err(|e| {
        let why = match e.kind() {
            io::ErrorKind::TimedOut => {
                format!(
                    "timed out after {}",
                    describe_duration(args.connect_timeout)
                )
            }
            _ => describe_io_error(&e),
        };
        format!("cannot connect to {target}: {why}")
    })?;
    let timeouts = stream
        .set_read_timeout(Some(args.timeout))
        .and_then(|()| stream.set_write_timeout(Some(args.timeout)));
    timeouts.map_err(|e| format!("setting timeouts: {}", describe_io_error(&e)))?;

    let mut bar = Progress::new(show_progress);
    let mut s = &stream;
    let result = http::get(&mut s, url, out, &mut |received, total| {
        bar.update(received, total)
    });
    bar.done();
    result.map_err(|e| match &e {
        HttpError::Io { context, source }
            if matches!(
                source.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            format!(
                "{url}: {context}: timed out (nothing for {})",
                describe_duration(args.timeout)
            )
        }
        HttpError::Io { context, source } => {
            format!("{url}: {context}: {}", describe_io_error(source))
        }
        _ => format!("{url}: {e}"),
    })
}

/// The progress line on standard error.
struct Progress {
    enabled: bool,
    start: Instant,
    drawn: bool,
}

impl Progress {
    fn new(enabled: bool) -> Progress {
        Progress {
            enabled,
            start: Instant::now(),
            drawn: false,
        }
    }

    fn update(&mut self, received: u64, total: Option<u64>) {
        if !self.enabled {
            return;
        }
        let width = app::terminal_width(2)
            .unwrap_or(80)
            .saturating_sub(1)
            .max(20);
        let line = render_progress(received, total, self.start.elapsed(), width);
        // Redraw in place; clear what a longer previous line left.
        eprint!("\r{line}\x1b[K");
        self.drawn = true;
    }

    fn done(&mut self) {
        if self.drawn {
            eprintln!();
            self.drawn = false;
        }
    }
}

#[cfg(test)]
mod tests;
