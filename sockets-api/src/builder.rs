//! Starting a stack: on a TAP or TUN device, or on an in-memory link.

use std::io;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ethernet::MacAddr;
use ip::{Ipv4Cidr, Route};
use stack::device::{
    Device, FaultConfig, FaultDevice, FaultStatsHandle, Medium, MemoryDevice, PcapDevice,
    PcapWriter, TapConfig, TapDevice, TunDevice, memory_pair,
};
use stack::runtime::Waker;
use stack::{Interface, InterfaceConfig};
use tcp::cc::Algorithm;

use crate::runtime::{Core, LoopOptions, Shared};
use crate::{Stack, StackInner};

enum DeviceSpec {
    Tap(TapConfig),
    Tun(TapConfig),
    Memory,
    /// A device the user built ([`StackBuilder::device`]); taken by start.
    Custom(Option<Box<dyn Device + Send>>),
}

impl DeviceSpec {
    /// The TAP or TUN configuration.
    fn kernel(&mut self) -> Option<&mut TapConfig> {
        match self {
            DeviceSpec::Tap(t) | DeviceSpec::Tun(t) => Some(t),
            DeviceSpec::Memory | DeviceSpec::Custom(_) => None,
        }
    }
}

/// Configures and starts a [`Stack`].
///
/// ```no_run
/// # fn main() -> std::io::Result<()> {
/// let stack = sockets_api::StackBuilder::tap("tap0")
///     .addr("10.0.0.2/24".parse().unwrap())
///     .host_addr("10.0.0.1/24".parse().unwrap())
///     .start()?;
/// # Ok(()) }
/// ```
pub struct StackBuilder {
    device: DeviceSpec,
    addr: Option<Ipv4Cidr>,
    gateway: Option<Ipv4Addr>,
    routes: Vec<Route>,
    mac: Option<MacAddr>,
    mtu: Option<usize>,
    ttl: u8,
    pcap: Option<PathBuf>,
    capture_loopback: bool,
    faults: FaultConfig,
    congestion: Algorithm,
    busy_poll: Duration,
    shutdown_linger: Duration,
    seed: Option<u64>,
    tcp: Option<tcp::TcpConfig>,
    tcp_limits: stack::TcpLimits,
    mem_limit: usize,
}

impl StackBuilder {
    fn new(device: DeviceSpec) -> Self {
        StackBuilder {
            device,
            addr: None,
            gateway: None,
            routes: Vec::new(),
            mac: None,
            mtu: None,
            ttl: 64,
            pcap: None,
            capture_loopback: false,
            faults: FaultConfig::default(),
            congestion: Algorithm::default(),
            busy_poll: Duration::from_micros(50),
            shutdown_linger: Duration::from_secs(10),
            seed: None,
            tcp: None,
            tcp_limits: stack::TcpLimits::default(),
            mem_limit: stack::DEFAULT_MEM_LIMIT,
        }
    }

    /// A stack on TAP device `name` (created if missing).
    pub fn tap(name: impl Into<String>) -> Self {
        Self::new(DeviceSpec::Tap(TapConfig::new(name)))
    }

    /// A stack on TUN device `name` (created if missing): an IP link, bare
    /// IPv4 packets with no Ethernet header and no ARP
    /// ([`Medium::Ip`](stack::Medium::Ip)). [`host_addr`](Self::host_addr)
    /// gives the kernel's end of the link; [`mac`](Self::mac) is unused.
    ///
    /// ```no_run
    /// # fn main() -> std::io::Result<()> {
    /// let stack = sockets_api::StackBuilder::tun("tun0")
    ///     .addr("10.0.0.2/24".parse().unwrap())
    ///     .host_addr("10.0.0.1/24".parse().unwrap())
    ///     .start()?;
    /// # Ok(()) }
    /// ```
    pub fn tun(name: impl Into<String>) -> Self {
        Self::new(DeviceSpec::Tun(TapConfig::new(name)))
    }

