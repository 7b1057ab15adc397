//! What travels between the parent and its workers: the control segment, the worker's start
//! configuration, and the byte layout of task and result messages.
//!
//! Every message is read with bounds checks ([`Reader`]): a short or garbled message is `None`,
//! never a panic or an out-of-bounds read.
//!
//! Task message (parent → worker inbox), little-endian:
//!
//! ```text
//! u32 ntasks, then per task: u64 seq, u32 function, u32 nitems, then per item: u32 len, bytes
//! ```
//!
//! Worker message (worker → parent outbox): a tag byte, then
//!
//! ```text
//! READY
//! FATAL         utf-8 message (the worker cannot serve: the pool is broken)
//! RETIRING
//! RESULT        u64 seq, u32 first item, u32 nitems, then per item: u8 outcome, u32 len, bytes
//! ```

use serde::{Deserialize, Serialize};
use shm_core::sync::atomic::{AtomicU64, Ordering};
use shm_core::{EventCount, ObjectKind, Segment, SegmentName, WaitStrategy};
use std::fmt;
use std::ptr::NonNull;

/// Worker message tags.
pub(crate) const MSG_READY: u8 = 1;
pub(crate) const MSG_FATAL: u8 = 2;
pub(crate) const MSG_RETIRING: u8 = 3;
pub(crate) const MSG_RESULT: u8 = 4;

/// Item outcome tags of a result message.
pub(crate) const OUT_OK: u8 = 0;
pub(crate) const OUT_FAILED: u8 = 1;
pub(crate) const OUT_PANICKED: u8 = 2;
pub(crate) const OUT_CODEC: u8 = 3;
pub(crate) const OUT_TOO_LARGE: u8 = 4;

/// Bytes of a task message before its first task.
pub(crate) const TASK_MSG_HEAD: usize = 4;
/// Bytes of one task's head in a task message.
pub(crate) const TASK_HEAD: usize = 16;
/// Bytes before an item's encoding (its length).
pub(crate) const ITEM_HEAD: usize = 4;
/// Bytes of a result message before its first item.
pub(crate) const RESULT_HEAD: usize = 1 + 16;
/// Bytes before an item's outcome bytes in a result message.
pub(crate) const OUTCOME_HEAD: usize = 5;

/// The body of the pool's control segment (an `ObjectKind::Bytes` segment).
///
/// | field | written by | meaning |
/// |---|---|---|
/// | `magic` | creator, once | [`CONTROL_MAGIC`]: this is a pool's control block |
/// | `fingerprint` | creator, once | the parent's registry fingerprint |
/// | `results` | workers notify, the parent's result thread waits | a message was pushed into some outbox |
#[repr(C)]
pub(crate) struct Control {
    magic: AtomicU64,
    fingerprint: AtomicU64,
    results: EventCount,
}

const CONTROL_MAGIC: u64 = u64::from_le_bytes(*b"SHMPOOL1");

/// The control segment, mapped.
pub(crate) struct ControlBlock {
    seg: Segment,
    ctl: NonNull<Control>,
}

// SAFETY: `ctl` points into the mapping that `seg` keeps alive; the block only hands out shared
// references to atomics (the EventCount is two atomics), which any thread may use.
unsafe impl Send for ControlBlock {}
// SAFETY: as above.
unsafe impl Sync for ControlBlock {}

impl ControlBlock {
    /// Creates the control segment.
    pub(crate) fn create(
        name: &SegmentName,
        fingerprint: u64,
    ) -> Result<ControlBlock, shm_core::CreateError> {
        let seg = Segment::builder(name, ObjectKind::Bytes)
            .body_len(std::mem::size_of::<Control>())
            .create(|body, _len| {
                // SAFETY: the body is fresh, zeroed, 128-aligned and at least
                // size_of::<Control>() bytes long, and nobody else sees it before publication.
                unsafe {
                    body.cast::<Control>().as_ptr().write(Control {
                        magic: AtomicU64::new(CONTROL_MAGIC),
                        fingerprint: AtomicU64::new(fingerprint),
                        results: EventCount::new(),
                    })
                };
            })?;
        let ctl = seg.body().cast::<Control>();
        Ok(ControlBlock { seg, ctl })
    }

    /// Opens a control segment and checks that it is one.
    pub(crate) fn open(name: &SegmentName) -> Result<ControlBlock, String> {
        let seg = Segment::builder(name, ObjectKind::Bytes)
            .open()
            .map_err(|e| format!("cannot open the pool's control segment {name}: {e}"))?;
        if seg.body_len() < std::mem::size_of::<Control>() {
            return Err(format!(
                "segment {name} is too small ({} bytes) to be a pool's control block",
                seg.body_len()
            ));
        }
        let ctl = seg.body().cast::<Control>();
        let block = ControlBlock { seg, ctl };
        let magic = block.get().magic.load(Ordering::Acquire);
        if magic != CONTROL_MAGIC {
            return Err(format!(
                "segment {name} is not a pool's control block (magic {magic:#x})"
            ));
        }
        Ok(block)
    }

    fn get(&self) -> &Control {
        // SAFETY: `ctl` is aligned (segment bodies are 128-aligned), within a mapping of at
        // least size_of::<Control>() bytes (checked on open, made so on create) that `seg`
        // keeps alive, and Control is all atomics, valid for any bit pattern.
        unsafe { self.ctl.as_ref() }
    }

