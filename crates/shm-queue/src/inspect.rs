//! Read-only snapshots of a queue's state, for tools such as `shm-ipc inspect`.
//!
//! A snapshot is a few atomic loads: it claims no role, moves no index, never blocks, and may
//! be stale by the time it is read. Every field comes from memory any process can write.

use crate::bytes::ByteQueue;
use crate::ring::{Protocol, Ring};
use crate::role::RoleSlot;
use crate::typed::Queue;
use shm_core::Element;

/// What a queue looks like right now.
///
/// # Examples
///
/// ```
/// use shm_core::SegmentName;
/// use shm_queue::SpscQueue;
///
/// let name = SegmentName::unique();
/// let q = SpscQueue::<u32>::builder(&name).capacity(4).create()?;
/// let mut tx = q.producer()?;
/// tx.push(7)?;
/// let s = q.snapshot();
/// assert_eq!((s.len, s.capacity, s.closed, s.poisoned), (1, 4, false, false));
/// assert_eq!(s.producers.len(), 1);
/// assert!(s.consumers.is_empty());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueSnapshot {
    /// Items (or messages) queued: exact when nobody pushes or pops meanwhile.
    pub len: u64,
    /// How many fit.
    pub capacity: u64,
    /// Whether the queue was closed.
    pub closed: bool,
    /// Whether an impossible index or stamp was read from the segment: every operation fails
    /// with `Corrupt` from then on.
    pub poisoned: bool,
    /// The holders of the producer role, as [`ProcessId`](shm_core::ProcessId) words (pid in
    /// the low 32 bits); ask `ProcessId::word_liveness` whether each still runs.
    pub producers: Vec<u64>,
    /// The holders of the consumer role, as for `producers`.
    pub consumers: Vec<u64>,
}

fn holders(slots: &[RoleSlot]) -> Vec<u64> {
    slots
        .iter()
        .map(RoleSlot::holder)
        .filter(|&w| w != 0)
        .collect()
}

impl QueueSnapshot {
    /// The snapshot of any ring (every queue type is one).
    pub(crate) fn of(ring: &Ring) -> QueueSnapshot {
        QueueSnapshot {
            len: ring.len(),
            capacity: ring.capacity(),
            closed: ring.is_closed(),
            poisoned: ring.is_poisoned(),
            producers: holders(ring.producers()),
            consumers: holders(ring.consumers()),
        }
    }
}

impl<T: Element, P: Protocol> Queue<T, P> {
    /// A snapshot of the queue's state (see [`QueueSnapshot`]).
    pub fn snapshot(&self) -> QueueSnapshot {
        QueueSnapshot::of(self.ring())
    }
}

impl ByteQueue {
    /// A snapshot of the queue's state (see [`QueueSnapshot`]).
    pub fn snapshot(&self) -> QueueSnapshot {
        QueueSnapshot::of(self.ring())
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use crate::MpmcQueue;
    use shm_core::{ProcessId, SegmentName};

    #[test]
    #[cfg_attr(miri, ignore = "calls the OS")]
    fn snapshots_show_roles_and_length() {
        let name = SegmentName::unique();
        let q = MpmcQueue::<i64>::builder(&name)
            .capacity(8)
            .create()
            .unwrap();
        let empty = q.snapshot();
        assert_eq!((empty.len, empty.capacity), (0, 8));
        assert!(empty.producers.is_empty() && empty.consumers.is_empty());
        let mut tx = q.producer().unwrap();
        let rx = q.consumer().unwrap();
        tx.push(1).unwrap();
        tx.push(2).unwrap();
        let s = q.snapshot();
        assert_eq!(s.len, 2);
        let me = ProcessId::current().to_word();
        assert_eq!(s.producers, vec![me]);
        assert_eq!(s.consumers, vec![me]);
        drop(rx);
        q.close();
        let s = q.snapshot();
        assert!(s.closed);
        assert!(s.consumers.is_empty());
        drop(tx);
    }
}
