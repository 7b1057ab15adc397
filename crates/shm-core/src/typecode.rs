//! Typecodes, element types and record layouts.
//!
//! Python's `multiprocessing.sharedctypes` names element types with one-character
//! *typecodes* (`'i'`, `'d'`, `'c'`, …). This module gives them a closed Rust form and
//! describes every element that may live in a segment by an [`ElementLayout`]: a
//! Python `struct`-module format string plus size and alignment. The layout is written into
//! each segment header, so a process that opens a segment can check that it agrees with the
//! creator about what the bytes mean, and a Python program can read the segment with
//! `struct.unpack_from(format, buf, offset)`.
//!
//! - [`TypeCode`]: the fifteen typecodes `c b B h H i I l L q Q f d u ?`, with their C sizes
//!   and alignments and the platform alias rule (`l`≡`q`, `L`≡`Q` where `long` is 8 bytes).
//! - [`CChar`], [`WChar`], [`CBool`]: the element types for `'c'`, `'u'` and `'?'`, which
//!   have no exact Rust primitive (every bit pattern of them is valid, unlike `char`/`bool`).
//! - [`Element`]: the `unsafe` trait that ties a Rust type to its layout, implemented for the
//!   primitives, the newtypes, arrays `[T; N]` of elements and [`Pad<N>`].
//! - [`ElementLayout`] and [`LayoutError`]: parsing, encoding, validating and comparing
//!   layouts.
//! - [`record!`](crate::record): declares a `#[repr(C)]` struct (the ctypes `Structure`
//!   analogue) whose layout is generated and checked at compile time.
//!
//! # Format strings
//!
//! Layout formats follow Python's `struct` module in native mode (`struct.calcsize('@…')`)
//! restricted to the typecodes above plus `x` (a pad byte) and `s` (`char[N]`):
//!
//! - an optional leading `@`; the byte-order prefixes `<`, `>`, `!` and `=` are rejected,
//!   since a segment is only ever shared between processes of one machine;
//! - items, each an optional decimal repeat count followed by a code: `"3i"` is three `int`s,
//!   `"4x"` four pad bytes, `"10s"` one `char[10]` (for `s` the count is the length);
//! - whitespace between items (not between a count and its code), as `struct` allows;
//! - each item is aligned to the native alignment of its code, counts of zero included
//!   (so `"c0i"` is 4 bytes, as in `struct`).
//!
//! One code is an extension: `struct` has no `u` (it comes from the `array` module), so a
//! Python program reads `'u'` elements with `array('u')` or ctypes `c_wchar` rather than
//! `struct.unpack`. Every other format is valid for `struct` as is.
//!
//! `struct` adds no padding after the last item, but a C struct's size is a multiple of its
//! alignment. The **size of a layout** is therefore the `struct` size rounded up to the
//! largest alignment among its items, which is the stride between consecutive elements of an
//! array: `"ic"` has size 8, while `struct.calcsize("ic")` is 5
//! (see [`ElementLayout::calcsize`]).
//!
//! # Example
//!
//! ```
//! use shm_core::{Element, ElementLayout, TypeCode};
//!
//! let tc: TypeCode = "d".parse().unwrap();
//! assert_eq!(tc, TypeCode::Double);
//! assert_eq!(<f64 as Element>::LAYOUT, ElementLayout::of_typecode(tc));
//!
//! // Explicit padding and native padding describe the same memory.
//! let a = ElementLayout::parse("i4xd").unwrap();
//! let b = ElementLayout::parse("id").unwrap();
//! assert_eq!((a.size(), a.align()), (16, 8));
//! assert!(a.is_compatible_with(&b));
//! ```

use core::ffi::{
    c_char, c_double, c_float, c_int, c_long, c_longlong, c_schar, c_short, c_uchar, c_uint,
    c_ulong, c_ulonglong, c_ushort,
};
use core::fmt;
use core::hash::{Hash, Hasher};
use core::mem::{align_of, size_of};
use core::str::FromStr;

use bytemuck::{Pod, Zeroable};

/// The C `wchar_t` of the target: 4 bytes everywhere except Windows, where it is 2.
#[cfg(not(windows))]
type WcharT = u32;
/// The C `wchar_t` of the target: 4 bytes everywhere except Windows, where it is 2.
#[cfg(windows)]
type WcharT = u16;

/// Whether C `long` has the size (and so the layout) of `long long` on this target.
///
/// True on LP64 targets (Linux and macOS on 64-bit CPUs); false on Windows and 32-bit targets.
const LONG_IS_LONGLONG: bool = size_of::<c_long>() == size_of::<c_longlong>()
    && align_of::<c_long>() == align_of::<c_longlong>();

/// The codes accepted by [`TypeCode::from_char`], for error messages.
const TYPECODE_LIST: &str = "c b B h H i I l L q Q f d u ?";

// ---------------------------------------------------------------------------------------------
// TypeCode
// ---------------------------------------------------------------------------------------------

/// A Python `array`/`multiprocessing` typecode: one C scalar type.
///
/// The enum is closed: an unknown code is a [`TypeCodeError`] when parsed, never a value.
/// Each variant's discriminant is its ASCII code, so `TypeCode::Int as u8 == b'i'`.
///
/// | variant | code | C type | size/align on Linux x86-64 | Rust element |
/// |---|---|---|---|---|
/// | [`Char`](Self::Char) | `c` | `char` | 1/1 | [`CChar`] |
/// | [`Byte`](Self::Byte) | `b` | `signed char` | 1/1 | `i8` |
/// | [`UByte`](Self::UByte) | `B` | `unsigned char` | 1/1 | `u8` |
/// | [`Short`](Self::Short) | `h` | `short` | 2/2 | `i16` |
/// | [`UShort`](Self::UShort) | `H` | `unsigned short` | 2/2 | `u16` |
/// | [`Int`](Self::Int) | `i` | `int` | 4/4 | `i32` |
/// | [`UInt`](Self::UInt) | `I` | `unsigned int` | 4/4 | `u32` |
/// | [`Long`](Self::Long) | `l` | `long` | 8/8 (4/4 on Windows) | via `q` |
/// | [`ULong`](Self::ULong) | `L` | `unsigned long` | 8/8 (4/4 on Windows) | via `Q` |
/// | [`LongLong`](Self::LongLong) | `q` | `long long` | 8/8 | `i64` |
/// | [`ULongLong`](Self::ULongLong) | `Q` | `unsigned long long` | 8/8 | `u64` |
/// | [`Float`](Self::Float) | `f` | `float` | 4/4 | `f32` |
/// | [`Double`](Self::Double) | `d` | `double` | 8/8 | `f64` |
/// | [`WChar`](Self::WChar) | `u` | `wchar_t` | 4/4 (2/2 on Windows) | [`WChar`] |
/// | [`Bool`](Self::Bool) | `?` | `_Bool` | 1/1 | [`CBool`] |
///
/// Sizes and alignments are those of the target's C types ([`core::ffi`]), which is what
/// Python's `struct` module uses in native mode.
///
/// # Examples
///
/// ```
/// use shm_core::TypeCode;
///
/// let tc = TypeCode::from_char('H').unwrap();
/// assert_eq!(tc, TypeCode::UShort);
/// assert_eq!((tc.size(), tc.align()), (2, 2));
/// assert_eq!(tc.to_string(), "H");
/// assert!(TypeCode::from_char('z').is_err());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[repr(u8)]
pub enum TypeCode {
    /// `'c'`: C `char`, one byte of text ([`CChar`]).
    Char = b'c',
    /// `'b'`: C `signed char` (`i8`).
    Byte = b'b',
    /// `'B'`: C `unsigned char` (`u8`).
    UByte = b'B',
    /// `'h'`: C `short` (`i16`).
    Short = b'h',
    /// `'H'`: C `unsigned short` (`u16`).
    UShort = b'H',
    /// `'i'`: C `int` (`i32`).
    Int = b'i',
    /// `'I'`: C `unsigned int` (`u32`).
    UInt = b'I',
    /// `'l'`: C `long`; the same layout as `'q'` where `long` is 8 bytes.
    Long = b'l',
    /// `'L'`: C `unsigned long`; the same layout as `'Q'` where `long` is 8 bytes.
    ULong = b'L',
    /// `'q'`: C `long long` (`i64`).
    LongLong = b'q',
    /// `'Q'`: C `unsigned long long` (`u64`).
    ULongLong = b'Q',
    /// `'f'`: C `float` (`f32`).
    Float = b'f',
    /// `'d'`: C `double` (`f64`).
    Double = b'd',
    /// `'u'`: C `wchar_t`, one UTF-32 code unit on Linux ([`WChar`]).
    WChar = b'u',
    /// `'?'`: C `_Bool` ([`CBool`]).
    Bool = b'?',
}

impl TypeCode {
    /// Every typecode, in the order `c b B h H i I l L q Q f d u ?`.
    ///
    /// # Examples
    ///
    /// ```
    /// use shm_core::TypeCode;
    ///
    /// let codes: String = TypeCode::ALL.iter().map(|tc| tc.as_char()).collect();
    /// assert_eq!(codes, "cbBhHiIlLqQfdu?");
    /// ```
    pub const ALL: [TypeCode; 15] = [
        TypeCode::Char,
        TypeCode::Byte,
        TypeCode::UByte,
        TypeCode::Short,
        TypeCode::UShort,
        TypeCode::Int,
        TypeCode::UInt,
        TypeCode::Long,
        TypeCode::ULong,
        TypeCode::LongLong,
        TypeCode::ULongLong,
        TypeCode::Float,
        TypeCode::Double,
        TypeCode::WChar,
        TypeCode::Bool,
    ];

    /// The typecode character, as Python writes it.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(shm_core::TypeCode::Bool.as_char(), '?');
    /// ```
    pub const fn as_char(self) -> char {
        self as u8 as char
    }

    /// The typecode character as an ASCII byte (the enum's discriminant).
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(shm_core::TypeCode::Int.as_byte(), b'i');
    /// ```
    pub const fn as_byte(self) -> u8 {
        self as u8
    }

    /// The typecode named by an ASCII byte, or `None` if the byte is not one of
    /// `c b B h H i I l L q Q f d u ?`.
    ///
    /// # Examples
    ///
    /// ```
    /// use shm_core::TypeCode;
    ///
    /// assert_eq!(TypeCode::from_byte(b'q'), Some(TypeCode::LongLong));
    /// assert_eq!(TypeCode::from_byte(b'x'), None);
    /// ```
    pub const fn from_byte(b: u8) -> Option<Self> {
        Some(match b {
            b'c' => TypeCode::Char,
            b'b' => TypeCode::Byte,
            b'B' => TypeCode::UByte,
            b'h' => TypeCode::Short,
            b'H' => TypeCode::UShort,
            b'i' => TypeCode::Int,
            b'I' => TypeCode::UInt,
            b'l' => TypeCode::Long,
            b'L' => TypeCode::ULong,
            b'q' => TypeCode::LongLong,
            b'Q' => TypeCode::ULongLong,
            b'f' => TypeCode::Float,
            b'd' => TypeCode::Double,
            b'u' => TypeCode::WChar,
            b'?' => TypeCode::Bool,
            _ => return None,
        })
    }

    /// The typecode named by `c`.
    ///
    /// # Errors
    ///
    /// [`TypeCodeError::Unknown`] naming `c` if it is not one of
    /// `c b B h H i I l L q Q f d u ?`.
    ///
    /// # Examples
    ///
    /// ```
    /// use shm_core::{TypeCode, TypeCodeError};
    ///
    /// assert_eq!(TypeCode::from_char('d'), Ok(TypeCode::Double));
    /// let err = TypeCode::from_char('z').unwrap_err();
    /// assert_eq!(err, TypeCodeError::Unknown('z'));
    /// assert!(err.to_string().contains("'z'"));
    /// ```
    pub const fn from_char(c: char) -> Result<Self, TypeCodeError> {
        if c.is_ascii() {
            if let Some(tc) = TypeCode::from_byte(c as u8) {
                return Ok(tc);
            }
        }
        Err(TypeCodeError::Unknown(c))
    }

