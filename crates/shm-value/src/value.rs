//! `Value<T>` (with its embedded RLock) and `RawValue<T>` (atomics only).

use crate::element::{self, AtomicElement, IntElement};
use crate::error::UpdateError;
use shm_core::{CreateError, Home, ObjectKind, OpenError, Segment, SegmentName};
use shm_lock::{
    LockError, LockTimeoutError, RLockGuard, RLockRef, RLockState, TryLockError, RLOCK_STATE_SIZE,
};
use std::fmt;
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::atomic::Ordering::SeqCst;
use std::time::Duration;

/// Where a `Value`'s element lies in its body: after the 32-byte [`RLockState`] at offset 0,
/// 8-aligned (every typecode element is at most 8 bytes).
pub const VALUE_DATA_OFFSET: usize = 32;
/// Bytes of a `Value`'s body.
pub const VALUE_BODY_LEN: usize = 64;
/// Bytes of a `RawValue`'s body: the element at offset 0.
pub const RAW_VALUE_BODY_LEN: usize = 8;

const _: () = assert!(RLOCK_STATE_SIZE <= VALUE_DATA_OFFSET);
const _: () =
    assert!(VALUE_DATA_OFFSET.is_multiple_of(8) && VALUE_DATA_OFFSET + 8 <= VALUE_BODY_LEN);
#[cfg(not(loom))]
const _: () = assert!(std::mem::size_of::<RLockState>() == RLOCK_STATE_SIZE);
#[cfg(not(loom))]
const _: () = assert!(std::mem::align_of::<RLockState>() <= 8);

// ---------------------------------------------------------------------------------------------
// The shared part: one element in a home.

/// One atomic element at `data` inside `home`.
///
/// Invariant: `data` points into `home`'s memory, aligned for `T::Atomic`, with
/// `size_of::<T::Atomic>()` bytes in bounds; the home lives as long as `self`.
struct Slot<T: AtomicElement> {
    home: Home,
    data: NonNull<T::Atomic>,
}

// SAFETY: the slot is only accessed through `T::Atomic`, which is Send + Sync; the home is
// Send + Sync (a segment or an owned heap block).
unsafe impl<T: AtomicElement> Send for Slot<T> {}
// SAFETY: as above: all shared access is atomic.
unsafe impl<T: AtomicElement> Sync for Slot<T> {}

impl<T: AtomicElement> Slot<T> {
    /// # Safety
    ///
    /// `home` is at least `offset + size_of::<T>()` bytes, and `offset` is a multiple of 8.
    unsafe fn new(home: Home, offset: usize) -> Self {
        debug_assert!(home.len() >= offset + std::mem::size_of::<T>());
        debug_assert!(offset.is_multiple_of(8));
        // SAFETY: the caller guarantees `offset` is in bounds of the home's memory.
        let p = unsafe { home.as_ptr().add(offset) };
        Slot {
            data: p.cast(),
            home,
        }
    }

    #[inline]
    fn atomic(&self) -> &T::Atomic {
        // SAFETY: by the struct invariant `data` is in bounds, aligned (the home is 128-aligned
        // and the offset a multiple of 8 >= the atomic's alignment), and lives as long as
        // `self`; any bit pattern is a valid integer atomic, and other processes touch it
        // only atomically (or, if hostile, with writes that are still just bits).
        unsafe { self.data.as_ref() }
    }
}

/// What `Value` and `RawValue` tell [`Builder`].
trait Object<T: AtomicElement>: Sized {
    const KIND: ObjectKind;
    const BODY_LEN: usize;
    const DATA_OFFSET: usize;
    /// Writes the initial body (the element is written by the builder).
    fn init_body(body: NonNull<u8>);
    fn from_slot(slot: Slot<T>) -> Self;
}

