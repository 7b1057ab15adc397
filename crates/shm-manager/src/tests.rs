//! Unit and behaviour tests on heap homes (miri-friendly) and, where marked, on segments.

use crate::store::entry_size;
use crate::*;
use shm_core::{OpenError, SegmentName};
use std::collections::HashMap;

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

fn steps(n: usize) -> usize {
    if cfg!(miri) {
        (n / 100).max(2)
    } else {
        n
    }
}

#[test]
fn dict_smoke() {
    let d = SharedDict::<String, i64>::in_memory(16, 1024).unwrap();
    assert!(d.is_empty().unwrap());
    d.insert("a", &1).unwrap();
    d.insert("b", &2).unwrap();
    d.insert("a", &3).unwrap();
    assert_eq!(d.get("a").unwrap(), Some(3));
    assert_eq!(d.get("b").unwrap(), Some(2));
    assert_eq!(d.get("c").unwrap(), None);
    assert!(d.contains_key("b").unwrap());
    assert_eq!(d.len().unwrap(), 2);
    assert_eq!(d.remove("b").unwrap(), Some(2));
    assert_eq!(d.remove("b").unwrap(), None);
    assert_eq!(d.len().unwrap(), 1);
    d.update("a", |v| v.map(|n| n * 10)).unwrap();
    d.update("z", |v| Some(v.unwrap_or(0) + 1)).unwrap();
    assert_eq!(d.get("a").unwrap(), Some(30));
    assert_eq!(d.get("z").unwrap(), Some(1));
    d.update("a", |_| None).unwrap();
    assert!(!d.contains_key("a").unwrap());
    d.clear().unwrap();
    assert_eq!(d.len().unwrap(), 0);
    assert_eq!(d.get("z").unwrap(), None);
}

#[test]
fn dict_keeps_insertion_order_like_python() {
    let d = SharedDict::<String, i64>::in_memory(16, 2048).unwrap();
    for (k, v) in [("name", 1), ("age", 18), ("Job", 3)] {
        d.insert(k, &v).unwrap();
    }
    d.insert("name", &7).unwrap(); // an update keeps the position
    let keys: Vec<String> = d.keys().unwrap();
    assert_eq!(keys, ["name", "age", "Job"]);
    assert_eq!(d.to_vec().unwrap()[0], ("name".to_string(), 7));
    let snap = d.snapshot().unwrap();
    assert_eq!(snap.len(), 3);
    assert_eq!(snap["age"], 18);
}

#[test]
fn dict_full_of_entries_writes_nothing() {
    let d = SharedDict::<u32, u32>::in_memory(4, 4096).unwrap();
    for k in 0..4 {
        d.insert(&k, &k).unwrap();
    }
    match d.insert(&99, &1) {
        Err(WriteError::Full(Exhausted::Entries { capacity: 4 })) => {}
        other => panic!("expected Full(Entries), got {other:?}"),
    }
    assert_eq!(d.len().unwrap(), 4);
    assert_eq!(d.get(&99).unwrap(), None);
    // Replacing an existing key still works at capacity.
    d.insert(&3, &33).unwrap();
    assert_eq!(d.get(&3).unwrap(), Some(33));
    // After a removal there is room again.
    d.remove(&0).unwrap();
    d.insert(&99, &1).unwrap();
    assert_eq!(d.get(&99).unwrap(), Some(1));
}

#[test]
fn dict_full_of_bytes_writes_nothing_and_compaction_reclaims() {
    // Room for about three 100-byte values.
    let size = entry_size(1, 101); // postcard: 1-byte length prefix + 100 bytes
    let d = SharedDict::<u8, Vec<u8>>::in_memory(64, 3 * size).unwrap();
    for k in 0..3u8 {
        d.insert(&k, &vec![k; 100]).unwrap();
    }
    match d.insert(&9, &vec![9u8; 100]) {
        Err(WriteError::Full(Exhausted::Bytes { needed, free })) => {
            assert_eq!(needed, size);
            assert!(free < needed);
        }
        other => panic!("expected Full(Bytes), got {other:?}"),
    }
    assert_eq!(d.len().unwrap(), 3);
    assert_eq!(d.get(&9).unwrap(), None);
    // Overwrites leave garbage behind; compaction reclaims it, many times over.
    for round in 0..steps(200) {
        let k = (round % 3) as u8;
        d.insert(&k, &vec![round as u8; 100]).unwrap();
        assert_eq!(d.get(&k).unwrap(), Some(vec![round as u8; 100]));
    }
    d.remove(&0).unwrap();
    d.insert(&9, &vec![9u8; 100]).unwrap();
    assert_eq!(d.len().unwrap(), 3);
}

