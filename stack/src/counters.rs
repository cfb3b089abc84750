//! Counters: traffic totals and one counter per drop reason, so every
//! discarded packet can be accounted for.

use std::fmt;

macro_rules! drop_reasons {
    ($($variant:ident => $name:literal,)*) => {
        /// Why a packet (or frame, or datagram) was discarded.
        #[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
        #[repr(u16)]
        pub enum DropReason {
            $(#[doc = $name] $variant,)*
        }

        impl DropReason {
            /// Every reason, in declaration order.
            pub const ALL: &'static [DropReason] = &[$(DropReason::$variant,)*];
            /// Number of reasons.
            pub const COUNT: usize = Self::ALL.len();

            /// The variant's name in CamelCase (stable; see [`DropReason::key`]).
            pub fn ident(self) -> &'static str {
                match self {
                    $(DropReason::$variant => stringify!($variant),)*
                }
            }

            /// A short, stable, human-readable name ("layer: what").
            pub fn name(self) -> &'static str {
                match self {
                    $(DropReason::$variant => $name,)*
                }
            }
        }
    };
}

drop_reasons! {
    EthTruncated => "ethernet: truncated frame",
    EthIeee8023 => "ethernet: IEEE 802.3 length frame",
    EthNotForUs => "ethernet: destination is not our MAC",
    EthBadSource => "ethernet: multicast source address",
    EthUnsupportedType => "ethernet: unsupported ethertype",
    IpNotIpv4 => "ip link: packet of another IP version (IPv6)",
    ArpMalformed => "arp: truncated or malformed",
    ArpUnsupported => "arp: unsupported hardware/protocol/operation",
    ArpNotForUs => "arp: request for another address",
    ArpAddressConflict => "arp: another host claims our address",
    ArpQueueFull => "arp: queue for unresolved address full",
    ArpCacheFull => "arp: neighbor cache full",
    ArpTotalQueueFull => "arp: all queues for unresolved addresses full",
    ArpUnresolved => "arp: next hop did not answer",
    Ipv4Truncated => "ipv4: truncated",
    Ipv4BadVersion => "ipv4: version is not 4",
    Ipv4BadHeaderLength => "ipv4: header length below 20",
    Ipv4BadTotalLength => "ipv4: total length below header length",
    Ipv4BadChecksum => "ipv4: bad header checksum",
    Ipv4TtlZero => "ipv4: TTL zero",
    Ipv4NotForUs => "ipv4: destination is not us",
    Ipv4BadSource => "ipv4: martian source (0/8, 127/8, multicast, broadcast, 240/4, ours)",
    Ipv4UnknownProtocol => "ipv4: unknown protocol",
    FragBadLength => "reassembly: fragment length not a multiple of 8",
    FragTooLong => "reassembly: datagram over 65535 bytes (ping of death)",
    FragOverlapConflict => "reassembly: overlapping fragments disagree",
    FragInconsistent => "reassembly: fragments disagree on the length",
    FragNoMemory => "reassembly: fragment larger than the memory cap",
    FragTimeout => "reassembly: datagram timed out incomplete",
    FragEvicted => "reassembly: datagram evicted (memory cap)",
    FragTooManyPieces => "reassembly: too many fragments for one datagram",
    FragNoBudget => "reassembly: fragment dropped (stack memory budget)",
    Ipv4NoRoute => "ipv4: no route to destination",
    Ipv4TooBig => "ipv4: larger than MTU with DF set",
    IcmpMalformed => "icmp: truncated",
    IcmpBadChecksum => "icmp: bad checksum",
    IcmpBroadcastEcho => "icmp: echo request to broadcast",
    IcmpUnsupported => "icmp: type not handled",
    IcmpNoSocket => "icmp: echo reply for no socket",
    IcmpSocketFull => "icmp: socket receive queue full",
    IcmpErrorRateLimited => "icmp: error not sent (rate limit)",
    IcmpErrorUnmatched => "icmp: error about no known socket",
    IcmpFragNeededStale => "icmp: fragmentation needed for a sequence number not in flight",
    UdpTruncated => "udp: truncated",
    UdpBadLength => "udp: bad length field",
    UdpBadChecksum => "udp: bad checksum",
    UdpNoSocket => "udp: no socket on port",
    UdpQueueFull => "udp: socket receive queue full",
    UdpNoMemory => "udp: datagram dropped (stack memory budget)",
    TcpTruncated => "tcp: truncated",
    TcpBadOffset => "tcp: bad data offset",
    TcpBadOption => "tcp: malformed option length",
    TcpBadChecksum => "tcp: bad checksum",
    TcpToBroadcast => "tcp: segment to a broadcast address",
    TcpNoSocket => "tcp: no connection or listener (reset sent)",
    TcpListenOverflow => "tcp: listen queue full (SYN dropped)",
    TcpListenBadSegment => "tcp: non-SYN segment to a listener",
    TcpAcceptQueueFull => "tcp: accept queue full (handshake ACK dropped)",
    TcpCookieInvalid => "tcp: ACK with an invalid or stale SYN cookie",
    TcpSynNoRoute => "tcp: SYN from a source with no route back",
    TcpSynNoMemory => "tcp: SYN refused with a reset (memory budget exhausted)",
    TcpDataNoMemory => "tcp: segment data dropped (memory budget)",
    TcpOutOfOrderFull => "tcp: out-of-order segment dropped (range or store limit)",
    TcpTimeWaitRst => "tcp: reset in TIME-WAIT ignored (RFC 1337)",
    DeviceTxError => "device: transmit failed",
    Ipv4MartianDestination => "ipv4: loopback (127/8) destination from the device",
    LoopbackQueueFull => "loopback: queue full (packet to ourselves dropped)",
    LoopbackSourceOffHost => "ipv4: loopback (127/8) source towards another host",
    LoopbackMalformed => "loopback: packet unusable on input",
}

