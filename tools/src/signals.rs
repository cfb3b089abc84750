//! SIGINT/SIGTERM end the long-running commands cleanly, and SIGUSR1 asks
//! `serve` for a status report. The handlers (installed through
//! `signal-hook`) only set a flag and wake a self-pipe; the program either
//! waits for them ([`wait_for_stop_or_status`]) or checks the flag between
//! bounded waits ([`received`]).

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use signal_hook::consts::{SIGINT, SIGTERM, SIGUSR1};
use signal_hook::iterator::Signals;

/// What the handlers set, and the self-pipe that wakes a waiter.
struct Installed {
    /// SIGINT or SIGTERM arrived: stop.
    stop: Arc<AtomicBool>,
    /// SIGUSR1 arrived: print a status report (like `dd`'s SIGUSR1).
    status: Arc<AtomicBool>,
    /// Woken by each of the three signals.
    wake: Mutex<Signals>,
}

static INSTALLED: OnceLock<Installed> = OnceLock::new();

/// Routes SIGINT and SIGTERM (stop) and SIGUSR1 (status report) to their
/// flags and the self-pipe. Idempotent.
pub fn install() -> io::Result<()> {
    if INSTALLED.get().is_some() {
        return Ok(());
    }
    let stop = Arc::new(AtomicBool::new(false));
    let status = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(SIGINT, Arc::clone(&stop))?;
    signal_hook::flag::register(SIGTERM, Arc::clone(&stop))?;
    signal_hook::flag::register(SIGUSR1, Arc::clone(&status))?;
    let wake = Mutex::new(Signals::new([SIGINT, SIGTERM, SIGUSR1])?);
    // Another thread may have won the race; its handlers serve as well.
    let _ = INSTALLED.set(Installed { stop, status, wake });
    Ok(())
}

/// Whether SIGINT or SIGTERM has arrived since [`install`].
pub fn received() -> bool {
    INSTALLED
        .get()
        .is_some_and(|s| s.stop.load(Ordering::SeqCst))
}

/// What [`wait_for_stop_or_status`] woke up for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wake {
    /// SIGINT or SIGTERM: stop.
    Stop,
    /// SIGUSR1: print a status report and carry on.
    Status,
}

/// Blocks until SIGINT/SIGTERM (stop) or SIGUSR1 (status) arrives.
pub fn wait_for_stop_or_status() -> Wake {
    let Some(installed) = INSTALLED.get() else {
        // Not installed: nothing will ever come.
        loop {
            std::thread::park();
        }
    };
    let mut wake = installed.wake.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        if installed.stop.load(Ordering::SeqCst) {
            return Wake::Stop;
        }
        if installed.status.swap(false, Ordering::SeqCst) {
            return Wake::Status;
        }
        // The flags are set before the pipe is written, so a signal that
        // arrived since they were checked makes this return at once.
        wake.wait().for_each(drop);
    }
}
