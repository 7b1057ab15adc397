//! [`Role<A>`]: a role name tied to the type of its argument, and how the argument travels.

use crate::process::{Process, ProcessBuilder};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt;
use std::marker::PhantomData;

/// Longest JSON text an argument may take, in bytes.
///
/// It travels in one environment string, which Linux limits to 128 KiB (`MAX_ARG_STRLEN`)
/// including the variable's name; this leaves room for it. Bigger data belongs in a segment
/// whose name is the argument.
pub const MAX_ARGS_LEN: usize = 128 * 1024 - 64;

/// A role a child can be started in, and the type `A` of the argument it takes.
///
/// Declare it once as a `const` and use it on both sides: the parent starts a child with
/// [`builder`](Self::builder)`(&args)`, the child registers its function with
/// [`Roles::register`](crate::Roles::register). Since both name the same `const`, a parent
/// cannot send a `u64` where the child expects a segment name: that is a compile error.
/// Several values go as a tuple or a struct; no value at all as `Role<()>`.
///
/// The argument travels as JSON, so what JSON cannot carry does not arrive: a non-finite float
/// (`NaN`, infinities) is sent as `null` and the child refuses it
/// ([`BAD_ARGS_EXIT_CODE`](crate::BAD_ARGS_EXIT_CODE)), and a map needs string-like keys
/// ([`ArgsError::Serialize`] in the parent otherwise).
///
/// # Examples
///
/// ```no_run
/// use shm_core::SegmentName;
/// use shm_process::{Role, Roles};
///
/// const CONSUMER: Role<(SegmentName, u64)> = Role::new("consumer");
///
/// fn consumer((queue, count): (SegmentName, u64)) -> Result<(), String> {
///     println!("taking {count} items from {queue}");
///     Ok(())
/// }
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// Roles::new().register(CONSUMER, consumer).run();
/// let mut child = CONSUMER.builder(&(SegmentName::unique(), 10))?.daemon(true).start()?;
/// child.join()?;
/// # Ok(())
/// # }
/// ```
///
/// ```compile_fail
/// use shm_process::Role;
/// const COUNT: Role<u64> = Role::new("count");
/// let _ = COUNT.builder(&"ten"); // the role takes a u64
/// ```
pub struct Role<A> {
    name: &'static str,
    // `fn(A) -> A`: invariant in `A`, and `Role` stays `Send + Sync + Copy` whatever `A` is.
    args: PhantomData<fn(A) -> A>,
}

impl<A> Role<A> {
    /// The role called `name`. A name must be non-empty and hold no NUL byte
    /// ([`ProcessBuilder::start`] refuses it otherwise).
    pub const fn new(name: &'static str) -> Role<A> {
        Role {
            name,
            args: PhantomData,
        }
    }

    /// The role's name.
    pub const fn name(&self) -> &'static str {
        self.name
    }
}

impl<A: Serialize> Role<A> {
    /// A builder for a child in this role that receives `args`.
    ///
    /// # Errors
    ///
    /// [`ArgsError`] if `args` cannot be serialized (a map with non-string keys, a
    /// `Serialize` impl that fails) or is longer than [`MAX_ARGS_LEN`] as JSON.
    pub fn builder(&self, args: &A) -> Result<ProcessBuilder, ArgsError> {
        Process::builder(self.name).typed_args(args)
    }
}

impl<A> Clone for Role<A> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<A> Copy for Role<A> {}

impl<A> fmt::Debug for Role<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Role")
            .field("name", &self.name)
            .field("args", &std::any::type_name::<A>())
            .finish()
    }
}

/// A role argument that could not be sent.
#[derive(Debug)]
#[non_exhaustive]
pub enum ArgsError {
    /// The value cannot be serialized (the source says why).
    Serialize(serde_json::Error),
    /// Its JSON is longer than [`MAX_ARGS_LEN`].
    TooLarge {
        /// The JSON's length in bytes.
        len: usize,
    },
}

impl fmt::Display for ArgsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArgsError::Serialize(_) => write!(f, "cannot serialize the role argument"),
            ArgsError::TooLarge { len } => write!(
                f,
                "role argument is {len} bytes as JSON, more than the {MAX_ARGS_LEN} an \
                 environment string can carry; pass a segment name instead"
            ),
        }
    }
}

impl std::error::Error for ArgsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ArgsError::Serialize(e) => Some(e),
            ArgsError::TooLarge { .. } => None,
        }
    }
}

/// `value` as the JSON text that travels to the child.
pub(crate) fn encode<T: Serialize + ?Sized>(value: &T) -> Result<String, ArgsError> {
    let json = serde_json::to_string(value).map_err(ArgsError::Serialize)?;
    if json.len() > MAX_ARGS_LEN {
        return Err(ArgsError::TooLarge { len: json.len() });
    }
    Ok(json)
}

/// The child's side of [`encode`]: `None` (no argument sent) decodes as JSON `null`, so that a
/// `Role<()>` or `Role<Option<T>>` started without one still runs.
pub(crate) fn decode<A: DeserializeOwned>(json: Option<&str>) -> Result<A, String> {
    serde_json::from_str(json.unwrap_or("null")).map_err(|e| {
        format!(
            "cannot decode the role argument as `{}`: {e}",
            std::any::type_name::<A>()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use shm_core::SegmentName;

    #[derive(Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Job {
        name: SegmentName,
        n: u64,
        tags: Vec<String>,
    }

    #[test]
    fn values_round_trip_typed() {
        let job = Job {
            name: SegmentName::unique(),
            n: 7,
            tags: vec!["a".into(), "b\u{0}c".into()],
        };
        let json = encode(&job).unwrap();
        assert!(
            !json.contains('\0'),
            "an environment string cannot hold NUL"
        );
        assert_eq!(decode::<Job>(Some(&json)).unwrap(), job);
        assert_eq!(decode::<()>(None).unwrap(), ());
        assert_eq!(decode::<Option<u8>>(None).unwrap(), None);
    }

    #[test]
    fn wrong_type_and_bad_names_are_errors_naming_the_type() {
        let err = decode::<u64>(Some(&encode("ten").unwrap())).unwrap_err();
        assert!(err.contains("`u64`"), "{err}");
        // A segment name is checked again on arrival.
        let err = decode::<SegmentName>(Some("\"a/b\"")).unwrap_err();
        assert!(err.contains("SegmentName"), "{err}");
    }

    #[test]
    fn too_large_and_unserializable_values_are_refused() {
        let big = "x".repeat(MAX_ARGS_LEN);
        match encode(&big) {
            Err(ArgsError::TooLarge { len }) => assert_eq!(len, MAX_ARGS_LEN + 2),
            other => panic!("{other:?}"),
        }
        let mut map = std::collections::HashMap::new();
        map.insert((1, 2), 3);
        let err = encode(&map).unwrap_err();
        assert!(matches!(err, ArgsError::Serialize(_)));
        assert!(std::error::Error::source(&err).is_some());
    }

    #[test]
    fn a_non_finite_float_is_refused_on_arrival_not_misread() {
        let json = encode(&f64::NAN).unwrap();
        assert!(decode::<f64>(Some(&json)).is_err());
        assert_eq!(decode::<f64>(Some(&encode(&1.5f64).unwrap())).unwrap(), 1.5);
    }

    #[test]
    fn role_is_copy_and_debug_names_the_type() {
        const R: Role<(SegmentName, u32)> = Role::new("r");
        let r2 = R;
        assert_eq!(R.name(), r2.name());
        assert!(format!("{R:?}").contains("SegmentName"), "{R:?}");
    }
}