    /// Size in bytes of the C type on this target.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(shm_core::TypeCode::Double.size(), 8);
    /// ```
    pub const fn size(self) -> u32 {
        (match self {
            TypeCode::Char => size_of::<c_char>(),
            TypeCode::Byte => size_of::<c_schar>(),
            TypeCode::UByte => size_of::<c_uchar>(),
            TypeCode::Short => size_of::<c_short>(),
            TypeCode::UShort => size_of::<c_ushort>(),
            TypeCode::Int => size_of::<c_int>(),
            TypeCode::UInt => size_of::<c_uint>(),
            TypeCode::Long => size_of::<c_long>(),
            TypeCode::ULong => size_of::<c_ulong>(),
            TypeCode::LongLong => size_of::<c_longlong>(),
            TypeCode::ULongLong => size_of::<c_ulonglong>(),
            TypeCode::Float => size_of::<c_float>(),
            TypeCode::Double => size_of::<c_double>(),
            TypeCode::WChar => size_of::<WcharT>(),
            TypeCode::Bool => size_of::<bool>(),
        }) as u32
    }

    /// Alignment in bytes of the C type on this target.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(shm_core::TypeCode::Short.align(), 2);
    /// ```
    pub const fn align(self) -> u32 {
        (match self {
            TypeCode::Char => align_of::<c_char>(),
            TypeCode::Byte => align_of::<c_schar>(),
            TypeCode::UByte => align_of::<c_uchar>(),
            TypeCode::Short => align_of::<c_short>(),
            TypeCode::UShort => align_of::<c_ushort>(),
            TypeCode::Int => align_of::<c_int>(),
            TypeCode::UInt => align_of::<c_uint>(),
            TypeCode::Long => align_of::<c_long>(),
            TypeCode::ULong => align_of::<c_ulong>(),
            TypeCode::LongLong => align_of::<c_longlong>(),
            TypeCode::ULongLong => align_of::<c_ulonglong>(),
            TypeCode::Float => align_of::<c_float>(),
            TypeCode::Double => align_of::<c_double>(),
            TypeCode::WChar => align_of::<WcharT>(),
            TypeCode::Bool => align_of::<bool>(),
        }) as u32
    }

    /// The ctypes name of the C type (`"c_int"` for `'i'`), for messages.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(shm_core::TypeCode::ULongLong.ctype_name(), "c_ulonglong");
    /// ```
    pub const fn ctype_name(self) -> &'static str {
        match self {
            TypeCode::Char => "c_char",
            TypeCode::Byte => "c_byte",
            TypeCode::UByte => "c_ubyte",
            TypeCode::Short => "c_short",
            TypeCode::UShort => "c_ushort",
            TypeCode::Int => "c_int",
            TypeCode::UInt => "c_uint",
            TypeCode::Long => "c_long",
            TypeCode::ULong => "c_ulong",
            TypeCode::LongLong => "c_longlong",
            TypeCode::ULongLong => "c_ulonglong",
            TypeCode::Float => "c_float",
            TypeCode::Double => "c_double",
            TypeCode::WChar => "c_wchar",
            TypeCode::Bool => "c_bool",
        }
    }

    /// Whether this is an integer code: `b B h H i I l L q Q`.
    ///
    /// `'c'`, `'u'` and `'?'` are integers in C but characters or booleans in Python, so they
    /// are not integer codes here (no arithmetic is offered on them).
    ///
    /// # Examples
    ///
    /// ```
    /// use shm_core::TypeCode;
    ///
    /// assert!(TypeCode::Long.is_integer());
    /// assert!(!TypeCode::Char.is_integer());
    /// assert!(!TypeCode::Double.is_integer());
    /// ```
    pub const fn is_integer(self) -> bool {
        matches!(
            self,
            TypeCode::Byte
                | TypeCode::UByte
                | TypeCode::Short
                | TypeCode::UShort
                | TypeCode::Int
                | TypeCode::UInt
                | TypeCode::Long
                | TypeCode::ULong
                | TypeCode::LongLong
                | TypeCode::ULongLong
        )
    }

    /// Whether this is a signed integer code: `b h i l q`.
    ///
    /// # Examples
    ///
    /// ```
    /// use shm_core::TypeCode;
    ///
    /// assert!(TypeCode::Short.is_signed_integer());
    /// assert!(!TypeCode::UShort.is_signed_integer());
    /// ```
    pub const fn is_signed_integer(self) -> bool {
        matches!(
            self,
            TypeCode::Byte | TypeCode::Short | TypeCode::Int | TypeCode::Long | TypeCode::LongLong
        )
    }

    /// Whether this is a floating-point code: `f d`.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(shm_core::TypeCode::Float.is_float());
    /// assert!(!shm_core::TypeCode::Int.is_float());
    /// ```
    pub const fn is_float(self) -> bool {
        matches!(self, TypeCode::Float | TypeCode::Double)
    }

    /// The representative of this code's alias class on this target.
    ///
    /// Where C `long` is 8 bytes (LP64: Linux and macOS on 64-bit CPUs), `'l'` maps to `'q'`
    /// and `'L'` to `'Q'`; every other code maps to itself.
    ///
    /// # Examples
    ///
    /// ```
    /// use shm_core::TypeCode;
    ///
    /// # #[cfg(all(target_pointer_width = "64", not(windows)))]
    /// assert_eq!(TypeCode::Long.canonical(), TypeCode::LongLong);
    /// assert_eq!(TypeCode::Int.canonical(), TypeCode::Int);
    /// ```
    pub const fn canonical(self) -> TypeCode {
        match self {
            TypeCode::Long if LONG_IS_LONGLONG => TypeCode::LongLong,
            TypeCode::ULong if LONG_IS_LONGLONG => TypeCode::ULongLong,
            other => other,
        }
    }

    /// Whether memory written as `self` may be read as `other`: the codes are equal, or are
    /// aliases on this target (`l`≡`q` and `L`≡`Q` where C `long` is 8 bytes).
    ///
    /// Signedness is part of the type: `'i'` and `'I'` are not compatible.
    ///
    /// # Examples
    ///
    /// ```
    /// use shm_core::TypeCode;
    ///
    /// # #[cfg(all(target_pointer_width = "64", not(windows)))]
    /// assert!(TypeCode::Long.is_compatible_with(TypeCode::LongLong));
    /// assert!(!TypeCode::Long.is_compatible_with(TypeCode::ULongLong));
    /// assert!(!TypeCode::Int.is_compatible_with(TypeCode::UInt));
    /// ```
    pub const fn is_compatible_with(self, other: TypeCode) -> bool {
        self.canonical() as u8 == other.canonical() as u8
    }
}

impl fmt::Display for TypeCode {
    /// Writes the typecode character, e.g. `i`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.as_char(), f)
    }
}

impl TryFrom<char> for TypeCode {
    type Error = TypeCodeError;

    /// Same as [`TypeCode::from_char`].
    fn try_from(c: char) -> Result<Self, Self::Error> {
        TypeCode::from_char(c)
    }
}

impl FromStr for TypeCode {
    type Err = TypeCodeError;

    /// Parses a string of exactly one typecode character, such as `"i"`.
    ///
    /// # Errors
    ///
    /// [`TypeCodeError::NotOneChar`] if `s` is empty or longer than one character;
    /// [`TypeCodeError::Unknown`] if the character is not a typecode.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut chars = s.chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) => TypeCode::from_char(c),
            _ => Err(TypeCodeError::NotOneChar {
                chars: s.chars().count(),
            }),
        }
    }
}

impl From<TypeCode> for char {
    fn from(tc: TypeCode) -> char {
        tc.as_char()
    }
}

/// Error from parsing a [`TypeCode`].
///
/// # Examples
///
/// ```
/// use shm_core::{TypeCode, TypeCodeError};
///
/// assert_eq!("ii".parse::<TypeCode>(), Err(TypeCodeError::NotOneChar { chars: 2 }));
/// assert_eq!(
///     TypeCode::try_from('z').unwrap_err().to_string(),
///     "unknown typecode 'z': expected one of c b B h H i I l L q Q f d u ?",
/// );
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[non_exhaustive]
pub enum TypeCodeError {
    /// The character is not one of `c b B h H i I l L q Q f d u ?`.
    Unknown(char),
    /// The string to parse was not exactly one character long.
    NotOneChar {
        /// How many characters the string had.
        chars: usize,
    },
}

impl fmt::Display for TypeCodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            TypeCodeError::Unknown(c) => {
                write!(f, "unknown typecode {c:?}: expected one of {TYPECODE_LIST}")
            }
            TypeCodeError::NotOneChar { chars: 0 } => {
                write!(f, "empty typecode: expected one of {TYPECODE_LIST}")
            }
            TypeCodeError::NotOneChar { chars } => write!(
                f,
                "a typecode is one character, got {chars} characters: expected one of \
                 {TYPECODE_LIST}"
            ),
        }
    }
}

impl std::error::Error for TypeCodeError {}

// ---------------------------------------------------------------------------------------------
// Newtypes for 'c', 'u' and '?'
// ---------------------------------------------------------------------------------------------

/// A C `char` (typecode `'c'`): one byte of text, as Python's `c_char`.
///
/// A plain `u8` is typecode `'B'` (a number); `CChar` keeps the distinction in the segment
/// header so that Python sees `bytes`, not integers.
///
/// # Examples
///
/// ```
/// use shm_core::{CChar, Element, TypeCode};
///
/// let c = CChar::from(b'A');
/// assert_eq!(u8::from(c), 65);
/// assert_eq!(CChar::LAYOUT.typecode(), Some(TypeCode::Char));
/// ```
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Pod, Zeroable)]
#[repr(transparent)]
pub struct CChar(pub u8);

impl From<u8> for CChar {
    fn from(b: u8) -> Self {
        CChar(b)
    }
}

impl From<CChar> for u8 {
    fn from(c: CChar) -> u8 {
        c.0
    }
}

/// A C `wchar_t` on Linux (typecode `'u'`): one UTF-32 code unit, as Python's `c_wchar`.
///
/// It is `u32`-backed rather than a `char` because another process may store any 32-bit
/// value; [`WChar::to_char`] checks it.
///
/// # Examples
///
/// ```
/// use shm_core::WChar;
///
/// let w = WChar::from('é');
/// assert_eq!(w.0, 0xE9);
/// assert_eq!(w.to_char(), Some('é'));
/// assert_eq!(WChar(0xD800).to_char(), None); // a lone surrogate
/// ```
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Pod, Zeroable)]
#[repr(transparent)]
pub struct WChar(pub u32);

impl WChar {
    /// The character this code unit holds, or `None` if it is not a Unicode scalar value
    /// (a surrogate or above `U+10FFFF`).
    pub const fn to_char(self) -> Option<char> {
        char::from_u32(self.0)
    }
}

impl From<char> for WChar {
    fn from(c: char) -> Self {
        WChar(c as u32)
    }
}

impl From<u32> for WChar {
    fn from(v: u32) -> Self {
        WChar(v)
    }
}

impl From<WChar> for u32 {
    fn from(w: WChar) -> u32 {
        w.0
    }
}

/// A C `_Bool` (typecode `'?'`), as Python's `c_bool`.
///
/// It is `u8`-backed rather than a `bool` because every bit pattern a peer process may write
/// must be a valid value; any nonzero byte reads as `true`. Equality and hashing follow
/// [`CBool::get`], so `CBool(2) == CBool::TRUE`.
///
/// # Examples
///
/// ```
/// use shm_core::CBool;
///
/// assert!(CBool::from(true).get());
/// assert!(CBool(2).get());
/// assert_eq!(CBool(2), CBool::TRUE);
/// assert!(!bool::from(CBool::default()));
/// ```
#[derive(Clone, Copy, Default, Debug, Pod, Zeroable)]
#[repr(transparent)]
pub struct CBool(pub u8);

