//! What the socket programs (`serve`, `get`, `ping`, `nc`) share: naming
//! hosts, one-line error texts, and the terminal's width.

use std::io;
use std::net::Ipv4Addr;
use std::time::Duration;

/// An IPv4 address, or a name from /etc/hosts (ustack has no DNS client).
pub fn resolve_host(host: &str) -> Result<Ipv4Addr, String> {
    if let Ok(ip) = host.parse::<Ipv4Addr>() {
        return Ok(ip);
    }
    let hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
    lookup_hosts(&hosts, host).ok_or_else(|| {
        format!(
            "cannot resolve '{host}': use an IPv4 address (ustack has no DNS; \
             only /etc/hosts names are known)"
        )
    })
}

/// The first IPv4 address /etc/hosts text gives `name` (case-insensitive).
fn lookup_hosts(hosts: &str, name: &str) -> Option<Ipv4Addr> {
    hosts.lines().find_map(|line| {
        let line = line.split('#').next().unwrap_or("");
        let mut fields = line.split_whitespace();
        let ip: Ipv4Addr = fields.next()?.parse().ok()?;
        fields.any(|n| n.eq_ignore_ascii_case(name)).then_some(ip)
    })
}

/// An I/O error as a short lower-case phrase, without Rust's
/// "(os error N)" suffix: `connection refused`, `timed out`...
pub fn describe_io_error(e: &io::Error) -> String {
    use io::ErrorKind::*;
    match e.kind() {
        ConnectionRefused => "connection refused".into(),
        ConnectionReset => "connection reset by peer".into(),
        ConnectionAborted => "connection aborted".into(),
        TimedOut | WouldBlock => "timed out".into(),
        HostUnreachable => "no route to host".into(),
        NetworkUnreachable => "network unreachable".into(),
        NetworkDown => "network is down (the stack stopped)".into(),
        BrokenPipe => "broken pipe".into(),
        AddrInUse => "address already in use".into(),
        AddrNotAvailable => "address not available".into(),
        _ => {
            let text = e.to_string();
            let text = text.split(" (os error").next().unwrap_or(&text);
            let mut chars = text.chars();
            match chars.next() {
                Some(c) => c.to_lowercase().chain(chars).collect(),
                None => text.to_owned(),
            }
        }
    }
}

/// `1.5 s`, `250 ms`: a duration for messages.
pub fn describe_duration(d: Duration) -> String {
    if d >= Duration::from_secs(1) {
        format!("{} s", trim_float(d.as_secs_f64()))
    } else {
        format!("{} ms", d.as_millis())
    }
}

/// A number printed like C's `%g`: no trailing zeros, at most 4 decimals.
pub fn trim_float(x: f64) -> String {
    let s = format!("{x:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_owned()
}

/// Width of the terminal on `fd`, if it is one with a known size.
pub fn terminal_width(fd: i32) -> Option<usize> {
    // SAFETY: a zeroed winsize is valid; TIOCGWINSZ fills it.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: `ws` is a valid winsize for TIOCGWINSZ.
    let r = unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) };
    (r == 0 && ws.ws_col > 0).then_some(usize::from(ws.ws_col))
}

#[cfg(test)]
mod tests;
