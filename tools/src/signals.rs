//! SIGINT/SIGTERM end the long-running commands cleanly, and SIGUSR1 asks
//! `serve` for a status report. The handler only sets a flag and writes one
//! byte to a self-pipe (both async-signal-safe); the program either waits
//! on the pipe ([`wait_for_stop_or_status`]) or checks the flag between
//! bounded waits ([`received`]).

use std::io;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::Duration;

static RECEIVED: AtomicBool = AtomicBool::new(false);
/// SIGUSR1 arrived: print a status report (like `dd`'s SIGUSR1).
static STATUS: AtomicBool = AtomicBool::new(false);
/// Write end of the self-pipe (-1 until installed).
static PIPE_WRITE: AtomicI32 = AtomicI32::new(-1);
/// Read end of the self-pipe.
static PIPE_READ: OnceLock<i32> = OnceLock::new();

extern "C" fn on_signal(signal: libc::c_int) {
    // SAFETY: errno is thread-local; saving and restoring it keeps the
    // interrupted code's view of it intact.
    let saved = unsafe { *libc::__errno_location() };
    if signal == libc::SIGUSR1 {
        STATUS.store(true, Ordering::SeqCst);
    } else {
        RECEIVED.store(true, Ordering::SeqCst);
    }
    let fd = PIPE_WRITE.load(Ordering::SeqCst);
    if fd >= 0 {
        let byte = 1u8;
        // SAFETY: write(2) is async-signal-safe; the pipe is non-blocking,
        // so a full pipe (signals already pending) just drops the byte.
        unsafe { libc::write(fd, (&raw const byte).cast(), 1) };
    }
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = saved };
}

/// Routes SIGINT and SIGTERM (stop) and SIGUSR1 (status report) to their
/// flags and the self-pipe. Idempotent.
pub fn install() -> io::Result<()> {
    if PIPE_READ.get().is_none() {
        let mut fds = [0 as libc::c_int; 2];
        // SAFETY: `fds` has room for the two descriptors.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // The write end never blocks the handler.
        // SAFETY: fcntl on a descriptor we own.
        unsafe {
            let flags = libc::fcntl(fds[1], libc::F_GETFL);
            libc::fcntl(fds[1], libc::F_SETFL, flags | libc::O_NONBLOCK);
        }
        if PIPE_READ.set(fds[0]).is_err() {
            // Another thread won the race; close ours.
            // SAFETY: both are ours and unused.
            unsafe {
                libc::close(fds[0]);
                libc::close(fds[1]);
            }
        } else {
            PIPE_WRITE.store(fds[1], Ordering::SeqCst);
        }
    }
    for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGUSR1] {
        // SAFETY: a zeroed sigaction is valid; the handler only touches
        // async-signal-safe state.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as *const () as libc::sighandler_t;
            libc::sigemptyset(&mut action.sa_mask);
            action.sa_flags = libc::SA_RESTART;
            if libc::sigaction(signal, &action, std::ptr::null_mut()) != 0 {
                return Err(io::Error::last_os_error());
            }
        }
    }
    Ok(())
}

/// Whether SIGINT or SIGTERM has arrived since [`install`].
pub fn received() -> bool {
    RECEIVED.load(Ordering::SeqCst)
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
    loop {
        if received() {
            return Wake::Stop;
        }
        if STATUS.swap(false, Ordering::SeqCst) {
            return Wake::Status;
        }
        wait_timeout(None);
    }
}

/// Waits for SIGINT or SIGTERM up to `timeout` (`None`: no limit); true
/// once one has arrived.
pub fn wait_timeout(timeout: Option<Duration>) -> bool {
    if received() {
        return true;
    }
    let Some(&fd) = PIPE_READ.get() else {
        // Not installed: nothing will ever come; just sleep.
        std::thread::sleep(timeout.unwrap_or(Duration::from_secs(3600)));
        return received();
    };
    let ms = timeout.map_or(-1, |t| t.as_millis().min(i32::MAX as u128) as libc::c_int);
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    let n = unsafe { libc::poll(&mut pfd, 1, ms) };
    if n > 0 {
        let mut buf = [0u8; 16];
        // SAFETY: reading into a local buffer; the byte was written by the
        // handler, so this does not block.
        unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    }
    received()
}