#[test]
fn dict_matches_a_hashmap_model() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let cap = 24;
    let arena = 904;
    let d = SharedDict::<u16, Vec<u8>>::in_memory(cap, arena).unwrap();
    let mut model: HashMap<u16, Vec<u8>> = HashMap::new();
    let live = |m: &HashMap<u16, Vec<u8>>| -> u64 {
        m.iter()
            .map(|(k, v)| {
                entry_size(
                    postcard::to_allocvec(k).unwrap().len(),
                    postcard::to_allocvec(v).unwrap().len(),
                )
            })
            .sum()
    };
    for _ in 0..steps(20_000) {
        let r = rng.next();
        let key = (r >> 8) as u16 % 40;
        let vlen = ((r >> 24) % 60) as usize;
        let value = vec![(r >> 32) as u8; vlen];
        match r % 7 {
            0..=2 => {
                let kb = postcard::to_allocvec(&key).unwrap().len();
                let new = entry_size(kb, postcard::to_allocvec(&value).unwrap().len());
                let old = model
                    .get(&key)
                    .map(|v| entry_size(kb, postcard::to_allocvec(v).unwrap().len()));
                let fits_entries = old.is_some() || (model.len() as u64) < cap;
                let fits_bytes = live(&model) - old.unwrap_or(0) + new <= arena;
                match d.insert(&key, &value) {
                    Ok(()) => {
                        assert!(
                            fits_entries && fits_bytes,
                            "{fits_entries} {fits_bytes} live {} old {old:?} new {new} len {}",
                            live(&model),
                            model.len()
                        );
                        model.insert(key, value);
                    }
                    Err(WriteError::Full(Exhausted::Entries { .. })) => assert!(!fits_entries),
                    Err(WriteError::Full(Exhausted::Bytes { .. })) => {
                        assert!(fits_entries && !fits_bytes)
                    }
                    Err(e) => panic!("insert: {e}"),
                }
            }
            3 => assert_eq!(d.get(&key).unwrap(), model.get(&key).cloned()),
            4 => assert_eq!(d.remove(&key).unwrap(), model.remove(&key)),
            5 => assert_eq!(d.contains_key(&key).unwrap(), model.contains_key(&key)),
            _ => {
                assert_eq!(d.len().unwrap(), model.len());
                assert_eq!(d.snapshot().unwrap(), model);
            }
        }
    }
}

#[test]
fn list_smoke_and_python_semantics() {
    let l = SharedList::<i64>::in_memory(32, 4096).unwrap();
    l.extend(&[0, 1, 2, 3, 4]).unwrap();
    l.push(&5).unwrap();
    assert_eq!(l.len().unwrap(), 6);
    l.reverse().unwrap();
    assert_eq!(l.to_vec().unwrap(), [5, 4, 3, 2, 1, 0]);
    assert_eq!(l.pop().unwrap(), Some(0));
    l.insert(0, &9).unwrap();
    l.insert(6, &-1).unwrap();
    assert_eq!(l.to_vec().unwrap(), [9, 5, 4, 3, 2, 1, -1]);
    l.set(1, &50).unwrap();
    assert_eq!(l.get(1).unwrap(), Some(50));
    assert_eq!(l.get(7).unwrap(), None);
    assert!(matches!(
        l.set(7, &0),
        Err(IndexError::OutOfRange { index: 7, len: 7 })
    ));
    assert!(matches!(
        l.insert(8, &0),
        Err(IndexError::OutOfRange { index: 8, len: 7 })
    ));
    l.sort().unwrap();
    assert_eq!(l.to_vec().unwrap(), [-1, 1, 2, 3, 4, 9, 50]);
    l.sort_by(|a, b| b.cmp(a)).unwrap();
    assert_eq!(l.to_vec().unwrap(), [50, 9, 4, 3, 2, 1, -1]);
    assert_eq!(l.pop_at(1).unwrap(), Some(9));
    assert_eq!(l.pop_at(9).unwrap(), None);
    assert_eq!(l.to_vec().unwrap(), [50, 4, 3, 2, 1, -1]);
    l.clear().unwrap();
    assert!(l.is_empty().unwrap());
    assert_eq!(l.pop().unwrap(), None);
}

