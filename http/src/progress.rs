//! Download progress for terminals: byte counts in binary units and a
//! one-line progress display.

use std::time::Duration;

/// A byte count in binary units: `512 B`, `1.5 KiB`, `12.3 MiB`, `2.0 GiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// `m:ss`, or `h:mm:ss` from an hour on.
fn clock(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

/// One line of download progress, at most `width` characters (ASCII), for
/// redrawing in place with `\r` on a terminal.
///
/// With a known `total`: a bar (when at least 10 columns are left for
/// it), the percentage, `received / total`, the mean rate and the
/// estimated time left, e.g.
/// `[=========>          ]  45%  12.3 MiB / 27.0 MiB  5.2 MiB/s  ETA 0:03`.
/// Without a total: `12.3 MiB  5.2 MiB/s  0:05` (received, rate, time
/// elapsed).
pub fn render_progress(
    received: u64,
    total: Option<u64>,
    elapsed: Duration,
    width: usize,
) -> String {
    let secs = elapsed.as_secs_f64();
    let rate = if secs > 0.0 {
        received as f64 / secs
    } else {
        0.0
    };
    let rate_text = if rate > 0.0 {
        format!("{}/s", human_bytes(rate as u64))
    } else {
        "--/s".to_owned()
    };
    let mut text = match total {
        None => format!(
            "{}  {rate_text}  {}",
            human_bytes(received),
            clock(elapsed.as_secs())
        ),
        Some(total) => {
            let fraction = if total == 0 {
                1.0
            } else {
                (received as f64 / total as f64).min(1.0)
            };
            let eta = if received >= total {
                clock(0)
            } else if rate > 0.0 {
                clock(((total - received) as f64 / rate).ceil() as u64)
            } else {
                "-:--".to_owned()
            };
            let stats = format!(
                "{:>3}%  {} / {}  {rate_text}  ETA {eta}",
                (fraction * 100.0).floor() as u64,
                human_bytes(received),
                human_bytes(total)
            );
            // "[" bar "] " stats
            let bar_width = width.saturating_sub(stats.len() + 3);
            if bar_width >= 10 {
                let filled = ((fraction * bar_width as f64) as usize).min(bar_width);
                let mut bar = String::with_capacity(width);
                bar.push('[');
                bar.extend(std::iter::repeat_n('=', filled));
                if filled < bar_width {
                    bar.push('>');
                    bar.extend(std::iter::repeat_n(' ', bar_width - filled - 1));
                }
                bar.push_str("] ");
                bar.push_str(&stats);
                bar
            } else {
                stats
            }
        }
    };
    text.truncate(width);
    text
}

#[cfg(test)]
mod tests;
