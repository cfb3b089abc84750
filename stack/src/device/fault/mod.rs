//! A seeded fault injector: loss, duplication, reordering, corruption, delay,
//! jitter and a rate limit, applied independently to each direction. See
//! [`FaultDevice`] for the semantics.
//!
//! The per-frame decisions (loss, corruption, duplication, and what
//! reordering means) live in [`model`], shared with the deterministic
//! simulator's links so that both impair frames the same way.

mod config;
mod lane;
pub mod model;
mod stats;

use std::fmt;
use std::io;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use super::{ChecksumCaps, Device, FrameSink};
pub use config::FaultConfig;
use lane::{Held, Lane, WirePieces};
use model::Verdict;
pub use stats::{DirectionStats, FaultStats, FaultStatsHandle};

/// Bytes each direction's rate limiter lets wait for serialization before it
/// tail-drops (1 MiB, about a thousand full-size frames).
pub const RATE_QUEUE_BYTES: usize = 1 << 20;

/// Bytes each direction may hold in total (delay line included). Only a very
/// large bandwidth-delay product reaches it; what does not fit is dropped
/// and counted in [`DirectionStats::overflow`], so memory stays bounded.
pub const MAX_HELD_BYTES: usize = 64 << 20;

/// Frames `recv` reads from the inner device per call, at most, before it
/// hands one to the stack.
const RX_PULL: usize = 64;

/// Largest `delay + jitter` accepted (keeps `Instant` arithmetic in range).
const MAX_DELAY: Duration = Duration::from_secs(3600);

/// Stream selectors mixed into the seed, one per direction.
const OUTBOUND_STREAM: u64 = 0x6f75_7462_6f75_6e64; // "outbound"
const INBOUND_STREAM: u64 = 0x696e_626f_756e_6421; // "inbound!"