#[test]
fn list_full_writes_nothing() {
    let l = SharedList::<u8>::in_memory(3, 4096).unwrap();
    l.extend(&[1, 2]).unwrap();
    assert!(matches!(
        l.extend(&[3, 4]),
        Err(WriteError::Full(Exhausted::Entries { capacity: 3 }))
    ));
    assert_eq!(l.to_vec().unwrap(), [1, 2]); // all or nothing
    l.push(&3).unwrap();
    assert!(matches!(
        l.push(&4),
        Err(WriteError::Full(Exhausted::Entries { .. }))
    ));
    assert!(matches!(
        l.insert(0, &4),
        Err(IndexError::Write(WriteError::Full(_)))
    ));
    assert_eq!(l.to_vec().unwrap(), [1, 2, 3]);

    let size = entry_size(0, 51);
    let big = SharedList::<Vec<u8>>::in_memory(100, 2 * size).unwrap();
    big.push(&vec![1; 50]).unwrap();
    big.push(&vec![2; 50]).unwrap();
    assert!(matches!(
        big.push(&vec![3; 50]),
        Err(WriteError::Full(Exhausted::Bytes { .. }))
    ));
    // Replacing reuses space through compaction.
    for round in 0..steps(100) {
        big.set(round % 2, &vec![round as u8; 50]).unwrap();
    }
    assert_eq!(big.len().unwrap(), 2);
    big.pop().unwrap();
    big.push(&vec![7; 50]).unwrap();
    assert_eq!(big.get(1).unwrap(), Some(vec![7; 50]));
}

#[test]
fn list_matches_a_vec_model() {
    let mut rng = Rng(12345);
    let (cap, arena) = (20u64, 704u64);
    let l = SharedList::<Vec<u8>>::in_memory(cap, arena).unwrap();
    let mut model: Vec<Vec<u8>> = Vec::new();
    let size = |v: &Vec<u8>| entry_size(0, postcard::to_allocvec(v).unwrap().len());
    for _ in 0..steps(10_000) {
        let r = rng.next();
        let v = vec![(r >> 40) as u8; ((r >> 16) % 40) as usize];
        let live: u64 = model.iter().map(size).sum();
        let i = if model.is_empty() {
            0
        } else {
            ((r >> 8) as usize) % (model.len() + 1)
        };
        match r % 8 {
            0 | 1 => {
                let ok = (model.len() as u64) < cap && live + size(&v) <= arena;
                assert_eq!(
                    l.push(&v).is_ok(),
                    ok,
                    "push {} live {live} size {}",
                    model.len(),
                    size(&v)
                );
                if ok {
                    model.push(v);
                }
            }
            2 => {
                let ok = (model.len() as u64) < cap && live + size(&v) <= arena;
                assert_eq!(l.insert(i, &v).is_ok(), ok);
                if ok {
                    model.insert(i, v);
                }
            }
            3 => {
                let ok = i < model.len() && live - size(&model[i]) + size(&v) <= arena;
                assert_eq!(l.set(i, &v).is_ok(), ok, "set {i}");
                if ok {
                    model[i] = v;
                }
            }
            4 if r.is_multiple_of(3) => {
                let want = (i < model.len()).then(|| model.remove(i));
                assert_eq!(l.pop_at(i).unwrap(), want, "pop_at {i}");
            }
            4 => assert_eq!(l.pop().unwrap(), model.pop()),
            5 => assert_eq!(l.get(i).unwrap(), model.get(i).cloned()),
            6 => {
                l.reverse().unwrap();
                model.reverse();
            }
            _ => {
                if r % 32 == 7 {
                    l.sort().unwrap();
                    model.sort();
                }
                assert_eq!(l.to_vec().unwrap(), model);
            }
        }
    }
}

