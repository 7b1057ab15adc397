//! `SharedDict<K, V>`: a hash map of serde keys and values in one segment.

use crate::builder::{self, Builder, Kind};
use crate::error::{Corrupt, EncodeError, Exhausted, ReadError, WriteError};
use crate::store::{
    entry_size, Ctl, Entry, Field, Geometry, Grow, Rebuild, Store, Txn, MAX_ARENA, MAX_CAPACITY,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use shm_core::{CreateError, Home, ObjectKind, OpenError, Segment, SegmentName};
use std::borrow::Borrow;
use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex, PoisonError};

/// Slot meta word: never used.
const EMPTY: u64 = 0;
/// Slot meta word: removed (probing continues past it).
const TOMB: u64 = 1;

/// Encodes a value as the bytes stored in the segment (postcard).
pub(crate) fn encode<T: Serialize + ?Sized>(v: &T) -> Result<Vec<u8>, EncodeError> {
    postcard::to_allocvec(v).map_err(EncodeError::new)
}

/// Decodes stored bytes; bytes that do not decode are corrupt.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Corrupt> {
    postcard::from_bytes(bytes).map_err(|_| {
        Corrupt::new(
            "stored bytes do not decode as the declared type (length)",
            bytes.len() as u64,
        )
    })
}

/// The key hash: FNV-1a 64, then a finaliser so that the low bits (the first slot) mix well.
pub(crate) fn hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h
}

/// Table slots for `capacity` entries: a power of two, at least twice the capacity.
fn slots_for(capacity: u64) -> u64 {
    (capacity * 2).max(8).next_power_of_two()
}

/// Most occupied slots (entries and tombstones) before a rebuild: three quarters.
fn max_used(slots: u64) -> u64 {
    slots - slots / 4
}

/// An entry's (key bytes, value bytes).
pub(crate) type Item = (Vec<u8>, Vec<u8>);

/// What an `update_bytes` closure decided.
pub(crate) enum Change {
    /// Leave the entry as it is.
    Keep,
    /// Store these bytes.
    Put(Vec<u8>),
    /// Remove the entry.
    Remove,
}

enum Probe {
    Found { slot: usize, entry: Entry },
    Vacant { slot: Option<usize>, tomb: bool },
}

/// The byte-level dict shared by [`SharedDict`], [`Namespace`](crate::Namespace) and the
/// [`Manager`](crate::Manager)'s registry.
///
/// The table is open addressing with linear probing; slot `s` is index words `2s` (meta:
/// [`EMPTY`], [`TOMB`], or the entry's arena offset + 2) and `2s + 1` (the key hash).
#[derive(Debug)]
pub(crate) struct RawDict {
    /// The store this handle was made with (its segment is the dict's name).
    pub(crate) store: Arc<Store>,
    /// The newest store of the chain this handle has followed (the same, until it grew).
    cur: Mutex<Arc<Store>>,
}

/// Most successors a handle follows in one operation.
const MAX_HOPS: usize = 32;

/// Opens the successor `name` of `store` (same kind and type fingerprint).
fn open_successor(store: &Store, name: &SegmentName) -> Result<Store, ReadError> {
    let lost = |what| ReadError::Corrupt(Corrupt::new(what, 0));
    let seg = store
        .home()
        .segment()
        .ok_or(lost("a heap dict has no successor"))?;
    let (kind, fp) = (seg.header().kind(), seg.header().param());
    let next = Segment::builder(name, kind)
        .open()
        .map_err(|_| lost("the successor segment cannot be opened (removed?)"))?;
    let h = *next.header();
    if h.param() != fp || h.count() == 0 || h.count() > MAX_CAPACITY {
        return Err(lost("the successor segment holds other types"));
    }
    let geo = Geometry::from_header(h.count(), RawDict::index_words(h.count()), h.body_len())
        .map_err(|_| lost("the successor segment's geometry"))?;
    let (strategy, timeout) = store.wait();
    Store::new(Home::Segment(next), geo, strategy, timeout)
        .map_err(|_| lost("the successor segment is too short"))
}

