//! The stack's memory budget: one limit for everything a peer can make the
//! stack hold (TCP buffers, out-of-order data and SACK state, TIME-WAIT
//! records, IP reassembly, ARP queues, UDP queues), in the spirit of
//! Linux's `tcp_mem`, `udp_mem` and `ipfrag_high_thresh` together.
//!
//! Three states, with hysteresis like `tcp_mem`'s (min, pressure, max):
//!
//! - **normal** below 3/4 of the limit (entered again below 1/2): buffers
//!   grow as data needs;
//! - **pressure** from 3/4: TCP buffers stop growing past 64 KiB, windows
//!   offered are clamped, out-of-order data is held only in small amounts,
//!   new connections are answered with SYN cookies (no state until the
//!   handshake completes);
//! - **exhausted** at the limit (left below 7/8): nothing grows past a
//!   4 KiB floor per TCP buffer, out-of-order data is released, UDP
//!   datagrams and fragments that need memory are dropped, and new
//!   connections are refused with a reset.
//!
//! Every component reports what it holds, so the figures shown are the
//! stack's own view of its heap use (an estimate that includes fixed
//! per-object overheads).

use std::fmt;

pub use tcp::MemoryPressure;

/// Default budget: 256 MiB (`--mem-limit`). A quarter of a gigabyte holds
/// 128 connections with full 1 MiB send and receive buffers, or tens of
/// thousands of ordinary ones; set it to what the host can spare.
pub const DEFAULT_MEM_LIMIT: usize = 256 << 20;

/// The parts of the stack charged to the budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Component {
    /// TCP connections: control blocks, buffers, out-of-order data, SACK
    /// state.
    Tcp = 0,
    /// TIME-WAIT records.
    TimeWait,
    /// IP reassembly.
    Reassembly,
    /// ARP: cache entries and packets waiting for resolution.
    Arp,
    /// UDP receive queues.
    Udp,
}

const COMPONENTS: usize = 5;

/// The budget and what is charged to it.
#[derive(Clone, Debug)]
pub struct MemoryBudget {
    limit: usize,
    parts: [usize; COMPONENTS],
    used: usize,
    peak: usize,
    state: MemoryPressure,
    /// Times the state went from normal to pressure or worse.
    pressure_events: u64,
    /// Times the limit was reached.
    exhausted_events: u64,
}

impl MemoryBudget {
    /// A budget of `limit` bytes.
    pub fn new(limit: usize) -> Self {
        MemoryBudget {
            limit: limit.max(1),
            parts: [0; COMPONENTS],
            used: 0,
            peak: 0,
            state: MemoryPressure::Normal,
            pressure_events: 0,
            exhausted_events: 0,
        }
    }

    /// The limit in bytes.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Bytes charged now.
    pub fn used(&self) -> usize {
        self.used
    }

    /// The current state.
    pub fn state(&self) -> MemoryPressure {
        self.state
    }

    /// Bytes charged to one component.
    pub fn part(&self, c: Component) -> usize {
        self.parts[c as usize]
    }

    /// Sets what `c` holds now. Returns the state before, if it changed.
    pub fn set(&mut self, c: Component, bytes: usize) -> Option<MemoryPressure> {
        let old = std::mem::replace(&mut self.parts[c as usize], bytes);
        self.used = self.used - old + bytes;
        self.update()
    }

    /// Moves what `c` holds from `old` to `new` bytes (incremental
    /// charging). Returns the state before, if it changed.
    pub fn recharge(&mut self, c: Component, old: usize, new: usize) -> Option<MemoryPressure> {
        let part = &mut self.parts[c as usize];
        *part = (*part + new).saturating_sub(old);
        self.used = (self.used + new).saturating_sub(old);
        self.update()
    }

    /// True when `extra` more bytes would exceed the limit.
    pub fn would_exceed(&self, extra: usize) -> bool {
        self.used + extra > self.limit
    }

    fn update(&mut self) -> Option<MemoryPressure> {
        self.peak = self.peak.max(self.used);
        let (enter_pressure, leave_pressure) = (self.limit / 4 * 3, self.limit / 2);
        let leave_exhausted = self.limit / 8 * 7;
        let next = match self.state {
            MemoryPressure::Normal if self.used >= self.limit => MemoryPressure::Exhausted,
            MemoryPressure::Normal if self.used >= enter_pressure => MemoryPressure::Pressure,
            MemoryPressure::Pressure if self.used >= self.limit => MemoryPressure::Exhausted,
            MemoryPressure::Pressure if self.used < leave_pressure => MemoryPressure::Normal,
            MemoryPressure::Exhausted if self.used < leave_pressure => MemoryPressure::Normal,
            MemoryPressure::Exhausted if self.used < leave_exhausted => MemoryPressure::Pressure,
            s => s,
        };
        if next == self.state {
            return None;
        }
        if self.state == MemoryPressure::Normal {
            self.pressure_events += 1;
        }
        if next == MemoryPressure::Exhausted {
            self.exhausted_events += 1;
        }
        log::info!(
            "memory: {} of {} bytes in use: {:?} -> {:?}",
            self.used,
            self.limit,
            self.state,
            next
        );
        Some(std::mem::replace(&mut self.state, next))
    }

    /// A snapshot for the counters.
    pub fn stats(&self) -> MemoryStats {
        MemoryStats {
            limit: self.limit,
            used: self.used,
            peak: self.peak,
            tcp: self.part(Component::Tcp),
            time_wait: self.part(Component::TimeWait),
            reassembly: self.part(Component::Reassembly),
            arp: self.part(Component::Arp),
            udp: self.part(Component::Udp),
            state: self.state,
            pressure_events: self.pressure_events,
            exhausted_events: self.exhausted_events,
        }
    }
}

/// What the memory budget shows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryStats {
    /// The limit (`--mem-limit`).
    pub limit: usize,
    /// Bytes charged now.
    pub used: usize,
    /// Most bytes ever charged at once.
    pub peak: usize,
    /// TCP connections.
    pub tcp: usize,
    /// TIME-WAIT records.
    pub time_wait: usize,
    /// IP reassembly.
    pub reassembly: usize,
    /// ARP cache and queues.
    pub arp: usize,
    /// UDP queues.
    pub udp: usize,
    /// The current state.
    pub state: MemoryPressure,
    /// Times the stack came under pressure.
    pub pressure_events: u64,
    /// Times the limit was reached.
    pub exhausted_events: u64,
}

impl fmt::Display for MemoryStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            MemoryPressure::Normal => "normal",
            MemoryPressure::Pressure => "pressure",
            MemoryPressure::Exhausted => "exhausted",
        };
        writeln!(
            f,
            "memory:     {:>12} bytes of {} ({state}; peak {}; {} times under pressure, {} exhausted)",
            self.used, self.limit, self.peak, self.pressure_events, self.exhausted_events
        )?;
        writeln!(
            f,
            "            {:>12} tcp, {} time-wait, {} reassembly, {} arp, {} udp",
            self.tcp, self.time_wait, self.reassembly, self.arp, self.udp
        )
    }
}

#[cfg(test)]
mod tests;
