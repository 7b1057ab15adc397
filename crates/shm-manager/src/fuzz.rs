//! The operation model behind the `dict_ops` fuzz target (feature `test-hooks`): a byte
//! string read as dict operations, applied to a [`SharedDict`] on the heap and to a
//! `HashMap`, which must agree, including on when a write is `Full`; optionally followed by
//! bytes scribbled over the dict's memory, after which every operation must return (any
//! result) without panicking or hanging.

use crate::store::entry_size;
use crate::{Exhausted, SharedDict, WriteError};
use std::collections::HashMap;

type Model = HashMap<u16, Vec<u8>>;

fn enc_len<T: serde::Serialize>(v: &T) -> usize {
    postcard::to_allocvec(v).map_or(0, |b| b.len())
}

fn entry(k: u16, v: &Vec<u8>) -> u64 {
    entry_size(enc_len(&k), enc_len(v))
}

fn live(m: &Model) -> u64 {
    m.iter().map(|(k, v)| entry(*k, v)).sum()
}

/// Whether writing `new` at `key` fits: entries within `cap`, live bytes within `arena`.
fn fits(m: &Model, cap: u64, arena: u64, key: u16, new: &Vec<u8>) -> Result<(), Exhausted> {
    let old = m.get(&key).map(|v| entry(key, v));
    if old.is_none() && m.len() as u64 >= cap {
        return Err(Exhausted::Entries { capacity: cap });
    }
    let need = entry(key, new);
    let after = live(m) - old.unwrap_or(0) + need;
    if after > arena {
        return Err(Exhausted::Bytes {
            needed: need,
            free: arena - (live(m) - old.unwrap_or(0)),
        });
    }
    Ok(())
}

fn check_write(r: Result<(), WriteError>, want: Result<(), Exhausted>, what: &str) {
    match (r, want) {
        (Ok(()), Ok(())) => {}
        (Err(WriteError::Full(got)), Err(want)) => assert_eq!(got, want, "{what}"),
        (got, want) => panic!("{what}: dict says {got:?}, model says {want:?}"),
    }
}

/// Reads `data` as: capacity byte, arena byte, then 4-byte operations `[op, key, len, fill]`.
/// An op byte of 15 (mod 16) switches to scribbling: the remaining bytes, in triples
/// `[offset high, offset low, byte]`, are written into the dict's memory, then every
/// operation is called once. Panics if the dict and the model disagree before that point,
/// or if any operation panics after it; never otherwise.
pub fn dict_ops(data: &[u8]) {
    let [c, a, rest @ ..] = data else {
        return;
    };
    let cap = 1 + u64::from(*c % 32);
    let arena = 8 * (1 + u64::from(*a));
    let Ok(d) = SharedDict::<u16, Vec<u8>>::in_memory(cap, arena) else {
        panic!("in_memory({cap}, {arena}) failed");
    };
    let mut m = Model::new();
    let mut rest = rest;
    while let [op, key, len, fill, tail @ ..] = rest {
        rest = tail;
        let k = u16::from(*key % 48);
        let v = vec![*fill; usize::from(*len % 64)];
        match op % 16 {
            0..=3 => {
                let want = fits(&m, cap, arena, k, &v);
                check_write(d.insert(&k, &v), want, "insert");
                if want.is_ok() {
                    m.insert(k, v);
                }
            }
            4 | 5 => assert_eq!(d.get(&k).ok(), Some(m.get(&k).cloned()), "get"),
            6 | 7 => assert_eq!(d.remove(&k).ok(), Some(m.remove(&k)), "remove"),
            8 => assert_eq!(d.contains_key(&k).ok(), Some(m.contains_key(&k))),
            9 | 10 => {
                let f = |old: Option<Vec<u8>>| match old {
                    None => Some(vec![*fill]),
                    Some(_) if *fill % 7 == 0 => None,
                    Some(mut o) => {
                        o.push(*fill);
                        Some(o)
                    }
                };
                let new = f(m.get(&k).cloned());
                let want = match &new {
                    Some(n) => fits(&m, cap, arena, k, n),
                    None => Ok(()),
                };
                check_write(d.update(&k, f), want, "update");
                if want.is_ok() {
                    match new {
                        Some(n) => m.insert(k, n),
                        None => m.remove(&k),
                    };
                }
            }
            11 | 12 => {
                assert_eq!(d.len().ok(), Some(m.len()), "len");
                assert_eq!(d.snapshot().ok().as_ref(), Some(&m), "snapshot");
            }
            13 => {
                let keys = d.keys().unwrap_or_default();
                assert_eq!(keys.len(), m.len(), "keys");
                assert!(keys.iter().all(|k| m.contains_key(k)), "keys");
            }
            14 => {
                if *fill == 0 {
                    d.clear().expect("clear");
                    m.clear();
                }
            }
            _ => {
                scribble(&d, rest);
                return;
            }
        }
    }
}

fn scribble(d: &SharedDict<u16, Vec<u8>>, bytes: &[u8]) {
    let store = &d.raw.store;
    let len = store.geometry().body_len();
    let base = store.home().as_ptr().as_ptr();
    for t in bytes.chunks_exact(3) {
        // Never the lock (offsets below 64): a forged owner naming a live thread blocks,
        // which is the lock's concern; everything else is fair game.
        let off = 64 + (usize::from(t[0]) << 8 | usize::from(t[1])) % (len - 64);
        forge_byte(base, len, off, t[2]);
    }
    let _ = d.get(&1);
    let _ = d.contains_key(&2);
    let _ = d.insert(&3, &vec![3; 3]);
    let _ = d.update(&4, |v| {
        v.map(|mut v| {
            v.push(4);
            v
        })
    });
    let _ = d.remove(&5);
    let _ = d.len();
    let _ = d.to_vec();
    let _ = d.keys();
    let _ = d.insert(&6, &vec![6; 60]);
    let _ = d.clear();
    let _ = d.insert(&7, &vec![7]);
    let _ = d.get(&7);
}

/// Sets byte `off` of a heap home's body (`len` bytes, 128-aligned, a multiple of 8 long) to
/// `b`, as another process could: through an atomic store of the aligned word that holds it
/// (the words of the body are accessed atomically; a plain byte store there would be a
/// mixed access of the same location).
pub(crate) fn forge_byte(base: *mut u8, len: usize, off: usize, b: u8) {
    assert!(off < len && len.is_multiple_of(8) && (base as usize).is_multiple_of(8));
    let at = off & !7;
    let shift = 8 * (off & 7);
    // SAFETY: `at + 8 <= len` (len is a multiple of 8 and off < len), 8-aligned, inside the
    // heap block, which only the calling thread uses; AtomicU64 has no invalid bit patterns.
    let word = unsafe { std::sync::atomic::AtomicU64::from_ptr(base.wrapping_add(at).cast()) };
    let old = word.load(std::sync::atomic::Ordering::Relaxed);
    let new = (old & !(0xff << shift)) | (u64::from(b) << shift);
    word.store(new, std::sync::atomic::Ordering::Relaxed);
}
