//! The task registry: functions a binary registers by name, so that a worker process (the same
//! binary, started again) can run them. Rust cannot send a closure across `exec`, so the parent
//! and every worker build the same [`Registry`] and refer to a function by its index, checked by
//! a signature hash.

use serde::de::DeserializeOwned;
use serde::Serialize;
use std::any::type_name;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

/// Why a registered function did not produce a value (in the worker).
#[derive(Debug)]
pub(crate) enum Failure {
    /// The function returned `Err`; its `Display` text.
    Failed(String),
    /// The arguments did not decode, or the result did not encode.
    Codec(String),
}

/// A registered function with its types erased: decode the arguments from the first slice,
/// run, and append the encoded result to the vector.
pub(crate) type ErasedFn = dyn Fn(&[u8], &mut Vec<u8>) -> Result<(), Failure> + Send + Sync;

/// One registered function.
pub(crate) struct Entry {
    pub(crate) name: Arc<str>,
    pub(crate) signature: u64,
    pub(crate) run: Arc<ErasedFn>,
}

/// The functions a pool's workers can run, registered by name.
///
/// Build the same registry, in the same order, in the parent and in the workers: the usual
/// place is one function of the program that both call (see the [module docs](super)).
/// Registration hands back a typed [`Task`] handle, so that calling a function with the wrong
/// argument type, or expecting the wrong result type, does not compile:
///
/// ```compile_fail
/// use shm_process::pool::Registry;
///
/// let mut registry = Registry::new();
/// let square = registry.register("square", |x: u64| x * x);
/// # let pool: shm_process::pool::Pool = unimplemented!();
/// let s: String = pool.apply(&square, "seven").unwrap(); // wrong argument and result types
/// ```
///
/// A worker whose registry differs from the parent's (another build, another order) refuses to
/// start, and the pool reports [`TaskError::PoolBroken`](super::TaskError::PoolBroken) naming
/// the difference.
pub struct Registry {
    entries: Vec<Entry>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Registry {
        Registry {
            entries: Vec::new(),
        }
    }

    /// Registers `f` under `name` and returns its typed handle.
    ///
    /// A panic in `f` becomes that task's [`TaskError::Panicked`](super::TaskError::Panicked);
    /// the worker goes on.
    ///
    /// # Panics
    ///
    /// If `name` is already registered (a program error, found on the first run).
    pub fn register<A, R, F>(&mut self, name: &str, f: F) -> Task<A, R>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
        F: Fn(A) -> R + Send + Sync + 'static,
    {
        self.register_fallible(name, move |a: A| Ok::<R, std::convert::Infallible>(f(a)))
    }

    /// Registers a function that can fail: its `Err` becomes that task's
    /// [`TaskError::Failed`](super::TaskError::Failed), with the error's `Display` text.
    ///
    /// # Panics
    ///
    /// If `name` is already registered.
    pub fn register_fallible<A, R, E, F>(&mut self, name: &str, f: F) -> Task<A, R>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
        E: fmt::Display,
        F: Fn(A) -> Result<R, E> + Send + Sync + 'static,
    {
        assert!(
            self.entries.iter().all(|e| &*e.name != name),
            "task `{name}` is registered twice"
        );
        let signature = signature::<A, R>(name);
        let run = move |input: &[u8], out: &mut Vec<u8>| -> Result<(), Failure> {
            let args: A = postcard::from_bytes(input).map_err(|e| {
                Failure::Codec(format!(
                    "cannot decode the arguments as {}: {e}",
                    type_name::<A>()
                ))
            })?;
            let value = f(args).map_err(|e| Failure::Failed(e.to_string()))?;
            encode_into(&value, out).map_err(|e| {
                Failure::Codec(format!(
                    "cannot encode the result ({}): {e}",
                    type_name::<R>()
                ))
            })
        };
        let index = u32::try_from(self.entries.len()).expect("fewer than 2^32 tasks");
        self.entries.push(Entry {
            name: name.into(),
            signature,
            run: Arc::new(run),
        });
        Task {
            index,
            signature,
            _types: PhantomData,
        }
    }

    /// Registers a function of several arguments for [`starmap`](super::Pool::starmap): its
    /// task takes the arguments as one tuple, as Python's `starmap` unpacks each item.
    ///
    /// ```
    /// use shm_process::pool::Registry;
    ///
    /// fn add(a: i64, b: i64) -> i64 { a + b }
    /// let mut registry = Registry::new();
    /// let add = registry.register_star("add", add); // Task<(i64, i64), i64>
    /// # let _ = add;
    /// ```
    ///
    /// # Panics
    ///
    /// If `name` is already registered.
    pub fn register_star<Args, R, F>(&mut self, name: &str, f: F) -> Task<Args, R>
    where
        F: StarFn<Args, R> + Send + Sync + 'static,
        Args: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
    {
        self.register(name, move |args: Args| f.call(args))
    }

    /// How many functions are registered.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no function is registered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The registered names, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> + '_ {
        self.entries.iter().map(|e| &*e.name)
    }

    /// A hash of every name and signature in order: equal in two processes exactly when their
    /// registries agree.
    pub(crate) fn fingerprint(&self) -> u64 {
        let mut h = Fnv::new();
        for e in &self.entries {
            h.write(&e.signature.to_le_bytes());
        }
        h.finish()
    }

    pub(crate) fn entry(&self, index: u32) -> Option<&Entry> {
        self.entries.get(index as usize)
    }

    /// The names and signatures, shared with a pool.
    pub(crate) fn catalog(&self) -> Arc<[(Arc<str>, u64)]> {
        self.entries
            .iter()
            .map(|e| (e.name.clone(), e.signature))
            .collect()
    }
}

