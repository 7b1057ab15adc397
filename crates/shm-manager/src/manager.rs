//! `Manager`: named objects under one name, found by key.

use crate::builder::{Builder, Kind};
use crate::dict::{decode, encode, RawDict};
use crate::error::{ReadError, WriteError};
use crate::store::Store;
use crate::{Namespace, SharedDict, SharedList};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use shm_core::{CreateError, Element, ObjectKind, OpenError, Segment, SegmentName};
use std::fmt;

/// What the registry records for one key.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Record {
    pub(crate) kind: u32,
    pub(crate) name: String,
}

/// The registry: a byte dict in a segment of kind [`ObjectKind::Manager`].
struct Registry {
    raw: RawDict,
}

impl Kind for Registry {
    const KIND: ObjectKind = ObjectKind::Manager;
    fn type_names() -> String {
        "manager registry: key => (kind, segment name)".into()
    }
    fn layout() -> [usize; 4] {
        [0; 4]
    }
    fn index_words(capacity: u64) -> u64 {
        RawDict::index_words(capacity)
    }
    fn from_store(store: Store) -> Self {
        Registry {
            raw: RawDict::new(store),
        }
    }
}

/// Why a [`Manager`] could not hand out an object.
#[derive(Debug)]
#[non_exhaustive]
pub enum ManagerError {
    /// The key is registered for another kind of object.
    WrongKind {
        /// The key.
        key: String,
        /// The kind asked for.
        expected: ObjectKind,
        /// The kind registered (`None`: a kind number this build does not know).
        found: Option<ObjectKind>,
    },
    /// Creating the object failed (the key stays unregistered).
    Create {
        /// The key.
        key: String,
        /// Why.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Opening the registered object failed (for example with other types than it was
    /// created with).
    Open {
        /// The key.
        key: String,
        /// Why.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The registry could not be read or written (full, corrupt, a lock timeout).
    Registry(WriteError),
}

impl fmt::Display for ManagerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ManagerError::WrongKind {
                key,
                expected,
                found,
            } => match found {
                Some(k) => write!(f, "manager key {key:?} holds a {k}, not a {expected}"),
                None => write!(
                    f,
                    "manager key {key:?} holds an unknown kind, not a {expected}"
                ),
            },
            ManagerError::Create { key, source } => {
                write!(f, "cannot create manager object {key:?}: {source}")
            }
            ManagerError::Open { key, source } => {
                write!(f, "cannot open manager object {key:?}: {source}")
            }
            ManagerError::Registry(e) => write!(f, "manager registry: {e}"),
        }
    }
}

impl std::error::Error for ManagerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ManagerError::Create { source, .. } | ManagerError::Open { source, .. } => {
                Some(&**source)
            }
            ManagerError::Registry(e) => Some(e),
            ManagerError::WrongKind { .. } => None,
        }
    }
}

impl From<WriteError> for ManagerError {
    fn from(e: WriteError) -> Self {
        ManagerError::Registry(e)
    }
}

impl From<ReadError> for ManagerError {
    fn from(e: ReadError) -> Self {
        ManagerError::Registry(e.into())
    }
}

/// Python's `multiprocessing.Manager()`, without the server process: a registry segment
/// under one name, mapping keys to the objects the manager made. A child process gets the
/// manager's one name (not one name per object), opens the manager, and asks for the same
/// keys.
///
/// `mgr.dict::<K, V>("data")` returns the dict registered as `"data"`, creating and
/// registering it first if there is none (atomically: two processes asking at once get the
/// same dict). The same holds for [`list`](Self::list), [`namespace`](Self::namespace),
/// [`value`](Self::value), [`array`](Self::array), [`queue`](Self::queue),
/// [`lock`](Self::lock), [`rlock`](Self::rlock), [`semaphore`](Self::semaphore),
/// [`bounded_semaphore`](Self::bounded_semaphore), [`event`](Self::event),
/// [`condition`](Self::condition) and [`barrier`](Self::barrier); any other kind is registered with
/// [`segment_name`](Self::segment_name) and built with its own builder. Types are checked
/// when an object is opened, as every segment does.
///
/// The manager that *created* the registry removes every registered object's name, and its
/// own, when dropped (processes that have them open keep using them); a manager opened with
/// [`open`](Self::open) removes nothing.
///
/// # Examples
///
/// ```
/// use shm_core::SegmentName;
/// use shm_manager::Manager;
///
/// let mgr = Manager::create(&SegmentName::unique())?;
/// let d = mgr.dict::<String, i64>("data")?;
/// d.insert("num", &10)?;
/// let l = mgr.list::<i64>("l")?;
/// l.extend(&[0, 1, 2])?;
///
/// // A child gets `mgr.name()` and does this:
/// let child = Manager::open(mgr.name())?;
/// assert_eq!(child.dict::<String, i64>("data")?.get("num")?, Some(10));
/// child.list::<i64>("l")?.reverse()?;
/// assert_eq!(l.to_vec()?, [2, 1, 0]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Manager {
    name: SegmentName,
    registry: Registry,
    creator: bool,
}