fn write_element<T: AtomicElement>(body: NonNull<u8>, offset: usize, init: T) {
    // SAFETY: the body is at least offset + 8 bytes (BODY_LEN), so the offset is in bounds.
    let p = unsafe { body.as_ptr().add(offset) };
    // SAFETY: `p` is in bounds for 8 bytes, 8-aligned, and not yet shared with anyone (the
    // creator initialises the body before publishing).
    unsafe { p.cast::<T>().write(init) }
}

fn check_body(home: &Home, needed: usize) -> Result<(), OpenError> {
    if home.len() < needed {
        return Err(OpenError::Corrupt {
            field: "body_len",
            expected: needed as u64,
            found: home.len() as u64,
        });
    }
    Ok(())
}

/// Builds a named [`Value`] or [`RawValue`]: [`create`](Builder::create),
/// [`open`](Builder::open) or [`open_or_create`](Builder::open_or_create).
///
/// The header records the kind (`Value` or `RawValue`), the element's typecode and a count of
/// 1; an opener gets [`OpenError::WrongKind`] or [`OpenError::WrongLayout`] if they differ.
#[must_use]
pub struct Builder<V> {
    name: SegmentName,
    timeout: Option<Duration>,
    mode: Option<u32>,
    _v: PhantomData<fn() -> V>,
}

impl<V> fmt::Debug for Builder<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("name", &self.name)
            .field("type", &std::any::type_name::<V>())
            .field("timeout", &self.timeout)
            .field("mode", &self.mode)
            .finish()
    }
}

impl<V> Builder<V> {
    fn new(name: &SegmentName) -> Self {
        Builder {
            name: name.clone(),
            timeout: None,
            mode: None,
            _v: PhantomData,
        }
    }

    /// How long `open` waits for the creator to publish the segment (default 5 s).
    pub fn open_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Permission bits on create (default `0o600`).
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = Some(mode);
        self
    }

    fn segment<T: AtomicElement>(
        &self,
        kind: ObjectKind,
        body_len: usize,
    ) -> shm_core::SegmentBuilder {
        let mut b = Segment::builder(&self.name, kind)
            .layout(T::LAYOUT)
            .count(1)
            .body_len(body_len);
        if let Some(t) = self.timeout {
            b = b.timeout(t);
        }
        if let Some(m) = self.mode {
            b = b.mode(m);
        }
        b
    }

    fn create_impl<T: AtomicElement>(self, init: T) -> Result<V, CreateError>
    where
        V: Object<T>,
    {
        let seg = self.segment::<T>(V::KIND, V::BODY_LEN).create(|body, _| {
            V::init_body(body);
            write_element(body, V::DATA_OFFSET, init);
        })?;
        // SAFETY: the body is BODY_LEN >= DATA_OFFSET + 8 bytes and DATA_OFFSET is 8-aligned.
        Ok(V::from_slot(unsafe {
            Slot::new(Home::Segment(seg), V::DATA_OFFSET)
        }))
    }

    fn open_impl<T: AtomicElement>(self) -> Result<V, OpenError>
    where
        V: Object<T>,
    {
        let seg = self.segment::<T>(V::KIND, V::BODY_LEN).open()?;
        Self::wrap(seg)
    }

    fn open_or_create_impl<T: AtomicElement>(self, init: T) -> Result<V, OpenError>
    where
        V: Object<T>,
    {
        let seg = self
            .segment::<T>(V::KIND, V::BODY_LEN)
            .open_or_create(|body, _| {
                V::init_body(body);
                write_element(body, V::DATA_OFFSET, init);
            })?;
        Self::wrap(seg)
    }

    fn wrap<T: AtomicElement>(seg: Segment) -> Result<V, OpenError>
    where
        V: Object<T>,
    {
        let home = Home::Segment(seg);
        check_body(&home, V::BODY_LEN)?;
        // SAFETY: checked just above that the body holds BODY_LEN bytes; DATA_OFFSET is
        // 8-aligned.
        Ok(V::from_slot(unsafe { Slot::new(home, V::DATA_OFFSET) }))
    }
}

