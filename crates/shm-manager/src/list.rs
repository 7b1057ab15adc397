//! `SharedList<T>`: a list of serde values in one segment.

use crate::builder::{self, Builder, Kind};
use crate::dict::{decode, encode};
use crate::error::{Corrupt, Exhausted, IndexError, ReadError, WriteError};
use crate::store::{entry_size, Ctl, Field, Store, Txn};
use serde::de::DeserializeOwned;
use serde::Serialize;
use shm_core::{CreateError, ObjectKind, OpenError, Segment, SegmentName};
use std::borrow::Borrow;
use std::cmp::Ordering;
use std::fmt;
use std::marker::PhantomData;

/// A list of serde values in a named shared-memory segment: Python's `Manager().list()`
/// without the server process.
///
/// Index word `i` holds the arena offset of element `i`; elements are encoded with postcard.
/// `push`, `pop` and `set` change a few words through the journal; `insert`, `reverse`,
/// `sort` and `clear` write a new index on the inactive side and publish it with one store
/// (see the [`store`](crate::store) module docs). A process killed mid-operation leaves the
/// list as before or after it; opening it with another `T` is [`OpenError::Mismatch`].
///
/// # Examples
///
/// ```
/// use shm_core::SegmentName;
/// use shm_manager::SharedList;
///
/// let name = SegmentName::unique();
/// let l = SharedList::<i64>::builder(&name).capacity(100).create()?;
/// l.extend(&[0, 1, 2, 3, 4])?;
/// l.push(&5)?;
/// let other = SharedList::<i64>::open(&name)?; // as another process would
/// other.reverse()?;
/// assert_eq!(l.to_vec()?, [5, 4, 3, 2, 1, 0]);
/// assert_eq!(l.pop()?, Some(0));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct SharedList<T> {
    pub(crate) store: Store,
    _t: PhantomData<fn() -> T>,
}

impl<T> fmt::Debug for SharedList<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedList")
            .field("type", &self.store.names())
            .field("geometry", &self.store.geometry())
            .finish()
    }
}

impl<T: DeserializeOwned> Kind for SharedList<T> {
    const KIND: ObjectKind = ObjectKind::List;
    fn type_names() -> String {
        std::any::type_name::<T>().to_string()
    }
    fn layout() -> [usize; 4] {
        [std::mem::size_of::<T>(), std::mem::align_of::<T>(), 0, 0]
    }
    fn schema() -> [u64; 2] {
        [crate::schema::schema_hash::<T>(), 0]
    }
    fn index_words(capacity: u64) -> u64 {
        capacity
    }
    fn from_store(store: Store) -> Self {
        SharedList {
            store,
            _t: PhantomData,
        }
    }
}

/// A rebuild that adds nothing cannot run out of room: only its lock and corruption errors
/// remain.
fn read_error(e: WriteError) -> ReadError {
    match e {
        WriteError::Timeout => ReadError::Timeout,
        WriteError::Deadlock => ReadError::Deadlock,
        WriteError::Corrupt(c) => ReadError::Corrupt(c),
        other => ReadError::Corrupt(Corrupt::new(
            "a permutation failed to fit",
            matches!(other, WriteError::Full(_)) as u64,
        )),
    }
}

/// Where an element of a rebuilt list comes from.
#[derive(Clone, Copy)]
enum Src<'v> {
    /// Element `i` of the current list.
    Old(usize),
    /// New encoded bytes.
    New(&'v [u8]),
}