/// The name of generation `g` of a dict whose current segment is `name`: the original name
/// (without a `.g<hex>` suffix), shortened if needed, then `.g<hex>`.
fn successor_name(name: &SegmentName, g: u64) -> SegmentName {
    let s = name.as_str();
    let base = match s.rsplit_once(".g") {
        Some((b, hex)) if !hex.is_empty() && hex.bytes().all(|c| c.is_ascii_hexdigit()) => b,
        _ => s,
    };
    let suffix = format!(".g{g:x}");
    let keep = shm_core::name::MAX_NAME_LEN.saturating_sub(suffix.len());
    let base = &base[..base.len().min(keep)];
    SegmentName::new(&format!("{base}{suffix}")).unwrap_or_else(|_| SegmentName::unique())
}

/// [`successor_name`], for tests.
#[cfg(test)]
pub(crate) fn successor_name_for_tests(name: &SegmentName, g: u64) -> SegmentName {
    successor_name(name, g)
}

/// Removes the names of every successor of the dict segment `first` (not `first` itself):
/// for the creator's drop and the manager's.
pub(crate) fn unlink_successors(first: &Store) {
    let mut next = first.successor_unlocked().ok().flatten();
    let mut keep: Option<Store> = None;
    for _ in 0..MAX_HOPS {
        let Some(name) = next.take() else { break };
        let from = keep.as_ref().unwrap_or(first);
        if let Ok(s) = open_successor(from, &name) {
            next = s.successor_unlocked().ok().flatten();
            keep = Some(s);
        }
        let _ = Segment::unlink_name(&name);
    }
}

/// Removes the names of every successor of the dict (or namespace) segment `name`, whatever
/// its types: for the [`Manager`](crate::Manager)'s drop.
pub(crate) fn unlink_successors_of(name: &SegmentName, kind: ObjectKind) {
    let Ok(seg) = Segment::builder(name, kind).open() else {
        return;
    };
    let h = *seg.header();
    if h.count() == 0 || h.count() > MAX_CAPACITY {
        return;
    }
    let Ok(geo) = Geometry::from_header(h.count(), RawDict::index_words(h.count()), h.body_len())
    else {
        return;
    };
    if let Ok(store) = Store::new(Home::Segment(seg), geo, Default::default(), None) {
        unlink_successors(&store);
    }
}

impl Drop for RawDict {
    fn drop(&mut self) {
        if self
            .store
            .home()
            .segment()
            .is_some_and(Segment::unlinks_on_drop)
        {
            unlink_successors(&self.store);
        }
    }
}

impl RawDict {
    pub(crate) fn new(store: Store) -> RawDict {
        let store = Arc::new(store);
        RawDict {
            cur: Mutex::new(Arc::clone(&store)),
            store,
        }
    }

