//! [`Shared<K>`]: a segment name that knows what kind of object it names, for role arguments.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use shm_core::SegmentName;
use std::fmt;
use std::marker::PhantomData;

/// An object kind that can be opened by its segment name. Implemented here for shm-lock's
/// kinds (`Lock`, `RLock`, `Semaphore`, `BoundedSemaphore`, `Event`, `Condition`, `Barrier`)
/// for `Value<T>`, `RawValue<T>`, `Array<T>`, `RawArray<T>`, and for shm-queue's
/// `SpscQueue<T>`, `MpmcQueue<T>`, `ByteQueue`, `JoinableQueue` and `PipeEnd` (a pipe's name
/// opens one of its ends).
pub trait OpenByName: Sized {
    /// What opening can fail with.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Opens the object named `name` (`Kind::builder(name).open()`).
    ///
    /// # Errors
    ///
    /// The kind's open error: no such segment, another kind or element type, a corrupt header.
    fn open_by_name(name: &SegmentName) -> Result<Self, Self::Error>;
}

/// The name of a shared object of kind `K`, to hand to a child as (part of) its typed
/// argument; the child [`open`](Self::open)s it.
///
/// It travels as the plain name, but its type says what the name is for: a role taking
/// `(Shared<Lock>, Shared<Value<i64>>)` cannot be sent the two names swapped, which with plain
/// names (or positional strings) is a run-time wrong-kind error in the child.
///
/// # Examples
///
/// ```no_run
/// use shm_core::SegmentName;
/// use shm_lock::Lock;
/// use shm_process::{Role, Roles, Shared};
///
/// const WORKER: Role<Shared<Lock>> = Role::new("worker");
///
/// fn worker(lock: Shared<Lock>) -> Result<(), Box<dyn std::error::Error>> {
///     let lock = lock.open()?; // process 2
///     let _held = lock.lock();
///     Ok(())
/// }
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// Roles::new().register(WORKER, worker).run();
/// let name = SegmentName::unique();
/// let lock = Lock::builder(&name).create()?; // process 1
/// let mut child = WORKER.builder(&Shared::new(&name))?.start()?;
/// child.join()?;
/// # drop(lock);
/// # Ok(())
/// # }
/// ```
pub struct Shared<K> {
    name: SegmentName,
    kind: PhantomData<fn() -> K>,
}

impl<K> Shared<K> {
    /// The object of kind `K` named `name`.
    pub fn new(name: &SegmentName) -> Shared<K> {
        Shared {
            name: name.clone(),
            kind: PhantomData,
        }
    }

    /// The segment name.
    pub fn name(&self) -> &SegmentName {
        &self.name
    }
}

impl<K: OpenByName> Shared<K> {
    /// Opens the object (`K::builder(name).open()`).
    ///
    /// # Errors
    ///
    /// `K`'s open error.
    pub fn open(&self) -> Result<K, K::Error> {
        K::open_by_name(&self.name)
    }
}

impl<K> Clone for Shared<K> {
    fn clone(&self) -> Self {
        Shared::new(&self.name)
    }
}

impl<K> PartialEq for Shared<K> {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl<K> Eq for Shared<K> {}

impl<K> fmt::Debug for Shared<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Shared<{}>({})", std::any::type_name::<K>(), self.name)
    }
}

impl<K> Serialize for Shared<K> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.name.serialize(serializer)
    }
}

impl<'de, K> Deserialize<'de> for Shared<K> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        SegmentName::deserialize(deserializer).map(|name| Shared::new(&name))
    }
}

/// `OpenByName` for kinds whose builder is `K::builder(&name).open()`.
macro_rules! open_by_builder {
    ($error:ty => $($kind:ty),+ $(,)?) => {$(
        impl OpenByName for $kind {
            type Error = $error;
            fn open_by_name(name: &SegmentName) -> Result<Self, Self::Error> {
                <$kind>::builder(name).open()
            }
        }
    )+};
}

