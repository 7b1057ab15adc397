//! Operation-sequence model check of the typed rings against a `VecDeque` (used by the fuzz
//! target `queue_ops`, and by a unit test here). Not part of the stable API.

use crate::error::{TryPopError, TryPushError};
use crate::{mpmc, spsc};
use std::collections::VecDeque;

/// The two rings behind one interface.
enum Ring {
    Spsc(spsc::Producer<u32>, spsc::Consumer<u32>),
    Mpmc(mpmc::Producer<u32>, mpmc::Consumer<u32>),
}

impl Ring {
    fn try_push(&mut self, v: u32) -> Result<(), TryPushError<u32>> {
        match self {
            Ring::Spsc(p, _) => p.try_push(v),
            Ring::Mpmc(p, _) => p.try_push(v),
        }
    }
    fn try_pop(&mut self) -> Result<u32, TryPopError> {
        match self {
            Ring::Spsc(_, c) => c.try_pop(),
            Ring::Mpmc(_, c) => c.try_pop(),
        }
    }
    fn push_slice(&mut self, v: &[u32]) -> usize {
        match self {
            Ring::Spsc(p, _) => p.push_slice(v),
            Ring::Mpmc(p, _) => p.push_slice(v),
        }
    }
    fn pop_slice(&mut self, out: &mut [u32]) -> usize {
        match self {
            Ring::Spsc(_, c) => c.pop_slice(out),
            Ring::Mpmc(_, c) => c.pop_slice(out),
        }
    }
    fn forge(&self, what: u8) {
        match self {
            Ring::Spsc(_, c) => c.forge_index(what),
            Ring::Mpmc(_, c) => c.forge_index(what),
        }
    }
    fn len(&self) -> (usize, bool, bool) {
        match self {
            Ring::Spsc(p, c) => (p.len(), c.is_empty(), p.is_full()),
            Ring::Mpmc(p, c) => (p.len(), c.is_empty(), p.is_full()),
        }
    }
}

/// Decodes `ops` into push / pop / batch / len operations, runs them on a heap ring and on a
/// `VecDeque` model, and panics at the first divergence.
///
/// Byte 0 picks the ring (bit 0: SPSC or MPMC) and its capacity (`1 + (b >> 1) % 16`). Each
/// later byte is one operation: `b % 8` of 0–2 push, 3–4 pop, 5 compare `len`/`is_empty`/
/// `is_full` (or, for `b >> 3` of 29 and up, write an impossible index or stamp into the
/// ring, as another process could), 6 push a slice of `(b >> 3) % 6` items, 7 pop into a
/// slice of that size.
///
/// Until the first forgery the ring must agree with the model. After it, every operation must
/// still end (values or errors, never a panic or a hang), and once one has reported `Corrupt`
/// the ring is poisoned: every later push and pop must report `Corrupt` and every batch move
/// nothing.
///
/// # Panics
///
/// When the ring and the model disagree (that is the point).
pub fn check_ops(ops: &[u8]) {
    let Some((&first, ops)) = ops.split_first() else {
        return;
    };
    let cap = 1 + usize::from(first >> 1) % 16;
    let mut ring = if first & 1 == 0 {
        let (p, c) = spsc::channel::<u32>(cap);
        Ring::Spsc(p, c)
    } else {
        let (p, c) = mpmc::channel::<u32>(cap);
        Ring::Mpmc(p, c)
    };
    let mut model: VecDeque<u32> = VecDeque::new();
    let mut next = 0u32;
    let mut forged = false;
    let mut poisoned = false;
    for (step, &b) in ops.iter().enumerate() {
        let k = usize::from(b >> 3) % 6;
        if b % 8 == 5 && b >> 3 >= 29 {
            ring.forge((b >> 3) - 29);
            forged = true;
            continue;
        }
        if forged {
            poisoned |= after_forgery(&mut ring, b, k, next, poisoned, step);
            next += 1;
            continue;
        }
        match b % 8 {
            0..=2 => {
                let r = ring.try_push(next);
                if model.len() < cap {
                    assert_eq!(r, Ok(()), "step {step}: push to a non-full ring");
                    model.push_back(next);
                } else {
                    assert_eq!(
                        r,
                        Err(TryPushError::Full(next)),
                        "step {step}: push when full"
                    );
                }
                next += 1;
            }
            3 | 4 => {
                let r = ring.try_pop();
                match model.pop_front() {
                    Some(v) => assert_eq!(r, Ok(v), "step {step}: pop"),
                    None => assert_eq!(r, Err(TryPopError::Empty), "step {step}: pop when empty"),
                }
            }
            5 => {
                let (len, empty, full) = ring.len();
                assert_eq!(len, model.len(), "step {step}: len");
                assert_eq!(empty, model.is_empty(), "step {step}: is_empty");
                assert_eq!(full, model.len() == cap, "step {step}: is_full");
            }
            6 => {
                let items: Vec<u32> = (next..next + k as u32).collect();
                let n = ring.push_slice(&items);
                assert_eq!(n, k.min(cap - model.len()), "step {step}: push_slice count");
                model.extend(&items[..n]);
                next += n as u32;
            }
            _ => {
                let mut out = vec![u32::MAX; k];
                let n = ring.pop_slice(&mut out);
                assert_eq!(n, k.min(model.len()), "step {step}: pop_slice count");
                for (i, v) in out[..n].iter().enumerate() {
                    assert_eq!(
                        Some(*v),
                        model.pop_front(),
                        "step {step}: pop_slice item {i}"
                    );
                }
            }
        }
    }
}

