//! The objects of this crate as typed role arguments: [`shm_process::Shared<K>`] opens them.
//!
//! A parent hands a child `Shared::<Manager>::new(mgr.name())` (or a dict, list or namespace
//! the same way) as part of a [`shm_process::Role`]'s argument; the child calls `open()`.

use crate::{Manager, Namespace, SharedDict, SharedList};
use serde::de::DeserializeOwned;
use serde::Serialize;
use shm_core::{OpenError, SegmentName};
use shm_process::{OpenByName, Shared};

impl OpenByName for Manager {
    type Error = OpenError;

    fn open_by_name(name: &SegmentName) -> Result<Self, OpenError> {
        Manager::open(name)
    }
}

impl<K, V> OpenByName for SharedDict<K, V>
where
    K: Serialize + DeserializeOwned,
    V: Serialize + DeserializeOwned,
{
    type Error = OpenError;

    fn open_by_name(name: &SegmentName) -> Result<Self, OpenError> {
        SharedDict::open(name)
    }
}

impl<T> OpenByName for SharedList<T>
where
    T: Serialize + DeserializeOwned,
{
    type Error = OpenError;

    fn open_by_name(name: &SegmentName) -> Result<Self, OpenError> {
        SharedList::open(name)
    }
}

impl OpenByName for Namespace {
    type Error = OpenError;

    fn open_by_name(name: &SegmentName) -> Result<Self, OpenError> {
        Namespace::open(name)
    }
}

impl Manager {
    /// This manager as a typed role argument: the child gets its one name and
    /// [`open`](Shared::open)s it.
    pub fn shared(&self) -> Shared<Manager> {
        Shared::new(self.name())
    }
}