open_by_builder!(shm_core::OpenError =>
    shm_lock::Lock,
    shm_lock::RLock,
    shm_lock::Semaphore,
    shm_lock::BoundedSemaphore,
    shm_lock::Event,
    shm_lock::Condition,
    shm_lock::Barrier,
);

/// `OpenByName` for generic kinds `K<T>` whose builder is `K::<T>::builder(&name).open()`.
macro_rules! open_generic_by_builder {
    ($error:ty => $($kind:ident<T: $bound:path>),+ $(,)?) => {$(
        impl<T: $bound> OpenByName for $kind<T> {
            type Error = $error;
            fn open_by_name(name: &SegmentName) -> Result<Self, Self::Error> {
                $kind::<T>::builder(name).open()
            }
        }
    )+};
}

use shm_array::{Array, RawArray};
use shm_queue::pipe::{Pipe, PipeEnd};
use shm_queue::{MpmcQueue, SpscQueue};
use shm_value::{RawValue, Value};

open_generic_by_builder!(shm_core::OpenError =>
    Value<T: shm_core::AtomicElement>,
    RawValue<T: shm_core::AtomicElement>,
    Array<T: shm_core::Element>,
    RawArray<T: shm_core::Element>,
    SpscQueue<T: shm_core::Element>,
    MpmcQueue<T: shm_core::Element>,
);

open_by_builder!(shm_core::OpenError =>
    shm_queue::bytes::ByteQueue,
    shm_queue::joinable::JoinableQueue,
);

/// A pipe's name opens one of its ends (`Pipe::builder(name).open()`).
impl OpenByName for PipeEnd {
    type Error = shm_core::OpenError;
    fn open_by_name(name: &SegmentName) -> Result<Self, Self::Error> {
        Pipe::builder(name).open()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shm_lock::{Event, Lock};

    #[test]
    #[cfg_attr(miri, ignore = "calls the OS")]
    fn a_shared_name_travels_as_the_name_and_opens_its_kind() {
        let name = SegmentName::unique();
        let _lock = Lock::builder(&name).create().unwrap();
        let shared: Shared<Lock> = Shared::new(&name);
        let json = serde_json::to_string(&shared).unwrap();
        assert_eq!(json, format!("\"{}\"", name.as_str()));
        let back: Shared<Lock> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, shared);
        assert!(format!("{back:?}").contains("Lock"));
        back.open().unwrap();
        // The same name opened as another kind is the kind check's error, not a misread.
        let wrong: Shared<Event> = Shared::new(&name);
        assert!(wrong.open().is_err());
    }

    #[test]
    #[cfg_attr(miri, ignore = "calls the OS")]
    fn values_and_arrays_open_with_their_element_type_checked() {
        let name = SegmentName::unique();
        let v = Value::<i64>::builder(&name).value(41).create().unwrap();
        let opened = Shared::<Value<i64>>::new(&name).open().unwrap();
        opened.store(42);
        assert_eq!(v.load(), 42);
        assert!(Shared::<Value<f64>>::new(&name).open().is_err());
        assert!(Shared::<Array<i64>>::new(&name).open().is_err());

        let name = SegmentName::unique();
        let _a = Array::<u32>::builder(&name).len(3).create().unwrap();
        assert_eq!(Shared::<Array<u32>>::new(&name).open().unwrap().len(), 3);
        assert!(Shared::<RawArray<u32>>::new(&name).open().is_err());
    }

    #[test]
    #[cfg_attr(miri, ignore = "calls the OS")]
    fn queues_open_with_their_element_type_checked() {
        let name = SegmentName::unique();
        let _q = SpscQueue::<u64>::builder(&name)
            .capacity(4)
            .create()
            .unwrap();
        assert!(Shared::<SpscQueue<u64>>::new(&name).open().is_ok());
        assert!(Shared::<SpscQueue<u32>>::new(&name).open().is_err());
        assert!(Shared::<MpmcQueue<u64>>::new(&name).open().is_err());
        assert!(Shared::<PipeEnd>::new(&name).open().is_err());
    }
}