/// A device wrapper that injects seeded faults in both directions.
///
/// The kernels ustack runs on have no netem, so every impairment its tests
/// need comes from this wrapper. It wraps another device, usually
/// `FaultDevice<PcapDevice<TapDevice>>` so that the capture shows what
/// actually crossed the wire (faults included), and treats the two
/// directions as two independent links:
///
/// - *outbound*: frames the stack hands to [`FrameSink::send`], on their way
///   to the inner device;
/// - *inbound*: frames read from the inner device, on their way to the stack
///   through [`Device::recv`].
///
/// # What happens to one frame
///
/// Each direction runs every frame through the same stages, in this order:
///
/// 0. **cutting**: a TCP super segment, received (longer than the MTU: with
///    receive offload the kernel hands over up to 64 KiB at once) or sent
///    ([`FrameSink::send_segmented`], with segmentation offload), stands
///    for several segments on the wire, and a real link would impair each
///    of them on its own. So each wire-sized piece of it (MTU-sized when
///    received, `mss` payload bytes when sent) meets stages 1 to 4
///    independently (its fate is drawn piece by piece, in order); if none
///    of them is lost, corrupted, duplicated or held back, the frame goes
///    on whole through stages 5 and 6 (the rate limiter charging every
///    piece's headers), and a sent one reaches the inner device whole,
///    through its `send_segmented`. Otherwise the surviving pieces are cut
///    out of it (each a valid segment with its own sequence number, IP
///    length and checksums, before its bit flip if any) and go through
///    stages 2 to 6 one by one, in order; when sending, each run of
///    consecutive untouched pieces goes on as a smaller super segment
///    instead ([`gso::sub_segment`](super::gso::sub_segment)), but the
///    first piece after one held back for reordering always goes alone,
///    as it releases it. Without this, "1% loss" would drop 1% of super
///    segments, each up to 45 segments at once, and a corrupted or
///    duplicated one would hit 45 segments together; and cutting every
///    sent super segment would cost the receiving kernel 45 packets where
///    a link with offloads hands it one.
/// 1. **loss**: with probability `loss` the frame is dropped.
/// 2. **corruption**: with probability `corrupt` one random bit of one random
///    byte at offset 14 or later (after the Ethernet header; anywhere on an
///    IP link) is flipped, so
///    the frame still reaches the stack and exercises checksum validation.
///    Frames shorter than 15 bytes get the bit flipped anywhere.
/// 3. **duplication**: with probability `dup` a copy of the frame follows the
///    original (both go through the later stages; the copy right behind).
/// 4. **reordering**: with probability `reorder` the frame is held back until
///    the next frame of the same direction has gone ahead of it, then it
///    follows that frame. A frame that no other frame overtakes within
///    `2 * delay + 1 ms` is released anyway at that deadline (its wait then
///    replaces the delay of stage 6), so nothing is ever stuck. The frame
///    that overtakes is never held back itself.
/// 5. **rate limit** (`rate_bps`): frames are serialized one after the other,
///    like on a link of that speed: a frame is done at
///    `max(now, end of the previous frame) + len * 8 / rate`. The backlog
///    waiting for serialization is bounded ([`RATE_QUEUE_BYTES`]); a frame
///    that would overflow it is tail-dropped.
/// 6. **delay**: the frame is released `delay` plus a uniform random
///    `0..=jitter` after it was serialized (or arrived, without a rate
///    limit). Frames never overtake each other here: a release time is
///    raised to the previous frame's if needed, so only stage 4 reorders.
///
/// Besides the rate limiter's queue, each direction holds at most
/// [`MAX_HELD_BYTES`] (a safety net against a huge bandwidth-delay product);
/// what does not fit is dropped and counted. Every dropped or altered frame
/// is counted in [`stats`](Self::stats).
///
/// # Time
///
/// The wrapper is sans-IO like the rest of the stack: it never reads the
/// clock. Every decision uses the `now` passed to `send`, `recv` or
/// [`FaultDevice::flush_due`]. Frames held for later are handed on by the
/// first such call whose `now` is at or past their release time, and
/// [`Device::poll_at`] reports the earliest release time so the event loop
/// wakes up for it. Because the event loop calls `recv` on every iteration,
/// and `recv` first sends the outbound frames that are due, delayed outbound
/// frames leave on time without any extra call.
///
/// `recv` reads up to 64 frames from the inner device per call, stamping
/// each with that call's `now`, and returns the oldest frame that is due. It
/// stops reading as soon as a due frame is waiting, so the backlog is left
/// in the inner device (whose descriptor then stays readable) rather than
/// growing here; it may therefore return `Ok(None)` while the inner device
/// still has frames, which the next call reads.
///
/// # Determinism
///
/// All randomness comes from [`FaultConfig::seed`]: each direction has its
/// own generator derived from it, so the inbound pattern does not depend on
/// how much the stack sends. The same seed and the same sequence of calls
/// (with the same `now` values) give the same faults.
///
/// # Cost
///
/// With a configuration that injects nothing ([`FaultConfig::is_noop`]),
/// `send` and `recv` go straight to the inner device: no copy, no
/// allocation. Otherwise a frame is copied only when it has to be held
/// (delay, rate, reordering, duplicate) or altered (corruption), into
/// buffers taken from a pool, so the steady state does not allocate.
///
/// # Example
///
/// ```
/// use std::time::{Duration, Instant};
/// use stack::device::{FaultConfig, FaultDevice, memory_pair};
/// use stack::{Device, FrameSink};
///
/// let (a, mut b) = memory_pair(1500).unwrap();
/// let config = FaultConfig {
///     delay: Duration::from_millis(10),
///     seed: 1,
///     ..FaultConfig::default()
/// };
/// config.validate().unwrap();
/// let mut a = FaultDevice::new(a, config);
/// let t0 = Instant::now();
/// a.send(t0, &[0u8; 60]).unwrap();
/// let mut buf = [0u8; 1514];
/// assert_eq!(b.recv(t0, &mut buf).unwrap(), None); // still on the wire
/// assert_eq!(a.poll_at(), Some(t0 + Duration::from_millis(10)));
/// a.flush_due(t0 + Duration::from_millis(10)).unwrap(); // or any send/recv
/// assert_eq!(b.recv(t0, &mut buf).unwrap(), Some(60));
/// println!("{}", a.stats()); // faults: out 1 frames (delayed 1); in 0 frames
/// ```
pub struct FaultDevice<D> {
    inner: D,
    config: FaultConfig,
    noop: bool,
    outbound: Lane,
    inbound: Lane,
    stats: FaultStats,
    /// Where `stats` is published for other threads.
    shared: FaultStatsHandle,
    /// The latest `now` seen, for [`Device::flush`], which has none.
    last_now: Option<Instant>,
}