/// Writes a new index from `sources` on the inactive side and publishes it with one store
/// of `root`. With `new_arena`, every element is copied into the inactive arena half
/// (compaction); otherwise old elements stay and new ones go past `bump`. The caller checked
/// that the new elements fit.
fn rebuild_list<'v>(
    txn: &mut Txn<'_>,
    new_arena: bool,
    freed: u64,
    sources: impl Iterator<Item = Src<'v>>,
) -> Result<(), WriteError> {
    let geo = txn.geometry();
    let c = txn.ctl;
    let mut r = txn.rebuild(new_arena);
    let mut n = 0usize;
    for src in sources {
        if n as u64 >= geo.capacity {
            return Err(WriteError::Full(Exhausted::Entries {
                capacity: geo.capacity,
            }));
        }
        let off = match src {
            Src::Old(i) => {
                let e = txn.entry(txn.index(i))?;
                if new_arena && r.bump() + e.size() > geo.arena as u64 {
                    return Err(Corrupt::new("elements larger than the arena", r.bump()).into());
                }
                r.carry(&e)
            }
            Src::New(v) => r
                .add_entry(&[], v, 0)
                .map_err(|size| txn.full_bytes(size, 0))?,
        };
        r.set_index(n, off);
        n += 1;
    }
    let bump = r.bump();
    // `freed`: bytes of old elements left out (garbage now), when the arena is kept.
    let live = if new_arena {
        bump
    } else {
        (c.live + (bump - c.bump)).saturating_sub(freed)
    };
    r.publish(Ctl {
        len: n as u64,
        used: 0,
        bump,
        live,
        order: 0,
    });
    txn.reload()?;
    Ok(())
}

