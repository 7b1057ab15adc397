//! Role claims in a segment: which processes hold the producer and consumer endpoints.
//!
//! A role table is an array of [`RoleSlot`]s living in shared memory. A handle claims a slot by
//! compare-and-swapping its [`ProcessId`] word into the slot's `holder` (0 means free), and
//! releases it on drop. A slot whose holder has died (a process killed by `SIGKILL` never runs
//! its destructors) can be *taken over* by another process: the claim sees the dead word and
//! replaces it with its own, again by compare-and-swap, so two processes never both win.
//!
//! Each slot also has a `pending` word that a queue uses to publish "I am in the middle of an
//! operation at position `p`" (stored as `p + 1`; 0 is none) before it claims a position. A peer
//! that finds a position stuck can then ask [`any_live_pending`] whether a live holder may still
//! finish it, or whether the claimer died.
//!
//! | `holder` | meaning |
//! |---|---|
//! | `0` | free (never claimed, or released) |
//! | a [`ProcessId::to_word`] | claimed by that process, alive or dead |
//!
//! **A table is a slice**, and callers must pass the same slice to [`claim`], [`release`] and
//! [`peers`]: the table's first slot also carries the table's *summary word*, so that "is
//! anybody attached?" is one atomic load, not a scan that a claim and a release racing past
//! it could fool. Summary bits 0..63: slot `i` is attached (set after a claim, cleared before a
//! release); bit 63: somebody has ever claimed a slot (tells "no peer yet" from "every peer is
//! gone", [`Peers`]). Tables hold at most 63 slots (longer slices: the extra slots are never
//! claimed).
//!
//! Liveness: on a real segment, holders are checked with [`ProcessId::word_is_alive`]; on the
//! heap home every handle lives in this process, so [`Liveness::AssumeAlive`] never calls the OS
//! (which also keeps miri and loom away from `/proc`).

use shm_core::sync::atomic::{AtomicU64, Ordering};
use shm_core::sync::Poll;
use shm_core::ProcessId;
use std::fmt;

use crate::error::RoleError;

/// One role slot, alone on a 128-byte line so that `pending` writes do not disturb others.
///
/// Layout (`#[repr(C, align(128))]`): `holder: u64` at 0, `pending: u64` at 8, `summary: u64`
/// at 16 (used in a table's first slot only), padding to 128.
#[repr(C, align(128))]
pub struct RoleSlot {
    holder: AtomicU64,
    pending: AtomicU64,
    summary: AtomicU64,
}

/// Most slots a table uses.
pub const MAX_SLOTS: usize = 63;
/// Summary bit: some slot was claimed once.
const EVER: u64 = 1 << 63;

#[cfg(not(loom))]
const _: () = {
    assert!(std::mem::size_of::<RoleSlot>() == 128);
    assert!(std::mem::align_of::<RoleSlot>() == 128);
    assert!(std::mem::offset_of!(RoleSlot, holder) == 0);
    assert!(std::mem::offset_of!(RoleSlot, pending) == 8);
    assert!(std::mem::offset_of!(RoleSlot, summary) == 16);
};

impl RoleSlot {
    /// A free slot.
    pub fn new() -> RoleSlot {
        RoleSlot {
            holder: AtomicU64::new(0),
            pending: AtomicU64::new(0),
            summary: AtomicU64::new(0),
        }
    }

    /// The holder's word (0 if free).
    pub fn holder(&self) -> u64 {
        self.holder.load(Ordering::Acquire)
    }

    /// The pending word: the holder's published position plus one, or 0.
    pub fn pending(&self) -> &AtomicU64 {
        &self.pending
    }
}

impl Default for RoleSlot {
    fn default() -> Self {
        RoleSlot::new()
    }
}

impl fmt::Debug for RoleSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RoleSlot")
            .field("holder", &ProcessId::from_word(self.holder()))
            .field("pending", &self.pending.load(Ordering::Relaxed))
            .field("summary", &self.summary.load(Ordering::Relaxed))
            .finish()
    }
}

/// How to tell whether a holder is alive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    /// Ask the OS (`/proc`) with [`ProcessId::word_is_alive`]: real segments.
    Check,
    /// Every holder is this process: the heap home (also keeps loom and miri off the OS).
    AssumeAlive,
}

