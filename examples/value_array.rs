//! Seed 002's `Value`/`Array` example, across real processes: two children each set a shared
//! double and negate a shared array of ints; the parent prints both.
//!
//! ```python
//! def func(a, b):
//!     a.value = 3.333333333333333
//!     for i in range(len(b)):
//!         b[i] = -b[i]
//!
//! if __name__ == "__main__":
//!     num = Value('d', 0.0)
//!     arr = Array('i', range(11))
//!     c = Process(target=func, args=(num, arr))
//!     d = Process(target=func, args=(num, arr))
//!     c.start(); d.start(); c.join(); d.join()
//!     print(num.value)
//!     for i in arr:
//!         print(i)
//! ```
//!
//! The output is Python's: `3.333333333333333`, then 0 to 10 (each child negates every
//! element once, so two negations restore them). In Python each `b[i] = -b[i]` takes the
//! lock twice (read, then write), so two children racing on one element can lose a negation;
//! here each child negates the whole array under one `lock()`, so they cannot.
//!
//! Run: `cargo run --example value_array`. The children open both objects by name (their
//! typecodes `'d'` and `'i'` are checked); the parent created them and removes them at the end.

use shm_array::Array;
use shm_core::SegmentName;
use shm_process::{Role, Roles, Shared};
use shm_value::Value;
use std::error::Error;

/// `func`'s arguments: the shared double and the shared array of ints.
type NumArr = (Shared<Value<f64>>, Shared<Array<i32>>);

/// `func(a, b)`: the shared double and the shared array of ints.
const FUNC: Role<NumArr> = Role::new("func");

/// The child: `func(num, arr)`.
fn func((num, arr): NumArr) -> Result<(), Box<dyn Error>> {
    let (num, arr) = (num.open()?, arr.open()?);
    num.store(3.333333333333333);
    // A previous holder that died mid-negation is reported, not hidden: the array may be
    // half negated, and negating it again would not repair it.
    let mut b = arr.lock()?;
    // The guard hands out no slice into shared memory: `update` negates a local copy of the
    // whole array and writes it back, all under the one lock.
    b.update(|elems| elems.iter_mut().for_each(|x| *x = -*x));
    Ok(())
}

fn main() -> Result<(), Box<dyn Error>> {
    Roles::new().register(FUNC, func).run();

    let (num_name, arr_name) = (SegmentName::unique(), SegmentName::unique());
    let num = Value::<f64>::create(&num_name, 0.0)?;
    let init: Vec<i32> = (0..11).collect();
    let arr = Array::<i32>::create_from(&arr_name, &init)?;

    let args = (Shared::new(&num_name), Shared::new(&arr_name));
    let (mut c, mut d) = (FUNC.builder(&args)?.start()?, FUNC.builder(&args)?.start()?);
    for child in [&mut c, &mut d] {
        let status = child.join()?;
        if !status.success() {
            return Err(format!("a child failed: {status:?}").into());
        }
    }

    println!("{}", num.load());
    for i in arr.to_vec() {
        println!("{i}");
    }
    Ok(())
}