impl<T: AtomicElement> Builder<Value<T>> {
    /// Creates the value exclusively with `init` and an unlocked lock.
    ///
    /// # Errors
    ///
    /// [`CreateError::AlreadyExists`] if the name is taken; OS errors.
    pub fn create(self, init: T) -> Result<Value<T>, CreateError> {
        self.create_impl(init)
    }

    /// Opens an existing value; its typecode must be `T`'s.
    ///
    /// # Errors
    ///
    /// [`OpenError::NotFound`], [`OpenError::WrongKind`] (a `RawValue`, an `Array`…),
    /// [`OpenError::WrongLayout`] (another typecode), and the other [`OpenError`]s.
    pub fn open(self) -> Result<Value<T>, OpenError> {
        self.open_impl()
    }

    /// Opens the value, or creates it with `init` if there is none (race-free).
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open).
    pub fn open_or_create(self, init: T) -> Result<Value<T>, OpenError> {
        self.open_or_create_impl(init)
    }
}

impl<T: AtomicElement> Builder<RawValue<T>> {
    /// Creates the value exclusively with `init`.
    ///
    /// # Errors
    ///
    /// [`CreateError::AlreadyExists`] if the name is taken; OS errors.
    pub fn create(self, init: T) -> Result<RawValue<T>, CreateError> {
        self.create_impl(init)
    }

    /// Opens an existing raw value; its typecode must be `T`'s.
    ///
    /// # Errors
    ///
    /// As [`Builder::<Value<T>>::open`](Builder::open).
    pub fn open(self) -> Result<RawValue<T>, OpenError> {
        self.open_impl()
    }

    /// Opens the raw value, or creates it with `init` if there is none (race-free).
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open).
    pub fn open_or_create(self, init: T) -> Result<RawValue<T>, OpenError> {
        self.open_or_create_impl(init)
    }
}

/// The atomic operations, shared by `Value` and `RawValue`.
macro_rules! atomic_ops {
    () => {
        /// Reads the value (one atomic load, `SeqCst`).
        #[inline]
        pub fn load(&self) -> T {
            T::atomic_load(self.slot.atomic(), SeqCst)
        }

        /// Writes the value (one atomic store, `SeqCst`).
        #[inline]
        pub fn store(&self, v: T) {
            T::atomic_store(self.slot.atomic(), v, SeqCst)
        }

        /// Writes `v` and returns the previous value, atomically.
        #[inline]
        pub fn swap(&self, v: T) -> T {
            T::atomic_swap(self.slot.atomic(), v, SeqCst)
        }

        /// Writes `new` if the value is bitwise equal to `current`.
        ///
        /// # Errors
        ///
        /// The value found, if it was not `current` (nothing was written).
        #[inline]
        pub fn compare_exchange(&self, current: T, new: T) -> Result<T, T> {
            T::atomic_compare_exchange(self.slot.atomic(), current, new, SeqCst, SeqCst)
        }

        /// Applies `f` by compare-and-swap until it sticks (or `f` returns `None`), and
        /// returns the previous value. This is how floats are updated without the lock;
        /// `f` may run several times.
        ///
        /// # Errors
        ///
        /// The value found, if `f` returned `None`.
        #[inline]
        pub fn fetch_update(&self, f: impl FnMut(T) -> Option<T>) -> Result<T, T> {
            element::fetch_update(self.slot.atomic(), f)
        }

        /// The segment, unless the value lives on the heap.
        pub fn segment(&self) -> Option<&Segment> {
            self.slot.home.segment()
        }
    };
}

