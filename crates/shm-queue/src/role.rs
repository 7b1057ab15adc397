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
//! Liveness: holders are judged by a [`Prober`], shm-core's [`LivenessProbe`] plus this
//! handle's identity word. Only [`Liveness::Dead`] allows a takeover; `Unknown` is never robbed.

use shm_core::sync::atomic::{AtomicU64, Ordering};
use shm_core::sync::Poll;
use shm_core::{Liveness, LivenessProbe, OsProbe, ProcessId};
use std::fmt;
use std::sync::Arc;

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

/// How a handle tells whether a holder is alive, and the identity word it claims with.
///
/// Liveness is shm-core's one answer, [`Liveness`] (`Alive`, `Dead`, `Unknown`), asked
/// through a [`LivenessProbe`]: [`Prober::os`] asks the OS ([`OsProbe`]) and claims with this
/// process's [`ProcessId`] word (real segments); [`Prober::heap`] answers `Alive` for every
/// holder and claims with [`HEAP_WORD`] (the heap home, where every handle lives in this
/// process; it also keeps loom and miri away from the OS); [`Prober::new`] injects any probe
/// (tests and loom models kill a holder by flipping what their probe answers).
///
/// Only [`Liveness::Dead`] lets a role be taken over or a peer count as gone: a holder whose
/// liveness is `Unknown` (another user's process under `hidepid`, no `/proc`) is respected
/// as if alive.
#[derive(Clone)]
pub struct Prober {
    me: u64,
    probe: Arc<dyn LivenessProbe + Send + Sync>,
}

impl Prober {
    /// Claims with this process's [`ProcessId`] word and asks the OS about the others.
    pub fn os() -> Prober {
        Prober::new(ProcessId::current().to_word(), OsProbe)
    }

    /// Claims with [`HEAP_WORD`] and answers `Alive` for every holder (the heap home).
    pub fn heap() -> Prober {
        Prober::new(HEAP_WORD, |_: u64| Liveness::Alive)
    }

    /// Claims with `me` (never 0) and asks `probe` about the others.
    pub fn new(me: u64, probe: impl LivenessProbe + Send + Sync + 'static) -> Prober {
        debug_assert!(me != 0);
        Prober {
            me,
            probe: Arc::new(probe),
        }
    }

    /// The identity word this handle claims roles with.
    pub fn me(&self) -> u64 {
        self.me
    }

    /// The liveness of the holder named by `word` (0, nobody, is `Dead`).
    pub fn liveness(&self, word: u64) -> Liveness {
        if word == 0 {
            Liveness::Dead
        } else {
            self.probe.word_liveness(word)
        }
    }
}