impl CBool {
    /// `false`, stored as 0.
    pub const FALSE: CBool = CBool(0);
    /// `true`, stored as 1.
    pub const TRUE: CBool = CBool(1);

    /// `b` stored as 0 or 1.
    pub const fn new(b: bool) -> Self {
        CBool(b as u8)
    }

    /// The truth value: any nonzero byte is `true`.
    pub const fn get(self) -> bool {
        self.0 != 0
    }
}

impl PartialEq for CBool {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

impl Eq for CBool {}

impl Hash for CBool {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.get().hash(state);
    }
}

impl From<bool> for CBool {
    fn from(b: bool) -> Self {
        CBool::new(b)
    }
}

impl From<CBool> for bool {
    fn from(b: CBool) -> bool {
        b.get()
    }
}

// ---------------------------------------------------------------------------------------------
// Element
// ---------------------------------------------------------------------------------------------

/// A type that may be stored in a segment, with the layout written into the segment header.
///
/// Implemented for the Rust types of the typecodes (`i8` `'b'`, `u8` `'B'`, `i16` `'h'`,
/// `u16` `'H'`, `i32` `'i'`, `u32` `'I'`, `i64` `'q'`, `u64` `'Q'`, `f32` `'f'`, `f64` `'d'`,
/// [`CChar`] `'c'`, [`WChar`] `'u'`, [`CBool`] `'?'`), for arrays `[T; N]` of elements
/// (`[u8; 4]` is `"4B"`), for [`Pad<N>`] (`"Nx"`), and by [`record!`](crate::record) for
/// `#[repr(C)]` records. Prefer `record!` to a hand-written implementation: it proves the
/// contract below at compile time.
///
/// `bytemuck::Pod` gives what shared memory needs of the type itself: no pointers, no `Drop`,
/// no padding, and every bit pattern valid, so bytes written by any process can be read as
/// `Self` without undefined behaviour.
///
/// # Safety
///
/// `LAYOUT` must describe `Self` exactly:
///
/// - `LAYOUT.size()` must equal `size_of::<Self>()` and `LAYOUT.align()` must equal
///   `align_of::<Self>()`. Segment code computes offsets and casts bytes with these numbers,
///   so a wrong value is undefined behaviour.
/// - `LAYOUT.format()` must describe the fields of `Self` under native `struct` rules: every
///   typed item of the format lies at the offset of a field of the matching C type, and the
///   bytes it does not cover are padding fields. A wrong format is not undefined behaviour by
///   itself (`Self` is `Pod`), but it breaks the promise that processes which agree on a
///   layout agree on what the bytes mean, which other crates rely on.
///
/// # Examples
///
/// ```
/// use shm_core::{Element, TypeCode};
///
/// fn describe<T: Element>() -> String {
///     T::LAYOUT.to_string()
/// }
/// assert_eq!(describe::<i32>(), "'i'");
/// assert_eq!(<u16 as Element>::LAYOUT.typecode(), Some(TypeCode::UShort));
/// assert!(<i64 as Element>::LAYOUT.is_integer());
/// assert_eq!(<[f32; 3] as Element>::LAYOUT.format(), "3f");
/// ```
pub unsafe trait Element: Pod + Send + Sync + 'static {
    /// The layout of `Self`, written into segment headers and checked on open.
    const LAYOUT: ElementLayout;
}

/// Implements [`Element`] for a Rust type with the layout of one typecode, and pins
/// the safety contract with compile-time assertions.
macro_rules! typecode_elements {
    ($($(#[$cfg:meta])* $ty:ty => $tc:ident,)+) => {$(
        $(#[$cfg])*
        // SAFETY: `LAYOUT` is the single typecode whose C type has the size and alignment of
        // `$ty`; the assertions below check both at compile time.
        unsafe impl Element for $ty {
            const LAYOUT: ElementLayout = ElementLayout::of_typecode(TypeCode::$tc);
        }

        $(#[$cfg])*
        const _: () = {
            assert!(TypeCode::$tc.size() as usize == size_of::<$ty>());
            assert!(TypeCode::$tc.align() as usize == align_of::<$ty>());
        };
    )+};
}

typecode_elements! {
    i8 => Byte,
    u8 => UByte,
    i16 => Short,
    u16 => UShort,
    i32 => Int,
    u32 => UInt,
    i64 => LongLong,
    u64 => ULongLong,
    f32 => Float,
    f64 => Double,
    CChar => Char,
    #[cfg(not(windows))]
    WChar => WChar,
    CBool => Bool,
}

// SAFETY: `[T; N]` has size `N * size_of::<T>()` and the alignment of `T`, and holds `N`
// values of `T` back to back. `repeat` builds the format of `N` consecutive `T` layouts with
// size `N * T::LAYOUT.size()` and alignment `T::LAYOUT.align()`, which are equal to those
// because `T: Element`. It fails (a compile-time error here) rather than return anything else.
unsafe impl<T: Element, const N: usize> Element for [T; N] {
    const LAYOUT: ElementLayout = __private::unwrap_layout(T::LAYOUT.repeat(N));
}

/// `N` explicit padding bytes in a [`record!`](crate::record): format `"Nx"`, size `N`,
/// alignment 1.
///
/// A record may not have implicit padding (it would make the `Pod` implementation unsound and
/// leak uninitialised bytes into shared memory), so gaps are spelt out with `Pad`. Its bytes
/// carry no meaning: all `Pad<N>` values compare equal and hash alike. `Pad<0>` is rejected
/// at compile time when its layout is used.
///
/// # Examples
///
/// ```
/// use shm_core::typecode::Pad;
/// use shm_core::Element;
///
/// shm_core::record! {
///     /// A byte, three pad bytes and an `int`.
///     #[derive(Clone, Copy)]
///     pub struct Tagged { pub tag: u8, pub _pad: Pad<3>, pub value: i32 }
/// }
/// assert_eq!(Tagged::LAYOUT.format(), "B3xi");
/// assert_eq!(Pad::<3>::new(), Pad::default());
/// ```
#[derive(Clone, Copy)]
#[repr(transparent)]
pub struct Pad<const N: usize>([u8; N]);

impl<const N: usize> Pad<N> {
    /// Zeroed padding.
    pub const fn new() -> Self {
        Pad([0; N])
    }
}

impl<const N: usize> Default for Pad<N> {
    fn default() -> Self {
        Pad::new()
    }
}

impl<const N: usize> fmt::Debug for Pad<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pad<{N}>")
    }
}

impl<const N: usize> PartialEq for Pad<N> {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl<const N: usize> Eq for Pad<N> {}

impl<const N: usize> Hash for Pad<N> {
    fn hash<H: Hasher>(&self, _: &mut H) {}
}

// SAFETY: `Pad<N>` is `repr(transparent)` over `[u8; N]`, for which all-zero bytes are a
// valid value.
unsafe impl<const N: usize> Zeroable for Pad<N> {}

// SAFETY: `Pad<N>` is `repr(transparent)` over `[u8; N]`, which is `Pod` (no padding, every
// bit pattern valid, `Copy + 'static`); the wrapper adds nothing.
unsafe impl<const N: usize> Pod for Pad<N> {}

// SAFETY: `Pad<N>` has size `N` and alignment 1 (transparent over `[u8; N]`); `padding(N)`
// returns the format `"Nx"` with exactly that size and alignment, or fails at compile time.
unsafe impl<const N: usize> Element for Pad<N> {
    const LAYOUT: ElementLayout = __private::unwrap_layout(ElementLayout::padding(N));
}

// ---------------------------------------------------------------------------------------------
// LayoutError
// ---------------------------------------------------------------------------------------------

/// Error from parsing, building or decoding an [`ElementLayout`].
///
/// Positions are byte offsets into the format string.
///
/// # Examples
///
/// ```
/// use shm_core::{ElementLayout, LayoutError};
///
/// assert_eq!(
///     ElementLayout::parse("iz"),
///     Err(LayoutError::BadChar { byte: b'z', position: 1 }),
/// );
/// assert_eq!(
///     ElementLayout::parse("<i"),
///     Err(LayoutError::UnsupportedByteOrder { prefix: '<' }),
/// );
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[non_exhaustive]
pub enum LayoutError {
    /// The format has no items (it is empty, or only `@` and whitespace).
    Empty,
    /// The format has items but describes zero bytes (such as `"0i"`); an element must
    /// occupy at least one byte.
    ZeroSized,
    /// The format does not fit in [`ElementLayout::FORMAT_CAPACITY`] bytes.
    TooLong {
        /// Length of the format in bytes; for a format being built (by
        /// [`ElementLayout::concat`] or [`ElementLayout::repeat`]), the length reached when
        /// building stopped. Always more than the capacity.
        len: usize,
    },
    /// A byte that is not a typecode, `x`, `s`, a digit or whitespace where it stands
    /// (including `@` after the start, a NUL, and any non-ASCII byte).
    BadChar {
        /// The offending byte.
        byte: u8,
        /// Its position in the format.
        position: usize,
    },
    /// A repeat count not followed by a format character (`"3"`, or `"3 i"`: `struct`
    /// does not allow whitespace between a count and its code).
    MissingCode {
        /// Position of the count's first digit.
        position: usize,
    },
    /// The format starts with a byte-order prefix other than `@`; layouts are always native.
    UnsupportedByteOrder {
        /// The prefix: `<`, `>`, `!` or `=`.
        prefix: char,
    },
    /// A repeat count or the layout's size does not fit in a `u32`.
    TooLarge,
    /// An encoded format has a nonzero byte after its terminating NUL.
    NotNulPadded {
        /// Position of the first nonzero byte after the NUL.
        position: usize,
    },
    /// The size stored beside an encoded format is not the size the format computes.
    SizeMismatch {
        /// The size the format computes.
        expected: u32,
        /// The size that was stored.
        found: u32,
    },
    /// The alignment stored beside an encoded format is not the alignment the format
    /// computes.
    AlignMismatch {
        /// The alignment the format computes.
        expected: u32,
        /// The alignment that was stored.
        found: u32,
    },
}

impl LayoutError {
    /// Panics with a fixed message per variant: the compile-time error of `record!`, array
    /// and `Pad` layouts (const panics cannot format values).
    const fn const_panic(self) -> ! {
        match self {
            LayoutError::Empty => panic!("element layout: empty format"),
            LayoutError::ZeroSized => {
                panic!("element layout: zero-sized (`[T; 0]` and `Pad<0>` are not elements)")
            }
            LayoutError::TooLong { .. } => {
                panic!("element layout: format is longer than 64 bytes")
            }
            LayoutError::BadChar { .. } => panic!("element layout: bad character in format"),
            LayoutError::MissingCode { .. } => {
                panic!("element layout: repeat count without a format character")
            }
            LayoutError::UnsupportedByteOrder { .. } => {
                panic!("element layout: byte-order prefix other than '@'")
            }
            LayoutError::TooLarge => panic!("element layout: size does not fit in u32"),
            LayoutError::NotNulPadded { .. } => panic!("element layout: format not NUL-padded"),
            LayoutError::SizeMismatch { .. } => panic!("element layout: size mismatch"),
            LayoutError::AlignMismatch { .. } => panic!("element layout: alignment mismatch"),
        }
    }
}

impl fmt::Display for LayoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            LayoutError::Empty => f.write_str("empty layout format: it needs at least one item"),
            LayoutError::ZeroSized => {
                f.write_str("layout format describes zero bytes: an element needs at least one")
            }
            LayoutError::TooLong { len } => write!(
                f,
                "layout format is {len} bytes long; at most {} fit in a segment header",
                ElementLayout::FORMAT_CAPACITY
            ),
            LayoutError::BadChar { byte, position } => {
                if byte.is_ascii_graphic() || byte == b' ' {
                    write!(f, "bad character {:?} at position {position}", byte as char)?;
                } else {
                    write!(f, "bad byte 0x{byte:02x} at position {position}")?;
                }
                write!(
                    f,
                    " of layout format: expected a typecode ({TYPECODE_LIST}), 'x', 's', a \
                     repeat count or whitespace"
                )
            }
            LayoutError::MissingCode { position } => write!(
                f,
                "repeat count at position {position} of layout format is not directly \
                 followed by a format character"
            ),
            LayoutError::UnsupportedByteOrder { prefix } => write!(
                f,
                "byte-order prefix {prefix:?} is not supported: layouts are native ('@' or no \
                 prefix)"
            ),
            LayoutError::TooLarge => f.write_str("layout size does not fit in 32 bits"),
            LayoutError::NotNulPadded { position } => write!(
                f,
                "encoded layout format is not NUL-padded: nonzero byte at position {position} \
                 after the terminating NUL"
            ),
            LayoutError::SizeMismatch { expected, found } => write!(
                f,
                "layout size mismatch: the format computes {expected} bytes, but {found} were \
                 stored"
            ),
            LayoutError::AlignMismatch { expected, found } => write!(
                f,
                "layout alignment mismatch: the format computes {expected}, but {found} was \
                 stored"
            ),
        }
    }
}