impl fmt::Debug for Manager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Manager")
            .field("name", &self.name)
            .field("creator", &self.creator)
            .finish()
    }
}

/// Most objects one manager registers by default.
pub const DEFAULT_MANAGER_CAPACITY: u64 = 256;

/// Why making an object failed.
enum Failed {
    /// The name is taken: try the next one.
    Taken,
    Other(Box<dyn std::error::Error + Send + Sync>),
}

/// Sorts a create result for `get_or_make`.
fn made<T>(r: Result<T, CreateError>) -> Result<T, Failed> {
    r.map_err(|e| match e {
        CreateError::AlreadyExists { .. } => Failed::Taken,
        e => Failed::Other(Box::new(e)),
    })
}

/// Boxes an open error for `get_or_make`.
fn opened<T, E: std::error::Error + Send + Sync + 'static>(
    r: Result<T, E>,
) -> Result<T, Box<dyn std::error::Error + Send + Sync>> {
    r.map_err(|e| Box::new(e) as _)
}

/// What `get_or_make` found or made.
enum Got<T> {
    Made(T),
    Registered(SegmentName),
}

impl Manager {
    /// Creates a manager (its registry segment) named `name`, for up to
    /// [`DEFAULT_MANAGER_CAPACITY`] objects.
    ///
    /// # Errors
    ///
    /// As [`Builder::create`] (for example `AlreadyExists`).
    pub fn create(name: &SegmentName) -> Result<Manager, CreateError> {
        Self::create_with_capacity(name, DEFAULT_MANAGER_CAPACITY)
    }

    /// Creates a manager for up to `objects` objects.
    ///
    /// # Errors
    ///
    /// As [`Builder::create`].
    pub fn create_with_capacity(name: &SegmentName, objects: u64) -> Result<Manager, CreateError> {
        let registry = Builder::<Registry>::new(name)
            .capacity(objects)
            .arena_bytes(objects.saturating_mul(96))
            .create_impl()?;
        Ok(Manager {
            name: name.clone(),
            registry,
            creator: true,
        })
    }

    /// Opens the manager named `name` (in a child process, say). Dropping it removes nothing.
    ///
    /// # Errors
    ///
    /// As [`Builder::open`]; [`OpenError::WrongKind`] if `name` is not a manager.
    pub fn open(name: &SegmentName) -> Result<Manager, OpenError> {
        let registry = Builder::<Registry>::new(name).open_impl()?;
        Ok(Manager {
            name: name.clone(),
            registry,
            creator: false,
        })
    }

    /// The manager's name: all a child needs.
    pub fn name(&self) -> &SegmentName {
        &self.name
    }

    /// Whether this handle created the manager (and removes its objects on drop).
    pub fn is_creator(&self) -> bool {
        self.creator
    }

    /// The registered keys with their kinds (`None`: a kind this build does not know), in
    /// registration order.
    ///
    /// # Errors
    ///
    /// The registry could not be read.
    pub fn keys(&self) -> Result<Vec<(String, Option<ObjectKind>)>, ManagerError> {
        Ok(self
            .records()?
            .into_iter()
            .map(|(k, r)| (k, ObjectKind::from_u32(r.kind)))
            .collect())
    }

    pub(crate) fn records(&self) -> Result<Vec<(String, Record)>, ReadError> {
        self.registry
            .raw
            .items()?
            .into_iter()
            .map(|(k, v)| Ok((decode(&k)?, decode(&v)?)))
            .collect()
    }

    /// The segment name registered for `key`, if any (without creating anything): for tools
    /// and tests.
    ///
    /// # Errors
    ///
    /// The registry could not be read, or holds a name that is not valid.
    pub fn segment_name_of(&self, key: &str) -> Result<Option<SegmentName>, ManagerError> {
        let kb = encode(key).map_err(WriteError::Encode)?;
        let Some(bytes) = self.registry.raw.get_bytes(&kb)? else {
            return Ok(None);
        };
        let rec: Record = decode(&bytes).map_err(ReadError::from)?;
        SegmentName::new(&rec.name)
            .map(Some)
            .map_err(|e| ManagerError::Open {
                key: key.into(),
                source: Box::new(e),
            })
    }

