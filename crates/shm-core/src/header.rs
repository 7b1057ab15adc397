//! The segment header: fixed-width fields at pinned offsets, published with Release and
//! validated by every opener.
//!
//! Layout (little-endian, [`HEADER_SIZE`] = 256 bytes; the body starts right after, so it is
//! 128-byte aligned):
//!
//! | offset | field | type | notes |
//! |---:|---|---|---|
//! | 0 | magic | u64 | [`MAGIC`] |
//! | 8 | version | u32 | [`VERSION`] |
//! | 12 | kind | u32 | [`ObjectKind`] |
//! | 16 | state | u32 | 0 while the creator initialises, [`STATE_READY`] once published |
//! | 20 | typecode | u32 | the typecode's ASCII byte, 0 for a record layout |
//! | 24 | elem_size | u32 | bytes per element |
//! | 28 | elem_align | u32 | alignment of an element |
//! | 32 | count | u64 | element count or capacity |
//! | 40 | param | u64 | one immutable, kind-specific parameter (e.g. a maximum message size) |
//! | 48 | body_offset | u64 | always [`HEADER_SIZE`] |
//! | 56 | body_len | u64 | bytes in the body |
//! | 64 | total_size | u64 | `body_offset + body_len`; the file is at least this long |
//! | 72 | creator_pid | u32 | |
//! | 76 | reserved | u32 | zero |
//! | 80 | creator_start | u64 | the creator's start time ([`ProcessId`]) |
//! | 88 | checksum | u64 | [`checksum`]: FNV-1a 64 of every field above except `state` and the reserved word, and of `format` |
//! | 96 | format | [u8; 64] | the element layout as a `struct` format string, NUL-padded |
//! | 160 | reserved | [u8; 96] | zero |
//!
//! Every field is an atomic, so a `&RawHeader` over memory that other processes may write is
//! sound; the immutable fields are read once, validated and copied into a [`Header`].

use crate::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};
use crate::typecode::ElementLayout;
use crate::ProcessId;
use std::fmt;

#[cfg(not(target_endian = "little"))]
compile_error!("shm-core's segment format is little-endian; big-endian targets are not supported");

/// Bytes of the header; the body starts at this offset.
pub const HEADER_SIZE: usize = 256;
/// The magic number: `b"SHMIPC\0\x01"` read as a little-endian u64.
pub const MAGIC: u64 = u64::from_le_bytes(*b"SHMIPC\0\x01");
/// The layout version this build writes and accepts.
pub const VERSION: u32 = 1;
/// The state word once the creator has published the segment.
pub const STATE_READY: u32 = 0x5245_4459; // "READY" in spirit; unlikely in foreign files
/// The state word while the creator initialises (a fresh file is all zeros).
pub const STATE_INIT: u32 = 0;

/// Byte offsets of the header fields (for tools and for tests that corrupt segments on purpose).
pub mod offsets {
    /// `magic: u64`
    pub const MAGIC: usize = 0;
    /// `version: u32`
    pub const VERSION: usize = 8;
    /// `kind: u32`
    pub const KIND: usize = 12;
    /// `state: u32`
    pub const STATE: usize = 16;
    /// `typecode: u32`
    pub const TYPECODE: usize = 20;
    /// `elem_size: u32`
    pub const ELEM_SIZE: usize = 24;
    /// `elem_align: u32`
    pub const ELEM_ALIGN: usize = 28;
    /// `count: u64`
    pub const COUNT: usize = 32;
    /// `param: u64`
    pub const PARAM: usize = 40;
    /// `body_offset: u64`
    pub const BODY_OFFSET: usize = 48;
    /// `body_len: u64`
    pub const BODY_LEN: usize = 56;
    /// `total_size: u64`
    pub const TOTAL_SIZE: usize = 64;
    /// `creator_pid: u32`
    pub const CREATOR_PID: usize = 72;
    /// `creator_start: u64`
    pub const CREATOR_START: usize = 80;
    /// `checksum: u64`
    pub const CHECKSUM: usize = 88;
    /// `format: [u8; 64]`
    pub const FORMAT: usize = 96;
}