impl Default for Registry {
    fn default() -> Self {
        Registry::new()
    }
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("tasks", &self.names().collect::<Vec<_>>())
            .finish()
    }
}

/// The typed handle of a registered function taking `A` and returning `R`; made by
/// [`Registry::register`]. Cheap to copy.
pub struct Task<A, R> {
    pub(crate) index: u32,
    pub(crate) signature: u64,
    _types: PhantomData<fn(A) -> R>,
}

impl<A, R> Task<A, R> {
    /// Its index in the registry.
    pub fn index(&self) -> u32 {
        self.index
    }
}

impl<A, R> Clone for Task<A, R> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<A, R> Copy for Task<A, R> {}

impl<A, R> fmt::Debug for Task<A, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Task")
            .field("index", &self.index)
            .field("args", &type_name::<A>())
            .field("result", &type_name::<R>())
            .finish()
    }
}

/// A function of several arguments that [`Registry::register_star`] can register: implemented
/// for functions and closures of one to six arguments, called with a tuple.
pub trait StarFn<Args, R> {
    /// Calls the function with the tuple's fields as arguments.
    fn call(&self, args: Args) -> R;
}

macro_rules! star_fn {
    ($($t:ident),+) => {
        impl<Func, R, $($t),+> StarFn<($($t,)+), R> for Func
        where
            Func: Fn($($t),+) -> R,
        {
            #[allow(non_snake_case)]
            fn call(&self, ($($t,)+): ($($t,)+)) -> R {
                self($($t),+)
            }
        }
    };
}

star_fn!(A1);
star_fn!(A1, A2);
star_fn!(A1, A2, A3);
star_fn!(A1, A2, A3, A4);
star_fn!(A1, A2, A3, A4, A5);
star_fn!(A1, A2, A3, A4, A5, A6);

/// Appends `value`'s postcard encoding to `out`.
pub(crate) fn encode_into<T: Serialize + ?Sized>(
    value: &T,
    out: &mut Vec<u8>,
) -> Result<(), postcard::Error> {
    // On an error the buffer is consumed and `out` is left empty: callers treat it as scratch.
    *out = postcard::to_extend(value, std::mem::take(out))?;
    Ok(())
}

fn signature<A, R>(name: &str) -> u64 {
    let mut h = Fnv::new();
    h.write(name.as_bytes());
    h.write(&[0]);
    h.write(type_name::<A>().as_bytes());
    h.write(&[0]);
    h.write(type_name::<R>().as_bytes());
    h.finish()
}

/// FNV-1a, 64 bits: stable across processes and builds (unlike `DefaultHasher`).
struct Fnv(u64);

impl Fnv {
    fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_runs_and_reports() {
        let mut reg = Registry::new();
        let sq = reg.register("square", |x: u64| x * x);
        let half = reg.register_fallible("half", |x: u64| {
            if x.is_multiple_of(2) {
                Ok(x / 2)
            } else {
                Err(format!("{x} is odd"))
            }
        });
        let add = reg.register_star("add", |a: i32, b: i32| a + b);
        assert_eq!((sq.index(), half.index(), add.index()), (0, 1, 2));
        assert_eq!(reg.names().collect::<Vec<_>>(), ["square", "half", "add"]);

        let mut out = Vec::new();
        let input = postcard::to_stdvec(&7u64).unwrap();
        (reg.entry(0).unwrap().run)(&input, &mut out).unwrap();
        assert_eq!(postcard::from_bytes::<u64>(&out).unwrap(), 49);

        out.clear();
        match (reg.entry(1).unwrap().run)(&input, &mut out) {
            Err(Failure::Failed(m)) => assert_eq!(m, "7 is odd"),
            other => panic!("{other:?}"),
        }
        let pair = postcard::to_stdvec(&(2i32, 3i32)).unwrap();
        out.clear();
        (reg.entry(2).unwrap().run)(&pair, &mut out).unwrap();
        assert_eq!(postcard::from_bytes::<i32>(&out).unwrap(), 5);
        // Garbage arguments: a codec failure naming the type, never a panic.
        out.clear();
        match (reg.entry(2).unwrap().run)(&[0xff], &mut out) {
            Err(Failure::Codec(m)) => assert!(m.contains("(i32, i32)"), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn fingerprint_tracks_names_types_and_order() {
        let build = |swap: bool| {
            let mut r = Registry::new();
            if swap {
                r.register("b", |x: u8| x);
                r.register("a", |x: u64| x);
            } else {
                r.register("a", |x: u64| x);
                r.register("b", |x: u8| x);
            }
            r.fingerprint()
        };
        assert_eq!(build(false), build(false));
        assert_ne!(build(false), build(true));
        let mut other = Registry::new();
        other.register("a", |x: u32| x);
        other.register("b", |x: u8| x);
        assert_ne!(other.fingerprint(), build(false));
    }

    #[test]
    #[should_panic(expected = "registered twice")]
    fn duplicate_names_panic() {
        let mut r = Registry::new();
        r.register("a", |x: u8| x);
        r.register("a", |x: u8| x);
    }
}