    /// A fresh segment name for object number `n`: the manager's name, shortened if needed,
    /// then `.` and `n` in hex, so a listing shows a manager's objects together.
    fn object_name(&self, n: u64) -> SegmentName {
        let suffix = format!(".{n:x}");
        let keep = shm_core::name::MAX_NAME_LEN - suffix.len();
        let base = self.name.as_str();
        let base = &base[..base.len().min(keep)];
        SegmentName::new(&format!("{base}{suffix}")).unwrap_or_else(|_| SegmentName::unique())
    }

    /// The object registered as `key` (opened by `open`), or a new one made by `create` under
    /// the registry's lock and registered.
    fn get_or_make<T>(
        &self,
        key: &str,
        kind: ObjectKind,
        create: impl Fn(&SegmentName) -> Result<T, Failed>,
        open: impl FnOnce(&SegmentName) -> Result<T, Box<dyn std::error::Error + Send + Sync>>,
        segment: impl Fn(&T) -> Option<&Segment>,
    ) -> Result<T, ManagerError> {
        let kb = encode(key).map_err(WriteError::Encode)?;
        let mut got: Option<Result<Got<T>, ManagerError>> = None;
        let n_before = self.registry.raw.len()? as u64;
        self.registry.raw.update_bytes::<WriteError>(&kb, |old| {
            if let Some(bytes) = old {
                let rec: Record = decode(bytes)?;
                got = Some(if rec.kind != kind.as_u32() {
                    Err(ManagerError::WrongKind {
                        key: key.into(),
                        expected: kind,
                        found: ObjectKind::from_u32(rec.kind),
                    })
                } else {
                    SegmentName::new(&rec.name)
                        .map(Got::Registered)
                        .map_err(|e| ManagerError::Open {
                            key: key.into(),
                            source: Box::new(e),
                        })
                });
                return Ok(crate::dict::Change::Keep);
            }
            // Not registered: make it. A name left by a creator that died before
            // registering is skipped (at most 16 tries).
            let mut last = None;
            for n in n_before..n_before + 16 {
                let name = self.object_name(n);
                match create(&name) {
                    Ok(obj) => {
                        if let Some(seg) = segment(&obj) {
                            seg.persist(); // the creating Manager removes it, not this handle
                        }
                        let rec = Record {
                            kind: kind.as_u32(),
                            name: name.as_str().into(),
                        };
                        got = Some(Ok(Got::Made(obj)));
                        return Ok(crate::dict::Change::Put(
                            encode(&rec).map_err(WriteError::Encode)?,
                        ));
                    }
                    Err(Failed::Taken) => continue,
                    Err(Failed::Other(e)) => {
                        last = Some(e);
                        break;
                    }
                }
            }
            got = Some(Err(ManagerError::Create {
                key: key.into(),
                source: last.unwrap_or_else(|| "16 object names in a row were taken".into()),
            }));
            Ok(crate::dict::Change::Keep)
        })?;
        match got {
            Some(Ok(Got::Made(obj))) => Ok(obj),
            Some(Ok(Got::Registered(name))) => open(&name).map_err(|source| ManagerError::Open {
                key: key.into(),
                source,
            }),
            Some(Err(e)) => Err(e),
            None => Err(ManagerError::Registry(WriteError::Corrupt(
                crate::error::Corrupt::new("registry update did not run", 0),
            ))),
        }
    }

    /// The segment name registered for `key` as an object of `kind`, registering a fresh
    /// one if there is none, for kinds this manager has no method for: build the object
    /// with its own builder under that name. The manager removes the name on drop.
    ///
    /// # Errors
    ///
    /// [`ManagerError::WrongKind`] if `key` is registered as another kind; registry errors.
    pub fn segment_name(&self, key: &str, kind: ObjectKind) -> Result<SegmentName, ManagerError> {
        self.get_or_make(
            key,
            kind,
            |name| Ok(name.clone()),
            |name| Ok(name.clone()),
            |_| None,
        )
    }

    /// The dict registered as `key`, created with the default capacity if there is none.
    ///
    /// # Errors
    ///
    /// [`ManagerError::Open`] if it exists with other key or value types (or is corrupt),
    /// [`ManagerError::WrongKind`], [`ManagerError::Create`], registry errors.
    pub fn dict<K, V>(&self, key: &str) -> Result<SharedDict<K, V>, ManagerError>
    where
        K: Serialize + DeserializeOwned,
        V: Serialize + DeserializeOwned,
    {
        self.dict_with(key, |b| b)
    }