impl<D: Device> FaultDevice<D> {
    /// Wraps `inner`, injecting the faults of `config`.
    ///
    /// # Panics
    ///
    /// If `config` does not pass [`FaultConfig::validate`]; check user
    /// input with it first.
    pub fn new(inner: D, config: FaultConfig) -> Self {
        if let Err(e) = config.validate() {
            panic!("invalid fault configuration: {e}");
        }
        FaultDevice {
            inner,
            noop: config.is_noop(),
            outbound: Lane::new(config.seed ^ OUTBOUND_STREAM),
            inbound: Lane::new(config.seed ^ INBOUND_STREAM),
            config,
            stats: FaultStats::default(),
            shared: FaultStatsHandle::default(),
            last_now: None,
        }
    }

    /// The wrapped device.
    pub fn inner(&self) -> &D {
        &self.inner
    }

    /// The wrapped device, mutably.
    pub fn inner_mut(&mut self) -> &mut D {
        &mut self.inner
    }

    /// The faults being injected.
    pub fn config(&self) -> &FaultConfig {
        &self.config
    }

    /// What has been done so far.
    pub fn stats(&self) -> &FaultStats {
        &self.stats
    }

    /// A handle through which another thread reads [`stats`](Self::stats)
    /// (as of the start of the latest `send`, `send_segmented` or `recv`
    /// call, or the latest `flush`).
    pub fn stats_handle(&self) -> FaultStatsHandle {
        self.shared.clone()
    }

    /// Sends to the inner device every held outbound frame whose release
    /// time is at or before `now`, oldest first.
    ///
    /// `send` and `recv` do this themselves on entry, so an event loop that
    /// calls `recv` on each iteration never needs to. A frame the inner
    /// device refuses is lost (and counted in
    /// [`DirectionStats::send_errors`]); the others are still sent, and the
    /// first error is returned.
    pub fn flush_due(&mut self, now: Instant) -> io::Result<()> {
        self.last_now = Some(now);
        if self.noop {
            return Ok(());
        }
        let out = &mut self.outbound;
        let stats = &mut self.stats.outbound;
        out.expire_reordered(now, &self.config, stats);
        let mut first_error = None;
        while let Some(Held { frame, mss, .. }) = out.pop_due(now) {
            self.inner
                .annotate_next("fault injection: held back (delay, rate or reordering)");
            let result = if mss > 0 {
                self.inner.send_segmented(now, &frame, mss)
            } else {
                self.inner.send(now, &frame)
            };
            out.recycle(frame);
            if let Err(e) = result {
                stats.send_errors += 1;
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// [`flush_due`](Self::flush_due) for the entry of `send` and `recv`:
    /// an error concerns an earlier frame, already counted, so it is logged
    /// rather than returned (it must not end the event loop, nor be blamed
    /// on the frame being sent).
    fn flush_due_logged(&mut self, now: Instant) {
        if let Err(e) = self.flush_due(now) {
            log::debug!("fault: delayed frame not sent: {e}");
        }
    }
}

impl<D: fmt::Debug> fmt::Debug for FaultDevice<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultDevice")
            .field("inner", &self.inner)
            .field("config", &self.config)
            .field("stats", &self.stats)
            .field("held_outbound", &self.outbound.held_frames())
            .field("held_inbound", &self.inbound.held_frames())
            .finish_non_exhaustive()
    }
}

impl<D: Device> FrameSink for FaultDevice<D> {
    fn medium(&self) -> super::Medium {
        self.inner.medium()
    }