/// Traffic and drop counters of one interface.
#[derive(Clone, Debug)]
pub struct Counters {
    /// Frames received from the device.
    pub frames_in: u64,
    /// Frames handed to the device.
    pub frames_out: u64,
    /// Bytes received from the device.
    pub bytes_in: u64,
    /// Bytes handed to the device.
    pub bytes_out: u64,
    /// ARP requests answered.
    pub arp_replies_sent: u64,
    /// ARP requests sent (resolution, probes, announcements).
    pub arp_requests_sent: u64,
    /// IPv4 packets delivered to a local protocol.
    pub ipv4_delivered: u64,
    /// IPv4 packets sent.
    pub ipv4_sent: u64,
    /// ICMP echo requests answered.
    pub icmp_echo_replies_sent: u64,
    /// ICMP error messages sent (unreachable, time exceeded).
    pub icmp_errors_sent: u64,
    /// ICMP error messages received and acted on.
    pub icmp_errors_received: u64,
    /// Fragments sent.
    pub fragments_sent: u64,
    /// Fragments received.
    pub fragments_received: u64,
    /// Datagrams reassembled.
    pub reassembled: u64,
    /// UDP datagrams queued on a socket.
    pub udp_delivered: u64,
    /// UDP datagrams sent.
    pub udp_sent: u64,
    /// TCP segments received (valid, for a connection or listener).
    pub tcp_segments_in: u64,
    /// TCP segments sent.
    pub tcp_segments_out: u64,
    /// TCP resets sent for segments that matched no connection.
    pub tcp_resets_sent: u64,
    /// TCP connections opened actively (connect).
    pub tcp_active_opens: u64,
    /// TCP connections accepted by listeners (SYN-ACK sent).
    pub tcp_passive_opens: u64,
    /// What the defences against hostile peers did.
    pub defenses: Defenses,
    /// The memory budget (filled in by [`Interface::counters`](crate::Interface::counters)).
    pub memory: crate::memory::MemoryStats,
    drops: [u64; DropReason::COUNT],
    /// IPv4 packets to our own address or 127/8 delivered through the
    /// loopback path (never handed to the device).
    pub loopback_delivered: u64,
    /// Packets dropped because address resolution of their next hop
    /// failed, reported to their sockets as a locally generated ICMP host
    /// unreachable (Linux `arp_error_report`).
    pub arp_failures_reported: u64,
}

