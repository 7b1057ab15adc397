//! `Value<T>` (with its embedded RLock) and `RawValue<T>` (atomics only).

use crate::error::{UpdateError, UpdateTimeoutError};
use shm_core::{
    AtomicElement, CreateError, Home, IntElement, Knobs, ObjectKind, OpenError, Segment,
    SegmentName, WaitStrategy,
};
use shm_lock::{
    OwnerDiedError, RLockGuard, RLockRef, RLockState, ReentrantTimeoutError, TryLockError,
    RLOCK_STATE_SIZE,
};
use std::fmt;
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::atomic::Ordering::{Acquire, Release};
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
    data: NonNull<T>,
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
        // `self`; every access to it is atomic (other processes' too, or, if hostile, writes
        // that are still just bits of a valid integer).
        unsafe { T::atomic_at(self.data.as_ptr()) }
    }
}

mod sealed {
    use shm_core::{AtomicElement, Home, ObjectKind, WaitStrategy};
    use std::ptr::NonNull;

    /// What `Value` and `RawValue` tell [`Builder`](super::Builder). Sealed: only this crate
    /// implements it.
    pub trait Object: Sized {
        /// The element type.
        type Elem: AtomicElement;
        const KIND: ObjectKind;
        const BODY_LEN: usize;
        const DATA_OFFSET: usize;
        /// Writes the initial body except the element.
        fn init_body(body: NonNull<u8>);
        /// # Safety
        ///
        /// `home` holds at least `BODY_LEN` bytes, initialised by `init_body` (or all zero).
        unsafe fn from_home(home: Home, strategy: WaitStrategy) -> Self;
    }
}
use sealed::Object;

fn write_element<T: AtomicElement>(body: NonNull<u8>, offset: usize, init: T) {
    // SAFETY: the body is at least offset + 8 bytes (BODY_LEN), so the offset is in bounds.
    let p = unsafe { body.as_ptr().add(offset) };
    // SAFETY: `p` is in bounds for 8 bytes, 8-aligned, and not yet shared with anyone (the
    // creator initialises the body before publishing).
    unsafe { p.cast::<T>().write(init) }
}

fn init_object<V: Object>(body: NonNull<u8>, value: V::Elem) {
    V::init_body(body);
    write_element(body, V::DATA_OFFSET, value);
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
/// Knobs: [`mode`](Builder::mode) (creator only), [`open_timeout`](Builder::open_timeout),
/// [`value`](Builder::value) (the initial value; default all-zero bits, as Python's
/// `RawValue`), and for a `Value` [`wait_strategy`](Builder::wait_strategy). The header
/// records the kind (`Value` or `RawValue`), the element's typecode and a count of 1: an
/// opener states nothing else, and gets [`OpenError::WrongKind`] or
/// [`OpenError::WrongLayout`] if they differ.
///
/// # Examples
///
/// ```
/// use shm_core::SegmentName;
/// use shm_value::Value;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let name = SegmentName::unique();
/// let created = Value::<u16>::builder(&name).value(7).mode(0o600).create()?;
/// let opened = Value::<u16>::builder(&name).open()?; // typecode 'H' checked
/// assert_eq!(opened.load(), 7);
/// # drop(created);
/// # Ok(())
/// # }
/// ```
#[must_use]
pub struct Builder<V: Object> {
    name: SegmentName,
    knobs: Knobs,
    value: V::Elem,
    _v: PhantomData<fn() -> V>,
}

impl<V: Object> fmt::Debug for Builder<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("name", &self.name)
            .field("type", &std::any::type_name::<V>())
            .field("open_timeout", &self.knobs.open_timeout)
            .field("mode", &self.knobs.mode)
            .field("wait_strategy", &self.knobs.strategy)
            .finish_non_exhaustive()
    }
}

impl<V: Object> Builder<V> {
    fn new(name: &SegmentName) -> Self {
        Builder {
            name: name.clone(),
            knobs: Knobs::default(),
            value: shm_core::bytemuck::Zeroable::zeroed(),
            _v: PhantomData,
        }
    }

