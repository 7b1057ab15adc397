//! A schema hash of a serde type: what its `Deserialize` implementation asks for (struct and
//! field names, enum and variant names, primitive kinds, nesting), traced by a deserializer
//! that records every request and feeds back neutral values. Two builds whose type has the
//! same path but other fields (renamed, added, retyped) hash differently, which the type name
//! and size alone may not show.
//!
//! The trace is bounded: nesting deeper than [`MAX_DEPTH`], more than [`MAX_STEPS`] requests,
//! or a request the tracer cannot answer (`deserialize_any`, used by self-describing types)
//! ends it; what was recorded up to there is the schema.

use serde::de::{
    self, DeserializeOwned, DeserializeSeed, EnumAccess, IntoDeserializer, MapAccess, SeqAccess,
    VariantAccess, Visitor,
};
use std::fmt;

/// Deepest nesting traced.
pub(crate) const MAX_DEPTH: usize = 8;
/// Most requests traced.
pub(crate) const MAX_STEPS: usize = 512;
/// Most elements of a fixed-length tuple or array traced.
const MAX_TUPLE: usize = 16;

/// The schema hash of `T` (FNV-1a 64 over the trace).
pub(crate) fn schema_hash<T: DeserializeOwned>() -> u64 {
    let mut t = Trace::default();
    let _ = T::deserialize(Tracer {
        t: &mut t,
        depth: 0,
    });
    t.hash
}

struct Trace {
    hash: u64,
    steps: usize,
}

impl Default for Trace {
    fn default() -> Self {
        Trace {
            hash: 0xcbf2_9ce4_8422_2325,
            steps: 0,
        }
    }
}

impl Trace {
    fn eat(&mut self, s: &str) {
        for b in s.bytes().chain([0xff]) {
            self.hash ^= u64::from(b);
            self.hash = self.hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

/// Why a trace stopped (never shown to users: the partial trace is the schema).
#[derive(Debug)]
struct Stop;

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("schema trace stopped")
    }
}

impl std::error::Error for Stop {}

impl de::Error for Stop {
    fn custom<T: fmt::Display>(_msg: T) -> Self {
        Stop
    }
}

struct Tracer<'t> {
    t: &'t mut Trace,
    depth: usize,
}

impl Tracer<'_> {
    /// Records `what`; fails once the trace is too long or too deep.
    fn step(&mut self, what: &str) -> Result<(), Stop> {
        self.t.steps += 1;
        if self.t.steps > MAX_STEPS || self.depth > MAX_DEPTH {
            return Err(Stop);
        }
        self.t.eat(what);
        Ok(())
    }

    fn child(&mut self) -> Tracer<'_> {
        Tracer {
            t: self.t,
            depth: self.depth + 1,
        }
    }
}

macro_rules! primitive {
    ($($method:ident => $visit:ident($($value:expr)?)),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(mut self, v: V) -> Result<V::Value, Stop> {
            self.step(stringify!($method))?;
            v.$visit($($value)?)
        }
    )*};
}

impl<'de> de::Deserializer<'de> for Tracer<'_> {
    type Error = Stop;

    fn deserialize_any<V: Visitor<'de>>(mut self, _v: V) -> Result<V::Value, Stop> {
        self.step("any")?;
        Err(Stop)
    }

    primitive! {
        deserialize_bool => visit_bool(false),
        deserialize_i8 => visit_i8(0),
        deserialize_i16 => visit_i16(0),
        deserialize_i32 => visit_i32(0),
        deserialize_i64 => visit_i64(0),
        deserialize_i128 => visit_i128(0),
        deserialize_u8 => visit_u8(0),
        deserialize_u16 => visit_u16(0),
        deserialize_u32 => visit_u32(0),
        deserialize_u64 => visit_u64(0),
        deserialize_u128 => visit_u128(0),
        deserialize_f32 => visit_f32(0.0),
        deserialize_f64 => visit_f64(0.0),
        deserialize_char => visit_char('\0'),
        deserialize_str => visit_str(""),
        deserialize_string => visit_str(""),
        deserialize_bytes => visit_bytes(&[]),
        deserialize_byte_buf => visit_bytes(&[]),
        deserialize_unit => visit_unit(),
        deserialize_identifier => visit_u32(0),
        deserialize_ignored_any => visit_unit(),
    }

    fn deserialize_option<V: Visitor<'de>>(mut self, v: V) -> Result<V::Value, Stop> {
        self.step("option")?;
        v.visit_some(self.child())
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        mut self,
        name: &'static str,
        v: V,
    ) -> Result<V::Value, Stop> {
        self.step("unit_struct")?;
        self.step(name)?;
        v.visit_unit()
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        mut self,
        name: &'static str,
        v: V,
    ) -> Result<V::Value, Stop> {
        self.step("newtype_struct")?;
        self.step(name)?;
        v.visit_newtype_struct(self.child())
    }

    fn deserialize_seq<V: Visitor<'de>>(mut self, v: V) -> Result<V::Value, Stop> {
        self.step("seq")?;
        v.visit_seq(Elements {
            tracer: self.child(),
            left: 1,
        })
    }

    fn deserialize_tuple<V: Visitor<'de>>(mut self, len: usize, v: V) -> Result<V::Value, Stop> {
        self.step("tuple")?;
        self.step(&len.to_string())?;
        v.visit_seq(Elements {
            tracer: self.child(),
            left: len.min(MAX_TUPLE),
        })
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        mut self,
        name: &'static str,
        len: usize,
        v: V,
    ) -> Result<V::Value, Stop> {
        self.step("tuple_struct")?;
        self.step(name)?;
        self.deserialize_tuple(len, v)
    }

    fn deserialize_map<V: Visitor<'de>>(mut self, v: V) -> Result<V::Value, Stop> {
        self.step("map")?;
        v.visit_map(Entries {
            tracer: self.child(),
            left: 1,
        })
    }

    fn deserialize_struct<V: Visitor<'de>>(
        mut self,
        name: &'static str,
        fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, Stop> {
        self.step("struct")?;
        self.step(name)?;
        for f in fields {
            self.step(f)?;
        }
        // Postcard-style: fields in order, as a sequence.
        v.visit_seq(Elements {
            tracer: self.child(),
            left: fields.len().min(MAX_TUPLE * 4),
        })
    }

    fn deserialize_enum<V: Visitor<'de>>(
        mut self,
        name: &'static str,
        variants: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, Stop> {
        self.step("enum")?;
        self.step(name)?;
        for var in variants {
            self.step(var)?;
        }
        v.visit_enum(Variant {
            tracer: self.child(),
        })
    }

    fn is_human_readable(&self) -> bool {
        false
    }
}

