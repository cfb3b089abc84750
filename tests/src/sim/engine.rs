//! [`Sim`]: the hosts, the network and the virtual clock that jumps from
//! event to event.

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::{Duration, Instant};

use ethernet::MacAddr;
use stack::device::FrameBatch;
use stack::{Interface, InterfaceConfig};

use super::host::{App, AppId, Host, HostCtx, HostId};
use super::link::{LinkConfig, LinkStats};
use super::net::{Fabric, LinkId};
use super::pcap::{CapturePoint, env_capture_path};
use super::seed::{SeedGuard, Stream, derive_seed};

/// Event batches at one instant after which the simulation declares a
/// livelock (see [`Sim::set_livelock_limit`]).
pub const DEFAULT_LIVELOCK_LIMIT: u64 = 100_000;

/// A simulated network: hosts running the real stack, links between them,
/// and a virtual clock.
///
/// Time only moves when the simulation runs ([`step`](Self::step),
/// [`run_for`](Self::run_for), [`run_until`](Self::run_until)), and it
/// jumps straight to the next event: a frame arriving, an interface timer
/// ([`Interface::poll_at`]) or an application wake-up. An event batch at
/// instant `t` delivers every frame due at `t` (including frames sent at `t`
/// over zero-latency paths), then polls every interface whose timer is due,
/// then runs the applications of every host that received a frame, was
/// polled, or asked to be woken. Frames sent by polls and applications are
/// handled by the next batch, at the same instant if their path has no
/// delay.
///
/// Everything is deterministic: hosts and links are visited in creation
/// order, frames arriving at the same instant in the order they were sent,
/// and all randomness derives from the seed. `start` is a real
/// `Instant::now()` captured once, but nothing depends on its value.
///
/// Dropping a `Sim` while a test panics prints the seed (see
/// [`SeedGuard`]) and the captures written.
///
/// Methods taking a [`HostId`] or [`LinkId`] panic, saying so, when it is
/// not one of this simulation's (or the host is not on that link): those
/// are mistakes in the test.
pub struct Sim {
    start: Instant,
    now: Instant,
    seed: u64,
    hosts: Vec<Host>,
    fabric: Fabric,
    batch: FrameBatch,
    /// Where super segments are cut into wire segments.
    gso_scratch: Vec<u8>,
    /// Event batches run at `now` so far.
    batches_at_now: u64,
    /// Frames delivered at `now` so far.
    deliveries_at_now: u64,
    livelock_limit: u64,
    captures: Vec<String>,
    guard: SeedGuard,
}

impl Sim {
    /// An empty simulation whose randomness derives from `seed` (use
    /// [`seed_from_env`](super::seed_from_env) so `SIM_SEED` can replay it).
    pub fn new(seed: u64) -> Sim {
        let start = Instant::now();
        Sim {
            start,
            now: start,
            seed,
            hosts: Vec::new(),
            fabric: Fabric::new(seed),
            batch: FrameBatch::new(),
            gso_scratch: Vec::new(),
            batches_at_now: 0,
            deliveries_at_now: 0,
            livelock_limit: DEFAULT_LIVELOCK_LIMIT,
            captures: Vec::new(),
            guard: SeedGuard::new(seed),
        }
    }

    /// The master seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// A seed for the test's own randomness (stream `index`), independent of
    /// every link and host stream.
    pub fn derive_seed(&self, index: u64) -> u64 {
        derive_seed(self.seed, Stream::User, index)
    }

    /// The current virtual time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// The instant the simulation started at.
    pub fn start(&self) -> Instant {
        self.start
    }

    /// Virtual time elapsed since the start.
    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    /// How many event batches may run at one instant before the simulation
    /// panics as livelocked (an interface whose `poll_at` never advances, an
    /// application that keeps waking itself at the same instant, frames
    /// bouncing forever over zero-latency links; frames delivered at one
    /// instant are limited to 100 times this). Default
    /// [`DEFAULT_LIVELOCK_LIMIT`].
    pub fn set_livelock_limit(&mut self, batches: u64) {
        self.livelock_limit = batches.max(1);
    }

    // ---- hosts ----------------------------------------------------------