    /// The initial value (creator only; default all-zero bits).
    pub fn value(mut self, value: V::Elem) -> Self {
        self.value = value;
        self
    }

    shm_core::knob_methods!(knobs; mode, open_timeout);

    fn segment(&self) -> shm_core::SegmentBuilder {
        self.knobs.apply(
            Segment::builder(&self.name, V::KIND)
                .layout(<V::Elem as shm_core::Element>::LAYOUT)
                .count(1)
                .body_len(V::BODY_LEN),
        )
    }

    /// Creates the object exclusively, holding [`value`](Self::value).
    ///
    /// # Errors
    ///
    /// [`CreateError::AlreadyExists`] if the name is taken; the other [`CreateError`]s (OS
    /// errors keep their `io::Error` as the source).
    pub fn create(self) -> Result<V, CreateError> {
        let value = self.value;
        let seg = self
            .segment()
            .create(|body, _| init_object::<V>(body, value))?;
        // SAFETY: the body was created with BODY_LEN bytes and initialised by `init`.
        Ok(unsafe { V::from_home(Home::Segment(seg), self.knobs.strategy) })
    }

    /// Opens an existing object; the kind and the element's typecode must match.
    ///
    /// # Errors
    ///
    /// [`OpenError::NotFound`], [`OpenError::WrongKind`] (a `RawValue` opened as a `Value`,
    /// an `Array`, …), [`OpenError::WrongLayout`] (another typecode),
    /// [`OpenError::Corrupt`] (a body too short for the kind), and the other [`OpenError`]s.
    pub fn open(self) -> Result<V, OpenError> {
        let seg = self.segment().open()?;
        Self::wrap(seg, self.knobs.strategy)
    }

    /// Opens the object, or creates it holding [`value`](Self::value) if there is none
    /// (race-free: exactly one process creates).
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open); [`OpenError::Create`] if creating failed.
    pub fn open_or_create(self) -> Result<V, OpenError> {
        let value = self.value;
        let seg = self
            .segment()
            .open_or_create(|body, _| init_object::<V>(body, value))?;
        Self::wrap(seg, self.knobs.strategy)
    }

    fn wrap(seg: Segment, strategy: WaitStrategy) -> Result<V, OpenError> {
        let home = Home::Segment(seg);
        check_body(&home, V::BODY_LEN)?;
        // SAFETY: checked just above that the body holds BODY_LEN bytes; the creator
        // initialised them before publishing (and any bytes are a valid state).
        Ok(unsafe { V::from_home(home, strategy) })
    }
}

impl<T: AtomicElement> Builder<Value<T>> {
    shm_core::knob_methods!(knobs; wait_strategy);
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
            T::atomic_fetch_update(self.slot.atomic(), f)
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
/// No method hands out a reference to the element: every access is a copy through an atomic,
/// so any number of handles in any threads and processes may use it at once.
///
/// Body layout: the element at offset 0 (8 bytes).
///
/// # Examples
///
/// ```
/// use shm_core::SegmentName;
/// use shm_value::RawValue;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let name = SegmentName::unique();
/// let a = RawValue::<u32>::create(&name, 7)?;
/// let b = RawValue::<u32>::open(&name)?; // typecode 'I' checked
/// assert_eq!(b.fetch_add(1), 7);
/// assert_eq!(a.load(), 8);
/// # Ok(())
/// # }
/// ```
pub struct RawValue<T: AtomicElement> {
    slot: Slot<T>,
}

impl<T: AtomicElement> Object for RawValue<T> {
    type Elem = T;
    const KIND: ObjectKind = ObjectKind::RawValue;
    const BODY_LEN: usize = RAW_VALUE_BODY_LEN;
    const DATA_OFFSET: usize = 0;
    fn init_body(_: NonNull<u8>) {}
    unsafe fn from_home(home: Home, _: WaitStrategy) -> Self {
        // SAFETY: the caller guarantees BODY_LEN bytes; offset 0 is 8-aligned.
        let slot = unsafe { Slot::new(home, 0) };
        RawValue { slot }
    }
}

impl<T: AtomicElement> RawValue<T> {
    /// A builder for the raw value named `name`.
    pub fn builder(name: &SegmentName) -> Builder<RawValue<T>> {
        Builder::new(name)
    }