    fn capture_local(&mut self, now: Instant, frame: &[u8]) {
        self.inner.capture_local(now, frame);
    }

    fn send(&mut self, now: Instant, frame: &[u8]) -> io::Result<()> {
        if self.noop {
            return self.inner.send(now, frame);
        }
        self.shared.publish(&self.stats);
        self.flush_due_logged(now);
        let out = &mut self.outbound;
        let stats = &mut self.stats.outbound;
        stats.frames += 1;
        let link_len = self.inner.medium().header_len();
        let Some(verdict) = out.decide(&self.config, stats, frame.len(), link_len) else {
            stats.lost_payload += tcp_payload_len(frame, link_len) as u64;
            self.inner
                .record_unsent(now, frame, "fault injection: dropped (never sent)");
            return Ok(());
        };
        self.send_decided(now, frame, verdict)
    }

    /// Sends a TCP super segment whose wire segments each meet the faults
    /// on their own, as the cut pieces of the default implementation would,
    /// but without cutting it when none of them met one: see
    /// [`FaultDevice`] (stage 0).
    fn send_segmented(&mut self, now: Instant, frame: &[u8], mss: usize) -> io::Result<()> {
        if self.noop {
            return self.inner.send_segmented(now, frame, mss);
        }
        let link_len = self.inner.medium().header_len();
        let Some(h) = super::gso::TcpHeaders::find(frame, link_len) else {
            // Not TCP: nothing to cut, so nothing goes out, as when the
            // default implementation cuts it.
            return Ok(());
        };
        let mss = mss.max(1);
        let payload = frame.len() - h.payload;
        let cut = WirePieces {
            hdr: h.payload,
            mss,
            payload,
            pieces: payload.div_ceil(mss).max(1),
        };
        self.shared.publish(&self.stats);
        self.flush_due_logged(now);
        let out = &mut self.outbound;
        let stats = &mut self.stats.outbound;
        stats.frames += 1;
        let (_, touched) = out.decide_pieces(&self.config.odds(), stats, link_len, cut);
        // Behind a frame held back for reordering, the first segment goes
        // alone (below): it is the one that overtakes it.
        if !touched && !out.holds_back() {
            // Nothing befell any of its segments: on whole, through the
            // rate limiter and the delay line like any frame.
            if out.is_idle() && self.config.immediate() {
                return self.inner.send_segmented(now, frame, mss);
            }
            let held = out.buffer(frame);
            out.enter_whole(now, &self.config, stats, held, mss, cut.wire_len(), false);
            self.flush_due_logged(now);
            return Ok(());
        }
        // Some segments met a fault (or a frame is held back): each of
        // those goes on its own (built with its full checksum, then
        // corrupted if it drew that), and each run of untouched segments
        // between them as a smaller super segment.
        let fates = std::mem::take(&mut self.outbound.piece_fate);
        let mut piece = std::mem::take(&mut self.outbound.scratch);
        let mut first_error = None;
        let mut i = 0;
        while i < cut.pieces {
            let mut run = 1;
            if fates[i] == Some(Verdict::default()) {
                while fates.get(i + run) == Some(&Some(Verdict::default())) {
                    run += 1;
                }
                // A frame held back for reordering follows the next segment
                // that enters, alone, as it would on the wire.
                if self.outbound.holds_back() {
                    run = 1;
                }
            }
            super::gso::sub_segment(frame, h, mss, i, run, &mut piece);
            let result = if run > 1 {
                let wire = piece.len() + (run - 1) * h.payload;
                self.send_run(now, &piece, mss, wire)
            } else {
                super::gso::complete_checksum(&mut piece, link_len);
                match fates[i] {
                    Some(verdict) => self.send_decided(now, &piece, verdict),
                    None => {
                        self.inner.record_unsent(
                            now,
                            &piece,
                            "fault injection: dropped (never sent)",
                        );
                        Ok(())
                    }
                }
            };
            if let Err(e) = result {
                first_error.get_or_insert(e);
            }
            i += run;
        }
        self.outbound.piece_fate = fates;
        self.outbound.scratch = piece;
        first_error.map_or(Ok(()), Err)
    }
}

impl<D: Device> FaultDevice<D> {
    /// Sends `run`, a super segment of `mss`-byte segments none of which met
    /// a fault (`wire` bytes on the wire), cut out of a larger one: whole to
    /// the inner device, or through the rate limiter and delay line.
    fn send_run(&mut self, now: Instant, run: &[u8], mss: usize, wire: usize) -> io::Result<()> {
        let out = &mut self.outbound;
        if out.is_idle() && self.config.immediate() {
            return self.inner.send_segmented(now, run, mss);
        }
        let held = out.buffer(run);
        out.enter_whole(
            now,
            &self.config,
            &mut self.stats.outbound,
            held,
            mss,
            wire,
            false,
        );
        self.flush_due_logged(now);
        Ok(())
    }