/// The integer operations, shared by `Value` and `RawValue`.
macro_rules! int_ops {
    ($($(#[$doc:meta])* $name:ident => $f:ident;)+) => {$(
        $(#[$doc])*
        #[inline]
        pub fn $name(&self, v: T) -> T {
            T::$f(self.slot.atomic(), v, SeqCst)
        }
    )+};
}

macro_rules! all_int_ops {
    () => {
        int_ops! {
            /// Adds `v` (wrapping) and returns the previous value, atomically.
            fetch_add => atomic_fetch_add;
            /// Subtracts `v` (wrapping) and returns the previous value, atomically.
            fetch_sub => atomic_fetch_sub;
            /// Bitwise and with `v`; returns the previous value.
            fetch_and => atomic_fetch_and;
            /// Bitwise or with `v`; returns the previous value.
            fetch_or => atomic_fetch_or;
            /// Bitwise xor with `v`; returns the previous value.
            fetch_xor => atomic_fetch_xor;
            /// Stores the maximum of the value and `v`; returns the previous value.
            fetch_max => atomic_fetch_max;
            /// Stores the minimum of the value and `v`; returns the previous value.
            fetch_min => atomic_fetch_min;
        }
    };
}

// ---------------------------------------------------------------------------------------------
// RawValue

/// One shared element without a lock: Python's `RawValue`, but named, typed and atomic.
///
/// Every operation is a single atomic instruction (`SeqCst`), so readers never see a torn
/// value and integer read-modify-writes (`fetch_add`, …) never lose updates. There is no lock,
/// so compound updates need [`fetch_update`](Self::fetch_update) or a [`Value`].
///
/// Body layout: the element at offset 0 (8 bytes).
///
/// # Examples
///
/// ```
/// use shm_core::SegmentName;
/// use shm_value::RawValue;
///
/// let name = SegmentName::unique();
/// let a = RawValue::<u32>::create(&name, 7).unwrap();
/// let b = RawValue::<u32>::open(&name).unwrap(); // typecode 'I' checked
/// assert_eq!(b.fetch_add(1), 7);
/// assert_eq!(a.load(), 8);
/// ```
pub struct RawValue<T: AtomicElement> {
    slot: Slot<T>,
}

impl<T: AtomicElement> Object<T> for RawValue<T> {
    const KIND: ObjectKind = ObjectKind::RawValue;
    const BODY_LEN: usize = RAW_VALUE_BODY_LEN;
    const DATA_OFFSET: usize = 0;
    fn init_body(_: NonNull<u8>) {}
    fn from_slot(slot: Slot<T>) -> Self {
        RawValue { slot }
    }
}

impl<T: AtomicElement> RawValue<T> {
    /// A builder for the raw value named `name`.
    pub fn builder(name: &SegmentName) -> Builder<RawValue<T>> {
        Builder::new(name)
    }

    /// Creates the raw value `name` holding `init` (see [`Builder::create`]).
    ///
    /// # Errors
    ///
    /// As [`Builder::create`].
    pub fn create(name: &SegmentName, init: T) -> Result<Self, CreateError> {
        Self::builder(name).create(init)
    }

    /// Opens the raw value `name` (see [`Builder::open`]).
    ///
    /// # Errors
    ///
    /// As [`Builder::open`].
    pub fn open(name: &SegmentName) -> Result<Self, OpenError> {
        Self::builder(name).open()
    }

    /// Opens the raw value `name` or creates it with `init`.
    ///
    /// # Errors
    ///
    /// As [`Builder::open`].
    pub fn open_or_create(name: &SegmentName, init: T) -> Result<Self, OpenError> {
        Self::builder(name).open_or_create(init)
    }

    /// A process-local raw value on the heap (for tests, miri, and single-process use).
    pub fn new(init: T) -> Self {
        let home = Home::heap(RAW_VALUE_BODY_LEN);
        write_element(home.as_ptr(), 0, init);
        // SAFETY: the heap block is RAW_VALUE_BODY_LEN bytes, 128-aligned; offset 0.
        let slot = unsafe { Slot::new(home, 0) };
        RawValue { slot }
    }

    atomic_ops!();
}

impl<T: IntElement> RawValue<T> {
    all_int_ops!();
}

impl<T: AtomicElement> fmt::Debug for RawValue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawValue")
            .field("layout", &T::LAYOUT.format())
            .field("home", &self.slot.home)
            .finish()
    }
}