#[test]
fn namespace_fields_keep_their_types() {
    let ns = Namespace::in_memory(8, 1024).unwrap();
    ns.set("x", &1i32).unwrap();
    ns.set("y", &2.5f64).unwrap();
    ns.set("name", &"zhang".to_string()).unwrap();
    assert_eq!(ns.get::<i32>("x").unwrap(), Some(1));
    assert_eq!(ns.get::<f64>("y").unwrap(), Some(2.5));
    assert_eq!(ns.get::<String>("name").unwrap().as_deref(), Some("zhang"));
    assert_eq!(ns.get::<i32>("nope").unwrap(), None);
    match ns.get::<i64>("x") {
        Err(FieldError::WrongType { found, .. }) => assert_eq!(found, "i32"),
        other => panic!("expected WrongType, got {other:?}"),
    }
    ns.set("x", &"now a string".to_string()).unwrap();
    assert!(ns.get::<i32>("x").is_err());
    assert_eq!(ns.fields().unwrap(), ["x", "y", "name"]);
    assert!(ns.remove("y").unwrap());
    assert!(!ns.remove("y").unwrap());
}

#[test]
fn update_inside_update_is_deadlock_not_hang() {
    let d = SharedDict::<u8, u8>::in_memory(4, 256).unwrap();
    d.insert(&1, &1).unwrap();
    let mut inner = None;
    d.update(&1, |v| {
        inner = Some(d.get(&1));
        v
    })
    .unwrap();
    assert_eq!(inner, Some(Err(ReadError::Deadlock)));
}

#[test]
fn a_panicking_update_writes_nothing_and_releases_the_lock() {
    let d = SharedDict::<u8, u8>::in_memory(4, 256).unwrap();
    d.insert(&1, &1).unwrap();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = d.update(&1, |_| panic!("boom"));
    }));
    assert!(r.is_err());
    assert_eq!(d.get(&1).unwrap(), Some(1));
    d.insert(&1, &2).unwrap();
}

#[test]
fn invalid_capacity_is_an_error() {
    assert!(matches!(
        SharedDict::<u8, u8>::in_memory(0, 256),
        Err(shm_core::CreateError::InvalidParameter { .. })
    ));
    assert!(SharedList::<u8>::in_memory(u64::MAX, 256).is_err());
}

/// Writes `bytes` at pseudo-random body offsets, then calls every operation: each returns
/// `Ok` or an error, never panics, never hangs.
fn scribble_then_call_everything(seed: u64, scribbles: usize) {
    let d = SharedDict::<u16, Vec<u8>>::in_memory(16, 1024).unwrap();
    let l = SharedList::<Vec<u8>>::in_memory(16, 1024).unwrap();
    scribble_then_call(&d, &l, seed, scribbles);
}

/// As [`scribble_then_call_everything`], on `d` and `l`.
fn scribble_then_call(
    d: &SharedDict<u16, Vec<u8>>,
    l: &SharedList<Vec<u8>>,
    seed: u64,
    scribbles: usize,
) {
    for k in 0..10u16 {
        d.insert(&k, &vec![k as u8; k as usize]).unwrap();
        l.push(&vec![k as u8; k as usize]).unwrap();
    }
    let mut rng = Rng(seed | 1);
    for store in [&d.raw.store, &l.store] {
        let len = store.geometry().body_len();
        let base = store.home().as_ptr().as_ptr();
        for _ in 0..scribbles {
            let r = rng.next();
            // Mostly the control words and index, sometimes anywhere (never the lock: a
            // forged lock word naming a live thread would block, which is the lock's own
            // concern and tested there).
            let off = if r.is_multiple_of(3) {
                64 + (r >> 8) as usize % (len - 64)
            } else {
                64 + (r >> 8) as usize % (crate::store::PREFIX + 512 - 64).min(len - 64)
            };
            crate::fuzz::forge_byte(base, len, off, (r >> 40) as u8);
        }
    }
    let _ = d.get(&3);
    let _ = d.contains_key(&4);
    let _ = d.insert(&5, &vec![1, 2, 3]);
    let _ = d.insert(&500, &vec![0; 200]);
    let _ = d.update(&6, |v| {
        v.map(|mut v| {
            v.push(1);
            v
        })
    });
    let _ = d.remove(&7);
    let _ = d.len();
    let _ = d.to_vec();
    let _ = d.snapshot();
    let _ = d.keys();
    let _ = d.clear();
    let _ = d.insert(&1, &vec![1]);
    let _ = l.get(2);
    let _ = l.push(&vec![4]);
    let _ = l.extend(&[vec![1], vec![2]]);
    let _ = l.set(1, &vec![9; 30]);
    let _ = l.insert(0, &vec![8]);
    let _ = l.pop();
    let _ = l.reverse();
    let _ = l.sort();
    let _ = l.to_vec();
    let _ = l.len();
    let _ = l.clear();
    let _ = l.push(&vec![1]);
}