/// The header as it lies in the segment. Only atomics: other processes may write it.
#[repr(C, align(128))]
pub(crate) struct RawHeader {
    pub(crate) magic: AtomicU64,
    pub(crate) version: AtomicU32,
    pub(crate) kind: AtomicU32,
    pub(crate) state: AtomicU32,
    pub(crate) typecode: AtomicU32,
    pub(crate) elem_size: AtomicU32,
    pub(crate) elem_align: AtomicU32,
    pub(crate) count: AtomicU64,
    pub(crate) param: AtomicU64,
    pub(crate) body_offset: AtomicU64,
    pub(crate) body_len: AtomicU64,
    pub(crate) total_size: AtomicU64,
    pub(crate) creator_pid: AtomicU32,
    pub(crate) reserved0: AtomicU32,
    pub(crate) creator_start: AtomicU64,
    pub(crate) checksum: AtomicU64,
    pub(crate) format: [AtomicU8; ElementLayout::FORMAT_CAPACITY],
    pub(crate) reserved1: [AtomicU8; 96],
}

#[cfg(not(loom))]
const _: () = {
    use std::mem::{align_of, offset_of, size_of};
    assert!(size_of::<RawHeader>() == HEADER_SIZE);
    assert!(align_of::<RawHeader>() == 128);
    assert!(offset_of!(RawHeader, magic) == offsets::MAGIC);
    assert!(offset_of!(RawHeader, version) == offsets::VERSION);
    assert!(offset_of!(RawHeader, kind) == offsets::KIND);
    assert!(offset_of!(RawHeader, state) == offsets::STATE);
    assert!(offset_of!(RawHeader, typecode) == offsets::TYPECODE);
    assert!(offset_of!(RawHeader, elem_size) == offsets::ELEM_SIZE);
    assert!(offset_of!(RawHeader, elem_align) == offsets::ELEM_ALIGN);
    assert!(offset_of!(RawHeader, count) == offsets::COUNT);
    assert!(offset_of!(RawHeader, param) == offsets::PARAM);
    assert!(offset_of!(RawHeader, body_offset) == offsets::BODY_OFFSET);
    assert!(offset_of!(RawHeader, body_len) == offsets::BODY_LEN);
    assert!(offset_of!(RawHeader, total_size) == offsets::TOTAL_SIZE);
    assert!(offset_of!(RawHeader, creator_pid) == offsets::CREATOR_PID);
    assert!(offset_of!(RawHeader, creator_start) == offsets::CREATOR_START);
    assert!(offset_of!(RawHeader, checksum) == offsets::CHECKSUM);
    assert!(offset_of!(RawHeader, format) == offsets::FORMAT);
    assert!(offsets::FORMAT + ElementLayout::FORMAT_CAPACITY == 160);
};

/// What kind of object a segment holds. Stored as a `u32`; an opener asks for one kind and gets
/// [`OpenError::WrongKind`](crate::OpenError::WrongKind) for any other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ObjectKind {
    /// An untyped byte segment.
    Bytes,
    /// `Value<T>` (with its lock).
    Value,
    /// `RawValue<T>`.
    RawValue,
    /// `Array<T>` (with its lock).
    Array,
    /// `RawArray<T>`.
    RawArray,
    /// `Lock`.
    Lock,
    /// `RLock`.
    RLock,
    /// `Semaphore`.
    Semaphore,
    /// `BoundedSemaphore`.
    BoundedSemaphore,
    /// `Event`.
    Event,
    /// `Condition`.
    Condition,
    /// `Barrier`.
    Barrier,
    /// SPSC ring of fixed-size elements.
    SpscQueue,
    /// MPMC ring of fixed-size elements.
    MpmcQueue,
    /// SPSC ring of byte messages.
    SpscBytes,
    /// MPMC ring of byte messages.
    MpmcBytes,
    /// A `JoinableQueue`.
    JoinableQueue,
    /// A `Pipe`.
    Pipe,
    /// A `SharedDict` (shm-manager).
    Dict,
    /// A `SharedList` (shm-manager).
    List,
    /// A `Namespace` (shm-manager).
    Namespace,
    /// A `Manager`'s registry of named objects (shm-manager).
    Manager,
}

