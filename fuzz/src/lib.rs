//! The logic of the `open_segment` fuzz target, shared with the root package's corpus replay
//! test (`tests/fuzz_corpus.rs` includes this file with `#[path]`), so it depends on `shm_core`
//! and `std` only.
//!
//! [`open_segment`] writes arbitrary bytes as the file of a segment in `/dev/shm` and opens it
//! as every object kind, and as the stored kind with several layouts and counts. Every open
//! must give an `Err` or a `Segment` whose header and body agree with the bytes written; a
//! crash, hang or UB is a bug in `shm-core`.

use shm_core::header::{offsets, HEADER_SIZE, MAGIC, STATE_READY, VERSION};
use shm_core::{ElementLayout, ObjectKind, OpenError, Segment, SegmentName, TypeCode};
use std::path::PathBuf;
use std::time::Duration;

/// What one call of [`open_segment`] saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Opens that gave a `Segment`.
    pub opened: u32,
    /// Opens that gave an `Err`.
    pub failed: u32,
}

/// The file behind `name` in the shm namespace.
pub fn shm_path(name: &SegmentName) -> PathBuf {
    PathBuf::from("/dev/shm").join(name.as_str())
}

/// Removes the file behind `name`, if any.
pub fn remove(name: &SegmentName) {
    let _ = std::fs::remove_file(shm_path(name));
}

fn u32_at(data: &[u8], offset: usize) -> Option<u32> {
    let bytes = data.get(offset..offset + 4)?;
    Some(u32::from_le_bytes(bytes.try_into().ok()?))
}

fn u64_at(data: &[u8], offset: usize) -> Option<u64> {
    let bytes = data.get(offset..offset + 8)?;
    Some(u64::from_le_bytes(bytes.try_into().ok()?))
}

/// The header checksum: shm-core's one definition ([`shm_core::header::checksum`]).
pub fn header_checksum(header: &[u8; HEADER_SIZE]) -> u64 {
    shm_core::header::checksum(header)
}

/// `data` with a matching checksum written into its header (if it has a whole header), so that
/// mutated inputs get past the checksum to the checks behind it.
pub fn resealed(data: &[u8]) -> Option<Vec<u8>> {
    let header: &[u8; HEADER_SIZE] = data.get(..HEADER_SIZE)?.try_into().ok()?;
    let sum = header_checksum(header).to_le_bytes();
    let mut out = data.to_vec();
    out[offsets::CHECKSUM..offsets::CHECKSUM + 8].copy_from_slice(&sum);
    Some(out)
}

/// [`open_segment_once`] on `data` as it is, then on `data` [`resealed`] (if it changes).
///
/// # Panics
///
/// As [`open_segment_once`].
pub fn open_segment(name: &SegmentName, data: &[u8]) -> Summary {
    let mut summary = open_segment_once(name, data);
    if let Some(sealed) = resealed(data).filter(|s| s.as_slice() != data) {
        let more = open_segment_once(name, &sealed);
        summary.opened += more.opened;
        summary.failed += more.failed;
    }
    summary
}

/// Writes `data` as the segment file `name` (replacing what was there), then opens it in many
/// ways and checks every result against `data`.
///
/// # Panics
///
/// On any result that contradicts the bytes written: that is a bug in `shm-core`, which is
/// what the fuzzer looks for.
pub fn open_segment_once(name: &SegmentName, data: &[u8]) -> Summary {
    if let Err(e) = std::fs::write(shm_path(name), data) {
        // Not a finding: the environment (a full /dev/shm, say) is at fault.
        eprintln!(
            "open_segment: cannot write {}: {e}",
            shm_path(name).display()
        );
        return Summary::default();
    }
    let mut summary = Summary::default();
    // Once with a (short) wait, so the wait loop runs; then one attempt each.
    let first = Segment::builder(name, ObjectKind::RawArray)
        .open_timeout(Duration::from_millis(1))
        .open();
    check(data, ObjectKind::RawArray, None, None, first, &mut summary);
    for kind in ObjectKind::ALL {
        let r = Segment::builder(name, kind)
            .open_timeout(Duration::ZERO)
            .open();
        check(data, kind, None, None, r, &mut summary);
    }
    // The stored kind, with layouts and counts: these get past the kind check.
    let kind = u32_at(data, offsets::KIND)
        .and_then(ObjectKind::from_u32)
        .unwrap_or(ObjectKind::RawArray);
    let stored_count = u64_at(data, offsets::COUNT).unwrap_or(0);
    let layouts = [
        ElementLayout::of_typecode(TypeCode::Int),
        ElementLayout::of_typecode(TypeCode::Double),
        ElementLayout::of_typecode(TypeCode::Char),
        ElementLayout::of_typecode(TypeCode::LongLong),
        ElementLayout::parse("ci").unwrap_or(ElementLayout::of_typecode(TypeCode::UByte)),
    ];
    for layout in layouts {
        for count in [None, Some(stored_count), Some(stored_count ^ 1)] {
            let mut b = Segment::builder(name, kind)
                .layout(layout)
                .open_timeout(Duration::ZERO);
            if let Some(c) = count {
                b = b.count(c);
            }
            check(data, kind, Some(layout), count, b.open(), &mut summary);
        }
    }
    summary
}