    fn current(&self) -> Arc<Store> {
        Arc::clone(&self.cur.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Runs `op` under the lock of the newest store, following successors first.
    pub(crate) fn run<R, E: From<ReadError>>(
        &self,
        op: impl FnOnce(&mut Txn<'_>) -> Result<R, E>,
    ) -> Result<R, E> {
        for _ in 0..MAX_HOPS {
            let store = self.current();
            let mut txn = store.lock()?;
            match txn.successor().map_err(ReadError::from)? {
                None => return op(&mut txn),
                Some(name) => {
                    drop(txn);
                    let next = open_successor(&store, &name)?;
                    *self.cur.lock().unwrap_or_else(PoisonError::into_inner) = Arc::new(next);
                }
            }
        }
        Err(ReadError::Corrupt(Corrupt::new("successor chain too long", MAX_HOPS as u64)).into())
    }

    /// The newest store's capacity (after growth, the successor's).
    pub(crate) fn capacity(&self) -> u64 {
        self.current().geometry().capacity
    }
    pub(crate) fn index_words(capacity: u64) -> u64 {
        2 * slots_for(capacity)
    }

    fn slots(txn: &Txn<'_>) -> usize {
        txn.index_words() / 2
    }

    fn probe(txn: &Txn<'_>, h: u64, key: &[u8]) -> Result<Probe, Corrupt> {
        let slots = Self::slots(txn);
        let mask = slots - 1;
        let mut first_tomb = None;
        let mut i = (h as usize) & mask;
        for _ in 0..slots {
            match txn.index(2 * i) {
                EMPTY => {
                    return Ok(Probe::Vacant {
                        slot: Some(first_tomb.unwrap_or(i)),
                        tomb: first_tomb.is_some(),
                    })
                }
                TOMB => {
                    first_tomb.get_or_insert(i);
                }
                meta => {
                    if txn.index(2 * i + 1) == h {
                        let entry = txn.entry(meta - 2)?;
                        if txn.key_eq(&entry, key) {
                            return Ok(Probe::Found { slot: i, entry });
                        }
                    }
                }
            }
            i = (i + 1) & mask;
        }
        Ok(Probe::Vacant {
            slot: first_tomb,
            tomb: first_tomb.is_some(),
        })
    }

    /// Copies the live entries into the inactive arena and index, dropping tombstones and
    /// the entry in slot `skip`, adds `add` (key, value, hash, order) if given, and publishes
    /// it all with one store of `root`.
    fn compact(
        txn: &mut Txn<'_>,
        skip: Option<usize>,
        add: Option<(&[u8], &[u8], u64, u64)>,
    ) -> Result<(), Corrupt> {
        let slots = Self::slots(txn);
        let mask = slots - 1;
        let geo = txn.geometry();
        let mut r = txn.rebuild(true);
        let mut n = 0u64;
        let place = |r: &Rebuild<'_, '_>, h: u64, off: u64| -> Result<(), Corrupt> {
            let mut i = (h as usize) & mask;
            // At most `capacity` < `slots` entries go in, so an empty slot exists unless
            // another process scribbles over the new table meanwhile: bounded either way.
            for _ in 0..slots {
                if r.index(2 * i) == EMPTY {
                    r.set_index(2 * i, off + 2);
                    r.set_index(2 * i + 1, h);
                    return Ok(());
                }
                i = (i + 1) & mask;
            }
            Err(Corrupt::new(
                "no empty slot in a rebuilt table",
                slots as u64,
            ))
        };
        for s in 0..slots {
            let meta = txn.index(2 * s);
            if meta < 2 || Some(s) == skip {
                continue;
            }
            let e = txn.entry(meta - 2)?;
            n += 1;
            if n > geo.capacity || r.bump() + e.size() > geo.arena as u64 {
                // More entries, or more bytes, than the committed state can hold: slots
                // that share entries or were forged.
                return Err(Corrupt::new("entries beyond the capacity", n));
            }
            let off = r.carry(&e);
            place(&r, txn.index(2 * s + 1), off)?;
        }
        let mut order = txn.ctl.order;
        if let Some((key, value, h, o)) = add {
            n += 1;
            let off = r
                .add_entry(key, value, o)
                .map_err(|size| Corrupt::new("live bytes above the arena", size))?;
            if n > geo.capacity {
                return Err(Corrupt::new("entries beyond the capacity", n));
            }
            place(&r, h, off)?;
            order = order.max(o.wrapping_add(1));
        }
        let ctl = Ctl {
            len: n,
            used: n,
            bump: r.bump(),
            live: r.bump(),
            order,
        };
        r.publish(ctl);
        txn.reload()
    }

    /// Inserts or replaces, under the held lock. Nothing is written on error.
    ///
    /// It fits if the entries stay within the capacity and the live bytes (without the
    /// replaced entry, with the new one) within the arena; if the free space past `bump`
    /// is too small, the write and a compaction are published together.
    fn put(txn: &mut Txn<'_>, key: &[u8], value: &[u8], h: u64) -> Result<(), WriteError> {
        match Self::put_fixed(txn, key, value, h) {
            Err(WriteError::Full(_))
                if txn.store().grow().growable && txn.store().home().segment().is_some() =>
            {
                Self::grow_and_put(txn, key, value, h)
            }
            other => other,
        }
    }

    /// Moves the whole dict, plus the new entry, into a successor segment twice as large (or
    /// larger, to fit), then publishes it with one store of the moved word: a crash before
    /// that leaves the dict as it was (and an unpublished successor for `shm-ipc gc`).
    fn grow_and_put(txn: &mut Txn<'_>, key: &[u8], value: &[u8], h: u64) -> Result<(), WriteError> {
        let old = txn.store();
        let Some(seg) = old.home().segment() else {
            return Err(txn.full_bytes(entry_size(key.len(), value.len()), 0));
        };
        let geo = txn.geometry();
        let size = entry_size(key.len(), value.len());
        let cap = (geo.capacity * 2).max(txn.ctl.len + 1).min(MAX_CAPACITY);
        let arena = (geo.arena as u64 * 2)
            .max((txn.ctl.live + size) * 2)
            .min(MAX_ARENA);
        let geo2 = Geometry::new(cap, Self::index_words(cap), arena)
            .map_err(|_| txn.full_bytes(size, 0))?;
        let items = Self::entries_in_order(txn)?;
        let header = *seg.header();
        let names = old.names();
        let (strategy, timeout) = old.wait();
        let mut made = None;
        for g in old.grow().generation + 1..old.grow().generation + 17 {
            let name = successor_name(seg.name(), g);
            let grow = Grow {
                growable: true,
                generation: g,
            };
            let r = Segment::builder(&name, header.kind())
                .count(geo2.capacity)
                .param(header.param())
                .body_len(geo2.body_len())
                // SAFETY: `create` hands `init` the zeroed body of geo2.body_len() bytes,
                // 128-aligned, before anybody else can open it.
                .create(|body, _| unsafe { Store::init(body, &names, grow) });
            match r {
                Ok(next) => {
                    made = Some(next);
                    break;
                }
                Err(CreateError::AlreadyExists { .. }) => continue, // left by a crash
                Err(e) => return Err(WriteError::Grow(e)),
            }
        }
        let Some(next) = made else {
            return Err(WriteError::Grow(CreateError::AlreadyExists {
                name: successor_name(seg.name(), 0).as_str().into(),
            }));
        };
        let next = Store::created(Home::Segment(next), geo2, strategy, timeout);
        {
            let mut t2 = next.lock()?;
            for (k, v) in &items {
                Self::put_fixed(&mut t2, k, v, hash(k))?;
            }
            Self::put_fixed(&mut t2, key, value, h)?;
        }
        let seg2 = next
            .home()
            .segment()
            .ok_or(Corrupt::new("successor home", 0))?;
        // From here the successor outlives this handle; the original's creator removes it.
        seg2.persist();
        txn.publish_successor(seg2.name());
        Ok(())
    }

    /// Every entry's (key, value) bytes in insertion order.
    fn entries_in_order(txn: &Txn<'_>) -> Result<Vec<Item>, Corrupt> {
        let slots = Self::slots(txn);
        let mut out = Vec::with_capacity(txn.ctl.len as usize);
        for s in 0..slots {
            let meta = txn.index(2 * s);
            if meta < 2 {
                continue;
            }
            let e = txn.entry(meta - 2)?;
            let (mut k, mut v) = (Vec::with_capacity(e.klen), Vec::with_capacity(e.vlen));
            txn.read_key(&e, &mut k);
            txn.read_value(&e, &mut v);
            out.push((e.order, k, v));
        }
        out.sort_by_key(|(order, _, _)| *order);
        Ok(out.into_iter().map(|(_, k, v)| (k, v)).collect())
    }

    /// Inserts or replaces within the fixed capacity, under the held lock. Nothing is
    /// written on error.
    fn put_fixed(txn: &mut Txn<'_>, key: &[u8], value: &[u8], h: u64) -> Result<(), WriteError> {
        let size = entry_size(key.len(), value.len());
        let geo = txn.geometry();
        let slots = Self::slots(txn) as u64;
        let c = txn.ctl;
        match Self::probe(txn, h, key)? {
            Probe::Found { slot, entry } => {
                if txn.free_after_compaction(entry.size()) < size {
                    return Err(txn.full_bytes(size, entry.size()));
                }
                if !txn.fits(size) {
                    Self::compact(txn, Some(slot), Some((key, value, h, entry.order)))?;
                    return Ok(());
                }
                let (off, size) = txn
                    .write_entry(0, key, value, entry.order)
                    .map_err(|size| txn.full_bytes(size, entry.size()))?;
                txn.commit(&[
                    (txn.index_target(2 * slot), off + 2),
                    (txn.ctl_target(Field::Bump), c.bump + size),
                    (
                        txn.ctl_target(Field::Live),
                        c.live.saturating_sub(entry.size()) + size,
                    ),
                ])?;
                Ok(())
            }
            Probe::Vacant { slot, tomb } => {
                if c.len >= geo.capacity {
                    return Err(WriteError::Full(Exhausted::Entries {
                        capacity: geo.capacity,
                    }));
                }
                if txn.free_after_compaction(0) < size {
                    return Err(txn.full_bytes(size, 0));
                }
                let slot = match slot {
                    Some(s) if txn.fits(size) && (tomb || c.used < max_used(slots)) => s,
                    _ => {
                        Self::compact(txn, None, Some((key, value, h, c.order)))?;
                        return Ok(());
                    }
                };
                let (off, size) = txn
                    .write_entry(0, key, value, c.order)
                    .map_err(|size| txn.full_bytes(size, 0))?;
                let mut records = vec![
                    (txn.index_target(2 * slot), off + 2),
                    (txn.index_target(2 * slot + 1), h),
                    (txn.ctl_target(Field::Len), c.len + 1),
                    (txn.ctl_target(Field::Bump), c.bump + size),
                    (txn.ctl_target(Field::Live), c.live + size),
                    (txn.ctl_target(Field::Order), c.order.wrapping_add(1)),
                ];
                if !tomb {
                    records.push((txn.ctl_target(Field::Used), c.used + 1));
                }
                txn.commit(&records)?;
                Ok(())
            }
        }
    }

    /// Removes `key` under the held lock; `decode` checks the old value first (so a value
    /// that does not decode is not removed).
    fn take<R>(
        txn: &mut Txn<'_>,
        key: &[u8],
        h: u64,
        decode: impl FnOnce(&[u8]) -> Result<R, Corrupt>,
    ) -> Result<Option<R>, Corrupt> {
        let Probe::Found { slot, entry } = Self::probe(txn, h, key)? else {
            return Ok(None);
        };
        let mut buf = Vec::new();
        txn.read_value(&entry, &mut buf);
        let old = decode(&buf)?;
        let c = txn.ctl;
        if c.len == 0 || c.live < entry.size() {
            return Err(Corrupt::new("length of a non-empty table", c.len));
        }
        txn.commit(&[
            (txn.index_target(2 * slot), TOMB),
            (txn.ctl_target(Field::Len), c.len - 1),
            (txn.ctl_target(Field::Live), c.live - entry.size()),
        ])?;
        Ok(Some(old))
    }

    pub(crate) fn get_bytes(&self, key: &[u8]) -> Result<Option<Vec<u8>>, ReadError> {
        let h = hash(key);
        self.run(|txn| match Self::probe(txn, h, key)? {
            Probe::Found { entry, .. } => {
                let mut out = Vec::with_capacity(entry.vlen);
                txn.read_value(&entry, &mut out);
                Ok(Some(out))
            }
            Probe::Vacant { .. } => Ok(None),
        })
    }

    pub(crate) fn contains(&self, key: &[u8]) -> Result<bool, ReadError> {
        let h = hash(key);
        self.run(|txn| Ok(matches!(Self::probe(txn, h, key)?, Probe::Found { .. })))
    }

    pub(crate) fn put_bytes(&self, key: &[u8], value: &[u8]) -> Result<(), WriteError> {
        let h = hash(key);
        self.run(|txn| Self::put(txn, key, value, h))
    }

    pub(crate) fn remove_bytes(&self, key: &[u8]) -> Result<Option<Vec<u8>>, ReadError> {
        self.take_decoded(key, |b| Ok(b.to_vec()))
    }

    /// Removes `key`, returning its value as `decode` makes it (checked before removing).
    pub(crate) fn take_decoded<R>(
        &self,
        key: &[u8],
        decode: impl FnOnce(&[u8]) -> Result<R, Corrupt>,
    ) -> Result<Option<R>, ReadError> {
        let h = hash(key);
        self.run(|txn| Ok(Self::take(txn, key, h, decode)?))
    }

    /// Read-modify-write of one entry under the lock: `f` gets the old value bytes and
    /// decides.
    pub(crate) fn update_bytes<E: From<WriteError> + From<ReadError>>(
        &self,
        key: &[u8],
        f: impl FnOnce(Option<&[u8]>) -> Result<Change, E>,
    ) -> Result<(), E> {
        let h = hash(key);
        self.run(|txn| {
            let old = match Self::probe(txn, h, key).map_err(WriteError::from)? {
                Probe::Found { entry, .. } => {
                    let mut buf = Vec::with_capacity(entry.vlen);
                    txn.read_value(&entry, &mut buf);
                    Some(buf)
                }
                Probe::Vacant { .. } => None,
            };
            let had = old.is_some();
            match f(old.as_deref())? {
                Change::Put(new) => Self::put(txn, key, &new, h)?,
                Change::Remove if had => {
                    Self::take(txn, key, h, |_| Ok(())).map_err(WriteError::from)?;
                }
                Change::Remove | Change::Keep => {}
            }
            Ok(())
        })
    }

    pub(crate) fn len(&self) -> Result<usize, ReadError> {
        self.run(|txn| Ok(txn.ctl.len as usize))
    }

    pub(crate) fn clear(&self) -> Result<(), ReadError> {
        self.run(|txn| {
            let order = txn.ctl.order;
            let r = txn.rebuild(true);
            r.publish(Ctl {
                order,
                ..Ctl::default()
            });
            txn.reload()?;
            Ok(())
        })
    }

    /// Every (key bytes, value bytes) pair, in insertion order, read under one lock.
    pub(crate) fn items(&self) -> Result<Vec<Item>, ReadError> {
        self.run(|txn| Ok(Self::entries_in_order(txn)?))
    }
}

/// A dict of serde keys and values in a named shared-memory segment: Python's
/// `Manager().dict()` without the server process.
///
/// Any process opens it by name; each operation takes the dict's robust lock for a few
/// hundred nanoseconds, copies bytes in or out, and releases it. Keys and values are encoded
/// with postcard: two keys are the same key when their encodings are equal. Entries live in
/// an arena of fixed capacity, set at creation ([`Builder::capacity`] entries,
/// [`Builder::arena_bytes`] bytes); a write that does not fit, even after compacting freed
/// space, fails with [`WriteError::Full`] and writes nothing.
///
/// A process killed in the middle of any operation leaves the dict as it was before or after
/// that operation (the protocol and its state table are in the [`store`](crate::store)
/// module docs). Opening it with other `K` or `V` types than it was created with is
/// [`OpenError::Mismatch`]. Bytes forged by another process give [`Corrupt`] errors.
///
/// Python's `d[k] = v` is [`insert`](Self::insert), `d[k]` is [`get`](Self::get),
/// `del d[k]` / `d.pop(k)` is [`remove`](Self::remove), `dict(d)` is
/// [`snapshot`](Self::snapshot) or [`to_vec`](Self::to_vec) (insertion order, like Python's).
/// Python's manager dict returns copies, and so does this one: change a value with
/// [`update`](Self::update), which runs a read-modify-write under the lock.
///
/// # Examples
///
/// ```
/// use shm_core::SegmentName;
/// use shm_manager::SharedDict;
///
/// let name = SegmentName::unique();
/// let d = SharedDict::<String, i64>::builder(&name).capacity(64).create()?;
/// d.insert("num", &10)?;
/// // Another process opens it by name (same key and value types, checked).
/// let other = SharedDict::<String, i64>::open(&name)?;
/// other.update("num", |v| v.map(|n| n - 1))?;
/// assert_eq!(d.get("num")?, Some(9));
/// assert!(SharedDict::<String, String>::open(&name).is_err()); // wrong value type
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct SharedDict<K, V> {
    pub(crate) raw: RawDict,
    _t: PhantomData<fn() -> (K, V)>,
}

impl<K, V> fmt::Debug for SharedDict<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedDict")
            .field("types", &self.raw.store.names())
            .field("geometry", &self.raw.store.geometry())
            .finish()
    }
}

impl<K: DeserializeOwned, V: DeserializeOwned> Kind for SharedDict<K, V> {
    const KIND: ObjectKind = ObjectKind::Dict;
    fn type_names() -> String {
        format!(
            "{} => {}",
            std::any::type_name::<K>(),
            std::any::type_name::<V>()
        )
    }
    fn layout() -> [usize; 4] {
        [
            std::mem::size_of::<K>(),
            std::mem::align_of::<K>(),
            std::mem::size_of::<V>(),
            std::mem::align_of::<V>(),
        ]
    }
    fn schema() -> [u64; 2] {
        [
            crate::schema::schema_hash::<K>(),
            crate::schema::schema_hash::<V>(),
        ]
    }
    fn index_words(capacity: u64) -> u64 {
        RawDict::index_words(capacity)
    }
    fn from_store(store: Store) -> Self {
        SharedDict {
            raw: RawDict::new(store),
            _t: PhantomData,
        }
    }
}

impl<K, V> Builder<SharedDict<K, V>> {
    /// Lets the dict grow (creator only; default: no). A write that does not fit, even
    /// after compaction, then moves the whole dict into a successor segment with twice the
    /// capacity and arena (named after this one, `.g1`, `.g2`, …) instead of failing with
    /// [`WriteError::Full`]; every handle, in every process, follows on its next operation.
    /// The move is published with one atomic store: a process killed during it leaves the
    /// dict as it was. The creator's handle removes the successors' names on drop.
    pub fn growable(mut self, growable: bool) -> Self {
        self.growable = growable;
        self
    }
}

impl<K, V> SharedDict<K, V>
where
    K: Serialize + DeserializeOwned,
    V: Serialize + DeserializeOwned,
{
    /// A builder for the dict named `name`.
    pub fn builder(name: &SegmentName) -> Builder<SharedDict<K, V>> {
        Builder::new(name)
    }

    /// Creates a dict with the default capacity ([`Builder::create`]).
    ///
    /// # Errors
    ///
    /// As [`Builder::create`].
    pub fn create(name: &SegmentName) -> Result<Self, CreateError> {
        Self::builder(name).create()
    }

    /// Opens an existing dict ([`Builder::open`]).
    ///
    /// # Errors
    ///
    /// As [`Builder::open`].
    pub fn open(name: &SegmentName) -> Result<Self, OpenError> {
        Self::builder(name).open()
    }

    /// A dict in this process's memory with the same layout and behaviour (tests, fuzzing).
    ///
    /// # Errors
    ///
    /// [`CreateError::InvalidParameter`] for a capacity of 0 or too large.
    pub fn in_memory(capacity: u64, arena_bytes: u64) -> Result<Self, CreateError> {
        builder::heap(capacity, arena_bytes)
    }

    /// The value for `key`, copied out.
    ///
    /// # Errors
    ///
    /// [`ReadError`]: a timeout or deadlock on the lock, or corrupt bytes.
    pub fn get<Q>(&self, key: &Q) -> Result<Option<V>, ReadError>
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        let kb = encode(key).map_err(|_| Corrupt::new("key does not encode", 0))?;
        match self.raw.get_bytes(&kb)? {
            Some(b) => Ok(Some(decode(&b)?)),
            None => Ok(None),
        }
    }