impl ObjectKind {
    /// Every kind.
    pub const ALL: [ObjectKind; 22] = [
        ObjectKind::Bytes,
        ObjectKind::Value,
        ObjectKind::RawValue,
        ObjectKind::Array,
        ObjectKind::RawArray,
        ObjectKind::Lock,
        ObjectKind::RLock,
        ObjectKind::Semaphore,
        ObjectKind::BoundedSemaphore,
        ObjectKind::Event,
        ObjectKind::Condition,
        ObjectKind::Barrier,
        ObjectKind::SpscQueue,
        ObjectKind::MpmcQueue,
        ObjectKind::SpscBytes,
        ObjectKind::MpmcBytes,
        ObjectKind::JoinableQueue,
        ObjectKind::Pipe,
        ObjectKind::Dict,
        ObjectKind::List,
        ObjectKind::Namespace,
        ObjectKind::Manager,
    ];

    /// The stored number.
    pub const fn as_u32(self) -> u32 {
        match self {
            ObjectKind::Bytes => 1,
            ObjectKind::Value => 2,
            ObjectKind::RawValue => 3,
            ObjectKind::Array => 4,
            ObjectKind::RawArray => 5,
            ObjectKind::Lock => 6,
            ObjectKind::RLock => 7,
            ObjectKind::Semaphore => 8,
            ObjectKind::BoundedSemaphore => 9,
            ObjectKind::Event => 10,
            ObjectKind::Condition => 11,
            ObjectKind::Barrier => 12,
            ObjectKind::SpscQueue => 13,
            ObjectKind::MpmcQueue => 14,
            ObjectKind::SpscBytes => 15,
            ObjectKind::MpmcBytes => 16,
            ObjectKind::JoinableQueue => 17,
            ObjectKind::Pipe => 18,
            ObjectKind::Dict => 19,
            ObjectKind::List => 20,
            ObjectKind::Namespace => 21,
            ObjectKind::Manager => 22,
        }
    }

    /// The kind stored as `n`, if any.
    pub fn from_u32(n: u32) -> Option<ObjectKind> {
        ObjectKind::ALL.into_iter().find(|k| k.as_u32() == n)
    }
}

impl fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// The validated, immutable part of a segment header, copied out of the segment on open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub(crate) kind: ObjectKind,
    pub(crate) layout: ElementLayout,
    pub(crate) count: u64,
    pub(crate) param: u64,
    pub(crate) body_len: u64,
    pub(crate) creator: ProcessId,
}

impl Header {
    /// The object kind.
    pub fn kind(&self) -> ObjectKind {
        self.kind
    }
    /// The element layout (typecode or record format).
    pub fn layout(&self) -> ElementLayout {
        self.layout
    }
    /// Element count or capacity.
    pub fn count(&self) -> u64 {
        self.count
    }
    /// The kind-specific parameter.
    pub fn param(&self) -> u64 {
        self.param
    }
    /// Bytes in the body.
    pub fn body_len(&self) -> u64 {
        self.body_len
    }
    /// Total size of the segment (header and body).
    pub fn total_size(&self) -> u64 {
        HEADER_SIZE as u64 + self.body_len
    }
    /// Who created the segment.
    pub fn creator(&self) -> ProcessId {
        self.creator
    }
}

/// The byte ranges of a header that the checksum covers: every field from `magic` to
/// `creator_start` except `state` (16..20) and the reserved word (76..80), then `format`.
const CHECKSUMMED: [std::ops::Range<usize>; 4] = [
    offsets::MAGIC..offsets::STATE,
    offsets::TYPECODE..offsets::CREATOR_PID + 4,
    offsets::CREATOR_START..offsets::CHECKSUM,
    offsets::FORMAT..offsets::FORMAT + ElementLayout::FORMAT_CAPACITY,
];

