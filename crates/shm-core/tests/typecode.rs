//! `record!` and element layouts used from outside the crate, as a user would.
//!
//! The sizes asserted here are those of 64-bit Unix (LP64, a 4-byte `wchar_t`).
#![cfg(all(target_pointer_width = "64", not(windows)))]

use shm_core::bytemuck::{self, Zeroable};
use shm_core::typecode::Pad;
use shm_core::{CBool, CChar, Element, ElementLayout, TypeCode, WChar};

shm_core::record! {
    /// A point with a weight.
    #[derive(Debug, Clone, Copy, PartialEq, Default)]
    pub struct Point {
        /// Horizontal.
        pub x: i32,
        /// Vertical.
        pub y: i32,
        /// Weight.
        pub w: f64,
    }

    /// Two points, nested records.
    #[derive(Debug, Clone, Copy, PartialEq, Default)]
    pub struct Segment {
        /// Start.
        pub a: Point,
        /// End.
        pub b: Point,
    }

    /// Two points, as an array field.
    #[derive(Debug, Clone, Copy, PartialEq, Default)]
    pub struct Line {
        /// Start and end.
        pub points: [Point; 2],
    }
}

shm_core::record! {
    /// A message header with explicit padding and array fields.
    #[derive(Debug, Clone, Copy, PartialEq, Default)]
    pub struct Header {
        /// Magic bytes.
        pub tag: [u8; 4],
        /// Message kind.
        pub kind: u16,
        _pad: Pad<2>,
        /// Payload length.
        pub len: u32,
        _pad2: Pad<4>,
        /// A value.
        pub value: f64,
        /// NUL-padded name.
        pub name: [CChar; 8],
        /// Flags.
        pub flags: [CBool; 8],
    }
}

shm_core::record! {
    /// Private fields and a trailing comma; typecodes without a plain primitive.
    #[derive(Debug, Clone, Copy)]
    struct Mixed { count: i64, letter: WChar, ok: CBool, _pad: Pad<3>, }
}

fn parse(format: &str) -> ElementLayout {
    ElementLayout::parse(format).unwrap_or_else(|e| panic!("parse {format:?}: {e}"))
}

/// What a segment does on open: decode the stored layout and compare it with the opener's.
fn opens_as<T: Element>(stored: &ElementLayout) -> bool {
    let decoded = ElementLayout::decode(&stored.encode(), stored.size(), stored.align())
        .expect("a valid layout decodes");
    decoded.is_compatible_with(&T::LAYOUT)
}

#[test]
fn point_layout() {
    assert_eq!(Point::LAYOUT.format(), "iid");
    assert_eq!(Point::LAYOUT.size() as usize, size_of::<Point>());
    assert_eq!(Point::LAYOUT.align() as usize, align_of::<Point>());
    assert_eq!((Point::LAYOUT.size(), Point::LAYOUT.align()), (16, 8));
    assert_eq!(Point::LAYOUT.typecode(), None);
    assert!(!Point::LAYOUT.is_integer());
    assert_eq!(Point::LAYOUT.to_string(), "\"iid\" (16 bytes, align 8)");
    // The format is usable in const context.
    const FORMAT: &str = Point::LAYOUT.format();
    assert_eq!(FORMAT, "iid");
}

#[test]
fn point_compatibility() {
    assert!(Point::LAYOUT.is_compatible_with(&parse("iid")));
    assert!(Point::LAYOUT.is_compatible_with(&parse("2id")));
    assert!(Point::LAYOUT.is_compatible_with(&parse("@ i i d")));
    assert!(!Point::LAYOUT.is_compatible_with(&parse("i4xd")));
    assert!(!Point::LAYOUT.is_compatible_with(&parse("iiq")));
    assert!(!Point::LAYOUT.is_compatible_with(&parse("2Id")));
    assert!(opens_as::<Point>(&parse("2id")));
    assert!(!opens_as::<Point>(&parse("4i")));
}

#[test]
fn nested_and_array_records() {
    assert_eq!(Segment::LAYOUT.format(), "iidiid");
    assert_eq!(Line::LAYOUT.format(), "iidiid");
    assert_eq!(<[Point; 2]>::LAYOUT.format(), "iidiid");
    assert_eq!(Segment::LAYOUT.size(), 32);
    assert_eq!(Line::LAYOUT.size(), 32);
    assert_eq!(Segment::LAYOUT, Line::LAYOUT);
    assert!(Segment::LAYOUT.is_compatible_with(&Line::LAYOUT));
    assert!(opens_as::<Line>(&Segment::LAYOUT));

    let s = Segment {
        a: Point { x: 1, y: 2, w: 3.0 },
        b: Point { x: 4, y: 5, w: 6.0 },
    };
    let line: Line = bytemuck::cast(s);
    assert_eq!(line.points, [s.a, s.b]);
}