impl std::error::Error for LayoutError {}

// ---------------------------------------------------------------------------------------------
// Format scanning (const)
// ---------------------------------------------------------------------------------------------

/// Whitespace as Python's `Py_ISSPACE`: space, `\t`, `\n`, `\v`, `\f`, `\r`.
const fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// Size and alignment of one unit of a format code, or `None` if `code` is not one.
const fn unit_of(code: u8) -> Option<(u64, u64)> {
    match code {
        b'x' | b's' => Some((1, 1)),
        _ => match TypeCode::from_byte(code) {
            Some(tc) => Some((tc.size() as u64, tc.align() as u64)),
            None => None,
        },
    }
}

/// `n` rounded up to a multiple of `align` (a power of two), or `None` on overflow.
const fn align_up(n: u64, align: u64) -> Option<u64> {
    match n.checked_add(align - 1) {
        Some(v) => Some(v & !(align - 1)),
        None => None,
    }
}

/// The position of the first item: after a leading `@`, if any.
///
/// # Errors
///
/// [`LayoutError::UnsupportedByteOrder`] for a leading `<`, `>`, `!` or `=`.
const fn skip_prefix(bytes: &[u8]) -> Result<usize, LayoutError> {
    match bytes.first() {
        Some(b'@') => Ok(1),
        Some(&p @ (b'<' | b'>' | b'!' | b'=')) => {
            Err(LayoutError::UnsupportedByteOrder { prefix: p as char })
        }
        _ => Ok(0),
    }
}

/// One item of a format, placed at its offset.
#[derive(Clone, Copy)]
struct Item {
    /// The code byte: a typecode, `x` or `s`.
    code: u8,
    /// The repeat count (the length for `s`); 1 when none was written.
    count: u64,
    /// Offset of the item's first byte, after native alignment.
    offset: u64,
    /// Size in bytes of the whole item (`count` units).
    len: u64,
}

/// A scanner over the items of a format that tracks offsets and alignment as `struct` does.
///
/// Every method is `const` so that layouts can be built and checked at compile time.
struct Scanner<'a> {
    /// The format, without any prefix check applied yet.
    bytes: &'a [u8],
    /// Position of the next byte to read.
    pos: usize,
    /// Offset just past the last item (`struct.calcsize` of what was read so far).
    end: u64,
    /// Largest alignment of the items read so far (1 if none).
    align: u64,
    /// Number of items read so far.
    items: usize,
}

impl<'a> Scanner<'a> {
    /// A scanner positioned at the first item.
    ///
    /// # Errors
    ///
    /// [`LayoutError::TooLong`] if `bytes` is longer than the capacity, and the errors of
    /// [`skip_prefix`].
    const fn new(bytes: &'a [u8]) -> Result<Self, LayoutError> {
        if bytes.len() > ElementLayout::FORMAT_CAPACITY {
            return Err(LayoutError::TooLong { len: bytes.len() });
        }
        match skip_prefix(bytes) {
            Ok(pos) => Ok(Scanner {
                bytes,
                pos,
                end: 0,
                align: 1,
                items: 0,
            }),
            Err(e) => Err(e),
        }
    }

    /// The next item, `Ok(None)` at the end of the format.
    ///
    /// # Errors
    ///
    /// [`LayoutError::BadChar`], [`LayoutError::MissingCode`] or [`LayoutError::TooLarge`]
    /// (a count or offset past `u32::MAX`).
    const fn next(&mut self) -> Result<Option<Item>, LayoutError> {
        let bytes = self.bytes;
        while self.pos < bytes.len() && is_space(bytes[self.pos]) {
            self.pos += 1;
        }
        if self.pos >= bytes.len() {
            return Ok(None);
        }
        let start = self.pos;
        let mut count: u64 = 1;
        if bytes[self.pos].is_ascii_digit() {
            count = 0;
            while self.pos < bytes.len() && bytes[self.pos].is_ascii_digit() {
                count = match count.checked_mul(10) {
                    Some(c) => c + (bytes[self.pos] - b'0') as u64,
                    None => return Err(LayoutError::TooLarge),
                };
                if count > u32::MAX as u64 {
                    return Err(LayoutError::TooLarge);
                }
                self.pos += 1;
            }
            if self.pos >= bytes.len() || is_space(bytes[self.pos]) {
                return Err(LayoutError::MissingCode { position: start });
            }
        }
        let code = bytes[self.pos];
        let Some((unit, align)) = unit_of(code) else {
            return Err(LayoutError::BadChar {
                byte: code,
                position: self.pos,
            });
        };
        self.pos += 1;
        // Both factors are at most u32::MAX, so neither this product nor the sum below can
        // overflow u64; the bound on `end` keeps it so for the next item.
        let len = count * unit;
        let Some(offset) = align_up(self.end, align) else {
            return Err(LayoutError::TooLarge);
        };
        let end = offset + len;
        if end > u32::MAX as u64 {
            return Err(LayoutError::TooLarge);
        }
        self.end = end;
        if align > self.align {
            self.align = align;
        }
        self.items += 1;
        Ok(Some(Item {
            code,
            count,
            offset,
            len,
        }))
    }
}

/// What a whole format computes.
#[derive(Clone, Copy)]
struct Analysis {
    /// `struct.calcsize`: the offset past the last item.
    calcsize: u32,
    /// The record size: `calcsize` rounded up to `align`.
    size: u32,
    /// The largest item alignment.
    align: u32,
    /// The typecode if the format is one typecode item with a count of 1.
    typecode: Option<TypeCode>,
    /// The only item, if the format has exactly one.
    single: Option<Item>,
}

/// Checks a whole format and computes its sizes.
///
/// # Errors
///
/// Every [`LayoutError`] about the format itself, and [`LayoutError::Empty`] /
/// [`LayoutError::ZeroSized`] for formats without bytes.
const fn analyse(bytes: &[u8]) -> Result<Analysis, LayoutError> {
    let mut scanner = match Scanner::new(bytes) {
        Ok(s) => s,
        Err(e) => return Err(e),
    };
    let mut first = None;
    loop {
        match scanner.next() {
            Ok(Some(item)) => {
                if scanner.items == 1 {
                    first = Some(item);
                }
            }
            Ok(None) => break,
            Err(e) => return Err(e),
        }
    }
    if scanner.items == 0 {
        return Err(LayoutError::Empty);
    }
    let single = if scanner.items == 1 { first } else { None };
    let typecode = match single {
        Some(item) if item.count == 1 => TypeCode::from_byte(item.code),
        _ => None,
    };
    let size = match align_up(scanner.end, scanner.align) {
        Some(s) if s <= u32::MAX as u64 => s,
        _ => return Err(LayoutError::TooLarge),
    };
    if size == 0 {
        return Err(LayoutError::ZeroSized);
    }
    Ok(Analysis {
        calcsize: scanner.end as u32,
        size: size as u32,
        align: scanner.align as u32,
        typecode,
        single,
    })
}

/// A format being assembled in a fixed buffer, in const context.
struct FormatBuilder {
    /// The bytes written so far (only the first `len` are meaningful).
    bytes: [u8; ElementLayout::FORMAT_CAPACITY],
    /// Bytes the format needs so far; may exceed the capacity, then later writes are dropped.
    len: usize,
}

impl FormatBuilder {
    /// An empty format.
    const fn new() -> Self {
        FormatBuilder {
            bytes: [0; ElementLayout::FORMAT_CAPACITY],
            len: 0,
        }
    }

    /// Whether the format no longer fits.
    const fn overflowed(&self) -> bool {
        self.len > ElementLayout::FORMAT_CAPACITY
    }

    /// Appends one byte (counted but dropped once the buffer is full).
    const fn push(&mut self, b: u8) {
        if self.len < ElementLayout::FORMAT_CAPACITY {
            self.bytes[self.len] = b;
        }
        self.len = self.len.saturating_add(1);
    }

    /// Appends `n` in decimal.
    const fn push_decimal(&mut self, n: u64) {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        let mut n = n;
        loop {
            i -= 1;
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        while i < digits.len() {
            self.push(digits[i]);
            i += 1;
        }
    }

    /// Appends an item: `code` with `count`, the count omitted when it is 1.
    const fn push_item(&mut self, count: u64, code: u8) {
        if count != 1 {
            self.push_decimal(count);
        }
        self.push(code);
    }

    /// Appends the items of `layout`'s format (without its `@` prefix, if any).
    const fn push_format(&mut self, layout: &ElementLayout) {
        let mut i = if layout.len > 0 && layout.format[0] == b'@' {
            1
        } else {
            0
        };
        while i < layout.len as usize {
            self.push(layout.format[i]);
            i += 1;
        }
    }

    /// The finished layout.
    ///
    /// # Errors
    ///
    /// [`LayoutError::TooLong`] if the format overflowed, and the errors of
    /// [`ElementLayout::from_format_bytes`].
    const fn finish(self) -> Result<ElementLayout, LayoutError> {
        if self.overflowed() {
            return Err(LayoutError::TooLong { len: self.len });
        }
        ElementLayout::from_format_bytes(self.bytes, self.len)
    }
}

// ---------------------------------------------------------------------------------------------
// ElementLayout
// ---------------------------------------------------------------------------------------------

/// The layout of one element, as written into a segment header: a Python `struct` format
/// string (at most [`FORMAT_CAPACITY`](Self::FORMAT_CAPACITY) bytes), its size and alignment,
/// and its typecode when the element is a single typecode.
///
/// See the [module documentation](self) for the format grammar and the definition of the
/// size (the `struct` size rounded up to the alignment).
///
/// # Invariant
///
/// Every value holds a format that [`parse`](Self::parse) accepts, NUL-padded to the
/// capacity, with the size, alignment and typecode that the format computes. All
/// constructors check this, so a layout decoded from untrusted bytes is as trustworthy as one
/// built in code.
///
/// # Equality
///
/// `==` compares the exact format string; [`is_compatible_with`](Self::is_compatible_with)
/// compares the memory the formats describe (`"i4xd"` and `"id"` are compatible, not equal).
///
/// # Examples
///
/// ```
/// use shm_core::{ElementLayout, TypeCode};
///
/// let layout = ElementLayout::of_typecode(TypeCode::Int);
/// assert_eq!((layout.format(), layout.size(), layout.align()), ("i", 4, 4));
///
/// // Header round trip, as a segment stores and checks it.
/// let bytes = layout.encode();
/// let back = ElementLayout::decode(&bytes, layout.size(), layout.align()).unwrap();
/// assert_eq!(back, layout);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ElementLayout {
    /// The format bytes, NUL-padded (a format of exactly 64 bytes has no NUL).
    format: [u8; ElementLayout::FORMAT_CAPACITY],
    /// Length of the format in bytes, at most `FORMAT_CAPACITY`.
    len: u8,
    /// `struct.calcsize` of the format.
    calcsize: u32,
    /// Record size: `calcsize` rounded up to `align`.
    size: u32,
    /// Largest alignment of the format's items.
    align: u32,
    /// The typecode if the format is a single typecode item with count 1.
    typecode: Option<TypeCode>,
}

