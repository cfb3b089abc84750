//! The network between the hosts: point-to-point links and switches, the
//! frames in flight on them, and captures.
//!
//! Every link is made of [`Direction`]s. A point-to-point link has two, one
//! per sending host. A switch has two per port: the uplink (host to switch)
//! and the downlink (switch to host); a frame from A to B crosses A's uplink,
//! is switched, then crosses B's downlink, where it queues behind everything
//! else going to B (an output-queued switch). Frames in flight wait in one
//! heap ordered by (arrival time, sequence number), so equal arrival times
//! are resolved in the order the frames were sent, deterministically.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap};
use std::path::Path;
use std::time::Instant;

use ethernet::MacAddr;

use super::host::HostId;
use super::link::{Arrival, Carried, Direction, LinkConfig, LinkStats};
use super::pcap::{Capture, CapturePoint};
use super::seed::{Stream, derive_seed};

/// A link: point-to-point or a switch. Returned by
/// [`Sim::add_link`](super::Sim::add_link) and
/// [`Sim::add_switch`](super::Sim::add_switch).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LinkId(pub(crate) usize);

impl LinkId {
    /// The link's number (links are numbered from 0 in creation order).
    pub fn index(self) -> usize {
        self.0
    }
}

/// Index of a direction in [`Fabric::dirs`].
pub(crate) type DirId = usize;

/// Where a direction leads.
#[derive(Clone, Copy, Debug)]
enum Dest {
    Host(HostId),
    /// Into switch `link`, from port `port`.
    Switch {
        link: usize,
        port: usize,
    },
}

/// A direction and its place in the topology.
struct DirSlot {
    dir: Direction,
    dest: Dest,
    link: usize,
    /// Frames entering it come from a host (not from a switch).
    from_host: bool,
}

/// One port of a switch.
struct Port {
    host: HostId,
    up: DirId,
    down: DirId,
}

enum Topology {
    /// Two hosts; `tx[i]` carries what `hosts[i]` sends.
    P2p { hosts: [HostId; 2], tx: [DirId; 2] },
    Switch {
        ports: Vec<Port>,
        by_mac: HashMap<MacAddr, usize>,
    },
}

struct Link {
    topo: Topology,
    capture: Option<Capture>,
}

/// A frame on its way.
struct InFlight {
    at: Instant,
    seq: u64,
    dir: DirId,
    buf: Vec<u8>,
}

impl PartialEq for InFlight {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for InFlight {}
impl PartialOrd for InFlight {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for InFlight {
    fn cmp(&self, o: &Self) -> Ordering {
        (self.at, self.seq).cmp(&(o.at, o.seq))
    }
}

/// Frame buffers kept for reuse, at most.
const POOL_LIMIT: usize = 4096;

/// All links, all directions, all frames in flight.
pub(crate) struct Fabric {
    dirs: Vec<DirSlot>,
    links: Vec<Link>,
    heap: BinaryHeap<Reverse<InFlight>>,
    seq: u64,
    pool: Vec<Vec<u8>>,
    scratch: Vec<DirId>,
    /// Arrivals decided by a direction, before they join the heap.
    arrivals: Vec<Arrival>,
    seed: u64,
}

impl Fabric {
    pub fn new(seed: u64) -> Self {
        Fabric {
            dirs: Vec::new(),
            links: Vec::new(),
            heap: BinaryHeap::new(),
            seq: 0,
            pool: Vec::new(),
            scratch: Vec::new(),
            arrivals: Vec::new(),
            seed,
        }
    }

    fn add_dir(&mut self, cfg: LinkConfig, dest: Dest, link: usize, from_host: bool) -> DirId {
        let id = self.dirs.len();
        let seed = derive_seed(self.seed, Stream::Channel, id as u64);
        self.dirs.push(DirSlot {
            dir: Direction::new(cfg, seed),
            dest,
            link,
            from_host,
        });
        id
    }