/// What each defence against hostile peers did, so that an operator can
/// see which one fired. Gauges (current values) are marked as such.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Defenses {
    /// SYN-ACKs sent with a SYN cookie (RFC 4987) instead of keeping state.
    pub syncookies_sent: u64,
    /// Connections created from a valid SYN cookie.
    pub syncookies_valid: u64,
    /// Half-open connections evicted (oldest first) to make room.
    pub half_open_evicted: u64,
    /// Half-open connections given up after the SYN-ACK retries.
    pub half_open_timed_out: u64,
    /// Connections that entered TIME-WAIT as a compact record.
    pub time_wait_records: u64,
    /// Gauge: TIME-WAIT records held now.
    pub time_wait_now: u64,
    /// Connections closed without TIME-WAIT because the record table was
    /// full (`max_time_wait`, like Linux's `tcp_max_tw_buckets`).
    pub time_wait_overflow: u64,
    /// Gauge: orphaned connections (closed by the application, finishing
    /// in the background).
    pub orphans_now: u64,
    /// Connections reset at close because `max_orphans` were already
    /// finishing in the background.
    pub orphans_over_limit: u64,
    /// Orphans given up after `orphan_retries` timeouts or probes.
    pub orphans_gave_up: u64,
    /// Connections reset because data arrived after close (RFC 1122
    /// 4.2.2.13).
    pub resets_on_data_after_close: u64,
    /// Connections ended by the user timeout on a zero window.
    pub persist_timeouts: u64,
    /// ACKs not sent in answer to unacceptable segments (RFC 5961 7).
    pub acks_throttled: u64,
    /// Out-of-order bytes released because the memory budget ran out.
    pub out_of_order_pruned_bytes: u64,
    /// ARP packets whose sender is not on our prefix (not learned).
    pub arp_foreign_senders: u64,
    /// ARP cache entries evicted (least recently used, unsolicited and
    /// pending entries first).
    pub arp_evictions: u64,
    /// Neighbor MAC changes accepted (each is logged as a warning).
    pub arp_mac_changes: u64,
    /// Neighbor MAC changes refused within the lock time.
    pub arp_mac_changes_locked: u64,
}

impl fmt::Display for Defenses {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "defenses:   {:>12} SYN cookies sent, {} valid; {} half-open evicted, {} timed out",
            self.syncookies_sent,
            self.syncookies_valid,
            self.half_open_evicted,
            self.half_open_timed_out
        )?;
        writeln!(
            f,
            "            {:>12} TIME-WAIT records ({} now, {} over the limit); {} orphans now, \
             {} over the limit, {} gave up",
            self.time_wait_records,
            self.time_wait_now,
            self.time_wait_overflow,
            self.orphans_now,
            self.orphans_over_limit,
            self.orphans_gave_up
        )?;
        writeln!(
            f,
            "            {:>12} resets on data after close, {} persist timeouts, {} ACKs throttled, \
             {} out-of-order bytes pruned",
            self.resets_on_data_after_close,
            self.persist_timeouts,
            self.acks_throttled,
            self.out_of_order_pruned_bytes
        )?;
        writeln!(
            f,
            "            {:>12} ARP senders off our prefix, {} evictions, {} MAC changes ({} refused)",
            self.arp_foreign_senders,
            self.arp_evictions,
            self.arp_mac_changes,
            self.arp_mac_changes_locked
        )
    }
}