    /// As [`dict`](Self::dict), creating it with the builder as `configure` sets it up
    /// (capacity, arena bytes, timeout); an existing dict is opened with the same knobs.
    ///
    /// # Errors
    ///
    /// As [`dict`](Self::dict).
    pub fn dict_with<K, V>(
        &self,
        key: &str,
        configure: impl Fn(Builder<SharedDict<K, V>>) -> Builder<SharedDict<K, V>>,
    ) -> Result<SharedDict<K, V>, ManagerError>
    where
        K: Serialize + DeserializeOwned,
        V: Serialize + DeserializeOwned,
    {
        self.get_or_make(
            key,
            ObjectKind::Dict,
            |n| made(configure(SharedDict::builder(n)).create()),
            |n| opened(configure(SharedDict::builder(n)).open()),
            SharedDict::segment,
        )
    }

    /// The list registered as `key`, created empty with the default capacity if there is
    /// none.
    ///
    /// # Errors
    ///
    /// As [`dict`](Self::dict).
    pub fn list<T>(&self, key: &str) -> Result<SharedList<T>, ManagerError>
    where
        T: Serialize + DeserializeOwned,
    {
        self.list_with(key, |b| b)
    }

    /// As [`list`](Self::list), creating it with the builder as `configure` sets it up.
    ///
    /// # Errors
    ///
    /// As [`dict`](Self::dict).
    pub fn list_with<T>(
        &self,
        key: &str,
        configure: impl Fn(Builder<SharedList<T>>) -> Builder<SharedList<T>>,
    ) -> Result<SharedList<T>, ManagerError>
    where
        T: Serialize + DeserializeOwned,
    {
        self.get_or_make(
            key,
            ObjectKind::List,
            |n| made(configure(SharedList::builder(n)).create()),
            |n| opened(configure(SharedList::builder(n)).open()),
            SharedList::segment,
        )
    }

    /// The namespace registered as `key`, created empty if there is none.
    ///
    /// # Errors
    ///
    /// As [`dict`](Self::dict).
    pub fn namespace(&self, key: &str) -> Result<Namespace, ManagerError> {
        self.get_or_make(
            key,
            ObjectKind::Namespace,
            |n| made(Namespace::create(n)),
            |n| opened(Namespace::open(n)),
            Namespace::segment,
        )
    }

    /// The `Value<T>` registered as `key` (Python's `manager.Value(typecode, init)`), created
    /// holding `init` if there is none.
    ///
    /// # Errors
    ///
    /// As [`dict`](Self::dict) (a typecode other than `T`'s is [`ManagerError::Open`]).
    pub fn value<T: shm_value::AtomicElement>(
        &self,
        key: &str,
        init: T,
    ) -> Result<shm_value::Value<T>, ManagerError> {
        self.get_or_make(
            key,
            ObjectKind::Value,
            |n| made(shm_value::Value::create(n, init)),
            |n| opened(shm_value::Value::open(n)),
            shm_value::Value::segment,
        )
    }

    /// The `Array<T>` registered as `key` (Python's `manager.Array(typecode, seq)`), created
    /// as a copy of `init` if there is none.
    ///
    /// # Errors
    ///
    /// As [`value`](Self::value).
    pub fn array<T: shm_array::AtomicElement>(
        &self,
        key: &str,
        init: &[T],
    ) -> Result<shm_array::Array<T>, ManagerError> {
        self.get_or_make(
            key,
            ObjectKind::Array,
            |n| made(shm_array::Array::create_from(n, init)),
            |n| opened(shm_array::Array::open(n)),
            shm_array::Array::segment,
        )
    }

    /// The MPMC queue registered as `key` (Python's `manager.Queue(maxsize)`), created with
    /// room for `capacity` elements if there is none.
    ///
    /// # Errors
    ///
    /// As [`value`](Self::value).
    pub fn queue<T: Element>(
        &self,
        key: &str,
        capacity: usize,
    ) -> Result<shm_queue::MpmcQueue<T>, ManagerError> {
        self.get_or_make(
            key,
            ObjectKind::MpmcQueue,
            |n| made(shm_queue::MpmcQueue::builder(n).capacity(capacity).create()),
            |n| opened(shm_queue::MpmcQueue::builder(n).open()),
            shm_queue::MpmcQueue::segment,
        )
    }