#[test]
fn forged_bytes_give_errors_not_panics() {
    for seed in 0..steps(400) as u64 {
        scribble_then_call_everything(
            seed.wrapping_mul(0x9e37_79b9_7f4a_7c15),
            1 + (seed % 40) as usize,
        );
    }
}

/// Writes a word of a heap home's body (offsets inside the prefix only).
fn poke(base: *mut u8, off: usize, v: u64) {
    assert!(off + 8 <= crate::store::PREFIX && off.is_multiple_of(8));
    // SAFETY: the offset is inside the heap block's prefix (checked), 8-aligned (the block is
    // 128-aligned), and only the calling test thread uses the block.
    unsafe { base.wrapping_add(off).cast::<u64>().write(v) };
}

#[test]
#[cfg_attr(miri, ignore)]
fn forged_segment_bytes_give_errors_to_every_opener() {
    for seed in 0..20u64 {
        let (dn, ln) = (SegmentName::unique(), SegmentName::unique());
        let d = SharedDict::<u16, Vec<u8>>::builder(&dn)
            .capacity(16)
            .arena_bytes(1024)
            .create()
            .unwrap();
        let l = SharedList::<Vec<u8>>::builder(&ln)
            .capacity(16)
            .arena_bytes(1024)
            .create()
            .unwrap();
        // The scribbling goes through the creator's mapping; the operations through a
        // second handle, as another process would see it.
        let d2 = SharedDict::<u16, Vec<u8>>::open(&dn).unwrap();
        let l2 = SharedList::<Vec<u8>>::open(&ln).unwrap();
        scribble_then_call(&d, &l, seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1, 8);
        let _ = (d2.to_vec(), d2.insert(&1, &vec![1]), d2.len(), d2.clear());
        let _ = (l2.to_vec(), l2.push(&vec![1]), l2.reverse(), l2.pop());
    }
}

#[test]
fn a_forged_journal_is_corrupt() {
    let d = SharedDict::<u8, u8>::in_memory(4, 256).unwrap();
    d.insert(&1, &1).unwrap();
    let base = d.raw.store.home().as_ptr().as_ptr();
    poke(base, 80, 0);
    poke(base, 72, crate::store::COMMIT_TAG | 1);
    // A record targeting the lock word (offset 0) is refused.
    assert!(matches!(d.get(&1), Err(ReadError::Corrupt(_))));
    assert!(matches!(d.insert(&2, &2), Err(WriteError::Corrupt(_))));
}

#[test]
fn a_committed_but_unapplied_journal_is_replayed() {
    let d = SharedDict::<u8, u8>::in_memory(4, 256).unwrap();
    d.insert(&1, &1).unwrap();
    let len_before = d.len().unwrap();
    // Forge what a holder killed right after its commit store leaves behind: the journal
    // says "len := 3", nothing applied yet.
    let base = d.raw.store.home().as_ptr().as_ptr();
    let root = {
        // SAFETY: offset 64 (root) is inside the heap block.
        unsafe { base.wrapping_add(64).cast::<u64>().read() }
    };
    let len_word = 256 + 64 * (root & 1) as usize;
    poke(base, 80, len_word as u64);
    poke(base, 88, 3);
    poke(base, 72, crate::store::COMMIT_TAG | 1);
    assert_eq!(len_before, 1);
    // The next locker applies the record.
    assert_eq!(d.len().unwrap(), 3);
    // SAFETY: as above.
    assert_eq!(unsafe { base.wrapping_add(72).cast::<u64>().read() }, 0);
}

#[test]
#[cfg_attr(miri, ignore)]
fn segments_check_types_on_open() {
    let name = SegmentName::unique();
    let d = SharedDict::<String, i64>::builder(&name)
        .capacity(10)
        .create()
        .unwrap();
    d.insert("k", &1).unwrap();
    let same = SharedDict::<String, i64>::open(&name).unwrap();
    assert_eq!(same.get("k").unwrap(), Some(1));
    assert_eq!(same.capacity(), 10); // adopted
    match SharedDict::<String, u64>::open(&name) {
        Err(OpenError::Mismatch {
            field,
            expected,
            found,
        }) => {
            assert_eq!(field, "type");
            assert!(expected.contains("u64"), "{expected}");
            assert!(found.contains("i64"), "{found}");
        }
        other => panic!("expected Mismatch, got {other:?}"),
    }
    assert!(matches!(
        SharedDict::<u32, i64>::open(&name),
        Err(OpenError::Mismatch { .. })
    ));
    assert!(matches!(
        SharedList::<i64>::open(&name),
        Err(OpenError::WrongKind { .. })
    ));
    let l = SharedList::<i64>::open_or_create_test(&SegmentName::unique());
    assert!(matches!(
        SharedList::<i32>::open(l.segment().unwrap().name()),
        Err(OpenError::Mismatch { .. })
    ));
}

