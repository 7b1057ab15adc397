//! `Semaphore`, `BoundedSemaphore` and `Event`.

use crate::error::{AboveBoundError, OverflowError, TimeoutError, WouldBlockError};
use crate::object::{self, Builder, Object};
use shm_core::sync::atomic::{AtomicU32, Ordering};
use shm_core::{Deadline, EventCount, Home, ObjectKind, OpenError, Segment, WaitStrategy};
use std::fmt;
use std::ptr::NonNull;
use std::time::Duration;

/// Control block of a semaphore (16 bytes): the value and an eventcount to sleep on.
///
/// | field | meaning |
/// |---|---|
/// | `value` | the count; any `u32` is valid |
/// | `ec` | waiters sleep on it until a release |
#[repr(C, align(8))]
pub(crate) struct SemState {
    value: AtomicU32,
    _reserved: AtomicU32,
    ec: EventCount,
}

const SEM_STATE_SIZE: usize = 16;
#[cfg(not(loom))]
const _: () = assert!(std::mem::size_of::<SemState>() == SEM_STATE_SIZE);
#[cfg(not(loom))]
const _: () = assert!(std::mem::offset_of!(SemState, ec) == 8);

impl SemState {
    pub(crate) fn new(value: u32) -> SemState {
        SemState {
            value: AtomicU32::new(value),
            _reserved: AtomicU32::new(0),
            ec: EventCount::new(),
        }
    }

    pub(crate) fn try_acquire(&self) -> bool {
        let mut v = self.value.load(Ordering::Relaxed);
        loop {
            if v == 0 {
                return false;
            }
            match self
                .value
                .compare_exchange_weak(v, v - 1, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(now) => v = now,
            }
        }
    }

    pub(crate) fn acquire(&self, strategy: &WaitStrategy, deadline: Deadline) -> bool {
        if self.try_acquire() {
            return true;
        }
        self.ec
            .wait_until(strategy, deadline, |_| self.try_acquire().then_some(()))
            .is_some()
    }

    /// Adds one unless the value is at `bound` already (`Err(bound)`).
    pub(crate) fn release(&self, bound: u32) -> Result<(), u32> {
        let mut v = self.value.load(Ordering::Relaxed);
        loop {
            if v >= bound {
                return Err(bound);
            }
            let next = v + 1;
            match self
                .value
                .compare_exchange_weak(v, next, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => break,
                Err(now) => v = now,
            }
        }
        self.ec.notify_one();
        Ok(())
    }

    pub(crate) fn value(&self) -> u32 {
        self.value.load(Ordering::Relaxed)
    }
}

