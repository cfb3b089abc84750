//! The connection's timers: one table of deadlines keyed by [`Timer`]
//! (after quinn-proto's `TimerTable`), the single path that fires the
//! expired ones ([`Connection::handle_timeout`]), and the code that arms
//! the retransmission (RFC 6298), tail loss probe (RFC 8985 7) and persist
//! timers.

use std::time::{Duration, Instant};

use super::{Connection, State, TcpError};

/// The timers a connection runs. [`Connection::handle_timeout`] fires the
/// expired ones in this order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Timer {
    /// The end of TIME-WAIT (2*MSL) or of an orphan's FIN-WAIT-2.
    Close,
    /// The delayed ACK (RFC 5681 4.2).
    DelayedAck,
    /// TCP_CORK's 200 ms ceiling on holding a partial segment.
    Cork,
    /// The retransmission timer (RFC 6298).
    Retransmit,
    /// The tail loss probe timer (RFC 8985 7).
    Tlp,
    /// The RACK reordering timer (RFC 8985 6.3): segments sent before the
    /// latest one delivered will have waited their reordering window.
    Reorder,
    /// The persist timer: zero-window probes.
    Persist,
    /// Keep-alive probes (RFC 1122 4.2.3.6).
    KeepAlive,
}

impl Timer {
    /// Every timer, in firing order.
    pub(crate) const VALUES: [Timer; 8] = [
        Timer::Close,
        Timer::DelayedAck,
        Timer::Cork,
        Timer::Retransmit,
        Timer::Tlp,
        Timer::Reorder,
        Timer::Persist,
        Timer::KeepAlive,
    ];
}

/// A deadline per [`Timer`] (none: stopped).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct TimerTable {
    data: [Option<Instant>; Timer::VALUES.len()],
}

impl TimerTable {
    /// Arms `timer` for `at` (replacing any earlier deadline).
    pub(crate) fn set(&mut self, timer: Timer, at: Instant) {
        self.data[timer as usize] = Some(at);
    }

    /// Arms `timer` for `at`, or stops it when `at` is `None`.
    pub(crate) fn set_or_stop(&mut self, timer: Timer, at: Option<Instant>) {
        self.data[timer as usize] = at;
    }

    /// The deadline of `timer`, if it runs.
    pub(crate) fn get(&self, timer: Timer) -> Option<Instant> {
        self.data[timer as usize]
    }

    /// True when `timer` runs.
    pub(crate) fn is_set(&self, timer: Timer) -> bool {
        self.data[timer as usize].is_some()
    }

    /// Stops `timer`.
    pub(crate) fn stop(&mut self, timer: Timer) {
        self.data[timer as usize] = None;
    }

    /// True when `timer` runs and its deadline is not after `now`.
    pub(crate) fn is_expired(&self, timer: Timer, now: Instant) -> bool {
        self.data[timer as usize].is_some_and(|t| now >= t)
    }

    /// The earliest deadline.
    pub(crate) fn next_timeout(&self) -> Option<Instant> {
        self.data.iter().flatten().min().copied()
    }
}

/// Zero-window (persist) and keep-alive probing.
pub(crate) struct Probes {
    /// Send a zero-window or keep-alive probe.
    pub(crate) send_now: bool,
    /// Persist timer backoff: probes sent since the window closed.
    pub(crate) persist_backoff: u32,
    /// When the peer's window closed with data waiting (the user timeout
    /// applies from there, RFC 9293 3.8.3 with RFC 5482).
    pub(crate) persist_since: Option<Instant>,
    /// Keep-alive probes sent without an answer.
    pub(crate) keepalive_sent: u32,
}

/// Tail loss probes per episode (see [`Connection::arm_pto`]): RFC 8985
/// sends one; ustack sends a second after twice the timeout.
pub(crate) const MAX_PROBES: u32 = 2;

/// The second probe waits at least this long after the first: Linux's
/// shortest delayed-ACK timeout (TCP_DELACK_MIN), so that an ACK the peer
/// merely delayed does not meet a second probe, while one that was lost
/// is still recovered well before the RTO (200 ms at least).
const SECOND_PROBE_DELACK: Duration = Duration::from_millis(40);

