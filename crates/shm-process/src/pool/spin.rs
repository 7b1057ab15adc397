//! Spinning only while it pays: a governor over the adaptive wait strategy.
//!
//! The adaptive strategy spins before it sleeps, which gets a sub-microsecond hand-off when
//! the peer runs on another core at that moment. On a machine whose cores are busy with other
//! work, the peer is often waiting for a core, and a spinning waiter only takes the core away
//! from it: measured here under load, an `apply` round trip took ~80 µs spinning and ~7 µs
//! sleeping at once. So every waiter records whether its spins succeed; after
//! [`FAILS_TO_BACK_OFF`] failures in a row it sleeps at once for its next [`BACK_OFF_WAITS`]
//! waits, then tries spinning again.

use shm_core::sync::WaitMode;
use shm_core::WaitStrategy;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Spins in a row that ended in a sleep before the governor stops spinning.
pub(crate) const FAILS_TO_BACK_OFF: u32 = 4;
/// Waits that sleep at once before spinning is tried again.
pub(crate) const BACK_OFF_WAITS: u32 = 64;

/// The governor's state: atomics, so that the threads of a process can share one.
#[derive(Debug, Default)]
pub(crate) struct SpinGovernor {
    fails: AtomicU32,
    sleep_left: AtomicU32,
}

/// One wait, as the governor chose it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Chosen {
    /// The strategy to wait with.
    pub(crate) strategy: WaitStrategy,
    /// When the wait started, if it spins (then its outcome is to be recorded).
    started: Option<Instant>,
    spin: Duration,
}

impl SpinGovernor {
    /// The strategy for the next wait under `base`.
    pub(crate) fn choose(&self, base: WaitStrategy) -> Chosen {
        if base.mode != WaitMode::Adaptive || base.spin.is_zero() {
            return Chosen {
                strategy: base,
                started: None,
                spin: Duration::ZERO,
            };
        }
        let left = self.sleep_left.load(Ordering::Relaxed);
        if left > 0 {
            self.sleep_left.store(left - 1, Ordering::Relaxed);
            return Chosen {
                strategy: WaitStrategy::sleep().with_slice(base.slice),
                started: None,
                spin: Duration::ZERO,
            };
        }
        Chosen {
            strategy: base,
            started: Some(Instant::now()),
            spin: base.spin,
        }
    }

    /// Records how a wait chosen by [`choose`](Self::choose) went.
    pub(crate) fn record(&self, chosen: &Chosen) {
        let Some(started) = chosen.started else {
            return;
        };
        if started.elapsed() <= chosen.spin {
            self.fails.store(0, Ordering::Relaxed);
        } else if self.fails.fetch_add(1, Ordering::Relaxed) + 1 >= FAILS_TO_BACK_OFF {
            self.fails.store(0, Ordering::Relaxed);
            self.sleep_left.store(BACK_OFF_WAITS, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backs_off_after_failed_spins_and_tries_again() {
        let g = SpinGovernor::default();
        let base = WaitStrategy::adaptive(Duration::from_micros(50));
        let failed = |g: &SpinGovernor| {
            let mut c = g.choose(base);
            assert_eq!(c.strategy, base);
            c.started = Some(Instant::now() - Duration::from_millis(1));
            g.record(&c);
        };
        for _ in 0..FAILS_TO_BACK_OFF {
            failed(&g);
        }
        for _ in 0..BACK_OFF_WAITS {
            let c = g.choose(base);
            assert_eq!(c.strategy.mode, WaitMode::Sleep);
            g.record(&c); // a sleeping wait teaches nothing
        }
        let mut c = g.choose(base);
        assert_eq!(c.strategy, base, "spinning is tried again");
        c.spin = Duration::from_secs(3600); // a success, however slow this run is
        g.record(&c);
        for _ in 0..FAILS_TO_BACK_OFF - 1 {
            failed(&g);
        }
        assert_eq!(
            g.choose(base).strategy,
            base,
            "one success resets the count"
        );
        // Other modes pass through.
        assert_eq!(
            g.choose(WaitStrategy::busy_poll()).strategy,
            WaitStrategy::busy_poll()
        );
        assert_eq!(
            g.choose(WaitStrategy::sleep()).strategy,
            WaitStrategy::sleep()
        );
    }
}