macro_rules! semaphore {
    (
        $name:ident, $kind:expr, $bounded:literal, $release_err:ty, $mk_err:expr, $release_doc:literal,
        $doc:literal, $example:literal
    ) => {
        #[doc = $doc]
        ///
        /// `release` may be called by any process (there is no owner), and a waiter sleeps in
        /// the kernel until a release.
        ///
        /// # Examples
        ///
        #[doc = $example]
        pub struct $name {
            home: Home,
            strategy: WaitStrategy,
            /// The initial value: the bound of a `BoundedSemaphore`.
            initial: u32,
        }

        impl $name {
            /// A process-local semaphore on the heap with the given value.
            pub fn new(value: u32) -> $name {
                $name {
                    home: object::heap_home(SemState::new(value)),
                    strategy: WaitStrategy::default(),
                    initial: value,
                }
            }

            /// A builder for the semaphore named `name` (set the value with
            /// [`Builder::value`]; default 1).
            pub fn builder(name: &shm_core::SegmentName) -> Builder<$name> {
                Builder::new(name)
            }

            fn state(&self) -> &SemState {
                // SAFETY: the home holds an initialised SemState at its start (written on
                // create, size checked on open) and lives as long as `self`.
                unsafe { self.home.as_ptr().cast::<SemState>().as_ref() }
            }

            /// Decrements the value, waiting while it is 0.
            pub fn acquire(&self) {
                self.state().acquire(&self.strategy, Deadline::NEVER);
            }

            /// Decrements the value if it is not 0.
            ///
            /// # Errors
            ///
            /// [`WouldBlockError`] if it is 0.
            pub fn try_acquire(&self) -> Result<(), WouldBlockError> {
                if self.state().try_acquire() {
                    Ok(())
                } else {
                    Err(WouldBlockError)
                }
            }

            /// Decrements the value, waiting at most `timeout` while it is 0.
            ///
            /// # Errors
            ///
            /// [`TimeoutError`] if the timeout passed first.
            pub fn acquire_timeout(&self, timeout: Duration) -> Result<(), TimeoutError> {
                if self
                    .state()
                    .acquire(&self.strategy, Deadline::after(timeout))
                {
                    Ok(())
                } else {
                    Err(TimeoutError)
                }
            }

            /// Increments the value and wakes a waiter.
            ///
            /// # Errors
            ///
            #[doc = $release_doc]
            pub fn release(&self) -> Result<(), $release_err> {
                let bound = if $bounded { self.initial } else { u32::MAX };
                self.state().release(bound).map_err($mk_err)
            }

            /// The initial value (the bound of a `BoundedSemaphore`), as recorded at creation.
            pub fn initial_value(&self) -> u32 {
                self.initial
            }

            /// The current value (a snapshot).
            pub fn value(&self) -> u32 {
                self.state().value()
            }

            /// Sets how blocked calls wait.
            pub fn set_wait_strategy(&mut self, strategy: WaitStrategy) {
                self.strategy = strategy;
            }

            /// The segment, unless the semaphore lives on the heap.
            pub fn segment(&self) -> Option<&Segment> {
                self.home.segment()
            }
        }

        impl Builder<$name> {
            /// The initial value (default 1). For a `BoundedSemaphore` it is also the bound.
            /// Recorded in the segment: an opener adopts it, and one that sets it gets
            /// [`OpenError::Mismatch`] if it differs.
            pub fn value(mut self, value: u32) -> Self {
                self.value = Some(value);
                self
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("value", &self.value())
                    .field("initial", &self.initial)
                    .field("home", &self.home)
                    .finish()
            }
        }

        impl Object for $name {
            const KIND: ObjectKind = $kind;
            fn body_len(_: &Builder<Self>) -> Result<usize, String> {
                Ok(SEM_STATE_SIZE)
            }
            fn param(b: &Builder<Self>) -> u64 {
                u64::from(b.value.unwrap_or(1))
            }
            fn init(b: &Builder<Self>, body: NonNull<u8>) {
                // SAFETY: the body is at least SEM_STATE_SIZE bytes, 128-aligned, unshared.
                unsafe {
                    body.cast::<SemState>()
                        .as_ptr()
                        .write(SemState::new(b.value.unwrap_or(1)))
                }
            }
            fn from_home(home: Home, b: Builder<Self>) -> Result<Self, OpenError> {
                object::check_body(&home, SEM_STATE_SIZE)?;
                let param = home
                    .segment()
                    .map_or(u64::from(b.value.unwrap_or(1)), |s| s.header().param());
                let initial = u32::try_from(param).map_err(|_| OpenError::CorruptBody {
                    what: "semaphore initial value",
                    detail: format!("{param} does not fit in a u32"),
                })?;
                object::check_adopted("value", b.value, initial)?;
                Ok($name {
                    home,
                    strategy: b.knobs.strategy,
                    initial,
                })
            }
        }
    };
}