impl Default for Counters {
    fn default() -> Self {
        Counters {
            frames_in: 0,
            frames_out: 0,
            bytes_in: 0,
            bytes_out: 0,
            arp_replies_sent: 0,
            arp_requests_sent: 0,
            ipv4_delivered: 0,
            ipv4_sent: 0,
            icmp_echo_replies_sent: 0,
            icmp_errors_sent: 0,
            icmp_errors_received: 0,
            fragments_sent: 0,
            fragments_received: 0,
            reassembled: 0,
            udp_delivered: 0,
            udp_sent: 0,
            tcp_segments_in: 0,
            tcp_segments_out: 0,
            tcp_resets_sent: 0,
            tcp_active_opens: 0,
            tcp_passive_opens: 0,
            defenses: Defenses::default(),
            memory: crate::memory::MemoryStats::default(),
            drops: [0; DropReason::COUNT],
            loopback_delivered: 0,
            arp_failures_reported: 0,
        }
    }
}

/// One counter of [`Counters::entries`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CounterEntry {
    /// Stable snake_case name (`frames_in`, `defenses_syncookies_sent`,
    /// `memory_used`, `drop_tcp_bad_checksum`, ...).
    pub name: String,
    /// The value.
    pub value: u64,
    /// A gauge (a current value) rather than a total that only grows.
    pub gauge: bool,
    /// One line of description.
    pub help: &'static str,
}

impl DropReason {
    /// The stable snake_case key of the reason (`tcp_bad_checksum`), as
    /// used in `drop_<key>` counter names.
    pub fn key(self) -> String {
        snake_case(self.ident())
    }
}

fn snake_case(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 4);
    let mut prev_lower = false;
    for c in camel.chars() {
        if c.is_ascii_uppercase() {
            if prev_lower {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
            prev_lower = false;
        } else {
            out.push(c);
            prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        }
    }
    out
}