    /// The parent's registry fingerprint.
    pub(crate) fn fingerprint(&self) -> u64 {
        self.get().fingerprint.load(Ordering::Relaxed)
    }

    /// The eventcount a worker notifies after each message it pushes.
    pub(crate) fn results(&self) -> &EventCount {
        &self.get().results
    }

    /// The segment's name.
    pub(crate) fn name(&self) -> &SegmentName {
        self.seg.name()
    }
}

impl fmt::Debug for ControlBlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ControlBlock")
            .field("name", self.seg.name())
            .finish()
    }
}

/// The name of a slot's inbox or outbox queue, from the pool's base name.
pub(crate) fn queue_name(base: &str, dir: char, slot: u32) -> Result<SegmentName, String> {
    SegmentName::new(&format!("{base}_{dir}{slot}"))
        .map_err(|e| format!("cannot name the queue of worker {slot}: {e}"))
}

/// The name of the control segment, from the pool's base name.
pub(crate) fn control_name(base: &str) -> Result<SegmentName, String> {
    SegmentName::new(&format!("{base}_c"))
        .map_err(|e| format!("cannot name the pool's control segment: {e}"))
}

/// What a worker is told at start (one hex-encoded argument).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct WorkerConfig {
    /// The pool's base name.
    pub(crate) base: String,
    /// This worker's slot.
    pub(crate) slot: u32,
    /// Tasks to run before exiting (0: no limit).
    pub(crate) maxtasks: u64,
    /// The initializer: function index, its signature, encoded arguments.
    pub(crate) init: Option<(u32, u64, Vec<u8>)>,
    /// Wait strategy: mode (0 busy, 1 sleep, 2 adaptive), spin and slice in nanoseconds.
    pub(crate) strategy: (u8, u64, u64),
}

impl WorkerConfig {
    pub(crate) fn encode(&self) -> String {
        let bytes = postcard::to_stdvec(self).unwrap_or_default();
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    pub(crate) fn decode(hex: &str) -> Option<WorkerConfig> {
        if !hex.len().is_multiple_of(2) || !hex.is_ascii() {
            return None;
        }
        let bytes: Option<Vec<u8>> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok())
            .collect();
        postcard::from_bytes(&bytes?).ok()
    }
}

pub(crate) fn strategy_to_wire(s: &WaitStrategy) -> (u8, u64, u64) {
    let mode = match s.mode {
        shm_core::sync::WaitMode::BusyPoll => 0,
        shm_core::sync::WaitMode::Sleep => 1,
        shm_core::sync::WaitMode::Adaptive => 2,
    };
    (mode, s.spin.as_nanos() as u64, s.slice.as_nanos() as u64)
}

pub(crate) fn strategy_from_wire((mode, spin, slice): (u8, u64, u64)) -> WaitStrategy {
    let base = match mode {
        0 => WaitStrategy::busy_poll(),
        1 => WaitStrategy::sleep(),
        _ => WaitStrategy::adaptive(std::time::Duration::from_nanos(spin)),
    };
    base.with_slice(std::time::Duration::from_nanos(slice))
}

/// Bounds-checked little-endian reads from a message.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf }
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.buf.len() {
            return None;
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Some(head)
    }

    pub(crate) fn u8(&mut self) -> Option<u8> {
        self.bytes(1).map(|b| b[0])
    }

    pub(crate) fn u32(&mut self) -> Option<u32> {
        self.bytes(4)
            .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
    }

    pub(crate) fn u64(&mut self) -> Option<u64> {
        self.bytes(8)
            .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }

    /// A `u32` length followed by that many bytes.
    pub(crate) fn blob(&mut self) -> Option<&'a [u8]> {
        let n = self.u32()? as usize;
        self.bytes(n)
    }

    pub(crate) fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }

    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
}

/// Appends a `u32` length and the bytes.
pub(crate) fn put_blob(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_never_reads_past_the_end() {
        let mut msg = vec![7u8];
        msg.extend_from_slice(&5u32.to_le_bytes());
        msg.extend_from_slice(b"abc"); // says 5, has 3
        let mut r = Reader::new(&msg);
        assert_eq!(r.u8(), Some(7));
        assert_eq!(r.blob(), None);
        let mut r = Reader::new(&[1, 2, 3]);
        assert_eq!(r.u32(), None);
        assert_eq!(r.u64(), None);
        let mut ok = Vec::new();
        put_blob(&mut ok, b"xyz");
        let mut r = Reader::new(&ok);
        assert_eq!(r.blob(), Some(&b"xyz"[..]));
        assert!(r.is_empty());
    }

    #[test]
    fn worker_config_round_trips_through_hex() {
        let cfg = WorkerConfig {
            base: "pool_1_2_abcdef".into(),
            slot: 3,
            maxtasks: 10,
            init: Some((1, 99, vec![1, 2, 255])),
            strategy: strategy_to_wire(&WaitStrategy::default()),
        };
        let back = WorkerConfig::decode(&cfg.encode()).unwrap();
        assert_eq!(back.base, cfg.base);
        assert_eq!(back.slot, 3);
        assert_eq!(back.init, cfg.init);
        assert_eq!(strategy_from_wire(back.strategy), WaitStrategy::default());
        assert!(WorkerConfig::decode("zz").is_none());
        assert!(WorkerConfig::decode("abc").is_none());
    }
}