    /// Sends an outbound frame that was not lost, with the fate `verdict`
    /// drew for it: straight to the inner device if nothing holds it,
    /// otherwise into the lane.
    fn send_decided(&mut self, now: Instant, frame: &[u8], verdict: Verdict) -> io::Result<()> {
        let out = &mut self.outbound;
        let stats = &mut self.stats.outbound;
        if out.is_idle() && !verdict.hold && self.config.immediate() {
            // Nothing to wait for: straight to the device, copying only to
            // corrupt. A capture inside marks what was done to each copy.
            if verdict.dup {
                stats.duplicated += 1;
            }
            let sends = if verdict.dup { 2 } else { 1 };
            let inner = &mut self.inner;
            let mut send_one = |i: usize, bytes: &[u8]| {
                match (verdict.corrupt.is_some(), i) {
                    (true, 0) => {
                        inner.annotate_next("fault injection: corrupted (one bit flipped)")
                    }
                    (true, _) => inner
                        .annotate_next("fault injection: duplicate, corrupted (one bit flipped)"),
                    (false, 1) => inner.annotate_next("fault injection: duplicate"),
                    (false, _) => {}
                }
                inner.send(now, bytes)
            };
            return match verdict.corrupt {
                None => (0..sends).try_for_each(|i| send_one(i, frame)),
                Some(flip) => {
                    let mut copy = out.buffer(frame);
                    flip.apply(&mut copy);
                    let result = (0..sends).try_for_each(|i| send_one(i, &copy));
                    out.recycle(copy);
                    result
                }
            };
        }
        let mut held = out.buffer(frame);
        if let Some(flip) = verdict.corrupt {
            flip.apply(&mut held);
        }
        out.enter(now, &self.config, stats, held, verdict);
        // With no delay, what was just queued (the frame, or a reordered one
        // it released) is due already.
        self.flush_due_logged(now);
        Ok(())
    }
}

impl<D: Device> Device for FaultDevice<D> {
    fn recv(&mut self, now: Instant, buf: &mut [u8]) -> io::Result<Option<usize>> {
        if self.noop {
            return self.inner.recv(now, buf);
        }
        self.shared.publish(&self.stats);
        self.flush_due_logged(now);
        let lane = &mut self.inbound;
        let stats = &mut self.stats.inbound;
        lane.expire_reordered(now, &self.config, stats);
        // Read what the inner device has, unless a due frame is already
        // waiting: then it goes first, and the inner device keeps the rest
        // (so the queue cannot grow faster than the stack reads).
        let link_len = self.inner.medium().header_len();
        let mut pulled = 0;
        while pulled < RX_PULL && !lane.head_due(now) {
            let Some(n) = self.inner.recv(now, buf)? else {
                break;
            };
            // Faults may corrupt it: the stack must verify a checksum.
            super::checksum::complete_received(&self.inner, &mut buf[..n]);
            pulled += 1;
            stats.frames += 1;
            let odds = self.config.odds();
            if let Some(cut) = wire_pieces(&buf[..n], link_len, self.inner.mtu()) {
                // A super segment (receive offload) meets every fault
                // segment by segment, as on the wire it stands for.
                let (lost, touched) = lane.decide_pieces(&odds, stats, link_len, cut);
                if lost == cut.pieces {
                    self.inner
                        .annotate_received("fault injection: dropped (never delivered)");
                    continue;
                }
                if !touched {
                    // Nothing befell any of its segments: on whole, delayed
                    // and rate-limited like any frame.
                    if lane.is_idle() && self.config.immediate() {
                        return Ok(Some(n));
                    }
                    self.inner.annotate_received(
                        "fault injection: held back (delay, rate or reordering)",
                    );
                    let held = lane.buffer(&buf[..n]);
                    lane.enter_whole(now, &self.config, stats, held, 0, cut.wire_len(), false);
                    continue;
                }
                self.inner.annotate_received(if lost > 0 {
                    "fault injection: some segments dropped, the rest delivered cut (each with its own faults)"
                } else {
                    "fault injection: delivered cut into wire segments (each with its own faults)"
                });
                let mut scratch = std::mem::take(&mut lane.scratch);
                let mut fates = std::mem::take(&mut lane.piece_fate);
                let mut i = 0;
                super::gso::split_tcp(&buf[..n], link_len, cut.mss, &mut scratch, |piece| {
                    if let Some(Some(verdict)) = fates.get(i).copied() {
                        let mut held = lane.buffer(piece);
                        if let Some(flip) = verdict.corrupt {
                            flip.apply(&mut held);
                        }
                        lane.enter(now, &self.config, stats, held, verdict);
                    }
                    i += 1;
                });
                fates.clear();
                lane.piece_fate = fates;
                lane.scratch = scratch;
                continue;
            }
            let Some(verdict) = lane.decide_with(&odds, stats, n, link_len) else {
                stats.lost_payload += tcp_payload_len(&buf[..n], link_len) as u64;
                self.inner
                    .annotate_received("fault injection: dropped (never delivered)");
                continue;
            };
            let frame = &mut buf[..n];
            if let Some(flip) = verdict.corrupt {
                flip.apply(frame);
            }
            let immediate = lane.is_idle() && !verdict.hold && self.config.immediate();
            if let Some(comment) =
                inbound_comment(verdict.corrupt.is_some(), verdict.dup, !immediate)
            {
                self.inner.annotate_received(comment);
            }
            if immediate {
                // Nothing queued ahead and nothing to wait for: hand the
                // frame over in place; a duplicate waits for the next call.
                if verdict.dup {
                    stats.duplicated += 1;
                    let copy = lane.buffer(frame);
                    lane.push(now, stats, copy, (0, n), Duration::ZERO, None);
                }
                return Ok(Some(n));
            }
            let held = lane.buffer(frame);
            lane.enter(now, &self.config, stats, held, verdict);
        }
        Ok(lane.pop_due(now).map(|Held { frame, .. }| {
            let n = frame.len().min(buf.len());
            buf[..n].copy_from_slice(&frame[..n]);
            lane.recycle(frame);
            n
        }))
    }