impl Counters {
    /// Every counter with a stable name, in a fixed order: the traffic
    /// totals, `defenses_*`, `memory_*`, `drops_total`, then one
    /// `drop_<reason>` per [`DropReason`] (zero or not). Names are never
    /// renamed; new counters are only appended to their group.
    pub fn entries(&self) -> Vec<CounterEntry> {
        let mut v = Vec::with_capacity(64 + DropReason::COUNT);
        let mut add = |name: &str, value: u64, gauge: bool, help: &'static str| {
            v.push(CounterEntry {
                name: name.to_string(),
                value,
                gauge,
                help,
            })
        };
        add(
            "frames_in",
            self.frames_in,
            false,
            "Frames received from the device.",
        );
        add(
            "frames_out",
            self.frames_out,
            false,
            "Frames handed to the device.",
        );
        add(
            "bytes_in",
            self.bytes_in,
            false,
            "Bytes received from the device.",
        );
        add(
            "bytes_out",
            self.bytes_out,
            false,
            "Bytes handed to the device.",
        );
        add(
            "arp_replies_sent",
            self.arp_replies_sent,
            false,
            "ARP requests answered.",
        );
        add(
            "arp_requests_sent",
            self.arp_requests_sent,
            false,
            "ARP requests sent.",
        );
        add(
            "ipv4_delivered",
            self.ipv4_delivered,
            false,
            "IPv4 packets delivered locally.",
        );
        add("ipv4_sent", self.ipv4_sent, false, "IPv4 packets sent.");
        add(
            "icmp_echo_replies_sent",
            self.icmp_echo_replies_sent,
            false,
            "ICMP echo requests answered.",
        );
        add(
            "icmp_errors_sent",
            self.icmp_errors_sent,
            false,
            "ICMP error messages sent.",
        );
        add(
            "icmp_errors_received",
            self.icmp_errors_received,
            false,
            "ICMP error messages received and acted on.",
        );
        add(
            "fragments_sent",
            self.fragments_sent,
            false,
            "IPv4 fragments sent.",
        );
        add(
            "fragments_received",
            self.fragments_received,
            false,
            "IPv4 fragments received.",
        );
        add(
            "reassembled",
            self.reassembled,
            false,
            "IPv4 datagrams reassembled.",
        );
        add(
            "udp_delivered",
            self.udp_delivered,
            false,
            "UDP datagrams queued on a socket.",
        );
        add("udp_sent", self.udp_sent, false, "UDP datagrams sent.");
        add(
            "tcp_segments_in",
            self.tcp_segments_in,
            false,
            "TCP segments received.",
        );
        add(
            "tcp_segments_out",
            self.tcp_segments_out,
            false,
            "TCP segments sent.",
        );
        add(
            "tcp_resets_sent",
            self.tcp_resets_sent,
            false,
            "TCP resets sent for segments matching no connection.",
        );
        add(
            "tcp_active_opens",
            self.tcp_active_opens,
            false,
            "TCP connections opened actively.",
        );
        add(
            "tcp_passive_opens",
            self.tcp_passive_opens,
            false,
            "TCP connections accepted by listeners.",
        );
        add(
            "loopback_delivered",
            self.loopback_delivered,
            false,
            "IPv4 packets delivered through the loopback path.",
        );
        add(
            "arp_failures_reported",
            self.arp_failures_reported,
            false,
            "Packets dropped after failed address resolution.",
        );
        let d = &self.defenses;
        add(
            "defenses_syncookies_sent",
            d.syncookies_sent,
            false,
            "SYN-ACKs sent with a SYN cookie.",
        );
        add(
            "defenses_syncookies_valid",
            d.syncookies_valid,
            false,
            "Connections created from a valid SYN cookie.",
        );
        add(
            "defenses_half_open_evicted",
            d.half_open_evicted,
            false,
            "Half-open connections evicted.",
        );
        add(
            "defenses_half_open_timed_out",
            d.half_open_timed_out,
            false,
            "Half-open connections given up.",
        );
        add(
            "defenses_time_wait_records",
            d.time_wait_records,
            false,
            "Connections that entered TIME-WAIT as a record.",
        );
        add(
            "defenses_time_wait_now",
            d.time_wait_now,
            true,
            "TIME-WAIT records held now.",
        );
        add(
            "defenses_time_wait_overflow",
            d.time_wait_overflow,
            false,
            "Connections closed without TIME-WAIT (table full).",
        );
        add(
            "defenses_orphans_now",
            d.orphans_now,
            true,
            "Orphaned connections now.",
        );
        add(
            "defenses_orphans_over_limit",
            d.orphans_over_limit,
            false,
            "Connections reset at close over max_orphans.",
        );
        add(
            "defenses_orphans_gave_up",
            d.orphans_gave_up,
            false,
            "Orphans given up after their retries.",
        );
        add(
            "defenses_resets_on_data_after_close",
            d.resets_on_data_after_close,
            false,
            "Connections reset for data after close.",
        );
        add(
            "defenses_persist_timeouts",
            d.persist_timeouts,
            false,
            "Connections ended by the user timeout on a zero window.",
        );
        add(
            "defenses_acks_throttled",
            d.acks_throttled,
            false,
            "ACKs not sent to unacceptable segments (RFC 5961).",
        );
        add(
            "defenses_out_of_order_pruned_bytes",
            d.out_of_order_pruned_bytes,
            false,
            "Out-of-order bytes released under memory pressure.",
        );
        add(
            "defenses_arp_foreign_senders",
            d.arp_foreign_senders,
            false,
            "ARP packets from senders off our prefix.",
        );
        add(
            "defenses_arp_evictions",
            d.arp_evictions,
            false,
            "ARP cache entries evicted.",
        );
        add(
            "defenses_arp_mac_changes",
            d.arp_mac_changes,
            false,
            "Neighbor MAC changes accepted.",
        );
        add(
            "defenses_arp_mac_changes_locked",
            d.arp_mac_changes_locked,
            false,
            "Neighbor MAC changes refused.",
        );
        let m = &self.memory;
        add(
            "memory_limit",
            m.limit as u64,
            true,
            "Memory budget limit, bytes.",
        );
        add(
            "memory_used",
            m.used as u64,
            true,
            "Memory budget charged now, bytes.",
        );
        add(
            "memory_peak",
            m.peak as u64,
            true,
            "Most memory budget ever charged, bytes.",
        );
        add(
            "memory_tcp",
            m.tcp as u64,
            true,
            "Memory charged to TCP connections, bytes.",
        );
        add(
            "memory_time_wait",
            m.time_wait as u64,
            true,
            "Memory charged to TIME-WAIT records, bytes.",
        );
        add(
            "memory_reassembly",
            m.reassembly as u64,
            true,
            "Memory charged to IP reassembly, bytes.",
        );
        add(
            "memory_arp",
            m.arp as u64,
            true,
            "Memory charged to ARP, bytes.",
        );
        add(
            "memory_udp",
            m.udp as u64,
            true,
            "Memory charged to UDP queues, bytes.",
        );
        let state = match m.state {
            crate::memory::MemoryPressure::Normal => 0,
            crate::memory::MemoryPressure::Pressure => 1,
            crate::memory::MemoryPressure::Exhausted => 2,
        };
        add(
            "memory_state",
            state,
            true,
            "Memory state: 0 normal, 1 pressure, 2 exhausted.",
        );
        add(
            "memory_pressure_events",
            m.pressure_events,
            false,
            "Times the stack came under memory pressure.",
        );
        add(
            "memory_exhausted_events",
            m.exhausted_events,
            false,
            "Times the memory limit was reached.",
        );
        add(
            "drops_total",
            self.total_drops(),
            false,
            "Packets dropped, all reasons.",
        );
        for r in DropReason::ALL {
            v.push(CounterEntry {
                name: format!("drop_{}", r.key()),
                value: self.drops(*r),
                gauge: false,
                help: r.name(),
            });
        }
        v
    }

    /// Counts one drop.
    #[inline]
    pub fn drop(&mut self, reason: DropReason) {
        self.drops[reason as usize] += 1;
        log::trace!("drop: {}", reason.name());
    }

    /// Counts `n` drops.
    #[inline]
    pub fn drop_n(&mut self, reason: DropReason, n: u64) {
        self.drops[reason as usize] += n;
    }

    /// How many packets were dropped for `reason`.
    pub fn drops(&self, reason: DropReason) -> u64 {
        self.drops[reason as usize]
    }

    /// Total drops over all reasons.
    pub fn total_drops(&self) -> u64 {
        self.drops.iter().sum()
    }

    /// The reasons with a non-zero count, with their counts.
    pub fn nonzero_drops(&self) -> impl Iterator<Item = (DropReason, u64)> + '_ {
        DropReason::ALL
            .iter()
            .map(|r| (*r, self.drops[*r as usize]))
            .filter(|(_, n)| *n > 0)
    }
}