/// The checksum of a header as bytes: FNV-1a 64 over its immutable fields (see the table in the
/// [module docs](self); `state`, the reserved words and `checksum` itself are not covered).
///
/// The one definition: creators store it, openers check it, and tools that forge or repair
/// headers (tests, fuzz targets) compute it with this function.
///
/// # Examples
///
/// ```
/// use shm_core::header::{checksum, offsets, HEADER_SIZE};
///
/// let mut header = [0u8; HEADER_SIZE];
/// let before = checksum(&header);
/// header[offsets::STATE] = 1; // the state word is not covered
/// assert_eq!(checksum(&header), before);
/// header[offsets::COUNT] = 1; // the count is
/// assert_ne!(checksum(&header), before);
/// ```
pub fn checksum(header: &[u8; HEADER_SIZE]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for range in CHECKSUMMED {
        for &b in &header[range] {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

/// Writes the matching [`checksum`] into `header`'s checksum field (for tools and tests that
/// rewrite header fields on purpose).
pub fn reseal(header: &mut [u8; HEADER_SIZE]) {
    let sum = checksum(header).to_le_bytes();
    header[offsets::CHECKSUM..offsets::CHECKSUM + 8].copy_from_slice(&sum);
}

/// The checksum of a set of fields.
pub(crate) fn fields_checksum(fields: &ImmutableFields) -> u64 {
    checksum(&fields.to_bytes(0, 0))
}

/// A plain copy of every immutable header field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ImmutableFields {
    pub(crate) magic: u64,
    pub(crate) version: u32,
    pub(crate) kind: u32,
    pub(crate) typecode: u32,
    pub(crate) elem_size: u32,
    pub(crate) elem_align: u32,
    pub(crate) count: u64,
    pub(crate) param: u64,
    pub(crate) body_offset: u64,
    pub(crate) body_len: u64,
    pub(crate) total_size: u64,
    pub(crate) creator_pid: u32,
    pub(crate) creator_start: u64,
    pub(crate) format: [u8; ElementLayout::FORMAT_CAPACITY],
}

impl ImmutableFields {
    /// The fields a creator writes.
    pub(crate) fn new(
        kind: ObjectKind,
        layout: &ElementLayout,
        count: u64,
        param: u64,
        body_len: u64,
        creator: ProcessId,
    ) -> ImmutableFields {
        ImmutableFields {
            magic: MAGIC,
            version: VERSION,
            kind: kind.as_u32(),
            typecode: layout.typecode().map_or(0, |t| t.as_char() as u32),
            elem_size: layout.size(),
            elem_align: layout.align(),
            count,
            param,
            body_offset: HEADER_SIZE as u64,
            body_len,
            total_size: HEADER_SIZE as u64 + body_len,
            creator_pid: creator.pid(),
            creator_start: creator.start_time(),
            format: layout.encode(),
        }
    }

    /// Reads the fields (Relaxed: the caller has already synchronised on `state`).
    pub(crate) fn read(raw: &RawHeader) -> ImmutableFields {
        let mut format = [0u8; ElementLayout::FORMAT_CAPACITY];
        for (dst, src) in format.iter_mut().zip(raw.format.iter()) {
            *dst = src.load(Ordering::Relaxed);
        }
        ImmutableFields {
            magic: raw.magic.load(Ordering::Relaxed),
            version: raw.version.load(Ordering::Relaxed),
            kind: raw.kind.load(Ordering::Relaxed),
            typecode: raw.typecode.load(Ordering::Relaxed),
            elem_size: raw.elem_size.load(Ordering::Relaxed),
            elem_align: raw.elem_align.load(Ordering::Relaxed),
            count: raw.count.load(Ordering::Relaxed),
            param: raw.param.load(Ordering::Relaxed),
            body_offset: raw.body_offset.load(Ordering::Relaxed),
            body_len: raw.body_len.load(Ordering::Relaxed),
            total_size: raw.total_size.load(Ordering::Relaxed),
            creator_pid: raw.creator_pid.load(Ordering::Relaxed),
            creator_start: raw.creator_start.load(Ordering::Relaxed),
            format,
        }
    }

    /// Parses the fields from a copy of the header bytes (as read with `pread`), returning them
    /// with the stored state word and checksum.
    pub(crate) fn from_bytes(b: &[u8; HEADER_SIZE]) -> (ImmutableFields, u32, u64) {
        let u32_at = |o: usize| u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
        let u64_at = |o: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&b[o..o + 8]);
            u64::from_le_bytes(w)
        };
        let mut format = [0u8; ElementLayout::FORMAT_CAPACITY];
        format
            .copy_from_slice(&b[offsets::FORMAT..offsets::FORMAT + ElementLayout::FORMAT_CAPACITY]);
        let fields = ImmutableFields {
            magic: u64_at(offsets::MAGIC),
            version: u32_at(offsets::VERSION),
            kind: u32_at(offsets::KIND),
            typecode: u32_at(offsets::TYPECODE),
            elem_size: u32_at(offsets::ELEM_SIZE),
            elem_align: u32_at(offsets::ELEM_ALIGN),
            count: u64_at(offsets::COUNT),
            param: u64_at(offsets::PARAM),
            body_offset: u64_at(offsets::BODY_OFFSET),
            body_len: u64_at(offsets::BODY_LEN),
            total_size: u64_at(offsets::TOTAL_SIZE),
            creator_pid: u32_at(offsets::CREATOR_PID),
            creator_start: u64_at(offsets::CREATOR_START),
            format,
        };
        (fields, u32_at(offsets::STATE), u64_at(offsets::CHECKSUM))
    }

    /// The header bytes these fields make, with `state` and `checksum` as given.
    pub(crate) fn to_bytes(self, state: u32, checksum: u64) -> [u8; HEADER_SIZE] {
        let mut b = [0u8; HEADER_SIZE];
        let mut put = |o: usize, bytes: &[u8]| b[o..o + bytes.len()].copy_from_slice(bytes);
        put(offsets::MAGIC, &self.magic.to_le_bytes());
        put(offsets::VERSION, &self.version.to_le_bytes());
        put(offsets::KIND, &self.kind.to_le_bytes());
        put(offsets::STATE, &state.to_le_bytes());
        put(offsets::TYPECODE, &self.typecode.to_le_bytes());
        put(offsets::ELEM_SIZE, &self.elem_size.to_le_bytes());
        put(offsets::ELEM_ALIGN, &self.elem_align.to_le_bytes());
        put(offsets::COUNT, &self.count.to_le_bytes());
        put(offsets::PARAM, &self.param.to_le_bytes());
        put(offsets::BODY_OFFSET, &self.body_offset.to_le_bytes());
        put(offsets::BODY_LEN, &self.body_len.to_le_bytes());
        put(offsets::TOTAL_SIZE, &self.total_size.to_le_bytes());
        put(offsets::CREATOR_PID, &self.creator_pid.to_le_bytes());
        put(offsets::CREATOR_START, &self.creator_start.to_le_bytes());
        put(offsets::CHECKSUM, &checksum.to_le_bytes());
        put(offsets::FORMAT, &self.format);
        b
    }

    /// Writes the fields and the checksum (Relaxed: published later by the state's Release).
    pub(crate) fn write(&self, raw: &RawHeader) {
        raw.magic.store(self.magic, Ordering::Relaxed);
        raw.version.store(self.version, Ordering::Relaxed);
        raw.kind.store(self.kind, Ordering::Relaxed);
        raw.typecode.store(self.typecode, Ordering::Relaxed);
        raw.elem_size.store(self.elem_size, Ordering::Relaxed);
        raw.elem_align.store(self.elem_align, Ordering::Relaxed);
        raw.count.store(self.count, Ordering::Relaxed);
        raw.param.store(self.param, Ordering::Relaxed);
        raw.body_offset.store(self.body_offset, Ordering::Relaxed);
        raw.body_len.store(self.body_len, Ordering::Relaxed);
        raw.total_size.store(self.total_size, Ordering::Relaxed);
        raw.creator_pid.store(self.creator_pid, Ordering::Relaxed);
        raw.creator_start
            .store(self.creator_start, Ordering::Relaxed);
        for (dst, &src) in raw.format.iter().zip(self.format.iter()) {
            dst.store(src, Ordering::Relaxed);
        }
        raw.checksum.store(fields_checksum(self), Ordering::Relaxed);
    }

    /// Validates the fields of a published header against what the opener expects.
    ///
    /// `file_len` is the size of the file as `fstat` reported it.
    pub(crate) fn validate(
        &self,
        stored_checksum: u64,
        file_len: u64,
        expect: &Expect,
    ) -> Result<Header, crate::OpenError> {
        use crate::OpenError as E;
        if self.magic != MAGIC {
            return Err(E::NotOurs {
                found_magic: self.magic,
            });
        }
        if self.version != VERSION {
            return Err(E::UnsupportedVersion {
                expected: VERSION,
                found: self.version,
            });
        }
        let computed = fields_checksum(self);
        if computed != stored_checksum {
            return Err(E::BadChecksum {
                computed,
                stored: stored_checksum,
            });
        }
        if self.body_offset != HEADER_SIZE as u64 {
            return Err(E::Corrupt {
                field: "body_offset",
                expected: HEADER_SIZE as u64,
                found: self.body_offset,
            });
        }
        let total = (HEADER_SIZE as u64).checked_add(self.body_len);
        if total != Some(self.total_size) {
            return Err(E::Corrupt {
                field: "total_size",
                expected: total.unwrap_or(u64::MAX),
                found: self.total_size,
            });
        }
        if file_len < self.total_size {
            return Err(E::Truncated {
                expected: self.total_size,
                found: file_len,
            });
        }
        let kind = ObjectKind::from_u32(self.kind).ok_or(E::UnknownKind { found: self.kind })?;
        if let Some(want) = expect.kind {
            if kind != want {
                return Err(E::WrongKind {
                    expected: want,
                    found: kind,
                });
            }
        }
        let layout = ElementLayout::decode(&self.format, self.elem_size, self.elem_align)
            .map_err(E::BadLayout)?;
        let stored_tc = layout.typecode().map_or(0, |t| t.as_char() as u32);
        if stored_tc != self.typecode {
            return Err(E::Corrupt {
                field: "typecode",
                expected: u64::from(stored_tc),
                found: u64::from(self.typecode),
            });
        }
        if let Some(want) = &expect.layout {
            if !want.is_compatible_with(&layout) {
                return Err(E::WrongLayout {
                    expected: Box::new(*want),
                    found: Box::new(layout),
                });
            }
        }
        if let Some(want) = expect.count {
            if want != self.count {
                return Err(E::WrongCount {
                    expected: want,
                    found: self.count,
                });
            }
        }
        Ok(Header {
            kind,
            layout,
            count: self.count,
            param: self.param,
            body_len: self.body_len,
            creator: ProcessId::from_parts(self.creator_pid, self.creator_start),
        })
    }
}