    /// A point-to-point link; returns it and the directions `a` and `b` send
    /// into.
    pub fn add_p2p(
        &mut self,
        a: HostId,
        b: HostId,
        a_to_b: LinkConfig,
        b_to_a: LinkConfig,
    ) -> (LinkId, DirId, DirId) {
        let link = self.links.len();
        let ab = self.add_dir(a_to_b, Dest::Host(b), link, true);
        let ba = self.add_dir(b_to_a, Dest::Host(a), link, true);
        self.links.push(Link {
            topo: Topology::P2p {
                hosts: [a, b],
                tx: [ab, ba],
            },
            capture: None,
        });
        (LinkId(link), ab, ba)
    }

    /// A switch without ports.
    pub fn add_switch(&mut self) -> LinkId {
        self.links.push(Link {
            topo: Topology::Switch {
                ports: Vec::new(),
                by_mac: HashMap::new(),
            },
            capture: None,
        });
        LinkId(self.links.len() - 1)
    }

    fn link(&self, link: LinkId) -> &Link {
        self.links
            .get(link.0)
            .unwrap_or_else(|| panic!("{link:?} is not a link of this simulation"))
    }

    fn link_mut(&mut self, link: LinkId) -> &mut Link {
        self.links
            .get_mut(link.0)
            .unwrap_or_else(|| panic!("{link:?} is not a link of this simulation"))
    }

    /// Plugs `host` (whose MAC is `mac`) into switch `link`; returns its
    /// uplink.
    pub fn add_port(
        &mut self,
        link: LinkId,
        host: HostId,
        mac: MacAddr,
        up: LinkConfig,
        down: LinkConfig,
    ) -> DirId {
        let port = match &self.link(link).topo {
            Topology::Switch { ports, by_mac } => {
                if let Some(&p) = by_mac.get(&mac) {
                    panic!(
                        "{host:?}: MAC {mac} is already on {link:?} ({:?})",
                        ports[p].host
                    );
                }
                ports.len()
            }
            Topology::P2p { .. } => panic!("{link:?} is a point-to-point link, not a switch"),
        };
        let up = self.add_dir(up, Dest::Switch { link: link.0, port }, link.0, true);
        let down = self.add_dir(down, Dest::Host(host), link.0, false);
        if let Topology::Switch { ports, by_mac } = &mut self.link_mut(link).topo {
            ports.push(Port { host, up, down });
            by_mac.insert(mac, port);
        }
        up
    }

    /// The directions `host` sends into and receives from on `link`.
    fn host_dirs(&self, link: LinkId, host: HostId) -> (DirId, DirId) {
        let found = match &self.link(link).topo {
            Topology::P2p { hosts, tx } => hosts
                .iter()
                .position(|&h| h == host)
                .map(|i| (tx[i], tx[1 - i])),
            Topology::Switch { ports, .. } => ports
                .iter()
                .find(|p| p.host == host)
                .map(|p| (p.up, p.down)),
        };
        found.unwrap_or_else(|| panic!("{host:?} is not attached to {link:?}"))
    }

    /// Every direction of `link`.
    fn link_dirs(&self, link: LinkId) -> impl Iterator<Item = DirId> + '_ {
        let (tx, ports): (&[DirId], &[Port]) = match &self.link(link).topo {
            Topology::P2p { tx, .. } => (tx, &[]),
            Topology::Switch { ports, .. } => (&[], ports),
        };
        tx.iter()
            .copied()
            .chain(ports.iter().flat_map(|p| [p.up, p.down]))
    }

    /// Counters of what `host` sends into `link`.
    pub fn tx_stats(&self, link: LinkId, host: HostId) -> LinkStats {
        self.dirs[self.host_dirs(link, host).0].dir.stats
    }

    /// Counters of what `link` carries to `host`.
    pub fn rx_stats(&self, link: LinkId, host: HostId) -> LinkStats {
        self.dirs[self.host_dirs(link, host).1].dir.stats
    }

    /// Counters summed over every direction of `link`.
    pub fn link_stats(&self, link: LinkId) -> LinkStats {
        let mut total = LinkStats::default();
        for d in self.link_dirs(link) {
            total += self.dirs[d].dir.stats;
        }
        total
    }