impl Liveness {
    /// Whether the holder word names a live holder (0 is never alive).
    pub fn is_alive(self, word: u64) -> bool {
        match self {
            _ if word == 0 => false,
            Liveness::AssumeAlive => true,
            Liveness::Check => ProcessId::word_is_alive(word),
        }
    }

    /// The identity word this process claims with: its [`ProcessId`] word, or a fixed non-zero
    /// word for the heap home.
    pub fn my_word(self) -> u64 {
        match self {
            Liveness::Check => ProcessId::current().to_word(),
            Liveness::AssumeAlive => HEAP_WORD,
        }
    }
}

/// The identity word of heap-home handles (pid `u32::MAX`, never a real process).
pub const HEAP_WORD: u64 = u32::MAX as u64;

/// A successful claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claim {
    /// Index of the slot claimed.
    pub index: usize,
    /// The dead process whose claim was taken over, if any.
    pub took_over: Option<ProcessId>,
}

/// Claims a free slot of `slots` for `me`, or takes over one held by a dead process.
///
/// Free slots are preferred; dead holders are checked (an OS call each) only if none is free.
///
/// # Errors
///
/// [`RoleError::Busy`] if every slot is held by a live process (the first holder is named).
pub fn claim(slots: &[RoleSlot], me: u64, liveness: Liveness) -> Result<Claim, RoleError> {
    debug_assert!(me != 0);
    let slots = &slots[..slots.len().min(MAX_SLOTS)];
    let attached = |index: usize, took_over: Option<ProcessId>| {
        let s = &slots[index];
        s.pending.store(0, Ordering::Release);
        slots[0]
            .summary
            .fetch_or(EVER | (1 << index), Ordering::AcqRel);
        Ok(Claim { index, took_over })
    };
    for (index, s) in slots.iter().enumerate() {
        if s.holder
            .compare_exchange(0, me, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            return attached(index, None);
        }
    }
    let mut first = 0;
    for (index, s) in slots.iter().enumerate() {
        let h = s.holder.load(Ordering::Acquire);
        if h == 0 {
            // Released meanwhile: try it.
            if s.holder
                .compare_exchange(0, me, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                return attached(index, None);
            }
            continue;
        }
        if first == 0 {
            first = h;
        }
        if !liveness.is_alive(h)
            && s.holder
                .compare_exchange(h, me, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            return attached(index, Some(ProcessId::from_word(h)));
        }
    }
    Err(RoleError::Busy {
        holder: ProcessId::from_word(first),
    })
}

/// Releases slot `index` if `me` still holds it (a slot taken over meanwhile is left alone).
/// An out-of-range index is ignored.
pub fn release(slots: &[RoleSlot], index: usize, me: u64) {
    if index >= slots.len().min(MAX_SLOTS) {
        return;
    }
    let s = &slots[index];
    if s.holder.load(Ordering::Acquire) != me {
        return;
    }
    s.pending.store(0, Ordering::Release);
    // Detach first, then free the slot: a claimer of the freed slot sets the bit again after
    // us, never before.
    slots[0]
        .summary
        .fetch_and(!(1u64 << index), Ordering::AcqRel);
    let _ = s
        .holder
        .compare_exchange(me, 0, Ordering::AcqRel, Ordering::Relaxed);
}

/// The state of the peers holding a role table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peers {
    /// Nobody has ever claimed a slot: the peer has not arrived yet.
    NeverArrived,
    /// At least one slot is held (by a live process, if liveness was checked).
    Present,
    /// Some slot was claimed once, and now every slot is free (or held by a dead process, if
    /// liveness was checked).
    Gone,
}

/// Whether any peer is attached, judged from one load of the table's summary word (so a
/// claim and a release racing past the check cannot make it report `Gone` wrongly). With
/// `check_alive`, attached slots whose holder is dead count as gone (one OS call each).
pub fn peers(slots: &[RoleSlot], liveness: Liveness, check_alive: bool) -> Peers {
    let Some(first) = slots.first() else {
        return Peers::NeverArrived;
    };
    let n = slots.len().min(MAX_SLOTS);
    let word = first.summary.load(Ordering::Acquire);
    let attached = word & ((1u64 << n) - 1);
    if attached != 0 {
        if !check_alive {
            return Peers::Present;
        }
        for (i, s) in slots[..n].iter().enumerate() {
            if attached & (1 << i) != 0 && liveness.is_alive(s.holder.load(Ordering::Acquire)) {
                return Peers::Present;
            }
        }
        return Peers::Gone;
    }
    if word & EVER != 0 {
        Peers::Gone
    } else {
        Peers::NeverArrived
    }
}

