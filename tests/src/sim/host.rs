//! Hosts: an [`Interface`] each, the link it is plugged into, and the
//! applications running on it.

use std::any::Any;
use std::time::{Duration, Instant};

use stack::device::FrameBatch;
use stack::{FrameSink, Interface};

use super::net::{DirId, LinkId};

/// A host of a simulation, returned by [`Sim::add_host`](super::Sim::add_host).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HostId(pub(crate) usize);

impl HostId {
    /// The host's number (hosts are numbered from 0 in creation order).
    pub fn index(self) -> usize {
        self.0
    }
}

/// An application added with [`Sim::add_app`](super::Sim::add_app).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AppId {
    pub(crate) host: HostId,
    pub(crate) slot: usize,
}

impl AppId {
    /// The host it runs on.
    pub fn host(self) -> HostId {
        self.host
    }
}

/// What application code gets to work with: the host's interface, the
/// current virtual time, and the sink that puts frames on the host's link.
///
/// The fields are public so that one call can borrow two of them:
/// `cx.iface.udp_send_to(cx.now, sock, data, Some(dst), cx.tx)`.
pub struct HostCtx<'a> {
    /// The host's interface (sockets live here).
    pub iface: &'a mut Interface,
    /// Frames sent here leave on the host's link at `now`.
    pub tx: &'a mut dyn FrameSink,
    /// The current virtual time.
    pub now: Instant,
    /// Which host this is.
    pub host: HostId,
    wake: Option<Instant>,
}

impl<'a> HostCtx<'a> {
    pub(crate) fn new(
        iface: &'a mut Interface,
        tx: &'a mut FrameBatch,
        now: Instant,
        host: HostId,
    ) -> Self {
        HostCtx {
            iface,
            tx,
            now,
            host,
            wake: None,
        }
    }

    /// Asks to be run again at `t` (or earlier, when something happens on
    /// the host). A request lasts until the application's next run, so an
    /// application with a timer asks again on every run; the earliest of
    /// several requests wins. Ignored outside applications.
    pub fn wake_at(&mut self, t: Instant) {
        self.wake = Some(self.wake.map_or(t, |w| w.min(t)));
    }

    /// Asks to be run again `d` from now; see [`wake_at`](Self::wake_at).
    pub fn wake_in(&mut self, d: Duration) {
        self.wake_at(self.now + d);
    }
}

/// An application: code that runs on a host after every event batch that
/// touched the host (frames received, timers run) and when it asked to be
/// woken with [`HostCtx::wake_at`].
///
/// Closures `FnMut(&mut HostCtx<'_>)` are applications; implement the trait
/// on a struct to read the application's state back with
/// [`Sim::app`](super::Sim::app).
pub trait App: 'static {
    /// Does whatever is due: drain sockets, answer, send, arm timers.
    fn step(&mut self, cx: &mut HostCtx<'_>);
}

impl<F: FnMut(&mut HostCtx<'_>) + 'static> App for F {
    fn step(&mut self, cx: &mut HostCtx<'_>) {
        self(cx)
    }
}

/// An application, type-erased but recoverable.
pub(crate) trait AnyApp {
    fn step(&mut self, cx: &mut HostCtx<'_>);
    fn as_any(&mut self) -> &mut dyn Any;
    fn type_name(&self) -> &'static str;
}

impl<T: App> AnyApp for T {
    fn step(&mut self, cx: &mut HostCtx<'_>) {
        App::step(self, cx)
    }
    fn as_any(&mut self) -> &mut dyn Any {
        self
    }
    fn type_name(&self) -> &'static str {
        std::any::type_name::<T>()
    }
}

/// An application and its wake-up request.
pub(crate) struct AppSlot {
    pub app: Box<dyn AnyApp>,
    wake: Option<Instant>,
}

/// A host's state in the simulation.
pub(crate) struct Host {
    pub iface: Interface,
    /// The link it is plugged into and the direction its frames enter.
    pub attach: Option<(LinkId, DirId)>,
    /// Removed applications leave `None`, so [`AppId`]s stay valid.
    pub apps: Vec<Option<AppSlot>>,
    /// The earliest wake-up any application asked for.
    pub app_wake: Option<Instant>,
    /// Something happened on the host during the current batch.
    pub touched: bool,
    /// Frames sent while unattached (dropped).
    pub unattached_drops: u64,
}

impl Host {
    pub fn new(iface: Interface) -> Self {
        Host {
            iface,
            attach: None,
            apps: Vec::new(),
            app_wake: None,
            touched: false,
            unattached_drops: 0,
        }
    }

    pub fn add_app(&mut self, app: Box<dyn AnyApp>) -> usize {
        self.apps.push(Some(AppSlot { app, wake: None }));
        // Runs in the next batch, to send its first datagram or arm a timer.
        self.touched = true;
        self.apps.len() - 1
    }

    /// Runs every application once; frames go to `tx`.
    pub fn run_apps(&mut self, id: HostId, now: Instant, tx: &mut FrameBatch) {
        let mut earliest: Option<Instant> = None;
        for slot in self.apps.iter_mut().flatten() {
            let mut cx = HostCtx::new(&mut self.iface, tx, now, id);
            slot.app.step(&mut cx);
            slot.wake = cx.wake;
            if let Some(w) = slot.wake {
                earliest = Some(earliest.map_or(w, |e| e.min(w)));
            }
        }
        self.app_wake = earliest;
    }

    /// Recomputes [`app_wake`](Self::app_wake) (after a removal).
    pub fn refresh_wake(&mut self) {
        self.app_wake = self.apps.iter().flatten().filter_map(|s| s.wake).min();
    }
}