impl Connection {
    /// The earliest deadline: the timers', and the user timeout's.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        let user_timeout = self
            .snd
            .progress_at
            .filter(|_| self.snd.nxt > self.snd.una && self.state.is_synchronized())
            .or(self.probe.persist_since)
            .map(|p| p + self.cfg.user_timeout);
        [self.timers.next_timeout(), user_timeout]
            .into_iter()
            .flatten()
            .min()
    }

    /// Fires the expired timers, in [`Timer`] order, then checks the user
    /// timeout. Stops early once one of them closed the connection.
    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        for timer in Timer::VALUES {
            if self.timers.is_expired(timer, now) && self.on_timeout(timer, now) {
                return;
            }
        }
        self.check_user_timeout(now);
    }

    /// Handles one expired timer; true when it ended the connection.
    fn on_timeout(&mut self, timer: Timer, now: Instant) -> bool {
        match timer {
            Timer::Close => {
                self.timers.stop(Timer::Close);
                if matches!(self.state, State::TimeWait | State::FinWait2) {
                    self.enter_closed(None);
                    return true;
                }
                false
            }
            Timer::DelayedAck => {
                self.timers.stop(Timer::DelayedAck);
                self.rcv.ack_now = true;
                false
            }
            Timer::Cork => {
                self.timers.stop(Timer::Cork);
                self.snd.cork_expired = true;
                false
            }
            Timer::Retransmit => {
                self.timers.stop(Timer::Retransmit);
                self.timers.stop(Timer::Tlp);
                self.on_rto(now);
                self.state == State::Closed
            }
            Timer::Tlp => {
                self.timers.stop(Timer::Tlp);
                // Outside recovery, or in fast recovery (see `arm_pto`).
                if !matches!(
                    self.recovery.phase,
                    Some(super::recovery::Recovery::Timeout { .. })
                ) && self.snd.nxt > self.snd.una
                    && self.state.is_synchronized()
                {
                    self.recovery.tlp_due = true;
                }
                false
            }
            Timer::Reorder => {
                // RFC 8985 6.3: "RACK_detect_loss_and_arm_timer()" on
                // expiry; losses found start (or continue) recovery.
                self.timers.stop(Timer::Reorder);
                if self.state.is_synchronized() && self.snd.nxt > self.snd.una {
                    self.detect_loss(now, self.snd.una);
                    if matches!(
                        self.recovery.phase,
                        Some(super::recovery::Recovery::Fast { .. })
                    ) {
                        self.prr_on_ack(0);
                    }
                }
                false
            }
            Timer::Persist => self.on_persist_timeout(now),
            Timer::KeepAlive => self.on_keepalive_timeout(now),
        }
    }

    /// The persist timer expired: probe the zero window again.
    fn on_persist_timeout(&mut self, now: Instant) -> bool {
        let unsent = self.data_end().since(self.snd.nxt) > 0;
        // An orphan gets `orphan_retries` probes, answered or not (Linux
        // tcp_probe_timer with tcp_orphan_retries): nobody will read
        // what it still has to send if the window never opens.
        if self.app_closed && unsent && self.probe.persist_backoff >= self.cfg.orphan_retries {
            self.alarms.orphan_gave_up += 1;
            self.give_up("orphan on a zero window");
            return true;
        }
        self.probe.persist_backoff += 1;
        self.stats.zero_window_probes += 1;
        if unsent && self.snd.wnd == 0 {
            self.probe.send_now = true;
            self.timers
                .set(Timer::Persist, now + self.persist_interval());
        } else {
            self.timers.stop(Timer::Persist);
        }
        false
    }

    /// The keep-alive timer expired: probe an idle connection.
    fn on_keepalive_timeout(&mut self, now: Instant) -> bool {
        // Without keep-alive configured the timer is left as it is.
        let Some(k) = self.cfg.keepalive else {
            return false;
        };
        // Linux probes in every state where the connection is
        // synchronized and nothing is outstanding (CLOSE-WAIT and
        // FIN-WAIT-2 too: a peer that vanished leaves them forever).
        let probing = matches!(
            self.state,
            State::Established | State::CloseWait | State::FinWait2
        );
        if !probing || self.snd.nxt != self.snd.una {
            self.timers.set(Timer::KeepAlive, now + k.idle);
        } else if self.probe.keepalive_sent >= k.probes {
            self.give_up("keep-alive");
            return true;
        } else {
            self.probe.keepalive_sent += 1;
            self.probe.send_now = true;
            self.timers.set(Timer::KeepAlive, now + k.interval);
        }
        false
    }

    /// RFC 9293 3.8.3 / RFC 5482: the user timeout, for data outstanding
    /// without progress and, as on Linux, for a window that stays closed
    /// while data waits (probes answered or not).
    fn check_user_timeout(&mut self, now: Instant) {
        let in_flight = self.snd.progress_at.filter(|_| self.snd.nxt > self.snd.una);
        let persisting = self.probe.persist_since.filter(|_| self.snd.wnd == 0);
        if let Some(p) = in_flight.or(persisting)
            && now.saturating_duration_since(p) >= self.cfg.user_timeout
            && self.state.is_synchronized()
        {
            if in_flight.is_none() {
                self.alarms.persist_timed_out += 1;
            }
            self.give_up("user timeout");
        }
    }

    /// Gives the connection up (a timer ran out): the peer is told with a
    /// reset and the application gets ETIMEDOUT (or the soft error ICMP
    /// reported).
    pub(crate) fn give_up(&mut self, why: &str) {
        log::debug!("{} -> {}: {why}: giving up", self.local, self.remote);
        self.pending_rst = Some(self.make_rst(self.snd.nxt));
        self.enter_closed(Some(TcpError::TimedOut));
    }

    /// RFC 6298 5.1: start the timer when data is sent and it is not running.
    pub(crate) fn arm_rtx(&mut self, now: Instant) {
        if !self.timers.is_set(Timer::Retransmit) {
            self.timers.set(Timer::Retransmit, now + self.rtt.rto());
        }
        if self.snd.progress_at.is_none() {
            self.snd.progress_at = Some(now);
        }
        self.arm_pto(now);
    }

    /// RFC 8985 7.2: schedule a tail loss probe two smoothed RTTs after
    /// the latest transmission (plus the peer's worst-case delayed-ACK time
    /// when a single segment is in flight), never after the RTO (which then
    /// waits for the probe), with no probe outstanding, and not in recovery
    /// after a timeout.
    ///
    /// Unlike RFC 8985 7.2 ("unless it is already in fast recovery"), the
    /// probe is armed in fast recovery too. When the flight ends with the
    /// fast retransmission (PRR sends nothing more until ACKs come back), a
    /// fast receiver acknowledges the whole flight with one ACK; if that
    /// ACK is lost, nothing else is coming, RACK has nothing to time, and
    /// only the retransmission timer (at least 200 ms) was left: issue 21,
    /// where this made 1% ACK loss cost about ten timeouts per 100 MiB. The
    /// probe goes two smoothed RTTs after the latest transmission or
    /// cumulative ACK, so while ACKs flow in recovery it does not fire.
    ///
    /// Also unlike RFC 8985 7.3 ("no other previous loss probe still in
    /// flight"), an episode gets a second probe, [`MAX_PROBES`] in all,
    /// after twice the PTO and at least [`SECOND_PROBE_DELACK`] after the
    /// first, if that is before the RTO, as QUIC's probe timeout backs off
    /// and probes again (RFC 9002 6.2.1: "the PTO backoff MUST be
    /// increased"). Issue 21: Linux on a ~50 us path delays its ACK of the
    /// end of a burst by a few milliseconds, longer than 2 x SRTT (which
    /// its prompt ACKs of the rest keep under a millisecond); the probe
    /// goes first, Linux then answers everything with one ACK, and when
    /// that ACK is lost (1 % of them) the episode had nothing left but the
    /// 200 ms RTO: about one timeout per 100 MiB under 1 % loss.
    pub(crate) fn arm_pto(&mut self, now: Instant) {
        self.timers.stop(Timer::Tlp);
        let Some(srtt) = self.rtt.srtt() else {
            return;
        };
        if matches!(
            self.recovery.phase,
            Some(super::recovery::Recovery::Timeout { .. })
        ) || (self.recovery.tlp_end.is_some() && self.recovery.tlp_sent >= MAX_PROBES)
            || self.snd.nxt <= self.snd.una
        {
            return;
        }
        let mut pto = srtt * 2;
        if self.snd.nxt.since(self.snd.una) <= self.snd.smss {
            pto += Duration::from_millis(200);
        }
        if self.recovery.tlp_end.is_some() {
            // The second probe of an episode: the timeout backs off, and
            // waits out a delayed ACK.
            pto = (pto * 2).max(pto + SECOND_PROBE_DELACK);
        }
        let mut at = now + pto.max(Duration::from_millis(1));
        if let Some(rto) = self.timers.get(Timer::Retransmit)
            && rto <= at
        {
            if self.recovery.tlp_end.is_some() {
                // A second probe only goes before the RTO would.
                return;
            }
            // RFC 8985 7.2: the probe goes no later than the RTO would
            // ("If RTO timer is sooner, use it"), and takes its place: as
            // on Linux, the retransmission timer restarts once the probe
            // is sent (and is pushed past it meanwhile).
            at = rto;
            self.timers.set(Timer::Retransmit, rto + self.rtt.rto());
        }
        self.timers.set(Timer::Tlp, at);
    }

    /// The persist timer's interval: the RTO, backed off exponentially.
    pub(crate) fn persist_interval(&self) -> Duration {
        let base = self.rtt.rto();
        (base * 2u32.saturating_pow(self.probe.persist_backoff.min(16))).min(self.cfg.max_rto)
    }
}

#[cfg(test)]
mod tests;