impl fmt::Debug for Prober {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Prober")
            .field("me", &ProcessId::from_word(self.me))
            .finish_non_exhaustive()
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

/// Claims a free slot of `slots` for `me`, or takes over one whose holder `prober` finds
/// [`Liveness::Dead`] (never one whose liveness is `Unknown`).
///
/// Free slots are preferred; holders are probed (an OS call each) only if none is free.
///
/// # Errors
///
/// [`RoleError::Busy`] if every slot is held by a process that is alive or may be (the first
/// holder is named).
pub fn claim(slots: &[RoleSlot], me: u64, prober: &Prober) -> Result<Claim, RoleError> {
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
        if prober.liveness(h).is_dead()
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
/// `check_alive`, attached slots whose holder is [`Liveness::Dead`] count as gone (one probe
/// each; `Unknown` counts as present).
#[inline]
pub fn peers(slots: &[RoleSlot], prober: &Prober, check_alive: bool) -> Peers {
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
            if attached & (1 << i) != 0
                && prober
                    .liveness(s.holder.load(Ordering::Acquire))
                    .may_be_alive()
            {
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
    prober: &'a Prober,
    mut ready: impl FnMut(Poll) -> Option<R> + 'a,
) -> impl FnMut(Poll) -> Option<Waited<R>> + 'a {
    move |p| {
        let gone = peers(slots, prober, p == Poll::Slice) == Peers::Gone;
        if let Some(r) = ready(p) {
            return Some(Waited::Ready(r));
        }
        gone.then_some(Waited::PeersGone)
    }
}

/// Whether some slot whose holder is alive or may be (`Unknown`) has `pending == value` (a
/// position it may still be working on). `false` means every process that announced `value`
/// is [`Liveness::Dead`] or moved on.
pub fn any_live_pending(slots: &[RoleSlot], value: u64, prober: &Prober) -> bool {
    slots.iter().any(|s| {
        s.pending.load(Ordering::Acquire) == value
            && prober
                .liveness(s.holder.load(Ordering::Acquire))
                .may_be_alive()
    })
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn claim_release_and_busy() {
        let slots = [RoleSlot::new(), RoleSlot::new()];
        assert_eq!(peers(&slots, &Prober::heap(), true), Peers::NeverArrived);
        let a = claim(&slots, 7, &Prober::heap()).unwrap();
        let b = claim(&slots, 7, &Prober::heap()).unwrap();
        assert_eq!((a.index, b.index), (0, 1));
        assert!(matches!(
            claim(&slots, 7, &Prober::heap()),
            Err(RoleError::Busy { .. })
        ));
        assert_eq!(peers(&slots, &Prober::heap(), false), Peers::Present);
        release(&slots, 0, 7);
        release(&slots, 1, 8); // not the holder: ignored
        assert_eq!(slots[1].holder(), 7);
        release(&slots, 1, 7);
        release(&slots, 99, 7);
        assert_eq!(peers(&slots, &Prober::heap(), false), Peers::Gone);
    }

    #[cfg_attr(miri, ignore)]
    #[test]
    fn dead_holder_is_taken_over() {
        let slots = [RoleSlot::new()];
        // A pid that cannot exist (above pid_max's hard limit of 2^22).
        let dead = ProcessId::from_parts(0x7fff_fff0, 1).to_word();
        slots[0].holder.store(dead, Ordering::Relaxed);
        slots[0].summary.store(EVER | 1, Ordering::Relaxed);
        assert_eq!(peers(&slots, &Prober::os(), false), Peers::Present);
        assert_eq!(peers(&slots, &Prober::os(), true), Peers::Gone);
        slots[0].pending.store(5, Ordering::Release);
        assert!(!any_live_pending(&slots, 5, &Prober::os()));
        let me = Prober::os().me();
        let c = claim(&slots, me, &Prober::os()).unwrap();
        assert_eq!(c.took_over, Some(ProcessId::from_word(dead)));
        assert_eq!(slots[0].pending.load(Ordering::Relaxed), 0);
        slots[0].pending.store(5, Ordering::Release);
        assert!(any_live_pending(&slots, 5, &Prober::os()));
        // Held by a live process: busy.
        assert!(matches!(
            claim(&slots, me, &Prober::os()),
            Err(RoleError::Busy { .. })
        ));
    }

    /// Regression (issue 10): when `/proc` could not tell, queue roles treated the holder as
    /// dead, so a live consumer's role could be taken and two consumers raced on plain slot
    /// reads. An `Unknown` holder is respected like a live one: no takeover, still present,
    /// its announced position never skipped. Only `Dead` frees it.
    #[test]
    fn unknown_holder_is_never_robbed() {
        use std::sync::atomic::AtomicU8;
        use std::sync::Arc;
        const HOLDER: u64 = 41;
        // 0: unknown, 1: dead.
        let answer = Arc::new(AtomicU8::new(0));
        let a = Arc::clone(&answer);
        let prober = Prober::new(7, move |w: u64| match (w, a.load(Ordering::Relaxed)) {
            (HOLDER, 0) => Liveness::Unknown,
            (HOLDER, _) => Liveness::Dead,
            _ => Liveness::Alive,
        });
        let slots = [RoleSlot::new()];
        claim(&slots, HOLDER, &Prober::heap()).unwrap();
        slots[0].pending.store(9, Ordering::Release);
        for _ in 0..3 {
            assert!(matches!(
                claim(&slots, 7, &prober),
                Err(RoleError::Busy { holder }) if holder.to_word() == HOLDER
            ));
            assert_eq!(peers(&slots, &prober, true), Peers::Present);
            assert!(any_live_pending(&slots, 9, &prober));
        }
        assert_eq!(slots[0].holder(), HOLDER);
        answer.store(1, Ordering::Relaxed);
        assert_eq!(peers(&slots, &prober, true), Peers::Gone);
        assert!(!any_live_pending(&slots, 9, &prober));
        let c = claim(&slots, 7, &prober).unwrap();
        assert_eq!(c.took_over.map(|p| p.to_word()), Some(HOLDER));
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::sync::atomic::AtomicBool;
    use loom::sync::Arc;

    const A: u64 = 1;
    const B: u64 = 2;
    const C: u64 = 3;

    /// A prober for `me` that answers `Dead` for `A` once `killed` is set, and `if_alive`
    /// for it before (and `Alive` for everyone else).
    fn prober(me: u64, killed: &Arc<AtomicBool>, if_alive: Liveness) -> Prober {
        let killed = Arc::clone(killed);
        Prober::new(me, move |w: u64| {
            if w == A && killed.load(Ordering::Acquire) {
                Liveness::Dead
            } else if w == A {
                if_alive
            } else {
                Liveness::Alive
            }
        })
    }

    /// Role claim against a live (or `Unknown`) peer, while it may die at a point loom picks:
    /// two claimers race for its slot. Never two winners; nobody wins while `A` is alive or
    /// unknown; whoever wins holds the slot.
    #[test]
    fn role_claim_against_live_peers() {
        for if_alive in [Liveness::Alive, Liveness::Unknown] {
            loom::model(move || {
                let slots = Arc::new([RoleSlot::new()]);
                let killed = Arc::new(AtomicBool::new(false));
                claim(&slots[..], A, &Prober::heap()).unwrap();
                let claimers: Vec<_> = [B, C]
                    .into_iter()
                    .map(|me| {
                        let (slots, p) = (Arc::clone(&slots), prober(me, &killed, if_alive));
                        loom::thread::spawn(move || claim(&slots[..], me, &p).ok().map(|_| me))
                    })
                    .collect();
                let k = Arc::clone(&killed);
                let killer = loom::thread::spawn(move || k.store(true, Ordering::Release));
                let won: Vec<u64> = claimers
                    .into_iter()
                    .filter_map(|t| t.join().unwrap())
                    .collect();
                killer.join().unwrap();
                assert!(won.len() <= 1, "two claimers won: {won:?}");
                match won.first() {
                    Some(&w) => assert_eq!(slots[0].holder(), w),
                    None => assert_eq!(slots[0].holder(), A),
                }
            });
        }
    }

    /// Without a death, a live or unknown holder keeps its role against any number of tries.
    #[test]
    fn role_claim_never_takes_from_unknown() {
        loom::model(|| {
            let slots = Arc::new([RoleSlot::new()]);
            let never = Arc::new(AtomicBool::new(false));
            claim(&slots[..], A, &Prober::heap()).unwrap();
            let ts: Vec<_> = [B, C]
                .into_iter()
                .map(|me| {
                    let (slots, p) = (Arc::clone(&slots), prober(me, &never, Liveness::Unknown));
                    loom::thread::spawn(move || claim(&slots[..], me, &p).is_err())
                })
                .collect();
            for t in ts {
                assert!(t.join().unwrap(), "a claimer robbed an Unknown holder");
            }
            assert_eq!(slots[0].holder(), A);
        });
    }
}