    /// Adds a host running an [`Interface`] created now. A `config.seed` of
    /// 0 (the `InterfaceConfig::new` default) is replaced by a seed derived
    /// from the master seed and the host's number, so the host's ports,
    /// identifications and sequence numbers change with `SIM_SEED`; any
    /// other value is kept as the test set it.
    pub fn add_host(&mut self, mut config: InterfaceConfig) -> HostId {
        let id = HostId(self.hosts.len());
        if config.seed == 0 {
            config.seed = derive_seed(self.seed, Stream::Host, id.0 as u64);
        }
        self.hosts.push(Host::new(Interface::new(config, self.now)));
        id
    }

    fn host(&self, host: HostId) -> &Host {
        self.hosts
            .get(host.0)
            .unwrap_or_else(|| panic!("{host:?} is not a host of this simulation"))
    }

    fn host_mut(&mut self, host: HostId) -> &mut Host {
        self.hosts
            .get_mut(host.0)
            .unwrap_or_else(|| panic!("{host:?} is not a host of this simulation"))
    }

    /// The host's interface, to open sockets, receive and read counters.
    /// Calls that transmit need a sink: use [`with_host`](Self::with_host).
    pub fn iface(&mut self, host: HostId) -> &mut Interface {
        &mut self.host_mut(host).iface
    }

    /// The host's interface, read-only.
    pub fn iface_ref(&self, host: HostId) -> &Interface {
        &self.host(host).iface
    }

    /// The host's IPv4 address.
    pub fn ip(&self, host: HostId) -> Ipv4Addr {
        self.host(host).iface.cidr().addr()
    }

    /// The host's MAC address.
    pub fn mac(&self, host: HostId) -> MacAddr {
        self.host(host).iface.mac()
    }

    /// Every host, in creation order.
    pub fn hosts(&self) -> impl Iterator<Item = HostId> + use<> {
        (0..self.hosts.len()).map(HostId)
    }

    /// Frames the host sent while not plugged into any link (dropped).
    pub fn unattached_drops(&self, host: HostId) -> u64 {
        self.host(host).unattached_drops
    }