// ---------------------------------------------------------------------------------------------
// Value

/// One shared element with an embedded re-entrant lock: Python's `Value(typecode, init)`
/// (`lock=True`), named and typed.
///
/// - **Atomic fast path.** [`load`](Self::load), [`store`](Self::store),
///   [`swap`](Self::swap), [`compare_exchange`](Self::compare_exchange),
///   [`fetch_update`](Self::fetch_update) and, for integers, `fetch_add`/`fetch_sub`/
///   `fetch_and`/`fetch_or`/`fetch_xor`/`fetch_max`/`fetch_min` are single atomic
///   instructions and do not take the lock. No reader ever sees a torn value.
/// - **Under the lock.** [`update`](Self::update) runs a closure on the value with the lock
///   held, so `v.update(|x| x + 1)` from many processes never loses an increment (Python's
///   `v.value += 1` lost 42% of them). [`lock`](Self::lock) returns a [`ValueGuard`] for longer
///   critical sections, and [`get_lock`](Self::get_lock) the lock itself, to guard several
///   objects at once (Python's `get_lock()`).
///
/// The lock is robust: when its holder dies, the next acquirer is told
/// ([`UpdateError::OwnerDied`], [`LockError::OwnerDied`]) with the lock held, and decides
/// whether the value is consistent.
///
/// The atomic fast path and the lock are independent: a process that `store`s without the
/// lock is not excluded by one that holds it. [`update`](Self::update) still loses nothing
/// to such writers (it installs its result by compare-and-swap and re-runs the closure if
/// the value changed under it), but a [`ValueGuard`]'s `get` then `set` can: inside a guard,
/// only other lock holders are excluded.
///
/// Body layout: an `RLockState` (32 bytes) at offset 0, the element at offset 32
/// ([`VALUE_DATA_OFFSET`]); the header holds the typecode and a count of 1.
///
/// # Examples
///
/// ```
/// use shm_core::SegmentName;
/// use shm_value::Value;
///
/// let name = SegmentName::unique();
/// let counter = Value::<i64>::create(&name, 0).unwrap();
/// let other = Value::<i64>::open(&name).unwrap();
/// counter.update(|x| x + 1).unwrap();
/// other.fetch_add(10);
/// assert_eq!(counter.load(), 11);
/// assert!(Value::<f64>::open(&name).is_err()); // 'q' is not 'd'
/// ```
///
/// Across processes (each with its own binary or role):
///
/// ```no_run
/// use shm_core::SegmentName;
/// use shm_value::Value;
///
/// let name = SegmentName::new("counter-demo").unwrap();
/// // Process 1
/// let v = Value::<f64>::create(&name, 0.0).unwrap();
/// // Process 2
/// let v = Value::<f64>::open(&name).unwrap();
/// v.update(|x| x + 1.5).unwrap();
/// ```
pub struct Value<T: AtomicElement> {
    slot: Slot<T>,
}

impl<T: AtomicElement> Object<T> for Value<T> {
    const KIND: ObjectKind = ObjectKind::Value;
    const BODY_LEN: usize = VALUE_BODY_LEN;
    const DATA_OFFSET: usize = VALUE_DATA_OFFSET;
    fn init_body(body: NonNull<u8>) {
        // SAFETY: the body is VALUE_BODY_LEN >= RLOCK_STATE_SIZE bytes, 128-aligned, and not
        // yet shared.
        unsafe { body.cast::<RLockState>().as_ptr().write(RLockState::new()) }
    }
    fn from_slot(slot: Slot<T>) -> Self {
        Value { slot }
    }
}

impl<T: AtomicElement> Value<T> {
    /// A builder for the value named `name`.
    pub fn builder(name: &SegmentName) -> Builder<Value<T>> {
        Builder::new(name)
    }