    fn mtu(&self) -> usize {
        self.inner.mtu()
    }

    fn max_frame_len(&self) -> usize {
        self.inner.max_frame_len()
    }

    fn checksum_caps(&self) -> ChecksumCaps {
        let inner = self.inner.checksum_caps();
        ChecksumCaps {
            // Only when frames pass untouched; otherwise recv completed it.
            rx_partial: self.noop && inner.rx_partial,
            ..inner
        }
    }

    fn poll_at(&self) -> Option<Instant> {
        [
            self.inner.poll_at(),
            self.outbound.next_event(),
            self.inbound.next_event(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn raw_fd(&self) -> Option<RawFd> {
        self.inner.raw_fd()
    }

    /// Sends every held outbound frame now, whatever its release time (the
    /// reordered one last), then flushes the inner device.
    ///
    /// The event loop calls this once, when it stops: frames still on the
    /// simulated wire would otherwise be lost. Held inbound frames stay
    /// held; `recv` delivers them when due.
    fn flush(&mut self) -> io::Result<()> {
        let mut first_error = None;
        if let Some(now) = self.last_now {
            let out = &mut self.outbound;
            let stats = &mut self.stats.outbound;
            // The held-back frame (and its copy) goes last: nothing
            // overtook it, so this is not counted as a reordering.
            if let Some(held) = out.take_reordered() {
                let copy = held.dup.then(|| out.buffer(&held.frame));
                stats.duplicated += u64::from(copy.is_some());
                for frame in [Some(held.frame), copy].into_iter().flatten() {
                    out.held_bytes += frame.len();
                    out.queue.push_back(Held {
                        frame,
                        release: now,
                        mss: 0,
                    });
                }
            }
            while let Some(Held { frame, mss, .. }) = out.queue.pop_front() {
                out.held_bytes -= frame.len();
                let result = if mss > 0 {
                    self.inner.send_segmented(now, &frame, mss)
                } else {
                    self.inner.send(now, &frame)
                };
                out.recycle(frame);
                if let Err(e) = result {
                    stats.send_errors += 1;
                    first_error.get_or_insert(e);
                }
            }
        }
        self.shared.publish(&self.stats);
        let inner = self.inner.flush();
        match first_error {
            Some(e) => Err(e),
            None => inner,
        }
    }
}

/// A TCP super segment (longer than the link's MTU: the kernel coalesced
/// it, with receive offload): the payload size of the segments it stands
/// for on the wire (the MTU less its IP and TCP headers), their number and
/// their headers' size.
fn wire_pieces(frame: &[u8], link_len: usize, mtu: usize) -> Option<WirePieces> {
    if frame.len() <= link_len + mtu {
        return None;
    }
    let h = super::gso::TcpHeaders::find(frame, link_len)?;
    let mss = mtu.checked_sub(h.payload - link_len).filter(|&m| m > 0)?;
    let payload = frame.len() - h.payload;
    Some(WirePieces {
        hdr: h.payload,
        mss,
        payload,
        pieces: payload.div_ceil(mss),
    })
}

/// TCP payload bytes of the IPv4/TCP packet in `frame` (after `link_len`
/// bytes of link header), by its IP total length (an Ethernet frame may be
/// padded); 0 for anything else.
fn tcp_payload_len(frame: &[u8], link_len: usize) -> usize {
    let Some(h) = super::gso::TcpHeaders::find(frame, link_len) else {
        return 0;
    };
    let total = usize::from(u16::from_be_bytes([frame[h.ip + 2], frame[h.ip + 3]]));
    (h.ip + total).min(frame.len()).saturating_sub(h.payload)
}

/// What a capture below says about a received frame the injector changed:
/// corrupted, duplicated (delivered twice), held back (delivered late).
fn inbound_comment(corrupt: bool, dup: bool, held: bool) -> Option<&'static str> {
    Some(match (corrupt, dup, held) {
        (false, false, false) => return None,
        (true, false, false) => "fault injection: corrupted (one bit flipped)",
        (false, true, false) => "fault injection: duplicated (delivered twice)",
        (true, true, false) => "fault injection: corrupted (one bit flipped), delivered twice",
        (false, false, true) => "fault injection: held back (delay, rate or reordering)",
        (true, false, true) => "fault injection: held back, corrupted (one bit flipped)",
        (false, true, true) => "fault injection: held back, delivered twice",
        (true, true, true) => "fault injection: held back, corrupted, delivered twice",
    })
}

#[cfg(test)]
mod tests;