/// How a wait composed with [`watching`] ended (a timeout is `wait_until`'s `None`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Waited<R> {
    /// `ready` returned a value.
    Ready(R),
    /// Every peer that ever arrived has released its role or died.
    PeersGone,
}

/// The poll closure of a blocking queue operation, for
/// [`EventCount::wait_until`](shm_core::EventCount::wait_until) (the one wait loop): judges
/// the peers in `slots` (every poll: one load of the summary word; on
/// [`Poll::Slice`] also their liveness), then gives `ready` its chance, and ends the wait with
/// [`Waited::PeersGone`] only if `ready` found nothing: whatever the peers published before
/// leaving is still delivered (their release of the role is `Release`, the summary load
/// `Acquire`).
pub(crate) fn watching<'a, R>(
    slots: &'a [RoleSlot],
    liveness: Liveness,
    mut ready: impl FnMut(Poll) -> Option<R> + 'a,
) -> impl FnMut(Poll) -> Option<Waited<R>> + 'a {
    move |p| {
        let gone = peers(slots, liveness, p == Poll::Slice) == Peers::Gone;
        if let Some(r) = ready(p) {
            return Some(Waited::Ready(r));
        }
        gone.then_some(Waited::PeersGone)
    }
}

/// Whether some slot held by a live process has `pending == value` (a position it may still be
/// working on). `false` means every process that announced `value` is dead or moved on.
pub fn any_live_pending(slots: &[RoleSlot], value: u64, liveness: Liveness) -> bool {
    slots.iter().any(|s| {
        s.pending.load(Ordering::Acquire) == value
            && liveness.is_alive(s.holder.load(Ordering::Acquire))
    })
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn claim_release_and_busy() {
        let slots = [RoleSlot::new(), RoleSlot::new()];
        assert_eq!(
            peers(&slots, Liveness::AssumeAlive, true),
            Peers::NeverArrived
        );
        let a = claim(&slots, 7, Liveness::AssumeAlive).unwrap();
        let b = claim(&slots, 7, Liveness::AssumeAlive).unwrap();
        assert_eq!((a.index, b.index), (0, 1));
        assert!(matches!(
            claim(&slots, 7, Liveness::AssumeAlive),
            Err(RoleError::Busy { .. })
        ));
        assert_eq!(peers(&slots, Liveness::AssumeAlive, false), Peers::Present);
        release(&slots, 0, 7);
        release(&slots, 1, 8); // not the holder: ignored
        assert_eq!(slots[1].holder(), 7);
        release(&slots, 1, 7);
        release(&slots, 99, 7);
        assert_eq!(peers(&slots, Liveness::AssumeAlive, false), Peers::Gone);
    }

    #[cfg_attr(miri, ignore)]
    #[test]
    fn dead_holder_is_taken_over() {
        let slots = [RoleSlot::new()];
        // A pid that cannot exist (above pid_max's hard limit of 2^22).
        let dead = ProcessId::from_parts(0x7fff_fff0, 1).to_word();
        slots[0].holder.store(dead, Ordering::Relaxed);
        slots[0].summary.store(EVER | 1, Ordering::Relaxed);
        assert_eq!(peers(&slots, Liveness::Check, false), Peers::Present);
        assert_eq!(peers(&slots, Liveness::Check, true), Peers::Gone);
        slots[0].pending.store(5, Ordering::Release);
        assert!(!any_live_pending(&slots, 5, Liveness::Check));
        let me = Liveness::Check.my_word();
        let c = claim(&slots, me, Liveness::Check).unwrap();
        assert_eq!(c.took_over, Some(ProcessId::from_word(dead)));
        assert_eq!(slots[0].pending.load(Ordering::Relaxed), 0);
        slots[0].pending.store(5, Ordering::Release);
        assert!(any_live_pending(&slots, 5, Liveness::Check));
        // Held by a live process: busy.
        assert!(matches!(
            claim(&slots, me, Liveness::Check),
            Err(RoleError::Busy { .. })
        ));
    }
}