impl ElementLayout {
    /// Maximum length in bytes of a format string, the size of its slot in a segment header.
    pub const FORMAT_CAPACITY: usize = 64;

    /// The layout of a single typecode: format `"i"` for [`TypeCode::Int`], and so on.
    ///
    /// # Examples
    ///
    /// ```
    /// use shm_core::{ElementLayout, TypeCode};
    ///
    /// const D: ElementLayout = ElementLayout::of_typecode(TypeCode::Double);
    /// assert_eq!(D.format(), "d");
    /// assert_eq!(D.typecode(), Some(TypeCode::Double));
    /// ```
    pub const fn of_typecode(tc: TypeCode) -> Self {
        let mut format = [0; Self::FORMAT_CAPACITY];
        format[0] = tc.as_byte();
        ElementLayout {
            format,
            len: 1,
            calcsize: tc.size(),
            size: tc.size(),
            align: tc.align(),
            typecode: Some(tc),
        }
    }

    /// Parses a user-given format string, such as `"iid"`, `"@3i4x"` or `"10s"`.
    ///
    /// The string is kept as given (whitespace and an `@` prefix included), so that it reads
    /// the same in Python's `struct` module.
    ///
    /// # Errors
    ///
    /// [`LayoutError::TooLong`] over [`FORMAT_CAPACITY`](Self::FORMAT_CAPACITY) bytes;
    /// [`LayoutError::UnsupportedByteOrder`] for a `<`, `>`, `!` or `=` prefix;
    /// [`LayoutError::BadChar`] or [`LayoutError::MissingCode`] where the grammar is broken;
    /// [`LayoutError::Empty`] without items; [`LayoutError::ZeroSized`] if the items hold
    /// no bytes; [`LayoutError::TooLarge`] if the size does not fit in a `u32`.
    ///
    /// # Examples
    ///
    /// ```
    /// use shm_core::{ElementLayout, LayoutError};
    ///
    /// let l = ElementLayout::parse("ci").unwrap();
    /// assert_eq!((l.size(), l.align()), (8, 4)); // 'i' is aligned to 4
    /// assert_eq!(ElementLayout::parse(""), Err(LayoutError::Empty));
    /// ```
    pub const fn parse(format: &str) -> Result<ElementLayout, LayoutError> {
        let bytes = format.as_bytes();
        if bytes.len() > Self::FORMAT_CAPACITY {
            return Err(LayoutError::TooLong { len: bytes.len() });
        }
        let mut buf = [0; Self::FORMAT_CAPACITY];
        let mut i = 0;
        while i < bytes.len() {
            buf[i] = bytes[i];
            i += 1;
        }
        Self::from_format_bytes(buf, bytes.len())
    }

    /// Builds a layout from the first `len` bytes of `format` (the rest must be NUL).
    ///
    /// # Errors
    ///
    /// Those of [`analyse`].
    const fn from_format_bytes(
        format: [u8; Self::FORMAT_CAPACITY],
        len: usize,
    ) -> Result<ElementLayout, LayoutError> {
        let Some((used, _)) = format.split_at_checked(len) else {
            return Err(LayoutError::TooLong { len });
        };
        match analyse(used) {
            Ok(a) => Ok(ElementLayout {
                format,
                len: len as u8,
                calcsize: a.calcsize,
                size: a.size,
                align: a.align,
                typecode: a.typecode,
            }),
            Err(e) => Err(e),
        }
    }

    /// Decodes a layout stored in a segment header by another process.
    ///
    /// `format` is the header's format slot as written by [`encode`](Self::encode): the
    /// format bytes followed by NUL padding (none if the format fills all 64 bytes). `size`
    /// and `align` are the values stored beside it. All three are untrusted: this checks the
    /// padding, parses the format and compares what it computes with the stored numbers. It
    /// never panics.
    ///
    /// # Errors
    ///
    /// [`LayoutError::NotNulPadded`] if a nonzero byte follows the first NUL; every error of
    /// [`parse`](Self::parse) for the format (a non-ASCII byte is a
    /// [`LayoutError::BadChar`]); [`LayoutError::SizeMismatch`] or
    /// [`LayoutError::AlignMismatch`] if the stored numbers are not what the format computes.
    ///
    /// # Examples
    ///
    /// ```
    /// use shm_core::{ElementLayout, LayoutError};
    ///
    /// let bytes = ElementLayout::parse("iid").unwrap().encode();
    /// assert!(ElementLayout::decode(&bytes, 16, 8).is_ok());
    /// assert_eq!(
    ///     ElementLayout::decode(&bytes, 12, 8),
    ///     Err(LayoutError::SizeMismatch { expected: 16, found: 12 }),
    /// );
    /// assert!(ElementLayout::decode(&[0xff; 64], 16, 8).is_err());
    /// ```
    pub fn decode(format: &[u8; 64], size: u32, align: u32) -> Result<ElementLayout, LayoutError> {
        let len = format
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(Self::FORMAT_CAPACITY);
        if let Some(extra) = format.iter().skip(len).position(|&b| b != 0) {
            return Err(LayoutError::NotNulPadded {
                position: len + extra,
            });
        }
        let layout = Self::from_format_bytes(*format, len)?;
        if layout.size != size {
            return Err(LayoutError::SizeMismatch {
                expected: layout.size,
                found: size,
            });
        }
        if layout.align != align {
            return Err(LayoutError::AlignMismatch {
                expected: layout.align,
                found: align,
            });
        }
        Ok(layout)
    }

    /// The format for a segment header: the format bytes, NUL-padded to 64 bytes.
    ///
    /// [`decode`](Self::decode) with [`size`](Self::size) and [`align`](Self::align) gives
    /// back an equal layout.
    ///
    /// # Examples
    ///
    /// ```
    /// let bytes = shm_core::ElementLayout::parse("3h").unwrap().encode();
    /// assert_eq!(&bytes[..3], b"3h\0");
    /// assert!(bytes[2..].iter().all(|&b| b == 0));
    /// ```
    pub const fn encode(&self) -> [u8; 64] {
        self.format
    }

    /// The format string.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(shm_core::ElementLayout::parse("@2Q").unwrap().format(), "@2Q");
    /// ```
    pub const fn format(&self) -> &str {
        let (used, _) = self.format.split_at(self.len as usize);
        match core::str::from_utf8(used) {
            Ok(s) => s,
            // Unreachable: the invariant makes every format byte ASCII.
            Err(_) => "",
        }
    }

    /// Size in bytes of one element: the `struct` size of the format rounded up to
    /// [`align`](Self::align), which is the stride of an array of elements.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(shm_core::ElementLayout::parse("ic").unwrap().size(), 8);
    /// ```
    pub const fn size(&self) -> u32 {
        self.size
    }

    /// Alignment in bytes of one element: the largest native alignment of the format's
    /// items (1 for formats of `x`, `s` and one-byte codes only).
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(shm_core::ElementLayout::parse("hd").unwrap().align(), 8);
    /// ```
    pub const fn align(&self) -> u32 {
        self.align
    }

    /// What Python's `struct.calcsize(format)` returns: the size without the trailing
    /// padding that rounds [`size`](Self::size) up to the alignment.
    ///
    /// # Examples
    ///
    /// ```
    /// let l = shm_core::ElementLayout::parse("ic").unwrap();
    /// assert_eq!((l.calcsize(), l.size()), (5, 8));
    /// ```
    pub const fn calcsize(&self) -> u32 {
        self.calcsize
    }

    /// The typecode, when the format is a single typecode with a count of 1 (such as `"i"`,
    /// `"@i"` or `"1i"`); `None` for records, arrays, padding and strings.
    ///
    /// # Examples
    ///
    /// ```
    /// use shm_core::{ElementLayout, TypeCode};
    ///
    /// assert_eq!(ElementLayout::parse("l").unwrap().typecode(), Some(TypeCode::Long));
    /// assert_eq!(ElementLayout::parse("2l").unwrap().typecode(), None);
    /// ```
    pub const fn typecode(&self) -> Option<TypeCode> {
        self.typecode
    }

    /// Whether the element is a single integer typecode (see [`TypeCode::is_integer`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use shm_core::Element;
    ///
    /// assert!(u64::LAYOUT.is_integer());
    /// assert!(!f32::LAYOUT.is_integer());
    /// ```
    pub const fn is_integer(&self) -> bool {
        match self.typecode {
            Some(tc) => tc.is_integer(),
            None => false,
        }
    }

    /// Whether the element is a single floating-point typecode (`'f'` or `'d'`).
    ///
    /// # Examples
    ///
    /// ```
    /// use shm_core::Element;
    ///
    /// assert!(f64::LAYOUT.is_float());
    /// ```
    pub const fn is_float(&self) -> bool {
        match self.typecode {
            Some(tc) => tc.is_float(),
            None => false,
        }
    }

    /// The layout of `bytes` pad bytes: format `"Nx"` (`"x"` for one), alignment 1.
    ///
    /// # Errors
    ///
    /// [`LayoutError::ZeroSized`] for 0; [`LayoutError::TooLarge`] above `u32::MAX`.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(shm_core::ElementLayout::padding(3).unwrap().format(), "3x");
    /// ```
    pub const fn padding(bytes: usize) -> Result<ElementLayout, LayoutError> {
        if bytes == 0 {
            return Err(LayoutError::ZeroSized);
        }
        if bytes as u64 > u32::MAX as u64 {
            return Err(LayoutError::TooLarge);
        }
        let mut b = FormatBuilder::new();
        b.push_item(bytes as u64, b'x');
        b.finish()
    }

    /// The layout of `n` consecutive elements of `self` (a C array), as used for `[T; N]`.
    ///
    /// A single non-`s` item multiplies its count (`"i"` × 4 is `"4i"`, `"3i"` × 2 is
    /// `"6i"`); any other format is written `n` times, each copy followed by explicit
    /// padding if the format's `struct` size is below its size (as [`concat`](Self::concat)
    /// does). The result has size `n * self.size()` and the alignment of `self`.
    ///
    /// # Errors
    ///
    /// [`LayoutError::ZeroSized`] for `n == 0`; [`LayoutError::TooLarge`] if the size does not
    /// fit in a `u32`; [`LayoutError::TooLong`] if the format does not fit.
    ///
    /// # Examples
    ///
    /// ```
    /// use shm_core::{ElementLayout, TypeCode};
    ///
    /// let int = ElementLayout::of_typecode(TypeCode::Int);
    /// assert_eq!(int.repeat(4).unwrap().format(), "4i");
    /// let pair = ElementLayout::parse("hb").unwrap(); // size 4: one trailing pad byte
    /// let two = pair.repeat(2).unwrap();
    /// assert_eq!((two.format(), two.size()), ("hbxhbx", 8));
    /// ```
    pub const fn repeat(&self, n: usize) -> Result<ElementLayout, LayoutError> {
        if n == 0 {
            return Err(LayoutError::ZeroSized);
        }
        match (self.size as u64).checked_mul(n as u64) {
            Some(total) if total <= u32::MAX as u64 => {}
            _ => return Err(LayoutError::TooLarge),
        }
        let (used, _) = self.format.split_at(self.len as usize);
        let single = match analyse(used) {
            Ok(a) => a.single,
            Err(e) => return Err(e),
        };
        match single {
            Some(item) if item.code != b's' => {
                // `count * n * unit` is bounded by the size check above, so it fits in u32.
                let mut b = FormatBuilder::new();
                b.push_item(item.count * n as u64, item.code);
                b.finish()
            }
            _ => sequence(core::slice::from_ref(self), n),
        }
    }