impl<T: serde::Serialize + serde::de::DeserializeOwned> SharedList<T> {
    fn open_or_create_test(name: &SegmentName) -> Self {
        let a = SharedList::<T>::builder(name).open_or_create().unwrap();
        let b = SharedList::<T>::builder(name).open_or_create().unwrap();
        assert!(a.segment().unwrap().is_creator());
        assert!(!b.segment().unwrap().is_creator());
        a
    }
}

#[test]
#[cfg_attr(miri, ignore)]
fn manager_hands_out_objects_by_key_and_removes_them() {
    let name = SegmentName::unique();
    let mgr = Manager::create(&name).unwrap();
    let d = mgr.dict::<String, i64>("data").unwrap();
    d.insert("num", &10).unwrap();
    let l = mgr.list::<i64>("l").unwrap();
    l.extend(&[1, 2, 3]).unwrap();
    let ns = mgr.namespace("ns").unwrap();
    ns.set("x", &1u8).unwrap();
    let v = mgr.value::<i32>("v", 3).unwrap();
    let a = mgr.array::<i32>("a", &[1, 2, 3]).unwrap();
    let q = mgr.queue::<i64>("q", 10).unwrap();
    let lock = mgr.lock("lock").unwrap();
    let (rl, sem, bsem, ev, cond, bar) = (
        mgr.rlock("rl").unwrap(),
        mgr.semaphore("s", 2).unwrap(),
        mgr.bounded_semaphore("bs", 1).unwrap(),
        mgr.event("e").unwrap(),
        mgr.condition("c").unwrap(),
        mgr.barrier("b", 2).unwrap(),
    );
    ev.set();
    let other_lock = mgr
        .segment_name("sem", shm_core::ObjectKind::Semaphore)
        .unwrap();
    assert_eq!(
        mgr.segment_name("sem", shm_core::ObjectKind::Semaphore)
            .unwrap(),
        other_lock
    );

    let child = Manager::open(mgr.name()).unwrap();
    assert!(!child.is_creator());
    assert_eq!(
        child
            .dict::<String, i64>("data")
            .unwrap()
            .get("num")
            .unwrap(),
        Some(10)
    );
    child.list::<i64>("l").unwrap().reverse().unwrap();
    assert_eq!(l.to_vec().unwrap(), [3, 2, 1]);
    assert_eq!(child.value::<i32>("v", 0).unwrap().load(), 3);
    assert_eq!(child.array::<i32>("a", &[]).unwrap().len(), 3);
    assert!(child.lock("lock").is_ok());
    assert!(child.event("e").unwrap().is_set());
    assert_eq!(child.semaphore("s", 0).unwrap().value(), 2);
    assert_eq!(child.barrier("b", 0).unwrap().parties(), 2);
    assert!(child.rlock("rl").is_ok() && child.condition("c").is_ok());
    assert!(child.bounded_semaphore("bs", 0).is_ok());
    assert!(matches!(
        child.list::<i64>("data"),
        Err(ManagerError::WrongKind { .. })
    ));
    assert!(matches!(
        child.dict::<String, String>("data"),
        Err(ManagerError::Open { .. })
    ));
    let keys: Vec<String> = child.keys().unwrap().into_iter().map(|(k, _)| k).collect();
    assert_eq!(
        keys,
        ["data", "l", "ns", "v", "a", "q", "lock", "rl", "s", "bs", "e", "c", "b", "sem"]
    );
    // Objects created through a child are the creating manager's too.
    child.dict::<u8, u8>("from_child").unwrap();
    let names: Vec<SegmentName> = child
        .records()
        .unwrap()
        .into_iter()
        .filter(|(k, _)| k != "sem") // only registered: nothing was created
        .map(|(_, r)| SegmentName::new(&r.name).unwrap())
        .collect();
    assert!(names
        .iter()
        .all(|n| n.as_str().starts_with(&name.as_str()[..20])));
    drop(child);
    for n in &names {
        assert!(shm_core::Segment::exists(n), "{n:?} removed by an opener");
    }
    drop((d, l, ns, v, a, q, lock));
    drop((rl, sem, bsem, ev, cond, bar));
    drop(mgr);
    for n in &names {
        assert!(!shm_core::Segment::exists(n), "{n:?} left behind");
    }
    assert!(!shm_core::Segment::exists(&name));
}

