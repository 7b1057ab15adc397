//! Blocking waits that notice dead peers: [`EventCount`] plus a [`WaitStrategy`], with the
//! peers' liveness checked once per sleep slice.
//!
//! A queue operation that cannot proceed (pop from an empty queue, push to a full one) calls
//! [`wait_for`] with the eventcount its peers notify, the peers' role table and a `ready`
//! closure that retries the operation. The closure runs on every poll: cheap checks
//! ([`Poll::Check`]) during the spin phase and around each sleep, and [`Poll::Slice`] once per
//! [`WaitStrategy::slice`] (after a sleep slice ended without a wake-up, or, when busy-polling,
//! once the slice's time has passed), the moment for expensive checks such as a scan for work
//! abandoned by dead processes.
//!
//! Peers are "gone" when some peer once claimed a role slot and now every slot is released
//! (seen on every poll: a few loads) or held by a dead process (checked on `Slice` polls only:
//! one OS call per holder). Gone peers end the wait with [`Waited::PeersGone`], but only after
//! `ready` has had one more chance: anything a peer published before it released its role is
//! still delivered.

use crate::role::{self, Liveness, Peers, RoleSlot};
use shm_core::sync::Poll;
use shm_core::{Deadline, EventCount, WaitStrategy};

/// How [`wait_for`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waited<R> {
    /// `ready` returned a value.
    Ready(R),
    /// The deadline passed.
    TimedOut,
    /// Every peer that ever arrived has released its role or died.
    PeersGone,
}

/// Polls between two looks at the clock when busy-polling.
const CLOCK_EVERY: u32 = 256;

/// Waits until `ready` returns `Some`, the deadline passes, or the peers in `peers` are gone.
///
/// See the [module docs](self) for when `ready` runs and how peers are judged. `ready` must
/// be cheap on [`Poll::Check`].
///
/// # Examples
///
/// ```
/// use shm_core::{Deadline, EventCount, WaitStrategy};
/// use shm_queue::role::{self, Liveness, RoleSlot};
/// use shm_queue::wait::{wait_for, Waited};
/// use std::time::Duration;
///
/// let ec = EventCount::new();
/// let producers = [RoleSlot::new()];
/// let me = Liveness::AssumeAlive.my_word();
/// let c = role::claim(&producers, me, Liveness::AssumeAlive).unwrap();
/// // Nothing arrives: the wait times out.
/// let d = Deadline::after(Duration::from_millis(5));
/// let r: Waited<()> = wait_for(&ec, &WaitStrategy::sleep(), d, &producers, Liveness::AssumeAlive, |_| None);
/// assert_eq!(r, Waited::TimedOut);
/// // The only producer leaves: the wait ends at once.
/// role::release(&producers, c.index, me);
/// let r: Waited<()> = wait_for(&ec, &WaitStrategy::sleep(), Deadline::NEVER, &producers, Liveness::AssumeAlive, |_| None);
/// assert_eq!(r, Waited::PeersGone);
/// ```
pub fn wait_for<R>(
    ec: &EventCount,
    strategy: &WaitStrategy,
    deadline: Deadline,
    peers: &[RoleSlot],
    liveness: Liveness,
    mut ready: impl FnMut(Poll) -> Option<R>,
) -> Waited<R> {
    let mut polls: u32 = 0;
    let mut next_slice = Deadline::after(strategy.slice);
    let out = ec.wait_until(strategy, deadline, |p| {
        let mut p = p;
        if p == Poll::Check {
            polls = polls.wrapping_add(1);
            if polls.is_multiple_of(CLOCK_EVERY) && next_slice.has_passed() {
                p = Poll::Slice;
            }
        }
        if p == Poll::Slice {
            next_slice = Deadline::after(strategy.slice);
        }
        // Judge the peers first: whatever they published before leaving is then visible to
        // `ready` below (Acquire on their release of the role).
        let gone = role::peers(peers, liveness, p == Poll::Slice) == Peers::Gone;
        if let Some(r) = ready(p) {
            return Some(Waited::Ready(r));
        }
        gone.then_some(Waited::PeersGone)
    });
    out.unwrap_or(Waited::TimedOut)
}