/// What an opener expects to find.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Expect {
    /// The kind asked for (`None`: any kind, for listings).
    pub(crate) kind: Option<ObjectKind>,
    pub(crate) layout: Option<ElementLayout>,
    pub(crate) count: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::typecode::TypeCode;
    use crate::OpenError;

    fn fields() -> ImmutableFields {
        ImmutableFields::new(
            ObjectKind::RawArray,
            &ElementLayout::of_typecode(TypeCode::Int),
            10,
            0,
            40,
            ProcessId::from_parts(1, 2),
        )
    }

    fn expect() -> Expect {
        Expect {
            kind: Some(ObjectKind::RawArray),
            layout: Some(ElementLayout::of_typecode(TypeCode::Int)),
            count: None,
        }
    }

    #[test]
    fn round_trip_through_raw_header() {
        let raw: RawHeader = bytemuck_zeroed_header();
        let f = fields();
        f.write(&raw);
        let back = ImmutableFields::read(&raw);
        assert_eq!(back, f);
        // SAFETY: RawHeader is HEADER_SIZE bytes of initialised atomics (no padding), so its
        // bytes may be viewed as a byte array while nobody writes it.
        let bytes: [u8; HEADER_SIZE] = unsafe { std::mem::transmute_copy(&raw) };
        let (parsed, state, sum) = ImmutableFields::from_bytes(&bytes);
        assert_eq!(parsed, f);
        assert_eq!(state, STATE_INIT);
        assert_eq!(sum, raw.checksum.load(Ordering::Relaxed));
        assert_eq!(checksum(&bytes), sum, "the byte checksum is the stored one");
        assert_eq!(f.to_bytes(STATE_INIT, sum), bytes);
        let mut resealed = bytes;
        resealed[offsets::COUNT] ^= 1;
        reseal(&mut resealed);
        assert_ne!(checksum(&resealed), sum);
        assert_eq!(
            ImmutableFields::from_bytes(&resealed).2,
            checksum(&resealed)
        );
        let h = back
            .validate(raw.checksum.load(Ordering::Relaxed), 296, &expect())
            .unwrap();
        assert_eq!(h.count(), 10);
        assert_eq!(h.total_size(), 296);
        assert_eq!(h.layout().typecode(), Some(TypeCode::Int));
    }

    fn bytemuck_zeroed_header() -> RawHeader {
        // SAFETY: RawHeader is only atomics and arrays of atomics, for which all-zero bytes are
        // a valid value.
        unsafe { std::mem::zeroed() }
    }

    #[test]
    fn every_field_is_checked() {
        let f = fields();
        let sum = fields_checksum(&f);
        let e = expect();
        assert!(matches!(
            ImmutableFields { magic: 7, ..f }.validate(sum, 296, &e),
            Err(OpenError::NotOurs { found_magic: 7 })
        ));
        assert!(matches!(
            ImmutableFields { version: 9, ..f }.validate(sum, 296, &e),
            Err(OpenError::UnsupportedVersion {
                expected: 1,
                found: 9
            })
        ));
        assert!(matches!(
            ImmutableFields { count: 11, ..f }.validate(sum, 296, &e),
            Err(OpenError::BadChecksum { .. })
        ));
        assert!(matches!(
            f.validate(sum, 200, &e),
            Err(OpenError::Truncated {
                expected: 296,
                found: 200
            })
        ));
        let wrong_kind = Expect {
            kind: Some(ObjectKind::Value),
            ..e
        };
        assert!(matches!(
            f.validate(sum, 296, &wrong_kind),
            Err(OpenError::WrongKind { .. })
        ));
        let wrong_tc = Expect {
            layout: Some(ElementLayout::of_typecode(TypeCode::Double)),
            ..e
        };
        let err = f.validate(sum, 296, &wrong_tc).unwrap_err();
        assert!(matches!(err, OpenError::WrongLayout { .. }));
        let msg = err.to_string();
        assert!(msg.contains('d') && msg.contains('i'), "{msg}");
        let wrong_count = Expect {
            count: Some(3),
            ..e
        };
        assert!(matches!(
            f.validate(sum, 296, &wrong_count),
            Err(OpenError::WrongCount {
                expected: 3,
                found: 10
            })
        ));
        // Inconsistent sizes with a matching checksum (a buggy or hostile writer).
        let bad = ImmutableFields { total_size: 1, ..f };
        assert!(matches!(
            bad.validate(fields_checksum(&bad), 296, &e),
            Err(OpenError::Corrupt {
                field: "total_size",
                ..
            })
        ));
        let bad = ImmutableFields {
            body_len: u64::MAX,
            ..f
        };
        assert!(matches!(
            bad.validate(fields_checksum(&bad), 296, &e),
            Err(OpenError::Corrupt { .. })
        ));
        let bad = ImmutableFields { kind: 999, ..f };
        assert!(matches!(
            bad.validate(fields_checksum(&bad), 296, &e),
            Err(OpenError::UnknownKind { found: 999 })
        ));
        let mut bad = f;
        bad.format[0] = 0xff;
        assert!(matches!(
            bad.validate(fields_checksum(&bad), 296, &e),
            Err(OpenError::BadLayout(_))
        ));
    }

    #[test]
    fn aliases_open_each_other() {
        let f = ImmutableFields::new(
            ObjectKind::RawValue,
            &ElementLayout::of_typecode(TypeCode::Long),
            1,
            0,
            8,
            ProcessId::from_parts(1, 2),
        );
        let e = Expect {
            kind: Some(ObjectKind::RawValue),
            layout: Some(ElementLayout::of_typecode(TypeCode::LongLong)),
            count: None,
        };
        assert!(f.validate(fields_checksum(&f), 264, &e).is_ok());
    }

    #[test]
    fn kinds_round_trip() {
        for k in ObjectKind::ALL {
            assert_eq!(ObjectKind::from_u32(k.as_u32()), Some(k));
        }
        assert_eq!(ObjectKind::from_u32(0), None);
    }

    /// Garbage headers never panic (miri runs this too).
    #[test]
    fn garbage_never_panics() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let n = if cfg!(miri) { 50 } else { 5000 };
        for _ in 0..n {
            let mut format = [0u8; 64];
            for b in format.iter_mut() {
                *b = next() as u8;
            }
            let f = ImmutableFields {
                magic: if next() % 2 == 0 { MAGIC } else { next() },
                version: (next() % 3) as u32,
                kind: (next() % 20) as u32,
                typecode: next() as u32,
                elem_size: next() as u32,
                elem_align: next() as u32,
                count: next(),
                param: next(),
                body_offset: next() % 512,
                body_len: next(),
                total_size: next(),
                creator_pid: next() as u32,
                creator_start: next(),
                format,
            };
            let _ = f.validate(fields_checksum(&f), next(), &expect());
        }
    }
}