    /// Creates the value `name` holding `init` (see [`Builder::create`]).
    ///
    /// # Errors
    ///
    /// As [`Builder::create`].
    pub fn create(name: &SegmentName, init: T) -> Result<Self, CreateError> {
        Self::builder(name).create(init)
    }

    /// Opens the value `name`; the typecode is checked (see [`Builder::open`]).
    ///
    /// # Errors
    ///
    /// As [`Builder::open`].
    pub fn open(name: &SegmentName) -> Result<Self, OpenError> {
        Self::builder(name).open()
    }

    /// Opens the value `name` or creates it with `init`.
    ///
    /// # Errors
    ///
    /// As [`Builder::open`].
    pub fn open_or_create(name: &SegmentName, init: T) -> Result<Self, OpenError> {
        Self::builder(name).open_or_create(init)
    }

    /// A process-local value on the heap (for tests, miri, and single-process use).
    pub fn new(init: T) -> Self {
        let home = Home::heap(VALUE_BODY_LEN);
        <Self as Object<T>>::init_body(home.as_ptr());
        write_element(home.as_ptr(), VALUE_DATA_OFFSET, init);
        // SAFETY: the heap block is VALUE_BODY_LEN bytes, 128-aligned; the offset is 8-aligned.
        let slot = unsafe { Slot::new(home, VALUE_DATA_OFFSET) };
        Value { slot }
    }

    atomic_ops!();

    /// The value's lock (Python's `get_lock()`), for critical sections that span several
    /// operations or objects. It is re-entrant: [`update`](Self::update) and
    /// [`lock`](Self::lock) work while the calling thread holds it.
    pub fn get_lock(&self) -> RLockRef<'_> {
        // SAFETY: the RLockState lies at offset 0 of the body (initialised by the creator,
        // all-zero is also valid), which is at least VALUE_BODY_LEN bytes and lives as long as
        // `self`.
        unsafe { RLockRef::from_ptr(self.slot.home.as_ptr().cast()) }
    }

    /// Locks the value and returns a guard to read and write it with.
    ///
    /// # Errors
    ///
    /// [`LockError::OwnerDied`] if a previous holder died holding the lock (not held after
    /// it: take it with [`recover`](Self::recover)).
    pub fn lock(&self) -> Result<ValueGuard<'_, T>, LockError> {
        let guard = self.get_lock().lock()?;
        Ok(ValueGuard { value: self, guard })
    }

    /// Locks the value even if a previous holder died holding the lock: check
    /// [`ValueGuard::is_inconsistent`], repair, then [`ValueGuard::mark_consistent`].
    pub fn recover(&self) -> ValueGuard<'_, T> {
        ValueGuard {
            value: self,
            guard: self.get_lock().recover(),
        }
    }

    /// [`lock`](Self::lock) if no waiting is needed.
    ///
    /// # Errors
    ///
    /// [`TryLockError::WouldBlock`] if another thread holds it; otherwise as `lock`.
    pub fn try_lock(&self) -> Result<ValueGuard<'_, T>, TryLockError> {
        let guard = self.get_lock().try_lock()?;
        Ok(ValueGuard { value: self, guard })
    }

    /// [`lock`](Self::lock), waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`LockTimeoutError::Timeout`]; otherwise as `lock`.
    pub fn try_lock_for(&self, timeout: Duration) -> Result<ValueGuard<'_, T>, LockTimeoutError> {
        let guard = self.get_lock().try_lock_for(timeout)?;
        Ok(ValueGuard { value: self, guard })
    }

    /// Runs `f` on the value with the lock held, stores its result, and returns it.
    ///
    /// This is the safe form of Python's `with v.get_lock(): v.value = f(v.value)`: many
    /// processes doing `update(|x| x + 1)` never lose an increment. The result is installed by
    /// compare-and-swap, so writers that bypass the lock (`fetch_add`, `store`) are not lost
    /// either: if one changed the value meanwhile, `f` runs again on the new value (so `f`
    /// may run more than once; keep it free of side effects).
    ///
    /// # Errors
    ///
    /// [`UpdateError::OwnerDied`] if a previous holder died holding the lock: `f` is *not*
    /// run, and the error holds the lock (see there). [`UpdateError::RecursionLimit`].
    ///
    /// # Examples
    ///
    /// ```
    /// let v = shm_value::Value::<i32>::new(41);
    /// assert_eq!(v.update(|x| x + 1).unwrap(), 42);
    /// ```
    pub fn update(&self, f: impl FnMut(T) -> T) -> Result<T, UpdateError<'_, T>> {
        // Err(true): the owner died; an RLock cannot deadlock on itself.
        self.update_with(self.get_lock().lock().map_err(|_| true), f)
    }

    /// [`update`](Self::update), waiting at most `timeout` for the lock.
    ///
    /// # Errors
    ///
    /// [`UpdateError::Timeout`]; otherwise as `update`.
    pub fn try_update_for(
        &self,
        timeout: Duration,
        f: impl FnMut(T) -> T,
    ) -> Result<T, UpdateError<'_, T>> {
        let r = match self.get_lock().try_lock_for(timeout) {
            Ok(g) => Ok(g),
            Err(LockTimeoutError::Timeout) => Err(false),
            Err(_) => Err(true),
        };
        self.update_with(r, f)
    }

    fn update_with<'a>(
        &'a self,
        r: Result<RLockGuard<'a>, bool>,
        mut f: impl FnMut(T) -> T,
    ) -> Result<T, UpdateError<'a, T>> {
        match r {
            Ok(guard) => {
                // A compare-and-swap rather than a store: a process using the lock-free fast
                // path (`fetch_add`, `store`) at the same time is not overwritten; `f` runs
                // again on what it wrote instead.
                let mut cur = self.load();
                let new = loop {
                    let new = f(cur);
                    match self.compare_exchange(cur, new) {
                        Ok(_) => break new,
                        Err(now) => cur = now,
                    }
                };
                drop(guard);
                Ok(new)
            }
            // The owner died: the error holds the lock, taken through the recovery path.
            Err(true) => Err(UpdateError::OwnerDied(self.recover())),
            Err(false) => Err(UpdateError::Timeout),
        }
    }

    /// Whether the lock is flagged: a holder died and nobody has marked the value consistent.
    pub fn is_inconsistent(&self) -> bool {
        self.get_lock().is_inconsistent()
    }
}