#[test]
fn dict_ops_model_agrees_on_random_inputs() {
    let mut rng = Rng(0xdead_beef);
    for round in 0..steps(300) {
        let n = 2 + (rng.next() % 400) as usize;
        let mut data: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
        // Most rounds without the scribble op, so that the model check runs long.
        if round % 4 != 0 {
            for op in data.iter_mut().skip(2).step_by(4) {
                if *op % 16 == 15 {
                    *op = 0;
                }
            }
        }
        crate::fuzz::dict_ops(&data);
    }
}

#[test]
fn threads_updating_at_once_lose_nothing() {
    let d = SharedDict::<String, u64>::in_memory(8, 1024).unwrap();
    let n = steps(2000) as u64;
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..n {
                    d.update("c", |v| Some(v.unwrap_or(0) + 1)).unwrap();
                }
            });
        }
    });
    assert_eq!(d.get("c").unwrap(), Some(4 * n));
}

#[test]
#[cfg_attr(miri, ignore)]
fn a_handle_timeout_bounds_the_wait_for_a_held_lock() {
    let name = SegmentName::unique();
    let d = SharedDict::<u8, u8>::builder(&name)
        .capacity(4)
        .create()
        .unwrap();
    d.insert(&1, &1).unwrap();
    let impatient = SharedDict::<u8, u8>::builder(&name)
        .lock_timeout(std::time::Duration::from_millis(50))
        .open()
        .unwrap();
    let (held_tx, held_rx) = std::sync::mpsc::channel();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    std::thread::scope(|s| {
        let d = &d;
        s.spawn(move || {
            d.update(&1, |v| {
                held_tx.send(()).unwrap();
                done_rx.recv().unwrap();
                v
            })
            .unwrap();
        });
        held_rx.recv().unwrap();
        assert_eq!(impatient.get(&1), Err(ReadError::Timeout));
        assert!(matches!(impatient.insert(&2, &2), Err(WriteError::Timeout)));
        done_tx.send(()).unwrap();
    });
    assert_eq!(impatient.get(&1).unwrap(), Some(1));
}

#[test]
#[cfg_attr(miri, ignore)]
fn a_forged_lock_owner_is_taken_over_not_waited_for() {
    let d = SharedDict::<u8, u8>::in_memory(4, 256).unwrap();
    d.insert(&1, &1).unwrap();
    // A thread id above any pid_max: no such thread, so the "holder" is dead.
    poke(
        d.raw.store.home().as_ptr().as_ptr(),
        0,
        0x0000_0001_7fff_fff0,
    );
    assert_eq!(d.get(&1).unwrap(), Some(1));
    d.insert(&2, &2).unwrap();
    assert_eq!(d.len().unwrap(), 2);
}

#[test]
fn errors_and_handles_cross_threads_and_box_into_dyn_error() {
    fn send_sync_static<T: Send + Sync + 'static>() {}
    fn error<E: std::error::Error + Send + Sync + 'static>() {}
    send_sync_static::<SharedDict<String, Vec<u8>>>();
    send_sync_static::<SharedList<String>>();
    send_sync_static::<Namespace>();
    send_sync_static::<Manager>();
    error::<ReadError>();
    error::<WriteError>();
    error::<IndexError>();
    error::<FieldError>();
    error::<ManagerError>();
    error::<Corrupt>();
    let boxed: Box<dyn std::error::Error + Send + Sync> =
        WriteError::Full(Exhausted::Entries { capacity: 1 }).into();
    assert!(boxed.to_string().contains("full"));
}