    /// A stack on a device of your own: anything that implements
    /// [`Device`](stack::Device) (an AF_PACKET socket, a tunnel, a test
    /// harness).
    ///
    /// What the stack takes from it:
    /// - its [`medium`](stack::FrameSink::medium): Ethernet frames (ARP,
    ///   a MAC address) or bare IP packets ([`Medium::Ip`](stack::Medium::Ip));
    /// - its [`mtu`](stack::Device::mtu), the largest IP packet a frame
    ///   carries ([`mtu`](Self::mtu) may only lower it);
    /// - its [`checksum_caps`](stack::Device::checksum_caps): whether it
    ///   takes TCP super segments whole, whether a received segment's
    ///   checksum is vouched for (none by default: plain frames both ways);
    /// - its [`raw_fd`](stack::Device::raw_fd), a descriptor that becomes
    ///   readable when frames may be waiting, for the stack thread to sleep
    ///   on. A device without one is polled every millisecond.
    ///
    /// [`recv`](stack::Device::recv) must not block. `host_addr` and
    /// `offload` do not apply; `pcap` and `faults` wrap the device as they
    /// wrap a TAP device. `sockets-api/examples/udp_tunnel.rs` carries IP
    /// packets between two processes over a kernel UDP socket.
    pub fn device(device: impl Device + Send + 'static) -> Self {
        Self::new(DeviceSpec::Custom(Some(Box::new(device))))
    }

    /// A stack for an in-memory link; see [`StackBuilder::memory_pair`].
    pub fn memory() -> Self {
        Self::new(DeviceSpec::Memory)
    }

    /// Our address and prefix (required).
    pub fn addr(mut self, addr: Ipv4Cidr) -> Self {
        self.addr = Some(addr);
        self
    }

    /// Default gateway.
    pub fn gateway(mut self, gw: Ipv4Addr) -> Self {
        self.gateway = Some(gw);
        self
    }

    /// An extra route.
    pub fn route(mut self, route: Route) -> Self {
        self.routes.push(route);
        self
    }

    /// Our MAC address (default: random, locally administered).
    pub fn mac(mut self, mac: MacAddr) -> Self {
        self.mac = Some(mac);
        self
    }

    /// Link MTU (also set on the TAP or TUN device).
    pub fn mtu(mut self, mtu: usize) -> Self {
        self.mtu = Some(mtu);
        if let Some(t) = self.device.kernel() {
            t.mtu = Some(mtu);
        }
        self
    }

    /// TTL of the datagrams sent.
    pub fn ttl(mut self, ttl: u8) -> Self {
        self.ttl = ttl;
        self
    }

    /// Give the kernel side of the TAP or TUN device this address.
    pub fn host_addr(mut self, addr: Ipv4Cidr) -> Self {
        if let Some(t) = self.device.kernel() {
            t.host_addr = Some(addr);
        }
        self
    }

    /// TAP and TUN receive offload (on by default): the kernel may hand
    /// over TCP segments of up to 64 KiB, one `read` instead of up to 45,
    /// and takes TCP super segments whole. Fault injection keeps them: it
    /// draws every fault per wire segment of a super segment.
    pub fn offload(mut self, on: bool) -> Self {
        if let Some(t) = self.device.kernel() {
            t.offload = on;
        }
        self
    }

    /// Record every frame to this pcap file.
    pub fn pcap(mut self, path: impl Into<PathBuf>) -> Self {
        self.pcap = Some(path.into());
        self
    }

    /// Also record the traffic the stack delivers to itself (its own
    /// address, 127.0.0.0/8) in the pcap file, as frames from its MAC
    /// address to itself. Off by default: that traffic never crosses the
    /// device.
    pub fn capture_loopback(mut self, on: bool) -> Self {
        self.capture_loopback = on;
        self
    }

    /// Inject faults between the stack and the device.
    pub fn faults(mut self, faults: FaultConfig) -> Self {
        self.faults = faults;
        self
    }

    /// Default congestion control of new connections.
    pub fn congestion(mut self, algorithm: Algorithm) -> Self {
        self.congestion = algorithm;
        self
    }

    /// TCP settings of new connections (buffers, timeouts...).
    pub fn tcp(mut self, cfg: tcp::TcpConfig) -> Self {
        self.tcp = Some(cfg);
        self
    }