impl fmt::Display for Counters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "frames in:  {:>12} ({} bytes)",
            self.frames_in, self.bytes_in
        )?;
        writeln!(
            f,
            "frames out: {:>12} ({} bytes)",
            self.frames_out, self.bytes_out
        )?;
        writeln!(
            f,
            "arp:        {:>12} requests sent, {} replies sent",
            self.arp_requests_sent, self.arp_replies_sent
        )?;
        writeln!(
            f,
            "ipv4:       {:>12} delivered, {} sent",
            self.ipv4_delivered, self.ipv4_sent
        )?;
        writeln!(
            f,
            "icmp:       {:>12} echo replies sent, {} errors sent, {} errors received",
            self.icmp_echo_replies_sent, self.icmp_errors_sent, self.icmp_errors_received
        )?;
        writeln!(
            f,
            "fragments:  {:>12} received, {} sent, {} datagrams reassembled",
            self.fragments_received, self.fragments_sent, self.reassembled
        )?;
        writeln!(
            f,
            "udp:        {:>12} delivered, {} sent",
            self.udp_delivered, self.udp_sent
        )?;
        writeln!(
            f,
            "tcp:        {:>12} segments in, {} out, {} resets sent, {} active / {} passive opens",
            self.tcp_segments_in,
            self.tcp_segments_out,
            self.tcp_resets_sent,
            self.tcp_active_opens,
            self.tcp_passive_opens
        )?;
        write!(f, "{}", self.defenses)?;
        write!(f, "{}", self.memory)?;
        writeln!(f, "drops:      {:>12}", self.total_drops())?;
        for (reason, n) in self.nonzero_drops() {
            writeln!(f, "  {:>10}  {}", n, reason.name())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