    /// The layout of a C struct whose members have the layouts `parts`, in order: the
    /// formats are concatenated, with explicit padding (`"Nx"`) wherever C would insert it
    /// (before a member to align it, and after a member whose format's `struct` size is below
    /// its size). [`record!`](crate::record) uses this; for padding-free records the result
    /// is plain concatenation (`"i"`, `"i"`, `"d"` give `"iid"`).
    ///
    /// # Errors
    ///
    /// [`LayoutError::Empty`] without parts; [`LayoutError::TooLong`] if the format does not
    /// fit; [`LayoutError::TooLarge`] if the size does not fit in a `u32`.
    ///
    /// # Examples
    ///
    /// ```
    /// use shm_core::{Element, ElementLayout};
    ///
    /// let l = ElementLayout::concat(&[u8::LAYOUT, f64::LAYOUT]).unwrap();
    /// assert_eq!((l.format(), l.size(), l.align()), ("B7xd", 16, 8));
    /// assert!(l.is_compatible_with(&ElementLayout::parse("Bd").unwrap()));
    /// ```
    pub const fn concat(parts: &[ElementLayout]) -> Result<ElementLayout, LayoutError> {
        sequence(parts, 1)
    }

    /// The fields of the format, canonicalised for comparison: pad bytes dropped, `s` read as
    /// `c`, aliases mapped by [`TypeCode::canonical`], and adjacent runs of one code merged.
    ///
    /// Returns `None` only if the format fails to scan, which the type invariant rules out.
    fn fields(&self) -> Option<Fields> {
        let (used, _) = self.format.split_at(self.len as usize);
        let mut scanner = Scanner::new(used).ok()?;
        let mut fields = Fields {
            runs: [Run {
                offset: 0,
                code: TypeCode::Char,
                count: 0,
            }; Self::FORMAT_CAPACITY],
            len: 0,
        };
        while let Some(item) = scanner.next().ok()? {
            let code = match item.code {
                b's' => TypeCode::Char,
                other => match TypeCode::from_byte(other) {
                    Some(tc) => tc.canonical(),
                    None => continue, // 'x': padding
                },
            };
            if item.len == 0 {
                continue;
            }
            let count = item.len / code.size() as u64;
            if let Some(last) = fields.runs[..fields.len].last_mut() {
                if last.code == code && last.offset + last.count * code.size() as u64 == item.offset
                {
                    last.count += count;
                    continue;
                }
            }
            // Each item adds at most one run and a format has at most FORMAT_CAPACITY items.
            *fields.runs.get_mut(fields.len)? = Run {
                offset: item.offset,
                code,
                count,
            };
            fields.len += 1;
        }
        Some(fields)
    }

    /// Whether memory laid out as `self` may be read as `other`.
    ///
    /// True when both have the same size and alignment and the same fields after
    /// canonicalisation: each layout becomes its list of `(offset, typecode)` fields with pad
    /// bytes dropped, `char[N]` (`"Ns"`) counted as `N` `'c'` fields, and typecodes compared
    /// with the alias rule of [`TypeCode::is_compatible_with`]. So explicit and native
    /// padding agree (`"i4xd"` ~ `"id"`), repeat counts do not matter (`"3i"` ~ `"iii"`),
    /// and `"l"` ~ `"q"` where C `long` is 8 bytes.
    ///
    /// # Examples
    ///
    /// ```
    /// use shm_core::ElementLayout;
    ///
    /// let p = |s| ElementLayout::parse(s).unwrap();
    /// assert!(p("i4xd").is_compatible_with(&p("id")));
    /// assert!(p("3i").is_compatible_with(&p("iii")));
    /// assert!(!p("ii").is_compatible_with(&p("id")));
    /// assert!(!p("i").is_compatible_with(&p("I")));
    /// ```
    pub fn is_compatible_with(&self, other: &ElementLayout) -> bool {
        if self.size != other.size || self.align != other.align {
            return false;
        }
        if self == other {
            return true;
        }
        match (self.fields(), other.fields()) {
            (Some(a), Some(b)) => a.runs[..a.len] == b.runs[..b.len],
            _ => false,
        }
    }
}

/// The layout of `repeat` passes over `parts`, laid out as consecutive C struct members.
///
/// # Errors
///
/// As [`ElementLayout::concat`].
const fn sequence(parts: &[ElementLayout], repeat: usize) -> Result<ElementLayout, LayoutError> {
    if parts.is_empty() {
        return Err(LayoutError::Empty);
    }
    let mut b = FormatBuilder::new();
    let mut cur: u64 = 0;
    let mut pass = 0;
    while pass < repeat {
        let mut i = 0;
        while i < parts.len() {
            let part = &parts[i];
            let start = match align_up(cur, part.align as u64) {
                Some(s) => s,
                None => return Err(LayoutError::TooLarge),
            };
            if start > cur {
                b.push_item(start - cur, b'x');
            }
            b.push_format(part);
            if part.calcsize < part.size {
                b.push_item((part.size - part.calcsize) as u64, b'x');
            }
            cur = start + part.size as u64;
            if cur > u32::MAX as u64 {
                return Err(LayoutError::TooLarge);
            }
            if b.overflowed() {
                return Err(LayoutError::TooLong { len: b.len });
            }
            i += 1;
        }
        pass += 1;
    }
    b.finish()
}

/// A run of `count` consecutive fields of one canonical typecode.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Run {
    /// Offset of the first field.
    offset: u64,
    /// The canonical typecode of every field of the run.
    code: TypeCode,
    /// Number of fields.
    count: u64,
}

/// The canonical fields of a layout: at most one run per format item.
struct Fields {
    /// The runs, in offset order; only the first `len` are used.
    runs: [Run; ElementLayout::FORMAT_CAPACITY],
    /// Number of runs used.
    len: usize,
}

impl fmt::Debug for ElementLayout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ElementLayout")
            .field("format", &self.format())
            .field("size", &self.size)
            .field("align", &self.align)
            .field("typecode", &self.typecode)
            .finish()
    }
}

impl fmt::Display for ElementLayout {
    /// A single typecode shows as `'i'`; anything else as `"iid" (16 bytes, align 8)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.typecode {
            Some(tc) if self.len == 1 => write!(f, "'{tc}'"),
            _ => write!(
                f,
                "{:?} ({} bytes, align {})",
                self.format(),
                self.size,
                self.align
            ),
        }
    }
}

impl FromStr for ElementLayout {
    type Err = LayoutError;

    /// Same as [`ElementLayout::parse`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ElementLayout::parse(s)
    }
}

impl From<TypeCode> for ElementLayout {
    fn from(tc: TypeCode) -> Self {
        ElementLayout::of_typecode(tc)
    }
}

/// Support for [`record!`](crate::record) expansions; not a public API.
#[doc(hidden)]
pub mod __private {
    use super::{ElementLayout, LayoutError};

