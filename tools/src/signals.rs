//! SIGINT/SIGTERM end the program cleanly: the handler only asks the event
//! loop to stop (an atomic store and an eventfd write, both async-signal-safe).

use std::sync::{Arc, OnceLock};

use stack::runtime::Waker;

static WAKER: OnceLock<Arc<Waker>> = OnceLock::new();

extern "C" fn on_signal(_signal: libc::c_int) {
    if let Some(w) = WAKER.get() {
        w.stop();
    }
}

/// Routes SIGINT and SIGTERM to `waker.stop()`.
pub fn stop_on_signals(waker: Arc<Waker>) -> std::io::Result<()> {
    let _ = WAKER.set(waker);
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: a zeroed sigaction is valid; the handler only touches
        // async-signal-safe state.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as *const () as libc::sighandler_t;
            libc::sigemptyset(&mut action.sa_mask);
            action.sa_flags = libc::SA_RESTART;
            if libc::sigaction(signal, &action, std::ptr::null_mut()) != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
    }
    Ok(())
}