impl<T: IntElement> Value<T> {
    all_int_ops!();
}

impl<T: AtomicElement> fmt::Debug for Value<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Value")
            .field("layout", &T::LAYOUT.format())
            .field("home", &self.slot.home)
            .field("lock", &self.get_lock())
            .finish()
    }
}

/// A [`Value`] with its lock held; releases it on drop (one level: the lock is re-entrant).
///
/// Reads and writes through the guard are atomic too, so processes using the lock-free fast
/// path at the same time never see torn values.
#[must_use = "the lock is released when the guard drops"]
pub struct ValueGuard<'a, T: AtomicElement> {
    value: &'a Value<T>,
    guard: RLockGuard<'a>,
}

impl<T: AtomicElement> ValueGuard<'_, T> {
    /// Reads the value.
    pub fn get(&self) -> T {
        self.value.load()
    }

    /// Writes the value.
    pub fn set(&self, v: T) {
        self.value.store(v)
    }

    /// Clears the owner-died flag: the value is consistent again.
    pub fn mark_consistent(&self) {
        self.guard.mark_consistent()
    }

    /// Whether the owner-died flag is set.
    pub fn is_inconsistent(&self) -> bool {
        self.guard.is_inconsistent()
    }
}

impl<T: AtomicElement> fmt::Debug for ValueGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ValueGuard")
            .field("layout", &T::LAYOUT.format())
            .field("lock", &self.guard)
            .finish()
    }
}