/// Checks one open's result against the bytes written.
fn check(
    data: &[u8],
    kind: ObjectKind,
    layout: Option<ElementLayout>,
    count: Option<u64>,
    result: Result<Segment, OpenError>,
    summary: &mut Summary,
) {
    match result {
        Ok(seg) => {
            summary.opened += 1;
            check_segment(data, kind, layout, count, &seg);
        }
        Err(e) => {
            summary.failed += 1;
            check_error(data, &e);
        }
    }
}

fn check_segment(
    data: &[u8],
    kind: ObjectKind,
    layout: Option<ElementLayout>,
    count: Option<u64>,
    seg: &Segment,
) {
    let h = seg.header();
    assert!(!seg.is_creator() && !seg.unlinks_on_drop(), "an opener");
    assert_eq!(h.kind(), kind, "opened as another kind");
    assert_eq!(u32_at(data, offsets::KIND), Some(kind.as_u32()));
    assert_eq!(
        u64_at(data, offsets::MAGIC),
        Some(MAGIC),
        "opened without our magic"
    );
    assert_eq!(u32_at(data, offsets::VERSION), Some(VERSION));
    assert_eq!(
        u32_at(data, offsets::STATE),
        Some(STATE_READY),
        "opened unpublished"
    );
    assert_eq!(u64_at(data, offsets::COUNT), Some(h.count()));
    assert_eq!(u64_at(data, offsets::PARAM), Some(h.param()));
    assert_eq!(u64_at(data, offsets::BODY_LEN), Some(h.body_len()));
    assert_eq!(h.body_len(), seg.body_len() as u64);
    assert_eq!(h.total_size(), HEADER_SIZE as u64 + h.body_len());
    assert!(
        h.total_size() <= data.len() as u64,
        "the body reaches past the end of the file: {h:?}, file {} bytes",
        data.len()
    );
    if let Some(want) = layout {
        assert!(want.is_compatible_with(&h.layout()), "layout not checked");
    }
    if let Some(want) = count {
        assert_eq!(want, h.count(), "count not checked");
    }
    assert!(seg.is_ready());
    let _ = format!("{seg:?}");
    // Every body byte is mapped (no SIGBUS) and is what was written.
    let body = seg.body().as_ptr();
    for i in 0..seg.body_len() {
        // SAFETY: the body is `body_len` bytes inside the mapping (the file is at least
        // `total_size` bytes, checked above); a volatile byte read is sound whatever other
        // processes do to the memory.
        let b = unsafe { body.add(i).read_volatile() };
        assert_eq!(b, data[HEADER_SIZE + i], "body byte {i}");
    }
}

fn check_error(data: &[u8], e: &OpenError) {
    let msg = e.to_string();
    assert!(!msg.is_empty(), "empty message for {e:?}");
    let _ = format!("{e:?}");
    let mut source = std::error::Error::source(e);
    let mut depth = 0;
    while let Some(s) = source {
        let _ = s.to_string();
        source = s.source();
        depth += 1;
        assert!(depth < 16, "error source chain too deep");
    }
    // The cases decided by the file length alone.
    match data.len() {
        0 => assert!(matches!(e, OpenError::Initialising { .. }), "{e:?}"),
        n if n < HEADER_SIZE => assert!(
            matches!(e, OpenError::Truncated { expected, found }
                if *expected == HEADER_SIZE as u64 && *found == n as u64),
            "{e:?}"
        ),
        _ => assert!(
            !matches!(
                e,
                OpenError::NotFound { .. } | OpenError::BadName(_) | OpenError::Create(_)
            ),
            "{e:?}"
        ),
    }
}
