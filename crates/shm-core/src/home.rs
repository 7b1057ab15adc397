//! Where a control block lives: a shared segment, or the heap.
//!
//! Every lock-free algorithm of the workspace is written against a control block it is handed
//! as a pointer. [`Home`] supplies that memory either from a [`Segment`] (the real, cross-process
//! case) or from a [`HeapBlock`] (the same bytes, zeroed, 128-byte aligned, in this process), so
//! the same algorithm runs under loom and miri.

use crate::Segment;
use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::fmt;
use std::ptr::NonNull;

/// Alignment of a [`HeapBlock`], the same as a segment body's.
pub const HEAP_ALIGN: usize = 128;

/// A zeroed, 128-byte aligned heap allocation standing in for a segment body.
///
/// # Examples
///
/// ```
/// use shm_core::HeapBlock;
///
/// let block = HeapBlock::new(256);
/// assert_eq!(block.len(), 256);
/// assert_eq!(block.as_ptr().as_ptr() as usize % 128, 0);
/// ```
pub struct HeapBlock {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: a HeapBlock is plain owned memory; what is stored in it decides thread safety, and the
// users of a Home only place atomics and Pod data in it.
unsafe impl Send for HeapBlock {}
// SAFETY: as above; shared access goes through raw pointers and atomics.
unsafe impl Sync for HeapBlock {}

impl HeapBlock {
    /// Allocates `len` zeroed bytes (at least one), aligned to [`HEAP_ALIGN`].
    ///
    /// # Panics
    ///
    /// If `len` overflows a `Layout` (more than `isize::MAX`), like `Vec`.
    pub fn new(len: usize) -> HeapBlock {
        let layout = Self::layout(len);
        // SAFETY: the layout has a non-zero size (at least HEAP_ALIGN).
        let raw = unsafe { alloc_zeroed(layout) };
        let ptr = NonNull::new(raw).unwrap_or_else(|| std::alloc::handle_alloc_error(layout));
        HeapBlock { ptr, len }
    }

    fn layout(len: usize) -> Layout {
        let size = len.max(1).next_multiple_of(HEAP_ALIGN);
        Layout::from_size_align(size, HEAP_ALIGN).expect("heap block too large")
    }

    /// The start of the block.
    pub fn as_ptr(&self) -> NonNull<u8> {
        self.ptr
    }

    /// Its length in bytes, as asked for.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Drop for HeapBlock {
    fn drop(&mut self) {
        // SAFETY: ptr was allocated in `new` with exactly this layout and is freed only here.
        unsafe { dealloc(self.ptr.as_ptr(), Self::layout(self.len)) }
    }
}

impl fmt::Debug for HeapBlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HeapBlock").field("len", &self.len).finish()
    }
}

/// The memory of an object: a segment body or a heap block.
#[derive(Debug)]
pub enum Home {
    /// A named shared-memory segment; the body is the memory.
    Segment(Segment),
    /// A process-local heap block (tests, loom, miri).
    Heap(HeapBlock),
}

impl Home {
    /// A zeroed heap home of `len` bytes.
    pub fn heap(len: usize) -> Home {
        Home::Heap(HeapBlock::new(len))
    }

    /// The start of the memory (128-byte aligned).
    pub fn as_ptr(&self) -> NonNull<u8> {
        match self {
            Home::Segment(s) => s.body(),
            Home::Heap(h) => h.as_ptr(),
        }
    }

    /// Its length in bytes.
    pub fn len(&self) -> usize {
        match self {
            Home::Segment(s) => s.body_len(),
            Home::Heap(h) => h.len(),
        }
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The segment, if the home is one.
    pub fn segment(&self) -> Option<&Segment> {
        match self {
            Home::Segment(s) => Some(s),
            Home::Heap(_) => None,
        }
    }
}

impl From<Segment> for Home {
    fn from(s: Segment) -> Self {
        Home::Segment(s)
    }
}

impl From<HeapBlock> for Home {
    fn from(h: HeapBlock) -> Self {
        Home::Heap(h)
    }
}