#[test]
fn padded_record_with_arrays() {
    assert_eq!(Header::LAYOUT.format(), "4BH2xI4xd8c8?");
    assert_eq!(Header::LAYOUT.size() as usize, size_of::<Header>());
    assert_eq!((Header::LAYOUT.size(), Header::LAYOUT.align()), (40, 8));
    // Explicit pad bytes and native alignment padding describe the same memory.
    assert!(Header::LAYOUT.is_compatible_with(&parse("4BHIdc7c8?")));
    assert!(Header::LAYOUT.is_compatible_with(&parse("4BHId8s8?")));
    assert!(!Header::LAYOUT.is_compatible_with(&parse("4BHId8B8?")));

    let h = Header {
        tag: *b"SHM1",
        kind: 7,
        len: 3,
        value: 2.5,
        name: b"header\0\0".map(CChar),
        flags: [CBool::TRUE; 8],
        ..Header::zeroed()
    };
    let bytes = bytemuck::bytes_of(&h);
    assert_eq!(bytes.len(), 40);
    assert_eq!(&bytes[..4], b"SHM1");
    assert_eq!(&bytes[4..6], &7u16.to_ne_bytes());
    assert_eq!(&bytes[6..8], &[0, 0]);
    assert_eq!(&bytes[8..12], &3u32.to_ne_bytes());
    assert_eq!(&bytes[16..24], &2.5f64.to_ne_bytes());
    assert_eq!(&bytes[24..30], b"header");
    assert_eq!(&bytes[32..40], &[1; 8]);
    assert_eq!(bytemuck::pod_read_unaligned::<Header>(bytes), h);
}

#[test]
fn mixed_record() {
    assert_eq!(Mixed::LAYOUT.format(), "qu?3x");
    assert_eq!(Mixed::LAYOUT.size() as usize, size_of::<Mixed>());
    #[cfg(all(target_pointer_width = "64", not(windows)))]
    assert!(Mixed::LAYOUT.is_compatible_with(&parse("lu?")));
    let m = Mixed {
        count: -1,
        letter: WChar::from('λ'),
        ok: CBool(9),
        _pad: Pad::new(),
    };
    let back: Mixed = bytemuck::cast(bytemuck::cast::<Mixed, [u8; 16]>(m));
    assert_eq!(back.count, -1);
    assert_eq!(back.letter.to_char(), Some('λ'));
    assert!(back.ok.get());
}

#[test]
fn slices_of_records_cast_both_ways() {
    let points: Vec<Point> = (0..4)
        .map(|i| Point {
            x: i,
            y: -i,
            w: f64::from(i) / 2.0,
        })
        .collect();
    let bytes: &[u8] = bytemuck::cast_slice(&points);
    assert_eq!(bytes.len(), 4 * Point::LAYOUT.size() as usize);
    let mut copy = vec![Point::default(); 4];
    bytemuck::cast_slice_mut::<Point, u8>(&mut copy).copy_from_slice(bytes);
    assert_eq!(copy, points);
}

#[test]
fn record_layouts_round_trip_through_a_header() {
    for layout in [
        Point::LAYOUT,
        Segment::LAYOUT,
        Header::LAYOUT,
        Mixed::LAYOUT,
        <[u16; 3]>::LAYOUT,
        ElementLayout::of_typecode(TypeCode::Double),
    ] {
        let bytes = layout.encode();
        let back = ElementLayout::decode(&bytes, layout.size(), layout.align()).unwrap();
        assert_eq!(back, layout);
        assert!(ElementLayout::decode(&bytes, layout.size() + 1, layout.align()).is_err());
    }
}

#[test]
fn generic_code_sees_typecodes() {
    fn typecode_of<T: Element>() -> Option<char> {
        T::LAYOUT.typecode().map(TypeCode::as_char)
    }
    assert_eq!(typecode_of::<i8>(), Some('b'));
    assert_eq!(typecode_of::<u64>(), Some('Q'));
    assert_eq!(typecode_of::<CChar>(), Some('c'));
    assert_eq!(typecode_of::<CBool>(), Some('?'));
    assert_eq!(typecode_of::<Point>(), None);
    assert_eq!(typecode_of::<[f32; 2]>(), None);
}