    /// Limits on TCP state peers can make the stack hold: SYN cookies,
    /// TIME-WAIT records, orphaned connections.
    pub fn tcp_limits(mut self, limits: stack::TcpLimits) -> Self {
        self.tcp_limits = limits;
        self
    }

    /// The memory budget, in bytes, for everything peers can make the
    /// stack hold (default [`stack::DEFAULT_MEM_LIMIT`], 256 MiB).
    pub fn mem_limit(mut self, bytes: usize) -> Self {
        self.mem_limit = bytes;
        self
    }

    /// How long the stack thread busy-polls after activity (0: never).
    pub fn busy_poll(mut self, d: Duration) -> Self {
        self.busy_poll = d;
        self
    }

    /// On shutdown, how long to keep delivering data written before close.
    pub fn shutdown_linger(mut self, d: Duration) -> Self {
        self.shutdown_linger = d;
        self
    }

    /// Seed of the stack's randomness (and of fault injection when its own
    /// seed is zero): runs replay exactly.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    fn interface(&self, medium: Medium, mtu: usize, seed: u64) -> io::Result<Interface> {
        let addr = self.addr.ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "the stack needs an address")
        })?;
        let mac = self.mac.unwrap_or_else(|| {
            let mut s = seed ^ 0x9e37_79b9_7f4a_7c15;
            let mut bytes = [0u8; 6];
            for b in &mut bytes {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                *b = s as u8;
            }
            bytes[0] = (bytes[0] & 0xfc) | 0x02;
            MacAddr(bytes)
        });
        let mut cfg = InterfaceConfig::new(mac, addr);
        cfg.medium = medium;
        cfg.gateway = self.gateway;
        cfg.routes = self.routes.clone();
        cfg.mtu = mtu;
        cfg.ttl = self.ttl;
        cfg.seed = seed;
        if let Some(t) = &self.tcp {
            cfg.tcp = t.clone();
        }
        cfg.tcp.congestion = self.congestion;
        cfg.tcp_limits = self.tcp_limits;
        cfg.mem_limit = self.mem_limit;
        let mut iface = Interface::try_new(cfg, Instant::now())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
        iface.set_capture_loopback(self.capture_loopback && self.pcap.is_some());
        Ok(iface)
    }

    fn seed_value(&self) -> u64 {
        self.seed.unwrap_or_else(|| {
            let mut b = [0u8; 8];
            // SAFETY: `b` is valid for writes of 8 bytes.
            let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), 8, 0) };
            if n == 8 {
                u64::from_le_bytes(b)
            } else {
                Instant::now().elapsed().as_nanos() as u64 ^ std::process::id() as u64
            }
        })
    }

    /// Wraps `dev` in the pcap recorder and fault injector as configured.
    fn wrap<D: Device + Send + 'static>(&self, dev: D, seed: u64) -> io::Result<Wrapped> {
        let dev: Box<dyn Device + Send> = match &self.pcap {
            Some(path) => {
                let w = PcapWriter::create_for(path, dev.medium()).map_err(|e| {
                    io::Error::new(
                        e.kind(),
                        format!("cannot create pcap file {}: {e}", path.display()),
                    )
                })?;
                Box::new(PcapDevice::new(dev, w))
            }
            None => Box::new(dev),
        };
        if self.faults.is_noop() {
            return Ok((dev, None));
        }
        let mut faults = self.faults;
        self.faults
            .validate()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        if faults.seed == 0 {
            faults.seed = seed;
        }
        let dev = FaultDevice::new(dev, faults);
        let stats = dev.stats_handle();
        Ok((Box::new(dev), Some(stats)))
    }

    /// Opens the TAP or TUN device and starts the stack thread. A
    /// [`memory`](Self::memory) stack started alone sits on a link with
    /// nothing else on it (useful for local socket tests); use
    /// [`memory_pair`](Self::memory_pair) to join two.
    pub fn start(mut self) -> io::Result<Stack> {
        if let DeviceSpec::Custom(dev) = &mut self.device {
            let dev = dev
                .take()
                .ok_or_else(|| io::Error::other("the device was taken already"))?;
            let mtu = self.mtu.map_or(dev.mtu(), |m| m.min(dev.mtu()));
            let seed = self.seed_value();
            let iface = self.interface(dev.medium(), mtu, seed)?;
            let dev = self.wrap(dev, seed)?;
            return launch(iface, dev, seed, self.loop_options());
        }
        let (tap, medium) = match &self.device {
            DeviceSpec::Tap(t) => (t, Medium::Ethernet),
            DeviceSpec::Tun(t) => (t, Medium::Ip),
            DeviceSpec::Memory | DeviceSpec::Custom(_) => {
                let mtu = self.mtu.unwrap_or(1500);
                let (dev, _) = memory_pair(mtu)?;
                let seed = self.seed_value();
                let iface = self.interface(Medium::Ethernet, mtu, seed)?;
                let dev = self.wrap(dev, seed)?;
                return launch(iface, dev, seed, self.loop_options());
            }
        };
        let seed = self.seed_value();
        // Check the configuration before creating the device.
        self.interface(medium, self.mtu.unwrap_or(1500), seed)?;
        // The offloads stay on under fault injection: the injector draws
        // every fault per wire segment of a super segment, and passes the
        // untouched runs on whole, so both directions keep the costs they
        // have without it.
        let io_error = |e: &stack::device::TapError, message: String| {
            let kind = match e {
                stack::device::TapError::PermissionDenied(_) => io::ErrorKind::PermissionDenied,
                stack::device::TapError::NoTunDevice => io::ErrorKind::NotFound,
                _ => io::ErrorKind::Other,
            };
            io::Error::new(kind, message)
        };
        let dev: Box<dyn Device + Send> = match medium {
            Medium::Ethernet => Box::new(TapDevice::open(tap).map_err(|e| {
                let message = e.to_string();
                io_error(&e, message)
            })?),
            Medium::Ip => Box::new(TunDevice::open(tap).map_err(|e| {
                let message = e.to_string();
                io_error(&e.0, message)
            })?),
        };
        let mtu = dev.mtu();
        let iface = self.interface(medium, mtu, seed)?;
        let dev = self.wrap(dev, seed)?;
        launch(iface, dev, seed, self.loop_options())
    }

    /// Starts two stacks joined by an in-memory link (same MTU), each with
    /// its own thread.
    pub fn memory_pair(a: StackBuilder, b: StackBuilder) -> io::Result<(Stack, Stack)> {
        let mtu = a.mtu.or(b.mtu).unwrap_or(1500);
        let (da, db): (MemoryDevice, MemoryDevice) = memory_pair(mtu)?;
        let sa = a.seed_value();
        let sb = b.seed_value().wrapping_add(1);
        let ia = a.interface(Medium::Ethernet, mtu, sa)?;
        let ib = b.interface(Medium::Ethernet, mtu, sb)?;
        let da = a.wrap(da, sa)?;
        let db = b.wrap(db, sb)?;
        Ok((
            launch(ia, da, sa, a.loop_options())?,
            launch(ib, db, sb, b.loop_options())?,
        ))
    }

    fn loop_options(&self) -> LoopOptions {
        LoopOptions {
            busy_poll: self.busy_poll,
            shutdown_linger: self.shutdown_linger,
        }
    }
}

/// A device wrapped as configured, and the fault injector's counters if it
/// has one.
type Wrapped = (Box<dyn Device + Send>, Option<FaultStatsHandle>);

fn launch(
    mut iface: Interface,
    (dev, faults): Wrapped,
    seed: u64,
    opts: LoopOptions,
) -> io::Result<Stack> {
    iface.set_segmentation_offload(dev.segmentation_offload());
    let info = crate::StackInfo {
        addr: iface.cidr(),
        mac: iface.mac(),
        mtu: iface.mtu(),
    };
    let shared = Arc::new(Shared {
        core: Mutex::new(Core::new(iface, seed)),
        waker: Waker::new()?,
        sleeping: AtomicBool::new(false),
        app_work: AtomicBool::new(false),
    });
    let thread_shared = shared.clone();
    let thread = std::thread::Builder::new()
        .name(format!("ustack {}", info.addr))
        .spawn(move || crate::runtime::run(thread_shared, dev, opts))?;
    Ok(Stack {
        inner: Arc::new(StackInner {
            shared,
            info,
            faults,
            thread: Mutex::new(Some(thread)),
        }),
    })
}