impl<T> SharedList<T>
where
    T: Serialize + DeserializeOwned,
{
    /// A builder for the list named `name`.
    pub fn builder(name: &SegmentName) -> Builder<SharedList<T>> {
        Builder::new(name)
    }

    /// Creates an empty list with the default capacity ([`Builder::create`]).
    ///
    /// # Errors
    ///
    /// As [`Builder::create`].
    pub fn create(name: &SegmentName) -> Result<Self, CreateError> {
        Self::builder(name).create()
    }

    /// Opens an existing list ([`Builder::open`]).
    ///
    /// # Errors
    ///
    /// As [`Builder::open`].
    pub fn open(name: &SegmentName) -> Result<Self, OpenError> {
        Self::builder(name).open()
    }

    /// A list in this process's memory with the same layout and behaviour (tests, fuzzing).
    ///
    /// # Errors
    ///
    /// [`CreateError::InvalidParameter`] for a capacity of 0 or too large.
    pub fn in_memory(capacity: u64, arena_bytes: u64) -> Result<Self, CreateError> {
        builder::heap(capacity, arena_bytes)
    }

    fn element(txn: &Txn<'_>, i: usize) -> Result<Vec<u8>, Corrupt> {
        let e = txn.entry(txn.index(i))?;
        let mut out = Vec::with_capacity(e.vlen);
        txn.read_value(&e, &mut out);
        Ok(out)
    }

    /// Appends `value` (Python's `append`).
    ///
    /// # Errors
    ///
    /// [`WriteError::Full`] if the capacity or the arena ran out (nothing is written), and
    /// encoding, lock or corruption errors.
    pub fn push<R>(&self, value: &R) -> Result<(), WriteError>
    where
        T: Borrow<R>,
        R: Serialize + ?Sized,
    {
        let vb = encode(value).map_err(WriteError::Encode)?;
        self.extend_encoded(&[vb])
    }

    /// Appends every value, all or none (one commit).
    ///
    /// # Errors
    ///
    /// As [`push`](Self::push).
    pub fn extend<'v, R, I>(&self, values: I) -> Result<(), WriteError>
    where
        T: Borrow<R>,
        R: Serialize + 'v + ?Sized,
        I: IntoIterator<Item = &'v R>,
    {
        let encoded = values
            .into_iter()
            .map(encode)
            .collect::<Result<Vec<_>, _>>()
            .map_err(WriteError::Encode)?;
        self.extend_encoded(&encoded)
    }

    fn extend_encoded(&self, values: &[Vec<u8>]) -> Result<(), WriteError> {
        let mut txn = self.store.lock()?;
        let cap = txn.geometry().capacity;
        let len = txn.ctl.len;
        if len + values.len() as u64 > cap {
            return Err(WriteError::Full(Exhausted::Entries { capacity: cap }));
        }
        let total: u64 = values.iter().map(|v| entry_size(0, v.len())).sum();
        if txn.free_after_compaction(0) < total {
            return Err(txn.full_bytes(total, 0));
        }
        if !txn.fits(total) {
            let old = (0..len as usize).map(Src::Old);
            return rebuild_list(
                &mut txn,
                true,
                0,
                old.chain(values.iter().map(|v| Src::New(v))),
            );
        }
        let mut skip = 0;
        for (j, v) in values.iter().enumerate() {
            let (off, size) = txn
                .write_entry(skip, &[], v, 0)
                .map_err(|size| txn.full_bytes(size, 0))?;
            // Past `len`: scratch until the length is committed.
            txn.write_index_scratch(len as usize + j, off);
            skip += size;
        }
        let c = txn.ctl;
        txn.commit(&[
            (txn.ctl_target(Field::Len), len + values.len() as u64),
            (txn.ctl_target(Field::Bump), c.bump + skip),
            (txn.ctl_target(Field::Live), c.live + skip),
        ])?;
        Ok(())
    }

    /// Removes and returns the last element.
    ///
    /// # Errors
    ///
    /// [`ReadError`]; an element that does not decode is left in place.
    pub fn pop(&self) -> Result<Option<T>, ReadError> {
        let mut txn = self.store.lock()?;
        let c = txn.ctl;
        if c.len == 0 {
            return Ok(None);
        }
        let e = txn.entry(txn.index(c.len as usize - 1))?;
        let mut buf = Vec::with_capacity(e.vlen);
        txn.read_value(&e, &mut buf);
        let v = decode(&buf)?;
        txn.commit(&[
            (txn.ctl_target(Field::Len), c.len - 1),
            (txn.ctl_target(Field::Live), c.live.saturating_sub(e.size())),
        ])?;
        Ok(Some(v))
    }

    /// Removes and returns the element at `index` (Python's `pop(i)`; `None` past the end).
    /// The elements after it move down (one publish of a new index).
    ///
    /// # Errors
    ///
    /// [`ReadError`]; an element that does not decode is left in place.
    pub fn pop_at(&self, index: usize) -> Result<Option<T>, ReadError> {
        let mut txn = self.store.lock()?;
        let len = txn.ctl.len as usize;
        if index >= len {
            return Ok(None);
        }
        let v = decode(&Self::element(&txn, index)?)?;
        let size = txn.entry(txn.index(index))?.size();
        let sources = (0..len).filter(|&j| j != index).map(Src::Old);
        // One publish: the new index, and `live` without the removed element's bytes.
        rebuild_list(&mut txn, false, size, sources).map_err(read_error)?;
        Ok(Some(v))
    }

    /// The element at `index`, copied out (`None` past the end).
    ///
    /// # Errors
    ///
    /// [`ReadError`].
    pub fn get(&self, index: usize) -> Result<Option<T>, ReadError> {
        let txn = self.store.lock()?;
        if index as u64 >= txn.ctl.len {
            return Ok(None);
        }
        let b = Self::element(&txn, index)?;
        drop(txn);
        Ok(Some(decode(&b)?))
    }

    /// Replaces the element at `index` (Python's `l[i] = v`).
    ///
    /// # Errors
    ///
    /// [`IndexError::OutOfRange`] if `index >= len`, else as [`push`](Self::push).
    pub fn set<R>(&self, index: usize, value: &R) -> Result<(), IndexError>
    where
        T: Borrow<R>,
        R: Serialize + ?Sized,
    {
        let vb = encode(value).map_err(WriteError::Encode)?;
        let mut txn = self.store.lock()?;
        let len = txn.ctl.len as usize;
        if index >= len {
            return Err(IndexError::OutOfRange { index, len });
        }
        let old = txn.entry(txn.index(index))?.size();
        let size = entry_size(0, vb.len());
        if txn.free_after_compaction(old) < size {
            return Err(txn.full_bytes(size, old).into());
        }
        if !txn.fits(size) {
            let sources = (0..len).map(|j| {
                if j == index {
                    Src::New(&vb)
                } else {
                    Src::Old(j)
                }
            });
            return Ok(rebuild_list(&mut txn, true, 0, sources)?);
        }
        let (off, size) = txn
            .write_entry(0, &[], &vb, 0)
            .map_err(|size| txn.full_bytes(size, old))?;
        let c = txn.ctl;
        txn.commit(&[
            (txn.index_target(index), off),
            (txn.ctl_target(Field::Bump), c.bump + size),
            (
                txn.ctl_target(Field::Live),
                (c.live + size).saturating_sub(old),
            ),
        ])?;
        Ok(())
    }

    /// Inserts `value` before `index` (`index == len` appends).
    ///
    /// # Errors
    ///
    /// [`IndexError::OutOfRange`] if `index > len`, else as [`push`](Self::push).
    pub fn insert<R>(&self, index: usize, value: &R) -> Result<(), IndexError>
    where
        T: Borrow<R>,
        R: Serialize + ?Sized,
    {
        let vb = encode(value).map_err(WriteError::Encode)?;
        let mut txn = self.store.lock()?;
        let len = txn.ctl.len as usize;
        if index > len {
            return Err(IndexError::OutOfRange { index, len });
        }
        let cap = txn.geometry().capacity;
        if len as u64 >= cap {
            return Err(WriteError::Full(Exhausted::Entries { capacity: cap }).into());
        }
        let size = entry_size(0, vb.len());
        if txn.free_after_compaction(0) < size {
            return Err(txn.full_bytes(size, 0).into());
        }
        let new_arena = !txn.fits(size);
        let sources = (0..index)
            .map(Src::Old)
            .chain([Src::New(&vb)])
            .chain((index..len).map(Src::Old));
        Ok(rebuild_list(&mut txn, new_arena, 0, sources)?)
    }

    /// Number of elements.
    ///
    /// # Errors
    ///
    /// [`ReadError`].
    pub fn len(&self) -> Result<usize, ReadError> {
        Ok(self.store.lock()?.ctl.len as usize)
    }

    /// Whether the list is empty.
    ///
    /// # Errors
    ///
    /// [`ReadError`].
    pub fn is_empty(&self) -> Result<bool, ReadError> {
        Ok(self.len()? == 0)
    }

    /// Reverses the list in place (one publish).
    ///
    /// # Errors
    ///
    /// [`ReadError`].
    pub fn reverse(&self) -> Result<(), ReadError> {
        let mut txn = self.store.lock()?;
        let len = txn.ctl.len as usize;
        rebuild_list(&mut txn, false, 0, (0..len).rev().map(Src::Old)).map_err(read_error)
    }

    /// Sorts the list (stable), comparing decoded elements with `cmp`; one publish.
    ///
    /// `cmp` runs under the list's lock.
    ///
    /// # Errors
    ///
    /// [`ReadError`]; an element that does not decode leaves the list unsorted.
    pub fn sort_by(&self, mut cmp: impl FnMut(&T, &T) -> Ordering) -> Result<(), ReadError> {
        let mut txn = self.store.lock()?;
        let len = txn.ctl.len as usize;
        let mut items = (0..len)
            .map(|i| Ok((i, decode::<T>(&Self::element(&txn, i)?)?)))
            .collect::<Result<Vec<_>, Corrupt>>()?;
        items.sort_by(|a, b| cmp(&a.1, &b.1));
        rebuild_list(
            &mut txn,
            false,
            0,
            items.into_iter().map(|(i, _)| Src::Old(i)),
        )
        .map_err(read_error)
    }

    /// Sorts the list in ascending order (stable; Python's `sort()`).
    ///
    /// # Errors
    ///
    /// As [`sort_by`](Self::sort_by).
    pub fn sort(&self) -> Result<(), ReadError>
    where
        T: Ord,
    {
        self.sort_by(T::cmp)
    }

    /// Removes every element.
    ///
    /// # Errors
    ///
    /// [`ReadError`].
    pub fn clear(&self) -> Result<(), ReadError> {
        let mut txn = self.store.lock()?;
        let r = txn.rebuild(true);
        r.publish(Ctl::default());
        txn.reload()?;
        Ok(())
    }

    /// A copy of every element, read under one lock acquisition (Python's `list(l)`).
    ///
    /// # Errors
    ///
    /// [`ReadError`].
    pub fn to_vec(&self) -> Result<Vec<T>, ReadError> {
        let txn = self.store.lock()?;
        let raw = (0..txn.ctl.len as usize)
            .map(|i| Self::element(&txn, i))
            .collect::<Result<Vec<_>, _>>()?;
        drop(txn);
        Ok(raw
            .iter()
            .map(|b| decode(b))
            .collect::<Result<Vec<_>, _>>()?)
    }

    /// The capacity in elements, fixed at creation.
    pub fn capacity(&self) -> u64 {
        self.store.geometry().capacity
    }

    /// The segment, if the list lives in one.
    pub fn segment(&self) -> Option<&Segment> {
        self.store.home().segment()
    }
}