/// At most `left` traced elements, then the end.
struct Elements<'t> {
    tracer: Tracer<'t>,
    left: usize,
}

impl<'de> SeqAccess<'de> for Elements<'_> {
    type Error = Stop;

    fn next_element_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, Stop> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        seed.deserialize(self.tracer.child()).map(Some)
    }
}

/// At most `left` traced entries, then the end.
struct Entries<'t> {
    tracer: Tracer<'t>,
    left: usize,
}

impl<'de> MapAccess<'de> for Entries<'_> {
    type Error = Stop;

    fn next_key_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, Stop> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        seed.deserialize(self.tracer.child()).map(Some)
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, Stop> {
        seed.deserialize(self.tracer.child())
    }
}

/// The first variant of an enum, traced (the names of all of them were recorded).
struct Variant<'t> {
    tracer: Tracer<'t>,
}

impl<'de, 't> EnumAccess<'de> for Variant<'t> {
    type Error = Stop;
    type Variant = Self;

    fn variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<(S::Value, Self), Stop> {
        let v = seed.deserialize(0u32.into_deserializer())?;
        Ok((v, self))
    }
}

impl<'de> VariantAccess<'de> for Variant<'_> {
    type Error = Stop;

    fn unit_variant(self) -> Result<(), Stop> {
        Ok(())
    }

    fn newtype_variant_seed<S: DeserializeSeed<'de>>(mut self, seed: S) -> Result<S::Value, Stop> {
        seed.deserialize(self.tracer.child())
    }

    fn tuple_variant<V: Visitor<'de>>(mut self, len: usize, v: V) -> Result<V::Value, Stop> {
        v.visit_seq(Elements {
            tracer: self.tracer.child(),
            left: len.min(MAX_TUPLE),
        })
    }

    fn struct_variant<V: Visitor<'de>>(
        mut self,
        fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, Stop> {
        self.tracer.step("fields")?;
        for f in fields {
            self.tracer.step(f)?;
        }
        v.visit_seq(Elements {
            tracer: self.tracer.child(),
            left: fields.len().min(MAX_TUPLE * 4),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::schema_hash;
    use serde::Deserialize;
    use std::collections::HashMap;

    mod v1 {
        #[derive(serde::Deserialize)]
        #[allow(dead_code)]
        pub struct Point {
            pub x: i32,
            pub y: i32,
        }
    }
    mod v2 {
        #[derive(serde::Deserialize)]
        #[allow(dead_code)]
        pub struct Point {
            pub x: i32,
            pub z: i32, // renamed: same size, same layout
        }
    }
    mod v3 {
        #[derive(serde::Deserialize)]
        #[allow(dead_code)]
        pub struct Point {
            pub x: i32,
            pub y: u32, // retyped: same size
        }
    }

    #[derive(Deserialize)]
    #[allow(dead_code)]
    enum Shape {
        Dot,
        Circle { r: f64 },
        Poly(Vec<(i32, i32)>),
    }

    #[derive(Deserialize)]
    #[allow(dead_code)]
    struct Tree {
        name: String,
        kids: Vec<Tree>, // recursive: the trace is bounded
        tag: Option<Box<Tree>>,
    }

    #[test]
    fn field_names_and_types_change_the_hash() {
        let (a, b, c) = (
            schema_hash::<v1::Point>(),
            schema_hash::<v2::Point>(),
            schema_hash::<v3::Point>(),
        );
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert_ne!(b, c);
        assert_eq!(a, schema_hash::<v1::Point>()); // deterministic
    }

    #[test]
    fn every_shape_of_type_traces_and_terminates() {
        let hashes = [
            schema_hash::<u8>(),
            schema_hash::<i64>(),
            schema_hash::<String>(),
            schema_hash::<Vec<u8>>(),
            schema_hash::<Option<String>>(),
            schema_hash::<(u8, String)>(),
            schema_hash::<[u16; 32]>(),
            schema_hash::<HashMap<String, Vec<i32>>>(),
            schema_hash::<Shape>(),
            schema_hash::<Tree>(),
            schema_hash::<()>(),
        ];
        for (i, a) in hashes.iter().enumerate() {
            for b in &hashes[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }
}