    /// Runs `f` on the host at the current time; frames it sends leave on
    /// the host's link. This is how test code sends, for instance
    /// `sim.with_host(a, |cx| cx.iface.udp_send_to(cx.now, sock, b"hi", Some(dst), cx.tx))`.
    /// Wake-up requests made here are ignored (only applications have them).
    pub fn with_host<R>(&mut self, host: HostId, f: impl FnOnce(&mut HostCtx<'_>) -> R) -> R {
        let now = self.now;
        let h = self
            .hosts
            .get_mut(host.0)
            .unwrap_or_else(|| panic!("{host:?} is not a host of this simulation"));
        let mut cx = HostCtx::new(&mut h.iface, &mut self.batch, now, host);
        let result = f(&mut cx);
        self.route(host.0);
        result
    }

    // ---- applications ---------------------------------------------------

    /// Runs `app` on `host` from the next event batch on: after every batch
    /// that touches the host, and when it asks to be woken.
    pub fn add_app(&mut self, host: HostId, app: impl App) -> AppId {
        let slot = self.host_mut(host).add_app(Box::new(app));
        AppId { host, slot }
    }

    /// The application `id`, to read or change its state.
    ///
    /// # Panics
    /// When it was removed or is not a `T`.
    pub fn app<T: App>(&mut self, id: AppId) -> &mut T {
        let slot = self
            .host_mut(id.host)
            .apps
            .get_mut(id.slot)
            .and_then(Option::as_mut)
            .unwrap_or_else(|| panic!("{id:?} was removed"));
        let name = slot.app.type_name();
        slot.app
            .as_any()
            .downcast_mut::<T>()
            .unwrap_or_else(|| panic!("{id:?} is a {name}, not a {}", std::any::type_name::<T>()))
    }

    /// Stops the application `id` (a crashed process); its sockets stay
    /// open on the interface until the test closes them.
    pub fn remove_app(&mut self, id: AppId) {
        let host = self.host_mut(id.host);
        if let Some(slot) = host.apps.get_mut(id.slot) {
            *slot = None;
        }
        host.refresh_wake();
    }

    // ---- links ----------------------------------------------------------

    fn attach(&mut self, host: HostId, link: LinkId, dir: usize) {
        let h = self.host_mut(host);
        if let Some((other, _)) = h.attach {
            panic!("{host:?} is already plugged into {other:?}: a host has one interface");
        }
        h.attach = Some((link, dir));
    }

    fn check_unattached(&self, host: HostId) {
        if let Some((other, _)) = self.host(host).attach {
            panic!("{host:?} is already plugged into {other:?}: a host has one interface");
        }
    }

    fn capture_from_env(&mut self, link: LinkId) {
        if let Some(path) = env_capture_path(link.0) {
            self.capture(link, &path)
                .unwrap_or_else(|e| panic!("cannot create capture {}: {e}", path.display()));
        }
    }

    /// A cable between `a` and `b` with `config` both ways.
    pub fn add_link(&mut self, a: HostId, b: HostId, config: LinkConfig) -> LinkId {
        self.add_link_asym(a, b, config.clone(), config)
    }

    /// A cable between `a` and `b`, configured per direction.
    pub fn add_link_asym(
        &mut self,
        a: HostId,
        b: HostId,
        a_to_b: LinkConfig,
        b_to_a: LinkConfig,
    ) -> LinkId {
        assert_ne!(a, b, "a link needs two different hosts");
        self.check_unattached(a);
        self.check_unattached(b);
        let (link, ab, ba) = self.fabric.add_p2p(a, b, a_to_b, b_to_a);
        self.attach(a, link, ab);
        self.attach(b, link, ba);
        let link_len = self.host(a).iface.medium().header_len();
        self.fabric.set_link_len(link, link_len);
        self.capture_from_env(link);
        link
    }

    /// A switch connecting `hosts`. Frames to a host's MAC go to that host
    /// only; broadcast, multicast and unknown destinations go to every
    /// other port. `config` applies to each port's downlink (switch to
    /// host), where frames for one host queue up; uplinks are ideal. So
    /// `config.latency` is the one-way delay between any two hosts, and a
    /// bandwidth limit is that of each host's port.
    pub fn add_switch(&mut self, hosts: &[HostId], config: LinkConfig) -> LinkId {
        let link = self.fabric.add_switch();
        for &h in hosts {
            self.attach_to_switch(link, h, LinkConfig::ideal(), config.clone());
        }
        self.capture_from_env(link);
        link
    }

    /// Plugs `host` into switch `link` with its own uplink (host to switch)
    /// and downlink (switch to host) configuration. Latencies add up: A to B
    /// takes A's uplink latency plus B's downlink latency.
    pub fn attach_to_switch(
        &mut self,
        link: LinkId,
        host: HostId,
        up: LinkConfig,
        down: LinkConfig,
    ) {
        self.check_unattached(host);
        let mac = self.mac(host);
        let dir = self.fabric.add_port(link, host, mac, up, down);
        self.attach(host, link, dir);
    }

    /// Counters of the frames `host` sends into `link` (on a switch: its
    /// uplink).
    pub fn tx_stats(&self, link: LinkId, host: HostId) -> LinkStats {
        self.fabric.tx_stats(link, host)
    }

    /// Counters of the frames `link` carries to `host` (on a switch: its
    /// downlink).
    pub fn rx_stats(&self, link: LinkId, host: HostId) -> LinkStats {
        self.fabric.rx_stats(link, host)
    }

    /// Counters summed over every direction of `link` (on a switch a frame
    /// counts on the uplink and again on each downlink it takes).
    pub fn link_stats(&self, link: LinkId) -> LinkStats {
        self.fabric.link_stats(link)
    }

    /// The configuration of the frames `host` sends into `link`.
    pub fn tx_config(&self, link: LinkId, host: HostId) -> &LinkConfig {
        self.fabric.tx_config(link, host)
    }

    /// Reconfigures the direction `host` sends into (a point-to-point link:
    /// towards the peer; a switch: the uplink). Frames already in flight
    /// keep their fate.
    pub fn set_tx_config(&mut self, link: LinkId, host: HostId, config: LinkConfig) {
        self.fabric.set_tx_config(link, host, config);
    }

    /// Reconfigures the direction that carries frames to `host`.
    pub fn set_rx_config(&mut self, link: LinkId, host: HostId, config: LinkConfig) {
        self.fabric.set_rx_config(link, host, config);
    }

    /// Reconfigures a whole link as at creation: both directions of a
    /// point-to-point link, or every downlink of a switch (uplinks ideal).
    pub fn set_link_config(&mut self, link: LinkId, config: LinkConfig) {
        self.fabric.set_config(link, &config);
    }

    /// Bytes queued now in the direction `host` sends into and in the one
    /// that carries frames to it.
    pub fn queued_bytes(&mut self, link: LinkId, host: HostId) -> (usize, usize) {
        self.fabric.queued_bytes(self.now, link, host)
    }

    /// Frames in flight on all links.
    pub fn in_flight(&self) -> usize {
        self.fabric.in_flight()
    }

    // ---- captures -------------------------------------------------------

    /// Captures `link` to the pcap file `path`, frames recorded as
    /// delivered ([`CapturePoint::Delivery`]). Replaces an earlier capture
    /// of the link.
    pub fn capture(&mut self, link: LinkId, path: &Path) -> std::io::Result<()> {
        self.capture_at(link, path, CapturePoint::Delivery)
    }

    /// Captures `link` to `path`, frames recorded at `point`.
    pub fn capture_at(
        &mut self,
        link: LinkId,
        path: &Path,
        point: CapturePoint,
    ) -> std::io::Result<()> {
        // The frames are of the medium of the hosts on the link (raw IP
        // between IP-link hosts).
        let medium = self
            .hosts
            .iter()
            .find(|h| h.attach.is_some_and(|(l, _)| l == link))
            .map_or(stack::Medium::Ethernet, |h| h.iface.medium());
        self.fabric.capture(link, path, self.start, point, medium)?;
        self.captures.push(path.display().to_string());
        self.guard
            .set_note(format!("captures: {}", self.captures.join(" ")));
        Ok(())
    }

    /// Where `link` is captured, if it is.
    pub fn capture_path(&self, link: LinkId) -> Option<&Path> {
        self.fabric.capture_path(link)
    }

    /// Writes buffered capture records to their files (also done on drop).
    pub fn flush_captures(&mut self) {
        self.fabric.flush_captures();
    }

    // ---- running --------------------------------------------------------

    /// When the next event is due: a frame arrival, an interface timer or
    /// an application wake-up. Overdue events are due now. `None` when
    /// nothing will ever happen by itself.
    pub fn next_event_at(&self) -> Option<Instant> {
        let mut next = self.fabric.next_at();
        for h in &self.hosts {
            for t in [h.iface.poll_at(), h.app_wake, h.touched.then_some(self.now)]
                .into_iter()
                .flatten()
            {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        }
        next.map(|t| t.max(self.now))
    }

    /// Jumps to the next event and runs one event batch there. Returns false
    /// (and does nothing) when nothing is scheduled.
    pub fn step(&mut self) -> bool {
        match self.next_event_at() {
            Some(t) => {
                self.advance_to(t);
                self.run_batch();
                true
            }
            None => false,
        }
    }

    /// Runs every event due up to and including `now + d`, then sets the
    /// clock to `now + d`.
    pub fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        while let Some(t) = self.next_event_at().filter(|&t| t <= end) {
            self.advance_to(t);
            self.run_batch();
        }
        self.advance_to(end);
    }

    /// Runs until `cond` holds, checking it before the first event batch
    /// and after each one, for at most `timeout` of virtual time. Returns
    /// whether it held; on timeout the clock is at `now + timeout`.
    ///
    /// `cond` gets the whole simulation, so it can read sockets and send
    /// with [`with_host`](Self::with_host).
    pub fn run_until(&mut self, mut cond: impl FnMut(&mut Sim) -> bool, timeout: Duration) -> bool {
        self.run_until_some(|sim| cond(sim).then_some(()), timeout)
            .is_some()
    }

    /// Like [`run_until`](Self::run_until), returning the first `Some`
    /// that `f` produces (a reply read from a socket, for instance).
    pub fn run_until_some<T>(
        &mut self,
        mut f: impl FnMut(&mut Sim) -> Option<T>,
        timeout: Duration,
    ) -> Option<T> {
        let deadline = self.now + timeout;
        if let Some(v) = f(self) {
            return Some(v);
        }
        while let Some(t) = self.next_event_at().filter(|&t| t <= deadline) {
            self.advance_to(t);
            self.run_batch();
            if let Some(v) = f(self) {
                return Some(v);
            }
        }
        self.advance_to(deadline);
        f(self)
    }

    /// Moves the clock to `t` (never backwards), counting batches that do
    /// not move it.
    fn advance_to(&mut self, t: Instant) {
        if t > self.now {
            self.now = t;
            self.batches_at_now = 0;
            self.deliveries_at_now = 0;
        }
    }

    /// Runs the event batch due at `now`.
    fn run_batch(&mut self) {
        let now = self.now;
        self.batches_at_now += 1;
        if self.batches_at_now > self.livelock_limit {
            self.livelock(format!(
                "{} event batches without the clock advancing",
                self.batches_at_now - 1
            ));
        }
        while let Some((id, buf)) = self.fabric.next_delivery(now) {
            self.deliveries_at_now += 1;
            if self.deliveries_at_now > self.livelock_limit.saturating_mul(100) {
                self.livelock(format!(
                    "{} frames delivered without the clock advancing",
                    self.deliveries_at_now - 1
                ));
            }
            let host = &mut self.hosts[id.0];
            host.iface.receive_frame(now, &buf, &mut self.batch);
            host.touched = true;
            self.fabric.recycle(buf);
            self.route(id.0);
        }
        for i in 0..self.hosts.len() {
            let host = &mut self.hosts[i];
            if host.iface.poll_at().is_some_and(|t| t <= now) {
                host.iface.poll(now, &mut self.batch);
                host.touched = true;
                self.route(i);
            }
        }
        for i in 0..self.hosts.len() {
            let host = &mut self.hosts[i];
            if host.touched || host.app_wake.is_some_and(|t| t <= now) {
                host.touched = false;
                if !host.apps.is_empty() {
                    host.run_apps(HostId(i), now, &mut self.batch);
                    self.route(i);
                }
            }
        }
    }

    /// Puts the frames host `index` just emitted on its link.
    fn route(&mut self, index: usize) {
        if self.batch.is_empty() {
            return;
        }
        let host = &mut self.hosts[index];
        // The IP packet's offset in a frame: 14 on Ethernet, 0 on an IP link.
        let link_len = host.iface.medium().header_len();
        match host.attach {
            Some((_, dir)) => {
                for (frame, mss) in self.batch.iter_segmented() {
                    if mss == 0 {
                        self.fabric.transmit(self.now, dir, frame);
                        continue;
                    }
                    if self.fabric.carries_super_segments(dir) {
                        // Carried whole, its checksum completed on the way
                        // (as a veth does; see LinkConfig::gso).
                        self.gso_scratch.clear();
                        self.gso_scratch.extend_from_slice(frame);
                        stack::device::gso::complete_checksum(&mut self.gso_scratch, link_len);
                        self.fabric.transmit(self.now, dir, &self.gso_scratch);
                        continue;
                    }
                    // A super segment (the host has segmentation offload):
                    // the link carries the segments the NIC cuts it into.
                    let (fabric, now) = (&mut self.fabric, self.now);
                    stack::device::gso::split_tcp(
                        frame,
                        link_len,
                        mss,
                        &mut self.gso_scratch,
                        |p| fabric.transmit(now, dir, p),
                    );
                }
            }
            None => {
                if host.unattached_drops == 0 {
                    log::warn!("sim: host {index} is on no link; its frames are dropped");
                }
                host.unattached_drops += self.batch.len() as u64;
            }
        }
        self.batch.clear();
    }

    /// Panics with what keeps the clock from advancing.
    fn livelock(&self, what: String) -> ! {
        let now = self.now;
        let mut due = Vec::new();
        for (i, h) in self.hosts.iter().enumerate() {
            if h.iface.poll_at().is_some_and(|t| t <= now) {
                due.push(format!("host {i} interface poll_at"));
            }
            if h.app_wake.is_some_and(|t| t <= now) {
                due.push(format!("host {i} application wake-up"));
            }
        }
        let frames = self.fabric.due(now);
        if frames > 0 {
            due.push(format!("{frames} frames arriving"));
        }
        panic!(
            "sim: livelock at +{:?}: {what}; due now: {}",
            self.elapsed(),
            if due.is_empty() {
                "nothing".to_string()
            } else {
                due.join(", ")
            }
        );
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.fabric.flush_captures();
    }
}