semaphore!(
    Semaphore,
    ObjectKind::Semaphore,
    false,
    OverflowError,
    |_| OverflowError,
    "[`OverflowError`] if the value is `u32::MAX` already.",
    "A counting semaphore in a named segment: Python's `multiprocessing.Semaphore`.",
    "```
use shm_core::SegmentName;
use shm_lock::Semaphore;

# fn main() -> Result<(), Box<dyn std::error::Error>> {
let name = SegmentName::unique();
let sem = Semaphore::builder(&name).value(2).create()?;
let other = Semaphore::builder(&name).open()?; // adopts the value
sem.acquire();
other.acquire();
assert!(sem.try_acquire().is_err());
other.release()?;
assert_eq!(sem.value(), 1);
# Ok(())
# }
```"
);

semaphore!(
    BoundedSemaphore,
    ObjectKind::BoundedSemaphore,
    true,
    AboveBoundError,
    |bound| AboveBoundError { bound },
    "[`AboveBoundError`] if the value is at its initial value already (Python's `ValueError`).",
    "A semaphore that may not be released above its initial value: Python's \
     `multiprocessing.BoundedSemaphore`.",
    "```
use shm_core::SegmentName;
use shm_lock::{AboveBoundError, BoundedSemaphore};

# fn main() -> Result<(), Box<dyn std::error::Error>> {
let name = SegmentName::unique();
let sem = BoundedSemaphore::builder(&name).value(1).create()?;
assert_eq!(sem.release(), Err(AboveBoundError { bound: 1 }));
sem.acquire();
sem.release()?;
# Ok(())
# }
```"
);

/// Control block of an event: the flag and an eventcount.
#[repr(C, align(8))]
pub(crate) struct EventState {
    flag: AtomicU32,
    _reserved: AtomicU32,
    ec: EventCount,
}

const EVENT_STATE_SIZE: usize = 16;
#[cfg(not(loom))]
const _: () = assert!(std::mem::size_of::<EventState>() == EVENT_STATE_SIZE);

impl EventState {
    pub(crate) fn new() -> EventState {
        EventState {
            flag: AtomicU32::new(0),
            _reserved: AtomicU32::new(0),
            ec: EventCount::new(),
        }
    }

    pub(crate) fn set(&self) {
        self.flag.store(1, Ordering::SeqCst);
        self.ec.notify_all();
    }

    pub(crate) fn clear(&self) {
        self.flag.store(0, Ordering::SeqCst);
    }

    pub(crate) fn is_set(&self) -> bool {
        self.flag.load(Ordering::Acquire) != 0
    }

    pub(crate) fn wait(&self, strategy: &WaitStrategy, deadline: Deadline) -> bool {
        self.is_set()
            || self
                .ec
                .wait_until(strategy, deadline, |_| self.is_set().then_some(()))
                .is_some()
    }
}

/// A flag processes can wait for: Python's `multiprocessing.Event`.
///
/// # Examples
///
/// ```
/// use shm_core::SegmentName;
/// use shm_lock::Event;
/// use std::time::Duration;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let name = SegmentName::unique();
/// let ev = Event::builder(&name).create()?;
/// assert!(!ev.wait_timeout(Duration::from_millis(1)));
/// Event::builder(&name).open()?.set();
/// assert!(ev.is_set());
/// ev.wait();
/// # Ok(())
/// # }
/// ```
pub struct Event {
    home: Home,
    strategy: WaitStrategy,
}

impl Event {
    /// A process-local, clear event on the heap.
    pub fn new() -> Event {
        Event {
            home: object::heap_home(EventState::new()),
            strategy: WaitStrategy::default(),
        }
    }

    /// A builder for the event named `name`.
    pub fn builder(name: &shm_core::SegmentName) -> Builder<Event> {
        Builder::new(name)
    }

    fn state(&self) -> &EventState {
        // SAFETY: the home holds an initialised EventState at its start and lives as long as
        // `self`.
        unsafe { self.home.as_ptr().cast::<EventState>().as_ref() }
    }

    /// Sets the flag and wakes every waiter.
    pub fn set(&self) {
        self.state().set();
    }

    /// Clears the flag.
    pub fn clear(&self) {
        self.state().clear();
    }

    /// Whether the flag is set.
    pub fn is_set(&self) -> bool {
        self.state().is_set()
    }

    /// Waits until the flag is set.
    pub fn wait(&self) {
        self.state().wait(&self.strategy, Deadline::NEVER);
    }

    /// Waits at most `timeout` for the flag; returns whether it is set.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.state().wait(&self.strategy, Deadline::after(timeout))
    }

    /// Sets how blocked calls wait.
    pub fn set_wait_strategy(&mut self, strategy: WaitStrategy) {
        self.strategy = strategy;
    }

    /// The segment, unless the event lives on the heap.
    pub fn segment(&self) -> Option<&Segment> {
        self.home.segment()
    }
}

impl Default for Event {
    fn default() -> Self {
        Event::new()
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("is_set", &self.is_set())
            .field("home", &self.home)
            .finish()
    }
}

impl Object for Event {
    const KIND: ObjectKind = ObjectKind::Event;
    fn body_len(_: &Builder<Self>) -> Result<usize, String> {
        Ok(EVENT_STATE_SIZE)
    }
    fn init(_: &Builder<Self>, body: NonNull<u8>) {
        // SAFETY: the body is at least EVENT_STATE_SIZE bytes, 128-aligned, unshared.
        unsafe { body.cast::<EventState>().as_ptr().write(EventState::new()) }
    }
    fn from_home(home: Home, b: Builder<Self>) -> Result<Self, OpenError> {
        object::check_body(&home, EVENT_STATE_SIZE)?;
        Ok(Event {
            home,
            strategy: b.knobs.strategy,
        })
    }
}