    /// Creates the raw value `name` holding `init`: `builder(name).value(init).create()`.
    ///
    /// # Errors
    ///
    /// As [`Builder::create`].
    pub fn create(name: &SegmentName, init: T) -> Result<Self, CreateError> {
        Self::builder(name).value(init).create()
    }

    /// Opens the raw value `name`: `builder(name).open()`.
    ///
    /// # Errors
    ///
    /// As [`Builder::open`].
    pub fn open(name: &SegmentName) -> Result<Self, OpenError> {
        Self::builder(name).open()
    }

    /// Opens the raw value `name` or creates it holding `init`.
    ///
    /// # Errors
    ///
    /// As [`Builder::open_or_create`].
    pub fn open_or_create(name: &SegmentName, init: T) -> Result<Self, OpenError> {
        Self::builder(name).value(init).open_or_create()
    }

    /// A process-local raw value on the heap (for tests, miri, and single-process use).
    pub fn new(init: T) -> Self {
        let home = Home::heap(RAW_VALUE_BODY_LEN);
        init_object::<Self>(home.as_ptr(), init);
        // SAFETY: the heap block is RAW_VALUE_BODY_LEN bytes, initialised just above.
        unsafe { Self::from_home(home, WaitStrategy::default()) }
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

/// One shared element with an embedded robust lock: Python's `Value(typecode, init)`
/// (`lock=True`), named and typed.
///
/// - **Atomic fast path.** [`load`](Self::load), [`store`](Self::store),
///   [`swap`](Self::swap), [`compare_exchange`](Self::compare_exchange),
///   [`fetch_update`](Self::fetch_update) and, for integers, `fetch_add`/`fetch_sub`/
///   `fetch_and`/`fetch_or`/`fetch_xor`/`fetch_max`/`fetch_min` are single atomic
///   instructions (`SeqCst`) and do not take the lock. No reader ever sees a torn value.
/// - **Under the lock.** [`update`](Self::update) runs a closure on the value with the lock
///   held, so `v.update(|x| x + 1)` from many processes never loses an increment (Python's
///   `v.value += 1` lost 42% of them). [`lock`](Self::lock) returns a [`ValueGuard`] for longer
///   critical sections, and [`get_lock`](Self::get_lock) the lock itself, to guard several
///   objects at once (Python's `get_lock()`). The lock is re-entrant for the thread holding
///   it: `update` and `lock` inside a `get_lock()` section or under a guard do not deadlock.
///
/// **Pick one discipline per value.** The lock excludes other lock users only. A lock-free
/// write (`store`, `fetch_add`) that lands between `update`'s read and its write is
/// overwritten, as is one between a guard's `get` and `set`. Use the lock-free operations
/// alone, or the locked ones alone, on a value whose updates must all count.
///
/// **Owner death.** The lock is robust: when its holder dies, [`lock`](Self::lock) fails
/// with [`OwnerDiedError`] and [`update`](Self::update) refuses to run its closure
/// ([`UpdateError::OwnerDied`]), until someone takes the lock with
/// [`recover`](Self::recover), repairs the value and calls [`ValueGuard::mark_consistent`].
///
/// **No references.** No method hands out `&T` or `&mut T`: the element is read and written
/// by copy through its atomic, by the guard too, so handles in any thread or process (two
/// handles in one thread included) never alias a reference. A guard is not a pointer to the
/// value:
///
/// ```compile_fail
/// let v = shm_value::Value::<i64>::new(1);
/// let g = v.lock().unwrap();
/// let r: &i64 = &*g; // ValueGuard does not deref to the element
/// ```
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
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let name = SegmentName::unique();
/// let counter = Value::<i64>::create(&name, 0)?;
/// let other = Value::<i64>::open(&name)?;
/// counter.update(|x| x + 1)?;
/// other.update(|x| x + 10)?;
/// assert_eq!(counter.load(), 11);
/// assert!(Value::<f64>::open(&name).is_err()); // 'q' is not 'd'
/// # Ok(())
/// # }
/// ```
///
/// Across processes (each with its own binary or role):
///
/// ```no_run
/// use shm_core::SegmentName;
/// use shm_value::Value;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let name = SegmentName::new("counter-demo")?;
/// // Process 1
/// let v = Value::<f64>::create(&name, 0.0)?;
/// // Process 2
/// let v = Value::<f64>::open(&name)?;
/// v.update(|x| x + 1.5)?;
/// # Ok(())
/// # }
/// ```
pub struct Value<T: AtomicElement> {
    slot: Slot<T>,
    strategy: WaitStrategy,
}

impl<T: AtomicElement> Object for Value<T> {
    type Elem = T;
    const KIND: ObjectKind = ObjectKind::Value;
    const BODY_LEN: usize = VALUE_BODY_LEN;
    const DATA_OFFSET: usize = VALUE_DATA_OFFSET;
    fn init_body(body: NonNull<u8>) {
        // SAFETY: the body is VALUE_BODY_LEN >= RLOCK_STATE_SIZE bytes, 128-aligned, and not
        // yet shared.
        unsafe { body.cast::<RLockState>().as_ptr().write(RLockState::new()) }
    }
    unsafe fn from_home(home: Home, strategy: WaitStrategy) -> Self {
        // SAFETY: the caller guarantees BODY_LEN >= DATA_OFFSET + 8 bytes; DATA_OFFSET is
        // 8-aligned.
        let slot = unsafe { Slot::new(home, VALUE_DATA_OFFSET) };
        Value { slot, strategy }
    }
}

impl<T: AtomicElement> Value<T> {
    /// A builder for the value named `name`.
    pub fn builder(name: &SegmentName) -> Builder<Value<T>> {
        Builder::new(name)
    }

    /// Creates the value `name` holding `init`: `builder(name).value(init).create()`.
    ///
    /// # Errors
    ///
    /// As [`Builder::create`].
    pub fn create(name: &SegmentName, init: T) -> Result<Self, CreateError> {
        Self::builder(name).value(init).create()
    }

    /// Opens the value `name`; the typecode is checked: `builder(name).open()`.
    ///
    /// # Errors
    ///
    /// As [`Builder::open`].
    pub fn open(name: &SegmentName) -> Result<Self, OpenError> {
        Self::builder(name).open()
    }

    /// Opens the value `name` or creates it holding `init`.
    ///
    /// # Errors
    ///
    /// As [`Builder::open_or_create`].
    pub fn open_or_create(name: &SegmentName, init: T) -> Result<Self, OpenError> {
        Self::builder(name).value(init).open_or_create()
    }

    /// A process-local value on the heap (for tests, miri, and single-process use).
    pub fn new(init: T) -> Self {
        let home = Home::heap(VALUE_BODY_LEN);
        init_object::<Self>(home.as_ptr(), init);
        // SAFETY: the heap block is VALUE_BODY_LEN bytes, initialised just above.
        unsafe { Self::from_home(home, WaitStrategy::default()) }
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
            .with_wait_strategy(self.strategy)
    }

    /// Locks the value and returns a guard to read and write it with.
    ///
    /// # Errors
    ///
    /// [`OwnerDiedError`] if a previous holder died holding the lock (not held after
    /// it: take it with [`recover`](Self::recover)).
    pub fn lock(&self) -> Result<ValueGuard<'_, T>, OwnerDiedError> {
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
    /// [`ReentrantTimeoutError::Timeout`] if another thread held the lock all along;
    /// [`ReentrantTimeoutError::OwnerDied`] as for `lock`.
    pub fn try_lock_for(
        &self,
        timeout: Duration,
    ) -> Result<ValueGuard<'_, T>, ReentrantTimeoutError> {
        let guard = self.get_lock().try_lock_for(timeout)?;
        Ok(ValueGuard { value: self, guard })
    }

    /// Runs `f` on the value with the lock held, stores its result, and returns it.
    ///
    /// This is the safe form of Python's `with v.get_lock(): v.value = f(v.value)`: many
    /// processes doing `update(|x| x + 1)` never lose an increment to each other. `f` runs
    /// exactly once. Lock-free writers are not excluded (see the type docs).
    ///
    /// # Errors
    ///
    /// [`UpdateError::OwnerDied`] if a previous holder died holding the lock, or left it
    /// flagged: `f` is *not* run, and the lock is released with the flag kept. Take the lock
    /// with [`recover`](Self::recover), repair the value, call
    /// [`ValueGuard::mark_consistent`], then update again.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), shm_value::UpdateError> {
    /// let v = shm_value::Value::<i32>::new(41);
    /// assert_eq!(v.update(|x| x + 1)?, 42);
    /// # Ok(())
    /// # }
    /// ```
    #[inline]
    pub fn update(&self, f: impl FnOnce(T) -> T) -> Result<T, UpdateError> {
        match self.get_lock().lock() {
            Ok(level) => self.update_held(level, f).ok_or(UpdateError::OwnerDied),
            Err(OwnerDiedError) => Err(UpdateError::OwnerDied),
        }
    }

    /// [`update`](Self::update), waiting at most `timeout` for the lock.
    ///
    /// # Errors
    ///
    /// [`UpdateTimeoutError::Timeout`] if the lock was not free in time;
    /// [`UpdateTimeoutError::OwnerDied`] as [`UpdateError::OwnerDied`]. `f` was not run.
    pub fn try_update_for(
        &self,
        timeout: Duration,
        f: impl FnOnce(T) -> T,
    ) -> Result<T, UpdateTimeoutError> {
        match self.get_lock().try_lock_for(timeout) {
            Ok(level) => self
                .update_held(level, f)
                .ok_or(UpdateTimeoutError::OwnerDied),
            Err(ReentrantTimeoutError::OwnerDied) => Err(UpdateTimeoutError::OwnerDied),
            Err(ReentrantTimeoutError::Timeout) => Err(UpdateTimeoutError::Timeout),
        }
    }

    /// Runs `f` and stores its result under `level`, a counted level of the re-entrant lock
    /// (taken by `update`), then releases that level. `None` (and `f` not run) if the lock is
    /// flagged: re-entered under a guard that got the lock through `recover` and has not
    /// marked the value consistent yet.
    ///
    /// The level is what keeps `f` honest: a guard that `f` takes nests in it, so it keeps
    /// the lock held after `update` returns, and a guard that `f` drops (an outer one it
    /// captured) releases only its own level, so the lock stays held until the store. (The
    /// raw lock alone, without the depth word, would be released by either.)
    #[inline]
    fn update_held(&self, level: RLockGuard<'_>, f: impl FnOnce(T) -> T) -> Option<T> {
        if level.is_inconsistent() {
            return None; // `level` drops: one level released, the flag kept
        }
        let a = self.slot.atomic();
        // Acquire/Release, not SeqCst: every lock user is ordered by the lock's own Acquire
        // and Release, so SeqCst would only add a full fence (an `xchg` for the store on
        // x86-64) that orders nothing more for them. Lock-free readers still get the element
        // atomically, and with the Release store everything this thread wrote before.
        let new = f(T::atomic_load(a, Acquire));
        T::atomic_store(a, new, Release);
        drop(level);
        Some(new)
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
/// It reads and writes the value by copy ([`get`](Self::get), [`set`](Self::set)), never by
/// reference, and each access is atomic, so processes using the lock-free fast path at the
/// same time never see torn values.
#[must_use = "the lock is released when the guard drops"]
pub struct ValueGuard<'a, T: AtomicElement> {
    value: &'a Value<T>,
    guard: RLockGuard<'a>,
}

impl<T: AtomicElement> ValueGuard<'_, T> {
    /// Reads the value.
    #[inline]
    pub fn get(&self) -> T {
        // Acquire/Release under the lock: see `Value::update_held`.
        T::atomic_load(self.value.slot.atomic(), Acquire)
    }

    /// Writes the value.
    #[inline]
    pub fn set(&self, v: T) {
        T::atomic_store(self.value.slot.atomic(), v, Release)
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