    /// Whether `key` is present.
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get).
    pub fn contains_key<Q>(&self, key: &Q) -> Result<bool, ReadError>
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        let kb = encode(key).map_err(|_| Corrupt::new("key does not encode", 0))?;
        self.raw.contains(&kb)
    }

    /// Sets `key` to `value` (Python's `d[key] = value`).
    ///
    /// # Errors
    ///
    /// [`WriteError::Full`] if the entries or the arena ran out (nothing is written),
    /// [`WriteError::Encode`] if serde fails, and lock or corruption errors.
    pub fn insert<Q, R>(&self, key: &Q, value: &R) -> Result<(), WriteError>
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
        V: Borrow<R>,
        R: Serialize + ?Sized,
    {
        let kb = encode(key).map_err(WriteError::Encode)?;
        let vb = encode(value).map_err(WriteError::Encode)?;
        self.raw.put_bytes(&kb, &vb)
    }

    /// Removes `key`, returning its value.
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get); a value that does not decode is left in place.
    pub fn remove<Q>(&self, key: &Q) -> Result<Option<V>, ReadError>
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        let kb = encode(key).map_err(|_| Corrupt::new("key does not encode", 0))?;
        self.raw.take_decoded(&kb, decode)
    }

    /// Replaces the entry for `key` with `f(old)`, all under the dict's lock, so no other
    /// process's update is lost in between: `f` gets the current value (`None` if absent)
    /// and returns the new one (`None` removes the entry).
    ///
    /// `f` runs while the lock is held: keep it short, and do not touch this dict from inside
    /// it (that is [`WriteError::Deadlock`], not a hang). If `f` panics, nothing is written.
    ///
    /// # Errors
    ///
    /// As [`insert`](Self::insert); a stored value that does not decode is
    /// [`WriteError::Corrupt`] and `f` is not called.
    pub fn update<Q>(
        &self,
        key: &Q,
        f: impl FnOnce(Option<V>) -> Option<V>,
    ) -> Result<(), WriteError>
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        let kb = encode(key).map_err(WriteError::Encode)?;
        self.raw.update_bytes(&kb, |old| {
            let old = old.map(decode::<V>).transpose()?;
            match f(old) {
                Some(v) => Ok(Change::Put(encode(&v).map_err(WriteError::Encode)?)),
                None => Ok(Change::Remove),
            }
        })
    }

    /// Number of entries.
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get).
    pub fn len(&self) -> Result<usize, ReadError> {
        self.raw.len()
    }

    /// Whether the dict is empty.
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get).
    pub fn is_empty(&self) -> Result<bool, ReadError> {
        Ok(self.len()? == 0)
    }

    /// Removes every entry.
    ///
    /// # Errors
    ///
    /// A timeout or deadlock on the lock, or a corrupt journal.
    pub fn clear(&self) -> Result<(), ReadError> {
        self.raw.clear()
    }

    /// Every entry, in insertion order (as Python's `dict(d).items()`), copied under one lock
    /// acquisition: a consistent snapshot.
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get).
    pub fn to_vec(&self) -> Result<Vec<(K, V)>, ReadError> {
        self.raw
            .items()?
            .into_iter()
            .map(|(k, v)| Ok((decode(&k)?, decode(&v)?)))
            .collect()
    }

    /// The keys, in insertion order (one consistent snapshot).
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get).
    pub fn keys(&self) -> Result<Vec<K>, ReadError> {
        self.raw
            .items()?
            .into_iter()
            .map(|(k, _)| Ok(decode(&k)?))
            .collect()
    }

    /// A consistent snapshot as a `HashMap`.
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get).
    pub fn snapshot(&self) -> Result<HashMap<K, V>, ReadError>
    where
        K: Hash + Eq,
    {
        Ok(self.to_vec()?.into_iter().collect())
    }

    /// An iterator over a consistent snapshot, in insertion order.
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get).
    pub fn iter(&self) -> Result<std::vec::IntoIter<(K, V)>, ReadError> {
        Ok(self.to_vec()?.into_iter())
    }

    /// The capacity in entries: fixed at creation, or, for a [growable](Builder::growable)
    /// dict, that of the segment it lives in now.
    pub fn capacity(&self) -> u64 {
        self.raw.capacity()
    }

    /// The segment this handle was made with, whose name is the dict's name (not for
    /// [`in_memory`](Self::in_memory); a grown dict lives on in successors).
    pub fn segment(&self) -> Option<&Segment> {
        self.raw.store.home().segment()
    }
}