/// One operation on a ring whose indices were forged: it must end, and a poisoned ring must
/// say `Corrupt` (or move nothing). Returns whether the ring reported `Corrupt`.
fn after_forgery(ring: &mut Ring, b: u8, k: usize, v: u32, poisoned: bool, step: usize) -> bool {
    match b % 8 {
        0..=2 => match ring.try_push(v) {
            Err(TryPushError::Corrupt(_)) => true,
            r => {
                assert!(!poisoned, "step {step}: push on a poisoned ring gave {r:?}");
                false
            }
        },
        3 | 4 => match ring.try_pop() {
            Err(TryPopError::Corrupt) => true,
            r => {
                assert!(!poisoned, "step {step}: pop on a poisoned ring gave {r:?}");
                false
            }
        },
        5 => {
            let (len, _, _) = ring.len();
            assert!(
                !poisoned || len == 0,
                "step {step}: a poisoned ring has len {len}"
            );
            false
        }
        6 => {
            let items = vec![v; k];
            let n = ring.push_slice(&items);
            assert!(
                !poisoned || n == 0,
                "step {step}: a poisoned ring took {n} items"
            );
            false
        }
        _ => {
            let mut out = vec![0; k];
            let n = ring.pop_slice(&mut out);
            assert!(
                !poisoned || n == 0,
                "step {step}: a poisoned ring gave {n} items"
            );
            false
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::check_ops;

    #[test]
    fn pseudo_random_sequences_agree() {
        let rounds = if cfg!(miri) { 4 } else { 300 };
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..rounds {
            let len = (x % 200) as usize;
            let ops: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            check_ops(&ops);
        }
        check_ops(&[]);
        check_ops(&[1]);
    }

    /// Forged indices and stamps in both rings: every sequence ends, and a poisoned ring
    /// stays poisoned (checked inside `check_ops`).
    #[test]
    fn forged_indices_end_in_values_or_corrupt() {
        let forge = |what: u8| 5 | ((29 + what) << 3);
        for ring in [0u8, 1] {
            for what in 0..3 {
                for first in [ring, ring | 6] {
                    let ops = [
                        first,
                        0,
                        0,
                        3,
                        forge(what),
                        3,
                        3,
                        0,
                        3,
                        6 | 3 << 3,
                        7 | 3 << 3,
                        5,
                        3,
                        0,
                        3,
                    ];
                    check_ops(&ops);
                }
            }
        }
        // Every forgery ends in Corrupt on both rings for these sequences: the consumer runs
        // out of cached items and reads the damaged index.
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..(if cfg!(miri) { 4 } else { 300 }) {
            let len = (x % 120) as usize;
            let ops: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    if x.is_multiple_of(17) {
                        forge((x >> 8) as u8 % 3)
                    } else {
                        x as u8
                    }
                })
                .collect();
            check_ops(&ops);
        }
    }
}