#[test]
#[cfg_attr(miri, ignore)]
fn objects_open_as_typed_role_arguments() {
    use shm_process::Shared;
    let mgr = Manager::create(&SegmentName::unique()).unwrap();
    let d = mgr.dict::<String, i64>("data").unwrap();
    d.insert("k", &7).unwrap();
    let opened = mgr.shared().open().unwrap();
    assert!(!opened.is_creator());
    assert_eq!(
        opened
            .dict::<String, i64>("data")
            .unwrap()
            .get("k")
            .unwrap(),
        Some(7)
    );
    let name = mgr.segment_name_of("data").unwrap().unwrap();
    assert_eq!(
        Shared::<SharedDict<String, i64>>::new(&name)
            .open()
            .unwrap()
            .len()
            .unwrap(),
        1
    );
    assert!(Shared::<SharedDict<String, String>>::new(&name)
        .open()
        .is_err());
    assert!(Shared::<SharedList<i64>>::new(&name).open().is_err());
    assert!(Shared::<Namespace>::new(&name).open().is_err());
}

#[test]
#[cfg_attr(miri, ignore)]
fn a_growable_dict_moves_into_bigger_segments_and_every_handle_follows() {
    let name = SegmentName::new(&format!("grow{:x}", std::process::id() ^ 0x5a5a)).unwrap();
    let d = SharedDict::<u32, Vec<u8>>::builder(&name)
        .capacity(4)
        .arena_bytes(256)
        .growable(true)
        .create()
        .unwrap();
    let early = SharedDict::<u32, Vec<u8>>::open(&name).unwrap(); // opened before growth
    for k in 0..200u32 {
        d.insert(&k, &vec![k as u8; (k % 50) as usize]).unwrap();
    }
    assert!(d.capacity() >= 200, "capacity {}", d.capacity());
    assert_eq!(early.len().unwrap(), 200);
    assert_eq!(early.get(&7).unwrap(), Some(vec![7; 7]));
    early.insert(&7, &vec![1, 2, 3]).unwrap();
    assert_eq!(d.get(&7).unwrap(), Some(vec![1, 2, 3]));
    // Insertion order survives the moves.
    assert_eq!(d.keys().unwrap(), (0..200).collect::<Vec<u32>>());
    let late = SharedDict::<u32, Vec<u8>>::open(&name).unwrap(); // opened after growth
    assert_eq!(late.len().unwrap(), 200);
    // Successors are named after the dict; the creator's drop removes them all.
    let successors: Vec<SegmentName> = (1..=8)
        .map(|g| super::dict::successor_name_for_tests(&name, g))
        .filter(shm_core::Segment::exists)
        .collect();
    assert!(successors.len() >= 5, "{successors:?}");
    drop((early, late));
    drop(d);
    for s in &successors {
        assert!(!shm_core::Segment::exists(s), "{s} left behind");
    }
    assert!(!shm_core::Segment::exists(&name));
}

#[test]
#[cfg_attr(miri, ignore)]
fn a_fixed_dict_stays_full_and_a_heap_dict_never_grows() {
    let name = SegmentName::unique();
    let d = SharedDict::<u32, u32>::builder(&name)
        .capacity(2)
        .create()
        .unwrap();
    d.insert(&1, &1).unwrap();
    d.insert(&2, &2).unwrap();
    assert!(matches!(d.insert(&3, &3), Err(WriteError::Full(_))));
    let h = SharedDict::<u32, u32>::in_memory(2, 256).unwrap();
    h.insert(&1, &1).unwrap();
    h.insert(&2, &2).unwrap();
    assert!(matches!(h.insert(&3, &3), Err(WriteError::Full(_))));
}

#[test]
#[cfg_attr(miri, ignore)]
fn a_managers_growable_dict_is_removed_with_its_successors() {
    let mgr = Manager::create(&SegmentName::unique()).unwrap();
    let d = mgr
        .dict_with::<u32, u32>("g", |b| b.capacity(2).arena_bytes(64).growable(true))
        .unwrap();
    for k in 0..50 {
        d.insert(&k, &k).unwrap();
    }
    let child = Manager::open(mgr.name()).unwrap();
    assert_eq!(child.dict::<u32, u32>("g").unwrap().len().unwrap(), 50);
    let name = mgr.segment_name_of("g").unwrap().unwrap();
    let successors: Vec<SegmentName> = (1..=8)
        .map(|g| super::dict::successor_name_for_tests(&name, g))
        .filter(shm_core::Segment::exists)
        .collect();
    assert!(!successors.is_empty());
    drop((d, child, mgr));
    for s in successors.iter().chain([&name]) {
        assert!(!shm_core::Segment::exists(s), "{s} left behind");
    }
}