    /// The layout, or a compile-time error naming what was wrong with it.
    pub const fn unwrap_layout(result: Result<ElementLayout, LayoutError>) -> ElementLayout {
        match result {
            Ok(layout) => layout,
            Err(e) => e.const_panic(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// record!
// ---------------------------------------------------------------------------------------------

/// Declares a `#[repr(C)]` record type that can live in a segment: the ctypes `Structure`
/// analogue.
///
/// The macro takes one or more struct definitions with named fields (attributes, doc
/// comments and visibilities are kept) and, for each:
///
/// - emits the struct with `#[repr(C)]` added (do not write a `repr` yourself);
/// - implements `bytemuck::Zeroable` and `bytemuck::Pod` through `shm_core::bytemuck`, so the
///   calling crate needs no bytemuck dependency of its own;
/// - implements [`Element`](crate::Element) with a layout whose format is generated at
///   compile time from the fields' own layouts: `i32, i32, f64` give `"iid"`, a nested record
///   contributes its format, an array `[T; N]` of a single code gives `"N…"` (`[u8; 4]` is
///   `"4B"`), and [`Pad<N>`](crate::typecode::Pad) gives `"Nx"`;
/// - checks at compile time that the struct has no padding (the sum of the field sizes is
///   its size) and that the size and alignment computed from the format by `struct` rules are
///   its size and alignment.
///
/// Requirements: every field type implements [`Element`](crate::Element); the struct derives
/// `Clone` and `Copy` (`Pod` requires them); no implicit padding (insert `Pad<N>` fields or
/// reorder); the format fits in 64 bytes. Breaking one is a compile error. Generic structs
/// are not supported.
///
/// # Examples
///
/// ```
/// use shm_core::{bytemuck, Element};
///
/// shm_core::record! {
///     /// A point with a weight.
///     #[derive(Debug, Clone, Copy, PartialEq)]
///     pub struct Point { pub x: i32, pub y: i32, pub w: f64 }
/// }
///
/// assert_eq!(Point::LAYOUT.format(), "iid");
/// assert_eq!((Point::LAYOUT.size(), Point::LAYOUT.align()), (16, 8));
/// let p = Point { x: 1, y: 2, w: 0.5 };
/// let bytes: &[u8] = bytemuck::bytes_of(&p);
/// assert_eq!(bytemuck::pod_read_unaligned::<Point>(bytes), p);
/// ```
///
/// A struct with implicit padding does not compile (three bytes would follow `a`):
///
/// ```compile_fail,E0080
/// shm_core::record! {
///     #[derive(Clone, Copy)]
///     pub struct Padded { pub a: u8, pub b: u32 }
/// }
/// ```
///
/// Neither does one whose format would exceed 64 bytes (`"iid"` 30 times):
///
/// ```compile_fail,E0080
/// shm_core::record! {
///     #[derive(Clone, Copy)]
///     pub struct Point { pub x: i32, pub y: i32, pub w: f64 }
/// }
/// shm_core::record! {
///     #[derive(Clone, Copy)]
///     pub struct Polygon { pub points: [Point; 30] }
/// }
/// ```
#[macro_export]
macro_rules! record {
    ($(
        $(#[$attr:meta])*
        $vis:vis struct $name:ident {
            $(
                $(#[$field_attr:meta])*
                $field_vis:vis $field:ident : $field_ty:ty
            ),+ $(,)?
        }
    )+) => {$(
        $(#[$attr])*
        #[repr(C)]
        $vis struct $name {
            $(
                $(#[$field_attr])*
                $field_vis $field: $field_ty,
            )+
        }

        // SAFETY: `$name` is `repr(C)` and every field is `Element`, hence `Zeroable`; a
        // struct of zeroable fields and no padding (checked below) is zeroable.
        unsafe impl $crate::bytemuck::Zeroable for $name {}

        // SAFETY: `Pod` requires `repr(C)` (added above), fields that are all `Pod` (every
        // field is `Element: Pod`), `Copy + 'static` (required by `Pod`'s supertraits, so a
        // missing derive is a compile error) and no padding bytes. The const assertion below
        // that the field sizes add up to `size_of::<$name>()` proves there is no padding: in
        // a `repr(C)` struct every byte not in a field is padding.
        unsafe impl $crate::bytemuck::Pod for $name {}

        // SAFETY: `concat` lays the field layouts out by the C struct rules that `repr(C)`
        // uses, and each field layout matches its type (`Element` contract), so the format
        // describes the fields at their offsets. The const assertions below check that the
        // format's size and alignment are `size_of`/`align_of::<$name>()`.
        unsafe impl $crate::typecode::Element for $name {
            const LAYOUT: $crate::typecode::ElementLayout =
                $crate::typecode::__private::unwrap_layout(
                    $crate::typecode::ElementLayout::concat(&[$(
                        <$field_ty as $crate::typecode::Element>::LAYOUT
                    ),+]),
                );
        }

        const _: () = {
            ::core::assert!(
                0 $(+ ::core::mem::size_of::<$field_ty>())+ == ::core::mem::size_of::<$name>(),
                ::core::concat!(
                    "record `", ::core::stringify!($name),
                    "` has implicit padding: add `Pad<N>` fields or reorder the fields",
                ),
            );
            let layout = <$name as $crate::typecode::Element>::LAYOUT;
            ::core::assert!(
                layout.size() as usize == ::core::mem::size_of::<$name>()
                    && layout.calcsize() as usize == ::core::mem::size_of::<$name>(),
                ::core::concat!(
                    "record `", ::core::stringify!($name),
                    "`: the size computed from its format is not its size",
                ),
            );
            ::core::assert!(
                layout.align() as usize == ::core::mem::align_of::<$name>(),
                ::core::concat!(
                    "record `", ::core::stringify!($name),
                    "`: the alignment computed from its format is not its alignment",
                ),
            );
        };
    )+};
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Shorthand for a [`LayoutError::BadChar`].
    const fn bad(byte: u8, position: usize) -> LayoutError {
        LayoutError::BadChar { byte, position }
    }

    fn p(s: &str) -> ElementLayout {
        ElementLayout::parse(s).unwrap_or_else(|e| panic!("parse {s:?}: {e}"))
    }

    #[test]
    fn typecode_sizes_match_rust_types() {
        let expected: [(TypeCode, usize, usize); 15] = [
            (TypeCode::Char, size_of::<CChar>(), align_of::<CChar>()),
            (TypeCode::Byte, size_of::<i8>(), align_of::<i8>()),
            (TypeCode::UByte, size_of::<u8>(), align_of::<u8>()),
            (TypeCode::Short, size_of::<i16>(), align_of::<i16>()),
            (TypeCode::UShort, size_of::<u16>(), align_of::<u16>()),
            (TypeCode::Int, size_of::<i32>(), align_of::<i32>()),
            (TypeCode::UInt, size_of::<u32>(), align_of::<u32>()),
            (TypeCode::Long, size_of::<c_long>(), align_of::<c_long>()),
            (TypeCode::ULong, size_of::<c_ulong>(), align_of::<c_ulong>()),
            (TypeCode::LongLong, size_of::<i64>(), align_of::<i64>()),
            (TypeCode::ULongLong, size_of::<u64>(), align_of::<u64>()),
            (TypeCode::Float, size_of::<f32>(), align_of::<f32>()),
            (TypeCode::Double, size_of::<f64>(), align_of::<f64>()),
            (TypeCode::WChar, size_of::<WcharT>(), align_of::<WcharT>()),
            (TypeCode::Bool, size_of::<CBool>(), align_of::<CBool>()),
        ];
        for (tc, size, align) in expected {
            assert_eq!(tc.size() as usize, size, "{tc}");
            assert_eq!(tc.align() as usize, align, "{tc}");
        }
        assert_eq!(
            expected.map(|e| e.0),
            TypeCode::ALL,
            "table covers ALL in order"
        );
    }

    #[test]
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    fn typecode_sizes_linux_x86_64() {
        let table = "c1 b1 B1 h2 H2 i4 I4 l8 L8 q8 Q8 f4 d8 u4 ?1";
        for (tc, entry) in TypeCode::ALL.iter().zip(table.split(' ')) {
            let size: u32 = entry[1..].parse().unwrap();
            assert_eq!(tc.as_char().to_string(), &entry[..1]);
            assert_eq!((tc.size(), tc.align()), (size, size), "{tc}");
        }
    }

    #[test]
    fn element_layouts_match_types() {
        fn check<T: Element>(tc: TypeCode) {
            assert_eq!(T::LAYOUT, ElementLayout::of_typecode(tc));
            assert_eq!(T::LAYOUT.size() as usize, size_of::<T>());
            assert_eq!(T::LAYOUT.align() as usize, align_of::<T>());
        }
        check::<i8>(TypeCode::Byte);
        check::<u8>(TypeCode::UByte);
        check::<i16>(TypeCode::Short);
        check::<u16>(TypeCode::UShort);
        check::<i32>(TypeCode::Int);
        check::<u32>(TypeCode::UInt);
        check::<i64>(TypeCode::LongLong);
        check::<u64>(TypeCode::ULongLong);
        check::<f32>(TypeCode::Float);
        check::<f64>(TypeCode::Double);
        check::<CChar>(TypeCode::Char);
        #[cfg(not(windows))]
        check::<WChar>(TypeCode::WChar);
        check::<CBool>(TypeCode::Bool);
    }

    #[test]
    fn from_char_round_trip() {
        for tc in TypeCode::ALL {
            assert_eq!(TypeCode::from_char(tc.as_char()), Ok(tc));
            assert_eq!(TypeCode::try_from(tc.as_char()), Ok(tc));
            assert_eq!(TypeCode::from_byte(tc.as_byte()), Some(tc));
            assert_eq!(tc.to_string().parse::<TypeCode>(), Ok(tc));
            assert_eq!(char::from(tc), tc.as_char());
        }
        let mut seen = std::collections::HashSet::new();
        assert!(TypeCode::ALL.iter().all(|tc| seen.insert(*tc)));
        // Every other byte is rejected.
        for b in 0..=u8::MAX {
            let known = TypeCode::ALL.iter().any(|tc| tc.as_byte() == b);
            assert_eq!(TypeCode::from_byte(b).is_some(), known, "byte {b}");
        }
    }

    #[test]
    fn from_char_errors_name_the_code() {
        let err = TypeCode::from_char('z').unwrap_err();
        assert_eq!(err, TypeCodeError::Unknown('z'));
        assert_eq!(
            err.to_string(),
            "unknown typecode 'z': expected one of c b B h H i I l L q Q f d u ?"
        );
        for bad in ['x', 's', 'e', 'P', 'n', '\0', 'é', 'İ'] {
            assert_eq!(TypeCode::from_char(bad), Err(TypeCodeError::Unknown(bad)));
        }
        assert_eq!(
            "".parse::<TypeCode>(),
            Err(TypeCodeError::NotOneChar { chars: 0 })
        );
        assert_eq!(
            "ii".parse::<TypeCode>(),
            Err(TypeCodeError::NotOneChar { chars: 2 })
        );
        assert!("ii"
            .parse::<TypeCode>()
            .unwrap_err()
            .to_string()
            .contains('2'));
        assert!(""
            .parse::<TypeCode>()
            .unwrap_err()
            .to_string()
            .contains("empty"));
        let boxed: Box<dyn std::error::Error> = Box::new(err);
        assert!(boxed.to_string().contains("'z'"));
    }

    #[test]
    fn classification() {
        let ints: String = TypeCode::ALL
            .iter()
            .filter(|tc| tc.is_integer())
            .map(|tc| tc.as_char())
            .collect();
        assert_eq!(ints, "bBhHiIlLqQ");
        let signed: String = TypeCode::ALL
            .iter()
            .filter(|tc| tc.is_signed_integer())
            .map(|tc| tc.as_char())
            .collect();
        assert_eq!(signed, "bhilq");
        let floats: String = TypeCode::ALL
            .iter()
            .filter(|tc| tc.is_float())
            .map(|tc| tc.as_char())
            .collect();
        assert_eq!(floats, "fd");
        const _: () = assert!(<u32 as Element>::LAYOUT.is_integer());
        assert!(!CChar::LAYOUT.is_integer());
        assert!(!p("2i").is_integer());
    }

    #[test]
    fn alias_rule() {
        for a in TypeCode::ALL {
            for b in TypeCode::ALL {
                let aliased = matches!(
                    (a, b),
                    (TypeCode::Long, TypeCode::LongLong)
                        | (TypeCode::LongLong, TypeCode::Long)
                        | (TypeCode::ULong, TypeCode::ULongLong)
                        | (TypeCode::ULongLong, TypeCode::ULong)
                ) && LONG_IS_LONGLONG;
                assert_eq!(a.is_compatible_with(b), a == b || aliased, "{a} {b}");
                // Layout compatibility follows the same rule for single codes.
                let (la, lb) = (ElementLayout::of_typecode(a), ElementLayout::of_typecode(b));
                assert_eq!(la.is_compatible_with(&lb), a == b || aliased, "{a} {b}");
            }
        }
    }

    #[test]
    #[cfg(all(target_pointer_width = "64", not(windows)))]
    fn alias_rule_lp64() {
        assert!(TypeCode::Long.is_compatible_with(TypeCode::LongLong));
        assert!(TypeCode::ULong.is_compatible_with(TypeCode::ULongLong));
        assert!(!TypeCode::Long.is_compatible_with(TypeCode::ULongLong));
        assert!(p("l").is_compatible_with(&p("q")));
        assert!(p("2lq").is_compatible_with(&p("3q")));
        assert!(p("iL").is_compatible_with(&p("iQ")));
    }

    #[test]
    fn parse_sizes() {
        let cases: &[(&str, u32, u32, u32)] = &[
            // format, size, align, calcsize
            ("iid", 16, 8, 16),
            ("id", 16, 8, 16),
            ("ci", 8, 4, 8),
            ("ic", 8, 4, 5),
            ("10s", 10, 1, 10),
            ("3i", 12, 4, 12),
            ("i4xd", 16, 8, 16),
            ("c0i", 4, 4, 4),
            ("@i", 4, 4, 4),
            (" i \t d\n", 16, 8, 16),
            ("x", 1, 1, 1),
            ("?", 1, 1, 1),
            ("bhiq", 16, 8, 16),
            ("0s c", 1, 1, 1),
            ("4294967295x", u32::MAX, 1, u32::MAX),
        ];
        for &(fmt, size, align, calcsize) in cases {
            let l = p(fmt);
            assert_eq!(
                (l.size(), l.align(), l.calcsize()),
                (size, align, calcsize),
                "{fmt:?}"
            );
            assert_eq!(l.format(), fmt);
        }
    }

    #[test]
    fn typecode_of_parsed_layouts() {
        assert_eq!(p("i").typecode(), Some(TypeCode::Int));
        assert_eq!(p("@i").typecode(), Some(TypeCode::Int));
        assert_eq!(p("1i").typecode(), Some(TypeCode::Int));
        assert_eq!(p(" ? ").typecode(), Some(TypeCode::Bool));
        assert_eq!(p("2i").typecode(), None);
        assert_eq!(p("ii").typecode(), None);
        assert_eq!(p("s").typecode(), None);
        assert_eq!(p("x").typecode(), None);
        assert_eq!(p("i").to_string(), "'i'");
        assert_eq!(p("iid").to_string(), "\"iid\" (16 bytes, align 8)");
        assert_eq!(p("@i").to_string(), "\"@i\" (4 bytes, align 4)");
        assert_eq!(
            format!("{:?}", p("iid")),
            "ElementLayout { format: \"iid\", size: 16, align: 8, typecode: None }"
        );
        for tc in TypeCode::ALL {
            assert_eq!(p(&tc.to_string()), ElementLayout::of_typecode(tc));
            assert_eq!(ElementLayout::from(tc).typecode(), Some(tc));
        }
        assert_eq!("3h".parse::<ElementLayout>(), Ok(p("3h")));
    }

    #[test]
    fn compatibility() {
        assert!(p("3i").is_compatible_with(&p("iii")));
        assert!(p("iii").is_compatible_with(&p("i2i")));
        assert!(p("i4xd").is_compatible_with(&p("id")));
        assert!(p("id").is_compatible_with(&p("i4xd")));
        assert!(p("@id").is_compatible_with(&p(" i d ")));
        assert!(p("10s").is_compatible_with(&p("10c")));
        assert!(p("10s").is_compatible_with(&p("4s6s")));
        assert!(p("ci").is_compatible_with(&p("c3xi")));
        assert!(!p("ii").is_compatible_with(&p("id")));
        assert!(!p("i").is_compatible_with(&p("I")));
        assert!(!p("i").is_compatible_with(&p("f")));
        assert!(!p("B").is_compatible_with(&p("c")));
        assert!(!p("b").is_compatible_with(&p("B")));
        assert!(!p("10s").is_compatible_with(&p("10B")));
        assert!(!p("hh").is_compatible_with(&p("i")));
        // Same fields, different size or alignment.
        assert!(!p("i").is_compatible_with(&p("i4x")));
        assert!(!p("i4x").is_compatible_with(&p("i0d")));
        // Same bytes covered, different placement.
        assert!(!p("cxh").is_compatible_with(&p("xch")));
        assert!(!p("4x").is_compatible_with(&p("c3x")));
        assert!(p("4x").is_compatible_with(&p("xxxx")));
    }

    #[test]
    fn parse_errors() {
        use LayoutError::*;
        let cases: &[(&str, LayoutError)] = &[
            ("z", bad(b'z', 0)),
            ("iiz", bad(b'z', 2)),
            ("i@", bad(b'@', 1)),
            ("i\0", bad(0, 1)),
            ("é", bad(0xc3, 0)),
            ("<i", UnsupportedByteOrder { prefix: '<' }),
            (">i", UnsupportedByteOrder { prefix: '>' }),
            ("!i", UnsupportedByteOrder { prefix: '!' }),
            ("=i", UnsupportedByteOrder { prefix: '=' }),
            (" <i", bad(b'<', 1)),
            ("", Empty),
            ("@", Empty),
            ("  ", Empty),
            ("0i", ZeroSized),
            ("0s", ZeroSized),
            ("3", MissingCode { position: 0 }),
            ("i12", MissingCode { position: 1 }),
            ("3 i", MissingCode { position: 0 }),
            ("4294967296x", TooLarge),
            ("99999999999999999999999999i", TooLarge),
            ("1073741824i", TooLarge),
            ("4294967295xi", TooLarge),
            ("4294967295sd", TooLarge),
        ];
        for (fmt, err) in cases {
            assert_eq!(ElementLayout::parse(fmt), Err(*err), "{fmt:?}");
            assert!(!err.to_string().is_empty());
        }
        let long = "i".repeat(65);
        assert_eq!(ElementLayout::parse(&long), Err(TooLong { len: 65 }));
        let max = "x".repeat(64);
        assert_eq!(p(&max).size(), 64);
        // Messages name what was wrong.
        assert!(ElementLayout::parse("iz")
            .unwrap_err()
            .to_string()
            .contains("'z' at position 1"));
        assert!(ElementLayout::parse("<i")
            .unwrap_err()
            .to_string()
            .contains("'<'"));
        assert!(ElementLayout::parse(&long)
            .unwrap_err()
            .to_string()
            .contains("65"));
        assert!(ElementLayout::parse("i\u{1}")
            .unwrap_err()
            .to_string()
            .contains("0x01"));
    }

    #[test]
    fn encode_decode_round_trip() {
        let formats = [
            "i",
            "iid",
            "@3i4x",
            " 10s ",
            "c0i",
            "?",
            "l",
            &"x".repeat(64),
            "Q7x?",
        ];
        for fmt in formats {
            let l = p(fmt);
            let bytes = l.encode();
            assert_eq!(&bytes[..fmt.len()], fmt.as_bytes());
            assert!(bytes[fmt.len()..].iter().all(|&b| b == 0));
            assert_eq!(ElementLayout::decode(&bytes, l.size(), l.align()), Ok(l));
        }
        for tc in TypeCode::ALL {
            let l = ElementLayout::of_typecode(tc);
            assert_eq!(
                ElementLayout::decode(&l.encode(), l.size(), l.align()),
                Ok(l)
            );
        }
    }

    #[test]
    fn decode_rejects_garbage() {
        use LayoutError::*;
        let with = |prefix: &[u8]| {
            let mut b = [0u8; 64];
            b[..prefix.len()].copy_from_slice(prefix);
            b
        };
        // Not UTF-8.
        assert_eq!(
            ElementLayout::decode(&with(b"i\xff\xfe"), 4, 4),
            Err(bad(0xff, 1))
        );
        // Bytes after the terminating NUL.
        let mut b = with(b"i");
        b[40] = b'i';
        assert_eq!(
            ElementLayout::decode(&b, 4, 4),
            Err(NotNulPadded { position: 40 })
        );
        // The padding is not NUL: a run of spaces is whitespace, anything else is an error.
        let mut b = [0x01u8; 64];
        b[0] = b'i';
        assert_eq!(ElementLayout::decode(&b, 4, 4), Err(bad(1, 1)));
        // No NUL at all: the 64 bytes are the format.
        assert_eq!(
            ElementLayout::decode(&[b'i'; 64], 4, 4),
            Err(SizeMismatch {
                expected: 256,
                found: 4
            })
        );
        // Size and alignment mismatches.
        let b = p("iid").encode();
        assert_eq!(
            ElementLayout::decode(&b, 12, 8),
            Err(SizeMismatch {
                expected: 16,
                found: 12
            })
        );
        assert_eq!(
            ElementLayout::decode(&b, 16, 4),
            Err(AlignMismatch {
                expected: 8,
                found: 4
            })
        );
        assert_eq!(
            ElementLayout::decode(&b, 0, 0),
            Err(SizeMismatch {
                expected: 16,
                found: 0
            })
        );
        // Empty, byte order, too large.
        assert_eq!(ElementLayout::decode(&[0; 64], 0, 1), Err(Empty));
        assert_eq!(
            ElementLayout::decode(&with(b">i"), 4, 4),
            Err(UnsupportedByteOrder { prefix: '>' })
        );
        assert_eq!(
            ElementLayout::decode(&with(b"99999999999d"), 8, 8),
            Err(TooLarge)
        );
    }

    /// xorshift64*: a small deterministic generator, so no `rand` dependency is needed.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
    }

    #[test]
    fn decode_never_panics_on_random_bytes() {
        const ALPHABET: &[u8] = b"cbBhHiIlLqQfdu?xs0123456789 @<\0\xff";
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        let rounds: u32 = if cfg!(miri) { 200 } else { 20_000 };
        let mut accepted = 0;
        for round in 0..rounds {
            let mut buf = [0u8; 64];
            let len = (rng.next() % 65) as usize;
            for b in &mut buf[..len] {
                let r = rng.next();
                // Half the rounds draw from the format alphabet, so that many buffers parse
                // far enough to reach the later checks; the others are arbitrary bytes.
                *b = if round.is_multiple_of(2) {
                    ALPHABET[(r % ALPHABET.len() as u64) as usize]
                } else {
                    r as u8
                };
            }
            // Half the time the stored numbers are random; otherwise they are what the format
            // computes (when it parses), to exercise the accepting path too.
            let random = (rng.next() as u32, rng.next() as u32);
            let (size, align) = if rng.next().is_multiple_of(2) {
                random
            } else {
                computed(&buf).unwrap_or(random)
            };
            if let Ok(l) = ElementLayout::decode(&buf, size, align) {
                accepted += 1;
                assert_eq!((l.size(), l.align()), (size, align));
                assert_eq!(l.encode(), buf);
                assert!(l.is_compatible_with(&l));
                let _ = l.to_string();
            }
        }
        assert!(accepted > 0, "some random formats are valid");
    }

    /// The size and alignment a NUL-padded format computes, if it parses.
    fn computed(buf: &[u8; 64]) -> Option<(u32, u32)> {
        let len = buf.iter().position(|&b| b == 0).unwrap_or(64);
        let s = core::str::from_utf8(&buf[..len]).ok()?;
        ElementLayout::parse(s).ok().map(|l| (l.size(), l.align()))
    }

    #[test]
    fn repeat_and_concat() {
        let int = ElementLayout::of_typecode(TypeCode::Int);
        assert_eq!(int.repeat(1).unwrap(), int);
        assert_eq!(int.repeat(4).unwrap().format(), "4i");
        assert_eq!(p("3i").repeat(2).unwrap().format(), "6i");
        assert_eq!(p("iid").repeat(2).unwrap().format(), "iidiid");
        assert_eq!(p("3s").repeat(2).unwrap().format(), "3s3s");
        let cdc = p("cdc");
        assert_eq!((cdc.calcsize(), cdc.size()), (17, 24));
        let twice = cdc.repeat(2).unwrap();
        assert_eq!(twice.format(), "cdc7xcdc7x");
        assert_eq!((twice.size(), twice.align()), (48, 8));
        assert_eq!(int.repeat(0), Err(LayoutError::ZeroSized));
        assert_eq!(int.repeat(1 << 30), Err(LayoutError::TooLarge));
        assert!(matches!(
            p("iid").repeat(30),
            Err(LayoutError::TooLong { .. })
        ));
        assert!(matches!(
            p("iid").repeat(usize::MAX / 64),
            Err(LayoutError::TooLarge)
        ));
        assert!(matches!(
            p("ic").repeat(1_000_000),
            Err(LayoutError::TooLong { .. })
        ));

        let l = ElementLayout::concat(&[u8::LAYOUT, f64::LAYOUT]).unwrap();
        assert_eq!((l.format(), l.size(), l.align()), ("B7xd", 16, 8));
        let l = ElementLayout::concat(&[p("@i"), p("@i")]).unwrap();
        assert_eq!(l.format(), "ii");
        assert_eq!(ElementLayout::concat(&[]), Err(LayoutError::Empty));
        let many = [p("iid"); 30];
        assert!(matches!(
            ElementLayout::concat(&many),
            Err(LayoutError::TooLong { .. })
        ));
        assert_eq!(ElementLayout::padding(1).unwrap().format(), "x");
        assert_eq!(ElementLayout::padding(0), Err(LayoutError::ZeroSized));
        assert_eq!(ElementLayout::padding(1 << 32), Err(LayoutError::TooLarge));
    }

    #[test]
    fn array_and_pad_elements() {
        assert_eq!(<[u8; 4]>::LAYOUT.format(), "4B");
        assert_eq!(<[[f32; 3]; 4]>::LAYOUT.format(), "12f");
        assert_eq!(<[CChar; 1]>::LAYOUT.format(), "c");
        assert_eq!(<[CChar; 1]>::LAYOUT.typecode(), Some(TypeCode::Char));
        assert_eq!(<Pad<5>>::LAYOUT.format(), "5x");
        assert_eq!(<Pad<5>>::LAYOUT.size(), 5);
        assert_eq!(<[Pad<2>; 3]>::LAYOUT.format(), "6x");
        assert_eq!(format!("{:?}", Pad::<3>::new()), "Pad<3>");
    }

    crate::record! {
        /// A record declared inside the crate.
        #[derive(Debug, Clone, Copy, PartialEq, Default)]
        struct Inner { a: i16, b: [u8; 2], c: f32 }

        /// Nested.
        #[derive(Debug, Clone, Copy, PartialEq, Default)]
        struct Outer { inner: Inner, flag: CBool, _pad: Pad<7>, n: u64 }
    }

    #[test]
    fn record_in_crate() {
        assert_eq!(Inner::LAYOUT.format(), "h2Bf");
        assert_eq!(Outer::LAYOUT.format(), "h2Bf?7xQ");
        assert_eq!(Outer::LAYOUT.size() as usize, size_of::<Outer>());
        let o = Outer {
            inner: Inner {
                a: -1,
                b: [1, 2],
                c: 1.5,
            },
            flag: CBool::TRUE,
            ..Outer::default()
        };
        let bytes = bytemuck::bytes_of(&o);
        assert_eq!(bytes.len(), 24);
        assert_eq!(&bytes[..4], &[0xff, 0xff, 1, 2]);
        assert_eq!(bytemuck::pod_read_unaligned::<Outer>(bytes), o);
    }

    #[test]
    fn newtypes() {
        assert_eq!(WChar::from('x').to_char(), Some('x'));
        assert_eq!(WChar(0x11_0000).to_char(), None);
        assert_eq!(u32::from(WChar::from(0x41u32)), 0x41);
        assert_eq!(CChar::from(7).0, 7);
        assert!(CBool(0x80).get());
        assert_eq!(CBool(0x80), CBool(1));
        assert_ne!(CBool(0), CBool(1));
        use std::hash::BuildHasher;
        let state = std::collections::hash_map::RandomState::new();
        assert_eq!(state.hash_one(CBool(2)), state.hash_one(CBool::TRUE));
        assert!(bool::from(CBool::from(true)));
        let all: Vec<CBool> = (0..=255u8).map(CBool).collect();
        let bools: &[u8] = bytemuck::cast_slice(&all);
        assert_eq!(bools.len(), 256);
    }
}