    /// Configuration of what `host` sends into `link`.
    pub fn tx_config(&self, link: LinkId, host: HostId) -> &LinkConfig {
        self.dirs[self.host_dirs(link, host).0].dir.config()
    }

    /// Reconfigures what `host` sends into `link`.
    pub fn set_tx_config(&mut self, link: LinkId, host: HostId, cfg: LinkConfig) {
        let d = self.host_dirs(link, host).0;
        self.dirs[d].dir.set_config(cfg);
    }

    /// Reconfigures what `link` carries to `host`.
    pub fn set_rx_config(&mut self, link: LinkId, host: HostId, cfg: LinkConfig) {
        let d = self.host_dirs(link, host).1;
        self.dirs[d].dir.set_config(cfg);
    }

    /// Sets the link header length of every direction of `link` (see
    /// [`Direction::set_link_len`]).
    pub fn set_link_len(&mut self, link: LinkId, link_len: usize) {
        let dirs: Vec<DirId> = self.link_dirs(link).collect();
        for d in dirs {
            self.dirs[d].dir.set_link_len(link_len);
        }
    }

    /// Reconfigures every direction of a point-to-point link, or every
    /// downlink of a switch (uplinks become ideal), as at creation.
    pub fn set_config(&mut self, link: LinkId, cfg: &LinkConfig) {
        let dirs: Vec<DirId> = self.link_dirs(link).collect();
        for d in dirs {
            let slot = &mut self.dirs[d];
            let is_uplink = matches!(slot.dest, Dest::Switch { .. });
            slot.dir.set_config(if is_uplink {
                LinkConfig::ideal()
            } else {
                cfg.clone()
            });
        }
    }

    /// Bytes waiting in the queue of what `host` sends into `link` and of
    /// what `link` carries to `host`.
    pub fn queued_bytes(&mut self, now: Instant, link: LinkId, host: HostId) -> (usize, usize) {
        let (tx, rx) = self.host_dirs(link, host);
        (
            self.dirs[tx].dir.queued_bytes(now),
            self.dirs[rx].dir.queued_bytes(now),
        )
    }

    /// Starts capturing `link` to `path`.
    pub fn capture(
        &mut self,
        link: LinkId,
        path: &Path,
        start: Instant,
        point: CapturePoint,
        medium: stack::Medium,
    ) -> std::io::Result<()> {
        let capture = Capture::create(path, start, point, medium)?;
        self.link_mut(link).capture = Some(capture);
        Ok(())
    }

    /// Where `link` is being captured.
    pub fn capture_path(&self, link: LinkId) -> Option<&Path> {
        self.link(link).capture.as_ref().map(|c| c.path())
    }

    /// Writes out every capture's buffered records.
    pub fn flush_captures(&mut self) {
        for c in self.links.iter_mut().filter_map(|l| l.capture.as_mut()) {
            c.flush();
        }
    }

    /// Frames in flight (those held back for reordering included).
    pub fn in_flight(&self) -> usize {
        self.heap.len() + self.dirs.iter().map(|d| d.dir.held_frames()).sum::<usize>()
    }

    /// When the next frame arrives somewhere (or a frame held back for
    /// reordering reaches its deadline).
    pub fn next_at(&self) -> Option<Instant> {
        let deadlines = self.dirs.iter().filter_map(|d| d.dir.deadline());
        self.heap
            .peek()
            .map(|Reverse(f)| f.at)
            .into_iter()
            .chain(deadlines)
            .min()
    }

    /// Frames due at `now` or earlier.
    pub fn due(&self, now: Instant) -> usize {
        let held = self
            .dirs
            .iter()
            .filter(|d| d.dir.deadline().is_some_and(|t| t <= now))
            .count();
        self.heap.iter().filter(|Reverse(f)| f.at <= now).count() + held
    }