    /// The `Lock` registered as `key` (Python's `manager.Lock()`), created if there is none.
    ///
    /// # Errors
    ///
    /// As [`value`](Self::value).
    pub fn lock(&self, key: &str) -> Result<shm_lock::Lock, ManagerError> {
        self.get_or_make(
            key,
            ObjectKind::Lock,
            |n| made(shm_lock::Lock::builder(n).create()),
            |n| opened(shm_lock::Lock::builder(n).open()),
            shm_lock::Lock::segment,
        )
    }

    /// The `RLock` registered as `key` (Python's `manager.RLock()`), created if there is none.
    ///
    /// # Errors
    ///
    /// As [`value`](Self::value).
    pub fn rlock(&self, key: &str) -> Result<shm_lock::RLock, ManagerError> {
        self.get_or_make(
            key,
            ObjectKind::RLock,
            |n| made(shm_lock::RLock::builder(n).create()),
            |n| opened(shm_lock::RLock::builder(n).open()),
            shm_lock::RLock::segment,
        )
    }

    /// The `Semaphore` registered as `key` (Python's `manager.Semaphore(value)`), created with
    /// `value` if there is none.
    ///
    /// # Errors
    ///
    /// As [`value`](Self::value).
    pub fn semaphore(&self, key: &str, value: u32) -> Result<shm_lock::Semaphore, ManagerError> {
        self.get_or_make(
            key,
            ObjectKind::Semaphore,
            |n| made(shm_lock::Semaphore::builder(n).value(value).create()),
            |n| opened(shm_lock::Semaphore::builder(n).open()),
            shm_lock::Semaphore::segment,
        )
    }

    /// The `BoundedSemaphore` registered as `key`, created with `value` if there is none.
    ///
    /// # Errors
    ///
    /// As [`value`](Self::value).
    pub fn bounded_semaphore(
        &self,
        key: &str,
        value: u32,
    ) -> Result<shm_lock::BoundedSemaphore, ManagerError> {
        self.get_or_make(
            key,
            ObjectKind::BoundedSemaphore,
            |n| made(shm_lock::BoundedSemaphore::builder(n).value(value).create()),
            |n| opened(shm_lock::BoundedSemaphore::builder(n).open()),
            shm_lock::BoundedSemaphore::segment,
        )
    }

    /// The `Event` registered as `key` (Python's `manager.Event()`), created if there is none.
    ///
    /// # Errors
    ///
    /// As [`value`](Self::value).
    pub fn event(&self, key: &str) -> Result<shm_lock::Event, ManagerError> {
        self.get_or_make(
            key,
            ObjectKind::Event,
            |n| made(shm_lock::Event::builder(n).create()),
            |n| opened(shm_lock::Event::builder(n).open()),
            shm_lock::Event::segment,
        )
    }

    /// The `Condition` registered as `key` (Python's `manager.Condition()`), created if there
    /// is none.
    ///
    /// # Errors
    ///
    /// As [`value`](Self::value).
    pub fn condition(&self, key: &str) -> Result<shm_lock::Condition, ManagerError> {
        self.get_or_make(
            key,
            ObjectKind::Condition,
            |n| made(shm_lock::Condition::builder(n).create()),
            |n| opened(shm_lock::Condition::builder(n).open()),
            shm_lock::Condition::segment,
        )
    }

    /// The `Barrier` registered as `key` (Python's `manager.Barrier(parties)`), created for
    /// `parties` if there is none.
    ///
    /// # Errors
    ///
    /// As [`value`](Self::value).
    pub fn barrier(&self, key: &str, parties: u32) -> Result<shm_lock::Barrier, ManagerError> {
        self.get_or_make(
            key,
            ObjectKind::Barrier,
            |n| made(shm_lock::Barrier::builder(n).parties(parties).create()),
            |n| opened(shm_lock::Barrier::builder(n).open()),
            shm_lock::Barrier::segment,
        )
    }
}

impl Drop for Manager {
    fn drop(&mut self) {
        if !self.creator {
            return;
        }
        // Remove every registered object's name; the registry's own segment unlinks itself.
        if let Ok(records) = self.records() {
            for (_, rec) in records {
                if let Ok(name) = SegmentName::new(&rec.name) {
                    // A growable dict or namespace may have moved into successors.
                    if let Some(kind @ (ObjectKind::Dict | ObjectKind::Namespace)) =
                        ObjectKind::from_u32(rec.kind)
                    {
                        crate::dict::unlink_successors_of(&name, kind);
                    }
                    let _ = Segment::unlink_name(&name);
                }
            }
        }
    }
}