    /// Puts the arrivals a direction decided on the heap.
    fn schedule(&mut self, dir: DirId, frame: &[u8]) {
        let mut arrivals = std::mem::take(&mut self.arrivals);
        for arrival in arrivals.drain(..) {
            let buf = match arrival.frame {
                Carried::Held(buf) => buf,
                Carried::Entering(flip) => {
                    let mut buf = self.pool.pop().unwrap_or_default();
                    buf.clear();
                    buf.extend_from_slice(frame);
                    if let Some(flip) = flip {
                        flip.apply(&mut buf);
                    }
                    buf
                }
            };
            self.seq += 1;
            self.heap.push(Reverse(InFlight {
                at: arrival.at,
                seq: self.seq,
                dir,
                buf,
            }));
        }
        self.arrivals = arrivals;
    }

    /// Releases the frames held back for reordering whose deadline has come.
    fn expire_held(&mut self, now: Instant) {
        for dir in 0..self.dirs.len() {
            if self.dirs[dir].dir.deadline().is_some_and(|t| t <= now) {
                self.dirs[dir].dir.expire(now, &mut self.arrivals);
                self.schedule(dir, &[]);
            }
        }
    }

    /// Whether direction `dir` carries super segments whole.
    pub fn carries_super_segments(&self, dir: DirId) -> bool {
        self.dirs[dir].dir.config().gso
    }

    /// A frame enters direction `dir` at `now`.
    pub fn transmit(&mut self, now: Instant, dir: DirId, frame: &[u8]) {
        let slot = &mut self.dirs[dir];
        slot.dir.enter(now, frame, &mut self.arrivals);
        if slot.from_host
            && let Some(c) = &mut self.links[slot.link].capture
            && c.point == CapturePoint::Send
        {
            c.record(now, frame);
        }
        self.schedule(dir, frame);
    }

    /// Gives a frame buffer back for reuse.
    pub fn recycle(&mut self, buf: Vec<u8>) {
        if self.pool.len() < POOL_LIMIT {
            self.pool.push(buf);
        }
    }

    /// The next frame due at `now` for a host, switching frames that reach a
    /// switch on the way (they continue at once, so a switch adds no delay
    /// of its own). The caller recycles the buffer.
    pub fn next_delivery(&mut self, now: Instant) -> Option<(HostId, Vec<u8>)> {
        self.expire_held(now);
        loop {
            if self.heap.peek().is_none_or(|Reverse(f)| f.at > now) {
                return None;
            }
            let Reverse(frame) = self.heap.pop()?;
            let slot = &mut self.dirs[frame.dir];
            slot.dir.stats.delivered += 1;
            slot.dir.stats.bytes_delivered += frame.buf.len() as u64;
            let (dest, link_index) = (slot.dest, slot.link);
            match dest {
                Dest::Host(host) => {
                    if let Some(c) = &mut self.links[link_index].capture
                        && c.point == CapturePoint::Delivery
                    {
                        c.record(now, &frame.buf);
                    }
                    return Some((host, frame.buf));
                }
                Dest::Switch { link, port } => {
                    self.switch(now, link, port, &frame.buf);
                    self.recycle(frame.buf);
                }
            }
        }
    }

    /// Forwards a frame that reached switch `link` from `in_port`: to the
    /// port of its destination MAC; broadcast, multicast and unknown unicast
    /// to every other port.
    fn switch(&mut self, now: Instant, link: usize, in_port: usize, frame: &[u8]) {
        let Topology::Switch { ports, by_mac } = &self.links[link].topo else {
            return;
        };
        let mut out = std::mem::take(&mut self.scratch);
        out.clear();
        let dst = frame
            .get(..6)
            .and_then(|b| <[u8; 6]>::try_from(b).ok())
            .map(MacAddr);
        match dst.and_then(|mac| by_mac.get(&mac)) {
            Some(&p) if p == in_port => {} // no hairpin
            Some(&p) => out.push(ports[p].down),
            None if dst.is_none() => {} // runt: nothing to switch on
            None => out.extend(
                ports
                    .iter()
                    .enumerate()
                    .filter(|&(i, _)| i != in_port)
                    .map(|(_, p)| p.down),
            ),
        }
        for &d in &out {
            self.transmit(now, d, frame);
        }
        self.scratch = out;
    }
}
